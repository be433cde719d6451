//! Process, thread and credential syscalls.

use super::{ok, read_path, read_string_array, read_val, write_val, Args, Ret, SysResult};
use crate::arch::trap::TrapFrame;
use crate::errno::*;
use crate::process::cred::{
    KernelCap, CAP_FULL_SET, CAP_LAST_CAP, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_NICE, CAP_SYS_RESOURCE,
};
use crate::process::exit::{
    do_wait, WaitKind, WaitTarget, __WALL, __WCLONE, __WNOTHREAD, WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WSTOPPED,
    WUNTRACED,
};
use crate::process::fork::*;
use crate::process::signal::{NSIG, SIGCHLD};
use crate::process::task::{find_process, Creds, Rlimit, RLIMIT_NLIMITS, SUID_DUMP_DISABLE, SUID_DUMP_USER};
use crate::process::{current, sched};
use core::sync::atomic::Ordering;

pub fn sys_getpid() -> SysResult {
    ok(current().process.pid as usize)
}

pub fn sys_gettid() -> SysResult {
    ok(current().tid() as usize)
}

pub fn sys_getppid() -> SysResult {
    ok(current().process.parent_pid() as usize)
}

pub fn sys_sched_yield() -> SysResult {
    sched::schedule();
    ok(0)
}

pub fn sys_fork(frame: &TrapFrame) -> SysResult {
    let args = CloneArgs { flags: 0, exit_signal: SIGCHLD, stack: 0, tls: 0, parent_tid: 0, child_tid: 0 };
    ok(do_clone(frame, args)? as usize)
}

pub fn sys_vfork(frame: &TrapFrame) -> SysResult {
    let args = CloneArgs {
        flags: CLONE_VM | CLONE_VFORK,
        exit_signal: SIGCHLD,
        stack: 0,
        tls: 0,
        parent_tid: 0,
        child_tid: 0,
    };
    ok(do_clone(frame, args)? as usize)
}

/// clone(flags, stack, parent_tid, child_tid, tls) — x86_64 argument order.
pub fn sys_unshare(a: Args) -> SysResult {
    crate::process::fork::ksys_unshare(a.u(0))?;
    ok(0)
}

pub fn sys_clone(frame: &TrapFrame, a: Args) -> SysResult {
    let flags = a.u(0) & 0xffff_ffff;
    let exit_signal = (flags & CSIGNAL) as u32;
    if exit_signal > NSIG {
        return Err(EINVAL);
    }
    let args = CloneArgs {
        flags: flags & !CSIGNAL,
        exit_signal,
        stack: a.u(1),
        parent_tid: a.u(2),
        child_tid: a.u(3),
        tls: a.u(4),
    };
    ok(do_clone(frame, args)? as usize)
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CloneArgs3 {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}
crate::impl_pod!(CloneArgs3);

const CLONE_ARGS_SIZE_VER0: usize = 64;

pub fn sys_clone3(frame: &TrapFrame, a: Args) -> SysResult {
    let size = a.usize(1);
    if !(CLONE_ARGS_SIZE_VER0..=4096).contains(&size) {
        return Err(EINVAL);
    }
    let mut raw = [0u8; 88];
    let n = size.min(raw.len());
    super::copy_from_user(a.u(0), &mut raw[..n])?;
    if size > raw.len() {
        // Unknown trailing fields must be zero (copy_struct_from_user).
        let mut rest = crate::mm::fail::try_vec_filled(0u8, size - raw.len())?;
        super::copy_from_user(super::uoff(a.u(0), raw.len() as u64)?, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            return Err(E2BIG);
        }
    }
    let c: CloneArgs3 = {
        let w = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        CloneArgs3 {
            flags: w(0),
            pidfd: w(1),
            child_tid: w(2),
            parent_tid: w(3),
            exit_signal: w(4),
            stack: w(5),
            stack_size: w(6),
            tls: w(7),
            set_tid: w(8),
            set_tid_size: w(9),
            cgroup: w(10),
        }
    };
    if c.exit_signal & !CSIGNAL != 0 || c.exit_signal > NSIG as u64 {
        return Err(EINVAL);
    }
    if c.flags & CSIGNAL != 0 || c.flags & (CLONE_DETACHED) != 0 {
        return Err(EINVAL);
    }
    if (c.stack == 0) != (c.stack_size == 0) {
        return Err(EINVAL);
    }
    if c.set_tid != 0 || c.set_tid_size != 0 {
        crate::log_once!("clone3: set_tid is not supported yet");
        return Err(EINVAL);
    }
    if c.flags & CLONE_INTO_CGROUP != 0 {
        return Err(EINVAL);
    }
    let args = CloneArgs {
        flags: c.flags,
        exit_signal: c.exit_signal as u32,
        stack: if c.stack != 0 { c.stack.checked_add(c.stack_size).ok_or(EINVAL)? } else { 0 },
        tls: c.tls,
        parent_tid: c.parent_tid,
        child_tid: c.child_tid,
    };
    ok(do_clone(frame, args)? as usize)
}

pub fn sys_execve(frame: &mut TrapFrame, a: Args) -> SysResult {
    let path = read_path(a.u(0))?;
    let argv = read_string_array(a.u(1))?;
    let envp = read_string_array(a.u(2))?;
    let t = current();
    crate::process::exec::exec_into(&t, frame, path, argv, envp)?;
    Ok(Ret::Frame)
}

/// The thread ends in `exit_to_user_mode`, once this syscall has unwound.
pub fn sys_exit(a: Args) -> SysResult {
    let t = current();
    *t.exit_status.lock() = Some(crate::process::exit::exited_status(a.i32(0)));
    t.set_pending_work();
    ok(0)
}

/// Every thread of the process gets SIGKILL; each, this one included, ends in
/// `exit_to_user_mode` with the group's status.
pub fn sys_exit_group(a: Args) -> SysResult {
    let p = current().process.clone();
    crate::process::signal::kill_group(&p, crate::process::exit::exited_status(a.i32(0)));
    ok(0)
}

fn wait_target(pid: i32) -> WaitTarget {
    match pid {
        -1 => WaitTarget::Any,
        0 => WaitTarget::Pgid(current().process.pgid()),
        p if p < -1 => WaitTarget::Pgid(p.unsigned_abs()),
        p => WaitTarget::Pid(p as u32),
    }
}

/// `struct rusage`: zeroed but for what we count.
fn write_rusage(va: u64) -> KResult<()> {
    if va != 0 {
        write_val(va, &[0u64; 18])?;
    }
    Ok(())
}

pub fn sys_wait4(a: Args) -> SysResult {
    let options = a.u32(2);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL) != 0 {
        return Err(EINVAL);
    }
    // -INT_MIN does not exist (kernel_wait4).
    if a.i32(0) == i32::MIN {
        return Err(ESRCH);
    }
    match do_wait(wait_target(a.i32(0)), options | WEXITED)? {
        None => ok(0),
        Some(r) => {
            if a.u(1) != 0 {
                write_val(a.u(1), &r.status)?;
            }
            write_rusage(a.u(3))?;
            ok(r.pid as usize)
        }
    }
}

