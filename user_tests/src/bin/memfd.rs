//! memfd_create and file seals (Linux's mm/memfd.c and mm/shmem.c): the flags, the name
//! rules and /proc's link, and what each seal refuses (write, truncate, fallocate, mmap,
//! mprotect), with F_SEAL_WRITE waiting for no writable shared mapping, and seals seen
//! through every descriptor of the file.

use libc::*;
use user_tests::{
    assert_errno, close, fork_child, mmap, pipe, read, run_tests, sys, tests, wait_child, write, Errno, Exit, BAD_PTR,
    PAGE,
};

const MFD_CLOEXEC: u32 = 0x1;
const MFD_ALLOW_SEALING: u32 = 0x2;
const MFD_HUGETLB: u32 = 0x4;
const MFD_NOEXEC_SEAL: u32 = 0x8;
const MFD_EXEC: u32 = 0x10;
const MFD_HUGE_SHIFT: u32 = 26;

const F_ADD_SEALS: i32 = 1033;
const F_GET_SEALS: i32 = 1034;
const F_SEAL_SEAL: i64 = 0x1;
const F_SEAL_SHRINK: i64 = 0x2;
const F_SEAL_GROW: i64 = 0x4;
const F_SEAL_WRITE: i64 = 0x8;
const F_SEAL_FUTURE_WRITE: i64 = 0x10;
const F_SEAL_EXEC: i64 = 0x20;

const HUGE: usize = 2 << 20;

fn main() {
    run_tests(
        "memfd",
        tests![
            memfd_create_makes_an_empty_regular_file_with_no_link,
            proc_fd_link_reads_memfd_name_deleted,
            mfd_cloexec_sets_close_on_exec,
            unknown_flags_are_einval,
            a_name_of_249_bytes_is_accepted_and_250_is_einval,
            a_bad_name_pointer_is_efault,
            data_written_is_seen_through_a_shared_mapping_and_by_a_child,
            without_allow_sealing_the_seals_are_f_seal_seal,
            with_allow_sealing_no_seal_is_set,
            f_seal_seal_refuses_further_seals,
            unknown_seal_bits_are_einval,
            f_seal_shrink_refuses_a_smaller_size_only,
            f_seal_grow_refuses_a_larger_size,
            f_seal_grow_refuses_writes_past_the_end,
            f_seal_grow_refuses_fallocate_past_the_end,
            f_seal_write_refuses_write_pwrite_and_hole_punching,
            f_seal_write_refuses_a_shared_writable_mapping,
            f_seal_write_leaves_private_mappings_copy_on_write,
            f_seal_write_is_ebusy_while_a_writable_shared_mapping_exists,
            f_seal_write_is_ebusy_with_a_read_only_shared_mapping_of_a_writable_fd,
            f_seal_write_leaves_a_shared_read_only_mapping_unable_to_become_writable,
            f_seal_future_write_keeps_existing_writable_mappings,
            f_seal_future_write_refuses_write_and_new_writable_mappings,
            f_seal_future_write_leaves_a_shared_read_only_mapping_unable_to_become_writable,
            seals_are_seen_through_a_dup_taken_before_the_seal,
            seals_added_later_are_seen_by_a_forked_child,
            f_add_seals_on_a_read_only_descriptor_is_eperm,
            seals_of_a_file_that_is_not_shmem_are_einval,
            mfd_hugetlb_makes_a_file_whose_mapping_is_enomem,
            mfd_hugetlb_takes_only_whole_huge_page_sizes,
            mfd_hugetlb_with_a_page_size_without_a_pool_is_enodev,
            mfd_hugetlb_noreserve_mapping_covers_whole_huge_pages_whose_faults_are_sigbus,
            mfd_hugetlb_mapping_at_an_offset_or_fixed_address_not_huge_page_aligned_is_einval,
            mfd_hugetlb_writable_mapping_grows_the_file_to_its_end,
            mfd_hugetlb_f_seal_write_is_ebusy_while_a_writable_shared_mapping_exists,
            map_hugetlb_is_accepted_for_a_hugetlb_memfd_and_einval_for_a_tmpfs_one,
            mfd_noexec_seal_clears_the_exec_bits_and_seals_them,
            mfd_exec_keeps_the_exec_bits_and_f_seal_seal,
            mfd_exec_with_mfd_noexec_seal_is_einval,
            f_seal_exec_on_an_executable_memfd_brings_the_write_seals,
            f_seal_write_racing_shared_mappings_never_leaves_the_data_writable,
            processes_creating_writing_and_sealing_memfds_for_thousands_of_rounds,
        ],
    )
}

