//! Signal syscalls.

use super::{ok, read_val, write_val, Args, Ret, SysResult};
use crate::arch::trap::TrapFrame;
use crate::errno::*;
use crate::process::current;
use crate::process::signal::*;
use crate::process::task::{find_process, find_task, Process};
use alloc::vec::Vec;

fn check_sig(sig: u32) -> KResult<()> {
    if sig == 0 || sig > NSIG {
        return Err(EINVAL);
    }
    Ok(())
}

pub fn sys_rt_sigaction(a: Args) -> SysResult {
    let (sig, act, oldact, size) = (a.u32(0), a.u(1), a.u(2), a.usize(3));
    if size != 8 {
        return Err(EINVAL);
    }
    check_sig(sig)?;
    let new = if act != 0 { Some(read_val::<SigAction>(act)?) } else { None };
    if new.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(EINVAL);
    }
    let t = current();
    let hand = t.sighand();
    let old = {
        let mut h = hand.lock();
        let old = h.get(sig);
        if let Some(mut n) = new {
            n.mask &= !UNBLOCKABLE;
            h.actions[sig as usize - 1] = n;
        }
        old
    };
    if let Some(n) = new {
        // Setting SIG_IGN (or default-ignore) discards what is pending (POSIX).
        if n.handler == SIG_IGN || (n.handler == SIG_DFL && matches!(sig, SIGCHLD | SIGURG | SIGWINCH)) {
            for th in t.process.threads.lock().iter() {
                th.sig.lock().pending.remove(sigmask(sig));
            }
            t.process.shared_pending.lock().remove(sigmask(sig));
        }
    }
    if oldact != 0 {
        write_val(oldact, &old)?;
    }
    ok(0)
}

const SIG_BLOCK: u32 = 0;
const SIG_UNBLOCK: u32 = 1;
const SIG_SETMASK: u32 = 2;

pub fn sys_rt_sigprocmask(a: Args) -> SysResult {
    let (how, set, oldset, size) = (a.u32(0), a.u(1), a.u(2), a.usize(3));
    if size != 8 {
        return Err(EINVAL);
    }
    let t = current();
    let old = t.sig.lock().blocked;
    if set != 0 {
        let m: u64 = read_val(set)?;
        let new = match how {
            SIG_BLOCK => old | m,
            SIG_UNBLOCK => old & !m,
            SIG_SETMASK => m,
            _ => return Err(EINVAL),
        };
        t.sig.lock().blocked = new & !UNBLOCKABLE;
        // An unblocked signal may be pending (`recalc_sigpending`).
        t.set_pending_work();
    }
    if oldset != 0 {
        write_val(oldset, &old)?;
    }
    ok(0)
}

pub fn sys_rt_sigreturn(frame: &mut TrapFrame) -> SysResult {
    match crate::process::signal::sys_rt_sigreturn(frame) {
        Ok(()) => Ok(Ret::Frame),
        Err(_) => {
            // A corrupt frame: SIGSEGV, as Linux's `signal_fault`.
            let t = current();
            force_signal(&t, SigInfo::new(SIGSEGV, SI_KERNEL));
            Ok(Ret::Frame)
        }
    }
}

pub fn sys_rt_sigpending(a: Args) -> SysResult {
    if a.usize(1) > 8 {
        return Err(EINVAL);
    }
    let t = current();
    let s = t.sig.lock();
    let pending = (s.pending.set | t.process.shared_pending.lock().set) & s.blocked;
    drop(s);
    write_val(a.u(0), &pending)?;
    ok(0)
}

pub fn sys_sigaltstack(a: Args) -> SysResult {
    let (ss, old_ss) = (a.u(0), a.u(1));
    let t = current();
    let cur = t.sig.lock().altstack;
    // The frame's RSP is not at hand here; "on the stack" is judged by the
    // user stack pointer saved at syscall entry.
    let user_sp = crate::arch::percpu::user_rsp();
    let on = cur.size != 0 && user_sp > cur.sp && user_sp - cur.sp <= cur.size;
    if ss != 0 {
        let new: [u64; 3] = read_val(ss)?; // ss_sp, ss_flags (int + pad), ss_size
        let flags = new[1] as u32;
        if on {
            return Err(EPERM);
        }
        let mode = flags & !SS_AUTODISARM;
        if mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0 {
            return Err(EINVAL);
        }
        let alt = if mode == SS_DISABLE {
            AltStack { sp: 0, size: 0, flags: SS_DISABLE }
        } else {
            if new[2] < MINSIGSTKSZ {
                return Err(ENOMEM);
            }
            AltStack { sp: new[0], size: new[2], flags: flags & SS_AUTODISARM }
        };
        t.sig.lock().altstack = alt;
    }
    if old_ss != 0 {
        let flags = if cur.size == 0 || cur.flags & SS_DISABLE != 0 {
            SS_DISABLE
        } else if on {
            SS_ONSTACK | (cur.flags & SS_AUTODISARM)
        } else {
            cur.flags & SS_AUTODISARM
        };
        write_val(old_ss, &[cur.sp, flags as u64, cur.size])?;
    }
    ok(0)
}

