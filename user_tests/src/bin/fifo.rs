//! mknod, mknodat and FIFOs as Linux's fs/namei.c (do_mknodat, may_mknod, vfs_mknod) and
//! fs/pipe.c (fifo_open, pipe_read, pipe_write, pipe_poll, pipe_release) implement them:
//! the node types mknod makes and the errnos of the names and modes it refuses; device
//! nodes (which only CAP_MKNOD may make) opening the driver their numbers name, or ENXIO
//! when none has them; and the rules of a FIFO's open (a reader waits for a writer and a
//! writer for a reader unless O_NONBLOCK or O_RDWR; ENXIO for a non-blocking writer alone;
//! EINTR or a restart under SA_RESTART when a signal interrupts the wait), the one pipe
//! every opener of a node shares until the last closes, end of file, EPIPE and SIGPIPE,
//! and poll's POLLHUP, which a reader sees only once a writer has come and gone.
//!
//! Every value asserted is Linux's, the same on 6.1 and 6.18. A blocking open runs in a
//! child with an alarm set, so no test can hang; the parent shows it blocked by finding it
//! still running 100 ms after it said it was about to open. Nodes are made in a scratch
//! directory removed at the end of each test.

use libc::*;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use user_tests::{
    assert_errno, child_exit, close, cstr, fork_child, handler, open, pipe, read, read_full, run_in_child, set_handler,
    sigbit, sigprocmask, sleep_ms, sys, tests, wait_child, write, Errno, Exit, TempDir, BAD_PTR,
};

fn main() {
    user_tests::run_tests(
        "fifo",
        tests![
            // mknod and mkfifo
            mkfifo_makes_a_fifo_node_with_the_umask_applied,
            a_new_fifo_is_empty_with_one_link_and_owned_by_its_creator,
            mknod_of_a_fifo_ignores_the_device_number,
            mknod_with_s_ifreg_or_no_file_type_makes_an_empty_regular_file,
            mknod_with_s_ifsock_makes_a_socket_node_that_opens_with_enxio,
            mknod_with_s_ifdir_is_eperm_before_the_path_is_looked_up,
            mknod_with_an_invalid_file_type_is_einval,
            mknod_over_an_existing_name_is_eexist,
            mknod_over_a_dangling_symlink_is_eexist_and_creates_nothing,
            mknod_under_a_missing_directory_or_of_an_empty_path_is_enoent,
            a_trailing_slash_on_a_new_fifo_name_is_enoent,
            mknod_under_a_regular_file_is_enotdir,
            a_name_or_path_too_long_is_enametoolong,
            mknod_and_mknodat_with_a_bad_path_pointer_are_efault,
            mknodat_creates_relative_to_a_directory_descriptor,
            mknodat_with_at_fdcwd_creates_relative_to_the_working_directory,
            mknodat_with_a_bad_dirfd_is_ebadf,
            mknodat_with_a_file_as_dirfd_is_enotdir,
            mknodat_with_an_absolute_path_ignores_the_dirfd,
            // Device nodes
            mknod_of_a_device_node_records_its_device_number,
            a_mknod_made_null_device_discards_writes_and_reads_eof,
            a_mknod_made_zero_device_reads_zeros,
            fstat_of_an_opened_device_node_matches_stat_of_its_path,
            a_char_device_node_without_a_driver_opens_with_enxio,
            a_block_device_node_without_a_driver_opens_with_enxio,
            // Without privilege
            mknod_of_a_device_without_cap_mknod_is_eperm,
            an_unprivileged_user_may_make_a_fifo_it_owns,
            mknod_in_a_directory_without_write_permission_is_eacces,
            opening_a_fifo_without_read_permission_is_eacces,
            // Names
            unlinking_a_fifo_removes_its_name,
            renaming_a_fifo_keeps_its_inode_and_its_open_pipe,
            linking_a_fifo_raises_its_link_count_and_both_names_reach_one_pipe,
            an_unlinked_fifo_keeps_working_through_its_open_descriptors,
            // Opening
            a_nonblocking_read_only_open_without_writers_succeeds_and_reads_eof,
            a_blocking_read_with_no_writer_returns_eof_at_once,
            opening_a_fifo_write_only_nonblocking_without_reader_is_enxio,
            a_nonblocking_write_only_open_with_a_reader_succeeds,
            an_o_rdwr_open_never_blocks_and_reads_back_its_own_writes,
            an_o_rdwr_opener_is_the_partner_of_blocking_opens,
            a_blocking_read_only_open_waits_for_a_writer,
            a_blocked_reader_is_released_by_a_writer_that_opens_and_closes_at_once,
            a_blocking_write_only_open_waits_for_a_reader,
            a_blocking_open_interrupted_by_a_signal_is_eintr_and_leaves_no_reader,
            a_blocking_open_interrupted_under_sa_restart_restarts_and_completes,
            access_mode_3_on_a_fifo_is_einval,
            an_o_path_open_of_a_fifo_neither_blocks_nor_counts_as_a_reader,
            o_trunc_on_a_fifo_is_ignored_and_keeps_its_data,
            o_creat_of_an_existing_fifo_opens_the_fifo,
            o_creat_o_excl_of_an_existing_fifo_is_eexist,
            o_directory_on_a_fifo_is_enotdir,
            opening_proc_self_fd_of_a_fifo_reaches_the_same_pipe,
            // Data
            a_megabyte_written_to_a_fifo_reaches_a_reader_in_another_process_in_order,
            a_nonblocking_reader_of_an_empty_fifo_with_a_writer_gets_eagain,
            after_the_last_writer_closes_the_reader_gets_the_rest_then_eof,
            eof_comes_only_once_every_writer_has_closed,
            writing_when_every_reader_closed_is_epipe_and_raises_sigpipe,
            epipe_comes_only_once_every_reader_has_closed,
            sigpipe_kills_a_writer_to_a_fifo_without_readers,
            data_left_in_a_fifo_is_discarded_when_the_last_opener_closes,
            data_stays_in_a_fifo_while_any_opener_remains,
            two_fifo_nodes_do_not_share_data,
            two_read_write_opens_of_one_fifo_share_one_pipe,
            // The open file
            fstat_of_an_open_fifo_matches_stat_of_its_path,
            lseek_pread_and_pwrite_on_a_fifo_are_espipe,
            fionread_on_a_fifo_counts_the_queued_bytes,
            a_fifo_has_a_65536_byte_pipe,
            a_nonblocking_writer_fills_a_fifo_to_65536_bytes_then_gets_eagain,
            a_fifos_pipe_size_resets_when_its_last_opener_closes,
            // Readiness
            a_reader_that_has_seen_no_writer_polls_without_pollhup,
            a_reader_polls_pollhup_once_a_writer_came_and_went,
            a_writer_polls_pollout_and_a_reader_pollin_once_data_is_written,
            a_writer_polls_pollerr_once_every_reader_closed,
            epoll_reports_a_fifo_reader_readable_after_a_write,
            poll_on_a_fifo_reader_is_woken_by_a_write_from_another_process,
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A child's alarm (s): a child blocked for longer is killed by SIGALRM.
const CHILD_ALARM_S: u32 = 10;
/// How long a child must stay in a call before the parent takes it as blocked there (ms).
const BLOCKED_MS: u64 = 100;
/// How long the parent polls for another process before the test fails (ms).
const WAIT_MS: i32 = 5000;
/// The user and group the unprivileged tests run as (nobody, nogroup).
const NOBODY: u32 = 65534;
/// A major number no Linux driver has, char or block: 60 is one of those
/// Documentation/admin-guide/devices.txt keeps for local and experimental use, outside
/// the range (234-254) dynamically allocated majors come from.
const NO_DRIVER_MAJOR: u32 = 60;

fn mknod(path: &str, mode: u32, dev: u64) -> Result<i64, Errno> {
    let p = cstr(path);
    sys!(SYS_mknod, p.as_ptr(), mode, dev)
}

fn mknodat(dirfd: i32, path: &str, mode: u32, dev: u64) -> Result<i64, Errno> {
    let p = cstr(path);
    sys!(SYS_mknodat, dirfd, p.as_ptr(), mode, dev)
}

/// mkfifo as libc makes it: mknodat(AT_FDCWD, path, S_IFIFO | mode, 0).
fn mkfifo(path: &str, mode: u32) -> Result<i64, Errno> {
    mknodat(AT_FDCWD, path, S_IFIFO | mode, 0)
}

/// A new FIFO `name` (mode 0600) in `dir`: its path.
fn fifo(dir: &TempDir, name: &str) -> String {
    let p = dir.join(name);
    mkfifo(&p, 0o600).unwrap_or_else(|e| panic!("mkfifo {p}: {e}"));
    p
}

fn stat_at(path: &str, flags: i32) -> Result<stat, Errno> {
    let p = cstr(path);
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_newfstatat, AT_FDCWD, p.as_ptr(), &mut st as *mut stat, flags)?;
    Ok(st)
}

fn stat_path(path: &str) -> Result<stat, Errno> {
    stat_at(path, 0)
}

fn lstat_path(path: &str) -> Result<stat, Errno> {
    stat_at(path, AT_SYMLINK_NOFOLLOW)
}

fn fstat(fd: i32) -> stat {
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_fstat, fd, &mut st as *mut stat).expect("fstat");
    st
}

fn dev(major: u32, minor: u32) -> u64 {
    makedev(major, minor)
}

fn close_all(fds: &[i32]) {
    for &fd in fds {
        close(fd).unwrap_or_else(|e| panic!("close({fd}): {e}"));
    }
}

/// Reads at most `n` bytes: what one read returned.
fn read_bytes(fd: i32, n: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; n];
    let got = read(fd, &mut buf)?;
    buf.truncate(got);
    Ok(buf)
}

