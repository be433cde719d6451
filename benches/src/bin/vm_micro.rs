//! `vm_micro`: microbenchmarks of page faults, memory-mapping calls, fork, tmpfs I/O and
//! pipes, in the manner of lmbench and will-it-scale. The same static binary runs on our
//! kernel and on Linux; the runner (`qemu/src/bench.rs`) compares their rates.
//!
//! ```text
//! vm_micro [--quick] [--runs K] [--only NAME[,NAME...]]
//! ```
//!
//! Each benchmark does a fixed number of operations (fewer with `--quick`, the sizes in the
//! names stay the same) K times (default 3). Only the operation is timed, with
//! CLOCK_MONOTONIC; set-up such as populating a region happens outside the timed part.
//! The benchmarks, with their nearest relatives in lmbench and will-it-scale (wis):
//!
//! | name                   | one op                                      | relative                              |
//! |------------------------|---------------------------------------------|---------------------------------------|
//! | `anon_fault`           | write fault on a fresh private anon page    | wis page_fault1                       |
//! | `mmap_touch_munmap_4k` | mmap 4 KiB anon + write one byte + munmap   | lmbench lat_mmap, wis mmap1           |
//! | `fork_exit_wait`       | fork + child `_exit(0)` + waitpid           | lmbench lat_proc fork                 |
//! | `fork_exit_wait_256m`  | the same with 256 MiB of written anon       | lat_proc fork of a big process        |
//! | `fork_exit_wait_16g`   | the same with 16 GiB MAP_NORESERVE, 1 page written | lat_proc fork of a sparse process |
//! | `shared_anon_fault`    | write fault on a fresh shared anon page     | wis page_fault3                       |
//! | `file_read_fault`      | read fault on a cached tmpfs file page      | lmbench lat_pagefault                 |
//! | `mprotect_1m`          | mprotect of a written 1 MiB region          | (none)                                |
//! | `munmap_256m`          | munmap of 256 MiB of written anon           | wis mmap1, with the pages written     |
//! | `mremap_64m`           | mremap (move) of 64 MiB of written anon     | (none)                                |
//! | `tmpfs_write_1m`       | pwrite of 1 MiB at offset 0 of a tmpfs file | wis pwrite1 (1 MiB, not 4 KiB)        |
//! | `tmpfs_read_1m`        | pread of 1 MiB at offset 0 of a tmpfs file  | lmbench bw_file_rd, wis pread1        |
//! | `pipe_pingpong`        | 1-byte round trip between two processes     | lmbench lat_pipe, wis context_switch1 |
//! | `mmap_munmap_60k`      | mmap + munmap of 4 KiB with 60,000 VMAs     | wis mmap1 in a crowded address space  |
//! | `semop_pingpong`       | SysV semaphore round trip between two processes | lmbench lat_sem                  |
//! | `unix_stream_pingpong` | 1-byte round trip over an AF_UNIX socket pair | lmbench lat_unix                    |
//! | `epoll_wakeup`         | `pipe_pingpong` with each side asleep in epoll_wait | (none)                         |
//! | `exec_true_static`     | fork + execve of a static `true` + waitpid  | lmbench lat_proc exec                 |
//! | `exec_true_dynamic`    | the same with Debian's glibc-linked `true`  | lmbench lat_proc exec (dynamic)       |
//! | `clock_gettime`        | clock_gettime(CLOCK_MONOTONIC) through musl (the vDSO) | lmbench lat_syscall-like    |
//! | `clock_gettime_syscall`| the same as a system call                  | (none)                                |
//! | `null_syscall`         | getppid                                     | lmbench lat_syscall null              |
//!
//! Output, on stdout: first `@bench vm_micro_info kernel=... quick=0|1 runs=K`, then for
//! every benchmark and every run i in 0..K one line
//!
//! ```text
//! @bench vm_micro name=NAME run=I ops=N ns=ELAPSED_NS ops_per_s=X
//! ```
//!
//! where `ns` is the timed part and `ops_per_s` = ops / (ns / 1e9) with one decimal. Any
//! unexpected failure prints `vm_micro: NAME: WHAT: ERROR` on stderr and exits with
//! status 1; bad arguments exit with status 2.

use benches::{arg_value, emit, kernel_release, now_ns};
use std::ffi::CString;
use std::io::Error;
use std::ptr::{null_mut, read_volatile, write_volatile};

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;

/// One benchmark: its name, its function and its iteration counts (full, quick). What an
/// iteration is depends on the benchmark (see each function). Under QEMU TCG with K=3 the
/// full set takes about 40 s on Linux and 30 s on our kernel, the quick set about 5 s and
/// 3 s, most of it writing the 256 MiB regions (set-up, which `--quick` cannot shrink).
struct Bench {
    name: &'static str,
    run: fn(&Ctx),
    iters: u64,
    quick_iters: u64,
}

