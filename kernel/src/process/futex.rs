//! Futexes (Linux's kernel/futex): wait on a user word while it holds an
//! expected value; wake by address. Keys follow `get_futex_key`: a private
//! futex (FUTEX_PRIVATE_FLAG) or a word in private memory is keyed by
//! (address space, address); a shared futex in a MAP_SHARED file or shmem
//! mapping by (inode, file offset), so processes mapping the same object
//! meet whatever addresses they map it at.

use super::wait_queue::WaitQueue;
use crate::errno::*;
use crate::mm::address_space::MmStruct;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use spin::Mutex;

pub const FUTEX_WAIT: u32 = 0;
pub const FUTEX_WAKE: u32 = 1;
pub const FUTEX_REQUEUE: u32 = 3;
pub const FUTEX_CMP_REQUEUE: u32 = 4;
pub const FUTEX_WAKE_OP: u32 = 5;
pub const FUTEX_WAIT_BITSET: u32 = 9;
pub const FUTEX_WAKE_BITSET: u32 = 10;
pub const FUTEX_PRIVATE_FLAG: u32 = 128;
pub const FUTEX_CLOCK_REALTIME: u32 = 256;
pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

type Key = (u64, u64);

/// The key of the futex word at `uaddr` (see the module comment).
fn futex_key(mm: &MmStruct, uaddr: u64, private: bool) -> Key {
    if !private {
        let inner = mm.mmap_lock.read();
        if let Some(v) = inner.find_vma(uaddr).filter(|v| v.is_shared()) {
            if let Some(inode) = v.backend.inode() {
                let offset = v.pgoff * crate::mm::PAGE_SIZE + (uaddr - v.start);
                return (Arc::as_ptr(inode) as *const () as u64, offset);
            }
        }
    }
    (mm.id, uaddr)
}

static QUEUES: Mutex<BTreeMap<Key, Arc<WaitQueue>>> = Mutex::new(BTreeMap::new());

fn queue(key: Key) -> Arc<WaitQueue> {
    QUEUES.lock().entry(key).or_insert_with(|| Arc::new(WaitQueue::new())).clone()
}

/// Drops the queue of `key` if nobody waits on it.
fn tidy(key: Key) {
    let mut q = QUEUES.lock();
    if q.get(&key).is_some_and(|w| w.is_empty() && Arc::strong_count(w) == 1) {
        q.remove(&key);
    }
}

/// FUTEX_WAIT: sleeps while `*uaddr == val`, until woken, a signal, or the deadline.
pub fn wait(mm: &Arc<MmStruct>, uaddr: u64, val: u32, deadline: Option<u64>, private: bool) -> KResult<usize> {
    if !uaddr.is_multiple_of(4) {
        return Err(EINVAL);
    }
    // The value check and the enqueue happen without a switch in between
    // (non-preemptive kernel), so a wake cannot be lost.
    if crate::mm::usercopy::read_val::<u32>(mm, uaddr)? != val {
        return Err(EAGAIN);
    }
    let key = futex_key(mm, uaddr, private);
    let q = queue(key);
    let t = super::current();
    let r = loop {
        if super::signal::signal_pending(&t) {
            break Err(if deadline.is_some() { EINTR } else { ERESTARTSYS });
        }
        if deadline.is_some_and(|d| crate::arch::apic::uptime_ns() >= d) {
            break Err(ETIMEDOUT);
        }
        if q.sleep_once(&t, super::task::TaskState::Interruptible, deadline) {
            break Ok(0);
        }
    };
    drop(q);
    tidy(key);
    r
}

/// FUTEX_WAKE: wakes up to `n` waiters; returns how many.
pub fn wake(mm: &MmStruct, uaddr: u64, n: usize, private: bool) -> usize {
    let key = futex_key(mm, uaddr, private);
    let q = QUEUES.lock().get(&key).cloned();
    let woken = q.map(|q| q.wake_n(n)).unwrap_or(0);
    tidy(key);
    woken
}

/// FUTEX_REQUEUE / CMP_REQUEUE: wake `n`, move up to `n2` others to `uaddr2`.
/// Moving is approximated by waking (waiters re-check and sleep again), which
/// keeps the semantics (spurious wakeups are allowed) at some cost.
pub fn requeue(mm: &MmStruct, uaddr: u64, n: usize, n2: usize, private: bool) -> usize {
    let woken = wake(mm, uaddr, n, private);
    woken + wake(mm, uaddr, n2, private)
}

/// Frees the queue table's nodes once it is empty (`leak`'s shrinkers).
pub fn shrink() {
    let mut q = QUEUES.lock();
    if q.is_empty() {
        *q = BTreeMap::new();
    }
}
