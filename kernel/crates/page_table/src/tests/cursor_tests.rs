//! The cursor and the range operations built on it (`cursor.rs`).

use super::*;

fn leaves(pt: &PageTable, mem: &SimMem, start: u64, end: u64) -> Vec<(u64, u64, PteFlags)> {
    let mut c = pt.cursor(start, end);
    let mut out = Vec::new();
    while let Some((va, m)) = c.next(mem) {
        out.push((va, m.phys, m.flags));
    }
    out
}

/// Maps `n` consecutive 4 KiB pages at `va` to frames from `pa`.
fn map_run(pt: &mut PageTable, mem: &mut SimMem, va: u64, pa: u64, n: u64, flags: PteFlags) {
    for i in 0..n {
        pt.map(mem, va + i * K4, pa + i * K4, PageSize::Size4K, flags).unwrap();
    }
}

#[test]
fn cursor_visits_each_leaf_in_order_with_its_start() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x5000, 0x1000, PageSize::Size4K, P).unwrap();
    pt.map(&mut mem, 0x40_0000, 0x60_0000, PageSize::Size2M, P).unwrap();
    pt.map(&mut mem, 0x7f_0000_3000, 0x2000, PageSize::Size4K, P | W).unwrap();
    assert_eq!(
        leaves(&pt, &mem, 0, USER_END),
        [(0x5000, 0x1000, P), (0x40_0000, 0x60_0000, P), (0x7f_0000_3000, 0x2000, P | W)]
    );
    // A large leaf straddling the start is reported from its own start; the end is exclusive.
    assert_eq!(leaves(&pt, &mem, 0x40_1000, 0x7f_0000_3000), [(0x40_0000, 0x60_0000, P)]);
    assert!(leaves(&pt, &mem, 0x6000, 0x40_0000).is_empty());
}

#[test]
fn cursor_reads_each_leaf_of_a_full_pte_table_once() {
    let (mut mem, mut pt) = setup();
    map_run(&mut pt, &mut mem, 0x40_0000_0000, 0x10_0000, 512, P);
    mem.reads.set(0);
    assert_eq!(leaves(&pt, &mem, 0x40_0000_0000, 0x40_0000_0000 + M2).len(), 512);
    // Three reads down to the PTE table, then one per entry (a walk from the root per
    // page would take four).
    assert_eq!(mem.reads.get(), 3 + 512);
}

#[test]
fn cursor_over_the_whole_user_half_skips_absent_subtrees_whole() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x7fff_ffff_f000, 0x1000, PageSize::Size4K, P).unwrap();
    mem.reads.set(0);
    assert_eq!(leaves(&pt, &mem, 0, USER_END).len(), 1);
    // One read per entry of the four tables on the way: 256 + 3 x 512 at most, where a
    // page-by-page walk would make 2^35 probes.
    assert!(mem.reads.get() <= 256 + 3 * 512, "{} reads", mem.reads.get());
}

#[test]
fn cursor_never_descends_into_a_shared_table() {
    let (mem, _host, guest, _) = host_and_guest_sharing_a_pt();
    assert!(leaves(&guest, &mem, 0, USER_END).is_empty(), "the guest does not walk the host's leaves");
}

#[test]
fn copy_range_copies_every_leaf_and_write_protects_both_where_asked() {
    let (mut mem, mut parent) = setup();
    // Crosses a PTE-table and a PMD-table boundary.
    let base = 0x40_0000_0000 - 3 * K4;
    map_run(&mut parent, &mut mem, base, 0x10_0000, 600, P | W | U);
    parent.map(&mut mem, 0x50_0000_0000, 0x9000, PageSize::Size4K, P | W | U).unwrap();
    // The child's tables live in their own memory, as each address space has its counters.
    let mut cmem = SimMem::new();
    let mut child = PageTable::new(&mut cmem).unwrap();
    let mut copied = Vec::new();
    parent
        .copy_range(
            &mut mem,
            &mut child,
            &mut cmem,
            0,
            USER_END,
            |va, _| va < 0x50_0000_0000,
            |va, m| copied.push((va, m.phys, m.flags)),
        )
        .unwrap();
    assert_eq!(copied.len(), 601);
    assert_eq!(leaves(&child, &cmem, 0, USER_END), copied, "the child has exactly what was reported");
    let ro = leaves(&parent, &mem, base, base + 600 * K4);
    assert!(ro.iter().all(|&(_, _, f)| f == P | U), "copy-on-write pages are read-only in the parent");
    assert!(copied[..600].iter().all(|&(_, _, f)| f == P | U), "and in the child");
    assert_eq!(copied[600], (0x50_0000_0000, 0x9000, P | W | U), "shared pages keep WRITABLE");
    assert_eq!(parent.translate(&mem, 0x50_0000_0000).unwrap().flags, P | W | U);
    // The child has the tables it needs for the same leaves: as many as the parent.
    assert_eq!(child.count_tables(&cmem), parent.count_tables(&mem));
}

