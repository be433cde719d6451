//! Kernel context switch and per-task FPU state.
//!
//! `switch_context` saves the callee-saved registers on the old task's
//! kernel stack, stores its RSP, loads the new task's and pops. A task that
//! has never run starts with a stack prepared by [`prepare_new_task`]: a
//! switch frame whose return address is `task_first_entry`, right below the
//! [`TrapFrame`] it will enter user mode with.

use super::trap::TrapFrame;

core::arch::global_asm!(
    r#"
    .section .text.switch_context, "ax"
    .global switch_context
    /* switch_context(save_rsp: *mut u64 [rdi], next_rsp: u64 [rsi]) */
switch_context:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    mov %rsi, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

    .global task_first_entry
task_first_entry:
    /* rsp points at the new task's TrapFrame */
    mov %rsp, %rdi
    call task_started
    jmp trap_return
    "#,
    options(att_syntax)
);

extern "C" {
    fn switch_context(save_rsp: *mut u64, next_rsp: u64);
    fn task_first_entry();
}

/// A new task's first code (Linux's `ret_from_fork`): it finishes the switch, then takes the
/// same way out as every syscall, so a task born into a dying process or with a signal
/// already pending exits or takes it before its first user instruction.
#[no_mangle]
extern "C" fn task_started(frame: *mut TrapFrame) {
    crate::process::sched::schedule_tail();
    // SAFETY: `task_first_entry` passes its RSP, which points at the TrapFrame that
    // `prepare_new_task` wrote at the top of this task's own stack; nothing else refers to it.
    let frame = unsafe { &mut *frame };
    crate::process::exit_to_user_mode(frame);
}

/// Switches from the running context (its RSP is stored into `*save_rsp`) to
/// the one whose saved RSP is `next_rsp`. Returns when something switches back.
///
/// # Safety
/// `save_rsp` must stay valid until the old task is resumed; `next_rsp` must
/// come from a previous `switch` or from `prepare_new_task`, on a stack that
/// is still allocated.
pub unsafe fn switch(save_rsp: *mut u64, next_rsp: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { switch_context(save_rsp, next_rsp) }
}

/// Writes the initial frames of a new task at the top of its kernel stack
/// (`stack_top` is 16-byte aligned) and returns the RSP to switch to.
///
/// # Safety
/// `[stack_top - 256, stack_top)` must be writable memory owned by the new task.
pub unsafe fn prepare_new_task(stack_top: u64, frame: &TrapFrame) -> u64 {
    let tf = stack_top - core::mem::size_of::<TrapFrame>() as u64;
    // switch frame: r15 r14 r13 r12 rbx rbp, then the return address
    let sw = tf - 7 * 8;
    // SAFETY: the caller owns this memory; both addresses are 8-byte aligned.
    unsafe {
        core::ptr::write(tf as *mut TrapFrame, *frame);
        let words = sw as *mut u64;
        for i in 0..6 {
            words.add(i).write(0);
        }
        words.add(6).write(task_first_entry as *const () as u64);
    }
    sw
}

/// FXSAVE area of a task's user FPU/SSE state. The kernel is soft-float, so
/// the registers hold user state at all times and are swapped only at
/// context switches (and copied into signal frames).
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state after `execve`: FCW 0x37f (as FNINIT), MXCSR 0x1f80 (all exceptions masked).
    pub fn initial() -> Self {
        let mut a = [0u8; 512];
        a[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        a[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        FpuState(a)
    }

    pub fn save(&mut self) {
        // SAFETY: the area is 512 bytes, 16-byte aligned, as FXSAVE requires.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack)) }
    }

    pub fn restore(&self) {
        // SAFETY: as for save; MXCSR reserved bits are zero in every state we produce (signal
        // frames are sanitized by `sanitize` before they are restored).
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack)) }
    }

    /// Clears MXCSR bits that would make FXRSTOR fault (state from a user signal frame).
    pub fn sanitize(&mut self) {
        let mxcsr = u32::from_le_bytes(self.0[24..28].try_into().unwrap()) & 0xffff;
        self.0[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    }
}

/// A task's kernel stack: 32 KiB of contiguous frames, used through the
/// direct map. Traps from user mode land at its top (TSS.RSP0).
pub struct KernelStack {
    base: crate::mm::frame::PhysFrame,
}

pub const KSTACK_ORDER: usize = 3;
pub const KSTACK_SIZE: u64 = 4096 << KSTACK_ORDER;

impl KernelStack {
    /// A task's stack, taken above the min watermark: a process making threads
    /// must not drain the reserve the kernel's own allocations rely on.
    pub fn new() -> Option<KernelStack> {
        crate::mm::frame::alloc_frames_above_min(KSTACK_ORDER).map(|base| KernelStack { base })
    }

    pub fn top(&self) -> u64 {
        crate::mm::phys_to_virt(self.base.addr()) + KSTACK_SIZE
    }

    /// Prepares this (unused) stack to enter user mode with `frame` on the
    /// first switch to it; returns the RSP to switch to.
    pub fn prepare(&self, frame: &TrapFrame) -> u64 {
        // SAFETY: the stack's frames belong to this KernelStack and nothing runs on it yet.
        unsafe { prepare_new_task(self.top(), frame) }
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        crate::mm::frame::free_frames(self.base, KSTACK_ORDER);
    }
}
