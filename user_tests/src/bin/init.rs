//! The kernel's /init for test runs: runs every executable in /tests (sorted by name),
//! streaming its output, and reports `PASS name` or `FAIL name: why` for each, then
//! `init: N passed, N failed`; then powers off.
//!
//! The same binary is /init of the Linux guest (`cargo xtask test --linux-guest`), booted with
//! only an initramfs: as pid 1 it first mounts what the tests expect (devtmpfs on /dev,
//! re-opening /dev/console as stdio; devpts on /dev/pts; proc on /proc; tmpfs on /tmp and
//! /dev/shm). On our kernel /dev (with /dev/pts) and /proc are built in (those mounts are
//! skipped) and /tmp and /dev/shm get a tmpfs of their own as on Linux. It powers off through QEMU's
//! `isa-debug-exit` port where the kernel grants it with ioperm (Linux: 0x10 if every program
//! passed, 0x11 otherwise), else through reboot(2), whose power-off in our kernel also runs
//! its leak check.
//!
//! `init DIR` runs the programs in DIR instead (for trying it on a Linux host; as pid 1 the
//! arguments are ignored, since Linux passes init the command-line words it does not know,
//! such as `no5lvl`). It powers
//! off only as pid 1: on a host, reboot() from a process with CAP_SYS_BOOT in a pid
//! namespace would end that namespace's init, so elsewhere it just exits, with status 0
//! if all passed and 1 otherwise.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let pid1 = std::process::id() == 1;
    let dir = std::env::args().nth(1).filter(|_| !pid1).unwrap_or_else(|| "/tests".to_string());
    if pid1 {
        prepare_machine();
    }
    println!("init: {}", describe_machine());
    if !Path::new("/tmp").is_dir() {
        match std::fs::create_dir("/tmp") {
            Ok(()) => {
                let _ = std::fs::set_permissions("/tmp", std::fs::Permissions::from_mode(0o1777));
            }
            Err(e) => println!("init: cannot create /tmp: {e}"),
        }
    }
    let programs = programs(Path::new(&dir));
    if programs.is_empty() {
        println!("init: no test programs in {dir}");
    }
    let (mut passed, mut failed) = (0, 0);
    for path in &programs {
        let name = path.file_name().unwrap().to_string_lossy();
        // The program inherits stdout and stderr, so its output streams as it runs.
        match run_with_timeout(path) {
            Ok(s) if s.success() => {
                passed += 1;
                println!("PASS {name}");
            }
            Ok(s) => {
                failed += 1;
                let why = match (s.code(), s.signal()) {
                    (Some(c), _) => format!("exit status {c}"),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    _ => format!("{s}"),
                };
                println!("FAIL {name}: {why}");
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: cannot run: {e}");
            }
        }
        if pid1 {
            // What a program left running (a test killed mid-way by the OOM killer under
            // allocation-failure injection can leave a child blocked forever, e.g. in
            // vfork) must not outlive it into the next program's run and the watchdog's.
            kill_leftovers();
        } else {
            reap_orphans();
        }
    }
    println!("init: {passed} passed, {failed} failed");
    unsafe { libc::sync() };
    if pid1 {
        kill_leftovers();
        power_off(failed == 0);
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// The kernel release and this process's effective capabilities, so that a run's log shows
/// which oracle (or which kernel) it is and with what privileges the tests ran.
fn describe_machine() -> String {
    // SAFETY: uname fills the zeroed struct it is given.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    let release = if unsafe { libc::uname(&mut u) } == 0 {
        // SAFETY: uname NUL-terminates the release.
        unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned()
    } else {
        "unknown".into()
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).map(str::trim).unwrap_or("unknown");
    format!("kernel {release}, uid {}, effective capabilities {cap_eff}", unsafe { libc::getuid() })
}

fn mount(source: &str, target: &str, fstype: &str) -> bool {
    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    let (source, target, fstype) = (c(source), c(target), c(fstype));
    // SAFETY: the strings are NUL-terminated and live across the call; no mount data.
    unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) == 0 }
}

/// Mounts what the tests expect where the kernel does not provide it built in (see the
/// file's header); a failure is ignored (the tests then use what is there).
fn prepare_machine() {
    for dir in ["/dev", "/proc", "/tmp"] {
        let _ = std::fs::create_dir(dir);
    }
    if !Path::new("/dev/null").exists() && mount("devtmpfs", "/dev", "devtmpfs") {
        let console = std::ffi::CString::new("/dev/console").unwrap();
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
    // The links udev makes (our kernel's /dev has them; Linux's devtmpfs does not).
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let link = Path::new("/dev").join(name);
        if link.symlink_metadata().is_err() {
            let _ = std::os::unix::fs::symlink(target, link);
        }
    }
    // Pseudo-terminals: Linux's devtmpfs has /dev/ptmx, which opens the devpts at /dev/pts
    // (our kernel's /dev has both).
    if !Path::new("/dev/pts/ptmx").exists() {
        let _ = std::fs::create_dir("/dev/pts");
        mount("devpts", "/dev/pts", "devpts");
    }
    if !Path::new("/proc/self").exists() {
        mount("proc", "/proc", "proc");
    }
    if mount("tmpfs", "/tmp", "tmpfs") {
        let _ = std::fs::set_permissions("/tmp", std::fs::Permissions::from_mode(0o1777));
    }
    let _ = std::fs::create_dir("/dev/shm");
    mount("tmpfs", "/dev/shm", "tmpfs");
}

/// Leaves QEMU through isa-debug-exit (port 0xf4) where ioperm grants it (Linux), else
/// through reboot(2).
fn power_off(ok: bool) {
    // SAFETY: ioperm only changes this process's I/O permission bitmap.
    if unsafe { libc::ioperm(0xf4, 4, 1) } == 0 {
        let value: u32 = if ok { 0x10 } else { 0x11 };
        // SAFETY: port 0xf4 is QEMU's isa-debug-exit device (the runner always adds it);
        // writing it ends the virtual machine.
        unsafe { core::arch::asm!("out dx, eax", in("dx") 0xf4u16, in("eax") value) };
    }
    // SAFETY: power-off as pid 1; nothing runs after it.
    unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF) };
    println!("init: power off failed: {}", std::io::Error::last_os_error());
}

/// How long one test program may run before init kills it, so that one hang
/// does not hide the results of the programs after it.
const PROGRAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn run_with_timeout(path: &Path) -> std::io::Result<std::process::ExitStatus> {
    let mut child = Command::new(path).env(user_tests::SCRATCH_MACHINE_ENV, "1").spawn()?;
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if start.elapsed() > PROGRAM_TIMEOUT {
            println!("init: {} still running after {:?}: killing it", path.display(), PROGRAM_TIMEOUT);
            let _ = child.kill();
            return child.wait();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The executable regular files in `dir`, sorted by name.
fn programs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        println!("init: cannot read {}", dir.display());
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .collect();
    v.sort();
    v
}

/// As pid 1 before powering off, as an init system does: SIGKILL to every process left
/// (a test killed mid-way, e.g. by allocation-failure injection, can leave a child that
/// waits forever) and reap them all, so the kernel's leak check sees only its own state.
fn kill_leftovers() {
    let left = unsafe { libc::kill(-1, libc::SIGKILL) } == 0;
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
    if left {
        println!("init: killed the processes left over");
    }
}

/// As pid 1, init inherits orphaned processes (e.g. a test's grandchildren): reap the
/// ones that have exited.
fn reap_orphans() {
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}