/// poll on one descriptor for `events`, `ms` at most: its revents (0 on timeout).
fn poll1(fd: i32, events: i16, ms: i32) -> i16 {
    let mut p = pollfd { fd, events, revents: 0 };
    let n = sys!(SYS_poll, &mut p as *mut pollfd, 1, ms).expect("poll");
    if n == 0 {
        0
    } else {
        p.revents
    }
}

fn fcntl(fd: i32, cmd: i32, arg: i64) -> Result<i64, Errno> {
    sys!(SYS_fcntl, fd, cmd, arg)
}

/// Drops to uid and gid nobody: every capability goes.
fn become_nobody() {
    sys!(SYS_setgroups, 0, 0).unwrap();
    sys!(SYS_setresgid, NOBODY, NOBODY, NOBODY).unwrap();
    sys!(SYS_setresuid, NOBODY, NOBODY, NOBODY).unwrap();
}

fn chmod(path: &str, mode: u32) {
    let p = cstr(path);
    sys!(SYS_chmod, p.as_ptr(), mode).unwrap_or_else(|e| panic!("chmod {path}: {e}"));
}

/// Runs `f` in a child with an alarm set: for a test whose opens would block forever if
/// the kernel got them wrong.
fn guarded(f: impl FnOnce()) {
    run_in_child(|| {
        unsafe { alarm(CHILD_ALARM_S) };
        f()
    });
}

/// What a child started by [`spawn`] calls when it is about to make the call under test.
struct Ready(i32);

impl Ready {
    fn go(self) {
        assert_eq!(write(self.0, b"r"), Ok(1));
        close(self.0).unwrap();
    }
}

/// A child started by [`spawn`]; dropped without [`Child::finish`] (a failed test), it is
/// killed and reaped all the same.
struct Child {
    pid: i32,
    reaped: bool,
    /// The read end of the pipe the child writes its panic message to.
    messages: i32,
}

impl Child {
    /// Waits for the child and panics, with its panic message if it has one, unless it
    /// exited with 0.
    #[track_caller]
    fn finish(mut self) {
        self.reaped = true;
        let exit = wait_child(self.pid);
        let mut buf = [0u8; 4096];
        let n = read(self.messages, &mut buf).unwrap_or(0);
        if n > 0 {
            panic!("in child: {}", String::from_utf8_lossy(&buf[..n]));
        }
        assert_eq!(exit, Exit::Code(0), "the child did not exit normally");
    }

    /// Panics unless the child is still running [`BLOCKED_MS`] from now: it is blocked
    /// in the call it said it was about to make.
    #[track_caller]
    fn assert_blocked(&mut self, what: &str) {
        sleep_ms(BLOCKED_MS);
        let mut status = 0;
        match sys!(SYS_wait4, self.pid, &mut status as *mut i32, WNOHANG, 0) {
            Ok(0) => {}
            Ok(_) => {
                self.reaped = true;
                panic!("{what} did not block: the child ended with {:?}", Exit::from_status(status));
            }
            Err(e) => panic!("wait4: {e}"),
        }
    }

    fn signal(&self, sig: i32) {
        sys!(SYS_kill, self.pid, sig).unwrap();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = sys!(SYS_kill, self.pid, SIGKILL);
            let _ = wait_child(self.pid);
        }
        let _ = close(self.messages);
    }
}

/// Forks a child with an alarm set that runs `f` and exits with its result (101 if it
/// panics, after sending its message to the parent); returns once the child has called
/// [`Ready::go`].
fn spawn(f: impl FnOnce(Ready) -> i32) -> Child {
    let (r, w) = pipe(O_CLOEXEC).unwrap();
    let (mr, mw) = pipe(O_CLOEXEC | O_NONBLOCK).unwrap();
    let pid = fork_child(move || {
        let _ = close(r);
        let _ = close(mr);
        unsafe { alarm(CHILD_ALARM_S) };
        match panic::catch_unwind(AssertUnwindSafe(|| f(Ready(w)))) {
            Ok(code) => code,
            Err(p) => {
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                let m = m.lines().map(str::trim).collect::<Vec<_>>().join(" | ");
                let _ = write(mw, m.as_bytes());
                101
            }
        }
    });
    close(w).unwrap();
    close(mw).unwrap();
    let child = Child { pid, reaped: false, messages: mr };
    let mut b = [0u8; 1];
    let n = read(r, &mut b);
    close(r).unwrap();
    assert_eq!(n, Ok(1), "the child ended before it was ready");
    child
}

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

