//! Address-space limits: RLIMIT_AS, the overcommit policy and its figures in
//! /proc/meminfo (Committed_AS, CommitLimit, Mapped), MAP_HUGETLB without huge pages,
//! and /proc/sys as a tree of knobs (modes, reads, writes, range checks, enforcement).
//!
//! Tests that change a knob do it in a child and put the old value back through a guard
//! (also when an assertion fails), and only on the scratch machines of the test run (our
//! kernel and the Linux guest, see `user_tests::on_scratch_machine`), never on the host. On a busy Linux host the meminfo figures move with
//! other processes: figure deltas are measured with a 64 MiB mapping and retried until
//! one attempt lands within `TOLERANCE_KB` (on our kernel and the 1-CPU guest, nothing
//! else runs and the first attempt is exact but for the test's own small allocations).

use libc::*;
use user_tests::{
    assert_errno, child_exit, close, fork_child, load_byte, meminfo_kb, mmap, open, raw_clone_exiting_child, read,
    read_knob, read_proc_in, run_in_child, run_tests, set_rlimit_as, store_byte, sys, tests, wait_child, write,
    write_knob, Exit, Knob, TempDir, PAGE,
};

fn main() {
    run_tests(
        "limits",
        tests![
            proc_sys_lists_the_kernel_and_vm_knobs,
            proc_sys_knobs_have_linux_modes,
            proc_sys_ostype_and_osrelease_match_uname,
            proc_sys_read_only_knob_is_eacces_for_root,
            proc_sys_writable_knob_is_eacces_for_non_root,
            proc_sys_integer_read_past_offset_zero_is_end_of_file,
            proc_sys_garbage_or_out_of_range_write_is_einval,
            proc_sys_write_with_or_without_newline_takes_effect,
            max_map_count_bounds_the_number_of_mappings,
            mmap_fixed_below_mmap_min_addr_needs_cap_sys_rawio,
            pid_max_bounds_new_pids,
            fork_is_eagain_once_the_tasks_reach_threads_max,
            a_new_thread_is_eagain_once_the_tasks_reach_threads_max,
            an_exited_child_holds_its_place_under_threads_max_until_reaped,
            rlimit_as_refuses_mmap_past_it,
            rlimit_as_refuses_mremap_growth_past_it,
            rlimit_as_keeps_the_old_break,
            rlimit_as_stops_stack_growth_with_sigsegv,
            committed_as_counts_private_writable_mappings,
            committed_as_skips_noreserve_and_read_only_mappings,
            committed_as_counts_shared_anonymous_memory,
            committed_as_charges_mprotect_to_writable,
            committed_as_counts_tmpfs_pages_while_cached,
            committed_as_counts_brk_growth,
            committed_as_counts_mremap_growth,
            commit_limit_is_overcommit_ratio_of_ram_plus_swap,
            heuristic_overcommit_refuses_one_mapping_larger_than_ram,
            always_overcommit_allows_a_mapping_larger_than_ram,
            strict_overcommit_refuses_past_commit_limit_even_with_noreserve,
            strict_overcommit_refuses_a_fork_whose_copy_would_pass_commit_limit,
            map_hugetlb_without_huge_pages_is_enomem,
            map_hugetlb_noreserve_without_huge_pages_maps_and_a_touch_is_sigbus,
            map_hugetlb_takes_whole_huge_pages_at_aligned_addresses,
            map_hugetlb_noreserve_is_not_charged_to_committed_as,
            mapped_counts_each_mapped_file_page_once,
        ],
    )
}

const MIB: usize = 1 << 20;
/// How far a meminfo delta may be off on a busy host, in kB.
const TOLERANCE_KB: i64 = 512;

fn munmap(addr: usize, len: usize) {
    sys!(SYS_munmap, addr, len).unwrap();
}

fn knob_path(name: &str) -> String {
    format!("/proc/sys/{name}")
}

/// `f` maps something and returns (address, length); the figure must move by
/// `expected_kb` and come back after the unmap. Retried against a busy host.
fn assert_meminfo_delta(field: &str, expected_kb: i64, f: impl Fn() -> (usize, usize)) {
    let mut last = (0, 0);
    for _ in 0..20 {
        let before = meminfo_kb(field) as i64;
        let (a, len) = f();
        let during = meminfo_kb(field) as i64;
        munmap(a, len);
        let after = meminfo_kb(field) as i64;
        last = (during - before, after - before);
        if (last.0 - expected_kb).abs() <= TOLERANCE_KB && last.1.abs() <= TOLERANCE_KB {
            return;
        }
    }
    panic!("{field} moved by {} kB (expected {expected_kb}), then by {} kB after the unmap", last.0, last.1);
}

