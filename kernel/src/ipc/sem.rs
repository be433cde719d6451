//! System V semaphores (Linux's ipc/sem.c, 6.6): `semget`, `semop`/`semtimedop`,
//! `semctl`, and SEM_UNDO applied when a process exits.
//!
//! A semaphore set lives in its namespace's table (`IpcNamespace::sem`). A `semop` applies
//! all its operations or none (`perform_atomic_semop`); one that cannot go on sleeps on the
//! set's wait queue (interruptibly: EINTR, never restarted, as Linux; EAGAIN at the
//! timeout; EIDRM if the set is removed) and tests again after every change of the set.
//! While it sleeps it counts in `semncnt` or `semzcnt` of the semaphore whose operation
//! blocked it (Linux's `q->blocking`).
//!
//! SEM_UNDO adjustments are kept in the set per process (`SemArray::undo`, keyed by the
//! process id: the threads of a process share them, as CLONE_SYSVSEM makes them share
//! Linux's undo list), and the process lists the sets it has adjustments in
//! (`Process::sem_undo`), which `exit_sem` applies when its last thread exits. SETVAL and
//! SETALL clear the adjustments of what they set, as Linux's.
//!
//! Locks: the namespace's table (`IpcNamespace::sem`, level 158) is held only to look at
//! or change a set; sleeping and waking happen outside it (the wait queue's lock).
#![deny(unsafe_code)]

use super::{
    current_creds, current_tgid, now, IpcIds, IpcNamespace, IpcObject, IpcTable, KernIpcPerm, IPC_CREAT, IPC_EXCL,
    IPC_NOWAIT, IPC_PRIVATE,
};
use crate::errno::*;
use crate::process::wait_queue::WaitQueue;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The limits of `kernel.sem` (SEMMSL, SEMMNS, SEMOPM, SEMMNI) and the fixed ones.
pub const SEMMSL: u32 = 32000;
pub const SEMMNS: u32 = 1_024_000_000;
pub const SEMOPM: u32 = 500;
pub const SEMMNI: u32 = 32000;
pub const SEMVMX: i32 = 32767;
pub const SEMAEM: i32 = SEMVMX;
const SEMUSZ: i32 = 20;

/// semop flags.
pub const SEM_UNDO: i16 = 0x1000;
/// semctl commands.
pub const GETPID: i32 = 11;
pub const GETVAL: i32 = 12;
pub const GETALL: i32 = 13;
pub const GETNCNT: i32 = 14;
pub const GETZCNT: i32 = 15;
pub const SETVAL: i32 = 16;
pub const SETALL: i32 = 17;
pub const SEM_STAT: i32 = 18;
pub const SEM_INFO: i32 = 19;
pub const SEM_STAT_ANY: i32 = 20;

/// One semaphore (Linux's `struct sem`).
#[derive(Clone, Copy, Default)]
struct Sem {
    val: i32,
    /// The process that changed it last (`sempid`).
    pid: u32,
    /// Tasks asleep until it grows (`semncnt`) or reaches zero (`semzcnt`).
    ncnt: u32,
    zcnt: u32,
}

/// Linux's `struct sem_array`.
pub struct SemArray {
    pub perm: KernIpcPerm,
    sems: Vec<Sem>,
    otime: i64,
    ctime: i64,
    /// SEM_UNDO adjustments per process id.
    undo: BTreeMap<u32, Vec<i32>>,
    /// Where semop waits; woken by every change. Shared with the sleepers, who may
    /// outlive the set (removal wakes them with EIDRM).
    queue: Arc<WaitQueue>,
    _live: crate::leak::Live,
}

impl IpcObject for SemArray {
    fn perm(&self) -> &KernIpcPerm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut KernIpcPerm {
        &mut self.perm
    }
}

/// A namespace's semaphore sets and the semaphores they hold (`used_sems`).
#[derive(Default)]
pub struct SemIds {
    pub ids: IpcIds<SemArray>,
    pub used: u64,
}

impl super::IpcTable for SemIds {
    type Object = SemArray;
    fn ids(&self) -> &IpcIds<SemArray> {
        &self.ids
    }
    /// Linux's `freeary`: takes the set out and wakes its sleepers (EIDRM); the caller
    /// drops it after releasing the table.
    fn destroy(&mut self, idx: u32) -> Option<SemArray> {
        let sma = self.ids.remove(idx)?;
        self.used -= sma.sems.len() as u64;
        sma.queue.wake_all();
        Some(sma)
    }
}

