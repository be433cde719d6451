//! In-kernel tests of the memory core: what the host tests of `frame_alloc`
//! and `page_table` cannot show — that the MMU agrees with our tables.

use super::address_space::{MmInner, MmStruct};
use super::frame::{self, PhysFrame};
use super::{heap, kernel_map, kernel_sections, phys_to_virt, PAGE_SIZE};
use crate::arch::{apic, cpu};
use alloc::sync::Arc;
use alloc::vec::Vec;
use page_table::PteFlags;

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![
    frames_are_distinct_writable_and_returned,
    frame_exhaustion_is_an_error_and_everything_comes_back,
    process_allocations_stop_at_the_min_watermark_and_kernel_ones_go_below,
    kernel_mapping_is_seen_by_the_mmu_and_unmap_frees_tables,
    kernel_image_is_mapped_w_xor_x_with_a_stack_guard,
    direct_map_covers_all_ram,
    heap_grows_beyond_its_initial_size,
    timer_interrupts_tick,
    vma_open_close_hooks_track_every_piece,
    grafted_page_table_is_shared_and_only_its_owner_frees_it,
    owner_munmap_inside_a_grafted_table_unmaps_its_pages_for_every_grafter,
    owner_dying_first_leaves_grafters_an_empty_table_until_they_go,
    guest_write_fault_on_a_write_protected_page_in_a_graft_fails_and_changes_nothing,
    mmu_gather_frees_pages_and_tables_only_after_its_flush,
    page_cache_lookup_holds_its_page_after_removal_until_dropped,
    tmpfs_truncate_sets_the_size_and_leaves_held_pages_to_their_holders,
];

pub(crate) const FAULT_TESTS: &[crate::ktest::KTest] =
    crate::ktests![fault_null_write, fault_stack_overflow, fault_panic, fault_hang];

fn write_u64(va: u64, v: u64) {
    // SAFETY: callers pass addresses of memory they own and have mapped writable.
    unsafe { core::ptr::write_volatile(va as *mut u64, v) }
}

fn read_u64(va: u64) -> u64 {
    // SAFETY: callers pass addresses of mapped memory they own.
    unsafe { core::ptr::read_volatile(va as *const u64) }
}

fn frames_are_distinct_writable_and_returned() {
    let free_before = frame::stats().free;
    let frames: Vec<PhysFrame> = (0..256).map(|_| frame::alloc_frames(0, None).expect("frame")).collect();
    assert_eq!(frame::stats().free, free_before - 256);
    let mut sorted = frames.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), frames.len(), "a frame was handed out twice");
    let (_, kernel_end) = super::kernel_phys_range();
    for (i, f) in frames.iter().enumerate() {
        assert!(f.addr() % PAGE_SIZE == 0 && f.addr() >= kernel_end, "bad frame {:#x}", f.addr());
        assert!(frame::is_allocated(*f));
        write_u64(phys_to_virt(f.addr()), 0xfeed_0000 + i as u64);
    }
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(read_u64(phys_to_virt(f.addr())), 0xfeed_0000 + i as u64);
    }
    for f in frames {
        frame::free_frames(f, 0);
    }
    assert_eq!(frame::stats().free, free_before);
}

fn frame_exhaustion_is_an_error_and_everything_comes_back() {
    // Take every free block of order 9 and up, then every single frame: the
    // allocator must say "no" rather than panic, and give it all back.
    let mut held: Vec<(PhysFrame, usize)> = Vec::with_capacity(1 << 16);
    let free_before = frame::stats().free; // after the Vec may have grown the heap
    for order in (0..=9).rev() {
        while let Some(f) = frame::alloc_frames(order, None) {
            if held.len() == held.capacity() {
                frame::free_frames(f, order);
                break;
            }
            held.push((f, order));
        }
    }
    let left = frame::stats().free;
    assert!(left < free_before / 8, "allocator kept {} of {} frames back", left, free_before);
    for (f, order) in held {
        frame::free_frames(f, order);
    }
    assert_eq!(frame::stats().free, free_before);
}

