//! Reverse mapping for file pages: which VMAs map a range of a file. As Linux's
//! `address_space->i_mmap` (`mm/interval_tree.c`'s `vma_interval_tree`), every file's page
//! cache keeps an interval tree of the file VMAs of every address space, keyed by the
//! range of file pages each maps; `VmaTree` links and unlinks its file VMAs as they enter,
//! change and leave. A lookup visits only the VMAs that map the range, and creating or
//! dropping an address space touches no other one.
//!
//! Used when a file shrinks (its pages past the new end leave every mapping, private
//! copies included) and when a hole is punched (only the file's own pages leave; private
//! copies stay), as Linux's `unmap_mapping_range(.., even_cows)`.
//!
//! Lock order: `MmStruct::mmap_lock` → `PageCache::i_mmap` (a leaf: nothing is locked under
//! it; the walk below takes its snapshot, lets go, then locks each address space).

use super::address_space::MmStruct;
use super::page_cache::PageCache;
use super::PAGE_SIZE;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use augmented_tree::IntervalKey;
use core::cmp::Ordering;

/// One file VMA in its file's `i_mmap`: the first file page it maps, the address space
/// (by number, and a weak reference to reach it) and the VMA's start there. The end of
/// its file range is the tree entry's value.
#[derive(Clone)]
pub struct MapKey {
    pub pgoff: u64,
    pub mm_id: u64,
    pub vma_start: u64,
    pub mm: Weak<MmStruct>,
}

impl MapKey {
    fn order(&self) -> (u64, u64, u64) {
        (self.pgoff, self.mm_id, self.vma_start)
    }
}

impl PartialEq for MapKey {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for MapKey {}

impl PartialOrd for MapKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MapKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order().cmp(&other.order())
    }
}

impl IntervalKey for MapKey {
    fn start(&self) -> u64 {
        self.pgoff
    }
}

/// Unmaps file pages [first, end) of the file behind `cache` from every address space
/// that maps them; with `even_cows` false, a private mapping keeps the copies it made
/// (anonymous pages) and loses only the file's pages it still maps.
pub fn unmap_file_pages(cache: &PageCache, first: u64, end: u64, even_cows: bool) {
    // The VMAs to visit, found under the i_mmap lock; each is looked up again under its
    // address space's `mmap_lock`, which cannot be taken under i_mmap's. The lock is
    // taken exclusive: a fault reads the file size under it shared, so it either maps
    // its page before this unmap or sees the new size (Linux gets the same from the
    // page lock and a size check after it, without `mmap_lock`).
    let mut hits: Vec<(Arc<MmStruct>, u64)> = Vec::new();
    cache.i_mmap.lock().for_each_overlapping(first, end, |k, _| {
        if let Some(mm) = k.mm.upgrade() {
            hits.push((mm, k.vma_start));
        }
    });
    for (mm, vma_start) in &hits {
        let inner = mm.mmap_lock.write();
        let Some(v) = inner.vmas.get(vma_start) else { continue };
        if !v.backend.inode().and_then(|i| i.page_cache()).is_some_and(|c| core::ptr::eq(c, cache)) {
            continue;
        }
        let pages = (v.end - v.start) / PAGE_SIZE;
        let (lo, hi) = (v.pgoff.max(first), (v.pgoff + pages).min(end));
        if lo >= hi {
            continue;
        }
        let (s, e) = (v.start + (lo - v.pgoff) * PAGE_SIZE, v.start + (hi - v.pgoff) * PAGE_SIZE);
        let tlb = super::tlb::MmuGather::for_mm(&mm);
        if !even_cows && !v.is_shared() {
            // Only the entries that still map the file's pages.
            let mut file_pages = Vec::new();
            let mem = mm.phys_mem();
            {
                let pt = mm.page_table_lock.lock();
                let mut cursor = pt.pt.cursor(s, e);
                while let Some((at, m)) = cursor.next(&mem) {
                    if super::page::kind(m.phys) != super::page::PageKind::Anon {
                        file_pages.push(at);
                    }
                }
            }
            for at in file_pages {
                mm.zap_range(&tlb, at, at + PAGE_SIZE);
            }
        } else {
            mm.zap_range(&tlb, s, e);
        }
        drop(inner);
    }
}
