//! TLB invalidation after page-table changes (Linux's `flush_tlb_page`,
//! `flush_tlb_range`, `flush_tlb_mm`), addressed by the page-table root of
//! the address space changed, which need not be the running one (truncate
//! and mshare change other address spaces), and the batch that orders
//! flushes before frees (Linux's mm/mmu_gather.c, `MmuGather`).
//!
//! One CPU for now: an address space that is not loaded has nothing cached
//! (loading CR3 drops non-global entries), so only the loaded one needs
//! `invlpg` or a CR3 reload. With SMP these become shootdown IPIs to the CPUs
//! that have the address space loaded. Frames freed by an operation must not
//! be reused before its flush: `MmuGather` holds them until then.
#![deny(unsafe_code)]

use super::PAGE_SIZE;
use crate::arch::cpu;
use arrayvec::ArrayVec;
use core::cell::RefCell;

/// Above this many pages a range flush reloads CR3 instead of `invlpg`s.
const INVLPG_MAX: u64 = 32;

fn loaded(root: u64) -> bool {
    cpu::read_cr3() & !0xfff == root
}

pub fn flush_page(root: u64, va: u64) {
    if loaded(root) {
        cpu::invlpg(va);
    }
}

pub fn flush_range(root: u64, start: u64, end: u64) {
    if loaded(root) {
        flush_range_here(start, end);
    }
}

/// Drops this CPU's translations of [start, end), whichever address space is loaded.
fn flush_range_here(start: u64, end: u64) {
    if (end.saturating_sub(start)) / PAGE_SIZE > INVLPG_MAX {
        cpu::flush_tlb_all();
    } else {
        let mut va = start;
        while va < end {
            cpu::invlpg(va);
            va += PAGE_SIZE;
        }
    }
}

pub fn flush_mm(root: u64) {
    if loaded(root) {
        cpu::flush_tlb_all();
    }
}

/// Pages one batch holds before it flushes and frees them (Linux's `MAX_GATHER_BATCH`,
/// smaller: the batch lives on the kernel stack).
const GATHER_PAGES: usize = 128;
/// Page-table pages one batch holds (Linux's `MAX_TABLE_BATCH`).
const GATHER_TABLES: usize = 32;

/// What an operation unmapped or downgraded and has not flushed yet.
struct Batch {
    /// The range of translations to flush (`start >= end`: none yet).
    start: u64,
    end: u64,
    /// Flush the whole address space instead of the range.
    full: bool,
    /// An entry of a table other address spaces graft changed: they must flush too.
    shared: bool,
    /// Pages whose references are dropped after the flush.
    pages: ArrayVec<u64, GATHER_PAGES>,
    /// Page-table pages whose references are dropped after the flush.
    tables: ArrayVec<u64, GATHER_TABLES>,
}

/// Linux's `struct mmu_gather` (mm/mmu_gather.c, include/asm-generic/tlb.h): an
/// operation that removes or downgrades translations of an address space records here
/// the range to flush and the pages and page-table pages it takes out, and the gather
/// flushes first and frees after, so no CPU can reach a freed frame through a stale
/// translation. The batch flushes and frees early when it fills (`tlb_flush_mmu`), and
/// at the end (`finish`, or when dropped: every path, errors included, ends with the
/// flush). The address space is named by its root; with SMP the flush becomes a
/// shootdown to the CPUs that have it loaded, decided here.
pub struct MmuGather {
    root: u64,
    batch: RefCell<Batch>,
}

impl MmuGather {
    /// `tlb_gather_mmu`: a batch for the address space whose page-table root is `root`.
    pub fn new(root: u64) -> MmuGather {
        MmuGather {
            root,
            batch: RefCell::new(Batch {
                start: u64::MAX,
                end: 0,
                full: false,
                shared: false,
                pages: ArrayVec::new(),
                tables: ArrayVec::new(),
            }),
        }
    }

    /// `tlb_gather_mmu_fullmm`: the address space is being torn down; the flush, if it
    /// is loaded at all, is of everything.
    pub fn new_fullmm(root: u64) -> MmuGather {
        let g = MmuGather::new(root);
        g.batch.borrow_mut().full = true;
        g
    }

    /// Records that translations of [start, end) changed (an entry was cleared or lost
    /// write permission): they are flushed before anything gathered is freed.
    pub fn flush_range(&self, start: u64, end: u64) {
        let mut b = self.batch.borrow_mut();
        b.start = b.start.min(start);
        b.end = b.end.max(end);
    }

    /// An entry of `table`, grafted by other address spaces (mshare), changed: the flush
    /// covers them as well as this one. One CPU: only the loaded address space can hold
    /// translations, so the flush is done on this CPU whichever is loaded, this one or a
    /// guest. With SMP, the CPUs to shoot down are those with a grafting address space
    /// loaded, found from `table` (its grafts).
    pub fn shared_table(&self, _table: u64) {
        self.batch.borrow_mut().shared = true;
    }

    /// `tlb_remove_page`: the entry for `va` mapping `page` was cleared; the page's
    /// reference is dropped after the flush.
    pub fn remove_page(&self, va: u64, page: u64) {
        self.flush_range(va, va + PAGE_SIZE);
        self.gather(page, |b| &mut b.pages);
    }

    /// `tlb_remove_table`: a page-table page unlinked from its parent; its reference is
    /// dropped after the flush (the CPU's paging-structure caches may still walk it).
    pub fn remove_table(&self, table: u64) {
        self.gather(table, |b| &mut b.tables);
    }

    /// Adds `frame` to the batch's list that `list` picks; when that fills, flushes and
    /// frees at once (Linux's `tlb_flush_mmu` when `__tlb_remove_page` reports the batch
    /// full), so the next push has room.
    fn gather<const N: usize>(&self, frame: u64, list: fn(&mut Batch) -> &mut ArrayVec<u64, N>) {
        let full = {
            let mut b = self.batch.borrow_mut();
            let l = list(&mut b);
            l.push(frame);
            l.is_full()
        };
        if full {
            self.flush_mmu();
        }
    }

    /// `tlb_flush_mmu`: flushes what was recorded, then frees what was gathered.
    pub fn flush_mmu(&self) {
        let mut b = self.batch.borrow_mut();
        // `invlpg` also drops the paging-structure caches, so a range flush covers the
        // tables freed under it too.
        // A guest grafting a changed table may be the loaded address space instead of ours.
        let here = loaded(self.root) || b.shared;
        if here && (b.full || (!b.tables.is_empty() && b.start >= b.end)) {
            cpu::flush_tlb_all();
        } else if here && b.start < b.end {
            flush_range_here(b.start, b.end);
        }
        b.start = u64::MAX;
        b.end = 0;
        let Batch { pages, tables, .. } = &mut *b;
        for p in pages.drain(..) {
            super::page::put_page(p);
        }
        for t in tables.drain(..) {
            super::page::put_table_page(t);
        }
    }

    /// `tlb_finish_mmu`: the last flush and frees of the operation.
    pub fn finish(self) {
        // Drop does it.
    }
}

impl Drop for MmuGather {
    fn drop(&mut self) {
        self.flush_mmu();
    }
}
