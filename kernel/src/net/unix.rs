//! AF_UNIX sockets: Linux's net/unix/af_unix.c (stream, datagram, seqpacket), with the
//! control messages of net/core/scm.c (SCM_RIGHTS, SCM_CREDENTIALS) and the in-flight
//! descriptor collector of net/unix/garbage.c.
//!
//! A socket's received data is a queue of buffers (Linux's skbs): a datagram or a
//! seqpacket record is one, a stream's writes are cut into several. Each buffer may carry
//! the sender's address, its credentials and open files. A sender is charged for the
//! bytes it has queued at its peer and unread (Linux's `sk_wmem_alloc`): a writer waits
//! while they pass its send buffer; a datagram also waits while its receiver holds more
//! than `MAX_DGRAM_QLEN` datagrams (unless that receiver is connected back to it).
//!
//! Names: a path name is a socket inode in the filesystem (bind makes it, connect finds
//! the socket through it, as `unix_find_socket_byinode`); an abstract name (a leading
//! NUL) lives only in a table, per socket type. Both tables hold the sockets weakly; a
//! socket's release takes its names out.
//!
//! Locks: one socket's `inner` (UnixSock) at a time, but for connect's three (nested
//! subclasses); an operation on a pair copies what it needs of one, drops its lock, then
//! takes the other's. Files that leave a queue are dropped outside every lock (dropping
//! one may release another socket).

use crate::errno::*;
use crate::fs::file::File;
use crate::fs::vfs::{Inode, Metadata, POLLERR, POLLHUP, POLLIN, POLLOUT, S_IFSOCK};
use crate::process::wait_queue::WaitQueue;
use crate::sync::order;
use crate::sync::SpinLock as Mutex;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_SEQPACKET: i32 = 5;

pub const POLLRDHUP: u16 = 0x2000;

/// `net.core.wmem_default`/`rmem_default` and `wmem_max`/`rmem_max`.
pub const SK_BUF_DEFAULT: usize = 212_992;
pub const SK_BUF_MAX: usize = 212_992;
/// `SOCK_MIN_SNDBUF` and `SOCK_MIN_RCVBUF` (2048 bytes and an skb's truesize).
pub const SOCK_MIN_SNDBUF: usize = 4608;
pub const SOCK_MIN_RCVBUF: usize = 2304;
/// `net.unix.max_dgram_qlen` (6.1's default).
const MAX_DGRAM_QLEN: usize = 10;
/// `SOMAXCONN`: listen's backlog is capped there.
pub const SOMAXCONN: usize = 4096;
/// `SCM_MAX_FD`: descriptors one message may carry.
pub const SCM_MAX_FD: usize = 253;
/// What a queued buffer costs its sender beyond its bytes (Linux's skb truesize).
const SKB_OVERHEAD: usize = 768;

/// A socket's name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum UnixName {
    /// A path (without its NUL) and the socket inode's (dev, ino).
    Path(Vec<u8>, (u64, u64)),
    /// An abstract name: the bytes after the leading NUL.
    Abstract(Vec<u8>),
}

impl UnixName {
    /// `sun_path` as getsockname gives it: a path with its NUL, an abstract name with its
    /// leading NUL.
    pub fn sun_path(&self) -> Vec<u8> {
        match self {
            UnixName::Path(p, _) => {
                let mut v = p.clone();
                v.push(0);
                v
            }
            UnixName::Abstract(a) => {
                let mut v = alloc::vec![0];
                v.extend_from_slice(a);
                v
            }
        }
    }
}

/// `struct ucred`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}
crate::impl_pod!(Ucred);

/// The caller's credentials as a message carries them (`scm_set_cred`: the real ids).
pub fn current_ucred() -> Ucred {
    let p = crate::process::current().process.clone();
    let c = p.creds.lock();
    Ucred { pid: p.pid as i32, uid: c.uid, gid: c.gid }
}

/// What a message carries besides its bytes (Linux's `scm_cookie`).
#[derive(Default)]
pub struct Scm {
    pub creds: Option<Ucred>,
    pub files: Vec<Arc<File>>,
}

/// One received buffer.
struct Skb {
    data: Vec<u8>,
    /// Bytes of a stream buffer already read.
    off: usize,
    from: Option<UnixName>,
    creds: Option<Ucred>,
    files: Vec<Arc<File>>,
    /// The socket charged for it, and how much.
    sender: Weak<UnixSocket>,
    charge: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Unconnected,
    Listening,
    Connected,
}

