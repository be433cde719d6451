//! The syscall table: Linux x86_64 numbers, arguments in RDI, RSI, RDX,
//! R10, R8, R9, the result (or `-errno`) in RAX. One file per family.
//! An unimplemented syscall returns ENOSYS and is logged once.

mod epoll;
pub(crate) mod fs;
mod ipc;
pub mod misc;
mod mm;
pub(crate) mod net;
mod process;
mod signal;
mod time;
mod timerfd;
pub mod trace;
mod xattr;

pub use trace::dump_tasks;

/// Gives back pause()'s queue's spare capacity (`leak`'s shrinkers).
pub fn shrink_pause_queue() {
    signal::PAUSE_QUEUE.shrink();
    signal::SIGTIMEDWAIT_QUEUE.shrink();
}

use crate::arch::trap::TrapFrame;
use crate::errno::*;
use crate::mm::usercopy::{self, Pod};
use crate::sync::SpinLock as Mutex;
use alloc::vec::Vec;

/// Syscall arguments, named by position.
#[derive(Clone, Copy)]
pub struct Args(pub [u64; 6]);

impl Args {
    fn from_frame(f: &TrapFrame) -> Args {
        Args([f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9])
    }
    pub fn u(&self, i: usize) -> u64 {
        self.0[i]
    }
    pub fn i32(&self, i: usize) -> i32 {
        self.0[i] as i32
    }
    pub fn u32(&self, i: usize) -> u32 {
        self.0[i] as u32
    }
    pub fn usize(&self, i: usize) -> usize {
        self.0[i] as usize
    }
}

/// What a handler asks the dispatcher to do with RAX.
pub enum Ret {
    Value(usize),
    /// The handler already set every register (rt_sigreturn, execve).
    Frame,
}

pub type SysResult = KResult<Ret>;

pub fn ok(v: usize) -> SysResult {
    Ok(Ret::Value(v))
}

static LOGGED: Mutex<[u64; 8], crate::sync::order::SyscallLogged> = Mutex::new([0; 8]);

fn log_unimplemented(nr: u64) {
    let mut l = LOGGED.lock();
    let (w, b) = ((nr / 64) as usize, nr % 64);
    if w < l.len() && l[w] & (1 << b) == 0 {
        l[w] |= 1 << b;
        log::warn!("syscall {} is not implemented (ENOSYS)", nr);
    }
}

pub fn dispatch(frame: &mut TrapFrame) {
    let nr = frame.rax;
    let a = Args::from_frame(frame);
    // The task is looked at twice rather than held: a call that exits never
    // returns here, and a held reference would never be dropped.
    let seq = crate::process::sched::with_current(|t| t.syscalls.enter(nr, &a.0)).unwrap_or(0);
    crate::mm::oom_kill::refill_reserve();
    let refused = crate::mm::frame::refused_above_min();
    let mut r = call(nr, a, frame);
    // Failed because a process allocation found only the reserve (ENOMEM from a page
    // cache page, EFAULT from a copy whose fault got no page): the OOM killer frees
    // memory and the call runs again, as Linux's allocation would block in the OOM
    // killer and then succeed.
    if matches!(r, Err(e) if e == ENOMEM || e == EFAULT)
        && RERUN_AFTER_OOM.contains(&nr)
        && crate::mm::oom_kill::out_of_memory_after_refusal(refused)
    {
        r = call(nr, a, frame);
    }
    match r {
        Ok(Ret::Value(v)) => frame.rax = v as u64,
        Ok(Ret::Frame) => {}
        Err(e) => frame.rax = (-(e.0 as i64)) as u64,
    }
    crate::process::sched::with_current(|t| t.syscalls.leave(seq, frame.rax));
}

/// Calls whose ENOMEM or EFAULT leaves nothing done, so they may run again: read, write, pread64,
/// pwrite64, readv, writev (the destination is faulted in before a byte is taken,
/// `read_to_user`; the source is copied before a byte is written).
const RERUN_AFTER_OOM: [u64; 6] = [0, 1, 17, 18, 19, 20];

