//! mlock, mlock2, munlock, mlockall, munlockall (Linux's mm/mlock.c, 6.6),
//! with RLIMIT_MEMLOCK and CAP_IPC_LOCK. Nothing is ever swapped here, so
//! locking means: the VMAs carry VM_LOCKED (VmLck counts them), their pages
//! are faulted in now (unless MLOCK_ONFAULT), and the limit is enforced.
#![deny(unsafe_code)]

use super::address_space::{MmInner, MmStruct};
use super::fault::{fault_shared, Access};
use super::vma::{Prot, VmFlags};
use super::{align_up, PAGE_SIZE};
use crate::errno::*;
use crate::process::task::RLIMIT_MEMLOCK;

pub const MLOCK_ONFAULT: u32 = 1;
pub const MCL_CURRENT: u32 = 1;
pub const MCL_FUTURE: u32 = 2;
pub const MCL_ONFAULT: u32 = 4;

/// (CAP_IPC_LOCK, RLIMIT_MEMLOCK in bytes) of the calling process.
fn lock_rights() -> (bool, u64) {
    let p = crate::process::current().process.clone();
    let capable = p.creds.lock().capable(crate::process::cred::CAP_IPC_LOCK);
    (capable, p.rlimit(RLIMIT_MEMLOCK).cur)
}

/// `can_do_mlock`: CAP_IPC_LOCK or a non-zero RLIMIT_MEMLOCK (in bytes: a limit of 1 to
/// 4095 permits locking, and then locks no page); the limit in pages.
fn can_do_mlock() -> KResult<(bool, u64)> {
    let (capable, limit) = lock_rights();
    if !capable && limit == 0 {
        return Err(EPERM);
    }
    Ok((capable, limit / PAGE_SIZE))
}

/// Whether locking `more` pages stays within the limit (mmap uses it too).
pub fn may_lock(inner: &MmInner, more: u64) -> bool {
    let (capable, limit) = lock_rights();
    capable || inner.locked_pages() + more <= limit / PAGE_SIZE
}

/// How populating faults a VMA's pages in (Linux's `populate_vma_page_range`): for
/// writing only in a private writable mapping (its private copies, as the first write
/// would make them); shared mappings are read so that nothing is dirtied; an
/// inaccessible VMA is skipped.
pub fn populate_access(v: &super::vma::Vma) -> Option<Access> {
    (!v.prot.is_empty()).then(|| Access { write: v.prot.contains(Prot::WRITE) && !v.is_shared(), exec: false })
}

/// Pages `populate_range` faults in under one hold of the mm lock.
const POPULATE_BATCH: u64 = 256;

/// Why `populate_range` stopped early.
#[derive(Debug, PartialEq, Eq)]
pub enum PopulateStop {
    /// A page outside every VMA, or a fault that failed.
    Fault,
    /// The task is being killed.
    Killed,
}

/// Faults in every page of [start, end) with the access `access_of` picks for its VMA
/// (None skips the VMA), as Linux's `__get_user_pages`: every `POPULATE_BATCH` pages it
/// drops the mm lock, gives up the CPU if the slice is used (`cond_resched`) and stops
/// for a fatal signal, so a user-sized range neither holds the CPU nor outlives a kill.
/// Holds `mmap_lock` shared (Linux's `__mm_populate`), so the caller must not hold it;
/// VMAs are looked up again after every pause.
pub fn populate_range(
    mm: &MmStruct,
    start: u64,
    end: u64,
    access_of: impl Fn(&super::vma::Vma) -> Option<Access>,
) -> Result<(), PopulateStop> {
    let mut va = start;
    while va < end {
        {
            let mut inner = mm.mmap_lock.read();
            let mut budget = POPULATE_BATCH;
            while va < end && budget > 0 {
                let (vend, access) = {
                    let v = inner.find_vma(va).ok_or(PopulateStop::Fault)?;
                    (v.end.min(end), access_of(v))
                };
                let Some(access) = access else {
                    va = vend;
                    continue;
                };
                while va < vend && budget > 0 {
                    let (held, r) = fault_shared(mm, inner, va, access);
                    inner = held;
                    r.map_err(|_| PopulateStop::Fault)?;
                    va += PAGE_SIZE;
                    budget -= 1;
                }
            }
        }
        if va < end {
            if crate::process::signal::fatal_signal_pending(&crate::process::current()) {
                return Err(PopulateStop::Killed);
            }
            crate::process::sched::cond_resched();
        }
    }
    Ok(())
}

/// Faults in the pages of [start, end) that mlock locks, as `__mm_populate` (write
/// faults for writable private mappings, so copy-on-write is broken now; PROT_NONE
/// VMAs are skipped). A failed fault is left to the later access, as Linux does; a
/// fatal signal is EINTR. The caller must not hold `mmap_lock`.
pub fn populate(mm: &MmStruct, start: u64, end: u64) -> KResult<()> {
    match populate_range(mm, start, end, populate_access) {
        Err(PopulateStop::Killed) => Err(EINTR),
        Ok(()) | Err(PopulateStop::Fault) => Ok(()),
    }
}

