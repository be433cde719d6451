//! The lock order: every lock class of the kernel and its level. A lock may be
//! taken only while every lock the CPU holds has a lower level (`lockdep.rs` checks
//! it); two classes of one level are never held together. Each lock's declaration
//! names its class, e.g. `page_table_lock: SpinLock<MmPageTable, order::PageTableLock>`; this table is
//! also in docs/architecture.md ("Lock order").
//!
//! From the outside in:
//! - 100..: files, pipes, tmpfs directories, fd tables and a task's handler slots.
//! - 150..: futex buckets, a tmpfs file, then a page cache (its pages, or its `i_mmap`
//!   tree: never the two together), then an address space's page tables
//!   (`MmStruct::page_table_lock`).
//! - 200..: a process's and a task's state (taken under the address space), then the
//!   task and process table.
//! - 600..: leaf locks with nothing but the heap and below under them.
//! - 700..: locks an interrupt handler takes (wait queues, the sleeper list, the run
//!   queue), above every lock that is held with interrupts enabled; then the heap,
//!   the kernel page table, the frame allocator: all `IrqMutex`es.
//! - 900: the console, innermost (anything may log).
//!
//! Sleeping locks (`RwSem`s: an open file's offset, held across a read or write, then a
//! tmpfs file's `i_rwsem`, then `MmStruct::mmap_lock`) are outside the table: a task
//! takes them holding no spinlock (`RwSem` asserts it), so they are outermost.

/// A lock class: a name for reports and a level for the order.
pub trait LockClass {
    const NAME: &'static str;
    const LEVEL: u16;
}

