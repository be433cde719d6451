//! System V shared memory (Linux's ipc/shm.c, 6.6): `shmget`, `shmat`, `shmdt`,
//! `shmctl`.
//!
//! A segment is an unlinked shmem file (`tmpfs::new_shmem_file`) and its `shmid_ds`
//! figures, kept in the namespace's table. `shmat` opens a file of its own over the
//! segment (`ShmFile`, Linux's `shm_file_data`) and maps it through the ordinary
//! `do_mmap`; the file's `mmap` hook gives the mapping `ShmVmaOps`, whose open and close
//! count attached VMAs in `shm_nattch` (so fork, a split by munmap or mprotect, mremap
//! and exit keep it right by themselves: Linux counts VMAs, not attaches). A segment
//! removed with IPC_RMID while attached lives on, keyless, until its last VMA goes.
//!
//! Locks: the namespace's table (`IpcNamespace::shm`, a spinlock) is a leaf but for the
//! page cache's (it reads a segment's resident pages). It is never held across an mmap
//! or while a segment's file is dropped: what goes is dropped after it is released.
#![deny(unsafe_code)]

use super::{
    current_creds, current_tgid, now, IpcIds, IpcNamespace, IpcObject, IpcTable, KernIpcPerm, IPC_CREAT, IPC_EXCL,
    IPC_PRIVATE,
};
use crate::errno::*;
use crate::fs::file::{File, FileKind, O_RDONLY, O_RDWR};
use crate::fs::vfs::{Inode, Metadata};
use crate::mm::address_space::{MmInner, MmStruct};
use crate::mm::mmap::{MmapDesc, MmapRequest, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_SHARED};
use crate::mm::mshare::{self, Region};
use crate::mm::vma::{Backend, Vma, VmaOps};
use crate::mm::PAGE_SIZE;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::Ordering;

/// The smallest segment (`SHMMIN`).
pub const SHMMIN: u64 = 1;
/// Default `kernel.shmmax` and `kernel.shmall` (`SHMMAX`, `SHMALL`: ULONG_MAX - 2^24).
pub const SHMMAX: u64 = u64::MAX - (1 << 24);
pub const SHMALL: u64 = u64::MAX - (1 << 24);
/// Default `kernel.shmmni`: segments per namespace.
pub const SHMMNI: u32 = 4096;
/// Attaches per process (`SHMSEG`, reported only: not enforced, as in Linux).
pub const SHMSEG: u64 = SHMMNI as u64;
/// Attach addresses are aligned to this (SHMLBA: a page on x86-64).
pub const SHMLBA: u64 = PAGE_SIZE;

/// shmget flags beside IPC_CREAT/IPC_EXCL and the permission bits.
pub const SHM_HUGETLB: u32 = 0o4000;
pub const SHM_NORESERVE: u32 = 0o10000;
const SHM_HUGE_SHIFT: u32 = 26;
const SHM_HUGE_MASK: u32 = 0x3f;
/// shmat flags.
pub const SHM_RDONLY: u32 = 0o10000;
pub const SHM_RND: u32 = 0o20000;
pub const SHM_REMAP: u32 = 0o40000;
pub const SHM_EXEC: u32 = 0o100000;
/// Attach through the segment's region (Solaris ISM): every attacher using the flag shares
/// the segment's page tables (`mm/mshare.rs`); Linux ignores the bit.
pub const SHM_SHARE_MMU: u32 = msharefs::SHM_SHARE_MMU;
/// Mode bits of a segment beside its permissions.
pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;
/// shmctl commands of SysV shared memory.
pub const SHM_LOCK: i32 = 11;
pub const SHM_UNLOCK: i32 = 12;
pub const SHM_STAT: i32 = 13;
pub const SHM_INFO: i32 = 14;
pub const SHM_STAT_ANY: i32 = 15;

/// Linux's `struct shmid_kernel`: a segment.
pub struct ShmidKernel {
    pub perm: KernIpcPerm,
    /// The size asked for (`shm_segsz`); the file holds it rounded up to pages.
    pub segsz: u64,
    pub atim: i64,
    pub dtim: i64,
    pub ctim: i64,
    /// Creator's and last shmat/shmdt caller's process ids.
    pub cprid: u32,
    pub lprid: u32,
    /// Attached VMAs.
    pub nattch: u64,
    /// The shmem object holding the pages.
    pub file: Arc<dyn Inode>,
    /// SHM_LOCK: the real uid whose locked-memory count it is charged to.
    pub mlock_uid: Option<u32>,
    /// The task that created it while that task lives (Linux's `shm_creator`); None
    /// once it has exited (or left the namespace by unshare): an orphan.
    creator: Option<alloc::sync::Weak<crate::process::task::Task>>,
    /// The region SHM_SHARE_MMU attaches go through, made by the first of them: its host
    /// maps the segment's pages once, for every such attacher.
    mmu: Option<Arc<Region>>,
    _live: crate::leak::Live,
}

