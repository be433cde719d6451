//! Socket system calls (Linux's net/socket.c, net/core/sock.c's options, net/core/scm.c's
//! control messages) over the one family built, AF_UNIX (`net/unix.rs`). Other families
//! give EAFNOSUPPORT, as a Linux built without them does.

use super::fs::{get_file, install};
use super::{copy_from_user, copy_to_user, ok, read_val, uoff, write_val, Args, SysResult};
use crate::errno::*;
use crate::fs::file::{File, FileKind, O_NONBLOCK, O_RDWR};
use crate::net::unix::{self, Scm, Ucred, UnixName, UnixSocket};
use crate::process::current;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Families below this exist in Linux's numbering (`NPROTO`, AF_MAX).
const NPROTO: i32 = 46;
/// Socket types below this exist (`SOCK_MAX`); the rest of `type` is flags.
const SOCK_MAX: i32 = 11;
const SOCK_TYPE_MASK: i32 = 0xf;
const SOCK_CLOEXEC: i32 = 0o2000000;
const SOCK_NONBLOCK: i32 = 0o4000;
const AF_UNSPEC: u16 = 0;
const AF_UNIX: i32 = 1;
/// `sizeof(struct sockaddr_un)` and the offset of `sun_path`.
const SOCKADDR_UN_LEN: usize = 110;
const SUN_PATH: usize = 2;
/// `sizeof(struct sockaddr_storage)`: move_addr_to_kernel's bound.
const SOCKADDR_STORAGE: usize = 128;

const MSG_OOB: i32 = 1;
const MSG_PEEK: i32 = 2;
const MSG_CTRUNC: i32 = 8;
const MSG_TRUNC: i32 = 0x20;
const MSG_DONTWAIT: i32 = 0x40;
const MSG_WAITALL: i32 = 0x100;
const MSG_NOSIGNAL: i32 = 0x4000;
const MSG_CMSG_CLOEXEC: i32 = 0x4000_0000;

const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// `net.core.optmem_max`: a control buffer larger than this is ENOBUFS.
const OPTMEM_MAX: usize = 20480;

const SO_DEBUG: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_DONTROUTE: i32 = 5;
const SO_BROADCAST: i32 = 6;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_KEEPALIVE: i32 = 9;
const SO_OOBINLINE: i32 = 10;
const SO_PASSCRED: i32 = 16;
const SO_PEERCRED: i32 = 17;
const SO_ACCEPTCONN: i32 = 30;
const SO_SNDBUFFORCE: i32 = 32;
const SO_RCVBUFFORCE: i32 = 33;
const SO_RCVTIMEO_OLD: i32 = 20;
const SO_SNDTIMEO_OLD: i32 = 21;
const SO_RCVTIMEO_NEW: i32 = 66;
const SO_SNDTIMEO_NEW: i32 = 67;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;

