//! Virtual memory areas (Linux's `vm_area_struct`): a page-aligned range with
//! one protection, one set of flags and one backend.
#![deny(unsafe_code)]

use crate::fs::file::File;
use crate::fs::vfs::Inode;
use alloc::sync::Arc;

bitflags::bitflags! {
    /// PROT_* as mmap takes them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Prot: u32 {
        const READ = 1;
        const WRITE = 2;
        const EXEC = 4;
    }
}

bitflags::bitflags! {
    /// The VM_* flags this kernel keeps (include/linux/mm.h).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct VmFlags: u32 {
        const SHARED = 1 << 0;
        const GROWSDOWN = 1 << 1;
        const STACK = 1 << 2;
        const HEAP = 1 << 3;
        const DONTFORK = 1 << 4;
        /// mlock: pages stay resident (VM_LOCKED).
        const LOCKED = 1 << 5;
        /// mlock2(MLOCK_ONFAULT): locked, but only as pages are touched.
        const LOCKONFAULT = 1 << 6;
        /// MAP_NORESERVE: no commit accounting; like every flag, it keeps the VMA
        /// from merging with neighbours that lack it (VM_NORESERVE).
        const NORESERVE = 1 << 7;
        /// MADV_WIPEONFORK: a child gets the mapping empty (zero-filled), not a copy.
        const WIPEONFORK = 1 << 8;
        /// The VMA's pages are charged to committed memory (VM_ACCOUNT, `mm/commit.rs`).
        const ACCOUNT = 1 << 9;
        /// Private anonymous pages were made in this VMA (Linux's `vma->anon_vma`, which
        /// the first one prepares): fork must copy its page-table entries
        /// (`vma_needs_copy`). It stays after those pages go, is inherited by split
        /// pieces and children, and does not keep VMAs from merging.
        const ANON_VMA = 1 << 10;
        /// Anonymous MAP_HUGETLB memory (VM_HUGETLB): 2 MiB pages from the huge page
        /// pool, which is empty (vm.nr_hugepages 0), so every fault is SIGBUS. Its bounds
        /// stay 2 MiB-aligned, and it never merges (each is its own hugetlbfs file).
        const HUGETLB = 1 << 11;
        /// PROT_WRITE may be given to the VMA (VM_MAYWRITE): set by every VMA's maker but
        /// for a shared mapping of a file opened without write access, and cleared by a
        /// file's `mmap` hook that forbids writing through the mapping for good (a memfd
        /// sealed against writes, `seal_check_write`). mprotect(PROT_WRITE) of a VMA
        /// without it is EACCES. A shared VMA with it counts in its file's
        /// `i_mmap_writable`.
        const MAYWRITE = 1 << 12;
        /// A window onto an mshare region (VM_MSHARE, `mm/mshare.rs`): its pages live in
        /// the region's host, whose tables are grafted here. It cannot be split, partly
        /// unmapped, mprotected, mremapped, madvised or mlocked (EINVAL), and it is never
        /// populated or copied by fork.
        const MSHARE = 1 << 13;
    }
}

impl VmFlags {
    /// Charged pages of a VMA of `pages` pages with these flags.
    pub fn committed(self, pages: u64) -> u64 {
        if self.contains(Self::ACCOUNT) {
            pages
        } else {
            0
        }
    }

    /// Locked with every page faulted in at once (VM_LOCKED without VM_LOCKONFAULT): what
    /// mmap, brk and mremap populate.
    pub fn populates_locked(self) -> bool {
        self.contains(Self::LOCKED) && !self.contains(Self::LOCKONFAULT)
    }
}

/// Where a VMA's pages come from. One enum per VMA instead of flags, as in
/// Starry. An mshare window is a `File` (the region's msharefs file) whose `ops` are the
/// region's `mshare::Window`, with VM_MSHARE.
#[derive(Clone)]
pub enum Backend {
    /// Zero-filled anonymous memory.
    Anonymous,
    /// An open file (the mapping holds the `File`, not a descriptor: closing
    /// the fd keeps the mapping); private mappings copy its pages on write.
    File(Arc<File>),
}

impl Backend {
    /// The inode behind a file mapping.
    pub fn inode(&self) -> Option<&Arc<dyn Inode>> {
        match self {
            Backend::File(f) => f.inode(),
            Backend::Anonymous => None,
        }
    }
}

