//! `mmap` (Linux's `do_mmap`, mm/mmap.c, 6.6) and the VMA-tree helpers the
//! other operations share: splitting at range boundaries, merging neighbours,
//! finding a free range top-down.
#![deny(unsafe_code)]

use super::address_space::{MmInner, MmStruct, MMAP_BASE, TASK_SIZE};
use super::commit::{max_map_count, mmap_min_addr};
use super::vma::{Backend, Prot, VmFlags, Vma};
use super::{align_up, PAGE_SIZE};
use crate::errno::*;
use crate::fs::file::File;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub const MAP_SHARED: u32 = 0x01;
pub const MAP_PRIVATE: u32 = 0x02;
pub const MAP_SHARED_VALIDATE: u32 = 0x03;
pub const MAP_TYPE: u32 = 0x0f;
pub const MAP_FIXED: u32 = 0x10;
pub const MAP_ANONYMOUS: u32 = 0x20;
pub const MAP_GROWSDOWN: u32 = 0x0100;
pub const MAP_DENYWRITE: u32 = 0x0800;
pub const MAP_EXECUTABLE: u32 = 0x1000;
pub const MAP_LOCKED: u32 = 0x2000;
pub const MAP_NORESERVE: u32 = 0x4000;
pub const MAP_POPULATE: u32 = 0x8000;
pub const MAP_NONBLOCK: u32 = 0x10000;
pub const MAP_STACK: u32 = 0x20000;
pub const MAP_HUGETLB: u32 = 0x40000;
pub const MAP_SYNC: u32 = 0x80000;
pub const MAP_FIXED_NOREPLACE: u32 = 0x100000;
/// MAP_HUGETLB's page size, as log2 in bits 26..32 (0: the default huge page size).
const MAP_HUGE_SHIFT: u32 = 26;
const MAP_HUGE_MASK: u32 = 0x3f;
/// The one huge page size (HPAGE_SIZE, a PMD's reach).
pub const HPAGE_SIZE: u64 = 2 << 20;

/// Flags MAP_SHARED_VALIDATE accepts (LEGACY_MAP_MASK plus MAP_SYNC for DAX files only).
const LEGACY_MAP_MASK: u32 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_FIXED_NOREPLACE;

