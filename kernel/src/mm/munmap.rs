//! `munmap` (Linux's `do_vmi_munmap`): any page-aligned sub-range, splitting VMAs.
#![deny(unsafe_code)]

use super::address_space::{MmStruct, TASK_SIZE};
use super::{align_up, PAGE_SIZE};
use crate::errno::*;

pub fn do_munmap(mm: &MmStruct, start: u64, len: u64) -> KResult<()> {
    if !start.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(EINVAL);
    }
    let len = align_up(len, PAGE_SIZE);
    if len == 0 {
        return Err(EINVAL);
    }
    let end = start.checked_add(len).ok_or(EINVAL)?;
    if end > TASK_SIZE {
        return Err(EINVAL);
    }
    let mut inner = mm.mmap_lock.write_killable()?;
    inner.check_split(start, end)?;
    // Cutting a VMA needs a new one (Linux's split_vma → vm_area_dup), which can fail.
    if inner.splits(start, end) {
        super::fail::slab_may_fail()?;
    }
    let tlb = super::tlb::MmuGather::for_mm(&mm);
    inner.unmap_region(&tlb, mm, start, end);
    Ok(())
}
