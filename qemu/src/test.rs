//! `cargo xtask test`: every suite the project has, one tally.
//!
//! 1. host unit tests (`cargo test` over the host crates);
//! 2. in-kernel tests (`ktest`) on `-M microvm` and `-M q35`;
//! 3. runner checks: the kernel boots and prints its memory summary, and
//!    deliberate failures (null write, stack overflow, panic, hang) are
//!    reported the right way and fail the run — never a silent pass;
//! 4. the user tests on the Linux host, in the kernel and on the Linux guest
//!    (Debian's Linux in the same QEMU), with the verdicts compared.
//!
//! Ends with `N passed, N failed` and a non-zero exit on any failure.

use crate::console;
use crate::qemu::{self, QemuConfig, QemuExit};
use crate::{build_kernel, qemu_config, target_dir, user, write_initramfs, Options};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Known failures that failed as expected (`user_tests/known_failures.txt`).
    skipped: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("PASS {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
                self.failures.push(name.to_string());
            }
        }
    }
}

/// Sums `test result: ok. N passed; M failed; ...` lines of `cargo test`.
pub fn parse_cargo_test(output: &str) -> (usize, usize, Vec<String>) {
    let (mut passed, mut failed, mut names) = (0, 0, Vec::new());
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |key: &str| -> usize {
                rest.split([';', '.']).find_map(|part| part.trim().strip_suffix(key)?.trim().parse().ok()).unwrap_or(0)
            };
            passed += num(" passed");
            failed += num(" failed");
        } else if let Some(t) = line.strip_prefix("test ").and_then(|l| l.strip_suffix(" ... FAILED")) {
            names.push(t.to_string());
        }
    }
    (passed, failed, names)
}

/// Per-test lines of a ktest boot: (name, passed).
pub fn parse_ktest(output: &str) -> Vec<(String, bool)> {
    output
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("ktest ")?;
            let (name, verdict) = rest.split_once(" ... ")?;
            Some((name.to_string(), verdict.trim() == "ok"))
        })
        .collect()
}

fn host_tests(t: &mut Tally) {
    println!("== host unit tests (cargo test)");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(crate::workspace_root())
        .args(["test", "--quiet"])
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return t.record("host: cargo test", Err(e.to_string())),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let (passed, failed, names) = parse_cargo_test(&text);
    println!("host: {passed} passed, {failed} failed");
    t.passed += passed;
    t.failed += failed;
    t.failures.extend(names.iter().map(|n| format!("host: {n}")));
    if !out.status.success() && failed == 0 {
        print!("{text}");
        t.record("host: cargo test", Err(format!("cargo test exited with {}", out.status)));
    } else if failed > 0 {
        print!("{text}");
    }
}

fn ktests(t: &mut Tally, kernel: &Path, o: &Options, initrd: &Path) {
    for machine in ["microvm", "q35"] {
        println!("== in-kernel tests on -M {machine}");
        let mut cfg = qemu_config(kernel, o);
        cfg.machine = machine.into();
        cfg.initrd = Some(initrd.to_path_buf());
        cfg.cmdline = "ktest log=warn".into();
        cfg.echo = false;
        let r = match qemu::run(&cfg) {
            Ok(r) => r,
            Err(e) => return t.record(&format!("{machine}: boot"), Err(e)),
        };
        let results = parse_ktest(&r.output);
        for (name, ok) in &results {
            t.record(&format!("{machine}: ktest {name}"), if *ok { Ok(()) } else { Err("see output".into()) });
        }
        let summary = r.output.lines().any(|l| l.starts_with("ktest result: ") && l.ends_with(" 0 failed"));
        let verdict = match (r.exit, summary, results.is_empty()) {
            (QemuExit::Success, true, false) => Ok(()),
            (exit, _, _) => {
                print!("{}", r.output);
                Err(format!("kernel ended with {exit:?}"))
            }
        };
        t.record(&format!("{machine}: ktest run completes"), verdict);
        let online = cpus_online(&r.output);
        t.record(
            &format!("{machine}: every CPU of -smp {} came online", cfg.smp),
            if online == Some(cfg.smp) { Ok(()) } else { Err(format!("the kernel reported {online:?} CPUs online")) },
        );
    }
}

/// The kernel's `smp: N CPUs online` boot line.
pub fn cpus_online(output: &str) -> Option<u32> {
    output.lines().find_map(|l| l.strip_prefix("smp: ")?.strip_suffix(" CPUs online")?.trim().parse().ok())
}

/// A boot that must fail in a specific, reported way.
struct FailureCase {
    name: &'static str,
    cmdline: &'static str,
    expect_exit: QemuExit,
    must_contain: &'static [&'static str],
    timeout: u64,
}

const FAILURE_CASES: &[FailureCase] = &[
    FailureCase {
        name: "null write is reported as page fault with RIP and CR2",
        cmdline: "ktest=fault_null_write",
        expect_exit: QemuExit::Failed,
        must_contain: &[
            "EXCEPTION: page fault (vector 14)",
            "CR2=0x0000000000000000",
            "RIP=0xffffffff8",
            "on write in kernel mode",
        ],
        timeout: 30,
    },
    FailureCase {
        name: "stack overflow hits the guard page and is reported as double fault",
        cmdline: "ktest=fault_stack_overflow",
        expect_exit: QemuExit::Failed,
        must_contain: &["EXCEPTION: double fault (vector 8)"],
        timeout: 30,
    },
    FailureCase {
        name: "kernel panic is reported and fails the run",
        cmdline: "ktest=fault_panic",
        expect_exit: QemuExit::Failed,
        must_contain: &["ktest fault_panic ... FAILED", "KERNEL PANIC: ", "deliberate panic", "backtrace:"],
        timeout: 30,
    },
    FailureCase {
        name: "a hung kernel is killed at the timeout",
        cmdline: "ktest=fault_hang",
        expect_exit: QemuExit::Timeout,
        must_contain: &["memory: RAM"],
        timeout: 5,
    },
    FailureCase {
        name: "a kernel loop that never schedules is reported by the soft-lockup watchdog",
        cmdline: "ktest=fault_soft_lockup watchdog_thresh=2",
        expect_exit: QemuExit::Failed,
        must_contain: &[
            "mshare-kernel: WATCHDOG: soft lockup: CPU 0 stuck in kernel mode for ",
            "(interrupted)",
            "backtrace:",
            "---- tasks and their last system calls",
        ],
        timeout: 60,
    },
    FailureCase {
        name: "a task asleep uninterruptibly for good is reported by the hung-task watchdog",
        cmdline: "ktest=fault_hung_task hung_task_timeout_secs=2",
        expect_exit: QemuExit::Failed,
        must_contain: &[
            "mshare-kernel: WATCHDOG: hung task: pid 1 tid 1 (hung_task) in an uninterruptible sleep for ",
            "(switched out)",
            "backtrace:",
            "sleeping (uninterruptible) comm \"hung_task\"",
        ],
        timeout: 60,
    },
    FailureCase {
        name: "an open file leaked before the end of the run fails the leak check",
        cmdline: "ktest=fault_leaked_file",
        expect_exit: QemuExit::Failed,
        // The two files at the start are the kernel's own: the vDSO's and the vvar page's.
        must_contain: &["mshare-kernel: open files at start 2, now 3: LEAK of 1", "mshare-kernel: leak check: "],
        timeout: 60,
    },
    FailureCase {
        name: "a lock taken against the lock order is reported by lockdep",
        cmdline: "ktest=fault_lock_inversion",
        expect_exit: QemuExit::Failed,
        must_contain: &[
            "lock order violation on CPU 0: taking lockdep test outer (level 690.0) at ",
            "while holding lockdep test inner (level 691.0)",
        ],
        timeout: 30,
    },
    FailureCase {
        name: "an unknown ktest name fails the run",
        cmdline: "ktest=no_such_test",
        expect_exit: QemuExit::Failed,
        must_contain: &["ktest no_such_test ... FAILED: no such test"],
        timeout: 30,
    },
];