impl IpcObject for ShmidKernel {
    fn perm(&self) -> &KernIpcPerm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut KernIpcPerm {
        &mut self.perm
    }
}

impl ShmidKernel {
    fn pages(&self) -> u64 {
        self.segsz.div_ceil(PAGE_SIZE)
    }

    /// Pages of the segment in memory (`shm_get_stat`'s rss).
    fn rss(&self) -> u64 {
        self.file.page_cache().map_or(0, |c| c.nr_pages())
    }

    /// Linux's `shm_may_destroy`: unattached, and removed (or the namespace forces it).
    fn may_destroy(&self, ns: &IpcNamespace) -> bool {
        self.nattch == 0 && (ns.shm_rmid_forced.load(Ordering::Relaxed) || self.perm.mode & SHM_DEST != 0)
    }
}

/// A namespace's segments and the pages they hold between them (`shm_tot`).
#[derive(Default)]
pub struct ShmIds {
    pub ids: IpcIds<ShmidKernel>,
    pub tot: u64,
}

impl super::IpcTable for ShmIds {
    type Object = ShmidKernel;
    fn ids(&self) -> &IpcIds<ShmidKernel> {
        &self.ids
    }
    /// Linux's `shm_destroy`: takes the segment out; the caller drops it (and its pages)
    /// once the table's lock is released.
    fn destroy(&mut self, idx: u32) -> Option<ShmidKernel> {
        let shp = self.ids.remove(idx)?;
        self.tot -= shp.pages();
        if let Some(uid) = shp.mlock_uid {
            user_shm_unlock(uid, shp.segsz);
        }
        Some(shp)
    }
}

/// `shmget(2)` (Linux's `ksys_shmget` and `ipcget`): the segment of `key`, made if
/// IPC_PRIVATE or IPC_CREAT asks and none exists.
pub fn ksys_shmget(ns: &Arc<IpcNamespace>, key: i32, size: u64, shmflg: u32) -> KResult<i32> {
    let creds = current_creds();
    if key != IPC_PRIVATE {
        let ids = ns.shm.lock();
        if let Some(idx) = ids.ids.find_key(key) {
            if shmflg & IPC_CREAT != 0 && shmflg & IPC_EXCL != 0 {
                return Err(EEXIST);
            }
            let shp = ids.ids.get(idx).expect("a key names a segment");
            // `shm_more_checks`, then `ipc_check_perms`.
            if shp.segsz < size {
                return Err(EINVAL);
            }
            if !shp.perm.permits(&creds, shmflg) {
                return Err(EACCES);
            }
            return Ok(shp.perm.id);
        }
        if shmflg & IPC_CREAT == 0 {
            return Err(ENOENT);
        }
    }
    newseg(ns, key, size, shmflg, &creds)
}

