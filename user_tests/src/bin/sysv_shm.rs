//! System V shared memory (Linux's ipc/shm.c): shmget's keys and sizes, shmat's flags and
//! addresses, shm_nattch through fork, munmap, mremap and exit, shmdt of an attach and its
//! fragments, IPC_RMID while attached, shmctl's figures, permissions and SHM_LOCK.
//!
//! Keys are made from the test process's pid, so that a run on a host never meets
//! another program's segments; every test removes what it made.

use libc::*;
use user_tests::{
    assert_errno, child_exit, fork_child, load_byte, run_in_child, run_tests, store_byte, sys, tests, wait_child,
    Errno, Exit, BAD_PTR,
};

const PAGE: usize = 4096;

fn main() {
    run_tests(
        "sysv_shm",
        tests![
            shmget_private_makes_a_new_segment_each_time,
            a_futex_in_a_segment_wakes_a_waiter_attached_at_another_address,
            a_new_segment_reports_its_size_mode_creator_and_no_attach,
            shmget_of_an_existing_key_returns_its_id,
            shmget_creat_excl_of_an_existing_key_is_eexist,
            shmget_without_creat_of_a_missing_key_is_enoent,
            shmget_larger_than_an_existing_segment_is_einval,
            shmget_of_size_zero_or_past_shmmax_is_einval,
            an_attach_shares_pages_with_a_forked_child,
            nattch_counts_vmas_through_split_fork_and_exit,
            shmdt_detaches_the_fragments_of_a_split_attach,
            shmdt_leaves_a_fragment_moved_away_by_mremap,
            shmdt_of_an_address_that_starts_no_attach_is_einval,
            rmid_while_attached_keeps_the_segment_keyless_until_the_last_detach,
            the_key_of_a_removed_segment_can_be_created_again_at_once,
            rmid_of_a_destroyed_segment_is_einval,
            attach_after_rmid_works_while_attached,
            a_read_only_attach_faults_on_write_and_refuses_mprotect_write,
            mprotect_exec_of_an_attach_without_shm_exec_succeeds,
            an_unaligned_address_is_einval_without_shm_rnd,
            shm_rnd_rounds_the_address_down,
            an_attach_over_a_mapping_is_einval_without_shm_remap,
            shm_remap_replaces_the_mapping_under_it,
            shm_remap_without_an_address_is_einval,
            bad_ids_are_einval,
            a_bad_buffer_is_efault,
            ipc_info_reports_the_limits,
            shm_info_counts_segments_and_resident_pages,
            shm_stat_takes_an_index_and_returns_the_id,
            another_user_needs_the_mode_bits_to_attach_or_stat,
            only_the_owner_creator_or_admin_may_set_or_remove,
            ipc_set_changes_owner_and_permission_bits_only,
            shm_lock_is_charged_to_rlimit_memlock,
            shm_hugetlb_without_reserved_huge_pages_is_enomem,
            shm_hugetlb_noreserve_attaches_whole_huge_pages_whose_faults_are_sigbus,
            shm_hugetlb_attach_at_an_address_not_huge_page_aligned_is_einval,
            shm_hugetlb_with_a_page_size_without_a_pool_is_einval,
            shm_hugetlb_for_a_user_without_cap_ipc_lock_or_memlock_room_is_eperm,
            shmat_and_shmdt_record_times_and_pids,
            proc_sysvipc_shm_shows_each_segment_in_linux_columns,
            each_page_of_an_attach_is_its_own_read_fault,
            processes_attaching_detaching_and_removing_shared_keys_leave_exact_counts,
        ],
    )
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct IpcPerm {
    key: i32,
    uid: u32,
    gid: u32,
    cuid: u32,
    cgid: u32,
    mode: u32,
    seq: u16,
    pad2: u16,
    unused1: u64,
    unused2: u64,
}

/// `struct shmid64_ds` of x86-64.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct ShmidDs {
    perm: IpcPerm,
    segsz: u64,
    atime: i64,
    dtime: i64,
    ctime: i64,
    cpid: i32,
    lpid: i32,
    nattch: u64,
    unused4: u64,
    unused5: u64,
}

const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;
const SHM_DEST: u32 = 0o1000;
const SHM_LOCKED: u32 = 0o2000;

/// A key of this process: `n` tells the tests' keys apart.
fn key(n: i32) -> i32 {
    0x4d00_0000 | ((unsafe { getpid() } & 0xffff) << 8) | n
}

fn shmget(key: i32, size: usize, flg: i32) -> Result<i32, Errno> {
    sys!(SYS_shmget, key, size, flg).map(|v| v as i32)
}

