//! Permission checks and capabilities: search permission in path walks, creating and
//! removing entries (write and search on the directory, the sticky bit), open modes,
//! O_TRUNC and O_NOATIME, exec (execute permission, ETXTBSY, set-user-ID), chmod and
//! chown rules, times, access() with real and effective ids, and the capability sets
//! (capget/capset, what uid changes do to them).
//!
//! Each case runs in a forked child that first becomes someone: the owner of the files
//! (OWNER), a member of their group through a supplementary group (MEMBER) or through its
//! primary gid (PRIMARY), anyone else (OTHER), root, or root without some capabilities
//! (dropped from the effective set with capset). Tests are tables of such cases.

use libc::*;
use user_tests::{
    assert_errno, child_args, child_exit, close, cstr, exe_path, execve, fork_child, open, run_in_child, run_tests,
    sys, tests, wait_child, Errno, Exit, TempDir,
};

const OWNER: u32 = 1000;
const MEMBER: u32 = 1001;
const OTHER: u32 = 1002;
const PRIMARY: u32 = 1003;
/// The group of the test files; only MEMBER (supplementary) and PRIMARY (gid) are in it.
const GROUP: u32 = 2000;

const CAP_CHOWN: u32 = 0;
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_FOWNER: u32 = 3;
const CAP_FSETID: u32 = 4;
const CAP_KILL: u32 = 5;
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_SETPCAP: u32 = 8;
const CAP_LINUX_IMMUTABLE: u32 = 9;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_MKNOD: u32 = 27;
const CAP_MAC_OVERRIDE: u32 = 32;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const PR_SET_KEEPCAPS: i32 = 8;
const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const AT_EACCESS_FLAG: i32 = 0x200;

