//! The scheduler (Linux's kernel/sched/core.c and the balancing of kernel/sched/fair.c):
//! a run queue per CPU, round robin with a 10 ms slice (the timer tick). The kernel is
//! non-preemptive (Linux's PREEMPT_NONE): a task is switched out only when it sleeps,
//! yields, or returns to user mode with the slice used up, so kernel code never holds a
//! spinlock across a switch.
//!
//! **Per CPU.** Each CPU has its run queue (`RQS[cpu]`: the queued tasks, the running one,
//! the one it is switching away from), its idle context (the boot context on CPU 0, the
//! bring-up stack on the others, all in [`idle_loop`]), its need-resched flag and its
//! current task in `PerCpu` (read by [`current`] without a lock).
//!
//! **A task's CPU.** `Task::cpu` is the CPU whose run queue holds the task, that runs it,
//! or that ran it last; it and `Task::on_rq` (queued or running) change only under that
//! run queue's lock. `Task::on_cpu` (Linux's `p->on_cpu`) is set when a CPU picks the
//! task and cleared by that CPU in [`schedule_tail`], once the switch away from it has
//! saved its registers and left its stack: until then no other CPU may start it. So a
//! waker that finds a task still switching out queues it on the CPU it leaves, which
//! cannot pick it before finishing the switch, and the balancer never takes such a task.
//!
//! **Wake-up** ([`try_to_wake_up`]): the state moves from asleep to Runnable by a
//! compare-and-swap, so one waker wins. If the task is still on its run queue (it is
//! running, about to sleep: wait queues enqueue before they test, so the waker's change
//! is seen by the test or the wake finds the task here), the new state is all it takes:
//! `schedule` keeps a Runnable task queued. Otherwise it is queued on its previous CPU if
//! that is idle, else on an idle CPU its affinity allows, else on its previous CPU
//! (Linux's `select_task_rq_fair` / `select_idle_sibling`), and an idle target gets the
//! reschedule IPI. Fork places the new task on the least loaded allowed CPU.
//!
//! **Balancing** ([`load_balance`]): from the tick (every tick when this CPU is idle,
//! every `BUSY_BALANCE_TICKS` otherwise) and before a CPU halts, it pulls one queued task
//! from the busiest CPU when that has at least two more runnable tasks than this one,
//! among the tasks allowed here that are not running or switching out.
//!
//! **Affinity** ([`set_cpus_allowed`]): a queued task on a CPU no longer allowed is
//! moved at once; a running one is told to reschedule, and `schedule` hands it, once
//! switched out, to an allowed CPU (`schedule_tail`).
//!
//! Lock order: the sleeper list, then the run queues (`sync::order`: above every lock
//! held with interrupts enabled, since the timer interrupt takes both), all with
//! interrupts masked; two run queues at once only through [`lock_pair`], the lower CPU
//! first (`lock_nested` subclass 0, then 1); under them only the heap (a queue
//! growing). No address-space, FPU or sleeping lock is taken under a run queue:
//! `schedule` decides under it and switches address space and FPU state after
//! releasing it.

use super::task::{Task, TaskState};
use crate::arch::percpu::{self, CpuMask, MAX_CPUS};
use crate::arch::{context, cpu, smp};
use crate::sync::IrqMutex as Mutex;
use crate::sync::IrqMutexGuard;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

struct RunQueue {
    /// Runnable tasks waiting for this CPU, next first.
    queue: VecDeque<Arc<Task>>,
    /// None while the idle loop runs.
    current: Option<Arc<Task>>,
    /// The task switched away from, kept alive until the switch completed
    /// (a dead task's stack is in use until then).
    prev: Option<Arc<Task>>,
    /// `prev` is runnable but no longer allowed on this CPU: once switched out it goes to
    /// another (`schedule_tail`).
    prev_migrate: bool,
}

impl RunQueue {
    const fn new() -> RunQueue {
        RunQueue { queue: VecDeque::new(), current: None, prev: None, prev_migrate: false }
    }

    fn nr_running(&self) -> usize {
        self.queue.len() + self.current.is_some() as usize
    }
}

