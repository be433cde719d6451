//! TLB invalidation after page-table changes (Linux's `flush_tlb_page`,
//! `flush_tlb_range`, `flush_tlb_mm`, arch/x86/mm/tlb.c's `flush_tlb_mm_range`,
//! `native_flush_tlb_multi`, `flush_tlb_func` and `switch_mm_irqs_off`), addressed by
//! the page-table root of the address space changed, which need not be the running one
//! (truncate and mshare change other address spaces), and the batch that orders
//! flushes before frees (Linux's mm/mmu_gather.c, `MmuGather`).
//!
//! **Which CPUs may cache an address space** (Linux's `mm_cpumask`). No PCIDs and no lazy
//! TLB: loading CR3 drops every non-global translation, so a CPU holds translations of
//! exactly the address space whose root it has loaded. Every CR3 load goes through
//! [`switch_mm`] (from `MmStruct::activate` and `kernel_map::switch_address_space`; the
//! idle loop and exit load the kernel's root), which records the root in the CPU's
//! `PerCpu::loaded_root`; while it switches away from a root it also keeps that one in
//! `switching_from` until the new CR3 is in. [`mm_cpumask`] is then the CPUs whose
//! `loaded_root` or `switching_from` is the root. The race between a CPU loading a root
//! and another changing an entry of it is closed as Linux's: the loader sets its slot,
//! then a full barrier, then writes CR3 (and only then can its TLB fill); the changer
//! stores the entry, then a full barrier, then reads the slots. Either the changer sees
//! the slot and flushes that CPU, or the loader's walks come after the store and see the
//! new entry. A CPU leaving a root clears `switching_from` only after its CR3 write, so
//! it is flushed until its stale translations are gone.
//!
//! **Shootdown.** A flush of an address space runs on this CPU if it has the root loaded,
//! and sends every other CPU of the mask one request per operation (a call function
//! over the call-function IPI, `smp::smp_call_function_many`), carrying the range
//! (`invlpg` of each page up to [`INVLPG_MAX`] pages, else a full flush), and waits
//! until every target carried it out; only then does `MmuGather` free pages and tables.
//! A target that switched away meanwhile has nothing to flush (its CR3 load did it).
//! An entry of a table other address spaces graft (mshare) may be cached by any CPU
//! with a grafting address space loaded: that flush goes to every online CPU. Waiting
//! is deadlock-free because every spin that may run with interrupts masked (the
//! caller's wait for acknowledgements, and the lock spins of `sync`) runs this CPU's
//! call requests meanwhile, and the flush function takes no lock: a flush issued under
//! the address space's lock is carried out by a target spinning on that same lock.
//!
//! `tlb_shootdown=off` on the command line (a debug switch for the negative control of
//! the stale-translation tests) leaves other CPUs unflushed: only this CPU flushes.
//!
//! **Counters** (`PerCpu::tlb` per CPU, `MmStruct::tlb` per address space, shown in
//! `/proc/interrupts` and `/proc/PID/tlb`): each flush is counted by the CPU that
//! carries it out, into its own counters and those of the address space it has loaded
//! (the one flushed): requests carried out for another CPU (`ipis`), pages flushed one
//! by one, range flushes and full flushes. The sender counts the requests it sends
//! (`IpiKind::TlbShootdown`, one per target CPU per operation).
#![deny(unsafe_code)]

use super::PAGE_SIZE;
use crate::arch::percpu::{self, CpuMask, IpiKind, TlbCounters};
use crate::arch::{cpu, smp};
use arrayvec::ArrayVec;
use core::cell::RefCell;
use core::sync::atomic::{fence, AtomicBool, Ordering};

/// Above this many pages a range flush reloads CR3 instead of `invlpg`s (Linux's
/// `tlb_single_page_flush_ceiling` is 33).
pub const INVLPG_MAX: u64 = 32;

/// Whether other CPUs are shot down (`tlb_shootdown=off` clears it).
static SHOOTDOWN: AtomicBool = AtomicBool::new(true);

/// The line printed when the command line turns shootdowns off (the runner greps it).
pub const SHOOTDOWN_OFF_LINE: &str = "mshare-kernel: tlb_shootdown=off: TLB shootdowns disabled";

/// Reads `tlb_shootdown=off` from the command line.
pub fn init(cmdline: &str) {
    if crate::cmdline::get(cmdline, "tlb_shootdown") == Some("off") {
        SHOOTDOWN.store(false, Ordering::SeqCst);
        crate::println!("{}", SHOOTDOWN_OFF_LINE);
    }
}

