//! Virtual memory: partial munmap/mprotect/mremap on private and shared mappings (and how
//! /proc/self/maps shows the split), files under mappings (ftruncate, read/write coherence,
//! private mappings and the page cache), fork (copy-on-write, shared memory, MADV_DONTFORK),
//! msync, madvise, mincore, the mlock family and RLIMIT_MEMLOCK, RSS and page-table
//! accounting, the /proc memory files' formats, MAP_GROWSDOWN.
//!
//! Linux is the oracle: where Linux does something surprising the test asserts it and says
//! why in a comment.

use std::ffi::CStr;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::*;
use user_tests::{
    assert_errno, child_exit, close, exe_path, fork_child, load_byte, mmap, mmap_anon, open, pipe, proc_buffer,
    proc_field, read, read_proc, read_proc_into, run_in_child, run_tests, set_handler, siginfo_handler, sleep_ms,
    status_kb, store_byte, sys, tests, wait_child, write, Errno, Exit, ProcBuf, TempDir, BAD_PTR, PAGE, SEGV_ACCERR,
    SEGV_MAPERR,
};

fn main() {
    run_tests(
        "vm",
        tests![
            // 1. Partial operations on private and shared mappings.
            munmap_middle_page_of_private_anonymous_mapping_keeps_outer_pages,
            munmap_middle_page_of_shared_anonymous_mapping_keeps_outer_pages,
            munmap_middle_page_of_shared_file_mapping_keeps_outer_pages,
            mprotect_middle_page_of_private_anonymous_mapping_faults_only_there,
            mprotect_middle_page_of_shared_anonymous_mapping_faults_only_there,
            mprotect_middle_page_of_shared_file_mapping_faults_only_there,
            maps_shows_private_anonymous_mapping_split_by_munmap,
            maps_shows_shared_anonymous_mapping_split_by_munmap,
            maps_shows_shared_file_mapping_split_by_munmap,
            maps_shows_private_anonymous_mapping_split_by_mprotect,
            maps_shows_shared_anonymous_mapping_split_by_mprotect,
            maps_shows_shared_file_mapping_split_by_mprotect,
            mremap_shrinks_private_anonymous_mapping_in_place,
            mremap_shrinks_shared_anonymous_mapping_in_place,
            mremap_shrinks_shared_file_mapping_in_place,
            mremap_grows_private_anonymous_mapping_in_place_when_next_pages_are_free,
            mremap_grows_shared_anonymous_mapping_in_place_when_next_pages_are_free,
            mremap_grows_shared_file_mapping_in_place_when_next_pages_are_free,
            mremap_maymove_moves_blocked_private_anonymous_mapping,
            mremap_maymove_moves_blocked_shared_anonymous_mapping,
            mremap_maymove_moves_blocked_shared_file_mapping,
            mremap_fixed_moves_middle_page_of_private_anonymous_mapping,
            mremap_fixed_moves_middle_page_of_shared_anonymous_mapping,
            mremap_fixed_moves_middle_page_of_shared_file_mapping,
            mremap_growing_shared_anonymous_mapping_past_its_size_is_sigbus_there,
            mremap_dontunmap_leaves_old_private_anonymous_range_mapped_and_zero,
            mremap_unaligned_old_address_is_einval,
            mremap_unknown_flags_is_einval,
            mremap_fixed_without_maymove_is_einval,
            mremap_dontunmap_without_maymove_is_einval,
            mremap_dontunmap_with_different_lengths_is_einval,
            mremap_new_len_zero_is_einval,
            mremap_grow_without_maymove_into_occupied_range_is_enomem,
            mremap_fixed_unaligned_new_address_is_einval,
            mremap_fixed_onto_overlapping_range_is_einval,
            mremap_of_unmapped_range_is_efault,
            // 2. Files under mappings.
            ftruncate_grow_makes_new_page_usable_in_existing_shared_mapping,
            ftruncate_shrink_makes_shared_mapping_sigbus_past_new_end,
            ftruncate_shrink_makes_private_mapping_sigbus_past_new_end,
            ftruncate_shrink_discards_private_copies_past_new_end,
            ftruncate_shrink_zeroes_partial_last_page_beyond_eof_in_mapping,
            shared_file_mapping_writes_are_visible_to_read_without_msync,
            write_to_file_is_visible_in_shared_mapping,
            private_file_mapping_sees_file_writes_until_page_is_written,
            // 3. fork.
            private_anonymous_pages_are_copied_on_write_both_ways_after_fork,
            private_file_pages_are_copied_on_write_both_ways_after_fork,
            shared_anonymous_pages_touched_before_fork_are_shared_both_ways,
            shared_anonymous_pages_first_touched_after_fork_are_shared_both_ways,
            madvise_dontfork_range_is_not_mapped_in_child,
            madvise_wipeonfork_gives_the_child_zeroed_memory,
            madvise_keeponfork_makes_the_child_copy_again,
            madvise_wipeonfork_on_shared_or_file_memory_is_einval,
            madvise_dofork_makes_range_inherited_again,
            // 4. msync.
            msync_sync_and_async_together_is_einval,
            msync_unaligned_address_is_einval,
            msync_unknown_flags_is_einval,
            msync_range_with_unmapped_hole_is_enomem,
            msync_invalidate_on_mlocked_range_is_ebusy,
            msync_zero_length_is_ok,
            // 5. madvise.
            madvise_dontneed_on_shared_file_mapping_keeps_data,
            smaps_of_a_shared_mapping_of_a_read_only_fd_shows_neither_sh_nor_mw,
            smaps_counts_shmem_pages_written_by_write_as_dirty,
            smaps_counts_shmem_holes_read_through_a_mapping_as_clean,
            smaps_keeps_a_page_dirty_after_the_mapping_that_wrote_it_is_gone,
            punching_a_hole_keeps_a_private_mappings_copies,
            madvise_dontneed_failing_on_a_locked_piece_has_zapped_the_pieces_before_it,
            brk_growth_after_mlockall_future_is_locked,
            mremap_growth_of_a_locked_mapping_is_populated,
            mremap_growth_of_a_locked_mapping_past_rlimit_memlock_is_eagain,
            map_populate_of_a_private_writable_file_mapping_makes_private_copies,
            madvise_dontneed_on_shared_anonymous_mapping_keeps_data,
            madvise_dontneed_on_private_file_mapping_reverts_to_file_contents,
            madvise_remove_on_shared_anonymous_mapping_punches_hole,
            madvise_remove_on_shared_file_mapping_punches_hole_keeping_size,
            madvise_remove_on_private_anonymous_mapping_is_einval,
            madvise_remove_on_private_file_mapping_is_eacces,
            madvise_free_on_private_anonymous_mapping_succeeds,
            madvise_willneed_succeeds,
            madvise_unknown_advice_is_einval,
            madvise_unaligned_start_is_einval,
            madvise_range_with_unmapped_part_is_enomem,
            // 6. mincore.
            mincore_reports_only_touched_anonymous_pages_resident,
            mincore_unaligned_address_is_einval,
            mincore_unmapped_range_is_enomem,
            mincore_bad_vector_pointer_is_efault,
            mincore_over_the_whole_user_half_is_enomem,
            mincore_vector_too_long_for_user_space_is_efault,
            mincore_writes_the_mapped_part_before_enomem,
            extreme_lengths_and_addresses_fail_cleanly,
            random_memory_syscalls_leave_the_kernel_standing,
            mprotect_of_a_huge_sparse_mapping_costs_only_its_pages,
            fork_with_a_huge_sparse_mapping_costs_only_its_pages,
            mremap_of_a_huge_sparse_mapping_costs_only_its_pages,
            smaps_of_a_huge_sparse_mapping_costs_only_its_pages,
            // 7. mlock family.
            mlock_adds_to_vmlck_and_munlock_removes,
            mlock2_onfault_is_accepted_and_counted_in_vmlck,
            mlock2_unknown_flags_is_einval,
            mlockall_future_locks_new_mappings,
            munlockall_unlocks_everything,
            mlockall_bad_flags_is_einval,
            mlock_beyond_rlimit_memlock_without_capability_is_enomem,
            mlock_with_zero_rlimit_memlock_without_capability_is_eperm,
            mlock_with_rlimit_memlock_below_a_page_without_capability_is_enomem,
            mlock_within_rlimit_memlock_without_capability_succeeds,
            mlock_beyond_rlimit_memlock_as_root_succeeds,
            // 8. Accounting.
            touching_anonymous_pages_grows_rss_and_page_tables_and_munmap_restores_them,
            vmhwm_and_vmpeak_keep_the_peak_after_munmap,
            meminfo_page_tables_tracks_page_table_pages,
            stat_refresh_takes_a_write_from_root_and_reads_empty,
            // 9. /proc formats.
            proc_meminfo_format,
            proc_self_status_format,
            proc_self_statm_format,
            proc_self_stat_format,
            proc_self_smaps_rollup_format,
            smaps_lists_each_vma_with_its_size_rss_and_flags,
            pagemap_reports_which_pages_are_present,
            proc_self_maps_format,
            maps_shows_shared_anonymous_mapping_as_deleted_dev_zero,
            // 10. MAP_GROWSDOWN, MAP_FIXED_NOREPLACE.
            map_growsdown_mapping_grows_when_touched_below_its_start,
            map_growsdown_mapping_does_not_grow_within_guard_gap_of_mapping_below,
            mmap_fixed_noreplace_partly_over_existing_mapping_is_eexist,
            mmap_checks_length_and_type_before_the_file_access_mode,
            // 11. What fork copies (vma_needs_copy).
            fork_child_starts_without_the_shared_pages_its_parent_touched,
            fork_child_starts_without_page_tables_for_shared_memory,
            fork_child_starts_without_the_pages_of_an_unwritten_private_file_mapping,
            fork_child_still_sees_its_parents_private_file_copies,
            // 12. mremap moving whole page tables.
            mremap_between_2m_aligned_ranges_moves_every_page_with_its_data,
            mremap_between_differently_aligned_ranges_moves_every_page_with_its_data,
        ],
    )
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

type SysResult = Result<i64, Errno>;

const RW: i32 = PROT_READ | PROT_WRITE;
const MREMAP_DONTUNMAP: i32 = 4;

fn munmap(addr: usize, len: usize) -> SysResult {
    sys!(SYS_munmap, addr, len)
}

fn mprotect(addr: usize, len: usize, prot: i32) -> SysResult {
    sys!(SYS_mprotect, addr, len, prot)
}

fn mremap(old: usize, old_len: usize, new_len: usize, flags: i32, new_addr: usize) -> Result<usize, Errno> {
    sys!(SYS_mremap, old, old_len, new_len, flags, new_addr).map(|a| a as usize)
}

fn madvise(addr: usize, len: usize, advice: i32) -> SysResult {
    sys!(SYS_madvise, addr, len, advice)
}

fn msync(addr: usize, len: usize, flags: i32) -> SysResult {
    sys!(SYS_msync, addr, len, flags)
}

fn mlock(addr: usize, len: usize) -> SysResult {
    sys!(SYS_mlock, addr, len)
}

fn munlock(addr: usize, len: usize) -> SysResult {
    sys!(SYS_munlock, addr, len)
}

fn ftruncate(fd: i32, len: usize) -> SysResult {
    sys!(SYS_ftruncate, fd, len)
}

fn pread_at(fd: i32, len: usize, off: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let n = sys!(SYS_pread64, fd, buf.as_mut_ptr(), len, off).expect("pread64") as usize;
    buf.truncate(n);
    buf
}

fn pwrite_at(fd: i32, data: &[u8], off: usize) {
    let n = sys!(SYS_pwrite64, fd, data.as_ptr(), data.len(), off).expect("pwrite64") as usize;
    assert_eq!(n, data.len(), "short pwrite");
}

/// The fill byte of page `i` of a test region.
fn pat(i: usize) -> u8 {
    0xa0 + i as u8
}

/// Asserts that every byte of the page at `addr` is `v`.
#[track_caller]
fn assert_page(addr: usize, v: u8, what: &str) {
    let mem = unsafe { std::slice::from_raw_parts(addr as *const u8, PAGE) };
    if let Some(i) = mem.iter().position(|&b| b != v) {
        panic!("{what}: byte {i} of page {addr:#x} is {:#x}, expected {v:#x}", mem[i]);
    }
}

fn fill_page(addr: usize, v: u8) {
    unsafe { std::ptr::write_bytes(addr as *mut u8, v, PAGE) };
}

/// What a child that touched an address saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// No fault: the access worked.
    None,
    /// SIGSEGV with si_code SEGV_MAPERR at the address (no mapping).
    SegvMaperr,
    /// SIGSEGV with si_code SEGV_ACCERR at the address (protection).
    SegvAccerr,
    /// SIGBUS with si_code BUS_ADRERR at the address (page beyond the object's end).
    Bus,
    /// Anything else (exit 99: a fault at another address).
    Other(Exit),
}

static FAULT_AT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn report_fault(sig: c_int, info: *mut siginfo_t, _: *mut c_void) {
    let info = unsafe { &*info };
    let addr = unsafe { info.si_addr() } as usize;
    let code = if addr != FAULT_AT.load(Ordering::SeqCst) {
        99
    } else if sig == SIGSEGV {
        10 + info.si_code
    } else if sig == SIGBUS {
        20 + info.si_code
    } else {
        98
    };
    unsafe { _exit(code) };
}

/// Touches `addr` (a load, or a store of 0x5a if `store`) in a forked child and reports
/// how that went, including the fault's si_code (checked to be at `addr`).
fn fault_in_child(addr: usize, store: bool) -> Fault {
    let exit = child_exit(|| {
        FAULT_AT.store(addr, Ordering::SeqCst);
        set_handler(SIGSEGV, siginfo_handler(report_fault), SA_SIGINFO, &[]).unwrap();
        set_handler(SIGBUS, siginfo_handler(report_fault), SA_SIGINFO, &[]).unwrap();
        if store {
            store_byte(addr, 0x5a);
        } else {
            load_byte(addr);
        }
        0
    });
    match exit {
        Exit::Code(0) => Fault::None,
        Exit::Code(c) if c == 10 + SEGV_MAPERR => Fault::SegvMaperr,
        Exit::Code(c) if c == 10 + SEGV_ACCERR => Fault::SegvAccerr,
        Exit::Code(c) if c == 20 + BUS_ADRERR => Fault::Bus,
        other => Fault::Other(other),
    }
}

/// The three kinds of mapping the partial-operation tests run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    PrivateAnon,
    SharedAnon,
    SharedFile,
}

/// A read-write test mapping whose page `i` is filled with `pat(i)` (for a file, the file
/// holds those pages and the mapping shows them). On drop, unmaps `pieces` (which the test
/// keeps up to date: never a range something else may have been mapped into) and closes
/// the file.
struct Region {
    kind: Kind,
    addr: usize,
    fd: i32,
    path: String,
    pieces: Vec<(usize, usize)>,
    _dir: Option<TempDir>,
}