type RqGuard = IrqMutexGuard<'static, RunQueue>;

static RQS: [Mutex<RunQueue, crate::sync::order::RunQueue>; MAX_CPUS] =
    [const { Mutex::new(RunQueue::new()) }; MAX_CPUS];
/// Per CPU: the idle context's saved RSP while a task runs there.
static IDLE_RSP: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: its run queue's `nr_running` (queued + running), for placement and balancing
/// decisions made without its lock (each rechecked under it).
static NR_RUNNING: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Tasks sleeping with a deadline (`Task::wake_at`), checked every tick of CPU 0.
static SLEEPERS: Mutex<Vec<Arc<Task>>, crate::sync::order::Sleepers> = Mutex::new(Vec::new());
/// Context switches since boot, all CPUs (`ctxt` of /proc/stat).
pub static SWITCHES: AtomicU64 = AtomicU64::new(0);
/// A busy CPU looks for imbalance every this many ticks (an idle one every tick).
const BUSY_BALANCE_TICKS: u64 = 4;

/// Runs `f` with interrupts masked.
fn irq_off<R>(f: impl FnOnce() -> R) -> R {
    cpu::without_interrupts(f)
}

fn lock_rq(cpu: usize) -> RqGuard {
    RQS[cpu].lock()
}

fn update_nr(cpu: usize, rq: &RunQueue) {
    NR_RUNNING[cpu].store(rq.nr_running(), Ordering::Relaxed);
}

/// Two run queues locked in CPU order (Linux's `double_rq_lock`); one if `a == b`.
/// `hi` comes first so that it is unlocked first (fields drop in order).
struct RqPair {
    hi: Option<(usize, RqGuard)>,
    lo: (usize, RqGuard),
}

impl RqPair {
    fn get(&mut self, cpu: usize) -> &mut RunQueue {
        if self.lo.0 == cpu {
            return &mut self.lo.1;
        }
        match &mut self.hi {
            Some((c, g)) if *c == cpu => g,
            _ => unreachable!("run queue {} not in the pair", cpu),
        }
    }
}

fn lock_pair(a: usize, b: usize) -> RqPair {
    if a == b {
        return RqPair { hi: None, lo: (a, lock_rq(a)) };
    }
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let g_lo = RQS[lo].lock_nested(0);
    let g_hi = RQS[hi].lock_nested(1);
    RqPair { hi: Some((hi, g_hi)), lo: (lo, g_lo) }
}

/// The running task of this CPU: its own `PerCpu` slot, no lock.
/// Runs `f` on the running task without taking a reference: it cannot go while it runs
/// (the scheduler holds it until another task is recorded on this CPU, which only
/// `schedule` does, and `f` must not call it). None with no task (early boot, idle).
pub fn with_current<R>(f: impl FnOnce(&Task) -> R) -> Option<R> {
    percpu::with_this_cpu_current::<Task, R>(f)
}

pub fn current() -> Option<Arc<Task>> {
    percpu::this_cpu_current::<Task>()
}

/// The CPUs `t` may run on now: its affinity among the online CPUs (all online CPUs
/// should that leave none, as Linux's `select_fallback_rq`).
fn allowed_cpus(t: &Task) -> CpuMask {
    let online = percpu::cpu_online_mask();
    let m = CpuMask(t.cpus_allowed.load(Ordering::Relaxed) & online.0);
    if m.is_empty() {
        online
    } else {
        m
    }
}

/// The least loaded CPU of `allowed`, `prefer` on a tie.
fn idlest_cpu(allowed: CpuMask, prefer: usize) -> usize {
    let load = |c: usize| NR_RUNNING[c].load(Ordering::Relaxed);
    let mut best = if allowed.contains(prefer) { prefer } else { allowed.iter().next().unwrap_or(0) };
    for c in allowed.iter() {
        if load(c) < load(best) {
            best = c;
        }
    }
    best
}