/// Lifecycle hooks of the object behind a VMA (Linux's `vm_operations_struct`
/// open/close): `open` whenever a VMA referring to it comes into existence
/// (mmap, fork copy, split piece, mremap copy), `close` whenever one goes
/// (munmap, exit, exec, mremap source). SysV SHM counts attaches with them.
pub trait VmaOps: Send + Sync {
    fn open(&self, vma: &Vma);
    fn close(&self, vma: &Vma);
    /// The operations' own type, to tell one kind of mapping from another (Linux
    /// compares `vm_ops` pointers: `vma->vm_ops == &shm_vm_ops`).
    fn as_any(&self) -> &dyn core::any::Any;
    /// Whether a read fault maps the neighbouring cached pages too (Linux: the ops have a
    /// `map_pages`, which `do_fault_around` needs).
    fn map_pages(&self) -> bool {
        true
    }
    /// The protections mprotect may give the VMA besides write (Linux's VM_MAYREAD and
    /// VM_MAYEXEC, which only special mappings lack here); write is `VmFlags::MAYWRITE`.
    fn may_prot(&self) -> Prot {
        Prot::READ | Prot::EXEC
    }
}

#[derive(Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub flags: VmFlags,
    /// Offset of `start` in the file, in pages (`vm_pgoff`).
    pub pgoff: u64,
    pub backend: Backend,
    /// Open/close hooks; VMAs with hooks are never merged (as Linux's
    /// `is_mergeable_vma` refuses VMAs with a close operation).
    pub ops: Option<Arc<dyn VmaOps>>,
    /// Counts this VMA in `leak::VMAS` (a clone or split piece is another).
    pub live: crate::leak::Live,
}

impl Vma {
    pub fn pages(&self) -> u64 {
        (self.end - self.start) / super::PAGE_SIZE
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    pub fn open(&self) {
        if let Some(ops) = &self.ops {
            ops.open(self);
        }
    }

    pub fn close(&self) {
        if let Some(ops) = &self.ops {
            ops.close(self);
        }
    }

    pub fn is_shared(&self) -> bool {
        self.flags.contains(VmFlags::SHARED)
    }

    /// Whether PROT_WRITE may ever be given to this VMA (Linux's VM_MAYWRITE).
    pub fn may_write(&self) -> bool {
        self.flags.contains(VmFlags::MAYWRITE)
    }

    /// Whether mprotect may give the VMA `prot` (Linux's VM_MAY* flags).
    pub fn may_protect(&self, prot: Prot) -> bool {
        let mut may = self.ops.as_ref().map_or(Prot::READ | Prot::EXEC, |o| o.may_prot());
        if self.may_write() {
            may |= Prot::WRITE;
        }
        may.contains(prot)
    }

    /// A shared mapping that may write its file (Linux's `is_shared_maywrite`): it counts
    /// in the file's `i_mmap_writable`, which F_SEAL_WRITE needs at zero.
    pub fn is_shared_maywrite(&self) -> bool {
        self.flags.contains(VmFlags::SHARED | VmFlags::MAYWRITE)
    }

    /// Splits at `addr` (page aligned, strictly inside): self keeps the low part,
    /// the high part is returned with its file offset adjusted.
    pub fn split_off(&mut self, addr: u64) -> Vma {
        debug_assert!(self.start < addr && addr < self.end);
        let mut high = self.clone();
        high.start = addr;
        high.pgoff = self.pgoff + (addr - self.start) / super::PAGE_SIZE;
        self.end = addr;
        high
    }

    /// Whether `next` (starting at self.end) can merge into self (same
    /// attributes and a contiguous file offset), as `vma_merge` checks.
    pub fn can_merge(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.flags - VmFlags::ANON_VMA == next.flags - VmFlags::ANON_VMA
            && !self.flags.contains(VmFlags::HUGETLB)
            && self.ops.is_none()
            && next.ops.is_none()
            && match (&self.backend, &next.backend) {
                (Backend::Anonymous, Backend::Anonymous) => true,
                (Backend::File(a), Backend::File(b)) => {
                    Arc::ptr_eq(a, b) && self.pgoff + (self.end - self.start) / super::PAGE_SIZE == next.pgoff
                }
                _ => false,
            }
    }
}
