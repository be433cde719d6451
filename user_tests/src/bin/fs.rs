//! File and file-descriptor system calls: open/read/write/seek/stat, directories, dup,
//! pipes, fcntl, ioctl, poll, the /dev/null and /dev/zero devices, and mount/umount2 of
//! tmpfs.

use libc::*;
use user_tests::{
    assert_errno, child_args, child_exit, close, cstr, exe_path, execve, fork_child, mount_tmpfs, open, pipe, read,
    run_in_child, run_tests, sys, tests, umount2, wait_child, write, Exit, TempDir, TmpfsMount, BAD_PTR, CHILD_MARKER,
};

fn main() {
    if child_args().is_some() {
        // This binary run through /proc/self/fd by an exec test.
        std::process::exit(42);
    }
    run_tests(
        "fs",
        tests![
            write_to_a_description_another_process_is_reading_does_not_block,
            fionread_works_on_both_ends_of_a_pipe,
            deleting_entries_while_listing_a_directory_visits_every_entry,
            flock_on_an_o_path_descriptor_is_ebadf,
            flock_locks_a_pipe_and_its_other_end_conflicts,
            open_missing_file_is_enoent,
            open_bad_path_pointer_is_efault,
            open_creat_excl_on_existing_file_is_eexist,
            open_directory_flag_on_file_is_enotdir,
            open_directory_for_writing_is_eisdir,
            open_with_access_mode_3_allows_neither_read_nor_write,
            fadvise_accepts_every_advice_and_keeps_the_data,
            fadvise_checks_the_descriptor_the_length_and_the_advice,
            open_of_a_symlink_with_o_path_and_o_nofollow_refers_to_the_link,
            open_of_a_symlink_with_o_nofollow_alone_is_eloop,
            removing_or_renaming_dot_and_dotdot_has_linux_errnos,
            no_name_can_be_made_in_a_removed_directory,
            open_returns_lowest_free_fd,
            openat_resolves_relative_to_dirfd,
            open_trunc_empties_file,
            open_append_writes_at_end,
            write_then_read_back_round_trips,
            read_at_end_of_file_returns_zero,
            read_on_closed_fd_is_ebadf,
            read_into_bad_pointer_is_efault,
            write_from_bad_pointer_is_efault,
            write_on_read_only_fd_is_ebadf,
            writev_gathers_and_readv_scatters,
            readv_with_too_many_iovecs_is_einval,
            pwrite_and_pread_do_not_move_file_offset,
            pread_with_huge_count_reads_what_the_file_has,
            pread_on_pipe_is_espipe,
            double_close_is_ebadf,
            lseek_set_cur_end_compute_offsets,
            lseek_to_negative_offset_is_einval,
            lseek_with_bad_whence_is_einval,
            lseek_on_pipe_is_espipe,
            seek_past_end_leaves_zero_filled_hole,
            fstat_reports_size_and_regular_mode,
            fstat_on_bad_fd_is_ebadf,
            fstat_into_bad_pointer_is_efault,
            newfstatat_on_directory_reports_mode_and_nlink,
            newfstatat_missing_path_is_enoent,
            newfstatat_empty_path_stats_the_fd,
            statx_reports_size_and_mode,
            getdents64_lists_dot_dotdot_and_created_files,
            getdents64_on_file_is_enotdir,
            dup_shares_the_file_offset,
            dup_of_bad_fd_is_ebadf,
            dup2_replaces_open_target_fd,
            dup2_onto_itself_returns_the_fd,
            dup3_onto_itself_is_einval,
            dup3_with_o_cloexec_sets_fd_cloexec,
            pipe_round_trips_data,
            pipe_read_returns_zero_after_write_end_closed,
            pipe_write_after_read_end_closed_is_epipe,
            pipe2_with_bad_flags_is_einval,
            pipe2_into_bad_pointer_is_efault,
            fcntl_dupfd_returns_fd_at_least_arg,
            fcntl_setfd_cloexec_round_trips,
            fcntl_setfl_nonblock_round_trips,
            fcntl_getfl_reports_access_mode,
            nonblocking_read_of_empty_pipe_is_eagain,
            ioctl_tcgets_on_regular_file_is_enotty,
            ioctl_tcgets_on_console_succeeds_if_it_is_a_tty,
            mkdirat_existing_is_eexist,
            mkdirat_in_missing_directory_is_enoent,
            unlinkat_removes_file,
            unlinkat_removedir_on_non_empty_is_enotempty,
            unlinkat_directory_without_removedir_is_eisdir,
            unlinked_open_file_stays_readable,
            renameat_moves_file,
            getcwd_reports_directory_after_chdir,
            getcwd_with_small_buffer_is_erange,
            chdir_to_file_is_enotdir,
            chdir_to_missing_path_is_enoent,
            poll_reports_pollin_on_readable_pipe,
            poll_with_zero_timeout_on_empty_pipe_reports_none_ready,
            poll_reports_pollhup_when_writer_closed,
            dev_null_reads_eof_and_swallows_writes,
            dev_zero_reads_zeroes,
            sendfile_copies_and_advances_the_offset,
            close_range_closes_the_open_descriptors_in_the_range,
            close_range_to_the_largest_number_closes_the_rest,
            close_range_cloexec_marks_instead_of_closing,
            close_range_with_unknown_flags_or_first_past_last_is_einval,
            copy_file_range_copies_and_advances_the_file_positions,
            copy_file_range_with_offsets_updates_them_and_not_the_positions,
            copy_file_range_stops_at_the_end_of_the_input,
            copy_file_range_within_one_file_may_not_overlap,
            copy_file_range_checks_the_files_kinds_and_modes,
            copy_file_range_across_filesystems_is_exdev,
            proc_self_links_to_own_pid,
            proc_self_status_names_the_process,
            chown_changes_owner_and_clears_setuid,
            chown_by_non_root_is_eperm,
            chmod_by_non_owner_is_eperm,
            utimensat_sets_times_and_omit_keeps_them,
            hard_link_shares_content_and_counts_links,
            hard_link_to_directory_is_eperm,
            select_reports_readable_pipe_and_times_out_on_empty_one,
            flock_exclusive_excludes_other_descriptions_until_close,
            flock_shared_locks_coexist_and_dup_shares_the_lock,
            flock_with_bad_operation_is_einval,
            flock_blocks_until_the_holder_closes,
            eventfd_read_returns_the_sum_of_writes_and_resets_it,
            eventfd_semaphore_read_takes_one_at_a_time,
            eventfd_nonblocking_read_at_zero_is_eagain,
            eventfd_short_buffers_and_all_ones_write_are_einval,
            eventfd_write_past_the_maximum_is_eagain,
            eventfd_poll_tracks_the_counter,
            eventfd2_with_unknown_flags_is_einval,
            eventfd_blocking_read_wakes_on_write_from_another_process,
            random_file_syscalls_leave_the_kernel_standing,
            proc_fd_link_open_makes_a_new_description_of_the_same_file,
            proc_fd_link_open_takes_the_requested_access_mode_and_flags,
            proc_fd_link_open_checks_the_inode_permissions_not_the_fd_mode,
            proc_fd_link_of_an_unlinked_file_reads_deleted_and_still_opens,
            proc_fd_link_lstat_mode_follows_the_fd_access_mode,
            proc_fd_link_stat_follows_to_the_file,
            proc_fd_link_of_a_directory_fd_resolves_names_below_it,
            proc_fd_link_of_a_pipe_opens_that_pipe,
            proc_fd_link_of_a_pipe_never_waits_for_the_other_end,
            proc_fd_link_of_a_pipe_opened_read_write_is_both_ends,
            pipe_belongs_to_its_creator_who_may_reopen_it,
            proc_fd_link_of_an_eventfd_is_enxio,
            proc_fd_link_of_another_users_process_needs_ptrace_access,
            execve_of_a_proc_fd_link_runs_the_unlinked_program,
            o_tmpfile_makes_an_unnamed_file_shown_as_dir_hash_ino_deleted,
            o_tmpfile_file_is_linked_in_through_proc_fd_or_at_empty_path,
            linkat_gives_no_name_to_an_unlinked_or_o_excl_tmpfile_file,
            o_tmpfile_needs_write_access_a_directory_and_no_o_creat,
            mounted_tmpfs_covers_the_directory_until_umount,
            mounted_tmpfs_has_a_device_of_its_own,
            mounted_tmpfs_root_takes_the_mode_option,
            mounted_tmpfs_root_defaults_to_mode_1777,
            mountinfo_shows_a_tmpfs_mount_with_its_parent_device_and_options,
            statfs_of_a_tmpfs_mounted_with_size_reports_it_as_f_blocks,
            statfs_of_a_tmpfs_holding_a_deep_tree_counts_no_blocks_for_directories,
            dotdot_from_a_mount_root_leads_to_the_mountpoint_parent,
            proc_self_mounts_lists_a_tmpfs_mount,
            mount_with_an_unknown_filesystem_type_is_enodev,
            mount_with_an_unknown_tmpfs_option_is_einval,
            mount_without_a_filesystem_type_is_einval,
            mount_on_a_missing_directory_is_enoent,
            mount_on_a_regular_file_is_enotdir,
            mount_with_a_bad_target_pointer_is_efault,
            mount_by_non_root_is_eperm,
            umount_of_a_directory_that_is_not_a_mount_point_is_einval,
            umount2_with_unknown_flags_is_einval,
            umount_by_non_root_is_eperm,
            umount_of_a_mount_holding_a_working_directory_is_ebusy,
            umount2_detach_takes_a_busy_mount_off,
            umount_with_a_directory_outside_the_mount_open_succeeds,
            rmdir_of_a_mountpoint_is_ebusy,
        ],
    )
}

/// A file in a fresh scratch directory holding `data`, open with `flags`.
fn sendfile_copies_and_advances_the_offset() {
    let (_d1, src) = temp_file(b"0123456789", O_RDONLY);
    let (_d2, dst) = temp_file(b"", O_RDWR);
    let mut off: i64 = 3;
    assert_eq!(sys!(SYS_sendfile, dst, src, &mut off as *mut i64, 4).unwrap(), 4);
    assert_eq!(off, 7);
    assert_eq!(lseek(src, 0, SEEK_CUR).unwrap(), 0, "with an offset pointer the file position stays");
    assert_eq!(sys!(SYS_sendfile, dst, src, 0, 100).unwrap(), 10);
    let mut buf = [0u8; 16];
    assert_eq!(sys!(SYS_pread64, dst, buf.as_mut_ptr(), 16, 0).unwrap(), 14);
    assert_eq!(&buf[..14], b"34560123456789");
    close(src).unwrap();
    close(dst).unwrap();
}

fn fd_is_open(fd: i32) -> bool {
    sys!(SYS_fcntl, fd, F_GETFD).is_ok()
}

/// Four descriptors of one pipe's read end, at 100..=103.
fn four_fds() -> (i32, i32) {
    let (r, w) = pipe(0).unwrap();
    for fd in 100..104 {
        sys!(SYS_dup2, r, fd).unwrap();
    }
    (r, w)
}

fn close_range_closes_the_open_descriptors_in_the_range() {
    let (r, w) = four_fds();
    sys!(SYS_close_range, 101, 102, 0).unwrap();
    assert_eq!([100, 101, 102, 103].map(fd_is_open), [true, false, false, true]);
    for fd in [r, w, 100, 103] {
        close(fd).unwrap();
    }
}

fn close_range_to_the_largest_number_closes_the_rest() {
    let (r, w) = four_fds();
    sys!(SYS_close_range, 101, u32::MAX, 0).unwrap();
    assert_eq!([100, 101, 102, 103].map(fd_is_open), [true, false, false, false]);
    for fd in [r, w, 100] {
        close(fd).unwrap();
    }
}

fn close_range_cloexec_marks_instead_of_closing() {
    let (r, w) = four_fds();
    sys!(SYS_close_range, 100, 102, 4).unwrap();
    let flags = [100, 101, 102, 103].map(|fd| sys!(SYS_fcntl, fd, F_GETFD).unwrap());
    assert_eq!(flags, [1, 1, 1, 0].map(i64::from));
    for fd in [r, w, 100, 101, 102, 103] {
        close(fd).unwrap();
    }
}

fn close_range_with_unknown_flags_or_first_past_last_is_einval() {
    assert_errno!(sys!(SYS_close_range, 10, 5, 0), EINVAL);
    assert_errno!(sys!(SYS_close_range, 1000, 1001, 1), EINVAL);
    assert_errno!(sys!(SYS_close_range, 1000, 1001, 8), EINVAL);
}

fn copy_file_range(
    fd_in: i32,
    off_in: Option<&mut i64>,
    fd_out: i32,
    off_out: Option<&mut i64>,
    len: usize,
) -> Result<i64, user_tests::Errno> {
    let p = |o: Option<&mut i64>| o.map_or(std::ptr::null_mut(), |o| o as *mut i64);
    sys!(SYS_copy_file_range, fd_in, p(off_in), fd_out, p(off_out), len, 0)
}

