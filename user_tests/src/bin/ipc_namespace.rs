//! IPC namespaces (Linux's ipc/namespace.c, `copy_namespaces`, `unshare_nsproxy_namespaces`):
//! `unshare(CLONE_NEWIPC)` and `clone(CLONE_NEWIPC)` give a namespace of its own, with its own
//! ids, keys and limits; both need CAP_SYS_ADMIN; clone refuses CLONE_NEWIPC with
//! CLONE_SYSVSEM where unshare accepts the pair; a namespace's segments go with it.
//!
//! Each test runs its namespace changes in a child, so the suite's own namespace stays.

use libc::*;
use user_tests::{assert_errno, fork_child, run_in_child, run_tests, sys, tests, wait_child, Errno, Exit};

const PAGE: usize = 4096;

fn main() {
    run_tests(
        "ipc_namespace",
        tests![
            a_new_namespace_sees_none_of_the_old_ones_segments,
            the_same_key_names_different_segments_in_two_namespaces,
            a_new_namespace_has_its_own_limits,
            proc_sysvipc_shm_shows_only_the_callers_namespace,
            a_forked_child_shares_its_parents_namespace,
            clone_newipc_gives_the_child_a_new_namespace,
            clone_newipc_with_sysvsem_is_einval,
            unshare_accepts_newipc_with_sysvsem,
            newipc_without_cap_sys_admin_is_eperm,
            unshare_of_unknown_flags_is_einval,
            unshare_clone_files_gives_a_private_fd_table,
            a_namespaces_segments_go_when_its_last_process_exits,
            proc_pid_ns_ipc_names_the_namespace,
            setns_joins_the_namespace_of_an_open_ns_file,
            setns_of_another_file_or_type_is_einval,
            setns_without_cap_sys_admin_is_eperm,
            an_exited_creators_segments_stay_until_shm_rmid_forced_is_set,
            with_shm_rmid_forced_an_exiting_creator_takes_its_unattached_segments,
            with_shm_rmid_forced_a_segment_goes_at_its_last_detach,
            unshare_newipc_orphans_the_callers_segments,
        ],
    )
}

fn key(n: i32) -> i32 {
    0x4e00_0000 | ((unsafe { getpid() } & 0xffff) << 8) | n
}

fn shmget(key: i32, size: usize, flg: i32) -> Result<i32, Errno> {
    sys!(SYS_shmget, key, size, flg).map(|v| v as i32)
}

fn rmid(id: i32) {
    sys!(SYS_shmctl, id, IPC_RMID, 0).unwrap();
}

fn unshare(flags: u64) -> Result<i64, Errno> {
    sys!(SYS_unshare, flags)
}

fn segment_ids() -> Vec<i32> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    text.lines().skip(1).map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()).collect()
}

fn a_new_namespace_sees_none_of_the_old_ones_segments() {
    let id = shmget(key(1), PAGE, IPC_CREAT | 0o600).unwrap();
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        assert_errno!(shmget(key(1), PAGE, 0o600), ENOENT);
        let mut ds: shmid_ds = unsafe { std::mem::zeroed() };
        assert_errno!(sys!(SYS_shmctl, id, IPC_STAT, &mut ds as *mut shmid_ds), EINVAL);
        assert!(segment_ids().is_empty(), "a new namespace holds no segment");
    });
    rmid(id);
}

fn the_same_key_names_different_segments_in_two_namespaces() {
    let id = shmget(key(2), PAGE, IPC_CREAT | IPC_EXCL | 0o600).unwrap();
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        let inner = shmget(key(2), 2 * PAGE, IPC_CREAT | IPC_EXCL | 0o600).unwrap();
        let mut ds: shmid_ds = unsafe { std::mem::zeroed() };
        sys!(SYS_shmctl, inner, IPC_STAT, &mut ds as *mut shmid_ds).unwrap();
        assert_eq!(ds.shm_segsz, 2 * PAGE);
        rmid(inner);
    });
    let mut ds: shmid_ds = unsafe { std::mem::zeroed() };
    sys!(SYS_shmctl, id, IPC_STAT, &mut ds as *mut shmid_ds).unwrap();
    assert_eq!(ds.shm_segsz, PAGE, "the outer segment is untouched");
    rmid(id);
}