const BENCHES: &[Bench] = &[
    Bench { name: "anon_fault", run: anon_fault, iters: 8, quick_iters: 1 },
    Bench { name: "mmap_touch_munmap_4k", run: mmap_touch_munmap_4k, iters: 20_000, quick_iters: 300 },
    Bench { name: "fork_exit_wait", run: fork_exit_wait, iters: 500, quick_iters: 20 },
    Bench { name: "fork_exit_wait_256m", run: fork_exit_wait_256m, iters: 50, quick_iters: 2 },
    Bench { name: "fork_exit_wait_16g", run: fork_exit_wait_16g, iters: 200, quick_iters: 10 },
    Bench { name: "shared_anon_fault", run: shared_anon_fault, iters: 8, quick_iters: 1 },
    Bench { name: "file_read_fault", run: file_read_fault, iters: 32, quick_iters: 1 },
    Bench { name: "mprotect_1m", run: mprotect_1m, iters: 10_000, quick_iters: 200 },
    Bench { name: "munmap_256m", run: munmap_256m, iters: 2, quick_iters: 1 },
    Bench { name: "mremap_64m", run: mremap_64m, iters: 200, quick_iters: 10 },
    Bench { name: "tmpfs_write_1m", run: tmpfs_write_1m, iters: 500, quick_iters: 10 },
    Bench { name: "tmpfs_read_1m", run: tmpfs_read_1m, iters: 500, quick_iters: 10 },
    Bench { name: "pipe_pingpong", run: pipe_pingpong, iters: 20_000, quick_iters: 300 },
    Bench { name: "mmap_munmap_60k", run: mmap_munmap_60k, iters: 20_000, quick_iters: 300 },
    Bench { name: "sysv_shm_16m", run: sysv_shm_16m, iters: 8, quick_iters: 1 },
    Bench { name: "memfd_create_mmap_close", run: memfd_create_mmap_close, iters: 5_000, quick_iters: 100 },
    Bench { name: "semop_pingpong", run: semop_pingpong, iters: 20_000, quick_iters: 300 },
    Bench { name: "unix_stream_pingpong", run: unix_stream_pingpong, iters: 20_000, quick_iters: 300 },
    Bench { name: "epoll_wakeup", run: epoll_wakeup, iters: 20_000, quick_iters: 300 },
    Bench { name: "exec_true_static", run: exec_true_static, iters: 200, quick_iters: 5 },
    Bench { name: "exec_true_dynamic", run: exec_true_dynamic, iters: 200, quick_iters: 5 },
    Bench { name: "clock_gettime", run: clock_gettime_libc, iters: 1_000_000, quick_iters: 10_000 },
    Bench { name: "clock_gettime_syscall", run: clock_gettime_syscall, iters: 200_000, quick_iters: 2_000 },
    Bench { name: "null_syscall", run: null_syscall, iters: 200_000, quick_iters: 2_000 },
];

/// The static `true` (musl, `benches/c/true.c`) and Debian's own, dynamically linked
/// against glibc, with its loader and libc beside it (the runner puts them in the
/// initramfs).
const TRUE_STATIC: &str = "/bench/true_static";
const TRUE_DYNAMIC: &str = "/usr/bin/true";

/// What a benchmark function gets: its name (for error messages), the iteration count of
/// one run and the number of runs.
struct Ctx {
    name: &'static str,
    iters: u64,
    runs: u32,
}

impl Ctx {
    /// Reports a failed system call (with errno) and exits with status 1.
    fn fail(&self, what: &str) -> ! {
        let err = Error::last_os_error();
        self.fail_with(what, &err.to_string())
    }

    /// Reports a failure with its own explanation and exits with status 1.
    fn fail_with(&self, what: &str, detail: &str) -> ! {
        eprintln!("vm_micro: {}: {what}: {detail}", self.name);
        remove_tmp_file();
        std::process::exit(1);
    }

    /// Fails unless a system call's return value `r` is 0 or more.
    fn check(&self, r: impl Into<i64>, what: &str) -> i64 {
        let r = r.into();
        if r < 0 {
            self.fail(what);
        }
        r
    }

    /// Does the K runs: `one_run(iters)` returns (ops, timed ns) and is printed.
    fn measure(&self, mut one_run: impl FnMut(u64) -> (u64, u64)) {
        for run in 0..self.runs {
            let (ops, ns) = one_run(self.iters);
            let ns = ns.max(1);
            let rate = format!("{:.1}", ops as f64 * 1e9 / ns as f64);
            emit("vm_micro", &[("name", &self.name), ("run", &run), ("ops", &ops), ("ns", &ns), ("ops_per_s", &rate)]);
        }
    }