fn copy_file_range_copies_and_advances_the_file_positions() {
    let dir = TempDir::new();
    let fin = open(&dir.file("in", b"0123456789"), O_RDONLY, 0).unwrap();
    let fout = open(&dir.join("out"), O_WRONLY | O_CREAT, 0o644).unwrap();
    lseek(fin, 2, SEEK_SET).unwrap();
    assert_eq!(copy_file_range(fin, None, fout, None, 5), Ok(5));
    assert_eq!((lseek(fin, 0, SEEK_CUR), lseek(fout, 0, SEEK_CUR)), (Ok(7), Ok(5)));
    assert_eq!(std::fs::read(dir.join("out")).unwrap(), b"23456");
    close(fin).unwrap();
    close(fout).unwrap();
}

fn copy_file_range_with_offsets_updates_them_and_not_the_positions() {
    let dir = TempDir::new();
    let fin = open(&dir.file("in", b"0123456789"), O_RDONLY, 0).unwrap();
    let fout = open(&dir.file("out", b"abcdef"), O_WRONLY, 0).unwrap();
    let (mut oi, mut oo) = (6i64, 4i64);
    assert_eq!(copy_file_range(fin, Some(&mut oi), fout, Some(&mut oo), 3), Ok(3));
    assert_eq!((oi, oo), (9, 7));
    assert_eq!((lseek(fin, 0, SEEK_CUR), lseek(fout, 0, SEEK_CUR)), (Ok(0), Ok(0)));
    assert_eq!(std::fs::read(dir.join("out")).unwrap(), b"abcd678");
    close(fin).unwrap();
    close(fout).unwrap();
}

fn copy_file_range_stops_at_the_end_of_the_input() {
    let dir = TempDir::new();
    let fin = open(&dir.file("in", b"0123456789"), O_RDONLY, 0).unwrap();
    let fout = open(&dir.join("out"), O_WRONLY | O_CREAT, 0o644).unwrap();
    assert_eq!(copy_file_range(fin, None, fout, None, 1 << 20), Ok(10));
    assert_eq!(copy_file_range(fin, None, fout, None, 1 << 20), Ok(0));
    let mut past = 50i64;
    assert_eq!(copy_file_range(fin, Some(&mut past), fout, None, 5), Ok(0));
    assert_eq!(past, 50);
    close(fin).unwrap();
    close(fout).unwrap();
}

fn copy_file_range_within_one_file_may_not_overlap() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", b"0123456789"), O_RDWR, 0).unwrap();
    let (mut a, mut b) = (0i64, 3i64);
    assert_errno!(copy_file_range(fd, Some(&mut a), fd, Some(&mut b), 5), EINVAL);
    let (mut a, mut b) = (0i64, 5i64);
    assert_eq!(copy_file_range(fd, Some(&mut a), fd, Some(&mut b), 5), Ok(5));
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"0123401234");
    close(fd).unwrap();
}

fn copy_file_range_checks_the_files_kinds_and_modes() {
    let dir = TempDir::new();
    let path = dir.file("in", b"0123456789");
    let fin = open(&path, O_RDONLY, 0).unwrap();
    let wronly = open(&path, O_WRONLY, 0).unwrap();
    let append = open(&dir.join("out"), O_WRONLY | O_CREAT | O_APPEND, 0o644).unwrap();
    let fdir = open(&dir.path.to_string_lossy(), O_RDONLY | O_DIRECTORY, 0).unwrap();
    let (r, w) = pipe(0).unwrap();
    assert_errno!(copy_file_range(fin, None, append, None, 1), EBADF);
    assert_errno!(copy_file_range(wronly, None, wronly, None, 1), EBADF);
    assert_errno!(copy_file_range(fdir, None, wronly, None, 1), EISDIR);
    assert_errno!(copy_file_range(fin, None, w, None, 1), EINVAL);
    assert_errno!(copy_file_range(999, None, wronly, None, 1), EBADF);
    assert_errno!(sys!(SYS_copy_file_range, fin, 0, append, 0, 1, 1), EINVAL);
    for fd in [fin, wronly, append, fdir, r, w] {
        close(fd).unwrap();
    }
}

fn copy_file_range_across_filesystems_is_exdev() {
    let m = TmpfsMount::new("");
    let dir = TempDir::new();
    let fin = open(&dir.file("in", b"0123456789"), O_RDONLY, 0).unwrap();
    let fout = open(&format!("{}/out", m.mnt), O_WRONLY | O_CREAT, 0o644).unwrap();
    assert_errno!(copy_file_range(fin, None, fout, None, 5), EXDEV);
    close(fin).unwrap();
    close(fout).unwrap();
}

fn proc_self_links_to_own_pid() {
    let target = std::fs::read_link("/proc/self").unwrap();
    assert_eq!(target.to_str().unwrap(), std::process::id().to_string());
}

fn proc_self_status_names_the_process() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
    assert_eq!(field("Name:").as_deref(), Some("fs"));
    assert_eq!(field("Pid:"), Some(std::process::id().to_string()));
    assert!(field("VmRSS:").is_some_and(|v| v.ends_with(" kB")), "{status}");
}

fn chown_changes_owner_and_clears_setuid() {
    let dir = TempDir::new();
    let p = cstr(&dir.file("f", b"x"));
    sys!(SYS_chmod, p.as_ptr(), 0o4755).unwrap();
    sys!(SYS_chown, p.as_ptr(), 1000, 1001).unwrap();
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(SYS_stat, p.as_ptr(), &mut st as *mut libc::stat).unwrap();
    assert_eq!((st.st_uid, st.st_gid), (1000, 1001));
    assert_eq!(st.st_mode & 0o7777, 0o755, "chown clears set-user-ID");
    sys!(SYS_chown, p.as_ptr(), -1i32, -1i32).unwrap();
    sys!(SYS_stat, p.as_ptr(), &mut st as *mut libc::stat).unwrap();
    assert_eq!((st.st_uid, st.st_gid), (1000, 1001), "-1 keeps both");
}

fn chown_by_non_root_is_eperm() {
    let dir = TempDir::new();
    let p = cstr(&dir.file("f", b"x"));
    run_in_child(|| {
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(sys!(SYS_chown, p.as_ptr(), 1000, 1000), EPERM);
    });
}

fn chmod_by_non_owner_is_eperm() {
    let dir = TempDir::new();
    let p = cstr(&dir.file("f", b"x"));
    run_in_child(|| {
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(sys!(SYS_chmod, p.as_ptr(), 0o777), EPERM);
    });
}

fn utimensat_sets_times_and_omit_keeps_them() {
    let dir = TempDir::new();
    let p = cstr(&dir.file("f", b"x"));
    let times = [libc::timespec { tv_sec: 1_000_000, tv_nsec: 5 }, libc::timespec { tv_sec: 2_000_000, tv_nsec: 7 }];
    sys!(SYS_utimensat, AT_FDCWD, p.as_ptr(), times.as_ptr(), 0).unwrap();
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(SYS_stat, p.as_ptr(), &mut st as *mut libc::stat).unwrap();
    assert_eq!((st.st_atime, st.st_atime_nsec, st.st_mtime, st.st_mtime_nsec), (1_000_000, 5, 2_000_000, 7));
    let omit =
        [libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT }, libc::timespec { tv_sec: 3_000_000, tv_nsec: 0 }];
    sys!(SYS_utimensat, AT_FDCWD, p.as_ptr(), omit.as_ptr(), 0).unwrap();
    sys!(SYS_stat, p.as_ptr(), &mut st as *mut libc::stat).unwrap();
    assert_eq!((st.st_atime, st.st_mtime), (1_000_000, 3_000_000));
    let bad = [libc::timespec { tv_sec: 0, tv_nsec: 2_000_000_000 }, libc::timespec { tv_sec: 0, tv_nsec: 0 }];
    assert_errno!(sys!(SYS_utimensat, AT_FDCWD, p.as_ptr(), bad.as_ptr(), 0), EINVAL);
}

fn hard_link_shares_content_and_counts_links() {
    let dir = TempDir::new();
    let a = dir.file("a", b"first");
    let b = format!("{}/b", dir.path.display());
    sys!(SYS_link, cstr(&a).as_ptr(), cstr(&b).as_ptr()).unwrap();
    std::fs::write(&b, b"second").unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), b"second");
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(SYS_stat, cstr(&a).as_ptr(), &mut st as *mut libc::stat).unwrap();
    assert_eq!(st.st_nlink, 2);
    assert_errno!(sys!(SYS_link, cstr(&a).as_ptr(), cstr(&b).as_ptr()), EEXIST);
    std::fs::remove_file(&a).unwrap();
    sys!(SYS_stat, cstr(&b).as_ptr(), &mut st as *mut libc::stat).unwrap();
    assert_eq!(st.st_nlink, 1);
}