/// Who a case runs as.
#[derive(Clone, Copy, Debug)]
enum Who {
    Owner,
    Member,
    Primary,
    Other,
    Root,
    /// Root with these capabilities dropped from its effective set.
    RootWithout(&'static [u32]),
}
use Who::*;

fn main() {
    if let Some(args) = child_args() {
        // A copy of this binary run by the exec tests: report and exit.
        let code = match args.first().map(String::as_str) {
            Some("euid") => sys!(SYS_geteuid).unwrap() as i32,
            Some("permitted") => (capget().1 != 0) as i32,
            Some("dumpable") => sys!(SYS_prctl, PR_GET_DUMPABLE).unwrap() as i32,
            // Run although execve should have failed.
            Some("unexpected") => 3,
            _ => 0,
        };
        std::process::exit(code);
    }
    run_tests(
        "perm",
        tests![
            changing_ids_makes_a_process_non_dumpable_and_its_proc_files_roots,
            pr_set_dumpable_gives_proc_files_back_to_the_effective_ids,
            a_process_lists_its_own_proc_fd_even_when_not_dumpable,
            pr_set_dumpable_takes_only_0_or_1,
            exec_makes_a_process_dumpable_unless_it_cannot_read_the_program,
            lookup_needs_search_permission_on_each_directory,
            root_searches_any_directory_with_cap_dac_read_search_or_cap_dac_override,
            group_permission_comes_from_the_primary_or_a_supplementary_group,
            chdir_into_a_directory_without_search_permission_is_eacces,
            creating_an_entry_needs_write_and_search_permission_on_the_directory,
            cap_dac_override_lets_root_create_in_a_read_only_directory,
            open_creat_of_an_existing_file_needs_no_write_permission_on_the_directory,
            a_file_created_by_open_is_open_whatever_its_mode,
            removing_an_entry_needs_write_and_search_permission_on_the_directory,
            unlink_of_a_missing_entry_is_enoent_before_permission,
            sticky_directory_lets_only_the_file_or_directory_owner_remove_entries,
            rename_in_a_sticky_directory_applies_the_sticky_rule_to_source_and_target,
            moving_a_directory_to_another_parent_needs_write_permission_on_it,
            open_checks_the_owner_group_or_other_bits_for_the_access_mode,
            o_trunc_needs_write_permission,
            read_only_open_with_o_trunc_empties_the_file,
            cap_dac_override_and_cap_dac_read_search_let_root_open_any_file,
            opening_a_directory_for_reading_needs_read_permission,
            o_noatime_needs_the_owner_or_cap_fowner,
            setting_o_noatime_with_fcntl_needs_the_owner_or_cap_fowner,
            truncate_needs_write_permission,
            exec_needs_execute_permission,
            root_needs_an_execute_bit_to_exec,
            exec_of_a_directory_is_eacces,
            exec_of_a_file_open_for_writing_is_etxtbsy,
            exec_succeeds_once_the_writer_closes,
            set_user_id_program_runs_with_its_owner_as_effective_uid,
            exec_by_a_non_root_process_clears_its_permitted_capabilities,
            chmod_needs_the_owner_or_cap_fowner,
            chmod_drops_set_group_id_unless_in_the_group_or_cap_fsetid,
            chown_to_another_user_needs_cap_chown,
            owner_may_change_the_group_only_to_one_of_its_groups,
            chown_clears_set_user_id_and_group_executable_set_group_id,
            setting_explicit_times_needs_the_owner_or_cap_fowner,
            setting_times_to_now_needs_the_owner_or_write_permission,
            access_checks_the_real_uid_and_at_eaccess_the_effective_one,
            access_by_real_root_has_root_capabilities_whatever_the_effective_uid,
            access_checks_the_real_gid_and_at_eaccess_the_effective_one,
            access_searches_the_path_with_the_real_ids,
            capget_reports_the_sets_capset_installed,
            capset_cannot_add_to_the_permitted_set,
            capset_effective_outside_permitted_is_eperm,
            capget_with_an_unknown_version_is_einval_and_reports_version_3,
            capset_of_another_process_is_eperm,
            leaving_uid_0_clears_permitted_and_effective,
            effective_uid_leaving_0_clears_effective_and_returning_restores_it,
            keepcaps_keeps_the_permitted_set_when_leaving_uid_0,
            setfsuid_away_from_0_drops_only_the_filesystem_capabilities,
            set_user_ids_need_cap_setuid,
            setgroups_needs_cap_setgid,
            supplementary_groups_are_inherited_by_fork,
            capbset_drop_removes_a_capability_from_the_bounding_set,
            signalling_another_users_process_needs_cap_kill,
            raising_a_hard_limit_needs_cap_sys_resource,
            rlimit_nofile_stops_at_nr_open_even_with_cap_sys_resource,
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's (effective, permitted, inheritable) sets.
fn capget() -> (u64, u64, u64) {
    let mut h = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut d = [CapData::default(); 2];
    sys!(SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()).expect("capget");
    let join = |f: fn(&CapData) -> u32| f(&d[0]) as u64 | (f(&d[1]) as u64) << 32;
    (join(|d| d.effective), join(|d| d.permitted), join(|d| d.inheritable))
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<i64, Errno> {
    let mut h = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let d = [0, 1].map(|i| CapData {
        effective: (effective >> (32 * i)) as u32,
        permitted: (permitted >> (32 * i)) as u32,
        inheritable: (inheritable >> (32 * i)) as u32,
    });
    sys!(SYS_capset, &mut h as *mut CapHeader, d.as_ptr())
}

fn bits(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, &c| m | 1 << c)
}

/// Drops `caps` from the effective set (the permitted set keeps them).
fn drop_effective(caps: &[u32]) {
    let (e, p, i) = capget();
    capset(e & !bits(caps), p, i).expect("capset");
}

fn set_ids(uid: u32, gid: u32, groups: &[u32]) {
    sys!(SYS_setgroups, groups.len(), groups.as_ptr()).expect("setgroups");
    sys!(SYS_setresgid, gid, gid, gid).expect("setresgid");
    sys!(SYS_setresuid, uid, uid, uid).expect("setresuid");
}

fn become_(who: Who) {
    match who {
        Owner => set_ids(OWNER, OWNER, &[]),
        Member => set_ids(MEMBER, MEMBER, &[GROUP]),
        Primary => set_ids(PRIMARY, GROUP, &[]),
        Other => set_ids(OTHER, OTHER, &[]),
        Root => {}
        RootWithout(caps) => drop_effective(caps),
    }
}

/// Runs `f` in a forked child after becoming `who`.
#[track_caller]
fn as_who(who: Who, f: impl FnOnce()) {
    run_in_child(|| {
        become_(who);
        f()
    })
}

/// `r` reduced to success or its errno.
fn outcome<T>(r: Result<T, Errno>) -> Result<(), i32> {
    r.map(|_| ()).map_err(|e| e.0)
}

/// Runs `op` as `who` in a child and checks it succeeds (`None`) or fails with `errno`.
#[track_caller]
fn expect_as(who: Who, expect: Option<i32>, case: &str, op: impl FnOnce() -> Result<(), i32>) {
    as_who(who, || {
        let got = op();
        let want = match expect {
            None => Ok(()),
            Some(e) => Err(e),
        };
        assert_eq!(got, want, "{case} as {who:?}: got {got:?}, want {want:?} (errno values)");
    })
}

fn chown_path(path: &str, uid: u32, gid: u32) {
    let p = cstr(path);
    sys!(SYS_fchownat, AT_FDCWD, p.as_ptr(), uid, gid, AT_SYMLINK_NOFOLLOW).expect("chown");
}

fn chmod_path(path: &str, mode: u32) {
    let p = cstr(path);
    sys!(SYS_fchmodat, AT_FDCWD, p.as_ptr(), mode).expect("chmod");
}

fn mode_of(path: &str) -> u32 {
    let p = cstr(path);
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_newfstatat, AT_FDCWD, p.as_ptr(), &mut st as *mut stat, AT_SYMLINK_NOFOLLOW).expect("stat");
    st.st_mode & 0o7777
}

/// A directory at `path` owned by `uid:GROUP` with `mode`.
fn mkdir_as(path: &str, uid: u32, mode: u32) -> String {
    std::fs::create_dir(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    chown_path(path, uid, GROUP);
    chmod_path(path, mode);
    path.to_string()
}

/// A regular file at `path` holding "data", owned by `uid:GROUP` with `mode`.
fn file_as(path: &str, uid: u32, mode: u32) -> String {
    std::fs::write(path, b"data").unwrap_or_else(|e| panic!("{path}: {e}"));
    chown_path(path, uid, GROUP);
    chmod_path(path, mode);
    path.to_string()
}

/// A copy of this test binary at `path`, owned by `uid:GROUP` with `mode`; run with
/// [`run_prog`] it exits at once.
fn prog_as(path: &str, uid: u32, mode: u32) -> String {
    std::fs::copy(exe_path().to_str().unwrap(), path).unwrap_or_else(|e| panic!("{path}: {e}"));
    chown_path(path, uid, GROUP);
    chmod_path(path, mode);
    path.to_string()
}

/// execve of `path` in child mode with `arg`; returns only its error.
fn run_prog(path: &str, arg: &str) -> Errno {
    execve(&cstr(path), &[path, user_tests::CHILD_MARKER, arg], &[])
}

fn stat_path(path: &str) -> Result<(), i32> {
    let p = cstr(path);
    let mut st: stat = unsafe { std::mem::zeroed() };
    outcome(sys!(SYS_newfstatat, AT_FDCWD, p.as_ptr(), &mut st as *mut stat, 0))
}

fn open_close(path: &str, flags: i32) -> Result<(), i32> {
    let fd = open(path, flags, 0o644).map_err(|e| e.0)?;
    close(fd).unwrap();
    Ok(())
}

fn mkdir(path: &str) -> Result<(), i32> {
    let p = cstr(path);
    outcome(sys!(SYS_mkdirat, AT_FDCWD, p.as_ptr(), 0o755))
}

fn unlink(path: &str) -> Result<(), i32> {
    let p = cstr(path);
    outcome(sys!(SYS_unlinkat, AT_FDCWD, p.as_ptr(), 0))
}

fn rmdir(path: &str) -> Result<(), i32> {
    let p = cstr(path);
    outcome(sys!(SYS_unlinkat, AT_FDCWD, p.as_ptr(), AT_REMOVEDIR))
}

fn rename(from: &str, to: &str) -> Result<(), i32> {
    let (f, t) = (cstr(from), cstr(to));
    outcome(sys!(SYS_renameat2, AT_FDCWD, f.as_ptr(), AT_FDCWD, t.as_ptr(), 0))
}

fn symlink(target: &str, path: &str) -> Result<(), i32> {
    let (t, p) = (cstr(target), cstr(path));
    outcome(sys!(SYS_symlinkat, t.as_ptr(), AT_FDCWD, p.as_ptr()))
}

fn link(from: &str, to: &str) -> Result<(), i32> {
    let (f, t) = (cstr(from), cstr(to));
    outcome(sys!(SYS_linkat, AT_FDCWD, f.as_ptr(), AT_FDCWD, t.as_ptr(), 0))
}

fn chown(path: &str, uid: u32, gid: u32) -> Result<(), i32> {
    let p = cstr(path);
    outcome(sys!(SYS_fchownat, AT_FDCWD, p.as_ptr(), uid, gid, 0))
}

fn chmod(path: &str, mode: u32) -> Result<(), i32> {
    let p = cstr(path);
    outcome(sys!(SYS_fchmodat, AT_FDCWD, p.as_ptr(), mode))
}

fn faccessat(path: &str, mode: i32, flags: i32) -> Result<(), i32> {
    let p = cstr(path);
    outcome(sys!(SYS_faccessat2, AT_FDCWD, p.as_ptr(), mode, flags))
}

// ---------------------------------------------------------------------------------------
// Path lookup
// ---------------------------------------------------------------------------------------

fn lookup_needs_search_permission_on_each_directory() {
    // (mode of the directory, who, expected errno): search is the x bit of the class the
    // caller falls in; read permission does not matter.
    let cases: &[(u32, Who, Option<i32>)] = &[
        (0o700, Owner, None),
        (0o100, Owner, None),
        (0o600, Owner, Some(EACCES)),
        (0o077, Owner, Some(EACCES)),
        (0o010, Member, None),
        (0o060, Member, Some(EACCES)),
        (0o701, Member, Some(EACCES)),
        (0o001, Other, None),
        (0o776, Other, Some(EACCES)),
    ];
    for &(mode, who, expect) in cases {
        let t = TempDir::new();
        let d = mkdir_as(&t.join("d"), OWNER, 0o755);
        file_as(&format!("{d}/f"), OWNER, 0o644);
        chmod_path(&d, mode);
        expect_as(who, expect, &format!("stat d/f, d {mode:o}"), || stat_path(&format!("{d}/f")));
    }
}

/// Owner (uid, gid) of `path`, following symlinks.
fn owner(path: &str) -> (u32, u32) {
    let p = cstr(path);
    let mut st: stat = unsafe { std::mem::zeroed() };
    sys!(SYS_newfstatat, AT_FDCWD, p.as_ptr(), &mut st as *mut stat, 0).unwrap();
    (st.st_uid, st.st_gid)
}

fn dumpable() -> i64 {
    sys!(SYS_prctl, PR_GET_DUMPABLE).unwrap()
}

/// A change of effective ids makes the process non-dumpable: its /proc files (and fd
/// directory) belong to root, while /proc/pid itself keeps the effective ids.
fn changing_ids_makes_a_process_non_dumpable_and_its_proc_files_roots() {
    run_in_child(|| {
        assert_eq!(dumpable(), 1);
        become_(Owner);
        assert_eq!(dumpable(), 0);
        assert_eq!(owner("/proc/self"), (OWNER, OWNER));
        assert_eq!(owner("/proc/self/status"), (0, 0));
        assert_eq!(owner("/proc/self/fd"), (0, 0));
    });
}

/// PR_SET_DUMPABLE 1 gives /proc/pid's files back to the effective ids.
fn pr_set_dumpable_gives_proc_files_back_to_the_effective_ids() {
    run_in_child(|| {
        become_(Owner);
        sys!(SYS_prctl, PR_SET_DUMPABLE, 1).unwrap();
        assert_eq!(dumpable(), 1);
        assert_eq!(owner("/proc/self/status"), (OWNER, OWNER));
        assert_eq!(owner("/proc/self/fd"), (OWNER, OWNER));
    });
}

/// /proc/self/fd is root's 0500 directory in a non-dumpable process, yet the process may
/// list its own descriptors; another user's process may not.
fn a_process_lists_its_own_proc_fd_even_when_not_dumpable() {
    let parent = std::process::id();
    as_who(Owner, || {
        assert_eq!(dumpable(), 0);
        let fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY, 0).expect("open own /proc/self/fd");
        close(fd).unwrap();
        assert_errno!(open(&format!("/proc/{parent}/fd"), O_RDONLY | O_DIRECTORY, 0), EACCES);
    });
}

fn pr_set_dumpable_takes_only_0_or_1() {
    run_in_child(|| {
        assert_errno!(sys!(SYS_prctl, PR_SET_DUMPABLE, 2), EINVAL);
        sys!(SYS_prctl, PR_SET_DUMPABLE, 0).unwrap();
        assert_eq!(dumpable(), 0);
        sys!(SYS_prctl, PR_SET_DUMPABLE, 1).unwrap();
        assert_eq!(dumpable(), 1);
    });
}

/// exec makes a non-dumpable process dumpable again, unless the caller could not read the
/// program (an execute-only file).
fn exec_makes_a_process_dumpable_unless_it_cannot_read_the_program() {
    let t = TempDir::new();
    let readable = prog_as(&t.join("readable"), 0, 0o755);
    let exec_only = prog_as(&t.join("exec_only"), 0, 0o711);
    for (prog, want) in [(&readable, 1), (&exec_only, 0)] {
        let pid = fork_child(|| {
            become_(Owner);
            run_prog(prog, "dumpable");
            99
        });
        assert_eq!(wait_child(pid), Exit::Code(want), "{prog}");
    }
}

fn root_searches_any_directory_with_cap_dac_read_search_or_cap_dac_override() {
    let cases: &[(Who, Option<i32>)] = &[
        (Root, None),
        (RootWithout(&[CAP_DAC_OVERRIDE]), None),
        (RootWithout(&[CAP_DAC_READ_SEARCH]), None),
        (RootWithout(&[CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH]), Some(EACCES)),
    ];
    for &(who, expect) in cases {
        let t = TempDir::new();
        let d = mkdir_as(&t.join("d"), OWNER, 0o755);
        file_as(&format!("{d}/f"), OWNER, 0o644);
        chmod_path(&d, 0o000);
        expect_as(who, expect, "stat d/f, d 000", || stat_path(&format!("{d}/f")));
    }
}

fn group_permission_comes_from_the_primary_or_a_supplementary_group() {
    let cases: &[(Who, Option<i32>)] = &[(Member, None), (Primary, None), (Other, Some(EACCES))];
    for &(who, expect) in cases {
        let t = TempDir::new();
        let d = mkdir_as(&t.join("d"), OWNER, 0o755);
        file_as(&format!("{d}/f"), OWNER, 0o644);
        chmod_path(&d, 0o070);
        expect_as(who, expect, "stat d/f, d 070", || stat_path(&format!("{d}/f")));
    }
}

fn chdir_into_a_directory_without_search_permission_is_eacces() {
    let t = TempDir::new();
    let d = mkdir_as(&t.join("d"), OWNER, 0o666);
    as_who(Owner, || {
        let p = cstr(&d);
        assert_errno!(sys!(SYS_chdir, p.as_ptr()), EACCES);
    });
}

// ---------------------------------------------------------------------------------------
// Creating and removing entries
// ---------------------------------------------------------------------------------------

/// The ways to add an entry `d/new`; `src` is a file and `s` a directory of the owner's
/// outside `d`.
fn create_ops() -> Vec<(&'static str, fn(&str, &str) -> Result<(), i32>)> {
    vec![
        ("open O_CREAT", |d, _| open_close(&format!("{d}/new"), O_CREAT | O_WRONLY)),
        ("mkdir", |d, _| mkdir(&format!("{d}/new"))),
        ("symlink", |d, _| symlink("target", &format!("{d}/new"))),
        ("link", |d, s| link(&format!("{s}/src"), &format!("{d}/new"))),
        ("rename into", |d, s| rename(&format!("{s}/src"), &format!("{d}/new"))),
    ]
}

fn creating_an_entry_needs_write_and_search_permission_on_the_directory() {
    let modes: &[(u32, Option<i32>)] = &[(0o700, None), (0o300, None), (0o500, Some(EACCES)), (0o600, Some(EACCES))];
    for (name, op) in create_ops() {
        for &(mode, expect) in modes {
            let t = TempDir::new();
            let d = mkdir_as(&t.join("d"), OWNER, mode);
            let s = mkdir_as(&t.join("s"), OWNER, 0o755);
            file_as(&format!("{s}/src"), OWNER, 0o644);
            expect_as(Owner, expect, &format!("{name} in d {mode:o}"), || op(&d, &s));
        }
    }
}

fn cap_dac_override_lets_root_create_in_a_read_only_directory() {
    let cases: &[(Who, Option<i32>)] = &[(Root, None), (RootWithout(&[CAP_DAC_OVERRIDE]), Some(EACCES))];
    for &(who, expect) in cases {
        let t = TempDir::new();
        let d = mkdir_as(&t.join("d"), OWNER, 0o555);
        expect_as(who, expect, "mkdir in d 555", || mkdir(&format!("{d}/new")));
    }
}

fn open_creat_of_an_existing_file_needs_no_write_permission_on_the_directory() {
    let t = TempDir::new();
    let d = mkdir_as(&t.join("d"), OWNER, 0o755);
    let f = file_as(&format!("{d}/f"), OWNER, 0o666);
    chmod_path(&d, 0o555);
    expect_as(Other, None, "open O_CREAT of d/f, d 555", || open_close(&f, O_CREAT | O_WRONLY));
}

fn a_file_created_by_open_is_open_whatever_its_mode() {
    let t = TempDir::new();
    let d = mkdir_as(&t.join("d"), OWNER, 0o755);
    as_who(Owner, || {
        let fd = open(&format!("{d}/new"), O_CREAT | O_EXCL | O_RDWR, 0o000).expect("open O_CREAT mode 0");
        assert_eq!(user_tests::write(fd, b"x"), Ok(1));
        close(fd).unwrap();
    });
}

/// The ways to remove `d/f` (a file) or `d/sub` (a directory); `s` is a directory of
/// the owner's outside `d`.
fn remove_ops() -> Vec<(&'static str, fn(&str, &str) -> Result<(), i32>)> {
    vec![
        ("unlink", |d, _| unlink(&format!("{d}/f"))),
        ("rmdir", |d, _| rmdir(&format!("{d}/sub"))),
        ("rename out", |d, s| rename(&format!("{d}/f"), &format!("{s}/moved"))),
    ]
}

fn removing_an_entry_needs_write_and_search_permission_on_the_directory() {
    let modes: &[(u32, Option<i32>)] = &[(0o700, None), (0o300, None), (0o500, Some(EACCES))];
    for (name, op) in remove_ops() {
        for &(mode, expect) in modes {
            let t = TempDir::new();
            let d = mkdir_as(&t.join("d"), OWNER, 0o755);
            let s = mkdir_as(&t.join("s"), OWNER, 0o755);
            file_as(&format!("{d}/f"), OWNER, 0o644);
            mkdir_as(&format!("{d}/sub"), OWNER, 0o755);
            chmod_path(&d, mode);
            expect_as(Owner, expect, &format!("{name} in d {mode:o}"), || op(&d, &s));
        }
    }
}

fn unlink_of_a_missing_entry_is_enoent_before_permission() {
    let t = TempDir::new();
    let d = mkdir_as(&t.join("d"), OWNER, 0o500);
    expect_as(Owner, Some(ENOENT), "unlink d/missing, d 500", || unlink(&format!("{d}/missing")));
}

fn sticky_directory_lets_only_the_file_or_directory_owner_remove_entries() {
    // The sticky directory belongs to OWNER and is writable by all; the file to MEMBER.
    let cases: &[(Who, Option<i32>)] =
        &[(Member, None), (Owner, None), (Other, Some(EPERM)), (Root, None), (RootWithout(&[CAP_FOWNER]), Some(EPERM))];
    for &(who, expect) in cases {
        let t = TempDir::new();
        let d = mkdir_as(&t.join("d"), OWNER, 0o1777);
        let f = file_as(&format!("{d}/f"), MEMBER, 0o666);
        expect_as(who, expect, "unlink MEMBER's file in OWNER's sticky d", || unlink(&f));
    }
}

fn rename_in_a_sticky_directory_applies_the_sticky_rule_to_source_and_target() {
    // OTHER renames in OWNER's sticky directory, next to MEMBER's file.
    let cases: &[(&str, &str, Option<i32>)] =
        &[("mine", "new", None), ("mine", "theirs", Some(EPERM)), ("theirs", "new", Some(EPERM))];
    for &(from, to, expect) in cases {
        let t = TempDir::new();
        let d = mkdir_as(&t.join("d"), OWNER, 0o1777);
        file_as(&format!("{d}/mine"), OTHER, 0o666);
        file_as(&format!("{d}/theirs"), MEMBER, 0o666);
        expect_as(Other, expect, &format!("rename {from} to {to}"), || {
            rename(&format!("{d}/{from}"), &format!("{d}/{to}"))
        });
    }
}

fn moving_a_directory_to_another_parent_needs_write_permission_on_it() {
    // (mode of the moved directory, destination parent, expected): its `..` changes
    // only when the parent does.
    let cases: &[(u32, &str, Option<i32>)] = &[(0o555, "s", Some(EACCES)), (0o755, "s", None), (0o555, "d", None)];
    for &(mode, parent, expect) in cases {
        let t = TempDir::new();
        let d = mkdir_as(&t.join("d"), OWNER, 0o755);
        mkdir_as(&t.join("s"), OWNER, 0o755);
        let sub = mkdir_as(&format!("{d}/sub"), OWNER, mode);
        let to = t.join(&format!("{parent}/moved"));
        expect_as(Owner, expect, &format!("rename d/sub ({mode:o}) to {parent}/moved"), || rename(&sub, &to));
    }
}

// ---------------------------------------------------------------------------------------
// Opening files
// ---------------------------------------------------------------------------------------

fn open_checks_the_owner_group_or_other_bits_for_the_access_mode() {
    // (file mode, who, access mode, expected): one class decides, the owner's for the
    // owner, the group's for a member when it differs from other's, else other's.
    let cases: &[(u32, Who, i32, Option<i32>)] = &[
        (0o400, Owner, O_RDONLY, None),
        (0o400, Owner, O_WRONLY, Some(EACCES)),
        (0o200, Owner, O_WRONLY, None),
        (0o200, Owner, O_RDWR, Some(EACCES)),
        (0o600, Owner, O_RDWR, None),
        (0o044, Owner, O_RDONLY, Some(EACCES)),
        (0o040, Member, O_RDONLY, None),
        (0o040, Primary, O_RDONLY, None),
        (0o040, Member, O_WRONLY, Some(EACCES)),
        (0o004, Member, O_RDONLY, Some(EACCES)),
        (0o004, Other, O_RDONLY, None),
        (0o002, Other, O_WRONLY, None),
        (0o060, Other, O_RDONLY, Some(EACCES)),
    ];
    for &(mode, who, acc, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, mode);
        expect_as(who, expect, &format!("open {mode:o} with access {acc}"), || open_close(&f, acc));
    }
}

fn o_trunc_needs_write_permission() {
    let t = TempDir::new();
    let f = file_as(&t.join("f"), OWNER, 0o400);
    expect_as(Owner, Some(EACCES), "open O_RDONLY|O_TRUNC of a 400 file", || open_close(&f, O_RDONLY | O_TRUNC));
}

fn read_only_open_with_o_trunc_empties_the_file() {
    let t = TempDir::new();
    let f = file_as(&t.join("f"), OWNER, 0o600);
    as_who(Owner, || open_close(&f, O_RDONLY | O_TRUNC).expect("open O_RDONLY|O_TRUNC"));
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 0);
}

fn cap_dac_override_and_cap_dac_read_search_let_root_open_any_file() {
    // A file of mode 000: CAP_DAC_READ_SEARCH reads it, CAP_DAC_OVERRIDE reads and writes.
    let cases: &[(Who, i32, Option<i32>)] = &[
        (Root, O_RDWR, None),
        (RootWithout(&[CAP_DAC_READ_SEARCH]), O_RDWR, None),
        (RootWithout(&[CAP_DAC_OVERRIDE]), O_RDONLY, None),
        (RootWithout(&[CAP_DAC_OVERRIDE]), O_WRONLY, Some(EACCES)),
        (RootWithout(&[CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH]), O_RDONLY, Some(EACCES)),
    ];
    for &(who, acc, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, 0o000);
        expect_as(who, expect, &format!("open 000 with access {acc}"), || open_close(&f, acc));
    }
}

