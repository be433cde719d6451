//! mshare: page tables shared between processes (Linux's proposed mm/mshare.c: Khalid
//! Aziz's 2022 syscall series and Anthony Yznaga's 2025 msharefs series, never merged).
//!
//! A **region** is a host address space with no task (`MmStruct::new_host`): its own VMAs
//! (what `MSHAREFS_CREATE_MAPPING` or `mshare(O_CREAT)` put there) and page tables, at
//! `base` in the host, aligned to the region's graft size. A process maps the region as
//! one **window** VMA (VM_MSHARE, `ops` = [`Window`]); a fault in the window grafts the
//! host's table covering the address into the process's page table (one reference on
//! the table) and returns so the access retries; a fault through the graft resolves in
//! the host VMA with the ordinary fault path on the host's tables. So N processes pay
//! for one set of tables below the graft level: 512 GiB (the host's PDPT grafted as a
//! PML4 entry, Linux's choice), 1 GiB (a PD as a PDPT entry) or 2 MiB (a PT as a PD entry).
//!
//! **Locks**: a guest's fault holds its `mmap_lock` shared, then the host's shared
//! (always this order; the host's writers, the ioctls, take no guest's); a graft is made
//! under the guest's page-table lock after the host's table was made under the host's.
//! Walks through a window by the kernel (usercopy) look the page up in the host under
//! the host's locks ([`window_page`]), never through the guest's graft.
//!
//! **TLB**: the host is never loaded on a CPU; its gathers flush the sharers instead
//! (`tlb::Sharers`, each window that grafts, at its own addresses, on the CPUs that have
//! it loaded), and free nothing before every acknowledgement. A guest joins the sharers
//! before its graft is linked and leaves after its ungraft was flushed.
//!
//! **Lifetime**: a window holds the region (`Arc`), the region holds the host; the
//! msharefs file holds the region while linked or open. The last reference frees the
//! host with its tables and pages.
#![deny(unsafe_code)]

use super::address_space::MmStruct;
use super::fault::{Access, FaultError};
use super::page::Page;
use super::vma::{Vma, VmaOps};
use super::PAGE_SIZE;
use crate::errno::*;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use page_table::PteFlags;

/// The graft levels a region can use: the level of the host table a guest grafts.
pub const GRAFT_512G: usize = 3;
pub const GRAFT_1G: usize = 2;
pub const GRAFT_2M: usize = 1;

/// What a region's guests can reach, counted as they happen.
#[derive(Default)]
pub struct RegionStats {
    /// Grafts made by guests (each a table linked into a guest).
    pub grafts: AtomicU64,
    /// Faults resolved in the host (a page filled or upgraded for a guest).
    pub host_faults: AtomicU64,
}

pub struct Region {
    /// The address space that owns the region's VMAs and tables.
    pub host: Arc<MmStruct>,
    /// Where the region starts in the host.
    pub base: u64,
    /// The level of the host tables guests graft (`GRAFT_*`).
    pub level: usize,
    size: AtomicU64,
    /// What an access to a part of the region where the host maps nothing raises: SIGBUS
    /// for the 2022 syscall API, SIGSEGV for msharefs (as after `MSHAREFS_UNMAP`).
    hole: FaultError,
    /// Window VMAs onto the region (the address spaces that have it mapped, one per window).
    windows: AtomicU64,
    pub stats: RegionStats,
    _live: crate::leak::Live,
}

impl Region {
    /// A region whose guests graft host tables of `level`, at `base` in the host (aligned
    /// to the graft size), with nothing mapped yet, owned by the caller: what its host
    /// maps is charged to the caller's limits as they are now, whoever maps it later.
    pub fn new(level: usize, base: u64, size: u64, hole_is_sigbus: bool) -> KResult<Arc<Region>> {
        debug_assert!((1..=3).contains(&level) && base.is_multiple_of(graft_size(level)));
        let host =
            MmStruct::new_host(Arc::new(super::tlb::Sharers::new()), super::commit::Owner::current()).ok_or(ENOMEM)?;
        Ok(Arc::new(Region {
            host,
            base,
            level,
            size: AtomicU64::new(size),
            hole: if hole_is_sigbus { FaultError::Bus } else { FaultError::MapErr },
            windows: AtomicU64::new(0),
            stats: RegionStats::default(),
            _live: crate::leak::MSHARE_REGIONS.live(),
        }))
    }

