use super::*;
use std::cell::Cell;
use std::collections::HashMap;

/// The owners tests use: HOST allocates the tables a GUEST grafts.
const HOST: u32 = 0;
const GUEST: u32 = 1;

/// Physical memory simulated by a map of live tables. Accessing a freed or never-allocated
/// table panics, so use-after-free and double free show up as test failures. Each table
/// records its owner (whoever was walking when it was allocated) and its references (one for
/// its owner, one per graft); walks are made for `walker` ([`SimMem::by`]).
struct SimMem {
    tables: HashMap<u64, Box<[u64; ENTRIES]>>,
    next: u64,
    /// Remaining allocations allowed; None = unlimited.
    limit: Option<usize>,
    reads: Cell<usize>,
    /// Extra references of grafted tables (a table is freed when its last reference goes).
    shares: HashMap<u64, usize>,
    /// The level each live table was allocated for; `free_table` must name the same one.
    levels: HashMap<u64, usize>,
    owners: HashMap<u64, u32>,
    /// The owner the next walks are made for.
    walker: u32,
    /// Tables really freed, in order (each at most once).
    freed: Vec<u64>,
    /// A CPU racing with the walk ([`SimMem::cpu_sets`]): after the walk's next read of
    /// (table, index) it sets these bits in the entry, before the walk's next write.
    race: Cell<Option<(u64, usize, u64)>>,
    /// The race fired by a read, applied at the next write or atomic operation.
    raced: Cell<Option<(u64, usize, u64)>>,
}

impl SimMem {
    fn new() -> Self {
        SimMem {
            tables: HashMap::new(),
            next: 0x10_0000,
            limit: None,
            reads: Cell::new(0),
            shares: HashMap::new(),
            levels: HashMap::new(),
            owners: HashMap::new(),
            walker: HOST,
            freed: Vec::new(),
            race: Cell::new(None),
            raced: Cell::new(None),
        }
    }
    /// Simulates a CPU translating through the leaf at `va` of `pt` while the next
    /// operation runs: right after the operation first reads that entry, the CPU sets
    /// `bits` (ACCESSED, DIRTY) in it, so a read-modify-write that is not atomic loses them.
    fn cpu_sets(&mut self, pt: &PageTable, va: u64, bits: PteFlags) {
        let mut table = pt.root();
        for level in (1..=4).rev() {
            let idx = table_index(va, level);
            let e = Pte(self.tables[&table][idx]);
            if level == 1 || e.is_huge() {
                self.race.set(Some((table, idx, bits.bits())));
                return;
            }
            table = e.addr();
        }
    }
    /// Lets a raced CPU update land (before the write or atomic operation that follows).
    fn land_race(&mut self) {
        if let Some((table, idx, bits)) = self.raced.take() {
            let e = &mut self.tables.get_mut(&table).expect("raced on a dead table")[idx];
            if *e & PteFlags::PRESENT.bits() != 0 {
                *e |= bits;
            }
        }
    }
    fn live(&self) -> usize {
        self.tables.len()
    }
    /// Live tables of `level`.
    fn live_at(&self, level: usize) -> usize {
        self.levels.values().filter(|&&l| l == level).count()
    }
    /// Takes another reference to `table` (what a guest does before grafting it).
    fn share(&mut self, table: u64) {
        *self.shares.entry(table).or_insert(0) += 1;
    }
    /// Whether `table` is referenced by grafts.
    fn is_shared(&self, table: u64) -> bool {
        self.shares.contains_key(&table)
    }
    /// This memory, walked for `owner`.
    fn by(&mut self, owner: u32) -> &mut Self {
        self.walker = owner;
        self
    }
}

impl PhysMem for SimMem {
    fn read_pte(&self, table: u64, index: usize) -> u64 {
        self.reads.set(self.reads.get() + 1);
        if let Some(r) = self.race.get().filter(|r| (r.0, r.1) == (table, index)) {
            self.race.set(None);
            self.raced.set(Some(r));
        }
        self.tables.get(&table).expect("read from a dead table")[index]
    }
    fn xchg_pte(&mut self, table: u64, index: usize, value: u64) -> u64 {
        self.land_race();
        let old = self.tables.get(&table).expect("xchg on a dead table")[index];
        self.write_pte(table, index, value);
        old
    }
    fn cmpxchg_pte(&mut self, table: u64, index: usize, old: u64, new: u64) -> Result<u64, u64> {
        self.land_race();
        let cur = self.tables.get(&table).expect("cmpxchg on a dead table")[index];
        if cur != old {
            return Err(cur);
        }
        self.write_pte(table, index, new);
        Ok(old)
    }
    fn write_pte(&mut self, table: u64, index: usize, value: u64) {
        self.land_race();
        if self.owners.get(&table).is_some_and(|&o| o != self.walker) {
            panic!("table {table:#x} written by a walk for another owner than its own");
        }
        self.tables.get_mut(&table).expect("write to a dead table")[index] = value;
    }
    fn alloc_table(&mut self, level: usize) -> Option<u64> {
        assert!((1..=4).contains(&level), "table level {level}");
        if let Some(n) = &mut self.limit {
            *n = n.checked_sub(1)?;
        }
        let t = self.next;
        self.next += PAGE_SIZE;
        self.tables.insert(t, Box::new([0; ENTRIES]));
        self.levels.insert(t, level);
        self.owners.insert(t, self.walker);
        Some(t)
    }
    fn free_table(&mut self, table: u64, level: usize) {
        if let Some(&l) = self.levels.get(&table) {
            assert_eq!(l, level, "table {table:#x} freed with another level than allocated");
        }
        if let Some(n) = self.shares.get_mut(&table) {
            *n -= 1;
            if *n == 0 {
                self.shares.remove(&table);
            }
            return;
        }
        self.tables.remove(&table).expect("double free");
        self.levels.remove(&table);
        self.owners.remove(&table);
        self.freed.push(table);
    }
    fn is_graft(&self, table: u64) -> bool {
        self.owners.get(&table).is_some_and(|&o| o != self.walker)
    }
    fn is_grafted(&self, table: u64) -> bool {
        self.is_shared(table) && !self.is_graft(table)
    }
}

const P: PteFlags = PteFlags::PRESENT;
const W: PteFlags = PteFlags::WRITABLE;
const U: PteFlags = PteFlags::USER;
const K4: u64 = 1 << 12;
const M2: u64 = 1 << 21;
const G1: u64 = 1 << 30;
const KERNEL_BASE: u64 = 0xffff_8000_0000_0000;

fn setup() -> (SimMem, PageTable) {
    let mut mem = SimMem::new();
    let pt = PageTable::new(&mut mem).unwrap();
    (mem, pt)
}

