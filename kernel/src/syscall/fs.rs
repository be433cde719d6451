//! File syscalls.

use super::{copy_to_user, ok, read_path, read_val, write_val, Args, SysResult};
use crate::errno::*;
use crate::fs::file::*;
use crate::fs::namei::*;
use crate::fs::path::{lookup_from, lookup_jumping, lookup_parent};
use crate::fs::vfs::*;
use crate::process::cred::{Creds, CAP_CHOWN, CAP_DAC_READ_SEARCH, CAP_FSETID};
use crate::process::current;
use crate::process::task::RLIMIT_NOFILE;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
pub const AT_REMOVEDIR: u32 = 0x200;
pub const AT_EMPTY_PATH: u32 = 0x1000;
pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
pub const AT_EACCESS: u32 = 0x200;

/// Largest single read/write, as Linux's MAX_RW_COUNT.
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Bytes moved per step between a user buffer and a file.
const CHUNK: usize = 64 * 1024;

pub fn get_file(fd: i32) -> KResult<Arc<File>> {
    current().files().lock().get(fd)
}

pub fn nofile_limit() -> usize {
    current().process.rlimit(RLIMIT_NOFILE).cur.min(1 << 20) as usize
}

/// Puts `file` in the lowest free descriptor, within RLIMIT_NOFILE.
/// A file that finds no descriptor is dropped after the table's lock is released: its
/// release may take the locks of what it is (a terminal, a pipe), which come first.
pub fn install(file: Arc<File>, cloexec: bool) -> KResult<usize> {
    let limit = nofile_limit();
    let r = current().files().lock().alloc(file.clone(), cloexec, 0, limit).map(|fd| fd as usize);
    drop(file);
    r
}

/// The directory a *at() call starts from.
fn dir_of(dirfd: i32, path: &[u8]) -> KResult<Arc<dyn Inode>> {
    if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
        return Ok(current().fs().lock().cwd.clone());
    }
    let f = get_file(dirfd)?;
    let i = f.inode().ok_or(ENOTDIR)?.clone();
    if !i.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    Ok(i)
}

/// The caller's credentials, for permission checks.
fn cred() -> Creds {
    current().process.creds.lock().clone()
}

pub fn resolve_at(dirfd: i32, path: &[u8], follow: bool) -> KResult<Arc<dyn Inode>> {
    resolve_at_as(&cred(), dirfd, path, follow)
}

/// resolve_at with the permission checks of `cred`.
pub fn resolve_at_as(cred: &Creds, dirfd: i32, path: &[u8], follow: bool) -> KResult<Arc<dyn Inode>> {
    let start = dir_of(dirfd, path)?;
    lookup_from(cred, crate::fs::root(), start, path, follow)
}

/// The parent directory and final name of `path` (from `dirfd`), searched with `cred`.
fn parent_at(cred: &Creds, dirfd: i32, path: &[u8]) -> KResult<(Arc<dyn Inode>, String)> {
    lookup_parent(cred, crate::fs::root(), dir_of(dirfd, path)?, path)
}

/// A new entry `name` in `dir` (`filename_create` then `may_create`): an existing
/// name (or `.`/`..`) is EEXIST, then the directory must be writable and searchable.
fn may_create_entry(cred: &Creds, dir: &Arc<dyn Inode>, name: &str) -> KResult<()> {
    if name.is_empty() || name == "." || name == ".." || dir.lookup(name).is_ok() {
        return Err(EEXIST);
    }
    may_create(cred, dir)
}

fn same_inode(a: &Arc<dyn Inode>, b: &Arc<dyn Inode>) -> bool {
    let (a, b) = (a.metadata(), b.metadata());
    a.dev == b.dev && a.ino == b.ino
}

/// The absolute path an open names (for /proc/pid/fd, maps): relative paths
/// are joined to the cwd or the directory fd's own path, `.` and `..` folded.
fn absolute_path(dirfd: i32, path: &[u8]) -> String {
    let base = if path.first() == Some(&b'/') {
        String::from("/")
    } else if dirfd == AT_FDCWD {
        current().fs().lock().cwd_path.clone()
    } else {
        get_file(dirfd).map(|f| f.path.clone()).unwrap_or_else(|_| String::from("/"))
    };
    join_path(&base, path)
}

/// Between two chunks of a copy whose length a user chose: give up the CPU if the
/// slice is used, and stop if the task is being killed (it dies on its way out;
/// Linux's copy loops check `fatal_signal_pending` the same way).
fn next_chunk() -> bool {
    crate::process::sched::cond_resched();
    !crate::process::signal::fatal_signal_pending(&current())
}

/// Moves up to `len` bytes from `read(buf, done)` to user memory at `va`,
/// a bounded chunk at a time (no allocation sized by the caller). Stops at a
/// short read, and after the first chunk for streams (pipes, devices return
/// what they have). An error after some progress returns the progress.
fn read_to_user(
    va: u64,
    len: usize,
    stream: bool,
    mut read: impl FnMut(&mut [u8], u64) -> KResult<usize>,
) -> KResult<usize> {
    check_user_range(va, len)?;
    let mm = crate::process::current_mm();
    let mut buf = crate::mm::fail::try_vec_filled(0u8, len.min(CHUNK))?;
    let mut done = 0;
    while done < len {
        // The destination first, as far as it goes: a copy failing after the file gave
        // its bytes would lose them.
        let want = match crate::mm::usercopy::fault_in_writeable(&mm, va + done as u64, (len - done).min(CHUNK)) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let n = match read(&mut buf[..want], done as u64) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if let Err(e) = crate::mm::usercopy::copy_to_user(&mm, va + done as u64, &buf[..n]) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        done += n;
        if n < want || stream || !next_chunk() {
            break;
        }
    }
    Ok(done)
}

