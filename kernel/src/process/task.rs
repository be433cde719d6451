//! Tasks (threads) and processes (thread groups), after Linux's
//! `task_struct` and `signal_struct`: a task has a kernel stack, saved
//! context, FPU state and the resources it may share with others (mm, file
//! table, fs context, signal handlers), each behind an `Arc` so that CLONE_*
//! flags decide what is shared.

use super::signal::{SigHandlersLock, SigPending, SigState};
use super::wait_queue::WaitQueue;
use crate::arch::context::FpuState;
use crate::fs::fdtable::FdTableLock;
use crate::fs::vfs::Inode;
use crate::mm::address_space::MmStruct;
use crate::sync::order;
use crate::sync::SpinLock as Mutex;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

pub type Tid = u32;

pub use crate::arch::context::KernelStack;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TaskState {
    Runnable = 0,
    Running = 1,
    /// Sleeping; a signal wakes it.
    Interruptible = 2,
    /// Sleeping; only the event it waits for wakes it.
    Uninterruptible = 3,
    /// Exited; its stack is freed when the last reference goes.
    Dead = 4,
    /// Sleeping; the event or a fatal signal wakes it (Linux's TASK_KILLABLE).
    Killable = 5,
}

/// Working directory and umask (CLONE_FS shares them).
/// An fs context as tasks share it (CLONE_FS).
pub type FsContextLock = Mutex<FsContext, order::FsContext>;

#[derive(Clone)]
pub struct FsContext {
    pub cwd: Arc<dyn Inode>,
    pub cwd_path: String,
    pub umask: u32,
}

pub struct Task {
    /// The thread id; changes once if a non-leader thread execs (it takes the
    /// leader's id, as Linux's de_thread).
    tid: AtomicU32,
    pub process: Arc<Process>,
    pub kstack: KernelStack,
    /// Saved kernel RSP while switched out.
    pub saved_rsp: AtomicU64,
    state: AtomicU8,
    pub mm: Mutex<Option<Arc<MmStruct>>, order::TaskMm>,
    pub files: Mutex<Arc<FdTableLock>, order::TaskFiles>,
    pub fs: Mutex<Arc<FsContextLock>, order::TaskFs>,
    pub sighand: Mutex<Arc<SigHandlersLock>, order::TaskSighand>,
    pub sig: Mutex<SigState, order::TaskSig>,
    pub fpu: Mutex<Box<FpuState>, order::Fpu>,
    pub fs_base: AtomicU64,
    /// set_tid_address / CLONE_CHILD_CLEARTID: zeroed and futex-woken at exit.
    pub clear_child_tid: AtomicU64,
    pub robust_list: AtomicU64,
    /// The restartable-sequences registration (`rseq.rs`).
    pub rseq: super::rseq::Rseq,
    /// The vfork parent waits here until this task execs or exits.
    pub vfork_done: Mutex<Option<Arc<super::wait_queue::Completion>>, order::VforkDone>,
    /// Set by the `exit` syscall: the wait status this thread ends with in
    /// `exit_to_user_mode`, after the syscall has returned and dropped what it held.
    pub exit_status: Mutex<Option<i32>, order::ExitStatus>,
    /// Work the return to user mode must look for under its locks (Linux's
    /// TIF_SIGPENDING, with the exit and mask changes that Linux's other flags carry):
    /// set by whoever queues a signal for the thread or its process, changes its blocked
    /// or saved mask, or sets its exit; cleared by `exit_to_user_mode` before it looks,
    /// and set again if a deliverable signal is left. Only a hint that something may be
    /// due: a spurious one costs one slow pass, a missing one would lose a signal.
    pending_work: AtomicBool,
    /// Timer deadline (ns since boot) while sleeping with a timeout; 0 if none.
    pub wake_at: AtomicU64,
    /// The command name (`comm`): the executable's base name, or PR_SET_NAME's.
    pub comm: Mutex<[u8; 16], order::Comm>,
    /// CPU time: ns run before the current stint, when that stint began, and
    /// timer ticks that found it in the kernel (system time is sampled, as
    /// Linux's tick-based accounting does).
    pub runtime_ns: AtomicU64,
    pub on_cpu_since: AtomicU64,
    pub sys_ticks: AtomicU64,
    /// The last system calls, for `syscall::dump_tasks`.
    pub syscalls: crate::syscall::trace::SyscallRing,
    /// When the current sleep began (ns since boot), for the hung-task watchdog.
    pub sleep_since: AtomicU64,
    /// The CPU whose run queue holds this task, that runs it, or that ran it last
    /// (Linux's `task_cpu`); changed under that run queue's lock (`sched`).
    pub cpu: AtomicU32,
    /// Queued or running on `cpu` (Linux's `on_rq`), under the same lock.
    pub on_rq: AtomicBool,
    /// Picked by a CPU and not yet fully switched away from (Linux's `on_cpu`): no other
    /// CPU may start it meanwhile.
    pub on_cpu: AtomicBool,
    /// The CPUs it may run on (Linux's `cpus_mask`, `sched_setaffinity`); inherited by
    /// fork and clone.
    pub cpus_allowed: AtomicU64,
    /// The SysV IPC namespace it sees (Linux's `nsproxy->ipc_ns`); None once it has exited.
    pub ipc_ns: Mutex<Option<Arc<crate::ipc::IpcNamespace>>, order::TaskIpcNs>,
    /// The SysV segments it created and still is the creator of (Linux's
    /// `sysvshm.shm_clist`): orphaned at its exit (`ipc::shm::exit_shm`).
    pub shm_clist: Mutex<alloc::vec::Vec<(alloc::sync::Weak<crate::ipc::IpcNamespace>, i32)>, order::ShmClist>,
    _live: crate::leak::Live,
}

