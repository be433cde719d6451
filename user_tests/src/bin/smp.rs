//! Several CPUs in one address space: after munmap, mprotect, ftruncate, madvise
//! (MADV_DONTNEED) or fork returns, no thread on any CPU reads or writes through the
//! translation the call took away (Linux's TLB shootdown: `flush_tlb_mm_range` and
//! `native_flush_tlb_multi` in arch/x86/mm/tlb.c, reached from `tlb_finish_mmu` in
//! mm/mmu_gather.c, from `change_protection` in mm/mprotect.c and from
//! `copy_page_range`'s write-protection of COW pages in kernel/fork.c); plus storms of
//! fork/exit/wait, mmap/munmap, mprotect and thread create/join on every CPU at once, whose
//! leaks the kernel's leak check at the end of the run reports.
//!
//! # The generation protocol
//!
//! Worker threads (one per CPU the process may run on, at least 2) access one page in a
//! loop; the test thread makes the call. Each round:
//! 1. the test thread sets the page up and publishes round `r`; each worker makes `WARM`
//!    successful accesses (reads and writes: its CPU now caches a writable translation)
//!    and says so, then goes on accessing;
//! 2. the test thread makes the call and, once it has returned, publishes "round `r`
//!    returned" with Release ordering;
//! 3. a worker loads that word (Acquire) *before* each access; an access begun after it
//!    saw the call return must fault or see the new state (the replacement page, the
//!    read-only page's unchanged bytes, zeros). One that completes through the old
//!    translation is a stale access and fails the test. Accesses begun before are not
//!    judged: they may legitimately land either side of the call.
//! 4. each worker makes `AFTER` judged accesses, then the round ends with the test
//!    thread's own checks of what stale writes could have reached (the page mapped in
//!    the unmapped page's place never receives a byte; the write-protected page never
//!    changes; no write made after MADV_DONTNEED is lost).
//!
//! # Surviving the faults
//!
//! Every judged access is one instruction in `probe_read`/`probe_write` (global assembly
//! below). The SIGSEGV/SIGBUS handler looks the faulting RIP up in that two-entry table,
//! as Linux's exception table does for the kernel's own user accesses
//! (`fixup_exception`): on a match it moves RIP to a `ret` and puts the signal and
//! `si_code` in RDX/RAX, so the probe returns "faulted" to its caller; any other fault
//! restores the default action and returns, so the fault repeats and kills the process
//! with its real signal. Nothing unwinds through a signal frame and no thread-local
//! state is needed, unlike siglongjmp.
//!
//! # Not vacuous
//!
//! Each test asserts that its loops ran (rounds, accesses before and after each call,
//! faults taken after it), and `skipped_calls_are_reported_as_stale_accesses` runs the
//! same checks against a test thread that publishes "returned" without making the call
//! (every translation stays valid, as with shootdowns missing altogether) and requires
//! every one of them to report stale accesses.
//!
//! On one CPU a stale translation cannot outlive the call (the calling CPU flushes its
//! own TLB); the tests are written to run on one CPU as on many, and catch stale
//! translations once tasks run on several CPUs at once.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libc::*;
use user_tests::probe::{install_probe_handler, probe_read, probe_write, Probe};
use user_tests::{
    close, fork_child, mmap, online_cpus, open, pipe, read_full, run_in_child, run_tests, run_tests_matching, sys,
    tests, wait_child, wait_for, write, Errno, Exit, PAGE, STUCK,
};

/// Child-mode argument for the runner's negative control (`smp --user-tests-child
/// stale-only`): print the CPU count, and only with two or more run the stale-translation
/// tests, which must then fail on a kernel booted with TLB shootdowns off.
const STALE_ONLY: &str = "stale-only";
/// The part of the name every stale-translation test (and no other) has.
const STALE_TESTS: &str = "_after_";

fn main() {
    let cpus = online_cpus();
    println!("smp: tasks may run on {cpus} CPUs");
    let tests = tests![
        skipped_calls_are_reported_as_stale_accesses,
        no_access_after_munmap_returns_goes_through_the_old_translation,
        no_write_after_mprotect_read_only_returns_goes_through_the_old_translation,
        no_access_after_ftruncate_returns_goes_through_the_old_translation,
        no_access_after_madv_dontneed_returns_goes_through_the_old_translation,
        parent_writes_after_fork_returns_never_reach_the_childs_copy,
        fork_mmap_mprotect_and_thread_storms_on_every_cpu_finish_intact,
    ];
    if user_tests::child_args().is_some_and(|a| a.first().map(String::as_str) == Some(STALE_ONLY)) {
        if cpus < 2 {
            println!("smp: one CPU: no translation can go stale");
            std::process::exit(0);
        }
        run_tests_matching("smp", tests, Some(STALE_TESTS));
    }
    run_tests("smp", tests);
}

// ---------------------------------------------------------------------------------------
// Sizing
// ---------------------------------------------------------------------------------------

