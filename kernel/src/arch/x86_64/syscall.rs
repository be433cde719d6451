//! SYSCALL entry. The CPU leaves the user RIP in RCX and RFLAGS in R11 and
//! masks IF (SFMASK); the stub switches to the task's kernel stack, builds
//! the hardware part of the same [`TrapFrame`](super::trap::TrapFrame) as an
//! interrupt (vector `VECTOR_SYSCALL`, the original RAX in the error-code slot
//! so an interrupted syscall can be restarted) and joins the common trap path,
//! which saves the registers, dispatches, and leaves through IRETQ — simpler
//! than SYSRET and immune to its non-canonical-RCX hazard.

use super::cpu::{rdmsr, wrmsr};

/// Pseudo vector that marks a syscall frame.
pub const VECTOR_SYSCALL: u64 = 0x100;

const IA32_EFER: u32 = 0xc000_0080;
const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;

core::arch::global_asm!(
    r#"
    .section .text.syscall_entry, "ax"
    .global syscall_entry
syscall_entry:
    swapgs
    mov %rsp, %gs:8
    mov %gs:0, %rsp
    pushq $0x1b                 /* user SS */
    pushq %gs:8                 /* user RSP */
    push %r11                   /* user RFLAGS */
    pushq $0x23                 /* user CS */
    push %rcx                   /* user RIP */
    push %rax                   /* error code slot: the syscall number, for restarts */
    pushq $0x100                /* VECTOR_SYSCALL */
    jmp trap_common_gs_ok       /* the common path saves the rest and calls trap_handler */
    "#,
    options(att_syntax)
);

extern "C" {
    fn syscall_entry();
}

pub fn init() {
    let sel = super::gdt::selectors();
    assert!(sel.user_data.0 == 0x1b && sel.user_code.0 == 0x23, "syscall_entry hard-codes the user selectors");
    // STAR[47:32]: SYSCALL CS (SS = +8); STAR[63:48]: SYSRET base (SS = +8, 64-bit CS = +16).
    let star = (sel.kernel_code.0 as u64) << 32 | ((sel.user_data.0 as u64 - 8) | 3) << 48;
    // SAFETY: the entry point and selectors are valid; EFER.SCE only enables SYSCALL.
    unsafe {
        wrmsr(IA32_STAR, star);
        wrmsr(IA32_LSTAR, syscall_entry as *const () as u64);
        // Mask IF, DF, TF, AC on entry.
        wrmsr(IA32_FMASK, (1 << 9) | (1 << 10) | (1 << 8) | (1 << 18));
        wrmsr(IA32_EFER, rdmsr(IA32_EFER) | 1);
    }
}