fn memfd(name: &str, flags: u32) -> Result<i32, Errno> {
    let n = user_tests::cstr(name);
    sys!(SYS_memfd_create, n.as_ptr(), flags).map(|fd| fd as i32)
}

fn sealable() -> i32 {
    memfd("sealable", MFD_ALLOW_SEALING).unwrap()
}

fn add_seals(fd: i32, seals: i64) -> Result<i64, Errno> {
    sys!(SYS_fcntl, fd, F_ADD_SEALS, seals)
}

fn get_seals(fd: i32) -> Result<i64, Errno> {
    sys!(SYS_fcntl, fd, F_GET_SEALS)
}

fn ftruncate(fd: i32, len: i64) -> Result<i64, Errno> {
    sys!(SYS_ftruncate, fd, len)
}

fn fallocate(fd: i32, mode: i32, off: i64, len: i64) -> Result<i64, Errno> {
    sys!(SYS_fallocate, fd, mode, off, len)
}

fn fstat(fd: i32) -> stat {
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_fstat, fd, &mut st as *mut stat).unwrap();
    st
}

fn map(fd: i32, len: usize, prot: i32, flags: i32) -> Result<usize, Errno> {
    mmap(0, len, prot, flags, fd, 0)
}

fn munmap(addr: usize, len: usize) {
    sys!(SYS_munmap, addr, len).unwrap();
}

fn mprotect(addr: usize, len: usize, prot: i32) -> Result<i64, Errno> {
    sys!(SYS_mprotect, addr, len, prot)
}

fn pread_byte(fd: i32, off: i64) -> u8 {
    let mut b = [0u8; 1];
    assert_eq!(sys!(SYS_pread64, fd, b.as_mut_ptr(), 1, off).unwrap(), 1);
    b[0]
}

