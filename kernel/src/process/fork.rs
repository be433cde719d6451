//! fork, vfork, clone and clone3 (Linux's `kernel_clone`/`copy_process`).
//! The CLONE_* flags choose what the child shares with the parent.

use super::task::{self, NewTask, Tid};
use super::wait_queue::Completion;
use crate::arch::context::FpuState;
use crate::arch::trap::TrapFrame;
use crate::errno::*;
use crate::sync::SpinLock as Mutex;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Tasks created by fork and clone since boot (`processes` of /proc/stat).
pub static FORKS: AtomicU64 = AtomicU64::new(0);

pub const CSIGNAL: u64 = 0xff;
pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_NEWNS: u64 = 0x20000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_DETACHED: u64 = 0x400000;
pub const CLONE_UNTRACED: u64 = 0x800000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
pub const CLONE_NEWCGROUP: u64 = 0x2000000;
pub const CLONE_NEWUTS: u64 = 0x4000000;
pub const CLONE_NEWIPC: u64 = 0x8000000;
pub const CLONE_NEWUSER: u64 = 0x10000000;
pub const CLONE_NEWPID: u64 = 0x20000000;
pub const CLONE_NEWNET: u64 = 0x40000000;
pub const CLONE_IO: u64 = 0x80000000;
pub const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Namespace flags other than CLONE_NEWIPC: not supported yet.
const CLONE_NEWANY: u64 = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
/// unshare's time namespace flag (clone's CSIGNAL bits hold exit signals there).
pub const CLONE_NEWTIME: u64 = 0x80;

/// `kernel.threads-max` once written (0: not yet, `max_threads` sizes it from RAM).
static MAX_THREADS: AtomicU32 = AtomicU32::new(0);
/// Linux's MAX_THREADS (FUTEX_TID_MASK): the most `kernel.threads-max` takes.
pub const THREADS_LIMIT: u32 = 0x3fff_ffff;
/// Linux's MIN_THREADS: the least `set_max_threads` picks.
const MIN_THREADS: u32 = 20;

/// Linux's `max_threads`: how many tasks the system may hold before clone refuses more.
/// Unless written through `kernel.threads-max`, sized as `set_max_threads` does: the
/// thread structures (16 KiB stacks) may take at most an eighth of RAM.
pub fn max_threads() -> u32 {
    match MAX_THREADS.load(Ordering::Relaxed) {
        0 => (crate::mm::frame::stats().usable * 4096 / (16384 * 8)).clamp(MIN_THREADS as u64, THREADS_LIMIT as u64)
            as u32,
        n => n,
    }
}

/// `kernel.threads-max` written: 1 up to THREADS_LIMIT (the sysctl checks the range).
pub fn set_max_threads(n: u32) {
    MAX_THREADS.store(n, Ordering::Relaxed);
}

pub struct CloneArgs {
    pub flags: u64,
    pub exit_signal: u32,
    pub stack: u64,
    pub tls: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
}

