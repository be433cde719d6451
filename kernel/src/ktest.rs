//! In-kernel tests: code that can only be checked on the real hardware
//! layer (page tables the MMU walks, the frame allocator over the real
//! memory map, interrupts). Booting with `ktest` runs them all and exits;
//! `ktest=NAME` runs one, including the deliberate-fault tests that are not
//! part of the full run (they end the kernel by design).
//!
//! Output protocol, read by `cargo xtask test`: one `ktest NAME ... ok` per
//! test, a `ktest NAME ... FAILED` from the panic handler, and a final
//! `ktest result: N passed, 0 failed`. After every test the frames in use
//! (minus heap and kernel page tables, which grow on demand) must be back at
//! their starting count: a leak fails the test.

use crate::mm::frame;
use crate::sync::SpinLock as Mutex;

pub struct KTest {
    pub name: &'static str,
    pub func: fn(),
}

/// `ktests![a, b]` builds a `&[KTest]` named after the functions.
#[macro_export]
macro_rules! ktests {
    ($($f:ident),* $(,)?) => { &[$($crate::ktest::KTest { name: stringify!($f), func: $f }),*] };
}

fn suites() -> [&'static [KTest]; 13] {
    [
        KTESTS,
        crate::cmdline::KTESTS,
        crate::sync::rwsem::KTESTS,
        crate::mm::tests::KTESTS,
        crate::mm::fail::KTESTS,
        crate::mm::pt_share::KTESTS,
        crate::initramfs::KTESTS,
        crate::process::exec::KTESTS,
        crate::syscall::trace::KTESTS,
        crate::leak::KTESTS,
        crate::arch::smp::tests::KTESTS,
        crate::mm::tlb::tests::KTESTS,
        crate::sync::lockdep::KTESTS,
    ]
}

/// Tests that crash the kernel on purpose; run only by name.
fn fault_tests() -> impl Iterator<Item = &'static KTest> {
    crate::mm::tests::FAULT_TESTS
        .iter()
        .chain(crate::watchdog::FAULT_TESTS)
        .chain(crate::leak::FAULT_TESTS)
        .chain(crate::sync::lockdep::FAULT_TESTS)
}

static CURRENT: Mutex<Option<&'static str>, crate::sync::order::KtestCurrent> = Mutex::new(None);

/// The test running now, for the panic handler's `FAILED` line.
pub fn current() -> Option<&'static str> {
    CURRENT.try_lock().and_then(|c| *c)
}

fn frames_in_use() -> u64 {
    frame::frames_in_use()
}

/// Runs the named test, or all when `filter` is empty. Returns (passed, failed).
pub fn run(filter: &str) -> (usize, usize) {
    let mut passed = 0;
    let mut failed = 0;
    let mut found = false;
    let all = suites();
    let candidates = all.iter().flat_map(|s| s.iter()).chain(fault_tests().filter(|_| !filter.is_empty()));
    for t in candidates {
        if !filter.is_empty() && t.name != filter {
            continue;
        }
        found = true;
        *CURRENT.lock() = Some(t.name);
        let before = frames_in_use();
        crate::watchdog::touch();
        (t.func)();
        let after = frames_in_use();
        if after != before {
            crate::println!("ktest {} ... FAILED: frames in use {} before, {} after", t.name, before, after);
            failed += 1;
        } else {
            crate::println!("ktest {} ... ok", t.name);
            passed += 1;
        }
        *CURRENT.lock() = None;
    }
    if !found {
        crate::println!("ktest {} ... FAILED: no such test", filter);
        failed += 1;
    }
    crate::println!("ktest result: {} passed, {} failed", passed, failed);
    (passed, failed)
}

/// A kernel thread for tests that need several tasks (sleeping locks): a task of a
/// process of its own, entered in ring 0 at `entry`, made runnable. The boot context,
/// which the tests run in, lets it run with `run_until`; it ends with `kthread_exit`
/// and is freed by `reap_kthread`.
pub fn spawn_kthread(name: &str, entry: extern "C" fn() -> !) -> alloc::sync::Arc<crate::process::task::Task> {
    spawn_kthread_on(name, entry, crate::process::task::ALL_CPUS)
}