    /// Bytes a graft covers, to which addresses and sizes are aligned.
    pub fn align(&self) -> u64 {
        graft_size(self.level)
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }

    /// Window VMAs onto the region.
    pub fn windows(&self) -> u64 {
        self.windows.load(Ordering::Relaxed)
    }

    pub fn sharers(&self) -> &Arc<super::tlb::Sharers> {
        self.host.sharers.as_ref().expect("a region's host has sharers")
    }
}

/// Bytes one grafted table of `level` maps.
pub fn graft_size(level: usize) -> u64 {
    1u64 << (12 + 9 * level)
}

/// The ops of a window VMA (Linux's `msharefs_vm_ops`): the region it shows, and the
/// ops of what the window stands for, if any (a SysV attach with SHM_SHARE_MMU counts in
/// `shm_nattch` through them).
pub struct Window {
    pub region: Arc<Region>,
    pub inner: Option<Arc<dyn VmaOps>>,
}

impl VmaOps for Window {
    fn open(&self, vma: &Vma) {
        self.region.windows.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = &self.inner {
            i.open(vma);
        }
    }
    fn close(&self, vma: &Vma) {
        self.region.windows.fetch_sub(1, Ordering::Relaxed);
        if let Some(i) = &self.inner {
            i.close(vma);
        }
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
    fn map_pages(&self) -> bool {
        false
    }
}

/// The region a window VMA shows.
pub fn window_region(vma: &Vma) -> Option<&Arc<Region>> {
    Some(&vma.ops.as_ref()?.as_any().downcast_ref::<Window>()?.region)
}

/// The host address `addr` of the window `vma` shows.
fn host_addr(region: &Region, vma: &Vma, addr: u64) -> u64 {
    addr - vma.start + region.base
}

/// A fault at `addr` in the window `vma` of `mm`, whose `mmap_lock` the caller holds
/// (Linux's `find_shared_vma` then `handle_mm_fault` on the host VMA): grafts the host's
/// table if the guest has none there yet (the access then retries), else resolves the
/// fault in the host.
pub fn handle_window_fault(mm: &MmStruct, vma: &Vma, addr: u64, access: Access) -> Result<(), FaultError> {
    let region = window_region(vma).ok_or(FaultError::Bus)?;
    let host = &region.host;
    let haddr = host_addr(region, vma, addr);
    let hinner = host.mmap_lock.read();
    let align = region.align();
    let slot = addr & !(align - 1);
    if !has_graft(mm, slot) {
        let table = {
            let mut hpt = host.page_table_lock.lock();
            let mut mem = host.phys_mem();
            hpt.pt.ensure_table(&mut mem, haddr & !(align - 1), region.level).map_err(|_| FaultError::Oom)?
        };
        // The guest's VMA limits what it may do through the graft (x86 takes the strictest
        // permission of every level); the host's entries say the rest.
        let mut flags = PteFlags::PRESENT | PteFlags::USER;
        if vma.prot.contains(super::vma::Prot::WRITE) {
            flags |= PteFlags::WRITABLE;
        }
        let delta = vma.start.wrapping_sub(region.base);
        return match mm.graft_table(slot, region.level, table, flags, Some((region.host.clone(), delta))) {
            Ok(()) => {
                region.stats.grafts.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            // Another thread of this address space grafted it meanwhile.
            Err(page_table::MapError::AlreadyMapped) if has_graft(mm, slot) => Ok(()),
            Err(page_table::MapError::OutOfMemory) => Err(FaultError::Oom),
            Err(_) => Err(FaultError::Bus),
        };
    }
    if hinner.find_vma(haddr).is_none() {
        return Err(region.hole);
    }
    region.stats.host_faults.fetch_add(1, Ordering::Relaxed);
    let (_held, r) = super::fault::fault_shared(host, hinner, haddr, access);
    r?;
    // Another sharer may have upgraded the entry this CPU still holds read-only or absent.
    super::tlb::flush_spurious_fault(mm.root(), addr & !(PAGE_SIZE - 1));
    Ok(())
}

/// Whether `mm` grafted a table at `slot`.
fn has_graft(mm: &MmStruct, slot: u64) -> bool {
    mm.page_table_lock.lock().grafts.iter().any(|g| g.va == slot)
}

/// The page at `addr` of the window `vma` of `mm`, faulted in for `access` in the host and
/// taken under the host's locks (usercopy through a window: the guest's graft is not walked,
/// so no host change can free a page or table under the lookup).
pub fn window_page(mm: &MmStruct, vma: &Vma, addr: u64, access: Access) -> KResult<Page> {
    let region = window_region(vma).ok_or(EFAULT)?;
    // Grafted as the access itself would be, so that later lookups without faulting
    // (`read_u32_nofault`) find the page through the graft's host.
    if !has_graft(mm, addr & !(region.align() - 1)) {
        handle_window_fault(mm, vma, addr, access).map_err(|_| EFAULT)?;
    }
    let host = &region.host;
    let haddr = host_addr(region, vma, addr);
    let mut hinner = host.mmap_lock.read();
    for _ in 0..2 {
        if hinner.find_vma(haddr).is_none() {
            return Err(EFAULT);
        }
        if let Some(page) = host_page(host, haddr, access) {
            return Ok(page);
        }
        let (held, r) = super::fault::fault_shared(host, hinner, haddr, access);
        hinner = held;
        r.map_err(|_| EFAULT)?;
    }
    Err(EFAULT)
}

/// The page mapped at `haddr` in the host if the entry allows `access`, with a reference.
pub fn host_page(host: &MmStruct, haddr: u64, access: Access) -> Option<Page> {
    let pt = host.page_table_lock.lock();
    super::usercopy::mapped_page(pt.pt.translate(&host.phys_mem(), haddr)?, haddr, access)
}

/// Calls `f` with each region page `mm` reaches through its grafts in the window `vma`
/// (what its page tables map there: the host's pages in every grafted slot), walked in
/// the host under the host's page-table lock. The caller holds `mm`'s `mmap_lock` and no
/// page-table lock.
pub fn for_each_window_page(mm: &MmStruct, vma: &Vma, mut f: impl FnMut(u64)) {
    for_each_window_page_in(mm, vma, vma.start, vma.end, |_, pa| f(pa));
}

/// `for_each_window_page` over [start, end) of the window, with each page's address in `mm`.
pub fn for_each_window_page_in(mm: &MmStruct, vma: &Vma, start: u64, end: u64, mut f: impl FnMut(u64, u64)) {
    if window_region(vma).is_none() {
        return;
    }
    for_each_grafted_page_in(mm, start.max(vma.start), end.min(vma.end), |at, pa, _| f(at, pa));
}

/// Calls `f` with each page `mm` reaches through its grafts of a host's tables (mshare
/// windows, a file's shared tables) in [start, end): its address in `mm`, the page, and
/// how many grafts reach it (each table on its way in the host counts its references
/// beyond its owner's, one per graft). Walked in each host under the host's page-table
/// lock; the caller holds `mm`'s `mmap_lock` and no page-table lock.
pub fn for_each_grafted_page_in(mm: &MmStruct, start: u64, end: u64, mut f: impl FnMut(u64, u64, u64)) {
    let slots: alloc::vec::Vec<(u64, u64, u64, Arc<MmStruct>)> = {
        let g = mm.page_table_lock.lock();
        if g.grafts.is_empty() {
            return;
        }
        g.grafts
            .iter()
            .filter(|gr| gr.va < end && start < gr.end())
            .filter_map(|gr| gr.host.clone().map(|(h, delta)| (gr.va.max(start), gr.end().min(end), delta, h)))
            .collect()
    };
    for (s, e, delta, host) in slots {
        let pt = host.page_table_lock.lock();
        let mem = host.phys_mem();
        // The grafts reaching the pages of the last PTE table walked.
        let mut reach: Option<(u64, u64)> = None;
        let mut cursor = pt.pt.cursor(s.wrapping_sub(delta), e.wrapping_sub(delta));
        while let Some((hva, m)) = cursor.next(&mem) {
            if super::page::is_zero_page(m.phys) {
                continue;
            }
            let table = cursor.slot().map_or(0, |(t, _, _)| t);
            let n = match reach {
                Some((t, n)) if t == table => n,
                _ => {
                    let n = (1..=3)
                        .filter_map(|l| pt.pt.table_at(&mem, hva, l))
                        .map(|t| (super::page::page_count(t) as u64).saturating_sub(1))
                        .sum::<u64>()
                        .max(1);
                    reach = Some((table, n));
                    n
                }
            };
            f(hva.wrapping_add(delta), m.phys, n);
        }
    }
}

/// Among how many address spaces a page reached by `reach` grafts is divided in Pss: those
/// grafts' (each an address space's), and each other mapping of the page beside the
/// host's own.
pub fn grafted_page_sharers(reach: u64, phys: u64) -> u64 {
    reach.max(1) + (super::page::page_mapcount(phys) as u64).saturating_sub(1)
}

/// Pages `mm` reaches through all its grafts (mshare windows, shared file tables), by kind
/// (anon, file, shmem): what its RSS counts of them beside its own counters (Linux's mshare
/// proposals count none, the host's counters being elsewhere).
pub fn grafts_rss(mm: &MmStruct) -> [u64; 3] {
    let mut rss = [0u64; 3];
    for_each_grafted_page_in(mm, 0, super::address_space::TASK_SIZE, |_, pa, _| {
        if let Some(kind) = super::page::mm_counter(pa) {
            rss[kind as usize] += 1;
        }
    });
    rss
}

/// `mshare(name, addr, len, oflag, mode)` of the 2022 series: with O_CREAT (and no region
/// of that name, else EEXIST under O_EXCL), the caller's mappings in [addr, addr + len)
/// (all shared: a private one is EINVAL) move into a new region at the same addresses,
/// named `name` in /sys/fs/mshare, and the caller gets a window there in their place;
/// without, the caller attaches: a window at the region's address (`addr` and `len` must
/// be the region's). `addr` and `len` are multiples of 512 GiB. O_RDONLY or O_RDWR say how
/// the window may be used, checked against the region's mode for an attach. An access to
/// a part of the region with nothing mapped is SIGBUS.
pub fn sys_mshare(
    mm: &MmStruct,
    cred: &crate::process::cred::Creds,
    name: &str,
    addr: u64,
    len: u64,
    oflag: u32,
    mode: u32,
) -> KResult<()> {
    use crate::fs::file::{O_ACCMODE, O_CREAT, O_EXCL, O_RDONLY, O_RDWR};
    let align = graft_size(GRAFT_512G);
    let end = addr.checked_add(len).ok_or(EINVAL)?;
    if len == 0 || !addr.is_multiple_of(align) || !len.is_multiple_of(align) || end > super::address_space::TASK_SIZE {
        return Err(EINVAL);
    }
    let rw = match oflag & O_ACCMODE {
        O_RDONLY => false,
        O_RDWR => true,
        _ => return Err(EINVAL),
    };
    let root = crate::fs::msharefs::boot_root().ok_or(ENOENT)?;
    if let Some(f) = root.region_file(name) {
        if oflag & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
            return Err(EEXIST);
        }
        return attach(mm, cred, name, f, addr, len, rw);
    }
    if oflag & O_CREAT == 0 {
        return Err(ENOENT);
    }
    let mut inner = mm.mmap_lock.write_killable()?;
    if inner.vmas.overlapping(addr, end).any(|v| !v.is_shared() || v.flags.contains(super::vma::VmFlags::MSHARE)) {
        return Err(EINVAL);
    }
    inner.check_split(addr, end)?;
    let region = Region::new(GRAFT_512G, addr, len, true)?;
    let file = root.insert_region(name, mode, cred.fsuid, cred.fsgid, region.clone(), true)?;
    // The caller's mappings become the host's, as they are (no close and open: a SysV
    // attach stays one attach); their pages refault in the host.
    if inner.splits(addr, end) {
        super::fail::slab_may_fail()?;
    }
    inner.split_at(addr, end);
    let keys: alloc::vec::Vec<u64> = inner.vmas.range(addr..end).map(|(k, _)| *k).collect();
    {
        let mut host = region.host.mmap_lock.write();
        let tlb = super::tlb::MmuGather::for_mm(mm);
        for k in keys {
            let v = inner.vmas.remove(&k).expect("listed above");
            mm.zap_range(&tlb, v.start, v.end);
            host.vmas.insert(v.start, v);
        }
        // Shared file tables (`pt_share`) grafted across two of those mappings go too.
        mm.zap_range(&tlb, addr, end);
        host.note_vm();
    }
    let path = alloc::format!("{}/{}", msharefs::MSHAREFS_MOUNT, name);
    let flags = if rw { O_RDWR } else { O_RDONLY };
    let window_file = crate::fs::file::File::new(crate::fs::file::FileKind::Inode(file), flags, path);
    let mut vflags = super::vma::VmFlags::SHARED | super::vma::VmFlags::MSHARE;
    let mut prot = super::vma::Prot::READ;
    if rw {
        vflags |= super::vma::VmFlags::MAYWRITE;
        prot |= super::vma::Prot::WRITE;
    }
    inner.insert_vma(Vma {
        live: crate::leak::VMAS.live(),
        start: addr,
        end,
        prot,
        flags: vflags,
        pgoff: 0,
        backend: super::vma::Backend::File(window_file),
        ops: Some(Arc::new(Window { region, inner: None })),
    });
    Ok(())
}

/// mshare(2) without O_CREAT: a window onto `file`'s region at its address.
fn attach(
    mm: &MmStruct,
    cred: &crate::process::cred::Creds,
    name: &str,
    file: Arc<crate::fs::msharefs::MshareFile>,
    addr: u64,
    len: u64,
    rw: bool,
) -> KResult<()> {
    use crate::fs::file::{O_RDONLY, O_RDWR};
    use crate::fs::namei::{MAY_READ, MAY_WRITE};
    use crate::fs::vfs::Inode;
    file.permission(cred, MAY_READ | if rw { MAY_WRITE } else { 0 })?;
    if file.region.base != addr || file.region.size() != len {
        return Err(EINVAL);
    }
    let path = alloc::format!("{}/{}", msharefs::MSHAREFS_MOUNT, name);
    let f =
        crate::fs::file::File::new(crate::fs::file::FileKind::Inode(file), if rw { O_RDWR } else { O_RDONLY }, path);
    let req = super::mmap::MmapRequest {
        addr,
        len,
        prot: if rw { 3 } else { 1 },
        flags: super::mmap::MAP_SHARED | super::mmap::MAP_FIXED_NOREPLACE,
        file: Some(f),
        file_writable: rw,
        offset: 0,
    };
    super::mmap::do_mmap(mm, req).map(|_| ())
}

/// `mshare_unlink(name)`: the region loses its name; it lives on while mapped or open.
pub fn sys_mshare_unlink(name: &str) -> KResult<()> {
    use crate::fs::vfs::Inode;
    let root = crate::fs::msharefs::boot_root().ok_or(ENOENT)?;
    if root.region_file(name).is_none() {
        return Err(ENOENT);
    }
    root.unlink(name, false)
}

/// Calls `f` with the host VMA behind `addr` of the window `vma` and the host address,
/// under the host's `mmap_lock` (shared; the caller holds the guest's): what a futex key
/// of a window word is made from. None where the host maps nothing.
pub fn with_host_vma<R>(vma: &Vma, addr: u64, f: impl FnOnce(&Vma, u64) -> R) -> Option<R> {
    let region = window_region(vma)?;
    let haddr = host_addr(region, vma, addr);
    let hinner = region.host.mmap_lock.read();
    let hv = hinner.find_vma(haddr)?;
    Some(f(hv, haddr))
}