fn anon(len: usize, prot: i32, extra: i32) -> Result<usize, user_tests::Errno> {
    mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0)
}

fn vm_size_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line[7..].trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}

// ---------------------------------------------------------------------------------------
// /proc/sys
// ---------------------------------------------------------------------------------------

fn dir_entries(path: &str) -> Vec<(String, bool)> {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.file_type().unwrap().is_dir())
        })
        .collect()
}

fn proc_sys_lists_the_kernel_and_vm_knobs() {
    let top = dir_entries("/proc/sys");
    for d in ["kernel", "vm"] {
        assert!(top.contains(&(d.to_string(), true)), "{d} missing from /proc/sys: {top:?}");
    }
    let vm = dir_entries("/proc/sys/vm");
    for f in ["mmap_min_addr", "overcommit_memory", "overcommit_ratio", "max_map_count"] {
        assert!(vm.contains(&(f.to_string(), false)), "{f} missing from /proc/sys/vm: {vm:?}");
    }
    let kernel = dir_entries("/proc/sys/kernel");
    for f in ["pid_max", "threads-max", "ostype", "osrelease", "tainted", "core_pattern"] {
        assert!(kernel.contains(&(f.to_string(), false)), "{f} missing from /proc/sys/kernel: {kernel:?}");
    }
}

fn mode_of(path: &str) -> u32 {
    let mut st: stat = unsafe { std::mem::zeroed() };
    let p = user_tests::cstr(path);
    sys!(SYS_stat, p.as_ptr(), &mut st as *mut stat).unwrap();
    st.st_mode
}

fn proc_sys_knobs_have_linux_modes() {
    assert_eq!(mode_of("/proc/sys"), S_IFDIR | 0o555);
    assert_eq!(mode_of("/proc/sys/vm"), S_IFDIR | 0o555);
    assert_eq!(mode_of("/proc/sys/kernel"), S_IFDIR | 0o555);
    for ro in ["kernel/ostype", "kernel/osrelease"] {
        assert_eq!(mode_of(&knob_path(ro)), S_IFREG | 0o444, "{ro}");
    }
    for rw in [
        "kernel/pid_max",
        "kernel/threads-max",
        "kernel/tainted",
        "kernel/core_pattern",
        "vm/max_map_count",
        "vm/mmap_min_addr",
        "vm/overcommit_memory",
        "vm/overcommit_ratio",
    ] {
        assert_eq!(mode_of(&knob_path(rw)), S_IFREG | 0o644, "{rw}");
    }
}

fn proc_sys_ostype_and_osrelease_match_uname() {
    let mut u: utsname = unsafe { std::mem::zeroed() };
    sys!(SYS_uname, &mut u as *mut utsname).unwrap();
    let field = |f: &[c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8(bytes).unwrap()
    };
    assert_eq!(read_knob("kernel/ostype"), format!("{}\n", field(&u.sysname)));
    assert_eq!(read_knob("kernel/osrelease"), format!("{}\n", field(&u.release)));
    assert_eq!(read_knob("kernel/ostype"), "Linux\n");
}

/// Sysctl permissions are the mode bits alone: root gets no override for a 0444 knob.
fn proc_sys_read_only_knob_is_eacces_for_root() {
    for ro in ["kernel/ostype", "kernel/osrelease"] {
        assert_errno!(open(&knob_path(ro), O_WRONLY, 0), EACCES);
        assert_errno!(open(&knob_path(ro), O_RDWR, 0), EACCES);
        let fd = open(&knob_path(ro), O_RDONLY, 0).unwrap();
        close(fd).unwrap();
    }
}

fn proc_sys_writable_knob_is_eacces_for_non_root() {
    run_in_child(|| {
        sys!(SYS_setgid, 1000).unwrap();
        sys!(SYS_setuid, 1000).unwrap();
        for rw in ["vm/max_map_count", "vm/overcommit_memory", "kernel/pid_max", "kernel/core_pattern"] {
            assert_errno!(open(&knob_path(rw), O_WRONLY, 0), EACCES);
            let fd = open(&knob_path(rw), O_RDONLY, 0).unwrap();
            close(fd).unwrap();
        }
    });
}

/// An integer knob is read whole at offset 0; a read anywhere else is end of file
/// (`__do_proc_dointvec`), even after a short first read.
fn proc_sys_integer_read_past_offset_zero_is_end_of_file() {
    let whole = read_knob("vm/max_map_count");
    let fd = open(&knob_path("vm/max_map_count"), O_RDONLY, 0).unwrap();
    let mut two = [0u8; 2];
    assert_eq!(read(fd, &mut two).unwrap(), 2);
    assert_eq!(&two, &whole.as_bytes()[..2]);
    let mut rest = [0u8; 64];
    assert_eq!(read(fd, &mut rest).unwrap(), 0, "a read at offset 2 is end of file");
    sys!(SYS_lseek, fd, 0, SEEK_SET).unwrap();
    let n = read(fd, &mut rest).unwrap();
    assert_eq!(&rest[..n], whole.as_bytes());
    close(fd).unwrap();
}

