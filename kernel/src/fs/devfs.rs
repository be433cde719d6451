//! /dev: the terminals (the console on COM1, /dev/tty, ptmx and devpts), null, zero,
//! full and the random devices; device nodes that mknod makes open them by number.

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

/// The memory devices, major 1 (Linux's drivers/char/mem.c): null (3), zero (5), full
/// (7), random (8) and urandom (9). `node` is the device node a mknod made, whose
/// attributes the open file shows; devfs' own nodes have none.
pub struct MemDevice {
    _live: crate::leak::Live,
    ino: u64,
    minor: u64,
    node: Option<Arc<dyn Inode>>,
}

impl MemDevice {
    const NULL: u64 = 3;
    const ZERO: u64 = 5;
    const FULL: u64 = 7;

    fn new(minor: u64, node: Option<Arc<dyn Inode>>) -> MemDevice {
        MemDevice { _live: crate::leak::INODES.live(), ino: next_ino(), minor, node }
    }
}

impl Inode for MemDevice {
    fn metadata(&self) -> Metadata {
        match &self.node {
            Some(node) => node.metadata(),
            None => dev_meta(self.ino, 1, self.minor, 0o666),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    /// null reads nothing; zero and full read zeroes; the random devices read the
    /// generator getrandom uses.
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> KResult<usize> {
        match self.minor {
            Self::NULL => Ok(0),
            Self::ZERO | Self::FULL => {
                buf.fill(0);
                Ok(buf.len())
            }
            _ => {
                crate::random::fill(buf);
                Ok(buf.len())
            }
        }
    }
    /// Writes vanish, but full's, which find no space (`write_full`).
    fn write_at(&self, _offset: u64, buf: &[u8]) -> KResult<usize> {
        match self.minor {
            Self::FULL => Err(ENOSPC),
            _ => Ok(buf.len()),
        }
    }
    fn has_mmap(&self) -> bool {
        self.minor == Self::ZERO
    }
    /// Linux's `mmap_zero`: a private mapping is anonymous memory, a shared one a shmem
    /// object of its own.
    fn mmap(&self, inner: &crate::mm::address_space::MmInner, desc: &mut crate::mm::mmap::MmapDesc) -> KResult<()> {
        if self.minor != Self::ZERO {
            return Err(ENODEV);
        }
        if desc.flags.contains(crate::mm::vma::VmFlags::SHARED) {
            crate::mm::mmap::shmem_zero_setup(inner, desc)
        } else {
            desc.backend = crate::mm::vma::Backend::Anonymous;
            Ok(())
        }
    }
}

/// Opens character device `rdev` (`new_encode_dev` form) through device node `node`, as
/// `chrdev_open` finds the driver by number: the memory devices and the terminals; any
/// other number has no driver here (ENXIO). A ptmx node opens /dev/pts' pairs wherever
/// it is (Linux looks for a devpts beside it).
pub fn open_char_device(node: &Arc<dyn Inode>, rdev: u64, flags: u32) -> KResult<crate::fs::file::FileKind> {
    let (major, minor) = super::mount::major_minor(rdev);
    let tty = |kind| TtyNode { _live: crate::leak::INODES.live(), ino: 0, kind }.open(node, flags).ok_or(ENXIO)?;
    match (major, minor) {
        (1, MemDevice::NULL | MemDevice::ZERO | MemDevice::FULL | 8 | 9) => {
            crate::mm::fail::slab_may_fail()?;
            Ok(crate::fs::file::FileKind::Inode(Arc::new(MemDevice::new(minor, Some(node.clone())))))
        }
        (5, 0) => tty(TtyNodeKind::Current),
        (5, 1) => tty(TtyNodeKind::Console),
        (4, 64) => tty(TtyNodeKind::Serial),
        (5, 2) => crate::tty::pty::ptmx_open(node.clone(), flags),
        // A pty slave opens only through devpts, which knows its pair
        // (`pts_unix98_lookup`).
        (136, _) => Err(EIO),
        _ => Err(ENXIO),
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
    let mem = |minor| -> Arc<dyn Inode> { Arc::new(MemDevice::new(minor, None)) };
    let nodes: [(&str, Arc<dyn Inode>); 9] = [
        ("console", tty_node(TtyNodeKind::Console)),
        ("tty", tty_node(TtyNodeKind::Current)),
        ("ttyS0", tty_node(TtyNodeKind::Serial)),
        ("ptmx", Arc::new(crate::tty::pty::Ptmx::new(0x6, next_ino(), 0o666))),
        ("null", mem(MemDevice::NULL)),
        ("zero", mem(MemDevice::ZERO)),
        ("full", mem(MemDevice::FULL)),
        ("urandom", mem(9)),
        ("random", mem(8)),
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
