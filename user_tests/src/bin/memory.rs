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
            remap_file_pages_shows_file_page_3_at_page_0,
            remap_file_pages_splits_the_maps_line,
            remap_file_pages_faults_the_range_in_unless_map_nonblock,
            remap_file_pages_rounds_start_and_size_down_to_pages,
            remap_file_pages_spans_back_to_back_vmas_of_one_open_file,
            remap_file_pages_of_shared_anonymous_memory_remaps_its_pages,
            remap_file_pages_ignores_flags_other_than_map_nonblock,
            remap_file_pages_with_a_protection_is_einval,
            remap_file_pages_of_an_empty_or_wrapping_range_is_einval,
            remap_file_pages_with_a_wrapping_pgoff_is_einval,
            remap_file_pages_past_the_largest_file_offset_is_eoverflow,
            remap_file_pages_of_a_private_unmapped_or_read_only_range_is_einval,
            remap_file_pages_across_a_hole_another_file_or_another_protection_is_einval,
            mmap_populate_with_map_nonblock_faults_nothing_in,
            mmap_of_a_file_past_the_largest_file_offset_is_eoverflow,
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

fn remap_file_pages(addr: usize, size: usize, prot: i32, pgoff: usize, flags: i32) -> Result<i64, user_tests::Errno> {
    sys!(SYS_remap_file_pages, addr, size, prot, pgoff, flags)
}

/// A file of `pages` pages, page `i` filled with `b'A' + i`, open read-write.
fn lettered_file(dir: &TempDir, pages: usize) -> i32 {
    let data: Vec<u8> = (0..pages).flat_map(|i| [b'A' + i as u8; PAGE]).collect();
    open(&dir.file("f", &data), O_RDWR, 0).unwrap()
}

/// The first byte of each of `pages` pages at `a`.
fn letters(a: usize, pages: usize) -> Vec<u8> {
    (0..pages).map(|i| load_byte(a + i * PAGE)).collect()
}

/// Whether /proc/self/pagemap shows the page at `addr` present (bit 63).
fn page_present(addr: usize) -> bool {
    let fd = open("/proc/self/pagemap", O_RDONLY, 0).unwrap();
    let mut e = [0u8; 8];
    assert_eq!(sys!(SYS_pread64, fd, e.as_mut_ptr(), 8, (addr / PAGE * 8) as i64).unwrap(), 8);
    close(fd).unwrap();
    u64::from_le_bytes(e) >> 63 == 1
}

