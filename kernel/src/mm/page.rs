//! Per-frame state for pages that user space can map (Linux's `struct page`,
//! only the parts we need): a reference count, a map count and what kind of
//! page it is. A frame shared copy-on-write after fork, mapped by several
//! processes or held by a page cache is freed when the last reference goes
//! (`put_page`). The map count is the number of page-table entries that map
//! the frame (Linux's `_mapcount`, mm/rmap.c): smaps divides a page among
//! them (Pss), and pagemap calls a page with one mapping exclusive. The kind
//! decides which RSS counter a mapping of it moves (anon, file, shmem), as
//! Linux's `mm_counter`. A page-table page keeps its owner (`PtOwner`, the address
//! space that allocated it) where a page keeps its map count, as Linux's `struct page`
//! keeps `pt_mm` in a union.
//!
//! The shared zero page (Linux's `ZERO_PAGE`/`my_zero_pfn`, mm/memory.c):
//! one zero-filled frame, allocated at boot and never freed, that read faults
//! on private anonymous memory map read-only. It is nobody's memory: taking
//! or dropping a reference or a mapping of it does nothing, and no RSS
//! counter moves for it (`mm_counter` is None), so every path that copies or
//! drops entries (fork, zap, mremap) handles it without knowing it.

use super::frame::{self, PhysFrame};
use super::PAGE_SIZE;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use spin::Once;

/// What a user-mappable page holds; indexes `MmInner::rss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageKind {
    /// Private memory: anonymous pages and copy-on-write copies (MM_ANONPAGES).
    Anon = 0,
    /// Page cache of a regular, non-shmem file (MM_FILEPAGES).
    File = 1,
    /// Page cache of tmpfs/shmem (MM_SHMEMPAGES).
    Shmem = 2,
}

impl PageKind {
    fn from_u8(v: u8) -> PageKind {
        match v {
            1 => PageKind::File,
            2 => PageKind::Shmem,
            _ => PageKind::Anon,
        }
    }
}

struct PageDb {
    base_pfn: u64,
    refs: &'static [AtomicU32],
    maps: &'static [AtomicU32],
    kinds: &'static [AtomicU8],
}

static PAGES: Once<PageDb> = Once::new();

/// The physical address of the shared zero page (set once by `init`).
static ZERO_PAGE: AtomicU64 = AtomicU64::new(0);

/// Frames handed out through `alloc_user_page` and not yet freed (leak checks).
static USER_PAGES: AtomicU64 = AtomicU64::new(0);

/// Allocates the per-frame arrays over every frame the allocator manages (9 bytes a
/// frame) and the shared zero page.
pub fn init() {
    let (base, end) = frame::pfn_range();
    let n = (end - base) as usize;
    let mut refs = Vec::with_capacity(n);
    refs.resize_with(n, || AtomicU32::new(0));
    let mut maps = Vec::with_capacity(n);
    maps.resize_with(n, || AtomicU32::new(0));
    let mut kinds = Vec::with_capacity(n);
    kinds.resize_with(n, || AtomicU8::new(0));
    PAGES.call_once(|| PageDb { base_pfn: base, refs: refs.leak(), maps: maps.leak(), kinds: kinds.leak() });
    // Exempt from failure injection: the kernel cannot run without it.
    let zero = frame::alloc_frames_nofail(0, None).expect("no frame for the zero page at boot");
    frame::zero_frame(zero);
    slot(zero.addr()).store(1, Ordering::Relaxed);
    ZERO_PAGE.store(zero.addr(), Ordering::Relaxed);
}

/// The shared zero page.
pub fn zero_page() -> u64 {
    ZERO_PAGE.load(Ordering::Relaxed)
}

/// Whether `pa` is the shared zero page (Linux's `is_zero_pfn`).
pub fn is_zero_page(pa: u64) -> bool {
    pa == zero_page()
}

fn index(pa: u64) -> usize {
    let db = PAGES.get().expect("page db not initialized");
    (pa / PAGE_SIZE - db.base_pfn) as usize
}

fn slot(pa: u64) -> &'static AtomicU32 {
    &PAGES.get().unwrap().refs[index(pa)]
}

/// A fresh zeroed frame of `kind` with one reference, or None when only the
/// kernel's reserve is left (the caller's cue for the OOM killer).
pub fn alloc_user_page_of(kind: PageKind) -> Option<u64> {
    let f = frame::alloc_zeroed_frame_above_min()?;
    slot(f.addr()).store(1, Ordering::Relaxed);
    map_slot(f.addr()).store(0, Ordering::Relaxed);
    PAGES.get().unwrap().kinds[index(f.addr())].store(kind as u8, Ordering::Relaxed);
    USER_PAGES.fetch_add(1, Ordering::Relaxed);
    Some(f.addr())
}

/// A fresh zeroed anonymous page with one reference.
pub fn alloc_user_page() -> Option<u64> {
    alloc_user_page_of(PageKind::Anon)
}

