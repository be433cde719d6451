//! hugetlbfs files as memfd_create(MFD_HUGETLB) makes them (Linux's fs/hugetlbfs/inode.c):
//! a file of 2 MiB pages from the huge page pool. The pool is empty here
//! (vm.nr_hugepages 0, as on a Linux that reserved none), so the file can be made,
//! sized and sealed, reads as zeroes, and every page it would need fails: a mapping that
//! must reserve its pages is ENOMEM, fallocate is ENOSPC.
#![deny(unsafe_code)]

use super::vfs::*;
use crate::errno::*;
use crate::mm::memfd::{F_SEAL_EXEC, F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE};
use crate::mm::mmap::HPAGE_SIZE;
use crate::sync::SpinLock as Mutex;
use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicBool, Ordering};

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
}

impl HugetlbFile {
    /// `hugetlb_file_setup` for a memfd: ENODEV for a page size (log2 `log`, 0 for the
    /// default) with no pool (`get_hstate_idx`); 2 MiB is the one there is.
    pub fn new(log: u32, mode: u32, uid: u32, gid: u32) -> KResult<Arc<HugetlbFile>> {
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
            blksize: HPAGE_SIZE as u32,
            atime: now,
            mtime: now,
            ctime: now,
            ..Default::default()
        };
        Ok(Arc::new(HugetlbFile {
            _live: crate::leak::INODES.live(),
            state: Mutex::new(State { meta, seals: F_SEAL_SEAL }),
        }))
    }

    pub fn seals(&self) -> u32 {
        self.state.lock().seals
    }

    pub fn init_seals(&self, seals: u32) {
        self.state.lock().seals = seals;
    }

    /// `memfd_add_seals` (see tmpfs's): no mapping of this file ever exists, so
    /// F_SEAL_WRITE has none to wait for.
    pub fn add_seals(&self, mut seals: u32) -> KResult<()> {
        let mut s = self.state.lock();
        if s.seals & F_SEAL_SEAL != 0 {
            return Err(EPERM);
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
    fn has_mmap(&self) -> bool {
        true
    }
    /// hugetlbfs_file_mmap: the offset in whole huge pages (EINVAL), then the pages of
    /// the mapping are reserved from the empty pool: ENOMEM. A MAP_NORESERVE mapping
    /// reserves nothing and would be made (each fault SIGBUS); that kind of mapping of
    /// a hugetlbfs file is not built here (ENOSYS, logged once).
    fn mmap(&self, _inner: &crate::mm::address_space::MmInner, desc: &mut crate::mm::mmap::MmapDesc) -> KResult<()> {
        if !(desc.pgoff * crate::mm::PAGE_SIZE).is_multiple_of(HPAGE_SIZE) {
            return Err(EINVAL);
        }
        if !desc.flags.contains(crate::mm::vma::VmFlags::NORESERVE) {
            return Err(ENOMEM);
        }
        static LOGGED: AtomicBool = AtomicBool::new(false);
        if !LOGGED.swap(true, Ordering::Relaxed) {
            log::warn!("mmap: MAP_NORESERVE mappings of hugetlbfs files are not implemented (ENOSYS)");
        }
        Err(ENOSYS)
    }
}
