//! The vDSO and its vvar page (Linux's arch/x86/entry/vdso/vma.c, with the `vdso_data` of
//! include/vdso/datapage.h): every exec maps a small shared object (`kernel/vdso/vdso.c`,
//! built by build.rs) whose clock_gettime, gettimeofday, time, clock_getres and getcpu run
//! without entering the kernel, and below it one read-only page where the kernel publishes
//! the clock: the TSC at boot, the TSC-to-nanoseconds factor and CLOCK_REALTIME's offset,
//! under a sequence count that is odd while they change (`vdso_write_begin`).
//!
//! Both are private mappings of two kernel files whose page caches hold the image and the
//! data page once for every process (`[vdso]` then lies in RssFile when touched, as
//! Linux's special-mapping pages do; the vvar page too, which Linux maps as PFNMAP and does
//! not count). The vDSO may be made writable (a debugger's breakpoint: copy-on-write, as
//! Linux's VM_MAYWRITE allows); the vvar page may not (mprotect gives EACCES). Both are
//! named in /proc/PID/maps by their `VmaOps`.
#![deny(unsafe_code)]

use super::address_space::{MmInner, MMAP_BASE};
use super::page::PageKind;
use super::page_cache::PageCache;
use super::vma::{Backend, Prot, VmFlags, Vma, VmaOps};
use super::PAGE_SIZE;
use crate::errno::*;
use crate::fs::file::{File, FileKind, O_RDONLY};
use crate::fs::vfs::{Inode, Metadata, S_IFREG};
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{fence, Ordering};
use spin::Once;

/// The image build.rs linked.
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// The clock as the vDSO reads it (`struct vdso_data` in kernel/vdso/vdso.c).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct VdsoData {
    seq: u32,
    clock_mode: u32,
    tsc_base: u64,
    mult: u64,
    shift: u32,
    pad: u32,
    realtime_offset: i64,
}
const _: () = assert!(core::mem::size_of::<VdsoData>() == 40, "VdsoData has no padding");
crate::impl_pod!(VdsoData);

/// `clock_mode` once the TSC is calibrated; before, the vDSO makes the system call.
const VCLOCK_TSC: u32 = 1;

/// What one of the two kernel files is: a page cache filled at boot, never written by a
/// mapping (both are private).
struct SpecialFile {
    _live: crate::leak::Live,
    size: u64,
    cache: PageCache,
}

impl Inode for SpecialFile {
    fn metadata(&self) -> Metadata {
        Metadata { mode: S_IFREG | 0o444, nlink: 1, size: self.size, blksize: 4096, ..Default::default() }
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
    fn page_cache(&self) -> Option<&PageCache> {
        Some(&self.cache)
    }
}

/// A `[vdso]` or `[vvar]` VMA's operations (`vm_special_mapping`): its name, what
/// mprotect may give it, and no merging with neighbours.
pub struct SpecialMapping {
    pub name: &'static str,
    may_prot: Prot,
}

impl VmaOps for SpecialMapping {
    fn open(&self, _vma: &Vma) {}
    fn close(&self, _vma: &Vma) {}
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
    fn may_prot(&self) -> Prot {
        self.may_prot
    }
}

struct Images {
    vdso: Arc<File>,
    vvar: Arc<File>,
    vdso_ops: Arc<dyn VmaOps>,
    vvar_ops: Arc<dyn VmaOps>,
    /// The one writer of the vvar page at a time.
    writer: crate::sync::SpinLock<VdsoData, crate::sync::order::VdsoWriter>,
}

static IMAGES: Once<Images> = Once::new();

fn special_file(name: &str, bytes: &[u8], pages: u64) -> Arc<File> {
    let cache = PageCache::new(PageKind::File, false);
    for index in 0..pages {
        let page = cache.find_or_create(index).expect("no memory for the vDSO at boot");
        let from = (index * PAGE_SIZE) as usize;
        if from < bytes.len() {
            page.write(0, &bytes[from..bytes.len().min(from + PAGE_SIZE as usize)]);
        }
    }
    let inode: Arc<dyn Inode> =
        Arc::new(SpecialFile { _live: crate::leak::INODES.live(), size: pages * PAGE_SIZE, cache });
    File::new(FileKind::Inode(inode), O_RDONLY, String::from(name))
}

/// Builds the two files: the image's pages and a zeroed data page (clock mode none until
/// `publish_clock`).
pub fn init() {
    IMAGES.call_once(|| Images {
        vdso: special_file("[vdso]", IMAGE, (IMAGE.len() as u64).div_ceil(PAGE_SIZE)),
        vvar: special_file("[vvar]", &[], 1),
        vdso_ops: Arc::new(SpecialMapping { name: "[vdso]", may_prot: Prot::READ | Prot::EXEC }),
        // VM_MAYREAD only (`vvar_mapping`): neither writable nor executable, ever.
        vvar_ops: Arc::new(SpecialMapping { name: "[vvar]", may_prot: Prot::READ }),
        writer: crate::sync::SpinLock::new(VdsoData::default()),
    });
}

fn images() -> &'static Images {
    IMAGES.get().expect("vdso::init not called")
}