fn readlink_fd(fd: i32) -> String {
    let p = user_tests::cstr(&format!("/proc/self/fd/{fd}"));
    let mut buf = [0u8; 512];
    let n = sys!(SYS_readlinkat, AT_FDCWD, p.as_ptr(), buf.as_mut_ptr(), buf.len()).unwrap() as usize;
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn memfd_create_makes_an_empty_regular_file_with_no_link() {
    let fd = memfd("empty", 0).unwrap();
    let st = fstat(fd);
    assert_eq!(st.st_mode, S_IFREG | 0o777);
    assert_eq!(st.st_nlink, 0);
    assert_eq!(st.st_size, 0);
    assert_eq!(st.st_uid, unsafe { geteuid() });
    assert_eq!(st.st_gid, unsafe { getegid() });
    close(fd).unwrap();
}

fn proc_fd_link_reads_memfd_name_deleted() {
    let fd = memfd("my buffer", 0).unwrap();
    assert_eq!(readlink_fd(fd), "/memfd:my buffer (deleted)");
    close(fd).unwrap();
}

fn mfd_cloexec_sets_close_on_exec() {
    let fd = memfd("cloexec", MFD_CLOEXEC).unwrap();
    assert_eq!(sys!(SYS_fcntl, fd, F_GETFD).unwrap(), FD_CLOEXEC as i64);
    let plain = memfd("plain", 0).unwrap();
    assert_eq!(sys!(SYS_fcntl, plain, F_GETFD).unwrap(), 0);
    close(fd).unwrap();
    close(plain).unwrap();
}

fn unknown_flags_are_einval() {
    assert_errno!(memfd("x", 0x100), EINVAL);
    assert_errno!(memfd("x", 0x8000_0000), EINVAL);
    // A huge page size only with MFD_HUGETLB.
    assert_errno!(memfd("x", 21 << MFD_HUGE_SHIFT), EINVAL);
}

fn a_name_of_249_bytes_is_accepted_and_250_is_einval() {
    let long = "n".repeat(249);
    let fd = memfd(&long, 0).unwrap();
    assert_eq!(readlink_fd(fd), format!("/memfd:{long} (deleted)"));
    close(fd).unwrap();
    assert_errno!(memfd(&"n".repeat(250), 0), EINVAL);
    let empty = memfd("", 0).unwrap();
    assert_eq!(readlink_fd(empty), "/memfd: (deleted)");
    close(empty).unwrap();
}

fn a_bad_name_pointer_is_efault() {
    assert_errno!(sys!(SYS_memfd_create, BAD_PTR, 0), EFAULT);
    assert_errno!(sys!(SYS_memfd_create, 0usize, 0), EFAULT);
}

fn data_written_is_seen_through_a_shared_mapping_and_by_a_child() {
    let fd = memfd("data", 0).unwrap();
    ftruncate(fd, 2 * PAGE as i64).unwrap();
    assert_eq!(sys!(SYS_pwrite64, fd, b"hello".as_ptr(), 5, PAGE as i64).unwrap(), 5);
    let a = map(fd, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED).unwrap();
    assert_eq!(unsafe { std::slice::from_raw_parts((a + PAGE) as *const u8, 5) }, b"hello");
    let pid = fork_child(|| {
        unsafe { *(a as *mut u8) = 42 };
        0
    });
    assert_eq!(wait_child(pid), Exit::Code(0));
    assert_eq!(pread_byte(fd, 0), 42);
    munmap(a, 2 * PAGE);
    close(fd).unwrap();
}

fn without_allow_sealing_the_seals_are_f_seal_seal() {
    let fd = memfd("unsealable", 0).unwrap();
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_SEAL);
    assert_errno!(add_seals(fd, F_SEAL_GROW), EPERM);
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_SEAL);
    close(fd).unwrap();
}

fn with_allow_sealing_no_seal_is_set() {
    let fd = sealable();
    assert_eq!(get_seals(fd).unwrap(), 0);
    add_seals(fd, F_SEAL_SHRINK).unwrap();
    add_seals(fd, F_SEAL_GROW).unwrap();
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_SHRINK | F_SEAL_GROW);
    close(fd).unwrap();
}

fn f_seal_seal_refuses_further_seals() {
    let fd = sealable();
    add_seals(fd, F_SEAL_SEAL | F_SEAL_SHRINK).unwrap();
    assert_errno!(add_seals(fd, F_SEAL_GROW), EPERM);
    assert_errno!(add_seals(fd, 0), EPERM);
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_SEAL | F_SEAL_SHRINK);
    close(fd).unwrap();
}

fn unknown_seal_bits_are_einval() {
    let fd = sealable();
    assert_errno!(add_seals(fd, 0x100), EINVAL);
    assert_errno!(add_seals(fd, F_SEAL_GROW | 0x1000), EINVAL);
    assert_eq!(get_seals(fd).unwrap(), 0);
    close(fd).unwrap();
}

fn f_seal_shrink_refuses_a_smaller_size_only() {
    let fd = sealable();
    ftruncate(fd, 3 * PAGE as i64).unwrap();
    add_seals(fd, F_SEAL_SHRINK).unwrap();
    assert_errno!(ftruncate(fd, PAGE as i64), EPERM);
    assert_errno!(ftruncate(fd, 0), EPERM);
    ftruncate(fd, 3 * PAGE as i64).unwrap();
    ftruncate(fd, 4 * PAGE as i64).unwrap();
    assert_eq!(fstat(fd).st_size, 4 * PAGE as i64);
    close(fd).unwrap();
}

