//! The socket calls' argument checks that hold whatever families a kernel builds:
//! `socket`'s flags, family and type ranges, and the calls on a descriptor that is not a
//! socket (ENOTSOCK) or not open (EBADF).

use libc::*;
use user_tests::{assert_errno, close, pipe, run_tests, sys, tests, Errno};

fn main() {
    run_tests(
        "socket",
        tests![
            socket_of_a_family_linux_does_not_number_is_eafnosupport,
            socket_with_unknown_type_flags_is_einval_before_the_family_is_checked,
            socket_type_past_sock_max_is_einval,
            socketpair_with_unknown_type_flags_is_einval,
            socket_calls_on_a_pipe_are_enotsock,
            socket_calls_on_a_closed_descriptor_are_ebadf,
            accept4_checks_the_descriptor_then_the_flags_then_the_socket,
        ],
    );
}

fn socket_of_a_family_linux_does_not_number_is_eafnosupport() {
    for family in [-1, 46, 1000] {
        assert_errno!(sys!(SYS_socket, family, SOCK_STREAM, 0), EAFNOSUPPORT);
    }
}

fn socket_with_unknown_type_flags_is_einval_before_the_family_is_checked() {
    assert_errno!(sys!(SYS_socket, AF_UNIX, SOCK_STREAM | 0x100, 0), EINVAL);
    assert_errno!(sys!(SYS_socket, 1000, SOCK_STREAM | 0x100, 0), EINVAL);
}

fn socket_type_past_sock_max_is_einval() {
    assert_errno!(sys!(SYS_socket, AF_UNIX, 11, 0), EINVAL);
    assert_errno!(sys!(SYS_socket, AF_UNIX, 15 | SOCK_CLOEXEC, 0), EINVAL);
}

fn socketpair_with_unknown_type_flags_is_einval() {
    let mut sv = [-1i32; 2];
    assert_errno!(sys!(SYS_socketpair, AF_UNIX, SOCK_STREAM | 0x100, 0, sv.as_mut_ptr()), EINVAL);
    assert_eq!(sv, [-1, -1]);
}

/// Each call that takes a socket descriptor first, with harmless other arguments.
fn on_descriptor(fd: i32) -> Vec<(&'static str, Result<i64, Errno>)> {
    let mut addr = [0u8; 128];
    let mut len: u32 = addr.len() as u32;
    let mut byte = [0u8; 1];
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    let lp = &mut len as *mut u32;
    vec![
        ("bind", sys!(SYS_bind, fd, addr.as_ptr(), 2)),
        ("connect", sys!(SYS_connect, fd, addr.as_ptr(), 2)),
        ("listen", sys!(SYS_listen, fd, 1)),
        ("accept", sys!(SYS_accept, fd, 0, 0)),
        ("accept4", sys!(SYS_accept4, fd, 0, 0, 0)),
        ("getsockname", sys!(SYS_getsockname, fd, addr.as_mut_ptr(), lp)),
        ("getpeername", sys!(SYS_getpeername, fd, addr.as_mut_ptr(), lp)),
        ("sendto", sys!(SYS_sendto, fd, byte.as_ptr(), 1, 0, 0, 0)),
        ("recvfrom", sys!(SYS_recvfrom, fd, byte.as_mut_ptr(), 1, MSG_DONTWAIT, 0, 0)),
        ("sendmsg", sys!(SYS_sendmsg, fd, &msg as *const msghdr, 0)),
        ("recvmsg", sys!(SYS_recvmsg, fd, &mut msg as *mut msghdr, MSG_DONTWAIT)),
        ("shutdown", sys!(SYS_shutdown, fd, SHUT_RDWR)),
        ("setsockopt", sys!(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVBUF, addr.as_ptr(), 4)),
        ("getsockopt", sys!(SYS_getsockopt, fd, SOL_SOCKET, SO_RCVBUF, addr.as_mut_ptr(), lp)),
        ("sendmmsg", sys!(SYS_sendmmsg, fd, 0, 0, 0)),
        ("recvmmsg", sys!(SYS_recvmmsg, fd, 0, 0, MSG_DONTWAIT, 0)),
    ]
}

fn socket_calls_on_a_pipe_are_enotsock() {
    let (r, w) = pipe(0).unwrap();
    for (call, result) in on_descriptor(r) {
        assert_eq!(result, Err(Errno(ENOTSOCK)), "{call} on a pipe");
    }
    close(r).unwrap();
    close(w).unwrap();
}

fn socket_calls_on_a_closed_descriptor_are_ebadf() {
    for (call, result) in on_descriptor(999) {
        assert_eq!(result, Err(Errno(EBADF)), "{call} on a closed descriptor");
    }
}

fn accept4_checks_the_descriptor_then_the_flags_then_the_socket() {
    assert_errno!(sys!(SYS_accept4, 999, 0, 0, 0x100), EBADF);
    let (r, w) = pipe(0).unwrap();
    assert_errno!(sys!(SYS_accept4, r, 0, 0, 0x100), EINVAL);
    assert_errno!(sys!(SYS_accept4, r, 0, 0, SOCK_CLOEXEC), ENOTSOCK);
    close(r).unwrap();
    close(w).unwrap();
}
