//! Pipes (Linux's fs/pipe.c): a 64 KiB ring, blocking and non-blocking
//! ends, EOF when every writer is gone, EPIPE+SIGPIPE when every reader is.

use super::vfs::{Metadata, POLLERR, POLLHUP, POLLIN, POLLOUT, S_IFIFO};
use crate::errno::*;
use crate::process::wait_queue::WaitQueue;
use crate::sync::SpinLock as Mutex;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

pub const PIPE_SIZE: usize = 65536;
/// Writes of at most this many bytes are atomic.
pub const PIPE_BUF: usize = 4096;

pub struct PipeInner {
    buf: VecDeque<u8>,
    pub readers: usize,
    pub writers: usize,
}

pub struct Pipe {
    _live: crate::leak::Live,
    pub inner: Mutex<PipeInner, crate::sync::order::PipeInner>,
    readable: WaitQueue,
    writable: WaitQueue,
    pub ino: u64,
    /// The creator's fsuid and fsgid: the owner of the pipe's inode (`get_pipe_inode`).
    owner: (u32, u32),
}

impl Pipe {
    /// A pipe with one reader and one writer (pipe2's two ends), owned by `uid`, `gid`.
    pub fn new(uid: u32, gid: u32) -> Pipe {
        Pipe {
            _live: crate::leak::INODES.live(),
            inner: Mutex::new(PipeInner { buf: VecDeque::new(), readers: 1, writers: 1 }),
            readable: WaitQueue::new(),
            writable: WaitQueue::new(),
            ino: super::tmpfs::next_ino(),
            owner: (uid, gid),
        }
    }

    /// The pipe's inode as stat shows it: pipefs, mode 0600 FIFO, its creator's.
    pub fn metadata(&self) -> Metadata {
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
                let room = PIPE_SIZE - p.buf.len();
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

    pub fn poll(&self, read: bool, write: bool) -> u16 {
        let p = self.inner.lock();
        let mut mask = 0;
        if read {
            mask |= (if p.buf.is_empty() { 0 } else { POLLIN }) | if p.writers == 0 { POLLHUP } else { 0 };
        }
        if write {
            mask |= (if p.buf.len() < PIPE_SIZE { POLLOUT } else { 0 }) | if p.readers == 0 { POLLERR } else { 0 };
        }
        mask
    }

    /// The last reference to an open file of the pipe went: its ends close.
    pub fn close_ends(&self, read: bool, write: bool) {
        let mut p = self.inner.lock();
        p.readers -= read as usize;
        p.writers -= write as usize;
        drop(p);
        self.readable.wake_all();
        self.writable.wake_all();
    }

    pub fn available(&self) -> usize {
        self.inner.lock().buf.len()
    }
}
