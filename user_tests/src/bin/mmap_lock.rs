//! The address-space locks seen from user space: the threads of one process fault pages
//! in, drop them (MADV_DONTNEED), map, protect and unmap, and read /proc, all at once, and
//! each gets what it would get alone; a thread populating a large mapping holds up neither
//! another thread's faults nor its /proc reads (Linux's `mmap_lock` is taken shared by
//! faults, populate, MADV_DONTNEED and /proc readers).

use libc::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use user_tests::{mmap, mmap_anon, run_tests, sys, tests, wait_until, PAGE};

fn main() {
    run_tests(
        "mmap_lock",
        tests![
            threads_fault_and_drop_pages_while_another_thread_maps_and_unmaps,
            a_long_populate_in_one_thread_holds_up_neither_faults_nor_proc_reads_of_another,
        ],
    )
}

fn munmap(addr: usize, len: usize) {
    sys!(SYS_munmap, addr, len).expect("munmap");
}

fn mprotect(addr: usize, len: usize, prot: i32) {
    sys!(SYS_mprotect, addr, len, prot).expect("mprotect");
}

fn madvise(addr: usize, len: usize, advice: i32) {
    sys!(SYS_madvise, addr, len, advice).expect("madvise");
}

fn read_word(addr: usize) -> u64 {
    // SAFETY: every address passed is inside a live read-write mapping of this test.
    unsafe { std::ptr::read_volatile(addr as *const u64) }
}

fn write_word(addr: usize, v: u64) {
    // SAFETY: as read_word.
    unsafe { std::ptr::write_volatile(addr as *mut u64, v) }
}

/// Resident pages of this process (the second field of /proc/self/statm).
fn resident_pages() -> usize {
    let text = std::fs::read_to_string("/proc/self/statm").expect("statm");
    text.split_whitespace().nth(1).expect("resident field").parse().expect("a number")
}

/// Three threads each drop their slice of one mapping (MADV_DONTNEED), check it reads as
/// zeroes again, fill every page with a word naming thread, round and page, and read
/// every word back; meanwhile a fourth maps, fills, write-protects, reads and unmaps
/// mappings of its own in a loop. Every thread must see exactly what it wrote: faults of
/// several threads, zaps and VMA changes of the same address space interleave without
/// losing a page or mapping one where another belongs.
fn threads_fault_and_drop_pages_while_another_thread_maps_and_unmaps() {
    const THREADS: usize = 3;
    const PAGES: usize = 32;
    const ROUNDS: u64 = 150;
    let base = mmap_anon(THREADS * PAGES * PAGE);
    let stop = Arc::new(AtomicBool::new(false));
    let mapper = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut cycles = 0u64;
            while !stop.load(SeqCst) || cycles == 0 {
                let p = mmap_anon(8 * PAGE);
                for i in 0..8 {
                    write_word(p + i * PAGE, cycles << 8 | i as u64);
                }
                mprotect(p, 8 * PAGE, PROT_READ);
                for i in 0..8 {
                    assert_eq!(read_word(p + i * PAGE), cycles << 8 | i as u64, "mapper page {i}");
                }
                munmap(p, 8 * PAGE);
                cycles += 1;
            }
            cycles
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let mine = base + t * PAGES * PAGE;
                for round in 0..ROUNDS {
                    madvise(mine, PAGES * PAGE, MADV_DONTNEED);
                    assert_eq!(read_word(mine + (round as usize % PAGES) * PAGE), 0, "a dropped page reads as zero");
                    let word = |i: usize| (t as u64) << 40 | round << 16 | i as u64;
                    for i in 0..PAGES {
                        write_word(mine + i * PAGE + 8, word(i));
                    }
                    for i in 0..PAGES {
                        assert_eq!(read_word(mine + i * PAGE + 8), word(i), "thread {t} round {round} page {i}");
                    }
                }
            })
        })
        .collect();
    let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
    stop.store(true, SeqCst);
    let cycles = mapper.join().expect("the mapper thread");
    for r in results {
        r.expect("a faulting thread");
    }
    assert!(cycles > 0);
    munmap(base, THREADS * PAGES * PAGE);
}

/// One thread maps 96 MiB with MAP_POPULATE. Once its resident size has grown by 8 MiB
/// (the populate is under way), another thread makes 64 page faults in a mapping of its
/// own, calls getpid and reads /proc/self/statm, and all of that must be done while the
/// populate still runs: populate, faults and /proc readers share the lock. (An attempt
/// whose populate ended before it was seen under way, on a busy host, is made again.)
fn a_long_populate_in_one_thread_holds_up_neither_faults_nor_proc_reads_of_another() {
    for _ in 0..3 {
        if let Some(still_running) = populate_race() {
            assert!(still_running, "faults, getpid and a /proc read waited for the populate to end");
            return;
        }
    }
    panic!("no populate was seen under way in three attempts");
}

/// One attempt: None if the populate ended before it was seen under way, else whether it
/// still ran after the other thread's faults, getpid and /proc read.
fn populate_race() -> Option<bool> {
    const BIG: usize = 96 << 20;
    const MINE: usize = 65;
    let mine = mmap_anon(MINE * PAGE);
    // The first write marks the mapping as holding private pages (Linux's anon_vma):
    // later faults in it only fill entries.
    write_word(mine, 1);
    let before = resident_pages();
    let done = Arc::new(AtomicBool::new(false));
    let at = Arc::new(AtomicUsize::new(0));
    let populater = {
        let (done, at) = (done.clone(), at.clone());
        thread::spawn(move || {
            let p = mmap(0, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0)
                .expect("mmap MAP_POPULATE");
            done.store(true, SeqCst);
            at.store(p, SeqCst);
        })
    };
    let grown = wait_until(60_000, || done.load(SeqCst) || resident_pages() >= before + (8 << 20) / PAGE);
    assert!(grown, "the populate never got going");
    let early = !done.load(SeqCst);
    for i in 1..MINE {
        write_word(mine + i * PAGE, i as u64);
    }
    let pid = sys!(SYS_getpid).expect("getpid");
    let statm = resident_pages();
    let still_running = !done.load(SeqCst);
    populater.join().expect("the populating thread");
    munmap(at.load(SeqCst), BIG);
    assert!(pid > 0 && statm > before);
    for i in 1..MINE {
        assert_eq!(read_word(mine + i * PAGE), i as u64);
    }
    munmap(mine, MINE * PAGE);
    early.then_some(still_running)
}
