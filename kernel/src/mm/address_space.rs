//! The address space of a process (Linux's `mm_struct`): page tables, VMAs,
//! brk, and counters. It can exist without a task (an mshare host later).
//!
//! Lock order: task → `MmStruct::inner` → kernel page table → frame allocator.
#![deny(unsafe_code)]

use super::page::{self, PtOwner};
use super::vma::{Prot, Vma};
use crate::arch::cpu;
use crate::sync::SpinLock as Mutex;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use page_table::{PageTable, PhysMem, PteFlags};

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

/// Uncharges a table of `level` that `owner`'s walk unlinks, if it is `owner`'s: a
/// table is charged to its owner alone, for as long as the owner links it.
fn uncharge_table(table: u64, level: usize, owner: PtOwner, pt_pages: &AtomicU64) {
    if !page::table_owned_by(table, owner) {
        return;
    }
    if counts_in_vmpte(level) {
        pt_pages.fetch_sub(1, Ordering::Relaxed);
    }
    if counts_in_page_tables(level) {
        USER_PT_PAGES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether `table` is grafted from another owner than `owner`.
fn is_graft(table: u64, owner: PtOwner) -> bool {
    !page::table_owned_by(table, owner)
}

/// Whether `owner`'s `table` is grafted by others too: they hold references to it.
fn is_grafted(table: u64, owner: PtOwner) -> bool {
    page::page_count(table) > 1 && page::table_owned_by(table, owner)
}

/// `PhysMem` for the page tables of one user address space (`owner`): frames from the
/// allocator, owned by and charged to it, per mm (VmPTE) and globally (PageTables) by
/// level so accounting stays exact. Tables of other owners are grafts: the walks only
/// drop references to them.
pub struct UserPhysMem<'a> {
    pub pt_pages: &'a AtomicU64,
    pub owner: PtOwner,
}

impl PhysMem for UserPhysMem<'_> {
    fn read_pte(&self, table: u64, index: usize) -> u64 {
        super::kernel_map::read_pte(table, index)
    }

    fn write_pte(&mut self, table: u64, index: usize, value: u64) {
        super::kernel_map::write_pte(table, index, value)
    }

    fn xchg_pte(&mut self, table: u64, index: usize, value: u64) -> u64 {
        super::kernel_map::xchg_pte(table, index, value)
    }

    fn cmpxchg_pte(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<u64, u64> {
        super::kernel_map::cmpxchg_pte(table, index, old, new)
    }

    fn alloc_table(&mut self, level: usize) -> Option<u64> {
        let t = page::alloc_table_page(self.owner)?;
        if counts_in_vmpte(level) {
            self.pt_pages.fetch_add(1, Ordering::Relaxed);
        }
        if counts_in_page_tables(level) {
            USER_PT_PAGES.fetch_add(1, Ordering::Relaxed);
        }
        Some(t)
    }

    /// Drops this address space's reference. A graft only loses that reference; its
    /// owner's charge and frame stay. An own table is uncharged even if guests still
    /// hold it (they keep the frame, never the charge).
    fn free_table(&mut self, table: u64, level: usize) {
        uncharge_table(table, level, self.owner, self.pt_pages);
        page::put_table_page(table);
    }

    fn is_graft(&self, table: u64) -> bool {
        is_graft(table, self.owner)
    }

    fn is_grafted(&self, table: u64) -> bool {
        is_grafted(table, self.owner)
    }
}

/// `UserPhysMem` for walks that unmap or downgrade under an `MmuGather`: a table
/// unlinked from its parent is uncharged at once, and its frame given back after the
/// gather's flush. A write into a table others graft tells the gather, whose flush then
/// covers the address spaces grafting it.
pub struct GatherPhysMem<'a> {
    pub pt_pages: &'a AtomicU64,
    pub owner: PtOwner,
    pub tlb: &'a super::tlb::MmuGather,
}