const P_ALL: u32 = 0;
const P_PID: u32 = 1;
const P_PGID: u32 = 2;
const P_PIDFD: u32 = 3;

/// pidfd_open (Linux's kernel/pid.c, 6.1): a close-on-exec descriptor of process `pid`
/// (a thread that leads no group is EINVAL), readable once the process has exited; waitid
/// takes it with P_PIDFD.
pub fn sys_pidfd_open(a: Args) -> SysResult {
    use crate::fs::file::{File, FileKind, O_NONBLOCK, O_RDWR};
    let (pid, flags) = (a.i32(0), a.u32(1));
    if flags & !O_NONBLOCK != 0 || pid <= 0 {
        return Err(EINVAL);
    }
    let p = match find_process(pid as u32) {
        Some(p) => p,
        None if crate::process::task::find_task(pid as u32).is_some() => return Err(EINVAL),
        None => return Err(ESRCH),
    };
    let kind = FileKind::PidFd(p, crate::fs::tmpfs::next_ino());
    let f = File::new(kind, O_RDWR | flags, alloc::string::String::from("anon_inode:[pidfd]"));
    ok(super::fs::install(f, true)?)
}

pub fn sys_waitid(a: Args) -> SysResult {
    let (idtype, id, infop, options) = (a.u32(0), a.u32(1), a.u(2), a.u32(3));
    if options & !(WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL) != 0
        || options & (WEXITED | WSTOPPED | WCONTINUED) == 0
    {
        return Err(EINVAL);
    }
    let mut options = options;
    let mut pidfd_nonblock = false;
    let target = match idtype {
        P_ALL => WaitTarget::Any,
        P_PID => WaitTarget::Pid(id),
        P_PGID => WaitTarget::Pgid(if id == 0 { current().process.pgid() } else { id }),
        // `pidfd_get_pid`: a descriptor that is not a pidfd is EBADF; a non-blocking
        // pidfd makes the wait WNOHANG, and EAGAIN when nothing is ready.
        P_PIDFD => {
            let f = super::fs::get_file(id as i32)?;
            let crate::fs::file::FileKind::PidFd(p, _) = &f.kind else { return Err(EBADF) };
            if f.nonblock() {
                pidfd_nonblock = options & WNOHANG == 0;
                options |= WNOHANG;
            }
            WaitTarget::Pid(p.pid)
        }
        _ => return Err(EINVAL),
    };
    // waitid spells "report stops" WSTOPPED (= wait4's WUNTRACED); exits are
    // reported only when WEXITED is asked for.
    let r = do_wait(target, options)?;
    if pidfd_nonblock && r.is_none() {
        return Err(EAGAIN);
    }
    if infop != 0 {
        use crate::process::signal::{
            SigInfo, CLD_CONTINUED, CLD_DUMPED, CLD_EXITED, CLD_KILLED, CLD_STOPPED, SIGCONT,
        };
        let info = match &r {
            None => SigInfo { signo: 0, errno: 0, code: 0, _pad: 0, field0: 0, field1: 0, rest: [0; 12] },
            Some(r) if matches!(r.kind, WaitKind::Stopped(_)) => {
                SigInfo::child(CLD_STOPPED, r.pid, r.uid, r.status >> 8)
            }
            Some(r) if r.kind == WaitKind::Continued => SigInfo::child(CLD_CONTINUED, r.pid, r.uid, SIGCONT as i32),
            Some(r) => {
                let (code, st) = if r.status & 0x7f == 0 {
                    (CLD_EXITED, (r.status >> 8) & 0xff)
                } else if r.status & 0x80 != 0 {
                    (CLD_DUMPED, r.status & 0x7f)
                } else {
                    (CLD_KILLED, r.status & 0x7f)
                };
                SigInfo::child(code, r.pid, r.uid, st)
            }
        };
        write_val(infop, &info)?;
    }
    write_rusage(a.u(4))?;
    ok(0)
}

