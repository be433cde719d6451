//! Mounts (Linux's fs/namespace.c, with fs/filesystems.c's registry of filesystem types):
//! the mount table, mount(2)'s new mounts and umount2(2).
//!
//! A mount covers a directory by taking its place: the covered directory's entry in its
//! parent (the mountpoint) is swapped for the mounted root (`Inode::replace_entry`), and
//! umount swaps the covered inode back. Linux keeps the covered dentry and finds the mount
//! on it in a hash at every step of a walk; here the walk meets the mounted root in the
//! parent's entries at no cost, and only `..` from a mount's root asks the table
//! (`mountpoint_parent`). A task whose working directory is inside the covered directory
//! keeps it, as on Linux.
//!
//! One mount namespace, no propagation (every mount is private), no bind, move, remount or
//! read-only mounts (refused with EINVAL and logged once). A busy mount (EBUSY) is one
//! with a task's working directory or an open descriptor in it, or another mount on a
//! directory of it; a file only mapped (its descriptor closed) is not seen. An instance
//! nothing uses goes with its umount (`Inode::kill_sb`: tmpfs empties its tree a directory
//! at a time); one that MNT_DETACH took off while busy goes with its last user, its tree
//! dropped recursively. MNT_EXPIRE marks the first time (EAGAIN) and unmounts the second,
//! with no walk clearing the mark.
//!
//! Each filesystem instance must give its inodes a device (`st_dev`) of its own: the busy
//! check and the table's submounts go by it.
//!
//! Lock order: `NAMESPACE_SEM` (one mount or umount at a time, Linux's `namespace_sem`) is
//! outside the tmpfs locks of the entry swap and the task and fd-table locks of the busy
//! check; the table itself (`MOUNTS`) is a leaf, taken under tmpfs's (rmdir and rename
//! refuse a mountpoint) and never held across an inode's method.

use super::vfs::Inode;
use crate::errno::*;
use crate::sync::order;
use crate::sync::SpinLock;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// A filesystem type (Linux's `file_system_type`): its name for mount(2), and how to make
/// an instance from mount's data (the option string): its root directory.
pub struct FileSystemType {
    pub name: &'static str,
    pub fill_super: fn(&str) -> KResult<Arc<dyn Inode>>,
}

/// The types mount(2) knows (`register_filesystem`), one line each.
static FILESYSTEMS: &[FileSystemType] = &[
    FileSystemType { name: "tmpfs", fill_super: super::tmpfs::fill_super },
    FileSystemType { name: msharefs::MSHAREFS_NAME, fill_super: super::msharefs::fill_super },
];

/// `get_fs_type`: the type named `name`, or by the part before a dot ("tmpfs.sub").
fn get_fs_type(name: &str) -> Option<&'static FileSystemType> {
    let base = name.split_once('.').map_or(name, |(b, _)| b);
    FILESYSTEMS.iter().find(|t| t.name == base)
}

pub const MS_RDONLY: u64 = 1;
pub const MS_NOSUID: u64 = 2;
pub const MS_NODEV: u64 = 4;
pub const MS_NOEXEC: u64 = 8;
pub const MS_REMOUNT: u64 = 32;
pub const MS_NOSYMFOLLOW: u64 = 256;
pub const MS_NOATIME: u64 = 1024;
pub const MS_NODIRATIME: u64 = 2048;
pub const MS_BIND: u64 = 4096;
pub const MS_MOVE: u64 = 8192;
pub const MS_REC: u64 = 16384;
pub const MS_SILENT: u64 = 32768;
pub const MS_UNBINDABLE: u64 = 1 << 17;
pub const MS_PRIVATE: u64 = 1 << 18;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_SHARED: u64 = 1 << 20;
pub const MS_STRICTATIME: u64 = 1 << 24;
pub const MS_NOUSER: u64 = 1 << 31;
const MS_MGC_VAL: u64 = 0xc0ed_0000;
const MS_MGC_MSK: u64 = 0xffff_0000;

