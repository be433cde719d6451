//! mshare-kernel: an x86_64 kernel that runs static Linux binaries and
//! measures what page-table sharing (mshare) is worth.
//!
//! Boot path: `arch::x86_64::boot` (PVH entry, 32-bit trampoline) calls
//! [`kernel_entry`] in the higher half with the PVH start info.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

#[allow(unsafe_code)]
#[path = "arch/x86_64/mod.rs"]
pub mod arch;
#[allow(unsafe_code)]
pub mod mm;
pub mod net;

mod backtrace;
mod cmdline;
pub mod errno;
pub mod fs;
mod initramfs;
pub mod ipc;
mod ktest;
pub mod leak;
mod logger;
pub mod process;
mod random;
pub mod sync;
mod syscall;
pub mod time;
pub mod tty;
pub mod watchdog;

use arch::exit::{exit_qemu, QemuExitCode};
use arch::pvh::BootInfo;
use arch::{apic, cpu, gdt, pvh, serial, trap};
use spin::Once;

/// Prints to the console without a log prefix (protocol lines for the runner).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::arch::serial::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Logs a message the first time this line runs (unimplemented features).
#[macro_export]
macro_rules! log_once {
    ($($arg:tt)*) => {{
        static ONCE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if !ONCE.swap(true, core::sync::atomic::Ordering::Relaxed) {
            log::warn!($($arg)*);
        }
    }};
}

static BOOT_INFO: Once<BootInfo> = Once::new();

/// Powers the machine off (QEMU: isa-debug-exit with success or failure).
pub fn power_off(success: bool) -> ! {
    exit_qemu(if success { QemuExitCode::Success } else { QemuExitCode::Failed })
}

pub fn boot_info() -> &'static BootInfo {
    BOOT_INFO.get().expect("boot info not parsed yet")
}

/// The first Rust code, called by the boot trampoline (`arch::x86_64::boot`).
pub fn kernel_main(start_info: u64) -> ! {
    // GS first: `percpu::cpu_id()` works from here on (locks may use it).
    arch::percpu::init_cpu(0);
    apic::mark_boot();
    serial::init();
    let boot = match pvh::parse(start_info) {
        Ok(b) => BOOT_INFO.call_once(|| b),
        Err(e) => {
            println!("mshare-kernel: bad PVH start info at {:#x}: {:?}", start_info, e);
            exit_qemu(QemuExitCode::Failed);
        }
    };
    logger::init(cmdline::log_level(&boot.cmdline));
    // While the boot page tables still map the firmware's tables.
    arch::acpi::init(boot.rsdp);
    watchdog::init(&boot.cmdline);
    mm::fail::init(&boot.cmdline);
    mm::tlb::init(&boot.cmdline);
    mm::pt_share::init(&boot.cmdline);
    log::info!("mshare-kernel {} booting, cmdline {:?}", env!("CARGO_PKG_VERSION"), boot.cmdline.as_str());

    gdt::init();
    trap::init();
    arch::init_cpu_features();
    mm::frame::init(boot);
    mm::kernel_map::init(boot);
    mm::frame::add_high_memory();
    mm::heap::init();
    mm::page::init();
    mm::vdso::init();
    mm::commit::init();
    fs::proc_sysctl::init();
    arch::syscall::init();
    random::init();
    time::init();
    let lapic = mm::kernel_map::map_mmio(apic::lapic_phys_base(), 4096);
    apic::init(lapic);
    time::update_vsyscall();
    cpu::enable_interrupts();
    arch::smp::boot_secondary_cpus(boot);
    print_memory_summary();
    if let Err(e) = fs::init() {
        println!("mshare-kernel: cannot build the root filesystem: {:?}", e);
        exit_qemu(QemuExitCode::Failed);
    }

    watchdog::touch();
    if let Some(filter) = cmdline::get(&boot.cmdline, "ktest") {
        let (_, failed) = ktest::run(filter);
        exit_qemu(if failed == 0 { QemuExitCode::Success } else { QemuExitCode::Failed });
    }
    start_init(boot)
}

fn print_memory_summary() {
    let f = mm::frame::stats();
    let h = mm::heap::stats();
    let s = mm::kernel_sections();
    let kib = |r: (u64, u64)| (r.1 - r.0) >> 10;
    println!(
        "memory: RAM {} MiB, managed {} frames ({} MiB), free {} frames ({} MiB)",
        f.ram_bytes >> 20,
        f.usable,
        (f.usable * 4) >> 10,
        f.free,
        (f.free * 4) >> 10
    );
    println!(
        "memory: kernel text {} KiB, rodata {} KiB, data+bss {} KiB; kernel page tables {} pages; heap {} KiB mapped, {} KiB used",
        kib(s.text),
        kib(s.rodata),
        kib(s.data),
        mm::kernel_map::kernel_table_pages(),
        h.mapped_bytes >> 10,
        h.used_bytes >> 10
    );
}

/// Starts the first user program (`init=` on the command line, default
/// `/init`) and becomes the idle loop. Arguments after `--` go to it.
fn start_init(boot: &BootInfo) -> ! {
    let path = cmdline::get(&boot.cmdline, "init").unwrap_or("/init");
    // Arguments: words after ` -- ` on the command line, or, for arguments
    // with spaces, `initargs=FILE` naming NUL-separated strings in the initramfs.
    let args: alloc::vec::Vec<&str> = match cmdline::get(&boot.cmdline, "initargs").and_then(initramfs::find) {
        Some(e) => {
            e.data.split(|&b| b == 0).filter(|a| !a.is_empty()).filter_map(|a| core::str::from_utf8(a).ok()).collect()
        }
        None => boot.cmdline.split_once(" -- ").map(|(_, a)| a.split_ascii_whitespace().collect()).unwrap_or_default(),
    };
    if !fs::exists(path) {
        if cmdline::get(&boot.cmdline, "init").is_none() {
            println!("mshare-kernel: no init program; powering off");
            exit_qemu(QemuExitCode::Success);
        }
        println!("mshare-kernel: init {} not found in the root", path);
        exit_qemu(QemuExitCode::Failed);
    }
    if let Err(e) = process::spawn_init(path, &args) {
        println!("mshare-kernel: cannot start {}: error {}", path, e.0);
        exit_qemu(QemuExitCode::Failed);
    }
    mm::fail::arm();
    process::sched::idle_loop()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cpu::disable_interrupts();
    if let Some(t) = ktest::current() {
        serial::write_fmt_emergency(format_args!("\nktest {} ... FAILED\n", t));
    }
    serial::write_fmt_emergency(format_args!("\nKERNEL PANIC: {}\n", info));
    let rbp: u64;
    // SAFETY: reads the frame pointer register; no memory is touched.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags))
    };
    backtrace::print(rbp);
    // Once only: a panic inside the dump must still end the run.
    static DUMPED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if !DUMPED.swap(true, core::sync::atomic::Ordering::Relaxed) {
        syscall::dump_tasks();
    }
    exit_qemu(QemuExitCode::Failed)
}