/// Turns remote shootdowns on or off; returns the previous setting (for the tests of the
/// switch itself).
pub fn set_shootdown(on: bool) -> bool {
    SHOOTDOWN.swap(on, Ordering::SeqCst)
}

/// Linux's `switch_mm_irqs_off`: loads `root` into this CPU's CR3, keeping the CPU masks
/// true (see the header for the order). `counters` are the address space's, into which
/// this CPU counts its flushes while `root` stays loaded (None for the kernel's root);
/// they must outlive the time `root` is loaded here (an address space is never freed
/// while a CPU has it loaded).
pub fn switch_mm(root: u64, counters: Option<&TlbCounters>) {
    cpu::without_interrupts(|| {
        let pc = percpu::this_cpu();
        let old = pc.loaded_root.load(Ordering::Relaxed);
        pc.switching_from.store(old, Ordering::SeqCst);
        // A full barrier (xchg) between the mask update and the CR3 write.
        pc.loaded_root.store(root, Ordering::SeqCst);
        pc.loaded_mm_tlb.store(counters.map_or(0, |c| c as *const TlbCounters as usize), Ordering::Relaxed);
        super::kernel_map::load_cr3(root);
        pc.switching_from.store(0, Ordering::SeqCst);
    })
}

/// The CPUs that may cache translations of the address space with root `root` (Linux's
/// `mm_cpumask`). The caller changed the entries first and then issued a full barrier.
pub fn mm_cpumask(root: u64) -> CpuMask {
    let mut mask = CpuMask::empty();
    for c in percpu::cpu_online_mask().iter() {
        let pc = percpu::cpu(c);
        // `loaded_root` before `switching_from`: a CPU between the two stores is seen in one.
        if pc.loaded_root.load(Ordering::SeqCst) == root || pc.switching_from.load(Ordering::SeqCst) == root {
            mask.set(c);
        }
    }
    mask
}

/// One flush request (Linux's `struct flush_tlb_info`).
struct FlushInfo<'a> {
    /// The address space to flush; 0: whichever user address space a CPU has loaded (a
    /// grafted table changed).
    root: u64,
    start: u64,
    end: u64,
    full: bool,
    /// A host's change (mshare): each CPU flushes the range, moved by each sharer's offset,
    /// in the sharers whose root it has loaded (`root` is then unused).
    sharers: &'a [Sharer],
}

/// The counters of the address space this CPU has loaded (None for the kernel's root).
fn loaded_mm_counters(pc: &percpu::PerCpu) -> Option<&TlbCounters> {
    let p = pc.loaded_mm_tlb.load(Ordering::Relaxed);
    if p == 0 {
        return None;
    }
    // SAFETY: `switch_mm` stored the address of the loaded address space's counters, on
    // this CPU, with interrupts masked; that address space lives at least until this CPU
    // loads another root, which cannot happen while this CPU runs this flush.
    #[allow(unsafe_code)]
    let counters = unsafe { &*(p as *const TlbCounters) };
    Some(counters)
}

/// Linux's `flush_tlb_func`: carries out `info` on this CPU, if it has the address space
/// loaded; `remote` when for another CPU.
fn flush_here(info: &FlushInfo, remote: bool) {
    let pc = percpu::this_cpu();
    let loaded = pc.loaded_root.load(Ordering::Relaxed);
    if !info.sharers.is_empty() {
        // Each window of the loaded address space onto the host (usually one).
        for s in info.sharers.iter().filter(|s| s.root == loaded) {
            let moved = FlushInfo {
                root: loaded,
                start: info.start.wrapping_add(s.delta),
                end: info.end.wrapping_add(s.delta),
                full: info.full,
                sharers: &[],
            };
            flush_here(&moved, remote);
        }
        return;
    }
    if info.root != 0 && loaded != info.root {
        // Switched away since the sender read the mask: the CR3 load flushed it.
        return;
    }
    let mm = loaded_mm_counters(pc);
    let count = |f: fn(&TlbCounters) -> &core::sync::atomic::AtomicU64, n: u64| {
        f(&pc.tlb).fetch_add(n, Ordering::Relaxed);
        if let Some(m) = mm {
            f(m).fetch_add(n, Ordering::Relaxed);
        }
    };
    if remote {
        count(|c| &c.ipis, 1);
    }
    let pages = info.end.saturating_sub(info.start) / PAGE_SIZE;
    if info.full || pages > INVLPG_MAX {
        cpu::flush_tlb_all();
        count(|c| &c.full, 1);
    } else {
        let mut va = info.start;
        while va < info.end {
            cpu::invlpg(va);
            va += PAGE_SIZE;
        }
        count(|c| &c.pages, pages);
        count(|c| &c.ranges, 1);
    }
}