impl Region {
    fn new(kind: Kind, pages: usize) -> Region {
        let len = pages * PAGE;
        let (addr, fd, path, dir) = match kind {
            Kind::PrivateAnon | Kind::SharedAnon => {
                let share = if kind == Kind::SharedAnon { MAP_SHARED } else { MAP_PRIVATE };
                let a = mmap(0, len, RW, share | MAP_ANONYMOUS, -1, 0).expect("mmap");
                for i in 0..pages {
                    fill_page(a + i * PAGE, pat(i));
                }
                (a, -1, String::new(), None)
            }
            Kind::SharedFile => {
                let dir = TempDir::new();
                let data: Vec<u8> = (0..len).map(|o| pat(o / PAGE)).collect();
                let path = dir.file("f", &data);
                let fd = open(&path, O_RDWR, 0).unwrap();
                let a = mmap(0, len, RW, MAP_SHARED, fd, 0).expect("mmap");
                (a, fd, path, Some(dir))
            }
        };
        Region { kind, addr, fd, path, pieces: vec![(addr, len)], _dir: dir }
    }

    fn page(&self, i: usize) -> usize {
        self.addr + i * PAGE
    }

    fn shared(&self) -> bool {
        self.kind != Kind::PrivateAnon
    }

    /// The perms field /proc/self/maps shows for this mapping with protection `prot`.
    fn perms(&self, prot: &str) -> String {
        format!("{prot}{}", if self.shared() { 's' } else { 'p' })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        for &(a, l) in &self.pieces {
            let _ = munmap(a, l);
        }
        if self.fd >= 0 {
            let _ = close(self.fd);
        }
    }
}

/// One line of /proc/self/maps: `start-end perms offset dev inode path`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MapLine {
    start: usize,
    end: usize,
    perms: String,
    offset: u64,
    major: u32,
    minor: u32,
    inode: u64,
    path: String,
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses and checks the format of one maps (or smaps_rollup header) line.
fn parse_map_line(line: &str) -> Result<MapLine, String> {
    let bad = |why: &str| Err(format!("{why}: {line:?}"));
    let mut rest = line;
    let mut next = || -> Option<&str> {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        let (tok, r) = t.split_at(end);
        rest = r;
        (!tok.is_empty()).then_some(tok)
    };
    let (Some(range), Some(perms), Some(offset), Some(dev), Some(inode)) = (next(), next(), next(), next(), next())
    else {
        return bad("fewer than 5 fields");
    };
    let Some((s, e)) = range.split_once('-') else { return bad("no '-' in range") };
    if !is_hex(s) || !is_hex(e) || s.len() < 8 || e.len() < 8 {
        return bad("range not lower-case hex of at least 8 digits");
    }
    let (start, end) = (usize::from_str_radix(s, 16).unwrap(), usize::from_str_radix(e, 16).unwrap());
    if start >= end || start % PAGE != 0 || end % PAGE != 0 {
        return bad("range not page-aligned and non-empty");
    }
    let p = perms.as_bytes();
    if p.len() != 4
        || !b"r-".contains(&p[0])
        || !b"w-".contains(&p[1])
        || !b"x-".contains(&p[2])
        || !b"ps".contains(&p[3])
    {
        return bad("bad perms");
    }
    if !is_hex(offset) || offset.len() < 8 {
        return bad("offset not hex of at least 8 digits");
    }
    let Some((ma, mi)) = dev.split_once(':') else { return bad("dev not major:minor") };
    if !is_hex(ma) || !is_hex(mi) || ma.len() < 2 || mi.len() < 2 {
        return bad("dev not hex major:minor of at least 2 digits each");
    }
    let Ok(inode) = inode.parse::<u64>() else { return bad("inode not decimal") };
    // Linux ends a line without a path with one space after the inode, and pads a line with
    // a path with spaces so that the path starts at column 73 (or one space after the
    // inode, if that is further).
    let path = rest.trim_start_matches(' ').to_string();
    if path.is_empty() {
        if rest != " " {
            return bad("a line without a path must end with exactly one space after the inode");
        }
    } else {
        let col = line.len() - rest.len();
        if line.len() - path.len() != (col + 1).max(73) {
            return bad("the path must start at column 73 (or one space after the inode)");
        }
    }
    Ok(MapLine {
        start,
        end,
        perms: perms.to_string(),
        offset: u64::from_str_radix(offset, 16).unwrap(),
        major: u32::from_str_radix(ma, 16).unwrap(),
        minor: u32::from_str_radix(mi, 16).unwrap(),
        inode,
        path,
    })
}

fn maps() -> Vec<MapLine> {
    read_proc(c"/proc/self/maps").lines().map(|l| parse_map_line(l).unwrap()).collect()
}

/// The maps line containing `addr`, if any.
fn map_at(maps: &[MapLine], addr: usize) -> Option<MapLine> {
    maps.iter().find(|m| m.start <= addr && addr < m.end).cloned()
}

fn getpid() -> i64 {
    sys!(SYS_getpid).unwrap()
}

/// Whether we run on our kernel (its release names it) rather than on Linux.
fn on_our_kernel() -> bool {
    let mut u: utsname = unsafe { std::mem::zeroed() };
    sys!(SYS_uname, &mut u as *mut utsname).unwrap();
    let release = unsafe { CStr::from_ptr(u.release.as_ptr()) };
    release.to_string_lossy().contains("mshare")
}

fn setrlimit(res: u32, soft: u64, hard: u64) {
    let r = rlimit { rlim_cur: soft, rlim_max: hard };
    sys!(SYS_setrlimit, res, &r as *const rlimit).unwrap();
}

/// In a child: limits RLIMIT_MEMLOCK to `limit` bytes and becomes uid 1000, which drops
/// every capability (CAP_IPC_LOCK included).
fn drop_to_unprivileged_with_memlock(limit: u64) {
    setrlimit(RLIMIT_MEMLOCK as u32, limit, limit);
    sys!(SYS_setresgid, 1000, 1000, 1000).unwrap();
    sys!(SYS_setresuid, 1000, 1000, 1000).unwrap();
    assert!(status_kb("VmLck") == 0, "a forked child starts with nothing locked");
}

// ---------------------------------------------------------------------------------------
// 1. Partial operations
// ---------------------------------------------------------------------------------------

fn munmap_middle_page_keeps_outer_pages(kind: Kind) {
    let mut r = Region::new(kind, 3);
    munmap(r.page(1), PAGE).unwrap();
    r.pieces = vec![(r.page(0), PAGE), (r.page(2), PAGE)];
    assert_page(r.page(0), pat(0), "first page");
    assert_page(r.page(2), pat(2), "last page");
    assert_eq!(fault_in_child(r.page(1) + 8, false), Fault::SegvMaperr, "the unmapped middle");
    // The outer parts are still the same object at the same offsets.
    store_byte(r.page(2) + 1, 0x11);
    store_byte(r.page(0) + 1, 0x22);
    if kind == Kind::SharedFile {
        assert_eq!(pread_at(r.fd, 1, 2 * PAGE + 1), [0x11]);
        assert_eq!(pread_at(r.fd, 1, 1), [0x22]);
        assert_eq!(pread_at(r.fd, 1, PAGE + 1), [pat(1)], "the file keeps the unmapped page");
    }
    if kind == Kind::SharedAnon {
        let exit = child_exit(|| {
            store_byte(r.page(2) + 2, 0x33);
            0
        });
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(load_byte(r.page(2) + 2), 0x33, "still shared with a child after the split");
    }
}

fn munmap_middle_page_of_private_anonymous_mapping_keeps_outer_pages() {
    munmap_middle_page_keeps_outer_pages(Kind::PrivateAnon)
}

fn munmap_middle_page_of_shared_anonymous_mapping_keeps_outer_pages() {
    munmap_middle_page_keeps_outer_pages(Kind::SharedAnon)
}

fn munmap_middle_page_of_shared_file_mapping_keeps_outer_pages() {
    munmap_middle_page_keeps_outer_pages(Kind::SharedFile)
}

fn mprotect_middle_page_faults_only_there(kind: Kind) {
    let r = Region::new(kind, 3);
    mprotect(r.page(1), PAGE, PROT_READ).unwrap();
    assert_eq!(fault_in_child(r.page(1) + 100, true), Fault::SegvAccerr, "a write to the read-only middle");
    assert_eq!(fault_in_child(r.page(1) + 100, false), Fault::None, "a read of the middle");
    assert_page(r.page(1), pat(1), "the read-only middle keeps its contents");
    store_byte(r.page(0) + PAGE - 1, 0x44);
    store_byte(r.page(2), 0x55);
    assert_eq!((load_byte(r.page(0) + PAGE - 1), load_byte(r.page(2))), (0x44, 0x55));
    if kind == Kind::SharedFile {
        assert_eq!(pread_at(r.fd, 1, PAGE - 1), [0x44]);
        assert_eq!(pread_at(r.fd, 1, 2 * PAGE), [0x55]);
    }
    mprotect(r.page(1), PAGE, RW).unwrap();
    store_byte(r.page(1), 0x66);
    assert_eq!(load_byte(r.page(1)), 0x66, "writable again");
}

fn mprotect_middle_page_of_private_anonymous_mapping_faults_only_there() {
    mprotect_middle_page_faults_only_there(Kind::PrivateAnon)
}

fn mprotect_middle_page_of_shared_anonymous_mapping_faults_only_there() {
    mprotect_middle_page_faults_only_there(Kind::SharedAnon)
}

fn mprotect_middle_page_of_shared_file_mapping_faults_only_there() {
    mprotect_middle_page_faults_only_there(Kind::SharedFile)
}

/// Checks a maps line against the region: bounds (`None`: not checked, as an anonymous
/// mapping may merge with a neighbour), perms, and for a file its offset (the line maps
/// the region's page `page` at `at`), inode and path.
#[track_caller]
fn check_line(
    r: &Region,
    m: &MapLine,
    start: Option<usize>,
    end: Option<usize>,
    prot: &str,
    (at, page): (usize, usize),
) {
    if let Some(s) = start {
        assert_eq!(m.start, s, "start of {m:?}");
    }
    if let Some(e) = end {
        assert_eq!(m.end, e, "end of {m:?}");
    }
    assert_eq!(m.perms, r.perms(prot), "perms of {m:?}");
    if r.kind == Kind::SharedFile {
        // The offset is that of the line's first page, which need not be the region's.
        assert_eq!(m.offset as usize, page * PAGE - (at - m.start), "offset of {m:?}");
        assert_eq!(m.inode, std::fs::metadata(&r.path).unwrap().ino(), "inode of {m:?}");
        assert_eq!(m.path, r.path, "path of {m:?}");
    }
}

fn maps_shows_split_by_munmap(kind: Kind) {
    let mut r = Region::new(kind, 3);
    munmap(r.page(1), PAGE).unwrap();
    r.pieces = vec![(r.page(0), PAGE), (r.page(2), PAGE)];
    let maps = maps();
    let first = map_at(&maps, r.page(0)).expect("first page in maps");
    let last = map_at(&maps, r.page(2)).expect("last page in maps");
    assert_eq!(map_at(&maps, r.page(1)), None, "the unmapped middle is in no line");
    check_line(&r, &first, None, Some(r.page(1)), "rw-", (r.page(0), 0));
    check_line(&r, &last, Some(r.page(2)), None, "rw-", (r.page(2), 2));
    if kind != Kind::PrivateAnon {
        assert_eq!(first.start, r.page(0), "a shared mapping merges with no neighbour");
        assert_eq!(last.end, r.page(3), "a shared mapping merges with no neighbour");
    }
}

fn maps_shows_private_anonymous_mapping_split_by_munmap() {
    maps_shows_split_by_munmap(Kind::PrivateAnon)
}

fn maps_shows_shared_anonymous_mapping_split_by_munmap() {
    maps_shows_split_by_munmap(Kind::SharedAnon)
}

fn maps_shows_shared_file_mapping_split_by_munmap() {
    maps_shows_split_by_munmap(Kind::SharedFile)
}

fn maps_shows_split_by_mprotect(kind: Kind) {
    let r = Region::new(kind, 3);
    mprotect(r.page(1), PAGE, PROT_READ).unwrap();
    let maps = maps();
    let first = map_at(&maps, r.page(0)).expect("first page in maps");
    let middle = map_at(&maps, r.page(1)).expect("middle page in maps");
    let last = map_at(&maps, r.page(2)).expect("last page in maps");
    check_line(&r, &first, None, Some(r.page(1)), "rw-", (r.page(0), 0));
    check_line(&r, &middle, Some(r.page(1)), Some(r.page(2)), "r--", (r.page(1), 1));
    check_line(&r, &last, Some(r.page(2)), None, "rw-", (r.page(2), 2));
    // Restoring the protection merges the three back into one line.
    mprotect(r.page(1), PAGE, RW).unwrap();
    let maps = self::maps();
    let whole = map_at(&maps, r.page(1)).unwrap();
    assert!(whole.start <= r.page(0) && whole.end >= r.page(3), "merged again: {whole:?}");
}

fn maps_shows_private_anonymous_mapping_split_by_mprotect() {
    maps_shows_split_by_mprotect(Kind::PrivateAnon)
}

fn maps_shows_shared_anonymous_mapping_split_by_mprotect() {
    maps_shows_split_by_mprotect(Kind::SharedAnon)
}

fn maps_shows_shared_file_mapping_split_by_mprotect() {
    maps_shows_split_by_mprotect(Kind::SharedFile)
}

fn mremap_shrinks_in_place(kind: Kind) {
    let mut r = Region::new(kind, 4);
    assert_eq!(mremap(r.addr, 4 * PAGE, 2 * PAGE, 0, 0), Ok(r.addr));
    r.pieces = vec![(r.addr, 2 * PAGE)];
    assert_page(r.page(0), pat(0), "page 0");
    assert_page(r.page(1), pat(1), "page 1");
    assert_eq!(fault_in_child(r.page(2), false), Fault::SegvMaperr, "page 2 is gone");
    assert_eq!(fault_in_child(r.page(3) + 5, false), Fault::SegvMaperr, "page 3 is gone");
}

fn mremap_shrinks_private_anonymous_mapping_in_place() {
    mremap_shrinks_in_place(Kind::PrivateAnon)
}

fn mremap_shrinks_shared_anonymous_mapping_in_place() {
    mremap_shrinks_in_place(Kind::SharedAnon)
}

fn mremap_shrinks_shared_file_mapping_in_place() {
    mremap_shrinks_in_place(Kind::SharedFile)
}