struct Inner {
    state: State,
    name: Option<UnixName>,
    /// The connected peer (stream, seqpacket) or the default destination (datagram).
    peer: Option<Arc<UnixSocket>>,
    /// Connections waiting for accept (their server side, already connected).
    accept_queue: VecDeque<Arc<UnixSocket>>,
    backlog: usize,
    recv: VecDeque<Skb>,
    /// Linux's `sk_shutdown`: no more reading (RCV) / writing (SEND).
    shut_rcv: bool,
    shut_send: bool,
    sndbuf: usize,
    rcvbuf: usize,
    passcred: bool,
    peercred: Option<Ucred>,
    /// A pending error (SO_ERROR): ECONNRESET when the peer closed with data unread.
    err: i32,
    released: bool,
    /// A connection was made (stream, seqpacket): once it is gone reads see end of file.
    was_connected: bool,
}

/// An AF_UNIX socket.
pub struct UnixSocket {
    pub ty: i32,
    pub ino: u64,
    owner: (u32, u32),
    inner: Mutex<Inner, order::UnixSock>,
    /// Woken when readiness may change: data, room, a connection, a peer gone.
    pub wait: WaitQueue,
    /// Bytes (with overhead) this socket has queued at peers and that are unread.
    wmem: AtomicUsize,
    /// Its open file, for the collector: one per socket.
    file: spin::Once<Weak<File>>,
    /// How many of its file's references sit in queues (SCM_RIGHTS in flight).
    inflight: AtomicUsize,
    /// SOL_SOCKET flags without effect on AF_UNIX (SO_REUSEADDR, SO_KEEPALIVE...), by
    /// option number, kept for getsockopt.
    flags: AtomicU32,
    /// SO_RCVTIMEO and SO_SNDTIMEO in ns (0: wait for ever); a wait that passes one is
    /// EAGAIN.
    pub rcvtimeo: AtomicU64,
    pub sndtimeo: AtomicU64,
    _live: crate::leak::Live,
}

/// Bound path sockets by the socket inode, abstract ones by type and name; every socket,
/// weakly, for the collector.
struct Tables {
    paths: BTreeMap<(u64, u64), Weak<UnixSocket>>,
    abstract_names: BTreeMap<(i32, Vec<u8>), Weak<UnixSocket>>,
    all: Vec<Weak<UnixSocket>>,
    next_autobind: u32,
}

static TABLES: Mutex<Tables, order::UnixTables> =
    Mutex::new(Tables { paths: BTreeMap::new(), abstract_names: BTreeMap::new(), all: Vec::new(), next_autobind: 0 });

/// Gives back the tables' capacity (`leak`'s shrinkers).
pub fn shrink() {
    let mut t = TABLES.lock();
    t.all.retain(|w| w.strong_count() > 0);
    if t.all.is_empty() {
        t.all = Vec::new();
    }
    if t.paths.is_empty() {
        t.paths = BTreeMap::new();
    }
    if t.abstract_names.is_empty() {
        t.abstract_names = BTreeMap::new();
    }
}

impl UnixSocket {
    pub fn new(ty: i32) -> Arc<UnixSocket> {
        let c = crate::process::current().process.creds.lock().clone();
        let s = Arc::new(UnixSocket {
            ty,
            ino: crate::fs::tmpfs::next_ino(),
            owner: (c.fsuid, c.fsgid),
            inner: Mutex::new(Inner {
                state: State::Unconnected,
                name: None,
                peer: None,
                accept_queue: VecDeque::new(),
                backlog: 0,
                recv: VecDeque::new(),
                shut_rcv: false,
                shut_send: false,
                sndbuf: SK_BUF_DEFAULT,
                rcvbuf: SK_BUF_DEFAULT,
                passcred: false,
                peercred: None,
                err: 0,
                released: false,
                was_connected: false,
            }),
            wait: WaitQueue::new(),
            wmem: AtomicUsize::new(0),
            file: spin::Once::new(),
            inflight: AtomicUsize::new(0),
            flags: AtomicU32::new(0),
            rcvtimeo: AtomicU64::new(0),
            sndtimeo: AtomicU64::new(0),
            _live: crate::leak::SOCKETS.live(),
        });
        let mut t = TABLES.lock();
        if t.all.len() >= 64 && t.all.len().is_power_of_two() {
            t.all.retain(|w| w.strong_count() > 0);
        }
        t.all.push(Arc::downgrade(&s));
        s
    }

    /// Records the open file made for it (one per socket).
    pub fn set_file(&self, f: &Arc<File>) {
        self.file.call_once(|| Arc::downgrade(f));
    }

    fn connection_based(&self) -> bool {
        self.ty != SOCK_DGRAM
    }

