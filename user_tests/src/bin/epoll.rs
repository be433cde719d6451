//! epoll: level- and edge-triggered and one-shot items, waits woken by another process's
//! write, timeouts, items that go with their file's last descriptor, nesting, and the
//! errnos of epoll_create1, epoll_ctl and epoll_wait; and poll and select woken by a write.

use libc::*;
use user_tests::{
    assert_errno, close, fork_child, monotonic_ns, pipe, run_tests, sleep_ms, sys, tests, wait_child, write, Errno,
    Exit, TempDir, BAD_PTR,
};

fn main() {
    run_tests(
        "epoll",
        tests![
            epoll_create1_with_unknown_flags_is_einval,
            epoll_create_with_a_size_below_one_is_einval,
            a_level_triggered_pipe_is_reported_while_it_has_data,
            an_edge_triggered_pipe_is_reported_once_per_write,
            a_one_shot_item_is_disarmed_until_modified,
            epoll_wait_sleeps_until_another_process_writes,
            epoll_wait_times_out_with_nothing_ready,
            hangup_and_error_are_reported_without_being_asked_for,
            an_item_goes_with_the_last_descriptor_of_its_file,
            an_epoll_file_in_an_epoll_file_reports_its_readiness,
            epoll_files_watching_each_other_is_eloop,
            an_eventfd_is_reported_when_its_count_is_not_zero,
            epoll_ctl_errnos,
            epoll_wait_errnos,
            poll_sleeps_until_another_process_writes,
            select_sleeps_until_another_process_writes,
        ],
    );
}

/// `struct epoll_event` (packed on x86_64).
#[repr(C, packed)]
#[derive(Clone, Copy, Default)]
struct Event {
    events: u32,
    data: u64,
}

fn create() -> i32 {
    sys!(SYS_epoll_create1, EPOLL_CLOEXEC).unwrap() as i32
}

fn ctl(ep: i32, op: i32, fd: i32, events: u32, data: u64) -> Result<i64, Errno> {
    let e = Event { events, data };
    sys!(SYS_epoll_ctl, ep, op, fd, &e as *const Event)
}

/// epoll_wait with room for 8 events: (events, data) of each.
fn wait(ep: i32, timeout_ms: i32) -> Vec<(u32, u64)> {
    let mut evs = [Event::default(); 8];
    let n = sys!(SYS_epoll_wait, ep, evs.as_mut_ptr(), 8, timeout_ms).unwrap() as usize;
    evs[..n].iter().map(|e| (e.events, e.data)).collect()
}

fn drain(fd: i32) {
    let mut buf = [0u8; 64];
    user_tests::read(fd, &mut buf).unwrap();
}

const IN: u32 = EPOLLIN as u32;

fn epoll_create1_with_unknown_flags_is_einval() {
    assert_errno!(sys!(SYS_epoll_create1, 1), EINVAL);
    assert_errno!(sys!(SYS_epoll_create1, EPOLL_CLOEXEC | 0x10), EINVAL);
}

fn epoll_create_with_a_size_below_one_is_einval() {
    assert_errno!(sys!(SYS_epoll_create, 0), EINVAL);
    assert_errno!(sys!(SYS_epoll_create, -1), EINVAL);
    let ep = sys!(SYS_epoll_create, 1).unwrap() as i32;
    close(ep).unwrap();
}

fn a_level_triggered_pipe_is_reported_while_it_has_data() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    ctl(ep, EPOLL_CTL_ADD, r, IN, 7).unwrap();
    assert_eq!(wait(ep, 0), []);
    write(w, b"x").unwrap();
    assert_eq!(wait(ep, 0), [(IN, 7)]);
    assert_eq!(wait(ep, 0), [(IN, 7)], "still readable, reported again");
    drain(r);
    assert_eq!(wait(ep, 0), []);
    for fd in [ep, r, w] {
        close(fd).unwrap();
    }
}

fn an_edge_triggered_pipe_is_reported_once_per_write() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    ctl(ep, EPOLL_CTL_ADD, r, IN | EPOLLET as u32, 1).unwrap();
    write(w, b"x").unwrap();
    assert_eq!(wait(ep, 0), [(IN, 1)]);
    assert_eq!(wait(ep, 0), [], "no new event: not reported again");
    write(w, b"y").unwrap();
    assert_eq!(wait(ep, 0), [(IN, 1)], "a second write is a new event");
    for fd in [ep, r, w] {
        close(fd).unwrap();
    }
}

