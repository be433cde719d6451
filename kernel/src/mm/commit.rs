//! Address-space limits and commit accounting (Linux's mm/util.c `__vm_enough_memory`,
//! `vm_commit_limit`, and mm/mmap.c `may_expand_vm`, `accountable_mapping`): the
//! overcommit policy (`vm.overcommit_memory`, `overcommit_ratio`, `overcommit_kbytes`),
//! `vm.max_map_count`, `vm.mmap_min_addr` and RLIMIT_AS.
//!
//! Committed memory (`Committed_AS`, Linux's `vm_committed_as`) is the pages of every
//! VM_ACCOUNT VMA of every address space plus the shmem objects charged at their
//! creation (shared anonymous memory, `shmem_acct_size`). A VMA's pages are charged when
//! it enters an address space or grows (`insert_vma`, fork, mremap, stack growth,
//! mprotect) and uncharged when they leave (`take_vmas`, teardown), so the figure is
//! exact at every moment; the overcommit check comes first, where Linux makes it. The
//! pages of tmpfs files and of shared anonymous memory made MAP_NORESERVE are charged
//! one by one while cached (`PageCache`), without a check.
//!
//! An address space is charged to the task that asks, except an mshare host: no task runs
//! in it, and whoever asks (a process's CREATE_MAPPING, a guest's fault) is charged
//! nothing; its creator's limits and capabilities, as they were when it made the region,
//! are ([`Owner`]; the Linux series charges the creator's memory cgroup).
#![deny(unsafe_code)]

use super::address_space::MmInner;
use super::vma::{Prot, VmFlags};
use super::PAGE_SIZE;
use crate::errno::*;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// `vm.overcommit_memory` values (OVERCOMMIT_*).
pub const OVERCOMMIT_GUESS: i32 = 0;
pub const OVERCOMMIT_ALWAYS: i32 = 1;
pub const OVERCOMMIT_NEVER: i32 = 2;

/// `vm.overcommit_memory` (default heuristic).
pub static OVERCOMMIT_MEMORY: AtomicI32 = AtomicI32::new(OVERCOMMIT_GUESS);
/// `vm.overcommit_ratio`: percent of RAM that strict mode lets be committed.
pub static OVERCOMMIT_RATIO: AtomicI32 = AtomicI32::new(50);
/// `vm.overcommit_kbytes`: when not 0, the commit limit instead of the ratio.
pub static OVERCOMMIT_KBYTES: AtomicU64 = AtomicU64::new(0);
/// `vm.max_map_count` (DEFAULT_MAX_MAP_COUNT): VMAs are kernel memory a process could
/// otherwise grow without bound, out of the OOM killer's reach.
pub static MAX_MAP_COUNT: AtomicI32 = AtomicI32::new(65530);
/// `vm.mmap_min_addr` (CONFIG_DEFAULT_MMAP_MIN_ADDR): MAP_FIXED below it needs
/// CAP_SYS_RAWIO, and nothing else is placed below it.
pub static MMAP_MIN_ADDR: AtomicU64 = AtomicU64::new(0x10000);

pub fn max_map_count() -> usize {
    MAX_MAP_COUNT.load(Ordering::Relaxed).max(0) as usize
}

pub fn mmap_min_addr() -> u64 {
    MMAP_MIN_ADDR.load(Ordering::Relaxed)
}

/// `vm_acct_memory` / `vm_unacct_memory` (negative `pages`). The figure is a leak
/// counter: with every process gone it is back at its boot value.
pub fn vm_acct_memory(pages: i64) {
    crate::leak::COMMITTED.add(pages);
}

/// `vm_memory_committed`: the `Committed_AS` of /proc/meminfo, in pages.
pub fn vm_memory_committed() -> u64 {
    crate::leak::COMMITTED.get().max(0) as u64
}

/// `vm_commit_limit`: the `CommitLimit` of /proc/meminfo, in pages (no swap, no
/// hugetlb pool). The ratio is an int that Linux multiplies as an unsigned long.
pub fn vm_commit_limit() -> u64 {
    let kbytes = OVERCOMMIT_KBYTES.load(Ordering::Relaxed);
    if kbytes != 0 {
        return kbytes / (PAGE_SIZE / 1024);
    }
    let ratio = OVERCOMMIT_RATIO.load(Ordering::Relaxed) as i64 as u64;
    totalram_pages().wrapping_mul(ratio) / 100
}

fn totalram_pages() -> u64 {
    super::frame::stats().usable
}

/// `sysctl_admin_reserve_kbytes` and `sysctl_user_reserve_kbytes` in pages, as
/// `init_admin_reserve` and `init_user_reserve` set them at boot: 1/32 of free
/// memory, at most 8 MiB and 128 MiB.
fn reserves() -> (u64, u64) {
    (ADMIN_RESERVE.load(Ordering::Relaxed), USER_RESERVE.load(Ordering::Relaxed))
}

static ADMIN_RESERVE: AtomicU64 = AtomicU64::new(0);
static USER_RESERVE: AtomicU64 = AtomicU64::new(0);

