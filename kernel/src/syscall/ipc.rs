//! SysV IPC syscalls: argument decoding and copies; the policy is `ipc/`.

use super::{ok, Args, SysResult};
use crate::ipc::shm::{self, ShmctlOut, Shmid64Ds};
use crate::ipc::{current_ipc_ns, IPC_SET};

pub fn sys_setns(a: Args) -> SysResult {
    let f = super::fs::get_file(a.i32(0))?;
    crate::ipc::setns(&f, a.u(1) & 0xffff_ffff)?;
    ok(0)
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
