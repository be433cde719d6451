//! The lock-order checker: Linux's kernel/locking/lockdep.c reduced to lock levels
//! (as Redox's `src/sync/ordered.rs`, checked at run time). Every lock has a class
//! with a level (`order.rs`); a CPU may take a lock only if its level is above the
//! level of every lock that CPU already holds (`lock_nested` orders two locks of one
//! class by subclass). In a checking build (`ENABLED`) each CPU records the locks it holds in a small fixed
//! array, and an out-of-order acquisition panics naming both locks and their levels,
//! before it spins: the report comes also where the acquisition would deadlock.
//!
//! Interrupt handlers: a handler's acquisitions are checked against the locks of the
//! code it interrupted, which are still held on the CPU. The timer interrupt takes
//! the run queue and the sleeper list (and so the heap below them); it can arrive
//! whenever interrupts are enabled, that is under any `SpinLock`, so those two
//! classes sit above every `SpinLock` class, and every lock taken under them is an
//! `IrqMutex` (interrupts masked: the handler cannot arrive under it on this CPU).
//! A violation in a handler is reported like any other.
//!
//! A context switch happens with no lock held (`assert_none_held`, from `schedule`):
//! the kernel is non-preemptive, and a lock held across a switch would be held by a
//! task that no longer runs on the CPU whose record names it.
//!
//! Try-locks (panic and fault reports) are exempt and unrecorded. After the first
//! report the checker switches itself off (Linux's `debug_locks_off`), so that the
//! panic's own output is not checked again.

use core::panic::Location;
use core::sync::atomic::{AtomicBool, Ordering};

/// The checker runs in debug builds (`cargo xtask test` boots one), not in release ones
/// (the benchmarks').
pub const ENABLED: bool = cfg!(debug_assertions);

/// Locks one CPU may hold at once (the deepest nesting in the kernel is about 6).
const MAX_HELD: usize = 24;
/// CPUs with a record.
const MAX_CPUS: usize = 64;

static OFF: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy)]
pub struct Held {
    pub name: &'static str,
    pub level: u16,
    pub subclass: u8,
    /// The lock's address: releases find their entry by it.
    pub addr: usize,
    /// Where it was taken.
    pub at: &'static Location<'static>,
}

pub struct HeldLocks {
    locks: [Option<Held>; MAX_HELD],
    depth: usize,
}

