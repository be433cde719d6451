//! The OOM killer (Linux's mm/oom_kill.c): when an allocation made for a process
//! finds only the kernel's reserve left (`frame::alloc_frames_above_min`), the
//! process whose death gives back the most memory gets SIGKILL
//! (`select_bad_process`, `oom_badness`), and the allocation is retried once the
//! victim's address space is gone. Init (pid 1), tasks without an address space
//! and processes with `oom_score_adj` -1000 are never chosen; while a victim (or
//! any process already dying) still holds its address space no second one is
//! chosen: the caller waits for that one instead.
//!
//! The kernel's own allocations (heap growth above all: pipe buffers, VMAs, files)
//! may take the reserve; on entry to the next system call, when free frames are
//! below the watermark, the OOM killer refills it (`refill_reserve`), as Linux's
//! kernel allocations would invoke it on reaching the min watermark.
//!
//! A read or write whose process allocation was refused (a copy faulting user
//! memory in, a page cache page) fails with ENOMEM before doing anything; the
//! dispatcher then calls the OOM killer and runs the call again
//! (`out_of_memory_after_refusal`).
//!
//! Called only where the caller holds no lock (system call entry and exit, the
//! user page-fault path, clone): it takes the task tables, each candidate's locks,
//! and sleeps.
#![deny(unsafe_code)]

use super::address_space::MmStruct;
use super::page::PageKind;
use super::PAGE_SIZE;
use crate::process::signal::{self, SigInfo};
use crate::process::task::{all_processes, Process};
use alloc::sync::{Arc, Weak};
use core::sync::atomic::Ordering;

/// `oom_score_adj` that exempts a process (OOM_SCORE_ADJ_MIN).
pub const OOM_SCORE_ADJ_MIN: i32 = -1000;
pub const OOM_SCORE_ADJ_MAX: i32 = 1000;

/// How often a task that waits for a victim's memory gives up the CPU before it
/// retries its allocation anyway, and for at least how long: the victim may be
/// exiting on another CPU, while this CPU has nothing else to run and each yield
/// returns at once.
const WAIT_YIELDS: usize = 500;
const WAIT_MIN_NS: u64 = 5_000_000_000;
/// How long it then waits, once the victim's last reference is gone, for its frames to
/// come back (freed on the CPU that dropped it).
const WAIT_FREED_NS: u64 = 200_000_000;

/// What `out_of_memory` did.
pub enum OomOutcome {
    /// The current process is the one dying: its allocation fails and its exit
    /// frees the memory (Linux's `task_will_free_mem(current)`).
    CurrentDying,
    /// A victim was killed now, or one is already dying: memory comes back when
    /// this address space is freed.
    Victim(Weak<MmStruct>),
    /// No process can be killed.
    NoVictim,
}

/// The address space of a process: its first thread's that still has one.
fn process_mm(p: &Process) -> Option<Arc<MmStruct>> {
    p.threads.lock().iter().find_map(|t| t.mm.lock().clone())
}

fn is_dying(p: &Process) -> bool {
    p.group_exit.lock().is_some()
}

/// Linux's `oom_badness`: resident pages + page-table pages + swap entries (none
/// here), shifted by `oom_score_adj` thousandths of `totalpages`; None for a
/// process that must not be killed.
pub fn oom_badness(p: &Process, mm: &MmStruct, totalpages: u64) -> Option<i64> {
    let adj = p.oom_score_adj.load(Ordering::Relaxed);
    if adj == OOM_SCORE_ADJ_MIN {
        return None;
    }
    // Atomic counters: read without the address space's locks, whoever holds them.
    let rss = mm.rss_total();
    let points = (rss + mm.pt_pages.load(Ordering::Relaxed)) as i64;
    Some(points + adj as i64 * totalpages as i64 / 1000)
}

