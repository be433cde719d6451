//! Sleeping until files are ready (Linux's fs/select.c: `poll_wait` into a poll table and
//! `poll_schedule_timeout`), for poll, select and epoll_wait: the waiter sleeps on every
//! wait queue the watched files wake when their readiness may change, so a write to a
//! pipe, a close of its other end or an eventfd's new count wakes it at once. A file
//! whose readiness has no queue (the console, read from the serial port) is re-checked
//! every tick.

use super::file::File;
use crate::errno::*;
use crate::process::wait_queue::{wait_many, WaitQueue};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The files a wait on `f` watches besides `f`: for an epoll file the files of its items,
/// down to `EP_MAX_NESTS` levels of epoll files; none for any other file.
pub fn watch_files(f: &File, out: &mut Vec<Arc<File>>, depth: usize) {
    let Some(ep) = f.epoll().filter(|_| depth < super::eventpoll::EP_MAX_NESTS) else { return };
    for item in ep.files() {
        if item.epoll().is_some() {
            watch_files(&item, out, depth + 1);
        } else {
            out.push(item);
        }
    }
}

/// Waits until `cond` returns Some while watching `files` (each as `watch_files` gives
/// it), or until `deadline` (ns since boot): Ok(None) then. A signal ends the wait with
/// ERESTARTNOHAND, which a handler turns into EINTR.
pub fn poll_wait<R>(
    files: &[Arc<File>],
    deadline: Option<u64>,
    mut cond: impl FnMut() -> Option<R>,
) -> KResult<Option<R>> {
    let mut queues: Vec<&WaitQueue> = Vec::new();
    for f in files {
        f.wait_queues(&mut queues);
    }
    let tick = files.iter().any(|f| f.polled_by_tick());
    loop {
        let now = crate::arch::apic::uptime_ns();
        let step = tick.then(|| now + 1_000_000_000 / crate::arch::apic::TICK_HZ);
        let d = match (deadline, step) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match wait_many(&queues, d, &mut cond) {
            Ok(r) => return Ok(Some(r)),
            Err(ETIMEDOUT) => {
                if deadline.is_some_and(|dl| crate::arch::apic::uptime_ns() >= dl) {
                    return Ok(None);
                }
            }
            Err(ERESTARTSYS) => return Err(ERESTARTNOHAND),
            Err(e) => return Err(e),
        }
    }
}

/// The files behind the descriptors `fds` names now (closed ones left out), expanded as
/// `watch_files` does, with the descriptors' own files.
pub fn files_of(fds: impl Iterator<Item = i32>) -> Vec<Arc<File>> {
    let table = crate::process::current().files();
    let mut out = Vec::new();
    for fd in fds {
        let f = table.lock().get(fd);
        if let Ok(f) = f {
            watch_files(&f, &mut out, 0);
            out.push(f);
        }
    }
    out
}
