//! Extended attributes: the checks of Linux's fs/xattr.c (`xattr_permission`,
//! `vfs_getxattr`, `vfs_setxattr`, `vfs_listxattr`, `vfs_removexattr`) with the capability
//! rules of security/commoncap.c, and the in-memory store tmpfs keeps them in
//! (`simple_xattrs`), as Linux 6.1's shmem has them: the `security.` and `trusted.`
//! namespaces, and `system.posix_acl_*` names that no file has (ACLs are not built: reading
//! one is ENODATA as for a file without an ACL, setting one EOPNOTSUPP). 6.1's tmpfs has no
//! `user.` handler (6.6 adds one): EOPNOTSUPP. Inodes without a store (procfs, pipes,
//! devices) answer EOPNOTSUPP, and list nothing.

use crate::errno::*;
use crate::fs::namei::{MAY_READ, MAY_WRITE};
use crate::fs::vfs::Inode;
use crate::process::cred::{Creds, CAP_SYS_ADMIN};
use crate::sync::{order, SpinLock};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;
/// Longest name (without its NUL), and largest value and list (include/uapi/linux/limits.h).
pub const XATTR_NAME_MAX: usize = 255;
pub const XATTR_SIZE_MAX: usize = 65536;
pub const XATTR_LIST_MAX: usize = 65536;

const SECURITY: &str = "security.";
const SYSTEM: &str = "system.";
const TRUSTED: &str = "trusted.";
const USER: &str = "user.";
const POSIX_ACL_ACCESS: &str = "system.posix_acl_access";
const POSIX_ACL_DEFAULT: &str = "system.posix_acl_default";
/// File capabilities: exec does not apply them, so they cannot be set.
const SECURITY_CAPABILITY: &str = "security.capability";

/// A tmpfs inode's attributes by full name (Linux's `simple_xattrs`; 6.6 keeps them in a
/// tree ordered by name, and lists them in that order).
#[derive(Default)]
pub struct SimpleXattrs {
    map: SpinLock<BTreeMap<String, Vec<u8>>, order::SimpleXattrs>,
}

impl SimpleXattrs {
    pub fn new() -> SimpleXattrs {
        SimpleXattrs::default()
    }

    /// `simple_xattr_get`: the value's length; copied into `buf` unless it is empty.
    fn get(&self, name: &str, buf: &mut [u8]) -> KResult<usize> {
        let map = self.map.lock();
        let v = map.get(name).ok_or(ENODATA)?;
        if !buf.is_empty() {
            if buf.len() < v.len() {
                return Err(ERANGE);
            }
            buf[..v.len()].copy_from_slice(v);
        }
        Ok(v.len())
    }

    /// `simple_xattr_set`: `None` removes.
    fn set(&self, name: &str, value: Option<&[u8]>, flags: u32) -> KResult<()> {
        let new = match value {
            Some(v) => {
                let mut copy = Vec::new();
                crate::mm::fail::try_reserve(&mut copy, v.len())?;
                copy.extend_from_slice(v);
                Some(copy)
            }
            None => None,
        };
        let mut key = String::new();
        key.try_reserve(name.len()).map_err(|_| ENOMEM)?;
        key.push_str(name);
        let mut map = self.map.lock();
        let exists = map.contains_key(name);
        if exists && flags & XATTR_CREATE != 0 {
            return Err(EEXIST);
        }
        if !exists && flags & XATTR_REPLACE != 0 {
            return Err(ENODATA);
        }
        match new {
            Some(v) => {
                map.insert(key, v);
            }
            None => {
                map.remove(name).ok_or(ENODATA)?;
            }
        }
        Ok(())
    }

    /// `simple_xattr_list`: each name and its NUL; `trusted.` names only for CAP_SYS_ADMIN.
    fn list(&self, trusted: bool, out: &mut Vec<u8>) {
        for name in self.map.lock().keys() {
            if trusted || !name.starts_with(TRUSTED) {
                out.extend_from_slice(name.as_bytes());
                out.push(0);
            }
        }
    }
}

fn starts(name: &str, prefix: &str) -> bool {
    name.starts_with(prefix)
}

/// A POSIX ACL name on an inode that could hold one (the ACL handlers are exact names).
fn is_posix_acl(inode: &dyn Inode, name: &str) -> bool {
    inode.xattrs().is_some() && (name == POSIX_ACL_ACCESS || name == POSIX_ACL_DEFAULT)
}

fn is_symlink(inode: &dyn Inode) -> bool {
    inode.metadata().file_type() == crate::fs::vfs::S_IFLNK
}

