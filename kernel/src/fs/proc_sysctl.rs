//! `/proc/sys` (Linux's fs/proc/proc_sysctl.c over the tables of kernel/sysctl.c): a
//! directory tree of knobs, each a file whose read and write go through its handler as
//! Linux's `proc_dointvec_minmax`, `proc_doulongvec_minmax` and `proc_dostring` do: an
//! integer is read whole at offset 0 (a read at any other offset is end of file), written
//! as one decimal (or 0x hex, 0 octal) number with optional surrounding white space
//! (garbage or an out-of-range value is EINVAL, a write at an offset past 0 is ignored);
//! a string is read and written from the file offset, up to its maximum length.
//!
//! Permissions are the knob's mode alone (`sysctl_perm` → `test_perm`): root (euid 0)
//! gets the owner bits, the root group the group bits, everyone else the other bits, so
//! a 0444 knob is read-only even for root. Some handlers ask for a capability on write.

use super::vfs::*;
use crate::errno::*;
use crate::leak::Live;
use crate::mm::commit;
use crate::process::cred::{Creds, CAP_SYS_ADMIN, CAP_SYS_RAWIO};
use crate::process::fork;
use crate::sync::SpinLock as Mutex;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

/// What a knob is and where its value lives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Knob {
    Dir,
    CorePattern,
    OsRelease,
    OsType,
    Msgmax,
    Msgmnb,
    Msgmni,
    PidMax,
    Sem,
    ShmRmidForced,
    Shmall,
    Shmmax,
    Shmmni,
    Tainted,
    ThreadsMax,
    MaxMapCount,
    MmapMinAddr,
    OvercommitKbytes,
    OvercommitMemory,
    OvercommitRatio,
    PtShare,
    PtShareMinBytes,
    StatRefresh,
}

struct Node {
    name: &'static str,
    /// Index of the parent directory (the root, 0, is its own).
    parent: usize,
    mode: u32,
    knob: Knob,
}

/// The tree in name order (Linux lists a directory sorted by name): `sys`, then
/// `kernel/` and `vm/` and their knobs.
const NODES: &[Node] = &[
    Node { name: "sys", parent: 0, mode: 0o555, knob: Knob::Dir },
    Node { name: "kernel", parent: 0, mode: 0o555, knob: Knob::Dir },
    Node { name: "vm", parent: 0, mode: 0o555, knob: Knob::Dir },
    Node { name: "core_pattern", parent: 1, mode: 0o644, knob: Knob::CorePattern },
    Node { name: "osrelease", parent: 1, mode: 0o444, knob: Knob::OsRelease },
    Node { name: "ostype", parent: 1, mode: 0o444, knob: Knob::OsType },
    Node { name: "msgmax", parent: 1, mode: 0o644, knob: Knob::Msgmax },
    Node { name: "msgmnb", parent: 1, mode: 0o644, knob: Knob::Msgmnb },
    Node { name: "msgmni", parent: 1, mode: 0o644, knob: Knob::Msgmni },
    Node { name: "pid_max", parent: 1, mode: 0o644, knob: Knob::PidMax },
    Node { name: "sem", parent: 1, mode: 0o644, knob: Knob::Sem },
    Node { name: "shm_rmid_forced", parent: 1, mode: 0o644, knob: Knob::ShmRmidForced },
    Node { name: "shmall", parent: 1, mode: 0o644, knob: Knob::Shmall },
    Node { name: "shmmax", parent: 1, mode: 0o644, knob: Knob::Shmmax },
    Node { name: "shmmni", parent: 1, mode: 0o644, knob: Knob::Shmmni },
    Node { name: "tainted", parent: 1, mode: 0o644, knob: Knob::Tainted },
    Node { name: "threads-max", parent: 1, mode: 0o644, knob: Knob::ThreadsMax },
    Node { name: "max_map_count", parent: 2, mode: 0o644, knob: Knob::MaxMapCount },
    Node { name: "mmap_min_addr", parent: 2, mode: 0o644, knob: Knob::MmapMinAddr },
    Node { name: "overcommit_kbytes", parent: 2, mode: 0o644, knob: Knob::OvercommitKbytes },
    Node { name: "overcommit_memory", parent: 2, mode: 0o644, knob: Knob::OvercommitMemory },
    Node { name: "overcommit_ratio", parent: 2, mode: 0o644, knob: Knob::OvercommitRatio },
    Node { name: "pt_share", parent: 2, mode: 0o644, knob: Knob::PtShare },
    Node { name: "pt_share_min_bytes", parent: 2, mode: 0o644, knob: Knob::PtShareMinBytes },
    Node { name: "stat_refresh", parent: 2, mode: 0o600, knob: Knob::StatRefresh },
];

