//! Scale: an address space with as many VMAs as `vm.max_map_count` allows (every VMA
//! operation logarithmic in their number), files mapped many times (truncation and hole
//! punching reach only the mappings of the range, through the file's own interval tree of
//! VMAs), and the page-table figures (VmPTE and PageTables count the levels Linux counts).
//!
//! Nothing here asserts a time: the many-mapping tests only finish within the runner's
//! timeout when each operation costs what Linux's does.

use std::ffi::CStr;

use libc::*;
use user_tests::{
    mmap, proc_field, read_proc_into, run_in_child, run_tests, status_kb, store_byte, sys, tests, Errno, ProcBuf,
    TempDir, PAGE,
};

fn main() {
    if user_tests::child_args().is_some_and(|a| a.first().map(String::as_str) == Some("vmpte")) {
        child_vmpte();
    }
    run_tests(
        "scale",
        tests![
            // Many VMAs.
            mapping_up_to_max_map_count_succeeds_then_enomem_and_all_unmap,
            vmsize_and_vmlck_stay_exact_through_mmap_mprotect_mlock_and_munmap_splits,
            // Reverse mapping of files.
            punching_holes_reaches_each_of_many_file_mappings,
            truncating_a_file_mapped_many_times_unmaps_the_mapping_past_the_end,
            // Page-table accounting.
            touching_a_page_in_a_fresh_512g_region_adds_pte_pmd_and_pud_tables_to_vmpte,
            touching_a_page_in_a_fresh_512g_region_adds_pte_and_pmd_tables_to_page_tables,
            fresh_process_vmpte_counts_the_tables_of_its_present_pages_without_the_root,
        ],
    );
}

fn munmap(addr: usize, len: usize) -> Result<i64, Errno> {
    sys!(SYS_munmap, addr, len)
}

/// VMAs of this process as /proc/self/maps lists them; Linux's `[vsyscall]` line is the
/// gate area, no VMA of the process (not in its map_count).
fn vma_count(maps: &[u8]) -> usize {
    maps.split(|&b| b == b'\n').filter(|l| !l.is_empty() && !l.ends_with(b"[vsyscall]")).count()
}

/// `vm.max_map_count` (65530 unless an administrator changed it).
fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(65530)
}

/// One page at a time until mmap fails, alternating protections so that no two neighbours
/// merge: every mmap up to the limit succeeds, the next is ENOMEM, /proc/self/maps shows
/// the limit plus one (do_mmap refuses only when `map_count > sysctl_max_map_count`, so
/// the last mmap that succeeds makes the count one more than the limit), and every
/// mapping unmaps again.
fn mapping_up_to_max_map_count_succeeds_then_enomem_and_all_unmap() {
    run_in_child(|| {
        let limit = max_map_count();
        // Sized before counting: neither buffer may add a VMA later.
        let mut maps = Vec::with_capacity(16 << 20);
        let mut addrs: Vec<usize> = Vec::with_capacity(limit + 16);
        read_proc_into(c"/proc/self/maps", &mut maps, ProcBuf::Fixed);
        let before = vma_count(&maps);
        let protections = [PROT_READ, PROT_NONE];
        let err = loop {
            let prot = protections[addrs.len() % 2];
            match mmap(0, PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) {
                Ok(a) => addrs.push(a),
                Err(e) => break e,
            }
            assert!(addrs.len() <= limit + 1, "more mappings than vm.max_map_count");
        };
        assert_eq!(err, Errno(ENOMEM), "after {} mappings", addrs.len());
        // The first may merge with an older neighbour of the same protection.
        assert!(addrs.len() > limit - before, "{} mappings made with {before} VMAs before", addrs.len());
        read_proc_into(c"/proc/self/maps", &mut maps, ProcBuf::Fixed);
        assert_eq!(vma_count(&maps), limit + 1, "VMAs in /proc/self/maps at the limit");
        // Newest first: the first may have merged with an older VMA, and unmapping it from
        // that one is a split, refused at the limit (and so on Linux).
        for &a in addrs.iter().rev() {
            munmap(a, PAGE).unwrap_or_else(|e| panic!("munmap {a:#x}: {e}"));
        }
        read_proc_into(c"/proc/self/maps", &mut maps, ProcBuf::Fixed);
        assert_eq!(vma_count(&maps), before, "VMAs after unmapping them all");
        let a = mmap(0, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).expect("mmap after unmapping them all");
        munmap(a, PAGE).unwrap();
    });
}