/// Computes the reserves from the memory free at boot (called once, before init).
pub fn init() {
    let free = super::frame::stats().free;
    ADMIN_RESERVE.store((free / 32).min((8 << 20) / PAGE_SIZE), Ordering::Relaxed);
    USER_RESERVE.store((free / 32).min((128 << 20) / PAGE_SIZE), Ordering::Relaxed);
}

/// `security_vm_enough_memory_mm` → `__vm_enough_memory` without the charge (callers
/// charge through the VMA that gets the pages): Ok if `pages` more may be committed by
/// the address space `inner` under the overcommit policy, ENOMEM otherwise.
/// Heuristic mode refuses only a single request larger than all RAM; strict mode holds
/// the total under `vm_commit_limit`, less a reserve for root (without CAP_SYS_ADMIN)
/// and one that keeps a single process from taking it all.
pub fn vm_enough_memory(inner: &MmInner, pages: u64) -> KResult<()> {
    match OVERCOMMIT_MEMORY.load(Ordering::Relaxed) {
        OVERCOMMIT_ALWAYS => Ok(()),
        OVERCOMMIT_GUESS => {
            if pages > totalram_pages() {
                Err(ENOMEM)
            } else {
                Ok(())
            }
        }
        _ => {
            let (admin, user) = reserves();
            let mut allowed = vm_commit_limit() as i64;
            if !charged_capable(inner, crate::process::cred::CAP_SYS_ADMIN) {
                allowed -= admin as i64;
            }
            allowed -= (inner.total_pages() / 32).min(user) as i64;
            if ((vm_memory_committed() + pages) as i64) < allowed {
                Ok(())
            } else {
                Err(ENOMEM)
            }
        }
    }
}

/// The credentials and resource limits an address space with no task of its own is
/// charged against (`MmInner::owner`).
pub struct Owner {
    pub creds: crate::process::cred::Creds,
    pub rlimits: [crate::process::task::Rlimit; crate::process::task::RLIMIT_NLIMITS],
}

impl Owner {
    /// The calling task's, as they are now; the kernel's own when no task runs (in-kernel
    /// tests).
    pub fn current() -> Owner {
        match crate::process::sched::current() {
            Some(t) => Owner { creds: t.process.creds.lock().clone(), rlimits: *t.process.rlimits.lock() },
            None => Owner::kernel(),
        }
    }

    /// The kernel's: root, no limits.
    pub fn kernel() -> Owner {
        let inf = crate::process::task::Rlimit {
            cur: crate::process::task::RLIM_INFINITY,
            max: crate::process::task::RLIM_INFINITY,
        };
        Owner { creds: crate::process::cred::Creds::root(), rlimits: [inf; crate::process::task::RLIMIT_NLIMITS] }
    }
}

/// The soft limit `resource` of whoever `inner` is charged to: its owner, else the caller
/// (none for the kernel itself).
pub fn charged_rlimit(inner: &MmInner, resource: usize) -> u64 {
    match &inner.owner {
        Some(o) => o.rlimits[resource].cur,
        None => crate::process::sched::current()
            .map_or(crate::process::task::RLIM_INFINITY, |t| t.process.rlimit(resource).cur),
    }
}

/// Whether whoever `inner` is charged to has `cap`.
pub fn charged_capable(inner: &MmInner, cap: u32) -> bool {
    match &inner.owner {
        Some(o) => o.creds.capable(cap),
        None => capable(cap),
    }
}

/// Whether the caller has `cap`; the kernel itself (no current task: in-kernel tests)
/// has every one.
pub fn capable(cap: u32) -> bool {
    crate::process::sched::current().is_none_or(|t| t.process.creds.lock().capable(cap))
}

/// Linux's `accountable_mapping`: private writable mappings are charged unless
/// VM_NORESERVE; shared ones are charged through their shmem object, if at all; hugetlb
/// ones through the huge page pool's reservations.
pub fn accountable_mapping(prot: Prot, flags: VmFlags) -> bool {
    prot.contains(Prot::WRITE) && !flags.intersects(VmFlags::NORESERVE | VmFlags::SHARED | VmFlags::HUGETLB)
}

/// Linux's `may_expand_vm`: whether `npages` more fit under RLIMIT_AS (the owner's, for
/// an mshare host).
pub fn may_expand_vm(inner: &MmInner, npages: u64) -> bool {
    let limit = charged_rlimit(inner, crate::process::task::RLIMIT_AS);
    // Unlimited needs no count of the VMAs' pages.
    limit == crate::process::task::RLIM_INFINITY || inner.total_pages() + npages <= limit / PAGE_SIZE
}

/// A charge held by a shmem object for its whole size (`shmem_acct_size`), given back
/// when the object goes (`shmem_unacct_size` at eviction).
pub struct ShmemCharge(u64);

impl ShmemCharge {
    /// Charges `pages` for a new shmem object made by the address space `inner`,
    /// ENOMEM if the overcommit policy refuses.
    pub fn new(inner: &MmInner, pages: u64) -> KResult<ShmemCharge> {
        vm_enough_memory(inner, pages)?;
        vm_acct_memory(pages as i64);
        Ok(ShmemCharge(pages))
    }
}

impl Drop for ShmemCharge {
    fn drop(&mut self) {
        vm_acct_memory(-(self.0 as i64));
    }
}