fn failure_cases(t: &mut Tally, kernel: &Path, o: &Options) {
    println!("== deliberate failures are caught");
    for case in FAILURE_CASES {
        let mut cfg = qemu_config(kernel, o);
        cfg.cmdline = format!("{} log=warn", case.cmdline);
        cfg.timeout = Duration::from_secs(case.timeout);
        cfg.echo = false;
        let result = qemu::run(&cfg).and_then(|r| {
            let missing: Vec<_> = case.must_contain.iter().filter(|s| !r.output.contains(*s)).collect();
            if r.exit != case.expect_exit || !missing.is_empty() {
                print!("{}", r.output);
                return Err(format!("exit {:?} (want {:?}), missing {:?}", r.exit, case.expect_exit, missing));
            }
            Ok(())
        });
        t.record(case.name, result);
    }
}

fn smoke(t: &mut Tally, kernel: &Path, o: &Options) {
    println!("== cargo xtask run smoke boot");
    for machine in ["microvm", "q35"] {
        let mut cfg: QemuConfig = qemu_config(kernel, o);
        cfg.machine = machine.into();
        cfg.echo = false;
        let result = qemu::run(&cfg).and_then(|r| {
            let ok = r.exit == QemuExit::Success
                && r.output.contains("memory: RAM ")
                && r.output.contains("no init program; powering off");
            if let Some(first) = r.first_line {
                println!("{machine}: first console line after {} ms", first.as_millis());
            }
            if ok {
                Ok(())
            } else {
                Err(format!("exit {:?}\n{}", r.exit, r.output))
            }
        });
        t.record(&format!("{machine}: boots and prints the memory summary"), result);
    }
}

/// A list of tests in `user_tests/`, one `suite::test` per line, with what follows a `#`
/// on that line as its reason (a line that is only a comment lists nothing).
pub fn parse_test_list(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (name, reason) = l.split_once('#').unwrap_or((l, ""));
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_string(), reason.trim().to_string()))
        })
        .collect()
}

fn read_test_list(file: &str) -> BTreeMap<String, String> {
    parse_test_list(&std::fs::read_to_string(crate::workspace_root().join("user_tests").join(file)).unwrap_or_default())
}

/// Tests the kernel does not pass yet (`user_tests/known_failures.txt`). A listed test that
/// fails counts as skipped; one that passes fails the run, so the list only shrinks.
fn known_failures() -> BTreeSet<String> {
    read_test_list("known_failures.txt").into_keys().collect()
}

/// The tests each user test boot must run.
#[derive(Default)]
struct Expected {
    /// The tests the host ran: checked in our kernel and on the Linux guest.
    host: Vec<String>,
    /// The tests of the kernel-only suites (`user::KERNEL_ONLY_SUITES`): checked in our
    /// kernel alone.
    kernel_only: Vec<String>,
}

impl Expected {
    /// Every test our kernel must run.
    fn in_kernel(&self) -> Vec<String> {
        self.host.iter().chain(&self.kernel_only).cloned().collect()
    }
}

fn user_tests_on_host(t: &mut Tally, ut: &user::UserTests) -> Expected {
    println!("== user tests on the Linux host");
    let run = user::run_on_host(ut);
    let mut names = Vec::new();
    for (name, r) in run.results {
        t.record(&format!("host: {name}"), r);
        names.push(name);
    }
    if !run.kernel_only.is_empty() {
        println!("host: {} tests of kernel-only suites listed, not run", run.kernel_only.len());
    }
    Expected { host: names, kernel_only: run.kernel_only }
}

/// Writes the initramfs of a user test boot: /init, every test program in /tests (but the
/// kernel-only suites' unless `kernel_only`), and busybox as /bin/sh.
fn user_test_initramfs(ut: &user::UserTests, initrd: &Path, kernel_only: bool) -> Result<(), String> {
    let mut files: Vec<(String, u32, Vec<u8>)> = Vec::new();
    let mut add = |guest: String, host: &Path| match std::fs::read(host) {
        Ok(d) => {
            files.push((guest, 0o755, d));
            Ok(())
        }
        Err(e) => Err(format!("{}: {e}", host.display())),
    };
    add("init".into(), &ut.init)?;
    for (name, path) in ut.tests.iter().chain(&ut.c_programs) {
        if kernel_only || !user::is_kernel_only(name) {
            add(format!("tests/{name}"), path)?;
        }
    }
    let bb = crate::deps::ensure_busybox()?;
    add("bin/busybox".into(), &bb)?;
    files.push(("bin/sh".into(), cpio::S_IFLNK | 0o777, b"busybox".to_vec()));
    write_initramfs(initrd, &files)
}

/// Boots the kernel with /init running every user test program (`extra` added to the
/// kernel command line) and returns the console.
pub fn boot_user_suite(kernel: &Path, o: &Options, ut: &user::UserTests, extra: &str) -> Result<qemu::QemuRun, String> {
    let initrd = target_dir().join("xtask").join("user_tests.cpio");
    user_test_initramfs(ut, &initrd, true).map_err(|e| format!("user test initramfs: {e}"))?;
    let mut cfg = qemu_config(kernel, o);
    cfg.initrd = Some(initrd);
    // `--append` words too: the options' kernel command line reaches every boot.
    cfg.cmdline = format!("log=warn init=/init {extra} {}", o.append.join(" ")).trim_end().to_string();
    cfg.mem = o.mem.clone().unwrap_or_else(|| "1G".into());
    cfg.timeout = Duration::from_secs(o.timeout.unwrap_or(600));
    cfg.echo = false;
    let run = qemu::run(&cfg)?;
    // The whole console, for what the verdicts do not show (warnings, lockdep reports).
    let name = if extra.is_empty() { "user-tests.log" } else { "user-tests-extra.log" };
    let _ = std::fs::write(target_dir().join("xtask").join(name), &run.output);
    Ok(run)
}

/// Each test's verdict in the console output of a user test boot: the family binaries'
/// `test ...` lines, and init's PASS/FAIL lines for the C programs.
fn user_test_verdicts(output: &str, ut: &user::UserTests) -> BTreeMap<String, Result<(), String>> {
    let mut seen: BTreeMap<String, Result<(), String>> = user::parse_harness_output(output).into_iter().collect();
    for (name, _) in &ut.c_programs {
        let pass = output.lines().any(|l| l == format!("PASS {name}"));
        let fail = output.lines().find(|l| l.starts_with(&format!("FAIL {name}:")));
        if pass {
            seen.insert(name.clone(), Ok(()));
        } else if let Some(l) = fail {
            seen.insert(name.clone(), Err(l.to_string()));
        }
    }
    seen
}

/// Whether init printed its summary, i.e. every program ran; if not, prints the end of the
/// console.
fn user_test_run_finished(output: &str, who: &str) -> bool {
    let finished = output.lines().any(|l| l.starts_with("init: ") && l.contains(" passed, "));
    if !finished {
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        println!("{who} output (last 40 lines):");
        for l in tail.iter().rev() {
            println!("  {l}");
        }
    }
    finished
}

