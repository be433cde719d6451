//! The kernel's own page tables, built from scratch (nothing is kept from the
//! boot trampoline): the direct map of RAM, the kernel image with W^X per
//! section and an unmapped guard page below the boot stack, and MMIO.

use super::frame::{self, PhysFrame, BOOT_MAPPED_LIMIT};
use super::{align_down, align_up, kernel_sections, phys_to_virt, KERNEL_VMA, MMIO_BASE, PAGE_SIZE};
use crate::arch::cpu;
use crate::arch::pvh::{BootInfo, MEMMAP_RAM};
use crate::sync::IrqMutex as Mutex;
use core::sync::atomic::{AtomicU64, Ordering};
use page_table::{MapError, Mapping, PageSize, PageTable, PhysMem, PteFlags, UnmapError};

const SIZE_2M: u64 = 2 << 20;

/// `PhysMem` over the direct map, taking table frames from the frame
/// allocator. Until the kernel's tables are live only the first 4 GiB are
/// reachable, so `limit` keeps table frames there.
pub struct KernelPhysMem {
    limit: Option<u64>,
}

/// Page-table pages in use by the kernel's own tables (for the memory summary and leak checks).
static KERNEL_TABLE_PAGES: AtomicU64 = AtomicU64::new(0);

/// Reads entry `index` of the page-table frame at `table`.
pub fn read_pte(table: u64, index: usize) -> u64 {
    assert!(index < 512 && table.is_multiple_of(PAGE_SIZE));
    // SAFETY: `table` is a page-table frame this kernel allocated (or a root), inside RAM covered
    // by the direct map; index < 512 keeps the access inside the frame.
    unsafe { core::ptr::read_volatile((phys_to_virt(table) as *const u64).add(index)) }
}

/// Writes entry `index` of the page-table frame at `table`; the caller holds
/// the lock of the page table it belongs to.
pub fn write_pte(table: u64, index: usize, value: u64) {
    assert!(index < 512 && table.is_multiple_of(PAGE_SIZE));
    // SAFETY: as for read_pte.
    unsafe { core::ptr::write_volatile((phys_to_virt(table) as *mut u64).add(index), value) }
}

/// Linux's `ptep_get_and_clear` (with any new value): the entry's final bits, including
/// ACCESSED/DIRTY a CPU set up to the exchange.
pub fn xchg_pte(table: u64, index: usize, value: u64) -> u64 {
    pte_atomic(table, index).swap(value, Ordering::SeqCst)
}

/// `lock cmpxchg` on an entry: Ok(old) if it held `old` and now holds `new`, else Err(the
/// value found).
pub fn cmpxchg_pte(table: u64, index: usize, old: u64, new: u64) -> Result<u64, u64> {
    pte_atomic(table, index).compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
}

fn pte_atomic(table: u64, index: usize) -> &'static AtomicU64 {
    assert!(index < 512 && table.is_multiple_of(PAGE_SIZE));
    // SAFETY: as for read_pte: a page-table frame, reached through the direct map, 8-byte
    // aligned; every concurrent writer (the kernel and the CPU's page walker) uses atomic
    // accesses of the same size on it.
    unsafe { AtomicU64::from_ptr((phys_to_virt(table) as *mut u64).add(index)) }
}

impl PhysMem for KernelPhysMem {
    fn read_pte(&self, table: u64, index: usize) -> u64 {
        read_pte(table, index)
    }

    fn write_pte(&mut self, table: u64, index: usize, value: u64) {
        write_pte(table, index, value)
    }

    fn xchg_pte(&mut self, table: u64, index: usize, value: u64) -> u64 {
        xchg_pte(table, index, value)
    }