pub const MNT_FORCE: u32 = 1;
pub const MNT_DETACH: u32 = 2;
pub const MNT_EXPIRE: u32 = 4;
pub const UMOUNT_NOFOLLOW: u32 = 8;

/// One mount (Linux's `struct mount` with its mountpoint).
pub struct Mount {
    /// The mount ID /proc/PID/mountinfo shows (`mnt_id`; the root's is 1).
    id: u32,
    /// The directory holding the mountpoint, and the mountpoint's name in it.
    parent: Arc<dyn Inode>,
    name: String,
    /// What the entry held before: put back by umount.
    covered: Arc<dyn Inode>,
    root: Arc<dyn Inode>,
    /// The device of the mounted instance's inodes.
    dev: u64,
    fstype: &'static str,
    source: String,
    /// The mountpoint's path when mounted, for /proc/mounts.
    path: String,
    /// The MS_* flags kept per mount (atime ones).
    flags: u64,
    /// The filesystem's options for /proc/mounts, each after a comma.
    options: String,
    /// Made at boot (/dev, /proc): outside the leak check's cleanup.
    boot: bool,
    /// MNT_EXPIRE's mark (`mnt_expiry_mark`).
    expiry_mark: AtomicBool,
}

static NAMESPACE_SEM: SpinLock<(), order::MountNamespace> = SpinLock::new(());
static MOUNTS: SpinLock<Vec<Arc<Mount>>, order::Mounts> = SpinLock::new(Vec::new());
/// The next mount ID; 1 is the root's.
static NEXT_MNT_ID: AtomicU32 = AtomicU32::new(2);

