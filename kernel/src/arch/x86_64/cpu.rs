//! Thin wrappers over privileged instructions. Each is `unsafe` where misuse
//! can break memory safety (page tables, interrupt state); the port helpers
//! are safe to call only for devices this kernel owns (serial, PIT, debug exit).

use core::arch::asm;

/// Writes a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O does not touch memory; callers only use ports of devices the kernel owns.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) }
}

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`.
    unsafe { asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags)) }
    value
}

/// Writes a 32-bit value to an I/O port.
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags)) }
}

pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading an architectural MSR has no memory effects; callers pass MSRs that exist.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }
    (hi as u64) << 32 | lo as u64
}

/// # Safety
/// Writing an MSR can change paging, syscall entry or interrupt state.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    }
}

pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// # Safety
/// `root` must be the physical address of a PML4 that maps the running kernel.
pub unsafe fn write_cr3(root: u64) {
    // SAFETY: the caller guarantees the new tables map the code, stack and data in use.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) }
}

/// Invalidates the TLB entry of one page on this CPU.
pub fn invlpg(va: u64) {
    // SAFETY: dropping a TLB entry never makes a mapping more permissive.
    unsafe { asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) }
}

pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }
    (hi as u64) << 32 | lo as u64
}

pub fn interrupts_enabled() -> bool {
    let flags: u64;
    // SAFETY: reads RFLAGS through the stack.
    unsafe { asm!("pushfq; pop {}", out(reg) flags, options(nomem, preserves_flags)) }
    flags & (1 << 9) != 0
}

pub fn enable_interrupts() {
    // SAFETY: handlers for every vector are installed before the first call (see `trap::init`).
    unsafe { asm!("sti", options(nomem, nostack)) }
}

pub fn disable_interrupts() {
    // SAFETY: masking interrupts cannot break memory safety.
    unsafe { asm!("cli", options(nomem, nostack)) }
}

/// Runs `f` with interrupts masked, restoring the previous state afterwards.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let was = interrupts_enabled();
    if was {
        disable_interrupts();
    }
    let r = f();
    if was {
        enable_interrupts();
    }
    r
}

/// Sleeps until the next interrupt.
pub fn halt() {
    // SAFETY: hlt waits for an interrupt; it has no memory effects.
    unsafe { asm!("hlt", options(nomem, nostack)) }
}

pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
}

/// Flushes every non-global TLB entry of this CPU (reloads CR3).
pub fn flush_tlb_all() {
    // SAFETY: reloading the current CR3 value changes no mapping.
    unsafe { write_cr3(read_cr3()) }
}

/// Flushes every TLB entry of this CPU, global ones included (toggles CR4.PGE).
pub fn flush_tlb_global() {
    // SAFETY: clearing and restoring CR4.PGE only drops cached translations.
    unsafe {
        asm!(
            "mov {t}, cr4", "mov {s}, {t}", "and {t}, ~(1 << 7)", "mov cr4, {t}", "mov cr4, {s}",
            t = out(reg) _, s = out(reg) _, options(nostack, preserves_flags)
        )
    }
}

/// Enables interrupts and halts in one step: `sti` takes effect after the
/// next instruction, so an interrupt cannot slip in between and be missed.
pub fn enable_interrupts_and_halt() {
    // SAFETY: as enable_interrupts and halt.
    unsafe { asm!("sti; hlt", options(nomem, nostack)) }
}

/// A random u64 from RDRAND, if the CPU has it and it delivers.
pub fn hardware_random() -> Option<u64> {
    if cpuid(1, 0).ecx & (1 << 30) == 0 {
        return None;
    }
    for _ in 0..10 {
        let (v, ok): (u64, u8);
        // SAFETY: RDRAND exists (CPUID.1:ECX.30) and only writes its operands.
        unsafe { asm!("rdrand {}", "setc {}", out(reg) v, out(reg_byte) ok, options(nomem, nostack)) };
        if ok != 0 {
            return Some(v);
        }
    }
    None
}