    fn cmpxchg_pte(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<u64, u64> {
        cmpxchg_pte(table, index, old, new)
    }

    fn alloc_table(&mut self, _level: usize) -> Option<u64> {
        let f = frame::alloc_frames_nofail(0, self.limit)?;
        frame::zero_frame(f);
        KERNEL_TABLE_PAGES.fetch_add(1, Ordering::Relaxed);
        Some(f.addr())
    }

    fn free_table(&mut self, table: u64, _level: usize) {
        KERNEL_TABLE_PAGES.fetch_sub(1, Ordering::Relaxed);
        frame::free_frames(PhysFrame(table), 0);
    }
}

static KERNEL_PT: Mutex<Option<PageTable>, crate::sync::order::KernelPageTable> = Mutex::new(None);

pub fn kernel_table_pages() -> u64 {
    KERNEL_TABLE_PAGES.load(Ordering::Relaxed)
}

fn map_or_die(pt: &mut PageTable, mem: &mut KernelPhysMem, va: u64, pa: u64, size: PageSize, flags: PteFlags) {
    if let Err(e) = pt.map(mem, va, pa, size, flags) {
        panic!("kernel map {:#x} -> {:#x} ({:?}) failed: {:?}", va, pa, size, e);
    }
}

/// Builds the kernel page tables, switches CR3 to them and enables global pages.
pub fn init(boot: &BootInfo) {
    let mut mem = KernelPhysMem { limit: Some(BOOT_MAPPED_LIMIT) };
    let mut pt = PageTable::new(&mut mem).expect("no memory for the kernel PML4");

    // One PDPT per kernel-half PML4 slot, so that every address space that
    // copies slots 256..512 sees later kernel mappings (heap growth, MMIO).
    for slot in 256..512 {
        let pdpt = mem.alloc_table(3).expect("no memory for kernel PDPTs");
        mem.write_pte(pt.root(), slot, pdpt | (PteFlags::PRESENT | PteFlags::WRITABLE).bits());
    }

    // Direct map of RAM: 2 MiB pages where aligned, 4 KiB at the edges.
    let rw_nx = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_EXECUTE | PteFlags::GLOBAL;
    for e in boot.memmap.iter().filter(|e| e.kind == MEMMAP_RAM) {
        let (start, end) = (align_down(e.addr, PAGE_SIZE), align_up(e.addr + e.size, PAGE_SIZE));
        let mut pa = start;
        while pa < end {
            let (size, step) = if pa % SIZE_2M == 0 && pa + SIZE_2M <= end {
                (PageSize::Size2M, SIZE_2M)
            } else {
                (PageSize::Size4K, PAGE_SIZE)
            };
            match pt.map(&mut mem, phys_to_virt(pa), pa, size, rw_nx) {
                Ok(()) | Err(MapError::AlreadyMapped) => {} // overlapping map entries
                Err(e) => panic!("direct map of {:#x} failed: {:?}", pa, e),
            }
            pa += step;
        }
    }

    // The kernel image, W^X: text RX, rodata R, data+bss RW; the guard page stays unmapped.
    let s = kernel_sections();
    let sections = [
        (s.text, PteFlags::PRESENT | PteFlags::GLOBAL),
        (s.rodata, PteFlags::PRESENT | PteFlags::GLOBAL | PteFlags::NO_EXECUTE),
        (s.data, rw_nx),
    ];
    for ((start, end), flags) in sections {
        for va in (start..end).step_by(PAGE_SIZE as usize) {
            if va != s.stack_guard {
                map_or_die(&mut pt, &mut mem, va, va - KERNEL_VMA, PageSize::Size4K, flags);
            }
        }
    }

    // SAFETY: the new tables map the running code (text), the boot stack and all data the kernel
    // uses, and the direct map through which BootInfo-referenced memory is read from now on.
    unsafe { cpu::write_cr3(pt.root()) };
    enable_global_pages();
    *KERNEL_PT.lock() = Some(pt);
}

fn enable_global_pages() {
    // SAFETY: CR4.PGE only keeps GLOBAL translations across CR3 writes; only kernel-half
    // mappings, which are the same in every address space, are GLOBAL.
    unsafe { core::arch::asm!("mov {t}, cr4", "or {t}, 1 << 7", "mov cr4, {t}", t = out(reg) _, options(nostack)) };
}

/// Runs `f` with the kernel page table and a `PhysMem` for it, under the page-table lock.
pub fn with_kernel_pt<R>(f: impl FnOnce(&mut PageTable, &mut KernelPhysMem) -> R) -> R {
    let mut guard = KERNEL_PT.lock();
    let pt = guard.as_mut().expect("kernel page table not initialized");
    f(pt, &mut KernelPhysMem { limit: None })
}

static NEXT_MMIO: AtomicU64 = AtomicU64::new(MMIO_BASE);

/// Maps `len` bytes of device registers at physical `pa` uncached; returns the virtual address.
pub fn map_mmio(pa: u64, len: u64) -> u64 {
    let (start, end) = (align_down(pa, PAGE_SIZE), align_up(pa + len, PAGE_SIZE));
    let base = NEXT_MMIO.fetch_add(end - start, Ordering::Relaxed);
    let flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_CACHE | PteFlags::NO_EXECUTE | PteFlags::GLOBAL;
    with_kernel_pt(|pt, mem| {
        for off in (0..end - start).step_by(PAGE_SIZE as usize) {
            map_or_die(pt, mem, base + off, start + off, PageSize::Size4K, flags);
        }
    });
    base + (pa - start)
}

/// Maps one 4 KiB kernel page (used by the heap). Fails only on exhaustion.
pub fn map_kernel_page(va: u64, pa: u64, flags: PteFlags) -> Result<(), MapError> {
    with_kernel_pt(|pt, mem| pt.map(mem, va, pa, PageSize::Size4K, flags | PteFlags::GLOBAL))
}

/// Unmaps one 4 KiB kernel page and flushes it from every CPU's TLB (a shootdown that
/// returns once all have), so the caller may free the frame.
pub fn unmap_kernel_page(va: u64) -> Result<Mapping, UnmapError> {
    let r = with_kernel_pt(|pt, mem| pt.unmap(mem, va, PageSize::Size4K));
    crate::arch::smp::flush_tlb_kernel_range(va, va + PAGE_SIZE);
    r
}

pub fn translate(va: u64) -> Option<Mapping> {
    with_kernel_pt(|pt, mem| pt.translate(mem, va))
}

/// The kernel's PML4 (the address space of kernel threads and the idle loop).
pub fn kernel_root() -> u64 {
    with_kernel_pt(|pt, _| pt.root())
}

/// Copies the kernel half (PML4 slots 256..512) into a new user root. The
/// slots point at PDPTs allocated at boot, so they never change afterwards.
pub fn copy_kernel_half(root: u64) {
    let kroot = kernel_root();
    for i in 256..512 {
        write_pte(root, i, read_pte(kroot, i));
    }
}

/// Loads CR3 with a root built by `copy_kernel_half` (or the kernel's).
pub fn switch_address_space(root: u64) {
    // SAFETY: every root this kernel builds maps the kernel half identically, so the running
    // code, stack and data stay mapped.
    unsafe { cpu::write_cr3(root) }
}