fn shmat(id: i32, addr: usize, flg: i32) -> Result<usize, Errno> {
    sys!(SYS_shmat, id, addr, flg).map(|v| v as usize)
}

fn shmdt(addr: usize) -> Result<i64, Errno> {
    sys!(SYS_shmdt, addr)
}

fn shmctl(id: i32, cmd: i32, buf: usize) -> Result<i64, Errno> {
    sys!(SYS_shmctl, id, cmd, buf)
}

fn stat(id: i32) -> ShmidDs {
    let mut ds = ShmidDs::default();
    shmctl(id, IPC_STAT, &mut ds as *mut ShmidDs as usize).unwrap();
    ds
}

fn nattch(id: i32) -> u64 {
    stat(id).nattch
}

fn rmid(id: i32) {
    shmctl(id, IPC_RMID, 0).unwrap();
}

/// A new private segment of `pages` pages, mode 0600.
fn private(pages: usize) -> i32 {
    shmget(IPC_PRIVATE, pages * PAGE, 0o600).unwrap()
}

fn mapped(addr: usize) -> bool {
    let mut v = 0u8;
    sys!(SYS_mincore, addr & !(PAGE - 1), PAGE, &mut v as *mut u8).is_ok()
}

/// Each attach opens its own file over the segment; a shared futex is keyed by the
/// segment's pages, so two processes' own attaches meet.
fn a_futex_in_a_segment_wakes_a_waiter_attached_at_another_address() {
    let id = shmget(IPC_PRIVATE, 4096, 0o600).unwrap();
    let a = shmat(id, 0, 0).unwrap();
    // The child's own attach (beside the one fork gave it) is another file and address.
    user_tests::shared_futex_meets(a + 64, || shmat(id, 0, 0).unwrap() + 64);
    shmdt(a).unwrap();
    rmid(id);
}

fn shmget_private_makes_a_new_segment_each_time() {
    let a = private(1);
    let b = private(1);
    assert_ne!(a, b);
    rmid(a);
    rmid(b);
}

fn a_new_segment_reports_its_size_mode_creator_and_no_attach() {
    let id = shmget(key(1), 3 * PAGE + 5, IPC_CREAT | 0o640).unwrap();
    let ds = stat(id);
    assert_eq!(ds.segsz, (3 * PAGE + 5) as u64, "the size asked for, not rounded");
    assert_eq!(ds.perm.mode, 0o640);
    assert_eq!(ds.perm.key, key(1));
    assert_eq!(ds.perm.uid, unsafe { geteuid() });
    assert_eq!(ds.perm.cuid, unsafe { geteuid() });
    assert_eq!(ds.perm.cgid, unsafe { getegid() });
    assert_eq!(ds.cpid, unsafe { getpid() });
    assert_eq!((ds.lpid, ds.nattch, ds.atime, ds.dtime), (0, 0, 0, 0));
    assert!(ds.ctime > 0);
    rmid(id);
}

fn shmget_of_an_existing_key_returns_its_id() {
    let id = shmget(key(2), PAGE, IPC_CREAT | 0o600).unwrap();
    assert_eq!(shmget(key(2), PAGE, 0), Ok(id));
    assert_eq!(shmget(key(2), 0, 0), Ok(id), "size 0 finds an existing segment");
    assert_eq!(shmget(key(2), 10, IPC_CREAT), Ok(id), "IPC_CREAT alone finds it too");
    rmid(id);
}

fn shmget_creat_excl_of_an_existing_key_is_eexist() {
    let id = shmget(key(3), PAGE, IPC_CREAT | 0o600).unwrap();
    assert_errno!(shmget(key(3), PAGE, IPC_CREAT | IPC_EXCL | 0o600), EEXIST);
    rmid(id);
}

fn shmget_without_creat_of_a_missing_key_is_enoent() {
    assert_errno!(shmget(key(4), PAGE, 0o600), ENOENT);
}

fn shmget_larger_than_an_existing_segment_is_einval() {
    let id = shmget(key(5), 2 * PAGE, IPC_CREAT | 0o600).unwrap();
    assert_errno!(shmget(key(5), 2 * PAGE + 1, 0), EINVAL);
    assert_eq!(shmget(key(5), PAGE, 0), Ok(id), "a smaller size finds it");
    rmid(id);
}

fn shmget_of_size_zero_or_past_shmmax_is_einval() {
    assert_errno!(shmget(IPC_PRIVATE, 0, 0o600), EINVAL);
    assert_errno!(shmget(IPC_PRIVATE, usize::MAX, 0o600), EINVAL);
}

