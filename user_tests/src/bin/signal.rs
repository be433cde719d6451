//! Signals: rt_sigaction, delivery and rt_sigreturn, masks and pending sets, sigaltstack,
//! default actions, SIGSEGV siginfo, SIGCHLD, interrupted system calls, stop/continue,
//! rt_sigtimedwait.

use libc::*;
use std::arch::asm;
use std::arch::x86_64::{__m128i, _mm_set_epi64x};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use user_tests::{
    assert_errno, child_exit, close, current_sigmask, fork_child, handler, pipe, raise, read, run_tests, send_signals,
    set_handler, sigbit, siginfo_handler, sigprocmask, sys, tests, wait_child, wait_until, write, Exit, KSigaction,
    SA_RESTORER, SEGV_MAPERR,
};

fn main() {
    run_tests(
        "signal",
        tests![
            rt_sigaction_returns_previous_action,
            rt_sigaction_with_wrong_sigsetsize_is_einval,
            sigaction_on_sigkill_or_sigstop_is_einval,
            sigaction_with_bad_signal_number_is_einval,
            handler_runs_and_returns,
            siginfo_handler_gets_sender_pid_and_si_user,
            registers_and_red_zone_survive_handler,
            handler_runs_with_signal_and_sa_mask_blocked,
            sa_nodefer_leaves_signal_unblocked_in_handler,
            sa_resethand_restores_default_after_delivery,
            blocked_signal_is_delivered_when_unblocked,
            two_signals_unblocked_together_both_run_before_the_call_returns,
            sigpending_lists_blocked_pending_signals,
            sigprocmask_cannot_block_sigkill_or_sigstop,
            sigprocmask_with_bad_how_is_einval,
            ignoring_a_pending_signal_discards_it,
            standard_signals_coalesce_but_realtime_signals_queue,
            handler_runs_on_sigaltstack,
            sigaltstack_smaller_than_minsigstksz_is_enomem,
            sigterm_default_action_terminates_with_signal_15,
            sigusr1_default_action_terminates,
            sigchld_default_action_is_ignore,
            abort_terminates_with_sigabrt,
            sigsegv_from_null_read_has_si_addr_zero_and_segv_maperr,
            sigchld_is_delivered_to_parent_when_child_exits,
            sigstop_stops_child_and_sigcont_resumes_it,
            sigtstp_stops_a_group_whose_parent_is_outside_it,
            sigtstp_in_an_orphaned_process_group_is_discarded,
            orphaning_a_group_with_a_stopped_member_sends_it_sighup_and_sigcont,
            sigsuspend_waits_for_a_signal_and_returns_eintr,
            sigtimedwait_takes_a_pending_blocked_signal_with_its_siginfo,
            sigtimedwait_with_a_zero_timeout_and_nothing_pending_is_eagain,
            sigtimedwait_gives_eagain_when_the_timeout_passes,
            sigtimedwait_takes_a_signal_another_process_sends_while_it_waits,
            sigtimedwait_takes_a_fatal_signal_without_dying,
            sigtimedwait_ended_by_another_caught_signal_is_eintr,
            sigtimedwait_with_a_bad_size_or_timeout_is_einval,
            ppoll_with_a_sigmask_takes_a_blocked_pending_signal,
            proc_status_shows_blocked_ignored_and_caught_signals,
            read_interrupted_by_handler_is_eintr,
            sa_restart_restarts_interrupted_read,
            shell_reports_death_by_signal_as_128_plus_signal,
        ],
    )
}

/// Counts deliveries per signal number (1..=64) for [`count_handler`].
static COUNTS: [AtomicUsize; 65] = [const { AtomicUsize::new(0) }; 65];

extern "C" fn count_handler(sig: c_int) {
    COUNTS[sig as usize].fetch_add(1, SeqCst);
}

fn count(sig: i32) -> usize {
    COUNTS[sig as usize].load(SeqCst)
}

/// Installs [`count_handler`] for `sig` with `flags`, resetting its count.
fn count_signal(sig: i32, flags: i32) {
    COUNTS[sig as usize].store(0, SeqCst);
    set_handler(sig, handler(count_handler), flags, &[]).unwrap();
}

fn default(sig: i32) {
    set_handler(sig, SIG_DFL, 0, &[]).unwrap();
}

