//! Installs what the runner needs on first use, saying what it does: QEMU and
//! cpio tools from Debian, the Rust targets from rust-toolchain.toml. A fresh
//! CI machine gets everything from here, nothing by hand.

use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Held across each check-then-install: the benchmark boots several guests from threads at
/// once, and two `apt-get`s at a time fail on dpkg's lock.
static APT: Mutex<()> = Mutex::new(());

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `apt-get ARGS`, with sudo when not root.
fn apt_get(args: &[&str]) -> Result<(), String> {
    let mut full: Vec<&str> = if is_root() { vec![] } else { vec!["sudo"] };
    full.push("apt-get");
    full.extend_from_slice(args);
    let st = Command::new(full[0])
        .args(&full[1..])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", full[0]))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {st}", full.join(" ")))
    }
}

/// Refreshes Debian's package lists.
pub fn apt_update() -> Result<(), String> {
    apt_get(&["update", "-qq"])
}

/// Installs Debian packages (after refreshing the package lists).
fn apt_install(packages: &[&str]) -> Result<(), String> {
    eprintln!("xtask: installing Debian packages {} (first use)", packages.join(" "));
    apt_update()?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt_get(&args)
}

/// Makes `command` available, installing Debian's `package` when it is missing.
pub fn ensure_command(command: &str, package: &str) -> Result<(), String> {
    let _apt = APT.lock().unwrap_or_else(|e| e.into_inner());
    if !have(command) {
        apt_install(&[package])?;
        if !have(command) {
            return Err(format!("{command} is still missing after installing {package}"));
        }
    }
    Ok(())
}

/// Debian's static busybox: the in-kernel user tests get it as /bin/sh.
pub fn ensure_busybox() -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from("/bin/busybox");
    let _apt = APT.lock().unwrap_or_else(|e| e.into_inner());
    if !path.is_file() {
        apt_install(&["busybox-static"])?;
    }
    Ok(path)
}

/// Debian's DejaVu Sans: the font the charts (plot.rs) are drawn with.
pub fn ensure_font() -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    let _apt = APT.lock().unwrap_or_else(|e| e.into_inner());
    if !path.is_file() {
        apt_install(&["fonts-dejavu-core"])?;
        if !path.is_file() {
            return Err(format!("fonts-dejavu-core installed, but {} is missing", path.display()));
        }
    }
    Ok(path)
}

/// QEMU for x86_64 guests.
pub fn ensure_qemu() -> Result<(), String> {
    ensure_command("qemu-system-x86_64", "qemu-system-x86")
}

/// The rustup targets the kernel (x86_64-unknown-none) and user programs
/// (x86_64-unknown-linux-musl) are built for.
pub fn ensure_rust_targets() -> Result<(), String> {
    if !have("rustup") {
        return Ok(()); // a toolchain without rustup must bring its own targets
    }
    // From the workspace root, so that rust-toolchain.toml picks the toolchain.
    let root = crate::workspace_root();
    let out = Command::new("rustup")
        .current_dir(&root)
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| e.to_string())?;
    let installed = String::from_utf8_lossy(&out.stdout).to_string();
    for t in ["x86_64-unknown-none", "x86_64-unknown-linux-musl"] {
        if !installed.lines().any(|l| l.trim() == t) {
            eprintln!("xtask: rustup target add {t} (first use)");
            let st = Command::new("rustup")
                .current_dir(&root)
                .args(["target", "add", t])
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err(format!("rustup target add {t} failed"));
            }
        }
    }
    Ok(())
}