fn an_attach_shares_pages_with_a_forked_child() {
    let id = private(2);
    let a = shmat(id, 0, 0).unwrap();
    store_byte(a + PAGE, 7);
    let child = fork_child(|| {
        if load_byte(a + PAGE) != 7 {
            return 1;
        }
        store_byte(a, 9);
        0
    });
    assert_eq!(wait_child(child), Exit::Code(0));
    assert_eq!(load_byte(a), 9, "the child's write is seen by the parent");
    shmdt(a).unwrap();
    // A second attach of the same segment sees the same pages.
    let b = shmat(id, 0, 0).unwrap();
    assert_eq!(load_byte(b + PAGE), 7);
    shmdt(b).unwrap();
    rmid(id);
}

fn nattch_counts_vmas_through_split_fork_and_exit() {
    let id = private(4);
    let a = shmat(id, 0, 0).unwrap();
    assert_eq!(nattch(id), 1);
    // Splitting the attach in two VMAs counts two (Linux counts VMAs).
    unsafe { munmap((a + PAGE) as *mut c_void, PAGE) };
    assert_eq!(nattch(id), 2);
    let (tx, rx) = pipe_pair();
    let child = fork_child(move || {
        let mut b = [0u8; 1];
        unsafe { read(rx, b.as_mut_ptr() as *mut c_void, 1) };
        0
    });
    assert_eq!(nattch(id), 4, "the child's copies of both VMAs");
    unsafe { write(tx, b"x".as_ptr() as *const c_void, 1) };
    assert_eq!(wait_child(child), Exit::Code(0));
    assert_eq!(nattch(id), 2, "the child's exit detached its VMAs");
    shmdt(a).unwrap();
    assert_eq!(nattch(id), 0);
    rmid(id);
    unsafe {
        close(tx);
        close(rx);
    }
}

fn pipe_pair() -> (i32, i32) {
    let (r, w) = user_tests::pipe(0).unwrap();
    (w, r)
}

fn shmdt_detaches_the_fragments_of_a_split_attach() {
    let id = private(5);
    let a = shmat(id, 0, 0).unwrap();
    unsafe {
        munmap((a + PAGE) as *mut c_void, PAGE);
        mprotect((a + 3 * PAGE) as *mut c_void, PAGE, PROT_READ);
    }
    assert_eq!(nattch(id), 4);
    shmdt(a).unwrap();
    assert_eq!(nattch(id), 0, "every fragment went");
    for p in 0..5 {
        assert!(!mapped(a + p * PAGE), "page {p} still mapped");
    }
    rmid(id);
}

fn shmdt_leaves_a_fragment_moved_away_by_mremap() {
    let id = private(3);
    let a = shmat(id, 0, 0).unwrap();
    store_byte(a + 2 * PAGE, 5);
    let far = user_tests::mmap_anon(4 * PAGE);
    let dest = far + PAGE;
    let moved = unsafe {
        mremap((a + 2 * PAGE) as *mut c_void, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dest as *mut c_void)
    };
    assert_eq!(moved as usize, dest);
    assert_eq!(nattch(id), 2);
    shmdt(a).unwrap();
    assert_eq!(nattch(id), 1, "the moved page stays attached");
    assert_eq!(load_byte(dest), 5);
    assert_errno!(shmdt(a), EINVAL);
    unsafe { munmap(far as *mut c_void, 4 * PAGE) };
    assert_eq!(nattch(id), 0);
    rmid(id);
}

fn shmdt_of_an_address_that_starts_no_attach_is_einval() {
    let id = private(2);
    let a = shmat(id, 0, 0).unwrap();
    assert_errno!(shmdt(a + PAGE), EINVAL);
    assert_errno!(shmdt(a + 1), EINVAL);
    assert_eq!(nattch(id), 1);
    shmdt(a).unwrap();
    rmid(id);
}

fn rmid_while_attached_keeps_the_segment_keyless_until_the_last_detach() {
    let id = shmget(key(6), PAGE, IPC_CREAT | 0o600).unwrap();
    let a = shmat(id, 0, 0).unwrap();
    store_byte(a, 3);
    rmid(id);
    let ds = stat(id);
    assert_eq!(ds.perm.key, IPC_PRIVATE, "a removed segment loses its key");
    assert_eq!(ds.perm.mode & SHM_DEST, SHM_DEST);
    assert_eq!(ds.nattch, 1);
    assert_errno!(shmget(key(6), PAGE, 0o600), ENOENT);
    assert_eq!(load_byte(a), 3, "still mapped and intact");
    shmdt(a).unwrap();
    let mut ds = ShmidDs::default();
    assert_errno!(shmctl(id, IPC_STAT, &mut ds as *mut ShmidDs as usize), EINVAL);
}