fn rt_sigaction(sig: i32, act: Option<&KSigaction>) -> Result<KSigaction, user_tests::Errno> {
    let mut old = KSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    let act = act.map_or(std::ptr::null(), |a| a as *const KSigaction);
    sys!(SYS_rt_sigaction, sig, act, &mut old as *mut KSigaction, 8)?;
    Ok(old)
}

fn getpid() -> i32 {
    sys!(SYS_getpid).unwrap() as i32
}

fn sigpending() -> u64 {
    let mut set = 0u64;
    sys!(SYS_rt_sigpending, &mut set as *mut u64, 8).unwrap();
    set
}

/// Installs actions with the raw call (never delivered: SIGURG is ignored by default, and
/// the action is reset before returning) and checks the old one comes back unchanged.
fn rt_sigaction_returns_previous_action() {
    let first = KSigaction {
        handler: handler(count_handler),
        flags: (SA_RESTORER | SA_SIGINFO | SA_RESTART) as u64,
        restorer: 0x1234_5000,
        mask: sigbit(SIGUSR2),
    };
    let second = KSigaction { handler: SIG_IGN, flags: SA_RESTORER as u64, restorer: 0x1234_5000, mask: 0 };
    let original = rt_sigaction(SIGURG, Some(&first)).unwrap();
    assert_eq!(original.handler, SIG_DFL);
    assert_eq!(rt_sigaction(SIGURG, Some(&second)).unwrap(), first);
    assert_eq!(rt_sigaction(SIGURG, None).unwrap(), second, "a query returns the current action");
    rt_sigaction(SIGURG, Some(&original)).unwrap();
}

fn rt_sigaction_with_wrong_sigsetsize_is_einval() {
    let mut old = KSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    assert_errno!(sys!(SYS_rt_sigaction, SIGUSR1, 0, &mut old as *mut KSigaction, 4), EINVAL);
}

fn sigaction_on_sigkill_or_sigstop_is_einval() {
    let act = KSigaction { handler: SIG_IGN, flags: 0, restorer: 0, mask: 0 };
    assert_errno!(rt_sigaction(SIGKILL, Some(&act)), EINVAL);
    assert_errno!(rt_sigaction(SIGSTOP, Some(&act)), EINVAL);
    assert_eq!(rt_sigaction(SIGKILL, None).unwrap().handler, SIG_DFL, "querying is allowed");
}

fn sigaction_with_bad_signal_number_is_einval() {
    assert_errno!(rt_sigaction(0, None), EINVAL);
    assert_errno!(rt_sigaction(65, None), EINVAL);
}

fn handler_runs_and_returns() {
    count_signal(SIGUSR1, 0);
    raise(SIGUSR1);
    assert_eq!(count(SIGUSR1), 1);
    raise(SIGUSR1);
    assert_eq!(count(SIGUSR1), 2, "the handler stays installed");
    default(SIGUSR1);
}

static INFO: [AtomicI32; 5] = [const { AtomicI32::new(0) }; 5];

extern "C" fn record_info(sig: c_int, info: *mut siginfo_t, _: *mut c_void) {
    let info = unsafe { &*info };
    let fields = [sig, info.si_signo, info.si_code, unsafe { info.si_pid() }, unsafe { info.si_uid() } as i32];
    for (slot, v) in INFO.iter().zip(fields) {
        slot.store(v, SeqCst);
    }
}

fn siginfo_handler_gets_sender_pid_and_si_user() {
    set_handler(SIGUSR2, siginfo_handler(record_info), SA_SIGINFO, &[]).unwrap();
    sys!(SYS_kill, getpid(), SIGUSR2).unwrap();
    default(SIGUSR2);
    let got: Vec<i32> = INFO.iter().map(|v| v.load(SeqCst)).collect();
    let uid = sys!(SYS_getuid).unwrap() as i32;
    assert_eq!(got, [SIGUSR2, SIGUSR2, SI_USER, getpid(), uid], "sig, si_signo, si_code, si_pid, si_uid");
}

/// Overwrites registers the interrupted code may still be using.
extern "C" fn clobber_handler(_: c_int) {
    unsafe {
        asm!(
            "mov rdx, -1", "mov r8, -1", "mov r9, -1", "mov r10, -1",
            "mov r12, -1", "mov r13, -1", "mov r14, -1", "mov r15, -1",
            "pcmpeqd xmm0, xmm0", "pcmpeqd xmm8, xmm8", "pcmpeqd xmm15, xmm15",
            out("rdx") _, out("r8") _, out("r9") _, out("r10") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            out("xmm0") _, out("xmm8") _, out("xmm15") _,
        );
    }
}

