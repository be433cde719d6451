//! System V IPC (Linux's ipc/util.c and ipc/namespace.c): the IPC namespace, each
//! kind's table of objects by id and by key, and the permission check they share.
//! Shared memory segments are `shm.rs`.
//!
//! An object's id is `seq * IPCMNI + index` (Linux's `ipc_buildid` without
//! ipcmni_extend): indices are handed out cyclically (`idr_alloc_cyclic`), and the
//! sequence number grows each time they wrap, so a stale id does not name a new object.
#![deny(unsafe_code)]

pub mod msg;
pub mod sem;
pub mod shm;

use crate::errno::*;
use crate::process::cred::Creds;
use crate::sync::SpinLock;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;

/// The key that always makes a new object, and that removed objects take.
pub const IPC_PRIVATE: i32 = 0;
/// Flags of the `*get` calls, beside the 9 permission bits.
pub const IPC_CREAT: u32 = 0o1000;
pub const IPC_EXCL: u32 = 0o2000;
pub const IPC_NOWAIT: u32 = 0o4000;
/// The commands the `*ctl` calls share.
pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;

/// Linux's IPCMNI: how many objects of one kind a namespace may hold at most, and the
/// factor of the sequence number in an id.
pub const IPCMNI: u32 = 1 << IPCMNI_SHIFT;
const IPCMNI_SHIFT: u32 = 15;
/// Sequence numbers wrap below this (`ipcid_seq_max`: INT_MAX >> IPCMNI_SHIFT).
const SEQ_MAX: u32 = (i32::MAX as u32) >> IPCMNI_SHIFT;

/// Linux's `CAP_IPC_OWNER`: bypasses IPC permission checks.
pub const CAP_IPC_OWNER: u32 = 15;
/// Linux's `CAP_IPC_LOCK`.
pub use crate::process::cred::CAP_IPC_LOCK;

/// The time IPC objects record (`ktime_get_real_seconds`).
fn now() -> i64 {
    crate::time::realtime().sec
}

/// The calling process's id (`task_tgid_vnr(current)`), 0 outside any task.
fn current_tgid() -> u32 {
    crate::process::sched::current().map_or(0, |t| t.process.pid)
}

fn current_creds() -> Creds {
    crate::process::current().process.creds.lock().clone()
}

/// Linux's `struct ipc64_perm` as the `*ctl` calls pass it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Ipc64Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
    pub seq: u16,
    pub pad2: u16,
    pub unused1: u64,
    pub unused2: u64,
}

impl From<&KernIpcPerm> for Ipc64Perm {
    fn from(p: &KernIpcPerm) -> Ipc64Perm {
        Ipc64Perm {
            key: p.key,
            uid: p.uid,
            gid: p.gid,
            cuid: p.cuid,
            cgid: p.cgid,
            mode: p.mode,
            seq: p.seq as u16,
            ..Default::default()
        }
    }
}

/// Linux's `struct kern_ipc_perm`: key, owner, creator and mode of an IPC object.
#[derive(Clone, Debug)]
pub struct KernIpcPerm {
    pub key: i32,
    pub id: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// The 9 permission bits, and the kind's own flags above them (SHM_DEST, SHM_LOCKED).
    pub mode: u32,
    pub seq: u32,
}

impl KernIpcPerm {
    /// A new object's: owned and created by the caller's effective ids.
    pub fn new(key: i32, mode: u32, c: &Creds) -> KernIpcPerm {
        KernIpcPerm { key, id: -1, uid: c.euid, gid: c.egid, cuid: c.euid, cgid: c.egid, mode, seq: 0 }
    }

    /// Linux's `ipcperms`: may `c` access the object with the permission bits in `flag`
    /// (S_IRUGO-style: any of the owner, group or other bits of a right asks for it)?
    /// The owner's bits apply to its owner or creator, the group's to their groups; the
    /// rest to everyone else. CAP_IPC_OWNER overrides.
    pub fn permits(&self, c: &Creds, flag: u32) -> bool {
        let requested = (flag >> 6) | (flag >> 3) | flag;
        let mut granted = self.mode;
        if c.euid == self.cuid || c.euid == self.uid {
            granted >>= 6;
        } else if c.in_group_p(self.cgid) || c.in_group_p(self.gid) {
            granted >>= 3;
        }
        requested & !granted & 0o7 == 0 || c.capable(CAP_IPC_OWNER)
    }