    /// The deadline a timeout option gives a wait starting now.
    fn deadline(timeo: &AtomicU64) -> Option<u64> {
        match timeo.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(crate::arch::apic::uptime_ns().saturating_add(ns)),
        }
    }

    /// The socket's inode as fstat shows it: sockfs, mode 0777, its creator's.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            dev: 0x8,
            ino: self.ino,
            mode: S_IFSOCK | 0o777,
            nlink: 1,
            uid: self.owner.0,
            gid: self.owner.1,
            blksize: 4096,
            ..Default::default()
        }
    }

    /// `socketpair`: two sockets connected to each other, each crediting the caller.
    pub fn pair(ty: i32) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
        let (a, b) = (UnixSocket::new(ty), UnixSocket::new(ty));
        let cred = current_ucred();
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut i = x.inner.lock();
            i.peer = Some(y.clone());
            i.peercred = Some(cred);
            if ty != SOCK_DGRAM {
                i.state = State::Connected;
                i.was_connected = true;
            }
        }
        (a, b)
    }

    pub fn name(&self) -> Option<UnixName> {
        self.inner.lock().name.clone()
    }

    /// getpeername: ENOTCONN without a peer.
    pub fn peer_name(&self) -> KResult<Option<UnixName>> {
        let peer = self.inner.lock().peer.clone().ok_or(ENOTCONN)?;
        let name = peer.name();
        Ok(name)
    }

    pub fn peercred(&self) -> Option<Ucred> {
        self.inner.lock().peercred
    }

    // ---- names -----------------------------------------------------------------------

    /// bind to an abstract name, or (`None`) autobind: a free name of five hex digits.
    pub fn bind_abstract(self: &Arc<Self>, name: Option<Vec<u8>>) -> KResult<()> {
        let mut t = TABLES.lock();
        let name = match name {
            Some(n) => n,
            None => loop {
                let n = t.next_autobind & 0xfffff;
                t.next_autobind = t.next_autobind.wrapping_add(1);
                let cand = alloc::format!("{n:05x}").into_bytes();
                if !t.abstract_names.get(&(self.ty, cand.clone())).is_some_and(|w| w.strong_count() > 0) {
                    break cand;
                }
            },
        };
        let key = (self.ty, name.clone());
        if t.abstract_names.get(&key).is_some_and(|w| w.upgrade().is_some_and(|s| !s.inner.lock().released)) {
            return Err(EADDRINUSE);
        }
        let mut i = self.inner.lock();
        if i.name.is_some() {
            return Err(EINVAL);
        }
        i.name = Some(UnixName::Abstract(name));
        drop(i);
        t.abstract_names.insert(key, Arc::downgrade(self));
        Ok(())
    }

    /// Whether it has a name (bind on a named socket is EINVAL).
    pub fn is_bound(&self) -> bool {
        self.inner.lock().name.is_some()
    }

    /// bind to a path whose socket inode the caller made (`unix_bind_bsd`).
    pub fn bind_path(self: &Arc<Self>, path: Vec<u8>, inode: &Arc<dyn Inode>) -> KResult<()> {
        let m = inode.metadata();
        let key = (m.dev, m.ino);
        let mut i = self.inner.lock();
        if i.name.is_some() {
            return Err(EINVAL);
        }
        i.name = Some(UnixName::Path(path, key));
        drop(i);
        TABLES.lock().paths.insert(key, Arc::downgrade(self));
        Ok(())
    }

    /// The socket bound to the socket inode `inode` (`unix_find_bsd`).
    pub fn find_by_inode(inode: &Arc<dyn Inode>) -> Option<Arc<UnixSocket>> {
        let m = inode.metadata();
        let s = TABLES.lock().paths.get(&(m.dev, m.ino)).and_then(Weak::upgrade)?;
        let released = s.inner.lock().released;
        (!released).then_some(s)
    }

    /// The socket of type `ty` bound to abstract name `name` (`unix_find_abstract`).
    pub fn find_abstract(ty: i32, name: &[u8]) -> Option<Arc<UnixSocket>> {
        let s = TABLES.lock().abstract_names.get(&(ty, name.to_vec())).and_then(Weak::upgrade)?;
        let released = s.inner.lock().released;
        (!released).then_some(s)
    }

    // ---- connections -----------------------------------------------------------------

    /// listen (`unix_listen`): a bound, unconnected stream or seqpacket socket.
    pub fn listen(&self, backlog: i32) -> KResult<()> {
        if !self.connection_based() {
            return Err(EOPNOTSUPP);
        }
        let mut i = self.inner.lock();
        if i.name.is_none() || i.state == State::Connected {
            return Err(EINVAL);
        }
        i.backlog = (backlog.max(0) as usize).min(SOMAXCONN);
        if i.state != State::Listening {
            i.state = State::Listening;
            i.peercred = Some(current_ucred());
        }
        drop(i);
        self.wait.wake_all();
        Ok(())
    }

    /// connect of a stream or seqpacket socket to the listener `other`
    /// (`unix_stream_connect`): a new server-side socket joins the listener's accept
    /// queue, connected at once; the connection waits while the queue holds more than
    /// the backlog (checked before the connector's own state, as Linux does).
    pub fn connect_stream(self: &Arc<Self>, other: &Arc<UnixSocket>, nonblock: bool) -> KResult<()> {
        if other.ty != self.ty {
            return Err(EPROTOTYPE);
        }
        if self.inner.lock().passcred && !self.is_bound() {
            self.bind_abstract(None)?;
        }
        let server = UnixSocket::new(self.ty);
        let deadline = Self::deadline(&self.sndtimeo);
        let r = other.wait.wait_until_deadline(true, deadline, || {
            let mut o = other.inner.lock();
            if o.released || o.state != State::Listening {
                return Some(Err(ECONNREFUSED));
            }
            if o.accept_queue.len() > o.backlog {
                return nonblock.then_some(Err(EAGAIN));
            }
            // A listener connecting to its own name (its state is under `o`).
            if Arc::ptr_eq(self, other) {
                return Some(Err(EINVAL));
            }
            let mut s = self.inner.lock_nested(1);
            match s.state {
                State::Connected => return Some(Err(EISCONN)),
                State::Listening => return Some(Err(EINVAL)),
                State::Unconnected => {}
            }
            let mut n = server.inner.lock_nested(2);
            n.state = State::Connected;
            n.was_connected = true;
            n.name = o.name.clone();
            n.peer = Some(self.clone());
            n.peercred = Some(current_ucred());
            n.passcred = o.passcred;
            s.state = State::Connected;
            s.was_connected = true;
            s.peer = Some(server.clone());
            s.peercred = o.peercred;
            drop(n);
            drop(s);
            o.accept_queue.push_back(server.clone());
            Some(Ok(()))
        });
        match r {
            Err(ETIMEDOUT) => return Err(EAGAIN),
            r => r??,
        }
        other.wait.wake_all();
        self.wait.wake_all();
        Ok(())
    }

    /// accept: the oldest queued connection (EINVAL on a socket that does not listen).
    pub fn accept(&self, nonblock: bool) -> KResult<Arc<UnixSocket>> {
        let deadline = Self::deadline(&self.rcvtimeo);
        let s = self.wait.wait_until_deadline(true, deadline, || {
            let mut i = self.inner.lock();
            if i.state != State::Listening {
                return Some(Err(EINVAL));
            }
            if let Some(s) = i.accept_queue.pop_front() {
                return Some(Ok(s));
            }
            nonblock.then_some(Err(EAGAIN))
        });
        let s = match s {
            Err(ETIMEDOUT) => return Err(EAGAIN),
            r => r??,
        };
        // Room in the queue: a connector may be waiting.
        self.wait.wake_all();
        Ok(s)
    }

    /// connect of a datagram socket: `other` becomes the default destination (None
    /// dissolves it, AF_UNSPEC).
    pub fn connect_dgram(self: &Arc<Self>, other: Option<Arc<UnixSocket>>) -> KResult<()> {
        if let Some(o) = &other {
            if o.ty != self.ty {
                return Err(EPROTOTYPE);
            }
            if self.inner.lock().passcred && !self.is_bound() {
                self.bind_abstract(None)?;
            }
        }
        let old = {
            let mut i = self.inner.lock();
            core::mem::replace(&mut i.peer, other)
        };
        if let Some(old) = old {
            old.wait.wake_all();
        }
        self.wait.wake_all();
        Ok(())
    }

    /// shutdown (`unix_shutdown`): the directions close here (an unconnected socket is
    /// only marked) and, for a connection, the opposite ones at the peer.
    pub fn shutdown(&self, how: i32) -> KResult<()> {
        if !(0..=2).contains(&how) {
            return Err(EINVAL);
        }
        let (rd, wr) = (how != 1, how != 0);
        let peer = {
            let mut i = self.inner.lock();
            i.shut_rcv |= rd;
            i.shut_send |= wr;
            i.peer.clone()
        };
        self.wait.wake_all();
        if let Some(p) = peer.filter(|_| self.connection_based()) {
            let mut o = p.inner.lock();
            o.shut_send |= rd;
            o.shut_rcv |= wr;
            drop(o);
            p.wait.wake_all();
        }
        Ok(())
    }

    /// The last close of its file.
    pub fn release(&self) {
        self.release_sock(false);
    }

    /// `unix_release_sock`: names go, the peer of a connection sees the end (with
    /// ECONNRESET if this side left data unread, or was an `embryo`: a connection its
    /// listener never accepted), queued connections and buffers are dropped.
    fn release_sock(&self, embryo: bool) {
        let (name, peer, queue, pending) = {
            let mut i = self.inner.lock();
            i.released = true;
            i.state = State::Unconnected;
            i.shut_rcv = true;
            i.shut_send = true;
            let unread = !i.recv.is_empty() || embryo;
            (
                i.name.clone(),
                i.peer.take().map(|p| (p, unread)),
                core::mem::take(&mut i.recv),
                core::mem::take(&mut i.accept_queue),
            )
        };
        {
            let mut t = TABLES.lock();
            match &name {
                Some(UnixName::Path(_, key)) => {
                    if t.paths.get(key).is_some_and(|w| core::ptr::eq(w.as_ptr(), self)) {
                        t.paths.remove(key);
                    }
                }
                Some(UnixName::Abstract(n)) => {
                    let key = (self.ty, n.clone());
                    if t.abstract_names.get(&key).is_some_and(|w| core::ptr::eq(w.as_ptr(), self)) {
                        t.abstract_names.remove(&key);
                    }
                }
                None => {}
            }
        }
        if let Some((p, unread)) = peer {
            if self.connection_based() {
                let mut o = p.inner.lock();
                o.shut_rcv = true;
                o.shut_send = true;
                if unread {
                    o.err = ECONNRESET.0;
                }
            }
            p.wait.wake_all();
        }
        drop_skbs(queue);
        for s in pending {
            s.release_sock(true);
        }
        self.wait.wake_all();
    }

    // ---- data ------------------------------------------------------------------------

    /// The destination of a send: `to` (a datagram's address) or the peer; with the
    /// checks of `unix_dgram_sendmsg` and `unix_stream_sendmsg`.
    fn destination(&self, to: Option<Arc<UnixSocket>>) -> KResult<Arc<UnixSocket>> {
        let i = self.inner.lock();
        if i.shut_send {
            return Err(EPIPE);
        }
        let peer = i.peer.clone();
        let was = i.was_connected;
        drop(i);
        if self.connection_based() {
            return match peer {
                Some(p) => Ok(p),
                None if was => Err(EPIPE),
                None => Err(ENOTCONN),
            };
        }
        match to {
            Some(t) => Ok(t),
            None => peer.ok_or(ENOTCONN),
        }
    }

    /// sendmsg: `data` (with `scm` on its first buffer) to the peer or to `to`. Returns the
    /// bytes sent; EPIPE asks the caller for SIGPIPE.
    pub fn send(
        self: &Arc<Self>,
        data: &[u8],
        to: Option<Arc<UnixSocket>>,
        mut scm: Scm,
        nonblock: bool,
    ) -> KResult<usize> {
        let other = self.destination(to)?;
        if self.ty == SOCK_DGRAM && other.ty != SOCK_DGRAM {
            return Err(EPROTOTYPE);
        }
        if self.ty == SOCK_STREAM && data.is_empty() {
            return Ok(0);
        }
        let (passcred, sndbuf) = {
            let i = self.inner.lock();
            (i.passcred, i.sndbuf)
        };
        // A datagram sender asking for credentials gets a name its peer can answer to.
        if self.ty == SOCK_DGRAM && passcred && !self.is_bound() {
            self.bind_abstract(None)?;
        }
        if scm.creds.is_none() && (passcred || other.inner.lock().passcred) {
            scm.creds = Some(current_ucred());
        }
        if self.ty != SOCK_STREAM && data.len() > sndbuf.saturating_sub(32) {
            return Err(EMSGSIZE);
        }
        let from = self.name();
        let deadline = Self::deadline(&self.sndtimeo);
        let mut sent = 0;
        loop {
            // A stream's buffers are at most half the send buffer.
            let chunk = if self.ty == SOCK_STREAM {
                (data.len() - sent).min((sndbuf / 2).saturating_sub(64).max(1))
            } else {
                data.len()
            };
            let mut files = core::mem::take(&mut scm.files);
            let r = other.wait.wait_until_deadline(true, deadline, || {
                let wmem = self.wmem.load(Ordering::Relaxed);
                let mut o = other.inner.lock();
                if o.released {
                    return Some(Err(if self.connection_based() { EPIPE } else { ECONNREFUSED }));
                }
                if self.connection_based() && o.shut_rcv {
                    return Some(Err(EPIPE));
                }
                let ours = o.peer.as_ref().is_some_and(|p| core::ptr::eq(Arc::as_ptr(p), Arc::as_ptr(self)));
                if !self.connection_based() {
                    // `unix_may_send`: a socket connected elsewhere takes nothing from us.
                    if o.peer.is_some() && !ours {
                        return Some(Err(EPERM));
                    }
                    if o.shut_rcv {
                        return Some(Err(EPIPE));
                    }
                }
                // `unix_recvq_full`: a receiver connected back to us (a pair) is bounded
                // by the send buffer only.
                let full = if self.ty == SOCK_DGRAM {
                    (!ours && o.recv.len() > MAX_DGRAM_QLEN) || wmem >= sndbuf
                } else {
                    wmem >= sndbuf
                };
                if full {
                    return nonblock.then_some(Err(EAGAIN));
                }
                let bytes = &data[sent..sent + chunk];
                let mut v = Vec::new();
                if crate::mm::fail::fallible(|| v.try_reserve_exact(bytes.len())).is_err() {
                    return Some(Err(ENOBUFS));
                }
                v.extend_from_slice(bytes);
                let charge = bytes.len() + SKB_OVERHEAD;
                self.wmem.fetch_add(charge, Ordering::Relaxed);
                for f in &files {
                    note_inflight(f, 1);
                }
                o.recv.push_back(Skb {
                    data: v,
                    off: 0,
                    from: from.clone(),
                    creds: scm.creds,
                    files: core::mem::take(&mut files),
                    sender: Arc::downgrade(self),
                    charge,
                });
                Some(Ok(chunk))
            });
            // Files not queued (an error) are dropped here, outside every lock.
            drop(files);
            let r = match r {
                Err(ETIMEDOUT) => Err(EAGAIN),
                r => r.and_then(|r| r),
            };
            // A dead peer of a datagram socket is forgotten (`unix_dgram_disconnected`):
            // the next send without an address is ENOTCONN.
            if r == Err(ECONNREFUSED) {
                let mut i = self.inner.lock();
                if i.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, &other)) {
                    i.peer = None;
                }
            }
            match r {
                Ok(n) => {
                    sent += n;
                    other.wait.wake_all();
                    if sent >= data.len() {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
    }

    /// recvmsg: what a read takes (`unix_stream_read_generic`, `unix_dgram_recvmsg`).
    /// A stream read gathers buffers until `out` is full (with `waitall`) or what is
    /// there is taken, stopping after one that carries files or at a change of
    /// credentials; `peek` leaves them queued.
    pub fn recv(&self, out: &mut [u8], peek: bool, nonblock: bool, waitall: bool) -> KResult<Received> {
        let mut got = Received::default();
        let deadline = Self::deadline(&self.rcvtimeo);
        loop {
            let r = self.wait.wait_until_deadline(true, deadline, || {
                let mut i = self.inner.lock();
                if i.state == State::Listening {
                    return Some(Err(EINVAL));
                }
                if i.recv.is_empty() {
                    if i.err != 0 && got.len == 0 {
                        let e = core::mem::take(&mut i.err);
                        return Some(Err(Errno(e)));
                    }
                    if i.shut_rcv {
                        return Some(Ok(()));
                    }
                    if self.connection_based() && i.state != State::Connected {
                        // Never connected: EINVAL for a stream, ENOTCONN for seqpacket.
                        return Some(match (i.was_connected, self.ty) {
                            (true, _) => Ok(()),
                            (false, SOCK_STREAM) => Err(EINVAL),
                            _ => Err(ENOTCONN),
                        });
                    }
                    if got.len > 0 && !waitall {
                        return Some(Ok(()));
                    }
                    return nonblock.then_some(Err(EAGAIN));
                }
                if self.ty == SOCK_STREAM {
                    self.stream_take(&mut i, out, peek, &mut got);
                } else {
                    self.record_take(&mut i, out, peek, &mut got);
                }
                Some(Ok(()))
            });
            match r.and_then(|r| r) {
                Ok(()) => {}
                Err(_) if got.len > 0 => break,
                Err(ETIMEDOUT) => return Err(EAGAIN),
                Err(e) => return Err(e),
            }
            self.wait.wake_all();
            for s in got.woken.drain(..) {
                s.wait.wake_all();
            }
            let done = self.ty != SOCK_STREAM || !waitall || got.len >= out.len() || got.stop || {
                let i = self.inner.lock();
                i.recv.is_empty() && (i.shut_rcv || i.state != State::Connected)
            };
            if done {
                break;
            }
        }
        Ok(got)
    }

    fn stream_take(&self, i: &mut Inner, out: &mut [u8], peek: bool, got: &mut Received) {
        let mut idx = 0;
        while got.len < out.len() {
            let Some(skb) = i.recv.get_mut(idx) else { break };
            if got.len > 0 && (skb.creds != got.creds || got.stop) {
                break;
            }
            let avail = &skb.data[skb.off..];
            let n = avail.len().min(out.len() - got.len);
            out[got.len..got.len + n].copy_from_slice(&avail[..n]);
            got.len += n;
            got.creds = skb.creds;
            if got.from.is_none() {
                got.from = skb.from.clone();
            }
            if !skb.files.is_empty() {
                if !peek {
                    got.files = core::mem::take(&mut skb.files);
                    for f in &got.files {
                        note_inflight(f, -1);
                    }
                } else {
                    got.files = skb.files.clone();
                }
                got.stop = true;
            }
            if peek {
                idx += 1;
                continue;
            }
            skb.off += n;
            if skb.off == skb.data.len() {
                let skb = i.recv.pop_front().unwrap();
                uncharge(&skb, got);
            }
        }
        got.total = got.len;
    }

    fn record_take(&self, i: &mut Inner, out: &mut [u8], peek: bool, got: &mut Received) {
        let Some(skb) = i.recv.front_mut() else { return };
        let n = skb.data.len().min(out.len());
        out[..n].copy_from_slice(&skb.data[..n]);
        got.len = n;
        got.total = skb.data.len();
        got.from = skb.from.clone();
        got.creds = skb.creds;
        got.stop = true;
        if peek {
            got.files = skb.files.clone();
            return;
        }
        got.files = core::mem::take(&mut skb.files);
        for f in &got.files {
            note_inflight(f, -1);
        }
        let skb = i.recv.pop_front().unwrap();
        uncharge(&skb, got);
    }

    /// FIONREAD (`unix_inq_len`): a stream's or seqpacket's unread bytes, a datagram's
    /// first length.
    pub fn inq(&self) -> KResult<usize> {
        let i = self.inner.lock();
        if i.state == State::Listening {
            return Err(EINVAL);
        }
        Ok(if self.connection_based() {
            i.recv.iter().map(|s| s.data.len() - s.off).sum()
        } else {
            i.recv.front().map_or(0, |s| s.data.len())
        })
    }

    /// SIOCOUTQ (`unix_outq_len`): what this socket has queued at its peer, unread.
    pub fn outq(&self) -> usize {
        self.wmem.load(Ordering::Relaxed)
    }

    /// `unix_poll` / `unix_dgram_poll`.
    pub fn poll(&self) -> u16 {
        let i = self.inner.lock();
        let mut mask = 0;
        if i.err != 0 {
            mask |= POLLERR;
        }
        if i.shut_rcv && i.shut_send {
            mask |= POLLHUP;
        }
        if i.shut_rcv {
            mask |= POLLRDHUP | POLLIN;
        }
        if !i.recv.is_empty() || !i.accept_queue.is_empty() {
            mask |= POLLIN;
        }
        if self.connection_based() && i.state == State::Unconnected {
            mask |= POLLHUP;
        }
        let writable = i.state != State::Listening && self.wmem.load(Ordering::Relaxed) * 4 <= i.sndbuf;
        let peer = i.peer.clone();
        drop(i);
        let mut room = writable;
        if self.ty == SOCK_DGRAM {
            if let Some(p) = peer {
                let o = p.inner.lock();
                let ours = o.peer.as_ref().is_some_and(|q| core::ptr::eq(Arc::as_ptr(q), self));
                room &= ours || o.recv.len() <= MAX_DGRAM_QLEN;
            }
        }
        if room {
            mask |= POLLOUT;
        }
        mask
    }

    /// Takes the pending error (SO_ERROR).
    pub fn take_error(&self) -> i32 {
        core::mem::take(&mut self.inner.lock().err)
    }

    pub fn bufs(&self) -> (usize, usize) {
        let i = self.inner.lock();
        (i.sndbuf, i.rcvbuf)
    }

    /// SO_SNDBUF / SO_RCVBUF (`sock_setsockopt`): the value doubled, within the limits;
    /// the FORCE options (`force`) ignore the maximum.
    pub fn set_buf(&self, snd: bool, val: i32, force: bool) {
        let val = val.max(0) as usize;
        let val = if force { val } else { val.min(SK_BUF_MAX) };
        let val = val.saturating_mul(2);
        let mut i = self.inner.lock();
        if snd {
            i.sndbuf = val.max(SOCK_MIN_SNDBUF);
        } else {
            i.rcvbuf = val.max(SOCK_MIN_RCVBUF);
        }
        drop(i);
        self.wait.wake_all();
    }

    pub fn passcred(&self) -> bool {
        self.inner.lock().passcred
    }

    pub fn set_passcred(&self, on: bool) {
        self.inner.lock().passcred = on;
    }

    pub fn set_flag(&self, opt: i32, on: bool) {
        let bit = 1u32 << (opt as u32 & 31);
        if on {
            self.flags.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!bit, Ordering::Relaxed);
        }
    }

    pub fn flag(&self, opt: i32) -> bool {
        self.flags.load(Ordering::Relaxed) & (1u32 << (opt as u32 & 31)) != 0
    }

    pub fn listening(&self) -> bool {
        self.inner.lock().state == State::Listening
    }
}

