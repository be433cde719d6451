//! System V semaphores (Linux's ipc/sem.c): semget's rules, semop's all-or-nothing
//! operations, sleeping and waking (by another process, a signal, a timeout, removal),
//! SEM_UNDO at exit, semctl's commands and figures, permissions, /proc/sysvipc/sem.

use libc::*;
use user_tests::{
    assert_errno, fork_child, handler, run_in_child, run_tests, set_handler, sys, tests, wait_child, wait_until, Errno,
    Exit, BAD_PTR,
};

fn main() {
    run_tests(
        "sysv_sem",
        tests![
            a_new_set_has_n_semaphores_at_zero,
            semget_checks_nsems_and_keys,
            a_semop_applies_all_its_operations_or_none,
            a_semop_past_semvmx_is_erange,
            semop_arguments_are_checked_in_linux_order,
            a_blocked_decrement_wakes_when_another_process_adds,
            a_wait_for_zero_wakes_when_the_value_reaches_zero,
            semtimedop_gives_up_with_eagain,
            a_signal_ends_a_semop_with_eintr_even_with_sa_restart,
            removal_wakes_sleepers_with_eidrm,
            sem_undo_is_applied_when_the_process_exits,
            sem_undo_never_takes_a_value_below_zero,
            setval_clears_the_undo_adjustments,
            setval_checks_the_range_and_getpid_names_the_last_process,
            getall_and_setall_move_every_value,
            another_user_needs_the_mode_bits,
            ipc_info_and_sem_info_report_the_limits,
            proc_sysvipc_sem_lists_each_set,
            a_set_is_invisible_from_another_namespace_whose_sem_limits_are_its_own,
        ],
    )
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Sembuf {
    num: u16,
    op: i16,
    flg: i16,
}

const SEM_UNDO: i16 = 0x1000;
const NOWAIT: i16 = IPC_NOWAIT as i16;

fn op(num: u16, op: i16, flg: i16) -> Sembuf {
    Sembuf { num, op, flg }
}

fn key(n: i32) -> i32 {
    0x5300_0000 | ((unsafe { getpid() } & 0xffff) << 8) | n
}

fn semget(key: i32, n: i32, flg: i32) -> Result<i32, Errno> {
    sys!(SYS_semget, key, n, flg).map(|v| v as i32)
}

fn semop(id: i32, ops: &[Sembuf]) -> Result<i64, Errno> {
    sys!(SYS_semop, id, ops.as_ptr(), ops.len())
}

fn semctl(id: i32, num: i32, cmd: i32, arg: usize) -> Result<i64, Errno> {
    sys!(SYS_semctl, id, num, cmd, arg)
}

fn val(id: i32, n: i32) -> i64 {
    semctl(id, n, GETVAL, 0).unwrap()
}

fn setval(id: i32, n: i32, v: i32) {
    semctl(id, n, SETVAL, v as usize).unwrap();
}

fn rmid(id: i32) {
    semctl(id, 0, IPC_RMID, 0).unwrap();
}

fn private(n: i32) -> i32 {
    semget(IPC_PRIVATE, n, 0o600).unwrap()
}

/// `struct semid64_ds` of x86-64.
#[repr(C)]
#[derive(Default)]
struct SemidDs {
    perm: [u32; 6],
    seq: u16,
    pad: u16,
    unused: [u64; 2],
    otime: i64,
    unused1: u64,
    ctime: i64,
    unused2: u64,
    nsems: u64,
    unused3: u64,
    unused4: u64,
}

fn a_new_set_has_n_semaphores_at_zero() {
    let id = private(3);
    let mut ds = SemidDs::default();
    semctl(id, 0, IPC_STAT, &mut ds as *mut SemidDs as usize).unwrap();
    assert_eq!(ds.nsems, 3);
    assert_eq!(ds.perm[5], 0o600);
    assert_eq!(ds.otime, 0);
    assert!(ds.ctime > 0);
    let mut all = [7u16; 3];
    semctl(id, 0, GETALL, all.as_mut_ptr() as usize).unwrap();
    assert_eq!(all, [0, 0, 0]);
    rmid(id);
}

fn semget_checks_nsems_and_keys() {
    assert_errno!(semget(IPC_PRIVATE, 0, 0o600), EINVAL);
    assert_errno!(semget(IPC_PRIVATE, -1, 0o600), EINVAL);
    assert_errno!(semget(IPC_PRIVATE, 32001, 0o600), EINVAL);
    let id = semget(key(1), 2, IPC_CREAT | 0o600).unwrap();
    assert_eq!(semget(key(1), 2, 0), Ok(id));
    assert_eq!(semget(key(1), 0, 0), Ok(id));
    assert_errno!(semget(key(1), 3, 0), EINVAL);
    assert_errno!(semget(key(1), 2, IPC_CREAT | IPC_EXCL), EEXIST);
    rmid(id);
    assert_errno!(semget(key(1), 2, 0), ENOENT);
}

fn a_semop_applies_all_its_operations_or_none() {
    let id = private(2);
    setval(id, 0, 1);
    assert_errno!(semop(id, &[op(0, -1, NOWAIT), op(1, -1, NOWAIT)]), EAGAIN);
    assert_eq!((val(id, 0), val(id, 1)), (1, 0), "nothing applied");
    semop(id, &[op(0, -1, 0), op(1, 2, 0)]).unwrap();
    assert_eq!((val(id, 0), val(id, 1)), (0, 2));
    let mut ds = SemidDs::default();
    semctl(id, 0, IPC_STAT, &mut ds as *mut SemidDs as usize).unwrap();
    assert!(ds.otime > 0, "a semop sets sem_otime");
    rmid(id);
}

fn a_semop_past_semvmx_is_erange() {
    let id = private(1);
    setval(id, 0, 32767);
    assert_errno!(semop(id, &[op(0, 1, 0)]), ERANGE);
    assert_eq!(val(id, 0), 32767);
    rmid(id);
}

fn semop_arguments_are_checked_in_linux_order() {
    let id = private(2);
    assert_errno!(semop(id, &[]), EINVAL);
    assert_errno!(semop(-1, &[op(0, 1, 0)]), EINVAL);
    let many = vec![op(0, 0, 0); 501];
    assert_errno!(semop(id, &many), E2BIG);
    assert_errno!(sys!(SYS_semop, id, BAD_PTR, 1), EFAULT);
    assert_errno!(semop(id, &[op(2, 1, 0)]), EFBIG);
    let bad_ts = [0i64, 1_000_000_000];
    assert_errno!(sys!(SYS_semtimedop, id, [op(0, -1, 0)].as_ptr(), 1, bad_ts.as_ptr()), EINVAL);
    assert_errno!(sys!(SYS_semtimedop, id, [op(0, -1, 0)].as_ptr(), 1, BAD_PTR), EFAULT);
    rmid(id);
    assert_errno!(semop(id, &[op(0, 1, 0)]), EINVAL);
}

fn a_blocked_decrement_wakes_when_another_process_adds() {
    let id = private(1);
    let child = fork_child(move || if semop(id, &[op(0, -1, 0)]).is_ok() { 0 } else { 1 });
    assert!(wait_until(10_000, || semctl(id, 0, GETNCNT, 0) == Ok(1)), "the child never slept");
    assert_eq!(semctl(id, 0, GETZCNT, 0), Ok(0));
    semop(id, &[op(0, 1, 0)]).unwrap();
    assert_eq!(wait_child(child), Exit::Code(0));
    assert_eq!(val(id, 0), 0);
    assert_eq!(semctl(id, 0, GETNCNT, 0), Ok(0));
    rmid(id);
}

fn a_wait_for_zero_wakes_when_the_value_reaches_zero() {
    let id = private(1);
    setval(id, 0, 2);
    let child = fork_child(move || if semop(id, &[op(0, 0, 0)]).is_ok() { 0 } else { 1 });
    assert!(wait_until(10_000, || semctl(id, 0, GETZCNT, 0) == Ok(1)), "the child never slept");
    semop(id, &[op(0, -1, 0)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(semctl(id, 0, GETZCNT, 0), Ok(1), "still waiting at 1");
    semop(id, &[op(0, -1, 0)]).unwrap();
    assert_eq!(wait_child(child), Exit::Code(0));
    rmid(id);
}

fn semtimedop_gives_up_with_eagain() {
    let id = private(1);
    let ts = [0i64, 50_000_000];
    let t0 = std::time::Instant::now();
    assert_errno!(sys!(SYS_semtimedop, id, [op(0, -1, 0)].as_ptr(), 1, ts.as_ptr()), EAGAIN);
    assert!(t0.elapsed() >= std::time::Duration::from_millis(40));
    assert_eq!(semctl(id, 0, GETNCNT, 0), Ok(0), "no longer counted");
    rmid(id);
}

extern "C" fn on_usr1(_: c_int) {}

fn a_signal_ends_a_semop_with_eintr_even_with_sa_restart() {
    let id = private(1);
    run_in_child(move || {
        set_handler(SIGUSR1, handler(on_usr1), SA_RESTART, &[]).unwrap();
        let me = unsafe { getpid() };
        let killer = fork_child(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            unsafe { kill(me, SIGUSR1) };
            0
        });
        assert_errno!(semop(id, &[op(0, -1, 0)]), EINTR);
        assert_eq!(wait_child(killer), Exit::Code(0));
    });
    assert_eq!(semctl(id, 0, GETNCNT, 0), Ok(0));
    rmid(id);
}

fn removal_wakes_sleepers_with_eidrm() {
    let id = private(1);
    let child = fork_child(move || match semop(id, &[op(0, -1, 0)]) {
        Err(e) if e == Errno(EIDRM) => 0,
        _ => 1,
    });
    assert!(wait_until(10_000, || semctl(id, 0, GETNCNT, 0) == Ok(1)));
    rmid(id);
    assert_eq!(wait_child(child), Exit::Code(0));
}

fn sem_undo_is_applied_when_the_process_exits() {
    let id = private(2);
    setval(id, 1, 5);
    let child = fork_child(move || {
        semop(id, &[op(0, 3, SEM_UNDO), op(1, -2, SEM_UNDO)]).unwrap();
        if val(id, 0) == 3 && val(id, 1) == 3 {
            0
        } else {
            1
        }
    });
    assert_eq!(wait_child(child), Exit::Code(0));
    assert_eq!((val(id, 0), val(id, 1)), (0, 5), "the child's operations were undone");
    assert_eq!(semctl(id, 0, GETPID, 0), Ok(child as i64), "the undo counts as the exiting process's");
    rmid(id);
}

/// A child adds 2 to semaphore 0 of `id` with SEM_UNDO and waits while the caller runs
/// `meanwhile` (once the 2 shows); then the child exits, its adjustment applied.
fn child_undo_of_two_around(id: i32, meanwhile: impl FnOnce()) {
    let (r, w) = user_tests::pipe(0).unwrap();
    let child = fork_child(move || {
        semop(id, &[op(0, 2, SEM_UNDO)]).unwrap();
        let mut b = [0u8; 1];
        unsafe { read(r, b.as_mut_ptr().cast(), 1) };
        0
    });
    assert!(wait_until(10_000, || val(id, 0) == 2));
    meanwhile();
    unsafe { write(w, b"x".as_ptr().cast(), 1) };
    assert_eq!(wait_child(child), Exit::Code(0));
}

fn sem_undo_never_takes_a_value_below_zero() {
    let id = private(1);
    child_undo_of_two_around(id, || {
        semop(id, &[op(0, -2, 0)]).unwrap();
    });
    assert_eq!(val(id, 0), 0, "the undo of +2 stops at zero");
    rmid(id);
}

fn setval_clears_the_undo_adjustments() {
    let id = private(1);
    child_undo_of_two_around(id, || setval(id, 0, 7));
    assert_eq!(val(id, 0), 7, "SETVAL dropped the child's adjustment");
    rmid(id);
}

fn setval_checks_the_range_and_getpid_names_the_last_process() {
    let id = private(1);
    assert_errno!(semctl(id, 0, SETVAL, 32768), ERANGE);
    assert_errno!(semctl(id, 0, SETVAL, -1i32 as u32 as usize), ERANGE);
    assert_errno!(semctl(id, 1, SETVAL, 1), EINVAL);
    assert_errno!(semctl(id, 1, GETVAL, 0), EINVAL);
    setval(id, 0, 4);
    assert_eq!(semctl(id, 0, GETPID, 0), Ok(unsafe { getpid() } as i64));
    rmid(id);
}

fn getall_and_setall_move_every_value() {
    let id = private(3);
    let vals = [1u16, 2, 3];
    semctl(id, 0, SETALL, vals.as_ptr() as usize).unwrap();
    let mut out = [0u16; 3];
    semctl(id, 0, GETALL, out.as_mut_ptr() as usize).unwrap();
    assert_eq!(out, vals);
    let big = [1u16, 40000, 3];
    assert_errno!(semctl(id, 0, SETALL, big.as_ptr() as usize), ERANGE);
    assert_errno!(semctl(id, 0, SETALL, BAD_PTR), EFAULT);
    assert_errno!(semctl(id, 0, GETALL, BAD_PTR), EFAULT);
    rmid(id);
}

fn another_user_needs_the_mode_bits() {
    let closed = private(1);
    let readable = semget(IPC_PRIVATE, 1, 0o604).unwrap();
    run_in_child(move || {
        unsafe {
            assert_eq!(setgroups(0, std::ptr::null()), 0);
            assert_eq!(setresgid(1000, 1000, 1000), 0);
            assert_eq!(setresuid(1000, 1000, 1000), 0);
        }
        assert_errno!(semop(closed, &[op(0, 1, 0)]), EACCES);
        assert_errno!(semctl(closed, 0, GETVAL, 0), EACCES);
        assert_errno!(semctl(closed, 0, SETVAL, 1), EACCES);
        assert_errno!(semctl(closed, 0, IPC_RMID, 0), EPERM);
        assert_eq!(semctl(readable, 0, GETVAL, 0), Ok(0));
        assert_errno!(semop(readable, &[op(0, 1, 0)]), EACCES);
        semop(readable, &[op(0, 0, 0)]).unwrap();
    });
    rmid(closed);
    rmid(readable);
}

#[repr(C)]
#[derive(Default, Debug)]
struct Seminfo {
    semmap: i32,
    semmni: i32,
    semmns: i32,
    semmnu: i32,
    semmsl: i32,
    semopm: i32,
    semume: i32,
    semusz: i32,
    semvmx: i32,
    semaem: i32,
}

fn ipc_info_and_sem_info_report_the_limits() {
    let knob: Vec<i32> = std::fs::read_to_string("/proc/sys/kernel/sem")
        .unwrap()
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    let mut info = Seminfo::default();
    semctl(0, 0, IPC_INFO, &mut info as *mut Seminfo as usize).unwrap();
    assert_eq!([info.semmsl, info.semmns, info.semopm, info.semmni], [knob[0], knob[1], knob[2], knob[3]]);
    assert_eq!((info.semvmx, info.semaem, info.semusz), (32767, 32767, 20));
    let id = private(5);
    let mut before = Seminfo::default();
    let max = semctl(0, 0, SEM_INFO, &mut before as *mut Seminfo as usize).unwrap();
    assert!(max >= (id % 32768) as i64);
    assert!(before.semusz >= 1, "sets in use");
    assert!(before.semaem >= 5, "semaphores in use");
    rmid(id);
    let mut after = Seminfo::default();
    semctl(0, 0, SEM_INFO, &mut after as *mut Seminfo as usize).unwrap();
    assert_eq!(after.semaem, before.semaem - 5);
}

fn proc_sysvipc_sem_lists_each_set() {
    let id = semget(key(2), 4, IPC_CREAT | 0o640).unwrap();
    let text = std::fs::read_to_string("/proc/sysvipc/sem").unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime"
    );
    let line = lines.find(|l| l.split_whitespace().nth(1) == Some(&id.to_string())).expect("the set's line");
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[0], key(2).to_string());
    assert_eq!(&f[2..4], &["640", "4"]);
    rmid(id);
}

/// IPC namespaces separate semaphore sets as they do segments: neither the key nor the id
/// of a set reaches it from a new namespace, whose kernel.sem starts at the defaults and
/// changes there alone.
fn a_set_is_invisible_from_another_namespace_whose_sem_limits_are_its_own() {
    let id = semget(key(9), 1, IPC_CREAT | 0o600).unwrap();
    let k = key(9);
    let outer = std::fs::read_to_string("/proc/sys/kernel/sem").unwrap();
    run_in_child(move || {
        sys!(SYS_unshare, CLONE_NEWIPC).unwrap();
        assert_errno!(semget(k, 1, 0), ENOENT);
        assert_errno!(semop(id, &[op(0, 1, NOWAIT)]), EINVAL);
        let inner = semget(k, 2, IPC_CREAT | IPC_EXCL | 0o600).unwrap();
        // One set at most (SEMMNI 1) in this namespace: the second is ENOSPC.
        std::fs::write("/proc/sys/kernel/sem", "250 32000 32 1\n").unwrap();
        assert_errno!(semget(IPC_PRIVATE, 1, 0o600), ENOSPC);
        rmid(inner);
    });
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/sem").unwrap(), outer);
    assert_eq!(val(id, 0), 0);
    rmid(id);
}
