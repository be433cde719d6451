//! Scheduling on several CPUs: CPU affinity (sched_setaffinity / sched_getaffinity, Linux's
//! kernel/sched/core.c), getcpu, where tasks run (/proc/PID/stat field 39), the per-CPU
//! files /proc/cpuinfo and /proc/stat (arch/x86/kernel/cpu/proc.c, fs/proc/stat.c), and
//! musl's sysconf(_SC_NPROCESSORS_ONLN), which counts the affinity mask.
//!
//! Every test runs on one CPU as on many: with one CPU the placement tests hold trivially.

use libc::*;
use user_tests::{
    assert_errno, fork_child, monotonic_ns, run_in_child, run_tests, sleep_ms, sys, tests, wait_child, Errno, Exit,
    BAD_PTR,
};

fn main() {
    run_tests(
        "sched",
        tests![
            getaffinity_returns_whole_longs_with_every_online_cpu,
            getaffinity_with_a_length_not_a_multiple_of_8_is_einval,
            getaffinity_into_a_bad_pointer_is_efault,
            affinity_calls_for_a_missing_or_negative_pid_are_esrch,
            setaffinity_with_no_online_cpu_is_einval,
            setaffinity_reads_only_the_bytes_its_length_covers,
            setaffinity_from_a_bad_pointer_is_efault_before_esrch,
            pinning_to_each_cpu_makes_getcpu_and_proc_stat_report_it,
            affinity_is_inherited_by_fork_and_by_threads,
            setaffinity_by_thread_id_changes_only_that_thread,
            setaffinity_moves_a_spinning_child_to_its_new_cpu,
            setaffinity_calls_racing_on_one_thread_all_return,
            n_spinning_processes_run_on_n_distinct_cpus_at_once,
            nprocessors_onln_counts_the_processor_blocks_of_proc_cpuinfo,
            proc_stat_has_a_cpu_line_per_online_cpu_summed_by_the_cpu_line,
            proc_stat_ctxt_grows_when_the_caller_sleeps,
            a_pinned_spinning_process_adds_user_ticks_to_its_cpus_line,
        ],
    )
}

/// The caller's affinity mask (the first long) and the bytes getaffinity returned.
fn get_mask(pid: i32) -> (u64, usize) {
    let mut mask = [0u64; 16];
    let n = sys!(SYS_sched_getaffinity, pid, 128, mask.as_mut_ptr()).unwrap();
    (mask[0], n as usize)
}

fn set_mask(pid: i32, mask: u64) -> Result<i64, Errno> {
    sys!(SYS_sched_setaffinity, pid, 8, &mask as *const u64)
}

fn cpus_of(mask: u64) -> Vec<usize> {
    (0..64).filter(|&c| mask & (1 << c) != 0).collect()
}

fn getcpu() -> usize {
    let mut cpu = u32::MAX;
    let mut node = u32::MAX;
    sys!(SYS_getcpu, &mut cpu as *mut u32, &mut node as *mut u32, 0).unwrap();
    assert_eq!(node, 0);
    cpu as usize
}

fn read_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Field `n` (1-based, as proc(5) numbers them) of /proc/PID/stat.
fn stat_field(pid: i32, n: usize) -> u64 {
    let s = read_file(&format!("/proc/{pid}/stat"));
    let after = &s[s.rfind(')').expect("comm") + 2..];
    after.split_whitespace().nth(n - 3).expect("field").parse().expect("number")
}

/// Linux copies `cpumask_size()` bytes, a long per 64 possible CPUs (8 in a VM with up to
/// 64, more on a host with more possible CPUs than online ones).
fn getaffinity_returns_whole_longs_with_every_online_cpu() {
    let (mask, n) = get_mask(0);
    assert!(n >= 8 && n % 8 == 0 && n <= 128, "{n} bytes copied");
    let online = unsafe { sysconf(_SC_NPROCESSORS_ONLN) } as usize;
    assert_eq!(mask.count_ones() as usize, online, "mask {mask:#x}");
    assert!(mask & 1 != 0, "CPU 0 missing from {mask:#x}");
}

fn getaffinity_with_a_length_not_a_multiple_of_8_is_einval() {
    let mut mask = [0u8; 16];
    assert_errno!(sys!(SYS_sched_getaffinity, 0, 4, mask.as_mut_ptr()), EINVAL);
    assert_errno!(sys!(SYS_sched_getaffinity, 0, 12, mask.as_mut_ptr()), EINVAL);
    assert_errno!(sys!(SYS_sched_getaffinity, 0, 0, mask.as_mut_ptr()), EINVAL);
}

