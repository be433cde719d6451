//! Transparent page-table sharing of big shared mappings (no Linux counterpart merged:
//! hugetlb's `huge_pmd_share` in mm/hugetlb.c shares PMD tables of hugetlbfs mappings, and
//! Dave McCracken's 2006 "shared page tables" series shared PTE tables of shared file
//! mappings).
//!
//! **Knob**: `pt_share=on|off` on the kernel command line and `/proc/sys/vm/pt_share` (0 or
//! 1), off by default so that every comparison with Linux stays like for like;
//! `/proc/sys/vm/pt_share_min_bytes` (default 2 MiB): mappings smaller than this are never
//! shared.
//!
//! **What can be shared**: MAP_SHARED mappings of shmem and tmpfs files (shared anonymous
//! memory, SysV attaches, memfds, `/dev/shm`, tmpfs files), never hugetlb ones (their PMD
//! entries map pages, not tables). A 2 MiB-aligned virtual range wholly inside such a
//! mapping, whose file offset is congruent to the address modulo 2 MiB, can use one PTE
//! table per (file, 2 MiB of file offset, protection).
//!
//! **Placement** (`share_align`): with the knob on, mmap without a usable hint (and so
//! shmat with a NULL address) places such a mapping at an address congruent to its file
//! offset modulo 2 MiB, or 1 GiB for mappings of at least 1 GiB, as Linux's
//! `thp_get_unmapped_area` aligns THP-eligible mappings.
//!
//! **Tables** come from the file's *host* (`PageCache::pt_share_host`): an address space
//! with no task (`MmStruct::new_file_host`) that maps the whole file once per protection,
//! at `prot * HOST_SPAN`, so its page tables are the file's index of shared tables: the PTE
//! table of (file, 2 MiB of offset, protection) is the host's table at that address. A
//! process's first fault in a shareable 2 MiB slot where it has no table of its own grafts
//! the host's (the mshare machinery: `graft_table`, the host's sharers, its TLB batch);
//! every fault through the graft is resolved in the host by the ordinary fault path. The
//! grafts hold the host; the host holds the file; the file only knows the host weakly.
//!
//! **Semantics stay Linux's.** A truncation or hole punch reaches the host through the
//! file's `i_mmap` like any mapping, and the host's gather flushes every sharer. An
//! operation that needs a process's own entries in part of a shared slot (munmap, mprotect,
//! mremap, MADV_DONTNEED) unshares the slot first (`unshare_range`: a private copy of the
//! entries, `MmStruct::unshare_graft`); a slot it covers whole loses its graft (munmap,
//! MADV_DONTNEED) or is unshared (mprotect, mremap).
//!
//! **Locks**: a process's `mmap_lock`, then its host's (shared), as for mshare windows; a
//! process's page-table lock, then its host's, only when unsharing.
#![deny(unsafe_code)]

use super::address_space::MmStruct;
use super::fault::{Access, FaultError};
use super::vma::{Backend, Prot, VmFlags, Vma};
use super::PAGE_SIZE;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bytes one shared PTE table maps, and one shared PMD table.
pub const PTE_TABLE_SPAN: u64 = 2 << 20;
pub const PMD_TABLE_SPAN: u64 = 1 << 30;

/// `vm.pt_share`.
static PT_SHARE: AtomicBool = AtomicBool::new(false);
/// `vm.pt_share_min_bytes`.
static PT_SHARE_MIN_BYTES: AtomicU64 = AtomicU64::new(PTE_TABLE_SPAN);

/// The line printed when the command line turns sharing on.
pub const PT_SHARE_ON_LINE: &str = "mshare-kernel: pt_share=on: page tables of big shared mappings are shared";

/// Reads `pt_share=on|off` from the command line.
pub fn init(cmdline: &str) {
    if crate::cmdline::get(cmdline, "pt_share") == Some("on") {
        set_enabled(true);
        crate::println!("{}", PT_SHARE_ON_LINE);
    }
}

