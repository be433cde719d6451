//! Local APIC timer: the periodic tick. The LAPIC timer's rate is not
//! architectural, so it is calibrated once against the PIT (1.193182 MHz),
//! read by polling channel 0 — no PIT interrupt, PIC or speaker port needed,
//! which keeps it working on `-M microvm` as well as `-M q35`. The same
//! window calibrates the TSC, the kernel's clock for log timestamps.
//! The other CPUs start their timers at the boot CPU's calibrated period
//! (Linux's `setup_secondary_APIC_clock`), and IPIs go through the xAPIC
//! interrupt command register (QEMU's TCG has no x2APIC).
//! Linux: arch/x86/kernel/apic/apic.c, ipi.c.

use super::cpu::{self, inb, outb, rdmsr};
use core::sync::atomic::{AtomicU64, Ordering};

const IA32_APIC_BASE: u32 = 0x1b;
const REG_ID: usize = 0x20;
const REG_TPR: usize = 0x80;
const REG_EOI: usize = 0xb0;
const REG_SPURIOUS: usize = 0xf0;
const REG_LVT_TIMER: usize = 0x320;
const REG_TIMER_INIT: usize = 0x380;
const REG_TIMER_CURRENT: usize = 0x390;
const REG_TIMER_DIVIDE: usize = 0x3e0;
const REG_ICR_LOW: usize = 0x300;
const REG_ICR_HIGH: usize = 0x310;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_INIT: u32 = 5 << 8;
const ICR_STARTUP: u32 = 6 << 8;
const ICR_ALL_BUT_SELF: u32 = 3 << 18;
const TIMER_PERIODIC: u32 = 1 << 17;
const LVT_MASKED: u32 = 1 << 16;

const PIT_HZ: u64 = 1_193_182;
pub const TICK_HZ: u64 = 100;

static LAPIC_BASE: AtomicU64 = AtomicU64::new(0);
/// The boot CPU's ticks (the kernel's jiffies).
static TICKS: AtomicU64 = AtomicU64::new(0);
/// The calibrated timer period (initial count at divide 16), for the other CPUs.
static PERIOD: AtomicU64 = AtomicU64::new(0);
static TSC_PER_SEC: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick, times 2^TSC_SHIFT; 0 until calibrated.
static TSC_MULT: AtomicU64 = AtomicU64::new(0);
const TSC_SHIFT: u32 = 32;
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);

/// Physical address of this CPU's local APIC registers.
pub fn lapic_phys_base() -> u64 {
    rdmsr(IA32_APIC_BASE) & 0xf_ffff_f000
}

fn write(reg: usize, value: u32) {
    let base = LAPIC_BASE.load(Ordering::Relaxed);
    // SAFETY: `base` is the uncached kernel mapping of the LAPIC page set up by `init`; the
    // register offsets are architectural and inside that page.
    unsafe { core::ptr::write_volatile((base as usize + reg) as *mut u32, value) }
}

fn read(reg: usize) -> u32 {
    let base = LAPIC_BASE.load(Ordering::Relaxed);
    // SAFETY: as for `write`.
    unsafe { core::ptr::read_volatile((base as usize + reg) as *const u32) }
}

/// Counts PIT ticks while polling channel 0 in mode 2 (rate generator), for
/// at least `pit_ticks`. Returns false if the PIT does not count (absent).
fn pit_wait(pit_ticks: u64) -> bool {
    outb(0x43, 0x34); // channel 0, lo/hi byte, mode 2
    outb(0x40, 0xff);
    outb(0x40, 0xff);
    let read_pit = || {
        outb(0x43, 0x00); // latch channel 0
        let lo = inb(0x40) as u64;
        let hi = inb(0x40) as u64;
        hi << 8 | lo
    };
    let mut last = read_pit();
    let mut elapsed = 0u64;
    let mut stuck = 0u32;
    while elapsed < pit_ticks {
        let now = read_pit();
        let delta = if now <= last { last - now } else { last + 0x10000 - now };
        if delta == 0 {
            stuck += 1;
            if stuck > 1_000_000 {
                return false;
            }
        } else {
            stuck = 0;
        }
        elapsed += delta;
        last = now;
    }
    true
}