fn flock_exclusive_excludes_other_descriptions_until_close() {
    let dir = TempDir::new();
    let path = dir.file("lock", b"");
    let first = open(&path, O_RDWR, 0).unwrap();
    let second = open(&path, O_RDONLY, 0).unwrap();
    sys!(SYS_flock, first, LOCK_EX | LOCK_NB).unwrap();
    assert_errno!(sys!(SYS_flock, second, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    assert_errno!(sys!(SYS_flock, second, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    // Re-locking through the owning description converts instead of conflicting.
    sys!(SYS_flock, first, LOCK_EX | LOCK_NB).unwrap();
    close(first).unwrap();
    sys!(SYS_flock, second, LOCK_EX | LOCK_NB).unwrap();
    close(second).unwrap();
}

fn flock_shared_locks_coexist_and_dup_shares_the_lock() {
    let dir = TempDir::new();
    let path = dir.file("lock", b"");
    let a = open(&path, O_RDONLY, 0).unwrap();
    let b = open(&path, O_RDONLY, 0).unwrap();
    sys!(SYS_flock, a, LOCK_SH | LOCK_NB).unwrap();
    sys!(SYS_flock, b, LOCK_SH | LOCK_NB).unwrap();
    let c = open(&path, O_RDONLY, 0).unwrap();
    assert_errno!(sys!(SYS_flock, c, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    sys!(SYS_flock, b, LOCK_UN).unwrap();
    // A dup refers to the same description, so closing the original keeps the lock.
    let a2 = sys!(SYS_dup, a).unwrap() as i32;
    close(a).unwrap();
    assert_errno!(sys!(SYS_flock, c, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    close(a2).unwrap();
    sys!(SYS_flock, c, LOCK_EX | LOCK_NB).unwrap();
    close(b).unwrap();
    close(c).unwrap();
}

fn flock_blocks_until_the_holder_closes() {
    let dir = TempDir::new();
    let path = dir.file("lock", b"");
    let held = open(&path, O_RDONLY, 0).unwrap();
    sys!(SYS_flock, held, LOCK_EX).unwrap();
    let (r, w) = pipe(0).unwrap();
    let child = fork_child(|| {
        let _ = close(held);
        let mine = open(&path, O_RDONLY, 0).unwrap();
        sys!(SYS_flock, mine, LOCK_SH).unwrap();
        write(w, b"L").unwrap();
        0
    });
    close(w).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut pfd = pollfd { fd: r, events: POLLIN, revents: 0 };
    // The child still waits: the lock is held through `held` (the child closed only its copy).
    assert_eq!(sys!(SYS_poll, &mut pfd as *mut pollfd, 1, 0).unwrap(), 0);
    close(held).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(read(r, &mut byte).unwrap(), 1);
    assert!(matches!(wait_child(child), Exit::Code(0)));
    close(r).unwrap();
}

fn eventfd_read_u64(fd: i32) -> Result<u64, user_tests::Errno> {
    let mut v = [0u8; 8];
    assert_eq!(read(fd, &mut v)?, 8);
    Ok(u64::from_ne_bytes(v))
}

fn eventfd_write_u64(fd: i32, v: u64) -> Result<usize, user_tests::Errno> {
    write(fd, &v.to_ne_bytes())
}

fn eventfd_read_returns_the_sum_of_writes_and_resets_it() {
    let fd = sys!(SYS_eventfd2, 5, EFD_CLOEXEC).unwrap() as i32;
    assert_eq!(sys!(SYS_fcntl, fd, F_GETFD).unwrap(), FD_CLOEXEC as i64);
    assert_eq!(sys!(SYS_fcntl, fd, F_GETFL).unwrap() & O_ACCMODE as i64, O_RDWR as i64);
    eventfd_write_u64(fd, 3).unwrap();
    eventfd_write_u64(fd, 4).unwrap();
    assert_eq!(eventfd_read_u64(fd).unwrap(), 12);
    // Linux's eventfd uses noop_llseek: lseek succeeds and reports 0; pread has no position.
    assert_eq!(sys!(SYS_lseek, fd, 100, SEEK_SET).unwrap(), 0);
    let mut v = [0u8; 8];
    assert_errno!(sys!(SYS_pread64, fd, v.as_mut_ptr(), 8, 0), ESPIPE);
    close(fd).unwrap();
}

fn eventfd_semaphore_read_takes_one_at_a_time() {
    let fd = sys!(SYS_eventfd2, 2, EFD_SEMAPHORE | EFD_NONBLOCK).unwrap() as i32;
    assert_eq!(eventfd_read_u64(fd).unwrap(), 1);
    assert_eq!(eventfd_read_u64(fd).unwrap(), 1);
    assert_errno!(eventfd_read_u64(fd), EAGAIN);
    close(fd).unwrap();
}

fn eventfd_nonblocking_read_at_zero_is_eagain() {
    let fd = sys!(SYS_eventfd2, 0, EFD_NONBLOCK).unwrap() as i32;
    assert_errno!(eventfd_read_u64(fd), EAGAIN);
    close(fd).unwrap();
}

fn eventfd_short_buffers_and_all_ones_write_are_einval() {
    let fd = sys!(SYS_eventfd2, 1, EFD_NONBLOCK).unwrap() as i32;
    let mut small = [0u8; 4];
    assert_errno!(read(fd, &mut small), EINVAL);
    assert_errno!(write(fd, &[1, 0, 0, 0]), EINVAL);
    assert_errno!(eventfd_write_u64(fd, u64::MAX), EINVAL);
    // A longer buffer is fine: eight bytes move.
    let mut big = [0u8; 16];
    assert_eq!(read(fd, &mut big).unwrap(), 8);
    assert_eq!(u64::from_ne_bytes(big[..8].try_into().unwrap()), 1);
    close(fd).unwrap();
}

fn eventfd_write_past_the_maximum_is_eagain() {
    let fd = sys!(SYS_eventfd2, 0, EFD_NONBLOCK).unwrap() as i32;
    eventfd_write_u64(fd, u64::MAX - 1).unwrap();
    assert_errno!(eventfd_write_u64(fd, 1), EAGAIN);
    eventfd_write_u64(fd, 0).unwrap();
    assert_eq!(eventfd_read_u64(fd).unwrap(), u64::MAX - 1);
    close(fd).unwrap();
}

fn eventfd_poll_tracks_the_counter() {
    let fd = sys!(SYS_eventfd2, 0, 0).unwrap() as i32;
    let mut pfd = pollfd { fd, events: POLLIN | POLLOUT, revents: 0 };
    assert_eq!(sys!(SYS_poll, &mut pfd as *mut pollfd, 1, 0).unwrap(), 1);
    assert_eq!(pfd.revents, POLLOUT);
    eventfd_write_u64(fd, u64::MAX - 1).unwrap();
    sys!(SYS_poll, &mut pfd as *mut pollfd, 1, 0).unwrap();
    assert_eq!(pfd.revents, POLLIN);
    eventfd_read_u64(fd).unwrap();
    sys!(SYS_poll, &mut pfd as *mut pollfd, 1, 0).unwrap();
    assert_eq!(pfd.revents, POLLOUT);
    close(fd).unwrap();
}

fn eventfd2_with_unknown_flags_is_einval() {
    assert_errno!(sys!(SYS_eventfd2, 0, O_APPEND), EINVAL);
    assert_errno!(sys!(SYS_eventfd2, 0, 2), EINVAL);
}

fn eventfd_blocking_read_wakes_on_write_from_another_process() {
    let fd = sys!(SYS_eventfd2, 0, 0).unwrap() as i32;
    let child = fork_child(|| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        eventfd_write_u64(fd, 42).unwrap();
        0
    });
    assert_eq!(eventfd_read_u64(fd).unwrap(), 42);
    assert!(matches!(wait_child(child), Exit::Code(0)));
    close(fd).unwrap();
}

fn flock_with_bad_operation_is_einval() {
    let dir = TempDir::new();
    let path = dir.file("lock", b"");
    let fd = open(&path, O_RDONLY, 0).unwrap();
    assert_errno!(sys!(SYS_flock, fd, 0), EINVAL);
    assert_errno!(sys!(SYS_flock, fd, LOCK_SH | LOCK_EX), EINVAL);
    assert_errno!(sys!(SYS_flock, -1, LOCK_SH), EBADF);
    close(fd).unwrap();
}

fn hard_link_to_directory_is_eperm() {
    let dir = TempDir::new();
    let target = format!("{}/d", dir.path.display());
    assert_errno!(sys!(SYS_link, cstr(&dir.path.to_string_lossy()).as_ptr(), cstr(&target).as_ptr()), EPERM);
}

fn select_reports_readable_pipe_and_times_out_on_empty_one() {
    let (r1, w1) = pipe(0).unwrap();
    let (r2, w2) = pipe(0).unwrap();
    write(w1, b"x").unwrap();
    let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
    unsafe {
        libc::FD_SET(r1, &mut set);
        libc::FD_SET(r2, &mut set);
    }
    let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
    let n =
        sys!(SYS_select, r1.max(r2) + 1, &mut set as *mut libc::fd_set, 0, 0, &mut tv as *mut libc::timeval).unwrap();
    assert_eq!(n, 1);
    assert!(unsafe { libc::FD_ISSET(r1, &set) } && !unsafe { libc::FD_ISSET(r2, &set) });
    let mut empty: libc::fd_set = unsafe { std::mem::zeroed() };
    unsafe { libc::FD_SET(r2, &mut empty) };
    let mut tv = libc::timeval { tv_sec: 0, tv_usec: 20_000 };
    assert_eq!(
        sys!(SYS_select, r2 + 1, &mut empty as *mut libc::fd_set, 0, 0, &mut tv as *mut libc::timeval).unwrap(),
        0
    );
    for fd in [r1, w1, r2, w2] {
        close(fd).unwrap();
    }
}

fn temp_file(data: &[u8], flags: i32) -> (TempDir, i32) {
    let dir = TempDir::new();
    let path = dir.file("f", data);
    let fd = open(&path, flags, 0).unwrap();
    (dir, fd)
}

fn lseek(fd: i32, off: i64, whence: i32) -> Result<i64, user_tests::Errno> {
    sys!(SYS_lseek, fd, off, whence)
}

fn fstat(fd: i32) -> stat {
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_fstat, fd, &mut st as *mut stat).unwrap();
    st
}

fn fd_flags(fd: i32) -> i64 {
    sys!(SYS_fcntl, fd, F_GETFD).unwrap()
}

/// A process sleeping in read(2) on stdout (the console, inside the kernel) does not stop
/// another process writing to the same open file description: the read holds no lock while
/// it sleeps. On a host where stdout is a pipe the read fails at once (EBADF) and the write
/// goes through all the same.
fn write_to_a_description_another_process_is_reading_does_not_block() {
    let child = fork_child(|| {
        let mut buf = [0u8; 16];
        let _ = read(1, &mut buf);
        0
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(write(1, b"\n"), Ok(1));
    // SAFETY: our own child.
    unsafe { kill(child, SIGKILL) };
    let exit = wait_child(child);
    assert!(matches!(exit, Exit::Code(0) | Exit::Signal(SIGKILL)), "{exit:?}");
}

/// FIONREAD counts the bytes buffered in a pipe through either end.
fn fionread_works_on_both_ends_of_a_pipe() {
    let (r, w) = pipe(0).unwrap();
    write(w, b"hello").unwrap();
    for fd in [r, w] {
        let mut n: i32 = -1;
        sys!(SYS_ioctl, fd, FIONREAD, &mut n as *mut i32).unwrap();
        assert_eq!(n, 5, "fd {fd}");
    }
    close(r).unwrap();
    close(w).unwrap();
}

/// `rm -rf`: one open directory, each entry unlinked as getdents64 returns it; every
/// entry must come up once, so the directory ends empty (positions stay put under removal).
fn deleting_entries_while_listing_a_directory_visits_every_entry() {
    let dir = TempDir::new();
    let sub = dir.path.join("d");
    std::fs::create_dir(&sub).unwrap();
    for i in 0..1000 {
        std::fs::write(sub.join(format!("f{i:04}")), b"").unwrap();
    }
    let mut seen = 0;
    for e in std::fs::read_dir(&sub).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
        seen += 1;
    }
    let left = std::fs::read_dir(&sub).unwrap().count();
    assert_eq!((seen, left), (1000, 0));
}

/// flock needs a real open file: an O_PATH descriptor is EBADF.
fn flock_on_an_o_path_descriptor_is_ebadf() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", b""), O_PATH, 0).unwrap();
    assert_errno!(sys!(SYS_flock, fd, LOCK_EX), EBADF);
    close(fd).unwrap();
}

/// A pipe can be flocked; both ends are one inode, so the other end's description
/// conflicts.
fn flock_locks_a_pipe_and_its_other_end_conflicts() {
    let (r, w) = pipe(0).unwrap();
    sys!(SYS_flock, r, LOCK_EX).unwrap();
    assert_errno!(sys!(SYS_flock, w, LOCK_EX | LOCK_NB), EAGAIN);
    sys!(SYS_flock, r, LOCK_UN).unwrap();
    sys!(SYS_flock, w, LOCK_EX | LOCK_NB).unwrap();
    close(r).unwrap();
    close(w).unwrap();
}

fn open_missing_file_is_enoent() {
    let dir = TempDir::new();
    assert_errno!(open(&dir.join("missing"), O_RDONLY, 0), ENOENT);
}

fn open_bad_path_pointer_is_efault() {
    assert_errno!(sys!(SYS_openat, AT_FDCWD, 1, O_RDONLY), EFAULT);
    assert_errno!(sys!(SYS_openat, AT_FDCWD, BAD_PTR, O_RDONLY), EFAULT);
}

fn open_creat_excl_on_existing_file_is_eexist() {
    let dir = TempDir::new();
    let p = dir.file("f", b"");
    assert_errno!(open(&p, O_CREAT | O_EXCL | O_WRONLY, 0o644), EEXIST);
}

fn open_directory_flag_on_file_is_enotdir() {
    let dir = TempDir::new();
    let p = dir.file("f", b"");
    assert_errno!(open(&p, O_RDONLY | O_DIRECTORY, 0), ENOTDIR);
}

fn open_directory_for_writing_is_eisdir() {
    let dir = TempDir::new();
    assert_errno!(open(dir.path.to_str().unwrap(), O_WRONLY, 0), EISDIR);
    assert_errno!(open(dir.path.to_str().unwrap(), O_RDWR, 0), EISDIR);
}

/// Access mode 3 (O_WRONLY | O_RDWR) opens a file, after checks for both read and write,
/// with neither read nor write allowed on the descriptor; a directory is EISDIR.
fn open_with_access_mode_3_allows_neither_read_nor_write() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", b"data"), 3, 0).unwrap();
    assert_eq!(sys!(SYS_fcntl, fd, F_GETFL).unwrap() as i32 & O_ACCMODE, 3);
    let mut b = [0u8; 4];
    assert_errno!(read(fd, &mut b), EBADF);
    assert_errno!(write(fd, b"x"), EBADF);
    close(fd).unwrap();
    assert_errno!(open(dir.path.to_str().unwrap(), 3, 0), EISDIR);
}

fn fadvise(fd: i32, off: i64, len: i64, advice: i32) -> Result<i64, user_tests::Errno> {
    sys!(SYS_fadvise64, fd, off, len, advice)
}

/// Every POSIX_FADV_* advice (NORMAL..NOREUSE) is accepted; none loses data.
fn fadvise_accepts_every_advice_and_keeps_the_data() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", b"data"), O_RDONLY, 0).unwrap();
    for advice in 0..=5 {
        assert_eq!(fadvise(fd, 0, 0, advice), Ok(0), "advice {advice}");
    }
    let mut b = [0u8; 4];
    assert_eq!(sys!(SYS_pread64, fd, b.as_mut_ptr(), 4, 0), Ok(4));
    assert_eq!(&b, b"data");
    close(fd).unwrap();
}

/// fadvise: a bad or O_PATH descriptor is EBADF, a pipe ESPIPE, a negative length or
/// an unknown advice EINVAL.
fn fadvise_checks_the_descriptor_the_length_and_the_advice() {
    let dir = TempDir::new();
    let path = dir.file("f", b"data");
    let fd = open(&path, O_RDONLY, 0).unwrap();
    assert_errno!(fadvise(-1, 0, 0, 0), EBADF);
    assert_errno!(fadvise(fd, 0, -1, 0), EINVAL);
    assert_errno!(fadvise(fd, 0, 0, 6), EINVAL);
    assert_errno!(fadvise(fd, 0, 0, -1), EINVAL);
    close(fd).unwrap();
    let opath = open(&path, O_PATH, 0).unwrap();
    assert_errno!(fadvise(opath, 0, 0, 0), EBADF);
    close(opath).unwrap();
    let (r, w) = pipe(0).unwrap();
    assert_errno!(fadvise(r, 0, 0, 0), ESPIPE);
    close(r).unwrap();
    close(w).unwrap();
}

/// O_PATH | O_NOFOLLOW on a symlink gives a descriptor of the link itself.
fn open_of_a_symlink_with_o_path_and_o_nofollow_refers_to_the_link() {
    let dir = TempDir::new();
    let target = dir.file("target", b"");
    let link = dir.join("link");
    symlink(&target, &link);
    let fd = open(&link, O_PATH | O_NOFOLLOW, 0).unwrap();
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_fstat, fd, &mut st as *mut stat).unwrap();
    assert_eq!(st.st_mode & S_IFMT, S_IFLNK);
    close(fd).unwrap();
    assert_errno!(open(&link, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0), ENOTDIR);
}

/// Without O_PATH, O_NOFOLLOW refuses a final symlink.
fn open_of_a_symlink_with_o_nofollow_alone_is_eloop() {
    let dir = TempDir::new();
    let target = dir.file("target", b"");
    let link = dir.join("link");
    symlink(&target, &link);
    assert_errno!(open(&link, O_RDONLY | O_NOFOLLOW, 0), ELOOP);
}

/// A final "." or ".." is refused by name, before any other check: unlink EISDIR, rmdir
/// EINVAL for "." and ENOTEMPTY for "..", rename EBUSY either way, mkdir EEXIST, and "/"
/// is EBUSY to rmdir. (rename of "/" into /tmp is EXDEV first where /tmp is a mount.)
fn removing_or_renaming_dot_and_dotdot_has_linux_errnos() {
    let dir = TempDir::new();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let at = |name: &str| cstr(&format!("{sub}/{name}"));
    let (dot, dotdot, other) = (at("."), at(".."), at("x"));
    assert_errno!(sys!(SYS_unlinkat, AT_FDCWD, dot.as_ptr(), 0), EISDIR);
    assert_errno!(sys!(SYS_unlinkat, AT_FDCWD, dotdot.as_ptr(), 0), EISDIR);
    assert_errno!(sys!(SYS_unlinkat, AT_FDCWD, dot.as_ptr(), AT_REMOVEDIR), EINVAL);
    assert_errno!(sys!(SYS_unlinkat, AT_FDCWD, dotdot.as_ptr(), AT_REMOVEDIR), ENOTEMPTY);
    assert_errno!(sys!(SYS_renameat, AT_FDCWD, dot.as_ptr(), AT_FDCWD, other.as_ptr()), EBUSY);
    assert_errno!(sys!(SYS_renameat, AT_FDCWD, dotdot.as_ptr(), AT_FDCWD, other.as_ptr()), EBUSY);
    assert_errno!(sys!(SYS_renameat, AT_FDCWD, other.as_ptr(), AT_FDCWD, dot.as_ptr()), EBUSY);
    assert_errno!(sys!(SYS_mkdirat, AT_FDCWD, dot.as_ptr(), 0o755), EEXIST);
    let root = cstr("/");
    assert_errno!(sys!(SYS_unlinkat, AT_FDCWD, root.as_ptr(), AT_REMOVEDIR), EBUSY);
}

/// A removed directory, still open, takes no new name (Linux's IS_DEADDIR): mkdir,
/// creat, symlink, link and rename into it are ENOENT, and its link count stays 0.
fn no_name_can_be_made_in_a_removed_directory() {
    let dir = TempDir::new();
    let gone = dir.join("gone");
    std::fs::create_dir(&gone).unwrap();
    let file = dir.file("file", b"");
    let dfd = open(&gone, O_RDONLY | O_DIRECTORY, 0).unwrap();
    std::fs::remove_dir(&gone).unwrap();
    let name = cstr("x");
    let (file_c, outside) = (cstr(&file), cstr(&dir.join("outside")));
    std::fs::create_dir(dir.join("outside")).unwrap();
    assert_errno!(sys!(SYS_mkdirat, dfd, name.as_ptr(), 0o755), ENOENT);
    assert_errno!(sys!(SYS_openat, dfd, name.as_ptr(), O_CREAT | O_WRONLY, 0o644), ENOENT);
    assert_errno!(sys!(SYS_symlinkat, file_c.as_ptr(), dfd, name.as_ptr()), ENOENT);
    assert_errno!(sys!(SYS_linkat, AT_FDCWD, file_c.as_ptr(), dfd, name.as_ptr(), 0), ENOENT);
    assert_errno!(sys!(SYS_renameat, AT_FDCWD, outside.as_ptr(), dfd, name.as_ptr()), ENOENT);
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_fstat, dfd, &mut st as *mut stat).unwrap();
    assert_eq!(st.st_nlink, 0, "a removed directory has no links");
    close(dfd).unwrap();
}

fn symlink(target: &str, link: &str) {
    let (t, l) = (cstr(target), cstr(link));
    sys!(SYS_symlinkat, t.as_ptr(), AT_FDCWD, l.as_ptr()).unwrap();
}

fn open_returns_lowest_free_fd() {
    let a = open("/dev/null", O_RDONLY, 0).unwrap();
    let b = open("/dev/null", O_RDONLY, 0).unwrap();
    close(a).unwrap();
    let c = open("/dev/null", O_RDONLY, 0).unwrap();
    assert_eq!(c, a, "the freed lower fd is reused");
    close(b).unwrap();
    close(c).unwrap();
}

fn openat_resolves_relative_to_dirfd() {
    let dir = TempDir::new();
    dir.file("rel", b"via dirfd");
    let dfd = open(dir.path.to_str().unwrap(), O_RDONLY | O_DIRECTORY, 0).unwrap();
    let name = cstr("rel");
    let fd = sys!(SYS_openat, dfd, name.as_ptr(), O_RDONLY).unwrap() as i32;
    let mut buf = [0u8; 32];
    let n = read(fd, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"via dirfd");
    close(fd).unwrap();
    close(dfd).unwrap();
}

fn open_trunc_empties_file() {
    let dir = TempDir::new();
    let p = dir.file("f", b"old contents");
    let fd = open(&p, O_WRONLY | O_TRUNC, 0).unwrap();
    assert_eq!(fstat(fd).st_size, 0);
    close(fd).unwrap();
}

fn open_append_writes_at_end() {
    let dir = TempDir::new();
    let p = dir.file("f", b"abc");
    let fd = open(&p, O_WRONLY | O_APPEND, 0).unwrap();
    lseek(fd, 0, SEEK_SET).unwrap();
    write(fd, b"def").unwrap();
    close(fd).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"abcdef");
}

fn write_then_read_back_round_trips() {
    let dir = TempDir::new();
    let p = dir.join("f");
    let fd = open(&p, O_CREAT | O_RDWR | O_EXCL, 0o644).unwrap();
    assert_eq!(write(fd, b"hello, kernel").unwrap(), 13);
    assert_eq!(lseek(fd, 0, SEEK_SET).unwrap(), 0);
    let mut buf = [0u8; 64];
    assert_eq!(read(fd, &mut buf).unwrap(), 13);
    assert_eq!(&buf[..13], b"hello, kernel");
    close(fd).unwrap();
}

fn read_at_end_of_file_returns_zero() {
    let (_d, fd) = temp_file(b"xy", O_RDONLY);
    let mut buf = [0u8; 8];
    assert_eq!(read(fd, &mut buf).unwrap(), 2);
    assert_eq!(read(fd, &mut buf).unwrap(), 0);
    close(fd).unwrap();
}

fn read_on_closed_fd_is_ebadf() {
    let fd = open("/dev/zero", O_RDONLY, 0).unwrap();
    close(fd).unwrap();
    assert_errno!(read(fd, &mut [0u8; 4]), EBADF);
    assert_errno!(read(-1, &mut [0u8; 4]), EBADF);
}

fn read_into_bad_pointer_is_efault() {
    let (_d, fd) = temp_file(b"some data", O_RDONLY);
    assert_errno!(sys!(SYS_read, fd, 1, 9), EFAULT);
    assert_errno!(sys!(SYS_read, fd, BAD_PTR, 9), EFAULT);
    close(fd).unwrap();
}

fn write_from_bad_pointer_is_efault() {
    let (_d, fd) = temp_file(b"", O_WRONLY);
    assert_errno!(sys!(SYS_write, fd, 1, 9), EFAULT);
    assert_errno!(sys!(SYS_write, fd, BAD_PTR, 9), EFAULT);
    close(fd).unwrap();
}

fn write_on_read_only_fd_is_ebadf() {
    let (_d, fd) = temp_file(b"", O_RDONLY);
    assert_errno!(write(fd, b"x"), EBADF);
    close(fd).unwrap();
}

fn writev_gathers_and_readv_scatters() {
    let (_d, fd) = temp_file(b"", O_RDWR);
    let (a, b) = (b"gather ".as_slice(), b"write".as_slice());
    let iov = [
        iovec { iov_base: a.as_ptr() as *mut _, iov_len: a.len() },
        iovec { iov_base: b.as_ptr() as *mut _, iov_len: b.len() },
    ];
    assert_eq!(sys!(SYS_writev, fd, iov.as_ptr(), 2).unwrap(), 12);
    lseek(fd, 0, SEEK_SET).unwrap();
    let (mut x, mut y) = ([0u8; 5], [0u8; 16]);
    let iov = [
        iovec { iov_base: x.as_mut_ptr() as *mut _, iov_len: x.len() },
        iovec { iov_base: y.as_mut_ptr() as *mut _, iov_len: y.len() },
    ];
    assert_eq!(sys!(SYS_readv, fd, iov.as_ptr(), 2).unwrap(), 12);
    assert_eq!(&x, b"gathe");
    assert_eq!(&y[..7], b"r write");
    close(fd).unwrap();
}

fn readv_with_too_many_iovecs_is_einval() {
    let (_d, fd) = temp_file(b"abc", O_RDONLY);
    let mut buf = [0u8; 1];
    let iov = vec![iovec { iov_base: buf.as_mut_ptr() as *mut _, iov_len: 1 }; 1025];
    assert_errno!(sys!(SYS_readv, fd, iov.as_ptr(), 1025), EINVAL); // IOV_MAX is 1024
    assert_errno!(sys!(SYS_readv, fd, iov.as_ptr(), -1), EINVAL);
    close(fd).unwrap();
}

fn pwrite_and_pread_do_not_move_file_offset() {
    let (_d, fd) = temp_file(b"0123456789", O_RDWR);
    lseek(fd, 2, SEEK_SET).unwrap();
    assert_eq!(sys!(SYS_pwrite64, fd, b"AB".as_ptr(), 2, 5).unwrap(), 2);
    let mut buf = [0u8; 4];
    assert_eq!(sys!(SYS_pread64, fd, buf.as_mut_ptr(), 4, 4).unwrap(), 4);
    assert_eq!(&buf, b"4AB7");
    assert_eq!(lseek(fd, 0, SEEK_CUR).unwrap(), 2, "offset unchanged");
    assert_errno!(sys!(SYS_pread64, fd, buf.as_mut_ptr(), 4, -1), EINVAL);
    close(fd).unwrap();
}

/// A count far beyond the file (and beyond RAM) reads what the file holds:
/// the kernel must not try to buffer the count it was given.
fn pread_with_huge_count_reads_what_the_file_has() {
    let (_d, fd) = temp_file(b"0123456789", O_RDWR);
    // A buffer low in the address space, so that buf + count stays a valid
    // user range (access_ok) wherever the kernel puts its mmap area.
    let low = 0x1000_0000usize;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
    let buf = sys!(SYS_mmap, low, 4096, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0).unwrap() as *mut u8;
    assert_eq!(sys!(SYS_pread64, fd, buf, 1usize << 31, 0).unwrap(), 10);
    assert_eq!(unsafe { std::slice::from_raw_parts(buf, 10) }, b"0123456789");
    assert_eq!(sys!(SYS_read, fd, buf, 1usize << 31).unwrap(), 10);
    sys!(SYS_munmap, buf, 4096).unwrap();
    close(fd).unwrap();
}

fn pread_on_pipe_is_espipe() {
    let (r, w) = pipe(0).unwrap();
    write(w, b"x").unwrap();
    let mut buf = [0u8; 1];
    assert_errno!(sys!(SYS_pread64, r, buf.as_mut_ptr(), 1, 0), ESPIPE);
    assert_errno!(sys!(SYS_pwrite64, w, buf.as_ptr(), 1, 0), ESPIPE);
    close(r).unwrap();
    close(w).unwrap();
}

fn double_close_is_ebadf() {
    let fd = open("/dev/null", O_RDONLY, 0).unwrap();
    close(fd).unwrap();
    assert_errno!(close(fd), EBADF);
}

fn lseek_set_cur_end_compute_offsets() {
    let (_d, fd) = temp_file(b"0123456789", O_RDONLY);
    assert_eq!(lseek(fd, 3, SEEK_SET).unwrap(), 3);
    assert_eq!(lseek(fd, 4, SEEK_CUR).unwrap(), 7);
    assert_eq!(lseek(fd, -2, SEEK_CUR).unwrap(), 5);
    assert_eq!(lseek(fd, -1, SEEK_END).unwrap(), 9);
    let mut b = [0u8; 1];
    read(fd, &mut b).unwrap();
    assert_eq!(&b, b"9");
    close(fd).unwrap();
}

fn lseek_to_negative_offset_is_einval() {
    let (_d, fd) = temp_file(b"0123", O_RDONLY);
    assert_errno!(lseek(fd, -1, SEEK_SET), EINVAL);
    assert_errno!(lseek(fd, -5, SEEK_END), EINVAL);
    assert_eq!(lseek(fd, 0, SEEK_CUR).unwrap(), 0, "failed seek leaves offset");
    close(fd).unwrap();
}

fn lseek_with_bad_whence_is_einval() {
    let (_d, fd) = temp_file(b"0123", O_RDONLY);
    assert_errno!(lseek(fd, 0, 77), EINVAL);
    close(fd).unwrap();
}

fn lseek_on_pipe_is_espipe() {
    let (r, w) = pipe(0).unwrap();
    assert_errno!(lseek(r, 0, SEEK_SET), ESPIPE);
    close(r).unwrap();
    close(w).unwrap();
}

fn seek_past_end_leaves_zero_filled_hole() {
    let (_d, fd) = temp_file(b"ab", O_RDWR);
    assert_eq!(lseek(fd, 10, SEEK_SET).unwrap(), 10);
    let mut b = [0u8; 4];
    assert_eq!(read(fd, &mut b).unwrap(), 0);
    write(fd, b"z").unwrap();
    assert_eq!(fstat(fd).st_size, 11);
    let mut all = [0xffu8; 11];
    assert_eq!(sys!(SYS_pread64, fd, all.as_mut_ptr(), 11, 0).unwrap(), 11);
    assert_eq!(&all, b"ab\0\0\0\0\0\0\0\0z");
    close(fd).unwrap();
}

fn fstat_reports_size_and_regular_mode() {
    let (_d, fd) = temp_file(b"12345", O_RDONLY);
    let st = fstat(fd);
    assert_eq!(st.st_size, 5);
    assert_eq!(st.st_mode & S_IFMT, S_IFREG);
    assert_eq!(st.st_nlink, 1);
    close(fd).unwrap();
}

fn fstat_on_bad_fd_is_ebadf() {
    let mut st: stat = unsafe { std::mem::zeroed() };
    assert_errno!(sys!(SYS_fstat, -1, &mut st as *mut stat), EBADF);
}

fn fstat_into_bad_pointer_is_efault() {
    let fd = open("/dev/null", O_RDONLY, 0).unwrap();
    assert_errno!(sys!(SYS_fstat, fd, BAD_PTR), EFAULT);
    close(fd).unwrap();
}

fn newfstatat(dirfd: i32, path: &str, flags: i32) -> Result<stat, user_tests::Errno> {
    let p = cstr(path);
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_newfstatat, dirfd, p.as_ptr(), &mut st as *mut stat, flags)?;
    Ok(st)
}