/// Grows a mapping back over pages it gave up: without MREMAP_MAYMOVE it stays in place.
/// The regrown pages of a private anonymous mapping are new zero pages; those of a shared
/// mapping show the object again (Linux keeps a shared anonymous mapping's pages in its
/// shmem object, which munmap of part of the mapping does not shrink).
fn mremap_grows_in_place(kind: Kind) {
    let mut r = Region::new(kind, 4);
    munmap(r.page(2), 2 * PAGE).unwrap();
    r.pieces = vec![(r.addr, 2 * PAGE)];
    assert_eq!(mremap(r.addr, 2 * PAGE, 4 * PAGE, 0, 0), Ok(r.addr));
    r.pieces = vec![(r.addr, 4 * PAGE)];
    assert_page(r.page(0), pat(0), "page 0");
    assert_page(r.page(1), pat(1), "page 1");
    let regrown = |i| if kind == Kind::PrivateAnon { 0 } else { pat(i) };
    assert_page(r.page(2), regrown(2), "page 2");
    assert_page(r.page(3), regrown(3), "page 3");
    store_byte(r.page(3) + 9, 0x77);
    assert_eq!(load_byte(r.page(3) + 9), 0x77);
    if kind == Kind::SharedFile {
        assert_eq!(pread_at(r.fd, 1, 3 * PAGE + 9), [0x77], "the grown part is the file at its offset");
    }
}

fn mremap_grows_private_anonymous_mapping_in_place_when_next_pages_are_free() {
    mremap_grows_in_place(Kind::PrivateAnon)
}

fn mremap_grows_shared_anonymous_mapping_in_place_when_next_pages_are_free() {
    mremap_grows_in_place(Kind::SharedAnon)
}

fn mremap_grows_shared_file_mapping_in_place_when_next_pages_are_free() {
    mremap_grows_in_place(Kind::SharedFile)
}

/// A 3-page region whose last page is replaced by a blocker: growing the first two pages to
/// four must move. The moved mapping keeps its contents; the old range is unmapped. Page 2
/// of the new mapping is, for a shared mapping, the object's page 2 again; page 3 lies
/// beyond the 3-page object (file or shmem) and raises SIGBUS.
fn mremap_maymove_moves_blocked(kind: Kind) {
    let mut r = Region::new(kind, 3);
    munmap(r.page(2), PAGE).unwrap();
    let blocker = mmap(r.page(2), PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    r.pieces = vec![(r.addr, 2 * PAGE)];
    assert_eq!(blocker, Ok(r.page(2)));
    r.pieces.push((r.page(2), PAGE));
    let b = mremap(r.addr, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE, 0).unwrap();
    r.pieces = vec![(r.page(2), PAGE), (b, 4 * PAGE)];
    assert_ne!(b, r.addr, "moved");
    assert_page(b, pat(0), "page 0 at the new address");
    assert_page(b + PAGE, pat(1), "page 1 at the new address");
    assert_eq!(fault_in_child(r.page(0), false), Fault::SegvMaperr, "the old range is unmapped");
    assert_eq!(fault_in_child(r.page(1), false), Fault::SegvMaperr, "the old range is unmapped");
    if kind == Kind::PrivateAnon {
        assert_page(b + 2 * PAGE, 0, "new page 2");
        assert_page(b + 3 * PAGE, 0, "new page 3");
    } else {
        assert_page(b + 2 * PAGE, pat(2), "page 2 of the object");
        assert_eq!(fault_in_child(b + 3 * PAGE, false), Fault::Bus, "beyond the object");
    }
    store_byte(b + 1, 0x12);
    if kind == Kind::SharedFile {
        assert_eq!(pread_at(r.fd, 1, 1), [0x12], "the moved mapping still writes the file");
    }
}

fn mremap_maymove_moves_blocked_private_anonymous_mapping() {
    mremap_maymove_moves_blocked(Kind::PrivateAnon)
}

fn mremap_maymove_moves_blocked_shared_anonymous_mapping() {
    mremap_maymove_moves_blocked(Kind::SharedAnon)
}

fn mremap_maymove_moves_blocked_shared_file_mapping() {
    mremap_maymove_moves_blocked(Kind::SharedFile)
}

/// MREMAP_FIXED moves the middle page of a mapping to a chosen address, replacing what
/// was there; the outer pages stay.
fn mremap_fixed_moves_middle_page(kind: Kind) {
    let mut r = Region::new(kind, 3);
    let target = mmap(0, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    r.pieces.push((target, PAGE));
    let got = mremap(r.page(1), PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    assert_eq!(got, Ok(target));
    r.pieces = vec![(r.page(0), PAGE), (r.page(2), PAGE), (target, PAGE)];
    assert_page(target, pat(1), "the moved page");
    assert_page(r.page(0), pat(0), "page 0 stays");
    assert_page(r.page(2), pat(2), "page 2 stays");
    assert_eq!(fault_in_child(r.page(1), false), Fault::SegvMaperr, "the old middle is unmapped");
    store_byte(target + 3, 0x21); // writable, as the moved mapping was, not as the target
    if kind == Kind::SharedFile {
        assert_eq!(pread_at(r.fd, 1, PAGE + 3), [0x21], "the moved page is still the file at offset 1 page");
    }
    let maps = maps();
    let line = map_at(&maps, target).unwrap();
    check_line(&r, &line, None, None, "rw-", (target, 1));
    if r.shared() {
        assert_eq!((line.start, line.end), (target, target + PAGE), "a shared mapping merges with no neighbour");
    }
}

fn mremap_fixed_moves_middle_page_of_private_anonymous_mapping() {
    mremap_fixed_moves_middle_page(Kind::PrivateAnon)
}

fn mremap_fixed_moves_middle_page_of_shared_anonymous_mapping() {
    mremap_fixed_moves_middle_page(Kind::SharedAnon)
}

fn mremap_fixed_moves_middle_page_of_shared_file_mapping() {
    mremap_fixed_moves_middle_page(Kind::SharedFile)
}

/// Linux backs a shared anonymous mapping with a shmem object of the mapping's size, and
/// mremap does not resize the object: pages grown past the original size raise SIGBUS.
fn mremap_growing_shared_anonymous_mapping_past_its_size_is_sigbus_there() {
    let mut r = Region::new(Kind::SharedAnon, 2);
    let b = mremap(r.addr, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE, 0).unwrap();
    r.pieces = vec![(b, 4 * PAGE)];
    assert_page(b + PAGE, pat(1), "old contents");
    assert_eq!(fault_in_child(b + 2 * PAGE, false), Fault::Bus, "past the object");
    assert_eq!(fault_in_child(b + 3 * PAGE, true), Fault::Bus, "past the object");
}

/// MREMAP_DONTUNMAP moves the pages but leaves the old range mapped: for a private
/// anonymous mapping it then reads as zero (fresh pages), the new range has the data.
fn mremap_dontunmap_leaves_old_private_anonymous_range_mapped_and_zero() {
    let mut r = Region::new(Kind::PrivateAnon, 2);
    let b = mremap(r.addr, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0).unwrap();
    r.pieces.push((b, 2 * PAGE));
    assert_ne!(b, r.addr);
    assert_page(b, pat(0), "new page 0");
    assert_page(b + PAGE, pat(1), "new page 1");
    assert_page(r.page(0), 0, "old page 0");
    assert_page(r.page(1), 0, "old page 1");
    store_byte(r.page(1), 3);
    assert_eq!((load_byte(r.page(1)), load_byte(b + PAGE)), (3, pat(1)), "the two ranges are separate");
}

fn mremap_unaligned_old_address_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 2);
    assert_errno!(mremap(r.addr + 1, PAGE, PAGE, 0, 0), EINVAL);
    assert_errno!(mremap(r.addr + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0), EINVAL);
}

fn mremap_unknown_flags_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 1);
    assert_errno!(mremap(r.addr, PAGE, PAGE, 8, 0), EINVAL);
    assert_errno!(mremap(r.addr, PAGE, 2 * PAGE, MREMAP_MAYMOVE | 0x100, 0), EINVAL);
}

fn mremap_fixed_without_maymove_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 1);
    let target = mmap_anon(PAGE);
    assert_errno!(mremap(r.addr, PAGE, PAGE, MREMAP_FIXED, target), EINVAL);
    assert_page(r.addr, pat(0), "untouched");
    munmap(target, PAGE).unwrap();
}

fn mremap_dontunmap_without_maymove_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 1);
    assert_errno!(mremap(r.addr, PAGE, PAGE, MREMAP_DONTUNMAP, 0), EINVAL);
}

fn mremap_dontunmap_with_different_lengths_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 2);
    assert_errno!(mremap(r.addr, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0), EINVAL);
    assert_errno!(mremap(r.addr, 2 * PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0), EINVAL);
}

fn mremap_new_len_zero_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 1);
    assert_errno!(mremap(r.addr, PAGE, 0, 0, 0), EINVAL);
    assert_errno!(mremap(r.addr, PAGE, 0, MREMAP_MAYMOVE, 0), EINVAL);
}

fn mremap_grow_without_maymove_into_occupied_range_is_enomem() {
    let mut r = Region::new(Kind::PrivateAnon, 3);
    // Page 2 becomes another mapping (read-only, so it does not merge): page 1 cannot grow.
    munmap(r.page(2), PAGE).unwrap();
    r.pieces = vec![(r.addr, 2 * PAGE)];
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    assert_eq!(mmap(r.page(2), PAGE, PROT_READ, flags, -1, 0), Ok(r.page(2)));
    r.pieces.push((r.page(2), PAGE));
    assert_errno!(mremap(r.addr, 2 * PAGE, 3 * PAGE, 0, 0), ENOMEM);
    // A range that does not end at its mapping's end cannot grow in place either.
    assert_errno!(mremap(r.addr, PAGE, 2 * PAGE, 0, 0), ENOMEM);
    assert_page(r.page(0), pat(0), "untouched");
    assert_page(r.page(1), pat(1), "untouched");
    assert_page(r.page(2), 0, "the other mapping is untouched");
}

fn mremap_fixed_unaligned_new_address_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 1);
    let target = mmap_anon(2 * PAGE);
    assert_errno!(mremap(r.addr, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target + 1), EINVAL);
    assert_page(r.addr, pat(0), "untouched");
    munmap(target, 2 * PAGE).unwrap();
}

/// The new range of MREMAP_FIXED may not overlap the old one.
fn mremap_fixed_onto_overlapping_range_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 4);
    let flags = MREMAP_MAYMOVE | MREMAP_FIXED;
    assert_errno!(mremap(r.addr, 2 * PAGE, 2 * PAGE, flags, r.page(1)), EINVAL);
    assert_errno!(mremap(r.page(1), 2 * PAGE, 2 * PAGE, flags, r.addr), EINVAL);
    assert_errno!(mremap(r.addr, 2 * PAGE, 2 * PAGE, flags, r.addr), EINVAL);
    assert_page(r.page(1), pat(1), "untouched");
}

fn mremap_of_unmapped_range_is_efault() {
    let a = mmap_anon(2 * PAGE);
    munmap(a, 2 * PAGE).unwrap();
    assert_errno!(mremap(a, PAGE, PAGE, 0, 0), EFAULT);
    assert_errno!(mremap(a, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0), EFAULT);
}

// ---------------------------------------------------------------------------------------
// 2. Files
// ---------------------------------------------------------------------------------------

/// A file of `pages` pages filled with `pat(page)`, open read-write.
fn pattern_file(dir: &TempDir, pages: usize) -> i32 {
    let data: Vec<u8> = (0..pages * PAGE).map(|o| pat(o / PAGE)).collect();
    open(&dir.file("f", &data), O_RDWR, 0).unwrap()
}

fn ftruncate_grow_makes_new_page_usable_in_existing_shared_mapping() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 1);
    let a = mmap(0, 2 * PAGE, RW, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(fault_in_child(a + PAGE, false), Fault::Bus, "page 2 is past the end of the file");
    ftruncate(fd, 2 * PAGE).unwrap();
    assert_page(a + PAGE, 0, "the new page of the file");
    store_byte(a + PAGE + 10, 0x77);
    assert_eq!(pread_at(fd, 1, PAGE + 10), [0x77], "the write reaches the file");
    assert_page(a, pat(0), "page 1");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

fn ftruncate_shrink_makes_shared_mapping_sigbus_past_new_end() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 2);
    let a = mmap(0, 2 * PAGE, RW, MAP_SHARED, fd, 0).unwrap();
    assert_page(a + PAGE, pat(1), "page 2 before"); // mapped in now
    ftruncate(fd, PAGE).unwrap();
    assert_eq!(fault_in_child(a + PAGE, false), Fault::Bus, "read past the new end");
    assert_eq!(fault_in_child(a + PAGE + 1, true), Fault::Bus, "write past the new end");
    assert_page(a, pat(0), "page 1 stays");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

fn ftruncate_shrink_makes_private_mapping_sigbus_past_new_end() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 2);
    let a = mmap(0, 2 * PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    assert_page(a + PAGE, pat(1), "page 2 before"); // mapped in (the page cache's page)
    ftruncate(fd, PAGE).unwrap();
    assert_eq!(fault_in_child(a + PAGE, false), Fault::Bus, "read past the new end");
    assert_page(a, pat(0), "page 1 stays");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

/// Linux's truncate unmaps even the private copies a MAP_PRIVATE mapping made of pages past
/// the new end (unmap_mapping_range with even_cows): the written page is lost and the next
/// access raises SIGBUS.
fn ftruncate_shrink_discards_private_copies_past_new_end() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 2);
    let a = mmap(0, 2 * PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    store_byte(a + PAGE, 1); // a private copy of page 2
    store_byte(a, 2); // and of page 1
    ftruncate(fd, PAGE).unwrap();
    assert_eq!(fault_in_child(a + PAGE, false), Fault::Bus, "the private copy past the end is gone");
    assert_eq!(load_byte(a), 2, "the private copy before the end stays");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

fn ftruncate_shrink_zeroes_partial_last_page_beyond_eof_in_mapping() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 2);
    let a = mmap(0, 2 * PAGE, RW, MAP_SHARED, fd, 0).unwrap();
    assert_page(a + PAGE, pat(1), "page 2 before");
    ftruncate(fd, PAGE + 100).unwrap();
    let page = unsafe { std::slice::from_raw_parts((a + PAGE) as *const u8, PAGE) };
    assert!(page[..100].iter().all(|&b| b == pat(1)), "the part before the end stays");
    assert!(page[100..].iter().all(|&b| b == 0), "the part past the end reads zero");
    // Growing the file again does not bring the old bytes back.
    ftruncate(fd, 2 * PAGE).unwrap();
    assert_eq!(pread_at(fd, 2, PAGE + 99), [pat(1), 0]);
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

fn shared_file_mapping_writes_are_visible_to_read_without_msync() {
    let r = Region::new(Kind::SharedFile, 2);
    store_byte(r.page(1) + 5, 0x99);
    store_byte(r.page(0), 0x98);
    assert_eq!(pread_at(r.fd, 1, PAGE + 5), [0x99]);
    let mut buf = [0u8; 1];
    assert_eq!(read(r.fd, &mut buf), Ok(1));
    assert_eq!(buf, [0x98]);
}

