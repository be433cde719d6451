//! Extended attributes on tmpfs: set/get/list/remove by path, by link and by descriptor,
//! their flags and size rules, the namespaces' permissions (`trusted.` and `security.`
//! for CAP_SYS_ADMIN), and the files that keep none (procfs, pipes). `user.` attributes
//! are left out: tmpfs has them since Linux 6.6, and the oracle is 6.1.

use libc::*;
use user_tests::{
    assert_errno, close, cstr, open, pipe, run_in_child, run_tests, sys, tests, Errno, TmpfsMount, BAD_PTR,
};

fn main() {
    run_tests(
        "xattr",
        tests![
            trusted_attribute_set_by_root_reads_back,
            getxattr_with_size_zero_returns_the_length_only,
            getxattr_into_a_short_buffer_is_erange,
            getxattr_of_a_missing_attribute_is_enodata,
            an_empty_value_is_an_attribute_of_length_zero,
            setxattr_replaces_a_value,
            xattr_create_of_an_existing_attribute_is_eexist,
            xattr_replace_of_a_missing_attribute_is_enodata,
            setxattr_with_unknown_flags_is_einval,
            empty_and_overlong_names_are_erange,
            a_name_of_255_bytes_is_accepted,
            a_namespace_prefix_alone_is_einval,
            an_unknown_namespace_is_eopnotsupp,
            values_over_64_kib_are_e2big,
            bad_name_and_value_pointers_are_efault,
            listxattr_names_each_attribute_with_its_nul,
            listxattr_with_size_zero_returns_the_length_only,
            listxattr_into_a_short_buffer_is_erange,
            removexattr_deletes_and_a_second_removal_is_enodata,
            trusted_attributes_are_hidden_from_users_without_cap_sys_admin,
            setting_a_security_attribute_needs_cap_sys_admin,
            posix_acl_of_a_file_without_one_is_enodata,
            removing_an_acl_no_file_has_succeeds,
            lgetxattr_reads_the_link_and_getxattr_its_target,
            fgetxattr_reads_through_a_descriptor,
            f_calls_on_an_o_path_descriptor_are_ebadf,
            a_pipe_keeps_no_attributes,
            procfs_files_keep_no_attributes,
            attributes_stay_with_the_inode_through_rename_and_links,
        ],
    );
}

fn set(path: &str, name: &str, value: &[u8], flags: i32) -> Result<i64, Errno> {
    let (p, n) = (cstr(path), cstr(name));
    sys!(SYS_setxattr, p.as_ptr(), n.as_ptr(), value.as_ptr(), value.len(), flags)
}

fn get(path: &str, name: &str, buf: &mut [u8]) -> Result<i64, Errno> {
    let (p, n) = (cstr(path), cstr(name));
    sys!(SYS_getxattr, p.as_ptr(), n.as_ptr(), buf.as_mut_ptr(), buf.len())
}

fn get_value(path: &str, name: &str) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 4096];
    let n = get(path, name, &mut buf)? as usize;
    buf.truncate(n);
    Ok(buf)
}

fn list(path: &str, buf: &mut [u8]) -> Result<i64, Errno> {
    let p = cstr(path);
    sys!(SYS_listxattr, p.as_ptr(), buf.as_mut_ptr(), buf.len())
}

/// The names listxattr gives, sorted (the order differs between Linux versions).
fn names(path: &str) -> Vec<String> {
    let mut buf = vec![0u8; 4096];
    let n = list(path, &mut buf).unwrap() as usize;
    assert_eq!(buf[..n].last().copied().unwrap_or(0), 0, "the list ends with a NUL");
    let mut v: Vec<String> =
        buf[..n].split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8(s.to_vec()).unwrap()).collect();
    v.sort();
    v
}

fn remove(path: &str, name: &str) -> Result<i64, Errno> {
    let (p, n) = (cstr(path), cstr(name));
    sys!(SYS_removexattr, p.as_ptr(), n.as_ptr())
}

/// A tmpfs with one empty file, world-readable, `f`.
fn with_file() -> (TmpfsMount, String) {
    let m = TmpfsMount::new("");
    let f = format!("{}/f", m.mnt);
    std::fs::write(&f, b"data").unwrap();
    (m, f)
}

fn trusted_attribute_set_by_root_reads_back() {
    let (_m, f) = with_file();
    set(&f, "trusted.colour", b"blue", 0).unwrap();
    assert_eq!(get_value(&f, "trusted.colour").unwrap(), b"blue");
}