fn process_allocations_stop_at_the_min_watermark_and_kernel_ones_go_below() {
    let mut held: Vec<(PhysFrame, usize)> = Vec::with_capacity(1 << 16);
    let free_before = frame::stats().free;
    let min = frame::min_free_frames();
    assert!(min >= 32 && min < free_before / 16, "min watermark {} of {} free frames", min, free_before);
    for order in (0..=9).rev() {
        while let Some(f) = frame::alloc_frames_above_min(order) {
            assert!(held.len() < held.capacity(), "more blocks than the test can hold");
            held.push((f, order));
        }
    }
    assert_eq!(frame::stats().free, min, "process allocations must leave exactly the reserve");
    let kernel = frame::alloc_frames(0, None).expect("the kernel may take the reserve");
    assert_eq!(frame::stats().free, min - 1);
    frame::free_frames(kernel, 0);
    for (f, order) in held {
        frame::free_frames(f, order);
    }
    assert_eq!(frame::stats().free, free_before);
}

/// A kernel-half address no one else uses (well past the MMIO mappings).
const TEST_VA: u64 = super::MMIO_BASE + (256 << 30);

fn kernel_mapping_is_seen_by_the_mmu_and_unmap_frees_tables() {
    let tables_before = kernel_map::kernel_table_pages();
    let f = frame::alloc_zeroed_frame().expect("frame");
    let flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_EXECUTE;
    kernel_map::map_kernel_page(TEST_VA, f.addr(), flags).expect("map");
    // A fresh PD and PT were needed under the preallocated PDPT.
    assert_eq!(kernel_map::kernel_table_pages(), tables_before + 2);
    write_u64(TEST_VA + 8, 0x5ca1_ab1e);
    assert_eq!(read_u64(phys_to_virt(f.addr()) + 8), 0x5ca1_ab1e, "MMU did not write through our mapping");
    let m = kernel_map::translate(TEST_VA + 8).expect("translate");
    assert_eq!(m.phys, f.addr());
    let m = kernel_map::unmap_kernel_page(TEST_VA).expect("unmap");
    assert_eq!(m.phys, f.addr());
    assert!(kernel_map::translate(TEST_VA).is_none());
    assert_eq!(kernel_map::kernel_table_pages(), tables_before, "empty tables were not freed");
    frame::free_frames(f, 0);
}

fn kernel_image_is_mapped_w_xor_x_with_a_stack_guard() {
    let s = kernel_sections();
    let check = |va: u64, writable: bool, nx: bool| {
        let m = kernel_map::translate(va).unwrap_or_else(|| panic!("{:#x} unmapped", va));
        assert_eq!(m.flags.contains(PteFlags::WRITABLE), writable, "{:#x} {:?}", va, m.flags);
        assert_eq!(m.flags.contains(PteFlags::NO_EXECUTE), nx, "{:#x} {:?}", va, m.flags);
    };
    for va in (s.text.0..s.text.1).step_by(PAGE_SIZE as usize) {
        check(va, false, false);
    }
    for va in (s.rodata.0..s.rodata.1).step_by(PAGE_SIZE as usize) {
        check(va, false, true);
    }
    for va in (s.data.0..s.data.1).step_by(PAGE_SIZE as usize).filter(|&va| va != s.stack_guard) {
        check(va, true, true);
    }
    assert!(kernel_map::translate(s.stack_guard).is_none(), "stack guard page is mapped");
    // CR3 is the kernel's own table, not the trampoline's.
    assert_eq!(cpu::read_cr3() & !0xfff, kernel_map::with_kernel_pt(|pt, _| pt.root()));
    // The boot identity map is gone.
    assert!(kernel_map::translate(0x100000).is_none());
}

fn direct_map_covers_all_ram() {
    let boot = crate::boot_info();
    for e in boot.memmap.iter().filter(|e| e.kind == crate::arch::pvh::MEMMAP_RAM) {
        let first = super::align_up(e.addr, PAGE_SIZE);
        let last = super::align_down(e.addr + e.size - 1, PAGE_SIZE);
        for pa in [first, last] {
            let m =
                kernel_map::translate(phys_to_virt(pa)).unwrap_or_else(|| panic!("RAM {:#x} not direct-mapped", pa));
            assert_eq!(m.phys + (phys_to_virt(pa) & (m.size.bytes() - 1)), pa);
            assert!(m.flags.contains(PteFlags::NO_EXECUTE | PteFlags::WRITABLE));
        }
    }
}

fn heap_grows_beyond_its_initial_size() {
    let before = heap::stats();
    let n = (before.mapped_bytes as usize / 8) * 2;
    let mut v: Vec<u64> = Vec::with_capacity(n);
    v.extend((0..n as u64).map(|i| i * 3));
    assert!(heap::stats().mapped_bytes > before.mapped_bytes);
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
    drop(v);
    assert_eq!(heap::stats().used_bytes, before.used_bytes);
}

