//! Signals (Linux's kernel/signal.c and arch/x86/kernel/signal.c): actions,
//! masks, pending sets with their siginfo, delivery on the way back to user
//! mode through an `rt_sigframe`, and `rt_sigreturn`.

use super::task::Task;
use crate::arch::context::FpuState;
use crate::arch::trap::TrapFrame;
use crate::errno::*;
use crate::mm::usercopy::{copy_from_user, copy_to_user, read_val, write_val};
use alloc::collections::VecDeque;
use alloc::sync::Arc;

pub const SIGHUP: u32 = 1;
pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGABRT: u32 = 6;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGUSR1: u32 = 10;
pub const SIGSEGV: u32 = 11;
pub const SIGUSR2: u32 = 12;
pub const SIGPIPE: u32 = 13;
pub const SIGALRM: u32 = 14;
pub const SIGTERM: u32 = 15;
pub const SIGSTKFLT: u32 = 16;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGSTOP: u32 = 19;
pub const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
pub const SIGURG: u32 = 23;
pub const SIGXCPU: u32 = 24;
pub const SIGXFSZ: u32 = 25;
pub const SIGVTALRM: u32 = 26;
pub const SIGPROF: u32 = 27;
pub const SIGWINCH: u32 = 28;
pub const SIGIO: u32 = 29;
pub const SIGPWR: u32 = 30;
pub const SIGSYS: u32 = 31;
pub const NSIG: u32 = 64;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
pub const SS_AUTODISARM: u32 = 1 << 31;
pub const MINSIGSTKSZ: u64 = 2048;

// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_TKILL: i32 = -6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;
pub const ILL_ILLOPN: i32 = 2;
pub const FPE_INTDIV: i32 = 1;
pub const TRAP_BRKPT: i32 = 1;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

pub const fn sigmask(sig: u32) -> u64 {
    1 << (sig - 1)
}

/// Signals that can be neither caught, blocked nor ignored.
pub const UNBLOCKABLE: u64 = sigmask(SIGKILL) | sigmask(SIGSTOP);

/// `struct k_sigaction` as rt_sigaction passes it on x86_64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
crate::impl_pod!(SigAction);

/// Signal handlers as tasks share them (CLONE_SIGHAND).
pub type SigHandlersLock = crate::sync::SpinLock<SigHandlers, crate::sync::order::SigHandlers>;

#[derive(Clone)]
pub struct SigHandlers {
    pub actions: [SigAction; NSIG as usize],
}

impl Default for SigHandlers {
    fn default() -> Self {
        Self::new()
    }
}

impl SigHandlers {
    pub fn new() -> SigHandlers {
        SigHandlers { actions: [SigAction::default(); NSIG as usize] }
    }
    pub fn get(&self, sig: u32) -> SigAction {
        self.actions[sig as usize - 1]
    }
    /// execve: caught signals go back to default; ignored ones stay ignored.
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            let keep_ignored = a.handler == SIG_IGN;
            *a = SigAction { handler: if keep_ignored { SIG_IGN } else { SIG_DFL }, ..Default::default() };
        }
    }
}

/// `siginfo_t` (128 bytes), with the union fields this kernel fills.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    pub _pad: i32,
    /// si_pid / si_addr (first union word)
    pub field0: u64,
    /// si_status (for SIGCHLD, low half) / si_uid high
    pub field1: u64,
    pub rest: [u64; 12],
}
const _: () = assert!(core::mem::size_of::<SigInfo>() == 128);
crate::impl_pod!(SigInfo);

impl SigInfo {
    pub fn new(signo: u32, code: i32) -> SigInfo {
        SigInfo { signo: signo as i32, errno: 0, code, _pad: 0, field0: 0, field1: 0, rest: [0; 12] }
    }
    /// From kill()/tgkill(): sender's pid and uid.
    pub fn user(signo: u32, code: i32, pid: u32, uid: u32) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.field0 = pid as u64 | (uid as u64) << 32;
        s
    }
    /// A fault: si_addr.
    pub fn fault(signo: u32, code: i32, addr: u64) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.field0 = addr;
        s
    }
    /// SIGCHLD: si_pid, si_uid, si_status.
    pub fn child(code: i32, pid: u32, uid: u32, status: i32) -> SigInfo {
        let mut s = SigInfo::new(SIGCHLD, code);
        s.field0 = pid as u64 | (uid as u64) << 32;
        s.field1 = status as u32 as u64;
        s
    }
}

