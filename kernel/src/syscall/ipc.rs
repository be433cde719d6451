//! SysV IPC syscalls: argument decoding and copies; the policy is `ipc/`.

use super::{ok, Args, SysResult};
use crate::errno::*;
use crate::ipc::sem;
use crate::ipc::shm::{self, ShmctlOut, Shmid64Ds};
use crate::ipc::{current_ipc_ns, IPC_SET};

pub fn sys_setns(a: Args) -> SysResult {
    let f = super::fs::get_file(a.i32(0))?;
    crate::ipc::setns(&f, a.u(1) & 0xffff_ffff)?;
    ok(0)
}

pub fn sys_msgget(a: Args) -> SysResult {
    let id = crate::ipc::msg::ksys_msgget(&current_ipc_ns(), a.i32(0), a.u32(1))?;
    ok(id as usize)
}

pub fn sys_msgsnd(a: Args) -> SysResult {
    let (msqid, msgp, msgsz, msgflg) = (a.i32(0), a.u(1), a.u(2), a.u32(3));
    let ns = current_ipc_ns();
    // `ksys_msgsnd` reads the type first, then `do_msgsnd` checks, then copies the text.
    let mtype: i64 = super::read_val(msgp)?;
    if msgsz > ns.msg_limits()[0] as u64 || (msgsz as i64) < 0 || msqid < 0 {
        return Err(EINVAL);
    }
    if mtype < 1 {
        return Err(EINVAL);
    }
    let mut text = alloc::vec::Vec::new();
    crate::mm::fail::try_reserve(&mut text, msgsz as usize)?;
    text.resize(msgsz as usize, 0);
    super::copy_from_user(msgp.wrapping_add(8), &mut text)?;
    crate::ipc::msg::do_msgsnd(&ns, msqid, mtype, text, msgflg)?;
    ok(0)
}

pub fn sys_msgrcv(a: Args) -> SysResult {
    let (msqid, msgp, msgsz, msgtyp, msgflg) = (a.i32(0), a.u(1), a.u(2), a.u(3) as i64, a.u32(4));
    let ns = current_ipc_ns();
    // A negative size stays one (EINVAL in do_msgrcv); MSG_COPY's buffer holds at most
    // msgmax bytes (`prepare_copy`).
    let bufsz = match msgsz as i64 {
        n if n >= 0 && msgflg & crate::ipc::msg::MSG_COPY != 0 => n.min(ns.msg_limits()[0] as i64),
        n => n,
    };
    let (mtype, text) = crate::ipc::msg::do_msgrcv(&ns, msqid, bufsz, msgtyp, msgflg)?;
    // A message that cannot be stored is lost (EFAULT), as Linux's `store_msg`.
    super::write_val(msgp, &mtype)?;
    super::copy_to_user(msgp.wrapping_add(8), &text)?;
    ok(text.len())
}

pub fn sys_msgctl(a: Args) -> SysResult {
    let (msqid, cmd, buf) = (a.i32(0), a.i32(1), a.u(2));
    let set =
        if cmd == IPC_SET && msqid >= 0 { Some(super::read_val::<crate::ipc::msg::Msqid64Ds>(buf)?) } else { None };
    let (ret, out) = crate::ipc::msg::ksys_msgctl(&current_ipc_ns(), msqid, cmd, set)?;
    match out {
        crate::ipc::msg::MsgctlOut::None => {}
        crate::ipc::msg::MsgctlOut::Stat(s) => super::write_val(buf, &s)?,
        crate::ipc::msg::MsgctlOut::Info(i) => super::write_val(buf, &i)?,
    }
    ok(ret as u32 as usize)
}

pub fn sys_semget(a: Args) -> SysResult {
    let id = sem::ksys_semget(&current_ipc_ns(), a.i32(0), a.i32(1), a.u32(2))?;
    ok(id as usize)
}

pub fn sys_semop(a: Args) -> SysResult {
    semtimedop(a.i32(0), a.u(1), a.u(2), None)
}

pub fn sys_semtimedop(a: Args) -> SysResult {
    // The timeout is read first (`ksys_semtimedop`), checked after the operations.
    let ts = if a.u(3) != 0 { Some(super::read_val::<[i64; 2]>(a.u(3))?) } else { None };
    semtimedop(a.i32(0), a.u(1), a.u(2), ts)
}

