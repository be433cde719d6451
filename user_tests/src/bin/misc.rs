//! Identity and system information: uname, getrandom, user and group ids, credentials
//! changes, resource limits, umask, prctl names, sysinfo, unknown system calls.
//!
//! Credential and limit changes are made in forked children (run_in_child), so the test
//! process keeps running as root with its own limits.

use libc::*;
use user_tests::{
    assert_errno, close, fork_child, handler, mmap, open, pipe, read, read_full, run_in_child, run_tests, set_handler,
    sys, tests, wait_child, write, Errno, Exit, BAD_PTR,
};

fn main() {
    run_tests(
        "misc",
        tests![
            uname_reports_linux_on_x86_64,
            uname_into_bad_pointer_is_efault,
            getrandom_fills_the_buffer,
            getrandom_with_grnd_nonblock_succeeds,
            getrandom_with_bad_flags_is_einval,
            getrandom_into_bad_pointer_is_efault,
            a_huge_getrandom_lets_others_run_and_ends_early_for_a_signal,
            ids_of_root_are_zero,
            setuid_to_1000_then_back_to_root_is_eperm,
            effective_uid_can_be_regained_from_saved_uid,
            setgid_round_trips,
            setgroups_then_getgroups_round_trips,
            getrlimit_soft_limit_is_at_most_hard_limit,
            getrlimit_with_bad_resource_is_einval,
            lowered_nofile_limit_makes_open_beyond_it_emfile,
            raising_hard_limit_as_non_root_is_eperm,
            setrlimit_with_soft_above_hard_is_einval,
            prlimit64_reads_and_sets_own_limits,
            umask_returns_previous_mask_and_applies_to_new_files,
            prctl_set_name_round_trips,
            sysinfo_reports_memory_and_uptime,
            unknown_syscall_number_is_enosys,
            reboot_with_bad_magic_is_einval,
            reboot_as_non_root_is_eperm_even_with_bad_magic,
            setpriority_round_trips_through_getpriority,
            raising_priority_as_non_root_is_eacces,
            times_returns_a_growing_tick_count,
            sched_setaffinity_accepts_the_current_mask,
            getcpu_reports_a_cpu_in_the_affinity_mask,
        ],
    )
}