#[test]
fn map_then_translate_returns_frame_and_flags_for_all_sizes() {
    let (mut mem, mut pt) = setup();
    let cases = [
        (0x40_0000_1000, 0x20_3000, PageSize::Size4K, P | W | PteFlags::NO_EXECUTE),
        (0x40_0020_0000, 0x4000_0000, PageSize::Size2M, P | W | PteFlags::GLOBAL),
        (0x80_0000_0000, 0x1_0000_0000, PageSize::Size1G, P),
        (KERNEL_BASE + 0x1000, 0x5000, PageSize::Size4K, P | W),
    ];
    for (va, pa, size, flags) in cases {
        pt.map(&mut mem, va, pa, size, flags).unwrap();
    }
    for (va, pa, size, flags) in cases {
        assert_eq!(pt.translate(&mem, va), Some(Mapping { phys: pa, size, flags }));
    }
    // Huge leaves carry the PS bit in the table, even though Mapping hides it.
    let pd = Pte(mem.read_pte(pt.root(), table_index(0x40_0020_0000, 4)));
    let pd = Pte(mem.read_pte(pd.addr(), table_index(0x40_0020_0000, 3)));
    assert!(Pte(mem.read_pte(pd.addr(), table_index(0x40_0020_0000, 2))).is_huge());
}

#[test]
fn map_always_sets_present_and_ignores_caller_huge_bit() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x1000, 0x2000, PageSize::Size4K, W | PteFlags::HUGE).unwrap();
    assert_eq!(pt.translate(&mem, 0x1000).unwrap().flags, P | W);
}

#[test]
fn translate_inside_huge_page_gives_frame_start() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x20_0000, 0x60_0000, PageSize::Size2M, P | W).unwrap();
    pt.map(&mut mem, 0x40_0000_0000, 0x8000_0000, PageSize::Size1G, P).unwrap();
    let m = pt.translate(&mem, 0x20_0000 + 0x1_2345).unwrap();
    assert_eq!((m.phys, m.size), (0x60_0000, PageSize::Size2M));
    let m = pt.translate(&mem, 0x40_0000_0000 + 0x1234_5678).unwrap();
    assert_eq!((m.phys, m.size), (0x8000_0000, PageSize::Size1G));
}

#[test]
fn translate_unmapped_or_non_canonical_is_none() {
    let (mut mem, mut pt) = setup();
    assert_eq!(pt.translate(&mem, 0x1000), None);
    pt.map(&mut mem, 0x1000, 0x2000, PageSize::Size4K, P).unwrap();
    assert_eq!(pt.translate(&mem, 0x2000), None);
    assert_eq!(pt.translate(&mem, 0x0000_8000_0000_1000), None);
}

#[test]
fn mapping_twice_is_already_mapped() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x1000, 0x2000, PageSize::Size4K, P).unwrap();
    assert_eq!(pt.map(&mut mem, 0x1000, 0x3000, PageSize::Size4K, P), Err(MapError::AlreadyMapped));
    // A 2M leaf where a page table already hangs is also occupied.
    assert_eq!(pt.map(&mut mem, 0, 0x20_0000, PageSize::Size2M, P), Err(MapError::AlreadyMapped));
    assert_eq!(pt.translate(&mem, 0x1000).unwrap().phys, 0x2000);
}

#[test]
fn mapping_under_a_huge_leaf_is_huge_page_in_the_way() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x20_0000, 0x60_0000, PageSize::Size2M, P).unwrap();
    pt.map(&mut mem, G1, 0x4000_0000, PageSize::Size1G, P).unwrap();
    let before = mem.live();
    let r = pt.map(&mut mem, 0x20_1000, 0x1000, PageSize::Size4K, P);
    assert_eq!(r, Err(MapError::HugePageInTheWay));
    let r = pt.map(&mut mem, G1 + M2, 0x1000, PageSize::Size4K, P);
    assert_eq!(r, Err(MapError::HugePageInTheWay));
    let r = pt.map(&mut mem, G1 + M2, M2, PageSize::Size2M, P);
    assert_eq!(r, Err(MapError::HugePageInTheWay));
    assert_eq!(mem.live(), before);
}

#[test]
fn misaligned_inputs_are_rejected() {
    let (mut mem, mut pt) = setup();
    let e = Err(MapError::Misaligned);
    assert_eq!(pt.map(&mut mem, 0x1001, 0x2000, PageSize::Size4K, P), e);
    assert_eq!(pt.map(&mut mem, 0x1000, 0x2001, PageSize::Size4K, P), e);
    assert_eq!(pt.map(&mut mem, 0x1000, 0x20_0000, PageSize::Size2M, P), e);
    assert_eq!(pt.map(&mut mem, M2, 0x1000, PageSize::Size2M, P), e);
    assert_eq!(pt.map(&mut mem, M2, M2, PageSize::Size1G, P), e);
    assert_eq!(pt.map(&mut mem, 0x1000, 1 << 52, PageSize::Size4K, P), e);
    assert_eq!(mem.live(), 1);
    pt.map(&mut mem, M2, M2, PageSize::Size2M, P).unwrap();
    assert_eq!(pt.unmap(&mut mem, M2 + 0x1000, PageSize::Size2M), Err(UnmapError::Misaligned));
    assert_eq!(pt.unmap_range(&mut mem, 0x10, M2, |_, _| {}), Err(UnmapError::Misaligned));
    assert_eq!(pt.unmap_range(&mut mem, 0, 0x10, |_, _| {}), Err(UnmapError::Misaligned));
}

#[test]
fn non_canonical_inputs_are_rejected() {
    let (mut mem, mut pt) = setup();
    let bad = 0x0000_8000_0000_0000;
    assert_eq!(pt.map(&mut mem, bad, 0, PageSize::Size4K, P), Err(MapError::NonCanonical));
    assert_eq!(pt.unmap(&mut mem, bad, PageSize::Size4K), Err(UnmapError::NonCanonical));
    assert_eq!(pt.protect(&mut mem, bad, P), Err(UnmapError::NonCanonical));
    let r = pt.unmap_range(&mut mem, bad, bad + K4, |_, _| {});
    assert_eq!(r, Err(UnmapError::NonCanonical));
    // A range spanning the hole contains non-canonical addresses.
    let r = pt.unmap_range(&mut mem, 0x1000, KERNEL_BASE + K4, |_, _| {});
    assert_eq!(r, Err(UnmapError::NonCanonical));
    assert!(is_canonical(KERNEL_BASE) && is_canonical(bad - 1) && !is_canonical(bad));
    assert_eq!(mem.live(), 1);
}