/// Publishes the clock: nanoseconds since boot are `((tsc - tsc_base) * mult) >> shift`
/// (as `arch::apic::uptime_ns` computes them), CLOCK_REALTIME is that plus
/// `realtime_offset`. The sequence count is odd while the page changes; readers retry
/// (`vdso_write_begin`, `vdso_write_end`; x86 keeps stores in order, the fences keep the
/// compiler from moving them).
pub fn publish_clock(tsc_base: u64, mult: u64, shift: u32, realtime_offset: i64) {
    let Some(images) = IMAGES.get() else { return };
    let page = images.vvar.inode().and_then(|i| i.page_cache()).and_then(|c| c.find(0)).expect("the vvar page");
    let mut d = images.writer.lock();
    d.seq = d.seq.wrapping_add(1);
    page.write(0, &d.seq.to_le_bytes());
    fence(Ordering::SeqCst);
    *d = VdsoData { seq: d.seq, clock_mode: VCLOCK_TSC, tsc_base, mult, shift, pad: 0, realtime_offset };
    page.write(4, &super::usercopy::as_bytes(&*d)[4..]);
    fence(Ordering::SeqCst);
    d.seq = d.seq.wrapping_add(1);
    page.write(0, &d.seq.to_le_bytes());
}

/// Maps the vvar page and the vDSO right above it in a new image (`map_vdso`), where the
/// top-down search finds room; returns the vDSO's address, AT_SYSINFO_EHDR.
pub fn map_vdso(inner: &mut MmInner) -> KResult<u64> {
    let images = images();
    let vdso_len = images.vdso.metadata().size;
    let start = inner.find_free_area(PAGE_SIZE + vdso_len, MMAP_BASE).ok_or(ENOMEM)?;
    inner.insert_vma(Vma {
        live: crate::leak::VMAS.live(),
        start,
        end: start + PAGE_SIZE,
        prot: Prot::READ,
        flags: VmFlags::empty(),
        pgoff: 0,
        backend: Backend::File(images.vvar.clone()),
        ops: Some(images.vvar_ops.clone()),
    });
    let text = start + PAGE_SIZE;
    inner.insert_vma(Vma {
        live: crate::leak::VMAS.live(),
        start: text,
        end: text + vdso_len,
        prot: Prot::READ | Prot::EXEC,
        flags: VmFlags::MAYWRITE,
        pgoff: 0,
        backend: Backend::File(images.vdso.clone()),
        ops: Some(images.vdso_ops.clone()),
    });
    Ok(text)
}

/// A `[vdso]` or `[vvar]` VMA's name.
pub fn special_name(vma: &Vma) -> Option<&'static str> {
    vma.ops.as_ref()?.as_any().downcast_ref::<SpecialMapping>().map(|s| s.name)
}
