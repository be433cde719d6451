//! `mprotect` (Linux's `do_mprotect_pkey`): change protection of any
//! page-aligned range fully covered by VMAs, splitting and re-merging.
#![deny(unsafe_code)]

use super::address_space::{GatherPhysMem, MmInner, MmStruct, TASK_SIZE};
use super::vma::{Prot, VmFlags, Vma};
use super::{align_up, PAGE_SIZE};
use crate::errno::*;
use page_table::PteFlags;

const PROT_GROWSDOWN: u32 = 0x0100_0000;
const PROT_GROWSUP: u32 = 0x0200_0000;

/// Whether `v` given `new_prot` becomes a charged private writable mapping.
fn becomes_accountable(v: &Vma, new_prot: Prot) -> bool {
    new_prot.contains(Prot::WRITE)
        && !v.prot.contains(Prot::WRITE)
        && !v.flags.intersects(VmFlags::ACCOUNT | VmFlags::SHARED | VmFlags::NORESERVE | VmFlags::HUGETLB)
}

pub fn do_mprotect(mm: &MmStruct, start: u64, len: u64, prot: u32) -> KResult<()> {
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    if prot & !(7 | PROT_GROWSDOWN | PROT_GROWSUP) != 0
        || prot & (PROT_GROWSDOWN | PROT_GROWSUP) == (PROT_GROWSDOWN | PROT_GROWSUP)
    {
        return Err(EINVAL);
    }
    let new_prot = Prot::from_bits_truncate(prot);
    if len == 0 {
        return Ok(());
    }
    let len = align_up(len, PAGE_SIZE);
    let end = start.checked_add(len).filter(|&e| e > start).ok_or(ENOMEM)?;
    if end > TASK_SIZE {
        return Err(ENOMEM);
    }
    let mut inner = mm.mmap_lock.write_killable()?;
    // Every page of the range must be mapped (ENOMEM otherwise) and may take the new
    // protection (EACCES otherwise), checked before any change.
    // A private mapping made writable is charged to committed memory (mprotect_fixup);
    // made read-only again it stays charged.
    let mut cur = start;
    let mut charge = 0;
    while cur < end {
        let v = inner.find_vma(cur).ok_or(ENOMEM)?;
        if !v.may_protect(new_prot) {
            return Err(EACCES);
        }
        if becomes_accountable(v, new_prot) {
            charge += (v.end.min(end) - cur) / PAGE_SIZE;
        }
        cur = v.end;
    }
    // An mshare window's protection is its region's (MSHAREFS_PROTECT changes it for
    // every sharer); a graft holds its owner's entries, which no guest edits. Shared tables
    // of a file (`pt_share`) become this address space's own first.
    if inner.any_mshare(start, end) {
        return Err(EINVAL);
    }
    super::pt_share::unshare_range(mm, start, end, true);
    if mm.page_table_lock.lock().grafts.iter().any(|g| g.va < end && start < g.end()) {
        return Err(EINVAL);
    }
    inner.check_split(start, end)?;
    if charge > 0 {
        super::commit::vm_enough_memory(&inner, charge)?;
    }
    // Cutting a VMA needs a new one (Linux's split_vma → vm_area_dup), which can fail.
    if inner.splits(start, end) {
        super::fail::slab_may_fail()?;
    }
    inner.split_at(start, end);
    let keys: alloc::vec::Vec<u64> = inner.vmas.range(start..end).map(|(k, _)| *k).collect();
    for k in keys {
        let mut v = inner.vmas.get_mut(&k).unwrap();
        if becomes_accountable(&v, new_prot) {
            v.flags |= VmFlags::ACCOUNT;
            super::commit::vm_acct_memory(v.pages() as i64);
        }
        v.prot = new_prot;
    }
    let inner = &mut *inner;
    // Linux's change_protection, a PTE table at a time. Writability is only ever removed
    // here; adding PROT_WRITE lets the next write fault decide (copy-on-write or reuse).
    // The gather flushes this address space, and those grafting a table that changed.
    let tlb = super::tlb::MmuGather::for_mm(&mm);
    let mut mem = GatherPhysMem { pt_pages: &mm.pt_pages, owner: mm.owner(), tlb: &tlb };
    let changed = mm.page_table_lock.lock().pt.protect_range(&mut mem, start, end, |_, m| {
        Some(MmInner::pte_flags(new_prot, m.flags.contains(PteFlags::WRITABLE)))
    });
    inner.merge_around(start, end);
    match changed {
        Ok(0) => Ok(()),
        Ok(_) => {
            tlb.flush_range(start, end);
            Ok(())
        }
        // Refused above, before any change.
        Err(_) => Err(EINVAL),
    }
}
