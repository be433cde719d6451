//! The page cache of one inode (Linux's `address_space` i_pages, mm/filemap.c):
//! file pages indexed by page offset, each held by the cache through a `Page`
//! handle (one reference). Lookups hand out a `Page` whose reference is taken
//! under the cache's lock (Linux's `filemap_get_folio` takes it under the RCU
//! walk), so a page removed from the cache by a truncation or a hole punch at
//! any moment stays valid for whoever is copying through it or mapping it until
//! they drop it. Mappings keep their own references, so a page truncated away
//! stays valid for whoever still maps it until they unmap it.

use super::page::{Page, PageKind};
use crate::sync::SpinLock as Mutex;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Pages in every shmem page cache (the `Shmem` of /proc/meminfo).
pub static SHMEM_PAGES: AtomicU64 = AtomicU64::new(0);

pub struct PageCache {
    pages: Mutex<BTreeMap<u64, Page>, crate::sync::order::PageCachePages>,
    kind: PageKind,
    /// Each page is charged to committed memory while cached: the pages of a shmem
    /// object not charged for its whole size (Linux's VM_NORESERVE shmem inodes, as
    /// every tmpfs file, and `shmem_acct_block`).
    per_page_commit: bool,
    /// The VMAs of every address space that map this file, by file range (Linux's
    /// `i_mmap`; `rmap.rs`).
    pub i_mmap: Mutex<augmented_tree::IntervalTree<super::rmap::MapKey>, crate::sync::order::PageCacheIMmap>,
    /// Linux's `i_mmap_writable`: the shared VMAs that may write the file (VM_SHARED with
    /// VM_MAYWRITE) when positive; negative while writable mappings are denied (a memfd
    /// sealed with F_SEAL_WRITE). `VmaTree` counts its VMAs as they are linked and
    /// unlinked; an atomic, as Linux's, so no lock orders it.
    i_mmap_writable: AtomicI64,
    /// The address space owning this file's shared page tables (`pt_share`), while some
    /// address space grafts them: the grafts hold it, not the file (it maps the file).
    pub pt_share_host: Mutex<alloc::sync::Weak<super::address_space::MmStruct>, crate::sync::order::PtShareHost>,
}

impl PageCache {
    pub const fn new(kind: PageKind, per_page_commit: bool) -> PageCache {
        PageCache {
            pages: Mutex::new(BTreeMap::new()),
            kind,
            per_page_commit,
            i_mmap: Mutex::new(augmented_tree::IntervalTree::new()),
            i_mmap_writable: AtomicI64::new(0),
            pt_share_host: Mutex::new(alloc::sync::Weak::new()),
        }
    }

    /// Linux's `mapping_map_writable`: one more writable shared mapping, unless they are
    /// denied (EPERM).
    pub fn mapping_map_writable(&self) -> crate::errno::KResult<()> {
        self.i_mmap_writable
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n >= 0).then_some(n + 1))
            .map(|_| ())
            .map_err(|_| crate::errno::EPERM)
    }

    /// Linux's `mapping_unmap_writable`.
    pub fn mapping_unmap_writable(&self) {
        self.i_mmap_writable.fetch_sub(1, Ordering::AcqRel);
    }

    /// Linux's `mapping_allow_writable`: a writable shared VMA was linked (its maker
    /// checked `mapping_map_writable` and holds that count across the link).
    pub fn mapping_allow_writable(&self) {
        self.i_mmap_writable.fetch_add(1, Ordering::AcqRel);
    }

    /// Linux's `mapping_deny_writable`: no writable shared mapping from now on, refused
    /// (EBUSY) while one exists.
    pub fn mapping_deny_writable(&self) -> crate::errno::KResult<()> {
        self.i_mmap_writable
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n <= 0).then_some(n - 1))
            .map(|_| ())
            .map_err(|_| crate::errno::EBUSY)
    }

    /// Linux's `mapping_writably_mapped`: a writable shared mapping exists.
    pub fn mapping_writably_mapped(&self) -> bool {
        self.i_mmap_writable.load(Ordering::Acquire) > 0
    }

    pub fn kind(&self) -> PageKind {
        self.kind
    }

    /// The page caching `index`, if present, with a reference of its own
    /// (Linux's `filemap_get_folio`).
    pub fn find(&self, index: u64) -> Option<Page> {
        self.pages.lock().get(&index).cloned()
    }

    /// Whether page `index` is cached (no reference taken: mincore's question).
    pub fn contains(&self, index: u64) -> bool {
        self.pages.lock().contains_key(&index)
    }

    /// Calls `f(index, page)` for each cached page in [first, end), in order, under
    /// the cache's lock, until `f` returns false. `f` borrows the cache's handle and
    /// clones it for a page it keeps. Fault-around maps a window of pages with one
    /// lookup (Linux's `filemap_map_pages`).
    pub fn for_each_in(&self, first: u64, end: u64, mut f: impl FnMut(u64, &Page) -> bool) {
        if first >= end {
            return;
        }
        for (&index, page) in self.pages.lock().range(first..end) {
            if !f(index, page) {
                break;
            }
        }
    }

    /// The page for `index`, created zero-filled if absent (a hole in a tmpfs
    /// file reads as zeroes), with a reference of its own taken under the
    /// cache's lock (Linux's `__filemap_get_folio(FGP_CREAT)`). None when memory
    /// is exhausted.
    pub fn find_or_create(&self, index: u64) -> Option<Page> {
        let mut pages = self.pages.lock();
        if let Some(page) = pages.get(&index) {
            return Some(page.clone());
        }
        let page = Page::alloc(self.kind)?;
        pages.insert(index, page.clone());
        if self.kind == PageKind::Shmem {
            SHMEM_PAGES.fetch_add(1, Ordering::Relaxed);
        }
        if self.per_page_commit {
            super::commit::vm_acct_memory(1);
        }
        Some(page)
    }

    /// Drops every page at or after `first` (truncate_inode_pages_range);
    /// returns how many were dropped.
    pub fn truncate_from(&self, first: u64) -> u64 {
        let dropped = self.pages.lock().split_off(&first);
        self.release(dropped.into_values())
    }

    /// Drops the pages in [first, end) (hole punching, MADV_REMOVE).
    pub fn remove_range(&self, first: u64, end: u64) -> u64 {
        let victims: Vec<Page> = {
            let mut pages = self.pages.lock();
            let keys: Vec<u64> = pages.range(first..end).map(|(k, _)| *k).collect();
            keys.into_iter().filter_map(|k| pages.remove(&k)).collect()
        };
        self.release(victims.into_iter())
    }

    /// Drops the cache's references to pages taken out of it, outside its lock
    /// (the last reference frees the frame); returns how many there were.
    fn release(&self, pages: impl Iterator<Item = Page>) -> u64 {
        let mut n = 0;
        for page in pages {
            if self.kind == PageKind::Shmem {
                SHMEM_PAGES.fetch_sub(1, Ordering::Relaxed);
            }
            if self.per_page_commit {
                super::commit::vm_acct_memory(-1);
            }
            drop(page);
            n += 1;
        }
        n
    }

    /// Zeroes bytes [from, to) of page `index` if it is cached (the partial last
    /// page after a shrinking truncate, the partial edges of a punched hole).
    pub fn zero_range(&self, index: u64, from: usize, to: usize) {
        if let Some(page) = self.find(index) {
            page.zero(from, to - from);
        }
    }

    pub fn nr_pages(&self) -> u64 {
        self.pages.lock().len() as u64
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        let pages = core::mem::take(self.pages.get_mut());
        self.release(pages.into_values());
    }
}