fn opening_a_directory_for_reading_needs_read_permission() {
    let cases: &[(u32, Option<i32>)] = &[(0o500, None), (0o300, Some(EACCES))];
    for &(mode, expect) in cases {
        let t = TempDir::new();
        let d = mkdir_as(&t.join("d"), OWNER, mode);
        expect_as(Owner, expect, &format!("opendir {mode:o}"), || open_close(&d, O_RDONLY | O_DIRECTORY));
    }
}

fn o_noatime_needs_the_owner_or_cap_fowner() {
    let cases: &[(Who, Option<i32>)] =
        &[(Owner, None), (Other, Some(EPERM)), (Root, None), (RootWithout(&[CAP_FOWNER]), Some(EPERM))];
    for &(who, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, 0o644);
        expect_as(who, expect, "open O_NOATIME of OWNER's file", || open_close(&f, O_RDONLY | O_NOATIME));
    }
}

fn setting_o_noatime_with_fcntl_needs_the_owner_or_cap_fowner() {
    let cases: &[(Who, Option<i32>)] =
        &[(Owner, None), (Other, Some(EPERM)), (Root, None), (RootWithout(&[CAP_FOWNER]), Some(EPERM))];
    for &(who, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, 0o644);
        expect_as(who, expect, "F_SETFL O_NOATIME on OWNER's file", || {
            let fd = open(&f, O_RDONLY, 0).map_err(|e| e.0)?;
            let r = outcome(sys!(SYS_fcntl, fd, F_SETFL, O_NOATIME));
            close(fd).unwrap();
            r
        });
    }
}