/// The call function of a shootdown request, on a target CPU.
fn flush_tlb_func(arg: usize) {
    percpu::this_cpu().note_ipi_received(IpiKind::TlbShootdown);
    // SAFETY: `arg` is the address of a `FlushInfo` on the stack of the sender, which
    // waits until every target has returned from here.
    #[allow(unsafe_code)]
    let info = unsafe { &*(arg as *const FlushInfo) };
    flush_here(info, true);
}

/// Linux's `flush_tlb_mm_range`: flushes [start, end) (everything if `full`) of the
/// address space with root `root` on every CPU that may cache it (every online CPU if
/// `shared`: a grafted table changed), and returns when all have. Call after the entries
/// changed and before what they mapped is freed.
fn flush_tlb_mm_range(root: u64, start: u64, end: u64, full: bool, shared: bool) {
    // The entry stores before the mask read (the header's race).
    fence(Ordering::SeqCst);
    let mask = if shared { percpu::cpu_online_mask() } else { mm_cpumask(root) };
    flush_on(mask, &FlushInfo { root: if shared { 0 } else { root }, start, end, full, sharers: &[] });
}

/// Carries `info` out on the CPUs of `mask`: here if this CPU is one, and on each other one
/// through a call-function request, waiting until all have. Returns the requests sent.
fn flush_on(mask: CpuMask, info: &FlushInfo) -> u64 {
    let me = percpu::cpu_id();
    if mask.contains(me) {
        flush_here(info, false);
    }
    let mut targets = mask;
    targets.clear(me);
    if targets.is_empty() || !SHOOTDOWN.load(Ordering::Relaxed) {
        return 0;
    }
    let n = targets.count() as u64;
    percpu::this_cpu().note_ipi_sent(IpiKind::TlbShootdown, n);
    smp::smp_call_function_many(targets, flush_tlb_func, info as *const FlushInfo as usize);
    n
}

/// An address space that grafts a host's tables (mshare): translations of host address
/// `va` are cached by its CPUs at `va + delta` (wrapping), one entry per window onto the
/// host, for as long as the window holds grafts.
#[derive(Clone, Copy, Debug)]
pub struct Sharer {
    pub root: u64,
    pub delta: u64,
    /// Tables of the host this window has grafted.
    pub grafts: u32,
}

/// The flushes of one host's changes, counted where they were sent (the region's stats).
#[derive(Default)]
pub struct SharerFlushStats {
    /// Flush operations of the host (each a range or everything).
    pub flushes: core::sync::atomic::AtomicU64,
    /// Requests sent to other CPUs: one per CPU that has a grafting sharer loaded.
    pub ipis: core::sync::atomic::AtomicU64,
    /// Requests a flush of every other online CPU would have sent for the same flushes.
    pub ipis_all_cpus: core::sync::atomic::AtomicU64,
}

/// The sharers of a host's page tables (mshare's list of guests flushed in turn, 2026):
/// every change of the host's translations is flushed on the CPUs of the address spaces
/// that graft its tables, at their own addresses, and nowhere else. A guest joins before
/// its graft is linked and leaves after its ungraft was flushed on its own CPUs, so no
/// CPU caching a host entry is ever left out.
pub struct Sharers {
    /// Taken under the host's and the guests' page-table locks; held across a host's
    /// flush (whose targets take no lock).
    list: crate::sync::SpinLock<alloc::vec::Vec<Sharer>, crate::sync::order::MshareSharers>,
    pub stats: SharerFlushStats,
}

impl Sharers {
    pub fn new() -> Sharers {
        Sharers { list: crate::sync::SpinLock::new(alloc::vec::Vec::new()), stats: SharerFlushStats::default() }
    }

    /// The window of the address space `root` at offset `delta` from the host grafts one
    /// more table (before it is linked).
    pub fn get(&self, root: u64, delta: u64) -> crate::errno::KResult<()> {
        let mut l = self.list.lock();
        if let Some(s) = l.iter_mut().find(|s| s.root == root && s.delta == delta) {
            s.grafts += 1;
            return Ok(());
        }
        super::fail::try_reserve(&mut *l, 1)?;
        l.push(Sharer { root, delta, grafts: 1 });
        Ok(())
    }

    /// That window dropped one graft, and flushed its CPUs since.
    pub fn put(&self, root: u64, delta: u64) {
        let mut l = self.list.lock();
        if let Some(i) = l.iter().position(|s| s.root == root && s.delta == delta) {
            l[i].grafts -= 1;
            if l[i].grafts == 0 {
                l.swap_remove(i);
            }
        }
    }

