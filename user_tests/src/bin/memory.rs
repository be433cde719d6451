//! Memory: brk, mmap (anonymous, file-backed, private, shared, fixed), munmap, mprotect,
//! mremap, madvise, faults and their signals, stack growth.

use libc::*;
use user_tests::{
    assert_errno, child_exit, close, fork_child, load_byte, mmap, mmap_anon, open, run_in_child, run_tests,
    set_handler, siginfo_handler, store_byte, sys, tests, wait_child, Exit, TempDir, PAGE, SEGV_ACCERR,
};

fn main() {
    run_tests(
        "memory",
        tests![
            brk_zero_returns_current_break,
            brk_grows_touches_and_shrinks,
            brk_below_start_is_refused,
            mmap_private_anonymous_is_zero_filled_and_writable,
            mmap_returns_page_aligned_address,
            munmap_then_access_is_sigsegv,
            munmap_of_middle_page_leaves_neighbours_mapped,
            mprotect_read_only_keeps_content_readable,
            write_to_read_only_page_is_sigsegv_with_segv_accerr,
            read_of_prot_none_page_is_sigsegv,
            mprotect_unaligned_address_is_einval,
            private_file_mapping_sees_content_and_writes_stay_private,
            shared_file_mapping_writes_reach_the_file,
            file_mapping_past_end_of_file_is_sigbus,
            shared_anonymous_mapping_is_shared_with_forked_child,
            private_anonymous_mapping_is_copied_on_fork,
            mmap_without_private_or_shared_is_einval,
            mmap_length_zero_is_einval,
            mmap_fixed_unaligned_address_is_einval,
            mmap_of_bad_fd_is_ebadf,
            mmap_fixed_replaces_existing_mapping,
            mmap_fixed_noreplace_over_mapping_is_eexist,
            munmap_unaligned_or_empty_is_einval,
            mremap_maymove_grows_and_keeps_contents,
            madvise_dontneed_zero_fills_private_anonymous_pages,
            null_dereference_in_child_is_signal_11,
            main_thread_stack_grows_on_demand,
        ],
    )
}

fn brk(addr: usize) -> usize {
    sys!(SYS_brk, addr).unwrap() as usize // brk never fails: it returns the current break
}

fn munmap(addr: usize, len: usize) -> Result<i64, user_tests::Errno> {
    sys!(SYS_munmap, addr, len)
}

fn mprotect(addr: usize, len: usize, prot: i32) -> Result<i64, user_tests::Errno> {
    sys!(SYS_mprotect, addr, len, prot)
}

/// How a child that touches `addr` (a load, or a store if `store`) ends.
fn touch_in_child(addr: usize, store: bool) -> Exit {
    child_exit(|| {
        unsafe { signal(SIGSEGV, SIG_DFL) };
        unsafe { signal(SIGBUS, SIG_DFL) };
        if store {
            store_byte(addr, 1);
        } else {
            load_byte(addr);
        }
        0
    })
}

fn brk_zero_returns_current_break() {
    let cur = brk(0);
    assert!(cur > 0);
    assert_eq!(brk(0), cur);
}

/// In a child: the allocator may use the break too, and must find it as it left it.
fn brk_grows_touches_and_shrinks() {
    run_in_child(|| {
        let start = brk(0);
        let len = 64 * PAGE;
        assert_eq!(brk(start + len), start + len);
        for a in (start..start + len).step_by(PAGE) {
            assert_eq!(load_byte(a), 0, "new break memory is zero-filled");
            store_byte(a, 0x5a);
        }
        assert_eq!(brk(start), start, "shrinking");
        assert_eq!(brk(start + PAGE), start + PAGE, "regrowing");
        assert_eq!(load_byte(start), 0, "pages released by shrinking come back zeroed");
        brk(start);
    });
}

fn brk_below_start_is_refused() {
    let cur = brk(0);
    assert_eq!(brk(1), cur, "a refused brk returns the unchanged break");
}

fn mmap_private_anonymous_is_zero_filled_and_writable() {
    let len = 16 * PAGE;
    let a = mmap_anon(len);
    let mem = unsafe { std::slice::from_raw_parts_mut(a as *mut u8, len) };
    assert!(mem.iter().all(|&b| b == 0));
    mem.fill(0xab);
    assert!(mem.iter().all(|&b| b == 0xab));
    munmap(a, len).unwrap();
}

