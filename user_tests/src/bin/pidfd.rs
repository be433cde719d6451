//! pidfd_open (Linux's kernel/pid.c, kernel/fork.c's pidfd_poll) and waitid's P_PIDFD
//! (kernel/exit.c): a descriptor for a process, readable once it has exited.

use libc::*;
use user_tests::{assert_errno, close, fork_child, pipe, read, run_tests, sys, tests, wait_child, write, Exit};

fn main() {
    run_tests(
        "pidfd",
        tests![
            pidfd_open_gives_a_close_on_exec_descriptor,
            pidfd_open_with_unknown_flags_or_a_bad_pid_is_einval,
            pidfd_open_of_a_pid_nobody_has_is_esrch,
            a_pidfd_polls_readable_only_once_the_process_exited,
            reading_a_pidfd_is_einval,
            waitid_p_pidfd_reaps_the_child_it_names,
            waitid_p_pidfd_of_a_descriptor_that_is_no_pidfd_is_ebadf,
            waitid_on_a_nonblocking_pidfd_of_a_running_child_is_eagain,
            proc_fd_shows_a_pidfd_as_an_anonymous_inode,
        ],
    )
}

const P_PIDFD: i32 = 3;

fn pidfd_open(pid: i32, flags: u32) -> Result<i32, user_tests::Errno> {
    sys!(SYS_pidfd_open, pid, flags).map(|fd| fd as i32)
}

/// A child that waits for a byte on a pipe, then exits with `code`: (pid, the pipe's write end).
fn waiting_child(code: i32) -> (i32, i32) {
    let (r, w) = pipe(0).unwrap();
    let pid = fork_child(move || {
        let _ = close(w);
        let mut b = [0u8; 1];
        let _ = read(r, &mut b);
        code
    });
    close(r).unwrap();
    (pid, w)
}

fn poll_in(fd: i32, ms: i32) -> i16 {
    let mut p = pollfd { fd, events: POLLIN, revents: 0 };
    assert!(unsafe { poll(&mut p, 1, ms) } >= 0);
    p.revents
}

fn pidfd_open_gives_a_close_on_exec_descriptor() {
    let (pid, w) = waiting_child(0);
    let fd = pidfd_open(pid, 0).unwrap();
    assert_eq!(sys!(SYS_fcntl, fd, F_GETFD), Ok(FD_CLOEXEC as i64));
    let nb = pidfd_open(pid, O_NONBLOCK as u32).unwrap();
    assert_eq!(sys!(SYS_fcntl, nb, F_GETFL).unwrap() as i32 & O_NONBLOCK, O_NONBLOCK);
    close(w).unwrap();
    assert_eq!(wait_child(pid), Exit::Code(0));
    close(fd).unwrap();
    close(nb).unwrap();
}

fn pidfd_open_with_unknown_flags_or_a_bad_pid_is_einval() {
    let me = unsafe { getpid() };
    assert_errno!(pidfd_open(me, 1), EINVAL);
    assert_errno!(pidfd_open(0, 0), EINVAL);
    assert_errno!(pidfd_open(-1, 0), EINVAL);
}

fn pidfd_open_of_a_pid_nobody_has_is_esrch() {
    let pid = fork_child(|| 0);
    wait_child(pid);
    assert_errno!(pidfd_open(pid, 0), ESRCH);
}

fn a_pidfd_polls_readable_only_once_the_process_exited() {
    let (pid, w) = waiting_child(3);
    let fd = pidfd_open(pid, 0).unwrap();
    assert_eq!(poll_in(fd, 0), 0, "readable while the child runs");
    close(w).unwrap();
    // Readable at its exit, before anyone reaps it.
    assert_eq!(poll_in(fd, 5000), POLLIN);
    assert_eq!(wait_child(pid), Exit::Code(3));
    // Linux 6.9+ adds POLLHUP once it is reaped (pidfs); 6.1 reports POLLIN alone.
    assert_ne!(poll_in(fd, 0) & POLLIN, 0, "and after it was reaped");
    close(fd).unwrap();
}

fn reading_a_pidfd_is_einval() {
    let fd = pidfd_open(unsafe { getpid() }, 0).unwrap();
    let mut b = [0u8; 8];
    assert_errno!(read(fd, &mut b), EINVAL);
    assert_errno!(write(fd, b"x"), EINVAL);
    close(fd).unwrap();
}

fn waitid_p_pidfd_reaps_the_child_it_names() {
    let (pid, w) = waiting_child(7);
    let fd = pidfd_open(pid, 0).unwrap();
    close(w).unwrap();
    let mut info: siginfo_t = unsafe { std::mem::zeroed() };
    sys!(SYS_waitid, P_PIDFD, fd, &mut info as *mut siginfo_t, WEXITED, 0).unwrap();
    assert_eq!(unsafe { (info.si_pid(), info.si_status()) }, (pid, 7));
    assert_errno!(sys!(SYS_wait4, pid, 0, WNOHANG, 0), ECHILD);
    close(fd).unwrap();
}

fn waitid_p_pidfd_of_a_descriptor_that_is_no_pidfd_is_ebadf() {
    let (r, w) = pipe(0).unwrap();
    let mut info: siginfo_t = unsafe { std::mem::zeroed() };
    assert_errno!(sys!(SYS_waitid, P_PIDFD, r, &mut info as *mut siginfo_t, WEXITED, 0), EBADF);
    assert_errno!(sys!(SYS_waitid, P_PIDFD, 999, &mut info as *mut siginfo_t, WEXITED, 0), EBADF);
    close(r).unwrap();
    close(w).unwrap();
}

fn waitid_on_a_nonblocking_pidfd_of_a_running_child_is_eagain() {
    let (pid, w) = waiting_child(0);
    let fd = pidfd_open(pid, O_NONBLOCK as u32).unwrap();
    let mut info: siginfo_t = unsafe { std::mem::zeroed() };
    assert_errno!(sys!(SYS_waitid, P_PIDFD, fd, &mut info as *mut siginfo_t, WEXITED, 0), EAGAIN);
    close(w).unwrap();
    assert_eq!(wait_child(pid), Exit::Code(0));
    close(fd).unwrap();
}

fn proc_fd_shows_a_pidfd_as_an_anonymous_inode() {
    let fd = pidfd_open(unsafe { getpid() }, 0).unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    assert_eq!(link.to_str(), Some("anon_inode:[pidfd]"));
    close(fd).unwrap();
}
