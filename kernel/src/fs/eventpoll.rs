//! epoll (Linux's fs/eventpoll.c, 6.1): an epoll file holds an interest list of (file,
//! descriptor) items, each with the events it asks for and its user data.
//!
//! Readiness is not pushed by callbacks as in Linux: `epoll_wait` asks each item's file
//! (`File::poll`) and sleeps on every wait queue those files wake when their state changes
//! (`File::wait_queues`, the multi-queue wait of poll and select), so a change to any
//! watched file wakes it. Edge-triggered items are reported when a watched queue has been
//! woken since the item was last reported (each `WaitQueue` counts its wake-ups), which is
//! when Linux's callback would have queued it again; EPOLLONESHOT disarms an item once it
//! is reported, until EPOLL_CTL_MOD. An item lives as long as its open file description
//! (Linux's `eventpoll_release` on the last close): the list holds it weakly.

use super::file::File;
use super::vfs::POLLIN;
use crate::errno::*;
use crate::sync::{order, SpinLock};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

pub const EPOLL_CTL_ADD: i32 = 1;
pub const EPOLL_CTL_DEL: i32 = 2;
pub const EPOLL_CTL_MOD: i32 = 3;
pub const EPOLLIN: u32 = 0x001;
pub const EPOLLOUT: u32 = 0x004;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// The flags an EPOLLEXCLUSIVE item may also have (`EPOLLEXCLUSIVE_OK_BITS`).
const EXCLUSIVE_OK: u32 = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// What an item reports beyond its poll bits: none of the flags.
const EP_PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// Epoll files inside epoll files, at most this deep (`EP_MAX_NESTS`).
pub const EP_MAX_NESTS: usize = 4;

struct EpItem {
    fd: i32,
    file: Weak<File>,
    events: u32,
    data: u64,
    /// The watched queues' wake-up count when this item was last reported (edge
    /// triggering); `u64::MAX` until then, so a file ready when added is reported.
    seen: u64,
    /// False once an EPOLLONESHOT item has been reported.
    armed: bool,
}

/// An epoll instance (`struct eventpoll`).
pub struct EventPoll {
    _live: crate::leak::Live,
    items: SpinLock<Vec<EpItem>, order::EpollItems>,
    /// The anonymous inode's number, for fstat.
    pub ino: u64,
}

impl EpItem {
    /// What the item reports for its file's poll bits `revents` and queue wake-ups `count`:
    /// its events that are ready, if it is armed and, edge-triggered, woken since its last
    /// report; 0 otherwise.
    fn reportable(&self, revents: u32, count: u64) -> u32 {
        let r = revents & self.events & !EP_PRIVATE_BITS;
        if !self.armed || (self.events & EPOLLET != 0 && self.seen == count) {
            0
        } else {
            r
        }
    }
}

/// One ready item as `epoll_wait` copies it out (`struct epoll_event`, packed on x86_64).
#[derive(Clone, Copy)]
pub struct Ready {
    pub events: u32,
    pub data: u64,
}

impl EventPoll {
    pub fn new() -> EventPoll {
        EventPoll { _live: crate::leak::INODES.live(), items: SpinLock::new(Vec::new()), ino: super::tmpfs::next_ino() }
    }

    fn find(items: &[EpItem], file: &Arc<File>, fd: i32) -> Option<usize> {
        items.iter().position(|i| i.fd == fd && i.file.as_ptr() == Arc::as_ptr(file))
    }