/// Pending signals: a set, and the siginfo of each (standard signals do not queue).
#[derive(Default)]
pub struct SigPending {
    pub set: u64,
    pub infos: VecDeque<SigInfo>,
}

impl SigPending {
    pub fn add(&mut self, info: SigInfo) {
        let m = sigmask(info.signo as u32);
        if self.set & m != 0 && (info.signo as u32) < 32 {
            return; // a standard signal already pending is not queued twice
        }
        self.set |= m;
        self.infos.push_back(info);
    }

    /// Takes the lowest-numbered pending signal not in `blocked`.
    pub fn take(&mut self, blocked: u64) -> Option<SigInfo> {
        let ready = self.set & !(blocked & !UNBLOCKABLE);
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() + 1;
        let i = self.infos.iter().position(|s| s.signo as u32 == sig)?;
        let info = self.infos.remove(i)?;
        if !self.infos.iter().any(|s| s.signo as u32 == sig) {
            self.set &= !sigmask(sig);
        }
        Some(info)
    }

    pub fn remove(&mut self, mask: u64) {
        self.set &= !mask;
        self.infos.retain(|s| mask & sigmask(s.signo as u32) == 0);
    }
}

#[derive(Clone, Copy, Default)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    pub flags: u32,
}

/// Per-task signal state.
#[derive(Default)]
pub struct SigState {
    pub blocked: u64,
    /// The mask to restore after a handler ran (rt_sigsuspend's old mask).
    pub saved_mask: Option<u64>,
    pub pending: SigPending,
    pub altstack: AltStack,
    /// The mask before rt_sigtimedwait unblocked the signals it waits for (Linux's
    /// `real_blocked`): those still count as blocked for being ignored or fatal on arrival.
    pub real_blocked: u64,
}

pub fn signal_pending(t: &Task) -> bool {
    let s = t.sig.lock();
    let shared = t.process.shared_pending.lock().set;
    (s.pending.set | shared) & !(s.blocked & !UNBLOCKABLE) != 0
}

/// A SIGKILL is pending (Linux's `fatal_signal_pending`): a loop whose length a user
/// controls stops with EINTR, the task dies on its way out.
pub fn fatal_signal_pending(t: &Task) -> bool {
    let own = t.sig.lock().pending.set;
    (own | t.process.shared_pending.lock().set) & sigmask(SIGKILL) != 0
}

/// Default action of a signal.
#[derive(PartialEq, Eq)]
enum Default_ {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

fn default_action(sig: u32) -> Default_ {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => Default_::Ignore,
        SIGCONT => Default_::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Default_::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS => {
            Default_::CoreDump
        }
        _ => Default_::Terminate,
    }
}

/// Whether a signal would be discarded on arrival (ignored, explicitly or by default).
/// Whether a signal sent to `t` is dropped at once (Linux's `sig_ignored`): a blocked one
/// never is, since its handler may change before it is unblocked (and a signalfd or
/// sigtimedwait may take it).
fn ignored(t: &Task, sig: u32) -> bool {
    let blocked = {
        let s = t.sig.lock();
        s.blocked | s.real_blocked
    };
    if sig == SIGKILL || sig == SIGSTOP || blocked & sigmask(sig) != 0 {
        return false;
    }
    let a = t.sighand().lock().get(sig);
    a.handler == SIG_IGN || (a.handler == SIG_DFL && default_action(sig) == Default_::Ignore)
}