fn proc_sys_garbage_or_out_of_range_write_is_einval() {
    let before = read_knob("vm/max_map_count");
    for bad in ["abc", "12x", "", "\n", "-1", "99999999999", "0x"] {
        if bad.is_empty() {
            // An empty write writes nothing.
            assert_eq!(write_knob("vm/max_map_count", bad), Ok(0));
            continue;
        }
        assert_errno!(write_knob("vm/max_map_count", bad), EINVAL);
    }
    assert_errno!(write_knob("vm/overcommit_memory", "3"), EINVAL);
    assert_errno!(write_knob("vm/overcommit_memory", "-1"), EINVAL);
    assert_errno!(write_knob("kernel/pid_max", "300"), EINVAL);
    assert_errno!(write_knob("kernel/pid_max", "4194305"), EINVAL);
    assert_errno!(write_knob("kernel/threads-max", "0"), EINVAL);
    assert_eq!(read_knob("vm/max_map_count"), before, "a refused write changes nothing");
}

fn proc_sys_write_with_or_without_newline_takes_effect() {
    run_in_child(|| {
        let Some(_restore) = Knob::set_on_scratch("vm/max_map_count", "65531") else { return };
        assert_eq!(read_knob("vm/max_map_count"), "65531\n");
        assert_eq!(write_knob("vm/max_map_count", "65532\n"), Ok(6));
        assert_eq!(read_knob("vm/max_map_count"), "65532\n");
        assert_eq!(write_knob("vm/max_map_count", "  65533  \n"), Ok(10));
        assert_eq!(read_knob("vm/max_map_count"), "65533\n");
        // strtoul with base 0: hexadecimal.
        assert_eq!(write_knob("vm/max_map_count", "0x10000"), Ok(7));
        assert_eq!(read_knob("vm/max_map_count"), "65536\n");
    });
}

/// Lines of /proc/self/maps that are VMAs ([vsyscall] is not one), read without
/// allocating (an allocation could add a mapping).
fn map_count() -> usize {
    read_proc_in(c"/proc/self/maps", &mut [0u8; 64 * 1024]).lines().filter(|l| !l.contains("[vsyscall]")).count()
}

