//! /proc: generated files: `cpuinfo` and `stat` (a block and a line per online CPU),
//! `interrupts`, `meminfo`, `mounts` (the mount table, `mount.rs`), `uptime`, `sys/`
//! (`proc_sysctl.rs`), the `self` link, and per process `cmdline`, `comm`, `exe`, `fd/`,
//! `maps`, `mounts` (the one table again), `oom_score`,
//! `oom_score_adj` (writable), `pagemap`, `smaps`, `smaps_rollup`, `stat`, `statm`,
//! `status` (the leader thread's state and name), `tlb` (this kernel's: the TLB flushes
//! of the address space, which Linux does not count per process),
//! and `task/TID/{comm,stat,status}` per thread.
//!
//! Every read regenerates the text and serves the requested slice, as
//! Linux's seq_file does for small files.

use super::vfs::*;
use crate::errno::*;
use crate::leak::Live;
use crate::mm::address_space::USER_PT_PAGES;
use crate::mm::vma::{Backend, Prot, VmFlags};
use crate::process::task::{find_process, Process, Task, SUID_DUMP_USER, TABLES};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt::Write;
use core::sync::atomic::Ordering;

/// Counts a procfs inode in `leak::INODES` while it exists.
fn live() -> Live {
    crate::leak::INODES.live()
}

const PROC_DEV: u64 = 0x4;
/// Inode numbers: per-pid entries get `(pid << 8) | file`, the rest are small.
const INO_ROOT: u64 = 1;
const INO_MEMINFO: u64 = 2;
const INO_SELF: u64 = 3;
const INO_MOUNTS: u64 = 4;
const INO_UPTIME: u64 = 5;
const INO_INTERRUPTS: u64 = 6;
const INO_CPUINFO: u64 = 7;
const INO_STAT: u64 = 8;
const INO_SYSVIPC: u64 = 9;
const INO_SYSVIPC_SHM: u64 = 10;
const INO_SYSVIPC_SEM: u64 = 11;
const INO_SYSVIPC_MSG: u64 = 12;
const INO_VMSTAT: u64 = 13;
/// Set in the inode numbers of `task/` directories and the files in them.
const TASK_INO: u64 = 1 << 40;

/// The metadata of a /proc inode (also /proc/sys's): every one on the proc device, owned by
/// root unless its caller says otherwise, with the time of the call.
pub(super) fn meta(ino: u64, mode: u32) -> Metadata {
    let now = crate::time::realtime();
    Metadata {
        dev: PROC_DEV,
        ino,
        mode,
        nlink: 1,
        blksize: 1024,
        atime: now,
        mtime: now,
        ctime: now,
        ..Default::default()
    }
}

/// Who owns a `/proc/pid` entry of `mode` (Linux's `task_dump_owner`): the process's
/// effective ids; but an entry other than the world-readable directories belongs to root
/// while the process is not dumpable (after a change of ids, or exec of a set-user-ID or
/// unreadable program).
fn task_dump_owner(pid: u32, mut m: Metadata) -> Metadata {
    let Some(p) = find_process(pid) else { return m };
    let c = p.creds.lock();
    (m.uid, m.gid) = (c.euid, c.egid);
    let public_dir = m.mode == S_IFDIR | 0o555;
    if !public_dir && p.dumpable.load(core::sync::atomic::Ordering::Relaxed) != SUID_DUMP_USER {
        (m.uid, m.gid) = (0, 0);
    }
    m
}

pub struct ProcRoot {
    _live: Live,
    parent: alloc::sync::Weak<dyn Inode>,
}

pub fn new(parent: &Arc<dyn Inode>) -> Arc<dyn Inode> {
    Arc::new(ProcRoot { _live: live(), parent: Arc::downgrade(parent) })
}

impl Inode for ProcRoot {
    fn metadata(&self) -> Metadata {
        let mut m = meta(INO_ROOT, S_IFDIR | 0o555);
        m.nlink = 2;
        m
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        match name {
            "" | "." => Ok(Arc::new(ProcRoot { _live: live(), parent: self.parent.clone() })),
            ".." => self.parent.upgrade().ok_or(ENOENT),
            "meminfo" => Ok(ProcFile::new(FileKind::Meminfo, 0, 0)),
            "mounts" => Ok(ProcFile::new(FileKind::Mounts, 0, 0)),
            "uptime" => Ok(ProcFile::new(FileKind::Uptime, 0, 0)),
            "interrupts" => Ok(ProcFile::new(FileKind::Interrupts, 0, 0)),
            "cpuinfo" => Ok(ProcFile::new(FileKind::CpuInfo, 0, 0)),
            "stat" => Ok(ProcFile::new(FileKind::SysStat, 0, 0)),
            "vmstat" => Ok(ProcFile::new(FileKind::Vmstat, 0, 0)),
            "sysvipc" => Ok(Arc::new(SysvipcDir { _live: live() })),
            "self" => Ok(Arc::new(SelfLink { _live: live() })),
            "sys" => Ok(super::proc_sysctl::new_root()),
            _ => {
                let pid: u32 = name.parse().map_err(|_| ENOENT)?;
                find_process(pid).ok_or(ENOENT)?;
                Ok(Arc::new(PidDir { _live: live(), pid }))
            }
        }
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        let mut v = alloc::vec![
            DirEntry { name: ".".into(), ino: INO_ROOT, d_type: DT_DIR },
            DirEntry { name: "..".into(), ino: INO_ROOT, d_type: DT_DIR },
            DirEntry { name: "meminfo".into(), ino: INO_MEMINFO, d_type: DT_REG },
            DirEntry { name: "mounts".into(), ino: INO_MOUNTS, d_type: DT_REG },
            DirEntry { name: "uptime".into(), ino: INO_UPTIME, d_type: DT_REG },
            DirEntry { name: "interrupts".into(), ino: INO_INTERRUPTS, d_type: DT_REG },
            DirEntry { name: "cpuinfo".into(), ino: INO_CPUINFO, d_type: DT_REG },
            DirEntry { name: "stat".into(), ino: INO_STAT, d_type: DT_REG },
            DirEntry { name: "vmstat".into(), ino: INO_VMSTAT, d_type: DT_REG },
            DirEntry { name: "sysvipc".into(), ino: INO_SYSVIPC, d_type: DT_DIR },
            DirEntry { name: "self".into(), ino: INO_SELF, d_type: DT_LNK },
            DirEntry { name: "sys".into(), ino: super::proc_sysctl::ROOT_INO, d_type: DT_DIR },
        ];
        let pids: Vec<u32> =
            TABLES.lock().processes.iter().filter(|(_, w)| w.strong_count() > 0).map(|(p, _)| *p).collect();
        for pid in pids {
            v.push(DirEntry { name: pid.to_string(), ino: (pid as u64) << 8, d_type: DT_DIR });
        }
        Ok(v)
    }
}

/// A new inode of /proc itself (`..` of /proc/sys).
pub(super) fn proc_root() -> Arc<dyn Inode> {
    Arc::new(ProcRoot { _live: live(), parent: super::root_weak() })
}

/// `/proc/sysvipc` (Linux's ipc/util.c `sysvipc_proc`): a file per IPC kind, showing the
/// reader's IPC namespace.
struct SysvipcDir {
    _live: Live,
}

impl Inode for SysvipcDir {
    fn metadata(&self) -> Metadata {
        meta(INO_SYSVIPC, S_IFDIR | 0o555)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        match name {
            "" | "." => Ok(Arc::new(SysvipcDir { _live: live() })),
            ".." => Ok(proc_root()),
            "shm" | "sem" | "msg" => Ok(ProcFile::new(
                match name {
                    "shm" => FileKind::SysvipcShm,
                    "sem" => FileKind::SysvipcSem,
                    _ => FileKind::SysvipcMsg,
                },
                0,
                0,
            )),
            _ => Err(ENOENT),
        }
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        Ok(alloc::vec![
            DirEntry { name: ".".into(), ino: INO_SYSVIPC, d_type: DT_DIR },
            DirEntry { name: "..".into(), ino: INO_ROOT, d_type: DT_DIR },
            DirEntry { name: "msg".into(), ino: INO_SYSVIPC_MSG, d_type: DT_REG },
            DirEntry { name: "sem".into(), ino: INO_SYSVIPC_SEM, d_type: DT_REG },
            DirEntry { name: "shm".into(), ino: INO_SYSVIPC_SHM, d_type: DT_REG },
        ])
    }
}

/// `/proc/self`: a link to the reader's pid directory.
struct SelfLink {
    _live: Live,
}