/// Enables the LAPIC (mapped at `virt_base`) and starts the periodic tick.
pub fn init(virt_base: u64) {
    LAPIC_BASE.store(virt_base, Ordering::Relaxed);
    // Mask the legacy 8259 PICs (q35 has them); their vectors would collide with exceptions.
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    write(REG_SPURIOUS, 0x100 | super::trap::VECTOR_SPURIOUS as u32);
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INIT, u32::MAX);

    let window = PIT_HZ / 20; // 50 ms
    let tsc0 = cpu::rdtsc();
    let ok = pit_wait(window);
    let tsc1 = cpu::rdtsc();
    let lapic_elapsed = u32::MAX - read(REG_TIMER_CURRENT);
    let (lapic_per_sec, tsc_per_sec) = if ok {
        (lapic_elapsed as u64 * 20, (tsc1 - tsc0) * 20)
    } else {
        log::warn!("PIT does not count; assuming a 1 GHz TSC and 100 MHz LAPIC timer");
        (100_000_000 / 16, 1_000_000_000)
    };
    TSC_PER_SEC.store(tsc_per_sec.max(1), Ordering::Relaxed);
    TSC_MULT.store(((1_000_000_000u128 << TSC_SHIFT) / tsc_per_sec.max(1) as u128) as u64, Ordering::Relaxed);
    let period = (lapic_per_sec / TICK_HZ).clamp(1, u32::MAX as u64) as u32;
    PERIOD.store(period as u64, Ordering::Relaxed);
    write(REG_LVT_TIMER, TIMER_PERIODIC | super::trap::VECTOR_TIMER as u32);
    write(REG_TIMER_INIT, period);
    log::info!(
        "lapic id {} timer {} Hz (period {} at {} kHz), tsc {} MHz",
        read(REG_ID) >> 24,
        TICK_HZ,
        period,
        lapic_per_sec / 1000,
        tsc_per_sec / 1_000_000
    );
}

pub fn eoi() {
    if LAPIC_BASE.load(Ordering::Relaxed) != 0 {
        write(REG_EOI, 0);
    }
}

/// Enables this (secondary) CPU's LAPIC, mapped where the boot CPU's is, and starts its
/// periodic tick at the boot CPU's calibrated period: no second calibration.
pub fn init_ap() {
    write(REG_TPR, 0);
    write(REG_SPURIOUS, 0x100 | super::trap::VECTOR_SPURIOUS as u32);
    write(REG_TIMER_DIVIDE, 0x3);
    write(REG_LVT_TIMER, TIMER_PERIODIC | super::trap::VECTOR_TIMER as u32);
    write(REG_TIMER_INIT, PERIOD.load(Ordering::Relaxed).max(1) as u32);
}

/// This CPU's local APIC id, from its register.
pub fn id() -> u32 {
    read(REG_ID) >> 24
}

/// Writes the interrupt command register and waits until the LAPIC has sent it.
fn send_icr(dest_apic_id: u32, low: u32) {
    cpu::without_interrupts(|| {
        write(REG_ICR_HIGH, dest_apic_id << 24);
        write(REG_ICR_LOW, low);
        while read(REG_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
            core::hint::spin_loop();
        }
    })
}

/// A fixed-vector IPI to the CPU with local APIC id `dest`.
pub fn send_ipi(dest: u32, vector: u8) {
    send_icr(dest, ICR_LEVEL_ASSERT | vector as u32);
}

/// A fixed-vector IPI to every CPU but this one (destination shorthand).
pub fn send_ipi_all_but_self(vector: u8) {
    send_icr(0, ICR_ALL_BUT_SELF | ICR_LEVEL_ASSERT | vector as u32);
}

/// INIT to the CPU with local APIC id `dest`: it resets and waits for a startup IPI.
pub fn send_init(dest: u32) {
    send_icr(dest, ICR_INIT | ICR_LEVEL_ASSERT);
}

/// A startup IPI: the CPU starts in real mode at physical `page << 12`.
pub fn send_startup(dest: u32, page: u8) {
    send_icr(dest, ICR_STARTUP | ICR_LEVEL_ASSERT | page as u32);
}

/// Busy-waits `us` microseconds on the TSC.
pub fn udelay(us: u64) {
    let end = uptime_ns() + us * 1000;
    while uptime_ns() < end {
        core::hint::spin_loop();
    }
}

pub fn on_timer() {
    let me = super::percpu::this_cpu();
    me.ticks.fetch_add(1, Ordering::Relaxed);
    if me.index() == 0 {
        TICKS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Timer interrupts the boot CPU has taken since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Records the TSC at the kernel's first instruction, the origin of `uptime_ns`.
pub fn mark_boot() {
    TSC_AT_BOOT.store(cpu::rdtsc(), Ordering::Relaxed);
}

/// Nanoseconds since `mark_boot`; 0 until the TSC is calibrated. Computed as the vDSO
/// computes them from `tsc_clock` (`((tsc - base) * mult) >> shift`), so that a time read
/// in user space and one read by a system call never disagree.
pub fn uptime_ns() -> u64 {
    let mult = TSC_MULT.load(Ordering::Relaxed);
    let d = cpu::rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    ((d as u128 * mult as u128) >> TSC_SHIFT) as u64
}

/// The TSC clock's parameters: the TSC at boot, the multiplier and the shift that turn
/// TSC ticks into nanoseconds (Linux's clocksource `mult` and `shift`); None until the
/// TSC is calibrated.
pub fn tsc_clock() -> Option<(u64, u64, u32)> {
    let mult = TSC_MULT.load(Ordering::Relaxed);
    (mult != 0).then(|| (TSC_AT_BOOT.load(Ordering::Relaxed), mult, TSC_SHIFT))
}
