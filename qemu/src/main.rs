//! `cargo xtask`: the project's runner (see README.md).
//!
//! - `cargo xtask run`: the default benchmark on our kernel (see `bench.rs`)
//! - `cargo xtask bench`: the benchmarks, with `--linux` side by side with Linux
//! - `cargo xtask test`: host unit tests, then the in-QEMU suites (our kernel's, and the user
//!   tests on Debian's Linux in the same QEMU); ends with `N passed, N failed, N skipped`
//! - `cargo xtask fuzz`: the system call fuzzer in the kernel (see `fuzz.rs`)
//! - `cargo xtask exec PATH [ARGS...]`: boot with a static Linux ELF as the first program
//! - `cargo xtask build`: build the kernel only

mod bench;
mod console;
mod debian;
mod deps;
mod fuzz;
mod inject;
mod leak;
mod linux;
mod plot;
mod qemu;
mod test;
mod user;

use qemu::{QemuConfig, QemuExit};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

const USAGE: &str = "usage: cargo xtask <command> [options]
commands:
  run                    the default benchmark on our kernel: its table, CSV and plots
  bench                  the benchmarks (see benches/README.md)
  test                   host unit tests, then in-kernel and runner suites, and the user
                         tests on Debian 12's Linux in the same QEMU (the oracle as root)
  fuzz                   the system call fuzzer in the kernel (see docs/reliability.md)
  exec PATH [ARGS...]    boot with the ELF at PATH as /init
  build                  build the kernel