fn f_seal_grow_refuses_a_larger_size() {
    let fd = sealable();
    ftruncate(fd, 2 * PAGE as i64).unwrap();
    add_seals(fd, F_SEAL_GROW).unwrap();
    assert_errno!(ftruncate(fd, 2 * PAGE as i64 + 1), EPERM);
    ftruncate(fd, PAGE as i64).unwrap();
    assert_eq!(fstat(fd).st_size, PAGE as i64);
    close(fd).unwrap();
}

fn f_seal_grow_refuses_writes_past_the_end() {
    let fd = sealable();
    ftruncate(fd, 10).unwrap();
    add_seals(fd, F_SEAL_GROW).unwrap();
    assert_eq!(write(fd, b"0123456789").unwrap(), 10);
    assert_errno!(write(fd, b"x"), EPERM);
    assert_errno!(sys!(SYS_pwrite64, fd, b"abc".as_ptr(), 3, 8), EPERM);
    assert_eq!(fstat(fd).st_size, 10);
    close(fd).unwrap();
}

fn f_seal_grow_refuses_fallocate_past_the_end() {
    let fd = sealable();
    ftruncate(fd, PAGE as i64).unwrap();
    add_seals(fd, F_SEAL_GROW).unwrap();
    assert_errno!(fallocate(fd, 0, 0, 2 * PAGE as i64), EPERM);
    assert_errno!(fallocate(fd, FALLOC_FL_KEEP_SIZE, PAGE as i64, PAGE as i64), EPERM);
    fallocate(fd, 0, 0, PAGE as i64).unwrap();
    close(fd).unwrap();
}

fn f_seal_write_refuses_write_pwrite_and_hole_punching() {
    let fd = sealable();
    write(fd, &[7u8; 2 * PAGE]).unwrap();
    add_seals(fd, F_SEAL_WRITE).unwrap();
    assert_errno!(write(fd, b"x"), EPERM);
    assert_errno!(sys!(SYS_pwrite64, fd, b"x".as_ptr(), 1, 0), EPERM);
    assert_errno!(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE as i64), EPERM);
    assert_eq!(pread_byte(fd, 0), 7);
    // The size may still change (only SHRINK and GROW guard it).
    ftruncate(fd, 3 * PAGE as i64).unwrap();
    close(fd).unwrap();
}

fn f_seal_write_refuses_a_shared_writable_mapping() {
    let fd = sealable();
    ftruncate(fd, PAGE as i64).unwrap();
    add_seals(fd, F_SEAL_WRITE).unwrap();
    assert_errno!(map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED), EPERM);
    close(fd).unwrap();
}

fn f_seal_write_leaves_private_mappings_copy_on_write() {
    let fd = sealable();
    write(fd, &[1u8; PAGE]).unwrap();
    add_seals(fd, F_SEAL_WRITE).unwrap();
    let a = map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE).unwrap();
    unsafe { *(a as *mut u8) = 9 };
    assert_eq!(pread_byte(fd, 0), 1);
    munmap(a, PAGE);
    close(fd).unwrap();
}

fn f_seal_write_is_ebusy_while_a_writable_shared_mapping_exists() {
    let fd = sealable();
    ftruncate(fd, PAGE as i64).unwrap();
    let a = map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED).unwrap();
    assert_errno!(add_seals(fd, F_SEAL_WRITE), EBUSY);
    assert_eq!(get_seals(fd).unwrap(), 0);
    // Another seal in the same call is not added either.
    assert_errno!(add_seals(fd, F_SEAL_WRITE | F_SEAL_SHRINK), EBUSY);
    assert_eq!(get_seals(fd).unwrap(), 0);
    munmap(a, PAGE);
    add_seals(fd, F_SEAL_WRITE).unwrap();
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_WRITE);
    close(fd).unwrap();
}

