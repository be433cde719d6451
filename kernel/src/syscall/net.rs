//! Socket system calls (Linux's net/socket.c). No address family is built yet: `socket`
//! and `socketpair` check their arguments as `__sys_socket` and `__sock_create` do, then
//! give EAFNOSUPPORT, as a Linux built without the family does (musl's and glibc's
//! lookups through nscd or a Unix socket take that as "no such service"). The calls on a
//! socket descriptor find none: EBADF for a descriptor that is not open, ENOTSOCK for
//! any other (`sockfd_lookup_light`).

use super::fs::get_file;
use super::{Args, SysResult};
use crate::errno::*;

/// Families below this exist in Linux's numbering (`NPROTO`, AF_MAX).
const NPROTO: i32 = 46;
/// Socket types below this exist (`SOCK_MAX`); the rest of `type` is flags.
const SOCK_MAX: i32 = 11;
const SOCK_TYPE_MASK: i32 = 0xf;
const SOCK_CLOEXEC: i32 = 0o2000000;
const SOCK_NONBLOCK: i32 = 0o4000;

/// The checks `socket` and `socketpair` share, then the family lookup.
fn sock_create(family: i32, ty: i32) -> SysResult {
    if ty & !SOCK_TYPE_MASK & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    if !(0..NPROTO).contains(&family) {
        return Err(EAFNOSUPPORT);
    }
    if ty & SOCK_TYPE_MASK >= SOCK_MAX {
        return Err(EINVAL);
    }
    // `net_families[family]` is empty for every family.
    Err(EAFNOSUPPORT)
}

/// socket(family, type, protocol).
pub fn sys_socket(a: Args) -> SysResult {
    sock_create(a.i32(0), a.i32(1))
}

/// socketpair(family, type, protocol, sv). Linux reserves the two descriptors and stores
/// them in `sv` before it looks the family up; with no family to find, the same errno
/// comes back without them.
pub fn sys_socketpair(a: Args) -> SysResult {
    sock_create(a.i32(0), a.i32(1))
}

/// A call whose first argument is a socket descriptor: there are none yet.
pub fn sys_on_socket(a: Args) -> SysResult {
    get_file(a.i32(0))?;
    Err(ENOTSOCK)
}

/// accept4(fd, addr, addrlen, flags): the flags are checked once the descriptor is found,
/// before it is known to be a socket (`__sys_accept4_file`).
pub fn sys_accept4(a: Args) -> SysResult {
    get_file(a.i32(0))?;
    if a.i32(3) & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    Err(ENOTSOCK)
}