/// Rounds per CPU a stale-translation test aims at (it stops earlier at its time budget).
const ROUNDS_PER_CPU: u64 = 500;
/// Wall-clock budget of one stale-translation test.
const BUDGET: Duration = Duration::from_secs(3);
/// Rounds a test must complete within its budget: fewer means the loops hardly ran.
const MIN_ROUNDS: u64 = 20;
/// Successful accesses each worker makes in a round before the call.
const WARM: u64 = 4;
/// Judged accesses each worker makes in a round after seeing the call return.
const AFTER: u64 = 4;
/// After warming up, a worker yields its CPU once every this many successful accesses
/// before the call: often enough that the test thread gets a shared CPU soon, seldom
/// enough that the accesses keep racing with the call on CPUs of their own.
const YIELD_EVERY: u64 = 16;
/// Byte distance between two workers' slots in the page.
const SLOT: usize = 64;
/// Most workers (their slots fill the first half of the page).
const MAX_WORKERS: usize = 32;

/// One worker per CPU, at least 2 (so two of them share one CPU when there is one).
fn worker_count() -> usize {
    online_cpus().clamp(2, MAX_WORKERS)
}

fn target_rounds() -> u64 {
    ROUNDS_PER_CPU * online_cpus() as u64
}

fn yield_now() {
    // SAFETY: sched_yield has no memory effects.
    unsafe { sched_yield() };
}

// ---------------------------------------------------------------------------------------
// The stale-translation rounds
// ---------------------------------------------------------------------------------------

const SEGV_MAPERR: u64 = user_tests::SEGV_MAPERR as u64;
const SEGV_ACCERR: u64 = user_tests::SEGV_ACCERR as u64;

/// What takes the page's translation away in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    /// `munmap`, then a read-only shared anonymous page mapped in its place.
    Munmap,
    /// `mprotect(PROT_READ)`: reads go on, writes fault.
    MprotectReadOnly,
    /// `ftruncate(fd, 0)` of the tmpfs file mapped `MAP_SHARED`: every access is SIGBUS.
    Ftruncate,
    /// `madvise(MADV_DONTNEED)` of private anonymous memory: reads see zeros, writes
    /// reach a fresh page.
    MadvDontneed,
}

/// A value written before the call (1..=0x7f: never zero, never an "after" value).
fn before_value(seq: u64) -> u8 {
    1 + (seq % 0x7f) as u8
}

/// A value written after the call (0x80..=0xff).
fn after_value(seq: u64) -> u8 {
    0x80 | (seq % 0x80) as u8
}

/// The state the test thread and its workers share.
struct Rounds {
    call: Call,
    page: usize,
    /// The round the workers are to run (0: none yet).
    round: AtomicU64,
    stop: AtomicBool,
    /// The last round whose call has returned.
    returned: AtomicU64,
    /// MADV_DONTNEED: the last round whose call is about to be made; workers stop writing
    /// (a write racing with the zap may land in the fresh page, which would make a later
    /// read of it ambiguous) and acknowledge in `quiet`.
    calling: AtomicU64,
    quiet: AtomicUsize,
    /// Workers warmed up this round.
    ready: AtomicUsize,
    /// Workers done with this round.
    done: AtomicUsize,
    /// mprotect: each slot's byte as the test thread read it once the call returned.
    snapshot: Vec<AtomicU8>,
    /// MADV_DONTNEED: each worker's last write after the call, as 0x100 | value (0: none).
    last_after_write: Vec<AtomicU16>,
    before: AtomicU64,
    after: AtomicU64,
    after_faults: AtomicU64,
    stale: AtomicU64,
    first_stale: Mutex<Vec<String>>,
}

impl Rounds {
    fn slot(&self, w: usize) -> usize {
        self.page + w * SLOT
    }

    fn report_stale(&self, msg: String) {
        self.stale.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_stale.lock().unwrap_or_else(|e| e.into_inner());
        if first.len() < 3 {
            first.push(msg);
        }
    }
}

/// What a run of rounds saw.
#[derive(Debug)]
struct Outcome {
    rounds: u64,
    before: u64,
    after: u64,
    after_faults: u64,
    stale: u64,
    first_stale: Vec<String>,
}

