//! The performance oracle: Debian 12's cloud kernel, fetched as a package and unpacked
//! into a cache under `target/linux/` (never installed on the host), booted by the
//! benchmark runner in the same QEMU as our kernel.
//!
//! `linux-image-cloud-amd64` is a metapackage; it is resolved to the versioned
//! `linux-image-6.1.0-N-cloud-amd64` it depends on, which `apt-get download` fetches and
//! `dpkg -x` unpacks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const METAPACKAGE: &str = "linux-image-cloud-amd64";

/// An unpacked Linux kernel.
#[derive(Clone, Debug)]
pub struct LinuxKernel {
    pub vmlinuz: PathBuf,
    /// The versioned package, e.g. `linux-image-6.1.0-48-cloud-amd64`.
    pub package: String,
    /// The package version, e.g. `6.1.172-1`.
    pub version: String,
}

fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stderr(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `Depends:` of the metapackage that names a versioned kernel image.
pub fn parse_depends(apt_cache_depends: &str) -> Option<String> {
    apt_cache_depends.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends:")?.trim();
        dep.starts_with("linux-image-").then(|| dep.split_whitespace().next().unwrap_or(dep).to_string())
    })
}

/// The `Version:` field of `apt-cache show` output.
pub fn parse_version(apt_cache_show: &str) -> Option<String> {
    apt_cache_show.lines().find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string()))
}

fn resolve() -> Result<(String, String), String> {
    let depends =
        || output(Command::new("apt-cache").args(["depends", METAPACKAGE])).ok().and_then(|o| parse_depends(&o));
    let package = match depends() {
        Some(p) => p,
        None => {
            eprintln!("xtask: apt-get update (to resolve {METAPACKAGE})");
            crate::deps::apt_update()?;
            depends().ok_or(format!("apt-cache cannot resolve {METAPACKAGE}: is Debian's archive reachable?"))?
        }
    };
    let show = output(Command::new("apt-cache").args(["show", "--no-all-versions", &package]))?;
    let version = parse_version(&show).ok_or(format!("no version for {package}"))?;
    Ok((package, version))
}

/// The vmlinuz below an unpacked package, if any.
fn find_vmlinuz(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir.join("boot"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
}

/// Fetches and unpacks the kernel on first use; later calls reuse the cache (a newer
/// version in the archive is fetched beside the old one).
pub fn ensure_linux() -> Result<LinuxKernel, String> {
    crate::deps::ensure_command("dpkg", "dpkg")?;
    let (package, version) = resolve()?;
    let cache = crate::target_dir().join("linux");
    let dir = cache.join(format!("{package}_{version}"));
    if let Some(vmlinuz) = find_vmlinuz(&dir) {
        return Ok(LinuxKernel { vmlinuz, package, version });
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    eprintln!("xtask: fetching {package} {version} (apt-get download, unpacked under {})", cache.display());
    let st = Command::new("apt-get")
        .current_dir(&cache)
        .args(["download", "-qq", &format!("{package}={version}")])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !st.success() {
        return Err(format!("apt-get download {package}={version} failed ({st})"));
    }
    let deb = std::fs::read_dir(&cache)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            n.starts_with(&format!("{package}_")) && n.ends_with(".deb")
        })
        .ok_or(format!("apt-get download left no {package} .deb in {}", cache.display()))?;
    let st = Command::new("dpkg").arg("-x").arg(&deb).arg(&dir).status().map_err(|e| format!("dpkg: {e}"))?;
    if !st.success() {
        return Err(format!("dpkg -x {} failed", deb.display()));
    }
    let _ = std::fs::remove_file(&deb);
    let vmlinuz = find_vmlinuz(&dir).ok_or(format!("no boot/vmlinuz-* in {}", dir.display()))?;
    Ok(LinuxKernel { vmlinuz, package, version })
}

/// The host's TSC rate in kHz, for Linux's `tsc_early_khz=` (from /proc/cpuinfo).
pub fn host_tsc_khz() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = text.lines().find_map(|l| l.strip_prefix("cpu MHz")?.split(':').nth(1)?.trim().parse().ok())?;
    Some((mhz * 1000.0).round() as u64)
}

/// Linux's command line for a boot whose /init is the initramfs program `init` (a benchmark
/// boot's `/bench_init`, a test boot's `/init`; see benches/README.md for why each word).
pub fn cmdline(machine: &str, init: &str) -> String {
    let mut c = format!(
        "console=ttyS0 quiet panic=-1 rdinit={init} transparent_hugepage=never no5lvl tsc=reliable mitigations=off",
    );
    if machine == "microvm" {
        if let Some(khz) = host_tsc_khz() {
            c.push_str(&format!(" tsc_early_khz={khz}"));
        }
    }
    c
}

/// The exit status of init from Linux's panic when it exits (`Attempted to kill init!
/// exitcode=0x00000700` is a wait status: exit status 7), or None if it was killed by a
/// signal or did not exit.
pub fn init_exit_status(output: &str) -> Option<u8> {
    let code = output.lines().find_map(|l| l.split("Attempted to kill init! exitcode=0x").nth(1))?;
    let wstatus = u32::from_str_radix(code.trim(), 16).ok()?;
    (wstatus & 0x7f == 0).then_some((wstatus >> 8) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_exit_status_is_read_from_the_panic() {
        let panic = "[ 9.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000700\n";
        assert_eq!(init_exit_status(panic), Some(7));
        assert_eq!(init_exit_status("Attempted to kill init! exitcode=0x00000009\n"), None);
        assert_eq!(init_exit_status("no panic\n"), None);
    }

    #[test]
    fn metapackage_depends_name_the_versioned_image() {
        let out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-48-cloud-amd64\n";
        assert_eq!(parse_depends(out).as_deref(), Some("linux-image-6.1.0-48-cloud-amd64"));
        assert_eq!(parse_depends("linux-image-cloud-amd64\n"), None);
    }

    #[test]
    fn package_version_is_read() {
        assert_eq!(parse_version("Package: x\nVersion: 6.1.172-1\n").as_deref(), Some("6.1.172-1"));
    }

    #[test]
    fn linux_command_line_has_the_comparison_words() {
        let c = cmdline("q35", "/bench_init");
        for w in ["transparent_hugepage=never", "no5lvl", "tsc=reliable", "mitigations=off", "rdinit=/bench_init"] {
            assert!(c.split(' ').any(|x| x == w), "{w} missing from {c}");
        }
    }
}
