//! flock(2) advisory locks (Linux's fs/locks.c `flock_lock_inode`): whole-file
//! shared or exclusive locks owned by an open file description, so dup'd and
//! inherited descriptors share them and the last close releases them.

use super::file::{File, FileKind, O_PATH};
use crate::errno::*;
use crate::process::wait_queue::WaitQueue;
use crate::sync::SpinLock as Mutex;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

pub const LOCK_SH: u32 = 1;
pub const LOCK_EX: u32 = 2;
pub const LOCK_NB: u32 = 4;
pub const LOCK_UN: u32 = 8;

/// Per inode: (open file description, exclusive) of every lock held.
static LOCKS: Mutex<BTreeMap<u64, Vec<(u64, bool)>>, crate::sync::order::FlockLocks> = Mutex::new(BTreeMap::new());
static WAITERS: WaitQueue = WaitQueue::new();

/// Key of the inode every eventfd shares (Linux's single anonymous inode): flocks on
/// two eventfds conflict, as they do there.
const ANON_INODE: u64 = 1;

/// The lock table's keys for `file`: its inode (the file keeps the `Arc`
/// alive, so the address is stable while any lock exists; a pipe's two ends
/// share one) and the open file description itself.
fn keys(file: &File) -> (u64, u64) {
    let inode = match &file.kind {
        FileKind::Inode(i) => Arc::as_ptr(i) as *const () as u64,
        FileKind::Pipe(p, _) => Arc::as_ptr(p) as u64,
        FileKind::Tty(t) => Arc::as_ptr(&t.tty) as u64,
        FileKind::Socket(s) => Arc::as_ptr(s) as u64,
        FileKind::PidFd(..) => ANON_INODE,
        FileKind::EventFd(_) | FileKind::Epoll(_) | FileKind::TimerFd(_) | FileKind::SignalFd(_) => ANON_INODE,
    };
    (inode, file as *const File as u64)
}

/// Drops the lock `description` holds on `inode`, if any, and wakes waiters.
fn unlock(inode: u64, description: u64) {
    let mut locks = LOCKS.lock();
    let Some(holders) = locks.get_mut(&inode) else { return };
    let before = holders.len();
    holders.retain(|(d, _)| *d != description);
    let had = holders.len() != before;
    if holders.is_empty() {
        locks.remove(&inode);
    }
    drop(locks);
    if had {
        WAITERS.wake_all();
    }
}

/// The last close of `file` (Linux's `locks_remove_flock` from `__fput`).
pub fn release(file: &File) {
    if file.flocked.load(Ordering::Relaxed) {
        let (inode, description) = keys(file);
        unlock(inode, description);
    }
}

/// flock(2) on the open file description `file`. A conversion drops the old
/// lock first, as Linux does (it is not atomic).
pub fn flock(file: &File, op: u32) -> KResult<()> {
    // fdget: an O_PATH descriptor is no file to lock.
    if file.flags() & O_PATH != 0 {
        return Err(EBADF);
    }
    let (inode, description) = keys(file);
    let nonblock = op & LOCK_NB != 0;
    let exclusive = match op & !LOCK_NB {
        LOCK_SH => false,
        LOCK_EX => true,
        LOCK_UN => {
            unlock(inode, description);
            return Ok(());
        }
        _ => return Err(EINVAL),
    };
    unlock(inode, description);
    WAITERS.wait_until(true, || {
        let mut locks = LOCKS.lock();
        let holders = locks.entry(inode).or_default();
        if holders.iter().any(|&(_, ex)| ex || exclusive) {
            return nonblock.then_some(Err(EAGAIN));
        }
        holders.push((description, exclusive));
        file.flocked.store(true, Ordering::Relaxed);
        Some(Ok(()))
    })?
}

/// Frees the lock table's nodes once it is empty and the waiters' spare capacity
/// (`leak`'s shrinkers).
pub fn shrink() {
    let mut l = LOCKS.lock();
    if l.is_empty() {
        *l = BTreeMap::new();
    }
    WAITERS.shrink();
}