/// Boots the kernel with /init running every user test program, then matches each test
/// of `expected` (those the host ran, and the kernel-only suites' it listed) against the
/// kernel's verdict. Returns the kernel's verdicts.
fn user_tests_in_kernel(
    t: &mut Tally,
    kernel: &Path,
    o: &Options,
    ut: &user::UserTests,
    expected: &[String],
) -> BTreeMap<String, Result<(), String>> {
    println!("== user tests in the kernel");
    let run = match boot_user_suite(kernel, o, ut, "") {
        Ok(r) => r,
        Err(e) => {
            t.record("kernel: user tests boot", Err(e));
            return BTreeMap::new();
        }
    };
    let verdicts = user_test_verdicts(&run.output, ut);
    let mut seen = verdicts.clone();
    let known = known_failures();
    for name in expected {
        let r = seen.remove(name).unwrap_or_else(|| Err(format!("did not run (kernel ended with {:?})", run.exit)));
        match (r, known.contains(name)) {
            (Ok(()), false) => t.record(&format!("kernel: {name}"), Ok(())),
            (Err(e), false) => t.record(&format!("kernel: {name}"), Err(e)),
            (Err(_), true) => {
                t.skipped += 1;
                println!("XFAIL kernel: {name}");
            }
            (Ok(()), true) => t.record(
                &format!("kernel: {name}"),
                Err("passes now: remove it from user_tests/known_failures.txt".into()),
            ),
        }
    }
    let finished = user_test_run_finished(&run.output, "kernel");
    t.record(
        "kernel: user test run completes",
        if finished { Ok(()) } else { Err(format!("kernel ended with {:?}", run.exit)) },
    );
    // After init, every process is reaped and the kernel compares each resource with its
    // figure before init (`kernel/src/leak.rs`).
    for l in crate::leak::lines(&run.output) {
        println!("{l}");
    }
    t.record(
        "kernel: the whole user test suite leaks no frame, heap byte, file, inode, VMA, page table or task",
        crate::leak::verdict(&run.output),
    );
    verdicts
}

/// The user suites in our kernel again with transparent page-table sharing on
/// (`pt_share=on`): each test that passed with it off must pass, except those in
/// `user_tests/pt_share_off_only.txt`, each with its reason (Linux's figures without
/// sharing, such as a child's RssShmem right after fork), which count as skipped; and
/// nothing may leak.
fn user_tests_with_pt_share(
    t: &mut Tally,
    kernel: &Path,
    o: &Options,
    ut: &user::UserTests,
    off: &BTreeMap<String, Result<(), String>>,
) {
    println!("== user tests in the kernel with pt_share=on");
    let run = match boot_user_suite(kernel, o, ut, "pt_share=on") {
        Ok(r) => r,
        Err(e) => return t.record("pt_share=on: user tests boot", Err(e)),
    };
    let on = user_test_verdicts(&run.output, ut);
    let off_only = read_test_list("pt_share_off_only.txt");
    let unexplained: Vec<&String> = off_only.iter().filter(|(_, why)| why.is_empty()).map(|(n, _)| n).collect();
    if !unexplained.is_empty() {
        t.record(
            "pt_share=on: every knob-off-only test has its reason",
            Err(format!("add `# reason` to {unexplained:?} in user_tests/pt_share_off_only.txt")),
        );
    }
    for (name, _) in off.iter().filter(|(_, r)| r.is_ok()) {
        let r = on.get(name).cloned().unwrap_or_else(|| Err(format!("did not run (kernel ended with {:?})", run.exit)));
        match (r, off_only.get(name)) {
            (r, None) => t.record(&format!("pt_share=on: {name}"), r),
            (Err(e), Some(reason)) => {
                t.skipped += 1;
                println!("XFAIL pt_share=on: {name}: {e} (knob-off-only: {reason})");
            }
            (Ok(()), Some(_)) => t.skipped += 1,
        }
    }
    t.record("pt_share=on: the whole user test suite leaks nothing", crate::leak::verdict(&run.output));
}

/// Boots Debian's Linux (the benchmark's oracle, `linux.rs`) in the same QEMU machine with
/// the user test initramfs: the oracle as root with every capability, which the host may
/// not have. Each test the host ran must pass there, except those listed with their reason
/// in `user_tests/linux_guest_differences.txt` (counted as skipped when they fail; one that
/// passes fails the run, so the list only shrinks). Then reports every test whose verdict
/// differs between our kernel (`kernel`, when it ran) and the guest.
fn user_tests_on_linux_guest(
    t: &mut Tally,
    o: &Options,
    ut: &user::UserTests,
    expected: &[String],
    kernel: &BTreeMap<String, Result<(), String>>,
) {
    println!("== user tests on the Linux guest");
    let linux = match crate::linux::ensure_linux() {
        Ok(l) => l,
        Err(e) => return t.record("linux-guest: fetch Debian's kernel", Err(e)),
    };
    let initrd = target_dir().join("xtask").join("user_tests_linux.cpio");
    if let Err(e) = user_test_initramfs(ut, &initrd, false) {
        return t.record("linux-guest: user test initramfs", Err(e));
    }
    let mut cfg = QemuConfig::new(&linux.vmlinuz);
    cfg.machine = o.machine.clone().unwrap_or(cfg.machine);
    cfg.cmdline = [crate::linux::cmdline(&cfg.machine, "/init"), o.append.join(" ")].join(" ").trim().to_string();
    cfg.initrd = Some(initrd);
    cfg.mem = o.mem.clone().unwrap_or_else(|| "1G".into());
    // The oracle runs with as many CPUs as our kernel.
    cfg.smp = o.smp.unwrap_or(1);
    cfg.timeout = Duration::from_secs(o.timeout.unwrap_or(600));
    cfg.echo = false;
    let run = match qemu::run(&cfg) {
        Ok(r) => r,
        Err(e) => return t.record("linux-guest: boot", Err(e)),
    };
    println!(
        "linux-guest: {} {} booted, user tests took {:.0} s",
        linux.package,
        linux.version,
        run.elapsed.as_secs_f64()
    );
    if let Some(l) = run.output.lines().find(|l| l.starts_with("init: kernel ")) {
        println!("linux-guest: {l}");
    }
    let log = target_dir().join("xtask").join("linux-guest.log");
    let _ = std::fs::write(&log, &run.output);
    println!("linux-guest: console log in {}", log.display());
    let guest = user_test_verdicts(&run.output, ut);
    let differences = read_test_list("linux_guest_differences.txt");
    let unexplained: Vec<&String> = differences.iter().filter(|(_, why)| why.is_empty()).map(|(n, _)| n).collect();
    if !unexplained.is_empty() {
        t.record(
            "linux-guest: every known difference has its reason",
            Err(format!("add `# reason` to {unexplained:?} in user_tests/linux_guest_differences.txt")),
        );
    }
    for name in expected {
        let r =
            guest.get(name).cloned().unwrap_or_else(|| Err(format!("did not run (Linux ended with {:?})", run.exit)));
        let label = format!("linux-guest: {name}");
        match (r, differences.get(name)) {
            (Ok(()), None) => t.record(&label, Ok(())),
            (Err(e), None) => t.record(&label, Err(e)),
            (Err(e), Some(reason)) => {
                t.skipped += 1;
                println!("XFAIL {label}: {e} (known difference: {reason})");
            }
            (Ok(()), Some(_)) => {
                t.record(&label, Err("passes now: remove it from user_tests/linux_guest_differences.txt".into()))
            }
        }
    }
    let finished = user_test_run_finished(&run.output, "Linux guest");
    t.record(
        "linux-guest: user test run completes",
        if finished { Ok(()) } else { Err(format!("Linux ended with {:?}", run.exit)) },
    );
    if kernel.is_empty() {
        return;
    }
    let differ = verdict_differences(kernel, &guest, expected.iter());
    println!("== our kernel vs the Linux guest: {} tests differ", differ.len());
    for line in &differ {
        println!("DIFFER {line}");
    }
}