fn write_to_file_is_visible_in_shared_mapping() {
    let r = Region::new(Kind::SharedFile, 2);
    assert_page(r.page(1), pat(1), "before"); // mapped in before the write
    pwrite_at(r.fd, b"hello", PAGE + 7);
    assert_eq!(write(r.fd, b"w"), Ok(1));
    let got = unsafe { std::slice::from_raw_parts((r.page(1) + 7) as *const u8, 5) };
    assert_eq!(got, b"hello");
    assert_eq!(load_byte(r.page(0)), b'w');
}

/// A MAP_PRIVATE file page the process has only read is the page cache's page: later
/// write()s to the file show through it. A page the process wrote is its own copy.
fn private_file_mapping_sees_file_writes_until_page_is_written() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 2);
    let a = mmap(0, 2 * PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    store_byte(a, 0x01); // page 1: private copy
    assert_eq!(load_byte(a + PAGE), pat(1)); // page 2: read only
    pwrite_at(fd, &[0x42; 2], PAGE - 1);
    assert_eq!(load_byte(a + PAGE), 0x42, "the unwritten page sees the file write");
    assert_eq!(load_byte(a + PAGE - 1), pat(0), "the written page keeps its copy");
    assert_eq!(load_byte(a), 0x01);
    store_byte(a + PAGE + 1, 0x03);
    pwrite_at(fd, &[0x43], PAGE + 2);
    assert_eq!(load_byte(a + PAGE + 2), pat(1), "now the page is a private copy too");
    assert_eq!(pread_at(fd, 2, PAGE), [0x42, pat(1)], "private writes never reach the file");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

// ---------------------------------------------------------------------------------------
// 3. fork
// ---------------------------------------------------------------------------------------

/// Forks a child that waits for the parent's go, then runs `f`; the parent runs `before_go`
/// after the fork and before the go, then waits. Returns the child's exit.
fn fork_with_go(before_go: impl FnOnce(), f: impl FnOnce() -> i32) -> Exit {
    let (r, w) = pipe(0).unwrap();
    let pid = fork_child(|| {
        let _ = close(w);
        let mut b = [0u8; 1];
        if read(r, &mut b) != Ok(1) {
            return 100;
        }
        f()
    });
    close(r).unwrap();
    before_go();
    write(w, b"g").unwrap();
    close(w).unwrap();
    wait_child(pid)
}

fn cow_both_ways(a: usize) {
    store_byte(a, 1);
    let exit = fork_with_go(
        || store_byte(a, 2), // the parent writes after the fork
        || {
            let seen = load_byte(a);
            store_byte(a + 1, 3);
            seen as i32
        },
    );
    assert_eq!(exit, Exit::Code(1), "the child does not see the parent's write");
    assert_eq!(load_byte(a), 2);
    assert_eq!(load_byte(a + 1), pat(0), "the parent does not see the child's write");
}

fn private_anonymous_pages_are_copied_on_write_both_ways_after_fork() {
    let r = Region::new(Kind::PrivateAnon, 1);
    cow_both_ways(r.addr);
}

fn private_file_pages_are_copied_on_write_both_ways_after_fork() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 1);
    let a = mmap(0, PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    cow_both_ways(a);
    assert_eq!(pread_at(fd, 2, 0), [pat(0), pat(0)], "the file is unchanged");
    munmap(a, PAGE).unwrap();
    close(fd).unwrap();
}

fn shared_anonymous_pages_touched_before_fork_are_shared_both_ways() {
    let r = Region::new(Kind::SharedAnon, 1);
    let a = r.addr;
    let exit = fork_with_go(
        || store_byte(a, 7),
        || {
            let seen = load_byte(a);
            store_byte(a + 1, 8);
            seen as i32
        },
    );
    assert_eq!(exit, Exit::Code(7), "the child sees the parent's write");
    assert_eq!(load_byte(a + 1), 8, "the parent sees the child's write");
}

fn shared_anonymous_pages_first_touched_after_fork_are_shared_both_ways() {
    let a = mmap(0, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    let exit = fork_with_go(
        || store_byte(a, 7), // first touch of page 1, in the parent
        || {
            let seen = load_byte(a);
            store_byte(a + PAGE, 8); // first touch of page 2, in the child
            seen as i32
        },
    );
    assert_eq!(exit, Exit::Code(7), "the child sees the parent's write");
    assert_eq!(load_byte(a + PAGE), 8, "the parent sees the child's write");
    munmap(a, 2 * PAGE).unwrap();
}

fn madvise_dontfork_range_is_not_mapped_in_child() {
    let r = Region::new(Kind::PrivateAnon, 2);
    madvise(r.page(0), PAGE, MADV_DONTFORK).unwrap();
    assert_eq!(fault_in_child(r.page(0), false), Fault::SegvMaperr, "not in the child");
    assert_eq!(fault_in_child(r.page(1), false), Fault::None, "the rest is inherited");
    assert_page(r.page(0), pat(0), "still mapped in the parent");
}

/// MADV_WIPEONFORK: the child has the range, zero-filled; the parent keeps its data and
/// the rest of the mapping is copied as usual.
fn madvise_wipeonfork_gives_the_child_zeroed_memory() {
    let r = Region::new(Kind::PrivateAnon, 2);
    madvise(r.page(0), PAGE, MADV_WIPEONFORK).unwrap();
    assert_eq!(child_exit(|| load_byte(r.page(0) + 9) as i32), Exit::Code(0), "wiped in the child");
    assert_eq!(child_exit(|| load_byte(r.page(1) + 9) as i32), Exit::Code(pat(1) as i32), "copied");
    assert_page(r.page(0), pat(0), "the parent keeps its data");
}

fn madvise_keeponfork_makes_the_child_copy_again() {
    let r = Region::new(Kind::PrivateAnon, 1);
    madvise(r.addr, PAGE, MADV_WIPEONFORK).unwrap();
    madvise(r.addr, PAGE, MADV_KEEPONFORK).unwrap();
    assert_eq!(child_exit(|| load_byte(r.addr + 9) as i32), Exit::Code(pat(0) as i32));
}

/// Only private anonymous memory can be wiped on fork.
fn madvise_wipeonfork_on_shared_or_file_memory_is_einval() {
    let shared = Region::new(Kind::SharedAnon, 1);
    assert_errno!(madvise(shared.addr, PAGE, MADV_WIPEONFORK), EINVAL);
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 1);
    let a = mmap(0, PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    assert_errno!(madvise(a, PAGE, MADV_WIPEONFORK), EINVAL);
    munmap(a, PAGE).unwrap();
    close(fd).unwrap();
}

fn madvise_dofork_makes_range_inherited_again() {
    let r = Region::new(Kind::PrivateAnon, 1);
    madvise(r.addr, PAGE, MADV_DONTFORK).unwrap();
    madvise(r.addr, PAGE, MADV_DOFORK).unwrap();
    assert_eq!(child_exit(|| load_byte(r.addr + 9) as i32), Exit::Code(pat(0) as i32));
}

// ---------------------------------------------------------------------------------------
// 4. msync
// ---------------------------------------------------------------------------------------

fn msync_sync_and_async_together_is_einval() {
    let r = Region::new(Kind::SharedFile, 1);
    assert_errno!(msync(r.addr, PAGE, MS_SYNC | MS_ASYNC), EINVAL);
}

fn msync_unaligned_address_is_einval() {
    let r = Region::new(Kind::SharedFile, 2);
    assert_errno!(msync(r.addr + 1, PAGE, MS_SYNC), EINVAL);
}

fn msync_unknown_flags_is_einval() {
    let r = Region::new(Kind::SharedFile, 1);
    assert_errno!(msync(r.addr, PAGE, 8), EINVAL);
    assert_errno!(msync(r.addr, PAGE, MS_SYNC | 0x100), EINVAL);
}

/// msync still syncs the mapped parts, then reports the hole.
fn msync_range_with_unmapped_hole_is_enomem() {
    let mut r = Region::new(Kind::SharedFile, 3);
    munmap(r.page(1), PAGE).unwrap();
    r.pieces = vec![(r.page(0), PAGE), (r.page(2), PAGE)];
    assert_errno!(msync(r.addr, 3 * PAGE, MS_SYNC), ENOMEM);
    assert_errno!(msync(r.addr, 3 * PAGE, MS_ASYNC), ENOMEM);
    assert_eq!(msync(r.addr, PAGE, MS_SYNC), Ok(0), "the mapped part alone is fine");
}

fn msync_invalidate_on_mlocked_range_is_ebusy() {
    run_in_child(|| {
        let r = Region::new(Kind::PrivateAnon, 2);
        mlock(r.page(1), PAGE).unwrap();
        assert_errno!(msync(r.addr, 2 * PAGE, MS_INVALIDATE), EBUSY);
        assert_eq!(msync(r.addr, PAGE, MS_INVALIDATE), Ok(0), "the unlocked page alone is fine");
        munlock(r.page(1), PAGE).unwrap();
        assert_eq!(msync(r.addr, 2 * PAGE, MS_INVALIDATE), Ok(0), "fine once unlocked");
    });
}

fn msync_zero_length_is_ok() {
    let r = Region::new(Kind::SharedFile, 1);
    assert_eq!(msync(r.addr, 0, MS_SYNC), Ok(0));
    let a = mmap_anon(PAGE);
    munmap(a, PAGE).unwrap();
    assert_eq!(msync(a, 0, MS_ASYNC), Ok(0), "even where nothing is mapped");
}

// ---------------------------------------------------------------------------------------
// 5. madvise
// ---------------------------------------------------------------------------------------

/// MADV_DONTNEED over an unlocked page and an mlocked one is EINVAL at the locked piece,
/// after the first piece was zapped: the first page reads zero (no stale translation
/// survives the error), the locked page keeps its byte.
fn madvise_dontneed_failing_on_a_locked_piece_has_zapped_the_pieces_before_it() {
    let a = mmap_anon(2 * PAGE);
    store_byte(a, 0x5a);
    store_byte(a + PAGE, 0x6b);
    mlock(a + PAGE, PAGE).unwrap();
    assert_errno!(madvise(a, 2 * PAGE, MADV_DONTNEED), EINVAL);
    assert_eq!(load_byte(a), 0, "the zapped page reads as new memory");
    assert_eq!(load_byte(a + PAGE), 0x6b, "the locked page is untouched");
    munmap(a, 2 * PAGE).unwrap();
}

/// After mlockall(MCL_FUTURE) a growing break is locked (VmLck) like any new mapping.
fn brk_growth_after_mlockall_future_is_locked() {
    run_in_child(|| {
        sys!(SYS_mlockall, MCL_FUTURE).unwrap();
        let before = status_kb("VmLck");
        let cur = sys!(SYS_brk, 0).unwrap() as usize;
        let top = (cur + PAGE - 1) / PAGE * PAGE + 64 * PAGE;
        assert_eq!(sys!(SYS_brk, top).unwrap() as usize, top);
        assert!(
            status_kb("VmLck") >= before + 64 * PAGE as u64 / 1024,
            "VmLck {} after {}",
            status_kb("VmLck"),
            before
        );
    });
}

/// A locked mapping that mremap grows (moving it) has its new pages faulted in.
fn mremap_growth_of_a_locked_mapping_is_populated() {
    let a = mmap_anon(4 * PAGE);
    mlock(a, 4 * PAGE).unwrap();
    let b = mremap(a, 4 * PAGE, 16 * PAGE, MREMAP_MAYMOVE, 0).unwrap();
    let mut vec = [0u8; 16];
    mincore(b, 16 * PAGE, vec.as_mut_ptr() as usize).unwrap();
    assert!(vec.iter().all(|v| v & 1 == 1), "resident: {vec:?}");
    munmap(b, 16 * PAGE).unwrap();
}

/// Growing a locked mapping past RLIMIT_MEMLOCK (without CAP_IPC_LOCK) is EAGAIN and
/// leaves it as it was.
fn mremap_growth_of_a_locked_mapping_past_rlimit_memlock_is_eagain() {
    run_in_child(|| {
        drop_to_unprivileged_with_memlock(8 * PAGE as u64);
        let a = mmap_anon(4 * PAGE);
        mlock(a, 4 * PAGE).unwrap();
        assert_errno!(mremap(a, 4 * PAGE, 16 * PAGE, MREMAP_MAYMOVE, 0), EAGAIN);
        assert_eq!(status_kb("VmLck"), 4 * PAGE as u64 / 1024);
    });
}

/// MAP_POPULATE of a private writable file mapping faults its pages in for writing, as
/// Linux's populate_vma_page_range: private copies, counted in RssAnon.
fn map_populate_of_a_private_writable_file_mapping_makes_private_copies() {
    const N: usize = 256;
    let dir = TempDir::new();
    let fd = pattern_file(&dir, N);
    let before = status_kb("RssAnon");
    let a = mmap(0, N * PAGE, RW, MAP_PRIVATE | MAP_POPULATE, fd, 0).unwrap();
    let after = status_kb("RssAnon");
    // Linux 6.1 may hold up to 64 faults per thread out of the counters.
    let want = ((N - 64) * PAGE / 1024) as u64;
    assert!(after >= before + want, "RssAnon {before} kB before, {after} kB after populating {N} pages");
    assert_page(a + 7 * PAGE, pat(7), "the copies hold the file's data");
    munmap(a, N * PAGE).unwrap();
    close(fd).unwrap();
}

/// A hole punched in a file leaves a private mapping's copy-on-write copies alone and
/// takes only the file's pages it still mapped (Linux's unmap_mapping_range without
/// even_cows): the written page keeps the write, the read-only page reads the hole.
fn punching_a_hole_keeps_a_private_mappings_copies() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 2);
    let a = mmap(0, 2 * PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    store_byte(a + 5, 0x77);
    assert_eq!(load_byte(a + PAGE + 5), pat(1));
    sys!(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2 * PAGE).unwrap();
    assert_eq!(load_byte(a + 5), 0x77, "the private copy survives");
    assert_eq!(load_byte(a + 6), pat(0), "all of it");
    assert_eq!(load_byte(a + PAGE + 5), 0, "the file's page is gone: the hole reads zero");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

fn madvise_dontneed_on_shared_file_mapping_keeps_data() {
    let r = Region::new(Kind::SharedFile, 2);
    store_byte(r.page(1) + 4, 0x31);
    madvise(r.addr, 2 * PAGE, MADV_DONTNEED).unwrap();
    assert_eq!(load_byte(r.page(1) + 4), 0x31, "re-read from the file");
    assert_page(r.page(0), pat(0), "page 1");
}

fn madvise_dontneed_on_shared_anonymous_mapping_keeps_data() {
    let r = Region::new(Kind::SharedAnon, 2);
    madvise(r.addr, 2 * PAGE, MADV_DONTNEED).unwrap();
    assert_page(r.page(0), pat(0), "page 1");
    assert_page(r.page(1), pat(1), "page 2");
}

fn madvise_dontneed_on_private_file_mapping_reverts_to_file_contents() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 1);
    let a = mmap(0, PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    store_byte(a, 0x10);
    madvise(a, PAGE, MADV_DONTNEED).unwrap();
    assert_page(a, pat(0), "the private copy is dropped");
    munmap(a, PAGE).unwrap();
    close(fd).unwrap();
}

