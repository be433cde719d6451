//! memfd_create and file seals (Linux's mm/memfd.c, 6.6): an anonymous shmem file with a
//! name for /proc, whose data, size and mappings can be sealed with
//! `fcntl(F_ADD_SEALS)`.
//!
//! The seals live in the inode (`tmpfs::TmpfsFile`, `hugetlbfs::HugetlbFile`), so every
//! descriptor of the file, dup'ed or inherited, sees seals added through any other. What
//! each seal forbids is enforced where the change happens: tmpfs's write, truncate,
//! fallocate and `mmap` hook; F_SEAL_WRITE itself waits for no writable shared mapping
//! (the page cache's `i_mmap_writable`).
#![deny(unsafe_code)]

use crate::errno::*;
use crate::fs::file::{File, FileKind, O_LARGEFILE, O_RDWR};
use crate::fs::hugetlbfs::HugetlbFile;
use crate::fs::tmpfs::TmpfsFile;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;

/// fcntl commands (F_LINUX_SPECIFIC_BASE + 9, + 10).
pub const F_ADD_SEALS: u32 = 1033;
pub const F_GET_SEALS: u32 = 1034;

/// The seals (include/uapi/linux/fcntl.h).
pub const F_SEAL_SEAL: u32 = 0x0001;
pub const F_SEAL_SHRINK: u32 = 0x0002;
pub const F_SEAL_GROW: u32 = 0x0004;
pub const F_SEAL_WRITE: u32 = 0x0008;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x0010;
pub const F_SEAL_EXEC: u32 = 0x0020;
const F_ALL_SEALS: u32 = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

/// memfd_create flags (include/uapi/linux/memfd.h).
pub const MFD_CLOEXEC: u32 = 0x0001;
pub const MFD_ALLOW_SEALING: u32 = 0x0002;
pub const MFD_HUGETLB: u32 = 0x0004;
pub const MFD_NOEXEC_SEAL: u32 = 0x0008;
pub const MFD_EXEC: u32 = 0x0010;
const MFD_ALL_FLAGS: u32 = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/// MFD_HUGETLB's page size, as log2 in bits 26..32 (0: the default huge page size).
const MFD_HUGE_SHIFT: u32 = 26;
const MFD_HUGE_MASK: u32 = 0x3f;

/// The longest name: NAME_MAX less the "memfd:" prefix.
pub const MFD_NAME_MAX_LEN: usize = 255 - 6;

/// A new memfd's open file and whether its descriptor is close-on-exec.
pub struct Memfd {
    pub file: Arc<File>,
    pub cloexec: bool,
}

/// `memfd_create(2)` once the name is read (`read_name` gives it the user's string or
/// the error strnlen_user would): the checks in Linux's order, then an empty shmem file
/// (or a hugetlbfs one) with no link, named "/memfd:NAME" for /proc, mode 0777 less the
/// execute bits under MFD_NOEXEC_SEAL, owned by the caller's fsuid/fsgid.
pub fn memfd_create(
    flags: u32,
    read_name: impl FnOnce(usize) -> KResult<alloc::vec::Vec<u8>>,
    fsuid: u32,
    fsgid: u32,
) -> KResult<Memfd> {
    let allowed =
        if flags & MFD_HUGETLB == 0 { MFD_ALL_FLAGS } else { MFD_ALL_FLAGS | (MFD_HUGE_MASK << MFD_HUGE_SHIFT) };
    if flags & !allowed != 0 {
        return Err(EINVAL);
    }
    if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
        return Err(EINVAL);
    }
    // check_sysctl_memfd_noexec with vm.memfd_noexec 0: neither flag means MFD_EXEC.
    let name = read_name(MFD_NAME_MAX_LEN).map_err(|e| if e == ENAMETOOLONG { EINVAL } else { e })?;
    let name = String::from_utf8_lossy(&name);
    // The file object (Linux's alloc_file_pseudo), before anything is made.
    super::fail::slab_may_fail()?;
    let noexec = flags & MFD_NOEXEC_SEAL != 0;
    let mode = if noexec { 0o666 } else { 0o777 };
    // shmem_get_inode starts with F_SEAL_SEAL; MFD_NOEXEC_SEAL (6.6: which implies
    // sealing) swaps it for F_SEAL_EXEC, MFD_ALLOW_SEALING drops it.
    let seals = if noexec {
        F_SEAL_EXEC
    } else if flags & MFD_ALLOW_SEALING != 0 {
        0
    } else {
        F_SEAL_SEAL
    };
    let inode: Arc<dyn crate::fs::vfs::Inode> = if flags & MFD_HUGETLB != 0 {
        let log = (flags >> MFD_HUGE_SHIFT) & MFD_HUGE_MASK;
        let f = HugetlbFile::new(log, mode, fsuid, fsgid, None)?;
        f.init_seals(seals);
        f
    } else {
        let f = crate::fs::tmpfs::new_memfd(mode, fsuid, fsgid);
        f.init_seals(seals);
        f
    };
    let file = File::new(FileKind::Inode(inode), O_RDWR | O_LARGEFILE, format!("/memfd:{name}"));
    Ok(Memfd { file, cloexec: flags & MFD_CLOEXEC != 0 })
}

/// Where a file keeps its seals (`memfd_file_seals_ptr`): tmpfs and hugetlbfs files.
enum Sealable<'a> {
    Shmem(&'a TmpfsFile),
    Huge(&'a HugetlbFile),
}

fn sealable(f: &File) -> Option<Sealable<'_>> {
    let i = f.inode()?.as_any();
    if let Some(t) = i.downcast_ref::<TmpfsFile>() {
        return Some(Sealable::Shmem(t));
    }
    i.downcast_ref::<HugetlbFile>().map(Sealable::Huge)
}

/// `memfd_fcntl`: F_ADD_SEALS and F_GET_SEALS on an open file.
pub fn memfd_fcntl(f: &File, cmd: u32, arg: u32) -> KResult<usize> {
    match cmd {
        F_ADD_SEALS => {
            // memfd_add_seals: write access first, then the bits, then the file kind.
            if !f.writable() {
                return Err(EPERM);
            }
            if arg & !F_ALL_SEALS != 0 {
                return Err(EINVAL);
            }
            match sealable(f).ok_or(EINVAL)? {
                Sealable::Shmem(t) => t.add_seals(arg)?,
                Sealable::Huge(h) => h.add_seals(arg)?,
            }
            Ok(0)
        }
        F_GET_SEALS => match sealable(f).ok_or(EINVAL)? {
            Sealable::Shmem(t) => Ok(t.seals() as usize),
            Sealable::Huge(h) => Ok(h.seals() as usize),
        },
        _ => Err(EINVAL),
    }
}
