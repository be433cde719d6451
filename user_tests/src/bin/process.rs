//! Processes: fork, vfork, clone, clone3, wait4/waitid status encoding, zombies,
//! reparenting, ids, kill, execve, and exit from threads.

use libc::*;
use std::arch::asm;
use user_tests::{
    assert_errno, child_args, child_exit, close, cstr, current_sigmask, exe_path, execve, fork_child, handler,
    load_byte, monotonic_ns, open, pipe, read, read_full, run_in_child, run_tests, set_handler, sigbit, sigprocmask,
    sleep_ms, sys, tests, wait_child, wait_until, write, Errno, Exit, KSigaction, TempDir, CHILD_MARKER,
};

fn main() {
    if let Some(args) = child_args() {
        std::process::exit(child_main(&args));
    }
    run_tests(
        "process",
        tests![
            a_thousand_fork_exit_cycles_are_all_reaped,
            fork_child_sees_copy_of_parent_memory,
            fork_child_writes_are_invisible_to_parent,
            fork_child_shares_open_file_offsets,
            fork_reports_pids_consistently,
            vfork_suspends_parent_until_child_exits,
            vfork_parent_resumes_when_child_execs,
            vfork_parent_waiting_for_its_child_dies_of_sigkill,
            vfork_parent_waiting_for_its_child_dies_of_sigterm_without_handler,
            clone_with_only_sigchld_behaves_like_fork,
            clone_thread_without_sighand_is_einval,
            clone3_with_exit_signal_sigchld_behaves_like_fork,
            clone3_with_too_small_size_is_einval,
            wait4_reports_exit_status_3,
            exit_status_is_truncated_to_8_bits,
            wait4_reports_child_killed_by_sigkill,
            wait_status_of_child_killed_by_sigsegv_is_signal_11,
            wait4_any_child_returns_its_pid,
            wait4_with_bad_options_is_einval,
            wait4_for_pid_int_min_is_esrch,
            waitid_reports_pid_status_and_cld_exited,
            waitid_reports_cld_killed_with_signal,
            wnohang_on_running_child_returns_zero,
            wait_with_no_children_is_echild,
            unreaped_zombie_keeps_its_pid_until_reaped,
            orphaned_grandchild_is_reparented,
            gettid_equals_getpid_in_main_thread,
            setsid_in_child_starts_new_session_and_group,
            kill_signal_zero_on_self_succeeds,
            kill_nonexistent_pid_is_esrch,
            kill_with_bad_signal_is_einval,
            execve_passes_argv_and_envp,
            execve_closes_cloexec_fds_and_keeps_others,
            execve_resets_handlers_but_keeps_ignored_and_mask,
            execve_of_missing_file_is_enoent,
            execve_of_non_elf_file_is_enoexec,
            execve_with_a_missing_interpreter_is_enoent,
            execve_with_a_directory_as_interpreter_is_eacces,
            execve_with_an_interpreter_path_not_ending_in_nul_is_enoexec,
            execve_with_a_one_byte_interpreter_path_is_enoexec,
            execve_with_an_interpreter_path_past_the_end_of_the_file_is_eio,
            execve_with_an_interpreter_shorter_than_an_elf_header_is_eio,
            execve_with_an_interpreter_that_is_not_elf_is_elibbad,
            execve_of_directory_is_eacces,
            execve_with_bad_path_pointer_is_efault,
            exit_group_from_secondary_thread_ends_process,
            exit_of_secondary_thread_leaves_process_running,
            exit_of_main_thread_leaves_other_threads_running,
            futex_wakes_a_waiter_in_another_process_through_shared_memory,
            execve_from_a_secondary_thread_replaces_the_whole_process,
        ],
    )
}

