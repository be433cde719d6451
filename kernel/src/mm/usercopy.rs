//! Copies between the kernel and user memory. The kernel never dereferences
//! a user pointer: each page is looked up in the address space, faulted in
//! through `handle_mm_fault` with the access the copy needs (so copy-on-write
//! and demand paging work as for the user's own access), and copied through
//! the direct map. An address outside the user half, or a fault that cannot
//! be resolved, is `EFAULT` — never a kernel fault.

use super::address_space::{MmStruct, TASK_SIZE};
use super::fault::{fault_shared, Access, FaultError};
use super::page::Page;
use super::PAGE_SIZE;
use crate::errno::*;
use alloc::vec::Vec;
use page_table::PteFlags;

/// Plain data that may be copied to and from user memory byte for byte.
///
/// # Safety
/// Every bit pattern must be a valid value and the type must have no padding
/// that could leak kernel memory.
pub unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty),*) => { $(unsafe impl Pod for $t {})* };
}
pod!(u8, u16, u32, u64, i8, i16, i32, i64, usize, isize);
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// Marks a `#[repr(C)]` struct without padding as [`Pod`].
#[macro_export]
macro_rules! impl_pod {
    ($($t:ty),*) => { $(
        // SAFETY: the type is #[repr(C)] with integer fields and no padding (checked by the
        // size assertion at its definition).
        #[allow(unsafe_code)]
        unsafe impl $crate::mm::usercopy::Pod for $t {}
    )* };
}

/// Every unresolved fault is EFAULT, out of memory included: a kernel-mode fault
/// that gets VM_FAULT_OOM takes the uaccess fixup (Linux's `do_user_addr_fault`).
fn fault_errno(_: FaultError) -> Errno {
    EFAULT
}

/// The page mapping `va` in `mm`, faulted in for `access`, with a reference taken
/// under `mmap_lock` (shared) and the page-table lock (Linux's `get_user_pages`): the
/// copy through it runs after the locks are dropped, and an unmap or truncation meanwhile cannot free the frame under
/// it (the bytes land in, or come from, the page the address named when it was
/// looked up, as on Linux).
fn user_page(mm: &MmStruct, va: u64, access: Access) -> KResult<Page> {
    if va >= TASK_SIZE {
        return Err(EFAULT);
    }
    let mut inner = mm.mmap_lock.read();
    // A window's pages are looked up in its host (`mshare::window_page`), never through
    // the guest's graft, which a host change may empty under the walk.
    if inner.vmas.windows() > 0 {
        if let Some(v) = inner.find_vma(va).filter(|v| v.flags.contains(super::vma::VmFlags::MSHARE)) {
            return super::mshare::window_page(mm, v, va, access);
        }
    }
    for _ in 0..2 {
        // Through a graft of a file's shared tables, the page is looked up in the host
        // under the host's page-table lock, as for a window.
        let through = {
            let pt = mm.page_table_lock.lock();
            match pt.grafts.iter().find(|g| g.va <= va && va < g.end()) {
                Some(g) => g.host.as_ref().map(|(h, delta)| (h.clone(), va.wrapping_sub(*delta))),
                None => {
                    let mem = mm.phys_mem();
                    if let Some(page) = pt.pt.translate(&mem, va).and_then(|m| mapped_page(m, va, access)) {
                        return Ok(page);
                    }
                    None
                }
            }
        };
        if let Some(page) = through.and_then(|(host, haddr)| super::mshare::host_page(&host, haddr, access)) {
            return Ok(page);
        }
        let (held, r) = fault_shared(mm, inner, va, access);
        inner = held;
        r.map_err(fault_errno)?;
    }
    Err(EFAULT)
}

/// The page of `va` in the mapping `m` (its translation), with a reference, if the entry
/// allows `access` from user mode. The caller holds the page-table lock `m` was read under.
pub(super) fn mapped_page(m: page_table::Mapping, va: u64, access: Access) -> Option<Page> {
    let ok = m.flags.contains(PteFlags::USER) && (!access.write || m.flags.contains(PteFlags::WRITABLE));
    ok.then(|| Page::get((m.phys + (va & (m.size.bytes() - 1))) & !(PAGE_SIZE - 1)))
}

/// Walks [va, va + len) page by page, calling `f(page, offset_in_page,
/// offset_in_buffer, len)` with a reference to each page held across the call.
fn for_each_chunk(
    mm: &MmStruct,
    va: u64,
    len: usize,
    access: Access,
    mut f: impl FnMut(&Page, usize, usize, usize),
) -> KResult<()> {
    let end = va.checked_add(len as u64).ok_or(EFAULT)?;
    if end > TASK_SIZE {
        return Err(EFAULT);
    }
    let mut cur = va;
    while cur < end {
        let n = (PAGE_SIZE - cur % PAGE_SIZE).min(end - cur) as usize;
        let page = user_page(mm, cur, access)?;
        f(&page, (cur % PAGE_SIZE) as usize, (cur - va) as usize, n);
        cur += n as u64;
    }
    Ok(())
}