#[test]
fn user_mapping_makes_intermediate_entries_user() {
    let (mut mem, mut pt) = setup();
    let root = pt.root();
    let intermediates = |mem: &SimMem, va: u64| {
        let mut table = root;
        (2..=4)
            .rev()
            .map(|level| {
                let e = Pte(mem.read_pte(table, table_index(va, level)));
                table = e.addr();
                e.flags()
            })
            .collect::<Vec<_>>()
    };
    // A kernel mapping creates supervisor-only intermediates...
    pt.map(&mut mem, 0x1000, 0x2000, PageSize::Size4K, P | W).unwrap();
    assert!(intermediates(&mem, 0x1000).iter().all(|f| *f == P | W));
    // ...which gain USER when a user mapping passes through; the kernel leaf stays supervisor.
    pt.map(&mut mem, 0x3000, 0x4000, PageSize::Size4K, P | U).unwrap();
    assert!(intermediates(&mem, 0x3000).iter().all(|f| *f == P | W | U));
    assert_eq!(pt.translate(&mem, 0x1000).unwrap().flags, P | W);
    assert_eq!(pt.translate(&mem, 0x3000).unwrap().flags, P | U);
}

#[test]
fn unmap_frees_empty_tables_but_keeps_tables_still_in_use() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x1000, 0xa000, PageSize::Size4K, P | W).unwrap();
    pt.map(&mut mem, 0x2000, 0xb000, PageSize::Size4K, P).unwrap();
    pt.map(&mut mem, G1, 0xc000, PageSize::Size4K, P).unwrap(); // shares the PDPT only
    assert_eq!(pt.count_tables(&mem), 6);

    let m = pt.unmap(&mut mem, 0x1000, PageSize::Size4K).unwrap();
    assert_eq!(m, Mapping { phys: 0xa000, size: PageSize::Size4K, flags: P | W });
    assert_eq!((pt.count_tables(&mem), mem.live()), (6, 6)); // PT still holds 0x2000
    pt.unmap(&mut mem, 0x2000, PageSize::Size4K).unwrap();
    assert_eq!((pt.count_tables(&mem), mem.live()), (4, 4)); // PT and PD gone, PDPT kept
    assert_eq!(pt.translate(&mem, G1).unwrap().phys, 0xc000);
    pt.unmap(&mut mem, G1, PageSize::Size4K).unwrap();
    assert_eq!((pt.count_tables(&mem), mem.live()), (1, 1));
    assert!((0..ENTRIES).all(|i| mem.read_pte(pt.root(), i) == 0));
}

#[test]
fn unmap_reports_not_mapped_and_size_mismatch() {
    let (mut mem, mut pt) = setup();
    assert_eq!(pt.unmap(&mut mem, 0x1000, PageSize::Size4K), Err(UnmapError::NotMapped));
    pt.map(&mut mem, M2, M2, PageSize::Size2M, P).unwrap();
    pt.map(&mut mem, 0x1000, 0x1000, PageSize::Size4K, P).unwrap();
    assert_eq!(pt.unmap(&mut mem, M2, PageSize::Size4K), Err(UnmapError::SizeMismatch));
    assert_eq!(pt.unmap(&mut mem, M2, PageSize::Size1G), Err(UnmapError::Misaligned));
    assert_eq!(pt.unmap(&mut mem, 0, PageSize::Size2M), Err(UnmapError::NotMapped));
    assert_eq!(pt.unmap(&mut mem, M2, PageSize::Size2M).unwrap().phys, M2);
    assert_eq!(pt.translate(&mem, 0x1000).unwrap().phys, 0x1000);
}

#[test]
fn out_of_memory_midway_returns_error_and_leaks_nothing() {
    let (mut mem, mut pt) = setup();
    for allowed in 0..3 {
        mem.limit = Some(allowed);
        let r = pt.map(&mut mem, 0x1000, 0x2000, PageSize::Size4K, P | U);
        assert_eq!(r, Err(MapError::OutOfMemory));
        assert_eq!((mem.live(), pt.count_tables(&mem)), (1, 1));
        assert!((0..ENTRIES).all(|i| mem.read_pte(pt.root(), i) == 0));
    }
    // With part of the path present, only the missing tables are needed and none leak.
    mem.limit = None;
    pt.map(&mut mem, 0x1000, 0x2000, PageSize::Size4K, P).unwrap();
    mem.limit = Some(1);
    assert_eq!(pt.map(&mut mem, G1, 0x3000, PageSize::Size4K, P | U), Err(MapError::OutOfMemory));
    assert_eq!(mem.live(), 4);
    // The failed user mapping did not widen the existing path to USER either.
    assert!(!Pte(mem.read_pte(pt.root(), 0)).flags().contains(U));
    mem.limit = Some(2);
    pt.map(&mut mem, G1, 0x3000, PageSize::Size4K, P).unwrap();
    assert_eq!(mem.live(), 6);
}

#[test]
fn protect_changes_flags_and_keeps_huge() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x1000, 0x2000, PageSize::Size4K, P | W).unwrap();
    pt.map(&mut mem, M2, 0x40_0000, PageSize::Size2M, P | W).unwrap();
    let nx = PteFlags::NO_EXECUTE;
    assert_eq!(pt.protect(&mut mem, 0x1000, P | nx), Ok(P | W));
    assert_eq!(pt.translate(&mem, 0x1000).unwrap().flags, P | nx);
    // Any address inside a huge page; the leaf keeps its PS bit and frame.
    assert_eq!(pt.protect(&mut mem, M2 + 0x5000, nx), Ok(P | W));
    let m = pt.translate(&mem, M2).unwrap();
    assert_eq!(m, Mapping { phys: 0x40_0000, size: PageSize::Size2M, flags: P | nx });
    assert_eq!(pt.unmap(&mut mem, M2, PageSize::Size2M).unwrap().size, PageSize::Size2M);
    assert_eq!(pt.protect(&mut mem, 0x9000, P), Err(UnmapError::NotMapped));
}

