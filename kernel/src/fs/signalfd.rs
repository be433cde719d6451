//! signalfd (Linux's fs/signalfd.c, 6.1): a file that takes the reader's pending signals
//! of its mask as `struct signalfd_siginfo` records, instead of their delivery. The
//! signals are the reading thread's and its process's, as Linux's `current` has them.
//!
//! Linux wakes `sighand->signalfd_wqh` whenever a signal is queued for a process with a
//! signalfd; here every signal sent wakes one queue, `SIGNALFD_WQ`, that readers and poll,
//! select and epoll waiters on a signalfd sleep on (a signal for another process only
//! makes them look again).

use super::vfs::POLLIN;
use crate::errno::*;
use crate::process::signal::{SigInfo, UNBLOCKABLE};
use crate::process::wait_queue::WaitQueue;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Woken by every signal sent (`signalfd_notify`).
pub static SIGNALFD_WQ: WaitQueue = WaitQueue::new();

/// Gives back the queue's spare capacity (`leak`'s shrinkers).
pub fn shrink() {
    SIGNALFD_WQ.shrink();
}

/// `sizeof(struct signalfd_siginfo)`.
pub const SIGINFO_SIZE: usize = 128;

pub struct SignalFd {
    _live: crate::leak::Live,
    /// The signals it takes (never SIGKILL or SIGSTOP).
    mask: AtomicU64,
    pub ino: u64,
}

impl SignalFd {
    pub fn new(mask: u64) -> SignalFd {
        SignalFd {
            _live: crate::leak::INODES.live(),
            mask: AtomicU64::new(mask & !UNBLOCKABLE),
            ino: super::tmpfs::next_ino(),
        }
    }

    /// signalfd4 on an existing signalfd: its new mask.
    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !UNBLOCKABLE, Relaxed);
        SIGNALFD_WQ.wake_all();
    }

    /// `signalfd_poll`: readable while the reader has a signal of the mask pending.
    pub fn poll(&self) -> u16 {
        let t = crate::process::current();
        let mask = self.mask.load(Relaxed);
        let own = t.sig.lock().pending.set;
        let shared = t.process.shared_pending.lock().set;
        if (own | shared) & mask != 0 {
            POLLIN
        } else {
            0
        }
    }

    /// One pending signal of the mask, the thread's own first (`dequeue_signal`).
    fn dequeue(&self) -> Option<SigInfo> {
        let t = crate::process::current();
        let blocked = !self.mask.load(Relaxed);
        crate::process::signal::dequeue_signal(&t, |_| blocked)
    }

    /// `signalfd_read`: as many records as fit in `out` and are pending; waits for the
    /// first unless `nonblock`.
    pub fn read(&self, out: &mut [u8], nonblock: bool) -> KResult<usize> {
        let count = out.len() / SIGINFO_SIZE;
        if count == 0 {
            return Err(EINVAL);
        }
        let mut n = 0;
        while n < count {
            let info = if n == 0 && !nonblock {
                SIGNALFD_WQ.wait_until(true, || self.dequeue())?
            } else {
                match self.dequeue() {
                    Some(i) => i,
                    None if n == 0 => return Err(EAGAIN),
                    None => break,
                }
            };
            out[n * SIGINFO_SIZE..(n + 1) * SIGINFO_SIZE].copy_from_slice(&signalfd_siginfo(&info));
            n += 1;
        }
        Ok(n * SIGINFO_SIZE)
    }
}

/// `signalfd_copyinfo`: a siginfo as `struct signalfd_siginfo` lays it out (signo, errno,
/// code, pid, uid, fd, tid, band, overrun, trapno, status, int, ptr, utime, stime, addr).
fn signalfd_siginfo(info: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut r = [0u8; SIGINFO_SIZE];
    let mut put = |off: usize, bytes: &[u8]| r[off..off + bytes.len()].copy_from_slice(bytes);
    put(0, &(info.signo as u32).to_ne_bytes());
    put(4, &info.errno.to_ne_bytes());
    put(8, &info.code.to_ne_bytes());
    let (lo, hi) = (info.field0 as u32, (info.field0 >> 32) as u32);
    use crate::process::signal::{SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGSEGV};
    // `siginfo_layout`: codes between SI_USER and SI_KERNEL are the signal's own.
    let own_code = info.code > 0 && info.code < 0x80;
    match info.signo as u32 {
        // A fault: si_addr.
        SIGSEGV | SIGBUS | SIGILL | SIGFPE if own_code => put(72, &info.field0.to_ne_bytes()),
        // A child: pid, uid, status.
        SIGCHLD if own_code => {
            put(12, &lo.to_ne_bytes());
            put(16, &hi.to_ne_bytes());
            put(40, &(info.field1 as u32).to_ne_bytes());
        }
        // A POSIX timer's: its id, overrun and value.
        _ if info.code == crate::process::posix_timer::SI_TIMER => {
            put(24, &lo.to_ne_bytes());
            put(32, &hi.to_ne_bytes());
            put(44, &(info.field1 as u32).to_ne_bytes());
            put(48, &info.field1.to_ne_bytes());
        }
        // kill, tgkill, sigqueue and the kernel's: pid, uid, and a queued value.
        _ => {
            put(12, &lo.to_ne_bytes());
            put(16, &hi.to_ne_bytes());
            put(44, &(info.field1 as u32).to_ne_bytes());
            put(48, &info.field1.to_ne_bytes());
        }
    }
    r
}
