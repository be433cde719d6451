//! Open files (Linux's `struct file`): an inode or a pipe end, the offset and
//! the status flags. Descriptors and mappings hold `Arc<File>`; the last
//! reference closes it (a pipe end's count drops). Regular files open for writing
//! are counted per inode (Linux's `i_writecount`): exec refuses them (ETXTBSY).

use super::eventfd::EventFd;
use super::pipe::Pipe;
use super::vfs::*;
use crate::errno::*;
use crate::sync::SpinLock as Mutex;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub const O_ACCMODE: u32 = 0o3;
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DSYNC: u32 = 0o10000;
pub const O_ASYNC: u32 = 0o20000;
pub const O_DIRECT: u32 = 0o40000;
pub const O_LARGEFILE: u32 = 0o100000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_NOATIME: u32 = 0o1000000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_SYNC: u32 = 0o4010000;
pub const O_PATH: u32 = 0o10000000;
/// O_TMPFILE's own bit; O_TMPFILE is it with O_DIRECTORY.
pub const __O_TMPFILE: u32 = 0o20000000;
pub const O_TMPFILE: u32 = __O_TMPFILE | O_DIRECTORY;

/// Flags F_SETFL may change.
pub const SETFL_MASK: u32 = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

pub enum FileKind {
    Inode(Arc<dyn Inode>),
    /// A pipe or FIFO, opened for reading, writing or both (the access mode says which,
    /// as Linux's f_mode does for pipe_read and pipe_write), with the open file's
    /// `f_version` (`Pipe::poll`).
    Pipe(Arc<Pipe>, u64),
    /// An eventfd counter (an anonymous inode in Linux).
    EventFd(EventFd),
    /// An epoll instance (an anonymous inode in Linux).
    Epoll(Arc<super::eventpoll::EventPoll>),
    /// A timerfd (an anonymous inode in Linux).
    TimerFd(Arc<super::timerfd::TimerFd>),
    /// A signalfd (an anonymous inode in Linux).
    SignalFd(Arc<super::signalfd::SignalFd>),
    /// A terminal: the console, a pty's slave or master (`tty/`).
    Tty(crate::tty::TtyFile),
    /// An AF_UNIX socket (`net/unix.rs`).
    Socket(Arc<crate::net::unix::UnixSocket>),
    /// A process's pidfd (an anonymous inode in 6.1): readable once it has exited.
    PidFd(Arc<crate::process::task::Process>, u64),
}

pub struct File {
    pub kind: FileKind,
    /// The position (Linux's `f_pos` under `f_pos_lock`): a sleeping lock, held across a
    /// read or write of a regular file or /proc file, which may take an address space's
    /// `mmap_lock` (reading /proc/PID/maps) or sleep.
    pub offset: crate::sync::RwSem<u64>,
    /// Access mode and status flags (O_APPEND, O_NONBLOCK, ...), without O_CLOEXEC.
    pub flags: AtomicU32,
    /// The path it was opened by, for diagnostics.
    pub path: String,
    /// Whether this description ever took a flock (its drop releases it);
    /// spares every other close a look at the global lock table.
    pub flocked: AtomicBool,
    /// The (dev, ino) whose writer count this open file holds (`get_write_access`).
    writer_of: Option<(u64, u64)>,
    _live: crate::leak::Live,
}

/// Open files with write access, per (dev, ino) of a regular file.
static WRITERS: Mutex<BTreeMap<(u64, u64), usize>, crate::sync::order::Writers> = Mutex::new(BTreeMap::new());

/// Whether some open file can write the regular file `m` describes (exec's
/// `deny_write_access` fails with ETXTBSY then).
pub fn open_for_writing(m: &Metadata) -> bool {
    WRITERS.lock().contains_key(&(m.dev, m.ino))
}

/// Linux's `OPEN_FMODE`: access mode 3 opens for neither reading nor writing.
pub fn fmode_read(flags: u32) -> bool {
    matches!(flags & O_ACCMODE, O_RDONLY | O_RDWR)
}

pub fn fmode_write(flags: u32) -> bool {
    matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR)
}

pub const SEEK_SET: u32 = 0;
pub const SEEK_CUR: u32 = 1;
pub const SEEK_END: u32 = 2;

