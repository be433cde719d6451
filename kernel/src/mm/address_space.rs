//! The address space of a process (Linux's `mm_struct`): page tables, VMAs,
//! brk, and counters. It can exist without a task (an mshare host later).
//!
//! Locks, as Linux's (outermost first; a sleeping lock is never taken under a spinlock):
//! - `mmap_lock`, a sleeping reader-writer semaphore (`sync::RwSem`, Linux's
//!   `mm->mmap_lock`) over `MmInner`: the VMAs, brk, def_flags, the argument and
//!   environment ranges, the executable. Taken shared by whatever only reads them or
//!   fills page-table entries inside existing VMAs: page faults (`handle_mm_fault`),
//!   usercopy's page lookups, populate, /proc readers (maps, smaps, status, pagemap,
//!   statm), mincore, msync, MADV_DONTNEED/FREE, futex keys. Taken exclusive by whatever
//!   changes VMAs: mmap, munmap, mprotect, mremap, brk, mlock/munlock/mlockall, the VMA
//!   flag advices of madvise, exec building the new image, fork (the parent's, as
//!   `dup_mmap`), a fault that must grow the stack or mark a VMA's first anonymous
//!   page (`FaultError::NeedWrite`), and the reverse-map unmap of a truncation.
//! - an inode's page cache lock (a fault looks pages up and maps its fault-around window
//!   under it), or, never together with it, a page cache's `i_mmap` (VMAs are linked and
//!   unlinked under `mmap_lock`).
//! - `page_table_lock` (a spinlock; no interrupt handler touches user page tables) over
//!   the page table and the grafts: every walk and change of entries, so that faults
//!   holding `mmap_lock` shared on several CPUs never race on one entry. Linux has one
//!   lock per PTE table (split PTE locks) and `mm->page_table_lock` for the upper
//!   levels; one lock per address space here. fork holds its parent's, then its
//!   child's (nobody else can reach the child yet).
//! - then the heap, the kernel page table and the frame allocator (innermost), which
//!   allocating pages and tables takes.
//!
//! Lock-free: the page-table root (`root`, fixed for the life of the address space: the
//! scheduler loads it into CR3 without any lock), the RSS counters and their peak
//! (atomics, as Linux's `mm_counter`), VmPTE (`pt_pages`).
#![deny(unsafe_code)]

use super::page::{self, PtOwner};
use super::vma::{Prot, Vma};
use crate::arch::cpu;
use crate::sync::order::PageTableLock;
use crate::sync::{RwSem, SpinLock};
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
#[derive(Clone)]
pub struct Graft {
    pub va: u64,
    pub level: usize,
    pub table: u64,
    pub owner: PtOwner,
    /// The owner (an mshare host) and this window's offset from it (guest address minus
    /// host address, wrapping): the graft joined the host's sharers, and leaves them once
    /// its removal was flushed here; a lookup through the graft is made in the host.
    pub host: Option<(Arc<MmStruct>, u64)>,
}

impl Graft {
    /// The first address past what the graft covers.
    pub fn end(&self) -> u64 {
        self.va + (1u64 << (12 + 9 * self.level))
    }
}

/// What `mmap_lock` guards.
pub struct MmInner {
    /// VMAs keyed by start address; never overlapping.
    pub vmas: super::vma_tree::VmaTree,
    pub start_brk: u64,
    pub brk: u64,
    /// Argument and environment strings on the initial stack (for /proc later).
    pub arg_range: (u64, u64),
    pub env_range: (u64, u64),
    /// The executable (Linux's `mm->exe_file`), for /proc/pid/exe.
    pub exe: Option<alloc::string::String>,
    /// Flags every new VMA gets (mlockall(MCL_FUTURE) sets VM_LOCKED).
    pub def_flags: super::vma::VmFlags,
    /// Peak of mapped pages (VmPeak); VMAs change only under the exclusive lock.
    pub hiwater_vm: u64,
    /// Whose limits and capabilities this address space's growth is charged to when no
    /// task of its own runs in it (an mshare host: its region's creator); None for a
    /// process's address space, charged to the task that asks.
    pub owner: Option<Arc<super::commit::Owner>>,
}

/// What `page_table_lock` guards.
pub struct MmPageTable {
    pub pt: PageTable,
    /// The tables of other owners grafted into `pt`, by address.
    pub grafts: alloc::vec::Vec<Graft>,
}

