//! x86_64 4-level page tables over an abstract physical memory.
//!
//! All table accesses go through [`PhysMem`], so the same code builds the kernel's own tables
//! (over the direct map), user address spaces, and runs on the host in tests (over a HashMap).
//! The crate never frees a table by itself: it decides *when* a table became empty and hands it
//! to [`PhysMem::free_table`], which may keep share counts (tables grafted between address
//! spaces by mshare).
//!
//! Page-table ownership (Linux's mshare, where a host's tables are grafted into guests): every
//! table has one owner, the address space (or later shared-table object) that allocated it.
//! A walk is made on behalf of one owner, and [`PhysMem`] tells it which tables are someone
//! else's ([`PhysMem::is_graft`]) and which of its own are grafted elsewhere
//! ([`PhysMem::is_grafted`]). A walk never descends into a graft to edit it: removal walks drop
//! their reference to a graft when their range covers all of it (`unmap_range`,
//! `clear_user_half`, `ungraft`) and leave it otherwise; `map`, `protect`, `remap`, `unmap`,
//! `copy_range`, `protect_range` and `move_range` refuse a range that lies in one, before
//! changing anything. The owner edits its own tables normally while they are grafted, but never
//! frees one a guest still holds: a grafted table emptied by its owner stays linked (guests keep
//! seeing later mappings in it), and the owner's teardown clears its entries before dropping its
//! reference, so the guests keep a valid, empty table until they ungraft it.
//!
//! Range operations (a cursor that skips absent subtrees, fork's copy, protection changes and
//! moves a PTE table at a time) are in `cursor.rs`.
//!
//! Entries the CPU may update: a present leaf (and a table entry) can get ACCESSED and DIRTY
//! set by any CPU walking it while the walk here reads and writes it. Every write that
//! replaces a present entry therefore goes through [`PhysMem::xchg_pte`] or
//! [`PhysMem::cmpxchg_pte`] (x86's `xchg` and `lock cmpxchg`): clearing an entry returns its
//! final bits (Linux's `ptep_get_and_clear`), and changing its flags (`protect`, the write
//! protection of `copy_range`) keeps a dirty or accessed bit set meanwhile, as Linux's
//! `pte_modify` and `ptep_set_wrprotect`. Only a dead address space's teardown
//! (`clear_user_half`, on tables no CPU walks any more) uses plain writes.
//!
//! TLB invalidation is the caller's job: after `unmap`, `unmap_range`, `protect`,
//! `protect_range`, `copy_range` (write protection), `move_range` or `clear_user_half`, stale
//! translations (and paging-structure caches for freed tables) must be flushed before the
//! frames or freed tables are reused.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

use bitflags::bitflags;

pub const PAGE_SIZE: u64 = 4096;
pub const ENTRIES: usize = 512;
/// Physical address bits 12..52 of an entry.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

bitflags! {
    /// Hardware bits of a page-table entry (software-available bits are not modelled).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PteFlags: u64 {
        const PRESENT = 1;
        const WRITABLE = 1 << 1;
        const USER = 1 << 2;
        const WRITE_THROUGH = 1 << 3;
        const NO_CACHE = 1 << 4;
        const ACCESSED = 1 << 5;
        const DIRTY = 1 << 6;
        /// PS bit: the entry is a 2 MiB (PD) or 1 GiB (PDPT) leaf. On a PT entry this bit is PAT,
        /// which is why `map` only sets it for huge sizes.
        const HUGE = 1 << 7;
        const GLOBAL = 1 << 8;
        const NO_EXECUTE = 1 << 63;
    }
}

/// One raw page-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pte(pub u64);

impl Pte {
    pub const fn new(addr: u64, flags: PteFlags) -> Self {
        Pte((addr & ADDR_MASK) | flags.bits())
    }
    /// The address field. For huge leaves bit 12 is the PAT bit, so use [`Mapping::phys`]
    /// (masked to the page size) for the frame start.
    pub const fn addr(self) -> u64 {
        self.0 & ADDR_MASK
    }
    pub const fn flags(self) -> PteFlags {
        PteFlags::from_bits_truncate(self.0)
    }
    pub const fn is_present(self) -> bool {
        self.0 & PteFlags::PRESENT.bits() != 0
    }
    pub const fn is_huge(self) -> bool {
        self.0 & PteFlags::HUGE.bits() != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    Size4K,
    Size2M,
    Size1G,
}

impl PageSize {
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size1G => 1 << 30,
        }
    }
    /// The table level holding a leaf of this size (1 = PT, 2 = PD, 3 = PDPT).
    pub const fn level(self) -> usize {
        match self {
            PageSize::Size4K => 1,
            PageSize::Size2M => 2,
            PageSize::Size1G => 3,
        }
    }
    /// Inverse of [`PageSize::level`]; `None` for levels that cannot hold leaves.
    pub const fn from_level(level: usize) -> Option<Self> {
        match level {
            1 => Some(PageSize::Size4K),
            2 => Some(PageSize::Size2M),
            3 => Some(PageSize::Size1G),
            _ => None,
        }
    }
}