fn call(nr: u64, a: Args, frame: &mut TrapFrame) -> SysResult {
    match nr {
        0 => fs::sys_read(a),
        1 => fs::sys_write(a),
        2 => fs::sys_open(a),
        3 => fs::sys_close(a),
        4 => fs::sys_stat(a, true),
        5 => fs::sys_fstat(a),
        6 => fs::sys_stat(a, false),
        7 => fs::sys_poll(a),
        8 => fs::sys_lseek(a),
        9 => mm::sys_mmap(a),
        10 => mm::sys_mprotect(a),
        11 => mm::sys_munmap(a),
        12 => mm::sys_brk(a),
        13 => signal::sys_rt_sigaction(a),
        14 => signal::sys_rt_sigprocmask(a),
        15 => signal::sys_rt_sigreturn(frame),
        16 => fs::sys_ioctl(a),
        17 => fs::sys_pread64(a),
        18 => fs::sys_pwrite64(a),
        19 => fs::sys_readv(a),
        20 => fs::sys_writev(a),
        21 => fs::sys_access(a),
        22 => fs::sys_pipe2(a.u(0), 0),
        23 => fs::sys_select(a),
        24 => process::sys_sched_yield(),
        25 => mm::sys_mremap(a),
        26 => mm::sys_msync(a),
        27 => mm::sys_mincore(a),
        28 => mm::sys_madvise(a),
        29 => ipc::sys_shmget(a),
        30 => ipc::sys_shmat(a),
        31 => ipc::sys_shmctl(a),
        32 => fs::sys_dup(a),
        33 => fs::sys_dup2(a),
        34 => signal::sys_pause(),
        35 => time::sys_nanosleep(a),
        36 => time::sys_getitimer(a),
        37 => time::sys_alarm(a),
        38 => time::sys_setitimer(a),
        39 => process::sys_getpid(),
        40 => fs::sys_sendfile(a),
        41 => net::sys_socket(a),
        42 => net::sys_connect(a),
        43 => net::sys_accept(a),
        44 => net::sys_sendto(a),
        45 => net::sys_recvfrom(a),
        46 => net::sys_sendmsg(a),
        47 => net::sys_recvmsg(a),
        48 => net::sys_shutdown(a),
        49 => net::sys_bind(a),
        50 => net::sys_listen(a),
        51 => net::sys_getsockname(a),
        52 => net::sys_getpeername(a),
        53 => net::sys_socketpair(a),
        54 => net::sys_setsockopt(a),
        55 => net::sys_getsockopt(a),
        299 => net::sys_recvmmsg(a),
        307 => net::sys_sendmmsg(a),
        56 => process::sys_clone(frame, a),
        57 => process::sys_fork(frame),
        58 => process::sys_vfork(frame),
        59 => process::sys_execve(frame, a),
        60 => process::sys_exit(a),
        61 => process::sys_wait4(a),
        62 => signal::sys_kill(a),
        63 => misc::sys_uname(a),
        64 => ipc::sys_semget(a),
        65 => ipc::sys_semop(a),
        66 => ipc::sys_semctl(a),
        67 => ipc::sys_shmdt(a),
        68 => ipc::sys_msgget(a),
        69 => ipc::sys_msgsnd(a),
        70 => ipc::sys_msgrcv(a),
        71 => ipc::sys_msgctl(a),
        72 => fs::sys_fcntl(a),
        73 => fs::sys_flock(a),
        74 | 75 => fs::sys_fsync(a),
        76 => fs::sys_truncate(a),
        77 => fs::sys_ftruncate(a),
        79 => fs::sys_getcwd(a),
        80 => fs::sys_chdir(a),
        81 => fs::sys_fchdir(a),
        82 => fs::sys_renameat2(fs::AT_FDCWD, a.u(0), fs::AT_FDCWD, a.u(1), 0),
        83 => fs::sys_mkdirat(fs::AT_FDCWD, a.u(0), a.u32(1)),
        133 => fs::sys_mknodat(fs::AT_FDCWD, a.u(0), a.u32(1), a.u32(2)),
        84 => fs::sys_unlinkat(fs::AT_FDCWD, a.u(0), fs::AT_REMOVEDIR),
        85 => fs::sys_creat(a),
        86 => fs::sys_linkat(fs::AT_FDCWD, a.u(0), fs::AT_FDCWD, a.u(1), 0),
        87 => fs::sys_unlinkat(fs::AT_FDCWD, a.u(0), 0),
        88 => fs::sys_symlinkat(a.u(0), fs::AT_FDCWD, a.u(1)),
        89 => fs::sys_readlinkat(fs::AT_FDCWD, a.u(0), a.u(1), a.usize(2)),
        90 => fs::sys_fchmodat(fs::AT_FDCWD, a.u(0), a.u32(1)),
        91 => fs::sys_fchmod(a),
        92 => fs::sys_fchownat(fs::AT_FDCWD, a.u(0), a.u32(1), a.u32(2), 0),
        93 => fs::sys_fchown(a),
        94 => fs::sys_fchownat(fs::AT_FDCWD, a.u(0), a.u32(1), a.u32(2), fs::AT_SYMLINK_NOFOLLOW),
        95 => fs::sys_umask(a),
        96 => time::sys_gettimeofday(a),
        97 => process::sys_getrlimit(a),
        98 => process::sys_getrusage(a),
        99 => misc::sys_sysinfo(a),
        100 => process::sys_times(a),
        102 => process::sys_getuid(),
        104 => process::sys_getgid(),
        105 => process::sys_setuid(a),
        106 => process::sys_setgid(a),
        107 => process::sys_geteuid(),
        108 => process::sys_getegid(),
        109 => process::sys_setpgid(a),
        110 => process::sys_getppid(),
        111 => process::sys_getpgrp(),
        112 => process::sys_setsid(),
        113 => process::sys_setreuid(a),
        114 => process::sys_setregid(a),
        115 => process::sys_getgroups(a),
        116 => process::sys_setgroups(a),
        117 => process::sys_setresuid(a),
        118 => process::sys_getresuid(a),
        119 => process::sys_setresgid(a),
        120 => process::sys_getresgid(a),
        121 => process::sys_getpgid(a),
        122 => process::sys_setfsuid(a),
        123 => process::sys_setfsgid(a),
        124 => process::sys_getsid(a),
        125 => process::sys_capget(a),
        126 => process::sys_capset(a),
        127 => signal::sys_rt_sigpending(a),
        128 => signal::sys_rt_sigtimedwait(a),
        130 => signal::sys_rt_sigsuspend(a),
        131 => signal::sys_sigaltstack(a),
        149 => mm::sys_mlock(a),
        150 => mm::sys_munlock(a),
        151 => mm::sys_mlockall(a),
        152 => mm::sys_munlockall(),
        137 => fs::sys_statfs(a),
        140 => process::sys_getpriority(a),
        141 => process::sys_setpriority(a),
        138 => fs::sys_fstatfs(a),
        157 => process::sys_prctl(a),
        158 => process::sys_arch_prctl(a),
        160 => process::sys_setrlimit(a),
        162 => ok(0), // sync: tmpfs has nothing to write back
        165 => fs::sys_mount(a),
        166 => fs::sys_umount2(a),
        169 => misc::sys_reboot(a),
        186 => process::sys_gettid(),
        188 => xattr::sys_setxattr(xattr::By::Path(true), a),
        189 => xattr::sys_setxattr(xattr::By::Path(false), a),
        190 => xattr::sys_setxattr(xattr::By::Fd, a),
        191 => xattr::sys_getxattr(xattr::By::Path(true), a),
        192 => xattr::sys_getxattr(xattr::By::Path(false), a),
        193 => xattr::sys_getxattr(xattr::By::Fd, a),
        194 => xattr::sys_listxattr(xattr::By::Path(true), a),
        195 => xattr::sys_listxattr(xattr::By::Path(false), a),
        196 => xattr::sys_listxattr(xattr::By::Fd, a),
        197 => xattr::sys_removexattr(xattr::By::Path(true), a),
        198 => xattr::sys_removexattr(xattr::By::Path(false), a),
        199 => xattr::sys_removexattr(xattr::By::Fd, a),
        200 => signal::sys_tkill(a),
        201 => time::sys_time(a),
        202 => misc::sys_futex(a),
        203 => process::sys_sched_setaffinity(a),
        204 => process::sys_sched_getaffinity(a),
        213 => epoll::sys_epoll_create(a),
        216 => mm::sys_remap_file_pages(a),
        217 => fs::sys_getdents64(a),
        218 => process::sys_set_tid_address(a),
        220 => ipc::sys_semtimedop(a),
        221 => fs::sys_fadvise64(a),
        222 => time::sys_timer_create(a),
        223 => time::sys_timer_settime(a),
        224 => time::sys_timer_gettime(a),
        225 => time::sys_timer_getoverrun(a),
        226 => time::sys_timer_delete(a),
        227 => time::sys_clock_settime(a),
        228 => time::sys_clock_gettime(a),
        229 => time::sys_clock_getres(a),
        230 => time::sys_clock_nanosleep(a),
        231 => process::sys_exit_group(a),
        232 => epoll::sys_epoll_wait(a),
        233 => epoll::sys_epoll_ctl(a),
        234 => signal::sys_tgkill(a),
        247 => process::sys_waitid(a),
        257 => fs::sys_openat(a),
        258 => fs::sys_mkdirat(a.i32(0), a.u(1), a.u32(2)),
        259 => fs::sys_mknodat(a.i32(0), a.u(1), a.u32(2), a.u32(3)),
        262 => fs::sys_newfstatat(a),
        263 => fs::sys_unlinkat(a.i32(0), a.u(1), a.u32(2)),
        260 => fs::sys_fchownat(a.i32(0), a.u(1), a.u32(2), a.u32(3), a.u32(4)),
        264 => fs::sys_renameat2(a.i32(0), a.u(1), a.i32(2), a.u(3), 0),
        265 => fs::sys_linkat(a.i32(0), a.u(1), a.i32(2), a.u(3), a.u32(4)),
        266 => fs::sys_symlinkat(a.u(0), a.i32(1), a.u(2)),
        267 => fs::sys_readlinkat(a.i32(0), a.u(1), a.u(2), a.usize(3)),
        268 => fs::sys_fchmodat(a.i32(0), a.u(1), a.u32(2)),
        269 => fs::sys_faccessat(a.i32(0), a.u(1), a.u32(2), 0),
        270 => fs::sys_pselect6(a),
        271 => fs::sys_ppoll(a),
        272 => process::sys_unshare(a),
        273 => process::sys_set_robust_list(a),
        274 => process::sys_get_robust_list(a),
        280 => fs::sys_utimensat(a),
        281 => epoll::sys_epoll_pwait(a),
        285 => fs::sys_fallocate(a),
        286 => timerfd::sys_timerfd_settime(a),
        287 => timerfd::sys_timerfd_gettime(a),
        288 => net::sys_accept4(a),
        291 => epoll::sys_epoll_create1(a),
        292 => fs::sys_dup3(a),
        293 => fs::sys_pipe2(a.u(0), a.u32(1)),
        282 => timerfd::sys_signalfd4(a.i32(0), a.u(1), a.usize(2), 0),
        283 => timerfd::sys_timerfd_create(a),
        284 => fs::sys_eventfd2(a.u32(0), 0),
        289 => timerfd::sys_signalfd4(a.i32(0), a.u(1), a.usize(2), a.u32(3)),
        290 => fs::sys_eventfd2(a.u32(0), a.u32(1)),
        302 => process::sys_prlimit64(a),
        308 => ipc::sys_setns(a),
        309 => process::sys_getcpu(a),
        316 => fs::sys_renameat2(a.i32(0), a.u(1), a.i32(2), a.u(3), a.u32(4)),
        318 => misc::sys_getrandom(a),
        319 => fs::sys_memfd_create(a),
        324 => ok(crate::process::membarrier::sys_membarrier(a.i32(0), a.u32(1), a.i32(2))?),
        325 => mm::sys_mlock2(a),
        326 => fs::sys_copy_file_range(a),
        332 => fs::sys_statx(a),
        334 => process::sys_rseq(a),
        434 => process::sys_pidfd_open(a),
        435 => process::sys_clone3(frame, a),
        436 => fs::sys_close_range(a),
        441 => epoll::sys_epoll_pwait2(a),
        439 => fs::sys_faccessat(a.i32(0), a.u(1), a.u32(2), a.u32(3)),
        // mshare's 2022 system calls, above Linux's table (`msharefs::SYS_MSHARE`).
        1024 => mm::sys_mshare(a),
        1025 => mm::sys_mshare_unlink(a),
        _ => {
            log_unimplemented(nr);
            Err(ENOSYS)
        }
    }
}