/// Child mode: this binary re-executed by a test with `CHILD_MARKER WHAT ARGS...`.
/// Returns the exit status: 0 when what it checks holds, a distinct code otherwise.
fn child_main(args: &[String]) -> i32 {
    match args[0].as_str() {
        // exec-from-thread PID: the image runs as PID, alone, as its leader.
        "exec-from-thread" => {
            let pid: i32 = args[1].parse().unwrap();
            let threads = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string())));
            if getpid() != pid {
                2
            } else if sys!(SYS_gettid).unwrap() as i32 != pid {
                3
            } else if threads.as_deref() != Some("1") {
                4
            } else {
                0
            }
        }
        // Exactly the arguments and environment execve_passes_argv_and_envp passes.
        "args" => {
            let argv0 = std::env::args().next().unwrap();
            let env: Vec<(String, String)> = std::env::vars().collect();
            if argv0 != "first-arg" {
                2
            } else if args[1..] != ["one", "two words", ""] {
                3
            } else if env != [("UT_MARK".into(), "42".into()), ("SECOND".into(), "x y".into())] {
                4
            } else {
                0
            }
        }
        // fds KEEP CLOSED: KEEP is open, CLOSED (opened with O_CLOEXEC) is not.
        "fds" => {
            let keep: i32 = args[1].parse().unwrap();
            let closed: i32 = args[2].parse().unwrap();
            if sys!(SYS_fcntl, keep, F_GETFD).is_err() {
                2
            } else if sys!(SYS_fcntl, closed, F_GETFD) != Err(Errno(EBADF)) {
                3
            } else {
                0
            }
        }
        // SIGUSR1 was caught (now default), SIGUSR2 ignored (stays so), SIGHUP blocked.
        "signals" => {
            let query = |sig| set_handler_query(sig);
            if query(SIGUSR1) != SIG_DFL {
                2
            } else if query(SIGUSR2) != SIG_IGN {
                3
            } else if current_sigmask() & sigbit(SIGHUP) == 0 {
                4
            } else {
                0
            }
        }
        // read-fd N: a byte 'x' arrives on fd N within 5 s.
        "read-fd" => {
            let fd: i32 = args[1].parse().unwrap();
            let mut p = pollfd { fd, events: POLLIN, revents: 0 };
            let mut b = [0u8; 1];
            match sys!(SYS_poll, &mut p as *mut pollfd, 1, 5000) {
                Ok(1) if read(fd, &mut b) == Ok(1) && b[0] == b'x' => 0,
                _ => 2,
            }
        }
        _ => 100,
    }
}

/// The current handler of `sig` (rt_sigaction query).
fn set_handler_query(sig: i32) -> usize {
    let mut old = KSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    sys!(SYS_rt_sigaction, sig, 0, &mut old as *mut KSigaction, 8).unwrap();
    old.handler
}

fn getpid() -> i32 {
    sys!(SYS_getpid).unwrap() as i32
}

fn getppid() -> i32 {
    sys!(SYS_getppid).unwrap() as i32
}

fn kill(pid: i32, sig: i32) -> Result<i64, Errno> {
    sys!(SYS_kill, pid, sig)
}

/// 1000 children that touch memory and exit, each reaped with its status.
/// In the kernel, the runner's end-of-suite frame count then shows that
/// none of them leaked a frame.
fn a_thousand_fork_exit_cycles_are_all_reaped() {
    let mut buf = vec![1u8; 3 * 4096];
    for i in 0..1000 {
        let pid = fork_child(|| {
            buf[(i % 3) * 4096] = 2; // a copy-on-write fault in the child
            (i % 100) as i32
        });
        assert_eq!(wait_child(pid), Exit::Code((i % 100) as i32), "child {i}");
    }
    buf[0] = 3;
    assert!(buf[4096] == 1 && buf[8192] == 1, "children's writes reached the parent");
}

fn fork_child_sees_copy_of_parent_memory() {
    let data: Vec<u64> = (0..10_000).collect();
    let exit = child_exit(|| (data.iter().sum::<u64>() == 10_000 * 9_999 / 2) as i32);
    assert_eq!(exit, Exit::Code(1));
}

fn fork_child_writes_are_invisible_to_parent() {
    let mut data = vec![7u8; 64 * 1024];
    let exit = child_exit(|| {
        data.fill(9);
        (data[1000] == 9) as i32
    });
    assert_eq!(exit, Exit::Code(1));
    assert!(data.iter().all(|&b| b == 7), "the child's writes leaked into the parent");
}

