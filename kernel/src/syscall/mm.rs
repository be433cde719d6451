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
        if !f.readable() {
            return Err(EACCES);
        }
        (Some((f.inode().ok_or(ENODEV)?.clone(), f.path.as_str().into())), f.writable())
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

const MADV_NORMAL: u32 = 0;
const MADV_RANDOM: u32 = 1;
const MADV_SEQUENTIAL: u32 = 2;
const MADV_WILLNEED: u32 = 3;
const MADV_DONTNEED: u32 = 4;

/// The advice that only affects performance is accepted; MADV_DONTNEED drops
/// private pages (they read back as zero or the file's contents). The rest
/// arrives with the VM issue.
pub fn sys_madvise(a: Args) -> SysResult {
    let (start, len, advice) = (a.u(0), a.u(1), a.u32(2));
    if start % crate::mm::PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    match advice {
        MADV_NORMAL | MADV_RANDOM | MADV_SEQUENTIAL | MADV_WILLNEED => ok(0),
        MADV_DONTNEED => {
            let mm = current_mm();
            let end = start.checked_add(crate::mm::align_up(len, crate::mm::PAGE_SIZE)).ok_or(EINVAL)?;
            let mut inner = mm.inner.lock();
            let mut cur = start;
            while cur < end {
                let v = inner.find_vma(cur).ok_or(ENOMEM)?;
                cur = v.end;
            }
            inner.zap_range(&mm.pt_pages, start, end);
            crate::arch::cpu::flush_tlb_all();
            ok(0)
        }
        _ => {
            crate::log_once!("madvise: advice beyond DONTNEED arrives with the VM issue");
            Err(EINVAL)
        }
    }
}