fn newfstatat_on_directory_reports_mode_and_nlink() {
    let dir = TempDir::new();
    let d = dir.path.to_str().unwrap();
    let st = newfstatat(AT_FDCWD, d, 0).unwrap();
    assert_eq!(st.st_mode & S_IFMT, S_IFDIR);
    assert_eq!(st.st_nlink, 2, "an empty directory: its name and its `.`");
    std::fs::create_dir(dir.join("sub")).unwrap();
    assert_eq!(newfstatat(AT_FDCWD, d, 0).unwrap().st_nlink, 3, "plus the subdirectory's `..`");
}

fn newfstatat_missing_path_is_enoent() {
    let dir = TempDir::new();
    assert_errno!(newfstatat(AT_FDCWD, &dir.join("nope"), 0), ENOENT);
}

fn newfstatat_empty_path_stats_the_fd() {
    let (_d, fd) = temp_file(b"123", O_RDONLY);
    assert_eq!(newfstatat(fd, "", AT_EMPTY_PATH).unwrap().st_size, 3);
    assert_errno!(newfstatat(fd, "", 0), ENOENT);
    close(fd).unwrap();
}

fn statx_reports_size_and_mode() {
    let dir = TempDir::new();
    let p = cstr(&dir.file("f", b"1234567"));
    let mut sx: statx = unsafe { std::mem::zeroed() };
    sys!(SYS_statx, AT_FDCWD, p.as_ptr(), 0, STATX_BASIC_STATS, &mut sx as *mut statx).unwrap();
    assert_eq!(sx.stx_mask & (STATX_SIZE | STATX_MODE), STATX_SIZE | STATX_MODE);
    assert_eq!(sx.stx_size, 7);
    assert_eq!(sx.stx_mode as u32 & S_IFMT, S_IFREG);
    assert_eq!(sx.stx_nlink, 1);
}