fn madvise_remove_on_shared_anonymous_mapping_punches_hole() {
    let r = Region::new(Kind::SharedAnon, 3);
    madvise(r.page(1), PAGE, MADV_REMOVE).unwrap();
    assert_page(r.page(1), 0, "the hole");
    assert_page(r.page(0), pat(0), "page 1");
    assert_page(r.page(2), pat(2), "page 3");
    assert_eq!(child_exit(|| load_byte(r.page(1) + 1) as i32), Exit::Code(0), "a hole for a child too");
}

/// The scratch directory is tmpfs in our kernel and ext4 on the host: both punch holes.
fn madvise_remove_on_shared_file_mapping_punches_hole_keeping_size() {
    let r = Region::new(Kind::SharedFile, 3);
    madvise(r.page(1), PAGE, MADV_REMOVE).unwrap();
    assert_page(r.page(1), 0, "the hole in the mapping");
    assert_eq!(pread_at(r.fd, PAGE, PAGE), vec![0u8; PAGE], "the hole in the file");
    assert_eq!(std::fs::metadata(&r.path).unwrap().len(), 3 * PAGE as u64, "size unchanged");
    assert_page(r.page(0), pat(0), "page 1");
    assert_page(r.page(2), pat(2), "page 3");
}

fn madvise_remove_on_private_anonymous_mapping_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 1);
    assert_errno!(madvise(r.addr, PAGE, MADV_REMOVE), EINVAL);
    assert_page(r.addr, pat(0), "untouched");
}

/// MADV_REMOVE needs a shared writable mapping: on a private file mapping it is EACCES.
fn madvise_remove_on_private_file_mapping_is_eacces() {
    let dir = TempDir::new();
    let fd = pattern_file(&dir, 1);
    let a = mmap(0, PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    assert_errno!(madvise(a, PAGE, MADV_REMOVE), EACCES);
    munmap(a, PAGE).unwrap();
    close(fd).unwrap();
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), vec![pat(0); PAGE]);
}

/// MADV_FREE: the contents become undefined (kept until memory pressure, else zero).
fn madvise_free_on_private_anonymous_mapping_succeeds() {
    let r = Region::new(Kind::PrivateAnon, 4);
    madvise(r.addr, 4 * PAGE, MADV_FREE).unwrap();
    let v = load_byte(r.page(2));
    assert!(v == 0 || v == pat(2), "page 3 reads {v:#x}");
    store_byte(r.page(2), 0x61);
    assert_eq!(load_byte(r.page(2)), 0x61, "usable after");
}

fn madvise_willneed_succeeds() {
    let r = Region::new(Kind::PrivateAnon, 2);
    assert_eq!(madvise(r.addr, 2 * PAGE, MADV_WILLNEED), Ok(0));
    let f = Region::new(Kind::SharedFile, 2);
    assert_eq!(madvise(f.addr, 2 * PAGE, MADV_WILLNEED), Ok(0));
    assert_page(f.page(1), pat(1), "file page");
}

fn madvise_unknown_advice_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 1);
    assert_errno!(madvise(r.addr, PAGE, 9999), EINVAL);
    assert_errno!(madvise(r.addr, PAGE, -1), EINVAL);
}

fn madvise_unaligned_start_is_einval() {
    let r = Region::new(Kind::PrivateAnon, 2);
    assert_errno!(madvise(r.addr + 1, PAGE, MADV_DONTNEED), EINVAL);
    assert_errno!(madvise(r.addr + 1, PAGE, MADV_NORMAL), EINVAL);
    assert_page(r.addr, pat(0), "untouched");
}

/// The advice still applies to the mapped parts; the hole is reported as ENOMEM.
fn madvise_range_with_unmapped_part_is_enomem() {
    let mut r = Region::new(Kind::PrivateAnon, 3);
    munmap(r.page(1), PAGE).unwrap();
    r.pieces = vec![(r.page(0), PAGE), (r.page(2), PAGE)];
    assert_errno!(madvise(r.addr, 3 * PAGE, MADV_NORMAL), ENOMEM);
    assert_errno!(madvise(r.addr, 3 * PAGE, MADV_DONTNEED), ENOMEM);
    assert_page(r.page(0), 0, "DONTNEED applied to the mapped part before the hole");
    assert_page(r.page(2), 0, "DONTNEED applied to the mapped part after the hole");
}

// ---------------------------------------------------------------------------------------
// 6. mincore
// ---------------------------------------------------------------------------------------

fn mincore(addr: usize, len: usize, vec: usize) -> SysResult {
    sys!(SYS_mincore, addr, len, vec)
}

fn mincore_reports_only_touched_anonymous_pages_resident() {
    let a = mmap_anon(8 * PAGE);
    let touched = [1, 4, 6];
    for &i in &touched {
        store_byte(a + i * PAGE, 1);
    }
    let mut vec = [0xffu8; 8];
    mincore(a, 8 * PAGE, vec.as_mut_ptr() as usize).unwrap();
    for (i, v) in vec.iter().enumerate() {
        assert_eq!(v & 1 != 0, touched.contains(&i), "page {i}: vec byte {v:#x} (all: {vec:?})");
    }
    munmap(a, 8 * PAGE).unwrap();
}

fn mincore_unaligned_address_is_einval() {
    let a = mmap_anon(PAGE);
    let mut vec = [0u8; 2];
    assert_errno!(mincore(a + 1, PAGE, vec.as_mut_ptr() as usize), EINVAL);
    munmap(a, PAGE).unwrap();
}

fn mincore_unmapped_range_is_enomem() {
    let a = mmap_anon(3 * PAGE);
    munmap(a + PAGE, 2 * PAGE).unwrap();
    let mut vec = [0u8; 3];
    assert_errno!(mincore(a + PAGE, PAGE, vec.as_mut_ptr() as usize), ENOMEM);
    assert_errno!(mincore(a, 3 * PAGE, vec.as_mut_ptr() as usize), ENOMEM);
    munmap(a, PAGE).unwrap();
}

/// 8 TiB of address space, one VMA, with two pages touched (first and last): the range
/// operations below must cost what is mapped, not the length (a page-by-page walk takes
/// 2^31 steps and never finishes here).
const HUGE: usize = 8 << 40;

fn huge_sparse_mapping() -> usize {
    let a = mmap(0, HUGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0).unwrap();
    for page in [a, a + HUGE - PAGE] {
        fill_page(page, 0x5a);
    }
    a
}

fn mprotect_of_a_huge_sparse_mapping_costs_only_its_pages() {
    let a = huge_sparse_mapping();
    mprotect(a, HUGE, PROT_READ).unwrap();
    assert_page(a + HUGE - PAGE, 0x5a, "last page after mprotect");
    munmap(a, HUGE).unwrap();
}

fn fork_with_a_huge_sparse_mapping_costs_only_its_pages() {
    let a = huge_sparse_mapping();
    let how = child_exit(|| (load_byte(a + HUGE - PAGE) == 0x5a) as i32);
    assert_eq!(how, Exit::Code(1));
    munmap(a, HUGE).unwrap();
}

fn mremap_of_a_huge_sparse_mapping_costs_only_its_pages() {
    let a = huge_sparse_mapping();
    let dst = mmap(0, HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0).unwrap();
    let c = mremap(a, HUGE, HUGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst).unwrap();
    assert_eq!(c, dst);
    assert_page(c + HUGE - PAGE, 0x5a, "last page after two moves");
    munmap(c, HUGE).unwrap();
}

fn smaps_of_a_huge_sparse_mapping_costs_only_its_pages() {
    let a = huge_sparse_mapping();
    let smaps = read_proc(c"/proc/self/smaps");
    // Its own VMA: MAP_NORESERVE keeps it from merging with other anonymous memory.
    let head = format!("{:x}-{:x} ", a, a + HUGE);
    let entry = smaps.split(&head).nth(1).expect("mapping missing from smaps");
    let flags = entry.lines().find(|l| l.starts_with("VmFlags:")).expect("VmFlags line");
    assert!(flags.split_whitespace().any(|f| f == "nr"), "no nr in {flags}");
    munmap(a, HUGE).unwrap();
}

/// A length covering the whole user half (from address 0, never mapped) is ENOMEM when
/// its vector (one byte per page, 32 GiB here) lies within user space: the kernel must
/// not size anything by it. The vector is never written, so its address need not be
/// mapped.
fn mincore_over_the_whole_user_half_is_enomem() {
    assert_errno!(mincore(0, 0x7fff_ffff_f000, 0x10000), ENOMEM);
}

/// A vector that would run past the end of user space is EFAULT, checked before any page.
fn mincore_vector_too_long_for_user_space_is_efault() {
    let mut vec = [0u8; 8];
    assert_errno!(mincore(0, 0x7fff_ffff_f000, vec.as_mut_ptr() as usize), EFAULT);
}

/// Linux fills the vector a VMA at a time: the bytes for the mapped part before a hole
/// are written, then the hole gives ENOMEM.
fn mincore_writes_the_mapped_part_before_enomem() {
    let a = mmap_anon(3 * PAGE);
    store_byte(a, 1);
    munmap(a + PAGE, 2 * PAGE).unwrap();
    let mut vec = [0xffu8; 3];
    assert_errno!(mincore(a, 3 * PAGE, vec.as_mut_ptr() as usize), ENOMEM);
    assert_eq!(vec[0], 1, "the mapped, touched page's byte: {vec:?}");
    assert_eq!(vec[1..], [0xff, 0xff], "nothing written for the hole: {vec:?}");
    munmap(a, PAGE).unwrap();
}

/// Lengths and addresses at the top of the 64-bit range get Linux's answers,
/// never an overflow inside the kernel. Linux rounds lengths up with a
/// wrapping PAGE_ALIGN, so a huge length is an empty range to msync and mlock
/// (success), and EINVAL or ENOMEM elsewhere. Growing a file to the largest `off_t` is
/// EFBIG on most filesystems (ext4's limit is 16 TiB) but succeeds on tmpfs, whose limit
/// is that `off_t` (MAX_LFS_FILESIZE). Run in a child: a kernel that
/// mishandles one of these may take the calling process down with it.
fn extreme_lengths_and_addresses_fail_cleanly() {
    run_in_child(|| {
        const TOP: u64 = !0xfff; // the last page of the 64-bit space
        let raw = |nr: i64, a: [u64; 6]| -> Result<i64, i32> {
            let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
            if r == -1 {
                Err(std::io::Error::last_os_error().raw_os_error().unwrap())
            } else {
                Ok(r)
            }
        };
        let a = mmap_anon(PAGE) as u64;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let mut vec = [0u8; 8];
        let dir = TempDir::new();
        let fd = open(&dir.file("f", b"x"), O_RDWR, 0).unwrap() as u64;
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstatfs(fd as i32, &mut fs) }, 0, "fstatfs");
        let on_tmpfs = fs.f_type as i64 == libc::TMPFS_MAGIC;
        let grow_to_max = if on_tmpfs { Ok(0) } else { Err(libc::EFBIG) };
        type Case<'a> = (&'a str, i64, [u64; 6], Result<i64, i32>);
        let cases: [Case; 15] = [
            ("mmap huge", libc::SYS_mmap, [0, u64::MAX, rw, anon, u64::MAX, 0], Err(libc::ENOMEM)),
            (
                "mmap fixed at top",
                libc::SYS_mmap,
                [TOP, PAGE as u64, rw, anon | libc::MAP_FIXED as u64, u64::MAX, 0],
                Err(libc::ENOMEM),
            ),
            ("munmap top", libc::SYS_munmap, [TOP, PAGE as u64, 0, 0, 0, 0], Err(libc::EINVAL)),
            ("munmap huge", libc::SYS_munmap, [a, u64::MAX, 0, 0, 0, 0], Err(libc::EINVAL)),
            ("mprotect huge", libc::SYS_mprotect, [a, u64::MAX, rw, 0, 0, 0], Err(libc::ENOMEM)),
            ("mremap huge", libc::SYS_mremap, [a, PAGE as u64, u64::MAX, 1, 0, 0], Err(libc::EINVAL)),
            ("madvise huge", libc::SYS_madvise, [a, u64::MAX, libc::MADV_DONTNEED as u64, 0, 0, 0], Err(libc::EINVAL)),
            ("mincore huge", libc::SYS_mincore, [a, u64::MAX, vec.as_mut_ptr() as u64, 0, 0, 0], Err(libc::ENOMEM)),
            ("msync huge", libc::SYS_msync, [a, u64::MAX, libc::MS_SYNC as u64, 0, 0, 0], Ok(0)),
            ("mlock huge", libc::SYS_mlock, [a, u64::MAX, 0, 0, 0, 0], Ok(0)),
            ("read into top", libc::SYS_read, [fd, TOP, 16, 0, 0, 0], Err(libc::EFAULT)),
            ("ftruncate huge", libc::SYS_ftruncate, [fd, i64::MAX as u64, 0, 0, 0, 0], grow_to_max),
            ("fallocate past max", libc::SYS_fallocate, [fd, 0, (i64::MAX - 10) as u64, 100, 0, 0], Err(libc::EFBIG)),
            (
                "lseek overflow",
                libc::SYS_lseek,
                [fd, i64::MAX as u64, libc::SEEK_END as u64, 0, 0, 0],
                Err(libc::EINVAL),
            ),
            ("pwrite at max", libc::SYS_pwrite64, [fd, a, 1, i64::MAX as u64, 0, 0], Err(libc::EINVAL)),
        ];
        for (name, nr, args, want) in cases {
            assert_eq!(raw(nr, args), want, "{name}");
        }
        // brk never fails: it returns the unchanged break.
        let cur = raw(libc::SYS_brk, [0; 6]).unwrap();
        assert_eq!(raw(libc::SYS_brk, [u64::MAX, 0, 0, 0, 0, 0]), Ok(cur));
        assert_eq!(raw(libc::SYS_brk, [TOP, 0, 0, 0, 0, 0]), Ok(cur));
        close(fd as i32).unwrap();
        munmap(a as usize, PAGE).unwrap();
    });
}