// ---------------------------------------------------------------------------------------
// mknod and mkfifo
// ---------------------------------------------------------------------------------------

/// The new node's permissions are the mode asked for less the umask.
fn mkfifo_makes_a_fifo_node_with_the_umask_applied() {
    let dir = TempDir::new();
    let p = dir.join("f");
    run_in_child(|| {
        sys!(SYS_umask, 0o027).unwrap();
        mkfifo(&p, 0o666).unwrap();
    });
    assert_eq!(stat_path(&p).unwrap().st_mode, S_IFIFO | 0o640);
}

fn a_new_fifo_is_empty_with_one_link_and_owned_by_its_creator() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let (st, l) = (stat_path(&p).unwrap(), lstat_path(&p).unwrap());
    assert_eq!(st.st_mode, S_IFIFO | 0o600);
    assert_eq!(l.st_mode, S_IFIFO | 0o600);
    assert_eq!((st.st_size, st.st_nlink, st.st_rdev), (0, 1, 0));
    assert_eq!((st.st_uid, st.st_gid), unsafe { (geteuid(), getegid()) });
}

/// do_mknodat passes 0 as the device of a FIFO or socket.
fn mknod_of_a_fifo_ignores_the_device_number() {
    let dir = TempDir::new();
    let p = dir.join("f");
    mknod(&p, S_IFIFO | 0o600, dev(1, 3)).unwrap();
    let st = stat_path(&p).unwrap();
    assert_eq!((st.st_mode, st.st_rdev), (S_IFIFO | 0o600, 0));
}

/// A file type of 0 means S_IFREG (may_mknod), and mknod of a regular file is a create.
fn mknod_with_s_ifreg_or_no_file_type_makes_an_empty_regular_file() {
    let dir = TempDir::new();
    for (name, mode) in [("reg", S_IFREG | 0o600), ("zero", 0o600)] {
        let p = dir.join(name);
        mknod(&p, mode, 0).unwrap();
        let st = stat_path(&p).unwrap();
        assert_eq!((st.st_mode, st.st_size, st.st_nlink), (S_IFREG | 0o600, 0, 1), "{name}");
        let fd = open(&p, O_RDWR, 0).unwrap();
        assert_eq!(read(fd, &mut [0u8; 4]), Ok(0), "{name}");
        close(fd).unwrap();
    }
}

/// A socket inode has no open (no_open): ENXIO.
fn mknod_with_s_ifsock_makes_a_socket_node_that_opens_with_enxio() {
    let dir = TempDir::new();
    let p = dir.join("s");
    mknod(&p, S_IFSOCK | 0o600, 0).unwrap();
    assert_eq!(stat_path(&p).unwrap().st_mode, S_IFSOCK | 0o600);
    assert_errno!(open(&p, O_RDONLY, 0), ENXIO);
    assert_errno!(open(&p, O_RDWR | O_NONBLOCK, 0), ENXIO);
}

/// may_mknod refuses S_IFDIR before the name is looked up: EPERM for a name whose parent
/// is missing too.
fn mknod_with_s_ifdir_is_eperm_before_the_path_is_looked_up() {
    let dir = TempDir::new();
    assert_errno!(mknod(&dir.join("d"), S_IFDIR | 0o700, 0), EPERM);
    assert_errno!(mknod(&dir.join("missing/d"), S_IFDIR | 0o700, 0), EPERM);
    assert_errno!(lstat_path(&dir.join("d")), ENOENT);
}

fn mknod_with_an_invalid_file_type_is_einval() {
    let dir = TempDir::new();
    let p = dir.join("x");
    for ty in [0o170000, 0o110000, 0o050000, S_IFLNK] {
        assert_errno!(mknod(&p, ty | 0o600, 0), EINVAL);
    }
    // Checked before the lookup, as for S_IFDIR.
    assert_errno!(mknod(&dir.join("missing/x"), 0o170000 | 0o600, 0), EINVAL);
    assert_errno!(lstat_path(&p), ENOENT);
}

fn mknod_over_an_existing_name_is_eexist() {
    let dir = TempDir::new();
    let file = dir.file("file", b"keep");
    let f = fifo(&dir, "fifo");
    std::fs::create_dir(dir.join("dir")).unwrap();
    for p in [&file, &f, &dir.join("dir")] {
        assert_errno!(mkfifo(p, 0o600), EEXIST);
        assert_errno!(mknod(p, S_IFREG | 0o600, 0), EEXIST);
        assert_errno!(mknod(p, S_IFCHR | 0o600, dev(1, 3)), EEXIST);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
}

/// The last component is not followed: a symlink there is an existing name.
fn mknod_over_a_dangling_symlink_is_eexist_and_creates_nothing() {
    let dir = TempDir::new();
    let link = dir.join("link");
    std::os::unix::fs::symlink(dir.join("target"), &link).unwrap();
    assert_errno!(mkfifo(&link, 0o600), EEXIST);
    assert_errno!(mknod(&link, S_IFREG | 0o600, 0), EEXIST);
    assert_errno!(lstat_path(&dir.join("target")), ENOENT);
    assert_eq!(lstat_path(&link).unwrap().st_mode & S_IFMT, S_IFLNK);
}

fn mknod_under_a_missing_directory_or_of_an_empty_path_is_enoent() {
    let dir = TempDir::new();
    assert_errno!(mkfifo(&dir.join("missing/f"), 0o600), ENOENT);
    assert_errno!(mknod(&dir.join("missing/f"), S_IFREG | 0o600, 0), ENOENT);
    assert_errno!(mkfifo("", 0o600), ENOENT);
}

/// A name with a trailing slash asks for a directory: a non-directory create of a missing
/// one is ENOENT (filename_create).
fn a_trailing_slash_on_a_new_fifo_name_is_enoent() {
    let dir = TempDir::new();
    assert_errno!(mkfifo(&format!("{}/", dir.join("f")), 0o600), ENOENT);
    assert_errno!(lstat_path(&dir.join("f")), ENOENT);
}

fn mknod_under_a_regular_file_is_enotdir() {
    let dir = TempDir::new();
    let file = dir.file("file", b"");
    assert_errno!(mkfifo(&format!("{file}/f"), 0o600), ENOTDIR);
}

fn a_name_or_path_too_long_is_enametoolong() {
    let dir = TempDir::new();
    assert_errno!(mkfifo(&dir.join(&"n".repeat(256)), 0o600), ENAMETOOLONG);
    let long = format!("{}/{}", dir.path.display(), "d/".repeat(2100));
    assert_errno!(mkfifo(&long, 0o600), ENAMETOOLONG);
    // 255 bytes is a name.
    mkfifo(&dir.join(&"n".repeat(255)), 0o600).unwrap();
}

fn mknod_and_mknodat_with_a_bad_path_pointer_are_efault() {
    assert_errno!(sys!(SYS_mknod, BAD_PTR, S_IFIFO | 0o600, 0), EFAULT);
    assert_errno!(sys!(SYS_mknodat, AT_FDCWD, BAD_PTR, S_IFIFO | 0o600, 0), EFAULT);
}

fn mknodat_creates_relative_to_a_directory_descriptor() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let d = open(&dir.join("sub"), O_RDONLY | O_DIRECTORY, 0).unwrap();
    mknodat(d, "f", S_IFIFO | 0o600, 0).unwrap();
    assert_eq!(stat_path(&dir.join("sub/f")).unwrap().st_mode, S_IFIFO | 0o600);
    assert_errno!(mknodat(d, "f", S_IFIFO | 0o600, 0), EEXIST);
    close(d).unwrap();
}