/// The /proc/self/maps lines of the VMAs inside [start, end), without the path: `start-end
/// perms offset`.
fn maps_between(start: usize, end: usize) -> Vec<String> {
    // One buffer, allocated before the first read: growing it would change the maps
    // between two reads.
    let mut buf = vec![0u8; 1 << 20];
    let fd = open("/proc/self/maps", O_RDONLY, 0).unwrap();
    let mut len = 0;
    while let n @ 1.. = user_tests::read(fd, &mut buf[len..]).unwrap() {
        len += n;
    }
    close(fd).unwrap();
    String::from_utf8_lossy(&buf[..len])
        .lines()
        .filter(|l| {
            let (s, e) = l.split_once(' ').unwrap().0.split_once('-').unwrap();
            let (s, e) = (usize::from_str_radix(s, 16).unwrap(), usize::from_str_radix(e, 16).unwrap());
            start <= s && e <= end
        })
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

/// remap_file_pages maps another page of the file at a page of a shared mapping: the
/// first page then shows (and writes) file page 3, the others keep theirs.
fn remap_file_pages_shows_file_page_3_at_page_0() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(remap_file_pages(a, PAGE, 0, 3, 0), Ok(0));
    assert_eq!(letters(a, 4), b"DBCD");
    store_byte(a + 1, b'x');
    let mut b = [0u8; 2];
    assert_eq!(sys!(SYS_pread64, fd, b.as_mut_ptr(), 2, 3 * PAGE as i64), Ok(2));
    assert_eq!(&b, b"Dx");
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// The emulation makes a VMA of the remapped range, as Linux's do_mmap: maps shows the
/// first page at offset 0x3000, the rest as before.
fn remap_file_pages_splits_the_maps_line() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(maps_between(a, a + 4 * PAGE), [format!("{:08x}-{:08x} rw-s 00000000", a, a + 4 * PAGE)]);
    remap_file_pages(a, PAGE, 0, 3, 0).unwrap();
    assert_eq!(
        maps_between(a, a + 4 * PAGE),
        [
            format!("{:08x}-{:08x} rw-s 00003000", a, a + PAGE),
            format!("{:08x}-{:08x} rw-s 00001000", a + PAGE, a + 4 * PAGE),
        ]
    );
    // Remapping the page back to its own offset merges the VMAs again.
    remap_file_pages(a, PAGE, 0, 0, 0).unwrap();
    assert_eq!(maps_between(a, a + 4 * PAGE), [format!("{:08x}-{:08x} rw-s 00000000", a, a + 4 * PAGE)]);
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// The new mapping is made with MAP_POPULATE: its pages are present at once, unless the
/// caller passed MAP_NONBLOCK.
fn remap_file_pages_faults_the_range_in_unless_map_nonblock() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert!(!page_present(a) && !page_present(a + 2 * PAGE));
    remap_file_pages(a, PAGE, 0, 3, 0).unwrap();
    assert!(page_present(a));
    remap_file_pages(a + 2 * PAGE, PAGE, 0, 1, MAP_NONBLOCK).unwrap();
    assert!(!page_present(a + 2 * PAGE));
    assert_eq!(load_byte(a + 2 * PAGE), b'B');
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// Start and size are rounded down to whole pages: one page and a bit from one byte in
/// remaps just the first page.
fn remap_file_pages_rounds_start_and_size_down_to_pages() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(remap_file_pages(a + 5, PAGE + 100, 0, 3, 0), Ok(0));
    assert_eq!(letters(a, 4), b"DBCD");
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// The range may cover several VMAs if they follow each other and map the same open
/// file with the same flags.
fn remap_file_pages_spans_back_to_back_vmas_of_one_open_file() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 8);
    let a = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    mmap(a + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 5 * PAGE as i64).unwrap();
    assert_eq!(letters(a, 2), b"AF");
    assert_eq!(remap_file_pages(a, 2 * PAGE, 0, 6, 0), Ok(0));
    assert_eq!(letters(a, 2), b"GH");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

/// Shared anonymous memory is a shmem file: its pages can be remapped too.
fn remap_file_pages_of_shared_anonymous_memory_remaps_its_pages() {
    let a = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    store_byte(a + PAGE, b'z');
    assert_eq!(remap_file_pages(a, PAGE, 0, 1, 0), Ok(0));
    assert_eq!(load_byte(a), b'z');
    munmap(a, 2 * PAGE).unwrap();
}

/// Flags other than MAP_NONBLOCK are dropped, not refused (`flags &= MAP_NONBLOCK`).
fn remap_file_pages_ignores_flags_other_than_map_nonblock() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(remap_file_pages(a, PAGE, 0, 2, MAP_PRIVATE | MAP_ANONYMOUS | 0x1234), Ok(0));
    assert_eq!(letters(a, 2), b"CB");
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// The mapping keeps its own protection: any `prot` but 0 is EINVAL.
fn remap_file_pages_with_a_protection_is_einval() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_errno!(remap_file_pages(a, PAGE, PROT_READ, 3, 0), EINVAL);
    assert_eq!(letters(a, 1), b"A");
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// A size that rounds down to nothing, or a range that wraps around the address space, is
/// EINVAL.
fn remap_file_pages_of_an_empty_or_wrapping_range_is_einval() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_errno!(remap_file_pages(a, 0, 0, 3, 0), EINVAL);
    assert_errno!(remap_file_pages(a, 100, 0, 3, 0), EINVAL);
    assert_errno!(remap_file_pages(a, PAGE.wrapping_neg(), 0, 3, 0), EINVAL);
    assert_eq!(letters(a, 1), b"A");
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// A page offset that wraps when the range's pages are added is EINVAL.
fn remap_file_pages_with_a_wrapping_pgoff_is_einval() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_errno!(remap_file_pages(a, PAGE, 0, usize::MAX, 0), EINVAL);
    assert_errno!(remap_file_pages(a, 2 * PAGE, 0, usize::MAX - 1, 0), EINVAL);
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// An offset past MAX_LFS_FILESIZE is do_mmap's EOVERFLOW; one below it maps (to pages
/// past the end of the file).
fn remap_file_pages_past_the_largest_file_offset_is_eoverflow() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_errno!(remap_file_pages(a, PAGE, 0, 1 << 52, 0), EOVERFLOW);
    assert_errno!(remap_file_pages(a, PAGE, 0, 1 << 51, 0), EOVERFLOW);
    assert_eq!(letters(a, 1), b"A");
    assert_eq!(remap_file_pages(a, PAGE, 0, 1 << 40, 0), Ok(0));
    assert_eq!(maps_between(a, a + PAGE), [format!("{:08x}-{:08x} rw-s 10000000000000", a, a + PAGE)]);
    munmap(a, 4 * PAGE).unwrap();
    close(fd).unwrap();
}

