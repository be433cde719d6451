//! Reverse mapping for file pages: which address spaces map a file's page.
//! Linux keeps an interval tree of VMAs per file (`i_mmap`); this kernel
//! walks every live address space's VMAs, which is simpler and enough until
//! a benchmark says otherwise. Used when a file shrinks (its pages past the
//! new end leave every mapping, private copies included) and when a hole is
//! punched (only the file's own pages leave; private copies stay), as Linux's
//! `unmap_mapping_range(.., even_cows)`.

use super::address_space::MmStruct;
use super::PAGE_SIZE;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::Mutex;

static MMS: Mutex<Vec<Weak<MmStruct>>> = Mutex::new(Vec::new());

/// Registers a new address space.
pub fn register(mm: &Arc<MmStruct>) {
    let mut list = MMS.lock();
    list.retain(|w| w.strong_count() > 0);
    list.push(Arc::downgrade(mm));
}

/// Every live address space.
pub fn all_mms() -> Vec<Arc<MmStruct>> {
    MMS.lock().iter().filter_map(|w| w.upgrade()).collect()
}

/// Unmaps file pages [first, end) of the inode at `inode` (its data
/// pointer) from every address space; with `even_cows` false, a private
/// mapping keeps the copies it made (anonymous pages) and loses only the
/// file's pages it still maps.
pub fn unmap_file_pages(inode: *const (), first: u64, end: u64, even_cows: bool) {
    for mm in all_mms() {
        let mut inner = mm.inner.lock();
        let ranges: Vec<(u64, u64, bool)> = inner
            .vmas
            .values()
            .filter(|v| v.backend.inode().is_some_and(|i| Arc::as_ptr(i) as *const () == inode))
            .filter_map(|v| {
                let pages = (v.end - v.start) / PAGE_SIZE;
                let (lo, hi) = (v.pgoff.max(first), (v.pgoff + pages).min(end));
                let keep_cows = !even_cows && !v.is_shared();
                (lo < hi)
                    .then(|| (v.start + (lo - v.pgoff) * PAGE_SIZE, v.start + (hi - v.pgoff) * PAGE_SIZE, keep_cows))
            })
            .collect();
        let tlb = super::tlb::MmuGather::new(inner.pt.root());
        for (s, e, keep_cows) in ranges {
            if keep_cows {
                // Only the entries that still map the file's pages.
                let mut file_pages = Vec::new();
                let mem = super::address_space::UserPhysMem { pt_pages: &mm.pt_pages };
                let mut cursor = inner.pt.cursor(s, e);
                while let Some((at, m)) = cursor.next(&mem) {
                    if super::page::kind(m.phys) != super::page::PageKind::Anon {
                        file_pages.push(at);
                    }
                }
                for at in file_pages {
                    inner.zap_range(&tlb, &mm.pt_pages, at, at + PAGE_SIZE);
                }
            } else {
                inner.zap_range(&tlb, &mm.pt_pages, s, e);
            }
        }
    }
}

/// Forgets dead address spaces and gives back the list's spare capacity (`leak`'s shrinkers).
pub fn shrink() {
    let mut list = MMS.lock();
    list.retain(|w| w.strong_count() > 0);
    list.shrink_to_fit();
}
