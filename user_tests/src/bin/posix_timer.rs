//! POSIX per-process timers through the raw system calls: timer_create's notification
//! kinds (a NULL sigevent, SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID, the kernel's view of
//! SIGEV_THREAD), the siginfo of a timer signal (SI_TIMER, si_tid, si_overrun, si_value),
//! timer ids, relative, absolute and periodic settings, the old setting, disarming,
//! timer_gettime, overruns of a blocked periodic timer, timer_delete, fork and execve,
//! other clocks (CLOCK_REALTIME, CLOCK_BOOTTIME, the process's and the thread's CPU time),
//! /proc/PID/timers, signalfd's record of a timer signal, and the errnos of all five calls.
//!
//! Every test runs in a forked child, single-threaded unless it starts a thread, with the
//! timer's signal blocked and taken with rt_sigtimedwait: nothing depends on a handler
//! running at the right moment, and a failed test leaves no armed timer behind. Waits for
//! an expected signal last up to 5 s; "no signal comes" waits a few hundred ms. Every
//! value asserted is the same on Linux 6.1 and 6.18 (the versions differ on a timer's
//! pending signal taken after a re-arm or a delete: 6.1 delivers it, 6.18 drops it, so
//! the tests never take one then).

use libc::*;
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::sync::Arc;
use user_tests::{
    assert_errno, child_args, child_exit, exe_path, execve, monotonic_ns, run_in_child, run_tests, sigbit, sigprocmask,
    sleep_ms, sys, tests, wait_until, Errno, Exit, BAD_PTR, CHILD_MARKER,
};

fn main() {
    if let Some(args) = child_args() {
        std::process::exit(child_main(&args));
    }
    run_tests(
        "posix_timer",
        tests![
            a_null_sigevent_sends_sigalrm_with_the_timer_id_as_its_value,
            the_first_timers_of_a_process_get_ids_0_and_1,
            sigev_signal_queues_the_chosen_signal_with_si_timer_the_timer_id_and_the_value,
            signalfd_reads_a_timer_signal_with_its_id_overrun_and_value,
            proc_pid_timers_lists_each_timer_newest_first,
            sigev_none_counts_down_without_queueing_a_signal,
            a_periodic_sigev_none_timer_reports_the_time_to_its_next_interval,
            sigev_thread_id_queues_the_signal_for_that_thread_alone,
            sigev_thread_id_naming_no_thread_of_this_process_is_einval,
            sigev_thread_is_taken_by_the_kernel_as_a_signal_to_the_process,
            timer_create_with_an_unknown_clock_is_einval,
            timer_create_on_a_clock_without_timers_is_eopnotsupp,
            timer_create_with_an_unknown_sigev_notify_is_einval,
            timer_create_with_signal_0_or_above_64_is_einval_unless_sigev_none,
            timer_create_with_a_bad_sigevent_pointer_is_efault,
            timer_create_with_a_bad_id_pointer_is_efault_and_leaves_no_timer,
            a_relative_one_shot_timer_fires_once_after_its_delay,
            an_absolute_monotonic_time_in_the_past_fires_at_once,
            an_absolute_monotonic_time_in_the_future_fires_no_earlier,
            timer_settime_returns_the_old_setting,
            a_zero_it_value_disarms_the_timer_and_drops_its_interval,
            re_arming_an_armed_timer_replaces_its_expiry,
            timer_settime_with_an_out_of_range_timespec_is_einval,
            timer_settime_of_an_unknown_id_is_einval,
            timer_settime_with_a_bad_new_value_pointer_is_efault,
            timer_settime_with_a_null_new_value_is_einval,
            timer_settime_with_a_bad_old_value_pointer_is_efault_but_arms_the_timer,
            timer_settime_ignores_unknown_flags,
            timer_gettime_of_a_disarmed_timer_is_all_zero,
            timer_gettime_of_an_armed_one_shot_timer_shows_what_remains,
            timer_gettime_of_a_periodic_timer_shows_the_interval_and_what_remains,
            timer_gettime_of_an_unknown_id_is_einval,
            timer_gettime_with_a_bad_pointer_is_efault,
            a_blocked_periodic_timer_queues_one_signal_and_counts_the_overruns,
            timer_getoverrun_of_a_new_timer_is_0,
            timer_getoverrun_of_an_unknown_id_is_einval,
            two_timers_with_the_same_signal_queue_a_signal_each,
            a_one_shot_timer_re_armed_while_its_signal_is_pending_leaves_one_signal,
            a_deleted_timer_id_is_einval_for_every_call,
            a_timer_deleted_while_armed_sends_nothing,
            timer_ids_are_not_reused_at_once_after_delete,
            timers_are_not_inherited_by_a_fork_child,
            execve_deletes_the_timers,
            a_relative_realtime_timer_fires,
            a_relative_boottime_timer_fires,
            an_absolute_realtime_time_in_the_past_fires_at_once,
            a_process_cputime_timer_fires_once_the_process_has_used_that_much_cpu,
            a_thread_cputime_timer_counts_only_the_creating_threads_cpu,
        ],
    );
}

/// Child mode: this binary re-executed by a test with `CHILD_MARKER WHAT ARGS...`.
/// Returns the exit status: 0 when what it checks holds, a distinct code otherwise.
fn child_main(args: &[String]) -> i32 {
    match args[0].as_str() {
        // no-timers ID...: none of these timer ids exists (timer_gettime is EINVAL).
        "no-timers" => {
            for id in &args[1..] {
                match gettime(id.parse().unwrap()) {
                    Err(Errno(EINVAL)) => {}
                    Ok(_) => return 2,
                    Err(_) => return 3,
                }
            }
            0
        }
        _ => 100,
    }
}