    /// mmap with the given protection and flags; fails on MAP_FAILED and, when `addr` is
    /// given with MAP_FIXED, on any other address.
    fn map(&self, addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, what: &str) -> *mut u8 {
        // SAFETY: a new mapping; callers pass MAP_FIXED only over ranges they own and no
        // longer use.
        let p = unsafe { libc::mmap(addr.cast(), len, prot, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            self.fail(what);
        }
        if flags & libc::MAP_FIXED != 0 && p.cast() != addr {
            self.fail_with(what, &format!("mapped at {p:p}, not {addr:p}"));
        }
        p.cast()
    }

    /// A private (or `shared`) anonymous read-write mapping of `len` bytes.
    fn map_anon(&self, len: usize, shared: bool, what: &str) -> *mut u8 {
        let kind = if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
        self.map(null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, kind | libc::MAP_ANONYMOUS, -1, what)
    }

    fn unmap(&self, p: *mut u8, len: usize, what: &str) {
        // SAFETY: callers pass a mapping of their own that nothing refers to any more.
        self.check(unsafe { libc::munmap(p.cast(), len) }, what);
    }

    /// fork; the child `_exit(0)`s at once, the parent waits for it and checks its status.
    fn fork_wait(&self) {
        // SAFETY: the process is single-threaded; the child only calls _exit.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => self.fail("fork"),
            // SAFETY: leave at once, running no handlers of the parent.
            0 => unsafe { libc::_exit(0) },
            _ => self.wait_child(pid),
        }
    }

    /// Waits for child `pid` and fails unless it exited with status 0.
    fn wait_child(&self, pid: libc::pid_t) {
        let mut status = 0;
        // SAFETY: `pid` is our own child; `status` is a valid int to write.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r != pid {
            self.fail("waitpid");
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            self.fail_with("child", &format!("wait status {status:#x}"));
        }
    }
}

/// Writes one byte to every page of `p..p+len`.
fn touch_write(p: *mut u8, len: usize) {
    for off in (0..len).step_by(PAGE) {
        // SAFETY: callers pass a writable mapping of `len` bytes.
        unsafe { write_volatile(p.add(off), 1) };
    }
}

/// Reads one byte of every page of `p..p+len`; returns their sum, for a check.
fn touch_read(p: *const u8, len: usize) -> u64 {
    let mut sum = 0;
    for off in (0..len).step_by(PAGE) {
        // SAFETY: callers pass a readable mapping of `len` bytes.
        sum += u64::from(unsafe { read_volatile(p.add(off)) });
    }
    sum
}

/// Times `f`, returning its result and the nanoseconds it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let t0 = now_ns();
    let r = f();
    (r, now_ns() - t0)
}

/// The one scratch file of the benchmarks that need one (they run one after another).
fn tmp_path() -> CString {
    CString::new(format!("/tmp/vm_micro.{}", std::process::id())).unwrap()
}

/// Unlinks the scratch file, if any (on failure, so that no file stays behind).
fn remove_tmp_file() {
    // SAFETY: a valid path; ENOENT is fine.
    unsafe { libc::unlink(tmp_path().as_ptr()) };
}

/// A scratch file in /tmp (a tmpfs on both kernels) of `len` bytes written with write(2),
/// so that every page is in the page cache; closed and unlinked on drop.
struct TmpFile<'a> {
    ctx: &'a Ctx,
    fd: i32,
}

impl<'a> TmpFile<'a> {
    fn create(ctx: &'a Ctx, len: usize) -> TmpFile<'a> {
        let tmp = CString::new("/tmp").unwrap();
        // SAFETY: a valid path. Our kernel's root may lack /tmp: make it like Linux's.
        if unsafe { libc::mkdir(tmp.as_ptr(), 0o1777) } == 0 {
            // SAFETY: a valid path; mkdir applied the umask, chmod sets the sticky bit too.
            ctx.check(unsafe { libc::chmod(tmp.as_ptr(), 0o1777) }, "chmod /tmp");
        } else if Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
            ctx.fail("mkdir /tmp");
        }
        let path = tmp_path();
        // SAFETY: a valid path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600) };
        let file = TmpFile { ctx, fd: ctx.check(fd, "open of the scratch file") as i32 };
        let buf = vec![0x5au8; MIB];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len());
            // SAFETY: `buf` holds at least `n` readable bytes; `fd` is our own.
            let w = ctx.check(unsafe { libc::write(fd, buf.as_ptr().cast(), n) } as i64, "write of the scratch file");
            if w == 0 {
                ctx.fail_with("write of the scratch file", "wrote 0 bytes");
            }
            done += w as usize;
        }
        file
    }
}

impl Drop for TmpFile<'_> {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        self.ctx.check(unsafe { libc::close(self.fd) }, "close of the scratch file");
        // SAFETY: a valid path.
        self.ctx.check(unsafe { libc::unlink(tmp_path().as_ptr()) }, "unlink of the scratch file");
    }
}

/// Write faults on fresh pages of a `MAP_SHARED` or `MAP_PRIVATE` anonymous 16 MiB region;
/// an iteration maps the region (untimed), writes one byte per page (timed) and unmaps it
/// (untimed). ops = pages.
fn anon_fault_common(ctx: &Ctx, shared: bool) {
    const LEN: usize = 16 * MIB;
    ctx.measure(|iters| {
        let mut ns = 0;
        for _ in 0..iters {
            let p = ctx.map_anon(LEN, shared, "mmap 16 MiB");
            ns += timed(|| touch_write(p, LEN)).1;
            ctx.unmap(p, LEN, "munmap 16 MiB");
        }
        (iters * (LEN / PAGE) as u64, ns)
    });
}