fn timer_interrupts_tick() {
    assert!(cpu::interrupts_enabled());
    let start = apic::ticks();
    let deadline = apic::uptime_ns() + 2_000_000_000;
    while apic::ticks() < start + 3 && apic::uptime_ns() < deadline {
        cpu::halt();
    }
    assert!(apic::ticks() >= start + 3, "no timer interrupts in 2 s");
}

/// Writes through a null pointer: must be reported as a page fault
/// (vector 14, CR2=0) and end the run with a failure.
fn fault_null_write() {
    write_u64(0, 0xdead);
}

/// Recurses until the boot stack hits its guard page: the page fault cannot
/// be delivered on the same stack, so the CPU raises a double fault, which
/// runs on its own IST stack and is reported (vector 8).
fn fault_stack_overflow() {
    #[inline(never)]
    #[allow(unconditional_recursion)]
    fn recurse(depth: u64) -> u64 {
        let buf = [depth; 64];
        let r = recurse(core::hint::black_box(depth + 1));
        core::hint::black_box(&buf);
        r + buf[0]
    }
    recurse(0);
}

/// A failed assertion: the panic handler must name the test and fail the run.
fn fault_panic() {
    panic!("deliberate panic from a ktest");
}

/// Spins with interrupts masked: the runner's timeout must end the run.
fn fault_hang() {
    cpu::disable_interrupts();
    loop {
        core::hint::spin_loop();
    }
}

/// Counts the VMAs that refer to an object, as SysV SHM's attach count will.
struct CountingOps(core::sync::atomic::AtomicI64);