const MS: i64 = 1_000_000;
const S: i64 = 1000 * MS;

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
/// `si_code` of a POSIX timer's signal.
const SI_TIMER: i32 = -2;
const TIMER_ABSTIME: i32 = 1;

/// The signal most tests use: SIGRTMIN+1 in the kernel's numbering, which musl leaves to
/// programs. A real-time signal queues one entry per send, so a timer that queued one per
/// expiry would show as several signals.
const SIG: i32 = 35;

/// How long a test waits for a signal that must come (ms).
const WAIT: i64 = 5000;
/// How long a test waits to see that a signal does not come (ms).
const QUIET: i64 = 300;

/// Linux's `struct sigevent` (64 bytes): `sigev_notify_thread_id` is the first member of
/// the union after `sigev_notify`.
#[repr(C)]
struct SigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    _pad: [i32; 11],
}

fn sigevent(notify: i32, signo: i32, value: u64) -> SigEvent {
    SigEvent { value, signo, notify, tid: 0, _pad: [0; 11] }
}

fn thread_sigevent(signo: i32, value: u64, tid: i32) -> SigEvent {
    SigEvent { tid, ..sigevent(SIGEV_THREAD_ID, signo, value) }
}

/// timer_create(clock, sev or NULL): the new timer's id.
fn create_on(clock: i32, sev: Option<&SigEvent>) -> Result<i32, Errno> {
    let mut id: i32 = -1;
    let sevp = sev.map_or(std::ptr::null(), |s| s as *const SigEvent);
    sys!(SYS_timer_create, clock, sevp, &mut id as *mut i32)?;
    Ok(id)
}

/// A CLOCK_MONOTONIC timer with notification `notify` of `signo` carrying `value`.
fn create(notify: i32, signo: i32, value: u64) -> i32 {
    create_on(CLOCK_MONOTONIC, Some(&sigevent(notify, signo, value))).unwrap()
}

/// A CLOCK_MONOTONIC timer sending [`SIG`].
fn sig_timer() -> i32 {
    create(SIGEV_SIGNAL, SIG, 0)
}

fn its(value_ns: i64, interval_ns: i64) -> itimerspec {
    itimerspec { it_interval: ts(interval_ns), it_value: ts(value_ns) }
}

fn ts(ns: i64) -> timespec {
    timespec { tv_sec: ns / S, tv_nsec: ns % S }
}

fn ns(t: &timespec) -> i64 {
    t.tv_sec * S + t.tv_nsec
}

/// timer_settime: the old setting as (it_value, it_interval) in ns.
fn settime(id: i32, flags: i32, value_ns: i64, interval_ns: i64) -> Result<(i64, i64), Errno> {
    let new = its(value_ns, interval_ns);
    let mut old = its(-1, -1);
    sys!(SYS_timer_settime, id, flags, &new as *const itimerspec, &mut old as *mut itimerspec)?;
    Ok((ns(&old.it_value), ns(&old.it_interval)))
}

/// timer_gettime: (it_value, it_interval) in ns.
fn gettime(id: i32) -> Result<(i64, i64), Errno> {
    let mut cur = its(-1, -1);
    sys!(SYS_timer_gettime, id, &mut cur as *mut itimerspec)?;
    Ok((ns(&cur.it_value), ns(&cur.it_interval)))
}

fn getoverrun(id: i32) -> Result<i64, Errno> {
    sys!(SYS_timer_getoverrun, id)
}

fn delete(id: i32) -> Result<i64, Errno> {
    sys!(SYS_timer_delete, id)
}

fn now(clock: i32) -> i64 {
    let mut t = ts(0);
    sys!(SYS_clock_gettime, clock, &mut t as *mut timespec).unwrap();
    ns(&t)
}

fn gettid() -> i32 {
    sys!(SYS_gettid).unwrap() as i32
}

fn block(sig: i32) {
    sigprocmask(SIG_BLOCK, sigbit(sig)).unwrap();
}

/// The calling thread's pending signals (its own and the process's).
fn pending() -> u64 {
    let mut set = 0u64;
    sys!(SYS_rt_sigpending, &mut set as *mut u64, 8).unwrap();
    set
}

fn is_pending(sig: i32) -> bool {
    pending() & sigbit(sig) != 0
}

/// The `_timer` fields of a timer signal's siginfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TimerInfo {
    signo: i32,
    code: i32,
    /// `si_tid`: the kernel's id of the timer (offset 16).
    tid: i32,
    /// `si_overrun` (offset 20).
    overrun: i32,
    /// `si_value` (offset 24).
    value: u64,
}

/// Takes blocked signal `sig` with rt_sigtimedwait, waiting up to `ms` milliseconds.
fn take(sig: i32, ms: i64) -> Result<TimerInfo, Errno> {
    let set = sigbit(sig);
    let mut info = [0u64; 16]; // a 128-byte siginfo
    let t = ts(ms * MS);
    let got = sys!(SYS_rt_sigtimedwait, &set as *const u64, info.as_mut_ptr(), &t as *const timespec, 8)?;
    assert_eq!(got, sig as i64, "rt_sigtimedwait returned another signal");
    // The 32-bit word at byte offset 4 * i.
    let word = |i: usize| (info[i / 2] >> (32 * (i % 2))) as u32 as i32;
    Ok(TimerInfo { signo: word(0), code: word(2), tid: word(4), overrun: word(5), value: info[3] })
}

