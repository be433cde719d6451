//! Isolation: a process cannot read or write another's memory except through a shared
//! object it was allowed to map. Another process's memory through process_vm_readv/writev
//! and /proc/PID/{mem,pagemap,maps} (Linux's ptrace access checks); private mappings
//! after fork; the file's open mode and permissions against the mapping's protection;
//! what an unmapped or freed page shows next.

use libc::*;
use user_tests::{
    assert_errno, child_exit, close, fork_child, load_byte, mmap, mmap_anon, open, pipe, read, run_in_child, run_tests,
    store_byte, sys, tests, wait_child, write, Errno, Exit, TempDir, PAGE,
};

fn main() {
    run_tests(
        "isolation",
        tests![
            process_vm_readv_of_another_users_process_reads_nothing,
            process_vm_writev_to_another_users_process_writes_nothing,
            proc_mem_of_another_users_process_cannot_be_read,
            proc_pagemap_of_another_users_process_is_eacces,
            proc_maps_of_another_users_process_is_eacces,
            child_writes_to_private_anonymous_memory_are_not_seen_by_parent,
            child_writes_to_private_file_mapping_reach_neither_parent_nor_file,
            shared_mapping_of_read_only_fd_with_prot_write_is_eacces,
            mprotect_to_write_of_shared_mapping_of_read_only_fd_is_eacces,
            mapping_of_write_only_fd_is_eacces,
            private_writable_mapping_of_read_only_fd_leaves_the_file_unchanged,
            write_to_read_only_shared_file_mapping_is_sigsegv_and_file_unchanged,
            access_after_munmap_is_sigsegv,
            new_mapping_at_an_unmapped_address_sees_zeroes_not_old_data,
            pages_freed_by_one_process_are_zero_when_another_gets_them,
            unprivileged_user_cannot_open_unreadable_file_to_map_it,
        ],
    );
}

/// Drops to uid and gid 65534 (nobody): every capability goes.
fn become_nobody() {
    sys!(SYS_setgroups, 0, 0).unwrap();
    sys!(SYS_setresgid, 65534, 65534, 65534).unwrap();
    sys!(SYS_setresuid, 65534, 65534, 65534).unwrap();
}

/// A root child holding `len` bytes of one value at `addr` until it is released; it
/// exits 0 if they never changed. Dropped without `release` (a failed test), it is
/// ended and reaped all the same.
struct Holder {
    pid: i32,
    addr: usize,
    release_fd: i32,
}

impl Holder {
    fn new(len: usize, byte: u8) -> Holder {
        let (ar, aw) = pipe(O_CLOEXEC).unwrap();
        let (rr, rw) = pipe(O_CLOEXEC).unwrap();
        let pid = fork_child(|| {
            close(rw).unwrap();
            let a = mmap_anon(len);
            unsafe { std::ptr::write_bytes(a as *mut u8, byte, len) };
            write(aw, &a.to_ne_bytes()).unwrap();
            let mut b = [0u8; 1];
            let _ = read(rr, &mut b);
            let intact = unsafe { std::slice::from_raw_parts(a as *const u8, len) }.iter().all(|&x| x == byte);
            if intact {
                0
            } else {
                1
            }
        });
        close(aw).unwrap();
        close(rr).unwrap();
        let mut buf = [0u8; 8];
        let n = read(ar, &mut buf);
        close(ar).unwrap();
        let h = Holder { pid, addr: usize::from_ne_bytes(buf), release_fd: rw };
        assert_eq!(n, Ok(8), "the holder did not report its address");
        h
    }

    /// Ends the holder and checks its memory was never changed.
    fn release(mut self) {
        close(self.release_fd).unwrap();
        self.release_fd = -1;
        assert_eq!(wait_child(self.pid), Exit::Code(0), "the holder's memory changed");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if self.release_fd >= 0 {
            let _ = close(self.release_fd);
            let _ = wait_child(self.pid);
        }
    }
}

/// Linux: EPERM (ptrace access check); a kernel without the call: ENOSYS.
fn process_vm_readv_of_another_users_process_reads_nothing() {
    let h = Holder::new(PAGE, 0x42);
    let (pid, addr) = (h.pid, h.addr);
    run_in_child(|| {
        become_nobody();
        let mut buf = [0u8; 64];
        let local = iovec { iov_base: buf.as_mut_ptr() as *mut c_void, iov_len: buf.len() };
        let remote = iovec { iov_base: addr as *mut c_void, iov_len: buf.len() };
        let r = sys!(SYS_process_vm_readv, pid, &local as *const iovec, 1, &remote as *const iovec, 1, 0);
        assert!(matches!(r, Err(Errno(EPERM)) | Err(Errno(ENOSYS))), "process_vm_readv: {r:?}");
        assert!(buf.iter().all(|&b| b == 0), "bytes of the other process arrived");
    });
    h.release();
}