/// rt_sigreturn restores every register (not just the callee-saved ones, since a signal
/// may arrive anywhere), including SSE registers and rbx, and the signal frame is built
/// below the 128-byte red zone the interrupted code may use without moving rsp.
fn registers_and_red_zone_survive_handler() {
    set_handler(SIGUSR1, handler(clobber_handler), 0, &[]).unwrap();
    let (pid, tid) = (getpid() as u64, sys!(SYS_gettid).unwrap() as u64);
    let pattern = |i: u64| 0x0123_4567_89ab_0000 + i;
    let mut gp = [pattern(1), pattern(2), pattern(3), pattern(4), pattern(5), pattern(6), pattern(7)];
    let (rbx, red_zone): (u64, u64);
    let (mut rdi, mut rsi, mut rdx) = (pid, tid, SIGUSR1 as u64);
    let mut x: [__m128i; 3] = unsafe { [_mm_set_epi64x(11, 12), _mm_set_epi64x(13, 14), _mm_set_epi64x(15, 16)] };
    let ret: i64;
    // rbx is reserved by the compiler, so it is saved and restored by hand; rcx and r11
    // (clobbered by `syscall` anyway) carry results out.
    unsafe {
        asm!(
            "push rbx",
            "sub rsp, 256",
            "mov rbx, 0x5a5a",
            "mov qword ptr [rsp - 8], 0x7e7e", // in the red zone below rsp
            "syscall",
            "mov rcx, rax",
            "mov rax, qword ptr [rsp - 8]",
            "mov r11, rbx",
            "add rsp, 256",
            "pop rbx",
            inlateout("rax") SYS_tgkill => red_zone,
            lateout("rcx") ret,
            lateout("r11") rbx,
            inout("rdi") rdi, inout("rsi") rsi, inout("rdx") rdx,
            inout("r8") gp[0], inout("r9") gp[1], inout("r10") gp[2],
            inout("r12") gp[3], inout("r13") gp[4], inout("r14") gp[5], inout("r15") gp[6],
            inout("xmm0") x[0], inout("xmm8") x[1], inout("xmm15") x[2],
        );
    }
    default(SIGUSR1);
    assert_eq!(ret, 0);
    assert_eq!((rdi, rsi, rdx), (pid, tid, SIGUSR1 as u64), "argument registers");
    assert_eq!(gp, std::array::from_fn(|i| pattern(i as u64 + 1)), "r8-r10, r12-r15");
    assert_eq!(rbx, 0x5a5a, "rbx");
    assert_eq!(red_zone, 0x7e7e, "the red zone was overwritten");
    let x: [[i64; 2]; 3] = unsafe { std::mem::transmute(x) };
    assert_eq!(x, [[12, 11], [14, 13], [16, 15]], "xmm0, xmm8, xmm15");
}

static MASK_IN_HANDLER: AtomicU64 = AtomicU64::new(0);

extern "C" fn record_mask(_: c_int) {
    MASK_IN_HANDLER.store(current_sigmask(), SeqCst);
}

fn handler_runs_with_signal_and_sa_mask_blocked() {
    let before = current_sigmask();
    set_handler(SIGUSR1, handler(record_mask), 0, &[SIGUSR2]).unwrap();
    raise(SIGUSR1);
    default(SIGUSR1);
    let inside = MASK_IN_HANDLER.load(SeqCst);
    assert_eq!(inside, before | sigbit(SIGUSR1) | sigbit(SIGUSR2));
    assert_eq!(current_sigmask(), before, "rt_sigreturn restores the mask");
}

fn sa_nodefer_leaves_signal_unblocked_in_handler() {
    set_handler(SIGUSR1, handler(record_mask), SA_NODEFER, &[]).unwrap();
    raise(SIGUSR1);
    default(SIGUSR1);
    assert_eq!(MASK_IN_HANDLER.load(SeqCst) & sigbit(SIGUSR1), 0);
}

fn sa_resethand_restores_default_after_delivery() {
    count_signal(SIGUSR1, SA_RESETHAND);
    raise(SIGUSR1);
    assert_eq!(count(SIGUSR1), 1);
    assert_eq!(rt_sigaction(SIGUSR1, None).unwrap().handler, SIG_DFL);
}