options:
  --release              build the kernel with optimizations
  --machine microvm|q35  QEMU machine (default microvm)
  --mem SIZE             guest memory, e.g. 512M (default)
  --smp N                CPUs (default 1; test: 2)
  --timeout SECS         kill QEMU after SECS (default 60)
  --gdb                  wait for GDB on localhost:1234 (see README)
  --append WORDS         extra kernel command line
  --file HOST:GUEST      exec: add HOST file to the initramfs as GUEST
  --root debian          exec: boot with a Debian 12 root (bash, coreutils, util-linux, procps,
                         python3; built on first use under target/debian); PATH is inside it.
                         Give it --mem 1G: the root lives in tmpfs
  --user NAME            exec --root: run PATH as NAME (root's user is `user`, 1000:1000)
  --host                 test: only run the user tests directly on the Linux host
  --linux-guest          test: only the user tests on the host, in our kernel and on Debian 12's
                         Linux in the same QEMU (root with every capability), compared
  --debian               test: only Debian's programs on the Debian root (user_tests/debian),
                         in our kernel and on Debian 12's Linux
  --quick                bench: the small set (seconds)
  --linux                bench: also run every benchmark on Linux (Debian 12's cloud kernel)
  --only NAME            bench: only the suites or cases whose name contains NAME
                         (NAME|NAME...: any of them)
  --runs K               bench: boots per case (default 3; 1 with --quick and for run)
  --uncapped             bench: also the cases the full set leaves out (1 GiB x 1024)
  --procs N[,N...]       bench: pt_sharing's process counts instead of the set's
  --replot               bench: only redraw summary.md and the plots from the CSVs in --out
  --jobs J               bench: boots at a time (default: host cores / --smp)
  --out DIR              bench, run: where results go (default target/bench, target/bench/run)
  --seconds S            fuzz: how long to fuzz (default 60)
  --seed X               fuzz: the seed, decimal or 0x hex (default 1)
  --inject SPEC          test: only the user suite (--runs boots) and --seconds of fuzzing
                         (default 60) with allocation-failure injection,
                         SPEC = P% or every:K[,seed=X,after=N,times=N] (docs/reliability.md)";

/// Options shared by the commands.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub release: bool,
    pub machine: Option<String>,
    pub mem: Option<String>,
    pub smp: Option<u32>,
    pub timeout: Option<u64>,
    pub gdb: bool,
    pub append: Vec<String>,
    pub files: Vec<(PathBuf, String)>,
    /// test: run the user tests on the Linux host only.
    pub host_only: bool,
    /// test: the user tests on the host, in our kernel and on the Linux guest only.
    pub linux_guest: bool,
    /// test: only the Debian programs on the Debian root, in our kernel and on the Linux guest.
    pub debian: bool,
    /// bench: the small set.
    pub quick: bool,
    /// bench: Linux too.
    pub linux: bool,
    /// bench: only suites or cases whose name contains this.
    pub only: Option<String>,
    /// bench: runs per case.
    pub runs: Option<u32>,
    /// bench: redraw the summary and plots from the CSVs in the output directory.
    pub replot: bool,
    /// bench: keep the cases the full set leaves out for time.
    pub uncapped: bool,
    /// bench: pt_sharing's process counts instead of the set's.
    pub procs: Option<Vec<u32>>,
    /// bench: boots at a time.
    pub jobs: Option<usize>,
    /// bench: the output directory.
    pub out: Option<PathBuf>,
    /// fuzz: seconds of fuzzing.
    pub seconds: Option<u64>,
    /// fuzz: the seed.
    pub seed: Option<u64>,
    /// test: allocation-failure injection spec (`--inject`).
    pub inject: Option<String>,
    /// exec: boot with this root (`debian`, see debian.rs); PATH is then a path inside it.
    pub root: Option<String>,
    /// exec: run the program as this user of the root (through util-linux's setpriv).
    pub user: Option<String>,
    /// Positional arguments (exec: PATH then the program's arguments).
    pub positional: Vec<String>,
}

/// Parses options up to the first positional argument; everything after it
/// belongs to the program (`exec PATH ARGS...`), so program flags pass through.
pub fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    let value = |i: &mut usize, name: &str| -> Result<String, String> {
        *i += 1;
        args.get(*i).cloned().ok_or(format!("{name} needs a value"))
    };
    while i < args.len() {
        let a = args[i].as_str();
        if !o.positional.is_empty() {
            o.positional.push(a.to_string());
            i += 1;
            continue;
        }
        match a {
            "--release" => o.release = true,
            "--gdb" => o.gdb = true,
            "--host" => o.host_only = true,
            "--linux-guest" => o.linux_guest = true,
            "--debian" => o.debian = true,
            "--quick" => o.quick = true,
            "--linux" => o.linux = true,
            "--uncapped" => o.uncapped = true,
            "--replot" => o.replot = true,
            "--only" => o.only = Some(value(&mut i, a)?),
            "--procs" => {
                let v = value(&mut i, a)?;
                let n: Result<Vec<u32>, _> = v.split(',').map(|n| n.trim().parse::<u32>()).collect();
                o.procs = Some(n.ok().filter(|n| !n.is_empty() && !n.contains(&0)).ok_or("--procs needs N[,N...]")?);
            }
            "--runs" => o.runs = Some(value(&mut i, a)?.parse().map_err(|_| "--runs needs a number")?),
            "--jobs" => o.jobs = Some(value(&mut i, a)?.parse().map_err(|_| "--jobs needs a number")?),
            "--out" => o.out = Some(PathBuf::from(value(&mut i, a)?)),
            "--seconds" => o.seconds = Some(value(&mut i, a)?.parse().map_err(|_| "--seconds needs a number")?),
            "--inject" => o.inject = Some(value(&mut i, a)?),
            "--seed" => o.seed = Some(fuzz::parse_seed(&value(&mut i, a)?).ok_or("--seed needs a number")?),
            "--machine" => o.machine = Some(value(&mut i, a)?),
            "--root" => {
                let r = value(&mut i, a)?;
                if r != "debian" {
                    return Err(format!("--root {r}: the only root is debian"));
                }
                o.root = Some(r);
            }
            "--user" => o.user = Some(value(&mut i, a)?),
            "--mem" => o.mem = Some(value(&mut i, a)?),
            "--smp" => o.smp = Some(value(&mut i, a)?.parse().map_err(|_| "--smp needs a number")?),
            "--timeout" => o.timeout = Some(value(&mut i, a)?.parse().map_err(|_| "--timeout needs seconds")?),
            "--append" => o.append.push(value(&mut i, a)?),
            "--file" => {
                let v = value(&mut i, a)?;
                let (host, guest) = v.split_once(':').ok_or("--file needs HOST:GUEST")?;
                o.files.push((PathBuf::from(host), guest.trim_start_matches('/').to_string()));
            }
            "--" => {
                o.positional.extend(args[i + 1..].iter().cloned());
                break;
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => o.positional.push(s.to_string()),
        }
        i += 1;
    }
    Ok(o)
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// Builds the kernel ELF and returns its path.
pub fn build_kernel(release: bool) -> Result<PathBuf, String> {
    deps::ensure_rust_targets()?;
    // The kernel's build script compiles the vDSO (kernel/vdso) with gcc.
    deps::ensure_command("gcc", "gcc")?;
    let mut c = cargo();
    c.args(["build", "--quiet", "--package", "kernel", "--target", "x86_64-unknown-none"]);
    if release {
        c.arg("--release");
    }
    let st = c.status().map_err(|e| format!("cargo: {e}"))?;
    if !st.success() {
        return Err("kernel build failed".into());
    }
    let profile = if release { "release" } else { "debug" };
    Ok(target_dir().join("x86_64-unknown-none").join(profile).join("kernel"))
}

/// Writes an initramfs (cpio newc) with the given files, creating parent directories.
pub fn write_initramfs(path: &Path, files: &[(String, u32, Vec<u8>)]) -> Result<(), String> {
    write_initramfs_over(path, None, files)
}

/// As `write_initramfs`, over the tree under `root` (a Debian root, `debian::add_tree`).
pub fn write_initramfs_over(path: &Path, root: Option<&Path>, files: &[(String, u32, Vec<u8>)]) -> Result<(), String> {
    let mut w = cpio::Writer::new();
    if let Some(root) = root {
        debian::add_tree(&mut w, root)?;
    }
    let mut dirs = std::collections::BTreeSet::new();
    for (name, _, _) in files {
        let mut p = Path::new(name).parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.to_string_lossy().into_owned());
            p = d.parent();
        }
    }
    for d in &dirs {
        w.add_dir(d);
    }
    for (name, mode, data) in files {
        // `mode` is permissions for a regular file, or a full st_mode (a symlink's
        // data is its target).
        if mode & cpio::S_IFMT == 0 {
            w.add_file(name, *mode, data);
        } else {
            w.add(name, *mode, data);
        }
    }
    std::fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
    std::fs::write(path, w.finish()).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn qemu_config(kernel: &Path, o: &Options) -> QemuConfig {
    let mut cfg = QemuConfig::new(kernel);
    if let Some(m) = &o.machine {
        cfg.machine = m.clone();
    }
    if let Some(m) = &o.mem {
        cfg.mem = m.clone();
    }
    if let Some(n) = o.smp {
        cfg.smp = n;
    }
    if let Some(t) = o.timeout {
        cfg.timeout = Duration::from_secs(t);
    }
    cfg.gdb = o.gdb;
    cfg.cmdline = o.append.join(" ");
    if o.gdb {
        eprintln!("xtask: QEMU waits for GDB: gdb {} -ex 'target remote :1234'", kernel.display());
    }
    cfg
}

/// Parses the kernel's `mshare-kernel: init exited with status N` line.
pub fn init_exit_status(output: &str) -> Option<u8> {
    output.lines().find_map(|l| l.strip_prefix("mshare-kernel: init exited with status ")?.trim().parse().ok())
}

/// Prepares a boot that runs the host program `path` with `args` as pid 1:
/// writes the initramfs `initrd` (the program under its own file name, since
/// busybox picks its applet from argv[0]; the arguments NUL-separated in a
/// file, so they may contain spaces; `extra` HOST:GUEST files) and returns
/// the kernel command line.
pub fn prepare_exec(path: &str, args: &[String], extra: &[(PathBuf, String)], initrd: &Path) -> Result<String, String> {
    let program = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let name = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "init".into());
    let mut files = vec![(name.clone(), 0o755, program)];
    files.extend(exec_files(args, extra)?);
    write_initramfs(initrd, &files)?;
    Ok(format!("log=warn init=/{name} initargs=/.xtask/initargs"))
}