fn truncate_needs_write_permission() {
    let cases: &[(u32, Who, Option<i32>)] = &[
        (0o600, Owner, None),
        (0o400, Owner, Some(EACCES)),
        (0o644, Root, None),
        (0o644, RootWithout(&[CAP_DAC_OVERRIDE]), Some(EACCES)),
    ];
    for &(mode, who, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, mode);
        expect_as(who, expect, &format!("truncate {mode:o}"), || {
            let p = cstr(&f);
            outcome(sys!(SYS_truncate, p.as_ptr(), 0))
        });
    }
}

// ---------------------------------------------------------------------------------------
// exec
// ---------------------------------------------------------------------------------------

/// Runs the program at `path` as `who` and checks it ran (exit 0) or execve failed
/// with `expect` (a program that runs then exits with 3).
#[track_caller]
fn expect_exec(who: Who, path: &str, expect: Option<i32>, case: &str) {
    as_who(who, || {
        let e = run_prog(path, if expect.is_some() { "unexpected" } else { "exit0" });
        assert_eq!(Some(e.0), expect, "{case} as {who:?}: execve failed with {e}");
    });
}

fn exec_needs_execute_permission() {
    // (mode of OWNER's program, who, expected): execute, not read, of the caller's class.
    let cases: &[(u32, Who, Option<i32>)] = &[
        (0o700, Owner, None),
        (0o600, Owner, Some(EACCES)),
        (0o070, Owner, Some(EACCES)),
        (0o700, Other, Some(EACCES)),
        (0o010, Member, None),
        (0o701, Member, Some(EACCES)),
        (0o001, Other, None),
        (0o711, Other, None),
    ];
    for &(mode, who, expect) in cases {
        let t = TempDir::new();
        let p = prog_as(&t.join("prog"), OWNER, mode);
        expect_exec(who, &p, expect, &format!("exec {mode:o}"));
    }
}

