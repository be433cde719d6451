//! A system call fuzzer in the manner of syzkaller, without coverage guidance: random
//! calls from the kernel's implemented set with typed, adversarial arguments (kernel
//! addresses, unmapped and misaligned pointers, huge lengths, bogus fds and flags) mixed
//! with objects the fuzzer made earlier (fds of files, pipes, eventfds and directories,
//! its own mappings, child pids, futex words). Seeded and reproducible: each worker's
//! calls follow from the seed alone (results may differ with scheduling).
//!
//! `fuzz [--seconds S] [--seed X] [--workers K] [--injection 1]`. The supervisor (run as root, as /init
//! in the kernel) makes a scratch directory, forks K workers that drop to uid/gid 65534
//! in their own session, and watches them through a MAP_SHARED page per worker (a
//! progress counter and the last calls). A worker without progress for `STUCK` is killed
//! and restarted with a derived seed; one killed by a signal the fuzzer never sends
//! (SIGSEGV, SIGBUS, ...) is reported with its last calls. With `--injection 1` (the
//! kernel injects allocation failures) deaths by SIGABRT (a Rust program aborts when its
//! allocator gets ENOMEM) and SIGSEGV (Linux's `force_sigsegv` when a signal frame cannot
//! be written) are counted as `deaths under injection`, not as failures. Every `PROGRESS` it prints
//! `fuzz: T s, N syscalls (R/s), P processes, ...`. After S seconds it kills everything,
//! reaps, removes the scratch directory, prints `fuzz: done ...` (or `fuzz: FAILED ...`)
//! and, as pid 1, powers off, so the kernel's leak check runs.
//!
//! What it must not do, since it would end the run rather than test the kernel: signal
//! pid 1, its supervisor or other workers (`kill(-1)` never happens; signals go to itself,
//! its children, its own process group or pids that do not exist), reboot, exit from a
//! worker (its children exit), return into a corrupted address space. So every call that
//! writes user memory or changes mappings gets addresses only in the fuzzer's own
//! regions (`ARENA`, `SCRATCH`), in a never-mapped region (`VOID`) with bounded lengths,
//! or outside user space; paths that are changed lie under the scratch directory.

use std::arch::asm;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use user_tests::raw_clone_exiting_child;

// ---- raw system calls --------------------------------------------------------

