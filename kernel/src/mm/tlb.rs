//! TLB invalidation after page-table changes (Linux's `flush_tlb_page`,
//! `flush_tlb_range`, `flush_tlb_mm`), addressed by the page-table root of
//! the address space changed, which need not be the running one (truncate
//! and mshare change other address spaces).
//!
//! One CPU for now: an address space that is not loaded has nothing cached
//! (loading CR3 drops non-global entries), so only the loaded one needs
//! `invlpg` or a CR3 reload. With SMP these become shootdown IPIs to the CPUs
//! that have the address space loaded. Frames freed by an operation must not
//! be reused before its flush: on one CPU nothing else runs in between.
#![deny(unsafe_code)]

use super::PAGE_SIZE;
use crate::arch::cpu;

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
    if !loaded(root) {
        return;
    }
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
