//! Threads: std::thread on clone(CLONE_THREAD...), futex-based synchronisation, raw
//! futex operations, robust lists, thread pointers (arch_prctl) and per-thread signals.

use libc::*;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Duration;
use user_tests::{
    assert_errno, current_sigmask, fork_child, handler, monotonic_ns, run_in_child, run_tests, set_handler, sigbit,
    sigprocmask, sys, tests, wait_child, wait_until, Errno, Exit,
};

fn main() {
    run_tests(
        "thread",
        tests![
            proc_pid_stat_shows_the_leaders_state_not_another_threads,
            proc_pid_task_has_each_threads_stat_status_and_comm,
            spawn_join_returns_the_result,
            many_threads_increment_an_atomic_counter,
            mutex_protects_a_shared_counter,
            mutex_and_condvar_ping_pong,
            condvar_wait_timeout_times_out,
            barrier_releases_all_threads_together,
            scoped_threads_borrow_the_stack,
            panicking_thread_is_reported_by_join,
            threads_share_pid_but_have_own_tid,
            thread_locals_are_per_thread,
            futex_wait_with_wrong_value_is_eagain,
            futex_wake_without_waiters_returns_zero,
            futex_wake_returns_number_woken,
            futex_wait_with_timeout_is_etimedout,
            futex_wait_bitset_with_past_deadline_is_etimedout,
            futex_on_null_address_is_efault,
            futex_on_unaligned_address_is_einval,
            futex_with_unknown_op_is_enosys,
            set_robust_list_with_bad_size_is_einval,
            set_tid_address_returns_the_tid,
            arch_prctl_get_fs_is_the_thread_pointer,
            threads_have_distinct_thread_pointers,
            arch_prctl_with_bad_code_is_einval,
            tgkill_runs_handler_on_the_chosen_thread,
            new_thread_inherits_the_signal_mask,
            a_process_ending_while_its_threads_spawn_threads_ends_cleanly,
        ],
    )
}

fn gettid() -> i64 {
    sys!(SYS_gettid).unwrap()
}

fn futex(word: &AtomicU32, op: i32, val: u32, timeout: *const timespec) -> Result<i64, Errno> {
    sys!(SYS_futex, word.as_ptr(), op, val, timeout, 0, 0)
}

/// The state letter (third field) of a /proc stat line.
fn stat_state(path: &str) -> char {
    let text = std::fs::read_to_string(path).unwrap();
    let after = &text[text.rfind(')').expect("comm in stat") + 2..];
    after.chars().next().unwrap()
}

