//! The tty layer through pseudo-terminals, as Linux's drivers/tty does it: /dev/ptmx and
//! /dev/pts/N (pty.c, fs/devpts: numbering, the slave lock, the device numbers), termios
//! and window-size ioctls (tty_io.c, tty_ioctl.c), the n_tty line discipline (n_tty.c:
//! canonical and raw reads, VMIN/VTIME, echo, ICRNL/ONLCR, ERASE/KILL/EOF, the signal
//! characters, STOP/START, flushing, poll), controlling terminals, sessions and job control
//! (tty_jobctrl.c: TIOCSCTTY, TIOCNOTTY, TIOCSPGRP, TIOCGSID, /dev/tty, SIGTTIN/SIGTTOU,
//! orphaned groups), hangups (the master's close, the controlling process's exit), and
//! setpgid's and setsid's rules (kernel/sys.c).
//!
//! Every test that needs a session or a controlling terminal runs in a child that starts a
//! session of its own, so the test process's own terminal (if any) is never touched; the
//! test process opens ptys only with O_NOCTTY. Children have an alarm as a watchdog, and
//! every wait for another process is bounded.

use libc::*;
use std::cell::Cell;
use user_tests::{
    assert_errno, child_args, close, exe_path, execve, fork_child, monotonic_ns, open, pipe, read, run_in_child,
    run_tests, set_handler, sigbit, sigprocmask, sys, tests, wait_child, wait_until, write, Errno, Exit, BAD_PTR,
    CHILD_MARKER,
};

fn main() {
    if let Some(args) = child_args() {
        std::process::exit(child_main(&args));
    }
    run_tests(
        "tty",
        tests![
            // /dev/ptmx and /dev/pts
            the_slave_of_pty_n_is_dev_pts_n_with_major_136_and_minor_n,
            the_master_is_the_ptmx_device,
            each_ptmx_open_gives_a_new_pty_number,
            opening_ptmx_with_no_free_descriptor_is_emfile_and_leaves_no_pty,
            a_new_pty_is_locked_and_opening_its_slave_is_eio,
            tiocsptlck_unlocks_and_relocks_the_slave,
            tiocgptn_on_the_slave_is_enotty,
            closing_the_master_removes_the_slave_node,
            input_written_before_the_slave_opens_waits_for_it,
            a_master_write_after_the_slave_closes_succeeds,
            // termios
            the_slave_starts_with_the_standard_termios_without_hupcl,
            tcgets_on_the_master_reports_the_slaves_termios,
            tcsets_on_the_master_sets_the_slaves_termios,
            tcsets_then_tcgets_gives_back_the_same_termios,
            tcgets_and_tcsets_with_a_bad_pointer_are_efault,
            tcgets_on_a_pipe_or_dev_null_is_enotty,
            // canonical mode
            a_canonical_read_blocks_until_a_newline_arrives,
            icrnl_turns_a_carriage_return_into_a_newline,
            a_canonical_read_returns_one_line_at_a_time,
            a_short_canonical_read_leaves_the_rest_of_the_line,
            eof_on_an_empty_line_reads_as_zero_bytes,
            eof_after_text_ends_the_line_without_a_newline,
            erase_removes_a_character_and_echoes_backspace_space_backspace,
            the_kill_character_discards_the_line,
            input_is_echoed_with_its_newline_as_crlf,
            with_echo_off_input_is_not_echoed,
            onlcr_turns_a_slave_newline_into_crlf,
            without_opost_a_slave_newline_is_written_as_is,
            // raw mode
            a_raw_read_returns_bytes_without_waiting_for_a_newline,
            a_vmin_0_vtime_0_read_of_an_empty_slave_returns_0_at_once,
            a_vmin_0_vtime_1_read_of_an_empty_slave_returns_0_after_the_timeout,
            a_nonblocking_read_of_an_empty_slave_is_eagain,
            fionread_counts_the_raw_bytes_ready,
            fionread_in_canonical_mode_counts_only_complete_lines,
            // signal characters
            ctrl_c_is_echoed_as_caret_c,
            the_interrupt_character_discards_unread_input,
            with_isig_off_ctrl_c_is_an_ordinary_byte,
            ctrl_c_sends_sigint_to_the_foreground_group,
            ctrl_backslash_sends_sigquit_to_the_foreground_group,
            ctrl_z_stops_the_foreground_group_with_sigtstp,
            // controlling terminal, foreground group, session
            tiocsctty_makes_the_callers_group_the_foreground_group,
            tiocgsid_gives_the_session_of_the_controlling_terminal,
            the_master_reports_the_slaves_foreground_group_and_session,
            a_pty_that_is_no_ones_ctty_has_group_0_and_no_session_on_the_master,
            tiocgpgrp_and_tiocgsid_on_a_tty_that_is_not_the_callers_ctty_are_enotty,
            tiocspgrp_moves_the_foreground_group,
            tiocspgrp_on_a_tty_that_is_not_the_callers_ctty_is_enotty,
            tiocspgrp_to_a_group_of_another_session_is_eperm,
            tiocspgrp_to_a_nonexistent_group_is_esrch,
            tiocspgrp_to_a_negative_group_is_einval,
            tiocsctty_by_a_process_that_is_not_a_session_leader_is_eperm,
            tiocsctty_when_the_caller_has_another_ctty_is_eperm,
            tiocsctty_of_the_callers_own_ctty_succeeds,
            tiocsctty_0_of_another_sessions_ctty_is_eperm,
            tiocsctty_1_with_cap_sys_admin_steals_another_sessions_ctty,
            opening_dev_tty_without_a_ctty_is_enxio,
            dev_tty_is_the_controlling_terminal,
            opening_the_slave_as_a_session_leader_without_a_ctty_makes_it_the_ctty,
            opening_the_slave_with_o_noctty_does_not_make_it_the_ctty,
            opening_the_slave_write_only_does_not_make_it_the_ctty,
            opening_ptmx_as_a_session_leader_does_not_make_a_ctty,
            setsid_drops_the_controlling_terminal,
            tiocnotty_on_a_tty_that_is_not_the_callers_ctty_is_enotty,
            tiocnotty_drops_the_callers_ctty,
            tiocnotty_by_the_session_leader_sends_sighup_and_sigcont_to_the_foreground_group,
            // job control
            a_background_read_stops_the_group_with_sigttin,
            a_background_read_with_sigttin_ignored_is_eio,
            a_background_read_with_sigttin_blocked_is_eio,
            a_background_read_in_an_orphaned_group_is_eio,
            a_background_write_with_tostop_stops_the_group_with_sigttou,
            a_background_write_without_tostop_succeeds,
            a_background_tcsetattr_stops_the_group_with_sigttou,
            a_background_tcsetattr_with_sigttou_ignored_succeeds,
            a_background_tcsetattr_with_sigttou_blocked_succeeds,
            a_background_tcgetattr_succeeds,
            a_background_tcsetattr_in_an_orphaned_group_is_eio,
            a_background_tiocspgrp_in_an_orphaned_group_is_enotty,
            a_background_tiocspgrp_with_sigttou_ignored_succeeds,
            // hangup
            after_the_master_closes_a_slave_read_returns_eof,
            after_the_master_closes_a_slave_write_is_eio,
            after_the_master_closes_slave_ioctls_are_eio,
            after_the_master_closes_poll_on_the_slave_reports_everything,
            closing_the_master_sends_sighup_and_sigcont_to_the_controlling_process,
            closing_the_master_signals_no_one_else_in_the_session,
            closing_the_master_takes_the_ctty_from_the_session,
            after_the_slave_closes_the_master_reads_what_is_left_then_eio,
            after_the_slave_closes_poll_on_the_master_reports_pollhup,
            reopening_the_slave_clears_the_masters_hangup,
            when_the_controlling_process_exits_the_foreground_group_gets_sighup_but_not_sigcont,
            when_the_controlling_process_exits_the_session_loses_its_ctty,
            when_the_controlling_process_of_a_pty_exits_the_slave_is_not_hung_up,
            // window size
            the_window_size_starts_at_zero,
            the_window_size_is_shared_by_both_ends,
            tiocgwinsz_with_a_bad_pointer_is_efault,
            tiocswinsz_with_a_new_size_sends_sigwinch_to_the_foreground_group,
            tiocswinsz_with_the_same_size_sends_no_sigwinch,
            // poll
            poll_on_the_slave_reports_pollin_only_for_a_complete_line,
            poll_on_the_master_reports_pollin_once_the_slave_wrote,
            both_ends_of_an_idle_pty_poll_writable,
            // names
            ttyname_of_the_slave_is_dev_pts_n,
            fstat_of_the_slave_matches_stat_of_dev_pts_n,
            isatty_is_true_for_both_ends_and_false_for_a_pipe,
            // flushing and flow control
            tcflsh_tciflush_discards_unread_input,
            the_stop_character_stops_slave_output_until_the_start_character,
            tcxonc_tcooff_stops_slave_output_until_tcoon,
            // setpgid and setsid
            setpgid_of_a_child_in_another_session_is_eperm,
            setpgid_into_a_group_of_another_session_is_eperm,
            setpgid_of_a_session_leader_is_eperm,
            setpgid_to_a_nonexistent_group_is_eperm,
            setpgid_to_a_negative_group_is_einval,
            setpgid_of_a_child_that_has_execed_is_eacces,
            setpgid_of_a_process_that_is_not_a_child_is_esrch,
            setsid_by_a_group_leader_is_eperm,
        ],
    );
}