#[test]
fn unmap_range_visits_exactly_the_mapped_pages_and_frees_tables() {
    let (mut mem, mut pt) = setup();
    let mapped = [
        (0x1000, PageSize::Size4K),
        (0x1f_f000, PageSize::Size4K),
        (0x40_0000, PageSize::Size2M),
        (0x80_0000_0000, PageSize::Size4K), // another PML4 slot
        (0x100_4000_0000, PageSize::Size1G),
    ];
    for (i, (va, size)) in mapped.iter().enumerate() {
        pt.map(&mut mem, *va, (i as u64 + 1) << 30, *size, P | U).unwrap();
    }
    // Outside the range on both sides: must survive, with their tables.
    pt.map(&mut mem, 0, 0x1000, PageSize::Size4K, P).unwrap();
    pt.map(&mut mem, 0x200_0000_0000, 0x1000, PageSize::Size4K, P).unwrap();

    let mut seen = Vec::new();
    pt.unmap_range(&mut mem, 0x1000, 0x200_0000_0000, |va, m| seen.push((va, m.size, m.phys))).unwrap();
    let want: Vec<_> = mapped.iter().enumerate().map(|(i, (va, s))| (*va, *s, (i as u64 + 1) << 30)).collect();
    assert_eq!(seen, want);
    for (va, _) in mapped {
        assert_eq!(pt.translate(&mem, va), None);
    }
    assert!(pt.translate(&mem, 0).is_some() && pt.translate(&mem, 0x200_0000_0000).is_some());
    // root + (PDPT, PD, PT) for each survivor in its own PML4 slot.
    assert_eq!((pt.count_tables(&mem), mem.live()), (7, 7));
}

#[test]
fn unmap_range_skips_absent_subtrees() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x7f_ffff_f000, 0x1000, PageSize::Size4K, P).unwrap();
    mem.reads.set(0);
    let mut n = 0;
    pt.unmap_range(&mut mem, 0, 1 << 47, |_, _| n += 1).unwrap();
    assert_eq!((n, mem.live()), (1, 1));
    // 2^35 pages in the range; a handful of table scans is all it may take.
    assert!(mem.reads.get() < 10 * ENTRIES, "{} reads", mem.reads.get());
}

#[test]
fn unmap_range_rejects_partial_huge_page_and_changes_nothing() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x1000, 0x1000, PageSize::Size4K, P).unwrap();
    pt.map(&mut mem, M2, M2, PageSize::Size2M, P).unwrap();
    let mut called = false;
    for (s, e) in [(0, M2 + K4), (M2 + K4, 2 * M2), (M2 + K4, M2 + 2 * K4)] {
        let r = pt.unmap_range(&mut mem, s, e, |_, _| called = true);
        assert_eq!(r, Err(UnmapError::HugePageInTheWay));
    }
    assert!(!called);
    assert!(pt.translate(&mem, 0x1000).is_some() && pt.translate(&mem, M2).is_some());
    // Covering the whole huge page is fine; an empty range is a no-op.
    assert_eq!(pt.unmap_range(&mut mem, M2, M2, |_, _| called = true), Ok(()));
    assert!(!called);
    pt.unmap_range(&mut mem, 0, 2 * M2, |_, _| {}).unwrap();
    assert_eq!(mem.live(), 1);
}

#[test]
fn unmap_range_in_kernel_half_reports_canonical_addresses() {
    let (mut mem, mut pt) = setup();
    let va = KERNEL_BASE + 0x7000;
    pt.map(&mut mem, va, 0x7000, PageSize::Size4K, P).unwrap();
    let mut seen = Vec::new();
    pt.unmap_range(&mut mem, KERNEL_BASE, 0u64.wrapping_sub(K4), |va, _| seen.push(va)).unwrap();
    assert_eq!((seen, mem.live()), (vec![va], 1));
}

#[test]
fn clear_user_half_leaves_root_and_keeps_kernel_half() {
    let (mut mem, mut kernel) = setup();
    kernel.map(&mut mem, KERNEL_BASE, 0x1000, PageSize::Size4K, P | W).unwrap();
    kernel.map(&mut mem, KERNEL_BASE + G1, 0, PageSize::Size2M, P | W).unwrap();
    let kernel_tables = mem.live();

    // A user address space sharing the kernel's tables through PML4 entries 256..512.
    let mut user = PageTable::new(&mut mem).unwrap();
    for i in ENTRIES / 2..ENTRIES {
        let e = mem.read_pte(kernel.root(), i);
        mem.write_pte(user.root(), i, e);
    }
    let upper: Vec<u64> = (256..512).map(|i| mem.read_pte(user.root(), i)).collect();
    let mapped = [(0x1000, PageSize::Size4K), (0x20_0000, PageSize::Size2M), (0x7f_0000_0000, PageSize::Size1G)];
    for (va, size) in mapped {
        user.map(&mut mem, va, G1, size, P | U).unwrap();
    }
    user.map(&mut mem, 0x7fff_ffff_f000, 0x3000, PageSize::Size4K, P | U).unwrap();

    let mut seen = Vec::new();
    user.clear_user_half(&mut mem, |va, m| seen.push((va, m.size)));
    seen.sort_by_key(|s| s.0);
    let mut want = mapped.to_vec();
    want.push((0x7fff_ffff_f000, PageSize::Size4K));
    assert_eq!(seen, want);
    assert!((0..256).all(|i| mem.read_pte(user.root(), i) == 0));
    assert_eq!(upper, (256..512).map(|i| mem.read_pte(user.root(), i)).collect::<Vec<_>>());
    // Own root instead of the kernel root, same tables below it.
    assert_eq!(user.count_tables(&mem), kernel.count_tables(&mem));
    assert_eq!(mem.live(), kernel_tables + 1); // only the user root on top of the kernel's
    assert_eq!(user.translate(&mem, KERNEL_BASE).unwrap().phys, 0x1000);
    assert_eq!(kernel.translate(&mem, KERNEL_BASE + G1).unwrap().size, PageSize::Size2M);
}

#[test]
fn count_tables_counts_exactly() {
    let (mut mem, mut pt) = setup();
    assert_eq!(pt.count_tables(&mem), 1);
    let base = 0x4000_0000;
    for i in 0..513 {
        pt.map(&mut mem, base + i * K4, i * K4, PageSize::Size4K, P).unwrap();
    }
    // root + PDPT + PD + 2 PTs
    assert_eq!((pt.count_tables(&mem), mem.live()), (5, 5));
    // A 1G leaf costs no table below the PDPT.
    pt.map(&mut mem, 2 * G1, 0, PageSize::Size1G, P).unwrap();
    assert_eq!(pt.count_tables(&mem), 5);
}

#[test]
fn table_index_and_page_size_helpers() {
    let va = KERNEL_BASE | (3 << 30) | (5 << 21) | (7 << 12) | 0x123;
    let idx: Vec<_> = (1..=4).rev().map(|l| table_index(va, l)).collect();
    assert_eq!(idx, [256, 3, 5, 7]);
    for s in [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G] {
        assert_eq!(PageSize::from_level(s.level()), Some(s));
    }
    assert_eq!(PageSize::Size2M.bytes(), 2 << 20);
    let e = Pte::new(0x1234_5000, P | PteFlags::NO_EXECUTE);
    assert_eq!(
        (e.addr(), e.flags(), e.is_present(), e.is_huge()),
        (0x1234_5000, P | PteFlags::NO_EXECUTE, true, false)
    );
}

