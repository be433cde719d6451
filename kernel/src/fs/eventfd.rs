//! eventfd (Linux's fs/eventfd.c): a 64-bit counter that writes add to and
//! reads drain (or, with EFD_SEMAPHORE, decrement by one), blocking a reader
//! at zero and a writer that would overflow past `u64::MAX - 1`.

use super::vfs::{POLLIN, POLLOUT};
use crate::errno::*;
use crate::process::wait_queue::WaitQueue;
use crate::sync::SpinLock as Mutex;

pub const EFD_SEMAPHORE: u32 = 1;
/// The largest value the counter may hold (`ULLONG_MAX - 1`).
const MAX_COUNT: u64 = u64::MAX - 1;

pub struct EventFd {
    _live: crate::leak::Live,
    count: Mutex<u64, crate::sync::order::EventfdCount>,
    semaphore: bool,
    /// Woken on every change: readers wait for a non-zero count, writers for room.
    changed: WaitQueue,
    /// Its anonymous inode's number, for fstat.
    pub ino: u64,
}

impl EventFd {
    pub fn new(initval: u64, flags: u32) -> EventFd {
        EventFd {
            _live: crate::leak::INODES.live(),
            count: Mutex::new(initval),
            semaphore: flags & EFD_SEMAPHORE != 0,
            changed: WaitQueue::new(),
            ino: super::tmpfs::next_ino(),
        }
    }

    /// `eventfd_read`: an 8-byte value out, or EINVAL for a shorter buffer.
    pub fn read(&self, out: &mut [u8], nonblock: bool) -> KResult<usize> {
        if out.len() < 8 {
            return Err(EINVAL);
        }
        let value = self.changed.wait_until(true, || {
            let mut count = self.count.lock();
            if *count == 0 {
                return nonblock.then_some(Err(EAGAIN));
            }
            let value = if self.semaphore { 1 } else { *count };
            *count -= value;
            Some(Ok(value))
        })??;
        self.changed.wake_all();
        out[..8].copy_from_slice(&value.to_ne_bytes());
        Ok(8)
    }

    /// `eventfd_write`: adds an 8-byte value; `u64::MAX` is EINVAL.
    pub fn write(&self, data: &[u8], nonblock: bool) -> KResult<usize> {
        if data.len() < 8 {
            return Err(EINVAL);
        }
        let value = u64::from_ne_bytes(data[..8].try_into().unwrap());
        if value == u64::MAX {
            return Err(EINVAL);
        }
        self.changed.wait_until(true, || {
            let mut count = self.count.lock();
            if MAX_COUNT - *count < value {
                return nonblock.then_some(Err(EAGAIN));
            }
            *count += value;
            Some(Ok(()))
        })??;
        self.changed.wake_all();
        Ok(8)
    }

    /// Woken on every change of the count.
    pub fn wait_queue(&self) -> &WaitQueue {
        &self.changed
    }

    pub fn poll(&self) -> u16 {
        let count = *self.count.lock();
        (if count > 0 { POLLIN } else { 0 }) | if count < MAX_COUNT { POLLOUT } else { 0 }
    }
}