/// The timer signals `sig` that are pending now, taken one by one.
fn take_all(sig: i32) -> Vec<TimerInfo> {
    let mut got = Vec::new();
    while let Ok(info) = take(sig, 0) {
        got.push(info);
        assert!(got.len() < 1000, "signal {sig} keeps coming");
    }
    got
}

/// Waits (up to [`WAIT`]) until one-shot timer `id` has expired: timer_gettime shows it
/// disarmed.
fn wait_expired(id: i32) {
    assert!(wait_until(WAIT as u64, || gettime(id) == Ok((0, 0))), "timer {id} never expired");
}

/// Linux sets a NULL sigevent's si_value to the timer id (and si_tid too).
fn a_null_sigevent_sends_sigalrm_with_the_timer_id_as_its_value() {
    run_in_child(|| {
        block(SIGALRM);
        create(SIGEV_NONE, 0, 0); // so that the timer under test is not id 0
        let id = create_on(CLOCK_MONOTONIC, None).unwrap();
        assert_ne!(id, 0);
        settime(id, 0, 10 * MS, 0).unwrap();
        let info = take(SIGALRM, WAIT).unwrap();
        assert_eq!(info, TimerInfo { signo: SIGALRM, code: SI_TIMER, tid: id, overrun: 0, value: id as u64 });
    });
}

fn the_first_timers_of_a_process_get_ids_0_and_1() {
    run_in_child(|| {
        let first = create_on(CLOCK_MONOTONIC, None).unwrap();
        let second = create(SIGEV_NONE, 0, 0);
        assert_eq!((first, second), (0, 1));
    });
}

fn sigev_signal_queues_the_chosen_signal_with_si_timer_the_timer_id_and_the_value() {
    run_in_child(|| {
        block(SIG);
        create(SIGEV_NONE, 0, 0);
        let value = 0x1234_5678_9abc_def0;
        let id = create(SIGEV_SIGNAL, SIG, value);
        settime(id, 0, 10 * MS, 0).unwrap();
        let info = take(SIG, WAIT).unwrap();
        assert_eq!(info, TimerInfo { signo: SIG, code: SI_TIMER, tid: id, overrun: 0, value });
    });
}

