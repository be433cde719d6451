//! mshare through the msharefs file API (the 2025 Linux series), modelled on that series'
//! selftests (tools/testing/selftests/mshare): a region is a file in /sys/fs/mshare, sized
//! with ftruncate, filled with MSHAREFS_CREATE_MAPPING and mapped by each process, whose
//! page tables then graft the region's. Linux has no mshare: this suite runs in our
//! kernel only (the runner's kernel-only suites).
//!
//! Region names are made from the test process's pid; every test unlinks what it made.

use libc::*;
use msharefs::{MshareCreate, MshareProtect, MshareUnmap, MSHAREFS_CREATE_MAPPING, MSHAREFS_PROTECT, MSHAREFS_UNMAP};
use user_tests::{
    assert_errno, child_exit, close, cstr, fork_child, load_byte, minflt, mmap, online_cpus, pin_to_cpu, read_proc,
    run_in_child, run_tests, set_rlimit_as, smaps_kb, store_byte, sys, tests, wait_child, wait_for, Errno, Exit, PAGE,
};

/// The argument that runs only the tests needing more memory than the suite's boot has
/// (`GIB_TESTS`): `cargo xtask test` runs them in a boot of their own.
const GIB_MODE: &str = "gib";

fn main() {
    if std::env::args().nth(1).as_deref() == Some(GIB_MODE) {
        user_tests::run_tests_matching(
            "mshare",
            tests![sixty_four_guests_of_a_gib_region_touching_every_page_pay_one_graft_fault_and_no_table_each],
            None,
        )
    }
    run_tests(
        "mshare",
        tests![
            mshare_info_reads_the_alignment_in_bytes,
            msharefs_reports_its_magic_in_statfs,
            a_region_is_sized_once_to_a_multiple_of_the_alignment,
            o_excl_of_an_existing_region_is_eexist,
            a_region_opened_without_permission_by_mode_is_eacces,
            fork_then_both_map_and_the_parent_reads_what_the_child_wrote,
            two_mappings_at_different_addresses_see_the_same_pages,
            a_second_process_takes_one_graft_fault_and_no_host_fault_for_touched_pages,
            after_msharefs_unmap_an_access_is_sigsegv_in_every_sharer,
            the_protect_ioctl_makes_a_page_read_only_for_every_sharer,
            a_window_cannot_be_split_mprotected_mremapped_madvised_or_mlocked,
            a_window_mapped_read_only_cannot_be_written,
            unlink_while_mapped_keeps_the_region_until_the_last_unmap,
            the_creator_exiting_changes_nothing_for_the_guests,
            create_mapping_is_charged_to_the_creators_rlimit_as,
            create_mapping_is_not_charged_to_the_callers_rlimit_as,
            the_region_pages_are_freed_when_the_last_user_goes,
            the_region_page_tables_are_counted_once_and_guests_pay_none,
            sixty_four_guests_touching_every_page_pay_one_graft_fault_and_no_table_each,
            a_guest_counts_the_region_pages_it_reaches_as_rss_shmem,
            smaps_divides_a_window_pss_among_the_address_spaces_reaching_the_region,
            create_mapping_of_a_memfd_shares_its_pages,
            bad_mmap_of_a_region_is_einval,
            bad_ioctls_are_refused_and_change_nothing,
            usercopy_through_a_window_reads_and_writes_the_region,
            mincore_and_pagemap_show_the_region_pages_a_window_reaches,
            a_futex_in_a_region_wakes_a_waiter_in_another_process_at_another_address,
            a_futex_in_a_shm_share_mmu_attach_wakes_a_waiter_in_a_plain_attach,
            a_graft_2m_mount_grafts_one_page_table_per_2_mib,
            a_graft_1g_mount_grafts_one_page_directory_per_gib,
            mount_of_msharefs_with_a_bad_graft_is_einval,
            mshare_create_makes_the_callers_shared_mappings_the_region,
            mshare_attach_maps_the_region_at_its_address,
            mshare_region_reads_as_its_start_and_size,
            mshare_access_to_a_hole_is_sigbus,
            mshare_create_over_a_private_mapping_is_einval,
            mshare_bad_arguments_are_refused,
            mshare_attach_without_permission_by_mode_is_eacces,
            mshare_unlink_removes_the_name_and_the_mapping_lives_on,
            shm_share_mmu_attachers_share_the_segment_page_tables,
            shm_share_mmu_attaches_count_in_nattch_and_shmdt_and_ipc_rmid_keep_their_meaning,
            shm_share_mmu_and_plain_attaches_see_the_same_pages,
            shm_share_mmu_refuses_unaligned_addresses_and_hugetlb_segments,
            no_guest_on_any_cpu_reaches_a_page_after_msharefs_unmap_returns_stale,
            no_guest_on_any_cpu_writes_a_page_after_msharefs_protect_returns_stale,
        ],
    )
}

const ROOT: &str = "/sys/fs/mshare";
/// The default mount's graft size: 512 GiB.
const ALIGN: usize = 512 << 30;
const RW: i32 = PROT_READ | PROT_WRITE;

fn path(tag: &str) -> String {
    format!("{ROOT}/test-{tag}-{}", std::process::id())
}

/// A new region of one alignment unit (unlinked by the caller), opened read-write.
fn create(tag: &str) -> (String, i32) {
    let p = path(tag);
    let fd = user_tests::open(&p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600).expect("create region");
    sys!(SYS_ftruncate, fd, ALIGN).expect("ftruncate");
    (p, fd)
}

fn unlink(p: &str) {
    let c = cstr(p);
    sys!(SYS_unlinkat, AT_FDCWD, c.as_ptr(), 0).expect("unlink");
}

fn ioctl_create(fd: i32, region_offset: usize, size: usize, prot: i32) -> Result<i64, Errno> {
    let c = MshareCreate {
        region_offset: region_offset as u64,
        size: size as u64,
        offset: 0,
        prot: prot as u32,
        flags: (MAP_ANONYMOUS | MAP_SHARED | MAP_FIXED) as u32,
        fd: 0,
    };
    sys!(SYS_ioctl, fd, MSHAREFS_CREATE_MAPPING, &c as *const MshareCreate)
}

fn ioctl_unmap(fd: i32, region_offset: usize, size: usize) -> Result<i64, Errno> {
    let u = MshareUnmap { region_offset: region_offset as u64, size: size as u64 };
    sys!(SYS_ioctl, fd, MSHAREFS_UNMAP, &u as *const MshareUnmap)
}

fn ioctl_protect(fd: i32, region_offset: usize, size: usize, prot: i32) -> Result<i64, Errno> {
    let p = MshareProtect { region_offset: region_offset as u64, size: size as u64, prot: prot as u32, reserved: 0 };
    sys!(SYS_ioctl, fd, MSHAREFS_PROTECT, &p as *const MshareProtect)
}

/// Maps the whole region read-write at a kernel-chosen address.
fn map(fd: i32) -> usize {
    mmap(0, ALIGN, RW, MAP_SHARED, fd, 0).expect("mmap region")
}

fn unmap(addr: usize) {
    sys!(SYS_munmap, addr, ALIGN).expect("munmap region");
}

/// A field of region `p`'s line in the mshare_stats of its mount.
fn stat(p: &str, field: &str) -> u64 {
    let (dir, name) = p.rsplit_once('/').unwrap();
    let text = read_proc(&cstr(&format!("{dir}/{}", msharefs::MSHARE_STATS)));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let col = header.iter().position(|h| *h == field).unwrap_or_else(|| panic!("no column {field}"));
    let line =
        lines.find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("no line for {name}"));
    line.split_whitespace().nth(col).unwrap().parse().unwrap()
}

fn mshare_info_reads_the_alignment_in_bytes() {
    let text = read_proc(&cstr(&format!("{ROOT}/{}", msharefs::MSHARE_INFO)));
    assert_eq!(text, format!("{ALIGN}\n"));
}

fn msharefs_reports_its_magic_in_statfs() {
    let mut st: statfs = unsafe { std::mem::zeroed() };
    let c = cstr(ROOT);
    sys!(SYS_statfs, c.as_ptr(), &mut st as *mut statfs).expect("statfs");
    assert_eq!(st.f_type as u64, msharefs::MSHARE_MAGIC);
}

