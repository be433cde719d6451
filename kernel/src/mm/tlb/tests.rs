//! In-kernel tests of user TLB shootdown (Linux has the like as kselftests only): a CPU
//! that keeps an address space loaded and caches a translation of it loses that
//! translation when another CPU unmaps the page; with the debug switch off it keeps it
//! (the negative control); a shootdown sends one request to each other CPU with the
//! address space loaded and none when only this CPU has it; the CPU mask follows the
//! CPUs' CR3 loads; a shootdown issued under a lock, with interrupts masked, completes
//! while its target spins on that lock with interrupts masked. With one CPU online the tests that need a second one return at once.
#![allow(unsafe_code)]

use super::*;
use crate::arch::percpu::MAX_CPUS;
use crate::mm::address_space::MmStruct;
use crate::mm::mmap::{do_mmap, MmapRequest, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE};
use crate::mm::{kernel_map, page, usercopy};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, AtomicUsize};

pub const KTESTS: &[crate::ktest::KTest] = crate::ktests![
    another_cpus_stale_user_translation_is_shot_down_by_munmap,
    with_shootdowns_off_another_cpu_keeps_reading_the_old_page,
    munmap_sends_one_shootdown_to_each_other_cpu_with_the_mm_loaded,
    munmap_sends_no_shootdown_when_the_mm_is_loaded_only_here,
    cpu_mask_follows_each_cpus_loaded_root,
    shootdown_under_a_lock_the_target_spins_on_with_interrupts_masked_completes,
];

/// A user address the tests map one page at.
const VA: u64 = 0x5000_0000;
const OLD: u64 = 0xaaaa_0001;
const NEW: u64 = 0xbbbb_0002;

/// Per CPU: set when its job has the address space loaded and has read `VA` once.
static READY: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Per CPU: what its job read at `VA` before and after `GO`.
static FIRST: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static SECOND: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Lets the jobs go on; whether they read `VA` again then (only if it is mapped).
static GO: AtomicBool = AtomicBool::new(false);
static READ_AGAIN: AtomicBool = AtomicBool::new(false);
/// The address space the jobs load (an `Arc<MmStruct>` the test holds until they finish).
static MM: AtomicUsize = AtomicUsize::new(0);

fn read_va() -> u64 {
    // SAFETY: the jobs read `VA` only while the test keeps it mapped in the loaded address
    // space, or (the negative control) keeps the old frame allocated under a stale entry.
    unsafe { core::ptr::read_volatile(VA as *const u64) }
}

/// On another CPU: loads the address space, caches `VA`'s translation by reading it, and
/// keeps both until `GO`; then reads again if asked, and goes back to the kernel's root.
fn hold_mm_and_read(_: usize) {
    // SAFETY: `MM` holds the address of an `MmStruct` the test keeps alive until every
    // job has finished.
    let mm = unsafe { &*(MM.load(Ordering::SeqCst) as *const MmStruct) };
    let me = percpu::cpu_id();
    mm.activate();
    FIRST[me].store(read_va(), Ordering::SeqCst);
    READY[me].store(true, Ordering::SeqCst);
    while !GO.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
    if READ_AGAIN.load(Ordering::SeqCst) {
        SECOND[me].store(read_va(), Ordering::SeqCst);
    }
    kernel_map::switch_address_space(kernel_map::kernel_root());
}

fn map_page(mm: &MmStruct, value: u64) {
    let req = MmapRequest {
        addr: VA,
        len: PAGE_SIZE,
        prot: 3,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        file: None,
        file_writable: false,
        offset: 0,
    };
    assert_eq!(do_mmap(mm, req), Ok(VA));
    usercopy::copy_to_user(mm, VA, &value.to_ne_bytes()).expect("fault the page in");
}

fn phys_of(mm: &MmStruct, va: u64) -> u64 {
    mm.page_table_lock.lock().pt.translate(&mm.phys_mem(), va).expect("mapped").phys
}

/// Starts `hold_mm_and_read` of `mm` on every CPU of `cpus` and waits until each has
/// the translation cached.
fn start_holders(mm: &Arc<MmStruct>, cpus: CpuMask, read_again: bool) {
    GO.store(false, Ordering::SeqCst);
    READ_AGAIN.store(read_again, Ordering::SeqCst);
    MM.store(Arc::as_ptr(mm) as usize, Ordering::SeqCst);
    for c in cpus.iter() {
        READY[c].store(false, Ordering::SeqCst);
        FIRST[c].store(0, Ordering::SeqCst);
        SECOND[c].store(0, Ordering::SeqCst);
        assert!(smp::start_on_idle(c, hold_mm_and_read, 0), "CPU {} took no job", c);
    }
    for c in cpus.iter() {
        while !READY[c].load(Ordering::SeqCst) {
            smp::flush_smp_call_function_queue();
            core::hint::spin_loop();
        }
        assert_eq!(FIRST[c].load(Ordering::SeqCst), OLD, "CPU {} read the page", c);
    }
}