/// signalfd's record of a timer signal: ssi_tid (24), ssi_overrun (32), ssi_int (44) and
/// ssi_ptr (48), none of the pid and uid fields.
fn signalfd_reads_a_timer_signal_with_its_id_overrun_and_value() {
    run_in_child(|| {
        block(SIG);
        create(SIGEV_NONE, 0, 0);
        let value = 0x1111_2222_3333_4444u64;
        let id = create(SIGEV_SIGNAL, SIG, value);
        // SAFETY: a sigset on this stack, filled by sigemptyset/sigaddset.
        let fd = unsafe {
            let mut set: sigset_t = std::mem::zeroed();
            sigemptyset(&mut set);
            sigaddset(&mut set, SIG);
            signalfd(-1, &set, 0)
        };
        assert!(fd >= 0);
        settime(id, 0, 10 * MS, 0).unwrap();
        let mut rec = [0u8; 128];
        assert_eq!(user_tests::read(fd, &mut rec), Ok(128));
        let u32_at = |o: usize| u32::from_ne_bytes(rec[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_ne_bytes(rec[o..o + 8].try_into().unwrap());
        assert_eq!((u32_at(0), u32_at(8) as i32), (SIG as u32, SI_TIMER));
        assert_eq!((u32_at(12), u32_at(16)), (0, 0), "pid and uid");
        assert_eq!((u32_at(24), u32_at(32)), (id as u32, 0), "tid and overrun");
        assert_eq!((u32_at(44), u64_at(48)), (value as u32, value), "int and ptr");
    });
}

/// /proc/PID/timers: per timer, newest first, its id, signal and value (16 hex digits),
/// notification and where it goes, and clock; a deleted timer is gone from it.
fn proc_pid_timers_lists_each_timer_newest_first() {
    run_in_child(|| {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { getpid() };
        let a = create_on(CLOCK_MONOTONIC, None).unwrap();
        let b = create_on(CLOCK_REALTIME, Some(&sigevent(SIGEV_NONE, 0, 0x1234))).unwrap();
        let gone = create(SIGEV_NONE, 0, 0);
        let c = create_on(CLOCK_BOOTTIME, Some(&thread_sigevent(SIG, 7, gettid()))).unwrap();
        delete(gone).unwrap();
        let text = std::fs::read_to_string(format!("/proc/{pid}/timers")).unwrap();
        let want = format!(
            "ID: {c}\nsignal: {SIG}/0000000000000007\nnotify: signal/tid.{pid}\nClockID: 7\n\
             ID: {b}\nsignal: 0/0000000000001234\nnotify: none/pid.{pid}\nClockID: 0\n\
             ID: {a}\nsignal: 14/{a:016x}\nnotify: signal/pid.{pid}\nClockID: 1\n"
        );
        assert_eq!(text, want);
    });
}

/// A SIGEV_NONE timer runs (its remaining time falls, then it is disarmed at the expiry)
/// but never queues its signal.
fn sigev_none_counts_down_without_queueing_a_signal() {
    run_in_child(|| {
        block(SIG);
        let id = create(SIGEV_NONE, SIG, 0);
        let start = monotonic_ns();
        settime(id, 0, 500 * MS, 0).unwrap();
        let (first, interval) = gettime(id).unwrap();
        assert!(first > 0 && first <= 500 * MS, "remaining {first} ns");
        assert_eq!(interval, 0);
        sleep_ms(10);
        let (second, _) = gettime(id).unwrap();
        assert!(second > 0 && second < first, "remaining {second} ns after {first} ns");
        assert!(wait_until(10_000, || gettime(id) == Ok((0, 0))), "never expired: {:?}", gettime(id));
        let elapsed = (monotonic_ns() - start) as i64;
        assert!(elapsed >= 500 * MS, "expired after {elapsed} ns");
        sleep_ms(20);
        assert!(!is_pending(SIG), "a SIGEV_NONE timer queued its signal");
        assert_errno!(take(SIG, 0), EAGAIN);
    });
}

fn a_periodic_sigev_none_timer_reports_the_time_to_its_next_interval() {
    run_in_child(|| {
        block(SIG);
        let id = create(SIGEV_NONE, SIG, 0);
        settime(id, 0, 10 * MS, 20 * MS).unwrap();
        sleep_ms(100);
        let (value, interval) = gettime(id).unwrap();
        assert_eq!(interval, 20 * MS);
        assert!(value > 0 && value <= 20 * MS, "remaining {value} ns");
        assert!(!is_pending(SIG), "a SIGEV_NONE timer queued its signal");
    });
}

/// The signal of a SIGEV_THREAD_ID timer is pending for the thread named, not for the
/// process: another thread does not see it in its pending set, the target thread does
/// and takes it.
fn sigev_thread_id_queues_the_signal_for_that_thread_alone() {
    run_in_child(|| {
        block(SIG); // in every thread: the new one inherits the mask
        let tid = Arc::new(AtomicI32::new(0));
        let seen = Arc::new(AtomicI32::new(0)); // 1: pending in the target, 2: never
        let go = Arc::new(AtomicI32::new(0));
        let target = {
            let (tid, seen, go) = (tid.clone(), seen.clone(), go.clone());
            std::thread::spawn(move || {
                tid.store(gettid(), SeqCst);
                let ok = wait_until(WAIT as u64, || is_pending(SIG));
                seen.store(if ok { 1 } else { 2 }, SeqCst);
                assert!(wait_until(10_000, || go.load(SeqCst) == 1));
                take(SIG, 0)
            })
        };
        assert!(wait_until(10_000, || tid.load(SeqCst) != 0));
        let tid = tid.load(SeqCst);
        assert_ne!(tid, gettid());
        let id = create_on(CLOCK_MONOTONIC, Some(&thread_sigevent(SIG, 77, tid))).unwrap();
        settime(id, 0, 20 * MS, 0).unwrap();
        assert!(wait_until(10_000, || seen.load(SeqCst) != 0));
        let pending_in_main = is_pending(SIG);
        go.store(1, SeqCst);
        let got = target.join().unwrap();
        assert_eq!(seen.load(SeqCst), 1, "the signal never became pending in the target thread");
        assert!(!pending_in_main, "the signal is pending for the process, not for the target thread alone");
        assert_eq!(got, Ok(TimerInfo { signo: SIG, code: SI_TIMER, tid: id, overrun: 0, value: 77 }));
    });
}

/// SIGEV_THREAD_ID (4, that is SIGEV_SIGNAL | SIGEV_THREAD_ID) must name a thread of the
/// calling process.
fn sigev_thread_id_naming_no_thread_of_this_process_is_einval() {
    run_in_child(|| {
        let parent = sys!(SYS_getppid).unwrap() as i32;
        for tid in [parent, 0, -1, i32::MAX] {
            assert_errno!(create_on(CLOCK_MONOTONIC, Some(&thread_sigevent(SIG, 0, tid))), EINVAL);
        }
        let id = create_on(CLOCK_MONOTONIC, Some(&thread_sigevent(SIG, 0, gettid()))).unwrap();
        delete(id).unwrap();
    });
}

/// SIGEV_THREAD is the C library's (it starts a thread); the system call accepts it and
/// queues the signal to the process as for SIGEV_SIGNAL.
fn sigev_thread_is_taken_by_the_kernel_as_a_signal_to_the_process() {
    run_in_child(|| {
        block(SIG);
        let id = create(SIGEV_THREAD, SIG, 5);
        settime(id, 0, 10 * MS, 0).unwrap();
        assert_eq!(take(SIG, WAIT), Ok(TimerInfo { signo: SIG, code: SI_TIMER, tid: id, overrun: 0, value: 5 }));
    });
}

fn timer_create_with_an_unknown_clock_is_einval() {
    run_in_child(|| {
        // 10 was CLOCK_SGI_CYCLE; 12.. are beyond the last clock (CLOCK_TAI, 11).
        for clock in [10, 12, 15, 16, 100] {
            assert_errno!(create_on(clock, None), EINVAL);
        }
    });
}

fn timer_create_on_a_clock_without_timers_is_eopnotsupp() {
    run_in_child(|| {
        for clock in [CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE] {
            assert_errno!(create_on(clock, None), EOPNOTSUPP);
        }
    });
}

fn timer_create_with_an_unknown_sigev_notify_is_einval() {
    run_in_child(|| {
        // 5 and 6 are SIGEV_NONE and SIGEV_THREAD with the SIGEV_THREAD_ID bit.
        for notify in [3, 5, 6, 8, 99, -1] {
            let sev = SigEvent { tid: gettid(), ..sigevent(notify, SIG, 0) };
            assert_errno!(create_on(CLOCK_MONOTONIC, Some(&sev)), EINVAL);
        }
        for notify in [SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID] {
            let sev = SigEvent { tid: gettid(), ..sigevent(notify, SIG, 0) };
            let id = create_on(CLOCK_MONOTONIC, Some(&sev)).unwrap_or_else(|e| panic!("notify {notify}: {e}"));
            delete(id).unwrap();
        }
    });
}

/// The signal number must be 1..=64 for every kind that sends one; SIGEV_NONE does not
/// look at it.
fn timer_create_with_signal_0_or_above_64_is_einval_unless_sigev_none() {
    run_in_child(|| {
        for signo in [0, -1, 65, 1000] {
            assert_errno!(create_on(CLOCK_MONOTONIC, Some(&sigevent(SIGEV_SIGNAL, signo, 0))), EINVAL);
            assert_errno!(create_on(CLOCK_MONOTONIC, Some(&thread_sigevent(signo, 0, gettid()))), EINVAL);
            delete(create(SIGEV_NONE, signo, 0)).unwrap();
        }
        for signo in [1, SIGKILL, 64] {
            delete(create(SIGEV_SIGNAL, signo, 0)).unwrap();
        }
    });
}

fn timer_create_with_a_bad_sigevent_pointer_is_efault() {
    run_in_child(|| {
        let mut id = -1i32;
        assert_errno!(sys!(SYS_timer_create, CLOCK_MONOTONIC, BAD_PTR, &mut id as *mut i32), EFAULT);
        assert_eq!(id, -1);
    });
}

/// The id cannot be stored: EFAULT, and the timer made meanwhile is gone again.
fn timer_create_with_a_bad_id_pointer_is_efault_and_leaves_no_timer() {
    run_in_child(|| {
        assert_errno!(sys!(SYS_timer_create, CLOCK_MONOTONIC, 0, BAD_PTR), EFAULT);
        let sev = sigevent(SIGEV_SIGNAL, SIG, 0);
        assert_errno!(sys!(SYS_timer_create, CLOCK_MONOTONIC, &sev as *const SigEvent, BAD_PTR), EFAULT);
        for id in 0..4 {
            assert_errno!(gettime(id), EINVAL);
        }
        create_on(CLOCK_MONOTONIC, None).unwrap();
    });
}

/// A one-shot timer's real-time signal is queued once, no earlier than its delay, and the
/// timer is disarmed afterwards.
fn a_relative_one_shot_timer_fires_once_after_its_delay() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        let start = monotonic_ns();
        settime(id, 0, 20 * MS, 0).unwrap();
        assert_eq!(take(SIG, WAIT).map(|i| (i.code, i.tid)), Ok((SI_TIMER, id)));
        let elapsed = (monotonic_ns() - start) as i64;
        assert!(elapsed >= 20 * MS, "fired after {elapsed} ns");
        assert_errno!(take(SIG, QUIET), EAGAIN);
        assert_eq!(gettime(id), Ok((0, 0)));
    });
}

