//! `will_it_scale`: the scalability tests of will-it-scale (Anton Blanchard's harness,
//! `main.c` and `tests/*.c`) that exercise the memory manager and futexes: T tasks run the
//! same loop at once, each on its own memory, as threads of one process (one mm: they
//! contend on its mmap_lock and page-table lock, and every unmap must shoot down the other
//! CPUs' TLBs) or as separate processes (nothing shared but the kernel). The same static
//! binary runs on our kernel and on Linux; the runner (`qemu/src/bench.rs`, plan group
//! `scale`) boots each kernel with as many CPUs as tasks.
//!
//! ```text
//! will_it_scale --test NAME --mode threads|processes --tasks T
//!               [--seconds S] [--warmup S] [--runs K] [--size BYTES]
//! ```
//!
//! | test          | one op                                                     | will-it-scale |
//! |---------------|------------------------------------------------------------|---------------|
//! | `page_fault1` | a write fault on a page of the task's own 128 MiB of private anonymous memory; each pass maps it, writes every page and unmaps it | `page_fault1` |
//! | `page_fault2` | a write (copy-on-write) fault on a page of a MAP_PRIVATE mapping of the task's own sparse 128 MiB tmpfs file; each pass maps, writes every page, unmaps | `page_fault2` |
//! | `mmap1`       | mmap and munmap of 128 MiB of private anonymous memory, untouched | `mmap1`  |
//! | `mmap2`       | mmap (MAP_PRIVATE) and munmap of the task's own 128 MiB tmpfs file, untouched | `mmap2` |
//! | `futex1`      | FUTEX_WAKE on a futex word nobody waits on                  | `futex1`      |
//! | `futex2`      | FUTEX_WAIT on a futex word whose value differs (EAGAIN at once) | `futex2`  |
//! | `spin1`       | `SPIN_CHUNK` steps of arithmetic in user mode, no system call: T tasks on T CPUs each keep the rate of one alone if the scheduler spreads them | (none) |
//!
//! As in will-it-scale, the futex operations are the shared (not FUTEX_PRIVATE_FLAG)
//! kind, and every task counts its operations in a slot of its own (a cache line of a
//! MAP_SHARED area) which the parent samples: the parent waits until every task has done
//! its set-up, lets them run `--warmup` seconds (default half a window), then measures K
//! windows (`--runs`, default 3) of `--seconds` (default 1) each and stops them. `--size`
//! (default 128M) shrinks the region, for quick runs.
//!
//! Around each window the parent also reads what the kernel counted: the minor faults of
//! the tasks (`/proc/PID/stat` field 10: the process for threads, each child for
//! processes) and the inter-processor interrupts in `/proc/interrupts`, Linux's rows
//! `RES` (rescheduling), `CAL` (function calls; on Linux 6.1 every TLB-shootdown IPI is
//! one of these too) and `TLB` (remote TLB flushes done), each summed over the CPUs. A
//! kernel without the file or a row reports `n/a` for it: nothing is estimated.
//!
//! Output: one line per window,
//!
//! ```text
//! @bench will_it_scale test=NAME mode=MODE tasks=T cpus=ONLINE run=I ops=N ns=WINDOW_NS
//!     ops_per_s=X per_task_min=X per_task_max=X faults=N|n/a ipi_resched=N|n/a
//!     ipi_call=N|n/a ipi_tlb=N|n/a
//! ```
//!
//! (on one line), where `ops` is the sum over the tasks, `ops_per_s` = ops / window, and
//! `per_task_min`/`per_task_max` the slowest and fastest task's ops/s. A failed system call
//! prints `will_it_scale: TEST: WHAT: ERROR` on stderr and exits with status 1; bad
//! arguments exit with status 2.

use benches::{arg_value, emit, irq_row_sums, now_ns, parse_size};
use std::ffi::CString;
use std::io::Error;
use std::ptr::{null_mut, write_volatile};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

const PAGE: usize = 4096;

/// The tests, in the order the runner plans them.
const TESTS: [&str; 7] = ["page_fault1", "page_fault2", "mmap1", "mmap2", "futex1", "futex2", "spin1"];
/// Steps of `spin1`'s one operation: about a microsecond of arithmetic.
const SPIN_CHUNK: u64 = 1000;

/// One task's cache line in the shared area: its operation count and whether its set-up
/// is done.
#[repr(C, align(64))]
struct Slot {
    ops: AtomicU64,
    ready: AtomicU32,
}

/// The area the parent and the tasks share (MAP_SHARED, so that it is shared by forked
/// processes as well as by threads): a stop flag, then one slot per task.
#[repr(C, align(64))]
struct Shared {
    stop: AtomicU32,
}

struct Area {
    base: *mut u8,
    len: usize,
    tasks: usize,
}

