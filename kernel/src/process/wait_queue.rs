//! Wait queues (Linux's `wait_queue_head_t`, kernel/sched/wait.c) and completions.
//!
//! A waiter is queued and its state set before it tests its condition
//! (`prepare_to_wait`, then the test, then `schedule`, then `finish_wait`), so a
//! waker on another CPU that changes the condition and wakes the queue between the
//! test and the sleep finds the waiter and makes it runnable: no wake-up is lost.
//!
//! Lock order: the waiter list (`order::WaitQueue`) is an `IrqMutex` taken with
//! nothing under it but the heap; wakers take the waiters off under it and wake
//! them (the run queue) after dropping it.

use super::sched;
use super::task::TaskState;
use crate::errno::*;
use crate::sync::IrqMutex as Mutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

pub struct WaitQueue {
    waiters: Mutex<Vec<Arc<super::task::Task>>, crate::sync::order::WaitQueue>,
    /// Wake-ups so far: an edge-triggered epoll item is reported again once its file's
    /// queues have been woken since its last report (`fs/eventpoll.rs`).
    wakes: AtomicU64,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    pub const fn new() -> WaitQueue {
        WaitQueue { waiters: Mutex::new(Vec::new()), wakes: AtomicU64::new(0) }
    }

    /// How many times the queue has been woken.
    pub fn wake_count(&self) -> u64 {
        self.wakes.load(Ordering::SeqCst)
    }

    /// Sleeps until `cond` returns Some. Interruptible waits end with
    /// ERESTARTSYS when a signal is pending: the syscall is restarted or fails
    /// with EINTR depending on the handler's SA_RESTART (see `signal::restart_syscall`).
    /// An uninterruptible wait ignores even SIGKILL: keep it for waits that end by
    /// themselves, soon (the watchdog reports one that lasts).
    pub fn wait_until<R>(&self, interruptible: bool, cond: impl FnMut() -> Option<R>) -> KResult<R> {
        self.wait_until_deadline(interruptible, None, cond)
    }

    /// As `wait_until`, giving up with ETIMEDOUT at `deadline` (ns since boot).
    pub fn wait_until_deadline<R>(
        &self,
        interruptible: bool,
        deadline: Option<u64>,
        cond: impl FnMut() -> Option<R>,
    ) -> KResult<R> {
        let state = if interruptible { TaskState::Interruptible } else { TaskState::Uninterruptible };
        self.wait_event(state, deadline, cond)
    }

    /// Sleeps until `cond` returns Some or a fatal signal arrives (Linux's
    /// `wait_event_killable`): then EINTR, which the syscall returns on its way
    /// out to the exit in `exit_to_user_mode`, so everything it holds is dropped.
    pub fn wait_until_killable<R>(&self, cond: impl FnMut() -> Option<R>) -> KResult<R> {
        self.wait_event(TaskState::Killable, None, cond)
    }

    fn wait_event<R>(
        &self,
        state: TaskState,
        deadline: Option<u64>,
        mut cond: impl FnMut() -> Option<R>,
    ) -> KResult<R> {
        let t = super::current();
        loop {
            // Queued and asleep (in state) before the test: a wake-up that comes after
            // the test finds the task and makes it runnable, so the schedule() below
            // returns at once instead of sleeping through it.
            self.prepare_to_wait(&t, state, deadline);
            let stop = if let Some(r) = cond() {
                Some(Ok(r))
            } else if state == TaskState::Interruptible && super::signal::signal_pending(&t) {
                Some(Err(ERESTARTSYS))
            } else if state == TaskState::Killable && super::signal::fatal_signal_pending(&t) {
                Some(Err(EINTR))
            } else if deadline.is_some_and(|d| crate::arch::apic::uptime_ns() >= d) {
                Some(Err(ETIMEDOUT))
            } else {
                None
            };
            if let Some(r) = stop {
                self.finish_wait(&t, deadline);
                return r;
            }
            sched::schedule();
            self.finish_wait(&t, deadline);
        }
    }

    /// Linux's `prepare_to_wait`: queues `t` (the current task) here, once, and sets
    /// its state to `state` (Interruptible, Killable or Uninterruptible), before the
    /// caller tests what it waits for; with a deadline, the tick wakes it then. The
    /// caller then sleeps (`sched::schedule`) or not, and always calls `finish_wait`.
    /// Between the two it must not sleep (its state is no longer Running).
    pub fn prepare_to_wait(&self, t: &Arc<super::task::Task>, state: TaskState, deadline: Option<u64>) {
        crate::arch::cpu::without_interrupts(|| {
            t.sleep_since.store(crate::arch::apic::uptime_ns(), Ordering::Relaxed);
            let mut w = self.waiters.lock();
            if !w.iter().any(|w| Arc::ptr_eq(w, t)) {
                w.push(t.clone());
            }
            t.set_state(state);
        });
        if let Some(d) = deadline {
            t.wake_at.store(d.max(1), Ordering::Relaxed);
            sched::add_sleeper(t.clone());
        }
        // The state is stored before the caller loads what it tests (a signal's pending
        // bit, a counter): a waker that changes it afterwards sees the sleeping state.
        fence(Ordering::SeqCst);
    }

