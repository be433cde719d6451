//! Launching the kernel in QEMU: always with a timeout, the serial console
//! streamed and captured, the exit status of `isa-debug-exit` decoded.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct QemuConfig {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub machine: String,
    pub mem: String,
    pub smp: u32,
    pub timeout: Duration,
    pub gdb: bool,
    /// Echo the console to our stdout as it arrives.
    pub echo: bool,
    /// Without `echo`: echo only the lines for which this is true.
    pub echo_filter: Option<fn(&str) -> bool>,
    /// Give QEMU our stdin (for `exec`); otherwise /dev/null.
    pub stdin: bool,
}

impl QemuConfig {
    pub fn new(kernel: &Path) -> Self {
        QemuConfig {
            kernel: kernel.to_path_buf(),
            initrd: None,
            cmdline: String::new(),
            machine: "microvm".into(),
            mem: "512M".into(),
            smp: 1,
            timeout: Duration::from_secs(60),
            gdb: false,
            echo: true,
            echo_filter: None,
            stdin: false,
        }
    }
}

/// How QEMU ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QemuExit {
    /// The kernel wrote 0x10 to isa-debug-exit (QEMU status 33).
    Success,
    /// The kernel wrote 0x11 (status 35): a panic, fatal exception or failed test.
    Failed,
    /// Any other QEMU status (QEMU error, or a value the kernel never writes).
    Other(i32),
    /// Killed by the runner after the timeout.
    Timeout,
}

/// Decodes QEMU's exit status: isa-debug-exit makes it `(value << 1) | 1`.
pub fn decode_exit(status: Option<i32>) -> QemuExit {
    match status {
        Some(33) => QemuExit::Success,
        Some(35) => QemuExit::Failed,
        Some(s) => QemuExit::Other(s),
        None => QemuExit::Other(-1),
    }
}

pub struct QemuRun {
    pub exit: QemuExit,
    /// The console output, `\r` removed.
    pub output: String,
    /// Time from starting QEMU to the first console line.
    pub first_line: Option<Duration>,
    pub elapsed: Duration,
}

pub fn command(cfg: &QemuConfig) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-M", &cfg.machine, "-cpu", "max", "-m", &cfg.mem, "-smp", &cfg.smp.to_string()]);
    // One host thread per virtual CPU, so CPUs really run in parallel (QEMU 7.2 already
    // picks this for an x86_64 guest on an x86_64 host; said here so it stays so).
    c.args(["-accel", "tcg,thread=multi"]);
    c.args(["-nodefaults", "-no-reboot", "-display", "none"]);
    c.args(["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]);
    c.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    c.arg("-kernel").arg(&cfg.kernel);
    if let Some(i) = &cfg.initrd {
        c.arg("-initrd").arg(i);
    }
    if !cfg.cmdline.is_empty() {
        c.args(["-append", &cfg.cmdline]);
    }
    if cfg.gdb {
        c.args(["-s", "-S"]);
    }
    c
}

pub fn run(cfg: &QemuConfig) -> Result<QemuRun, String> {
    crate::deps::ensure_qemu()?;
    let mut cmd = command(cfg);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if cfg.stdin { Stdio::inherit() } else { Stdio::null() });
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let echo = cfg.echo;
    let echo_filter = cfg.echo_filter;
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).replace('\r', "");
                    if echo || echo_filter.is_some_and(|f| f(&line)) {
                        print!("{line}");
                    }
                    let _ = tx.send((Instant::now(), line));
                }
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = start + cfg.timeout;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(st);
        }
        if !cfg.gdb && Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = reader.join();
    let qemu_stderr = err_reader.join().unwrap_or_default();
    let mut output = String::new();
    let mut first_line = None;
    for (t, line) in rx.try_iter() {
        first_line.get_or_insert(t - start);
        output.push_str(&line);
    }
    let exit = match status {
        None => QemuExit::Timeout,
        Some(st) => decode_exit(st.code()),
    };
    if let QemuExit::Other(_) = exit {
        if !qemu_stderr.trim().is_empty() {
            eprintln!("qemu: {}", qemu_stderr.trim());
        }
    }
    Ok(QemuRun { exit, output, first_line, elapsed: start.elapsed() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_exit_codes_decode() {
        assert_eq!(decode_exit(Some(33)), QemuExit::Success);
        assert_eq!(decode_exit(Some(35)), QemuExit::Failed);
        assert_eq!(decode_exit(Some(1)), QemuExit::Other(1));
        assert_eq!(decode_exit(None), QemuExit::Other(-1));
    }

    #[test]
    fn command_has_kernel_initrd_append_and_debug_exit() {
        let mut cfg = QemuConfig::new(Path::new("/k"));
        cfg.initrd = Some("/i.cpio".into());
        cfg.cmdline = "ktest log=debug".into();
        let c = command(&cfg);
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let joined = args.join(" ");
        assert!(joined.contains("-kernel /k -initrd /i.cpio -append ktest log=debug"), "{joined}");
        assert!(joined.contains("isa-debug-exit,iobase=0xf4"));
        assert!(joined.contains("-M microvm"));
        assert!(joined.contains("-smp 1 ") && joined.contains("-accel tcg,thread=multi"), "{joined}");
        assert!(!joined.contains("-S"));
    }
}