fn anon_fault(ctx: &Ctx) {
    anon_fault_common(ctx, false);
}

fn shared_anon_fault(ctx: &Ctx) {
    anon_fault_common(ctx, true);
}

/// An iteration makes a 16 MiB SysV segment, attaches it, writes one byte per page,
/// detaches and removes it, all timed (the page faults of a fresh segment dominate).
/// ops = pages touched.
fn sysv_shm_16m(ctx: &Ctx) {
    const LEN: usize = 16 * MIB;
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: plain arguments; the segment is this process's, removed below.
                let id = unsafe { libc::shmget(libc::IPC_PRIVATE, LEN, 0o600) };
                ctx.check(id, "shmget 16 MiB");
                // SAFETY: an attach where the kernel chooses.
                let p = unsafe { libc::shmat(id, std::ptr::null(), 0) };
                if p as isize == -1 {
                    ctx.fail("shmat");
                }
                touch_write(p.cast(), LEN);
                // SAFETY: the attach made above, no longer used.
                ctx.check(unsafe { libc::shmdt(p) }, "shmdt");
                // SAFETY: the segment made above.
                ctx.check(unsafe { libc::shmctl(id, libc::IPC_RMID, null_mut()) }, "shmctl IPC_RMID");
            }
        });
        (iters * (LEN / PAGE) as u64, ns)
    });
}

/// An iteration maps 4 KiB of private anonymous memory, writes one byte and unmaps it,
/// all timed. ops = iterations.
fn mmap_touch_munmap_4k(ctx: &Ctx) {
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                let p = ctx.map_anon(PAGE, false, "mmap 4 KiB");
                touch_write(p, PAGE);
                ctx.unmap(p, PAGE, "munmap 4 KiB");
            }
        });
        (iters, ns)
    });
}

/// VMAs made before `mmap_munmap_60k` is timed (below `vm.max_map_count`, 65530).
const CROWD: usize = 60_000;

/// 60,000 one-page private anonymous mappings are made first (untimed, shared by the runs;
/// protections alternate so that no two merge); an iteration maps 4 KiB of private
/// anonymous memory and unmaps it, timed: the cost of finding a free range, inserting and
/// removing a VMA among many (Linux: the maple tree). ops = iterations.
fn mmap_munmap_60k(ctx: &Ctx) {
    let crowd: Vec<*mut u8> = (0..CROWD)
        .map(|i| {
            let prot = if i % 2 == 0 { libc::PROT_READ } else { libc::PROT_NONE };
            ctx.map(null_mut(), PAGE, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, "mmap of the crowd")
        })
        .collect();
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                let p = ctx.map_anon(PAGE, false, "mmap 4 KiB");
                ctx.unmap(p, PAGE, "munmap 4 KiB");
            }
        });
        (iters, ns)
    });
    for p in crowd.into_iter().rev() {
        ctx.unmap(p, PAGE, "munmap of the crowd");
    }
}

/// An iteration forks a child that `_exit(0)`s and waits for it. ops = iterations.
fn fork_exit_wait(ctx: &Ctx) {
    ctx.measure(|iters| (iters, timed(|| (0..iters).for_each(|_| ctx.fork_wait())).1));
}

/// Like `fork_exit_wait`, with 256 MiB of private anonymous memory written beforehand
/// (once, untimed, shared by the runs), so that fork copies and exit tears down its page
/// tables. ops = iterations.
fn fork_exit_wait_256m(ctx: &Ctx) {
    const LEN: usize = 256 * MIB;
    let p = ctx.map_anon(LEN, false, "mmap 256 MiB");
    touch_write(p, LEN);
    ctx.measure(|iters| (iters, timed(|| (0..iters).for_each(|_| ctx.fork_wait())).1));
    ctx.unmap(p, LEN, "munmap 256 MiB");
}

/// Like `fork_exit_wait`, with 16 GiB of private anonymous memory mapped MAP_NORESERVE
/// and one page of it written: fork and exit must cost what is mapped, not the length of
/// the address space (a walk that visits every 4 KiB of it would take seconds).
/// ops = iterations.
fn fork_exit_wait_16g(ctx: &Ctx) {
    const LEN: usize = 16 << 30;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let p = ctx.map(null_mut(), LEN, libc::PROT_READ | libc::PROT_WRITE, flags, -1, "mmap 16 GiB");
    touch_write(p, PAGE);
    ctx.measure(|iters| (iters, timed(|| (0..iters).for_each(|_| ctx.fork_wait())).1));
    ctx.unmap(p, LEN, "munmap 16 GiB");
}

