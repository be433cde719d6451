//! Wait queues (Linux's `wait_queue_head_t`) and completions.

use super::sched;
use super::task::TaskState;
use crate::errno::*;
use crate::sync::IrqMutex as Mutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

pub struct WaitQueue {
    waiters: Mutex<Vec<Arc<super::task::Task>>>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    pub const fn new() -> WaitQueue {
        WaitQueue { waiters: Mutex::new(Vec::new()) }
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
        loop {
            if let Some(r) = cond() {
                return Ok(r);
            }
            let t = super::current();
            match state {
                TaskState::Interruptible if super::signal::signal_pending(&t) => return Err(ERESTARTSYS),
                TaskState::Killable if super::signal::fatal_signal_pending(&t) => return Err(EINTR),
                _ => {}
            }
            if deadline.is_some_and(|d| crate::arch::apic::uptime_ns() >= d) {
                return Err(ETIMEDOUT);
            }
            self.sleep_once(&t, state, deadline);
        }
    }

    /// Puts `t` (the current task) to sleep on this queue once, in `state`
    /// (Interruptible, Killable or Uninterruptible). Returns true if a wake on
    /// this queue ended the sleep (not a signal or the deadline).
    pub fn sleep_once(&self, t: &Arc<super::task::Task>, state: TaskState, deadline: Option<u64>) -> bool {
        crate::arch::cpu::without_interrupts(|| {
            t.sleep_since.store(crate::arch::apic::uptime_ns(), Ordering::Relaxed);
            t.set_state(state);
            self.waiters.lock().push(t.clone());
            if let Some(d) = deadline {
                t.wake_at.store(d.max(1), Ordering::Relaxed);
                sched::add_sleeper(t.clone());
            }
        });
        sched::schedule();
        t.wake_at.store(0, Ordering::Relaxed);
        if deadline.is_some() {
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
        let waiters: Vec<_> = crate::arch::cpu::without_interrupts(|| core::mem::take(&mut *self.waiters.lock()));
        for t in &waiters {
            sched::wake_up(t);
        }
    }

    /// Wakes up to `n` waiters; returns how many were woken.
    pub fn wake_n(&self, n: usize) -> usize {
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
