//! Buddy allocator for physical page frames.
//!
//! The kernel needs physical frames before it has a heap, so everything lives in
//! caller-provided storage: one [`FrameMeta`] per frame plus a few fixed-size arrays in
//! [`FrameAllocator`]. Free blocks are kept on intrusive doubly-linked lists (one per
//! order) threaded through the metadata, so a buddy can be unlinked in O(1) while merging.
//!
//! Only the *head* frame of a block records the block's order and whether it is free or
//! allocated; the other frames are plain "tail" frames. Splitting or merging therefore
//! touches O(1) frames per level instead of the whole block (a 1 GiB block has 262144
//! frames). The block containing an arbitrary frame is found by probing the at most
//! `MAX_ORDER + 1` aligned candidate heads below it (see [`FrameAllocator::is_allocated`]).
//!
//! Buddy alignment is relative to absolute pfn 0, not to `base_pfn`: a block of order `k`
//! always starts at a multiple of `2^k`, so blocks can be mapped with large pages.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// Size of one frame in bytes.
pub const PAGE_SIZE: u64 = 4096;
/// Largest block = 2^MAX_ORDER frames (1 GiB).
pub const MAX_ORDER: usize = 18;

/// "No frame" link value; also why the allocator covers at most `u32::MAX` frames.
const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum State {
    /// Not usable memory (never added, or outside every block).
    Reserved,
    /// Usable frame that is not the first frame of its (free or allocated) block.
    Tail,
    /// First frame of a free block; `order` is valid and the frame is on a free list.
    FreeHead,
    /// First frame of an allocated block; `order` is valid.
    AllocHead,
}

/// Per-frame metadata owned by the allocator (12 bytes).
///
/// The caller provides a slice of these, one per frame; the links are `u32` indices into
/// that slice rather than pointers to keep the entry small and the code free of `unsafe`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct FrameMeta {
    next: u32,
    prev: u32,
    order: u8,
    state: State,
}

const _: () = assert!(core::mem::size_of::<FrameMeta>() <= 12);

impl FrameMeta {
    /// A reserved (unusable) frame; use it to initialise the metadata array.
    pub const INIT: FrameMeta = FrameMeta { next: NIL, prev: NIL, order: 0, state: State::Reserved };
}

impl Default for FrameMeta {
    fn default() -> Self {
        Self::INIT
    }
}

/// Why an allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// No free block of the requested order (satisfying the limit, if any).
    OutOfMemory,
    /// `order > MAX_ORDER`.
    OrderTooLarge,
}

/// Why a free was rejected. The allocator state is unchanged in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The pfn is not covered by the metadata array.
    OutOfRange,
    /// The pfn is not a multiple of `2^order`.
    Misaligned,
    /// The frame is already free.
    DoubleFree,
    /// The frame lies inside an allocated block but is not its first frame.
    NotAllocated,
    /// The block was allocated with a different order.
    WrongOrder,
    /// The frame was never made usable.
    Reserved,
}

/// Buddy allocator over the frames `[base_pfn, base_pfn + meta.len())`.
pub struct FrameAllocator<'a> {
    meta: &'a mut [FrameMeta],
    base: u64,
    /// Head index of the free list of each order (`NIL` if empty).
    heads: [u32; MAX_ORDER + 1],
    /// Number of blocks on each free list.
    counts: [u64; MAX_ORDER + 1],
    free: u64,
    usable: u64,
}

impl<'a> FrameAllocator<'a> {
    /// Creates an allocator where all frames start reserved (unusable); `meta[i]`
    /// describes pfn `base_pfn + i`. The slice is reset to [`FrameMeta::INIT`], so it may
    /// hold garbage. Coverage is clipped to `u32::MAX` frames (links are `u32`) and so
    /// that no pfn overflows, rather than panicking.
    pub fn new(meta: &'a mut [FrameMeta], base_pfn: u64) -> Self {
        let max = usize::try_from(u64::MAX - base_pfn).unwrap_or(usize::MAX);
        let len = meta.len().min(NIL as usize).min(max);
        let (meta, _) = meta.split_at_mut(len);
        meta.fill(FrameMeta::INIT);
        Self { meta, base: base_pfn, heads: [NIL; MAX_ORDER + 1], counts: [0; MAX_ORDER + 1], free: 0, usable: 0 }
    }