/// Linux's `newseg`: a new segment of `size` bytes.
fn newseg(
    ns: &Arc<IpcNamespace>,
    key: i32,
    size: u64,
    shmflg: u32,
    creds: &crate::process::cred::Creds,
) -> KResult<i32> {
    if size < SHMMIN || size > ns.shm_ctlmax.load(Ordering::Relaxed) {
        return Err(EINVAL);
    }
    let numpages = size.div_ceil(PAGE_SIZE);
    {
        let ids = ns.shm.lock();
        if ids.tot.checked_add(numpages).is_none_or(|t| t > ns.shm_ctlall.load(Ordering::Relaxed)) {
            return Err(ENOSPC);
        }
    }
    let file = if shmflg & SHM_HUGETLB != 0 {
        hugetlb_segment(size, shmflg, creds)?
    } else {
        // `shmem_kernel_file_setup` charges the whole object now (`shmem_acct_size`)
        // unless SHM_NORESERVE, which overcommit mode 2 ignores.
        let noreserve = shmflg & SHM_NORESERVE != 0
            && crate::mm::commit::OVERCOMMIT_MEMORY.load(Ordering::Relaxed) != crate::mm::commit::OVERCOMMIT_NEVER;
        let charge = if noreserve {
            None
        } else {
            let mm = crate::process::current_mm();
            let inner = mm.mmap_lock.read();
            Some(crate::mm::commit::ShmemCharge::new(&inner, numpages)?)
        };
        crate::fs::tmpfs::new_shmem_file(size, charge)
    };
    let me = crate::process::current();
    let shp = ShmidKernel {
        perm: KernIpcPerm::new(key, shmflg & 0o777, creds),
        segsz: size,
        atim: 0,
        dtim: 0,
        ctim: now(),
        cprid: current_tgid(),
        lprid: 0,
        nattch: 0,
        file,
        mlock_uid: None,
        creator: Some(Arc::downgrade(&me)),
        mmu: None,
        _live: crate::leak::IPC_OBJECTS.live(),
    };
    let mut ids = ns.shm.lock();
    // Checked again: another caller may have made a segment meanwhile.
    if ids.tot.checked_add(numpages).is_none_or(|t| t > ns.shm_ctlall.load(Ordering::Relaxed)) {
        drop(ids);
        return Err(ENOSPC);
    }
    if key != IPC_PRIVATE && ids.ids.find_key(key).is_some() {
        // Lost a race for the key with another IPC_CREAT: Linux's `ipcget_public` holds
        // the table's lock across, so exactly one of them makes it.
        drop(ids);
        if shmflg & IPC_EXCL != 0 {
            return Err(EEXIST);
        }
        return ksys_shmget(ns, key, size, shmflg & !IPC_CREAT);
    }
    let r = ids.ids.add(shp, ns.shm_ctlmni.load(Ordering::Relaxed) as usize);
    if r.is_ok() {
        ids.tot += numpages;
    }
    drop(ids);
    if let Ok(id) = r {
        me.shm_clist.lock().push((Arc::downgrade(ns), id));
    }
    r
}

/// Linux's `exit_shm`, as task `t` exits (or unshares its IPC namespace): each segment it
/// created becomes an orphan, destroyed now where its namespace has `shm_rmid_forced` and
/// nothing is attached.
pub fn exit_shm(t: &Arc<crate::process::task::Task>) {
    let created = core::mem::take(&mut *t.shm_clist.lock());
    let me = Arc::downgrade(t);
    for (ns, id) in created {
        let Some(ns) = ns.upgrade() else { continue };
        let gone = {
            let mut ids = ns.shm.lock();
            let Some(idx) = ids.ids.index_of(id).ok() else { continue };
            let shp = ids.ids.get_mut(idx).expect("index from index_of");
            // The id may name a later segment of another creator by now.
            if !shp.creator.as_ref().is_some_and(|c| c.ptr_eq(&me)) {
                continue;
            }
            shp.creator = None;
            if ns.shm_rmid_forced.load(Ordering::Relaxed) && shp.may_destroy(&ns) {
                ids.destroy(idx)
            } else {
                None
            }
        };
        drop(gone);
    }
}

/// Linux's `shm_destroy_orphaned`, as `kernel.shm_rmid_forced` is set: every unattached
/// segment of `ns` whose creator is gone is destroyed.
pub fn shm_destroy_orphaned(ns: &IpcNamespace) {
    let gone = ns.shm.lock().destroy_where(|shp| shp.creator.is_none() && shp.may_destroy(ns));
    drop(gone);
}

/// SHM_HUGETLB (`hugetlb_file_setup`): a hugetlbfs file of the size rounded up to huge
/// pages. The caller must be allowed huge pages (`can_do_hugetlb_shm`: CAP_IPC_LOCK or
/// the group `vm.hugetlb_shm_group`, 0; else the obsolete RLIMIT_MEMLOCK fallback), then
/// its pages are reserved from the pool, which is empty (vm.nr_hugepages 0): ENOMEM. With
/// SHM_NORESERVE nothing is reserved: the segment is made, and each fault of an attach
/// is SIGBUS.
fn hugetlb_segment(size: u64, shmflg: u32, creds: &crate::process::cred::Creds) -> KResult<Arc<dyn Inode>> {
    let log = (shmflg >> SHM_HUGE_SHIFT) & SHM_HUGE_MASK;
    if log != 0 && log != 21 {
        return Err(EINVAL);
    }
    let hugesize = size.div_ceil(crate::mm::mmap::HPAGE_SIZE) * crate::mm::mmap::HPAGE_SIZE;
    if !(creds.capable(super::CAP_IPC_LOCK) || creds.in_group_p(0)) {
        if !user_shm_lock(creds.uid, hugesize, creds) {
            return Err(EPERM);
        }
        user_shm_unlock(creds.uid, hugesize);
    }
    if shmflg & SHM_NORESERVE == 0 {
        return Err(ENOMEM);
    }
    let file = crate::fs::hugetlbfs::HugetlbFile::new(log, 0o600, creds.fsuid, creds.fsgid, Some(hugesize))?;
    Ok(file)
}