fn getaffinity_into_a_bad_pointer_is_efault() {
    assert_errno!(sys!(SYS_sched_getaffinity, 0, 8, BAD_PTR), EFAULT);
}

fn affinity_calls_for_a_missing_or_negative_pid_are_esrch() {
    let mut mask = [0u64; 1];
    let all = get_mask(0).0;
    for pid in [-1i32, 0x3fff_fff0] {
        assert_errno!(sys!(SYS_sched_getaffinity, pid, 8, mask.as_mut_ptr()), ESRCH);
        assert_errno!(set_mask(pid, all), ESRCH);
    }
}

fn setaffinity_with_no_online_cpu_is_einval() {
    assert_errno!(set_mask(0, 0), EINVAL);
    assert_errno!(set_mask(0, 1 << 63), EINVAL);
}

/// Fewer bytes than one long: Linux reads those and takes the rest as zero, so a length
/// of 0 is an empty mask, and the bytes past the length are never read.
fn setaffinity_reads_only_the_bytes_its_length_covers() {
    run_in_child(|| {
        let all = get_mask(0).0;
        assert_errno!(sys!(SYS_sched_setaffinity, 0, 0, &all as *const u64), EINVAL);
        // A one-byte mask in the last byte of a page whose successor is unmapped.
        let p = user_tests::mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
        unsafe { munmap((p + 4096) as *mut c_void, 4096) };
        let last = (p + 4095) as *mut u8;
        unsafe { *last = 1 };
        sys!(SYS_sched_setaffinity, 0, 1, last).unwrap();
        assert_eq!(get_mask(0).0, 1);
        assert_errno!(sys!(SYS_sched_setaffinity, 0, 2, last), EFAULT);
        set_mask(0, all).unwrap();
    });
}

fn setaffinity_from_a_bad_pointer_is_efault_before_esrch() {
    assert_errno!(sys!(SYS_sched_setaffinity, 0, 8, BAD_PTR), EFAULT);
    assert_errno!(sys!(SYS_sched_setaffinity, 0x3fff_fff0, 8, BAD_PTR), EFAULT);
}

fn pinning_to_each_cpu_makes_getcpu_and_proc_stat_report_it() {
    run_in_child(|| {
        let all = get_mask(0).0;
        let me = unsafe { getpid() };
        for c in cpus_of(all) {
            set_mask(0, 1 << c).unwrap();
            assert_eq!(get_mask(0).0, 1 << c);
            assert_eq!(getcpu(), c, "pinned to CPU {c}");
            assert_eq!(unsafe { sched_getcpu() }, c as i32, "musl's sched_getcpu");
            assert_eq!(stat_field(me, 39), c as u64, "/proc/{me}/stat processor");
        }
        set_mask(0, all).unwrap();
        assert_eq!(get_mask(0).0, all);
    });
}

fn affinity_is_inherited_by_fork_and_by_threads() {
    run_in_child(|| {
        let all = get_mask(0).0;
        let last = *cpus_of(all).last().unwrap();
        set_mask(0, 1 << last).unwrap();
        let child = fork_child(|| if get_mask(0).0 == 1 << last && getcpu() == last { 0 } else { 1 });
        assert_eq!(wait_child(child), Exit::Code(0), "the forked child's mask or CPU");
        let t = std::thread::spawn(move || (get_mask(0).0, getcpu())).join().unwrap();
        assert_eq!(t, (1 << last, last), "the thread's mask and CPU");
    });
}

fn setaffinity_by_thread_id_changes_only_that_thread() {
    run_in_child(|| {
        let all = get_mask(0).0;
        let first = cpus_of(all)[0];
        let (tx, rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(unsafe { gettid() }).unwrap();
            go_rx.recv().unwrap();
            (get_mask(0).0, getcpu())
        });
        let tid = rx.recv().unwrap();
        set_mask(tid, 1 << first).unwrap();
        assert_eq!(get_mask(tid).0, 1 << first);
        go_tx.send(()).unwrap();
        assert_eq!(t.join().unwrap(), (1 << first, first));
        assert_eq!(get_mask(0).0, all, "the calling thread's own mask");
    });
}