fn the_key_of_a_removed_segment_can_be_created_again_at_once() {
    let old = shmget(key(7), PAGE, IPC_CREAT | 0o600).unwrap();
    let a = shmat(old, 0, 0).unwrap();
    rmid(old);
    let new = shmget(key(7), PAGE, IPC_CREAT | IPC_EXCL | 0o600).unwrap();
    assert_ne!(new, old);
    let b = shmat(new, 0, 0).unwrap();
    store_byte(a, 1);
    assert_eq!(load_byte(b), 0, "a new segment, not the removed one");
    shmdt(a).unwrap();
    shmdt(b).unwrap();
    rmid(new);
}

fn rmid_of_a_destroyed_segment_is_einval() {
    let id = private(1);
    rmid(id);
    assert_errno!(shmctl(id, IPC_RMID, 0), EINVAL);
}

fn attach_after_rmid_works_while_attached() {
    let id = private(1);
    let a = shmat(id, 0, 0).unwrap();
    rmid(id);
    shmctl(id, IPC_RMID, 0).unwrap();
    let b = shmat(id, 0, 0).unwrap();
    store_byte(a, 4);
    assert_eq!(load_byte(b), 4);
    assert_eq!(nattch(id), 2);
    shmdt(a).unwrap();
    shmdt(b).unwrap();
    assert_errno!(shmat(id, 0, 0), EINVAL);
}

fn a_read_only_attach_faults_on_write_and_refuses_mprotect_write() {
    let id = private(1);
    let a = shmat(id, 0, SHM_RDONLY).unwrap();
    assert_eq!(load_byte(a), 0);
    assert_eq!(
        child_exit(|| {
            store_byte(a, 1);
            0
        }),
        Exit::Signal(SIGSEGV)
    );
    assert_eq!(unsafe { mprotect(a as *mut c_void, PAGE, PROT_READ | PROT_WRITE) }, -1);
    assert_eq!(user_tests::errno(), Errno(EACCES));
    shmdt(a).unwrap();
    rmid(id);
}

fn mprotect_exec_of_an_attach_without_shm_exec_succeeds() {
    let id = private(1);
    let a = shmat(id, 0, 0).unwrap();
    assert_eq!(unsafe { mprotect(a as *mut c_void, PAGE, PROT_READ | PROT_EXEC) }, 0);
    shmdt(a).unwrap();
    let b = shmat(id, 0, SHM_EXEC).unwrap();
    shmdt(b).unwrap();
    rmid(id);
}

/// A free page-aligned range of `pages` pages.
fn free_range(pages: usize) -> usize {
    let a = user_tests::mmap_anon(pages * PAGE);
    unsafe { munmap(a as *mut c_void, pages * PAGE) };
    a
}

fn an_unaligned_address_is_einval_without_shm_rnd() {
    let id = private(1);
    let at = free_range(2);
    assert_errno!(shmat(id, at + 100, 0), EINVAL);
    rmid(id);
}

fn shm_rnd_rounds_the_address_down() {
    let id = private(1);
    let at = free_range(2);
    assert_eq!(shmat(id, at + 100, SHM_RND), Ok(at));
    shmdt(at).unwrap();
    rmid(id);
}

fn an_attach_over_a_mapping_is_einval_without_shm_remap() {
    let id = private(2);
    let m = user_tests::mmap_anon(4 * PAGE);
    assert_errno!(shmat(id, m + PAGE, 0), EINVAL);
    store_byte(m + PAGE, 1);
    assert_eq!(load_byte(m + PAGE), 1, "the mapping under it is untouched");
    unsafe { munmap(m as *mut c_void, 4 * PAGE) };
    rmid(id);
}

fn shm_remap_replaces_the_mapping_under_it() {
    let id = private(2);
    let m = user_tests::mmap_anon(4 * PAGE);
    store_byte(m + PAGE, 1);
    assert_eq!(shmat(id, m + PAGE, SHM_REMAP), Ok(m + PAGE));
    assert_eq!(load_byte(m + PAGE), 0, "the segment's page, not the old one");
    assert_eq!(nattch(id), 1);
    shmdt(m + PAGE).unwrap();
    unsafe { munmap(m as *mut c_void, 4 * PAGE) };
    rmid(id);
}