fn root_needs_an_execute_bit_to_exec() {
    let cases: &[(u32, Who, Option<i32>)] = &[
        (0o100, Root, None),
        (0o001, Root, None),
        (0o666, Root, Some(EACCES)),
        (0o100, RootWithout(&[CAP_DAC_OVERRIDE]), Some(EACCES)),
    ];
    for &(mode, who, expect) in cases {
        let t = TempDir::new();
        let p = prog_as(&t.join("prog"), OWNER, mode);
        expect_exec(who, &p, expect, &format!("exec {mode:o}"));
    }
}

fn exec_of_a_directory_is_eacces() {
    let t = TempDir::new();
    let d = mkdir_as(&t.join("d"), 0, 0o755);
    expect_exec(Root, &d, Some(EACCES), "exec of a directory");
}

fn exec_of_a_file_open_for_writing_is_etxtbsy() {
    let t = TempDir::new();
    let p = prog_as(&t.join("prog"), 0, 0o755);
    as_who(Root, || {
        let fd = open(&p, O_WRONLY, 0).expect("open for writing");
        assert_eq!(run_prog(&p, "unexpected"), Errno(ETXTBSY));
        close(fd).unwrap();
    });
}

fn exec_succeeds_once_the_writer_closes() {
    let t = TempDir::new();
    let p = prog_as(&t.join("prog"), 0, 0o755);
    let fd = open(&p, O_RDWR, 0).expect("open for writing");
    close(fd).unwrap();
    expect_exec(Root, &p, None, "exec after the writer closed");
}

