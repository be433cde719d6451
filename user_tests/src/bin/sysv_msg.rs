//! System V message queues (Linux's ipc/msg.c): msgget's rules, msgsnd and msgrcv with
//! type selection, truncation, full and empty queues, blocking woken by the other side and
//! by removal, msgctl's figures and limits, and a queue per IPC namespace.

use libc::*;
use user_tests::{assert_errno, fork_child, run_in_child, run_tests, sys, tests, wait_child, Errno, Exit, BAD_PTR};

fn main() {
    run_tests(
        "sysv_msg",
        tests![
            a_new_queue_is_empty_with_msgmnb_bytes_of_room,
            msgget_checks_keys_like_the_other_kinds,
            messages_come_out_in_order_and_by_type,
            a_message_longer_than_the_buffer_is_e2big_unless_msg_noerror,
            an_empty_queue_with_ipc_nowait_is_enomsg,
            a_full_queue_with_ipc_nowait_is_eagain,
            a_blocked_msgrcv_wakes_when_a_message_comes,
            a_blocked_msgsnd_wakes_when_room_is_made,
            removal_wakes_waiters_with_eidrm,
            msgsnd_checks_type_size_and_buffer,
            raising_msg_qbytes_past_msgmnb_needs_cap_sys_resource,
            msg_copy_needs_ipc_nowait,
            stat_reports_bytes_messages_and_pids,
            ipc_info_and_msg_info_report_limits_and_use,
            a_queue_is_invisible_from_another_namespace,
            proc_sysvipc_msg_lists_each_queue,
        ],
    )
}

const MSG_NOERROR: i32 = 0o10000;
const MSG_EXCEPT: i32 = 0o20000;
const MSG_COPY: i32 = 0o40000;
const MSG_STAT_ANY: i32 = 13;

fn key(n: i32) -> i32 {
    0x4d53_0000 | ((unsafe { getpid() } & 0xff) << 8) | n
}

fn msgget(key: i32, flg: i32) -> Result<i32, Errno> {
    sys!(SYS_msgget, key, flg).map(|v| v as i32)
}

#[repr(C)]
struct Msg<const N: usize> {
    mtype: i64,
    text: [u8; N],
}

fn send(id: i32, mtype: i64, text: &[u8], flg: i32) -> Result<i64, Errno> {
    let mut m = Msg::<64> { mtype, text: [0; 64] };
    m.text[..text.len()].copy_from_slice(text);
    sys!(SYS_msgsnd, id, &m as *const Msg<64>, text.len(), flg)
}

/// Receives into a buffer of `size` bytes: (type, text).
fn recv(id: i32, size: usize, typ: i64, flg: i32) -> Result<(i64, Vec<u8>), Errno> {
    let mut m = Msg::<64> { mtype: 0, text: [0; 64] };
    let n = sys!(SYS_msgrcv, id, &mut m as *mut Msg<64>, size, typ, flg)?;
    Ok((m.mtype, m.text[..n as usize].to_vec()))
}

fn msgctl(id: i32, cmd: i32, buf: usize) -> Result<i64, Errno> {
    sys!(SYS_msgctl, id, cmd, buf)
}

fn rmid(id: i32) {
    msgctl(id, IPC_RMID, 0).unwrap();
}

fn private() -> i32 {
    msgget(IPC_PRIVATE, 0o600).unwrap()
}

/// `struct msqid64_ds` of x86-64.
#[repr(C)]
#[derive(Default, Debug)]
struct MsqidDs {
    perm: [u32; 6],
    seq: u16,
    pad: u16,
    unused: [u64; 2],
    stime: i64,
    rtime: i64,
    ctime: i64,
    cbytes: u64,
    qnum: u64,
    qbytes: u64,
    lspid: i32,
    lrpid: i32,
    unused4: u64,
    unused5: u64,
}

fn stat(id: i32) -> MsqidDs {
    let mut ds = MsqidDs::default();
    msgctl(id, IPC_STAT, &mut ds as *mut MsqidDs as usize).unwrap();
    ds
}