/// The judgement of one access begun after the worker saw the call return: `None` when
/// the access faulted or saw the new state, else what went through the old translation.
/// `expect` is the worker's own slot as it must read after MADV_DONTNEED.
fn judge(st: &Rounds, w: usize, write: bool, p: Probe, expect: &mut u8, v: u8) -> Option<String> {
    let what = if write { format!("write of {v:#x}") } else { "read".to_string() };
    match (st.call, write, p.faulted()) {
        // SEGV_MAPERR until the replacement is mapped; then writes are SEGV_ACCERR.
        (Call::Munmap, false, true) if p.signal == SIGSEGV as u64 && p.value == SEGV_MAPERR => None,
        (Call::Munmap, true, true) if p.signal == SIGSEGV as u64 && [SEGV_MAPERR, SEGV_ACCERR].contains(&p.value) => {
            None
        }
        // The read-only page mapped in the unmapped page's place reads as zeros; the old
        // page never held a zero.
        (Call::Munmap, false, false) if p.value == 0 => None,
        (Call::Munmap, _, false) => Some(format!("{what} after munmap returned succeeded (read {:#x})", p.value)),
        (Call::MprotectReadOnly, true, true) if p.signal == SIGSEGV as u64 && p.value == SEGV_ACCERR => None,
        (Call::MprotectReadOnly, true, false) => Some(format!("{what} after mprotect(PROT_READ) returned succeeded")),
        (Call::MprotectReadOnly, false, false) => {
            let snap = st.snapshot[w].load(Ordering::Relaxed);
            (p.value as u8 != snap)
                .then(|| format!("read {:#x} after mprotect(PROT_READ) returned, but the page held {snap:#x}", p.value))
        }
        (Call::Ftruncate, _, true) if p.signal == SIGBUS as u64 => None,
        (Call::Ftruncate, _, false) => Some(format!("{what} after ftruncate returned succeeded (read {:#x})", p.value)),
        (Call::MadvDontneed, true, false) => {
            *expect = v;
            None
        }
        (Call::MadvDontneed, false, false) => (p.value as u8 != *expect).then(|| {
            format!("read {:#x} after MADV_DONTNEED returned, where a fresh page holds {:#x}", p.value, *expect)
        }),
        (_, _, true) => {
            Some(format!("{what} after {:?} returned raised signal {} code {}", st.call, p.signal, p.value))
        }
    }
}

fn worker(st: Arc<Rounds>, w: usize) {
    let slot = st.slot(w);
    let mut seq = w as u64 * 1000;
    let mut r = 0;
    let (mut before_total, mut after_total, mut fault_total) = (0, 0, 0);
    loop {
        wait_for("the next round", || st.stop.load(Ordering::Acquire) || st.round.load(Ordering::Acquire) > r);
        if st.stop.load(Ordering::Acquire) {
            break;
        }
        r += 1;
        st.last_after_write[w].store(0, Ordering::Relaxed);
        let (mut warm, mut after) = (0, 0);
        let mut acked = false;
        let mut expect = 0u8;
        let mut i = 0u64;
        while after < AFTER {
            i += 1;
            seq += 1;
            let returned = st.returned.load(Ordering::Acquire) >= r;
            let quiet = st.call == Call::MadvDontneed && st.calling.load(Ordering::Acquire) >= r;
            if quiet && !returned && !acked {
                acked = true;
                st.quiet.fetch_add(1, Ordering::Release);
            }
            // Before the call reads and writes alternate (none while MADV_DONTNEED's call is
            // coming); after it, each worker reads first, then alternates.
            let write = if returned { after % 2 == 1 } else { i % 2 == 0 && !quiet };
            let v = if returned { after_value(seq) } else { before_value(seq) };
            let p = if write { probe_write(slot, v) } else { probe_read(slot) };
            if !returned {
                before_total += 1;
                if !p.faulted() {
                    warm += 1;
                    if warm == WARM {
                        st.ready.fetch_add(1, Ordering::Release);
                    }
                } else if st.call == Call::MadvDontneed {
                    st.report_stale(format!("access before MADV_DONTNEED raised signal {} code {}", p.signal, p.value));
                }
                if warm >= WARM && i % YIELD_EVERY == 0 {
                    yield_now();
                }
                continue;
            }
            after += 1;
            after_total += 1;
            if p.faulted() {
                fault_total += 1;
            }
            if let Some(msg) = judge(&st, w, write, p, &mut expect, v) {
                st.report_stale(format!("round {r}, worker {w}: {msg}"));
            }
            if write && !p.faulted() {
                st.last_after_write[w].store(0x100 | v as u16, Ordering::Relaxed);
            }
        }
        st.done.fetch_add(1, Ordering::Release);
    }
    st.before.fetch_add(before_total, Ordering::Relaxed);
    st.after.fetch_add(after_total, Ordering::Relaxed);
    st.after_faults.fetch_add(fault_total, Ordering::Relaxed);
}

fn munmap(addr: usize, len: usize) -> Result<i64, Errno> {
    sys!(SYS_munmap, addr, len)
}

/// A PROT_NONE page each side of the page under test, so its VMA never merges with a
/// neighbour; returns the page.
fn guarded_page() -> usize {
    let base = mmap(0, 3 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).expect("mmap");
    base + PAGE
}

