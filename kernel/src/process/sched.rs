//! The scheduler: one run queue, round robin with a 10 ms slice (the timer
//! tick). The kernel is non-preemptive (Linux's PREEMPT_NONE): a task is
//! switched out only when it sleeps, yields, or returns to user mode with
//! the slice used up, so kernel code never holds a spinlock across a switch.
//!
//! Lock order: the sleeper list, then the run queue (`sync::order`: above every lock
//! held with interrupts enabled, since the timer interrupt takes both), both with
//! interrupts masked; under them only the heap (a queue growing). No address-space,
//! FPU or sleeping lock is taken under the run queue: `schedule` decides under it and
//! switches address space and FPU state after releasing it.

use super::task::{Task, TaskState};
use crate::arch::{context, cpu, percpu};
use crate::sync::IrqMutex as Mutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct RunQueue {
    queue: VecDeque<Arc<Task>>,
    /// None while the idle loop runs.
    current: Option<Arc<Task>>,
    /// The task switched away from, kept alive until the switch completed
    /// (a dead task's stack is in use until then).
    prev: Option<Arc<Task>>,
}

static RQ: Mutex<RunQueue, crate::sync::order::RunQueue> =
    Mutex::new(RunQueue { queue: VecDeque::new(), current: None, prev: None });
static IDLE_RSP: AtomicU64 = AtomicU64::new(0);
static NEED_RESCHED: AtomicBool = AtomicBool::new(false);
/// Tasks sleeping with a deadline (`Task::wake_at`), checked every tick.
static SLEEPERS: Mutex<Vec<Arc<Task>>, crate::sync::order::Sleepers> = Mutex::new(Vec::new());
/// Context switches since boot.
pub static SWITCHES: AtomicU64 = AtomicU64::new(0);

/// Runs `f` with interrupts masked.
fn irq_off<R>(f: impl FnOnce() -> R) -> R {
    cpu::without_interrupts(f)
}

pub fn current() -> Option<Arc<Task>> {
    irq_off(|| RQ.lock().current.clone())
}

/// Makes `t` runnable if it sleeps in one of `states`; true if it did.
fn wake_up_state(t: &Arc<Task>, states: &[TaskState]) -> bool {
    irq_off(|| {
        let woke = states.iter().any(|&s| t.transition(s, TaskState::Runnable));
        if woke {
            RQ.lock().queue.push_back(t.clone());
        }
        woke
    })
}

/// Makes a sleeping task runnable, however it sleeps (the event it waited for happened).
pub fn wake_up(t: &Arc<Task>) -> bool {
    wake_up_state(t, &[TaskState::Interruptible, TaskState::Uninterruptible, TaskState::Killable])
}

/// Wakes `t` for a new signal (Linux's `signal_wake_up`): an interruptible sleeper always,
/// a killable one if the signal is `fatal`.
pub fn signal_wake_up(t: &Arc<Task>, fatal: bool) {
    let states: &[TaskState] =
        if fatal { &[TaskState::Interruptible, TaskState::Killable] } else { &[TaskState::Interruptible] };
    wake_up_state(t, states);
}

/// Queues a new task.
pub fn add_task(t: Arc<Task>) {
    t.set_state(TaskState::Runnable);
    irq_off(|| RQ.lock().queue.push_back(t));
}

/// Registers the current task's deadline sleep (`wake_at` set by the caller).
pub fn add_sleeper(t: Arc<Task>) {
    irq_off(|| SLEEPERS.lock().push(t));
}

/// Withdraws the current task's deadline sleep once it has woken (for whatever reason):
/// the list must not keep a task, and so its kernel stack, alive after it has exited.
pub fn remove_sleeper(t: &Arc<Task>) {
    irq_off(|| SLEEPERS.lock().retain(|s| !Arc::ptr_eq(s, t)));
}

/// Called from the timer interrupt.
pub fn timer_tick(from_user: bool) {
    let now = crate::arch::apic::uptime_ns();
    if !from_user {
        if let Some(t) = RQ.lock().current.as_ref() {
            t.sys_ticks.fetch_add(1, Ordering::Relaxed);
        }
    }
    // No allocation here: the interrupted code may be in the middle of one.
    SLEEPERS.lock().retain(|t| {
        let at = t.wake_at.load(Ordering::Relaxed);
        if at != 0 && at <= now {
            wake_up(t);
        }
        at != 0 && at > now
    });
    NEED_RESCHED.store(true, Ordering::Relaxed);
}

/// Gives up the CPU if the time slice is used (Linux's `cond_resched`): for kernel loops
/// whose length a user controls, at a point where they hold no lock.
pub fn cond_resched() {
    if need_resched() {
        schedule();
    }
}

pub fn need_resched() -> bool {
    NEED_RESCHED.load(Ordering::Relaxed)
}