#[test]
fn remap_replaces_frame_and_flags_in_place() {
    let mut mem = SimMem::new();
    let mut pt = PageTable::new(&mut mem).unwrap();
    let ro = PteFlags::PRESENT | PteFlags::USER;
    pt.map(&mut mem, 0x40_0000, 0x1000, PageSize::Size4K, ro).unwrap();
    let tables = pt.count_tables(&mem);
    let old = pt.remap(&mut mem, 0x40_0000, 0x9000, ro | PteFlags::WRITABLE).unwrap();
    assert_eq!(old.phys, 0x1000);
    let m = pt.translate(&mem, 0x40_0000).unwrap();
    assert_eq!(m.phys, 0x9000);
    assert!(m.flags.contains(PteFlags::WRITABLE | PteFlags::USER));
    assert_eq!(pt.count_tables(&mem), tables);
    assert_eq!(pt.remap(&mut mem, 0x50_0000, 0x9000, ro), Err(UnmapError::NotMapped));
    assert_eq!(pt.remap(&mut mem, 0x40_0000, 0x9001, ro), Err(UnmapError::Misaligned));
    pt.map(&mut mem, 0x20_0000_0000, 0x40_0000, PageSize::Size2M, ro).unwrap();
    assert_eq!(pt.remap(&mut mem, 0x20_0000_0000, 0x9000, ro), Err(UnmapError::SizeMismatch));
}

/// A host maps pages; a guest grafts the host's PT (mshare): both see the same leaves. The
/// memory is left walked for the guest.
fn host_and_guest_sharing_a_pt() -> (SimMem, PageTable, PageTable, u64) {
    let mut mem = SimMem::new();
    let mut host = PageTable::new(&mut mem).unwrap();
    let mut guest = PageTable::new(mem.by(GUEST)).unwrap();
    mem.by(HOST);
    let base = 0x40_0000_0000;
    for i in 0..4 {
        host.map(&mut mem, base + i * K4, 0x100_0000 + i * K4, PageSize::Size4K, P | W | U).unwrap();
    }
    let pd =
        Pte(mem.read_pte(Pte(mem.read_pte(host.root(), table_index(base, 4))).addr(), table_index(base, 3))).addr();
    let pt = Pte(mem.read_pte(pd, table_index(base, 2))).addr();
    mem.share(pt);
    guest.graft(mem.by(GUEST), base, 1, pt, P | W | U).unwrap();
    (mem, host, guest, pt)
}

#[test]
fn grafted_table_shows_the_hosts_mappings_in_the_guest() {
    let (mut mem, mut host, guest, _) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    assert_eq!(guest.translate(&mem, base + 2 * K4).map(|m| m.phys), Some(0x100_0000 + 2 * K4));
    // A later host mapping in the same 2 MiB shows up in the guest with no guest work.
    host.map(mem.by(HOST), base + 9 * K4, 0x200_0000, PageSize::Size4K, P | U).unwrap();
    assert_eq!(guest.translate(&mem, base + 9 * K4).map(|m| m.phys), Some(0x200_0000));
    // Root + PDPT + PD in the guest, the PT is the host's.
    assert_eq!(guest.count_tables(&mem), 4);
}

