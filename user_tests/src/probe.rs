//! Probes: one user access each that may fault, and the SIGSEGV/SIGBUS handler that turns
//! its fault into a return value (as Linux's exception table does for the kernel's own
//! user accesses, `fixup_exception`), for tests that judge accesses racing with a change
//! of the translation (the `smp` and `mshare` suites' stale-translation rounds).

use crate::{set_handler, siginfo_handler};
use libc::*;

// `ut_probe_read(addr)` loads the byte at `addr` into RAX; `ut_probe_write(addr, v)`
// stores `v`. Each returns RDX = 0. When the access faults, the handler resumes at
// `ut_probe_fixup` with RDX = the signal and RAX = its si_code. The probes have no
// prologue, so the `ret` at the fixup returns to the probe's caller.
std::arch::global_asm!(
    ".pushsection .text.ut_probe,\"ax\",@progbits",
    ".globl ut_probe_read",
    ".globl ut_probe_read_insn",
    ".globl ut_probe_write",
    ".globl ut_probe_write_insn",
    ".globl ut_probe_fixup",
    "ut_probe_read:",
    "    xor edx, edx",
    "ut_probe_read_insn:",
    "    movzx eax, byte ptr [rdi]",
    "    ret",
    "ut_probe_write:",
    "    xor edx, edx",
    "    xor eax, eax",
    "ut_probe_write_insn:",
    "    mov byte ptr [rdi], sil",
    "    ret",
    "ut_probe_fixup:",
    "    ret",
    ".popsection",
);

/// What a probe returns in RAX:RDX (a two-word `repr(C)` struct, per the SysV ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    /// The byte read, or the fault's si_code.
    pub value: u64,
    /// 0, or the signal the access raised.
    pub signal: u64,
}

impl Probe {
    pub fn faulted(self) -> bool {
        self.signal != 0
    }
}

extern "C" {
    fn ut_probe_read(addr: usize) -> Probe;
    fn ut_probe_write(addr: usize, v: u64) -> Probe;
    static ut_probe_read_insn: u8;
    static ut_probe_write_insn: u8;
    static ut_probe_fixup: u8;
}

pub fn probe_read(addr: usize) -> Probe {
    // SAFETY: a fault at the probe's load is turned into a return by `on_probe_fault`;
    // the probe touches nothing but `addr` and the caller-saved RAX/RDX.
    unsafe { ut_probe_read(addr) }
}

pub fn probe_write(addr: usize, v: u8) -> Probe {
    // SAFETY: as for probe_read; no Rust reference aliases the page written.
    unsafe { ut_probe_write(addr, v as u64) }
}

/// SIGSEGV/SIGBUS handler: a fault at one of the probes' access instructions returns
/// from the probe with the signal and si_code; any other fault gets the default action
/// back, so it repeats and kills the process as it would have without the handler.
extern "C" fn on_probe_fault(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler;
    // changing the saved RIP, RAX and RDX is what rt_sigreturn then restores.
    unsafe {
        let gregs = &mut (*(ctx as *mut ucontext_t)).uc_mcontext.gregs;
        let rip = gregs[REG_RIP as usize] as usize;
        let ours = [&raw const ut_probe_read_insn as usize, &raw const ut_probe_write_insn as usize];
        if ours.contains(&rip) {
            gregs[REG_RIP as usize] = &raw const ut_probe_fixup as usize as i64;
            gregs[REG_RDX as usize] = sig as i64;
            gregs[REG_RAX as usize] = (*info).si_code as i64;
        } else {
            signal(sig, SIG_DFL);
        }
    }
}

pub fn install_probe_handler() {
    for sig in [SIGSEGV, SIGBUS] {
        set_handler(sig, siginfo_handler(on_probe_fault), SA_SIGINFO, &[]).expect("sigaction");
    }
}