    /// Address spaces holding grafts (one may have several windows onto the host).
    pub fn address_spaces(&self) -> u64 {
        let l = self.list.lock();
        l.iter().enumerate().filter(|(i, s)| !l[..*i].iter().any(|t| t.root == s.root)).count() as u64
    }

    /// Windows holding grafts, and the grafts they hold.
    pub fn counts(&self) -> (usize, u64) {
        let l = self.list.lock();
        (l.len(), l.iter().map(|s| s.grafts as u64).sum())
    }

    /// Linux's `flush_tlb_mm_range` for a host: [start, end) of the host's addresses
    /// (everything if `full`) on every CPU that has a grafting sharer loaded, each at that
    /// sharer's addresses; returns when all have. The list is held across the wait, so a
    /// sharer that goes meanwhile (its `remove` waits) has been flushed or has dropped its
    /// grafts behind its own flush.
    fn flush(&self, start: u64, end: u64, full: bool) {
        fence(Ordering::SeqCst);
        let l = self.list.lock();
        let mut mask = CpuMask::empty();
        for s in l.iter() {
            for c in mm_cpumask(s.root).iter() {
                mask.set(c);
            }
        }
        let all = percpu::cpu_online_mask().count().saturating_sub(1) as u64;
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        self.stats.ipis_all_cpus.fetch_add(all, Ordering::Relaxed);
        let sent = flush_on(mask, &FlushInfo { root: 0, start, end, full, sharers: &l });
        self.stats.ipis.fetch_add(sent, Ordering::Relaxed);
    }

    /// A host entry mapping `va` changed.
    pub fn flush_page(&self, va: u64) {
        self.flush(va, va + PAGE_SIZE, false);
    }
}

impl Default for Sharers {
    fn default() -> Sharers {
        Sharers::new()
    }
}

/// A user entry mapping `va` changed: flushes it wherever the address space is loaded.
pub fn flush_page(root: u64, va: u64) {
    flush_tlb_mm_range(root, va, va + PAGE_SIZE, false, false);
}

pub fn flush_range(root: u64, start: u64, end: u64) {
    flush_tlb_mm_range(root, start, end, false, false);
}

pub fn flush_mm(root: u64) {
    flush_tlb_mm_range(root, 0, 0, true, false);
}

/// Linux's `flush_tlb_fix_spurious_fault`: a fault found the entry already as the access
/// needs (another CPU filled or upgraded it); only this CPU's stale entry for `va` goes.
pub fn flush_spurious_fault(root: u64, va: u64) {
    if percpu::this_cpu().loaded_root.load(Ordering::Relaxed) == root {
        cpu::invlpg(va);
    }
}

/// Pages one batch holds before it flushes and frees them (Linux's `MAX_GATHER_BATCH`,
/// smaller: the batch lives on the kernel stack).
const GATHER_PAGES: usize = 128;
/// Page-table pages one batch holds (Linux's `MAX_TABLE_BATCH`).
const GATHER_TABLES: usize = 32;

/// What an operation unmapped or downgraded and has not flushed yet.
struct Batch {
    /// The range of translations to flush (`start >= end`: none yet).
    start: u64,
    end: u64,
    /// Flush the whole address space instead of the range.
    full: bool,
    /// An entry of a table other address spaces graft changed: they must flush too.
    shared: bool,
    /// Pages whose references are dropped after the flush.
    pages: ArrayVec<u64, GATHER_PAGES>,
    /// Page-table pages whose references are dropped after the flush.
    tables: ArrayVec<u64, GATHER_TABLES>,
}

/// Linux's `struct mmu_gather` (mm/mmu_gather.c, include/asm-generic/tlb.h): an
/// operation that removes or downgrades translations of an address space records here
/// the range to flush and the pages and page-table pages it takes out, and the gather
/// flushes first and frees after, so no CPU can reach a freed frame through a stale
/// translation. The batch flushes and frees early when it fills (`tlb_flush_mmu`), and
/// at the end (`finish`, or when dropped: every path, errors included, ends with the
/// flush). The address space is named by its root; the flush is a shootdown of every
/// CPU that has it loaded (`mm_cpumask`).
pub struct MmuGather {
    root: u64,
    /// A host's gather (mshare): its flushes go to the sharers, never to `root` (which no
    /// CPU loads).
    sharers: Option<alloc::sync::Arc<Sharers>>,
    batch: RefCell<Batch>,
    /// Page-table pages gathered since the batch began, flushed or not.
    tables_removed: core::cell::Cell<u64>,
}