/// Moves up to `len` bytes from user memory at `va` to `write(buf, done)`,
/// chunk by chunk; stops at a short write.
fn write_from_user(va: u64, len: usize, mut write: impl FnMut(&[u8], u64) -> KResult<usize>) -> KResult<usize> {
    check_user_range(va, len)?;
    let mm = crate::process::current_mm();
    let mut buf = crate::mm::fail::try_vec_filled(0u8, len.min(CHUNK))?;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        if let Err(e) = crate::mm::usercopy::copy_from_user(&mm, va + done as u64, &mut buf[..n]) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        match write(&buf[..n], done as u64) {
            Ok(w) => {
                done += w;
                if w < n || !next_chunk() {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// EFAULT for a range that is not in the user half (Linux's `access_ok`).
fn check_user_range(va: u64, len: usize) -> KResult<()> {
    let end = va.checked_add(len as u64).ok_or(EFAULT)?;
    if end > crate::mm::address_space::TASK_SIZE {
        return Err(EFAULT);
    }
    Ok(())
}

pub fn sys_read(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    if !f.readable() {
        return Err(EBADF);
    }
    ok(read_to_user(a.u(1), a.usize(2).min(MAX_RW_COUNT), !f.seekable(), |b, _| f.read(b))?)
}

pub fn sys_write(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    if !f.writable() {
        return Err(EBADF);
    }
    ok(write_from_user(a.u(1), a.usize(2).min(MAX_RW_COUNT), |b, _| f.write(b))?)
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct IoVec {
    pub base: u64,
    pub len: u64,
}
crate::impl_pod!(IoVec);

const UIO_MAXIOV: usize = 1024;

fn read_iovecs(va: u64, count: usize) -> KResult<Vec<IoVec>> {
    if count > UIO_MAXIOV {
        return Err(EINVAL);
    }
    let mut v = crate::mm::fail::try_vec_with_capacity(count)?;
    let mut total: u64 = 0;
    for i in 0..count {
        let iov: IoVec = read_val(super::uoff(va, (i * 16) as u64)?)?;
        total = total.checked_add(iov.len).ok_or(EINVAL)?;
        if total > isize::MAX as u64 {
            return Err(EINVAL);
        }
        v.push(iov);
    }
    Ok(v)
}

/// readv/writev: `transfer(base, len)` per iovec until a short transfer,
/// an error after progress, or MAX_RW_COUNT bytes.
fn vectored(a: &Args, mut transfer: impl FnMut(u64, usize) -> KResult<usize>) -> SysResult {
    let mut done = 0;
    for iov in read_iovecs(a.u(1), a.usize(2))? {
        let want = (iov.len as usize).min(MAX_RW_COUNT - done);
        let n = match transfer(iov.base, want) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += n;
        if n < want || done >= MAX_RW_COUNT || !next_chunk() {
            break;
        }
    }
    ok(done)
}

pub fn sys_readv(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    if !f.readable() {
        return Err(EBADF);
    }
    vectored(&a, |base, len| read_to_user(base, len, !f.seekable(), |b, _| f.read(b)))
}

pub fn sys_writev(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    if !f.writable() {
        return Err(EBADF);
    }
    vectored(&a, |base, len| write_from_user(base, len, |b, _| f.write(b)))
}

/// The offset of pread/pwrite (rw_verify_area): negative, or pos + count
/// past the largest offset, is EINVAL.
fn file_offset(a: &Args) -> KResult<u64> {
    let off = a.u(3) as i64;
    if off < 0 || off.checked_add(a.usize(2).min(MAX_RW_COUNT) as i64).is_none() {
        return Err(EINVAL);
    }
    Ok(off as u64)
}

pub fn sys_pread64(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    let off = file_offset(&a)?;
    if !f.seekable() {
        return Err(ESPIPE);
    }
    ok(read_to_user(a.u(1), a.usize(2).min(MAX_RW_COUNT), false, |b, done| f.pread(b, off + done))?)
}

pub fn sys_pwrite64(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    let off = file_offset(&a)?;
    if !f.seekable() {
        return Err(ESPIPE);
    }
    ok(write_from_user(a.u(1), a.usize(2).min(MAX_RW_COUNT), |b, done| f.pwrite(b, off + done))?)
}

pub fn sys_lseek(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    ok(f.seek(a.u(1) as i64, a.u32(2))? as usize)
}

pub fn sys_open(a: Args) -> SysResult {
    do_openat(AT_FDCWD, a.u(0), a.u32(1), a.u32(2))
}

pub fn sys_openat(a: Args) -> SysResult {
    do_openat(a.i32(0), a.u(1), a.u32(2), a.u32(3))
}

pub fn sys_creat(a: Args) -> SysResult {
    do_openat(AT_FDCWD, a.u(0), O_CREAT | O_WRONLY | O_TRUNC, a.u32(1))
}

fn do_openat(dirfd: i32, path_va: u64, flags: u32, mode: u32) -> SysResult {
    // build_open_flags, before the path is read: O_TMPFILE comes with O_DIRECTORY,
    // without O_CREAT or O_PATH, and writes.
    let tmpfile = flags & __O_TMPFILE != 0;
    if tmpfile
        && (flags & (O_TMPFILE | O_CREAT) != O_TMPFILE || open_acc_mode(flags) & MAY_WRITE == 0 || flags & O_PATH != 0)
    {
        return Err(EINVAL);
    }
    let path = read_path(path_va)?;
    // The file object comes first (Linux's alloc_empty_file in path_openat): a failure
    // leaves nothing created.
    crate::mm::fail::slab_may_fail()?;
    let t = current();
    let cred = cred();
    let start = dir_of(dirfd, &path)?;
    if tmpfile {
        return do_tmpfile(&cred, start, dirfd, &path, flags, mode);
    }
    let follow = flags & O_NOFOLLOW == 0;
    let mut created = false;
    // Linux's lookup_open holds the directory across the lookup and the create; here
    // another opener may create the name in between: without O_EXCL, its file is opened.
    let mut races = 0;
    let (inode, jumped) = loop {
        match lookup_jumping(&cred, crate::fs::root(), start.clone(), &path, follow) {
            Ok(found) => {
                if flags & (O_CREAT | O_EXCL) == (O_CREAT | O_EXCL) {
                    return Err(EEXIST);
                }
                break found;
            }
            Err(ENOENT) if flags & O_CREAT != 0 => {
                let (dir, name) = lookup_parent(&cred, crate::fs::root(), start.clone(), &path)?;
                if path.last() == Some(&b'/') {
                    return Err(EISDIR);
                }
                may_create(&cred, &dir)?;
                let umask = t.fs().lock().umask;
                match dir.create(&name, S_IFREG | (mode & 0o7777 & !umask), cred.fsuid, cred.fsgid) {
                    Ok(inode) => {
                        created = true;
                        break (inode, None);
                    }
                    Err(EEXIST) if flags & O_EXCL == 0 && races < 100 => races += 1,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    };
    let m = inode.metadata();
    // Reached only with O_NOFOLLOW: O_PATH then refers to the link itself.
    if m.file_type() == S_IFLNK && flags & O_PATH == 0 {
        return Err(ELOOP);
    }
    if flags & O_DIRECTORY != 0 && !m.is_dir() {
        return Err(ENOTDIR);
    }
    if m.is_dir() && flags & O_CREAT != 0 && flags & O_DIRECTORY == 0 {
        return Err(EISDIR);
    }
    // A file this open created is not checked against its new mode (FMODE_CREATED);
    // O_PATH descriptors grant no access and need none.
    if !created && flags & O_PATH == 0 {
        may_open(&cred, &inode, open_acc_mode(flags), flags)?;
        if flags & O_TRUNC != 0 && m.is_regular() {
            inode.truncate(0)?;
        }
    }
    // Through a magic link the new open file has the old one's path.
    let path = match &jumped {
        Some(f) => f.path.clone(),
        None => absolute_path(dirfd, &path),
    };
    // An O_PATH descriptor opens nothing: a FIFO gains no end, a terminal no session.
    let opened = if flags & O_PATH == 0 { inode.open(&inode, flags) } else { None };
    let kind = match opened {
        Some(kind) => kind?,
        None => FileKind::Inode(inode),
    };
    let f = File::new(kind, flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC), path);
    ok(install(f, flags & O_CLOEXEC != 0)?)
}

/// open(dir, O_TMPFILE) (Linux's `do_tmpfile`, `vfs_tmpfile`): a regular file with no
/// name in directory `path`, which must be writable and searchable; its path is
/// "DIR/#INO" (d_tmpfile's name), shown with " (deleted)" until linkat names it.
fn do_tmpfile(cred: &Creds, start: Arc<dyn Inode>, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> SysResult {
    let dir = lookup_from(cred, crate::fs::root(), start, path, flags & O_NOFOLLOW == 0)?;
    if !dir.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    inode_permission(cred, &dir, MAY_WRITE | MAY_EXEC)?;
    let umask = current().fs().lock().umask;
    let linkable = flags & O_EXCL == 0;
    let inode = dir.tmpfile(S_IFREG | (mode & 0o7777 & !umask), cred.fsuid, cred.fsgid, linkable)?;
    let name = alloc::format!("{}/#{}", absolute_path(dirfd, path).trim_end_matches('/'), inode.metadata().ino);
    let f = File::new(FileKind::Inode(inode), flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC), name);
    ok(install(f, flags & O_CLOEXEC != 0)?)
}

pub fn sys_close(a: Args) -> SysResult {
    close_fd(a.i32(0))?;
    ok(0)
}

/// Closes `fd`, dropping its file out of the table's lock.
pub fn close_fd(fd: i32) -> KResult<()> {
    let e = current().files().lock().close(fd)?;
    drop(e);
    Ok(())
}

const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// close_range(first, last, flags) (Linux's `__close_range`): closes, or with
/// CLOSE_RANGE_CLOEXEC marks close-on-exec, every open descriptor from `first` to `last`;
/// CLOSE_RANGE_UNSHARE first gives the caller a table of its own.
pub fn sys_close_range(a: Args) -> SysResult {
    let (first, last, flags) = (a.u32(0), a.u32(1), a.u32(2));
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        crate::process::fork::ksys_unshare(crate::process::fork::CLONE_FILES)?;
    }
    let files = current().files();
    if flags & CLOSE_RANGE_CLOEXEC != 0 {
        files.lock().cloexec_range(first as usize, last as usize);
    } else {
        let closed = files.lock().close_range(first as usize, last as usize);
        drop(closed);
    }
    ok(0)
}

/// `struct stat` for x86_64.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Stat {
    st_dev: u64,
    st_ino: u64,
    st_nlink: u64,
    st_mode: u32,
    st_uid: u32,
    st_gid: u32,
    __pad0: u32,
    st_rdev: u64,
    st_size: i64,
    st_blksize: i64,
    st_blocks: i64,
    st_atime: i64,
    st_atime_nsec: i64,
    st_mtime: i64,
    st_mtime_nsec: i64,
    st_ctime: i64,
    st_ctime_nsec: i64,
    __unused: [i64; 3],
}
const _: () = assert!(core::mem::size_of::<Stat>() == 144);
crate::impl_pod!(Stat);

fn to_stat(m: &Metadata) -> Stat {
    Stat {
        st_dev: m.dev,
        st_ino: m.ino,
        st_nlink: m.nlink as u64,
        st_mode: m.mode,
        st_uid: m.uid,
        st_gid: m.gid,
        st_rdev: m.rdev,
        st_size: m.size as i64,
        st_blksize: m.blksize as i64,
        st_blocks: m.blocks as i64,
        st_atime: m.atime.sec,
        st_atime_nsec: m.atime.nsec,
        st_mtime: m.mtime.sec,
        st_mtime_nsec: m.mtime.nsec,
        st_ctime: m.ctime.sec,
        st_ctime_nsec: m.ctime.nsec,
        ..Default::default()
    }
}

pub fn sys_fstat(a: Args) -> SysResult {
    let m = get_file(a.i32(0))?.metadata();
    write_val(a.u(1), &to_stat(&m))?;
    ok(0)
}

pub fn sys_stat(a: Args, follow: bool) -> SysResult {
    let path = read_path(a.u(0))?;
    let m = resolve_at(AT_FDCWD, &path, follow)?.metadata();
    write_val(a.u(1), &to_stat(&m))?;
    ok(0)
}

/// The metadata a *at() stat call names (AT_EMPTY_PATH: the fd itself).
fn stat_target(dirfd: i32, path_va: u64, flags: u32) -> KResult<Metadata> {
    let path = crate::mm::usercopy::read_cstr(&crate::process::current_mm(), path_va, crate::fs::path::PATH_MAX - 1)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(ENOENT);
        }
        if dirfd == AT_FDCWD {
            // The directory out of the context's lock: its metadata lock is outside it.
            let cwd = current().fs().lock().cwd.clone();
            return Ok(cwd.metadata());
        }
        return Ok(get_file(dirfd)?.metadata());
    }
    Ok(resolve_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?.metadata())
}

pub fn sys_newfstatat(a: Args) -> SysResult {
    let flags = a.u32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800) != 0 {
        return Err(EINVAL);
    }
    let m = stat_target(a.i32(0), a.u(1), flags)?;
    write_val(a.u(2), &to_stat(&m))?;
    ok(0)
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct StatxTimestamp {
    tv_sec: i64,
    tv_nsec: u32,
    __reserved: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Statx {
    stx_mask: u32,
    stx_blksize: u32,
    stx_attributes: u64,
    stx_nlink: u32,
    stx_uid: u32,
    stx_gid: u32,
    stx_mode: u16,
    __spare0: u16,
    stx_ino: u64,
    stx_size: u64,
    stx_blocks: u64,
    stx_attributes_mask: u64,
    stx_atime: StatxTimestamp,
    stx_btime: StatxTimestamp,
    stx_ctime: StatxTimestamp,
    stx_mtime: StatxTimestamp,
    stx_rdev_major: u32,
    stx_rdev_minor: u32,
    stx_dev_major: u32,
    stx_dev_minor: u32,
    __spare2: [u64; 14],
}
const _: () = assert!(core::mem::size_of::<Statx>() == 256);
crate::impl_pod!(Statx);

const STATX_BASIC_STATS: u32 = 0x7ff;
const STATX__RESERVED: u32 = 0x8000_0000;
const AT_STATX_SYNC_TYPE: u32 = 0x6000;

pub fn sys_statx(a: Args) -> SysResult {
    let flags = a.u32(2);
    let mask = a.u32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & STATX__RESERVED != 0
    {
        return Err(EINVAL);
    }
    let m = stat_target(a.i32(0), a.u(1), flags)?;
    let ts = |t: Timespec| StatxTimestamp { tv_sec: t.sec, tv_nsec: t.nsec as u32, __reserved: 0 };
    let sx = Statx {
        stx_mask: STATX_BASIC_STATS,
        stx_blksize: m.blksize,
        stx_nlink: m.nlink,
        stx_uid: m.uid,
        stx_gid: m.gid,
        stx_mode: m.mode as u16,
        stx_ino: m.ino,
        stx_size: m.size,
        stx_blocks: m.blocks,
        stx_atime: ts(m.atime),
        stx_ctime: ts(m.ctime),
        stx_mtime: ts(m.mtime),
        stx_rdev_major: (m.rdev >> 8) as u32,
        stx_rdev_minor: (m.rdev & 0xff) as u32,
        stx_dev_major: (m.dev >> 8) as u32,
        stx_dev_minor: (m.dev & 0xff) as u32,
        ..Default::default()
    };
    write_val(a.u(4), &sx)?;
    ok(0)
}

pub fn sys_getdents64(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    let cap = a.usize(2);
    let inode = f.inode().ok_or(ENOTDIR)?.clone();
    if !inode.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    let mut out: Vec<u8> = Vec::new();
    let mut too_small = false;
    f.getdents(|e, next_off| {
        let reclen = (19 + e.name.len() + 1 + 7) & !7;
        if out.len() + reclen > cap {
            too_small = out.is_empty();
            return false;
        }
        let start = out.len();
        out.extend_from_slice(&e.ino.to_le_bytes());
        out.extend_from_slice(&(next_off as i64).to_le_bytes());
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        out.push(e.d_type);
        out.extend_from_slice(e.name.as_bytes());
        out.resize(start + reclen, 0);
        true
    })?;
    if too_small {
        return Err(EINVAL);
    }
    copy_to_user(a.u(1), &out)?;
    ok(out.len())
}

pub fn sys_dup(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    ok(install(f, false)?)
}

pub fn sys_dup2(a: Args) -> SysResult {
    let (old, new) = (a.i32(0), a.i32(1));
    let f = get_file(old)?;
    if old == new {
        return ok(new as usize);
    }
    let limit = nofile_limit();
    let prev = current().files().lock().set(new, f, false, limit)?;
    drop(prev);
    ok(new as usize)
}

pub fn sys_dup3(a: Args) -> SysResult {
    let (old, new, flags) = (a.i32(0), a.i32(1), a.u32(2));
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(EINVAL);
    }
    let f = get_file(old)?;
    let limit = nofile_limit();
    let prev = current().files().lock().set(new, f, flags & O_CLOEXEC != 0, limit)?;
    drop(prev);
    ok(new as usize)
}

pub fn sys_pipe2(fds_va: u64, flags: u32) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(EINVAL);
    }
    // Linux's create_pipe_files fails with ENFILE when it cannot get the pipe's inode.
    crate::mm::fail::slab_may_fail().map_err(|_| ENFILE)?;
    let c = cred();
    let pipe = Arc::new(crate::fs::pipe::Pipe::new(c.fsuid, c.fsgid));
    let status = flags & O_NONBLOCK;
    let r = File::new(FileKind::Pipe(pipe.clone(), 0), O_RDONLY | status, String::from("pipe:"));
    let w = File::new(FileKind::Pipe(pipe, 0), O_WRONLY | status, String::from("pipe:"));
    let cloexec = flags & O_CLOEXEC != 0;
    let limit = nofile_limit();
    // Ends taken back out on failure are dropped after the table's lock: a pipe's lock
    // is outside it.
    let files = current().files();
    let mut table = files.lock();
    // (`table` goes before `r` and `w` on an early return: locals drop in reverse order.)
    let rfd = table.alloc(r.clone(), cloexec, 0, limit)?;
    let wfd = match table.alloc(w.clone(), cloexec, 0, limit) {
        Ok(fd) => fd,
        Err(e) => {
            let back = table.close(rfd);
            drop(table);
            drop(back);
            return Err(e);
        }
    };
    drop(table);
    drop((r, w));
    if let Err(e) = write_val(fds_va, &[rfd, wfd]) {
        let mut table = files.lock();
        let back = (table.close(rfd), table.close(wfd));
        drop(table);
        drop(back);
        return Err(e);
    }
    ok(0)
}

/// memfd_create(name, flags) (Linux's mm/memfd.c): the name is read as strnlen_user
/// would, up to MFD_NAME_MAX_LEN bytes (EINVAL past them, EFAULT for a bad pointer).
pub fn sys_memfd_create(a: Args) -> SysResult {
    let cred = cred();
    let mm = crate::process::current_mm();
    let read_name = |max| crate::mm::usercopy::read_cstr(&mm, a.u(0), max);
    let memfd = crate::mm::memfd::memfd_create(a.u32(1), read_name, cred.fsuid, cred.fsgid)?;
    ok(install(memfd.file, memfd.cloexec)?)
}

/// eventfd2(initval, flags) (fs/eventfd.c `do_eventfd`); eventfd(initval) is flags 0.
pub fn sys_eventfd2(initval: u32, flags: u32) -> SysResult {
    use crate::fs::eventfd::{EventFd, EFD_SEMAPHORE};
    if flags & !(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(EINVAL);
    }
    // The eventfd context (kmalloc in do_eventfd): ENOMEM when it cannot be had.
    crate::mm::fail::slab_may_fail()?;
    let kind = FileKind::EventFd(EventFd::new(initval as u64, flags));
    let file = File::new(kind, O_RDWR | (flags & O_NONBLOCK), String::from("anon_inode:[eventfd]"));
    let fd = install(file, flags & O_CLOEXEC != 0)? as i32;
    ok(fd as usize)
}

const F_DUPFD: u32 = 0;
const F_GETFD: u32 = 1;
const F_SETFD: u32 = 2;
const F_GETFL: u32 = 3;
const F_SETFL: u32 = 4;
const F_GETLK: u32 = 5;
const F_SETLK: u32 = 6;
const F_SETLKW: u32 = 7;
const F_DUPFD_CLOEXEC: u32 = 1030;
const F_SETPIPE_SZ: u32 = 1031;
const F_GETPIPE_SZ: u32 = 1032;
const FD_CLOEXEC: u64 = 1;

pub fn sys_fcntl(a: Args) -> SysResult {
    let fd = a.i32(0);
    let t = current();
    let files = t.files();
    match a.u32(1) {
        cmd @ (F_DUPFD | F_DUPFD_CLOEXEC) => {
            let limit = nofile_limit();
            let min = a.u(2);
            if min >= limit as u64 {
                return Err(EINVAL);
            }
            let mut table = files.lock();
            let f = table.get(fd)?;
            ok(table.alloc(f, cmd == F_DUPFD_CLOEXEC, min as usize, limit)? as usize)
        }
        F_GETFD => ok(files.lock().entry(fd)?.cloexec as usize),
        F_SETFD => {
            files.lock().entry_mut(fd)?.cloexec = a.u(2) & FD_CLOEXEC != 0;
            ok(0)
        }
        F_GETFL => ok(files.lock().get(fd)?.flags() as usize),
        F_SETFL => {
            let f = files.lock().get(fd)?;
            let old = f.flags();
            // Turning O_NOATIME on or off needs the owner or CAP_FOWNER, as opening with it.
            if (old ^ a.u32(2)) & O_NOATIME != 0 && !inode_owner_or_capable(&cred(), &f.metadata()) {
                return Err(EPERM);
            }
            f.flags.store((old & !SETFL_MASK) | (a.u32(2) & SETFL_MASK), core::sync::atomic::Ordering::Relaxed);
            ok(0)
        }
        F_GETPIPE_SZ => {
            let f = files.lock().get(fd)?;
            match &f.kind {
                FileKind::Pipe(p, _) => ok(p.size()),
                _ => Err(EBADF),
            }
        }
        F_SETPIPE_SZ => {
            let f = files.lock().get(fd)?;
            match &f.kind {
                FileKind::Pipe(p, _) => {
                    let privileged = cred().capable(crate::process::cred::CAP_SYS_RESOURCE);
                    ok(p.set_size(a.u(2) & 0xffff_ffff, privileged)?)
                }
                _ => Err(EBADF),
            }
        }
        cmd @ (crate::mm::memfd::F_ADD_SEALS | crate::mm::memfd::F_GET_SEALS) => {
            let f = files.lock().get(fd)?;
            ok(crate::mm::memfd::memfd_fcntl(&f, cmd, a.u32(2))?)
        }
        F_GETLK | F_SETLK | F_SETLKW => {
            files.lock().get(fd)?;
            crate::log_once!("fcntl: record locks are not supported yet");
            Err(EINVAL)
        }
        _ => {
            files.lock().get(fd)?;
            Err(EINVAL)
        }
    }
}

const FIONREAD: u32 = 0x541b;
const FIONBIO: u32 = 0x5421;
const FIOCLEX: u32 = 0x5451;
const FIONCLEX: u32 = 0x5450;

pub fn sys_ioctl(a: Args) -> SysResult {
    let fd = a.i32(0);
    let f = get_file(fd)?;
    match a.u32(1) {
        FIOCLEX | FIONCLEX => {
            current().files().lock().entry_mut(fd)?.cloexec = a.u32(1) == FIOCLEX;
            ok(0)
        }
        FIONBIO => {
            let on: i32 = read_val(a.u(2))?;
            let old = f.flags();
            let new = if on != 0 { old | O_NONBLOCK } else { old & !O_NONBLOCK };
            f.flags.store(new, core::sync::atomic::Ordering::Relaxed);
            ok(0)
        }
        FIONREAD => match &f.kind {
            // Either end: both share the pipe's buffer (pipe_ioctl).
            FileKind::Pipe(p, _) => {
                write_val(a.u(2), &(p.available() as i32))?;
                ok(0)
            }
            FileKind::Inode(i) if i.metadata().is_regular() => {
                let left = i.metadata().size.saturating_sub(*f.offset.read());
                write_val(a.u(2), &(left.min(i32::MAX as u64) as i32))?;
                ok(0)
            }
            FileKind::Inode(i) => ok(i.ioctl(FIONREAD, a.u(2))?),
            FileKind::Tty(t) => ok(t.ioctl(FIONREAD, a.u(2))?),
            // SIOCINQ (`unix_ioctl`).
            FileKind::Socket(s) => {
                write_val(a.u(2), &(s.inq()? as i32))?;
                ok(0)
            }
            _ => Err(ENOTTY),
        },
        // SIOCOUTQ (`unix_ioctl`).
        0x5411 if matches!(f.kind, FileKind::Socket(_)) => {
            let FileKind::Socket(s) = &f.kind else { unreachable!() };
            write_val(a.u(2), &(s.outq() as i32))?;
            ok(0)
        }
        cmd => match &f.kind {
            FileKind::Inode(i) => ok(i.ioctl(cmd, a.u(2))?),
            FileKind::Tty(t) => ok(t.ioctl(cmd, a.u(2))?),
            _ => Err(ENOTTY),
        },
    }
}

pub fn sys_fsync(a: Args) -> SysResult {
    get_file(a.i32(0))?;
    ok(0)
}

/// fadvise64 (Linux's mm/fadvise.c): a file descriptor that is not a pipe, a length that
/// is not negative, a known advice. Every file here lives in memory with no backing
/// device, where Linux's `generic_fadvise` does nothing either.
pub fn sys_fadvise64(a: Args) -> SysResult {
    const POSIX_FADV_NOREUSE: i32 = 5;
    let f = get_file(a.i32(0))?;
    if f.flags() & O_PATH != 0 {
        return Err(EBADF);
    }
    if matches!(f.kind, FileKind::Pipe(..)) {
        return Err(ESPIPE);
    }
    if (a.u(2) as i64) < 0 || !(0..=POSIX_FADV_NOREUSE).contains(&a.i32(3)) {
        return Err(EINVAL);
    }
    ok(0)
}

pub fn sys_ftruncate(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    let len = a.u(1) as i64;
    if len < 0 {
        return Err(EINVAL);
    }
    let i = f.inode().ok_or(EINVAL)?;
    if !i.metadata().is_regular() || !f.writable() {
        return Err(EINVAL);
    }
    i.truncate(len as u64)?;
    ok(0)
}

pub fn sys_truncate(a: Args) -> SysResult {
    let path = read_path(a.u(0))?;
    let len = a.u(1) as i64;
    if len < 0 {
        return Err(EINVAL);
    }
    let cred = cred();
    let i = resolve_at_as(&cred, AT_FDCWD, &path, true)?;
    let m = i.metadata();
    if m.is_dir() {
        return Err(EISDIR);
    }
    if !m.is_regular() {
        return Err(EINVAL);
    }
    generic_permission(&cred, &m, MAY_WRITE)?;
    i.truncate(len as u64)?;
    ok(0)
}

pub fn sys_getcwd(a: Args) -> SysResult {
    let path = current().fs().lock().cwd_path.clone();
    let bytes = path.as_bytes();
    if a.usize(1) < bytes.len() + 1 {
        return Err(ERANGE);
    }
    copy_to_user(a.u(0), bytes)?;
    copy_to_user(super::uoff(a.u(0), bytes.len() as u64)?, &[0])?;
    ok(bytes.len() + 1)
}

/// Joins `rel` onto `base` and normalizes `.`/`..` (the cwd's name).
fn join_path(base: &str, rel: &[u8]) -> String {
    let mut parts: Vec<String> = if rel.first() == Some(&b'/') {
        Vec::new()
    } else {
        base.split('/').filter(|s| !s.is_empty()).map(String::from).collect()
    };
    for c in rel.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        match c {
            b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(String::from_utf8_lossy(c).into_owned()),
        }
    }
    let mut s = String::from("/");
    s.push_str(&parts.join("/"));
    s
}