fn blocked_signal_is_delivered_when_unblocked() {
    count_signal(SIGUSR1, 0);
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
    raise(SIGUSR1);
    assert_eq!(count(SIGUSR1), 0, "delivered while blocked");
    sigprocmask(SIG_SETMASK, old).unwrap(); // delivered on the way back from this call
    assert_eq!(count(SIGUSR1), 1);
    default(SIGUSR1);
}

/// Two pending signals unblocked by one sigprocmask both run before the code after it: the
/// first on the way back from sigprocmask, the second on the way back from the first's
/// sigreturn (the return path keeps looking while a deliverable signal is left).
fn two_signals_unblocked_together_both_run_before_the_call_returns() {
    count_signal(SIGUSR1, 0);
    count_signal(SIGUSR2, 0);
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGUSR1) | sigbit(SIGUSR2)).unwrap();
    raise(SIGUSR1);
    raise(SIGUSR2);
    assert_eq!((count(SIGUSR1), count(SIGUSR2)), (0, 0), "delivered while blocked");
    sigprocmask(SIG_SETMASK, old).unwrap();
    assert_eq!((count(SIGUSR1), count(SIGUSR2)), (1, 1));
    default(SIGUSR1);
    default(SIGUSR2);
}

fn sigpending_lists_blocked_pending_signals() {
    count_signal(SIGUSR2, 0);
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGUSR2)).unwrap();
    assert_eq!(sigpending() & sigbit(SIGUSR2), 0);
    raise(SIGUSR2);
    assert_eq!(sigpending() & sigbit(SIGUSR2), sigbit(SIGUSR2));
    sigprocmask(SIG_SETMASK, old).unwrap();
    assert_eq!(sigpending() & sigbit(SIGUSR2), 0, "delivered, so no longer pending");
    assert_errno!(sys!(SYS_rt_sigpending, 1, 8), EFAULT);
    default(SIGUSR2);
}

fn sigprocmask_cannot_block_sigkill_or_sigstop() {
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGKILL) | sigbit(SIGSTOP) | sigbit(SIGUSR1)).unwrap();
    let now = current_sigmask();
    sigprocmask(SIG_SETMASK, old).unwrap();
    assert_eq!(now & (sigbit(SIGKILL) | sigbit(SIGSTOP)), 0, "silently left unblocked");
    assert_ne!(now & sigbit(SIGUSR1), 0);
}

fn sigprocmask_with_bad_how_is_einval() {
    let set = 0u64;
    assert_errno!(sys!(SYS_rt_sigprocmask, 99, &set as *const u64, 0, 8), EINVAL);
    assert_errno!(sys!(SYS_rt_sigprocmask, SIG_BLOCK, &set as *const u64, 0, 4), EINVAL);
}

fn ignoring_a_pending_signal_discards_it() {
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
    raise(SIGUSR1);
    assert_ne!(sigpending() & sigbit(SIGUSR1), 0);
    set_handler(SIGUSR1, SIG_IGN, 0, &[]).unwrap();
    let pending = sigpending();
    sigprocmask(SIG_SETMASK, old).unwrap();
    default(SIGUSR1);
    assert_eq!(pending & sigbit(SIGUSR1), 0);
}

/// While blocked, three SIGUSR2 collapse into one delivery; three of real-time signal 40
/// are queued and all delivered.
fn standard_signals_coalesce_but_realtime_signals_queue() {
    const RT: i32 = 40;
    count_signal(SIGUSR2, 0);
    count_signal(RT, 0);
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGUSR2) | sigbit(RT)).unwrap();
    for _ in 0..3 {
        raise(SIGUSR2);
        raise(RT);
    }
    sigprocmask(SIG_SETMASK, old).unwrap();
    default(SIGUSR2);
    default(RT);
    assert_eq!((count(SIGUSR2), count(RT)), (1, 3));
}

static ALT_LOCAL: AtomicUsize = AtomicUsize::new(0);
static ALT_FLAGS: AtomicI32 = AtomicI32::new(-1);

extern "C" fn record_stack(_: c_int) {
    let local = 0u8;
    ALT_LOCAL.store(std::hint::black_box(&local) as *const u8 as usize, SeqCst);
    let mut cur: stack_t = unsafe { std::mem::zeroed() };
    sys!(SYS_sigaltstack, 0, &mut cur as *mut stack_t).unwrap();
    ALT_FLAGS.store(cur.ss_flags, SeqCst);
}