/// VmSize and VmLck follow every change of the VMAs, including the pieces that splits
/// make: mmap, mprotect of a middle part, mlock of a middle part, munmap across a locked
/// piece, munlock.
fn vmsize_and_vmlck_stay_exact_through_mmap_mprotect_mlock_and_munmap_splits() {
    run_in_child(|| {
        let (size0, lck0) = (status_kb("VmSize"), status_kb("VmLck"));
        let a = mmap(0, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
        assert_eq!((status_kb("VmSize"), status_kb("VmLck")), (size0 + 64, lck0), "after mmap");
        sys!(SYS_mprotect, a + 4 * PAGE, 4 * PAGE, PROT_READ).unwrap();
        assert_eq!((status_kb("VmSize"), status_kb("VmLck")), (size0 + 64, lck0), "after mprotect");
        sys!(SYS_mlock, a + 2 * PAGE, 8 * PAGE).unwrap();
        assert_eq!((status_kb("VmSize"), status_kb("VmLck")), (size0 + 64, lck0 + 32), "after mlock");
        munmap(a + 6 * PAGE, 6 * PAGE).unwrap();
        assert_eq!((status_kb("VmSize"), status_kb("VmLck")), (size0 + 40, lck0 + 16), "after munmap");
        let b = mmap(0, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0).unwrap();
        assert_eq!((status_kb("VmSize"), status_kb("VmLck")), (size0 + 52, lck0 + 28), "after mmap(MAP_LOCKED)");
        sys!(SYS_munlock, a, 6 * PAGE).unwrap();
        assert_eq!((status_kb("VmSize"), status_kb("VmLck")), (size0 + 52, lck0 + 12), "after munlock");
        sys!(SYS_mremap, b, 3 * PAGE, PAGE, 0).unwrap();
        assert_eq!((status_kb("VmSize"), status_kb("VmLck")), (size0 + 44, lck0 + 4), "after mremap shrink");
        munmap(a, 16 * PAGE).unwrap();
        munmap(b, PAGE).unwrap();
        assert_eq!((status_kb("VmSize"), status_kb("VmLck")), (size0, lck0), "after unmapping all");
    });
}

const FILE_MAPPINGS: usize = 60_000;

/// A sparse file of `pages` pages (holes: nothing cached yet); returns the open fd.
fn sparse_file(dir: &TempDir, pages: usize) -> i32 {
    let path = user_tests::cstr(&dir.join("f"));
    let fd = sys!(SYS_openat, AT_FDCWD, path.as_ptr(), O_RDWR | O_CREAT | O_CLOEXEC, 0o600).unwrap() as i32;
    sys!(SYS_ftruncate, fd, pages * PAGE).unwrap();
    fd
}

/// Maps page i of `fd` at its own one-page shared mapping, alternating protections so no
/// two merge; returns the addresses.
fn map_each_page(fd: i32, pages: usize) -> Vec<usize> {
    (0..pages)
        .map(|i| {
            let prot = if i % 2 == 0 { PROT_READ | PROT_WRITE } else { PROT_READ | PROT_WRITE | PROT_EXEC };
            mmap(0, PAGE, prot, MAP_SHARED, fd, (i * PAGE) as i64).unwrap_or_else(|e| panic!("mmap page {i}: {e}"))
        })
        .collect()
}

fn read_at(addr: usize) -> u8 {
    // SAFETY: the caller names a mapped, readable byte.
    unsafe { std::ptr::read_volatile(addr as *const u8) }
}

fn pread_byte(fd: i32, off: usize) -> u8 {
    let mut b = [0xffu8];
    assert_eq!(sys!(SYS_pread64, fd, b.as_mut_ptr(), 1, off).unwrap(), 1);
    b[0]
}

/// 60,000 one-page shared mappings of one file, page i at mapping i. In turn, each page
/// is written through its mapping, then a hole is punched under it: the mapping must read
/// zero afterwards (the punch found it among all the others and unmapped the page), and
/// the next mapping is untouched.
fn punching_holes_reaches_each_of_many_file_mappings() {
    run_in_child(|| {
        let dir = TempDir::new();
        let fd = sparse_file(&dir, FILE_MAPPINGS);
        let addrs = map_each_page(fd, FILE_MAPPINGS);
        for (i, &a) in addrs.iter().enumerate() {
            let v = (i % 251 + 1) as u8;
            store_byte(a, v);
            assert_eq!(pread_byte(fd, i * PAGE), v, "page {i} written through its mapping");
            let r = sys!(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, i * PAGE, PAGE);
            r.unwrap_or_else(|e| panic!("punch page {i}: {e}"));
            assert_eq!(read_at(a), 0, "page {i} through its mapping after the hole");
            if let Some(&next) = addrs.get(i + 1) {
                assert_eq!(read_at(next), 0, "page {} before its turn", i + 1);
            }
        }
        for &a in &addrs {
            munmap(a, PAGE).unwrap();
        }
        sys!(SYS_close, fd).unwrap();
    });
}

/// The same file mapped page by page. Again and again the last page is written through
/// its mapping, the file is cut by that page and grown back: the mapping past the cut must
/// read the new hole (zero), not the truncated page; the first page keeps its data.
fn truncating_a_file_mapped_many_times_unmaps_the_mapping_past_the_end() {
    run_in_child(|| {
        let dir = TempDir::new();
        let fd = sparse_file(&dir, FILE_MAPPINGS);
        let addrs = map_each_page(fd, FILE_MAPPINGS);
        let (first, last) = (addrs[0], addrs[FILE_MAPPINGS - 1]);
        store_byte(first, 7);
        for round in 0..FILE_MAPPINGS {
            store_byte(last, (round % 251 + 1) as u8);
            sys!(SYS_ftruncate, fd, (FILE_MAPPINGS - 1) * PAGE).unwrap();
            sys!(SYS_ftruncate, fd, FILE_MAPPINGS * PAGE).unwrap();
            assert_eq!(read_at(last), 0, "the last page after cut {round}");
        }
        assert_eq!(read_at(first), 7, "the first page");
        for &a in &addrs {
            munmap(a, PAGE).unwrap();
        }
        sys!(SYS_close, fd).unwrap();
    });
}

/// A 512 GiB-aligned address (PML4 slot 160) far from anything else: a page there needs a
/// fresh PUD (PDPT), PMD (PD) and PTE table.
const FRESH_REGION: usize = 0x5000_0000_0000;

/// Reads VmPTE and PageTables into a preallocated buffer, so that reading them does not
/// change them.
fn pte_figures(buf: &mut Vec<u8>) -> (u64, u64) {
    read_proc_into(c"/proc/self/status", buf, ProcBuf::Fixed);
    let vmpte = proc_field(std::str::from_utf8(buf).unwrap(), "VmPTE");
    // Linux folds its per-CPU counter deltas into /proc/meminfo on this write.
    let fd = sys!(SYS_openat, AT_FDCWD, c"/proc/sys/vm/stat_refresh".as_ptr(), O_WRONLY | O_CLOEXEC).unwrap();
    let _ = sys!(SYS_write, fd, c"1".as_ptr(), 1);
    sys!(SYS_close, fd).unwrap();
    read_proc_into(c"/proc/meminfo", buf, ProcBuf::Fixed);
    (vmpte, proc_field(std::str::from_utf8(buf).unwrap(), "PageTables"))
}

/// Figures before, after touching one page at `FRESH_REGION`, and after unmapping it.
fn touch_one_fresh_page(buf: &mut Vec<u8>) -> [(u64, u64); 3] {
    pte_figures(buf); // warm up: the same code, stack and buffer pages as the real reads
    let before = pte_figures(buf);
    let a = mmap(FRESH_REGION, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
        .unwrap_or_else(|e| panic!("mmap at {FRESH_REGION:#x}: {e}"));
    assert_eq!(a, FRESH_REGION);
    store_byte(a, 1);
    let during = pte_figures(buf);
    munmap(a, PAGE).unwrap();
    [before, during, pte_figures(buf)]
}

/// VmPTE (Linux's mm_pgtables_bytes) counts PTE, PMD and PUD tables: 12 KiB more for one
/// page in an empty 512 GiB region, all given back by munmap (free_pgtables).
fn touching_a_page_in_a_fresh_512g_region_adds_pte_pmd_and_pud_tables_to_vmpte() {
    let mut buf = Vec::with_capacity(64 * 1024);
    let [before, during, after] = touch_one_fresh_page(&mut buf);
    assert_eq!(during.0, before.0 + 12, "VmPTE with the page mapped");
    assert_eq!(after.0, before.0, "VmPTE after munmap");
}

/// /proc/meminfo's PageTables (NR_PAGETABLE) counts PTE and PMD tables: 8 KiB more for one
/// page in an empty 512 GiB region. Linux 6.1 accounts no PUD page there; 6.18 does (x86's
/// PUD pages got the page-table constructor in between): 12 KiB. Other processes move the
/// figure on Linux too, so a few attempts are allowed for one quiet one; and Linux frees
/// page tables after an RCU grace period, so the give-back is exact on our kernel only.
fn touching_a_page_in_a_fresh_512g_region_adds_pte_and_pmd_tables_to_page_tables() {
    let mut buf = Vec::with_capacity(64 * 1024);
    let ours = on_our_kernel();
    let want = if !ours && linux_release_after(6, 1) { 12 } else { 8 };
    let mut seen = Vec::new();
    for _ in 0..50 {
        let [before, during, after] = touch_one_fresh_page(&mut buf);
        if during.1 == before.1 + want && (!ours || after.1 == before.1) {
            return;
        }
        seen.push((before.1, during.1, after.1));
    }
    panic!("PageTables never moved by {want} kB (and back): {seen:?}");
}

fn release() -> String {
    let mut u: utsname = unsafe { std::mem::zeroed() };
    sys!(SYS_uname, &mut u as *mut utsname).unwrap();
    // SAFETY: uname NUL-terminates the release.
    unsafe { CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned()
}

/// Whether we run on our kernel (its release names it) rather than on Linux.
fn on_our_kernel() -> bool {
    release().contains("mshare")
}

/// The running Linux's release is later than `major.minor`.
fn linux_release_after(major: u32, minor: u32) -> bool {
    let release = release();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) > (major, minor)
}

/// Right after exec (nothing unmapped yet), VmPTE is 4 KiB for each PTE, PMD and PUD table
/// the present pages need (from /proc/self/pagemap), and nothing for the top-level table.
fn fresh_process_vmpte_counts_the_tables_of_its_present_pages_without_the_root() {
    run_in_child(|| {
        let exe = user_tests::exe_path();
        let argv = [exe.to_str().unwrap(), user_tests::CHILD_MARKER, "vmpte"];
        let e = user_tests::execve(exe, &argv, &[]);
        panic!("execve: {e}");
    });
}

/// The child half of the test above: exits 0 when VmPTE matches, else panics with both.
fn child_vmpte() -> ! {
    // Every buffer touched before VmPTE is read: filling them later maps nothing new.
    let touched = |n: usize| {
        let mut v = vec![1usize; n];
        v.clear();
        v
    };
    let (mut pts, mut pmds, mut puds) = (touched(1 << 14), touched(1 << 14), touched(1 << 14));
    let mut status = vec![1u8; 64 * 1024];
    let mut maps = vec![1u8; 256 * 1024];
    let mut entries = vec![1u64; 512];
    read_proc_into(c"/proc/self/maps", &mut maps, ProcBuf::Fixed);
    read_proc_into(c"/proc/self/status", &mut status, ProcBuf::Fixed);
    let vmpte = proc_field(std::str::from_utf8(&status).unwrap(), "VmPTE");
    let pagemap = sys!(SYS_openat, AT_FDCWD, c"/proc/self/pagemap".as_ptr(), O_RDONLY | O_CLOEXEC).unwrap() as i32;
    for line in std::str::from_utf8(&maps).unwrap().lines() {
        if line.ends_with("[vsyscall]") {
            continue;
        }
        let range = line.split(' ').next().unwrap();
        let (s, e) = range.split_once('-').unwrap();
        let (s, e) = (usize::from_str_radix(s, 16).unwrap(), usize::from_str_radix(e, 16).unwrap());
        let mut va = s;
        while va < e {
            let n = ((e - va) / PAGE).min(entries.len());
            let got = sys!(SYS_pread64, pagemap, entries.as_mut_ptr(), n * 8, (va / PAGE) * 8).unwrap() as usize;
            assert_eq!(got, n * 8, "pagemap at {va:#x}");
            for (i, &pe) in entries[..n].iter().enumerate() {
                if pe >> 63 & 1 == 1 {
                    let page = va + i * PAGE;
                    pts.push(page >> 21);
                    pmds.push(page >> 30);
                    puds.push(page >> 39);
                }
            }
            va += n * PAGE;
        }
    }
    for v in [&mut pts, &mut pmds, &mut puds] {
        v.sort_unstable();
        v.dedup();
    }
    let want = 4 * (pts.len() + pmds.len() + puds.len()) as u64;
    if vmpte != want {
        eprintln!(
            "VmPTE {vmpte} kB, tables of present pages {want} kB ({} PTE, {} PMD, {} PUD)",
            pts.len(),
            pmds.len(),
            puds.len()
        );
        std::process::exit(1);
    }
    std::process::exit(0);
}