/// A system call with its raw result (`-errno` on failure), bypassing libc.
fn raw(nr: u64, a: [u64; 6]) -> i64 {
    let r: i64;
    // SAFETY: the fuzzer chooses arguments so that the kernel only writes to memory the
    // fuzzer does not otherwise use (see the module comment); the kernel checks the rest.
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => r, in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
             in("r10") a[3], in("r8") a[4], in("r9") a[5], lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

// ---- the seeded generator ----------------------------------------------------

/// splitmix64: small, fast, and every seed gives a full-period sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

/// The seed of worker `k`'s `generation`-th start.
fn derive_seed(seed: u64, k: u64, generation: u64) -> u64 {
    let mut r = Rng(seed ^ k.wrapping_mul(0x1000_0000_01b3) ^ generation.wrapping_mul(0xff51_afd7_ed55_8ccd));
    r.next()
}

// ---- memory the fuzzer owns --------------------------------------------------

/// Mappings the fuzzer makes, unmaps, moves and protects; nothing else lives there.
const ARENA: u64 = 0x2000_0000_0000;
const ARENA_LEN: u64 = 32 << 20;
/// Buffers the kernel reads and writes: data, then argument structures, then nothing
/// mapped after it, so an overlong copy faults instead of reaching other memory.
const SCRATCH: u64 = 0x2100_0000_0000;
const SCRATCH_LEN: u64 = 64 << 10;
/// Where argument structures start in SCRATCH (one 512-byte slot per argument).
const STRUCTS: u64 = SCRATCH + (32 << 10);
/// A stack for CLONE_VM children (used only if a signal reaches them).
const CHILD_STACK: u64 = 0x2200_0000_0000;
const CHILD_STACK_LEN: u64 = 16 << 10;
/// Never mapped: calls there fail, and bounded lengths keep them away from real memory.
const VOID: u64 = 0x3000_0000_0000;
const VOID_SPAN: u64 = 1 << 40;
/// Lengths at least this big from a user address run past the top of user space.
const FAILING_LEN: u64 = 1 << 47;
const KERNEL: u64 = 0xffff_8000_0000_0000;
const PAGE: u64 = 4096;

const PROT_RW: u64 = 3;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED: u64 = 0x01;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

fn map_fixed(addr: u64, len: u64, flags: u64) -> i64 {
    raw(9, [addr, len, PROT_RW, flags | MAP_FIXED | MAP_ANONYMOUS, u64::MAX, 0])
}

// ---- the shared page per worker ----------------------------------------------

/// Calls kept per worker for the supervisor's reports.
const LOG_LEN: usize = 32;
/// The result word of a call that has not returned.
const PENDING: u64 = 1 << 63;

/// One page per worker, MAP_SHARED between the supervisor, the worker and its children.
#[repr(C)]
struct WorkerPage {
    /// System calls made by the worker and its children.
    progress: AtomicU64,
    /// Calls started; entry `started % LOG_LEN` is the newest.
    started: AtomicU64,
    /// Per entry: pid << 32 | nr, six arguments, result (PENDING while running).
    log: [[AtomicU64; 8]; LOG_LEN],
}

impl WorkerPage {
    fn begin(&self, pid: u32, nr: u64, a: &[u64; 6]) -> usize {
        let i = (self.started.fetch_add(1, Ordering::Relaxed) % LOG_LEN as u64) as usize;
        let e = &self.log[i];
        e[7].store(PENDING, Ordering::Relaxed);
        e[0].store((pid as u64) << 32 | nr, Ordering::Relaxed);
        for (w, v) in e[1..7].iter().zip(a) {
            w.store(*v, Ordering::Relaxed);
        }
        i
    }
    fn end(&self, i: usize, r: i64) {
        self.log[i][7].store(r as u64, Ordering::Release);
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
    fn reset(&self) {
        self.started.store(0, Ordering::Relaxed);
        for e in &self.log {
            e[0].store(u64::MAX, Ordering::Relaxed);
        }
    }
    /// The last `count` calls of the log, oldest first.
    fn print_log(&self, prefix: &str, count: usize) {
        let started = self.started.load(Ordering::Acquire);
        for n in started.saturating_sub(count.min(LOG_LEN) as u64)..started {
            let e = &self.log[(n % LOG_LEN as u64) as usize];
            let w0 = e[0].load(Ordering::Relaxed);
            if w0 == u64::MAX {
                continue;
            }
            let (pid, nr) = (w0 >> 32, w0 & 0xffff_ffff);
            let a: Vec<String> = e[1..7].iter().map(|w| format!("{:#x}", w.load(Ordering::Relaxed))).collect();
            let r = e[7].load(Ordering::Acquire);
            let result = if r == PENDING { "...".to_string() } else { format!("= {}", r as i64) };
            println!("{prefix} pid {pid} {}({}) {result}", name_of(nr), a.join(", "));
        }
    }
}

// ---- argument kinds ----------------------------------------------------------

/// How to generate one argument.
#[derive(Clone, Copy)]
enum Arg {
    /// An fd: one the fuzzer opened, or 0..2, -1, a huge or negative number.
    Fd,
    /// A directory fd for *at calls: AT_FDCWD, a pool fd, or a bad one.
    DirFd,
    /// A path for a call that only looks.
    Path,
    /// A path for a call that creates, changes or removes: under the scratch directory,
    /// or invalid.
    PathW,
    /// A buffer the kernel may write: scratch, an arena address, misaligned, the last
    /// bytes before scratch's end, NULL, unmapped or kernel.
    Buf,
    /// A length: 0, small, a page, big, huge, all ones.
    Len,
    /// A random subset of these bits, sometimes any bits.
    Flags(u64),
    /// One of these values, sometimes anything.
    OneOf(&'static [u64]),
    /// One of these values only.
    Only(&'static [u64]),
    /// A value below the bound.
    Below(u64),
    /// A pid: its own, a child, 0, minus its own group, or one that does not exist.
    Pid,
    /// A signal the fuzzer may send (never the fault signals it uses to spot bugs).
    Sig,
    /// A pointer to a timespec of at most 20 ms, or a bad pointer.
    Timespec,
    /// A pointer to iovecs whose bases are Buf values.
    Iovec,
    /// A pointer to a signal set (SIGALRM never blocked), or a bad pointer.
    Sigset,
    /// A pointer to random words, or a bad pointer.
    Struct,
    /// A futex word: in scratch, in the shared arena page, or bad.
    Futex,
    /// A user or group id.
    Id,
    /// A mode: permissions with random extra bits.
    Mode,
    /// A file offset.
    Offset,
    /// A SysV shared memory id: one the worker made, or not one.
    ShmId,
    /// A SysV semaphore set id: one the worker made, or not one.
    SemId,
    /// An extended attribute's name: each namespace, a bare prefix, empty, 255 and 256
    /// bytes, or a bad pointer.
    XattrName,
}

use Arg::*;

/// How a call is made beyond its generated arguments.
#[derive(Clone, Copy, PartialEq)]
enum Special {
    None,
    /// Returns an fd for the pool.
    NewFd,
    /// Writes two fds to its first argument (pipe2).
    NewPipe,
    Mmap,
    Munmap,
    /// mprotect, madvise, mlock, munlock, msync, mincore: an arena range.
    MemRange,
    Mremap,
    Brk,
    /// fork, clone: a child that fuzzes, or (with CLONE_VM) one that exits at once.
    Fork,
    Vfork,
    Clone3,
    Sigaction,
    Sigprocmask,
    Rlimit,
    ArchPrctl,
    Prctl,
    Sigaltstack,
    Close,
    /// pause, rt_sigsuspend: the SIGALRM timer ends them.
    Blocking,
    /// shmget: an id for the pool.
    NewShm,
    /// semget: an id for the pool.
    NewSem,
    /// shmat: at an arena address (never where the kernel chooses, which could be the
    /// void), or a bad one.
    Shmat,
    /// shmdt: an address it attached at, or an arena address.
    Shmdt,
}

struct Call {
    nr: u64,
    name: &'static str,
    args: &'static [Arg],
    special: Special,
}

const O_FLAGS: u64 = 0o3
    | 0o100
    | 0o200
    | 0o1000
    | 0o2000
    | 0o4000
    | 0o40000
    | 0o200000
    | 0o400000
    | 0o2000000
    | 0o10000000
    | 0o20000000;
const AT_FLAGS: u64 = 0x100 | 0x200 | 0x400 | 0x800 | 0x1000;
const WAIT_FLAGS: u64 = 1 | 2 | 4 | 8 | 0x0100_0000 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
/// SysV keys of the fuzzer's segments (IPC_PRIVATE among them); `cleanup_shm` removes
/// whatever the workers left.
/// mknod's modes: FIFOs, devices, sockets, regular files, a directory (EPERM), a bad type.
const MKNOD_MODES: &[u64] = &[0o010644, 0o010600, 0o020666, 0o060600, 0o140755, 0o100644, 0, 0o040755, 0o170000];
/// mknod's device numbers: none, null, zero, full, ptmx, a pty slave, one with no driver.
const MKNOD_DEVS: &[u64] = &[0, 0x103, 0x105, 0x107, 0x502, 0x8800, 0xf000];
const SHM_KEYS: &[u64] = &[0, 0x4655_5a00, 0x4655_5a01, 0x4655_5a02, u32::MAX as u64];
/// Segment sizes: none may exceed what an attach in the arena leaves room for
/// (`SHM_ATTACH_ROOM`), so that SHM_REMAP never reaches past it.
const SHM_SIZES: &[u64] = &[0, 1, PAGE, 3 * PAGE + 5, 1 << 20, SHM_ATTACH_ROOM, SHM_ATTACH_ROOM + 1, u64::MAX];
const SHM_ATTACH_ROOM: u64 = 8 << 20;
const SIGNALS_SENT: &[u64] =
    &[0, 1, 2, 3, 10, 12, 13, 14, 15, 17, 18, 19, 20, 21, 22, 23, 26, 27, 28, 34, 40, 64, 65, 1000];
const MADVICE: &[u64] = &[0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 100];

macro_rules! calls {
    ($($nr:literal $name:ident [$($arg:expr),*] $special:ident;)*) => {
        &[$(Call { nr: $nr, name: stringify!($name), args: &[$($arg),*], special: Special::$special }),*]
    };
}

/// The kernel's implemented set (`kernel/src/syscall/mod.rs`) minus what would end the
/// run: exit and exit_group (only children exit), rt_sigreturn, execve of real
/// programs, reboot.
const CALLS: &[Call] = calls! {
    0 read [Fd, Buf, Len] None;
    1 write [Fd, Buf, Len] None;
    2 open [Path, Flags(O_FLAGS), Mode] NewFd;
    3 close [Fd] Close;
    4 stat [Path, Buf] None;
    5 fstat [Fd, Buf] None;
    6 lstat [Path, Buf] None;
    7 poll [Struct, Below(300), OneOf(&[0, 1, 10, u64::MAX])] None;
    8 lseek [Fd, Offset, Below(6)] None;
    9 mmap [] Mmap;
    10 mprotect [Flags(7 | 0x0100_0000 | 0x0200_0000)] MemRange;
    11 munmap [] Munmap;
    12 brk [] Brk;
    13 rt_sigaction [] Sigaction;
    14 rt_sigprocmask [] Sigprocmask;
    // Terminal calls (termios, job control, window size, flow, the pty's own) for the
    // console and ptys, file ones, msharefs'.
    16 ioctl [Fd, OneOf(&[0x5401, 0x5402, 0x5403, 0x5404, 0x540a, 0x540b, 0x540e, 0x540f, 0x5410, 0x5413, 0x5414, 0x541b, 0x5422, 0x5429, 0x802c_542a, 0x402c_542b, 0x8004_5430, 0x4004_5431, 0x8004_5439, 0x5441, 0x5421, 0x5451, 0x5450, 0x8004_6601, 0x4028_7800, 0x4010_7801, 0x4018_7802]), Buf] None;
    17 pread64 [Fd, Buf, Len, Offset] None;
    18 pwrite64 [Fd, Buf, Len, Offset] None;
    19 readv [Fd, Iovec, Below(1100)] None;
    20 writev [Fd, Iovec, Below(1100)] None;
    21 access [Path, Flags(7)] None;
    22 pipe [Buf] NewPipe;
    23 select [Below(1100), Struct, Struct, Struct, Struct] None;
    24 sched_yield [] None;
    25 mremap [] Mremap;
    26 msync [Flags(7)] MemRange;
    27 mincore [Buf] MemRange;
    28 madvise [OneOf(MADVICE)] MemRange;
    29 shmget [OneOf(SHM_KEYS), Only(SHM_SIZES), Flags(0o777 | 0o1000 | 0o2000 | 0o4000 | 0o10000)] NewShm;
    30 shmat [ShmId] Shmat;
    31 shmctl [ShmId, OneOf(&[0, 1, 2, 3, 11, 12, 13, 14, 15, 0x102, 100]), Buf] None;
    32 dup [Fd] NewFd;
    33 dup2 [Fd, Fd] NewFd;
    34 pause [] Blocking;
    35 nanosleep [Timespec, Buf] None;
    36 getitimer [Below(4), Buf] None;
    37 alarm [Below(3)] None;
    38 setitimer [Below(4), Struct, Buf] None;
    39 getpid [] None;
    40 sendfile [Fd, Fd, Buf, Len] None;
    // AF_UNIX (1) is the family built; the others fail. Socket waits are interruptible,
    // so the SIGALRM timer ends a blocked accept, connect or receive.
    41 socket [OneOf(&[1, 2, 10, 16, 17, 46]), Flags(0xf | 0o4000 | 0o2000000), Below(3)] NewFd;
    42 connect [Fd, Struct, Len] None;
    43 accept [Fd, Buf, Buf] None;
    44 sendto [Fd, Buf, Len, Flags(0xffff), Struct, Len] None;
    45 recvfrom [Fd, Buf, Len, Flags(0xffff), Buf, Buf] None;
    46 sendmsg [Fd, Struct, Flags(0xffff)] None;
    47 recvmsg [Fd, Buf, Flags(0xffff)] None;
    48 shutdown [Fd, Below(4)] None;
    49 bind [Fd, Struct, Len] None;
    50 listen [Fd, Below(200)] None;
    51 getsockname [Fd, Buf, Buf] None;
    52 getpeername [Fd, Buf, Buf] None;
    53 socketpair [OneOf(&[1, 2, 10, 46]), Flags(0xf | 0o4000 | 0o2000000), Below(3), Buf] None;
    54 setsockopt [Fd, Below(300), Below(100), Struct, Len] None;
    55 getsockopt [Fd, Below(300), Below(100), Buf, Buf] None;
    56 clone [] Fork;
    57 fork [] Fork;
    58 vfork [] Vfork;
    59 execve [PathW, Struct, Struct] None;
    61 wait4 [Pid, Buf, Flags(WAIT_FLAGS), Buf] None;
    62 kill [Pid, Sig] None;
    63 uname [Buf] None;
    // Semaphore sets: ids the worker made; semop may sleep (the SIGALRM timer ends it).
    64 semget [OneOf(SHM_KEYS), OneOf(&[0, 1, 3, 250, 32001]), Flags(0o777 | 0o1000 | 0o2000)] NewSem;
    65 semop [SemId, Struct, OneOf(&[0, 1, 2, 3, 501])] Blocking;
    66 semctl [SemId, Below(4), OneOf(&[0, 1, 2, 3, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]), Buf] None;
    67 shmdt [] Shmdt;
    // Message queues: ids the worker made (semaphore ids serve too); blocking sends and
    // receives end with the SIGALRM timer.
    68 msgget [OneOf(SHM_KEYS), Flags(0o777 | 0o1000 | 0o2000)] NewSem;
    69 msgsnd [SemId, Buf, OneOf(&[0, 1, 100, 8192, 8193, u64::MAX]), Flags(0o4000)] Blocking;
    70 msgrcv [SemId, Buf, OneOf(&[0, 1, 100, 8192, u64::MAX]), OneOf(&[0, 1, 2, (-5i64) as u64]), Flags(0o4000 | 0o10000 | 0o20000 | 0o40000)] Blocking;
    71 msgctl [SemId, OneOf(&[0, 1, 2, 3, 11, 12, 13, 0x102]), Buf] None;
    72 fcntl [Fd, Below(1040), Fd] None;
    73 flock [Fd, Flags(1 | 2 | 4 | 8)] None;
    74 fsync [Fd] None;
    75 fdatasync [Fd] None;
    76 truncate [PathW, Offset] None;
    77 ftruncate [Fd, Offset] None;
    79 getcwd [Buf, Len] None;
    80 chdir [Path] None;
    81 fchdir [Fd] None;
    82 rename [PathW, PathW] None;
    83 mkdir [PathW, Mode] None;
    84 rmdir [PathW] None;
    85 creat [PathW, Mode] NewFd;
    86 link [PathW, PathW] None;
    87 unlink [PathW] None;
    88 symlink [Path, PathW] None;
    89 readlink [Path, Buf, Len] None;
    90 chmod [PathW, Mode] None;
    91 fchmod [Fd, Mode] None;
    92 chown [PathW, Id, Id] None;
    93 fchown [Fd, Id, Id] None;
    94 lchown [PathW, Id, Id] None;
    95 umask [Mode] None;
    96 gettimeofday [Buf, Buf] None;
    97 getrlimit [Below(20), Buf] None;
    98 getrusage [OneOf(&[0, u64::MAX, (-2i64) as u64, 1, 2]), Buf] None;
    99 sysinfo [Buf] None;
    100 times [Buf] None;
    102 getuid [] None;
    104 getgid [] None;
    105 setuid [Id] None;
    106 setgid [Id] None;
    107 geteuid [] None;
    108 getegid [] None;
    109 setpgid [Pid, Pid] None;
    110 getppid [] None;
    111 getpgrp [] None;
    112 setsid [] None;
    113 setreuid [Id, Id] None;
    114 setregid [Id, Id] None;
    115 getgroups [Below(70000), Buf] None;
    116 setgroups [Below(70000), Struct] None;
    117 setresuid [Id, Id, Id] None;
    118 getresuid [Buf, Buf, Buf] None;
    119 setresgid [Id, Id, Id] None;
    120 getresgid [Buf, Buf, Buf] None;
    121 getpgid [Pid] None;
    124 getsid [Pid] None;
    127 rt_sigpending [Buf, OneOf(&[8, 0, 4, 16, 128])] None;
    128 rt_sigtimedwait [Sigset, Buf, Timespec, OneOf(&[8, 0, 4, 16])] None;
    130 rt_sigsuspend [Sigset, OneOf(&[8, 0, 4, 16])] Blocking;
    131 sigaltstack [] Sigaltstack;
    133 mknod [PathW, OneOf(MKNOD_MODES), OneOf(MKNOD_DEVS)] None;
    137 statfs [Path, Buf] None;
    138 fstatfs [Fd, Buf] None;
    140 getpriority [Below(4), Pid] None;
    141 setpriority [Below(4), Pid, OneOf(&[0, 5, 19, 20, (-1i64) as u64, (-20i64) as u64])] None;
    149 mlock [] MemRange;
    150 munlock [] MemRange;
    // MCL_FUTURE past RLIMIT_MEMLOCK would fail the fuzzer's own allocations.
    151 mlockall [Only(&[0, 1, 4, 5, 8, 0x100])] None;
    152 munlockall [] None;
    157 prctl [] Prctl;
    158 arch_prctl [] ArchPrctl;
    160 setrlimit [] Rlimit;
    162 sync [] None;
    // The workers are not root: both end at EPERM or before (EFAULT, ENOENT, EINVAL).
    165 mount [Path, PathW, Path, Flags(0x3ff_ffff | 0xc0ed_0000 | 0x8000_0000), Struct] None;
    166 umount2 [PathW, Flags(0xf)] None;
    186 gettid [] None;
    // Extended attributes; sizes stay small so a value read back fits in scratch.
    188 setxattr [PathW, XattrName, Buf, OneOf(&[0, 1, 16, 65536, 65537]), Flags(3 | 4)] None;
    189 lsetxattr [PathW, XattrName, Buf, OneOf(&[0, 1, 16, 65536, 65537]), Flags(3 | 4)] None;
    190 fsetxattr [Fd, XattrName, Buf, OneOf(&[0, 1, 16, 65536, 65537]), Flags(3 | 4)] None;
    191 getxattr [Path, XattrName, Buf, Only(&[0, 1, 16, 4096])] None;
    192 lgetxattr [Path, XattrName, Buf, Only(&[0, 1, 16, 4096])] None;
    193 fgetxattr [Fd, XattrName, Buf, Only(&[0, 1, 16, 4096])] None;
    194 listxattr [Path, Buf, Only(&[0, 1, 16, 4096])] None;
    195 llistxattr [Path, Buf, Only(&[0, 1, 16, 4096])] None;
    196 flistxattr [Fd, Buf, Only(&[0, 1, 16, 4096])] None;
    197 removexattr [PathW, XattrName] None;
    198 lremovexattr [PathW, XattrName] None;
    199 fremovexattr [Fd, XattrName] None;
    200 tkill [Pid, Sig] None;
    201 time [Buf] None;
    202 futex [Futex, OneOf(&[0, 1, 3, 4, 5, 9, 10, 128, 129, 137, 138, 256, 393, 20]), Below(4), Timespec, Futex, Struct] None;
    203 sched_setaffinity [Pid, Len, Struct] None;
    204 sched_getaffinity [Pid, Len, Buf] None;
    213 epoll_create [OneOf(&[1, 0, (-1i64) as u64])] NewFd;
    216 remap_file_pages [OneOf(&[0, 0, 0, 1]), OneOf(&[0, 1, 3, 15, 1 << 40, 1 << 52, u64::MAX])] MemRange;
    217 getdents64 [Fd, Buf, Len] None;
    218 set_tid_address [Buf] None;
    220 semtimedop [SemId, Struct, OneOf(&[0, 1, 2, 3, 501]), Timespec] Blocking;
    221 fadvise64 [Fd, Offset, Len, Below(8)] None;
    // POSIX timers notify with SIGALRM (no sigevent: a random one could name a fault
    // signal), which only ends a blocking call early.
    222 timer_create [OneOf(&[0, 1, 2, 4, 7, 8, 11, 100]), Only(&[0]), Buf] None;
    223 timer_settime [Below(8), Flags(1), Timespec, Buf] None;
    224 timer_gettime [Below(8), Buf] None;
    225 timer_getoverrun [Below(8)] None;
    226 timer_delete [Below(8)] None;
    // The workers lack CAP_SYS_TIME: every set ends at EPERM or before.
    227 clock_settime [OneOf(&[0, 1, 7, 100]), Timespec] None;
    228 clock_gettime [OneOf(&[0, 1, 2, 3, 4, 5, 6, 7, 11, 100, (-2i64) as u64]), Buf] None;
    229 clock_getres [OneOf(&[0, 1, 2, 3, 4, 5, 6, 7, 11, 100]), Buf] None;
    230 clock_nanosleep [OneOf(&[0, 1, 7, 100]), Flags(1), Timespec, Buf] None;
    // epoll waits are short (the SIGALRM timer ends a longer one).
    232 epoll_wait [Fd, Buf, OneOf(&[1, 8, 0, (-1i64) as u64]), OneOf(&[0, 1, 10])] Blocking;
    233 epoll_ctl [Fd, OneOf(&[1, 2, 3, 0, 4]), Fd, Struct] None;
    234 tgkill [Pid, Pid, Sig] None;
    247 waitid [Below(4), Pid, Buf, Flags(WAIT_FLAGS | 0x10 | 0x20), Buf] None;
    257 openat [DirFd, Path, Flags(O_FLAGS), Mode] NewFd;
    258 mkdirat [DirFd, PathW, Mode] None;
    259 mknodat [DirFd, PathW, OneOf(MKNOD_MODES), OneOf(MKNOD_DEVS)] None;
    260 fchownat [DirFd, PathW, Id, Id, Flags(AT_FLAGS)] None;
    262 newfstatat [DirFd, Path, Buf, Flags(AT_FLAGS)] None;
    263 unlinkat [DirFd, PathW, Flags(AT_FLAGS)] None;
    264 renameat [DirFd, PathW, DirFd, PathW] None;
    265 linkat [DirFd, PathW, DirFd, PathW, Flags(AT_FLAGS)] None;
    266 symlinkat [Path, DirFd, PathW] None;
    267 readlinkat [DirFd, Path, Buf, Len] None;
    268 fchmodat [DirFd, PathW, Mode] None;
    269 faccessat [DirFd, Path, Flags(7)] None;
    270 pselect6 [Below(1100), Struct, Struct, Struct, Timespec, Struct] None;
    271 ppoll [Struct, Below(300), Timespec, Sigset, OneOf(&[8, 0, 16])] None;
    // As uid 65534 a new IPC namespace is EPERM; the fd table and fs context are copied.
    272 unshare [Flags(0x400 | 0x200 | 0x0800_0000 | 0x40000 | 0x10000 | 0x100 | 0x800 | 0x20000)] None;
    273 set_robust_list [Struct, OneOf(&[24, 0, 23, 4096])] None;
    274 get_robust_list [Pid, Buf, Buf] None;
    280 utimensat [DirFd, PathW, Struct, Flags(AT_FLAGS)] None;
    282 signalfd [OneOf(&[(-1i64) as u64, 3, 4]), Sigset, OneOf(&[8, 0, 16])] NewFd;
    283 timerfd_create [OneOf(&[0, 1, 7, 2, 8]), Flags(0o4000 | 0o2000000 | 1)] NewFd;
    284 eventfd [Below(100)] NewFd;
    281 epoll_pwait [Fd, Buf, OneOf(&[1, 8, 0]), OneOf(&[0, 1, 10]), Sigset, OneOf(&[8, 0, 16])] Blocking;
    286 timerfd_settime [Fd, Flags(3 | 4), Timespec, Buf] None;
    287 timerfd_gettime [Fd, Buf] None;
    285 fallocate [Fd, Flags(0x7f), Offset, Len] None;
    289 signalfd4 [OneOf(&[(-1i64) as u64, 3, 4]), Sigset, OneOf(&[8, 0, 16]), Flags(0o4000 | 0o2000000 | 1)] NewFd;
    290 eventfd2 [Below(100), Flags(0o4000 | 0o2000000 | 1)] NewFd;
    288 accept4 [Fd, Buf, Buf, Flags(0o4000 | 0o2000000)] None;
    291 epoll_create1 [Flags(0o2000000 | 1)] NewFd;
    292 dup3 [Fd, Fd, Flags(0o2000000)] NewFd;
    293 pipe2 [Buf, Flags(0o4000 | 0o2000000 | 0o40000)] NewPipe;
    302 prlimit64 [] Rlimit;
    299 recvmmsg [Fd, Buf, Below(4), Flags(0xffff), Timespec] None;
    307 sendmmsg [Fd, Struct, Below(4), Flags(0xffff)] None;
    308 setns [Fd, OneOf(&[0, 0x0800_0000, 0x4000_0000])] None;
    309 getcpu [Buf, Buf, Buf] None;
    316 renameat2 [DirFd, PathW, DirFd, PathW, Flags(7)] None;
    318 getrandom [Buf, Len, Flags(7)] None;
    // MFD_CLOEXEC, ALLOW_SEALING, HUGETLB, NOEXEC_SEAL, EXEC, unknown bits, page sizes.
    319 memfd_create [Path, Flags(0x3f | (0x3f << 26))] NewFd;
    // F_ADD_SEALS and F_GET_SEALS with every seal and an unknown bit.
    72 fcntl [Fd, OneOf(&[1033, 1034]), Flags(0x7f)] None;
    325 mlock2 [Flags(1)] MemRange;
    326 copy_file_range [Fd, Buf, Fd, Buf, Len, Flags(1)] None;
    332 statx [DirFd, Path, Flags(AT_FLAGS), Flags(0xfff), Buf] None;
    // rseq registrations that fail: a registered area would take the kernel's writes and
    // SIGSEGV for a garbage rseq_cs, both outside the fuzzer's rules.
    324 membarrier [OneOf(&[0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 3, 1 << 20]), Flags(3), Below(4)] None;
    334 rseq [Only(&[8, 0xffff_8000_0000_0000, 0x7fff_ffff_ffe0, 0x7fff_ffff_f000]), Only(&[0, 16, 32, 64]), Flags(3), OneOf(&[0x5305_3053, 0])] None;
    434 pidfd_open [Pid, Flags(0o4000 | 1)] NewFd;
    435 clone3 [] Clone3;
    436 close_range [Below(70), OneOf(&[u32::MAX as u64, 64, 3, 0]), Flags(6)] None;
    1024 mshare [Path, OneOf(&[0, 4096, 1 << 39, 2 << 39, 3 << 39, 1 << 46]), OneOf(&[0, 4096, 1 << 39, 2 << 39]), Flags(0o3 | 0o100 | 0o200), Mode] None;
    1025 mshare_unlink [Path] None;
    441 epoll_pwait2 [Fd, Buf, OneOf(&[1, 8, 0]), Timespec, Sigset, OneOf(&[8, 0, 16])] Blocking;
    439 faccessat2 [DirFd, Path, Flags(7), Flags(AT_FLAGS)] None;
};

/// Numbers the kernel does not implement, for the ENOSYS path.
const UNIMPLEMENTED: &[u64] = &[
    101,
    103,
    122,
    123,
    125,
    126,
    128,
    132,
    135,
    136,
    139,
    142,
    143,
    144,
    145,
    146,
    147,
    148,
    153,
    154,
    155,
    161,
    163,
    167,
    170,
    171,
    175,
    176,
    179,
    205,
    206,
    207,
    208,
    209,
    210,
    216,
    219,
    221,
    235,
    240,
    241,
    253,
    254,
    255,
    256,
    275,
    276,
    277,
    278,
    279,
    294,
    295,
    296,
    298,
    300,
    301,
    303,
    304,
    305,
    306,
    312,
    313,
    314,
    315,
    317,
    319,
    320,
    321,
    322,
    323,
    324,
    327,
    328,
    329,
    330,
    331,
    333,
    424,
    425,
    426,
    427,
    428,
    429,
    430,
    431,
    432,
    433,
    434,
    437,
    438,
    440,
    442,
    443,
    444,
    445,
    446,
    447,
    448,
    449,
    450,
    451,
    452,
    453,
    454,
    455,
    456,
    457,
    458,
    459,
    460,
    461,
    462,
    1000,
    u64::MAX,
];

fn name_of(nr: u64) -> String {
    CALLS.iter().find(|c| c.nr == nr).map(|c| c.name.to_string()).unwrap_or_else(|| format!("syscall_{nr}"))
}

// ---- a worker ----------------------------------------------------------------

/// Objects a worker made, to pass back to the kernel.
struct Fuzzer<'a> {
    rng: Rng,
    page: &'a WorkerPage,
    pid: u32,
    fds: Vec<u64>,
    children: Vec<(i32, Instant)>,
    /// SysV segment ids it made, and addresses it attached at.
    shm_ids: Vec<u64>,
    shm_addrs: Vec<u64>,
    /// SysV semaphore set ids it made.
    sem_ids: Vec<u64>,
    /// Paths under the scratch directory, files and directories alike.
    wpaths: Vec<String>,
    /// The handler and restorer address for rt_sigaction.
    handler: u64,
    restorer: u64,
    /// A worker's children fuzz for a bounded number of calls and exit.
    is_child: bool,
}

const RO_PATHS: &[&str] = &[
    "/",
    ".",
    "..",
    "/proc",
    "/proc/self",
    "/proc/self/maps",
    "/proc/self/status",
    "/proc/self/stat",
    "/proc/self/fd",
    "/proc/self/fd/0",
    "/proc/self/task",
    "/proc/self/ns/ipc",
    "/proc/meminfo",
    "/proc/mounts",
    "/proc/uptime",
    // Knobs the fuzzer (uid 65534) can read but never write: sysctl writes need root.
    "/proc/sys",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/vm/max_map_count",
    "/proc/sys/vm/pt_share",
    "/proc/vmstat",
    "/proc/sys/kernel/pid_max",
    "/proc/sys/kernel/ostype",
    "/dev",
    "/dev/null",
    "/dev/zero",
    "/dev/urandom",
    "/dev/ptmx",
    "/dev/tty",
    "/dev/pts",
    "/dev/pts/0",
    "/tmp",
    "/nonexistent",
    "/proc/2/stat",
    "/dev/null/x",
    "/tmp/fuzz",
    // msharefs: a region the fuzzer may create (open O_CREAT), size, map and ioctl.
    "/sys/fs/mshare",
    "/sys/fs/mshare/mshare_info",
    "/sys/fs/mshare/mshare_stats",
    "/sys/fs/mshare/fuzz",
];

static SIGNALS_SEEN: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: i32) {
    SIGNALS_SEEN.fetch_add(1, Ordering::Relaxed);
}

impl<'a> Fuzzer<'a> {
    fn fd(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=5 if !self.fds.is_empty() => self.rng.pick(&self.fds),
            6 => self.rng.below(3),
            7 => (-1i64) as u64,
            8 => self.rng.pick(&[1023, 1024, 4096, 1 << 31, u64::MAX >> 1, (-100i64) as u64]),
            _ => self.rng.below(64),
        }
    }

    fn dirfd(&mut self) -> u64 {
        match self.rng.below(4) {
            0 | 1 => (-100i64) as u64, // AT_FDCWD
            2 => self.fd(),
            _ => self.rng.pick(&[(-1i64) as u64, 1 << 20, (-101i64) as u64]),
        }
    }

    /// A path string written to a struct slot; returns its address.
    fn put_str(&mut self, slot: usize, s: &[u8]) -> u64 {
        let at = STRUCTS + slot as u64 * 512;
        let n = s.len().min(511);
        // SAFETY: the slot lies in SCRATCH, which only the fuzzer and the kernel use.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), at as *mut u8, n);
            *((at + n as u64) as *mut u8) = 0;
        }
        at
    }

    fn bad_ptr(&mut self) -> u64 {
        match self.rng.below(6) {
            0 => 0,
            1 => KERNEL + self.rng.below(1 << 40) * 8,
            2 => u64::MAX - self.rng.below(4096),
            3 => VOID + self.rng.below(VOID_SPAN),
            4 => 0x8000_0000_0000 - self.rng.below(8),
            _ => self.rng.below(0x10000),
        }
    }

    fn path(&mut self, slot: usize, writable: bool) -> u64 {
        let r = self.rng.below(16);
        if r == 0 {
            return self.bad_ptr();
        }
        let s: Vec<u8> = match r {
            1 => vec![b'a'; [255, 256, 4095, 4096, 5000][self.rng.below(5) as usize]],
            2 => b"".to_vec(),
            3 if !self.wpaths.is_empty() => {
                let mut p = self.rng.pick_path(&self.wpaths);
                p.push_str(self.rng.pick(&["/", "/.", "/..", "/x", "//y", "/../w9"]));
                p.into_bytes()
            }
            4..=7 if !writable => self.rng.pick(RO_PATHS).as_bytes().to_vec(),
            _ if !self.wpaths.is_empty() => self.rng.pick_path(&self.wpaths).into_bytes(),
            _ => b"/nonexistent".to_vec(),
        };
        if s.len() >= 511 {
            // Longer than a slot: build it in the data half of scratch instead.
            let at = SCRATCH + 0x4000;
            // SAFETY: SCRATCH is the fuzzer's own buffer.
            unsafe {
                std::ptr::write_bytes(at as *mut u8, b'a', s.len());
                *((at + s.len() as u64) as *mut u8) = 0;
            }
            return at;
        }
        self.put_str(slot, &s)
    }

    fn xattr_name(&mut self, slot: usize) -> u64 {
        const NAMES: &[&str] = &[
            "trusted.a",
            "security.b",
            "user.c",
            "system.posix_acl_access",
            "system.posix_acl_default",
            "security.capability",
            "trusted.",
            "x",
            "",
        ];
        match self.rng.below(10) {
            0 => self.bad_ptr(),
            1 => {
                let n = if self.rng.chance(2) { 255 } else { 256 };
                let mut s = b"trusted.".to_vec();
                s.resize(n, b'n');
                self.put_str(slot, &s)
            }
            _ => {
                let s = self.rng.pick(NAMES).as_bytes();
                self.put_str(slot, s)
            }
        }
    }

    fn buf(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=3 => SCRATCH + self.rng.below(0x4000),
            4 => SCRATCH + SCRATCH_LEN - self.rng.below(64),
            5 | 6 => ARENA + self.rng.below(ARENA_LEN / PAGE) * PAGE + self.rng.pick(&[0, 0, 1, 7]),
            _ => self.bad_ptr(),
        }
    }

    fn len(&mut self) -> u64 {
        match self.rng.below(10) {
            0 => 0,
            1..=3 => self.rng.below(64),
            4 => self.rng.below(8192),
            5 => PAGE,
            6 => 1 << 20,
            7 => self.rng.pick(&[1 << 40, u64::MAX, 0x7fff_ffff, 0x8000_0000, (-1i32) as u32 as u64]),
            _ => self.rng.below(1 << 16),
        }
    }

    fn flags(&mut self, bits: u64) -> u64 {
        if self.rng.chance(16) {
            self.rng.next() & 0xffff_ffff
        } else {
            self.rng.next() & bits & self.rng.next()
        }
    }

    fn pid(&mut self) -> u64 {
        match self.rng.below(8) {
            0 | 1 => self.pid as u64,
            2 if !self.children.is_empty() => {
                let c = self.children[self.rng.below(self.children.len() as u64) as usize].0;
                c as u64
            }
            3 => 0,
            4 => (-(self.pid as i64)) as u64, // its own group (workers lead theirs)
            5 => 4_000_000 + self.rng.below(100_000),
            6 => (-(4_000_000 + self.rng.below(100_000) as i64)) as u64,
            _ => self.rng.pick(&[i32::MIN as u64, (i32::MIN as u32) as u64, 1 << 32]),
        }
    }

    fn timespec(&mut self, slot: usize) -> u64 {
        if self.rng.chance(6) {
            return self.bad_ptr();
        }
        let ns = if self.rng.chance(8) {
            self.rng.pick(&[1_000_000_000, u64::MAX, 999_999_999])
        } else {
            self.rng.below(20_000_000)
        };
        let sec = if self.rng.chance(10) { u64::MAX } else { 0 };
        Self::put_words(slot, &[sec, ns])
    }

    fn put_words(slot: usize, words: &[u64]) -> u64 {
        let at = STRUCTS + slot as u64 * 512;
        for (i, w) in words.iter().enumerate().take(64) {
            // SAFETY: the slot lies in SCRATCH.
            unsafe { *((at + i as u64 * 8) as *mut u64) = *w };
        }
        at
    }

    fn struct_ptr(&mut self, slot: usize) -> u64 {
        if self.rng.chance(5) {
            return self.bad_ptr();
        }
        let mut w = [0u64; 16];
        for x in w.iter_mut() {
            *x = match self.rng.below(6) {
                0 => self.rng.next(),
                1 => self.buf(),
                2 => self.fd(),
                _ => self.rng.below(32),
            };
        }
        Self::put_words(slot, &w)
    }

    fn iovec(&mut self, slot: usize) -> u64 {
        if self.rng.chance(6) {
            return self.bad_ptr();
        }
        let mut w = [0u64; 32];
        for pair in w.chunks_mut(2) {
            pair[0] = self.buf();
            pair[1] = self.len();
        }
        Self::put_words(slot, &w)
    }

    fn sigset(&mut self, slot: usize) -> u64 {
        if self.rng.chance(6) {
            return self.bad_ptr();
        }
        let set = self.rng.next() & !(1 << (libc::SIGALRM - 1));
        Self::put_words(slot, &[set])
    }

    fn futex(&mut self) -> u64 {
        match self.rng.below(4) {
            0 | 1 => SCRATCH + 0x7f00 + self.rng.below(16) * 4,
            2 => ARENA + self.rng.below(4) * 4 + self.rng.pick(&[0, 0, 1]),
            _ => self.bad_ptr(),
        }
    }

    fn gen(&mut self, arg: Arg, slot: usize) -> u64 {
        match arg {
            Fd => self.fd(),
            DirFd => self.dirfd(),
            Path => self.path(slot, false),
            XattrName => self.xattr_name(slot),
            PathW => self.path(slot, true),
            Buf => self.buf(),
            Len => self.len(),
            Flags(bits) => self.flags(bits),
            OneOf(v) => {
                if self.rng.chance(12) {
                    self.rng.next()
                } else {
                    self.rng.pick(v)
                }
            }
            Only(v) => self.rng.pick(v),
            Below(n) => self.rng.below(n),
            Pid => self.pid(),
            Sig => self.rng.pick(SIGNALS_SENT),
            Timespec => self.timespec(slot),
            Iovec => self.iovec(slot),
            Sigset => self.sigset(slot),
            Struct => self.struct_ptr(slot),
            Futex => self.futex(),
            Id => self.rng.pick(&[0, 65534, 1000, u32::MAX as u64, u64::MAX, 1]),
            Mode => {
                if self.rng.chance(8) {
                    self.rng.next() & 0xffff_ffff
                } else {
                    self.rng.below(0o10000)
                }
            }
            SemId => match self.rng.below(6) {
                0..=3 if !self.sem_ids.is_empty() => self.rng.pick(&self.sem_ids),
                4 => (-1i64) as u64,
                _ => self.rng.below(40),
            },
            ShmId => match self.rng.below(6) {
                0..=3 if !self.shm_ids.is_empty() => self.rng.pick(&self.shm_ids),
                4 => (-1i64) as u64,
                _ => self.rng.below(40),
            },
            Offset => {
                let small = self.rng.below(100_000);
                self.rng.pick(&[0, 1, 4095, 4096, 1 << 20, 1 << 40, u64::MAX, (-1i64) as u64, i64::MAX as u64, small])
            }
        }
    }

    /// A page-aligned range inside the arena (or, sometimes, one that must fail).
    fn arena_range(&mut self, may_fail_long: bool) -> (u64, u64) {
        let pages = ARENA_LEN / PAGE;
        let start = self.rng.below(pages);
        let mut addr = ARENA + start * PAGE;
        let max = (pages - start) * PAGE;
        let mut len = match self.rng.below(8) {
            0 => 0,
            1 => max,
            2..=5 => (self.rng.below(16) + 1) * PAGE,
            _ => (self.rng.below(512) + 1) * PAGE,
        }
        .min(max);
        match self.rng.below(12) {
            0 => addr += self.rng.pick(&[1, 8, 2048]),
            1 => len += self.rng.pick(&[1, 100]).min(max - len.min(max)),
            2 if may_fail_long => len = self.rng.pick(&[FAILING_LEN, u64::MAX, u64::MAX - PAGE + 1]),
            3 => {
                let void = VOID + self.rng.below(1 << 20) * PAGE;
                addr = self.rng.pick(&[KERNEL, void]);
                len = self.rng.below(1 << 30);
            }
            _ => {}
        }
        (addr, len)
    }

    /// A call's arguments.
    fn prepare(&mut self, c: &Call) -> [u64; 6] {
        let mut a = [0u64; 6];
        for (i, arg) in c.args.iter().enumerate() {
            a[i] = self.gen(*arg, i);
        }
        match c.special {
            Special::Mmap => {
                let (addr, len) = self.arena_range(true);
                let prot = self.flags(7 | 0x0100_0000);
                let mut flags = self
                    .flags(0x03 | 0x20 | 0x100 | 0x2000 | 0x4000 | 0x8000 | 0x1_0000 | 0x2_0000 | 0x4_0000 | 0x8_0000);
                flags = flags & !(MAP_FIXED | MAP_FIXED_NOREPLACE)
                    | if self.rng.chance(3) { MAP_FIXED_NOREPLACE } else { MAP_FIXED };
                let len = len.min(8 << 20).max(if len >= FAILING_LEN { len } else { 0 });
                let (fd, off) = if flags & MAP_ANONYMOUS != 0 && self.rng.chance(2) {
                    (u64::MAX, 0)
                } else {
                    (self.fd(), self.rng.pick(&[0, 0, PAGE, 1, 1 << 40, u64::MAX - PAGE + 1]))
                };
                a = [addr, len, prot, flags, fd, off];
            }
            Special::Munmap => {
                let (addr, len) = self.arena_range(true);
                a = [addr, len, 0, 0, 0, 0];
            }
            Special::Shmat => {
                let room = (ARENA_LEN - SHM_ATTACH_ROOM) / PAGE;
                let addr = match self.rng.below(10) {
                    0 => KERNEL,
                    1 => FAILING_LEN - PAGE,
                    2 => ARENA + self.rng.below(room) * PAGE + self.rng.pick(&[1, 100, 2048]),
                    _ => ARENA + self.rng.below(room) * PAGE,
                };
                // SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC.
                a = [a[0], addr, self.flags(0o10000 | 0o20000 | 0o40000 | 0o100000), 0, 0, 0];
            }
            Special::Shmdt => {
                let addr = match self.rng.below(4) {
                    0 | 1 if !self.shm_addrs.is_empty() => self.rng.pick(&self.shm_addrs),
                    _ => self.arena_range(false).0,
                };
                a = [addr, 0, 0, 0, 0, 0];
            }
            Special::MemRange => {
                // mprotect, madvise and mincore act on every mapping in a range that runs
                // past the arena, holes or not: only mlock, munlock and msync may fail long.
                let long = matches!(c.nr, 149 | 150 | 26);
                let (addr, len) = self.arena_range(long);
                a = [addr, len, a[0], a[1], 0, 0];
            }
            Special::Mremap => {
                let (old, old_len) = self.arena_range(false);
                let (new, new_len) = self.arena_range(false);
                let flags = self.flags(1 | 2 | 4);
                a = [old, old_len, new_len.min(8 << 20), flags, new, 0];
            }
            Special::Brk => {
                // Moving the break down would free the allocator's memory: only values
                // that leave it where it is.
                a[0] = self.rng.pick(&[0, 0x1000, KERNEL, u64::MAX, 0x7fff_ffff_f000]);
            }
            Special::Sigaction => {
                let sig = if self.rng.chance(8) {
                    self.rng.pick(&[0, 65, 1000, libc::SIGKILL as u64, libc::SIGSTOP as u64])
                } else {
                    self.rng.pick(SIGNALS_SENT)
                };
                let handler = self.rng.pick(&[0, 1, self.handler]);
                let flags = self.flags(0x0800_0000 | 0x1000_0000 | 0x4000_0000 | 0x8000_0000 | 4 | 1 | 2) | 0x0400_0000;
                let act = if self.rng.chance(6) {
                    self.bad_ptr()
                } else {
                    Self::put_words(0, &[handler, flags, self.restorer, self.rng.next()])
                };
                a = [sig, act, self.buf(), self.rng.pick(&[8, 8, 8, 0, 16]), 0, 0];
            }
            Special::Sigprocmask => {
                a = [self.rng.pick(&[0, 1, 2, 3]), self.sigset(1), self.buf(), self.rng.pick(&[8, 8, 0, 4]), 0, 0];
            }
            Special::Rlimit => {
                // Limits whose change would kill the fuzzer for reasons of its own making
                // (CPU, file size, stack, address space, data) are only read.
                let res = self.rng.pick(&[4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 100]);
                let cur = self.rng.pick(&[0, 1, 64, 1 << 20, u64::MAX]);
                let max = self.rng.pick(&[0, 64, u64::MAX]);
                let limit = Self::put_words(2, &[cur, max]);
                let new = if self.rng.chance(4) { self.bad_ptr() } else { limit };
                a = if c.nr == 160 {
                    [res, new, 0, 0, 0, 0]
                } else {
                    [self.pid(), res, if self.rng.chance(2) { 0 } else { new }, self.buf(), 0, 0]
                };
                if c.nr == 302 && self.rng.chance(3) {
                    a[1] = self.rng.below(16);
                    a[2] = 0;
                }
            }
            Special::ArchPrctl => {
                // Setting FS would pull the fuzzer's own TLS away, faulting CPUID its
                // feature checks.
                a = [self.rng.pick(&[0x1003, 0x1004, 0x1011, 0x3001, 0]), self.buf(), 0, 0, 0, 0];
            }
            Special::Sigaltstack => {
                // Signal frames go on the alternate stack: an enabled one lies in scratch
                // and holds a full frame (with `-cpu max`'s XSAVE state, more than
                // MINSIGSTKSZ), else delivery faults for reasons of the fuzzer's own. Too
                // small sizes (ENOMEM) and bad addresses come only with SS_DISABLE.
                let (sp, size, flags) = match self.rng.below(4) {
                    0 => (self.bad_ptr(), self.rng.pick(&[0, 1024, 1 << 40]), 2 /* SS_DISABLE */),
                    1 => (SCRATCH, self.rng.pick(&[0, 1024, 2047]), 0),
                    _ => {
                        let size = self.rng.pick(&[16384, 32768]);
                        let flags = self.rng.pick(&[0, 0, 1 << 31 /* SS_AUTODISARM */, 2, 1, 3]);
                        (SCRATCH + self.rng.below(SCRATCH_LEN - size), size, flags)
                    }
                };
                let ss = if self.rng.chance(6) { self.bad_ptr() } else { Self::put_words(0, &[sp, flags, size]) };
                a = [ss, self.buf(), 0, 0, 0, 0];
            }
            Special::Prctl => {
                let option = self.rng.pick(&[1, 2, 3, 4, 15, 16, 36, 37, 38, 39, 0, 1000]);
                a = [option, if option == 15 || option == 16 { self.buf() } else { self.rng.below(70) }, 0, 0, 0, 0];
            }
            Special::Fork => {
                let safe = 0x100
                    | 0x200
                    | 0x400
                    | 0x800
                    | 0x2000
                    | 0x4000
                    | 0x8000
                    | 0x1_0000
                    | 0x4_0000
                    | 0x10_0000
                    | 0x20_0000
                    | 0x100_0000
                    | 0x200_0000
                    | 0x8000;
                let flags = (self.rng.next() & safe) & !0x80000 | libc::SIGCHLD as u64;
                // A child running the fuzzer's code needs the parent's stack (a copy).
                let stack = if flags & 0x100 != 0 { CHILD_STACK + CHILD_STACK_LEN } else { 0 };
                a = [flags, stack, self.buf(), self.buf(), 0, 0];
            }
            _ => {}
        }
        a
    }

    /// Makes one call, then takes what it made into the pools.
    fn step(&mut self) {
        let c = if self.rng.chance(100) { None } else { Some(&CALLS[self.rng.below(CALLS.len() as u64) as usize]) };
        let Some(c) = c else {
            let nr = self.rng.pick(UNIMPLEMENTED);
            let a = [self.rng.next(), self.rng.next(), 0, 0, 0, 0];
            let i = self.page.begin(self.pid, nr, &a);
            let r = raw(nr, a);
            self.page.end(i, r);
            return;
        };
        if self.is_child && matches!(c.special, Special::Fork | Special::Vfork | Special::Clone3) {
            return;
        }
        if c.special == Special::Blocking {
            self.arm_timer();
        }
        let a = self.prepare(c);
        let i = self.page.begin(self.pid, c.nr, &a);
        let r = match c.special {
            Special::Vfork => raw_clone_exiting_child(58, a),
            Special::Fork if c.nr == 56 && a[0] & 0x100 != 0 => raw_clone_exiting_child(56, a),
            Special::Clone3 => self.clone3(),
            _ => raw(c.nr, a),
        };
        self.page.end(i, r);
        if r == 0 && c.special == Special::Fork {
            self.become_child();
        }
        if r < 0 {
            return;
        }
        match c.special {
            Special::NewFd if self.fds.len() < 200 => self.fds.push(r as u64),
            Special::NewPipe if a[0] >= SCRATCH && a[0] < SCRATCH + SCRATCH_LEN && self.fds.len() < 200 => {
                // SAFETY: the kernel wrote two ints at a[0], inside SCRATCH.
                let (rd, wr) = unsafe { (*(a[0] as *const i32), *((a[0] + 4) as *const i32)) };
                self.fds.push(rd as u64);
                self.fds.push(wr as u64);
            }
            Special::Close => self.fds.retain(|&f| f != a[0]),
            Special::NewShm if self.shm_ids.len() < 64 => self.shm_ids.push(r as u64),
            Special::NewSem if self.sem_ids.len() < 64 => self.sem_ids.push(r as u64),
            Special::Shmat if self.shm_addrs.len() < 64 => self.shm_addrs.push(r as u64),
            // A CLONE_THREAD child is a thread of this process, not a child to reap.
            Special::Fork if a[0] & 0x1_0000 != 0 => {}
            Special::Fork | Special::Vfork | Special::Clone3 => self.children.push((r as i32, Instant::now())),
            _ => {}
        }
    }

    /// clone3 with a random `clone_args`; CLONE_VM children exit at once.
    fn clone3(&mut self) -> i64 {
        let safe = 0x100
            | 0x200
            | 0x400
            | 0x800
            | 0x2000
            | 0x4000
            | 0x1_0000
            | 0x10_0000
            | 0x20_0000
            | 0x100_0000
            | 0x200_0000
            | 0x8000;
        let flags = self.rng.next() & safe & !0x80000;
        let exit_signal = self.rng.pick(&[libc::SIGCHLD as u64, 0, 65, 10]);
        // Only a CLONE_VM child (which exits at once) may have a stack of its own.
        let (stack, size) = if flags & 0x100 != 0 { (CHILD_STACK, CHILD_STACK_LEN) } else { (0, 0) };
        let args = [flags, 0, self.buf(), self.buf(), exit_signal, stack, size, 0];
        let at = Self::put_words(3, &args);
        let size = self.rng.pick(&[64, 64, 64, 88, 0, 8, 4096]);
        if flags & 0x100 != 0 {
            raw_clone_exiting_child(435, [at, size, 0, 0, 0, 0])
        } else {
            let r = raw(435, [at, size, 0, 0, 0, 0]);
            if r == 0 {
                self.become_child();
            }
            r
        }
    }

    /// In a forked child: a bounded run of calls, then exit_group with a random status.
    fn become_child(&mut self) -> ! {
        self.pid = raw(39, [0; 6]) as u32;
        self.is_child = true;
        self.children.clear();
        let steps = self.rng.below(200);
        for _ in 0..steps {
            self.step();
        }
        let status = self.rng.below(256);
        self.page.begin(self.pid, 231, &[status, 0, 0, 0, 0, 0]);
        raw(231, [status, 0, 0, 0, 0, 0]);
        unreachable!("exit_group returned");
    }

    /// Reaps exited children and kills the ones that ran too long.
    fn tend_children(&mut self) {
        let mut status = 0i32;
        loop {
            let r = raw(61, [(-1i64) as u64, &mut status as *mut i32 as u64, 1 | 0x4000_0000, 0, 0, 0]);
            if r <= 0 {
                break;
            }
            self.children.retain(|c| c.0 != r as i32);
        }
        for &(pid, since) in &self.children {
            if since.elapsed() > Duration::from_millis(500) {
                raw(62, [pid as u64, libc::SIGKILL as u64, 0, 0, 0, 0]);
            }
        }
        // Pids reaped elsewhere (a fuzzed wait4) or reparented stay listed: forget old ones.
        self.children.retain(|c| c.1.elapsed() < Duration::from_secs(5));
    }

    /// Restores what keeps blocking calls bounded: a 50 ms SIGALRM with a handler.
    fn arm_timer(&mut self) {
        let act = Self::put_words(7, &[self.handler, 0x0400_0000, self.restorer, 0]);
        raw(13, [libc::SIGALRM as u64, act, 0, 8, 0, 0]);
        let unblock = Self::put_words(6, &[1 << (libc::SIGALRM - 1)]);
        raw(14, [1, unblock, 0, 8, 0, 0]);
        let it = Self::put_words(5, &[0, 50_000, 0, 50_000]);
        raw(38, [0, it, 0, 0, 0, 0]);
    }
}