/// Pages locked with SHM_LOCK per real uid (Linux's ucounts UCOUNT_RLIMIT_MEMLOCK).
static SHM_LOCKED_PAGES: crate::sync::SpinLock<
    alloc::collections::BTreeMap<u32, u64>,
    crate::sync::order::ShmLockUser,
> = crate::sync::SpinLock::new(alloc::collections::BTreeMap::new());

/// Linux's `user_shm_lock`: charges `size` bytes to `uid`'s locked memory, refused
/// (false) past RLIMIT_MEMLOCK unless CAP_IPC_LOCK.
fn user_shm_lock(uid: u32, size: u64, creds: &crate::process::cred::Creds) -> bool {
    let pages = size.div_ceil(PAGE_SIZE);
    let limit = crate::process::current().process.rlimit(crate::process::task::RLIMIT_MEMLOCK).cur;
    let limit_pages = if limit == crate::process::task::RLIM_INFINITY { None } else { Some(limit / PAGE_SIZE) };
    let mut locked = SHM_LOCKED_PAGES.lock();
    let mine = locked.entry(uid).or_insert(0);
    let after = *mine + pages;
    if limit_pages.is_some_and(|l| after > l) && !creds.capable(super::CAP_IPC_LOCK) {
        if *mine == 0 {
            locked.remove(&uid);
            if locked.is_empty() {
                *locked = alloc::collections::BTreeMap::new();
            }
        }
        return false;
    }
    *mine = after;
    true
}

/// Linux's `user_shm_unlock`.
fn user_shm_unlock(uid: u32, size: u64) {
    let pages = size.div_ceil(PAGE_SIZE);
    let mut locked = SHM_LOCKED_PAGES.lock();
    if let Some(n) = locked.get_mut(&uid) {
        *n = n.saturating_sub(pages);
        if *n == 0 {
            locked.remove(&uid);
        }
    }
    if locked.is_empty() {
        // An emptied BTreeMap keeps its root node.
        *locked = alloc::collections::BTreeMap::new();
    }
}

/// The open file behind one attach (Linux's `shm_file_data`): the segment's pages under
/// the segment's id, and the `mmap` hook that gives its VMAs `ShmVmaOps`.
struct ShmFile {
    ns: Arc<IpcNamespace>,
    id: i32,
    shmem: Arc<dyn Inode>,
}