/// A tmpfs file of one page, open read-write and already unlinked: `/dev/shm` (tmpfs on
/// Linux and in our kernel), else `/tmp`.
fn tmpfs_file() -> i32 {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let path = format!("{dir}/ut-smp-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let fd = open(&path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600).unwrap_or_else(|e| panic!("{path}: {e}"));
    std::fs::remove_file(&path).unwrap();
    fd
}

fn fill(page: usize, byte: u8) {
    // SAFETY: `page` is a mapped, writable page no Rust reference aliases.
    unsafe { std::ptr::write_bytes(page as *mut u8, byte, PAGE) };
}

fn read_page(page: usize) -> Vec<u8> {
    let mut v = vec![0u8; PAGE];
    // SAFETY: `page` is mapped readable.
    unsafe { std::ptr::copy_nonoverlapping(page as *const u8, v.as_mut_ptr(), PAGE) };
    v
}

/// Runs rounds of `call` against worker threads until `max_rounds` or `budget`.
fn run_rounds(call: Call, skip_call: bool, max_rounds: u64, budget: Duration) -> Outcome {
    install_probe_handler();
    let workers = worker_count();
    let page = guarded_page();
    let fd = if call == Call::Ftruncate { tmpfs_file() } else { -1 };
    let rw = PROT_READ | PROT_WRITE;
    match call {
        Call::Ftruncate => {
            let m = mmap(page, PAGE, rw, MAP_SHARED | MAP_FIXED, fd, 0).expect("mmap file");
            assert_eq!(m, page);
        }
        _ => assert_eq!(mmap(page, PAGE, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), Ok(page)),
    }
    let st = Arc::new(Rounds {
        call,
        page,
        round: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        returned: AtomicU64::new(0),
        calling: AtomicU64::new(0),
        quiet: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        snapshot: (0..workers).map(|_| AtomicU8::new(0)).collect(),
        last_after_write: (0..workers).map(|_| AtomicU16::new(0)).collect(),
        before: AtomicU64::new(0),
        after: AtomicU64::new(0),
        after_faults: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        first_stale: Mutex::new(Vec::new()),
    });
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let st = st.clone();
            std::thread::spawn(move || worker(st, w))
        })
        .collect();
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < max_rounds && start.elapsed() < budget {
        let r = rounds + 1;
        // The page as the round starts: mapped, writable, never holding a zero byte.
        match call {
            Call::Munmap => {
                assert_eq!(mmap(page, PAGE, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), Ok(page));
                fill(page, 0x5a);
            }
            Call::MprotectReadOnly => {
                sys!(SYS_mprotect, page, PAGE, rw).expect("mprotect RW");
                fill(page, 0x5a);
            }
            Call::Ftruncate => {
                sys!(SYS_ftruncate, fd, PAGE).expect("ftruncate up");
                fill(page, 0x5a);
            }
            Call::MadvDontneed => fill(page, 0x5a),
        }
        st.ready.store(0, Ordering::Relaxed);
        st.done.store(0, Ordering::Relaxed);
        st.quiet.store(0, Ordering::Relaxed);
        st.round.store(r, Ordering::Release);
        wait_for("the workers to warm up", || st.ready.load(Ordering::Acquire) == workers);
        if call == Call::MadvDontneed {
            st.calling.store(r, Ordering::Release);
            wait_for("the workers to stop writing", || st.quiet.load(Ordering::Acquire) == workers);
        }
        if !skip_call {
            match call {
                Call::Munmap => munmap(page, PAGE).map(drop).expect("munmap"),
                Call::MprotectReadOnly => sys!(SYS_mprotect, page, PAGE, PROT_READ).map(drop).expect("mprotect RO"),
                Call::Ftruncate => sys!(SYS_ftruncate, fd, 0).map(drop).expect("ftruncate to 0"),
                Call::MadvDontneed => sys!(SYS_madvise, page, PAGE, MADV_DONTNEED).map(drop).expect("madvise"),
            }
        }
        let snapshot = (call == Call::MprotectReadOnly).then(|| read_page(page));
        if let Some(s) = &snapshot {
            for w in 0..workers {
                st.snapshot[w].store(s[w * SLOT], Ordering::Relaxed);
            }
        }
        st.returned.store(r, Ordering::Release);
        if call == Call::Munmap && !skip_call {
            let m = mmap(page, PAGE, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            assert_eq!(m, Ok(page), "mapping the replacement page");
            // Its first read allocates the page, likely the frame munmap just freed.
            let _ = probe_read(page);
        }
        wait_for("the workers to finish the round", || st.done.load(Ordering::Acquire) == workers);
        // What a stale write could have reached.
        match call {
            Call::Munmap if !skip_call => {
                if let Some(i) = read_page(page).iter().position(|&b| b != 0) {
                    st.report_stale(format!("round {r}: the page mapped in place of the unmapped one got byte {i}"));
                }
            }
            Call::MprotectReadOnly => {
                if read_page(page) != snapshot.unwrap() {
                    st.report_stale(format!("round {r}: the page changed after mprotect(PROT_READ) returned"));
                }
            }
            Call::MadvDontneed => {
                for w in 0..workers {
                    let last = st.last_after_write[w].load(Ordering::Relaxed);
                    let now = probe_read(st.slot(w)).value as u16;
                    if last != 0 && now != last & 0xff {
                        st.report_stale(format!(
                            "round {r}: worker {w}'s write of {:#x} after MADV_DONTNEED is lost (the page holds {now:#x})",
                            last & 0xff
                        ));
                    }
                }
            }
            _ => {}
        }
        rounds = r;
    }
    st.stop.store(true, Ordering::Release);
    for t in threads {
        t.join().expect("worker panicked");
    }
    munmap(page - PAGE, 3 * PAGE).unwrap();
    if fd >= 0 {
        close(fd).unwrap();
    }
    let first_stale = std::mem::take(&mut *st.first_stale.lock().unwrap());
    Outcome {
        rounds,
        before: st.before.load(Ordering::Relaxed),
        after: st.after.load(Ordering::Relaxed),
        after_faults: st.after_faults.load(Ordering::Relaxed),
        stale: st.stale.load(Ordering::Relaxed),
        first_stale,
    }
}