pub struct MmStruct {
    /// The VMAs and what goes with them (see the header for who takes it how).
    pub mmap_lock: RwSem<MmInner>,
    /// The page table and its grafts; under `mmap_lock`, above the allocators.
    pub page_table_lock: SpinLock<MmPageTable, PageTableLock>,
    /// The page-table root (PML4), readable without a lock.
    root: u64,
    /// Resident pages mapped in this mm by kind (`PageKind` as index):
    /// anon, file, shmem (Linux's MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES).
    rss: [AtomicU64; 3],
    /// Peak of RSS (VmHWM).
    hiwater_rss: AtomicU64,
    /// membarrier registrations of this address space (Linux's `membarrier_state`):
    /// kept by fork, gone with exec's new mm.
    pub membarrier_state: core::sync::atomic::AtomicU32,
    /// Page-table pages of this mm counted in VmPTE: PTE, PMD and PUD tables (not the root).
    pub pt_pages: AtomicU64,
    pub id: u64,
    /// The TLB flushes of this address space, counted by the CPUs that carry them out
    /// while they have it loaded (`mm::tlb`; shown in /proc/PID/tlb).
    pub tlb: crate::arch::percpu::TlbCounters,
    /// An mshare host's guests (`mm/mshare.rs`): no CPU ever loads a host, so its changes
    /// are flushed in them. None for a process's address space.
    pub sharers: Option<Arc<super::tlb::Sharers>>,
    /// A file's host of shared page tables (`pt_share`), as opposed to an mshare region's.
    pub file_host: bool,
    /// Counts a file's host in `leak::PT_SHARE_HOSTS`.
    _host_live: Option<crate::leak::Live>,
}

static NEXT_MM_ID: AtomicU64 = AtomicU64::new(1);

impl MmStruct {
    /// An empty address space whose kernel half is the kernel's.
    pub fn new() -> Option<Arc<MmStruct>> {
        Self::new_with(None, None, false)
    }

    /// An mshare host (Linux's `mshare_mm` of the region's file): an address space with no
    /// task, whose changes are flushed in `sharers` and whose growth is charged to `owner`.
    pub fn new_host(sharers: Arc<super::tlb::Sharers>, owner: super::commit::Owner) -> Option<Arc<MmStruct>> {
        Self::new_with(Some(sharers), Some(Arc::new(owner)), false)
    }

    /// The host of a file's shared page tables (`pt_share`): an address space with no task
    /// mapping the file once per protection, charged to nobody (the kernel).
    pub fn new_file_host() -> Option<Arc<MmStruct>> {
        let sharers = Arc::new(super::tlb::Sharers::new());
        Self::new_with(Some(sharers), Some(Arc::new(super::commit::Owner::kernel())), true)
    }

    fn new_with(
        sharers: Option<Arc<super::tlb::Sharers>>,
        owner: Option<Arc<super::commit::Owner>>,
        file_host: bool,
    ) -> Option<Arc<MmStruct>> {
        let pt_pages = AtomicU64::new(0);
        let id = NEXT_MM_ID.fetch_add(1, Ordering::Relaxed);
        let pt = PageTable::new(&mut UserPhysMem { pt_pages: &pt_pages, owner: PtOwner::Mm(id) })?;
        super::kernel_map::copy_kernel_half(pt.root());
        let root = pt.root();
        let mm = Arc::new_cyclic(|me| MmStruct {
            mmap_lock: RwSem::new(MmInner {
                vmas: super::vma_tree::VmaTree::new(me.clone(), id),
                start_brk: 0,
                brk: 0,
                arg_range: (0, 0),
                env_range: (0, 0),
                exe: None,
                def_flags: super::vma::VmFlags::empty(),
                hiwater_vm: 0,
                owner,
            }),
            page_table_lock: SpinLock::new(MmPageTable { pt, grafts: alloc::vec::Vec::new() }),
            root,
            rss: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            hiwater_rss: AtomicU64::new(0),
            membarrier_state: core::sync::atomic::AtomicU32::new(0),
            pt_pages,
            id,
            tlb: crate::arch::percpu::TlbCounters::new(),
            sharers,
            file_host,
            _host_live: file_host.then(|| crate::leak::PT_SHARE_HOSTS.live()),
        });
        Some(mm)
    }