#[test]
fn graft_rejects_misaligned_and_occupied_slots() {
    let (mut mem, _host, mut guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    assert_eq!(guest.graft(&mut mem, base + K4, 1, pt, P), Err(MapError::Misaligned));
    assert_eq!(guest.graft(&mut mem, base, 1, pt, P), Err(MapError::AlreadyMapped));
    assert_eq!(guest.graft(&mut mem, base, 4, pt, P), Err(MapError::Misaligned));
}

#[test]
fn guest_unmap_range_drops_its_reference_and_never_touches_host_leaves() {
    let (mut mem, host, mut guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    let live = mem.live();
    // Partly covered: left alone.
    let mut seen = 0;
    guest.unmap_range(&mut mem, base, base + K4, |_, _| seen += 1).unwrap();
    assert_eq!(seen, 0);
    assert!(guest.translate(&mem, base).is_some());
    // Wholly covered: the guest's entry goes, its own PD and PDPT are freed, the PT lives on.
    guest.unmap_range(&mut mem, base, base + M2, |_, _| seen += 1).unwrap();
    assert_eq!(seen, 0, "no leaf of the host was reported to the guest");
    assert!(guest.translate(&mem, base).is_none());
    assert_eq!(host.translate(&mem, base + 3 * K4).map(|m| m.phys), Some(0x100_0000 + 3 * K4));
    assert!(!mem.is_shared(pt), "the guest's reference is gone");
    assert_eq!(mem.live(), live - 2, "guest PD and PDPT freed, not the host's PT");
    assert_eq!(guest.count_tables(&mem), 1);
}

#[test]
fn guest_single_page_unmap_inside_a_shared_table_is_refused() {
    let (mut mem, host, mut guest, _) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    assert_eq!(guest.unmap(&mut mem, base, PageSize::Size4K), Err(UnmapError::SharedTable));
    assert!(host.translate(&mem, base).is_some());
}

#[test]
fn guest_teardown_and_ungraft_leave_the_hosts_table() {
    let (mut mem, host, mut guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    let mut seen = 0;
    guest.clear_user_half(&mut mem, |_, _| seen += 1);
    assert_eq!(seen, 0);
    assert!(!mem.is_shared(pt));
    assert_eq!(host.translate(&mem, base).map(|m| m.phys), Some(0x100_0000));
    // Graft again, then ungraft explicitly.
    mem.share(pt);
    guest.graft(&mut mem, base, 1, pt, P | W | U).unwrap();
    assert_eq!(guest.ungraft(&mut mem, base, 1), Ok(pt));
    assert_eq!(guest.count_tables(&mem), 1, "emptied guest tables above the graft are freed");
    assert_eq!(guest.ungraft(&mut mem, base, 1), Err(UnmapError::NotMapped));
    assert!(host.translate(&mem, base).is_some());
}

#[test]
fn table_at_finds_own_tables_and_grafts_without_allocating() {
    let (mut mem, host, guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    let live = mem.live();
    assert_eq!(guest.table_at(&mem, base + 5 * K4, 1), Some(pt));
    assert_eq!(host.table_at(mem.by(HOST), base, 1), Some(pt));
    assert!(guest.table_at(mem.by(GUEST), base, 2).is_some());
    assert_eq!(guest.table_at(&mem, base + M2, 1), None, "no table for the next 2 MiB");
    assert_eq!(guest.table_at(&mem, base, 4), None, "the root is not a level asked for");
    assert_eq!(mem.live(), live);
}

#[test]
fn replace_table_swaps_a_graft_for_a_private_copy_keeping_the_entry_flags() {
    let (mut mem, host, mut guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    mem.by(GUEST);
    let copy = mem.alloc_table(1).unwrap();
    for i in 0..ENTRIES {
        let e = mem.read_pte(pt, i);
        mem.write_pte(copy, i, e);
    }
    assert_eq!(guest.replace_table(&mut mem, base + K4, 1, copy), Err(UnmapError::Misaligned));
    assert_eq!(guest.replace_table(&mut mem, base + M2, 1, copy), Err(UnmapError::NotMapped));
    assert_eq!(guest.replace_table(&mut mem, base, 1, copy), Ok(pt));
    assert_eq!(guest.table_at(&mem, base, 1), Some(copy));
    assert_eq!(guest.translate(&mem, base + 2 * K4).map(|m| m.phys), Some(0x100_0000 + 2 * K4));
    // The guest's copy is its own now: a page unmapped in it stays in the host.
    guest.unmap(&mut mem, base + 2 * K4, PageSize::Size4K).unwrap();
    assert!(host.translate(&mem, base + 2 * K4).is_some());
    assert!(guest.translate(&mem, base + 2 * K4).is_none());
}

#[test]
fn next_mapped_finds_each_leaf_in_order() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x5000, 0x1000, PageSize::Size4K, P).unwrap();
    pt.map(&mut mem, 0x40_0000, 0x60_0000, PageSize::Size2M, P).unwrap();
    pt.map(&mut mem, 0x7f_0000_3000, 0x2000, PageSize::Size4K, P).unwrap();
    let mut found = Vec::new();
    let mut va = 0;
    while let Some((at, m)) = pt.next_mapped(&mem, va, 1 << 47) {
        found.push((at, m.phys));
        va = at + m.size.bytes();
    }
    assert_eq!(found, [(0x5000, 0x1000), (0x40_0000, 0x60_0000), (0x7f_0000_3000, 0x2000)]);
}

#[test]
fn next_mapped_stops_at_end_and_inside_a_leaf_returns_va() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x40_0000, 0x60_0000, PageSize::Size2M, P).unwrap();
    pt.map(&mut mem, 0x80_0000, 0x2000, PageSize::Size4K, P).unwrap();
    assert_eq!(pt.next_mapped(&mem, 0x40_1000, 1 << 47).map(|(va, _)| va), Some(0x40_1000));
    assert_eq!(pt.next_mapped(&mem, 0x60_0000, 0x80_0000), None);
    assert_eq!(pt.next_mapped(&mem, 0x60_0000, 0x80_1000).map(|(va, _)| va), Some(0x80_0000));
}

#[test]
fn next_mapped_over_the_whole_user_half_reads_few_entries() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x7fff_ffff_f000, 0x1000, PageSize::Size4K, P).unwrap();
    mem.reads.set(0);
    let (va, _) = pt.next_mapped(&mem, 0, 1 << 47).unwrap();
    assert_eq!(va, 0x7fff_ffff_f000);
    // Each absent entry costs one walk from the root: at most 512 per level times 4 reads,
    // where a page-by-page walk would make 2^35 probes.
    assert!(mem.reads.get() <= 4 * 4 * 512, "{} reads", mem.reads.get());
    assert_eq!(pt.next_mapped(&mem, va + K4, 1 << 47), None);
}

#[test]
fn tables_are_allocated_and_freed_with_their_level() {
    let (mut mem, mut pt) = setup();
    assert_eq!((mem.live_at(4), mem.live_at(3), mem.live_at(2), mem.live_at(1)), (1, 0, 0, 0));
    pt.map(&mut mem, 0x40_0000_1000, 0x20_3000, PageSize::Size4K, P | W | U).unwrap();
    assert_eq!((mem.live_at(4), mem.live_at(3), mem.live_at(2), mem.live_at(1)), (1, 1, 1, 1));
    // A 2 MiB leaf in another 512 GiB slot needs a PDPT and a PD, no PT.
    pt.map(&mut mem, 0x80_0000_0000, 0x40_0000, PageSize::Size2M, P | W | U).unwrap();
    assert_eq!((mem.live_at(3), mem.live_at(2), mem.live_at(1)), (2, 2, 1));
    // A failed allocation gives back what it took, each with its level (SimMem checks).
    mem.limit = Some(2);
    assert_eq!(pt.map(&mut mem, 0x100_0000_0000, 0x1000, PageSize::Size4K, P | U), Err(MapError::OutOfMemory));
    mem.limit = None;
    assert_eq!((mem.live_at(3), mem.live_at(2), mem.live_at(1)), (2, 2, 1));
    pt.unmap(&mut mem, 0x40_0000_1000, PageSize::Size4K).unwrap();
    assert_eq!((mem.live_at(3), mem.live_at(2), mem.live_at(1)), (1, 1, 0));
    pt.unmap_range(&mut mem, 0x80_0000_0000, 0x80_0020_0000, |_, _| {}).unwrap();
    assert_eq!((mem.live_at(4), mem.live_at(3), mem.live_at(2), mem.live_at(1)), (1, 0, 0, 0));
    // A grafted PT: the guest allocates its PDPT and PD, the PT stays the host's.
    let mut host = PageTable::new(&mut mem).unwrap();
    host.map(&mut mem, 0x40_0000_0000, 0x5000, PageSize::Size4K, P | U).unwrap();
    let host_pt = {
        let pdpt = Pte(mem.read_pte(host.root(), table_index(0x40_0000_0000, 4))).addr();
        let pd = Pte(mem.read_pte(pdpt, table_index(0x40_0000_0000, 3))).addr();
        Pte(mem.read_pte(pd, table_index(0x40_0000_0000, 2))).addr()
    };
    mem.share(host_pt);
    pt.graft(&mut mem, 0x40_0000_0000, 1, host_pt, P | W | U).unwrap();
    assert_eq!((mem.live_at(4), mem.live_at(3), mem.live_at(2), mem.live_at(1)), (2, 2, 2, 1));
    pt.ungraft(&mut mem, 0x40_0000_0000, 1).unwrap();
    pt.clear_user_half(&mut mem, |_, _| {});
    host.clear_user_half(&mut mem, |_, _| {});
    assert_eq!((mem.live_at(4), mem.live_at(3), mem.live_at(2), mem.live_at(1)), (2, 0, 0, 0));
}

#[cfg(test)]
mod cursor_tests;

