//! The page cache of one inode (Linux's `address_space` i_pages): file
//! pages indexed by page offset, each holding one reference of its frame.
//! Mappings take their own references, so a page truncated away stays valid
//! for whoever still maps it until they unmap it.

use super::page::{self, PageKind};
use super::PAGE_SIZE;
use alloc::collections::BTreeMap;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// Pages in every shmem page cache (the `Shmem` of /proc/meminfo).
pub static SHMEM_PAGES: AtomicU64 = AtomicU64::new(0);

pub struct PageCache {
    pages: Mutex<BTreeMap<u64, u64>>,
    kind: PageKind,
    /// Each page is charged to committed memory while cached: the pages of a shmem
    /// object not charged for its whole size (Linux's VM_NORESERVE shmem inodes, as
    /// every tmpfs file, and `shmem_acct_block`).
    per_page_commit: bool,
}

impl PageCache {
    pub const fn new(kind: PageKind, per_page_commit: bool) -> PageCache {
        PageCache { pages: Mutex::new(BTreeMap::new()), kind, per_page_commit }
    }

    pub fn kind(&self) -> PageKind {
        self.kind
    }

    /// The frame caching page `index`, if present (no reference taken).
    pub fn find(&self, index: u64) -> Option<u64> {
        self.pages.lock().get(&index).copied()
    }

    /// Calls `f(index, frame)` for each cached page in [first, end), in order, under
    /// the cache's lock, until `f` returns false (no reference taken: `f` takes one
    /// for a page it keeps). Fault-around maps a window of pages with one lookup.
    pub fn for_each_in(&self, first: u64, end: u64, mut f: impl FnMut(u64, u64) -> bool) {
        if first >= end {
            return;
        }
        for (&index, &pa) in self.pages.lock().range(first..end) {
            if !f(index, pa) {
                break;
            }
        }
    }

    /// The frame for page `index`, created zero-filled if absent (a hole in
    /// a tmpfs file reads as zeroes). None when memory is exhausted.
    pub fn find_or_create(&self, index: u64) -> Option<u64> {
        let mut pages = self.pages.lock();
        if let Some(&pa) = pages.get(&index) {
            return Some(pa);
        }
        let pa = page::alloc_user_page_of(self.kind)?;
        pages.insert(index, pa);
        if self.kind == PageKind::Shmem {
            SHMEM_PAGES.fetch_add(1, Ordering::Relaxed);
        }
        if self.per_page_commit {
            super::commit::vm_acct_memory(1);
        }
        Some(pa)
    }

    /// Drops every page at or after `first` (truncate_inode_pages_range);
    /// returns how many were dropped.
    pub fn truncate_from(&self, first: u64) -> u64 {
        let dropped = self.pages.lock().split_off(&first);
        let n = dropped.len() as u64;
        for (_, pa) in dropped {
            self.release(pa);
        }
        n
    }

    /// Drops the pages in [first, end) (hole punching, MADV_REMOVE).
    pub fn remove_range(&self, first: u64, end: u64) -> u64 {
        let victims: alloc::vec::Vec<(u64, u64)> = {
            let mut pages = self.pages.lock();
            let keys: alloc::vec::Vec<u64> = pages.range(first..end).map(|(k, _)| *k).collect();
            keys.into_iter().filter_map(|k| pages.remove(&k).map(|pa| (k, pa))).collect()
        };
        let n = victims.len() as u64;
        for (_, pa) in victims {
            self.release(pa);
        }
        n
    }

    fn release(&self, pa: u64) {
        if self.kind == PageKind::Shmem {
            SHMEM_PAGES.fetch_sub(1, Ordering::Relaxed);
        }
        if self.per_page_commit {
            super::commit::vm_acct_memory(-1);
        }
        page::put_page(pa);
    }

    /// Zeroes bytes [from, PAGE_SIZE) of page `index` if it is cached (the
    /// partial last page after a shrinking truncate).
    pub fn zero_tail(&self, index: u64, from: u64) {
        if let Some(pa) = self.find(index) {
            super::zero_phys(pa + from, (PAGE_SIZE - from) as usize);
        }
    }

    pub fn nr_pages(&self) -> u64 {
        self.pages.lock().len() as u64
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        let pages = core::mem::take(self.pages.get_mut());
        for (_, pa) in pages {
            self.release(pa);
        }
    }
}