fn a_one_shot_item_is_disarmed_until_modified() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    ctl(ep, EPOLL_CTL_ADD, r, IN | EPOLLONESHOT as u32, 2).unwrap();
    write(w, b"x").unwrap();
    assert_eq!(wait(ep, 0), [(IN, 2)]);
    write(w, b"y").unwrap();
    assert_eq!(wait(ep, 0), []);
    ctl(ep, EPOLL_CTL_MOD, r, IN | EPOLLONESHOT as u32, 3).unwrap();
    assert_eq!(wait(ep, 0), [(IN, 3)]);
    for fd in [ep, r, w] {
        close(fd).unwrap();
    }
}

/// A child that sleeps `ms`, then writes a byte to `w`.
fn write_later(w: i32, ms: u64) -> i32 {
    fork_child(move || {
        sleep_ms(ms);
        write(w, b"!").unwrap();
        0
    })
}

fn epoll_wait_sleeps_until_another_process_writes() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    ctl(ep, EPOLL_CTL_ADD, r, IN, 9).unwrap();
    let child = write_later(w, 50);
    let start = monotonic_ns();
    assert_eq!(wait(ep, 5000), [(IN, 9)]);
    assert!(monotonic_ns() - start >= 40_000_000, "returned before the write");
    assert_eq!(wait_child(child), Exit::Code(0));
    for fd in [ep, r, w] {
        close(fd).unwrap();
    }
}

fn epoll_wait_times_out_with_nothing_ready() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    ctl(ep, EPOLL_CTL_ADD, r, IN, 0).unwrap();
    let start = monotonic_ns();
    assert_eq!(wait(ep, 30), []);
    assert!(monotonic_ns() - start >= 30_000_000);
    for fd in [ep, r, w] {
        close(fd).unwrap();
    }
}

fn hangup_and_error_are_reported_without_being_asked_for() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    ctl(ep, EPOLL_CTL_ADD, r, 0, 4).unwrap();
    ctl(ep, EPOLL_CTL_ADD, w, 0, 5).unwrap();
    assert_eq!(wait(ep, 0), []);
    close(r).unwrap();
    assert_eq!(wait(ep, 0), [(EPOLLERR as u32, 5)], "the write end of a pipe without readers");
    close(w).unwrap();
    let (r, w) = pipe(0).unwrap();
    ctl(ep, EPOLL_CTL_ADD, r, 0, 6).unwrap();
    close(w).unwrap();
    assert_eq!(wait(ep, 0), [(EPOLLHUP as u32, 6)]);
    close(r).unwrap();
    close(ep).unwrap();
}

fn an_item_goes_with_the_last_descriptor_of_its_file() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    let dup = sys!(SYS_dup, r).unwrap() as i32;
    ctl(ep, EPOLL_CTL_ADD, r, IN, 8).unwrap();
    write(w, b"x").unwrap();
    close(r).unwrap();
    assert_eq!(wait(ep, 0), [(IN, 8)], "the file lives on through its duplicate");
    assert_errno!(ctl(ep, EPOLL_CTL_DEL, r, 0, 0), EBADF);
    close(dup).unwrap();
    assert_eq!(wait(ep, 0), [], "gone with the last descriptor");
    close(w).unwrap();
    close(ep).unwrap();
}

fn an_epoll_file_in_an_epoll_file_reports_its_readiness() {
    let (outer, inner) = (create(), create());
    let (r, w) = pipe(0).unwrap();
    ctl(inner, EPOLL_CTL_ADD, r, IN, 1).unwrap();
    ctl(outer, EPOLL_CTL_ADD, inner, IN, 2).unwrap();
    assert_eq!(wait(outer, 0), []);
    let child = write_later(w, 30);
    assert_eq!(wait(outer, 5000), [(IN, 2)]);
    assert_eq!(wait(inner, 0), [(IN, 1)]);
    assert_eq!(wait_child(child), Exit::Code(0));
    for fd in [outer, inner, r, w] {
        close(fd).unwrap();
    }
}

fn epoll_files_watching_each_other_is_eloop() {
    let (a, b) = (create(), create());
    ctl(a, EPOLL_CTL_ADD, b, IN, 0).unwrap();
    assert_errno!(ctl(b, EPOLL_CTL_ADD, a, IN, 0), ELOOP);
    for fd in [a, b] {
        close(fd).unwrap();
    }
}