/// Job-control side effects of generating a signal (Linux's `prepare_signal`):
/// SIGCONT resumes a stopped process (even if ignored or blocked) and
/// discards pending stop signals; a stop signal discards a pending SIGCONT.
fn prepare_signal(p: &Arc<super::task::Process>, sig: u32) {
    const STOP_MASK: u64 = sigmask(SIGSTOP) | sigmask(SIGTSTP) | sigmask(SIGTTIN) | sigmask(SIGTTOU);
    let threads = p.threads.lock().clone();
    if sig == SIGCONT {
        p.shared_pending.lock().remove(STOP_MASK);
        for t in &threads {
            t.sig.lock().pending.remove(STOP_MASK);
        }
        if p.stopped.swap(false, core::sync::atomic::Ordering::AcqRel) {
            *p.job_report.lock() = Some(super::task::JobReport::Continued);
            p.stop_wait.wake_all();
            notify_parent_job(p, CLD_CONTINUED, SIGCONT as i32);
        }
    } else if STOP_MASK & sigmask(sig) != 0 {
        p.shared_pending.lock().remove(sigmask(SIGCONT));
        for t in &threads {
            t.sig.lock().pending.remove(sigmask(SIGCONT));
        }
    }
}

/// SIGCHLD with CLD_STOPPED/CLD_CONTINUED to the parent, unless it set
/// SA_NOCLDSTOP; wakes its wait().
fn notify_parent_job(p: &Arc<super::task::Process>, code: i32, status: i32) {
    let Some(parent) = p.parent.lock().upgrade() else { return };
    let leader = parent.first_thread();
    let nocldstop = leader.is_some_and(|t| t.sighand().lock().get(SIGCHLD).flags & SA_NOCLDSTOP != 0);
    if !nocldstop {
        let uid = p.creds.lock().uid;
        send_to_process(&parent, SigInfo::child(code, p.pid, uid, status));
    }
    parent.child_wait.wake_all();
}

/// The default action of a stop signal (Linux's `do_signal_stop`): the
/// process stops, its parent hears of it, and this thread sleeps until
/// SIGCONT or SIGKILL.
fn do_signal_stop(t: &Arc<Task>, sig: u32) {
    let p = t.process.clone();
    if !p.stopped.swap(true, core::sync::atomic::Ordering::AcqRel) {
        *p.job_report.lock() = Some(super::task::JobReport::Stopped(sig));
        notify_parent_job(&p, CLD_STOPPED, sig as i32);
    }
    let _ = p.stop_wait.wait_until_killable(|| (!p.stopped.load(core::sync::atomic::Ordering::Acquire)).then_some(()));
}

/// Whether `sig`, taken by a thread that does not block it, ends the whole process at once
/// (Linux's `sig_fatal` less the core-dumping signals): SIGKILL, or no handler and a default
/// action of terminating, unless the process is stopped (then only SIGKILL acts at once; the
/// other stays pending until SIGCONT, as Linux's `wants_signal` skips stopped threads).
fn kills_group(t: &Task, sig: u32) -> bool {
    sig == SIGKILL
        || (default_action(sig) == Default_::Terminate
            && t.sig.lock().real_blocked & sigmask(sig) == 0
            && t.sighand().lock().get(sig).handler == SIG_DFL
            && !t.process.stopped.load(core::sync::atomic::Ordering::Acquire))
}

/// The fatal branch of Linux's `complete_signal`: the group's exit status becomes `sig`'s,
/// and every thread gets SIGKILL and wakes, from killable sleeps too, so that each returns
/// from its syscall and exits on the way out.
pub fn kill_group(p: &Arc<super::task::Process>, status: i32) {
    {
        let mut g = p.group_exit.lock();
        if g.is_none() {
            *g = Some(status);
        }
    }
    let threads = p.threads.lock().clone();
    for t in &threads {
        t.sig.lock().pending.add(SigInfo::new(SIGKILL, SI_KERNEL));
        super::sched::signal_wake_up(t, true);
    }
    // A stopped process must wake to die.
    p.stop_wait.wake_all();
}

