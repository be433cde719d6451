//! Range walks over tables, not pages (Linux's `walk_page_range` and the `pXd_none` skipping
//! of mm/memory.c and mm/mremap.c; Asterinas' `Cursor` in ostd/src/mm/page_table/cursor.rs).
//!
//! A [`Cursor`] moves forward through a range of the user half, visiting present leaves: an
//! absent entry at any level is skipped with one read (its whole span), a leaf costs one read
//! of its table, which the cursor keeps while it stays inside it, so a range costs what is
//! mapped in it. On top of it, the operations that act on whole tables:
//! [`PageTable::copy_range`] (fork's `copy_pte_range`: every entry of a PTE table copied, with
//! write protection, in one pass), [`PageTable::protect_range`] (`change_pte_range`) and
//! [`PageTable::move_range`] (`move_page_tables`, moving whole PTE tables as
//! `move_normal_pmd` where source and destination are 2 MiB-aligned).
//!
//! The cursor skips grafts ([`PhysMem::is_graft`]): their entries belong to their owner. The
//! operations that write refuse a range with a graft in it ([`PageTable::graft_in`]) before
//! changing anything.

use super::*;

/// The end of the user half: cursors and the range operations stay below it.
pub const USER_END: u64 = 1 << 47;

/// A position in a page table, moving forward through `[va, end)` of the user half.
pub struct Cursor {
    /// The next address to look at.
    va: u64,
    end: u64,
    /// `tables[l]`: the table at level `l` covering `va`, valid for `level..=4`;
    /// `bases[l]`: the first address it covers.
    tables: [u64; 5],
    bases: [u64; 5],
    level: usize,
    /// The leaf last returned by [`Cursor::next`]: (table, index, level).
    cur: Option<(u64, usize, usize)>,
}

impl Cursor {
    /// The first present leaf at or after the cursor and below its end: the leaf's first
    /// address (which is below the cursor's start for a large leaf straddling it) and
    /// mapping. Absent entries and grafts are skipped whole.
    pub fn next(&mut self, mem: &impl PhysMem) -> Option<(u64, Mapping)> {
        self.cur = None;
        while self.va < self.end {
            while self.level < 4 && self.va - self.bases[self.level] >= span(self.level + 1) {
                self.level += 1;
            }
            let (table, level) = (self.tables[self.level], self.level);
            let idx = table_index(self.va, level);
            let e = Pte(mem.read_pte(table, idx));
            let base = self.va & !(span(level) - 1);
            if !e.is_present() || (!is_leaf(e, level) && mem.is_graft(e.addr())) {
                self.va = base + span(level);
                continue;
            }
            if is_leaf(e, level) {
                self.cur = Some((table, idx, level));
                self.va = base + span(level);
                return Some((base, Mapping::from_leaf(e, level)));
            }
            self.level -= 1;
            self.tables[self.level] = e.addr();
            self.bases[self.level] = base;
        }
        None
    }

    /// The (table, index, level) of the leaf last returned by `next`.
    pub fn slot(&self) -> Option<(u64, usize, usize)> {
        self.cur
    }

    /// Replaces the flags of the leaf last returned by `next`, keeping its frame (PRESENT
    /// always, HUGE as its level says) and the ACCESSED and DIRTY bits the CPU set, up to
    /// the change (`update_pte`). Returns false when there is no such leaf.
    pub fn protect(&mut self, mem: &mut impl PhysMem, flags: PteFlags) -> bool {
        let Some((table, idx, level)) = self.cur else { return false };
        let mut new = flags | PteFlags::PRESENT;
        new.set(PteFlags::HUGE, level > 1);
        update_pte(mem, table, idx, |e| Pte::new(Pte(e).addr(), new).0 | (e & HARDWARE_BITS));
        true
    }
}

impl PageTable {
    /// A cursor over `[start, end)`, clamped to the user half (`start` rounded down to a page).
    pub fn cursor(&self, start: u64, end: u64) -> Cursor {
        let mut tables = [0; 5];
        tables[4] = self.root;
        Cursor {
            va: start.min(USER_END) & !(PAGE_SIZE - 1),
            end: end.min(USER_END),
            tables,
            bases: [0; 5],
            level: 4,
            cur: None,
        }
    }

    /// Whether a graft ([`PhysMem::is_graft`]) lies in `[start, end)` of the user half. Reads
    /// only the entries of tables above the PTE level that the range covers (absent subtrees
    /// cost one read), so it costs about one read per 2 MiB mapped.
    pub fn graft_in(&self, mem: &impl PhysMem, start: u64, end: u64) -> bool {
        fn scan(mem: &impl PhysMem, table: u64, level: usize, base: u64, first: u64, last: u64) -> bool {
            let span = span(level);
            let (i0, i1) = (((first - base) / span) as usize, ((last - base) / span) as usize);
            (i0..=i1).any(|i| {
                let e = Pte(mem.read_pte(table, i));
                if !e.is_present() || is_leaf(e, level) {
                    return false;
                }
                if mem.is_graft(e.addr()) {
                    return true;
                }
                let va = base + i as u64 * span;
                level > 2 && scan(mem, e.addr(), level - 1, va, first.max(va), last.min(va + span - 1))
            })
        }
        let (start, end) = (start.min(USER_END), end.min(USER_END));
        start < end && scan(mem, self.root, 4, 0, start & !(PAGE_SIZE - 1), end - 1)
    }

