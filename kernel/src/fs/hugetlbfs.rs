//! hugetlbfs files as memfd_create(MFD_HUGETLB) and shmget(SHM_HUGETLB) make them
//! (Linux's fs/hugetlbfs/inode.c): a file of 2 MiB pages from the huge page pool. The pool
//! is empty here (vm.nr_hugepages 0, as on a Linux that reserved none), so the file can be
//! made, sized, sealed and mapped, reads as zeroes, and every page it would need fails: a
//! mapping that must reserve its pages is ENOMEM, one made with MAP_NORESERVE is made and
//! each fault is SIGBUS (`hugetlb_no_page`), fallocate is ENOSPC.
#![deny(unsafe_code)]

use super::vfs::*;
use crate::errno::*;
use crate::mm::memfd::{F_SEAL_EXEC, F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE};
use crate::mm::mmap::HPAGE_SIZE;
use crate::sync::SpinLock as Mutex;
use alloc::sync::Arc;
use core::any::Any;

/// hugetlbfs's device number (its own filesystem).
const HUGETLBFS_DEV: u64 = 0x2e;

/// Seals and metadata change together under the one lock (Linux's `i_rwsem`): nothing
/// here sleeps.
struct State {
    meta: Metadata,
    seals: u32,
}

pub struct HugetlbFile {
    _live: crate::leak::Live,
    state: Mutex<State, crate::sync::order::TmpfsFileMeta>,
    /// Never holds a page (the fault path stops at VM_HUGETLB); it keeps what every
    /// mappable file has: the VMAs mapping it (`i_mmap`) and the writable ones' count
    /// (`i_mmap_writable`) F_SEAL_WRITE needs at zero.
    cache: crate::mm::page_cache::PageCache,
    /// A SysV segment's (Linux's S_PRIVATE): its pages were reserved, or not, by shmget,
    /// so its mappings reserve nothing.
    shm: bool,
}

impl HugetlbFile {
    /// `hugetlb_file_setup`: ENODEV for a page size (log2 `log`, 0 for the default) with no
    /// pool (`get_hstate_idx`); 2 MiB is the one there is. A SysV segment's file is made
    /// with its size (`shm`); a memfd's is empty.
    pub fn new(log: u32, mode: u32, uid: u32, gid: u32, shm: Option<u64>) -> KResult<Arc<HugetlbFile>> {
        if log != 0 && 1u64.checked_shl(log) != Some(HPAGE_SIZE) {
            return Err(ENODEV);
        }
        let now = crate::time::realtime();
        let meta = Metadata {
            dev: HUGETLBFS_DEV,
            ino: super::tmpfs::next_ino(),
            mode: S_IFREG | (mode & 0o7777),
            nlink: 0,
            uid,
            gid,
            size: shm.unwrap_or(0),
            blksize: HPAGE_SIZE as u32,
            atime: now,
            mtime: now,
            ctime: now,
            ..Default::default()
        };
        Ok(Arc::new(HugetlbFile {
            _live: crate::leak::INODES.live(),
            state: Mutex::new(State { meta, seals: F_SEAL_SEAL }),
            cache: crate::mm::page_cache::PageCache::new(crate::mm::page::PageKind::Shmem, false),
            shm: shm.is_some(),
        }))
    }

    pub fn seals(&self) -> u32 {
        self.state.lock().seals
    }

    pub fn init_seals(&self, seals: u32) {
        self.state.lock().seals = seals;
    }

    /// `memfd_add_seals` (see tmpfs's): F_SEAL_WRITE is EBUSY while a writable shared
    /// mapping exists and denies them from then on.
    pub fn add_seals(&self, mut seals: u32) -> KResult<()> {
        let mut s = self.state.lock();
        if s.seals & F_SEAL_SEAL != 0 {
            return Err(EPERM);
        }
        if seals & F_SEAL_WRITE != 0 && s.seals & F_SEAL_WRITE == 0 {
            self.cache.mapping_deny_writable()?;
        }
        if seals & F_SEAL_EXEC != 0 && s.meta.mode & 0o111 != 0 {
            seals |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
        }
        s.seals |= seals;
        Ok(())
    }
}

impl Inode for HugetlbFile {
    fn metadata(&self) -> Metadata {
        self.state.lock().meta.clone()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    /// hugetlbfs_read_iter: no page was ever made, so the whole size is a hole.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let size = self.state.lock().meta.size;
        let n = (buf.len() as u64).min(size.saturating_sub(offset)) as usize;
        buf[..n].fill(0);
        Ok(n)
    }
    /// hugetlbfs has no `write_iter`: vfs_write is EINVAL.
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> KResult<usize> {
        Err(EINVAL)
    }
    /// hugetlbfs_setattr: the seals, then a size in whole huge pages (EINVAL).
    fn truncate(&self, size: u64) -> KResult<()> {
        let mut s = self.state.lock();
        let old = s.meta.size;
        if (size < old && s.seals & F_SEAL_SHRINK != 0) || (size > old && s.seals & F_SEAL_GROW != 0) {
            return Err(EPERM);
        }
        if !size.is_multiple_of(HPAGE_SIZE) {
            return Err(EINVAL);
        }
        s.meta.size = size;
        s.meta.mtime = crate::time::realtime();
        s.meta.ctime = s.meta.mtime;
        Ok(())
    }
    /// hugetlbfs_fallocate: a hole has no page to drop; a reservation needs pages the
    /// empty pool does not have (ENOSPC), after the size and F_SEAL_GROW checks.
    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> KResult<()> {
        const KEEP_SIZE: u32 = 1;
        const PUNCH_HOLE: u32 = 2;
        if mode & !(KEEP_SIZE | PUNCH_HOLE) != 0 {
            return Err(ENOTSUP);
        }
        if mode & PUNCH_HOLE != 0 {
            return Ok(());
        }
        let end = offset.checked_add(len).filter(|&e| e <= i64::MAX as u64).ok_or(EFBIG)?;
        let s = self.state.lock();
        if s.seals & F_SEAL_GROW != 0 && end > s.meta.size {
            return Err(EPERM);
        }
        Err(ENOSPC)
    }
    fn page_cache(&self) -> Option<&crate::mm::page_cache::PageCache> {
        Some(&self.cache)
    }
    fn is_hugetlb(&self) -> bool {
        true
    }
    /// hugetlbfs_file_mmap: the seals, the offset in whole huge pages (EINVAL), then the
    /// mapping's pages are reserved from the empty pool (ENOMEM) unless it is
    /// VM_NORESERVE or maps a SysV segment; such a mapping is made (each of its faults is
    /// SIGBUS), and a writable one grows the file to its end.
    fn mmap(&self, _inner: &crate::mm::address_space::MmInner, desc: &mut crate::mm::mmap::MmapDesc) -> KResult<()> {
        use crate::mm::vma::{Prot, VmFlags};
        desc.flags |= VmFlags::HUGETLB;
        let mut s = self.state.lock();
        super::tmpfs::seal_check_write(s.seals, desc)?;
        let off = desc.pgoff * crate::mm::PAGE_SIZE;
        if !off.is_multiple_of(HPAGE_SIZE) {
            return Err(EINVAL);
        }
        let end = off.checked_add(desc.len).filter(|&e| e <= i64::MAX as u64).ok_or(EINVAL)?;
        if !desc.flags.contains(VmFlags::NORESERVE) && !self.shm {
            return Err(ENOMEM);
        }
        if desc.prot.contains(Prot::WRITE) && s.meta.size < end {
            s.meta.size = end;
        }
        Ok(())
    }
}