/// Queues a signal for one thread and wakes it; false if it was ignored (dropped).
pub fn send_to_thread(t: &Arc<Task>, info: SigInfo) -> bool {
    let sig = info.signo as u32;
    prepare_signal(&t.process, sig);
    if ignored(t, sig) {
        return false;
    }
    t.sig.lock().pending.add(info);
    crate::fs::signalfd::SIGNALFD_WQ.wake_all();
    if t.sig.lock().blocked & sigmask(sig) == 0 && kills_group(t, sig) {
        kill_group(&t.process, super::exit::signaled_status(sig, false));
    } else {
        super::sched::signal_wake_up(t, false);
    }
    true
}

/// SIGKILL to every process but init (init has exited: the system goes down).
pub fn kill_all_but_init() {
    for p in super::task::all_processes().iter().filter(|p| p.pid != 1) {
        kill_group(p, super::exit::signaled_status(SIGKILL, false));
    }
}

/// A kernel-sent signal for every live process of group `pgid` (Linux's `kill_pgrp` with
/// `SEND_SIG_PRIV`): the terminal's signals.
pub fn kill_pgrp(pgid: super::task::Tid, sig: u32) {
    for p in super::exit::pgrp_members(pgid).iter().filter(|p| !p.is_zombie()) {
        send_to_process(p, SigInfo::new(sig, SI_KERNEL));
    }
}

/// Queues a process-directed signal and wakes a thread that can take it; false if it
/// was ignored (dropped) or the process has no thread left.
pub fn send_to_process(p: &Arc<super::task::Process>, info: SigInfo) -> bool {
    let sig = info.signo as u32;
    prepare_signal(p, sig);
    let threads = p.threads.lock().clone();
    let Some(first) = threads.first() else { return false };
    if ignored(first, sig) {
        return false;
    }
    let wants = |t: &&Arc<Task>| sig == SIGKILL || t.sig.lock().blocked & sigmask(sig) == 0;
    let target = threads.iter().find(wants);
    if target.is_some_and(|t| kills_group(t, sig)) {
        kill_group(p, super::exit::signaled_status(sig, false));
        return true;
    }
    p.shared_pending.lock().add(info);
    // Any thread that does not block it may take it on its next return, not only the one
    // woken (Linux retargets a shared signal when its thread exits or blocks it).
    for t in &threads {
        t.set_pending_work();
    }
    crate::fs::signalfd::SIGNALFD_WQ.wake_all();
    super::sched::signal_wake_up(target.unwrap_or(first), false);
    true
}

/// A signal the kernel raises for the current thread (SIGPIPE on a broken pipe).
pub fn send_to_current_thread(sig: u32) {
    let t = super::current();
    send_to_thread(&t, SigInfo::new(sig, SI_KERNEL));
}

/// A synchronous fault signal (Linux's `force_sig_info`): if the thread blocks
/// or ignores it, the default action applies — the process dies.
pub fn force_signal(t: &Arc<Task>, info: SigInfo) {
    let sig = info.signo as u32;
    {
        let hand = t.sighand();
        let mut h = hand.lock();
        let mut s = t.sig.lock();
        let a = &mut h.actions[sig as usize - 1];
        if a.handler == SIG_IGN || s.blocked & sigmask(sig) != 0 {
            a.handler = SIG_DFL;
            s.blocked &= !sigmask(sig);
        }
        s.pending.add(info);
    }
    t.set_pending_work();
}

// ---- delivery -------------------------------------------------------------

/// `struct sigcontext` (x86_64).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SigContext {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
    eflags: u64,
    cs: u16,
    gs: u16,
    fs: u16,
    ss: u16,
    err: u64,
    trapno: u64,
    oldmask: u64,
    cr2: u64,
    fpstate: u64,
    reserved1: [u64; 8],
}
const _: () = assert!(core::mem::size_of::<SigContext>() == 256);

/// `struct ucontext` as the kernel lays it out (not glibc's ucontext_t).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UContext {
    uc_flags: u64,
    uc_link: u64,
    ss_sp: u64,
    ss_flags: u32,
    _pad: u32,
    ss_size: u64,
    mcontext: SigContext,
    sigmask: u64,
}
const _: () = assert!(core::mem::size_of::<UContext>() == 304);