/// [`spawn_kthread`] with an affinity: the thread runs only on the CPUs of `cpus`.
pub fn spawn_kthread_on(
    name: &str,
    entry: extern "C" fn() -> !,
    cpus: u64,
) -> alloc::sync::Arc<crate::process::task::Task> {
    let t = crate::process::task::create_bare_task(name).expect("no memory for a task");
    t.cpus_allowed.store(cpus, core::sync::atomic::Ordering::Relaxed);
    let sel = crate::arch::gdt::selectors();
    let frame = crate::arch::trap::TrapFrame {
        rip: entry as *const () as u64,
        cs: sel.kernel_code.0 as u64,
        ss: sel.kernel_data.0 as u64,
        rflags: 0x202,
        // The function starts as if called: RSP + 8 is 16-byte aligned.
        rsp: t.kstack.top() - 8,
        ..Default::default()
    };
    let rsp = t.kstack.prepare(&frame);
    t.saved_rsp.store(rsp, core::sync::atomic::Ordering::Relaxed);
    crate::process::sched::add_task(t.clone());
    t
}

/// Ends the calling test kernel thread: it is never scheduled again.
pub fn kthread_exit() -> ! {
    let t = crate::process::current();
    t.set_state(crate::process::task::TaskState::Dead);
    drop(t);
    crate::process::sched::schedule();
    unreachable!("a dead kernel thread was scheduled");
}

/// Lets the runnable tasks run, from the boot context, until `done` holds (true) or
/// nothing happened for many rounds (false).
pub fn run_until(done: impl Fn() -> bool) -> bool {
    for _ in 0..10_000 {
        if done() {
            return true;
        }
        crate::process::sched::schedule();
    }
    done()
}

/// Frees a test kernel thread that has called `kthread_exit`: its task, process,
/// address space and stack.
pub fn reap_kthread(t: alloc::sync::Arc<crate::process::task::Task>) {
    use crate::process::task::TABLES;
    assert_eq!(t.state(), crate::process::task::TaskState::Dead, "reaping a live kernel thread");
    t.process.threads.lock().clear();
    {
        let mut tables = TABLES.lock();
        tables.tasks.remove(&t.tid());
        tables.processes.remove(&t.process.pid);
    }
    // A thread that ended on another CPU may not be switched away from yet: that CPU
    // holds a reference until its `schedule_tail`, and the stack is freed with the last
    // one. Wait for it, so that the test's frame count sees the stack gone.
    let mut spins = 0u64;
    while alloc::sync::Arc::strong_count(&t) > 1 {
        spins += 1;
        assert!(spins < 1 << 32, "a reaped kernel thread is still referenced");
        core::hint::spin_loop();
    }
}

/// Tests of the harness itself.
pub static KTESTS: &[KTest] = crate::ktests![reap_kthread_waits_for_a_thread_still_switching_away];

static ENDING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// `kthread_exit` with a wide window between marking itself dead and switching away.
extern "C" fn slow_exit() -> ! {
    let t = crate::process::current();
    t.set_state(crate::process::task::TaskState::Dead);
    drop(t);
    ENDING.store(true, core::sync::atomic::Ordering::SeqCst);
    let until = crate::time::monotonic_ns() + 50_000_000;
    while crate::time::monotonic_ns() < until {
        core::hint::spin_loop();
    }
    crate::process::sched::schedule();
    unreachable!("a dead kernel thread was scheduled");
}

/// A thread on another CPU that is dead but not yet switched away from still holds its
/// stack: reaping it returns only once that CPU has let go, so the frames are back.
fn reap_kthread_waits_for_a_thread_still_switching_away() {
    if crate::arch::percpu::nr_cpus_online() < 2 {
        return;
    }
    ENDING.store(false, core::sync::atomic::Ordering::SeqCst);
    let before = frames_in_use();
    let t = spawn_kthread_on("slow_exit", slow_exit, 1 << 1);
    assert!(run_until(|| ENDING.load(core::sync::atomic::Ordering::SeqCst)), "the thread never ran");
    reap_kthread(t);
    assert_eq!(frames_in_use(), before, "the thread's stack outlived its reaping");
}
