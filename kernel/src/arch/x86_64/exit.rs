//! Leaving QEMU through the `isa-debug-exit` device (iobase 0xf4): QEMU's
//! exit status becomes `(value << 1) | 1`, so success (0x10) is status 33 and
//! failure (0x11) status 35. The runner in `qemu/` maps them back.

use super::cpu::{halt, outl};

pub const DEBUG_EXIT_PORT: u16 = 0xf4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum QemuExitCode {
    Success = 0x10,
    Failed = 0x11,
}

pub fn exit_qemu(code: QemuExitCode) -> ! {
    outl(DEBUG_EXIT_PORT, code as u32);
    // Without the device (a real machine, or QEMU started by hand) just stop.
    super::cpu::disable_interrupts();
    loop {
        halt();
    }
}