    /// First pfn covered by the allocator.
    pub fn base_pfn(&self) -> u64 {
        self.base
    }

    /// One past the last pfn covered by the allocator.
    pub fn end_pfn(&self) -> u64 {
        self.base + self.meta.len() as u64
    }

    /// Makes frames `[start_pfn, end_pfn)` usable (clipped to the covered range).
    ///
    /// Only reserved frames are added: frames that are already free or allocated are
    /// skipped, so overlapping or repeated calls (e.g. from a messy firmware memory map)
    /// cannot corrupt the lists. Each run of reserved frames is cut into the largest
    /// aligned blocks possible, which are then merged with free neighbours.
    pub fn add_free_range(&mut self, start_pfn: u64, end_pfn: u64) {
        let mut p = start_pfn.max(self.base);
        let end = end_pfn.min(self.end_pfn());
        while p < end {
            if self.meta[self.index(p)].state != State::Reserved {
                p += 1;
                continue;
            }
            // Claim the whole run of reserved frames first, so carving it into blocks
            // never has to look at frames of unknown state.
            let mut q = p;
            while q < end && self.meta[self.index(q)].state == State::Reserved {
                self.meta[self.index(q)].state = State::Tail;
                q += 1;
            }
            self.usable += q - p;
            // Carve from the top down so the lowest blocks end up first on the (LIFO)
            // free lists and are handed out first.
            let mut top = q;
            while top > p {
                let order = (top.trailing_zeros() as usize).min(MAX_ORDER).min((top - p).ilog2() as usize);
                top -= 1 << order;
                self.insert_free(self.index(top), order);
            }
            p = q;
        }
    }

    /// Allocates `2^order` contiguous frames aligned to `2^order`; returns the first pfn.
    ///
    /// Takes the most recently freed block of the smallest sufficient order (LIFO: cheap
    /// and cache-friendly), splitting it and returning the upper halves to the free lists
    /// so the lower part of the address space is used first.
    pub fn alloc(&mut self, order: usize) -> Result<u64, AllocError> {
        self.alloc_below(order, u64::MAX)
    }

    /// Like [`alloc`](Self::alloc) but only returns a block whose last frame is
    /// `< limit_pfn` (for use while only low memory is mapped).
    ///
    /// Free lists are searched (not just their heads) for a block starting low enough;
    /// since splitting keeps the lower half, a larger block qualifies if its first
    /// `2^order` frames are below the limit.
    pub fn alloc_below(&mut self, order: usize, limit_pfn: u64) -> Result<u64, AllocError> {
        if order > MAX_ORDER {
            return Err(AllocError::OrderTooLarge);
        }
        for mut k in order..=MAX_ORDER {
            let mut i = self.heads[k];
            while i != NIL {
                let pfn = self.pfn(i as usize);
                if pfn < limit_pfn && limit_pfn - pfn >= 1 << order {
                    let i = i as usize;
                    self.remove(i);
                    while k > order {
                        k -= 1;
                        self.push(i + (1 << k), k);
                    }
                    self.meta[i].state = State::AllocHead;
                    self.meta[i].order = order as u8;
                    return Ok(pfn);
                }
                i = self.meta[i as usize].next;
            }
        }
        Err(AllocError::OutOfMemory)
    }

