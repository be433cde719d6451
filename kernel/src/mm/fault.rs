//! The page-fault path (Linux's `handle_mm_fault`, mm/memory.c, 6.6):
//! find the VMA, check the access against it, then by backend fill the page
//! (`do_anonymous_page` with the shared zero page for reads,
//! `do_read_fault` with `do_fault_around`, `do_cow_fault`, `do_shared_fault`)
//! or break copy-on-write (`do_wp_page`).
//!
//! Locking (`address_space.rs` has the order): a fault holds `mmap_lock` shared, so
//! faults of several threads run together; every look at and change of an entry is
//! made under `page_table_lock`, and an entry found filled when the fault comes to
//! fill it means another fault won (the page is dropped, the fault succeeds), as
//! Linux's `pte_same` checks. What only the exclusive lock may do (grow the stack,
//! mark a VMA's first anonymous page) is asked for with `FaultError::NeedWrite`:
//! `fault_in` and `fault_shared` then take the lock exclusive and fault again (Linux's
//! `lock_mm_and_find_vma` upgrades the same way for the stack).
#![deny(unsafe_code)]

use super::address_space::{MmInner, MmStruct, UserPhysMem};
use super::page::{self, Page, PageKind};
use super::vma::{Backend, Prot, VmFlags, Vma};
use super::PAGE_SIZE;
use crate::sync::rwsem::RwSemReadGuard;
use page_table::{MapError, PageSize, PteFlags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub write: bool,
    pub exec: bool,
}

impl Access {
    pub const READ: Access = Access { write: false, exec: false };
    pub const WRITE: Access = Access { write: true, exec: false };
}

/// Why a fault could not be resolved: the signal Linux sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No VMA: SIGSEGV with SEGV_MAPERR.
    MapErr,
    /// The VMA forbids the access: SIGSEGV with SEGV_ACCERR.
    AccErr,
    /// A file page beyond the end of the file: SIGBUS with BUS_ADRERR.
    Bus,
    /// No memory: the OOM path.
    Oom,
    /// The fault needs `mmap_lock` exclusive for this: `fault_in` and `fault_shared`
    /// do it and fault again; no caller of theirs sees this.
    NeedWrite(Upgrade),
}

/// What a fault needs the exclusive `mmap_lock` for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// No VMA, but one above that grows down (`expand_stack`).
    ExpandStack,
    /// The first private anonymous page of the VMA starting here (`anon_vma_prepare`).
    AnonVma(u64),
}

/// Resolves a fault at `addr` of `mm`, taking `mmap_lock` (Linux's
/// `lock_mm_and_find_vma` and `handle_mm_fault` from `do_user_addr_fault`).
pub fn fault_in(mm: &MmStruct, addr: u64, access: Access) -> Result<(), FaultError> {
    let inner = mm.mmap_lock.read();
    fault_shared(mm, inner, addr, access).1
}

/// Resolves a fault for a caller holding `mmap_lock` shared (`inner`), and gives the
/// shared hold back (retaken if the fault needed it exclusive: whatever the caller
/// looked up under the old hold must be looked up again).
pub fn fault_shared<'a>(
    mm: &'a MmStruct,
    inner: RwSemReadGuard<'a, MmInner>,
    addr: u64,
    access: Access,
) -> (RwSemReadGuard<'a, MmInner>, Result<(), FaultError>) {
    match handle_mm_fault(mm, &inner, addr, access) {
        Err(FaultError::NeedWrite(_)) => {}
        r => return (inner, r),
    }
    drop(inner);
    let mut w = mm.mmap_lock.write();
    let r = fault_exclusive(mm, &mut w, addr, access);
    (w.downgrade(), r)
}

/// The fault under the exclusive `mmap_lock`: does what it needs the lock for, then
/// faults.
pub fn fault_exclusive(mm: &MmStruct, inner: &mut MmInner, addr: u64, access: Access) -> Result<(), FaultError> {
    // Each upgrade is needed at most once: a grown stack is found, a marked VMA is marked.
    for _ in 0..3 {
        match handle_mm_fault(mm, inner, addr, access) {
            Err(FaultError::NeedWrite(Upgrade::ExpandStack)) => {
                expand_stack(inner, addr)?;
            }
            Err(FaultError::NeedWrite(Upgrade::AnonVma(start))) => anon_vma_prepare(inner, start),
            r => return r,
        }
    }
    Err(FaultError::MapErr)
}

fn access_allowed(vma: &Vma, access: Access) -> bool {
    if access.write {
        vma.prot.contains(Prot::WRITE)
    } else if access.exec {
        vma.prot.contains(Prot::EXEC)
    } else {
        // On x86 without protection keys, write or exec permission implies read.
        !vma.prot.is_empty()
    }
}

