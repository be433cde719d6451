//! flock(2) advisory locks (Linux's fs/locks.c `flock_lock_inode`): whole-file
//! shared or exclusive locks owned by an open file description, so dup'd and
//! inherited descriptors share them and the last close releases them.

use crate::errno::*;
use crate::process::wait_queue::WaitQueue;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use spin::Mutex;

pub const LOCK_SH: u32 = 1;
pub const LOCK_EX: u32 = 2;
pub const LOCK_NB: u32 = 4;
pub const LOCK_UN: u32 = 8;

/// Per inode: (open file description, exclusive) of every lock held.
static LOCKS: Mutex<BTreeMap<u64, Vec<(u64, bool)>>> = Mutex::new(BTreeMap::new());
static WAITERS: WaitQueue = WaitQueue::new();

/// Drops `file`'s lock on `inode`, if any; true if it had one.
pub fn release(inode: u64, file: u64) -> bool {
    let mut locks = LOCKS.lock();
    let Some(holders) = locks.get_mut(&inode) else { return false };
    let before = holders.len();
    holders.retain(|(f, _)| *f != file);
    let had = holders.len() != before;
    if holders.is_empty() {
        locks.remove(&inode);
    }
    drop(locks);
    if had {
        WAITERS.wake_all();
    }
    had
}

/// flock on the description `file` of `inode`. A conversion drops the old
/// lock first, as Linux does (it is not atomic).
pub fn flock(inode: u64, file: u64, op: u32) -> KResult<()> {
    let nonblock = op & LOCK_NB != 0;
    let exclusive = match op & !LOCK_NB {
        LOCK_SH => false,
        LOCK_EX => true,
        LOCK_UN => {
            release(inode, file);
            return Ok(());
        }
        _ => return Err(EINVAL),
    };
    release(inode, file);
    WAITERS.wait_until(true, || {
        let mut locks = LOCKS.lock();
        let holders = locks.entry(inode).or_default();
        if holders.iter().any(|&(_, ex)| ex || exclusive) {
            return nonblock.then_some(Err(EAGAIN));
        }
        holders.push((file, exclusive));
        Some(Ok(()))
    })?
}
