//! Launching the kernel in QEMU: always with a timeout, the serial console
//! streamed and captured, the exit status of `isa-debug-exit` decoded. The serial input
//! is /dev/null, our stdin (`exec`), or a conversation: text written each time the output
//! shows what the previous step waited for (`ConsoleStep`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One step of a conversation on the serial console: once `expect` shows in the output
/// after where the previous step's `expect` ended, `send` is written to the serial input.
#[derive(Clone, Debug)]
pub struct ConsoleStep {
    pub expect: String,
    pub send: Vec<u8>,
}

impl ConsoleStep {
    pub fn new(expect: &str, send: &str) -> Self {
        ConsoleStep { expect: expect.into(), send: send.as_bytes().to_vec() }
    }
}

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
    /// Instead of `stdin`: this conversation as the serial input.
    pub script: Vec<ConsoleStep>,
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
            script: Vec::new(),
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
    /// How many steps of `QemuConfig::script` saw their `expect`.
    pub steps_done: usize,
}

/// The console output as it arrives (`\r` removed), for the conversation's writer.
#[derive(Default)]
struct Transcript {
    text: Mutex<(Vec<u8>, bool)>,
    grew: Condvar,
}

impl Transcript {
    fn push(&self, bytes: &[u8]) {
        let mut t = self.text.lock().unwrap();
        t.0.extend(bytes.iter().filter(|&&b| b != b'\r'));
        self.grew.notify_all();
    }

    fn end(&self) {
        self.text.lock().unwrap().1 = true;
        self.grew.notify_all();
    }

    fn wait_end(&self) {
        let mut t = self.text.lock().unwrap();
        while !t.1 {
            t = self.grew.wait(t).unwrap();
        }
    }

    /// Waits until `needle` shows at or after `from`; returns where it ends, or None if
    /// the output ended without it.
    fn wait_for(&self, needle: &[u8], from: usize) -> Option<usize> {
        let mut t = self.text.lock().unwrap();
        loop {
            if let Some(at) = find(&t.0[from.min(t.0.len())..], needle) {
                return Some(from + at + needle.len());
            }
            if t.1 {
                return None;
            }
            t = self.grew.wait(t).unwrap();
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Plays `script` into QEMU's stdin as the transcript grows; returns the steps done. Keeps
/// the input open until the output ends.
fn converse(script: Vec<ConsoleStep>, mut input: std::process::ChildStdin, transcript: Arc<Transcript>) -> usize {
    let mut at = 0;
    let mut done = 0;
    for step in &script {
        let Some(end) = transcript.wait_for(step.expect.as_bytes(), at) else { break };
        at = end;
        done += 1;
        if input.write_all(&step.send).and_then(|_| input.flush()).is_err() {
            break;
        }
    }
    transcript.wait_end();
    done
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
    cmd.stdin(match (cfg.script.is_empty(), cfg.stdin) {
        (false, _) => Stdio::piped(),
        (true, true) => Stdio::inherit(),
        (true, false) => Stdio::null(),
    });
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Only a conversation keeps the raw output (its input is piped only then).
    let transcript = (!cfg.script.is_empty()).then(|| Arc::new(Transcript::default()));
    let conversation = child.stdin.take().zip(transcript.clone()).map(|(input, transcript)| {
        let script = cfg.script.clone();
        std::thread::spawn(move || converse(script, input, transcript))
    });
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let echo = cfg.echo;
    let echo_filter = cfg.echo_filter;
    let reader = std::thread::spawn(move || {
        let mut r = stdout;
        let mut chunk = [0u8; 4096];
        let mut line = Vec::new();
        let emit = |line: &mut Vec<u8>| {
            let text = String::from_utf8_lossy(line).replace('\r', "");
            if echo || echo_filter.is_some_and(|f| f(&text)) {
                print!("{text}");
            }
            let _ = tx.send((Instant::now(), text));
            line.clear();
        };
        loop {
            let n = match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(t) = &transcript {
                t.push(&chunk[..n]);
            }
            for &b in &chunk[..n] {
                line.push(b);
                if b == b'\n' {
                    emit(&mut line);
                }
            }
        }
        if !line.is_empty() {
            emit(&mut line);
        }
        if let Some(t) = &transcript {
            t.end();
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
    let steps_done = conversation.map_or(0, |c| c.join().unwrap_or(0));
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
    Ok(QemuRun { exit, output, first_line, elapsed: start.elapsed(), steps_done })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transcript_finds_text_after_the_previous_match_and_gives_up_at_the_end() {
        let t = Transcript::default();
        t.push(b"ok# echo\r\nhi 42\r\nok# ");
        let first = t.wait_for(b"ok# ", 0).unwrap();
        assert_eq!(first, 4);
        let hi = t.wait_for(b"hi 42\n", first).unwrap();
        assert_eq!(t.wait_for(b"ok# ", hi), Some(19));
        t.end();
        assert_eq!(t.wait_for(b"ok# ", 19), None);
        assert_eq!(find(b"abc", b""), Some(0));
    }

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
