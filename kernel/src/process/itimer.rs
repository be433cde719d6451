//! ITIMER_REAL and alarm(): a per-process deadline that sends SIGALRM.
//! Expiry is checked in task context (on the way back to user mode and in
//! the idle loop, at least once per tick), never in the interrupt handler,
//! so signal delivery takes its locks the ordinary way.

use super::signal::{self, SigInfo};
use super::task::Process;
use crate::sync::SpinLock as Mutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// (deadline ns since boot, interval ns) of each armed process.
static ARMED: Mutex<Vec<(Arc<Process>, u64, u64)>, crate::sync::order::ItimerArmed> = Mutex::new(Vec::new());
/// Earliest armed deadline (u64::MAX when none), for a cheap check.
static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);

fn recompute(list: &[(Arc<Process>, u64, u64)]) {
    NEXT.store(list.iter().map(|e| e.1).min().unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Current (remaining, interval) of `p`'s timer, in ns; (0, 0) if disarmed.
pub fn get(p: &Arc<Process>) -> (u64, u64) {
    let now = crate::time::monotonic_ns();
    ARMED.lock().iter().find(|e| Arc::ptr_eq(&e.0, p)).map(|e| (e.1.saturating_sub(now).max(1), e.2)).unwrap_or((0, 0))
}

/// Arms (value > 0) or disarms `p`'s timer; returns the previous setting.
pub fn set(p: &Arc<Process>, value: u64, interval: u64) -> (u64, u64) {
    let old = get(p);
    let mut list = ARMED.lock();
    list.retain(|e| !Arc::ptr_eq(&e.0, p));
    if value > 0 {
        list.push((p.clone(), crate::time::monotonic_ns().saturating_add(value), interval));
    }
    recompute(&list);
    old
}

/// Sends SIGALRM for every expired timer and re-arms periodic ones.
pub fn check_expired() {
    // No timer armed: not even the clock is read (the common case, on every return).
    let next = NEXT.load(Ordering::Relaxed);
    if next == u64::MAX || crate::time::monotonic_ns() < next {
        return;
    }
    let now = crate::time::monotonic_ns();
    let mut fire = Vec::new();
    {
        let mut list = ARMED.lock();
        list.retain_mut(|(p, deadline, interval)| {
            if p.is_zombie() {
                return false;
            }
            if *deadline > now {
                return true;
            }
            fire.push(p.clone());
            if *interval == 0 {
                return false;
            }
            // The next expiry after `now`, computed rather than stepped to: the
            // interval may be 1 us or near u64::MAX (past it, the timer never fires).
            let missed = (now - *deadline) / *interval + 1;
            *deadline = deadline.saturating_add(missed.saturating_mul(*interval));
            true
        });
        recompute(&list);
    }
    for p in fire {
        signal::send_to_process(&p, SigInfo::new(signal::SIGALRM, signal::SI_KERNEL));
    }
}

/// Gives back the armed list's spare capacity (`leak`'s shrinkers).
pub fn shrink() {
    ARMED.lock().shrink_to_fit();
}
