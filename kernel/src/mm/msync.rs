//! `msync` (Linux's mm/msync.c). tmpfs has nothing to write back, so what is
//! left is the argument checking and the range rules: a hole in the range is
//! ENOMEM (after the rest is processed), MS_INVALIDATE on locked memory is
//! EBUSY.
#![deny(unsafe_code)]

use super::address_space::MmStruct;
use super::vma::VmFlags;
use super::{align_up, PAGE_SIZE};
use crate::errno::*;

pub const MS_ASYNC: u32 = 1;
pub const MS_INVALIDATE: u32 = 2;
pub const MS_SYNC: u32 = 4;

pub fn do_msync(mm: &MmStruct, start: u64, len: u64, flags: u32) -> KResult<()> {
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 || !start.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    if flags & MS_ASYNC != 0 && flags & MS_SYNC != 0 {
        return Err(EINVAL);
    }
    // A length that wraps when rounded is an empty range (Linux: returns 0).
    let end = start.checked_add(align_up(len, PAGE_SIZE)).ok_or(ENOMEM)?;
    if end == start {
        return Ok(());
    }
    let inner = mm.mmap_lock.read();
    let mut unmapped = false;
    let mut cur = start;
    for v in inner.vmas.overlapping(start, end) {
        if v.start > cur {
            unmapped = true;
        }
        if flags & MS_INVALIDATE != 0 && v.flags.contains(VmFlags::LOCKED) {
            return Err(EBUSY);
        }
        cur = v.end;
    }
    if cur < end {
        unmapped = true;
    }
    if unmapped {
        Err(ENOMEM)
    } else {
        Ok(())
    }
}