    /// Linux's `ipcctl_obtain_check` for IPC_SET and IPC_RMID: the owner, the creator,
    /// or CAP_SYS_ADMIN; EPERM otherwise.
    pub fn may_change(&self, c: &Creds) -> KResult<()> {
        if c.euid == self.cuid || c.euid == self.uid || c.capable(crate::process::cred::CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(EPERM)
        }
    }
}

/// Linux's `struct ipc_ids`: the objects of one kind in a namespace, by index and by key.
pub struct IpcIds<T> {
    objects: BTreeMap<u32, T>,
    /// Index of each object with a key other than IPC_PRIVATE.
    keys: BTreeMap<i32, u32>,
    seq: u32,
    /// The index handed out last (-1: none yet).
    last_idx: i64,
}

/// What an IPC object of a table exposes to it.
pub trait IpcObject {
    fn perm(&self) -> &KernIpcPerm;
    fn perm_mut(&mut self) -> &mut KernIpcPerm;
}

/// A namespace's table of one kind of object (Linux's `shm_ids`, `sem_ids`, `msg_ids`):
/// an object leaves it only through `destroy`, which settles the table's totals.
pub trait IpcTable {
    type Object: IpcObject;
    fn ids(&self) -> &IpcIds<Self::Object>;
    /// Takes the object at `idx` out; the caller drops it once the table's lock is
    /// released (dropping frees pages and wakes nothing under the lock).
    fn destroy(&mut self, idx: u32) -> Option<Self::Object>;
    /// Takes out every object `pick` chooses, for the caller to drop as `destroy`'s.
    fn destroy_where(&mut self, mut pick: impl FnMut(&Self::Object) -> bool) -> alloc::vec::Vec<Self::Object> {
        let idx: alloc::vec::Vec<u32> = self.ids().iter().filter(|(_, o)| pick(o)).map(|(i, _)| i).collect();
        idx.into_iter().filter_map(|i| self.destroy(i)).collect()
    }
}

impl<T: IpcObject> Default for IpcIds<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: IpcObject> IpcIds<T> {
    pub const fn new() -> Self {
        IpcIds { objects: BTreeMap::new(), keys: BTreeMap::new(), seq: 0, last_idx: -1 }
    }

    /// How many objects exist (`in_use`).
    pub fn in_use(&self) -> usize {
        self.objects.len()
    }

    /// The highest index in use, or -1 (`ipc_get_maxidx`).
    pub fn max_idx(&self) -> i64 {
        self.objects.keys().next_back().map_or(-1, |&i| i as i64)
    }

    /// The object with key `key` (`ipc_findkey`), by index.
    pub fn find_key(&self, key: i32) -> Option<u32> {
        if key == IPC_PRIVATE {
            return None;
        }
        self.keys.get(&key).copied()
    }

    /// The object `id` names (`ipc_obtain_object_check`): EINVAL if there is none or its
    /// sequence number differs (a stale id).
    pub fn index_of(&self, id: i32) -> KResult<u32> {
        if id < 0 {
            return Err(EINVAL);
        }
        let idx = id as u32 % IPCMNI;
        match self.objects.get(&idx) {
            Some(o) if o.perm().id == id => Ok(idx),
            _ => Err(EINVAL),
        }
    }

    pub fn get(&self, idx: u32) -> Option<&T> {
        self.objects.get(&idx)
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<&mut T> {
        self.objects.get_mut(&idx)
    }

    /// The objects in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.objects.iter().map(|(&i, o)| (i, o))
    }

    /// Adds `obj` (Linux's `ipc_addid`), ENOSPC once `limit` objects exist: gives it the
    /// next free index after the last one handed out, wrapping (and then a new
    /// sequence number), and returns its id.
    pub fn add(&mut self, mut obj: T, limit: usize) -> KResult<i32> {
        let limit = limit.min(IPCMNI as usize);
        if self.objects.len() >= limit {
            return Err(ENOSPC);
        }
        let start = (self.last_idx + 1) as u32 % IPCMNI;
        let free = |i: &u32| !self.objects.contains_key(i);
        let idx = (start..IPCMNI).find(free).or_else(|| (0..start).find(free)).ok_or(ENOSPC)?;
        if idx as i64 <= self.last_idx {
            self.seq = (self.seq + 1) % SEQ_MAX;
        }
        self.last_idx = idx as i64;
        let perm = obj.perm_mut();
        perm.seq = self.seq;
        perm.id = ((self.seq << IPCMNI_SHIFT) + idx) as i32;
        let (id, key) = (perm.id, perm.key);
        if key != IPC_PRIVATE {
            self.keys.insert(key, idx);
        }
        self.objects.insert(idx, obj);
        Ok(id)
    }