fn finish_holders(cpus: CpuMask) {
    GO.store(true, Ordering::SeqCst);
    for c in cpus.iter() {
        smp::wait_on_idle(c);
    }
    MM.store(0, Ordering::SeqCst);
}

/// A second online CPU, if any.
fn other_cpu() -> Option<usize> {
    percpu::cpu_online_mask().iter().find(|&c| c != percpu::cpu_id())
}

/// Another CPU caches `VA` -> old page and keeps the address space loaded; this CPU
/// unmaps the page (`do_munmap`, which frees it after its flush) and maps a new one with
/// other contents at the same address; the other CPU then reads `VA`. Returns what it
/// read, with shootdowns on or off for the unmap. The old frame is held meanwhile, so a
/// stale read finds the old contents rather than a reused frame.
fn read_after_remap_on_another_cpu(cpu: usize, shootdown: bool) -> u64 {
    let mm = MmStruct::new().expect("mm");
    map_page(&mm, OLD);
    let old = phys_of(&mm, VA);
    page::get_page(old);
    let mut one = CpuMask::empty();
    one.set(cpu);
    start_holders(&mm, one, true);
    let was = set_shootdown(shootdown);
    crate::mm::munmap::do_munmap(&mm, VA, PAGE_SIZE).expect("munmap");
    set_shootdown(was);
    map_page(&mm, NEW);
    assert_ne!(phys_of(&mm, VA), old);
    finish_holders(one);
    page::put_page(old);
    assert!(!mm.cpumask().contains(cpu), "CPU {} went back to the kernel's root", cpu);
    drop(mm);
    SECOND[cpu].load(Ordering::SeqCst)
}

/// With the shootdown, the other CPU's entry went with the munmap: it walks the table
/// again and reads the new page (QEMU's TCG keeps a TLB per CPU and honours INVLPG per
/// CPU, so without the flush it would read the old one: the next test).
fn another_cpus_stale_user_translation_is_shot_down_by_munmap() {
    let Some(cpu) = other_cpu() else { return };
    assert_eq!(read_after_remap_on_another_cpu(cpu, true), NEW);
}

/// The negative control of the test above: with shootdowns off the other CPU keeps its
/// stale entry and reads the old page through it, so the test above can fail.
fn with_shootdowns_off_another_cpu_keeps_reading_the_old_page() {
    let Some(cpu) = other_cpu() else { return };
    assert_eq!(read_after_remap_on_another_cpu(cpu, false), OLD);
}

/// (ipis, pages, ranges, full) after minus before.
fn delta(after: (u64, u64, u64, u64), before: (u64, u64, u64, u64)) -> (u64, u64, u64, u64) {
    (after.0 - before.0, after.1 - before.1, after.2 - before.2, after.3 - before.3)
}

/// Every online CPU has the address space loaded (the others through their idle job, this
/// one by activating it); unmapping one page sends one shootdown request to each other
/// CPU, each carries out one single-page flush, and the address space's counters see one
/// flush per CPU, one of them local.
fn munmap_sends_one_shootdown_to_each_other_cpu_with_the_mm_loaded() {
    let me = percpu::cpu_id();
    let online = percpu::cpu_online_mask();
    let mut others = online;
    others.clear(me);
    let mm = MmStruct::new().expect("mm");
    map_page(&mm, OLD);
    start_holders(&mm, others, false);
    mm.activate();
    assert_eq!(mm.cpumask(), online);
    let sent = percpu::this_cpu().ipi_sent(IpiKind::TlbShootdown);
    let received: [u64; MAX_CPUS] = core::array::from_fn(|c| percpu::cpu(c).ipi_count(IpiKind::TlbShootdown));
    let per_cpu: [(u64, u64, u64, u64); MAX_CPUS] = core::array::from_fn(|c| percpu::cpu(c).tlb.get());
    let per_mm = mm.tlb.get();
    crate::mm::munmap::do_munmap(&mm, VA, PAGE_SIZE).expect("munmap");
    let n = others.count() as u64;
    assert_eq!(percpu::this_cpu().ipi_sent(IpiKind::TlbShootdown) - sent, n, "one request per other CPU");
    for c in others.iter() {
        assert_eq!(percpu::cpu(c).ipi_count(IpiKind::TlbShootdown) - received[c], 1, "CPU {}", c);
        assert_eq!(delta(percpu::cpu(c).tlb.get(), per_cpu[c]), (1, 1, 1, 0), "CPU {}: one remote page flush", c);
    }
    assert_eq!(delta(percpu::cpu(me).tlb.get(), per_cpu[me]), (0, 1, 1, 0), "one local page flush");
    assert_eq!(delta(mm.tlb.get(), per_mm), (n, n + 1, n + 1, 0), "the address space's flushes");
    finish_holders(others);
    kernel_map::switch_address_space(kernel_map::kernel_root());
    assert!(mm.cpumask().is_empty());
    drop(mm);
}

