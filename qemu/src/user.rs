//! The user-space test programs of `user_tests/`: building them (the Rust family binaries
//! for x86_64-unknown-linux-musl, the C programs in `user_tests/c/` with
//! `musl-gcc -static`) and running them directly on the Linux host, the oracle they must
//! pass on before they say anything about our kernel.
//!
//! A family binary prints one line per test, `test SUITE::NAME ... ok` or
//! `test SUITE::NAME ... FAILED: message`, then `SUITE: N passed, N failed`, and exits
//! with 0 only if all passed; run with `--list`, it prints `list SUITE::NAME` per test and
//! runs none. A C program passes by exiting with 0.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The built programs.
pub struct UserTests {
    /// (name, path) of each family binary (`fs`, `process`, ...), sorted by name.
    pub tests: Vec<(String, PathBuf)>,
    /// The /init that runs every program in /tests inside the kernel.
    pub init: PathBuf,
    /// The system call fuzzer (`cargo xtask fuzz`), not a test family.
    pub fuzz: PathBuf,
    /// (name, path) of each static C program, sorted by name.
    pub c_programs: Vec<(String, PathBuf)>,
    /// (name, path) of each C program of `user_tests/c_dynamic`, linked dynamically against
    /// musl: it needs [`MUSL_LOADER`] at its path in the guest.
    pub c_dynamic: Vec<(String, PathBuf)>,
}

/// The interpreter musl-gcc's dynamic programs name in `PT_INTERP`, on the host and, where
/// they run, in the guest.
pub const MUSL_LOADER: &str = "/lib/ld-musl-x86_64.so.1";

const TARGET: &str = "x86_64-unknown-linux-musl";

/// Programs in `user_tests/src/bin` that are not test families.
const NOT_TESTS: [&str; 2] = ["init", "fuzz"];

/// Suites that test what Linux lacks (mshare, pt_share), so they can pass only in our kernel: the
/// host asks their binaries for their test names (`--list`) instead of running them, our
/// kernel must pass every test so named, and the Linux guest does not get them. A suite
/// listed here whose binary does not exist changes nothing.
pub const KERNEL_ONLY_SUITES: &[&str] = &["mshare", "pt_share"];

/// Whether program `name` is a kernel-only suite.
pub fn is_kernel_only(name: &str) -> bool {
    KERNEL_ONLY_SUITES.contains(&name)
}

/// How long one program may run on the host (the whole suite takes seconds).
const HOST_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds user_tests for x86_64-unknown-linux-musl (release) and the C programs with
/// musl-gcc -static (installing Debian's musl-tools with apt-get on first use, printing
/// what it does; use sudo when not root).
pub fn build_user_tests() -> Result<UserTests, String> {
    crate::deps::ensure_rust_targets()?;
    let root = crate::workspace_root();
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--quiet", "--package", "user_tests", "--target", TARGET, "--release"])
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !st.success() {
        return Err("user_tests build failed".into());
    }
    let bin_dir = crate::target_dir().join(TARGET).join("release");
    let src = root.join("user_tests");
    let mut tests = Vec::new();
    for name in source_stems(&src.join("src/bin"), "rs")? {
        if !NOT_TESTS.contains(&name.as_str()) {
            let path = bin_dir.join(&name);
            tests.push((name, path));
        }
    }
    let init = bin_dir.join("init");
    let fuzz = bin_dir.join("fuzz");
    let c_programs = build_c_programs(&src.join("c"), "user_tests_c", &["-static"])?;
    let c_dynamic = build_c_programs(&src.join("c_dynamic"), "user_tests_c_dynamic", &[])?;
    let built = tests.iter().chain(&c_programs).chain(&c_dynamic).map(|(_, p)| p);
    for p in built.chain([&init, &fuzz]) {
        if !p.is_file() {
            return Err(format!("{} was not built", p.display()));
        }
    }
    Ok(UserTests { tests, init, fuzz, c_programs, c_dynamic })
}