/// Child mode: this binary re-executed by a test with `CHILD_MARKER WHAT ARGS...`.
fn child_main(args: &[String]) -> i32 {
    match args[0].as_str() {
        // wait-fd N: waits (5 s at most) until fd N is readable or closed, then exits 0.
        "wait-fd" => {
            let fd: i32 = args[1].parse().unwrap();
            poll1(fd, POLLIN, 5000);
            0
        }
        _ => 100,
    }
}

// ---------------------------------------------------------------------------------------
// Helpers: ioctls, termios, ptys
// ---------------------------------------------------------------------------------------

/// How long a test waits for data or a message from another process before it fails.
const WAIT_MS: i32 = 2000;

/// Linux's INIT_C_CC (include/asm-generic/termios.h): ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1,
/// VSWTC 0, ^Q ^S ^Z, VEOL 0, ^R ^O ^W ^V, VEOL2 0; the kernel's c_cc has 19 slots.
const INIT_C_CC: [u8; 19] = [3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0];

/// The kernel's `struct termios` on x86_64 (what TCGETS and TCSETS copy; libc's is longer).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Termios {
    iflag: u32,
    oflag: u32,
    cflag: u32,
    lflag: u32,
    line: u8,
    cc: [u8; 19],
}

fn ioctl(fd: i32, cmd: Ioctl, arg: usize) -> Result<i64, Errno> {
    sys!(SYS_ioctl, fd, cmd as u32, arg)
}

/// An ioctl that writes an int: the int.
fn get_int(fd: i32, cmd: Ioctl) -> Result<i32, Errno> {
    let mut v: i32 = -1;
    ioctl(fd, cmd, &mut v as *mut i32 as usize)?;
    Ok(v)
}

/// An ioctl that reads an int through a pointer.
fn set_int(fd: i32, cmd: Ioctl, v: i32) -> Result<i64, Errno> {
    ioctl(fd, cmd, &v as *const i32 as usize)
}

fn tcgets(fd: i32) -> Result<Termios, Errno> {
    let mut t = Termios { iflag: 0, oflag: 0, cflag: 0, lflag: 0, line: 0, cc: [0; 19] };
    ioctl(fd, TCGETS, &mut t as *mut Termios as usize)?;
    Ok(t)
}

fn tcsets(fd: i32, t: &Termios) -> Result<i64, Errno> {
    ioctl(fd, TCSETS, t as *const Termios as usize)
}

/// Changes `fd`'s termios with `f`.
fn update_termios(fd: i32, f: impl FnOnce(&mut Termios)) {
    let mut t = tcgets(fd).expect("TCGETS");
    f(&mut t);
    tcsets(fd, &t).expect("TCSETS");
}