/// The flags a socket type may carry (checked before anything else).
fn check_type_flags(ty: i32) -> KResult<()> {
    if ty & !SOCK_TYPE_MASK & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// A socket type and its flags, as socket and socketpair check them (`__sys_socket`,
/// `__sock_create`, `unix_create`).
fn sock_type(family: i32, ty: i32, protocol: i32) -> KResult<(i32, u32)> {
    check_type_flags(ty)?;
    if !(0..NPROTO).contains(&family) {
        return Err(EAFNOSUPPORT);
    }
    let kind = ty & SOCK_TYPE_MASK;
    if kind >= SOCK_MAX {
        return Err(EINVAL);
    }
    if family != AF_UNIX {
        return Err(EAFNOSUPPORT);
    }
    if protocol != 0 && protocol != AF_UNIX {
        return Err(EPROTONOSUPPORT);
    }
    match kind {
        unix::SOCK_STREAM | unix::SOCK_DGRAM | unix::SOCK_SEQPACKET => {}
        // SOCK_RAW is SOCK_DGRAM for AF_UNIX.
        3 => return Ok((unix::SOCK_DGRAM, ty as u32)),
        _ => return Err(ESOCKTNOSUPPORT),
    }
    Ok((kind, ty as u32))
}

/// An open file for `sock`, installed.
fn install_socket(sock: Arc<UnixSocket>, flags: u32) -> KResult<usize> {
    let f = socket_file(sock, flags);
    install(f, flags & SOCK_CLOEXEC as u32 != 0)
}

fn socket_file(sock: Arc<UnixSocket>, flags: u32) -> Arc<File> {
    let nonblock = if flags & SOCK_NONBLOCK as u32 != 0 { O_NONBLOCK } else { 0 };
    let path = alloc::format!("socket:[{}]", sock.ino);
    let f = File::new(FileKind::Socket(sock.clone()), O_RDWR | nonblock, path);
    sock.set_file(&f);
    f
}

/// socket(family, type, protocol).
pub fn sys_socket(a: Args) -> SysResult {
    let (kind, flags) = sock_type(a.i32(0), a.i32(1), a.i32(2))?;
    crate::mm::fail::slab_may_fail()?;
    ok(install_socket(UnixSocket::new(kind), flags)?)
}

/// socketpair(family, type, protocol, sv): two connected sockets (`unix_socketpair`);
/// AF_UNIX is the only family with pairs.
pub fn sys_socketpair(a: Args) -> SysResult {
    let ty = a.i32(1);
    check_type_flags(ty)?;
    // `__sys_socketpair` reserves the two descriptors and stores them in `sv` before it
    // creates the sockets: a family or type that then fails leaves the numbers written.
    let (lo, hi) = {
        let files = current().files();
        let t = files.lock();
        let lo = t.lowest_free(0);
        (lo, t.lowest_free(lo + 1))
    };
    if hi >= super::fs::nofile_limit() {
        return Err(EMFILE);
    }
    write_val(a.u(3), &[lo as i32, hi as i32])?;
    let (kind, flags) = sock_type(a.i32(0), ty, a.i32(2))?;
    crate::mm::fail::slab_may_fail()?;
    let (x, y) = UnixSocket::pair(kind);
    let (fx, fy) = (socket_file(x, flags), socket_file(y, flags));
    let cloexec = flags & SOCK_CLOEXEC as u32 != 0;
    let a0 = install(fx, cloexec)?;
    let a1 = match install(fy, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = super::fs::close_fd(a0 as i32);
            return Err(e);
        }
    };
    if let Err(e) = write_val(a.u(3), &[a0 as i32, a1 as i32]) {
        let _ = super::fs::close_fd(a0 as i32);
        let _ = super::fs::close_fd(a1 as i32);
        return Err(e);
    }
    ok(0)
}

/// The socket behind descriptor `fd`: EBADF, or ENOTSOCK for another file.
fn socket_of(fd: i32) -> KResult<(Arc<File>, Arc<UnixSocket>)> {
    let f = get_file(fd)?;
    let s = match &f.kind {
        FileKind::Socket(s) => s.clone(),
        _ => return Err(ENOTSOCK),
    };
    Ok((f, s))
}

/// An address as a call gives it.
enum Addr {
    /// Just the family (autobind for bind).
    Unnamed,
    Abstract(Vec<u8>),
    Path(Vec<u8>),
}

/// `move_addr_to_kernel` and `unix_validate_addr`/`unix_mkname`.
fn read_addr(va: u64, len: i32) -> KResult<Addr> {
    let len = usize::try_from(len).map_err(|_| EINVAL)?;
    if len > SOCKADDR_STORAGE {
        return Err(EINVAL);
    }
    let mut buf = [0u8; SOCKADDR_STORAGE];
    copy_from_user(va, &mut buf[..len])?;
    if !(SUN_PATH..=SOCKADDR_UN_LEN).contains(&len) || u16::from_ne_bytes([buf[0], buf[1]]) != AF_UNIX as u16 {
        return Err(EINVAL);
    }
    let path = &buf[SUN_PATH..len];
    Ok(match path.first() {
        None => Addr::Unnamed,
        Some(0) => Addr::Abstract(path[1..].to_vec()),
        Some(_) => Addr::Path(path.iter().take_while(|&&b| b != 0).copied().collect()),
    })
}

/// `unix_find_other`: the socket an address names. A path needs write permission on its
/// socket inode; one that is not a socket, or that no socket is bound to, refuses.
fn find_other(addr: &Addr, ty: i32) -> KResult<Arc<UnixSocket>> {
    match addr {
        Addr::Unnamed => Err(EINVAL),
        Addr::Abstract(n) => UnixSocket::find_abstract(ty, n).ok_or(ECONNREFUSED),
        Addr::Path(p) => {
            let cred = current().process.creds.lock().clone();
            let inode = super::fs::resolve_at_as(&cred, super::fs::AT_FDCWD, p, true)?;
            crate::fs::namei::inode_permission(&cred, &inode, crate::fs::namei::MAY_WRITE)?;
            if inode.metadata().file_type() != crate::fs::vfs::S_IFSOCK {
                return Err(ECONNREFUSED);
            }
            UnixSocket::find_by_inode(&inode).ok_or(ECONNREFUSED)
        }
    }
}

