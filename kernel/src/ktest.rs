//! In-kernel tests: code that can only be checked on the real hardware
//! layer (page tables the MMU walks, the frame allocator over the real
//! memory map, interrupts). Booting with `ktest` runs them all and exits;
//! `ktest=NAME` runs one, including the deliberate-fault tests that are not
//! part of the full run (they end the kernel by design).
//!
//! Output protocol, read by `cargo xtask test`: one `ktest NAME ... ok` per
//! test, a `ktest NAME ... FAILED` from the panic handler, and a final
//! `ktest result: N passed, 0 failed`. After every test the frames in use
//! (minus heap and kernel page tables, which grow on demand) must be back at
//! their starting count: a leak fails the test.

use crate::mm::frame;
use crate::sync::SpinLock as Mutex;

pub struct KTest {
    pub name: &'static str,
    pub func: fn(),
}

/// `ktests![a, b]` builds a `&[KTest]` named after the functions.
#[macro_export]
macro_rules! ktests {
    ($($f:ident),* $(,)?) => { &[$($crate::ktest::KTest { name: stringify!($f), func: $f }),*] };
}

fn suites() -> [&'static [KTest]; 10] {
    [
        crate::cmdline::KTESTS,
        crate::mm::tests::KTESTS,
        crate::mm::fail::KTESTS,
        crate::initramfs::KTESTS,
        crate::process::exec::KTESTS,
        crate::syscall::trace::KTESTS,
        crate::leak::KTESTS,
        crate::arch::smp::tests::KTESTS,
        crate::mm::tlb::tests::KTESTS,
        crate::sync::lockdep::KTESTS,
    ]
}

/// Tests that crash the kernel on purpose; run only by name.
fn fault_tests() -> impl Iterator<Item = &'static KTest> {
    crate::mm::tests::FAULT_TESTS
        .iter()
        .chain(crate::watchdog::FAULT_TESTS)
        .chain(crate::leak::FAULT_TESTS)
        .chain(crate::sync::lockdep::FAULT_TESTS)
}

static CURRENT: Mutex<Option<&'static str>, crate::sync::order::KtestCurrent> = Mutex::new(None);

/// The test running now, for the panic handler's `FAILED` line.
pub fn current() -> Option<&'static str> {
    CURRENT.try_lock().and_then(|c| *c)
}

fn frames_in_use() -> u64 {
    frame::frames_in_use()
}

/// Runs the named test, or all when `filter` is empty. Returns (passed, failed).
pub fn run(filter: &str) -> (usize, usize) {
    let mut passed = 0;
    let mut failed = 0;
    let mut found = false;
    let all = suites();
    let candidates = all.iter().flat_map(|s| s.iter()).chain(fault_tests().filter(|_| !filter.is_empty()));
    for t in candidates {
        if !filter.is_empty() && t.name != filter {
            continue;
        }
        found = true;
        *CURRENT.lock() = Some(t.name);
        let before = frames_in_use();
        crate::watchdog::touch();
        (t.func)();
        let after = frames_in_use();
        if after != before {
            crate::println!("ktest {} ... FAILED: frames in use {} before, {} after", t.name, before, after);
            failed += 1;
        } else {
            crate::println!("ktest {} ... ok", t.name);
            passed += 1;
        }
        *CURRENT.lock() = None;
    }
    if !found {
        crate::println!("ktest {} ... FAILED: no such test", filter);
        failed += 1;
    }
    crate::println!("ktest result: {} passed, {} failed", passed, failed);
    (passed, failed)
}