fn mknodat_with_at_fdcwd_creates_relative_to_the_working_directory() {
    let dir = TempDir::new();
    let d = cstr(dir.path.to_str().unwrap());
    run_in_child(|| {
        sys!(SYS_chdir, d.as_ptr()).unwrap();
        mknodat(AT_FDCWD, "f", S_IFIFO | 0o600, 0).unwrap();
        mknod("g", S_IFIFO | 0o600, 0).unwrap();
    });
    assert_eq!(stat_path(&dir.join("f")).unwrap().st_mode, S_IFIFO | 0o600);
    assert_eq!(stat_path(&dir.join("g")).unwrap().st_mode, S_IFIFO | 0o600);
}

fn mknodat_with_a_bad_dirfd_is_ebadf() {
    assert_errno!(mknodat(-1, "f", S_IFIFO | 0o600, 0), EBADF);
    assert_errno!(mknodat(9999, "f", S_IFIFO | 0o600, 0), EBADF);
}

fn mknodat_with_a_file_as_dirfd_is_enotdir() {
    let dir = TempDir::new();
    let fd = open(&dir.file("file", b""), O_RDONLY, 0).unwrap();
    assert_errno!(mknodat(fd, "f", S_IFIFO | 0o600, 0), ENOTDIR);
    close(fd).unwrap();
}

/// An absolute path starts at the root whatever the dirfd is, even a bad one.
fn mknodat_with_an_absolute_path_ignores_the_dirfd() {
    let dir = TempDir::new();
    let fd = open(&dir.file("file", b""), O_RDONLY, 0).unwrap();
    mknodat(fd, &dir.join("a"), S_IFIFO | 0o600, 0).unwrap();
    mknodat(-1, &dir.join("b"), S_IFIFO | 0o600, 0).unwrap();
    for n in ["a", "b"] {
        assert_eq!(stat_path(&dir.join(n)).unwrap().st_mode, S_IFIFO | 0o600, "{n}");
    }
    close(fd).unwrap();
}

// ---------------------------------------------------------------------------------------
// Device nodes
// ---------------------------------------------------------------------------------------

fn mknod_of_a_device_node_records_its_device_number() {
    let dir = TempDir::new();
    let (c, b) = (dir.join("c"), dir.join("b"));
    mknod(&c, S_IFCHR | 0o600, dev(1, 3)).unwrap();
    mknod(&b, S_IFBLK | 0o600, dev(NO_DRIVER_MAJOR, 7)).unwrap();
    let st = stat_path(&c).unwrap();
    assert_eq!((st.st_mode, st.st_rdev, st.st_size), (S_IFCHR | 0o600, dev(1, 3), 0));
    let st = stat_path(&b).unwrap();
    assert_eq!((st.st_mode, st.st_rdev), (S_IFBLK | 0o600, dev(NO_DRIVER_MAJOR, 7)));
    assert_eq!((major(st.st_rdev), minor(st.st_rdev)), (NO_DRIVER_MAJOR, 7));
}

/// Char 1:3 is the mem driver's null, wherever its node is.
fn a_mknod_made_null_device_discards_writes_and_reads_eof() {
    let dir = TempDir::new();
    let p = dir.join("null");
    mknod(&p, S_IFCHR | 0o600, dev(1, 3)).unwrap();
    let fd = open(&p, O_RDWR, 0).unwrap();
    assert_eq!(write(fd, b"discarded"), Ok(9));
    assert_eq!(read(fd, &mut [0u8; 16]), Ok(0));
    close(fd).unwrap();
}

/// Char 1:5 is zero.
fn a_mknod_made_zero_device_reads_zeros() {
    let dir = TempDir::new();
    let p = dir.join("zero");
    mknod(&p, S_IFCHR | 0o600, dev(1, 5)).unwrap();
    let fd = open(&p, O_RDONLY, 0).unwrap();
    let mut buf = [0xffu8; 64];
    assert_eq!(read(fd, &mut buf), Ok(64));
    assert_eq!(buf, [0u8; 64]);
    close(fd).unwrap();
}

/// The open file is the node's inode (the filesystem's), not the driver's.
fn fstat_of_an_opened_device_node_matches_stat_of_its_path() {
    let dir = TempDir::new();
    let p = dir.join("null");
    mknod(&p, S_IFCHR | 0o640, dev(1, 3)).unwrap();
    let fd = open(&p, O_WRONLY, 0).unwrap();
    let (f, s) = (fstat(fd), stat_path(&p).unwrap());
    assert_eq!((f.st_dev, f.st_ino, f.st_mode, f.st_rdev), (s.st_dev, s.st_ino, S_IFCHR | 0o640, dev(1, 3)));
    close(fd).unwrap();
}

/// chrdev_open finds no driver for the number: ENXIO.
fn a_char_device_node_without_a_driver_opens_with_enxio() {
    let dir = TempDir::new();
    let p = dir.join("c");
    mknod(&p, S_IFCHR | 0o600, dev(NO_DRIVER_MAJOR, 0)).unwrap();
    assert_errno!(open(&p, O_RDWR, 0), ENXIO);
    assert_errno!(open(&p, O_RDONLY | O_NONBLOCK, 0), ENXIO);
}

/// blkdev_open finds no disk for the number: ENXIO.
fn a_block_device_node_without_a_driver_opens_with_enxio() {
    let dir = TempDir::new();
    let p = dir.join("b");
    mknod(&p, S_IFBLK | 0o600, dev(NO_DRIVER_MAJOR, 0)).unwrap();
    assert_errno!(open(&p, O_RDONLY, 0), ENXIO);
}

// ---------------------------------------------------------------------------------------
// Without privilege
// ---------------------------------------------------------------------------------------

/// Device nodes need CAP_MKNOD, even in a directory the caller may write (char 0:0, a
/// whiteout, is the one exception, left out here).
fn mknod_of_a_device_without_cap_mknod_is_eperm() {
    let dir = TempDir::new();
    chmod(dir.path.to_str().unwrap(), 0o777);
    let p = dir.join("d");
    run_in_child(|| {
        become_nobody();
        assert_errno!(mknod(&p, S_IFCHR | 0o600, dev(1, 3)), EPERM);
        assert_errno!(mknod(&p, S_IFBLK | 0o600, dev(NO_DRIVER_MAJOR, 0)), EPERM);
        assert_errno!(mknod(&p, S_IFBLK | 0o600, dev(0, 0)), EPERM);
    });
    assert_errno!(lstat_path(&p), ENOENT);
}