fn shm_remap_without_an_address_is_einval() {
    let id = private(1);
    assert_errno!(shmat(id, 0, SHM_REMAP), EINVAL);
    rmid(id);
}

fn bad_ids_are_einval() {
    assert_errno!(shmat(-1, 0, 0), EINVAL);
    assert_errno!(shmctl(-1, IPC_STAT, 0), EINVAL);
    let id = private(1);
    rmid(id);
    assert_errno!(shmat(id, 0, 0), EINVAL);
    let mut ds = ShmidDs::default();
    assert_errno!(shmctl(id, IPC_STAT, &mut ds as *mut ShmidDs as usize), EINVAL);
    assert_errno!(shmctl(id, IPC_SET, &mut ds as *mut ShmidDs as usize), EINVAL);
    let live = private(1);
    assert_errno!(shmctl(live, 0x7777, 0), EINVAL);
    // x86-64 has only the 64-bit structures: IPC_64 in a command is an unknown command.
    assert_errno!(shmctl(live, IPC_STAT | 0x100, 0), EINVAL);
    rmid(live);
}

fn a_bad_buffer_is_efault() {
    let id = private(1);
    assert_errno!(shmctl(id, IPC_STAT, BAD_PTR), EFAULT);
    assert_errno!(shmctl(id, IPC_SET, BAD_PTR), EFAULT);
    assert_errno!(shmctl(0, IPC_INFO, BAD_PTR), EFAULT);
    rmid(id);
}

/// `struct shminfo64`.
#[repr(C)]
#[derive(Default, Debug)]
struct ShmInfo64 {
    shmmax: u64,
    shmmin: u64,
    shmmni: u64,
    shmseg: u64,
    shmall: u64,
    unused: [u64; 4],
}

/// `struct shm_info`.
#[repr(C)]
#[derive(Default, Debug)]
struct ShmInfo {
    used_ids: i32,
    pad: i32,
    shm_tot: u64,
    shm_rss: u64,
    shm_swp: u64,
    swap_attempts: u64,
    swap_successes: u64,
}

fn proc_sys(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}")).unwrap().trim().parse().unwrap()
}

fn ipc_info_reports_the_limits() {
    let mut info = ShmInfo64::default();
    shmctl(0, IPC_INFO, &mut info as *mut ShmInfo64 as usize).unwrap();
    assert_eq!(info.shmmax, proc_sys("shmmax"));
    assert_eq!(info.shmall, proc_sys("shmall"));
    assert_eq!(info.shmmni, proc_sys("shmmni"));
    assert_eq!(info.shmmin, 1);
    assert_eq!(info.shmseg, 4096);
}

fn shm_info_counts_segments_and_resident_pages() {
    let mut before = ShmInfo::default();
    shmctl(0, SHM_INFO, &mut before as *mut ShmInfo as usize).unwrap();
    let id = private(3);
    let a = shmat(id, 0, 0).unwrap();
    store_byte(a, 1);
    store_byte(a + 2 * PAGE, 1);
    let mut after = ShmInfo::default();
    let max = shmctl(0, SHM_INFO, &mut after as *mut ShmInfo as usize).unwrap();
    assert_eq!(after.used_ids, before.used_ids + 1);
    assert_eq!(after.shm_tot, before.shm_tot + 3, "pages of every segment");
    assert_eq!(after.shm_rss, before.shm_rss + 2, "pages in memory");
    assert!(max >= (id % 32768) as i64, "the highest index in use");
    shmdt(a).unwrap();
    rmid(id);
}

fn shm_stat_takes_an_index_and_returns_the_id() {
    let id = private(1);
    let mut ds = ShmidDs::default();
    let r = shmctl(id % 32768, SHM_STAT, &mut ds as *mut ShmidDs as usize).unwrap();
    assert_eq!(r, id as i64);
    assert_eq!(ds.segsz, PAGE as u64);
    let r = shmctl(id % 32768, SHM_STAT_ANY, &mut ds as *mut ShmidDs as usize).unwrap();
    assert_eq!(r, id as i64);
    rmid(id);
}

/// Runs `f` in a child with uid and gid 1000 and no capabilities.
fn as_other_user(f: impl FnOnce()) {
    run_in_child(|| {
        unsafe {
            assert_eq!(setgroups(0, std::ptr::null()), 0);
            assert_eq!(setresgid(1000, 1000, 1000), 0);
            assert_eq!(setresuid(1000, 1000, 1000), 0);
        }
        f()
    });
}