fn f_seal_write_is_ebusy_with_a_read_only_shared_mapping_of_a_writable_fd() {
    let fd = sealable();
    ftruncate(fd, PAGE as i64).unwrap();
    // A read-only shared mapping of a descriptor open for writing may become writable
    // (mprotect), so it counts.
    let a = map(fd, PAGE, PROT_READ, MAP_SHARED).unwrap();
    assert_errno!(add_seals(fd, F_SEAL_WRITE), EBUSY);
    munmap(a, PAGE);
    add_seals(fd, F_SEAL_WRITE).unwrap();
    close(fd).unwrap();
}

fn f_seal_write_leaves_a_shared_read_only_mapping_unable_to_become_writable() {
    let fd = sealable();
    write(fd, &[5u8; PAGE]).unwrap();
    add_seals(fd, F_SEAL_WRITE).unwrap();
    let a = map(fd, PAGE, PROT_READ, MAP_SHARED).unwrap();
    assert_eq!(unsafe { *(a as *const u8) }, 5);
    assert_errno!(mprotect(a, PAGE, PROT_READ | PROT_WRITE), EACCES);
    munmap(a, PAGE);
    close(fd).unwrap();
}

fn f_seal_future_write_keeps_existing_writable_mappings() {
    let fd = sealable();
    ftruncate(fd, PAGE as i64).unwrap();
    let a = map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED).unwrap();
    add_seals(fd, F_SEAL_FUTURE_WRITE).unwrap();
    unsafe { *(a as *mut u8) = 77 };
    assert_eq!(pread_byte(fd, 0), 77);
    munmap(a, PAGE);
    close(fd).unwrap();
}

fn f_seal_future_write_refuses_write_and_new_writable_mappings() {
    let fd = sealable();
    ftruncate(fd, PAGE as i64).unwrap();
    add_seals(fd, F_SEAL_FUTURE_WRITE).unwrap();
    assert_errno!(write(fd, b"x"), EPERM);
    assert_errno!(map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED), EPERM);
    assert_errno!(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE as i64), EPERM);
    // A private mapping still copies on write.
    let p = map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE).unwrap();
    unsafe { *(p as *mut u8) = 1 };
    assert_eq!(pread_byte(fd, 0), 0);
    munmap(p, PAGE);
    close(fd).unwrap();
}

fn f_seal_future_write_leaves_a_shared_read_only_mapping_unable_to_become_writable() {
    let fd = sealable();
    ftruncate(fd, PAGE as i64).unwrap();
    add_seals(fd, F_SEAL_FUTURE_WRITE).unwrap();
    let a = map(fd, PAGE, PROT_READ, MAP_SHARED).unwrap();
    assert_errno!(mprotect(a, PAGE, PROT_READ | PROT_WRITE), EACCES);
    munmap(a, PAGE);
    close(fd).unwrap();
}

fn seals_are_seen_through_a_dup_taken_before_the_seal() {
    let fd = sealable();
    let dup = sys!(SYS_dup, fd).unwrap() as i32;
    add_seals(fd, F_SEAL_WRITE | F_SEAL_SHRINK).unwrap();
    assert_eq!(get_seals(dup).unwrap(), F_SEAL_WRITE | F_SEAL_SHRINK);
    assert_errno!(write(dup, b"x"), EPERM);
    add_seals(dup, F_SEAL_SEAL).unwrap();
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_SHRINK);
    close(dup).unwrap();
    close(fd).unwrap();
}

fn seals_added_later_are_seen_by_a_forked_child() {
    let fd = sealable();
    let (r, w) = pipe(0).unwrap();
    let pid = fork_child(|| {
        let mut b = [0u8; 1];
        if read(r, &mut b) != Ok(1) {
            return 2;
        }
        if get_seals(fd) != Ok(F_SEAL_GROW) {
            return 3;
        }
        if write(fd, b"x") != Err(Errno(EPERM)) {
            return 4;
        }
        0
    });
    add_seals(fd, F_SEAL_GROW).unwrap();
    write(w, b"go").unwrap();
    assert_eq!(wait_child(pid), Exit::Code(0));
    close(r).unwrap();
    close(w).unwrap();
    close(fd).unwrap();
}