/// Runs a stale-translation test in a child (it installs fault handlers) and checks that
/// it ran, faulted where it must, and saw no stale access.
fn stale_translation_test(call: Call) {
    run_in_child(|| {
        let start = Instant::now();
        let o = run_rounds(call, false, target_rounds(), BUDGET);
        println!(
            "smp: {call:?}: {} rounds in {:.1} s, {} accesses before the calls, {} after ({} faulted), {} stale",
            o.rounds,
            start.elapsed().as_secs_f64(),
            o.before,
            o.after,
            o.after_faults,
            o.stale
        );
        let workers = worker_count() as u64;
        assert!(o.stale == 0, "{} stale accesses, the first: {:?} ({o:?})", o.stale, o.first_stale);
        assert!(o.rounds >= MIN_ROUNDS, "only {} rounds in {BUDGET:?}: {o:?}", o.rounds);
        assert!(o.before >= o.rounds * workers * WARM, "too few accesses before the calls: {o:?}");
        assert_eq!(o.after, o.rounds * workers * AFTER, "accesses after the calls: {o:?}");
        // Every judged write faults except after MADV_DONTNEED; every judged read too
        // after ftruncate; after munmap at least the writes do.
        let min_faults = match call {
            Call::Ftruncate => o.after,
            Call::Munmap | Call::MprotectReadOnly => o.after / 2,
            Call::MadvDontneed => 0,
        };
        assert!(o.after_faults >= min_faults, "too few faults after the calls (want {min_faults}): {o:?}");
        if call == Call::MadvDontneed {
            assert_eq!(o.after_faults, 0, "{o:?}");
        }
    });
}

fn no_access_after_munmap_returns_goes_through_the_old_translation() {
    stale_translation_test(Call::Munmap);
}

fn no_write_after_mprotect_read_only_returns_goes_through_the_old_translation() {
    stale_translation_test(Call::MprotectReadOnly);
}

fn no_access_after_ftruncate_returns_goes_through_the_old_translation() {
    stale_translation_test(Call::Ftruncate);
}

fn no_access_after_madv_dontneed_returns_goes_through_the_old_translation() {
    stale_translation_test(Call::MadvDontneed);
}

// ---------------------------------------------------------------------------------------
// Copy-on-write across fork
// ---------------------------------------------------------------------------------------

/// Where in the page the forking thread writes the round number before fork (the value
/// the child must see) and the round with the top bit set after (what it must not).
const MARKER: usize = PAGE / 2;

/// What the child read of its copy: each worker's slot and the marker, first as it
/// starts and again once the parent's workers have written after fork returned.
#[repr(C)]
#[derive(Clone, Copy)]
struct ChildView {
    first: [u64; MAX_WORKERS + 1],
    second: [u64; MAX_WORKERS + 1],
}

fn word(page: usize, off: usize) -> &'static AtomicU64 {
    // SAFETY: `page` is a mapped, 8-byte aligned page that outlives the test's threads;
    // every access to it goes through atomics.
    unsafe { &*((page + off) as *const AtomicU64) }
}

fn read_view(page: usize, workers: usize) -> [u64; MAX_WORKERS + 1] {
    let mut v = [0u64; MAX_WORKERS + 1];
    for (w, x) in v.iter_mut().take(workers).enumerate() {
        *x = word(page, w * SLOT).load(Ordering::Relaxed);
    }
    v[MAX_WORKERS] = word(page, MARKER).load(Ordering::Relaxed);
    v
}

/// The fork rounds' state, shared by the parent's threads. It lives in a `MAP_SHARED`
/// mapping (`SharedCowRounds`), not the heap: fork write-protects private memory, and
/// with shootdowns off (the negative control) workers on other CPUs keep writing the
/// pre-fork heap page through their stale entries, out of the forking thread's sight, so
/// the rounds would wait forever instead of reporting the stale writes.
struct CowRounds {
    page: usize,
    round: AtomicU64,
    returned: AtomicU64,
    stop: AtomicBool,
    ready: AtomicUsize,
    done: AtomicUsize,
    /// Workers that have left their loop (they are not joined: see `run_cow_rounds`).
    exited: AtomicUsize,
    /// Each worker's last value written before it saw fork return, this round.
    last_before: [AtomicU64; MAX_WORKERS],
    writes_before: AtomicU64,
    writes_after: AtomicU64,
}