/// `semget(2)` (Linux's `ksys_semget`).
pub fn ksys_semget(ns: &Arc<IpcNamespace>, key: i32, nsems: i32, semflg: u32) -> KResult<i32> {
    let limits = ns.sem_limits();
    if nsems < 0 || nsems as u32 > limits[0] {
        return Err(EINVAL);
    }
    let creds = current_creds();
    let mut ids = ns.sem.lock();
    if key != IPC_PRIVATE {
        if let Some(idx) = ids.ids.find_key(key) {
            if semflg & IPC_CREAT != 0 && semflg & IPC_EXCL != 0 {
                return Err(EEXIST);
            }
            let sma = ids.ids.get(idx).expect("a key names a set");
            // `sem_more_checks`, then the permissions.
            if nsems as usize > sma.sems.len() {
                return Err(EINVAL);
            }
            if !sma.perm.permits(&creds, semflg) {
                return Err(EACCES);
            }
            return Ok(sma.perm.id);
        }
        if semflg & IPC_CREAT == 0 {
            return Err(ENOENT);
        }
    }
    // `newary`.
    if nsems == 0 {
        return Err(EINVAL);
    }
    if ids.used + nsems as u64 > limits[1] as u64 {
        return Err(ENOSPC);
    }
    crate::mm::fail::slab_may_fail()?;
    let sma = SemArray {
        perm: KernIpcPerm::new(key, semflg & 0o777, &creds),
        sems: alloc::vec![Sem::default(); nsems as usize],
        otime: 0,
        ctime: now(),
        undo: BTreeMap::new(),
        queue: Arc::new(WaitQueue::new()),
        _live: crate::leak::IPC_OBJECTS.live(),
    };
    let id = ids.ids.add(sma, limits[3] as usize)?;
    ids.used += nsems as u64;
    Ok(id)
}

/// One operation of a semop (Linux's `struct sembuf`).
#[derive(Clone, Copy, Default, Debug)]
#[repr(C)]
pub struct Sembuf {
    pub sem_num: u16,
    pub sem_op: i16,
    pub sem_flg: i16,
}

// SAFETY: three integers, no padding.
#[allow(unsafe_code)]
unsafe impl crate::mm::usercopy::Pod for Sembuf {}

/// What `perform_atomic_semop` found.
enum Try {
    Done,
    /// Would sleep: on semaphore `num`, until it grows (`true`) or reaches zero.
    Block {
        num: usize,
        for_increase: bool,
    },
}

/// Linux's `perform_atomic_semop`: all of `sops` or nothing; ERANGE past SEMVMX (or an
/// undo adjustment past SEMAEM), EAGAIN for a blocked IPC_NOWAIT operation.
fn perform_atomic_semop(sma: &mut SemArray, sops: &[Sembuf], tgid: u32) -> KResult<Try> {
    let mut vals: Vec<i32> = sma.sems.iter().map(|s| s.val).collect();
    let mut adj: Option<Vec<i32>> = None;
    for op in sops {
        let n = op.sem_num as usize;
        let curr = vals[n];
        let sem_op = op.sem_op as i32;
        if sem_op == 0 && curr != 0 || curr + sem_op < 0 {
            if op.sem_flg & IPC_NOWAIT as i16 != 0 {
                return Err(EAGAIN);
            }
            return Ok(Try::Block { num: n, for_increase: sem_op != 0 });
        }
        let result = curr + sem_op;
        if result > SEMVMX {
            return Err(ERANGE);
        }
        if op.sem_flg & SEM_UNDO != 0 {
            let a =
                adj.get_or_insert_with(|| sma.undo.get(&tgid).cloned().unwrap_or_else(|| alloc::vec![0; vals.len()]));
            let undo = a[n] - sem_op;
            if !(-SEMAEM - 1..=SEMAEM).contains(&undo) {
                return Err(ERANGE);
            }
            a[n] = undo;
        }
        vals[n] = result;
    }
    for op in sops {
        sma.sems[op.sem_num as usize].pid = tgid;
    }
    for (s, v) in sma.sems.iter_mut().zip(vals) {
        s.val = v;
    }
    if let Some(a) = adj {
        sma.undo.insert(tgid, a);
    }
    sma.otime = now();
    Ok(Try::Done)
}

