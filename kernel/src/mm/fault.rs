//! The page-fault path (Linux's `handle_mm_fault`, mm/memory.c, 6.6):
//! find the VMA, check the access against it, then by backend fill the page
//! (`do_anonymous_page`, `do_read_fault`/`do_cow_fault` for private files)
//! or break copy-on-write (`do_wp_page`).
#![deny(unsafe_code)]

use super::address_space::{MmInner, UserPhysMem};
use super::vma::{Backend, Prot, Vma};
use super::{page, PAGE_SIZE};
use crate::arch::cpu;
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
    let vma = mm.find_vma(addr).ok_or(FaultError::MapErr)?.clone();
    if !access_allowed(&vma, access) {
        return Err(FaultError::AccErr);
    }
    let mut mem = UserPhysMem { pt_pages };
    if let Some(m) = mm.pt.translate(&mem, page_va) {
        if access.write && !m.flags.contains(PteFlags::WRITABLE) {
            return do_wp_page(mm, pt_pages, &vma, page_va, m.phys);
        }
        // Another path mapped it already, or a stale TLB entry: nothing to do but flush.
        cpu::invlpg(page_va);
        return Ok(());
    }
    let pa = match &vma.backend {
        Backend::Anonymous => page::alloc_user_page().ok_or(FaultError::Oom)?,
        Backend::File(inode, _) => {
            let offset = vma.pgoff * PAGE_SIZE + (page_va - vma.start);
            let size = inode.metadata().size;
            if offset >= super::align_up(size, PAGE_SIZE) {
                return Err(FaultError::Bus);
            }
            let pa = page::alloc_user_page().ok_or(FaultError::Oom)?;
            let mut buf = [0u8; 512];
            let mut done = 0u64;
            while done < PAGE_SIZE && offset + done < size {
                let n = inode.read_at(offset + done, &mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                let n = n.min((PAGE_SIZE - done) as usize);
                super::write_phys(pa + done, &buf[..n]);
                done += n as u64;
            }
            pa
        }
    };
    // A private page that is ours alone may be writable at once; shared
    // file mappings arrive with the page cache (next issue).
    let flags = MmInner::pte_flags(vma.prot, true);
    if mm.pt.map(&mut mem, page_va, pa, PageSize::Size4K, flags).is_err() {
        page::put_page(pa);
        return Err(FaultError::Oom);
    }
    mm.rss += 1;
    Ok(())
}

/// Write to a present, write-protected page of a writable VMA: copy-on-write.
/// Reuses the page when this mapping holds the only reference (`wp_page_reuse`).
fn do_wp_page(mm: &mut MmInner, pt_pages: &AtomicU64, vma: &Vma, page_va: u64, old: u64) -> Result<(), FaultError> {
    let mut mem = UserPhysMem { pt_pages };
    let flags = MmInner::pte_flags(vma.prot, true);
    if vma.is_shared() || page::page_count(old) == 1 {
        mm.pt.protect(&mut mem, page_va, flags).map_err(|_| FaultError::Oom)?;
    } else {
        let new = page::alloc_user_page().ok_or(FaultError::Oom)?;
        super::copy_frame(new, old);
        mm.pt.remap(&mut mem, page_va, new, flags).expect("COW page vanished under the mm lock");
        page::put_page(old);
    }
    cpu::invlpg(page_va);
    Ok(())
}