impl File {
    pub fn new(kind: FileKind, flags: u32, path: String) -> Arc<File> {
        let writer_of = match &kind {
            FileKind::Inode(i) if flags & O_PATH == 0 && fmode_write(flags) => {
                let m = i.metadata();
                m.is_regular().then_some((m.dev, m.ino))
            }
            _ => None,
        };
        if let Some(key) = writer_of {
            *WRITERS.lock().entry(key).or_insert(0) += 1;
        }
        Arc::new(File {
            kind,
            offset: crate::sync::RwSem::new(0),
            flags: AtomicU32::new(flags & !O_CLOEXEC),
            path,
            flocked: AtomicBool::new(false),
            writer_of,
            _live: crate::leak::FILES.live(),
        })
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn readable(&self) -> bool {
        self.flags() & O_PATH == 0 && fmode_read(self.flags())
    }

    pub fn writable(&self) -> bool {
        self.flags() & O_PATH == 0 && fmode_write(self.flags())
    }

    pub fn nonblock(&self) -> bool {
        self.flags() & O_NONBLOCK != 0
    }

    /// The path /proc shows for it (Linux's `d_path`): the path it was opened by, with
    /// " (deleted)" once the inode has no name left.
    pub fn display_path(&self) -> String {
        match &self.kind {
            FileKind::Inode(i) if i.metadata().nlink == 0 => alloc::format!("{} (deleted)", self.path),
            FileKind::Pipe(p, _) if p.fifo().is_some_and(|i| i.metadata().nlink == 0) => {
                alloc::format!("{} (deleted)", self.path)
            }
            _ => self.path.clone(),
        }
    }

    pub fn inode(&self) -> Option<&Arc<dyn Inode>> {
        match &self.kind {
            FileKind::Inode(i) => Some(i),
            _ => None,
        }
    }

    /// Whether the file has a position (lseek/pread work).
    pub fn seekable(&self) -> bool {
        match &self.kind {
            FileKind::Inode(i) => matches!(i.metadata().file_type(), S_IFREG | S_IFDIR | S_IFBLK),
            _ => false,
        }
    }

    pub fn read(&self, buf: &mut [u8]) -> KResult<usize> {
        if !self.readable() {
            return Err(EBADF);
        }
        match &self.kind {
            FileKind::Pipe(p, _) => p.read(buf, self.nonblock()),
            FileKind::EventFd(e) => e.read(buf, self.nonblock()),
            FileKind::Epoll(_) => Err(EINVAL),
            FileKind::TimerFd(t) => t.read(buf, self.nonblock()),
            FileKind::SignalFd(s) => s.read(buf, self.nonblock()),
            FileKind::Tty(t) => t.read(buf, self.nonblock()),
            FileKind::Socket(s) => crate::syscall::net::sock_read(self, s, buf),
            FileKind::PidFd(..) => Err(EINVAL),
            FileKind::Inode(i) => {
                if i.metadata().is_dir() {
                    return Err(EISDIR);
                }
                if !self.seekable() {
                    return self.stream_io(|off| i.read_at(off, buf));
                }
                let mut off = self.offset.write();
                let n = i.read_at(*off, buf)?;
                *off += n as u64;
                Ok(n)
            }
        }
    }

    pub fn write(&self, buf: &[u8]) -> KResult<usize> {
        if !self.writable() {
            return Err(EBADF);
        }
        match &self.kind {
            FileKind::Pipe(p, _) => p.write(buf, self.nonblock()),
            FileKind::EventFd(e) => e.write(buf, self.nonblock()),
            FileKind::Epoll(_) | FileKind::TimerFd(_) | FileKind::SignalFd(_) => Err(EINVAL),
            FileKind::Tty(t) => t.write(buf, self.nonblock()),
            FileKind::Socket(s) => crate::syscall::net::sock_write(self, s, buf),
            FileKind::PidFd(..) => Err(EINVAL),
            FileKind::Inode(i) => {
                if !self.seekable() {
                    return self.stream_io(|off| i.write_at(off, buf));
                }
                let mut off = self.offset.write();
                if self.flags() & O_APPEND != 0 {
                    *off = i.metadata().size;
                }
                let n = i.write_at(*off, buf)?;
                *off += n as u64;
                Ok(n)
            }
        }
    }

    /// read or write on a file without a meaningful position (a character device such as
    /// the console): the call may sleep, so the position lock is not held across it (a
    /// spinning writer of the same description would stop the whole CPU); Linux takes
    /// f_pos_lock only for regular files and directories (FMODE_ATOMIC_POS).
    fn stream_io(&self, io: impl FnOnce(u64) -> KResult<usize>) -> KResult<usize> {
        let off = *self.offset.write();
        let n = io(off)?;
        *self.offset.write() += n as u64;
        Ok(n)
    }

    pub fn pread(&self, buf: &mut [u8], offset: u64) -> KResult<usize> {
        if !self.readable() {
            return Err(EBADF);
        }
        if !self.seekable() {
            return Err(ESPIPE);
        }
        let i = self.inode().unwrap();
        if i.metadata().is_dir() {
            return Err(EISDIR);
        }
        i.read_at(offset, buf)
    }

    pub fn pwrite(&self, buf: &[u8], offset: u64) -> KResult<usize> {
        if !self.writable() {
            return Err(EBADF);
        }
        if !self.seekable() {
            return Err(ESPIPE);
        }
        self.inode().unwrap().write_at(offset, buf)
    }

    pub fn seek(&self, offset: i64, whence: u32) -> KResult<u64> {
        if let FileKind::EventFd(..) = self.kind {
            // eventfd's fops use noop_llseek: the position stays where it is (0).
            return Ok(*self.offset.write());
        }
        if !self.seekable() {
            return Err(ESPIPE);
        }
        let mut off = self.offset.write();
        let base = match whence {
            SEEK_SET => 0,
            SEEK_CUR => *off as i64,
            SEEK_END => self.inode().unwrap().metadata().size as i64,
            _ => return Err(EINVAL),
        };
        let new = base.checked_add(offset).ok_or(EINVAL)?;
        if new < 0 {
            return Err(EINVAL);
        }
        *off = new as u64;
        Ok(new as u64)
    }

    pub fn metadata(&self) -> Metadata {
        match &self.kind {
            FileKind::Inode(i) => i.metadata(),
            FileKind::Pipe(p, _) => p.metadata(),
            // anon_inode_mkinode: mode S_IRUSR | S_IWUSR and no file type.
            FileKind::EventFd(e) => anon_inode_meta(e.ino),
            FileKind::Epoll(e) => anon_inode_meta(e.ino),
            FileKind::TimerFd(t) => anon_inode_meta(t.ino),
            FileKind::SignalFd(s) => anon_inode_meta(s.ino),
            FileKind::Tty(t) => t.metadata(),
            FileKind::Socket(s) => s.metadata(),
            FileKind::PidFd(_, ino) => anon_inode_meta(*ino),
        }
    }

    pub fn poll(&self) -> u16 {
        match &self.kind {
            FileKind::Inode(i) => i.poll(),
            FileKind::Pipe(p, version) => p.poll(fmode_read(self.flags()), fmode_write(self.flags()), *version),
            FileKind::EventFd(e) => e.poll(),
            FileKind::Epoll(e) => e.poll(),
            FileKind::TimerFd(t) => t.poll(),
            FileKind::SignalFd(s) => s.poll(),
            FileKind::Tty(t) => t.poll(),
            FileKind::Socket(s) => s.poll(),
            // `pidfd_poll`: every thread has exited.
            FileKind::PidFd(p, _) => {
                if p.threads.lock().is_empty() {
                    POLLIN
                } else {
                    0
                }
            }
        }
    }

    /// Whether poll, select and epoll can watch it (`file_can_poll`).
    pub fn can_poll(&self) -> bool {
        match &self.kind {
            FileKind::Inode(i) => i.can_poll(),
            FileKind::Pipe(..)
            | FileKind::EventFd(_)
            | FileKind::Epoll(_)
            | FileKind::TimerFd(_)
            | FileKind::SignalFd(_)
            | FileKind::Tty(_)
            | FileKind::Socket(_)
            | FileKind::PidFd(..) => true,
        }
    }

    /// The queues woken when its readiness may change (an epoll file's are its items',
    /// gathered by `select::watch_files`).
    pub fn wait_queues<'a>(&'a self, out: &mut Vec<&'a crate::process::wait_queue::WaitQueue>) {
        match &self.kind {
            FileKind::Inode(i) => out.extend(i.wait_queue()),
            FileKind::Pipe(p, _) => p.wait_queues(fmode_read(self.flags()), fmode_write(self.flags()), out),
            FileKind::EventFd(e) => out.push(e.wait_queue()),
            FileKind::TimerFd(t) => out.push(t.wait_queue()),
            FileKind::SignalFd(_) => out.push(&super::signalfd::SIGNALFD_WQ),
            FileKind::Tty(t) => out.push(t.wait_queue()),
            FileKind::Socket(s) => out.push(&s.wait),
            FileKind::PidFd(p, _) => out.push(&p.thread_exit),
            FileKind::Epoll(_) => {}
        }
    }

