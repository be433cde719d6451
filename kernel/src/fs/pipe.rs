//! Pipes and FIFOs (Linux's fs/pipe.c): a 64 KiB ring, blocking and non-blocking
//! ends, EOF when every writer is gone, EPIPE+SIGPIPE when every reader is. A FIFO is a
//! tmpfs inode whose opens share one pipe while any is open (`fifo_open`).

use super::vfs::{Inode, Metadata, POLLERR, POLLHUP, POLLIN, POLLOUT, S_IFIFO};
use crate::errno::*;
use crate::process::wait_queue::WaitQueue;
use crate::sync::SpinLock as Mutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A new pipe's capacity (Linux's PIPE_DEF_BUFFERS pages).
pub const PIPE_SIZE: usize = 65536;
/// The largest capacity F_SETPIPE_SZ gives without CAP_SYS_RESOURCE
/// (`/proc/sys/fs/pipe-max-size`).
pub const PIPE_MAX_SIZE: usize = 1 << 20;
/// Writes of at most this many bytes are atomic.
pub const PIPE_BUF: usize = 4096;

pub struct PipeInner {
    buf: VecDeque<u8>,
    pub readers: usize,
    pub writers: usize,
    /// The capacity in bytes, whole pages (`max_usage` pages).
    size: usize,
    /// Opens for reading and for writing so far (`r_counter`, `w_counter`): an open
    /// waiting for its partner sees one come even if it has gone again.
    r_counter: u64,
    w_counter: u64,
}

pub struct Pipe {
    _live: crate::leak::Live,
    pub inner: Mutex<PipeInner, crate::sync::order::PipeInner>,
    readable: WaitQueue,
    writable: WaitQueue,
    pub ino: u64,
    /// The creator's fsuid and fsgid: the owner of the pipe's inode (`get_pipe_inode`).
    owner: (u32, u32),
    /// The FIFO's inode (Linux's `i_pipe` points back from it), which stat shows; None
    /// for pipe2's pipes, which live in pipefs.
    fifo: Option<Arc<dyn Inode>>,
}

impl Pipe {
    /// A pipe with one reader and one writer (pipe2's two ends), owned by `uid`, `gid`.
    pub fn new(uid: u32, gid: u32) -> Pipe {
        Pipe::with_ends(1, super::tmpfs::next_ino(), (uid, gid), None)
    }

    /// The pipe of FIFO `inode`, with no ends open yet.
    pub fn new_fifo(inode: Arc<dyn Inode>) -> Pipe {
        let m = inode.metadata();
        Pipe::with_ends(0, m.ino, (m.uid, m.gid), Some(inode))
    }

    /// A pipe with `ends` readers and as many writers, each counted as an open so far.
    fn with_ends(ends: usize, ino: u64, owner: (u32, u32), fifo: Option<Arc<dyn Inode>>) -> Pipe {
        Pipe {
            _live: crate::leak::INODES.live(),
            inner: Mutex::new(PipeInner {
                buf: VecDeque::new(),
                readers: ends,
                writers: ends,
                size: PIPE_SIZE,
                r_counter: ends as u64,
                w_counter: ends as u64,
            }),
            readable: WaitQueue::new(),
            writable: WaitQueue::new(),
            ino,
            owner,
            fifo,
        }
    }

    /// The FIFO's inode, if the pipe is one.
    pub fn fifo(&self) -> Option<&Arc<dyn Inode>> {
        self.fifo.as_ref()
    }

    /// Opens an end of a FIFO (`fifo_open`), returning the open file's `f_version`:
    /// - for reading, it waits for a writer unless one is there or O_NONBLOCK is given;
    ///   a non-blocking reader remembers how many writers it has seen, so that poll does
    ///   not report POLLHUP before one comes;
    /// - for writing, it waits for a reader, or fails with ENXIO under O_NONBLOCK;
    /// - for both, it never waits (the opener can talk to itself);
    /// - for neither (access mode 3), EINVAL.
    ///
    /// An interrupted wait takes its end back and restarts (ERESTARTSYS).
    pub fn fifo_open(&self, read: bool, write: bool, nonblock: bool) -> KResult<u64> {
        let mut p = self.inner.lock();
        let wait_for = match (read, write) {
            (true, false) => {
                p.r_counter += 1;
                p.readers += 1;
                if p.writers == 0 && nonblock {
                    return Ok(p.w_counter);
                }
                (p.writers == 0).then_some((p.w_counter, true))
            }
            (false, true) => {
                if nonblock && p.readers == 0 {
                    return Err(ENXIO);
                }
                p.w_counter += 1;
                p.writers += 1;
                (p.readers == 0).then_some((p.r_counter, false))
            }
            (true, true) => {
                p.readers += 1;
                p.writers += 1;
                p.r_counter += 1;
                p.w_counter += 1;
                None
            }
            (false, false) => return Err(EINVAL),
        };
        drop(p);
        // wake_up_partner: an opener waiting for this end goes on.
        self.readable.wake_all();
        let Some((seen, reader)) = wait_for else { return Ok(0) };
        // wait_for_partner: until the other side's counter moves.
        let r = self.readable.wait_until(true, || {
            let p = self.inner.lock();
            let now = if reader { p.w_counter } else { p.r_counter };
            (now != seen).then_some(())
        });
        if let Err(e) = r {
            self.close_ends(reader, !reader);
            return Err(e);
        }
        Ok(0)
    }