fn an_absolute_monotonic_time_in_the_past_fires_at_once() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        settime(id, TIMER_ABSTIME, (now(CLOCK_MONOTONIC) - S).max(1), 0).unwrap();
        assert_eq!(take(SIG, WAIT).map(|i| i.tid), Ok(id));
        let id = sig_timer();
        settime(id, TIMER_ABSTIME, 1, 0).unwrap();
        assert_eq!(take(SIG, WAIT).map(|i| i.tid), Ok(id));
    });
}

fn an_absolute_monotonic_time_in_the_future_fires_no_earlier() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        let at = now(CLOCK_MONOTONIC) + 30 * MS;
        settime(id, TIMER_ABSTIME, at, 0).unwrap();
        let (value, _) = gettime(id).unwrap();
        assert!(value <= 30 * MS, "remaining {value} ns");
        assert_eq!(take(SIG, WAIT).map(|i| i.tid), Ok(id));
        let late = now(CLOCK_MONOTONIC) - at;
        assert!(late >= 0, "fired {} ns early", -late);
    });
}

fn timer_settime_returns_the_old_setting() {
    run_in_child(|| {
        let id = sig_timer();
        assert_eq!(settime(id, 0, 10 * S, 500 * MS), Ok((0, 0)), "a new timer is disarmed");
        let (value, interval) = settime(id, 0, 20 * S, 0).unwrap();
        assert!(value > 9 * S && value <= 10 * S, "old value {value} ns");
        assert_eq!(interval, 500 * MS);
        let (value, interval) = settime(id, 0, 0, 0).unwrap();
        assert!(value > 19 * S && value <= 20 * S, "old value {value} ns");
        assert_eq!(interval, 0);
    });
}

/// A zero it_value disarms: no signal comes, and the interval given with it is dropped.
fn a_zero_it_value_disarms_the_timer_and_drops_its_interval() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        settime(id, 0, 200 * MS, 0).unwrap();
        let (old, _) = settime(id, 0, 0, 50 * MS).unwrap();
        assert!(old > 0, "the timer expired before it could be disarmed");
        assert_eq!(gettime(id), Ok((0, 0)));
        assert_errno!(take(SIG, 200 + QUIET), EAGAIN);
    });
}