/// The names in directory `fd`, read with getdents64 into a small buffer (several calls).
fn getdents_names(fd: i32) -> Vec<String> {
    let mut names = Vec::new();
    let mut buf = vec![0u8; 128];
    loop {
        let n = sys!(SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()).unwrap() as usize;
        if n == 0 {
            return names;
        }
        let mut off = 0;
        while off < n {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let end = name.iter().position(|&c| c == 0).unwrap();
            names.push(String::from_utf8_lossy(&name[..end]).into_owned());
            off += reclen;
        }
    }
}

fn getdents64_lists_dot_dotdot_and_created_files() {
    let dir = TempDir::new();
    for i in 0..10 {
        dir.file(&format!("file-{i}"), b"");
    }
    std::fs::create_dir(dir.join("subdir")).unwrap();
    let fd = open(dir.path.to_str().unwrap(), O_RDONLY | O_DIRECTORY, 0).unwrap();
    let mut names = getdents_names(fd);
    names.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("file-{i}")).collect();
    want.extend([".".to_string(), "..".to_string(), "subdir".to_string()]);
    want.sort();
    assert_eq!(names, want);
    close(fd).unwrap();
}

fn getdents64_on_file_is_enotdir() {
    let (_d, fd) = temp_file(b"", O_RDONLY);
    let mut buf = [0u8; 256];
    assert_errno!(sys!(SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()), ENOTDIR);
    close(fd).unwrap();
}

fn dup_shares_the_file_offset() {
    let (_d, fd) = temp_file(b"abcdef", O_RDONLY);
    let fd2 = sys!(SYS_dup, fd).unwrap() as i32;
    assert_ne!(fd2, fd);
    let mut b = [0u8; 2];
    read(fd, &mut b).unwrap();
    read(fd2, &mut b).unwrap();
    assert_eq!(&b, b"cd", "the duplicate continues where the original stopped");
    assert_eq!(fd_flags(fd2) & FD_CLOEXEC as i64, 0, "dup clears FD_CLOEXEC");
    close(fd).unwrap();
    close(fd2).unwrap();
}

fn dup_of_bad_fd_is_ebadf() {
    assert_errno!(sys!(SYS_dup, -1), EBADF);
    assert_errno!(sys!(SYS_dup2, -1, 100), EBADF);
}

fn dup2_replaces_open_target_fd() {
    let (_d, a) = temp_file(b"from a", O_RDONLY);
    let b = open("/dev/null", O_RDONLY, 0).unwrap();
    assert_eq!(sys!(SYS_dup2, a, b).unwrap(), b as i64);
    let mut buf = [0u8; 16];
    assert_eq!(read(b, &mut buf).unwrap(), 6, "b now refers to a's file");
    close(a).unwrap();
    close(b).unwrap();
}

fn dup2_onto_itself_returns_the_fd() {
    let fd = open("/dev/null", O_RDONLY, 0).unwrap();
    assert_eq!(sys!(SYS_dup2, fd, fd).unwrap(), fd as i64);
    close(fd).unwrap();
}

fn dup3_onto_itself_is_einval() {
    let fd = open("/dev/null", O_RDONLY, 0).unwrap();
    assert_errno!(sys!(SYS_dup3, fd, fd, 0), EINVAL);
    close(fd).unwrap();
}

fn dup3_with_o_cloexec_sets_fd_cloexec() {
    let fd = open("/dev/null", O_RDONLY, 0).unwrap();
    let target = sys!(SYS_fcntl, fd, F_DUPFD, 200).unwrap() as i32;
    close(target).unwrap();
    assert_eq!(sys!(SYS_dup3, fd, target, O_CLOEXEC).unwrap(), target as i64);
    assert_eq!(fd_flags(target), FD_CLOEXEC as i64);
    assert_errno!(sys!(SYS_dup3, fd, target, 0x4), EINVAL); // flags other than O_CLOEXEC
    close(fd).unwrap();
    close(target).unwrap();
}

fn pipe_round_trips_data() {
    let (r, w) = pipe(0).unwrap();
    assert_eq!(write(w, b"through the pipe").unwrap(), 16);
    let mut buf = [0u8; 64];
    assert_eq!(read(r, &mut buf).unwrap(), 16);
    assert_eq!(&buf[..16], b"through the pipe");
    close(r).unwrap();
    close(w).unwrap();
}

fn pipe_read_returns_zero_after_write_end_closed() {
    let (r, w) = pipe(0).unwrap();
    write(w, b"last").unwrap();
    close(w).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(read(r, &mut buf).unwrap(), 4, "buffered data first");
    assert_eq!(read(r, &mut buf).unwrap(), 0, "then end of file");
    close(r).unwrap();
}

fn pipe_write_after_read_end_closed_is_epipe() {
    // With SIGPIPE ignored the write fails with EPIPE instead of killing the process.
    let old = unsafe { signal(SIGPIPE, SIG_IGN) };
    let (r, w) = pipe(0).unwrap();
    close(r).unwrap();
    let result = write(w, b"x");
    unsafe { signal(SIGPIPE, old) };
    assert_errno!(result, EPIPE);
    close(w).unwrap();
}

fn pipe2_with_bad_flags_is_einval() {
    let mut fds = [0i32; 2];
    assert_errno!(sys!(SYS_pipe2, fds.as_mut_ptr(), 0x1), EINVAL);
}

fn pipe2_into_bad_pointer_is_efault() {
    assert_errno!(sys!(SYS_pipe2, BAD_PTR, 0), EFAULT);
}

fn fcntl_dupfd_returns_fd_at_least_arg() {
    let fd = open("/dev/null", O_RDONLY, 0).unwrap();
    let d = sys!(SYS_fcntl, fd, F_DUPFD, 100).unwrap();
    assert!(d >= 100, "F_DUPFD 100 gave {d}");
    let c = sys!(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 100).unwrap();
    assert!(c >= 100 && c != d);
    assert_eq!(fd_flags(c as i32), FD_CLOEXEC as i64);
    for f in [fd as i64, d, c] {
        close(f as i32).unwrap();
    }
}

fn fcntl_setfd_cloexec_round_trips() {
    let fd = open("/dev/null", O_RDONLY, 0).unwrap();
    assert_eq!(fd_flags(fd), 0);
    sys!(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC).unwrap();
    assert_eq!(fd_flags(fd), FD_CLOEXEC as i64);
    sys!(SYS_fcntl, fd, F_SETFD, 0).unwrap();
    assert_eq!(fd_flags(fd), 0);
    close(fd).unwrap();
}

fn fcntl_setfl_nonblock_round_trips() {
    let (r, w) = pipe(0).unwrap();
    let fl = sys!(SYS_fcntl, r, F_GETFL).unwrap();
    assert_eq!(fl & O_NONBLOCK as i64, 0);
    sys!(SYS_fcntl, r, F_SETFL, fl | O_NONBLOCK as i64).unwrap();
    assert_ne!(sys!(SYS_fcntl, r, F_GETFL).unwrap() & O_NONBLOCK as i64, 0);
    close(r).unwrap();
    close(w).unwrap();
}

fn fcntl_getfl_reports_access_mode() {
    let (_d, fd) = temp_file(b"", O_WRONLY | O_APPEND);
    let fl = sys!(SYS_fcntl, fd, F_GETFL).unwrap() as i32;
    assert_eq!(fl & O_ACCMODE, O_WRONLY);
    assert_ne!(fl & O_APPEND, 0);
    assert_errno!(sys!(SYS_fcntl, fd, 9999), EINVAL);
    close(fd).unwrap();
}

fn nonblocking_read_of_empty_pipe_is_eagain() {
    let (r, w) = pipe(O_NONBLOCK).unwrap();
    assert_errno!(read(r, &mut [0u8; 4]), EAGAIN);
    close(r).unwrap();
    close(w).unwrap();
}

fn ioctl_tcgets_on_regular_file_is_enotty() {
    let (_d, fd) = temp_file(b"", O_RDONLY);
    let mut t: termios = unsafe { std::mem::zeroed() };
    assert_errno!(sys!(SYS_ioctl, fd, TCGETS, &mut t as *mut termios), ENOTTY);
    close(fd).unwrap();
}

/// /dev/console is a terminal on a Linux host and in our kernel; when it cannot be
/// opened, or is not a terminal (some containers), there is nothing to check.
fn ioctl_tcgets_on_console_succeeds_if_it_is_a_tty() {
    let Ok(fd) = open("/dev/console", O_RDWR | O_NOCTTY, 0) else {
        return;
    };
    let st = fstat(fd);
    let mut t: termios = unsafe { std::mem::zeroed() };
    match sys!(SYS_ioctl, fd, TCGETS, &mut t as *mut termios) {
        Ok(r) => {
            assert_eq!(r, 0);
            assert_eq!(st.st_mode & S_IFMT, S_IFCHR, "a terminal is a character device");
            let mut ws: winsize = unsafe { std::mem::zeroed() };
            sys!(SYS_ioctl, fd, TIOCGWINSZ, &mut ws as *mut winsize).unwrap();
        }
        Err(e) => assert_eq!(e, user_tests::Errno(ENOTTY), "TCGETS on /dev/console"),
    }
    close(fd).unwrap();
}

fn mkdirat(path: &str, mode: u32) -> Result<i64, user_tests::Errno> {
    let p = cstr(path);
    sys!(SYS_mkdirat, AT_FDCWD, p.as_ptr(), mode)
}

fn unlinkat(path: &str, flags: i32) -> Result<i64, user_tests::Errno> {
    let p = cstr(path);
    sys!(SYS_unlinkat, AT_FDCWD, p.as_ptr(), flags)
}

