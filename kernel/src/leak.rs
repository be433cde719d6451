//! Leak accounting: live-object counters and the check that every in-QEMU
//! suite ends with. Linux has no single counterpart: its slab counters
//! (`/proc/slabinfo`, `mm/slab_common.c`) count live objects per cache, and
//! kmemleak (`mm/kmemleak.c`) looks for unreferenced ones; `drop_caches`
//! (`fs/drop_caches.c`) and the shrinkers release what caches hold so that
//! the rest can be compared.
//!
//! Before init is created the kernel records a baseline: frames in use (page
//! cache aside), page-cache pages, heap bytes in use and every counter below. When init has
//! exited and every other process has been killed and reaped (`begin_shutdown`),
//! the idle loop removes the files and SysV IPC objects the tests left behind (both
//! outlive their creators, as on Linux), shrinks the
//! kernel's tables to their boot size, and compares again: each figure must
//! be back at its baseline. One line per resource
//! (`mshare-kernel: NAME at start X, now Y: no leak`), then a summary
//! (`mshare-kernel: leak check: N resources, no leak`) for the runner.
//!
//! A counted kind is one line in `counters!` plus a [`Live`] field in the
//! object (or `inc`/`dec` where it is created and freed).

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// A count of live objects of one kind.
pub struct Counter {
    pub name: &'static str,
    live: AtomicI64,
}

