//! POSIX per-process timers: timer_create, timer_settime, timer_gettime,
//! timer_getoverrun and timer_delete (Linux's kernel/time/posix-timers.c, 6.1).
//!
//! A timer belongs to its process (ids count up from 0 per process, not inherited by
//! fork, deleted by execve and exit) and notifies by a signal to the process
//! (SIGEV_SIGNAL), to one of its threads (SIGEV_THREAD_ID), or not at all (SIGEV_NONE).
//! Its signal carries SI_TIMER, the timer id, the sigev value and the overrun count.
//! As Linux's, one signal at most is queued per timer: a periodic timer stops when its
//! signal is queued and restarts when the signal is taken (`posixtimer_rearm`), counting
//! the intervals that passed meanwhile as the overrun the signal reports; an expiry
//! while the signal is still queued adds to that count instead of queuing another.
//! Expiry is checked in task context, as for the interval timers (`itimer.rs`).
//!
//! A CPU-time clock's timer (the process's, or the creating thread's) is looked at when
//! its process could have used the time left with every CPU, and fires once the clock
//! has reached its expiry: as coarse as the CPU time's accounting (the scheduler's).
//!
//! CLOCK_REALTIME and CLOCK_TAI absolute times are converted to the monotonic clock
//! when set: a later clock_settime does not move them (Linux's do).

use super::signal::{self, SigInfo};
use super::task::{Process, Task, Tid};
use crate::errno::*;
use crate::sync::SpinLock as Mutex;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

pub const SI_TIMER: i32 = -2;

pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;
pub const SIGEV_THREAD_ID: i32 = 4;

pub use crate::time::TIMER_ABSTIME;

use crate::time::{
    CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM, CLOCK_MONOTONIC, CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC_RAW,
    CLOCK_PROCESS_CPUTIME_ID, CLOCK_REALTIME, CLOCK_REALTIME_ALARM, CLOCK_REALTIME_COARSE, CLOCK_TAI,
    CLOCK_THREAD_CPUTIME_ID,
};

/// Where a timer's expiry goes.
#[derive(Clone)]
enum Notify {
    None,
    Process,
    Thread(Weak<Task>),
}

/// `struct k_itimer`.
struct KTimer {
    owner: Arc<Process>,
    id: i32,
    clock: u32,
    /// For a CPU-time clock: the thread whose time it counts (None: the whole process).
    thread: Option<Weak<Task>>,
    /// For a CPU-time clock: the earliest monotonic time it can expire, when the
    /// expiry check next reads the clock (all CPUs running the process's threads).
    wall_hint: u64,
    notify: Notify,
    /// The signal as given (a SIGEV_NONE timer's is not checked, only shown).
    signo: i32,
    /// sigev_notify as given, for /proc/PID/timers.
    notify_raw: i32,
    value: u64,
    /// The next expiry in the timer's clock (monotonic ns, or CPU ns for a CPU-time
    /// clock); 0 when disarmed or when a periodic timer waits for its signal to be taken.
    expires: u64,
    interval: u64,
    /// The expiry the waiting periodic timer restarts from once its signal is taken.
    fired_at: u64,
    /// Counts settings (`it_requeue_pending`): an ignored signal restarts the timer only
    /// if no setting came between.
    requeue: u64,
    /// The timer's signal is queued and not yet taken.
    queued: bool,
    /// Expiries while the signal was queued, added to its si_overrun.
    queued_overrun: u64,
    /// Expirations missed since the last delivery, and at the last one (what
    /// timer_getoverrun reports).
    overrun: u64,
    overrun_last: u64,
    _live: crate::leak::Live,
}

/// Every process's timers. Held while a timer's state changes, never while a signal is
/// sent (the sender takes the process's and its threads' signal locks).
static TIMERS: Mutex<Vec<KTimer>, crate::sync::order::PosixTimers> = Mutex::new(Vec::new());
/// The earliest armed expiry (u64::MAX when none), for a cheap check on every return.
static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);