    pub fn root(&self) -> u64 {
        self.root
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
        let root = self.root;
        if cpu::read_cr3() & !0xfff != root {
            super::tlb::switch_mm(root, Some(&self.tlb));
        }
    }

    /// The CPUs that may cache this address space's translations (Linux's `mm_cpumask`):
    /// those that have its root loaded (`tlb::mm_cpumask`).
    pub fn cpumask(&self) -> crate::arch::percpu::CpuMask {
        super::tlb::mm_cpumask(self.root())
    }

    /// Resident pages by kind (anon, file, shmem).
    pub fn rss(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.rss[i].load(Ordering::Relaxed))
    }

    /// All resident pages (VmRSS).
    pub fn rss_total(&self) -> u64 {
        self.rss().iter().sum()
    }

    /// Peak of resident pages (VmHWM).
    pub fn hiwater_rss(&self) -> u64 {
        self.hiwater_rss.load(Ordering::Relaxed)
    }

    /// Counts `delta` pages of `kind` in or out (Linux's `add_mm_counter`).
    pub fn add_rss(&self, kind: page::PageKind, delta: i64) {
        self.rss[kind as usize].fetch_add(delta as u64, Ordering::Relaxed);
    }

    /// Records a new RSS peak (VmHWM) after pages were mapped.
    pub fn note_rss(&self) {
        self.hiwater_rss.fetch_max(self.rss_total(), Ordering::Relaxed);
    }

    /// Linux's `dup_mmap`: the child gets every VMA (but VM_DONTFORK ones, and
    /// VM_WIPEONFORK ones empty); private writable pages become copy-on-write in both,
    /// shared pages are shared. Entries are copied only for VMAs that hold private
    /// anonymous pages (`vma_needs_copy`): the child faults the others in from their
    /// file or shmem object, as Linux's does. Holds the parent's `mmap_lock` exclusive
    /// (killable: EINTR), so no fault fills the parent while its entries are copied.
    /// Fails with ENOMEM on memory exhaustion (the partial child is dropped).
    pub fn fork(&self) -> crate::errno::KResult<Arc<MmStruct>> {
        use crate::errno::ENOMEM;
        let child = MmStruct::new().ok_or(ENOMEM)?;
        child.membarrier_state.store(self.membarrier_state.load(Ordering::Relaxed), Ordering::Relaxed);
        let parent = self.mmap_lock.write_killable()?;
        let mut cg = child.mmap_lock.write();
        let c = &mut *cg;
        c.start_brk = parent.start_brk;
        c.brk = parent.brk;
        c.arg_range = parent.arg_range;
        c.env_range = parent.env_range;
        c.exe = parent.exe.clone();
        let parent = &*parent;
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
                return Err(ENOMEM);
            }
            super::commit::vm_acct_memory(pages as i64);
            trial += pages as i64;
        }
        super::commit::vm_acct_memory(-trial);
        // The parent's writable entries become read-only: flushed on every path below.
        let tlb = super::tlb::MmuGather::for_mm(self);
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
            // Taken per VMA, after the child's VMA is linked into its file's `i_mmap` (a
            // page cache's locks are outside the page tables'). The child's nested under
            // the parent's (Linux's SINGLE_DEPTH_NESTING): nobody else can reach it yet.
            let mut ppt = self.page_table_lock.lock();
            let mut cpt = child.page_table_lock.lock_nested(1);
            let r = ppt.pt.copy_range(
                &mut pmem,
                &mut cpt.pt,
                &mut cmem,
                vma.start,
                vma.end,
                |_, _| cow,
                |_, m| {
                    page::get_page(m.phys);
                    page::page_add_rmap(m.phys);
                    if let Some(kind) = page::mm_counter(m.phys) {
                        child.add_rss(kind, 1);
                    }
                },
            );
            drop((cpt, ppt));
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
            return Err(ENOMEM);
        }
        super::pt_share::fork_grafts(self, parent, &child);
        child.note_rss();
        c.hiwater_vm = c.total_pages();
        drop(cg);
        Ok(child)
    }

    /// Unmaps the pages of [start, end) from the page table (Linux's `zap_page_range`):
    /// the pages and the tables emptied go to `tlb`, which drops them after its flush.
    /// Grafts the range covers whole are dropped; inside a graft nothing changes (its
    /// owner's entries). The caller holds `mmap_lock`, shared or exclusive.
    pub fn zap_range(&self, tlb: &super::tlb::MmuGather, start: u64, end: u64) {
        let mut guard = self.page_table_lock.lock();
        let g = &mut *guard;
        let mut mem = GatherPhysMem { pt_pages: &self.pt_pages, owner: self.owner(), tlb };
        let tables_before = tlb.tables_removed();
        let grafts_before = g.grafts.len();
        let r = g.pt.unmap_range(&mut mem, start, end, |va, m| {
            if let Some(kind) = page::mm_counter(m.phys) {
                self.add_rss(kind, -1);
            }
            if m.flags.contains(PteFlags::DIRTY) {
                page::set_page_dirty(m.phys);
            }
            page::page_remove_rmap(m.phys);
            tlb.remove_page(va, m.phys);
        });
        debug_assert!(r.is_ok(), "user mappings are 4 KiB pages");
        let covered = |gr: &Graft| start <= gr.va && gr.end() <= end;
        if g.grafts.iter().any(covered) {
            // The grafts leave their hosts' sharers only once no CPU of this address space
            // can use them: flushed now, before the hosts stop flushing here.
            tlb.flush_range(start, end);
            tlb.flush_mmu();
            for gr in g.grafts.iter().filter(|gr| covered(gr)) {
                if let Some((host, delta)) = &gr.host {
                    host.leave_sharers(self.root, *delta);
                }
            }
        }
        let gone: alloc::vec::Vec<Graft> = g.grafts.extract_if(.., |gr| covered(gr)).collect();
        // Tables unlinked (freed or grafts dropped) may sit in paging-structure caches:
        // the range is flushed for them as for cleared entries (which `remove_page`
        // recorded). A range that mapped nothing needs no flush, and no other CPU is
        // interrupted for it (Linux's `tlb_flush_mmu_tlbonly` with no range gathered).
        if tlb.tables_removed() != tables_before || g.grafts.len() != grafts_before {
            tlb.flush_range(start, end);
        }
        // A graft may hold the last reference to its host, whose teardown takes the locks
        // of the files it maps: dropped outside the page-table lock.
        drop(guard);
        drop(gone);
    }

    /// Grafts `table`, a table of `level` (1 = PT .. 3 = PDPT) of another owner, as the
    /// entry covering `va` (aligned to the table's span): Linux's mshare links a host's
    /// tables into a guest this way. Takes this address space's reference to the table and
    /// records the graft. Tables allocated above it are this address space's own. With
    /// `host` (an mshare host, and the guest address minus the host address), this address
    /// space joins the host's flushes (its sharers) before the graft is linked.
    pub fn graft_table(
        &self,
        va: u64,
        level: usize,
        table: u64,
        flags: PteFlags,
        host: Option<(Arc<MmStruct>, u64)>,
    ) -> Result<(), page_table::MapError> {
        let owner = self.owner();
        if !is_graft(table, owner) {
            return Err(page_table::MapError::AlreadyMapped);
        }
        let table_owner = match page::table_owner(table) {
            Some(o) => o,
            None => return Err(page_table::MapError::Misaligned),
        };
        let mut g = self.page_table_lock.lock();
        if let Some((h, delta)) = &host {
            h.join_sharers(self.root, *delta).map_err(|_| page_table::MapError::OutOfMemory)?;
        }
        let leave = |host: &Option<(Arc<MmStruct>, u64)>| {
            if let Some((h, delta)) = host {
                h.leave_sharers(self.root, *delta);
            }
        };
        if super::fail::try_reserve(&mut g.grafts, 1).is_err() {
            leave(&host);
            return Err(page_table::MapError::OutOfMemory);
        }
        page::get_page(table);
        let mut mem = UserPhysMem { pt_pages: &self.pt_pages, owner };
        if let Err(e) = g.pt.graft(&mut mem, va, level, table, flags) {
            page::put_table_page(table);
            leave(&host);
            return Err(e);
        }
        g.grafts.push(Graft { va, level, table, owner: table_owner, host });
        Ok(())
    }

    /// Removes the graft at `va` (Linux's mshare unlinking a host's table from a guest):
    /// the entry goes, the reference is dropped after `tlb`'s flush, and emptied tables
    /// above it are freed.
    pub fn ungraft_table(&self, tlb: &super::tlb::MmuGather, va: u64) -> Option<Graft> {
        ungraft(&mut self.page_table_lock.lock(), &self.pt_pages, self.owner(), self.root, tlb, va)
    }

    /// The table of `level` (1 = PT .. 3 = PDPT) covering `va` in this address space, its
    /// own or grafted, if there is one.
    pub fn table_at(&self, va: u64, level: usize) -> Option<u64> {
        let g = self.page_table_lock.lock();
        g.pt.table_at(&self.phys_mem(), va, level)
    }

    /// Replaces the PTE-table graft at `va` of a file's shared tables (`pt_share`) by a
    /// private copy of its entries, which this address space then owns, maps and counts
    /// (RSS, VmPTE) like any of its tables: what an operation that needs this address
    /// space's own entries there does first (McCracken's `pt_unshare`). Without memory for
    /// the copy the graft is only removed: the pages stay in the file, and later accesses
    /// fault them in. False if there is no such graft at `va`.
    pub fn unshare_graft(&self, tlb: &super::tlb::MmuGather, va: u64) -> bool {
        let done = self.replace_graft(tlb, va, 1, 0, |_, _, _, _, e| {
            let pa = e.addr();
            page::get_page(pa);
            page::page_add_rmap(pa);
            if let Some(kind) = page::mm_counter(pa) {
                self.add_rss(kind, 1);
            }
            Some(e.0)
        });
        self.note_rss();
        done
    }

    /// Replaces the PMD-table graft at `va` of a file's shared tables (`pt_share`) by a PMD
    /// table of this address space's own whose entries graft the host's PTE tables, each
    /// recorded as a graft of its own: what unsharing part of a shared GiB does first.
    /// Without memory for it, the graft is only removed (later accesses fault the file's
    /// pages in). False if there is no such graft at `va`.
    pub fn split_graft(&self, tlb: &super::tlb::MmuGather, va: u64) -> bool {
        self.replace_graft(tlb, va, 2, page_table::ENTRIES, |grafts, host, delta, idx, e| {
            // Each host PTE table becomes a graft of this address space (a reference, a place
            // among the host's sharers: one per graft).
            let pt = e.addr();
            let owner = page::table_owner(pt)?;
            host.join_sharers(self.root, delta).ok()?;
            page::get_page(pt);
            let at = va + idx as u64 * (2 << 20);
            grafts.push(Graft { va: at, level: 1, table: pt, owner, host: Some((host.clone(), delta)) });
            Some(e.0)
        })
    }

    /// Replaces the graft of a file's shared tables of `level` at `va` by a table of this
    /// address space's own: each present entry `e` of the grafted table at `idx` goes into
    /// the new table as `entry(grafts, host, delta, idx, e)` says (nothing for None), under
    /// the host's page-table lock, with room for `reserve` more grafts. The old table's
    /// reference goes after `tlb`'s flush of what it mapped here, and the graft leaves its
    /// host's sharers then. Without memory, the graft is only removed.
    fn replace_graft(
        &self,
        tlb: &super::tlb::MmuGather,
        va: u64,
        level: usize,
        reserve: usize,
        mut entry: impl FnMut(&mut alloc::vec::Vec<Graft>, &Arc<MmStruct>, u64, usize, page_table::Pte) -> Option<u64>,
    ) -> bool {
        let mut g = self.page_table_lock.lock();
        let Some(i) = g.grafts.iter().position(|gr| gr.va == va && gr.level == level) else { return false };
        let Some((host, delta)) = g.grafts[i].host.clone().filter(|(h, _)| h.file_host) else { return false };
        let table = g.grafts[i].table;
        let mut mem = UserPhysMem { pt_pages: &self.pt_pages, owner: self.owner() };
        let copy = match mem.alloc_table(level) {
            Some(t) if super::fail::try_reserve(&mut g.grafts, reserve).is_ok() => t,
            other => {
                if let Some(t) = other {
                    mem.free_table(t, level);
                }
                let gone = ungraft(&mut g, &self.pt_pages, self.owner(), self.root, tlb, va);
                drop(g);
                drop(gone);
                return true;
            }
        };
        {
            // The host's entries do not change under its page-table lock (taken under this
            // address space's, the one place the two nest).
            let _host = host.page_table_lock.lock_nested(1);
            for idx in 0..page_table::ENTRIES {
                let e = page_table::Pte(mem.read_pte(table, idx));
                if !e.is_present() {
                    continue;
                }
                if let Some(v) = entry(&mut g.grafts, &host, delta, idx, e) {
                    mem.write_pte(copy, idx, v);
                }
            }
            let r = g.pt.replace_table(&mut mem, va, level, copy);
            debug_assert_eq!(r, Ok(table), "a recorded graft is in the page table");
        }
        let gone = g.grafts.remove(i);
        let end = gone.end();
        drop(g);
        // The old table may sit in other CPUs' paging-structure caches: its reference goes,
        // and the host stops flushing here, only after this address space's flush.
        tlb.flush_range(va, end);
        tlb.remove_table(table);
        tlb.flush_mmu();
        host.leave_sharers(self.root, delta);
        drop(gone);
        true
    }

    /// The mshare host whose table covers `va` in this address space, and `va` in the
    /// host: where a lookup through the graft is made.
    pub fn graft_host(&self, va: u64) -> Option<(Arc<MmStruct>, u64)> {
        let g = self.page_table_lock.lock();
        let gr = g.grafts.iter().find(|gr| gr.va <= va && va < gr.end())?;
        gr.host.as_ref().map(|(h, delta)| (h.clone(), va.wrapping_sub(*delta)))
    }

    /// A graft of the window at offset `delta` from this host is about to be linked in
    /// `root`: its CPUs get this host's flushes from now on.
    fn join_sharers(&self, root: u64, delta: u64) -> crate::errno::KResult<()> {
        match &self.sharers {
            Some(s) => s.get(root, delta),
            None => Ok(()),
        }
    }

    /// A graft of the window at offset `delta` from this host went from `root`, and was
    /// flushed there: its CPUs need no more of this host's flushes for it.
    fn leave_sharers(&self, root: u64, delta: u64) {
        if let Some(s) = &self.sharers {
            s.put(root, delta);
        }
    }

    /// A change of entries of this address space was made: flushes `va` where they are
    /// cached (for an mshare host, in its sharers).
    pub fn flush_page(&self, va: u64) {
        match &self.sharers {
            Some(s) => s.flush_page(va),
            None => super::tlb::flush_page(self.root, va),
        }
    }
}

