//! `brk` (Linux's `sys_brk` and `do_brk_flags`): grows or shrinks the heap VMA; on
//! failure (the gap, RLIMIT_AS, the VMA limit, overcommit) the old break is returned,
//! which is how user space learns of it. Holds `mmap_lock` exclusive (Linux's is
//! killable, returning EINTR; here a kill waits for the lock and the break is unchanged
//! by the dying task's return value).
#![deny(unsafe_code)]

use super::address_space::MmStruct;
use super::vma::{Backend, Prot, VmFlags, Vma};
use super::{align_up, PAGE_SIZE};

pub fn do_brk(mm: &MmStruct, addr: u64) -> u64 {
    let mut inner = mm.mmap_lock.write();
    let old = inner.brk;
    if addr < inner.start_brk || addr > super::address_space::TASK_SIZE {
        return old;
    }
    let (old_end, new_end) = (align_up(old, PAGE_SIZE), align_up(addr, PAGE_SIZE));
    if new_end < old_end {
        let tlb = super::tlb::MmuGather::for_mm(&mm);
        inner.unmap_region(&tlb, mm, new_end, old_end);
    } else if new_end > old_end {
        if new_end > super::address_space::MMAP_BASE || inner.overlaps(old_end, new_end) {
            return old;
        }
        // mlockall(MCL_FUTURE) locks the new heap too, within RLIMIT_MEMLOCK
        // (do_brk_flags's mm->def_flags and mlock_future_check).
        let locked = inner.def_flags;
        if locked.contains(VmFlags::LOCKED) && !super::mlock::may_lock(&inner, (new_end - old_end) / PAGE_SIZE) {
            return old;
        }
        // do_brk_flags: RLIMIT_AS, the VMA limit, then the overcommit policy; the heap is
        // always charged (VM_ACCOUNT).
        let pages = (new_end - old_end) / PAGE_SIZE;
        if !super::commit::may_expand_vm(&inner, pages)
            || inner.vmas.len() > super::commit::max_map_count()
            || super::commit::vm_enough_memory(&inner, pages).is_err()
        {
            return old;
        }
        inner.insert_vma(Vma {
            live: crate::leak::VMAS.live(),
            start: old_end,
            end: new_end,
            prot: Prot::READ | Prot::WRITE,
            flags: VmFlags::HEAP | VmFlags::ACCOUNT | VmFlags::MAYWRITE | locked,
            pgoff: 0,
            backend: Backend::Anonymous,
            ops: None,
        });
    }
    inner.brk = addr;
    let populate = inner.def_flags.populates_locked();
    drop(inner);
    if populate && new_end > old_end {
        // Failures are left to the later access, as Linux's mm_populate.
        let _ = super::mlock::populate(mm, old_end, new_end);
    }
    addr
}