/// Where pause() sleeps; only signals wake it.
pub(super) static PAUSE_QUEUE: crate::process::wait_queue::WaitQueue = crate::process::wait_queue::WaitQueue::new();

pub fn sys_pause() -> SysResult {
    // Only a signal ends the wait (ERESTARTSYS from the queue), and pause never restarts.
    match PAUSE_QUEUE.wait_until(true, || None::<()>) {
        Ok(()) | Err(_) => Err(ERESTARTNOHAND),
    }
}

/// Runs `f` with the signal mask temporarily replaced by the one at
/// `mask_va` (ppoll, pselect6; none when 0). If `f` is interrupted by a
/// signal, the old mask comes back only after its handler ran (the frame
/// records it, as for sigsuspend); otherwise at once.
pub fn with_temp_sigmask(mask_va: u64, size: usize, f: impl FnOnce() -> SysResult) -> SysResult {
    if mask_va == 0 {
        return f();
    }
    if size != 8 {
        return Err(EINVAL);
    }
    let mask: u64 = read_val(mask_va)?;
    let t = current();
    let old = {
        let mut s = t.sig.lock();
        let old = s.blocked;
        s.blocked = mask & !UNBLOCKABLE;
        old
    };
    let r = f();
    let mut s = t.sig.lock();
    if matches!(r, Err(ERESTARTNOHAND) | Err(ERESTARTSYS) | Err(EINTR)) {
        s.saved_mask = Some(old);
    } else {
        s.blocked = old;
    }
    drop(s);
    t.set_pending_work();
    r
}

/// Waits for a signal with a temporary mask. The old mask is kept in
/// `saved_mask`: the signal frame records it, so it returns with sigreturn
/// (Linux's `set_restore_sigmask`).
pub fn sys_rt_sigsuspend(a: Args) -> SysResult {
    if a.usize(1) != 8 {
        return Err(EINVAL);
    }
    let mask: u64 = read_val(a.u(0))?;
    let t = current();
    {
        let mut s = t.sig.lock();
        let old = s.blocked;
        s.saved_mask = Some(old);
        s.blocked = mask & !UNBLOCKABLE;
    }
    t.set_pending_work();
    sys_pause()
}

/// rt_sigtimedwait (Linux's `do_sigtimedwait`): takes a pending signal of the set, the
/// thread's own first; if none is, waits for one with those signals unblocked, up to the
/// timeout (EAGAIN then; a zero timeout does not wait). Another signal that arrives ends
/// the wait with EINTR, never restarted.
pub fn sys_rt_sigtimedwait(a: Args) -> SysResult {
    if a.usize(3) != 8 {
        return Err(EINVAL);
    }
    let these = read_val::<u64>(a.u(0))? & !UNBLOCKABLE;
    let timeout = match a.u(2) {
        0 => None,
        ts => Some(super::time::read_timespec(ts)?),
    };
    let t = current();
    let dequeue = || crate::process::signal::dequeue_signal(&t, |_| !these);
    let info = match dequeue() {
        Some(info) => info,
        None if timeout == Some(0) => return Err(EAGAIN),
        None => {
            {
                let mut s = t.sig.lock();
                s.real_blocked = s.blocked;
                s.blocked &= !these;
            }
            let deadline = timeout.map(|ns| crate::arch::apic::uptime_ns().saturating_add(ns));
            let r = SIGTIMEDWAIT_QUEUE.wait_until_deadline(true, deadline, dequeue);
            let r = match r {
                Ok(info) => Ok(info),
                // Restoring the mask may leave the one that came pending: taken now.
                Err(e) => dequeue().ok_or(if e == ETIMEDOUT { EAGAIN } else { EINTR }),
            };
            {
                let mut s = t.sig.lock();
                s.blocked = s.real_blocked;
                s.real_blocked = 0;
            }
            t.set_pending_work();
            r?
        }
    };
    if a.u(1) != 0 {
        write_val(a.u(1), &info)?;
    }
    ok(info.signo as usize)
}

