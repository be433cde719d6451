//! Frame-pointer backtraces (the kernel is built with
//! `-C force-frame-pointers=yes`) for panics and fatal exceptions.

use core::sync::atomic::{AtomicBool, Ordering};

static PRINTING: AtomicBool = AtomicBool::new(false);

/// Walks the `rbp` chain from `rbp`, printing return addresses. Only frames
/// inside the kernel's data+bss (where the boot stack lives) are followed,
/// and a fault while walking does not recurse (see `PRINTING`).
pub fn print(rbp: u64) {
    let (lo, hi) = crate::mm::kernel_sections().data;
    print_within(rbp, lo, hi);
}

/// As `print`, following only frames inside [lo, hi) (a task's kernel stack).
pub fn print_within(mut rbp: u64, lo: u64, hi: u64) {
    if PRINTING.swap(true, Ordering::SeqCst) {
        return;
    }
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