/// `move_addr_to_user`: the name (None: unnamed, just the family) into `va`, its length
/// into `len_va`, as much of it as the caller's length allows.
fn write_addr(name: Option<&UnixName>, va: u64, len_va: u64) -> KResult<()> {
    if va == 0 {
        return Ok(());
    }
    let room: i32 = read_val(len_va)?;
    if room < 0 {
        return Err(EINVAL);
    }
    let mut bytes = (AF_UNIX as u16).to_ne_bytes().to_vec();
    if let Some(n) = name {
        bytes.extend(n.sun_path());
    }
    let n = bytes.len().min(room as usize);
    copy_to_user(va, &bytes[..n])?;
    write_val(len_va, &(bytes.len() as i32))
}

/// bind (`unix_bind`): a path makes the socket inode (EADDRINUSE if the name exists);
/// an abstract name is taken in the table; the family alone autobinds.
pub fn sys_bind(a: Args) -> SysResult {
    let (_, s) = socket_of(a.i32(0))?;
    match read_addr(a.u(1), a.i32(2))? {
        // Autobind; a named socket keeps its name.
        Addr::Unnamed => {
            if !s.is_bound() {
                s.bind_abstract(None)?;
            }
        }
        Addr::Abstract(n) => s.bind_abstract(Some(n))?,
        Addr::Path(p) => {
            let cred = current().process.creds.lock().clone();
            let root = crate::fs::root();
            let start = if p.first() == Some(&b'/') { root.clone() } else { current().fs().lock().cwd.clone() };
            let (dir, name) = crate::fs::path::lookup_parent(&cred, root, start, &p)?;
            crate::fs::namei::may_create(&cred, &dir)?;
            let umask = current().fs().lock().umask;
            let mode = crate::fs::vfs::S_IFSOCK | (0o777 & !umask);
            let inode = match dir.create(&name, mode, cred.fsuid, cred.fsgid) {
                Ok(i) => i,
                Err(EEXIST) => return Err(EADDRINUSE),
                Err(e) => return Err(e),
            };
            if let Err(e) = s.bind_path(p, &inode) {
                let _ = dir.unlink(&name, false);
                return Err(e);
            }
        }
    }
    ok(0)
}

/// listen(fd, backlog).
pub fn sys_listen(a: Args) -> SysResult {
    let (_, s) = socket_of(a.i32(0))?;
    s.listen(a.i32(1))?;
    ok(0)
}

/// connect: a stream or seqpacket socket joins a listener's queue; a datagram socket
/// takes a default destination (AF_UNSPEC drops it).
pub fn sys_connect(a: Args) -> SysResult {
    let (f, s) = socket_of(a.i32(0))?;
    if s.ty == unix::SOCK_DGRAM {
        let len = a.i32(2);
        if len < 2 {
            return Err(EINVAL);
        }
        let family: u16 = read_val(a.u(1))?;
        if family == AF_UNSPEC {
            s.connect_dgram(None)?;
            return ok(0);
        }
        let other = find_other(&read_addr(a.u(1), len)?, s.ty)?;
        s.connect_dgram(Some(other))?;
        return ok(0);
    }
    let addr = read_addr(a.u(1), a.i32(2))?;
    let other = find_other(&addr, s.ty)?;
    s.connect_stream(&other, f.nonblock())?;
    ok(0)
}

/// accept4(fd, addr, addrlen, flags): the flags are checked once the descriptor is found,
/// before it is known to be a socket (`__sys_accept4_file`).
fn do_accept(fd: i32, addr: u64, len: u64, flags: i32) -> SysResult {
    let f = get_file(fd)?;
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    let s = match &f.kind {
        FileKind::Socket(s) => s.clone(),
        _ => return Err(ENOTSOCK),
    };
    if s.ty == unix::SOCK_DGRAM {
        return Err(EOPNOTSUPP);
    }
    let new = s.accept(f.nonblock())?;
    let peer = new.peer_name().ok().flatten();
    let nf = socket_file(new, flags as u32);
    // The address goes out before the descriptor: a bad pointer leaves no descriptor.
    write_addr(peer.as_ref(), addr, len)?;
    ok(install(nf, flags & SOCK_CLOEXEC != 0)?)
}

pub fn sys_accept(a: Args) -> SysResult {
    do_accept(a.i32(0), a.u(1), a.u(2), 0)
}

pub fn sys_accept4(a: Args) -> SysResult {
    do_accept(a.i32(0), a.u(1), a.u(2), a.i32(3))
}