/// Where rt_sigtimedwait sleeps; signals wake the task itself.
pub(super) static SIGTIMEDWAIT_QUEUE: crate::process::wait_queue::WaitQueue =
    crate::process::wait_queue::WaitQueue::new();

/// Whether the caller may send `sig` to process `p` (`check_kill_permission`,
/// `kill_ok_by_cred`): its own process; a process whose real or saved uid is the
/// caller's real or effective uid; SIGCONT within the caller's session; anything
/// with CAP_KILL.
fn may_signal(me: &Process, p: &Process, sig: u32) -> bool {
    if core::ptr::eq(me, p) {
        return true;
    }
    let c = me.creds.lock().clone();
    let (uid, suid) = {
        let t = p.creds.lock();
        (t.uid, t.suid)
    };
    let same_user = [c.uid, c.euid].iter().any(|&u| u == uid || u == suid);
    let same_session =
        p.sid.load(core::sync::atomic::Ordering::Relaxed) == me.sid.load(core::sync::atomic::Ordering::Relaxed);
    same_user || c.capable(crate::process::cred::CAP_KILL) || sig == SIGCONT && same_session
}

/// kill(pid, sig): one process, a group, or everyone we may signal. A group
/// signal succeeds if some member may be signalled (else EPERM); kill(-1)
/// skips those it may not signal.
pub fn sys_kill(a: Args) -> SysResult {
    let (pid, sig) = (a.i32(0), a.u32(1));
    if sig > NSIG {
        return Err(EINVAL);
    }
    let me = current();
    let info = SigInfo::user(sig, SI_USER, me.process.pid, me.process.creds.lock().uid);
    let targets: Vec<_> = if pid > 0 {
        vec1(find_process(pid as u32).filter(|p| !p.is_zombie() || sig == 0).ok_or(ESRCH)?)
    } else {
        let pgid = if pid == 0 {
            me.process.pgid()
        } else if pid < -1 {
            pid.unsigned_abs()
        } else {
            0
        };
        let v: Vec<_> = crate::process::task::all_processes()
            .into_iter()
            .filter(|p| !p.is_zombie())
            .filter(|p| if pid == -1 { p.pid != 1 && p.pid != me.process.pid } else { p.pgid() == pgid })
            .collect();
        if v.is_empty() {
            return Err(ESRCH);
        }
        v
    };
    let allowed: Vec<_> = targets.iter().filter(|p| may_signal(&me.process, p, sig)).collect();
    if allowed.is_empty() && pid != -1 {
        return Err(EPERM);
    }
    if sig != 0 {
        for p in allowed {
            send_to_process(p, info);
        }
    }
    ok(0)
}

fn vec1<T>(t: T) -> Vec<T> {
    alloc::vec![t]
}

pub fn sys_tgkill(a: Args) -> SysResult {
    let (tgid, tid, sig) = (a.i32(0), a.i32(1), a.u32(2));
    if tgid <= 0 || tid <= 0 || sig > NSIG {
        return Err(EINVAL);
    }
    let t = find_task(tid as u32).filter(|t| t.process.pid == tgid as u32).ok_or(ESRCH)?;
    let me = current();
    if !may_signal(&me.process, &t.process, sig) {
        return Err(EPERM);
    }
    if sig != 0 {
        // The sender's uid first: the target's signal locks are outside the credentials'.
        let uid = me.process.creds.lock().uid;
        send_to_thread(&t, SigInfo::user(sig, SI_TKILL, me.process.pid, uid));
    }
    ok(0)
}

pub fn sys_tkill(a: Args) -> SysResult {
    let (tid, sig) = (a.i32(0), a.u32(1));
    if tid <= 0 || sig > NSIG {
        return Err(EINVAL);
    }
    let t = find_task(tid as u32).ok_or(ESRCH)?;
    let me = current();
    if !may_signal(&me.process, &t.process, sig) {
        return Err(EPERM);
    }
    if sig != 0 {
        // The sender's uid first: the target's signal locks are outside the credentials'.
        let uid = me.process.creds.lock().uid;
        send_to_thread(&t, SigInfo::user(sig, SI_TKILL, me.process.pid, uid));
    }
    ok(0)
}