impl Inode for SelfLink {
    fn metadata(&self) -> Metadata {
        meta(INO_SELF, S_IFLNK | 0o777)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn readlink(&self) -> KResult<Vec<u8>> {
        Ok(crate::process::current().process.pid.to_string().into_bytes())
    }
}

const PID_FILES: [(&str, FileKind); 15] = [
    ("cmdline", FileKind::Cmdline),
    ("comm", FileKind::Comm),
    ("maps", FileKind::Maps),
    ("mountinfo", FileKind::Mountinfo),
    ("mounts", FileKind::Mounts),
    ("oom_score", FileKind::OomScore),
    ("oom_score_adj", FileKind::OomScoreAdj),
    ("pagemap", FileKind::Pagemap),
    ("smaps", FileKind::Smaps),
    ("smaps_rollup", FileKind::SmapsRollup),
    ("stat", FileKind::Stat),
    ("statm", FileKind::Statm),
    ("status", FileKind::Status),
    ("timers", FileKind::Timers),
    ("tlb", FileKind::Tlb),
];

struct PidDir {
    _live: Live,
    pid: u32,
}

impl Inode for PidDir {
    fn metadata(&self) -> Metadata {
        let mut m = meta((self.pid as u64) << 8, S_IFDIR | 0o555);
        m.nlink = 2;
        task_dump_owner(self.pid, m)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        match name {
            "" | "." => Ok(Arc::new(PidDir { _live: live(), pid: self.pid })),
            ".." => Ok(Arc::new(ProcRoot { _live: live(), parent: super::root_weak() })),
            "exe" => Ok(Arc::new(ExeLink { _live: live(), pid: self.pid })),
            "fd" => Ok(Arc::new(FdDir { _live: live(), pid: self.pid })),
            "task" => Ok(Arc::new(TaskDir { _live: live(), pid: self.pid, tid: 0 })),
            "ns" => Ok(Arc::new(NsDir { _live: live(), pid: self.pid })),
            _ => {
                let kind = PID_FILES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k).ok_or(ENOENT)?;
                Ok(ProcFile::new(kind, self.pid, 0))
            }
        }
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        let base = (self.pid as u64) << 8;
        let mut v = alloc::vec![
            DirEntry { name: ".".into(), ino: base, d_type: DT_DIR },
            DirEntry { name: "..".into(), ino: INO_ROOT, d_type: DT_DIR },
        ];
        for (i, (name, _)) in PID_FILES.iter().enumerate() {
            v.push(DirEntry { name: (*name).into(), ino: base + 1 + i as u64, d_type: DT_REG });
        }
        v.push(DirEntry { name: "exe".into(), ino: base + 0x40, d_type: DT_LNK });
        v.push(DirEntry { name: "fd".into(), ino: base + 0x41, d_type: DT_DIR });
        v.push(DirEntry { name: "task".into(), ino: TASK_INO | base, d_type: DT_DIR });
        v.push(DirEntry { name: "ns".into(), ino: base + 0x42, d_type: DT_DIR });
        Ok(v)
    }
}

/// `/proc/pid/ns`: a link per namespace kind; only `ipc` exists here.
struct NsDir {
    _live: Live,
    pid: u32,
}

impl Inode for NsDir {
    fn metadata(&self) -> Metadata {
        let mut m = meta(((self.pid as u64) << 8) + 0x42, S_IFDIR | 0o511);
        m.nlink = 2;
        task_dump_owner(self.pid, m)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        match name {
            "" | "." => Ok(Arc::new(NsDir { _live: live(), pid: self.pid })),
            ".." => Ok(Arc::new(PidDir { _live: live(), pid: self.pid })),
            "ipc" => Ok(Arc::new(NsLink { _live: live(), pid: self.pid })),
            _ => Err(ENOENT),
        }
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        let base = ((self.pid as u64) << 8) + 0x42;
        Ok(alloc::vec![
            DirEntry { name: ".".into(), ino: base, d_type: DT_DIR },
            DirEntry { name: "..".into(), ino: (self.pid as u64) << 8, d_type: DT_DIR },
            DirEntry { name: "ipc".into(), ino: base + 1, d_type: DT_LNK },
        ])
    }
}

/// `/proc/pid/ns/ipc` (Linux's `proc_ns_link`): reads as `ipc:[INUM]`; a walk that
/// follows it opens the namespace itself (`proc_ns_get_link`), for setns. Both need the
/// right to ptrace-read the process.
struct NsLink {
    _live: Live,
    pid: u32,
}

impl NsLink {
    fn ns(&self) -> KResult<Arc<crate::ipc::IpcNamespace>> {
        may_read_mm_of(self.pid).map_err(|e| if e == ESRCH { ENOENT } else { e })?;
        let t = find_process(self.pid).and_then(|p| p.first_thread()).ok_or(ENOENT)?;
        let ns = t.ipc_ns.lock().clone();
        ns.ok_or(ENOENT)
    }
}

