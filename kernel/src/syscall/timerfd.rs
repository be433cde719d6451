//! timerfd system calls (Linux's fs/timerfd.c): timerfd_create, timerfd_settime and
//! timerfd_gettime, with `fs/timerfd.rs`; and signalfd and signalfd4 (fs/signalfd.c), with
//! `fs/signalfd.rs`.

use super::fs::get_file;
use super::time::{timespec_ns, to_itimerspec, Itimerspec};
use super::{ok, read_val, write_val, Args, SysResult};
use crate::errno::*;
use crate::fs::file::{File, FileKind, O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::fs::timerfd::*;
use crate::process::current;
use alloc::string::String;
use alloc::sync::Arc;

pub fn sys_timerfd_create(a: Args) -> SysResult {
    let (clock, flags) = (a.i32(0), a.u32(1));
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    let cred = current().process.creds.lock().clone();
    let t = TimerFd::new(clock, &cred)?;
    crate::mm::fail::slab_may_fail()?;
    let file =
        File::new(FileKind::TimerFd(Arc::new(t)), O_RDWR | (flags & O_NONBLOCK), String::from("anon_inode:[timerfd]"));
    ok(super::fs::install(file, flags & O_CLOEXEC != 0)?)
}

/// The timer behind `fd` (`timerfd_fget`): EBADF, or EINVAL for another kind of file.
fn timer_of(fd: i32) -> KResult<Arc<TimerFd>> {
    match &get_file(fd)?.kind {
        FileKind::TimerFd(t) => Ok(t.clone()),
        _ => Err(EINVAL),
    }
}

pub fn sys_timerfd_settime(a: Args) -> SysResult {
    let (fd, flags, new_va, old_va) = (a.i32(0), a.u32(1), a.u(2), a.u(3));
    let new: Itimerspec = read_val(new_va)?;
    let interval = timespec_ns(new[0], new[1]);
    let value = timespec_ns(new[2], new[3]);
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(EINVAL);
    }
    let (value, interval) = (value?, interval?);
    let t = timer_of(fd)?;
    let (old_value, old_interval) = t.settime(flags, value, interval);
    if old_va != 0 {
        write_val(old_va, &to_itimerspec(old_value, old_interval))?;
    }
    ok(0)
}

pub fn sys_timerfd_gettime(a: Args) -> SysResult {
    let t = timer_of(a.i32(0))?;
    let (value, interval) = t.gettime();
    write_val(a.u(1), &to_itimerspec(value, interval))?;
    ok(0)
}

/// signalfd4(fd, mask, sizemask, flags) (`do_signalfd4`): a new signalfd for fd -1, else a
/// new mask for the signalfd `fd`.
pub fn sys_signalfd4(fd: i32, mask_va: u64, sizemask: usize, flags: u32) -> SysResult {
    use crate::fs::signalfd::SignalFd;
    if sizemask != 8 {
        return Err(EINVAL);
    }
    let mask: u64 = read_val(mask_va)?;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    if fd != -1 {
        return match &get_file(fd)?.kind {
            FileKind::SignalFd(s) => {
                s.set_mask(mask);
                ok(fd as usize)
            }
            _ => Err(EINVAL),
        };
    }
    crate::mm::fail::slab_may_fail()?;
    let file = File::new(
        FileKind::SignalFd(Arc::new(SignalFd::new(mask))),
        O_RDWR | (flags & O_NONBLOCK),
        String::from("anon_inode:[signalfd]"),
    );
    ok(super::fs::install(file, flags & O_CLOEXEC != 0)?)
}
