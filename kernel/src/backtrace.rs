//! Frame-pointer backtraces (the kernel is built with
//! `-C force-frame-pointers=yes`) for panics and fatal exceptions.

use core::sync::atomic::{AtomicBool, Ordering};

static PRINTING: AtomicBool = AtomicBool::new(false);

/// Walks the `rbp` chain from `rbp`, printing return addresses. Only frames
/// inside the kernel's data+bss (where the boot stack lives) are followed,
/// and a fault while walking does not recurse (see `PRINTING`).
pub fn print(mut rbp: u64) {
    if PRINTING.swap(true, Ordering::SeqCst) {
        return;
    }
    let sections = crate::mm::kernel_sections();
    let (lo, hi) = sections.data;
    crate::arch::serial::write_fmt_emergency(format_args!("backtrace:\n"));
    for _ in 0..32 {
        if rbp < lo || rbp + 16 > hi || !rbp.is_multiple_of(8) {
            break;
        }
        let (next, ret) = crate::mm::read_stack_frame(rbp);
        if ret == 0 {
            break;
        }
        crate::arch::serial::write_fmt_emergency(format_args!("  {:#018x}\n", ret));
        if next <= rbp {
            break;
        }
        rbp = next;
    }
}