fn fork_child_shares_open_file_offsets() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", b"abcdef"), O_RDONLY, 0).unwrap();
    let exit = child_exit(|| read(fd, &mut [0u8; 2]).unwrap() as i32);
    assert_eq!(exit, Exit::Code(2));
    let mut b = [0u8; 2];
    read(fd, &mut b).unwrap();
    assert_eq!(&b, b"cd", "the child's read moved the shared offset");
    close(fd).unwrap();
}

fn fork_reports_pids_consistently() {
    let (r, w) = pipe(0).unwrap();
    let parent = getpid();
    let pid = fork_child(|| {
        let ids = [getpid(), getppid()];
        write(w, &[ids[0].to_ne_bytes(), ids[1].to_ne_bytes()].concat()).unwrap();
        0
    });
    close(w).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(read_full(r, &mut buf).unwrap(), 8);
    close(r).unwrap();
    assert_eq!(wait_child(pid), Exit::Code(0));
    let child_pid = i32::from_ne_bytes(buf[..4].try_into().unwrap());
    let child_ppid = i32::from_ne_bytes(buf[4..].try_into().unwrap());
    assert_eq!(child_pid, pid, "fork's return value is the child's getpid");
    assert_eq!(child_ppid, parent, "the child's getppid is the parent");
    assert_ne!(pid, parent);
}

/// The raw vfork system call. The child runs on the parent's stack, so it is written in
/// assembly that touches no memory but `flag`: it sleeps 30 ms (`ts`), sets `*flag = 1`
/// and exits with status 7. Returns the child's pid in the parent.
fn vfork_sleep_set_flag_exit(flag: *mut u8, ts: *const timespec) -> i64 {
    let ret: i64;
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov eax, {nanosleep}",
            "mov rdi, {ts}",
            "xor esi, esi",
            "syscall",
            "mov byte ptr [{flag}], 1",
            "mov eax, {exit_group}",
            "mov edi, 7",
            "syscall",
            "2:",
            nanosleep = const SYS_nanosleep,
            exit_group = const SYS_exit_group,
            ts = in(reg) ts,
            flag = in(reg) flag,
            inlateout("rax") SYS_vfork => ret,
            out("rdi") _, out("rsi") _, out("rcx") _, out("r11") _,
        );
    }
    ret
}

fn vfork_suspends_parent_until_child_exits() {
    let mut flag = 0u8;
    let ts = timespec { tv_sec: 0, tv_nsec: 30_000_000 };
    let start = monotonic_ns();
    let pid = vfork_sleep_set_flag_exit(&mut flag, &ts);
    let elapsed = monotonic_ns() - start;
    assert!(pid > 0, "vfork failed: {pid}");
    // The child shares our memory and ran to completion before we resumed.
    assert_eq!(unsafe { std::ptr::read_volatile(&flag) }, 1);
    assert!(elapsed >= 30_000_000, "resumed after {elapsed} ns, before the child's exit");
    assert_eq!(wait_child(pid as i32), Exit::Code(7));
}

/// The raw vfork system call whose child pauses forever; returns the child's pid.
fn vfork_pause_forever() -> i64 {
    let ret: i64;
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "3:",
            "mov eax, {pause}",
            "syscall",
            "jmp 3b",
            "2:",
            pause = const SYS_pause,
            inlateout("rax") SYS_vfork => ret,
            out("rcx") _, out("r11") _,
        );
    }
    ret
}

/// The one-letter state of `pid` in /proc/PID/stat.
fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

/// A process blocked in vfork until its child execs or exits, and a signal `sig` sent
/// to it: how it ends. Its child (which never ends by itself) is killed afterwards
/// through the process group they share.
fn kill_vfork_parent(sig: i32) -> Exit {
    let parent = fork_child(|| {
        unsafe { setpgid(0, 0) };
        vfork_pause_forever();
        0
    });
    // Linux shows the vfork wait as D (killable, not interruptible).
    assert!(wait_until(10_000, || proc_state(parent) == Some('D')), "parent never blocked in vfork");
    unsafe { libc::kill(parent, sig) };
    let how = wait_child(parent);
    unsafe { libc::kill(-parent, SIGKILL) };
    how
}