fn an_eventfd_is_reported_when_its_count_is_not_zero() {
    let ep = create();
    let efd = sys!(SYS_eventfd2, 0, 0).unwrap() as i32;
    ctl(ep, EPOLL_CTL_ADD, efd, IN | EPOLLOUT as u32, 3).unwrap();
    assert_eq!(wait(ep, 0), [(EPOLLOUT as u32, 3)]);
    write(efd, &1u64.to_ne_bytes()).unwrap();
    assert_eq!(wait(ep, 0), [(IN | EPOLLOUT as u32, 3)]);
    for fd in [ep, efd] {
        close(fd).unwrap();
    }
}

fn epoll_ctl_errnos() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    let dir = TempDir::new();
    let file = user_tests::open(&dir.file("f", b""), O_RDONLY, 0).unwrap();
    ctl(ep, EPOLL_CTL_ADD, r, IN, 0).unwrap();
    assert_errno!(ctl(ep, EPOLL_CTL_ADD, r, IN, 0), EEXIST);
    assert_errno!(ctl(ep, EPOLL_CTL_MOD, w, IN, 0), ENOENT);
    assert_errno!(ctl(ep, EPOLL_CTL_DEL, w, 0, 0), ENOENT);
    assert_errno!(ctl(ep, EPOLL_CTL_ADD, file, IN, 0), EPERM);
    assert_errno!(ctl(ep, EPOLL_CTL_ADD, ep, IN, 0), EINVAL);
    assert_errno!(ctl(r, EPOLL_CTL_ADD, w, IN, 0), EINVAL);
    assert_errno!(ctl(ep, 7, w, IN, 0), EINVAL);
    assert_errno!(ctl(ep, EPOLL_CTL_ADD, 999, IN, 0), EBADF);
    assert_errno!(ctl(999, EPOLL_CTL_ADD, w, IN, 0), EBADF);
    assert_errno!(sys!(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, w, BAD_PTR), EFAULT);
    assert_errno!(ctl(ep, EPOLL_CTL_ADD, w, IN | EPOLLEXCLUSIVE as u32 | EPOLLONESHOT as u32, 0), EINVAL);
    ctl(ep, EPOLL_CTL_ADD, w, EPOLLOUT as u32 | EPOLLEXCLUSIVE as u32, 0).unwrap();
    assert_errno!(ctl(ep, EPOLL_CTL_MOD, w, EPOLLOUT as u32, 0), EINVAL);
    ctl(ep, EPOLL_CTL_DEL, r, 0, 0).unwrap();
    for fd in [ep, r, w, file] {
        close(fd).unwrap();
    }
}

fn epoll_wait_errnos() {
    let ep = create();
    let (r, w) = pipe(0).unwrap();
    let mut evs = [Event::default(); 2];
    assert_errno!(sys!(SYS_epoll_wait, ep, evs.as_mut_ptr(), 0, 0), EINVAL);
    assert_errno!(sys!(SYS_epoll_wait, ep, evs.as_mut_ptr(), -1, 0), EINVAL);
    assert_errno!(sys!(SYS_epoll_wait, r, evs.as_mut_ptr(), 2, 0), EINVAL);
    assert_errno!(sys!(SYS_epoll_wait, 999, evs.as_mut_ptr(), 2, 0), EBADF);
    assert_errno!(sys!(SYS_epoll_wait, ep, BAD_PTR, 2, 0), EFAULT);
    for fd in [ep, r, w] {
        close(fd).unwrap();
    }
}

fn poll_sleeps_until_another_process_writes() {
    let (r, w) = pipe(0).unwrap();
    let child = write_later(w, 50);
    let mut p = pollfd { fd: r, events: POLLIN, revents: 0 };
    let start = monotonic_ns();
    assert_eq!(sys!(SYS_poll, &mut p as *mut pollfd, 1, 5000), Ok(1));
    assert!(monotonic_ns() - start >= 40_000_000);
    assert_eq!(p.revents, POLLIN);
    assert_eq!(wait_child(child), Exit::Code(0));
    close(r).unwrap();
    close(w).unwrap();
}

fn select_sleeps_until_another_process_writes() {
    let (r, w) = pipe(0).unwrap();
    let child = write_later(w, 50);
    let mut set: fd_set = unsafe { std::mem::zeroed() };
    unsafe { FD_SET(r, &mut set) };
    let mut tv = timeval { tv_sec: 5, tv_usec: 0 };
    assert_eq!(sys!(SYS_select, r + 1, &mut set as *mut fd_set, 0, 0, &mut tv as *mut timeval), Ok(1));
    assert!(unsafe { FD_ISSET(r, &set) });
    assert_eq!(wait_child(child), Exit::Code(0));
    close(r).unwrap();
    close(w).unwrap();
}