/// Builds each C source of `dir` with musl-gcc -O2 and `flags` into `out` under the target
/// directory: (name, path) sorted by name.
pub fn build_c_programs(dir: &Path, out: &str, flags: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
    let mut built = Vec::new();
    let sources = source_stems(dir, "c")?;
    if sources.is_empty() {
        return Ok(built);
    }
    ensure_musl_gcc()?;
    let out_dir = crate::target_dir().join(out);
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    for name in sources {
        let source = dir.join(format!("{name}.c"));
        let out = out_dir.join(&name);
        let st = Command::new("musl-gcc")
            .args(flags)
            .args(["-O2", "-Wall", "-Wextra", "-o"])
            .arg(&out)
            .arg(&source)
            .status()
            .map_err(|e| format!("musl-gcc: {e}"))?;
        if !st.success() {
            return Err(format!("musl-gcc failed on {}", source.display()));
        }
        built.push((name, out));
    }
    Ok(built)
}

/// What the host run found.
pub struct HostRun {
    /// Per-test results of the programs the host ran, parsed from the `test SUITE::NAME
    /// ... ok|FAILED` lines and the binaries' exit status. A binary that crashes or exits
    /// non-zero without FAILED lines yields one failing entry for the binary, as does a
    /// kernel-only suite whose list cannot be had.
    pub results: Vec<(String, Result<(), String>)>,
    /// The tests of the kernel-only suites (`KERNEL_ONLY_SUITES`), as their binaries list them.
    pub kernel_only: Vec<String>,
}

/// Runs every family binary and C program directly on the host, but asks those of the
/// kernel-only suites for their test names.
pub fn run_on_host(t: &UserTests) -> HostRun {
    let mut run = HostRun { results: Vec::new(), kernel_only: Vec::new() };
    for (name, path) in t.tests.iter().chain(&t.c_programs) {
        if is_kernel_only(name) {
            match run_with_timeout(path, &["--list"], HOST_TIMEOUT) {
                Ok((stdout, stderr, status)) => match (describe_exit(status, &stderr), parse_test_names(&stdout)) {
                    (Ok(()), names) if !names.is_empty() => run.kernel_only.extend(names),
                    (Ok(()), _) => run.results.push((name.clone(), Err("--list named no test".into()))),
                    (Err(e), _) => run.results.push((name.clone(), Err(format!("--list: {e}")))),
                },
                Err(e) => run.results.push((name.clone(), Err(format!("--list: {e}")))),
            }
            continue;
        }
        let (stdout, outcome) = match run_with_timeout(path, &[], HOST_TIMEOUT) {
            Ok((stdout, stderr, status)) => (stdout, describe_exit(status, &stderr)),
            Err(e) => (String::new(), Err(e)),
        };
        run.results.extend(binary_results(name, &stdout, outcome));
    }
    run
}

/// The test names a binary run with `--list` printed, one `list SUITE::NAME` line each;
/// other lines are ignored.
pub fn parse_test_names(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim_end().strip_prefix("list "))
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.contains(' '))
        .map(String::from)
        .collect()
}

/// Parses harness output lines (unit-tested): each `test NAME ... ok` gives `(NAME,
/// Ok(()))`, each `test NAME ... FAILED: message` gives `(NAME, Err(message))`; other
/// lines (program output, the summary) are ignored.
pub fn parse_harness_output(out: &str) -> Vec<(String, Result<(), String>)> {
    out.lines()
        .filter_map(|line| {
            let (name, verdict) = line.trim_end().strip_prefix("test ")?.split_once(" ... ")?;
            let result = match verdict {
                "ok" => Ok(()),
                v => {
                    let msg = v.strip_prefix("FAILED")?;
                    let msg = msg.strip_prefix(':').unwrap_or(msg).trim();
                    Err(if msg.is_empty() { "failed".to_string() } else { msg.to_string() })
                }
            };
            Some((name.to_string(), result))
        })
        .collect()
}

/// The results for one program: its parsed test lines, plus one entry named after the
/// program when its exit `outcome` says it failed and no test line explains why (a crash,
/// a hang, a C program's non-zero exit), or when it passed without printing test lines.
fn binary_results(name: &str, stdout: &str, outcome: Result<(), String>) -> Vec<(String, Result<(), String>)> {
    let mut results = parse_harness_output(stdout);
    let any_failed = results.iter().any(|(_, r)| r.is_err());
    match outcome {
        Ok(()) if results.is_empty() => results.push((name.to_string(), Ok(()))),
        Err(e) if !any_failed => results.push((name.to_string(), Err(e))),
        _ => {}
    }
    results
}

/// Ok for exit status 0, else what happened, with the end of stderr.
fn describe_exit(status: ExitStatus, stderr: &str) -> Result<(), String> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Ok(());
    }
    let what = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    };
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    if tail.is_empty() {
        Err(what)
    } else {
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!("{what}; stderr: {}", tail.join(" | ")))
    }
}