fn process_vm_writev_to_another_users_process_writes_nothing() {
    let h = Holder::new(PAGE, 0x42);
    let (pid, addr) = (h.pid, h.addr);
    run_in_child(|| {
        become_nobody();
        let buf = [0x99u8; 64];
        let local = iovec { iov_base: buf.as_ptr() as *mut c_void, iov_len: buf.len() };
        let remote = iovec { iov_base: addr as *mut c_void, iov_len: buf.len() };
        let r = sys!(SYS_process_vm_writev, pid, &local as *const iovec, 1, &remote as *const iovec, 1, 0);
        assert!(matches!(r, Err(Errno(EPERM)) | Err(Errno(ENOSYS))), "process_vm_writev: {r:?}");
    });
    h.release();
}

/// Linux: EACCES at open (mode 0600, owned by the other user); a kernel without the
/// file: ENOENT. Either way no byte is read.
fn proc_mem_of_another_users_process_cannot_be_read() {
    let h = Holder::new(PAGE, 0x42);
    let (pid, addr) = (h.pid, h.addr);
    run_in_child(|| {
        become_nobody();
        match open(&format!("/proc/{pid}/mem"), O_RDONLY, 0) {
            Err(Errno(EACCES)) | Err(Errno(ENOENT)) => {}
            Err(e) => panic!("open /proc/{pid}/mem: {e}"),
            Ok(m) => {
                let mut buf = [0u8; 16];
                let r = sys!(SYS_pread64, m, buf.as_mut_ptr(), buf.len(), addr);
                assert!(r.is_err(), "read another user's memory: {buf:?}");
            }
        }
    });
    h.release();
}

/// Opens `/proc/PID/NAME` as nobody and reads from it: EACCES at the open (Linux) or at
/// the first read.
fn proc_file_of_other_user_is_eacces(name: &str, offset_of: fn(usize) -> usize) {
    let h = Holder::new(PAGE, 0x42);
    let (pid, addr) = (h.pid, h.addr);
    let path = format!("/proc/{pid}/{name}");
    let offset = offset_of(addr);
    run_in_child(|| {
        become_nobody();
        match open(&path, O_RDONLY, 0) {
            Err(e) => assert_eq!(e, Errno(EACCES), "open {path}"),
            Ok(f) => {
                let mut buf = [0u8; 64];
                let r = sys!(SYS_pread64, f, buf.as_mut_ptr(), 8, offset);
                assert_errno!(r, EACCES);
            }
        }
    });
    h.release();
}

fn proc_pagemap_of_another_users_process_is_eacces() {
    proc_file_of_other_user_is_eacces("pagemap", |addr| addr / PAGE * 8);
}

fn proc_maps_of_another_users_process_is_eacces() {
    proc_file_of_other_user_is_eacces("maps", |_| 0);
}

fn child_writes_to_private_anonymous_memory_are_not_seen_by_parent() {
    let a = mmap_anon(4 * PAGE);
    unsafe { std::ptr::write_bytes(a as *mut u8, 0x11, 4 * PAGE) };
    let mut on_stack = [0x22u8; 256];
    let heap = vec![0x33u8; 256];
    let (sp, hp) = (on_stack.as_mut_ptr() as usize, heap.as_ptr() as usize);
    let exit = child_exit(|| {
        unsafe {
            std::ptr::write_bytes(a as *mut u8, 0xee, 4 * PAGE);
            std::ptr::write_bytes(sp as *mut u8, 0xee, 256);
            std::ptr::write_bytes(hp as *mut u8, 0xee, 256);
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
    let mapped = unsafe { std::slice::from_raw_parts(a as *const u8, 4 * PAGE) };
    assert!(mapped.iter().all(|&b| b == 0x11), "the child's write reached the parent's mapping");
    assert!(std::hint::black_box(&on_stack).iter().all(|&b| b == 0x22), "the child's write reached the parent's stack");
    assert!(std::hint::black_box(&heap).iter().all(|&b| b == 0x33), "the child's write reached the parent's heap");
    sys!(SYS_munmap, a, 4 * PAGE).unwrap();
}

fn child_writes_to_private_file_mapping_reach_neither_parent_nor_file() {
    let dir = TempDir::new();
    let path = dir.file("f", &[0x44u8; PAGE]);
    let fd = open(&path, O_RDWR, 0).unwrap();
    let a = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(load_byte(a), 0x44);
    let exit = child_exit(|| {
        unsafe { std::ptr::write_bytes(a as *mut u8, 0xee, PAGE) };
        0
    });
    assert_eq!(exit, Exit::Code(0));
    assert!(unsafe { std::slice::from_raw_parts(a as *const u8, PAGE) }.iter().all(|&b| b == 0x44));
    assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 0x44), "a private write reached the file");
    sys!(SYS_munmap, a, PAGE).unwrap();
    close(fd).unwrap();
}

fn shared_mapping_of_read_only_fd_with_prot_write_is_eacces() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", &[1u8; PAGE]), O_RDONLY, 0).unwrap();
    assert_errno!(mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    close(fd).unwrap();
}

fn mprotect_to_write_of_shared_mapping_of_read_only_fd_is_eacces() {
    let dir = TempDir::new();
    let path = dir.file("f", &[1u8; PAGE]);
    let fd = open(&path, O_RDONLY, 0).unwrap();
    let a = mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0).unwrap();
    close(fd).unwrap();
    assert_errno!(sys!(SYS_mprotect, a, PAGE, PROT_READ | PROT_WRITE), EACCES);
    assert_eq!(
        child_exit(|| {
            store_byte(a, 9);
            0
        }),
        Exit::Signal(SIGSEGV)
    );
    assert_eq!(std::fs::read(&path).unwrap()[0], 1);
    sys!(SYS_munmap, a, PAGE).unwrap();
}

