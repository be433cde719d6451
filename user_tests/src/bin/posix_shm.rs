//! POSIX shared memory: musl's unmodified `shm_open`/`shm_unlink` over the tmpfs at
//! /dev/shm; its files shared through descriptors, names, mappings and fork; and their
//! lifetime: the pages live until the file has no name, no descriptor and no mapping,
//! whichever goes last (watched through /proc/meminfo's Shmem).
//!
//! Names are made from the test process's pid, so that a run on a host never meets
//! another program's objects; every test unlinks what it made.

use libc::*;
use std::ffi::CString;
use user_tests::{
    assert_errno, close, fork_child, meminfo_kb, mmap, run_tests, sys, tests, wait_child, Errno, Exit, PAGE,
};

fn main() {
    run_tests(
        "posix_shm",
        tests![
            dev_shm_is_a_world_writable_sticky_tmpfs,
            shm_open_creates_a_file_in_dev_shm,
            shm_open_excl_of_an_existing_name_is_eexist,
            shm_open_without_creat_of_a_missing_name_is_enoent,
            shm_unlink_removes_the_name_and_a_second_is_enoent,
            a_second_open_by_name_shares_the_pages,
            a_mapping_shares_pages_with_a_forked_child,
            the_pages_outlive_name_and_descriptor_while_mapped,
            the_name_kept_last_frees_the_pages_when_unlinked,
            the_descriptor_kept_last_frees_the_pages_when_closed,
            the_mapping_kept_last_frees_the_pages_when_unmapped,
            a_tmpfs_file_is_sealed_against_seals,
            threads_opening_mapping_and_unlinking_the_same_names_see_one_file_per_name,
            processes_opening_mapping_and_unlinking_the_same_names_for_thousands_of_rounds,
        ],
    )
}

/// A name of this process for shm_open ("/NAME-PID").
fn name(tag: &str) -> CString {
    CString::new(format!("/mshare-test-{tag}-{}", std::process::id())).unwrap()
}

fn shm_open_(n: &CString, flags: i32, mode: mode_t) -> Result<i32, Errno> {
    let fd = unsafe { shm_open(n.as_ptr(), flags, mode) };
    if fd < 0 {
        Err(user_tests::errno())
    } else {
        Ok(fd)
    }
}

fn shm_unlink_(n: &CString) -> Result<(), Errno> {
    if unsafe { shm_unlink(n.as_ptr()) } < 0 {
        Err(user_tests::errno())
    } else {
        Ok(())
    }
}

fn stat_path(p: &str) -> Result<stat, Errno> {
    let c = user_tests::cstr(p);
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_newfstatat, AT_FDCWD, c.as_ptr(), &mut st as *mut stat, 0).map(|_| st)
}

fn dev_shm_path(n: &CString) -> String {
    format!("/dev/shm{}", n.to_str().unwrap())
}

fn ftruncate(fd: i32, len: usize) {
    sys!(SYS_ftruncate, fd, len).unwrap();
}

fn map_shared(fd: i32, len: usize) -> usize {
    mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap()
}

fn munmap(addr: usize, len: usize) {
    sys!(SYS_munmap, addr, len).unwrap();
}

fn dev_shm_is_a_world_writable_sticky_tmpfs() {
    let st = stat_path("/dev/shm").unwrap();
    assert_eq!(st.st_mode, S_IFDIR | 0o1777);
    let c = user_tests::cstr("/dev/shm");
    let mut fs: statfs = unsafe { std::mem::zeroed() };
    sys!(SYS_statfs, c.as_ptr(), &mut fs as *mut statfs).unwrap();
    assert_eq!(fs.f_type as i64, TMPFS_MAGIC as i64);
}

fn shm_open_creates_a_file_in_dev_shm() {
    let n = name("create");
    let fd = shm_open_(&n, O_CREAT | O_EXCL | O_RDWR, 0o640).unwrap();
    let st = stat_path(&dev_shm_path(&n)).unwrap();
    assert_eq!(st.st_mode, S_IFREG | 0o640);
    assert_eq!(st.st_size, 0);
    assert_eq!(st.st_nlink, 1);
    // musl opens it close-on-exec.
    assert_eq!(sys!(SYS_fcntl, fd, F_GETFD).unwrap(), FD_CLOEXEC as i64);
    shm_unlink_(&n).unwrap();
    close(fd).unwrap();
}

fn shm_open_excl_of_an_existing_name_is_eexist() {
    let n = name("excl");
    let fd = shm_open_(&n, O_CREAT | O_EXCL | O_RDWR, 0o600).unwrap();
    assert_errno!(shm_open_(&n, O_CREAT | O_EXCL | O_RDWR, 0o600), EEXIST);
    let again = shm_open_(&n, O_CREAT | O_RDWR, 0o600).unwrap();
    shm_unlink_(&n).unwrap();
    close(again).unwrap();
    close(fd).unwrap();
}

fn shm_open_without_creat_of_a_missing_name_is_enoent() {
    assert_errno!(shm_open_(&name("missing"), O_RDWR, 0), ENOENT);
}

