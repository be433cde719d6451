//! Time syscalls.

use super::{ok, read_val, write_val, Args, SysResult};
use crate::errno::*;
use crate::time::{monotonic_ns, realtime_ns};

use crate::time::{
    CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC_RAW, CLOCK_PROCESS_CPUTIME_ID,
    CLOCK_REALTIME, CLOCK_REALTIME_COARSE, CLOCK_TAI, CLOCK_THREAD_CPUTIME_ID, TIMER_ABSTIME,
};

fn clock_ns(id: u32) -> KResult<i64> {
    match id {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_TAI => Ok(realtime_ns()),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME => Ok(monotonic_ns() as i64),
        CLOCK_PROCESS_CPUTIME_ID => {
            let t = crate::process::current().process.cpu_time();
            Ok((t.user + t.sys) as i64)
        }
        CLOCK_THREAD_CPUTIME_ID => Ok(crate::process::current().cpu_ns() as i64),
        _ => Err(EINVAL),
    }
}

fn write_timespec(va: u64, ns: i64) -> KResult<()> {
    write_val(va, &[ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000)])
}

/// A user timespec as nanoseconds; EINVAL for a bad one.
pub(super) fn read_timespec(va: u64) -> KResult<u64> {
    let ts: [i64; 2] = read_val(va)?;
    timespec_ns(ts[0], ts[1])
}

/// A timespec's (sec, nsec) as nanoseconds; EINVAL for a negative or out-of-range one.
pub(super) fn timespec_ns(sec: i64, nsec: i64) -> KResult<u64> {
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(EINVAL);
    }
    Ok((sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64))
}

/// `struct itimerspec`: interval, then value, each (sec, nsec).
pub(super) type Itimerspec = [i64; 4];

pub(super) fn to_itimerspec(value: u64, interval: u64) -> Itimerspec {
    let split = |ns: u64| ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64);
    let ((is, ins), (vs, vns)) = (split(interval), split(value));
    [is, ins, vs, vns]
}

pub fn sys_clock_gettime(a: Args) -> SysResult {
    let ns = clock_ns(a.u32(0))?;
    write_timespec(a.u(1), ns)?;
    ok(0)
}

/// The latest time settimeofday accepts (`TIME_SETTOD_SEC_MAX`: 30 years before the end of
/// 64-bit time).
const TIME_SETTOD_SEC_MAX: i64 = i64::MAX / 1_000_000_000 - 30 * 365 * 86400;

/// clock_settime(clock, tp): only CLOCK_REALTIME can be set (`posix_clock_realtime_set`,
/// then `do_sys_settimeofday64`), with CAP_SYS_TIME.
pub fn sys_clock_settime(a: Args) -> SysResult {
    if a.u32(0) != CLOCK_REALTIME {
        return Err(EINVAL);
    }
    let ts: [i64; 2] = read_val(a.u(1))?;
    if ts[0] < 0 || ts[0] > TIME_SETTOD_SEC_MAX || !(0..1_000_000_000).contains(&ts[1]) {
        return Err(EINVAL);
    }
    if !crate::process::current().process.creds.lock().capable(crate::process::cred::CAP_SYS_TIME) {
        return Err(EPERM);
    }
    crate::time::set_realtime_ns(ts[0] * 1_000_000_000 + ts[1]);
    ok(0)
}

pub fn sys_clock_getres(a: Args) -> SysResult {
    clock_ns(a.u32(0))?;
    if a.u(1) != 0 {
        write_timespec(a.u(1), 1)?;
    }
    ok(0)
}

pub fn sys_gettimeofday(a: Args) -> SysResult {
    if a.u(0) != 0 {
        let ns = realtime_ns();
        write_val(a.u(0), &[ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) / 1000])?;
    }
    if a.u(1) != 0 {
        write_val(a.u(1), &[0i32, 0i32])?;
    }
    ok(0)
}

pub fn sys_time(a: Args) -> SysResult {
    let s = realtime_ns().div_euclid(1_000_000_000);
    if a.u(0) != 0 {
        write_val(a.u(0), &s)?;
    }
    ok(s as usize)
}

fn sleep_for(ns: u64, rem_va: u64) -> SysResult {
    let start = monotonic_ns();
    let deadline = start.saturating_add(ns);
    match crate::process::sleep::sleep_until(deadline) {
        Ok(()) => ok(0),
        Err(e) => {
            if rem_va != 0 {
                let left = deadline.saturating_sub(monotonic_ns());
                write_timespec(rem_va, left as i64)?;
            }
            Err(e)
        }
    }
}

pub fn sys_nanosleep(a: Args) -> SysResult {
    let ns = read_timespec(a.u(0))?;
    sleep_for(ns, a.u(1))
}

