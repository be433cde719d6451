//! The watchdog: Linux's soft-lockup detector (kernel/watchdog.c) and
//! hung-task detector (kernel/hung_task.c), both run from the timer tick.
//!
//! - Soft lockup: a CPU whose ticks keep finding it in kernel mode without
//!   it having scheduled (a context switch, an idle-loop pass, a tick from
//!   user mode) for `watchdog_thresh` seconds spins in the kernel and starves
//!   everything else. `touch` is Linux's `touch_softlockup_watchdog`.
//! - Hard lockup: a CPU that has taken no tick for as long (interrupts off).
//!   Only another CPU's tick can see that (Linux uses an NMI); with one CPU
//!   the runner's timeout catches it. Every CPU's tick runs both checks.
//! - Hung task: a task in an uninterruptible or killable sleep (not a stopped
//!   one) for `hung_task_timeout_secs` seconds. Interruptible sleeps (`sleep`,
//!   a blocked read) never count.
//!
//! A report prints `mshare-kernel: WATCHDOG: ...`, the culprit's kernel
//! backtrace and every task's last system calls, and fails the run.
//! Bounds come from the command line (`watchdog_thresh=S`,
//! `hung_task_timeout_secs=S`; 0 disables); both default to 20 s, far above
//! anything the test suites or the fuzzer legitimately take under TCG.

use crate::arch::serial::write_fmt_emergency;
use crate::arch::trap::TrapFrame;
use crate::process::task::TaskState;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const NS: u64 = 1_000_000_000;
const DEFAULT_THRESH_S: u64 = 20;
use crate::arch::percpu::MAX_CPUS;

static SOFTLOCKUP_NS: AtomicU64 = AtomicU64::new(DEFAULT_THRESH_S * NS);
static HUNG_TASK_NS: AtomicU64 = AtomicU64::new(DEFAULT_THRESH_S * NS);
/// Per CPU: when it last scheduled (0: not yet armed).
static TOUCHED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: its last tick (0: offline or not started).
static TICKED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The next hung-task scan (once a second, as often as khungtaskd looks per timeout).
static NEXT_SCAN: AtomicU64 = AtomicU64::new(0);
/// One report only: the first one ends the run.
static FIRED: AtomicBool = AtomicBool::new(false);
/// The longest stretch a tick found without scheduling, and the longest watched sleep
/// a scan found (ns): how close a run came to the bounds.
static MAX_STALL: AtomicU64 = AtomicU64::new(0);
static MAX_SLEEP: AtomicU64 = AtomicU64::new(0);

/// The CPU running this code.
fn cpu() -> usize {
    crate::arch::percpu::cpu_id()
}

/// Reads the bounds from the command line.
pub fn init(cmdline: &str) {
    let secs = |key| crate::cmdline::get(cmdline, key).and_then(|v| v.parse::<u64>().ok());
    if let Some(s) = secs("watchdog_thresh") {
        SOFTLOCKUP_NS.store(s * NS, Ordering::Relaxed);
    }
    if let Some(s) = secs("hung_task_timeout_secs") {
        HUNG_TASK_NS.store(s * NS, Ordering::Relaxed);
    }
}

/// This CPU is making progress (it scheduled, or a long kernel job reached a
/// point where it would have): restarts its soft-lockup clock.
pub fn touch() {
    TOUCHED[cpu()].store(crate::arch::apic::uptime_ns().max(1), Ordering::Relaxed);
}

/// From the timer interrupt, with `frame` the interrupted context.
pub fn tick(frame: &TrapFrame) {
    let now = crate::arch::apic::uptime_ns().max(1);
    let me = cpu();
    TICKED[me].store(now, Ordering::Relaxed);
    if FIRED.load(Ordering::Relaxed) {
        return;
    }
    let soft = SOFTLOCKUP_NS.load(Ordering::Relaxed);
    if frame.from_user() || TOUCHED[me].load(Ordering::Relaxed) == 0 {
        TOUCHED[me].store(now, Ordering::Relaxed);
    } else {
        let stall = now.saturating_sub(TOUCHED[me].load(Ordering::Relaxed));
        MAX_STALL.fetch_max(stall, Ordering::Relaxed);
        if soft != 0 && stall > soft {
            soft_lockup(me, now, frame);
        }
    }
    for (cpu, t) in TICKED.iter().enumerate() {
        let last = t.load(Ordering::Relaxed);
        if cpu != me && soft != 0 && last != 0 && now.saturating_sub(last) > soft {
            report_start(format_args!("hard lockup: CPU {} has taken no timer tick for {} s", cpu, (now - last) / NS));
            finish();
        }
    }
    let next = NEXT_SCAN.load(Ordering::Relaxed);
    // One CPU scans per second: the one that moves the mark.
    if now >= next && NEXT_SCAN.compare_exchange(next, now + NS, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        check_hung_tasks(now);
    }
}

/// Prints how close the run came to the bounds (at shutdown, for the record).
pub fn print_margins() {
    crate::println!(
        "mshare-kernel: watchdog: longest kernel stretch without scheduling {} ms, longest uninterruptible or killable sleep seen {} ms (bounds {} s, {} s)",
        MAX_STALL.load(Ordering::Relaxed) / 1_000_000,
        MAX_SLEEP.load(Ordering::Relaxed) / 1_000_000,
        SOFTLOCKUP_NS.load(Ordering::Relaxed) / NS,
        HUNG_TASK_NS.load(Ordering::Relaxed) / NS
    );
}