fn vfork_parent_waiting_for_its_child_dies_of_sigkill() {
    assert_eq!(kill_vfork_parent(SIGKILL), Exit::Signal(SIGKILL));
}

fn vfork_parent_waiting_for_its_child_dies_of_sigterm_without_handler() {
    // A signal whose default action kills ends killable waits too (Linux's complete_signal).
    assert_eq!(kill_vfork_parent(SIGTERM), Exit::Signal(SIGTERM));
}

/// The raw vfork system call whose child immediately execs `path` (exit 127 on failure).
fn vfork_exec(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> i64 {
    let ret: i64;
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov eax, {execve}",
            "mov rdi, {path}",
            "mov rsi, {argv}",
            "mov rdx, {envp}",
            "syscall",
            "mov eax, {exit_group}",
            "mov edi, 127",
            "syscall",
            "2:",
            execve = const SYS_execve,
            exit_group = const SYS_exit_group,
            path = in(reg) path,
            argv = in(reg) argv,
            envp = in(reg) envp,
            inlateout("rax") SYS_vfork => ret,
            out("rdi") _, out("rsi") _, out("rdx") _, out("rcx") _, out("r11") _,
        );
    }
    ret
}

/// The exec'd child waits for a byte that only the resumed parent can send, so this
/// would time out if the parent stayed suspended after the exec.
fn vfork_parent_resumes_when_child_execs() {
    let (r, w) = pipe(0).unwrap();
    let args = [exe_path().to_owned(), cstr(CHILD_MARKER), cstr("read-fd"), cstr(&r.to_string())];
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let envp = [std::ptr::null::<c_char>()];
    let pid = vfork_exec(exe_path().as_ptr(), argv.as_ptr(), envp.as_ptr());
    assert!(pid > 0, "vfork failed: {pid}");
    write(w, b"x").unwrap();
    assert_eq!(wait_child(pid as i32), Exit::Code(0));
    close(r).unwrap();
    close(w).unwrap();
}

fn clone_with_only_sigchld_behaves_like_fork() {
    let mut value = 1u32;
    match sys!(SYS_clone, SIGCHLD, 0, 0, 0, 0).unwrap() {
        0 => {
            // The child has its own copy of the address space.
            unsafe { std::ptr::write_volatile(&mut value, 2) };
            unsafe { _exit(5) }
        }
        pid => {
            assert_eq!(wait_child(pid as i32), Exit::Code(5));
            assert_eq!(unsafe { std::ptr::read_volatile(&value) }, 1);
        }
    }
}

fn clone_thread_without_sighand_is_einval() {
    assert_errno!(sys!(SYS_clone, CLONE_THREAD | CLONE_VM, 0, 0, 0, 0), EINVAL);
}

/// Linux's `struct clone_args` (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

fn clone3_with_exit_signal_sigchld_behaves_like_fork() {
    let args = CloneArgs { exit_signal: SIGCHLD as u64, ..Default::default() };
    let size = std::mem::size_of::<CloneArgs>();
    match sys!(SYS_clone3, &args as *const CloneArgs, size).unwrap() {
        0 => unsafe { _exit(6) },
        pid => assert_eq!(wait_child(pid as i32), Exit::Code(6)),
    }
}

fn clone3_with_too_small_size_is_einval() {
    let args = CloneArgs { exit_signal: SIGCHLD as u64, ..Default::default() };
    assert_errno!(sys!(SYS_clone3, &args as *const CloneArgs, 8), EINVAL);
}

