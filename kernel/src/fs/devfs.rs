//! /dev: the console (COM1), null, zero, and the random devices.

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

/// The serial console (`/dev/console`, `/dev/tty`, `/dev/ttyS0`).
pub struct Console {
    _live: crate::leak::Live,
    ino: u64,
}

const TCGETS: u32 = 0x5401;
const TCSETS: u32 = 0x5402;
const TCSETSW: u32 = 0x5403;
const TCSETSF: u32 = 0x5404;
const TIOCGPGRP: u32 = 0x540f;
const TIOCSPGRP: u32 = 0x5410;
const TIOCGWINSZ: u32 = 0x5413;
const TIOCSWINSZ: u32 = 0x5414;

/// Linux's `struct termios` as TCGETS returns it (asm-generic/termbits.h).
#[repr(C)]
#[derive(Clone, Copy)]
struct Termios {
    c_iflag: u32,
    c_oflag: u32,
    c_cflag: u32,
    c_lflag: u32,
    c_line: u8,
    c_cc: [u8; 19],
}
const _: () = assert!(core::mem::size_of::<Termios>() == 36);
crate::impl_pod!(Termios);

#[repr(C)]
#[derive(Clone, Copy)]
struct Winsize {
    ws_row: u16,
    ws_col: u16,
    ws_xpixel: u16,
    ws_ypixel: u16,
}
crate::impl_pod!(Winsize);

impl Inode for Console {
    fn metadata(&self) -> Metadata {
        dev_meta(self.ino, 5, 1, 0o620)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // No UART interrupt yet: poll once per timer tick until a byte arrives.
        loop {
            let mut n = 0;
            while n < buf.len() {
                match crate::arch::serial::try_read_byte() {
                    Some(b) => {
                        buf[n] = if b == b'\r' { b'\n' } else { b };
                        n += 1;
                        if buf[n - 1] == b'\n' {
                            break;
                        }
                    }
                    None => break,
                }
            }
            if n > 0 {
                return Ok(n);
            }
            crate::process::sleep::sleep_ticks(1)?;
        }
    }
    fn write_at(&self, _offset: u64, buf: &[u8]) -> KResult<usize> {
        crate::arch::serial::write_bytes(buf);
        Ok(buf.len())
    }
    fn poll(&self) -> u16 {
        POLLOUT | if crate::arch::serial::has_input() { POLLIN } else { 0 }
    }
    fn can_poll(&self) -> bool {
        true
    }
    fn polled_by_tick(&self) -> bool {
        true
    }
    fn ioctl(&self, cmd: u32, arg: u64) -> KResult<usize> {
        let mm = crate::process::current_mm();
        match cmd {
            TCGETS => {
                let t = Termios {
                    c_iflag: 0o2400,   // ICRNL | IXON
                    c_oflag: 0o5,      // OPOST | ONLCR
                    c_cflag: 0o277,    // B38400 | CS8 | CREAD
                    c_lflag: 0o105073, // ISIG ICANON ECHO ECHOE ECHOK ECHOCTL ECHOKE IEXTEN
                    c_line: 0,
                    c_cc: [3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0],
                };
                crate::mm::usercopy::write_val(&mm, arg, &t)?;
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF => {
                crate::mm::usercopy::read_val::<Termios>(&mm, arg)?;
                Ok(0)
            }
            TIOCGWINSZ => {
                crate::mm::usercopy::write_val(
                    &mm,
                    arg,
                    &Winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 },
                )?;
                Ok(0)
            }
            TIOCSWINSZ => {
                crate::mm::usercopy::read_val::<Winsize>(&mm, arg)?;
                Ok(0)
            }
            TIOCGPGRP => {
                let pgid = crate::process::current().process.pgid();
                crate::mm::usercopy::write_val(&mm, arg, &(pgid as i32))?;
                Ok(0)
            }
            TIOCSPGRP => {
                crate::mm::usercopy::read_val::<i32>(&mm, arg)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
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
    let console: Arc<dyn Inode> = Arc::new(Console { _live: crate::leak::INODES.live(), ino: next_ino() });
    let nodes: [(&str, Arc<dyn Inode>); 7] = [
        ("console", console.clone()),
        ("tty", console.clone()),
        ("ttyS0", console),
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
    let shm = TmpfsDir::new_child(Arc::downgrade(&this), 0o1777, 0, 0);
    dir.mount("shm", shm).expect("devfs entry");
    dir
}