fn handler_runs_on_sigaltstack() {
    let mut stack = vec![0u8; 64 * 1024];
    let range = stack.as_ptr() as usize..stack.as_ptr() as usize + stack.len();
    let new = stack_t { ss_sp: stack.as_mut_ptr() as *mut c_void, ss_flags: 0, ss_size: stack.len() };
    // The Rust runtime has its own alternate stack (for stack overflow reports): keep it.
    let mut old: stack_t = unsafe { std::mem::zeroed() };
    sys!(SYS_sigaltstack, &new as *const stack_t, &mut old as *mut stack_t).unwrap();
    set_handler(SIGUSR1, handler(record_stack), SA_ONSTACK, &[]).unwrap();
    raise(SIGUSR1);
    default(SIGUSR1);
    if old.ss_flags & SS_DISABLE != 0 {
        old.ss_size = MINSIGSTKSZ; // checked even when disabling
    }
    sys!(SYS_sigaltstack, &old as *const stack_t, 0).unwrap();
    let local = ALT_LOCAL.load(SeqCst);
    assert!(range.contains(&local), "handler local at {local:#x}, alternate stack {range:x?}");
    assert_eq!(ALT_FLAGS.load(SeqCst), SS_ONSTACK, "sigaltstack inside the handler");
}

fn sigaltstack_smaller_than_minsigstksz_is_enomem() {
    let mut stack = vec![0u8; 512];
    let new = stack_t { ss_sp: stack.as_mut_ptr() as *mut c_void, ss_flags: 0, ss_size: stack.len() };
    assert_errno!(sys!(SYS_sigaltstack, &new as *const stack_t, 0), ENOMEM);
}

/// A child that raises `sig` under its default action and exits with 0 if it survives.
fn raise_with_default_action(sig: i32) -> Exit {
    child_exit(|| {
        default(sig);
        raise(sig);
        0
    })
}

fn sigterm_default_action_terminates_with_signal_15() {
    assert_eq!(raise_with_default_action(SIGTERM), Exit::Signal(15));
}

fn sigusr1_default_action_terminates() {
    assert_eq!(raise_with_default_action(SIGUSR1), Exit::Signal(SIGUSR1));
}

fn sigchld_default_action_is_ignore() {
    assert_eq!(raise_with_default_action(SIGCHLD), Exit::Code(0));
}

fn abort_terminates_with_sigabrt() {
    assert_eq!(child_exit(|| std::process::abort()), Exit::Signal(SIGABRT));
}

/// Exits (there is no returning from this fault) with 42 if the fault was reported as a
/// read of an unmapped address 0, 43 for another address, 44 for another code.
extern "C" fn check_null_fault(_: c_int, info: *mut siginfo_t, _: *mut c_void) {
    let info = unsafe { &*info };
    let code = match (unsafe { info.si_addr() } as usize, info.si_code) {
        (0, SEGV_MAPERR) => 42,
        (0, _) => 44,
        _ => 43,
    };
    unsafe { _exit(code) };
}

fn sigsegv_from_null_read_has_si_addr_zero_and_segv_maperr() {
    let exit = child_exit(|| {
        set_handler(SIGSEGV, siginfo_handler(check_null_fault), SA_SIGINFO, &[]).unwrap();
        user_tests::load_byte(0) as i32
    });
    assert_eq!(exit, Exit::Code(42), "43: wrong si_addr, 44: wrong si_code");
}

extern "C" fn record_chld(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    record_info(sig, info, ctx);
    INFO[4].store(unsafe { (*info).si_status() }, SeqCst);
}

fn sigchld_is_delivered_to_parent_when_child_exits() {
    INFO[0].store(0, SeqCst);
    set_handler(SIGCHLD, siginfo_handler(record_chld), SA_SIGINFO | SA_RESTART, &[]).unwrap();
    let pid = fork_child(|| 5);
    wait_child(pid);
    let delivered = wait_until(2000, || INFO[0].load(SeqCst) == SIGCHLD);
    default(SIGCHLD);
    assert!(delivered, "no SIGCHLD");
    let got: Vec<i32> = INFO[2..].iter().map(|v| v.load(SeqCst)).collect();
    assert_eq!(got, [CLD_EXITED, pid, 5], "si_code, si_pid, si_status");
}

fn wait4_status(pid: i32, options: i32) -> i32 {
    let mut status = 0;
    assert_eq!(sys!(SYS_wait4, pid, &mut status as *mut i32, options, 0).unwrap(), pid as i64);
    status
}