    /// `do_epoll_ctl` once the descriptors are checked.
    pub fn ctl(&self, op: i32, fd: i32, file: &Arc<File>, events: u32, data: u64) -> KResult<()> {
        let mut items = self.items.lock();
        items.retain(|i| i.file.strong_count() > 0);
        let at = Self::find(&items, file, fd);
        match op {
            EPOLL_CTL_ADD => {
                if at.is_some() {
                    return Err(EEXIST);
                }
                crate::mm::fail::try_reserve(&mut items, 1)?;
                items.push(EpItem {
                    fd,
                    file: Arc::downgrade(file),
                    events: events | EPOLLERR | EPOLLHUP,
                    data,
                    seen: u64::MAX,
                    armed: true,
                });
            }
            EPOLL_CTL_DEL => {
                items.remove(at.ok_or(ENOENT)?);
            }
            EPOLL_CTL_MOD => {
                let item = &mut items[at.ok_or(ENOENT)?];
                if item.events & EPOLLEXCLUSIVE != 0 {
                    return Err(EINVAL);
                }
                item.events = events | EPOLLERR | EPOLLHUP;
                item.data = data;
                item.seen = u64::MAX;
                item.armed = true;
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// The live items' files, for the wait and for nesting.
    pub fn files(&self) -> Vec<Arc<File>> {
        self.items.lock().iter().filter_map(|i| i.file.upgrade()).collect()
    }

    /// Whether `target` is this epoll file or reachable through its items (a loop), or
    /// the chain below would be deeper than EP_MAX_NESTS.
    pub fn reaches(&self, target: &EventPoll, depth: usize) -> bool {
        if core::ptr::eq(self, target) || depth >= EP_MAX_NESTS {
            return true;
        }
        self.files().iter().any(|f| f.epoll().is_some_and(|e| e.reaches(target, depth + 1)))
    }

    /// The ready items, at most `max`, reported as `ep_send_events` reports them:
    /// level-triggered ones whenever ready, edge-triggered ones once per wake-up of their
    /// files' queues, one-shot ones once until re-armed.
    pub fn harvest(&self, max: usize) -> Vec<Ready> {
        // The files are polled out of the lock (their poll takes their own locks), and
        // dropped after it (a last reference's drop may take others).
        let snapshot: Vec<(i32, Arc<File>)> =
            self.items.lock().iter().filter(|i| i.armed).filter_map(|i| Some((i.fd, i.file.upgrade()?))).collect();
        let polled: Vec<(i32, *const File, u32, u64)> =
            snapshot.iter().map(|(fd, f)| (*fd, Arc::as_ptr(f), f.poll() as u32, f.wake_count())).collect();
        let mut out = Vec::new();
        let mut items = self.items.lock();
        for (fd, file, revents, count) in polled {
            if out.len() >= max {
                break;
            }
            let Some(item) = items.iter_mut().find(|i| i.fd == fd && i.file.as_ptr() == file) else { continue };
            let r = item.reportable(revents, count);
            if r == 0 {
                continue;
            }
            item.seen = count;
            if item.events & EPOLLONESHOT != 0 {
                item.armed = false;
            }
            out.push(Ready { events: r, data: item.data });
        }
        drop(items);
        drop(snapshot);
        out
    }

    /// `ep_eventpoll_poll`: readable when an item would be reported (without reporting it).
    pub fn poll(&self) -> u16 {
        // A copy of each armed item (its file polled out of the lock).
        let items: Vec<(EpItem, Arc<File>)> = self
            .items
            .lock()
            .iter()
            .filter(|i| i.armed)
            .filter_map(|i| {
                let f = i.file.upgrade()?;
                Some((EpItem { file: i.file.clone(), ..*i }, f))
            })
            .collect();
        let ready = items.iter().any(|(item, f)| item.reportable(f.poll() as u32, f.wake_count()) != 0);
        if ready {
            POLLIN
        } else {
            0
        }
    }
}

/// The checks of `epoll_ctl` on the flags of an event (`ep_op_has_event`).
pub fn check_exclusive(op: i32, events: u32, target_is_epoll: bool) -> KResult<()> {
    if events & EPOLLEXCLUSIVE != 0 {
        if op == EPOLL_CTL_MOD {
            return Err(EINVAL);
        }
        if op == EPOLL_CTL_ADD && (target_is_epoll || events & !EXCLUSIVE_OK != 0) {
            return Err(EINVAL);
        }
    }
    Ok(())
}