#[test]
fn owner_unmap_inside_a_grafted_table_clears_entries_and_keeps_the_table() {
    let (mut mem, mut host, guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    let mut seen = Vec::new();
    host.unmap_range(mem.by(HOST), base, base + 2 * K4, |va, m| seen.push((va, m.phys))).unwrap();
    assert_eq!(seen, [(base, 0x100_0000), (base + K4, 0x100_0000 + K4)]);
    assert!(guest.translate(&mem, base).is_none(), "the guest sees the owner's unmap");
    assert!(guest.translate(&mem, base + 2 * K4).is_some());
    // A single-page unmap too, and emptying the table keeps it: the guest still holds it.
    host.unmap(&mut mem, base + 2 * K4, PageSize::Size4K).unwrap();
    host.unmap_range(&mut mem, base, base + M2, |va, m| seen.push((va, m.phys))).unwrap();
    assert_eq!(seen.len(), 3);
    assert!(mem.tables.contains_key(&pt) && mem.is_shared(pt), "an emptied grafted table stays");
    assert!((0..ENTRIES).all(|i| mem.read_pte(pt, i) == 0));
    // It stays linked in the owner: a new mapping there shows up in the guest.
    host.map(&mut mem, base + 5 * K4, 0x300_0000, PageSize::Size4K, P | U).unwrap();
    assert_eq!(guest.translate(&mem, base + 5 * K4).map(|m| m.phys), Some(0x300_0000));
    assert_eq!(host.count_tables(&mem), 4);
}

#[test]
fn owner_protect_inside_a_grafted_table_is_seen_by_the_guest() {
    let (mut mem, mut host, guest, _) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    host.protect(mem.by(HOST), base, P | U).unwrap();
    assert_eq!(guest.translate(&mem, base).unwrap().flags, P | U);
    let n = host.protect_range(&mut mem, base + K4, base + 4 * K4, |_, _| Some(P | U | PteFlags::NO_EXECUTE));
    assert_eq!(n, Ok(3));
    assert_eq!(guest.translate(&mem, base + 3 * K4).unwrap().flags, P | U | PteFlags::NO_EXECUTE);
    host.remap(&mut mem, base + 2 * K4, 0x700_0000, P | U).unwrap();
    assert_eq!(guest.translate(&mem, base + 2 * K4).map(|m| m.phys), Some(0x700_0000));
}

#[test]
fn owner_dying_first_leaves_the_guest_a_valid_empty_table_freed_once_at_its_ungraft() {
    let (mut mem, mut host, mut guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    let mut seen = 0;
    host.clear_user_half(mem.by(HOST), |_, _| seen += 1);
    assert_eq!(seen, 4, "the owner's teardown reports every leaf of its grafted table");
    assert!(mem.tables.contains_key(&pt), "the guest's reference keeps the table");
    assert!((0..ENTRIES).all(|i| mem.read_pte(pt, i) == 0), "no entry points at a page the owner freed");
    assert!(guest.translate(&mem, base).is_none());
    assert!(!mem.freed.contains(&pt));
    assert_eq!(guest.ungraft(mem.by(GUEST), base, 1), Ok(pt));
    assert_eq!(mem.freed.iter().filter(|&&t| t == pt).count(), 1, "freed exactly once, at the last graft");
    guest.clear_user_half(&mut mem, |_, _| seen += 1);
    assert_eq!(seen, 4);
    assert_eq!(mem.live(), 2, "the two roots");
}

#[test]
fn guest_dying_first_leaves_the_owners_tables_and_pages() {
    let (mut mem, host, mut guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    let host_tables = host.count_tables(&mem);
    let mut seen = 0;
    guest.clear_user_half(&mut mem, |_, _| seen += 1);
    assert_eq!(seen, 0, "the guest reports none of the owner's pages");
    assert!(!mem.is_shared(pt));
    assert_eq!(host.count_tables(&mem), host_tables);
    let phys: Vec<_> = (0..4).map(|i| host.translate(&mem, base + i * K4).map(|m| m.phys)).collect();
    assert_eq!(phys, (0..4).map(|i| Some(0x100_0000 + i * K4)).collect::<Vec<_>>());
    assert!(!mem.freed.contains(&pt));
}

#[test]
fn guest_partial_unmap_inside_a_graft_leaves_the_host_entries() {
    let (mut mem, host, mut guest, _) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    let mut seen = 0;
    guest.unmap_range(&mut mem, base + K4, base + 3 * K4, |_, _| seen += 1).unwrap();
    assert_eq!(seen, 0);
    assert_eq!(guest.unmap(&mut mem, base + K4, PageSize::Size4K), Err(UnmapError::SharedTable));
    for i in 0..4 {
        assert!(host.translate(&mem, base + i * K4).is_some());
        assert!(guest.translate(&mem, base + i * K4).is_some());
    }
}

#[test]
fn map_protect_and_remap_into_a_graft_are_refused_and_change_nothing() {
    let (mut mem, host, mut guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    let before: Vec<u64> = (0..ENTRIES).map(|i| mem.read_pte(pt, i)).collect();
    let live = mem.live();
    assert_eq!(guest.map(&mut mem, base + 8 * K4, 0x5000, PageSize::Size4K, P | U), Err(MapError::Graft));
    assert_eq!(guest.protect(&mut mem, base, P | U), Err(UnmapError::SharedTable));
    assert_eq!(guest.remap(&mut mem, base, 0x5000, P | U), Err(UnmapError::SharedTable));
    assert_eq!(guest.protect_range(&mut mem, 0, USER_END, |_, _| Some(P)), Err(UnmapError::SharedTable));
    assert_eq!(guest.move_range(&mut mem, base, base + G1, 4 * K4), Err(MapError::Graft));
    assert_eq!(guest.move_range(&mut mem, base + G1, base, 4 * K4), Err(MapError::Graft));
    let mut child_mem = SimMem::new();
    let mut child = PageTable::new(&mut child_mem).unwrap();
    let copy = guest.copy_range(&mut mem, &mut child, &mut child_mem, base, base + M2, |_, _| true, |_, _| {});
    assert_eq!(copy, Err(MapError::Graft));
    assert_eq!(child.count_tables(&child_mem), 1);
    assert_eq!((0..ENTRIES).map(|i| mem.read_pte(pt, i)).collect::<Vec<_>>(), before);
    assert_eq!(mem.live(), live);
    assert!(host.translate(&mem, base).unwrap().flags.contains(W));
}

#[test]
fn owner_move_out_of_a_grafted_pte_table_moves_entries_and_keeps_the_table() {
    let (mut mem, mut host, guest, pt) = host_and_guest_sharing_a_pt();
    let base = 0x40_0000_0000;
    // 2 MiB-aligned on both sides: a table of its own would move whole; a grafted one does not.
    host.move_range(mem.by(HOST), base, base + G1, M2).unwrap();
    assert_eq!(host.translate(&mem, base + G1 + K4).map(|m| m.phys), Some(0x100_0000 + K4));
    assert!(guest.translate(&mem, base + K4).is_none(), "the guest sees the pages leave");
    assert!(mem.tables.contains_key(&pt) && mem.is_shared(pt), "the grafted table stays in place");
    assert_eq!(guest.translate(&mem, base + G1), None);
}

// Entries the CPU updates: a dirty (or accessed) bit the CPU sets while an operation reads
// and rewrites the entry is neither lost from the entry nor missing from what is reported.

const D: PteFlags = PteFlags::DIRTY;
const A: PteFlags = PteFlags::ACCESSED;

#[test]
fn protect_keeps_a_dirty_bit_the_cpu_sets_during_the_change() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x40_0000, 0x9000, PageSize::Size4K, P | W | U).unwrap();
    mem.cpu_sets(&pt, 0x40_0000, D);
    let old = pt.protect(&mut mem, 0x40_0000, P | U).unwrap();
    assert!(old.contains(D), "the old flags report the dirty bit");
    assert_eq!(pt.translate(&mem, 0x40_0000).unwrap().flags, P | U | D);
}

#[test]
fn protect_range_keeps_an_accessed_and_dirty_bit_the_cpu_sets_during_the_change() {
    let (mut mem, mut pt) = setup();
    for i in 0..3 {
        pt.map(&mut mem, 0x40_0000 + i * K4, 0x9000 + i * K4, PageSize::Size4K, P | W | U).unwrap();
    }
    mem.cpu_sets(&pt, 0x40_1000, A | D);
    assert_eq!(pt.protect_range(&mut mem, 0x40_0000, 0x40_3000, |_, _| Some(P | U)), Ok(3));
    assert_eq!(pt.translate(&mem, 0x40_0000).unwrap().flags, P | U);
    assert_eq!(pt.translate(&mem, 0x40_1000).unwrap().flags, P | U | A | D);
}

#[test]
fn unmap_reports_the_dirty_bit_the_cpu_set_until_the_entry_went() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x40_0000, 0x9000, PageSize::Size4K, P | W | U).unwrap();
    mem.cpu_sets(&pt, 0x40_0000, D);
    assert!(pt.unmap(&mut mem, 0x40_0000, PageSize::Size4K).unwrap().flags.contains(D));
}