/// What a receive took.
#[derive(Default)]
pub struct Received {
    pub len: usize,
    /// A record's whole length (MSG_TRUNC).
    pub total: usize,
    pub from: Option<UnixName>,
    pub creds: Option<Ucred>,
    pub files: Vec<Arc<File>>,
    /// A buffer with files ends a stream read.
    stop: bool,
    /// Senders whose charge went down: they may write again.
    woken: Vec<Arc<UnixSocket>>,
}

fn uncharge(skb: &Skb, got: &mut Received) {
    if let Some(s) = skb.sender.upgrade() {
        s.wmem.fetch_sub(skb.charge, Ordering::Relaxed);
        got.woken.push(s);
    }
}

/// Drops buffers and the files they carry, outside every lock.
fn drop_skbs(queue: VecDeque<Skb>) {
    let mut files = Vec::new();
    for mut skb in queue {
        if let Some(s) = skb.sender.upgrade() {
            s.wmem.fetch_sub(skb.charge, Ordering::Relaxed);
            s.wait.wake_all();
        }
        for f in &skb.files {
            note_inflight(f, -1);
        }
        files.append(&mut skb.files);
    }
    drop(files);
}

/// Socket files in queues, over every socket (`unix_tot_inflight`): the collector has
/// nothing to look for while it is 0.
static TOTAL_INFLIGHT: AtomicUsize = AtomicUsize::new(0);

