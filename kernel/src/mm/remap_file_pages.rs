//! `remap_file_pages` (Linux's mm/mmap.c `SYSCALL_DEFINE5(remap_file_pages)`, the
//! emulation Linux has used since 4.0): nonlinear mappings are gone, so a range of a
//! shared file mapping is mapped again, MAP_FIXED, at another file offset: a new VMA
//! per remapped range, its pages faulted in at once unless MAP_NONBLOCK.
#![deny(unsafe_code)]

use super::address_space::MmStruct;
use super::mmap::{do_mmap, MmapRequest, MAP_FIXED, MAP_LOCKED, MAP_NONBLOCK, MAP_POPULATE, MAP_SHARED};
use super::vma::{Backend, Prot, VmFlags};
use super::PAGE_SIZE;
use crate::errno::*;
use alloc::sync::Arc;

pub fn do_remap_file_pages(mm: &MmStruct, start: u64, size: u64, prot: u64, pgoff: u64, flags: u64) -> KResult<()> {
    let t = crate::process::current();
    let comm = *t.comm.lock();
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    crate::log_once!(
        "mmap: {} ({}) uses deprecated remap_file_pages() syscall. See Documentation/mm/remap_file_pages.rst.",
        core::str::from_utf8(&comm[..len]).unwrap_or("?"),
        t.process.pid
    );
    // The protection is the VMA's: the caller may not pick one.
    if prot != 0 {
        return Err(EINVAL);
    }
    let start = start & !(PAGE_SIZE - 1);
    let size = size & !(PAGE_SIZE - 1);
    let end = start.wrapping_add(size);
    if end <= start {
        return Err(EINVAL);
    }
    if pgoff.checked_add(size / PAGE_SIZE).is_none() {
        return Err(EINVAL);
    }
    let (file, prot, vm_flags) = {
        let inner = mm.mmap_lock.read();
        // VM_SHARED: a shared mapping of a file opened read-only lost it at mmap.
        let vma = inner.find_vma(start).filter(|v| v.is_shared() && v.may_write()).ok_or(EINVAL)?;
        let Backend::File(file) = &vma.backend else { return Err(EINVAL) };
        let (file, prot, vm_flags) = (file.clone(), vma.prot, vma.flags);
        // The range may run over several VMAs, back to back, of the same open file with
        // the same flags.
        let mut at = vma.end;
        while at < end {
            let next = inner.vmas.get(&at).ok_or(EINVAL)?;
            let same_file = matches!(&next.backend, Backend::File(f) if Arc::ptr_eq(f, &file));
            if !same_file || next.flags != vm_flags || next.prot != prot {
                return Err(EINVAL);
            }
            at = next.end;
        }
        (file, prot, vm_flags)
    };
    let mut mmap_flags = MAP_SHARED | MAP_FIXED | MAP_POPULATE | (flags as u32 & MAP_NONBLOCK);
    if vm_flags.contains(VmFlags::LOCKED) {
        mmap_flags |= MAP_LOCKED;
    }
    // An offset past what a file can hold is do_mmap's EOVERFLOW (`file_mmap_ok`).
    let offset = pgoff.checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
    let writable = file.writable();
    do_mmap(
        mm,
        MmapRequest {
            addr: start,
            len: size,
            prot: (prot & (Prot::READ | Prot::WRITE | Prot::EXEC)).bits(),
            flags: mmap_flags,
            file: Some(file),
            file_writable: writable,
            offset,
        },
    )?;
    Ok(())
}
