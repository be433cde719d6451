//! Thread and process exit, zombies, reparenting and wait (Linux's
//! kernel/exit.c).

use super::signal::{self, SigInfo};
use super::task::{JobReport, Process, TaskState, Tid, TABLES};
use crate::errno::*;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

/// Wait status of a normal exit (`WIFEXITED`).
pub const fn exited_status(code: i32) -> i32 {
    (code & 0xff) << 8
}

/// Wait status of death by signal (`WIFSIGNALED`), 0x80 for a core dump.
pub const fn signaled_status(sig: u32, core: bool) -> i32 {
    sig as i32 | if core { 0x80 } else { 0 }
}

/// Ends the whole thread group with wait status `status` (or the status an
/// earlier exit_group or fatal signal gave it): a fatal signal taken by this
/// thread that `kill_group` had not already spread to the others (a core-dumping
/// one). Only `exit_to_user_mode` calls it: the task's stack then holds nothing
/// but the trap frame.
pub(super) fn group_exit(status: i32) -> ! {
    let p = super::current().process.clone();
    signal::kill_group(&p, status);
    drop(p);
    do_exit(status)
}

/// Ends the current thread (the `exit` syscall, or a thread of a dying group).
/// The last thread of a process turns it into a zombie and tells the parent.
/// Called only from `exit_to_user_mode`, where the stack below holds no references.
pub(super) fn do_exit(status: i32) -> ! {
    let t = super::current();
    // CLONE_CHILD_CLEARTID / set_tid_address: zero the word and wake a joiner.
    let ctid = t.clear_child_tid.swap(0, Ordering::Relaxed);
    if ctid != 0 {
        let mm = t.mm();
        if crate::mm::usercopy::write_val(&mm, ctid, &0u32).is_ok() {
            // The clear_child_tid wake is a shared futex in Linux (mm_release).
            super::futex::wake(&mm, ctid, 1, false);
        }
    }
    if let Some(c) = t.vfork_done.lock().take() {
        c.complete();
    }
    let p = t.process.clone();
    {
        let mut dead = p.dead_cpu.lock();
        dead.0 += t.cpu_ns();
        dead.1 += t.sys_ticks.load(Ordering::Relaxed);
    }
    let last = {
        let mut threads = p.threads.lock();
        threads.retain(|o| !Arc::ptr_eq(o, &t));
        threads.is_empty()
    };
    TABLES.lock().tasks.remove(&t.tid());
    p.thread_exit.wake_all();
    // Release what the thread holds; the address space goes with the last user.
    crate::mm::kernel_map::switch_address_space(crate::mm::kernel_map::kernel_root());
    let mm = t.mm.lock().take();
    drop(mm);
    let files = core::mem::take(&mut *t.files.lock());
    drop(files);
    // `exit_shm`: the segments it created are orphans now (removed at once if unattached
    // and the namespace forces it).
    crate::ipc::shm::exit_shm(&t);
    // `exit_task_namespaces`: the last task of an IPC namespace takes its objects with it.
    let ipc_ns = t.ipc_ns.lock().take();
    drop(ipc_ns);
    if last {
        // `exit_sem`: the SEM_UNDO adjustments of the process go with its last thread.
        crate::ipc::sem::exit_sem(&p);
        // Linux's do_exit cancels the group's ITIMER_REAL when its last thread goes:
        // the armed list would otherwise hold the zombie until the deadline passed.
        super::itimer::set(&p, 0, 0);
        super::posix_timer::exit_itimers(&p);
        // A session leader's terminal is no longer controlled (`disassociate_ctty(1)`).
        if p.sid.load(Ordering::Relaxed) == p.pid {
            crate::tty::disassociate_ctty(&p, true);
        }
        let status = p.group_exit.lock().unwrap_or(status);
        exit_notify(&p, status);
    }
    drop(p);
    t.set_state(TaskState::Dead);
    drop(t);
    super::sched::schedule();
    unreachable!("a dead task was scheduled");
}