/// cfmakeraw's settings, with `vmin` and `vtime`.
fn make_raw(fd: i32, vmin: u8, vtime: u8) {
    update_termios(fd, |t| {
        t.iflag &= !(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
        t.oflag &= !OPOST;
        t.lflag &= !(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
        t.cflag &= !(CSIZE | PARENB);
        t.cflag |= CS8;
        t.cc[VMIN] = vmin;
        t.cc[VTIME] = vtime;
    });
}

fn winsize(fd: i32) -> Result<(u16, u16, u16, u16), Errno> {
    let mut w = libc::winsize { ws_row: 9, ws_col: 9, ws_xpixel: 9, ws_ypixel: 9 };
    ioctl(fd, TIOCGWINSZ, &mut w as *mut libc::winsize as usize)?;
    Ok((w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel))
}

fn set_winsize(fd: i32, (ws_row, ws_col, ws_xpixel, ws_ypixel): (u16, u16, u16, u16)) -> Result<i64, Errno> {
    let w = libc::winsize { ws_row, ws_col, ws_xpixel, ws_ypixel };
    ioctl(fd, TIOCSWINSZ, &w as *const libc::winsize as usize)
}

fn slave_path(n: i32) -> String {
    format!("/dev/pts/{n}")
}

/// A new pty's master, still locked.
fn open_master() -> i32 {
    open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0).expect("open /dev/ptmx")
}

fn ptn(master: i32) -> i32 {
    get_int(master, TIOCGPTN).expect("TIOCGPTN")
}

fn unlock(master: i32) {
    set_int(master, TIOCSPTLCK, 0).expect("TIOCSPTLCK 0");
}

/// A pty with its slave open (O_NOCTTY); both closed on drop unless closed before.
struct Pty {
    master: Cell<i32>,
    slave: Cell<i32>,
    n: i32,
}

impl Pty {
    fn open() -> Pty {
        let m = open_master();
        let n = ptn(m);
        unlock(m);
        let s = open(&slave_path(n), O_RDWR | O_NOCTTY | O_CLOEXEC, 0).expect("open the slave");
        Pty { master: Cell::new(m), slave: Cell::new(s), n }
    }

    fn m(&self) -> i32 {
        self.master.get()
    }

    fn s(&self) -> i32 {
        self.slave.get()
    }

    fn path(&self) -> String {
        slave_path(self.n)
    }

    fn close_master(&self) {
        close(self.master.replace(-1)).expect("close the master");
    }

    fn close_slave(&self) {
        close(self.slave.replace(-1)).expect("close the slave");
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        for fd in [self.master.get(), self.slave.get()] {
            if fd >= 0 {
                let _ = close(fd);
            }
        }
    }
}

fn set_nonblock(fd: i32) {
    let fl = sys!(SYS_fcntl, fd, F_GETFL).unwrap();
    sys!(SYS_fcntl, fd, F_SETFL, fl | O_NONBLOCK as i64).unwrap();
}

/// poll on one fd: its revents, 0 if it timed out.
fn poll1(fd: i32, events: i16, ms: i32) -> i16 {
    let mut p = pollfd { fd, events, revents: 0 };
    loop {
        match sys!(SYS_poll, &mut p as *mut pollfd, 1, ms) {
            Ok(0) => return 0,
            Ok(_) => return p.revents,
            Err(Errno(EINTR)) => {}
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// Reads `fd` until `want` bytes came or WAIT_MS passed (or it reports end of file or an
/// error): what came.
fn read_for(fd: i32, want: usize) -> Vec<u8> {
    let end = monotonic_ns() + WAIT_MS as u64 * 1_000_000;
    let mut got = Vec::new();
    while got.len() < want {
        let now = monotonic_ns();
        if now >= end {
            break;
        }
        let ms = ((end - now) / 1_000_000) as i32 + 1;
        if poll1(fd, POLLIN, ms) & POLLIN == 0 {
            break;
        }
        let mut buf = [0u8; 256];
        match read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno(EAGAIN)) | Err(Errno(EINTR)) => {}
            Err(_) => break,
        }
    }
    got
}

/// What `fd` has to read right now (poll with no timeout).
fn read_now(fd: i32) -> Vec<u8> {
    let mut got = Vec::new();
    while poll1(fd, POLLIN, 0) & POLLIN != 0 {
        let mut buf = [0u8; 256];
        match read(fd, &mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// `fd` gives exactly `want` (within WAIT_MS), and nothing after it.
#[track_caller]
fn expect_read(fd: i32, want: &[u8]) {
    let mut got = read_for(fd, want.len());
    if got.len() == want.len() {
        got.extend(read_now(fd));
    }
    assert_eq!(show(&got), show(want));
}

/// One read of up to 256 bytes from `fd` once it is readable (WAIT_MS at most).
fn read_once(fd: i32) -> Result<Vec<u8>, Errno> {
    assert_ne!(poll1(fd, POLLIN, WAIT_MS), 0, "nothing to read within {WAIT_MS} ms");
    let mut buf = [0u8; 256];
    let n = read(fd, &mut buf)?;
    Ok(buf[..n].to_vec())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dev {
    Char(u32, u32),
    Other(u32),
}

fn dev(st: &libc::stat) -> Dev {
    let d = st.st_rdev;
    let major = (((d >> 8) & 0xfff) | ((d >> 32) & !0xfff)) as u32;
    let minor = ((d & 0xff) | ((d >> 12) & !0xff)) as u32;
    if st.st_mode & S_IFMT == S_IFCHR {
        Dev::Char(major, minor)
    } else {
        Dev::Other(st.st_mode & S_IFMT)
    }
}

fn stat(path: &str) -> Result<libc::stat, Errno> {
    let p = user_tests::cstr(path);
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(SYS_newfstatat, AT_FDCWD, p.as_ptr(), &mut st as *mut libc::stat, 0)?;
    Ok(st)
}

fn fstat(fd: i32) -> libc::stat {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(SYS_fstat, fd, &mut st as *mut libc::stat).expect("fstat");
    st
}

// ---------------------------------------------------------------------------------------
// Helpers: processes and signals
// ---------------------------------------------------------------------------------------

fn getpid() -> i32 {
    sys!(SYS_getpid).unwrap() as i32
}

fn getppid() -> i32 {
    sys!(SYS_getppid).unwrap() as i32
}

fn getpgrp() -> i32 {
    sys!(SYS_getpgid, 0).unwrap() as i32
}

fn setsid() -> Result<i64, Errno> {
    sys!(SYS_setsid)
}

fn setpgid(pid: i32, pgid: i32) -> Result<i64, Errno> {
    sys!(SYS_setpgid, pid, pgid)
}

fn kill(pid: i32, sig: i32) -> Result<i64, Errno> {
    sys!(SYS_kill, pid, sig)
}

/// A watchdog: SIGALRM (which ends the process) after `secs` seconds.
fn alarm(secs: u32) {
    sys!(SYS_alarm, secs).unwrap();
}

fn mask_of(sigs: &[i32]) -> u64 {
    sigs.iter().map(|&s| sigbit(s)).fold(0, |a, b| a | b)
}

fn block(sigs: &[i32]) {
    sigprocmask(SIG_BLOCK, mask_of(sigs)).unwrap();
}

fn pending() -> u64 {
    let mut set = 0u64;
    sys!(SYS_rt_sigpending, &mut set as *mut u64, 8).unwrap();
    set
}

/// Those of `sigs` that are pending (a list, for readable assertions).
fn pending_of(sigs: &[i32]) -> Vec<i32> {
    let p = pending();
    sigs.iter().copied().filter(|&s| p & sigbit(s) != 0).collect()
}

/// Takes blocked signal `sig` if it is pending or arrives within `ms`.
fn take_signal(sig: i32, ms: i64) -> bool {
    let mask = sigbit(sig);
    let ts = timespec { tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000 };
    sys!(SYS_rt_sigtimedwait, &mask as *const u64, 0, &ts as *const timespec, 8) == Ok(sig as i64)
}

fn set_action(sig: i32, action: usize) {
    set_handler(sig, action, 0, &[]).unwrap();
}

/// An empty signal mask and the default action for the signals the tty layer sends.
fn default_signals() {
    sigprocmask(SIG_SETMASK, 0).unwrap();
    for sig in [SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGWINCH, SIGALRM, SIGCHLD] {
        set_action(sig, SIG_DFL);
    }
}

/// A one-byte-message pipe between processes of a test.
struct Chan {
    r: i32,
    w: i32,
}

impl Chan {
    fn new() -> Chan {
        let (r, w) = pipe(O_CLOEXEC).unwrap();
        Chan { r, w }
    }

    fn send(&self, b: u8) {
        assert_eq!(write(self.w, &[b]), Ok(1), "send");
    }

    /// The next byte, or None if none came within WAIT_MS.
    fn recv(&self) -> Option<u8> {
        if poll1(self.r, POLLIN, WAIT_MS) & POLLIN == 0 {
            return None;
        }
        let mut b = [0u8];
        (read(self.r, &mut b) == Ok(1)).then_some(b[0])
    }
}

impl Drop for Chan {
    fn drop(&mut self) {
        let _ = close(self.r);
        let _ = close(self.w);
    }
}

/// A result as one byte: 0 for success, else the errno.
fn code<T>(r: Result<T, Errno>) -> u8 {
    match r {
        Ok(_) => 0,
        Err(e) => e.0 as u8,
    }
}

/// Forks a child that runs `f` and exits with its result; SIGALRM ends it after 4 s.
fn spawn(f: impl FnOnce() -> i32) -> i32 {
    fork_child(|| {
        alarm(4);
        f()
    })
}

/// As [`spawn`], but the child first moves into a new process group of its own (so, in a
/// session, a background group); both sides set the group, as shells do, so that it is in
/// place when this returns.
fn spawn_in_new_group(f: impl FnOnce() -> i32) -> i32 {
    let pid = fork_child(|| {
        setpgid(0, 0).expect("setpgid");
        alarm(4);
        f()
    });
    let _ = setpgid(pid, pid);
    pid
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Stopped(i32),
    Exited(Exit),
}

/// Waits for child `pid` to stop or end (wait4 with WUNTRACED).
fn wait_untraced(pid: i32) -> Ended {
    let mut status = 0;
    loop {
        match sys!(SYS_wait4, pid, &mut status as *mut i32, WUNTRACED, 0) {
            Ok(_) if WIFSTOPPED(status) => return Ended::Stopped(WSTOPSIG(status)),
            Ok(_) => return Ended::Exited(Exit::from_status(status)),
            Err(Errno(EINTR)) => {}
            Err(e) => panic!("wait4({pid}): {e}"),
        }
    }
}

fn kill_and_reap(pid: i32) {
    let _ = kill(pid, SIGKILL);
    wait_child(pid);
}

/// A process id no process has: a child's, once reaped.
fn dead_pid() -> i32 {
    let pid = fork_child(|| 0);
    wait_child(pid);
    pid
}

/// Runs `f` in a child that leads a new session whose controlling terminal is a new pty's
/// slave (acquired with TIOCSCTTY), with default signal actions and an empty mask; it has
/// 8 s to finish (SIGALRM).
fn in_session(f: impl FnOnce(&Pty)) {
    run_in_child(|| {
        alarm(8);
        default_signals();
        setsid().expect("setsid");
        let pty = Pty::open();
        let _quiet = IgnoreHangup; // dropped before `pty`, whose close would kill this leader
        ioctl(pty.s(), TIOCSCTTY, 0).expect("TIOCSCTTY");
        f(&pty);
    });
}

/// On drop, ignores SIGHUP: a session leader that closes its terminal's master (as a
/// `Pty` going out of scope does) gets SIGHUP from the hangup.
struct IgnoreHangup;

impl Drop for IgnoreHangup {
    fn drop(&mut self) {
        set_action(SIGHUP, SIG_IGN);
    }
}

/// Runs `f`, whose blocking read would hang if the kernel got it wrong, in a child that
/// SIGALRM ends after 4 s.
fn bounded(f: impl FnOnce()) {
    run_in_child(|| {
        alarm(4);
        f();
    });
}

fn has_cap_sys_admin() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header { version: 0x2008_0522, pid: 0 };
    let mut d = [Data::default(); 2];
    sys!(SYS_capget, &mut h as *mut Header, d.as_mut_ptr()).is_ok() && d[0].effective & (1 << CAP_SYS_ADMIN) != 0
}

const CAP_SYS_ADMIN: u32 = 21;

// ---------------------------------------------------------------------------------------
// /dev/ptmx and /dev/pts
// ---------------------------------------------------------------------------------------

fn the_slave_of_pty_n_is_dev_pts_n_with_major_136_and_minor_n() {
    let m = open_master();
    let n = ptn(m);
    assert!(n >= 0, "TIOCGPTN gave {n}");
    let st = stat(&slave_path(n)).expect("stat /dev/pts/N");
    assert_eq!(dev(&st), Dev::Char(136, n as u32));
    close(m).unwrap();
}

fn the_master_is_the_ptmx_device() {
    let m = open_master();
    assert_eq!(dev(&fstat(m)), Dev::Char(5, 2));
    close(m).unwrap();
}

fn each_ptmx_open_gives_a_new_pty_number() {
    let (a, b) = (open_master(), open_master());
    assert_ne!(ptn(a), ptn(b));
    close(a).unwrap();
    close(b).unwrap();
}

/// The new pair is made before a descriptor is found: with none free it is let go again.
fn opening_ptmx_with_no_free_descriptor_is_emfile_and_leaves_no_pty() {
    run_in_child(|| {
        let m = open_master();
        let next = ptn(m);
        close(m).unwrap();
        let mut old = rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(unsafe { getrlimit(RLIMIT_NOFILE, &mut old) }, 0);
        let lim = rlimit { rlim_cur: 0, rlim_max: old.rlim_max };
        assert_eq!(unsafe { setrlimit(RLIMIT_NOFILE, &lim) }, 0);
        let r = open("/dev/ptmx", O_RDWR | O_NOCTTY, 0);
        unsafe { setrlimit(RLIMIT_NOFILE, &old) };
        assert_errno!(r, EMFILE);
        assert!(std::fs::metadata(slave_path(next)).is_err(), "a pty was left behind");
    });
}

fn a_new_pty_is_locked_and_opening_its_slave_is_eio() {
    let m = open_master();
    assert_eq!(get_int(m, TIOCGPTLCK), Ok(1));
    assert_errno!(open(&slave_path(ptn(m)), O_RDWR | O_NOCTTY, 0), EIO);
    close(m).unwrap();
}

fn tiocsptlck_unlocks_and_relocks_the_slave() {
    let m = open_master();
    let path = slave_path(ptn(m));
    assert_eq!(set_int(m, TIOCSPTLCK, 0), Ok(0));
    assert_eq!(get_int(m, TIOCGPTLCK), Ok(0));
    let s = open(&path, O_RDWR | O_NOCTTY, 0).expect("open the unlocked slave");
    assert_eq!(set_int(m, TIOCSPTLCK, 1), Ok(0));
    assert_eq!(get_int(m, TIOCGPTLCK), Ok(1));
    assert_errno!(open(&path, O_RDWR | O_NOCTTY, 0), EIO);
    close(s).unwrap();
    close(m).unwrap();
}

fn tiocgptn_on_the_slave_is_enotty() {
    // Linux: TIOCGPTN is the master's (ptm_unix98_ops.ioctl); the slave has no such ioctl.
    let pty = Pty::open();
    assert_errno!(get_int(pty.s(), TIOCGPTN), ENOTTY);
    assert_errno!(get_int(pty.s(), TIOCGPTLCK), ENOTTY);
}

fn closing_the_master_removes_the_slave_node() {
    let pty = Pty::open();
    assert!(stat(&pty.path()).is_ok());
    pty.close_master();
    // The slave is still open (so the number is not reused), yet its node is gone.
    assert_errno!(stat(&pty.path()), ENOENT);
}

fn input_written_before_the_slave_opens_waits_for_it() {
    // Linux: no EIO; the slave's tty and line discipline exist from the master's open
    // (pty_common_install), so the input waits there for the slave's first opener.
    let m = open_master();
    unlock(m);
    assert_eq!(write(m, b"early\n"), Ok(6));
    let s = open(&slave_path(ptn(m)), O_RDWR | O_NOCTTY | O_CLOEXEC, 0).unwrap();
    assert_eq!(show(&read_once(s).unwrap()), "early\\n");
    close(s).unwrap();
    close(m).unwrap();
}

fn a_master_write_after_the_slave_closes_succeeds() {
    // Linux: not EIO (n_tty_write's check is on the slave's count, which keeps the
    // master's reference); the slave's line discipline even goes on echoing it.
    let pty = Pty::open();
    pty.close_slave();
    assert_eq!(write(pty.m(), b"x"), Ok(1));
}

// ---------------------------------------------------------------------------------------
// termios
// ---------------------------------------------------------------------------------------

fn the_slave_starts_with_the_standard_termios_without_hupcl() {
    let pty = Pty::open();
    let t = tcgets(pty.s()).unwrap();
    assert_eq!(t.iflag, ICRNL | IXON, "c_iflag");
    assert_eq!(t.oflag, OPOST | ONLCR, "c_oflag");
    assert_eq!(t.cflag, B38400 | CS8 | CREAD, "c_cflag");
    assert_eq!(t.lflag, ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN, "c_lflag");
    assert_eq!(t.line, 0, "N_TTY");
    assert_eq!(t.cc, INIT_C_CC, "c_cc");
}

fn tcgets_on_the_master_reports_the_slaves_termios() {
    // Linux: tty_mode_ioctl works on the slave ("real_tty") for a pty master, so the
    // master's own raw termios (iflag 0, oflag 0, lflag 0) is never seen.
    let pty = Pty::open();
    assert_eq!(tcgets(pty.m()), tcgets(pty.s()));
    update_termios(pty.s(), |t| t.lflag &= !ECHO);
    assert_eq!(tcgets(pty.m()).unwrap().lflag & ECHO, 0);
}

fn tcsets_on_the_master_sets_the_slaves_termios() {
    let pty = Pty::open();
    update_termios(pty.m(), |t| {
        t.lflag &= !ICANON;
        t.cc[VMIN] = 4;
    });
    let t = tcgets(pty.s()).unwrap();
    assert_eq!((t.lflag & ICANON, t.cc[VMIN]), (0, 4));
}

fn tcsets_then_tcgets_gives_back_the_same_termios() {
    let pty = Pty::open();
    let mut t = tcgets(pty.s()).unwrap();
    t.iflag = ICRNL | IXON | IXANY;
    t.oflag = OPOST;
    t.lflag = ISIG | ICANON | ECHO | TOSTOP;
    t.cc[VINTR] = 0x18;
    t.cc[VMIN] = 3;
    t.cc[VTIME] = 7;
    assert_eq!(tcsets(pty.s(), &t), Ok(0));
    assert_eq!(tcgets(pty.s()), Ok(t));
}

fn tcgets_and_tcsets_with_a_bad_pointer_are_efault() {
    let pty = Pty::open();
    assert_errno!(ioctl(pty.s(), TCGETS, BAD_PTR), EFAULT);
    assert_errno!(ioctl(pty.s(), TCSETS, BAD_PTR), EFAULT);
}

fn tcgets_on_a_pipe_or_dev_null_is_enotty() {
    let (r, w) = pipe(O_CLOEXEC).unwrap();
    assert_errno!(tcgets(r), ENOTTY);
    let null = open("/dev/null", O_RDWR | O_CLOEXEC, 0).unwrap();
    assert_errno!(tcgets(null), ENOTTY);
    for fd in [r, w, null] {
        close(fd).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Canonical mode
// ---------------------------------------------------------------------------------------

fn a_canonical_read_blocks_until_a_newline_arrives() {
    let pty = Pty::open();
    let (r, w) = pipe(O_CLOEXEC).unwrap();
    let reader = spawn(|| {
        let mut buf = [0u8; 64];
        match read(pty.s(), &mut buf) {
            Ok(n) => {
                write(w, &buf[..n]).unwrap();
                0
            }
            Err(e) => e.0,
        }
    });
    write(pty.m(), b"ab").unwrap();
    assert_eq!(poll1(r, POLLIN, 100), 0, "the read returned without a newline");
    write(pty.m(), b"c\n").unwrap();
    expect_read(r, b"abc\n");
    assert_eq!(wait_child(reader), Exit::Code(0));
    close(r).unwrap();
    close(w).unwrap();
}

fn icrnl_turns_a_carriage_return_into_a_newline() {
    let pty = Pty::open();
    write(pty.m(), b"abc\r").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "abc\\n");
}

fn a_canonical_read_returns_one_line_at_a_time() {
    let pty = Pty::open();
    write(pty.m(), b"one\ntwo\n").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "one\\n");
    assert_eq!(show(&read_once(pty.s()).unwrap()), "two\\n");
}

fn a_short_canonical_read_leaves_the_rest_of_the_line() {
    let pty = Pty::open();
    write(pty.m(), b"hello\n").unwrap();
    assert_ne!(poll1(pty.s(), POLLIN, WAIT_MS), 0);
    let mut two = [0u8; 2];
    assert_eq!(read(pty.s(), &mut two), Ok(2));
    assert_eq!(&two, b"he");
    assert_eq!(show(&read_once(pty.s()).unwrap()), "llo\\n");
}

fn eof_on_an_empty_line_reads_as_zero_bytes() {
    let pty = Pty::open();
    write(pty.m(), b"\x04").unwrap();
    assert_eq!(read_once(pty.s()), Ok(vec![]));
    write(pty.m(), b"x\n").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "x\\n", "the EOF was taken by the first read");
}

fn eof_after_text_ends_the_line_without_a_newline() {
    let pty = Pty::open();
    write(pty.m(), b"ab\x04cd\n").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "ab");
    assert_eq!(show(&read_once(pty.s()).unwrap()), "cd\\n");
}

fn erase_removes_a_character_and_echoes_backspace_space_backspace() {
    let pty = Pty::open();
    write(pty.m(), b"ab\x7f").unwrap();
    expect_read(pty.m(), b"ab\x08 \x08");
    write(pty.m(), b"\r").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "a\\n");
}

fn the_kill_character_discards_the_line() {
    let pty = Pty::open();
    write(pty.m(), b"abc\x15def\n").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "def\\n");
}

fn input_is_echoed_with_its_newline_as_crlf() {
    let pty = Pty::open();
    write(pty.m(), b"abc\r").unwrap();
    expect_read(pty.m(), b"abc\r\n");
}

fn with_echo_off_input_is_not_echoed() {
    let pty = Pty::open();
    update_termios(pty.s(), |t| t.lflag &= !ECHO);
    write(pty.m(), b"abc\r").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "abc\\n");
    // An echo is written out before the line it ends becomes readable.
    assert_eq!(show(&read_now(pty.m())), "");
}