/// How page-table code reaches physical memory. Tables are identified by physical address.
/// The kernel implements it over its direct map (with `unsafe` in the impl); tests over a HashMap.
pub trait PhysMem {
    fn read_pte(&self, table: u64, index: usize) -> u64;
    fn write_pte(&mut self, table: u64, index: usize, value: u64);
    /// Stores `value` and returns the entry's previous value in one atomic step (x86's
    /// `xchg`): bits a CPU set until the exchange are in the result. The default, a read
    /// then a write, is right only for memory no CPU walks concurrently (tests).
    fn xchg_pte(&mut self, table: u64, index: usize, value: u64) -> u64 {
        let old = self.read_pte(table, index);
        self.write_pte(table, index, value);
        old
    }
    /// Stores `new` if the entry still holds `old`, atomically (`lock cmpxchg`): Ok(old), or
    /// Err(the value found) and nothing stored. Default as for `xchg_pte`.
    fn cmpxchg_pte(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<u64, u64> {
        let cur = self.read_pte(table, index);
        if cur == old {
            self.write_pte(table, index, new);
            Ok(old)
        } else {
            Err(cur)
        }
    }
    /// A new zero-filled table frame of `level` (4 = the root PML4, 3 = PDPT, 2 = PD,
    /// 1 = PT), or None when memory is exhausted. The level lets an implementation account
    /// tables as Linux does (its `mm_pgtables_bytes` counts PUD, PMD and PTE tables, never
    /// the PGD).
    fn alloc_table(&mut self, level: usize) -> Option<u64>;
    /// Whether `table` (below the root) belongs to another owner than the one this walk is
    /// made for: a table grafted from another address space (mshare's host page tables in a
    /// guest). Walks never edit inside a graft: removal walks drop their reference to it
    /// (clear the entry, call `free_table`, which must then only drop that reference) and
    /// leave its entries to its owner; the other operations refuse it. Default: every table
    /// is the walker's own.
    fn is_graft(&self, _table: u64) -> bool {
        false
    }
    /// Whether `table`, one of the walker's own, is grafted by other address spaces too. Its
    /// owner edits it normally but must not free it while grafted: an emptied grafted table
    /// stays linked, and teardown clears its entries before dropping the owner's reference.
    /// Writes into it change translations other address spaces use, which their TLBs must
    /// lose too (the implementation's `write_pte` can note that). Default: nothing is grafted.
    fn is_grafted(&self, _table: u64) -> bool {
        false
    }
    /// Called when a table of `level` (as in `alloc_table`) that is no longer referenced by
    /// its parent should be released. The parent entry has already been cleared. The table's
    /// contents are unspecified (`clear_user_half` does not bother zeroing tables it tears
    /// down).
    fn free_table(&mut self, table: u64, level: usize);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// A leaf or a lower-level table already occupies the slot.
    AlreadyMapped,
    OutOfMemory,
    /// `va` or `pa` not aligned to the page size, or `pa` beyond 52 bits.
    Misaligned,
    NonCanonical,
    /// A larger leaf covers `va`, so the table the new leaf needs cannot exist.
    HugePageInTheWay,
    /// The slot lies in a table grafted from another owner ([`PhysMem::is_graft`]): only its
    /// owner writes there.
    Graft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmapError {
    NotMapped,
    Misaligned,
    NonCanonical,
    /// The leaf at `va` has a different size than requested.
    SizeMismatch,
    /// `unmap_range`: a huge leaf lies only partly inside the range (nothing was changed).
    HugePageInTheWay,
    /// The page lies in a table grafted from another owner (`unmap`, `protect`, `remap`,
    /// `protect_range`): only its owner edits there.
    SharedTable,
}

/// A leaf mapping. `flags` never contains `HUGE` (`size` says that), so a `Mapping` can be fed
/// straight back into [`PageTable::map`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Start of the page frame.
    pub phys: u64,
    pub size: PageSize,
    pub flags: PteFlags,
}

impl Mapping {
    fn from_leaf(e: Pte, level: usize) -> Self {
        let size = PageSize::from_level(level).expect("leaf level");
        Mapping { phys: e.addr() & !(size.bytes() - 1), size, flags: e.flags() - PteFlags::HUGE }
    }
}

/// Bits of virtual address translated by 4-level paging.
const VA_BITS: u32 = 48;
const VA_MASK: u64 = (1 << VA_BITS) - 1;

/// True if bits 48..64 are copies of bit 47 (4-level paging).
pub const fn is_canonical(va: u64) -> bool {
    sign_extend(va) == va
}

const fn sign_extend(va: u64) -> u64 {
    (((va << (64 - VA_BITS)) as i64) >> (64 - VA_BITS)) as u64
}

/// Bytes covered by one entry of a table at `level`.
const fn span(level: usize) -> u64 {
    1 << (12 + 9 * (level - 1))
}

/// Index into the table at `level` (4 = PML4 ... 1 = PT) for `va`.
pub const fn table_index(va: u64, level: usize) -> usize {
    ((va >> (12 + 9 * (level - 1))) & (ENTRIES as u64 - 1)) as usize
}

/// The bits a CPU sets in an entry by itself (while translating through it).
pub const HARDWARE_BITS: u64 = PteFlags::ACCESSED.bits() | PteFlags::DIRTY.bits();

/// Replaces the entry at (table, index) by `f(current)`, atomically with respect to a CPU
/// setting ACCESSED or DIRTY in it meanwhile (a compare-exchange loop); returns the entry
/// it replaced.
pub fn update_pte(mem: &mut impl PhysMem, table: u64, index: usize, f: impl Fn(u64) -> u64) -> u64 {
    let mut cur = mem.read_pte(table, index);
    loop {
        match mem.cmpxchg_pte(table, index, cur, f(cur)) {
            Ok(old) => return old,
            Err(now) => cur = now,
        }
    }
}

/// Whether the entry at `level` ends the walk. PS is reserved in the PML4, so level 4 never is.
fn is_leaf(e: Pte, level: usize) -> bool {
    level == 1 || (level <= 3 && e.is_huge())
}

/// Scans all 512 entries. Simple and always right, including for tables built elsewhere;
/// a per-table count (e.g. in the frame's metadata) could replace it if unmap becomes hot.
fn is_empty(mem: &impl PhysMem, table: u64) -> bool {
    (0..ENTRIES).all(|i| mem.read_pte(table, i) == 0)
}

/// Where a walk ended: the leaf entry, its level, and the (table, index) of every level above.
struct Leaf {
    pte: Pte,
    level: usize,
    /// `path[l]` = (table, index) at level `l`, valid for `level..=4`.
    path: [(u64, usize); 5],
}

impl Leaf {
    /// Whether a table on the way to the leaf (below the root) is a graft.
    fn in_graft(&self, mem: &impl PhysMem) -> bool {
        (self.level..4).any(|l| mem.is_graft(self.path[l].0))
    }
}

pub struct PageTable {
    root: u64,
}

impl PageTable {
    /// Allocates an empty root (PML4). The caller copies in kernel-half entries if needed.
    pub fn new(mem: &mut impl PhysMem) -> Option<Self> {
        mem.alloc_table(4).map(Self::from_root)
    }

