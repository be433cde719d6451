//! `cargo xtask test --inject SPEC [--runs K] [--seconds S] [--seed X]`: the user test
//! suite in the kernel (K boots, seeds 1..=K unless SPEC names one), then S seconds of the
//! system call fuzzer, with allocation-failure injection on the kernel command line
//! (`fail_page_alloc=SPEC failslab=SPEC`, see `kernel/src/mm/fail.rs`). Under injection
//! tests may fail with ENOMEM or be killed; what must hold is: no kernel panic, no hang
//! (QEMU killed at the timeout), the suite runs to its end, and the power-off leak check
//! is clean. Prints a verdict per boot with the injected-failure counts.

use crate::qemu::{QemuExit, QemuRun};
use crate::{build_kernel, user, Options};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

/// The kernel command-line words for `spec` (one spec for frames and for the heap).
pub fn cmdline(spec: &str) -> String {
    format!("fail_page_alloc={spec} failslab={spec}")
}

/// The kernel's `injected failures: ...` line, if it printed one.
pub fn injected_line(output: &str) -> Option<&str> {
    output.lines().find_map(|l| l.strip_prefix("mshare-kernel: injected failures: "))
}

/// Failures injected into frame and heap allocations, from the kernel's line.
pub fn injected_counts(output: &str) -> Option<(u64, u64)> {
    let l = injected_line(output)?;
    let num_after = |key: &str| -> Option<u64> { l.split(key).nth(1)?.split_whitespace().next()?.parse().ok() };
    Some((num_after("fail_page_alloc ")?, num_after("failslab ")?))
}

/// The verdict on a user-suite boot under injection: the criteria, not the tests' results.
pub fn suite_verdict(r: &QemuRun) -> Result<String, String> {
    let finished = r.output.lines().rev().find(|l| l.starts_with("init: ") && l.contains(" passed, "));
    if r.output.contains("KERNEL PANIC") {
        return Err("kernel panic".into());
    }
    if r.exit == QemuExit::Timeout {
        return Err("the kernel hung: QEMU killed at the timeout".into());
    }
    let Some(finished) = finished else {
        return Err(format!("the suite did not run to its end (kernel ended with {:?})", r.exit));
    };
    crate::leak::verdict(&r.output)?;
    if injected_counts(&r.output).is_none() {
        return Err("the kernel printed no injected-failure count (option not taken?)".into());
    }
    let killed = r.output.lines().filter(|l| l.starts_with("FAIL ") && l.ends_with("killed by signal 9")).count();
    Ok(format!("{finished} ({killed} programs killed)"))
}

/// `spec` for boot `i` of several: its own seed unless the spec names one.
pub fn spec_for_run(spec: &str, i: u32) -> String {
    if spec.contains("seed=") {
        spec.to_string()
    } else {
        format!("{spec},seed={}", i + 1)
    }
}

/// The names of the tests a console reports (passed or failed).
pub fn tests_run(output: &str) -> BTreeSet<String> {
    crate::user::parse_harness_output(output).into_iter().map(|(name, _)| name).collect()
}

/// One boot of the user suite under `spec`; Ok with the summary line. The names of
/// the tests that ran go into `ran`.
pub fn run_suite(
    kernel: &Path,
    ut: &user::UserTests,
    o: &Options,
    spec: &str,
    log: &str,
    ran: &mut BTreeSet<String>,
) -> Result<String, String> {
    let r = crate::test::boot_user_suite(kernel, o, ut, &cmdline(spec))?;
    save_console(log, &r.output);
    ran.extend(tests_run(&r.output));
    match suite_verdict(&r) {
        Ok(summary) => {
            let tests = r.output.lines().filter(|l| l.starts_with("test ") && l.contains(" ... ")).count();
            Ok(format!("{summary}, {tests} test lines; injected: {}", injected_line(&r.output).unwrap_or("?")))
        }
        Err(why) => {
            println!("---- end of the console ----\n{}", crate::fuzz::failure_tail(&r.output));
            Err(format!("{why} (reproduce: cargo xtask test --inject {spec} --seconds 0)"))
        }
    }
}

