//! System V message queues (Linux's ipc/msg.c, 6.6): `msgget`, `msgsnd`, `msgrcv`,
//! `msgctl`.
//!
//! A queue lives in its namespace's table (`IpcNamespace::msg`) with its messages in
//! arrival order. A sender waits while the queue is full (`msg_fits_inqueue`: bytes within
//! `msg_qbytes` and one message per byte at most), a receiver while nothing matches its
//! type selection; both sleep on the queue's wait queue, interruptibly (ERESTARTNOHAND, as
//! Linux's: restarted only if no handler ran), and are woken by every change of it, by
//! IPC_SET and by removal (EIDRM).
//!
//! Locks: the namespace's table (`IpcNamespace::msg`, level 157) is held only to look at
//! or change a queue; sleeping, waking and copying to the caller happen outside it.
#![deny(unsafe_code)]

use super::{
    current_creds, current_tgid, now, IpcIds, IpcNamespace, IpcObject, IpcTable, KernIpcPerm, IPC_CREAT, IPC_EXCL,
    IPC_NOWAIT, IPC_PRIVATE,
};
use crate::errno::*;
use crate::process::wait_queue::WaitQueue;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Default `kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`.
pub const MSGMAX: u32 = 8192;
pub const MSGMNB: u32 = 16384;
pub const MSGMNI: u32 = 32000;
/// msgrcv flags.
pub const MSG_NOERROR: u32 = 0o10000;
pub const MSG_EXCEPT: u32 = 0o20000;
pub const MSG_COPY: u32 = 0o40000;
/// msgctl commands.
pub const MSG_STAT: i32 = 11;
pub const MSG_INFO: i32 = 12;
pub const MSG_STAT_ANY: i32 = 13;

struct Message {
    mtype: i64,
    text: Vec<u8>,
}

/// Linux's `struct msg_queue`.
pub struct MsgQueue {
    pub perm: KernIpcPerm,
    messages: VecDeque<Message>,
    stime: i64,
    rtime: i64,
    ctime: i64,
    cbytes: u64,
    qbytes: u64,
    lspid: u32,
    lrpid: u32,
    /// Senders and receivers wait here; shared with them, who may outlive the queue.
    queue: Arc<WaitQueue>,
    _live: crate::leak::Live,
}

impl IpcObject for MsgQueue {
    fn perm(&self) -> &KernIpcPerm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut KernIpcPerm {
        &mut self.perm
    }
}

/// A namespace's message queues, and the messages and bytes they hold between them.
#[derive(Default)]
pub struct MsgIds {
    pub ids: IpcIds<MsgQueue>,
    pub hdrs: u64,
    pub bytes: u64,
}

impl super::IpcTable for MsgIds {
    type Object = MsgQueue;
    fn ids(&self) -> &IpcIds<MsgQueue> {
        &self.ids
    }
    /// Linux's `freeque`: takes the queue out (its messages go with it) and wakes its
    /// waiters (EIDRM); the caller drops it after releasing the table.
    fn destroy(&mut self, idx: u32) -> Option<MsgQueue> {
        let q = self.ids.remove(idx)?;
        self.hdrs -= q.messages.len() as u64;
        self.bytes -= q.cbytes;
        q.queue.wake_all();
        Some(q)
    }
}

/// `msgget(2)` (Linux's `ksys_msgget`).
pub fn ksys_msgget(ns: &Arc<IpcNamespace>, key: i32, msgflg: u32) -> KResult<i32> {
    let creds = current_creds();
    let mut ids = ns.msg.lock();
    if key != IPC_PRIVATE {
        if let Some(idx) = ids.ids.find_key(key) {
            if msgflg & IPC_CREAT != 0 && msgflg & IPC_EXCL != 0 {
                return Err(EEXIST);
            }
            let q = ids.ids.get(idx).expect("a key names a queue");
            if !q.perm.permits(&creds, msgflg) {
                return Err(EACCES);
            }
            return Ok(q.perm.id);
        }
        if msgflg & IPC_CREAT == 0 {
            return Err(ENOENT);
        }
    }
    crate::mm::fail::slab_may_fail()?;
    let [_, mnb, mni] = ns.msg_limits();
    let q = MsgQueue {
        perm: KernIpcPerm::new(key, msgflg & 0o777, &creds),
        messages: VecDeque::new(),
        stime: 0,
        rtime: 0,
        ctime: now(),
        cbytes: 0,
        qbytes: mnb as u64,
        lspid: 0,
        lrpid: 0,
        queue: Arc::new(WaitQueue::new()),
        _live: crate::leak::IPC_OBJECTS.live(),
    };
    ids.ids.add(q, mni as usize)
}