fn mnt_alloc_id() -> u32 {
    NEXT_MNT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The newest mount whose root is `inode`.
fn mount_of_root(inode: &Arc<dyn Inode>) -> Option<Arc<Mount>> {
    MOUNTS.lock().iter().rev().find(|m| Arc::ptr_eq(&m.root, inode)).cloned()
}

/// Whether `inode` is a mounted root, in the place of a mountpoint (rmdir and rename refuse it).
pub fn is_mount_root(inode: &Arc<dyn Inode>) -> bool {
    MOUNTS.lock().iter().any(|m| Arc::ptr_eq(&m.root, inode))
}

/// Where `..` leads from a mount's root (Linux's `follow_dotdot` crossing to the
/// mountpoint's parent); None if `inode` is no mount's root.
pub fn mountpoint_parent(inode: &Arc<dyn Inode>) -> Option<Arc<dyn Inode>> {
    mount_of_root(inode).map(|m| m.parent.clone())
}

/// A mount made at boot: `root` of type `fstype` at `name` in `parent` (an empty
/// directory made there first if nothing is, so that umount has one to put back).
pub fn mount_boot(
    parent: &Arc<dyn Inode>,
    name: &str,
    path: &str,
    fstype: &'static str,
    root: Arc<dyn Inode>,
) -> KResult<()> {
    let covered = match parent.lookup(name) {
        Ok(c) => c,
        Err(_) => parent.create(name, super::vfs::S_IFDIR | 0o755, 0, 0)?,
    };
    let m = Mount {
        id: mnt_alloc_id(),
        parent: parent.clone(),
        name: String::from(name),
        covered: covered.clone(),
        dev: root.metadata().dev,
        root: root.clone(),
        fstype,
        source: String::from(fstype),
        path: String::from(path),
        flags: MS_STRICTATIME,
        options: String::new(),
        boot: true,
        expiry_mark: AtomicBool::new(false),
    };
    let _ns = NAMESPACE_SEM.lock();
    MOUNTS.lock().push(Arc::new(m));
    parent.replace_entry(name, &covered, root)
}

/// The entry `target` has in its parent: (parent, name). A mount's root stands where its
/// mountpoint was (mounting on it stacks); any other directory is found among its
/// parent's entries.
fn mountpoint_of(target: &Arc<dyn Inode>) -> KResult<(Arc<dyn Inode>, String)> {
    if let Some(m) = mount_of_root(target) {
        return Ok((m.parent.clone(), m.name.clone()));
    }
    let parent = target.lookup("..")?;
    if !Arc::ptr_eq(&parent, target) {
        for e in parent.readdir()? {
            if e.name != "." && e.name != ".." && parent.lookup(&e.name).is_ok_and(|n| Arc::ptr_eq(&n, target)) {
                return Ok((parent, e.name));
            }
        }
    }
    crate::log_once!("mount: only a directory with a name in a tmpfs directory can be a mountpoint (not /)");
    Err(EINVAL)
}

/// What mount(2) asks for, its strings copied in and its target looked up.
pub struct MountRequest {
    pub source: Option<String>,
    pub target: Arc<dyn Inode>,
    /// The target's path (normalized), for /proc/mounts.
    pub target_path: String,
    pub fstype: Option<String>,
    pub flags: u64,
    pub data: Option<String>,
}

/// Linux's `path_mount` (after `do_mount` copied the strings and looked the target up):
/// MS_NOUSER is EINVAL, then the caller needs CAP_SYS_ADMIN (EPERM); then a new mount
/// (`do_new_mount`): no type is EINVAL, an unknown one ENODEV, the type's options
/// decide (EINVAL), and the target must be a directory (ENOTDIR). MS_PRIVATE on a mount's
/// root is what every mount already is; remount, bind, move, the other propagation
/// types and the per-mount flags that would restrict access are not done (EINVAL).
pub fn path_mount(cred: &crate::process::cred::Creds, req: MountRequest) -> KResult<()> {
    let mut flags = req.flags;
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    if flags & MS_NOUSER != 0 {
        return Err(EINVAL);
    }
    if !cred.capable(crate::process::cred::CAP_SYS_ADMIN) {
        return Err(EPERM);
    }
    if flags & (MS_REMOUNT | MS_BIND) != 0 {
        crate::log_once!("mount: MS_REMOUNT and MS_BIND are not supported");
        return Err(EINVAL);
    }
    let propagation = flags & (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE);
    if propagation != 0 {
        // do_change_type: a mount's root, one type (with MS_REC, MS_SILENT) only.
        let is_root = Arc::ptr_eq(&req.target, &super::root()) || is_mount_root(&req.target);
        if !is_root || !propagation.is_power_of_two() || flags & !(propagation | MS_REC | MS_SILENT) != 0 {
            return Err(EINVAL);
        }
        if propagation != MS_PRIVATE {
            crate::log_once!("mount: shared, slave and unbindable mounts are not supported");
            return Err(EINVAL);
        }
        return Ok(());
    }
    if flags & MS_MOVE != 0 {
        crate::log_once!("mount: MS_MOVE is not supported");
        return Err(EINVAL);
    }
    let fstype = req.fstype.as_deref().ok_or(EINVAL)?;
    let fs = get_fs_type(fstype).ok_or(ENODEV)?;
    if flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW) != 0 {
        crate::log_once!("mount: MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC and MS_NOSYMFOLLOW are not supported");
        return Err(EINVAL);
    }
    let data = req.data.unwrap_or_default();
    let root = (fs.fill_super)(&data)?;
    if !req.target.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    let (parent, name) = mountpoint_of(&req.target)?;
    let m = Arc::new(Mount {
        id: mnt_alloc_id(),
        parent: parent.clone(),
        name: name.clone(),
        covered: req.target.clone(),
        dev: root.metadata().dev,
        root: root.clone(),
        fstype: fs.name,
        source: req.source.unwrap_or_else(|| String::from("none")),
        path: req.target_path,
        flags: flags & (MS_NOATIME | MS_NODIRATIME | MS_STRICTATIME),
        options: root.show_options().unwrap_or_else(|| if data.is_empty() { data.clone() } else { format!(",{data}") }),
        boot: false,
        expiry_mark: AtomicBool::new(false),
    });
    let _ns = NAMESPACE_SEM.lock();
    // In the table before the swap, so that an rmdir racing with it either removes the
    // covered directory first (the swap then fails) or finds a mountpoint.
    MOUNTS.lock().push(m.clone());
    let swapped = parent.replace_entry(&name, &req.target, root);
    if swapped.is_err() {
        MOUNTS.lock().retain(|x| !Arc::ptr_eq(x, &m));
    }
    swapped
}

