//! In-kernel tests of the other CPUs: bring-up from the MADT, per-CPU identity, call
//! functions (also two CPUs calling each other with interrupts masked) and the kernel TLB
//! shootdown, checked against a stale translation. They hold at one CPU too (nothing to
//! call), and a boot with `-smp N` must show N CPUs: the runner checks the `smp: N CPUs
//! online` line against its `--smp`.

use super::super::percpu::{self, MAX_CPUS};
use super::super::{acpi, apic, cpu};
use super::*;
use crate::ktests;
use crate::mm::frame;
use page_table::PteFlags;

pub const KTESTS: &[crate::ktest::KTest] = ktests![
    every_madt_cpu_is_online,
    each_cpu_has_its_own_id_and_apic_id,
    secondary_cpus_take_their_own_timer_ticks,
    call_function_runs_once_on_every_other_cpu,
    two_cpus_calling_each_other_with_interrupts_masked_both_finish,
    kernel_range_shootdown_drops_stale_translations_on_every_cpu,
];

fn every_madt_cpu_is_online() {
    let madt = acpi::cpu_apic_ids();
    assert!(!madt.is_empty(), "no CPU found in the ACPI MADT");
    assert!(madt.contains(&percpu::this_cpu().apic_id()), "the boot CPU is not in the MADT");
    assert_eq!(percpu::nr_cpus_online(), madt.len().min(MAX_CPUS), "MADT lists {:?}", madt);
    assert!(percpu::smp_booted());
    assert_eq!(percpu::cpu_id(), 0, "ktests run on the boot CPU");
}

/// Per CPU, what it saw of itself: its `cpu_id() + 1` (0: not run) and its LAPIC's id.
static SEEN_ID: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static SEEN_APIC: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

fn record_identity(slot: usize) {
    let me = percpu::cpu_id();
    SEEN_ID[slot].store(me + 1, Ordering::SeqCst);
    SEEN_APIC[slot].store(apic::id() as usize, Ordering::SeqCst);
}

fn each_cpu_has_its_own_id_and_apic_id() {
    let online = percpu::cpu_online_mask();
    for c in online.iter() {
        SEEN_ID[c].store(0, Ordering::SeqCst);
        smp_call_function_single(c, record_identity, c).expect("online CPU refused a call");
    }
    let madt = acpi::cpu_apic_ids();
    let mut apics = CpuMask::empty();
    for c in online.iter() {
        assert_eq!(SEEN_ID[c].load(Ordering::SeqCst), c + 1, "a call for CPU {} ran on another CPU", c);
        let apic_id = SEEN_APIC[c].load(Ordering::SeqCst) as u32;
        assert_eq!(apic_id, percpu::cpu(c).apic_id(), "CPU {}: LAPIC register and CPUID disagree", c);
        assert!(madt.contains(&apic_id), "CPU {}'s APIC id {} is not in the MADT", c, apic_id);
        assert!(!apics.contains(apic_id as usize), "APIC id {} twice", apic_id);
        apics.set(apic_id as usize);
        assert_eq!(percpu::cpu_of_apic_id(apic_id), Some(c));
    }
}

fn secondary_cpus_take_their_own_timer_ticks() {
    let online = percpu::cpu_online_mask();
    let before: [u64; MAX_CPUS] = core::array::from_fn(|c| percpu::cpu(c).ticks.load(Ordering::Relaxed));
    let boot_before = apic::ticks();
    let deadline = apic::uptime_ns() + 2_000_000_000;
    while online.iter().any(|c| percpu::cpu(c).ticks.load(Ordering::Relaxed) < before[c] + 3)
        && apic::uptime_ns() < deadline
    {
        cpu::halt();
    }
    for c in online.iter() {
        assert!(percpu::cpu(c).ticks.load(Ordering::Relaxed) >= before[c] + 3, "CPU {} took no ticks in 2 s", c);
    }
    // The kernel's tick count is the boot CPU's alone.
    assert_eq!(apic::ticks() - boot_before, percpu::cpu(0).ticks.load(Ordering::Relaxed) - before[0]);
}

static HITS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

fn count_hit(expected_arg: usize) {
    assert_eq!(expected_arg, 0x5eed);
    HITS[percpu::cpu_id()].fetch_add(1, Ordering::SeqCst);
}

fn call_function_runs_once_on_every_other_cpu() {
    let online = percpu::cpu_online_mask();
    for h in &HITS {
        h.store(0, Ordering::SeqCst);
    }
    let received: [u64; MAX_CPUS] = core::array::from_fn(|c| percpu::cpu(c).ipi_received.load(Ordering::SeqCst));
    let sent = percpu::this_cpu().ipi_sent.load(Ordering::SeqCst);
    smp_call_function_many(online, count_hit, 0x5eed);
    // Acknowledged means done: every hit is visible as soon as the call returns.
    for c in online.iter() {
        assert_eq!(HITS[c].load(Ordering::SeqCst), if c == 0 { 0 } else { 1 }, "CPU {}", c);
        if c != 0 {
            assert!(percpu::cpu(c).ipi_received.load(Ordering::SeqCst) > received[c], "CPU {} got no IPI", c);
        }
    }
    assert_eq!(percpu::this_cpu().ipi_sent.load(Ordering::SeqCst) - sent, online.count() as u64 - 1);
    assert_eq!(smp_call_function_single(MAX_CPUS - 1, count_hit, 0x5eed).is_err(), !online.contains(MAX_CPUS - 1));
}