/// Signals end a wait with ERESTARTNOHAND (restarted unless a handler ran).
fn interrupted(e: Errno) -> Errno {
    if e == ERESTARTSYS {
        ERESTARTNOHAND
    } else {
        e
    }
}

/// `msgsnd(2)` (Linux's `do_msgsnd`) of a message already copied in: `mtype` checked
/// positive and the size within `kernel.msgmax` by the caller.
pub fn do_msgsnd(ns: &Arc<IpcNamespace>, msqid: i32, mtype: i64, text: Vec<u8>, msgflg: u32) -> KResult<()> {
    let creds = current_creds();
    let tgid = current_tgid();
    let queue = {
        let ids = ns.msg.lock();
        ids.ids.get(ids.ids.index_of(msqid)?).expect("index from index_of").queue.clone()
    };
    let size = text.len() as u64;
    let mut msg = Some(Message { mtype, text });
    queue
        .wait_until(true, || {
            let mut ids = ns.msg.lock();
            let Some(idx) = ids.ids.index_of(msqid).ok() else { return Some(Err(EIDRM)) };
            let q = ids.ids.get_mut(idx).expect("index from index_of");
            if !q.perm.permits(&creds, 0o222) {
                return Some(Err(EACCES));
            }
            // `msg_fits_inqueue`.
            if q.cbytes + size > q.qbytes || q.messages.len() as u64 + 1 > q.qbytes {
                return if msgflg & IPC_NOWAIT != 0 { Some(Err(EAGAIN)) } else { None };
            }
            if q.messages.try_reserve(1).is_err() {
                return Some(Err(ENOMEM));
            }
            q.messages.push_back(msg.take().expect("sent once"));
            q.cbytes += size;
            q.lspid = tgid;
            q.stime = now();
            let w = q.queue.clone();
            ids.hdrs += 1;
            ids.bytes += size;
            drop(ids);
            w.wake_all();
            Some(Ok(()))
        })
        .and_then(|r| r)
        .map_err(interrupted)
}

/// How `msgrcv` picks (Linux's `convert_mode` and `find_msg`).
#[derive(Clone, Copy)]
enum Search {
    Any,
    Equal(i64),
    NotEqual(i64),
    /// The lowest type at most this.
    LessEqual(i64),
    /// MSG_COPY: the message at this position.
    Number(i64),
}

impl Search {
    fn new(msgtyp: i64, msgflg: u32) -> Search {
        if msgflg & MSG_COPY != 0 {
            Search::Number(msgtyp)
        } else if msgtyp == 0 {
            Search::Any
        } else if msgtyp < 0 {
            Search::LessEqual(msgtyp.checked_neg().unwrap_or(i64::MAX))
        } else if msgflg & MSG_EXCEPT != 0 {
            Search::NotEqual(msgtyp)
        } else {
            Search::Equal(msgtyp)
        }
    }

    fn find(self, messages: &VecDeque<Message>) -> Option<usize> {
        match self {
            Search::Any => (!messages.is_empty()).then_some(0),
            Search::Equal(t) => messages.iter().position(|m| m.mtype == t),
            Search::NotEqual(t) => messages.iter().position(|m| m.mtype != t),
            Search::LessEqual(t) => {
                let low = messages.iter().filter(|m| m.mtype <= t).map(|m| m.mtype).min()?;
                messages.iter().position(|m| m.mtype == low)
            }
            Search::Number(n) => usize::try_from(n).ok().filter(|&n| n < messages.len()),
        }
    }
}

