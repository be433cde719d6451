//! Extended-attribute system calls (Linux's fs/xattr.c, 6.1): `setxattr`, `getxattr`,
//! `listxattr`, `removexattr`, each by path (following a final symbolic link), by path
//! not following it (`l*`) and by descriptor (`f*`). The checks are in `fs/xattr.rs`.

use super::fs::{get_file, resolve_at, AT_FDCWD};
use super::{copy_from_user, copy_to_user, ok, read_path, Args, SysResult};
use crate::errno::*;
use crate::fs::file::O_PATH;
use crate::fs::vfs::Inode;
use crate::fs::xattr::*;
use crate::process::cred::Creds;
use crate::process::current;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// How the first argument names the inode.
#[derive(Clone, Copy)]
pub enum By {
    /// A path; `true` follows a final symbolic link.
    Path(bool),
    Fd,
}

fn cred() -> Creds {
    current().process.creds.lock().clone()
}

/// The inode the call is about: `user_path_at`, or `fdget` (an O_PATH descriptor is
/// EBADF). A descriptor with no inode (a pipe, an eventfd) gives None: it keeps no
/// attributes.
fn target(by: By, arg: u64) -> KResult<Option<Arc<dyn Inode>>> {
    match by {
        By::Path(follow) => Ok(Some(resolve_at(AT_FDCWD, &read_path(arg)?, follow)?)),
        By::Fd => {
            let f = get_file(arg as i32)?;
            if f.flags() & O_PATH != 0 {
                return Err(EBADF);
            }
            Ok(f.inode().cloned())
        }
    }
}

/// The name argument (`strncpy_from_user` into `struct xattr_name`).
fn read_name(va: u64) -> KResult<alloc::string::String> {
    let raw = crate::mm::usercopy::read_cstr(&crate::process::current_mm(), va, XATTR_NAME_MAX).map_err(|e| {
        if e == ENAMETOOLONG {
            ERANGE
        } else {
            e
        }
    })?;
    check_name(&raw)
}

fn zeroed(len: usize) -> KResult<Vec<u8>> {
    let mut v = Vec::new();
    crate::mm::fail::try_reserve(&mut v, len)?;
    v.resize(len, 0);
    Ok(v)
}

/// setxattr(name-of-inode, name, value, size, flags).
pub fn sys_setxattr(by: By, a: Args) -> SysResult {
    let inode = target(by, a.u(0))?;
    let flags = a.u32(4);
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(EINVAL);
    }
    let name = read_name(a.u(1))?;
    let size = a.usize(3);
    if size > XATTR_SIZE_MAX {
        return Err(E2BIG);
    }
    let mut value = zeroed(size)?;
    if size != 0 {
        copy_from_user(a.u(2), &mut value)?;
    }
    let inode = inode.ok_or(ENOTSUP)?;
    vfs_setxattr(&cred(), &*inode, &name, Some(&value), flags)?;
    ok(0)
}

/// getxattr(name-of-inode, name, value, size): the value's length; a size of 0 asks for
/// the length only.
pub fn sys_getxattr(by: By, a: Args) -> SysResult {
    let inode = target(by, a.u(0))?;
    let name = read_name(a.u(1))?;
    let size = a.usize(3).min(XATTR_SIZE_MAX);
    let mut buf = zeroed(size)?;
    let inode = inode.ok_or(ENOTSUP)?;
    match vfs_getxattr(&cred(), &*inode, &name, &mut buf) {
        Ok(n) => {
            if size != 0 {
                copy_to_user(a.u(2), &buf[..n])?;
            }
            ok(n)
        }
        Err(e) if e == ERANGE && a.usize(3) >= XATTR_SIZE_MAX => Err(E2BIG),
        Err(e) => Err(e),
    }
}

/// listxattr(name-of-inode, list, size): the names, each NUL-terminated; a size of 0 asks
/// for the length only.
pub fn sys_listxattr(by: By, a: Args) -> SysResult {
    let inode = target(by, a.u(0))?;
    let size = a.usize(2).min(XATTR_LIST_MAX);
    let names = match inode {
        Some(i) => vfs_listxattr(&cred(), &*i),
        None => Vec::new(),
    };
    if size != 0 {
        if names.len() > size {
            return Err(if a.usize(2) >= XATTR_LIST_MAX { E2BIG } else { ERANGE });
        }
        copy_to_user(a.u(1), &names)?;
    }
    ok(names.len())
}

/// removexattr(name-of-inode, name).
pub fn sys_removexattr(by: By, a: Args) -> SysResult {
    let inode = target(by, a.u(0))?;
    let name = read_name(a.u(1))?;
    let inode = inode.ok_or(ENOTSUP)?;
    vfs_setxattr(&cred(), &*inode, &name, None, 0)?;
    ok(0)
}