/// Resolves a fault at `addr` in `mm`, whose `mmap_lock` the caller holds (`inner`,
/// shared or exclusive). On success the page is mapped with at least the requested
/// access. `NeedWrite` asks for the exclusive lock (see `fault_in`).
pub fn handle_mm_fault(mm: &MmStruct, inner: &MmInner, addr: u64, access: Access) -> Result<(), FaultError> {
    let page_va = addr & !(PAGE_SIZE - 1);
    let vma = match inner.find_vma(addr) {
        Some(v) => v.clone(),
        None => {
            let grows =
                inner.vmas.range(addr..).next().is_some_and(|(_, v)| v.flags.contains(super::vma::VmFlags::GROWSDOWN));
            return Err(if grows { FaultError::NeedWrite(Upgrade::ExpandStack) } else { FaultError::MapErr });
        }
    };
    if !access_allowed(&vma, access) {
        return Err(FaultError::AccErr);
    }
    if vma.flags.contains(VmFlags::MSHARE) {
        return super::mshare::handle_window_fault(mm, &vma, addr, access);
    }
    if vma.flags.contains(VmFlags::HUGETLB) {
        // hugetlb_no_page: no huge page to allocate (the pool is empty, and a VMA without
        // a reservation may not take one anyway): SIGBUS.
        return Err(FaultError::Bus);
    }
    if let Some(r) = super::pt_share::handle_fault(mm, &vma, addr, access) {
        return r;
    }
    {
        let mut pt = mm.page_table_lock.lock();
        let mem = mm.phys_mem();
        if let Some(m) = pt.pt.translate(&mem, page_va) {
            if access.write && !m.flags.contains(PteFlags::WRITABLE) {
                return do_wp_page(mm, &mut pt.pt, &vma, page_va, m.phys);
            }
            // Another path mapped it already, or a stale TLB entry of this CPU: nothing to
            // do but drop that entry here (other CPUs fix theirs on their own faults).
            super::tlb::flush_spurious_fault(mm.root(), page_va);
            return Ok(());
        }
    }
    match &vma.backend {
        Backend::Anonymous => do_anonymous_page(mm, &vma, page_va, access),
        Backend::File(file) => {
            let inode = file.inode().ok_or(FaultError::Bus)?;
            let index = vma.pgoff + (page_va - vma.start) / PAGE_SIZE;
            // A page wholly past the end of the file: SIGBUS (as filemap_fault).
            let max_index = inode.metadata().size.div_ceil(PAGE_SIZE);
            if index >= max_index {
                return Err(FaultError::Bus);
            }
            let cache = inode.page_cache().ok_or(FaultError::Bus)?;
            if !vma.is_shared() && access.write {
                need_anon_vma(&vma)?;
            }
            if !access.write && vma.ops.as_ref().is_none_or(|o| o.map_pages()) {
                // do_read_fault: first map what the cache already holds around the address.
                do_fault_around(mm, &vma, cache, max_index, page_va);
            }
            // The size was read under the mm lock, which a truncation takes exclusive (to
            // unmap) only after it has set the new size: either this fault maps the page
            // before that unmap, which then removes it, or it saw the new size and is
            // SIGBUS.
            let cached = cache.find_or_create(index).ok_or(FaultError::Oom)?;
            if vma.is_shared() {
                // do_shared_fault: the page cache page itself, dirty when written
                // (`fault_dirty_shared_page`).
                if access.write {
                    cached.mark_dirty();
                }
                set_pte(mm, &vma, page_va, cached.into_raw(), true)
            } else if access.write {
                // do_cow_fault: a private copy at once.
                let copy = Page::alloc(PageKind::Anon).ok_or(FaultError::Oom)?;
                copy.copy_from(&cached);
                set_pte(mm, &vma, page_va, copy.into_raw(), true)
            } else {
                // do_read_fault: the cache page, read-only until written.
                set_pte(mm, &vma, page_va, cached.into_raw(), false)
            }
        }
    }
}

/// Maps `pa`, whose reference the caller took for this entry, at `page_va`
/// (Linux's `do_set_pte`): the page gains a mapping and its RSS counter a page.
/// If another fault filled the entry first (the page-table lock was not held since
/// this fault found it empty), that mapping stands and the reference is dropped, as
/// Linux's `finish_fault` on a `pte_none` that no longer holds. On failure (no page
/// table) the reference is dropped.
fn set_pte(mm: &MmStruct, vma: &Vma, page_va: u64, pa: u64, writable: bool) -> Result<(), FaultError> {
    let mut mem = mm.phys_mem();
    let flags = MmInner::pte_flags(vma.prot, writable);
    let r = mm.page_table_lock.lock().pt.map(&mut mem, page_va, pa, PageSize::Size4K, flags);
    match r {
        Ok(()) => {}
        Err(MapError::AlreadyMapped) => {
            page::put_page(pa);
            return Ok(());
        }
        Err(_) => {
            page::put_page(pa);
            return Err(FaultError::Oom);
        }
    }
    page::page_add_rmap(pa);
    if let Some(kind) = page::mm_counter(pa) {
        mm.add_rss(kind, 1);
        mm.note_rss();
    }
    Ok(())
}