/// `msgrcv(2)` (Linux's `do_msgrcv`): the message taken (or, with MSG_COPY, copied) as
/// (type, text cut to `bufsz`).
pub fn do_msgrcv(ns: &Arc<IpcNamespace>, msqid: i32, bufsz: i64, msgtyp: i64, msgflg: u32) -> KResult<(i64, Vec<u8>)> {
    if msqid < 0 || bufsz < 0 {
        return Err(EINVAL);
    }
    if msgflg & MSG_COPY != 0 && (msgflg & MSG_EXCEPT != 0 || msgflg & IPC_NOWAIT == 0) {
        return Err(EINVAL);
    }
    let search = Search::new(msgtyp, msgflg);
    let creds = current_creds();
    let tgid = current_tgid();
    let queue = {
        let ids = ns.msg.lock();
        ids.ids.get(ids.ids.index_of(msqid)?).expect("index from index_of").queue.clone()
    };
    queue
        .wait_until(true, || {
            let mut ids = ns.msg.lock();
            let Some(idx) = ids.ids.index_of(msqid).ok() else { return Some(Err(EIDRM)) };
            let q = ids.ids.get_mut(idx).expect("index from index_of");
            if !q.perm.permits(&creds, 0o444) {
                return Some(Err(EACCES));
            }
            let Some(i) = search.find(&q.messages) else {
                return if msgflg & IPC_NOWAIT != 0 { Some(Err(ENOMSG)) } else { None };
            };
            let size = q.messages[i].text.len() as u64;
            if (bufsz as u64) < size && msgflg & MSG_NOERROR == 0 {
                return Some(Err(E2BIG));
            }
            let keep = (bufsz as u64).min(size) as usize;
            if msgflg & MSG_COPY != 0 {
                let m = &q.messages[i];
                let mut text = Vec::new();
                if text.try_reserve(keep).is_err() {
                    return Some(Err(ENOMEM));
                }
                text.extend_from_slice(&m.text[..keep]);
                return Some(Ok((m.mtype, text)));
            }
            let mut m = q.messages.remove(i).expect("index from find");
            q.cbytes -= size;
            q.lrpid = tgid;
            q.rtime = now();
            let w = q.queue.clone();
            ids.hdrs -= 1;
            ids.bytes -= size;
            drop(ids);
            // Room for waiting senders.
            w.wake_all();
            m.text.truncate(keep);
            Some(Ok((m.mtype, m.text)))
        })
        .and_then(|r| r)
        .map_err(interrupted)
}

/// Linux's `struct msqid64_ds` (asm-generic/msgbuf.h, 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Msqid64Ds {
    pub msg_perm: super::Ipc64Perm,
    pub msg_stime: i64,
    pub msg_rtime: i64,
    pub msg_ctime: i64,
    pub msg_cbytes: u64,
    pub msg_qnum: u64,
    pub msg_qbytes: u64,
    pub msg_lspid: i32,
    pub msg_lrpid: i32,
    pub unused4: u64,
    pub unused5: u64,
}

/// Linux's `struct msginfo`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Msginfo {
    pub msgpool: i32,
    pub msgmap: i32,
    pub msgmax: i32,
    pub msgmnb: i32,
    pub msgmni: i32,
    pub msgssz: i32,
    pub msgtql: i32,
    pub msgseg: u16,
    pub pad: u16,
}

