//! timerfd: one-shot, periodic and absolute timers read as expiration counts, disarming,
//! the old setting, non-blocking reads, epoll woken at the expiry, and the errnos of
//! timerfd_create, timerfd_settime and timerfd_gettime.

use libc::*;
use user_tests::{assert_errno, close, monotonic_ns, pipe, run_tests, sys, tests, Errno, BAD_PTR};

fn main() {
    run_tests(
        "timerfd",
        tests![
            timerfd_create_with_another_clock_or_unknown_flags_is_einval,
            a_one_shot_timer_reads_one_expiration_then_is_disarmed,
            a_periodic_timer_keeps_its_interval,
            a_read_before_the_expiry_waits_for_it,
            a_nonblocking_read_before_the_expiry_is_eagain,
            a_read_into_fewer_than_8_bytes_is_einval,
            settime_returns_the_old_setting_and_zero_disarms,
            an_absolute_time_in_the_past_expires_at_once,
            epoll_wakes_at_the_expiry,
            timerfd_settime_and_gettime_errnos,
            setting_the_clock_cancels_an_absolute_realtime_timer_that_asked,
        ],
    );
}

const MS: i64 = 1_000_000;

fn its(value_ns: i64, interval_ns: i64) -> itimerspec {
    let ts = |ns: i64| timespec { tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000 };
    itimerspec { it_value: ts(value_ns), it_interval: ts(interval_ns) }
}