fn read_knob(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}")).unwrap()
}

fn a_new_namespace_has_its_own_limits() {
    let outer = read_knob("shmmni");
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        assert_eq!(read_knob("shmmni"), "4096\n", "a new namespace starts from the defaults");
        std::fs::write("/proc/sys/kernel/shmmni", "1\n").unwrap();
        let a = shmget(IPC_PRIVATE, PAGE, 0o600).unwrap();
        assert_errno!(shmget(IPC_PRIVATE, PAGE, 0o600), ENOSPC);
        rmid(a);
    });
    assert_eq!(read_knob("shmmni"), outer, "the outer namespace's limit is its own");
}

fn proc_sysvipc_shm_shows_only_the_callers_namespace() {
    let id = shmget(IPC_PRIVATE, PAGE, 0o600).unwrap();
    assert!(segment_ids().contains(&id));
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        let inner = shmget(IPC_PRIVATE, PAGE, 0o600).unwrap();
        assert_eq!(segment_ids(), vec![inner]);
        rmid(inner);
    });
    rmid(id);
}

fn a_forked_child_shares_its_parents_namespace() {
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        let k = key(3);
        let id = shmget(k, PAGE, IPC_CREAT | 0o600).unwrap();
        let child = fork_child(move || if shmget(k, PAGE, 0) == Ok(id) { 0 } else { 1 });
        assert_eq!(wait_child(child), Exit::Code(0));
        rmid(id);
    });
}

/// A raw clone with `flags` whose child reports shmget(key, 0, 0) != ENOENT in its status.
fn clone_and_look_up(flags: u64, k: i32) -> Result<Exit, Errno> {
    let pid = unsafe { syscall(SYS_clone, flags | SIGCHLD as u64, 0, 0, 0, 0) };
    if pid < 0 {
        return Err(user_tests::errno());
    }
    if pid == 0 {
        let found = shmget(k, 0, 0).is_ok();
        unsafe { _exit(found as i32) };
    }
    Ok(wait_child(pid as i32))
}

fn clone_newipc_gives_the_child_a_new_namespace() {
    let id = shmget(key(4), PAGE, IPC_CREAT | 0o600).unwrap();
    assert_eq!(clone_and_look_up(0, key(4)), Ok(Exit::Code(1)), "a plain child finds it");
    assert_eq!(clone_and_look_up(CLONE_NEWIPC as u64, key(4)), Ok(Exit::Code(0)), "a CLONE_NEWIPC child does not");
    rmid(id);
}

fn clone_newipc_with_sysvsem_is_einval() {
    assert_eq!(clone_and_look_up((CLONE_NEWIPC | CLONE_SYSVSEM) as u64, 0), Err(Errno(EINVAL)));
}

fn unshare_accepts_newipc_with_sysvsem() {
    run_in_child(|| unshare((CLONE_NEWIPC | CLONE_SYSVSEM) as u64).map(drop).unwrap());
}

fn newipc_without_cap_sys_admin_is_eperm() {
    run_in_child(|| {
        unsafe {
            assert_eq!(setgroups(0, std::ptr::null()), 0);
            assert_eq!(setresgid(1000, 1000, 1000), 0);
            assert_eq!(setresuid(1000, 1000, 1000), 0);
        }
        assert_errno!(unshare(CLONE_NEWIPC as u64), EPERM);
        assert_eq!(clone_and_look_up(CLONE_NEWIPC as u64, 0), Err(Errno(EPERM)));
        unshare(CLONE_FILES as u64).unwrap();
    });
}

fn unshare_of_unknown_flags_is_einval() {
    assert_errno!(unshare(1 << 40), EINVAL);
    assert_errno!(unshare(CSIGNAL as u64 & !0x80), EINVAL);
}

