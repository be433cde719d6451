//! Restartable sequences (Linux's kernel/rseq.c, 6.1): a thread registers a `struct rseq`
//! in its memory. On the way back to user mode after the thread was switched out or got a
//! signal, the kernel writes the CPU it runs on into `cpu_id_start` and `cpu_id`, and if
//! the thread was inside the critical section `rseq_cs` describes, moves it to the
//! section's abort handler (`__rseq_handle_notify_resume`). glibc registers one per thread
//! and reads `sched_getcpu` from it.
//!
//! Only the thread itself registers and unregisters; the scheduler sets the event bits of
//! the thread it switches out (`rseq_preempt`, which also covers migration), so plain
//! atomics are enough.

use super::task::Task;
use crate::arch::trap::TrapFrame;
use crate::errno::*;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

/// `sizeof(struct rseq)` and its alignment in 6.1 (`ORIG_RSEQ_SIZE`).
pub const RSEQ_SIZE: u32 = 32;
pub const RSEQ_FLAG_UNREGISTER: i32 = 1;
const RSEQ_CPU_ID_UNINITIALIZED: i32 = -1;
/// `struct rseq` field offsets.
const OFF_CPU_ID_START: u64 = 0;
const OFF_CPU_ID: u64 = 4;
const OFF_RSEQ_CS: u64 = 8;
const OFF_FLAGS: u64 = 16;
/// `rseq_event_mask` bits.
const EVENT_PREEMPT: u32 = 1;
const EVENT_SIGNAL: u32 = 2;
/// The highest user address plus one (`TASK_SIZE_MAX`).
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// A thread's registration (`task_struct::rseq`, `rseq_len`, `rseq_sig`,
/// `rseq_event_mask`) and its TIF_NOTIFY_RESUME.
#[derive(Default)]
pub struct Rseq {
    /// The registered `struct rseq`, 0 when none.
    addr: AtomicU64,
    len: AtomicU32,
    sig: AtomicU32,
    event_mask: AtomicU32,
    notify: AtomicBool,
}

/// `struct rseq_cs`: a critical section and its abort handler.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RseqCs {
    version: u32,
    flags: u32,
    start_ip: u64,
    post_commit_offset: u64,
    abort_ip: u64,
}
crate::impl_pod!(RseqCs);

impl Rseq {
    fn registered(&self) -> bool {
        self.addr.load(Relaxed) != 0
    }

    /// `rseq_preempt`: the thread is switched out.
    pub fn preempt(&self) {
        if self.registered() {
            self.event_mask.fetch_or(EVENT_PREEMPT, Relaxed);
            self.notify.store(true, Relaxed);
        }
    }

    /// `rseq_fork`: a new thread (CLONE_VM) starts unregistered, a new process keeps the
    /// parent's registration.
    pub fn fork(&self, parent: &Rseq, clone_vm: bool) {
        if clone_vm {
            return;
        }
        self.addr.store(parent.addr.load(Relaxed), Relaxed);
        self.len.store(parent.len.load(Relaxed), Relaxed);
        self.sig.store(parent.sig.load(Relaxed), Relaxed);
        self.event_mask.store(parent.event_mask.load(Relaxed), Relaxed);
        self.notify.store(parent.notify.load(Relaxed), Relaxed);
    }

    /// `rseq_execve`: the new image has no registration.
    pub fn execve(&self) {
        self.addr.store(0, Relaxed);
        self.len.store(0, Relaxed);
        self.sig.store(0, Relaxed);
        self.event_mask.store(0, Relaxed);
        self.notify.store(false, Relaxed);
    }

    /// Takes the pending notification (TIF_NOTIFY_RESUME).
    pub fn take_notify(&self) -> bool {
        self.notify.swap(false, Relaxed)
    }

    /// Whether a notification is pending.
    pub fn notify_pending(&self) -> bool {
        self.notify.load(Relaxed)
    }
}

fn write_u32(addr: u64, v: u32) -> KResult<()> {
    crate::syscall::write_val(addr, &v)
}