/// Nanoseconds per timer tick (and per USER_HZ clock tick: both are 100 Hz).
pub const TICK_NS: u64 = 10_000_000;

/// CPU time in ns: (user, system).
#[derive(Clone, Copy, Default, Debug)]
pub struct CpuTime {
    pub user: u64,
    pub sys: u64,
}

impl CpuTime {
    fn from_parts(total: u64, sys_ticks: u64) -> CpuTime {
        let sys = (sys_ticks * TICK_NS).min(total);
        CpuTime { user: total - sys, sys }
    }
}

impl Task {
    /// Notes that the return to user mode has work to look for (`set_tsk_thread_flag`).
    pub fn set_pending_work(&self) {
        self.pending_work.store(true, Ordering::SeqCst);
    }

    /// Takes the note (`exit_to_user_mode`'s slow path clears it before it looks).
    pub fn take_pending_work(&self) -> bool {
        self.pending_work.swap(false, Ordering::SeqCst)
    }

    /// Whether the note is set.
    pub fn has_pending_work(&self) -> bool {
        self.pending_work.load(Ordering::SeqCst)
    }

    /// This thread's CPU time so far, the running stint included.
    pub fn cpu_ns(&self) -> u64 {
        let mut t = self.runtime_ns.load(Ordering::Relaxed);
        if self.state() == TaskState::Running {
            t += crate::time::monotonic_ns().saturating_sub(self.on_cpu_since.load(Ordering::Relaxed));
        }
        t
    }

    pub fn cpu_time(&self) -> CpuTime {
        CpuTime::from_parts(self.cpu_ns(), self.sys_ticks.load(Ordering::Relaxed))
    }
}

/// `comm` from a path: its last component, truncated to 15 bytes.
pub fn comm_from_path(path: &[u8]) -> [u8; 16] {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let mut c = [0u8; 16];
    let n = base.len().min(15);
    c[..n].copy_from_slice(&base[..n]);
    c
}

impl Task {
    pub fn tid(&self) -> Tid {
        self.tid.load(Ordering::Relaxed)
    }

    /// Takes over the thread-group leader's id (exec from a non-leader thread).
    pub fn become_leader(self: &Arc<Self>) {
        let pid = self.process.pid;
        let mut tables = TABLES.lock();
        tables.tasks.remove(&self.tid());
        self.tid.store(pid, Ordering::Relaxed);
        tables.tasks.insert(pid, Arc::downgrade(self));
    }

    pub fn state(&self) -> TaskState {
        match self.state.load(Ordering::Acquire) {
            0 => TaskState::Runnable,
            1 => TaskState::Running,
            2 => TaskState::Interruptible,
            3 => TaskState::Uninterruptible,
            5 => TaskState::Killable,
            _ => TaskState::Dead,
        }
    }

