//! Transparent page-table sharing of big shared mappings (`pt_share`, no Linux
//! counterpart): the knobs in /proc/sys/vm, the placement that makes shared mappings of
//! shmem shareable, the grafts of a file's shared tables, and the operations that unshare
//! them for one process while the others keep theirs. Linux has no such knob: this suite runs in our kernel only (the
//! runner's kernel-only suites). Each test sets the knobs it needs and puts them back,
//! so the suite passes whether the kernel booted with `pt_share=on` or not.

use libc::*;
use user_tests::{
    assert_errno, child_exit, close, cstr, fork_child, load_byte, minflt, mmap, online_cpus, pagemap, pin_to_cpu,
    read_knob, run_tests, smaps_kb, status_kb, store_byte, sys, tests, wait_child, wait_for, write_knob, Exit, Knob,
    PAGE,
};

fn main() {
    run_tests(
        "pt_share",
        tests![
            pt_share_knobs_read_back_what_was_written_and_refuse_other_values,
            a_shared_memfd_mapping_is_placed_congruent_to_its_offset_modulo_2_mib,
            shared_anonymous_memory_of_a_gib_is_placed_on_a_gib,
            shmat_at_null_places_a_segment_on_2_mib,
            mappings_below_pt_share_min_bytes_keep_the_usual_placement,
            private_mappings_keep_the_usual_placement,
            with_pt_share_off_nothing_is_placed_for_sharing,
            a_second_mapping_grafts_one_table_per_2_mib_and_pays_no_pte_table,
            a_forked_child_reaches_the_shared_pages_without_a_fault,
            mprotect_of_part_of_a_shared_table_changes_only_that_process,
            munmap_of_part_of_a_shared_table_leaves_the_other_sharers_mapped,
            madv_dontneed_of_part_of_a_shared_table_keeps_the_file_pages,
            mremap_of_a_shared_range_moves_it_for_that_process_only,
            a_child_reaches_nothing_of_a_shared_slot_its_parent_marked_dontfork,
            truncation_reaches_every_sharer,
            a_sysv_segment_attached_twice_shares_its_tables,
            usercopy_through_a_shared_table_reads_and_writes_the_file,
            rss_and_pagemap_count_the_pages_a_shared_table_reaches,
            smaps_divides_a_shared_table_pss_among_the_processes_reaching_it,
            with_pt_share_off_a_mapping_makes_its_own_tables,
            a_gib_mapping_grafts_one_pmd_table_and_takes_one_fault,
            munmap_of_a_page_in_a_shared_gib_unshares_only_its_2_mib,
            no_sharer_on_any_cpu_reaches_a_page_after_truncation_returns_stale,
            no_thread_on_any_cpu_writes_a_page_after_mprotect_unshares_it_stale,
            no_thread_on_any_cpu_reaches_a_page_after_munmap_or_mremap_unshares_it_stale,
        ],
    )
}

const MIB: usize = 1 << 20;

/// Sharing on, with the default minimum.
fn sharing_on() -> (Knob, Knob) {
    (Knob::set("vm/pt_share", "1"), Knob::set("vm/pt_share_min_bytes", &(2 * MIB).to_string()))
}

fn memfd(size: usize) -> i32 {
    let n = cstr("pt_share");
    let fd = sys!(SYS_memfd_create, n.as_ptr(), MFD_CLOEXEC).unwrap() as i32;
    sys!(SYS_ftruncate, fd, size).unwrap();
    fd
}

fn munmap(addr: usize, len: usize) {
    sys!(SYS_munmap, addr, len).unwrap();
}

fn pt_share_knobs_read_back_what_was_written_and_refuse_other_values() {
    let _guard = (Knob::set("vm/pt_share", "0"), Knob::set("vm/pt_share_min_bytes", "0"));
    assert_eq!(read_knob("vm/pt_share"), "0\n");
    write_knob("vm/pt_share", "1").unwrap();
    assert_eq!(read_knob("vm/pt_share"), "1\n");
    assert_errno!(write_knob("vm/pt_share", "2"), EINVAL);
    assert_errno!(write_knob("vm/pt_share", "-1"), EINVAL);
    assert_errno!(write_knob("vm/pt_share", "on"), EINVAL);
    assert_eq!(read_knob("vm/pt_share"), "1\n");
    write_knob("vm/pt_share_min_bytes", "4194304").unwrap();
    assert_eq!(read_knob("vm/pt_share_min_bytes"), "4194304\n");
    assert_errno!(write_knob("vm/pt_share_min_bytes", "x"), EINVAL);
    assert_eq!(read_knob("vm/pt_share_min_bytes"), "4194304\n");
}