/// A timer that notifies nobody is never looked at by the expiry check: its setting is
/// worked out when read (`current_setting`).
fn recompute(list: &[KTimer]) {
    let armed = list.iter().filter(|t| t.expires != 0 && !matches!(t.notify, Notify::None));
    NEXT.store(armed.map(wall_due).min().unwrap_or(u64::MAX), Ordering::Relaxed);
}

fn now() -> u64 {
    crate::time::monotonic_ns()
}

fn is_cpu_clock(clock: u32) -> bool {
    matches!(clock, CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID)
}

/// The timer's clock now: monotonic time, or the CPU time of its process or thread (a
/// thread that has gone counts no more).
fn clock_now(k: &KTimer) -> u64 {
    match (k.clock, &k.thread) {
        (CLOCK_THREAD_CPUTIME_ID, Some(t)) => t.upgrade().map_or(0, |t| t.cpu_ns()),
        (CLOCK_PROCESS_CPUTIME_ID, _) => {
            let t = k.owner.cpu_time();
            t.user + t.sys
        }
        _ => now(),
    }
}

/// When the expiry check looks at the timer next: its expiry, or for a CPU-time clock
/// the soonest its process could have used the time left.
fn wall_due(k: &KTimer) -> u64 {
    if is_cpu_clock(k.clock) {
        k.wall_hint
    } else {
        k.expires
    }
}

fn update_wall_hint(k: &mut KTimer, wall: u64) {
    if is_cpu_clock(k.clock) && k.expires != 0 {
        let left = k.expires.saturating_sub(clock_now(k));
        let cpus = crate::arch::percpu::nr_cpus_online().max(1) as u64;
        k.wall_hint = wall.saturating_add(left / cpus).max(wall + 1);
    }
}

/// An overrun count as si_overrun and timer_getoverrun give it (`timer_overrun_to_int`).
fn overrun_int(n: u64) -> i32 {
    n.min(i32::MAX as u64) as i32
}

/// The clocks a timer may run on (`clockid_to_kclock` and its `timer_create`).
fn check_clock(clock: i32) -> KResult<u32> {
    if clock < 0 {
        crate::log_once!("timer_create: the CPU-time clocks of other processes and threads are not implemented");
        return Err(EINVAL);
    }
    match clock as u32 {
        CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_TAI => Ok(clock as u32),
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => Ok(clock as u32),
        // Clocks without timers.
        CLOCK_MONOTONIC_RAW | CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => Err(EOPNOTSUPP),
        // Alarm timers need an RTC that can wake the machine: refused in `create`.
        CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM => Ok(clock as u32),
        _ => Err(EINVAL),
    }
}

/// A new timer's notification, from a user `struct sigevent` (value, signo, notify,
/// thread id) or None for the default: SIGALRM to the process with the id as its value
/// (`good_sigevent`).
pub struct SigEvent {
    pub value: u64,
    pub signo: i32,
    pub notify: i32,
    pub tid: i32,
}