const CROSS_ROUNDS: usize = 50;
static CROSS_HITS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

fn cross_hit(_: usize) {
    CROSS_HITS[percpu::cpu_id()].fetch_add(1, Ordering::SeqCst);
}

/// On a secondary CPU: calls the boot CPU over and over with interrupts masked.
fn call_boot_cpu_repeatedly(rounds: usize) {
    cpu::without_interrupts(|| {
        for _ in 0..rounds {
            smp_call_function_single(0, cross_hit, 0).expect("boot CPU offline");
        }
    });
}

/// Both CPUs spin for acknowledgements with interrupts masked at the same time; each
/// answers the other's requests while it waits, so both finish every round.
fn two_cpus_calling_each_other_with_interrupts_masked_both_finish() {
    let Some(other) = percpu::cpu_online_mask().iter().find(|&c| c != 0) else { return };
    for h in &CROSS_HITS {
        h.store(0, Ordering::SeqCst);
    }
    IDLE_ARG[other].store(CROSS_ROUNDS, Ordering::Relaxed);
    IDLE_JOB[other].store(call_boot_cpu_repeatedly as fn(usize) as usize, Ordering::Release);
    cpu::without_interrupts(|| {
        // Wakes the other CPU's idle loop, and starts calling it while it calls us.
        for _ in 0..CROSS_ROUNDS {
            smp_call_function_single(other, cross_hit, 0).expect("CPU went offline");
        }
        while IDLE_JOB[other].load(Ordering::Acquire) != 0 {
            flush_smp_call_function_queue();
            core::hint::spin_loop();
        }
    });
    assert_eq!(CROSS_HITS[other].load(Ordering::SeqCst), CROSS_ROUNDS);
    assert_eq!(CROSS_HITS[0].load(Ordering::SeqCst), CROSS_ROUNDS);
}

/// A kernel-half address no other code uses (past `mm::tests`'s).
const SHOOTDOWN_VA: u64 = crate::mm::MMIO_BASE + (257 << 30);
/// Per CPU: the value it read at `SHOOTDOWN_VA`.
static READ_BACK: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn read_shootdown_va(_: usize) {
    // SAFETY: the test maps SHOOTDOWN_VA before every call that reads it and waits for the
    // call; a stale translation still points at a frame the test holds.
    let v = unsafe { core::ptr::read_volatile(SHOOTDOWN_VA as *const u64) };
    READ_BACK[percpu::cpu_id()].store(v, Ordering::SeqCst);
}

/// Every CPU caches a translation of a kernel page to frame A; the page is unmapped
/// (which shoots it down) and mapped again to frame B; every CPU must then read B's
/// contents. Without the shootdown the others would read A through their stale entries
/// (QEMU's TCG keeps a per-CPU TLB and honours INVLPG per CPU).
fn kernel_range_shootdown_drops_stale_translations_on_every_cpu() {
    let online = percpu::cpu_online_mask();
    let a = frame::alloc_zeroed_frame().expect("frame");
    let b = frame::alloc_zeroed_frame().expect("frame");
    // SAFETY: both frames are this test's, reached through the direct map.
    unsafe {
        (phys_to_virt(a.addr()) as *mut u64).write_volatile(0xaaaa);
        (phys_to_virt(b.addr()) as *mut u64).write_volatile(0xbbbb);
    }
    let flags = PteFlags::PRESENT | PteFlags::NO_EXECUTE;
    kernel_map::map_kernel_page(SHOOTDOWN_VA, a.addr(), flags).expect("map");
    on_each_cpu(read_shootdown_va, 0);
    for c in online.iter() {
        assert_eq!(READ_BACK[c].load(Ordering::SeqCst), 0xaaaa, "CPU {} before", c);
    }
    let generation_before = KERNEL_FLUSH_GEN.load(Ordering::SeqCst);
    kernel_map::unmap_kernel_page(SHOOTDOWN_VA).expect("unmap");
    let generation = KERNEL_FLUSH_GEN.load(Ordering::SeqCst);
    assert!(generation > generation_before, "the unmap sent no shootdown");
    for c in online.iter() {
        assert!(
            percpu::cpu(c).tlb_flush_gen.load(Ordering::SeqCst) >= generation,
            "CPU {} missed flush {}",
            c,
            generation
        );
    }
    kernel_map::map_kernel_page(SHOOTDOWN_VA, b.addr(), flags).expect("map");
    on_each_cpu(read_shootdown_va, 0);
    let stale: CpuMask =
        CpuMask(online.iter().filter(|&c| READ_BACK[c].load(Ordering::SeqCst) != 0xbbbb).fold(0, |m, c| m | 1 << c));
    kernel_map::unmap_kernel_page(SHOOTDOWN_VA).expect("unmap");
    frame::free_frames(a, 0);
    frame::free_frames(b, 0);
    assert!(stale.is_empty(), "CPUs {:?} read through a stale translation", stale);
}