fn a_shared_memfd_mapping_is_placed_congruent_to_its_offset_modulo_2_mib() {
    let _on = sharing_on();
    let fd = memfd(32 * MIB);
    // Ten mappings at offsets of every phase: a chance placement passes 1 in 512.
    let maps: Vec<(usize, usize)> = (0..10)
        .map(|i| {
            let off = i * 3 * PAGE + i * MIB;
            (mmap(0, 8 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off as i64).unwrap(), off)
        })
        .collect();
    for &(a, off) in &maps {
        assert_eq!((a - off) % (2 * MIB), 0, "mapping at {a:#x} of offset {off:#x}");
    }
    for (a, _) in maps {
        munmap(a, 8 * MIB);
    }
    close(fd).unwrap();
}

fn shared_anonymous_memory_of_a_gib_is_placed_on_a_gib() {
    let _on = sharing_on();
    // Not charged (MAP_NORESERVE), never touched: only the placement counts.
    let flags = MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE;
    let a = mmap(0, 1 << 30, PROT_READ | PROT_WRITE, flags, -1, 0).unwrap();
    let b = mmap(0, 1 << 30, PROT_READ | PROT_WRITE, flags, -1, 0).unwrap();
    assert_eq!(a % (1 << 30), 0, "{a:#x}");
    assert_eq!(b % (1 << 30), 0, "{b:#x}");
    munmap(a, 1 << 30);
    munmap(b, 1 << 30);
}

fn shmat_at_null_places_a_segment_on_2_mib() {
    let _on = sharing_on();
    let ids: Vec<i32> =
        (0..4).map(|_| sys!(SYS_shmget, IPC_PRIVATE, 4 * MIB + PAGE, IPC_CREAT | 0o600).unwrap() as i32).collect();
    let addrs: Vec<usize> = ids.iter().map(|&id| sys!(SYS_shmat, id, 0, 0).unwrap() as usize).collect();
    for &a in &addrs {
        assert_eq!(a % (2 * MIB), 0, "{a:#x}");
    }
    for (a, id) in addrs.into_iter().zip(ids) {
        sys!(SYS_shmdt, a).unwrap();
        sys!(SYS_shmctl, id, IPC_RMID, 0).unwrap();
    }
}

/// Maps `n` 3 MiB pieces of `fd` at offset 4 KiB, `flags`, at addresses the kernel picks;
/// whether each went right below the one before (top-down placement with no gap, which
/// keeping each piece's offset phase modulo 2 MiB rules out).
fn consecutive_mappings_are_adjacent(fd: i32, flags: i32, n: usize) -> bool {
    let len = 3 * MIB;
    let maps: Vec<usize> =
        (0..n).map(|_| mmap(0, len, PROT_READ | PROT_WRITE, flags, fd, PAGE as i64).unwrap()).collect();
    let adjacent = maps.windows(2).all(|w| w[1] + len == w[0]);
    for a in maps {
        munmap(a, len);
    }
    adjacent
}

fn mappings_below_pt_share_min_bytes_keep_the_usual_placement() {
    let _on = (Knob::set("vm/pt_share", "1"), Knob::set("vm/pt_share_min_bytes", &(64 * MIB).to_string()));
    let fd = memfd(16 * MIB);
    assert!(consecutive_mappings_are_adjacent(fd, MAP_SHARED, 4));
    close(fd).unwrap();
}

fn private_mappings_keep_the_usual_placement() {
    let _on = sharing_on();
    let fd = memfd(16 * MIB);
    assert!(consecutive_mappings_are_adjacent(fd, MAP_PRIVATE, 4));
    close(fd).unwrap();
}

