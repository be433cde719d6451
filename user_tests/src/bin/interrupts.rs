//! `/proc/interrupts` as Linux's x86 writes it (`show_interrupts` in kernel/irq/proc.c and
//! `arch_show_interrupts` in arch/x86/kernel/irq.c): a header with one `CPUn` column per
//! online CPU, then rows `LABEL:` with one count per CPU and a description. The
//! benchmarks read the `RES`, `CAL` and `TLB` rows (IPIs per operation), so those rows
//! and the timer's `LOC` must be there, with Linux's descriptions.

use std::sync::atomic::{AtomicBool, Ordering};
use user_tests::{monotonic_ns, run_tests, tests};

fn main() {
    run_tests(
        "interrupts",
        tests![
            proc_interrupts_header_names_the_cpus_in_increasing_order,
            proc_interrupts_has_loc_res_cal_and_tlb_rows_with_a_count_per_cpu,
            proc_interrupts_loc_row_grows_while_this_process_spins,
            munmap_of_memory_never_touched_interrupts_no_other_cpu,
        ],
    )
}

fn read_interrupts() -> String {
    std::fs::read_to_string("/proc/interrupts").expect("read /proc/interrupts")
}

/// The CPU numbers of the header line.
fn header_cpus(text: &str) -> Vec<u32> {
    let header = text.lines().next().expect("a header line");
    assert!(header.starts_with("   "), "the header starts with the label column's blanks: {header:?}");
    header
        .split_whitespace()
        .map(|w| w.strip_prefix("CPU").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("header word {w:?}")))
        .collect()
}

/// The counts and the description of the row `label`.
fn row(text: &str, label: &str, cpus: usize) -> (Vec<u64>, String) {
    let line = text
        .lines()
        .find(|l| l.trim_start().strip_prefix(label).is_some_and(|r| r.starts_with(':')))
        .unwrap_or_else(|| panic!("no {label} row in {text}"));
    let rest = line.split_once(':').unwrap().1;
    let words: Vec<&str> = rest.split_whitespace().collect();
    assert!(words.len() > cpus, "{label}: a count per CPU and a description: {line:?}");
    let counts = words[..cpus].iter().map(|w| w.parse().unwrap_or_else(|_| panic!("{label}: count {w:?}"))).collect();
    (counts, words[cpus..].join(" "))
}

fn proc_interrupts_header_names_the_cpus_in_increasing_order() {
    let cpus = header_cpus(&read_interrupts());
    assert!(!cpus.is_empty());
    assert!(cpus.windows(2).all(|w| w[0] < w[1]), "CPU columns in order: {cpus:?}");
}

fn proc_interrupts_has_loc_res_cal_and_tlb_rows_with_a_count_per_cpu() {
    let text = read_interrupts();
    let cpus = header_cpus(&text).len();
    for (label, description) in [
        ("LOC", "Local timer interrupts"),
        ("RES", "Rescheduling interrupts"),
        ("CAL", "Function call interrupts"),
        ("TLB", "TLB shootdowns"),
    ] {
        let (counts, desc) = row(&text, label, cpus);
        assert_eq!(counts.len(), cpus);
        assert_eq!(desc, description, "{label}'s description");
    }
}

/// A CPU that runs this process takes timer interrupts (a busy CPU keeps its tick even
/// on a tickless Linux), so the sum of the LOC row grows.
fn proc_interrupts_loc_row_grows_while_this_process_spins() {
    let sum = || {
        let text = read_interrupts();
        let cpus = header_cpus(&text).len();
        row(&text, "LOC", cpus).0.iter().sum::<u64>()
    };
    let before = sum();
    let start = monotonic_ns();
    while monotonic_ns() - start < 200_000_000 {
        std::hint::spin_loop();
    }
    assert!(sum() > before, "no timer interrupt in 200 ms of spinning");
}

/// Unmapping memory that was never touched removes no translation, so no CPU is sent a
/// shootdown, even one running another thread of the process (which has the address
/// space loaded): the TLB row barely moves over many mmap/munmap pairs (a kernel that
/// flushes every munmap adds one per call per such CPU).
fn munmap_of_memory_never_touched_interrupts_no_other_cpu() {
    const ROUNDS: u64 = 200;
    let tlb_sum = || {
        let text = read_interrupts();
        let cpus = header_cpus(&text).len();
        row(&text, "TLB", cpus).0.iter().sum::<u64>()
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let before = tlb_sum();
        for _ in 0..ROUNDS {
            let len = 1 << 20;
            // SAFETY: a fresh anonymous mapping, never accessed, unmapped at once.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                assert_eq!(libc::munmap(p, len), 0);
            }
        }
        let after = tlb_sum();
        stop.store(true, Ordering::Relaxed);
        assert!(after - before < ROUNDS / 4, "{} shootdowns for {ROUNDS} munmaps of untouched memory", after - before);
    });
}