/// Where a waking task goes (Linux's `select_task_rq`): its previous CPU if idle, else an
/// idle allowed CPU, else its previous CPU (cache-warm) if allowed, else the least loaded.
/// `fork`: a new task, which has no previous CPU: the least loaded allowed CPU.
fn select_task_rq(t: &Task, prev: usize, fork: bool) -> usize {
    let allowed = allowed_cpus(t);
    let idle = |c: usize| NR_RUNNING[c].load(Ordering::Relaxed) == 0;
    if fork {
        return idlest_cpu(allowed, prev);
    }
    if allowed.contains(prev) && idle(prev) {
        return prev;
    }
    if let Some(c) = allowed.iter().find(|&c| idle(c)) {
        return c;
    }
    if allowed.contains(prev) {
        return prev;
    }
    idlest_cpu(allowed, prev)
}

/// Queues `t` on `rq` (CPU `cpu`), whose lock the caller holds.
fn enqueue(rq: &mut RunQueue, cpu: usize, t: Arc<Task>) {
    t.cpu.store(cpu as u32, Ordering::Relaxed);
    t.on_rq.store(true, Ordering::Relaxed);
    rq.queue.push_back(t);
    update_nr(cpu, rq);
}

/// After queueing on `cpu` a task it should start: the reschedule IPI if that is
/// another CPU and it idles (a busy one takes the task within its slice).
fn kick(cpu: usize, was_idle: bool) {
    if was_idle && cpu != percpu::cpu_id() {
        smp::smp_send_reschedule(cpu);
    }
}

/// Queues a runnable task that is on no run queue and on no CPU, on `cpu`.
fn activate_task(t: Arc<Task>, cpu: usize) {
    let mut rq = lock_rq(cpu);
    let idle = rq.current.is_none();
    enqueue(&mut rq, cpu, t);
    drop(rq);
    kick(cpu, idle);
}

/// Makes `t` runnable if it sleeps in one of `states`; true if it did (Linux's
/// `try_to_wake_up`).
fn try_to_wake_up(t: &Arc<Task>, states: &[TaskState]) -> bool {
    irq_off(|| {
        if !states.iter().any(|&s| t.transition(s, TaskState::Runnable)) {
            return false;
        }
        loop {
            let prev = t.cpu.load(Ordering::Acquire) as usize;
            let target = if t.on_cpu.load(Ordering::Acquire) { prev } else { select_task_rq(t, prev, false) };
            let mut pair = lock_pair(prev, target);
            if t.cpu.load(Ordering::Relaxed) as usize != prev {
                continue; // moved meanwhile: its run queue is another one
            }
            if t.on_rq.load(Ordering::Relaxed) {
                // Queued, or running on `prev` on its way to sleep: `schedule` keeps a
                // Runnable task on its run queue (Linux's `ttwu_runnable`).
                return true;
            }
            // Still switching out on `prev`: only `prev` may start it, after the switch.
            let target = if t.on_cpu.load(Ordering::Acquire) { prev } else { target };
            let rq = pair.get(target);
            let idle = rq.current.is_none();
            enqueue(rq, target, t.clone());
            drop(pair);
            kick(target, idle);
            return true;
        }
    })
}

/// Makes a sleeping task runnable, however it sleeps (the event it waited for happened).
pub fn wake_up(t: &Arc<Task>) -> bool {
    try_to_wake_up(t, &[TaskState::Interruptible, TaskState::Uninterruptible, TaskState::Killable])
}

/// Wakes `t` for a new signal (Linux's `signal_wake_up`): an interruptible sleeper always,
/// a killable one if the signal is `fatal`. A task running on another CPU is sent the
/// reschedule IPI so that it looks at its signals on its way back to user mode.
pub fn signal_wake_up(t: &Arc<Task>, fatal: bool) {
    // Before the wake-up or the kick: the return it causes must see the signal.
    t.set_pending_work();
    let states: &[TaskState] =
        if fatal { &[TaskState::Interruptible, TaskState::Killable] } else { &[TaskState::Interruptible] };
    if !try_to_wake_up(t, states) {
        kick_running(t);
    }
}

/// If `t` runs on another CPU, makes that CPU go through its return-to-user work soon
/// (Linux's `kick_process`).
fn kick_running(t: &Task) {
    irq_off(|| {
        let c = t.cpu.load(Ordering::Acquire) as usize;
        if c != percpu::cpu_id() && t.state() == TaskState::Running && t.on_cpu.load(Ordering::Acquire) {
            percpu::cpu(c).need_resched.store(true, Ordering::Relaxed);
            smp::smp_send_reschedule(c);
        }
    });
}

