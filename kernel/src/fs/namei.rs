//! Permission checks on inodes (Linux's fs/namei.c `generic_permission`,
//! `inode_permission`, `may_lookup`, `may_create`, `may_delete`, `check_sticky`,
//! `may_open`, and fs/inode.c `inode_owner_or_capable`): the mode bits against the
//! caller's fsuid, fsgid and supplementary groups, overridden by CAP_DAC_OVERRIDE,
//! CAP_DAC_READ_SEARCH and CAP_FOWNER.

use super::file::{O_ACCMODE, O_NOATIME, O_TRUNC};
use super::vfs::*;
use crate::errno::*;
use crate::process::cred::{Creds, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER};
use alloc::sync::Arc;

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

const S_ISVTX: u32 = 0o1000;
const S_IXUGO: u32 = 0o111;

/// The mode bits alone (`acl_permission_check`): the owner class for the owner,
/// the group class for a member when it differs from other in the bits asked
/// for, else the other class.
fn acl_permission_check(c: &Creds, m: &Metadata, mask: u32) -> KResult<()> {
    let mask = mask & 7;
    let mut mode = m.mode;
    if c.fsuid == m.uid {
        mode >>= 6;
    } else if mask & (mode ^ (mode >> 3)) != 0 && c.in_group_p(m.gid) {
        mode >>= 3;
    }
    if mask & !mode != 0 {
        return Err(EACCES);
    }
    Ok(())
}

/// `generic_permission`: the mode bits, then the capabilities. Directories:
/// CAP_DAC_READ_SEARCH reads and searches, CAP_DAC_OVERRIDE does anything.
/// Other files: CAP_DAC_READ_SEARCH reads, CAP_DAC_OVERRIDE reads and writes,
/// and executes only when some execute bit is set.
pub fn generic_permission(c: &Creds, m: &Metadata, mask: u32) -> KResult<()> {
    if acl_permission_check(c, m, mask).is_ok() {
        return Ok(());
    }
    if m.is_dir() {
        if mask & MAY_WRITE == 0 && c.capable(CAP_DAC_READ_SEARCH) {
            return Ok(());
        }
        if c.capable(CAP_DAC_OVERRIDE) {
            return Ok(());
        }
        return Err(EACCES);
    }
    let mask = mask & (MAY_READ | MAY_WRITE | MAY_EXEC);
    if mask == MAY_READ && c.capable(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    if (mask & MAY_EXEC == 0 || m.mode & S_IXUGO != 0) && c.capable(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    Err(EACCES)
}

/// `inode_permission`: the inode's own `permission` (the generic mode-bit check unless
/// the filesystem has another).
pub fn inode_permission(c: &Creds, inode: &Arc<dyn Inode>, mask: u32) -> KResult<()> {
    inode.permission(c, mask)
}

/// Search permission on a directory a path walk passes through (`may_lookup`).
pub fn may_lookup(c: &Creds, dir: &Arc<dyn Inode>) -> KResult<()> {
    inode_permission(c, dir, MAY_EXEC)
}

/// Adding an entry to `dir` (`may_create`; the caller has ruled out an
/// existing entry): write and search permission on the directory.
pub fn may_create(c: &Creds, dir: &Arc<dyn Inode>) -> KResult<()> {
    inode_permission(c, dir, MAY_WRITE | MAY_EXEC)
}

/// The owner of the file or of the sticky directory, or CAP_FOWNER, may remove
/// an entry from a sticky directory (`check_sticky`); true means refused.
pub fn check_sticky(c: &Creds, dir: &Metadata, victim: &Metadata) -> bool {
    dir.mode & S_ISVTX != 0 && c.fsuid != victim.uid && c.fsuid != dir.uid && !c.capable(CAP_FOWNER)
}

/// Removing entry `victim` from `dir` (`may_delete`): write and search on the
/// directory (EACCES), the sticky rule (EPERM), then the kind the caller
/// expects (`isdir`: ENOTDIR, else EISDIR).
pub fn may_delete(c: &Creds, dir: &Arc<dyn Inode>, victim: &Metadata, isdir: bool) -> KResult<()> {
    let dm = dir.metadata();
    generic_permission(c, &dm, MAY_WRITE | MAY_EXEC)?;
    if check_sticky(c, &dm, victim) {
        return Err(EPERM);
    }
    match (isdir, victim.is_dir()) {
        (true, false) => Err(ENOTDIR),
        (false, true) => Err(EISDIR),
        _ => Ok(()),
    }
}

/// Owner or CAP_FOWNER (`inode_owner_or_capable`): who may change a file's mode
/// and times or open it with O_NOATIME.
pub fn inode_owner_or_capable(c: &Creds, m: &Metadata) -> bool {
    c.fsuid == m.uid || c.capable(CAP_FOWNER)
}

/// The MAY_* mask an open with `flags` needs (`build_open_flags`): the access
/// mode's read/write, plus write for O_TRUNC.
pub fn open_acc_mode(flags: u32) -> u32 {
    let acc = [MAY_READ, MAY_WRITE, MAY_READ | MAY_WRITE, MAY_READ | MAY_WRITE][(flags & O_ACCMODE) as usize];
    if flags & O_TRUNC != 0 {
        acc | MAY_WRITE
    } else {
        acc
    }
}

/// Opening an existing inode with `acc_mode` (`may_open`): symlinks are ELOOP,
/// directories are not writable (EISDIR) nor executable, devices and FIFOs are
/// not executable; then the mode bits; O_NOATIME only for the owner or CAP_FOWNER.
pub fn may_open(c: &Creds, inode: &Arc<dyn Inode>, acc_mode: u32, flags: u32) -> KResult<()> {
    let m = &inode.metadata();
    match m.file_type() {
        S_IFLNK => return Err(ELOOP),
        S_IFDIR if acc_mode & MAY_WRITE != 0 => return Err(EISDIR),
        S_IFDIR | S_IFBLK | S_IFCHR | S_IFIFO | S_IFSOCK if acc_mode & MAY_EXEC != 0 => return Err(EACCES),
        _ => {}
    }
    inode_permission(c, inode, acc_mode)?;
    if flags & O_NOATIME != 0 && !inode_owner_or_capable(c, m) {
        return Err(EPERM);
    }
    Ok(())
}