/// `semtimedop(2)` (Linux's `do_semtimedop`): `timeout` in ns, relative.
pub fn do_semtimedop(ns: &Arc<IpcNamespace>, semid: i32, sops: &[Sembuf], timeout: Option<u64>) -> KResult<()> {
    if sops.is_empty() || semid < 0 {
        return Err(EINVAL);
    }
    let max = sops.iter().map(|o| o.sem_num).max().unwrap_or(0) as usize;
    let undos = sops.iter().any(|o| o.sem_flg & SEM_UNDO != 0);
    let alter = sops.iter().any(|o| o.sem_op != 0);
    let creds = current_creds();
    let t = crate::process::current();
    let tgid = t.process.pid;
    let queue = {
        let ids = ns.sem.lock();
        let sma = ids.ids.get(ids.ids.index_of(semid)?).expect("index from index_of");
        if max >= sma.sems.len() {
            return Err(EFBIG);
        }
        if !sma.perm.permits(&creds, if alter { 0o222 } else { 0o444 }) {
            return Err(EACCES);
        }
        sma.queue.clone()
    };
    if undos {
        // The process's list of sets to undo at exit (`find_alloc_undo`).
        let mut list = t.process.sem_undo.lock();
        if !list.iter().any(|(n, id)| Arc::ptr_eq(n, ns) && *id == semid) {
            crate::mm::fail::try_reserve(&mut list, 1)?;
            list.push((ns.clone(), semid));
        }
    }
    let deadline = timeout.map(|ns| crate::arch::apic::uptime_ns().saturating_add(ns));
    // The semaphore whose count this task adds to while it sleeps.
    let mut blocked: Option<(usize, bool)> = None;
    let r = queue.wait_until_deadline(true, deadline, || {
        let mut ids = ns.sem.lock();
        let idx = ids.ids.index_of(semid).ok();
        let Some(sma) = idx.and_then(|i| ids.ids.get_mut(i)) else {
            return Some(Err(EIDRM));
        };
        if let Some((n, inc)) = blocked.take() {
            let s = &mut sma.sems[n];
            if inc {
                s.ncnt -= 1;
            } else {
                s.zcnt -= 1;
            }
        }
        match perform_atomic_semop(sma, sops, tgid) {
            Ok(Try::Done) => {
                let q = sma.queue.clone();
                drop(ids);
                // Others may go on now (Linux's `do_smart_update`).
                if alter {
                    q.wake_all();
                }
                Some(Ok(()))
            }
            Ok(Try::Block { num, for_increase }) => {
                let s = &mut sma.sems[num];
                if for_increase {
                    s.ncnt += 1;
                } else {
                    s.zcnt += 1;
                }
                blocked = Some((num, for_increase));
                None
            }
            Err(e) => Some(Err(e)),
        }
    });
    if let Some((n, inc)) = blocked {
        // Woken by a signal or the timeout while counted.
        let mut ids = ns.sem.lock();
        if let Some(s) = ids.ids.index_of(semid).ok().and_then(|i| ids.ids.get_mut(i)).map(|a| &mut a.sems[n]) {
            if inc {
                s.ncnt -= 1;
            } else {
                s.zcnt -= 1;
            }
        }
    }
    r.and_then(|r| r).map_err(|e| match e {
        // Never restarted, as Linux's semop.
        e if e == ERESTARTSYS => EINTR,
        e if e == ETIMEDOUT => EAGAIN,
        e => e,
    })
}

/// Linux's `exit_sem`: applies the process's SEM_UNDO adjustments (each value kept within
/// 0..=SEMVMX) and forgets them.
pub fn exit_sem(p: &crate::process::task::Process) {
    let list = core::mem::take(&mut *p.sem_undo.lock());
    for (ns, semid) in list {
        let q = {
            let mut ids = ns.sem.lock();
            let Some(sma) = ids.ids.index_of(semid).ok().and_then(|i| ids.ids.get_mut(i)) else { continue };
            let Some(adj) = sma.undo.remove(&p.pid) else { continue };
            for (s, a) in sma.sems.iter_mut().zip(adj) {
                if a != 0 {
                    s.val = (s.val + a).clamp(0, SEMVMX);
                    s.pid = p.pid;
                }
            }
            sma.otime = now();
            sma.queue.clone()
        };
        q.wake_all();
    }
}