fn with_pt_share_off_nothing_is_placed_for_sharing() {
    let _off = (Knob::set("vm/pt_share", "0"), Knob::set("vm/pt_share_min_bytes", &(2 * MIB).to_string()));
    let fd = memfd(16 * MIB);
    assert!(consecutive_mappings_are_adjacent(fd, MAP_SHARED, 4));
    // And with it on, the same mappings are spread to keep their phase.
    let _on = Knob::set("vm/pt_share", "1");
    assert!(!consecutive_mappings_are_adjacent(fd, MAP_SHARED, 4));
    close(fd).unwrap();
}

/// A memfd of `size` bytes, mapped shared read-write, every page written with `v`.
fn filled(size: usize, v: u8) -> (i32, usize) {
    let fd = memfd(size);
    let a = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    for off in (0..size).step_by(PAGE) {
        store_byte(a + off, v);
    }
    (fd, a)
}

fn a_second_mapping_grafts_one_table_per_2_mib_and_pays_no_pte_table() {
    let _on = sharing_on();
    let size = 16 * MIB;
    let (fd, a) = filled(size, 3);
    // In a child, so that its VmPTE and faults count only the second mapping.
    let r = child_exit(|| {
        let pte = status_kb("VmPTE");
        let before = minflt();
        let b = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
        let mut sum = 0usize;
        for off in (0..size).step_by(PAGE) {
            sum += load_byte(b + off) as usize;
        }
        let faults = minflt() - before;
        let grown = status_kb("VmPTE") - pte;
        if sum != 3 * size / PAGE {
            return 1;
        }
        // One fault per 2 MiB (8), against 4096 without sharing; at most its own PD and
        // PDPT, against 8 PTE tables.
        if faults > 8 + 4 {
            return 2;
        }
        if grown > 8 {
            return 3;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    munmap(a, size);
    close(fd).unwrap();
}

fn a_forked_child_reaches_the_shared_pages_without_a_fault() {
    let _on = sharing_on();
    let size = 8 * MIB;
    let (fd, a) = filled(size, 5);
    let r = child_exit(|| {
        let before = minflt();
        let mut sum = 0usize;
        for off in (0..size).step_by(PAGE) {
            sum += load_byte(a + off) as usize;
        }
        let faults = minflt() - before;
        if sum != 5 * size / PAGE {
            return 1;
        }
        // The child has the parent's grafts: its reads fault nowhere in the mapping.
        if faults > 4 {
            return 2;
        }
        // Its RSS counts what the grafts reach.
        if status_kb("RssShmem") < (size / 1024) as u64 {
            return 3;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    munmap(a, size);
    close(fd).unwrap();
}

fn mprotect_of_part_of_a_shared_table_changes_only_that_process() {
    let _on = sharing_on();
    let size = 4 * MIB;
    let (fd, a) = filled(size, 1);
    let target = a + 2 * MIB + 5 * PAGE;
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let pid = fork_child(|| {
        let pte = status_kb("VmPTE");
        sys!(SYS_mprotect, target, PAGE, PROT_READ).unwrap();
        // Unshared: the slot's PTE table is its own now.
        if status_kb("VmPTE") != pte + 4 {
            return 10;
        }
        let mut b = [0u8];
        user_tests::read(r, &mut b).unwrap();
        // The parent's later write is seen through the private entries: the same page.
        if load_byte(target) != 9 || load_byte(target + PAGE) != 9 {
            return 11;
        }
        store_byte(target, 2);
        0
    });
    close(r).unwrap();
    store_byte(target, 9);
    store_byte(target + PAGE, 9);
    user_tests::write(w, b"x").unwrap();
    assert_eq!(wait_child(pid), Exit::Signal(SIGSEGV), "the child's page is read-only");
    // The parent's entry stayed writable.
    store_byte(target, 4);
    assert_eq!(load_byte(target), 4);
    close(w).unwrap();
    munmap(a, size);
    close(fd).unwrap();
}

fn munmap_of_part_of_a_shared_table_leaves_the_other_sharers_mapped() {
    let _on = sharing_on();
    let size = 4 * MIB;
    let (fd, a) = filled(size, 6);
    let target = a + 3 * PAGE;
    let r = child_exit(|| {
        munmap(target, PAGE);
        // The rest of its slot still maps the file's pages.
        if load_byte(target + PAGE) != 6 || load_byte(a) != 6 {
            return 1;
        }
        if child_exit(|| load_byte(target) as i32) != Exit::Signal(SIGSEGV) {
            return 2;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    assert_eq!(load_byte(target), 6, "the parent keeps the page");
    munmap(a, size);
    close(fd).unwrap();
}

fn madv_dontneed_of_part_of_a_shared_table_keeps_the_file_pages() {
    let _on = sharing_on();
    let size = 4 * MIB;
    let (fd, a) = filled(size, 8);
    let r = child_exit(|| {
        sys!(SYS_madvise, a + PAGE, 2 * PAGE, MADV_DONTNEED).unwrap();
        store_byte(a + PAGE, 12);
        // A whole slot too: its graft goes, the pages stay in the file.
        sys!(SYS_madvise, a + 2 * MIB, 2 * MIB, MADV_DONTNEED).unwrap();
        if load_byte(a + 2 * PAGE) != 8 || load_byte(a + 2 * MIB + PAGE) != 8 {
            return 1;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    assert_eq!(load_byte(a + PAGE), 12, "the child wrote the shared page");
    munmap(a, size);
    close(fd).unwrap();
}

fn mremap_of_a_shared_range_moves_it_for_that_process_only() {
    let _on = sharing_on();
    let size = 4 * MIB;
    let (fd, a) = filled(size, 13);
    let r = child_exit(|| {
        let dest = mmap(0, 4 * MIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
        let moved =
            sys!(SYS_mremap, a + PAGE, 2 * MIB, 2 * MIB, MREMAP_MAYMOVE | MREMAP_FIXED, dest + PAGE).unwrap() as usize;
        if moved != dest + PAGE || load_byte(moved) != 13 || load_byte(moved + 2 * MIB - PAGE) != 13 {
            return 1;
        }
        store_byte(moved, 14);
        if child_exit(|| load_byte(a + PAGE) as i32) != Exit::Signal(SIGSEGV) {
            return 2;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    assert_eq!(load_byte(a + PAGE), 14, "the moved mapping still writes the file");
    assert_eq!(load_byte(a + 2 * PAGE), 13);
    munmap(a, size);
    close(fd).unwrap();
}

fn a_child_reaches_nothing_of_a_shared_slot_its_parent_marked_dontfork() {
    let _on = sharing_on();
    let size = 4 * MIB;
    let (fd, a) = filled(size, 15);
    // One page of the first slot is not inherited: the child must not reach it through a
    // graft of the slot.
    sys!(SYS_madvise, a + PAGE, PAGE, MADV_DONTFORK).unwrap();
    let r = child_exit(|| {
        if load_byte(a) != 15 || load_byte(a + 2 * PAGE) != 15 || load_byte(a + 2 * MIB) != 15 {
            return 1;
        }
        if child_exit(|| load_byte(a + PAGE) as i32) != Exit::Signal(SIGSEGV) {
            return 2;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    assert_eq!(load_byte(a + PAGE), 15);
    munmap(a, size);
    close(fd).unwrap();
}

fn truncation_reaches_every_sharer() {
    let _on = sharing_on();
    let size = 8 * MIB;
    let (fd, a) = filled(size, 21);
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let (done_r, done_w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let pid = fork_child(|| {
        // Every page is reached through the parent's grafts first.
        if load_byte(a + 5 * MIB) != 21 {
            return 1;
        }
        user_tests::write(done_w, b"r").unwrap();
        let mut b = [0u8];
        user_tests::read(r, &mut b).unwrap();
        if load_byte(a + MIB) != 21 {
            return 2;
        }
        // Past the new end of the file: SIGBUS, in a slot shared whole and one cut.
        for at in [a + 5 * MIB, a + 2 * MIB + 3 * PAGE] {
            if child_exit(|| load_byte(at) as i32) != Exit::Signal(SIGBUS) {
                return 3;
            }
        }
        0
    });
    let mut b = [0u8];
    user_tests::read(done_r, &mut b).unwrap();
    sys!(SYS_ftruncate, fd, 2 * MIB + 2 * PAGE).unwrap();
    user_tests::write(w, b"t").unwrap();
    assert_eq!(wait_child(pid), Exit::Code(0));
    // Grown again, the file reads zeros where it was cut.
    sys!(SYS_ftruncate, fd, size).unwrap();
    assert_eq!(load_byte(a + 5 * MIB), 0);
    assert_eq!(load_byte(a + 2 * MIB + PAGE), 21);
    for f in [r, w, done_r, done_w] {
        close(f).unwrap();
    }
    munmap(a, size);
    close(fd).unwrap();
}

fn a_sysv_segment_attached_twice_shares_its_tables() {
    let _on = sharing_on();
    let size = 8 * MIB;
    let id = sys!(SYS_shmget, IPC_PRIVATE, size, IPC_CREAT | 0o600).unwrap() as i32;
    let a = sys!(SYS_shmat, id, 0, 0).unwrap() as usize;
    for off in (0..size).step_by(PAGE) {
        store_byte(a + off, 17);
    }
    let r = child_exit(|| {
        let pte = status_kb("VmPTE");
        let before = minflt();
        // Read-write, as the parent's: the same protection shares the same tables.
        let b = sys!(SYS_shmat, id, 0, 0).unwrap() as usize;
        let mut sum = 0usize;
        for off in (0..size).step_by(PAGE) {
            sum += load_byte(b + off) as usize;
        }
        if sum != 17 * size / PAGE {
            return 1;
        }
        if minflt() - before > 4 + 4 || status_kb("VmPTE") - pte > 8 {
            return 2;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    sys!(SYS_shmdt, a).unwrap();
    sys!(SYS_shmctl, id, IPC_RMID, 0).unwrap();
}

fn usercopy_through_a_shared_table_reads_and_writes_the_file() {
    let _on = sharing_on();
    let size = 4 * MIB;
    let (fd, a) = filled(size, b'a');
    store_byte(a + MIB + 1, b'x');
    let r = child_exit(|| {
        // write(2) from the shared range into a pipe, read(2) from it into the range.
        let (pr, pw) = user_tests::pipe(0).unwrap();
        if sys!(SYS_write, pw, a + MIB, 64).unwrap() != 64 {
            return 1;
        }
        if sys!(SYS_read, pr, a + 3 * MIB, 64).unwrap() != 64 {
            return 2;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    assert_eq!(load_byte(a + 3 * MIB), b'a');
    assert_eq!(load_byte(a + 3 * MIB + 1), b'x', "read(2) wrote the shared page");
    munmap(a, size);
    close(fd).unwrap();
}

fn rss_and_pagemap_count_the_pages_a_shared_table_reaches() {
    let _on = sharing_on();
    let size = 4 * MIB;
    let (fd, a) = filled(size, 1);
    let r = child_exit(|| {
        // Read-write, as the parent's mapping: the same protection shares the same tables.
        let b = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
        let rss = status_kb("RssShmem");
        // One access grafts the slot: all 512 pages of it are reachable at once.
        load_byte(b);
        if status_kb("RssShmem") < rss + 2048 {
            return 1;
        }
        // pagemap shows every page of the grafted slot present, none of the next one.
        let entries = pagemap(b, size / PAGE);
        let present = |e: &u64| e >> 63 == 1;
        if !entries[..512].iter().all(present) || entries[512..].iter().any(present) {
            return 2;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    munmap(a, size);
    close(fd).unwrap();
}

fn smaps_divides_a_shared_table_pss_among_the_processes_reaching_it() {
    let _on = sharing_on();
    let size = 4 * MIB;
    let (fd, a) = filled(size, 1);
    assert_eq!(smaps_kb(a, "Rss"), 4096);
    assert_eq!(smaps_kb(a, "Pss"), 4096, "only this process reaches the pages");
    // The child has this process's grafts: two address spaces reach every page.
    let r = child_exit(|| {
        if smaps_kb(a, "Rss") != 4096 {
            return 1;
        }
        if smaps_kb(a, "Pss") != 2048 {
            return 2;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    munmap(a, size);
    close(fd).unwrap();
}

fn with_pt_share_off_a_mapping_makes_its_own_tables() {
    let size = 8 * MIB;
    let _off = Knob::set("vm/pt_share", "0");
    let (fd, a) = filled(size, 2);
    let r = child_exit(|| {
        let pte = status_kb("VmPTE");
        let b = mmap(0, size, PROT_READ, MAP_SHARED, fd, 0).unwrap();
        for off in (0..size).step_by(PAGE) {
            load_byte(b + off);
        }
        // Four PTE tables of its own at least (its placement may need a fifth).
        if status_kb("VmPTE") - pte < 16 {
            return 1;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    munmap(a, size);
    close(fd).unwrap();
}

const GIB: usize = 1 << 30;

/// A memfd of 1 GiB mapped shared read-write (at a 1 GiB-aligned address, as placed with
/// sharing on), with one page of every 128 MiB written `v`; returns (fd, address).
fn sparse_gib(v: u8) -> (i32, usize) {
    let fd = memfd(GIB);
    let a = mmap(0, GIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(a % GIB, 0, "a mapping of a GiB is placed on a GiB: {a:#x}");
    for off in (0..GIB).step_by(128 * MIB) {
        store_byte(a + off, v);
    }
    (fd, a)
}

fn a_gib_mapping_grafts_one_pmd_table_and_takes_one_fault() {
    let _on = sharing_on();
    let (fd, a) = sparse_gib(31);
    let r = child_exit(|| {
        let pte = status_kb("VmPTE");
        let before = minflt();
        let b = mmap(0, GIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).unwrap();
        for off in (0..GIB).step_by(128 * MIB) {
            if load_byte(b + off) != 31 {
                return 1;
            }
        }
        // One fault for the whole GiB (its PMD table grafted); at most a PDPT of its own.
        if minflt() - before > 1 + 3 {
            return 2;
        }
        if status_kb("VmPTE") - pte > 4 {
            return 3;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    munmap(a, GIB);
    close(fd).unwrap();
}

fn munmap_of_a_page_in_a_shared_gib_unshares_only_its_2_mib() {
    let _on = sharing_on();
    let (fd, a) = sparse_gib(33);
    let target = a + 128 * MIB + PAGE;
    let r = child_exit(|| {
        // The child has the parent's graft of the GiB's PMD table.
        let pte = status_kb("VmPTE");
        munmap(target, PAGE);
        // A PMD table of its own, and a private copy of one PTE table: 8 kB.
        if status_kb("VmPTE") - pte != 8 {
            return 1;
        }
        // The rest is still the file's pages, written by the parent.
        for off in (0..GIB).step_by(128 * MIB) {
            if load_byte(a + off) != 33 {
                return 2;
            }
        }
        if child_exit(|| load_byte(target) as i32) != Exit::Signal(SIGSEGV) {
            return 3;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    assert_eq!(load_byte(target), 0, "the parent keeps the page");
    munmap(a, GIB);
    close(fd).unwrap();
}

// ---------------------------------------------------------------------------------------
// Stale translations: accesses on every CPU against a change of shared tables
// ---------------------------------------------------------------------------------------

/// Rounds a stale-translation test aims at, and its budget (it stops at whichever first).
const STALE_ROUNDS: u64 = 1000;
const STALE_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);
/// Rounds it must complete: fewer means the loops hardly ran.
const STALE_MIN_ROUNDS: u64 = 100;
/// Successful accesses each accessor makes before the change, and judged accesses after.
const WARM: u64 = 4;
const AFTER: u64 = 4;
/// Byte distance between two accessors' bytes in the page.
const SLOT: usize = 64;

/// The words the test and its accessors share (`user_tests::shared_words`).
mod word {
    pub const ROUND: usize = 0;
    pub const RETURNED: usize = 1;
    pub const STOP: usize = 2;
    pub const READY: usize = 3;
    pub const DONE: usize = 4;
    pub const STALE: usize = 5;
    pub const COUNT: usize = 8;
}

/// One accessor (a process or a thread) of byte `at`: each round it makes `WARM` successful
/// accesses, reading and writing, and goes on until the change returned; then `judge` says
/// whether each of `AFTER` accesses (writes when `write_after`, else reads) was right.
fn stale_accessor(
    at: usize,
    cpu: usize,
    ctl: &[std::sync::atomic::AtomicU64],
    write_after: bool,
    judge: impl Fn(user_tests::probe::Probe) -> bool,
) {
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    use user_tests::probe::{probe_read, probe_write};
    pin_to_cpu(cpu % online_cpus());
    let (mut r, mut seq) = (0u64, 0u64);
    loop {
        wait_for("the next round", || ctl[word::STOP].load(Acquire) != 0 || ctl[word::ROUND].load(Acquire) > r);
        if ctl[word::STOP].load(Acquire) != 0 {
            return;
        }
        r += 1;
        let (mut warm, mut after) = (0u64, 0u64);
        while after < AFTER {
            seq += 1;
            let returned = ctl[word::RETURNED].load(Acquire) >= r;
            let write = if returned { write_after } else { seq % 2 == 0 };
            let p = if write { probe_write(at, 1 + (seq % 0x7f) as u8) } else { probe_read(at) };
            if !returned {
                if !p.faulted() {
                    warm += 1;
                    if warm == WARM {
                        ctl[word::READY].fetch_add(1, Release);
                    }
                }
                if warm >= WARM && seq % 16 == 0 {
                    unsafe { sched_yield() };
                }
                continue;
            }
            after += 1;
            if !judge(p) {
                ctl[word::STALE].fetch_add(1, Relaxed);
            }
        }
        ctl[word::DONE].fetch_add(1, Release);
    }
}

/// Runs rounds: `prepare(r)` before the accessors warm up (from round 2), `change()` once
/// they have; returns the rounds run, after asserting that no accessor went through a
/// translation the change took away.
fn stale_rounds(
    ctl: &[std::sync::atomic::AtomicU64],
    accessors: u64,
    mut prepare: impl FnMut(),
    mut change: impl FnMut(),
) -> u64 {
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    let start = std::time::Instant::now();
    let mut rounds = 0;
    while rounds < STALE_ROUNDS && start.elapsed() < STALE_BUDGET && ctl[word::STALE].load(Relaxed) == 0 {
        let r = rounds + 1;
        if r > 1 {
            prepare();
        }
        ctl[word::READY].store(0, Relaxed);
        ctl[word::DONE].store(0, Relaxed);
        ctl[word::ROUND].store(r, Release);
        wait_for("the accessors to warm up", || ctl[word::READY].load(Acquire) == accessors);
        change();
        ctl[word::RETURNED].store(r, Release);
        wait_for("the accessors to judge", || ctl[word::DONE].load(Acquire) == accessors);
        rounds = r;
    }
    ctl[word::STOP].store(1, Release);
    rounds
}

fn assert_no_stale(ctl: &[std::sync::atomic::AtomicU64], rounds: u64) {
    let stale = ctl[word::STALE].load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(stale, 0, "stale accesses: {stale} in {rounds} rounds");
    assert!(rounds >= STALE_MIN_ROUNDS, "only {rounds} rounds ran");
}

fn no_sharer_on_any_cpu_reaches_a_page_after_truncation_returns_stale() {
    let _on = sharing_on();
    let ctl = user_tests::shared_words(word::COUNT);
    let size = 4 * MIB;
    let (fd, a) = filled(size, 1);
    let target = a + 2 * MIB;
    // One process per CPU (at least 2), each with the test's grafts (fork), on the page at
    // the start of the second slot; truncation to 2 MiB takes that slot's pages away.
    let sharers = online_cpus().clamp(2, 32);
    let pids: Vec<pid_t> = (0..sharers)
        .map(|w| {
            fork_child(|| {
                user_tests::probe::install_probe_handler();
                let bus = |p: user_tests::probe::Probe| p.signal == SIGBUS as u64;
                stale_accessor(target + w * SLOT, w, ctl, w % 2 == 1, bus);
                0
            })
        })
        .collect();
    let rounds = stale_rounds(
        ctl,
        sharers as u64,
        || {
            sys!(SYS_ftruncate, fd, size).expect("ftruncate up");
        },
        || {
            sys!(SYS_ftruncate, fd, 2 * MIB).expect("ftruncate down");
        },
    );
    for pid in pids {
        assert_eq!(wait_child(pid), Exit::Code(0));
    }
    munmap(a, size);
    close(fd).unwrap();
    assert_no_stale(ctl, rounds);
}

/// Threads on every CPU write their bytes of the page at the start of a shared slot while
/// `change(slot)` takes the page away from this address space, unsharing the slot first (a
/// second process keeps the shared table in use). After the call returns, every access must
/// fault with SIGSEGV `code`, and no write may reach the file (read with pread).
fn threads_race_an_unsharing_change(code: i32, mut change: impl FnMut(usize)) {
    use std::sync::atomic::Ordering::Relaxed;
    let _on = sharing_on();
    let ctl = user_tests::shared_words(word::COUNT);
    let size = 4 * MIB;
    let (fd, a) = filled(size, 1);
    let slot = a + 2 * MIB;
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let keeper = fork_child(|| {
        load_byte(slot);
        let mut b = [0u8];
        let _ = user_tests::read(r, &mut b);
        0
    });
    user_tests::probe::install_probe_handler();
    let threads = online_cpus().clamp(2, 32);
    let accessors: Vec<std::thread::JoinHandle<()>> = (0..threads)
        .map(|t| {
            let ctl: &'static [std::sync::atomic::AtomicU64] = ctl;
            std::thread::spawn(move || {
                let faulted = |p: user_tests::probe::Probe| p.signal == SIGSEGV as u64 && p.value == code as u64;
                stale_accessor(slot + t * SLOT, t, ctl, true, faulted);
            })
        })
        .collect();
    // The accessors' bytes in the file once the change returned: one that changes after
    // that was written through the old graft.
    let file_bytes = || -> Vec<u8> {
        let mut page = vec![0u8; PAGE];
        let got = sys!(SYS_pread64, fd, page.as_mut_ptr(), PAGE, 2 * MIB as i64).expect("pread");
        assert_eq!(got as usize, PAGE);
        (0..threads).map(|t| page[t * SLOT]).collect()
    };
    let snapshot = std::cell::RefCell::new(Vec::new());
    let check = || {
        if *snapshot.borrow() != file_bytes() {
            ctl[word::STALE].fetch_add(1, Relaxed);
        }
    };
    let rounds = stale_rounds(
        ctl,
        threads as u64,
        || {
            check();
            // The slot mapped anew: the accessors' first faults graft the shared table again.
            let b = mmap(slot, 2 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 2 * MIB as i64).unwrap();
            assert_eq!(b, slot);
        },
        || {
            change(slot);
            *snapshot.borrow_mut() = file_bytes();
        },
    );
    for h in accessors {
        h.join().unwrap();
    }
    check();
    user_tests::write(w, b"x").unwrap();
    assert_eq!(wait_child(keeper), Exit::Code(0));
    close(r).unwrap();
    close(w).unwrap();
    munmap(a, size);
    close(fd).unwrap();
    assert_no_stale(ctl, rounds);
}

fn no_thread_on_any_cpu_writes_a_page_after_mprotect_unshares_it_stale() {
    // The page becomes read-only for this process, its slot unshared first.
    threads_race_an_unsharing_change(user_tests::SEGV_ACCERR, |slot| {
        sys!(SYS_mprotect, slot, PAGE, PROT_READ).expect("mprotect");
    });
}

fn no_thread_on_any_cpu_reaches_a_page_after_munmap_or_mremap_unshares_it_stale() {
    // Where mremap moves the page to, reserved so that MREMAP_FIXED replaces only it.
    let dest = mmap(0, 2 * MIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    // The page goes from this address: unmapped in odd rounds, moved away in even ones.
    let mut round = 0u64;
    threads_race_an_unsharing_change(user_tests::SEGV_MAPERR, |slot| {
        round += 1;
        if round % 2 == 1 {
            munmap(slot, PAGE);
        } else {
            let to = sys!(SYS_mremap, slot, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dest).expect("mremap");
            assert_eq!(to as usize, dest);
        }
    });
    munmap(dest, 2 * MIB);
}