/// mmap refuses once the address space holds more VMAs than vm.max_map_count: do_mmap
/// tests `map_count > max`, so one mapping past the limit still succeeds.
fn max_map_count_bounds_the_number_of_mappings() {
    run_in_child(|| {
        let mut made = Vec::with_capacity(64);
        let limit = map_count() + 8;
        let Some(restore) = Knob::set_on_scratch("vm/max_map_count", &limit.to_string()) else { return };
        // Counted again once the knob's write has done its allocations.
        let before = map_count();
        // Alternating protections keep neighbours from merging.
        let mut refused = None;
        for i in 0..32 {
            let prot = if i % 2 == 0 { PROT_READ } else { PROT_NONE };
            match anon(PAGE, prot, 0) {
                Ok(a) => made.push(a),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        drop(restore);
        assert_eq!(refused, Some(user_tests::Errno(ENOMEM)), "mmap never refused");
        assert_eq!(made.len(), limit + 1 - before, "mappings made before ENOMEM");
    });
}

/// Below vm.mmap_min_addr MAP_FIXED needs CAP_SYS_RAWIO (cap_mmap_addr): root has it,
/// an ordinary user gets EPERM. A write to the knob takes effect.
fn mmap_fixed_below_mmap_min_addr_needs_cap_sys_rawio() {
    const MIN: usize = 0x20000;
    let low = MIN - 2 * PAGE;
    run_in_child(|| {
        let Some(restore) = Knob::set_on_scratch("vm/mmap_min_addr", &MIN.to_string()) else { return };
        assert_eq!(read_knob("vm/mmap_min_addr"), format!("{MIN}\n"));
        let a = mmap(low, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0).unwrap();
        assert_eq!(a, low);
        munmap(a, PAGE);
        let pid = fork_child(|| {
            sys!(SYS_setuid, 1000).unwrap();
            let below = mmap(low, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            let above = mmap(MIN, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            i32::from(below != Err(user_tests::Errno(EPERM))) + 2 * i32::from(above != Ok(MIN))
        });
        let r = wait_child(pid);
        drop(restore);
        assert_eq!(r, Exit::Code(0), "1: below not EPERM, 2: above refused");
    });
}

/// New pids stay below kernel.pid_max: once past it they wrap to the ids above
/// RESERVED_PIDS (300).
fn pid_max_bounds_new_pids() {
    run_in_child(|| {
        let fork_pid = || {
            let pid = fork_child(|| 0);
            assert_eq!(wait_child(pid), Exit::Code(0));
            pid
        };
        let mut pid = fork_pid();
        for _ in 0..2000 {
            if pid > 400 {
                break;
            }
            pid = fork_pid();
        }
        assert!(pid > 400, "pids stay low: {pid}");
        let Some(_restore) = Knob::set_on_scratch("kernel/pid_max", "350") else { return };
        let next = fork_pid();
        assert!((300..350).contains(&next), "pid {next} with pid_max 350");
    });
}

/// A fork (raw, its child exits at once): the child's pid, or `-errno`.
fn raw_fork() -> i64 {
    raw_clone_exiting_child(SYS_fork as u64, [0; 6])
}

/// Whether a fork succeeds now; its child is reaped.
fn fork_succeeds() -> bool {
    let r = raw_fork();
    if r > 0 {
        assert_eq!(wait_child(r as i32), Exit::Code(0));
    }
    r > 0
}

/// copy_process refuses a new task once the tasks in the system reach kernel.threads-max
/// (`nr_threads >= max_threads`), for root too: at 1 a fork is EAGAIN; with the old value
/// back it works again.
fn fork_is_eagain_once_the_tasks_reach_threads_max() {
    run_in_child(|| {
        let Some(restore) = Knob::set_on_scratch("kernel/threads-max", "1") else { return };
        let r = raw_fork();
        drop(restore);
        if r > 0 {
            wait_child(r as i32);
        }
        assert_eq!(r, -(EAGAIN as i64), "fork with threads-max 1");
        assert!(fork_succeeds(), "fork with threads-max back at its old value");
    });
}

/// A thread is a task as a process is: clone(CLONE_THREAD) is EAGAIN too.
fn a_new_thread_is_eagain_once_the_tasks_reach_threads_max() {
    let flags = (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM) as u64;
    run_in_child(|| {
        let Some(restore) = Knob::set_on_scratch("kernel/threads-max", "1") else { return };
        let r = raw_clone_exiting_child(SYS_clone as u64, [flags, 0, 0, 0, 0, 0]);
        drop(restore);
        assert_eq!(r, -(EAGAIN as i64), "clone(CLONE_THREAD) with threads-max 1");
        assert!(raw_clone_exiting_child(SYS_clone as u64, [flags, 0, 0, 0, 0, 0]) > 0, "with the old value back");
    });
}

/// The limit is reached when the tasks equal it, and an exited child that is not yet
/// reaped (a zombie) still counts: Linux releases its task only at the reap. The tasks
/// are counted by finding the least threads-max at which a fork succeeds; other tasks
/// that come or go meanwhile (a Linux kernel thread) make an attempt start over.
fn an_exited_child_holds_its_place_under_threads_max_until_reaped() {
    run_in_child(|| {
        let Some(restore) = Knob::set_on_scratch("kernel/threads-max", "1") else { return };
        let old: u32 = restore.old.trim().parse().unwrap();
        let set = |v: u32| write_knob("kernel/threads-max", &v.to_string()).unwrap();
        let mut seen = Vec::new();
        for _ in 0..20 {
            // The least limit with room for one more task: the tasks now, plus one.
            let (mut fails, mut works) = (1, old);
            while works - fails > 1 {
                let mid = fails + (works - fails) / 2;
                set(mid);
                if fork_succeeds() {
                    works = mid;
                } else {
                    fails = mid;
                }
            }
            set(works);
            let zombie = raw_fork();
            assert!(zombie > 0, "fork with threads-max {works}: {zombie}");
            // Wait for its exit without reaping it.
            let mut info: siginfo_t = unsafe { std::mem::zeroed() };
            sys!(SYS_waitid, P_PID, zombie, &mut info as *mut siginfo_t, WEXITED | WNOWAIT, 0).unwrap();
            let with_zombie = fork_succeeds();
            assert_eq!(wait_child(zombie as i32), Exit::Code(0));
            let after_reap = fork_succeeds();
            if !with_zombie && after_reap {
                return;
            }
            seen.push((works, with_zombie, after_reap));
        }
        panic!("(limit, fork with the zombie, fork after the reap) never (_, false, true): {seen:?}");
    });
}

// ---------------------------------------------------------------------------------------
// RLIMIT_AS
// ---------------------------------------------------------------------------------------

fn rlimit_as_refuses_mmap_past_it() {
    run_in_child(|| {
        set_rlimit_as(vm_size_bytes() + 16 * MIB as u64);
        assert_errno!(anon(32 * MIB, PROT_READ | PROT_WRITE, 0), ENOMEM);
        assert_errno!(anon(32 * MIB, PROT_NONE, MAP_NORESERVE), ENOMEM);
        let a = anon(4 * MIB, PROT_READ | PROT_WRITE, 0).unwrap();
        store_byte(a, 1);
    });
}

fn rlimit_as_refuses_mremap_growth_past_it() {
    run_in_child(|| {
        let a = anon(MIB, PROT_READ | PROT_WRITE, 0).unwrap();
        set_rlimit_as(vm_size_bytes() + MIB as u64);
        assert_errno!(sys!(SYS_mremap, a, MIB, 4 * MIB, MREMAP_MAYMOVE), ENOMEM);
        let b = sys!(SYS_mremap, a, MIB, 2 * MIB, MREMAP_MAYMOVE).unwrap() as usize;
        store_byte(b + MIB, 1);
    });
}

fn rlimit_as_keeps_the_old_break() {
    run_in_child(|| {
        let cur = sys!(SYS_brk, 0).unwrap() as usize;
        set_rlimit_as(vm_size_bytes() + 64 * 1024);
        assert_eq!(sys!(SYS_brk, cur + 4 * MIB).unwrap() as usize, cur, "brk past RLIMIT_AS");
        assert_eq!(sys!(SYS_brk, cur + 8 * 1024).unwrap() as usize, cur + 8 * 1024, "brk within RLIMIT_AS");
    });
}

/// The start of the main thread's stack VMA.
fn stack_start() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps.lines().find(|l| l.ends_with("[stack]")).expect("[stack] in maps");
    usize::from_str_radix(line.split('-').next().unwrap(), 16).unwrap()
}

/// A fault below the stack that would grow it past RLIMIT_AS is SIGSEGV; the same
/// fault without the limit grows the stack.
fn rlimit_as_stops_stack_growth_with_sigsegv() {
    let touch_below_stack = |limit: bool| {
        child_exit(move || {
            unsafe { signal(SIGSEGV, SIG_DFL) };
            let below = stack_start() - 64 * 1024;
            if limit {
                set_rlimit_as(vm_size_bytes());
            }
            load_byte(below);
            0
        })
    };
    assert_eq!(touch_below_stack(false), Exit::Code(0));
    assert_eq!(touch_below_stack(true), Exit::Signal(SIGSEGV));
}

// ---------------------------------------------------------------------------------------
// Committed_AS, CommitLimit, the overcommit modes
// ---------------------------------------------------------------------------------------

const BIG: usize = 64 * MIB;
const BIG_KB: i64 = (BIG / 1024) as i64;

fn committed_as_counts_private_writable_mappings() {
    assert_meminfo_delta("Committed_AS", BIG_KB, || (anon(BIG, PROT_READ | PROT_WRITE, 0).unwrap(), BIG));
    // A partial unmap gives back only the part unmapped.
    let mut last = 0;
    for _ in 0..20 {
        let a = anon(BIG, PROT_READ | PROT_WRITE, 0).unwrap();
        let before = meminfo_kb("Committed_AS") as i64;
        munmap(a, BIG / 4);
        last = meminfo_kb("Committed_AS") as i64 - before;
        munmap(a + BIG / 4, BIG - BIG / 4);
        if (last + BIG_KB / 4).abs() <= TOLERANCE_KB {
            return;
        }
    }
    panic!("unmapping a quarter moved Committed_AS by {last} kB");
}

/// The same mapping is charged when private, writable and reserved, and not at all with
/// MAP_NORESERVE (heuristic mode) or without PROT_WRITE.
fn committed_as_skips_noreserve_and_read_only_mappings() {
    assert_meminfo_delta("Committed_AS", BIG_KB, || (anon(BIG, PROT_READ | PROT_WRITE, 0).unwrap(), BIG));
    assert_meminfo_delta("Committed_AS", 0, || (anon(BIG, PROT_READ | PROT_WRITE, MAP_NORESERVE).unwrap(), BIG));
    assert_meminfo_delta("Committed_AS", 0, || (anon(BIG, PROT_READ, 0).unwrap(), BIG));
}

/// Shared anonymous memory is charged once, for its whole size, by its shmem object.
fn committed_as_counts_shared_anonymous_memory() {
    assert_meminfo_delta("Committed_AS", BIG_KB, || {
        (mmap(0, BIG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap(), BIG)
    });
}

fn committed_as_charges_mprotect_to_writable() {
    assert_meminfo_delta("Committed_AS", BIG_KB, || {
        let a = anon(BIG, PROT_READ, 0).unwrap();
        sys!(SYS_mprotect, a, BIG, PROT_READ | PROT_WRITE).unwrap();
        (a, BIG)
    });
}

/// `act` must move Committed_AS by `expected_kb` (measured around it, retried against a
/// busy host); `setup` and `undo` run before and after each attempt.
fn assert_committed_change<T>(expected_kb: i64, setup: impl Fn() -> T, act: impl Fn(&T), undo: impl Fn(T)) {
    let mut last = 0;
    for _ in 0..20 {
        let state = setup();
        let before = meminfo_kb("Committed_AS") as i64;
        act(&state);
        last = meminfo_kb("Committed_AS") as i64 - before;
        undo(state);
        if (last - expected_kb).abs() <= TOLERANCE_KB {
            return;
        }
    }
    panic!("Committed_AS moved by {last} kB (expected {expected_kb})");
}

/// The heap is charged as brk grows it and uncharged as it shrinks.
fn committed_as_counts_brk_growth() {
    run_in_child(|| {
        let cur = sys!(SYS_brk, 0).unwrap() as usize;
        // Page-aligned start and end, so the charge is exactly the growth.
        let base = (cur + PAGE - 1) & !(PAGE - 1);
        sys!(SYS_brk, base).unwrap();
        assert_committed_change(
            BIG_KB,
            || (),
            |_| assert_eq!(sys!(SYS_brk, base + BIG).unwrap() as usize, base + BIG),
            |_| {
                sys!(SYS_brk, base).unwrap();
            },
        );
        assert_committed_change(
            -BIG_KB,
            || assert_eq!(sys!(SYS_brk, base + BIG).unwrap() as usize, base + BIG),
            |_| {
                sys!(SYS_brk, base).unwrap();
            },
            |_| (),
        );
    });
}

/// mremap growth of a charged mapping is charged, in place or moved.
fn committed_as_counts_mremap_growth() {
    for flags in [0, MREMAP_MAYMOVE] {
        assert_committed_change(
            BIG_KB / 2,
            || {
                let a = anon(BIG, PROT_READ | PROT_WRITE, 0).unwrap();
                // Room above for growth in place (flags 0), or a neighbour forcing a move.
                munmap(a + BIG / 2, BIG / 2);
                if flags != 0 {
                    mmap(a + BIG / 2, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0).unwrap();
                }
                (a, std::cell::Cell::new(a))
            },
            |(a, at)| at.set(sys!(SYS_mremap, *a, BIG / 2, BIG, flags).unwrap() as usize),
            |(a, at)| {
                munmap(at.get(), BIG);
                if flags != 0 {
                    munmap(a + BIG / 2, PAGE);
                }
            },
        );
    }
}

/// A directory on tmpfs: /dev/shm where there is one (a Linux host), else /tmp.
fn tmpfs_dir() -> String {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    for d in ["/dev/shm", "/tmp"] {
        let mut st: statfs = unsafe { std::mem::zeroed() };
        let p = user_tests::cstr(d);
        if sys!(SYS_statfs, p.as_ptr(), &mut st as *mut statfs).is_ok() && st.f_type as u64 == TMPFS_MAGIC {
            return d.to_string();
        }
    }
    panic!("no tmpfs directory")
}

/// tmpfs files charge each page while it is cached (`shmem_acct_block`): written, they
/// add to Committed_AS; unlinked, they give it back.
fn committed_as_counts_tmpfs_pages_while_cached() {
    let path = format!("{}/limits-tmpfs-{}", tmpfs_dir(), std::process::id());
    let data = vec![1u8; BIG];
    let mut last = (0, 0);
    for _ in 0..20 {
        let before = meminfo_kb("Committed_AS") as i64;
        let fd = open(&path, O_RDWR | O_CREAT | O_TRUNC, 0o600).unwrap();
        assert_eq!(write(fd, &data).unwrap(), BIG);
        close(fd).unwrap();
        let during = meminfo_kb("Committed_AS") as i64;
        sys!(SYS_unlink, user_tests::cstr(&path).as_ptr()).unwrap();
        let after = meminfo_kb("Committed_AS") as i64;
        last = (during - before, after - before);
        if (last.0 - BIG_KB).abs() <= TOLERANCE_KB && last.1.abs() <= TOLERANCE_KB {
            return;
        }
    }
    panic!("Committed_AS moved by {} kB for a {BIG_KB} kB tmpfs file, then by {} kB after the unlink", last.0, last.1);
}

/// CommitLimit = (RAM - huge pages) * overcommit_ratio / 100 + swap, in pages.
fn commit_limit_is_overcommit_ratio_of_ram_plus_swap() {
    let kbytes: u64 = read_knob("vm/overcommit_kbytes").trim().parse().unwrap();
    let ratio: u64 = read_knob("vm/overcommit_ratio").trim().parse().unwrap();
    let ram_pages = meminfo_kb("MemTotal") / 4;
    let huge_pages = meminfo_kb("HugePages_Total") * meminfo_kb("Hugepagesize") / 4;
    let allowed = if kbytes != 0 { kbytes / 4 } else { (ram_pages - huge_pages) * ratio / 100 };
    let swap_pages = meminfo_kb("SwapTotal") / 4;
    assert_eq!(meminfo_kb("CommitLimit"), (allowed + swap_pages) * 4);
}

fn ram_and_swap() -> usize {
    (meminfo_kb("MemTotal") + meminfo_kb("SwapTotal")) as usize * 1024
}

/// Mode 0 refuses only a single charged request larger than RAM and swap together.
fn heuristic_overcommit_refuses_one_mapping_larger_than_ram() {
    assert_eq!(read_knob("vm/overcommit_memory"), "0\n");
    let too_big = ram_and_swap() + 64 * MIB;
    assert_errno!(anon(too_big, PROT_READ | PROT_WRITE, 0), ENOMEM);
    let a = anon(too_big, PROT_READ | PROT_WRITE, MAP_NORESERVE).unwrap();
    munmap(a, too_big);
    let a = anon(too_big, PROT_READ, 0).unwrap();
    munmap(a, too_big);
}

fn always_overcommit_allows_a_mapping_larger_than_ram() {
    run_in_child(|| {
        let too_big = ram_and_swap() + 64 * MIB;
        let Some(restore) = Knob::set_on_scratch("vm/overcommit_memory", "1") else { return };
        let r = anon(too_big, PROT_READ | PROT_WRITE, 0);
        drop(restore);
        munmap(r.expect("mmap larger than RAM in mode 1"), too_big);
    });
}

/// Mode 2 holds Committed_AS under CommitLimit and ignores MAP_NORESERVE.
fn strict_overcommit_refuses_past_commit_limit_even_with_noreserve() {
    run_in_child(|| {
        let Some(restore) = Knob::set_on_scratch("vm/overcommit_memory", "2") else { return };
        let room = meminfo_kb("CommitLimit").saturating_sub(meminfo_kb("Committed_AS")) as usize * 1024;
        let over = room + 64 * MIB;
        let plain = anon(over, PROT_READ | PROT_WRITE, 0);
        let noreserve = anon(over, PROT_READ | PROT_WRITE, MAP_NORESERVE);
        let shared = mmap(0, over, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        let read_only = anon(over, PROT_READ, 0);
        let small = anon(4 * MIB, PROT_READ | PROT_WRITE, 0);
        drop(restore);
        assert_errno!(plain, ENOMEM);
        assert_errno!(noreserve, ENOMEM);
        assert_errno!(shared, ENOMEM);
        read_only.expect("a read-only private mapping is not charged");
        small.expect("a small mapping within the limit");
    });
}

/// fork charges the child's copies of the charged mappings (dup_mmap): under strict
/// overcommit a process holding most of what is left cannot fork.
fn strict_overcommit_refuses_a_fork_whose_copy_would_pass_commit_limit() {
    run_in_child(|| {
        let Some(restore) = Knob::set_on_scratch("vm/overcommit_memory", "2") else { return };
        let room = meminfo_kb("CommitLimit").saturating_sub(meminfo_kb("Committed_AS")) as usize * 1024;
        let big = (room / 4 * 3) & !(PAGE - 1);
        let a = anon(big, PROT_READ | PROT_WRITE, 0);
        let forked = a.as_ref().ok().map(|_| {
            let pid = unsafe { fork() };
            if pid == 0 {
                unsafe { _exit(0) };
            }
            if pid > 0 {
                assert_eq!(wait_child(pid), Exit::Code(0));
                Ok(pid)
            } else {
                Err(user_tests::errno())
            }
        });
        drop(restore);
        let a = a.expect("a mapping of three quarters of the room");
        munmap(a, big);
        assert_eq!(forked, Some(Err(user_tests::Errno(ENOMEM))), "fork with three quarters of the room committed");
    });
}

// ---------------------------------------------------------------------------------------
// MAP_HUGETLB, Mapped
// ---------------------------------------------------------------------------------------

fn map_hugetlb_without_huge_pages_is_enomem() {
    assert_eq!(meminfo_kb("HugePages_Total"), 0, "the test needs no reserved huge pages");
    assert_errno!(anon(2 * MIB, PROT_READ | PROT_WRITE, MAP_HUGETLB), ENOMEM);
    assert_errno!(mmap(0, 2 * MIB, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0), ENOMEM);
    // An unknown huge page size (log2 12 in MAP_HUGE_SHIFT's bits) is EINVAL.
    assert_errno!(anon(2 * MIB, PROT_READ, MAP_HUGETLB | (12 << 26)), EINVAL);
    let dir = TempDir::new();
    let fd = open(&dir.file("f", &vec![0u8; PAGE]), O_RDWR, 0).unwrap();
    assert_errno!(mmap(0, PAGE, PROT_READ, MAP_SHARED | MAP_HUGETLB, fd, 0), EINVAL);
    close(fd).unwrap();
}

const HPAGE: usize = 2 * MIB;

/// With MAP_NORESERVE nothing is reserved, so mmap succeeds without huge pages; the
/// first touch, read or write, finds no page to allocate (hugetlb_no_page): SIGBUS.
fn map_hugetlb_noreserve_without_huge_pages_maps_and_a_touch_is_sigbus() {
    assert_eq!(meminfo_kb("HugePages_Total"), 0, "the test needs no reserved huge pages");
    for shared in [false, true] {
        let kind = if shared { MAP_SHARED } else { MAP_PRIVATE };
        let a = mmap(0, HPAGE, PROT_READ | PROT_WRITE, kind | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, -1, 0)
            .unwrap_or_else(|e| panic!("shared {shared}: {e}"));
        assert_eq!(child_exit(|| load_byte(a + PAGE) as i32), Exit::Signal(SIGBUS), "read, shared {shared}");
        assert_eq!(
            child_exit(|| {
                store_byte(a, 1);
                0
            }),
            Exit::Signal(SIGBUS),
            "write, shared {shared}"
        );
        munmap(a, HPAGE);
    }
}

/// A hugetlb mapping is whole huge pages: a 4 KiB request maps 2 MiB at a 2 MiB-aligned
/// address (a hint is rounded to one), and MAP_FIXED at an address that is not
/// aligned is EINVAL.
fn map_hugetlb_takes_whole_huge_pages_at_aligned_addresses() {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE;
    let a = mmap(0, PAGE, PROT_READ | PROT_WRITE, flags, -1, 0).unwrap();
    assert_eq!(a % HPAGE, 0, "{a:#x}");
    let maps = read_proc_in(c"/proc/self/maps", &mut [0u8; 64 * 1024]).to_owned();
    let line = maps.lines().find(|l| l.starts_with(&format!("{a:x}-"))).unwrap_or_else(|| panic!("{a:#x} in\n{maps}"));
    assert!(line.starts_with(&format!("{a:x}-{:x} ", a + HPAGE)), "{line}");
    munmap(a, HPAGE);
    // A free range with room for two huge pages; a hint just past the first huge page
    // boundary in it gives a huge page boundary beside it (Linux 6.1's x86 code rounds
    // the hint down, the generic code of later kernels up: either is a whole huge page).
    let room = anon(4 * HPAGE, PROT_NONE, MAP_NORESERVE).unwrap();
    munmap(room, 4 * HPAGE);
    let hint = room.next_multiple_of(HPAGE) + PAGE;
    let got = mmap(hint, HPAGE, PROT_READ, flags, -1, 0).unwrap();
    assert!(got == hint - PAGE || got == hint - PAGE + HPAGE, "hint {hint:#x} gave {got:#x}");
    munmap(got, HPAGE);
    assert_errno!(mmap(hint, HPAGE, PROT_READ, flags | MAP_FIXED, -1, 0), EINVAL);
}

/// Hugetlb memory is never charged to committed memory (accountable_mapping leaves
/// hugetlb files out, and MAP_NORESERVE reserves no huge pages).
fn map_hugetlb_noreserve_is_not_charged_to_committed_as() {
    assert_meminfo_delta("Committed_AS", 0, || {
        let a = anon(64 * MIB, PROT_READ | PROT_WRITE, MAP_HUGETLB | MAP_NORESERVE).unwrap();
        (a, 64 * MIB)
    });
}

/// Mapped counts file pages mapped into some page table, each page once however many
/// mappings it has; every page is touched, so fault-around changes nothing.
fn mapped_counts_each_mapped_file_page_once() {
    const PAGES: usize = 1024;
    let dir = TempDir::new();
    let fd = open(&dir.file("f", &vec![7u8; PAGES * PAGE]), O_RDWR, 0).unwrap();
    let map_and_touch = || {
        let a = mmap(0, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0).unwrap();
        for i in 0..PAGES {
            assert_eq!(load_byte(a + i * PAGE), 7);
        }
        a
    };
    let first = map_and_touch();
    munmap(first, PAGES * PAGE);
    assert_meminfo_delta("Mapped", (PAGES * PAGE / 1024) as i64, || (map_and_touch(), PAGES * PAGE));
    let first = map_and_touch();
    assert_meminfo_delta("Mapped", 0, || (map_and_touch(), PAGES * PAGE));
    munmap(first, PAGES * PAGE);
    close(fd).unwrap();
}