fn ns(t: &timespec) -> i64 {
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

fn create(flags: i32) -> i32 {
    sys!(SYS_timerfd_create, CLOCK_MONOTONIC, flags).unwrap() as i32
}

fn settime(fd: i32, flags: i32, value_ns: i64, interval_ns: i64) -> Result<itimerspec, Errno> {
    let new = its(value_ns, interval_ns);
    let mut old = its(0, 0);
    sys!(SYS_timerfd_settime, fd, flags, &new as *const itimerspec, &mut old as *mut itimerspec)?;
    Ok(old)
}

fn gettime(fd: i32) -> itimerspec {
    let mut cur = its(0, 0);
    sys!(SYS_timerfd_gettime, fd, &mut cur as *mut itimerspec).unwrap();
    cur
}

fn read_count(fd: i32) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    user_tests::read(fd, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}

fn timerfd_create_with_another_clock_or_unknown_flags_is_einval() {
    assert_errno!(sys!(SYS_timerfd_create, CLOCK_PROCESS_CPUTIME_ID, 0), EINVAL);
    assert_errno!(sys!(SYS_timerfd_create, 100, 0), EINVAL);
    assert_errno!(sys!(SYS_timerfd_create, CLOCK_MONOTONIC, 1), EINVAL);
    for clock in [CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME] {
        let fd = sys!(SYS_timerfd_create, clock, TFD_CLOEXEC | TFD_NONBLOCK).unwrap() as i32;
        close(fd).unwrap();
    }
}

fn a_one_shot_timer_reads_one_expiration_then_is_disarmed() {
    let fd = create(0);
    settime(fd, 0, 10 * MS, 0).unwrap();
    assert_eq!(read_count(fd), Ok(1));
    let cur = gettime(fd);
    assert_eq!((ns(&cur.it_value), ns(&cur.it_interval)), (0, 0));
    close(fd).unwrap();
}

fn a_periodic_timer_keeps_its_interval() {
    let fd = create(0);
    settime(fd, 0, 10 * MS, 10 * MS).unwrap();
    assert!(read_count(fd).unwrap() >= 1);
    assert!(read_count(fd).unwrap() >= 1, "it fires again");
    let cur = gettime(fd);
    assert_eq!(ns(&cur.it_interval), 10 * MS);
    assert!(ns(&cur.it_value) > 0 && ns(&cur.it_value) <= 10 * MS);
    close(fd).unwrap();
}

fn a_read_before_the_expiry_waits_for_it() {
    let fd = create(0);
    let start = monotonic_ns();
    settime(fd, 0, 50 * MS, 0).unwrap();
    assert_eq!(read_count(fd), Ok(1));
    assert!(monotonic_ns() - start >= 50 * MS as u64);
    close(fd).unwrap();
}

fn a_nonblocking_read_before_the_expiry_is_eagain() {
    let fd = create(TFD_NONBLOCK);
    assert_errno!(read_count(fd), EAGAIN);
    settime(fd, 0, 10_000 * MS, 0).unwrap();
    assert_errno!(read_count(fd), EAGAIN);
    close(fd).unwrap();
}

fn a_read_into_fewer_than_8_bytes_is_einval() {
    let fd = create(0);
    settime(fd, 0, 1, 0).unwrap();
    let mut b = [0u8; 4];
    assert_errno!(user_tests::read(fd, &mut b), EINVAL);
    close(fd).unwrap();
}

fn settime_returns_the_old_setting_and_zero_disarms() {
    let fd = create(TFD_NONBLOCK);
    let old = settime(fd, 0, 10_000 * MS, 500 * MS).unwrap();
    assert_eq!((ns(&old.it_value), ns(&old.it_interval)), (0, 0));
    let old = settime(fd, 0, 0, 0).unwrap();
    assert!(ns(&old.it_value) > 9_000 * MS && ns(&old.it_value) <= 10_000 * MS);
    assert_eq!(ns(&old.it_interval), 500 * MS);
    let cur = gettime(fd);
    assert_eq!((ns(&cur.it_value), ns(&cur.it_interval)), (0, 0));
    assert_errno!(read_count(fd), EAGAIN);
    close(fd).unwrap();
}

fn an_absolute_time_in_the_past_expires_at_once() {
    // A blocking read: Linux's hrtimer for a past time fires from its interrupt, a moment
    // after settime returns.
    let fd = create(0);
    let mut now = timespec { tv_sec: 0, tv_nsec: 0 };
    sys!(SYS_clock_gettime, CLOCK_MONOTONIC, &mut now as *mut timespec).unwrap();
    settime(fd, TFD_TIMER_ABSTIME, (ns(&now) - 1000 * MS).max(1), 0).unwrap();
    assert_eq!(read_count(fd), Ok(1));
    close(fd).unwrap();
}

fn epoll_wakes_at_the_expiry() {
    let fd = create(TFD_NONBLOCK);
    let ep = sys!(SYS_epoll_create1, 0).unwrap() as i32;
    let mut ev = epoll_event { events: EPOLLIN as u32, u64: 5 };
    sys!(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, fd, &mut ev as *mut epoll_event).unwrap();
    settime(fd, 0, 30 * MS, 0).unwrap();
    let mut out = [epoll_event { events: 0, u64: 0 }; 2];
    let start = monotonic_ns();
    assert_eq!(sys!(SYS_epoll_wait, ep, out.as_mut_ptr(), 2, 5000), Ok(1));
    assert!(monotonic_ns() - start >= 20 * MS as u64);
    assert_eq!(read_count(fd), Ok(1));
    close(ep).unwrap();
    close(fd).unwrap();
}

fn timerfd_settime_and_gettime_errnos() {
    let fd = create(0);
    let (r, w) = pipe(0).unwrap();
    assert_errno!(settime(fd, 4, 1, 0), EINVAL);
    let bad = itimerspec {
        it_value: timespec { tv_sec: 0, tv_nsec: 1_000_000_000 },
        it_interval: timespec { tv_sec: 0, tv_nsec: 0 },
    };
    assert_errno!(sys!(SYS_timerfd_settime, fd, 0, &bad as *const itimerspec, 0), EINVAL);
    let neg =
        itimerspec { it_value: timespec { tv_sec: -1, tv_nsec: 0 }, it_interval: timespec { tv_sec: 0, tv_nsec: 0 } };
    assert_errno!(sys!(SYS_timerfd_settime, fd, 0, &neg as *const itimerspec, 0), EINVAL);
    assert_errno!(settime(r, 0, 1, 0), EINVAL);
    assert_errno!(settime(999, 0, 1, 0), EBADF);
    assert_errno!(sys!(SYS_timerfd_settime, fd, 0, BAD_PTR, 0), EFAULT);
    assert_errno!(sys!(SYS_timerfd_gettime, fd, BAD_PTR), EFAULT);
    let mut cur = its(0, 0);
    assert_errno!(sys!(SYS_timerfd_gettime, r, &mut cur as *mut itimerspec), EINVAL);
    for fd in [fd, r, w] {
        close(fd).unwrap();
    }
}

fn setting_the_clock_cancels_an_absolute_realtime_timer_that_asked() {
    // Setting the clock reaches every process of the machine: on a test VM only.
    if !user_tests::on_scratch_machine() {
        return;
    }
    let fd = sys!(SYS_timerfd_create, CLOCK_REALTIME, TFD_NONBLOCK).unwrap() as i32;
    let plain = sys!(SYS_timerfd_create, CLOCK_REALTIME, TFD_NONBLOCK).unwrap() as i32;
    let mut now = timespec { tv_sec: 0, tv_nsec: 0 };
    sys!(SYS_clock_gettime, CLOCK_REALTIME, &mut now as *mut timespec).unwrap();
    let later = ns(&now) + 3600 * 1000 * MS;
    settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, later, 0).unwrap();
    settime(plain, TFD_TIMER_ABSTIME, later, 0).unwrap();
    assert_errno!(read_count(fd), EAGAIN);
    sys!(SYS_clock_settime, CLOCK_REALTIME, &now as *const timespec).unwrap();
    let mut p = [pollfd { fd, events: POLLIN, revents: 0 }, pollfd { fd: plain, events: POLLIN, revents: 0 }];
    assert_eq!(sys!(SYS_poll, p.as_mut_ptr(), 2, 0), Ok(1));
    assert_eq!((p[0].revents, p[1].revents), (POLLIN, 0));
    assert_errno!(read_count(fd), ECANCELED);
    assert_errno!(read_count(plain), EAGAIN);
    close(fd).unwrap();
    close(plain).unwrap();
}