/// Linux's `struct semid64_ds` of x86-64.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Semid64Ds {
    pub sem_perm: super::Ipc64Perm,
    pub sem_otime: i64,
    pub unused1: u64,
    pub sem_ctime: i64,
    pub unused2: u64,
    pub sem_nsems: u64,
    pub unused3: u64,
    pub unused4: u64,
}

/// Linux's `struct seminfo`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Seminfo {
    pub semmap: i32,
    pub semmni: i32,
    pub semmns: i32,
    pub semmnu: i32,
    pub semmsl: i32,
    pub semopm: i32,
    pub semume: i32,
    pub semusz: i32,
    pub semvmx: i32,
    pub semaem: i32,
}

// SAFETY: plain C structures of integers with no padding left implicit.
#[allow(unsafe_code)]
unsafe impl crate::mm::usercopy::Pod for Semid64Ds {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl crate::mm::usercopy::Pod for Seminfo {}

/// What `semctl` reads from and gives back to the caller.
pub enum SemctlIo<'a> {
    None,
    /// IPC_SET's structure, read first.
    Set(Semid64Ds),
    /// SETVAL's value.
    Val(i32),
    /// SETALL's values (read first), GETALL's buffer.
    All(&'a mut Vec<u16>),
}

pub enum SemctlOut {
    None,
    Stat(Semid64Ds),
    Info(Seminfo),
}

/// `semctl(2)` (Linux's `ksys_semctl`): returns the call's value and what to copy out.
/// GETALL fills `io`'s vector; SETALL's values come in it (the caller reads them once it
/// knows the set's size: `sem_nsems`, see [`nsems`]).
pub fn ksys_semctl(
    ns: &Arc<IpcNamespace>,
    semid: i32,
    semnum: i32,
    cmd: i32,
    io: SemctlIo,
) -> KResult<(i32, SemctlOut)> {
    if semid < 0 {
        return Err(EINVAL);
    }
    let creds = current_creds();
    match cmd {
        super::IPC_INFO | SEM_INFO => {
            let limits = ns.sem_limits();
            let ids = ns.sem.lock();
            let info = Seminfo {
                semmap: SEMMNS as i32,
                semmni: limits[3] as i32,
                semmns: limits[1] as i32,
                semmnu: SEMMNS as i32,
                semmsl: limits[0] as i32,
                semopm: limits[2] as i32,
                semume: SEMOPM as i32,
                semusz: if cmd == SEM_INFO { ids.ids.in_use() as i32 } else { SEMUSZ },
                semvmx: SEMVMX,
                semaem: if cmd == SEM_INFO { ids.used as i32 } else { SEMAEM },
            };
            Ok((ids.ids.max_idx().max(0) as i32, SemctlOut::Info(info)))
        }
        super::IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let ids = ns.sem.lock();
            let (sma, ret) = if cmd == super::IPC_STAT {
                (ids.ids.get(ids.ids.index_of(semid)?).expect("index from index_of"), 0)
            } else {
                let sma = u32::try_from(semid).ok().and_then(|i| ids.ids.get(i)).ok_or(EINVAL)?;
                (sma, sma.perm.id)
            };
            if cmd != SEM_STAT_ANY && !sma.perm.permits(&creds, 0o444) {
                return Err(EACCES);
            }
            let p = &sma.perm;
            let ds = Semid64Ds {
                sem_perm: super::Ipc64Perm::from(p),
                sem_otime: sma.otime,
                sem_ctime: sma.ctime,
                sem_nsems: sma.sems.len() as u64,
                ..Default::default()
            };
            Ok((ret, SemctlOut::Stat(ds)))
        }
        super::IPC_SET | super::IPC_RMID => {
            let gone = {
                let mut ids = ns.sem.lock();
                let idx = ids.ids.index_of(semid)?;
                let sma = ids.ids.get_mut(idx).expect("index from index_of");
                sma.perm.may_change(&creds)?;
                if let SemctlIo::Set(s) = io {
                    sma.perm.uid = s.sem_perm.uid;
                    sma.perm.gid = s.sem_perm.gid;
                    sma.perm.mode = (sma.perm.mode & !0o777) | (s.sem_perm.mode & 0o777);
                    sma.ctime = now();
                    None
                } else {
                    ids.destroy(idx)
                }
            };
            drop(gone);
            Ok((0, SemctlOut::None))
        }
        SETVAL => {
            // `semctl_setval`: the value, the set, the number, then the permission.
            let SemctlIo::Val(val) = io else { return Err(EINVAL) };
            if !(0..=SEMVMX).contains(&val) {
                return Err(ERANGE);
            }
            let mut ids = ns.sem.lock();
            let idx = ids.ids.index_of(semid)?;
            let sma = ids.ids.get_mut(idx).expect("index from index_of");
            let n = usize::try_from(semnum).ok().filter(|&n| n < sma.sems.len()).ok_or(EINVAL)?;
            if !sma.perm.permits(&creds, 0o222) {
                return Err(EACCES);
            }
            let s = &mut sma.sems[n];
            s.val = val;
            s.pid = current_tgid();
            sma.undo.values_mut().for_each(|a| a[n] = 0);
            sma.ctime = now();
            let q = sma.queue.clone();
            drop(ids);
            q.wake_all();
            Ok((0, SemctlOut::None))
        }
        GETVAL | GETPID | GETNCNT | GETZCNT | GETALL | SETALL => {
            let mut ids = ns.sem.lock();
            let idx = ids.ids.index_of(semid)?;
            let sma = ids.ids.get_mut(idx).expect("index from index_of");
            let write = cmd == SETALL;
            if !sma.perm.permits(&creds, if write { 0o222 } else { 0o444 }) {
                return Err(EACCES);
            }
            let nsems = sma.sems.len();
            if matches!(cmd, GETALL | SETALL) {
                let SemctlIo::All(v) = io else { return Err(EINVAL) };
                if cmd == GETALL {
                    v.clear();
                    v.extend(sma.sems.iter().map(|s| s.val as u16));
                    return Ok((0, SemctlOut::None));
                }
                if v.len() != nsems {
                    return Err(EINVAL);
                }
                if v.iter().any(|&x| x as i32 > SEMVMX) {
                    return Err(ERANGE);
                }
                let tgid = current_tgid();
                for (s, &x) in sma.sems.iter_mut().zip(v.iter()) {
                    s.val = x as i32;
                    s.pid = tgid;
                }
                sma.undo.values_mut().for_each(|a| a.iter_mut().for_each(|x| *x = 0));
                sma.ctime = now();
                let q = sma.queue.clone();
                drop(ids);
                q.wake_all();
                return Ok((0, SemctlOut::None));
            }
            let n = usize::try_from(semnum).ok().filter(|&n| n < nsems).ok_or(EINVAL)?;
            let s = &mut sma.sems[n];
            match cmd {
                GETVAL => Ok((s.val, SemctlOut::None)),
                GETPID => Ok((s.pid as i32, SemctlOut::None)),
                GETNCNT => Ok((s.ncnt as i32, SemctlOut::None)),
                GETZCNT => Ok((s.zcnt as i32, SemctlOut::None)),
                _ => unreachable!("GETALL and SETALL returned above"),
            }
        }
        _ => Err(EINVAL),
    }
}

/// The number of semaphores of set `semid`, which the caller may read or (`write`)
/// change: what SETALL reads from the caller, after Linux's lookup and permission check.
pub fn nsems(ns: &IpcNamespace, semid: i32, write: bool) -> KResult<usize> {
    let ids = ns.sem.lock();
    let sma = ids.ids.get(ids.ids.index_of(semid)?).expect("index from index_of");
    if !sma.perm.permits(&current_creds(), if write { 0o222 } else { 0o444 }) {
        return Err(EACCES);
    }
    Ok(sma.sems.len())
}

/// /proc/sysvipc/sem (Linux's `sysvipc_sem_proc_show`).
pub fn proc_text(ns: &IpcNamespace) -> alloc::string::String {
    use core::fmt::Write;
    let mut s = alloc::string::String::from(
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
    );
    let ids = ns.sem.lock();
    for (_, sma) in ids.ids.iter() {
        let p = &sma.perm;
        let _ = writeln!(
            s,
            "{:10} {:10}  {:4o} {:10} {:5} {:5} {:5} {:5} {:10} {:10}",
            p.key,
            p.id,
            p.mode,
            sma.sems.len(),
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            sma.otime,
            sma.ctime
        );
    }
    s
}