macro_rules! lock_classes {
    ($($(#[$m:meta])* $class:ident = $level:literal, $name:literal;)*) => {
        $(
            $(#[$m])*
            pub struct $class;
            impl LockClass for $class {
                const NAME: &'static str = $name;
                const LEVEL: u16 = $level;
            }
        )*
    };
}

lock_classes! {
    /// The cached text of /proc/PID/maps or smaps (generated out of it).
    ProcfsText = 105, "procfs ProcFile::text";
    /// One mount or umount at a time: over the entry swap (tmpfs) and the busy check
    /// (tasks, fd tables).
    MountNamespace = 108, "mount::NAMESPACE_SEM";
    /// A FIFO's pipe slot: looked at or filled, alone.
    FifoPipe = 109, "tmpfs TmpfsSpecial::pipe";
    FlockLocks = 110, "flock::LOCKS";
    /// A process's controlling terminal, then that terminal's state.
    ProcessTty = 111, "Process::tty";
    /// A terminal's line discipline, termios and job-control ids; signals are sent
    /// and queues woken after it is dropped.
    TtyState = 112, "Tty::inner";
    /// The live pseudo-terminal pairs (devpts' nodes); taken alone.
    Ptys = 113, "pty::PTYS";
    /// AF_UNIX's name tables; a socket's state is looked at under them.
    UnixTables = 114, "unix::TABLES";
    /// An AF_UNIX socket's state: one at a time, but connect's listener, connector and
    /// new socket (`lock_nested` 0, 1, 2).
    UnixSock = 118, "UnixSocket::inner";
    PipeInner = 115, "Pipe::inner";
    EventfdCount = 116, "EventFd::count";
    /// A timerfd's setting and unread expirations.
    TimerFdState = 117, "TimerFd::state";
    /// Held across every change of tmpfs names (create, link, unlink, rename).
    TmpfsNamespace = 119, "tmpfs::NAMESPACE";
    /// rmdir checks the child directory's with `lock_nested(1)`.
    TmpfsDirEntries = 120, "tmpfs Dir::entries";
    TmpfsDirParent = 121, "tmpfs Dir::parent";
    TmpfsDirMeta = 122, "tmpfs Dir::meta";
    /// An msharefs mount's regions by name (and the list of mounts, never together).
    MsharefsDir = 123, "msharefs MsharefsRoot::regions";
    FdTable = 130, "FdTable";
    FsContext = 131, "FsContext";
    /// The task's slots: which fd table, fs context, handlers it uses.
    TaskFiles = 135, "Task::files";
    TaskFs = 136, "Task::fs";
    TaskSighand = 137, "Task::sighand";
    SigHandlers = 138, "SigHandlers";

    /// Held across the futex word's check and the waiter's enqueue (`futex_wait_setup`).
    FutexQueues = 150, "futex::QUEUES";
    /// A tmpfs file's size and times, held while its page cache is cut (truncate).
    /// A namespace's SysV message queues; wakes their waiters outside it.
    IpcMsgIds = 157, "IpcNamespace::msg";
    /// A namespace's SysV semaphore sets; wakes their sleepers outside it.
    IpcSemIds = 158, "IpcNamespace::sem";
    /// A namespace's SysV segments; reads a segment's size and resident pages inside.
    IpcShmIds = 160, "IpcNamespace::shm";
    TmpfsFileMeta = 165, "tmpfs TmpfsFile::meta";
    /// A region file's metadata; nothing under it.
    MshareFileMeta = 166, "msharefs MshareFile::meta";
    /// A file's pt_share host, looked up or made (an empty address space) under it.
    PtShareHost = 167, "PageCache::pt_share_host";
    /// Every file's pt_share host, weakly; a host is added under its file's lock above.
    PtShareHosts = 168, "pt_share::HOSTS";
    PageCachePages = 170, "PageCache::pages";
    /// Never together with the pages (one level).
    PageCacheIMmap = 170, "PageCache::i_mmap";
    /// An address space's page tables: a fault maps its fault-around window from the page
    /// cache under both; fork nests the child's under the parent's (`lock_nested(1)`).
    PageTableLock = 175, "MmStruct::page_table_lock";

    /// Armed interval timers: expiry looks at their processes' state.
    ItimerArmed = 190, "itimer::ARMED";
    /// Every process's POSIX timers: no signal is sent under it (a signal's taker
    /// restarts its timer after dropping the signal locks).
    PosixTimers = 191, "posix_timer::TIMERS";
    /// A process's state: taken under the address space (limits, credentials of mmap).
    ExecBy = 200, "Process::exec_by";
    ProcessExit = 210, "Process::exit";
    ProcessChildren = 220, "Process::children";
    ProcessParent = 225, "Process::parent";
    /// Before the limits (fork copies both; prlimit checks the capability first).
    Creds = 230, "Process::creds";
    Rlimits = 240, "Process::rlimits";
    GroupExit = 250, "Process::group_exit";
    JobReport = 255, "Process::job_report";
    SemUndo = 256, "Process::sem_undo";
    Comm = 260, "Task::comm";
    ProcessThreads = 270, "Process::threads";
    TaskMm = 280, "Task::mm";
    TaskIpcNs = 285, "Task::ipc_ns";
    ShmClist = 286, "Task::shm_clist";
    TaskSig = 290, "Task::sig";
    SharedPending = 300, "Process::shared_pending";
    VforkDone = 310, "Task::vfork_done";
    ExitStatus = 311, "Task::exit_status";
    Fpu = 312, "Task::fpu";
    DeadCpu = 320, "Process::dead_cpu";
    ChildrenCpu = 321, "Process::children_cpu";
    /// Looked up and snapshotted, nothing but the heap under it.
    TaskTables = 400, "task::TABLES";


    /// An mshare host's sharers: marked under a guest's page tables, flushed under the
    /// host's (the flush waits for other CPUs under it; their flush takes no lock).
    MshareSharers = 600, "tlb::Sharers::list";
    /// SHM_LOCK's locked pages per user, inside a namespace's segments.
    ShmLockUser = 605, "shm::SHM_LOCKED_PAGES";
    /// An epoll instance's interest list; no file's poll runs under it.
    EpollItems = 606, "EventPoll::items";
    /// A tmpfs inode's extended attributes.
    SimpleXattrs = 607, "xattr::SimpleXattrs";
    /// The vDSO data page's one writer (`vdso::publish_clock`).
    VdsoWriter = 608, "vdso::Images::writer";
    Writers = 610, "file::WRITERS";
    /// The mount table: looked at by walks (`..`), rmdir and rename; no inode method under it.
    Mounts = 615, "mount::MOUNTS";
    CorePattern = 620, "proc_sysctl::CORE_PATTERN";
    Random = 630, "random::STATE";
    LeakBaseline = 640, "leak::BASELINE";
    KtestCurrent = 650, "ktest::CURRENT";
    SyscallLogged = 660, "syscall::LOGGED";
    /// An `RwSem`'s hand-off state: a release wakes the waiters under it.
    RwSemWaiters = 670, "RwSem::state";

    WaitQueue = 700, "WaitQueue::waiters";
    Sleepers = 710, "sched::SLEEPERS";
    /// Per-CPU run queues, one class: two at once only in CPU order (`sched::lock_pair`,
    /// `lock_nested` subclass 0 for the lower CPU, 1 for the higher).
    RunQueue = 720, "sched::RQS";
    Heap = 800, "heap";
    KernelPageTable = 810, "kernel_map::KERNEL_PT";
    /// RAM above 4 GiB waiting for the direct map, handed to the allocator under it.
    PendingHigh = 815, "frame::PENDING_HIGH";
    FrameAllocator = 820, "frame::ALLOCATOR";

    Console = 900, "serial::SERIAL";

    /// The checker's own tests: a `SpinLock` class (below the interrupt's classes, as
    /// every one) and an `IrqMutex` class above it.
    KtestOuter = 690, "lockdep test outer";
    KtestInner = 691, "lockdep test inner";
}