impl Inode for NsLink {
    fn metadata(&self) -> Metadata {
        task_dump_owner(self.pid, meta(((self.pid as u64) << 8) + 0x43, S_IFLNK | 0o777))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn readlink(&self) -> KResult<Vec<u8>> {
        Ok(format!("ipc:[{}]", self.ns()?.inum).into_bytes())
    }
    fn jump_link(&self) -> Option<KResult<Arc<crate::fs::file::File>>> {
        Some(self.ns().map(crate::ipc::NsFile::open))
    }
}

/// The files of `/proc/pid/task/tid/`.
const TASK_FILES: [(&str, FileKind); 3] =
    [("comm", FileKind::Comm), ("stat", FileKind::Stat), ("status", FileKind::Status)];

/// `/proc/pid/task` (`tid` 0): a directory per thread; `/proc/pid/task/tid`: that
/// thread's `comm`, `stat` and `status`.
struct TaskDir {
    _live: Live,
    pid: u32,
    tid: u32,
}

impl Inode for TaskDir {
    fn metadata(&self) -> Metadata {
        let mut m = meta(TASK_INO | ((self.tid.max(self.pid) as u64) << 8) | (self.tid != 0) as u64, S_IFDIR | 0o555);
        m.nlink = 2;
        task_dump_owner(self.pid, m)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        let p = find_process(self.pid).ok_or(ENOENT)?;
        match (self.tid, name) {
            (_, "" | ".") => Ok(Arc::new(TaskDir { _live: live(), pid: self.pid, tid: self.tid })),
            (0, "..") => Ok(Arc::new(PidDir { _live: live(), pid: self.pid })),
            (_, "..") => Ok(Arc::new(TaskDir { _live: live(), pid: self.pid, tid: 0 })),
            (0, _) => {
                let tid: u32 = name.parse().map_err(|_| ENOENT)?;
                thread_of(&p, tid).ok_or(ENOENT)?;
                Ok(Arc::new(TaskDir { _live: live(), pid: self.pid, tid }))
            }
            (tid, _) => {
                let kind = TASK_FILES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k).ok_or(ENOENT)?;
                Ok(ProcFile::new(kind, self.pid, tid))
            }
        }
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        let p = find_process(self.pid).ok_or(ENOENT)?;
        let me = self.metadata().ino;
        let mut v = alloc::vec![
            DirEntry { name: ".".into(), ino: me, d_type: DT_DIR },
            DirEntry { name: "..".into(), ino: me, d_type: DT_DIR },
        ];
        if self.tid == 0 {
            let mut tids: Vec<u32> = p.threads.lock().iter().map(|t| t.tid()).collect();
            tids.sort_unstable();
            for tid in tids {
                v.push(DirEntry { name: tid.to_string(), ino: TASK_INO | ((tid as u64) << 8) | 1, d_type: DT_DIR });
            }
        } else {
            for (name, kind) in TASK_FILES {
                let ino = ProcFile::new(kind, self.pid, self.tid).metadata().ino;
                v.push(DirEntry { name: name.into(), ino, d_type: DT_REG });
            }
        }
        Ok(v)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Meminfo,
    Mounts,
    Mountinfo,
    Uptime,
    Interrupts,
    CpuInfo,
    SysStat,
    Vmstat,
    SysvipcShm,
    SysvipcSem,
    SysvipcMsg,
    Cmdline,
    Comm,
    Maps,
    OomScore,
    OomScoreAdj,
    Pagemap,
    Smaps,
    SmapsRollup,
    Stat,
    Statm,
    Status,
    Timers,
    Tlb,
}

struct ProcFile {
    _live: Live,
    kind: FileKind,
    pid: u32,
    /// A thread's own view (`/proc/pid/task/tid/...`), or 0 for the process's.
    tid: u32,
    /// maps and smaps as generated by the last read at offset 0: later reads continue in
    /// that text (as seq_file continues after the last VMA it showed), so reading a
    /// process with tens of thousands of VMAs generates its text once, not once per chunk.
    text: crate::sync::SpinLock<Option<Arc<Vec<u8>>>, crate::sync::order::ProcfsText>,
}

impl Inode for ProcFile {
    fn metadata(&self) -> Metadata {
        let idx = PID_FILES.iter().position(|(_, k)| *k == self.kind).unwrap_or(0) as u64;
        let ino = match self.kind {
            FileKind::Meminfo => INO_MEMINFO,
            FileKind::Mounts => INO_MOUNTS,
            FileKind::Uptime => INO_UPTIME,
            FileKind::Interrupts => INO_INTERRUPTS,
            FileKind::CpuInfo => INO_CPUINFO,
            FileKind::SysStat => INO_STAT,
            FileKind::Vmstat => INO_VMSTAT,
            FileKind::SysvipcShm => INO_SYSVIPC_SHM,
            FileKind::SysvipcSem => INO_SYSVIPC_SEM,
            FileKind::SysvipcMsg => INO_SYSVIPC_MSG,
            _ if self.tid != 0 => TASK_INO | (((self.tid as u64) << 8) + 1 + idx),
            _ => ((self.pid as u64) << 8) + 1 + idx,
        };
        match self.kind {
            FileKind::Meminfo
            | FileKind::Mounts
            | FileKind::Uptime
            | FileKind::Interrupts
            | FileKind::CpuInfo
            | FileKind::SysStat
            | FileKind::Vmstat => meta(ino, S_IFREG | 0o444),
            FileKind::SysvipcShm | FileKind::SysvipcSem | FileKind::SysvipcMsg => meta(ino, S_IFREG | 0o444),
            FileKind::Pagemap => task_dump_owner(self.pid, meta(ino, S_IFREG | 0o400)),
            FileKind::Comm | FileKind::OomScoreAdj => task_dump_owner(self.pid, meta(ino, S_IFREG | 0o644)),
            _ => task_dump_owner(self.pid, meta(ino, S_IFREG | 0o444)),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        if matches!(self.kind, FileKind::Maps | FileKind::Smaps | FileKind::SmapsRollup | FileKind::Pagemap) {
            may_read_mm_of(self.pid)?;
        }
        if self.kind == FileKind::Pagemap {
            return pagemap_read(self.pid, offset, buf);
        }
        let text = if matches!(self.kind, FileKind::Maps | FileKind::Smaps) {
            // Generated out of the cache's lock: generating takes the address space's
            // `mmap_lock`, which sleeps.
            let cached = if offset > 0 { self.text.lock().clone() } else { None };
            match cached {
                Some(t) => t,
                None => {
                    let t = Arc::new(self.generate()?);
                    *self.text.lock() = Some(t.clone());
                    t
                }
            }
        } else {
            Arc::new(self.generate()?)
        };
        let Ok(off) = usize::try_from(offset) else { return Ok(0) };
        if off >= text.len() {
            return Ok(0);
        }
        let n = buf.len().min(text.len() - off);
        buf[..n].copy_from_slice(&text[off..off + n]);
        Ok(n)
    }
    fn write_at(&self, _offset: u64, buf: &[u8]) -> KResult<usize> {
        if self.kind != FileKind::OomScoreAdj {
            return Err(EACCES);
        }
        write_oom_score_adj(self.pid, buf)?;
        Ok(buf.len())
    }
}

/// The check Linux makes when maps, smaps, smaps_rollup and pagemap are opened
/// (`proc_mem_open` → `mm_access` with PTRACE_MODE_READ_FSCREDS), made here at each
/// read: another process's memory layout and page frames are the caller's to see only
/// if it may ptrace that process.
fn may_read_mm_of(pid: u32) -> KResult<()> {
    let me = crate::process::current();
    if me.process.pid == pid {
        return Ok(());
    }
    let p = find_process(pid).ok_or(ESRCH)?;
    let target = p.creds.lock().clone();
    if me.process.creds.lock().ptrace_may_access(&target) {
        Ok(())
    } else {
        Err(EACCES)
    }
}

/// A write to /proc/PID/oom_score_adj (fs/proc/base.c `oom_score_adj_write`): a
/// decimal in -1000..=1000. Going below the last value a CAP_SYS_RESOURCE writer set
/// (`oom_score_adj_min`), or changing another user's process, needs CAP_SYS_RESOURCE.
fn write_oom_score_adj(pid: u32, buf: &[u8]) -> KResult<()> {
    let text = core::str::from_utf8(buf).map_err(|_| EINVAL)?;
    let adj: i32 = text.trim().parse().map_err(|_| EINVAL)?;
    let lo = crate::mm::oom_kill::OOM_SCORE_ADJ_MIN;
    if !(lo..=crate::mm::oom_kill::OOM_SCORE_ADJ_MAX).contains(&adj) {
        return Err(EINVAL);
    }
    let p = find_process(pid).ok_or(ESRCH)?;
    let me = crate::process::current();
    let creds = me.process.creds.lock().clone();
    let privileged = creds.capable(crate::process::cred::CAP_SYS_RESOURCE);
    let same_user = creds.euid == p.creds.lock().uid;
    if !privileged && (!same_user || adj < p.oom_score_adj_min.load(Ordering::Relaxed)) {
        return Err(EACCES);
    }
    p.oom_score_adj.store(adj, Ordering::Relaxed);
    if privileged {
        p.oom_score_adj_min.store(adj, Ordering::Relaxed);
    }
    Ok(())
}

impl ProcFile {
    /// The file `kind` of process `pid` (0: a file of /proc itself), as thread `tid` sees
    /// it (0: the process's view).
    fn new(kind: FileKind, pid: u32, tid: u32) -> Arc<ProcFile> {
        Arc::new(ProcFile { _live: live(), kind, pid, tid, text: Default::default() })
    }

