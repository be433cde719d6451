//! The VMAs of one address space (Linux's maple tree `mm->mm_mt` with what `vma_link`,
//! `vma_unlink` and `vm_stat_account` keep beside it): VMAs by start address, the free gaps
//! between them searchable by size (`vm_unmapped_area`'s gap tracking), the counters
//! `total_vm` and `locked_vm`, and each file VMA's entry in its file's `i_mmap` (see
//! `rmap.rs`) and count in its `i_mmap_writable`, all updated on each change so that no operation walks every VMA. Every
//! change goes through `insert`, `remove` or the `VmaMut` handle of `get_mut`.
//!
//! Lock order: `MmStruct::mmap_lock` → a file's `i_mmap`.
#![deny(unsafe_code)]

use super::address_space::MmStruct;
use super::page_cache::PageCache;
use super::rmap::MapKey;
use super::vma::{VmFlags, Vma};
use super::PAGE_SIZE;
use alloc::collections::btree_map::{self, BTreeMap};
use alloc::sync::Weak;
use augmented_tree::GapTree;
use core::ops::{Deref, DerefMut, Index, RangeBounds};

pub struct VmaTree {
    /// The address space these VMAs belong to, as the files' reverse maps name it.
    owner: Weak<MmStruct>,
    owner_id: u64,
    map: BTreeMap<u64, Vma>,
    /// The same ranges, summarised by the largest gap between neighbours.
    gaps: GapTree,
    /// Pages of all VMAs (Linux's `total_vm`, VmSize).
    total_pages: u64,
    /// Pages of VM_LOCKED VMAs (`locked_vm`, VmLck).
    locked_pages: u64,
    /// mshare windows among the VMAs (usercopy looks a window's pages up in its host).
    windows: u64,
}

fn pages(v: &Vma) -> u64 {
    (v.end - v.start) / PAGE_SIZE
}

fn locked(v: &Vma) -> u64 {
    if v.flags.contains(VmFlags::LOCKED) {
        pages(v)
    } else {
        0
    }
}

/// The page cache a file VMA maps (whose `i_mmap` lists it).
fn cache_of(v: &Vma) -> Option<&PageCache> {
    v.backend.inode().and_then(|i| i.page_cache())
}

/// A VMA leaves its file: one writable shared mapping fewer (`__remove_shared_vm_struct`).
/// Only `insert` and `remove` count: a VMA changed in place keeps its count.
fn unmap_writable(v: &Vma) {
    if v.is_shared_maywrite() {
        if let Some(cache) = cache_of(v) {
            cache.mapping_unmap_writable();
        }
    }
}

impl VmaTree {
    /// The VMAs of the address space `owner` (numbered `owner_id`).
    pub fn new(owner: Weak<MmStruct>, owner_id: u64) -> Self {
        VmaTree {
            owner,
            owner_id,
            map: BTreeMap::new(),
            gaps: GapTree::new(),
            total_pages: 0,
            locked_pages: 0,
            windows: 0,
        }
    }

    fn map_key(&self, start: u64, pgoff: u64) -> MapKey {
        MapKey { pgoff, mm_id: self.owner_id, vma_start: start, mm: self.owner.clone() }
    }

    /// Enters a file VMA in its file's reverse map (`vma_interval_tree_insert`).
    fn link_file(&self, v: &Vma) {
        if let Some(cache) = cache_of(v) {
            cache.i_mmap.lock().insert(self.map_key(v.start, v.pgoff), v.pgoff + pages(v));
        }
    }

    /// Takes a file VMA's entry (made when it started at `start` with offset `pgoff`) out.
    fn unlink_file(&self, v: &Vma, start: u64, pgoff: u64) {
        if let Some(cache) = cache_of(v) {
            let gone = cache.i_mmap.lock().remove(&self.map_key(start, pgoff));
            debug_assert!(gone.is_some(), "a file VMA missing from its i_mmap");
        }
    }

