//! The page-fault path (Linux's `handle_mm_fault`, mm/memory.c, 6.6):
//! find the VMA, check the access against it, then by backend fill the page
//! (`do_anonymous_page`, `do_read_fault`/`do_cow_fault` for private files)
//! or break copy-on-write (`do_wp_page`).
#![deny(unsafe_code)]

use super::address_space::{MmInner, UserPhysMem};
use super::page::{self, PageKind};
use super::vma::{Backend, Prot, Vma};
use super::PAGE_SIZE;
use core::sync::atomic::AtomicU64;
use page_table::{PageSize, PteFlags};

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
    let mut mem = UserPhysMem { pt_pages };
    if let Some(m) = mm.pt.translate(&mem, page_va) {
        if access.write && !m.flags.contains(PteFlags::WRITABLE) {
            return do_wp_page(mm, pt_pages, &vma, page_va, m.phys);
        }
        // Another path mapped it already, or a stale TLB entry: nothing to do but flush.
        super::tlb::flush_page(mm.pt.root(), page_va);
        return Ok(());
    }
    let (pa, writable) = match &vma.backend {
        Backend::Anonymous => {
            let pa = page::alloc_user_page().ok_or(FaultError::Oom)?;
            anon_vma_prepare(mm, vma.start);
            (pa, true)
        }
        Backend::File(file) => {
            let inode = file.inode().ok_or(FaultError::Bus)?;
            let index = vma.pgoff + (page_va - vma.start) / PAGE_SIZE;
            // A page wholly past the end of the file: SIGBUS (as filemap_fault).
            if index >= inode.metadata().size.div_ceil(PAGE_SIZE) {
                return Err(FaultError::Bus);
            }
            let cache = inode.page_cache().ok_or(FaultError::Bus)?;
            let cached = cache.find_or_create(index).ok_or(FaultError::Oom)?;
            if vma.is_shared() {
                // do_shared_fault: the page cache page itself.
                page::get_page(cached);
                (cached, true)
            } else if access.write {
                // do_cow_fault: a private copy at once.
                let copy = page::alloc_user_page().ok_or(FaultError::Oom)?;
                super::copy_frame(copy, cached);
                anon_vma_prepare(mm, vma.start);
                (copy, true)
            } else {
                // do_read_fault: the cache page, read-only until written.
                page::get_page(cached);
                (cached, false)
            }
        }
    };
    let flags = MmInner::pte_flags(vma.prot, writable);
    if mm.pt.map(&mut mem, page_va, pa, PageSize::Size4K, flags).is_err() {
        page::put_page(pa);
        return Err(FaultError::Oom);
    }
    mm.rss[page::kind(pa) as usize] += 1;
    mm.note_rss();
    Ok(())
}

/// Write to a present, write-protected page of a writable VMA: copy-on-write.
/// Reuses the page when this mapping holds the only reference (`wp_page_reuse`).
fn do_wp_page(mm: &mut MmInner, pt_pages: &AtomicU64, vma: &Vma, page_va: u64, old: u64) -> Result<(), FaultError> {
    let mut mem = UserPhysMem { pt_pages };
    let flags = MmInner::pte_flags(vma.prot, true);
    // A shared mapping writes its page in place; a private one reuses an
    // anonymous page nobody else holds (`wp_page_reuse`), and copies otherwise
    // (a page cache page is never made private).
    if vma.is_shared() || (page::kind(old) == PageKind::Anon && page::page_count(old) == 1) {
        mm.pt.protect(&mut mem, page_va, flags).map_err(|_| FaultError::Oom)?;
    } else {
        let new = page::alloc_user_page().ok_or(FaultError::Oom)?;
        super::copy_frame(new, old);
        anon_vma_prepare(mm, vma.start);
        mm.pt.remap(&mut mem, page_va, new, flags).expect("COW page vanished under the mm lock");
        mm.rss[page::kind(old) as usize] -= 1;
        mm.rss[PageKind::Anon as usize] += 1;
        page::put_page(old);
    }
    super::tlb::flush_page(mm.pt.root(), page_va);
    Ok(())
}

/// Marks the VMA starting at `start` as holding private anonymous pages (Linux's
/// `anon_vma_prepare`), so that fork copies its entries.
fn anon_vma_prepare(mm: &mut MmInner, start: u64) {
    if let Some(v) = mm.vmas.get_mut(&start) {
        v.flags.insert(super::vma::VmFlags::ANON_VMA);
    }
}

/// Linux's `stack_guard_gap`: 256 pages kept free below a growing stack.
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// A fault below a VM_GROWSDOWN VMA grows it down to the faulting page
/// (`expand_downwards`), unless that comes within the guard gap of the
/// mapping below, goes under mmap_min_addr, or exceeds RLIMIT_STACK.
fn expand_stack(mm: &mut MmInner, addr: u64) -> Result<Vma, FaultError> {
    let (start, above) = mm.vmas.range(addr..).next().map(|(k, v)| (*k, v.clone())).ok_or(FaultError::MapErr)?;
    if !above.flags.contains(super::vma::VmFlags::GROWSDOWN) {
        return Err(FaultError::MapErr);
    }
    let new_start = addr & !(PAGE_SIZE - 1);
    if new_start < super::address_space::MMAP_MIN_ADDR {
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
    let limit = crate::process::current().process.rlimit(crate::process::task::RLIMIT_STACK).cur;
    if above.end - new_start > limit {
        return Err(FaultError::MapErr);
    }
    let mut grown = mm.vmas.remove(&start).expect("vma just found");
    // An anonymous stack has no file offset to keep in step.
    grown.start = new_start;
    mm.vmas.insert(new_start, grown.clone());
    mm.note_vm();
    Ok(grown)
}