/// Read faults on a 16 MiB tmpfs file whose pages are all in the page cache (written once,
/// untimed, shared by the runs). An iteration maps the file PROT_READ/MAP_SHARED
/// (untimed), reads one byte per page (timed: only the reads, not mmap or munmap) and
/// unmaps it (untimed). ops = pages.
fn file_read_fault(ctx: &Ctx) {
    const LEN: usize = 16 * MIB;
    let file = TmpFile::create(ctx, LEN);
    ctx.measure(|iters| {
        let mut ns = 0;
        for _ in 0..iters {
            let p = ctx.map(null_mut(), LEN, libc::PROT_READ, libc::MAP_SHARED, file.fd, "mmap of the file");
            let (sum, t) = timed(|| touch_read(p, LEN));
            ns += t;
            if sum != 0x5a * (LEN / PAGE) as u64 {
                ctx.fail_with("read of the mapped file", &format!("byte sum {sum:#x}, wrong contents"));
            }
            ctx.unmap(p, LEN, "munmap of the file");
        }
        (iters * (LEN / PAGE) as u64, ns)
    });
    drop(file);
}

/// A 1 MiB private anonymous region, written once (untimed); an iteration mprotects it
/// PROT_READ, then PROT_READ|PROT_WRITE. ops = mprotect calls (2 per iteration).
fn mprotect_1m(ctx: &Ctx) {
    const LEN: usize = MIB;
    let p = ctx.map_anon(LEN, false, "mmap 1 MiB");
    touch_write(p, LEN);
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: our own mapping; nothing touches it while it is read-only.
                ctx.check(unsafe { libc::mprotect(p.cast(), LEN, libc::PROT_READ) }, "mprotect PROT_READ");
                // SAFETY: as above.
                let rw = unsafe { libc::mprotect(p.cast(), LEN, libc::PROT_READ | libc::PROT_WRITE) };
                ctx.check(rw, "mprotect PROT_READ|PROT_WRITE");
            }
        });
        (2 * iters, ns)
    });
    ctx.unmap(p, LEN, "munmap 1 MiB");
}

/// An iteration maps 256 MiB of private anonymous memory and writes every page
/// (untimed), then unmaps it (timed). ops = munmap calls.
fn munmap_256m(ctx: &Ctx) {
    const LEN: usize = 256 * MIB;
    ctx.measure(|iters| {
        let mut ns = 0;
        for _ in 0..iters {
            let p = ctx.map_anon(LEN, false, "mmap 256 MiB");
            touch_write(p, LEN);
            ns += timed(|| ctx.unmap(p, LEN, "munmap 256 MiB")).1;
        }
        (iters, ns)
    });
}

/// Moves 64 MiB of written private anonymous memory back and forth between two 2 MiB
/// aligned places A and B with mremap(MREMAP_MAYMOVE|MREMAP_FIXED); aligned so that the
/// result does not depend on where mmap happens to place them (Linux moves whole
/// page-table pages when source and destination are aligned alike). The region is
/// written once (untimed); B is reserved with a PROT_NONE mapping, which the first move
/// replaces. An iteration moves A to B and B back to A; after each run B is reserved again
/// (untimed) so that nothing else is mapped there. ops = mremap calls (2 per iteration).
fn mremap_64m(ctx: &Ctx) {
    const LEN: usize = 64 * MIB;
    const ALIGN: usize = 2 * MIB;
    let reserve_len = 2 * LEN + ALIGN;
    let r =
        ctx.map(null_mut(), reserve_len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, "mmap reserve");
    let a = (r as usize).next_multiple_of(ALIGN) as *mut u8;
    // SAFETY: `a` and `b` lie within the reservation of 2 * LEN + ALIGN bytes.
    let (b, end) = unsafe { (a.add(LEN), r.add(reserve_len)) };
    if a != r {
        ctx.unmap(r, a as usize - r as usize, "munmap of the reserve head");
    }
    // SAFETY: as above.
    let tail = unsafe { b.add(LEN) };
    if tail != end {
        ctx.unmap(tail, end as usize - tail as usize, "munmap of the reserve tail");
    }
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let fixed = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
    ctx.map(a, LEN, rw, fixed, -1, "mmap 64 MiB at A");
    touch_write(a, LEN);
    let mremap = |from: *mut u8, to: *mut u8, what: &str| {
        let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
        // SAFETY: `from` is our mapping of LEN bytes, `to` our own reserved (or vacated)
        // range of LEN bytes, which MREMAP_FIXED replaces.
        let q = unsafe { libc::mremap(from.cast(), LEN, LEN, flags, to) };
        if q == libc::MAP_FAILED {
            ctx.fail(what);
        }
        if q.cast() != to {
            ctx.fail_with(what, &format!("moved to {q:p}, not {to:p}"));
        }
    };
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                mremap(a, b, "mremap A to B");
                mremap(b, a, "mremap B to A");
            }
        });
        ctx.map(b, LEN, libc::PROT_NONE, fixed, -1, "mmap PROT_NONE at B");
        (2 * iters, ns)
    });
    if touch_read(a, LEN) != (LEN / PAGE) as u64 {
        ctx.fail_with("read after the moves", "wrong contents");
    }
    ctx.unmap(a, 2 * LEN, "munmap of A and B");
}