impl MmInner {
    /// ENOMEM if making VMA boundaries at `start` and `end` would take the address
    /// space past `MAX_MAP_COUNT` (`split_vma`'s check), checked before any change.
    /// A hugetlb VMA splits only at a huge page boundary (`hugetlb_vm_op_split`): EINVAL.
    pub fn check_split(&self, start: u64, end: u64) -> KResult<()> {
        for addr in [start, end] {
            // An mshare window is one VMA for good (its `may_split` refuses).
            if self.straddling(addr).is_some_and(|v| v.flags.contains(VmFlags::MSHARE)) {
                return Err(EINVAL);
            }
            if !addr.is_multiple_of(HPAGE_SIZE)
                && self.straddling(addr).is_some_and(|v| v.flags.contains(VmFlags::HUGETLB))
            {
                return Err(EINVAL);
            }
        }
        let splits = [start, end].into_iter().filter(|&a| self.straddled(a)).count();
        // Only a split is refused: mmap may leave the count one past the limit, and a
        // whole VMA must still unmap then.
        if splits > 0 && self.vmas.len() + splits > max_map_count() {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// Whether an mshare window intersects [start, end): the operations a window refuses
    /// (mprotect, mremap, madvise, mlock) are EINVAL on a range holding one.
    pub fn any_mshare(&self, start: u64, end: u64) -> bool {
        let first = self.vmas.range(..start).next_back().map_or(start, |(k, _)| *k);
        self.vmas.range(first..end).any(|(_, v)| v.end > start && v.flags.contains(VmFlags::MSHARE))
    }

    /// Whether `split_at(start, end)` cuts a VMA, and so needs a new one.
    pub fn splits(&self, start: u64, end: u64) -> bool {
        [start, end].into_iter().any(|addr| self.straddled(addr))
    }

    fn straddled(&self, addr: u64) -> bool {
        self.straddling(addr).is_some()
    }

    /// The VMA that `addr` falls strictly inside of (not at its start).
    fn straddling(&self, addr: u64) -> Option<&Vma> {
        self.vmas.range(..addr).next_back().map(|(_, v)| v).filter(|v| v.end > addr)
    }

    /// Makes VMA boundaries fall at `start` and `end` (splitting VMAs that straddle them).
    pub fn split_at(&mut self, start: u64, end: u64) {
        for addr in [start, end] {
            let straddling =
                self.vmas.range(..addr).next_back().map(|(_, v)| v).filter(|v| v.end > addr).map(|v| v.start);
            if let Some(s) = straddling {
                let high = self.vmas.get_mut(&s).unwrap().split_off(addr);
                high.open();
                self.vmas.insert(high.start, high);
            }
        }
    }

    /// Removes the VMAs inside [start, end) (boundaries must already be split) and returns them.
    /// (Their `close` hooks run and their commit charge goes: they leave the address space.)
    pub fn take_vmas(&mut self, start: u64, end: u64) -> Vec<Vma> {
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(k, _)| *k).collect();
        let taken: Vec<Vma> = keys.into_iter().filter_map(|k| self.vmas.remove(&k)).collect();
        for v in &taken {
            v.close();
            super::commit::vm_acct_memory(-(v.flags.committed(v.pages()) as i64));
        }
        taken
    }

    /// Merges VMAs around [start, end) with their neighbours where compatible (`vma_merge`).
    pub fn merge_around(&mut self, start: u64, end: u64) {
        let first = self.vmas.range(..start).next_back().map(|(k, _)| *k).unwrap_or(start);
        let keys: Vec<u64> = self.vmas.range(first..=end).map(|(k, _)| *k).collect();
        let mut i = 0;
        let mut keys = keys;
        while i + 1 < keys.len() {
            let (a, b) = (keys[i], keys[i + 1]);
            let mergeable = {
                let (va, vb) = (&self.vmas[&a], &self.vmas[&b]);
                va.can_merge(vb)
            };
            if mergeable {
                let vb = self.vmas.remove(&b).unwrap();
                let mut va = self.vmas.get_mut(&a).unwrap();
                va.end = vb.end;
                va.flags |= vb.flags & VmFlags::ANON_VMA;
                keys.remove(i + 1);
            } else {
                i += 1;
            }
        }
    }

    /// The highest free range of `len` bytes below `below` (top-down, like
    /// `arch_get_unmapped_area_topdown`): the gap under `below` itself, then the highest gap
    /// between two VMAs that fits (found through the gap index, not by walking), then the
    /// space under the lowest VMA down to `vm.mmap_min_addr`.
    pub fn find_free_area(&self, len: u64, below: u64) -> Option<u64> {
        let low = mmap_min_addr().max(PAGE_SIZE);
        let Some((_, top)) = self.vmas.range(..below).next_back() else {
            return (below >= low.saturating_add(len)).then(|| below - len);
        };
        if top.end <= below && below - top.end >= len {
            return Some(below - len);
        }
        if let Some(end) = self.vmas.highest_gap_end(len, top.start) {
            return Some(end - len);
        }
        let lowest = self.vmas.values().next().map_or(below, |v| v.start);
        (lowest >= low.saturating_add(len)).then(|| lowest - len)
    }

    /// Pages of the VMAs within [start, end) (`count_vma_pages_range`).
    pub fn pages_in(&self, start: u64, end: u64) -> u64 {
        let first = self.vmas.range(..start).next_back().map_or(start, |(k, _)| *k);
        self.vmas.range(first..end).map(|(_, v)| (v.end.min(end).saturating_sub(v.start.max(start))) / PAGE_SIZE).sum()
    }

    /// Unmaps [start, end): splits, removes VMAs and their pages (Linux's `unmap_region`);
    /// `tlb` flushes, then frees the pages and tables.
    /// `mm` is the address space this is the `mmap_lock` content of.
    pub fn unmap_region(&mut self, tlb: &super::tlb::MmuGather, mm: &MmStruct, start: u64, end: u64) {
        // Shared tables the range cuts become this address space's own first.
        super::pt_share::unshare_range(mm, start, end, false);
        self.split_at(start, end);
        for v in self.take_vmas(start, end) {
            mm.zap_range(tlb, v.start, v.end);
        }
    }

    /// Inserts a VMA into a range the caller made free, merging with neighbours.
    /// (Its `open` hook runs and a VM_ACCOUNT VMA is charged: it enters the address
    /// space; the caller made the overcommit check.)
    pub fn insert_vma(&mut self, vma: Vma) {
        let (s, e) = (vma.start, vma.end);
        vma.open();
        super::commit::vm_acct_memory(vma.flags.committed(vma.pages()) as i64);
        self.vmas.insert(s, vma);
        self.note_vm();
        self.merge_around(s, e);
    }
}

/// A mapping being made, as a file's `mmap` hook sees it (the fields of Linux's new
/// `vm_area_struct` that `call_mmap` may change): it starts out mapping the file's page
/// cache with no open/close hooks.
pub struct MmapDesc {
    pub len: u64,
    pub prot: Prot,
    pub flags: VmFlags,
    /// Offset in the file, in pages (`vm_pgoff`).
    pub pgoff: u64,
    pub backend: Backend,
    pub ops: Option<Arc<dyn super::vma::VmaOps>>,
}

/// Makes MAP_SHARED anonymous memory (and a shared mapping of /dev/zero) an unlinked
/// shmem file of `len` bytes, so that fork shares its pages and later ones too (Linux's
/// `shmem_zero_setup`; maps shows it as "/dev/zero (deleted)"). The object is charged
/// for its whole size unless the mapping is VM_NORESERVE (`shmem_acct_size`).
pub fn shmem_zero_setup(inner: &MmInner, desc: &mut MmapDesc) -> KResult<()> {
    let charge = if desc.flags.contains(VmFlags::NORESERVE) {
        None
    } else {
        Some(super::commit::ShmemCharge::new(inner, desc.len / PAGE_SIZE)?)
    };
    let file = File::new(
        crate::fs::file::FileKind::Inode(crate::fs::tmpfs::new_shmem_file(desc.len, charge)),
        crate::fs::file::O_RDWR,
        "/dev/zero".into(),
    );
    desc.backend = Backend::File(file);
    Ok(())
}

/// Arguments of mmap, already taken from registers.
pub struct MmapRequest {
    pub addr: u64,
    pub len: u64,
    pub prot: u32,
    pub flags: u32,
    /// The open file (mappings hold it, not the descriptor).
    pub file: Option<Arc<File>>,
    /// The file was opened for writing (MAP_SHARED with PROT_WRITE needs it).
    pub file_writable: bool,
    pub offset: u64,
}

/// Linux's `do_mmap` and `mmap_region`: validates, picks the address, checks RLIMIT_AS,
/// replaces what MAP_FIXED covers, charges committed memory, inserts the VMA. Pages come
/// later, on fault (or now with MAP_POPULATE).
pub fn do_mmap(mm: &MmStruct, req: MmapRequest) -> KResult<u64> {
    let MmapRequest { addr, len, prot, flags, file, file_writable, offset } = req;
    // ksys_mmap_pgoff: hugetlbfs files (`is_file_hugepages`) and anonymous memory of a
    // known huge page size (2 MiB) take MAP_HUGETLB; their mappings are hugetlb ones.
    let anon = flags & MAP_ANONYMOUS != 0;
    let file_huge = !anon && file.as_ref().and_then(|f| f.inode()).is_some_and(|i| i.is_hugetlb());
    if flags & MAP_HUGETLB != 0 && !file_huge {
        let log = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
        if !anon || (log != 0 && log != 21) {
            return Err(EINVAL);
        }
    }
    let hugetlb = file_huge || (anon && flags & MAP_HUGETLB != 0);
    if len == 0 {
        return Err(EINVAL);
    }
    // ksys_mmap_pgoff: hugetlb memory comes in whole huge pages.
    let len = align_up(len, if hugetlb { HPAGE_SIZE } else { PAGE_SIZE });
    if len == 0 || len > TASK_SIZE {
        return Err(ENOMEM);
    }
    if offset % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    if offset.checked_add(len).is_none() {
        return Err(EOVERFLOW);
    }
    let prot_bits = Prot::from_bits(prot & 7).ok_or(EINVAL)?;
    let map_type = flags & MAP_TYPE;
    match map_type {
        MAP_SHARED | MAP_PRIVATE => {}
        MAP_SHARED_VALIDATE => {
            if flags & !LEGACY_MAP_MASK != 0 {
                return Err(ENOTSUP);
            }
        }
        _ => return Err(EINVAL),
    }
    let shared = map_type != MAP_PRIVATE;
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    // hugetlb_get_unmapped_area, and a file's own (an mshare region's graft size): a fixed
    // address must be aligned, and a chosen one is.
    let align = if hugetlb {
        HPAGE_SIZE
    } else if anon {
        PAGE_SIZE
    } else {
        file.as_ref().and_then(|f| f.inode()).map_or(PAGE_SIZE, |i| i.mmap_align())
    };
    if fixed && addr % align != 0 {
        return Err(EINVAL);
    }
    // A shared mapping of shmem whose tables may be shared is placed congruent to its file
    // offset when the kernel picks the address (`pt_share`).
    let share_align = if shared
        && !hugetlb
        && (anon
            || file.as_ref().and_then(|f| f.inode()).is_some_and(|i| super::pt_share::shareable_backing(i.as_ref())))
    {
        super::pt_share::share_align(len).filter(|a| *a > align)
    } else {
        None
    };
    // Shared anonymous memory is an unlinked shmem file (`shmem_zero_setup`), made once
    // the checks have passed; a file's own `mmap` hook says what backs its mappings.
    let (file, shmem_anon) = if flags & MAP_ANONYMOUS != 0 {
        // Shared hugetlb memory is a hugetlbfs file of its own, with no pages to share.
        (None, shared && !hugetlb)
    } else {
        let f = file.ok_or(EBADF)?;
        // After the length and type checks, as do_mmap's switch on the type.
        if !f.readable() {
            return Err(EACCES);
        }
        // No `mmap` in its file operations (pipes, most devices): ENODEV.
        if !f.inode().is_some_and(|i| i.has_mmap()) {
            return Err(ENODEV);
        }
        // `file_mmap_ok`: a regular file's mapping must end within MAX_LFS_FILESIZE.
        if f.metadata().is_regular() && offset + len > i64::MAX as u64 {
            return Err(EOVERFLOW);
        }
        if shared && prot_bits.contains(Prot::WRITE) && !file_writable {
            return Err(EACCES);
        }
        (Some(f), false)
    };
    let mut inner = mm.mmap_lock.write_killable()?;
    // Checked before MAP_FIXED unmaps anything.
    let mut vflags = inner.def_flags;
    if flags & MAP_LOCKED != 0 {
        vflags |= VmFlags::LOCKED;
    }
    if vflags.contains(VmFlags::LOCKED) && !super::mlock::may_lock(&inner, len / PAGE_SIZE) {
        return Err(EAGAIN);
    }
    // One more than the limit may exist after this mmap (do_mmap's `>`).
    if inner.vmas.len() > max_map_count() {
        return Err(ENOMEM);
    }
    // The new VMA (Linux's vm_area_alloc), before MAP_FIXED changes anything.
    super::fail::slab_may_fail()?;
    let start = if fixed {
        let end = addr.checked_add(len).ok_or(ENOMEM)?;
        if end > TASK_SIZE {
            return Err(ENOMEM);
        }
        // Below vm.mmap_min_addr only with CAP_SYS_RAWIO (cap_mmap_addr), checked as
        // get_unmapped_area returns, before MAP_FIXED_NOREPLACE's test.
        if addr < mmap_min_addr() && !super::commit::capable(crate::process::cred::CAP_SYS_RAWIO) {
            return Err(EPERM);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && inner.overlaps(addr, end) {
            return Err(EEXIST);
        }
        addr
    } else {
        // The hint if its range is free (hugetlb_get_unmapped_area rounds it up to a huge
        // page and takes none at 0), else the highest free range, with room to align a
        // hugetlb one.
        let hint = if align > PAGE_SIZE { align_up(addr, align) } else { addr & !(PAGE_SIZE - 1) };
        if (addr != 0 || align == PAGE_SIZE)
            && hint >= mmap_min_addr()
            && hint.checked_add(len).is_some_and(|e| e <= TASK_SIZE)
            && !inner.overlaps(hint, hint + len)
        {
            hint
        } else if let Some(a) = share_align {
            let free = inner.find_free_area(len + a - PAGE_SIZE, MMAP_BASE).ok_or(ENOMEM)?;
            // Shared anonymous memory starts at offset 0 of its object, whatever was asked.
            super::pt_share::congruent_above(free, if anon { 0 } else { offset }, a)
        } else {
            let slack = align - PAGE_SIZE;
            let free = inner.find_free_area(len + slack, MMAP_BASE).ok_or(ENOMEM)?;
            super::align_down(free + slack, align)
        }
    };
    // mmap_region: RLIMIT_AS, counting what MAP_FIXED replaces as freed.
    let replaced = if fixed { inner.pages_in(start, start + len) } else { 0 };
    if !super::commit::may_expand_vm(&inner, len / PAGE_SIZE - replaced) {
        return Err(ENOMEM);
    }
    if fixed {
        inner.check_split(start, start + len)?;
        let tlb = super::tlb::MmuGather::for_mm(&mm);
        inner.unmap_region(&tlb, mm, start, start + len);
    }
    if hugetlb {
        // hugetlbfs_file_mmap: without MAP_NORESERVE the pages are reserved now, and the
        // pool is empty (vm.nr_hugepages 0): hugetlb_reserve_pages fails (a file's own
        // hook says so). With it (forced in every overcommit mode for hugetlb) nothing is
        // reserved or charged, the VMA is made and each fault is SIGBUS. It is never
        // locked (mmap_region clears VM_LOCKED for hugetlb).
        if flags & MAP_NORESERVE == 0 && !file_huge {
            return Err(ENOMEM);
        }
        vflags |= VmFlags::HUGETLB;
        if flags & MAP_NORESERVE != 0 {
            vflags |= VmFlags::NORESERVE;
        }
        vflags -= VmFlags::LOCKED | VmFlags::LOCKONFAULT;
    }
    if shared {
        vflags |= VmFlags::SHARED;
    }
    // do_mmap: every mapping may be made writable but a shared one of a file opened
    // without write access.
    if !(shared && file.is_some() && !file_writable) {
        vflags |= VmFlags::MAYWRITE;
    }
    if flags & MAP_GROWSDOWN != 0 {
        vflags |= VmFlags::GROWSDOWN;
    }
    // MAP_NORESERVE is honoured only where overcommit is allowed.
    if flags & MAP_NORESERVE != 0
        && super::commit::OVERCOMMIT_MEMORY.load(core::sync::atomic::Ordering::Relaxed)
            != super::commit::OVERCOMMIT_NEVER
    {
        vflags |= VmFlags::NORESERVE;
    }
    // Refused after MAP_FIXED has unmapped, as mmap_region does.
    if super::commit::accountable_mapping(prot_bits, vflags) {
        super::commit::vm_enough_memory(&inner, len / PAGE_SIZE)?;
        vflags |= VmFlags::ACCOUNT;
    }
    let mut desc = MmapDesc {
        len,
        prot: prot_bits,
        flags: vflags,
        pgoff: offset / PAGE_SIZE,
        backend: Backend::Anonymous,
        ops: None,
    };
    match file {
        // Linux's `call_mmap`: the file's hook, with the mapping's page cache as the default.
        Some(f) => {
            let inode = f.inode().cloned().ok_or(ENODEV)?;
            desc.backend = Backend::File(f);
            inode.mmap(&inner, &mut desc)?;
        }
        None if shmem_anon => shmem_zero_setup(&inner, &mut desc)?,
        None => {}
    }
    let vflags = desc.flags;
    // mmap_region: a shared mapping that may write its file holds a count of the file's
    // writable mappings across the link, refused (EPERM) while they are denied (a seal
    // added meanwhile), so a seal sees it or it sees the seal.
    let writable_cache = match &desc.backend {
        Backend::File(f) if vflags.contains(VmFlags::SHARED | VmFlags::MAYWRITE) => {
            f.inode().cloned().filter(|i| i.page_cache().is_some())
        }
        _ => None,
    };
    if let Some(i) = &writable_cache {
        i.page_cache().expect("filtered").mapping_map_writable()?;
    }
    inner.insert_vma(Vma {
        live: crate::leak::VMAS.live(),
        start,
        end: start + len,
        prot: desc.prot,
        flags: vflags,
        pgoff: desc.pgoff,
        backend: desc.backend,
        ops: desc.ops,
    });
    if let Some(i) = &writable_cache {
        i.page_cache().expect("filtered").mapping_unmap_writable();
    }
    drop(inner);
    // Failures (and a kill) are left to the later access and the way out, as Linux's
    // `mm_populate` ignores them: the mapping exists. A window is never populated: its
    // pages are the region's, faulted through its host.
    if vflags.contains(VmFlags::MSHARE) {
    } else if vflags.populates_locked() {
        let _ = super::mlock::populate(mm, start, start + len);
    } else if flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE {
        let _ = super::mlock::populate_range(mm, start, start + len, super::mlock::populate_access);
    }
    Ok(start)
}