pub fn sys_clock_nanosleep(a: Args) -> SysResult {
    let (id, flags) = (a.u32(0), a.u32(1));
    if matches!(id, CLOCK_THREAD_CPUTIME_ID) {
        return Err(EINVAL);
    }
    let now = clock_ns(id)?;
    let t = read_timespec(a.u(2))?;
    if flags & TIMER_ABSTIME != 0 {
        let left = (t as i64).saturating_sub(now).max(0) as u64;
        match crate::process::sleep::sleep_until(monotonic_ns() + left) {
            Ok(()) => ok(0),
            Err(e) => Err(e),
        }
    } else {
        sleep_for(t, a.u(3))
    }
}

const ITIMER_REAL: u32 = 0;
const ITIMER_VIRTUAL: u32 = 1;
const ITIMER_PROF: u32 = 2;

fn timeval_ns(tv: [i64; 2]) -> KResult<u64> {
    if tv[0] < 0 || !(0..1_000_000).contains(&tv[1]) {
        return Err(EINVAL);
    }
    Ok((tv[0] as u64).saturating_mul(1_000_000_000).saturating_add(tv[1] as u64 * 1000))
}

fn ns_timeval(ns: u64) -> [i64; 2] {
    [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000 / 1000) as i64]
}

fn check_which(which: u32) -> KResult<()> {
    match which {
        ITIMER_REAL => Ok(()),
        ITIMER_VIRTUAL | ITIMER_PROF => {
            crate::log_once!("setitimer: only ITIMER_REAL is implemented (no CPU-time accounting yet)");
            Err(EINVAL)
        }
        _ => Err(EINVAL),
    }
}

pub fn sys_getitimer(a: Args) -> SysResult {
    check_which(a.u32(0))?;
    let (value, interval) = crate::process::itimer::get(&crate::process::current().process);
    let tv: [[i64; 2]; 2] = [ns_timeval(interval), ns_timeval(value)];
    write_val(a.u(1), &tv)?;
    ok(0)
}

pub fn sys_setitimer(a: Args) -> SysResult {
    check_which(a.u32(0))?;
    let (value, interval) = if a.u(1) == 0 {
        (0, 0)
    } else {
        let tv: [[i64; 2]; 2] = read_val(a.u(1))?;
        (timeval_ns(tv[1])?, timeval_ns(tv[0])?)
    };
    let (old_value, old_interval) = crate::process::itimer::set(&crate::process::current().process, value, interval);
    if a.u(2) != 0 {
        write_val(a.u(2), &[ns_timeval(old_interval), ns_timeval(old_value)])?;
    }
    ok(0)
}

/// alarm(seconds): the previous alarm's remaining seconds, rounded up (as Linux).
pub fn sys_alarm(a: Args) -> SysResult {
    let secs = a.u32(0) as u64;
    let (old, _) = crate::process::itimer::set(&crate::process::current().process, secs * 1_000_000_000, 0);
    ok(old.div_ceil(1_000_000_000) as usize)
}

// ---- POSIX timers (`process/posix_timer.rs`) --------------------------------

/// `struct sigevent`'s head: value, signal, notification, then the thread id of
/// SIGEV_THREAD_ID (the rest of its 64 bytes is unused here).
#[repr(C)]
#[derive(Clone, Copy)]
struct USigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    _pad: [i32; 11],
}
const _: () = assert!(core::mem::size_of::<USigEvent>() == 64);
crate::impl_pod!(USigEvent);

/// timer_create(clockid, sevp, timerid): the event is read before the timer is made,
/// and the id written after, as Linux's (a bad `timerid` leaves no timer behind).
pub fn sys_timer_create(a: Args) -> SysResult {
    use crate::process::posix_timer::{self, SigEvent};
    let event = match a.u(1) {
        0 => None,
        va => {
            let e: USigEvent = read_val(va)?;
            Some(SigEvent { value: e.value, signo: e.signo, notify: e.notify, tid: e.tid })
        }
    };
    let id = posix_timer::create(a.i32(0), event)?;
    if let Err(e) = write_val(a.u(2), &id) {
        let _ = posix_timer::delete(id);
        return Err(e);
    }
    ok(0)
}

pub fn sys_timer_settime(a: Args) -> SysResult {
    if a.u(2) == 0 {
        return Err(EINVAL);
    }
    let new: Itimerspec = read_val(a.u(2))?;
    let (interval, value) = (timespec_ns(new[0], new[1])?, timespec_ns(new[2], new[3])?);
    let flags = a.u32(1);
    let (old_value, old_interval) = crate::process::posix_timer::set(a.i32(0), flags, value, interval)?;
    if a.u(3) != 0 {
        write_val(a.u(3), &to_itimerspec(old_value, old_interval))?;
    }
    ok(0)
}

pub fn sys_timer_gettime(a: Args) -> SysResult {
    let (value, interval) = crate::process::posix_timer::get(a.i32(0))?;
    write_val(a.u(1), &to_itimerspec(value, interval))?;
    ok(0)
}

pub fn sys_timer_getoverrun(a: Args) -> SysResult {
    ok(crate::process::posix_timer::getoverrun(a.i32(0))? as usize)
}

pub fn sys_timer_delete(a: Args) -> SysResult {
    crate::process::posix_timer::delete(a.i32(0))?;
    ok(0)
}
