//! `cargo xtask fuzz --seconds S --seed X [--smp N]`: boots the kernel with the system
//! call fuzzer (`user_tests/src/bin/fuzz.rs`) as /init for S seconds. The fuzzer's
//! supervisor stops and reaps everything and powers off, so the kernel's leak check runs.
//! A panic, a hang (QEMU killed at S + `MARGIN`), a leak, a process that SIGKILL cannot
//! end or a worker killed by a fault signal fails the run: the seed and the end of the
//! console (with the kernel's per-task system call dump) are printed, and the same seed
//! replays the same calls.

use crate::qemu::{self, QemuExit};
use crate::{build_kernel, qemu_config, target_dir, Options};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Boot, shutdown and the supervisor's final reaping, on top of the fuzzing time.
const MARGIN: u64 = 60;
pub const DEFAULT_SECONDS: u64 = 60;
pub const DEFAULT_SEED: u64 = 1;
/// Console lines shown after a failure when the kernel printed no task dump.
const TAIL: usize = 80;
/// The console of `cargo xtask fuzz` and of the test suite's fuzzer step.
pub const LOG: &str = "fuzz.log";

/// How a fuzz boot ended.
pub struct Outcome {
    pub verdict: Result<(), String>,
    /// The supervisor's last line (`fuzz: done: ...`), if it got there.
    pub summary: Option<String>,
    pub output: String,
}

/// Runs the fuzzer in the kernel for `seconds` with `seed`; `echo` forwards the
/// supervisor's lines (progress, reports) as they come; `extra` goes to the fuzzer; the
/// whole console is kept in `target/xtask/LOG` (each kind of run its own file, so that a
/// later run in the same `cargo xtask test` does not overwrite a failing one's).
#[allow(clippy::too_many_arguments)]
pub fn run(
    log: &str,
    kernel: &Path,
    fuzz: &Path,
    o: &Options,
    seconds: u64,
    seed: u64,
    echo: bool,
    extra: &[&str],
) -> Result<Outcome, String> {
    let mut args = vec!["--seconds".to_string(), seconds.to_string(), "--seed".to_string(), format!("{seed:#x}")];
    args.extend(extra.iter().map(|a| a.to_string()));
    let initrd = target_dir().join("xtask").join("fuzz.cpio");
    let cmdline = crate::prepare_exec(&fuzz.to_string_lossy(), &args, &[], &initrd)?;
    let mut cfg = qemu_config(kernel, o);
    cfg.initrd = Some(initrd);
    cfg.cmdline = format!("{cmdline} {}", cfg.cmdline);
    cfg.mem = o.mem.clone().unwrap_or_else(|| "1G".into());
    cfg.timeout = Duration::from_secs(seconds + MARGIN);
    cfg.echo = false;
    if echo {
        cfg.echo_filter = Some(|l| l.starts_with("fuzz: ") || l.starts_with("KERNEL PANIC"));
    }
    let r = qemu::run(&cfg)?;
    // The whole console, for what the verdict does not show (warnings, lockdep reports).
    let _ = std::fs::write(console_path(log), &r.output);
    let summary = r.output.lines().rev().find(|l| l.starts_with("fuzz: done: ") || l.starts_with("fuzz: FAILED: "));
    let leak = crate::leak::verdict(&r.output);
    let verdict = match (r.exit, summary, leak) {
        (QemuExit::Timeout, ..) => Err(format!("the kernel hung: QEMU killed after {} s", seconds + MARGIN)),
        (_, _, _) if r.output.contains("KERNEL PANIC") => Err("kernel panic".into()),
        (_, Some(s), _) if s.starts_with("fuzz: FAILED: ") => Err(s.to_string()),
        (_, _, Err(e)) if e.contains("WATCHDOG") => Err(e),
        (_, None, _) => Err(format!("the fuzzer did not finish (kernel ended with {:?})", r.exit)),
        (_, _, Err(e)) => Err(e),
        (QemuExit::Success, Some(_), Ok(())) => Ok(()),
        (exit, ..) => Err(format!("kernel ended with {exit:?}")),
    };
    Ok(Outcome { verdict, summary: summary.map(str::to_string), output: r.output })
}

/// Where [`run`] keeps the console of a run logged as `log`.
pub fn console_path(log: &str) -> std::path::PathBuf {
    target_dir().join("xtask").join(log)
}

/// The end of the console for a failure report: from the kernel's task dump if there is
/// one (with some lines before it), else the last `TAIL` lines.
pub fn failure_tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let from = match lines.iter().position(|l| l.starts_with("---- tasks and their last system calls")) {
        Some(i) => i.saturating_sub(TAIL / 2),
        None => lines.len().saturating_sub(TAIL),
    };
    lines[from..].join("\n")
}

pub fn cmd_fuzz(o: &Options) -> Result<ExitCode, String> {
    let seconds = o.seconds.unwrap_or(DEFAULT_SECONDS);
    let seed = o.seed.unwrap_or(DEFAULT_SEED);
    let ut = crate::user::build_user_tests()?;
    let kernel = build_kernel(o.release)?;
    println!("xtask: fuzzing for {seconds} s with seed {seed:#x}");
    let out = run(LOG, &kernel, &ut.fuzz, o, seconds, seed, true, &[])?;
    match out.verdict {
        Ok(()) => {
            println!("xtask: fuzz passed (seed {seed:#x}, {seconds} s): no panic, hang or leak");
            if let Some(s) = out.summary {
                println!("xtask: {s}");
            }
            for l in crate::leak::lines(&out.output) {
                println!("xtask: {l}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("---- end of the console ----\n{}", failure_tail(&out.output));
            println!("xtask: fuzz FAILED with seed {seed:#x}: {why}");
            println!("xtask: console in {}", console_path(LOG).display());
            println!("xtask: reproduce with: {}", reproduce(o, seconds, seed));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The command that reruns a fuzzer run made with `o`, `seconds` and `seed` (the same CPU
/// count and kernel build: a schedule-dependent failure needs both).
pub fn reproduce(o: &Options, seconds: u64, seed: u64) -> String {
    let mut cmd = format!("cargo xtask fuzz --seconds {seconds} --seed {seed:#x}");
    if let Some(n) = o.smp {
        cmd += &format!(" --smp {n}");
    }
    if o.release {
        cmd += " --release";
    }
    if !o.append.is_empty() {
        cmd += &format!(" --append '{}'", o.append.join(" "));
    }
    cmd
}

/// `--seed` takes decimal or 0x-prefixed hex.
pub fn parse_seed(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("0x2a"), Some(42));
        assert_eq!(parse_seed("x"), None);
    }

    #[test]
    fn failure_tail_starts_before_the_task_dump() {
        let mut out: String = (0..200).map(|i| format!("line {i}\n")).collect();
        out.push_str("---- tasks and their last system calls ----\ntask pid 1\n");
        let tail = failure_tail(&out);
        assert!(tail.starts_with(&format!("line {}", 200 - TAIL / 2)), "{tail}");
        assert!(tail.ends_with("task pid 1"));
        assert_eq!(failure_tail("a\nb\n"), "a\nb");
    }
}