    /// Frees a block returned by [`alloc`](Self::alloc)/[`alloc_below`](Self::alloc_below)
    /// with the same order, coalescing it with free buddies.
    ///
    /// Checks, in order: range, alignment, then the state of the frame (see
    /// [`FreeError`]). On error nothing is modified, so a buggy caller is reported rather
    /// than silently corrupting the free lists.
    pub fn free(&mut self, pfn: u64, order: usize) -> Result<(), FreeError> {
        let i = self.try_index(pfn).ok_or(FreeError::OutOfRange)?;
        // An order above MAX_ORDER is never valid; the state check reports it (WrongOrder).
        if order <= MAX_ORDER && !pfn.is_multiple_of(1 << order) {
            return Err(FreeError::Misaligned);
        }
        let m = self.meta[i];
        match m.state {
            State::Reserved => return Err(FreeError::Reserved),
            State::FreeHead => return Err(FreeError::DoubleFree),
            State::AllocHead if m.order as usize != order => return Err(FreeError::WrongOrder),
            State::AllocHead => {}
            State::Tail => {
                return Err(match self.block_of(i).map(|h| self.meta[h].state) {
                    Some(State::AllocHead) => FreeError::NotAllocated,
                    _ => FreeError::DoubleFree,
                })
            }
        }
        self.insert_free(i, order);
        Ok(())
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// Frames ever added as usable (free + allocated).
    pub fn usable_frames(&self) -> u64 {
        self.usable
    }

    /// Frames currently allocated.
    pub fn allocated_frames(&self) -> u64 {
        self.usable - self.free
    }

    /// Number of free blocks of `order` (0 if `order > MAX_ORDER`).
    pub fn free_blocks(&self, order: usize) -> u64 {
        self.counts.get(order).copied().unwrap_or(0)
    }

    /// Whether `pfn` is currently part of an allocated block.
    pub fn is_allocated(&self, pfn: u64) -> bool {
        self.try_index(pfn).and_then(|i| self.block_of(i)).is_some_and(|h| self.meta[h].state == State::AllocHead)
    }

    /// Returns the first pfn and order of the allocated block containing `pfn`, if any.
    pub fn allocated_block(&self, pfn: u64) -> Option<(u64, usize)> {
        let h = self.block_of(self.try_index(pfn)?)?;
        let m = self.meta[h];
        (m.state == State::AllocHead).then(|| (self.pfn(h), m.order as usize))
    }

    fn try_index(&self, pfn: u64) -> Option<usize> {
        let i = usize::try_from(pfn.checked_sub(self.base)?).ok()?;
        (i < self.meta.len()).then_some(i)
    }

    /// Index of a pfn known to be covered.
    fn index(&self, pfn: u64) -> usize {
        (pfn - self.base) as usize
    }

    fn pfn(&self, i: usize) -> u64 {
        self.base + i as u64
    }

    /// Index of the head of the block containing frame `i`, if any.
    ///
    /// A block of order `k` containing `pfn` starts at `pfn` rounded down to `2^k`, so only
    /// `MAX_ORDER + 1` candidates exist. Head markers are always accurate (a frame stops
    /// being marked a head when its block is merged away), and blocks are disjoint, so
    /// the first head whose block reaches `pfn` is the one.
    fn block_of(&self, i: usize) -> Option<usize> {
        let pfn = self.pfn(i);
        for k in 0..=MAX_ORDER {
            let h = self.try_index(pfn & !((1u64 << k) - 1))?;
            let m = self.meta[h];
            match m.state {
                // A block containing `pfn` that started before `h` would contain `h`.
                State::Reserved => return None,
                State::Tail => {}
                State::FreeHead | State::AllocHead => {
                    if self.pfn(h) + (1u64 << m.order) > pfn {
                        return Some(h);
                    }
                }
            }
        }
        None
    }

    /// Puts the block at `i` on the free lists, first merging it with free buddies.
    fn insert_free(&mut self, mut i: usize, mut order: usize) {
        while order < MAX_ORDER {
            let buddy = self.try_index(self.pfn(i) ^ (1 << order));
            let Some(b) =
                buddy.filter(|&b| self.meta[b].state == State::FreeHead && self.meta[b].order as usize == order)
            else {
                break;
            };
            self.remove(b);
            // The upper half's head becomes an interior frame of the merged block.
            self.meta[i.max(b)].state = State::Tail;
            i = i.min(b);
            order += 1;
        }
        self.push(i, order);
    }

    /// Marks frame `i` as the head of a free block of `order` and links it first.
    fn push(&mut self, i: usize, order: usize) {
        let next = self.heads[order];
        self.meta[i] = FrameMeta { next, prev: NIL, order: order as u8, state: State::FreeHead };
        if next != NIL {
            self.meta[next as usize].prev = i as u32;
        }
        self.heads[order] = i as u32;
        self.counts[order] += 1;
        self.free += 1 << order;
    }

    /// Unlinks the free block headed by `i`; the caller updates its state.
    fn remove(&mut self, i: usize) {
        let FrameMeta { next, prev, order, .. } = self.meta[i];
        let order = order as usize;
        match prev {
            NIL => self.heads[order] = next,
            p => self.meta[p as usize].next = next,
        }
        if next != NIL {
            self.meta[next as usize].prev = prev;
        }
        self.meta[i].next = NIL;
        self.meta[i].prev = NIL;
        self.counts[order] -= 1;
        self.free -= 1 << order;
    }
}

#[cfg(test)]
mod tests;