/// Loaded on this CPU alone, the address space is flushed here and nowhere else.
fn munmap_sends_no_shootdown_when_the_mm_is_loaded_only_here() {
    let mm = MmStruct::new().expect("mm");
    map_page(&mm, OLD);
    mm.activate();
    let mut me = CpuMask::empty();
    me.set(percpu::cpu_id());
    assert_eq!(mm.cpumask(), me);
    let sent = percpu::this_cpu().ipi_sent(IpiKind::TlbShootdown);
    let calls = percpu::this_cpu().ipi_sent(IpiKind::CallFunction);
    let per_mm = mm.tlb.get();
    crate::mm::munmap::do_munmap(&mm, VA, PAGE_SIZE).expect("munmap");
    assert_eq!(percpu::this_cpu().ipi_sent(IpiKind::TlbShootdown), sent);
    assert_eq!(percpu::this_cpu().ipi_sent(IpiKind::CallFunction), calls);
    assert_eq!(delta(mm.tlb.get(), per_mm), (0, 1, 1, 0));
    kernel_map::switch_address_space(kernel_map::kernel_root());
    assert!(mm.cpumask().is_empty());
    drop(mm);
}

/// A CPU joins an address space's mask when it loads the root and leaves it when it
/// loads another (here the kernel's), on this CPU and on another.
fn cpu_mask_follows_each_cpus_loaded_root() {
    let a = MmStruct::new().expect("mm");
    let b = MmStruct::new().expect("mm");
    map_page(&a, OLD);
    assert!(a.cpumask().is_empty() && b.cpumask().is_empty());
    let me = percpu::cpu_id();
    a.activate();
    assert!(a.cpumask().contains(me) && !b.cpumask().contains(me));
    b.activate();
    assert!(!a.cpumask().contains(me) && b.cpumask().contains(me));
    kernel_map::switch_address_space(kernel_map::kernel_root());
    assert!(b.cpumask().is_empty());
    if let Some(cpu) = other_cpu() {
        let mut one = CpuMask::empty();
        one.set(cpu);
        start_holders(&a, one, true);
        assert_eq!(a.cpumask(), one);
        finish_holders(one);
        assert!(a.cpumask().is_empty());
    }
    drop((a, b));
}

/// A lock this CPU holds while it shoots down a CPU that spins on it with interrupts
/// masked (a test lock, of the lock checker's test class).
static HELD: crate::sync::SpinLock<(), crate::sync::order::KtestOuter> = crate::sync::SpinLock::new(());
static SPINNING: AtomicBool = AtomicBool::new(false);

/// On another CPU: loads the address space, caches `VA`, then spins for `HELD` with
/// interrupts masked (no IPI gets in: only the lock spin's own call-queue runs answer).
fn hold_mm_then_spin_on_the_lock(_: usize) {
    // SAFETY: as in `hold_mm_and_read`.
    let mm = unsafe { &*(MM.load(Ordering::SeqCst) as *const MmStruct) };
    let me = percpu::cpu_id();
    mm.activate();
    FIRST[me].store(read_va(), Ordering::SeqCst);
    READY[me].store(true, Ordering::SeqCst);
    cpu::without_interrupts(|| {
        SPINNING.store(true, Ordering::SeqCst);
        drop(HELD.lock());
    });
    kernel_map::switch_address_space(kernel_map::kernel_root());
}

/// This CPU holds a lock and has interrupts masked; the other CPU, with the address
/// space loaded, spins on that lock with interrupts masked too. The shootdown still
/// completes (the spin runs the flush request) and the other CPU carried it out.
fn shootdown_under_a_lock_the_target_spins_on_with_interrupts_masked_completes() {
    let Some(cpu) = other_cpu() else { return };
    let mm = MmStruct::new().expect("mm");
    map_page(&mm, OLD);
    let root = mm.root();
    MM.store(Arc::as_ptr(&mm) as usize, Ordering::SeqCst);
    READY[cpu].store(false, Ordering::SeqCst);
    SPINNING.store(false, Ordering::SeqCst);
    let guard = HELD.lock();
    assert!(smp::start_on_idle(cpu, hold_mm_then_spin_on_the_lock, 0));
    while !(READY[cpu].load(Ordering::SeqCst) && SPINNING.load(Ordering::SeqCst)) {
        smp::flush_smp_call_function_queue();
        core::hint::spin_loop();
    }
    crate::arch::apic::udelay(2000);
    let received = percpu::cpu(cpu).ipi_count(IpiKind::TlbShootdown);
    cpu::without_interrupts(|| flush_range(root, VA, VA + PAGE_SIZE));
    assert_eq!(percpu::cpu(cpu).ipi_count(IpiKind::TlbShootdown) - received, 1, "CPU {} flushed", cpu);
    drop(guard);
    smp::wait_on_idle(cpu);
    MM.store(0, Ordering::SeqCst);
    assert!(mm.cpumask().is_empty());
    drop(mm);
}