impl super::vma::VmaOps for CountingOps {
    fn open(&self, _vma: &super::vma::Vma) {
        self.0.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }
    fn close(&self, _vma: &super::vma::Vma) {
        self.0.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// A read-write anonymous VMA of `pages` pages at `base`, private unless `flags` says
/// `SHARED`, with the hooks `ops`.
fn anon_vma(
    base: u64,
    pages: u64,
    flags: super::vma::VmFlags,
    ops: Option<Arc<dyn super::vma::VmaOps>>,
) -> super::vma::Vma {
    use super::vma::{Backend, Prot, Vma};
    Vma {
        live: crate::leak::VMAS.live(),
        start: base,
        end: base + pages * PAGE_SIZE,
        prot: Prot::READ | Prot::WRITE,
        flags: flags | super::vma::VmFlags::MAYWRITE,
        pgoff: 0,
        backend: Backend::Anonymous,
        ops,
    }
}

/// A fresh address space whose one VMA is `anon_vma(base, pages, flags, ops)`.
fn mm_with_anon_vma(
    base: u64,
    pages: u64,
    flags: super::vma::VmFlags,
    ops: Option<Arc<dyn super::vma::VmaOps>>,
) -> Arc<MmStruct> {
    let mm = MmStruct::new().expect("mm");
    mm.mmap_lock.write().insert_vma(anon_vma(base, pages, flags, ops));
    mm
}

/// Write-faults in the `pages` pages at `base` of `mm`, whose VMAs `inner` holds exclusive.
fn fault_in_for_write(mm: &MmStruct, inner: &mut MmInner, base: u64, pages: u64) {
    for i in 0..pages {
        super::fault::fault_exclusive(mm, inner, base + i * PAGE_SIZE, super::fault::Access::WRITE).expect("fault in");
    }
}

/// open/close run for every VMA that comes and goes: split pieces, fork
/// copies, partial unmaps, mremap moves, and the teardown of an address space.
fn vma_open_close_hooks_track_every_piece() {
    use core::sync::atomic::Ordering::Relaxed;
    let ops = Arc::new(CountingOps(core::sync::atomic::AtomicI64::new(0)));
    let count = || ops.0.load(Relaxed);
    let base = 0x4000_0000;
    let mm = mm_with_anon_vma(base, 4, super::vma::VmFlags::SHARED, Some(ops.clone()));
    assert_eq!(count(), 1);
    super::mprotect::do_mprotect(&mm, base + PAGE_SIZE, PAGE_SIZE, 1).unwrap();
    assert_eq!(count(), 3, "split into three pieces, never merged back (they have hooks)");
    let child = mm.fork().expect("fork");
    assert_eq!(count(), 6);
    super::munmap::do_munmap(&child, base + PAGE_SIZE, PAGE_SIZE).unwrap();
    assert_eq!(count(), 5);
    drop(child);
    assert_eq!(count(), 3);
    let moved = super::mremap::do_mremap(&mm, base + 2 * PAGE_SIZE, PAGE_SIZE, 2 * PAGE_SIZE, 1, 0).unwrap();
    assert_ne!(moved, base + 2 * PAGE_SIZE);
    // The moved page was split off the 2-page piece (open), left it (close)
    // and arrived elsewhere (open): pieces [0,1), [1,2), [3,4) and the moved one.
    assert_eq!(count(), 4);
    drop(mm);
    assert_eq!(count(), 0);
}

/// A host address space with 8 private anonymous pages faulted in at `base`, whose PTE table
/// a guest address space then grafts; returns (host, guest, the PTE table).
fn host_with_a_pte_table_grafted_into_a_guest(base: u64) -> (Arc<MmStruct>, Arc<MmStruct>, u64) {
    let host = mm_with_anon_vma(base, 8, super::vma::VmFlags::empty(), None);
    fault_in_for_write(&host, &mut host.mmap_lock.write(), base, 8);
    let pt = {
        let mem = host.phys_mem();
        let pml4e = page_table::Pte(mem_read(&mem, host.root(), page_table::table_index(base, 4)));
        let pdpte = page_table::Pte(mem_read(&mem, pml4e.addr(), page_table::table_index(base, 3)));
        let pde = page_table::Pte(mem_read(&mem, pdpte.addr(), page_table::table_index(base, 2)));
        pde.addr()
    };
    let guest = MmStruct::new().expect("guest mm");
    let flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::USER;
    guest.graft_table(base, 1, pt, flags, None).expect("graft");
    (host, guest, pt)
}

/// The page-table sharing mshare stands on: a guest address space grafts a
/// host's page-table page; both translate through it; the guest's teardown
/// drops only its reference, never the host's table or pages, and the page-table
/// page counts charge the table to its owner alone.
fn grafted_page_table_is_shared_and_only_its_owner_frees_it() {
    use core::sync::atomic::Ordering::Relaxed;
    let base = 0x4000_0000u64;
    let guest_tables = MmStruct::new().expect("mm").pt_pages.load(Relaxed);
    let (host, guest, pt) = host_with_a_pte_table_grafted_into_a_guest(base);
    let host_tables = host.pt_pages.load(Relaxed);
    {
        let g = guest.page_table_lock.lock();
        let m = g.pt.translate(&guest.phys_mem(), base + 3 * PAGE_SIZE).expect("guest sees the host's page");
        let hm = host.page_table_lock.lock_nested(1).pt.translate(&host.phys_mem(), base + 3 * PAGE_SIZE).unwrap();
        assert_eq!(m.phys, hm.phys);
        assert_eq!(g.grafts.len(), 1, "the guest records its graft");
        assert_eq!(g.grafts[0].owner, host.owner());
    }
    // The guest paid for its PDPT and PD, not for the shared PT.
    assert_eq!(guest.pt_pages.load(Relaxed), guest_tables + 2);
    assert_eq!(super::page::page_count(pt), 2);
    drop(guest);
    assert_eq!(super::page::page_count(pt), 1, "the guest dropped only its share");
    assert_eq!(host.pt_pages.load(Relaxed), host_tables);
    let mem = host.phys_mem();
    assert!(host.page_table_lock.lock().pt.translate(&mem, base + 7 * PAGE_SIZE).is_some(), "host mappings intact");
    drop(host);
}

/// The owner of a grafted PTE table unmaps part of it (munmap): its entries go in the
/// guest too, the host's RSS drops and the pages are freed; the table stays while grafted.
fn owner_munmap_inside_a_grafted_table_unmaps_its_pages_for_every_grafter() {
    use super::page;
    use core::sync::atomic::Ordering::Relaxed;
    let base = 0x4000_0000u64;
    let (host, guest, pt) = host_with_a_pte_table_grafted_into_a_guest(base);
    let (user_pages, host_tables) = (page::user_pages(), host.pt_pages.load(Relaxed));
    assert_eq!(host.rss_total(), 8);
    super::munmap::do_munmap(&host, base, 4 * PAGE_SIZE).expect("munmap");
    {
        let h = host.page_table_lock.lock();
        let g = guest.page_table_lock.lock_nested(1);
        let (hmem, gmem) = (host.phys_mem(), guest.phys_mem());
        assert!(h.pt.translate(&hmem, base).is_none(), "the owner's unmap clears its entries");
        assert!(g.pt.translate(&gmem, base + 3 * PAGE_SIZE).is_none(), "and the guest sees it");
        assert!(g.pt.translate(&gmem, base + 4 * PAGE_SIZE).is_some());
        assert_eq!(host.rss_total(), 4);
    }
    assert_eq!(page::user_pages(), user_pages - 4, "the unmapped pages are freed");
    // Emptied by its owner, the table stays (linked and charged) while the guest holds it.
    super::munmap::do_munmap(&host, base + 4 * PAGE_SIZE, 4 * PAGE_SIZE).expect("munmap");
    assert_eq!(host.rss_total(), 0);
    assert_eq!(page::page_count(pt), 2);
    assert_eq!(host.pt_pages.load(Relaxed), host_tables);
    drop(guest);
    assert_eq!(page::page_count(pt), 1);
    drop(host);
}

/// The owner of a grafted table dies first: its teardown empties the table for the
/// guest, which keeps it until its own teardown, where it is freed.
fn owner_dying_first_leaves_grafters_an_empty_table_until_they_go() {
    use super::page;
    let base = 0x4000_0000u64;
    let (host, guest, pt) = host_with_a_pte_table_grafted_into_a_guest(base);
    let (user_pages, frames) = (page::user_pages(), frame::frames_in_use());
    drop(host);
    assert_eq!(page::user_pages(), user_pages - 8, "the owner's pages went with it");
    assert_eq!(page::page_count(pt), 1, "the guest's reference keeps the table");
    {
        let g = guest.page_table_lock.lock();
        let mem = guest.phys_mem();
        assert!((0..8).all(|i| g.pt.translate(&mem, base + i * PAGE_SIZE).is_none()));
    }
    let frames_after_host = frame::frames_in_use();
    assert!(frames_after_host < frames);
    drop(guest);
    assert!(frame::frames_in_use() < frames_after_host, "the table went with the last graft");
}

/// A guest's write fault on a page its graft maps read-only would have to change the
/// owner's entry (reuse or copy-on-write): it fails with an access error (no panic, no
/// OOM path) and the owner's entry and page stay as they were.
fn guest_write_fault_on_a_write_protected_page_in_a_graft_fails_and_changes_nothing() {
    use super::fault::{fault_exclusive, Access, FaultError};
    let base = 0x4000_0000u64;
    let (host, guest, _) = host_with_a_pte_table_grafted_into_a_guest(base);
    super::mprotect::do_mprotect(&host, base, 8 * PAGE_SIZE, 1).expect("mprotect PROT_READ");
    let before = host.page_table_lock.lock().pt.translate(&host.phys_mem(), base).expect("mapped");
    assert!(!before.flags.contains(PteFlags::WRITABLE));
    let user_pages = super::page::user_pages();
    {
        let mut g = guest.mmap_lock.write();
        g.insert_vma(anon_vma(base, 8, super::vma::VmFlags::empty(), None));
        let r = fault_exclusive(&guest, &mut g, base, Access::WRITE);
        assert!(matches!(r, Err(FaultError::AccErr)), "the owner's entry is not the guest's to change");
        assert_eq!(guest.rss_total(), 0);
    }
    assert_eq!(host.page_table_lock.lock().pt.translate(&host.phys_mem(), base), Some(before));
    assert_eq!(super::page::user_pages(), user_pages, "no page was copied");
    drop(guest);
    drop(host);
}

fn mem_read(mem: &super::address_space::UserPhysMem<'_>, table: u64, index: usize) -> u64 {
    page_table::PhysMem::read_pte(mem, table, index)
}

/// An unmap under an `MmuGather` takes the pages and the emptied page-table pages out of the
/// address space and its counters at once, but they stay allocated until the gather's
/// flush; after `finish` they are free.
fn mmu_gather_frees_pages_and_tables_only_after_its_flush() {
    use super::page;
    use core::sync::atomic::Ordering::Relaxed;
    let base = 0x4000_0000;
    let mm = mm_with_anon_vma(base, 2, super::vma::VmFlags::empty(), None);
    let mut inner = mm.mmap_lock.write();
    let tables_before = mm.pt_pages.load(Relaxed);
    fault_in_for_write(&mm, &mut inner, base, 2);
    let mem = mm.phys_mem();
    let translate = |va| mm.page_table_lock.lock().pt.translate(&mem, va);
    let pages: Vec<u64> = (0..2).map(|i| translate(base + i * PAGE_SIZE).unwrap().phys).collect();
    let pt = mem_read(&mem, mem_read(&mem, mem_read(&mem, mm.root(), 0) & !0xfff, 1) & !0xfff, 0) & !0xfff;
    let user_pages = page::user_pages();
    let tlb = super::tlb::MmuGather::for_mm(&mm);
    mm.zap_range(&tlb, base, base + 2 * PAGE_SIZE);
    assert!(translate(base).is_none());
    assert_eq!(mm.rss_total(), 0);
    assert_eq!(mm.pt_pages.load(Relaxed), tables_before, "the emptied tables are uncharged at once");
    assert!(pages.iter().all(|&p| page::page_count(p) == 1), "pages held until the flush");
    assert_eq!(page::page_count(pt), 1, "the PTE table is held until the flush");
    assert_eq!(page::user_pages(), user_pages);
    tlb.finish();
    assert_eq!(page::user_pages(), user_pages - 2, "freed after the flush");
    assert!(pages.iter().all(|&p| page::page_count(p) == 0));
    drop(inner);
}

/// The page cache hands out pages with a reference taken under its lock: a page
/// removed from the cache (truncation, hole punch) stays allocated, with its
/// contents, for whoever holds a handle, and is freed when the last one drops.
fn page_cache_lookup_holds_its_page_after_removal_until_dropped() {
    use super::page::{user_pages, PageKind};
    use super::page_cache::PageCache;
    let (frames, pages) = (frame::frames_in_use(), user_pages());
    let cache = PageCache::new(PageKind::File, false);
    let created = cache.find_or_create(3).expect("page");
    assert_eq!(created.count(), 2, "the cache's reference and the caller's");
    created.write(100, b"still here");
    let found = cache.find(3).expect("cached");
    assert!(found.same(&created));
    assert_eq!(found.count(), 3);
    assert!(cache.find(4).is_none() && cache.contains(3) && !cache.contains(4));
    assert_eq!(cache.truncate_from(0), 1);
    assert!(cache.find(3).is_none());
    assert_eq!(found.count(), 2, "only the handles are left");
    drop(created);
    assert_eq!(user_pages(), pages + 1, "a held page outlives its removal");
    let mut buf = [0u8; 10];
    found.read(100, &mut buf);
    assert_eq!(&buf, b"still here");
    drop(found);
    assert_eq!(user_pages(), pages, "the last handle freed it");
    let kept = cache.find_or_create(7).expect("page");
    assert_eq!(cache.remove_range(0, 8), 1);
    assert_eq!(kept.count(), 1);
    drop(kept);
    drop(cache);
    assert_eq!((frame::frames_in_use(), user_pages()), (frames, pages));
}

/// A shrinking tmpfs truncate publishes the new size, drops the cache's pages past
/// it and zeroes the tail of the last page, while a reader holding a dropped page
/// (a copy in progress) keeps its frame until it lets go; nothing past the end is
/// left in the cache.
fn tmpfs_truncate_sets_the_size_and_leaves_held_pages_to_their_holders() {
    let frames = frame::frames_in_use();
    let file = crate::fs::tmpfs::new_shmem_file(0, None);
    let data = alloc::vec![0x5au8; 3 * PAGE_SIZE as usize];
    assert_eq!(file.write_at(0, &data).unwrap(), data.len());
    let cache = file.page_cache().expect("tmpfs has a page cache");
    assert_eq!(cache.nr_pages(), 3);
    let held = cache.find(2).expect("page 2");
    file.truncate(PAGE_SIZE + 10).unwrap();
    assert_eq!(file.metadata().size, PAGE_SIZE + 10);
    assert_eq!(cache.nr_pages(), 2, "pages wholly past the end are gone");
    assert_eq!(held.count(), 1, "the reader's reference alone keeps the page");
    let mut buf = [0u8; 4];
    held.read(0, &mut buf);
    assert_eq!(buf, [0x5a; 4], "its contents untouched while held");
    drop(held);
    let mut tail = [0xffu8; 16];
    assert_eq!(file.read_at(PAGE_SIZE, &mut tail).unwrap(), 10);
    assert_eq!(tail[..10], [0x5a; 10]);
    file.truncate(2 * PAGE_SIZE).unwrap();
    assert_eq!(file.read_at(PAGE_SIZE + 10, &mut tail).unwrap(), 16);
    assert_eq!(tail, [0; 16], "the truncated tail reads as zeroes after growing again");
    drop(file);
    assert_eq!(frame::frames_in_use(), frames);
}