impl MmuGather {
    /// `tlb_gather_mmu`: a batch for the address space whose page-table root is `root`.
    pub fn new(root: u64) -> MmuGather {
        MmuGather {
            root,
            sharers: None,
            batch: RefCell::new(Batch {
                start: u64::MAX,
                end: 0,
                full: false,
                shared: false,
                pages: ArrayVec::new(),
                tables: ArrayVec::new(),
            }),
            tables_removed: core::cell::Cell::new(0),
        }
    }

    /// `tlb_gather_mmu`: a batch for `mm`, flushing wherever its translations are cached
    /// (for an mshare host: in its sharers).
    pub fn for_mm(mm: &super::address_space::MmStruct) -> MmuGather {
        let mut g = MmuGather::new(mm.root());
        g.sharers = mm.sharers.clone();
        g
    }

    /// `tlb_gather_mmu_fullmm`: the address space is being torn down; the flush, on the
    /// CPUs that still have it loaded (none, once its last task switched away), is of
    /// everything.
    pub fn new_fullmm(root: u64) -> MmuGather {
        let g = MmuGather::new(root);
        g.batch.borrow_mut().full = true;
        g
    }

    /// Records that translations of [start, end) changed (an entry was cleared or lost
    /// write permission): they are flushed before anything gathered is freed.
    pub fn flush_range(&self, start: u64, end: u64) {
        let mut b = self.batch.borrow_mut();
        b.start = b.start.min(start);
        b.end = b.end.max(end);
    }

    /// An entry of `table`, grafted by other address spaces (mshare), changed: the flush
    /// covers them as well as this one. Which CPUs have a grafting address space loaded
    /// is not tracked per table: the flush goes to every online CPU, each flushing the
    /// range in whichever user address space it has loaded.
    pub fn shared_table(&self, _table: u64) {
        self.batch.borrow_mut().shared = true;
    }

    /// `tlb_remove_page`: the entry for `va` mapping `page` was cleared; the page's
    /// reference is dropped after the flush.
    pub fn remove_page(&self, va: u64, page: u64) {
        self.flush_range(va, va + PAGE_SIZE);
        self.gather(page, |b| &mut b.pages);
    }

    /// `tlb_remove_table`: a page-table page unlinked from its parent; its reference is
    /// dropped after the flush (the CPU's paging-structure caches may still walk it).
    pub fn remove_table(&self, table: u64) {
        self.tables_removed.set(self.tables_removed.get() + 1);
        self.gather(table, |b| &mut b.tables);
    }

    /// How many page-table pages `remove_table` took since the batch began.
    pub fn tables_removed(&self) -> u64 {
        self.tables_removed.get()
    }

    /// Adds `frame` to the batch's list that `list` picks; when that fills, flushes and
    /// frees at once (Linux's `tlb_flush_mmu` when `__tlb_remove_page` reports the batch
    /// full), so the next push has room.
    fn gather<const N: usize>(&self, frame: u64, list: fn(&mut Batch) -> &mut ArrayVec<u64, N>) {
        let full = {
            let mut b = self.batch.borrow_mut();
            let l = list(&mut b);
            l.push(frame);
            l.is_full()
        };
        if full {
            self.flush_mmu();
        }
    }

    /// `tlb_flush_mmu`: flushes what was recorded on every CPU that may cache it, waits
    /// for all, then frees what was gathered.
    pub fn flush_mmu(&self) {
        let mut b = self.batch.borrow_mut();
        // `invlpg` also drops the paging-structure caches, so a range flush covers the
        // tables freed under it too; tables freed with no range need a full flush.
        let full = b.full || (!b.tables.is_empty() && b.start >= b.end);
        if full || b.start < b.end {
            match &self.sharers {
                Some(s) => s.flush(b.start, b.end, full),
                None => flush_tlb_mm_range(self.root, b.start, b.end, full, b.shared),
            }
        }
        b.start = u64::MAX;
        b.end = 0;
        let Batch { pages, tables, .. } = &mut *b;
        for p in pages.drain(..) {
            super::page::put_page(p);
        }
        for t in tables.drain(..) {
            super::page::put_table_page(t);
        }
    }

    /// `tlb_finish_mmu`: the last flush and frees of the operation.
    pub fn finish(self) {
        // Drop does it.
    }
}

impl Drop for MmuGather {
    fn drop(&mut self) {
        self.flush_mmu();
    }
}

pub mod tests;