fn sigstop_stops_child_and_sigcont_resumes_it() {
    let pid = fork_child(|| loop {
        unsafe { pause() };
    });
    sys!(SYS_kill, pid, SIGSTOP).unwrap();
    let status = wait4_status(pid, WUNTRACED);
    assert!(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP, "status {status:#x}");
    sys!(SYS_kill, pid, SIGCONT).unwrap();
    let status = wait4_status(pid, WCONTINUED);
    assert!(WIFCONTINUED(status), "status {status:#x}");
    sys!(SYS_kill, pid, SIGKILL).unwrap();
    assert_eq!(wait_child(pid), Exit::Signal(SIGKILL));
}

/// In its own group of the parent's session, a child's SIGTSTP stops it: the parent, in
/// another group, could continue it.
fn sigtstp_stops_a_group_whose_parent_is_outside_it() {
    let pid = fork_child(|| {
        sys!(SYS_setpgid, 0, 0).unwrap();
        raise(SIGTSTP);
        7
    });
    let status = wait4_status(pid, WUNTRACED);
    assert!(WIFSTOPPED(status) && WSTOPSIG(status) == SIGTSTP, "status {status:#x}");
    sys!(SYS_kill, pid, SIGCONT).unwrap();
    assert_eq!(wait_child(pid), Exit::Code(7));
}

/// After setsid the child's group is orphaned (its parent is in another session), so a
/// SIGTSTP with the default action is discarded: the child runs on and exits.
fn sigtstp_in_an_orphaned_process_group_is_discarded() {
    let pid = fork_child(|| {
        sys!(SYS_setsid).unwrap();
        raise(SIGTSTP);
        7
    });
    let status = wait4_status(pid, WUNTRACED);
    if WIFSTOPPED(status) {
        sys!(SYS_kill, pid, SIGKILL).unwrap();
        wait_child(pid);
        panic!("stopped by SIGTSTP in an orphaned group");
    }
    assert_eq!(Exit::from_status(status), Exit::Code(7));
}

static HUP_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn write_h(_: c_int) {
    let _ = write(HUP_FD.load(SeqCst), b"H");
}

/// A child leads its own group and has a stopped child in it; when the leader exits, the
/// group is orphaned with a stopped member, which gets SIGHUP (its handler runs) and
/// SIGCONT (it resumes and exits).
fn orphaning_a_group_with_a_stopped_member_sends_it_sighup_and_sigcont() {
    let (r, w) = pipe(O_CLOEXEC).unwrap();
    let leader = fork_child(|| {
        sys!(SYS_setpgid, 0, 0).unwrap();
        let member = fork_child(|| {
            HUP_FD.store(w, SeqCst);
            set_handler(SIGHUP, handler(write_h), 0, &[]).unwrap();
            sys!(SYS_kill, getpid(), SIGSTOP).unwrap();
            0
        });
        write(w, &member.to_ne_bytes()).unwrap();
        let status = wait4_status(member, WUNTRACED);
        assert!(WIFSTOPPED(status), "status {status:#x}");
        0
    });
    close(w).unwrap();
    assert_eq!(wait_child(leader), Exit::Code(0));
    let mut pid = [0u8; 4];
    assert_eq!(read(r, &mut pid).unwrap(), 4);
    let member = i32::from_ne_bytes(pid);
    let mut pfd = pollfd { fd: r, events: POLLIN, revents: 0 };
    let ready = sys!(SYS_poll, &mut pfd as *mut pollfd, 1, 10_000).unwrap();
    let mut got = [0u8; 1];
    let n = if ready == 1 { read(r, &mut got).unwrap() } else { 0 };
    close(r).unwrap();
    if n == 0 {
        sys!(SYS_kill, member, SIGKILL).unwrap();
    }
    assert_eq!(&got[..n], b"H", "no SIGHUP handler ran in the orphaned member");
}

fn sigsuspend_waits_for_a_signal_and_returns_eintr() {
    count_signal(SIGUSR1, 0);
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
    let parent = getpid();
    // Blocked until sigsuspend, so the signal cannot slip in before it.
    let pid = fork_child(|| sys!(SYS_kill, parent, SIGUSR1).unwrap() as i32);
    let wait_mask = old & !sigbit(SIGUSR1);
    let r = sys!(SYS_rt_sigsuspend, &wait_mask as *const u64, 8);
    let mask_after = current_sigmask();
    sigprocmask(SIG_SETMASK, old).unwrap();
    default(SIGUSR1);
    wait_child(pid);
    assert_errno!(r, EINTR);
    assert_eq!(count(SIGUSR1), 1);
    assert_ne!(mask_after & sigbit(SIGUSR1), 0, "sigsuspend restores the mask");
}