fn wait4_reports_exit_status_3() {
    let pid = fork_child(|| 3);
    let mut status = 0;
    assert_eq!(sys!(SYS_wait4, pid, &mut status as *mut i32, 0, 0).unwrap(), pid as i64);
    assert!(WIFEXITED(status) && !WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(WEXITSTATUS(status), 3);
    assert_eq!(status, 3 << 8, "Linux encodes exit codes as code << 8");
}

fn exit_status_is_truncated_to_8_bits() {
    assert_eq!(child_exit(|| 256 + 3), Exit::Code(3));
}

fn wait4_reports_child_killed_by_sigkill() {
    let pid = fork_child(|| loop {
        unsafe { pause() };
    });
    kill(pid, SIGKILL).unwrap();
    let mut status = 0;
    sys!(SYS_wait4, pid, &mut status as *mut i32, 0, 0).unwrap();
    assert!(WIFSIGNALED(status) && !WIFEXITED(status), "status {status:#x}");
    assert_eq!(WTERMSIG(status), SIGKILL);
}

fn wait_status_of_child_killed_by_sigsegv_is_signal_11() {
    let exit = child_exit(|| {
        unsafe { signal(SIGSEGV, SIG_DFL) };
        load_byte(0) as i32
    });
    assert_eq!(exit, Exit::Signal(SIGSEGV));
}

fn wait4_any_child_returns_its_pid() {
    let pid = fork_child(|| 0);
    let mut status = 0;
    assert_eq!(sys!(SYS_wait4, -1, &mut status as *mut i32, 0, 0).unwrap(), pid as i64);
}

/// wait4(INT_MIN): the negated pid would overflow, so Linux answers ESRCH.
fn wait4_for_pid_int_min_is_esrch() {
    let mut status = 0;
    assert_errno!(sys!(SYS_wait4, i32::MIN, &mut status as *mut i32, 0, 0), ESRCH);
}

fn wait4_with_bad_options_is_einval() {
    let mut status = 0;
    assert_errno!(sys!(SYS_wait4, -1, &mut status as *mut i32, 0x100, 0), EINVAL);
}

fn waitid_reports_pid_status_and_cld_exited() {
    let pid = fork_child(|| 42);
    let mut info: siginfo_t = unsafe { std::mem::zeroed() };
    let r = sys!(SYS_waitid, P_PID, pid, &mut info as *mut siginfo_t, WEXITED, 0).unwrap();
    assert_eq!(r, 0);
    assert_eq!(info.si_signo, SIGCHLD);
    assert_eq!(info.si_code, CLD_EXITED);
    assert_eq!(unsafe { info.si_pid() }, pid);
    assert_eq!(unsafe { info.si_status() }, 42);
    // Reaped: nothing left to wait for.
    assert_errno!(sys!(SYS_waitid, P_PID, pid, &mut info as *mut siginfo_t, WEXITED, 0), ECHILD);
}

fn waitid_reports_cld_killed_with_signal() {
    let pid = fork_child(|| loop {
        unsafe { pause() };
    });
    kill(pid, SIGKILL).unwrap();
    let mut info: siginfo_t = unsafe { std::mem::zeroed() };
    sys!(SYS_waitid, P_PID, pid, &mut info as *mut siginfo_t, WEXITED, 0).unwrap();
    assert_eq!(info.si_code, CLD_KILLED);
    assert_eq!(unsafe { info.si_status() }, SIGKILL);
}

fn wnohang_on_running_child_returns_zero() {
    let (r, w) = pipe(0).unwrap();
    let pid = fork_child(|| {
        let _ = close(w);
        read(r, &mut [0u8; 1]).unwrap() as i32 // blocks until the parent closes w
    });
    let mut status = 0;
    assert_eq!(sys!(SYS_wait4, pid, &mut status as *mut i32, WNOHANG, 0).unwrap(), 0);
    close(w).unwrap();
    assert_eq!(wait_child(pid), Exit::Code(0));
    close(r).unwrap();
}

fn wait_with_no_children_is_echild() {
    // In a fresh child, which certainly has no children of its own.
    run_in_child(|| {
        let mut status = 0;
        assert_errno!(sys!(SYS_wait4, -1, &mut status as *mut i32, 0, 0), ECHILD);
        assert_errno!(sys!(SYS_wait4, -1, &mut status as *mut i32, WNOHANG, 0), ECHILD);
    });
}

fn unreaped_zombie_keeps_its_pid_until_reaped() {
    let pid = fork_child(|| 0);
    // Wait until it has exited, without reaping it (WNOWAIT).
    let mut info: siginfo_t = unsafe { std::mem::zeroed() };
    sys!(SYS_waitid, P_PID, pid, &mut info as *mut siginfo_t, WEXITED | WNOWAIT, 0).unwrap();
    assert_eq!(unsafe { info.si_pid() }, pid);
    kill(pid, 0).expect("a zombie still exists");
    assert_eq!(wait_child(pid), Exit::Code(0));
    assert_errno!(kill(pid, 0), ESRCH);
}

/// The grandchild's parent exits; the grandchild then has another parent (init, or a
/// subreaper on some hosts, so the test only checks it is no longer the dead one).
fn orphaned_grandchild_is_reparented() {
    let (r, w) = pipe(0).unwrap();
    let child = fork_child(|| {
        let me = getpid();
        fork_child(|| {
            wait_until(5000, || getppid() != me);
            write(w, &[me.to_ne_bytes(), getppid().to_ne_bytes()].concat()).unwrap();
            0
        });
        0
    });
    close(w).unwrap();
    assert_eq!(wait_child(child), Exit::Code(0));
    let mut buf = [0u8; 8];
    assert_eq!(read_full(r, &mut buf).unwrap(), 8);
    close(r).unwrap();
    let old = i32::from_ne_bytes(buf[..4].try_into().unwrap());
    let new = i32::from_ne_bytes(buf[4..].try_into().unwrap());
    assert_eq!(old, child);
    assert_ne!(new, child, "still the dead parent after 5 s");
    assert!(new > 0);
}

fn gettid_equals_getpid_in_main_thread() {
    assert_eq!(sys!(SYS_gettid).unwrap(), sys!(SYS_getpid).unwrap());
}

fn setsid_in_child_starts_new_session_and_group() {
    run_in_child(|| {
        let pid = getpid() as i64;
        assert_eq!(sys!(SYS_setsid).unwrap(), pid);
        assert_eq!(sys!(SYS_getsid, 0).unwrap(), pid);
        assert_eq!(sys!(SYS_getpgid, 0).unwrap(), pid);
        assert_errno!(sys!(SYS_setsid), EPERM); // already a group leader
    });
}

fn kill_signal_zero_on_self_succeeds() {
    assert_eq!(kill(getpid(), 0).unwrap(), 0);
}

fn kill_nonexistent_pid_is_esrch() {
    // A pid that existed and was reaped: nothing has it now (pids are not reused at once).
    // Signal 0 only checks, so a reused pid would not be harmed.
    let pid = fork_child(|| 0);
    wait_child(pid);
    assert_errno!(kill(pid, 0), ESRCH);
}

fn kill_with_bad_signal_is_einval() {
    assert_errno!(kill(getpid(), 65), EINVAL);
    assert_errno!(kill(getpid(), -1), EINVAL);
}

fn execve_passes_argv_and_envp() {
    let exit = child_exit(|| {
        let argv = ["first-arg", CHILD_MARKER, "args", "one", "two words", ""];
        execve(exe_path(), &argv, &["UT_MARK=42", "SECOND=x y"]);
        127
    });
    assert_eq!(exit, Exit::Code(0), "2: argv[0], 3: args, 4: environment differ");
}

fn execve_closes_cloexec_fds_and_keeps_others() {
    let exit = child_exit(|| {
        let keep = open("/dev/null", O_RDONLY, 0).unwrap();
        let closed = open("/dev/null", O_RDONLY | O_CLOEXEC, 0).unwrap();
        let (k, c) = (keep.to_string(), closed.to_string());
        execve(exe_path(), &["fds", CHILD_MARKER, "fds", &k, &c], &[]);
        127
    });
    assert_eq!(exit, Exit::Code(0), "2: plain fd closed, 3: O_CLOEXEC fd left open");
}

extern "C" fn noop_handler(_: c_int) {}

fn execve_resets_handlers_but_keeps_ignored_and_mask() {
    let exit = child_exit(|| {
        set_handler(SIGUSR1, handler(noop_handler), 0, &[]).unwrap();
        set_handler(SIGUSR2, SIG_IGN, 0, &[]).unwrap();
        sigprocmask(SIG_BLOCK, sigbit(SIGHUP)).unwrap();
        execve(exe_path(), &["signals", CHILD_MARKER, "signals"], &[]);
        127
    });
    assert_eq!(exit, Exit::Code(0), "2: handler kept, 3: SIG_IGN lost, 4: mask lost");
}

fn execve_of_missing_file_is_enoent() {
    let dir = TempDir::new();
    let p = cstr(&dir.join("missing"));
    assert_eq!(execve(&p, &["missing"], &[]), Errno(ENOENT));
}

fn execve_of_non_elf_file_is_enoexec() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let p = dir.file("garbage", b"\x01\x02 this is neither ELF nor a #! script\n");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(execve(&cstr(&p), &["garbage"], &[]), Errno(ENOEXEC));
}