fn set_user_id_program_runs_with_its_owner_as_effective_uid() {
    let t = TempDir::new();
    let p = prog_as(&t.join("prog"), 77, 0o755);
    chmod_path(&p, 0o4755);
    let exit = child_exit(|| {
        become_(Other);
        run_prog(&p, "euid");
        100
    });
    assert_eq!(exit, Exit::Code(77));
}

fn exec_by_a_non_root_process_clears_its_permitted_capabilities() {
    let t = TempDir::new();
    let p = prog_as(&t.join("prog"), 0, 0o755);
    let exit = child_exit(|| {
        sys!(SYS_prctl, PR_SET_KEEPCAPS, 1).unwrap();
        set_ids(OTHER, OTHER, &[]);
        if capget().1 == 0 {
            return 100; // keepcaps did not keep them: nothing to test
        }
        run_prog(&p, "permitted");
        101
    });
    assert_eq!(exit, Exit::Code(0), "the new program still had permitted capabilities");
}

// ---------------------------------------------------------------------------------------
// chmod, chown, times
// ---------------------------------------------------------------------------------------

fn chmod_needs_the_owner_or_cap_fowner() {
    let cases: &[(Who, Option<i32>)] =
        &[(Owner, None), (Other, Some(EPERM)), (Root, None), (RootWithout(&[CAP_FOWNER]), Some(EPERM))];
    for &(who, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, 0o644);
        expect_as(who, expect, "chmod OWNER's file", || chmod(&f, 0o600));
    }
}

fn chmod_drops_set_group_id_unless_in_the_group_or_cap_fsetid() {
    // The file's group is GROUP, which OWNER and root are not in.
    let cases: &[(Who, u32)] = &[(Owner, 0o755), (Member, 0o2755), (Root, 0o2755), (RootWithout(&[CAP_FSETID]), 0o755)];
    for &(who, want) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, 0o644);
        if matches!(who, Member) {
            chown_path(&f, MEMBER, GROUP);
        }
        as_who(who, || chmod(&f, 0o2755).expect("chmod 2755"));
        assert_eq!(mode_of(&f), want, "chmod 2755 as {who:?}");
    }
}

fn chown_to_another_user_needs_cap_chown() {
    let cases: &[(Who, u32, Option<i32>)] = &[
        (Owner, OWNER, None),
        (Owner, OTHER, Some(EPERM)),
        (Root, OTHER, None),
        (RootWithout(&[CAP_CHOWN]), OTHER, Some(EPERM)),
    ];
    for &(who, uid, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, 0o644);
        expect_as(who, expect, &format!("chown OWNER's file to {uid}"), || chown(&f, uid, u32::MAX));
    }
}

fn owner_may_change_the_group_only_to_one_of_its_groups() {
    // (who, new group, expected) for a file of OWNER's whose group is GROUP.
    let cases: &[(Who, u32, Option<i32>)] = &[
        (Owner, OWNER, None),
        (Owner, GROUP, None),
        (Owner, 5555, Some(EPERM)),
        (Other, OTHER, Some(EPERM)),
        (RootWithout(&[CAP_CHOWN]), 5555, Some(EPERM)),
    ];
    for &(who, gid, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, 0o644);
        expect_as(who, expect, &format!("chgrp OWNER's file to {gid}"), || chown(&f, u32::MAX, gid));
    }
}

fn chown_clears_set_user_id_and_group_executable_set_group_id() {
    // Root (CAP_FSETID) gives a file to OTHER: S_ISUID goes, S_ISGID goes only with the
    // group execute bit (without it, it marks mandatory locking, not a set-group-ID).
    let cases: &[(u32, u32)] = &[(0o4755, 0o755), (0o2755, 0o755), (0o2745, 0o2745), (0o6755, 0o755)];
    for &(mode, want) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, mode);
        chown_path(&f, OTHER, GROUP);
        assert_eq!(mode_of(&f), want, "chown of a {mode:o} file");
    }
}

fn utimensat(path: &str, times: Option<[[i64; 2]; 2]>) -> Result<(), i32> {
    let p = cstr(path);
    let ptr = times.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
    outcome(sys!(SYS_utimensat, AT_FDCWD, p.as_ptr(), ptr, 0))
}