/// /proc/PID/oom_score (fs/proc/base.c `proc_oom_score`): the badness scaled back
/// to 0..=1333; 0 for an exempt process or one without an address space.
pub fn oom_score(p: &Process) -> i64 {
    let totalpages = super::frame::stats().usable.max(1) as i64;
    let Some(mm) = process_mm(p) else { return 0 };
    match oom_badness(p, &mm, totalpages as u64) {
        Some(badness) => (1000 + badness * 1000 / totalpages) * 2 / 3,
        None => 0,
    }
}

enum Selected {
    Victim(Arc<Process>, Arc<MmStruct>),
    /// A process already dying still holds this address space (Linux's abort).
    Dying(Arc<MmStruct>),
    None,
}

/// Linux's `select_bad_process`: the eligible process with the highest badness.
fn select_bad_process(totalpages: u64) -> Selected {
    let mut chosen: Option<(i64, Arc<Process>, Arc<MmStruct>)> = None;
    for p in all_processes() {
        if p.pid == 1 || p.is_zombie() {
            continue;
        }
        // Kernel tasks and exited threads have no address space to free.
        let Some(mm) = process_mm(&p) else { continue };
        if is_dying(&p) {
            return Selected::Dying(mm);
        }
        let Some(points) = oom_badness(&p, &mm, totalpages) else { continue };
        if chosen.as_ref().is_none_or(|(best, _, _)| points > *best) {
            chosen = Some((points, p, mm));
        }
    }
    match chosen {
        Some((_, p, mm)) => Selected::Victim(p, mm),
        None => Selected::None,
    }
}

fn comm_of(p: &Process) -> alloc::string::String {
    let comm = p.first_thread().map(|t| *t.comm.lock()).unwrap_or([0; 16]);
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    alloc::string::String::from_utf8_lossy(&comm[..len]).into_owned()
}

/// Linux's `__oom_kill_process`: SIGKILL, then the line the kernel log keeps.
fn oom_kill_process(victim: &Arc<Process>, mm: &MmStruct) {
    signal::send_to_process(victim, SigInfo::new(signal::SIGKILL, signal::SI_KERNEL));
    let kb = PAGE_SIZE / 1024;
    let total_vm = mm.mmap_lock.try_read().map_or(0, |m| m.total_pages());
    let rss = mm.rss();
    log::error!(
        "Out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:{}kB, UID:{} pgtables:{}kB oom_score_adj:{}",
        victim.pid,
        comm_of(victim),
        total_vm * kb,
        rss[PageKind::Anon as usize] * kb,
        rss[PageKind::File as usize] * kb,
        rss[PageKind::Shmem as usize] * kb,
        victim.creds.lock().uid,
        mm.pt_pages.load(Ordering::Relaxed) * kb,
        victim.oom_score_adj.load(Ordering::Relaxed)
    );
}

/// Linux's `out_of_memory`: frees memory by killing a process, for the current
/// task whose allocation found only the kernel's reserve.
pub fn out_of_memory() -> OomOutcome {
    let current = crate::process::current();
    if is_dying(&current.process) {
        return OomOutcome::CurrentDying;
    }
    let totalpages = super::frame::stats().usable;
    let (victim, mm) = match select_bad_process(totalpages) {
        Selected::Victim(p, mm) => (p, mm),
        Selected::Dying(mm) => return OomOutcome::Victim(Arc::downgrade(&mm)),
        Selected::None => return OomOutcome::NoVictim,
    };
    log::error!(
        "{} invoked oom-killer: order=0, oom_score_adj={}",
        comm_of(&current.process),
        current.process.oom_score_adj.load(Ordering::Relaxed)
    );
    oom_kill_process(&victim, &mm);
    if Arc::ptr_eq(&victim, &current.process) {
        return OomOutcome::CurrentDying;
    }
    OomOutcome::Victim(Arc::downgrade(&mm))
}