fn an_unprivileged_user_may_make_a_fifo_it_owns() {
    let dir = TempDir::new();
    chmod(dir.path.to_str().unwrap(), 0o777);
    let p = dir.join("f");
    run_in_child(|| {
        become_nobody();
        mkfifo(&p, 0o600).unwrap();
        let fd = open(&p, O_RDWR, 0).unwrap();
        close(fd).unwrap();
    });
    let st = stat_path(&p).unwrap();
    assert_eq!((st.st_mode, st.st_uid, st.st_gid), (S_IFIFO | 0o600, NOBODY, NOBODY));
}

/// may_create comes before the CAP_MKNOD check: EACCES for a device node too.
fn mknod_in_a_directory_without_write_permission_is_eacces() {
    let dir = TempDir::new();
    chmod(dir.path.to_str().unwrap(), 0o755);
    let p = dir.join("f");
    run_in_child(|| {
        become_nobody();
        assert_errno!(mkfifo(&p, 0o600), EACCES);
        assert_errno!(mknod(&p, S_IFREG | 0o600, 0), EACCES);
        assert_errno!(mknod(&p, S_IFCHR | 0o600, dev(1, 3)), EACCES);
    });
    assert_errno!(lstat_path(&p), ENOENT);
}

/// The permission check comes before fifo_open: a read-only open of a write-only FIFO is
/// EACCES, a write-only one gets as far as fifo_open's ENXIO.
fn opening_a_fifo_without_read_permission_is_eacces() {
    let dir = TempDir::new();
    chmod(dir.path.to_str().unwrap(), 0o777);
    let p = dir.join("f");
    run_in_child(|| {
        become_nobody();
        mkfifo(&p, 0o200).unwrap();
        assert_errno!(open(&p, O_RDONLY | O_NONBLOCK, 0), EACCES);
        assert_errno!(open(&p, O_RDWR | O_NONBLOCK, 0), EACCES);
        assert_errno!(open(&p, O_WRONLY | O_NONBLOCK, 0), ENXIO);
    });
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

fn unlinking_a_fifo_removes_its_name() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let c = cstr(&p);
    sys!(SYS_unlink, c.as_ptr()).unwrap();
    assert_errno!(lstat_path(&p), ENOENT);
    assert_errno!(open(&p, O_RDWR, 0), ENOENT);
    mkfifo(&p, 0o600).unwrap();
}

fn renaming_a_fifo_keeps_its_inode_and_its_open_pipe() {
    let dir = TempDir::new();
    let (old, new) = (fifo(&dir, "old"), dir.join("new"));
    let ino = stat_path(&old).unwrap().st_ino;
    let a = open(&old, O_RDWR, 0).unwrap();
    assert_eq!(write(a, b"abc"), Ok(3));
    let (o, n) = (cstr(&old), cstr(&new));
    sys!(SYS_rename, o.as_ptr(), n.as_ptr()).unwrap();
    assert_errno!(lstat_path(&old), ENOENT);
    let st = stat_path(&new).unwrap();
    assert_eq!((st.st_ino, st.st_mode), (ino, S_IFIFO | 0o600));
    let b = open(&new, O_RDWR | O_NONBLOCK, 0).unwrap();
    assert_eq!(read_bytes(b, 16).unwrap(), b"abc");
    close_all(&[a, b]);
}

fn linking_a_fifo_raises_its_link_count_and_both_names_reach_one_pipe() {
    let dir = TempDir::new();
    let (p, q) = (fifo(&dir, "p"), dir.join("q"));
    let (cp, cq) = (cstr(&p), cstr(&q));
    sys!(SYS_link, cp.as_ptr(), cq.as_ptr()).unwrap();
    let (sp, sq) = (stat_path(&p).unwrap(), stat_path(&q).unwrap());
    assert_eq!((sp.st_nlink, sq.st_nlink, sq.st_mode), (2, 2, S_IFIFO | 0o600));
    assert_eq!(sp.st_ino, sq.st_ino);
    let a = open(&p, O_RDWR, 0).unwrap();
    let b = open(&q, O_RDWR | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(a, b"linked"), Ok(6));
    assert_eq!(read_bytes(b, 16).unwrap(), b"linked");
    close_all(&[a, b]);
    sys!(SYS_unlink, cp.as_ptr()).unwrap();
    assert_eq!(stat_path(&q).unwrap().st_nlink, 1);
}

/// The pipe hangs off the inode, which lives while it is open.
fn an_unlinked_fifo_keeps_working_through_its_open_descriptors() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let a = open(&p, O_RDWR, 0).unwrap();
    let b = open(&p, O_RDWR | O_NONBLOCK, 0).unwrap();
    let c = cstr(&p);
    sys!(SYS_unlink, c.as_ptr()).unwrap();
    let st = fstat(a);
    assert_eq!((st.st_mode, st.st_nlink), (S_IFIFO | 0o600, 0));
    assert_eq!(write(a, b"still"), Ok(5));
    assert_eq!(read_bytes(b, 16).unwrap(), b"still");
    assert_errno!(open(&p, O_RDWR | O_NONBLOCK, 0), ENOENT);
    close_all(&[a, b]);
}

// ---------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------

/// A reader with no writer reads end of file rather than EAGAIN (pipe_read: no writers).
fn a_nonblocking_read_only_open_without_writers_succeeds_and_reads_eof() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(fcntl(r, F_GETFL, 0).unwrap() as i32 & (O_ACCMODE | O_NONBLOCK), O_RDONLY | O_NONBLOCK);
    assert_eq!(read(r, &mut [0u8; 8]), Ok(0));
    close(r).unwrap();
}

/// Once open, a blocking reader does not wait for a writer either: no writer is end of
/// file.
fn a_blocking_read_with_no_writer_returns_eof_at_once() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    guarded(|| {
        let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
        fcntl(r, F_SETFL, 0).unwrap();
        assert_eq!(read(r, &mut [0u8; 8]), Ok(0));
        close(r).unwrap();
    });
}

fn opening_a_fifo_write_only_nonblocking_without_reader_is_enxio() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    assert_errno!(open(&p, O_WRONLY | O_NONBLOCK, 0), ENXIO);
    // Nor did the writer that failed count as one: a new reader sees no hang-up.
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(poll1(r, POLLIN, 0), 0);
    close(r).unwrap();
    assert_errno!(open(&p, O_WRONLY | O_NONBLOCK, 0), ENXIO);
}

fn a_nonblocking_write_only_open_with_a_reader_succeeds() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(w, b"hi"), Ok(2));
    assert_eq!(read_bytes(r, 8).unwrap(), b"hi");
    close_all(&[w, r]);
}