    pub fn set_state(&self, s: TaskState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Atomically moves from `from` to `to`; false if the state was different.
    pub fn transition(&self, from: TaskState, to: TaskState) -> bool {
        self.state.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    pub fn mm(&self) -> Arc<MmStruct> {
        self.mm.lock().clone().expect("user task without mm")
    }

    pub fn files(&self) -> Arc<FdTableLock> {
        self.files.lock().clone()
    }

    pub fn fs(&self) -> Arc<FsContextLock> {
        self.fs.lock().clone()
    }

    pub fn sighand(&self) -> Arc<SigHandlersLock> {
        self.sighand.lock().clone()
    }
}

pub use super::cred::Creds;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}
crate::impl_pod!(Rlimit);

pub const RLIM_INFINITY: u64 = u64::MAX;
pub const RLIMIT_NLIMITS: usize = 16;
pub const RLIMIT_STACK: usize = 3;
pub const RLIMIT_AS: usize = 9;
pub const RLIMIT_NOFILE: usize = 7;
pub const RLIMIT_MEMLOCK: usize = 8;
pub const RLIMIT_NPROC: usize = 6;
pub const RLIMIT_SIGPENDING: usize = 11;

/// Linux's defaults for init (include/asm-generic/resource.h).
pub fn default_rlimits() -> [Rlimit; RLIMIT_NLIMITS] {
    let inf = Rlimit { cur: RLIM_INFINITY, max: RLIM_INFINITY };
    let mut r = [inf; RLIMIT_NLIMITS];
    r[RLIMIT_STACK] = Rlimit { cur: 8 << 20, max: RLIM_INFINITY };
    r[4] = Rlimit { cur: 0, max: RLIM_INFINITY }; // RLIMIT_CORE
    r[RLIMIT_NOFILE] = Rlimit { cur: 1024, max: 4096 };
    r[RLIMIT_MEMLOCK] = Rlimit { cur: 8 << 20, max: 8 << 20 };
    r[RLIMIT_NPROC] = Rlimit { cur: 63_000, max: 63_000 };
    r[RLIMIT_SIGPENDING] = Rlimit { cur: 63_000, max: 63_000 };
    r[12] = Rlimit { cur: 819_200, max: 819_200 }; // RLIMIT_MSGQUEUE
    r[13] = Rlimit { cur: 0, max: 0 }; // RLIMIT_NICE
    r[14] = Rlimit { cur: 0, max: 0 }; // RLIMIT_RTPRIO
    r
}

/// How a process ended, as wait4 reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// The wait status word (`WIFEXITED`/`WIFSIGNALED` encoding).
    pub status: i32,
}

pub struct Process {
    pub pid: Tid,
    pub parent: Mutex<Weak<Process>, order::ProcessParent>,
    pub children: Mutex<Vec<Arc<Process>>, order::ProcessChildren>,
    pub threads: Mutex<Vec<Arc<Task>>, order::ProcessThreads>,
    /// Set once the whole group has exited (zombie until reaped).
    pub exit: Mutex<Option<ExitInfo>, order::ProcessExit>,
    /// exit_group in progress: its code, and remaining threads die.
    pub group_exit: Mutex<Option<i32>, order::GroupExit>,
    /// wait4 callers sleeping for a child of this process.
    pub child_wait: WaitQueue,
    pub creds: Mutex<Creds, order::Creds>,
    pub rlimits: Mutex<[Rlimit; RLIMIT_NLIMITS], order::Rlimits>,
    pub pgid: AtomicU32,
    pub sid: AtomicU32,
    /// The id the next POSIX timer tries (`signal->next_posix_timer_id`): 0 in a new
    /// process, kept across execve.
    pub next_timer_id: AtomicU32,
    /// The controlling terminal (Linux's `signal->tty`): the same for the whole session,
    /// given by TIOCSCTTY or a session leader's open, dropped by setsid and hangups.
    pub tty: Mutex<Option<Arc<crate::tty::Tty>>, order::ProcessTty>,
    /// It has called execve since its fork (Linux's PF_FORKNOEXEC cleared): its parent's
    /// setpgid then fails with EACCES.
    pub did_exec: core::sync::atomic::AtomicBool,
    /// Signal sent to the parent at exit (SIGCHLD, or clone's low byte).
    pub exit_signal: u32,
    /// Process-directed pending signals.
    pub shared_pending: Mutex<SigPending, order::SharedPending>,
    /// Minor page faults (for getrusage later) and the children's totals.
    pub min_flt: AtomicU64,
    /// Job control: stopped by SIGSTOP & co. until SIGCONT.
    pub stopped: core::sync::atomic::AtomicBool,
    /// Linux's `mm->flags` dumpability (SUID_DUMP_DISABLE 0 or SUID_DUMP_USER 1): who owns
    /// `/proc/pid` (the process's effective ids, or root) and what PR_GET_DUMPABLE says.
    /// Cleared by a change of effective or fs ids; exec sets it again.
    pub dumpable: core::sync::atomic::AtomicU8,
    /// A stop or continue not yet reported to wait (WUNTRACED/WCONTINUED).
    pub job_report: Mutex<Option<JobReport>, order::JobReport>,
    /// The SysV semaphore sets holding SEM_UNDO adjustments of this process (its threads
    /// share them), applied at its exit (`ipc::sem::exit_sem`).
    pub sem_undo: Mutex<Vec<(Arc<crate::ipc::IpcNamespace>, i32)>, order::SemUndo>,
    /// Threads of a stopped process sleep here.
    pub stop_wait: WaitQueue,
    /// The thread running execve while the others are told to go (de_thread).
    pub exec_by: Mutex<Option<Tid>, order::ExecBy>,
    /// Woken whenever a thread of this process exits.
    pub thread_exit: WaitQueue,
    /// Nice value (-20..19) of setpriority; no scheduler weight yet.
    pub nice: core::sync::atomic::AtomicI32,
    /// /proc/PID/oom_score_adj (-1000..1000): shifts the OOM killer's badness; -1000 exempts.
    pub oom_score_adj: core::sync::atomic::AtomicI32,
    /// The floor an unprivileged write of oom_score_adj may not go below: the last
    /// value a CAP_SYS_RESOURCE writer set.
    pub oom_score_adj_min: core::sync::atomic::AtomicI32,
    /// CPU time of exited threads (ns, system ticks) and of reaped children
    /// (their own and their reaped children's), for times/getrusage.
    pub dead_cpu: Mutex<(u64, u64), order::DeadCpu>,
    pub children_cpu: Mutex<(u64, u64), order::ChildrenCpu>,
    _live: crate::leak::Live,
}

