//! The x86_64 hardware layer: boot, CPU tables, traps, timer, console.
//! Most of the kernel's `unsafe` lives here, each block with a `SAFETY:` line.

pub mod acpi;
pub mod apic;
mod boot;
pub mod cpu;
pub mod exit;
pub mod gdt;
pub mod pvh;
pub mod rtc;
pub mod serial;
pub mod trap;

/// Enables the FPU/SSE control bits user programs need and that the kernel
/// itself never uses (the target is soft-float): CR0.MP, CR4.OSFXSR and
/// CR4.OSXMMEXCPT, as Linux's `fpu__init_cpu` does.
pub fn init_cpu_features() {
    // SAFETY: setting these bits only changes how SSE instructions and exceptions behave.
    unsafe {
        core::arch::asm!(
            "mov {t}, cr0", "and {t}, ~(1 << 2)", "or {t}, (1 << 1)", "mov cr0, {t}",
            "mov {t}, cr4", "or {t}, (1 << 9) | (1 << 10)", "mov cr4, {t}",
            t = out(reg) _, options(nostack)
        );
    }
}

pub mod context;
pub mod percpu;
pub mod smp;
pub mod syscall;