fn setting_explicit_times_needs_the_owner_or_cap_fowner() {
    let cases: &[(Who, Option<i32>)] =
        &[(Owner, None), (Other, Some(EPERM)), (Root, None), (RootWithout(&[CAP_FOWNER]), Some(EPERM))];
    for &(who, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, 0o666);
        expect_as(who, expect, "utimensat explicit times", || utimensat(&f, Some([[1, 0], [2, 0]])));
    }
}

fn setting_times_to_now_needs_the_owner_or_write_permission() {
    let cases: &[(u32, Who, Option<i32>)] = &[(0o400, Owner, None), (0o666, Other, None), (0o644, Other, Some(EACCES))];
    for &(mode, who, expect) in cases {
        let t = TempDir::new();
        let f = file_as(&t.join("f"), OWNER, mode);
        expect_as(who, expect, &format!("utimensat now on {mode:o}"), || utimensat(&f, None));
    }
}

// ---------------------------------------------------------------------------------------
// access()
// ---------------------------------------------------------------------------------------

fn access_checks_the_real_uid_and_at_eaccess_the_effective_one() {
    let t = TempDir::new();
    let f = file_as(&t.join("f"), OWNER, 0o600);
    run_in_child(|| {
        sys!(SYS_setresuid, OTHER, 0, 0).unwrap();
        assert_eq!(faccessat(&f, R_OK, 0), Err(EACCES), "access as real OTHER");
        assert_eq!(faccessat(&f, R_OK, AT_EACCESS_FLAG), Ok(()), "AT_EACCESS as effective root");
    });
}

fn access_by_real_root_has_root_capabilities_whatever_the_effective_uid() {
    let t = TempDir::new();
    let f = file_as(&t.join("f"), OWNER, 0o600);
    run_in_child(|| {
        sys!(SYS_setresuid, 0, OTHER, 0).unwrap();
        assert_eq!(open_close(&f, O_RDONLY), Err(EACCES), "open as effective OTHER");
        assert_eq!(faccessat(&f, R_OK, 0), Ok(()), "access as real root");
    });
}

fn access_checks_the_real_gid_and_at_eaccess_the_effective_one() {
    let t = TempDir::new();
    let f = file_as(&t.join("f"), OWNER, 0o040);
    run_in_child(|| {
        sys!(SYS_setgroups, 0, 0).unwrap();
        sys!(SYS_setresgid, OTHER, GROUP, GROUP).unwrap();
        sys!(SYS_setresuid, OTHER, OTHER, OTHER).unwrap();
        assert_eq!(faccessat(&f, R_OK, 0), Err(EACCES), "access as real gid OTHER");
        assert_eq!(faccessat(&f, R_OK, AT_EACCESS_FLAG), Ok(()), "AT_EACCESS as effective gid GROUP");
    });
}

fn access_searches_the_path_with_the_real_ids() {
    let t = TempDir::new();
    let d = mkdir_as(&t.join("d"), OWNER, 0o755);
    let f = file_as(&format!("{d}/f"), OWNER, 0o644);
    chmod_path(&d, 0o700);
    run_in_child(|| {
        sys!(SYS_setresuid, OTHER, 0, 0).unwrap();
        assert_eq!(faccessat(&f, F_OK, 0), Err(EACCES), "access d/f as real OTHER");
    });
}

// ---------------------------------------------------------------------------------------
// Capability sets
// ---------------------------------------------------------------------------------------

fn capget_reports_the_sets_capset_installed() {
    run_in_child(|| {
        let (e, p, i) = (bits(&[CAP_CHOWN]), bits(&[CAP_CHOWN, CAP_KILL]), bits(&[CAP_KILL]));
        capset(e, p, i).expect("capset");
        assert_eq!(capget(), (e, p, i));
    });
}

fn capset_cannot_add_to_the_permitted_set() {
    run_in_child(|| {
        let (e, p, i) = capget();
        let fewer = p & !bits(&[CAP_KILL]);
        capset(e & fewer, fewer, i).expect("capset dropping CAP_KILL");
        assert_errno!(capset(e & fewer, p, i), EPERM);
    });
}

fn capset_effective_outside_permitted_is_eperm() {
    run_in_child(|| {
        let (_, p, i) = capget();
        let fewer = p & !bits(&[CAP_KILL]);
        assert_errno!(capset(p, fewer, i), EPERM);
    });
}

fn capget_with_an_unknown_version_is_einval_and_reports_version_3() {
    let mut h = CapHeader { version: 0x1234, pid: 0 };
    let mut d = [CapData::default(); 2];
    assert_errno!(sys!(SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()), EINVAL);
    assert_eq!(h.version, LINUX_CAPABILITY_VERSION_3);
    let mut probe = CapHeader { version: 0x1234, pid: 0 };
    assert_eq!(sys!(SYS_capget, &mut probe as *mut CapHeader, 0), Ok(0), "probe with a NULL data pointer");
    assert_eq!(probe.version, LINUX_CAPABILITY_VERSION_3);
}

fn capset_of_another_process_is_eperm() {
    run_in_child(|| {
        let (e, p, i) = capget();
        let mut h = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: sys!(SYS_getppid).unwrap() as i32 };
        let d = [0, 1].map(|w| CapData {
            effective: (e >> (32 * w)) as u32,
            permitted: (p >> (32 * w)) as u32,
            inheritable: (i >> (32 * w)) as u32,
        });
        assert_errno!(sys!(SYS_capset, &mut h as *mut CapHeader, d.as_ptr()), EPERM);
    });
}

fn leaving_uid_0_clears_permitted_and_effective() {
    run_in_child(|| {
        sys!(SYS_setresuid, OTHER, OTHER, OTHER).unwrap();
        let (e, p, _) = capget();
        assert_eq!((e, p), (0, 0));
    });
}

fn effective_uid_leaving_0_clears_effective_and_returning_restores_it() {
    run_in_child(|| {
        let (_, p0, _) = capget();
        sys!(SYS_setresuid, -1, OTHER, -1).unwrap();
        assert_eq!(capget().0, 0, "effective after euid 0 -> OTHER");
        assert_eq!(capget().1, p0, "permitted after euid 0 -> OTHER");
        sys!(SYS_setresuid, -1, 0, -1).unwrap();
        assert_eq!(capget().0, p0, "effective after euid OTHER -> 0");
    });
}