    /// Wake-ups of its queues so far (edge-triggered epoll), an epoll file's items' too.
    pub fn wake_count(&self) -> u64 {
        let mut files = Vec::new();
        super::select::watch_files(self, &mut files, 0);
        let mut queues = Vec::new();
        self.wait_queues(&mut queues);
        for f in &files {
            f.wait_queues(&mut queues);
        }
        queues.iter().map(|q| q.wake_count()).sum()
    }

    /// Whether a wait must re-check it every tick (`Inode::polled_by_tick`).
    pub fn polled_by_tick(&self) -> bool {
        // A timer's expiries wake no queue: its readiness comes with the clock.
        match &self.kind {
            FileKind::Inode(i) => i.polled_by_tick(),
            FileKind::TimerFd(_) => true,
            _ => false,
        }
    }

    /// The epoll instance, if it is one.
    pub fn epoll(&self) -> Option<&Arc<super::eventpoll::EventPoll>> {
        match &self.kind {
            FileKind::Epoll(e) => Some(e),
            _ => None,
        }
    }

    /// Directory entries from the current position (an index), as many as
    /// `fill` accepts; the position advances past the accepted ones.
    pub fn getdents(&self, mut fill: impl FnMut(&DirEntry, u64) -> bool) -> KResult<()> {
        let i = self.inode().ok_or(ENOTDIR)?;
        let mut off = self.offset.write();
        for (pos, e) in i.readdir_from(*off)? {
            if !fill(&e, pos + 1) {
                break;
            }
            *off = pos + 1;
        }
        Ok(())
    }
}

