//! Allocation-failure injection (Linux's `lib/fault-inject.c` with its two
//! users `mm/fail_page_alloc.c` and `mm/failslab.c`): the command-line options
//! `fail_page_alloc=SPEC` (frame allocations) and `failslab=SPEC` (heap
//! allocations made through the fallible helpers below) make allocations fail
//! so that every error path runs.
//!
//! SPEC is `P%` (each allocation fails with probability P percent, `0.5%`
//! allowed) or `every:K` (every K-th allocation fails), followed by optional
//! comma-separated `seed=X` (the random sequence, so a run replays),
//! `after=N` (the first N allocations pass: Linux's `space`) and `times=N`
//! (at most N failures). Example: `fail_page_alloc=1%,seed=7 failslab=every:50`.
//!
//! Injection starts once init has been created (booting is never affected),
//! and, as Linux's OOM killer never picks init, allocations made by pid 1
//! (the test runner or the fuzz supervisor) are exempt: the run always reaches
//! its end and its power-off leak check, which prints the injected counts.
//! Allocations that cannot fail by design are exempt too, as Linux's
//! `__GFP_NOFAIL`: the heap's own growth and the kernel's page tables
//! (`frame::alloc_frames_nofail`).
//!
//! Heap injection applies only inside `fallible` (Rust's `Box`, `Vec` and
//! `Arc` abort on a failed allocation): `try_vec_with_capacity`, `try_reserve`
//! and `try_box` fail for real there, and `slab_may_fail` stands for an object
//! allocation that the code then makes infallibly (an `Arc`, a `BTreeMap`
//! node), the way `should_failslab` sits in front of `kmalloc`.

use crate::arch::percpu::MAX_CPUS;
use crate::errno::{KResult, ENOMEM};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// One injection point's configuration and counters (Linux's `struct fault_attr`).
pub struct FaultAttr {
    /// Failure probability in parts per million; 0 with `interval` 0: off.
    ppm: AtomicU32,
    /// Every `interval`-th call fails (0: not used).
    interval: AtomicU64,
    /// Calls to let through before injecting (Linux's `space`).
    after: AtomicU64,
    /// Failures still allowed (u64::MAX: no limit).
    times: AtomicU64,
    /// splitmix64 state.
    rng: AtomicU64,
    /// Calls seen while armed.
    calls: AtomicU64,
    /// Failures injected.
    injected: AtomicU64,
}