impl Rng {
    fn pick_path(&mut self, v: &[String]) -> String {
        v[self.below(v.len() as u64) as usize].clone()
    }
}

/// A worker: a session of its own, unprivileged, fuzzing until killed.
fn worker(k: usize, seed: u64, page: &WorkerPage, scratch_dir: &str) -> ! {
    raw(112, [0; 6]); // setsid
    let dir = format!("{scratch_dir}/w{k}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(format!("{dir}/d/e"));
    let mut wpaths = vec![dir.clone(), format!("{dir}/d"), format!("{dir}/d/e")];
    for n in ["a", "b", "c", "d/f", "d/e/g", "link"] {
        wpaths.push(format!("{dir}/{n}"));
    }
    let _ = std::fs::write(format!("{dir}/a"), b"fuzz data\n");
    let _ = std::os::unix::fs::symlink(format!("{dir}/a"), format!("{dir}/link"));
    wpaths.push(format!("{scratch_dir}/shared"));
    // A POSIX shared memory object (musl's shm_open names it so).
    wpaths.push(format!("/dev/shm/{SHM_PREFIX}{k}"));
    // Hand the directory to the unprivileged user, then become it.
    for p in &wpaths {
        let c = std::ffi::CString::new(p.as_str()).unwrap();
        unsafe { libc::lchown(c.as_ptr(), WORKER_ID, WORKER_ID) };
    }
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if null > 2 {
            libc::close(null);
        }
        libc::setgroups(0, std::ptr::null());
        libc::setgid(WORKER_ID);
        libc::setuid(WORKER_ID);
    }
    // The fuzzer's own regions: scratch, a CLONE_VM child stack, a shared futex page at
    // the bottom of the arena.
    if map_fixed(SCRATCH, SCRATCH_LEN, MAP_PRIVATE) < 0
        || map_fixed(CHILD_STACK, CHILD_STACK_LEN, MAP_PRIVATE) < 0
        || map_fixed(ARENA, PAGE, MAP_SHARED) < 0
    {
        raw(231, [3, 0, 0, 0, 0, 0]);
    }
    let mut rng = Rng(seed);
    for i in 0..0x4000 / 8 {
        // SAFETY: SCRATCH was just mapped.
        unsafe { *((SCRATCH + i * 8) as *mut u64) = rng.next() };
    }
    lib_sigaction(libc::SIGALRM);
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let restorer = {
        let mut old = [0u64; 4];
        raw(13, [libc::SIGALRM as u64, 0, old.as_mut_ptr() as u64, 8, 0, 0]);
        old[2]
    };
    let mut f = Fuzzer {
        rng,
        page,
        pid: raw(39, [0; 6]) as u32,
        fds: Vec::new(),
        children: Vec::new(),
        shm_ids: Vec::new(),
        shm_addrs: Vec::new(),
        sem_ids: Vec::new(),
        wpaths,
        handler: on_signal as *const () as u64,
        restorer,
        is_child: false,
    };
    for p in ["/dev/null", "/proc/self/maps", "/tmp"] {
        let c = std::ffi::CString::new(p).unwrap();
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
        if fd >= 0 {
            f.fds.push(fd as u64);
        }
    }
    let mut n = 0u64;
    loop {
        if n % 64 == 0 {
            f.arm_timer();
            f.tend_children();
        }
        f.step();
        n += 1;
    }
}