pub fn sys_set_tid_address(a: Args) -> SysResult {
    let t = current();
    t.clear_child_tid.store(a.u(0), Ordering::Relaxed);
    ok(t.tid() as usize)
}

pub fn sys_set_robust_list(a: Args) -> SysResult {
    if a.u(1) != 24 {
        return Err(EINVAL);
    }
    current().robust_list.store(a.u(0), Ordering::Relaxed);
    ok(0)
}

pub fn sys_rseq(a: Args) -> SysResult {
    crate::process::rseq::sys_rseq(&current(), a.u(0), a.u32(1), a.i32(2), a.u32(3))?;
    ok(0)
}

pub fn sys_get_robust_list(a: Args) -> SysResult {
    let pid = a.u32(0);
    let t = if pid == 0 { current() } else { crate::process::task::find_task(pid).ok_or(ESRCH)? };
    write_val(a.u(1), &t.robust_list.load(Ordering::Relaxed))?;
    write_val(a.u(2), &24u64)?;
    ok(0)
}

const ARCH_SET_GS: u32 = 0x1001;
const ARCH_SET_FS: u32 = 0x1002;
const ARCH_GET_FS: u32 = 0x1003;
const ARCH_GET_GS: u32 = 0x1004;

pub fn sys_arch_prctl(a: Args) -> SysResult {
    let t = current();
    match a.u32(0) {
        ARCH_SET_FS => {
            if a.u(1) >= crate::mm::address_space::TASK_SIZE {
                return Err(EPERM);
            }
            t.fs_base.store(a.u(1), Ordering::Relaxed);
            crate::arch::percpu::set_user_fs_base(a.u(1));
            ok(0)
        }
        ARCH_GET_FS => {
            write_val(a.u(1), &t.fs_base.load(Ordering::Relaxed))?;
            ok(0)
        }
        ARCH_SET_GS | ARCH_GET_GS => {
            crate::log_once!("arch_prctl: GS base is not supported yet");
            Err(EINVAL)
        }
        _ => Err(EINVAL),
    }
}

const PR_SET_PDEATHSIG: u32 = 1;
const PR_GET_PDEATHSIG: u32 = 2;
const PR_GET_DUMPABLE: u32 = 3;
const PR_SET_DUMPABLE: u32 = 4;
const PR_GET_KEEPCAPS: u32 = 7;
const PR_SET_KEEPCAPS: u32 = 8;
const PR_SET_NAME: u32 = 15;
const PR_GET_NAME: u32 = 16;
const PR_CAPBSET_READ: u32 = 23;
const PR_CAPBSET_DROP: u32 = 24;
const PR_SET_CHILD_SUBREAPER: u32 = 36;
const PR_GET_CHILD_SUBREAPER: u32 = 37;
const PR_SET_NO_NEW_PRIVS: u32 = 38;
const PR_GET_NO_NEW_PRIVS: u32 = 39;

