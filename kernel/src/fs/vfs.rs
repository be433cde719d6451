//! The inode interface every filesystem implements. Names follow Linux's
//! `inode_operations`/`file_operations` where they exist.

use crate::errno::*;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// d_type values of getdents64.
pub const DT_FIFO: u8 = 1;
pub const DT_CHR: u8 = 2;
pub const DT_DIR: u8 = 4;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;

#[derive(Clone, Copy, Debug, Default)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u32,
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Metadata {
    /// A new inode's: one link, 4 KiB blocks, every time now.
    pub fn new_inode(dev: u64, ino: u64, mode: u32, uid: u32, gid: u32) -> Metadata {
        let now = crate::time::realtime();
        Metadata {
            dev,
            ino,
            mode,
            nlink: 1,
            uid,
            gid,
            blksize: 4096,
            atime: now,
            mtime: now,
            ctime: now,
            ..Default::default()
        }
    }

    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    pub fn is_regular(&self) -> bool {
        self.file_type() == S_IFREG
    }
    pub fn d_type(&self) -> u8 {
        match self.file_type() {
            S_IFDIR => DT_DIR,
            S_IFREG => DT_REG,
            S_IFCHR => DT_CHR,
            S_IFIFO => DT_FIFO,
            S_IFLNK => DT_LNK,
            _ => 0,
        }
    }
}

pub struct DirEntry {
    pub name: String,
    pub ino: u64,
    pub d_type: u8,
}

/// Readiness bits of `poll` (POLLIN, POLLOUT, ...).
pub const POLLIN: u16 = 0x001;
pub const POLLPRI: u16 = 0x002;
pub const POLLOUT: u16 = 0x004;
pub const POLLERR: u16 = 0x008;
pub const POLLHUP: u16 = 0x010;
pub const POLLNVAL: u16 = 0x020;

/// `struct statfs` as statfs(2) returns it (x86_64; Linux's `kstatfs` copied out).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

impl Statfs {
    /// Linux's `simple_statfs`: the magic, page-sized blocks, NAME_MAX, no counts (the
    /// statfs of a filesystem that keeps nothing to count, such as msharefs).
    pub fn simple(magic: u64) -> Statfs {
        Statfs { f_type: magic as i64, f_bsize: 4096, f_namelen: 255, f_frsize: 4096, ..Default::default() }
    }
}

pub trait Inode: Send + Sync + Any {
    fn metadata(&self) -> Metadata;
    fn as_any(&self) -> &dyn Any;

    /// May `c` access this inode with `mask` (MAY_READ, MAY_WRITE, MAY_EXEC)? Linux's
    /// `inode_operations.permission`; most inodes use the mode bits.
    fn permission(&self, c: &crate::process::cred::Creds, mask: u32) -> KResult<()> {
        super::namei::generic_permission(c, &self.metadata(), mask)
    }

    /// Reads at `offset`; devices ignore the offset. `nonblock` is the open
    /// file's O_NONBLOCK.
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> KResult<usize> {
        Err(EISDIR)
    }
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> KResult<usize> {
        Err(EISDIR)
    }
    fn truncate(&self, _size: u64) -> KResult<()> {
        Err(EINVAL)
    }
    /// fallocate: reserve (mode 0 or FALLOC_FL_KEEP_SIZE) or punch a hole
    /// (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) in [offset, offset + len).
    fn fallocate(&self, _mode: u32, _offset: u64, _len: u64) -> KResult<()> {
        Err(ENOTSUP)
    }
    /// The page cache mappings of this file share (None: not mappable).
    fn page_cache(&self) -> Option<&crate::mm::page_cache::PageCache> {
        None
    }
    /// Whether the file can be mapped (Linux: its `file_operations` have an `mmap`);
    /// mmap fails with ENODEV if not. By default, files with a page cache can.
    fn has_mmap(&self) -> bool {
        self.page_cache().is_some()
    }
    /// A hugetlbfs file, or a SysV segment made of one (Linux's `is_file_hugepages`): its
    /// mappings come in whole huge pages, at huge-page-aligned addresses.
    fn is_hugetlb(&self) -> bool {
        false
    }
    /// The alignment of a mapping of this file (Linux's `file_operations.get_unmapped_area`
    /// for files that need one): an mshare region's graft size. Huge pages have their own
    /// (`is_hugetlb`).
    fn mmap_align(&self) -> u64 {
        crate::mm::PAGE_SIZE
    }
    /// Linux's `file_operations.mmap` (`call_mmap`): prepares a new mapping of this file,
    /// made by the address space `inner`, before it enters it: what backs its pages, its
    /// open/close hooks, its flags. `desc` comes mapping this file's page cache, which is
    /// what the default keeps.
    fn mmap(&self, _inner: &crate::mm::address_space::MmInner, _desc: &mut crate::mm::mmap::MmapDesc) -> KResult<()> {
        Ok(())
    }
    /// Devices and regular files: whether reads/writes would not block.
    fn poll(&self) -> u16 {
        POLLIN | POLLOUT
    }
    fn ioctl(&self, _cmd: u32, _arg: u64) -> KResult<usize> {
        Err(ENOTTY)
    }
    /// What an open makes of it (Linux's `file_operations.open`): None for an open file of
    /// the inode itself; a device that is a terminal, a pair's multiplexer or a
    /// pipe's name gives its own kind of open file (`this` is the inode as an `Arc`).
    fn open(&self, _this: &Arc<dyn Inode>, _flags: u32) -> Option<KResult<super::file::FileKind>> {
        None
    }

