//! Page faults as Linux resolves them, seen from /proc: fault-around (a read fault on a
//! file or shmem mapping also maps the pages around it that the page cache already
//! holds: Linux's `do_fault_around` and `filemap_map_pages`, a window of
//! `fault_around_bytes` = 64 KiB), the shared zero page (a read fault on private anonymous
//! memory maps one zero-filled page read-only and counts no RSS: `do_anonymous_page`), and
//! smaps' Pss (each page divided among the page-table entries that map it:
//! `smaps_account`) and Rss against VmRSS.
//!
//! Which pages are mapped is read from /proc/self/pagemap's present bit, exact on every
//! kernel; per-mapping figures from /proc/self/smaps, a page-table walk, exact too. VmRSS
//! is exact on our kernel and on Linux from 6.16; Linux 6.1 counts faults per thread and
//! adds them to the mm's counters 64 at a time, so there only the direction is checked.
//!
//! Linux is the oracle: where Linux does something surprising the test asserts it and says
//! why in a comment.

use std::ffi::CStr;

use libc::*;
use user_tests::{
    close, fork_child, load_byte, minflt, mmap, open, pagemap, pipe, proc_buffer, proc_field, read, read_proc,
    read_proc_into, run_tests, store_byte, sys, tests, wait_child, write, Exit, ProcBuf, PAGE,
};

fn main() {
    run_tests(
        "faults",
        tests![
            read_fault_on_a_shared_file_mapping_maps_the_cached_pages_of_its_64k_window,
            read_fault_on_a_private_file_mapping_maps_the_cached_pages_of_its_64k_window,
            fault_around_is_one_minor_fault,
            fault_around_maps_only_pages_already_in_the_page_cache,
            fault_around_stops_at_the_end_of_the_vma,
            fault_around_stops_at_the_end_of_the_page_table,
            fault_around_pages_count_in_the_mapping_rss_and_vmrss,
            fault_around_on_shared_anonymous_memory_maps_pages_another_process_touched,
            writing_a_page_mapped_by_fault_around_in_a_private_mapping_leaves_the_file_alone,
            write_fault_on_a_file_mapping_maps_only_its_page,
            read_of_private_anonymous_memory_maps_the_zero_page_without_rss_or_pss,
            reads_of_private_anonymous_memory_all_map_one_frame,
            writing_a_zero_page_mapping_gives_a_private_zeroed_page,
            zero_page_reads_before_fork_stay_zero_after_the_child_writes,
            mincore_shows_zero_page_reads_resident,
            map_populate_of_read_only_private_anonymous_memory_maps_the_zero_page,
            map_populate_of_writable_private_anonymous_memory_maps_real_pages,
            pss_of_shared_anonymous_pages_mapped_by_parent_and_child_is_half_their_rss,
            pss_of_a_private_file_page_mapped_by_one_process_is_its_rss,
            pss_of_private_anonymous_pages_shared_copy_on_write_with_a_child_is_half,
            pss_of_a_file_page_mapped_twice_in_one_process_is_half_in_each_mapping,
            smaps_locked_counts_a_shared_page_by_its_share,
            smaps_rss_sums_to_vmrss,
        ],
    );
}

const R: i32 = PROT_READ;
const RW: i32 = PROT_READ | PROT_WRITE;
/// Linux's fault_around_bytes in pages.
const WINDOW: usize = 16;
const PMD: usize = 2 << 20;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A PROT_NONE reservation with an `align`-aligned stretch of `len` bytes inside, and a
/// guard page on each side so that what is mapped there never merges with a neighbour.
/// Unmapped on drop.
struct Area {
    base: usize,
    len: usize,
    /// The aligned start.
    at: usize,
}

impl Area {
    fn new(len: usize, align: usize) -> Area {
        let total = len + align + 2 * PAGE;
        let base = mmap(0, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0).expect("reserve");
        let at = (base + PAGE + align - 1) & !(align - 1);
        Area { base, len: total, at }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        sys!(SYS_munmap, self.base, self.len).unwrap();
    }
}