fn a_region_is_sized_once_to_a_multiple_of_the_alignment() {
    let p = path("size");
    let fd = user_tests::open(&p, O_RDWR | O_CREAT | O_EXCL, 0o600).unwrap();
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_fstat, fd, &mut st as *mut stat).unwrap();
    assert_eq!((st.st_size, st.st_mode & S_IFMT), (0, S_IFREG));
    assert_errno!(sys!(SYS_ftruncate, fd, ALIGN / 2), EINVAL);
    sys!(SYS_ftruncate, fd, 2 * ALIGN).unwrap();
    sys!(SYS_fstat, fd, &mut st as *mut stat).unwrap();
    assert_eq!(st.st_size as usize, 2 * ALIGN);
    sys!(SYS_ftruncate, fd, 2 * ALIGN).expect("the size it has");
    assert_errno!(sys!(SYS_ftruncate, fd, ALIGN), EINVAL);
    close(fd).unwrap();
    unlink(&p);
}

fn o_excl_of_an_existing_region_is_eexist() {
    let (p, fd) = create("excl");
    assert_errno!(user_tests::open(&p, O_RDWR | O_CREAT | O_EXCL, 0o600), EEXIST);
    let again = user_tests::open(&p, O_RDWR | O_CREAT, 0o600).expect("without O_EXCL");
    close(again).unwrap();
    close(fd).unwrap();
    unlink(&p);
}

fn a_region_opened_without_permission_by_mode_is_eacces() {
    let (p, fd) = create("perm");
    run_in_child(|| {
        sys!(SYS_setresuid, 1000, 1000, 1000).expect("setresuid");
        assert_errno!(user_tests::open(&p, O_RDWR, 0), EACCES);
        assert_errno!(user_tests::open(&p, O_RDONLY, 0), EACCES);
    });
    close(fd).unwrap();
    unlink(&p);
}

fn fork_then_both_map_and_the_parent_reads_what_the_child_wrote() {
    let (p, fd) = create("fork");
    ioctl_create(fd, 0, 2 * PAGE, RW).expect("CREATE_MAPPING");
    let msg = b"I am Msharefs";
    let pid = fork_child(|| {
        let a = map(fd);
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), (a + PAGE) as *mut u8, msg.len()) };
        0
    });
    assert_eq!(wait_child(pid), Exit::Code(0));
    let a = map(fd);
    let got = unsafe { std::slice::from_raw_parts((a + PAGE) as *const u8, msg.len()) };
    assert_eq!(got, msg);
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn two_mappings_at_different_addresses_see_the_same_pages() {
    let (p, fd) = create("twoaddr");
    ioctl_create(fd, 0, PAGE, RW).unwrap();
    let a = mmap(2 * ALIGN, ALIGN, RW, MAP_SHARED | MAP_FIXED, fd, 0).expect("at 2 x align");
    let b = mmap(3 * ALIGN, ALIGN, RW, MAP_SHARED | MAP_FIXED, fd, 0).expect("at 3 x align");
    assert_eq!((a, b), (2 * ALIGN, 3 * ALIGN));
    store_byte(a + 10, 0x5a);
    assert_eq!(load_byte(b + 10), 0x5a);
    store_byte(b + 11, 0xa5);
    assert_eq!(load_byte(a + 11), 0xa5);
    unmap(a);
    assert_eq!(load_byte(b + 10), 0x5a, "the other window stays");
    unmap(b);
    close(fd).unwrap();
    unlink(&p);
}

fn a_second_process_takes_one_graft_fault_and_no_host_fault_for_touched_pages() {
    let (p, fd) = create("faults");
    let pages = 64;
    ioctl_create(fd, 0, pages * PAGE, RW).unwrap();
    let a = map(fd);
    for i in 0..pages {
        store_byte(a + i * PAGE, i as u8);
    }
    unmap(a);
    let grafts = stat(&p, "grafts_made");
    let host_faults = stat(&p, "host_faults");
    run_in_child(|| {
        let a = map(fd);
        let before = minflt();
        let mut sum = 0u64;
        for i in 0..pages {
            sum += load_byte(a + i * PAGE) as u64;
        }
        let faults = minflt() - before;
        assert_eq!(sum, (0..pages as u64).sum::<u64>());
        assert_eq!(faults, 1, "one fault, the graft");
    });
    assert_eq!(stat(&p, "grafts_made") - grafts, 1);
    assert_eq!(stat(&p, "host_faults") - host_faults, 0);
    close(fd).unwrap();
    unlink(&p);
}