    pub fn from_root(root: u64) -> Self {
        PageTable { root }
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    fn walk(&self, mem: &impl PhysMem, va: u64) -> Option<Leaf> {
        if !is_canonical(va) {
            return None;
        }
        let mut path = [(0, 0); 5];
        let mut table = self.root;
        for level in (1..=4).rev() {
            let idx = table_index(va, level);
            path[level] = (table, idx);
            let pte = Pte(mem.read_pte(table, idx));
            if !pte.is_present() {
                return None;
            }
            if is_leaf(pte, level) {
                return Some(Leaf { pte, level, path });
            }
            table = pte.addr();
        }
        unreachable!("level 1 is always a leaf")
    }

    /// Map one page. Intermediate entries are created PRESENT|WRITABLE, plus USER if `flags` has
    /// USER (and an existing intermediate entry gains USER when a user mapping passes through it),
    /// as Linux does: permissions are enforced at the leaf. For 2M/1G sizes the leaf gets HUGE.
    /// PRESENT is always set on the leaf; a HUGE bit in `flags` is ignored (`size` decides).
    ///
    /// All checks and allocations happen before the first write, so on any error (including
    /// OutOfMemory, where the tables obtained are freed again) the tables are unchanged.
    pub fn map(
        &mut self,
        mem: &mut impl PhysMem,
        va: u64,
        pa: u64,
        size: PageSize,
        flags: PteFlags,
    ) -> Result<(), MapError> {
        if !is_canonical(va) {
            return Err(MapError::NonCanonical);
        }
        let mask = size.bytes() - 1;
        if va & mask != 0 || pa & (mask | !ADDR_MASK) != 0 {
            return Err(MapError::Misaligned);
        }
        let leaf_level = size.level();
        let user = flags.contains(PteFlags::USER);

        // Pass 1, read-only: find errors and how many tables are missing.
        let mut missing = 0;
        let mut table = self.root;
        for level in (leaf_level + 1..=4).rev() {
            let e = Pte(mem.read_pte(table, table_index(va, level)));
            if !e.is_present() {
                missing = level - leaf_level;
                break;
            }
            if is_leaf(e, level) {
                return Err(MapError::HugePageInTheWay);
            }
            if mem.is_graft(e.addr()) {
                return Err(MapError::Graft);
            }
            table = e.addr();
        }
        if missing == 0 && Pte(mem.read_pte(table, table_index(va, leaf_level))).is_present() {
            return Err(MapError::AlreadyMapped);
        }

        // fresh[i] is the table of level `leaf_level + missing - 1 - i` (highest first).
        let fresh_level = |i: usize| leaf_level + missing - 1 - i;
        let mut fresh = [0u64; 3];
        for i in 0..missing {
            match mem.alloc_table(fresh_level(i)) {
                Some(t) => fresh[i] = t,
                None => {
                    (0..i).for_each(|j| mem.free_table(fresh[j], fresh_level(j)));
                    return Err(MapError::OutOfMemory);
                }
            }
        }

        // Pass 2: link the new tables and widen USER on the existing path.
        let mut inter = PteFlags::PRESENT | PteFlags::WRITABLE;
        inter.set(PteFlags::USER, user);
        let mut fresh = fresh[..missing].iter();
        let mut table = self.root;
        for level in (leaf_level + 1..=4).rev() {
            let idx = table_index(va, level);
            let e = Pte(mem.read_pte(table, idx));
            table = if e.is_present() {
                if user && !e.flags().contains(PteFlags::USER) {
                    mem.write_pte(table, idx, e.0 | PteFlags::USER.bits());
                }
                e.addr()
            } else {
                let t = *fresh.next().expect("counted in pass 1");
                mem.write_pte(table, idx, Pte::new(t, inter).0);
                t
            };
        }
        let mut leaf = flags | PteFlags::PRESENT;
        leaf.set(PteFlags::HUGE, size != PageSize::Size4K);
        mem.write_pte(table, table_index(va, leaf_level), Pte::new(pa, leaf).0);
        Ok(())
    }

    /// Unmap the page starting exactly at `va` (must be aligned to `size`, and `size` must match
    /// the leaf). Frees every intermediate table (never the root) that became empty, via
    /// `mem.free_table`, after clearing its parent entry. Returns what was mapped.
    pub fn unmap(&mut self, mem: &mut impl PhysMem, va: u64, size: PageSize) -> Result<Mapping, UnmapError> {
        if !is_canonical(va) {
            return Err(UnmapError::NonCanonical);
        }
        if va & (size.bytes() - 1) != 0 {
            return Err(UnmapError::Misaligned);
        }
        let leaf = self.walk(mem, va).ok_or(UnmapError::NotMapped)?;
        if leaf.level != size.level() {
            return Err(UnmapError::SizeMismatch);
        }
        // A leaf in a graft belongs to the graft's owner.
        if leaf.in_graft(mem) {
            return Err(UnmapError::SharedTable);
        }
        let (table, idx) = leaf.path[leaf.level];
        let last = Pte(mem.xchg_pte(table, idx, 0));
        let mut level = leaf.level;
        while level < 4 && !mem.is_grafted(leaf.path[level].0) && is_empty(mem, leaf.path[level].0) {
            let (parent, pidx) = leaf.path[level + 1];
            mem.write_pte(parent, pidx, 0);
            mem.free_table(leaf.path[level].0, level);
            level += 1;
        }
        Ok(Mapping::from_leaf(last, leaf.level))
    }

    /// The mapping covering `va` (any size), with `phys` = frame start; None if unmapped or
    /// non-canonical.
    pub fn translate(&self, mem: &impl PhysMem, va: u64) -> Option<Mapping> {
        self.walk(mem, va).map(|l| Mapping::from_leaf(l.pte, l.level))
    }

    /// The first mapped leaf at or after `va` and below `end`: its address (`va` itself if
    /// that is mapped, else the start of the leaf) and mapping. Absent subtrees are skipped
    /// with one read each, so walking a huge, sparsely populated range costs what is mapped
    /// in it, not its length (Linux's range walks skip `pXd_none` entries the same way).
    pub fn next_mapped(&self, mem: &impl PhysMem, mut va: u64, end: u64) -> Option<(u64, Mapping)> {
        'outer: while va < end && is_canonical(va) {
            let mut table = self.root;
            for level in (1..=4).rev() {
                let pte = Pte(mem.read_pte(table, table_index(va, level)));
                if !pte.is_present() {
                    // Nothing below this entry: go on at the next one.
                    match (va & !(span(level) - 1)).checked_add(span(level)) {
                        Some(next) => va = next,
                        None => return None,
                    }
                    continue 'outer;
                }
                if is_leaf(pte, level) {
                    return Some((va, Mapping::from_leaf(pte, level)));
                }
                table = pte.addr();
            }
        }
        None
    }