    fn generate(&self) -> KResult<Vec<u8>> {
        match self.kind {
            FileKind::Meminfo => return Ok(meminfo().into_bytes()),
            FileKind::Mounts => return Ok(super::mount::proc_mounts().into_bytes()),
            FileKind::Uptime => {
                let ns = crate::time::monotonic_ns();
                let cs = ns / 10_000_000;
                return Ok(format!("{}.{:02} {}.{:02}\n", cs / 100, cs % 100, cs / 100, cs % 100).into_bytes());
            }
            FileKind::Interrupts => return Ok(interrupts().into_bytes()),
            FileKind::CpuInfo => return Ok(cpuinfo().into_bytes()),
            FileKind::SysStat => return Ok(sys_stat().into_bytes()),
            FileKind::Vmstat => return Ok(vmstat().into_bytes()),
            FileKind::SysvipcShm => return Ok(crate::ipc::shm::proc_text(&crate::ipc::current_ipc_ns()).into_bytes()),
            FileKind::SysvipcSem => return Ok(crate::ipc::sem::proc_text(&crate::ipc::current_ipc_ns()).into_bytes()),
            FileKind::SysvipcMsg => return Ok(crate::ipc::msg::proc_text(&crate::ipc::current_ipc_ns()).into_bytes()),
            _ => {}
        }
        let p = find_process(self.pid).ok_or(ESRCH)?;
        // The thread whose state, name and id the file shows: the one asked for, or the
        // thread group leader (None once the leader has exited: a zombie, as Linux shows it).
        let task = if self.tid != 0 { Some(thread_of(&p, self.tid).ok_or(ESRCH)?) } else { thread_of(&p, p.pid) };
        let task = task.as_ref();
        Ok(match self.kind {
            FileKind::Meminfo
            | FileKind::Mounts
            | FileKind::Uptime
            | FileKind::Interrupts
            | FileKind::CpuInfo
            | FileKind::SysStat
            | FileKind::Vmstat
            | FileKind::SysvipcShm
            | FileKind::SysvipcSem
            | FileKind::SysvipcMsg => unreachable!(),
            FileKind::Mountinfo => super::mount::proc_mountinfo().into_bytes(),
            FileKind::Cmdline => {
                let (mm, _) = mm_of(&p);
                match mm {
                    Some(mm) => {
                        let (s, e) = mm.mmap_lock.read().arg_range;
                        let mut v = crate::mm::fail::try_vec_filled(0u8, (e - s) as usize)?;
                        crate::mm::usercopy::copy_from_user(&mm, s, &mut v).map(|_| v).unwrap_or_default()
                    }
                    None => Vec::new(),
                }
            }
            FileKind::Comm => {
                let mut c = comm(&p, task);
                c.push('\n');
                c.into_bytes()
            }
            FileKind::Maps => maps(&p).into_bytes(),
            FileKind::SmapsRollup => smaps_rollup(&p).into_bytes(),
            FileKind::Smaps => smaps(&p).into_bytes(),
            FileKind::Pagemap => unreachable!("pagemap is read by range"),
            FileKind::Stat => stat(&p, task, self.tid).into_bytes(),
            FileKind::Statm => {
                let s = mem_stats(&p);
                let shared = s.rss_by_kind[1] + s.rss_by_kind[2];
                format!("{} {} {} {} 0 {} 0\n", s.vm_pages, s.rss, shared, s.text_pages, s.data_pages).into_bytes()
            }
            FileKind::Status => status(&p, task, self.tid).into_bytes(),
            FileKind::OomScoreAdj => format!("{}\n", p.oom_score_adj.load(Ordering::Relaxed)).into_bytes(),
            FileKind::OomScore => format!("{}\n", crate::mm::oom_kill::oom_score(&p)).into_bytes(),
            FileKind::Timers => crate::process::posix_timer::proc_timers(&p).into_bytes(),
            FileKind::Tlb => {
                let (mm, _) = mm_of(&p);
                let (ipis, pages, ranges, full) = mm.map_or((0, 0, 0, 0), |mm| mm.tlb.get());
                format!(
                    "tlb_shootdowns_received: {}\ntlb_pages_flushed: {}\ntlb_ranges_flushed: {}\ntlb_full_flushes: {}\n",
                    ipis, pages, ranges, full
                )
                .into_bytes()
            }
        })
    }
}

/// `/proc/interrupts` as Linux's x86 `show_interrupts` and `arch_show_interrupts`: a
/// header of one `CPUn` column per online CPU, then the rows this kernel counts, each
/// with one count per online CPU and Linux's description: `LOC` (LAPIC timer ticks),
/// `RES`, `CAL` and `TLB` (IPIs received, `percpu::IpiKind`). No device-interrupt rows:
/// the kernel polls its devices.
fn interrupts() -> String {
    use crate::arch::percpu::{self, IpiKind};
    let cpus: Vec<usize> = percpu::cpu_online_mask().iter().collect();
    // Linux's width of the label column: 3 characters at least (`prec`), then ": ".
    let mut s = format!("{:width$}", "", width = 3 + 8);
    for c in &cpus {
        let _ = write!(s, "CPU{:<8}", c);
    }
    s.push('\n');
    let mut row = |label: &str, desc: &str, count: &dyn Fn(&percpu::PerCpu) -> u64| {
        let _ = write!(s, "{:>3}: ", label);
        for &c in &cpus {
            let _ = write!(s, "{:10} ", count(percpu::cpu(c)));
        }
        let _ = writeln!(s, "  {}", desc);
    };
    row("LOC", "Local timer interrupts", &|p| p.ticks.load(Ordering::Relaxed));
    for kind in IpiKind::ALL {
        let (label, desc) = kind.proc_row();
        row(label, desc, &|p| p.ipi_count(kind));
    }
    s
}

fn kb(pages: u64) -> u64 {
    pages * 4
}

/// `/proc/vmstat`: Linux's `name value` lines for the figures this kernel keeps exactly
/// (in pages, as Linux's), then its own: transparent page-table sharing (`pt_share`) hosts
/// made, grafts made, slots unshared and host flushes.
fn vmstat() -> String {
    use crate::mm::pt_share;
    let f = crate::mm::frame::stats();
    let shmem = crate::mm::page_cache::SHMEM_PAGES.load(Ordering::Relaxed);
    let mut s = String::new();
    let mut line = |name: &str, v: u64| {
        let _ = writeln!(s, "{name} {v}");
    };
    line("nr_free_pages", f.free);
    line("nr_anon_pages", crate::mm::page::user_pages() - shmem);
    line("nr_mapped", crate::mm::page::file_mapped_pages());
    line("nr_shmem", shmem);
    line("nr_page_table_pages", USER_PT_PAGES.load(Ordering::Relaxed));
    line("pt_share_hosts", pt_share::HOSTS_MADE.load(Ordering::Relaxed));
    line("pt_share_grafts", pt_share::GRAFTS.load(Ordering::Relaxed));
    line("pt_share_unshares", pt_share::UNSHARES.load(Ordering::Relaxed));
    line("pt_share_flushes", pt_share::flushes());
    s
}

/// `/proc/meminfo`, with Linux's field names and `%8lu kB` layout.
fn meminfo() -> String {
    let f = crate::mm::frame::stats();
    let mut s = String::new();
    let mut line = |name: &str, v: u64| {
        let _ = writeln!(s, "{:<16}{:>8} kB", format!("{}:", name), v);
    };
    line("MemTotal", kb(f.usable));
    line("MemFree", kb(f.free));
    line("MemAvailable", kb(f.free));
    line("Buffers", 0);
    line("Cached", kb(crate::mm::page_cache::SHMEM_PAGES.load(Ordering::Relaxed)));
    line("SwapCached", 0);
    line("Active", 0);
    line("Inactive", 0);
    line("Unevictable", 0);
    line("Mlocked", kb(mlocked_pages()));
    line("SwapTotal", 0);
    line("SwapFree", 0);
    line("Dirty", 0);
    line("Writeback", 0);
    line("AnonPages", kb(crate::mm::page::user_pages() - crate::mm::page_cache::SHMEM_PAGES.load(Ordering::Relaxed)));
    line("Mapped", kb(crate::mm::page::file_mapped_pages()));
    line("Shmem", kb(crate::mm::page_cache::SHMEM_PAGES.load(Ordering::Relaxed)));
    line("KernelStack", 0);
    line("PageTables", kb(USER_PT_PAGES.load(Ordering::Relaxed)));
    // Not Linux's: the page tables files share among processes (`pt_share`), counted once.
    line("PtShared", kb(crate::mm::pt_share::shared_table_pages()));
    line("CommitLimit", kb(crate::mm::commit::vm_commit_limit()));
    line("Committed_AS", kb(crate::mm::commit::vm_memory_committed()));
    line("VmallocTotal", 0);
    line("VmallocUsed", 0);
    // No huge page pool (vm.nr_hugepages 0): hugetlb_report_meminfo's lines.
    for name in ["HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"] {
        let _ = writeln!(s, "{:<16}{:>6}", format!("{}:", name), 0);
    }
    let _ = writeln!(s, "Hugepagesize:       2048 kB");
    let _ = writeln!(s, "Hugetlb:               0 kB");
    s
}

fn mm_of(p: &Arc<Process>) -> (Option<Arc<crate::mm::address_space::MmStruct>>, usize) {
    let threads = p.threads.lock();
    (threads.first().and_then(|t| t.mm.lock().clone()), threads.len())
}

/// The thread `tid` of `p`, if it is alive.
fn thread_of(p: &Arc<Process>, tid: u32) -> Option<Arc<Task>> {
    p.threads.lock().iter().find(|t| t.tid() == tid).cloned()
}

/// The name of `task`, or of the first live thread when the leader is gone.
fn comm(p: &Arc<Process>, task: Option<&Arc<Task>>) -> String {
    let c = match task {
        Some(t) => *t.comm.lock(),
        None => p.first_thread().map(|t| *t.comm.lock()).unwrap_or_default(),
    };
    let n = c.iter().position(|&b| b == 0).unwrap_or(c.len());
    String::from_utf8_lossy(&c[..n]).into_owned()
}

struct MemStats {
    vm_pages: u64,
    rss: u64,
    /// anon, file, shmem
    rss_by_kind: [u64; 3],
    rss_peak: u64,
    vm_peak: u64,
    locked_pages: u64,
    pt_pages: u64,
    text_pages: u64,
    data_pages: u64,
    stack_pages: u64,
}

fn mem_stats(p: &Arc<Process>) -> MemStats {
    let (mm, _) = mm_of(p);
    let Some(mm) = mm else {
        return MemStats {
            vm_pages: 0,
            rss: 0,
            rss_by_kind: [0; 3],
            rss_peak: 0,
            vm_peak: 0,
            locked_pages: 0,
            pt_pages: 0,
            text_pages: 0,
            data_pages: 0,
            stack_pages: 0,
        };
    };
    let inner = mm.mmap_lock.read();
    debug_assert!(inner.vmas.counters_consistent(), "VmSize, VmLck or the gap index drifted from the VMAs");
    // The pages its grafts reach (mshare windows, shared file tables) count as its own
    // (RssShmem for shmem).
    let windows = crate::mm::mshare::grafts_rss(&mm);
    let mut rss_by_kind = mm.rss();
    for (r, w) in rss_by_kind.iter_mut().zip(windows) {
        *r += w;
    }
    let mut s = MemStats {
        vm_pages: inner.total_pages(),
        rss: rss_by_kind.iter().sum(),
        rss_by_kind,
        rss_peak: mm.hiwater_rss(),
        vm_peak: inner.hiwater_vm,
        locked_pages: inner.locked_pages(),
        pt_pages: mm.pt_pages.load(Ordering::Relaxed),
        text_pages: 0,
        data_pages: 0,
        stack_pages: 0,
    };
    for v in inner.vmas.values() {
        let pages = (v.end - v.start) / 4096;
        if v.flags.contains(VmFlags::STACK) {
            s.stack_pages += pages;
        } else if v.prot.contains(Prot::EXEC) {
            s.text_pages += pages;
        } else if v.prot.contains(Prot::WRITE) && !v.is_shared() {
            s.data_pages += pages;
        }
    }
    s
}

/// The state letter of one thread, as Linux's `get_task_state`: a process shows its
/// leader's (`task` None: the leader has exited and is a zombie until the group ends).
fn state_char(p: &Arc<Process>, task: Option<&Arc<Task>>) -> char {
    use crate::process::task::TaskState;
    if p.is_zombie() {
        return 'Z';
    }
    let Some(t) = task else { return 'Z' };
    if p.stopped.load(Ordering::Relaxed) {
        return 'T';
    }
    match t.state() {
        TaskState::Running | TaskState::Runnable => 'R',
        TaskState::Interruptible => 'S',
        TaskState::Uninterruptible | TaskState::Killable => 'D',
        TaskState::Dead => 'Z',
    }
}

/// `/proc/pid/stat`: the 52 fields of Linux's `do_task_stat`, with the ones
/// not tracked yet as 0.
fn stat(p: &Arc<Process>, task: Option<&Arc<Task>>, tid: u32) -> String {
    let m = mem_stats(p);
    let (_, threads) = mm_of(p);
    let minflt = p.min_flt.load(Ordering::Relaxed);
    let tick = crate::process::task::TICK_NS;
    let (cpu, kids) = (p.cpu_time(), p.children_cpu_time());
    // The controlling terminal's device and foreground group (-1 without one).
    let ctty = p.tty.lock().clone();
    let (tty_nr, tpgid) = ctty.map_or((0, -1), |t| (t.tty_nr(), t.foreground() as i64));
    let mut s = format!(
        "{} ({}) {} {} {} {} {} {} 0 {} 0 0 0 {} {} {} {} 20 0 {} 0 0 {} {}",
        if tid != 0 { tid } else { p.pid },
        comm(p, task),
        state_char(p, task),
        p.parent_pid(),
        p.pgid(),
        p.sid.load(Ordering::Relaxed),
        tty_nr,
        tpgid,
        minflt,
        cpu.user / tick,
        cpu.sys / tick,
        kids.user / tick,
        kids.sys / tick,
        threads,
        m.vm_pages * 4096,
        m.rss
    );
    // rsslim .. exit_code: 28 more fields; 39 is the CPU the thread last ran on.
    let leader = task.cloned().or_else(|| p.threads.lock().first().cloned());
    let processor = leader.map_or(0, |t| crate::process::sched::task_cpu(&t));
    for field in 25..=52 {
        if field == 39 {
            let _ = write!(s, " {}", processor);
        } else {
            s.push_str(" 0");
        }
    }
    s.push('\n');
    s
}

fn status(p: &Arc<Process>, task: Option<&Arc<Task>>, tid: u32) -> String {
    let m = mem_stats(p);
    let (_, threads) = mm_of(p);
    let c = p.creds.lock().clone();
    let state = match state_char(p, task) {
        'R' => "R (running)",
        'D' => "D (disk sleep)",
        'Z' => "Z (zombie)",
        'T' => "T (stopped)",
        _ => "S (sleeping)",
    };
    let mut s = String::new();
    let _ = writeln!(s, "Name:\t{}", comm(p, task));
    let _ = writeln!(s, "Umask:\t0022");
    let _ = writeln!(s, "State:\t{}", state);
    let _ = writeln!(s, "Tgid:\t{}", p.pid);
    let _ = writeln!(s, "Pid:\t{}", if tid != 0 { tid } else { p.pid });
    let _ = writeln!(s, "PPid:\t{}", p.parent_pid());
    let _ = writeln!(s, "Uid:\t{}\t{}\t{}\t{}", c.uid, c.euid, c.suid, c.fsuid);
    let _ = writeln!(s, "Gid:\t{}\t{}\t{}\t{}", c.gid, c.egid, c.sgid, c.fsgid);
    // Each supplementary group followed by a space, as Linux prints them.
    let groups: String = c.groups.iter().map(|g| format!("{g} ")).collect();
    let _ = writeln!(s, "Groups:\t{}", groups);
    let _ = writeln!(s, "VmPeak:\t{:>8} kB", kb(m.vm_peak.max(m.vm_pages)));
    let _ = writeln!(s, "VmSize:\t{:>8} kB", kb(m.vm_pages));
    let _ = writeln!(s, "VmLck:\t{:>8} kB", kb(m.locked_pages));
    let _ = writeln!(s, "VmHWM:\t{:>8} kB", kb(m.rss_peak.max(m.rss)));
    let _ = writeln!(s, "VmRSS:\t{:>8} kB", kb(m.rss));
    let _ = writeln!(s, "RssAnon:\t{:>8} kB", kb(m.rss_by_kind[0]));
    let _ = writeln!(s, "RssFile:\t{:>8} kB", kb(m.rss_by_kind[1]));
    let _ = writeln!(s, "RssShmem:\t{:>8} kB", kb(m.rss_by_kind[2]));
    let _ = writeln!(s, "VmData:\t{:>8} kB", kb(m.data_pages));
    let _ = writeln!(s, "VmStk:\t{:>8} kB", kb(m.stack_pages));
    let _ = writeln!(s, "VmExe:\t{:>8} kB", kb(m.text_pages));
    let _ = writeln!(s, "VmPTE:\t{:>8} kB", kb(m.pt_pages));
    let _ = writeln!(s, "VmSwap:\t{:>8} kB", 0);
    let _ = writeln!(s, "Threads:\t{}", threads);
    // Signal sets as `render_sigset_t`: 16 hex digits, signal 1 in the lowest bit.
    let leader = p.first_thread();
    let (pending, blocked) = leader
        .as_ref()
        .map(|t| {
            let sig = t.sig.lock();
            (sig.pending.set, sig.blocked)
        })
        .unwrap_or((0, 0));
    let (ignored, caught) = leader
        .as_ref()
        .map(|t| {
            let hand = t.sighand();
            let h = hand.lock();
            let mut ign = 0u64;
            let mut cgt = 0u64;
            for (i, a) in h.actions.iter().enumerate() {
                match a.handler {
                    crate::process::signal::SIG_DFL => {}
                    crate::process::signal::SIG_IGN => ign |= 1 << i,
                    _ => cgt |= 1 << i,
                }
            }
            (ign, cgt)
        })
        .unwrap_or((0, 0));
    let _ = writeln!(s, "SigPnd:\t{:016x}", pending);
    let _ = writeln!(s, "ShdPnd:\t{:016x}", p.shared_pending.lock().set);
    let _ = writeln!(s, "SigBlk:\t{:016x}", blocked);
    let _ = writeln!(s, "SigIgn:\t{:016x}", ignored);
    let _ = writeln!(s, "SigCgt:\t{:016x}", caught);
    let _ = writeln!(s, "CapInh:\t{:016x}", c.cap_inheritable);
    let _ = writeln!(s, "CapPrm:\t{:016x}", c.cap_permitted);
    let _ = writeln!(s, "CapEff:\t{:016x}", c.cap_effective);
    let _ = writeln!(s, "CapBnd:\t{:016x}", c.cap_bset);
    let _ = writeln!(s, "CapAmb:\t{:016x}", 0);
    let _ = writeln!(s, "NoNewPrivs:\t0");
    let _ = writeln!(s, "Cpus_allowed:\t1");
    let _ = writeln!(s, "Cpus_allowed_list:\t0");
    s
}

/// One maps line as `show_map_vma` prints it: the fields, one space, then
/// (if there is a path) padding to column 73 (`seq_pad`) and the path.
fn maps_line(start: u64, end: u64, perms: &str, off: u64, dev: &str, ino: u64, name: &str) -> String {
    let mut line = format!("{:08x}-{:08x} {} {:08x} {} {} ", start, end, perms, off, dev, ino);
    if !name.is_empty() {
        while line.len() < 73 {
            line.push(' ');
        }
        line.push_str(name);
    }
    line
}

/// One VMA as its maps line (`show_map_vma`).
fn vma_line(v: &crate::mm::vma::Vma) -> String {
    let perms: String = [
        if v.prot.contains(Prot::READ) { 'r' } else { '-' },
        if v.prot.contains(Prot::WRITE) { 'w' } else { '-' },
        if v.prot.contains(Prot::EXEC) { 'x' } else { '-' },
        if v.is_shared() { 's' } else { 'p' },
    ]
    .iter()
    .collect();
    let (dev, ino, name, off) = match &v.backend {
        Backend::File(_) if let Some(name) = crate::mm::vdso::special_name(v) => {
            ("00:00".to_string(), 0, name.to_string(), 0)
        }
        Backend::File(f) => {
            let m = f.metadata();
            (format!("{:02x}:{:02x}", m.dev >> 8, m.dev & 0xff), m.ino, f.display_path(), v.pgoff * 4096)
        }
        Backend::Anonymous => {
            let name = if v.flags.contains(VmFlags::HEAP) {
                "[heap]"
            } else if v.flags.contains(VmFlags::STACK) {
                "[stack]"
            } else {
                ""
            };
            ("00:00".to_string(), 0, name.to_string(), 0)
        }
    };
    maps_line(v.start, v.end, &perms, off, &dev, ino, &name)
}

/// `/proc/pid/maps`: `start-end perms offset dev inode path`, as `show_map_vma`.
fn maps(p: &Arc<Process>) -> String {
    let (mm, _) = mm_of(p);
    let Some(mm) = mm else { return String::new() };
    let inner = mm.mmap_lock.read();
    let mut s = String::new();
    for v in inner.vmas.values() {
        let _ = writeln!(s, "{}", vma_line(v));
    }
    s
}

/// Resident pages of locked VMAs in every address space, each frame once.
fn mlocked_pages() -> u64 {
    let mut frames = alloc::collections::BTreeSet::new();
    let mut seen = alloc::collections::BTreeSet::new();
    for p in crate::process::task::all_processes() {
        let (Some(mm), _) = mm_of(&p) else { continue };
        if !seen.insert(mm.id) {
            continue;
        }
        let inner = mm.mmap_lock.read();
        let pt = mm.page_table_lock.lock();
        let mem = mm.phys_mem();
        for v in inner.vmas.values().filter(|v| v.flags.contains(VmFlags::LOCKED)) {
            let mut cursor = pt.pt.cursor(v.start, v.end);
            while let Some((_, m)) = cursor.next(&mem) {
                // The zero page is never mlocked (it is no process's memory).
                if !crate::mm::page::is_zero_page(m.phys) {
                    frames.insert(m.phys);
                }
            }
        }
    }
    frames.len() as u64
}

/// Linux's PSS_SHIFT: Pss is summed in bytes << 12, so a page shared by N
/// mappings adds exactly (PAGE_SIZE << 12) / N.
const PSS_SHIFT: u32 = 12;

/// What smaps counts, per VMA or summed (smaps_rollup), as Linux's
/// `smaps_account`: each page mapped here (the zero page is nobody's and
/// counts nowhere) adds to Rss, and to Pss its size divided by the number of
/// page-table entries mapping it (its map count, not its references: the page
/// cache's own does not count); a page mapped once is private, else shared. A page
/// is dirty if its entry's dirty bit or the page's (`page_dirty`: its data was written)
/// says so; anonymous pages always count as dirty, as no writeback ever cleans them.
#[derive(Default)]
struct SmapsStats {
    rss: u64,
    pss: u64,
    pss_kind: [u64; 3],
    pss_dirty: u64,
    pss_locked: u64,
    shared_clean: u64,
    shared_dirty: u64,
    private_clean: u64,
    private_dirty: u64,
    anon: u64,
}

impl SmapsStats {
    fn add_vma(
        &mut self,
        pt: &page_table::PageTable,
        mem: &crate::mm::address_space::UserPhysMem<'_>,
        v: &crate::mm::vma::Vma,
    ) {
        use crate::mm::page;
        let mut cursor = pt.cursor(v.start, v.end);
        while let Some((_, m)) = cursor.next(mem) {
            let dirty = m.flags.contains(page_table::PteFlags::DIRTY);
            self.add_page(v, m.phys, page::page_mapcount(m.phys).max(1) as u64, dirty);
        }
    }

