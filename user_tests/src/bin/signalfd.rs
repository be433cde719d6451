//! signalfd: blocked signals read as `signalfd_siginfo` records (sender, child status),
//! several at once, poll and epoll readiness, a read that waits for another process's
//! signal, a new mask through signalfd4, and the errnos. Each test runs in a child, since
//! it changes the signal mask.

use libc::*;
use user_tests::{
    assert_errno, close, fork_child, pipe, run_in_child, run_tests, sigbit, sigprocmask, sleep_ms, sys, tests,
    wait_child, Exit,
};

fn main() {
    run_tests(
        "signalfd",
        tests![
            signalfd4_errnos,
            a_blocked_signal_is_read_with_its_sender,
            a_read_takes_every_pending_signal_that_fits,
            a_read_into_less_than_a_record_is_einval,
            poll_reports_a_pending_signal_of_the_mask,
            a_blocking_read_waits_for_another_processs_signal,
            signalfd4_on_a_signalfd_changes_its_mask,
            a_blocked_sigchld_is_read_with_the_childs_status,
        ],
    );
}

/// The fields of `struct signalfd_siginfo` the tests look at.
#[derive(Debug, PartialEq)]
struct Record {
    signo: u32,
    code: i32,
    pid: u32,
    uid: u32,
    status: i32,
}

fn record(b: &[u8]) -> Record {
    let u = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    Record { signo: u(0), code: u(8) as i32, pid: u(12), uid: u(16), status: u(40) as i32 }
}

fn signalfd(fd: i32, mask: u64, flags: i32) -> Result<i64, user_tests::Errno> {
    sys!(SYS_signalfd4, fd, &mask as *const u64, 8, flags)
}

fn block(mask: u64) {
    sigprocmask(SIG_BLOCK, mask).unwrap();
}

fn read_records(fd: i32, room: usize) -> Result<Vec<Record>, user_tests::Errno> {
    let mut b = vec![0u8; room * 128];
    let n = user_tests::read(fd, &mut b)?;
    assert_eq!(n % 128, 0);
    Ok(b[..n].chunks(128).map(record).collect())
}

fn me() -> (u32, u32) {
    (unsafe { getpid() } as u32, unsafe { getuid() })
}

fn signalfd4_errnos() {
    let mask = sigbit(SIGUSR1);
    let (r, w) = pipe(0).unwrap();
    assert_errno!(sys!(SYS_signalfd4, -1, &mask as *const u64, 4, 0), EINVAL);
    assert_errno!(sys!(SYS_signalfd4, -1, user_tests::BAD_PTR, 8, 0), EFAULT);
    assert_errno!(signalfd(-1, mask, 1), EINVAL);
    assert_errno!(signalfd(r, mask, 0), EINVAL);
    assert_errno!(signalfd(999, mask, 0), EBADF);
    close(r).unwrap();
    close(w).unwrap();
}

fn a_blocked_signal_is_read_with_its_sender() {
    run_in_child(|| {
        block(sigbit(SIGUSR1));
        let fd = signalfd(-1, sigbit(SIGUSR1), SFD_NONBLOCK).unwrap() as i32;
        assert_errno!(read_records(fd, 1), EAGAIN);
        unsafe { kill(getpid(), SIGUSR1) };
        let (pid, uid) = me();
        assert_eq!(
            read_records(fd, 1).unwrap(),
            [Record { signo: SIGUSR1 as u32, code: SI_USER, pid, uid, status: 0 }]
        );
        assert_errno!(read_records(fd, 1), EAGAIN);
        let mut pending = 0u64;
        sys!(SYS_rt_sigpending, &mut pending as *mut u64, 8).unwrap();
        assert_eq!(pending, 0, "the read took the signal");
    });
}

fn a_read_takes_every_pending_signal_that_fits() {
    run_in_child(|| {
        let mask = sigbit(SIGUSR1) | sigbit(SIGUSR2) | sigbit(SIGTERM);
        block(mask);
        let fd = signalfd(-1, mask, SFD_NONBLOCK).unwrap() as i32;
        for sig in [SIGTERM, SIGUSR2, SIGUSR1] {
            unsafe { kill(getpid(), sig) };
        }
        let got: Vec<u32> = read_records(fd, 2).unwrap().iter().map(|r| r.signo).collect();
        assert_eq!(got, [SIGUSR1 as u32, SIGUSR2 as u32], "lowest numbers first, as many as fit");
        let got: Vec<u32> = read_records(fd, 4).unwrap().iter().map(|r| r.signo).collect();
        assert_eq!(got, [SIGTERM as u32]);
    });
}

fn a_read_into_less_than_a_record_is_einval() {
    run_in_child(|| {
        block(sigbit(SIGUSR1));
        let fd = signalfd(-1, sigbit(SIGUSR1), SFD_NONBLOCK).unwrap() as i32;
        let mut b = [0u8; 127];
        assert_errno!(user_tests::read(fd, &mut b), EINVAL);
    });
}

fn poll_reports_a_pending_signal_of_the_mask() {
    run_in_child(|| {
        block(sigbit(SIGUSR1) | sigbit(SIGUSR2));
        let fd = signalfd(-1, sigbit(SIGUSR1), 0).unwrap() as i32;
        let mut p = pollfd { fd, events: POLLIN, revents: 0 };
        assert_eq!(sys!(SYS_poll, &mut p as *mut pollfd, 1, 0), Ok(0));
        unsafe { kill(getpid(), SIGUSR2) };
        assert_eq!(sys!(SYS_poll, &mut p as *mut pollfd, 1, 0), Ok(0), "not in its mask");
        unsafe { kill(getpid(), SIGUSR1) };
        assert_eq!(sys!(SYS_poll, &mut p as *mut pollfd, 1, 0), Ok(1));
        assert_eq!(p.revents, POLLIN);
    });
}

fn a_blocking_read_waits_for_another_processs_signal() {
    run_in_child(|| {
        block(sigbit(SIGUSR1));
        let fd = signalfd(-1, sigbit(SIGUSR1), 0).unwrap() as i32;
        let parent = unsafe { getpid() };
        let child = fork_child(move || {
            sleep_ms(50);
            unsafe { kill(parent, SIGUSR1) };
            0
        });
        let got = read_records(fd, 1).unwrap();
        assert_eq!((got[0].signo, got[0].pid), (SIGUSR1 as u32, child as u32));
        assert_eq!(wait_child(child), Exit::Code(0));
    });
}

fn signalfd4_on_a_signalfd_changes_its_mask() {
    run_in_child(|| {
        block(sigbit(SIGUSR1) | sigbit(SIGUSR2));
        let fd = signalfd(-1, sigbit(SIGUSR1), SFD_NONBLOCK).unwrap() as i32;
        unsafe { kill(getpid(), SIGUSR2) };
        assert_errno!(read_records(fd, 1), EAGAIN);
        assert_eq!(signalfd(fd, sigbit(SIGUSR2), 0), Ok(fd as i64));
        assert_eq!(read_records(fd, 1).unwrap()[0].signo, SIGUSR2 as u32);
    });
}

fn a_blocked_sigchld_is_read_with_the_childs_status() {
    run_in_child(|| {
        block(sigbit(SIGCHLD));
        let fd = signalfd(-1, sigbit(SIGCHLD), 0).unwrap() as i32;
        let child = fork_child(|| 3);
        let got = read_records(fd, 1).unwrap();
        let uid = unsafe { getuid() };
        assert_eq!(got, [Record { signo: SIGCHLD as u32, code: CLD_EXITED, pid: child as u32, uid, status: 3 }]);
        assert_eq!(wait_child(child), Exit::Code(3));
    });
}