    /// Makes the object's key IPC_PRIVATE (`ipc_set_key_private`): no later `get` finds
    /// it, and the key can name a new object at once.
    pub fn set_key_private(&mut self, idx: u32) {
        if let Some(o) = self.objects.get_mut(&idx) {
            let key = core::mem::replace(&mut o.perm_mut().key, IPC_PRIVATE);
            if key != IPC_PRIVATE {
                self.keys.remove(&key);
            }
        }
    }

    /// Takes the object out of the table (`ipc_rmid`).
    pub fn remove(&mut self, idx: u32) -> Option<T> {
        self.set_key_private(idx);
        let obj = self.objects.remove(&idx);
        if self.objects.is_empty() {
            // An emptied BTreeMap keeps its root node: an empty table holds no memory.
            self.objects = BTreeMap::new();
            self.keys = BTreeMap::new();
        }
        obj
    }
}

/// Linux's `struct ipc_namespace`: the SysV objects a set of processes sees, and their
/// limits (the knobs of /proc/sys/kernel). Processes hold it through their task
/// (`ipc_ns`, Linux's nsproxy); the last reference takes every object with it.
pub struct IpcNamespace {
    /// Its inode number in /proc/PID/ns/ipc (`ns.inum`: PROC_IPC_INIT_INO for the first,
    /// then numbers from PROC_DYNAMIC_FIRST).
    pub inum: u64,
    pub shm: SpinLock<shm::ShmIds, crate::sync::order::IpcShmIds>,
    pub shm_ctlmax: core::sync::atomic::AtomicU64,
    pub shm_ctlall: core::sync::atomic::AtomicU64,
    pub shm_ctlmni: core::sync::atomic::AtomicU64,
    pub shm_rmid_forced: core::sync::atomic::AtomicBool,
    pub sem: SpinLock<sem::SemIds, crate::sync::order::IpcSemIds>,
    /// `kernel.sem`: SEMMSL, SEMMNS, SEMOPM, SEMMNI.
    pub sem_ctls: [core::sync::atomic::AtomicU32; 4],
    pub msg: SpinLock<msg::MsgIds, crate::sync::order::IpcMsgIds>,
    /// `kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`.
    pub msg_ctls: [core::sync::atomic::AtomicU32; 3],
    _live: crate::leak::Live,
}

impl IpcNamespace {
    /// A namespace with no objects and the default limits (`create_ipc_ns`).
    pub fn new() -> Arc<IpcNamespace> {
        Self::with_inum(NEXT_INUM.fetch_add(1, core::sync::atomic::Ordering::Relaxed))
    }

    fn with_inum(inum: u64) -> Arc<IpcNamespace> {
        Arc::new(IpcNamespace {
            inum,
            shm: SpinLock::new(shm::ShmIds::default()),
            shm_ctlmax: shm::SHMMAX.into(),
            shm_ctlall: shm::SHMALL.into(),
            shm_ctlmni: (shm::SHMMNI as u64).into(),
            shm_rmid_forced: false.into(),
            sem: SpinLock::new(sem::SemIds::default()),
            sem_ctls: [sem::SEMMSL.into(), sem::SEMMNS.into(), sem::SEMOPM.into(), sem::SEMMNI.into()],
            msg: SpinLock::new(msg::MsgIds::default()),
            msg_ctls: [msg::MSGMAX.into(), msg::MSGMNB.into(), msg::MSGMNI.into()],
            _live: crate::leak::IPC_NAMESPACES.live(),
        })
    }

    /// `kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`.
    pub fn msg_limits(&self) -> [u32; 3] {
        core::array::from_fn(|i| self.msg_ctls[i].load(core::sync::atomic::Ordering::Relaxed))
    }

    /// `kernel.sem`'s four figures.
    pub fn sem_limits(&self) -> [u32; 4] {
        core::array::from_fn(|i| self.sem_ctls[i].load(core::sync::atomic::Ordering::Relaxed))
    }
}