#[repr(C)]
#[derive(Clone, Copy)]
struct RtSigFrame {
    pretcode: u64,
    uc: UContext,
    info: SigInfo,
}
crate::impl_pod!(SigContext, UContext, RtSigFrame);

const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;

fn on_altstack(a: &AltStack, sp: u64) -> bool {
    a.size != 0 && sp > a.sp && sp - a.sp <= a.size
}

/// Takes the lowest pending signal not blocked by `blocked(state)`, the thread's own
/// before the process's (Linux's `dequeue_signal`); a POSIX timer's signal then gets its
/// overrun and restarts its timer, outside the signal locks (`posixtimer_rearm`).
pub fn dequeue_signal(t: &Task, blocked: impl FnOnce(&SigState) -> u64) -> Option<SigInfo> {
    let mut info = {
        let mut s = t.sig.lock();
        let blocked = blocked(&s);
        match s.pending.take(blocked) {
            Some(i) => i,
            None => t.process.shared_pending.lock().take(blocked)?,
        }
    };
    if info.code == super::posix_timer::SI_TIMER {
        super::posix_timer::signal_taken(&t.process, &mut info);
    }
    Some(info)
}

/// Delivers pending signals before returning to user mode (Linux's
/// `arch_do_signal_or_restart`): default actions run here, a handler gets a
/// frame. A fatal signal is returned as the wait status to die with: the
/// caller exits after dropping its references (a dying task's stack is
/// never unwound, so anything it still holds would leak).
#[must_use]
pub fn do_signal(t: &Arc<Task>, frame: &mut TrapFrame) -> Option<i32> {
    use super::exit::signaled_status;
    loop {
        let info = dequeue_signal(t, |s| s.blocked)?;
        let sig = info.signo as u32;
        let action = t.sighand().lock().get(sig);
        if sig == SIGKILL || action.handler == SIG_DFL {
            match default_action(sig) {
                Default_::Ignore | Default_::Continue => continue,
                Default_::Stop => {
                    // Only SIGSTOP stops a job that nobody could continue.
                    if sig == SIGSTOP || !super::exit::is_pgrp_orphaned(&t.process) {
                        do_signal_stop(t, sig);
                    }
                    continue;
                }
                Default_::Terminate => return Some(signaled_status(sig, false)),
                Default_::CoreDump => return Some(signaled_status(sig, true)),
            }
        }
        if action.handler == SIG_IGN {
            continue;
        }
        // A thread in an rseq critical section leaves it for the abort handler first; bad
        // rseq memory brings SIGSEGV after this signal (`force_sigsegv`).
        if super::rseq::signal_deliver(t, frame).is_err() {
            if sig == SIGSEGV {
                return Some(signaled_status(SIGSEGV, true));
            }
            force_signal(t, SigInfo::new(SIGSEGV, SI_KERNEL));
        }
        if setup_rt_frame(t, frame, &info, &action).is_err() {
            // The frame could not be written: the process dies with SIGSEGV (`force_sigsegv`).
            return Some(signaled_status(SIGSEGV, true));
        }
        return None;
    }
}

/// Decides what an interrupted syscall returns (Linux's `handle_signal` and
/// `arch_do_signal_or_restart`): with a handler about to run (`action`),
/// ERESTARTSYS becomes EINTR unless SA_RESTART, ERESTARTNOHAND always
/// becomes EINTR; with no handler, the syscall is restarted: RIP goes back
/// over the 2-byte `syscall` and RAX gets the number back (saved in the
/// error-code slot at entry).
/// Whether `frame` returns from a system call that asks to be restarted (ERESTART*), which
/// the return path must settle.
pub fn wants_restart(frame: &TrapFrame) -> bool {
    frame.vector == crate::arch::syscall::VECTOR_SYSCALL
        && matches!(Errno(-(frame.rax as i64) as i32), ERESTARTSYS | ERESTARTNOHAND | ERESTARTNOINTR)
}