fn another_user_needs_the_mode_bits_to_attach_or_stat() {
    let closed = private(1);
    let readable = shmget(IPC_PRIVATE, PAGE, 0o604).unwrap();
    as_other_user(|| {
        assert_errno!(shmat(closed, 0, 0), EACCES);
        assert_errno!(shmat(closed, 0, SHM_RDONLY), EACCES);
        let mut ds = ShmidDs::default();
        assert_errno!(shmctl(closed, IPC_STAT, &mut ds as *mut ShmidDs as usize), EACCES);
        assert_eq!(shmctl(closed % 32768, SHM_STAT_ANY, &mut ds as *mut ShmidDs as usize), Ok(closed as i64));
        assert_errno!(shmat(readable, 0, 0), EACCES);
        let a = shmat(readable, 0, SHM_RDONLY).unwrap();
        shmdt(a).unwrap();
        shmctl(readable, IPC_STAT, &mut ds as *mut ShmidDs as usize).unwrap();
    });
    rmid(closed);
    rmid(readable);
}

fn only_the_owner_creator_or_admin_may_set_or_remove() {
    let id = shmget(IPC_PRIVATE, PAGE, 0o666).unwrap();
    as_other_user(|| {
        let mut ds = ShmidDs::default();
        shmctl(id, IPC_STAT, &mut ds as *mut ShmidDs as usize).unwrap();
        assert_errno!(shmctl(id, IPC_SET, &mut ds as *mut ShmidDs as usize), EPERM);
        assert_errno!(shmctl(id, IPC_RMID, 0), EPERM);
    });
    // Made owned by 1000: now that user may remove it.
    let mut ds = stat(id);
    ds.perm.uid = 1000;
    shmctl(id, IPC_SET, &mut ds as *mut ShmidDs as usize).unwrap();
    as_other_user(|| shmctl(id, IPC_RMID, 0).map(|_| ()).unwrap());
    let mut ds = ShmidDs::default();
    assert_errno!(shmctl(id, IPC_STAT, &mut ds as *mut ShmidDs as usize), EINVAL);
}

fn ipc_set_changes_owner_and_permission_bits_only() {
    let id = private(1);
    let a = shmat(id, 0, 0).unwrap();
    rmid(id);
    let mut ds = stat(id);
    ds.perm.uid = 1234;
    ds.perm.gid = 4321;
    ds.perm.mode = 0o7640;
    ds.perm.cuid = 99;
    ds.segsz = 1;
    shmctl(id, IPC_SET, &mut ds as *mut ShmidDs as usize).unwrap();
    let now = stat(id);
    assert_eq!((now.perm.uid, now.perm.gid), (1234, 4321));
    assert_eq!(now.perm.mode, SHM_DEST | 0o640, "only the 9 permission bits change");
    assert_eq!(now.perm.cuid, unsafe { geteuid() });
    assert_eq!(now.segsz, PAGE as u64);
    shmdt(a).unwrap();
}

fn shm_lock_is_charged_to_rlimit_memlock() {
    let big = private(3);
    let small = private(2);
    for id in [big, small] {
        let mut ds = stat(id);
        ds.perm.uid = 1000;
        shmctl(id, IPC_SET, &mut ds as *mut ShmidDs as usize).unwrap();
    }
    as_other_user(|| {
        let limit = rlimit { rlim_cur: 2 * PAGE as u64, rlim_max: 2 * PAGE as u64 };
        assert_eq!(unsafe { setrlimit(RLIMIT_MEMLOCK, &limit) }, 0);
        assert_errno!(shmctl(big, SHM_LOCK, 0), ENOMEM);
        shmctl(small, SHM_LOCK, 0).unwrap();
        assert_eq!(stat(small).perm.mode & SHM_LOCKED, SHM_LOCKED);
        shmctl(small, SHM_LOCK, 0).unwrap();
        shmctl(small, SHM_UNLOCK, 0).unwrap();
        assert_eq!(stat(small).perm.mode & SHM_LOCKED, 0);
        let zero = rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(unsafe { setrlimit(RLIMIT_MEMLOCK, &zero) }, 0);
        assert_errno!(shmctl(small, SHM_LOCK, 0), EPERM);
    });
    // Root (CAP_IPC_LOCK) locks past any limit, and a segment it does not own.
    shmctl(big, SHM_LOCK, 0).unwrap();
    shmctl(big, SHM_UNLOCK, 0).unwrap();
    rmid(big);
    rmid(small);
}

