//! Stress and out-of-memory: a thousand processes forking, mapping, touching and exiting;
//! a program that allocates until memory runs out is killed (Linux's OOM killer,
//! mm/oom_kill.c) while the others go on with their memory intact; oom_score_adj.

use libc::*;
use std::ffi::CStr;
use user_tests::{
    assert_errno, close, fork_child, meminfo_kb, mmap_anon, open, pipe, read, run_in_child, run_tests, sleep_ms, sys,
    tests, wait_child, write, Errno, Exit, PAGE,
};

fn main() {
    run_tests(
        "stress",
        tests![
            a_thousand_children_map_touch_unmap_and_exit_with_their_own_status,
            memory_hog_is_oom_killed_and_a_bystander_keeps_its_memory,
            pipe_buffers_filled_when_memory_is_exhausted_make_the_oom_killer_free_memory,
            oom_killer_takes_a_small_process_with_oom_score_adj_1000_before_a_larger_one,
            oom_killer_spares_a_larger_process_with_oom_score_adj_minus_1000,
            read_into_untouched_memory_when_memory_is_exhausted_succeeds_after_an_oom_kill,
            oom_score_adj_reads_back_what_was_written,
            oom_score_adj_of_minus_1000_with_cap_sys_resource_reads_back,
            oom_score_adj_out_of_range_is_einval,
            lowering_oom_score_adj_without_cap_sys_resource_is_eacces,
            splitting_mappings_past_max_map_count_is_enomem,
        ],
    );
}

/// Whether we run on our kernel (its release names it) rather than on Linux.
fn on_our_kernel() -> bool {
    let mut u: utsname = unsafe { std::mem::zeroed() };
    sys!(SYS_uname, &mut u as *mut utsname).unwrap();
    let release = unsafe { CStr::from_ptr(u.release.as_ptr()) };
    release.to_string_lossy().contains("mshare")
}

/// Fills each page of [addr, addr + pages * PAGE) with a byte derived from `seed` and
/// the page's index.
fn fill(addr: usize, pages: usize, seed: u8) {
    for i in 0..pages {
        let b = seed.wrapping_add(i as u8).wrapping_mul(31) | 1;
        unsafe { std::ptr::write_bytes((addr + i * PAGE) as *mut u8, b, PAGE) };
    }
}

/// Whether three words of each page (first, middle, last) still hold what `fill` wrote
/// with `seed`: for hundreds of MiB, where checking every byte takes seconds under TCG.
fn intact_sampled(addr: usize, pages: usize, seed: u8) -> bool {
    (0..pages).all(|i| {
        let b = seed.wrapping_add(i as u8).wrapping_mul(31) | 1;
        let word = u64::from_ne_bytes([b; 8]);
        [0, PAGE / 2, PAGE - 8].iter().all(|&off| unsafe { *((addr + i * PAGE + off) as *const u64) } == word)
    })
}

/// Whether every byte of the pages still holds what `fill` wrote with `seed`.
fn intact(addr: usize, pages: usize, seed: u8) -> bool {
    (0..pages).all(|i| {
        let b = seed.wrapping_add(i as u8).wrapping_mul(31) | 1;
        let page = unsafe { std::slice::from_raw_parts((addr + i * PAGE) as *const u8, PAGE) };
        page.iter().all(|&x| x == b)
    })
}

const CHILDREN: usize = 1024;
const AT_ONCE: usize = 16;

/// One stress child: maps 1..=32 pages, fills, checks and unmaps them; every fourth
/// forks a grandchild that does the same in its copy-on-write copy; exits with a
/// status derived from its index.
fn stress_child(i: usize) -> i32 {
    let pages = 1 + i % 32;
    let a = mmap_anon(pages * PAGE);
    fill(a, pages, i as u8);
    if i.is_multiple_of(4) {
        let g = fork_child(|| {
            fill(a, pages, !(i as u8));
            if intact(a, pages, !(i as u8)) {
                0
            } else {
                1
            }
        });
        if wait_child(g) != Exit::Code(0) {
            return 200;
        }
    }
    if !intact(a, pages, i as u8) {
        return 201;
    }
    sys!(SYS_munmap, a, pages * PAGE).unwrap();
    (i % 199) as i32
}