fn knob(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}")).unwrap().trim().parse().unwrap()
}

fn a_new_queue_is_empty_with_msgmnb_bytes_of_room() {
    let id = private();
    let ds = stat(id);
    assert_eq!((ds.qnum, ds.cbytes, ds.lspid, ds.lrpid, ds.stime, ds.rtime), (0, 0, 0, 0, 0, 0));
    assert_eq!(ds.qbytes, knob("msgmnb"));
    assert_eq!(ds.perm[5], 0o600);
    assert!(ds.ctime > 0);
    rmid(id);
}

fn msgget_checks_keys_like_the_other_kinds() {
    assert_errno!(msgget(key(1), 0o600), ENOENT);
    let id = msgget(key(1), IPC_CREAT | 0o600).unwrap();
    assert_eq!(msgget(key(1), 0), Ok(id));
    assert_errno!(msgget(key(1), IPC_CREAT | IPC_EXCL), EEXIST);
    rmid(id);
}

fn messages_come_out_in_order_and_by_type() {
    let id = private();
    for (t, s) in [(3, b"a"), (1, b"b"), (2, b"c"), (1, b"d")] {
        send(id, t, s, 0).unwrap();
    }
    assert_eq!(recv(id, 64, 1, 0), Ok((1, b"b".to_vec())), "the first of type 1");
    assert_eq!(recv(id, 64, -2, 0), Ok((1, b"d".to_vec())), "the lowest type at most 2");
    assert_eq!(recv(id, 64, 3, MSG_EXCEPT), Ok((2, b"c".to_vec())), "the first of another type");
    assert_eq!(recv(id, 64, 0, 0), Ok((3, b"a".to_vec())), "the first of any type");
    assert_errno!(recv(id, 64, 0, IPC_NOWAIT), ENOMSG);
    rmid(id);
}

fn a_message_longer_than_the_buffer_is_e2big_unless_msg_noerror() {
    let id = private();
    send(id, 1, b"hello", 0).unwrap();
    assert_errno!(recv(id, 3, 0, 0), E2BIG);
    assert_eq!(stat(id).qnum, 1, "the message stays");
    assert_eq!(recv(id, 3, 0, MSG_NOERROR), Ok((1, b"hel".to_vec())));
    assert_eq!(stat(id).qnum, 0, "a cut message is gone whole");
    rmid(id);
}

fn an_empty_queue_with_ipc_nowait_is_enomsg() {
    let id = private();
    assert_errno!(recv(id, 64, 0, IPC_NOWAIT), ENOMSG);
    send(id, 2, b"x", 0).unwrap();
    assert_errno!(recv(id, 64, 1, IPC_NOWAIT), ENOMSG);
    rmid(id);
}

fn shrink(id: i32, qbytes: u64) {
    let mut ds = stat(id);
    ds.qbytes = qbytes;
    msgctl(id, IPC_SET, &mut ds as *mut MsqidDs as usize).unwrap();
}

fn a_full_queue_with_ipc_nowait_is_eagain() {
    let id = private();
    shrink(id, 8);
    send(id, 1, b"12345678", 0).unwrap();
    assert_errno!(send(id, 1, b"9", IPC_NOWAIT), EAGAIN);
    shrink(id, 3);
    recv(id, 64, 0, 0).unwrap();
    send(id, 1, b"", 0).unwrap();
    send(id, 1, b"", 0).unwrap();
    send(id, 1, b"", 0).unwrap();
    // No more messages than bytes of room.
    assert_errno!(send(id, 1, b"", IPC_NOWAIT), EAGAIN);
    rmid(id);
}

