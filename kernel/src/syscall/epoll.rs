//! epoll system calls (Linux's fs/eventpoll.c): epoll_create, epoll_create1, epoll_ctl,
//! epoll_wait, epoll_pwait and epoll_pwait2. The instance is `fs/eventpoll.rs`.

use super::fs::get_file;
use super::{copy_to_user, ok, read_val, Args, SysResult};
use crate::errno::*;
use crate::fs::eventpoll::*;
use crate::fs::file::{File, FileKind, O_CLOEXEC, O_RDWR};
use alloc::string::String;
use alloc::sync::Arc;

/// `struct epoll_event`: packed on x86_64 (12 bytes).
const EVENT_SIZE: usize = 12;
/// The most events one wait may ask for (`EP_MAX_EVENTS`).
const EP_MAX_EVENTS: usize = i32::MAX as usize / EVENT_SIZE;

fn epoll_create(flags: u32) -> SysResult {
    if flags & !O_CLOEXEC != 0 {
        return Err(EINVAL);
    }
    crate::mm::fail::slab_may_fail()?;
    let file = File::new(FileKind::Epoll(Arc::new(EventPoll::new())), O_RDWR, String::from("anon_inode:[eventpoll]"));
    ok(super::fs::install(file, flags & O_CLOEXEC != 0)?)
}

pub fn sys_epoll_create(a: Args) -> SysResult {
    if a.i32(0) <= 0 {
        return Err(EINVAL);
    }
    epoll_create(0)
}

pub fn sys_epoll_create1(a: Args) -> SysResult {
    epoll_create(a.u32(0))
}

/// epoll_ctl(epfd, op, fd, event) (`do_epoll_ctl`).
pub fn sys_epoll_ctl(a: Args) -> SysResult {
    let (op, fd, event_va) = (a.i32(1), a.i32(2), a.u(3));
    let (mut events, mut data) = (0u32, 0u64);
    if op != EPOLL_CTL_DEL {
        let raw: [u8; EVENT_SIZE] = read_val(event_va)?;
        events = u32::from_ne_bytes(raw[..4].try_into().unwrap());
        data = u64::from_ne_bytes(raw[4..].try_into().unwrap());
    }
    let epf = get_file(a.i32(0))?;
    let target = get_file(fd)?;
    if !target.can_poll() {
        return Err(EPERM);
    }
    // EPOLLWAKEUP needs CAP_BLOCK_SUSPEND, and is dropped without it; no suspend exists here.
    events &= !EPOLLWAKEUP;
    let ep = epf.epoll().ok_or(EINVAL)?;
    if Arc::ptr_eq(&epf, &target) {
        return Err(EINVAL);
    }
    if op != EPOLL_CTL_DEL {
        check_exclusive(op, events, target.epoll().is_some())?;
    }
    if op == EPOLL_CTL_ADD {
        if let Some(inner) = target.epoll() {
            // `ep_loop_check`: adding an epoll file that reaches this one, or too deep a chain.
            if inner.reaches(ep, 1) {
                return Err(ELOOP);
            }
        }
    }
    ep.ctl(op, fd, &target, events, data)?;
    ok(0)
}

/// epoll_wait and its variants: up to `max` ready items into `events_va`, waiting until
/// `timeout_ns` (None: for ever).
fn do_epoll_wait(epfd: i32, events_va: u64, max: i32, timeout_ns: Option<u64>) -> SysResult {
    if max <= 0 || max as usize > EP_MAX_EVENTS {
        return Err(EINVAL);
    }
    let max = max as usize;
    // `access_ok` of the whole array: beyond user space is EFAULT before anything else.
    if events_va.checked_add((max * EVENT_SIZE) as u64).is_none_or(|end| end > crate::mm::address_space::TASK_SIZE) {
        return Err(EFAULT);
    }
    let f = get_file(epfd)?;
    let ep = f.epoll().ok_or(EINVAL)?.clone();
    let deadline = timeout_ns.map(|t| crate::arch::apic::uptime_ns().saturating_add(t));
    let ready = loop {
        let mut files = alloc::vec::Vec::new();
        crate::fs::select::watch_files(&f, &mut files, 0);
        let r = crate::fs::select::poll_wait(&files, deadline, || {
            let r = ep.harvest(max);
            (!r.is_empty()).then_some(r)
        })?;
        match r {
            Some(r) => break r,
            None => return ok(0),
        }
    };
    let mut out = alloc::vec::Vec::new();
    crate::mm::fail::try_reserve(&mut out, ready.len() * EVENT_SIZE)?;
    for r in &ready {
        out.extend_from_slice(&r.events.to_ne_bytes());
        out.extend_from_slice(&r.data.to_ne_bytes());
    }
    copy_to_user(events_va, &out)?;
    ok(ready.len())
}

fn timeout_ms(ms: i32) -> Option<u64> {
    (ms >= 0).then(|| ms as u64 * 1_000_000)
}

pub fn sys_epoll_wait(a: Args) -> SysResult {
    do_epoll_wait(a.i32(0), a.u(1), a.i32(2), timeout_ms(a.i32(3)))
}

pub fn sys_epoll_pwait(a: Args) -> SysResult {
    super::signal::with_temp_sigmask(a.u(4), a.usize(5), || {
        do_epoll_wait(a.i32(0), a.u(1), a.i32(2), timeout_ms(a.i32(3)))
    })
}

pub fn sys_epoll_pwait2(a: Args) -> SysResult {
    let timeout = if a.u(3) == 0 { None } else { Some(super::time::read_timespec(a.u(3))?) };
    super::signal::with_temp_sigmask(a.u(4), a.usize(5), || do_epoll_wait(a.i32(0), a.u(1), a.i32(2), timeout))
}