pub fn copy_from_user(mm: &MmStruct, va: u64, out: &mut [u8]) -> KResult<()> {
    for_each_chunk(mm, va, out.len(), Access::READ, |page, at, off, n| page.read(at, &mut out[off..off + n]))
}

pub fn copy_to_user(mm: &MmStruct, va: u64, data: &[u8]) -> KResult<()> {
    // The CPU would have set the entry's dirty bit; the copy goes through the physical map.
    for_each_chunk(mm, va, data.len(), Access::WRITE, |page, at, off, n| {
        page.write(at, &data[off..off + n]);
        page.mark_dirty();
    })
}

/// Makes as much of [va, va + len) present and writable as it can, from the start
/// (Linux's `fault_in_writeable`), so that a copy after bytes were taken from a file
/// or pipe cannot fail and lose them: the bytes made ready, or the error of the first
/// page when not even that one could be.
pub fn fault_in_writeable(mm: &MmStruct, va: u64, len: usize) -> KResult<usize> {
    let end = va.checked_add(len as u64).ok_or(EFAULT)?;
    let mut cur = va;
    while cur < end {
        if let Err(e) = user_page(mm, cur, Access::WRITE) {
            return if cur == va { Err(e) } else { Ok((cur - va) as usize) };
        }
        cur = (cur & !(PAGE_SIZE - 1)) + PAGE_SIZE;
    }
    Ok(len)
}

pub fn clear_user(mm: &MmStruct, va: u64, len: usize) -> KResult<()> {
    for_each_chunk(mm, va, len, Access::WRITE, |page, at, _, n| page.zero(at, n))
}

pub fn read_val<T: Pod>(mm: &MmStruct, va: u64) -> KResult<T> {
    let mut v = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: T is Pod, so any bytes form a valid T; the slice covers exactly the value.
    let bytes = unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, core::mem::size_of::<T>()) };
    copy_from_user(mm, va, bytes)?;
    // SAFETY: fully initialized by the copy (or zeroed).
    Ok(unsafe { v.assume_init() })
}

/// The u32 at `va` if its page is mapped readable now, without faulting (Linux's
/// `get_futex_value_locked`, a user read with page faults disabled): None where a
/// fault would be needed, which the caller takes (`read_val`) after dropping its locks.
pub fn read_u32_nofault(mm: &MmStruct, va: u64) -> Option<u32> {
    if va >= TASK_SIZE || !va.is_multiple_of(4) {
        return None;
    }
    // Through a graft (an mshare window), the page is looked up in the host under the
    // host's page-table lock, never through the guest's graft.
    if let Some((host, haddr)) = mm.graft_host(va) {
        let page = super::mshare::host_page(&host, haddr, Access::READ)?;
        let mut word = [0u8; 4];
        page.read((va % PAGE_SIZE) as usize, &mut word);
        return Some(u32::from_ne_bytes(word));
    }
    let pt = mm.page_table_lock.lock();
    let m = pt.pt.translate(&mm.phys_mem(), va)?;
    if !m.flags.contains(PteFlags::USER) {
        return None;
    }
    let pa = m.phys + (va & (m.size.bytes() - 1));
    let page = Page::get(pa & !(PAGE_SIZE - 1));
    drop(pt);
    let mut word = [0u8; 4];
    page.read((va % PAGE_SIZE) as usize, &mut word);
    Some(u32::from_ne_bytes(word))
}

pub fn write_val<T: Pod>(mm: &MmStruct, va: u64, v: &T) -> KResult<()> {
    copy_to_user(mm, va, as_bytes(v))
}

/// The bytes of a Pod value.
pub fn as_bytes<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: Pod types have no padding, so every byte is initialized.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
}

/// Reads a NUL-terminated string of at most `max` bytes (without the NUL);
/// longer is `ENAMETOOLONG` (`strncpy_from_user` callers' convention).
pub fn read_cstr(mm: &MmStruct, va: u64, max: usize) -> KResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = va;
    loop {
        let n = (PAGE_SIZE - cur % PAGE_SIZE) as usize;
        let mut buf = [0u8; 256];
        let n = n.min(buf.len());
        copy_from_user(mm, cur, &mut buf[..n])?;
        if let Some(z) = buf[..n].iter().position(|&b| b == 0) {
            super::fail::try_reserve(&mut out, z)?;
            out.extend_from_slice(&buf[..z]);
            if out.len() > max {
                return Err(ENAMETOOLONG);
            }
            return Ok(out);
        }
        super::fail::try_reserve(&mut out, n)?;
        out.extend_from_slice(&buf[..n]);
        if out.len() > max {
            return Err(ENAMETOOLONG);
        }
        cur += n as u64;
    }
}