// ---- helpers shared by the handlers ------------------------------------

/// `va + off` for walking a user array; an address that wraps is EFAULT.
pub fn uoff(va: u64, off: u64) -> KResult<u64> {
    va.checked_add(off).ok_or(EFAULT)
}

pub fn read_val<T: Pod>(va: u64) -> KResult<T> {
    usercopy::read_val(&crate::process::current_mm(), va)
}

pub fn write_val<T: Pod>(va: u64, v: &T) -> KResult<()> {
    usercopy::write_val(&crate::process::current_mm(), va, v)
}

pub fn copy_to_user(va: u64, data: &[u8]) -> KResult<()> {
    usercopy::copy_to_user(&crate::process::current_mm(), va, data)
}

pub fn copy_from_user(va: u64, out: &mut [u8]) -> KResult<()> {
    usercopy::copy_from_user(&crate::process::current_mm(), va, out)
}

/// A path argument: at most PATH_MAX - 1 bytes; empty is ENOENT.
pub fn read_path(va: u64) -> KResult<Vec<u8>> {
    let p = usercopy::read_cstr(&crate::process::current_mm(), va, crate::fs::path::PATH_MAX - 1)?;
    if p.is_empty() {
        return Err(ENOENT);
    }
    Ok(p)
}

/// A NULL-terminated array of string pointers (argv, envp).
pub fn read_string_array(va: u64) -> KResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if va == 0 {
        return Ok(out);
    }
    let mm = crate::process::current_mm();
    // Strings and pointers together may not exceed the exec stack's argument
    // space (a quarter of the 8 MiB stack rlimit), checked while reading so a
    // caller cannot make the kernel buffer more.
    let limit = elf_loader::arg_space_limit(elf_loader::DEFAULT_STACK_RLIMIT) as usize;
    let mut total = 0usize;
    for i in 0.. {
        let p: u64 = usercopy::read_val(&mm, uoff(va, i * 8)?)?;
        if p == 0 {
            break;
        }
        let s = usercopy::read_cstr(&mm, p, elf_loader::MAX_ARG_STRLEN as usize - 1).map_err(|e| {
            if e == ENAMETOOLONG {
                E2BIG
            } else {
                e
            }
        })?;
        total += 8 + s.len() + 1;
        if total > limit {
            return Err(E2BIG);
        }
        crate::mm::fail::try_reserve(&mut out, 1)?;
        out.push(s);
    }
    Ok(out)
}
