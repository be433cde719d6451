//! Files: the VFS interface, tmpfs (the root, unpacked from the initramfs),
//! devices, pipes, open files and descriptor tables.
#![deny(unsafe_code)]

pub mod devfs;
pub mod eventfd;
pub mod eventpoll;
pub mod fdtable;
pub mod file;
pub mod flock;
pub mod hugetlbfs;
pub mod mount;
pub mod msharefs;
pub mod namei;
pub mod path;
pub mod pipe;
pub mod proc_sysctl;
pub mod procfs;
pub mod select;
pub mod signalfd;
pub mod timerfd;
pub mod tmpfs;
pub mod vfs;
pub mod xattr;

use crate::errno::*;
use alloc::sync::Arc;
use spin::Once;
use vfs::Inode;

static ROOT: Once<Arc<dyn Inode>> = Once::new();

/// The root directory (tmpfs).
pub fn root() -> Arc<dyn Inode> {
    ROOT.get().expect("fs not initialized").clone()
}

/// Whether `path` names something in the root (symbolic links followed), as root sees it.
pub fn exists(path: &str) -> bool {
    let root = root();
    path::lookup_from(&crate::process::cred::Creds::root(), root.clone(), root, path.as_bytes(), true).is_ok()
}

pub fn root_weak() -> alloc::sync::Weak<dyn Inode> {
    Arc::downgrade(ROOT.get().expect("fs not initialized"))
}

/// Builds the root tmpfs from the initramfs, makes /tmp, and mounts /dev and /proc (in
/// the mount table, `mount.rs`).
pub fn init() -> KResult<()> {
    let root = tmpfs::TmpfsDir::new_root();
    ROOT.call_once(|| root.clone());
    if let Some(archive) = crate::initramfs::archive() {
        unpack_initramfs(&root, archive)?;
    }
    if root.lookup("tmp").is_err() {
        root.create("tmp", vfs::S_IFDIR | 0o1777, 0, 0)?;
    }
    mount::mount_boot(&root, "dev", "/dev", "devtmpfs", devfs::new(root.clone()))?;
    mount::mount_boot(&root, "proc", "/proc", "proc", procfs::new(&root))?;
    // msharefs at /sys/fs/mshare, with the default graft (512 GiB).
    let sys = match root.lookup("sys") {
        Ok(d) => d,
        Err(_) => root.create("sys", vfs::S_IFDIR | 0o555, 0, 0)?,
    };
    let sys_fs = match sys.lookup("fs") {
        Ok(d) => d,
        Err(_) => sys.create("fs", vfs::S_IFDIR | 0o755, 0, 0)?,
    };
    let mshare = msharefs::new_root(msharefs::MSHAREFS_DEV, "")?;
    msharefs::set_boot_root(mshare.clone());
    mount::mount_boot(&sys_fs, "mshare", "/sys/fs/mshare", "msharefs", mshare)?;
    Ok(())
}

fn unpack_initramfs(root: &Arc<dyn Inode>, archive: &[u8]) -> KResult<()> {
    let mut files = 0;
    let cred = crate::process::cred::Creds::root();
    for entry in cpio::Reader::new(archive) {
        let e = entry.map_err(|e| {
            log::error!("initramfs: {:?}", e);
            EINVAL
        })?;
        if e.name.is_empty() || e.name == "." {
            continue;
        }
        let (parent_path, name) = match e.name.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", e.name),
        };
        let parent = path::lookup_from(&cred, root.clone(), root.clone(), parent_path.as_bytes(), true)?;
        let kind = e.mode & cpio::S_IFMT;
        let node = match parent.lookup(name) {
            Ok(n) => n,
            Err(_) if kind == cpio::S_IFLNK => {
                parent.symlink(name, e.data)?;
                continue;
            }
            Err(_) => parent.create(name, e.mode, e.uid, e.gid)?,
        };
        if kind == cpio::S_IFREG {
            node.write_at(0, e.data)?;
            files += 1;
        }
    }
    log::info!("initramfs: {} files unpacked into tmpfs", files);
    Ok(())
}