fn onlcr_turns_a_slave_newline_into_crlf() {
    let pty = Pty::open();
    write(pty.s(), b"x\n").unwrap();
    expect_read(pty.m(), b"x\r\n");
}

fn without_opost_a_slave_newline_is_written_as_is() {
    let pty = Pty::open();
    update_termios(pty.s(), |t| t.oflag &= !OPOST);
    write(pty.s(), b"x\n").unwrap();
    expect_read(pty.m(), b"x\n");
}

// ---------------------------------------------------------------------------------------
// Raw mode
// ---------------------------------------------------------------------------------------

fn a_raw_read_returns_bytes_without_waiting_for_a_newline() {
    let pty = Pty::open();
    make_raw(pty.s(), 1, 0);
    write(pty.m(), b"ab\r\x03").unwrap();
    expect_read(pty.s(), b"ab\r\x03");
    assert_eq!(show(&read_now(pty.m())), "", "no echo");
}

fn a_vmin_0_vtime_0_read_of_an_empty_slave_returns_0_at_once() {
    bounded(|| {
        let pty = Pty::open();
        make_raw(pty.s(), 0, 0);
        let mut buf = [0u8; 8];
        assert_eq!(read(pty.s(), &mut buf), Ok(0));
        write(pty.m(), b"q").unwrap();
        assert_ne!(poll1(pty.s(), POLLIN, WAIT_MS), 0);
        assert_eq!(read(pty.s(), &mut buf), Ok(1));
    });
}