/// Loads the next task's address space, TLS base and kernel stack.
fn switch_in(next: &Task) {
    crate::mm::fail::switch_to_task(Some(next.process.pid));
    // The address space is taken out of the task's slot first: its own lock is taken
    // to activate it, and it is not nested under the slot's.
    let mm = next.mm.lock().clone();
    match mm {
        Some(mm) => mm.activate(),
        None => crate::mm::kernel_map::switch_address_space(crate::mm::kernel_map::kernel_root()),
    }
    percpu::set_user_fs_base(next.fs_base.load(Ordering::Relaxed));
    percpu::set_kernel_stack(next.kstack.top());
    next.fpu.lock().restore();
}

/// Gives up the CPU. Returns when the current task is picked again (at
/// once if nothing else is runnable and it still is).
pub fn schedule() {
    let was_enabled = cpu::interrupts_enabled();
    cpu::disable_interrupts();
    crate::sync::lockdep::assert_none_held("schedule");
    crate::watchdog::touch();
    let switch = {
        let mut rq = RQ.lock();
        NEED_RESCHED.store(false, Ordering::Relaxed);
        let prev = rq.current.take();
        if let Some(p) = &prev {
            if p.state() == TaskState::Running {
                p.set_state(TaskState::Runnable);
                rq.queue.push_back(p.clone());
            }
        }
        let next = loop {
            match rq.queue.pop_front() {
                Some(t) if t.state() == TaskState::Runnable => break Some(t),
                Some(_) => continue,
                None => break None,
            }
        };
        let same = match (&prev, &next) {
            (Some(p), Some(n)) => Arc::ptr_eq(p, n),
            (None, None) => true,
            _ => false,
        };
        if same {
            if let Some(n) = &next {
                n.set_state(TaskState::Running);
            }
            rq.current = next;
            None
        } else {
            let now = crate::arch::apic::uptime_ns();
            if let Some(p) = &prev {
                let ran = now.saturating_sub(p.on_cpu_since.load(Ordering::Relaxed));
                p.runtime_ns.fetch_add(ran, Ordering::Relaxed);
            }
            if let Some(n) = &next {
                n.on_cpu_since.store(now, Ordering::Relaxed);
                n.set_state(TaskState::Running);
            }
            rq.current = next.clone();
            rq.prev = prev.clone();
            Some((prev, next))
        }
    };
    if let Some((prev, next)) = switch {
        // Outside the run-queue lock (interrupts still masked): saving and loading the
        // tasks' FPU state and address space take their own locks, which must not nest in it.
        let prev_rsp = match &prev {
            Some(p) => {
                if p.state() != TaskState::Dead {
                    p.fpu.lock().save();
                }
                p.saved_rsp.as_ptr()
            }
            None => IDLE_RSP.as_ptr(),
        };
        let next_rsp = match &next {
            Some(n) => {
                switch_in(n);
                n.saved_rsp.load(Ordering::Relaxed)
            }
            None => {
                crate::mm::fail::switch_to_task(None);
                crate::mm::kernel_map::switch_address_space(crate::mm::kernel_map::kernel_root());
                IDLE_RSP.load(Ordering::Relaxed)
            }
        };
        // RQ.current and RQ.prev keep both tasks alive across the switch.
        drop((prev, next));
        SWITCHES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: prev_rsp points into the previous task (kept alive by RQ.prev) or the idle
        // slot; next_rsp was saved by a previous switch or prepared by prepare_new_task.
        unsafe_switch(prev_rsp, next_rsp);
        schedule_tail();
    }
    if was_enabled {
        cpu::enable_interrupts();
    }
}

#[allow(unsafe_code)]
fn unsafe_switch(prev_rsp: *mut u64, next_rsp: u64) {
    // SAFETY: see the caller.
    unsafe { context::switch(prev_rsp, next_rsp) }
}

/// First thing after a switch completes (also a new task's first step):
/// drops the reference that kept the previous task alive.
pub fn schedule_tail() {
    let prev = irq_off(|| RQ.lock().prev.take());
    drop(prev);
}

/// The boot context becomes the idle loop: run tasks, halt when none is runnable.
pub fn idle_loop() -> ! {
    loop {
        crate::watchdog::touch();
        super::itimer::check_expired();
        crate::leak::idle_check();
        cpu::disable_interrupts();
        let empty = RQ.lock().queue.is_empty();
        if empty {
            cpu::enable_interrupts_and_halt();
        } else {
            schedule();
        }
    }
}

pub fn runnable_count() -> usize {
    irq_off(|| RQ.lock().queue.len())
}

/// Gives back the run queue's and the sleeper list's spare capacity (`leak`'s shrinkers).
pub fn shrink() {
    irq_off(|| {
        RQ.lock().queue.shrink_to_fit();
        SLEEPERS.lock().shrink_to_fit();
    });
}