/// A `CowRounds` in its own `MAP_SHARED` anonymous mapping, unmapped on drop.
struct SharedCowRounds(&'static CowRounds);

impl SharedCowRounds {
    fn new(page: usize) -> SharedCowRounds {
        let len = size_of::<CowRounds>().next_multiple_of(PAGE);
        let a =
            mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0).expect("mmap the rounds' state");
        // All-zero bytes are a valid CowRounds but for `page` (atomics and a bool).
        let st = a as *mut CowRounds;
        // SAFETY: the fresh mapping is zeroed, writable, page-aligned and large enough;
        // only `page` needs writing before it is shared; it stays mapped until drop.
        unsafe {
            std::ptr::addr_of_mut!((*st).page).write(page);
            SharedCowRounds(&*st)
        }
    }
}

impl Drop for SharedCowRounds {
    fn drop(&mut self) {
        let _ = munmap(self.0 as *const CowRounds as usize, size_of::<CowRounds>().next_multiple_of(PAGE));
    }
}

fn cow_worker(st: &CowRounds, w: usize) {
    let slot = word(st.page, w * SLOT);
    let mut seq = 0u64;
    let mut r = 0;
    let (mut before_total, mut after_total) = (0, 0);
    loop {
        wait_for("the next round", || st.stop.load(Ordering::Acquire) || st.round.load(Ordering::Acquire) > r);
        if st.stop.load(Ordering::Acquire) {
            break;
        }
        r += 1;
        let (mut warm, mut after) = (0, 0);
        while after < AFTER {
            let returned = st.returned.load(Ordering::Acquire) >= r;
            seq += 1;
            slot.store(seq, Ordering::Relaxed);
            if returned {
                after += 1;
                after_total += 1;
                continue;
            }
            st.last_before[w].store(seq, Ordering::Relaxed);
            before_total += 1;
            warm += 1;
            if warm == WARM {
                st.ready.fetch_add(1, Ordering::Release);
            }
            if warm >= WARM && warm % YIELD_EVERY == 0 {
                yield_now();
            }
        }
        st.done.fetch_add(1, Ordering::Release);
    }
    st.writes_before.fetch_add(before_total, Ordering::Relaxed);
    st.writes_after.fetch_add(after_total, Ordering::Relaxed);
    st.exited.fetch_add(1, Ordering::Release);
}

/// Rounds of fork while the parent's workers write; with `skip_fork` the "child's copy"
/// is the parent's own page (a fork that copied nothing): the detector's negative control.
/// Returns (rounds, what went wrong).
fn run_cow_rounds(skip_fork: bool, max_rounds: u64, budget: Duration) -> (u64, Vec<String>, u64, u64) {
    let workers = worker_count();
    let page = guarded_page();
    assert_eq!(mmap(page, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), Ok(page));
    let shared = SharedCowRounds::new(page);
    let st: &'static CowRounds = shared.0;
    // Not joined: a join reads what the worker left in private memory (its result, the
    // handle's count), which a stale translation may have sent to the child's copy. The
    // workers say they are done in the shared state instead.
    for w in 0..workers {
        drop(std::thread::spawn(move || cow_worker(st, w)));
    }
    let mut problems = Vec::new();
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < max_rounds && start.elapsed() < budget && problems.len() < 3 {
        let r = rounds + 1;
        st.ready.store(0, Ordering::Relaxed);
        st.done.store(0, Ordering::Relaxed);
        word(page, MARKER).store(r, Ordering::Relaxed);
        st.round.store(r, Ordering::Release);
        wait_for("the workers to warm up", || st.ready.load(Ordering::Acquire) == workers);
        let (go_r, go_w) = pipe(O_CLOEXEC).expect("pipe");
        let (res_r, res_w) = pipe(O_CLOEXEC).expect("pipe");
        let child = if skip_fork {
            None
        } else {
            // The child reads its copy, waits for the parent's word, reads it again and
            // sends both views back; it allocates nothing and calls only raw system calls.
            Some(fork_child(|| {
                let first = read_view(page, workers);
                // Only the parent holds the write end of `go`: if it dies, the read ends.
                let _ = close(go_w);
                let _ = close(res_r);
                let mut go = [0u8; 1];
                let _ = read_full(go_r, &mut go);
                let view = ChildView { first, second: read_view(page, workers) };
                // SAFETY: ChildView is plain words.
                let bytes = unsafe {
                    std::slice::from_raw_parts(&view as *const ChildView as *const u8, size_of::<ChildView>())
                };
                if write(res_w, bytes) == Ok(bytes.len()) {
                    0
                } else {
                    1
                }
            }))
        };
        let first_in_place = skip_fork.then(|| read_view(page, workers));
        st.returned.store(r, Ordering::Release);
        word(page, MARKER).store(r | 1 << 63, Ordering::Relaxed);
        wait_for("the workers to write after fork", || st.done.load(Ordering::Acquire) == workers);
        let view = match first_in_place {
            Some(first) => ChildView { first, second: read_view(page, workers) },
            None => {
                assert_eq!(write(go_w, b"g"), Ok(1));
                let mut buf = vec![0u8; size_of::<ChildView>()];
                let n = read_full(res_r, &mut buf).expect("read the child's view");
                assert_eq!(wait_child(child.unwrap()), Exit::Code(0), "child");
                assert_eq!(n, buf.len(), "the child's view is short");
                // SAFETY: ChildView is plain words, `buf` holds one.
                unsafe { std::ptr::read_unaligned(buf.as_ptr() as *const ChildView) }
            }
        };
        for fd in [go_r, go_w, res_r, res_w] {
            close(fd).unwrap();
        }
        for (when, v) in [("at its start", &view.first), ("after the parent's writes", &view.second)] {
            if v[MAX_WORKERS] != r {
                problems
                    .push(format!("round {r}: the child's copy {when} has marker {:#x}, not {r:#x}", v[MAX_WORKERS]));
            }
            for w in 0..workers {
                let last = st.last_before[w].load(Ordering::Relaxed);
                if v[w] > last {
                    problems.push(format!(
                        "round {r}: the child's copy {when} has worker {w}'s {}, written after fork returned (last before: {last})",
                        v[w]
                    ));
                }
            }
        }
        if view.first != view.second {
            problems.push(format!("round {r}: the child's copy changed under it"));
        }
        rounds = r;
    }
    st.stop.store(true, Ordering::Release);
    wait_for("the workers to leave", || st.exited.load(Ordering::Acquire) == workers);
    munmap(page - PAGE, 3 * PAGE).unwrap();
    let totals = (st.writes_before.load(Ordering::Relaxed), st.writes_after.load(Ordering::Relaxed));
    drop(shared);
    (rounds, problems, totals.0, totals.1)
}