    /// Replace the flags of the leaf covering `va` (any address inside it). PRESENT is always
    /// kept (a non-present entry with a frame would leak it), HUGE follows the leaf's size,
    /// and ACCESSED and DIRTY stay as the CPU set them (Linux's `pte_modify`). Returns the
    /// old flags (without HUGE), including hardware-set ACCESSED/DIRTY up to the change.
    pub fn protect(&mut self, mem: &mut impl PhysMem, va: u64, flags: PteFlags) -> Result<PteFlags, UnmapError> {
        if !is_canonical(va) {
            return Err(UnmapError::NonCanonical);
        }
        let leaf = self.walk(mem, va).ok_or(UnmapError::NotMapped)?;
        if leaf.in_graft(mem) {
            return Err(UnmapError::SharedTable);
        }
        let mut new = flags | PteFlags::PRESENT;
        new.set(PteFlags::HUGE, leaf.level > 1);
        let (table, idx) = leaf.path[leaf.level];
        // `addr()` keeps bit 12 (PAT on huge leaves) as it was.
        let old = update_pte(mem, table, idx, |e| Pte::new(Pte(e).addr(), new).0 | (e & HARDWARE_BITS));
        Ok(Pte(old).flags() - PteFlags::HUGE)
    }

    /// Point the existing 4 KiB leaf at `va` to another frame with new flags, in one entry
    /// write (copy-on-write replaces a page this way, so there is no moment without a mapping
    /// and no table is freed and reallocated). Returns the old mapping.
    pub fn remap(&mut self, mem: &mut impl PhysMem, va: u64, pa: u64, flags: PteFlags) -> Result<Mapping, UnmapError> {
        if !is_canonical(va) {
            return Err(UnmapError::NonCanonical);
        }
        if !va.is_multiple_of(PAGE_SIZE) || !pa.is_multiple_of(PAGE_SIZE) || pa & !ADDR_MASK != 0 {
            return Err(UnmapError::Misaligned);
        }
        let leaf = self.walk(mem, va).ok_or(UnmapError::NotMapped)?;
        if leaf.level != 1 {
            return Err(UnmapError::SizeMismatch);
        }
        if leaf.in_graft(mem) {
            return Err(UnmapError::SharedTable);
        }
        let (table, idx) = leaf.path[1];
        let old = mem.xchg_pte(table, idx, Pte::new(pa, (flags | PteFlags::PRESENT) - PteFlags::HUGE).0);
        Ok(Mapping::from_leaf(Pte(old), 1))
    }