impl PhysMem for GatherPhysMem<'_> {
    fn read_pte(&self, table: u64, index: usize) -> u64 {
        super::kernel_map::read_pte(table, index)
    }

    fn write_pte(&mut self, table: u64, index: usize, value: u64) {
        if is_grafted(table, self.owner) {
            self.tlb.shared_table(table);
        }
        super::kernel_map::write_pte(table, index, value)
    }

    fn xchg_pte(&mut self, table: u64, index: usize, value: u64) -> u64 {
        if is_grafted(table, self.owner) {
            self.tlb.shared_table(table);
        }
        super::kernel_map::xchg_pte(table, index, value)
    }

    fn cmpxchg_pte(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<u64, u64> {
        if is_grafted(table, self.owner) {
            self.tlb.shared_table(table);
        }
        super::kernel_map::cmpxchg_pte(table, index, old, new)
    }

    fn alloc_table(&mut self, level: usize) -> Option<u64> {
        UserPhysMem { pt_pages: self.pt_pages, owner: self.owner }.alloc_table(level)
    }

    fn free_table(&mut self, table: u64, level: usize) {
        uncharge_table(table, level, self.owner, self.pt_pages);
        self.tlb.remove_table(table);
    }

    fn is_graft(&self, table: u64) -> bool {
        is_graft(table, self.owner)
    }

    fn is_grafted(&self, table: u64) -> bool {
        is_grafted(table, self.owner)
    }
}

/// A table of another owner this address space grafted (mshare): the entry covering `va`
/// at level `level + 1` points at `table`, a table of `level` (1 = PT .. 3 = PDPT) that
/// `owner` allocated. This address space holds one reference to it and pays no VmPTE for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Graft {
    pub va: u64,
    pub level: usize,
    pub table: u64,
    pub owner: PtOwner,
}

impl Graft {
    /// The first address past what the graft covers.
    pub fn end(&self) -> u64 {
        self.va + (1u64 << (12 + 9 * self.level))
    }
}

pub struct MmInner {
    pub pt: PageTable,
    /// The owner of the tables this address space allocates (`MmStruct::id`).
    pub owner: PtOwner,
    /// The tables of other owners grafted into `pt`, by address.
    pub grafts: alloc::vec::Vec<Graft>,
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
    pub inner: Mutex<MmInner, crate::sync::order::MmInner>,
    /// Page-table pages of this mm counted in VmPTE: PTE, PMD and PUD tables (not the root).
    pub pt_pages: AtomicU64,
    pub id: u64,
    /// The TLB flushes of this address space, counted by the CPUs that carry them out
    /// while they have it loaded (`mm::tlb`; shown in /proc/PID/tlb).
    pub tlb: crate::arch::percpu::TlbCounters,
}

static NEXT_MM_ID: AtomicU64 = AtomicU64::new(1);