/// A deterministic storm of memory syscalls with random arguments inside a
/// 64-page window (and now and then at the extremes), in children that may
/// well die of their own doing. What is checked is the system: every child
/// ends with an exit status or a signal, and the parent carries on. In this
/// kernel the runner's end-of-run frame count also sees what they left.
fn random_memory_syscalls_leave_the_kernel_standing() {
    const WINDOW: u64 = 0x2000_0000_0000;
    const PAGES: u64 = 64;
    for child in 0..12u64 {
        let exit = child_exit(move || {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (child * 0x1234_5678_9abc);
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for _ in 0..300 {
                let r = next();
                let addr = if r % 17 == 0 {
                    next()
                } else {
                    WINDOW + (next() % PAGES) * PAGE as u64 + if r % 13 == 0 { 123 } else { 0 }
                };
                let len = if r % 19 == 0 {
                    next()
                } else {
                    (next() % (PAGES + 8)) * PAGE as u64 + if r % 11 == 0 { 7 } else { 0 }
                };
                let prot = next() % 8;
                let flags = [libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, libc::MAP_SHARED | libc::MAP_ANONYMOUS]
                    [(next() % 2) as usize]
                    | if next() % 2 == 0 { libc::MAP_FIXED } else { 0 };
                unsafe {
                    match next() % 10 {
                        0 | 1 => libc::syscall(libc::SYS_mmap, addr, len, prot, flags, -1, 0),
                        2 => libc::syscall(libc::SYS_munmap, addr, len),
                        3 => libc::syscall(libc::SYS_mprotect, addr, len, prot),
                        4 => libc::syscall(
                            libc::SYS_mremap,
                            addr,
                            len,
                            (next() % PAGES) * PAGE as u64,
                            next() % 8,
                            WINDOW + (next() % PAGES) * PAGE as u64,
                        ),
                        5 => libc::syscall(
                            libc::SYS_madvise,
                            addr,
                            len,
                            [4, 8, 9, 10, 11, 3, 22, 23][(next() % 8) as usize],
                        ),
                        6 => libc::syscall(libc::SYS_msync, addr, len, [1, 2, 4, 6][(next() % 4) as usize]),
                        7 => libc::syscall(libc::SYS_mlock, addr, len.min(16 * PAGE as u64)),
                        8 => libc::syscall(libc::SYS_munlock, addr, len),
                        _ => {
                            // Touch a page of the window: may fault, which is the point.
                            let p = (WINDOW + (next() % PAGES) * PAGE as u64) as *mut u8;
                            let mut v = [0u8; 1];
                            if libc::syscall(libc::SYS_mincore, p as u64 & !(PAGE as u64 - 1), PAGE, v.as_mut_ptr())
                                == 0
                            {
                                libc::syscall(libc::SYS_getpid);
                            }
                            0
                        }
                    };
                }
            }
            0
        });
        assert!(matches!(exit, Exit::Code(0) | Exit::Signal(_)), "child {child}: {exit:?}");
    }
}

fn mincore_bad_vector_pointer_is_efault() {
    let a = mmap_anon(PAGE);
    store_byte(a, 1);
    assert_errno!(mincore(a, PAGE, BAD_PTR), EFAULT);
    munmap(a, PAGE).unwrap();
}

// ---------------------------------------------------------------------------------------
// 7. mlock family (each in a child: locks and limits are per process)
// ---------------------------------------------------------------------------------------

fn mlock_adds_to_vmlck_and_munlock_removes() {
    run_in_child(|| {
        let a = mmap_anon(16 * PAGE);
        let before = status_kb("VmLck");
        mlock(a, 16 * PAGE).unwrap();
        assert_eq!(status_kb("VmLck"), before + 64);
        munlock(a + 4 * PAGE, 4 * PAGE).unwrap();
        assert_eq!(status_kb("VmLck"), before + 48, "partial munlock");
        munlock(a, 16 * PAGE).unwrap();
        assert_eq!(status_kb("VmLck"), before);
        munmap(a, 16 * PAGE).unwrap();
    });
}

/// MLOCK_ONFAULT locks pages as they are faulted in, but VmLck counts the whole range at
/// once.
fn mlock2_onfault_is_accepted_and_counted_in_vmlck() {
    run_in_child(|| {
        let a = mmap_anon(8 * PAGE);
        let before = status_kb("VmLck");
        sys!(SYS_mlock2, a, 8 * PAGE, MLOCK_ONFAULT).unwrap();
        assert_eq!(status_kb("VmLck"), before + 32);
        store_byte(a, 1);
        munlock(a, 8 * PAGE).unwrap();
        assert_eq!(status_kb("VmLck"), before);
        sys!(SYS_mlock2, a, 8 * PAGE, 0).unwrap(); // flags 0 is plain mlock
        assert_eq!(status_kb("VmLck"), before + 32);
    });
}

fn mlock2_unknown_flags_is_einval() {
    run_in_child(|| {
        let a = mmap_anon(PAGE);
        assert_errno!(sys!(SYS_mlock2, a, PAGE, 2), EINVAL);
        assert_errno!(sys!(SYS_mlock2, a, PAGE, MLOCK_ONFAULT | 0x80), EINVAL);
        assert_eq!(status_kb("VmLck"), 0);
    });
}

fn mlockall_future_locks_new_mappings() {
    run_in_child(|| {
        sys!(SYS_mlockall, MCL_CURRENT | MCL_FUTURE).unwrap();
        let before = status_kb("VmLck");
        assert!(before > 0, "MCL_CURRENT locked the existing mappings");
        let a = mmap_anon(16 * PAGE);
        assert_eq!(status_kb("VmLck"), before + 64, "the new mapping is locked");
        let mut vec = [0u8; 16];
        mincore(a, 16 * PAGE, vec.as_mut_ptr() as usize).unwrap();
        assert!(vec.iter().all(|v| v & 1 == 1), "and populated: {vec:?}");
        munmap(a, 16 * PAGE).unwrap();
        assert_eq!(status_kb("VmLck"), before, "munmap unlocks");
    });
}

fn munlockall_unlocks_everything() {
    run_in_child(|| {
        sys!(SYS_mlockall, MCL_CURRENT | MCL_FUTURE).unwrap();
        assert!(status_kb("VmLck") > 0);
        sys!(SYS_munlockall).unwrap();
        assert_eq!(status_kb("VmLck"), 0);
        let a = mmap_anon(4 * PAGE);
        assert_eq!(status_kb("VmLck"), 0, "MCL_FUTURE is cleared too");
        munmap(a, 4 * PAGE).unwrap();
    });
}

/// 0, unknown bits and MCL_ONFAULT alone are EINVAL.
fn mlockall_bad_flags_is_einval() {
    run_in_child(|| {
        assert_errno!(sys!(SYS_mlockall, 0), EINVAL);
        assert_errno!(sys!(SYS_mlockall, 8), EINVAL);
        assert_errno!(sys!(SYS_mlockall, MCL_CURRENT | 0x100), EINVAL);
        assert_errno!(sys!(SYS_mlockall, MCL_ONFAULT), EINVAL);
        assert_eq!(status_kb("VmLck"), 0);
    });
}

fn mlock_beyond_rlimit_memlock_without_capability_is_enomem() {
    run_in_child(|| {
        let a = mmap_anon(32 * PAGE);
        drop_to_unprivileged_with_memlock(64 * 1024);
        assert_errno!(mlock(a, 32 * PAGE), ENOMEM);
        assert_errno!(sys!(SYS_mlock2, a, 32 * PAGE, MLOCK_ONFAULT), ENOMEM);
        assert_eq!(status_kb("VmLck"), 0);
        // The limit counts what is already locked.
        mlock(a, 12 * PAGE).unwrap();
        assert_errno!(mlock(a + 12 * PAGE, 8 * PAGE), ENOMEM);
        assert_eq!(status_kb("VmLck"), 48);
    });
}

/// With RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK, locking is not permitted at all.
fn mlock_with_zero_rlimit_memlock_without_capability_is_eperm() {
    run_in_child(|| {
        let a = mmap_anon(PAGE);
        drop_to_unprivileged_with_memlock(0);
        assert_errno!(mlock(a, PAGE), EPERM);
        assert_errno!(sys!(SYS_mlockall, MCL_CURRENT), EPERM);
    });
}

/// An RLIMIT_MEMLOCK of 1 to 4095 bytes permits locking but locks no page: ENOMEM.
fn mlock_with_rlimit_memlock_below_a_page_without_capability_is_enomem() {
    run_in_child(|| {
        let a = mmap_anon(PAGE);
        drop_to_unprivileged_with_memlock(4095);
        assert_errno!(mlock(a, PAGE), ENOMEM);
    });
}

fn mlock_within_rlimit_memlock_without_capability_succeeds() {
    run_in_child(|| {
        let a = mmap_anon(16 * PAGE);
        drop_to_unprivileged_with_memlock(64 * 1024);
        mlock(a, 16 * PAGE).unwrap(); // exactly the limit
        assert_eq!(status_kb("VmLck"), 64);
        munlock(a, 16 * PAGE).unwrap();
        assert_eq!(status_kb("VmLck"), 0);
    });
}

/// CAP_IPC_LOCK ignores RLIMIT_MEMLOCK (even a zero one).
fn mlock_beyond_rlimit_memlock_as_root_succeeds() {
    run_in_child(|| {
        let a = mmap_anon(32 * PAGE);
        setrlimit(RLIMIT_MEMLOCK as u32, 64 * 1024, 64 * 1024);
        mlock(a, 32 * PAGE).unwrap();
        assert_eq!(status_kb("VmLck"), 128);
        munlock(a, 32 * PAGE).unwrap();
        setrlimit(RLIMIT_MEMLOCK as u32, 0, 0);
        mlock(a, PAGE).unwrap();
        assert_eq!(status_kb("VmLck"), 4);
    });
}

// ---------------------------------------------------------------------------------------
// 8. Accounting
// ---------------------------------------------------------------------------------------

/// A 512 GiB-aligned address (PML4 slot 128) far from anything else: mapping there needs a
/// fresh PDPT, PD and PT.
const FRESH_REGION: usize = 0x4000_0000_0000;
const ACCT_PAGES: usize = 300;

#[derive(Clone, Copy, Debug)]
struct Counters {
    rss: u64,
    anon: u64,
    pte: u64,
    page_tables: u64,
}

/// Reads the counters into a preallocated, pre-touched buffer so that reading them does
/// not change them.
fn counters(buf: &mut Vec<u8>) -> Counters {
    read_proc_into(c"/proc/self/status", buf, ProcBuf::Fixed);
    let status = std::str::from_utf8(buf).unwrap();
    let (rss, anon, pte) = (proc_field(status, "VmRSS"), proc_field(status, "RssAnon"), proc_field(status, "VmPTE"));
    read_proc_into(c"/proc/meminfo", buf, ProcBuf::Fixed);
    let page_tables = proc_field(std::str::from_utf8(buf).unwrap(), "PageTables");
    Counters { rss, anon, pte, page_tables }
}

fn touch_fresh_region(buf: &mut Vec<u8>) -> (Counters, Counters, Counters) {
    counters(buf); // warm up: the same code, stack and buffer pages as the real reads
    let before = counters(buf);
    let len = ACCT_PAGES * PAGE;
    let a = mmap(FRESH_REGION, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
        .unwrap_or_else(|e| panic!("mmap at {FRESH_REGION:#x}: {e}"));
    assert_eq!(a, FRESH_REGION);
    for p in (a..a + len).step_by(PAGE) {
        store_byte(p, 1);
    }
    let during = counters(buf);
    munmap(a, len).unwrap();
    let after = counters(buf);
    (before, during, after)
}

/// On our kernel the counts are exact: 300 pages of RSS (all anonymous) and 3 page-table
/// pages (PDPT, PD, PT), all given back by munmap. Linux counts RSS in batches (6.1: each
/// thread caches up to 64 faults' worth before adding them to the mm's counters; 6.2 on:
/// per-CPU counters) and may keep or share page tables differently, so on Linux only the
/// direction is checked, within 64 pages.
fn touching_anonymous_pages_grows_rss_and_page_tables_and_munmap_restores_them() {
    let mut buf = proc_buffer();
    let (before, during, after) = touch_fresh_region(&mut buf);
    let n_kb = (ACCT_PAGES * 4) as u64;
    let msg = format!("before {before:?}, during {during:?}, after {after:?}");
    if on_our_kernel() {
        assert_eq!(during.rss, before.rss + n_kb, "VmRSS: {msg}");
        assert_eq!(during.anon, before.anon + n_kb, "RssAnon: {msg}");
        assert_eq!(during.pte, before.pte + 12, "VmPTE: {msg}");
        assert_eq!(after.rss, before.rss, "VmRSS after munmap: {msg}");
        assert_eq!(after.anon, before.anon, "RssAnon after munmap: {msg}");
        assert_eq!(after.pte, before.pte, "VmPTE after munmap: {msg}");
    } else {
        let slack = 64 * 4;
        assert!(during.rss + slack >= before.rss + n_kb, "VmRSS: {msg}");
        assert!(during.anon + slack >= before.anon + n_kb, "RssAnon: {msg}");
        assert!(during.pte >= before.pte + 4, "VmPTE: {msg}");
        assert!(after.rss.abs_diff(before.rss) <= slack, "VmRSS after munmap: {msg}");
        assert!(after.pte <= during.pte, "VmPTE after munmap: {msg}");
    }
}

/// /proc/meminfo's PageTables changes with this process's page tables (exactly, on our
/// kernel; on Linux other processes make it move too). The figure is global: a child of
/// an earlier test still being torn down can free its tables meanwhile, so on our kernel
/// the measurement is repeated until one attempt saw nothing else change (the figure back
/// where it started after munmap), and that attempt's growth must be exact.
fn meminfo_page_tables_tracks_page_table_pages() {
    let mut buf = proc_buffer();
    let (mut before, mut during, mut after) = touch_fresh_region(&mut buf);
    for _ in 0..10 {
        if !on_our_kernel() || after.page_tables == before.page_tables {
            break;
        }
        sleep_ms(20);
        (before, during, after) = touch_fresh_region(&mut buf);
    }
    let msg = format!("before {before:?}, during {during:?}, after {after:?}");
    if on_our_kernel() {
        assert_eq!(after.page_tables, before.page_tables, "PageTables after munmap: {msg}");
        // The PTE and PMD tables; the PDPT is in VmPTE only (as Linux 6.1's NR_PAGETABLE).
        assert_eq!(during.page_tables, before.page_tables + 8, "PageTables: {msg}");
    } else {
        // Linux adds each CPU's page-table count to PageTables in batches whose size grows
        // with the CPU count (vmstat thresholds): fold them (stat_refresh) before reading.
        let len = ACCT_PAGES * PAGE;
        let a = mmap(FRESH_REGION, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0).unwrap();
        for p in (a..a + len).step_by(PAGE) {
            store_byte(p, 1);
        }
        std::fs::write("/proc/sys/vm/stat_refresh", "1").expect("write to stat_refresh");
        let during = counters(&mut buf);
        munmap(a, len).unwrap();
        assert!(during.page_tables >= during.pte, "PageTables counts at least ours: {msg}, folded {during:?}");
    }
}

/// /proc/sys/vm/stat_refresh: root-only (0600), a write succeeds (Linux folds its
/// per-CPU counters into /proc/meminfo), a read returns nothing.
fn stat_refresh_takes_a_write_from_root_and_reads_empty() {
    use std::os::unix::fs::PermissionsExt;
    let path = "/proc/sys/vm/stat_refresh";
    let mode = std::fs::metadata(path).expect("stat of stat_refresh").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    std::fs::write(path, "1").expect("write to stat_refresh");
    let mut f = std::fs::File::open(path).expect("open of stat_refresh");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut f, &mut text).expect("read of stat_refresh");
    assert_eq!(text, "");
}