/// Removes the graft at `va`; once its removal is flushed, it leaves its host's sharers.
fn ungraft(
    g: &mut MmPageTable,
    pt_pages: &AtomicU64,
    owner: PtOwner,
    root: u64,
    tlb: &super::tlb::MmuGather,
    va: u64,
) -> Option<Graft> {
    let i = g.grafts.iter().position(|gr| gr.va == va)?;
    let gr = g.grafts.remove(i);
    let mut mem = GatherPhysMem { pt_pages, owner, tlb };
    let r = g.pt.ungraft(&mut mem, gr.va, gr.level);
    debug_assert_eq!(r, Ok(gr.table), "a recorded graft is in the page table");
    tlb.flush_range(gr.va, gr.end());
    if let Some((host, delta)) = &gr.host {
        tlb.flush_mmu();
        host.leave_sharers(root, *delta);
    }
    Some(gr)
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
}

impl Drop for MmStruct {
    fn drop(&mut self) {
        if self.file_host {
            super::pt_share::host_gone(self);
        }
        let owner = self.owner();
        let inner = self.mmap_lock.get_mut();
        for v in inner.vmas.values() {
            v.close();
            super::commit::vm_acct_memory(-(v.flags.committed(v.pages()) as i64));
        }
        let root = self.root;
        {
            // exit_mmap: everything goes, flushed first if this address space is loaded.
            // Grafts lose this address space's reference; tables of its own others graft
            // are emptied for them and stay until their last graft goes.
            let tlb = super::tlb::MmuGather::new_fullmm(root);
            let g = self.page_table_lock.get_mut();
            while let Some(gr) = g.grafts.last() {
                let va = gr.va;
                ungraft(g, &self.pt_pages, owner, root, &tlb, va);
            }
            let mut mem = GatherPhysMem { pt_pages: &self.pt_pages, owner, tlb: &tlb };
            g.pt.clear_user_half(&mut mem, |va, m| {
                if m.flags.contains(PteFlags::DIRTY) {
                    page::set_page_dirty(m.phys);
                }
                page::page_remove_rmap(m.phys);
                tlb.remove_page(va, m.phys);
            });
        }
        self.phys_mem().free_table(root, 4);
    }
}