pub fn enabled() -> bool {
    PT_SHARE.load(Ordering::Relaxed)
}

pub fn set_enabled(on: bool) {
    PT_SHARE.store(on, Ordering::Relaxed);
}

pub fn min_bytes() -> u64 {
    PT_SHARE_MIN_BYTES.load(Ordering::Relaxed)
}

pub fn set_min_bytes(bytes: u64) {
    PT_SHARE_MIN_BYTES.store(bytes, Ordering::Relaxed);
}

/// Whether the pages of `inode` can be mapped through shared tables: a shmem or tmpfs
/// file (shmem page cache), not a hugetlb one.
pub fn shareable_backing(inode: &dyn crate::fs::vfs::Inode) -> bool {
    !inode.is_hugetlb() && inode.page_cache().is_some_and(|pc| pc.kind() == super::page::PageKind::Shmem)
}

/// The alignment a new shared mapping of `len` bytes of a shareable backing gets when the
/// kernel picks its address (its address minus its file offset is a multiple of it), or
/// None when the knob is off or the mapping is too small to share.
pub fn share_align(len: u64) -> Option<u64> {
    if !enabled() || len < min_bytes().max(PAGE_SIZE) || len < PTE_TABLE_SPAN {
        return None;
    }
    Some(if len >= PMD_TABLE_SPAN { PMD_TABLE_SPAN } else { PTE_TABLE_SPAN })
}

/// Bytes of file each protection's mapping in a host covers: the host maps the file at
/// `prot * HOST_SPAN` (prot 1..=7), so offsets past 8 TiB are never shared.
const HOST_SPAN: u64 = 8 << 40;

/// Counters of /proc/vmstat: hosts made, grafts made (fork's included), slots unshared,
/// and the flushes of hosts gone (the live ones count in their sharers).
pub static HOSTS_MADE: AtomicU64 = AtomicU64::new(0);
pub static GRAFTS: AtomicU64 = AtomicU64::new(0);
pub static UNSHARES: AtomicU64 = AtomicU64::new(0);
static FLUSHES_OF_GONE_HOSTS: AtomicU64 = AtomicU64::new(0);

/// Every file's host, weakly (the dead ones are pruned as hosts are made): what the
/// figures of all hosts are summed over.
static HOSTS: crate::sync::SpinLock<alloc::vec::Vec<alloc::sync::Weak<MmStruct>>, crate::sync::order::PtShareHosts> =
    crate::sync::SpinLock::new(alloc::vec::Vec::new());

/// The live hosts, each with a reference (dropped by the caller, holding no lock: the
/// last one tears the host down).
fn live_hosts() -> alloc::vec::Vec<Arc<MmStruct>> {
    HOSTS.lock().iter().filter_map(|w| w.upgrade()).collect()
}

/// `PtShared` of /proc/meminfo, in pages: the page tables of every file's host (PTE, PMD
/// and PUD tables), each counted once whatever the number of its sharers.
pub fn shared_table_pages() -> u64 {
    let hosts = live_hosts();
    hosts.iter().map(|h| h.pt_pages.load(Ordering::Relaxed)).sum()
}

/// Flushes of every file's host so far (`pt_share_flushes` of /proc/vmstat).
pub fn flushes() -> u64 {
    let hosts = live_hosts();
    let live: u64 =
        hosts.iter().filter_map(|h| h.sharers.as_ref()).map(|s| s.stats.flushes.load(Ordering::Relaxed)).sum();
    live + FLUSHES_OF_GONE_HOSTS.load(Ordering::Relaxed)
}

/// The leak check's shrinker: the registry forgets the hosts gone (a `Weak` keeps its
/// host's allocation) and gives its room back.
pub fn shrink() {
    let mut hosts = HOSTS.lock();
    hosts.retain(|w| w.strong_count() > 0);
    hosts.shrink_to_fit();
}