impl Inode for ShmFile {
    fn metadata(&self) -> Metadata {
        self.shmem.metadata()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn page_cache(&self) -> Option<&crate::mm::page_cache::PageCache> {
        self.shmem.page_cache()
    }
    /// Linux's `shm_mmap`: the segment must still be the one attached (EINVAL if its id
    /// now names another, or none); the VMA's open (`__shm_open`) counts it.
    fn mmap(&self, inner: &MmInner, desc: &mut MmapDesc) -> KResult<()> {
        self.check_attached()?;
        // The segment's own file says how it maps (`shm_file_data->file->f_op->mmap`).
        self.shmem.mmap(inner, desc)?;
        desc.ops = Some(Arc::new(ShmVmaOps { ns: self.ns.clone(), id: self.id, shmem: self.shmem.clone() }));
        Ok(())
    }
    fn is_hugetlb(&self) -> bool {
        self.shmem.is_hugetlb()
    }
}

impl ShmFile {
    /// `shm_mmap`'s check: EINVAL unless the id still names this attach's segment.
    fn check_attached(&self) -> KResult<()> {
        let ids = self.ns.shm.lock();
        let idx = ids.ids.index_of(self.id)?;
        let shp = ids.ids.get(idx).expect("index from index_of");
        if !Arc::ptr_eq(&shp.file, &self.shmem) {
            return Err(EINVAL);
        }
        Ok(())
    }
}

/// The open file behind an SHM_SHARE_MMU attach: a window onto the segment's region,
/// counted in `shm_nattch` as any attach.
struct ShmMmuFile {
    shm: ShmFile,
    region: Arc<Region>,
}

impl Inode for ShmMmuFile {
    fn metadata(&self) -> Metadata {
        self.shm.metadata()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn has_mmap(&self) -> bool {
        true
    }
    fn mmap_align(&self) -> u64 {
        self.region.align()
    }
    /// The whole region (the segment rounded up to the graft size) becomes a window whose
    /// ops count the attach.
    fn mmap(&self, _inner: &MmInner, desc: &mut MmapDesc) -> KResult<()> {
        use crate::mm::vma::VmFlags;
        self.shm.check_attached()?;
        if desc.len != self.region.size() || desc.pgoff != 0 {
            return Err(EINVAL);
        }
        desc.flags |= VmFlags::MSHARE;
        desc.flags -= VmFlags::LOCKED | VmFlags::LOCKONFAULT;
        let attach = ShmVmaOps { ns: self.shm.ns.clone(), id: self.shm.id, shmem: self.shm.shmem.clone() };
        desc.ops = Some(Arc::new(mshare::Window { region: self.region.clone(), inner: Some(Arc::new(attach)) }));
        Ok(())
    }
}

/// The segment's region for SHM_SHARE_MMU attaches, made (with the segment's pages mapped
/// in its host) by the first of them. Graft size 1 GiB: an attacher pays at most one table
/// of its own, and the attach takes the segment's size rounded up to whole GiB.
fn mmu_region(ns: &Arc<IpcNamespace>, shmid: i32, shmem: &Arc<dyn Inode>, key: i32) -> KResult<Arc<Region>> {
    let existing = |ns: &Arc<IpcNamespace>| -> KResult<Option<Arc<Region>>> {
        let ids = ns.shm.lock();
        let idx = ids.ids.index_of(shmid)?;
        Ok(ids.ids.get(idx).and_then(|s| s.mmu.clone()))
    };
    if let Some(r) = existing(ns)? {
        return Ok(r);
    }
    if shmem.is_hugetlb() {
        return Err(EINVAL);
    }
    let level = mshare::GRAFT_1G;
    let align = mshare::graft_size(level);
    let size = shmem.metadata().size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let region = Region::new(level, align, size.div_ceil(align) * align, false)?;
    let file = File::new(FileKind::Inode(shmem.clone()), O_RDWR, format!("/SYSV{:08x}", key as u32));
    let req = MmapRequest {
        addr: align,
        len: size,
        prot: 3,
        flags: MAP_SHARED | MAP_FIXED,
        file: Some(file),
        file_writable: true,
        offset: 0,
    };
    crate::mm::mmap::do_mmap(&region.host, req)?;
    let (ours, loser) = {
        let mut ids = ns.shm.lock();
        let idx = ids.ids.index_of(shmid)?;
        let shp = ids.ids.get_mut(idx).expect("index from index_of");
        match &shp.mmu {
            Some(r) => (r.clone(), Some(region)),
            None => {
                shp.mmu = Some(region.clone());
                (region, None)
            }
        }
    };
    // Another attach made one meanwhile: ours goes, outside the table's lock.
    drop(loser);
    Ok(ours)
}

/// The VMA operations of an attach (Linux's `shm_vm_ops`): every VMA of it counts in
/// `shm_nattch`.
struct ShmVmaOps {
    ns: Arc<IpcNamespace>,
    id: i32,
    shmem: Arc<dyn Inode>,
}

impl ShmVmaOps {
    /// The segment's index, if it is still this attach's.
    fn index(&self, ids: &ShmIds) -> Option<u32> {
        let idx = ids.ids.index_of(self.id).ok()?;
        Arc::ptr_eq(&ids.ids.get(idx)?.file, &self.shmem).then_some(idx)
    }
}

impl VmaOps for ShmVmaOps {
    /// `shm_open` (`__shm_open`): one more attached VMA; the attach time and process.
    fn open(&self, _vma: &Vma) {
        let mut ids = self.ns.shm.lock();
        if let Some(shp) = self.index(&ids).and_then(|i| ids.ids.get_mut(i)) {
            shp.atim = now();
            shp.lprid = current_tgid();
            shp.nattch += 1;
        }
    }