fn a_vmin_0_vtime_1_read_of_an_empty_slave_returns_0_after_the_timeout() {
    bounded(|| {
        let pty = Pty::open();
        make_raw(pty.s(), 0, 1);
        let start = monotonic_ns();
        assert_eq!(read(pty.s(), &mut [0u8; 8]), Ok(0));
        let ms = (monotonic_ns() - start) / 1_000_000;
        assert!(ms >= 50, "returned after {ms} ms, VTIME is 100 ms");
    });
}

fn a_nonblocking_read_of_an_empty_slave_is_eagain() {
    let pty = Pty::open();
    set_nonblock(pty.s());
    assert_errno!(read(pty.s(), &mut [0u8; 8]), EAGAIN);
    write(pty.m(), b"partial").unwrap();
    assert_errno!(read(pty.s(), &mut [0u8; 8]), EAGAIN);
}

fn fionread_counts_the_raw_bytes_ready() {
    let pty = Pty::open();
    make_raw(pty.s(), 1, 0);
    assert_eq!(get_int(pty.s(), FIONREAD), Ok(0));
    write(pty.m(), b"hello").unwrap();
    assert_ne!(poll1(pty.s(), POLLIN, WAIT_MS), 0);
    assert_eq!(get_int(pty.s(), FIONREAD), Ok(5));
}

fn fionread_in_canonical_mode_counts_only_complete_lines() {
    let pty = Pty::open();
    write(pty.m(), b"ab\ncd").unwrap();
    assert_ne!(poll1(pty.s(), POLLIN, WAIT_MS), 0);
    assert_eq!(get_int(pty.s(), FIONREAD), Ok(3));
}

// ---------------------------------------------------------------------------------------
// Signal characters
// ---------------------------------------------------------------------------------------

fn ctrl_c_is_echoed_as_caret_c() {
    let pty = Pty::open();
    write(pty.m(), b"\x03").unwrap();
    expect_read(pty.m(), b"^C");
}

fn the_interrupt_character_discards_unread_input() {
    let pty = Pty::open();
    write(pty.m(), b"one\nabc").unwrap();
    expect_read(pty.m(), b"one\r\nabc");
    write(pty.m(), b"\x03").unwrap();
    // Its echo comes once it was processed (the slave has a line to read meanwhile).
    expect_read(pty.m(), b"^C");
    write(pty.m(), b"d\n").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "d\\n");
}

fn with_isig_off_ctrl_c_is_an_ordinary_byte() {
    let pty = Pty::open();
    update_termios(pty.s(), |t| t.lflag &= !ISIG);
    write(pty.m(), b"\x03\x1c\x1a\n").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "\\x03\\x1c\\x1a\\n");
}

fn ctrl_c_sends_sigint_to_the_foreground_group() {
    in_session(|pty| {
        block(&[SIGINT]);
        write(pty.m(), b"\x03").unwrap();
        assert!(take_signal(SIGINT, WAIT_MS as i64), "no SIGINT");
    });
}

fn ctrl_backslash_sends_sigquit_to_the_foreground_group() {
    in_session(|pty| {
        block(&[SIGQUIT]);
        write(pty.m(), b"\x1c").unwrap();
        assert!(take_signal(SIGQUIT, WAIT_MS as i64), "no SIGQUIT");
    });
}

fn ctrl_z_stops_the_foreground_group_with_sigtstp() {
    in_session(|pty| {
        // A group of its own, made the foreground: its parent (this session leader) is in
        // another group of the session, so it is not orphaned and SIGTSTP stops it.
        let g = spawn_in_new_group(|| loop {
            unsafe { libc::pause() };
        });
        set_int(pty.s(), TIOCSPGRP, g).expect("TIOCSPGRP");
        write(pty.m(), b"\x1a").unwrap();
        let ended = wait_untraced(g);
        kill_and_reap(g);
        assert_eq!(ended, Ended::Stopped(SIGTSTP));
    });
}

// ---------------------------------------------------------------------------------------
// Controlling terminal, foreground group, session
// ---------------------------------------------------------------------------------------

fn tiocsctty_makes_the_callers_group_the_foreground_group() {
    in_session(|pty| {
        assert_eq!(getpgrp(), getpid());
        assert_eq!(get_int(pty.s(), TIOCGPGRP), Ok(getpid()));
    });
}

fn tiocgsid_gives_the_session_of_the_controlling_terminal() {
    in_session(|pty| {
        assert_eq!(get_int(pty.s(), TIOCGSID), Ok(getpid()));
    });
}

fn the_master_reports_the_slaves_foreground_group_and_session() {
    in_session(|pty| {
        assert_eq!(get_int(pty.m(), TIOCGPGRP), Ok(getpid()));
        assert_eq!(get_int(pty.m(), TIOCGSID), Ok(getpid()));
    });
}

fn a_pty_that_is_no_ones_ctty_has_group_0_and_no_session_on_the_master() {
    // Linux: tiocgpgrp on the master puts pid_vnr(NULL), 0, while tiocgsid fails.
    let pty = Pty::open();
    assert_eq!(get_int(pty.m(), TIOCGPGRP), Ok(0));
    assert_errno!(get_int(pty.m(), TIOCGSID), ENOTTY);
}

fn tiocgpgrp_and_tiocgsid_on_a_tty_that_is_not_the_callers_ctty_are_enotty() {
    let pty = Pty::open();
    assert_errno!(get_int(pty.s(), TIOCGPGRP), ENOTTY);
    assert_errno!(get_int(pty.s(), TIOCGSID), ENOTTY);
}

fn tiocspgrp_moves_the_foreground_group() {
    in_session(|pty| {
        let hold = Chan::new();
        let g = spawn_in_new_group(|| {
            hold.recv();
            0
        });
        assert_eq!(set_int(pty.s(), TIOCSPGRP, g), Ok(0));
        assert_eq!(get_int(pty.s(), TIOCGPGRP), Ok(g));
        hold.send(b'x');
        assert_eq!(wait_child(g), Exit::Code(0));
    });
}

fn tiocspgrp_on_a_tty_that_is_not_the_callers_ctty_is_enotty() {
    let pty = Pty::open();
    assert_errno!(set_int(pty.s(), TIOCSPGRP, getpgrp()), ENOTTY);
}

fn tiocspgrp_to_a_group_of_another_session_is_eperm() {
    in_session(|pty| {
        let (ready, hold) = (Chan::new(), Chan::new());
        let other = spawn(|| {
            setsid().unwrap();
            ready.send(b'r');
            hold.recv();
            0
        });
        assert_eq!(ready.recv(), Some(b'r'));
        assert_errno!(set_int(pty.s(), TIOCSPGRP, other), EPERM);
        hold.send(b'x');
        assert_eq!(wait_child(other), Exit::Code(0));
    });
}

fn tiocspgrp_to_a_nonexistent_group_is_esrch() {
    in_session(|pty| {
        assert_errno!(set_int(pty.s(), TIOCSPGRP, dead_pid()), ESRCH);
        assert_eq!(get_int(pty.s(), TIOCGPGRP), Ok(getpid()));
    });
}

fn tiocspgrp_to_a_negative_group_is_einval() {
    in_session(|pty| {
        assert_errno!(set_int(pty.s(), TIOCSPGRP, -1), EINVAL);
    });
}

fn tiocsctty_by_a_process_that_is_not_a_session_leader_is_eperm() {
    run_in_child(|| {
        let pty = Pty::open();
        assert_errno!(ioctl(pty.s(), TIOCSCTTY, 0), EPERM);
        assert_errno!(ioctl(pty.s(), TIOCSCTTY, 1), EPERM);
    });
}

fn tiocsctty_when_the_caller_has_another_ctty_is_eperm() {
    in_session(|_| {
        let other = Pty::open();
        assert_errno!(ioctl(other.s(), TIOCSCTTY, 0), EPERM);
        assert_errno!(ioctl(other.s(), TIOCSCTTY, 1), EPERM);
    });
}

fn tiocsctty_of_the_callers_own_ctty_succeeds() {
    in_session(|pty| {
        assert_eq!(ioctl(pty.s(), TIOCSCTTY, 0), Ok(0));
        assert_eq!(get_int(pty.s(), TIOCGSID), Ok(getpid()));
    });
}

fn tiocsctty_0_of_another_sessions_ctty_is_eperm() {
    in_session(|pty| {
        let other = spawn(|| {
            setsid().unwrap();
            code(ioctl(pty.s(), TIOCSCTTY, 0)) as i32
        });
        assert_eq!(wait_child(other), Exit::Code(EPERM), "even for root, without the steal argument");
        assert_eq!(get_int(pty.s(), TIOCGSID), Ok(getpid()), "still this session's");
    });
}

fn tiocsctty_1_with_cap_sys_admin_steals_another_sessions_ctty() {
    in_session(|pty| {
        let (stolen, done) = (Chan::new(), Chan::new());
        let thief = spawn(|| {
            setsid().unwrap();
            stolen.send(code(ioctl(pty.s(), TIOCSCTTY, 1)));
            done.recv();
            0
        });
        let r = stolen.recv();
        if has_cap_sys_admin() {
            assert_eq!(r, Some(0), "TIOCSCTTY 1 with CAP_SYS_ADMIN");
            assert_eq!(get_int(pty.m(), TIOCGSID), Ok(thief), "the thief's session now");
            assert_errno!(open("/dev/tty", O_RDWR | O_CLOEXEC, 0), ENXIO);
            assert_errno!(get_int(pty.s(), TIOCGSID), ENOTTY);
        } else {
            assert_eq!(r, Some(EPERM as u8), "TIOCSCTTY 1 without CAP_SYS_ADMIN");
        }
        done.send(b'x');
        assert_eq!(wait_child(thief), Exit::Code(0));
    });
}