// ---------------------------------------------------------------------------------------
// 9. /proc formats
// ---------------------------------------------------------------------------------------

/// /proc/meminfo: `Name:` padded with spaces, then a number and ` kB`, or a bare number
/// for the HugePages_* counts.
fn proc_meminfo_format() {
    let text = read_proc(c"/proc/meminfo");
    let mut names = Vec::new();
    for line in text.lines() {
        let (name, rest) = line.split_once(':').unwrap_or_else(|| panic!("no ':' in {line:?}"));
        assert!(!name.is_empty() && !name.contains(' '), "name in {line:?}");
        assert!(rest.starts_with(' '), "spaces after the name in {line:?}");
        let v = rest.trim_start();
        let num = match v.strip_suffix(" kB") {
            Some(n) => n,
            None => {
                assert!(name.starts_with("HugePages_"), "only HugePages_* lack kB: {line:?}");
                v
            }
        };
        assert!(!num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()), "number in {line:?}");
        names.push(name.to_string());
    }
    for want in ["MemTotal", "MemFree", "MemAvailable", "Cached", "Shmem", "PageTables", "Mlocked", "AnonPages"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from /proc/meminfo");
    }
    assert_eq!(names[0], "MemTotal", "the first line");
    let total = proc_field(&text, "MemTotal");
    assert!(total > 0 && proc_field(&text, "MemFree") <= total && proc_field(&text, "MemAvailable") <= total);
}

/// /proc/self/status: `Name:\tvalue` lines; sizes as `<number> kB`.
fn proc_self_status_format() {
    let text = read_proc(c"/proc/self/status");
    let mut names = Vec::new();
    for line in text.lines() {
        let (name, value) = line.split_once(":\t").unwrap_or_else(|| panic!("no \":\\t\" in {line:?}"));
        assert!(!name.is_empty() && !name.contains(' '), "name in {line:?}");
        if name.starts_with("Vm") || name.starts_with("Rss") {
            let n = value.trim_start().strip_suffix(" kB").unwrap_or_else(|| panic!("no kB in {line:?}"));
            assert!(n.parse::<u64>().is_ok(), "number in {line:?}");
        }
        names.push(name);
    }
    assert_eq!(names[0], "Name", "the first line");
    for want in ["VmRSS", "RssAnon", "RssFile", "RssShmem", "VmPTE", "VmLck", "Pid", "PPid", "Threads", "State"] {
        assert!(names.contains(&want), "{want} missing from /proc/self/status");
    }
    assert_eq!(proc_field(&text, "Pid"), getpid() as u64);
    assert_eq!(proc_field(&text, "PPid"), sys!(SYS_getppid).unwrap() as u64);
    assert_eq!(proc_field(&text, "Threads"), 1);
    let rss = proc_field(&text, "VmRSS");
    let parts = proc_field(&text, "RssAnon") + proc_field(&text, "RssFile") + proc_field(&text, "RssShmem");
    assert_eq!(rss, parts, "VmRSS is RssAnon + RssFile + RssShmem");
    assert!(rss > 0);
}

/// /proc/self/statm: seven numbers (pages): size resident shared text lib data dt.
fn proc_self_statm_format() {
    let text = read_proc(c"/proc/self/statm");
    assert!(text.ends_with('\n') && text.lines().count() == 1, "one line: {text:?}");
    let nums: Vec<u64> = text.split_whitespace().map(|s| s.parse().expect("a number")).collect();
    assert_eq!(nums.len(), 7, "{text:?}");
    assert!(nums[1] > 0 && nums[1] <= nums[0], "0 < resident <= size: {text:?}");
    assert!(nums[2] <= nums[1], "shared <= resident: {text:?}");
}

/// /proc/self/stat: `pid (comm) state ppid ...`: at least 44 fields, comm in parentheses
/// (found from the last ')', as comm may contain anything).
fn proc_self_stat_format() {
    let text = read_proc(c"/proc/self/stat");
    let open_paren = text.find(" (").expect("' (' after the pid");
    let close_paren = text.rfind(") ").expect("') ' after comm");
    assert_eq!(text[..open_paren].parse::<i64>(), Ok(getpid()), "pid");
    let comm = &text[open_paren + 2..close_paren];
    let status = read_proc(c"/proc/self/status");
    let name = status.lines().next().unwrap().strip_prefix("Name:\t").unwrap();
    assert_eq!(comm, name, "comm is status's Name");
    let exe = exe_path().to_str().unwrap();
    let base = exe.rsplit('/').next().unwrap();
    assert_eq!(comm, &base[..base.len().min(15)], "comm is the executable's name");
    let rest: Vec<&str> = text[close_paren + 2..].split_whitespace().collect();
    assert!(rest.len() + 2 >= 44, "{} fields: {text:?}", rest.len() + 2);
    // rest[i] is field i + 3 (1-based, as in proc(5)).
    assert!(rest[0].len() == 1 && "RSDZTtXIPKWx".contains(rest[0]), "state {:?}", rest[0]);
    assert_eq!(rest[1].parse::<i64>(), Ok(sys!(SYS_getppid).unwrap()), "ppid (field 4)");
    assert!(rest[7].parse::<u64>().is_ok(), "minflt (field 10): {:?}", rest[7]);
    assert!(rest[7].parse::<u64>().unwrap() > 0, "some minor faults happened");
    assert_eq!(rest[17].parse::<u64>(), Ok(1), "num_threads (field 20)");
    let vsize: u64 = rest[20].parse().expect("vsize (field 23)");
    let rss: u64 = rest[21].parse().expect("rss (field 24)");
    assert!(rss > 0 && rss * PAGE as u64 <= vsize, "rss {rss} pages, vsize {vsize} bytes");
}

/// /proc/self/smaps_rollup: an address-range header line (as in maps, path `[rollup]`),
/// then `Name:  <number> kB` lines starting with Rss, Pss.
fn proc_self_smaps_rollup_format() {
    let text = read_proc(c"/proc/self/smaps_rollup");
    let mut lines = text.lines();
    let header = parse_map_line(lines.next().expect("a header")).unwrap();
    assert_eq!(header.path, "[rollup]", "{header:?}");
    let mut names = Vec::new();
    for line in lines {
        let (name, rest) = line.split_once(':').unwrap_or_else(|| panic!("no ':' in {line:?}"));
        let n = rest.trim_start().strip_suffix(" kB").unwrap_or_else(|| panic!("no kB in {line:?}"));
        assert!(rest.starts_with(' ') && n.parse::<u64>().is_ok(), "number in {line:?}");
        names.push(name);
    }
    assert_eq!(&names[..2], ["Rss", "Pss"], "the first fields");
    assert!(names.contains(&"Anonymous"), "Anonymous in {names:?}");
    assert!(proc_field(&text, "Rss") > 0);
}

/// /proc/self/maps: `start-end perms offset dev inode path`, sorted; our own mappings
/// appear exactly, a file mapping with its offset, device, inode and path.
fn proc_self_maps_format() {
    let dir = TempDir::new();
    let path = dir.file("mapped", &vec![3u8; 3 * PAGE]);
    let fd = open(&path, O_RDONLY, 0).unwrap();
    let f = mmap(0, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE as i64).unwrap();
    let a = mmap(0, 3 * PAGE, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    let text = read_proc(c"/proc/self/maps");
    let maps: Vec<MapLine> = text.lines().map(|l| parse_map_line(l).unwrap()).collect();
    for w in maps.windows(2) {
        assert!(w[0].end <= w[1].start, "sorted, not overlapping: {:?} {:?}", w[0], w[1]);
    }
    let meta = std::fs::metadata(&path).unwrap();
    let file_line = map_at(&maps, f).expect("the file mapping");
    let want = MapLine {
        start: f,
        end: f + 2 * PAGE,
        perms: "r--p".into(),
        offset: PAGE as u64,
        major: major(meta.dev()),
        minor: minor(meta.dev()),
        inode: meta.ino(),
        path: path.clone(),
    };
    assert_eq!(file_line, want);
    let anon = map_at(&maps, a).expect("the shared anonymous mapping");
    assert_eq!((anon.start, anon.end, anon.perms.as_str()), (a, a + 3 * PAGE, "r-xs"));
    assert!(maps.iter().any(|m| m.path == "[stack]" && m.perms == "rw-p"), "a [stack] line");
    let exe = exe_path().to_str().unwrap();
    let real = std::fs::canonicalize(exe).map(|p| p.to_str().unwrap().to_string()).unwrap_or(exe.to_string());
    let code = maps.iter().find(|m| (m.path == exe || m.path == real) && m.perms.contains('x'));
    assert!(code.is_some(), "the executable's code, mapped from {exe}");
    let anon_private = mmap_anon(PAGE);
    let m = map_at(&self::maps(), anon_private).unwrap();
    assert_eq!((m.major, m.minor, m.inode, m.path.as_str()), (0, 0, 0, ""), "anonymous: {m:?}");
    munmap(anon_private, PAGE).unwrap();
    munmap(a, 3 * PAGE).unwrap();
    munmap(f, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

/// Linux shows a shared anonymous mapping as its shmem object, an unlinked file named
/// `/dev/zero` on the internal shm mount (device 00:xx): path `/dev/zero (deleted)`, one
/// inode per mmap call.
fn maps_shows_shared_anonymous_mapping_as_deleted_dev_zero() {
    let a = Region::new(Kind::SharedAnon, 2);
    let b = Region::new(Kind::SharedAnon, 1);
    let maps = maps();
    let (la, lb) = (map_at(&maps, a.addr).unwrap(), map_at(&maps, b.addr).unwrap());
    for (m, r, len) in [(&la, &a, 2 * PAGE), (&lb, &b, PAGE)] {
        assert_eq!((m.start, m.end, m.perms.as_str(), m.offset), (r.addr, r.addr + len, "rw-s", 0), "{m:?}");
        assert_eq!(m.path, "/dev/zero (deleted)", "{m:?}");
        assert_eq!(m.major, 0, "an anonymous device: {m:?}");
        assert_ne!(m.inode, 0, "{m:?}");
    }
    assert_ne!(la.inode, lb.inode, "one object per mapping");
}

fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

// ---------------------------------------------------------------------------------------
// 10. MAP_GROWSDOWN, MAP_FIXED_NOREPLACE
// ---------------------------------------------------------------------------------------

/// A free, 4 MiB, page-aligned range of addresses.
fn free_range() -> usize {
    let len = 4 << 20;
    let r = mmap(0, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    munmap(r, len).unwrap();
    r
}

/// A MAP_GROWSDOWN mapping grows down to any page touched below it, as long as the new
/// start keeps the stack guard gap (256 pages by default) from the mapping below.
fn map_growsdown_mapping_grows_when_touched_below_its_start() {
    run_in_child(|| {
        let base = free_range();
        let g = base + (3 << 20);
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE;
        assert_eq!(mmap(g, 2 * PAGE, RW, flags, -1, 0), Ok(g));
        store_byte(g, 1);
        store_byte(g - PAGE, 2); // just below the start
        assert_eq!((load_byte(g - PAGE), load_byte(g)), (2, 1));
        let m = map_at(&maps(), g).unwrap();
        assert_eq!((m.start, m.end, m.perms.as_str()), (g - PAGE, g + 2 * PAGE, "rw-p"), "grown by a page");
        store_byte(g - 16 * PAGE + 5, 3); // 15 pages further down
        assert_eq!(load_byte(g - 16 * PAGE + 5), 3);
        assert_page(g - 8 * PAGE, 0, "a page grown over");
        let m = map_at(&maps(), g).unwrap();
        assert_eq!((m.start, m.end), (g - 16 * PAGE, g + 2 * PAGE), "grown to the touched page");
        munmap(g - 16 * PAGE, 18 * PAGE).unwrap();
    });
}

/// Linux keeps a stack guard gap (stack_guard_gap, 256 pages = 1 MiB by default) between a
/// MAP_GROWSDOWN mapping and an accessible mapping below it: a touch below the start
/// within the gap is SIGSEGV (SEGV_MAPERR), not growth.
fn map_growsdown_mapping_does_not_grow_within_guard_gap_of_mapping_below() {
    let base = free_range();
    let low = mmap(base, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    assert_eq!(low, Ok(base));
    let g = base + (512 << 10); // 512 KiB above: inside the gap
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE;
    let grows = mmap(g, PAGE, RW, flags, -1, 0);
    let faults = (fault_in_child(g - PAGE, true), fault_in_child(g - 64 * PAGE, false));
    let in_map = map_at(&maps(), g).map(|m| m.start);
    munmap(base, PAGE).unwrap();
    if grows == Ok(g) {
        munmap(g, PAGE).unwrap();
    }
    assert_eq!(grows, Ok(g));
    assert_eq!(faults, (Fault::SegvMaperr, Fault::SegvMaperr), "just below, 64 pages below");
    assert_eq!(in_map, Some(g), "not grown");
}

/// mmap checks a zero length and a missing or bogus mapping type (EINVAL) before it
/// compares the protection with the file's open mode (EACCES).
fn mmap_checks_length_and_type_before_the_file_access_mode() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", &[0u8; PAGE]), O_WRONLY, 0).unwrap();
    assert_errno!(mmap(0, 0, PROT_READ, MAP_SHARED, fd, 0), EINVAL);
    assert_errno!(mmap(0, PAGE, PROT_READ, 0, fd, 0), EINVAL);
    assert_errno!(mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0), EACCES);
    close(fd).unwrap();
}

fn mmap_fixed_noreplace_partly_over_existing_mapping_is_eexist() {
    let r = Region::new(Kind::PrivateAnon, 2);
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    assert_errno!(mmap(r.page(1), 2 * PAGE, RW, flags, -1, 0), EEXIST);
    assert_errno!(mmap(r.page(0) - PAGE, 2 * PAGE, RW, flags, -1, 0), EEXIST);
    assert_page(r.page(0), pat(0), "untouched");
    assert_page(r.page(1), pat(1), "untouched");
}

/// /proc/self/smaps: the block of one mapping has its size, its resident and
/// anonymous pages, and its flags.
fn smaps_lists_each_vma_with_its_size_rss_and_flags() {
    // PROT_NONE pages on both sides keep the mapping from merging with a
    // neighbour, including mappings made later (the smaps text itself).
    let outer = mmap_anon(5 * PAGE);
    mprotect(outer, PAGE, PROT_NONE).unwrap();
    mprotect(outer + 4 * PAGE, PAGE, PROT_NONE).unwrap();
    let a = outer + PAGE;
    store_byte(a, 1);
    store_byte(a + 2 * PAGE, 1);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let is_header = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(x, y)| u64::from_str_radix(x, 16).is_ok() && u64::from_str_radix(y, 16).is_ok())
    };
    let header = format!("{:08x}-{:08x} ", a, a + 3 * PAGE);
    let block: Vec<&str> =
        smaps.lines().skip_while(|l| !l.starts_with(&header)).skip(1).take_while(|l| !is_header(l)).collect();
    let kb = |name: &str| {
        block
            .iter()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().unwrap())
    };
    assert_eq!(kb("Size:"), Some(12), "{block:?}");
    assert_eq!(kb("Rss:"), Some(8));
    assert_eq!(kb("Anonymous:"), Some(8));
    let flags = block.iter().find_map(|l| l.strip_prefix("VmFlags:")).unwrap();
    assert!(flags.split_whitespace().any(|f| f == "rd") && flags.split_whitespace().any(|f| f == "wr"), "{flags}");
    munmap(outer, 5 * PAGE).unwrap();
}