/// Whether anything holds mount `m` (`propagate_mount_busy`'s reference count, seen from
/// what holds the references): another mount on a directory of it, a task's working
/// directory in it, or an open descriptor of a file in it.
fn busy(m: &Mount, mounts: &[Arc<Mount>]) -> bool {
    if mounts.iter().any(|o| !Arc::ptr_eq(&o.root, &m.root) && o.parent.metadata().dev == m.dev) {
        return true;
    }
    let tasks: Vec<_> =
        crate::process::task::TABLES.lock().tasks.values().filter_map(alloc::sync::Weak::upgrade).collect();
    tasks.iter().any(|t| {
        let cwd = t.fs().lock().cwd.clone();
        // The inodes are looked at after the fd table's lock is dropped: a tmpfs
        // directory's metadata lock is outside it.
        let open: Vec<Arc<dyn Inode>> = t.files().lock().iter().filter_map(|f| f.inode().cloned()).collect();
        cwd.metadata().dev == m.dev || open.iter().any(|i| i.metadata().dev == m.dev)
    })
}

/// Takes mount `m` off its mountpoint, putting the covered directory back; the instance's
/// tree goes with it if it is `unused`.
fn umount_one(m: &Arc<Mount>, unused: bool) {
    if m.parent.replace_entry(&m.name, &m.root, m.covered.clone()).is_err() {
        log::warn!("umount: {} no longer holds the mount's root", m.path);
    }
    // Taken out under the lock, dropped after it: no inode goes (and takes its own locks)
    // under the table's.
    let mut mounts = MOUNTS.lock();
    let taken = mounts.iter().position(|x| Arc::ptr_eq(x, m)).map(|i| mounts.remove(i));
    drop(mounts);
    drop(taken);
    if unused {
        m.root.kill_sb();
    }
}

/// Linux's `path_umount` (`can_umount`, `do_umount`) once ksys_umount checked the flags
/// and looked `target` up: the caller needs CAP_SYS_ADMIN (EPERM); `target` must be a
/// mount's root (EINVAL; / is always busy); MNT_EXPIRE with MNT_FORCE or MNT_DETACH is
/// EINVAL, on a busy mount EBUSY, and the first time EAGAIN; a busy mount is EBUSY
/// unless MNT_DETACH, which takes it and every mount inside it off at once (their files
/// stay usable through the descriptors that hold them).
pub fn path_umount(cred: &crate::process::cred::Creds, target: &Arc<dyn Inode>, flags: u32) -> KResult<()> {
    if !cred.capable(crate::process::cred::CAP_SYS_ADMIN) {
        return Err(EPERM);
    }
    let _ns = NAMESPACE_SEM.lock();
    let mounts: Vec<Arc<Mount>> = MOUNTS.lock().clone();
    let Some(m) = mounts.iter().rev().find(|m| Arc::ptr_eq(&m.root, target)).cloned() else {
        return Err(if Arc::ptr_eq(target, &super::root()) { EBUSY } else { EINVAL });
    };
    if flags & MNT_EXPIRE != 0 {
        if flags & (MNT_FORCE | MNT_DETACH) != 0 {
            return Err(EINVAL);
        }
        if busy(&m, &mounts) {
            return Err(EBUSY);
        }
        if !m.expiry_mark.swap(true, Ordering::Relaxed) {
            return Err(EAGAIN);
        }
    }
    if flags & MNT_DETACH == 0 {
        if busy(&m, &mounts) {
            return Err(EBUSY);
        }
        umount_one(&m, true);
        return Ok(());
    }
    let unused = !busy(&m, &mounts);
    // umount_tree: the mount and, newest first, every mount under it.
    let mut doomed = alloc::vec![m];
    for o in mounts.iter() {
        if doomed.iter().any(|d| d.dev == o.parent.metadata().dev) && !doomed.iter().any(|d| Arc::ptr_eq(d, o)) {
            doomed.push(o.clone());
        }
    }
    for d in doomed.iter().rev() {
        umount_one(d, unused);
    }
    Ok(())
}