    /// `shm_close`: one fewer; the last one of a removed segment destroys it.
    fn close(&self, _vma: &Vma) {
        let gone = {
            let mut ids = self.ns.shm.lock();
            let Some(idx) = self.index(&ids) else { return };
            let shp = ids.ids.get_mut(idx).expect("index from index()");
            shp.lprid = current_tgid();
            shp.dtim = now();
            shp.nattch = shp.nattch.saturating_sub(1);
            if shp.may_destroy(&self.ns) {
                ids.destroy(idx)
            } else {
                None
            }
        };
        drop(gone);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// `shm_vm_ops` has no `map_pages`: every page of an attach is its own fault.
    fn map_pages(&self) -> bool {
        false
    }
}

/// `shmat(2)` (Linux's `do_shmat`): maps segment `shmid` at `shmaddr` (0: where there is
/// room), read-only with SHM_RDONLY; returns the address.
pub fn do_shmat(ns: &Arc<IpcNamespace>, mm: &MmStruct, shmid: i32, shmaddr: u64, shmflg: u32) -> KResult<u64> {
    if shmid < 0 {
        return Err(EINVAL);
    }
    let mut addr = shmaddr;
    let mut flags = MAP_SHARED;
    if addr != 0 {
        if addr & (SHMLBA - 1) != 0 {
            if shmflg & SHM_RND == 0 {
                return Err(EINVAL);
            }
            addr &= !(SHMLBA - 1);
            // A rounded-down address of 0 cannot be remapped.
            if addr == 0 && shmflg & SHM_REMAP != 0 {
                return Err(EINVAL);
            }
        }
        // Without SHM_REMAP an attach over existing mappings is EINVAL
        // (`find_vma_intersection`), checked under the same lock as the mapping.
        flags |= if shmflg & SHM_REMAP != 0 { MAP_FIXED } else { MAP_FIXED_NOREPLACE };
    } else if shmflg & SHM_REMAP != 0 {
        return Err(EINVAL);
    }
    let (mut prot, mut acc_mode, o_flags) = if shmflg & SHM_RDONLY != 0 {
        (crate::mm::vma::Prot::READ.bits(), 0o444, O_RDONLY)
    } else {
        ((crate::mm::vma::Prot::READ | crate::mm::vma::Prot::WRITE).bits(), 0o666, O_RDWR)
    };
    if shmflg & SHM_EXEC != 0 {
        prot |= crate::mm::vma::Prot::EXEC.bits();
        acc_mode |= 0o111;
    }
    let creds = current_creds();
    // The segment is held attached across the mapping (nattch + 1), so an IPC_RMID
    // meanwhile cannot destroy it.
    let (shmem, size, key) = {
        let mut ids = ns.shm.lock();
        let idx = ids.ids.index_of(shmid)?;
        let shp = ids.ids.get_mut(idx).expect("index from index_of");
        if !shp.perm.permits(&creds, acc_mode) {
            return Err(EACCES);
        }
        shp.nattch += 1;
        (shp.file.clone(), shp.file.metadata().size, shp.perm.key)
    };
    let r = (|| {
        if addr != 0 && shmflg & SHM_REMAP == 0 && addr.checked_add(size).is_none() {
            return Err(EINVAL);
        }
        let shm = ShmFile { ns: ns.clone(), id: shmid, shmem: shmem.clone() };
        let (inode, len): (Arc<dyn Inode>, u64) = if shmflg & SHM_SHARE_MMU != 0 {
            let region = mmu_region(ns, shmid, &shmem, key)?;
            let len = region.size();
            (Arc::new(ShmMmuFile { shm, region }), len)
        } else {
            (Arc::new(shm), size)
        };
        let file = File::new(FileKind::Inode(inode), o_flags, format!("/SYSV{:08x}", key as u32));
        let req = MmapRequest { addr, len, prot, flags, file: Some(file), file_writable: o_flags == O_RDWR, offset: 0 };
        crate::mm::mmap::do_mmap(mm, req).map_err(|e| if e == EEXIST { EINVAL } else { e })
    })();
    let gone = {
        let mut ids = ns.shm.lock();
        let idx =
            ids.ids.index_of(shmid).ok().filter(|&i| ids.ids.get(i).is_some_and(|s| Arc::ptr_eq(&s.file, &shmem)));
        match idx {
            Some(idx) => {
                let shp = ids.ids.get_mut(idx).expect("index from index_of");
                shp.nattch -= 1;
                if shp.may_destroy(ns) {
                    ids.destroy(idx)
                } else {
                    None
                }
            }
            None => None,
        }
    };
    drop(gone);
    r
}

/// Whether `v` is a VMA of a SysV attach starting (before any move) at `addr`: the test
/// `ksys_shmdt` applies to each VMA.
fn is_attach_fragment(v: &Vma, addr: u64) -> bool {
    v.ops.as_ref().is_some_and(|o| is_attach_ops(o.as_ref())) && v.start.wrapping_sub(addr) / PAGE_SIZE == v.pgoff
}

/// The ops of an attach: `ShmVmaOps`, or an SHM_SHARE_MMU window over them.
fn is_attach_ops(o: &dyn VmaOps) -> bool {
    let any = o.as_any();
    any.is::<ShmVmaOps>()
        || any
            .downcast_ref::<mshare::Window>()
            .and_then(|w| w.inner.as_ref())
            .is_some_and(|i| i.as_any().is::<ShmVmaOps>())
}

/// `shmdt(2)` (Linux's `ksys_shmdt`): unmaps the attach that started at `addr`: the first
/// SysV VMA found from `addr` up whose offset matches its distance from `addr`, then
/// every VMA of the same attach (same file) with that property that ends within the
/// segment's size of `addr`: the fragments munmap or mprotect left. A fragment mremap
/// moved elsewhere stays. EINVAL if nothing was detached.
pub fn ksys_shmdt(mm: &MmStruct, addr: u64) -> KResult<()> {
    if addr & (PAGE_SIZE - 1) != 0 {
        return Err(EINVAL);
    }
    let mut inner = mm.mmap_lock.write_killable()?;
    let first = inner.vmas.range(addr..).map(|(_, v)| v).find(|v| is_attach_fragment(v, addr)).map(|v| {
        let Backend::File(f) = &v.backend else { unreachable!("a SysV attach maps a file") };
        (v.start, v.end, f.clone(), f.metadata().size)
    });
    let Some((start, end, file, size)) = first else { return Err(EINVAL) };
    let tlb = crate::mm::tlb::MmuGather::for_mm(&mm);
    inner.unmap_region(&tlb, mm, start, end);
    let limit = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let rest: Vec<(u64, u64)> = inner
        .vmas
        .range(end..)
        .map(|(_, v)| v)
        .take_while(|v| v.end - addr <= limit)
        .filter(|v| is_attach_fragment(v, addr) && matches!(&v.backend, Backend::File(f) if Arc::ptr_eq(f, &file)))
        .map(|v| (v.start, v.end))
        .collect();
    for (s, e) in rest {
        inner.unmap_region(&tlb, mm, s, e);
    }
    Ok(())
}

/// Linux's `struct shmid64_ds` (asm-generic/shmbuf.h, 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Shmid64Ds {
    pub shm_perm: super::Ipc64Perm,
    pub shm_segsz: u64,
    pub shm_atime: i64,
    pub shm_dtime: i64,
    pub shm_ctime: i64,
    pub shm_cpid: i32,
    pub shm_lpid: i32,
    pub shm_nattch: u64,
    pub unused4: u64,
    pub unused5: u64,
}

/// Linux's `struct shminfo64` (IPC_INFO).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Shminfo64 {
    pub shmmax: u64,
    pub shmmin: u64,
    pub shmmni: u64,
    pub shmseg: u64,
    pub shmall: u64,
    pub unused: [u64; 4],
}

/// Linux's `struct shm_info` (SHM_INFO).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ShmInfo {
    pub used_ids: i32,
    pub pad: i32,
    pub shm_tot: u64,
    pub shm_rss: u64,
    pub shm_swp: u64,
    pub swap_attempts: u64,
    pub swap_successes: u64,
}