/// The page range of mlock's (start, len): start rounded down, len up.
fn lock_range(start: u64, len: u64) -> KResult<(u64, u64)> {
    // PAGE_ALIGN wraps a huge length to 0: an empty range, as in Linux.
    let len = align_up(len.wrapping_add(start % PAGE_SIZE), PAGE_SIZE);
    let start = start & !(PAGE_SIZE - 1);
    let end = start.checked_add(len).ok_or(EINVAL)?;
    Ok((start, end))
}

/// Every page of [start, end) must be mapped (ENOMEM otherwise).
fn check_mapped(inner: &MmInner, start: u64, end: u64) -> KResult<()> {
    let mut cur = start;
    while cur < end {
        cur = inner.find_vma(cur).ok_or(ENOMEM)?.end;
    }
    Ok(())
}

/// Sets or clears the lock flags of [start, end), splitting and merging VMAs.
fn set_lock_flags(inner: &mut MmInner, start: u64, end: u64, set: VmFlags) {
    inner.split_at(start, end);
    let keys: alloc::vec::Vec<u64> = inner.vmas.range(start..end).map(|(k, _)| *k).collect();
    for k in keys {
        let mut v = inner.vmas.get_mut(&k).unwrap();
        v.flags.remove(VmFlags::LOCKED | VmFlags::LOCKONFAULT);
        v.flags.insert(set);
    }
    inner.merge_around(start, end);
}

pub fn do_mlock(mm: &MmStruct, start: u64, len: u64, flags: u32) -> KResult<()> {
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(EINVAL);
    }
    let (capable, limit) = can_do_mlock()?;
    let (start, end) = lock_range(start, len)?;
    if start == end {
        return Ok(());
    }
    let mut inner = mm.mmap_lock.write_killable()?;
    // Pages already locked inside the range do not count twice (count_mm_mlocked_page_nr).
    let already: u64 = inner
        .vmas
        .overlapping(start, end)
        .filter(|v| v.flags.contains(VmFlags::LOCKED))
        .map(|v| (v.end.min(end) - v.start.max(start)) / PAGE_SIZE)
        .sum();
    let locked = inner.locked_pages() - already + (end - start) / PAGE_SIZE;
    if locked > limit && !capable {
        return Err(ENOMEM);
    }
    check_mapped(&inner, start, end)?;
    if inner.any_mshare(start, end) {
        return Err(EINVAL);
    }
    inner.check_split(start, end)?;
    let onfault = flags & MLOCK_ONFAULT != 0;
    set_lock_flags(
        &mut inner,
        start,
        end,
        if onfault { VmFlags::LOCKED | VmFlags::LOCKONFAULT } else { VmFlags::LOCKED },
    );
    drop(inner);
    if !onfault {
        populate(mm, start, end)?;
    }
    Ok(())
}

pub fn do_munlock(mm: &MmStruct, start: u64, len: u64) -> KResult<()> {
    let (start, end) = lock_range(start, len)?;
    if start == end {
        return Ok(());
    }
    let mut inner = mm.mmap_lock.write_killable()?;
    check_mapped(&inner, start, end)?;
    if inner.any_mshare(start, end) {
        return Err(EINVAL);
    }
    inner.check_split(start, end)?;
    set_lock_flags(&mut inner, start, end, VmFlags::empty());
    Ok(())
}

pub fn do_mlockall(mm: &MmStruct, flags: u32) -> KResult<()> {
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
        return Err(EINVAL);
    }
    let (capable, limit) = can_do_mlock()?;
    let mut inner = mm.mmap_lock.write_killable()?;
    if flags & MCL_CURRENT != 0 && inner.total_pages() > limit && !capable {
        return Err(ENOMEM);
    }
    let lock = if flags & MCL_ONFAULT != 0 { VmFlags::LOCKED | VmFlags::LOCKONFAULT } else { VmFlags::LOCKED };
    inner.def_flags = if flags & MCL_FUTURE != 0 { lock } else { VmFlags::empty() };
    if flags & MCL_CURRENT != 0 {
        // mshare windows are left alone: their pages are the region's.
        let keys: alloc::vec::Vec<u64> =
            inner.vmas.values().filter(|v| !v.flags.contains(VmFlags::MSHARE)).map(|v| v.start).collect();
        for k in keys {
            inner.vmas.get_mut(&k).unwrap().flags.insert(lock);
        }
        if flags & MCL_ONFAULT == 0 {
            let ranges: alloc::vec::Vec<(u64, u64)> =
                inner.vmas.values().filter(|v| !v.flags.contains(VmFlags::MSHARE)).map(|v| (v.start, v.end)).collect();
            drop(inner);
            for (s, e) in ranges {
                populate(mm, s, e)?;
            }
        }
    }
    Ok(())
}

pub fn do_munlockall(mm: &MmStruct) -> KResult<()> {
    let mut inner = mm.mmap_lock.write_killable()?;
    inner.def_flags = VmFlags::empty();
    let keys: alloc::vec::Vec<u64> = inner.vmas.keys().copied().collect();
    for k in keys {
        inner.vmas.get_mut(&k).unwrap().flags.remove(VmFlags::LOCKED | VmFlags::LOCKONFAULT);
    }
    let ranges: alloc::vec::Vec<u64> = inner.vmas.keys().copied().collect();
    if let (Some(&s), Some(e)) = (ranges.first(), inner.vmas.values().last().map(|v| v.end)) {
        inner.merge_around(s, e);
    }
    Ok(())
}
