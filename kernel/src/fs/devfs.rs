//! /dev: the terminals (the console on COM1, /dev/tty, ptmx and devpts), null, zero,
//! and the random devices.

use super::tmpfs::{next_ino, TmpfsDir};
use super::vfs::*;
use crate::errno::*;
use alloc::sync::Arc;
use core::any::Any;

fn dev_meta(ino: u64, major: u64, minor: u64, mode: u32) -> Metadata {
    Metadata {
        dev: 0x6,
        ino,
        mode: S_IFCHR | mode,
        nlink: 1,
        rdev: (major << 8) | minor,
        blksize: 4096,
        ..Default::default()
    }
}

/// Which terminal a terminal node opens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TtyNodeKind {
    /// `/dev/console` (5:1): the console, never a controlling terminal by open and never
    /// hung up (Linux's redirected console file).
    Console,
    /// `/dev/ttyS0` (4:64): the console's serial port as a terminal like any other.
    Serial,
    /// `/dev/tty` (5:0): the opener's controlling terminal (ENXIO without one).
    Current,
}

/// A terminal's device node; its open files are `tty::TtyFile`s.
pub struct TtyNode {
    _live: crate::leak::Live,
    ino: u64,
    kind: TtyNodeKind,
}

impl Inode for TtyNode {
    fn metadata(&self) -> Metadata {
        match self.kind {
            TtyNodeKind::Console => dev_meta(self.ino, 5, 1, 0o600),
            TtyNodeKind::Serial => Metadata { gid: 20, ..dev_meta(self.ino, 4, 64, 0o660) },
            TtyNodeKind::Current => dev_meta(self.ino, 5, 0, 0o666),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn can_poll(&self) -> bool {
        true
    }
    fn open(&self, this: &Arc<dyn Inode>, flags: u32) -> Option<KResult<crate::fs::file::FileKind>> {
        let (tty, flags, redirect) = match self.kind {
            TtyNodeKind::Console => (crate::tty::console().clone(), flags, true),
            TtyNodeKind::Serial => (crate::tty::console().clone(), flags, false),
            TtyNodeKind::Current => match crate::tty::current_tty() {
                Some(tty) => (tty, flags | crate::fs::file::O_NOCTTY, false),
                None => return Some(Err(ENXIO)),
            },
        };
        Some(crate::tty::TtyFile::open(tty, false, this.clone(), flags, redirect).map(crate::fs::file::FileKind::Tty))
    }
}

/// `/dev/null`: reads end at once, writes vanish.
pub struct Null {
    _live: crate::leak::Live,
    ino: u64,
}

impl Inode for Null {
    fn metadata(&self) -> Metadata {
        dev_meta(self.ino, 1, 3, 0o666)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> KResult<usize> {
        Ok(0)
    }
    fn write_at(&self, _offset: u64, buf: &[u8]) -> KResult<usize> {
        Ok(buf.len())
    }
}

/// `/dev/zero`: endless zeroes; writes vanish.
pub struct Zero {
    _live: crate::leak::Live,
    ino: u64,
}

impl Inode for Zero {
    fn metadata(&self) -> Metadata {
        dev_meta(self.ino, 1, 5, 0o666)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> KResult<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write_at(&self, _offset: u64, buf: &[u8]) -> KResult<usize> {
        Ok(buf.len())
    }
    fn has_mmap(&self) -> bool {
        true
    }
    /// Linux's `mmap_zero`: a private mapping is anonymous memory, a shared one a shmem
    /// object of its own.
    fn mmap(&self, inner: &crate::mm::address_space::MmInner, desc: &mut crate::mm::mmap::MmapDesc) -> KResult<()> {
        if desc.flags.contains(crate::mm::vma::VmFlags::SHARED) {
            crate::mm::mmap::shmem_zero_setup(inner, desc)
        } else {
            desc.backend = crate::mm::vma::Backend::Anonymous;
            Ok(())
        }
    }
}

/// `/dev/urandom` and `/dev/random` (the same generator as getrandom).
pub struct Random {
    _live: crate::leak::Live,
    ino: u64,
    minor: u64,
}

impl Inode for Random {
    fn metadata(&self) -> Metadata {
        dev_meta(self.ino, 1, self.minor, 0o666)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> KResult<usize> {
        crate::random::fill(buf);
        Ok(buf.len())
    }
    fn write_at(&self, _offset: u64, buf: &[u8]) -> KResult<usize> {
        Ok(buf.len())
    }
}

/// /dev's symbolic links into /proc/self (udev's static nodes).
pub const DEV_LINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// The /dev directory, mounted under `parent`.
pub fn new(parent: Arc<dyn Inode>) -> Arc<dyn Inode> {
    let dir = TmpfsDir::new_child(Arc::downgrade(&parent), 0o755, 0, 0);
    dir.set_dev(0x6); // its own filesystem, as devtmpfs
    let tty_node =
        |kind| -> Arc<dyn Inode> { Arc::new(TtyNode { _live: crate::leak::INODES.live(), ino: next_ino(), kind }) };
    crate::tty::console();
    let nodes: [(&str, Arc<dyn Inode>); 8] = [
        ("console", tty_node(TtyNodeKind::Console)),
        ("tty", tty_node(TtyNodeKind::Current)),
        ("ttyS0", tty_node(TtyNodeKind::Serial)),
        ("ptmx", Arc::new(crate::tty::pty::Ptmx::new(0x6, next_ino(), 0o666))),
        ("null", Arc::new(Null { _live: crate::leak::INODES.live(), ino: next_ino() })),
        ("zero", Arc::new(Zero { _live: crate::leak::INODES.live(), ino: next_ino() })),
        ("urandom", Arc::new(Random { _live: crate::leak::INODES.live(), ino: next_ino(), minor: 9 })),
        ("random", Arc::new(Random { _live: crate::leak::INODES.live(), ino: next_ino(), minor: 8 })),
    ];
    for (name, node) in nodes {
        dir.mount(name, node).expect("devfs entry");
    }
    // The links udev makes on every Linux system (devtmpfs has none): bash's process
    // substitution opens /dev/fd/N.
    for (name, target) in DEV_LINKS {
        dir.symlink(name, target.as_bytes()).expect("devfs link");
    }
    // /dev/shm: a tmpfs for POSIX shared memory (musl's shm_open opens files there),
    // writable by all with the sticky bit, as systemd and Debian's initramfs mount it.
    let this: Arc<dyn Inode> = dir.clone();
    dir.mount("pts", Arc::new(crate::tty::pty::DevptsDir::new(Arc::downgrade(&this)))).expect("devfs entry");
    let shm = TmpfsDir::new_child(Arc::downgrade(&this), 0o1777, 0, 0);
    dir.mount("shm", shm).expect("devfs entry");
    dir
}