    /// Unmap every leaf in `[start, end)` (both 4K-aligned; `end` may be the first address past
    /// the canonical half, e.g. `1 << 47`; the range may not span the non-canonical hole; an
    /// empty range (`start >= end`) is a no-op, so the very last page cannot be named),
    /// calling `on_leaf(va, mapping)` for each removed leaf and freeing emptied tables (never
    /// the root). Absent subtrees are skipped with one read each.
    ///
    /// If a huge leaf lies only partly inside the range, returns `HugePageInTheWay` before
    /// changing anything: splitting it is the caller's policy, not ours. Only the leaves
    /// containing `start` or `end - 1` can straddle, so checking those two suffices.
    pub fn unmap_range(
        &mut self,
        mem: &mut impl PhysMem,
        start: u64,
        end: u64,
        mut on_leaf: impl FnMut(u64, Mapping),
    ) -> Result<(), UnmapError> {
        if (start | end) & (PAGE_SIZE - 1) != 0 {
            return Err(UnmapError::Misaligned);
        }
        if start >= end {
            return Ok(());
        }
        let last = end - 1;
        if !is_canonical(start) || !is_canonical(last) || (start ^ last) >> 63 != 0 {
            return Err(UnmapError::NonCanonical);
        }
        for va in [start, last] {
            if let Some(m) = self.translate(mem, va) {
                let base = va & !(m.size.bytes() - 1);
                if base < start || base + (m.size.bytes() - 1) > last {
                    return Err(UnmapError::HugePageInTheWay);
                }
            }
        }
        clear_range(mem, self.root, 4, 0, start & VA_MASK, last & VA_MASK, &mut on_leaf);
        Ok(())
    }