impl Counter {
    pub const fn new(name: &'static str) -> Counter {
        Counter { name, live: AtomicI64::new(0) }
    }
    pub fn inc(&self) {
        self.live.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n` (negative: takes away), for figures counted in bulk.
    pub fn add(&self, n: i64) {
        self.live.fetch_add(n, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.live.load(Ordering::Relaxed)
    }
    /// A token that counts one object of this kind while it exists.
    pub fn live(&'static self) -> Live {
        self.inc();
        Live(self)
    }
}

/// Held by a counted object: one in its counter from creation to drop (a
/// clone of the object is one more).
pub struct Live(&'static Counter);

impl Clone for Live {
    fn clone(&self) -> Live {
        self.0.live()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl core::fmt::Debug for Live {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0.name)
    }
}

macro_rules! counters {
    ($($id:ident: $name:literal),* $(,)?) => {
        $(pub static $id: Counter = Counter::new($name);)*
        const _: () = assert!([$($name),*].len() <= MAX_COUNTERS, "raise MAX_COUNTERS");
        /// Every counted kind, in the order the check prints them.
        pub static COUNTERS: &[&Counter] = &[$(&$id),*];
    };
}

counters! {
    FILES: "open files",
    INODES: "inodes",
    VMAS: "VMAs",
    PT_PAGES: "page-table pages",
    TASKS: "tasks",
    PROCESSES: "processes",
    COMMITTED: "committed pages",
    IPC_OBJECTS: "SysV IPC objects",
    IPC_NAMESPACES: "IPC namespaces",
    MSHARE_REGIONS: "mshare regions",
    PT_SHARE_HOSTS: "pt_share hosts",
    TTYS: "terminals",
    SOCKETS: "sockets",
    POSIX_TIMERS: "POSIX timers",
}

/// Tables that grow with use and keep their capacity (Linux's shrinkers):
/// each gives back what it holds beyond its boot size. Run before both
/// measurements, so the heap figures compare like with like.
const SHRINKERS: &[fn()] = &[
    crate::process::sched::shrink,
    crate::process::task::shrink,
    crate::process::itimer::shrink,
    crate::process::posix_timer::shrink,
    crate::process::futex::shrink,
    crate::process::sleep::shrink,
    crate::fs::file::shrink,
    crate::fs::flock::shrink,
    crate::fs::signalfd::shrink,
    crate::tty::shrink,
    crate::net::unix::shrink,
    crate::fs::msharefs::shrink,
    crate::fs::mount::shrink,
    crate::mm::pt_share::shrink,
];

/// The figures the check compares.
#[derive(Clone, Copy, Default)]
pub struct Snapshot {
    pub frames: u64,
    pub cache_pages: u64,
    pub heap_bytes: u64,
    pub counts: [i64; MAX_COUNTERS],
}

const MAX_COUNTERS: usize = 16;

impl Snapshot {
    pub fn take() -> Snapshot {
        for s in SHRINKERS {
            s();
        }
        let mut counts = [0; MAX_COUNTERS];
        for (c, k) in counts.iter_mut().zip(COUNTERS) {
            *c = k.get();
        }
        Snapshot {
            frames: crate::process::unowned_frames(),
            cache_pages: crate::mm::page_cache::SHMEM_PAGES.load(Ordering::Relaxed),
            heap_bytes: crate::mm::heap::stats().used_bytes,
            counts,
        }
    }

    /// (name, start, now) of every figure.
    pub fn compare(&self, now: &Snapshot) -> alloc::vec::Vec<(&'static str, i64, i64)> {
        let fixed = [
            ("frames in use (page cache aside)", self.frames as i64, now.frames as i64),
            ("page-cache pages", self.cache_pages as i64, now.cache_pages as i64),
            ("heap bytes in use", self.heap_bytes as i64, now.heap_bytes as i64),
        ];
        let counted = COUNTERS.iter().enumerate().map(|(i, c)| (c.name, self.counts[i], now.counts[i]));
        fixed.into_iter().chain(counted).collect()
    }

    /// The names of the figures that differ.
    pub fn leaks(&self, now: &Snapshot) -> alloc::vec::Vec<&'static str> {
        self.compare(now).into_iter().filter(|(_, a, b)| a != b).map(|(n, ..)| n).collect()
    }
}

static BASELINE: crate::sync::SpinLock<Option<Snapshot>, crate::sync::order::LeakBaseline> =
    crate::sync::SpinLock::new(None);

/// Records the starting figures (before init exists).
pub fn record_baseline() {
    crate::fs::tmpfs::mark_boot();
    let s = Snapshot::take();
    *BASELINE.lock() = Some(s);
}

/// Prints a line per resource and the summary; true if nothing leaked.
pub fn report(start: &Snapshot, now: &Snapshot) -> bool {
    let mut n = 0;
    let mut leaked = alloc::vec::Vec::new();
    for (name, a, b) in start.compare(now) {
        n += 1;
        if a == b {
            crate::println!("mshare-kernel: {} at start {}, now {}: no leak", name, a, b);
        } else {
            crate::println!("mshare-kernel: {} at start {}, now {}: LEAK of {}", name, a, b, b - a);
            leaked.push(name);
        }
    }
    if leaked.is_empty() {
        crate::println!("mshare-kernel: leak check: {} resources, no leak", n);
    } else {
        crate::println!("mshare-kernel: leak check: {} resources, LEAK in {}", n, leaked.join(", "));
    }
    leaked.is_empty()
}

/// Set when init has exited: the idle loop powers off once every task is gone.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);
/// When init exited (ns since boot).
static SHUTDOWN_SINCE: AtomicU64 = AtomicU64::new(0);

/// Init has exited: every other process is killed; once all are reaped the
/// idle loop runs the check and powers off (Linux's `zap_pid_ns_processes`
/// when a namespace's init exits).
pub fn begin_shutdown() {
    SHUTDOWN_SINCE.store(crate::arch::apic::uptime_ns(), Ordering::Relaxed);
    SHUTDOWN.store(true, Ordering::Release);
    crate::process::signal::kill_all_but_init();
}

/// Seconds the remaining tasks get to die after init's exit before the run fails.
const SHUTDOWN_GRACE_S: u64 = 30;

/// From the idle loop: once init has exited and no task is left, checks and
/// powers off.
pub fn idle_check() {
    if !SHUTDOWN.load(Ordering::Acquire) {
        return;
    }
    let (tasks, processes) = crate::process::task::live_counts();
    // The last task may have exited on another CPU that has not finished switching away
    // from it: its stack and structure go in that CPU's `schedule_tail`.
    let quiet = tasks == 0 && processes == 0 && crate::process::sched::all_cpus_quiet();
    if !quiet {
        let waited = crate::arch::apic::uptime_ns().saturating_sub(SHUTDOWN_SINCE.load(Ordering::Relaxed));
        if waited > SHUTDOWN_GRACE_S * 1_000_000_000 {
            crate::println!(
                "mshare-kernel: WATCHDOG: {} tasks in {} processes still alive (or a CPU not idle) {} s after init exited",
                tasks,
                processes,
                SHUTDOWN_GRACE_S
            );
            crate::syscall::dump_tasks();
            crate::power_off(false);
        }
        return;
    }
    crate::watchdog::print_margins();
    crate::mm::fail::report();
    let removed = crate::fs::mount::umount_all_since_boot();
    crate::println!(
        "mshare-kernel: unmounted {} mounts made since boot: init's and any the tests left behind",
        removed
    );
    let removed = crate::fs::tmpfs::remove_created_since_boot();
    crate::println!("mshare-kernel: removed {} files and directories the tests left behind", removed);
    let removed = crate::fs::msharefs::remove_all();
    crate::println!("mshare-kernel: removed {} mshare regions the tests left behind", removed);
    let removed = crate::ipc::remove_all_objects();
    crate::println!("mshare-kernel: removed {} SysV IPC objects the tests left behind", removed);
    let now = Snapshot::take();
    let start = BASELINE.lock().unwrap_or_default();
    let clean = report(&start, &now);
    if !clean {
        crate::syscall::dump_tasks();
    }
    crate::power_off(clean)
}

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![
    leak_check_names_a_leaked_file_vma_and_task,
    leak_check_is_clean_once_they_are_dropped,
    files_left_in_tmp_are_removed_at_shutdown_and_their_memory_returns,
];

/// A file, a VMA (and a split piece of it) and a task with its process, alive.
fn make_objects() -> (alloc::sync::Arc<crate::fs::file::File>, alloc::vec::Vec<crate::mm::vma::Vma>, KtestTask) {
    use crate::fs::file::{File, FileKind, O_RDONLY};
    let file = File::new(FileKind::Inode(crate::fs::root()), O_RDONLY, "/".into());
    let mut vma = crate::mm::vma::Vma {
        live: VMAS.live(),
        start: 0x1000_0000,
        end: 0x1000_2000,
        prot: crate::mm::vma::Prot::READ,
        flags: crate::mm::vma::VmFlags::MAYWRITE,
        pgoff: 0,
        backend: crate::mm::vma::Backend::Anonymous,
        ops: None,
    };
    let piece = vma.split_off(0x1000_1000);
    (file, alloc::vec![vma, piece], KtestTask::new())
}

/// A task and its process outside the run queue, taken out of the tables on drop.
struct KtestTask(alloc::sync::Arc<crate::process::task::Task>);

impl KtestTask {
    fn new() -> KtestTask {
        let t = crate::process::task::create_bare_task("").expect("no memory for a task");
        KtestTask(t)
    }
}

impl Drop for KtestTask {
    fn drop(&mut self) {
        let tid = self.0.tid();
        self.0.process.threads.lock().clear();
        let mut tables = crate::process::task::TABLES.lock();
        tables.tasks.remove(&tid);
        tables.processes.remove(&tid);
    }
}

fn leak_check_names_a_leaked_file_vma_and_task() {
    let before = Snapshot::take();
    let objects = make_objects();
    let now = Snapshot::take();
    let leaks = before.leaks(&now);
    for name in ["open files", "VMAs", "tasks", "processes", "page-table pages", "heap bytes in use"] {
        assert!(leaks.contains(&name), "{} not reported: {:?}", name, leaks);
    }
    let delta = |c: &Counter| {
        now.counts[COUNTERS.iter().position(|k| core::ptr::eq(*k, c)).unwrap()]
            - before.counts[COUNTERS.iter().position(|k| core::ptr::eq(*k, c)).unwrap()]
    };
    assert_eq!((delta(&FILES), delta(&VMAS), delta(&TASKS), delta(&PROCESSES)), (1, 2, 1, 1));
    drop(objects);
}

fn leak_check_is_clean_once_they_are_dropped() {
    let before = Snapshot::take();
    drop(make_objects());
    let now = Snapshot::take();
    assert_eq!(before.leaks(&now), alloc::vec::Vec::<&str>::new());
}

fn files_left_in_tmp_are_removed_at_shutdown_and_their_memory_returns() {
    use crate::fs::vfs::{S_IFDIR, S_IFREG};
    let before = Snapshot::take();
    crate::fs::tmpfs::mark_boot();
    let tmp = crate::fs::root().lookup("tmp").expect("no /tmp");
    let file = tmp.create("left-behind", S_IFREG | 0o644, 0, 0).expect("create");
    assert_eq!(file.write_at(0, &[7u8; 5000]), Ok(5000));
    let dir = tmp.create("left-behind-dir", S_IFDIR | 0o755, 0, 0).expect("mkdir");
    dir.create("inside", S_IFREG | 0o644, 0, 0).expect("create inside");
    drop((file, dir));
    let leaks = before.leaks(&Snapshot::take());
    for name in ["inodes", "page-cache pages", "heap bytes in use"] {
        assert!(leaks.contains(&name), "{} not reported: {:?}", name, leaks);
    }
    drop(leaks);
    assert_eq!(crate::fs::tmpfs::remove_created_since_boot(), 2);
    drop(tmp);
    assert_eq!(before.leaks(&Snapshot::take()), alloc::vec::Vec::<&str>::new());
}

/// Deliberate failure, run only by name: an open file is leaked after the
/// baseline and the end-of-run check, reached as at init's exit, must fail the run.
pub(crate) const FAULT_TESTS: &[crate::ktest::KTest] = crate::ktests![fault_leaked_file];

fn fault_leaked_file() {
    record_baseline();
    let file = crate::fs::file::File::new(
        crate::fs::file::FileKind::Inode(crate::fs::root()),
        crate::fs::file::O_RDONLY,
        "/".into(),
    );
    core::mem::forget(file);
    begin_shutdown();
    crate::process::sched::idle_loop()
}