/// The files every exec boot adds: init's arguments, NUL-separated, in `.xtask/initargs`,
/// and the `extra` HOST:GUEST files.
fn exec_files(args: &[String], extra: &[(PathBuf, String)]) -> Result<Vec<(String, u32, Vec<u8>)>, String> {
    let argv_file = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut files = vec![(".xtask/initargs".to_string(), 0o644, argv_file)];
    for (host, guest) in extra {
        let data = std::fs::read(host).map_err(|e| format!("{}: {e}", host.display()))?;
        files.push((guest.clone(), 0o755, data));
    }
    Ok(files)
}

/// Prepares a boot with the Debian root (debian.rs) whose pid 1 is `path`, a path inside
/// the root, with `args`; as `user` through setpriv when given. Returns the command line.
pub fn prepare_root_exec(
    path: &str,
    args: &[String],
    user: Option<&str>,
    extra: &[(PathBuf, String)],
    initrd: &Path,
) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("--root: {path} must be an absolute path inside the root"));
    }
    let root = debian::ensure_root()?;
    let mut argv: Vec<String> = Vec::new();
    let init = match user {
        Some(u) => {
            argv.extend(["--reuid", u, "--regid", u, "--init-groups", "--reset-env", path].map(String::from));
            "/usr/bin/setpriv"
        }
        None => path,
    };
    argv.extend(args.iter().cloned());
    write_initramfs_over(initrd, Some(&root), &exec_files(&argv, extra)?)?;
    Ok(format!("log=warn init={init} initargs=/.xtask/initargs"))
}