pub fn sys_prctl(a: Args) -> SysResult {
    match a.u32(0) {
        PR_SET_NAME => {
            // Up to 15 bytes are kept (TASK_COMM_LEN 16 with the NUL).
            let mut buf = [0u8; 16];
            let mm = crate::process::current_mm();
            for (i, slot) in buf.iter_mut().take(15).enumerate() {
                let b: u8 = crate::mm::usercopy::read_val(&mm, super::uoff(a.u(1), i as u64)?)?;
                if b == 0 {
                    break;
                }
                *slot = b;
            }
            *current().comm.lock() = buf;
            ok(0)
        }
        PR_GET_NAME => {
            let comm = *current().comm.lock();
            super::copy_to_user(a.u(1), &comm)?;
            ok(0)
        }
        PR_GET_DUMPABLE => ok(current().process.dumpable.load(Ordering::Relaxed) as usize),
        PR_SET_DUMPABLE => {
            let v = match a.u(1) {
                0 => SUID_DUMP_DISABLE,
                1 => SUID_DUMP_USER,
                _ => return Err(EINVAL),
            };
            current().process.dumpable.store(v, Ordering::Relaxed);
            ok(0)
        }
        PR_GET_KEEPCAPS => ok(current().process.creds.lock().keep_caps as usize),
        PR_SET_KEEPCAPS => {
            if a.u(1) > 1 {
                return Err(EINVAL);
            }
            current().process.creds.lock().keep_caps = a.u(1) == 1;
            ok(0)
        }
        PR_CAPBSET_READ => {
            if a.u(1) > CAP_LAST_CAP as u64 {
                return Err(EINVAL);
            }
            ok((current().process.creds.lock().cap_bset >> a.u(1) & 1) as usize)
        }
        PR_CAPBSET_DROP => {
            let t = current();
            let mut c = t.process.creds.lock();
            if !c.capable(CAP_SETPCAP) {
                return Err(EPERM);
            }
            if a.u(1) > CAP_LAST_CAP as u64 {
                return Err(EINVAL);
            }
            c.cap_bset &= !(1 << a.u(1));
            ok(0)
        }
        PR_GET_PDEATHSIG => {
            write_val(a.u(1), &0i32)?;
            ok(0)
        }
        PR_GET_NO_NEW_PRIVS | PR_GET_CHILD_SUBREAPER => ok(0),
        cmd @ (PR_SET_PDEATHSIG | PR_SET_CHILD_SUBREAPER | PR_SET_NO_NEW_PRIVS) => {
            crate::log_once!("prctl: PR_SET_PDEATHSIG/SUBREAPER/NO_NEW_PRIVS are not supported yet");
            let _ = cmd;
            Err(EINVAL)
        }
        _ => Err(EINVAL),
    }
}

// ---- credentials -----------------------------------------------------------

pub fn sys_getuid() -> SysResult {
    ok(current().process.creds.lock().uid as usize)
}
pub fn sys_geteuid() -> SysResult {
    ok(current().process.creds.lock().euid as usize)
}
pub fn sys_getgid() -> SysResult {
    ok(current().process.creds.lock().gid as usize)
}
pub fn sys_getegid() -> SysResult {
    ok(current().process.creds.lock().egid as usize)
}

/// The four ids of one kind, user or group: real, effective, saved, fs.
struct Ids<'a> {
    r: &'a mut u32,
    e: &'a mut u32,
    s: &'a mut u32,
    fs: &'a mut u32,
}

fn ids(c: &mut Creds, group: bool) -> Ids<'_> {
    if group {
        Ids { r: &mut c.gid, e: &mut c.egid, s: &mut c.sgid, fs: &mut c.fsgid }
    } else {
        Ids { r: &mut c.uid, e: &mut c.euid, s: &mut c.suid, fs: &mut c.fsuid }
    }
}

/// The capability that lifts the rules on changing user (CAP_SETUID) or group
/// (CAP_SETGID) ids.
fn setid_cap(group: bool) -> u32 {
    if group {
        CAP_SETGID
    } else {
        CAP_SETUID
    }
}