pub fn cmd_inject(o: &Options, spec: &str) -> Result<ExitCode, String> {
    let seconds = o.seconds.unwrap_or(60);
    let seed = o.seed.unwrap_or(crate::fuzz::DEFAULT_SEED);
    let runs = o.runs.unwrap_or(1);
    let ut = user::build_user_tests()?;
    let kernel = build_kernel(o.release)?;
    let mut failed = false;
    let mut ran = BTreeSet::new();
    for i in 0..runs {
        let spec = spec_for_run(spec, i);
        println!("== the user test suite with {}", cmdline(&spec));
        match run_suite(&kernel, &ut, o, &spec, &format!("inject-suite-{}.log", i + 1), &mut ran) {
            Ok(line) => println!("inject: PASS user suite ({spec}): no panic, hang or leak; {line}"),
            Err(why) => {
                failed = true;
                println!("inject: FAIL user suite ({spec}): {why}");
            }
        }
    }
    if runs > 0 {
        println!("inject: {} distinct harness tests ran in {runs} boots", ran.len());
    }
    let spec = &spec_for_run(spec, 0);
    let words = cmdline(spec);
    if seconds > 0 {
        println!("== the system call fuzzer, {seconds} s, seed {seed:#x}, with {words}");
        match run_fuzz(&kernel, &ut.fuzz, o, spec, seconds, seed) {
            Ok(line) => println!("inject: PASS fuzz: {line}"),
            Err(why) => {
                failed = true;
                println!("inject: FAIL fuzz: {why}");
            }
        }
    }
    println!("inject: {}", if failed { "FAILED" } else { "passed" });
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Keeps a boot's whole console in `target/xtask/NAME` and says where.
fn save_console(name: &str, output: &str) {
    let path = crate::target_dir().join("xtask").join(name);
    match std::fs::write(&path, output) {
        Ok(()) => println!("inject: console in {}", path.display()),
        Err(e) => println!("inject: cannot write {}: {e}", path.display()),
    }
}

/// The console of the fuzzer under injection, beside the plain fuzzer's.
const FUZZ_LOG: &str = "inject-fuzz.log";

/// The fuzzer under injection; Ok with its summary and the injected counts.
pub fn run_fuzz(
    kernel: &Path,
    fuzz: &Path,
    o: &Options,
    spec: &str,
    seconds: u64,
    seed: u64,
) -> Result<String, String> {
    let mut fo = o.clone();
    fo.append.push(cmdline(spec));
    let out = crate::fuzz::run(FUZZ_LOG, kernel, fuzz, &fo, seconds, seed, false, &["--injection", "1"])?;
    println!("inject: console in {}", crate::fuzz::console_path(FUZZ_LOG).display());
    let injected = injected_line(&out.output).map(str::to_string);
    let deaths = out.output.lines().find(|l| l.ends_with(" under injection")).unwrap_or_default().to_string();
    match (out.verdict, injected) {
        (Ok(()), Some(i)) => Ok(format!("{}; {deaths}; injected: {i}", out.summary.unwrap_or_default())),
        (Ok(()), None) => Err("the kernel printed no injected-failure count".into()),
        (Err(why), _) => {
            println!("---- end of the console ----\n{}", crate::fuzz::failure_tail(&out.output));
            Err(format!("{why} (reproduce: cargo xtask test --inject {spec} --seconds {seconds} --seed {seed:#x})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(exit: QemuExit, output: &str) -> QemuRun {
        QemuRun { exit, output: output.to_string(), first_line: None, elapsed: Duration::ZERO, steps_done: 0 }
    }

    const INJECTED: &str =
        "mshare-kernel: injected failures: fail_page_alloc 12 of 1200 calls, failslab 3 of 300 calls\n";

    #[test]
    fn injected_counts_are_parsed() {
        assert_eq!(injected_counts(INJECTED), Some((12, 3)));
        assert_eq!(injected_counts("nothing"), None);
    }

    #[test]
    fn failed_tests_pass_the_verdict_but_a_panic_a_hang_or_a_leak_do_not() {
        let ok = format!(
            "FAIL vm: killed by signal 9\ninit: 10 passed, 2 failed\n{INJECTED}mshare-kernel: frames in use (page cache aside) at start 1, now 1: no leak\nmshare-kernel: leak check: 1 resources, no leak\n"
        );
        assert!(suite_verdict(&run(QemuExit::Success, &ok)).unwrap().contains("1 programs killed"));
        assert!(suite_verdict(&run(QemuExit::Timeout, &ok)).is_err());
        assert!(suite_verdict(&run(QemuExit::Failed, &format!("{ok}KERNEL PANIC: x\n"))).is_err());
        assert!(suite_verdict(&run(QemuExit::Failed, &ok.replace("now 1: no leak", "now 4: LEAK of 3"))).is_err());
        assert!(suite_verdict(&run(QemuExit::Success, &ok.replace("init: 10", "x: 10"))).is_err());
    }
}