fn cmd_exec(o: &Options) -> Result<ExitCode, String> {
    let (path, args) = o.positional.split_first().ok_or("exec needs PATH")?;
    let initrd = target_dir().join("xtask").join("exec.cpio");
    let cmdline = match &o.root {
        Some(_) => prepare_root_exec(path, args, o.user.as_deref(), &o.files, &initrd)?,
        None if o.user.is_some() => return Err("--user needs --root".into()),
        None => prepare_exec(path, args, &o.files, &initrd)?,
    };
    let kernel = build_kernel(o.release)?;
    let mut cfg = qemu_config(&kernel, o);
    cfg.initrd = Some(initrd);
    cfg.stdin = true;
    cfg.cmdline = format!("{cmdline} {}", cfg.cmdline);
    let r = qemu::run(&cfg)?;
    match (r.exit, init_exit_status(&r.output)) {
        (QemuExit::Success, Some(s)) => Ok(ExitCode::from(s)),
        (_, Some(_)) if leak::verdict(&r.output).is_err() => {
            Err(format!("the program ran, then the kernel failed: {}", leak::verdict(&r.output).unwrap_err()))
        }
        (exit, _) => Err(format!("the program did not run to completion: kernel ended with {exit:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let opts = match parse_options(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "build" => build_kernel(opts.release).map(|p| {
            println!("{}", p.display());
            ExitCode::SUCCESS
        }),
        "run" => bench::cmd_run(&opts),
        "bench" => bench::cmd_bench(&opts),
        "test" => match &opts.inject {
            Some(spec) => inject::cmd_inject(&opts, spec),
            None => test::cmd_test(&opts),
        },
        "exec" => cmd_exec(&opts),
        "fuzz" => fuzz::cmd_fuzz(&opts),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        c => Err(format!("unknown command {c}\n{USAGE}")),
    };
    result.unwrap_or_else(|e| {
        eprintln!("xtask: {e}");
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exec_options_stop_at_the_program_path() {
        let o = parse_options(&strings(&["--mem", "1G", "--file", "a.txt:/data/a.txt", "/bin/prog", "--mem", "x"]))
            .unwrap();
        assert_eq!(o.mem.as_deref(), Some("1G"));
        assert_eq!(o.files, vec![(PathBuf::from("a.txt"), "data/a.txt".to_string())]);
        assert_eq!(o.positional, strings(&["/bin/prog", "--mem", "x"]));
    }

    #[test]
    fn bad_options_are_errors() {
        assert!(parse_options(&strings(&["--smp", "two"])).is_err());
        assert!(parse_options(&strings(&["--file", "nocolon"])).is_err());
        assert!(parse_options(&strings(&["--bogus"])).is_err());
        assert!(parse_options(&strings(&["--timeout"])).is_err());
    }

    #[test]
    fn init_exit_status_line_is_parsed() {
        assert_eq!(init_exit_status("x\nmshare-kernel: init exited with status 3\n"), Some(3));
        assert_eq!(init_exit_status("mshare-kernel: no init program\n"), None);
    }

    #[test]
    fn initramfs_gets_parent_directories() {
        let p = std::env::temp_dir().join(format!("xtask-test-{}.cpio", std::process::id()));
        write_initramfs(&p, &[("a/b/c.txt".into(), 0o644, b"x".to_vec())]).unwrap();
        let data = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        let names: Vec<String> = cpio::Reader::new(&data).map(|e| e.unwrap().name.to_string()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c.txt"]);
    }
}