fn re_arming_an_armed_timer_replaces_its_expiry() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        settime(id, 0, 100 * S, 0).unwrap();
        settime(id, 0, 20 * MS, 0).unwrap();
        assert_eq!(take(SIG, WAIT).map(|i| i.tid), Ok(id));
        settime(id, 0, 200 * MS, 0).unwrap();
        let (old, _) = settime(id, 0, 100 * S, 0).unwrap();
        assert!(old > 0, "the timer expired before it could be re-armed");
        assert_errno!(take(SIG, 200 + QUIET), EAGAIN);
        let (value, _) = gettime(id).unwrap();
        assert!(value > 99 * S, "remaining {value} ns");
    });
}

fn timer_settime_with_an_out_of_range_timespec_is_einval() {
    run_in_child(|| {
        let id = sig_timer();
        let t = |sec, nsec| timespec { tv_sec: sec, tv_nsec: nsec };
        let bad = [
            itimerspec { it_value: t(0, 1_000_000_000), it_interval: t(0, 0) },
            itimerspec { it_value: t(0, -1), it_interval: t(0, 0) },
            itimerspec { it_value: t(-1, 0), it_interval: t(0, 0) },
            itimerspec { it_value: t(1, 0), it_interval: t(0, 1_000_000_000) },
            itimerspec { it_value: t(1, 0), it_interval: t(0, -1) },
            itimerspec { it_value: t(1, 0), it_interval: t(-1, 0) },
        ];
        for b in &bad {
            assert_errno!(sys!(SYS_timer_settime, id, 0, b as *const itimerspec, 0), EINVAL);
        }
        assert_eq!(gettime(id), Ok((0, 0)), "a rejected setting armed the timer");
    });
}

fn timer_settime_of_an_unknown_id_is_einval() {
    run_in_child(|| {
        sig_timer();
        for id in [1, 12345, -1, i32::MIN] {
            assert_errno!(settime(id, 0, 10 * MS, 0), EINVAL);
        }
    });
}

fn timer_settime_with_a_bad_new_value_pointer_is_efault() {
    run_in_child(|| {
        let id = sig_timer();
        assert_errno!(sys!(SYS_timer_settime, id, 0, BAD_PTR, 0), EFAULT);
    });
}

fn timer_settime_with_a_null_new_value_is_einval() {
    run_in_child(|| {
        let id = sig_timer();
        let mut old = its(0, 0);
        assert_errno!(sys!(SYS_timer_settime, id, 0, 0, &mut old as *mut itimerspec), EINVAL);
    });
}

/// The old setting is copied out after the new one took effect: EFAULT, with the timer
/// armed.
fn timer_settime_with_a_bad_old_value_pointer_is_efault_but_arms_the_timer() {
    run_in_child(|| {
        let id = sig_timer();
        let new = its(10 * S, 0);
        assert_errno!(sys!(SYS_timer_settime, id, 0, &new as *const itimerspec, BAD_PTR), EFAULT);
        let (value, _) = gettime(id).unwrap();
        assert!(value > 9 * S && value <= 10 * S, "remaining {value} ns");
    });
}

/// Only TIMER_ABSTIME counts in the flags; other bits are ignored (a relative setting).
fn timer_settime_ignores_unknown_flags() {
    run_in_child(|| {
        let id = sig_timer();
        for flags in [2, 0x100, 0x4000_0000] {
            settime(id, flags, 10 * S, 0).unwrap_or_else(|e| panic!("flags {flags:#x}: {e}"));
            let (value, _) = gettime(id).unwrap();
            assert!(value > 9 * S && value <= 10 * S, "flags {flags:#x}: remaining {value} ns");
        }
    });
}

fn timer_gettime_of_a_disarmed_timer_is_all_zero() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        assert_eq!(gettime(id), Ok((0, 0)), "a new timer");
        settime(id, 0, 10 * MS, 0).unwrap();
        take(SIG, WAIT).unwrap();
        assert_eq!(gettime(id), Ok((0, 0)), "an expired one-shot timer");
    });
}

fn timer_gettime_of_an_armed_one_shot_timer_shows_what_remains() {
    run_in_child(|| {
        let id = sig_timer();
        settime(id, 0, 10 * S, 0).unwrap();
        let (value, interval) = gettime(id).unwrap();
        assert!(value > 9 * S && value <= 10 * S, "remaining {value} ns");
        assert_eq!(interval, 0);
    });
}

/// A periodic timer shows its interval; what remains is at most the interval once it has
/// fired (before, the first expiry may be further off).
fn timer_gettime_of_a_periodic_timer_shows_the_interval_and_what_remains() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        settime(id, 0, 10 * S, S).unwrap();
        let (value, interval) = gettime(id).unwrap();
        assert!(value > 9 * S && value <= 10 * S, "before the first expiry: remaining {value} ns");
        assert_eq!(interval, S);
        settime(id, 0, 10 * MS, 30 * MS).unwrap();
        for _ in 0..2 {
            assert_eq!(take(SIG, WAIT).map(|i| i.tid), Ok(id));
        }
        let (value, interval) = gettime(id).unwrap();
        assert!(value > 0 && value <= 30 * MS, "after expiries: remaining {value} ns");
        assert_eq!(interval, 30 * MS);
    });
}