/// A scratch directory on tmpfs (`/tmp`, or `/dev/shm` where `/tmp` is a disk: a disk
/// file system reads ahead on a fault and so fills the page cache around it), removed
/// with its contents on drop.
struct ShmDir {
    path: String,
}

impl ShmDir {
    fn new() -> ShmDir {
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut st: statfs = unsafe { std::mem::zeroed() };
        sys!(SYS_statfs, c"/tmp".as_ptr(), &mut st as *mut statfs).unwrap();
        let base = if st.f_type as i64 == TMPFS_MAGIC { "/tmp" } else { "/dev/shm" };
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = format!("{base}/ut-faults-{}-{n}", std::process::id());
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        ShmDir { path }
    }

    fn join(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn map_fixed(addr: usize, len: usize, prot: i32, flags: i32, fd: i32, off: usize) -> usize {
    let a = mmap(addr, len, prot, flags | MAP_FIXED, fd, off as i64).expect("mmap MAP_FIXED");
    assert_eq!(a, addr);
    a
}

/// A file of `pages` pages, page `i` filled with byte `i + 1`, written with write() so
/// every page is in the page cache; open read-write.
fn cached_file(dir: &ShmDir, pages: usize) -> i32 {
    let path = dir.join("f");
    let fd = open(&path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600).unwrap();
    for i in 0..pages {
        assert_eq!(write(fd, &[(i + 1) as u8; PAGE]).unwrap(), PAGE);
    }
    fd
}

const PM_PRESENT: u64 = 1 << 63;
const PM_FILE: u64 = 1 << 61;
const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
const PM_PFN: u64 = (1 << 55) - 1;

/// Which of the `n` pages at `addr` are mapped, as a string of `#` (present) and `.`.
fn present(addr: usize, n: usize) -> String {
    pagemap(addr, n).iter().map(|e| if e & PM_PRESENT != 0 { '#' } else { '.' }).collect()
}

/// `n` characters: `#` where `mapped(i)`, `.` elsewhere.
fn expect(n: usize, mapped: impl Fn(usize) -> bool) -> String {
    (0..n).map(|i| if mapped(i) { '#' } else { '.' }).collect()
}

/// VmRSS in kB, read into `buf` (see `read_proc_into`).
fn vmrss(buf: &mut Vec<u8>) -> u64 {
    read_proc_into(c"/proc/self/status", buf, ProcBuf::Fixed);
    proc_field(std::str::from_utf8(buf).unwrap(), "VmRSS")
}

/// The smaps block of the mapping that starts at `addr` (its maps line and fields).
fn smaps_of_text(smaps: &str, addr: usize) -> String {
    let head = format!("{addr:08x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
    let first = lines.next().unwrap_or_else(|| panic!("no mapping at {addr:#x} in smaps:\n{smaps}"));
    let mut block = format!("{first}\n");
    // Field lines start with `Name:`; the next mapping's line with its range.
    for l in lines.take_while(|l| l.split_whitespace().next().is_some_and(|t| t.ends_with(':'))) {
        block.push_str(l);
        block.push('\n');
    }
    block
}

fn smaps_of(addr: usize) -> String {
    smaps_of_text(&read_proc(c"/proc/self/smaps"), addr)
}

/// (Rss, Pss) in kB of the mapping at `addr`.
fn rss_pss(addr: usize) -> (u64, u64) {
    let s = smaps_of(addr);
    (proc_field(&s, "Rss"), proc_field(&s, "Pss"))
}

/// Whether we run on our kernel (its release names it) rather than on Linux.
fn on_our_kernel() -> bool {
    let mut u: utsname = unsafe { std::mem::zeroed() };
    sys!(SYS_uname, &mut u as *mut utsname).unwrap();
    unsafe { CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().contains("mshare")
}

/// Whether VmRSS is exact at every moment: on our kernel and on Linux from 6.16 (6.1
/// adds each thread's faults to the mm's counters 64 at a time).
fn vmrss_is_exact() -> bool {
    if on_our_kernel() {
        return true;
    }
    let mut u: utsname = unsafe { std::mem::zeroed() };
    sys!(SYS_uname, &mut u as *mut utsname).unwrap();
    let release = unsafe { CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (6, 16)
}

/// How far Linux 6.1's VmRSS may trail the page tables, in kB, for a process of
/// `threads` threads: each thread keeps the counts of its last faults (up to 65:
/// TASK_RSS_EVENTS_THRESH is 64, checked before the increment) before it adds them to the
/// address space's counters, and one fault maps up to a fault-around window of pages.
fn linux_rss_slack_kb(threads: u64) -> u64 {
    65 * WINDOW as u64 * 4 * threads.max(1)
}

/// The threads of this process now (read after the measurement: it allocates).
fn threads_of_self() -> u64 {
    proc_field(&read_proc(c"/proc/self/status"), "Threads")
}

/// Checks a VmRSS-style delta: exact where the counters are, else within Linux 6.1's
/// per-thread batches, at both ends.
#[track_caller]
fn assert_rss_delta(before: u64, after: u64, want_kb: i64, what: &str) {
    let got = after as i64 - before as i64;
    if vmrss_is_exact() {
        assert_eq!(got, want_kb, "{what}: {before} kB before, {after} kB after");
    } else {
        let slack = 2 * linux_rss_slack_kb(threads_of_self()) as i64;
        assert!((got - want_kb).abs() <= slack, "{what}: {before} kB before, {after} kB after, want +{want_kb}");
    }
}

// ---------------------------------------------------------------------------------------
// 1. Fault-around
// ---------------------------------------------------------------------------------------

/// A read fault on a page of a shared mapping whose file pages are all cached maps the
/// whole aligned 64 KiB window around it, and nothing outside it.
fn read_fault_on_a_shared_file_mapping_maps_the_cached_pages_of_its_64k_window() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, 3 * WINDOW);
    let area = Area::new(3 * WINDOW * PAGE, WINDOW * PAGE);
    let a = map_fixed(area.at, 3 * WINDOW * PAGE, R, MAP_SHARED, fd, 0);
    assert_eq!(load_byte(a + (WINDOW + 5) * PAGE), (WINDOW + 6) as u8);
    assert_eq!(present(a, 3 * WINDOW), expect(3 * WINDOW, |i| (WINDOW..2 * WINDOW).contains(&i)));
    close(fd).unwrap();
}

/// The same for a private mapping not yet written: the file's pages are mapped (they
/// read the file's bytes) and flagged as file pages in pagemap.
fn read_fault_on_a_private_file_mapping_maps_the_cached_pages_of_its_64k_window() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, 3 * WINDOW);
    let area = Area::new(3 * WINDOW * PAGE, WINDOW * PAGE);
    let a = map_fixed(area.at, 3 * WINDOW * PAGE, RW, MAP_PRIVATE, fd, 0);
    assert_eq!(load_byte(a + (WINDOW + 9) * PAGE), (WINDOW + 10) as u8);
    assert_eq!(present(a, 3 * WINDOW), expect(3 * WINDOW, |i| (WINDOW..2 * WINDOW).contains(&i)));
    let entries = pagemap(a + WINDOW * PAGE, WINDOW);
    assert!(entries.iter().all(|e| e & PM_FILE != 0), "file pages: {entries:x?}");
    close(fd).unwrap();
}

/// The window is mapped by one fault: reading all 16 pages costs one minor fault.
fn fault_around_is_one_minor_fault() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, WINDOW);
    let area = Area::new(WINDOW * PAGE, WINDOW * PAGE);
    let a = map_fixed(area.at, WINDOW * PAGE, R, MAP_SHARED, fd, 0);
    let mut sum = 0usize;
    minflt(); // the call's own code and stack are in place before the count
    let before = minflt();
    for i in 0..WINDOW {
        sum += load_byte(a + i * PAGE) as usize;
    }
    let after = minflt();
    assert_eq!(sum, (1..=WINDOW).sum::<usize>());
    assert_eq!(after - before, 1, "minor faults for reading a 64 KiB window");
    close(fd).unwrap();
}

