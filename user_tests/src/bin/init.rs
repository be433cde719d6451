//! The kernel's /init for test runs: runs every executable in /tests (sorted by name),
//! streaming its output, and reports `PASS name` or `FAIL name: why` for each, then
//! `init: N passed, N failed`; then powers off.
//!
//! `init DIR` runs the programs in DIR instead (for trying it on a Linux host). It powers
//! off only as pid 1: on a host, reboot() from a process with CAP_SYS_BOOT in a pid
//! namespace would end that namespace's init, so elsewhere it just exits, with status 0
//! if all passed and 1 otherwise.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tests".to_string());
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
        reap_orphans();
    }
    println!("init: {passed} passed, {failed} failed");
    unsafe { libc::sync() };
    if std::process::id() == 1 {
        kill_leftovers();
        unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF) };
        println!("init: power off failed: {}", std::io::Error::last_os_error());
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// How long one test program may run before init kills it, so that one hang
/// does not hide the results of the programs after it.
const PROGRAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn run_with_timeout(path: &Path) -> std::io::Result<std::process::ExitStatus> {
    let mut child = Command::new(path).spawn()?;
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