// SAFETY: plain C structures of integers with no padding left implicit.
#[allow(unsafe_code)]
unsafe impl crate::mm::usercopy::Pod for Shmid64Ds {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl crate::mm::usercopy::Pod for Shminfo64 {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl crate::mm::usercopy::Pod for ShmInfo {}

fn stat_of(shp: &ShmidKernel) -> Shmid64Ds {
    let p = &shp.perm;
    Shmid64Ds {
        shm_perm: super::Ipc64Perm::from(p),
        shm_segsz: shp.segsz,
        shm_atime: shp.atim,
        shm_dtime: shp.dtim,
        shm_ctime: shp.ctim,
        shm_cpid: shp.cprid as i32,
        shm_lpid: shp.lprid as i32,
        shm_nattch: shp.nattch,
        ..Default::default()
    }
}

/// What `shmctl` gives back to the caller's buffer.
pub enum ShmctlOut {
    None,
    Stat(Shmid64Ds),
    Info(Shminfo64),
    ShmInfo(ShmInfo),
}

/// `shmctl(2)` (Linux's `ksys_shmctl`) for every command; IPC_SET's structure comes in
/// `set` (read by the caller first, EFAULT before any lookup, as Linux). Returns the
/// call's value and what to copy out.
pub fn ksys_shmctl(ns: &Arc<IpcNamespace>, shmid: i32, cmd: i32, set: Option<Shmid64Ds>) -> KResult<(i32, ShmctlOut)> {
    if cmd < 0 || shmid < 0 {
        return Err(EINVAL);
    }
    let creds = current_creds();
    match cmd {
        super::IPC_INFO => {
            let ids = ns.shm.lock();
            let info = Shminfo64 {
                shmmax: ns.shm_ctlmax.load(Ordering::Relaxed),
                shmmin: SHMMIN,
                shmmni: ns.shm_ctlmni.load(Ordering::Relaxed),
                shmseg: SHMSEG,
                shmall: ns.shm_ctlall.load(Ordering::Relaxed),
                unused: [0; 4],
            };
            Ok((ids.ids.max_idx().max(0) as i32, ShmctlOut::Info(info)))
        }
        SHM_INFO => {
            let ids = ns.shm.lock();
            let info = ShmInfo {
                used_ids: ids.ids.in_use() as i32,
                shm_tot: ids.tot,
                shm_rss: ids.ids.iter().map(|(_, s)| s.rss()).sum(),
                ..Default::default()
            };
            Ok((ids.ids.max_idx().max(0) as i32, ShmctlOut::ShmInfo(info)))
        }
        SHM_STAT | SHM_STAT_ANY | super::IPC_STAT => {
            let ids = ns.shm.lock();
            let (shp, ret) = if cmd == super::IPC_STAT {
                (ids.ids.get(ids.ids.index_of(shmid)?).expect("index from index_of"), 0)
            } else {
                // SHM_STAT takes an index, and returns the id.
                let shp = u32::try_from(shmid).ok().and_then(|i| ids.ids.get(i)).ok_or(EINVAL)?;
                (shp, shp.perm.id)
            };
            if cmd != SHM_STAT_ANY && !shp.perm.permits(&creds, 0o444) {
                return Err(EACCES);
            }
            Ok((ret, ShmctlOut::Stat(stat_of(shp))))
        }
        super::IPC_SET | super::IPC_RMID => {
            let gone = {
                let mut ids = ns.shm.lock();
                let idx = ids.ids.index_of(shmid)?;
                let shp = ids.ids.get_mut(idx).expect("index from index_of");
                shp.perm.may_change(&creds)?;
                if cmd == super::IPC_SET {
                    let s = set.expect("IPC_SET passes its structure");
                    shp.perm.uid = s.shm_perm.uid;
                    shp.perm.gid = s.shm_perm.gid;
                    shp.perm.mode = (shp.perm.mode & !0o777) | (s.shm_perm.mode & 0o777);
                    shp.ctim = now();
                    None
                } else if shp.nattch > 0 {
                    // `do_shm_rmid`: attached, it lives on keyless until the last detach.
                    shp.perm.mode |= SHM_DEST;
                    ids.ids.set_key_private(idx);
                    None
                } else {
                    ids.destroy(idx)
                }
            };
            drop(gone);
            Ok((0, ShmctlOut::None))
        }
        SHM_LOCK | SHM_UNLOCK => {
            let mut ids = ns.shm.lock();
            let idx = ids.ids.index_of(shmid)?;
            let shp = ids.ids.get_mut(idx).expect("index from index_of");
            if !creds.capable(super::CAP_IPC_LOCK) {
                if creds.euid != shp.perm.uid && creds.euid != shp.perm.cuid {
                    return Err(EPERM);
                }
                let memlock = crate::process::current().process.rlimit(crate::process::task::RLIMIT_MEMLOCK).cur;
                if cmd == SHM_LOCK && memlock == 0 {
                    return Err(EPERM);
                }
            }
            if cmd == SHM_LOCK {
                // A hugetlb segment's pages are never reclaimed anyway: nothing to lock.
                if shp.mlock_uid.is_none() && !shp.file.is_hugetlb() {
                    if !user_shm_lock(creds.uid, shp.segsz, &creds) {
                        return Err(ENOMEM);
                    }
                    shp.mlock_uid = Some(creds.uid);
                    shp.perm.mode |= SHM_LOCKED;
                }
            } else if let Some(uid) = shp.mlock_uid.take() {
                user_shm_unlock(uid, shp.segsz);
                shp.perm.mode &= !SHM_LOCKED;
            }
            Ok((0, ShmctlOut::None))
        }
        _ => Err(EINVAL),
    }
}

/// /proc/sysvipc/shm (Linux's `sysvipc_shm_proc_show`): one line per segment.
pub fn proc_text(ns: &IpcNamespace) -> alloc::string::String {
    use core::fmt::Write;
    let mut s = alloc::string::String::from(
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
    );
    let ids = ns.shm.lock();
    for (_, shp) in ids.ids.iter() {
        let p = &shp.perm;
        let _ = writeln!(
            s,
            "{:10} {:10}  {:4o} {:21} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:21} {:21}",
            p.key,
            p.id,
            p.mode,
            shp.segsz,
            shp.cprid,
            shp.lprid,
            shp.nattch,
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            shp.atim,
            shp.dtim,
            shp.ctim,
            shp.rss() * PAGE_SIZE,
            0
        );
    }
    s
}