/// Installs `on_signal` for `sig` through libc, which supplies the sa_restorer.
fn lib_sigaction(sig: i32) {
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_signal as *const () as usize;
        libc::sigaction(sig, &act, std::ptr::null_mut());
    }
}

// ---- the supervisor ----------------------------------------------------------

/// A worker without progress this long is stuck.
const STUCK: Duration = Duration::from_secs(2);
/// A killed process not reaped after this long is unkillable: a kernel bug.
const UNKILLABLE: Duration = Duration::from_secs(10);
const PROGRESS: Duration = Duration::from_secs(5);
/// A 100 ms sleep of the supervisor that took this long means the CPU was held.
const STARVED: Duration = Duration::from_secs(2);
const SCRATCH_DIR: &str = "/tmp/fuzz";
/// The uid and gid the workers run as.
const WORKER_ID: u32 = 65534;

/// Signals the fuzzer never sends: a worker killed by one found a bug.
const FAULT_SIGNALS: &[i32] =
    &[libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT, libc::SIGSYS, libc::SIGTRAP];
/// Of those, the ones a failed allocation explains when the kernel injects failures.
const INJECTION_SIGNALS: &[i32] = &[libc::SIGABRT, libc::SIGSEGV];
/// `--injection 1`: the kernel injects allocation failures.
static INJECTION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct Slot {
    pid: i32,
    generation: u64,
    last_progress: u64,
    last_change: Instant,
    killed_at: Option<Instant>,
}

