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
    /// The VMAs of every address space that map this file, by file range (Linux's
    /// `i_mmap`; `rmap.rs`).
    pub i_mmap: Mutex<augmented_tree::IntervalTree<super::rmap::MapKey>>,
}

impl PageCache {
    pub const fn new(kind: PageKind) -> PageCache {
        PageCache { pages: Mutex::new(BTreeMap::new()), kind, i_mmap: Mutex::new(augmented_tree::IntervalTree::new()) }
    }

    pub fn kind(&self) -> PageKind {
        self.kind
    }

    /// The frame caching page `index`, if present (no reference taken).
    pub fn find(&self, index: u64) -> Option<u64> {
        self.pages.lock().get(&index).copied()
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