/// The inode number of `/proc/sys`.
pub const ROOT_INO: u64 = 0x100;

/// `kernel.core_pattern` (CORENAME_MAX_SIZE bytes with its NUL).
static CORE_PATTERN: Mutex<String, crate::sync::order::CorePattern> = Mutex::new(String::new());
const CORENAME_MAX_SIZE: usize = 128;
/// `kernel.tainted`: the taint flags (TAINT_FLAGS_COUNT of them); writes only add.
static TAINTED: AtomicU64 = AtomicU64::new(0);
const TAINT_FLAGS_COUNT: u32 = 19;

pub fn new_root() -> Arc<dyn Inode> {
    Arc::new(SysctlInode { _live: crate::leak::INODES.live(), idx: 0 })
}

struct SysctlInode {
    _live: Live,
    idx: usize,
}

impl SysctlInode {
    fn node(&self) -> &'static Node {
        &NODES[self.idx]
    }

    fn at(idx: usize) -> Arc<dyn Inode> {
        Arc::new(SysctlInode { _live: crate::leak::INODES.live(), idx })
    }

    fn ino(idx: usize) -> u64 {
        ROOT_INO + idx as u64
    }

    fn children(&self) -> impl Iterator<Item = (usize, &'static Node)> + '_ {
        NODES.iter().enumerate().skip(1).filter(move |(_, n)| n.parent == self.idx)
    }
}

/// Linux's `test_perm`: the owner bits for euid 0, the group bits for the root group,
/// the other bits for the rest; no capability overrides them.
fn test_perm(c: &Creds, mode: u32, mask: u32) -> KResult<()> {
    let bits = if c.euid == 0 {
        mode >> 6
    } else if c.egid == 0 || c.groups.contains(&0) {
        mode >> 3
    } else {
        mode
    };
    let mask = mask & (super::namei::MAY_READ | super::namei::MAY_WRITE | super::namei::MAY_EXEC);
    if mask & !bits & 7 == 0 {
        Ok(())
    } else {
        Err(EACCES)
    }
}

