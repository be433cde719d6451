//! Per-frame reference counts for pages mapped into user address spaces
//! (Linux's `struct page` `_refcount`, only the part we need so far). A frame
//! shared copy-on-write after fork, or mapped by several processes, is freed
//! when the last reference goes (`put_page`).

use super::frame::{self, PhysFrame};
use super::PAGE_SIZE;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Once;

struct PageDb {
    base_pfn: u64,
    refs: &'static [AtomicU32],
}

static PAGES: Once<PageDb> = Once::new();

/// Frames handed to user mappings and not yet freed (for leak checks).
static USER_PAGES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Allocates the refcount array over every frame the allocator manages (4 bytes a frame).
pub fn init() {
    let (base, end) = frame::pfn_range();
    let mut v = Vec::with_capacity((end - base) as usize);
    v.resize_with((end - base) as usize, || AtomicU32::new(0));
    PAGES.call_once(|| PageDb { base_pfn: base, refs: v.leak() });
}

fn slot(pa: u64) -> &'static AtomicU32 {
    let db = PAGES.get().expect("page db not initialized");
    &db.refs[(pa / PAGE_SIZE - db.base_pfn) as usize]
}

/// A fresh zeroed frame with one reference, or None when memory is exhausted.
pub fn alloc_user_page() -> Option<u64> {
    let f = frame::alloc_zeroed_frame()?;
    slot(f.addr()).store(1, Ordering::Relaxed);
    USER_PAGES.fetch_add(1, Ordering::Relaxed);
    Some(f.addr())
}

/// Takes another reference to a mapped page.
pub fn get_page(pa: u64) {
    let old = slot(pa).fetch_add(1, Ordering::Relaxed);
    debug_assert!(old > 0, "get_page on a free page {:#x}", pa);
}

/// Drops a reference; the frame is freed with the last one.
pub fn put_page(pa: u64) {
    let old = slot(pa).fetch_sub(1, Ordering::AcqRel);
    assert!(old > 0, "put_page on a free page {:#x}", pa);
    if old == 1 {
        USER_PAGES.fetch_sub(1, Ordering::Relaxed);
        frame::free_frames(PhysFrame(pa), 0);
    }
}

pub fn page_count(pa: u64) -> u32 {
    slot(pa).load(Ordering::Relaxed)
}

pub fn user_pages() -> u64 {
    USER_PAGES.load(Ordering::Relaxed)
}
