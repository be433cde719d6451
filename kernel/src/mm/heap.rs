//! The kernel heap: `linked_list_allocator` (the allocator blog_os and many
//! hobby kernels use; small, no_std, supports growing in place) over a
//! virtual region at `HEAP_BASE` that grows a page at a time from the frame
//! allocator when an allocation does not fit.
//!
//! Lock order: heap → kernel page table → frame allocator. Growing the heap
//! never allocates from the heap (the page-table code needs no heap).

use super::frame::{self, PhysFrame};
use super::{align_up, kernel_map, HEAP_BASE, HEAP_MAX, PAGE_SIZE};
use crate::sync::IrqMutex as Mutex;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use linked_list_allocator::Heap;
use page_table::PteFlags;

const INITIAL_HEAP: u64 = 1 << 20;
const MIN_GROWTH: u64 = 256 << 10;

pub struct KernelHeap {
    heap: Mutex<Heap, crate::sync::order::Heap>,
}

/// Frames currently mapped into the heap region.
static HEAP_FRAMES: AtomicU64 = AtomicU64::new(0);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap { heap: Mutex::new(Heap::empty()) };

/// Maps `bytes` more at `top`. On exhaustion, unmaps what it mapped.
fn map_more(top: u64, bytes: u64) -> bool {
    let flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_EXECUTE;
    let mut va = top;
    while va < top + bytes {
        let ok = match frame::alloc_frames_nofail(0, None) {
            Some(f) => {
                if kernel_map::map_kernel_page(va, f.addr(), flags).is_ok() {
                    true
                } else {
                    frame::free_frames(f, 0);
                    false
                }
            }
            None => false,
        };
        if !ok {
            while va > top {
                va -= PAGE_SIZE;
                let m = kernel_map::unmap_kernel_page(va).expect("heap page vanished");
                frame::free_frames(PhysFrame(m.phys), 0);
                HEAP_FRAMES.fetch_sub(1, Ordering::Relaxed);
            }
            return false;
        }
        HEAP_FRAMES.fetch_add(1, Ordering::Relaxed);
        va += PAGE_SIZE;
    }
    true
}

pub fn init() {
    assert!(map_more(HEAP_BASE, INITIAL_HEAP), "no memory for the initial kernel heap");
    // SAFETY: [HEAP_BASE, HEAP_BASE + INITIAL_HEAP) was just mapped writable and is used by
    // nothing else.
    unsafe { HEAP.heap.lock().init(HEAP_BASE as *mut u8, INITIAL_HEAP as usize) };
}

unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Only allocations inside `fail::fallible` can see a failure and may be failed.
        if super::fail::should_failslab() {
            return core::ptr::null_mut();
        }
        let mut heap = self.heap.lock();
        if let Ok(p) = heap.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        let top = heap.top() as u64;
        let want = align_up((layout.size() + layout.align()) as u64, PAGE_SIZE).max(MIN_GROWTH);
        if top + want > HEAP_BASE + HEAP_MAX || !map_more(top, want) {
            return core::ptr::null_mut();
        }
        // SAFETY: [top, top + want) is now mapped and directly follows the heap's current top.
        unsafe { heap.extend(want as usize) };
        heap.allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: ptr came from `alloc` with this layout.
        unsafe { self.heap.lock().deallocate(NonNull::new_unchecked(ptr), layout) }
    }
}

pub struct HeapStats {
    pub mapped_bytes: u64,
    pub used_bytes: u64,
    pub frames: u64,
}

pub fn stats() -> HeapStats {
    let h = HEAP.heap.lock();
    HeapStats {
        mapped_bytes: h.size() as u64,
        used_bytes: h.used() as u64,
        frames: HEAP_FRAMES.load(Ordering::Relaxed),
    }
}

/// Frames the heap holds, so leak checks can tell heap growth from a leak.
pub fn frames() -> u64 {
    HEAP_FRAMES.load(Ordering::Relaxed)
}