fn setaffinity_moves_a_spinning_child_to_its_new_cpu() {
    let all = get_mask(0).0;
    let words = user_tests::shared_words(2);
    for c in cpus_of(all) {
        words[0].store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
        words[1].store(0, std::sync::atomic::Ordering::SeqCst);
        let child = fork_child(|| {
            while words[1].load(std::sync::atomic::Ordering::SeqCst) == 0 {
                words[0].store(getcpu() as u64, std::sync::atomic::Ordering::SeqCst);
            }
            0
        });
        assert!(user_tests::wait_until(10_000, || words[0].load(std::sync::atomic::Ordering::SeqCst) != u64::MAX));
        set_mask(child, 1 << c).unwrap();
        // Once setaffinity has returned, the child runs only on CPU c. The first report
        // after the reset may carry a getcpu made before the move (stored late); the
        // second comes from a getcpu made after the first report, so after the move.
        let mut seen = true;
        for _ in 0..2 {
            words[0].store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
            seen &= user_tests::wait_until(10_000, || words[0].load(std::sync::atomic::Ordering::SeqCst) != u64::MAX);
        }
        let cpu = words[0].load(std::sync::atomic::Ordering::SeqCst);
        words[1].store(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(wait_child(child), Exit::Code(0));
        assert!(seen, "the child stopped reporting");
        assert_eq!(cpu, c as u64, "moved to CPU {c}");
    }
}

/// A thread pins itself to the first CPU while another keeps pinning it to the last, each
/// two thousand times: every call returns, whichever mask lands last (the kernel moves the
/// thread for the mask in force, not for the one a call set, which the other may already
/// have replaced). A call that never returned would stop its thread's count.
fn setaffinity_calls_racing_on_one_thread_all_return() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    use std::sync::Arc;
    const ROUNDS: u64 = 2000;
    run_in_child(|| {
        let cpus = cpus_of(get_mask(0).0);
        let (first, last) = (cpus[0], *cpus.last().unwrap());
        // Calls made by the pinning thread and by the moving one.
        let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (c, d) = (counts.clone(), done.clone());
        let pinner = std::thread::spawn(move || {
            tx.send(unsafe { gettid() }).unwrap();
            // Until the mover is through too, so that the two race all along.
            while !d.load(SeqCst) || c[0].load(SeqCst) < ROUNDS {
                set_mask(0, 1 << first).unwrap();
                c[0].fetch_add(1, SeqCst);
            }
        });
        let tid = rx.recv().unwrap();
        let (c, d) = (counts.clone(), done.clone());
        let mover = std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                set_mask(tid, 1 << last).unwrap();
                c[1].fetch_add(1, SeqCst);
            }
            d.store(true, SeqCst);
        });
        let mut seen = [0, 0];
        while !done.load(SeqCst) || counts[0].load(SeqCst) < ROUNDS {
            let now = || [counts[0].load(SeqCst), counts[1].load(SeqCst)];
            let both = user_tests::wait_until(10_000, || {
                let n = now();
                (n[0] != seen[0] || n[0] >= ROUNDS) && (n[1] != seen[1] || done.load(SeqCst))
            });
            assert!(
                both,
                "sched_setaffinity stuck: {:?} of {ROUNDS} calls made by the pinning and the moving thread",
                now()
            );
            seen = now();
        }
        pinner.join().unwrap();
        mover.join().unwrap();
    });
}

/// The count-based form of the balancing target: N CPU-bound processes on N CPUs are
/// seen running on N different CPUs at one moment within a bounded time.
fn n_spinning_processes_run_on_n_distinct_cpus_at_once() {
    use std::sync::atomic::Ordering::SeqCst;
    let cpus = cpus_of(get_mask(0).0);
    let n = cpus.len();
    // words[0]: stop; words[1 + i]: child i's CPU + 1, stored on every loop.
    let words = user_tests::shared_words(1 + n);
    let children: Vec<pid_t> = (0..n)
        .map(|i| {
            fork_child(move || {
                while words[0].load(SeqCst) == 0 {
                    words[1 + i].store(getcpu() as u64 + 1, SeqCst);
                }
                0
            })
        })
        .collect();
    let start = monotonic_ns();
    let mut best = 0;
    let spread = user_tests::wait_until(20_000, || {
        let mut seen: Vec<u64> = (0..n).map(|i| words[1 + i].load(SeqCst)).filter(|&c| c != 0).collect();
        seen.sort();
        seen.dedup();
        best = best.max(seen.len());
        seen.len() == n
    });
    let took_ms = (monotonic_ns() - start) / 1_000_000;
    words[0].store(1, SeqCst);
    for c in children {
        assert_eq!(wait_child(c), Exit::Code(0));
    }
    assert!(spread, "{n} spinning processes seen on at most {best} distinct CPUs in 20 s");
    println!("sched: {n} spinning processes on {n} distinct CPUs after {took_ms} ms");
}