/// timer_create, up to the id's copy to user memory: the new timer's id. As Linux's
/// `do_timer_create`, the id is taken before the event is checked (a refused event
/// uses one up), and an alarm clock is refused after both (`alarm_timer_create`).
pub fn create(clock: i32, event: Option<SigEvent>) -> KResult<i32> {
    let clock = check_clock(clock)?;
    let t = super::current();
    let p = t.process.clone();
    let limit = p.rlimits.lock()[super::task::RLIMIT_SIGPENDING].cur;
    let mut list = TIMERS.lock();
    if list.iter().filter(|k| Arc::ptr_eq(&k.owner, &p)).count() as u64 >= limit {
        return Err(EAGAIN);
    }
    // Ids count up per process and wrap at INT_MAX (`posix_timer_add`).
    let id = loop {
        let id = p.next_timer_id.fetch_add(1, Ordering::Relaxed) & i32::MAX as u32;
        if !list.iter().any(|k| Arc::ptr_eq(&k.owner, &p) && k.id == id as i32) {
            break id as i32;
        }
    };
    let (notify, notify_raw, signo, value) = match event {
        None => (Notify::Process, SIGEV_SIGNAL, signal::SIGALRM as i32, id as u64),
        Some(e) => {
            let notify = match e.notify {
                SIGEV_NONE => Notify::None,
                // SIGEV_THREAD is the C library's: to the kernel, a signal to the process.
                SIGEV_SIGNAL | SIGEV_THREAD => Notify::Process,
                SIGEV_THREAD_ID => {
                    let target = super::task::find_task(e.tid.max(0) as Tid)
                        .filter(|target| e.tid > 0 && Arc::ptr_eq(&target.process, &p))
                        .ok_or(EINVAL)?;
                    Notify::Thread(Arc::downgrade(&target))
                }
                _ => return Err(EINVAL),
            };
            if e.notify != SIGEV_NONE && !(1..=signal::NSIG as i32).contains(&e.signo) {
                return Err(EINVAL);
            }
            (notify, e.notify, e.signo, e.value)
        }
    };
    if matches!(clock, CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM) {
        return Err(EOPNOTSUPP);
    }
    let thread = (clock == CLOCK_THREAD_CPUTIME_ID).then(|| Arc::downgrade(&t));
    list.push(KTimer {
        owner: p,
        id,
        clock,
        thread,
        wall_hint: 0,
        notify,
        signo,
        notify_raw,
        value,
        expires: 0,
        interval: 0,
        fired_at: 0,
        requeue: 0,
        queued: false,
        queued_overrun: 0,
        overrun: 0,
        overrun_last: 0,
        _live: crate::leak::POSIX_TIMERS.live(),
    });
    Ok(id)
}

/// Where `p`'s timer `id` is in the list; EINVAL if it has none of that id.
fn index(list: &[KTimer], p: &Arc<Process>, id: i32) -> KResult<usize> {
    list.iter().position(|k| Arc::ptr_eq(&k.owner, p) && k.id == id).ok_or(EINVAL)
}

fn find<'a>(list: &'a mut [KTimer], p: &Arc<Process>, id: i32) -> KResult<&'a mut KTimer> {
    let i = index(list, p, id)?;
    Ok(&mut list[i])
}

/// Moves the expiry `at` of a timer of period `interval` to the first one after `now`
/// (Linux's `hrtimer_forward`): the number of periods it moved.
fn forward(at: &mut u64, now: u64, interval: u64) -> u64 {
    let periods = now.saturating_sub(*at) / interval + 1;
    *at = at.saturating_add(periods.saturating_mul(interval));
    periods
}

/// (remaining, interval) in ns, as timer_gettime shows them (`common_timer_get`): a
/// periodic timer waiting for its signal, or one without a signal, is forwarded past
/// now; one whose time has come but whose signal is not yet sent shows 1 ns.
fn current_setting(k: &mut KTimer, now: u64) -> (u64, u64) {
    let waiting = k.expires == 0 && k.interval != 0 && k.fired_at != 0;
    let mut next = if waiting { k.fired_at } else { k.expires };
    if next == 0 {
        return (0, k.interval);
    }
    if k.interval != 0 && next <= now && (waiting || matches!(k.notify, Notify::None)) {
        k.overrun = k.overrun.saturating_add(forward(&mut next, now, k.interval));
        if waiting {
            k.fired_at = next;
        } else {
            k.expires = next;
        }
    }
    if next <= now {
        // A one-shot timer without a signal has expired for good.
        if matches!(k.notify, Notify::None) && k.interval == 0 {
            k.expires = 0;
            return (0, 0);
        }
        return (1, k.interval);
    }
    (next - now, k.interval)
}