impl FaultAttr {
    const fn new() -> FaultAttr {
        FaultAttr {
            ppm: AtomicU32::new(0),
            interval: AtomicU64::new(0),
            after: AtomicU64::new(0),
            times: AtomicU64::new(u64::MAX),
            rng: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    fn configured(&self) -> bool {
        self.ppm.load(Ordering::Relaxed) != 0 || self.interval.load(Ordering::Relaxed) != 0
    }

    fn set(&self, s: &Spec) {
        self.ppm.store(s.ppm, Ordering::Relaxed);
        self.interval.store(s.interval, Ordering::Relaxed);
        self.after.store(s.after, Ordering::Relaxed);
        self.times.store(s.times, Ordering::Relaxed);
        self.rng.store(s.seed, Ordering::Relaxed);
        self.calls.store(0, Ordering::Relaxed);
    }

    fn get(&self) -> Spec {
        Spec {
            ppm: self.ppm.load(Ordering::Relaxed),
            interval: self.interval.load(Ordering::Relaxed),
            after: self.after.load(Ordering::Relaxed),
            times: self.times.load(Ordering::Relaxed),
            seed: self.rng.load(Ordering::Relaxed),
        }
    }

    /// Linux's `should_fail`: counts the call and decides.
    fn should_fail(&self) -> bool {
        if !self.configured() {
            return false;
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= self.after.load(Ordering::Relaxed) {
            return false;
        }
        let interval = self.interval.load(Ordering::Relaxed);
        let fail = if interval != 0 {
            (n - self.after.load(Ordering::Relaxed)) % interval == 0
        } else {
            let r = splitmix64(self.rng.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed).wrapping_add(GOLDEN_GAMMA));
            r % 1_000_000 < self.ppm.load(Ordering::Relaxed) as u64
        };
        if !fail {
            return false;
        }
        // `times` limits the failures; u64::MAX never runs out.
        let left = self.times.load(Ordering::Relaxed);
        if left == 0 {
            return false;
        }
        if left != u64::MAX {
            self.times.store(left - 1, Ordering::Relaxed);
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A parsed SPEC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub ppm: u32,
    pub interval: u64,
    pub after: u64,
    pub times: u64,
    pub seed: u64,
}

impl Spec {
    pub const OFF: Spec = Spec { ppm: 0, interval: 0, after: 0, times: u64::MAX, seed: 0 };

    /// Every `k`-th allocation fails, after letting `after` through.
    pub const fn every(k: u64, after: u64) -> Spec {
        Spec { ppm: 0, interval: k, after, times: u64::MAX, seed: 0 }
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `1%`, `0.25%` → parts per million (at most 100%).
fn parse_percent(s: &str) -> Option<u32> {
    let s = s.strip_suffix('%')?;
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 4 || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let i: u32 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: u32 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    for _ in frac.len()..4 {
        f *= 10;
    }
    let ppm = i.checked_mul(10_000)?.checked_add(f)?;
    (ppm <= 1_000_000).then_some(ppm)
}

/// Parses SPEC (see the module header); None if malformed.
pub fn parse_spec(spec: &str) -> Option<Spec> {
    let mut parts = spec.split(',');
    let rate = parts.next()?;
    let mut s = Spec::OFF;
    match rate.strip_prefix("every:") {
        Some(k) => s.interval = parse_u64(k).filter(|&k| k > 0)?,
        None => s.ppm = parse_percent(rate)?,
    }
    for p in parts {
        let (k, v) = p.split_once('=')?;
        let v = parse_u64(v)?;
        match k {
            "seed" => s.seed = v,
            "after" => s.after = v,
            "times" => s.times = v,
            _ => return None,
        }
    }
    Some(s)
}

/// Frame allocations (`frame::alloc_frames`).
pub static FAIL_PAGE_ALLOC: FaultAttr = FaultAttr::new();
/// Heap allocations inside `fallible`, and `slab_may_fail`.
pub static FAILSLAB: FaultAttr = FaultAttr::new();

/// Set once init exists and an option was given.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Per CPU: whether its running task may see injected failures (not pid 1, not the
/// idle loop); set at every context switch on that CPU.
static TASK_MAY_FAIL: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Per CPU: depth of its `fallible` scopes (which never sleep, so never change CPU); the
/// heap injects only inside one.
static FALLIBLE_DEPTH: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

fn task_may_fail() -> &'static AtomicBool {
    &TASK_MAY_FAIL[crate::arch::percpu::cpu_id()]
}

fn fallible_depth() -> &'static AtomicU32 {
    &FALLIBLE_DEPTH[crate::arch::percpu::cpu_id()]
}

/// Reads the options from the command line; complains about malformed ones.
pub fn init(cmdline: &str) {
    for (key, attr) in [("fail_page_alloc", &FAIL_PAGE_ALLOC), ("failslab", &FAILSLAB)] {
        if let Some(v) = crate::cmdline::get(cmdline, key) {
            match parse_spec(v) {
                Some(s) => {
                    attr.set(&s);
                    log::warn!("{}: injecting allocation failures ({}) once init runs", key, v);
                }
                None => crate::println!(
                    "mshare-kernel: bad {}={:?}: ignored (want P% or every:K[,seed=X,after=N,times=N])",
                    key,
                    v
                ),
            }
        }
    }
}

/// Starts injecting (called once init has been created).
pub fn arm() {
    if FAIL_PAGE_ALLOC.configured() || FAILSLAB.configured() {
        ARMED.store(true, Ordering::Relaxed);
    }
}

/// Called at every context switch with the task about to run on this CPU (None: idle).
pub fn switch_to_task(pid: Option<u32>) {
    task_may_fail().store(pid.is_some_and(|p| p != 1), Ordering::Relaxed);
}

fn active() -> bool {
    ARMED.load(Ordering::Relaxed) && task_may_fail().load(Ordering::Relaxed)
}

/// Linux's `should_fail_alloc_page`.
pub fn should_fail_alloc_page() -> bool {
    active() && FAIL_PAGE_ALLOC.should_fail()
}

/// Linux's `should_failslab`, for the heap: only inside `fallible`.
pub fn should_failslab() -> bool {
    fallible_depth().load(Ordering::Relaxed) != 0 && active() && FAILSLAB.should_fail()
}

/// Runs `f` (which must not sleep) with heap allocations allowed to fail:
/// inside, a failed allocation is an error the caller sees (`try_reserve`), so
/// injection may make it fail.
pub fn fallible<R>(f: impl FnOnce() -> R) -> R {
    fallible_depth().fetch_add(1, Ordering::Relaxed);
    let r = f();
    fallible_depth().fetch_sub(1, Ordering::Relaxed);
    r
}

/// An object allocation the caller then makes infallibly (an `Arc`, a tree
/// node): ENOMEM if injection says this allocation fails.
pub fn slab_may_fail() -> KResult<()> {
    if fallible(should_failslab) {
        Err(ENOMEM)
    } else {
        Ok(())
    }
}

/// `Vec::with_capacity` that returns ENOMEM instead of aborting.
pub fn try_vec_with_capacity<T>(n: usize) -> KResult<Vec<T>> {
    let mut v = Vec::new();
    fallible(|| v.try_reserve_exact(n)).map_err(|_| ENOMEM)?;
    Ok(v)
}

/// `Vec::reserve` (amortized growth) that returns ENOMEM instead of aborting.
pub fn try_reserve<T>(v: &mut Vec<T>, additional: usize) -> KResult<()> {
    fallible(|| v.try_reserve(additional)).map_err(|_| ENOMEM)
}

/// `vec![value; n]` that returns ENOMEM instead of aborting.
pub fn try_vec_filled<T: Clone>(value: T, n: usize) -> KResult<Vec<T>> {
    let mut v = try_vec_with_capacity(n)?;
    v.resize(n, value);
    Ok(v)
}

/// `Box::new` that returns ENOMEM instead of aborting.
pub fn try_box<T>(value: T) -> KResult<Box<T>> {
    let mut v: Vec<T> = try_vec_with_capacity(1)?;
    v.push(value);
    let one: *mut [T] = Box::into_raw(v.into_boxed_slice());
    // SAFETY: the slice holds exactly one T, so its allocation has T's layout; the Box<T>
    // takes over that allocation and the value, and the slice's Box was consumed.
    Ok(unsafe { Box::from_raw(one as *mut T) })
}

/// Prints the counters at power-off, for the runner.
pub fn report() {
    if FAIL_PAGE_ALLOC.configured() || FAILSLAB.configured() {
        crate::println!(
            "mshare-kernel: injected failures: fail_page_alloc {} of {} calls, failslab {} of {} calls",
            FAIL_PAGE_ALLOC.injected(),
            FAIL_PAGE_ALLOC.calls.load(Ordering::Relaxed),
            FAILSLAB.injected(),
            FAILSLAB.calls.load(Ordering::Relaxed),
        );
    }
}

/// For ktests: runs `f` as a task that may fail, with `page` and `slab`
/// configured, then puts the previous configuration back. Returns what `f`
/// returned and the failures injected meanwhile (page, slab).
pub fn with_injection<R>(page: Spec, slab: Spec, f: impl FnOnce() -> R) -> (R, u64, u64) {
    let (old_page, old_slab) = (FAIL_PAGE_ALLOC.get(), FAILSLAB.get());
    let (old_armed, old_task) = (ARMED.load(Ordering::Relaxed), task_may_fail().load(Ordering::Relaxed));
    let (p0, s0) = (FAIL_PAGE_ALLOC.injected(), FAILSLAB.injected());
    FAIL_PAGE_ALLOC.set(&page);
    FAILSLAB.set(&slab);
    ARMED.store(true, Ordering::Relaxed);
    task_may_fail().store(true, Ordering::Relaxed);
    let r = f();
    ARMED.store(old_armed, Ordering::Relaxed);
    task_may_fail().store(old_task, Ordering::Relaxed);
    FAIL_PAGE_ALLOC.set(&old_page);
    FAILSLAB.set(&old_slab);
    (r, FAIL_PAGE_ALLOC.injected() - p0, FAILSLAB.injected() - s0)
}

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![
    fail_specs_parse_as_documented,
    every_kth_frame_allocation_fails_after_the_budget_and_nofail_never_does,
    heap_injection_fails_only_fallible_allocations,
    page_fault_without_memory_is_oom_and_the_fault_succeeds_later,
    address_space_fork_fails_cleanly_at_every_allocation,
    mprotect_and_munmap_that_cannot_split_fail_with_enomem_and_change_nothing,
    mremap_move_without_page_tables_fails_with_enomem_and_keeps_every_page,
];

fn fail_specs_parse_as_documented() {
    assert_eq!(parse_spec("1%").map(|s| s.ppm), Some(10_000));
    assert_eq!(parse_spec("0.5%").map(|s| s.ppm), Some(5_000));
    assert_eq!(parse_spec(".25%").map(|s| s.ppm), Some(2_500));
    assert_eq!(parse_spec("100%").map(|s| s.ppm), Some(1_000_000));
    assert_eq!(
        parse_spec("every:7,seed=0x10,after=3,times=2"),
        Some(Spec { ppm: 0, interval: 7, after: 3, times: 2, seed: 16 })
    );
    for bad in ["", "1", "101%", "every:0", "every:x", "1%,seed", "1%,bogus=1", "0.00001%"] {
        assert_eq!(parse_spec(bad), None, "{:?}", bad);
    }
}

fn every_kth_frame_allocation_fails_after_the_budget_and_nofail_never_does() {
    use super::frame;
    let (got, page, slab) = with_injection(Spec::every(3, 2), Spec::OFF, || {
        let r: Vec<Option<frame::PhysFrame>> = (0..11).map(|_| frame::alloc_frames(0, None)).collect();
        let nofail = frame::alloc_frames_nofail(0, None);
        (r, nofail)
    });
    let (r, nofail) = got;
    let failed: Vec<usize> = r.iter().enumerate().filter(|(_, f)| f.is_none()).map(|(i, _)| i + 1).collect();
    assert_eq!(failed, [5, 8, 11], "two let through, then every third fails");
    assert_eq!((page, slab), (3, 0));
    for f in r.into_iter().flatten().chain(nofail) {
        frame::free_frames(f, 0);
    }
    // `times` caps the failures; injection is off again outside the window.
    let (r, page, _) = with_injection(Spec { times: 1, ..Spec::every(1, 0) }, Spec::OFF, || {
        [frame::alloc_frames(0, None), frame::alloc_frames(0, None)]
    });
    assert_eq!(page, 1);
    assert!(r[0].is_none() && r[1].is_some());
    frame::free_frames(r[1].unwrap(), 0);
    let f = frame::alloc_frames(0, None).expect("no injection outside the window");
    frame::free_frames(f, 0);
}

fn heap_injection_fails_only_fallible_allocations() {
    let ((v, b, s, plain), page, slab) = with_injection(Spec::OFF, Spec::every(1, 0), || {
        let v = try_vec_with_capacity::<u64>(100);
        let b = try_box([0u8; 64]);
        let s = slab_may_fail();
        // An ordinary allocation cannot report failure, so it is never failed.
        let plain: Vec<u64> = Vec::with_capacity(100);
        (v.map(|_| ()), b.map(|_| ()), s, plain.capacity())
    });
    assert_eq!((v, b, s), (Err(ENOMEM), Err(ENOMEM), Err(ENOMEM)));
    assert!(plain >= 100);
    assert_eq!((page, slab), (0, 3));
    let b = try_box(7u32).expect("no injection outside the window");
    assert_eq!(*b, 7);
    assert_eq!(try_vec_filled(1u8, 3).unwrap(), [1, 1, 1]);
}

/// A private anonymous VMA of `pages` pages at `base` in a new address space.
fn anon_mm(base: u64, pages: u64) -> alloc::sync::Arc<super::address_space::MmStruct> {
    use super::vma::{Backend, Prot, VmFlags, Vma};
    let mm = super::address_space::MmStruct::new().expect("mm");
    mm.mmap_lock.write().insert_vma(Vma {
        live: crate::leak::VMAS.live(),
        start: base,
        end: base + pages * super::PAGE_SIZE,
        prot: Prot::READ | Prot::WRITE,
        flags: VmFlags::MAYWRITE,
        pgoff: 0,
        backend: Backend::Anonymous,
        ops: None,
    });
    mm
}

fn page_fault_without_memory_is_oom_and_the_fault_succeeds_later() {
    use super::fault::{fault_exclusive, Access, FaultError};
    let base = 0x4000_0000;
    let mm = anon_mm(base, 4);
    // Each allocation the fault makes (page-table pages, then the page) fails in turn.
    for after in 0..8 {
        let (r, _, _) = with_injection(Spec::every(1, after), Spec::OFF, || {
            let mut inner = mm.mmap_lock.write();
            fault_exclusive(&mm, &mut inner, base + after * super::PAGE_SIZE % (4 * super::PAGE_SIZE), Access::WRITE)
        });
        assert!(r == Ok(()) || r == Err(FaultError::Oom), "{:?}", r);
    }
    let mut inner = mm.mmap_lock.write();
    let (r, page, _) = with_injection(Spec::every(1, 0), Spec::OFF, || {
        fault_exclusive(&mm, &mut inner, base + 3 * super::PAGE_SIZE, Access::WRITE)
    });
    let resident = mm.rss_total();
    if r.is_err() {
        assert_eq!((r, page), (Err(FaultError::Oom), 1));
    }
    for i in 0..4 {
        fault_exclusive(&mm, &mut inner, base + i * super::PAGE_SIZE, Access::WRITE).expect("fault");
    }
    assert!(resident <= 4);
    assert_eq!(mm.rss_total(), 4);
    // Dropping the address space gives every frame back (the ktest harness checks).
}

fn address_space_fork_fails_cleanly_at_every_allocation() {
    use super::fault::{fault_exclusive, Access};
    // Pages on both sides of a 2 MiB boundary, so the copy needs several tables.
    let base = 0x4000_0000 + (2 << 20) - 8 * super::PAGE_SIZE;
    let mm = anon_mm(base, 16);
    {
        let mut inner = mm.mmap_lock.write();
        for i in 0..16 {
            fault_exclusive(&mm, &mut inner, base + i * super::PAGE_SIZE, Access::WRITE).expect("fault");
        }
    }
    let before = super::frame::frames_in_use();
    let mut failures = 0;
    for after in 0.. {
        let (child, page, _) = with_injection(Spec::every(1, after), Spec::OFF, || mm.fork());
        match child {
            Ok(c) => {
                assert_eq!(c.rss_total(), 16);
                assert_eq!(page, 0, "a fork that met a failure must fail");
                break;
            }
            Err(_) => {
                failures += 1;
                assert_eq!(super::frame::frames_in_use(), before, "a failed fork at allocation {} leaked", after);
            }
        }
    }
    assert!(failures >= 4, "root, PDPT, PD and two page tables: {} failure points", failures);
    assert_eq!(mm.rss_total(), 16, "the parent keeps its pages");
}

fn mprotect_and_munmap_that_cannot_split_fail_with_enomem_and_change_nothing() {
    use super::fault::{fault_exclusive, Access};
    let base = 0x4000_0000;
    let mm = anon_mm(base, 4);
    {
        let mut inner = mm.mmap_lock.write();
        for i in 0..4 {
            fault_exclusive(&mm, &mut inner, base + i * super::PAGE_SIZE, Access::WRITE).expect("fault");
        }
    }
    let middle = base + super::PAGE_SIZE;
    let ((p, u, whole), _, slab) = with_injection(Spec::OFF, Spec::every(1, 0), || {
        (
            super::mprotect::do_mprotect(&mm, middle, super::PAGE_SIZE, 1),
            super::munmap::do_munmap(&mm, middle, super::PAGE_SIZE),
            // Covering the whole VMA splits nothing, so nothing can fail.
            super::mprotect::do_mprotect(&mm, base, 4 * super::PAGE_SIZE, 3),
        )
    });
    assert_eq!((p, u, whole, slab), (Err(ENOMEM), Err(ENOMEM), Ok(()), 2));
    {
        let inner = mm.mmap_lock.read();
        assert_eq!(inner.vmas.len(), 1, "no VMA was split");
        assert_eq!(mm.rss_total(), 4, "no page was unmapped");
    }
    super::munmap::do_munmap(&mm, middle, super::PAGE_SIZE).expect("munmap outside the window");
    let inner = mm.mmap_lock.read();
    assert_eq!((inner.vmas.len(), mm.rss_total()), (2, 3));
}

fn mremap_move_without_page_tables_fails_with_enomem_and_keeps_every_page() {
    use super::fault::{fault_exclusive, Access};
    use super::mremap::{do_mremap, MREMAP_FIXED, MREMAP_MAYMOVE};
    let (base, pages, to) = (0x4000_0000, 8, 0x80_0000_0000);
    let mm = anon_mm(base, pages);
    {
        let mut inner = mm.mmap_lock.write();
        for i in 0..pages {
            fault_exclusive(&mm, &mut inner, base + i * super::PAGE_SIZE, Access::WRITE).expect("fault");
        }
    }
    let len = pages * super::PAGE_SIZE;
    let mapped = |at: u64| {
        let pt = mm.page_table_lock.lock();
        let mem = mm.phys_mem();
        (0..pages).filter(|i| pt.pt.translate(&mem, at + i * super::PAGE_SIZE).is_some()).count() as u64
    };
    let mut failures = 0;
    for after in 0.. {
        let (r, page, _) = with_injection(Spec::every(1, after), Spec::OFF, || {
            do_mremap(&mm, base, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to)
        });
        if r.is_ok() {
            assert_eq!(page, 0);
            break;
        }
        failures += 1;
        assert_eq!(r, Err(ENOMEM));
        assert_eq!((mapped(base), mapped(to)), (pages, 0), "a failed move at allocation {} moved pages", after);
        assert_eq!(mm.rss_total(), pages);
    }
    assert!(failures >= 3, "PDPT, PD and page table at the destination: {} failure points", failures);
    assert_eq!((mapped(base), mapped(to)), (0, pages));
    assert_eq!(mm.rss_total(), pages);
}