    /// The table at `level` (1 = the PTE table, 2 = the PMD table) covering `va`, allocating
    /// what is missing on the way (intermediate entries PRESENT|WRITABLE|USER, as `map`
    /// makes them for user pages). On failure, tables allocated here stay linked, empty: a
    /// later `unmap_range` over the range frees them.
    fn table_for(&mut self, mem: &mut impl PhysMem, va: u64, level: usize) -> Result<u64, MapError> {
        let mut table = self.root;
        for l in (level + 1..=4).rev() {
            let idx = table_index(va, l);
            let e = Pte(mem.read_pte(table, idx));
            table = if !e.is_present() {
                let t = mem.alloc_table(l - 1).ok_or(MapError::OutOfMemory)?;
                mem.write_pte(table, idx, Pte::new(t, PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::USER).0);
                t
            } else if is_leaf(e, l) {
                return Err(MapError::HugePageInTheWay);
            } else {
                if !e.flags().contains(PteFlags::USER) {
                    mem.write_pte(table, idx, e.0 | PteFlags::USER.bits());
                }
                e.addr()
            };
        }
        Ok(table)
    }

    /// Linux's `copy_page_range` for `[start, end)` (user half, page-aligned): every present
    /// 4 KiB leaf of this table is entered at the same address of `dst` (the child of a
    /// fork), a PTE table at a time: the destination's PTE table is looked up or allocated
    /// once per table, then each entry costs one read and one or two writes. Where
    /// `cow(va, mapping)` says so, WRITABLE is cleared in both (copy-on-write; the caller
    /// flushes this table's TLB). `on_copy(va, mapping)` follows each entry copied (with the
    /// flags `dst` got), so a failure (`OutOfMemory` for a destination table, or a slot
    /// already taken in `dst`) leaves exactly the reported entries in `dst`. Larger leaves are
    /// copied with `map`. A range with a graft in either table is refused (`MapError::Graft`)
    /// before anything is copied: whether and how a graft is inherited is its owner's policy.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_range(
        &mut self,
        mem: &mut impl PhysMem,
        dst: &mut PageTable,
        dst_mem: &mut impl PhysMem,
        start: u64,
        end: u64,
        mut cow: impl FnMut(u64, Mapping) -> bool,
        mut on_copy: impl FnMut(u64, Mapping),
    ) -> Result<(), MapError> {
        if self.graft_in(mem, start, end) || dst.graft_in(dst_mem, start, end) {
            return Err(MapError::Graft);
        }
        let mut cursor = self.cursor(start, end);
        // The destination PTE table of the 2 MiB the last entry lay in.
        let mut dst_pt: Option<(u64, u64)> = None;
        while let Some((va, mut m)) = cursor.next(mem) {
            let (table, idx, level) = cursor.slot().expect("a leaf was just returned");
            let write_protect = m.flags.contains(PteFlags::WRITABLE) && cow(va, m);
            if write_protect {
                m.flags.remove(PteFlags::WRITABLE);
            }
            if level != 1 {
                dst.map(dst_mem, va, m.phys, m.size, m.flags)?;
            } else {
                let region = va & !(span(2) - 1);
                let pt = match dst_pt {
                    Some((r, pt)) if r == region => pt,
                    _ => {
                        let pt = dst.table_for(dst_mem, va, 1)?;
                        dst_pt = Some((region, pt));
                        pt
                    }
                };
                if Pte(dst_mem.read_pte(pt, idx)).is_present() {
                    return Err(MapError::AlreadyMapped);
                }
                // The source loses WRITABLE atomically (Linux's `ptep_set_wrprotect`), keeping
                // a dirty bit set until then; the child gets the entry as it was then.
                let e = if write_protect {
                    update_pte(mem, table, idx, |e| e & !PteFlags::WRITABLE.bits()) & !PteFlags::WRITABLE.bits()
                } else {
                    mem.read_pte(table, idx)
                };
                dst_mem.write_pte(pt, idx, e);
            }
            if write_protect && level != 1 {
                update_pte(mem, table, idx, |e| e & !PteFlags::WRITABLE.bits());
            }
            on_copy(va, m);
        }
        Ok(())
    }

    /// Linux's `change_protection` for `[start, end)` of the user half: `f(va, mapping)`
    /// gives each present leaf its new flags, or None to leave it. Returns how many leaves
    /// changed; a range with a graft in it is refused (`SharedTable`) with nothing changed.
    /// The caller flushes the TLB.
    pub fn protect_range(
        &mut self,
        mem: &mut impl PhysMem,
        start: u64,
        end: u64,
        mut f: impl FnMut(u64, Mapping) -> Option<PteFlags>,
    ) -> Result<usize, UnmapError> {
        if self.graft_in(mem, start, end) {
            return Err(UnmapError::SharedTable);
        }
        let mut cursor = self.cursor(start, end);
        let mut changed = 0;
        while let Some((va, m)) = cursor.next(mem) {
            if let Some(flags) = f(va, m) {
                if flags != m.flags {
                    cursor.protect(mem, flags);
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    /// Linux's `move_page_tables`: the entries of `[old, old + len)` move to
    /// `[new, new + len)` (user half, page-aligned, not overlapping; the destination has no
    /// entries). Where a 2 MiB-aligned source chunk lies wholly in the range and its
    /// destination is 2 MiB-aligned too, the whole PTE table moves with one entry write
    /// (`move_normal_pmd`); elsewhere entries move one by one, a table at a time. Tables the
    /// source leaves empty are freed at the end. On failure (`OutOfMemory` for a destination
    /// table, `HugePageInTheWay` for a large leaf) every entry goes back where it was, which
    /// takes no memory (no source table is freed before the end), and the error is
    /// returned. A graft in either range is refused (`MapError::Graft`) before anything
    /// moves. A PTE table grafted elsewhere moves entry by entry, never whole: its guests
    /// keep it at its place. The caller flushes the TLB of both ranges.
    pub fn move_range(&mut self, mem: &mut impl PhysMem, old: u64, new: u64, len: u64) -> Result<(), MapError> {
        if (old | new | len) & (PAGE_SIZE - 1) != 0 {
            return Err(MapError::Misaligned);
        }
        let (old_end, new_end) = (old.checked_add(len), new.checked_add(len));
        if old_end.is_none_or(|e| e > USER_END) || new_end.is_none_or(|e| e > USER_END) {
            return Err(MapError::NonCanonical);
        }
        if self.graft_in(mem, old, old + len) || self.graft_in(mem, new, new + len) {
            return Err(MapError::Graft);
        }
        let noop = |_, _| unreachable!("no entry is left in a vacated range");
        match self.move_entries(mem, old, new, len) {
            Ok(()) => {
                // Free the tables the source left empty (Linux's free_pgtables).
                let _ = self.unmap_range(mem, old, old + len, noop);
                Ok(())
            }
            Err(e) => {
                // Everything in the destination came from the source: all of it goes back,
                // into the source's tables, none of which was freed.
                self.move_entries(mem, new, old, len).expect("moving entries back takes no memory");
                let _ = self.unmap_range(mem, new, new + len, noop);
                Err(e)
            }
        }
    }

    /// The moves of `move_range`, whole PTE tables first; on failure some entries may have
    /// moved.
    fn move_entries(&mut self, mem: &mut impl PhysMem, old: u64, new: u64, len: u64) -> Result<(), MapError> {
        let end = old + len;
        let pmd = span(2);
        let mut chunk = old.next_multiple_of(pmd);
        while old % pmd == new % pmd && chunk + pmd <= end {
            let (pd, idx) = match self.pmd_slot(mem, chunk) {
                Ok(slot) => slot,
                Err(next) => {
                    chunk = next;
                    continue;
                }
            };
            let e = Pte(mem.read_pte(pd, idx));
            if e.is_present() && !is_leaf(e, 2) && !mem.is_graft(e.addr()) && !mem.is_grafted(e.addr()) {
                let to = chunk - old + new;
                let dst_pd = self.table_for(mem, to, 2)?;
                let didx = table_index(to, 2);
                if !Pte(mem.read_pte(dst_pd, didx)).is_present() {
                    let e = mem.xchg_pte(pd, idx, 0);
                    mem.write_pte(dst_pd, didx, e);
                }
            }
            chunk += pmd;
        }
        // The entries left, one by one; the destination PTE table of the 2 MiB the last
        // entry went to is kept.
        let mut cursor = self.cursor(old, end);
        let mut dst_pt: Option<(u64, u64)> = None;
        while let Some((va, _)) = cursor.next(mem) {
            let (table, idx, level) = cursor.slot().expect("a leaf was just returned");
            if level != 1 {
                return Err(MapError::HugePageInTheWay);
            }
            let to = va - old + new;
            let region = to & !(pmd - 1);
            let pt = match dst_pt {
                Some((r, pt)) if r == region => pt,
                _ => {
                    let pt = self.table_for(mem, to, 1)?;
                    dst_pt = Some((region, pt));
                    pt
                }
            };
            // Taken out with its final bits (Linux's `move_ptes`: `ptep_get_and_clear`).
            let e = mem.xchg_pte(table, idx, 0);
            mem.write_pte(pt, table_index(to, 1), e);
        }
        Ok(())
    }

    /// The (PMD table, index) of the entry covering `va`, if the tables above exist and
    /// are this address space's own; otherwise the end of the span that has none.
    fn pmd_slot(&self, mem: &impl PhysMem, va: u64) -> Result<(u64, usize), u64> {
        let mut table = self.root;
        for l in [4, 3] {
            let e = Pte(mem.read_pte(table, table_index(va, l)));
            if !e.is_present() || is_leaf(e, l) || mem.is_graft(e.addr()) {
                return Err((va & !(span(l) - 1)) + span(l));
            }
            table = e.addr();
        }
        Ok((table, table_index(va, 2)))
    }
}