/// timer_gettime: (remaining, interval) in ns.
pub fn get(id: i32) -> KResult<(u64, u64)> {
    let p = super::current().process.clone();
    let mut list = TIMERS.lock();
    let k = find(&mut list, &p, id)?;
    let r = current_setting(k, clock_now(k));
    recompute(&list);
    Ok(r)
}

/// timer_settime: arms (value > 0, relative or at an absolute time of the timer's
/// clock) or disarms the timer; returns the old (remaining, interval).
pub fn set(id: i32, flags: u32, value: u64, interval: u64) -> KResult<(u64, u64)> {
    let p = super::current().process.clone();
    let mut list = TIMERS.lock();
    let k = find(&mut list, &p, id)?;
    let now = clock_now(k);
    let old = current_setting(k, now);
    // A queued signal of the old setting no longer restarts the timer.
    k.requeue += 1;
    k.fired_at = 0;
    k.overrun = 0;
    k.overrun_last = 0;
    // A zero value disarms and drops the interval given with it.
    k.interval = if value == 0 { 0 } else { interval };
    k.expires = if value == 0 {
        0
    } else if flags & TIMER_ABSTIME != 0 {
        let mono = match k.clock {
            CLOCK_REALTIME | CLOCK_TAI => {
                let offset = crate::time::realtime_ns() - now as i64;
                (value as i64).saturating_sub(offset).max(0) as u64
            }
            _ => value,
        };
        mono.max(1)
    } else {
        now.saturating_add(value)
    };
    update_wall_hint(k, self::now());
    recompute(&list);
    Ok(old)
}

/// timer_getoverrun: the overrun of the last delivered signal.
pub fn getoverrun(id: i32) -> KResult<i32> {
    let p = super::current().process.clone();
    let mut list = TIMERS.lock();
    Ok(overrun_int(find(&mut list, &p, id)?.overrun_last))
}

/// timer_delete. A queued signal stays queued (Linux's `sigqueue_free`).
pub fn delete(id: i32) -> KResult<()> {
    let p = super::current().process.clone();
    let mut list = TIMERS.lock();
    let i = index(&list, &p, id)?;
    list.swap_remove(i);
    recompute(&list);
    Ok(())
}

/// Deletes every timer of `p` (`exit_itimers`): at execve and when its last thread exits.
pub fn exit_itimers(p: &Arc<Process>) {
    let mut list = TIMERS.lock();
    list.retain(|k| !Arc::ptr_eq(&k.owner, p));
    recompute(&list);
}

/// `/proc/PID/timers` (Linux's `show_timer`): each timer of `p`, newest first, with its
/// id, signal and value, notification and the pid or tid it goes to, and clock.
pub fn proc_timers(p: &Arc<Process>) -> alloc::string::String {
    use core::fmt::Write;
    let list = TIMERS.lock();
    let mut mine: Vec<&KTimer> = list.iter().filter(|k| Arc::ptr_eq(&k.owner, p)).collect();
    mine.sort_by_key(|k| core::cmp::Reverse(k.id));
    let mut s = alloc::string::String::new();
    for k in mine {
        let kind = match k.notify_raw & !SIGEV_THREAD_ID {
            SIGEV_NONE => "none",
            SIGEV_THREAD => "thread",
            _ => "signal",
        };
        let (to, pid) = match &k.notify {
            Notify::Thread(t) => ("tid", t.upgrade().map_or(0, |t| t.tid())),
            _ => ("pid", k.owner.pid),
        };
        let _ = write!(
            s,
            "ID: {}\nsignal: {}/{:016x}\nnotify: {}/{}.{}\nClockID: {}\n",
            k.id, k.signo, k.value, kind, to, pid, k.clock
        );
    }
    s
}

/// Gives back the list's spare capacity (`leak`'s shrinkers).
pub fn shrink() {
    TIMERS.lock().shrink_to_fit();
}