/// One line per test whose verdict differs between our kernel and the Linux guest (a test
/// missing from a run counts as failed there).
pub fn verdict_differences<'a>(
    kernel: &BTreeMap<String, Result<(), String>>,
    guest: &BTreeMap<String, Result<(), String>>,
    names: impl Iterator<Item = &'a String>,
) -> Vec<String> {
    let verdict = |m: &BTreeMap<String, Result<(), String>>, n: &str| match m.get(n) {
        Some(Ok(())) => "passes".to_string(),
        Some(Err(e)) => format!("fails ({e})"),
        None => "did not run".to_string(),
    };
    names
        .filter(|n| kernel.get(*n).is_some_and(|r| r.is_ok()) != guest.get(*n).is_some_and(|r| r.is_ok()))
        .map(|n| format!("{n}: our kernel {}, the Linux guest {}", verdict(kernel, n), verdict(guest, n)))
        .collect()
}

/// What `cargo xtask exec` promises, checked: unmodified static binaries run
/// as the first program and their output and exit status come back.
fn exec_checks(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    println!("== cargo xtask exec of static Linux binaries");
    let busybox = crate::deps::ensure_busybox().map(|p| p.to_string_lossy().into_owned());
    let std_smoke = ut.tests.iter().find(|(n, _)| n == "std_smoke").map(|(_, p)| p.to_string_lossy().into_owned());
    let c_program =
        |name: &str| ut.c_programs.iter().find(|(n, _)| n == name).map(|(_, p)| p.to_string_lossy().into_owned());
    let fork_many = c_program("fork_many");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // (what, program, arguments, output that must appear)
    type Case<'a> = (&'a str, Option<String>, Vec<String>, Vec<&'a str>);
    let smoke_script = crate::workspace_root().join("user_tests/scripts/busybox_smoke.sh");
    let cases: Vec<Case> = vec![
        (
            "busybox applets in a shell script (files, pipes, archives, jobs, /proc)",
            busybox.clone().ok(),
            s(&["sh", "/busybox_smoke.sh"]),
            vec!["hello\n", "42\n", "40960\n", "timeout status 143", "bg done", "tmpfs ", "done-all"],
        ),
        (
            "an init that exits with children still running: they are killed and reaped before the leak check",
            busybox.clone().ok(),
            s(&["sh", "-c", "sleep 1000 & sleep 1000 & (sleep 1000 &) ; echo started"]),
            vec!["started\n"],
        ),
        (
            "an init that exits while another process's threads create detached threads: all are reaped, every kernel stack back",
            c_program("threads_left_spawning"),
            vec![],
            vec!["threads_left_spawning: started\n"],
        ),
        (
            "busybox sh -c 'echo hi; ls /'",
            busybox.ok(),
            s(&["sh", "-c", "echo hi; ls /"]),
            vec!["hi\n", "busybox", "dev", "tmp"],
        ),
        (
            "Rust std program (Vec, HashMap, fs, Command, thread, args)",
            std_smoke,
            vec![],
            vec!["std_smoke: 10 passed, 0 failed"],
        ),
        (
            "musl-gcc program forking and reaping 200 children",
            fork_many,
            vec![],
            vec!["fork_many: 200 children reaped"],
        ),
    ];
    for (name, program, args, expect) in cases {
        let result = program.ok_or_else(|| "program not built".to_string()).and_then(|program| {
            let extra = [(smoke_script.clone(), "busybox_smoke.sh".to_string())];
            exec_boot(kernel, o, &program, &args, &extra, "exec-check.cpio", |out| {
                let missing: Vec<_> = expect.iter().filter(|e| !out.contains(*e)).collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing {missing:?}"))
                }
            })
        });
        t.record(&format!("exec: {name}"), result);
    }
}

/// Boots `program` as init with `args` and the `extra` files (initramfs `initrd` under the
/// xtask directory): it must exit 0, `judge` must accept the console, and the leak check
/// must be clean.
fn exec_boot(
    kernel: &Path,
    o: &Options,
    program: &str,
    args: &[String],
    extra: &[(PathBuf, String)],
    initrd: &str,
    judge: impl Fn(&str) -> Result<(), String>,
) -> Result<(), String> {
    let initrd = target_dir().join("xtask").join(initrd);
    let cmdline = crate::prepare_exec(program, args, extra, &initrd)?;
    let mut cfg = qemu_config(kernel, o);
    cfg.initrd = Some(initrd);
    cfg.cmdline = cmdline;
    cfg.echo = false;
    cfg.timeout = Duration::from_secs(120);
    let r = qemu::run(&cfg)?;
    let status = crate::init_exit_status(&r.output);
    let judged = judge(&r.output);
    if r.exit != QemuExit::Success || status != Some(0) || judged.is_err() {
        return Err(format!("exit {:?}, status {status:?}, {judged:?}\n{}", r.exit, r.output));
    }
    crate::leak::verdict(&r.output).map_err(|e| format!("{e}\n{}", r.output))
}

/// The dynamically linked C programs (`user_tests/c_dynamic`): each runs on the host, then
/// as init in our kernel with musl's loader at the path its `PT_INTERP` names, and must
/// exit 0 with its `: ok` line both times.
fn dynamic_exec_checks(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    println!("== cargo xtask exec of dynamically linked programs");
    for (name, program) in &ut.c_dynamic {
        let expect = format!("{name}: ");
        let ok = |out: &str| out.lines().any(|l| l.starts_with(&expect) && l.ends_with(": ok"));
        let host = (|| {
            let out = Command::new(program).arg("host").output().map_err(|e| format!("{}: {e}", program.display()))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || !ok(&stdout) {
                return Err(format!("{}: {stdout}{}", out.status, String::from_utf8_lossy(&out.stderr)));
            }
            Ok(())
        })();
        t.record(&format!("host: {name}"), host);
        let loader = (PathBuf::from(user::MUSL_LOADER), user::MUSL_LOADER.trim_start_matches('/').to_string());
        let args = ["guest".to_string()];
        let result = exec_boot(kernel, o, &program.to_string_lossy(), &args, &[loader], "exec-dynamic.cpio", |out| {
            if ok(out) {
                Ok(())
            } else {
                Err("no `: ok` line".into())
            }
        });
        t.record(&format!("exec: {name}, linked dynamically against musl"), result);
    }
}

/// CPUs of `cargo xtask test`'s boots (ours and the Linux guest's) without `--smp`: the
/// suite checks SMP code paths on every run, at the host's typical core count.
pub const TEST_DEFAULT_SMP: u32 = 2;