fn f_add_seals_on_a_read_only_descriptor_is_eperm() {
    let fd = sealable();
    let p = user_tests::cstr(&format!("/proc/self/fd/{fd}"));
    let ro = sys!(SYS_openat, AT_FDCWD, p.as_ptr(), O_RDONLY).unwrap() as i32;
    assert_errno!(add_seals(ro, F_SEAL_GROW), EPERM);
    // Write access is checked before the bits.
    assert_errno!(add_seals(ro, 0x1000), EPERM);
    assert_eq!(get_seals(ro).unwrap(), 0);
    add_seals(fd, F_SEAL_GROW).unwrap();
    assert_eq!(get_seals(ro).unwrap(), F_SEAL_GROW);
    close(ro).unwrap();
    close(fd).unwrap();
}

fn seals_of_a_file_that_is_not_shmem_are_einval() {
    let null = user_tests::open("/dev/null", O_RDWR, 0).unwrap();
    assert_errno!(add_seals(null, F_SEAL_GROW), EINVAL);
    assert_errno!(get_seals(null), EINVAL);
    let (r, w) = pipe(0).unwrap();
    assert_errno!(add_seals(w, F_SEAL_GROW), EINVAL);
    assert_errno!(add_seals(r, F_SEAL_GROW), EPERM);
    for fd in [null, r, w] {
        close(fd).unwrap();
    }
}

fn mfd_hugetlb_makes_a_file_whose_mapping_is_enomem() {
    let fd = memfd("huge", MFD_HUGETLB).unwrap();
    let st = fstat(fd);
    assert_eq!(st.st_mode, S_IFREG | 0o777);
    assert_eq!(st.st_blksize, HUGE as i64);
    assert_eq!(readlink_fd(fd), "/memfd:huge (deleted)");
    ftruncate(fd, HUGE as i64).unwrap();
    assert_errno!(map(fd, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED), ENOMEM);
    close(fd).unwrap();
    let sized = memfd("huge2m", MFD_HUGETLB | (21 << MFD_HUGE_SHIFT)).unwrap();
    close(sized).unwrap();
}

fn mfd_hugetlb_takes_only_whole_huge_page_sizes() {
    let fd = memfd("huge", MFD_HUGETLB).unwrap();
    assert_errno!(ftruncate(fd, PAGE as i64), EINVAL);
    assert_eq!(fstat(fd).st_size, 0);
    close(fd).unwrap();
}

fn mfd_hugetlb_with_a_page_size_without_a_pool_is_enodev() {
    // 64 KiB pages do not exist on x86-64.
    assert_errno!(memfd("huge", MFD_HUGETLB | (16 << MFD_HUGE_SHIFT)), ENODEV);
}

/// MAP_NORESERVE reserves nothing from the empty pool: the mapping is made, rounded up to
/// whole huge pages at a huge-page-aligned address, cannot be split, and each fault is
/// SIGBUS.
fn mfd_hugetlb_noreserve_mapping_covers_whole_huge_pages_whose_faults_are_sigbus() {
    let fd = memfd("huge", MFD_HUGETLB).unwrap();
    ftruncate(fd, 2 * HUGE as i64).unwrap();
    let a = map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE).unwrap();
    assert_eq!(a % HUGE, 0, "mapped at {a:#x}");
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps.lines().find(|l| l.starts_with(&format!("{a:x}-"))).expect("the mapping in maps");
    assert!(line.starts_with(&format!("{a:x}-{:x} rw-s ", a + HUGE)), "{line}");
    assert!(line.ends_with("/memfd:huge (deleted)"), "{line}");
    assert_errno!(sys!(SYS_munmap, a, PAGE), EINVAL);
    assert_eq!(user_tests::child_exit(|| user_tests::load_byte(a + PAGE) as i32), Exit::Signal(SIGBUS));
    munmap(a, HUGE);
    let p = map(fd, HUGE, PROT_READ, MAP_PRIVATE | MAP_NORESERVE).unwrap();
    assert_eq!(user_tests::child_exit(|| user_tests::load_byte(p) as i32), Exit::Signal(SIGBUS));
    munmap(p, HUGE);
    close(fd).unwrap();
}

