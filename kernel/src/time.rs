//! Clocks: CLOCK_MONOTONIC from the calibrated TSC, CLOCK_REALTIME as the
//! CMOS RTC's time at boot plus the monotonic time since.

use crate::fs::vfs::Timespec;
use core::sync::atomic::{AtomicI64, Ordering};

// The clock ids of clock_gettime and timer_create (uapi linux/time.h).
pub const CLOCK_REALTIME: u32 = 0;
pub const CLOCK_MONOTONIC: u32 = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: u32 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: u32 = 3;
pub const CLOCK_MONOTONIC_RAW: u32 = 4;
pub const CLOCK_REALTIME_COARSE: u32 = 5;
pub const CLOCK_MONOTONIC_COARSE: u32 = 6;
pub const CLOCK_BOOTTIME: u32 = 7;
pub const CLOCK_REALTIME_ALARM: u32 = 8;
pub const CLOCK_BOOTTIME_ALARM: u32 = 9;
/// International Atomic Time: CLOCK_REALTIME plus the TAI offset, which nothing here sets
/// (adjtimex's ADJ_TAI), so 0.
pub const CLOCK_TAI: u32 = 11;
pub const TIMER_ABSTIME: u32 = 1;

static BOOT_EPOCH: AtomicI64 = AtomicI64::new(0);
/// Nanoseconds added to CLOCK_REALTIME by settimeofday/clock_settime.
static REALTIME_OFFSET: AtomicI64 = AtomicI64::new(0);

pub fn init() {
    BOOT_EPOCH.store(crate::arch::rtc::read_epoch_seconds().unwrap_or(0), Ordering::Relaxed);
}

/// Publishes the clocks to the vDSO's data page (`update_vsyscall`): once the TSC is
/// calibrated, and whenever CLOCK_REALTIME is set.
pub fn update_vsyscall() {
    if let Some((base, mult, shift)) = crate::arch::apic::tsc_clock() {
        let offset = BOOT_EPOCH.load(Ordering::Relaxed) * 1_000_000_000 + REALTIME_OFFSET.load(Ordering::Relaxed);
        crate::mm::vdso::publish_clock(base, mult, shift, offset);
    }
}

pub fn monotonic_ns() -> u64 {
    crate::arch::apic::uptime_ns()
}

pub fn realtime_ns() -> i64 {
    BOOT_EPOCH.load(Ordering::Relaxed) * 1_000_000_000 + monotonic_ns() as i64 + REALTIME_OFFSET.load(Ordering::Relaxed)
}

/// Times CLOCK_REALTIME was set (timerfd's TFD_TIMER_CANCEL_ON_SET).
static CLOCK_SET: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

pub fn clock_set_count() -> u64 {
    CLOCK_SET.load(Ordering::SeqCst)
}

pub fn set_realtime_ns(ns: i64) {
    CLOCK_SET.fetch_add(1, Ordering::SeqCst);
    REALTIME_OFFSET.store(ns - (realtime_ns() - REALTIME_OFFSET.load(Ordering::Relaxed)), Ordering::Relaxed);
    update_vsyscall();
}

pub fn to_timespec(ns: i64) -> Timespec {
    Timespec { sec: ns.div_euclid(1_000_000_000), nsec: ns.rem_euclid(1_000_000_000) }
}

pub fn realtime() -> Timespec {
    to_timespec(realtime_ns())
}