impl HeldLocks {
    pub const fn new() -> HeldLocks {
        HeldLocks { locks: [None; MAX_HELD], depth: 0 }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Held> {
        self.locks[..self.depth].iter().flatten()
    }

    /// The held lock that forbids taking `new`: one whose (level, subclass) is not
    /// below the new one's.
    pub fn conflict(&self, new: &Held) -> Option<Held> {
        self.iter().find(|h| (h.level, h.subclass) >= (new.level, new.subclass)).copied()
    }

    /// Records `new`; false if the record is full.
    pub fn push(&mut self, new: Held) -> bool {
        if self.depth == MAX_HELD {
            return false;
        }
        self.locks[self.depth] = Some(new);
        self.depth += 1;
        true
    }

    /// Forgets the most recent entry for the lock at `addr` (locks may be released
    /// in any order).
    pub fn remove(&mut self, addr: usize) {
        if let Some(i) = (0..self.depth).rev().find(|&i| self.locks[i].is_some_and(|h| h.addr == addr)) {
            self.locks.copy_within(i + 1..self.depth, i);
            self.depth -= 1;
            self.locks[self.depth] = None;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.depth == 0
    }
}

impl Default for HeldLocks {
    fn default() -> Self {
        Self::new()
    }
}

/// Each CPU's record. Only its own CPU touches it, with interrupts masked, so its
/// lock (an untracked `spin::Mutex`) is never contended.
static HELD: [spin::Mutex<HeldLocks>; MAX_CPUS] = [const { spin::Mutex::new(HeldLocks::new()) }; MAX_CPUS];

/// This CPU's slot in `HELD`: its number.
fn this_cpu() -> usize {
    crate::arch::percpu::cpu_id()
}

fn active() -> bool {
    ENABLED && !OFF.load(Ordering::Relaxed)
}

/// Checks and records the acquisition of the lock at `addr` (class `name`, `level`).
pub fn acquire(name: &'static str, level: u16, subclass: u8, addr: usize, at: &'static Location<'static>) {
    if !active() {
        return;
    }
    let new = Held { name, level, subclass, addr, at };
    let verdict = crate::arch::cpu::without_interrupts(|| {
        let mut held = HELD[this_cpu()].lock();
        if let Some(old) = held.conflict(&new) {
            return Err(Some(old));
        }
        if held.push(new) {
            Ok(())
        } else {
            Err(None::<Held>)
        }
    });
    match verdict {
        Ok(()) => {}
        Err(Some(old)) => report(
            format_args!(
                "taking {} (level {}.{}) at {} while holding {} (level {}.{}) taken at {}",
                new.name, new.level, new.subclass, new.at, old.name, old.level, old.subclass, old.at
            ),
            Some(&new),
        ),
        Err(None) => report(format_args!("more than {MAX_HELD} locks held, taking {}", new.name), Some(&new)),
    }
}

/// Records the release of the lock at `addr`.
pub fn release(addr: usize) {
    if !active() {
        return;
    }
    crate::arch::cpu::without_interrupts(|| HELD[this_cpu()].lock().remove(addr));
}

/// Panics if this CPU holds any lock: `what` (a context switch) must run with none.
pub fn assert_none_held(what: &str) {
    if !active() {
        return;
    }
    let empty = crate::arch::cpu::without_interrupts(|| HELD[this_cpu()].lock().is_empty());
    if !empty {
        report(format_args!("{what} with a lock held"), None);
    }
}

/// Switches the checker off and panics with `msg` and the locks this CPU holds.
fn report(msg: core::fmt::Arguments, taking: Option<&Held>) -> ! {
    OFF.store(true, Ordering::Relaxed);
    let cpu = this_cpu();
    let held = crate::arch::cpu::without_interrupts(|| {
        let h = HELD[cpu].lock();
        let mut list = [None; MAX_HELD];
        for (slot, e) in list.iter_mut().zip(h.iter()) {
            *slot = Some(*e);
        }
        list
    });
    crate::arch::serial::write_fmt_emergency(format_args!("\nlockdep: CPU {cpu} holds:\n"));
    for h in held.iter().flatten() {
        crate::arch::serial::write_fmt_emergency(format_args!(
            "lockdep:   {} (level {}.{}) {:#x} taken at {}\n",
            h.name, h.level, h.subclass, h.addr, h.at
        ));
    }
    if let Some(t) = taking {
        crate::arch::serial::write_fmt_emergency(format_args!(
            "lockdep: and takes {} (level {}.{}) {:#x} at {}\n",
            t.name, t.level, t.subclass, t.addr, t.at
        ));
    }
    panic!("lock order violation on CPU {cpu}: {msg}");
}

// The checker's rules, on a record of its own (the CPU's record is left alone).
fn held(name: &'static str, level: u16, subclass: u8, addr: usize) -> Held {
    Held { name, level, subclass, addr, at: Location::caller() }
}

fn lockdep_allows_a_higher_level_and_refuses_an_equal_or_lower_one() {
    let mut h = HeldLocks::new();
    assert!(h.push(held("a", 10, 0, 1)));
    assert!(h.conflict(&held("b", 20, 0, 2)).is_none());
    assert!(h.push(held("b", 20, 0, 2)));
    assert_eq!(h.conflict(&held("c", 15, 0, 3)).map(|c| c.name), Some("b"));
    assert_eq!(h.conflict(&held("b2", 20, 0, 4)).map(|c| c.name), Some("b"), "a second lock of one class");
    assert_eq!(h.conflict(&held("a", 10, 0, 1)).map(|c| c.name), Some("a"), "the same lock again");
}

fn lockdep_orders_one_class_by_subclass() {
    let mut h = HeldLocks::new();
    assert!(h.push(held("mm", 10, 0, 1)));
    assert!(h.conflict(&held("mm", 10, 1, 2)).is_none());
    assert!(h.push(held("mm", 10, 1, 2)));
    assert!(h.conflict(&held("mm", 10, 0, 3)).is_some());
}

fn lockdep_forgets_released_locks_in_any_order() {
    let mut h = HeldLocks::new();
    for (i, l) in [10, 20, 30].into_iter().enumerate() {
        assert!(h.push(held("x", l, 0, i + 1)));
    }
    h.remove(2);
    assert_eq!(h.iter().map(|e| e.level).collect::<alloc::vec::Vec<_>>(), [10, 30]);
    h.remove(3);
    h.remove(1);
    assert!(h.is_empty());
    for i in 0..MAX_HELD {
        assert!(h.push(held("x", i as u16, 0, i + 1)));
    }
    assert!(!h.push(held("x", 999, 0, 999)), "a full record refuses");
}

/// The CPU's record follows real locks: nesting in order is accepted, and each
/// release takes its entry out.
fn lockdep_records_the_locks_this_cpu_holds() {
    use super::order::{KtestInner, KtestOuter};
    static OUTER: super::SpinLock<u32, KtestOuter> = super::SpinLock::new(0);
    static INNER: super::IrqMutex<u32, KtestInner> = super::IrqMutex::new(0);
    let depth = || crate::arch::cpu::without_interrupts(|| HELD[this_cpu()].lock().iter().count());
    let before = depth();
    {
        let _o = OUTER.lock();
        let _i = INNER.lock();
        if ENABLED {
            assert_eq!(depth(), before + 2);
        }
        assert!(OUTER.try_lock().is_none());
    }
    assert_eq!(depth(), before);
}

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![
    lockdep_allows_a_higher_level_and_refuses_an_equal_or_lower_one,
    lockdep_orders_one_class_by_subclass,
    lockdep_forgets_released_locks_in_any_order,
    lockdep_records_the_locks_this_cpu_holds,
];

pub(crate) const FAULT_TESTS: &[crate::ktest::KTest] = crate::ktests![fault_lock_inversion];

/// Takes two locks against their order: the checker must panic naming both.
fn fault_lock_inversion() {
    use super::order::{KtestInner, KtestOuter};
    static OUTER: super::SpinLock<u32, KtestOuter> = super::SpinLock::new(0);
    static INNER: super::IrqMutex<u32, KtestInner> = super::IrqMutex::new(0);
    let _i = INNER.lock();
    let _o = OUTER.lock();
    if !ENABLED {
        panic!("lockdep is off in this build");
    }
}