/// A job-control event for the parent's wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobReport {
    Stopped(u32),
    Continued,
}

impl Process {
    pub fn pgid(&self) -> Tid {
        self.pgid.load(Ordering::Relaxed)
    }
    pub fn parent_pid(&self) -> Tid {
        self.parent.lock().upgrade().map(|p| p.pid).unwrap_or(0)
    }
    pub fn rlimit(&self, r: usize) -> Rlimit {
        self.rlimits.lock()[r]
    }
    pub fn is_zombie(&self) -> bool {
        self.exit.lock().is_some()
    }

    /// The first live thread, taken out of the thread list's lock: a thread's own locks
    /// (its name, handlers) are outside the list's.
    pub fn first_thread(&self) -> Option<Arc<Task>> {
        self.threads.lock().first().cloned()
    }

    /// (ns, system ticks) of every thread, live and exited.
    fn cpu_parts(&self) -> (u64, u64) {
        let (mut ns, mut ticks) = *self.dead_cpu.lock();
        for t in self.threads.lock().iter() {
            ns += t.cpu_ns();
            ticks += t.sys_ticks.load(Ordering::Relaxed);
        }
        (ns, ticks)
    }

    pub fn cpu_time(&self) -> CpuTime {
        let (ns, ticks) = self.cpu_parts();
        CpuTime::from_parts(ns, ticks)
    }

    pub fn children_cpu_time(&self) -> CpuTime {
        let (ns, ticks) = *self.children_cpu.lock();
        CpuTime::from_parts(ns, ticks)
    }

    /// What a parent adds to its children's time when it reaps this process.
    pub fn reaped_cpu_parts(&self) -> (u64, u64) {
        let (ns, ticks) = self.cpu_parts();
        let (cns, cticks) = *self.children_cpu.lock();
        (ns + cns, ticks + cticks)
    }
}

/// Every live task by tid, and every process (live or zombie) by pid.
pub struct Tables {
    pub tasks: BTreeMap<Tid, Weak<Task>>,
    pub processes: BTreeMap<Tid, Weak<Process>>,
    next_tid: Tid,
}

pub static TABLES: Mutex<Tables, order::TaskTables> =
    Mutex::new(Tables { tasks: BTreeMap::new(), processes: BTreeMap::new(), next_tid: 1 });

/// Every process in the table (zombies included), in pid order: a snapshot taken
/// under the table lock, for walks that then lock each process.
pub fn all_processes() -> Vec<Arc<Process>> {
    TABLES.lock().processes.values().filter_map(Weak::upgrade).collect()
}