fn shm_unlink_removes_the_name_and_a_second_is_enoent() {
    let n = name("unlink");
    let fd = shm_open_(&n, O_CREAT | O_EXCL | O_RDWR, 0o600).unwrap();
    shm_unlink_(&n).unwrap();
    assert_errno!(stat_path(&dev_shm_path(&n)), ENOENT);
    assert_errno!(shm_unlink_(&n), ENOENT);
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_fstat, fd, &mut st as *mut stat).unwrap();
    assert_eq!(st.st_nlink, 0);
    close(fd).unwrap();
}

fn a_second_open_by_name_shares_the_pages() {
    let n = name("second");
    let fd = shm_open_(&n, O_CREAT | O_EXCL | O_RDWR, 0o600).unwrap();
    ftruncate(fd, PAGE);
    let a = map_shared(fd, PAGE);
    unsafe { *(a as *mut u8).add(100) = 33 };
    let other = shm_open_(&n, O_RDONLY, 0).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(sys!(SYS_pread64, other, b.as_mut_ptr(), 1, 100).unwrap(), 1);
    assert_eq!(b[0], 33);
    munmap(a, PAGE);
    shm_unlink_(&n).unwrap();
    close(other).unwrap();
    close(fd).unwrap();
}

fn a_mapping_shares_pages_with_a_forked_child() {
    let n = name("fork");
    let fd = shm_open_(&n, O_CREAT | O_EXCL | O_RDWR, 0o600).unwrap();
    ftruncate(fd, 4 * PAGE);
    let a = map_shared(fd, 4 * PAGE);
    let child_name = n.clone();
    let pid = fork_child(move || {
        // The child writes through the inherited mapping, and through one it makes
        // from the name.
        unsafe { *(a as *mut u8) = 1 };
        let fd2 = shm_open_(&child_name, O_RDWR, 0).unwrap();
        let b = map_shared(fd2, 4 * PAGE);
        unsafe { *(b as *mut u8).add(3 * PAGE) = 2 };
        0
    });
    assert_eq!(wait_child(pid), Exit::Code(0));
    assert_eq!(unsafe { *(a as *const u8) }, 1);
    assert_eq!(unsafe { *(a as *const u8).add(3 * PAGE) }, 2);
    munmap(a, 4 * PAGE);
    shm_unlink_(&n).unwrap();
    close(fd).unwrap();
}

fn the_pages_outlive_name_and_descriptor_while_mapped() {
    let n = name("outlive");
    let fd = shm_open_(&n, O_CREAT | O_EXCL | O_RDWR, 0o600).unwrap();
    ftruncate(fd, 8 * PAGE);
    let a = map_shared(fd, 8 * PAGE);
    for i in 0..8 {
        unsafe { *(a as *mut u8).add(i * PAGE) = i as u8 + 10 };
    }
    shm_unlink_(&n).unwrap();
    close(fd).unwrap();
    let pid = fork_child(move || {
        let ok = (0..8).all(|i| unsafe { *(a as *const u8).add(i * PAGE) } == i as u8 + 10);
        unsafe { *(a as *mut u8) = 99 };
        if ok {
            0
        } else {
            1
        }
    });
    assert_eq!(wait_child(pid), Exit::Code(0));
    assert_eq!(unsafe { *(a as *const u8) }, 99);
    munmap(a, 8 * PAGE);
}

/// 32 MiB: far above what other programs' shared memory changes by meanwhile.
const BIG: usize = 32 << 20;
const BIG_KB: u64 = (BIG / 1024) as u64;
/// Slack for the rest of the system's Shmem while a test runs.
const SLACK_KB: u64 = 4096;

/// A file of BIG bytes named `n`, every page written through a shared mapping: (fd,
/// mapping, Shmem before it was made).
fn filled(n: &CString) -> (i32, usize, u64) {
    let before = meminfo_kb("Shmem");
    let fd = shm_open_(n, O_CREAT | O_EXCL | O_RDWR, 0o600).unwrap();
    ftruncate(fd, BIG);
    let a = map_shared(fd, BIG);
    for off in (0..BIG).step_by(PAGE) {
        unsafe { *(a as *mut u8).add(off) = 1 };
    }
    assert!(meminfo_kb("Shmem") + SLACK_KB >= before + BIG_KB, "the file's pages are counted in Shmem");
    (fd, a, before)
}

fn assert_held(before: u64) {
    assert!(meminfo_kb("Shmem") + SLACK_KB >= before + BIG_KB, "pages freed while something still holds them");
}

fn assert_freed(before: u64) {
    assert!(meminfo_kb("Shmem") < before + SLACK_KB, "pages still held after the last holder went");
}

fn the_name_kept_last_frees_the_pages_when_unlinked() {
    let n = name("last-name");
    let (fd, a, before) = filled(&n);
    munmap(a, BIG);
    close(fd).unwrap();
    assert_held(before);
    shm_unlink_(&n).unwrap();
    assert_freed(before);
}

fn the_descriptor_kept_last_frees_the_pages_when_closed() {
    let n = name("last-fd");
    let (fd, a, before) = filled(&n);
    munmap(a, BIG);
    shm_unlink_(&n).unwrap();
    assert_held(before);
    close(fd).unwrap();
    assert_freed(before);
}