fn mkdirat_existing_is_eexist() {
    let dir = TempDir::new();
    mkdirat(&dir.join("d"), 0o755).unwrap();
    assert_errno!(mkdirat(&dir.join("d"), 0o755), EEXIST);
    dir.file("f", b"");
    assert_errno!(mkdirat(&dir.join("f"), 0o755), EEXIST);
}

fn mkdirat_in_missing_directory_is_enoent() {
    let dir = TempDir::new();
    assert_errno!(mkdirat(&dir.join("missing/d"), 0o755), ENOENT);
}

fn unlinkat_removes_file() {
    let dir = TempDir::new();
    let p = dir.file("f", b"x");
    unlinkat(&p, 0).unwrap();
    assert_errno!(open(&p, O_RDONLY, 0), ENOENT);
    assert_errno!(unlinkat(&p, 0), ENOENT);
}

fn unlinkat_removedir_on_non_empty_is_enotempty() {
    let dir = TempDir::new();
    mkdirat(&dir.join("d"), 0o755).unwrap();
    dir.file("d/inner", b"");
    assert_errno!(unlinkat(&dir.join("d"), AT_REMOVEDIR), ENOTEMPTY);
    unlinkat(&dir.join("d/inner"), 0).unwrap();
    unlinkat(&dir.join("d"), AT_REMOVEDIR).unwrap();
}

fn unlinkat_directory_without_removedir_is_eisdir() {
    let dir = TempDir::new();
    mkdirat(&dir.join("d"), 0o755).unwrap();
    assert_errno!(unlinkat(&dir.join("d"), 0), EISDIR);
    let f = dir.file("f", b"");
    assert_errno!(unlinkat(&f, AT_REMOVEDIR), ENOTDIR);
}

fn unlinked_open_file_stays_readable() {
    let dir = TempDir::new();
    let p = dir.file("f", b"still here");
    let fd = open(&p, O_RDONLY, 0).unwrap();
    unlinkat(&p, 0).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(read(fd, &mut buf).unwrap(), 10);
    assert_eq!(fstat(fd).st_nlink, 0);
    close(fd).unwrap();
}

fn renameat_moves_file() {
    let dir = TempDir::new();
    let (a, b) = (cstr(&dir.file("a", b"moved")), cstr(&dir.join("b")));
    sys!(SYS_renameat, AT_FDCWD, a.as_ptr(), AT_FDCWD, b.as_ptr()).unwrap();
    assert_eq!(std::fs::read(dir.join("b")).unwrap(), b"moved");
    assert_errno!(open(&dir.join("a"), O_RDONLY, 0), ENOENT);
}

fn getcwd() -> String {
    let mut buf = [0u8; 4096];
    let n = sys!(SYS_getcwd, buf.as_mut_ptr(), buf.len()).unwrap() as usize;
    // The raw call returns the length including the NUL.
    String::from_utf8(buf[..n - 1].to_vec()).unwrap()
}