pub fn restart_syscall(frame: &mut TrapFrame, action: Option<&SigAction>) {
    if frame.vector != crate::arch::syscall::VECTOR_SYSCALL {
        return;
    }
    let err = Errno(-(frame.rax as i64) as i32);
    let restart = match (err, action) {
        (ERESTARTSYS, Some(a)) => a.flags & SA_RESTART != 0,
        (ERESTARTNOHAND, Some(_)) => false,
        (ERESTARTSYS | ERESTARTNOHAND | ERESTARTNOINTR, _) => true,
        _ => return,
    };
    if restart {
        frame.rax = frame.error_code;
        frame.rip = frame.rip.wrapping_sub(2);
    } else {
        frame.rax = (-(EINTR.0 as i64)) as u64;
    }
}

fn setup_rt_frame(t: &Arc<Task>, frame: &mut TrapFrame, info: &SigInfo, action: &SigAction) -> KResult<()> {
    restart_syscall(frame, Some(action));
    let sig = info.signo as u32;
    let mm = t.mm();
    let (_blocked, frame_mask, alt) = {
        let mut s = t.sig.lock();
        let saved = s.saved_mask.take();
        (s.blocked, saved.unwrap_or(s.blocked), s.altstack)
    };
    let mut sp = frame.rsp;
    let use_alt =
        action.flags & SA_ONSTACK != 0 && alt.flags & SS_DISABLE == 0 && alt.size != 0 && !on_altstack(&alt, sp);
    if use_alt {
        sp = alt.sp.wrapping_add(alt.size);
    } else {
        sp = sp.wrapping_sub(128); // the red zone
    }
    // User stack pointers are arbitrary: wrapping arithmetic, and a frame
    // address outside the user half fails in the copy (the process dies of SIGSEGV).
    let fp_addr = sp.wrapping_sub(512) & !63;
    let frame_addr = (fp_addr.wrapping_sub(core::mem::size_of::<RtSigFrame>() as u64) & !15).wrapping_sub(8);

    // The live FPU registers hold this task's user state (the kernel is soft-float).
    let mut fpu = FpuState::initial();
    fpu.save();
    copy_to_user(&mm, fp_addr, &fpu.0)?;

    let mc = SigContext {
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rdi: frame.rdi,
        rsi: frame.rsi,
        rbp: frame.rbp,
        rbx: frame.rbx,
        rdx: frame.rdx,
        rax: frame.rax,
        rcx: frame.rcx,
        rsp: frame.rsp,
        rip: frame.rip,
        eflags: frame.rflags,
        cs: frame.cs as u16,
        ss: frame.ss as u16,
        err: if frame.vector < 32 { frame.error_code } else { 0 },
        trapno: if frame.vector < 32 { frame.vector } else { 0 },
        oldmask: frame_mask,
        cr2: if sig == SIGSEGV || sig == SIGBUS { info.field0 } else { 0 },
        fpstate: fp_addr,
        ..Default::default()
    };
    let rf = RtSigFrame {
        pretcode: action.restorer,
        uc: UContext {
            uc_flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
            uc_link: 0,
            ss_sp: alt.sp,
            ss_flags: if alt.size == 0 || alt.flags & SS_DISABLE != 0 {
                SS_DISABLE
            } else if on_altstack(&alt, frame.rsp) {
                SS_ONSTACK
            } else {
                0
            },
            _pad: 0,
            ss_size: alt.size,
            mcontext: mc,
            sigmask: frame_mask,
        },
        info: *info,
    };
    write_val(&mm, frame_addr, &rf)?;

    frame.rsp = frame_addr;
    frame.rip = action.handler;
    frame.rdi = sig as u64;
    frame.rsi = frame_addr + core::mem::offset_of!(RtSigFrame, info) as u64;
    frame.rdx = frame_addr + core::mem::offset_of!(RtSigFrame, uc) as u64;
    frame.rax = 0;
    frame.rflags &= !(1 << 10 | 1 << 8); // DF and TF clear in the handler
    frame.cs = 0x23;
    frame.ss = 0x1b;
    {
        let mut s = t.sig.lock();
        let mut add = action.mask;
        if action.flags & SA_NODEFER == 0 {
            add |= sigmask(sig);
        }
        s.blocked = (s.blocked | add) & !UNBLOCKABLE;
        if use_alt && alt.flags & SS_AUTODISARM != 0 {
            s.altstack = AltStack { sp: 0, size: 0, flags: SS_DISABLE };
        }
    }
    if action.flags & SA_RESETHAND != 0 {
        t.sighand().lock().actions[sig as usize - 1].handler = SIG_DFL;
    }
    // The handler starts with a fresh FPU state, as Linux's fpu__clear_user_states.
    let init = FpuState::initial();
    init.restore();
    Ok(())
}