/// Forks `n` children that map the region and wait on the pipe; returns their pids and
/// the write end that releases them. Each child then loads `addr_off` in its window and
/// exits 0 (a SIGSEGV kills it).
fn sharers_then_access(fd: i32, n: usize, write: bool) -> (Vec<pid_t>, i32) {
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let (ready_r, ready_w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let mut pids = Vec::new();
    for _ in 0..n {
        pids.push(fork_child(|| {
            let a = map(fd);
            assert_eq!(load_byte(a), 7);
            user_tests::write(ready_w, b"r").unwrap();
            let mut b = [0u8];
            user_tests::read(r, &mut b).unwrap();
            if write {
                store_byte(a, 8);
            } else {
                load_byte(a);
            }
            0
        }));
    }
    close(ready_w).unwrap();
    close(r).unwrap();
    for _ in 0..n {
        let mut b = [0u8];
        assert_eq!(user_tests::read(ready_r, &mut b), Ok(1), "a sharer did not get ready");
    }
    close(ready_r).unwrap();
    (pids, w)
}

fn after_msharefs_unmap_an_access_is_sigsegv_in_every_sharer() {
    let (p, fd) = create("unmap");
    ioctl_create(fd, 0, PAGE, RW).unwrap();
    let a = map(fd);
    store_byte(a, 7);
    let (pids, go) = sharers_then_access(fd, 3, false);
    ioctl_unmap(fd, 0, PAGE).expect("UNMAP");
    assert_eq!(user_tests::write(go, &[1, 1, 1]), Ok(3));
    close(go).unwrap();
    for pid in pids {
        assert_eq!(wait_child(pid), Exit::Signal(SIGSEGV));
    }
    assert_eq!(child_exit(|| load_byte(a) as i32), Exit::Signal(SIGSEGV));
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn the_protect_ioctl_makes_a_page_read_only_for_every_sharer() {
    let (p, fd) = create("protect");
    ioctl_create(fd, 0, 2 * PAGE, RW).unwrap();
    let a = map(fd);
    store_byte(a, 7);
    let (pids, go) = sharers_then_access(fd, 3, true);
    ioctl_protect(fd, 0, PAGE, PROT_READ).expect("PROTECT");
    assert_eq!(user_tests::write(go, &[1, 1, 1]), Ok(3));
    close(go).unwrap();
    for pid in pids {
        assert_eq!(wait_child(pid), Exit::Signal(SIGSEGV));
    }
    assert_eq!(load_byte(a), 7, "readable, and no sharer wrote");
    assert_eq!(
        child_exit(|| {
            store_byte(a, 9);
            0
        }),
        Exit::Signal(SIGSEGV)
    );
    store_byte(a + PAGE, 1);
    ioctl_protect(fd, 0, PAGE, RW).expect("PROTECT back");
    store_byte(a, 9);
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn a_window_cannot_be_split_mprotected_mremapped_madvised_or_mlocked() {
    let (p, fd) = create("nosplit");
    ioctl_create(fd, 0, PAGE, RW).unwrap();
    let a = map(fd);
    store_byte(a, 1);
    assert_errno!(sys!(SYS_munmap, a, PAGE), EINVAL);
    assert_errno!(sys!(SYS_munmap, a + PAGE, PAGE), EINVAL);
    assert_errno!(sys!(SYS_mprotect, a, PAGE, PROT_READ), EINVAL);
    assert_errno!(sys!(SYS_mprotect, a, ALIGN, PROT_READ), EINVAL);
    assert_errno!(sys!(SYS_mremap, a, ALIGN, 2 * ALIGN, MREMAP_MAYMOVE), EINVAL);
    assert_errno!(sys!(SYS_madvise, a, PAGE, MADV_DONTNEED), EINVAL);
    assert_errno!(sys!(SYS_mlock, a, PAGE), EINVAL);
    assert_errno!(mmap(a + PAGE, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), EINVAL);
    assert_eq!(load_byte(a), 1, "nothing changed");
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn a_window_mapped_read_only_cannot_be_written() {
    let (p, fd) = create("ro");
    ioctl_create(fd, 0, PAGE, RW).unwrap();
    let w = map(fd);
    store_byte(w, 3);
    let r = mmap(0, ALIGN, PROT_READ, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(load_byte(r), 3);
    assert_eq!(
        child_exit(|| {
            store_byte(r, 4);
            0
        }),
        Exit::Signal(SIGSEGV)
    );
    assert_eq!(load_byte(w), 3);
    unmap(r);
    unmap(w);
    close(fd).unwrap();
    unlink(&p);
}

fn unlink_while_mapped_keeps_the_region_until_the_last_unmap() {
    let (p, fd) = create("unlinked");
    ioctl_create(fd, 0, PAGE, RW).unwrap();
    let a = map(fd);
    store_byte(a, 42);
    close(fd).unwrap();
    unlink(&p);
    assert_errno!(user_tests::open(&p, O_RDWR, 0), ENOENT);
    assert_eq!(load_byte(a), 42);
    store_byte(a, 43);
    assert_eq!(load_byte(a), 43);
    unmap(a);
}

fn the_creator_exiting_changes_nothing_for_the_guests() {
    let p = path("creator");
    let pid = fork_child(|| {
        let (_, fd) = {
            let fd = user_tests::open(&p, O_RDWR | O_CREAT | O_EXCL, 0o600).unwrap();
            sys!(SYS_ftruncate, fd, ALIGN).unwrap();
            (p.clone(), fd)
        };
        ioctl_create(fd, 0, PAGE, RW).unwrap();
        let a = map(fd);
        store_byte(a, 77);
        0
    });
    assert_eq!(wait_child(pid), Exit::Code(0));
    let fd = user_tests::open(&p, O_RDWR, 0).unwrap();
    let a = map(fd);
    assert_eq!(load_byte(a), 77);
    store_byte(a, 78);
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

const MIB: usize = 1 << 20;

fn create_mapping_is_charged_to_the_creators_rlimit_as() {
    let p = path("owner-as");
    let c = cstr(&p);
    // The creator makes the region under a 64 MiB RLIMIT_AS and leaves: what the region
    // maps counts against that limit, whoever asks.
    let pid = fork_child(|| {
        set_rlimit_as(64 * MIB as u64);
        let fd = sys!(SYS_openat, AT_FDCWD, c.as_ptr(), O_RDWR | O_CREAT | O_EXCL, 0o600).unwrap() as i32;
        sys!(SYS_ftruncate, fd, ALIGN).unwrap();
        0
    });
    assert_eq!(wait_child(pid), Exit::Code(0));
    let fd = user_tests::open(&p, O_RDWR, 0).unwrap();
    assert_errno!(ioctl_create(fd, 0, 128 * MIB, RW), ENOMEM);
    ioctl_create(fd, 0, 32 * MIB, RW).unwrap();
    ioctl_create(fd, 32 * MIB, 32 * MIB, RW).unwrap();
    assert_errno!(ioctl_create(fd, 64 * MIB, PAGE, RW), ENOMEM);
    close(fd).unwrap();
    unlink(&p);
}

fn create_mapping_is_not_charged_to_the_callers_rlimit_as() {
    let (p, fd) = create("caller-as");
    // A process under a 16 MiB RLIMIT_AS fills the creator's (unlimited) region with
    // 64 MiB: a window it maps would count against its limit, the region's mappings do not.
    let pid = fork_child(|| {
        set_rlimit_as(16 * MIB as u64);
        match ioctl_create(fd, 0, 64 * MIB, RW) {
            Ok(_) => 0,
            Err(_) => 1,
        }
    });
    assert_eq!(wait_child(pid), Exit::Code(0));
    let a = map(fd);
    store_byte(a + 63 * MIB, 5);
    assert_eq!(load_byte(a + 63 * MIB), 5);
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn meminfo_kb(name: &str) -> u64 {
    user_tests::meminfo_kb(name)
}

fn the_region_pages_are_freed_when_the_last_user_goes() {
    let shmem = meminfo_kb("Shmem");
    let tables = meminfo_kb("PageTables");
    let (p, fd) = create("free");
    let size = 4 << 20;
    ioctl_create(fd, 0, size, RW).unwrap();
    let a = map(fd);
    for off in (0..size).step_by(PAGE) {
        store_byte(a + off, 1);
    }
    assert!(meminfo_kb("Shmem") >= shmem + 4096, "the region's 4 MiB are shmem");
    assert!(meminfo_kb("PageTables") > tables);
    close(fd).unwrap();
    unlink(&p);
    assert!(meminfo_kb("Shmem") >= shmem + 4096, "still mapped");
    unmap(a);
    assert!(meminfo_kb("Shmem") < shmem + 1024, "freed with the last mapping: {} kB", meminfo_kb("Shmem"));
    assert!(meminfo_kb("PageTables") <= tables, "the host's tables went too");
}

fn the_region_page_tables_are_counted_once_and_guests_pay_none() {
    let (p, fd) = create("tables");
    let size = 64 << 20;
    ioctl_create(fd, 0, size, RW).unwrap();
    let n = 4;
    let mut pids = Vec::new();
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let (ready_r, ready_w) = user_tests::pipe(O_CLOEXEC).unwrap();
    for _ in 0..n {
        pids.push(fork_child(|| {
            // Only the parent keeps the release's write end: its close releases everyone.
            close(w).unwrap();
            close(ready_r).unwrap();
            let pte = user_tests::status_kb("VmPTE");
            let a = map(fd);
            for off in (0..size).step_by(PAGE) {
                store_byte(a + off, 1);
            }
            // The verdict goes to the parent, which holds the others until it has all.
            let grown = user_tests::status_kb("VmPTE") - pte;
            user_tests::write(ready_w, &[grown as u8]).unwrap();
            let mut b = [0u8];
            let _ = user_tests::read(r, &mut b);
            0
        }));
    }
    close(ready_w).unwrap();
    close(r).unwrap();
    for _ in 0..n {
        let mut b = [0u8];
        assert_eq!(user_tests::read(ready_r, &mut b), Ok(1));
        assert_eq!(b[0], 0, "a guest's VmPTE grew by {} kB for the window", b[0]);
    }
    // One process's worth: a PT per 2 MiB, one PD, one PDPT (the host's VmPTE).
    let expected = (size / (2 << 20) + 2) * PAGE;
    assert_eq!(stat(&p, "pt_bytes"), expected as u64);
    assert_eq!(stat(&p, "sharers"), n as u64);
    close(w).unwrap();
    for pid in pids {
        assert_eq!(wait_child(pid), Exit::Code(0));
    }
    assert_eq!(stat(&p, "sharers"), 0);
    close(ready_r).unwrap();
    close(fd).unwrap();
    unlink(&p);
}

fn sixty_four_guests_touching_every_page_pay_one_graft_fault_and_no_table_each() {
    guests_touching_every_page_pay_one_graft_fault_and_no_table_each("sixtyfour", 256 << 20, 64);
}

/// Needs about 1.2 GiB of memory: run in a boot of its own (`GIB_MODE`).
fn sixty_four_guests_of_a_gib_region_touching_every_page_pay_one_graft_fault_and_no_table_each() {
    guests_touching_every_page_pay_one_graft_fault_and_no_table_each("gib", 1 << 30, 64);
}

/// A process fills `size` bytes of a region, then `guests` processes map it and read every
/// page: the region's tables are one process's worth, and each guest takes one fault (its
/// graft) and pays no table of its own.
fn guests_touching_every_page_pay_one_graft_fault_and_no_table_each(tag: &str, size: usize, guests: usize) {
    let (p, fd) = create(tag);
    ioctl_create(fd, 0, size, RW).unwrap();
    let a = map(fd);
    for off in (0..size).step_by(PAGE) {
        store_byte(a + off, 1);
    }
    unmap(a);
    // One process's worth: a PT per 2 MiB, one PD, one PDPT.
    let tables = ((size / (2 << 20) + 2) * PAGE) as u64;
    assert_eq!(stat(&p, "pt_bytes"), tables);
    let (grafts, host_faults) = (stat(&p, "grafts_made"), stat(&p, "host_faults"));
    // Per guest: its faults and VmPTE growth while it mapped and read every page.
    let seen = user_tests::shared_words(2 * guests);
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let (ready_r, ready_w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let pids: Vec<pid_t> = (0..guests)
        .map(|g| {
            fork_child(|| {
                close(w).unwrap();
                close(ready_r).unwrap();
                let pte = user_tests::status_kb("VmPTE");
                let before = minflt();
                let a = map(fd);
                let mut sum = 0u64;
                for off in (0..size).step_by(PAGE) {
                    sum += load_byte(a + off) as u64;
                }
                let faults = minflt() - before;
                assert_eq!(sum, (size / PAGE) as u64);
                seen[2 * g].store(faults as u64, std::sync::atomic::Ordering::Relaxed);
                seen[2 * g + 1].store(user_tests::status_kb("VmPTE") - pte, std::sync::atomic::Ordering::Relaxed);
                user_tests::write(ready_w, b"r").unwrap();
                let mut b = [0u8];
                let _ = user_tests::read(r, &mut b);
                0
            })
        })
        .collect();
    close(ready_w).unwrap();
    close(r).unwrap();
    for _ in 0..guests {
        let mut b = [0u8];
        assert_eq!(user_tests::read(ready_r, &mut b), Ok(1), "a guest did not finish");
    }
    assert_eq!(stat(&p, "sharers"), guests as u64, "every guest holds its graft");
    assert_eq!(stat(&p, "pt_bytes"), tables, "the region's tables did not grow");
    close(w).unwrap();
    for pid in pids {
        assert_eq!(wait_child(pid), Exit::Code(0));
    }
    for g in 0..guests {
        let (faults, pte) = (
            seen[2 * g].load(std::sync::atomic::Ordering::Relaxed),
            seen[2 * g + 1].load(std::sync::atomic::Ordering::Relaxed),
        );
        assert_eq!(faults, 1, "guest {g}: one fault, the graft (of a 512 GiB slot)");
        assert!(pte <= 4, "guest {g}: its VmPTE grew by {pte} kB, more than one page");
    }
    assert_eq!(stat(&p, "grafts_made") - grafts, guests as u64);
    assert_eq!(stat(&p, "host_faults") - host_faults, 0);
    close(ready_r).unwrap();
    close(fd).unwrap();
    unlink(&p);
}

fn a_guest_counts_the_region_pages_it_reaches_as_rss_shmem() {
    let (p, fd) = create("rss");
    let size = 8 << 20;
    ioctl_create(fd, 0, size, RW).unwrap();
    let a = map(fd);
    for off in (0..size).step_by(PAGE) {
        store_byte(a + off, 1);
    }
    unmap(a);
    run_in_child(|| {
        let (rss, shmem) = (user_tests::status_kb("VmRSS"), user_tests::status_kb("RssShmem"));
        let a = map(fd);
        assert_eq!(user_tests::status_kb("RssShmem"), shmem, "nothing reached before the first access");
        load_byte(a);
        let kb = (size / 1024) as u64;
        assert_eq!(user_tests::status_kb("RssShmem"), shmem + kb, "every page the graft reaches");
        assert!(user_tests::status_kb("VmRSS") >= rss + kb);
        assert_eq!(smaps_kb(a, "Rss"), kb);
        unmap(a);
        assert_eq!(user_tests::status_kb("RssShmem"), shmem);
    });
    close(fd).unwrap();
    unlink(&p);
}

fn smaps_divides_a_window_pss_among_the_address_spaces_reaching_the_region() {
    let (p, fd) = create("pss");
    let size = 4 << 20;
    ioctl_create(fd, 0, size, RW).unwrap();
    let a = map(fd);
    for off in (0..size).step_by(PAGE) {
        store_byte(a + off, 1);
    }
    let kb = (size / 1024) as u64;
    assert_eq!((smaps_kb(a, "Rss"), smaps_kb(a, "Pss")), (kb, kb), "one sharer: all its own");
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let (ready_r, ready_w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let pids: Vec<pid_t> = (0..3)
        .map(|_| {
            fork_child(|| {
                close(w).unwrap();
                let b = map(fd);
                load_byte(b);
                user_tests::write(ready_w, b"r").unwrap();
                let mut x = [0u8];
                let _ = user_tests::read(r, &mut x);
                0
            })
        })
        .collect();
    close(ready_w).unwrap();
    close(r).unwrap();
    for _ in 0..3 {
        let mut x = [0u8];
        assert_eq!(user_tests::read(ready_r, &mut x), Ok(1));
    }
    assert_eq!(smaps_kb(a, "Rss"), kb);
    assert_eq!(smaps_kb(a, "Pss"), kb / 4, "four address spaces map the region");
    assert_eq!(smaps_kb(a, "Shared_Clean") + smaps_kb(a, "Shared_Dirty"), kb);
    close(w).unwrap();
    for pid in pids {
        assert_eq!(wait_child(pid), Exit::Code(0));
    }
    assert_eq!(smaps_kb(a, "Pss"), kb, "alone again");
    close(ready_r).unwrap();
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn create_mapping_of_a_memfd_shares_its_pages() {
    let (p, fd) = create("memfd");
    let name = cstr("mshare-memfd");
    let mfd = sys!(SYS_memfd_create, name.as_ptr(), MFD_CLOEXEC).unwrap() as i32;
    sys!(SYS_ftruncate, mfd, 2 * PAGE).unwrap();
    assert_eq!(sys!(SYS_pwrite64, mfd, b"from the memfd".as_ptr(), 14, PAGE), Ok(14));
    let c = MshareCreate {
        region_offset: (8 * PAGE) as u64,
        size: PAGE as u64,
        offset: PAGE as u64,
        prot: RW as u32,
        flags: (MAP_SHARED | MAP_FIXED) as u32,
        fd: mfd as u32,
    };
    sys!(SYS_ioctl, fd, MSHAREFS_CREATE_MAPPING, &c as *const MshareCreate).expect("CREATE_MAPPING of a memfd");
    let a = map(fd);
    let got = unsafe { std::slice::from_raw_parts((a + 8 * PAGE) as *const u8, 14) };
    assert_eq!(got, b"from the memfd");
    store_byte(a + 8 * PAGE, b'F');
    let mut buf = [0u8; 1];
    assert_eq!(sys!(SYS_pread64, mfd, buf.as_mut_ptr(), 1, PAGE), Ok(1));
    assert_eq!(&buf, b"F");
    unmap(a);
    close(mfd).unwrap();
    close(fd).unwrap();
    unlink(&p);
}

fn bad_mmap_of_a_region_is_einval() {
    let (p, fd) = create("badmmap");
    assert_errno!(mmap(0, ALIGN, PROT_READ, MAP_PRIVATE, fd, 0), EINVAL);
    assert_errno!(mmap(0, ALIGN / 2, RW, MAP_SHARED, fd, 0), EINVAL);
    assert_errno!(mmap(0, ALIGN, RW, MAP_SHARED, fd, PAGE as i64), EINVAL);
    assert_errno!(mmap(ALIGN + PAGE, ALIGN, RW, MAP_SHARED | MAP_FIXED, fd, 0), EINVAL);
    let ro = user_tests::open(&p, O_RDONLY, 0).unwrap();
    assert_errno!(mmap(0, ALIGN, RW, MAP_SHARED, ro, 0), EACCES);
    let a = mmap(ALIGN + PAGE, ALIGN, PROT_READ, MAP_SHARED, ro, 0).expect("a hint is rounded up");
    assert_eq!(a % ALIGN, 0);
    unmap(a);
    close(ro).unwrap();
    let empty = path("empty");
    let efd = user_tests::open(&empty, O_RDWR | O_CREAT | O_EXCL, 0o600).unwrap();
    assert_errno!(mmap(0, ALIGN, RW, MAP_SHARED, efd, 0), EINVAL);
    close(efd).unwrap();
    unlink(&empty);
    close(fd).unwrap();
    unlink(&p);
}

fn bad_ioctls_are_refused_and_change_nothing() {
    let (p, fd) = create("badioctl");
    ioctl_create(fd, 0, 2 * PAGE, RW).unwrap();
    // Overlapping, past the end, unaligned, empty.
    assert_errno!(ioctl_create(fd, PAGE, 2 * PAGE, RW), EINVAL);
    assert_errno!(ioctl_create(fd, ALIGN - PAGE, 2 * PAGE, RW), EINVAL);
    assert_errno!(ioctl_create(fd, 100, PAGE, RW), EINVAL);
    assert_errno!(ioctl_create(fd, 4 * PAGE, 100, RW), EINVAL);
    assert_errno!(ioctl_create(fd, 4 * PAGE, 0, RW), EINVAL);
    assert_errno!(ioctl_create(fd, 4 * PAGE, PAGE, 8), EINVAL);
    // Flags: MAP_FIXED is required, MAP_PRIVATE refused; an fd must be open.
    let mut c =
        MshareCreate { region_offset: (4 * PAGE) as u64, size: PAGE as u64, prot: RW as u32, ..Default::default() };
    for flags in [
        MAP_ANONYMOUS | MAP_SHARED,
        MAP_ANONYMOUS | MAP_PRIVATE | MAP_FIXED,
        MAP_ANONYMOUS | MAP_SHARED | MAP_FIXED | MAP_POPULATE,
    ] {
        c.flags = flags as u32;
        assert_errno!(sys!(SYS_ioctl, fd, MSHAREFS_CREATE_MAPPING, &c as *const MshareCreate), EINVAL);
    }
    c.flags = (MAP_SHARED | MAP_FIXED) as u32;
    c.fd = 999;
    assert_errno!(sys!(SYS_ioctl, fd, MSHAREFS_CREATE_MAPPING, &c as *const MshareCreate), EBADF);
    c.fd = fd as u32;
    assert_errno!(sys!(SYS_ioctl, fd, MSHAREFS_CREATE_MAPPING, &c as *const MshareCreate), EINVAL);
    // Bad pointers, unknown requests, reserved bits.
    assert_errno!(sys!(SYS_ioctl, fd, MSHAREFS_CREATE_MAPPING, 8), EFAULT);
    assert_errno!(sys!(SYS_ioctl, fd, MSHAREFS_UNMAP, 8), EFAULT);
    assert_errno!(sys!(SYS_ioctl, fd, MSHAREFS_CREATE_MAPPING + 3, &c as *const MshareCreate), ENOTTY);
    let pr = MshareProtect { region_offset: 0, size: PAGE as u64, prot: PROT_READ as u32, reserved: 1 };
    assert_errno!(sys!(SYS_ioctl, fd, MSHAREFS_PROTECT, &pr as *const MshareProtect), EINVAL);
    assert_errno!(ioctl_unmap(fd, 0, 0), EINVAL);
    assert_errno!(ioctl_unmap(fd, 0, 2 * ALIGN), EINVAL);
    assert_errno!(ioctl_protect(fd, PAGE, PAGE, 8), EINVAL);
    // Nothing changed: both pages are there, writable.
    let a = map(fd);
    store_byte(a, 1);
    store_byte(a + PAGE, 2);
    assert_eq!(child_exit(|| load_byte(a + 2 * PAGE) as i32), Exit::Signal(SIGSEGV));
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn a_futex_in_a_region_wakes_a_waiter_in_another_process_at_another_address() {
    let (p, fd) = create("futex");
    ioctl_create(fd, 0, PAGE, RW).unwrap();
    let a = mmap(2 * ALIGN, ALIGN, RW, MAP_SHARED | MAP_FIXED, fd, 0).unwrap();
    user_tests::shared_futex_meets(a + 128, || {
        mmap(3 * ALIGN, ALIGN, RW, MAP_SHARED | MAP_FIXED, fd, 0).unwrap() + 128
    });
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn a_futex_in_a_shm_share_mmu_attach_wakes_a_waiter_in_a_plain_attach() {
    let id = sys!(SYS_shmget, IPC_PRIVATE, PAGE, IPC_CREAT | 0o600).unwrap() as i32;
    let a = sys!(SYS_shmat, id, 0, msharefs::SHM_SHARE_MMU).unwrap() as usize;
    user_tests::shared_futex_meets(a + 8, || sys!(SYS_shmat, id, 0, 0).unwrap() as usize + 8);
    sys!(SYS_shmdt, a).unwrap();
    sys!(SYS_shmctl, id, IPC_RMID, 0).unwrap();
}

fn mincore_and_pagemap_show_the_region_pages_a_window_reaches() {
    let (p, fd) = create("mincore");
    ioctl_create(fd, 0, 4 * PAGE, RW).unwrap();
    let a = map(fd);
    store_byte(a, 1);
    store_byte(a + 2 * PAGE, 1);
    let mut v = [0u8; 4];
    sys!(SYS_mincore, a, 4 * PAGE, v.as_mut_ptr()).expect("mincore");
    assert_eq!(v.map(|b| b & 1), [1, 0, 1, 0]);
    let pm = user_tests::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0).unwrap();
    let mut e = [0u64; 4];
    assert_eq!(sys!(SYS_pread64, pm, e.as_mut_ptr(), 32, a / PAGE * 8), Ok(32));
    let present: Vec<u64> = e.iter().map(|x| x >> 63).collect();
    assert_eq!(present, [1, 0, 1, 0]);
    assert_eq!(e[0] >> 61 & 1, 1, "a shmem page");
    close(pm).unwrap();
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

fn usercopy_through_a_window_reads_and_writes_the_region() {
    let (p, fd) = create("usercopy");
    ioctl_create(fd, 0, 2 * PAGE, RW).unwrap();
    let a = map(fd);
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    assert_eq!(user_tests::write(w, b"through the window"), Ok(18));
    // read() fills the window before anything touched it: the kernel's copy faults it in.
    assert_eq!(sys!(SYS_read, r, a + PAGE - 4, 18), Ok(18));
    let got = unsafe { std::slice::from_raw_parts((a + PAGE - 4) as *const u8, 18) };
    assert_eq!(got, b"through the window");
    assert_eq!(sys!(SYS_write, w, a + PAGE - 4, 18), Ok(18));
    let mut back = [0u8; 18];
    assert_eq!(user_tests::read(r, &mut back), Ok(18));
    assert_eq!(&back, b"through the window");
    assert_errno!(sys!(SYS_write, w, a + 4 * PAGE, 1), EFAULT);
    close(r).unwrap();
    close(w).unwrap();
    unmap(a);
    close(fd).unwrap();
    unlink(&p);
}

// ---------------------------------------------------------------------------------------
// Graft sizes per mount
// ---------------------------------------------------------------------------------------

/// msharefs mounted with `data` on a fresh directory; unmounted and removed on drop.
struct Mount {
    dir: user_tests::TempDir,
}

impl Mount {
    fn new(data: &str) -> Result<Mount, Errno> {
        let dir = user_tests::TempDir::new();
        let (src, t, ty, d) = (cstr("none"), cstr(&dir.join("")), cstr("msharefs"), cstr(data));
        sys!(SYS_mount, src.as_ptr(), t.as_ptr(), ty.as_ptr(), 0, d.as_ptr())?;
        Ok(Mount { dir })
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name)
    }

    /// A region of `size` bytes in this mount holding `mapped` bytes of anonymous memory.
    fn region(&self, name: &str, size: usize, mapped: usize) -> i32 {
        let fd = user_tests::open(&self.path(name), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600).unwrap();
        sys!(SYS_ftruncate, fd, size).expect("ftruncate");
        ioctl_create(fd, 0, mapped, RW).expect("CREATE_MAPPING");
        fd
    }

    /// A field of region `name`'s line in this mount's mshare_stats.
    fn stat(&self, name: &str, field: &str) -> u64 {
        stat(&self.path(name), field)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = sys!(SYS_umount2, cstr(&self.dir.join("")).as_ptr(), 0);
    }
}

/// Maps region `fd` of `size` bytes in a child, reads each page of the first `touched`
/// bytes and returns (faults, VmPTE growth in kB) from the child.
fn guest_faults_and_tables(fd: i32, size: usize, align: usize, touched: usize) -> (u64, u64) {
    let seen = user_tests::shared_words(2);
    run_in_child(|| {
        let pte = user_tests::status_kb("VmPTE");
        let before = minflt();
        let a = mmap(0, size, RW, MAP_SHARED, fd, 0).unwrap();
        assert_eq!(a % align, 0);
        for off in (0..touched).step_by(PAGE) {
            load_byte(a + off);
        }
        seen[0].store((minflt() - before) as u64, std::sync::atomic::Ordering::Relaxed);
        seen[1].store(user_tests::status_kb("VmPTE") - pte, std::sync::atomic::Ordering::Relaxed);
    });
    (seen[0].load(std::sync::atomic::Ordering::Relaxed), seen[1].load(std::sync::atomic::Ordering::Relaxed))
}

fn a_graft_2m_mount_grafts_one_page_table_per_2_mib() {
    let m = Mount::new("graft=2m").expect("mount msharefs graft=2m");
    assert_eq!(read_proc(&cstr(&m.path(msharefs::MSHARE_INFO))), format!("{}\n", 2 << 20));
    let size = 8 << 20;
    let fd = m.region("r", size, size);
    assert_errno!(sys!(SYS_ftruncate, fd, size + PAGE), EINVAL);
    // The first guest fills the host: afterwards its tables are the host's 4 PTs, a PD and a PDPT.
    guest_faults_and_tables(fd, size, 2 << 20, size);
    assert_eq!(m.stat("r", "pt_bytes"), 6 * PAGE as u64);
    let grafts = m.stat("r", "grafts_made");
    let (faults, pte) = guest_faults_and_tables(fd, size, 2 << 20, size);
    assert_eq!(faults, 4, "one graft per 2 MiB");
    assert!(pte <= 8, "its own PD (and PDPT) only: {pte} kB");
    assert_eq!(m.stat("r", "grafts_made") - grafts, 4);
    close(fd).unwrap();
}

fn a_graft_1g_mount_grafts_one_page_directory_per_gib() {
    let m = Mount::new("graft=1g").expect("mount msharefs graft=1g");
    assert_eq!(read_proc(&cstr(&m.path(msharefs::MSHARE_INFO))), format!("{}\n", GIB));
    let mapped = 8 << 20;
    let fd = m.region("r", GIB, mapped);
    guest_faults_and_tables(fd, GIB, GIB, mapped);
    assert_eq!(m.stat("r", "pt_bytes"), 6 * PAGE as u64, "4 PTs, a PD, a PDPT");
    let (faults, pte) = guest_faults_and_tables(fd, GIB, GIB, mapped);
    assert_eq!(faults, 1, "one graft for the GiB");
    assert!(pte <= 4, "its own PDPT only: {pte} kB");
    close(fd).unwrap();
}

fn mount_of_msharefs_with_a_bad_graft_is_einval() {
    assert_errno!(Mount::new("graft=4k").map(|_| ()), EINVAL);
    assert_errno!(Mount::new("size=1m").map(|_| ()), EINVAL);
}

// ---------------------------------------------------------------------------------------
// The 2022 system calls: mshare(name, addr, len, oflag, mode) and mshare_unlink(name)
// ---------------------------------------------------------------------------------------

fn mshare(name: &str, addr: usize, len: usize, oflag: i32, mode: u32) -> Result<i64, Errno> {
    let c = cstr(name);
    sys!(msharefs::SYS_MSHARE as c_long, c.as_ptr(), addr, len, oflag, mode)
}

fn mshare_unlink(name: &str) -> Result<i64, Errno> {
    let c = cstr(name);
    sys!(msharefs::SYS_MSHARE_UNLINK as c_long, c.as_ptr())
}

fn sys_name(tag: &str) -> String {
    format!("sys-{tag}-{}", std::process::id())
}

/// The region's address for the syscall tests: the fifth 512 GiB slot.
const AT: usize = 4 * ALIGN;

/// A shared anonymous page at `AT + off` holding `v` at its start.
fn shared_page_at(off: usize, v: u8) {
    let a = mmap(AT + off, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0).expect("shared page");
    store_byte(a, v);
}

fn mshare_create_makes_the_callers_shared_mappings_the_region() {
    run_in_child(|| {
        let n = sys_name("create");
        shared_page_at(0, 11);
        shared_page_at(8 * PAGE, 12);
        mshare(&n, AT, ALIGN, O_CREAT | O_EXCL | O_RDWR, 0o600).expect("mshare O_CREAT");
        assert_eq!((load_byte(AT), load_byte(AT + 8 * PAGE)), (11, 12), "the contents stay");
        store_byte(AT + 8 * PAGE, 13);
        let maps = read_proc(&cstr("/proc/self/maps"));
        let windows: Vec<&str> = maps.lines().filter(|l| l.starts_with(&format!("{AT:x}-"))).collect();
        assert_eq!(windows.len(), 1, "one window replaces the mappings: {maps}");
        assert!(windows[0].ends_with(&format!("{ROOT}/{n}")), "{}", windows[0]);
        let pid = fork_child(|| {
            // A fresh process (the window dropped) attaches by name.
            unmap(AT);
            mshare(&n, AT, ALIGN, O_RDWR, 0).expect("attach");
            (load_byte(AT) == 11 && load_byte(AT + 8 * PAGE) == 13) as i32
        });
        assert_eq!(wait_child(pid), Exit::Code(1));
        mshare_unlink(&n).unwrap();
    });
}

fn mshare_attach_maps_the_region_at_its_address() {
    run_in_child(|| {
        let n = sys_name("attach");
        shared_page_at(0, 21);
        mshare(&n, AT, ALIGN, O_CREAT | O_RDWR, 0o600).unwrap();
        let pid = fork_child(|| {
            unmap(AT);
            assert_errno!(mshare(&n, AT + ALIGN, ALIGN, O_RDWR, 0), EINVAL);
            let other = mmap(AT, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0).unwrap();
            assert_errno!(mshare(&n, AT, ALIGN, O_RDWR, 0), EEXIST);
            sys!(SYS_munmap, other, PAGE).unwrap();
            mshare(&n, AT, ALIGN, O_RDONLY, 0).expect("read-only attach");
            assert_eq!(load_byte(AT), 21);
            match child_exit(|| {
                store_byte(AT, 1);
                0
            }) {
                Exit::Signal(SIGSEGV) => 0,
                e => panic!("a write through a read-only attach: {e:?}"),
            }
        });
        assert_eq!(wait_child(pid), Exit::Code(0));
        assert_eq!(load_byte(AT), 21);
        mshare_unlink(&n).unwrap();
    });
}

fn mshare_region_reads_as_its_start_and_size() {
    run_in_child(|| {
        let n = sys_name("read");
        mshare(&n, AT, 2 * ALIGN, O_CREAT | O_RDWR, 0o600).unwrap();
        let fd = user_tests::open(&format!("{ROOT}/{n}"), O_RDONLY, 0).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(user_tests::read(fd, &mut buf), Ok(16));
        let start = u64::from_ne_bytes(buf[..8].try_into().unwrap());
        let size = u64::from_ne_bytes(buf[8..].try_into().unwrap());
        assert_eq!((start, size), (AT as u64, 2 * ALIGN as u64));
        close(fd).unwrap();
        mshare_unlink(&n).unwrap();
    });
}

fn mshare_access_to_a_hole_is_sigbus() {
    run_in_child(|| {
        let n = sys_name("hole");
        shared_page_at(0, 1);
        mshare(&n, AT, ALIGN, O_CREAT | O_RDWR, 0o600).unwrap();
        assert_eq!(child_exit(|| load_byte(AT + PAGE) as i32), Exit::Signal(SIGBUS));
        assert_eq!(load_byte(AT), 1);
        mshare_unlink(&n).unwrap();
    });
}

fn mshare_create_over_a_private_mapping_is_einval() {
    run_in_child(|| {
        let n = sys_name("private");
        shared_page_at(0, 1);
        mmap(AT + PAGE, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0).unwrap();
        store_byte(AT + PAGE, 2);
        assert_errno!(mshare(&n, AT, ALIGN, O_CREAT | O_RDWR, 0o600), EINVAL);
        assert_errno!(mshare_unlink(&n), ENOENT);
        assert_eq!((load_byte(AT), load_byte(AT + PAGE)), (1, 2), "nothing moved");
    });
}

fn mshare_bad_arguments_are_refused() {
    run_in_child(|| {
        let n = sys_name("bad");
        assert_errno!(mshare(&n, AT + PAGE, ALIGN, O_CREAT | O_RDWR, 0o600), EINVAL);
        assert_errno!(mshare(&n, AT, ALIGN / 2, O_CREAT | O_RDWR, 0o600), EINVAL);
        assert_errno!(mshare(&n, AT, 0, O_CREAT | O_RDWR, 0o600), EINVAL);
        assert_errno!(mshare(&n, AT, ALIGN, O_CREAT | O_WRONLY, 0o600), EINVAL);
        assert_errno!(mshare("a/b", AT, ALIGN, O_CREAT | O_RDWR, 0o600), EINVAL);
        assert_errno!(mshare(&n, AT, ALIGN, O_RDWR, 0), ENOENT);
        assert_errno!(sys!(msharefs::SYS_MSHARE as c_long, 8, AT, ALIGN, O_CREAT | O_RDWR, 0o600), EFAULT);
        mshare(&n, AT, ALIGN, O_CREAT | O_RDWR, 0o600).unwrap();
        assert_errno!(mshare(&n, AT, ALIGN, O_CREAT | O_EXCL | O_RDWR, 0o600), EEXIST);
        mshare_unlink(&n).unwrap();
        assert_errno!(mshare_unlink(&n), ENOENT);
        assert_errno!(sys!(msharefs::SYS_MSHARE_UNLINK as c_long, 8), EFAULT);
    });
}

fn mshare_attach_without_permission_by_mode_is_eacces() {
    run_in_child(|| {
        let n = sys_name("perm");
        shared_page_at(0, 5);
        mshare(&n, AT, ALIGN, O_CREAT | O_RDWR, 0o640).unwrap();
        let pid = fork_child(|| {
            unmap(AT);
            sys!(SYS_setresgid, 1000, 1000, 1000).unwrap();
            sys!(SYS_setresuid, 1000, 1000, 1000).unwrap();
            assert_errno!(mshare(&n, AT, ALIGN, O_RDONLY, 0), EACCES);
            0
        });
        assert_eq!(wait_child(pid), Exit::Code(0));
        let pid = fork_child(|| {
            unmap(AT);
            sys!(SYS_setresuid, 1000, 1000, 1000).unwrap();
            // Group 0 may read (0640), not write.
            assert_errno!(mshare(&n, AT, ALIGN, O_RDWR, 0), EACCES);
            mshare(&n, AT, ALIGN, O_RDONLY, 0).expect("read-only by group");
            (load_byte(AT) == 5) as i32
        });
        assert_eq!(wait_child(pid), Exit::Code(1));
        mshare_unlink(&n).unwrap();
    });
}

fn mshare_unlink_removes_the_name_and_the_mapping_lives_on() {
    run_in_child(|| {
        let n = sys_name("unlink");
        shared_page_at(0, 9);
        mshare(&n, AT, ALIGN, O_CREAT | O_RDWR, 0o600).unwrap();
        mshare_unlink(&n).unwrap();
        assert_errno!(user_tests::open(&format!("{ROOT}/{n}"), O_RDONLY, 0), ENOENT);
        assert_eq!(load_byte(AT), 9);
        store_byte(AT, 10);
        assert_eq!(load_byte(AT), 10);
    });
}

// ---------------------------------------------------------------------------------------
// SHM_SHARE_MMU: SysV attaches through the segment's region
// ---------------------------------------------------------------------------------------

const SHM_SHARE_MMU: i32 = msharefs::SHM_SHARE_MMU as i32;
const GIB: usize = 1 << 30;

fn shmget_(size: usize, flags: i32) -> i32 {
    sys!(SYS_shmget, IPC_PRIVATE, size, IPC_CREAT | 0o600 | flags).expect("shmget") as i32
}

fn shmat_(id: i32, addr: usize, flags: i32) -> Result<usize, Errno> {
    sys!(SYS_shmat, id, addr, flags).map(|a| a as usize)
}

fn shmdt_(addr: usize) {
    sys!(SYS_shmdt, addr).expect("shmdt");
}

fn nattch(id: i32) -> u64 {
    let mut ds: shmid_ds = unsafe { std::mem::zeroed() };
    sys!(SYS_shmctl, id, IPC_STAT, &mut ds as *mut shmid_ds).expect("IPC_STAT");
    ds.shm_nattch as u64
}

fn rmid(id: i32) {
    sys!(SYS_shmctl, id, IPC_RMID, 0).expect("IPC_RMID");
}

fn shm_share_mmu_attachers_share_the_segment_page_tables() {
    let size = 8 << 20;
    let id = shmget_(size, 0);
    let a = shmat_(id, 0, SHM_SHARE_MMU).expect("shmat SHM_SHARE_MMU");
    assert_eq!(a % GIB, 0, "the kernel picks a graft-aligned address");
    for off in (0..size).step_by(PAGE) {
        store_byte(a + off, 3);
    }
    run_in_child(|| {
        shmdt_(a);
        let pte = user_tests::status_kb("VmPTE");
        let shmem = user_tests::status_kb("RssShmem");
        let before = minflt();
        let b = shmat_(id, 0, SHM_SHARE_MMU).unwrap();
        let mut sum = 0;
        for off in (0..size).step_by(PAGE) {
            sum += load_byte(b + off) as usize;
        }
        let faults = minflt() - before;
        assert_eq!(sum, 3 * size / PAGE);
        assert_eq!(faults, 1, "one fault, the graft");
        assert!(user_tests::status_kb("VmPTE") <= pte + 4, "at most one table of its own");
        assert_eq!((user_tests::status_kb("RssShmem") - shmem) as usize, size / 1024, "the segment's pages");
        shmdt_(b);
    });
    shmdt_(a);
    rmid(id);
}

fn shm_share_mmu_attaches_count_in_nattch_and_shmdt_and_ipc_rmid_keep_their_meaning() {
    let id = shmget_(PAGE, 0);
    let a = shmat_(id, 0, SHM_SHARE_MMU).unwrap();
    assert_eq!(nattch(id), 1);
    let b = shmat_(id, 0, SHM_SHARE_MMU).unwrap();
    assert_ne!(a, b);
    assert_eq!(nattch(id), 2);
    store_byte(a, 7);
    assert_eq!(load_byte(b), 7);
    let pid = fork_child(|| nattch(id) as i32);
    assert_eq!(wait_child(pid), Exit::Code(4), "fork adds the child's attaches");
    assert_eq!(nattch(id), 2);
    shmdt_(b);
    assert_eq!(nattch(id), 1);
    rmid(id);
    assert_eq!(load_byte(a), 7, "removed while attached: alive");
    store_byte(a, 8);
    shmdt_(a);
    assert_errno!(sys!(SYS_shmctl, id, IPC_STAT, std::ptr::null_mut::<shmid_ds>()), EINVAL);
    assert_errno!(sys!(SYS_shmdt, a), EINVAL);
}

fn shm_share_mmu_and_plain_attaches_see_the_same_pages() {
    let id = shmget_(2 * PAGE, 0);
    let plain = shmat_(id, 0, 0).unwrap();
    let shared = shmat_(id, 0, SHM_SHARE_MMU).unwrap();
    store_byte(plain + PAGE, 0x42);
    assert_eq!(load_byte(shared + PAGE), 0x42);
    store_byte(shared, 0x24);
    assert_eq!(load_byte(plain), 0x24);
    let ro = shmat_(id, 0, SHM_SHARE_MMU | SHM_RDONLY).unwrap();
    assert_eq!(load_byte(ro), 0x24);
    assert_eq!(
        child_exit(|| {
            store_byte(ro, 1);
            0
        }),
        Exit::Signal(SIGSEGV)
    );
    // Past the segment, inside the window: nothing there.
    assert_eq!(child_exit(|| load_byte(shared + 2 * PAGE) as i32), Exit::Signal(SIGSEGV));
    for x in [plain, shared, ro] {
        shmdt_(x);
    }
    rmid(id);
}

fn shm_share_mmu_refuses_unaligned_addresses_and_hugetlb_segments() {
    let id = shmget_(PAGE, 0);
    assert_errno!(shmat_(id, GIB + PAGE, SHM_SHARE_MMU), EINVAL);
    let a = shmat_(id, 8 * GIB, SHM_SHARE_MMU).expect("at an aligned address");
    assert_eq!(a, 8 * GIB);
    assert_eq!(nattch(id), 1);
    shmdt_(a);
    assert_eq!(nattch(id), 0);
    rmid(id);
    let huge = sys!(SYS_shmget, IPC_PRIVATE, 2 << 20, IPC_CREAT | 0o600 | SHM_HUGETLB | SHM_NORESERVE).unwrap() as i32;
    assert_errno!(shmat_(huge, 0, SHM_SHARE_MMU), EINVAL);
    assert_eq!(nattch(huge), 0, "nothing attached");
    rmid(huge);
}

// ---------------------------------------------------------------------------------------
// Stale translations: guests on every CPU against a host-side change
// ---------------------------------------------------------------------------------------

/// What the test process does to the region's page in a round, through the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostCall {
    /// `MSHAREFS_UNMAP`: every access after it is SIGSEGV (SEGV_MAPERR).
    Unmap,
    /// `MSHAREFS_PROTECT(PROT_READ)`: reads see the page as it was, writes are SEGV_ACCERR.
    Protect,
}

/// Rounds a stale-translation test aims at, and its budget (it stops at whichever first).
const STALE_ROUNDS: u64 = 2000;
const STALE_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);
/// Rounds it must complete: fewer means the loops hardly ran.
const STALE_MIN_ROUNDS: u64 = 200;
/// Successful accesses each guest makes before the call, and judged accesses after it.
const WARM: u64 = 4;
const AFTER: u64 = 4;
/// After warming up, a guest yields its CPU once every this many accesses before the call.
const YIELD_EVERY: u64 = 16;
/// Byte distance between two guests' slots in the page.
const SLOT: usize = 64;

/// The words the test process and its guests share (`user_tests::shared_words`).
mod word {
    pub const ROUND: usize = 0;
    pub const RETURNED: usize = 1;
    pub const STOP: usize = 2;
    pub const READY: usize = 3;
    pub const DONE: usize = 4;
    pub const STALE: usize = 5;
    pub const BEFORE: usize = 6;
    pub const AFTER: usize = 7;
    pub const AFTER_FAULTS: usize = 8;
    /// The first stale access: round << 16 | guest << 8 | 1 + was-a-write.
    pub const FIRST_STALE: usize = 9;
    /// Per guest: its slot's byte as the test process read it once PROTECT returned.
    pub const SNAPSHOT: usize = 16;
    pub const COUNT: usize = SNAPSHOT + 64;
}

/// One guest: maps the region, then each round makes `WARM` successful accesses to its
/// slot and goes on until the call returned, then judges `AFTER` accesses.
fn stale_guest(fd: i32, call: HostCall, w: usize, ctl: &[std::sync::atomic::AtomicU64]) -> i32 {
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    use user_tests::probe::{install_probe_handler, probe_read, probe_write};
    pin_to_cpu(w % online_cpus());
    install_probe_handler();
    let slot = map(fd) + w * SLOT;
    let (mut r, mut seq) = (0u64, 0u64);
    let (mut before, mut after_total, mut faults) = (0u64, 0u64, 0u64);
    loop {
        wait_for("the next round", || ctl[word::STOP].load(Acquire) != 0 || ctl[word::ROUND].load(Acquire) > r);
        if ctl[word::STOP].load(Acquire) != 0 {
            break;
        }
        r += 1;
        let (mut warm, mut after) = (0u64, 0u64);
        while after < AFTER {
            seq += 1;
            let returned = ctl[word::RETURNED].load(Acquire) >= r;
            let write = if returned { after % 2 == 1 } else { seq % 2 == 0 };
            let v = 1 + (seq % 0x7f) as u8;
            let p = if write { probe_write(slot, v) } else { probe_read(slot) };
            if !returned {
                before += 1;
                if !p.faulted() {
                    warm += 1;
                    if warm == WARM {
                        ctl[word::READY].fetch_add(1, Release);
                    }
                }
                // Now and then the CPU goes to whoever waits for it (the test process), seldom
                // enough that the accesses keep racing with the call.
                if warm >= WARM && seq % YIELD_EVERY == 0 {
                    unsafe { sched_yield() };
                }
                continue;
            }
            after += 1;
            after_total += 1;
            faults += p.faulted() as u64;
            let segv = |code: i32| p.signal == SIGSEGV as u64 && p.value == code as u64;
            let fine = match (call, write) {
                (HostCall::Unmap, _) => segv(user_tests::SEGV_MAPERR),
                (HostCall::Protect, true) => segv(user_tests::SEGV_ACCERR),
                (HostCall::Protect, false) => !p.faulted() && p.value == ctl[word::SNAPSHOT + w].load(Relaxed),
            };
            if !fine {
                ctl[word::STALE].fetch_add(1, Relaxed);
                let _ = ctl[word::FIRST_STALE].compare_exchange(
                    0,
                    r << 16 | (w as u64) << 8 | 1 + write as u64,
                    Relaxed,
                    Relaxed,
                );
            }
        }
        ctl[word::DONE].fetch_add(1, Release);
    }
    ctl[word::BEFORE].fetch_add(before, Relaxed);
    ctl[word::AFTER].fetch_add(after_total, Relaxed);
    ctl[word::AFTER_FAULTS].fetch_add(faults, Relaxed);
    0
}

/// Runs rounds of `call` against one guest process per CPU (at least 2); returns the
/// rounds run, after asserting that no guest went through a translation the call took away.
fn stale_rounds(call: HostCall) -> u64 {
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    let ctl = user_tests::shared_words(word::COUNT);
    let guests = online_cpus().clamp(2, 32);
    let (p, fd) = create(&format!("stale-{call:?}"));
    ioctl_create(fd, 0, PAGE, RW).unwrap();
    let own = map(fd);
    let pids: Vec<pid_t> = (0..guests).map(|w| fork_child(|| stale_guest(fd, call, w, ctl))).collect();
    let start = std::time::Instant::now();
    let mut rounds = 0;
    // Rounds stop at the first stale access too: the verdict is made (the negative
    // control, with shootdowns off, ends at once).
    while rounds < STALE_ROUNDS && start.elapsed() < STALE_BUDGET && ctl[word::STALE].load(Relaxed) == 0 {
        let r = rounds + 1;
        match call {
            HostCall::Unmap if r > 1 => {
                ioctl_create(fd, 0, PAGE, RW).expect("CREATE_MAPPING");
            }
            HostCall::Protect if r > 1 => {
                ioctl_protect(fd, 0, PAGE, RW).expect("PROTECT rw");
            }
            _ => {}
        }
        ctl[word::READY].store(0, Relaxed);
        ctl[word::DONE].store(0, Relaxed);
        ctl[word::ROUND].store(r, Release);
        wait_for("the guests to warm up", || ctl[word::READY].load(Acquire) == guests as u64);
        match call {
            HostCall::Unmap => {
                ioctl_unmap(fd, 0, PAGE).expect("UNMAP");
            }
            HostCall::Protect => {
                ioctl_protect(fd, 0, PAGE, PROT_READ).expect("PROTECT ro");
                for w in 0..guests {
                    ctl[word::SNAPSHOT + w].store(load_byte(own + w * SLOT) as u64, Relaxed);
                }
            }
        }
        ctl[word::RETURNED].store(r, Release);
        wait_for("the guests to judge", || ctl[word::DONE].load(Acquire) == guests as u64);
        if call == HostCall::Protect {
            for w in 0..guests {
                let now = load_byte(own + w * SLOT) as u64;
                if now != ctl[word::SNAPSHOT + w].load(Relaxed) {
                    ctl[word::STALE].fetch_add(1, Relaxed);
                }
            }
        }
        rounds = r;
    }
    ctl[word::STOP].store(1, Release);
    for pid in pids {
        assert_eq!(wait_child(pid), Exit::Code(0));
    }
    unmap(own);
    let flushes = stat(&p, "flushes");
    let (ipis, all) = (stat(&p, "ipis"), stat(&p, "ipis_all_cpus"));
    close(fd).unwrap();
    unlink(&p);
    let first = ctl[word::FIRST_STALE].load(Relaxed);
    println!(
        "mshare: {call:?}: {rounds} rounds, {guests} guests, {} accesses before and {} after ({} faulted); {flushes} flushes, {ipis} IPIs (all CPUs: {all})",
        ctl[word::BEFORE].load(Relaxed),
        ctl[word::AFTER].load(Relaxed),
        ctl[word::AFTER_FAULTS].load(Relaxed)
    );
    assert_eq!(
        ctl[word::STALE].load(Relaxed),
        0,
        "stale accesses; the first in round {}, guest {}, a {}",
        first >> 16,
        (first >> 8) & 0xff,
        if first & 0xff == 2 { "write" } else { "read" }
    );
    assert!(rounds >= STALE_MIN_ROUNDS, "only {rounds} rounds in {STALE_BUDGET:?}");
    assert_eq!(ctl[word::AFTER].load(Relaxed), rounds * AFTER * guests as u64);
    rounds
}

fn no_guest_on_any_cpu_reaches_a_page_after_msharefs_unmap_returns_stale() {
    stale_rounds(HostCall::Unmap);
}

fn no_guest_on_any_cpu_writes_a_page_after_msharefs_protect_returns_stale() {
    stale_rounds(HostCall::Protect);
}