fn opening_dev_tty_without_a_ctty_is_enxio() {
    run_in_child(|| {
        setsid().unwrap();
        assert_errno!(open("/dev/tty", O_RDWR | O_CLOEXEC, 0), ENXIO);
    });
}

fn dev_tty_is_the_controlling_terminal() {
    in_session(|pty| {
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC, 0).expect("open /dev/tty");
        assert_eq!(dev(&fstat(fd)), Dev::Char(5, 0), "the file is /dev/tty's node");
        assert_eq!(get_int(fd, TIOCGSID), Ok(getpid()));
        assert_errno!(get_int(fd, TIOCGPTN), ENOTTY); // the slave's ioctls, not the master's
        write(fd, b"hi").unwrap();
        expect_read(pty.m(), b"hi");
        write(pty.m(), b"back\n").unwrap();
        assert_eq!(show(&read_once(fd).unwrap()), "back\\n");
        close(fd).unwrap();
    });
}

fn opening_the_slave_as_a_session_leader_without_a_ctty_makes_it_the_ctty() {
    run_in_child(|| {
        setsid().unwrap();
        let m = open_master();
        unlock(m);
        let s = open(&slave_path(ptn(m)), O_RDWR | O_CLOEXEC, 0).unwrap();
        assert_eq!(get_int(s, TIOCGSID), Ok(getpid()));
        assert_eq!(get_int(s, TIOCGPGRP), Ok(getpid()));
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC, 0).expect("open /dev/tty");
        set_action(SIGHUP, SIG_IGN); // closing the master hangs up this session
        for fd in [tty, s, m] {
            close(fd).unwrap();
        }
    });
}

fn opening_the_slave_with_o_noctty_does_not_make_it_the_ctty() {
    run_in_child(|| {
        setsid().unwrap();
        let pty = Pty::open();
        assert_errno!(get_int(pty.s(), TIOCGSID), ENOTTY);
        assert_errno!(open("/dev/tty", O_RDWR | O_CLOEXEC, 0), ENXIO);
    });
}

fn opening_the_slave_write_only_does_not_make_it_the_ctty() {
    // Linux: tty_open_proc_set_tty needs FMODE_READ (a write-only opener gets no ctty).
    run_in_child(|| {
        setsid().unwrap();
        let m = open_master();
        unlock(m);
        let s = open(&slave_path(ptn(m)), O_WRONLY | O_CLOEXEC, 0).unwrap();
        assert_errno!(get_int(s, TIOCGSID), ENOTTY);
        assert_errno!(open("/dev/tty", O_RDWR | O_CLOEXEC, 0), ENXIO);
        close(s).unwrap();
        close(m).unwrap();
    });
}

fn opening_ptmx_as_a_session_leader_does_not_make_a_ctty() {
    run_in_child(|| {
        setsid().unwrap();
        let m = open("/dev/ptmx", O_RDWR | O_CLOEXEC, 0).unwrap();
        assert_errno!(get_int(m, TIOCGSID), ENOTTY);
        assert_errno!(open("/dev/tty", O_RDWR | O_CLOEXEC, 0), ENXIO);
        close(m).unwrap();
    });
}

fn setsid_drops_the_controlling_terminal() {
    in_session(|pty| {
        let child = spawn(|| {
            if open("/dev/tty", O_RDWR | O_CLOEXEC, 0).is_err() {
                return 1; // the session's terminal before setsid
            }
            setsid().unwrap();
            match (open("/dev/tty", O_RDWR | O_CLOEXEC, 0), get_int(pty.s(), TIOCGSID)) {
                (Err(Errno(ENXIO)), Err(Errno(ENOTTY))) => 0,
                _ => 2,
            }
        });
        assert_eq!(wait_child(child), Exit::Code(0));
    });
}

fn tiocnotty_on_a_tty_that_is_not_the_callers_ctty_is_enotty() {
    let pty = Pty::open();
    assert_errno!(ioctl(pty.s(), TIOCNOTTY, 0), ENOTTY);
}

fn tiocnotty_drops_the_callers_ctty() {
    in_session(|pty| {
        // A process of the session that is not its leader: only it loses the terminal.
        let child = spawn(|| match ioctl(pty.s(), TIOCNOTTY, 0) {
            Err(e) => 100 + e.0,
            Ok(_) => code(open("/dev/tty", O_RDWR | O_CLOEXEC, 0)) as i32,
        });
        assert_eq!(wait_child(child), Exit::Code(ENXIO));
        assert_eq!(get_int(pty.s(), TIOCGSID), Ok(getpid()), "the leader keeps it");
    });
}

fn tiocnotty_by_the_session_leader_sends_sighup_and_sigcont_to_the_foreground_group() {
    // Linux: disassociate_ctty(0) signals the foreground group, here the leader's own.
    in_session(|pty| {
        block(&[SIGHUP, SIGCONT]);
        assert_eq!(ioctl(pty.s(), TIOCNOTTY, 0), Ok(0));
        assert_eq!(pending_of(&[SIGHUP, SIGCONT]), [SIGHUP, SIGCONT]);
        assert_errno!(open("/dev/tty", O_RDWR | O_CLOEXEC, 0), ENXIO);
    });
}

// ---------------------------------------------------------------------------------------
// Job control
// ---------------------------------------------------------------------------------------

/// Runs `f` in a new background group of the session (its parent, the leader, is in the
/// foreground group) and returns how that process ended or stopped.
fn in_background(f: impl FnOnce() -> i32) -> Ended {
    let g = spawn_in_new_group(f);
    let ended = wait_untraced(g);
    if let Ended::Stopped(_) = ended {
        kill_and_reap(g);
    }
    ended
}

fn a_background_read_stops_the_group_with_sigttin() {
    in_session(|pty| {
        let ended = in_background(|| 100 + code(read(pty.s(), &mut [0u8; 8])) as i32);
        assert_eq!(ended, Ended::Stopped(SIGTTIN));
    });
}

fn a_background_read_with_sigttin_ignored_is_eio() {
    in_session(|pty| {
        let ended = in_background(|| {
            set_action(SIGTTIN, SIG_IGN);
            code(read(pty.s(), &mut [0u8; 8])) as i32
        });
        assert_eq!(ended, Ended::Exited(Exit::Code(EIO)));
    });
}

fn a_background_read_with_sigttin_blocked_is_eio() {
    in_session(|pty| {
        let ended = in_background(|| {
            block(&[SIGTTIN]);
            code(read(pty.s(), &mut [0u8; 8])) as i32
        });
        assert_eq!(ended, Ended::Exited(Exit::Code(EIO)));
    });
}

fn a_background_read_in_an_orphaned_group_is_eio() {
    in_session(|pty| {
        let result = Chan::new();
        // The group's only member is a process whose parent exits: its new parent is
        // outside the session, so the group is orphaned.
        let g = spawn_in_new_group(|| {
            let parent = getpid();
            spawn(|| {
                if !wait_until(WAIT_MS as u64, || getppid() != parent) {
                    result.send(254);
                    return 1;
                }
                result.send(code(read(pty.s(), &mut [0u8; 8])));
                0
            });
            0
        });
        assert_eq!(wait_child(g), Exit::Code(0));
        assert_eq!(result.recv(), Some(EIO as u8), "the orphan's read (254: never orphaned)");
    });
}

fn a_background_write_with_tostop_stops_the_group_with_sigttou() {
    in_session(|pty| {
        update_termios(pty.s(), |t| t.lflag |= TOSTOP);
        let ended = in_background(|| 100 + code(write(pty.s(), b"bg")) as i32);
        assert_eq!(ended, Ended::Stopped(SIGTTOU));
        assert_eq!(show(&read_now(pty.m())), "");
    });
}

fn a_background_write_without_tostop_succeeds() {
    in_session(|pty| {
        let ended = in_background(|| code(write(pty.s(), b"bg")) as i32);
        assert_eq!(ended, Ended::Exited(Exit::Code(0)));
        expect_read(pty.m(), b"bg");
    });
}

fn a_background_tcsetattr_stops_the_group_with_sigttou() {
    in_session(|pty| {
        let t = tcgets(pty.s()).unwrap();
        let ended = in_background(|| 100 + code(tcsets(pty.s(), &t)) as i32);
        assert_eq!(ended, Ended::Stopped(SIGTTOU));
    });
}

fn a_background_tcsetattr_with_sigttou_ignored_succeeds() {
    in_session(|pty| {
        let mut t = tcgets(pty.s()).unwrap();
        t.lflag &= !ECHO;
        let ended = in_background(|| {
            set_action(SIGTTOU, SIG_IGN);
            code(tcsets(pty.s(), &t)) as i32
        });
        assert_eq!(ended, Ended::Exited(Exit::Code(0)));
        assert_eq!(tcgets(pty.s()).unwrap().lflag & ECHO, 0, "the background process's settings hold");
    });
}