/// Pages not in the page cache are neither read nor allocated by fault-around: in a
/// sparse file only the pages written before (and the faulting page) get mapped.
fn fault_around_maps_only_pages_already_in_the_page_cache() {
    let dir = ShmDir::new();
    let path = dir.join("sparse");
    let fd = open(&path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600).unwrap();
    sys!(SYS_ftruncate, fd, WINDOW * PAGE).unwrap();
    for i in [2, 9, 15] {
        assert_eq!(sys!(SYS_pwrite64, fd, [7u8; PAGE].as_ptr(), PAGE, i * PAGE).unwrap() as usize, PAGE);
    }
    let area = Area::new(WINDOW * PAGE, WINDOW * PAGE);
    let a = map_fixed(area.at, WINDOW * PAGE, R, MAP_SHARED, fd, 0);
    assert_eq!(load_byte(a + 4 * PAGE), 0);
    assert_eq!(present(a, WINDOW), expect(WINDOW, |i| [2, 4, 9, 15].contains(&i)));
    close(fd).unwrap();
}

/// The window ends where the VMA ends: the next VMA (the same file at another offset, so
/// the two do not merge) is left alone.
fn fault_around_stops_at_the_end_of_the_vma() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, 4 * WINDOW);
    let area = Area::new(WINDOW * PAGE, WINDOW * PAGE);
    let a = map_fixed(area.at, 8 * PAGE, R, MAP_SHARED, fd, 0);
    map_fixed(a + 8 * PAGE, 8 * PAGE, R, MAP_SHARED, fd, 3 * WINDOW * PAGE);
    assert_eq!(load_byte(a + 2 * PAGE), 3);
    assert_eq!(present(a, WINDOW), expect(WINDOW, |i| i < 8));
    close(fd).unwrap();
}