/// `run_in_child` for a stale-translation test whose process forks: a test process
/// killed by SIGSEGV or SIGBUS is reported as stale translations. With shootdowns on
/// nothing else writes its memory; with them off (the negative control) a worker's write
/// through a stale translation can land in any page fork made copy-on-write, the test
/// process's own stack and heap among them, not only in the pages it watches.
fn run_forking_stale_test(f: impl FnOnce()) {
    match user_tests::run_in_child_outcome(f) {
        (_, Some(m)) => panic!("in child: {m}"),
        (Exit::Code(0), None) => {}
        (Exit::Signal(s), None) if s == libc::SIGSEGV || s == libc::SIGBUS => {
            panic!("stale translations: the test process was killed by signal {s}")
        }
        (other, None) => panic!("child did not exit normally: {other:?}"),
    }
}

fn parent_writes_after_fork_returns_never_reach_the_childs_copy() {
    run_forking_stale_test(|| {
        let start = Instant::now();
        let (rounds, problems, before, after) = run_cow_rounds(false, target_rounds(), BUDGET);
        println!(
            "smp: fork: {rounds} rounds in {:.1} s, {before} writes before fork returned, {after} after, {} stale",
            start.elapsed().as_secs_f64(),
            problems.len()
        );
        assert!(problems.is_empty(), "stale translations: {problems:?}");
        assert!(rounds >= MIN_ROUNDS, "only {rounds} rounds in {BUDGET:?}");
        let workers = worker_count() as u64;
        assert!(before >= rounds * workers * WARM, "{before} writes before fork in {rounds} rounds");
        assert_eq!(after, rounds * workers * AFTER, "writes after fork in {rounds} rounds");
    });
}

// ---------------------------------------------------------------------------------------
// The detector's negative control
// ---------------------------------------------------------------------------------------