/// An iteration makes a memfd, sizes it to 64 KiB with ftruncate, maps it shared, writes
/// one byte, unmaps it and closes it (the file and its page go), all timed. ops =
/// iterations.
fn memfd_create_mmap_close(ctx: &Ctx) {
    const LEN: usize = 64 << 10;
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: a NUL-terminated name; the descriptor is ours.
                let fd =
                    ctx.check(unsafe { libc::memfd_create(c"vm_micro".as_ptr(), libc::MFD_CLOEXEC) }, "memfd_create");
                let fd = fd as i32;
                // SAFETY: plain system calls on our own descriptor.
                ctx.check(unsafe { libc::ftruncate(fd, LEN as i64) }, "ftruncate 64 KiB");
                let p =
                    ctx.map(null_mut(), LEN, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, "mmap memfd");
                touch_write(p, PAGE);
                ctx.unmap(p, LEN, "munmap memfd");
                // SAFETY: as above.
                ctx.check(unsafe { libc::close(fd) }, "close memfd");
            }
        });
        (iters, ns)
    });
}

/// A 1 MiB tmpfs file, written once (untimed); an iteration pwrites 1 MiB at offset 0,
/// overwriting pages already in the page cache. ops = writes.
fn tmpfs_write_1m(ctx: &Ctx) {
    let file = TmpFile::create(ctx, MIB);
    let buf = vec![0xa5u8; MIB];
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: `buf` holds MIB readable bytes; the descriptor is ours.
                let n = unsafe { libc::pwrite(file.fd, buf.as_ptr().cast(), MIB, 0) };
                if ctx.check(n as i64, "pwrite 1 MiB") != MIB as i64 {
                    ctx.fail_with("pwrite 1 MiB", &format!("short write of {n} bytes"));
                }
            }
        });
        (iters, ns)
    });
    drop(file);
}

/// A 1 MiB tmpfs file, written once (untimed); an iteration preads 1 MiB at offset 0.
/// ops = reads.
fn tmpfs_read_1m(ctx: &Ctx) {
    let file = TmpFile::create(ctx, MIB);
    let mut buf = vec![0u8; MIB];
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: `buf` holds MIB writable bytes; the descriptor is ours.
                let n = unsafe { libc::pread(file.fd, buf.as_mut_ptr().cast(), MIB, 0) };
                if ctx.check(n as i64, "pread 1 MiB") != MIB as i64 {
                    ctx.fail_with("pread 1 MiB", &format!("short read of {n} bytes"));
                }
            }
        });
        (iters, ns)
    });
    if buf.iter().any(|&b| b != 0x5a) {
        ctx.fail_with("pread 1 MiB", "wrong contents");
    }
    drop(file);
}

/// A child (forked once, untimed, serving all runs) echoes bytes from one pipe into
/// another; an iteration writes one byte to it and reads it back. ops = round trips.
fn pipe_pingpong(ctx: &Ctx) {
    let (pid, tx, rx) = pipe_echo_child(ctx, false);
    pingpong(ctx, pid, tx, rx, None);
}

/// Two pipes and a forked child echoing every byte from the first into the second, asleep
/// in `epoll_wait` on its pipe before each read when `epoll`; returns the child and the
/// parent's ends (to the child, from the child).
fn pipe_echo_child(ctx: &Ctx, epoll: bool) -> (libc::pid_t, i32, i32) {
    let (mut to_child, mut to_parent) = ([0i32; 2], [0i32; 2]);
    // SAFETY: the arrays are valid for two descriptors each.
    ctx.check(unsafe { libc::pipe(to_child.as_mut_ptr()) }, "pipe");
    // SAFETY: as above.
    ctx.check(unsafe { libc::pipe(to_parent.as_mut_ptr()) }, "pipe");
    // SAFETY: the process is single-threaded; the child runs `echo` and exits.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        ctx.fail("fork");
    }
    if pid == 0 {
        // SAFETY: the child's copies of the ends it does not use.
        unsafe {
            libc::close(to_child[1]);
            libc::close(to_parent[0]);
        }
        let ep = epoll.then(|| epoll_for(ctx, to_child[0]));
        echo(ctx, to_child[0], to_parent[1], ep);
    }
    // SAFETY: the parent's copies of the ends it does not use.
    unsafe {
        libc::close(to_child[0]);
        libc::close(to_parent[1]);
    }
    (pid, to_child[1], to_parent[0])
}