/// A host is torn down: its flushes stay counted.
pub fn host_gone(host: &MmStruct) {
    if let Some(s) = &host.sharers {
        FLUSHES_OF_GONE_HOSTS.fetch_add(s.stats.flushes.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

fn host_base(prot: Prot) -> u64 {
    prot.bits() as u64 * HOST_SPAN
}

/// Whether the tables of `vma` may be shared now: the knob is on, and it is a shared,
/// accessible mapping of a shareable backing of at least `pt_share_min_bytes`.
fn shareable_vma(vma: &Vma) -> Option<&Arc<crate::fs::file::File>> {
    if !enabled()
        || !vma.is_shared()
        || vma.prot.is_empty()
        || vma.flags.intersects(VmFlags::MSHARE | VmFlags::HUGETLB)
        || vma.end - vma.start < min_bytes()
    {
        return None;
    }
    let Backend::File(f) = &vma.backend else { return None };
    f.inode().is_some_and(|i| shareable_backing(i.as_ref())).then_some(f)
}

/// The slot of `span` bytes (a PTE or PMD table's) of `vma` holding `addr` and where the
/// host maps it, if the slot lies wholly in the VMA at a file offset congruent to it.
fn shared_slot(vma: &Vma, addr: u64, span: u64) -> Option<(u64, u64)> {
    let slot = addr & !(span - 1);
    if slot < vma.start || slot + span > vma.end {
        return None;
    }
    let offset = vma.pgoff * PAGE_SIZE + (slot - vma.start);
    if !offset.is_multiple_of(span) || offset + span > HOST_SPAN {
        return None;
    }
    Some((slot, host_base(vma.prot) + offset))
}

/// The table `mm` can graft for `addr` in `vma`: the PMD table of a whole shareable GiB
/// where it has no PMD table of its own there, else the PTE table of a shareable 2 MiB
/// slot where it has no PTE table; as (level, slot, the slot in the host).
fn graft_slot(mm: &MmStruct, vma: &Vma, addr: u64) -> Option<(usize, u64, u64)> {
    if let Some((slot, hslot)) = shared_slot(vma, addr, PMD_TABLE_SPAN) {
        if mm.table_at(slot, 2).is_none() {
            return Some((2, slot, hslot));
        }
    }
    let (slot, hslot) = shared_slot(vma, addr, PTE_TABLE_SPAN)?;
    mm.table_at(slot, 1).is_none().then_some((1, slot, hslot))
}

/// The host of the file behind `cache`, made on first use.
fn file_host(cache: &super::page_cache::PageCache) -> Option<Arc<MmStruct>> {
    let mut weak = cache.pt_share_host.lock();
    if let Some(h) = weak.upgrade() {
        return Some(h);
    }
    let h = MmStruct::new_file_host()?;
    {
        let mut hosts = HOSTS.lock();
        hosts.retain(|w| w.strong_count() > 0);
        if crate::mm::fail::try_reserve(&mut *hosts, 1).is_err() {
            return None;
        }
        hosts.push(Arc::downgrade(&h));
    }
    *weak = Arc::downgrade(&h);
    HOSTS_MADE.fetch_add(1, Ordering::Relaxed);
    Some(h)
}

/// The host's mapping of `file` with `vma`'s protection, made on first use.
fn ensure_host_vma(host: &MmStruct, file: &Arc<crate::fs::file::File>, vma: &Vma) {
    let base = host_base(vma.prot);
    if host.mmap_lock.read().find_vma(base).is_some() {
        return;
    }
    let mut inner = host.mmap_lock.write();
    if inner.find_vma(base).is_some() {
        return;
    }
    let mut flags = VmFlags::SHARED;
    if vma.prot.contains(Prot::WRITE) {
        flags |= VmFlags::MAYWRITE;
    }
    inner.insert_vma(Vma {
        start: base,
        end: base + HOST_SPAN,
        prot: vma.prot,
        flags,
        pgoff: 0,
        backend: Backend::File(file.clone()),
        ops: None,
        live: crate::leak::VMAS.live(),
    });
}

/// A fault at `addr` of `vma` in `mm` (whose `mmap_lock` the caller holds shared) that
/// shared tables take: through a graft made earlier, or in a shareable slot where `mm` has
/// no table of its own yet, which then grafts the host's. Resolved in the host. None when
/// the ordinary fault path takes it.
pub fn handle_fault(mm: &MmStruct, vma: &Vma, addr: u64, access: Access) -> Option<Result<(), FaultError>> {
    // Hosts never graft; only shared mappings are ever grafted.
    if mm.sharers.is_some() || !vma.is_shared() {
        return None;
    }
    if let Some((host, haddr)) = mm.graft_host(addr) {
        return host.file_host.then(|| fault_in_host(mm, &host, haddr, addr, access));
    }
    let file = shareable_vma(vma)?;
    let (level, slot, hslot) = graft_slot(mm, vma, addr)?;
    let inode = file.inode()?;
    let Some(host) = file_host(inode.page_cache()?) else { return Some(Err(FaultError::Oom)) };
    ensure_host_vma(&host, file, vma);
    let table = {
        let _hinner = host.mmap_lock.read();
        let mut hpt = host.page_table_lock.lock();
        hpt.pt.ensure_table(&mut host.phys_mem(), hslot, level)
    };
    let Ok(table) = table else { return Some(Err(FaultError::Oom)) };
    // The VMA limits what may be done through the graft; the host's entries say the rest.
    let mut flags = page_table::PteFlags::PRESENT | page_table::PteFlags::USER;
    if vma.prot.contains(Prot::WRITE) {
        flags |= page_table::PteFlags::WRITABLE;
    }
    match mm.graft_table(slot, level, table, flags, Some((host.clone(), slot.wrapping_sub(hslot)))) {
        Ok(()) => {
            GRAFTS.fetch_add(1, Ordering::Relaxed);
        }
        Err(page_table::MapError::OutOfMemory) => return Some(Err(FaultError::Oom)),
        // Another thread grafted it, or made a table of its own, meanwhile.
        Err(_) if mm.graft_host(addr).is_none() => return None,
        Err(_) => {}
    }
    Some(fault_in_host(mm, &host, hslot + (addr - slot), addr, access))
}

/// Resolves a fault through a graft in the host, at `haddr` there.
fn fault_in_host(mm: &MmStruct, host: &MmStruct, haddr: u64, addr: u64, access: Access) -> Result<(), FaultError> {
    let hinner = host.mmap_lock.read();
    let (_held, r) = super::fault::fault_shared(host, hinner, haddr, access);
    r?;
    // Another sharer may have filled the entry this CPU still holds absent.
    super::tlb::flush_spurious_fault(mm.root(), addr & !(PAGE_SIZE - 1));
    Ok(())
}

/// Unshares the shared-table grafts of `mm` that [start, end) covers in part, and with
/// `whole` those it covers whole too, before an operation that needs `mm`'s own entries
/// there. A PMD-table graft becomes a PMD table of `mm`'s own whose entries graft the
/// host's PTE tables (`MmStruct::split_graft`); then each PTE-table graft so cut becomes a
/// private copy (`MmStruct::unshare_graft`). The caller holds `mm`'s `mmap_lock`.
pub fn unshare_range(mm: &MmStruct, start: u64, end: u64, whole: bool) {
    let targets = |level: usize| -> alloc::vec::Vec<(u64, Arc<MmStruct>)> {
        let g = mm.page_table_lock.lock();
        g.grafts
            .iter()
            .filter(|gr| gr.level == level && gr.va < end && start < gr.end())
            .filter(|gr| whole || start > gr.va || gr.end() > end)
            .filter_map(|gr| gr.host.as_ref().filter(|(h, _)| h.file_host).map(|(h, _)| (gr.va, h.clone())))
            .collect()
    };
    if mm.page_table_lock.lock().grafts.is_empty() {
        return;
    }
    let tlb = super::tlb::MmuGather::for_mm(mm);
    for (level, unshare) in [(2, false), (1, true)] {
        for (va, host) in targets(level) {
            // No truncation of the host while its entries are copied.
            let _hinner = host.mmap_lock.read();
            if unshare {
                if mm.unshare_graft(&tlb, va) {
                    UNSHARES.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                mm.split_graft(&tlb, va);
            }
        }
    }
}

/// fork: the child grafts the shared tables the parent grafted, where one VMA it inherits
/// covers the whole graft, so it reaches the same pages with no fault (mshare windows are left to fault, as the
/// Linux series). A graft that cannot be made is left to the child's first fault. The
/// caller holds both address spaces' `mmap_lock` exclusive (`parent` is the parent's).
pub fn fork_grafts(mm: &MmStruct, parent: &super::address_space::MmInner, child: &MmStruct) {
    let grafts: alloc::vec::Vec<(u64, usize, u64, Arc<MmStruct>, u64)> = {
        let g = mm.page_table_lock.lock();
        g.grafts
            .iter()
            .filter_map(|gr| {
                let (h, delta) = gr.host.as_ref().filter(|(h, _)| h.file_host)?;
                Some((gr.va, gr.level, gr.table, h.clone(), *delta))
            })
            .collect()
    };
    for (va, level, table, host, delta) in grafts {
        // Only where one inherited VMA covers the whole graft: a part left out of the child
        // (MADV_DONTFORK) must not be reachable through it.
        let end = va + super::mshare::graft_size(level);
        let inherited = |v: &&Vma| v.start <= va && end <= v.end && !v.flags.contains(VmFlags::DONTFORK);
        let Some(v) = parent.find_vma(va).filter(inherited) else { continue };
        let mut flags = page_table::PteFlags::PRESENT | page_table::PteFlags::USER;
        if v.prot.contains(Prot::WRITE) {
            flags |= page_table::PteFlags::WRITABLE;
        }
        if child.graft_table(va, level, table, flags, Some((host, delta))).is_ok() {
            GRAFTS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The lowest address at or above `free` congruent to `offset` modulo `align` (a power of
/// two): where a mapping found room for `len + align - PAGE_SIZE` bytes at `free` goes.
pub fn congruent_above(free: u64, offset: u64, align: u64) -> u64 {
    free + (offset.wrapping_sub(free) & (align - 1))
}

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![
    share_align_follows_the_knob_and_the_minimum,
    congruent_above_keeps_the_offset_phase_within_the_slack
];

fn share_align_follows_the_knob_and_the_minimum() {
    let (on, min) = (enabled(), min_bytes());
    set_enabled(false);
    assert_eq!(share_align(4 << 20), None);
    set_enabled(true);
    set_min_bytes(2 << 20);
    assert_eq!(share_align(1 << 20), None);
    assert_eq!(share_align(2 << 20), Some(PTE_TABLE_SPAN));
    assert_eq!(share_align((1 << 30) - PAGE_SIZE), Some(PTE_TABLE_SPAN));
    assert_eq!(share_align(1 << 30), Some(PMD_TABLE_SPAN));
    set_min_bytes(8 << 20);
    assert_eq!(share_align(4 << 20), None);
    set_enabled(on);
    set_min_bytes(min);
}

fn congruent_above_keeps_the_offset_phase_within_the_slack() {
    let a = PTE_TABLE_SPAN;
    for (free, off) in [(0x7f00_0000_0000u64, 0u64), (0x7f00_0012_3000, 0x1000), (0x7f00_0020_0000, 0x1f_f000)] {
        let addr = congruent_above(free, off, a);
        assert!(addr >= free && addr - free < a);
        assert_eq!((addr - off) % a, 0);
    }
}