fn timer_gettime_of_an_unknown_id_is_einval() {
    run_in_child(|| {
        sig_timer();
        for id in [1, 12345, -1, i32::MIN] {
            assert_errno!(gettime(id), EINVAL);
        }
    });
}

fn timer_gettime_with_a_bad_pointer_is_efault() {
    run_in_child(|| {
        let id = sig_timer();
        assert_errno!(sys!(SYS_timer_gettime, id, BAD_PTR), EFAULT);
    });
}

/// A periodic timer whose signal stays blocked is not re-armed until the signal is taken:
/// one signal is queued however many periods pass, and its si_overrun (and
/// timer_getoverrun after it) counts the expiries missed meanwhile.
fn a_blocked_periodic_timer_queues_one_signal_and_counts_the_overruns() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        let start = monotonic_ns();
        settime(id, 0, 2 * MS, 2 * MS).unwrap();
        sleep_ms(100);
        assert!(wait_until(WAIT as u64, || is_pending(SIG)), "no signal");
        let info = take(SIG, 0).unwrap();
        let periods = (monotonic_ns() - start) as i64 / (2 * MS);
        let overruns = getoverrun(id).unwrap();
        // A signal queued meanwhile by the timer re-armed at the take: 6.1 delivers it
        // even after the delete, 6.18 drops it.
        delete(id).unwrap();
        let more = take_all(SIG).len();
        assert_eq!((info.code, info.tid), (SI_TIMER, id));
        assert!(info.overrun > 0, "si_overrun 0 after ~{periods} periods");
        assert!(info.overrun as i64 <= periods, "si_overrun {} after {periods} periods", info.overrun);
        assert_eq!(overruns, info.overrun as i64, "timer_getoverrun after the signal");
        assert!(more <= 1, "{more} more signals were queued");
    });
}

fn timer_getoverrun_of_a_new_timer_is_0() {
    run_in_child(|| {
        let id = sig_timer();
        assert_eq!(getoverrun(id), Ok(0));
        settime(id, 0, 10 * S, 0).unwrap();
        assert_eq!(getoverrun(id), Ok(0));
    });
}

fn timer_getoverrun_of_an_unknown_id_is_einval() {
    run_in_child(|| {
        sig_timer();
        for id in [1, 12345, -1, i32::MIN] {
            assert_errno!(getoverrun(id), EINVAL);
        }
    });
}

/// Each timer has its own queue entry: two timers sending the same real-time signal queue
/// two signals, told apart by si_tid.
fn two_timers_with_the_same_signal_queue_a_signal_each() {
    run_in_child(|| {
        block(SIG);
        let (a, b) = (sig_timer(), sig_timer());
        settime(a, 0, 10 * MS, 0).unwrap();
        settime(b, 0, 10 * MS, 0).unwrap();
        wait_expired(a);
        wait_expired(b);
        let mut tids: Vec<i32> = take_all(SIG).iter().map(|i| i.tid).collect();
        tids.sort();
        assert_eq!(tids, [a, b]);
    });
}

/// A one-shot timer re-armed while its signal is still pending, then expiring again,
/// leaves one signal queued, not two. (Taken between the re-arm and the new expiry, the
/// old signal is delivered by 6.1 and dropped by 6.18, so the test waits for the expiry.)
fn a_one_shot_timer_re_armed_while_its_signal_is_pending_leaves_one_signal() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        settime(id, 0, MS, 0).unwrap();
        assert!(wait_until(WAIT as u64, || is_pending(SIG)), "no signal");
        settime(id, 0, 20 * MS, 0).unwrap();
        let (value, _) = gettime(id).unwrap();
        assert!(value > 0, "the re-armed timer shows no remaining time");
        wait_expired(id);
        let got = take_all(SIG);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].code, got[0].tid), (SI_TIMER, id));
    });
}

fn a_deleted_timer_id_is_einval_for_every_call() {
    run_in_child(|| {
        let id = sig_timer();
        settime(id, 0, 10 * S, 0).unwrap();
        assert_eq!(delete(id), Ok(0));
        assert_errno!(settime(id, 0, 10 * MS, 0), EINVAL);
        assert_errno!(gettime(id), EINVAL);
        assert_errno!(getoverrun(id), EINVAL);
        assert_errno!(delete(id), EINVAL);
    });
}

fn a_timer_deleted_while_armed_sends_nothing() {
    run_in_child(|| {
        block(SIG);
        let id = sig_timer();
        settime(id, 0, 200 * MS, 0).unwrap();
        delete(id).unwrap();
        assert_errno!(take(SIG, 200 + QUIET), EAGAIN);
        assert!(!is_pending(SIG));
    });
}

/// Linux hands out ids from a per-process counter: a deleted id is not the next one
/// given.
fn timer_ids_are_not_reused_at_once_after_delete() {
    run_in_child(|| {
        let (a, b) = (sig_timer(), sig_timer());
        assert_eq!((a, b), (0, 1));
        delete(a).unwrap();
        let c = sig_timer();
        delete(b).unwrap();
        let d = sig_timer();
        assert_eq!((c, d), (2, 3));
        assert_errno!(gettime(a), EINVAL);
    });
}

