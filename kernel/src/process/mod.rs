//! Processes and threads: tasks, the scheduler, fork/exec/exit/wait,
//! signals, futexes.

pub mod cred;
pub mod exec;
pub mod exit;
pub mod fork;
pub mod futex;
pub mod itimer;
pub mod membarrier;
pub mod posix_timer;
pub mod rseq;
pub mod sched;
pub mod signal;
pub mod sleep;
pub mod task;
pub mod wait_queue;

use crate::arch::trap::TrapFrame;
use crate::errno::*;
use crate::mm::address_space::MmStruct;
use crate::mm::fault::{fault_in, Access, FaultError};
use crate::sync::SpinLock as Mutex;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use task::{Creds, FsContext, NewTask, Task};

/// The running task. Only called from task context (syscalls, user traps).
pub fn current() -> Arc<Task> {
    sched::current().expect("no current task")
}

pub fn current_mm() -> Arc<MmStruct> {
    current().mm()
}

/// A CPU exception raised in user mode: page faults go to the VM, the rest
/// become signals (Linux's `exc_page_fault` → `do_user_addr_fault`).
pub fn user_exception(frame: &mut TrapFrame, cr2: u64) {
    let t = current();
    if frame.vector == crate::arch::trap::VECTOR_PAGE_FAULT {
        let access = Access { write: frame.error_code & 2 != 0, exec: frame.error_code & 0x10 != 0 };
        let mm = t.mm();
        let r = fault_in(&mm, cr2, access);
        drop(mm);
        t.process.min_flt.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let info = match r {
            Ok(()) => return,
            // `fault_in` resolves NeedWrite itself.
            Err(FaultError::MapErr | FaultError::NeedWrite(_)) => {
                signal::SigInfo::fault(signal::SIGSEGV, signal::SEGV_MAPERR, cr2)
            }
            Err(FaultError::AccErr) => signal::SigInfo::fault(signal::SIGSEGV, signal::SEGV_ACCERR, cr2),
            Err(FaultError::Bus) => signal::SigInfo::fault(signal::SIGBUS, signal::BUS_ADRERR, cr2),
            Err(FaultError::Oom) => {
                // The OOM killer frees memory (or the faulting process is the one dying,
                // and exits on its way out); the fault is then taken again.
                if crate::mm::oom_kill::pagefault_out_of_memory() {
                    return;
                }
                log::error!("Out of memory: no victim freed a page, killing pid {} at fault {:#x}", t.process.pid, cr2);
                signal::SigInfo::new(signal::SIGKILL, signal::SI_KERNEL)
            }
        };
        signal::force_signal(&t, info);
        return;
    }
    signal::exception_signal(&t, frame, cr2);
}

/// Work before returning to user mode: reschedule when the slice is used,
/// deliver signals (Linux's `exit_to_user_mode_loop`).
pub fn exit_to_user_mode(frame: &mut TrapFrame) {
    // The interval timers and the console's input have their own cheap tests; what they
    // raise (SIGALRM, ^C) sets the work note like any signal.
    itimer::check_expired();
    posix_timer::check_expired();
    crate::tty::receive_console_input();
    // The fast path (Linux's `exit_to_user_mode_prepare` testing the thread flags): no
    // work noted, no reschedule, no rseq notification, no syscall to restart.
    let quiet = sched::with_current(|t| !t.has_pending_work() && !t.rseq.notify_pending()).unwrap_or(false);
    if quiet && !sched::need_resched() && !signal::wants_restart(frame) {
        return;
    }
    loop {
        // Taken before looking: a signal queued meanwhile sets it again.
        current().take_pending_work();
        // The only place a task exits: every syscall has returned, so whatever it
        // held has been dropped. An exit_group or fatal signal (`kill_group`) has set
        // the group's status and killed every thread; that comes before any handler
        // of another pending signal.
        let exiting = {
            let t = current();
            let own = t.exit_status.lock().take();
            let group = *t.process.group_exit.lock();
            group.or(own)
        };
        if let Some(status) = exiting {
            exit::do_exit(status);
        }
        itimer::check_expired();
        posix_timer::check_expired();
        crate::tty::receive_console_input();
        if sched::need_resched() {
            sched::schedule();
        }
        // execve in another thread of this process: this one goes (de_thread).
        let zapped = {
            let t = current();
            let by = *t.process.exec_by.lock();
            by.is_some_and(|tid| tid != t.tid())
        };
        if zapped {
            exit::do_exit(0);
        }
        let fatal = {
            let t = current();
            let fatal = if signal::signal_pending(&t) { signal::do_signal(&t, frame) } else { None };
            // rt_sigsuspend's mask goes back when no handler took it over.
            let mut s = t.sig.lock();
            if let Some(m) = s.saved_mask.take() {
                s.blocked = m;
            }
            fatal
        };
        if let Some(status) = fatal {
            exit::group_exit(status);
        }
        // A syscall interrupted by a signal that ran no handler is restarted.
        signal::restart_syscall(frame, None);
        // TIF_NOTIFY_RESUME's rseq work (`resume_user_mode_work`), with the address the
        // thread returns to; bad rseq memory brings SIGSEGV, delivered on the next pass.
        let t = current();
        if t.rseq.take_notify() && rseq::handle_notify_resume(&t, frame).is_err() {
            signal::force_signal(&t, signal::SigInfo::new(signal::SIGSEGV, signal::SI_KERNEL));
            continue;
        }
        // A signal left deliverable (one is delivered a pass) keeps the note for the next
        // return (`recalc_sigpending`).
        if signal::signal_pending(&t) {
            t.set_pending_work();
        }
        drop(t);
        if !sched::need_resched() {
            break;
        }
    }
}