fn unshare_clone_files_gives_a_private_fd_table() {
    // A CLONE_FILES thread shares the table; after unshare the thread's closes do not
    // reach the caller.
    let fd = unsafe { dup(1) };
    assert!(fd >= 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CLONE_FILES as u64).unwrap();
            assert_eq!(unsafe { close(fd) }, 0);
        });
    });
    assert!(unsafe { fcntl(fd, F_GETFD) } >= 0, "the caller's fd is still open");
    unsafe { close(fd) };
}

fn a_namespaces_segments_go_when_its_last_process_exits() {
    // The child makes a segment (and attaches it) in a namespace of its own and exits:
    // the namespace goes with it, and the kernel's leak check at the end of the run finds
    // the segment's pages gone. Here: the outer namespace never saw it.
    let before = segment_ids();
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        let id = shmget(key(5), 64 * PAGE, IPC_CREAT | 0o600).unwrap();
        let a = unsafe { shmat(id, std::ptr::null(), 0) } as usize;
        for p in 0..64 {
            user_tests::store_byte(a + p * PAGE, 1);
        }
    });
    assert_eq!(segment_ids(), before);
}

fn ns_link() -> String {
    std::fs::read_link("/proc/self/ns/ipc").unwrap().to_str().unwrap().to_string()
}

fn inum_of(link: &str) -> u64 {
    link.strip_prefix("ipc:[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{link:?} is not ipc:[N]"))
}

fn proc_pid_ns_ipc_names_the_namespace() {
    let outer = ns_link();
    let ino = inum_of(&outer);
    let mut st: stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { stat(c"/proc/self/ns/ipc".as_ptr(), &mut st) }, 0);
    assert_eq!(st.st_ino, ino, "the link's target is the namespace's inode");
    run_in_child(move || {
        assert_eq!(ns_link(), outer, "a child shares it");
        unshare(CLONE_NEWIPC as u64).unwrap();
        assert_ne!(inum_of(&ns_link()), ino, "a new namespace has another number");
    });
}

fn setns_joins_the_namespace_of_an_open_ns_file() {
    let id = shmget(key(6), PAGE, IPC_CREAT | 0o600).unwrap();
    let k = key(6);
    run_in_child(move || {
        let fd = unsafe { open(c"/proc/self/ns/ipc".as_ptr(), O_RDONLY) };
        assert!(fd >= 0);
        let outer = ns_link();
        unshare(CLONE_NEWIPC as u64).unwrap();
        assert_errno!(shmget(k, 0, 0), ENOENT);
        sys!(SYS_setns, fd, CLONE_NEWIPC).unwrap();
        assert_eq!(shmget(k, 0, 0), Ok(id), "back in the outer namespace");
        assert_eq!(ns_link(), outer);
        unshare(CLONE_NEWIPC as u64).unwrap();
        sys!(SYS_setns, fd, 0).unwrap();
        assert_eq!(shmget(k, 0, 0), Ok(id), "nstype 0 takes any namespace");
    });
    rmid(id);
}

fn setns_of_another_file_or_type_is_einval() {
    run_in_child(|| {
        let fd = unsafe { open(c"/proc/self/ns/ipc".as_ptr(), O_RDONLY) };
        assert_errno!(sys!(SYS_setns, fd, CLONE_NEWNET), EINVAL);
        assert_errno!(sys!(SYS_setns, 0, CLONE_NEWIPC), EINVAL);
        assert_errno!(sys!(SYS_setns, 999, CLONE_NEWIPC), EBADF);
    });
}

fn setns_without_cap_sys_admin_is_eperm() {
    run_in_child(|| {
        let fd = unsafe { open(c"/proc/self/ns/ipc".as_ptr(), O_RDONLY) };
        assert!(fd >= 0);
        unsafe {
            assert_eq!(setgroups(0, std::ptr::null()), 0);
            assert_eq!(setresgid(1000, 1000, 1000), 0);
            assert_eq!(setresuid(1000, 1000, 1000), 0);
        }
        assert_errno!(sys!(SYS_setns, fd, CLONE_NEWIPC), EPERM);
    });
}

fn exists(id: i32) -> bool {
    let mut ds: shmid_ds = unsafe { std::mem::zeroed() };
    sys!(SYS_shmctl, id, IPC_STAT, &mut ds as *mut shmid_ds).is_ok()
}