pub fn sys_getsockname(a: Args) -> SysResult {
    let (_, s) = socket_of(a.i32(0))?;
    if a.u(1) == 0 {
        return Err(EFAULT);
    }
    write_addr(s.name().as_ref(), a.u(1), a.u(2))?;
    ok(0)
}

pub fn sys_getpeername(a: Args) -> SysResult {
    let (_, s) = socket_of(a.i32(0))?;
    let name = s.peer_name()?;
    if a.u(1) == 0 {
        return Err(EFAULT);
    }
    write_addr(name.as_ref(), a.u(1), a.u(2))?;
    ok(0)
}

pub fn sys_shutdown(a: Args) -> SysResult {
    let (_, s) = socket_of(a.i32(0))?;
    s.shutdown(a.i32(1))?;
    ok(0)
}

// ---- data ------------------------------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct MsgHdr {
    name: u64,
    namelen: u32,
    _pad: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
    flags: i32,
    _pad2: u32,
}
crate::impl_pod!(MsgHdr);

use super::fs::IoVec;

const UIO_MAXIOV: u64 = 1024;
/// The most one call moves (`MAX_RW_COUNT`).
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// The most a read gathers at once; a datagram is at most twice the largest send
/// buffer, a stream read returns what is there.
const RECV_MAX: usize = 2 * unix::SK_BUF_MAX + 4096;

fn read_iov(msg: &MsgHdr) -> KResult<Vec<IoVec>> {
    if msg.iovlen > UIO_MAXIOV {
        return Err(EMSGSIZE);
    }
    let mut v = crate::mm::fail::try_vec_with_capacity(msg.iovlen as usize)?;
    let mut total: u64 = 0;
    for i in 0..msg.iovlen {
        let iov: IoVec = read_val(uoff(msg.iov, i * 16)?)?;
        total = total.checked_add(iov.len).ok_or(EINVAL)?;
        if total > isize::MAX as u64 {
            return Err(EINVAL);
        }
        v.push(iov);
    }
    Ok(v)
}

fn iov_total(iov: &[IoVec]) -> usize {
    (iov.iter().map(|i| i.len).sum::<u64>() as usize).min(MAX_RW_COUNT)
}

/// The bytes of a send, gathered from the caller's buffers.
fn gather(iov: &[IoVec]) -> KResult<Vec<u8>> {
    let total = iov_total(iov);
    let mut data = crate::mm::fail::try_vec_filled(0u8, total)?;
    let mut at = 0;
    for i in iov {
        let n = (i.len as usize).min(total - at);
        copy_from_user(i.base, &mut data[at..at + n])?;
        at += n;
    }
    Ok(data)
}

fn scatter(iov: &[IoVec], data: &[u8]) -> KResult<()> {
    let mut at = 0;
    for i in iov {
        if at >= data.len() {
            break;
        }
        let n = (i.len as usize).min(data.len() - at);
        copy_to_user(i.base, &data[at..at + n])?;
        at += n;
    }
    Ok(())
}

/// `__scm_send`: the control messages of a send, SOL_SOCKET's (others are skipped).
fn read_scm(msg: &MsgHdr) -> KResult<Scm> {
    let mut scm = Scm::default();
    let len = msg.controllen as usize;
    if len < 16 {
        return Ok(scm);
    }
    if len > OPTMEM_MAX {
        return Err(ENOBUFS);
    }
    let mut buf = crate::mm::fail::try_vec_filled(0u8, len)?;
    copy_from_user(msg.control, &mut buf)?;
    let mut at = 0;
    while at + 16 <= len {
        let clen = u64::from_ne_bytes(buf[at..at + 8].try_into().unwrap()) as usize;
        let level = i32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap());
        let ty = i32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap());
        if clen < 16 || clen > len - at {
            return Err(EINVAL);
        }
        let data = &buf[at + 16..at + clen];
        if level == SOL_SOCKET {
            match ty {
                SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if scm.files.len() + n > unix::SCM_MAX_FD {
                        return Err(EINVAL);
                    }
                    for c in data.chunks_exact(4) {
                        let fd = i32::from_ne_bytes(c.try_into().unwrap());
                        scm.files.push(get_file(fd)?);
                    }
                }
                SCM_CREDENTIALS => {
                    if clen != 16 + 12 {
                        return Err(EINVAL);
                    }
                    let c = Ucred {
                        pid: i32::from_ne_bytes(data[0..4].try_into().unwrap()),
                        uid: u32::from_ne_bytes(data[4..8].try_into().unwrap()),
                        gid: u32::from_ne_bytes(data[8..12].try_into().unwrap()),
                    };
                    check_creds(&c)?;
                    // `find_get_pid`: the process must exist.
                    if crate::process::task::find_process(c.pid as u32).is_none() || c.pid <= 0 {
                        return Err(ESRCH);
                    }
                    scm.creds = Some(c);
                }
                _ => return Err(EINVAL),
            }
        }
        at += (clen + 7) & !7;
    }
    Ok(scm)
}