    /// Installs an existing `table` of level `table_level` (1 = a PT covering 2 MiB, 2 = a PD
    /// covering 1 GiB, 3 = a PDPT covering 512 GiB) as the entry covering `va`, which must be
    /// aligned to that span: the graft of mshare, where a guest's page table points at its
    /// host's table. Missing tables above it are allocated (and freed again on failure). The
    /// caller takes the share reference on `table` before grafting it.
    pub fn graft(
        &mut self,
        mem: &mut impl PhysMem,
        va: u64,
        table_level: usize,
        table: u64,
        flags: PteFlags,
    ) -> Result<(), MapError> {
        if !is_canonical(va) {
            return Err(MapError::NonCanonical);
        }
        if !(1..=3).contains(&table_level) || va & (span(table_level + 1) - 1) != 0 || table & !ADDR_MASK != 0 {
            return Err(MapError::Misaligned);
        }
        let entry_level = table_level + 1;
        // Walk down to the table holding the entry, allocating what is missing.
        let mut fresh: [u64; 3] = [0; 3];
        let mut allocated = 0;
        let mut parent = self.root;
        let mut inter = PteFlags::PRESENT | PteFlags::WRITABLE;
        inter.set(PteFlags::USER, flags.contains(PteFlags::USER));
        for level in (entry_level + 1..=4).rev() {
            let idx = table_index(va, level);
            let e = Pte(mem.read_pte(parent, idx));
            parent = if e.is_present() {
                if is_leaf(e, level) {
                    (0..allocated).for_each(|j| mem.free_table(fresh[j], level + allocated - 1 - j));
                    return Err(MapError::HugePageInTheWay);
                }
                e.addr()
            } else {
                // fresh[..allocated] are tables of levels level + allocated - 1 down to level.
                let Some(t) = mem.alloc_table(level - 1) else {
                    (0..allocated).for_each(|j| mem.free_table(fresh[j], level + allocated - 1 - j));
                    return Err(MapError::OutOfMemory);
                };
                fresh[allocated] = t;
                allocated += 1;
                mem.write_pte(parent, idx, Pte::new(t, inter).0);
                t
            };
        }
        let idx = table_index(va, entry_level);
        if Pte(mem.read_pte(parent, idx)).is_present() {
            // Only possible when nothing was allocated: all the path existed.
            return Err(MapError::AlreadyMapped);
        }
        mem.write_pte(parent, idx, Pte::new(table, flags | PteFlags::PRESENT).0);
        Ok(())
    }