/// The kind byte's bit for a page whose data was written since it was made (Linux's
/// PG_dirty): written through write(2) or a copy into user memory, or by the CPU through a
/// mapping whose entry is gone (`zap_pte_range`'s transfer of the entry's dirty bit). With no
/// writeback here it stays until the page is freed; smaps counts the page as dirty.
const PG_DIRTY: u8 = 0x80;

/// Marks `pa` dirty (`set_page_dirty`); the zero page never is.
pub fn set_page_dirty(pa: u64) {
    if is_zero_page(pa) {
        return;
    }
    // A load first: every copy to user memory marks its pages, most of them dirty already.
    let k = &PAGES.get().unwrap().kinds[index(pa)];
    if k.load(Ordering::Relaxed) & PG_DIRTY == 0 {
        k.fetch_or(PG_DIRTY, Ordering::Relaxed);
    }
}

/// Whether `pa` is dirty (`PageDirty`).
pub fn page_dirty(pa: u64) -> bool {
    PAGES.get().unwrap().kinds[index(pa)].load(Ordering::Relaxed) & PG_DIRTY != 0
}

pub fn kind(pa: u64) -> PageKind {
    PageKind::from_u8(PAGES.get().unwrap().kinds[index(pa)].load(Ordering::Relaxed) & !PG_DIRTY)
}

/// The RSS counter a mapping of `pa` moves (Linux's `mm_counter`); None for the
/// zero page, which no counter includes.
pub fn mm_counter(pa: u64) -> Option<PageKind> {
    (!is_zero_page(pa)).then(|| kind(pa))
}

/// Who owns a user page-table page: the one that allocated it, edits its entries and is
/// charged for it (VmPTE, PageTables). Others may graft the table (mshare) and then hold a
/// reference, but never edit or pay for it. An id, not a pointer, so that a table can outlive
/// its owner while grafted, and so that owners other than address spaces (an mshare region's
/// or a file's shared tables) fit in later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtOwner {
    /// An address space, by `MmStruct::id`.
    Mm(u64),
}

impl PtOwner {
    /// The owner as the page metadata keeps it (in the map-count slot, which page-table
    /// pages do not use, as Linux's `struct page` keeps `pt_mm` in a union).
    fn encode(self) -> u32 {
        match self {
            // Ids wrap after 2^31 address spaces; two live owners would have to be that far
            // apart to be confused.
            PtOwner::Mm(id) => (id as u32) & 0x7fff_ffff,
        }
    }
}

/// A zeroed frame for a user page table of `owner`, with one reference (the owner's).
/// Page-table pages are counted like pages so a table can be shared between
/// address spaces (mshare): a guest that grafts it takes a reference, and only the last
/// reference frees the frame, so a guest never frees a table it did not allocate.
/// Taken above the min watermark, as user pages: page tables are the process's
/// memory too (they count in its OOM badness) and must not drain the kernel's reserve.
pub fn alloc_table_page(owner: PtOwner) -> Option<u64> {
    let f = frame::alloc_zeroed_frame_above_min()?;
    slot(f.addr()).store(1, Ordering::Relaxed);
    map_slot(f.addr()).store(owner.encode(), Ordering::Relaxed);
    PAGES.get().unwrap().kinds[index(f.addr())].store(KIND_TABLE, Ordering::Relaxed);
    crate::leak::PT_PAGES.inc();
    Some(f.addr())
}

/// The owner of the page-table page `pa`; None if `pa` is not one.
pub fn table_owner(pa: u64) -> Option<PtOwner> {
    (PAGES.get().unwrap().kinds[index(pa)].load(Ordering::Relaxed) == KIND_TABLE)
        .then(|| PtOwner::Mm(map_slot(pa).load(Ordering::Relaxed) as u64))
}

/// Whether the page-table page `pa` belongs to `owner`.
pub fn table_owned_by(pa: u64, owner: PtOwner) -> bool {
    map_slot(pa).load(Ordering::Relaxed) == owner.encode()
}

/// Drops a reference to a page-table page; true if that freed it.
pub fn put_table_page(pa: u64) -> bool {
    let old = slot(pa).fetch_sub(1, Ordering::AcqRel);
    assert!(old > 0, "put_table_page on a free page {:#x}", pa);
    if old == 1 {
        frame::free_frames(PhysFrame(pa), 0);
        crate::leak::PT_PAGES.dec();
    }
    old == 1
}

/// The kind byte of page-table pages (not a `PageKind`: they are never mapped).
const KIND_TABLE: u8 = 3;

/// Takes another reference to a page (none for the zero page).
pub fn get_page(pa: u64) {
    if is_zero_page(pa) {
        return;
    }
    let old = slot(pa).fetch_add(1, Ordering::Relaxed);
    debug_assert!(old > 0, "get_page on a free page {:#x}", pa);
}