/// The parent's side of a ping-pong with child `pid`: an iteration writes a byte to `tx`
/// and reads the child's answer from `rx`, first sleeping in `epoll_wait` on `epfd` if
/// given. ops = round trips. Closes its descriptors, which ends the child, and reaps it.
fn pingpong(ctx: &Ctx, pid: libc::pid_t, tx: i32, rx: i32, epfd: Option<i32>) {
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            let mut byte = 0u8;
            for _ in 0..iters {
                // SAFETY: `byte` is one valid byte to write; the descriptor is ours.
                if unsafe { libc::write(tx, (&raw const byte).cast(), 1) } != 1 {
                    ctx.fail("write to the child");
                }
                if let Some(ep) = epfd {
                    wait_readable(ctx, ep);
                }
                // SAFETY: `byte` is one valid byte to read into; the descriptor is ours.
                match unsafe { libc::read(rx, (&raw mut byte).cast(), 1) } {
                    1 => byte = byte.wrapping_add(1),
                    0 => ctx.fail_with("read from the child", "end of file: the child is gone"),
                    _ => ctx.fail("read from the child"),
                }
            }
        });
        (iters, ns)
    });
    // SAFETY: our own descriptors; closing the write end ends the child's loop.
    unsafe {
        libc::close(tx);
        if rx != tx {
            libc::close(rx);
        }
        if let Some(ep) = epfd {
            libc::close(ep);
        }
    }
    ctx.wait_child(pid);
}

/// An epoll instance watching `fd` for input (level-triggered).
fn epoll_for(ctx: &Ctx, fd: i32) -> i32 {
    // SAFETY: plain arguments.
    let ep = ctx.check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }, "epoll_create1") as i32;
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
    // SAFETY: `ev` is a valid event for the call.
    ctx.check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }, "epoll_ctl");
    ep
}

/// Sleeps in `epoll_wait` on `ep` until its one file is readable.
fn wait_readable(ctx: &Ctx, ep: i32) {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    loop {
        // SAFETY: room for one event.
        match unsafe { libc::epoll_wait(ep, &mut ev, 1, -1) } {
            1 => return,
            -1 if Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => ctx.fail("epoll_wait"),
        }
    }
}

/// As `pipe_pingpong` over an AF_UNIX stream socket pair (lmbench's lat_unix).
/// ops = round trips.
fn unix_stream_pingpong(ctx: &Ctx) {
    let mut sv = [0i32; 2];
    // SAFETY: the array is valid for two descriptors.
    ctx.check(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) }, "socketpair");
    // SAFETY: the process is single-threaded; the child runs `echo` and exits.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        ctx.fail("fork");
    }
    if pid == 0 {
        // SAFETY: the child's copy of the parent's end.
        unsafe { libc::close(sv[0]) };
        echo(ctx, sv[1], sv[1], None);
    }
    // SAFETY: the parent's copy of the child's end.
    unsafe { libc::close(sv[1]) };
    pingpong(ctx, pid, sv[0], sv[0], None);
}

/// As `pipe_pingpong`, but each side sleeps in `epoll_wait` until its pipe is readable
/// before it reads: two epoll wake-ups per round trip (will-it-scale's epoll tests measure
/// the calls, this the wake-up). ops = round trips.
fn epoll_wakeup(ctx: &Ctx) {
    let (pid, tx, rx) = pipe_echo_child(ctx, true);
    let ep = epoll_for(ctx, rx);
    pingpong(ctx, pid, tx, rx, Some(ep));
}

/// fork, execve of `path` with no arguments but its name and an empty environment in the
/// child, waitpid for its exit status 0 (lmbench's lat_proc exec). ops = iterations.
fn exec_wait(ctx: &Ctx, path: &str) {
    let prog = CString::new(path).unwrap();
    let argv = [prog.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: the process is single-threaded; the child only execs or exits.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: NUL-terminated argument and environment arrays of valid strings.
                    unsafe {
                        libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
                        libc::_exit(127);
                    }
                }
                if pid == -1 {
                    ctx.fail("fork");
                }
                let mut status = 0;
                // SAFETY: `status` is a valid int.
                if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
                    ctx.fail("waitpid");
                }
                if status != 0 {
                    ctx.fail_with(&format!("running {path}"), &format!("wait status {status:#x}"));
                }
            }
        });
        (iters, ns)
    });
}

/// Process start of a static `true`. ops = processes started and reaped.
fn exec_true_static(ctx: &Ctx) {
    exec_wait(ctx, TRUE_STATIC);
}

/// Process start of Debian's `true`, which glibc's loader links first (ld.so, libc.so.6).
/// ops = processes started and reaped.
fn exec_true_dynamic(ctx: &Ctx) {
    exec_wait(ctx, TRUE_DYNAMIC);
}

/// clock_gettime(CLOCK_MONOTONIC) through musl, which calls the vDSO's when the kernel
/// gives one (AT_SYSINFO_EHDR) and the system call otherwise. ops = calls.
fn clock_gettime_libc(ctx: &Ctx) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: `ts` is a valid timespec.
                if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
                    ctx.fail("clock_gettime");
                }
            }
        });
        (iters, ns)
    });
}

/// getppid as a system call: entry, dispatch and the return path's work checks, nothing
/// else (lmbench's lat_syscall null). ops = calls.
fn null_syscall(ctx: &Ctx) {
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: getppid takes no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
        });
        (iters, ns)
    });
}

