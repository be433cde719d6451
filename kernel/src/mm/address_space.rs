//! The address space of a process (Linux's `mm_struct`): page tables, VMAs,
//! brk, and counters. It can exist without a task (an mshare host later).
//!
//! Lock order: task → `MmStruct::inner` → kernel page table → frame allocator.
#![deny(unsafe_code)]

use super::page;
use super::vma::{Prot, Vma};
use super::PAGE_SIZE;
use crate::arch::cpu;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use page_table::{PageTable, PhysMem, PteFlags};
use spin::Mutex;

/// Lowest address user mappings may use (Linux's default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x10000;
/// End of the user half (`TASK_SIZE` on x86_64 with 4-level paging).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Top of the initial stack (no randomization: deterministic runs).
pub const STACK_TOP: u64 = TASK_SIZE;
pub const STACK_SIZE: u64 = 8 << 20;
/// Where top-down mmap searches start: below the stack and its gap (Linux's mmap_base).
pub const MMAP_BASE: u64 = STACK_TOP - STACK_SIZE - (128 << 20);

/// PTE and PMD tables of every user address space (the `PageTables` of /proc/meminfo,
/// Linux 6.1's NR_PAGETABLE: its PUD and PGD pages are not counted).
pub static USER_PT_PAGES: AtomicU64 = AtomicU64::new(0);

/// Whether a table of `level` (1 = PT .. 4 = PML4) counts in an mm's VmPTE (Linux's
/// `mm_pgtables_bytes`: PTE, PMD and PUD tables, never the PGD).
fn counts_in_vmpte(level: usize) -> bool {
    level <= 3
}

/// Whether a table of `level` counts in `PageTables` (`pgtable_pte_page_ctor` and
/// `pgtable_pmd_page_ctor` account NR_PAGETABLE in 6.1; PUD pages are plain pages).
fn counts_in_page_tables(level: usize) -> bool {
    level <= 2
}

/// `PhysMem` for user page tables: frames from the allocator, counted per mm
/// (VmPTE) and globally (PageTables) by level so accounting stays exact.
pub struct UserPhysMem<'a> {
    pub pt_pages: &'a AtomicU64,
}

impl PhysMem for UserPhysMem<'_> {
    fn read_pte(&self, table: u64, index: usize) -> u64 {
        super::kernel_map::read_pte(table, index)
    }

    fn write_pte(&mut self, table: u64, index: usize, value: u64) {
        super::kernel_map::write_pte(table, index, value)
    }

    fn alloc_table(&mut self, level: usize) -> Option<u64> {
        let t = page::alloc_table_page()?;
        if counts_in_vmpte(level) {
            self.pt_pages.fetch_add(1, Ordering::Relaxed);
        }
        if counts_in_page_tables(level) {
            USER_PT_PAGES.fetch_add(1, Ordering::Relaxed);
        }
        Some(t)
    }

    /// Drops this address space's reference. A table grafted from another
    /// address space only loses a share; its owner's count and frame stay.
    fn free_table(&mut self, table: u64, level: usize) {
        if page::page_count(table) > 1 {
            page::put_table_page(table);
            return;
        }
        if counts_in_vmpte(level) {
            self.pt_pages.fetch_sub(1, Ordering::Relaxed);
        }
        if counts_in_page_tables(level) {
            USER_PT_PAGES.fetch_sub(1, Ordering::Relaxed);
        }
        page::put_table_page(table);
    }

    fn table_is_shared(&self, table: u64) -> bool {
        page::page_count(table) > 1
    }
}

pub struct MmInner {
    pub pt: PageTable,
    /// VMAs keyed by start address; never overlapping.
    pub vmas: super::vma_tree::VmaTree,
    pub start_brk: u64,
    pub brk: u64,
    /// Resident pages mapped in this mm by kind (`PageKind` as index):
    /// anon, file, shmem (Linux's MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES).
    pub rss: [u64; 3],
    /// Argument and environment strings on the initial stack (for /proc later).
    pub arg_range: (u64, u64),
    pub env_range: (u64, u64),
    /// The executable (Linux's `mm->exe_file`), for /proc/pid/exe.
    pub exe: Option<alloc::string::String>,
    /// Flags every new VMA gets (mlockall(MCL_FUTURE) sets VM_LOCKED).
    pub def_flags: super::vma::VmFlags,
    /// Peaks of RSS and of mapped pages (VmHWM, VmPeak).
    pub hiwater_rss: u64,
    pub hiwater_vm: u64,
}

pub struct MmStruct {
    pub inner: Mutex<MmInner>,
    /// Page-table pages of this mm counted in VmPTE: PTE, PMD and PUD tables (not the root).
    pub pt_pages: AtomicU64,
    pub id: u64,
}

static NEXT_MM_ID: AtomicU64 = AtomicU64::new(1);

impl MmStruct {
    /// An empty address space whose kernel half is the kernel's.
    pub fn new() -> Option<Arc<MmStruct>> {
        let pt_pages = AtomicU64::new(0);
        let pt = PageTable::new(&mut UserPhysMem { pt_pages: &pt_pages })?;
        super::kernel_map::copy_kernel_half(pt.root());
        let id = NEXT_MM_ID.fetch_add(1, Ordering::Relaxed);
        let mm = Arc::new_cyclic(|me| MmStruct {
            inner: Mutex::new(MmInner {
                pt,
                vmas: super::vma_tree::VmaTree::new(me.clone(), id),
                start_brk: 0,
                brk: 0,
                rss: [0; 3],
                arg_range: (0, 0),
                env_range: (0, 0),
                exe: None,
                def_flags: super::vma::VmFlags::empty(),
                hiwater_rss: 0,
                hiwater_vm: 0,
            }),
            pt_pages,
            id,
        });
        Some(mm)
    }