#[test]
fn unmap_range_reports_the_dirty_bit_the_cpu_set_until_the_entry_went() {
    let (mut mem, mut pt) = setup();
    for i in 0..3 {
        pt.map(&mut mem, 0x40_0000 + i * K4, 0x9000 + i * K4, PageSize::Size4K, P | W | U).unwrap();
    }
    mem.cpu_sets(&pt, 0x40_1000, D);
    let mut seen = Vec::new();
    pt.unmap_range(&mut mem, 0x40_0000, 0x40_3000, |va, m| seen.push((va, m.flags.contains(D)))).unwrap();
    assert_eq!(seen, [(0x40_0000, false), (0x40_1000, true), (0x40_2000, false)]);
}

#[test]
fn remap_reports_the_dirty_bit_of_the_replaced_page() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x40_0000, 0x9000, PageSize::Size4K, P | W | U).unwrap();
    mem.cpu_sets(&pt, 0x40_0000, D);
    assert!(pt.remap(&mut mem, 0x40_0000, 0xa000, P | W | U).unwrap().flags.contains(D));
    assert_eq!(pt.translate(&mem, 0x40_0000).unwrap().flags, P | W | U, "the new page starts clean");
}

#[test]
fn copy_range_write_protects_the_source_keeping_a_dirty_bit_set_meanwhile() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x40_0000, 0x9000, PageSize::Size4K, P | W | U).unwrap();
    let mut child_mem = SimMem::new();
    let mut child = PageTable::new(&mut child_mem).unwrap();
    mem.cpu_sets(&pt, 0x40_0000, D);
    pt.copy_range(&mut mem, &mut child, &mut child_mem, 0x40_0000, 0x40_1000, |_, _| true, |_, _| {}).unwrap();
    assert_eq!(pt.translate(&mem, 0x40_0000).unwrap().flags, P | U | D, "parent: read-only, still dirty");
    assert_eq!(child.translate(&child_mem, 0x40_0000).unwrap().flags, P | U | D, "child: as the parent's entry was");
}

#[test]
fn move_range_moves_an_entry_with_the_dirty_bit_set_until_it_left() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x40_0000, 0x9000, PageSize::Size4K, P | W | U).unwrap();
    // The destination's tables exist already, so nothing is written between the entry's
    // read and its move.
    pt.map(&mut mem, 0x80_0000, 0xa000, PageSize::Size4K, P | W | U).unwrap();
    mem.cpu_sets(&pt, 0x40_0000, D);
    pt.move_range(&mut mem, 0x40_0000, 0x80_1000, K4).unwrap();
    assert_eq!(pt.translate(&mem, 0x40_0000), None);
    assert_eq!(pt.translate(&mem, 0x80_1000).unwrap().flags, P | W | U | D);
}

#[test]
fn ensure_table_makes_the_path_once_and_a_later_map_fills_that_table() {
    let mut mem = SimMem::new();
    let mut pt = PageTable::new(&mut mem).unwrap();
    let base = 0x80_0000_0000;
    let pdpt = pt.ensure_table(&mut mem, base, 3).unwrap();
    assert_eq!(pt.count_tables(&mem), 2);
    assert_eq!(pt.ensure_table(&mut mem, base + 5 * M2, 3), Ok(pdpt), "the same table, nothing new");
    assert_eq!(pt.ensure_table(&mut mem, base, 4), Ok(pt.root()));
    let ptab = pt.ensure_table(&mut mem, base + 5 * M2, 1).unwrap();
    assert_eq!(pt.count_tables(&mem), 4);
    pt.map(&mut mem, base + 5 * M2 + K4, 0x30_0000, PageSize::Size4K, P | U).unwrap();
    assert_eq!(Pte(mem.read_pte(ptab, 1)).addr(), 0x30_0000);
    assert_eq!(pt.count_tables(&mem), 4, "map used the tables ensure_table made");
    pt.map(&mut mem, 0x4000_0000, 0x4000_0000, PageSize::Size1G, P | U).unwrap();
    assert_eq!(pt.ensure_table(&mut mem, 0x4000_0000, 1), Err(MapError::HugePageInTheWay));
    assert_eq!(pt.ensure_table(&mut mem, 1 << 47, 1), Err(MapError::NonCanonical));
}