/// Queues a new task (Linux's `wake_up_new_task`): on the least loaded CPU its affinity
/// (inherited from its parent) allows.
pub fn add_task(t: Arc<Task>) {
    t.set_state(TaskState::Runnable);
    irq_off(|| {
        let target = select_task_rq(&t, percpu::cpu_id(), true);
        activate_task(t, target);
    });
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

/// Called from the timer interrupt, on every CPU.
pub fn timer_tick(from_user: bool) {
    let me = percpu::cpu_id();
    let pc = percpu::this_cpu();
    let cur = current();
    match &cur {
        Some(t) if from_user && t.process.nice.load(Ordering::Relaxed) > 0 => {
            pc.nice_ticks.fetch_add(1, Ordering::Relaxed);
        }
        _ if from_user => {
            pc.user_ticks.fetch_add(1, Ordering::Relaxed);
        }
        Some(t) => {
            t.sys_ticks.fetch_add(1, Ordering::Relaxed);
            pc.system_ticks.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            pc.idle_ticks.fetch_add(1, Ordering::Relaxed);
        }
    }
    drop(cur);
    if me == 0 {
        crate::tty::note_console_input();
        let now = crate::arch::apic::uptime_ns();
        // No allocation here: the interrupted code may be in the middle of one.
        SLEEPERS.lock().retain(|t| {
            let at = t.wake_at.load(Ordering::Relaxed);
            if at != 0 && at <= now {
                wake_up(t);
            }
            at != 0 && at > now
        });
    }
    pc.need_resched.store(true, Ordering::Relaxed);
    let idle = NR_RUNNING[me].load(Ordering::Relaxed) == 0;
    if idle || pc.ticks.load(Ordering::Relaxed) % BUSY_BALANCE_TICKS == 0 {
        load_balance(me);
    }
}

/// The reschedule IPI's handler (Linux's `scheduler_ipi`): the interrupted task gives up
/// the CPU at its next chance; an idle CPU returns from its halt to its run queue.
pub fn scheduler_ipi() {
    let pc = percpu::this_cpu();
    pc.note_ipi_received(percpu::IpiKind::Reschedule);
    pc.need_resched.store(true, Ordering::Relaxed);
}

/// Pulls one task to CPU `me` from the busiest CPU if that has at least two runnable
/// tasks more (Linux's `load_balance`, one task at a time), among those allowed on `me`
/// that are neither running nor switching out. Interrupts masked.
fn load_balance(me: usize) {
    let load = |c: usize| NR_RUNNING[c].load(Ordering::Relaxed);
    let mine = load(me);
    let Some(busiest) = percpu::cpu_online_mask().iter().filter(|&c| c != me).max_by_key(|&c| load(c)) else {
        return;
    };
    if load(busiest) < mine + 2 {
        return;
    }
    let mut pair = lock_pair(me, busiest);
    let (n_src, n_dst) = (pair.get(busiest).nr_running(), pair.get(me).nr_running());
    if n_src < n_dst + 2 {
        return;
    }
    let src = pair.get(busiest);
    let Some(i) = src.queue.iter().position(|t| {
        !t.on_cpu.load(Ordering::Acquire) && allowed_cpus(t).contains(me) && t.state() == TaskState::Runnable
    }) else {
        return;
    };
    let t = src.queue.remove(i).expect("index from position");
    update_nr(busiest, src);
    enqueue(pair.get(me), me, t);
}

/// Gives up the CPU if the time slice is used (Linux's `cond_resched`): for kernel loops
/// whose length a user controls, at a point where they hold no lock.
pub fn cond_resched() {
    if need_resched() {
        schedule();
    }
}

/// Whether this CPU's running task should give up the CPU.
pub fn need_resched() -> bool {
    percpu::this_cpu().need_resched.load(Ordering::Relaxed)
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
/// once if nothing else is runnable here and it still is), possibly on another CPU.
pub fn schedule() {
    let was_enabled = cpu::interrupts_enabled();
    cpu::disable_interrupts();
    crate::sync::lockdep::assert_none_held("schedule");
    crate::watchdog::touch();
    let me = percpu::cpu_id();
    let switch = {
        let mut rq = lock_rq(me);
        percpu::this_cpu().need_resched.store(false, Ordering::Relaxed);
        let prev = rq.current.take();
        let mut migrate = false;
        if let Some(p) = &prev {
            match p.state() {
                // Still runnable (preempted, yielding, or woken before it could sleep).
                TaskState::Running | TaskState::Runnable => {
                    p.set_state(TaskState::Runnable);
                    if allowed_cpus(p).contains(me) {
                        rq.queue.push_back(p.clone());
                    } else {
                        p.on_rq.store(false, Ordering::Relaxed);
                        migrate = true;
                    }
                }
                // Asleep or dead: off the run queue until a wake-up puts it back.
                _ => p.on_rq.store(false, Ordering::Relaxed),
            }
        }
        let next = loop {
            match rq.queue.pop_front() {
                Some(t) if t.state() == TaskState::Runnable => break Some(t),
                Some(t) => t.on_rq.store(false, Ordering::Relaxed),
                None => break None,
            }
        };
        let same = match (&prev, &next) {
            (Some(p), Some(n)) => Arc::ptr_eq(p, n),
            (None, None) => true,
            _ => false,
        };
        let r = if same {
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
                // `prepare_task_switch`: its critical section, if it is in one, aborts and
                // its CPU fields are rewritten before it next returns to user mode.
                p.rseq.preempt();
            }
            if let Some(n) = &next {
                n.on_cpu_since.store(now, Ordering::Relaxed);
                n.on_cpu.store(true, Ordering::Release);
                n.set_state(TaskState::Running);
            }
            percpu::set_current(next.as_ref());
            rq.current = next.clone();
            rq.prev = prev.clone();
            rq.prev_migrate = migrate;
            Some((prev, next))
        };
        update_nr(me, &rq);
        r
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
            None => IDLE_RSP[me].as_ptr(),
        };
        let next_rsp = match &next {
            Some(n) => {
                switch_in(n);
                n.saved_rsp.load(Ordering::Relaxed)
            }
            None => {
                crate::mm::fail::switch_to_task(None);
                crate::mm::kernel_map::switch_address_space(crate::mm::kernel_map::kernel_root());
                IDLE_RSP[me].load(Ordering::Relaxed)
            }
        };
        // The run queue's current and prev keep both tasks alive across the switch.
        drop((prev, next));
        SWITCHES.fetch_add(1, Ordering::Relaxed);
        percpu::this_cpu().switches.fetch_add(1, Ordering::Relaxed);
        // SAFETY: prev_rsp points into the previous task (kept alive by the run queue's
        // prev, and started nowhere else until `schedule_tail` clears its on_cpu) or this
        // CPU's idle slot; next_rsp was saved by a previous switch or prepared by
        // prepare_new_task.
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

/// First thing after a switch completes, on the CPU that made it (also a new task's
/// first step, Linux's `finish_task_switch`): the previous task's context is saved, so
/// it may now start on any CPU; a runnable one its affinity no longer allows here goes
/// to a CPU it allows; the reference that kept it alive is dropped.
pub fn schedule_tail() {
    irq_off(|| {
        let me = percpu::cpu_id();
        let (prev, migrate) = {
            let mut rq = lock_rq(me);
            let migrate = core::mem::take(&mut rq.prev_migrate);
            (rq.prev.take(), migrate)
        };
        if let Some(p) = prev {
            p.on_cpu.store(false, Ordering::Release);
            if migrate {
                let target = select_task_rq(&p, me, false);
                activate_task(p, target);
            }
        }
    });
}

/// Every CPU's idle context: run tasks, halt when none is runnable. The boot CPU enters it
/// once the kernel has started init, the others once they are online.
pub fn idle_loop() -> ! {
    let me = percpu::cpu_id();
    loop {
        crate::watchdog::touch();
        super::itimer::check_expired();
        super::posix_timer::check_expired();
        crate::tty::receive_console_input();
        if me == 0 {
            crate::leak::idle_check();
        }
        if smp::run_idle_job() {
            continue;
        }
        cpu::disable_interrupts();
        if NR_RUNNING[me].load(Ordering::Relaxed) == 0 {
            load_balance(me);
        }
        let empty = lock_rq(me).queue.is_empty();
        if empty && !smp::idle_job_pending() {
            // `sti; hlt`: an IPI that queued work after the test above ends the halt.
            cpu::enable_interrupts_and_halt();
        } else if !empty {
            schedule();
        }
    }
}

/// Whether every CPU is idle with nothing queued and none still switching away from a
/// task (its run queue's `prev`, which keeps a task that exited there alive until
/// `schedule_tail`): what the leak check waits for, so that such a task is freed before
/// the objects are counted.
pub fn all_cpus_quiet() -> bool {
    percpu::cpu_online_mask().iter().all(|c| {
        irq_off(|| {
            let rq = lock_rq(c);
            rq.current.is_none() && rq.prev.is_none() && rq.queue.is_empty()
        })
    })
}

/// Tasks running or waiting to run on every CPU (`procs_running` of /proc/stat).
pub fn runnable_count() -> usize {
    percpu::cpu_online_mask().iter().map(|c| NR_RUNNING[c].load(Ordering::Relaxed)).sum()
}

/// The CPU whose run queue holds `t`, or which ran it last.
pub fn task_cpu(t: &Task) -> usize {
    t.cpu.load(Ordering::Relaxed) as usize
}

/// Sets `t`'s affinity to `mask` (non-empty within the online CPUs) and moves it to an
/// allowed CPU if its own is no longer one (Linux's `__set_cpus_allowed_ptr`): returns
/// once `t` is queued, running or asleep where its mask allows (asleep: its wake-up places
/// it): `mask`, or the one a concurrent call stored after it. The caller is the current task.
pub fn set_cpus_allowed(t: &Arc<Task>, mask: CpuMask) {
    t.cpus_allowed.store(mask.0, Ordering::Relaxed);
    loop {
        let done = irq_off(|| {
            let c = t.cpu.load(Ordering::Acquire) as usize;
            // The mask in force, not necessarily `mask`: a concurrent call may have replaced
            // it, and the task, moved for that one, must not be chased for this one forever.
            if allowed_cpus(t).contains(c) {
                return true;
            }
            let mut rq = lock_rq(c);
            if t.cpu.load(Ordering::Relaxed) as usize != c {
                return false;
            }
            if !t.on_rq.load(Ordering::Relaxed) {
                // Asleep (its wake-up picks an allowed CPU), or between CPUs (`schedule_tail`).
                return !t.on_cpu.load(Ordering::Acquire);
            }
            let running = rq.current.as_ref().is_some_and(|r| Arc::ptr_eq(r, t));
            if running || t.on_cpu.load(Ordering::Acquire) {
                // `schedule` on `c` hands it to an allowed CPU once it is switched out.
                percpu::cpu(c).need_resched.store(true, Ordering::Relaxed);
                if c != percpu::cpu_id() {
                    smp::smp_send_reschedule(c);
                }
                return false;
            }
            let Some(i) = rq.queue.iter().position(|q| Arc::ptr_eq(q, t)) else { return false };
            let q = rq.queue.remove(i).expect("index from position");
            q.on_rq.store(false, Ordering::Relaxed);
            update_nr(c, &rq);
            drop(rq);
            let target = select_task_rq(&q, c, false);
            activate_task(q, target);
            true
        });
        if done {
            return;
        }
        // Let the running task (this one, or one on another CPU) be switched out.
        percpu::this_cpu().need_resched.store(true, Ordering::Relaxed);
        schedule();
    }
}

/// Gives back the run queues' and the sleeper list's spare capacity (`leak`'s shrinkers).
pub fn shrink() {
    irq_off(|| {
        for c in 0..MAX_CPUS {
            RQS[c].lock().queue.shrink_to_fit();
        }
        SLEEPERS.lock().shrink_to_fit();
    });
}