    /// The pages `v` reaches through grafts (an mshare window, shared file tables), each
    /// divided among the address spaces whose grafts reach it. The caller holds no page-table lock (the host's
    /// is taken).
    fn add_grafted(&mut self, mm: &crate::mm::address_space::MmStruct, v: &crate::mm::vma::Vma) {
        crate::mm::mshare::for_each_grafted_page_in(mm, v.start, v.end, |_, pa, reach| {
            self.add_page(v, pa, crate::mm::mshare::grafted_page_sharers(reach, pa), false);
        });
    }

    /// One page mapped in `v`, shared by `mapcount` mappings; `pte_dirty` is its entry's
    /// dirty bit.
    fn add_page(&mut self, v: &crate::mm::vma::Vma, phys: u64, mapcount: u64, pte_dirty: bool) {
        use crate::mm::page;
        let locked = v.flags.contains(VmFlags::LOCKED);
        let Some(kind) = page::mm_counter(phys) else { return };
        let is_anon = kind == page::PageKind::Anon;
        let dirty = is_anon || pte_dirty || page::page_dirty(phys);
        let pss = (4096u64 << PSS_SHIFT) / mapcount;
        self.rss += 1;
        self.pss += pss;
        self.pss_kind[kind as usize] += pss;
        if dirty {
            self.pss_dirty += pss;
        }
        if locked {
            self.pss_locked += pss;
        }
        match (mapcount > 1, dirty) {
            (true, true) => self.shared_dirty += 1,
            (true, false) => self.shared_clean += 1,
            (false, true) => self.private_dirty += 1,
            (false, false) => self.private_clean += 1,
        }
        self.anon += is_anon as u64;
    }