/// `xattr_permission`: `security.` and `system.` are left to the security module,
/// `trusted.` needs CAP_SYS_ADMIN, `user.` only lives on files and directories (and a
/// sticky directory's only for its owner), and all but the first two need the inode's
/// permission.
fn xattr_permission(c: &Creds, inode: &dyn Inode, name: &str, mask: u32) -> KResult<()> {
    let denied = if mask & MAY_WRITE != 0 { EPERM } else { ENODATA };
    if starts(name, SECURITY) || starts(name, SYSTEM) {
        return Ok(());
    }
    if starts(name, TRUSTED) {
        return if c.capable(CAP_SYS_ADMIN) { Ok(()) } else { Err(denied) };
    }
    if starts(name, USER) {
        let m = inode.metadata();
        if !m.is_regular() && !m.is_dir() {
            return Err(denied);
        }
        if m.is_dir() && m.mode & 0o1000 != 0 && mask & MAY_WRITE != 0 && !super::namei::inode_owner_or_capable(c, &m) {
            return Err(EPERM);
        }
    }
    inode.permission(c, mask)
}

/// `cap_inode_setxattr`/`cap_inode_removexattr`: changing a `security.` attribute takes
/// CAP_SYS_ADMIN.
fn security_inode_setxattr(c: &Creds, name: &str) -> KResult<()> {
    if starts(name, SECURITY) && name != SECURITY_CAPABILITY && !c.capable(CAP_SYS_ADMIN) {
        return Err(EPERM);
    }
    Ok(())
}

/// The store that holds `name` on `inode` (`xattr_resolve_name`), or EOPNOTSUPP.
fn resolve<'a>(inode: &'a dyn Inode, name: &str) -> KResult<&'a SimpleXattrs> {
    let store = inode.xattrs().ok_or(ENOTSUP)?;
    if starts(name, SECURITY) || starts(name, TRUSTED) {
        // The handlers take the name after their prefix; an empty one has no handler.
        let suffix = name.split_once('.').map(|(_, s)| s).unwrap_or("");
        return if suffix.is_empty() { Err(EINVAL) } else { Ok(store) };
    }
    Err(ENOTSUP)
}

/// `vfs_getxattr`: the value's length, copied into `buf` unless `buf` is empty.
pub fn vfs_getxattr(c: &Creds, inode: &dyn Inode, name: &str, buf: &mut [u8]) -> KResult<usize> {
    xattr_permission(c, inode, name, MAY_READ)?;
    if is_posix_acl(inode, name) {
        // `posix_acl_xattr_get`: symbolic links have none; no other inode has an ACL.
        return Err(if is_symlink(inode) { ENOTSUP } else { ENODATA });
    }
    resolve(inode, name)?.get(name, buf)
}

/// `vfs_setxattr` (`value` None: `vfs_removexattr`).
pub fn vfs_setxattr(c: &Creds, inode: &dyn Inode, name: &str, value: Option<&[u8]>, flags: u32) -> KResult<()> {
    xattr_permission(c, inode, name, MAY_WRITE)?;
    security_inode_setxattr(c, name)?;
    if name == SECURITY_CAPABILITY && inode.xattrs().is_some() {
        crate::log_once!("setxattr: security.capability (file capabilities) is not supported");
        return Err(ENOTSUP);
    }
    if is_posix_acl(inode, name) {
        // `posix_acl_xattr_set` then `set_posix_acl`: removing the ACL no file has
        // succeeds for the owner; setting one is not built.
        if is_symlink(inode) {
            return Err(ENOTSUP);
        }
        if value.is_some() {
            crate::log_once!("setxattr: POSIX ACLs (system.posix_acl_*) are not supported");
            return Err(ENOTSUP);
        }
        let m = inode.metadata();
        if name == POSIX_ACL_DEFAULT && !m.is_dir() {
            return Ok(());
        }
        return if super::namei::inode_owner_or_capable(c, &m) { Ok(()) } else { Err(EPERM) };
    }
    let store = resolve(inode, name)?;
    // A removal is a set with no value and XATTR_REPLACE.
    let flags = if value.is_none() { XATTR_REPLACE } else { flags };
    store.set(name, value, flags)?;
    // Symbolic links keep fixed metadata: their ctime stays.
    let _ = inode.set_attr(&mut |m| m.ctime = crate::time::realtime());
    Ok(())
}

/// `vfs_listxattr`: the NUL-terminated names.
pub fn vfs_listxattr(c: &Creds, inode: &dyn Inode) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(store) = inode.xattrs() {
        store.list(c.capable(CAP_SYS_ADMIN), &mut out);
    }
    out
}

/// A name from user space as `strncpy_from_user` into `xattr_name` reads it: empty or
/// XATTR_NAME_MAX + 1 bytes or more is ERANGE.
pub fn check_name(raw: &[u8]) -> KResult<String> {
    if raw.is_empty() || raw.len() > XATTR_NAME_MAX {
        return Err(ERANGE);
    }
    // Names are bytes to Linux; ours must be UTF-8 to be stored, and no handler takes
    // another, so such a name is as unknown as any other.
    String::from_utf8(raw.to_vec()).map_err(|_| ENOTSUP)
}