/// `scm_check_creds`: a sender vouches for its own process and ids, or has the
/// capability to give others.
fn check_creds(c: &Ucred) -> KResult<()> {
    use crate::process::cred::{CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN};
    let p = current().process.clone();
    let cr = p.creds.lock().clone();
    let pid_ok = c.pid == p.pid as i32 || cr.capable(CAP_SYS_ADMIN);
    let uid_ok = [cr.uid, cr.euid, cr.suid].contains(&c.uid) || cr.capable(CAP_SETUID);
    let gid_ok = [cr.gid, cr.egid, cr.sgid].contains(&c.gid) || cr.capable(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(EPERM)
    }
}

/// sendto/sendmsg on `s`: the destination (datagram), the bytes, the control messages.
fn do_send(
    f: &File,
    s: &Arc<UnixSocket>,
    addr: Option<(u64, i32)>,
    data: &[u8],
    scm: Scm,
    flags: i32,
) -> KResult<usize> {
    if flags & MSG_OOB != 0 {
        return Err(EOPNOTSUPP);
    }
    let to = match addr {
        Some((va, len)) if va != 0 && len != 0 => {
            if s.ty == unix::SOCK_STREAM {
                return Err(if s.peer_name().is_ok() { EISCONN } else { EOPNOTSUPP });
            }
            if s.ty == unix::SOCK_SEQPACKET {
                None
            } else {
                Some(find_other(&read_addr(va, len)?, s.ty)?)
            }
        }
        _ => None,
    };
    let nonblock = f.nonblock() || flags & MSG_DONTWAIT != 0;
    match s.send(data, to, scm, nonblock) {
        Err(EPIPE) => {
            // Only a stream raises it; seqpacket goes the datagram way (`unix_dgram_sendmsg`).
            if s.ty == unix::SOCK_STREAM && flags & MSG_NOSIGNAL == 0 {
                crate::process::signal::send_to_current_thread(crate::process::signal::SIGPIPE);
            }
            Err(EPIPE)
        }
        r => r,
    }
}

pub fn sys_sendto(a: Args) -> SysResult {
    let (f, s) = socket_of(a.i32(0))?;
    let len = a.usize(2).min(MAX_RW_COUNT);
    let data = gather(&[IoVec { base: a.u(1), len: len as u64 }])?;
    ok(do_send(&f, &s, Some((a.u(4), a.i32(5))), &data, Scm::default(), a.i32(3))?)
}

pub fn sys_sendmsg(a: Args) -> SysResult {
    let (f, s) = socket_of(a.i32(0))?;
    let msg: MsgHdr = read_val(a.u(1))?;
    ok(send_msghdr(&f, &s, &msg, a.i32(2))?)
}

fn send_msghdr(f: &File, s: &Arc<UnixSocket>, msg: &MsgHdr, flags: i32) -> KResult<usize> {
    let iov = read_iov(msg)?;
    let scm = read_scm(msg)?;
    let data = gather(&iov)?;
    do_send(f, s, Some((msg.name, msg.namelen as i32)), &data, scm, flags)
}

/// write(2) and writev(2) on a socket: a send without flags.
pub fn sock_write(f: &File, s: &Arc<UnixSocket>, data: &[u8]) -> KResult<usize> {
    do_send(f, s, None, data, Scm::default(), 0)
}

/// read(2) and readv(2) on a socket: a receive without flags.
pub fn sock_read(f: &File, s: &Arc<UnixSocket>, out: &mut [u8]) -> KResult<usize> {
    let r = s.recv(out, false, f.nonblock(), false)?;
    drop(r.files);
    Ok(r.len)
}

/// What a receive hands back to recvfrom and recvmsg.
struct RecvOut {
    ret: usize,
    msg_flags: i32,
}