fn the_mapping_kept_last_frees_the_pages_when_unmapped() {
    let n = name("last-map");
    let (fd, a, before) = filled(&n);
    shm_unlink_(&n).unwrap();
    close(fd).unwrap();
    assert_held(before);
    munmap(a, BIG);
    assert_freed(before);
}

fn a_tmpfs_file_is_sealed_against_seals() {
    const F_ADD_SEALS: i32 = 1033;
    const F_GET_SEALS: i32 = 1034;
    let n = name("seals");
    let fd = shm_open_(&n, O_CREAT | O_EXCL | O_RDWR, 0o600).unwrap();
    assert_eq!(sys!(SYS_fcntl, fd, F_GET_SEALS).unwrap(), 1);
    assert_errno!(sys!(SYS_fcntl, fd, F_ADD_SEALS, 4), EPERM);
    shm_unlink_(&n).unwrap();
    close(fd).unwrap();
}

/// Four threads, each round: open one of two names (creating it), size it, map it, add
/// one to a counter through the mapping (under the file's flock), unmap, close, and
/// sometimes unlink the name. Every call succeeds but an unlink racing another (ENOENT);
/// the kernel's leak check at the end finds every file freed.
fn threads_opening_mapping_and_unlinking_the_same_names_see_one_file_per_name() {
    let names = [name("race-a"), name("race-b")];
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let names = names.clone();
            std::thread::spawn(move || {
                for round in 0..300u64 {
                    let n = &names[((round + t) % 2) as usize];
                    let fd = shm_open_(n, O_CREAT | O_RDWR, 0o600)
                        .unwrap_or_else(|e| panic!("thread {t} round {round}: shm_open: {e:?}"));
                    ftruncate(fd, PAGE);
                    let a = map_shared(fd, PAGE);
                    sys!(SYS_flock, fd, LOCK_EX).unwrap_or_else(|e| panic!("thread {t} round {round}: flock: {e:?}"));
                    let counter = a as *mut u64;
                    let before = unsafe { std::ptr::read_volatile(counter) };
                    unsafe { std::ptr::write_volatile(counter, before + 1) };
                    sys!(SYS_flock, fd, LOCK_UN).unwrap();
                    munmap(a, PAGE);
                    close(fd).unwrap();
                    if (round * 7 + t) % 11 == 0 {
                        match shm_unlink_(n) {
                            Ok(()) | Err(Errno(ENOENT)) => {}
                            Err(e) => panic!("shm_unlink: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        if let Err(p) = w.join() {
            std::panic::resume_unwind(p);
        }
    }
    for n in &names {
        match shm_unlink_(n) {
            Ok(()) | Err(Errno(ENOENT)) => {}
            Err(e) => panic!("shm_unlink: {e}"),
        }
    }
}

/// Four processes, a thousand rounds each, on three names: open (creating), size, map twice,
/// write through one mapping and read through the other (one file behind both, whatever
/// the others unlink meanwhile), unmap, close, and now and then unlink.
fn processes_opening_mapping_and_unlinking_the_same_names_for_thousands_of_rounds() {
    const PROCS: u64 = 4;
    const ROUNDS: u64 = 1000;
    let names = [name("procs-a"), name("procs-b"), name("procs-c")];
    let children: Vec<i32> = (0..PROCS)
        .map(|p| {
            let names = names.clone();
            fork_child(move || {
                for round in 0..ROUNDS {
                    let n = &names[((round + p) % 3) as usize];
                    let Ok(fd) = shm_open_(n, O_CREAT | O_RDWR, 0o600) else { return 1 };
                    if sys!(SYS_ftruncate, fd, 2 * PAGE).is_err() {
                        return 2;
                    }
                    let (Ok(a), Ok(b)) = (
                        mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
                        mmap(0, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0),
                    ) else {
                        return 3;
                    };
                    let off = PAGE + p as usize * 8;
                    let v = round << 8 | p;
                    unsafe { std::ptr::write_volatile((a + off) as *mut u64, v) };
                    if unsafe { std::ptr::read_volatile((b + off) as *const u64) } != v {
                        return 4;
                    }
                    munmap(a, 2 * PAGE);
                    munmap(b, 2 * PAGE);
                    if close(fd).is_err() {
                        return 5;
                    }
                    if (round * 7 + p) % 11 == 0 {
                        match shm_unlink_(n) {
                            Ok(()) | Err(Errno(ENOENT)) => {}
                            Err(_) => return 6,
                        }
                    }
                }
                0
            })
        })
        .collect();
    for c in children {
        assert_eq!(wait_child(c), Exit::Code(0));
    }
    for n in &names {
        if let Ok(st) = stat_path(&dev_shm_path(n)) {
            assert_eq!(st.st_size, 2 * PAGE as i64, "{n:?}");
        }
        match shm_unlink_(n) {
            Ok(()) | Err(Errno(ENOENT)) => {}
            Err(e) => panic!("shm_unlink: {e}"),
        }
    }
}