/// `rt_sigreturn`: restores the registers, mask, FPU state and alternate
/// stack saved by `setup_rt_frame`. RSP points just past `pretcode`.
pub fn sys_rt_sigreturn(frame: &mut TrapFrame) -> KResult<()> {
    let t = super::current();
    let mm = t.mm();
    let addr = frame.rsp.wrapping_sub(8);
    let rf: RtSigFrame = read_val(&mm, addr)?;
    let mc = rf.uc.mcontext;
    frame.r8 = mc.r8;
    frame.r9 = mc.r9;
    frame.r10 = mc.r10;
    frame.r11 = mc.r11;
    frame.r12 = mc.r12;
    frame.r13 = mc.r13;
    frame.r14 = mc.r14;
    frame.r15 = mc.r15;
    frame.rdi = mc.rdi;
    frame.rsi = mc.rsi;
    frame.rbp = mc.rbp;
    frame.rbx = mc.rbx;
    frame.rdx = mc.rdx;
    frame.rax = mc.rax;
    frame.rcx = mc.rcx;
    frame.rsp = mc.rsp;
    frame.rip = mc.rip;
    // User code may change only the arithmetic flags, DF, TF, AC, ID (FIX_EFLAGS).
    const FIX_EFLAGS: u64 = 0x0001 | 0x0004 | 0x0010 | 0x0040 | 0x0080 | 0x0100 | 0x0400 | 0x0800 | 0x40000 | 0x200000;
    frame.rflags = (frame.rflags & !FIX_EFLAGS) | (mc.eflags & FIX_EFLAGS) | 0x202;
    frame.cs = 0x23;
    frame.ss = 0x1b;
    if mc.fpstate != 0 {
        let mut fpu = FpuState::initial();
        copy_from_user(&mm, mc.fpstate, &mut fpu.0)?;
        fpu.sanitize();
        fpu.restore();
    }
    let mut s = t.sig.lock();
    s.blocked = rf.uc.sigmask & !UNBLOCKABLE;
    // The restored mask may unblock a pending signal.
    t.set_pending_work();
    // restore_altstack: as sigaltstack would, but errors are ignored.
    if rf.uc.ss_flags & SS_DISABLE != 0 {
        s.altstack = AltStack { sp: 0, size: 0, flags: SS_DISABLE };
    } else if rf.uc.ss_size >= MINSIGSTKSZ {
        s.altstack = AltStack { sp: rf.uc.ss_sp, size: rf.uc.ss_size, flags: rf.uc.ss_flags & SS_AUTODISARM };
    }
    Ok(())
}

/// Sends the signal a user-mode exception maps to (Linux's `do_trap` family).
pub fn exception_signal(t: &Arc<Task>, frame: &TrapFrame, cr2: u64) {
    let rip = frame.rip;
    let info = match frame.vector {
        0 => SigInfo::fault(SIGFPE, FPE_INTDIV, rip),
        1 | 3 => SigInfo::fault(SIGTRAP, TRAP_BRKPT, rip),
        6 => SigInfo::fault(SIGILL, ILL_ILLOPN, rip),
        16 | 19 => SigInfo::fault(SIGFPE, 0, rip),
        17 => SigInfo::fault(SIGBUS, 1, cr2),
        14 => SigInfo::fault(SIGSEGV, SEGV_MAPERR, cr2),
        // #GP and the rest: SIGSEGV with si_addr 0 and SI_KERNEL, as Linux.
        _ => SigInfo::fault(SIGSEGV, SI_KERNEL, 0),
    };
    force_signal(t, info);
}