/// Runs `path` with `args` and stdin from /dev/null, collecting stdout and stderr; kills
/// it after `timeout`. Output is gathered by reader threads and taken as it is shortly
/// after the program ends, since a leftover grandchild may keep the pipes open.
fn run_with_timeout(path: &Path, args: &[&str], timeout: Duration) -> Result<(String, String, ExitStatus), String> {
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let collect = |mut r: Box<dyn Read + Send>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let done = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = r.read(&mut chunk) {
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        (buf, done)
    };
    let (out, out_done) = collect(Box::new(child.stdout.take().unwrap()));
    let (err, err_done) = collect(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(st) => break st,
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", timeout.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let grace = Instant::now() + Duration::from_secs(2);
    while !(out_done.is_finished() && err_done.is_finished()) && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
    Ok((text(&out), text(&err), status))
}

/// The stems of the files ending in `.ext` in `dir`, sorted; none if `dir` is missing.
fn source_stems(dir: &Path, ext: &str) -> Result<Vec<String>, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for e in entries {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == ext) {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// musl-gcc from Debian's musl-tools, installed on first use.
fn ensure_musl_gcc() -> Result<(), String> {
    crate::deps::ensure_command("musl-gcc", "musl-tools")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> (String, Result<(), String>) {
        (name.to_string(), Ok(()))
    }

    fn failed(name: &str, msg: &str) -> (String, Result<(), String>) {
        (name.to_string(), Err(msg.to_string()))
    }

    #[test]
    fn harness_lines_are_parsed_and_other_output_ignored() {
        let out = "test fs::open_missing_file_is_enoent ... ok\n\
                   some output from a child\n\
                   test fs::read_on_closed_fd_is_ebadf ... FAILED: expected Err(EBADF(9)), got Ok(0) (at x.rs:3)\n\
                   fs: 1 passed, 1 failed\n";
        assert_eq!(
            parse_harness_output(out),
            [
                ok("fs::open_missing_file_is_enoent"),
                failed("fs::read_on_closed_fd_is_ebadf", "expected Err(EBADF(9)), got Ok(0) (at x.rs:3)"),
            ]
        );
    }

    #[test]
    fn crlf_line_ends_and_messages_with_separators_are_handled() {
        let out = "test a::b ... ok\r\ntest a::c ... FAILED: left ... right | x\r\n";
        assert_eq!(parse_harness_output(out), [ok("a::b"), failed("a::c", "left ... right | x")]);
    }

    #[test]
    fn failed_without_message_still_fails() {
        assert_eq!(parse_harness_output("test a::b ... FAILED\n"), [failed("a::b", "failed")]);
    }

    #[test]
    fn unknown_verdicts_and_partial_lines_are_ignored() {
        let out = "test a::b ... \ntest a::c ... ignored\ntest a::d\nnot a test ... ok\n";
        assert_eq!(parse_harness_output(out), []);
    }

    #[test]
    fn crash_after_passing_tests_adds_a_failing_entry_for_the_binary() {
        let r = binary_results("fs", "test fs::a ... ok\n", Err("killed by signal 11".into()));
        assert_eq!(r, [ok("fs::a"), failed("fs", "killed by signal 11")]);
    }

    #[test]
    fn failing_exit_explained_by_failed_lines_adds_nothing() {
        let r = binary_results("fs", "test fs::a ... FAILED: no\n", Err("exited with status 1".into()));
        assert_eq!(r, [failed("fs::a", "no")]);
    }

    #[test]
    fn list_lines_give_the_test_names_and_other_output_is_ignored() {
        let out =
            "list mshare::a_region_is_shared\r\nsome output\nlist mshare::b\nlist \nlist x y\ntest mshare::c ... ok\n";
        assert_eq!(parse_test_names(out), ["mshare::a_region_is_shared", "mshare::b"]);
    }

    #[test]
    fn mshare_is_a_kernel_only_suite_and_fs_is_not() {
        assert!(is_kernel_only("mshare"));
        assert!(!is_kernel_only("fs"));
    }

    #[test]
    fn program_without_test_lines_is_one_entry() {
        assert_eq!(binary_results("fork_many", "fork_many: 200 children reaped\n", Ok(())), [ok("fork_many")]);
        assert_eq!(
            binary_results("fork_many", "", Err("exited with status 1".into())),
            [failed("fork_many", "exited with status 1")]
        );
    }
}