fn a_blocked_msgrcv_wakes_when_a_message_comes() {
    let id = private();
    let child = fork_child(move || if recv(id, 64, 5, 0) == Ok((5, b"late".to_vec())) { 0 } else { 1 });
    std::thread::sleep(std::time::Duration::from_millis(50));
    send(id, 4, b"other", 0).unwrap();
    send(id, 5, b"late", 0).unwrap();
    assert_eq!(wait_child(child), Exit::Code(0));
    assert_eq!(stat(id).qnum, 1, "the type-4 message is still there");
    rmid(id);
}

fn a_blocked_msgsnd_wakes_when_room_is_made() {
    let id = private();
    shrink(id, 4);
    send(id, 1, b"full", 0).unwrap();
    let child = fork_child(move || if send(id, 2, b"next", 0).is_ok() { 0 } else { 1 });
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(stat(id).qnum, 1, "the sender waits");
    assert_eq!(recv(id, 64, 0, 0), Ok((1, b"full".to_vec())));
    assert_eq!(wait_child(child), Exit::Code(0));
    assert_eq!(recv(id, 64, 0, IPC_NOWAIT), Ok((2, b"next".to_vec())));
    rmid(id);
}

fn removal_wakes_waiters_with_eidrm() {
    let id = private();
    let child = fork_child(move || match recv(id, 64, 0, 0) {
        Err(e) if e == Errno(EIDRM) => 0,
        _ => 1,
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    rmid(id);
    assert_eq!(wait_child(child), Exit::Code(0));
    assert_errno!(send(id, 1, b"x", 0), EINVAL);
}

fn msgsnd_checks_type_size_and_buffer() {
    let id = private();
    assert_errno!(send(id, 0, b"x", 0), EINVAL);
    assert_errno!(send(id, -1, b"x", 0), EINVAL);
    let max = knob("msgmax") as usize;
    assert_errno!(sys!(SYS_msgsnd, id, BAD_PTR, 1, 0), EFAULT);
    let m = Msg::<8> { mtype: 1, text: [0; 8] };
    assert_errno!(sys!(SYS_msgsnd, id, &m as *const Msg<8>, max + 1, 0), EINVAL);
    assert_errno!(sys!(SYS_msgsnd, -1, &m as *const Msg<8>, 1, 0), EINVAL);
    assert_errno!(sys!(SYS_msgrcv, id, &m as *const Msg<8>, -1i64, 0, 0), EINVAL);
    rmid(id);
}

fn raising_msg_qbytes_past_msgmnb_needs_cap_sys_resource() {
    let id = private();
    let mnb = knob("msgmnb");
    let mut ds = stat(id);
    ds.perm[1] = 1000;
    msgctl(id, IPC_SET, &mut ds as *mut MsqidDs as usize).unwrap();
    run_in_child(move || {
        unsafe {
            assert_eq!(setgroups(0, std::ptr::null()), 0);
            assert_eq!(setresgid(1000, 1000, 1000), 0);
            assert_eq!(setresuid(1000, 1000, 1000), 0);
        }
        // The owner now: it may read and change the queue.
        let mut ds = MsqidDs::default();
        msgctl(id, IPC_STAT, &mut ds as *mut MsqidDs as usize).unwrap();
        assert_eq!(msgctl(id % 32768, MSG_STAT_ANY, &mut ds as *mut MsqidDs as usize), Ok(id as i64));
        ds.qbytes = mnb + 1;
        assert_errno!(msgctl(id, IPC_SET, &mut ds as *mut MsqidDs as usize), EPERM);
        ds.qbytes = mnb - 1;
        msgctl(id, IPC_SET, &mut ds as *mut MsqidDs as usize).unwrap();
    });
    let mut ds = stat(id);
    assert_eq!(ds.qbytes, mnb - 1);
    ds.qbytes = mnb * 2;
    // Root may go past msgmnb if it holds CAP_SYS_RESOURCE (a container's root may not).
    let r = msgctl(id, IPC_SET, &mut ds as *mut MsqidDs as usize);
    if has_cap(CAP_SYS_RESOURCE) {
        r.unwrap();
        assert_eq!(stat(id).qbytes, mnb * 2);
    } else {
        assert_errno!(r, EPERM);
    }
    rmid(id);
}

const CAP_SYS_RESOURCE: u32 = 24;

/// Whether the caller's effective capabilities (CapEff of /proc/self/status) hold `cap`.
fn has_cap(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim();
    u64::from_str_radix(hex, 16).unwrap() & (1 << cap) != 0
}

fn msg_copy_needs_ipc_nowait() {
    let id = private();
    send(id, 1, b"x", 0).unwrap();
    assert_errno!(recv(id, 64, 0, MSG_COPY), EINVAL);
    assert_errno!(recv(id, 64, 0, MSG_COPY | IPC_NOWAIT | MSG_EXCEPT), EINVAL);
    rmid(id);
}

fn stat_reports_bytes_messages_and_pids() {
    let id = private();
    send(id, 1, b"abc", 0).unwrap();
    send(id, 1, b"de", 0).unwrap();
    let ds = stat(id);
    assert_eq!((ds.qnum, ds.cbytes), (2, 5));
    assert_eq!(ds.lspid, unsafe { getpid() });
    assert!(ds.stime > 0);
    let child = fork_child(move || if recv(id, 64, 0, 0).is_ok() { 0 } else { 1 });
    assert_eq!(wait_child(child), Exit::Code(0));
    let ds = stat(id);
    assert_eq!((ds.qnum, ds.cbytes, ds.lrpid), (1, 2, child));
    assert!(ds.rtime > 0);
    rmid(id);
}

#[repr(C)]
#[derive(Default, Debug)]
struct Msginfo {
    msgpool: i32,
    msgmap: i32,
    msgmax: i32,
    msgmnb: i32,
    msgmni: i32,
    msgssz: i32,
    msgtql: i32,
    msgseg: u16,
}

fn ipc_info_and_msg_info_report_limits_and_use() {
    let mut info = Msginfo::default();
    msgctl(0, IPC_INFO, &mut info as *mut Msginfo as usize).unwrap();
    assert_eq!(
        (info.msgmax as u64, info.msgmnb as u64, info.msgmni as u64),
        (knob("msgmax"), knob("msgmnb"), knob("msgmni"))
    );
    assert_eq!((info.msgssz, info.msgseg), (16, 0xffff));
    let mut before = Msginfo::default();
    msgctl(0, MSG_INFO, &mut before as *mut Msginfo as usize).unwrap();
    let id = private();
    send(id, 1, b"1234", 0).unwrap();
    let mut after = Msginfo::default();
    let max = msgctl(0, MSG_INFO, &mut after as *mut Msginfo as usize).unwrap();
    assert_eq!(after.msgpool, before.msgpool + 1, "queues in use");
    assert_eq!(after.msgmap, before.msgmap + 1, "messages queued");
    assert_eq!(after.msgtql, before.msgtql + 4, "bytes queued");
    assert!(max >= (id % 32768) as i64);
    rmid(id);
}

fn a_queue_is_invisible_from_another_namespace() {
    let id = msgget(key(2), IPC_CREAT | 0o600).unwrap();
    let k = key(2);
    run_in_child(move || {
        sys!(SYS_unshare, CLONE_NEWIPC).unwrap();
        assert_errno!(msgget(k, 0), ENOENT);
        assert_errno!(send(id, 1, b"x", IPC_NOWAIT), EINVAL);
    });
    rmid(id);
}

fn proc_sysvipc_msg_lists_each_queue() {
    let id = msgget(key(3), IPC_CREAT | 0o640).unwrap();
    send(id, 1, b"abc", 0).unwrap();
    let text = std::fs::read_to_string("/proc/sysvipc/msg").unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime"
    );
    let line = lines.find(|l| l.split_whitespace().nth(1) == Some(&id.to_string())).expect("the queue's line");
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[0], key(3).to_string());
    assert_eq!(&f[2..6], &["640", "3", "1", &unsafe { getpid() }.to_string()]);
    rmid(id);
}
