//! uname, getrandom, reboot, futex, sysinfo.

use super::{copy_to_user, ok, read_val, write_val, Args, SysResult};
use crate::errno::*;
use crate::process::futex::*;
use crate::process::{current, current_mm};

fn field(s: &[u8]) -> [u8; 65] {
    let mut f = [0u8; 65];
    f[..s.len()].copy_from_slice(s);
    f
}

/// The system name and release uname gives (and /proc/sys/kernel/{ostype,osrelease}).
pub const UTS_SYSNAME: &[u8] = b"Linux";
pub const UTS_RELEASE: &[u8] = b"6.6.0-mshare";

pub fn sys_uname(a: Args) -> SysResult {
    let mut buf = [0u8; 65 * 6];
    let fields: [&[u8]; 6] = [UTS_SYSNAME, b"mshare", UTS_RELEASE, b"#1 SMP mshare-kernel", b"x86_64", b"(none)"];
    for (i, f) in fields.iter().enumerate() {
        buf[i * 65..(i + 1) * 65].copy_from_slice(&field(f));
    }
    copy_to_user(a.u(0), &buf)?;
    ok(0)
}

const GRND_NONBLOCK: u32 = 1;
const GRND_RANDOM: u32 = 2;
const GRND_INSECURE: u32 = 4;

pub fn sys_getrandom(a: Args) -> SysResult {
    let (buf, len, flags) = (a.u(0), a.usize(1).min(0x7fff_f000), a.u32(2));
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(EINVAL);
    }
    let mut done = 0;
    let mut chunk = [0u8; 256];
    while done < len {
        let n = (len - done).min(chunk.len());
        crate::random::fill(&mut chunk[..n]);
        if let Err(e) = super::uoff(buf, done as u64).and_then(|va| copy_to_user(va, &chunk[..n])) {
            return if done > 0 { ok(done) } else { Err(e) };
        }
        done += n;
        // As Linux's get_random_bytes_user: every page, a pending signal ends the call
        // with what was written, and the CPU goes to others if the slice is used.
        if done < len && done.is_multiple_of(crate::mm::PAGE_SIZE as usize) {
            if crate::process::signal::signal_pending(&current()) {
                break;
            }
            crate::process::sched::cond_resched();
        }
    }
    ok(done)
}

const LINUX_REBOOT_MAGIC1: u32 = 0xfee1_dead;
const LINUX_REBOOT_MAGIC2: [u32; 4] = [672274793, 85072278, 369367448, 537993216];
const LINUX_REBOOT_CMD_RESTART: u32 = 0x0123_4567;
const LINUX_REBOOT_CMD_HALT: u32 = 0xcdef_0123;
const LINUX_REBOOT_CMD_POWER_OFF: u32 = 0x4321_fedc;
const LINUX_REBOOT_CMD_CAD_ON: u32 = 0x89ab_cdef;
const LINUX_REBOOT_CMD_CAD_OFF: u32 = 0;

/// reboot (kernel/reboot.c): the capability is checked before the magic numbers.
pub fn sys_reboot(a: Args) -> SysResult {
    if !current().process.creds.lock().capable(crate::process::cred::CAP_SYS_BOOT) {
        return Err(EPERM);
    }
    if a.u32(0) != LINUX_REBOOT_MAGIC1 || !LINUX_REBOOT_MAGIC2.contains(&a.u32(1)) {
        return Err(EINVAL);
    }
    match a.u32(2) {
        LINUX_REBOOT_CMD_POWER_OFF | LINUX_REBOOT_CMD_HALT | LINUX_REBOOT_CMD_RESTART => {
            let p = current().process.clone();
            crate::println!("mshare-kernel: reboot({:#x}) by pid {}", a.u32(2), p.pid);
            if p.pid != 1 {
                crate::power_off(true);
            }
            // Init exits on its way out of this call; the rest of the system is then
            // killed, reaped and checked for leaks before the power goes (`leak`).
            crate::process::signal::kill_group(&p, crate::process::exit::exited_status(0));
            ok(0)
        }
        LINUX_REBOOT_CMD_CAD_ON | LINUX_REBOOT_CMD_CAD_OFF => ok(0),
        _ => Err(EINVAL),
    }
}

/// A relative (FUTEX_WAIT) or absolute (FUTEX_WAIT_BITSET) timeout as a deadline.
fn futex_deadline(va: u64, absolute: bool, realtime: bool) -> KResult<Option<u64>> {
    if va == 0 {
        return Ok(None);
    }
    let ts: [i64; 2] = read_val(va)?;
    if ts[0] < 0 || !(0..1_000_000_000).contains(&ts[1]) {
        return Err(EINVAL);
    }
    let ns = (ts[0] as u64).saturating_mul(1_000_000_000).saturating_add(ts[1] as u64);
    let now = crate::time::monotonic_ns();
    Ok(Some(if absolute {
        let clock_now = if realtime { crate::time::realtime_ns() as u64 } else { now };
        now.saturating_add(ns.saturating_sub(clock_now))
    } else {
        now.saturating_add(ns)
    }))
}

pub fn sys_futex(a: Args) -> SysResult {
    let (uaddr, op, val, utime, uaddr2, val3) = (a.u(0), a.u32(1), a.u32(2), a.u(3), a.u(4), a.u32(5));
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    if realtime && !matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAIT) {
        return Err(ENOSYS);
    }
    let mm = current_mm();
    match cmd {
        FUTEX_WAIT => ok(wait(&mm, uaddr, val, futex_deadline(utime, false, false)?, private)?),
        FUTEX_WAIT_BITSET => {
            if val3 == 0 {
                return Err(EINVAL);
            }
            ok(wait(&mm, uaddr, val, futex_deadline(utime, true, realtime)?, private)?)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            if cmd == FUTEX_WAKE_BITSET && val3 == 0 {
                return Err(EINVAL);
            }
            if uaddr % 4 != 0 {
                return Err(EINVAL);
            }
            ok(wake(&mm, uaddr, val as usize, private))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            if cmd == FUTEX_CMP_REQUEUE && crate::mm::usercopy::read_val::<u32>(&mm, uaddr)? != val3 {
                return Err(EAGAIN);
            }
            let _ = uaddr2;
            ok(requeue(&mm, uaddr, val as usize, utime as usize, private))
        }
        _ => {
            crate::log_once!("futex: only WAIT/WAKE(_BITSET)/REQUEUE are implemented");
            Err(ENOSYS)
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Sysinfo {
    uptime: i64,
    loads: [u64; 3],
    totalram: u64,
    freeram: u64,
    sharedram: u64,
    bufferram: u64,
    totalswap: u64,
    freeswap: u64,
    procs: u16,
    pad: u16,
    pad2: u32,
    totalhigh: u64,
    freehigh: u64,
    mem_unit: u32,
    _f: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<Sysinfo>() == 112);
crate::impl_pod!(Sysinfo);

pub fn sys_sysinfo(a: Args) -> SysResult {
    let f = crate::mm::frame::stats();
    let procs = crate::process::task::TABLES.lock().tasks.len() as u16;
    let si = Sysinfo {
        uptime: (crate::time::monotonic_ns() / 1_000_000_000) as i64,
        loads: [0; 3],
        totalram: f.usable * 4096,
        freeram: f.free * 4096,
        sharedram: 0,
        bufferram: 0,
        totalswap: 0,
        freeswap: 0,
        procs,
        pad: 0,
        pad2: 0,
        totalhigh: 0,
        freehigh: 0,
        mem_unit: 1,
        _f: [0; 4],
    };
    write_val(a.u(0), &si)?;
    ok(0)
}