impl Drop for File {
    fn drop(&mut self) {
        super::flock::release(self);
        if let Some(key) = self.writer_of {
            let mut writers = WRITERS.lock();
            if let Some(n) = writers.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    writers.remove(&key);
                }
            }
        }
        if let FileKind::Pipe(p, _) = &self.kind {
            p.close_ends(fmode_read(self.flags()), fmode_write(self.flags()));
        }
        if let FileKind::Socket(s) = &self.kind {
            s.release();
            crate::net::unix::gc();
        }
    }
}

/// Frees the writer table's nodes once it is empty (`leak`'s shrinkers).
pub fn shrink() {
    let mut w = WRITERS.lock();
    if w.is_empty() {
        *w = BTreeMap::new();
    }
}

/// The inode an open file refers to (Linux's `file_inode`), where a walk through
/// /proc/PID/fd/N lands: a filesystem inode itself; for a pipe or an eventfd, which have
/// no inode of their own here, a `PseudoInode` standing for Linux's pipefs or anonymous
/// inode.
pub fn file_inode(f: &File) -> Arc<dyn Inode> {
    match &f.kind {
        FileKind::Inode(i) => i.clone(),
        FileKind::Pipe(p, _) => match p.fifo() {
            Some(inode) => inode.clone(),
            None => Arc::new(PseudoInode { meta: p.metadata(), pipe: Some(p.clone()), _live: live_inode() }),
        },
        FileKind::Tty(t) => t.node.clone(),
        FileKind::EventFd(_)
        | FileKind::Epoll(_)
        | FileKind::TimerFd(_)
        | FileKind::SignalFd(_)
        | FileKind::Socket(_)
        | FileKind::PidFd(..) => Arc::new(PseudoInode { meta: f.metadata(), pipe: None, _live: live_inode() }),
    }
}

/// An anonymous inode's metadata (Linux's `anon_inode_getfile`: one inode of the
/// anon_inodefs device, mode 0600), each file with its own number here.
fn anon_inode_meta(ino: u64) -> Metadata {
    Metadata { dev: 0xd, ino, mode: 0o600, nlink: 1, blksize: 4096, ..Default::default() }
}

fn live_inode() -> crate::leak::Live {
    crate::leak::INODES.live()
}

/// A pipe's or an anonymous file's inode as a walk finds it: stat shows its metadata;
/// open makes another open file of the pipe, or fails as an anonymous inode's does.
pub struct PseudoInode {
    meta: Metadata,
    pipe: Option<Arc<Pipe>>,
    _live: crate::leak::Live,
}

impl PseudoInode {}

impl Inode for PseudoInode {
    /// An open of this inode (`do_dentry_open`): a pipe opens as `fifo_open` does for
    /// pipefs, either end or both; an anonymous inode (an eventfd) has no open
    /// (`no_open`: ENXIO).
    fn open(&self, _this: &Arc<dyn Inode>, flags: u32) -> Option<KResult<FileKind>> {
        Some(match &self.pipe {
            Some(pipe) => {
                pipe.open_ends(fmode_read(flags), fmode_write(flags));
                Ok(FileKind::Pipe(pipe.clone(), 0))
            }
            None => Err(ENXIO),
        })
    }
    fn metadata(&self) -> Metadata {
        self.meta.clone()
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