#[test]
fn copy_range_out_of_memory_leaves_exactly_the_reported_entries() {
    let (mut mem, mut parent) = setup();
    map_run(&mut parent, &mut mem, 0x40_0000_0000 - 2 * K4, 0x10_0000, 4, P | W | U);
    let mut cmem = SimMem::new();
    let mut child = PageTable::new(&mut cmem).unwrap();
    // Root, PDPT, PD and PT for the first two pages, then nothing for the next PD.
    cmem.limit = Some(4);
    let mut copied = Vec::new();
    let r = parent.copy_range(
        &mut mem,
        &mut child,
        &mut cmem,
        0,
        USER_END,
        |_, _| true,
        |va, m| copied.push((va, m.phys, m.flags)),
    );
    assert_eq!(r, Err(MapError::OutOfMemory));
    assert_eq!(copied.len(), 2);
    assert_eq!(leaves(&child, &cmem, 0, USER_END), copied);
}

#[test]
fn protect_range_rewrites_only_the_leaves_asked_and_counts_them() {
    let (mut mem, mut pt) = setup();
    map_run(&mut pt, &mut mem, 0x10_0000, 0x20_0000, 8, P | W | U);
    let n = pt.protect_range(&mut mem, 0x10_2000, 0x10_6000, |va, m| {
        (va != 0x10_3000).then_some(m.flags - PteFlags::WRITABLE)
    });
    assert_eq!(n, Ok(3));
    let flags: Vec<PteFlags> = leaves(&pt, &mem, 0, USER_END).into_iter().map(|(_, _, f)| f).collect();
    let rw = P | W | U;
    assert_eq!(flags, [rw, rw, P | U, rw, P | U, P | U, rw, rw]);
    assert_eq!(pt.translate(&mem, 0x10_2000).unwrap().phys, 0x20_2000, "frames stay");
}

/// `n` pages at `old` with frames from 0x100_0000; the expected leaves after a move to `new`.
fn moved(pt: &mut PageTable, mem: &mut SimMem, old: u64, new: u64, n: u64) -> Vec<(u64, u64, PteFlags)> {
    map_run(pt, mem, old, 0x100_0000, n, P | W | U);
    (0..n).map(|i| (new + i * K4, 0x100_0000 + i * K4, P | W | U)).collect()
}

#[test]
fn move_range_of_aligned_ranges_moves_whole_pte_tables() {
    let (mut mem, mut pt) = setup();
    let (old, new) = (0x40_0000_0000, 0x60_0000_0000);
    let want = moved(&mut pt, &mut mem, old, new, 2048);
    let tables_before = mem.live();
    mem.reads.set(0);
    pt.move_range(&mut mem, old, new, 4 * M2).unwrap();
    // The four PTE tables moved, not their 2048 entries: the reads are those of the
    // freeing pass, which scans the emptied PMD and PUD tables, not one per entry.
    assert!(mem.reads.get() < 1200, "{} reads", mem.reads.get());
    assert_eq!(leaves(&pt, &mem, 0, USER_END), want);
    // Source PDPT and PD freed, destination's allocated: as many tables as before.
    assert_eq!(mem.live(), tables_before);
}

#[test]
fn move_range_of_unaligned_ranges_moves_entries_and_frees_emptied_tables() {
    let (mut mem, mut pt) = setup();
    let (old, new) = (0x40_0000_0000 - 5 * K4, 0x60_0000_3000);
    let want = moved(&mut pt, &mut mem, old, new, 1030);
    pt.move_range(&mut mem, old, new, 1030 * K4).unwrap();
    assert_eq!(leaves(&pt, &mem, 0, USER_END), want);
    let mut check = PageTable::new(&mut mem).unwrap();
    let before = mem.live();
    map_run(&mut check, &mut mem, new, 0x100_0000, 1030, P | W | U);
    let own = mem.live() - before + 1;
    assert_eq!(pt.count_tables(&mem), own, "the source's tables are gone, the destination has what it needs");
}

#[test]
fn move_range_out_of_memory_puts_every_entry_back() {
    let (mut mem, mut pt) = setup();
    let (old, new) = (0x40_0000_0000 - 5 * K4, 0x60_0000_0000);
    map_run(&mut pt, &mut mem, old, 0x100_0000, 2000, P | W | U);
    let before = leaves(&pt, &mem, 0, USER_END);
    let tables = mem.live();
    // Enough for the destination's PDPT and PD and one PTE table, not for all it needs.
    mem.limit = Some(3);
    assert_eq!(pt.move_range(&mut mem, old, new, 2000 * K4), Err(MapError::OutOfMemory));
    assert_eq!(leaves(&pt, &mem, 0, USER_END), before);
    assert_eq!(mem.live(), tables, "the destination's tables are freed again");
}

#[test]
fn move_range_leaves_other_mappings_in_shared_pte_tables() {
    let (mut mem, mut pt) = setup();
    // Source and destination in one 2 MiB: the same PTE table.
    let (old, new) = (0x40_0010_0000, 0x40_0000_0000);
    let want = moved(&mut pt, &mut mem, old, new, 16);
    pt.map(&mut mem, 0x40_001f_f000, 0x5000, PageSize::Size4K, P).unwrap();
    pt.move_range(&mut mem, old, new, 16 * K4).unwrap();
    let mut all = want;
    all.push((0x40_001f_f000, 0x5000, P));
    assert_eq!(leaves(&pt, &mem, 0, USER_END), all);
}