pub fn sys_chdir(a: Args) -> SysResult {
    let path = read_path(a.u(0))?;
    let cred = cred();
    let i = resolve_at_as(&cred, AT_FDCWD, &path, true)?;
    if !i.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    inode_permission(&cred, &i, MAY_EXEC)?;
    let fs = current().fs();
    let mut fs = fs.lock();
    fs.cwd_path = join_path(&fs.cwd_path, &path);
    fs.cwd = i;
    ok(0)
}

pub fn sys_fchdir(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    let i = f.inode().ok_or(ENOTDIR)?.clone();
    if !i.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    inode_permission(&cred(), &i, MAY_EXEC)?;
    let fs = current().fs();
    let mut fs = fs.lock();
    fs.cwd_path = join_path("/", f.path.as_bytes());
    fs.cwd = i;
    ok(0)
}

pub fn sys_mkdirat(dirfd: i32, path_va: u64, mode: u32) -> SysResult {
    let path = read_path(path_va)?;
    let t = current();
    let cred = cred();
    let (dir, name) = parent_at(&cred, dirfd, &path)?;
    may_create_entry(&cred, &dir, &name)?;
    let umask = t.fs().lock().umask;
    dir.create(&name, S_IFDIR | (mode & 0o7777 & !umask), cred.fsuid, cred.fsgid)?;
    ok(0)
}