/// A fork child has none of its parent's timers (and numbers its own from 0); the
/// parent's stay as they were.
fn timers_are_not_inherited_by_a_fork_child() {
    run_in_child(|| {
        block(SIG);
        let (a, b) = (sig_timer(), sig_timer());
        settime(b, 0, 10 * S, S).unwrap();
        let exit = child_exit(|| {
            for id in [a, b] {
                if gettime(id) != Err(Errno(EINVAL)) {
                    return 2;
                }
            }
            if getoverrun(b) != Err(Errno(EINVAL)) || delete(b) != Err(Errno(EINVAL)) {
                return 3;
            }
            if create_on(CLOCK_MONOTONIC, None) != Ok(0) {
                return 4;
            }
            0
        });
        assert_eq!(exit, Exit::Code(0), "2: a parent's timer exists, 3: b reachable, 4: first id not 0");
        let (value, interval) = gettime(b).unwrap();
        assert!(value > 0 && value <= 10 * S && interval == S, "the parent's timer changed: {value} {interval}");
    });
}

fn execve_deletes_the_timers() {
    let exit = child_exit(|| {
        let (a, b) = (sig_timer(), sig_timer());
        settime(b, 0, 10 * S, 0).unwrap();
        let (a, b) = (a.to_string(), b.to_string());
        execve(exe_path(), &["posix_timer", CHILD_MARKER, "no-timers", &a, &b], &[]);
        127
    });
    assert_eq!(exit, Exit::Code(0), "2: a timer survived execve, 3: another errno");
}

/// A one-shot timer on `clock`, `delay_ns` from now, fires.
fn relative_timer_fires(clock: i32, delay_ns: i64) {
    run_in_child(|| {
        block(SIG);
        let id = create_on(clock, Some(&sigevent(SIGEV_SIGNAL, SIG, 9))).unwrap();
        let start = monotonic_ns();
        settime(id, 0, delay_ns, 0).unwrap();
        assert_eq!(take(SIG, WAIT), Ok(TimerInfo { signo: SIG, code: SI_TIMER, tid: id, overrun: 0, value: 9 }));
        let elapsed = (monotonic_ns() - start) as i64;
        assert!(elapsed >= delay_ns, "fired after {elapsed} ns");
    });
}

fn a_relative_realtime_timer_fires() {
    relative_timer_fires(CLOCK_REALTIME, 20 * MS);
}

fn a_relative_boottime_timer_fires() {
    relative_timer_fires(CLOCK_BOOTTIME, 20 * MS);
}

fn an_absolute_realtime_time_in_the_past_fires_at_once() {
    run_in_child(|| {
        block(SIG);
        let id = create_on(CLOCK_REALTIME, Some(&sigevent(SIGEV_SIGNAL, SIG, 0))).unwrap();
        settime(id, TIMER_ABSTIME, now(CLOCK_REALTIME) - S, 0).unwrap();
        assert_eq!(take(SIG, WAIT).map(|i| (i.code, i.tid)), Ok((SI_TIMER, id)));
    });
}

/// A CLOCK_PROCESS_CPUTIME_ID timer counts the CPU time the process uses, not the time
/// that passes: it does not fire while the process sleeps, and does while it spins.
fn a_process_cputime_timer_fires_once_the_process_has_used_that_much_cpu() {
    run_in_child(|| {
        block(SIG);
        let id = create_on(CLOCK_PROCESS_CPUTIME_ID, Some(&sigevent(SIGEV_SIGNAL, SIG, 0))).unwrap();
        let cpu_start = now(CLOCK_PROCESS_CPUTIME_ID);
        settime(id, 0, 20 * MS, 0).unwrap();
        sleep_ms(100);
        assert!(!is_pending(SIG), "it fired while the process slept, using no CPU time");
        spin_until_fired(id, CLOCK_PROCESS_CPUTIME_ID, cpu_start + 20 * MS);
    });
}

/// Spins (using CPU time) until CPU-time timer `id` has queued its [`SIG`], at most a
/// minute; `clock` must read at least `due` by then, and the signal be the timer's.
fn spin_until_fired(id: i32, clock: i32, due: i64) {
    let deadline = monotonic_ns() + 60_000 * MS as u64;
    while !is_pending(SIG) {
        assert!(monotonic_ns() < deadline, "no signal after a minute of spinning");
    }
    let at = now(clock);
    assert!(at >= due, "fired at {at} ns of clock {clock}'s time, due at {due}");
    assert_eq!(take(SIG, 0).map(|i| (i.code, i.tid)), Ok((SI_TIMER, id)));
}

/// A CLOCK_THREAD_CPUTIME_ID timer counts the thread that created it: another thread's
/// spinning does not make it fire, the creator's own does.
fn a_thread_cputime_timer_counts_only_the_creating_threads_cpu() {
    run_in_child(|| {
        block(SIG);
        let id = create_on(CLOCK_THREAD_CPUTIME_ID, Some(&sigevent(SIGEV_SIGNAL, SIG, 0))).unwrap();
        let cpu_start = now(CLOCK_THREAD_CPUTIME_ID);
        settime(id, 0, 20 * MS, 0).unwrap();
        let spin = |ms: i64| {
            let end = monotonic_ns() + (ms * MS) as u64;
            while monotonic_ns() < end {}
        };
        // Another thread uses 200 ms of CPU time while this one sleeps.
        std::thread::scope(|s| {
            s.spawn(|| spin(200));
        });
        assert!(!is_pending(SIG), "it fired on another thread's CPU time");
        spin_until_fired(id, CLOCK_THREAD_CPUTIME_ID, cpu_start + 20 * MS);
    });
}