/// One expiry to send: the signal and its target, and how to find the timer again.
struct Fire {
    owner: Arc<Process>,
    id: i32,
    requeue: u64,
    to: Notify,
    info: SigInfo,
}

/// Sends the signal of every expired timer (`posix_timer_fn`).
pub fn check_expired() {
    let next = NEXT.load(Ordering::Relaxed);
    if next == u64::MAX || now() < next {
        return;
    }
    let now = now();
    let mut fire = Vec::new();
    {
        let mut list = TIMERS.lock();
        let due = |k: &&mut KTimer| k.expires != 0 && wall_due(k) <= now && !matches!(k.notify, Notify::None);
        for k in list.iter_mut().filter(due) {
            if is_cpu_clock(k.clock) && clock_now(k) < k.expires {
                update_wall_hint(k, now);
                continue;
            }
            let fired = k.expires;
            k.expires = 0;
            // A periodic timer waits for its signal to be taken to restart from here.
            if k.interval != 0 {
                k.fired_at = fired;
            }
            if k.queued {
                // One signal per timer: this expiry is counted in the queued one.
                k.queued_overrun += 1;
                continue;
            }
            let mut info = SigInfo::new(k.signo as u32, SI_TIMER);
            info.field0 = k.id as u32 as u64;
            info.field1 = k.value;
            k.queued = true;
            fire.push(Fire { owner: k.owner.clone(), id: k.id, requeue: k.requeue, to: k.notify.clone(), info });
        }
        recompute(&list);
    }
    for f in fire {
        let sent = match &f.to {
            Notify::Process if !f.owner.is_zombie() => signal::send_to_process(&f.owner, f.info),
            Notify::Thread(t) => t.upgrade().is_some_and(|t| signal::send_to_thread(&t, f.info)),
            _ => false,
        };
        if !sent {
            not_queued(&f);
        }
    }
}

/// The signal was not queued (ignored, or its thread is gone): a periodic timer restarts
/// at once, counting what it missed; a one-shot one is done.
fn not_queued(f: &Fire) {
    let mut list = TIMERS.lock();
    let Ok(k) = find(&mut list, &f.owner, f.id) else { return };
    k.queued = false;
    if k.requeue == f.requeue && k.interval != 0 && k.fired_at != 0 {
        restart(k);
    }
    recompute(&list);
}

/// A periodic timer that waited for its signal runs again from its first expiry after
/// now, the intervals it skipped counted as overruns (`common_hrtimer_rearm`).
fn restart(k: &mut KTimer) {
    let mut at = core::mem::take(&mut k.fired_at);
    // The expiry it restarts from was delivered: not an overrun.
    k.overrun = k.overrun.saturating_add(forward(&mut at, clock_now(k), k.interval) - 1);
    k.expires = at;
    update_wall_hint(k, now());
}

/// A timer's signal was taken from a pending queue by `owner` (`dequeue_signal` calling
/// `posixtimer_rearm`): fills in its overrun, restarts a periodic timer, and hides
/// si_sys_private.
pub fn signal_taken(owner: &Arc<Process>, info: &mut SigInfo) {
    info.rest[0] = 0;
    let id = info.field0 as u32 as i32;
    let mut list = TIMERS.lock();
    let Ok(k) = find(&mut list, owner, id) else { return };
    if !k.queued {
        return;
    }
    k.queued = false;
    let mut overrun = core::mem::take(&mut k.queued_overrun);
    // A periodic timer that expired since its last setting restarts (a setting clears
    // `fired_at`, so a signal of an older one does not restart the new).
    if k.interval != 0 && k.fired_at != 0 {
        restart(k);
        k.overrun_last = k.overrun;
        k.overrun = 0;
        overrun = overrun.saturating_add(k.overrun_last);
    }
    info.field0 = id as u32 as u64 | (overrun_int(overrun) as u32 as u64) << 32;
    recompute(&list);
}