fn nprocessors_onln_counts_the_processor_blocks_of_proc_cpuinfo() {
    let info = read_file("/proc/cpuinfo");
    let processors: Vec<usize> = info
        .lines()
        .filter(|l| l.starts_with("processor"))
        .map(|l| l.split(':').nth(1).unwrap().trim().parse().unwrap())
        .collect();
    let online = unsafe { sysconf(_SC_NPROCESSORS_ONLN) } as usize;
    assert_eq!(processors.len(), online, "{processors:?}");
    assert_eq!(processors, cpus_of(get_mask(0).0), "processor numbers");
    for key in ["vendor_id", "model name", "flags", "apicid"] {
        let n = info.lines().filter(|l| l.split(':').next().unwrap().trim() == key).count();
        assert_eq!(n, online, "{key} lines");
    }
}

/// The `cpu` line and the `cpuN` lines of /proc/stat: user, nice, system, idle, ...
fn proc_stat_cpu_lines() -> (Vec<u64>, Vec<(usize, Vec<u64>)>) {
    let s = read_file("/proc/stat");
    let nums = |l: &str| l.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect::<Vec<u64>>();
    let total = nums(s.lines().find(|l| l.starts_with("cpu ")).expect("cpu line"));
    let per = s
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .map(|l| (l.split_whitespace().next().unwrap()[3..].parse().unwrap(), nums(l)))
        .collect();
    (total, per)
}

fn proc_stat_has_a_cpu_line_per_online_cpu_summed_by_the_cpu_line() {
    let (total, per) = proc_stat_cpu_lines();
    let ids: Vec<usize> = per.iter().map(|(c, _)| *c).collect();
    assert_eq!(ids, cpus_of(get_mask(0).0), "cpuN lines");
    assert!(total.len() >= 10, "{total:?}");
    for f in [0, 1, 2, 3] {
        let sum: u64 = per.iter().map(|(_, v)| v[f]).sum();
        // Linux converts each CPU's nanoseconds to ticks apart from the total's.
        assert!(total[f].abs_diff(sum) <= per.len() as u64, "field {f}: cpu line {} but cpuN sum {sum}", total[f]);
    }
    let s = read_file("/proc/stat");
    for key in ["ctxt", "btime", "processes", "procs_running", "procs_blocked"] {
        assert!(s.lines().any(|l| l.split_whitespace().next() == Some(key)), "no {key} line");
    }
    let running: u64 = s.lines().find(|l| l.starts_with("procs_running")).unwrap()[14..].trim().parse().unwrap();
    assert!(running >= 1, "the reader itself is running");
}

fn ctxt() -> u64 {
    read_file("/proc/stat").lines().find(|l| l.starts_with("ctxt")).unwrap()[5..].trim().parse().unwrap()
}

fn proc_stat_ctxt_grows_when_the_caller_sleeps() {
    let a = ctxt();
    sleep_ms(20);
    let b = ctxt();
    assert!(b > a, "ctxt {a} then {b}");
}

/// The process spins pinned to one CPU until its own user time (/proc/self/stat field 14)
/// has grown by 30 ticks (or 10 s pass); that CPU's user ticks must have grown too.
fn a_pinned_spinning_process_adds_user_ticks_to_its_cpus_line() {
    run_in_child(|| {
        let c = *cpus_of(get_mask(0).0).last().unwrap();
        set_mask(0, 1 << c).unwrap();
        let me = unsafe { getpid() };
        // User time of a task with a positive nice value (a niced test run) is `nice`.
        let user = |per: &[(usize, Vec<u64>)]| {
            let v = &per.iter().find(|(i, _)| *i == c).unwrap().1;
            v[0] + v[1]
        };
        let before = user(&proc_stat_cpu_lines().1);
        let utime0 = stat_field(me, 14);
        let end = monotonic_ns() + 10_000_000_000;
        let mut x = 0u64;
        while stat_field(me, 14) < utime0 + 30 && monotonic_ns() < end {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        let spun = stat_field(me, 14) - utime0;
        let after = user(&proc_stat_cpu_lines().1);
        assert!(after > before, "cpu{c} user+nice ticks {before} then {after} after {spun} ticks of user time on it");
    });
}