/// mknodat(dirfd, path, mode, dev) (Linux's `do_mknodat`): a regular file (type 0 or
/// S_IFREG), a FIFO, a socket's name, or, with CAP_MKNOD, a device node numbered `dev`
/// (`new_encode_dev` form; char 0:0 is a whiteout, which needs no capability). A
/// directory is EPERM, another type EINVAL, both before the path is looked at.
pub fn sys_mknodat(dirfd: i32, path_va: u64, mode: u32, dev: u32) -> SysResult {
    let mode = mode & 0xffff;
    match mode & S_IFMT {
        0 | S_IFREG | S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => {}
        S_IFDIR => return Err(EPERM),
        _ => return Err(EINVAL),
    }
    let path = read_path(path_va)?;
    let t = current();
    let cred = cred();
    let (dir, name) = parent_at(&cred, dirfd, &path)?;
    if name.is_empty() || name == "." || name == ".." || dir.lookup(&name).is_ok() {
        return Err(EEXIST);
    }
    // A name with a trailing slash asks for a directory (`filename_create`).
    if path.last() == Some(&b'/') {
        return Err(ENOENT);
    }
    let perm = mode & 0o7777 & !t.fs().lock().umask;
    may_create(&cred, &dir)?;
    let (mode, rdev) = match mode & S_IFMT {
        0 | S_IFREG => (S_IFREG | perm, 0),
        ty @ (S_IFCHR | S_IFBLK) => {
            let whiteout = ty == S_IFCHR && dev == 0;
            if !whiteout && !cred.capable(crate::process::cred::CAP_MKNOD) {
                return Err(EPERM);
            }
            (ty | perm, u64::from(dev))
        }
        ty => (ty | perm, 0),
    };
    dir.mknod(&name, mode, rdev, cred.fsuid, cred.fsgid)?;
    ok(0)
}