/// `do_semtimedop`'s checks of its arguments, then the operation.
fn semtimedop(semid: i32, sops: u64, nsops: u64, ts: Option<[i64; 2]>) -> SysResult {
    let ns = current_ipc_ns();
    let nsops = nsops as u32 as u64;
    if nsops < 1 || semid < 0 {
        return Err(EINVAL);
    }
    if nsops > ns.sem_limits()[2] as u64 {
        return Err(E2BIG);
    }
    let mut ops = alloc::vec::Vec::new();
    crate::mm::fail::try_reserve(&mut ops, nsops as usize)?;
    for i in 0..nsops {
        ops.push(super::read_val::<sem::Sembuf>(sops.wrapping_add(i * 6))?);
    }
    let timeout = match ts {
        Some([s, n]) if s < 0 || !(0..1_000_000_000).contains(&n) => return Err(EINVAL),
        Some([s, n]) => Some((s as u64).saturating_mul(1_000_000_000).saturating_add(n as u64)),
        None => None,
    };
    sem::do_semtimedop(&ns, semid, &ops, timeout)?;
    ok(0)
}

pub fn sys_semctl(a: Args) -> SysResult {
    let (semid, semnum, cmd, arg) = (a.i32(0), a.i32(1), a.i32(2), a.u(3));
    let ns = current_ipc_ns();
    let mut all = alloc::vec::Vec::new();
    let io = match cmd {
        // IPC_SET reads the caller's structure before anything else (EFAULT first).
        IPC_SET if semid >= 0 => sem::SemctlIo::Set(super::read_val::<sem::Semid64Ds>(arg)?),
        sem::SETVAL => sem::SemctlIo::Val(arg as i32),
        sem::SETALL if semid >= 0 => {
            let n = sem::nsems(&ns, semid, true)?;
            crate::mm::fail::try_reserve(&mut all, n)?;
            all.resize(n, 0u16);
            let mut bytes = alloc::vec![0u8; n * 2];
            super::copy_from_user(arg, &mut bytes)?;
            for (v, b) in all.iter_mut().zip(bytes.chunks(2)) {
                *v = u16::from_ne_bytes([b[0], b[1]]);
            }
            sem::SemctlIo::All(&mut all)
        }
        sem::GETALL => sem::SemctlIo::All(&mut all),
        _ => sem::SemctlIo::None,
    };
    let (ret, out) = sem::ksys_semctl(&ns, semid, semnum, cmd, io)?;
    match out {
        sem::SemctlOut::None if cmd == sem::GETALL => {
            let bytes: alloc::vec::Vec<u8> = all.iter().flat_map(|v| v.to_ne_bytes()).collect();
            super::copy_to_user(arg, &bytes)?;
        }
        sem::SemctlOut::None => {}
        sem::SemctlOut::Stat(s) => super::write_val(arg, &s)?,
        sem::SemctlOut::Info(i) => super::write_val(arg, &i)?,
    }
    ok(ret as u32 as usize)
}

pub fn sys_shmget(a: Args) -> SysResult {
    let id = shm::ksys_shmget(&current_ipc_ns(), a.i32(0), a.u(1), a.u32(2))?;
    ok(id as usize)
}

pub fn sys_shmat(a: Args) -> SysResult {
    let addr = shm::do_shmat(&current_ipc_ns(), &crate::process::current_mm(), a.i32(0), a.u(1), a.u32(2))?;
    ok(addr as usize)
}

pub fn sys_shmdt(a: Args) -> SysResult {
    shm::ksys_shmdt(&crate::process::current_mm(), a.u(0))?;
    ok(0)
}

pub fn sys_shmctl(a: Args) -> SysResult {
    let (shmid, cmd, buf) = (a.i32(0), a.i32(1), a.u(2));
    // IPC_SET reads the caller's structure before anything else (EFAULT first).
    let set = if cmd == IPC_SET && shmid >= 0 { Some(super::read_val::<Shmid64Ds>(buf)?) } else { None };
    let (ret, out) = shm::ksys_shmctl(&current_ipc_ns(), shmid, cmd, set)?;
    match out {
        ShmctlOut::None => {}
        ShmctlOut::Stat(s) => super::write_val(buf, &s)?,
        ShmctlOut::Info(i) => super::write_val(buf, &i)?,
        ShmctlOut::ShmInfo(i) => super::write_val(buf, &i)?,
    }
    ok(ret as usize)
}