/// mmap needs a readable file whatever the protection.
fn mapping_of_write_only_fd_is_eacces() {
    let dir = TempDir::new();
    let fd = open(&dir.file("f", &[1u8; PAGE]), O_WRONLY, 0).unwrap();
    assert_errno!(mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0), EACCES);
    assert_errno!(mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0), EACCES);
    close(fd).unwrap();
}

fn private_writable_mapping_of_read_only_fd_leaves_the_file_unchanged() {
    let dir = TempDir::new();
    let path = dir.file("f", &[5u8; PAGE]);
    let fd = open(&path, O_RDONLY, 0).unwrap();
    let a = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0).unwrap();
    store_byte(a, 6);
    assert_eq!(load_byte(a), 6);
    assert_eq!(std::fs::read(&path).unwrap()[0], 5);
    sys!(SYS_munmap, a, PAGE).unwrap();
    close(fd).unwrap();
}

fn write_to_read_only_shared_file_mapping_is_sigsegv_and_file_unchanged() {
    let dir = TempDir::new();
    let path = dir.file("f", &[7u8; PAGE]);
    let fd = open(&path, O_RDWR, 0).unwrap();
    let a = mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0).unwrap();
    close(fd).unwrap();
    let exit = child_exit(|| {
        store_byte(a + 10, 8);
        0
    });
    assert_eq!(exit, Exit::Signal(SIGSEGV));
    assert_eq!(std::fs::read(&path).unwrap()[10], 7);
    assert_eq!(load_byte(a + 10), 7);
    sys!(SYS_munmap, a, PAGE).unwrap();
}

fn access_after_munmap_is_sigsegv() {
    let a = mmap_anon(PAGE);
    store_byte(a, 1);
    sys!(SYS_munmap, a, PAGE).unwrap();
    assert_eq!(child_exit(|| load_byte(a) as i32), Exit::Signal(SIGSEGV));
    assert_eq!(
        child_exit(|| {
            store_byte(a, 2);
            0
        }),
        Exit::Signal(SIGSEGV)
    );
}

fn new_mapping_at_an_unmapped_address_sees_zeroes_not_old_data() {
    let len = 8 * PAGE;
    let a = mmap_anon(len);
    unsafe { std::ptr::write_bytes(a as *mut u8, 0xa5, len) };
    sys!(SYS_munmap, a, len).unwrap();
    let b = mmap(a, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0).unwrap();
    assert_eq!(b, a);
    assert!(unsafe { std::slice::from_raw_parts(b as *const u8, len) }.iter().all(|&x| x == 0));
    sys!(SYS_munmap, b, len).unwrap();
}

/// A word that zero-filled or freshly written memory will not hold by chance.
const SECRET: u64 = 0x5ec2_e75e_c2e7_5ec2;

/// One process fills 16 MiB with a secret and exits; another then maps and reads 64 MiB
/// (most likely reusing those frames): every byte it sees is zero.
fn pages_freed_by_one_process_are_zero_when_another_gets_them() {
    const WRITTEN: usize = 16 << 20;
    const READ: usize = 64 << 20;
    let writer = child_exit(|| {
        let a = mmap_anon(WRITTEN);
        let words = unsafe { std::slice::from_raw_parts_mut(a as *mut u64, WRITTEN / 8) };
        words.iter_mut().for_each(|w| *w = SECRET);
        0
    });
    assert_eq!(writer, Exit::Code(0));
    let reader = child_exit(|| {
        let a = mmap_anon(READ);
        let words = unsafe { std::slice::from_raw_parts(a as *const u64, READ / 8) };
        // One word per page is enough to fault each page in; then every word is checked.
        let nonzero = words.iter().filter(|&&w| w != 0).count();
        if nonzero == 0 {
            0
        } else if words.contains(&SECRET) {
            1
        } else {
            2
        }
    });
    assert_eq!(reader, Exit::Code(0), "1: the other process's data, 2: non-zero bytes");
}

fn unprivileged_user_cannot_open_unreadable_file_to_map_it() {
    let dir = TempDir::new();
    let path = dir.file("secret", &[0x66u8; PAGE]);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    run_in_child(|| {
        become_nobody();
        assert_errno!(open(&path, O_RDONLY, 0), EACCES);
        assert_errno!(open(&path, O_RDWR, 0), EACCES);
    });
}
