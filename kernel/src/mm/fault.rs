//! The page-fault path (Linux's `handle_mm_fault`, mm/memory.c, 6.6):
//! find the VMA, check the access against it, then by backend fill the page
//! (`do_anonymous_page` with the shared zero page for reads,
//! `do_read_fault` with `do_fault_around`, `do_cow_fault`, `do_shared_fault`)
//! or break copy-on-write (`do_wp_page`).
#![deny(unsafe_code)]

use super::address_space::{MmInner, UserPhysMem};
use super::page::{self, Page, PageKind};
use super::vma::{Backend, Prot, VmFlags, Vma};
use super::PAGE_SIZE;
use core::sync::atomic::AtomicU64;
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

/// Resolves a fault at `addr` in `mm`. On success the page is mapped with at
/// least the requested access.
pub fn handle_mm_fault(mm: &mut MmInner, pt_pages: &AtomicU64, addr: u64, access: Access) -> Result<(), FaultError> {
    let page_va = addr & !(PAGE_SIZE - 1);
    let vma = match mm.find_vma(addr) {
        Some(v) => v.clone(),
        None => expand_stack(mm, addr)?,
    };
    if !access_allowed(&vma, access) {
        return Err(FaultError::AccErr);
    }
    if vma.flags.contains(VmFlags::HUGETLB) {
        // hugetlb_no_page: no huge page to allocate (the pool is empty, and a VMA without
        // a reservation may not take one anyway): SIGBUS.
        return Err(FaultError::Bus);
    }
    let mem = UserPhysMem { pt_pages, owner: mm.owner };
    if let Some(m) = mm.pt.translate(&mem, page_va) {
        if access.write && !m.flags.contains(PteFlags::WRITABLE) {
            return do_wp_page(mm, pt_pages, &vma, page_va, m.phys);
        }
        // Another path mapped it already, or a stale TLB entry of this CPU: nothing to do
        // but drop that entry here (other CPUs fix theirs on their own faults).
        super::tlb::flush_spurious_fault(mm.pt.root(), page_va);
        return Ok(());
    }
    match &vma.backend {
        Backend::Anonymous => do_anonymous_page(mm, pt_pages, &vma, page_va, access),
        Backend::File(file) => {
            let inode = file.inode().ok_or(FaultError::Bus)?;
            let index = vma.pgoff + (page_va - vma.start) / PAGE_SIZE;
            // A page wholly past the end of the file: SIGBUS (as filemap_fault).
            let max_index = inode.metadata().size.div_ceil(PAGE_SIZE);
            if index >= max_index {
                return Err(FaultError::Bus);
            }
            let cache = inode.page_cache().ok_or(FaultError::Bus)?;
            if !access.write {
                // do_read_fault: first map what the cache already holds around the address.
                do_fault_around(mm, pt_pages, &vma, cache, max_index, page_va);
            }
            // The size was read under the mm lock, which a truncation takes (to unmap)
            // only after it has set the new size: either this fault maps the page before
            // that unmap, which then removes it, or it saw the new size and is SIGBUS.
            let cached = cache.find_or_create(index).ok_or(FaultError::Oom)?;
            if vma.is_shared() {
                // do_shared_fault: the page cache page itself.
                set_pte(mm, pt_pages, &vma, page_va, cached.into_raw(), true)
            } else if access.write {
                // do_cow_fault: a private copy at once.
                let copy = Page::alloc(PageKind::Anon).ok_or(FaultError::Oom)?;
                copy.copy_from(&cached);
                anon_vma_prepare(mm, vma.start);
                set_pte(mm, pt_pages, &vma, page_va, copy.into_raw(), true)
            } else {
                // do_read_fault: the cache page, read-only until written.
                set_pte(mm, pt_pages, &vma, page_va, cached.into_raw(), false)
            }
        }
    }
}