pub fn cmd_test(o: &Options) -> Result<ExitCode, String> {
    let o = &Options { smp: Some(o.smp.unwrap_or(TEST_DEFAULT_SMP)), ..o.clone() };
    let mut t = Tally::default();
    if o.host_only {
        let ut = user::build_user_tests()?;
        user_tests_on_host(&mut t, &ut);
        return Ok(finish(&t));
    }
    if o.debian {
        let ut = user::build_user_tests()?;
        let kernel = build_kernel(o.release)?;
        debian_checks(&mut t, &kernel, o, &ut);
        console_session(&mut t, &kernel, o);
        return Ok(finish(&t));
    }
    if o.linux_guest {
        let ut = user::build_user_tests()?;
        let expected = user_tests_on_host(&mut t, &ut);
        let kernel = build_kernel(o.release)?;
        let verdicts = user_tests_in_kernel(&mut t, &kernel, o, &ut, &expected.in_kernel());
        user_tests_on_linux_guest(&mut t, o, &ut, &expected.host, &verdicts);
        return Ok(finish(&t));
    }
    host_tests(&mut t);
    let ut = user::build_user_tests();
    let expected = match &ut {
        Ok(ut) => user_tests_on_host(&mut t, ut),
        Err(e) => {
            t.record("user tests build", Err(e.clone()));
            Expected::default()
        }
    };
    let kernel = build_kernel(o.release)?;
    let initrd = target_dir().join("xtask").join("ktest.cpio");
    write_initramfs(&initrd, &[("ktest/hello.txt".into(), 0o644, b"hello from the initramfs\n".to_vec())])?;
    ktests(&mut t, &kernel, o, &initrd);
    failure_cases(&mut t, &kernel, o);
    smoke(&mut t, &kernel, o);
    if let Ok(ut) = &ut {
        exec_checks(&mut t, &kernel, o, ut);
        dynamic_exec_checks(&mut t, &kernel, o, ut);
        debian_checks(&mut t, &kernel, o, ut);
        console_session(&mut t, &kernel, o);
        let verdicts = user_tests_in_kernel(&mut t, &kernel, o, ut, &expected.in_kernel());
        user_tests_on_linux_guest(&mut t, o, ut, &expected.host, &verdicts);
        user_tests_with_pt_share(&mut t, &kernel, o, ut, &verdicts);
        smp_negative_control(&mut t, &kernel, o, ut);
        mshare_negative_control(&mut t, &kernel, o, ut);
        pt_share_negative_control(&mut t, &kernel, o, ut);
        mshare_gib_check(&mut t, &kernel, o, ut);
        fuzz_check(&mut t, &kernel, o, ut);
        inject_check(&mut t, &kernel, o, ut);
    }
    bench_quick(&mut t, o);
    Ok(finish(&t))
}

/// The checks of Debian's own programs (`user_tests/debian/checks.sh`, one `check_*`
/// function per test).
const DEBIAN_CHECKS: &str = "user_tests/debian/checks.sh";

/// The test names of the Debian checks script: its `check_*` functions.
pub fn debian_check_names(script: &str) -> Vec<String> {
    script
        .lines()
        .filter_map(|l| l.strip_prefix("check_")?.strip_suffix("() {"))
        .map(|n| format!("debian::{n}"))
        .collect()
}

/// A boot of `kernel` (our kernel, or Linux with `linux`) with the Debian root in
/// `initrd` and `init` as pid 1, its console kept quiet.
fn debian_root_config(kernel: &Path, o: &Options, initrd: &Path, linux: bool, init: &str) -> QemuConfig {
    let mut cfg = QemuConfig::new(kernel);
    cfg.machine = o.machine.clone().unwrap_or(cfg.machine);
    cfg.cmdline = if linux {
        crate::linux::cmdline(&cfg.machine, init)
    } else {
        format!("log=warn init={init} {}", o.append.join(" ")).trim_end().to_string()
    };
    cfg.initrd = Some(initrd.to_path_buf());
    // The root (70 MB) lives in tmpfs beside the archive it came from.
    cfg.mem = "1G".into();
    cfg.smp = o.smp.unwrap_or(1);
    cfg.timeout = Duration::from_secs(o.timeout.unwrap_or(600));
    cfg.echo = false;
    cfg
}

/// Debian's programs (bash, coreutils, util-linux, procps, Python) on the Debian root
/// (`debian.rs`), run by `user_tests/debian/checks.sh` in our kernel and on Debian's Linux
/// in the same QEMU: each check must pass on both, and our kernel must leak nothing.
fn debian_checks(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    println!("== Debian programs on a Debian root");
    let script_path = crate::workspace_root().join(DEBIAN_CHECKS);
    let script = match std::fs::read(&script_path) {
        Ok(s) => s,
        Err(e) => return t.record("debian: the checks script", Err(format!("{}: {e}", script_path.display()))),
    };
    let names = debian_check_names(&String::from_utf8_lossy(&script));
    let root = match crate::debian::ensure_root() {
        Ok(r) => r,
        Err(e) => return t.record("debian: build the Debian root", Err(e)),
    };
    let initrd = target_dir().join("xtask").join("debian.cpio");
    let written = std::fs::read(&ut.init).map_err(|e| format!("{}: {e}", ut.init.display())).and_then(|init| {
        let files = [("init".to_string(), 0o755, init), ("tests/debian_checks".to_string(), 0o755, script)];
        crate::write_initramfs_over(&initrd, Some(&root), &files)
    });
    if let Err(e) = written {
        return t.record("debian: root initramfs", Err(e));
    }
    let linux = crate::linux::ensure_linux();
    let mut boots: Vec<(&str, Result<PathBuf, String>)> = vec![("kernel", Ok(kernel.to_path_buf()))];
    boots.push(("linux-guest", linux.map(|l| l.vmlinuz)));
    for (who, image) in boots {
        // The user tests' /init runs the checks script as /tests/debian_checks.
        let run = match image.and_then(|k| qemu::run(&debian_root_config(&k, o, &initrd, who != "kernel", "/init"))) {
            Ok(r) => r,
            Err(e) => {
                t.record(&format!("debian {who}: boot"), Err(e));
                continue;
            }
        };
        let _ = std::fs::write(target_dir().join("xtask").join(format!("debian-{who}.log")), &run.output);
        let verdicts: BTreeMap<String, Result<(), String>> =
            user::parse_harness_output(&run.output).into_iter().collect();
        for name in &names {
            let r = verdicts
                .get(name)
                .cloned()
                .unwrap_or_else(|| Err(format!("did not run ({who} ended with {:?})", run.exit)));
            t.record(&format!("debian {who}: {name}"), r);
        }
        if who == "kernel" {
            t.record("debian kernel: the Debian programs leak nothing", crate::leak::verdict(&run.output));
        }
    }
}