/// Prints the report's first line, once.
fn report_start(what: core::fmt::Arguments) {
    if FIRED.swap(true, Ordering::SeqCst) {
        return;
    }
    write_fmt_emergency(format_args!("\nmshare-kernel: WATCHDOG: {}\n", what));
}

/// Every task's last system calls, then the run fails.
fn finish() -> ! {
    crate::syscall::dump_tasks();
    crate::power_off(false)
}

fn soft_lockup(cpu: usize, now: u64, frame: &TrapFrame) -> ! {
    let since = TOUCHED[cpu].load(Ordering::Relaxed);
    let task = crate::process::sched::current();
    match &task {
        Some(t) => report_start(format_args!(
            "soft lockup: CPU {} stuck in kernel mode for {} s in pid {} tid {} ({}), RIP={:#x}",
            cpu,
            (now - since) / NS,
            t.process.pid,
            t.tid(),
            Comm(t),
            frame.rip
        )),
        None => report_start(format_args!(
            "soft lockup: CPU {} stuck in kernel mode for {} s outside any task, RIP={:#x}",
            cpu,
            (now - since) / NS,
            frame.rip
        )),
    }
    write_fmt_emergency(format_args!("  {:#018x} (interrupted)\n", frame.rip));
    match &task {
        Some(t) => {
            let top = t.kstack.top();
            crate::backtrace::print_within(frame.rbp, top - crate::arch::context::KSTACK_SIZE, top);
        }
        None => crate::backtrace::print(frame.rbp),
    }
    drop(task);
    finish()
}

/// A task's command name, without waiting for its lock.
struct Comm<'a>(&'a crate::process::task::Task);

impl core::fmt::Display for Comm<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let comm = self.0.comm.try_lock().map(|c| *c).unwrap_or(*b"(comm locked)\0\0\0");
        let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        f.write_str(core::str::from_utf8(&comm[..len]).unwrap_or("?"))
    }
}

/// Whether `state` is a sleep the hung-task detector watches.
fn watched(state: TaskState) -> bool {
    matches!(state, TaskState::Uninterruptible | TaskState::Killable)
}

/// Reports the first task that has slept uninterruptibly (or killably) for
/// longer than the bound. Skips the scan when the task table is busy: the
/// interrupted code holds it, and the next second will do.
fn check_hung_tasks(now: u64) {
    let bound = HUNG_TASK_NS.load(Ordering::Relaxed);
    if bound == 0 {
        return;
    }
    let hung = {
        let Some(tables) = crate::process::task::TABLES.try_lock() else { return };
        tables.tasks.values().filter_map(|w| w.upgrade()).find(|t| {
            let since = t.sleep_since.load(Ordering::Relaxed);
            let asleep = now.saturating_sub(since);
            let counted = watched(t.state()) && !t.process.stopped.load(Ordering::Relaxed) && since != 0;
            if counted {
                MAX_SLEEP.fetch_max(asleep, Ordering::Relaxed);
            }
            counted && asleep > bound
        })
    };
    let Some(t) = hung else { return };
    report_start(format_args!(
        "hung task: pid {} tid {} ({}) in {} sleep for {} s",
        t.process.pid,
        t.tid(),
        Comm(&t),
        if t.state() == TaskState::Killable { "a killable" } else { "an uninterruptible" },
        (now - t.sleep_since.load(Ordering::Relaxed)) / NS
    ));
    // A switched-out task's stack starts with `switch_context`'s frame: r15 r14 r13
    // r12 rbx rbp, then the return address into `schedule`.
    let top = t.kstack.top();
    let rsp = t.saved_rsp.load(Ordering::Relaxed);
    let lo = top - crate::arch::context::KSTACK_SIZE;
    if rsp >= lo && rsp + 7 * 8 <= top {
        let (rbp, ret) = crate::mm::read_stack_frame(rsp + 5 * 8);
        write_fmt_emergency(format_args!("  {:#018x} (switched out)\n", ret));
        crate::backtrace::print_within(rbp, lo, top);
    }
    drop(t);
    finish()
}

/// Deliberate failures, run only by name (`ktest=NAME`): each must end in a
/// watchdog report (the runner boots them with short bounds).
pub(crate) const FAULT_TESTS: &[crate::ktest::KTest] = crate::ktests![fault_soft_lockup, fault_hung_task];

/// Spins in kernel mode with interrupts on, never scheduling.
fn fault_soft_lockup() {
    loop {
        core::hint::spin_loop();
    }
}

/// Where `fault_hung_task`'s thread sleeps: nothing ever wakes it.
static NEVER: crate::process::wait_queue::WaitQueue = crate::process::wait_queue::WaitQueue::new();

/// The body of `fault_hung_task`'s kernel thread.
extern "C" fn sleep_uninterruptibly_forever() -> ! {
    let _ = NEVER.wait_until(false, || None::<()>);
    unreachable!("an uninterruptible sleep on a queue nobody wakes ended");
}

/// A kernel thread (a task entered in ring 0) sleeps uninterruptibly forever
/// while the boot context becomes the idle loop.
fn fault_hung_task() {
    drop(crate::ktest::spawn_kthread("hung_task", sleep_uninterruptibly_forever));
    crate::process::sched::idle_loop()
}