/// The `kB` fields of the smaps block of the mapping that starts at `a`.
fn smaps_block_kb(a: usize) -> std::collections::BTreeMap<String, u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let header = format!("{a:08x}-");
    smaps
        .lines()
        .skip_while(|l| !l.starts_with(&header))
        .skip(1)
        .take_while(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            !first
                .split_once('-')
                .is_some_and(|(x, y)| usize::from_str_radix(x, 16).is_ok() && usize::from_str_radix(y, 16).is_ok())
        })
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.trim().strip_suffix(" kB")?.trim().parse().ok()?))
        })
        .collect()
}

/// A memfd (a shmem file) of `pages` pages, written by write(2) when `written`, else
/// only sized.
fn memfd_of(pages: usize, written: bool) -> i32 {
    let fd = sys!(SYS_memfd_create, c"smaps-dirty".as_ptr(), 0).unwrap() as i32;
    if written {
        assert_eq!(write(fd, &vec![7u8; pages * PAGE]).unwrap(), pages * PAGE);
    } else {
        sys!(SYS_ftruncate, fd, pages * PAGE).unwrap();
    }
    fd
}

/// Pages written into a shmem file by write(2) are dirty (shmem_write_end sets PG_dirty):
/// a read-only mapping of them shows them in Private_Dirty, not Private_Clean.
fn smaps_counts_shmem_pages_written_by_write_as_dirty() {
    let fd = memfd_of(2, true);
    let a = mmap(0, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0).unwrap();
    load_byte(a);
    load_byte(a + PAGE);
    let kb = smaps_block_kb(a);
    assert_eq!((kb["Rss"], kb["Private_Dirty"], kb["Private_Clean"]), (8, 8, 0), "{kb:?}");
    assert_eq!(kb["Pss_Dirty"], 8, "{kb:?}");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

/// Pages a read fault makes for the holes of a shmem file are clean until written.
fn smaps_counts_shmem_holes_read_through_a_mapping_as_clean() {
    let fd = memfd_of(2, false);
    let a = mmap(0, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0).unwrap();
    load_byte(a);
    load_byte(a + PAGE);
    let kb = smaps_block_kb(a);
    assert_eq!((kb["Rss"], kb["Private_Clean"], kb["Private_Dirty"]), (8, 8, 0), "{kb:?}");
    munmap(a, 2 * PAGE).unwrap();
    close(fd).unwrap();
}

/// A page written through one shared mapping stays dirty for another mapping of it once
/// the writer's mapping is gone (zap_pte_range moves the entry's dirty bit to the page):
/// first shared and dirty, then private and dirty.
fn smaps_keeps_a_page_dirty_after_the_mapping_that_wrote_it_is_gone() {
    let fd = memfd_of(1, false);
    let w = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    let r = mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0).unwrap();
    load_byte(r);
    store_byte(w, 1);
    let kb = smaps_block_kb(r);
    assert_eq!((kb["Rss"], kb["Shared_Dirty"], kb["Shared_Clean"]), (4, 4, 0), "{kb:?}");
    munmap(w, PAGE).unwrap();
    let kb = smaps_block_kb(r);
    assert_eq!((kb["Rss"], kb["Private_Dirty"], kb["Private_Clean"]), (4, 4, 0), "{kb:?}");
    munmap(r, PAGE).unwrap();
    close(fd).unwrap();
}

/// A MAP_SHARED mapping of a file opened O_RDONLY can never be written: smaps shows
/// "ms" (may share) but neither "sh" nor "mw", as Linux's do_mmap clears VM_SHARED and
/// VM_MAYWRITE for it.
fn smaps_of_a_shared_mapping_of_a_read_only_fd_shows_neither_sh_nor_mw() {
    let dir = TempDir::new();
    let path = dir.file("f", &vec![1u8; PAGE]);
    let fd = open(&path, O_RDONLY, 0).unwrap();
    let a = mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0).unwrap();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let header = format!("{:08x}-{:08x} ", a, a + PAGE);
    let flags = smaps
        .lines()
        .skip_while(|l| !l.starts_with(&header))
        .find_map(|l| l.strip_prefix("VmFlags:"))
        .expect("the mapping's VmFlags")
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let has = |f: &str| flags.iter().any(|x| x == f);
    assert!(has("rd") && has("mr") && has("ms"), "{flags:?}");
    assert!(!has("sh") && !has("mw"), "{flags:?}");
    munmap(a, PAGE).unwrap();
    close(fd).unwrap();
}

/// /proc/self/pagemap: bit 63 (present) for touched pages only; bit 61 (file
/// or shared anonymous) for a shared mapping, not a private one.
fn pagemap_reports_which_pages_are_present() {
    let a = mmap_anon(4 * PAGE);
    store_byte(a, 1);
    store_byte(a + 2 * PAGE, 1);
    let fd = open("/proc/self/pagemap", O_RDONLY, 0).unwrap();
    let entry = |addr: usize| {
        let mut e = [0u8; 8];
        assert_eq!(sys!(SYS_pread64, fd, e.as_mut_ptr(), 8, (addr / PAGE * 8) as i64).unwrap(), 8);
        u64::from_le_bytes(e)
    };
    let present = |e: u64| e >> 63 & 1 == 1;
    assert!(present(entry(a)) && present(entry(a + 2 * PAGE)));
    assert!(!present(entry(a + PAGE)) && !present(entry(a + 3 * PAGE)));
    assert_eq!(entry(a) >> 61 & 1, 0, "private anonymous");
    let s = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    store_byte(s, 1);
    assert_eq!(entry(s) >> 61 & 1, 1, "shared anonymous counts with file pages");
    close(fd).unwrap();
    munmap(a, 4 * PAGE).unwrap();
    munmap(s, PAGE).unwrap();
}

/// VmHWM and VmPeak are peaks: after touching 1024 pages (RSS) and mapping
/// 8 MiB more (size), then unmapping both, the peaks stay that far above the
/// current VmRSS and VmSize (the child faults in the program's own pages after
/// its peak, a 64 KiB fault-around window at a time, hence the slack). Linux updates its peaks lazily from approximate per-CPU
/// counters, so there only "peak >= current" is checked; this kernel keeps
/// them exact.
fn vmhwm_and_vmpeak_keep_the_peak_after_munmap() {
    run_in_child(|| {
        let a = mmap_anon(1024 * PAGE);
        for i in 0..1024 {
            store_byte(a + i * PAGE, 1);
        }
        let big = mmap_anon(8 << 20);
        munmap(a, 1024 * PAGE).unwrap();
        munmap(big, 8 << 20).unwrap();
        let (hwm, rss) = (status_kb("VmHWM"), status_kb("VmRSS"));
        let (peak, size) = (status_kb("VmPeak"), status_kb("VmSize"));
        let (hwm_margin, peak_margin) = if on_our_kernel() { (3 * 1024, 6 * 1024) } else { (0, 0) };
        assert!(hwm >= rss + hwm_margin, "VmHWM {hwm} kB, VmRSS {rss} kB");
        assert!(peak >= size + peak_margin, "VmPeak {peak} kB, VmSize {size} kB");
    });
}

// ---------------------------------------------------------------------------------------
// 11. What fork copies
// ---------------------------------------------------------------------------------------

/// 16 MiB of MAP_SHARED anonymous memory, every page written with `pat(i % 64)`.
fn touched_shared_16m() -> usize {
    let len = 16 << 20;
    let a = mmap(0, len, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    for i in 0..len / PAGE {
        store_byte(a + i * PAGE, pat(i % 64));
    }
    a
}

/// Linux's fork copies no entries of a VMA without private anonymous pages
/// (`vma_needs_copy`): the child of a process that touched 16 MiB of shared memory
/// starts with none of it resident, and faults it in when it reads, finding the data.
/// (Copied pages of a written private mapping of a tmpfs file, such as the test binary's
/// data, count as shmem too: hence a comparison with the parent, not with zero.)
fn fork_child_starts_without_the_shared_pages_its_parent_touched() {
    let a = touched_shared_16m();
    let parent = status_kb("RssShmem");
    let how = child_exit(|| {
        let child = status_kb("RssShmem");
        if child + 16 * 1024 > parent {
            eprintln!("child's RssShmem right after fork: {child} kB, parent's {parent} kB");
            return 1;
        }
        let seen = (0..(16 << 20) / PAGE).all(|i| load_byte(a + i * PAGE) == pat(i % 64));
        if !seen {
            return 2;
        }
        0
    });
    assert_eq!(how, Exit::Code(0));
    munmap(a, 16 << 20).unwrap();
}

/// Nor the page tables that would hold those entries: with one page written in each
/// 2 MiB of 64 MiB of shared memory, the parent has 32 PTE tables (128 kB of VmPTE) for it
/// and the child none (the child's own work after fork may add a table or two).
fn fork_child_starts_without_page_tables_for_shared_memory() {
    let len = 64 << 20;
    let a = mmap(0, len, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0).unwrap();
    for i in 0..len >> 21 {
        store_byte(a + (i << 21), 1);
    }
    let parent = status_kb("VmPTE");
    let how = child_exit(|| {
        let child = status_kb("VmPTE");
        if child + 96 > parent {
            eprintln!("child's VmPTE {child} kB, parent's {parent} kB");
            return 1;
        }
        (load_byte(a + len - (2 << 20)) != 1) as i32
    });
    assert_eq!(how, Exit::Code(0));
    munmap(a, len).unwrap();
}

/// A private file mapping that was read but never written has no anonymous pages:
/// the child starts without its file pages (RssFile) and reads them from the file.
fn fork_child_starts_without_the_pages_of_an_unwritten_private_file_mapping() {
    let len = 8 << 20;
    let dir = TempDir::new();
    let data: Vec<u8> = (0..len).map(|i| pat(i / PAGE % 64)).collect();
    let path = dir.file("f", &data);
    let fd = open(&path, O_RDONLY, 0).unwrap();
    let a = mmap(0, len, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
    close(fd).unwrap();
    for i in 0..len / PAGE {
        assert_eq!(load_byte(a + i * PAGE), pat(i % 64));
    }
    // A tmpfs file's pages count as shmem, a disk file's as file pages.
    let file_kb = || status_kb("RssFile") + status_kb("RssShmem");
    let parent = file_kb();
    let how = child_exit(|| {
        let child = file_kb();
        // Linux 6.1 counts RSS per task and folds it in every 64 faults: the parent's
        // figure may lag by up to 256 kB.
        if child + (len as u64 / 1024) - 256 > parent {
            eprintln!("child's RssFile + RssShmem {child} kB, parent's {parent} kB");
            return 1;
        }
        let seen = (0..len / PAGE).all(|i| load_byte(a + i * PAGE) == pat(i % 64));
        if !seen {
            return 2;
        }
        0
    });
    assert_eq!(how, Exit::Code(0));
    munmap(a, len).unwrap();
}

/// Once written, a private file mapping holds anonymous copies: fork copies its entries
/// (write-protected) and the child sees the parent's copy, not the file.
fn fork_child_still_sees_its_parents_private_file_copies() {
    let dir = TempDir::new();
    let path = dir.file("f", &[7u8; 2 * PAGE]);
    let fd = open(&path, O_RDWR, 0).unwrap();
    let a = mmap(0, 2 * PAGE, RW, MAP_PRIVATE, fd, 0).unwrap();
    close(fd).unwrap();
    store_byte(a, 9);
    assert_eq!(load_byte(a + PAGE), 7);
    let how = child_exit(|| (load_byte(a) == 9 && load_byte(a + PAGE) == 7) as i32);
    assert_eq!(how, Exit::Code(1));
    assert_eq!(load_byte(a), 9);
    munmap(a, 2 * PAGE).unwrap();
}

// ---------------------------------------------------------------------------------------
// 12. mremap moving whole page tables
// ---------------------------------------------------------------------------------------

/// A free range of `len` bytes whose start is `off` bytes past a 2 MiB boundary.
fn range_2m_plus(len: usize, off: usize) -> usize {
    let r = mmap(0, len + (4 << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    munmap(r, len + (4 << 20)).unwrap();
    r.next_multiple_of(2 << 20) + off
}

/// Moves 8 MiB (plus a page on each side when `off` is not 0) of written private memory
/// from a range `src_off` past a 2 MiB boundary to one `dst_off` past one, and checks
/// every page, the old range unmapped, the new one writable, and RssAnon unchanged (the
/// pages moved: none was copied or lost).
fn mremap_moves_every_page(src_off: usize, dst_off: usize) {
    let len = 8 << 20;
    let pages = len / PAGE;
    let a = range_2m_plus(len, src_off);
    assert_eq!(mmap(a, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), Ok(a));
    for i in 0..pages {
        store_byte(a + i * PAGE, pat(i % 64));
    }
    let rss = status_kb("RssAnon");
    let dst = mmap(0, len + (4 << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0).unwrap();
    let b = dst.next_multiple_of(2 << 20) + dst_off;
    assert_eq!(mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, b), Ok(b));
    for i in 0..pages {
        assert_eq!(load_byte(b + i * PAGE), pat(i % 64), "page {i} after the move");
    }
    // Linux 6.1 folds per-task RSS deltas in every 64 faults: a few hundred kB of slack,
    // against the 8 MiB a copy or a loss would show.
    let after = status_kb("RssAnon");
    assert!(after.abs_diff(rss) < 1024, "RssAnon {rss} kB before the move, {after} kB after");
    store_byte(b + len - 1, 0x77);
    assert_eq!(fault_in_child(a, false), Fault::SegvMaperr, "the old range is unmapped");
    munmap(dst, len + (4 << 20)).unwrap();
}

fn mremap_between_2m_aligned_ranges_moves_every_page_with_its_data() {
    mremap_moves_every_page(0, 0);
}

fn mremap_between_differently_aligned_ranges_moves_every_page_with_its_data() {
    mremap_moves_every_page(3 * PAGE, 0);
}