fn getxattr_with_size_zero_returns_the_length_only() {
    let (_m, f) = with_file();
    set(&f, "trusted.a", b"12345", 0).unwrap();
    let (p, n) = (cstr(&f), cstr("trusted.a"));
    assert_eq!(sys!(SYS_getxattr, p.as_ptr(), n.as_ptr(), BAD_PTR, 0), Ok(5));
}

fn getxattr_into_a_short_buffer_is_erange() {
    let (_m, f) = with_file();
    set(&f, "trusted.a", b"12345", 0).unwrap();
    assert_errno!(get(&f, "trusted.a", &mut [0u8; 4]), ERANGE);
    assert_eq!(get(&f, "trusted.a", &mut [0u8; 5]), Ok(5));
}

fn getxattr_of_a_missing_attribute_is_enodata() {
    let (_m, f) = with_file();
    assert_errno!(get(&f, "trusted.none", &mut [0u8; 16]), ENODATA);
    assert_errno!(get(&f, "security.none", &mut [0u8; 16]), ENODATA);
}

fn an_empty_value_is_an_attribute_of_length_zero() {
    let (_m, f) = with_file();
    set(&f, "trusted.empty", b"", 0).unwrap();
    assert_eq!(get(&f, "trusted.empty", &mut [0u8; 4]), Ok(0));
    assert_eq!(names(&f), ["trusted.empty"]);
}

fn setxattr_replaces_a_value() {
    let (_m, f) = with_file();
    set(&f, "trusted.a", b"first, long", 0).unwrap();
    set(&f, "trusted.a", b"2nd", 0).unwrap();
    assert_eq!(get_value(&f, "trusted.a").unwrap(), b"2nd");
    set(&f, "trusted.a", b"third", XATTR_REPLACE).unwrap();
    assert_eq!(get_value(&f, "trusted.a").unwrap(), b"third");
}

fn xattr_create_of_an_existing_attribute_is_eexist() {
    let (_m, f) = with_file();
    set(&f, "trusted.a", b"1", XATTR_CREATE).unwrap();
    assert_errno!(set(&f, "trusted.a", b"2", XATTR_CREATE), EEXIST);
    assert_eq!(get_value(&f, "trusted.a").unwrap(), b"1");
}

fn xattr_replace_of_a_missing_attribute_is_enodata() {
    let (_m, f) = with_file();
    assert_errno!(set(&f, "trusted.a", b"1", XATTR_REPLACE), ENODATA);
    assert_errno!(get(&f, "trusted.a", &mut [0u8; 4]), ENODATA);
}

fn setxattr_with_unknown_flags_is_einval() {
    let (_m, f) = with_file();
    assert_errno!(set(&f, "trusted.a", b"1", 4), EINVAL);
    assert_errno!(set(&f, "trusted.a", b"1", XATTR_CREATE | XATTR_REPLACE | 0x100), EINVAL);
}

fn empty_and_overlong_names_are_erange() {
    let (_m, f) = with_file();
    let long = format!("trusted.{}", "n".repeat(248));
    assert_eq!(long.len(), 256);
    assert_errno!(set(&f, "", b"1", 0), ERANGE);
    assert_errno!(set(&f, &long, b"1", 0), ERANGE);
    assert_errno!(get(&f, "", &mut [0u8; 4]), ERANGE);
    assert_errno!(get(&f, &long, &mut [0u8; 4]), ERANGE);
    assert_errno!(remove(&f, &long), ERANGE);
}

fn a_name_of_255_bytes_is_accepted() {
    let (_m, f) = with_file();
    let name = format!("trusted.{}", "n".repeat(247));
    set(&f, &name, b"1", 0).unwrap();
    assert_eq!(get_value(&f, &name).unwrap(), b"1");
}

fn a_namespace_prefix_alone_is_einval() {
    let (_m, f) = with_file();
    assert_errno!(set(&f, "trusted.", b"1", 0), EINVAL);
    assert_errno!(get(&f, "security.", &mut [0u8; 4]), EINVAL);
}

fn an_unknown_namespace_is_eopnotsupp() {
    let (_m, f) = with_file();
    assert_errno!(set(&f, "colour", b"1", 0), EOPNOTSUPP);
    assert_errno!(get(&f, "nonsense.a", &mut [0u8; 4]), EOPNOTSUPP);
}

fn values_over_64_kib_are_e2big() {
    let (_m, f) = with_file();
    let big = vec![7u8; 65537];
    assert_errno!(set(&f, "trusted.big", &big, 0), E2BIG);
    assert_errno!(get(&f, "trusted.big", &mut [0u8; 4]), ENODATA);
}