/// A socket file's reference entering (+1) or leaving (-1) a queue (`unix_inflight`).
fn note_inflight(f: &Arc<File>, delta: isize) {
    if let crate::fs::file::FileKind::Socket(s) = &f.kind {
        if delta > 0 {
            s.inflight.fetch_add(1, Ordering::Relaxed);
            TOTAL_INFLIGHT.fetch_add(1, Ordering::Relaxed);
        } else {
            s.inflight.fetch_sub(1, Ordering::Relaxed);
            TOTAL_INFLIGHT.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The sockets whose files sit in `s`'s receive queue.
fn queued_sockets(s: &UnixSocket) -> Vec<*const UnixSocket> {
    let i = s.inner.lock();
    let mut v = Vec::new();
    for skb in &i.recv {
        for f in &skb.files {
            if let crate::fs::file::FileKind::Socket(t) = &f.kind {
                v.push(Arc::as_ptr(t));
            }
        }
    }
    v
}

/// The collector (net/unix/garbage.c's `unix_gc`): a socket whose every file reference
/// sits in socket queues, none of them reachable from a file a process holds, is part of
/// a cycle nothing can read any more; its queue is purged, which frees the cycle. Run at
/// every release of a socket's file while socket files are in flight (Linux's
/// `unix_release_sock` with `unix_tot_inflight`).
pub fn gc() {
    if TOTAL_INFLIGHT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let all: Vec<Arc<UnixSocket>> = TABLES.lock().all.iter().filter_map(Weak::upgrade).collect();
    // Candidates: sockets whose file is referenced only from queues.
    let refs = |s: &Arc<UnixSocket>| s.file.get().map_or(0, |w| w.strong_count());
    let candidates: Vec<&Arc<UnixSocket>> = all
        .iter()
        .filter(|s| {
            let n = s.inflight.load(Ordering::Relaxed);
            n > 0 && refs(s) == n
        })
        .collect();
    if candidates.is_empty() {
        return;
    }
    let is_candidate = |p: *const UnixSocket| candidates.iter().any(|c| core::ptr::eq(Arc::as_ptr(c), p));
    // References to each candidate from candidates' queues.
    let mut internal: BTreeMap<usize, usize> = BTreeMap::new();
    for c in &candidates {
        for t in queued_sockets(c) {
            if is_candidate(t) {
                *internal.entry(t as usize).or_default() += 1;
            }
        }
    }
    // Reachable: a candidate referenced from outside the candidates, and what its queue
    // holds, transitively.
    let mut reachable: Vec<*const UnixSocket> = candidates
        .iter()
        .filter(|c| internal.get(&(Arc::as_ptr(c) as usize)).copied().unwrap_or(0) < c.inflight.load(Ordering::Relaxed))
        .map(|c| Arc::as_ptr(c))
        .collect();
    let mut k = 0;
    while k < reachable.len() {
        let s = candidates.iter().find(|c| core::ptr::eq(Arc::as_ptr(c), reachable[k])).unwrap();
        for t in queued_sockets(s) {
            if is_candidate(t) && !reachable.contains(&t) {
                reachable.push(t);
            }
        }
        k += 1;
    }
    let dead: Vec<Arc<UnixSocket>> =
        candidates.iter().filter(|c| !reachable.contains(&Arc::as_ptr(c))).map(|c| (*c).clone()).collect();
    drop(candidates);
    drop(all);
    for s in dead {
        let queue = core::mem::take(&mut s.inner.lock().recv);
        drop_skbs(queue);
    }
}