impl MmStruct {
    /// An empty address space whose kernel half is the kernel's.
    pub fn new() -> Option<Arc<MmStruct>> {
        let pt_pages = AtomicU64::new(0);
        let id = NEXT_MM_ID.fetch_add(1, Ordering::Relaxed);
        let owner = PtOwner::Mm(id);
        let pt = PageTable::new(&mut UserPhysMem { pt_pages: &pt_pages, owner })?;
        super::kernel_map::copy_kernel_half(pt.root());
        let mm = Arc::new_cyclic(|me| MmStruct {
            inner: Mutex::new(MmInner {
                pt,
                owner,
                grafts: alloc::vec::Vec::new(),
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
            tlb: crate::arch::percpu::TlbCounters::new(),
        });
        Some(mm)
    }

    pub fn root(&self) -> u64 {
        self.inner.lock().pt.root()
    }

    /// The owner of this address space's page tables.
    pub fn owner(&self) -> PtOwner {
        PtOwner::Mm(self.id)
    }

    /// `PhysMem` for walks of this address space's page tables.
    pub fn phys_mem(&self) -> UserPhysMem<'_> {
        UserPhysMem { pt_pages: &self.pt_pages, owner: self.owner() }
    }

    /// Makes this the address space of the CPU (Linux's `switch_mm`): the CPU joins the
    /// address space's CPU mask (`cpumask`) until it loads another root.
    pub fn activate(&self) {
        let root = self.root();
        if cpu::read_cr3() & !0xfff != root {
            super::tlb::switch_mm(root, Some(&self.tlb));
        }
    }

    /// The CPUs that may cache this address space's translations (Linux's `mm_cpumask`):
    /// those that have its root loaded (`tlb::mm_cpumask`).
    pub fn cpumask(&self) -> crate::arch::percpu::CpuMask {
        super::tlb::mm_cpumask(self.root())
    }

    /// Linux's `dup_mmap`: the child gets every VMA (but VM_DONTFORK ones, and
    /// VM_WIPEONFORK ones empty); private writable pages become copy-on-write in both,
    /// shared pages are shared. Entries are copied only for VMAs that hold private
    /// anonymous pages (`vma_needs_copy`): the child faults the others in from their
    /// file or shmem object, as Linux's does. Fails with None on memory exhaustion (the
    /// partial child is dropped).
    pub fn fork(&self) -> Option<Arc<MmStruct>> {
        let child = MmStruct::new()?;
        let mut parent = self.inner.lock();
        // The child's, nested under the parent's (Linux's SINGLE_DEPTH_NESTING): nobody
        // else can reach it yet.
        let mut cg = child.inner.lock_nested(1);
        let c = &mut *cg;
        c.start_brk = parent.start_brk;
        c.brk = parent.brk;
        c.arg_range = parent.arg_range;
        c.env_range = parent.env_range;
        c.exe = parent.exe.clone();
        let parent = &mut *parent;
        let mut pmem = self.phys_mem();
        let mut cmem = child.phys_mem();
        // The child's VM_ACCOUNT VMAs are charged anew, each checked against the
        // overcommit policy with the ones before it counted (dup_mmap's
        // security_vm_enough_memory_mm): the policy can refuse the fork. The trial
        // charges go; the child's VMAs are charged as they are copied.
        let copied = || parent.vmas.values().filter(|v| !v.flags.contains(super::vma::VmFlags::DONTFORK));
        let mut trial = 0i64;
        for v in copied() {
            let pages = v.flags.committed(v.pages());
            if pages == 0 {
                continue;
            }
            if super::commit::vm_enough_memory(parent, pages).is_err() {
                super::commit::vm_acct_memory(-trial);
                return None;
            }
            super::commit::vm_acct_memory(pages as i64);
            trial += pages as i64;
        }
        super::commit::vm_acct_memory(-trial);
        // The parent's writable entries become read-only: flushed on every path below.
        let tlb = super::tlb::MmuGather::new(parent.pt.root());
        let mut ok = true;
        for vma in copied() {
            // Memory locks are not inherited (mlock(2)).
            let mut child_vma = vma.clone();
            child_vma.flags.remove(super::vma::VmFlags::LOCKED | super::vma::VmFlags::LOCKONFAULT);
            if vma.flags.contains(super::vma::VmFlags::WIPEONFORK) {
                child_vma.flags.remove(super::vma::VmFlags::ANON_VMA);
            }
            child_vma.open();
            super::commit::vm_acct_memory(child_vma.flags.committed(child_vma.pages()) as i64);
            c.vmas.insert(vma.start, child_vma);
            if !vma_needs_copy(vma) {
                continue;
            }
            let cow = !vma.is_shared();
            let rss = &mut c.rss;
            let r = parent.pt.copy_range(
                &mut pmem,
                &mut c.pt,
                &mut cmem,
                vma.start,
                vma.end,
                |_, _| cow,
                |_, m| {
                    page::get_page(m.phys);
                    page::page_add_rmap(m.phys);
                    if let Some(kind) = page::mm_counter(m.phys) {
                        rss[kind as usize] += 1;
                    }
                },
            );
            if cow {
                tlb.flush_range(vma.start, vma.end);
            }
            if r.is_err() {
                ok = false;
                break;
            }
        }
        tlb.finish();
        if !ok {
            return None;
        }
        c.hiwater_rss = c.rss_total();
        c.hiwater_vm = c.total_pages();
        drop(cg);
        Some(child)
    }
}

/// Linux's `vma_needs_copy` (mm/memory.c): fork copies the page-table entries of a VMA
/// only if it holds private anonymous pages; VM_WIPEONFORK gives the child nothing.
fn vma_needs_copy(vma: &Vma) -> bool {
    use super::vma::VmFlags;
    vma.flags.contains(VmFlags::ANON_VMA) && !vma.flags.contains(VmFlags::WIPEONFORK)
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

    /// Unmaps the pages of [start, end) from the page table (Linux's `zap_page_range`):
    /// the pages and the tables emptied go to `tlb`, which drops them after its flush.
    /// Grafts the range covers whole are dropped; inside a graft nothing changes (its
    /// owner's entries).
    pub fn zap_range(&mut self, tlb: &super::tlb::MmuGather, pt_pages: &AtomicU64, start: u64, end: u64) {
        let mut mem = GatherPhysMem { pt_pages, owner: self.owner, tlb };
        let rss = &mut self.rss;
        let r = self.pt.unmap_range(&mut mem, start, end, |va, m| {
            if let Some(kind) = page::mm_counter(m.phys) {
                rss[kind as usize] -= 1;
            }
            page::page_remove_rmap(m.phys);
            tlb.remove_page(va, m.phys);
        });
        tlb.flush_range(start, end);
        debug_assert!(r.is_ok(), "user mappings are 4 KiB pages");
        self.grafts.retain(|g| !(start <= g.va && g.end() <= end));
    }

    /// Grafts `table`, a table of `level` (1 = PT .. 3 = PDPT) of another owner, as the
    /// entry covering `va` (aligned to the table's span): Linux's mshare links a host's
    /// tables into a guest this way. Takes this address space's reference to the table and
    /// records the graft. Tables allocated above it are this address space's own.
    pub fn graft_table(
        &mut self,
        pt_pages: &AtomicU64,
        va: u64,
        level: usize,
        table: u64,
        flags: PteFlags,
    ) -> Result<(), page_table::MapError> {
        if !is_graft(table, self.owner) {
            return Err(page_table::MapError::AlreadyMapped);
        }
        let owner = match page::table_owner(table) {
            Some(o) => o,
            None => return Err(page_table::MapError::Misaligned),
        };
        page::get_page(table);
        let mut mem = UserPhysMem { pt_pages, owner: self.owner };
        if let Err(e) = self.pt.graft(&mut mem, va, level, table, flags) {
            page::put_table_page(table);
            return Err(e);
        }
        self.grafts.push(Graft { va, level, table, owner });
        Ok(())
    }

    /// Removes the graft at `va` (Linux's mshare unlinking a host's table from a guest):
    /// the entry goes, the reference is dropped after `tlb`'s flush, and emptied tables
    /// above it are freed.
    pub fn ungraft_table(&mut self, tlb: &super::tlb::MmuGather, pt_pages: &AtomicU64, va: u64) -> Option<Graft> {
        let i = self.grafts.iter().position(|g| g.va == va)?;
        let g = self.grafts.remove(i);
        let mut mem = GatherPhysMem { pt_pages, owner: self.owner, tlb };
        let r = self.pt.ungraft(&mut mem, g.va, g.level);
        debug_assert_eq!(r, Ok(g.table), "a recorded graft is in the page table");
        tlb.flush_range(g.va, g.end());
        Some(g)
    }
}

impl Drop for MmStruct {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        for v in inner.vmas.values() {
            v.close();
            super::commit::vm_acct_memory(-(v.flags.committed(v.pages()) as i64));
        }
        let root = inner.pt.root();
        {
            // exit_mmap: everything goes, flushed first if this address space is loaded.
            // Grafts lose this address space's reference; tables of its own others graft
            // are emptied for them and stay until their last graft goes.
            let tlb = super::tlb::MmuGather::new_fullmm(root);
            while let Some(g) = inner.grafts.last() {
                let va = g.va;
                inner.ungraft_table(&tlb, &self.pt_pages, va);
            }
            let mut mem = GatherPhysMem { pt_pages: &self.pt_pages, owner: inner.owner, tlb: &tlb };
            inner.pt.clear_user_half(&mut mem, |va, m| {
                page::page_remove_rmap(m.phys);
                tlb.remove_page(va, m.phys);
            });
        }
        self.phys_mem().free_table(root, 4);
    }
}