fn a_background_tcsetattr_with_sigttou_blocked_succeeds() {
    in_session(|pty| {
        let t = tcgets(pty.s()).unwrap();
        let ended = in_background(|| {
            block(&[SIGTTOU]);
            code(tcsets(pty.s(), &t)) as i32
        });
        assert_eq!(ended, Ended::Exited(Exit::Code(0)));
    });
}

fn a_background_tcgetattr_succeeds() {
    in_session(|pty| {
        let ended = in_background(|| code(tcgets(pty.s())) as i32);
        assert_eq!(ended, Ended::Exited(Exit::Code(0)));
    });
}

/// Runs `f` in the session leader once another group is the foreground: the leader's own
/// group is then a background group, and orphaned (the leader's parent is in another
/// session).
fn with_another_foreground_group(f: impl FnOnce(&Pty)) {
    in_session(|pty| {
        let hold = Chan::new();
        let g = spawn_in_new_group(|| {
            hold.recv();
            0
        });
        set_int(pty.s(), TIOCSPGRP, g).expect("TIOCSPGRP");
        f(pty);
        hold.send(b'x');
        assert_eq!(wait_child(g), Exit::Code(0));
    });
}

fn a_background_tcsetattr_in_an_orphaned_group_is_eio() {
    with_another_foreground_group(|pty| {
        let t = tcgets(pty.s()).unwrap();
        assert_errno!(tcsets(pty.s(), &t), EIO);
    });
}

fn a_background_tiocspgrp_in_an_orphaned_group_is_enotty() {
    // Linux: tiocspgrp turns tty_check_change's EIO into ENOTTY.
    with_another_foreground_group(|pty| {
        assert_errno!(set_int(pty.s(), TIOCSPGRP, getpid()), ENOTTY);
    });
}

fn a_background_tiocspgrp_with_sigttou_ignored_succeeds() {
    with_another_foreground_group(|pty| {
        set_action(SIGTTOU, SIG_IGN);
        assert_eq!(set_int(pty.s(), TIOCSPGRP, getpid()), Ok(0));
        assert_eq!(get_int(pty.s(), TIOCGPGRP), Ok(getpid()));
    });
}

// ---------------------------------------------------------------------------------------
// Hangup
// ---------------------------------------------------------------------------------------

fn after_the_master_closes_a_slave_read_returns_eof() {
    bounded(|| {
        let pty = Pty::open();
        pty.close_master();
        assert_eq!(read(pty.s(), &mut [0u8; 8]), Ok(0));
    });
}

fn after_the_master_closes_a_slave_write_is_eio() {
    let pty = Pty::open();
    pty.close_master();
    assert_errno!(write(pty.s(), b"x"), EIO);
}

fn after_the_master_closes_slave_ioctls_are_eio() {
    let pty = Pty::open();
    pty.close_master();
    assert_errno!(tcgets(pty.s()), EIO);
    assert_errno!(winsize(pty.s()), EIO);
}

fn after_the_master_closes_poll_on_the_slave_reports_everything() {
    // Linux: hung_up_tty_poll reports readable, writable, error and hangup at once.
    let pty = Pty::open();
    pty.close_master();
    assert_eq!(poll1(pty.s(), POLLIN | POLLOUT, 0), POLLIN | POLLOUT | POLLERR | POLLHUP);
}

fn closing_the_master_sends_sighup_and_sigcont_to_the_controlling_process() {
    in_session(|pty| {
        block(&[SIGHUP, SIGCONT]);
        pty.close_master();
        assert_eq!(pending_of(&[SIGHUP, SIGCONT]), [SIGHUP, SIGCONT]);
    });
}

fn closing_the_master_signals_no_one_else_in_the_session() {
    // Linux: a hangup that is not the session's exit (tty_vhangup from the master's close)
    // signals only the session leader, not the foreground group.
    in_session(|pty| {
        let (ready, go) = (Chan::new(), Chan::new());
        let member = spawn(|| {
            close(pty.m()).unwrap();
            block(&[SIGHUP, SIGCONT]);
            ready.send(b'r');
            if go.recv().is_none() {
                return 1;
            }
            let p = pending_of(&[SIGHUP, SIGCONT]);
            p.iter().map(|&s| 10 * s).sum::<i32>() + 2 * (open("/dev/tty", O_RDWR, 0) != Err(Errno(ENXIO))) as i32
        });
        assert_eq!(ready.recv(), Some(b'r'));
        block(&[SIGHUP, SIGCONT]);
        pty.close_master();
        go.send(b'g');
        // 10 * each signal pending, + 2 if /dev/tty could still be opened.
        assert_eq!(wait_child(member), Exit::Code(0));
    });
}

fn closing_the_master_takes_the_ctty_from_the_session() {
    in_session(|pty| {
        block(&[SIGHUP, SIGCONT]);
        pty.close_master();
        assert_errno!(open("/dev/tty", O_RDWR | O_CLOEXEC, 0), ENXIO);
    });
}

fn after_the_slave_closes_the_master_reads_what_is_left_then_eio() {
    bounded(|| {
        let pty = Pty::open();
        write(pty.s(), b"bye").unwrap();
        pty.close_slave();
        expect_read(pty.m(), b"bye");
        assert_errno!(read(pty.m(), &mut [0u8; 8]), EIO);
    });
}

fn after_the_slave_closes_poll_on_the_master_reports_pollhup() {
    let pty = Pty::open();
    assert_eq!(poll1(pty.m(), POLLIN, 0), 0);
    pty.close_slave();
    assert_eq!(poll1(pty.m(), POLLIN, 0), POLLHUP);
}

fn reopening_the_slave_clears_the_masters_hangup() {
    let pty = Pty::open();
    pty.close_slave();
    assert_eq!(poll1(pty.m(), POLLIN, 0), POLLHUP);
    pty.slave.set(open(&pty.path(), O_RDWR | O_NOCTTY | O_CLOEXEC, 0).unwrap());
    assert_eq!(poll1(pty.m(), POLLIN, 0), 0);
    write(pty.s(), b"x").unwrap();
    expect_read(pty.m(), b"x");
}

/// A session whose leader exits while a process of its foreground group (the leader's
/// group) lives on, with SIGHUP and SIGCONT blocked: `after` runs in that process once
/// the leader is gone and sends what it finds through the channel, which this returns
/// (3 bytes at most). `pty` is the session's terminal; this process keeps its master.
fn after_the_controlling_process_exits(pty: &Pty, after: fn(&Pty, &Chan)) -> Vec<u8> {
    let (ready, out) = (Chan::new(), Chan::new());
    let leader = spawn(|| {
        default_signals();
        setsid().unwrap();
        ioctl(pty.s(), TIOCSCTTY, 0).unwrap();
        spawn(|| {
            block(&[SIGHUP, SIGCONT]);
            let leader = getppid();
            ready.send(b'r');
            if wait_until(WAIT_MS as u64, || getppid() != leader) {
                after(pty, &out);
            }
            0
        });
        (ready.recv() != Some(b'r')) as i32
    });
    assert_eq!(wait_child(leader), Exit::Code(0));
    let mut got = Vec::new();
    while got.len() < 3 {
        match out.recv() {
            Some(b'.') | None => break,
            Some(b) => got.push(b),
        }
    }
    got
}

fn when_the_controlling_process_exits_the_foreground_group_gets_sighup_but_not_sigcont() {
    // Linux: disassociate_ctty(1) sends SIGCONT only when not exiting (on_exit == 0).
    let got = after_the_controlling_process_exits(&Pty::open(), |_, out| {
        let p = pending();
        out.send(if p & sigbit(SIGHUP) != 0 { b'H' } else { b'-' });
        out.send(if p & sigbit(SIGCONT) != 0 { b'C' } else { b'-' });
        out.send(b'.');
    });
    assert_eq!(show(&got), "H-");
}

fn when_the_controlling_process_exits_the_session_loses_its_ctty() {
    let got = after_the_controlling_process_exits(&Pty::open(), |_, out| {
        out.send(code(open("/dev/tty", O_RDWR | O_CLOEXEC, 0)));
        out.send(b'.');
    });
    assert_eq!(got, [ENXIO as u8]);
}

fn when_the_controlling_process_of_a_pty_exits_the_slave_is_not_hung_up() {
    // Linux: disassociate_ctty(1) hangs up the session's terminal unless it is a pty.
    let pty = Pty::open();
    let got = after_the_controlling_process_exits(&pty, |pty, out| {
        out.send(code(write(pty.s(), b"alive")));
        out.send(code(tcgets(pty.s())));
        out.send(b'.');
    });
    assert_eq!(got, [0, 0], "write and TCGETS on the slave after the leader's exit");
    expect_read(pty.m(), b"alive");
}

// ---------------------------------------------------------------------------------------
// Window size
// ---------------------------------------------------------------------------------------

fn the_window_size_starts_at_zero() {
    let pty = Pty::open();
    assert_eq!(winsize(pty.s()), Ok((0, 0, 0, 0)));
    assert_eq!(winsize(pty.m()), Ok((0, 0, 0, 0)));
}