/// Runs `f` with the working directory changed to `dir`, restoring it afterwards.
fn in_dir(dir: &str, f: impl FnOnce()) {
    let old = cstr(&getcwd());
    let d = cstr(dir);
    sys!(SYS_chdir, d.as_ptr()).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    sys!(SYS_chdir, old.as_ptr()).unwrap();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

fn getcwd_reports_directory_after_chdir() {
    let dir = TempDir::new();
    let d = dir.path.to_str().unwrap().to_string();
    let canonical = std::fs::canonicalize(&dir.path).unwrap(); // in case /tmp is a link
    in_dir(&d, || {
        assert_eq!(getcwd(), canonical.to_str().unwrap());
        std::fs::write("relative", b"r").unwrap();
    });
    assert_eq!(std::fs::read(dir.join("relative")).unwrap(), b"r");
}

fn getcwd_with_small_buffer_is_erange() {
    // One byte cannot hold any path: even "/" needs two with its NUL.
    let mut buf = [0u8; 1];
    assert_errno!(sys!(SYS_getcwd, buf.as_mut_ptr(), buf.len()), ERANGE);
}

fn chdir_to_file_is_enotdir() {
    let dir = TempDir::new();
    let f = cstr(&dir.file("f", b""));
    assert_errno!(sys!(SYS_chdir, f.as_ptr()), ENOTDIR);
}

fn chdir_to_missing_path_is_enoent() {
    let dir = TempDir::new();
    let p = cstr(&dir.join("missing"));
    assert_errno!(sys!(SYS_chdir, p.as_ptr()), ENOENT);
}

fn poll1(fd: i32, events: i16) -> (i64, i16) {
    let mut p = pollfd { fd, events, revents: 0 };
    let n = sys!(SYS_poll, &mut p as *mut pollfd, 1, 0).unwrap();
    (n, p.revents)
}

fn poll_reports_pollin_on_readable_pipe() {
    let (r, w) = pipe(0).unwrap();
    write(w, b"x").unwrap();
    let (n, revents) = poll1(r, POLLIN);
    assert_eq!(n, 1);
    assert_eq!(revents & POLLIN, POLLIN);
    let (n, revents) = poll1(w, POLLOUT);
    assert_eq!((n, revents & POLLOUT), (1, POLLOUT), "the write end has room");
    close(r).unwrap();
    close(w).unwrap();
}

fn poll_with_zero_timeout_on_empty_pipe_reports_none_ready() {
    let (r, w) = pipe(0).unwrap();
    assert_eq!(poll1(r, POLLIN), (0, 0));
    close(r).unwrap();
    close(w).unwrap();
}

fn poll_reports_pollhup_when_writer_closed() {
    let (r, w) = pipe(0).unwrap();
    close(w).unwrap();
    let (n, revents) = poll1(r, POLLIN);
    assert_eq!(n, 1);
    assert_ne!(revents & POLLHUP, 0);
    close(r).unwrap();
}

fn dev_null_reads_eof_and_swallows_writes() {
    let fd = open("/dev/null", O_RDWR, 0).unwrap();
    assert_eq!(write(fd, b"discarded").unwrap(), 9);
    assert_eq!(read(fd, &mut [0u8; 8]).unwrap(), 0);
    assert_eq!(fstat(fd).st_mode & S_IFMT, S_IFCHR);
    close(fd).unwrap();
}

fn dev_zero_reads_zeroes() {
    let fd = open("/dev/zero", O_RDWR, 0).unwrap();
    let mut buf = [0xaau8; 8192];
    assert_eq!(read(fd, &mut buf).unwrap(), 8192);
    assert!(buf.iter().all(|&b| b == 0));
    assert_eq!(write(fd, b"ignored").unwrap(), 7);
    close(fd).unwrap();
}

/// A deterministic storm of file syscalls with random arguments on a handful
/// of names in a scratch directory: creating, writing, truncating, punching,
/// mapping, renaming, linking and removing files and directories. Each child
/// must end normally (errors are fine, crashes are not); in this kernel the
/// runner's frame count also sees what was left behind.
fn random_file_syscalls_leave_the_kernel_standing() {
    const NAMES: [&str; 7] = ["a", "b", "c", "d", "d/e", "d/f", "g/h"];
    for child in 0..6u64 {
        let dir = TempDir::new();
        let base = dir.path.to_string_lossy().into_owned();
        let pid = user_tests::fork_child(move || {
            let mut x = 0x2545_f491_4f6c_dd1du64 ^ (child * 0x9e37_79b9);
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut fds: Vec<i32> = Vec::new();
            let buf = vec![0x5au8; 3 * 4096 + 17];
            let mut rbuf = vec![0u8; 3 * 4096 + 17];
            for _ in 0..400 {
                let name = cstr(&format!("{base}/{}", NAMES[(next() % NAMES.len() as u64) as usize]));
                let other = cstr(&format!("{base}/{}", NAMES[(next() % NAMES.len() as u64) as usize]));
                let fd = if fds.is_empty() { -1 } else { fds[(next() % fds.len() as u64) as usize] };
                let len = (next() % (buf.len() as u64 + 1)) as usize;
                let off = (next() % 20_000) as i64;
                unsafe {
                    match next() % 16 {
                        0 | 1 => {
                            let r = libc::open(name.as_ptr(), O_RDWR | O_CREAT, 0o644);
                            if r >= 0 {
                                fds.push(r);
                            }
                        }
                        2 => {
                            libc::write(fd, buf.as_ptr() as *const c_void, len);
                        }
                        3 => {
                            libc::pwrite(fd, buf.as_ptr() as *const c_void, len, off);
                        }
                        4 => {
                            libc::pread(fd, rbuf.as_mut_ptr() as *mut c_void, len, off);
                        }
                        5 => {
                            libc::ftruncate(fd, off);
                        }
                        6 => {
                            libc::fallocate(fd, [0, 1, 3][(next() % 3) as usize], off, len as i64 + 1);
                        }
                        7 => {
                            libc::unlink(name.as_ptr());
                        }
                        8 => {
                            libc::rename(name.as_ptr(), other.as_ptr());
                        }
                        9 => {
                            libc::mkdir(name.as_ptr(), 0o755);
                        }
                        10 => {
                            libc::rmdir(name.as_ptr());
                        }
                        11 => {
                            libc::link(name.as_ptr(), other.as_ptr());
                        }
                        12 => {
                            libc::symlink(name.as_ptr(), other.as_ptr());
                        }
                        13 => {
                            if fd >= 0 {
                                let m = libc::mmap(
                                    std::ptr::null_mut(),
                                    2 * 4096,
                                    PROT_READ | PROT_WRITE,
                                    MAP_SHARED,
                                    fd,
                                    0,
                                );
                                if m != MAP_FAILED {
                                    // Only the first byte, and only if the file reaches it.
                                    let mut st: libc::stat = std::mem::zeroed();
                                    if libc::fstat(fd, &mut st) == 0 && st.st_size > 0 {
                                        *(m as *mut u8) ^= 1;
                                    }
                                    libc::munmap(m, 2 * 4096);
                                }
                            }
                        }
                        14 => {
                            if let Some(i) = fds.iter().position(|&f| f == fd) {
                                libc::close(fds.swap_remove(i));
                            }
                        }
                        _ => {
                            libc::lseek(fd, off, [SEEK_SET, SEEK_CUR, SEEK_END][(next() % 3) as usize]);
                        }
                    }
                }
            }
            0
        });
        assert_eq!(user_tests::wait_child(pid), user_tests::Exit::Code(0), "child {child}");
        // Leave nothing behind for TempDir's cleanup to trip on.
        let _ = std::fs::remove_dir_all(&dir.path);
    }
}

fn readlink(path: &str) -> Result<String, user_tests::Errno> {
    let p = cstr(path);
    let mut buf = [0u8; 512];
    let n = sys!(SYS_readlink, p.as_ptr(), buf.as_mut_ptr(), buf.len())? as usize;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn stat_path(path: &str, follow: bool) -> Result<stat, user_tests::Errno> {
    let p = cstr(path);
    let mut st: stat = unsafe { std::mem::zeroed() };
    let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
    sys!(SYS_newfstatat, AT_FDCWD, p.as_ptr(), &mut st as *mut stat, flags)?;
    Ok(st)
}

fn fd_link(fd: i32) -> String {
    format!("/proc/self/fd/{fd}")
}

/// open of /proc/self/fd/N opens the file N refers to (Linux's magic link, nd_jump_link):
/// the same inode, a new open file description with its own offset, and /proc shows
/// the file's own path for it.
fn proc_fd_link_open_makes_a_new_description_of_the_same_file() {
    let dir = TempDir::new();
    let path = dir.file("f", b"hello world");
    let fd = open(&path, O_RDONLY, 0).unwrap();
    let mut buf = [0u8; 6];
    assert_eq!(read(fd, &mut buf), Ok(6));
    let again = open(&fd_link(fd), O_RDONLY, 0).unwrap();
    let (a, b) = (fstat(fd), fstat(again));
    assert_eq!((a.st_dev, a.st_ino), (b.st_dev, b.st_ino));
    let mut buf = [0u8; 5];
    assert_eq!(read(again, &mut buf), Ok(5));
    assert_eq!(&buf, b"hello", "the new description starts at offset 0");
    assert_eq!(lseek(fd, 0, SEEK_CUR), Ok(6), "the old one keeps its offset");
    assert_eq!(readlink(&fd_link(again)).unwrap(), path);
    close(again).unwrap();
    close(fd).unwrap();
}

/// The new open has the access mode and flags it asks for, whatever the old descriptor's:
/// a read-only descriptor's file (its name gone) is reopened for appending writes, and
/// truncated.
fn proc_fd_link_open_takes_the_requested_access_mode_and_flags() {
    let dir = TempDir::new();
    let path = dir.file("f", b"abc");
    let fd = open(&path, O_RDONLY, 0).unwrap();
    std::fs::remove_file(&path).unwrap();
    let w = open(&fd_link(fd), O_WRONLY | O_APPEND, 0).unwrap();
    assert_eq!(sys!(SYS_fcntl, w, F_GETFL).unwrap() as i32 & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND);
    assert_eq!(write(w, b"de"), Ok(2));
    assert_errno!(read(w, &mut [0u8; 1]), EBADF);
    let mut buf = [0u8; 8];
    assert_eq!(read(fd, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"abcde");
    let t = open(&fd_link(fd), O_WRONLY | O_TRUNC, 0).unwrap();
    assert_eq!(fstat(fd).st_size, 0, "O_TRUNC through the link truncates the file");
    close(t).unwrap();
    close(w).unwrap();
    close(fd).unwrap();
}

/// The access a reopen asks for is checked against the inode's mode bits (as any open),
/// not against the old descriptor: a read-only descriptor of a 0600 file (unlinked)
/// reopens for writing; after chmod 0400 it does not, even through a read-write
/// descriptor.
fn proc_fd_link_open_checks_the_inode_permissions_not_the_fd_mode() {
    let dir = TempDir::new();
    let path = dir.file("f", b"x");
    let p = cstr(&path);
    sys!(SYS_chown, p.as_ptr(), 1000, 1000).unwrap();
    sys!(SYS_chmod, p.as_ptr(), 0o600).unwrap();
    let ro = open(&path, O_RDONLY, 0).unwrap();
    std::fs::remove_file(&path).unwrap();
    run_in_child(|| {
        sys!(SYS_setuid, 1000).unwrap();
        let rw = open(&fd_link(ro), O_RDWR, 0).unwrap();
        sys!(SYS_fchmod, rw, 0o400).unwrap();
        assert_errno!(open(&fd_link(rw), O_RDWR, 0), EACCES);
        assert_errno!(open(&fd_link(rw), O_WRONLY, 0), EACCES);
        let again = open(&fd_link(rw), O_RDONLY, 0).unwrap();
        for fd in [again, rw] {
            close(fd).unwrap();
        }
    });
    close(ro).unwrap();
}

/// A file whose name was removed is still reached through the link, which reads
/// "PATH (deleted)".
fn proc_fd_link_of_an_unlinked_file_reads_deleted_and_still_opens() {
    let dir = TempDir::new();
    let path = dir.file("f", b"still here");
    let fd = open(&path, O_RDONLY, 0).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(readlink(&fd_link(fd)).unwrap(), format!("{path} (deleted)"));
    let rw = open(&fd_link(fd), O_RDWR, 0).unwrap();
    assert_eq!(fstat(rw).st_nlink, 0);
    assert_eq!(write(rw, b"S"), Ok(1));
    let mut buf = [0u8; 10];
    assert_eq!(read(fd, &mut buf), Ok(10));
    assert_eq!(&buf, b"Still here");
    close(rw).unwrap();
    close(fd).unwrap();
}

/// lstat shows the link itself: mode lr-x for a read-only descriptor, l-wx write-only,
/// lrwx read-write, no bits for O_PATH; size 64, as proc_fd's inodes.
fn proc_fd_link_lstat_mode_follows_the_fd_access_mode() {
    let dir = TempDir::new();
    let path = dir.file("f", b"x");
    for (flags, mode) in [(O_RDONLY, 0o500), (O_WRONLY, 0o300), (O_RDWR, 0o700), (O_PATH, 0)] {
        let fd = open(&path, flags, 0).unwrap();
        let st = stat_path(&fd_link(fd), false).unwrap();
        assert_eq!((st.st_mode, st.st_size), (S_IFLNK | mode, 64), "flags {flags:o}");
        close(fd).unwrap();
    }
}

/// stat follows the link to the file: its inode, mode and size.
fn proc_fd_link_stat_follows_to_the_file() {
    let (_d, fd) = temp_file(b"12345", O_RDONLY);
    let (st, f) = (stat_path(&fd_link(fd), true).unwrap(), fstat(fd));
    assert_eq!((st.st_dev, st.st_ino, st.st_mode, st.st_size), (f.st_dev, f.st_ino, f.st_mode, 5));
    let (r, w) = pipe(0).unwrap();
    let (st, f) = (stat_path(&fd_link(w), true).unwrap(), fstat(r));
    assert_eq!((st.st_ino, st.st_mode & S_IFMT), (f.st_ino, S_IFIFO));
    for fd in [fd, r, w] {
        close(fd).unwrap();
    }
}

/// A walk continues below the directory a descriptor refers to, wherever it has moved.
fn proc_fd_link_of_a_directory_fd_resolves_names_below_it() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/inner"), b"found").unwrap();
    let d = open(&dir.join("sub"), O_RDONLY | O_DIRECTORY, 0).unwrap();
    std::fs::rename(dir.join("sub"), dir.join("moved")).unwrap();
    let fd = open(&format!("{}/inner", fd_link(d)), O_RDONLY, 0).unwrap();
    let mut buf = [0u8; 5];
    assert_eq!(read(fd, &mut buf), Ok(5));
    assert_eq!(&buf, b"found");
    assert_errno!(open(&format!("{}/missing", fd_link(d)), O_RDONLY, 0), ENOENT);
    close(fd).unwrap();
    close(d).unwrap();
}

/// Opening a pipe's link opens that pipe, either end as asked (Linux's fifo_open): bytes
/// written through a reopened write end come out of the original read end, and the other
/// way round.
fn proc_fd_link_of_a_pipe_opens_that_pipe() {
    let (r, w) = pipe(0).unwrap();
    let w2 = open(&fd_link(r), O_WRONLY, 0).unwrap();
    assert_eq!(write(w2, b"ab"), Ok(2));
    let mut buf = [0u8; 2];
    assert_eq!(read(r, &mut buf), Ok(2));
    assert_eq!(&buf, b"ab");
    let r2 = open(&fd_link(w), O_RDONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(fstat(r2).st_ino, fstat(r).st_ino);
    assert_errno!(read(r2, &mut buf), EAGAIN);
    assert_eq!(write(w, b"cd"), Ok(2));
    assert_eq!(read(r2, &mut buf), Ok(2));
    assert_eq!(&buf, b"cd");
    assert_eq!(readlink(&fd_link(r2)).unwrap(), readlink(&fd_link(r)).unwrap());
    for fd in [r, w, w2, r2] {
        close(fd).unwrap();
    }
}

/// Unlike a FIFO's, a pipe's open never waits for the other end (fifo_open skips
/// wait_for_partner for pipefs): a writer without readers opens and gets EPIPE, a reader
/// without writers opens and reads end of file.
fn proc_fd_link_of_a_pipe_never_waits_for_the_other_end() {
    let (r, w) = pipe(0).unwrap();
    close(r).unwrap();
    let w2 = open(&fd_link(w), O_WRONLY, 0).unwrap();
    assert_errno!(write(w2, b"x"), EPIPE);
    close(w2).unwrap();
    close(w).unwrap();
    let (r, w) = pipe(0).unwrap();
    close(w).unwrap();
    let r2 = open(&fd_link(r), O_RDONLY, 0).unwrap();
    assert_eq!(read(r2, &mut [0u8; 1]), Ok(0));
    close(r2).unwrap();
    close(r).unwrap();
}

/// A read-write open of a pipe is a reader and a writer at once: it keeps a pipe whose
/// read end was closed writable, and reads back what it wrote; poll sees both sides.
fn proc_fd_link_of_a_pipe_opened_read_write_is_both_ends() {
    let (r, w) = pipe(0).unwrap();
    close(r).unwrap();
    let rw = open(&fd_link(w), O_RDWR, 0).unwrap();
    assert_eq!(write(w, b"x"), Ok(1));
    let mut buf = [0u8; 1];
    assert_eq!(read(rw, &mut buf), Ok(1));
    assert_eq!(&buf, b"x");
    assert_eq!(write(rw, b"y"), Ok(1));
    let mut pfd = pollfd { fd: rw, events: POLLIN | POLLOUT, revents: 0 };
    assert_eq!(sys!(SYS_poll, &mut pfd as *mut pollfd, 1, 0), Ok(1));
    assert_eq!(pfd.revents, POLLIN | POLLOUT);
    close(rw).unwrap();
    close(w).unwrap();
}

/// A pipe's inode belongs to its creator's fsuid and fsgid (mode 0600), so an unprivileged
/// creator may reopen it through /proc/self/fd.
fn pipe_belongs_to_its_creator_who_may_reopen_it() {
    run_in_child(|| {
        sys!(SYS_setgid, 1001).unwrap();
        sys!(SYS_setuid, 1000).unwrap();
        let (r, w) = pipe(0).unwrap();
        let st = fstat(r);
        assert_eq!((st.st_uid, st.st_gid, st.st_mode), (1000, 1001, S_IFIFO | 0o600));
        let w2 = open(&fd_link(r), O_WRONLY, 0).unwrap();
        assert_eq!(write(w2, b"z"), Ok(1));
        for fd in [r, w, w2] {
            close(fd).unwrap();
        }
    });
}

/// An eventfd's inode (an anonymous inode) has no open: ENXIO.
fn proc_fd_link_of_an_eventfd_is_enxio() {
    let e = sys!(SYS_eventfd2, 0, 0).unwrap() as i32;
    assert_eq!(readlink(&fd_link(e)).unwrap(), "anon_inode:[eventfd]");
    assert_errno!(open(&fd_link(e), O_RDWR, 0), ENXIO);
    assert_errno!(open(&fd_link(e), O_RDONLY, 0), ENXIO);
    close(e).unwrap();
}

/// Reading or following another process's fd link needs ptrace access to that process
/// (proc_fd_access_allowed): root without CAP_SYS_PTRACE may search the fd directory of
/// another user's process (CAP_DAC_READ_SEARCH) but gets EACCES from its links.
fn proc_fd_link_of_another_users_process_needs_ptrace_access() {
    const CAP_SYS_PTRACE: u32 = 19;
    let (r, w) = pipe(0).unwrap();
    let (ready_r, ready_w) = pipe(0).unwrap();
    let pid = fork_child(|| {
        close(w).unwrap();
        sys!(SYS_setresuid, 1000, 1000, 1000).unwrap();
        write(ready_w, b"!").unwrap();
        let _ = read(r, &mut [0u8; 1]);
        0
    });
    close(ready_w).unwrap();
    assert_eq!(read(ready_r, &mut [0u8; 1]), Ok(1));
    let link = format!("/proc/{pid}/fd/{r}");
    assert!(readlink(&link).unwrap().starts_with("pipe:["), "root reads it");
    run_in_child(|| {
        #[repr(C)]
        struct Header(u32, i32);
        let mut h = Header(0x2008_0522, 0);
        let mut d = [0u32; 6];
        sys!(SYS_capget, &mut h as *mut Header, d.as_mut_ptr()).unwrap();
        d[0] &= !(1 << CAP_SYS_PTRACE);
        sys!(SYS_capset, &mut h as *mut Header, d.as_ptr()).unwrap();
        assert!(std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok());
        assert_errno!(readlink(&link), EACCES);
        assert_errno!(open(&link, O_RDONLY, 0), EACCES);
    });
    for fd in [w, r, ready_r] {
        close(fd).unwrap();
    }
    assert_eq!(wait_child(pid), Exit::Code(0));
}

/// execve of /proc/self/fd/N runs the program N refers to, with no name left (as
/// fexecve does).
fn execve_of_a_proc_fd_link_runs_the_unlinked_program() {
    let dir = TempDir::new();
    let copy = dir.join("prog");
    std::fs::copy(exe_path().to_str().unwrap(), &copy).unwrap();
    let fd = open(&copy, O_RDONLY, 0).unwrap();
    std::fs::remove_file(&copy).unwrap();
    let link = fd_link(fd);
    let exit = child_exit(|| execve(&cstr(&link), &["prog", CHILD_MARKER], &[]).0);
    assert_eq!(exit, Exit::Code(42));
    close(fd).unwrap();
}

fn linkat(old: &str, new: &str, flags: i32) -> Result<i64, user_tests::Errno> {
    let (o, n) = (cstr(old), cstr(new));
    sys!(SYS_linkat, AT_FDCWD, o.as_ptr(), AT_FDCWD, n.as_ptr(), flags)
}

/// open(dir, O_TMPFILE) makes a file with no name (st_nlink 0); its link reads
/// "DIR/#INO (deleted)" (d_tmpfile's name) and reopens it.
fn o_tmpfile_makes_an_unnamed_file_shown_as_dir_hash_ino_deleted() {
    let dir = TempDir::new();
    let d = dir.path.to_str().unwrap();
    let fd = open(d, O_TMPFILE | O_RDWR, 0o640).unwrap();
    let st = fstat(fd);
    assert_eq!((st.st_mode, st.st_nlink, st.st_size), (S_IFREG | 0o640 & !umask_now(), 0, 0));
    assert_eq!(readlink(&fd_link(fd)).unwrap(), format!("{d}/#{} (deleted)", st.st_ino));
    assert_eq!(write(fd, b"tmp"), Ok(3));
    let again = open(&fd_link(fd), O_RDONLY, 0).unwrap();
    let mut buf = [0u8; 3];
    assert_eq!(read(again, &mut buf), Ok(3));
    assert_eq!(&buf, b"tmp");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "the directory stays empty");
    close(again).unwrap();
    close(fd).unwrap();
}

fn umask_now() -> u32 {
    let old = sys!(SYS_umask, 0o22).unwrap() as u32;
    sys!(SYS_umask, old).unwrap();
    old
}

/// An O_TMPFILE file gets a name with linkat, from its /proc/self/fd link with
/// AT_SYMLINK_FOLLOW or from the descriptor with AT_EMPTY_PATH (root has
/// CAP_DAC_READ_SEARCH).
fn o_tmpfile_file_is_linked_in_through_proc_fd_or_at_empty_path() {
    let dir = TempDir::new();
    let d = dir.path.to_str().unwrap();
    let fd = open(d, O_TMPFILE | O_WRONLY, 0o600).unwrap();
    assert_eq!(write(fd, b"named"), Ok(5));
    assert_eq!(linkat(&fd_link(fd), &dir.join("a"), AT_SYMLINK_FOLLOW), Ok(0));
    assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"named");
    assert_eq!(fstat(fd).st_nlink, 1);
    let fd2 = open(d, O_TMPFILE | O_RDWR, 0o600).unwrap();
    let (e, n) = (cstr(""), cstr(&dir.join("b")));
    assert_eq!(sys!(SYS_linkat, fd2, e.as_ptr(), AT_FDCWD, n.as_ptr(), AT_EMPTY_PATH), Ok(0));
    assert_eq!(stat_path(&dir.join("b"), true).unwrap().st_ino, fstat(fd2).st_ino);
    assert_errno!(sys!(SYS_linkat, fd2, e.as_ptr(), AT_FDCWD, n.as_ptr(), 0), ENOENT);
    close(fd2).unwrap();
    close(fd).unwrap();
}

/// linkat gives no name to a file without links unless O_TMPFILE made it linkable
/// (vfs_link, I_LINKABLE): not to an O_TMPFILE | O_EXCL file, nor to a file whose last
/// name was removed: ENOENT.
fn linkat_gives_no_name_to_an_unlinked_or_o_excl_tmpfile_file() {
    let dir = TempDir::new();
    let fd = open(dir.path.to_str().unwrap(), O_TMPFILE | O_RDWR | O_EXCL, 0o600).unwrap();
    assert_errno!(linkat(&fd_link(fd), &dir.join("a"), AT_SYMLINK_FOLLOW), ENOENT);
    close(fd).unwrap();
    let path = dir.file("f", b"x");
    let fd = open(&path, O_RDONLY, 0).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_errno!(linkat(&fd_link(fd), &dir.join("g"), AT_SYMLINK_FOLLOW), ENOENT);
    close(fd).unwrap();
}

/// O_TMPFILE needs write access (EINVAL), no O_CREAT (EINVAL), an existing directory
/// (ENOENT, ENOTDIR) and a filesystem that has it (/proc: EOPNOTSUPP).
fn o_tmpfile_needs_write_access_a_directory_and_no_o_creat() {
    let dir = TempDir::new();
    let d = dir.path.to_str().unwrap();
    assert_errno!(open(d, O_TMPFILE | O_RDONLY, 0o600), EINVAL);
    assert_errno!(open(d, O_TMPFILE | O_RDWR | O_CREAT, 0o600), EINVAL);
    assert_errno!(open(&dir.join("missing"), O_TMPFILE | O_RDWR, 0o600), ENOENT);
    assert_errno!(open(&dir.file("f", b""), O_TMPFILE | O_RDWR, 0o600), ENOTDIR);
    assert_errno!(open("/proc", O_TMPFILE | O_RDWR, 0o600), EOPNOTSUPP);
}

const MNT_DETACH: i32 = 2;

/// mount(2) with `source` "none".
fn stat_of(path: &str) -> libc::stat {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys!(SYS_stat, cstr(path).as_ptr(), &mut st as *mut libc::stat).unwrap();
    st
}

fn mounted_tmpfs_covers_the_directory_until_umount() {
    let dir = TempDir::new();
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(format!("{mnt}/under"), b"u").unwrap();
    mount_tmpfs(&mnt, "tmpfs", "").unwrap();
    let listed = |p: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    assert!(listed(&mnt).is_empty(), "the covered directory's file is hidden");
    std::fs::write(format!("{mnt}/new"), b"n").unwrap();
    assert_eq!(listed(&mnt), ["new"]);
    umount2(&mnt, 0).unwrap();
    assert_eq!(listed(&mnt), ["under"], "the covered directory is back, the mount's file gone");
}

fn mounted_tmpfs_has_a_device_of_its_own() {
    let m = TmpfsMount::new("");
    assert_ne!(stat_of(&m.mnt).st_dev, stat_of(m.dir.path.to_str().unwrap()).st_dev);
}

fn mounted_tmpfs_root_takes_the_mode_option() {
    let m = TmpfsMount::new("mode=0710");
    assert_eq!(stat_of(&m.mnt).st_mode, S_IFDIR | 0o710);
}

/// The /proc/self/mountinfo line whose mount point is `path`, split into its fields.
fn mountinfo_line(path: &str) -> Vec<String> {
    let text = user_tests::read_proc(&cstr("/proc/self/mountinfo"));
    let lines: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split(' ').map(String::from).collect::<Vec<_>>())
        .filter(|f| f.get(4).map(String::as_str) == Some(path))
        .collect();
    assert_eq!(lines.len(), 1, "one line for {path} in\n{text}");
    lines[0].clone()
}