    /// Number of VMAs (`map_count`).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn total_pages(&self) -> u64 {
        self.total_pages
    }

    pub fn locked_pages(&self) -> u64 {
        self.locked_pages
    }

    /// mshare windows among the VMAs.
    pub fn windows(&self) -> u64 {
        self.windows
    }

    pub fn get(&self, start: &u64) -> Option<&Vma> {
        self.map.get(start)
    }

    pub fn range<R: RangeBounds<u64>>(&self, range: R) -> btree_map::Range<'_, u64, Vma> {
        self.map.range(range)
    }

    /// The VMAs that intersect [start, end), in order: the one containing `start`, if
    /// any, then those starting inside (found from the tree, never by walking from the
    /// lowest VMA).
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        let first = self.map.range(..start).next_back().map(|(_, v)| v).filter(|v| v.end > start);
        first.into_iter().chain(self.map.range(start.min(end)..end).map(|(_, v)| v))
    }

    pub fn values(&self) -> btree_map::Values<'_, u64, Vma> {
        self.map.values()
    }

    pub fn keys(&self) -> btree_map::Keys<'_, u64, Vma> {
        self.map.keys()
    }

    /// Adds `vma` (keyed by its start; the caller made its range free).
    pub fn insert(&mut self, start: u64, vma: Vma) {
        debug_assert_eq!(start, vma.start);
        if self.map.contains_key(&start) {
            // A caller bug; replace the old VMA with its figures and links.
            debug_assert!(false, "two VMAs at {start:#x}");
            self.remove(&start);
        }
        self.total_pages += pages(&vma);
        self.locked_pages += locked(&vma);
        self.windows += vma.flags.contains(VmFlags::MSHARE) as u64;
        self.gaps.insert(vma.start, vma.end);
        self.link_file(&vma);
        if vma.is_shared_maywrite() {
            if let Some(cache) = cache_of(&vma) {
                cache.mapping_allow_writable();
            }
        }
        self.map.insert(start, vma);
    }

    pub fn remove(&mut self, start: &u64) -> Option<Vma> {
        let vma = self.map.remove(start)?;
        self.total_pages -= pages(&vma);
        self.locked_pages -= locked(&vma);
        self.windows -= vma.flags.contains(VmFlags::MSHARE) as u64;
        self.gaps.remove(vma.start);
        self.unlink_file(&vma, vma.start, vma.pgoff);
        unmap_writable(&vma);
        Some(vma)
    }

    /// The VMA at `start`, to change in place; the counters and the gap index follow when
    /// the handle is dropped. Its start must stay (remove and insert to move it).
    pub fn get_mut(&mut self, start: &u64) -> Option<VmaMut<'_>> {
        let v = self.map.get(start)?;
        let (start, end, locked, pgoff) = (v.start, v.end, locked(v), v.pgoff);
        Some(VmaMut { tree: self, start, end, locked, pgoff })
    }

    /// The end of the highest gap of at least `len` bytes between two VMAs, the upper of
    /// which starts at or below `bound` (`vm_unmapped_area`'s top-down search).
    pub fn highest_gap_end(&self, len: u64, bound: u64) -> Option<u64> {
        self.gaps.highest_gap_end(len, bound)
    }

    /// Recounts what the tree keeps incrementally; true if all agree (a consistency check
    /// for the /proc files, which walk every VMA anyway).
    pub fn counters_consistent(&self) -> bool {
        let total: u64 = self.map.values().map(pages).sum();
        let lck: u64 = self.map.values().map(locked).sum();
        let mut same_ranges = self.gaps.len() == self.map.len();
        let mut it = self.map.values();
        self.gaps.for_each(|s, e| same_ranges &= it.next().is_some_and(|v| (v.start, v.end) == (*s, *e)));
        total == self.total_pages && lck == self.locked_pages && same_ranges
    }
}

impl Index<&u64> for VmaTree {
    type Output = Vma;
    fn index(&self, start: &u64) -> &Vma {
        &self.map[start]
    }
}

/// A VMA being changed in place (its end, protection, flags or offset).
pub struct VmaMut<'a> {
    tree: &'a mut VmaTree,
    start: u64,
    end: u64,
    locked: u64,
    pgoff: u64,
}

impl Deref for VmaMut<'_> {
    type Target = Vma;
    fn deref(&self) -> &Vma {
        &self.tree.map[&self.start]
    }
}

impl DerefMut for VmaMut<'_> {
    fn deref_mut(&mut self) -> &mut Vma {
        self.tree.map.get_mut(&self.start).expect("the VMA being changed")
    }
}

impl Drop for VmaMut<'_> {
    fn drop(&mut self) {
        let v = &self.tree.map[&self.start];
        debug_assert_eq!(v.start, self.start, "a VMA's start changed in place");
        let (end, now_locked) = (v.end, locked(v));
        let tree = &mut *self.tree;
        tree.total_pages = tree.total_pages + (end - self.start) / PAGE_SIZE - (self.end - self.start) / PAGE_SIZE;
        tree.locked_pages = tree.locked_pages + now_locked - self.locked;
        if end != self.end {
            tree.gaps.set_end(self.start, end);
        }
        let v = &tree.map[&self.start];
        if (end, v.pgoff) != (self.end, self.pgoff) && cache_of(v).is_some() {
            tree.unlink_file(v, self.start, self.pgoff);
            tree.link_file(v);
        }
    }
}

impl Drop for VmaTree {
    /// The address space is gone: its VMAs leave their files' reverse maps.
    fn drop(&mut self) {
        for v in self.map.values() {
            self.unlink_file(v, v.start, v.pgoff);
            unmap_writable(v);
        }
    }
}