    /// The pipe's inode as stat shows it: pipefs, mode 0600 FIFO, its creator's; a
    /// FIFO's own inode.
    pub fn metadata(&self) -> Metadata {
        if let Some(inode) = &self.fifo {
            return inode.metadata();
        }
        Metadata {
            dev: 0xc,
            ino: self.ino,
            mode: S_IFIFO | 0o600,
            nlink: 1,
            uid: self.owner.0,
            gid: self.owner.1,
            blksize: 4096,
            ..Default::default()
        }
    }

    /// Another open of the pipe (through /proc/PID/fd/N) for reading, writing or both:
    /// `fifo_open` for a pipefs inode, which counts the new ends and never waits for a
    /// partner.
    pub fn open_ends(&self, read: bool, write: bool) {
        let mut p = self.inner.lock();
        p.readers += read as usize;
        p.writers += write as usize;
    }

    pub fn read(&self, out: &mut [u8], nonblock: bool) -> KResult<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let n = self.readable.wait_until(true, || {
            let mut p = self.inner.lock();
            if p.buf.is_empty() {
                if p.writers == 0 {
                    return Some(Ok(0));
                }
                return nonblock.then_some(Err(EAGAIN));
            }
            let n = out.len().min(p.buf.len());
            for (i, b) in p.buf.drain(..n).enumerate() {
                out[i] = b;
            }
            Some(Ok(n))
        })??;
        self.writable.wake_all();
        Ok(n)
    }

    pub fn write(&self, data: &[u8], nonblock: bool) -> KResult<usize> {
        let mut written = 0;
        while written < data.len() {
            let r = self.writable.wait_until(true, || {
                let mut p = self.inner.lock();
                if p.readers == 0 {
                    return Some(Err(EPIPE));
                }
                let room = p.size.saturating_sub(p.buf.len());
                let left = data.len() - written;
                // Small writes go in whole or wait (PIPE_BUF atomicity).
                let need = if left <= PIPE_BUF { left } else { 1 };
                if room < need {
                    return nonblock.then_some(Err(EAGAIN));
                }
                let n = room.min(left);
                // Linux's pipe_write fails with ENOMEM when it cannot get a buffer page; the
                // buffer is kernel heap a process grows, so a failed growth is ENOMEM, not a panic.
                if crate::mm::fail::fallible(|| p.buf.try_reserve(n)).is_err() {
                    return Some(Err(ENOMEM));
                }
                p.buf.extend(&data[written..written + n]);
                Some(Ok(n))
            });
            match r {
                Ok(Ok(n)) => {
                    written += n;
                    self.readable.wake_all();
                }
                Ok(Err(EPIPE)) => {
                    crate::process::signal::send_to_current_thread(crate::process::signal::SIGPIPE);
                    return if written > 0 { Ok(written) } else { Err(EPIPE) };
                }
                Ok(Err(e)) | Err(e) => return if written > 0 { Ok(written) } else { Err(e) },
            }
        }
        Ok(written)
    }

    /// `pipe_poll` for an open file that reads (`read`), writes (`write`) or both.
    /// The queues an end's readiness changes on: the reader's (data, the last writer
    /// gone) and the writer's (room, the last reader gone).
    pub fn wait_queues<'a>(&'a self, read: bool, write: bool, out: &mut Vec<&'a WaitQueue>) {
        if read {
            out.push(&self.readable);
        }
        if write {
            out.push(&self.writable);
        }
    }

    /// `version` is the open file's `f_version`: a FIFO's reader that opened with no
    /// writer sees no POLLHUP until a writer has come.
    pub fn poll(&self, read: bool, write: bool, version: u64) -> u16 {
        let p = self.inner.lock();
        let mut mask = 0;
        if read {
            let hup = p.writers == 0 && version != p.w_counter;
            mask |= (if p.buf.is_empty() { 0 } else { POLLIN }) | if hup { POLLHUP } else { 0 };
        }
        if write {
            mask |= (if p.buf.len() < p.size { POLLOUT } else { 0 }) | if p.readers == 0 { POLLERR } else { 0 };
        }
        mask
    }

    /// The last reference to an open file of the pipe went: its ends close. A FIFO
    /// that nobody has open any more drops what it held (`put_pipe_info` frees it).
    pub fn close_ends(&self, read: bool, write: bool) {
        let mut p = self.inner.lock();
        p.readers -= read as usize;
        p.writers -= write as usize;
        if self.fifo.is_some() && p.readers == 0 && p.writers == 0 {
            p.buf = VecDeque::new();
        }
        drop(p);
        self.readable.wake_all();
        self.writable.wake_all();
    }

    pub fn available(&self) -> usize {
        self.inner.lock().buf.len()
    }

    /// The capacity (F_GETPIPE_SZ).
    pub fn size(&self) -> usize {
        self.inner.lock().size
    }

    /// F_SETPIPE_SZ (`pipe_set_size`): the capacity becomes `arg` rounded up to a power of
    /// two pages (at least one page); above `PIPE_MAX_SIZE` only with CAP_SYS_RESOURCE
    /// (EPERM), and never below the pages the data holds (EBUSY). Returns the new size.
    pub fn set_size(&self, arg: u64, privileged: bool) -> KResult<usize> {
        const PAGE: u64 = crate::mm::PAGE_SIZE;
        if arg > 1 << 31 {
            return Err(EINVAL);
        }
        let size = arg.max(PAGE).next_power_of_two() as usize;
        let mut p = self.inner.lock();
        if size > p.size && size > PIPE_MAX_SIZE && !privileged {
            return Err(EPERM);
        }
        if p.buf.len().div_ceil(PAGE as usize) > size / PAGE as usize {
            return Err(EBUSY);
        }
        p.size = size;
        drop(p);
        self.writable.wake_all();
        Ok(size)
    }
}