/// rseq(rseq, rseq_len, flags, sig).
pub fn sys_rseq(t: &Task, addr: u64, len: u32, flags: i32, sig: u32) -> KResult<()> {
    let r = &t.rseq;
    if flags & RSEQ_FLAG_UNREGISTER != 0 {
        if flags & !RSEQ_FLAG_UNREGISTER != 0 {
            return Err(EINVAL);
        }
        if r.addr.load(Relaxed) != addr || r.len.load(Relaxed) != len {
            return Err(EINVAL);
        }
        if r.sig.load(Relaxed) != sig {
            return Err(EPERM);
        }
        // `rseq_reset_rseq_cpu_id`.
        write_u32(addr + OFF_CPU_ID_START, 0)?;
        write_u32(addr + OFF_CPU_ID, RSEQ_CPU_ID_UNINITIALIZED as u32)?;
        r.execve();
        return Ok(());
    }
    if flags != 0 {
        return Err(EINVAL);
    }
    if r.registered() {
        if r.addr.load(Relaxed) != addr || r.len.load(Relaxed) != len {
            return Err(EINVAL);
        }
        if r.sig.load(Relaxed) != sig {
            return Err(EPERM);
        }
        return Err(EBUSY);
    }
    if addr % RSEQ_SIZE as u64 != 0 || len != RSEQ_SIZE {
        return Err(EINVAL);
    }
    if addr.checked_add(len as u64).is_none_or(|end| end > TASK_SIZE) {
        return Err(EFAULT);
    }
    r.len.store(len, Relaxed);
    r.sig.store(sig, Relaxed);
    r.event_mask.store(0, Relaxed);
    r.addr.store(addr, Relaxed);
    // The CPU fields are written on the way out of this call.
    r.notify.store(true, Relaxed);
    Ok(())
}

/// `rseq_get_rseq_cs`: the critical section the thread names, checked; all zero if none.
fn get_rseq_cs(r: &Rseq, addr: u64) -> KResult<RseqCs> {
    let ptr: u64 = crate::syscall::read_val(addr + OFF_RSEQ_CS)?;
    if ptr == 0 {
        return Ok(RseqCs::default());
    }
    if ptr >= TASK_SIZE {
        return Err(EINVAL);
    }
    let cs: RseqCs = crate::syscall::read_val(ptr)?;
    let end = cs.start_ip.wrapping_add(cs.post_commit_offset);
    if cs.start_ip >= TASK_SIZE || end >= TASK_SIZE || cs.abort_ip >= TASK_SIZE || cs.version > 0 {
        return Err(EINVAL);
    }
    if end < cs.start_ip {
        return Err(EINVAL);
    }
    // The abort handler may not lie inside the section.
    if cs.abort_ip.wrapping_sub(cs.start_ip) < cs.post_commit_offset {
        return Err(EINVAL);
    }
    // The four bytes before the handler must be the registered signature.
    let sig: u32 = crate::syscall::read_val(cs.abort_ip - 4)?;
    if sig != r.sig.load(Relaxed) {
        log::debug!("rseq: signature {:#x} before abort_ip {:#x} is not the registered one", sig, cs.abort_ip);
        return Err(EINVAL);
    }
    Ok(cs)
}

/// `rseq_ip_fixup`: a thread inside its critical section after an event goes to the
/// abort handler, and `rseq_cs` is cleared either way once it is outside one.
fn ip_fixup(r: &Rseq, addr: u64, frame: &mut TrapFrame) -> KResult<()> {
    let cs = get_rseq_cs(r, addr)?;
    let in_cs = frame.rip.wrapping_sub(cs.start_ip) < cs.post_commit_offset;
    if !in_cs {
        return crate::syscall::write_val(addr + OFF_RSEQ_CS, &0u64);
    }
    // `rseq_need_restart`: the deprecated no-restart flags and unknown ones are refused,
    // in the section and in the thread's `flags`.
    let thread_flags: u32 = crate::syscall::read_val(addr + OFF_FLAGS)?;
    if cs.flags != 0 || thread_flags != 0 {
        return Err(EINVAL);
    }
    if r.event_mask.swap(0, Relaxed) == 0 {
        return Ok(());
    }
    crate::syscall::write_val(addr + OFF_RSEQ_CS, &0u64)?;
    frame.rip = cs.abort_ip;
    Ok(())
}

/// `__rseq_handle_notify_resume`: the fixup, then the CPU fields. An error means the
/// thread's rseq memory or section is bad: the caller sends SIGSEGV (`force_sigsegv`).
pub fn handle_notify_resume(t: &Task, frame: &mut TrapFrame) -> KResult<()> {
    let r = &t.rseq;
    let addr = r.addr.load(Relaxed);
    if addr == 0 {
        return Ok(());
    }
    ip_fixup(r, addr, frame)?;
    // `rseq_update_cpu_id`.
    let cpu = crate::arch::percpu::cpu_id() as u32;
    write_u32(addr + OFF_CPU_ID_START, cpu)?;
    write_u32(addr + OFF_CPU_ID, cpu)
}

/// `rseq_signal_deliver`: a handler is about to run; a thread in its critical section
/// leaves it first, so the signal frame returns to the abort handler.
pub fn signal_deliver(t: &Task, frame: &mut TrapFrame) -> KResult<()> {
    if !t.rseq.registered() {
        return Ok(());
    }
    t.rseq.event_mask.fetch_or(EVENT_SIGNAL, Relaxed);
    handle_notify_resume(t, frame)
}