/// Runs `f` on the ids of the current process with whether it is privileged;
/// a change of user ids then adjusts the capability sets (`cap_task_fix_setuid`).
fn with_ids(group: bool, f: impl FnOnce(Ids<'_>, bool) -> KResult<()>) -> SysResult {
    let t = current();
    let mut c = t.process.creds.lock();
    let old = c.clone();
    let capable = c.capable(setid_cap(group));
    f(ids(&mut c, group), capable)?;
    if !group {
        c.fix_setuid(&old);
    }
    if c.changes_dumpability(&old) {
        t.process.dumpable.store(SUID_DUMP_DISABLE, Ordering::Relaxed);
    }
    ok(0)
}

/// setfsuid/setfsgid (`__sys_setfsuid`): the fs id may become the real,
/// effective, saved or current fs id, or anything with CAP_SETUID/CAP_SETGID; an
/// invalid or refused id changes nothing. Returns the previous fs id; an fsuid
/// change moves the filesystem capabilities with it.
fn set_fs_id(id: u32, group: bool) -> SysResult {
    let t = current();
    let mut c = t.process.creds.lock();
    let capable = c.capable(setid_cap(group));
    let ids = ids(&mut c, group);
    let prev = *ids.fs;
    let allowed = id == *ids.r || id == *ids.e || id == *ids.s || capable;
    if id == u32::MAX || id == prev || !allowed {
        return ok(prev as usize);
    }
    *ids.fs = id;
    if !group {
        c.fix_setfsuid(prev);
    }
    t.process.dumpable.store(SUID_DUMP_DISABLE, Ordering::Relaxed);
    ok(prev as usize)
}

pub fn sys_setfsuid(a: Args) -> SysResult {
    set_fs_id(a.u32(0), false)
}
pub fn sys_setfsgid(a: Args) -> SysResult {
    set_fs_id(a.u32(0), true)
}

/// setuid/setgid (kernel/sys.c `__sys_setuid`): privileged callers set all
/// ids; others may only set the effective id to the real or saved one.
fn set_id(id: u32, group: bool) -> SysResult {
    if id == u32::MAX {
        return Err(EINVAL);
    }
    with_ids(group, |ids, capable| {
        if capable {
            *ids.r = id;
            *ids.s = id;
        } else if id != *ids.r && id != *ids.s {
            return Err(EPERM);
        }
        *ids.e = id;
        *ids.fs = id;
        Ok(())
    })
}

/// setresuid/setresgid: -1 keeps a value; unprivileged callers may only use
/// ids they already have.
fn set_res(r: u32, e: u32, s: u32, group: bool) -> SysResult {
    with_ids(group, |ids, capable| {
        let current = [*ids.r, *ids.e, *ids.s];
        let allowed = |v: u32| v == u32::MAX || current.contains(&v);
        if !(capable || allowed(r) && allowed(e) && allowed(s)) {
            return Err(EPERM);
        }
        for (slot, v) in [(&mut *ids.r, r), (&mut *ids.e, e), (&mut *ids.s, s)] {
            if v != u32::MAX {
                *slot = v;
            }
        }
        *ids.fs = *ids.e;
        Ok(())
    })
}

/// setreuid/setregid (`__sys_setreuid`): the saved id follows the new
/// effective id when the real id is set or the effective id differs from the
/// old real id.
fn set_re(r: u32, e: u32, group: bool) -> SysResult {
    with_ids(group, |ids, capable| {
        let (old_r, old_e, old_s) = (*ids.r, *ids.e, *ids.s);
        if r != u32::MAX && !capable && r != old_r && r != old_e {
            return Err(EPERM);
        }
        if e != u32::MAX && !capable && e != old_r && e != old_e && e != old_s {
            return Err(EPERM);
        }
        if r != u32::MAX {
            *ids.r = r;
        }
        if e != u32::MAX {
            *ids.e = e;
        }
        if r != u32::MAX || (e != u32::MAX && e != old_r) {
            *ids.s = *ids.e;
        }
        *ids.fs = *ids.e;
        Ok(())
    })
}

fn get_res(a: &Args, group: bool) -> SysResult {
    let mut c = current().process.creds.lock().clone();
    let ids = ids(&mut c, group);
    write_val(a.u(0), &*ids.r)?;
    write_val(a.u(1), &*ids.e)?;
    write_val(a.u(2), &*ids.s)?;
    ok(0)
}

pub fn sys_setuid(a: Args) -> SysResult {
    set_id(a.u32(0), false)
}
pub fn sys_setgid(a: Args) -> SysResult {
    set_id(a.u32(0), true)
}
pub fn sys_setresuid(a: Args) -> SysResult {
    set_res(a.u32(0), a.u32(1), a.u32(2), false)
}
pub fn sys_setresgid(a: Args) -> SysResult {
    set_res(a.u32(0), a.u32(1), a.u32(2), true)
}
pub fn sys_setreuid(a: Args) -> SysResult {
    set_re(a.u32(0), a.u32(1), false)
}
pub fn sys_setregid(a: Args) -> SysResult {
    set_re(a.u32(0), a.u32(1), true)
}
pub fn sys_getresuid(a: Args) -> SysResult {
    get_res(&a, false)
}
pub fn sys_getresgid(a: Args) -> SysResult {
    get_res(&a, true)
}

/// getgroups(size, list): size 0 asks for the count; a smaller list is EINVAL.
pub fn sys_getgroups(a: Args) -> SysResult {
    let size = a.i32(0);
    if size < 0 {
        return Err(EINVAL);
    }
    let groups = current().process.creds.lock().groups.clone();
    if size == 0 {
        return ok(groups.len());
    }
    if (size as usize) < groups.len() {
        return Err(EINVAL);
    }
    for (i, g) in groups.iter().enumerate() {
        write_val(super::uoff(a.u(1), 4 * i as u64)?, g)?;
    }
    ok(groups.len())
}

pub fn sys_setgroups(a: Args) -> SysResult {
    if !current().process.creds.lock().capable(CAP_SETGID) {
        return Err(EPERM);
    }
    const NGROUPS_MAX: usize = 65536;
    let n = a.usize(0);
    if n > NGROUPS_MAX {
        return Err(EINVAL);
    }
    let mut groups = crate::mm::fail::try_vec_with_capacity(n)?;
    for i in 0..n {
        groups.push(read_val::<u32>(super::uoff(a.u(1), 4 * i as u64)?)?);
    }
    groups.sort_unstable();
    current().process.creds.lock().groups = alloc::sync::Arc::new(groups);
    ok(0)
}

// ---- capabilities (kernel/capability.c) ---------------------------------------

const LINUX_CAPABILITY_VERSION_1: u32 = 0x1998_0330;
const LINUX_CAPABILITY_VERSION_2: u32 = 0x2007_1026;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// One 32-bit slice of the three sets (`struct __user_cap_data_struct`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
crate::impl_pod!(CapData);

/// The header's version (`cap_validate_magic`): how many CapData slices the
/// caller passes (1 for version 1, 2 for versions 2 and 3); an unknown version
/// is EINVAL, with the kernel's preferred version written back.
fn cap_validate_magic(header: u64) -> KResult<usize> {
    match read_val::<u32>(header)? {
        LINUX_CAPABILITY_VERSION_1 => Ok(1),
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => Ok(2),
        _ => {
            write_val(header, &LINUX_CAPABILITY_VERSION_3)?;
            Err(EINVAL)
        }
    }
}

/// capget(header, data): the sets of the thread `header.pid` names (0: the
/// caller). A NULL data pointer only probes the version (0 even when the
/// version was wrong).
pub fn sys_capget(a: Args) -> SysResult {
    let (header, data) = (a.u(0), a.u(1));
    let words = match cap_validate_magic(header) {
        Err(EINVAL) if data == 0 => return ok(0),
        r => r?,
    };
    if data == 0 {
        return ok(0);
    }
    let pid: i32 = read_val(super::uoff(header, 4)?)?;
    if pid < 0 {
        return Err(EINVAL);
    }
    let t = current();
    let c = if pid == 0 || pid as u32 == t.tid() {
        t.process.creds.lock().clone()
    } else {
        crate::process::task::find_task(pid as u32).ok_or(ESRCH)?.process.creds.lock().clone()
    };
    for i in 0..words {
        let slice = |set: KernelCap| (set >> (32 * i)) as u32;
        let d = CapData {
            effective: slice(c.cap_effective),
            permitted: slice(c.cap_permitted),
            inheritable: slice(c.cap_inheritable),
        };
        write_val(super::uoff(data, 12 * i as u64)?, &d)?;
    }
    ok(0)
}

/// capset(header, data): only the calling thread's own sets (another pid is
/// EPERM), under `cap_capset`'s rules.
pub fn sys_capset(a: Args) -> SysResult {
    let (header, data) = (a.u(0), a.u(1));
    let words = cap_validate_magic(header)?;
    let pid: i32 = read_val(super::uoff(header, 4)?)?;
    let t = current();
    if pid != 0 && pid as u32 != t.tid() {
        return Err(EPERM);
    }
    let (mut e, mut p, mut i): (KernelCap, KernelCap, KernelCap) = (0, 0, 0);
    for w in 0..words {
        let d: CapData = read_val(super::uoff(data, 12 * w as u64)?)?;
        e |= (d.effective as u64) << (32 * w);
        p |= (d.permitted as u64) << (32 * w);
        i |= (d.inheritable as u64) << (32 * w);
    }
    t.process.creds.lock().capset(e & CAP_FULL_SET, p & CAP_FULL_SET, i & CAP_FULL_SET)?;
    ok(0)
}

// ---- process groups and sessions ----------------------------------------

fn process_or_self(pid: i32) -> KResult<alloc::sync::Arc<crate::process::task::Process>> {
    if pid == 0 {
        return Ok(current().process.clone());
    }
    if pid < 0 {
        return Err(EINVAL);
    }
    find_process(pid as u32).ok_or(ESRCH)
}

pub fn sys_getpgid(a: Args) -> SysResult {
    ok(process_or_self(a.i32(0))?.pgid() as usize)
}

pub fn sys_getpgrp() -> SysResult {
    ok(current().process.pgid() as usize)
}

pub fn sys_getsid(a: Args) -> SysResult {
    ok(process_or_self(a.i32(0))?.sid.load(Ordering::Relaxed) as usize)
}

/// setpgid (Linux's `ksys_setpgid`): the caller or a child of its session that has not
/// exec'd joins a group of the caller's session, or starts its own; a session leader
/// stays where it is. A zombie still makes its group exist, as its pid does in Linux.
pub fn sys_setpgid(a: Args) -> SysResult {
    let (pid, pgid) = (a.i32(0), a.i32(1));
    if pgid < 0 {
        return Err(EINVAL);
    }
    let me = current().process.clone();
    let p = process_or_self(pid)?;
    if pid > 0 && crate::process::task::find_task(pid as u32).is_some_and(|t| t.tid() != p.pid) {
        return Err(EINVAL); // a thread that does not lead its group
    }
    let my_sid = me.sid.load(Ordering::Relaxed);
    let is_child = p.parent.lock().upgrade().is_some_and(|pp| alloc::sync::Arc::ptr_eq(&pp, &me));
    if is_child {
        if p.sid.load(Ordering::Relaxed) != my_sid {
            return Err(EPERM);
        }
        if p.did_exec.load(Ordering::Relaxed) {
            return Err(EACCES);
        }
    } else if !alloc::sync::Arc::ptr_eq(&p, &me) {
        return Err(ESRCH);
    }
    if p.sid.load(Ordering::Relaxed) == p.pid {
        return Err(EPERM);
    }
    let pgid = if pgid == 0 { p.pid } else { pgid as u32 };
    if pgid != p.pid {
        let exists = crate::process::task::all_processes()
            .iter()
            .any(|q| q.pgid() == pgid && q.sid.load(Ordering::Relaxed) == my_sid);
        if !exists {
            return Err(EPERM);
        }
    }
    p.pgid.store(pgid, Ordering::Relaxed);
    ok(0)
}

/// setsid (Linux's `ksys_setsid`): a process that leads no group starts a session and a
/// group of its own, without a controlling terminal.
pub fn sys_setsid() -> SysResult {
    let p = current().process.clone();
    let taken = p.sid.load(Ordering::Relaxed) == p.pid
        || crate::process::task::all_processes().iter().any(|q| q.pgid() == p.pid);
    if taken {
        return Err(EPERM);
    }
    p.pgid.store(p.pid, Ordering::Relaxed);
    p.sid.store(p.pid, Ordering::Relaxed);
    *p.tty.lock() = None;
    ok(p.pid as usize)
}

// ---- resource limits --------------------------------------------------------

fn check_resource(r: u32) -> KResult<usize> {
    let r = r as usize;
    if r >= RLIMIT_NLIMITS {
        return Err(EINVAL);
    }
    Ok(r)
}

/// Applies a new limit (`do_prlimit`): soft <= hard; raising the hard limit
/// needs CAP_SYS_RESOURCE; RLIMIT_NOFILE is capped at nr_open.
fn set_limit(p: &crate::process::task::Process, r: usize, new: Rlimit) -> KResult<()> {
    if new.cur > new.max {
        return Err(EINVAL);
    }
    if r == crate::process::task::RLIMIT_NOFILE && new.max > 1 << 20 {
        return Err(EPERM);
    }
    // The credentials first: fork takes them before the limits (`sync::order`).
    let privileged = p.creds.lock().capable(CAP_SYS_RESOURCE);
    let mut lim = p.rlimits.lock();
    if new.max > lim[r].max && !privileged {
        return Err(EPERM);
    }
    lim[r] = new;
    Ok(())
}

pub fn sys_getrlimit(a: Args) -> SysResult {
    let r = check_resource(a.u32(0))?;
    write_val(a.u(1), &current().process.rlimit(r))?;
    ok(0)
}

pub fn sys_setrlimit(a: Args) -> SysResult {
    let r = check_resource(a.u32(0))?;
    let new: Rlimit = read_val(a.u(1))?;
    set_limit(&current().process, r, new)?;
    ok(0)
}

pub fn sys_prlimit64(a: Args) -> SysResult {
    let r = check_resource(a.u32(1))?;
    let p = process_or_self(a.i32(0))?;
    let old = p.rlimit(r);
    if a.u(2) != 0 {
        let new: Rlimit = read_val(a.u(2))?;
        set_limit(&p, r, new)?;
    }
    if a.u(3) != 0 {
        write_val(a.u(3), &old)?;
    }
    ok(0)
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

/// getrusage: CPU times (`struct timeval`s) and minor faults.
pub fn sys_getrusage(a: Args) -> SysResult {
    let t = current();
    let (cpu, minflt) = match a.i32(0) {
        RUSAGE_SELF => (t.process.cpu_time(), t.process.min_flt.load(Ordering::Relaxed)),
        RUSAGE_CHILDREN => (t.process.children_cpu_time(), 0),
        RUSAGE_THREAD => (t.cpu_time(), 0),
        _ => return Err(EINVAL),
    };
    let mut ru = [0u64; 18];
    ru[0] = cpu.user / 1_000_000_000;
    ru[1] = cpu.user % 1_000_000_000 / 1000;
    ru[2] = cpu.sys / 1_000_000_000;
    ru[3] = cpu.sys % 1_000_000_000 / 1000;
    // ru_minflt is the 9th long (after two timevals and four longs).
    ru[8] = minflt;
    write_val(a.u(1), &ru)?;
    ok(0)
}

/// times(): CPU times in clock ticks (USER_HZ 100); returns the ticks since boot.
pub fn sys_times(a: Args) -> SysResult {
    if a.u(0) != 0 {
        let p = current().process.clone();
        let (me, kids) = (p.cpu_time(), p.children_cpu_time());
        let tick = crate::process::task::TICK_NS;
        write_val(a.u(0), &[me.user / tick, me.sys / tick, kids.user / tick, kids.sys / tick])?;
    }
    ok((crate::time::monotonic_ns() / crate::process::task::TICK_NS) as usize)
}

const PRIO_PROCESS: u32 = 0;
const PRIO_PGRP: u32 = 1;
const PRIO_USER: u32 = 2;

/// The processes a priority call names.
fn prio_targets(which: u32, who: u32) -> KResult<alloc::vec::Vec<alloc::sync::Arc<crate::process::task::Process>>> {
    let me = current().process.clone();
    let all =
        || crate::process::task::all_processes().into_iter().filter(|p| !p.is_zombie()).collect::<alloc::vec::Vec<_>>();
    let v = match which {
        PRIO_PROCESS => {
            alloc::vec![if who == 0 { me } else { find_process(who).filter(|p| !p.is_zombie()).ok_or(ESRCH)? }]
        }
        PRIO_PGRP => {
            let g = if who == 0 { me.pgid() } else { who };
            all().into_iter().filter(|p| p.pgid() == g).collect()
        }
        PRIO_USER => {
            let u = if who == 0 { me.creds.lock().uid } else { who };
            all().into_iter().filter(|p| p.creds.lock().uid == u).collect()
        }
        _ => return Err(EINVAL),
    };
    if v.is_empty() {
        return Err(ESRCH);
    }
    Ok(v)
}

/// getpriority: the raw syscall returns 20 - nice (1..40), as Linux.
pub fn sys_getpriority(a: Args) -> SysResult {
    let best = prio_targets(a.u32(0), a.u32(1))?.iter().map(|p| p.nice.load(Ordering::Relaxed)).min().unwrap();
    ok((20 - best) as usize)
}

/// setpriority: nice clamped to -20..19; lowering it needs CAP_SYS_NICE.
pub fn sys_setpriority(a: Args) -> SysResult {
    let nice = a.i32(2).clamp(-20, 19);
    let capable = current().process.creds.lock().capable(CAP_SYS_NICE);
    for p in prio_targets(a.u32(0), a.u32(1))? {
        if nice < p.nice.load(Ordering::Relaxed) && !capable {
            return Err(EACCES);
        }
        p.nice.store(nice, Ordering::Relaxed);
    }
    ok(0)
}

/// Linux's `cpumask_size()`: the bytes of a kernel CPU mask (one long for up to 64
/// CPUs, as Linux with CONFIG_CPUMASK_OFFSTACK sizes it by `nr_cpu_ids`).
const CPUMASK_SIZE: usize = 8;

/// The task a scheduler call names: the caller for 0, else any thread id (Linux's
/// `find_process_by_pid`, which finds threads too).
fn sched_target(pid: i32) -> KResult<alloc::sync::Arc<crate::process::task::Task>> {
    if pid == 0 {
        return Ok(current());
    }
    if pid < 0 {
        return Err(ESRCH);
    }
    crate::process::task::find_task(pid as u32).ok_or(ESRCH)
}

/// sched_setaffinity(pid, len, mask): the first `min(len, 8)` bytes are the mask, the rest
/// zero (Linux's `get_user_cpu_mask`); EFAULT before ESRCH;
/// EPERM unless the caller owns the target or has CAP_SYS_NICE; EINVAL if the mask holds
/// no online CPU. The task moves at once if its CPU is no longer allowed.
pub fn sys_sched_setaffinity(a: Args) -> SysResult {
    let mut bytes = [0u8; CPUMASK_SIZE];
    let n = a.usize(1).min(CPUMASK_SIZE);
    super::copy_from_user(a.u(2), &mut bytes[..n])?;
    let mask = u64::from_le_bytes(bytes);
    let t = sched_target(a.i32(0))?;
    {
        let me = current().process.creds.lock().clone();
        let them = t.process.creds.lock().clone();
        if me.euid != them.euid && me.euid != them.uid && !me.capable(CAP_SYS_NICE) {
            return Err(EPERM);
        }
    }
    let online = crate::arch::percpu::cpu_online_mask();
    let allowed = crate::arch::percpu::CpuMask(mask & online.0);
    if allowed.is_empty() {
        return Err(EINVAL);
    }
    sched::set_cpus_allowed(&t, allowed);
    ok(0)
}

/// sched_getaffinity(pid, len, mask): the task's mask among the online CPUs; `len` must
/// be a multiple of 8 that holds a bit per possible CPU (EINVAL). Returns the bytes
/// written, `min(len, 8)`, as the raw syscall does.
pub fn sys_sched_getaffinity(a: Args) -> SysResult {
    let len = a.usize(1);
    let cpus = crate::arch::percpu::nr_cpus_online();
    if len.saturating_mul(8) < cpus || !len.is_multiple_of(8) {
        return Err(EINVAL);
    }
    let t = sched_target(a.i32(0))?;
    let mask = t.cpus_allowed.load(Ordering::Relaxed) & crate::arch::percpu::cpu_online_mask().0;
    let n = len.min(CPUMASK_SIZE);
    super::copy_to_user(a.u(2), &mask.to_le_bytes()[..n])?;
    ok(n)
}

/// getcpu(cpu, node, tcache): the CPU the caller runs on (it may have moved by the time
/// the caller looks) and NUMA node 0; `tcache` is ignored, as since Linux 2.6.24.
pub fn sys_getcpu(a: Args) -> SysResult {
    let cpu = crate::arch::percpu::cpu_id() as u32;
    if a.u(0) != 0 {
        write_val(a.u(0), &cpu)?;
    }
    if a.u(1) != 0 {
        write_val(a.u(1), &0u32)?;
    }
    ok(0)
}