/// Maps `pa`, whose reference the caller took for this entry, at `page_va`
/// (Linux's `do_set_pte`): the page gains a mapping and its RSS counter a page.
/// On failure (no page table) the reference is dropped.
fn set_pte(
    mm: &mut MmInner,
    pt_pages: &AtomicU64,
    vma: &Vma,
    page_va: u64,
    pa: u64,
    writable: bool,
) -> Result<(), FaultError> {
    let mut mem = UserPhysMem { pt_pages, owner: mm.owner };
    let flags = MmInner::pte_flags(vma.prot, writable);
    if mm.pt.map(&mut mem, page_va, pa, PageSize::Size4K, flags).is_err() {
        page::put_page(pa);
        return Err(FaultError::Oom);
    }
    page::page_add_rmap(pa);
    if let Some(kind) = page::mm_counter(pa) {
        mm.rss[kind as usize] += 1;
        mm.note_rss();
    }
    Ok(())
}

/// A fault on an empty entry of anonymous memory (Linux's `do_anonymous_page`):
/// a read of private memory maps the shared zero page read-only (no page is
/// allocated and no RSS counted; the first write replaces it, `do_wp_page`),
/// anything else a fresh zeroed page.
fn do_anonymous_page(
    mm: &mut MmInner,
    pt_pages: &AtomicU64,
    vma: &Vma,
    page_va: u64,
    access: Access,
) -> Result<(), FaultError> {
    if !access.write && !vma.is_shared() {
        return set_pte(mm, pt_pages, vma, page_va, page::zero_page(), false);
    }
    let pa = page::alloc_user_page().ok_or(FaultError::Oom)?;
    anon_vma_prepare(mm, vma.start);
    set_pte(mm, pt_pages, vma, page_va, pa, true)
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
fn do_fault_around(
    mm: &mut MmInner,
    pt_pages: &AtomicU64,
    vma: &Vma,
    cache: &super::page_cache::PageCache,
    max_index: u64,
    page_va: u64,
) {
    let start = (page_va & !(FAULT_AROUND_PAGES * PAGE_SIZE - 1)).max(vma.start);
    let table_end = (start & !(PMD_SIZE - 1)) + PMD_SIZE;
    let end = (start + FAULT_AROUND_PAGES * PAGE_SIZE).min(vma.end).min(table_end);
    let first = vma.pgoff + (start - vma.start) / PAGE_SIZE;
    let last = (first + (end - start) / PAGE_SIZE).min(max_index);
    let fault_index = vma.pgoff + (page_va - vma.start) / PAGE_SIZE;
    let flags = MmInner::pte_flags(vma.prot, vma.is_shared());
    let mut mem = UserPhysMem { pt_pages, owner: mm.owner };
    let (pt, rss) = (&mut mm.pt, &mut mm.rss);
    cache.for_each_in(first, last, |index, cached| {
        if index == fault_index {
            return true;
        }
        let va = start + (index - first) * PAGE_SIZE;
        match pt.map(&mut mem, va, cached.phys(), PageSize::Size4K, flags) {
            Ok(()) => {
                // The entry's reference, taken under the cache's lock.
                let pa = cached.clone().into_raw();
                page::page_add_rmap(pa);
                if let Some(kind) = page::mm_counter(pa) {
                    rss[kind as usize] += 1;
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
fn do_wp_page(mm: &mut MmInner, pt_pages: &AtomicU64, vma: &Vma, page_va: u64, old: u64) -> Result<(), FaultError> {
    let mut mem = UserPhysMem { pt_pages, owner: mm.owner };
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
        mm.pt.protect(&mut mem, page_va, flags).map_err(|_| FaultError::AccErr)?;
        // Write permission added: other CPUs' read-only entries only cost them a
        // spurious fault (Linux's `wp_page_reuse` flushes nothing remote either).
        super::tlb::flush_spurious_fault(mm.pt.root(), page_va);
    } else {
        let new = page::alloc_user_page().ok_or(FaultError::Oom)?;
        if !zero {
            super::copy_frame(new, old);
        }
        if mm.pt.remap(&mut mem, page_va, new, flags).is_err() {
            page::put_page(new);
            return Err(FaultError::AccErr);
        }
        anon_vma_prepare(mm, vma.start);
        page::page_add_rmap(new);
        page::page_remove_rmap(old);
        if let Some(kind) = page::mm_counter(old) {
            mm.rss[kind as usize] -= 1;
        }
        mm.rss[PageKind::Anon as usize] += 1;
        mm.note_rss();
        // Every CPU's translation to the old page goes before the page may be freed
        // (Linux's `ptep_clear_flush`).
        super::tlb::flush_page(mm.pt.root(), page_va);
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
