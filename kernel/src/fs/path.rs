//! Path resolution (Linux's `path_lookupat`/`link_path_walk`): components,
//! `.` and `..` (which leaves a mount's root for its mountpoint's parent), symlinks (at most 40), magic links (`nd_jump_link`: /proc/PID/fd/N
//! lands on the open file's inode), trailing slashes, and search permission on every
//! directory passed through (`may_lookup`) for the given credentials.

use super::file::{file_inode, File};
use super::namei::may_lookup;
use super::vfs::Inode;
use crate::errno::*;
use crate::process::cred::Creds;
use alloc::sync::Arc;
use alloc::vec::Vec;

const MAX_SYMLINKS: usize = 40;
pub const PATH_MAX: usize = 4096;

fn as_str(b: &[u8]) -> KResult<&str> {
    core::str::from_utf8(b).map_err(|_| ENOENT)
}

/// Resolves `path` from `start` (or `root` when absolute). `follow` decides
/// whether a final symlink is followed.
pub fn lookup_from(
    cred: &Creds,
    root: Arc<dyn Inode>,
    start: Arc<dyn Inode>,
    path: &[u8],
    follow: bool,
) -> KResult<Arc<dyn Inode>> {
    lookup_jumping(cred, root, start, path, follow).map(|(inode, _)| inode)
}

/// `lookup_from`, also giving the open file whose magic link the walk ended on (open
/// makes a new open file of that one, with its path).
pub fn lookup_jumping(
    cred: &Creds,
    root: Arc<dyn Inode>,
    start: Arc<dyn Inode>,
    path: &[u8],
    follow: bool,
) -> KResult<(Arc<dyn Inode>, Option<Arc<File>>)> {
    let mut budget = MAX_SYMLINKS;
    let mut jumped = None;
    let inode = walk(cred, &root, start, path, follow, &mut budget, &mut jumped)?;
    Ok((inode, jumped))
}

fn walk(
    cred: &Creds,
    root: &Arc<dyn Inode>,
    start: Arc<dyn Inode>,
    path: &[u8],
    follow: bool,
    budget: &mut usize,
    jumped: &mut Option<Arc<File>>,
) -> KResult<Arc<dyn Inode>> {
    if path.len() >= PATH_MAX {
        return Err(ENAMETOOLONG);
    }
    let mut cur = if path.first() == Some(&b'/') { root.clone() } else { start };
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    let trailing_slash = path.len() > 1 && path.last() == Some(&b'/');
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        if !cur.metadata().is_dir() {
            return Err(ENOTDIR);
        }
        may_lookup(cred, &cur)?;
        if comp.len() > 255 {
            return Err(ENAMETOOLONG);
        }
        // `..` at the root stays at the root; from a mount's root it leads to the
        // mountpoint's parent (`follow_dotdot`).
        let next = if *comp == b".." && Arc::ptr_eq(&cur, root) {
            cur.clone()
        } else if let Some(up) = (*comp == b"..").then(|| super::mount::mountpoint_parent(&cur)).flatten() {
            up
        } else {
            cur.lookup(as_str(comp)?)?
        };
        *jumped = None;
        if next.metadata().file_type() == super::vfs::S_IFLNK && (!last || follow || trailing_slash) {
            if *budget == 0 {
                return Err(ELOOP);
            }
            *budget -= 1;
            if let Some(file) = next.jump_link() {
                let file = file?;
                cur = file_inode(&*file);
                *jumped = Some(file);
            } else {
                let target = next.readlink()?;
                cur = walk(cred, root, cur, &target, true, budget, jumped)?;
            }
        } else {
            cur = next;
        }
    }
    if trailing_slash && !cur.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    Ok(cur)
}

/// Splits `path` into its parent directory (resolved) and final component.
/// A path ending in `/`, `.` or `..`, or the root itself, has no final name.
/// The parent must be searchable, as for any component looked up in it.
pub fn lookup_parent(
    cred: &Creds,
    root: Arc<dyn Inode>,
    start: Arc<dyn Inode>,
    path: &[u8],
) -> KResult<(Arc<dyn Inode>, alloc::string::String)> {
    if path.is_empty() {
        return Err(ENOENT);
    }
    let trimmed = {
        let mut p = path;
        while p.len() > 1 && p.last() == Some(&b'/') {
            p = &p[..p.len() - 1];
        }
        p
    };
    let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (&trimmed[..1], &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let parent = if dir.is_empty() { start } else { lookup_from(cred, root.clone(), start, dir, true)? };
    if !parent.metadata().is_dir() {
        return Err(ENOTDIR);
    }
    if !name.is_empty() {
        may_lookup(cred, &parent)?;
    }
    let name = as_str(name)?;
    if name.len() > 255 {
        return Err(ENAMETOOLONG);
    }
    Ok((parent, alloc::string::String::from(name)))
}