fn mfd_hugetlb_mapping_at_an_offset_or_fixed_address_not_huge_page_aligned_is_einval() {
    let fd = memfd("huge", MFD_HUGETLB).unwrap();
    ftruncate(fd, 2 * HUGE as i64).unwrap();
    assert_errno!(mmap(0, HUGE, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, PAGE as i64), EINVAL);
    let a = map(fd, 2 * HUGE, PROT_READ, MAP_SHARED | MAP_NORESERVE).unwrap();
    assert_errno!(mmap(a + PAGE, HUGE, PROT_READ, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, fd, 0), EINVAL);
    // At a huge page offset, the second huge page.
    let b = mmap(a + HUGE, HUGE, PROT_READ, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, fd, HUGE as i64).unwrap();
    assert_eq!(b, a + HUGE);
    munmap(a, 2 * HUGE);
    close(fd).unwrap();
}

/// hugetlbfs_file_mmap: a mapping with PROT_WRITE past the end makes the file that long.
fn mfd_hugetlb_writable_mapping_grows_the_file_to_its_end() {
    let fd = memfd("huge", MFD_HUGETLB).unwrap();
    let r = map(fd, HUGE, PROT_READ, MAP_SHARED | MAP_NORESERVE).unwrap();
    assert_eq!(fstat(fd).st_size, 0);
    let w = map(fd, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE).unwrap();
    assert_eq!(fstat(fd).st_size, 2 * HUGE as i64);
    munmap(r, HUGE);
    munmap(w, 2 * HUGE);
    close(fd).unwrap();
}

fn mfd_hugetlb_f_seal_write_is_ebusy_while_a_writable_shared_mapping_exists() {
    let fd = memfd("huge", MFD_HUGETLB | MFD_ALLOW_SEALING).unwrap();
    ftruncate(fd, HUGE as i64).unwrap();
    let a = map(fd, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE).unwrap();
    assert_errno!(add_seals(fd, F_SEAL_WRITE), EBUSY);
    munmap(a, HUGE);
    add_seals(fd, F_SEAL_WRITE).unwrap();
    assert_errno!(map(fd, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE), EPERM);
    let r = map(fd, HUGE, PROT_READ, MAP_SHARED | MAP_NORESERVE).unwrap();
    assert_errno!(mprotect(r, HUGE, PROT_READ | PROT_WRITE), EACCES);
    munmap(r, HUGE);
    close(fd).unwrap();
}

/// ksys_mmap_pgoff: MAP_HUGETLB with a file is for hugetlbfs files only.
fn map_hugetlb_is_accepted_for_a_hugetlb_memfd_and_einval_for_a_tmpfs_one() {
    let huge = memfd("huge", MFD_HUGETLB).unwrap();
    ftruncate(huge, HUGE as i64).unwrap();
    let a = map(huge, HUGE, PROT_READ, MAP_SHARED | MAP_NORESERVE | MAP_HUGETLB).unwrap();
    munmap(a, HUGE);
    let small = memfd("small", 0).unwrap();
    ftruncate(small, PAGE as i64).unwrap();
    assert_errno!(map(small, PAGE, PROT_READ, MAP_SHARED | MAP_HUGETLB), EINVAL);
    close(huge).unwrap();
    close(small).unwrap();
}

fn mfd_noexec_seal_clears_the_exec_bits_and_seals_them() {
    let fd = memfd("noexec", MFD_NOEXEC_SEAL).unwrap();
    assert_eq!(fstat(fd).st_mode, S_IFREG | 0o666);
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_EXEC);
    assert_errno!(sys!(SYS_fchmod, fd, 0o777), EPERM);
    sys!(SYS_fchmod, fd, 0o644).unwrap();
    // Sealing stays allowed.
    add_seals(fd, F_SEAL_GROW).unwrap();
    close(fd).unwrap();
}