/// A receive into the caller's buffers, its control messages into `control` (va, room);
/// returns what the call returns, the message flags, the control bytes used and the
/// sender's name.
fn do_recv(
    f: &File,
    s: &Arc<UnixSocket>,
    iov: &[IoVec],
    flags: i32,
    control: (u64, usize),
) -> KResult<(RecvOut, usize, Option<UnixName>)> {
    if flags & MSG_OOB != 0 {
        return Err(EOPNOTSUPP);
    }
    let mut want = iov_total(iov).min(RECV_MAX);
    // Buffers outside user space are refused before anything is taken; a stream also
    // takes no more than the first buffer's writable part holds, so that a faulting page
    // leaves its data queued (a datagram is taken whole and lost, as in Linux).
    let mm = crate::process::current_mm();
    for i in iov {
        if i.base.checked_add(i.len).is_none_or(|end| end > crate::mm::address_space::TASK_SIZE) {
            return Err(EFAULT);
        }
    }
    if s.ty == unix::SOCK_STREAM && want > 0 {
        if let Some(first) = iov.iter().find(|i| i.len > 0) {
            let n = crate::mm::usercopy::fault_in_writeable(&mm, first.base, (first.len as usize).min(want))?;
            if n < (first.len as usize).min(want) {
                want = n;
            }
        }
    }
    let mut buf = crate::mm::fail::try_vec_filled(0u8, want)?;
    let nonblock = f.nonblock() || flags & MSG_DONTWAIT != 0;
    let r = s.recv(&mut buf, flags & MSG_PEEK != 0, nonblock, flags & MSG_WAITALL != 0)?;
    scatter(iov, &buf[..r.len])?;
    let mut msg_flags = flags & MSG_CMSG_CLOEXEC;
    let mut ret = r.len;
    if s.ty != unix::SOCK_STREAM && r.total > r.len {
        msg_flags |= MSG_TRUNC;
        if flags & MSG_TRUNC != 0 {
            ret = r.total;
        }
    }
    let mut w = CmsgWriter { va: control.0, len: control.1, used: 0, truncated: false };
    if s.passcred() {
        // A message sent before anyone asked for credentials carries none (`scm_recv`
        // then gives pid 0 and the overflow ids).
        let c = r.creds.unwrap_or(Ucred { pid: 0, uid: 65534, gid: 65534 });
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&c.pid.to_ne_bytes());
        b[4..8].copy_from_slice(&c.uid.to_ne_bytes());
        b[8..12].copy_from_slice(&c.gid.to_ne_bytes());
        w.put(SCM_CREDENTIALS, &b)?;
    }
    if !r.files.is_empty() {
        w.put_files(r.files, flags & MSG_CMSG_CLOEXEC != 0)?;
    }
    if w.truncated {
        msg_flags |= MSG_CTRUNC;
    }
    Ok((RecvOut { ret, msg_flags }, w.used, r.from))
}

/// `put_cmsg` and `scm_detach_fds` into the caller's control buffer.
struct CmsgWriter {
    va: u64,
    len: usize,
    used: usize,
    truncated: bool,
}