/// `NeedWrite` unless the VMA is marked for private anonymous pages already (Linux's
/// `anon_vma_prepare` takes `mm->page_table_lock` to set `vma->anon_vma`; the VMA's
/// flags here change under the exclusive `mmap_lock`).
fn need_anon_vma(vma: &Vma) -> Result<(), FaultError> {
    if vma.flags.contains(super::vma::VmFlags::ANON_VMA) {
        Ok(())
    } else {
        Err(FaultError::NeedWrite(Upgrade::AnonVma(vma.start)))
    }
}

/// A fault on an empty entry of anonymous memory (Linux's `do_anonymous_page`):
/// a read of private memory maps the shared zero page read-only (no page is
/// allocated and no RSS counted; the first write replaces it, `do_wp_page`),
/// anything else a fresh zeroed page.
fn do_anonymous_page(mm: &MmStruct, vma: &Vma, page_va: u64, access: Access) -> Result<(), FaultError> {
    if !access.write && !vma.is_shared() {
        return set_pte(mm, vma, page_va, page::zero_page(), false);
    }
    need_anon_vma(vma)?;
    let pa = page::alloc_user_page().ok_or(FaultError::Oom)?;
    set_pte(mm, vma, page_va, pa, true)
}

/// Linux's `fault_around_bytes` (64 KiB) in pages.
const FAULT_AROUND_PAGES: u64 = 16;
/// The span one page table maps (Linux's PMD_SIZE).
const PMD_SIZE: u64 = 2 << 20;

/// Linux's `do_fault_around` with `filemap_map_pages`: on a read fault, maps
/// the pages of the window around `page_va` that the page cache already holds
/// (never allocating or reading one), as a read fault on each would: the cache
/// page itself, writable in a shared writable mapping, read-only in a private
/// one, counted in RSS. The window is `FAULT_AROUND_PAGES` pages from the
/// aligned window's start (or the VMA's start if later), cut at the VMA's end,
/// at the end of the page table and at the end of the file. Present entries are
/// left alone, and so is the faulting page, which the caller maps. A failure (no
/// page table) only ends the window early: the fault itself decides.
fn do_fault_around(mm: &MmStruct, vma: &Vma, cache: &super::page_cache::PageCache, max_index: u64, page_va: u64) {
    let start = (page_va & !(FAULT_AROUND_PAGES * PAGE_SIZE - 1)).max(vma.start);
    let table_end = (start & !(PMD_SIZE - 1)) + PMD_SIZE;
    let end = (start + FAULT_AROUND_PAGES * PAGE_SIZE).min(vma.end).min(table_end);
    let first = vma.pgoff + (start - vma.start) / PAGE_SIZE;
    let last = (first + (end - start) / PAGE_SIZE).min(max_index);
    let fault_index = vma.pgoff + (page_va - vma.start) / PAGE_SIZE;
    let flags = MmInner::pte_flags(vma.prot, vma.is_shared());
    let mut mem = mm.phys_mem();
    // The page-table lock is taken under the cache's, per page.
    cache.for_each_in(first, last, |index, cached| {
        if index == fault_index {
            return true;
        }
        let va = start + (index - first) * PAGE_SIZE;
        let r = mm.page_table_lock.lock().pt.map(&mut mem, va, cached.phys(), PageSize::Size4K, flags);
        match r {
            Ok(()) => {
                // The entry's reference, taken under the cache's lock.
                let pa = cached.clone().into_raw();
                page::page_add_rmap(pa);
                if let Some(kind) = page::mm_counter(pa) {
                    mm.add_rss(kind, 1);
                }
                true
            }
            Err(MapError::AlreadyMapped) => true,
            Err(_) => false,
        }
    });
    mm.note_rss();
}