/// /proc/PID/stat shows the thread group leader's own state: while the main thread sleeps
/// in join, a running second thread reads `S`, not its own `R`.
fn proc_pid_stat_shows_the_leaders_state_not_another_threads() {
    let pid = std::process::id();
    let reader = thread::spawn(move || {
        let path = format!("/proc/{pid}/stat");
        let deadline = monotonic_ns() + 5_000_000_000;
        loop {
            let s = stat_state(&path);
            if s == 'S' || monotonic_ns() > deadline {
                return s;
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    assert_eq!(reader.join().unwrap(), 'S');
}

/// /proc/PID/task lists every thread; task/TID/{stat,status,comm} describe that thread
/// (its id in stat's first field and in status's Pid, its own name).
fn proc_pid_task_has_each_threads_stat_status_and_comm() {
    let pid = std::process::id();
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = thread::Builder::new()
        .name("ut-worker".into())
        .spawn(move || {
            // SAFETY: gettid has no arguments.
            tx.send(unsafe { libc::syscall(libc::SYS_gettid) } as u32).unwrap();
            done_rx.recv().unwrap();
        })
        .unwrap();
    let tid = rx.recv().unwrap();
    let mut listed: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, [pid, tid]);
    let dir = format!("/proc/{pid}/task/{tid}");
    let stat = std::fs::read_to_string(format!("{dir}/stat")).unwrap();
    assert!(stat.starts_with(&format!("{tid} (ut-worker) ")), "{stat}");
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap();
    assert!(status.contains(&format!("\nPid:\t{tid}\n")), "{status}");
    assert!(status.contains(&format!("\nTgid:\t{pid}\n")), "{status}");
    assert_eq!(std::fs::read_to_string(format!("{dir}/comm")).unwrap(), "ut-worker\n");
    done_tx.send(()).unwrap();
    t.join().unwrap();
}

fn spawn_join_returns_the_result() {
    let handles: Vec<_> = (0..4u64).map(|i| thread::spawn(move || i * i)).collect();
    let results: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results, [0, 1, 4, 9]);
}

fn many_threads_increment_an_atomic_counter() {
    let counter = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let c = counter.clone();
            thread::spawn(move || {
                for _ in 0..10_000 {
                    c.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(counter.load(SeqCst), 80_000);
}

fn mutex_protects_a_shared_counter() {
    let m = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..5_000 {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*m.lock().unwrap(), 20_000);
}

/// Two threads take turns through a Mutex and Condvar (futex wait/wake underneath).
fn mutex_and_condvar_ping_pong() {
    const ROUNDS: u32 = 1000;
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let other = state.clone();
    let pong = thread::spawn(move || {
        let (m, cv) = &*other;
        for i in 0..ROUNDS {
            let mut turn = cv.wait_while(m.lock().unwrap(), |t| *t != 2 * i + 1).unwrap();
            *turn += 1;
            cv.notify_one();
        }
    });
    let (m, cv) = &*state;
    for i in 0..ROUNDS {
        let mut turn = cv.wait_while(m.lock().unwrap(), |t| *t != 2 * i).unwrap();
        *turn += 1;
        cv.notify_one();
    }
    pong.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 2 * ROUNDS);
}

fn condvar_wait_timeout_times_out() {
    let (m, cv) = (Mutex::new(()), Condvar::new());
    let start = monotonic_ns();
    let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(10)).unwrap();
    assert!(r.timed_out());
    assert!(monotonic_ns() - start >= 10_000_000);
}

fn barrier_releases_all_threads_together() {
    let barrier = Arc::new(Barrier::new(4));
    let arrived = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (b, a) = (barrier.clone(), arrived.clone());
            thread::spawn(move || {
                a.fetch_add(1, SeqCst);
                b.wait();
                a.load(SeqCst)
            })
        })
        .collect();
    arrived.fetch_add(1, SeqCst);
    barrier.wait();
    for h in handles {
        assert_eq!(h.join().unwrap(), 4, "released before everyone arrived");
    }
}

fn scoped_threads_borrow_the_stack() {
    let mut data = [1u64, 2, 3, 4, 5, 6];
    thread::scope(|s| {
        for chunk in data.chunks_mut(2) {
            s.spawn(move || chunk.iter_mut().for_each(|x| *x *= 10));
        }
    });
    assert_eq!(data, [10, 20, 30, 40, 50, 60]);
}

fn panicking_thread_is_reported_by_join() {
    let r = thread::spawn(|| panic!("expected panic in a thread")).join();
    assert!(r.is_err());
}

fn threads_share_pid_but_have_own_tid() {
    let pid = sys!(SYS_getpid).unwrap();
    let main_tid = gettid();
    let (tpid, ttid) = thread::spawn(|| (sys!(SYS_getpid).unwrap(), gettid())).join().unwrap();
    assert_eq!(tpid, pid);
    assert_ne!(ttid, main_tid);
    assert!(ttid > 0);
}

thread_local! {
    static TLS: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

fn thread_locals_are_per_thread() {
    TLS.with(|v| v.set(100));
    let other = thread::spawn(|| {
        let initial = TLS.with(|v| v.get());
        TLS.with(|v| v.set(200));
        initial
    })
    .join()
    .unwrap();
    assert_eq!(other, 1, "a new thread starts with the initial value");
    assert_eq!(TLS.with(|v| v.get()), 100, "the other thread's write is its own");
}

fn futex_wait_with_wrong_value_is_eagain() {
    let word = AtomicU32::new(5);
    assert_errno!(futex(&word, FUTEX_WAIT, 6, std::ptr::null()), EAGAIN);
    assert_errno!(futex(&word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 6, std::ptr::null()), EAGAIN);
}

fn futex_wake_without_waiters_returns_zero() {
    let word = AtomicU32::new(0);
    assert_eq!(futex(&word, FUTEX_WAKE, i32::MAX as u32, std::ptr::null()).unwrap(), 0);
}

/// Three threads wait on one word; wakes are repeated until all three have been counted
/// (a waiter may not have gone to sleep yet when the first wake comes).
fn futex_wake_returns_number_woken() {
    let word = Arc::new(AtomicU32::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let w = word.clone();
            thread::spawn(move || futex(&w, FUTEX_WAIT, 0, std::ptr::null()))
        })
        .collect();
    let mut woken = 0;
    let all = wait_until(5000, || {
        let n = futex(&word, FUTEX_WAKE, 1, std::ptr::null()).unwrap();
        assert!(n <= 1, "FUTEX_WAKE 1 woke {n}");
        woken += n;
        woken == 3
    });
    assert!(all, "woke {woken} of 3 waiters");
    for w in waiters {
        assert_eq!(w.join().unwrap(), Ok(0));
    }
}

fn futex_wait_with_timeout_is_etimedout() {
    let word = AtomicU32::new(0);
    let ts = timespec { tv_sec: 0, tv_nsec: 10_000_000 };
    let start = monotonic_ns();
    assert_errno!(futex(&word, FUTEX_WAIT, 0, &ts), ETIMEDOUT);
    assert!(monotonic_ns() - start >= 10_000_000, "woke before the timeout");
}

/// FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (std uses it for timed
/// waits).
fn futex_wait_bitset_with_past_deadline_is_etimedout() {
    let word = AtomicU32::new(0);
    // A millisecond ago: never negative, even in the first second after boot.
    let past_ns = monotonic_ns().saturating_sub(1_000_000);
    let past = timespec { tv_sec: (past_ns / 1_000_000_000) as i64, tv_nsec: (past_ns % 1_000_000_000) as i64 };
    let op = FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG;
    assert_errno!(sys!(SYS_futex, word.as_ptr(), op, 0, &past as *const timespec, 0, u32::MAX), ETIMEDOUT);
}

fn futex_on_null_address_is_efault() {
    assert_errno!(sys!(SYS_futex, 0, FUTEX_WAIT, 0, 0, 0, 0), EFAULT);
}

fn futex_on_unaligned_address_is_einval() {
    let words = [AtomicU32::new(0), AtomicU32::new(0)];
    let unaligned = words[0].as_ptr() as usize + 1;
    assert_errno!(sys!(SYS_futex, unaligned, FUTEX_WAIT, 0, 0, 0, 0), EINVAL);
}

fn futex_with_unknown_op_is_enosys() {
    let word = AtomicU32::new(0);
    assert_errno!(futex(&word, 99, 0, std::ptr::null()), ENOSYS);
}

fn set_robust_list_with_bad_size_is_einval() {
    let head = [0usize; 3];
    assert_errno!(sys!(SYS_set_robust_list, head.as_ptr(), 8), EINVAL);
}

/// set_tid_address (the CLONE_CHILD_CLEARTID address that wakes joiners) returns the
/// caller's tid. In a child process: libc's joins rely on the address it set.
fn set_tid_address_returns_the_tid() {
    run_in_child(|| {
        let word = AtomicI32::new(1);
        assert_eq!(sys!(SYS_set_tid_address, word.as_ptr()).unwrap(), gettid());
    });
}

/// The thread pointer as the program sees it: on x86_64 the TCB's first word (%fs:0)
/// points to itself.
fn thread_pointer() -> usize {
    let tp: usize;
    unsafe { std::arch::asm!("mov {}, qword ptr fs:0", out(reg) tp) };
    tp
}

/// arch_prctl code that reads the FS base (asm/prctl.h).
const ARCH_GET_FS: i32 = 0x1003;

fn arch_get_fs() -> usize {
    let mut fs = 0usize;
    sys!(SYS_arch_prctl, ARCH_GET_FS, &mut fs as *mut usize).unwrap();
    fs
}

fn arch_prctl_get_fs_is_the_thread_pointer() {
    let fs = arch_get_fs();
    assert_eq!(fs, thread_pointer());
    // Static TLS sits just below the thread pointer (x86_64's TLS variant II).
    let tls = TLS.with(|v| v as *const _ as usize);
    assert!(tls < fs && fs - tls < 1 << 20, "TLS at {tls:#x}, thread pointer {fs:#x}");
}

fn threads_have_distinct_thread_pointers() {
    let main = arch_get_fs();
    let (fs, tp) = thread::spawn(|| (arch_get_fs(), thread_pointer())).join().unwrap();
    assert_eq!(fs, tp);
    assert_ne!(fs, main);
}

fn arch_prctl_with_bad_code_is_einval() {
    let mut v = 0usize;
    assert_errno!(sys!(SYS_arch_prctl, 0x9999, &mut v as *mut usize), EINVAL);
}

static HANDLED_ON: AtomicI32 = AtomicI32::new(0);

extern "C" fn record_tid(_: c_int) {
    HANDLED_ON.store(gettid() as i32, SeqCst);
}

fn tgkill_runs_handler_on_the_chosen_thread() {
    HANDLED_ON.store(0, SeqCst);
    set_handler(SIGUSR1, handler(record_tid), 0, &[]).unwrap();
    let tid = Arc::new(AtomicI32::new(0));
    let t = {
        let tid = tid.clone();
        thread::spawn(move || {
            tid.store(gettid() as i32, SeqCst);
            wait_until(5000, || HANDLED_ON.load(SeqCst) != 0);
        })
    };
    assert!(wait_until(5000, || tid.load(SeqCst) != 0));
    let pid = sys!(SYS_getpid).unwrap();
    sys!(SYS_tgkill, pid, tid.load(SeqCst), SIGUSR1).unwrap();
    t.join().unwrap();
    set_handler(SIGUSR1, SIG_DFL, 0, &[]).unwrap();
    assert_eq!(HANDLED_ON.load(SeqCst), tid.load(SeqCst));
    // Once it has exited (soon after join returns), it cannot be signalled (signal 0
    // only checks).
    let gone = wait_until(2000, || sys!(SYS_tgkill, pid, tid.load(SeqCst), 0) == Err(Errno(ESRCH)));
    assert!(gone, "tgkill to an exited thread did not fail with ESRCH");
}

fn new_thread_inherits_the_signal_mask() {
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGUSR2)).unwrap();
    let inside = thread::spawn(current_sigmask).join().unwrap();
    sigprocmask(SIG_SETMASK, old).unwrap();
    assert_ne!(inside & sigbit(SIGUSR2), 0);
}

/// A process ends (exit_group or SIGKILL) while three threads keep
/// creating detached threads: it ends with the expected status every time, and the suite's
/// leak check at power-off finds no thread's kernel stack left behind.
fn a_process_ending_while_its_threads_spawn_threads_ends_cleanly() {
    for round in 0..30 {
        let pid = fork_child(move || {
            for _ in 0..3 {
                let _ = thread::Builder::new().spawn(|| {
                    for _ in 0..30 {
                        // Detached: the handle is dropped; a refused spawn is retried later.
                        if thread::Builder::new().spawn(|| {}).is_err() {
                            thread::yield_now();
                        }
                    }
                });
            }
            for _ in 0..round % 7 {
                thread::yield_now();
            }
            unsafe { libc::_exit(0) }
        });
        if round % 3 == 2 {
            for _ in 0..round % 5 {
                thread::yield_now();
            }
            unsafe { libc::kill(pid, SIGKILL) };
        }
        let exit = wait_child(pid);
        assert!(exit == Exit::Code(0) || (round % 3 == 2 && exit == Exit::Signal(SIGKILL)), "round {round}: {exit:?}");
    }
}