const INIT_ENV: [&[u8]; 4] = [b"HOME=/", b"TERM=linux", b"PATH=/bin:/sbin:/usr/bin:/usr/sbin", b"USER=root"];

/// Frames in use that no file owns: page-cache pages belong to files that
/// still exist (/tmp leftovers are not leaks), everything else to tasks.
pub(crate) fn unowned_frames() -> u64 {
    crate::mm::frame::frames_in_use() - crate::mm::page_cache::SHMEM_PAGES.load(core::sync::atomic::Ordering::Relaxed)
}

/// Starts pid 1 from `path` with `args`, stdin/stdout/stderr on the console.
pub fn spawn_init(path: &str, args: &[&str]) -> KResult<()> {
    // The first IPC namespace lives as long as the kernel: made before the baseline.
    crate::ipc::init_ipc_ns();
    crate::leak::record_baseline();
    let root = crate::fs::root();
    let console = crate::fs::path::lookup_from(&Creds::root(), root.clone(), root.clone(), b"/dev/console", true)?;
    let mut files = crate::fs::fdtable::FdTable::new();
    for _ in 0..3 {
        let kind = console.open(&console, crate::fs::file::O_RDWR).ok_or(ENODEV)??;
        let f = crate::fs::file::File::new(kind, crate::fs::file::O_RDWR, String::from("/dev/console"));
        files.alloc(f, false, 0, 1024)?;
    }
    let tid = task::alloc_tid();
    assert_eq!(tid, 1, "init must be pid 1");
    // Linux's init inherits the idle task's process group and session, both 0: it leads
    // neither, so it may call setsid() itself, and a group whose members' parent is init
    // stays orphaned (`will_become_orphaned_pgrp`).
    let process =
        task::new_process(tid, alloc::sync::Weak::new(), Creds::root(), task::default_rlimits(), 0, 0, signal::SIGCHLD);
    let t = task::create_task(NewTask {
        tid,
        process,
        mm: MmStruct::new().ok_or(ENOMEM)?,
        files: Arc::new(Mutex::new(files)),
        fs: Arc::new(Mutex::new(FsContext { cwd: root, cwd_path: String::from("/"), umask: 0o022 })),
        sighand: Arc::new(Mutex::new(signal::SigHandlers::new())),
        sig: Default::default(),
        fpu: alloc::boxed::Box::new(crate::arch::context::FpuState::initial()),
        fs_base: 0,
        comm: task::comm_from_path(path.as_bytes()),
        cpus_allowed: task::ALL_CPUS,
        ipc_ns: crate::ipc::init_ipc_ns(),
    })
    .ok_or(ENOMEM)?;
    let mut argv: Vec<Vec<u8>> = alloc::vec![path.as_bytes().to_vec()];
    argv.extend(args.iter().map(|a| a.as_bytes().to_vec()));
    let envp: Vec<Vec<u8>> = INIT_ENV.iter().map(|e| e.to_vec()).collect();
    let mut frame = TrapFrame::default();
    exec::exec_into(&t, &mut frame, path.as_bytes().to_vec(), argv, envp)?;
    let rsp = t.kstack.prepare(&frame);
    t.saved_rsp.store(rsp, core::sync::atomic::Ordering::Relaxed);
    sched::add_task(t);
    Ok(())
}