/// The window never crosses into the next page table (2 MiB): a VMA starting 4 pages
/// below a 2 MiB boundary gets only those 4 pages from a fault on its first page.
fn fault_around_stops_at_the_end_of_the_page_table() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, 2 * WINDOW);
    let area = Area::new(2 * PMD, PMD);
    let start = area.at + PMD - 4 * PAGE;
    let a = map_fixed(start, 2 * WINDOW * PAGE, R, MAP_SHARED, fd, 0);
    assert_eq!(load_byte(a), 1);
    assert_eq!(present(a, 2 * WINDOW), expect(2 * WINDOW, |i| i < 4));
    close(fd).unwrap();
}

/// Each page fault-around maps counts in the mapping's Rss and in VmRSS, as a fault on
/// it would.
fn fault_around_pages_count_in_the_mapping_rss_and_vmrss() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, WINDOW);
    let area = Area::new(WINDOW * PAGE, WINDOW * PAGE);
    let a = map_fixed(area.at, WINDOW * PAGE, R, MAP_SHARED, fd, 0);
    let mut buf = proc_buffer();
    let before = vmrss(&mut buf);
    load_byte(a + 7 * PAGE);
    let after = vmrss(&mut buf);
    assert_eq!(rss_pss(a).0, (WINDOW * 4) as u64, "the mapping's Rss");
    assert_rss_delta(before, after, (WINDOW * 4) as i64, "VmRSS");
    close(fd).unwrap();
}