// SAFETY: plain C structures of integers with no padding left implicit.
#[allow(unsafe_code)]
unsafe impl crate::mm::usercopy::Pod for Msqid64Ds {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl crate::mm::usercopy::Pod for Msginfo {}

pub enum MsgctlOut {
    None,
    Stat(Msqid64Ds),
    Info(Msginfo),
}

/// `msgctl(2)` (Linux's `ksys_msgctl`); IPC_SET's structure comes in `set`, read first.
pub fn ksys_msgctl(ns: &Arc<IpcNamespace>, msqid: i32, cmd: i32, set: Option<Msqid64Ds>) -> KResult<(i32, MsgctlOut)> {
    if msqid < 0 || cmd < 0 {
        return Err(EINVAL);
    }
    let creds = current_creds();
    match cmd {
        super::IPC_INFO | MSG_INFO => {
            let [max, mnb, mni] = ns.msg_limits();
            let ids = ns.msg.lock();
            let info = Msginfo {
                msgpool: if cmd == MSG_INFO { ids.ids.in_use() as i32 } else { (MSGMNI * MSGMNB / 1024) as i32 },
                msgmap: if cmd == MSG_INFO { ids.hdrs as i32 } else { MSGMNB as i32 },
                msgmax: max as i32,
                msgmnb: mnb as i32,
                msgmni: mni as i32,
                msgssz: 16,
                msgtql: if cmd == MSG_INFO { ids.bytes as i32 } else { MSGMNB as i32 },
                msgseg: 0xffff,
                pad: 0,
            };
            Ok((ids.ids.max_idx().max(0) as i32, MsgctlOut::Info(info)))
        }
        super::IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            let ids = ns.msg.lock();
            let (q, ret) = if cmd == super::IPC_STAT {
                (ids.ids.get(ids.ids.index_of(msqid)?).expect("index from index_of"), 0)
            } else {
                let q = u32::try_from(msqid).ok().and_then(|i| ids.ids.get(i)).ok_or(EINVAL)?;
                (q, q.perm.id)
            };
            if cmd != MSG_STAT_ANY && !q.perm.permits(&creds, 0o444) {
                return Err(EACCES);
            }
            let p = &q.perm;
            let ds = Msqid64Ds {
                msg_perm: super::Ipc64Perm::from(p),
                msg_stime: q.stime,
                msg_rtime: q.rtime,
                msg_ctime: q.ctime,
                msg_cbytes: q.cbytes,
                msg_qnum: q.messages.len() as u64,
                msg_qbytes: q.qbytes,
                msg_lspid: q.lspid as i32,
                msg_lrpid: q.lrpid as i32,
                ..Default::default()
            };
            Ok((ret, MsgctlOut::Stat(ds)))
        }
        super::IPC_SET | super::IPC_RMID => {
            let (gone, wake) = {
                let mut ids = ns.msg.lock();
                let idx = ids.ids.index_of(msqid)?;
                let q = ids.ids.get_mut(idx).expect("index from index_of");
                q.perm.may_change(&creds)?;
                if cmd == super::IPC_SET {
                    let s = set.expect("IPC_SET passes its structure");
                    if s.msg_qbytes > ns.msg_limits()[1] as u64
                        && !creds.capable(crate::process::cred::CAP_SYS_RESOURCE)
                    {
                        return Err(EPERM);
                    }
                    q.qbytes = s.msg_qbytes;
                    q.perm.uid = s.msg_perm.uid;
                    q.perm.gid = s.msg_perm.gid;
                    q.perm.mode = (q.perm.mode & !0o777) | (s.msg_perm.mode & 0o777);
                    q.ctime = now();
                    // Senders may fit now, receivers test their permission again.
                    (None, Some(q.queue.clone()))
                } else {
                    (ids.destroy(idx), None)
                }
            };
            drop(gone);
            if let Some(w) = wake {
                w.wake_all();
            }
            Ok((0, MsgctlOut::None))
        }
        _ => Err(EINVAL),
    }
}

/// /proc/sysvipc/msg (Linux's `sysvipc_msg_proc_show`).
pub fn proc_text(ns: &IpcNamespace) -> alloc::string::String {
    use core::fmt::Write;
    let mut s = alloc::string::String::from(
        "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
    );
    let ids = ns.msg.lock();
    for (_, q) in ids.ids.iter() {
        let p = &q.perm;
        let _ = writeln!(
            s,
            "{:10} {:10}  {:4o}  {:10} {:10} {:5} {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10}",
            p.key,
            p.id,
            p.mode,
            q.cbytes,
            q.messages.len(),
            q.lspid,
            q.lrpid,
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            q.stime,
            q.rtime,
            q.ctime
        );
    }
    s
}