/// An interactive bash on the console itself, typed at through QEMU's serial input
/// (`console.rs`), in our kernel and on Debian's Linux: each behaviour the conversation
/// shows is a test on both, and our kernel must end with bash's exit status and leak
/// nothing.
fn console_session(t: &mut Tally, kernel: &Path, o: &Options) {
    println!("== bash -i on the console");
    let root = match crate::debian::ensure_root() {
        Ok(r) => r,
        Err(e) => return t.record("console: build the Debian root", Err(e)),
    };
    let initrd = target_dir().join("xtask").join("console.cpio");
    let files = [(console::SESSION_PATH.to_string(), 0o755, console::SESSION.as_bytes().to_vec())];
    if let Err(e) = crate::write_initramfs_over(&initrd, Some(&root), &files) {
        return t.record("console: root initramfs", Err(e));
    }
    let steps = console::steps();
    let init = format!("/{}", console::SESSION_PATH);
    let mut boots: Vec<(&str, Result<PathBuf, String>)> = vec![("kernel", Ok(kernel.to_path_buf()))];
    boots.push(("linux-guest", crate::linux::ensure_linux().map(|l| l.vmlinuz)));
    for (who, image) in boots {
        let image = match image {
            Ok(i) => i,
            Err(e) => {
                t.record(&format!("console {who}: boot"), Err(e));
                continue;
            }
        };
        let mut cfg = debian_root_config(&image, o, &initrd, who != "kernel", &init);
        cfg.timeout = Duration::from_secs(o.timeout.unwrap_or(300));
        cfg.script = console::script(&steps);
        let run = match qemu::run(&cfg) {
            Ok(r) => r,
            Err(e) => {
                t.record(&format!("console {who}: boot"), Err(e));
                continue;
            }
        };
        let _ = std::fs::write(target_dir().join("xtask").join(format!("console-{who}.log")), &run.output);
        for (name, r) in console::verdicts(&steps, run.steps_done, &run.output) {
            t.record(&format!("console {who}: console::{name}"), r);
        }
        let status = if who == "kernel" {
            crate::init_exit_status(&run.output)
        } else {
            crate::linux::init_exit_status(&run.output)
        };
        let want = console::EXIT_STATUS;
        t.record(
            &format!("console {who}: console::exit_ends_the_session_with_its_status"),
            if status == Some(want) { Ok(()) } else { Err(format!("init exited with {status:?}, want {want}")) },
        );
        if who == "kernel" {
            t.record("console kernel: the session leaks nothing", crate::leak::verdict(&run.output));
        }
    }
}

/// The kernel command line word that turns TLB shootdowns off (a debug switch: other
/// CPUs keep whatever translations they cached), and the line the kernel prints when it
/// honours it.
pub const TLB_SHOOTDOWN_OFF: &str = "tlb_shootdown=off";
pub const TLB_SHOOTDOWN_OFF_LINE: &str = "mshare-kernel: tlb_shootdown=off: TLB shootdowns disabled";
/// CPUs of the negative control's boot.
const SMP_CONTROL_CPUS: u32 = 4;
/// The stale-translation tests of `user_tests/src/bin/smp.rs` (the ones its `stale-only`
/// mode runs), each of which must report stale accesses with shootdowns off.
pub const SMP_STALE_TESTS: [&str; 5] = [
    "smp::no_access_after_munmap_returns_goes_through_the_old_translation",
    "smp::no_write_after_mprotect_read_only_returns_goes_through_the_old_translation",
    "smp::no_access_after_ftruncate_returns_goes_through_the_old_translation",
    "smp::no_access_after_madv_dontneed_returns_goes_through_the_old_translation",
    "smp::parent_writes_after_fork_returns_never_reach_the_childs_copy",
];

/// The negative control's verdict from its console: `Ok(None)` when every stale-translation
/// test reported stale accesses, `Ok(Some(why))` when it cannot apply (tasks run on one
/// CPU, so no translation can go stale), `Err` otherwise. Stale writes may land in freed
/// frames, so how the boot ends is not judged.
pub fn smp_control_verdict(output: &str) -> Result<Option<String>, String> {
    let cpus =
        output.lines().find_map(|l| l.strip_prefix("smp: tasks may run on ")?.strip_suffix(" CPUs")?.parse().ok());
    let cpus: usize = cpus.ok_or("the smp suite did not start")?;
    if cpus < 2 {
        return Ok(Some(format!("tasks run on {cpus} CPU, where no translation can go stale")));
    }
    if !output.contains(TLB_SHOOTDOWN_OFF_LINE) {
        return Err(format!("{cpus} CPUs, but the kernel never said {TLB_SHOOTDOWN_OFF_LINE:?}"));
    }
    stale_control_verdict(output, &SMP_STALE_TESTS).map(|()| None)
}

/// Whether every one of `tests` reported stale accesses in `output` (a boot with TLB
/// shootdowns off).
fn stale_control_verdict(output: &str, tests: &[&str]) -> Result<(), String> {
    if !output.contains(TLB_SHOOTDOWN_OFF_LINE) {
        return Err(format!("the kernel never said {TLB_SHOOTDOWN_OFF_LINE:?}"));
    }
    let verdicts: BTreeMap<String, Result<(), String>> = user::parse_harness_output(output).into_iter().collect();
    let missed: Vec<String> = tests
        .iter()
        .filter_map(|name| match verdicts.get(*name) {
            Some(Err(m)) if m.contains("stale") => None,
            Some(Ok(())) => Some(format!("{name} passed")),
            Some(Err(m)) => Some(format!("{name} failed otherwise: {m}")),
            None => Some(format!("{name} did not finish")),
        })
        .collect();
    if missed.is_empty() {
        Ok(())
    } else {
        Err(format!("with shootdowns off, not every test caught a stale access: {missed:?}"))
    }
}

/// The mshare suite's stale-translation tests (guests on every CPU against a change through
/// the region), each of which must report stale accesses with shootdowns off.
pub const MSHARE_STALE_TESTS: [&str; 2] = [
    "mshare::no_guest_on_any_cpu_reaches_a_page_after_msharefs_unmap_returns_stale",
    "mshare::no_guest_on_any_cpu_writes_a_page_after_msharefs_protect_returns_stale",
];

/// Boots `program` (a user test suite) with `args` as init at the negative control's CPUs
/// with TLB shootdowns off, and judges its console with `verdict`; a failed verdict carries
/// the end of the console.
fn stale_control_boot<T>(
    kernel: &Path,
    o: &Options,
    program: &Path,
    args: &[String],
    initrd: &str,
    verdict: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    let boot = SuiteBoot { smp: Some(SMP_CONTROL_CPUS), mem: None, cmdline: TLB_SHOOTDOWN_OFF, timeout: 300 };
    suite_boot(kernel, o, program, args, initrd, &boot, verdict)
}

/// How `suite_boot` boots: CPUs and memory (the options' when None), kernel command line
/// words added, and the default timeout in seconds.
struct SuiteBoot<'a> {
    smp: Option<u32>,
    mem: Option<&'a str>,
    cmdline: &'a str,
    timeout: u64,
}