fn keepcaps_keeps_the_permitted_set_when_leaving_uid_0() {
    run_in_child(|| {
        let (_, p0, _) = capget();
        sys!(SYS_prctl, PR_SET_KEEPCAPS, 1).unwrap();
        sys!(SYS_setresuid, OTHER, OTHER, OTHER).unwrap();
        let (e, p, _) = capget();
        assert_eq!((e, p), (0, p0));
    });
}

fn setfsuid_away_from_0_drops_only_the_filesystem_capabilities() {
    run_in_child(|| {
        let (e0, _, _) = capget();
        let fs = bits(&[
            CAP_CHOWN,
            CAP_DAC_OVERRIDE,
            CAP_DAC_READ_SEARCH,
            CAP_FOWNER,
            CAP_FSETID,
            CAP_LINUX_IMMUTABLE,
            CAP_MKNOD,
            CAP_MAC_OVERRIDE,
        ]);
        assert_eq!(sys!(SYS_setfsuid, OTHER), Ok(0), "setfsuid returns the old fsuid");
        assert_eq!(capget().0, e0 & !fs, "effective with fsuid OTHER");
        assert_eq!(sys!(SYS_setfsuid, 0), Ok(OTHER as i64));
        assert_eq!(capget().0, e0, "effective with fsuid 0 again");
    });
}

fn set_user_ids_need_cap_setuid() {
    as_who(RootWithout(&[CAP_SETUID]), || {
        assert_errno!(sys!(SYS_setresuid, OTHER, OTHER, OTHER), EPERM);
        assert_errno!(sys!(SYS_setuid, OTHER), EPERM);
    });
}

fn setgroups_needs_cap_setgid() {
    as_who(RootWithout(&[CAP_SETGID]), || {
        let groups = [GROUP];
        assert_errno!(sys!(SYS_setgroups, 1, groups.as_ptr()), EPERM);
    });
}

fn supplementary_groups_are_inherited_by_fork() {
    run_in_child(|| {
        let groups = [5u32, 6];
        sys!(SYS_setgroups, 2, groups.as_ptr()).unwrap();
        let pid = fork_child(|| {
            let mut got = [0u32; 8];
            let n = sys!(SYS_getgroups, 8, got.as_mut_ptr()).unwrap() as usize;
            (got[..n] == groups) as i32
        });
        assert_eq!(wait_child(pid), Exit::Code(1), "the child's groups differ");
    });
}

fn capbset_drop_removes_a_capability_from_the_bounding_set() {
    run_in_child(|| {
        assert_eq!(sys!(SYS_prctl, PR_CAPBSET_READ, CAP_SETPCAP), Ok(1));
        sys!(SYS_prctl, PR_CAPBSET_DROP, CAP_CHOWN).expect("PR_CAPBSET_DROP");
        assert_eq!(sys!(SYS_prctl, PR_CAPBSET_READ, CAP_CHOWN), Ok(0));
    });
}

// ---------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------

fn signalling_another_users_process_needs_cap_kill() {
    // A process of OTHER's, in another session (so SIGCONT gets no exemption).
    let (r, w) = user_tests::pipe(O_CLOEXEC).unwrap();
    let target = fork_child(|| {
        sys!(SYS_setsid).unwrap();
        set_ids(OTHER, OTHER, &[]);
        user_tests::write(w, b"x").unwrap();
        loop {
            unsafe { pause() };
        }
    });
    close(w).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(user_tests::read(r, &mut b), Ok(1), "the target did not start");
    close(r).unwrap();
    let cases: &[(Who, i32, Option<i32>)] = &[
        (Other, 0, None),
        (Member, 0, Some(EPERM)),
        (Member, SIGCONT, Some(EPERM)),
        (Root, 0, None),
        (RootWithout(&[CAP_KILL]), 0, Some(EPERM)),
    ];
    for &(who, sig, expect) in cases {
        expect_as(who, expect, &format!("kill(OTHER's process, {sig})"), || outcome(sys!(SYS_kill, target, sig)));
    }
    sys!(SYS_kill, target, SIGKILL).unwrap();
    assert_eq!(wait_child(target), Exit::Signal(SIGKILL));
}

// ---------------------------------------------------------------------------------------
// Resource limits
// ---------------------------------------------------------------------------------------

/// Anyone may lower a hard limit; raising it needs CAP_SYS_RESOURCE. Root has it unless it
/// is dropped, or withheld from the bounding set (a container may run the tests as root
/// without it, and then root gets EPERM as well).
fn raising_a_hard_limit_needs_cap_sys_resource() {
    let root_has_it = capget().0 & bits(&[CAP_SYS_RESOURCE]) != 0;
    let cases: &[(Who, Option<i32>)] = &[
        (Root, if root_has_it { None } else { Some(EPERM) }),
        (RootWithout(&[CAP_SYS_RESOURCE]), Some(EPERM)),
        (Other, Some(EPERM)),
    ];
    for &(who, expect) in cases {
        expect_as(who, expect, "raising RLIMIT_NOFILE's hard limit from 128 to 256", || {
            let lower = rlimit { rlim_cur: 64, rlim_max: 128 };
            sys!(SYS_setrlimit, RLIMIT_NOFILE, &lower as *const rlimit).expect("lowering a hard limit");
            let raise = rlimit { rlim_cur: 64, rlim_max: 256 };
            outcome(sys!(SYS_setrlimit, RLIMIT_NOFILE, &raise as *const rlimit))
        });
    }
}

/// RLIMIT_NOFILE's hard limit may not pass `fs.nr_open` (2^20 unless changed), whatever the
/// capabilities: Linux checks that before CAP_SYS_RESOURCE.
fn rlimit_nofile_stops_at_nr_open_even_with_cap_sys_resource() {
    let nr_open: u64 =
        std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1 << 20);
    let root_has_it = capget().0 & bits(&[CAP_SYS_RESOURCE]) != 0;
    let set = |max: u64| {
        let r = rlimit { rlim_cur: 64, rlim_max: max };
        outcome(sys!(SYS_setrlimit, RLIMIT_NOFILE, &r as *const rlimit))
    };
    as_who(Root, || {
        set(1024).expect("lowering a hard limit");
        assert_eq!(set(nr_open + 1), Err(EPERM), "a hard limit past nr_open {nr_open}");
        let want = if root_has_it { Ok(()) } else { Err(EPERM) };
        assert_eq!(set(nr_open), want, "a hard limit of nr_open {nr_open}, CAP_SYS_RESOURCE: {root_has_it}");
    });
}