/// Write to a present, write-protected page of a writable VMA: copy-on-write.
/// Reuses the page when this mapping holds the only reference (`wp_page_reuse`).
/// Runs under `page_table_lock` (`pt`), held since the entry was found mapping `old`:
/// nothing changes it meanwhile.
fn do_wp_page(
    mm: &MmStruct,
    pt: &mut page_table::PageTable,
    vma: &Vma,
    page_va: u64,
    old: u64,
) -> Result<(), FaultError> {
    let mut mem: UserPhysMem<'_> = mm.phys_mem();
    let flags = MmInner::pte_flags(vma.prot, true);
    // A shared mapping writes its page in place; a private one reuses an
    // anonymous page nobody else holds (`wp_page_reuse`), and copies otherwise
    // (a page cache page is never made private).
    // The zero page is never written: it is replaced by a fresh zeroed page
    // (`wp_page_copy` allocates one without copying).
    // A page in a graft (another owner's table, mshare) is its owner's to change: the
    // write fails (`protect`/`remap` refuse it) until mshare says what a guest may do.
    let zero = page::is_zero_page(old);
    if !zero && (vma.is_shared() || (page::kind(old) == PageKind::Anon && page::page_count(old) == 1)) {
        pt.protect(&mut mem, page_va, flags).map_err(|_| FaultError::AccErr)?;
        if vma.is_shared() {
            // wp_page_shared: the file's page is written (`fault_dirty_shared_page`).
            page::set_page_dirty(old);
        }
        // Write permission added: other CPUs' read-only entries only cost them a
        // spurious fault (Linux's `wp_page_reuse` flushes nothing remote either).
        super::tlb::flush_spurious_fault(mm.root(), page_va);
    } else {
        need_anon_vma(vma)?;
        let new = page::alloc_user_page().ok_or(FaultError::Oom)?;
        if !zero {
            super::copy_frame(new, old);
        }
        if pt.remap(&mut mem, page_va, new, flags).is_err() {
            page::put_page(new);
            return Err(FaultError::AccErr);
        }
        page::page_add_rmap(new);
        page::page_remove_rmap(old);
        if let Some(kind) = page::mm_counter(old) {
            mm.add_rss(kind, -1);
        }
        mm.add_rss(PageKind::Anon, 1);
        mm.note_rss();
        // Every CPU's translation to the old page goes before the page may be freed
        // (Linux's `ptep_clear_flush`).
        mm.flush_page(page_va);
        page::put_page(old);
    }
    Ok(())
}

/// Marks the VMA starting at `start` as holding private anonymous pages (Linux's
/// `anon_vma_prepare`), so that fork copies its entries.
fn anon_vma_prepare(mm: &mut MmInner, start: u64) {
    if let Some(mut v) = mm.vmas.get_mut(&start) {
        v.flags.insert(super::vma::VmFlags::ANON_VMA);
    }
}

/// Linux's `stack_guard_gap`: 256 pages kept free below a growing stack.
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// A fault below a VM_GROWSDOWN VMA grows it down to the faulting page
/// (`expand_downwards`), unless that comes within the guard gap of the
/// mapping below, goes under mmap_min_addr, exceeds RLIMIT_AS or RLIMIT_STACK, or
/// strict overcommit refuses the pages.
fn expand_stack(mm: &mut MmInner, addr: u64) -> Result<Vma, FaultError> {
    let (start, above) = mm.vmas.range(addr..).next().map(|(k, v)| (*k, v.clone())).ok_or(FaultError::MapErr)?;
    if !above.flags.contains(super::vma::VmFlags::GROWSDOWN) {
        return Err(FaultError::MapErr);
    }
    let new_start = addr & !(PAGE_SIZE - 1);
    if new_start < super::commit::mmap_min_addr() {
        return Err(FaultError::MapErr);
    }
    if let Some((_, below)) = mm.vmas.range(..new_start).next_back() {
        if !below.flags.contains(super::vma::VmFlags::GROWSDOWN)
            && !below.prot.is_empty()
            && new_start - below.end < STACK_GUARD_GAP
        {
            return Err(FaultError::MapErr);
        }
    }
    // acct_stack_growth: RLIMIT_AS, RLIMIT_STACK, then the overcommit policy for the
    // pages a charged (VM_ACCOUNT) stack gains.
    let grow = (start - new_start) / PAGE_SIZE;
    if !super::commit::may_expand_vm(mm, grow) {
        return Err(FaultError::MapErr);
    }
    let limit = crate::process::current().process.rlimit(crate::process::task::RLIMIT_STACK).cur;
    if above.end - new_start > limit {
        return Err(FaultError::MapErr);
    }
    let charge = above.flags.committed(grow);
    if charge > 0 && super::commit::vm_enough_memory(mm, charge).is_err() {
        return Err(FaultError::MapErr);
    }
    super::commit::vm_acct_memory(charge as i64);
    let mut grown = mm.vmas.remove(&start).expect("vma just found");
    // An anonymous stack has no file offset to keep in step.
    grown.start = new_start;
    mm.vmas.insert(new_start, grown.clone());
    mm.note_vm();
    Ok(grown)
}