const SHM_HUGETLB: i32 = 0o4000;
const SHM_NORESERVE: i32 = 0o10000;
const SHM_HUGE_SHIFT: i32 = 26;
const HUGE: usize = 2 << 20;

/// The test VMs (and the host, as a rule) reserve no huge pages (vm.nr_hugepages 0).
fn no_huge_pages_reserved() -> bool {
    std::fs::read_to_string("/proc/sys/vm/nr_hugepages").map_or(true, |s| s.trim() == "0")
}

fn shm_hugetlb_without_reserved_huge_pages_is_enomem() {
    if !no_huge_pages_reserved() {
        return;
    }
    assert_errno!(shmget(IPC_PRIVATE, HUGE, 0o600 | SHM_HUGETLB), ENOMEM);
}

/// SHM_NORESERVE reserves nothing: the segment is made, an attach covers whole huge
/// pages at a huge-page-aligned address, cannot be split, and each fault is SIGBUS.
fn shm_hugetlb_noreserve_attaches_whole_huge_pages_whose_faults_are_sigbus() {
    if !no_huge_pages_reserved() {
        return;
    }
    let id = shmget(IPC_PRIVATE, HUGE + PAGE, 0o600 | SHM_HUGETLB | SHM_NORESERVE).unwrap();
    assert_eq!(stat(id).segsz, (HUGE + PAGE) as u64);
    let a = shmat(id, 0, 0).unwrap();
    assert_eq!(a % HUGE, 0, "attach at {a:#x}");
    assert_eq!(nattch(id), 1);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps.lines().find(|l| l.starts_with(&format!("{a:x}-"))).expect("the attach in maps");
    assert!(line.starts_with(&format!("{a:x}-{:x} rw-s ", a + 2 * HUGE)), "{line}");
    assert!(line.ends_with("/SYSV00000000 (deleted)"), "{line}");
    assert_errno!(sys!(SYS_munmap, a + PAGE, PAGE), EINVAL);
    assert_eq!(child_exit(|| load_byte(a) as i32), Exit::Signal(SIGBUS));
    assert_eq!(
        child_exit(|| {
            store_byte(a + HUGE, 1);
            0
        }),
        Exit::Signal(SIGBUS)
    );
    shmdt(a).unwrap();
    assert_eq!(nattch(id), 0);
    rmid(id);
}

fn shm_hugetlb_attach_at_an_address_not_huge_page_aligned_is_einval() {
    if !no_huge_pages_reserved() {
        return;
    }
    let id = shmget(IPC_PRIVATE, HUGE, 0o600 | SHM_HUGETLB | SHM_NORESERVE).unwrap();
    let a = shmat(id, 0, 0).unwrap();
    shmdt(a).unwrap();
    assert_errno!(shmat(id, a + PAGE, 0), EINVAL);
    assert_eq!(nattch(id), 0);
    rmid(id);
}

fn shm_hugetlb_with_a_page_size_without_a_pool_is_einval() {
    // 64 KiB pages do not exist on x86-64.
    assert_errno!(shmget(IPC_PRIVATE, HUGE, 0o600 | SHM_HUGETLB | SHM_NORESERVE | (16 << SHM_HUGE_SHIFT)), EINVAL);
}

fn shm_hugetlb_for_a_user_without_cap_ipc_lock_or_memlock_room_is_eperm() {
    as_other_user(|| {
        let zero = rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(unsafe { setrlimit(RLIMIT_MEMLOCK, &zero) }, 0);
        assert_errno!(shmget(IPC_PRIVATE, HUGE, 0o600 | SHM_HUGETLB | SHM_NORESERVE), EPERM);
    });
}

fn shmat_and_shmdt_record_times_and_pids() {
    let id = private(1);
    let child = fork_child(move || {
        let a = shmat(id, 0, 0).unwrap();
        shmdt(a).unwrap();
        0
    });
    let pid = child;
    assert_eq!(wait_child(child), Exit::Code(0));
    let ds = stat(id);
    assert_eq!(ds.lpid, pid, "the last attach or detach was the child's");
    assert!(ds.atime > 0 && ds.dtime >= ds.atime);
    rmid(id);
}