fn mountinfo_shows_a_tmpfs_mount_with_its_parent_device_and_options() {
    let outer = TmpfsMount::new("size=1m");
    let inner_dir = format!("{}/in", outer.mnt);
    std::fs::create_dir(&inner_dir).unwrap();
    mount_tmpfs(&inner_dir, "tmpfs", "").unwrap();
    let o = mountinfo_line(&outer.mnt);
    let i = mountinfo_line(&inner_dir);
    umount2(&inner_dir, 0).unwrap();
    // ID, parent ID, MAJOR:MINOR, root, mount point, options, [tags], -, type, source, sb options.
    assert_eq!(i[1], o[0], "the inner mount's parent is the outer mount");
    let st = stat_of(&outer.mnt);
    let dev = format!("{}:{}", libc::major(st.st_dev), libc::minor(st.st_dev));
    assert_eq!((o[2].as_str(), o[3].as_str()), (dev.as_str(), "/"));
    assert_eq!(o[5], "rw,relatime");
    let dash = o.iter().position(|f| f == "-").expect("the separator");
    assert_eq!((o[dash + 1].as_str(), o[dash + 2].as_str()), ("tmpfs", "none"));
    assert!(o[dash + 3].split(',').any(|opt| opt == "size=1024k"), "super options {}", o[dash + 3]);
}

fn mounted_tmpfs_root_defaults_to_mode_1777() {
    let m = TmpfsMount::new("");
    assert_eq!(stat_of(&m.mnt).st_mode, S_IFDIR | 0o1777);
}

fn statfs_of_a_tmpfs_mounted_with_size_reports_it_as_f_blocks() {
    let m = TmpfsMount::new("size=1m");
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    sys!(SYS_statfs, cstr(&m.mnt).as_ptr(), &mut sf as *mut libc::statfs).unwrap();
    assert_eq!(sf.f_type, 0x0102_1994, "TMPFS_MAGIC");
    assert_eq!((sf.f_bsize, sf.f_blocks, sf.f_bfree), (4096, 256, 256));
}

fn statfs_of_a_tmpfs_holding_a_deep_tree_counts_no_blocks_for_directories() {
    let m = TmpfsMount::new("size=1m");
    let d = cstr("d");
    let mut fd = open(&m.mnt, O_RDONLY | O_DIRECTORY, 0).unwrap();
    for _ in 0..2000 {
        sys!(SYS_mkdirat, fd, d.as_ptr(), 0o755).unwrap();
        let next = sys!(SYS_openat, fd, d.as_ptr(), O_RDONLY | O_DIRECTORY).unwrap() as i32;
        close(fd).unwrap();
        fd = next;
    }
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    sys!(SYS_fstatfs, fd, &mut sf as *mut libc::statfs).unwrap();
    close(fd).unwrap();
    assert_eq!((sf.f_blocks, sf.f_bfree), (256, 256));
}

fn dotdot_from_a_mount_root_leads_to_the_mountpoint_parent() {
    let m = TmpfsMount::new("");
    let up = stat_of(&format!("{}/..", m.mnt));
    let dir = stat_of(m.dir.path.to_str().unwrap());
    assert_eq!((up.st_dev, up.st_ino), (dir.st_dev, dir.st_ino));
}

fn proc_self_mounts_lists_a_tmpfs_mount() {
    let m = TmpfsMount::new("mode=0755");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts.lines().find(|l| l.split(' ').nth(1) == Some(&m.mnt)).unwrap_or_else(|| panic!("{mounts}"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!((fields[0], fields[2], &fields[4..]), ("none", "tmpfs", &["0", "0"][..]), "{line}");
    assert!(fields[3].split(',').any(|o| o == "mode=755"), "{line}");
}

fn mount_with_an_unknown_filesystem_type_is_enodev() {
    let dir = TempDir::new();
    assert_errno!(mount_tmpfs(dir.path.to_str().unwrap(), "no-such-fs", ""), ENODEV);
}

fn mount_with_an_unknown_tmpfs_option_is_einval() {
    let dir = TempDir::new();
    assert_errno!(mount_tmpfs(dir.path.to_str().unwrap(), "tmpfs", "no_such_option=1"), EINVAL);
}

fn mount_without_a_filesystem_type_is_einval() {
    let dir = TempDir::new();
    let (src, t) = (cstr("none"), cstr(dir.path.to_str().unwrap()));
    assert_errno!(sys!(SYS_mount, src.as_ptr(), t.as_ptr(), 0, 0, 0), EINVAL);
}

fn mount_on_a_missing_directory_is_enoent() {
    let dir = TempDir::new();
    assert_errno!(mount_tmpfs(&dir.join("missing"), "tmpfs", ""), ENOENT);
}

fn mount_on_a_regular_file_is_enotdir() {
    let dir = TempDir::new();
    assert_errno!(mount_tmpfs(&dir.file("f", b""), "tmpfs", ""), ENOTDIR);
}

fn mount_with_a_bad_target_pointer_is_efault() {
    let (src, ty) = (cstr("none"), cstr("tmpfs"));
    assert_errno!(sys!(SYS_mount, src.as_ptr(), BAD_PTR, ty.as_ptr(), 0, 0), EFAULT);
}

fn mount_by_non_root_is_eperm() {
    let dir = TempDir::new();
    let target = dir.path.to_str().unwrap().to_string();
    run_in_child(|| {
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(mount_tmpfs(&target, "tmpfs", ""), EPERM);
    });
}

fn umount_of_a_directory_that_is_not_a_mount_point_is_einval() {
    let dir = TempDir::new();
    assert_errno!(umount2(dir.path.to_str().unwrap(), 0), EINVAL);
}

fn umount2_with_unknown_flags_is_einval() {
    let m = TmpfsMount::new("");
    assert_errno!(umount2(&m.mnt, 0x10), EINVAL);
    assert_errno!(umount2(&m.mnt, MNT_DETACH | 0x100), EINVAL);
}

fn umount_by_non_root_is_eperm() {
    let m = TmpfsMount::new("");
    run_in_child(|| {
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(umount2(&m.mnt, 0), EPERM);
    });
}

/// A child sits in the mount (its working directory) until a byte comes through the
/// returned pipe.
fn child_inside(mnt: &str) -> (libc::pid_t, i32) {
    let (ready_r, ready_w) = pipe(0).unwrap();
    let (go_r, go_w) = pipe(0).unwrap();
    let pid = fork_child(|| {
        close(ready_r).unwrap();
        close(go_w).unwrap();
        std::env::set_current_dir(mnt).unwrap();
        write(ready_w, b"r").unwrap();
        let mut b = [0u8; 1];
        let _ = read(go_r, &mut b);
        0
    });
    close(ready_w).unwrap();
    close(go_r).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(read(ready_r, &mut b).unwrap(), 1);
    close(ready_r).unwrap();
    (pid, go_w)
}

fn umount_of_a_mount_holding_a_working_directory_is_ebusy() {
    let m = TmpfsMount::new("");
    let (pid, go) = child_inside(&m.mnt);
    let busy = umount2(&m.mnt, 0);
    write(go, b"g").unwrap();
    close(go).unwrap();
    assert_eq!(wait_child(pid), Exit::Code(0));
    assert_errno!(busy, EBUSY);
    umount2(&m.mnt, 0).unwrap();
}

fn umount2_detach_takes_a_busy_mount_off() {
    let m = TmpfsMount::new("");
    std::fs::write(format!("{}/f", m.mnt), b"x").unwrap();
    let fd = open(&format!("{}/f", m.mnt), O_RDONLY, 0).unwrap();
    umount2(&m.mnt, MNT_DETACH).unwrap();
    assert_errno!(sys!(SYS_access, cstr(&format!("{}/f", m.mnt)).as_ptr(), F_OK), ENOENT);
    let mut b = [0u8; 1];
    assert_eq!(read(fd, &mut b).unwrap(), 1, "the open file stays usable");
    close(fd).unwrap();
}

fn umount_with_a_directory_outside_the_mount_open_succeeds() {
    let m = TmpfsMount::new("");
    let fd = open(m.dir.path.to_str().unwrap(), O_RDONLY | O_DIRECTORY, 0).unwrap();
    let r = umount2(&m.mnt, 0);
    close(fd).unwrap();
    r.unwrap();
}

fn rmdir_of_a_mountpoint_is_ebusy() {
    let m = TmpfsMount::new("");
    assert_errno!(sys!(SYS_rmdir, cstr(&m.mnt).as_ptr()), EBUSY);
}