    pub fn root(&self) -> u64 {
        self.inner.lock().pt.root()
    }

    /// Makes this the address space of the CPU.
    pub fn activate(&self) {
        let root = self.root();
        if cpu::read_cr3() & !0xfff != root {
            super::kernel_map::switch_address_space(root);
        }
    }

    /// Linux's `dup_mmap`: the child gets every VMA (but VM_DONTFORK ones, and
    /// VM_WIPEONFORK ones empty);
    /// private writable pages become copy-on-write in both, shared pages are
    /// shared. Fails with None on memory exhaustion (the partial child is dropped).
    pub fn fork(&self) -> Option<Arc<MmStruct>> {
        let child = MmStruct::new()?;
        let mut parent = self.inner.lock();
        let mut c = child.inner.lock();
        c.start_brk = parent.start_brk;
        c.brk = parent.brk;
        c.arg_range = parent.arg_range;
        c.env_range = parent.env_range;
        c.exe = parent.exe.clone();
        let parent = &mut *parent;
        let mut pmem = UserPhysMem { pt_pages: &self.pt_pages };
        let mut cmem = UserPhysMem { pt_pages: &child.pt_pages };
        for vma in parent.vmas.values().filter(|v| !v.flags.contains(super::vma::VmFlags::DONTFORK)) {
            // Memory locks are not inherited (mlock(2)).
            let mut child_vma = vma.clone();
            child_vma.flags.remove(super::vma::VmFlags::LOCKED | super::vma::VmFlags::LOCKONFAULT);
            child_vma.open();
            c.vmas.insert(vma.start, child_vma);
            if vma.flags.contains(super::vma::VmFlags::WIPEONFORK) {
                continue;
            }
            let mut va = vma.start;
            while let Some((at, m)) = parent.pt.next_mapped(&pmem, va, vma.end) {
                let mut flags = m.flags;
                if !vma.is_shared() && flags.contains(PteFlags::WRITABLE) {
                    flags.remove(PteFlags::WRITABLE);
                    let _ = parent.pt.protect(&mut pmem, at, flags);
                }
                if c.pt.map(&mut cmem, at, m.phys, m.size, flags).is_err() {
                    drop(c);
                    super::tlb::flush_mm(parent.pt.root());
                    return None;
                }
                page::get_page(m.phys);
                c.rss[page::kind(m.phys) as usize] += 1;
                va = at + PAGE_SIZE;
            }
        }
        c.hiwater_rss = c.rss_total();
        c.hiwater_vm = c.total_pages();
        drop(c);
        // The parent's writable PTEs just became read-only.
        super::tlb::flush_mm(parent.pt.root());
        Some(child)
    }
}

impl MmInner {
    /// Pages in locked VMAs (VmLck).
    pub fn locked_pages(&self) -> u64 {
        self.vmas.locked_pages()
    }

    /// Pages of all VMAs (VmSize).
    pub fn total_pages(&self) -> u64 {
        self.vmas.total_pages()
    }

    /// All resident pages (VmRSS).
    pub fn rss_total(&self) -> u64 {
        self.rss.iter().sum()
    }

    /// Records a new RSS peak (VmHWM) after pages were mapped.
    pub fn note_rss(&mut self) {
        self.hiwater_rss = self.hiwater_rss.max(self.rss_total());
    }

    /// Records a new peak of mapped pages (VmPeak) after the address space grew.
    pub fn note_vm(&mut self) {
        self.hiwater_vm = self.hiwater_vm.max(self.total_pages());
    }

    /// The VMA containing `addr`.
    pub fn find_vma(&self, addr: u64) -> Option<&Vma> {
        self.vmas.range(..=addr).next_back().map(|(_, v)| v).filter(|v| v.contains(addr))
    }

    /// Whether any VMA intersects [start, end).
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas.range(..end).next_back().is_some_and(|(_, v)| v.end > start)
    }

    /// PTE flags for a page of `vma`; `writable` only when the page may be
    /// written without a copy-on-write fault.
    pub fn pte_flags(prot: Prot, writable: bool) -> PteFlags {
        let mut f = PteFlags::PRESENT | PteFlags::USER;
        if prot.is_empty() {
            // PROT_NONE: keep the page (and its contents) but deny user access.
            f.remove(PteFlags::USER);
        }
        if writable && prot.contains(Prot::WRITE) {
            f |= PteFlags::WRITABLE;
        }
        if !prot.contains(Prot::EXEC) {
            f |= PteFlags::NO_EXECUTE;
        }
        f
    }

    /// Unmaps the pages of [start, end) from the page table, dropping page
    /// references, and frees emptied tables. The caller flushes the TLB.
    pub fn zap_range(&mut self, pt_pages: &AtomicU64, start: u64, end: u64) {
        let mut mem = UserPhysMem { pt_pages };
        let rss = &mut self.rss;
        let r = self.pt.unmap_range(&mut mem, start, end, |_, m| {
            rss[page::kind(m.phys) as usize] -= 1;
            page::put_page(m.phys);
        });
        debug_assert!(r.is_ok(), "user mappings are 4 KiB pages");
    }
}

impl Drop for MmStruct {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        for v in inner.vmas.values() {
            v.close();
        }
        let mut mem = UserPhysMem { pt_pages: &self.pt_pages };
        inner.pt.clear_user_half(&mut mem, |_, m| page::put_page(m.phys));
        mem.free_table(inner.pt.root(), 4);
    }
}
