//! Memory syscalls.

use super::{ok, Args, SysResult};
use crate::errno::*;
use crate::mm::mmap::{do_mmap, MmapRequest, MAP_ANONYMOUS};
use crate::process::current_mm;

pub fn sys_brk(a: Args) -> SysResult {
    ok(crate::mm::brk::do_brk(&current_mm(), a.u(0)) as usize)
}

pub fn sys_mmap(a: Args) -> SysResult {
    let flags = a.u32(3);
    let (file, writable) = if flags & MAP_ANONYMOUS != 0 {
        (None, false)
    } else {
        let f = super::fs::get_file(a.i32(4))?;
        let writable = f.writable();
        (Some(f), writable)
    };
    let addr = do_mmap(
        &current_mm(),
        MmapRequest { addr: a.u(0), len: a.u(1), prot: a.u32(2), flags, file, file_writable: writable, offset: a.u(5) },
    )?;
    ok(addr as usize)
}

pub fn sys_munmap(a: Args) -> SysResult {
    crate::mm::munmap::do_munmap(&current_mm(), a.u(0), a.u(1))?;
    ok(0)
}

pub fn sys_msync(a: Args) -> SysResult {
    crate::mm::msync::do_msync(&current_mm(), a.u(0), a.u(1), a.u32(2))?;
    ok(0)
}

pub fn sys_mprotect(a: Args) -> SysResult {
    crate::mm::mprotect::do_mprotect(&current_mm(), a.u(0), a.u(1), a.u32(2))?;
    ok(0)
}

pub fn sys_madvise(a: Args) -> SysResult {
    crate::mm::madvise::do_madvise(&current_mm(), a.u(0), a.u(1), a.u32(2))?;
    ok(0)
}

pub fn sys_mincore(a: Args) -> SysResult {
    let pages = crate::mm::madvise::mincore_pages(a.u(0), a.u(1))?;
    // access_ok(vec, pages), before any page is looked at.
    let mut vec = a.u(2);
    if vec.checked_add(pages).is_none_or(|e| e > crate::mm::address_space::TASK_SIZE) {
        return Err(EFAULT);
    }
    crate::mm::madvise::do_mincore(&current_mm(), a.u(0), pages, |chunk| {
        super::copy_to_user(vec, chunk)?;
        vec = vec.wrapping_add(chunk.len() as u64);
        Ok(())
    })?;
    ok(0)
}

pub fn sys_mremap(a: Args) -> SysResult {
    ok(crate::mm::mremap::do_mremap(&current_mm(), a.u(0), a.u(1), a.u(2), a.u32(3), a.u(4))? as usize)
}

pub fn sys_remap_file_pages(a: Args) -> SysResult {
    crate::mm::remap_file_pages::do_remap_file_pages(&current_mm(), a.u(0), a.u(1), a.u(2), a.u(3), a.u(4))?;
    ok(0)
}

pub fn sys_mlock(a: Args) -> SysResult {
    crate::mm::mlock::do_mlock(&current_mm(), a.u(0), a.u(1), 0)?;
    ok(0)
}

pub fn sys_mlock2(a: Args) -> SysResult {
    crate::mm::mlock::do_mlock(&current_mm(), a.u(0), a.u(1), a.u32(2))?;
    ok(0)
}

pub fn sys_munlock(a: Args) -> SysResult {
    crate::mm::mlock::do_munlock(&current_mm(), a.u(0), a.u(1))?;
    ok(0)
}

pub fn sys_mlockall(a: Args) -> SysResult {
    crate::mm::mlock::do_mlockall(&current_mm(), a.u32(0))?;
    ok(0)
}

pub fn sys_munlockall() -> SysResult {
    crate::mm::mlock::do_munlockall(&current_mm())?;
    ok(0)
}

/// The name argument of mshare(2) and mshare_unlink(2): a file name in /sys/fs/mshare.
fn mshare_name(va: u64) -> crate::errno::KResult<alloc::string::String> {
    let bytes = crate::mm::usercopy::read_cstr(&current_mm(), va, 255)?;
    alloc::string::String::from_utf8(bytes).map_err(|_| EINVAL)
}

/// `mshare(name, addr, len, oflag, mode)` (number 1024, `mm/mshare.rs`).
pub fn sys_mshare(a: Args) -> SysResult {
    let name = mshare_name(a.u(0))?;
    let t = crate::process::current();
    let cred = t.process.creds.lock().clone();
    let mode = a.u32(4) & 0o7777 & !t.fs().lock().umask;
    crate::mm::mshare::sys_mshare(&current_mm(), &cred, &name, a.u(1), a.u(2), a.u32(3), mode)?;
    ok(0)
}

/// `mshare_unlink(name)` (number 1025).
pub fn sys_mshare_unlink(a: Args) -> SysResult {
    crate::mm::mshare::sys_mshare_unlink(&mshare_name(a.u(0))?)?;
    ok(0)
}