/// O_RDWR is a reader and a writer at once: it is its own partner.
fn an_o_rdwr_open_never_blocks_and_reads_back_its_own_writes() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    guarded(|| {
        let fd = open(&p, O_RDWR, 0).unwrap();
        assert_eq!(write(fd, b"self"), Ok(4));
        assert_eq!(read_bytes(fd, 16).unwrap(), b"self");
        close(fd).unwrap();
    });
}

/// An O_RDWR opener counts as a reader and as a writer, so blocking opens of either
/// kind return at once.
fn an_o_rdwr_opener_is_the_partner_of_blocking_opens() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    guarded(|| {
        let rw = open(&p, O_RDWR, 0).unwrap();
        let r = open(&p, O_RDONLY, 0).unwrap();
        let w = open(&p, O_WRONLY, 0).unwrap();
        assert_eq!(write(w, b"x"), Ok(1));
        assert_eq!(read_bytes(r, 8).unwrap(), b"x");
        close_all(&[w, r, rw]);
    });
}

fn a_blocking_read_only_open_waits_for_a_writer() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let mut child = spawn(|ready| {
        ready.go();
        let r = open(&p, O_RDONLY, 0).unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(read_full(r, &mut buf), Ok(2));
        assert_eq!(&buf, b"hi");
        close(r).unwrap();
        0
    });
    child.assert_blocked("a read-only open without a writer");
    // The blocked reader already counts: a non-blocking writer may open.
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(w, b"hi"), Ok(2));
    child.finish();
    close(w).unwrap();
}

/// A blocked open waits for the count of partners ever opened to change, not for one to
/// be there: a writer gone before the reader runs again still releases it, and the reader
/// gets what it wrote, then end of file.
fn a_blocked_reader_is_released_by_a_writer_that_opens_and_closes_at_once() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let mut child = spawn(|ready| {
        ready.go();
        let r = open(&p, O_RDONLY, 0).unwrap();
        assert_eq!(read_bytes(r, 16).unwrap(), b"bye");
        assert_eq!(read(r, &mut [0u8; 8]), Ok(0));
        close(r).unwrap();
        0
    });
    child.assert_blocked("a read-only open without a writer");
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(w, b"bye"), Ok(3));
    close(w).unwrap();
    child.finish();
}

fn a_blocking_write_only_open_waits_for_a_reader() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let mut child = spawn(|ready| {
        ready.go();
        let w = open(&p, O_WRONLY, 0).unwrap();
        assert_eq!(write(w, b"hey"), Ok(3));
        close(w).unwrap();
        0
    });
    child.assert_blocked("a write-only open without a reader");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    assert_ne!(poll1(r, POLLIN, WAIT_MS) & POLLIN, 0, "the writer's data never came");
    assert_eq!(read_bytes(r, 16).unwrap(), b"hey");
    child.finish();
    close(r).unwrap();
}

/// wait_for_partner returns -ERESTARTSYS: EINTR under a handler without SA_RESTART, and
/// the reader it had counted is gone again.
fn a_blocking_open_interrupted_by_a_signal_is_eintr_and_leaves_no_reader() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let mut child = spawn(|ready| {
        set_handler(SIGUSR1, handler(count_signal), 0, &[]).unwrap();
        ready.go();
        assert_errno!(open(&p, O_RDONLY, 0), EINTR);
        assert_eq!(SIGNALS.load(Ordering::SeqCst), 1);
        assert_errno!(open(&p, O_WRONLY | O_NONBLOCK, 0), ENXIO);
        0
    });
    child.assert_blocked("a read-only open without a writer");
    child.signal(SIGUSR1);
    child.finish();
    assert_errno!(open(&p, O_WRONLY | O_NONBLOCK, 0), ENXIO);
}

/// Under SA_RESTART the open starts again after the handler and waits on; a writer then
/// releases it.
fn a_blocking_open_interrupted_under_sa_restart_restarts_and_completes() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let mut child = spawn(|ready| {
        set_handler(SIGUSR1, handler(count_signal), SA_RESTART, &[]).unwrap();
        ready.go();
        let r = open(&p, O_RDONLY, 0).unwrap();
        assert_eq!(SIGNALS.load(Ordering::SeqCst), 1, "the handler ran once during the open");
        let mut buf = [0u8; 5];
        assert_eq!(read_full(r, &mut buf), Ok(5));
        assert_eq!(&buf, b"again");
        close(r).unwrap();
        0
    });
    child.assert_blocked("a read-only open without a writer");
    child.signal(SIGUSR1);
    child.assert_blocked("the restarted open");
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(w, b"again"), Ok(5));
    close(w).unwrap();
    child.finish();
}

/// Access mode 3 opens with neither FMODE_READ nor FMODE_WRITE (an ioctl-only open for
/// devices), which fifo_open refuses, blocking or not.
fn access_mode_3_on_a_fifo_is_einval() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    guarded(|| {
        assert_errno!(open(&p, 3 | O_NONBLOCK, 0), EINVAL);
        assert_errno!(open(&p, 3, 0), EINVAL);
    });
}

/// O_PATH never reaches fifo_open: it does not wait, and it is neither reader nor writer.
fn an_o_path_open_of_a_fifo_neither_blocks_nor_counts_as_a_reader() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    guarded(|| {
        let fd = open(&p, O_PATH, 0).unwrap();
        assert_eq!(fstat(fd).st_mode, S_IFIFO | 0o600);
        assert_errno!(open(&p, O_WRONLY | O_NONBLOCK, 0), ENXIO);
        assert_errno!(read(fd, &mut [0u8; 1]), EBADF);
        assert_errno!(write(fd, b"x"), EBADF);
        close(fd).unwrap();
    });
}

/// may_open drops O_TRUNC for a FIFO: no error, and the pipe keeps what is queued.
fn o_trunc_on_a_fifo_is_ignored_and_keeps_its_data() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let a = open(&p, O_RDWR, 0).unwrap();
    assert_eq!(write(a, b"kept"), Ok(4));
    let b = open(&p, O_RDWR | O_TRUNC | O_NONBLOCK, 0).unwrap();
    assert_eq!(read_bytes(b, 16).unwrap(), b"kept");
    close_all(&[a, b]);
}

fn o_creat_of_an_existing_fifo_opens_the_fifo() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let ino = stat_path(&p).unwrap().st_ino;
    let fd = open(&p, O_RDWR | O_CREAT, 0o644).unwrap();
    let st = fstat(fd);
    assert_eq!((st.st_ino, st.st_mode), (ino, S_IFIFO | 0o600));
    assert_eq!(write(fd, b"z"), Ok(1));
    assert_eq!(read_bytes(fd, 4).unwrap(), b"z");
    close(fd).unwrap();
}

fn o_creat_o_excl_of_an_existing_fifo_is_eexist() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    assert_errno!(open(&p, O_RDWR | O_CREAT | O_EXCL, 0o600), EEXIST);
    assert_errno!(open(&p, O_RDONLY | O_NONBLOCK | O_CREAT | O_EXCL, 0o600), EEXIST);
}