// SAFETY: the area holds only atomics; every access goes through them.
unsafe impl Sync for Area {}

impl Area {
    fn new(tasks: usize) -> Area {
        let len = (tasks + 1) * 64;
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
        // SAFETY: a new anonymous mapping; zero-filled, which is a valid value of every
        // atomic in it.
        let p = unsafe { libc::mmap(null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            fail("harness", "mmap of the shared area");
        }
        Area { base: p.cast(), len, tasks }
    }

    fn shared(&self) -> &Shared {
        // SAFETY: the first cache line of the mapping, which lives as long as `self`.
        unsafe { &*self.base.cast::<Shared>() }
    }

    fn slot(&self, i: usize) -> &Slot {
        assert!(i < self.tasks);
        // SAFETY: slot i is the cache line after the header, within the mapping.
        unsafe { &*self.base.add((i + 1) * 64).cast::<Slot>() }
    }

    fn stopped(&self) -> bool {
        self.shared().stop.load(Ordering::Relaxed) != 0
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: our own mapping; every task has ended.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// Reports a failed system call (with errno) and exits with status 1.
fn fail(test: &str, what: &str) -> ! {
    let err = Error::last_os_error();
    fail_with(test, what, &err.to_string())
}

fn fail_with(test: &str, what: &str, detail: &str) -> ! {
    eprintln!("will_it_scale: {test}: {what}: {detail}");
    std::process::exit(1);
}

/// What a task needs: the test, the region size and its slot.
struct TaskCtx<'a> {
    test: &'static str,
    size: usize,
    area: &'a Area,
    index: usize,
}

impl TaskCtx<'_> {
    fn map(&self, prot: i32, flags: i32, fd: i32) -> *mut u8 {
        // SAFETY: a new mapping of our own.
        let p = unsafe { libc::mmap(null_mut(), self.size, prot, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            fail(self.test, "mmap");
        }
        p.cast()
    }

    fn unmap(&self, p: *mut u8) {
        // SAFETY: a mapping of `size` bytes made by `map`, no longer used.
        if unsafe { libc::munmap(p.cast(), self.size) } != 0 {
            fail(self.test, "munmap");
        }
    }

    /// The task's own sparse file of `size` bytes in /tmp (a tmpfs on both kernels),
    /// unlinked at once as will-it-scale does: nothing stays behind however the run ends.
    fn scratch_file(&self) -> i32 {
        // SAFETY: getpid has no memory effects.
        let path = format!("/tmp/will_it_scale.{}.{}", unsafe { libc::getpid() }, self.index);
        let c = CString::new(path).unwrap();
        // SAFETY: a valid path.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600) };
        if fd < 0 {
            fail(self.test, "open of the scratch file");
        }
        // SAFETY: a valid path; the descriptor keeps the file.
        unsafe { libc::unlink(c.as_ptr()) };
        // SAFETY: our own descriptor.
        if unsafe { libc::ftruncate(fd, self.size as i64) } != 0 {
            fail(self.test, "ftruncate of the scratch file");
        }
        fd
    }

    /// Runs the test's loop until the parent says stop, counting in the task's slot.
    fn run(&self) {
        let slot = self.area.slot(self.index);
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let fd = if matches!(self.test, "page_fault2" | "mmap2") { self.scratch_file() } else { -1 };
        let futex_word = AtomicU32::new(0);
        slot.ready.store(1, Ordering::Release);
        let mut n = 0u64;
        while !self.area.stopped() {
            match self.test {
                "page_fault1" | "page_fault2" => {
                    let flags = if fd < 0 { libc::MAP_PRIVATE | libc::MAP_ANONYMOUS } else { libc::MAP_PRIVATE };
                    let p = self.map(rw, flags, fd);
                    for off in (0..self.size).step_by(PAGE) {
                        // SAFETY: `p` maps `size` writable bytes.
                        unsafe { write_volatile(p.add(off), 0) };
                        n += 1;
                        slot.ops.store(n, Ordering::Relaxed);
                        if self.area.stopped() {
                            break;
                        }
                    }
                    self.unmap(p);
                }
                "mmap1" | "mmap2" => {
                    let flags = if fd < 0 { libc::MAP_PRIVATE | libc::MAP_ANONYMOUS } else { libc::MAP_PRIVATE };
                    let p = self.map(rw, flags, fd);
                    self.unmap(p);
                    n += 1;
                    slot.ops.store(n, Ordering::Relaxed);
                }
                "futex1" => {
                    // SAFETY: a valid futex word of ours; no timeout or second word.
                    let r = unsafe {
                        libc::syscall(libc::SYS_futex, futex_word.as_ptr(), libc::FUTEX_WAKE, 1, 0usize, 0usize, 0)
                    };
                    if r != 0 {
                        fail_with(self.test, "FUTEX_WAKE", &format!("returned {r}: {}", Error::last_os_error()));
                    }
                    n += 1;
                    slot.ops.store(n, Ordering::Relaxed);
                }
                "futex2" => {
                    // SAFETY: as above; the word holds 0, not 1, so the call returns at once.
                    let r = unsafe {
                        libc::syscall(libc::SYS_futex, futex_word.as_ptr(), libc::FUTEX_WAIT, 1, 0usize, 0usize, 0)
                    };
                    if r != -1 || Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
                        fail_with(self.test, "FUTEX_WAIT", &format!("returned {r}: {}", Error::last_os_error()));
                    }
                    n += 1;
                    slot.ops.store(n, Ordering::Relaxed);
                }
                "spin1" => {
                    let mut x = n;
                    for _ in 0..SPIN_CHUNK {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                    std::hint::black_box(x);
                    n += 1;
                    slot.ops.store(n, Ordering::Relaxed);
                }
                other => fail_with(other, "test", "unknown"),
            }
        }
        if fd >= 0 {
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
        }
    }
}

/// Minor faults of a process, field 10 of `/proc/PID/stat` (counted for all its threads).
fn minflt(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &text[text.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(7)?.parse().ok()
}

/// What the parent reads at each end of a window.
struct Sample {
    ns: u64,
    ops: Vec<u64>,
    faults: Option<u64>,
    irqs: Option<std::collections::BTreeMap<String, u64>>,
}

/// Reads the counters. The tasks keep running while the kernel's files are read, so the
/// clock and the operation counts are read before and after them and averaged: the sample
/// is centred on the moment the kernel's counters were read, whatever the parent waited
/// for in between (a CPU, when the tasks hold them all).
fn sample(area: &Area, pids: &[String]) -> Sample {
    let ops = || (0..area.tasks).map(|i| area.slot(i).ops.load(Ordering::Relaxed)).collect::<Vec<_>>();
    let (t0, ops0) = (now_ns(), ops());
    let irqs = std::fs::read_to_string("/proc/interrupts").ok().map(|t| irq_row_sums(&t));
    let faults = pids.iter().map(|p| minflt(p)).sum::<Option<u64>>();
    let (ops1, t1) = (ops(), now_ns());
    let ops = ops0.iter().zip(&ops1).map(|(a, b)| (a + b) / 2).collect();
    Sample { ns: t0 + (t1 - t0) / 2, ops, faults, irqs }
}

/// `b - a` of an optional counter, or `n/a`.
fn delta(a: Option<u64>, b: Option<u64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => b.saturating_sub(a).to_string(),
        _ => "n/a".into(),
    }
}

fn report(test: &str, mode: &str, run: u32, a: &Sample, b: &Sample) {
    let ns = (b.ns - a.ns).max(1);
    let per_s = |ops: u64| ops as f64 * 1e9 / ns as f64;
    let per_task: Vec<u64> = a.ops.iter().zip(&b.ops).map(|(x, y)| y - x).collect();
    let ops: u64 = per_task.iter().sum();
    let min = per_task.iter().copied().min().unwrap_or(0);
    let max = per_task.iter().copied().max().unwrap_or(0);
    let row = |s: &Sample, k: &str| s.irqs.as_ref().and_then(|m| m.get(k).copied());
    let irq = |k: &str| delta(row(a, k), row(b, k));
    // SAFETY: sysconf has no memory effects.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    emit(
        "will_it_scale",
        &[
            ("test", &test),
            ("mode", &mode),
            ("tasks", &per_task.len()),
            ("cpus", &cpus),
            ("run", &run),
            ("ops", &ops),
            ("ns", &ns),
            ("ops_per_s", &format!("{:.1}", per_s(ops))),
            ("per_task_min", &format!("{:.1}", per_s(min))),
            ("per_task_max", &format!("{:.1}", per_s(max))),
            ("faults", &delta(a.faults, b.faults)),
            ("ipi_resched", &irq("RES")),
            ("ipi_call", &irq("CAL")),
            ("ipi_tlb", &irq("TLB")),
        ],
    );
}

/// Waits until every task is ready; in process mode a child that ends early (its set-up
/// failed) fails the run instead of leaving the parent waiting.
fn wait_ready(test: &str, area: &Area, children: &[libc::pid_t]) {
    let deadline = now_ns() + 120_000_000_000;
    while (0..area.tasks).any(|i| area.slot(i).ready.load(Ordering::Acquire) == 0) {
        for &pid in children {
            let mut status = 0;
            // SAFETY: our own child; `status` is a valid int to write.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                fail_with(test, "task", &format!("child {pid} ended during set-up, wait status {status:#x}"));
            }
        }
        if now_ns() > deadline {
            fail_with(test, "task", "set-up took over 120 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The parent's part: wait for the tasks, warm up, measure `runs` windows, stop them.
fn measure(test: &str, mode: &str, area: &Area, pids: &[String], children: &[libc::pid_t], o: &Opts) {
    wait_ready(test, area, children);
    std::thread::sleep(o.warmup);
    for run in 0..o.runs {
        let a = sample(area, pids);
        std::thread::sleep(o.window);
        let b = sample(area, pids);
        report(test, mode, run, &a, &b);
    }
    area.shared().stop.store(1, Ordering::Relaxed);
}

struct Opts {
    test: &'static str,
    mode: &'static str,
    tasks: usize,
    size: usize,
    window: Duration,
    warmup: Duration,
    runs: u32,
}

fn run_threads(o: &Opts) {
    let area = Area::new(o.tasks);
    std::thread::scope(|s| {
        for index in 0..o.tasks {
            let ctx = TaskCtx { test: o.test, size: o.size, area: &area, index };
            std::thread::Builder::new()
                .spawn_scoped(s, move || ctx.run())
                .unwrap_or_else(|e| fail_with(o.test, "thread spawn", &e.to_string()));
        }
        measure(o.test, o.mode, &area, &["self".to_string()], &[], o);
    });
}

fn run_processes(o: &Opts) {
    let area = Area::new(o.tasks);
    let mut children = Vec::new();
    for index in 0..o.tasks {
        // SAFETY: the process is single-threaded; the child runs its loop and `_exit`s.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => {
                area.shared().stop.store(1, Ordering::Relaxed);
                fail(o.test, "fork");
            }
            0 => {
                TaskCtx { test: o.test, size: o.size, area: &area, index }.run();
                // SAFETY: leave without running the parent's handlers.
                unsafe { libc::_exit(0) };
            }
            _ => children.push(pid),
        }
    }
    let pids: Vec<String> = children.iter().map(|p| p.to_string()).collect();
    measure(o.test, o.mode, &area, &pids, &children, o);
    for pid in children {
        let mut status = 0;
        // SAFETY: our own child; `status` is a valid int to write.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            fail(o.test, "waitpid");
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            fail_with(o.test, "child", &format!("wait status {status:#x}"));
        }
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("will_it_scale: {msg}");
    eprintln!(
        "usage: will_it_scale --test NAME --mode threads|processes --tasks T [--seconds S] [--warmup S] [--runs K] \
         [--size BYTES]"
    );
    eprintln!("tests: {}", TESTS.join(" "));
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    const VALUED: [&str; 7] = ["--test", "--mode", "--tasks", "--seconds", "--warmup", "--runs", "--size"];
    let mut i = 0;
    while i < args.len() {
        if !VALUED.contains(&args[i].as_str()) {
            usage(&format!("unknown argument {:?}", args[i]));
        }
        if i + 1 >= args.len() {
            usage(&format!("{} needs a value", args[i]));
        }
        i += 2;
    }
    let get = |k: &str| arg_value(&args, k);
    let test = get("--test")
        .and_then(|t| TESTS.iter().copied().find(|n| *n == t))
        .unwrap_or_else(|| usage("--test needs one of the tests"));
    let mode = match get("--mode").as_deref() {
        Some("threads") => "threads",
        Some("processes") => "processes",
        _ => usage("--mode must be threads or processes"),
    };
    let tasks = get("--tasks").and_then(|t| t.parse::<usize>().ok()).filter(|&t| (1..=256).contains(&t));
    let tasks = tasks.unwrap_or_else(|| usage("--tasks needs a count from 1 to 256"));
    let secs = |k: &str, default: f64| {
        get(k).map_or(Some(default), |v| v.parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0)
    };
    let window = secs("--seconds", 1.0).filter(|s| *s > 0.0).unwrap_or_else(|| usage("--seconds must be positive"));
    let warmup = secs("--warmup", window / 2.0).unwrap_or_else(|| usage("--warmup needs seconds"));
    let runs = get("--runs").map_or(Some(3), |v| v.parse::<u32>().ok()).filter(|&k| k > 0);
    let runs = runs.unwrap_or_else(|| usage("--runs needs a positive count"));
    let size = get("--size").map_or(Some(128 << 20), |v| parse_size(&v)).filter(|&s| s >= PAGE as u64);
    let size = (size.unwrap_or_else(|| usage("--size needs a size of a page or more")) as usize) / PAGE * PAGE;
    let o = Opts {
        test,
        mode,
        tasks,
        size,
        window: Duration::from_secs_f64(window),
        warmup: Duration::from_secs_f64(warmup),
        runs,
    };
    if mode == "threads" {
        run_threads(&o);
    } else {
        run_processes(&o);
    }
}