fn field(f: &[c_char]) -> String {
    let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn uname_reports_linux_on_x86_64() {
    let mut u: utsname = unsafe { std::mem::zeroed() };
    sys!(SYS_uname, &mut u as *mut utsname).unwrap();
    assert_eq!(field(&u.sysname), "Linux");
    assert_eq!(field(&u.machine), "x86_64");
    assert!(!field(&u.release).is_empty());
    assert!(!field(&u.version).is_empty());
}

fn uname_into_bad_pointer_is_efault() {
    assert_errno!(sys!(SYS_uname, BAD_PTR), EFAULT);
}

fn getrandom(buf: &mut [u8], flags: u32) -> Result<i64, Errno> {
    sys!(SYS_getrandom, buf.as_mut_ptr(), buf.len(), flags)
}

fn getrandom_fills_the_buffer() {
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    assert_eq!(getrandom(&mut a, 0), Ok(64));
    assert_eq!(getrandom(&mut b, 0), Ok(64));
    assert_ne!(a, [0u8; 64]);
    assert_ne!(a, b, "two draws of 512 bits are equal");
}

fn getrandom_with_grnd_nonblock_succeeds() {
    let mut a = [0u8; 16];
    assert_eq!(getrandom(&mut a, GRND_NONBLOCK), Ok(16));
}

fn getrandom_with_bad_flags_is_einval() {
    let mut a = [0u8; 16];
    assert_errno!(getrandom(&mut a, 0xff00), EINVAL);
}

fn getrandom_into_bad_pointer_is_efault() {
    assert_errno!(sys!(SYS_getrandom, BAD_PTR, 16, 0), EFAULT);
}

extern "C" fn ignore_signal(_: c_int) {}

/// getrandom into 256 MiB takes long enough for another process to run and signal the
/// caller: the call must leave the CPU to others as it goes and end early with the bytes
/// written so far (Linux looks for a signal every page), not hold the CPU to the end.
fn a_huge_getrandom_lets_others_run_and_ends_early_for_a_signal() {
    const LEN: usize = 256 << 20;
    let (r, w) = pipe(0).unwrap();
    let pid = fork_child(|| {
        set_handler(SIGUSR1, handler(ignore_signal), 0, &[]).unwrap();
        let buf = mmap(0, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0).unwrap();
        write(w, b"r").unwrap();
        let n = sys!(SYS_getrandom, buf, LEN, 0).unwrap();
        write(w, &n.to_ne_bytes()).unwrap();
        0
    });
    close(w).unwrap();
    let mut ready = [0u8; 1];
    assert_eq!(read_full(r, &mut ready), Ok(1));
    // A signal every 5 ms until the child reports what getrandom returned.
    let mut result = [0u8; 8];
    let mut got = 0;
    while got < result.len() {
        sys!(SYS_kill, pid, SIGUSR1).unwrap();
        let mut p = pollfd { fd: r, events: POLLIN, revents: 0 };
        if sys!(SYS_poll, &mut p as *mut pollfd, 1, 5).unwrap() == 1 {
            let n = read(r, &mut result[got..]).unwrap();
            if n == 0 {
                break;
            }
            got += n;
        }
    }
    close(r).unwrap();
    assert_eq!(wait_child(pid), Exit::Code(0));
    assert_eq!(got, result.len(), "the child did not report");
    let n = i64::from_ne_bytes(result) as usize;
    assert!(n > 0 && n < LEN, "getrandom wrote {n} of {LEN} bytes despite a signal every 5 ms");
}

fn ids_of_root_are_zero() {
    for nr in [SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid] {
        assert_eq!(sys!(nr), Ok(0), "syscall {nr}");
    }
}

fn getresuid() -> [u32; 3] {
    let mut ids = [u32::MAX; 3];
    let p = ids.as_mut_ptr();
    sys!(SYS_getresuid, p, p.wrapping_add(1), p.wrapping_add(2)).unwrap();
    ids
}

/// Raw calls: libc's set*id also change every thread's ids, which tests need not.
fn setpriority_round_trips_through_getpriority() {
    run_in_child(|| {
        sys!(SYS_setpriority, libc::PRIO_PROCESS, 0, 7).unwrap();
        // The raw syscall returns 20 - nice.
        assert_eq!(sys!(SYS_getpriority, libc::PRIO_PROCESS, 0).unwrap(), 13);
        sys!(SYS_setpriority, libc::PRIO_PROCESS, 0, 100).unwrap();
        assert_eq!(sys!(SYS_getpriority, libc::PRIO_PROCESS, 0).unwrap(), 1, "clamped to 19");
        assert_errno!(sys!(SYS_getpriority, 99, 0), EINVAL);
    });
}

fn raising_priority_as_non_root_is_eacces() {
    run_in_child(|| {
        sys!(SYS_setpriority, libc::PRIO_PROCESS, 0, 5).unwrap();
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(sys!(SYS_setpriority, libc::PRIO_PROCESS, 0, 0), EACCES);
        sys!(SYS_setpriority, libc::PRIO_PROCESS, 0, 10).unwrap();
    });
}

fn times_returns_a_growing_tick_count() {
    let mut t: libc::tms = unsafe { std::mem::zeroed() };
    let a = sys!(SYS_times, &mut t as *mut libc::tms).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let b = sys!(SYS_times, &mut t as *mut libc::tms).unwrap();
    assert!(b > a, "{a} then {b}");
}

fn sched_setaffinity_accepts_the_current_mask() {
    let mut mask = [0u8; 128];
    let n = sys!(SYS_sched_getaffinity, 0, mask.len(), mask.as_mut_ptr()).unwrap();
    sys!(SYS_sched_setaffinity, 0, n, mask.as_ptr()).unwrap();
    let none = [0u8; 128];
    assert_errno!(sys!(SYS_sched_setaffinity, 0, 128, none.as_ptr()), EINVAL);
}

fn getcpu_reports_a_cpu_in_the_affinity_mask() {
    let mut mask = [0u8; 128];
    sys!(SYS_sched_getaffinity, 0, mask.len(), mask.as_mut_ptr()).unwrap();
    let mut cpu = u32::MAX;
    sys!(SYS_getcpu, &mut cpu as *mut u32, 0, 0).unwrap();
    assert!(mask[(cpu / 8) as usize] & (1 << (cpu % 8)) != 0, "cpu {cpu}");
}

/// A wrong magic number is refused before anything happens (safe to run as
/// root on a real machine: the command is never looked at).
fn reboot_with_bad_magic_is_einval() {
    assert_errno!(sys!(SYS_reboot, 0x1234, 0x5678, libc::LINUX_REBOOT_CMD_POWER_OFF, 0), EINVAL);
}

/// Without CAP_SYS_BOOT, reboot fails with EPERM before the magic is checked.
fn reboot_as_non_root_is_eperm_even_with_bad_magic() {
    run_in_child(|| {
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(sys!(SYS_reboot, 0x1234, 0x5678, libc::LINUX_REBOOT_CMD_POWER_OFF, 0), EPERM);
    });
}

fn setuid_to_1000_then_back_to_root_is_eperm() {
    run_in_child(|| {
        sys!(SYS_setgid, 1000).unwrap();
        sys!(SYS_setuid, 1000).unwrap();
        assert_eq!(getresuid(), [1000, 1000, 1000], "root's setuid sets all three");
        assert_errno!(sys!(SYS_setuid, 0), EPERM);
        assert_errno!(sys!(SYS_setresuid, -1, 0, -1), EPERM);
    });
}

fn effective_uid_can_be_regained_from_saved_uid() {
    run_in_child(|| {
        sys!(SYS_setresuid, -1, 1000, -1).unwrap();
        assert_eq!(getresuid(), [0, 1000, 0]);
        assert_eq!(sys!(SYS_geteuid), Ok(1000));
        sys!(SYS_setresuid, -1, 0, -1).expect("the saved uid is still root");
        assert_eq!(getresuid(), [0, 0, 0]);
    });
}

fn setgid_round_trips() {
    run_in_child(|| {
        sys!(SYS_setgid, 1000).unwrap();
        assert_eq!((sys!(SYS_getgid), sys!(SYS_getegid)), (Ok(1000), Ok(1000)));
        sys!(SYS_setgid, 0).expect("still root, so any gid");
        assert_eq!(sys!(SYS_getgid), Ok(0));
    });
}

fn setgroups_then_getgroups_round_trips() {
    run_in_child(|| {
        let groups: [gid_t; 3] = [5, 6, 1000];
        sys!(SYS_setgroups, 3, groups.as_ptr()).unwrap();
        assert_eq!(sys!(SYS_getgroups, 0, 0), Ok(3), "size 0 asks for the count");
        let mut got = [0 as gid_t; 8];
        assert_eq!(sys!(SYS_getgroups, 8, got.as_mut_ptr()), Ok(3));
        assert_eq!(got[..3], groups);
        assert_errno!(sys!(SYS_getgroups, 1, got.as_mut_ptr()), EINVAL);
    });
}

fn getrlimit(resource: u32) -> Result<rlimit, Errno> {
    let mut r = rlimit { rlim_cur: 0, rlim_max: 0 };
    sys!(SYS_getrlimit, resource, &mut r as *mut rlimit)?;
    Ok(r)
}

fn setrlimit(resource: u32, cur: u64, max: u64) -> Result<i64, Errno> {
    let r = rlimit { rlim_cur: cur, rlim_max: max };
    sys!(SYS_setrlimit, resource, &r as *const rlimit)
}

fn getrlimit_soft_limit_is_at_most_hard_limit() {
    for res in [RLIMIT_NOFILE, RLIMIT_STACK, RLIMIT_AS, RLIMIT_CORE] {
        let r = getrlimit(res as u32).unwrap();
        assert!(r.rlim_cur <= r.rlim_max, "resource {res}: {} > {}", r.rlim_cur, r.rlim_max);
    }
    assert!(getrlimit(RLIMIT_NOFILE as u32).unwrap().rlim_cur >= 20);
}

fn getrlimit_with_bad_resource_is_einval() {
    assert_errno!(getrlimit(999), EINVAL);
}

fn lowered_nofile_limit_makes_open_beyond_it_emfile() {
    run_in_child(|| {
        setrlimit(RLIMIT_NOFILE as u32, 16, 16).unwrap();
        let mut opened = Vec::new();
        let err = loop {
            match open("/dev/null", O_RDONLY, 0) {
                Ok(fd) => opened.push(fd),
                Err(e) => break e,
            }
            assert!(opened.len() <= 16, "opened more than the limit");
        };
        assert_eq!(err, Errno(EMFILE));
        assert!(opened.iter().all(|&fd| fd < 16), "fd beyond the limit: {opened:?}");
        assert_errno!(sys!(SYS_fcntl, 0, F_DUPFD, 16), EINVAL); // at or above the limit
        for fd in opened {
            close(fd).unwrap();
        }
    });
}

fn raising_hard_limit_as_non_root_is_eperm() {
    run_in_child(|| {
        setrlimit(RLIMIT_NOFILE as u32, 64, 128).unwrap();
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(setrlimit(RLIMIT_NOFILE as u32, 64, 256), EPERM);
        setrlimit(RLIMIT_NOFILE as u32, 128, 128).expect("raising soft up to hard is allowed");
        setrlimit(RLIMIT_NOFILE as u32, 32, 64).expect("lowering is allowed");
    });
}

fn setrlimit_with_soft_above_hard_is_einval() {
    let cur = getrlimit(RLIMIT_NOFILE as u32).unwrap();
    assert_errno!(setrlimit(RLIMIT_NOFILE as u32, cur.rlim_max + 1, cur.rlim_max), EINVAL);
}

fn prlimit64_reads_and_sets_own_limits() {
    run_in_child(|| {
        let before = getrlimit(RLIMIT_NOFILE as u32).unwrap();
        let new = rlimit { rlim_cur: 50, rlim_max: 60 };
        let mut old = rlimit { rlim_cur: 0, rlim_max: 0 };
        sys!(SYS_prlimit64, 0, RLIMIT_NOFILE, &new as *const rlimit, &mut old as *mut rlimit).unwrap();
        assert_eq!((old.rlim_cur, old.rlim_max), (before.rlim_cur, before.rlim_max));
        let now = getrlimit(RLIMIT_NOFILE as u32).unwrap();
        assert_eq!((now.rlim_cur, now.rlim_max), (50, 60));
    });
}

fn umask_returns_previous_mask_and_applies_to_new_files() {
    run_in_child(|| {
        sys!(SYS_umask, 0o022).unwrap();
        assert_eq!(sys!(SYS_umask, 0o077), Ok(0o022));
        let dir = user_tests::TempDir::new();
        let fd = open(&dir.join("f"), O_CREAT | O_WRONLY, 0o666).unwrap();
        let mut st: stat = unsafe { std::mem::zeroed() };
        sys!(SYS_fstat, fd, &mut st as *mut stat).unwrap();
        close(fd).unwrap();
        assert_eq!(st.st_mode & 0o777, 0o600, "0666 & !0077");
    });
}

fn prctl_set_name_round_trips() {
    run_in_child(|| {
        let name = b"ut-renamed\0";
        sys!(SYS_prctl, PR_SET_NAME, name.as_ptr(), 0, 0, 0).unwrap();
        let mut got = [0u8; 16];
        sys!(SYS_prctl, PR_GET_NAME, got.as_mut_ptr(), 0, 0, 0).unwrap();
        assert_eq!(&got[..name.len()], name);
    });
}

fn sysinfo_reports_memory_and_uptime() {
    let mut si: sysinfo = unsafe { std::mem::zeroed() };
    sys!(SYS_sysinfo, &mut si as *mut sysinfo).unwrap();
    assert!(si.totalram > 0 && si.mem_unit > 0);
    assert!(si.freeram <= si.totalram);
    assert!(si.procs > 0);
}

fn unknown_syscall_number_is_enosys() {
    assert_errno!(sys!(1000), ENOSYS);
    assert_errno!(sys!(0x7fff_ffff), ENOSYS);
}
