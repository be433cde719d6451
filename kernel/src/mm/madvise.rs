//! `madvise` (Linux's mm/madvise.c, 6.6) and `mincore`.
#![deny(unsafe_code)]

use super::address_space::{MmInner, MmStruct, TASK_SIZE};
use super::vma::{Backend, Prot, VmFlags};
use super::{align_up, PAGE_SIZE};
use crate::errno::*;
use crate::sync::rwsem::{RwSemReadGuard, RwSemWriteGuard};
use alloc::vec::Vec;

pub const MADV_NORMAL: u32 = 0;
pub const MADV_RANDOM: u32 = 1;
pub const MADV_SEQUENTIAL: u32 = 2;
pub const MADV_WILLNEED: u32 = 3;
pub const MADV_DONTNEED: u32 = 4;
pub const MADV_FREE: u32 = 8;
pub const MADV_REMOVE: u32 = 9;
pub const MADV_DONTFORK: u32 = 10;
pub const MADV_DOFORK: u32 = 11;
pub const MADV_MERGEABLE: u32 = 12;
pub const MADV_UNMERGEABLE: u32 = 13;
pub const MADV_HUGEPAGE: u32 = 14;
pub const MADV_NOHUGEPAGE: u32 = 15;
pub const MADV_DONTDUMP: u32 = 16;
pub const MADV_DODUMP: u32 = 17;
pub const MADV_WIPEONFORK: u32 = 18;
pub const MADV_KEEPONFORK: u32 = 19;
pub const MADV_COLD: u32 = 20;
pub const MADV_PAGEOUT: u32 = 21;
pub const MADV_POPULATE_READ: u32 = 22;
pub const MADV_POPULATE_WRITE: u32 = 23;

fn known(advice: u32) -> bool {
    matches!(advice, 0..=4 | 8..=11 | 14..=23)
}

/// Linux's `madvise_need_mmap_write`: the advices that only drop or fill pages take
/// `mmap_lock` shared; the rest may change VMA flags and take it exclusive.
fn need_mmap_write(advice: u32) -> bool {
    !matches!(
        advice,
        MADV_REMOVE
            | MADV_WILLNEED
            | MADV_DONTNEED
            | MADV_COLD
            | MADV_PAGEOUT
            | MADV_FREE
            | MADV_POPULATE_READ
            | MADV_POPULATE_WRITE
    )
}

/// `mmap_lock` held shared or exclusive, as the advice needs.
enum Hold<'a> {
    Shared(RwSemReadGuard<'a, MmInner>),
    Exclusive(RwSemWriteGuard<'a, MmInner>),
}

impl Hold<'_> {
    fn take(mm: &MmStruct, exclusive: bool) -> KResult<Hold<'_>> {
        Ok(if exclusive { Hold::Exclusive(mm.mmap_lock.write_killable()?) } else { Hold::Shared(mm.mmap_lock.read()) })
    }

    /// The VMAs to change: only under the exclusive hold (`need_mmap_write`).
    fn vmas_mut(&mut self) -> &mut MmInner {
        match self {
            Hold::Exclusive(w) => &mut **w,
            Hold::Shared(_) => unreachable!("a VMA-changing advice under the shared mmap_lock"),
        }
    }
}

impl core::ops::Deref for Hold<'_> {
    type Target = MmInner;
    fn deref(&self) -> &MmInner {
        match self {
            Hold::Shared(r) => &**r,
            Hold::Exclusive(w) => &**w,
        }
    }
}

