//! `mremap` (Linux's mm/mremap.c, 6.6): shrink in place, grow in place when
//! the following range is free, or move (MREMAP_MAYMOVE, MREMAP_FIXED),
//! optionally leaving the old range mapped but empty (MREMAP_DONTUNMAP).
//! Moving carries the page-table entries over: the pages themselves stay.
#![deny(unsafe_code)]

use super::address_space::{GatherPhysMem, MmInner, MmStruct, MMAP_BASE, TASK_SIZE};
use super::commit::{max_map_count, may_expand_vm, vm_enough_memory};
use super::mmap::HPAGE_SIZE;
use super::vma::VmFlags;
use super::{align_up, PAGE_SIZE};
use crate::errno::*;

pub const MREMAP_MAYMOVE: u32 = 1;
pub const MREMAP_FIXED: u32 = 2;
pub const MREMAP_DONTUNMAP: u32 = 4;

pub fn do_mremap(mm: &MmStruct, old: u64, old_len: u64, new_len: u64, flags: u32, new_addr: u64) -> KResult<u64> {
    let (addr, populate) = resize(mm, old, old_len, new_len, flags, new_addr)?;
    if let Some((start, end)) = populate {
        // A locked mapping's new part is faulted in (mm_populate; failures are left to
        // the later access).
        let _ = super::mlock::populate(mm, start, end);
    }
    Ok(addr)
}

/// The resize or move; Ok with the new address and, for a locked mapping that grew, the
/// range to populate.
fn resize(
    mm: &MmStruct,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: u32,
    new_addr: u64,
) -> KResult<(u64, Option<(u64, u64)>)> {
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return Err(EINVAL);
    }
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(EINVAL);
    }
    if flags & MREMAP_DONTUNMAP != 0 && old_len != new_len {
        return Err(EINVAL);
    }
    if !old.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    let old_len = align_up(old_len, PAGE_SIZE);
    let new_len = align_up(new_len, PAGE_SIZE);
    if new_len == 0 {
        return Err(EINVAL);
    }
    let mut inner = mm.mmap_lock.write_killable()?;
    let vma = inner.find_vma(old).ok_or(EFAULT)?.clone();
    if vma.flags.contains(VmFlags::MSHARE) {
        return Err(EINVAL);
    }
    let (old_len, new_len) = if vma.flags.contains(VmFlags::HUGETLB) {
        // mremap on hugetlb: whole huge pages at aligned addresses, and never growth (its
        // reservation cannot be split) nor MREMAP_DONTUNMAP (the VMA is VM_DONTEXPAND).
        let (o, n) = (align_up(old_len, HPAGE_SIZE), align_up(new_len, HPAGE_SIZE));
        let fixed_at = flags & MREMAP_FIXED != 0;
        if !old.is_multiple_of(HPAGE_SIZE)
            || (fixed_at && !new_addr.is_multiple_of(HPAGE_SIZE))
            || n > o
            || flags & MREMAP_DONTUNMAP != 0
        {
            return Err(EINVAL);
        }
        (o, n)
    } else {
        (old_len, new_len)
    };
    if old_len == 0 && !vma.is_shared() {
        // Duplicating a private mapping makes no sense (Linux: EINVAL since 4.16).
        return Err(EINVAL);
    }
    if old.checked_add(old_len).is_none_or(|e| e > vma.end) {
        return Err(EFAULT);
    }
    // Growing a locked mapping stays within RLIMIT_MEMLOCK (vma_to_resize).
    let locked = vma.flags.contains(VmFlags::LOCKED) && new_len > old_len;
    if locked && !super::mlock::may_lock(&inner, (new_len - old_len) / PAGE_SIZE) {
        return Err(EAGAIN);
    }
    // vma_to_resize: RLIMIT_AS for the growth.
    if new_len > old_len && !may_expand_vm(&inner, (new_len - old_len) / PAGE_SIZE) {
        return Err(ENOMEM);
    }
    let grown = |at: u64| (locked && vma.flags.populates_locked()).then_some((at + old_len, at + new_len));
    // move_vma's commit check, in pages: the growth, or the whole new range when the old
    // one stays (MREMAP_DONTUNMAP). The moved VMA is charged as it is inserted and the
    // old one uncharged as it goes.
    let account = vma.flags.contains(VmFlags::ACCOUNT);
    let move_charge = |old_len: u64| {
        if flags & MREMAP_DONTUNMAP != 0 {
            new_len / PAGE_SIZE
        } else {
            new_len.saturating_sub(old_len) / PAGE_SIZE
        }
    };

    if flags & MREMAP_FIXED != 0 {
        if !new_addr.is_multiple_of(PAGE_SIZE) {
            return Err(EINVAL);
        }
        if new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len {
            return Err(EINVAL);
        }
        // mremap_to: the range left behind by MREMAP_DONTUNMAP counts against RLIMIT_AS.
        if flags & MREMAP_DONTUNMAP != 0 && !may_expand_vm(&inner, old_len / PAGE_SIZE) {
            return Err(ENOMEM);
        }
        // The ranges may not overlap.
        if new_addr < old + old_len.max(1) && old < new_addr + new_len {
            return Err(EINVAL);
        }
        // move_vma's check: a move may leave up to three more VMAs.
        if inner.vmas.len() >= max_map_count().saturating_sub(3) {
            return Err(ENOMEM);
        }
        if account {
            vm_enough_memory(&inner, move_charge(old_len))?;
        }
        let tlb = super::tlb::MmuGather::for_mm(&mm);
        inner.unmap_region(&tlb, mm, new_addr, new_addr + new_len);
        let mut old_len = old_len;
        if old_len > new_len && flags & MREMAP_DONTUNMAP == 0 {
            inner.unmap_region(&tlb, mm, old + new_len, old + old_len);
            old_len = new_len;
        }
        let r = move_range(&mut inner, &tlb, mm, old, old_len, new_addr, new_len, flags & MREMAP_DONTUNMAP != 0);
        return r.map(|_| (new_addr, grown(new_addr)));
    }

    // MREMAP_DONTUNMAP always moves.
    let dont_unmap = flags & MREMAP_DONTUNMAP != 0;
    // Shrinking: unmap the tail.
    if new_len <= old_len && old_len != 0 && !dont_unmap {
        if new_len < old_len {
            let tlb = super::tlb::MmuGather::for_mm(&mm);
            inner.unmap_region(&tlb, mm, old + new_len, old + old_len);
        }
        return Ok((old, None));
    }

    // Growing in place: the range after the VMA must be free.
    if old_len != 0 && old + old_len == vma.end {
        let grow_end = old.checked_add(new_len).ok_or(ENOMEM)?;
        if grow_end <= TASK_SIZE && !inner.overlaps(vma.end, grow_end) && !dont_unmap {
            let pages = (new_len - old_len) / PAGE_SIZE;
            if account {
                vm_enough_memory(&inner, pages)?;
                super::commit::vm_acct_memory(pages as i64);
            }
            inner.vmas.get_mut(&vma.start).unwrap().end = grow_end;
            inner.note_vm();
            inner.merge_around(vma.start, grow_end);
            return Ok((old, grown(old)));
        }
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(ENOMEM);
    }
    if inner.vmas.len() >= max_map_count().saturating_sub(3) {
        return Err(ENOMEM);
    }
    if account {
        vm_enough_memory(&inner, move_charge(old_len))?;
    }
    let dest = inner.find_free_area(new_len, MMAP_BASE).ok_or(ENOMEM)?;
    let tlb = super::tlb::MmuGather::for_mm(&mm);
    let r = move_range(&mut inner, &tlb, mm, old, old_len, dest, new_len, flags & MREMAP_DONTUNMAP != 0);
    r.map(|_| (dest, grown(dest)))
}