fn mmap_returns_page_aligned_address() {
    let a = mmap_anon(100);
    assert_eq!(a % PAGE, 0);
    store_byte(a + PAGE - 1, 1); // a 100-byte request maps the whole page
    munmap(a, 100).unwrap();
}

fn munmap_then_access_is_sigsegv() {
    let a = mmap_anon(PAGE);
    munmap(a, PAGE).unwrap();
    assert_eq!(touch_in_child(a, false), Exit::Signal(SIGSEGV));
}

fn munmap_of_middle_page_leaves_neighbours_mapped() {
    let a = mmap_anon(3 * PAGE);
    store_byte(a, 1);
    store_byte(a + 2 * PAGE, 3);
    munmap(a + PAGE, PAGE).unwrap();
    assert_eq!((load_byte(a), load_byte(a + 2 * PAGE)), (1, 3));
    assert_eq!(touch_in_child(a + PAGE, false), Exit::Signal(SIGSEGV));
    munmap(a, 3 * PAGE).unwrap(); // unmapping a range with a hole is fine
}

fn mprotect_read_only_keeps_content_readable() {
    let a = mmap_anon(PAGE);
    store_byte(a + 10, 77);
    mprotect(a, PAGE, PROT_READ).unwrap();
    assert_eq!(load_byte(a + 10), 77);
    munmap(a, PAGE).unwrap();
}

/// Exits with 42 if the fault is a protection fault (SEGV_ACCERR) at the address the
/// parent passes in FAULT_ADDR, 43 for another address, 44 for another code.
extern "C" fn check_accerr(_: c_int, info: *mut siginfo_t, _: *mut c_void) {
    let info = unsafe { &*info };
    let want = FAULT_ADDR.load(std::sync::atomic::Ordering::SeqCst);
    let code = if info.si_code != SEGV_ACCERR {
        44
    } else if unsafe { info.si_addr() } as usize != want {
        43
    } else {
        42
    };
    unsafe { _exit(code) };
}

static FAULT_ADDR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn write_to_read_only_page_is_sigsegv_with_segv_accerr() {
    let a = mmap_anon(PAGE);
    mprotect(a, PAGE, PROT_READ).unwrap();
    FAULT_ADDR.store(a + 123, std::sync::atomic::Ordering::SeqCst);
    let exit = child_exit(|| {
        set_handler(SIGSEGV, siginfo_handler(check_accerr), SA_SIGINFO, &[]).unwrap();
        store_byte(a + 123, 1);
        0
    });
    assert_eq!(exit, Exit::Code(42), "43: wrong si_addr, 44: wrong si_code, 0: no fault");
    assert_eq!(touch_in_child(a, true), Exit::Signal(SIGSEGV), "default action");
    munmap(a, PAGE).unwrap();
}

fn read_of_prot_none_page_is_sigsegv() {
    let a = mmap(0, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    assert_eq!(touch_in_child(a, false), Exit::Signal(SIGSEGV));
    munmap(a, PAGE).unwrap();
}

fn mprotect_unaligned_address_is_einval() {
    let a = mmap_anon(PAGE);
    assert_errno!(mprotect(a + 1, PAGE, PROT_READ), EINVAL);
    munmap(a, PAGE).unwrap();
}

fn private_file_mapping_sees_content_and_writes_stay_private() {
    let dir = TempDir::new();
    let path = dir.file("f", b"file content");
    let fd = open(&path, O_RDWR, 0).unwrap();
    let a = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0).unwrap();
    let mem = unsafe { std::slice::from_raw_parts_mut(a as *mut u8, PAGE) };
    assert_eq!(&mem[..12], b"file content");
    assert!(mem[12..].iter().all(|&b| b == 0), "the rest of the page is zero");
    mem[..4].copy_from_slice(b"FILE");
    munmap(a, PAGE).unwrap();
    close(fd).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"file content");
}

fn shared_file_mapping_writes_reach_the_file() {
    let dir = TempDir::new();
    let path = dir.file("f", b"shared bytes");
    let fd = open(&path, O_RDWR, 0).unwrap();
    let a = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    store_byte(a, b'S');
    sys!(SYS_msync, a, PAGE, MS_SYNC).unwrap();
    munmap(a, PAGE).unwrap();
    close(fd).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"Shared bytes");
}

