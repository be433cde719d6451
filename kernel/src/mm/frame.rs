//! The global physical frame allocator: the `frame_alloc` buddy allocator
//! over the PVH memory map, its metadata placed in the first free RAM that
//! fits. Lock order: this lock is the innermost (nothing is taken under it).
//!
//! Like Linux's zone watermarks (mm/page_alloc.c), a reserve of `min_free_frames`
//! is kept for the kernel's own allocations (heap growth, kernel page tables):
//! allocations made on behalf of a process (its pages, page tables and kernel
//! stacks, which killing it gives back) stop at the reserve and leave the rest
//! to the OOM killer (`mm/oom_kill.rs`).

use super::{align_down, align_up, phys_to_virt, PAGE_SIZE};
use crate::arch::pvh::{BootInfo, MEMMAP_RAM};
use crate::sync::IrqMutex as Mutex;
use arrayvec::ArrayVec;
use frame_alloc::{FrameAllocator, FrameMeta};

static ALLOCATOR: Mutex<Option<FrameAllocator<'static>>, crate::sync::order::FrameAllocator> = Mutex::new(None);

/// Usable RAM not yet given to the allocator: ranges above 4 GiB wait until
/// the kernel's own direct map covers them (see `add_high_memory`).
static PENDING_HIGH: Mutex<ArrayVec<(u64, u64), 64>, crate::sync::order::PendingHigh> =
    Mutex::new(ArrayVec::new_const());

/// Physical memory the boot page tables reach through the direct map.
pub const BOOT_MAPPED_LIMIT: u64 = 4 << 30;

/// A physical frame address, 4 KiB aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhysFrame(pub u64);