impl CmsgWriter {
    fn put(&mut self, ty: i32, data: &[u8]) -> KResult<()> {
        let room = self.len - self.used;
        let cmlen = 16 + data.len();
        if room < 16 {
            self.truncated = true;
            return Ok(());
        }
        let n = cmlen.min(room);
        if n < cmlen {
            self.truncated = true;
        }
        let mut b = Vec::with_capacity(cmlen);
        b.extend_from_slice(&(cmlen as u64).to_ne_bytes());
        b.extend_from_slice(&SOL_SOCKET.to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(data);
        copy_to_user(self.va + self.used as u64, &b[..n])?;
        self.used += ((cmlen + 7) & !7).min(room);
        Ok(())
    }

    /// The files become descriptors, as many as the buffer has room for; the others are
    /// closed and MSG_CTRUNC says so.
    fn put_files(&mut self, files: Vec<Arc<File>>, cloexec: bool) -> KResult<()> {
        let room = self.len - self.used;
        let fdmax = room.saturating_sub(16) / 4;
        let mut fds = Vec::new();
        let count = files.len();
        let limit = super::fs::nofile_limit();
        let mut rest = Vec::new();
        for f in files {
            if fds.len() >= fdmax {
                rest.push(f);
                continue;
            }
            let r = current().files().lock().alloc(f.clone(), cloexec, 0, limit);
            match r {
                Ok(fd) => fds.push(fd),
                Err(_) => rest.push(f),
            }
        }
        drop(rest);
        if fds.len() < count {
            self.truncated = true;
        }
        if !fds.is_empty() {
            // `fdmax` made room for the whole message.
            let data: Vec<u8> = fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect();
            self.put(SCM_RIGHTS, &data)?;
        }
        Ok(())
    }
}

pub fn sys_recvfrom(a: Args) -> SysResult {
    let (f, s) = socket_of(a.i32(0))?;
    let len = a.usize(2).min(MAX_RW_COUNT);
    let iov = [IoVec { base: a.u(1), len: len as u64 }];
    let (out, _, from) = do_recv(&f, &s, &iov, a.i32(3), (0, 0))?;
    if a.u(4) != 0 {
        write_name(from.as_ref(), a.u(4), a.u(5))?;
    }
    ok(out.ret)
}

/// A received message's sender into a name buffer: an unnamed sender has length 0
/// (`msg_namelen` stays 0 in Linux).
fn write_name(from: Option<&UnixName>, va: u64, len_va: u64) -> KResult<()> {
    match from {
        Some(n) => write_addr(Some(n), va, len_va),
        None => {
            let room: i32 = read_val(len_va)?;
            if room < 0 {
                return Err(EINVAL);
            }
            write_val(len_va, &0i32)
        }
    }
}

pub fn sys_recvmsg(a: Args) -> SysResult {
    let (f, s) = socket_of(a.i32(0))?;
    ok(recv_msghdr(&f, &s, a.u(1), a.i32(2))?)
}

fn recv_msghdr(f: &File, s: &Arc<UnixSocket>, msg_va: u64, flags: i32) -> KResult<usize> {
    let mut msg: MsgHdr = read_val(msg_va)?;
    let iov = read_iov(&msg)?;
    let (out, used, from) = do_recv(f, s, &iov, flags, (msg.control, msg.controllen as usize))?;
    if msg.name != 0 {
        let bytes = match &from {
            Some(n) => {
                let mut b = (AF_UNIX as u16).to_ne_bytes().to_vec();
                b.extend(n.sun_path());
                b
            }
            None => Vec::new(),
        };
        let n = bytes.len().min(msg.namelen as usize);
        copy_to_user(msg.name, &bytes[..n])?;
        msg.namelen = bytes.len() as u32;
    } else {
        msg.namelen = 0;
    }
    msg.controllen = used as u64;
    msg.flags = out.msg_flags;
    write_val(msg_va, &msg)?;
    Ok(out.ret)
}

/// `struct mmsghdr`: a header and the bytes that message moved.
const MMSGHDR: u64 = 64;

/// sendmmsg: each header in turn until one fails; the count sent, or the first error.
pub fn sys_sendmmsg(a: Args) -> SysResult {
    let (f, s) = socket_of(a.i32(0))?;
    let vlen = a.u(2).min(UIO_MAXIOV);
    let mut sent = 0;
    for i in 0..vlen {
        let at = uoff(a.u(1), i * MMSGHDR)?;
        let r = read_val::<MsgHdr>(at).and_then(|msg| send_msghdr(&f, &s, &msg, a.i32(3)));
        match r {
            Ok(n) => {
                write_val(at + 56, &(n as u32))?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    ok(sent)
}

/// recvmmsg: up to `vlen` messages, waiting only for the first with MSG_WAITFORONE; the
/// timeout is checked between messages, as Linux does.
pub fn sys_recvmmsg(a: Args) -> SysResult {
    const MSG_WAITFORONE: i32 = 0x10000;
    let (f, s) = socket_of(a.i32(0))?;
    let vlen = a.u(2).min(UIO_MAXIOV);
    let mut flags = a.i32(3);
    let deadline = match a.u(4) {
        0 => None,
        ts => Some(crate::time::monotonic_ns().saturating_add(super::time::read_timespec(ts)?)),
    };
    let mut got = 0;
    for i in 0..vlen {
        let at = uoff(a.u(1), i * MMSGHDR)?;
        match recv_msghdr(&f, &s, at, flags) {
            Ok(n) => {
                write_val(at + 56, &(n as u32))?;
                got += 1;
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        if flags & MSG_WAITFORONE != 0 {
            flags |= MSG_DONTWAIT;
        }
        if deadline.is_some_and(|d| crate::time::monotonic_ns() >= d) {
            break;
        }
    }
    ok(got)
}

// ---- options ---------------------------------------------------------------------------

/// setsockopt (`sock_setsockopt`): SOL_SOCKET's options; AF_UNIX has no others.
pub fn sys_setsockopt(a: Args) -> SysResult {
    let (_, s) = socket_of(a.i32(0))?;
    if a.i32(1) != SOL_SOCKET {
        return Err(EOPNOTSUPP);
    }
    let optname = a.i32(2);
    if a.i32(4) < 4 {
        return Err(EINVAL);
    }
    let val: i32 = read_val(a.u(3))?;
    let admin = || current().process.creds.lock().capable(crate::process::cred::CAP_NET_ADMIN);
    match optname {
        SO_SNDBUF => s.set_buf(true, val, false),
        SO_RCVBUF => s.set_buf(false, val, false),
        SO_SNDBUFFORCE | SO_RCVBUFFORCE => {
            if !admin() {
                return Err(EPERM);
            }
            s.set_buf(optname == SO_SNDBUFFORCE, val, true);
        }
        SO_RCVTIMEO_OLD | SO_SNDTIMEO_OLD | SO_RCVTIMEO_NEW | SO_SNDTIMEO_NEW => {
            if a.i32(4) < 16 {
                return Err(EINVAL);
            }
            let [sec, usec]: [i64; 2] = read_val(a.u(3))?;
            if !(0..1_000_000).contains(&usec) {
                return Err(EDOM);
            }
            // `sock_set_timeout`: 0 waits for ever, a negative time not at all.
            let ns =
                if sec < 0 { 1 } else { (sec as u64).saturating_mul(1_000_000_000).saturating_add(usec as u64 * 1000) };
            let slot = if optname == SO_RCVTIMEO_OLD || optname == SO_RCVTIMEO_NEW { &s.rcvtimeo } else { &s.sndtimeo };
            slot.store(ns, core::sync::atomic::Ordering::Relaxed);
        }
        SO_PASSCRED => s.set_passcred(val != 0),
        SO_DEBUG | SO_REUSEADDR | SO_DONTROUTE | SO_BROADCAST | SO_KEEPALIVE | SO_OOBINLINE => {
            s.set_flag(optname, val != 0)
        }
        _ => return Err(ENOPROTOOPT),
    }
    ok(0)
}

/// getsockopt (`sock_getsockopt`): an int option is copied as far as the caller's
/// length goes (at most 4 bytes), SO_PEERCRED as a `struct ucred`.
pub fn sys_getsockopt(a: Args) -> SysResult {
    let (_, s) = socket_of(a.i32(0))?;
    if a.i32(1) != SOL_SOCKET {
        return Err(EOPNOTSUPP);
    }
    let len: i32 = read_val(a.u(4))?;
    if len < 0 {
        return Err(EINVAL);
    }
    let bytes: Vec<u8> = match a.i32(2) {
        SO_TYPE => s.ty.to_ne_bytes().to_vec(),
        SO_DOMAIN => AF_UNIX.to_ne_bytes().to_vec(),
        SO_PROTOCOL => 0i32.to_ne_bytes().to_vec(),
        SO_ERROR => s.take_error().to_ne_bytes().to_vec(),
        SO_SNDBUF => (s.bufs().0 as i32).to_ne_bytes().to_vec(),
        SO_RCVBUF => (s.bufs().1 as i32).to_ne_bytes().to_vec(),
        SO_PASSCRED => (s.passcred() as i32).to_ne_bytes().to_vec(),
        SO_ACCEPTCONN => (s.listening() as i32).to_ne_bytes().to_vec(),
        SO_DEBUG | SO_REUSEADDR | SO_DONTROUTE | SO_BROADCAST | SO_KEEPALIVE | SO_OOBINLINE => {
            (s.flag(a.i32(2)) as i32).to_ne_bytes().to_vec()
        }
        SO_RCVTIMEO_OLD | SO_SNDTIMEO_OLD | SO_RCVTIMEO_NEW | SO_SNDTIMEO_NEW => {
            let slot = if matches!(a.i32(2), SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW) { &s.rcvtimeo } else { &s.sndtimeo };
            let ns = slot.load(core::sync::atomic::Ordering::Relaxed);
            let tv = [(ns / 1_000_000_000) as i64, ((ns % 1_000_000_000) / 1000) as i64];
            tv.iter().flat_map(|v| v.to_ne_bytes()).collect()
        }
        SO_PEERCRED => {
            // `cred_to_ucred` without credentials: pid 0, ids -1.
            let c = s.peercred().unwrap_or(Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX });
            let mut b = c.pid.to_ne_bytes().to_vec();
            b.extend(c.uid.to_ne_bytes());
            b.extend(c.gid.to_ne_bytes());
            b
        }
        _ => return Err(ENOPROTOOPT),
    };
    let n = bytes.len().min(len as usize);
    copy_to_user(a.u(3), &bytes[..n])?;
    write_val(a.u(4), &(n as i32))?;
    ok(0)
}