    /// The table of `level` (1 = PT .. 3 = PDPT; 4 = the root) covering `va`, made with the
    /// tables above it where missing (intermediate entries PRESENT|WRITABLE|USER, as `map`
    /// makes them for user pages): what an mshare host hands its guests to graft, before
    /// anything is mapped in it. Refuses a path through a huge leaf or a graft.
    pub fn ensure_table(&mut self, mem: &mut impl PhysMem, va: u64, level: usize) -> Result<u64, MapError> {
        if !is_canonical(va) {
            return Err(MapError::NonCanonical);
        }
        if !(1..=4).contains(&level) {
            return Err(MapError::Misaligned);
        }
        let inter = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::USER;
        let mut table = self.root;
        for l in (level + 1..=4).rev() {
            let idx = table_index(va, l);
            let e = Pte(mem.read_pte(table, idx));
            table = if e.is_present() {
                if is_leaf(e, l) {
                    return Err(MapError::HugePageInTheWay);
                }
                if mem.is_graft(e.addr()) {
                    return Err(MapError::Graft);
                }
                if !e.flags().contains(PteFlags::USER) {
                    mem.write_pte(table, idx, e.0 | PteFlags::USER.bits());
                }
                e.addr()
            } else {
                let t = mem.alloc_table(l - 1).ok_or(MapError::OutOfMemory)?;
                mem.write_pte(table, idx, Pte::new(t, inter).0);
                t
            };
        }
        Ok(table)
    }

    /// Removes the grafted table of level `table_level` at `va` (clears the entry and calls
    /// `free_table`, which drops the share reference), then frees empty tables above it.
    /// Returns the table.
    pub fn ungraft(&mut self, mem: &mut impl PhysMem, va: u64, table_level: usize) -> Result<u64, UnmapError> {
        if !is_canonical(va) {
            return Err(UnmapError::NonCanonical);
        }
        if !(1..=3).contains(&table_level) || va & (span(table_level + 1) - 1) != 0 {
            return Err(UnmapError::Misaligned);
        }
        let mut path = [(0u64, 0usize); 5];
        let mut table = self.root;
        for level in (table_level + 1..=4).rev() {
            let idx = table_index(va, level);
            path[level] = (table, idx);
            let e = Pte(mem.read_pte(table, idx));
            if !e.is_present() {
                return Err(UnmapError::NotMapped);
            }
            if is_leaf(e, level) {
                return Err(UnmapError::SizeMismatch);
            }
            table = e.addr();
        }
        let (parent, idx) = path[table_level + 1];
        mem.write_pte(parent, idx, 0);
        mem.free_table(table, table_level);
        let mut level = table_level + 1;
        while level < 4 && is_empty(mem, path[level].0) {
            let (up, uidx) = path[level + 1];
            mem.write_pte(up, uidx, 0);
            mem.free_table(path[level].0, level);
            level += 1;
        }
        Ok(table)
    }

    /// The table of `level` (1 = PT .. 3 = PDPT) covering `va`, if the path to it exists
    /// (a graft or one of the walker's own); never allocates.
    pub fn table_at(&self, mem: &impl PhysMem, va: u64, level: usize) -> Option<u64> {
        if !is_canonical(va) || !(1..=3).contains(&level) {
            return None;
        }
        let mut table = self.root;
        for l in (level + 1..=4).rev() {
            let e = Pte(mem.read_pte(table, table_index(va, l)));
            if !e.is_present() || is_leaf(e, l) {
                return None;
            }
            table = e.addr();
        }
        Some(table)
    }

    /// Replaces the table of `table_level` at `va` (aligned to its span) by `new`, in one
    /// atomic write of the entry above, which keeps its flags: how a graft becomes a private
    /// copy of the grafted table (unsharing). Returns the table replaced; the caller flushes
    /// the TLB for its span before dropping its reference, and owns `new` from now on.
    pub fn replace_table(
        &mut self,
        mem: &mut impl PhysMem,
        va: u64,
        table_level: usize,
        new: u64,
    ) -> Result<u64, UnmapError> {
        if !is_canonical(va) {
            return Err(UnmapError::NonCanonical);
        }
        if !(1..=3).contains(&table_level) || va & (span(table_level + 1) - 1) != 0 || new & !ADDR_MASK != 0 {
            return Err(UnmapError::Misaligned);
        }
        let mut table = self.root;
        for level in (table_level + 2..=4).rev() {
            let e = Pte(mem.read_pte(table, table_index(va, level)));
            if !e.is_present() {
                return Err(UnmapError::NotMapped);
            }
            if is_leaf(e, level) {
                return Err(UnmapError::SizeMismatch);
            }
            table = e.addr();
        }
        let idx = table_index(va, table_level + 1);
        let e = Pte(mem.read_pte(table, idx));
        if !e.is_present() {
            return Err(UnmapError::NotMapped);
        }
        if is_leaf(e, table_level + 1) {
            return Err(UnmapError::SizeMismatch);
        }
        let old = update_pte(mem, table, idx, |cur| (cur & !ADDR_MASK) | new);
        Ok(Pte(old).addr())
    }