#[derive(Default)]
struct Stats {
    restarts: u64,
    stuck: u64,
    /// Workers found stopped (SIGSTOP and the like, sent to themselves).
    stopped: u64,
    /// Times the supervisor did not run for `STARVED`.
    starved: u64,
    unexpected: u64,
    unkillable: u64,
    orphans: u64,
    /// Deaths by `INJECTION_SIGNALS` under `--injection`.
    injection_deaths: u64,
}

fn parse_args() -> (u64, u64, usize) {
    let (mut seconds, mut seed, mut workers) = (30u64, 1u64, 4usize);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).and_then(|v| {
            let v = v.trim();
            v.strip_prefix("0x").map(|h| u64::from_str_radix(h, 16).ok()).unwrap_or_else(|| v.parse().ok())
        });
        match (args[i].as_str(), v) {
            ("--seconds", Some(v)) => seconds = v,
            ("--seed", Some(v)) => seed = v,
            ("--workers", Some(v)) => workers = v.clamp(1, 64) as usize,
            ("--injection", Some(v)) => INJECTION.store(v != 0, Ordering::Relaxed),
            (a, _) => {
                eprintln!("fuzz: bad argument {a}; usage: fuzz [--seconds S] [--seed X] [--workers K] [--injection 1]");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    (seconds, seed, workers)
}

fn spawn(k: usize, seed: u64, generation: u64, page: &WorkerPage) -> i32 {
    page.reset();
    let s = derive_seed(seed, k as u64, generation);
    match unsafe { libc::fork() } {
        0 => worker(k, s, page, SCRATCH_DIR),
        pid => pid,
    }
}

/// The state letter of /proc/PID/stat (R, S, D, T, Z, ...).
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn count_processes() -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .count()
        })
        .unwrap_or(0)
}