/// A minimal x86_64 ELF executable whose PT_INTERP holds `interp` (`p_filesz` its length
/// unless `filesz` says otherwise), with one PT_LOAD over the whole file: exec fails at the
/// interpreter before anything of it runs.
fn elf_with_interp(interp: &[u8], filesz: Option<u64>) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let path_at = EHDR + 2 * PHDR;
    let mut f = vec![0u8; path_at];
    f.extend_from_slice(interp);
    let len = f.len() as u64;
    let put = |f: &mut Vec<u8>, at: usize, v: &[u8]| f[at..at + v.len()].copy_from_slice(v);
    put(&mut f, 0, b"\x7fELF\x02\x01\x01");
    put(&mut f, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut f, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut f, 20, &1u32.to_le_bytes());
    put(&mut f, 24, &0x40_0000u64.to_le_bytes()); // e_entry
    put(&mut f, 32, &(EHDR as u64).to_le_bytes()); // e_phoff
    put(&mut f, 52, &(EHDR as u16).to_le_bytes());
    put(&mut f, 54, &(PHDR as u16).to_le_bytes());
    put(&mut f, 56, &2u16.to_le_bytes());
    // PT_INTERP
    let p = EHDR;
    put(&mut f, p, &3u32.to_le_bytes());
    put(&mut f, p + 4, &4u32.to_le_bytes());
    put(&mut f, p + 8, &(path_at as u64).to_le_bytes());
    put(&mut f, p + 16, &(0x40_0000 + path_at as u64).to_le_bytes());
    put(&mut f, p + 24, &(0x40_0000 + path_at as u64).to_le_bytes());
    put(&mut f, p + 32, &filesz.unwrap_or(interp.len() as u64).to_le_bytes());
    put(&mut f, p + 40, &(interp.len() as u64).to_le_bytes());
    put(&mut f, p + 48, &1u64.to_le_bytes());
    // PT_LOAD, R+X, the whole file at 0x400000
    let p = EHDR + PHDR;
    put(&mut f, p, &1u32.to_le_bytes());
    put(&mut f, p + 4, &5u32.to_le_bytes());
    put(&mut f, p + 16, &0x40_0000u64.to_le_bytes());
    put(&mut f, p + 24, &0x40_0000u64.to_le_bytes());
    put(&mut f, p + 32, &len.to_le_bytes());
    put(&mut f, p + 40, &len.to_le_bytes());
    put(&mut f, p + 48, &0x1000u64.to_le_bytes());
    f
}