/// `kernel.pid_max`: ids are handed out below it (PID_MAX_DEFAULT).
pub static PID_MAX: AtomicU32 = AtomicU32::new(32768);
/// Ids below it are left to early processes once the ids have wrapped (RESERVED_PIDS).
const RESERVED_PIDS: Tid = 300;

/// A free id (Linux's `alloc_pid`: cyclically below `kernel.pid_max`, from
/// RESERVED_PIDS after the first wrap). Should every id below pid_max be taken, ids
/// above it are used rather than failing the caller.
pub fn alloc_tid() -> Tid {
    let pid_max = PID_MAX.load(Ordering::Relaxed);
    let mut t = TABLES.lock();
    let mut tries: Tid = 0;
    loop {
        let mut id = t.next_tid;
        if id >= pid_max && tries < pid_max {
            id = RESERVED_PIDS;
        }
        tries = tries.saturating_add(1);
        t.next_tid = if id + 1 >= pid_max && tries < pid_max { RESERVED_PIDS } else { id + 1 };
        if !t.tasks.contains_key(&id) && !t.processes.contains_key(&id) {
            // Reserve it so no concurrent allocation hands it out twice.
            t.tasks.insert(id, Weak::new());
            return id;
        }
    }
}

pub fn find_task(tid: Tid) -> Option<Arc<Task>> {
    TABLES.lock().tasks.get(&tid).and_then(|w| w.upgrade())
}

pub fn find_process(pid: Tid) -> Option<Arc<Process>> {
    TABLES.lock().processes.get(&pid).and_then(|w| w.upgrade())
}

pub struct NewTask {
    pub tid: Tid,
    pub process: Arc<Process>,
    pub mm: Arc<MmStruct>,
    pub files: Arc<FdTableLock>,
    pub fs: Arc<FsContextLock>,
    pub sighand: Arc<SigHandlersLock>,
    pub sig: SigState,
    pub fpu: Box<FpuState>,
    pub fs_base: u64,
    pub comm: [u8; 16],
    /// The affinity mask: the parent's for fork and clone, every CPU for init.
    pub cpus_allowed: u64,
    /// The IPC namespace: the parent's (or a new one) for fork and clone, the first one
    /// for init.
    pub ipc_ns: Arc<crate::ipc::IpcNamespace>,
}

/// The affinity of a task that inherits none: every CPU.
pub const ALL_CPUS: u64 = u64::MAX;

/// A task of a process of its own, named `comm` (root credentials, default limits, an
/// empty address space, no open files, `/` as its directory), registered but not yet
/// runnable: the kernel's own test tasks.
pub fn create_bare_task(comm: &str) -> Option<Arc<Task>> {
    let tid = alloc_tid();
    let process = new_process(tid, alloc::sync::Weak::new(), Creds::root(), default_rlimits(), tid, tid, 0);
    let mut name = [0u8; 16];
    let n = comm.len().min(15);
    name[..n].copy_from_slice(&comm.as_bytes()[..n]);
    create_task(NewTask {
        tid,
        process,
        mm: MmStruct::new()?,
        files: Arc::new(Mutex::new(crate::fs::fdtable::FdTable::new())),
        fs: Arc::new(Mutex::new(FsContext { cwd: crate::fs::root(), cwd_path: "/".into(), umask: 0o022 })),
        sighand: Arc::new(Mutex::new(super::signal::SigHandlers::new())),
        sig: Default::default(),
        fpu: Box::new(FpuState::initial()),
        fs_base: 0,
        comm: name,
        cpus_allowed: ALL_CPUS,
        ipc_ns: crate::ipc::init_ipc_ns(),
    })
}

