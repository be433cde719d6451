//! `/init` of a benchmark boot, the same binary on our kernel and on Linux.
//!
//! As pid 1 it first makes the machine look alike on both kernels: on Linux (booted with
//! only an initramfs) it mounts devtmpfs on /dev and re-opens /dev/console as stdio, proc
//! on /proc, and tmpfs on /tmp and /dev/shm; on our kernel /proc and /dev are built in (those
//! mounts are skipped) and /tmp and /dev/shm get a tmpfs of their own as on Linux. Then it runs each
//! line of `/bench/plan` (a program and its arguments, separated by spaces) in turn,
//! streaming their output, prints `@bench init ...` and `@bench exit ...` lines for the
//! runner, and powers off: on Linux through QEMU's `isa-debug-exit` port (0x10 if every
//! program exited with 0, 0x11 otherwise), on our kernel through reboot(2), whose
//! power-off also runs the kernel's leak check.

use std::ffi::CString;
use std::process::Command;

fn main() {
    let pid1 = std::process::id() == 1;
    if pid1 {
        prepare_machine();
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    println!("bench_init: kernel command line: {}", cmdline.trim());
    benches::emit("init", &[("kernel", &benches::kernel_release()), ("cpus", &online_cpus())]);
    let plan = std::fs::read_to_string("/bench/plan").unwrap_or_default();
    let mut all_ok = !plan.trim().is_empty();
    if !all_ok {
        println!("bench_init: /bench/plan is missing or empty");
    }
    for line in plan.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let program = words.next().unwrap_or_default();
        let status = Command::new(program).args(words).status();
        let code = match status {
            Ok(s) => s.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)),
            Err(e) => {
                println!("bench_init: cannot run {program}: {e}");
                127
            }
        };
        all_ok &= code == 0;
        benches::emit("exit", &[("program", &program), ("status", &code)]);
    }
    if pid1 {
        power_off(all_ok);
    }
    std::process::exit(if all_ok { 0 } else { 1 });
}

fn online_cpus() -> i64 {
    // SAFETY: sysconf has no memory effects.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }
}

fn mount(source: &str, target: &str, fstype: &str) -> bool {
    let c = |s: &str| CString::new(s).unwrap();
    let (source, target, fstype) = (c(source), c(target), c(fstype));
    // SAFETY: the strings are NUL-terminated and live across the call; no mount data.
    unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) == 0 }
}

/// Creates the directories and mounts a benchmark expects (see the file's header).
fn prepare_machine() {
    for dir in ["/dev", "/proc", "/tmp"] {
        let _ = std::fs::create_dir(dir);
    }
    if !std::path::Path::new("/dev/null").exists() && mount("devtmpfs", "/dev", "devtmpfs") {
        let console = CString::new("/dev/console").unwrap();
        // SAFETY: a valid path; the descriptors are this process's own.
        unsafe {
            let fd = libc::open(console.as_ptr(), libc::O_RDWR);
            if fd >= 0 {
                for target in 0..3 {
                    libc::dup2(fd, target);
                }
                if fd > 2 {
                    libc::close(fd);
                }
            }
        }
    }
    if !std::path::Path::new("/proc/self").exists() {
        mount("proc", "/proc", "proc");
    }
    mount("tmpfs", "/tmp", "tmpfs");
    let _ = std::fs::create_dir("/dev/shm");
    mount("tmpfs", "/dev/shm", "tmpfs");
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions("/tmp", std::fs::Permissions::from_mode(0o1777));
}

/// Leaves QEMU with isa-debug-exit (port 0xf4) where the kernel lets us reach it (Linux,
/// through ioperm), else through reboot(2).
fn power_off(ok: bool) -> ! {
    // The console is a serial tty that Linux transmits from its own buffer, on any CPU:
    // wait until it has sent everything (the `@bench exit` line above all), or QEMU ends
    // with the line still queued. A kernel whose console writes synchronously has nothing
    // to wait for.
    // SAFETY: tcdrain only waits; descriptor 1 is ours (an error just means no tty).
    unsafe { libc::tcdrain(1) };
    // SAFETY: sync has no memory effects.
    unsafe { libc::sync() };
    // SAFETY: ioperm only changes this process's I/O permission bitmap.
    if unsafe { libc::ioperm(0xf4, 4, 1) } == 0 {
        let value: u32 = if ok { 0x10 } else { 0x11 };
        // SAFETY: port 0xf4 is QEMU's isa-debug-exit device (the runner always adds it);
        // writing it ends the virtual machine.
        unsafe { core::arch::asm!("out dx, eax", in("dx") 0xf4u16, in("eax") value) };
    }
    // SAFETY: power-off as pid 1; nothing runs after it.
    unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF) };
    println!("bench_init: power off failed: {}", std::io::Error::last_os_error());
    std::process::exit(if ok { 0 } else { 1 });
}