fn proc_sysvipc_shm_shows_each_segment_in_linux_columns() {
    let id = shmget(key(8), 2 * PAGE + 1, IPC_CREAT | 0o640).unwrap();
    let a = shmat(id, 0, 0).unwrap();
    store_byte(a, 1);
    let text = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      \
         dtime      ctime                   rss                  swap"
    );
    let line = lines.find(|l| l.split_whitespace().nth(1) == Some(&id.to_string())).expect("the segment's line");
    let f: Vec<&str> = line.split_whitespace().collect();
    let pid = unsafe { getpid() }.to_string();
    assert_eq!(f[0], key(8).to_string());
    assert_eq!(&f[2..8], &["640", &(2 * PAGE + 1).to_string(), &pid, &pid, "1", &unsafe { geteuid() }.to_string()]);
    assert_eq!(f[14], PAGE.to_string(), "one page in memory");
    assert_eq!(f[15], "0");
    // The fixed-width columns of `sysvipc_shm_proc_show` ("%10d %10d  %4o %21lu ...").
    assert_eq!(&line[..10], format!("{:10}", key(8)));
    assert_eq!(&line[10..21], format!(" {:10}", id));
    shmdt(a).unwrap();
    rmid(id);
}

fn minor_faults() -> i64 {
    let mut ru: rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { getrusage(RUSAGE_SELF, &mut ru) }, 0);
    ru.ru_minflt
}

/// `shm_vm_ops` has no `map_pages`, so Linux maps no neighbouring pages on a read fault
/// (fault-around): reading 16 cached pages through a fresh attach takes 16 faults.
fn each_page_of_an_attach_is_its_own_read_fault() {
    let id = private(16);
    let a = shmat(id, 0, 0).unwrap();
    for p in 0..16 {
        store_byte(a + p * PAGE, 1);
    }
    let b = shmat(id, 0, SHM_RDONLY).unwrap();
    let before = minor_faults();
    let sum: u32 = (0..16).map(|p| load_byte(b + p * PAGE) as u32).sum();
    let faults = minor_faults() - before;
    assert_eq!(sum, 16);
    assert!(faults >= 16, "{faults} faults for 16 pages");
    shmdt(a).unwrap();
    shmdt(b).unwrap();
    rmid(id);
}

/// Four processes (one per CPU where there are four) each run a thousand rounds over three
/// shared keys: get (or create) the key's segment, attach, write and read back a word of its
/// own, detach, and every few rounds remove it, racing the others' attaches (an attach of a
/// segment removed meanwhile fails with EINVAL or EIDRM and the round starts over). At the
/// end every segment left has no attach, and /proc/sysvipc/shm lists exactly those.
fn processes_attaching_detaching_and_removing_shared_keys_leave_exact_counts() {
    const PROCS: usize = 4;
    const ROUNDS: usize = 1000;
    let keys: Vec<i32> = (0..3).map(|i| key(20 + i)).collect();
    let children: Vec<i32> = (0..PROCS)
        .map(|p| {
            let keys = keys.clone();
            fork_child(move || {
                let mut done = 0;
                let mut n = 0usize;
                while done < ROUNDS {
                    n += 1;
                    let k = keys[(n + p) % keys.len()];
                    let Ok(id) = shmget(k, 2 * PAGE, IPC_CREAT | 0o600) else { return 1 };
                    let a = match shmat(id, 0, 0) {
                        Ok(a) => a,
                        Err(e) if e == Errno(EINVAL) || e == Errno(EIDRM) => continue,
                        Err(_) => return 2,
                    };
                    let slot = a + PAGE + p * 8;
                    let v = (n as u64) << 8 | p as u64;
                    unsafe { std::ptr::write_volatile(slot as *mut u64, v) };
                    if unsafe { std::ptr::read_volatile(slot as *const u64) } != v {
                        return 3;
                    }
                    if shmdt(a).is_err() {
                        return 4;
                    }
                    if n % 7 == p {
                        // Removing may race another remover: EINVAL then.
                        match shmctl(id, IPC_RMID, 0) {
                            Ok(_) => {}
                            Err(e) if e == Errno(EINVAL) || e == Errno(EIDRM) => {}
                            Err(_) => return 5,
                        }
                    }
                    done += 1;
                }
                0
            })
        })
        .collect();
    for c in children {
        assert_eq!(wait_child(c), Exit::Code(0));
    }
    let text = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    let listed: Vec<(i32, i32, u64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[6].parse().unwrap())
        })
        .filter(|(k, _, _)| keys.contains(k))
        .collect();
    for &k in &keys {
        let Ok(id) = shmget(k, 0, 0) else { continue };
        assert_eq!(nattch(id), 0, "a segment of key {k:#x} is still counted attached");
        assert!(listed.contains(&(k, id, 0)), "/proc/sysvipc/shm lacks {k:#x} ({id}): {listed:?}");
        rmid(id);
    }
    assert!(listed.len() <= keys.len(), "more segments listed than keys: {listed:?}");
}