impl Drop for IpcNamespace {
    /// `shm_exit_ns`: the namespace's segments go with it (attaches hold it alive).
    fn drop(&mut self) {
        let segments = core::mem::take(self.shm.get_mut());
        drop(segments);
        let sets = core::mem::take(self.sem.get_mut());
        drop(sets);
        let queues = core::mem::take(self.msg.get_mut());
        drop(queues);
    }
}

/// At shutdown, once every process is gone: removes what the first namespace still holds
/// (what the tests left behind, as files in /tmp), so that the leak check compares its
/// baseline with what remains elsewhere. Returns how many objects went.
pub fn remove_all_objects() -> usize {
    let ns = init_ipc_ns();
    // Bound, so that each table's lock is released before its objects are dropped.
    let segments = ns.shm.lock().destroy_where(|_| true);
    let sets = ns.sem.lock().destroy_where(|_| true);
    let queues = ns.msg.lock().destroy_where(|_| true);
    segments.len() + sets.len() + queues.len()
}

static INIT_IPC_NS: spin::Once<Arc<IpcNamespace>> = spin::Once::new();

/// Linux's PROC_IPC_INIT_INO, the first namespace's inode number.
const PROC_IPC_INIT_INO: u64 = 0xEFFF_FFFF;
/// The next namespace's inode number (Linux's `proc_alloc_inum` from PROC_DYNAMIC_FIRST).
static NEXT_INUM: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0xF000_0000);

/// The namespace of the first process (`init_ipc_ns`).
pub fn init_ipc_ns() -> Arc<IpcNamespace> {
    INIT_IPC_NS.call_once(|| IpcNamespace::with_inum(PROC_IPC_INIT_INO)).clone()
}

/// An open namespace file (`/proc/PID/ns/ipc` opened; Linux's nsfs inode): what setns
/// takes.
pub struct NsFile {
    pub ns: Arc<IpcNamespace>,
    _live: crate::leak::Live,
}

impl NsFile {
    pub fn open(ns: Arc<IpcNamespace>) -> Arc<crate::fs::file::File> {
        let path = alloc::format!("ipc:[{}]", ns.inum);
        let inode: Arc<dyn crate::fs::vfs::Inode> = Arc::new(NsFile { ns, _live: crate::leak::INODES.live() });
        crate::fs::file::File::new(crate::fs::file::FileKind::Inode(inode), crate::fs::file::O_RDONLY, path)
    }
}

/// nsfs's device (an anonymous one, as Linux's `0:4`).
const NSFS_DEV: u64 = 4;

impl crate::fs::vfs::Inode for NsFile {
    fn metadata(&self) -> crate::fs::vfs::Metadata {
        crate::fs::vfs::Metadata {
            dev: NSFS_DEV,
            ino: self.ns.inum,
            mode: crate::fs::vfs::S_IFREG | 0o444,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        }
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// `setns(2)` for an IPC namespace (Linux's `ipcns_install`): `nstype` 0 or CLONE_NEWIPC;
/// CAP_SYS_ADMIN. EINVAL for a file that is no namespace or of another type.
pub fn setns(file: &crate::fs::file::File, nstype: u64) -> KResult<()> {
    let ns = file.inode().and_then(|i| i.as_any().downcast_ref::<NsFile>()).ok_or(EINVAL)?;
    if nstype != 0 && nstype != crate::process::fork::CLONE_NEWIPC {
        return Err(EINVAL);
    }
    let t = crate::process::current();
    if !t.process.creds.lock().capable(crate::process::cred::CAP_SYS_ADMIN) {
        return Err(EPERM);
    }
    // The undo list refers to the old namespace's semaphores (`exit_sem`).
    sem::exit_sem(&t.process);
    let old = t.ipc_ns.lock().replace(ns.ns.clone());
    drop(old);
    Ok(())
}

/// The IPC namespace of the calling task.
pub fn current_ipc_ns() -> Arc<IpcNamespace> {
    task_ipc_ns(&crate::process::current())
}

/// A task's IPC namespace (the first one for a task that has exited: it makes no calls).
pub fn task_ipc_ns(t: &crate::process::task::Task) -> Arc<IpcNamespace> {
    t.ipc_ns.lock().clone().unwrap_or_else(init_ipc_ns)
}
