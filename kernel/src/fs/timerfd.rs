//! timerfd (Linux's fs/timerfd.c, 6.1): a timer on CLOCK_MONOTONIC, CLOCK_BOOTTIME or
//! CLOCK_REALTIME read as a file; a read gives the expirations since the last read.
//!
//! The expirations are counted from the clock when the file is read or polled, not by a
//! timer interrupt: a reader sleeps until the next expiry, and poll, select and epoll
//! re-check the file every tick (`polled_by_tick`), the granularity of every timer here.
//! With TFD_TIMER_CANCEL_ON_SET an absolute CLOCK_REALTIME timer is cancelled when the
//! clock is set: it polls readable and a read gives ECANCELED.

use super::vfs::POLLIN;
use crate::errno::*;
use crate::process::wait_queue::WaitQueue;
use crate::sync::SpinLock;

pub const CLOCK_REALTIME: i32 = 0;
pub const CLOCK_MONOTONIC: i32 = 1;
pub const CLOCK_BOOTTIME: i32 = 7;
pub const CLOCK_REALTIME_ALARM: i32 = 8;
pub const CLOCK_BOOTTIME_ALARM: i32 = 9;
pub const TFD_TIMER_ABSTIME: u32 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

#[derive(Default, Clone, Copy)]
struct State {
    /// The next expiry on the timer's clock (ns), or None when disarmed.
    next: Option<i64>,
    interval: u64,
    /// Expirations not yet read.
    ticks: u64,
    /// The clock-set count when a cancel-on-set timer was armed.
    cancel_gen: Option<u64>,
}

pub struct TimerFd {
    _live: crate::leak::Live,
    clock: i32,
    state: SpinLock<State, crate::sync::order::TimerFdState>,
    /// Where a reader sleeps; woken by settime.
    wq: WaitQueue,
    pub ino: u64,
}

fn now(clock: i32) -> i64 {
    match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM => crate::time::realtime_ns(),
        _ => crate::time::monotonic_ns() as i64,
    }
}

impl State {
    /// Counts the expirations up to `now` (`timerfd_tmrproc` and `hrtimer_forward_now`).
    fn advance(&mut self, now: i64) {
        let Some(next) = self.next else { return };
        if now < next {
            return;
        }
        if self.interval == 0 {
            self.ticks += 1;
            self.next = None;
        } else {
            let n = (now - next) as u64 / self.interval + 1;
            self.ticks += n;
            self.next = Some(next + (n * self.interval) as i64);
        }
    }

    fn canceled(&self) -> bool {
        self.cancel_gen.is_some_and(|g| g != crate::time::clock_set_count())
    }
}

impl TimerFd {
    /// `timerfd_create`'s checks of the clock: EINVAL for another clock, EPERM for an
    /// alarm clock without CAP_WAKE_ALARM.
    pub fn new(clock: i32, cred: &crate::process::cred::Creds) -> KResult<TimerFd> {
        if ![CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM]
            .contains(&clock)
        {
            return Err(EINVAL);
        }
        if (clock == CLOCK_REALTIME_ALARM || clock == CLOCK_BOOTTIME_ALARM) && !cred.capable(CAP_WAKE_ALARM) {
            return Err(EPERM);
        }
        Ok(TimerFd {
            _live: crate::leak::INODES.live(),
            clock,
            state: SpinLock::new(State::default()),
            wq: WaitQueue::new(),
            ino: super::tmpfs::next_ino(),
        })
    }

    /// (time to the next expiry, interval) as timerfd_gettime gives them.
    pub fn gettime(&self) -> (u64, u64) {
        let now = now(self.clock);
        let mut s = self.state.lock();
        s.advance(now);
        let left = s.next.map_or(0, |n| (n - now).max(1) as u64);
        (left, s.interval)
    }

    /// `do_timerfd_settime` once the arguments are checked: arms (value 0 disarms),
    /// drops the unread expirations, returns the old setting.
    pub fn settime(&self, flags: u32, value: u64, interval: u64) -> (u64, u64) {
        let old = self.gettime();
        let now = now(self.clock);
        {
            let mut s = self.state.lock();
            s.ticks = 0;
            s.interval = interval;
            s.next = match (value, flags & TFD_TIMER_ABSTIME != 0) {
                (0, _) => None,
                (v, true) => Some(v as i64),
                (v, false) => Some(now.saturating_add(v as i64)),
            };
            let might_cancel = flags & TFD_TIMER_CANCEL_ON_SET != 0
                && flags & TFD_TIMER_ABSTIME != 0
                && matches!(self.clock, CLOCK_REALTIME | CLOCK_REALTIME_ALARM);
            s.cancel_gen = might_cancel.then(crate::time::clock_set_count);
        }
        self.wq.wake_all();
        old
    }

    /// `timerfd_read`: the expirations as 8 bytes, waiting for one unless `nonblock`.
    pub fn read(&self, out: &mut [u8], nonblock: bool) -> KResult<usize> {
        if out.len() < 8 {
            return Err(EINVAL);
        }
        let ticks = loop {
            let now_mono = crate::time::monotonic_ns();
            let clock_now = now(self.clock);
            let (ready, wait_ns) = {
                let mut s = self.state.lock();
                s.advance(clock_now);
                if s.canceled() {
                    s.ticks = 0;
                    s.cancel_gen = Some(crate::time::clock_set_count());
                    return Err(ECANCELED);
                }
                if s.ticks > 0 {
                    let t = s.ticks;
                    s.ticks = 0;
                    (Some(t), 0)
                } else {
                    (None, s.next.map(|n| (n - clock_now).max(0) as u64).unwrap_or(u64::MAX))
                }
            };
            if let Some(t) = ready {
                break t;
            }
            if nonblock {
                return Err(EAGAIN);
            }
            // Until the next expiry, or a settime (which wakes the queue); a signal ends it.
            let deadline = (wait_ns != u64::MAX).then(|| now_mono.saturating_add(wait_ns));
            let set = self.wq.wake_count();
            match self.wq.wait_until_deadline(true, deadline, || (self.wq.wake_count() != set).then_some(())) {
                Err(ETIMEDOUT) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        };
        out[..8].copy_from_slice(&ticks.to_ne_bytes());
        Ok(8)
    }

    pub fn poll(&self) -> u16 {
        let now = now(self.clock);
        let mut s = self.state.lock();
        s.advance(now);
        if s.ticks > 0 || s.canceled() {
            POLLIN
        } else {
            0
        }
    }

    pub fn wait_queue(&self) -> &WaitQueue {
        &self.wq
    }
}

const CAP_WAKE_ALARM: u32 = 35;