/// The process is a zombie now: reparent its children to init (orphan them once
/// init has exited), record the status, signal and wake the parent (or reap at
/// once if it ignores SIGCHLD).
fn exit_notify(p: &Arc<Process>, status: i32) {
    let children: Vec<_> = core::mem::take(&mut *p.children.lock());
    if p.pid == 1 {
        let code = if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) };
        crate::println!("mshare-kernel: init exited with status {}", code);
        // Nobody reaps init. Everything else is killed and, once all are gone, the
        // idle loop checks for leaks and powers off.
        orphan(children);
        TABLES.lock().processes.remove(&p.pid);
        crate::leak::begin_shutdown();
        return;
    }
    match super::task::find_process(1) {
        Some(init) => {
            let mut zombies = false;
            for c in children {
                *c.parent.lock() = Arc::downgrade(&init);
                zombies |= c.is_zombie();
                if !c.is_zombie() {
                    kill_orphaned_pgrp(&c, Some(p));
                }
                init.children.lock().push(c);
            }
            if zombies {
                init.child_wait.wake_all();
            }
        }
        None => orphan(children),
    }
    kill_orphaned_pgrp(p, None);
    *p.exit.lock() = Some(super::task::ExitInfo { status });
    let Some(parent) = p.parent.lock().upgrade() else {
        // An orphan after init's exit: nobody will wait for it.
        TABLES.lock().processes.remove(&p.pid);
        return;
    };
    let uid = p.creds.lock().uid;
    let (code, si_status) = if status & 0x7f == 0 {
        (signal::CLD_EXITED, (status >> 8) & 0xff)
    } else if status & 0x80 != 0 {
        (signal::CLD_DUMPED, status & 0x7f)
    } else {
        (signal::CLD_KILLED, status & 0x7f)
    };
    let leader = parent.first_thread();
    let autoreap = leader.is_some_and(|t| {
        let a = t.sighand().lock().get(signal::SIGCHLD);
        p.exit_signal == signal::SIGCHLD && (a.handler == signal::SIG_IGN || a.flags & signal::SA_NOCLDWAIT != 0)
    });
    if p.exit_signal != 0 {
        signal::send_to_process(&parent, SigInfo::child(code, p.pid, uid, si_status));
    }
    if autoreap {
        release(&parent, p.pid);
    }
    parent.child_wait.wake_all();
}

/// Children left after init has exited: zombies leave the process table now,
/// the others lose their parent and leave it when they exit.
fn orphan(children: Vec<Arc<Process>>) {
    for c in children {
        if c.is_zombie() {
            TABLES.lock().processes.remove(&c.pid);
        } else {
            *c.parent.lock() = alloc::sync::Weak::new();
        }
    }
}

/// Members of process group `pgid`, zombies included.
pub(super) fn pgrp_members(pgid: Tid) -> Vec<Arc<Process>> {
    super::task::all_processes().into_iter().filter(|p| p.pgid() == pgid).collect()
}

/// Whether process group `pgid` is orphaned once `ignored` is gone (Linux's
/// `will_become_orphaned_pgrp`): no live member has a parent in another group of the same
/// session, which is what lets a shell continue a stopped job. A parent that is init
/// connects nothing.
fn will_become_orphaned_pgrp(pgid: Tid, ignored: Option<&Arc<Process>>) -> bool {
    pgrp_members(pgid).iter().all(|p| {
        if ignored.is_some_and(|i| Arc::ptr_eq(i, p)) || p.is_zombie() {
            return true;
        }
        let Some(parent) = p.parent.lock().upgrade() else { return true };
        parent.pid == 1 || parent.pgid() == pgid || parent.sid.load(Ordering::Relaxed) != p.sid.load(Ordering::Relaxed)
    })
}

/// Linux's `is_current_pgrp_orphaned`: a stop signal from the terminal family (SIGTSTP,
/// SIGTTIN, SIGTTOU) is discarded there, since nobody could ever continue the job.
pub fn is_pgrp_orphaned(p: &Process) -> bool {
    will_become_orphaned_pgrp(p.pgid(), None)
}

/// Linux's `kill_orphaned_pgrp`: when `p`'s group becomes orphaned (because `p` exits,
/// `parent` None, or because `p`'s parent `parent` exited) and it has a stopped member,
/// every member gets SIGHUP then SIGCONT, so a stopped job does not wait forever.
fn kill_orphaned_pgrp(p: &Arc<Process>, parent: Option<&Arc<Process>>) {
    let (ignored, parent) = match parent {
        None => (Some(p), p.parent.lock().upgrade()),
        Some(parent) => (None, Some(parent.clone())),
    };
    let Some(parent) = parent else { return };
    let pgid = p.pgid();
    if parent.pgid() == pgid || parent.sid.load(Ordering::Relaxed) != p.sid.load(Ordering::Relaxed) {
        return;
    }
    if !will_become_orphaned_pgrp(pgid, ignored) {
        return;
    }
    let members: Vec<_> = pgrp_members(pgid).into_iter().filter(|m| !m.is_zombie()).collect();
    if !members.iter().any(|m| m.stopped.load(Ordering::Acquire)) {
        return;
    }
    for sig in [signal::SIGHUP, signal::SIGCONT] {
        for m in &members {
            signal::send_to_process(m, SigInfo::new(sig, signal::SI_KERNEL));
        }
    }
}