fn o_directory_on_a_fifo_is_enotdir() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    assert_errno!(open(&p, O_RDWR | O_DIRECTORY, 0), ENOTDIR);
    assert_errno!(open(&p, O_RDONLY | O_NONBLOCK | O_DIRECTORY, 0), ENOTDIR);
}

/// /proc/self/fd/N leads to the FIFO's inode, so the new open joins its pipe.
fn opening_proc_self_fd_of_a_fifo_reaches_the_same_pipe() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let a = open(&p, O_RDWR, 0).unwrap();
    let b = open(&format!("/proc/self/fd/{a}"), O_RDWR | O_NONBLOCK, 0).unwrap();
    assert_eq!(fstat(b).st_ino, fstat(a).st_ino);
    assert_eq!(write(a, b"via proc"), Ok(8));
    assert_eq!(read_bytes(b, 16).unwrap(), b"via proc");
    close_all(&[a, b]);
}

// ---------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------

fn a_megabyte_written_to_a_fifo_reaches_a_reader_in_another_process_in_order() {
    const LEN: usize = 1 << 20;
    let pattern = |i: usize| (i % 251) as u8;
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    fcntl(r, F_SETFL, 0).unwrap();
    let child = spawn(|ready| {
        close(r).unwrap();
        let w = open(&p, O_WRONLY, 0).unwrap();
        ready.go();
        let data: Vec<u8> = (0..LEN).map(pattern).collect();
        let mut off = 0;
        while off < LEN {
            off += write(w, &data[off..(off + 10_000).min(LEN)]).unwrap();
        }
        close(w).unwrap();
        0
    });
    let mut buf = vec![0u8; LEN];
    assert_eq!(read_full(r, &mut buf), Ok(LEN));
    assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern(i)), "the data came out changed");
    child.finish();
    assert_eq!(read(r, &mut [0u8; 8]), Ok(0));
    close(r).unwrap();
}

fn a_nonblocking_reader_of_an_empty_fifo_with_a_writer_gets_eagain() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_errno!(read(r, &mut [0u8; 8]), EAGAIN);
    close_all(&[w, r]);
}

fn after_the_last_writer_closes_the_reader_gets_the_rest_then_eof() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(w, b"rest"), Ok(4));
    close(w).unwrap();
    assert_eq!(read_bytes(r, 2).unwrap(), b"re");
    assert_eq!(read_bytes(r, 16).unwrap(), b"st");
    assert_eq!(read(r, &mut [0u8; 8]), Ok(0));
    assert_eq!(read(r, &mut [0u8; 8]), Ok(0));
    close(r).unwrap();
}

fn eof_comes_only_once_every_writer_has_closed() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w1 = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    let w2 = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    close(w1).unwrap();
    assert_errno!(read(r, &mut [0u8; 8]), EAGAIN);
    close(w2).unwrap();
    assert_eq!(read(r, &mut [0u8; 8]), Ok(0));
    close(r).unwrap();
}

fn writing_when_every_reader_closed_is_epipe_and_raises_sigpipe() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    run_in_child(|| {
        set_handler(SIGPIPE, SIG_DFL, 0, &[]).unwrap();
        sigprocmask(SIG_BLOCK, sigbit(SIGPIPE)).unwrap();
        let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
        let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
        close(r).unwrap();
        assert_errno!(write(w, b"x"), EPIPE);
        let mut pending = 0u64;
        sys!(SYS_rt_sigpending, &mut pending as *mut u64, 8).unwrap();
        assert_ne!(pending & sigbit(SIGPIPE), 0, "no SIGPIPE pending");
        close(w).unwrap();
    });
}

fn epipe_comes_only_once_every_reader_has_closed() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    // SIGPIPE is ignored in the test programs (Rust's runtime), so a write gives EPIPE.
    let r1 = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let r2 = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    close(r1).unwrap();
    assert_eq!(write(w, b"x"), Ok(1));
    assert_eq!(read_bytes(r2, 8).unwrap(), b"x");
    close(r2).unwrap();
    assert_errno!(write(w, b"x"), EPIPE);
    close(w).unwrap();
}

fn sigpipe_kills_a_writer_to_a_fifo_without_readers() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let exit = child_exit(|| {
        set_handler(SIGPIPE, SIG_DFL, 0, &[]).unwrap();
        sigprocmask(SIG_UNBLOCK, sigbit(SIGPIPE)).unwrap();
        let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
        let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
        close(r).unwrap();
        let _ = write(w, b"x");
        3
    });
    assert_eq!(exit, Exit::Signal(SIGPIPE));
}

/// The pipe is freed when its last opener closes; the next open gets a new, empty one.
fn data_left_in_a_fifo_is_discarded_when_the_last_opener_closes() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let a = open(&p, O_RDWR, 0).unwrap();
    assert_eq!(write(a, b"abc"), Ok(3));
    close(a).unwrap();
    let b = open(&p, O_RDWR | O_NONBLOCK, 0).unwrap();
    assert_errno!(read(b, &mut [0u8; 8]), EAGAIN);
    close(b).unwrap();
}

fn data_stays_in_a_fifo_while_any_opener_remains() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let a = open(&p, O_RDWR, 0).unwrap();
    assert_eq!(write(a, b"abc"), Ok(3));
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    close(a).unwrap();
    // The reader alone keeps the pipe, with no writer left: the data, then end of file.
    assert_eq!(read_bytes(r, 16).unwrap(), b"abc");
    assert_eq!(read(r, &mut [0u8; 8]), Ok(0));
    close(r).unwrap();
}

fn two_fifo_nodes_do_not_share_data() {
    let dir = TempDir::new();
    let (p, q) = (fifo(&dir, "p"), fifo(&dir, "q"));
    let a = open(&p, O_RDWR | O_NONBLOCK, 0).unwrap();
    let b = open(&q, O_RDWR | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(a, b"for p"), Ok(5));
    assert_errno!(read(b, &mut [0u8; 8]), EAGAIN);
    assert_eq!(read_bytes(a, 8).unwrap(), b"for p");
    close_all(&[a, b]);
}

fn two_read_write_opens_of_one_fifo_share_one_pipe() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let a = open(&p, O_RDWR | O_NONBLOCK, 0).unwrap();
    let b = open(&p, O_RDWR | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(a, b"from a"), Ok(6));
    assert_eq!(read_bytes(b, 16).unwrap(), b"from a");
    assert_eq!(write(b, b"from b"), Ok(6));
    assert_eq!(read_bytes(a, 16).unwrap(), b"from b");
    assert_errno!(read(b, &mut [0u8; 8]), EAGAIN);
    close_all(&[a, b]);
}

// ---------------------------------------------------------------------------------------
// The open file
// ---------------------------------------------------------------------------------------