pub fn do_madvise(mm: &MmStruct, start: u64, len: u64, advice: u32) -> KResult<()> {
    if !known(advice) {
        if matches!(advice, MADV_MERGEABLE | MADV_UNMERGEABLE) {
            crate::log_once!("madvise: KSM is not supported");
        }
        return Err(EINVAL);
    }
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    let len_in = len;
    let len = align_up(len, PAGE_SIZE);
    if len_in != 0 && len == 0 {
        return Err(EINVAL);
    }
    let end = start.checked_add(len).ok_or(EINVAL)?;
    if end > TASK_SIZE {
        return Err(ENOMEM);
    }
    if start == end {
        return Ok(());
    }
    let exclusive = need_mmap_write(advice);
    let mut inner = Hold::take(mm, exclusive)?;
    if inner.any_mshare(start, end) {
        return Err(EINVAL);
    }
    // The mapped pieces of the range, and whether a hole was found (ENOMEM
    // after the rest is done, as madvise_walk_vmas).
    let mut pieces = Vec::new();
    let mut hole = false;
    let mut cur = start;
    for v in inner.vmas.overlapping(start, end) {
        if v.start > cur {
            hole = true;
        }
        pieces.push((v.start.max(start), v.end.min(end), v.clone()));
        cur = v.end;
    }
    if cur < end {
        hole = true;
    }
    // Pieces zapped before a later one fails stay zapped, as Linux's; the gather flushes
    // them, then frees their pages, on every way out (its drop), errors included.
    let tlb = super::tlb::MmuGather::for_mm(&mm);
    for (s, e, v) in &pieces {
        match advice {
            MADV_DONTNEED | MADV_FREE => {
                if v.flags.contains(VmFlags::LOCKED)
                    || (advice == MADV_FREE && !matches!(v.backend, Backend::Anonymous))
                {
                    return Err(EINVAL);
                }
                // A shared table (`pt_share`) the range cuts becomes this address space's own
                // first; one it covers whole goes.
                super::pt_share::unshare_range(mm, *s, *e, false);
                mm.zap_range(&tlb, *s, *e);
            }
            MADV_REMOVE => {
                // Punch a hole in the shared file behind the mapping (madvise_remove).
                if v.flags.contains(VmFlags::LOCKED) {
                    return Err(EINVAL);
                }
                let Some(inode) = v.backend.inode() else { return Err(EINVAL) };
                if !v.is_shared() || !v.prot.contains(Prot::WRITE) {
                    return Err(EACCES);
                }
                let first = v.pgoff + (s - v.start) / PAGE_SIZE;
                let last = first + (e - s) / PAGE_SIZE;
                let inode = inode.clone();
                drop(inner);
                // A tmpfs file punches its hole itself (vfs_fallocate), which its seals
                // may refuse (EPERM).
                if inode.as_any().is::<crate::fs::tmpfs::TmpfsFile>() {
                    const PUNCH_HOLE_KEEP_SIZE: u32 = 3;
                    inode.fallocate(PUNCH_HOLE_KEEP_SIZE, first * PAGE_SIZE, (last - first) * PAGE_SIZE)?;
                } else if let Some(cache) = inode.page_cache() {
                    crate::mm::rmap::unmap_file_pages(cache, first, last, false);
                    cache.remove_range(first, last);
                }
                inner = Hold::take(mm, exclusive)?;
            }
            MADV_DONTFORK | MADV_DOFORK | MADV_WIPEONFORK | MADV_KEEPONFORK => {
                // Only private anonymous memory can be wiped in a child.
                if advice == MADV_WIPEONFORK && (v.is_shared() || !matches!(v.backend, Backend::Anonymous)) {
                    return Err(EINVAL);
                }
                let inner = inner.vmas_mut();
                if let Err(e) = inner.check_split(*s, *e) {
                    return Err(e);
                }
                inner.split_at(*s, *e);
                let (flag, on) = match advice {
                    MADV_DONTFORK | MADV_DOFORK => (VmFlags::DONTFORK, advice == MADV_DONTFORK),
                    _ => (VmFlags::WIPEONFORK, advice == MADV_WIPEONFORK),
                };
                let keys: Vec<u64> = inner.vmas.range(*s..*e).map(|(k, _)| *k).collect();
                for k in keys {
                    inner.vmas.get_mut(&k).unwrap().flags.set(flag, on);
                }
                inner.merge_around(*s, *e);
            }
            MADV_POPULATE_READ | MADV_POPULATE_WRITE => {
                let access = super::fault::Access { write: advice == MADV_POPULATE_WRITE, exec: false };
                drop(inner);
                let r = super::mlock::populate_range(mm, *s, *e, |_| Some(access));
                inner = Hold::take(mm, exclusive)?;
                match r {
                    Ok(()) => {}
                    Err(super::mlock::PopulateStop::Fault) => return Err(EFAULT),
                    Err(super::mlock::PopulateStop::Killed) => return Err(EINTR),
                }
            }
            // Hints about access patterns, paging and dumps: nothing to do here.
            _ => {}
        }
    }
    tlb.finish();
    if hole {
        Err(ENOMEM)
    } else {
        Ok(())
    }
}

/// mincore's checks of its range: `start` page-aligned (EINVAL), `[start, start + len)`
/// within user space (access_ok on the unrounded length, ENOMEM); the number of pages.
pub fn mincore_pages(start: u64, len: u64) -> KResult<u64> {
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    if start.checked_add(len).is_none_or(|e| e > TASK_SIZE) {
        return Err(ENOMEM);
    }
    Ok(len.div_ceil(PAGE_SIZE))
}

/// mincore (mm/mincore.c): one byte per page of `[start, start + len)`, bit 0 set when the
/// page is resident (mapped in this address space, or for file mappings in the file's page
/// cache), handed to `emit`
/// a chunk at a time, as Linux copies each chunk (at most one page of vector, within one
/// VMA) before it looks at the next: a user length never sizes a kernel allocation, and the
/// part before an unmapped page is written before the ENOMEM.
/// `start` and the page count come from [`mincore_pages`].
pub fn do_mincore(mm: &MmStruct, start: u64, pages: u64, mut emit: impl FnMut(&[u8]) -> KResult<()>) -> KResult<()> {
    const CHUNK_PAGES: u64 = PAGE_SIZE;
    let end = start + pages * PAGE_SIZE;
    let mut va = start;
    let mut out = Vec::with_capacity(CHUNK_PAGES as usize);
    while va < end {
        if crate::process::signal::fatal_signal_pending(&crate::process::current()) {
            return Err(EINTR);
        }
        crate::process::sched::cond_resched();
        out.clear();
        {
            let inner = mm.mmap_lock.read();
            let mem = mm.phys_mem();
            let v = inner.find_vma(va).ok_or(ENOMEM)?;
            let chunk_end = end.min(v.end).min(va + CHUNK_PAGES * PAGE_SIZE);
            let cache = v.backend.inode().and_then(|i| i.page_cache());
            let chunk_start = va;
            while va < chunk_end {
                let cached = cache.is_some_and(|c| c.contains(v.pgoff + (va - v.start) / PAGE_SIZE));
                out.push(cached as u8);
                va += PAGE_SIZE;
            }
            // Mapped pages, a table at a time; through grafts (mshare windows, shared file
            // tables), in the host.
            super::mshare::for_each_grafted_page_in(mm, chunk_start, chunk_end, |at, _, _| {
                out[((at - chunk_start) / PAGE_SIZE) as usize] = 1;
            });
            {
                let pt = mm.page_table_lock.lock();
                let mut cursor = pt.pt.cursor(chunk_start, chunk_end);
                while let Some((at, _)) = cursor.next(&mem) {
                    // User pages are 4 KiB: none starts before the chunk.
                    if at >= chunk_start {
                        out[((at - chunk_start) / PAGE_SIZE) as usize] = 1;
                    }
                }
            }
        }
        emit(&out)?;
    }
    Ok(())
}