/// Removes a reaped child from its parent and the process table; its CPU
/// time joins the parent's children's time.
fn release(parent: &Arc<Process>, pid: Tid) {
    if let Some(c) = parent.children.lock().iter().find(|c| c.pid == pid) {
        let (ns, ticks) = c.reaped_cpu_parts();
        let mut cc = parent.children_cpu.lock();
        cc.0 += ns;
        cc.1 += ticks;
    }
    parent.children.lock().retain(|c| c.pid != pid);
    TABLES.lock().processes.remove(&pid);
}

pub const WNOHANG: u32 = 1;
pub const WUNTRACED: u32 = 2;
pub const WSTOPPED: u32 = 2;
pub const WEXITED: u32 = 4;
pub const WCONTINUED: u32 = 8;
pub const WNOWAIT: u32 = 0x0100_0000;
pub const __WNOTHREAD: u32 = 0x2000_0000;
pub const __WALL: u32 = 0x4000_0000;
pub const __WCLONE: u32 = 0x8000_0000;

/// Which children a wait call selects (Linux's `enum pid_type` + pid).
#[derive(Clone, Copy)]
pub enum WaitTarget {
    Any,
    Pid(Tid),
    Pgid(Tid),
}

pub struct Reaped {
    pub pid: Tid,
    /// The wait4 status word.
    pub status: i32,
    pub uid: u32,
    pub kind: WaitKind,
}

/// What a wait found: a zombie, or a job-control event.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    Exited,
    Stopped(u32),
    Continued,
}

/// Waits for a child matching `target` to become a zombie; reaps it unless
/// `WNOWAIT`. Ok(None) with WNOHANG when none is ready.
pub fn do_wait(target: WaitTarget, options: u32) -> KResult<Option<Reaped>> {
    let me = super::current().process.clone();
    me.child_wait.wait_until(true, || {
        let children = me.children.lock().clone();
        let matching: Vec<_> = children
            .iter()
            .filter(|c| match target {
                WaitTarget::Any => true,
                WaitTarget::Pid(pid) => c.pid == pid,
                WaitTarget::Pgid(g) => c.pgid() == g,
            })
            .filter(|c| {
                // __WCLONE selects children whose exit signal is not SIGCHLD; __WALL selects all.
                options & __WALL != 0 || ((c.exit_signal != signal::SIGCHLD) == (options & __WCLONE != 0))
            })
            .collect();
        if matching.is_empty() {
            return Some(Err(ECHILD));
        }
        for c in matching {
            if let Some(info) = c.exit.lock().filter(|_| options & WEXITED != 0) {
                let r = Reaped { pid: c.pid, status: info.status, uid: c.creds.lock().uid, kind: WaitKind::Exited };
                if options & WNOWAIT == 0 {
                    release(&me, c.pid);
                }
                return Some(Ok(Some(r)));
            }
            // Job-control events (wait_task_stopped / wait_task_continued). The uid
            // first: the credentials' lock is outside the report's.
            let uid = c.creds.lock().uid;
            let mut report = c.job_report.lock();
            let r = match *report {
                Some(JobReport::Stopped(sig)) if options & WUNTRACED != 0 => {
                    Some(Reaped { pid: c.pid, status: ((sig as i32) << 8) | 0x7f, uid, kind: WaitKind::Stopped(sig) })
                }
                Some(JobReport::Continued) if options & WCONTINUED != 0 => {
                    Some(Reaped { pid: c.pid, status: 0xffff, uid, kind: WaitKind::Continued })
                }
                _ => None,
            };
            if let Some(r) = r {
                if options & WNOWAIT == 0 {
                    *report = None;
                }
                return Some(Ok(Some(r)));
            }
        }
        if options & WNOHANG != 0 {
            return Some(Ok(None));
        }
        None
    })?
}