    // Directory operations.
    fn lookup(&self, _name: &str) -> KResult<Arc<dyn Inode>> {
        Err(ENOTDIR)
    }
    /// Makes a special file or any other named `name` with `mode` (type | permissions) and,
    /// for a device node, device number `rdev` (`i_op->mknod`; EPERM where there is none).
    fn mknod(&self, _name: &str, _mode: u32, _rdev: u64, _uid: u32, _gid: u32) -> KResult<Arc<dyn Inode>> {
        Err(EPERM)
    }
    /// Creates a file, directory or device node named `name` with `mode` (type | permissions).
    fn create(&self, _name: &str, _mode: u32, _uid: u32, _gid: u32) -> KResult<Arc<dyn Inode>> {
        Err(ENOTDIR)
    }
    fn symlink(&self, _name: &str, _target: &[u8]) -> KResult<()> {
        Err(ENOTDIR)
    }
    /// Removes `name`; `dir` selects rmdir semantics.
    fn unlink(&self, _name: &str, _dir: bool) -> KResult<()> {
        Err(ENOTDIR)
    }
    /// Puts another filesystem's root at `name` (which must be a directory or absent).
    fn mount(&self, _name: &str, _root: Arc<dyn Inode>) -> KResult<()> {
        Err(ENOTDIR)
    }
    /// Swaps entry `name` from `old` to `new`, keeping its place in listings (ENOENT if
    /// `name` no longer holds `old`): how a mount covers a directory and umount uncovers
    /// it (`fs/mount.rs`).
    fn replace_entry(&self, _name: &str, _old: &Arc<dyn Inode>, _new: Arc<dyn Inode>) -> KResult<()> {
        Err(ENOTDIR)
    }
    /// What statfs reports for the filesystem this inode belongs to (Linux's
    /// `super_operations.statfs`); None leaves it to `statfs_of`'s figures by device
    /// (procfs). A filesystem with nothing to count returns `Statfs::simple(MAGIC)`.
    fn statfs(&self) -> Option<Statfs> {
        None
    }
    /// The options /proc/mounts shows for the filesystem of this root, each after a comma
    /// (Linux's `super_operations.show_options`); None shows mount's data as given.
    fn show_options(&self) -> Option<String> {
        None
    }
    /// Called on a mount's root when umount takes off an instance nothing uses (Linux's
    /// `file_system_type.kill_sb`): lets go of what its tree holds.
    fn kill_sb(&self) {}
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        Err(ENOTDIR)
    }
    /// getdents: the entries at or after position `pos`, each with its position. The
    /// default numbers `readdir`'s list; a directory whose entries keep their positions
    /// while others are added and removed (tmpfs) overrides it.
    fn readdir_from(&self, pos: u64) -> KResult<Vec<(u64, DirEntry)>> {
        let start = usize::try_from(pos).unwrap_or(usize::MAX);
        Ok(self.readdir()?.into_iter().enumerate().skip(start).map(|(i, e)| (i as u64, e)).collect())
    }
    /// Moves entry `old` of this directory to `new` in `new_dir` (replacing
    /// what is there, as rename(2) does).
    fn rename(&self, _old: &str, _new_dir: &Arc<dyn Inode>, _new: &str) -> KResult<()> {
        Err(ENOTDIR)
    }
    fn readlink(&self) -> KResult<Vec<u8>> {
        Err(EINVAL)
    }
    /// A magic link (Linux's `get_link` that calls `nd_jump_link`, /proc/PID/fd/N): a walk
    /// that follows it lands on the open file it names, not on `readlink`'s text. None
    /// for an ordinary symlink.
    fn jump_link(&self) -> Option<KResult<Arc<super::file::File>>> {
        None
    }
    /// open(dir, O_TMPFILE) (`inode_operations.tmpfile`): a regular file with no name in
    /// this directory's filesystem; `linkable` (no O_EXCL) lets linkat give it one.
    fn tmpfile(&self, _mode: u32, _uid: u32, _gid: u32, _linkable: bool) -> KResult<Arc<dyn Inode>> {
        Err(ENOTSUP)
    }
    /// Changes attributes (mode bits, owner, times) in place; the callback
    /// sees and edits the metadata under the inode's lock.
    fn set_attr(&self, _edit: &mut dyn FnMut(&mut Metadata)) -> KResult<()> {
        Err(EPERM)
    }
    /// The extended attributes' store, for a filesystem that keeps them (Linux's
    /// IOP_XATTR); None is EOPNOTSUPP (`fs/xattr.rs`).
    fn xattrs(&self) -> Option<&super::xattr::SimpleXattrs> {
        None
    }
    /// Whether poll, select and epoll can watch it (`file_can_poll`: its file operations
    /// have a poll); epoll_ctl refuses the others with EPERM.
    fn can_poll(&self) -> bool {
        false
    }
    /// The queue woken when its readiness may change, for poll, select and epoll to sleep
    /// on; None when it has none.
    fn wait_queue(&self) -> Option<&crate::process::wait_queue::WaitQueue> {
        None
    }
    /// Whether its readiness changes with nothing to wake a queue (the console's input,
    /// polled from the serial port): a wait re-checks it every tick.
    fn polled_by_tick(&self) -> bool {
        false
    }
    /// Adds another name for `target` in this directory (a hard link).
    fn link(&self, _name: &str, _target: &Arc<dyn Inode>) -> KResult<()> {
        Err(ENOTDIR)
    }
}