fn mfd_exec_keeps_the_exec_bits_and_f_seal_seal() {
    let fd = memfd("exec", MFD_EXEC).unwrap();
    assert_eq!(fstat(fd).st_mode, S_IFREG | 0o777);
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_SEAL);
    close(fd).unwrap();
}

fn mfd_exec_with_mfd_noexec_seal_is_einval() {
    assert_errno!(memfd("both", MFD_EXEC | MFD_NOEXEC_SEAL), EINVAL);
}

fn f_seal_exec_on_an_executable_memfd_brings_the_write_seals() {
    let fd = sealable();
    add_seals(fd, F_SEAL_EXEC).unwrap();
    assert_eq!(get_seals(fd).unwrap(), F_SEAL_EXEC | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE);
    close(fd).unwrap();
}

/// One thread maps the file shared and writable, writes through the mapping and unmaps,
/// again and again, while another adds F_SEAL_WRITE (retrying on EBUSY): once the seal
/// is in, no mapping may write the file any more, on any CPU, round after round.
fn f_seal_write_racing_shared_mappings_never_leaves_the_data_writable() {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;
    for round in 0..100u32 {
        let fd = sealable();
        ftruncate(fd, PAGE as i64).unwrap();
        let last = Arc::new(AtomicU8::new(0));
        let writer = {
            let last = last.clone();
            std::thread::spawn(move || {
                let mut v = 1u8;
                let mut refused = 0;
                // Keeps trying for a while after the seal went in.
                while refused < 50 {
                    match map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED) {
                        Ok(a) => {
                            unsafe { std::ptr::write_volatile(a as *mut u8, v) };
                            last.store(v, Ordering::SeqCst);
                            munmap(a, PAGE);
                            v = v % 250 + 1;
                        }
                        Err(e) => {
                            // Refused only once the seal denies writable mappings.
                            assert_eq!(e, Errno(EPERM), "mmap while sealing");
                            refused += 1;
                        }
                    }
                }
            })
        };
        loop {
            match add_seals(fd, F_SEAL_WRITE) {
                Ok(_) => break,
                Err(e) => assert_eq!(e, Errno(EBUSY), "round {round}"),
            }
            std::thread::yield_now();
        }
        let at_seal = pread_byte(fd, 0);
        writer.join().unwrap();
        assert_eq!(pread_byte(fd, 0), at_seal, "round {round}: the file changed after F_SEAL_WRITE");
        assert_eq!(at_seal, last.load(Ordering::SeqCst), "round {round}: the last write before the seal");
        close(fd).unwrap();
    }
}

/// Four processes, a thousand rounds each, all at once: a memfd made, sized, written
/// through a shared mapping, unmapped, sealed against writes (then refusing a writable
/// mapping and a write, keeping what was written) and closed.
fn processes_creating_writing_and_sealing_memfds_for_thousands_of_rounds() {
    const PROCS: u8 = 4;
    const ROUNDS: u32 = 1000;
    let children: Vec<i32> = (0..PROCS)
        .map(|p| {
            fork_child(move || {
                for round in 0..ROUNDS {
                    let v = (round as u8) ^ p;
                    let Ok(fd) = memfd("stress", MFD_ALLOW_SEALING) else { return 1 };
                    if ftruncate(fd, 2 * PAGE as i64).is_err() {
                        return 2;
                    }
                    let Ok(a) = map(fd, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED) else { return 3 };
                    unsafe { std::ptr::write_volatile((a + PAGE) as *mut u8, v) };
                    munmap(a, 2 * PAGE);
                    if add_seals(fd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW).is_err() {
                        return 4;
                    }
                    if map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED) != Err(Errno(EPERM)) {
                        return 5;
                    }
                    if sys!(SYS_pwrite64, fd, [v].as_ptr(), 1, 0) != Err(Errno(EPERM)) {
                        return 6;
                    }
                    if pread_byte(fd, PAGE as i64) != v {
                        return 7;
                    }
                    if close(fd).is_err() {
                        return 8;
                    }
                }
                0
            })
        })
        .collect();
    for c in children {
        assert_eq!(wait_child(c), Exit::Code(0));
    }
}