/// Shared anonymous memory is shmem, and faults around too: pages a child wrote are in
/// the shmem page cache, and one read in the parent maps all of them.
fn fault_around_on_shared_anonymous_memory_maps_pages_another_process_touched() {
    let area = Area::new(WINDOW * PAGE, WINDOW * PAGE);
    let a = map_fixed(area.at, WINDOW * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    let pid = fork_child(|| {
        for i in 0..WINDOW {
            store_byte(a + i * PAGE, i as u8 + 1);
        }
        0
    });
    assert_eq!(wait_child(pid), Exit::Code(0));
    assert_eq!(present(a, WINDOW), expect(WINDOW, |_| false), "nothing mapped in the parent yet");
    assert_eq!(load_byte(a + 3 * PAGE), 4);
    assert_eq!(present(a, WINDOW), expect(WINDOW, |_| true));
}

/// Pages fault-around maps into a private mapping are the file's, read-only: writing one
/// takes a copy-on-write fault and the file keeps its bytes.
fn writing_a_page_mapped_by_fault_around_in_a_private_mapping_leaves_the_file_alone() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, WINDOW);
    let area = Area::new(WINDOW * PAGE, WINDOW * PAGE);
    let a = map_fixed(area.at, WINDOW * PAGE, RW, MAP_PRIVATE, fd, 0);
    load_byte(a);
    assert_eq!(present(a, WINDOW), expect(WINDOW, |_| true));
    minflt();
    let before = minflt();
    store_byte(a + 5 * PAGE, 0xee);
    let after = minflt();
    assert_eq!(after - before, 1, "the write to a page mapped read-only faults");
    assert_eq!(load_byte(a + 5 * PAGE), 0xee);
    let mut b = [0u8; 1];
    assert_eq!(sys!(SYS_pread64, fd, b.as_mut_ptr(), 1, 5 * PAGE).unwrap(), 1);
    assert_eq!(b[0], 6, "the file keeps its byte");
    assert_eq!(pagemap(a + 5 * PAGE, 1)[0] & PM_FILE, 0, "the written page is a private copy");
    close(fd).unwrap();
}

/// Writes (do_shared_fault, do_cow_fault) map only the faulting page, in shared and
/// private mappings alike.
fn write_fault_on_a_file_mapping_maps_only_its_page() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, WINDOW);
    for flags in [MAP_SHARED, MAP_PRIVATE] {
        let area = Area::new(WINDOW * PAGE, WINDOW * PAGE);
        let a = map_fixed(area.at, WINDOW * PAGE, RW, flags, fd, 0);
        store_byte(a + 5 * PAGE, 6);
        assert_eq!(present(a, WINDOW), expect(WINDOW, |i| i == 5), "flags {flags:#x}");
    }
    close(fd).unwrap();
}

// ---------------------------------------------------------------------------------------
// 2. The shared zero page
// ---------------------------------------------------------------------------------------