fn bad_name_and_value_pointers_are_efault() {
    let (_m, f) = with_file();
    let (p, n) = (cstr(&f), cstr("trusted.a"));
    assert_errno!(sys!(SYS_setxattr, p.as_ptr(), BAD_PTR, b"1".as_ptr(), 1, 0), EFAULT);
    assert_errno!(sys!(SYS_setxattr, p.as_ptr(), n.as_ptr(), BAD_PTR, 1, 0), EFAULT);
    set(&f, "trusted.a", b"1", 0).unwrap();
    assert_errno!(sys!(SYS_getxattr, p.as_ptr(), n.as_ptr(), BAD_PTR, 16), EFAULT);
    assert_errno!(sys!(SYS_listxattr, p.as_ptr(), BAD_PTR, 16), EFAULT);
}

fn listxattr_names_each_attribute_with_its_nul() {
    let (_m, f) = with_file();
    assert_eq!(names(&f), Vec::<String>::new());
    set(&f, "trusted.b", b"1", 0).unwrap();
    set(&f, "trusted.a", b"2", 0).unwrap();
    set(&f, "security.c", b"3", 0).unwrap();
    assert_eq!(names(&f), ["security.c", "trusted.a", "trusted.b"]);
}

fn listxattr_with_size_zero_returns_the_length_only() {
    let (_m, f) = with_file();
    set(&f, "trusted.ab", b"1", 0).unwrap();
    let p = cstr(&f);
    assert_eq!(sys!(SYS_listxattr, p.as_ptr(), BAD_PTR, 0), Ok("trusted.ab\0".len() as i64));
}

fn listxattr_into_a_short_buffer_is_erange() {
    let (_m, f) = with_file();
    set(&f, "trusted.ab", b"1", 0).unwrap();
    assert_errno!(list(&f, &mut [0u8; 10]), ERANGE);
    assert_eq!(list(&f, &mut [0u8; 11]), Ok(11));
}

fn removexattr_deletes_and_a_second_removal_is_enodata() {
    let (_m, f) = with_file();
    set(&f, "trusted.a", b"1", 0).unwrap();
    remove(&f, "trusted.a").unwrap();
    assert_errno!(get(&f, "trusted.a", &mut [0u8; 4]), ENODATA);
    assert_errno!(remove(&f, "trusted.a"), ENODATA);
    assert_eq!(names(&f), Vec::<String>::new());
}

fn trusted_attributes_are_hidden_from_users_without_cap_sys_admin() {
    let (_m, f) = with_file();
    set(&f, "trusted.secret", b"1", 0).unwrap();
    set(&f, "security.open", b"2", 0).unwrap();
    sys!(SYS_chmod, cstr(&f).as_ptr(), 0o666).unwrap();
    run_in_child(|| {
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(get(&f, "trusted.secret", &mut [0u8; 4]), ENODATA);
        assert_eq!(names(&f), ["security.open"]);
        assert_errno!(set(&f, "trusted.other", b"1", 0), EPERM);
        assert_errno!(remove(&f, "trusted.secret"), EPERM);
        assert_eq!(get_value(&f, "security.open").unwrap(), b"2");
    });
}

fn setting_a_security_attribute_needs_cap_sys_admin() {
    let (_m, f) = with_file();
    sys!(SYS_chmod, cstr(&f).as_ptr(), 0o666).unwrap();
    set(&f, "security.label", b"x", 0).unwrap();
    run_in_child(|| {
        sys!(SYS_setuid, 1000).unwrap();
        assert_errno!(set(&f, "security.other", b"1", 0), EPERM);
        assert_errno!(remove(&f, "security.label"), EPERM);
    });
}

fn posix_acl_of_a_file_without_one_is_enodata() {
    let (m, f) = with_file();
    assert_errno!(get(&f, "system.posix_acl_access", &mut [0u8; 64]), ENODATA);
    assert_errno!(get(&m.mnt, "system.posix_acl_default", &mut [0u8; 64]), ENODATA);
    assert_eq!(names(&f), Vec::<String>::new());
}

fn removing_an_acl_no_file_has_succeeds() {
    let (m, f) = with_file();
    remove(&f, "system.posix_acl_access").unwrap();
    remove(&m.mnt, "system.posix_acl_default").unwrap();
}