/// `copy_namespaces`' checks for a new IPC namespace: CAP_SYS_ADMIN (EPERM), and no
/// CLONE_SYSVSEM with it (EINVAL): the semaphore undo list it would share refers to the
/// old namespace's semaphores.
fn check_new_ipc_ns(t: &task::Task, f: u64) -> KResult<()> {
    if !t.process.creds.lock().capable(super::cred::CAP_SYS_ADMIN) {
        return Err(EPERM);
    }
    if f & CLONE_SYSVSEM != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// `unshare(2)` (Linux's `ksys_unshare`): gives the calling task its own copy of what
/// `flags` names: its fd table (CLONE_FILES), working directory and umask (CLONE_FS), a new
/// IPC namespace (CLONE_NEWIPC, CAP_SYS_ADMIN). CLONE_THREAD, CLONE_SIGHAND and CLONE_VM
/// are accepted only when there is nothing to unshare (a single thread, handlers and
/// address space of its own). CLONE_SYSVSEM detaches the semaphore undo list (none are
/// kept yet). Other namespaces are not supported yet (EINVAL).
pub fn ksys_unshare(flags: u64) -> KResult<()> {
    const ALLOWED: u64 = CLONE_THREAD
        | CLONE_FS
        | CLONE_NEWNS
        | CLONE_SIGHAND
        | CLONE_VM
        | CLONE_FILES
        | CLONE_SYSVSEM
        | CLONE_NEWUTS
        | CLONE_NEWIPC
        | CLONE_NEWNET
        | CLONE_NEWUSER
        | CLONE_NEWPID
        | CLONE_NEWCGROUP
        | CLONE_NEWTIME;
    if flags & !ALLOWED != 0 {
        return Err(EINVAL);
    }
    let mut f = flags;
    if f & CLONE_NEWUSER != 0 {
        f |= CLONE_THREAD | CLONE_FS;
    }
    if f & CLONE_VM != 0 {
        f |= CLONE_SIGHAND;
    }
    if f & CLONE_SIGHAND != 0 {
        f |= CLONE_THREAD;
    }
    if f & CLONE_NEWNS != 0 {
        f |= CLONE_FS;
    }
    let t = super::current();
    // check_unshare_flags: what cannot be unshared must not be shared.
    if f & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != 0 && t.process.threads.lock().len() > 1 {
        return Err(EINVAL);
    }
    if f & (CLONE_SIGHAND | CLONE_VM) != 0 && Arc::strong_count(&t.sighand()) > 2 {
        return Err(EINVAL);
    }
    if f & CLONE_VM != 0 && Arc::strong_count(&t.mm()) > 2 {
        return Err(EINVAL);
    }
    if f & (CLONE_NEWANY | CLONE_NEWTIME) != 0 {
        crate::log_once!("unshare: namespaces other than IPC are not supported yet");
        return Err(EINVAL);
    }
    if f & CLONE_NEWIPC != 0 && !t.process.creds.lock().capable(super::cred::CAP_SYS_ADMIN) {
        return Err(EPERM);
    }
    // Copies only where shared (unshare_fs, unshare_fd), made before anything changes.
    let fs = (f & CLONE_FS != 0 && Arc::strong_count(&t.fs()) > 2).then(|| Arc::new(Mutex::new(t.fs().lock().clone())));
    let files = if f & CLONE_FILES != 0 && Arc::strong_count(&t.files()) > 2 {
        crate::mm::fail::slab_may_fail()?;
        Some(Arc::new(Mutex::new(t.files().lock().clone())))
    } else {
        None
    };
    // CLONE_SYSVSEM (and a new IPC namespace) detach the undo list: its adjustments are
    // applied now, as at exit.
    if f & (CLONE_SYSVSEM | CLONE_NEWIPC) != 0 {
        crate::ipc::sem::exit_sem(&t.process);
    }
    // Its segments in the old namespace become orphans (`exit_shm`).
    if f & CLONE_NEWIPC != 0 {
        crate::ipc::shm::exit_shm(&t);
    }
    let old_ns = (f & CLONE_NEWIPC != 0).then(|| t.ipc_ns.lock().replace(crate::ipc::IpcNamespace::new()));
    let old_fs = fs.map(|fs| core::mem::replace(&mut *t.fs.lock(), fs));
    let old_files = files.map(|files| core::mem::replace(&mut *t.files.lock(), files));
    // Dropped out of the task's locks: the last reference to a namespace takes its objects.
    drop((old_ns, old_fs, old_files));
    Ok(())
}

/// Creates the child and returns its tid (the parent's return value).
pub fn do_clone(frame: &TrapFrame, a: CloneArgs) -> KResult<Tid> {
    let f = a.flags;
    // copy_process's flag checks, in Linux's order.
    if f & (CLONE_NEWNS | CLONE_FS) == (CLONE_NEWNS | CLONE_FS)
        || f & (CLONE_NEWUSER | CLONE_FS) == (CLONE_NEWUSER | CLONE_FS)
    {
        return Err(EINVAL);
    }
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 {
        return Err(EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return Err(EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_CLEAR_SIGHAND != 0 {
        return Err(EINVAL);
    }
    if f & CLONE_PARENT != 0 && super::current().process.pid == 1 {
        return Err(EINVAL);
    }
    if f & CLONE_NEWANY != 0 {
        crate::log_once!("clone: namespaces other than IPC are not supported yet");
        return Err(EINVAL);
    }
    if f & CLONE_PIDFD != 0 {
        crate::log_once!("clone: CLONE_PIDFD is not supported yet");
        return Err(EINVAL);
    }

    let parent = super::current();
    // A dying caller makes nothing (Linux: copy_process's fatal_signal_pending check); the
    // error never reaches user space, the caller exits on its way out. A child that still
    // slips in meets the group's exit in its first exit_to_user_mode.
    if super::signal::fatal_signal_pending(&parent) || parent.process.group_exit.lock().is_some() {
        return Err(ERESTARTNOINTR);
    }
    // copy_process's `nr_threads >= max_threads`: every task in the system counts, and no
    // capability exempts the caller (only RLIMIT_NPROC has exemptions). Tasks being created
    // concurrently may slip past it together, as in Linux.
    if task::nr_threads_at_least(max_threads() as usize) {
        return Err(EAGAIN);
    }
    if f & CLONE_NEWIPC != 0 {
        check_new_ipc_ns(&parent, f)?;
    }
    let mm = if f & CLONE_VM != 0 {
        parent.mm()
    } else {
        // Out of memory retries after the OOM killer; a kill while waiting for the
        // parent's mmap_lock is EINTR.
        let r = crate::mm::oom_kill::retry_after_oom(|| match parent.mm().fork() {
            Err(e) if e == ENOMEM => None,
            r => Some(r),
        });
        r.ok_or(ENOMEM)??
    };
    let files = if f & CLONE_FILES != 0 {
        parent.files()
    } else {
        // Linux's dup_fd: the copied table is an allocation that can fail.
        crate::mm::fail::slab_may_fail()?;
        Arc::new(Mutex::new(parent.files().lock().clone()))
    };
    let fs = if f & CLONE_FS != 0 { parent.fs() } else { Arc::new(Mutex::new(parent.fs().lock().clone())) };
    let sighand = if f & CLONE_SIGHAND != 0 {
        parent.sighand()
    } else {
        let mut h = parent.sighand().lock().clone();
        if f & CLONE_CLEAR_SIGHAND != 0 {
            h.reset_for_exec();
        }
        Arc::new(Mutex::new(h))
    };
    let tid = task::alloc_tid();
    let pp = &parent.process;
    let process = if f & CLONE_THREAD != 0 {
        pp.clone()
    } else {
        let real_parent = if f & CLONE_PARENT != 0 { pp.parent.lock().clone() } else { Arc::downgrade(pp) };
        let p = task::new_process(
            tid,
            real_parent.clone(),
            pp.creds.lock().clone(),
            *pp.rlimits.lock(),
            pp.pgid(),
            pp.sid.load(Ordering::Relaxed),
            a.exit_signal,
        );
        p.dumpable.store(pp.dumpable.load(Ordering::Relaxed), Ordering::Relaxed);
        let ctty = pp.tty.lock().clone();
        *p.tty.lock() = ctty;
        if let Some(rp) = real_parent.upgrade() {
            rp.children.lock().push(p.clone());
        }
        p.oom_score_adj.store(pp.oom_score_adj.load(Ordering::Relaxed), Ordering::Relaxed);
        p.oom_score_adj_min.store(pp.oom_score_adj_min.load(Ordering::Relaxed), Ordering::Relaxed);
        p
    };
    // The child starts from the parent's current FPU registers.
    let mut fpu = Box::new(FpuState::initial());
    fpu.save();
    let blocked = parent.sig.lock().blocked;
    let altstack =
        if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 { Default::default() } else { parent.sig.lock().altstack };
    let fs_base = if f & CLONE_SETTLS != 0 { a.tls } else { parent.fs_base.load(Ordering::Relaxed) };
    // `copy_namespaces`, checked above.
    let ipc_ns = if f & CLONE_NEWIPC != 0 { crate::ipc::IpcNamespace::new() } else { crate::ipc::task_ipc_ns(&parent) };
    let child = task::create_task(NewTask {
        tid,
        process: process.clone(),
        mm: mm.clone(),
        files,
        fs,
        sighand,
        sig: super::signal::SigState { blocked, altstack, ..Default::default() },
        fpu,
        fs_base,
        comm: *parent.comm.lock(),
        cpus_allowed: parent.cpus_allowed.load(Ordering::Relaxed),
        ipc_ns,
    });
    let Some(child) = child else {
        unwind_failed_clone(&process, tid, f);
        return Err(ENOMEM);
    };
    child.rseq.fork(&parent.rseq, f & CLONE_VM != 0);
    if f & CLONE_PARENT_SETTID != 0 {
        let _ = crate::mm::usercopy::write_val(&parent.mm(), a.parent_tid, &tid);
    }
    if f & CLONE_CHILD_SETTID != 0 {
        let _ = crate::mm::usercopy::write_val(&mm, a.child_tid, &tid);
    }
    if f & CLONE_CHILD_CLEARTID != 0 {
        child.clear_child_tid.store(a.child_tid, Ordering::Relaxed);
    }
    let mut cf = *frame;
    cf.rax = 0;
    if a.stack != 0 {
        cf.rsp = a.stack;
    }
    let rsp = child.kstack.prepare(&cf);
    child.saved_rsp.store(rsp, Ordering::Relaxed);
    let vfork = (f & CLONE_VFORK != 0).then(|| {
        let c = Arc::new(Completion::new());
        *child.vfork_done.lock() = Some(c.clone());
        c
    });
    FORKS.fetch_add(1, Ordering::Relaxed);
    super::sched::add_task(child);
    if let Some(c) = vfork {
        // A fatal signal ends the wait; the parent dies on its way out and the child runs on
        // (Linux's `wait_for_vfork_done`).
        let _ = c.wait_killable();
    }
    Ok(tid)
}

fn unwind_failed_clone(process: &Arc<task::Process>, tid: Tid, flags: u64) {
    let mut t = task::TABLES.lock();
    t.tasks.remove(&tid);
    if flags & CLONE_THREAD == 0 {
        t.processes.remove(&tid);
        drop(t);
        // Out of the parent link's lock: the parent's children list is outside it.
        let parent = process.parent.lock().upgrade();
        if let Some(p) = parent {
            p.children.lock().retain(|c| c.pid != tid);
        }
    }
}