/// The open FIFO is the filesystem's inode (its size stays 0 whatever is queued).
fn fstat_of_an_open_fifo_matches_stat_of_its_path() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let fd = open(&p, O_RDWR, 0).unwrap();
    assert_eq!(write(fd, b"queued"), Ok(6));
    let (f, s) = (fstat(fd), stat_path(&p).unwrap());
    assert_eq!((f.st_dev, f.st_ino, f.st_mode, f.st_nlink), (s.st_dev, s.st_ino, S_IFIFO | 0o600, 1));
    assert_eq!((f.st_size, s.st_size), (0, 0));
    close(fd).unwrap();
}

fn lseek_pread_and_pwrite_on_a_fifo_are_espipe() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let fd = open(&p, O_RDWR | O_NONBLOCK, 0).unwrap();
    assert_eq!(write(fd, b"data"), Ok(4));
    assert_errno!(sys!(SYS_lseek, fd, 0, SEEK_SET), ESPIPE);
    assert_errno!(sys!(SYS_lseek, fd, 0, SEEK_CUR), ESPIPE);
    let mut buf = [0u8; 4];
    assert_errno!(sys!(SYS_pread64, fd, buf.as_mut_ptr(), 4, 0), ESPIPE);
    assert_errno!(sys!(SYS_pwrite64, fd, buf.as_ptr(), 4, 0), ESPIPE);
    assert_eq!(read_bytes(fd, 8).unwrap(), b"data");
    close(fd).unwrap();
}

fn fionread_on_a_fifo_counts_the_queued_bytes() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let fd = open(&p, O_RDWR | O_NONBLOCK, 0).unwrap();
    let queued = || {
        let mut n: c_int = -1;
        sys!(SYS_ioctl, fd, FIONREAD, &mut n as *mut c_int).unwrap();
        n
    };
    assert_eq!(queued(), 0);
    assert_eq!(write(fd, b"12345"), Ok(5));
    assert_eq!(write(fd, b"678"), Ok(3));
    assert_eq!(queued(), 8);
    assert_eq!(read_bytes(fd, 2).unwrap(), b"12");
    assert_eq!(queued(), 6);
    close(fd).unwrap();
}

fn a_fifo_has_a_65536_byte_pipe() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(fcntl(r, F_GETPIPE_SZ, 0), Ok(65536));
    assert_eq!(fcntl(w, F_GETPIPE_SZ, 0), Ok(65536));
    close_all(&[w, r]);
}

/// A non-blocking write larger than the room left writes what fits.
fn a_nonblocking_writer_fills_a_fifo_to_65536_bytes_then_gets_eagain() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let fd = open(&p, O_RDWR | O_NONBLOCK, 0).unwrap();
    let big = vec![7u8; 100_000];
    assert_eq!(write(fd, &big), Ok(65536));
    assert_errno!(write(fd, b"x"), EAGAIN);
    assert_eq!(poll1(fd, POLLOUT, 0), 0, "writable when full");
    assert_eq!(read_bytes(fd, 4096).unwrap().len(), 4096);
    assert_eq!(write(fd, b"x"), Ok(1));
    close(fd).unwrap();
}

/// F_SETPIPE_SZ sizes the shared pipe; the pipe goes with its last opener, and the next
/// one has the default size again.
fn a_fifos_pipe_size_resets_when_its_last_opener_closes() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let a = open(&p, O_RDWR, 0).unwrap();
    assert_eq!(fcntl(a, F_SETPIPE_SZ, 8192), Ok(8192));
    let b = open(&p, O_RDWR, 0).unwrap();
    assert_eq!(fcntl(b, F_GETPIPE_SZ, 0), Ok(8192));
    close_all(&[a, b]);
    let c = open(&p, O_RDWR, 0).unwrap();
    assert_eq!(fcntl(c, F_GETPIPE_SZ, 0), Ok(65536));
    close(c).unwrap();
}

// ---------------------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------------------

/// pipe_poll reports POLLHUP to a reader only once the writer count has moved since it
/// opened: a reader waiting for its first writer is not hung up.
fn a_reader_that_has_seen_no_writer_polls_without_pollhup() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(poll1(r, POLLIN, 0), 0);
    assert_eq!(poll1(r, POLLIN, 20), 0);
    close(r).unwrap();
}

fn a_reader_polls_pollhup_once_a_writer_came_and_went() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(poll1(r, POLLIN, 0), 0);
    assert_eq!(write(w, b"x"), Ok(1));
    close(w).unwrap();
    assert_eq!(poll1(r, POLLIN, 0), POLLIN | POLLHUP);
    assert_eq!(read_bytes(r, 8).unwrap(), b"x");
    assert_eq!(poll1(r, POLLIN, 0), POLLHUP);
    // A reader opened after that has seen no writer of its own.
    let r2 = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(poll1(r2, POLLIN, 0), 0);
    close_all(&[r, r2]);
}

fn a_writer_polls_pollout_and_a_reader_pollin_once_data_is_written() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(poll1(w, POLLOUT, 0), POLLOUT);
    assert_eq!(poll1(r, POLLIN, 0), 0);
    assert_eq!(write(w, b"x"), Ok(1));
    assert_eq!(poll1(r, POLLIN, 0), POLLIN);
    assert_eq!(poll1(w, POLLOUT, 0), POLLOUT);
    close_all(&[w, r]);
}

fn a_writer_polls_pollerr_once_every_reader_closed() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    close(r).unwrap();
    assert_eq!(poll1(w, POLLOUT, 0), POLLOUT | POLLERR);
    close(w).unwrap();
}

fn epoll_reports_a_fifo_reader_readable_after_a_write() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let w = open(&p, O_WRONLY | O_NONBLOCK, 0).unwrap();
    let ep = sys!(SYS_epoll_create1, EPOLL_CLOEXEC).unwrap() as i32;
    let ev = epoll_event { events: EPOLLIN as u32, u64: 42 };
    sys!(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, r, &ev as *const epoll_event).unwrap();
    let mut out = [epoll_event { events: 0, u64: 0 }; 4];
    assert_eq!(sys!(SYS_epoll_wait, ep, out.as_mut_ptr(), 4, 0), Ok(0));
    assert_eq!(write(w, b"ready"), Ok(5));
    assert_eq!(sys!(SYS_epoll_wait, ep, out.as_mut_ptr(), 4, 0), Ok(1));
    let (events, data) = (out[0].events, out[0].u64);
    assert_eq!((events, data), (EPOLLIN as u32, 42));
    close_all(&[ep, w, r]);
}

fn poll_on_a_fifo_reader_is_woken_by_a_write_from_another_process() {
    let dir = TempDir::new();
    let p = fifo(&dir, "f");
    let r = open(&p, O_RDONLY | O_NONBLOCK, 0).unwrap();
    let child = spawn(|ready| {
        close(r).unwrap();
        let w = open(&p, O_WRONLY, 0).unwrap();
        ready.go();
        sleep_ms(50);
        assert_eq!(write(w, b"wake"), Ok(4));
        close(w).unwrap();
        0
    });
    assert_ne!(poll1(r, POLLIN, WAIT_MS) & POLLIN, 0, "not woken by the write");
    assert_eq!(read_bytes(r, 16).unwrap(), b"wake");
    child.finish();
    close(r).unwrap();
}