/// Takes off every mount made after boot, newest first: at power-off, before the leak
/// check removes the files the tests left (init's /tmp and /dev/shm, and a test's that died
/// before its umount). Returns how many there were.
pub fn umount_all_since_boot() -> usize {
    let _ns = NAMESPACE_SEM.lock();
    let made: Vec<Arc<Mount>> = MOUNTS.lock().iter().filter(|m| !m.boot).cloned().collect();
    for m in made.iter().rev() {
        umount_one(m, true);
    }
    made.len()
}

/// Gives back the table's room beyond its mounts (a leak-check shrinker).
pub fn shrink() {
    MOUNTS.lock().shrink_to_fit();
}

impl Mount {
    /// The per-mount options (`show_mnt_opts`): rw and the atime flags.
    fn mnt_opts(&self) -> String {
        let mut opts = String::from("rw");
        if !self.boot {
            if self.flags & MS_NOATIME != 0 {
                opts.push_str(",noatime");
            } else if self.flags & MS_STRICTATIME == 0 {
                opts.push_str(",relatime");
            }
            if self.flags & MS_NODIRATIME != 0 {
                opts.push_str(",nodiratime");
            }
        }
        opts
    }
}

/// /proc/mounts (Linux's `show_vfsmnt`): the root, then a line per mount in mount order,
/// source, path, type, options, with white space and backslashes escaped in octal.
pub fn proc_mounts() -> String {
    let mut s = String::from("tmpfs / tmpfs rw 0 0\n");
    for m in MOUNTS.lock().iter() {
        let opts = format!("{}{}", m.mnt_opts(), m.options);
        s.push_str(&format!("{} {} {} {} 0 0\n", mangle(&m.source), mangle(&m.path), m.fstype, mangle(&opts)));
    }
    s
}

/// `MAJOR:MINOR` of a device number as stat gives it (`new_encode_dev`).
pub(crate) fn major_minor(dev: u64) -> (u64, u64) {
    ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

/// /proc/PID/mountinfo (Linux's `show_mountinfo`): per mount its ID, its parent's, the
/// device, the root within its filesystem, the mountpoint, the per-mount options, no
/// propagation tags (every mount is private), then `-`, the type, the source and the
/// superblock's options. The root mount is ID 1 and its own parent.
pub fn proc_mountinfo() -> String {
    let root_dev = super::root().metadata().dev;
    let (maj, min) = major_minor(root_dev);
    let mut s = format!("1 1 {maj}:{min} / / rw - tmpfs tmpfs rw\n");
    // Out of the table's lock: no inode method runs under it.
    let mounts: Vec<Arc<Mount>> = MOUNTS.lock().clone();
    for m in mounts.iter() {
        let parent_dev = m.parent.metadata().dev;
        // The mount holding the mountpoint: the newest one whose filesystem it is in.
        let parent = mounts.iter().rev().find(|p| p.dev == parent_dev && !Arc::ptr_eq(p, m)).map_or(1, |p| p.id);
        let (maj, min) = major_minor(m.dev);
        s.push_str(&format!(
            "{} {} {}:{} / {} {} - {} {} {}\n",
            m.id,
            parent,
            maj,
            min,
            mangle(&m.path),
            m.mnt_opts(),
            m.fstype,
            mangle(&m.source),
            mangle(&format!("rw{}", m.options))
        ));
    }
    s
}

/// seq_file's `mangle`: space, tab, newline and backslash as `\ooo`.
fn mangle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