fn the_window_size_is_shared_by_both_ends() {
    let pty = Pty::open();
    assert_eq!(set_winsize(pty.s(), (24, 80, 640, 480)), Ok(0));
    assert_eq!(winsize(pty.m()), Ok((24, 80, 640, 480)));
    assert_eq!(set_winsize(pty.m(), (50, 132, 0, 0)), Ok(0));
    assert_eq!(winsize(pty.s()), Ok((50, 132, 0, 0)));
}

fn tiocgwinsz_with_a_bad_pointer_is_efault() {
    let pty = Pty::open();
    assert_errno!(ioctl(pty.s(), TIOCGWINSZ, BAD_PTR), EFAULT);
    assert_errno!(ioctl(pty.s(), TIOCSWINSZ, BAD_PTR), EFAULT);
}

fn tiocswinsz_with_a_new_size_sends_sigwinch_to_the_foreground_group() {
    in_session(|pty| {
        block(&[SIGWINCH]);
        set_winsize(pty.m(), (30, 100, 0, 0)).unwrap();
        assert_eq!(pending_of(&[SIGWINCH]), [SIGWINCH]);
    });
}

fn tiocswinsz_with_the_same_size_sends_no_sigwinch() {
    in_session(|pty| {
        block(&[SIGWINCH]);
        set_winsize(pty.m(), (30, 100, 0, 0)).unwrap();
        assert!(take_signal(SIGWINCH, 0));
        set_winsize(pty.s(), (30, 100, 0, 0)).unwrap();
        assert_eq!(pending_of(&[SIGWINCH]), []);
    });
}

// ---------------------------------------------------------------------------------------
// poll
// ---------------------------------------------------------------------------------------

fn poll_on_the_slave_reports_pollin_only_for_a_complete_line() {
    let pty = Pty::open();
    write(pty.m(), b"ab").unwrap();
    // n_tty_poll waits for the input already written to be processed, so no timeout is
    // needed for "not readable".
    assert_eq!(poll1(pty.s(), POLLIN, 0), 0);
    write(pty.m(), b"\n").unwrap();
    assert_eq!(poll1(pty.s(), POLLIN, WAIT_MS), POLLIN);
}

fn poll_on_the_master_reports_pollin_once_the_slave_wrote() {
    let pty = Pty::open();
    assert_eq!(poll1(pty.m(), POLLIN, 0), 0);
    write(pty.s(), b"x").unwrap();
    assert_eq!(poll1(pty.m(), POLLIN, WAIT_MS), POLLIN);
}

fn both_ends_of_an_idle_pty_poll_writable() {
    let pty = Pty::open();
    assert_eq!(poll1(pty.m(), POLLIN | POLLOUT, 0), POLLOUT);
    assert_eq!(poll1(pty.s(), POLLIN | POLLOUT, 0), POLLOUT);
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

fn ttyname_of_the_slave_is_dev_pts_n() {
    let pty = Pty::open();
    let mut buf = [0 as c_char; 64];
    assert_eq!(unsafe { ttyname_r(pty.s(), buf.as_mut_ptr(), buf.len()) }, 0);
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    assert_eq!(name.to_str().unwrap(), pty.path());
}

fn fstat_of_the_slave_matches_stat_of_dev_pts_n() {
    let pty = Pty::open();
    let (a, b) = (fstat(pty.s()), stat(&pty.path()).unwrap());
    assert_eq!((a.st_dev, a.st_ino, a.st_rdev), (b.st_dev, b.st_ino, b.st_rdev));
}

fn isatty_is_true_for_both_ends_and_false_for_a_pipe() {
    let pty = Pty::open();
    assert_eq!(unsafe { isatty(pty.m()) }, 1);
    assert_eq!(unsafe { isatty(pty.s()) }, 1);
    let (r, w) = pipe(O_CLOEXEC).unwrap();
    assert_eq!(unsafe { isatty(r) }, 0);
    assert_eq!(user_tests::errno(), Errno(ENOTTY));
    close(r).unwrap();
    close(w).unwrap();
}

// ---------------------------------------------------------------------------------------
// Flushing and flow control
// ---------------------------------------------------------------------------------------

fn tcflsh_tciflush_discards_unread_input() {
    let pty = Pty::open();
    write(pty.m(), b"abc\n").unwrap();
    assert_ne!(poll1(pty.s(), POLLIN, WAIT_MS), 0);
    assert_eq!(ioctl(pty.s(), TCFLSH, TCIFLUSH as usize), Ok(0));
    assert_eq!(poll1(pty.s(), POLLIN, 0), 0);
    write(pty.m(), b"d\n").unwrap();
    assert_eq!(show(&read_once(pty.s()).unwrap()), "d\\n");
}

fn the_stop_character_stops_slave_output_until_the_start_character() {
    let pty = Pty::open();
    set_nonblock(pty.s());
    write(pty.m(), b"\x13").unwrap();
    // poll on the slave waits for the input written to be processed.
    assert_eq!(poll1(pty.s(), POLLIN | POLLOUT, 0), 0, "stopped: not writable");
    assert_errno!(write(pty.s(), b"x"), EAGAIN);
    write(pty.m(), b"\x11").unwrap();
    assert_eq!(poll1(pty.s(), POLLIN | POLLOUT, 0), POLLOUT);
    assert_eq!(write(pty.s(), b"y"), Ok(1));
    expect_read(pty.m(), b"y");
}

fn tcxonc_tcooff_stops_slave_output_until_tcoon() {
    let pty = Pty::open();
    set_nonblock(pty.s());
    assert_eq!(ioctl(pty.s(), TCXONC, TCOOFF as usize), Ok(0));
    assert_errno!(write(pty.s(), b"x"), EAGAIN);
    assert_eq!(ioctl(pty.s(), TCXONC, TCOON as usize), Ok(0));
    assert_eq!(write(pty.s(), b"y"), Ok(1));
    expect_read(pty.m(), b"y");
}

// ---------------------------------------------------------------------------------------
// setpgid and setsid
// ---------------------------------------------------------------------------------------

/// Forks a child that runs `before`, reports it ran, and waits (WAIT_MS at most) until
/// released: (pid, release).
fn spawn_waiting(before: fn()) -> (i32, Chan) {
    let (ready, hold) = (Chan::new(), Chan::new());
    let pid = spawn(|| {
        before();
        ready.send(b'r');
        hold.recv();
        0
    });
    assert_eq!(ready.recv(), Some(b'r'), "the child did not get ready");
    (pid, hold)
}

fn release(pid: i32, hold: Chan) {
    hold.send(b'x');
    assert_eq!(wait_child(pid), Exit::Code(0));
}

fn setpgid_of_a_child_in_another_session_is_eperm() {
    run_in_child(|| {
        let (c, hold) = spawn_waiting(|| {
            setsid().unwrap();
        });
        assert_errno!(setpgid(c, c), EPERM);
        assert_errno!(setpgid(c, 0), EPERM);
        release(c, hold);
    });
}

fn setpgid_into_a_group_of_another_session_is_eperm() {
    run_in_child(|| {
        let (other, hold_other) = spawn_waiting(|| {
            setsid().unwrap();
        });
        let (c, hold) = spawn_waiting(|| {});
        assert_errno!(setpgid(c, other), EPERM);
        assert_errno!(setpgid(0, other), EPERM);
        release(c, hold);
        release(other, hold_other);
    });
}

fn setpgid_of_a_session_leader_is_eperm() {
    run_in_child(|| {
        setsid().unwrap();
        assert_errno!(setpgid(0, 0), EPERM);
        assert_errno!(setpgid(getpid(), getpid()), EPERM);
    });
}

fn setpgid_to_a_nonexistent_group_is_eperm() {
    run_in_child(|| {
        assert_errno!(setpgid(0, dead_pid()), EPERM);
    });
}

fn setpgid_to_a_negative_group_is_einval() {
    run_in_child(|| {
        assert_errno!(setpgid(0, -1), EINVAL);
    });
}

fn setpgid_of_a_child_that_has_execed_is_eacces() {
    run_in_child(|| {
        let (r, w) = pipe(0).unwrap(); // r is the exec'd child's: not close-on-exec
        let (er, ew) = pipe(O_CLOEXEC).unwrap(); // closed by the exec
        let child = fork_child(|| {
            let fd = r.to_string();
            let e = execve(exe_path(), &["tty", CHILD_MARKER, "wait-fd", &fd], &[]);
            let _ = write(ew, &[e.0 as u8]);
            127
        });
        close(ew).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(read(er, &mut b), Ok(0), "execve failed: errno {}", b[0]);
        assert_errno!(setpgid(child, child), EACCES);
        write(w, b"x").unwrap();
        assert_eq!(wait_child(child), Exit::Code(0));
        for fd in [r, w, er] {
            close(fd).unwrap();
        }
    });
}

fn setpgid_of_a_process_that_is_not_a_child_is_esrch() {
    run_in_child(|| {
        let parent = getppid();
        assert_errno!(setpgid(parent, parent), ESRCH);
    });
}

fn setsid_by_a_group_leader_is_eperm() {
    run_in_child(|| {
        setpgid(0, 0).unwrap();
        assert_errno!(setsid(), EPERM);
    });
}