    /// Linux's `finish_wait`: the task runs again (unless a waker already made it
    /// runnable) and leaves the queue. True if a wake on this queue ended the wait
    /// (it took the task off the queue), not a signal, the deadline or its own test.
    pub fn finish_wait(&self, t: &Arc<super::task::Task>, deadline: Option<u64>) -> bool {
        for s in [TaskState::Interruptible, TaskState::Killable, TaskState::Uninterruptible] {
            if t.transition(s, TaskState::Running) {
                break;
            }
        }
        if deadline.is_some() {
            t.wake_at.store(0, Ordering::Relaxed);
            sched::remove_sleeper(t);
        }
        crate::arch::cpu::without_interrupts(|| {
            let mut w = self.waiters.lock();
            let before = w.len();
            w.retain(|w| !Arc::ptr_eq(w, t));
            before == w.len()
        })
    }

    pub fn wake_all(&self) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let waiters: Vec<_> = crate::arch::cpu::without_interrupts(|| core::mem::take(&mut *self.waiters.lock()));
        for t in &waiters {
            sched::wake_up(t);
        }
    }

    /// Wakes up to `n` waiters; returns how many were woken.
    pub fn wake_n(&self, n: usize) -> usize {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let mut woken = 0;
        while woken < n {
            let t = crate::arch::cpu::without_interrupts(|| {
                let mut w = self.waiters.lock();
                (!w.is_empty()).then(|| w.remove(0))
            });
            match t {
                Some(t) => {
                    if sched::wake_up(&t) {
                        woken += 1;
                    }
                }
                None => break,
            }
        }
        woken
    }

    /// Gives back the waiter list's spare capacity.
    pub fn shrink(&self) {
        crate::arch::cpu::without_interrupts(|| self.waiters.lock().shrink_to_fit());
    }

    pub fn is_empty(&self) -> bool {
        crate::arch::cpu::without_interrupts(|| self.waiters.lock().is_empty())
    }
}

/// Sleeps interruptibly on every queue of `queues` at once (Linux's `poll_wait` into a
/// poll table, then `poll_schedule_timeout`) until `cond` returns Some, a signal is
/// pending (ERESTARTSYS) or `deadline` passes (ETIMEDOUT). The task is on every queue
/// before `cond` runs, so a wake-up on any of them after the test is not lost.
pub fn wait_many<R>(queues: &[&WaitQueue], deadline: Option<u64>, mut cond: impl FnMut() -> Option<R>) -> KResult<R> {
    // Its own queue carries the deadline (and is where a task with no queue sleeps).
    let own = WaitQueue::new();
    let t = super::current();
    loop {
        own.prepare_to_wait(&t, TaskState::Interruptible, deadline);
        for q in queues {
            q.prepare_to_wait(&t, TaskState::Interruptible, None);
        }
        let stop = if let Some(r) = cond() {
            Some(Ok(r))
        } else if super::signal::signal_pending(&t) {
            Some(Err(ERESTARTSYS))
        } else if deadline.is_some_and(|d| crate::arch::apic::uptime_ns() >= d) {
            Some(Err(ETIMEDOUT))
        } else {
            None
        };
        if stop.is_none() {
            sched::schedule();
        }
        own.finish_wait(&t, deadline);
        for q in queues {
            q.finish_wait(&t, None);
        }
        if let Some(r) = stop {
            return r;
        }
    }
}

/// A one-shot event (vfork's wait for exec or exit).
pub struct Completion {
    done: AtomicBool,
    wq: WaitQueue,
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

impl Completion {
    pub fn new() -> Completion {
        Completion { done: AtomicBool::new(false), wq: WaitQueue::new() }
    }
    pub fn complete(&self) {
        self.done.store(true, Ordering::Release);
        self.wq.wake_all();
    }
    /// Waits for `complete`, or a fatal signal (EINTR).
    pub fn wait_killable(&self) -> KResult<()> {
        self.wq.wait_until_killable(|| self.done.load(Ordering::Acquire).then_some(()))
    }
}