/// With the call skipped but "returned" published anyway, every old translation stays
/// valid after the workers are told the call returned, as it would on other CPUs with
/// no shootdown at all: each detector must report stale accesses (and, for the COW
/// test, a child copy that changes), so that none of the tests above can pass vacuously.
fn skipped_calls_are_reported_as_stale_accesses() {
    const ROUNDS: u64 = 5;
    for call in [Call::Munmap, Call::MprotectReadOnly, Call::Ftruncate, Call::MadvDontneed] {
        run_in_child(|| {
            let o = run_rounds(call, true, ROUNDS, STUCK);
            assert_eq!(o.rounds, ROUNDS);
            // Every judged write succeeds, so each is stale (after MADV_DONTNEED the
            // reads of values written before it are).
            assert!(o.stale >= ROUNDS * worker_count() as u64, "{call:?} skipped: {o:?}");
            assert_eq!(o.after_faults, 0, "{call:?} skipped: {o:?}");
        });
    }
    run_in_child(|| {
        let (rounds, problems, _, _) = run_cow_rounds(true, ROUNDS, STUCK);
        assert!(rounds >= 1 && !problems.is_empty(), "fork skipped: no problem found in {rounds} rounds");
        assert!(
            problems.iter().any(|p| p.contains("marker")) && problems.iter().any(|p| p.contains("written after fork")),
            "fork skipped: {problems:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Storms
// ---------------------------------------------------------------------------------------

/// How long the storm runs.
const STORM: Duration = Duration::from_millis(2000);

/// Fork a child that checks its copy of `page` and exits with what it found; wait.
fn storm_fork(page: usize, i: u64) -> Result<(), String> {
    word(page, 0).store(i, Ordering::Relaxed);
    let pid = fork_child(|| {
        let ok = word(page, 0).load(Ordering::Relaxed) == i;
        word(page, 0).store(!i, Ordering::Relaxed);
        if ok {
            7
        } else {
            8
        }
    });
    match wait_child(pid) {
        Exit::Code(7) if word(page, 0).load(Ordering::Relaxed) == i => Ok(()),
        e => Err(format!("fork {i}: child ended {e:?}, parent's word {:#x}", word(page, 0).load(Ordering::Relaxed))),
    }
}

/// mmap 1..8 pages, write and check them, unmap.
fn storm_mmap(i: u64) -> Result<(), String> {
    let pages = 1 + (i % 8) as usize;
    let a = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .map_err(|e| format!("mmap: {e}"))?;
    for p in 0..pages {
        word(a, p * PAGE).store(i + p as u64, Ordering::Relaxed);
    }
    let bad = (0..pages).find(|&p| word(a, p * PAGE).load(Ordering::Relaxed) != i + p as u64);
    munmap(a, pages * PAGE).map_err(|e| format!("munmap: {e}"))?;
    bad.map_or(Ok(()), |p| Err(format!("mmap {i}: page {p} lost its word")))
}

/// Write-protects the middle page of a three-page region (splitting its VMA), checks it
/// still reads what was written, makes it writable again (merging) and writes it.
fn storm_mprotect(region: usize, i: u64) -> Result<(), String> {
    let mid = region + PAGE;
    sys!(SYS_mprotect, mid, PAGE, PROT_READ).map_err(|e| format!("mprotect RO: {e}"))?;
    let seen = word(mid, 0).load(Ordering::Relaxed);
    sys!(SYS_mprotect, mid, PAGE, PROT_READ | PROT_WRITE).map_err(|e| format!("mprotect RW: {e}"))?;
    if seen != i {
        return Err(format!("mprotect {i}: the read-only page read {seen}"));
    }
    word(mid, 0).store(i + 1, Ordering::Relaxed);
    Ok(())
}

/// Starts a thread that writes a shared cell, joins it, checks the cell.
fn storm_thread(i: u64) -> Result<(), String> {
    let cell = Arc::new(AtomicU64::new(0));
    let c = cell.clone();
    std::thread::spawn(move || c.store(i + 1, Ordering::Relaxed)).join().map_err(|_| "thread panicked".to_string())?;
    let v = cell.load(Ordering::Relaxed);
    (v == i + 1).then_some(()).ok_or(format!("thread {i}: wrote {v}"))
}

fn fork_mmap_mprotect_and_thread_storms_on_every_cpu_finish_intact() {
    run_in_child(|| {
        let cpus = online_cpus().clamp(2, MAX_WORKERS);
        let deadline = Instant::now() + STORM;
        let kinds = ["fork/exit/wait", "mmap/munmap", "mprotect", "thread create/join"];
        let threads: Vec<_> = (0..cpus * kinds.len())
            .map(|t| {
                std::thread::spawn(move || -> Result<(usize, u64), String> {
                    let kind = t % 4;
                    let region = mmap(0, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                        .map_err(|e| format!("mmap: {e}"))?;
                    word(region + PAGE, 0).store(0, Ordering::Relaxed);
                    let mut i = 0u64;
                    // At least one round each, however busy the CPUs are.
                    while i == 0 || Instant::now() < deadline {
                        match kind {
                            0 => storm_fork(region, i)?,
                            1 => storm_mmap(i)?,
                            2 => storm_mprotect(region, i)?,
                            _ => storm_thread(i)?,
                        }
                        i += 1;
                    }
                    munmap(region, 3 * PAGE).map_err(|e| format!("munmap: {e}"))?;
                    Ok((kind, i))
                })
            })
            .collect();
        let mut done = [0u64; 4];
        for t in threads {
            let (kind, n) = t.join().expect("storm thread panicked").unwrap_or_else(|e| panic!("{e}"));
            done[kind] += n;
        }
        println!(
            "smp: storm: {}",
            kinds.iter().zip(done).map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
        );
        for (kind, n) in kinds.iter().zip(done) {
            assert!(n >= cpus as u64, "only {n} rounds of {kind} in {STORM:?}");
        }
    });
}