/// Writes `elf` as an executable in `dir` and execs it: the errno.
fn execve_image(dir: &TempDir, elf: &[u8]) -> Errno {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.file("dynamic", elf);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    execve(&cstr(&p), &["dynamic"], &[])
}

fn execve_with_a_missing_interpreter_is_enoent() {
    let dir = TempDir::new();
    let interp = format!("{}\0", dir.join("no-such-ld.so"));
    assert_eq!(execve_image(&dir, &elf_with_interp(interp.as_bytes(), None)), Errno(ENOENT));
}

fn execve_with_a_directory_as_interpreter_is_eacces() {
    let dir = TempDir::new();
    let interp = format!("{}\0", dir.path.to_str().unwrap());
    assert_eq!(execve_image(&dir, &elf_with_interp(interp.as_bytes(), None)), Errno(EACCES));
}

fn execve_with_an_interpreter_path_not_ending_in_nul_is_enoexec() {
    let dir = TempDir::new();
    assert_eq!(execve_image(&dir, &elf_with_interp(b"/lib/ld.so", None)), Errno(ENOEXEC));
}

fn execve_with_a_one_byte_interpreter_path_is_enoexec() {
    let dir = TempDir::new();
    assert_eq!(execve_image(&dir, &elf_with_interp(b"\0", None)), Errno(ENOEXEC));
}

