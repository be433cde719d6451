//! Futexes (Linux's kernel/futex): wait on a user word while it holds an
//! expected value; wake by address. Keys follow `get_futex_key`: a private
//! futex (FUTEX_PRIVATE_FLAG) or a word in private memory is keyed by
//! (address space, address); a shared futex in a MAP_SHARED file or shmem
//! mapping by (inode, file offset), so processes mapping the same object
//! meet whatever addresses they map it at.

use super::wait_queue::WaitQueue;
use crate::errno::*;
use crate::mm::address_space::MmStruct;
use crate::sync::SpinLock as Mutex;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;

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
            // A word in an mshare window is keyed by the host's mapping of it.
            let key = if v.flags.contains(crate::mm::vma::VmFlags::MSHARE) {
                crate::mm::mshare::with_host_vma(v, uaddr, shared_key).flatten()
            } else {
                shared_key(v, uaddr)
            };
            if let Some(k) = key {
                return k;
            }
        }
    }
    (mm.id, uaddr)
}

/// (object, offset) of `addr` in the shared mapping `v`: the object is the page cache
/// the pages come from (Linux's `page->mapping`), whatever file was opened to map it (each
/// SysV attach opens its own over the segment's), or the inode for a file without one.
fn shared_key(v: &crate::mm::vma::Vma, addr: u64) -> Option<Key> {
    let inode = v.backend.inode()?;
    let object = match inode.page_cache() {
        Some(cache) => cache as *const crate::mm::page_cache::PageCache as u64,
        None => Arc::as_ptr(inode) as *const () as u64,
    };
    Some((object, v.pgoff * crate::mm::PAGE_SIZE + (addr - v.start)))
}

/// The futex hash buckets (one table): each futex's wait queue, by key. Its lock
/// is held across a waiter's check of the word and its enqueue (`wait_setup`) and
/// by a waker's look-up. Lock order (`order::FutexQueues`): under it the address
/// space (the word's page-table look-up), then the wait queue and the run queue.
static QUEUES: Mutex<BTreeMap<Key, Arc<WaitQueue>>, crate::sync::order::FutexQueues> = Mutex::new(BTreeMap::new());

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
    let key = futex_key(mm, uaddr, private);
    let t = super::current();
    loop {
        let q = wait_setup(mm, uaddr, val, key, &t, deadline)?;
        let stop = if super::signal::signal_pending(&t) {
            Some(Err(if deadline.is_some() { EINTR } else { ERESTARTSYS }))
        } else if deadline.is_some_and(|d| crate::arch::apic::uptime_ns() >= d) {
            Some(Err(ETIMEDOUT))
        } else {
            super::sched::schedule();
            None
        };
        let woken = q.finish_wait(&t, deadline);
        drop(q);
        tidy(key);
        if woken {
            return Ok(0);
        }
        if let Some(r) = stop {
            return r;
        }
        // Woken by something else (a signal the loop sees next, a blocked one): queue
        // again, checking the word again as Linux's `futex_wait` does on a spurious wake.
    }
}

/// Linux's `futex_wait_setup`: under the bucket lock, checks the futex word and
/// queues the current task (`prepare_to_wait`). A waker changes the word before it
/// takes the same lock to wake, so it either finds the task queued or the check
/// sees the new value (EAGAIN): no wake-up is lost between the check and the
/// sleep. The word is read without faulting under the lock; a page that must be
/// faulted in is faulted in after dropping it, and the check starts again.
fn wait_setup(
    mm: &MmStruct,
    uaddr: u64,
    val: u32,
    key: Key,
    t: &Arc<super::task::Task>,
    deadline: Option<u64>,
) -> KResult<Arc<WaitQueue>> {
    loop {
        let mut queues = QUEUES.lock();
        match crate::mm::usercopy::read_u32_nofault(mm, uaddr) {
            Some(v) if v != val => return Err(EAGAIN),
            Some(_) => {
                let q = queues.entry(key).or_insert_with(|| Arc::new(WaitQueue::new())).clone();
                q.prepare_to_wait(t, super::task::TaskState::Interruptible, deadline);
                return Ok(q);
            }
            None => {
                drop(queues);
                crate::mm::usercopy::read_val::<u32>(mm, uaddr)?;
            }
        }
    }
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