pub fn sys_unlinkat(dirfd: i32, path_va: u64, flags: u32) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(EINVAL);
    }
    let path = read_path(path_va)?;
    let cred = cred();
    let (dir, name) = parent_at(&cred, dirfd, &path)?;
    let rmdir = flags & AT_REMOVEDIR != 0;
    // A final ".", ".." or "/" is refused by name (do_rmdir's and do_unlinkat's last_type).
    if rmdir {
        match name.as_str() {
            "" => return Err(EBUSY),
            "." => return Err(EINVAL),
            ".." => return Err(ENOTEMPTY),
            _ => {}
        }
    } else if matches!(name.as_str(), "" | "." | "..") {
        return Err(EISDIR);
    } else if path.last() == Some(&b'/') {
        // unlink("dir/") names a directory
        let target = dir.lookup(&name)?;
        return Err(if target.metadata().is_dir() { EISDIR } else { ENOTDIR });
    }
    let victim = dir.lookup(&name)?;
    may_delete(&cred, &dir, &victim.metadata(), rmdir)?;
    dir.unlink(&name, rmdir)?;
    ok(0)
}

pub fn sys_symlinkat(target_va: u64, dirfd: i32, path_va: u64) -> SysResult {
    let target = read_path(target_va)?;
    let path = read_path(path_va)?;
    let cred = cred();
    let (dir, name) = parent_at(&cred, dirfd, &path)?;
    may_create_entry(&cred, &dir, &name)?;
    dir.symlink(&name, &target)?;
    ok(0)
}

pub fn sys_readlinkat(dirfd: i32, path_va: u64, buf: u64, size: usize) -> SysResult {
    if (size as isize) <= 0 {
        return Err(EINVAL);
    }
    let path = read_path(path_va)?;
    let i = resolve_at(dirfd, &path, false)?;
    let target = i.readlink()?;
    let n = target.len().min(size);
    copy_to_user(buf, &target[..n])?;
    ok(n)
}

pub fn sys_fchmodat(dirfd: i32, path_va: u64, mode: u32) -> SysResult {
    let path = read_path(path_va)?;
    chmod(&resolve_at(dirfd, &path, true)?, mode)?;
    ok(0)
}

pub fn sys_fchmod(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    chmod(f.inode().ok_or(EBADF)?, a.u32(1))?;
    ok(0)
}

pub fn sys_umask(a: Args) -> SysResult {
    let fs = current().fs();
    let mut fs = fs.lock();
    let old = fs.umask;
    fs.umask = a.u32(0) & 0o777;
    ok(old as usize)
}

pub fn sys_access(a: Args) -> SysResult {
    sys_faccessat(AT_FDCWD, a.u(0), a.u32(1), 0)
}