fn lgetxattr_reads_the_link_and_getxattr_its_target() {
    let (m, f) = with_file();
    let link = format!("{}/link", m.mnt);
    std::os::unix::fs::symlink(&f, &link).unwrap();
    set(&link, "trusted.on", b"target", 0).unwrap();
    let (l, on, at) = (cstr(&link), cstr("trusted.on"), cstr("trusted.at"));
    sys!(SYS_lsetxattr, l.as_ptr(), at.as_ptr(), b"link".as_ptr(), 4, 0).unwrap();
    let mut buf = [0u8; 16];
    assert_errno!(sys!(SYS_lgetxattr, l.as_ptr(), on.as_ptr(), buf.as_mut_ptr(), buf.len()), ENODATA);
    assert_eq!(sys!(SYS_lgetxattr, l.as_ptr(), at.as_ptr(), buf.as_mut_ptr(), buf.len()), Ok(4));
    assert_eq!(&buf[..4], b"link");
    assert_eq!(get_value(&f, "trusted.on").unwrap(), b"target");
    assert_errno!(get(&f, "trusted.at", &mut buf), ENODATA);
    let mut lbuf = [0u8; 64];
    let n = sys!(SYS_llistxattr, l.as_ptr(), lbuf.as_mut_ptr(), lbuf.len()).unwrap() as usize;
    assert_eq!(&lbuf[..n], b"trusted.at\0");
    sys!(SYS_lremovexattr, l.as_ptr(), at.as_ptr()).unwrap();
    assert_eq!(sys!(SYS_llistxattr, l.as_ptr(), lbuf.as_mut_ptr(), lbuf.len()), Ok(0));
}

fn fgetxattr_reads_through_a_descriptor() {
    let (_m, f) = with_file();
    let fd = open(&f, O_RDONLY, 0).unwrap();
    let n = cstr("trusted.fd");
    sys!(SYS_fsetxattr, fd, n.as_ptr(), b"v".as_ptr(), 1, 0).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sys!(SYS_fgetxattr, fd, n.as_ptr(), buf.as_mut_ptr(), buf.len()), Ok(1));
    assert_eq!(sys!(SYS_flistxattr, fd, buf.as_mut_ptr(), buf.len()), Ok(11));
    sys!(SYS_fremovexattr, fd, n.as_ptr()).unwrap();
    assert_errno!(get(&f, "trusted.fd", &mut buf), ENODATA);
    close(fd).unwrap();
    assert_errno!(sys!(SYS_fgetxattr, fd, n.as_ptr(), buf.as_mut_ptr(), buf.len()), EBADF);
}

fn f_calls_on_an_o_path_descriptor_are_ebadf() {
    let (_m, f) = with_file();
    set(&f, "trusted.a", b"1", 0).unwrap();
    let fd = open(&f, O_PATH, 0).unwrap();
    let n = cstr("trusted.a");
    let mut buf = [0u8; 8];
    assert_errno!(sys!(SYS_fgetxattr, fd, n.as_ptr(), buf.as_mut_ptr(), buf.len()), EBADF);
    assert_errno!(sys!(SYS_fsetxattr, fd, n.as_ptr(), b"v".as_ptr(), 1, 0), EBADF);
    assert_errno!(sys!(SYS_flistxattr, fd, buf.as_mut_ptr(), buf.len()), EBADF);
    assert_errno!(sys!(SYS_fremovexattr, fd, n.as_ptr()), EBADF);
    close(fd).unwrap();
}

fn a_pipe_keeps_no_attributes() {
    let (r, w) = pipe(0).unwrap();
    let n = cstr("trusted.a");
    let mut buf = [0u8; 8];
    assert_errno!(sys!(SYS_fsetxattr, w, n.as_ptr(), b"v".as_ptr(), 1, 0), EOPNOTSUPP);
    assert_errno!(sys!(SYS_fgetxattr, r, n.as_ptr(), buf.as_mut_ptr(), buf.len()), EOPNOTSUPP);
    assert_eq!(sys!(SYS_flistxattr, r, buf.as_mut_ptr(), buf.len()), Ok(0));
    close(r).unwrap();
    close(w).unwrap();
}

fn procfs_files_keep_no_attributes() {
    let p = "/proc/self/status";
    assert_errno!(get(p, "trusted.a", &mut [0u8; 8]), EOPNOTSUPP);
    assert_errno!(set(p, "trusted.a", b"1", 0), EOPNOTSUPP);
    assert_eq!(list(p, &mut [0u8; 8]), Ok(0));
}

fn attributes_stay_with_the_inode_through_rename_and_links() {
    let (m, f) = with_file();
    set(&f, "trusted.a", b"kept", 0).unwrap();
    let moved = format!("{}/moved", m.mnt);
    let linked = format!("{}/linked", m.mnt);
    std::fs::rename(&f, &moved).unwrap();
    std::fs::hard_link(&moved, &linked).unwrap();
    assert_eq!(get_value(&moved, "trusted.a").unwrap(), b"kept");
    set(&linked, "trusted.b", b"via link", 0).unwrap();
    assert_eq!(names(&moved), ["trusted.a", "trusted.b"]);
}