/// Builds a task (not yet runnable) and registers it.
pub fn create_task(n: NewTask) -> Option<Arc<Task>> {
    // The task itself (Linux's dup_task_struct), then its stack: either can fail.
    crate::mm::fail::slab_may_fail().ok()?;
    let kstack = KernelStack::new()?;
    let t = Arc::new(Task {
        tid: AtomicU32::new(n.tid),
        process: n.process.clone(),
        kstack,
        saved_rsp: AtomicU64::new(0),
        state: AtomicU8::new(TaskState::Runnable as u8),
        mm: Mutex::new(Some(n.mm)),
        files: Mutex::new(n.files),
        fs: Mutex::new(n.fs),
        sighand: Mutex::new(n.sighand),
        sig: Mutex::new(n.sig),
        fpu: Mutex::new(n.fpu),
        fs_base: AtomicU64::new(n.fs_base),
        clear_child_tid: AtomicU64::new(0),
        robust_list: AtomicU64::new(0),
        rseq: Default::default(),
        vfork_done: Mutex::new(None),
        exit_status: Mutex::new(None),
        // A new thread's first return looks at everything.
        pending_work: AtomicBool::new(true),
        wake_at: AtomicU64::new(0),
        comm: Mutex::new(n.comm),
        runtime_ns: AtomicU64::new(0),
        on_cpu_since: AtomicU64::new(0),
        sys_ticks: AtomicU64::new(0),
        syscalls: Default::default(),
        sleep_since: AtomicU64::new(0),
        cpu: AtomicU32::new(0),
        on_rq: AtomicBool::new(false),
        on_cpu: AtomicBool::new(false),
        cpus_allowed: AtomicU64::new(n.cpus_allowed),
        ipc_ns: Mutex::new(Some(n.ipc_ns)),
        shm_clist: Mutex::new(alloc::vec::Vec::new()),
        _live: crate::leak::TASKS.live(),
    });
    TABLES.lock().tasks.insert(n.tid, Arc::downgrade(&t));
    n.process.threads.lock().push(t.clone());
    Some(t)
}

pub const SUID_DUMP_DISABLE: u8 = 0;
pub const SUID_DUMP_USER: u8 = 1;

pub fn new_process(
    pid: Tid,
    parent: Weak<Process>,
    creds: Creds,
    rlimits: [Rlimit; RLIMIT_NLIMITS],
    pgid: Tid,
    sid: Tid,
    exit_signal: u32,
) -> Arc<Process> {
    let p = Arc::new(Process {
        pid,
        parent: Mutex::new(parent),
        children: Mutex::new(Vec::new()),
        threads: Mutex::new(Vec::new()),
        exit: Mutex::new(None),
        group_exit: Mutex::new(None),
        child_wait: WaitQueue::new(),
        creds: Mutex::new(creds),
        rlimits: Mutex::new(rlimits),
        pgid: AtomicU32::new(pgid),
        sid: AtomicU32::new(sid),
        next_timer_id: AtomicU32::new(0),
        tty: Mutex::new(None),
        did_exec: core::sync::atomic::AtomicBool::new(false),
        exit_signal,
        shared_pending: Mutex::new(SigPending::default()),
        min_flt: AtomicU64::new(0),
        stopped: core::sync::atomic::AtomicBool::new(false),
        dumpable: core::sync::atomic::AtomicU8::new(SUID_DUMP_USER),
        job_report: Mutex::new(None),
        sem_undo: Mutex::new(Vec::new()),
        stop_wait: WaitQueue::new(),
        exec_by: Mutex::new(None),
        thread_exit: WaitQueue::new(),
        nice: core::sync::atomic::AtomicI32::new(0),
        oom_score_adj: core::sync::atomic::AtomicI32::new(0),
        oom_score_adj_min: core::sync::atomic::AtomicI32::new(0),
        dead_cpu: Mutex::new((0, 0)),
        children_cpu: Mutex::new((0, 0)),
        _live: crate::leak::PROCESSES.live(),
    });
    TABLES.lock().processes.insert(pid, Arc::downgrade(&p));
    p
}

/// Frees the task and process tables' nodes once they are empty (`leak`'s shrinkers).
pub fn shrink() {
    let mut t = TABLES.lock();
    if t.tasks.is_empty() {
        t.tasks = BTreeMap::new();
    }
    if t.processes.is_empty() {
        t.processes = BTreeMap::new();
    }
}

/// Whether Linux's `nr_threads`, the tasks in the system, is at least `limit`. A zombie
/// process (all its threads gone, not yet reaped) counts as the one task Linux keeps for
/// it until the reap. The zombies are counted only when they could make the difference.
pub fn nr_threads_at_least(limit: usize) -> bool {
    let (tasks, processes) = live_counts();
    if tasks >= limit || tasks + processes < limit {
        return tasks >= limit;
    }
    let zombies = all_processes().iter().filter(|p| p.threads.lock().is_empty()).count();
    tasks + zombies >= limit
}

/// (tasks, processes) in the tables.
pub fn live_counts() -> (usize, usize) {
    let t = TABLES.lock();
    (t.tasks.len(), t.processes.len())
}