/// Reading private anonymous memory maps the zero page: present in pagemap (neither a
/// file page nor exclusive: it is nobody's), no RSS, no Pss.
fn read_of_private_anonymous_memory_maps_the_zero_page_without_rss_or_pss() {
    const N: usize = 64;
    let area = Area::new(N * PAGE, PAGE);
    let a = map_fixed(area.at, N * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    let mut buf = proc_buffer();
    let before = vmrss(&mut buf);
    let mut sum = 0usize;
    for i in 0..N {
        sum += load_byte(a + i * PAGE) as usize;
    }
    let after = vmrss(&mut buf);
    assert_eq!(sum, 0);
    let entries = pagemap(a, N);
    assert!(entries.iter().all(|e| e & PM_PRESENT != 0), "all present: {entries:x?}");
    assert!(entries.iter().all(|e| e & (PM_FILE | PM_MMAP_EXCLUSIVE) == 0), "no flags: {entries:x?}");
    assert_eq!(rss_pss(a), (0, 0), "smaps Rss and Pss");
    assert_rss_delta(before, after, 0, "VmRSS");
}

/// Every read maps the same frame (visible where pagemap shows frame numbers, to a
/// process with CAP_SYS_ADMIN).
fn reads_of_private_anonymous_memory_all_map_one_frame() {
    const N: usize = 8;
    let a = mmap(0, N * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    let b = mmap(0, N * PAGE, R, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    for i in 0..N {
        load_byte(a + i * PAGE);
        load_byte(b + i * PAGE);
    }
    let mut pfns: Vec<u64> = pagemap(a, N).iter().chain(pagemap(b, N).iter()).map(|e| e & PM_PFN).collect();
    pfns.dedup();
    assert_eq!(pfns.len(), 1, "frames: {pfns:x?}");
    sys!(SYS_munmap, a, N * PAGE).unwrap();
    sys!(SYS_munmap, b, N * PAGE).unwrap();
}

/// The first write to a page that reads the zero page gives it a private zeroed page
/// (counted in Rss); the zero page itself stays zero for every other reader.
fn writing_a_zero_page_mapping_gives_a_private_zeroed_page() {
    const N: usize = 4;
    let area = Area::new(N * PAGE, PAGE);
    let a = map_fixed(area.at, N * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    let b = mmap(0, PAGE, R, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    for i in 0..N {
        load_byte(a + i * PAGE);
    }
    load_byte(b);
    assert_eq!(rss_pss(a), (0, 0));
    store_byte(a + PAGE + 100, 0x5a);
    assert_eq!(rss_pss(a), (4, 4), "one private page");
    let page = unsafe { std::slice::from_raw_parts((a + PAGE) as *const u8, PAGE) };
    assert!(page.iter().enumerate().all(|(i, &v)| v == if i == 100 { 0x5a } else { 0 }), "a zeroed page");
    for i in [0, 2, 3] {
        assert!((0..PAGE).step_by(50).all(|o| load_byte(a + i * PAGE + o) == 0), "page {i} reads zero");
    }
    assert_eq!(load_byte(b + 100), 0, "the zero page itself is untouched");
    assert_eq!(pagemap(a + PAGE, 1)[0] & PM_MMAP_EXCLUSIVE, PM_MMAP_EXCLUSIVE);
    sys!(SYS_munmap, b, PAGE).unwrap();
}

/// Zero-page mappings read before a fork stay zero in the parent when the child writes
/// its copy of the page, and the child's write lands in its own page.
fn zero_page_reads_before_fork_stay_zero_after_the_child_writes() {
    const N: usize = 4;
    let a = mmap(0, N * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    store_byte(a + 3 * PAGE, 1); // a written page too, so the VMA's entries are copied
    for i in 0..N - 1 {
        load_byte(a + i * PAGE);
    }
    let pid = fork_child(|| {
        store_byte(a, 0x77);
        (load_byte(a) == 0x77 && load_byte(a + PAGE) == 0 && load_byte(a + 3 * PAGE) == 1) as i32
    });
    assert_eq!(wait_child(pid), Exit::Code(1));
    assert_eq!((load_byte(a), load_byte(a + PAGE)), (0, 0));
    store_byte(a + PAGE, 9);
    assert_eq!((load_byte(a), load_byte(a + PAGE)), (0, 9));
    sys!(SYS_munmap, a, N * PAGE).unwrap();
}

/// mincore counts a page that maps the zero page as resident (its entry is present).
fn mincore_shows_zero_page_reads_resident() {
    const N: usize = 4;
    let a = mmap(0, N * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    load_byte(a + PAGE);
    let mut vec = [0xffu8; N];
    sys!(SYS_mincore, a, N * PAGE, vec.as_mut_ptr()).unwrap();
    assert_eq!(vec.map(|v| v & 1), [0, 1, 0, 0]);
    sys!(SYS_munmap, a, N * PAGE).unwrap();
}

/// MAP_POPULATE of read-only private anonymous memory populates with read faults: every
/// page maps the zero page, and nothing counts in Rss.
fn map_populate_of_read_only_private_anonymous_memory_maps_the_zero_page() {
    const N: usize = 32;
    let area = Area::new(N * PAGE, PAGE);
    let a = map_fixed(area.at, N * PAGE, R, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    assert_eq!(present(a, N), expect(N, |_| true));
    assert_eq!(rss_pss(a), (0, 0));
}

/// MAP_POPULATE of writable private anonymous memory populates with write faults: real
/// pages, all in Rss.
fn map_populate_of_writable_private_anonymous_memory_maps_real_pages() {
    const N: usize = 32;
    let area = Area::new(N * PAGE, PAGE);
    let a = map_fixed(area.at, N * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    assert_eq!(rss_pss(a), ((N * 4) as u64, (N * 4) as u64));
    let entries = pagemap(a, N);
    assert!(entries.iter().all(|e| e & (PM_PRESENT | PM_MMAP_EXCLUSIVE) == PM_PRESENT | PM_MMAP_EXCLUSIVE));
}

// ---------------------------------------------------------------------------------------
// 3. Pss and Rss
// ---------------------------------------------------------------------------------------

/// Runs `child` in a forked child that then waits; `parent` runs while the child is
/// still alive, then the child is let go. Returns the child's exit.
fn while_child_lives(child: impl FnOnce(), parent: impl FnOnce()) -> Exit {
    let (ready_r, ready_w) = pipe(O_CLOEXEC).unwrap();
    let (go_r, go_w) = pipe(O_CLOEXEC).unwrap();
    let pid = fork_child(|| {
        child();
        write(ready_w, b"r").unwrap();
        let mut b = [0u8; 1];
        read(go_r, &mut b).unwrap();
        0
    });
    let mut b = [0u8; 1];
    assert_eq!(read(ready_r, &mut b).unwrap(), 1, "the child died before it was ready");
    parent();
    write(go_w, b"g").unwrap();
    for fd in [ready_r, ready_w, go_r, go_w] {
        close(fd).unwrap();
    }
    wait_child(pid)
}

/// Shared anonymous pages mapped by the parent and by its child count half in each one's
/// Pss.
fn pss_of_shared_anonymous_pages_mapped_by_parent_and_child_is_half_their_rss() {
    const N: usize = 8;
    let a = mmap(0, N * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    for i in 0..N {
        store_byte(a + i * PAGE, 1);
    }
    let exit = while_child_lives(
        || {
            for i in 0..N {
                load_byte(a + i * PAGE);
            }
        },
        || {
            assert_eq!(rss_pss(a), ((N * 4) as u64, (N * 2) as u64));
        },
    );
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(rss_pss(a), ((N * 4) as u64, (N * 4) as u64), "the child is gone");
    sys!(SYS_munmap, a, N * PAGE).unwrap();
}

/// A private file mapping's page read by one process is that process's alone (the page
/// cache holding it does not share it): Pss equals Rss, and pagemap calls it exclusive.
fn pss_of_a_private_file_page_mapped_by_one_process_is_its_rss() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, 1);
    let a = mmap(0, PAGE, R, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(load_byte(a), 1);
    assert_eq!(rss_pss(a), (4, 4));
    assert_eq!(pagemap(a, 1)[0] & (PM_FILE | PM_MMAP_EXCLUSIVE), PM_FILE | PM_MMAP_EXCLUSIVE);
    sys!(SYS_munmap, a, PAGE).unwrap();
    close(fd).unwrap();
}

/// Private anonymous pages written before a fork are shared copy-on-write while the
/// child lives: half in the parent's Pss and not exclusive in pagemap; once the child is
/// gone they are the parent's alone again.
fn pss_of_private_anonymous_pages_shared_copy_on_write_with_a_child_is_half() {
    const N: usize = 8;
    let area = Area::new(N * PAGE, PAGE);
    let a = map_fixed(area.at, N * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for i in 0..N {
        store_byte(a + i * PAGE, 1);
    }
    let exit = while_child_lives(
        || store_byte(a, 2), // the child's copy of page 0 leaves the parent's page its own
        || {
            assert_eq!(rss_pss(a), ((N * 4) as u64, (4 + (N - 1) * 2) as u64));
            let entries = pagemap(a, N);
            assert_eq!(entries[0] & PM_MMAP_EXCLUSIVE, PM_MMAP_EXCLUSIVE, "page 0: {entries:x?}");
            assert!(entries[1..].iter().all(|e| e & PM_MMAP_EXCLUSIVE == 0), "pages 1..: {entries:x?}");
        },
    );
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(rss_pss(a), ((N * 4) as u64, (N * 4) as u64), "the child is gone");
}

/// Pss divides a page among the page-table entries that map it, not among processes: a
/// file page mapped by two mappings of one process counts half in each.
fn pss_of_a_file_page_mapped_twice_in_one_process_is_half_in_each_mapping() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, 1);
    let a = mmap(0, PAGE, R, MAP_SHARED, fd, 0).unwrap();
    let b = mmap(0, PAGE, R, MAP_SHARED, fd, 0).unwrap();
    assert_eq!((load_byte(a), load_byte(b)), (1, 1));
    assert_eq!((rss_pss(a), rss_pss(b)), ((4, 2), (4, 2)));
    assert_eq!(pagemap(a, 1)[0] & PM_MMAP_EXCLUSIVE, 0);
    sys!(SYS_munmap, b, PAGE).unwrap();
    assert_eq!(rss_pss(a), (4, 4));
    assert_eq!(pagemap(a, 1)[0] & PM_MMAP_EXCLUSIVE, PM_MMAP_EXCLUSIVE);
    sys!(SYS_munmap, a, PAGE).unwrap();
    close(fd).unwrap();
}

/// smaps' Locked is the locked pages' Pss, as Linux's (`pss_locked`): a locked page that
/// a child maps too counts half.
fn smaps_locked_counts_a_shared_page_by_its_share() {
    const N: usize = 4;
    let a = mmap(0, N * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    sys!(SYS_mlock, a, N * PAGE).unwrap();
    let exit = while_child_lives(
        || {
            for i in 0..N {
                load_byte(a + i * PAGE);
            }
        },
        || {
            let s = smaps_of(a);
            assert_eq!((proc_field(&s, "Rss"), proc_field(&s, "Locked")), ((N * 4) as u64, (N * 2) as u64), "{s}");
        },
    );
    assert_eq!(exit, Exit::Code(0));
    sys!(SYS_munmap, a, N * PAGE).unwrap();
}

/// The Rss lines of smaps add up to VmRSS, after anonymous writes, zero-page reads, file
/// reads (with fault-around) and shared memory.
fn smaps_rss_sums_to_vmrss() {
    let dir = ShmDir::new();
    let fd = cached_file(&dir, 2 * WINDOW);
    let f = mmap(0, 2 * WINDOW * PAGE, R, MAP_PRIVATE, fd, 0).unwrap();
    let anon = mmap(0, 16 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    let shm = mmap(0, 4 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    for i in 0..16 {
        if i % 2 == 0 {
            store_byte(anon + i * PAGE, 1);
        } else {
            load_byte(anon + i * PAGE);
        }
    }
    load_byte(f + 3 * PAGE);
    store_byte(shm, 1);
    let mut bufs = [proc_buffer(), proc_buffer(), proc_buffer()];
    let [smaps, status, rollup] = &mut bufs;
    read_proc_into(c"/proc/self/smaps", smaps, ProcBuf::Fixed);
    read_proc_into(c"/proc/self/status", status, ProcBuf::Fixed);
    read_proc_into(c"/proc/self/smaps_rollup", rollup, ProcBuf::Fixed);
    let [smaps, status, rollup] = bufs.map(|b| String::from_utf8(b).unwrap());
    let sum: u64 = smaps
        .lines()
        .filter_map(|l| l.strip_prefix("Rss:"))
        .map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap())
        .sum();
    assert_eq!(proc_field(&rollup, "Rss"), sum, "smaps_rollup Rss is the sum of smaps' Rss");
    let vmrss = proc_field(&status, "VmRSS");
    if vmrss_is_exact() {
        assert_eq!(sum, vmrss, "smaps Rss sum and VmRSS");
    } else {
        let slack = linux_rss_slack_kb(proc_field(&status, "Threads"));
        assert!(sum.abs_diff(vmrss) <= slack, "smaps Rss sum {sum} kB, VmRSS {vmrss} kB (slack {slack} kB)");
    }
    for (a, len) in [(f, 2 * WINDOW), (anon, 16), (shm, 4)] {
        sys!(SYS_munmap, a, len * PAGE).unwrap();
    }
    close(fd).unwrap();
}