pub fn sys_faccessat(dirfd: i32, path_va: u64, mode: u32, flags: u32) -> SysResult {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let path = read_path(path_va)?;
    // access() checks for the real ids (the whole walk included); AT_EACCESS for
    // the caller's own (fs) ids.
    let cred = if flags & AT_EACCESS != 0 { cred() } else { cred().access_override() };
    let inode = resolve_at_as(&cred, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    inode_permission(&cred, &inode, mode)?;
    ok(0)
}

#[repr(C)]
#[derive(Clone, Copy)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}
crate::impl_pod!(PollFd);

/// Checks every pollfd once; returns how many are ready (revents written back).
fn poll_once(fds: &mut [PollFd]) -> usize {
    let files = current().files();
    let mut ready = 0;
    for p in fds.iter_mut() {
        p.revents = 0;
        if p.fd < 0 {
            continue;
        }
        let f = files.lock().get(p.fd);
        let r = match f {
            Err(_) => POLLNVAL,
            Ok(f) => f.poll() & (p.events as u16 | POLLERR | POLLHUP),
        };
        p.revents = r as i16;
        if r != 0 {
            ready += 1;
        }
    }
    ready
}

fn do_poll(fds_va: u64, nfds: usize, timeout_ns: Option<u64>) -> SysResult {
    if nfds > nofile_limit().max(1024) {
        return Err(EINVAL);
    }
    let mut fds = crate::mm::fail::try_vec_filled(PollFd { fd: 0, events: 0, revents: 0 }, nfds)?;
    for (i, p) in fds.iter_mut().enumerate() {
        *p = read_val(super::uoff(fds_va, (i * 8) as u64)?)?;
    }
    let deadline = timeout_ns.map(|t| crate::arch::apic::uptime_ns().saturating_add(t));
    // Asleep on every watched file's queues; a readiness change wakes it.
    let files = crate::fs::select::files_of(fds.iter().map(|p| p.fd).filter(|&fd| fd >= 0));
    let ready = crate::fs::select::poll_wait(&files, deadline, || {
        let n = poll_once(&mut fds);
        (n > 0).then_some(n)
    })?
    .unwrap_or(0);
    for (i, p) in fds.iter().enumerate() {
        write_val(super::uoff(fds_va, (i * 8) as u64 + 6)?, &p.revents)?;
    }
    ok(ready)
}

pub fn sys_poll(a: Args) -> SysResult {
    let t = a.i32(2);
    do_poll(a.u(0), a.usize(1), if t < 0 { None } else { Some(t as u64 * 1_000_000) })
}

pub fn sys_ppoll(a: Args) -> SysResult {
    let timeout = if a.u(2) == 0 { None } else { Some(super::time::read_timespec(a.u(2))?) };
    super::signal::with_temp_sigmask(a.u(3), a.usize(4), || do_poll(a.u(0), a.usize(1), timeout))
}

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;
const RENAME_WHITEOUT: u32 = 4;

pub fn sys_renameat2(olddirfd: i32, old_va: u64, newdirfd: i32, new_va: u64, flags: u32) -> SysResult {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || flags & (RENAME_NOREPLACE | RENAME_EXCHANGE) == (RENAME_NOREPLACE | RENAME_EXCHANGE)
    {
        return Err(EINVAL);
    }
    if flags & (RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
        crate::log_once!("renameat2: RENAME_EXCHANGE and RENAME_WHITEOUT are not supported yet");
        return Err(EINVAL);
    }
    let old = read_path(old_va)?;
    let new = read_path(new_va)?;
    let cred = cred();
    let (odir, oname) = parent_at(&cred, olddirfd, &old)?;
    let (ndir, nname) = parent_at(&cred, newdirfd, &new)?;
    // A final ".", ".." or "/" is refused by name first (do_renameat2's LAST_NORM checks).
    let plain = |n: &str| !n.is_empty() && n != "." && n != "..";
    if !plain(&oname) {
        return Err(EBUSY);
    }
    if !plain(&nname) {
        return Err(if flags & RENAME_NOREPLACE != 0 { EEXIST } else { EBUSY });
    }
    if flags & RENAME_NOREPLACE != 0 && ndir.lookup(&nname).is_ok() {
        return Err(EEXIST);
    }
    // A trailing slash demands directories on both sides.
    if (old.last() == Some(&b'/') || new.last() == Some(&b'/')) && !odir.lookup(&oname)?.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    may_rename(&cred, &odir, &oname, &ndir, &nname)?;
    odir.rename(&oname, &ndir, &nname)?;
    ok(0)
}

/// vfs_rename's permission checks: removing the source from its directory,
/// creating or replacing the target in its directory, and write permission on a
/// directory that moves to another parent (its `..` changes). Two names of one
/// inode need none: the rename does nothing.
fn may_rename(cred: &Creds, odir: &Arc<dyn Inode>, oname: &str, ndir: &Arc<dyn Inode>, nname: &str) -> KResult<()> {
    let source = odir.lookup(oname)?;
    let target = ndir.lookup(nname).ok();
    if target.as_ref().is_some_and(|t| same_inode(t, &source)) {
        return Ok(());
    }
    let sm = source.metadata();
    may_delete(cred, odir, &sm, sm.is_dir())?;
    match &target {
        None => may_create(cred, ndir)?,
        Some(t) => may_delete(cred, ndir, &t.metadata(), sm.is_dir())?,
    }
    if sm.is_dir() && !same_inode(odir, ndir) {
        inode_permission(cred, &source, MAY_WRITE)?;
    }
    Ok(())
}

/// sendfile(out, in, offset*, count): copies through a kernel buffer. With an
/// offset pointer the input file's position is left alone and the pointer is
/// advanced instead.
pub fn sys_sendfile(a: Args) -> SysResult {
    let (out_fd, in_fd, off_va, count) = (a.i32(0), a.i32(1), a.u(2), a.usize(3).min(MAX_RW_COUNT));
    let out = get_file(out_fd)?;
    let inp = get_file(in_fd)?;
    if !inp.readable() || !out.writable() {
        return Err(EBADF);
    }
    let mut offset = if off_va != 0 {
        let o: i64 = read_val(off_va)?;
        if o < 0 {
            return Err(EINVAL);
        }
        Some(o as u64)
    } else {
        None
    };
    let mut buf = crate::mm::fail::try_vec_filled(0u8, count.min(CHUNK))?;
    let mut done = 0;
    while done < count {
        let want = (count - done).min(CHUNK);
        let r = match offset {
            Some(o) => inp.pread(&mut buf[..want], o),
            None => inp.read(&mut buf[..want]),
        };
        let n = match r {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let w = match out.write(&buf[..n]) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w;
        if let Some(o) = offset.as_mut() {
            *o += w as u64;
        }
        if w < n || n < want || !next_chunk() {
            break;
        }
    }
    if let Some(o) = offset {
        write_val(off_va, &(o as i64))?;
    }
    ok(done)
}

/// copy_file_range(fd_in, off_in, fd_out, off_out, len, flags) (Linux 6.1's
/// `vfs_copy_file_range` with `generic_copy_file_checks`): regular files only, in one
/// filesystem (EXDEV otherwise: the caller falls back to read and write), no overlap within
/// one file, shortened to the input's end; the bytes go through the page cache as a
/// splice would move them. Each offset is the pointer's, updated, or the file's position.
pub fn sys_copy_file_range(a: Args) -> SysResult {
    let (off_in_va, off_out_va, len, flags) = (a.u(1), a.u(3), a.usize(4), a.u32(5));
    let fin = get_file(a.i32(0))?;
    let fout = get_file(a.i32(2))?;
    if fin.flags() & O_PATH != 0 || fout.flags() & O_PATH != 0 {
        return Err(EBADF);
    }
    let pos = |f: &File, va: u64| -> KResult<i64> {
        if va != 0 {
            read_val::<i64>(va)
        } else {
            // `f_pos` as it is: a pipe's is 0 (its kind is refused below).
            Ok(f.seek(0, SEEK_CUR).unwrap_or(0) as i64)
        }
    };
    let (pos_in, pos_out) = (pos(&fin, off_in_va)?, pos(&fout, off_out_va)?);
    if flags != 0 {
        return Err(EINVAL);
    }
    // generic_file_rw_checks.
    let (mi, mo) = (fin.metadata(), fout.metadata());
    if mi.is_dir() || mo.is_dir() {
        return Err(EISDIR);
    }
    if !mi.is_regular() || !mo.is_regular() {
        return Err(EINVAL);
    }
    if !fin.readable() || !fout.writable() || fout.flags() & O_APPEND != 0 {
        return Err(EBADF);
    }
    if mi.dev != mo.dev {
        return Err(EXDEV);
    }
    let mut count = len as u64;
    if (pos_in as u64).checked_add(count).is_none() || (pos_out as u64).checked_add(count).is_none() {
        return Err(EOVERFLOW);
    }
    // rw_verify_area, then the copy shortened to the input's end.
    if pos_in < 0 || pos_out < 0 {
        return Err(EINVAL);
    }
    count = count.min(mi.size.saturating_sub(pos_in as u64));
    if mi.ino == mo.ino && (pos_out as u64) + count > pos_in as u64 && (pos_out as u64) < pos_in as u64 + count {
        return Err(EINVAL);
    }
    let count = (count as usize).min(MAX_RW_COUNT);
    let mut buf = crate::mm::fail::try_vec_filled(0u8, count.clamp(1, CHUNK))?;
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(CHUNK);
        let r = fin.pread(&mut buf[..want], pos_in as u64 + done as u64).and_then(|n| {
            if n == 0 {
                Ok(0)
            } else {
                fout.pwrite(&buf[..n], pos_out as u64 + done as u64)
            }
        });
        match r {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        if !next_chunk() {
            break;
        }
    }
    if done > 0 {
        let (new_in, new_out) = (pos_in + done as i64, pos_out + done as i64);
        if off_in_va != 0 {
            write_val(off_in_va, &new_in)?;
        } else {
            fin.seek(new_in, SEEK_SET)?;
        }
        if off_out_va != 0 {
            write_val(off_out_va, &new_out)?;
        } else {
            fout.seek(new_out, SEEK_SET)?;
        }
    }
    ok(done)
}

pub fn sys_fallocate(a: Args) -> SysResult {
    let (fd, mode, offset, len) = (a.i32(0), a.u32(1), a.u(2) as i64, a.u(3) as i64);
    const KEEP_SIZE: u32 = 1;
    const PUNCH_HOLE: u32 = 2;
    if offset < 0 || len <= 0 {
        return Err(EINVAL);
    }
    if mode & PUNCH_HOLE != 0 && mode & KEEP_SIZE == 0 {
        return Err(ENOTSUP);
    }
    let f = get_file(fd)?;
    if !f.writable() {
        return Err(EBADF);
    }
    let inode = match &f.kind {
        FileKind::Inode(i) => i.clone(),
        _ => return Err(ESPIPE),
    };
    let m = inode.metadata();
    if m.is_dir() {
        return Err(EISDIR);
    }
    if !m.is_regular() {
        return Err(ENODEV);
    }
    inode.fallocate(mode, offset as u64, len as u64)?;
    ok(0)
}

const _: () = assert!(core::mem::size_of::<Statfs>() == 120);
crate::impl_pod!(Statfs);

const PROC_SUPER_MAGIC: u64 = 0x9fa0;

/// What statfs reports: the figures of the inode's filesystem where it gives them
/// (`Inode::statfs`: every tmpfs instance, and each filesystem that says), else procfs's
/// for procfs and the boot tmpfs's for the rest (devices, pipes).
fn statfs_of(inode: &Arc<dyn Inode>) -> Statfs {
    inode.statfs().unwrap_or_else(|| {
        if inode.metadata().dev == 0x4 {
            Statfs::simple(PROC_SUPER_MAGIC)
        } else {
            crate::fs::tmpfs::boot_statfs()
        }
    })
}

pub fn sys_statfs(a: Args) -> SysResult {
    let path = read_path(a.u(0))?;
    let inode = resolve_at(AT_FDCWD, &path, true)?;
    write_val(a.u(1), &statfs_of(&inode))?;
    ok(0)
}

pub fn sys_fstatfs(a: Args) -> SysResult {
    let inode = file_inode(&*get_file(a.i32(0))?);
    write_val(a.u(1), &statfs_of(&inode))?;
    ok(0)
}

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o010;

/// Whether the caller may keep S_ISGID on a file of group `gid`
/// (`in_group_or_capable`): a member of the group, or CAP_FSETID.
fn in_group_or_capable(cred: &Creds, gid: u32) -> bool {
    cred.in_group_p(gid) || cred.capable(CAP_FSETID)
}

/// chmod (`chmod_common`, `setattr_prepare`): the owner or CAP_FOWNER (else
/// EPERM); S_ISGID is dropped when the caller may not keep it.
fn chmod(inode: &Arc<dyn Inode>, mode: u32) -> KResult<()> {
    let cred = cred();
    let m = inode.metadata();
    if !inode_owner_or_capable(&cred, &m) {
        return Err(EPERM);
    }
    let mut mode = mode & 0o7777;
    if !in_group_or_capable(&cred, m.gid) {
        mode &= !S_ISGID;
    }
    inode.set_attr(&mut |m| {
        m.mode = (m.mode & S_IFMT) | mode;
        m.ctime = crate::time::realtime();
    })
}

/// chown family (`chown_common`, `chown_ok`, `chgrp_ok`): -1 keeps a value; only
/// CAP_CHOWN gives a file away; its owner may set the group to one it is in (or
/// leave it); a non-directory loses S_ISUID, and S_ISGID when group-executable or
/// when the caller may not keep it, a mode change that needs the owner or
/// CAP_FOWNER.
fn chown(inode: &Arc<dyn Inode>, uid: u32, gid: u32) -> KResult<()> {
    let cred = cred();
    let m = inode.metadata();
    let owner = cred.fsuid == m.uid;
    if uid != u32::MAX && !(owner && uid == m.uid) && !cred.capable(CAP_CHOWN) {
        return Err(EPERM);
    }
    if gid != u32::MAX && !(owner && (gid == m.gid || cred.in_group_p(gid))) && !cred.capable(CAP_CHOWN) {
        return Err(EPERM);
    }
    let mut kill = 0;
    if !m.is_dir() {
        kill |= m.mode & S_ISUID;
        if m.mode & S_IXGRP != 0 || !in_group_or_capable(&cred, m.gid) {
            kill |= m.mode & S_ISGID;
        }
    }
    if kill != 0 && !inode_owner_or_capable(&cred, &m) {
        return Err(EPERM);
    }
    inode.set_attr(&mut |m| {
        if uid != u32::MAX {
            m.uid = uid;
        }
        if gid != u32::MAX {
            m.gid = gid;
        }
        m.mode &= !kill;
        m.ctime = crate::time::realtime();
    })
}

pub fn sys_fchownat(dirfd: i32, path_va: u64, uid: u32, gid: u32, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let path = crate::mm::usercopy::read_cstr(&crate::process::current_mm(), path_va, crate::fs::path::PATH_MAX - 1)?;
    let inode = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(ENOENT);
        }
        get_file(dirfd)?.inode().ok_or(EBADF)?.clone()
    } else {
        resolve_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    chown(&inode, uid, gid)?;
    ok(0)
}

pub fn sys_fchown(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    chown(f.inode().ok_or(EBADF)?, a.u32(1), a.u32(2))?;
    ok(0)
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// utimensat: NULL times mean now; UTIME_NOW/UTIME_OMIT per field.
pub fn sys_utimensat(a: Args) -> SysResult {
    let (dirfd, path_va, times_va, flags) = (a.i32(0), a.u(1), a.u(2), a.u32(3));
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let now = crate::time::realtime();
    let times = if times_va == 0 {
        [[UTIME_NOW, UTIME_NOW]; 2]
    } else {
        let t: [[i64; 2]; 2] = read_val(times_va)?;
        for ts in t {
            if ts[1] != UTIME_NOW && ts[1] != UTIME_OMIT && !(0..1_000_000_000).contains(&ts[1]) {
                return Err(EINVAL);
            }
        }
        [[t[0][0], t[0][1]], [t[1][0], t[1][1]]]
    };
    let inode = if path_va == 0 {
        get_file(dirfd)?.inode().ok_or(EBADF)?.clone()
    } else {
        let path = read_path(path_va)?;
        resolve_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    // Setting explicit times needs the owner or CAP_FOWNER (EPERM); setting both
    // to now is also open to whoever may write the file (`may_setattr`).
    let cred = cred();
    let m = inode.metadata();
    let explicit = times.iter().any(|t| t[1] != UTIME_NOW && t[1] != UTIME_OMIT);
    let touch = times.iter().all(|t| t[1] == UTIME_NOW);
    if (explicit || touch) && !inode_owner_or_capable(&cred, &m) {
        if explicit {
            return Err(EPERM);
        }
        generic_permission(&cred, &m, MAY_WRITE)?;
    }
    let to_ts = |t: [i64; 2]| if t[1] == UTIME_NOW { now } else { Timespec { sec: t[0], nsec: t[1] } };
    inode.set_attr(&mut |m| {
        if times[0][1] != UTIME_OMIT {
            m.atime = to_ts(times[0]);
        }
        if times[1][1] != UTIME_OMIT {
            m.mtime = to_ts(times[1]);
        }
        m.ctime = now;
    })?;
    ok(0)
}

pub fn sys_linkat(olddirfd: i32, old_va: u64, newdirfd: i32, new_va: u64, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let cred = cred();
    let old = crate::mm::usercopy::read_cstr(&crate::process::current_mm(), old_va, crate::fs::path::PATH_MAX - 1)?;
    let new = read_path(new_va)?;
    // AT_EMPTY_PATH links the descriptor's own file, for CAP_DAC_READ_SEARCH only (a
    // descriptor passed in must not give its file a name); otherwise an empty path is
    // ENOENT.
    let target = if old.is_empty() {
        if flags & AT_EMPTY_PATH == 0 || !cred.capable(CAP_DAC_READ_SEARCH) {
            return Err(ENOENT);
        }
        if olddirfd == AT_FDCWD {
            current().fs().lock().cwd.clone()
        } else {
            crate::fs::file::file_inode(&*get_file(olddirfd)?)
        }
    } else {
        resolve_at_as(&cred, olddirfd, &old, flags & AT_SYMLINK_FOLLOW != 0)?
    };
    let (dir, name) = parent_at(&cred, newdirfd, &new)?;
    may_create_entry(&cred, &dir, &name)?;
    if target.metadata().is_dir() {
        return Err(EPERM);
    }
    dir.link(&name, &target)?;
    ok(0)
}

/// select/pselect6 over the poll machinery: fd_set bitmaps in, ready bitmaps out.
pub fn do_select(nfds: i32, rd: u64, wr: u64, ex: u64, timeout_ns: Option<u64>) -> SysResult {
    if nfds < 0 || nfds as usize > nofile_limit().max(1024) {
        return Err(EINVAL);
    }
    let n = nfds as usize;
    let words = n.div_ceil(64);
    let read_set = |va: u64| -> KResult<Vec<u64>> {
        let mut v = crate::mm::fail::try_vec_filled(0u64, words)?;
        if va != 0 {
            for (i, w) in v.iter_mut().enumerate() {
                *w = read_val(super::uoff(va, 8 * i as u64)?)?;
            }
        }
        Ok(v)
    };
    let (r, w, e) = (read_set(rd)?, read_set(wr)?, read_set(ex)?);
    let bit = |s: &[u64], fd: usize| s[fd / 64] >> (fd % 64) & 1 != 0;
    let mut fds = Vec::new();
    for fd in 0..n {
        let mut events = 0i16;
        if bit(&r, fd) {
            events |= (POLLIN) as i16;
        }
        if bit(&w, fd) {
            events |= POLLOUT as i16;
        }
        if bit(&e, fd) {
            events |= POLLPRI as i16;
        }
        if events != 0 {
            crate::mm::fail::try_reserve(&mut fds, 1)?;
            fds.push(PollFd { fd: fd as i32, events, revents: 0 });
        }
    }
    let deadline = timeout_ns.map(|t| crate::arch::apic::uptime_ns().saturating_add(t));
    let files = crate::fs::select::files_of(fds.iter().map(|p| p.fd));
    let bad = crate::fs::select::poll_wait(&files, deadline, || {
        poll_once(&mut fds);
        let bad = fds.iter().any(|p| p.revents as u16 & POLLNVAL != 0);
        (bad || fds.iter().any(|p| p.revents != 0)).then_some(bad)
    })?;
    if bad == Some(true) {
        return Err(EBADF);
    }
    let filled = || crate::mm::fail::try_vec_filled(0u64, words);
    let (mut ro, mut wo, mut eo) = (filled()?, filled()?, filled()?);
    let mut count = 0;
    for p in &fds {
        let (fd, rev) = (p.fd as usize, p.revents as u16);
        for (set, mask, out) in
            [(&r, POLLIN | POLLHUP | POLLERR, &mut ro), (&w, POLLOUT | POLLERR, &mut wo), (&e, POLLPRI, &mut eo)]
        {
            if bit(set, fd) && rev & mask != 0 {
                out[fd / 64] |= 1 << (fd % 64);
                count += 1;
            }
        }
    }
    for (va, set) in [(rd, &ro), (wr, &wo), (ex, &eo)] {
        if va != 0 {
            for (i, word) in set.iter().enumerate() {
                write_val(super::uoff(va, 8 * i as u64)?, word)?;
            }
        }
    }
    ok(count)
}

pub fn sys_select(a: Args) -> SysResult {
    let timeout = if a.u(4) == 0 {
        None
    } else {
        let tv: [i64; 2] = read_val(a.u(4))?;
        if tv[0] < 0 || !(0..1_000_000).contains(&tv[1]) {
            return Err(EINVAL);
        }
        Some((tv[0] as u64).saturating_mul(1_000_000_000).saturating_add(tv[1] as u64 * 1000))
    };
    do_select(a.i32(0), a.u(1), a.u(2), a.u(3), timeout)
}

/// pselect6: the sixth argument points at `{ const sigset_t *ss; size_t ss_len; }`.
pub fn sys_pselect6(a: Args) -> SysResult {
    let timeout = if a.u(4) == 0 { None } else { Some(super::time::read_timespec(a.u(4))?) };
    let (mask_va, mask_len) = if a.u(5) == 0 {
        (0, 0)
    } else {
        let m: [u64; 2] = read_val(a.u(5))?;
        (m[0], m[1] as usize)
    };
    super::signal::with_temp_sigmask(mask_va, mask_len, || do_select(a.i32(0), a.u(1), a.u(2), a.u(3), timeout))
}

pub fn sys_flock(a: Args) -> SysResult {
    let f = get_file(a.i32(0))?;
    crate::fs::flock::flock(&f, a.u32(1))?;
    ok(0)
}

/// `copy_mount_string`: a string argument of mount(2), absent if NULL; longer than
/// PATH_MAX is EINVAL (`strndup_user`).
fn copy_mount_string(va: u64) -> KResult<Option<String>> {
    if va == 0 {
        return Ok(None);
    }
    let mm = crate::process::current_mm();
    let s = crate::mm::usercopy::read_cstr(&mm, va, crate::fs::path::PATH_MAX - 1).map_err(|e| {
        if e == ENAMETOOLONG {
            EINVAL
        } else {
            e
        }
    })?;
    Ok(Some(String::from_utf8_lossy(&s).into_owned()))
}

/// `copy_mount_options`: up to a page of mount's data, as far as it can be read (EFAULT
/// if not at all), up to its NUL; the page's last byte is always cut (`path_mount`).
fn copy_mount_options(va: u64) -> KResult<Option<String>> {
    if va == 0 {
        return Ok(None);
    }
    let page = crate::mm::PAGE_SIZE as usize;
    let mut buf = crate::mm::fail::try_vec_filled(0u8, page)?;
    let mut done = 0;
    while done < page {
        let at = super::uoff(va, done as u64)?;
        let n = (page - (at as usize % page)).min(page - done);
        if super::copy_from_user(at, &mut buf[done..done + n]).is_err() {
            break;
        }
        done += n;
    }
    if done == 0 {
        return Err(EFAULT);
    }
    let len = buf[..done.min(page - 1)].iter().position(|&b| b == 0).unwrap_or(done.min(page - 1));
    Ok(Some(String::from_utf8_lossy(&buf[..len]).into_owned()))
}

/// mount(2) (`do_mount`): the type, source and data copied in, the target looked up
/// (following symlinks), then `path_mount`.
pub fn sys_mount(a: Args) -> SysResult {
    let fstype = copy_mount_string(a.u(2))?;
    let source = copy_mount_string(a.u(0))?;
    let data = copy_mount_options(a.u(4))?;
    let path = read_path(a.u(1))?;
    let target = resolve_at(AT_FDCWD, &path, true)?;
    let target_path = join_path(&current().fs().lock().cwd_path.clone(), &path);
    let req = crate::fs::mount::MountRequest { source, target, target_path, fstype, flags: a.u(3), data };
    crate::fs::mount::path_mount(&cred(), req)?;
    ok(0)
}

/// umount2(2) (`ksys_umount`): unknown flags are EINVAL before the target is looked up
/// (following a final symlink unless UMOUNT_NOFOLLOW), then `path_umount`.
pub fn sys_umount2(a: Args) -> SysResult {
    use crate::fs::mount::{MNT_DETACH, MNT_EXPIRE, MNT_FORCE, UMOUNT_NOFOLLOW};
    let flags = a.u32(1);
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return Err(EINVAL);
    }
    let path = read_path(a.u(0))?;
    let target = resolve_at(AT_FDCWD, &path, flags & UMOUNT_NOFOLLOW == 0)?;
    crate::fs::mount::path_umount(&cred(), &target, flags)?;
    ok(0)
}
