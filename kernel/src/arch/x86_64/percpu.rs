//! Per-CPU data reached through the GS base in kernel mode (`swapgs` on every
//! entry from user mode). The syscall entry needs it before it has a stack:
//! offset 0 holds the current task's kernel stack top, offset 8 is scratch
//! for the user RSP. One CPU for now; the layout is what SMP will replicate.

use super::cpu::wrmsr;

const IA32_GS_BASE: u32 = 0xc000_0101;
const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
const IA32_FS_BASE: u32 = 0xc000_0100;

#[repr(C)]
pub struct PerCpu {
    /// Offset 0: top of the running task's kernel stack (read by `syscall_entry`).
    pub kernel_rsp: u64,
    /// Offset 8: the user RSP, saved by `syscall_entry` before it switches stacks.
    pub user_rsp_scratch: u64,
}

static mut PERCPU: PerCpu = PerCpu { kernel_rsp: 0, user_rsp_scratch: 0 };

pub fn init() {
    // SAFETY: GS_BASE points at this CPU's PerCpu in kernel mode; KERNEL_GS_BASE holds the user
    // GS base (0) until the first swapgs. Nothing reads either before this.
    unsafe {
        wrmsr(IA32_GS_BASE, core::ptr::addr_of!(PERCPU) as u64);
        wrmsr(IA32_KERNEL_GS_BASE, 0);
    }
}

/// Records the kernel stack of the task about to run, for syscalls (GS) and
/// interrupts (TSS.RSP0).
pub fn set_kernel_stack(top: u64) {
    // SAFETY: one CPU; the field is read only by syscall_entry on this CPU, never concurrently.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!(PERCPU.kernel_rsp), top) };
    super::gdt::set_kernel_stack(top);
}

/// Loads a task's user FS base (its TLS pointer, `arch_prctl(ARCH_SET_FS)`).
pub fn set_user_fs_base(base: u64) {
    // SAFETY: FS is not used by the kernel; the base is a user value checked canonical by callers.
    unsafe { wrmsr(IA32_FS_BASE, base) };
}

/// The user RSP saved by the current syscall's entry.
pub fn user_rsp() -> u64 {
    // SAFETY: one CPU; written only by syscall_entry on this CPU before the handler runs.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(PERCPU.user_rsp_scratch)) }
}