/// Only a shared mapping (VM_SHARED) can be remapped: not a private file mapping, private
/// anonymous memory, an unmapped address, nor a shared mapping of a file opened read-only
/// (which has no VM_SHARED).
fn remap_file_pages_of_a_private_unmapped_or_read_only_range_is_einval() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 4);
    let p = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0).unwrap();
    assert_errno!(remap_file_pages(p, PAGE, 0, 1, 0), EINVAL);
    let anon = mmap_anon(2 * PAGE);
    assert_errno!(remap_file_pages(anon, PAGE, 0, 1, 0), EINVAL);
    munmap(anon, 2 * PAGE).unwrap();
    assert_errno!(remap_file_pages(anon, PAGE, 0, 1, 0), EINVAL);
    let ro = open(&dir.join("f"), O_RDONLY, 0).unwrap();
    let r = mmap(0, 2 * PAGE, PROT_READ, MAP_SHARED, ro, 0).unwrap();
    assert_errno!(remap_file_pages(r, PAGE, 0, 1, 0), EINVAL);
    assert_eq!(letters(p, 1), b"A");
    assert_eq!(letters(r, 1), b"A");
    munmap(p, 2 * PAGE).unwrap();
    munmap(r, 2 * PAGE).unwrap();
    close(ro).unwrap();
    close(fd).unwrap();
}

/// A range running past its VMA must continue in VMAs of the same open file with the same
/// flags and protection, with no hole: otherwise EINVAL, and nothing changes.
fn remap_file_pages_across_a_hole_another_file_or_another_protection_is_einval() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 8);
    let a = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    munmap(a + 2 * PAGE, PAGE).unwrap();
    assert_errno!(remap_file_pages(a, 4 * PAGE, 0, 4, 0), EINVAL);
    let fd2 = open(&dir.join("f"), O_RDWR, 0).unwrap();
    mmap(a + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd2, 2 * PAGE as i64).unwrap();
    assert_errno!(remap_file_pages(a, 4 * PAGE, 0, 4, 0), EINVAL);
    mmap(a + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 2 * PAGE as i64).unwrap();
    mprotect(a + 3 * PAGE, PAGE, PROT_READ).unwrap();
    assert_errno!(remap_file_pages(a, 4 * PAGE, 0, 4, 0), EINVAL);
    assert_errno!(remap_file_pages(a, 5 * PAGE, 0, 4, 0), EINVAL);
    assert_eq!(letters(a, 4), b"ABCD");
    munmap(a, 4 * PAGE).unwrap();
    close(fd2).unwrap();
    close(fd).unwrap();
}

/// MAP_POPULATE faults a mapping in, but not together with MAP_NONBLOCK (do_mmap populates
/// only when `flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE`).
fn mmap_populate_with_map_nonblock_faults_nothing_in() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 2);
    let a = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0).unwrap();
    assert!(page_present(a) && page_present(a + PAGE));
    let b = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE | MAP_NONBLOCK, fd, 0).unwrap();
    assert!(!page_present(b) && !page_present(b + PAGE));
    munmap(a, 2 * PAGE).unwrap();
    munmap(b, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

/// A file mapping must end within MAX_LFS_FILESIZE (`file_mmap_ok`): EOVERFLOW past it,
/// even where offset plus length does not wrap; the last page below it maps.
fn mmap_of_a_file_past_the_largest_file_offset_is_eoverflow() {
    let dir = TempDir::new();
    let fd = lettered_file(&dir, 1);
    let top = (i64::MAX as usize + 1 - 2 * PAGE) as i64;
    assert_errno!(mmap(0, 2 * PAGE, PROT_READ, MAP_SHARED, fd, top), EOVERFLOW);
    assert_errno!(mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, i64::MIN), EOVERFLOW);
    let a = mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, top).unwrap();
    munmap(a, PAGE).unwrap();
    close(fd).unwrap();
}