/// clock_gettime(CLOCK_MONOTONIC) as a system call, never the vDSO. ops = calls.
fn clock_gettime_syscall(ctx: &Ctx) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                // SAFETY: `ts` is a valid timespec.
                if unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
                    ctx.fail("clock_gettime");
                }
            }
        });
        (iters, ns)
    });
}

/// The child of a ping-pong: echoes every byte until end of file, then `_exit(0)`; with
/// `epfd`, it first sleeps in `epoll_wait` until `rx` is readable. On a failure it reports
/// and `_exit(1)`s (the parent then fails too).
fn echo(ctx: &Ctx, rx: i32, tx: i32, epfd: Option<i32>) -> ! {
    let mut byte = 0u8;
    loop {
        if let Some(ep) = epfd {
            wait_readable(ctx, ep);
        }
        // SAFETY: `byte` is one valid byte to read into; the descriptor is ours.
        let r = unsafe { libc::read(rx, (&raw mut byte).cast(), 1) };
        if r == 0 {
            // SAFETY: leave without running the parent's handlers.
            unsafe { libc::_exit(0) };
        }
        // SAFETY: `byte` is one valid byte to write from; the descriptor is ours.
        if r != 1 || unsafe { libc::write(tx, (&raw const byte).cast(), 1) } != 1 {
            eprintln!("vm_micro: {}: child's pipe read or write: {}", ctx.name, Error::last_os_error());
            // SAFETY: leave without running the parent's handlers.
            unsafe { libc::_exit(1) };
        }
    }
}

/// `semop` on one semaphore of a set of two, with `op` (+1 or -1).
fn semop1(id: i32, num: u16, op: i16) -> i32 {
    let mut b = libc::sembuf { sem_num: num, sem_op: op, sem_flg: 0 };
    // SAFETY: one valid sembuf.
    unsafe { libc::semop(id, &mut b, 1) }
}

/// As `pipe_pingpong` over a SysV semaphore set of two (lmbench's lat_sem): an iteration
/// raises semaphore 0, which the child takes to raise semaphore 1, which the parent takes.
/// ops = round trips. Removing the set ends the child (EIDRM).
fn semop_pingpong(ctx: &Ctx) {
    // SAFETY: plain arguments.
    let id = ctx.check(unsafe { libc::semget(libc::IPC_PRIVATE, 2, 0o600) }, "semget") as i32;
    // SAFETY: the process is single-threaded; the child loops and exits.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        ctx.fail("fork");
    }
    if pid == 0 {
        loop {
            if semop1(id, 0, -1) != 0 || semop1(id, 1, 1) != 0 {
                let gone = Error::last_os_error().raw_os_error() == Some(libc::EIDRM);
                if !gone {
                    eprintln!("vm_micro: {}: child's semop: {}", ctx.name, Error::last_os_error());
                }
                // SAFETY: leave without running the parent's handlers.
                unsafe { libc::_exit(if gone { 0 } else { 1 }) };
            }
        }
    }
    ctx.measure(|iters| {
        let ((), ns) = timed(|| {
            for _ in 0..iters {
                if semop1(id, 0, 1) != 0 || semop1(id, 1, -1) != 0 {
                    ctx.fail("semop");
                }
            }
        });
        (iters, ns)
    });
    // SAFETY: our own set; the child's next semop fails with EIDRM.
    ctx.check(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }, "semctl IPC_RMID");
    ctx.wait_child(pid);
}

fn usage(msg: &str) -> ! {
    eprintln!("vm_micro: {msg}");
    eprintln!("usage: vm_micro [--quick] [--runs K] [--only NAME[,NAME...]]");
    let names: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
    eprintln!("benchmarks: {}", names.join(" "));
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => {}
            "--runs" | "--only" => i += 1,
            other => usage(&format!("unknown argument {other:?}")),
        }
        i += 1;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs = match arg_value(&args, "--runs") {
        Some(k) => k.parse::<u32>().ok().filter(|&k| k > 0).unwrap_or_else(|| usage("--runs needs a positive count")),
        None if args.iter().any(|a| a == "--runs") => usage("--runs needs a value"),
        None => 3,
    };
    let only: Option<Vec<String>> = match arg_value(&args, "--only") {
        Some(list) => Some(list.split(',').map(str::to_string).collect()),
        None if args.iter().any(|a| a == "--only") => usage("--only needs a value"),
        None => None,
    };
    if let Some(names) = &only {
        for n in names {
            if !BENCHES.iter().any(|b| b.name == n) {
                usage(&format!("no benchmark {n:?}"));
            }
        }
    }
    emit("vm_micro_info", &[("kernel", &kernel_release()), ("quick", &u8::from(quick)), ("runs", &runs)]);
    for b in BENCHES {
        if only.as_ref().is_some_and(|names| !names.iter().any(|n| n == b.name)) {
            continue;
        }
        let ctx = Ctx { name: b.name, iters: if quick { b.quick_iters } else { b.iters }, runs };
        (b.run)(&ctx);
    }
}