impl PhysFrame {
    pub fn addr(self) -> u64 {
        self.0
    }
    pub fn pfn(self) -> u64 {
        self.0 / PAGE_SIZE
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FrameStats {
    /// Frames the allocator manages (usable RAM minus kernel, initramfs, metadata).
    pub usable: u64,
    pub free: u64,
    /// All RAM the memory map reports.
    pub ram_bytes: u64,
}

static RAM_BYTES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The min watermark in frames (see `set_min_free`).
static MIN_FREE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Linux's `min_free_kbytes` (`calculate_min_free_kbytes`): sqrt(16 × managed KiB),
/// clamped to 128 KiB..256 MiB; 2.8 MiB for 512 MiB of RAM, 4 MiB for 1 GiB.
fn set_min_free(alloc: &FrameAllocator<'_>) {
    let kbytes = alloc.usable_frames() * (PAGE_SIZE / 1024);
    let min_kbytes = isqrt(kbytes * 16).clamp(128, 256 << 10);
    MIN_FREE.store(min_kbytes / (PAGE_SIZE / 1024), core::sync::atomic::Ordering::Relaxed);
}

/// The integer square root (Linux's `int_sqrt`), by bisection.
fn isqrt(n: u64) -> u64 {
    let (mut lo, mut hi) = (0u64, 1u64 << 32);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if mid * mid <= n {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// How many times `alloc_frames_above_min` refused, ever: a system call compares it
/// before and after to learn that its ENOMEM came from the watermark.
static REFUSED_ABOVE_MIN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

pub fn refused_above_min() -> u64 {
    REFUSED_ABOVE_MIN.load(core::sync::atomic::Ordering::Relaxed)
}

/// Frames only the kernel's own allocations may take (the min watermark).
pub fn min_free_frames() -> u64 {
    MIN_FREE.load(core::sync::atomic::Ordering::Relaxed)
}

type Ranges = ArrayVec<(u64, u64), 128>;

/// Free frames as of the allocator's last change (Linux's NR_FREE_PAGES counter), for the
/// checks that only compare it with a watermark and must not take the allocator's lock on
/// every system call (`oom_kill::refill_reserve`).
static FREE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn note_free(a: &FrameAllocator) {
    FREE.store(a.free_frames(), core::sync::atomic::Ordering::Relaxed);
}

/// Free frames, without the allocator's lock: exact as of its last change.
pub fn free_frames_now() -> u64 {
    FREE.load(core::sync::atomic::Ordering::Relaxed)
}

/// Removes `[start, end)` from every range in `ranges`.
fn subtract(ranges: &mut Ranges, start: u64, end: u64) {
    let mut out = Ranges::new();
    for &(s, e) in ranges.iter() {
        if e <= start || s >= end {
            out.push((s, e));
            continue;
        }
        if s < start {
            out.push((s, start));
        }
        if e > end {
            out.push((end, e));
        }
    }
    *ranges = out;
}

/// Builds the allocator from the memory map. Memory below 1 MiB, the kernel
/// image and the initramfs are never handed out.
pub fn init(boot: &BootInfo) {
    let mut ranges = Ranges::new();
    let mut ram = 0;
    for e in boot.memmap.iter().filter(|e| e.kind == MEMMAP_RAM) {
        ram += e.size;
        let (s, end) = (align_up(e.addr, PAGE_SIZE), align_down(e.addr + e.size, PAGE_SIZE));
        if s < end {
            let _ = ranges.try_push((s, end));
        }
    }
    RAM_BYTES.store(ram, core::sync::atomic::Ordering::Relaxed);
    let (_, kernel_end) = super::kernel_phys_range();
    subtract(&mut ranges, 0, align_up(kernel_end, PAGE_SIZE));
    if let Some((s, e)) = boot.initrd {
        subtract(&mut ranges, align_down(s, PAGE_SIZE), align_up(e, PAGE_SIZE));
    }
    let base_pfn = ranges.iter().map(|r| r.0).min().expect("no usable RAM") / PAGE_SIZE;
    let end_pfn = ranges.iter().map(|r| r.1).max().unwrap() / PAGE_SIZE;
    let frames = end_pfn - base_pfn;
    let meta_bytes = align_up(frames * core::mem::size_of::<FrameMeta>() as u64, PAGE_SIZE);
    let meta_at = ranges
        .iter()
        .find(|&&(s, e)| e - s >= meta_bytes && s + meta_bytes <= BOOT_MAPPED_LIMIT)
        .map(|r| r.0)
        .expect("no room for frame metadata below 4 GiB");
    subtract(&mut ranges, meta_at, meta_at + meta_bytes);

    // SAFETY: [meta_at, meta_at + meta_bytes) is usable RAM below 4 GiB, reachable through the
    // boot direct map and, later, the kernel's; it was removed from the ranges given to the
    // allocator, so nothing else will ever alias it. FrameAllocator::new initializes every entry.
    let meta = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(meta_at) as *mut FrameMeta, frames as usize) };
    let mut alloc = FrameAllocator::new(meta, base_pfn);
    let mut high = PENDING_HIGH.lock();
    for &(s, e) in ranges.iter() {
        let low_end = e.min(BOOT_MAPPED_LIMIT);
        if s < low_end {
            alloc.add_free_range(s / PAGE_SIZE, low_end / PAGE_SIZE);
        }
        if e > BOOT_MAPPED_LIMIT {
            let _ = high.try_push((s.max(BOOT_MAPPED_LIMIT), e));
        }
    }
    log::info!(
        "frames: {} MiB RAM, {} usable frames, metadata {} KiB at {:#x}",
        ram >> 20,
        alloc.usable_frames(),
        meta_bytes >> 10,
        meta_at
    );
    set_min_free(&alloc);
    note_free(&alloc);
    *ALLOCATOR.lock() = Some(alloc);
}

/// Hands RAM above 4 GiB to the allocator once the kernel's direct map covers it.
pub fn add_high_memory() {
    let mut high = PENDING_HIGH.lock();
    let mut guard = ALLOCATOR.lock();
    let alloc = guard.as_mut().expect("frame allocator not initialized");
    for (s, e) in high.drain(..) {
        alloc.add_free_range(s / PAGE_SIZE, e / PAGE_SIZE);
    }
    set_min_free(alloc);
    note_free(alloc);
}

/// Allocates 2^order contiguous frames, optionally all below `limit` (physical).
/// May fail by injection (`fail_page_alloc=`, see `mm/fail.rs`).
pub fn alloc_frames(order: usize, limit: Option<u64>) -> Option<PhysFrame> {
    if super::fail::should_fail_alloc_page() {
        return None;
    }
    alloc_frames_nofail(order, limit)
}

/// `alloc_frames` exempt from failure injection (Linux's `__GFP_NOFAIL`): for
/// the heap's growth and the kernel's page tables, whose users cannot fail.
/// Real exhaustion still returns None.
pub fn alloc_frames_nofail(order: usize, limit: Option<u64>) -> Option<PhysFrame> {
    let mut guard = ALLOCATOR.lock();
    let alloc = guard.as_mut()?;
    let r = match limit {
        Some(l) => alloc.alloc_below(order, l / PAGE_SIZE),
        None => alloc.alloc(order),
    };
    note_free(alloc);
    r.ok().map(|pfn| PhysFrame(pfn * PAGE_SIZE))
}

/// Allocates 2^order contiguous frames for a process (its pages, page tables,
/// kernel stacks) unless that would leave fewer than `min_free_frames` free:
/// None then is the caller's cue for the OOM killer (`oom_kill::out_of_memory`).
pub fn alloc_frames_above_min(order: usize) -> Option<PhysFrame> {
    if super::fail::should_fail_alloc_page() {
        return None;
    }
    let mut guard = ALLOCATOR.lock();
    let alloc = guard.as_mut()?;
    if alloc.free_frames() < min_free_frames() + (1 << order) {
        REFUSED_ABOVE_MIN.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        return None;
    }
    let r = alloc.alloc(order);
    note_free(alloc);
    r.ok().map(|pfn| PhysFrame(pfn * PAGE_SIZE))
}

/// Allocates one frame and fills it with zeroes.
pub fn alloc_zeroed_frame() -> Option<PhysFrame> {
    let f = alloc_frames(0, None)?;
    zero_frame(f);
    Some(f)
}

/// Allocates one frame for a process above the min watermark and fills it with zeroes.
pub fn alloc_zeroed_frame_above_min() -> Option<PhysFrame> {
    let f = alloc_frames_above_min(0)?;
    zero_frame(f);
    Some(f)
}

pub fn zero_frame(f: PhysFrame) {
    // SAFETY: `f` was just handed out by the allocator, so it is RAM the caller owns, and the
    // direct map covers it.
    unsafe { core::ptr::write_bytes(phys_to_virt(f.addr()) as *mut u8, 0, PAGE_SIZE as usize) }
}

/// Returns frames to the allocator. A bad free (double free, wrong order) is a
/// kernel bug: it is reported and the frames stay where they are.
pub fn free_frames(frame: PhysFrame, order: usize) {
    let mut guard = ALLOCATOR.lock();
    if let Some(alloc) = guard.as_mut() {
        if let Err(e) = alloc.free(frame.pfn(), order) {
            drop(guard);
            panic!("bad frame free {:#x} order {}: {:?}", frame.addr(), order, e);
        }
        note_free(alloc);
    }
}

pub fn stats() -> FrameStats {
    let guard = ALLOCATOR.lock();
    let (usable, free) = guard.as_ref().map(|a| (a.usable_frames(), a.free_frames())).unwrap_or((0, 0));
    FrameStats { usable, free, ram_bytes: RAM_BYTES.load(core::sync::atomic::Ordering::Relaxed) }
}

pub fn is_allocated(frame: PhysFrame) -> bool {
    ALLOCATOR.lock().as_ref().is_some_and(|a| a.is_allocated(frame.pfn()))
}

/// The pfn range the allocator's metadata covers.
pub fn pfn_range() -> (u64, u64) {
    let guard = ALLOCATOR.lock();
    let a = guard.as_ref().expect("frame allocator not initialized");
    (a.base_pfn(), a.end_pfn())
}

/// Frames in use by everything but the kernel heap and the kernel's own page
/// tables, which grow on demand and never shrink: the number leak checks compare.
pub fn frames_in_use() -> u64 {
    let s = stats();
    (s.usable - s.free) - super::heap::frames() - super::kernel_map::kernel_table_pages()
}