/// Moves [old, old + old_len) to a free [new, new + new_len): a new VMA with
/// the old one's attributes (file offset carried along), the page-table
/// entries carried over. The old VMA goes unless `dont_unmap` (then it stays,
/// empty). `old_len == 0` duplicates a shared mapping. Out of memory (the new
/// VMA, page tables at the destination) is ENOMEM with the pages left where
/// they were, as Linux's `move_vma` moves the entries back.
#[allow(clippy::too_many_arguments)]
fn move_range(
    inner: &mut MmInner,
    tlb: &super::tlb::MmuGather,
    mm: &MmStruct,
    old: u64,
    old_len: u64,
    new: u64,
    new_len: u64,
    dont_unmap: bool,
) -> KResult<()> {
    // The new VMA (Linux's copy_vma).
    super::fail::slab_may_fail()?;
    if old_len != 0 {
        inner.split_at(old, old + old_len);
    }
    let src = inner.find_vma(old).expect("mremap source vanished").clone();
    // Shared tables of a file (`pt_share`) move as this address space's own.
    super::pt_share::unshare_range(mm, old, old + old_len, true);
    let mut moved = src.clone();
    moved.start = new;
    moved.end = new + new_len;
    moved.pgoff = src.pgoff + (old - src.start) / PAGE_SIZE;
    if old_len != 0 {
        // Linux's move_page_tables: whole PTE tables where both sides are 2 MiB-aligned,
        // entries elsewhere; a failure (page tables for the destination) puts everything
        // back, and nothing has moved. The tables the source emptied go through `tlb`.
        let moved_len = old_len.min(new_len);
        let mut mem = GatherPhysMem { pt_pages: &mm.pt_pages, owner: mm.owner(), tlb };
        let r = mm.page_table_lock.lock().pt.move_range(&mut mem, old, new, moved_len);
        r.map_err(|e| match e {
            // Only the owner of a graft moves its entries.
            page_table::MapError::Graft => EINVAL,
            _ => ENOMEM,
        })?;
        tlb.flush_range(old, old + moved_len);
    }
    if old_len != 0 && !dont_unmap {
        inner.take_vmas(old, old + old_len);
    }
    // With MREMAP_DONTUNMAP the old VMA stays, its pages gone with the move:
    // it refills with zeroes (anonymous) or from the file.
    inner.insert_vma(moved);
    Ok(())
}