fn a_thousand_children_map_touch_unmap_and_exit_with_their_own_status() {
    let mut live = std::collections::HashMap::new();
    let mut wrong = Vec::new();
    let reap = |live: &mut std::collections::HashMap<i32, usize>, wrong: &mut Vec<String>| {
        let mut status = 0;
        let pid = sys!(SYS_wait4, -1, &mut status as *mut i32, 0, 0).expect("wait4") as i32;
        let i = live.remove(&pid).expect("wait4 returned a pid we did not fork");
        let got = Exit::from_status(status);
        if got != Exit::Code((i % 199) as i32) {
            wrong.push(format!("child {i}: {got:?}"));
        }
    };
    for i in 0..CHILDREN {
        if live.len() == AT_ONCE {
            reap(&mut live, &mut wrong);
        }
        let pid = fork_child(|| stress_child(i));
        live.insert(pid, i);
    }
    while !live.is_empty() {
        reap(&mut live, &mut wrong);
    }
    assert!(
        wrong.is_empty(),
        "{} of {CHILDREN} children ended wrongly: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_errno!(sys!(SYS_wait4, -1, 0, WNOHANG, 0), ECHILD);
}

/// The bystander's working set, in pages.
const BYSTANDER_PAGES: usize = 64;

/// Maps and fills a small working set, reports on `ready`, then checks it every few
/// milliseconds until `stop` is readable; at the end it must still be intact and fresh
/// memory must be allocatable. Exit 0 when all held.
fn bystander(ready: i32, stop: i32) -> i32 {
    let a = mmap_anon(BYSTANDER_PAGES * PAGE);
    fill(a, BYSTANDER_PAGES, 0x5a);
    write(ready, b"r").unwrap();
    sys!(SYS_fcntl, stop, F_SETFL, O_NONBLOCK).unwrap();
    let mut buf = [0u8; 1];
    loop {
        if !intact(a, BYSTANDER_PAGES, 0x5a) {
            return 2;
        }
        match read(stop, &mut buf) {
            Ok(_) => break,
            Err(Errno(EAGAIN)) => sleep_ms(5),
            Err(_) => return 3,
        }
    }
    let b = mmap_anon(256 * PAGE);
    fill(b, 256, 0x33);
    if intact(a, BYSTANDER_PAGES, 0x5a) && intact(b, 256, 0x33) {
        0
    } else {
        4
    }
}

/// Maps and touches memory 4 MiB at a time, forever; 3 if a mapping is refused.
fn hog() -> i32 {
    const CHUNK: usize = 4 << 20;
    loop {
        let Ok(a) = user_tests::mmap(0, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) else {
            return 3;
        };
        for off in (0..CHUNK).step_by(PAGE) {
            unsafe { *((a + off) as *mut u8) = 1 };
        }
    }
}

/// Runs only in our kernel, whose memory is the QEMU guest's: on the host the hog would
/// take the host's memory (and a limit such as RLIMIT_AS makes mmap fail instead of
/// invoking the OOM killer, so there is nothing to check there).
fn memory_hog_is_oom_killed_and_a_bystander_keeps_its_memory() {
    if !on_our_kernel() {
        return;
    }
    let (ready_r, ready_w) = pipe(O_CLOEXEC).unwrap();
    let (stop_r, stop_w) = pipe(O_CLOEXEC).unwrap();
    let by = fork_child(|| bystander(ready_w, stop_r));
    let mut b = [0u8; 1];
    assert_eq!(read(ready_r, &mut b), Ok(1), "the bystander did not start");
    let h = fork_child(hog);
    assert_eq!(wait_child(h), Exit::Signal(SIGKILL), "the hog must die of SIGKILL");
    write(stop_w, b"s").unwrap();
    assert_eq!(wait_child(by), Exit::Code(0), "the bystander must survive with its memory intact");
    for fd in [ready_r, ready_w, stop_r, stop_w] {
        close(fd).unwrap();
    }
}

fn mem_free_kb() -> u64 {
    meminfo_kb("MemFree")
}

const PIPES: usize = 400;

/// Kernel memory a process grows (pipe buffers, 25 MiB) while another holds all user
/// memory up to just above the kernel's reserve: the kernel neither panics nor fails the
/// writes; the OOM killer takes the holder. In our kernel only (see above).
fn pipe_buffers_filled_when_memory_is_exhausted_make_the_oom_killer_free_memory() {
    if !on_our_kernel() {
        return;
    }
    // Everything the writer touches is touched before memory runs out: a page fault of
    // its own would invoke the OOM killer by the fault path instead.
    let data = vec![7u8; 65536];
    let mut fds = std::hint::black_box([0i32; 2 * PIPES]);
    let (ready_r, ready_w) = pipe(O_CLOEXEC).unwrap();
    let holder = fork_child(|| {
        const CHUNK: usize = 1 << 20;
        while mem_free_kb() > 12 << 10 {
            let a = mmap_anon(CHUNK);
            for off in (0..CHUNK).step_by(PAGE) {
                unsafe { *((a + off) as *mut u8) = 1 };
            }
        }
        write(ready_w, b"r").unwrap();
        loop {
            unsafe { pause() };
        }
    });
    close(ready_w).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(read(ready_r, &mut b), Ok(1), "the holder did not fill memory");
    close(ready_r).unwrap();
    let mut failed = None;
    let mut opened = 0;
    for i in 0..PIPES {
        let (r, w) = pipe(O_CLOEXEC | O_NONBLOCK).unwrap();
        (fds[2 * i], fds[2 * i + 1]) = (r, w);
        opened += 2;
        if let Err(e) = write(w, &data) {
            failed = Some((i, e));
            break;
        }
    }
    for &fd in &fds[..opened] {
        close(fd).unwrap();
    }
    let _ = sys!(SYS_kill, holder, SIGKILL);
    assert_eq!(wait_child(holder), Exit::Signal(SIGKILL));
    assert_eq!(failed, None, "a pipe write failed");
}

/// oom_score_adj 1000 adds all of memory to a process's badness: a 16 MiB process that
/// set it goes before the hog, which is killed only when it runs out again. In our
/// kernel only (see above).
fn oom_killer_takes_a_small_process_with_oom_score_adj_1000_before_a_larger_one() {
    if !on_our_kernel() {
        return;
    }
    let (ready_r, ready_w) = pipe(O_CLOEXEC).unwrap();
    let small = fork_child(|| {
        write_oom_score_adj("1000").unwrap();
        let a = mmap_anon(16 << 20);
        fill(a, (16 << 20) / PAGE, 1);
        write(ready_w, b"r").unwrap();
        loop {
            unsafe { pause() };
        }
    });
    close(ready_w).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(read(ready_r, &mut b), Ok(1), "the small process did not start");
    close(ready_r).unwrap();
    let h = fork_child(hog);
    assert_eq!(wait_child(h), Exit::Signal(SIGKILL), "the hog must die of SIGKILL");
    let mut status = 0;
    let reaped = sys!(SYS_wait4, small, &mut status as *mut i32, WNOHANG, 0).unwrap();
    if reaped == 0 {
        let _ = sys!(SYS_kill, small, SIGKILL);
        wait_child(small);
        panic!("the process with oom_score_adj 1000 was still alive after the hog was killed");
    }
    assert_eq!(Exit::from_status(status), Exit::Signal(SIGKILL));
}

/// oom_score_adj -1000 exempts a process: one holding half of memory survives a hog that
/// is killed at a smaller size, its memory intact. In our kernel only (see above), as
/// root (setting -1000 needs CAP_SYS_RESOURCE).
fn oom_killer_spares_a_larger_process_with_oom_score_adj_minus_1000() {
    if !on_our_kernel() || !has_cap_sys_resource() {
        return;
    }
    let pages = (meminfo_kb("MemTotal") as usize * 1024 / 2) / PAGE;
    let (ready_r, ready_w) = pipe(O_CLOEXEC).unwrap();
    let (stop_r, stop_w) = pipe(O_CLOEXEC).unwrap();
    let exempt = fork_child(|| {
        write_oom_score_adj("-1000").unwrap();
        let a = mmap_anon(pages * PAGE);
        fill(a, pages, 9);
        write(ready_w, b"r").unwrap();
        let mut b = [0u8; 1];
        let _ = read(stop_r, &mut b);
        if intact_sampled(a, pages, 9) {
            0
        } else {
            2
        }
    });
    close(ready_w).unwrap();
    close(stop_r).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(read(ready_r, &mut b), Ok(1), "the exempt process did not start");
    close(ready_r).unwrap();
    let h = fork_child(hog);
    assert_eq!(wait_child(h), Exit::Signal(SIGKILL), "the hog must die of SIGKILL");
    write(stop_w, b"s").unwrap();
    close(stop_w).unwrap();
    assert_eq!(wait_child(exempt), Exit::Code(0), "the exempt process must survive with its memory");
}

/// Forks a child that sets `adj`, then maps and touches memory 1 MiB at a time until
/// MemFree is below `free_kb` (or `mib` MiB, if given), reports, and waits to be killed.
fn hold_memory(adj: &'static str, free_kb: u64, mib: Option<usize>) -> i32 {
    let (ready_r, ready_w) = pipe(O_CLOEXEC).unwrap();
    let pid = fork_child(|| {
        write_oom_score_adj(adj).unwrap();
        let mut held = 0;
        while mem_free_kb() > free_kb && mib.is_none_or(|m| held < m) {
            fill(mmap_anon(1 << 20), 256, 3);
            held += 1;
        }
        write(ready_w, b"r").unwrap();
        loop {
            unsafe { pause() };
        }
    });
    close(ready_w).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(read(ready_r, &mut b), Ok(1), "the memory holder did not start");
    close(ready_r).unwrap();
    pid
}

/// A system call whose copy to user memory finds only the kernel's reserve (here read
/// of /dev/zero into 8 MiB never touched, with 6 MiB free) has the OOM killer free
/// memory, as the page-fault path does, and then completes. In our kernel only (see
/// above), as root (the holder of the rest sets oom_score_adj -1000).
fn read_into_untouched_memory_when_memory_is_exhausted_succeeds_after_an_oom_kill() {
    if !on_our_kernel() || !has_cap_sys_resource() {
        return;
    }
    const LEN: usize = 8 << 20;
    let zero = open("/dev/zero", O_RDONLY, 0).unwrap();
    let buf = mmap_anon(LEN);
    let victim = hold_memory("1000", 0, Some(16));
    let holder = hold_memory("-1000", 6 << 10, None);
    // /dev/zero may return less than asked: read until the buffer is full or a call fails.
    let mut done = 0;
    let r = loop {
        match sys!(SYS_read, zero, buf + done, LEN - done) {
            Ok(n) if n > 0 && done + (n as usize) < LEN => done += n as usize,
            Ok(n) => break Ok(done as i64 + n),
            Err(e) => break Err(e),
        }
    };
    let _ = sys!(SYS_kill, holder, SIGKILL);
    wait_child(holder);
    let mut status = 0;
    let reaped = sys!(SYS_wait4, victim, &mut status as *mut i32, WNOHANG, 0).unwrap();
    if reaped == 0 {
        let _ = sys!(SYS_kill, victim, SIGKILL);
        wait_child(victim);
    }
    close(zero).unwrap();
    sys!(SYS_munmap, buf, LEN).unwrap();
    assert_eq!(r, Ok(LEN as i64), "read into untouched memory");
    assert!(
        reaped != 0 && Exit::from_status(status) == Exit::Signal(SIGKILL),
        "the oom_score_adj 1000 process must have been killed"
    );
}

fn read_oom_score_adj() -> String {
    let fd = open("/proc/self/oom_score_adj", O_RDONLY, 0).unwrap();
    let mut buf = [0u8; 32];
    let n = read(fd, &mut buf).unwrap();
    close(fd).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn write_oom_score_adj(text: &str) -> Result<usize, Errno> {
    let fd = open("/proc/self/oom_score_adj", O_WRONLY, 0).unwrap();
    let r = write(fd, text.as_bytes());
    close(fd).unwrap();
    r
}

/// Whether the calling thread has CAP_SYS_RESOURCE in its effective set (a container's
/// root may not: the tests that need it check nothing there).
fn has_cap_sys_resource() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    let mut h = Header { version: 0x2008_0522, pid: 0 };
    let mut d = [[0u32; 3]; 2];
    sys!(SYS_capget, &mut h as *mut Header, d.as_mut_ptr()).expect("capget");
    d[0][0] & (1 << CAP_SYS_RESOURCE) != 0
}

const CAP_SYS_RESOURCE: u32 = 24;

/// Raising needs no privilege.
fn oom_score_adj_reads_back_what_was_written() {
    run_in_child(|| {
        write_oom_score_adj("500\n").unwrap();
        assert_eq!(read_oom_score_adj(), "500\n");
        write_oom_score_adj("1000").unwrap();
        assert_eq!(read_oom_score_adj(), "1000\n");
    });
}

fn oom_score_adj_of_minus_1000_with_cap_sys_resource_reads_back() {
    if !has_cap_sys_resource() {
        return;
    }
    run_in_child(|| {
        write_oom_score_adj("-1000").unwrap();
        assert_eq!(read_oom_score_adj(), "-1000\n");
    });
}

fn oom_score_adj_out_of_range_is_einval() {
    run_in_child(|| {
        assert_errno!(write_oom_score_adj("1001"), EINVAL);
        assert_errno!(write_oom_score_adj("-1001"), EINVAL);
        assert_errno!(write_oom_score_adj("many"), EINVAL);
    });
}

/// Below the value a privileged writer last set (Linux's `oom_score_adj_min`); the file
/// is opened before the ids change, as the check is made at write time.
fn lowering_oom_score_adj_without_cap_sys_resource_is_eacces() {
    if !has_cap_sys_resource() {
        return;
    }
    run_in_child(|| {
        write_oom_score_adj("500").unwrap();
        let fd = open("/proc/self/oom_score_adj", O_WRONLY, 0).unwrap();
        sys!(SYS_setresgid, 65534, 65534, 65534).unwrap();
        sys!(SYS_setresuid, 65534, 65534, 65534).unwrap();
        assert_errno!(write(fd, b"100"), EACCES);
        write(fd, b"600").unwrap();
        assert_eq!(read_oom_score_adj(), "600\n");
        write(fd, b"550").unwrap();
        assert_eq!(read_oom_score_adj(), "550\n");
        close(fd).unwrap();
    });
}

/// Linux's default `vm.max_map_count`.
const MAX_MAP_COUNT: usize = 65530;

/// Each mprotect of every other page of one mapping adds two mappings, until the
/// address space holds `MAX_MAP_COUNT`: then ENOMEM, and the mapping can still go.
fn splitting_mappings_past_max_map_count_is_enomem() {
    run_in_child(|| {
        let pages = MAX_MAP_COUNT + 1000;
        let a = user_tests::mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
        let mut failed_at = None;
        for i in 0..pages / 2 {
            if let Err(e) = sys!(SYS_mprotect, a + (2 * i + 1) * PAGE, PAGE, PROT_READ) {
                assert_eq!(e, Errno(ENOMEM), "mprotect {i}");
                failed_at = Some(i);
                break;
            }
        }
        let i = failed_at.expect("no limit on the number of mappings");
        // The process had a few dozen mappings of its own before.
        assert!((MAX_MAP_COUNT / 2 - 100..=MAX_MAP_COUNT / 2).contains(&i), "ENOMEM after {i} splits");
        sys!(SYS_munmap, a, pages * PAGE).unwrap();
        let b = mmap_anon(PAGE);
        sys!(SYS_munmap, b, PAGE).unwrap();
    });
}