fn set_rmid_forced(on: bool) {
    std::fs::write("/proc/sys/kernel/shm_rmid_forced", if on { "1\n" } else { "0\n" }).unwrap();
}

/// A segment made by a process that has exited, as the process's exit status (its id).
fn segment_of_an_exited_process(attach: bool) -> i32 {
    let child = fork_child(move || {
        let id = shmget(IPC_PRIVATE, PAGE, 0o600).unwrap();
        if attach {
            sys!(SYS_shmat, id, 0, 0).unwrap();
        }
        id
    });
    match wait_child(child) {
        Exit::Code(id) => id,
        e => panic!("the creating child ended with {e:?}"),
    }
}

/// Orphans (segments whose creator exited, unattached) stay while `kernel.shm_rmid_forced`
/// is 0; setting it destroys them (`shm_destroy_orphaned`), not a live creator's.
fn an_exited_creators_segments_stay_until_shm_rmid_forced_is_set() {
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        // Ids below 256 fit an exit status: a new namespace starts at index 0.
        let orphan = segment_of_an_exited_process(false);
        let attached_then = segment_of_an_exited_process(true);
        let mine = shmget(IPC_PRIVATE, PAGE, 0o600).unwrap();
        assert!(exists(orphan) && exists(attached_then) && exists(mine));
        set_rmid_forced(true);
        assert!(!exists(orphan), "an unattached orphan survived shm_rmid_forced");
        assert!(!exists(attached_then), "an orphan detached at its creator's exit survived");
        assert!(exists(mine), "a segment of a live creator was destroyed");
        rmid(mine);
    });
}

fn with_shm_rmid_forced_an_exiting_creator_takes_its_unattached_segments() {
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        set_rmid_forced(true);
        let id = segment_of_an_exited_process(false);
        assert!(!exists(id), "the segment outlived its creator");
    });
}

/// Under shm_rmid_forced a segment attached elsewhere when its creator exits stays until
/// its last detach, and a live creator's segment goes at its last detach too.
fn with_shm_rmid_forced_a_segment_goes_at_its_last_detach() {
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        set_rmid_forced(true);
        let words = user_tests::shared_words(2);
        let (tx, rx) = (&words[0], &words[1]);
        let child = fork_child(move || {
            let id = shmget(IPC_PRIVATE, PAGE, 0o600).unwrap();
            tx.store(id as u64 + 1, std::sync::atomic::Ordering::SeqCst);
            while rx.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            0
        });
        while tx.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let id = (tx.load(std::sync::atomic::Ordering::SeqCst) - 1) as i32;
        let a = sys!(SYS_shmat, id, 0, 0).unwrap() as usize;
        rx.store(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(wait_child(child), Exit::Code(0));
        assert!(exists(id), "an attached segment went with its creator");
        sys!(SYS_shmdt, a).unwrap();
        assert!(!exists(id), "the segment outlived its last detach");
        let mine = shmget(IPC_PRIVATE, PAGE, 0o600).unwrap();
        let a = sys!(SYS_shmat, mine, 0, 0).unwrap() as usize;
        sys!(SYS_shmdt, a).unwrap();
        assert!(!exists(mine), "a live creator's segment outlived its last detach");
    });
}

/// unshare(CLONE_NEWIPC) orphans the caller's segments in the namespace it leaves.
fn unshare_newipc_orphans_the_callers_segments() {
    run_in_child(|| {
        unshare(CLONE_NEWIPC as u64).unwrap();
        let outer = std::fs::File::open("/proc/self/ns/ipc").unwrap();
        let id = shmget(IPC_PRIVATE, PAGE, 0o600).unwrap();
        unshare(CLONE_NEWIPC as u64).unwrap();
        use std::os::fd::AsRawFd;
        sys!(SYS_setns, outer.as_raw_fd(), CLONE_NEWIPC).unwrap();
        assert!(exists(id));
        set_rmid_forced(true);
        assert!(!exists(id), "the segment of a creator that left the namespace is no orphan");
    });
}