impl Inode for SysctlInode {
    fn metadata(&self) -> Metadata {
        let n = self.node();
        let kind = if n.knob == Knob::Dir { S_IFDIR } else { S_IFREG };
        super::procfs::meta(Self::ino(self.idx), kind | n.mode)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    /// `proc_sys_permission`: never executable; otherwise the knob's mode.
    fn permission(&self, c: &Creds, mask: u32) -> KResult<()> {
        let n = self.node();
        if n.knob == Knob::Dir {
            return super::namei::generic_permission(c, &self.metadata(), mask);
        }
        if mask & super::namei::MAY_EXEC != 0 {
            return Err(EACCES);
        }
        test_perm(c, n.mode, mask)
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        if self.node().knob != Knob::Dir {
            return Err(ENOTDIR);
        }
        match name {
            "" | "." => Ok(Self::at(self.idx)),
            ".." if self.idx == 0 => Ok(super::procfs::proc_root()),
            ".." => Ok(Self::at(self.node().parent)),
            _ => self.children().find(|(_, n)| n.name == name).map(|(i, _)| Self::at(i)).ok_or(ENOENT),
        }
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        if self.node().knob != Knob::Dir {
            return Err(ENOTDIR);
        }
        let parent = if self.idx == 0 { 1 } else { Self::ino(self.node().parent) };
        let mut v = alloc::vec![
            DirEntry { name: ".".into(), ino: Self::ino(self.idx), d_type: DT_DIR },
            DirEntry { name: "..".into(), ino: parent, d_type: DT_DIR },
        ];
        for (i, n) in self.children() {
            let d_type = if n.knob == Knob::Dir { DT_DIR } else { DT_REG };
            v.push(DirEntry { name: n.name.into(), ino: Self::ino(i), d_type });
        }
        Ok(v)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let n = self.node();
        sysctl_perm(n, super::namei::MAY_READ)?;
        let v = match n.knob {
            Knob::Dir => return Err(EISDIR),
            Knob::StatRefresh => return Ok(0),
            Knob::CorePattern => return Ok(read_string(CORE_PATTERN.lock().as_bytes(), offset, buf)),
            Knob::OsRelease => return Ok(read_string(crate::syscall::misc::UTS_RELEASE, offset, buf)),
            Knob::OsType => return Ok(read_string(crate::syscall::misc::UTS_SYSNAME, offset, buf)),
            Knob::PidMax => crate::process::task::PID_MAX.load(Ordering::Relaxed) as i64,
            Knob::Msgmax => crate::ipc::current_ipc_ns().msg_limits()[0] as i64,
            Knob::Msgmnb => crate::ipc::current_ipc_ns().msg_limits()[1] as i64,
            Knob::Msgmni => crate::ipc::current_ipc_ns().msg_limits()[2] as i64,
            // The IPC knobs are the caller's namespace's. `kernel.sem` is four integers.
            Knob::Sem => {
                let l = crate::ipc::current_ipc_ns().sem_limits();
                let text = format!("{}\t{}\t{}\t{}", l[0], l[1], l[2], l[3]);
                return Ok(read_long(text, offset, buf));
            }
            Knob::ShmRmidForced => crate::ipc::current_ipc_ns().shm_rmid_forced.load(Ordering::Relaxed) as i64,
            Knob::Shmall => {
                return Ok(read_long(crate::ipc::current_ipc_ns().shm_ctlall.load(Ordering::Relaxed), offset, buf))
            }
            Knob::Shmmax => {
                return Ok(read_long(crate::ipc::current_ipc_ns().shm_ctlmax.load(Ordering::Relaxed), offset, buf))
            }
            Knob::Shmmni => crate::ipc::current_ipc_ns().shm_ctlmni.load(Ordering::Relaxed) as i64,
            Knob::Tainted => TAINTED.load(Ordering::Relaxed) as i64,
            Knob::ThreadsMax => fork::max_threads() as i64,
            Knob::MaxMapCount => commit::MAX_MAP_COUNT.load(Ordering::Relaxed) as i64,
            Knob::MmapMinAddr => commit::MMAP_MIN_ADDR.load(Ordering::Relaxed) as i64,
            Knob::OvercommitKbytes => commit::OVERCOMMIT_KBYTES.load(Ordering::Relaxed) as i64,
            Knob::OvercommitMemory => commit::OVERCOMMIT_MEMORY.load(Ordering::Relaxed) as i64,
            Knob::OvercommitRatio => commit::OVERCOMMIT_RATIO.load(Ordering::Relaxed) as i64,
            Knob::PtShare => crate::mm::pt_share::enabled() as i64,
            Knob::PtShareMinBytes => return Ok(read_long(crate::mm::pt_share::min_bytes(), offset, buf)),
        };
        Ok(read_long(v, offset, buf))
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> KResult<usize> {
        let n = self.node();
        sysctl_perm(n, super::namei::MAY_WRITE)?;
        let capable = |cap| crate::process::current().process.creds.lock().capable(cap);
        match n.knob {
            Knob::Dir => Err(EISDIR),
            // A write folds Linux's per-CPU counter deltas into the global figures of
            // /proc/meminfo (vmstat_refresh); ours are exact at every moment.
            Knob::StatRefresh => Ok(buf.len()),
            Knob::CorePattern => Ok(write_string(&mut CORE_PATTERN.lock(), CORENAME_MAX_SIZE, offset, buf)),
            Knob::OsRelease | Knob::OsType => Err(EPERM),
            Knob::PidMax => write_int(offset, buf, 301, 4_194_304, |v| {
                crate::process::task::PID_MAX.store(v as u32, Ordering::Relaxed)
            }),
            // `proc_ipc_dointvec_minmax`: msgmax and msgmnb from 0 to INT_MAX, msgmni to IPCMNI.
            Knob::Msgmax | Knob::Msgmnb | Knob::Msgmni => {
                let (i, max) = match n.knob {
                    Knob::Msgmax => (0, i32::MAX as i64),
                    Knob::Msgmnb => (1, i32::MAX as i64),
                    _ => (2, crate::ipc::IPCMNI as i64),
                };
                let ns = crate::ipc::current_ipc_ns();
                write_int(offset, buf, 0, max, |v| ns.msg_ctls[i].store(v as u32, Ordering::Relaxed))
            }
            Knob::Sem => {
                // `proc_ipc_sem_dointvec`: up to four integers, SEMMNI at most IPCMNI.
                if offset != 0 || buf.is_empty() {
                    return Ok(buf.len());
                }
                let text = core::str::from_utf8(buf).map_err(|_| EINVAL)?;
                let vals: Vec<i64> =
                    text.split_whitespace().map(|w| w.parse().map_err(|_| EINVAL)).collect::<KResult<_>>()?;
                if vals.len() > 4 || vals.iter().any(|&v| !(i32::MIN as i64..=i32::MAX as i64).contains(&v)) {
                    return Err(EINVAL);
                }
                if vals.get(3).is_some_and(|&v| v < 0 || v > crate::ipc::IPCMNI as i64) {
                    return Err(EINVAL);
                }
                let ns = crate::ipc::current_ipc_ns();
                for (c, v) in ns.sem_ctls.iter().zip(vals) {
                    c.store(v as u32, Ordering::Relaxed);
                }
                Ok(buf.len())
            }
            Knob::ShmRmidForced => {
                let ns = crate::ipc::current_ipc_ns();
                // proc_ipc_dointvec_minmax_orphans: forcing removal takes the orphans now.
                let r = write_int(offset, buf, 0, 1, |v| ns.shm_rmid_forced.store(v != 0, Ordering::Relaxed));
                if ns.shm_rmid_forced.load(Ordering::Relaxed) {
                    crate::ipc::shm::shm_destroy_orphaned(&ns);
                }
                r
            }
            Knob::Shmall => {
                let ns = crate::ipc::current_ipc_ns();
                write_ulong(offset, buf, |v| ns.shm_ctlall.store(v, Ordering::Relaxed))
            }
            Knob::Shmmax => {
                let ns = crate::ipc::current_ipc_ns();
                write_ulong(offset, buf, |v| ns.shm_ctlmax.store(v, Ordering::Relaxed))
            }
            Knob::Shmmni => {
                let ns = crate::ipc::current_ipc_ns();
                write_int(offset, buf, 0, crate::ipc::IPCMNI as i64, |v| {
                    ns.shm_ctlmni.store(v as u64, Ordering::Relaxed)
                })
            }
            Knob::Tainted => {
                if !capable(CAP_SYS_ADMIN) {
                    return Err(EPERM);
                }
                write_ulong(offset, buf, |v| {
                    TAINTED.fetch_or(v & ((1 << TAINT_FLAGS_COUNT) - 1), Ordering::Relaxed);
                })
            }
            Knob::ThreadsMax => {
                // sysctl_max_threads: from 1 up to MAX_THREADS.
                write_int(offset, buf, 1, fork::THREADS_LIMIT as i64, |v| fork::set_max_threads(v as u32))
            }
            Knob::MaxMapCount => {
                write_int(offset, buf, 0, i32::MAX as i64, |v| commit::MAX_MAP_COUNT.store(v as i32, Ordering::Relaxed))
            }
            Knob::MmapMinAddr => {
                // mmap_min_addr_handler
                if !capable(CAP_SYS_RAWIO) {
                    return Err(EPERM);
                }
                write_ulong(offset, buf, |v| commit::MMAP_MIN_ADDR.store(v, Ordering::Relaxed))
            }
            Knob::OvercommitKbytes => {
                // overcommit_kbytes_handler: the kbytes replace the ratio.
                let r = write_ulong(offset, buf, |v| commit::OVERCOMMIT_KBYTES.store(v, Ordering::Relaxed))?;
                commit::OVERCOMMIT_RATIO.store(0, Ordering::Relaxed);
                Ok(r)
            }
            Knob::OvercommitMemory => {
                write_int(offset, buf, 0, 2, |v| commit::OVERCOMMIT_MEMORY.store(v as i32, Ordering::Relaxed))
            }
            Knob::OvercommitRatio => {
                // overcommit_ratio_handler: the ratio replaces the kbytes.
                let r = write_int(offset, buf, i32::MIN as i64, i32::MAX as i64, |v| {
                    commit::OVERCOMMIT_RATIO.store(v as i32, Ordering::Relaxed)
                })?;
                commit::OVERCOMMIT_KBYTES.store(0, Ordering::Relaxed);
                Ok(r)
            }
            Knob::PtShare => write_int(offset, buf, 0, 1, |v| crate::mm::pt_share::set_enabled(v == 1)),
            Knob::PtShareMinBytes => write_ulong(offset, buf, crate::mm::pt_share::set_min_bytes),
        }
    }
    /// O_TRUNC on open (`echo 1 > knob`) is accepted and changes nothing, as
    /// proc_sys_setattr does.
    fn truncate(&self, _size: u64) -> KResult<()> {
        Ok(())
    }
}

/// `sysctl_perm` at each read and write (`proc_sys_call_handler`): EPERM once the
/// caller's credentials no longer allow what the open did.
fn sysctl_perm(n: &Node, mask: u32) -> KResult<()> {
    let c = crate::process::current().process.creds.lock().clone();
    test_perm(&c, n.mode, mask).map_err(|_| EPERM)
}

/// An integer knob read (`__do_proc_dointvec` and `__do_proc_doulongvec_minmax`): the
/// value and a newline at offset 0, cut to the buffer; nothing at any other offset.
fn read_long(v: impl core::fmt::Display, offset: u64, buf: &mut [u8]) -> usize {
    if offset != 0 {
        return 0;
    }
    let text = format!("{v}\n");
    let n = text.len().min(buf.len());
    buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    n
}

/// A string knob read (`_proc_do_string`): from the offset, with a newline after the
/// end if the buffer has room.
fn read_string(s: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let Ok(off) = usize::try_from(offset) else { return 0 };
    if off > s.len() || buf.is_empty() {
        return 0;
    }
    let n = (s.len() - off).min(buf.len());
    buf[..n].copy_from_slice(&s[off..off + n]);
    if n < buf.len() {
        buf[n] = b'\n';
        return n + 1;
    }
    n
}

/// A string knob write (`_proc_do_string`, strict mode): from the offset (ignored past
/// the current end), up to a NUL, a newline or `maxlen - 1` bytes, ending the string there.
/// The whole write counts as done.
fn write_string(s: &mut String, maxlen: usize, offset: u64, buf: &[u8]) -> usize {
    let cur = s.len().min(maxlen - 1);
    let Ok(off) = usize::try_from(offset) else { return buf.len() };
    if off > cur {
        return buf.len();
    }
    let mut bytes: Vec<u8> = s.as_bytes()[..off].to_vec();
    for &c in buf {
        if c == 0 || c == b'\n' || bytes.len() >= maxlen - 1 {
            break;
        }
        bytes.push(c);
    }
    *s = String::from_utf8_lossy(&bytes).into_owned();
    buf.len()
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Linux's `proc_get_long` after `proc_skip_spaces`, for one value: (negative, value,
/// bytes left after it and the white space that follows). EINVAL for no number, for
/// garbage right after it, or for one that does not fit.
fn parse_long(buf: &[u8]) -> KResult<(bool, u64, usize)> {
    // Writes are cut to a page less its NUL (proc_sys_call_handler's buffer).
    let buf = &buf[..buf.len().min(4095)];
    let start = buf.iter().position(|&c| !is_space(c)).ok_or(EINVAL)?;
    let rest = &buf[start..];
    // TMPBUFLEN: a number longer than 21 characters is refused.
    let tmp = &rest[..rest.len().min(21)];
    let mut p = 0;
    let neg = tmp[0] == b'-' && rest.len() > 1;
    if neg {
        p = 1;
    }
    if !tmp.get(p).is_some_and(u8::is_ascii_digit) {
        return Err(EINVAL);
    }
    // strtoul with base 0: 0x hex, leading 0 octal, else decimal.
    let mut base = 10;
    if tmp[p] == b'0' {
        if tmp.get(p + 1).is_some_and(|c| c.eq_ignore_ascii_case(&b'x'))
            && tmp.get(p + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            base = 16;
            p += 2;
        } else {
            base = 8;
        }
    }
    let mut v: u64 = 0;
    while let Some(d) = tmp.get(p).and_then(|&c| (c as char).to_digit(base)) {
        v = v.checked_mul(base as u64).and_then(|v| v.checked_add(d as u64)).ok_or(EINVAL)?;
        p += 1;
    }
    if p == 21 {
        return Err(EINVAL);
    }
    if p < rest.len() && !matches!(rest[p], b' ' | b'\t' | b'\n') {
        return Err(EINVAL);
    }
    let after = &rest[p..];
    let spaces = after.iter().take_while(|&&c| is_space(c)).count();
    Ok((neg, v, after.len() - spaces))
}

/// A write of one int (`proc_dointvec_minmax`): ignored at an offset past 0 (strict
/// writes), else parsed and range-checked, then `set`. Returns the bytes consumed.
fn write_int(offset: u64, buf: &[u8], min: i64, max: i64, set: impl FnOnce(i64)) -> KResult<usize> {
    if offset != 0 || buf.is_empty() {
        return Ok(buf.len());
    }
    let (neg, v, left) = parse_long(buf)?;
    let v = if neg {
        if v > i32::MAX as u64 + 1 {
            return Err(EINVAL);
        }
        -(v as i64)
    } else {
        if v > i32::MAX as u64 {
            return Err(EINVAL);
        }
        v as i64
    };
    if v < min || v > max {
        return Err(EINVAL);
    }
    set(v);
    Ok(buf.len() - left)
}

/// A write of one unsigned long (`proc_doulongvec_minmax` without bounds): as
/// `write_int`, a negative number being EINVAL.
fn write_ulong(offset: u64, buf: &[u8], set: impl FnOnce(u64)) -> KResult<usize> {
    if offset != 0 || buf.is_empty() {
        return Ok(buf.len());
    }
    let (neg, v, left) = parse_long(buf)?;
    if neg {
        return Err(EINVAL);
    }
    set(v);
    Ok(buf.len() - left)
}

/// `kernel.core_pattern`'s default.
pub fn init() {
    *CORE_PATTERN.lock() = String::from("core");
}