    /// The `Name:  value kB` lines; `rollup` adds Pss_Anon/File/Shmem as Linux's rollup does.
    fn write(&self, s: &mut String, rollup: bool) {
        let mut line = |name: &str, kbv: u64| {
            let _ = writeln!(s, "{:<16}{:>8} kB", format!("{}:", name), kbv);
        };
        // Pss figures are bytes << PSS_SHIFT, printed in kB.
        let pss_kb = |v: u64| v >> PSS_SHIFT >> 10;
        line("Rss", kb(self.rss));
        line("Pss", pss_kb(self.pss));
        line("Pss_Dirty", pss_kb(self.pss_dirty));
        if rollup {
            line("Pss_Anon", pss_kb(self.pss_kind[0]));
            line("Pss_File", pss_kb(self.pss_kind[1]));
            line("Pss_Shmem", pss_kb(self.pss_kind[2]));
        }
        line("Shared_Clean", kb(self.shared_clean));
        line("Shared_Dirty", kb(self.shared_dirty));
        line("Private_Clean", kb(self.private_clean));
        line("Private_Dirty", kb(self.private_dirty));
        line("Referenced", kb(self.rss));
        line("Anonymous", kb(self.anon));
        for name in [
            "KSM",
            "LazyFree",
            "AnonHugePages",
            "ShmemPmdMapped",
            "FilePmdMapped",
            "Shared_Hugetlb",
            "Private_Hugetlb",
            "Swap",
            "SwapPss",
        ] {
            line(name, 0);
        }
        line("Locked", pss_kb(self.pss_locked));
    }
}

/// `/proc/pid/smaps_rollup`: the sums of smaps over all VMAs.
fn smaps_rollup(p: &Arc<Process>) -> String {
    let (mm, _) = mm_of(p);
    let Some(mm) = mm else { return String::new() };
    let inner = mm.mmap_lock.read();
    let mem = mm.phys_mem();
    let mut stats = SmapsStats::default();
    {
        let pt = mm.page_table_lock.lock();
        for v in inner.vmas.values() {
            stats.add_vma(&pt.pt, &mem, v);
        }
    }
    for v in inner.vmas.values() {
        stats.add_grafted(&mm, v);
    }
    let (first, last) =
        (inner.vmas.values().next().map_or(0, |v| v.start), inner.vmas.values().last().map_or(0, |v| v.end));
    let mut s = maps_line(first, last, "---p", 0, "00:00", 0, "[rollup]");
    s.push('\n');
    stats.write(&mut s, true);
    s
}

/// `/proc/pid/smaps`: each maps line followed by its VMA's counts and flags.
fn smaps(p: &Arc<Process>) -> String {
    let (mm, _) = mm_of(p);
    let Some(mm) = mm else { return String::new() };
    let inner = mm.mmap_lock.read();
    let mem = mm.phys_mem();
    let mut s = String::new();
    for v in inner.vmas.values() {
        let _ = writeln!(s, "{}", vma_line(v));
        let _ = writeln!(s, "{:<16}{:>8} kB", "Size:", (v.end - v.start) / 1024);
        let _ = writeln!(s, "{:<16}{:>8} kB", "KernelPageSize:", 4);
        let _ = writeln!(s, "{:<16}{:>8} kB", "MMUPageSize:", 4);
        let mut stats = SmapsStats::default();
        // Only around the walk: naming the VMA's file takes the file's locks, which are
        // outside the page tables'.
        stats.add_vma(&mm.page_table_lock.lock().pt, &mem, v);
        stats.add_grafted(&mm, v);
        stats.write(&mut s, false);
        let _ = writeln!(s, "THPeligible:    0");
        let mut flags = String::from("VmFlags:");
        let f = v.flags;
        for (on, name) in [
            (v.prot.contains(Prot::READ), "rd"),
            (v.prot.contains(Prot::WRITE), "wr"),
            (v.prot.contains(Prot::EXEC), "ex"),
            // A shared mapping of a file opened read-only loses VM_SHARED and VM_MAYWRITE
            // (do_mmap) but keeps VM_MAYSHARE.
            (v.is_shared() && v.may_write(), "sh"),
            (true, "mr"),
            (v.may_write(), "mw"),
            (true, "me"),
            (v.is_shared(), "ms"),
            (f.contains(VmFlags::GROWSDOWN), "gd"),
            (f.contains(VmFlags::LOCKED), "lo"),
            (f.contains(VmFlags::DONTFORK), "dc"),
            (f.contains(VmFlags::NORESERVE), "nr"),
            (f.contains(VmFlags::WIPEONFORK), "wf"),
        ] {
            if on {
                flags.push(' ');
                flags.push_str(name);
            }
        }
        let _ = writeln!(s, "{} ", flags);
    }
    s
}

/// `/proc/pid/exe`: the executable's path.
struct ExeLink {
    _live: Live,
    pid: u32,
}

impl Inode for ExeLink {
    fn metadata(&self) -> Metadata {
        task_dump_owner(self.pid, meta(((self.pid as u64) << 8) + 0x40, S_IFLNK | 0o777))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn readlink(&self) -> KResult<Vec<u8>> {
        let p = find_process(self.pid).ok_or(ENOENT)?;
        let (mm, _) = mm_of(&p);
        let exe = mm.and_then(|mm| mm.mmap_lock.read().exe.clone()).ok_or(ENOENT)?;
        Ok(exe.into_bytes())
    }
}

/// `/proc/pid/fd`: one magic link per open descriptor (`FdLink`).
struct FdDir {
    _live: Live,
    pid: u32,
}

impl FdDir {
    fn table(&self) -> KResult<Arc<crate::fs::fdtable::FdTableLock>> {
        fd_table(self.pid)
    }
}

/// The descriptor table of process `pid` (its first thread's).
fn fd_table(pid: u32) -> KResult<Arc<crate::fs::fdtable::FdTableLock>> {
    let p = find_process(pid).ok_or(ENOENT)?;
    let t = p.first_thread().ok_or(ENOENT)?;
    Ok(t.files())
}

impl Inode for FdDir {
    fn metadata(&self) -> Metadata {
        let mut m = meta(((self.pid as u64) << 8) + 0x41, S_IFDIR | 0o500);
        m.nlink = 2;
        task_dump_owner(self.pid, m)
    }
    /// `proc_fd_permission`: the mode bits, or any thread of the process itself.
    fn permission(&self, c: &crate::process::cred::Creds, mask: u32) -> KResult<()> {
        super::namei::generic_permission(c, &self.metadata(), mask).or_else(|e| {
            if crate::process::current().process.pid == self.pid {
                Ok(())
            } else {
                Err(e)
            }
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        match name {
            "" | "." => Ok(Arc::new(FdDir { _live: live(), pid: self.pid })),
            ".." => Ok(Arc::new(PidDir { _live: live(), pid: self.pid })),
            _ => {
                let fd: i32 = name.parse().map_err(|_| ENOENT)?;
                self.table()?.lock().get(fd).map_err(|_| ENOENT)?;
                Ok(Arc::new(FdLink { _live: live(), pid: self.pid, fd }))
            }
        }
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        let base = ((self.pid as u64) << 8) + 0x41;
        let mut v = alloc::vec![
            DirEntry { name: ".".into(), ino: base, d_type: DT_DIR },
            DirEntry { name: "..".into(), ino: (self.pid as u64) << 8, d_type: DT_DIR },
        ];
        let table = self.table()?;
        let t = table.lock();
        for fd in 0..t.len() as i32 {
            if t.get(fd).is_ok() {
                v.push(DirEntry { name: fd.to_string(), ino: ((self.pid as u64) << 20) + fd as u64, d_type: DT_LNK });
            }
        }
        Ok(v)
    }
}

fn link_target(f: &crate::fs::file::File) -> Vec<u8> {
    match &f.kind {
        crate::fs::file::FileKind::Pipe(p, _) if p.fifo().is_none() => format!("pipe:[{}]", p.ino).into_bytes(),
        crate::fs::file::FileKind::EventFd(..) => b"anon_inode:[eventfd]".to_vec(),
        crate::fs::file::FileKind::Epoll(..) => b"anon_inode:[eventpoll]".to_vec(),
        crate::fs::file::FileKind::TimerFd(..) => b"anon_inode:[timerfd]".to_vec(),
        crate::fs::file::FileKind::SignalFd(..) => b"anon_inode:[signalfd]".to_vec(),
        crate::fs::file::FileKind::Socket(s) => format!("socket:[{}]", s.ino).into_bytes(),
        crate::fs::file::FileKind::PidFd(..) => b"anon_inode:[pidfd]".to_vec(),
        crate::fs::file::FileKind::Inode(_)
        | crate::fs::file::FileKind::Tty(_)
        | crate::fs::file::FileKind::Pipe(..) => f.display_path().into_bytes(),
    }
}

/// `/proc/pid/fd/N`, a magic link (fs/proc/fd.c): readlink gives the file's path, and a
/// walk that follows it lands on the open file itself (`proc_fd_link`), so open reaches
/// files that have no name any more. The descriptor is looked up at each use, as Linux
/// revalidates the dentry.
struct FdLink {
    _live: Live,
    pid: u32,
    fd: i32,
}

impl FdLink {
    fn file(&self) -> KResult<Arc<crate::fs::file::File>> {
        let f = fd_table(self.pid)?.lock().get(self.fd).map_err(|_| ENOENT)?;
        Ok(f)
    }

    /// `proc_fd_access_allowed`: the file behind another process's descriptor is the
    /// caller's only if it may ptrace that process.
    fn accessible_file(&self) -> KResult<Arc<crate::fs::file::File>> {
        may_read_mm_of(self.pid).map_err(|e| if e == ESRCH { ENOENT } else { e })?;
        self.file()
    }
}

impl Inode for FdLink {
    /// `tid_fd_update_inode`: r-x for an fd open for reading, -wx for writing (none for
    /// O_PATH or access mode 3); size 64.
    fn metadata(&self) -> Metadata {
        let flags = self.file().map_or(0, |f| if f.flags() & crate::fs::file::O_PATH != 0 { 3 } else { f.flags() });
        let mode = match flags & crate::fs::file::O_ACCMODE {
            crate::fs::file::O_RDONLY => 0o500,
            crate::fs::file::O_WRONLY => 0o300,
            crate::fs::file::O_RDWR => 0o700,
            _ => 0,
        };
        let mut m = meta(((self.pid as u64) << 20) + self.fd as u64, S_IFLNK | mode);
        m.size = 64;
        task_dump_owner(self.pid, m)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn readlink(&self) -> KResult<Vec<u8>> {
        Ok(link_target(&*self.accessible_file()?))
    }
    fn jump_link(&self) -> Option<KResult<Arc<crate::fs::file::File>>> {
        Some(self.accessible_file())
    }
}

/// `/proc/pid/pagemap`: 8 bytes per virtual page (Documentation/admin-guide/mm/pagemap.rst):
/// bit 63 present, bit 61 file page or shared anonymous, bit 56 mapped exclusively,
/// bits 0-54 the frame number (shown to root only, as with CAP_SYS_ADMIN).
fn pagemap_read(pid: u32, offset: u64, buf: &mut [u8]) -> KResult<usize> {
    if !offset.is_multiple_of(8) || !buf.len().is_multiple_of(8) {
        return Err(EINVAL);
    }
    let p = find_process(pid).ok_or(ESRCH)?;
    let (mm, _) = mm_of(&p);
    let Some(mm) = mm else { return Ok(0) };
    let show_pfn = crate::process::current().process.creds.lock().capable(crate::process::cred::CAP_SYS_ADMIN);
    let _inner = mm.mmap_lock.read();
    let pt = mm.page_table_lock.lock();
    let mem = mm.phys_mem();
    // The pages of the range below TASK_SIZE, all absent at first; then a walk of the
    // range's tables fills in the present ones.
    let first = offset / 8;
    let pages = (buf.len() as u64 / 8).min((crate::mm::address_space::TASK_SIZE / 4096).saturating_sub(first));
    if pages == 0 {
        return Ok(0);
    }
    let n = pages as usize * 8;
    buf[..n].fill(0);
    let start = first * 4096;
    let end = start + pages * 4096;
    // A present page's entry; `sharers`: the mappings it has (exclusive when one).
    let entry = |phys: u64, sharers: u64| {
        let mut entry = 1u64 << 63;
        // The zero page is present but no process's page: neither file nor exclusive.
        if let Some(kind) = crate::mm::page::mm_counter(phys) {
            if kind != crate::mm::page::PageKind::Anon {
                entry |= 1 << 61;
            }
            if sharers == 1 {
                entry |= 1 << 56;
            }
        }
        if show_pfn {
            entry |= (phys / 4096) & ((1 << 55) - 1);
        }
        entry
    };
    let mut cursor = pt.pt.cursor(start, end);
    while let Some((at, m)) = cursor.next(&mem) {
        // User pages are 4 KiB: none starts before the range.
        if at < start {
            continue;
        }
        let i = ((at - start) / 4096) as usize * 8;
        buf[i..i + 8].copy_from_slice(&entry(m.phys, crate::mm::page::page_mapcount(m.phys) as u64).to_le_bytes());
    }
    drop(pt);
    // The pages grafts reach (mshare windows, shared file tables; the cursor skips grafts).
    crate::mm::mshare::for_each_grafted_page_in(&mm, start, end, |at, phys, reach| {
        let i = ((at - start) / 4096) as usize * 8;
        let e = entry(phys, crate::mm::mshare::grafted_page_sharers(reach, phys));
        buf[i..i + 8].copy_from_slice(&e.to_le_bytes());
    });
    Ok(n)
}

/// `/proc/cpuinfo`: a block per online CPU, as Linux's `show_cpuinfo`
/// (arch/x86/kernel/cpu/proc.c), from CPUID; the APIC ids are each CPU's own.
fn cpuinfo() -> String {
    use crate::arch::cpu::cpuid;
    use crate::arch::percpu;
    let v = cpuid(0, 0);
    let mut vendor = [0u8; 12];
    vendor[0..4].copy_from_slice(&v.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&v.edx.to_le_bytes());
    vendor[8..12].copy_from_slice(&v.ecx.to_le_bytes());
    let sig = cpuid(1, 0);
    let base_family = (sig.eax >> 8) & 0xf;
    let family = if base_family == 0xf { base_family + ((sig.eax >> 20) & 0xff) } else { base_family };
    let model = if base_family == 6 || base_family == 0xf {
        ((sig.eax >> 4) & 0xf) | (((sig.eax >> 16) & 0xf) << 4)
    } else {
        (sig.eax >> 4) & 0xf
    };
    let mut brand = [0u8; 48];
    if cpuid(0x8000_0000, 0).eax >= 0x8000_0004 {
        for (i, leaf) in (0x8000_0002u32..=0x8000_0004).enumerate() {
            let r = cpuid(leaf, 0);
            for (j, w) in [r.eax, r.ebx, r.ecx, r.edx].iter().enumerate() {
                brand[i * 16 + j * 4..i * 16 + j * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
        }
    }
    let brand_len = brand.iter().position(|&b| b == 0).unwrap_or(48);
    let brand = core::str::from_utf8(&brand[..brand_len]).unwrap_or("").trim();
    const EDX_FLAGS: [(u32, &str); 20] = [
        (0, "fpu"),
        (1, "vme"),
        (2, "de"),
        (3, "pse"),
        (4, "tsc"),
        (5, "msr"),
        (6, "pae"),
        (7, "mce"),
        (8, "cx8"),
        (9, "apic"),
        (11, "sep"),
        (12, "mtrr"),
        (13, "pge"),
        (14, "mca"),
        (15, "cmov"),
        (16, "pat"),
        (19, "clflush"),
        (23, "mmx"),
        (24, "fxsr"),
        (25, "sse"),
    ];
    let mut flags = String::new();
    for (bit, name) in EDX_FLAGS {
        if sig.edx & (1 << bit) != 0 {
            flags.push_str(name);
            flags.push(' ');
        }
    }
    if sig.edx & (1 << 26) != 0 {
        flags.push_str("sse2 ");
    }
    if sig.ecx & 1 != 0 {
        flags.push_str("pni ");
    }
    let ext = cpuid(0x8000_0001, 0).edx;
    for (bit, name) in [(11, "syscall"), (20, "nx"), (27, "rdtscp"), (29, "lm")] {
        if ext & (1 << bit) != 0 {
            flags.push_str(name);
            flags.push(' ');
        }
    }
    let flags = flags.trim_end();
    let online = percpu::cpu_online_mask();
    let n = online.count();
    let mut s = String::new();
    for (core, c) in online.iter().enumerate() {
        let apic = percpu::cpu(c).apic_id();
        let _ = write!(
            s,
            "processor\t: {c}\nvendor_id\t: {}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: {brand}\n\
             stepping\t: {}\nphysical id\t: 0\nsiblings\t: {n}\ncore id\t\t: {core}\ncpu cores\t: {n}\n\
             apicid\t\t: {apic}\ninitial apicid\t: {apic}\nfpu\t\t: yes\nfpu_exception\t: yes\n\
             cpuid level\t: {}\nwp\t\t: yes\nflags\t\t: {flags}\nclflush size\t: 64\ncache_alignment\t: 64\n\
             power management:\n\n",
            core::str::from_utf8(&vendor).unwrap_or("unknown"),
            sig.eax & 0xf,
            v.eax,
        );
    }
    s
}

/// `/proc/stat` (Linux's fs/proc/stat.c): the `cpu` line sums the `cpuN` lines, one per
/// online CPU, in USER_HZ ticks (the tick is 100 Hz, as USER_HZ): user, nice (user time
/// of tasks with a positive nice value), system, idle, iowait, irq, softirq, steal, guest, guest_nice, sampled by each CPU's tick;
/// then interrupts, context switches, boot time, forks, and tasks runnable and blocked.
fn sys_stat() -> String {
    use crate::arch::percpu;
    use crate::process::task::TaskState;
    let online = percpu::cpu_online_mask();
    let row = |c: usize| {
        let p = percpu::cpu(c);
        [
            p.user_ticks.load(Ordering::Relaxed),
            p.nice_ticks.load(Ordering::Relaxed),
            p.system_ticks.load(Ordering::Relaxed),
            p.idle_ticks.load(Ordering::Relaxed),
        ]
    };
    let line = |name: &str, [user, nice, system, idle]: [u64; 4]| {
        format!("{name} {user} {nice} {system} {idle} 0 0 0 0 0 0\n")
    };
    let mut total = [0u64; 4];
    for c in online.iter() {
        for (t, v) in total.iter_mut().zip(row(c)) {
            *t += v;
        }
    }
    let mut s = line("cpu ", total);
    for c in online.iter() {
        s.push_str(&line(&format!("cpu{c}"), row(c)));
    }
    let intr: u64 =
        online.iter().map(|c| percpu::cpu(c).ticks.load(Ordering::Relaxed) + percpu::cpu(c).ipis_received()).sum();
    let uptime_s = (crate::time::monotonic_ns() / 1_000_000_000) as i64;
    let btime = (crate::time::realtime_ns() / 1_000_000_000 - uptime_s).max(0);
    // Upgraded under the table lock, dropped after it: a last reference may free a task.
    let tasks: Vec<Arc<Task>> = TABLES.lock().tasks.values().filter_map(|w| w.upgrade()).collect();
    let blocked = tasks.iter().filter(|t| t.state() == TaskState::Uninterruptible).count();
    let _ = write!(
        s,
        "intr {intr}\nctxt {}\nbtime {btime}\nprocesses {}\nprocs_running {}\nprocs_blocked {blocked}\n",
        crate::process::sched::SWITCHES.load(Ordering::Relaxed),
        crate::process::fork::FORKS.load(Ordering::Relaxed),
        crate::process::sched::runnable_count(),
    );
    s
}