/// The workers' objects in /dev/shm: this and the worker's number.
const SHM_PREFIX: &str = "fuzz-w";

/// Removes what the workers left in /dev/shm, and the SysV segments, semaphore sets and
/// message queues they made (they outlive their creators, as on Linux, and the kernel's
/// leak check counts them): every one whose creator uid is the workers', found by index
/// with *_STAT_ANY.
fn cleanup_shm() {
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(SHM_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    // (the kind's ctl call, its `*_INFO`, its `*_STAT_ANY`, whether the ctl takes a
    // semaphore number before the command, as semctl does)
    for (nr, info, stat_any, semnum) in [(71u64, 12u64, 13u64, false), (66, 19, 20, true), (31, 14, 15, false)] {
        let ctl = |id: u64, cmd: u64, buf: u64| {
            if semnum {
                raw(nr, [id, 0, cmd, buf, 0, 0])
            } else {
                raw(nr, [id, cmd, buf, 0, 0, 0])
            }
        };
        let mut scratch = [0u64; 16];
        let max = ctl(0, info, scratch.as_mut_ptr() as u64);
        for idx in 0..=max.max(-1) {
            let mut ds = [0u32; 32];
            let id = ctl(idx as u64, stat_any, ds.as_mut_ptr() as u64);
            // The creator's uid (`*_perm.cuid`) is the structure's fourth word.
            if id >= 0 && ds[3] == WORKER_ID {
                ctl(id as u64, 0, 0);
            }
        }
    }
}

fn main() {
    let (seconds, seed, nworkers) = parse_args();
    let init = std::process::id() == 1;
    if init {
        let _ = std::fs::create_dir("/tmp");
    }
    let _ = std::fs::remove_dir_all(SCRATCH_DIR);
    if let Err(e) = std::fs::create_dir_all(SCRATCH_DIR) {
        println!("fuzz: cannot create {SCRATCH_DIR}: {e}");
        std::process::exit(1);
    }
    unsafe { libc::chmod(c"/tmp/fuzz".as_ptr(), 0o777) };
    let pages_len = nworkers * PAGE as usize;
    let shared = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            pages_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(shared != libc::MAP_FAILED, "mmap of the shared pages failed");
    // SAFETY: one zeroed page per worker, and WorkerPage (atomics only) fits in a page.
    let pages: Vec<&WorkerPage> =
        (0..nworkers).map(|k| unsafe { &*((shared as usize + k * PAGE as usize) as *const WorkerPage) }).collect();
    println!("fuzz: seed {seed:#x}, {seconds} s, {nworkers} workers, {} calls in the table", CALLS.len());
    let start = Instant::now();
    let mut slots: Vec<Slot> = (0..nworkers)
        .map(|k| Slot {
            pid: spawn(k, seed, 0, pages[k]),
            generation: 0,
            last_progress: 0,
            last_change: Instant::now(),
            killed_at: None,
        })
        .collect();
    let mut stats = Stats::default();
    let mut total_base = 0u64;
    let mut last_report = Instant::now();
    let mut last_total = 0u64;
    let deadline = start + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let before = Instant::now();
        std::thread::sleep(Duration::from_millis(100));
        if before.elapsed() > STARVED {
            // The kernel ran something else for that long without switching: likely a
            // call that loops without yielding, still pending in some worker's log.
            stats.starved += 1;
            println!("fuzz: supervisor starved for {:.1} s; the workers' last calls:", before.elapsed().as_secs_f64());
            for (k, p) in pages.iter().enumerate() {
                p.print_log(&format!("fuzz:   w{k}"), 2);
            }
        }
        reap(&mut slots, &pages, &mut stats, &mut total_base, seed);
        for (k, s) in slots.iter_mut().enumerate() {
            let p = pages[k].progress.load(Ordering::Relaxed);
            if p != s.last_progress {
                s.last_progress = p;
                s.last_change = Instant::now();
            }
            match s.killed_at {
                None if s.last_change.elapsed() > STUCK => {
                    // Stopped by a signal it sent itself, or blocked in a call.
                    if process_state(s.pid) == Some('T') {
                        stats.stopped += 1;
                    } else {
                        stats.stuck += 1;
                        println!("fuzz: worker {k} (pid {}) stuck for {:?}; its last calls:", s.pid, STUCK);
                        pages[k].print_log(&format!("fuzz:   w{k}"), 8);
                    }
                    kill_worker(s.pid);
                    s.killed_at = Some(Instant::now());
                }
                Some(t) if t.elapsed() > UNKILLABLE => {
                    stats.unkillable += 1;
                    println!(
                        "fuzz: BUG: worker {k} (pid {}) not dead {:?} after SIGKILL; its last calls:",
                        s.pid, UNKILLABLE
                    );
                    pages[k].print_log(&format!("fuzz:   w{k}"), LOG_LEN);
                    s.killed_at = Some(Instant::now() + Duration::from_secs(3600));
                }
                _ => {}
            }
        }
        if last_report.elapsed() >= PROGRESS {
            let total = total_base + pages.iter().map(|p| p.progress.load(Ordering::Relaxed)).sum::<u64>();
            let rate = (total - last_total) as f64 / last_report.elapsed().as_secs_f64();
            println!(
                "fuzz: {} s, {} syscalls ({:.0}/s), {} processes, {} restarts, {} stuck, {} stopped, {} unexpected deaths",
                start.elapsed().as_secs(),
                total,
                rate,
                count_processes(),
                stats.restarts,
                stats.stuck,
                stats.stopped,
                stats.unexpected
            );
            last_total = total;
            last_report = Instant::now();
        }
    }
    // The end: every worker group, then (as init) every process, killed and reaped.
    for s in &slots {
        kill_worker(s.pid);
    }
    if init {
        unsafe { libc::kill(-1, libc::SIGKILL) };
    }
    let stop = Instant::now();
    let mut remaining = slots.iter().filter(|s| s.pid > 0).count();
    while remaining > 0 || init {
        let mut status = 0;
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r < 0 {
            break; // ECHILD: nothing left
        }
        if r > 0 {
            if slots.iter().any(|s| s.pid == r) {
                remaining -= 1;
            }
            continue;
        }
        if stop.elapsed() > UNKILLABLE {
            stats.unkillable += 1;
            println!("fuzz: BUG: processes still alive {:?} after SIGKILL", UNKILLABLE);
            break;
        }
        if init {
            unsafe { libc::kill(-1, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let total = total_base + pages.iter().map(|p| p.progress.load(Ordering::Relaxed)).sum::<u64>();
    let _ = std::fs::remove_dir_all(SCRATCH_DIR);
    cleanup_shm();
    let secs = start.elapsed().as_secs_f64();
    let verdict = if stats.unexpected + stats.unkillable == 0 { "done" } else { "FAILED" };
    println!(
        "fuzz: {verdict}: seed {seed:#x}, {:.0} s, {total} syscalls ({:.0}/s), {} restarts, {} stuck, {} stopped, {} starved, {} orphans reaped, {} unexpected deaths, {} unkillable",
        secs,
        total as f64 / secs,
        stats.restarts,
        stats.stuck,
        stats.stopped,
        stats.starved,
        stats.orphans,
        stats.unexpected,
        stats.unkillable
    );
    if INJECTION.load(Ordering::Relaxed) {
        println!("fuzz: {} worker deaths by SIGABRT or SIGSEGV under injection", stats.injection_deaths);
    }
    if init {
        unsafe { libc::sync() };
        unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF) };
    }
    std::process::exit(if verdict == "done" { 0 } else { 1 });
}

/// SIGKILL to the worker's session group and to the worker itself (fuzzed setpgid may
/// have moved it).
fn kill_worker(pid: i32) {
    if pid > 0 {
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Reaps exited workers (reporting unexpected deaths, restarting them) and orphans.
fn reap(slots: &mut [Slot], pages: &[&WorkerPage], stats: &mut Stats, total_base: &mut u64, seed: u64) {
    loop {
        let mut status = 0;
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return;
        }
        let Some(k) = slots.iter().position(|s| s.pid == r) else {
            stats.orphans += 1;
            continue;
        };
        let sig = if libc::WIFSIGNALED(status) { libc::WTERMSIG(status) } else { 0 };
        if INJECTION.load(Ordering::Relaxed) && INJECTION_SIGNALS.contains(&sig) {
            stats.injection_deaths += 1;
        } else if FAULT_SIGNALS.contains(&sig) {
            stats.unexpected += 1;
            println!("fuzz: BUG?: worker {k} (pid {r}) killed by signal {sig}; its last calls:");
            pages[k].print_log(&format!("fuzz:   w{k}"), LOG_LEN);
        }
        let s = &mut slots[k];
        *total_base += pages[k].progress.swap(0, Ordering::Relaxed);
        s.generation += 1;
        s.killed_at = None;
        s.last_progress = 0;
        s.last_change = Instant::now();
        stats.restarts += 1;
        s.pid = spawn(k, seed, s.generation, pages[k]);
    }
}