/// Drops a reference; the frame is freed with the last one. The zero page is never freed.
pub fn put_page(pa: u64) {
    if is_zero_page(pa) {
        return;
    }
    let old = slot(pa).fetch_sub(1, Ordering::AcqRel);
    assert!(old > 0, "put_page on a free page {:#x}", pa);
    if old == 1 {
        debug_assert!(page_mapcount(pa) == 0, "put_page freed a mapped page {:#x}", pa);
        USER_PAGES.fetch_sub(1, Ordering::Relaxed);
        frame::free_frames(PhysFrame(pa), 0);
    }
}

pub fn page_count(pa: u64) -> u32 {
    slot(pa).load(Ordering::Relaxed)
}

fn map_slot(pa: u64) -> &'static AtomicU32 {
    &PAGES.get().unwrap().maps[index(pa)]
}

/// A new page-table entry maps `pa` (Linux's `page_add_*_rmap` and
/// `page_dup_*_rmap`); the caller holds a reference for it.
pub fn page_add_rmap(pa: u64) {
    if !is_zero_page(pa) && map_slot(pa).fetch_add(1, Ordering::Relaxed) == 0 && kind(pa) != PageKind::Anon {
        FILE_MAPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A page-table entry mapping `pa` is gone (Linux's `page_remove_rmap`); its
/// reference is dropped separately (`put_page`), after the TLB flush.
pub fn page_remove_rmap(pa: u64) {
    if !is_zero_page(pa) {
        let old = map_slot(pa).fetch_sub(1, Ordering::Relaxed);
        debug_assert!(old > 0, "page_remove_rmap on an unmapped page {:#x}", pa);
        if old == 1 && kind(pa) != PageKind::Anon {
            FILE_MAPPED.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// File and shmem pages mapped by at least one page-table entry (Linux's
/// NR_FILE_MAPPED, which a page joins at its first mapping and leaves at its last:
/// the `Mapped` of /proc/meminfo).
static FILE_MAPPED: AtomicU64 = AtomicU64::new(0);

pub fn file_mapped_pages() -> u64 {
    FILE_MAPPED.load(Ordering::Relaxed)
}

/// The number of page-table entries mapping `pa` (Linux's `page_mapcount`).
pub fn page_mapcount(pa: u64) -> u32 {
    map_slot(pa).load(Ordering::Relaxed)
}

pub fn user_pages() -> u64 {
    USER_PAGES.load(Ordering::Relaxed)
}

/// One counted reference to a user-mappable page (as Asterinas' `Frame`, Linux's
/// `get_page`/`put_page` pair made a value): the frame cannot be freed while the
/// handle lives, so a copy through it never touches a frame that a concurrent
/// truncation, unmap or reclaim gave back. Cloning takes another reference, dropping
/// puts it. Code outside `mm` reaches a page's contents only through these methods,
/// never by its physical address. The zero page's handles count nothing, as its
/// references never do.
pub struct Page {
    pa: u64,
}

impl Page {
    /// A fresh zeroed page of `kind` (None when only the kernel's reserve is left).
    pub fn alloc(kind: PageKind) -> Option<Page> {
        alloc_user_page_of(kind).map(|pa| Page { pa })
    }

    /// Takes another reference to the page at `pa`, which the caller knows to be
    /// alive (it is mapped under a page-table lock the caller holds, or held by a
    /// page cache under its lock).
    pub(super) fn get(pa: u64) -> Page {
        get_page(pa);
        Page { pa }
    }

    /// Gives the reference up as a raw address, for a page-table entry that keeps
    /// it until `page_remove_rmap` and `put_page` at unmap.
    pub(super) fn into_raw(self) -> u64 {
        let pa = self.pa;
        core::mem::forget(self);
        pa
    }

    /// The physical address, for page-table code inside `mm`; the handle keeps
    /// the frame alive only as long as it lives.
    pub(super) fn phys(&self) -> u64 {
        self.pa
    }

    /// Marks the page dirty (`set_page_dirty`).
    pub fn mark_dirty(&self) {
        set_page_dirty(self.pa);
    }

    /// Copies bytes of the page from `offset` into `out` (within the page).
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        super::read_phys(self.pa + offset as u64, out)
    }

    /// Copies `data` into the page at `offset` (within the page).
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(!is_zero_page(self.pa), "write to the zero page");
        super::write_phys(self.pa + offset as u64, data)
    }

    /// Zeroes `len` bytes of the page from `offset` (within the page).
    pub fn zero(&self, offset: usize, len: usize) {
        assert!(!is_zero_page(self.pa), "write to the zero page");
        super::zero_phys(self.pa + offset as u64, len)
    }

    /// Copies the whole of `src` into this page (copy-on-write).
    pub fn copy_from(&self, src: &Page) {
        assert!(!is_zero_page(self.pa) && self.pa != src.pa, "bad page copy");
        super::copy_frame(self.pa, src.pa)
    }

    /// References to the page, this handle's included (tests, debugging).
    pub fn count(&self) -> u32 {
        page_count(self.pa)
    }

    /// Whether two handles name the same page.
    pub fn same(&self, other: &Page) -> bool {
        self.pa == other.pa
    }
}

impl Clone for Page {
    fn clone(&self) -> Page {
        Page::get(self.pa)
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        put_page(self.pa);
    }
}