/// Boots `program` (a user test suite) with `args` as init, as `boot` says, and judges its
/// console with `verdict`; a failed verdict carries the end of the console.
fn suite_boot<T>(
    kernel: &Path,
    o: &Options,
    program: &Path,
    args: &[String],
    initrd: &str,
    boot: &SuiteBoot,
    verdict: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    let initrd = target_dir().join("xtask").join(initrd);
    let cmdline = crate::prepare_exec(&program.to_string_lossy(), args, &[], &initrd)?;
    let mut cfg = qemu_config(kernel, o);
    cfg.initrd = Some(initrd);
    if let Some(smp) = boot.smp {
        cfg.smp = smp;
    }
    if let Some(mem) = boot.mem {
        cfg.mem = mem.to_string();
    }
    cfg.cmdline = format!("{cmdline} {}", boot.cmdline).trim_end().to_string();
    cfg.timeout = Duration::from_secs(o.timeout.unwrap_or(boot.timeout));
    cfg.echo = false;
    let r = qemu::run(&cfg)?;
    verdict(&r.output).map_err(|e| {
        let tail: Vec<&str> = r.output.lines().rev().take(30).collect();
        format!(
            "{e} (kernel ended with {:?}); last lines:\n{}",
            r.exit,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })
}

/// The mshare suite's test that needs more memory than the user-test boot has: 64
/// processes reading every page of a 1 GiB region (the suite's `gib` mode), in a boot of
/// its own with `MSHARE_GIB_MEM`; it must pass and leak nothing.
fn mshare_gib_check(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    const TEST: &str =
        "mshare::sixty_four_guests_of_a_gib_region_touching_every_page_pay_one_graft_fault_and_no_table_each";
    println!("== mshare: 64 guests of a 1 GiB region, {MSHARE_GIB_MEM} of memory");
    let Some((_, suite)) = ut.tests.iter().find(|(n, _)| n == "mshare") else {
        return t.record(&format!("kernel: {TEST}"), Err("no mshare suite was built".into()));
    };
    let boot = SuiteBoot { smp: None, mem: Some(MSHARE_GIB_MEM), cmdline: "", timeout: 600 };
    let result = suite_boot(kernel, o, suite, &["gib".to_string()], "mshare-gib.cpio", &boot, |out| {
        let verdicts: BTreeMap<String, Result<(), String>> = user::parse_harness_output(out).into_iter().collect();
        verdicts.get(TEST).cloned().unwrap_or_else(|| Err("did not finish".into()))?;
        crate::leak::verdict(out)
    });
    t.record(&format!("kernel: {TEST}"), result);
}

/// Memory of the boot of `mshare_gib_check`: the region's 1 GiB, its tables, 64 processes.
const MSHARE_GIB_MEM: &str = "2G";

/// The negative control of the mshare suite's stale-translation tests: the suite, with only
/// those tests, as init at 4 CPUs with TLB shootdowns off; each must report stale accesses.
fn mshare_negative_control(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    suite_negative_control(t, kernel, o, ut, "mshare", &MSHARE_STALE_TESTS);
}

/// The pt_share suite's stale-translation tests (accessors on every CPU against a change of
/// shared tables), each of which must report stale accesses with shootdowns off.
pub const PT_SHARE_STALE_TESTS: [&str; 3] = [
    "pt_share::no_sharer_on_any_cpu_reaches_a_page_after_truncation_returns_stale",
    "pt_share::no_thread_on_any_cpu_writes_a_page_after_mprotect_unshares_it_stale",
    "pt_share::no_thread_on_any_cpu_reaches_a_page_after_munmap_or_mremap_unshares_it_stale",
];

/// The negative control of the pt_share suite's stale-translation tests, as mshare's.
fn pt_share_negative_control(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    suite_negative_control(t, kernel, o, ut, "pt_share", &PT_SHARE_STALE_TESTS);
}

/// Boots `suite` with only its tests named `..._stale` as init at 4 CPUs with TLB
/// shootdowns off: each of `tests` must then report stale accesses.
fn suite_negative_control(
    t: &mut Tally,
    kernel: &Path,
    o: &Options,
    ut: &user::UserTests,
    suite: &str,
    tests: &[&str],
) {
    let name = format!("{suite}: with tlb_shootdown=off every stale-translation test reports stale accesses");
    let Some((_, program)) = ut.tests.iter().find(|(n, _)| n == suite) else {
        return t.record(&name, Err(format!("no {suite} suite was built")));
    };
    let initrd = format!("{suite}-control.cpio");
    let result = stale_control_boot(kernel, o, program, &["stale".to_string()], &initrd, |out| {
        stale_control_verdict(out, tests)
    });
    t.record(&name, result);
}

/// The negative control of the stale-translation tests: boots the `smp` suite's
/// `stale-only` mode as init at 4 CPUs with TLB shootdowns off; each of those tests must
/// then fail on a stale access, or a passing run of them proves nothing. Skipped (and
/// said so) while the kernel runs tasks on one CPU.
fn smp_negative_control(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    println!("== stale-translation tests with TLB shootdowns off, {SMP_CONTROL_CPUS} CPUs");
    let name = "smp: with tlb_shootdown=off every stale-translation test reports stale accesses";
    let Some((_, smp)) = ut.tests.iter().find(|(n, _)| n == "smp") else {
        return t.record(name, Err("no smp suite was built".into()));
    };
    // `user_tests::CHILD_MARKER` and the suite's child mode.
    let args = ["--user-tests-child".to_string(), "stale-only".to_string()];
    match stale_control_boot(kernel, o, smp, &args, "smp-control.cpio", smp_control_verdict) {
        Ok(Some(why)) => {
            t.skipped += 1;
            println!("SKIP {name}: {why}");
        }
        Ok(None) => t.record(name, Ok(())),
        Err(e) => t.record(name, Err(e)),
    }
}

/// The system call fuzzer for a minute with a fixed seed: no panic, hang, leak,
/// unkillable process or worker killed by a fault signal.
fn fuzz_check(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    const SECONDS: u64 = 60;
    const SEED: u64 = 0x5eed;
    println!("== system call fuzzer, {SECONDS} s, seed {SEED:#x}, pt_share=on");
    // With transparent page-table sharing on, so that the shared mappings it makes graft,
    // unshare and truncate under fuzzing too (the user suites run it both ways).
    let mut fo = o.clone();
    fo.append.push("pt_share=on".into());
    let result = crate::fuzz::run(crate::fuzz::LOG, kernel, &ut.fuzz, &fo, SECONDS, SEED, false, &[]).and_then(|out| {
        if let Some(s) = &out.summary {
            println!("{s}");
        }
        for l in crate::leak::lines(&out.output) {
            println!("{l}");
        }
        out.verdict.map_err(|why| {
            println!("{}", crate::fuzz::failure_tail(&out.output));
            println!("fuzz: console in {}", crate::fuzz::console_path(crate::fuzz::LOG).display());
            format!("{why} (reproduce: {})", crate::fuzz::reproduce(&fo, SECONDS, SEED))
        })
    });
    t.record("fuzz: a minute of random system calls leaves no panic, hang or leak", result);
}

/// Allocation-failure injection at 1% (frames and heap): the user suite once, then 20 s
/// of the fuzzer. Tests may fail; the kernel must not panic, hang or leak.
fn inject_check(t: &mut Tally, kernel: &Path, o: &Options, ut: &user::UserTests) {
    const SPEC: &str = "1%,seed=1";
    const SECONDS: u64 = 20;
    println!("== allocation-failure injection ({SPEC})");
    let r = crate::inject::run_suite(kernel, ut, o, SPEC, "inject-suite-ci.log", &mut Default::default());
    if let Ok(line) = &r {
        println!("{line}");
    }
    t.record("inject: the user suite under 1% allocation failures: no panic, hang or leak", r.map(|_| ()));
    let r = crate::inject::run_fuzz(kernel, &ut.fuzz, o, SPEC, SECONDS, crate::fuzz::DEFAULT_SEED);
    if let Ok(line) = &r {
        println!("{line}");
    }
    t.record("inject: 20 s of fuzzing under 1% allocation failures: no panic, hang or leak", r.map(|_| ()));
}

/// `cargo xtask bench --quick` on our kernel: every boot must succeed and the CSVs must
/// have their schema and consistent figures (no timing is asserted).
fn bench_quick(t: &mut Tally, o: &Options) {
    println!("== cargo xtask bench --quick (our kernel)");
    let mut bo = o.clone();
    bo.quick = true;
    bo.linux = false;
    let plan = crate::bench::plan(&bo, false);
    let out = target_dir().join("bench").join("quick");
    let _ = std::fs::remove_dir_all(&out);
    match crate::bench::run_plan(&plan, &bo, &out) {
        Ok(outcome) => {
            for f in &outcome.failures {
                t.record(&format!("bench: {f}"), Err("boot failed".into()));
            }
            t.record(
                "bench: every quick case and vm_micro ran",
                if outcome.failures.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{} boots failed", outcome.failures.len()))
                },
            );
        }
        Err(e) => return t.record("bench: quick run", Err(e)),
    }
    // A CSV's verdict: its check's problems, else whether it has the rows expected.
    let csv = |name: &str, check: fn(&str) -> Vec<String>, expected: usize| -> Result<(), String> {
        let text = std::fs::read_to_string(out.join(name)).unwrap_or_default();
        let problems = check(&text);
        let rows = text.lines().count().saturating_sub(1);
        if !problems.is_empty() {
            Err(problems.join("; "))
        } else if rows != expected {
            Err(format!("{rows} rows, expected {expected}"))
        } else {
            Ok(())
        }
    };
    let pt_rows = plan.pt.iter().map(|c| c.runs as usize).sum::<usize>();
    t.record(
        "bench: pt_sharing.csv has its schema, a row per case and consistent figures",
        csv("pt_sharing.csv", crate::bench::check_pt_csv, pt_rows),
    );
    let micro = std::fs::read_to_string(out.join("vm_micro.csv")).unwrap_or_default();
    t.record("bench: vm_micro.csv has its schema and every benchmark", crate::bench::check_micro_csv(&micro));
    t.record(
        "bench: will_it_scale.csv has its schema, a row per quick case and consistent figures",
        csv("will_it_scale.csv", crate::bench::check_scale_csv, plan.scale.len()),
    );
    let flush_rows: usize = plan.flush.iter().map(|f| 2 * 2 * f.sharers.len()).sum();
    t.record(
        "bench: mshare_flush.csv has its schema, a row per quick case and consistent figures",
        csv("mshare_flush.csv", crate::bench::check_flush_csv, flush_rows),
    );
    let plots = ["pt_bytes_16M", "cycles_16M_read", "cycles_16M_write", "scale_page_fault1", "scale_futex1"];
    let missing: Vec<String> = plots
        .iter()
        .flat_map(|p| [format!("{p}.svg"), format!("{p}.png")])
        .filter(|f| std::fs::metadata(out.join(f)).map_or(true, |m| m.len() == 0))
        .collect();
    t.record(
        "bench: the plots are drawn",
        if missing.is_empty() { Ok(()) } else { Err(format!("missing {missing:?}")) },
    );
}