/// rt_sigtimedwait for the signals of `set`, waiting `ms` milliseconds (None: forever).
fn sigtimedwait(set: u64, info: Option<&mut siginfo_t>, ms: Option<i64>) -> Result<i64, user_tests::Errno> {
    let ts = ms.map(|ms| timespec { tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000 });
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const timespec);
    let info = info.map_or(std::ptr::null_mut(), |i| i as *mut siginfo_t);
    sys!(SYS_rt_sigtimedwait, &set as *const u64, info, tsp, 8)
}

fn sigtimedwait_takes_a_pending_blocked_signal_with_its_siginfo() {
    let exit = child_exit(|| {
        sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
        sys!(SYS_kill, getpid(), SIGUSR1).unwrap();
        let mut info: siginfo_t = unsafe { std::mem::zeroed() };
        assert_eq!(sigtimedwait(sigbit(SIGUSR1), Some(&mut info), Some(0)), Ok(SIGUSR1 as i64));
        assert_eq!((info.si_signo, info.si_code), (SIGUSR1, SI_USER));
        assert_eq!(unsafe { info.si_pid() }, getpid());
        let mut pending = 0u64;
        sys!(SYS_rt_sigpending, &mut pending as *mut u64, 8).unwrap();
        assert_eq!(pending, 0, "taken, no longer pending");
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

fn sigtimedwait_with_a_zero_timeout_and_nothing_pending_is_eagain() {
    assert_errno!(sigtimedwait(sigbit(SIGUSR1), None, Some(0)), EAGAIN);
}

fn sigtimedwait_gives_eagain_when_the_timeout_passes() {
    let exit = child_exit(|| {
        sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
        let start = std::time::Instant::now();
        assert_errno!(sigtimedwait(sigbit(SIGUSR1), None, Some(50)), EAGAIN);
        assert!(start.elapsed() >= std::time::Duration::from_millis(40), "{:?}", start.elapsed());
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

fn sigtimedwait_takes_a_signal_another_process_sends_while_it_waits() {
    let exit = child_exit(|| {
        sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
        let me = getpid();
        let sender = fork_child(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            sys!(SYS_kill, me, SIGUSR1).unwrap() as i32
        });
        let r = sigtimedwait(sigbit(SIGUSR1), None, None);
        wait_child(sender);
        assert_eq!(r, Ok(SIGUSR1 as i64));
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

/// SIGTERM's default action kills, but a blocked one a sigtimedwait is waiting for (and so
/// unblocks while it sleeps) is taken instead.
fn sigtimedwait_takes_a_fatal_signal_without_dying() {
    let exit = child_exit(|| {
        default(SIGTERM);
        sigprocmask(SIG_BLOCK, sigbit(SIGTERM)).unwrap();
        let me = getpid();
        let sender = fork_child(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            sys!(SYS_kill, me, SIGTERM).unwrap() as i32
        });
        let r = sigtimedwait(sigbit(SIGTERM), None, Some(5000));
        wait_child(sender);
        assert_eq!(r, Ok(SIGTERM as i64));
        assert_eq!(current_sigmask() & sigbit(SIGTERM), sigbit(SIGTERM), "the mask is back");
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

fn sigtimedwait_ended_by_another_caught_signal_is_eintr() {
    let exit = child_exit(|| {
        count_signal(SIGUSR2, SA_RESTART);
        sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
        let me = getpid();
        let sender = fork_child(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            sys!(SYS_kill, me, SIGUSR2).unwrap() as i32
        });
        // Even SA_RESTART does not restart it.
        let r = sigtimedwait(sigbit(SIGUSR1), None, Some(5000));
        wait_child(sender);
        assert_errno!(r, EINTR);
        assert_eq!(count(SIGUSR2), 1);
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

fn sigtimedwait_with_a_bad_size_or_timeout_is_einval() {
    let set = sigbit(SIGUSR1);
    let ts = timespec { tv_sec: 0, tv_nsec: 0 };
    assert_errno!(sys!(SYS_rt_sigtimedwait, &set as *const u64, 0, &ts as *const timespec, 4), EINVAL);
    let bad = timespec { tv_sec: 0, tv_nsec: 1_000_000_000 };
    assert_errno!(sys!(SYS_rt_sigtimedwait, &set as *const u64, 0, &bad as *const timespec, 8), EINVAL);
    assert_errno!(sys!(SYS_rt_sigtimedwait, 8usize, 0, &ts as *const timespec, 8), EFAULT);
}

/// ppoll's mask applies during the wait only: a signal pending but blocked
/// outside is delivered inside (EINTR, the handler ran), and the old mask is
/// back afterwards.
fn ppoll_with_a_sigmask_takes_a_blocked_pending_signal() {
    count_signal(SIGUSR1, 0);
    let old = sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
    sys!(SYS_kill, getpid(), SIGUSR1).unwrap();
    assert_eq!(count(SIGUSR1), 0, "blocked: still pending");
    let during = old & !sigbit(SIGUSR1);
    let ts = timespec { tv_sec: 5, tv_nsec: 0 };
    let r = sys!(SYS_ppoll, 0, 0, &ts as *const timespec, &during as *const u64, 8);
    let mask_after = current_sigmask();
    sigprocmask(SIG_SETMASK, old).unwrap();
    default(SIGUSR1);
    assert_errno!(r, EINTR);
    assert_eq!(count(SIGUSR1), 1);
    assert_ne!(mask_after & sigbit(SIGUSR1), 0, "the old mask is back");
}

/// A child that sends SIGUSR1 to us every 5 ms, `times` times (0: until killed), then
/// writes a byte to `w`.
fn signal_sender(times: usize, w: i32) -> i32 {
    let parent = getpid();
    fork_child(move || {
        send_signals(parent, SIGUSR1, if times == 0 { 1000 } else { times }, 5);
        write(w, b"x").unwrap();
        0
    })
}

fn read_interrupted_by_handler_is_eintr() {
    count_signal(SIGUSR1, 0); // no SA_RESTART
    let (r, w) = pipe(0).unwrap();
    let pid = signal_sender(0, w);
    let result = read(r, &mut [0u8; 1]); // nothing is ever written
    sys!(SYS_kill, pid, SIGKILL).unwrap();
    wait_child(pid);
    default(SIGUSR1);
    close(r).unwrap();
    close(w).unwrap();
    assert_errno!(result, EINTR);
}

fn sa_restart_restarts_interrupted_read() {
    count_signal(SIGUSR1, SA_RESTART);
    let (r, w) = pipe(0).unwrap();
    let pid = signal_sender(5, w);
    let mut b = [0u8; 1];
    let result = read(r, &mut b);
    wait_child(pid);
    default(SIGUSR1);
    close(r).unwrap();
    close(w).unwrap();
    assert_eq!(result, Ok(1), "read should restart after each handler");
    assert!(count(SIGUSR1) >= 1);
}

/// Shells report a command killed by signal N as status 128+N. Needs /bin/sh (busybox in
/// our kernel); without it only the wait status is checked.
fn shell_reports_death_by_signal_as_128_plus_signal() {
    use std::os::unix::process::ExitStatusExt;
    if !std::path::Path::new("/bin/sh").exists() {
        assert_eq!(raise_with_default_action(SIGTERM), Exit::Signal(SIGTERM));
        return;
    }
    let st = std::process::Command::new("/bin/sh").args(["-c", "kill -TERM $$"]).status().unwrap();
    assert_eq!(st.signal(), Some(SIGTERM));
    let out =
        std::process::Command::new("/bin/sh").args(["-c", "/bin/sh -c 'kill -TERM $$'; echo $?"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "143");
}

/// /proc/self/status renders the signal sets as hex masks, signal N at bit N-1.
fn proc_status_shows_blocked_ignored_and_caught_signals() {
    user_tests::run_in_child(|| {
        sigprocmask(SIG_BLOCK, sigbit(SIGUSR1)).unwrap();
        unsafe { signal(SIGUSR2, SIG_IGN) };
        count_signal(SIGTERM, 0);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let mask = |name: &str| {
            let v = status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_else(|| panic!("no {name}"));
            u64::from_str_radix(v.trim(), 16).unwrap()
        };
        assert_ne!(mask("SigBlk:") & sigbit(SIGUSR1), 0);
        assert_ne!(mask("SigIgn:") & sigbit(SIGUSR2), 0);
        assert_ne!(mask("SigCgt:") & sigbit(SIGTERM), 0);
        assert_eq!(mask("SigCgt:") & sigbit(SIGUSR2), 0);
    });
}