/// A mapping may extend past the end of the file, but touching a page wholly beyond it
/// raises SIGBUS.
fn file_mapping_past_end_of_file_is_sigbus() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", &[7u8; 100]), O_RDONLY, 0).unwrap();
    let a = mmap(0, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(load_byte(a + 99), 7);
    assert_eq!(touch_in_child(a + PAGE, false), Exit::Signal(SIGBUS));
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

fn shared_anonymous_mapping_is_shared_with_forked_child() {
    let a = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    assert_eq!(
        child_exit(|| {
            store_byte(a, 99);
            0
        }),
        Exit::Code(0)
    );
    assert_eq!(load_byte(a), 99, "the child's write is visible");
    munmap(a, PAGE).unwrap();
}

fn private_anonymous_mapping_is_copied_on_fork() {
    let a = mmap_anon(PAGE);
    store_byte(a, 1);
    let exit = child_exit(|| {
        store_byte(a, 2);
        load_byte(a) as i32
    });
    assert_eq!(exit, Exit::Code(2));
    assert_eq!(load_byte(a), 1, "the child's write is not visible");
    munmap(a, PAGE).unwrap();
}

fn mmap_without_private_or_shared_is_einval() {
    assert_errno!(mmap(0, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0), EINVAL);
}

fn mmap_length_zero_is_einval() {
    assert_errno!(mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
}

fn mmap_fixed_unaligned_address_is_einval() {
    let a = mmap_anon(2 * PAGE);
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    assert_errno!(mmap(a + 1, PAGE, PROT_READ, flags, -1, 0), EINVAL);
    munmap(a, 2 * PAGE).unwrap();
}

fn mmap_of_bad_fd_is_ebadf() {
    assert_errno!(mmap(0, PAGE, PROT_READ, MAP_PRIVATE, -1, 0), EBADF);
}

fn mmap_fixed_replaces_existing_mapping() {
    let a = mmap_anon(2 * PAGE);
    store_byte(a, 1);
    store_byte(a + PAGE, 2);
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    assert_eq!(mmap(a + PAGE, PAGE, PROT_READ | PROT_WRITE, flags, -1, 0).unwrap(), a + PAGE);
    assert_eq!((load_byte(a), load_byte(a + PAGE)), (1, 0), "only the second page is new");
    munmap(a, 2 * PAGE).unwrap();
}

fn mmap_fixed_noreplace_over_mapping_is_eexist() {
    let a = mmap_anon(PAGE);
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    assert_errno!(mmap(a, PAGE, PROT_READ, flags, -1, 0), EEXIST);
    munmap(a, PAGE).unwrap();
}

fn munmap_unaligned_or_empty_is_einval() {
    let a = mmap_anon(PAGE);
    assert_errno!(munmap(a + 1, PAGE), EINVAL);
    assert_errno!(munmap(a, 0), EINVAL);
    munmap(a, PAGE).unwrap();
}

fn mremap_maymove_grows_and_keeps_contents() {
    let a = mmap_anon(PAGE);
    store_byte(a + 5, 55);
    let b = sys!(SYS_mremap, a, PAGE, 64 * PAGE, MREMAP_MAYMOVE).unwrap() as usize;
    assert_eq!(load_byte(b + 5), 55);
    store_byte(b + 63 * PAGE, 1); // the grown part is usable
    assert_eq!(load_byte(b + 10 * PAGE), 0);
    munmap(b, 64 * PAGE).unwrap();
}

fn madvise_dontneed_zero_fills_private_anonymous_pages() {
    let a = mmap_anon(PAGE);
    store_byte(a, 9);
    sys!(SYS_madvise, a, PAGE, MADV_DONTNEED).unwrap();
    assert_eq!(load_byte(a), 0);
    munmap(a, PAGE).unwrap();
}

fn null_dereference_in_child_is_signal_11() {
    assert_eq!(touch_in_child(0, false), Exit::Signal(11));
    assert_eq!(touch_in_child(0, true), Exit::Signal(11));
}

/// Uses 64 KiB of stack per level.
#[inline(never)]
fn recurse(depth: usize) -> u8 {
    let mut frame = [0u8; 64 * 1024];
    std::hint::black_box(&mut frame)[depth] = depth as u8;
    if depth == 0 {
        return 0;
    }
    recurse(depth - 1).wrapping_add(std::hint::black_box(&frame)[depth])
}

/// The main thread's stack (8 MiB limit) is mapped as it is used: 2 MiB of frames work.
fn main_thread_stack_grows_on_demand() {
    let pid = fork_child(|| (recurse(32) == (1..=32u32).sum::<u32>() as u8) as i32);
    assert_eq!(wait_child(pid), Exit::Code(1));
}