fn finish(t: &Tally) -> ExitCode {
    if !t.failures.is_empty() {
        println!("failures:");
        for f in &t.failures {
            println!("  {f}");
        }
    }
    println!("{} passed, {} failed, {} skipped", t.passed, t.failed, t.skipped);
    if t.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_check_names_are_the_scripts_check_functions() {
        let script = "fail() {\n}\ncheck_a_thing() {\n    true\n}\n# check_not() {\ncheck_b() {\n}\n";
        assert_eq!(debian_check_names(script), ["debian::a_thing", "debian::b"]);
    }

    #[test]
    fn the_cpus_online_line_is_read() {
        assert_eq!(cpus_online("x\nsmp: 4 CPUs online\nmemory: ...\n"), Some(4));
        assert_eq!(cpus_online("smp: CPU 1 (APIC id 1) online\n"), None);
        assert_eq!(cpus_online("no line\n"), None);
    }

    #[test]
    fn cargo_test_summaries_are_summed() {
        let out = "running 3 tests\ntest a ... ok\ntest b::c ... FAILED\n\
                   test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
                   test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let (p, f, names) = parse_cargo_test(out);
        assert_eq!((p, f), (7, 1));
        assert_eq!(names, ["b::c"]);
    }

    #[test]
    fn test_lists_keep_each_name_with_its_reason_and_skip_comment_lines() {
        let list = parse_test_list("# header\n\nvm::a  # 6.1 differs\nfs::b\n  # indented comment\n");
        let want: BTreeMap<String, String> =
            [("vm::a".to_string(), "6.1 differs".to_string()), ("fs::b".to_string(), String::new())].into();
        assert_eq!(list, want);
    }

    #[test]
    fn verdicts_that_differ_between_the_kernels_are_listed() {
        let map = |v: &[(&str, bool)]| -> BTreeMap<String, Result<(), String>> {
            v.iter().map(|&(n, ok)| (n.to_string(), if ok { Ok(()) } else { Err("why".to_string()) })).collect()
        };
        let ours = map(&[("a", true), ("b", false), ("c", true), ("d", true), ("e", false)]);
        let guest = map(&[("a", true), ("b", true), ("c", false)]);
        let names: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).into();
        assert_eq!(
            verdict_differences(&ours, &guest, names.iter()),
            [
                "b: our kernel fails (why), the Linux guest passes",
                "c: our kernel passes, the Linux guest fails (why)",
                "d: our kernel passes, the Linux guest did not run",
            ]
        );
    }

    #[test]
    fn mshare_control_needs_both_stale_tests_to_catch_a_stale_access() {
        let all: String = MSHARE_STALE_TESTS
            .iter()
            .map(|n| format!("test {n} ... FAILED: assertion failed: stale accesses\n"))
            .collect();
        assert_eq!(stale_control_verdict(&format!("{TLB_SHOOTDOWN_OFF_LINE}\n{all}"), &MSHARE_STALE_TESTS), Ok(()));
        assert!(stale_control_verdict(&all, &MSHARE_STALE_TESTS).is_err(), "the switch not honoured");
        let passed = all.replacen("FAILED: assertion failed: stale accesses", "ok", 1);
        assert!(stale_control_verdict(&format!("{TLB_SHOOTDOWN_OFF_LINE}\n{passed}"), &MSHARE_STALE_TESTS).is_err());
    }

    #[test]
    fn smp_control_is_skipped_on_one_cpu_and_needs_every_stale_test_to_catch_a_stale_access() {
        assert!(smp_control_verdict("no suite here\n").is_err());
        let one = "smp: tasks may run on 1 CPUs\nsmp: one CPU: no translation can go stale\n";
        assert!(matches!(smp_control_verdict(one), Ok(Some(_))));
        let all_stale: String =
            SMP_STALE_TESTS.iter().map(|n| format!("test {n} ... FAILED: in child: 3 stale accesses, ...\n")).collect();
        let four = format!("smp: tasks may run on 4 CPUs\n{TLB_SHOOTDOWN_OFF_LINE}\n");
        assert_eq!(smp_control_verdict(&format!("{four}{all_stale}")), Ok(None));
        // The switch not honoured, one test passing, one failing for another reason, one
        // missing: each fails the control.
        assert!(smp_control_verdict(&format!("smp: tasks may run on 4 CPUs\n{all_stale}")).is_err());
        let passed = all_stale.replacen("FAILED: in child: 3 stale accesses, ...", "ok", 1);
        assert!(smp_control_verdict(&format!("{four}{passed}")).is_err());
        let other = all_stale.replacen("3 stale accesses", "stuck for 30s", 1);
        assert!(smp_control_verdict(&format!("{four}{other}")).is_err());
        let missing: String = all_stale.lines().skip(1).map(|l| format!("{l}\n")).collect();
        assert!(smp_control_verdict(&format!("{four}{missing}")).is_err());
    }

    #[test]
    fn ktest_lines_are_parsed() {
        let out = "memory: x\nktest a ... ok\nktest b ... FAILED: frames in use 1 before, 2 after\nktest result: 1 passed, 1 failed\n";
        assert_eq!(parse_ktest(out), vec![("a".to_string(), true), ("b".to_string(), false)]);
    }
}