/// Gives up the CPU until the victim's address space is freed (its last thread
/// exited, and its frames are back or `WAIT_FREED_NS` passed), a fatal signal reaches
/// the current task, or both `WAIT_YIELDS` turns and `WAIT_MIN_NS` passed.
fn wait_for_victim(mm: Weak<MmStruct>) {
    let current = crate::process::current();
    let until = crate::arch::apic::uptime_ns() + WAIT_MIN_NS;
    let mut gone_at = None;
    for turn in 0.. {
        if is_dying(&current.process) {
            return;
        }
        // The last reference is gone, but on another CPU the address space may still be
        // giving its frames back: wait for them too, a little.
        if mm.strong_count() == 0 {
            let now = crate::arch::apic::uptime_ns();
            let since = *gone_at.get_or_insert(now);
            if !at_min_watermark() || now - since >= WAIT_FREED_NS {
                return;
            }
        }
        if turn >= WAIT_YIELDS && crate::arch::apic::uptime_ns() >= until {
            return;
        }
        crate::process::sched::schedule();
    }
}

/// Linux's `pagefault_out_of_memory`, for a user page fault whose allocation failed:
/// true if the fault should simply be retried (memory was freed, or the current
/// process is the one dying), false if nothing could be killed or memory was not
/// short (an injected failure, `mm/fail.rs`): the faulting task is then killed.
pub fn pagefault_out_of_memory() -> bool {
    if !at_min_watermark() {
        return false;
    }
    match out_of_memory() {
        OomOutcome::CurrentDying => true,
        OomOutcome::Victim(mm) => {
            wait_for_victim(mm);
            true
        }
        OomOutcome::NoVictim => false,
    }
}

/// On entry to a system call (no lock held): while kernel allocations have taken
/// frames from the reserve, kill processes until it is whole again, so that one
/// system call's kernel allocations always find it (an infallible heap allocation
/// that found no frame would panic). Stops when nothing can be killed.
pub fn refill_reserve() {
    // Read without the allocator's lock: this runs on every system call.
    let below_min = || super::frame::free_frames_now() < super::frame::min_free_frames();
    for _ in 0..MAX_RETRIES {
        if !below_min() {
            return;
        }
        match out_of_memory() {
            OomOutcome::Victim(mm) => wait_for_victim(mm),
            OomOutcome::CurrentDying | OomOutcome::NoVictim => return,
        }
    }
}

/// After a system call failed with ENOMEM (no lock held): if a process allocation was
/// refused at the watermark since the call began (`frame::refused_above_min` moved
/// past `since`) and memory is still that low, kill a process and wait for its
/// memory; true if the call should run again.
pub fn out_of_memory_after_refusal(since: u64) -> bool {
    if super::frame::refused_above_min() == since || !at_min_watermark() {
        return false;
    }
    match out_of_memory() {
        OomOutcome::Victim(mm) => {
            wait_for_victim(mm);
            true
        }
        OomOutcome::CurrentDying | OomOutcome::NoVictim => false,
    }
}

/// Whether free frames are down to the reserve, so that an allocation for a
/// process failed for want of memory (and not, say, of address space).
fn at_min_watermark() -> bool {
    let s = super::frame::stats();
    s.free < super::frame::min_free_frames() + RETRY_SLACK
}

/// Frames above the min watermark under which a failed allocation counts as an
/// out-of-memory one: a clone needs a kernel stack (8) and page tables.
const RETRY_SLACK: u64 = 64;

/// Most victims one allocation may cost.
const MAX_RETRIES: usize = 16;

/// Runs `alloc` (an allocation for the current process that holds no lock) until it
/// succeeds, killing a process each time it failed at the min watermark; None once
/// nothing can be killed, the current process is itself being killed, or the failure
/// was not for want of frames.
pub fn retry_after_oom<T>(mut alloc: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..MAX_RETRIES {
        if let Some(v) = alloc() {
            return Some(v);
        }
        if !at_min_watermark() {
            return None;
        }
        match out_of_memory() {
            OomOutcome::Victim(mm) => wait_for_victim(mm),
            OomOutcome::CurrentDying | OomOutcome::NoVictim => return None,
        }
    }
    alloc()
}