fn execve_with_an_interpreter_path_past_the_end_of_the_file_is_eio() {
    let dir = TempDir::new();
    assert_eq!(execve_image(&dir, &elf_with_interp(b"/lib/ld.so\0", Some(64))), Errno(EIO));
}

/// An executable file `name` in `dir` holding `data`: the interpreter path for its PT_INTERP.
fn interpreter_file(dir: &TempDir, name: &str, data: &[u8]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.file(name, data);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{p}\0")
}

fn execve_with_an_interpreter_shorter_than_an_elf_header_is_eio() {
    let dir = TempDir::new();
    let interp = interpreter_file(&dir, "short-ld.so", b"\x7fELF\x02\x01\x01");
    assert_eq!(execve_image(&dir, &elf_with_interp(interp.as_bytes(), None)), Errno(EIO));
}

fn execve_with_an_interpreter_that_is_not_elf_is_elibbad() {
    let dir = TempDir::new();
    let interp = interpreter_file(&dir, "garbage-ld.so", &[b'x'; 256]);
    assert_eq!(execve_image(&dir, &elf_with_interp(interp.as_bytes(), None)), Errno(ELIBBAD));
}

fn execve_of_directory_is_eacces() {
    let dir = TempDir::new();
    assert_eq!(execve(&cstr(dir.path.to_str().unwrap()), &["dir"], &[]), Errno(EACCES));
}

fn execve_with_bad_path_pointer_is_efault() {
    let argv = [std::ptr::null::<c_char>()];
    assert_errno!(sys!(SYS_execve, 1, argv.as_ptr(), argv.as_ptr()), EFAULT);
}

fn exit_group_from_secondary_thread_ends_process() {
    let exit = child_exit(|| {
        std::thread::spawn(|| sys!(SYS_exit_group, 9));
        loop {
            sleep_ms(1000);
        }
    });
    assert_eq!(exit, Exit::Code(9));
}

/// A thread's raw `exit(3)` ends that thread only: the process goes on to exit with 0.
fn exit_of_secondary_thread_leaves_process_running() {
    let exit = child_exit(|| {
        let (r, w) = pipe(0).unwrap();
        std::thread::spawn(move || {
            write(w, b"x").unwrap();
            sys!(SYS_exit, 3)
        });
        read(r, &mut [0u8; 1]).unwrap();
        sleep_ms(20); // give a wrong exit time to take the whole process down
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

/// The main thread exits; the other thread goes on, reports back, then ends the process.
fn exit_of_main_thread_leaves_other_threads_running() {
    let (r, w) = pipe(0).unwrap();
    let pid = fork_child(|| {
        std::thread::spawn(move || {
            sleep_ms(30);
            write(w, b"x").unwrap();
            sys!(SYS_exit_group, 4)
        });
        let _ = sys!(SYS_exit, 0);
        unreachable!()
    });
    close(w).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(read_full(r, &mut b).unwrap(), 1, "the surviving thread did not report");
    close(r).unwrap();
    assert_eq!(wait_child(pid), Exit::Code(4));
}

/// A shared futex in MAP_SHARED memory meets across processes: the key is the
/// shared object and offset, not the address space (Linux's get_futex_key).
fn futex_wakes_a_waiter_in_another_process_through_shared_memory() {
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    let word = page as usize;
    user_tests::shared_futex_meets(word, move || word);
    unsafe { libc::munmap(page, 4096) };
}

/// execve in a non-leader thread (Linux's de_thread): the other threads are
/// gone, the new image runs alone under the process's pid, as its leader.
fn execve_from_a_secondary_thread_replaces_the_whole_process() {
    let exit = child_exit(|| {
        let pid = getpid().to_string();
        // A sleeping sibling must be taken down too.
        std::thread::spawn(|| loop {
            sleep_ms(1000);
        });
        let t = std::thread::spawn(move || {
            execve(exe_path(), &["exec-from-thread", CHILD_MARKER, "exec-from-thread", &pid], &[]);
            50
        });
        t.join().unwrap_or(51)
    });
    assert_eq!(exit, Exit::Code(0));
}