    /// Number of table pages reachable from the root, root included (shared kernel-half
    /// tables count too).
    pub fn count_tables(&self, mem: &impl PhysMem) -> usize {
        fn count(mem: &impl PhysMem, table: u64, level: usize) -> usize {
            1 + (0..ENTRIES)
                .map(|i| Pte(mem.read_pte(table, i)))
                .filter(|e| e.is_present() && !is_leaf(*e, level))
                .map(|e| count(mem, e.addr(), level - 1))
                .sum::<usize>()
        }
        count(mem, self.root, 4)
    }

    /// Free every table below the root for the lower half (PML4 entries 0..256), calling
    /// `on_leaf` for each leaf, and clear those root entries. Entries 256..512 (kernel half,
    /// typically shared between all address spaces) are not touched. The root stays (the
    /// caller frees it). Used when an address space dies, so tables being torn down are not
    /// zeroed entry by entry, only released. Grafts only lose this address space's reference;
    /// an own table grafted elsewhere has its entries cleared (after `on_leaf`) before its
    /// reference goes, so its guests keep a valid, empty table.
    pub fn clear_user_half(&mut self, mem: &mut impl PhysMem, mut on_leaf: impl FnMut(u64, Mapping)) {
        fn teardown(
            mem: &mut impl PhysMem,
            table: u64,
            level: usize,
            base: u64,
            on_leaf: &mut dyn FnMut(u64, Mapping),
        ) {
            let grafted = mem.is_grafted(table);
            for i in 0..ENTRIES {
                let e = Pte(mem.read_pte(table, i));
                let va = base + i as u64 * span(level);
                if !e.is_present() {
                    continue;
                }
                // A grafted table is still walked by its guests' CPUs: its entries are
                // taken out atomically, with their final bits.
                let e = if grafted { Pte(mem.xchg_pte(table, i, 0)) } else { e };
                if is_leaf(e, level) {
                    on_leaf(va, Mapping::from_leaf(e, level));
                } else {
                    if !mem.is_graft(e.addr()) {
                        teardown(mem, e.addr(), level - 1, va, on_leaf);
                    }
                    mem.free_table(e.addr(), level - 1);
                }
            }
        }
        for i in 0..ENTRIES / 2 {
            let e = Pte(mem.read_pte(self.root, i));
            if e.is_present() {
                mem.write_pte(self.root, i, 0);
                if !mem.is_graft(e.addr()) {
                    teardown(mem, e.addr(), 3, i as u64 * span(4), &mut on_leaf);
                }
                mem.free_table(e.addr(), 3);
            }
        }
    }
}

/// Clears leaves of `table` (at `level`, covering 48-bit addresses from `base`) that lie in
/// `[first, last]` (inclusive, 48-bit, inside this table's span); frees child tables that become
/// empty, unless they are grafted elsewhere (those stay linked, empty). Returns whether `table`
/// is now empty. Huge leaves are assumed fully inside (checked
/// by the caller).
fn clear_range(
    mem: &mut impl PhysMem,
    table: u64,
    level: usize,
    base: u64,
    first: u64,
    last: u64,
    on_leaf: &mut dyn FnMut(u64, Mapping),
) -> bool {
    let span = span(level);
    let (i0, i1) = (((first - base) / span) as usize, ((last - base) / span) as usize);
    for i in i0..=i1 {
        let e = Pte(mem.read_pte(table, i));
        let va = base + i as u64 * span;
        if !e.is_present() {
            continue;
        }
        if is_leaf(e, level) {
            let last = Pte(mem.xchg_pte(table, i, 0));
            on_leaf(sign_extend(va), Mapping::from_leaf(last, level));
        } else if mem.is_graft(e.addr()) {
            // Someone else's table: drop our reference when the range covers all of it,
            // otherwise leave it alone (its owner unmaps inside it).
            if first <= va && va + span - 1 <= last {
                mem.write_pte(table, i, 0);
                mem.free_table(e.addr(), level - 1);
            }
        } else {
            let (lo, hi) = (first.max(va), last.min(va + span - 1));
            if clear_range(mem, e.addr(), level - 1, va, lo, hi, on_leaf) && !mem.is_grafted(e.addr()) {
                mem.write_pte(table, i, 0);
                mem.free_table(e.addr(), level - 1);
            }
        }
    }
    is_empty(mem, table)
}

mod cursor;
pub use cursor::{Cursor, USER_END};

#[cfg(test)]
mod tests;
