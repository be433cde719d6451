//! A tiny test harness for the user-space test programs.
//!
//! Every binary in `src/bin/` is one family of tests (`fs`, `process`, ...). Its `main`
//! calls [`run_tests`], which runs each test in-process, catching panics, and prints one
//! line per test in the format the runner (`qemu/src/user.rs`) parses:
//!
//! ```text
//! test fs::open_missing_file_is_enoent ... ok
//! test fs::read_on_closed_fd_is_ebadf ... FAILED: <message>
//! fs: 1 passed, 1 failed
//! ```
//!
//! "Linux is the oracle": every test passes when run directly on a Linux host, so the same
//! binaries measure how close our kernel is to Linux.
//!
//! The helpers here keep tests short: [`syscall`] and [`sys!`] make raw system calls that
//! return `Result<i64, Errno>` (bad pointers must go through raw calls, never through
//! `std`), [`assert_errno!`] checks an error, [`run_in_child`] and [`child_exit`] run a
//! closure in a forked child for tests whose subject may kill or damage the process.

use std::ffi::{CStr, CString};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

pub use libc;

pub mod probe;

/// The argument that makes a test binary run in "child mode" (see [`child_args`]).
pub const CHILD_MARKER: &str = "--user-tests-child";

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
static SUITE: OnceLock<String> = OnceLock::new();
static EXE: OnceLock<CString> = OnceLock::new();

/// Runs `tests` of `suite`, prints one line per test and a summary, and exits with status
/// 0 if all passed, 1 otherwise. If `argv[1]` is given, only tests whose name contains it
/// run; `--list` runs none and prints `list SUITE::NAME` for each (the runner asks the
/// suites that can pass only in our kernel for their names so).
pub fn run_tests(suite: &str, tests: &[(&str, fn())]) -> ! {
    run_tests_matching(suite, tests, std::env::args().nth(1).as_deref())
}

/// [`run_tests`] with the filter given: only tests whose name contains `filter` run.
pub fn run_tests_matching(suite: &str, tests: &[(&str, fn())], filter: Option<&str>) -> ! {
    if filter == Some("--list") {
        for (name, _) in tests {
            println!("list {suite}::{name}");
        }
        std::process::exit(0);
    }
    let _ = SUITE.set(suite.to_string());
    exe_path(); // resolve argv[0] before any test changes the working directory
    install_quiet_panic_hook();
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let result = panic::catch_unwind(test);
        // The whole line is printed at once, after the test: a forked child or a thread
        // writing meanwhile cannot split it.
        match result {
            Ok(()) => {
                passed += 1;
                println!("test {suite}::{name} ... ok");
            }
            Err(payload) => {
                failed += 1;
                let msg = panic_message(&*payload);
                println!("test {suite}::{name} ... FAILED: {}", one_line(&msg));
            }
        }
    }
    println!("{suite}: {passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// The variable `init` sets for the test programs it runs in a VM booted for the tests
/// (our kernel and the Linux guest).
pub const SCRATCH_MACHINE_ENV: &str = "USER_TESTS_SCRATCH_MACHINE";

/// Whether this is a VM booted only for the tests, where a test may change system-wide
/// settings (sysctl knobs). On the Linux host such a change would reach every other
/// process on it, so tests that need one leave it out there.
pub fn on_scratch_machine() -> bool {
    std::env::var_os(SCRATCH_MACHINE_ENV).is_some()
}

/// `tests![a, b]` is `&[("a", a), ("b", b)]` for [`run_tests`]: each test is named after
/// its function.
#[macro_export]
macro_rules! tests {
    ($($test:ident),* $(,)?) => {
        &[$((stringify!($test), $test as fn())),*]
    };
}

/// A panic hook that records the message and location instead of printing them; the
/// harness prints them on the test's result line.
fn install_quiet_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => match info.payload().downcast_ref::<String>() {
                Some(s) => s.clone(),
                None => "panic".to_string(),
            },
        };
        let msg = match info.location() {
            Some(l) => format!("{msg} (at {}:{})", l.file(), l.line()),
            None => msg,
        };
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(m) = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return m;
    }
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).collect::<Vec<_>>().join(" | ")
}

// ---------------------------------------------------------------------------------------
// Errors and raw system calls
// ---------------------------------------------------------------------------------------

/// A Linux error number (`libc::EBADF`, ...), as returned by a failed system call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The symbolic name (`"EBADF"`) for the common ones, `"E?"` otherwise.
    pub fn name(self) -> &'static str {
        use libc::*;
        match self.0 {
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            ESRCH => "ESRCH",
            EINTR => "EINTR",
            EIO => "EIO",
            ENXIO => "ENXIO",
            E2BIG => "E2BIG",
            ENOEXEC => "ENOEXEC",
            EBADF => "EBADF",
            ECHILD => "ECHILD",
            EAGAIN => "EAGAIN",
            ENOMEM => "ENOMEM",
            EACCES => "EACCES",
            EFAULT => "EFAULT",
            EBUSY => "EBUSY",
            EEXIST => "EEXIST",
            EXDEV => "EXDEV",
            ENODEV => "ENODEV",
            ENOTDIR => "ENOTDIR",
            EISDIR => "EISDIR",
            EINVAL => "EINVAL",
            ENFILE => "ENFILE",
            EMFILE => "EMFILE",
            ENOTTY => "ENOTTY",
            ETXTBSY => "ETXTBSY",
            EFBIG => "EFBIG",
            ENOSPC => "ENOSPC",
            ESPIPE => "ESPIPE",
            EROFS => "EROFS",
            EMLINK => "EMLINK",
            EPIPE => "EPIPE",
            EDOM => "EDOM",
            ERANGE => "ERANGE",
            EDEADLK => "EDEADLK",
            ENAMETOOLONG => "ENAMETOOLONG",
            ENOSYS => "ENOSYS",
            ENOTEMPTY => "ENOTEMPTY",
            ELOOP => "ELOOP",
            ETIMEDOUT => "ETIMEDOUT",
            EOPNOTSUPP => "EOPNOTSUPP",
            _ => "E?",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The calling thread's `errno`.
pub fn errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Makes system call `nr` with up to six arguments (missing ones are 0) through
/// `libc::syscall`, which bypasses every libc wrapper and vDSO.
pub fn syscall(nr: libc::c_long, args: &[usize]) -> Result<i64, Errno> {
    assert!(args.len() <= 6, "a system call takes at most 6 arguments");
    let mut a = [0usize; 6];
    a[..args.len()].copy_from_slice(args);
    // SAFETY: the caller picks arguments that are valid for `nr`; bad pointers are the
    // point of many tests, and the kernel checks them.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    // libc::syscall turns -4095..-1 into -1 and errno; no call tested here returns -1 on
    // success.
    if r == -1 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// A system call argument: integers (signed ones sign-extended, so `-1` works) and
/// pointers, as the register value.
pub trait SysArg {
    fn to_arg(self) -> usize;
}

macro_rules! sys_arg_as {
    ($($t:ty),*) => { $(impl SysArg for $t { fn to_arg(self) -> usize { self as usize } })* };
}
sys_arg_as!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl<T> SysArg for *const T {
    fn to_arg(self) -> usize {
        self as usize
    }
}

impl<T> SysArg for *mut T {
    fn to_arg(self) -> usize {
        self as usize
    }
}

/// `sys!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len())`: a raw system call; each
/// argument is an integer or a pointer (see [`SysArg`]).
#[macro_export]
macro_rules! sys {
    ($nr:expr $(, $arg:expr)* $(,)?) => {
        $crate::syscall($nr as $crate::libc::c_long, &[$($crate::SysArg::to_arg($arg)),*])
    };
}

/// `assert_errno!(expr, libc::EBADF)`: `expr` (a `Result<_, Errno>`) is `Err(EBADF)`.
#[macro_export]
macro_rules! assert_errno {
    ($e:expr, $errno:expr $(,)?) => {
        match $e {
            Err(e) if e == $crate::Errno($errno) => {}
            other => panic!("{}: expected Err({:?}), got {:?}", stringify!($e), $crate::Errno($errno), other),
        }
    };
}

/// An address that is never mapped in user space: the last page below the top of the
/// address space, which is kernel space on x86_64.
pub const BAD_PTR: usize = 0xffff_ffff_ffff_f000;

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

/// A NUL-terminated copy of `s` for raw system calls.
pub fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in path")
}

/// `openat(AT_FDCWD, path, flags, mode)`.
pub fn open(path: &str, flags: i32, mode: u32) -> Result<i32, Errno> {
    let p = cstr(path);
    sys!(libc::SYS_openat, libc::AT_FDCWD, p.as_ptr(), flags, mode).map(|fd| fd as i32)
}

pub fn close(fd: i32) -> Result<i64, Errno> {
    sys!(libc::SYS_close, fd)
}

pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    sys!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()).map(|n| n as usize)
}

pub fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    sys!(libc::SYS_write, fd, buf.as_ptr(), buf.len()).map(|n| n as usize)
}

/// `pipe2(flags)`: (read end, write end).
pub fn pipe(flags: i32) -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    sys!(libc::SYS_pipe2, fds.as_mut_ptr(), flags)?;
    Ok((fds[0], fds[1]))
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub fn read_full(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut n = 0;
    while n < buf.len() {
        match read(fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(Errno(libc::EINTR)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A scratch directory `/tmp/ut-SUITE-PID-N`, removed with its contents on drop. Each
/// test makes its own, so tests and reruns never see each other's files.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let suite = SUITE.get().map(String::as_str).unwrap_or("test");
        let path =
            PathBuf::from(format!("/tmp/ut-{suite}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempDir { path }
    }

    /// The path of `name` inside the directory, as a string for raw calls.
    pub fn join(&self, name: &str) -> String {
        self.path.join(name).to_str().unwrap().to_string()
    }

    /// Creates file `name` holding `data`; returns its path.
    pub fn file(&self, name: &str, data: &[u8]) -> String {
        let p = self.join(name);
        std::fs::write(&p, data).unwrap_or_else(|e| panic!("{p}: {e}"));
        p
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// How a child ended, decoded from a wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`: WIFEXITED, WEXITSTATUS.
    Code(i32),
    /// Killed by a signal: WIFSIGNALED, WTERMSIG.
    Signal(i32),
    /// Anything else (stopped, continued), raw status.
    Other(i32),
}

impl Exit {
    pub fn from_status(status: i32) -> Exit {
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Other(status)
        }
    }
}

/// clone/vfork (system call `nr` with arguments `a`) whose child exits at once with status
/// 0 without touching memory, so it may share the parent's address space and stack
/// (CLONE_VM, CLONE_VFORK, CLONE_THREAD). Returns the parent's result: the child's id, or
/// `-errno`.
pub fn raw_clone_exiting_child(nr: u64, a: [u64; 6]) -> i64 {
    let r: i64;
    // SAFETY: the child runs only the instructions after the first `syscall`, which use
    // registers alone, and exits (the thread, for CLONE_THREAD) with status 0.
    unsafe {
        std::arch::asm!("syscall", "test rax, rax", "jnz 2f", "mov eax, 60", "xor edi, edi", "syscall", "ud2", "2:",
             inlateout("rax") nr as i64 => r, inlateout("rdi") a[0] => _, in("rsi") a[1], in("rdx") a[2],
             in("r10") a[3], in("r8") a[4], in("r9") a[5], lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

/// Forks; the child runs `f` and `_exit`s with its result (101 if it panics, after
/// writing the panic message to stderr). Returns the child's pid.
pub fn fork_child(f: impl FnOnce() -> i32) -> libc::pid_t {
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", errno()),
        0 => {
            let code = match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(code) => code,
                Err(p) => {
                    let m = format!("child panicked: {}\n", panic_message(&*p));
                    let _ = write(2, m.as_bytes());
                    101
                }
            };
            unsafe { libc::_exit(code) }
        }
        pid => pid,
    }
}

/// Waits for child `pid` (wait4, retrying on EINTR) and decodes its status.
pub fn wait_child(pid: libc::pid_t) -> Exit {
    let mut status = 0;
    loop {
        match sys!(libc::SYS_wait4, pid, &mut status as *mut i32, 0, 0) {
            Ok(p) => {
                assert_eq!(p, pid as i64, "wait4 returned another pid");
                return Exit::from_status(status);
            }
            Err(Errno(libc::EINTR)) => {}
            Err(e) => panic!("wait4({pid}): {e}"),
        }
    }
}

/// Runs `f` in a forked child and returns how the child ended. For tests whose subject
/// kills the process (SIGSEGV, exit from a thread, ...).
pub fn child_exit(f: impl FnOnce() -> i32) -> Exit {
    wait_child(fork_child(f))
}

/// Runs `f` in a forked child and panics unless it returns normally; a panic in the child
/// (a failed assertion) fails the test with the child's message. For tests that change
/// process-wide state (credentials, limits, the break) or must not disturb the harness.
#[track_caller]
pub fn run_in_child(f: impl FnOnce()) {
    let (exit, message) = run_in_child_outcome(f);
    if let Some(m) = message {
        panic!("in child: {m}");
    }
    assert_eq!(exit, Exit::Code(0), "child did not exit normally");
}

/// Runs `f` in a child process: how the child ended, and the message of its panic if it
/// panicked (what [`run_in_child`] reports).
pub fn run_in_child_outcome(f: impl FnOnce()) -> (Exit, Option<String>) {
    let (r, w) = pipe(libc::O_CLOEXEC).expect("pipe2");
    let pid = fork_child(|| {
        let _ = close(r);
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => 0,
            Err(p) => {
                let _ = write(w, one_line(&panic_message(&*p)).as_bytes());
                101
            }
        }
    });
    close(w).unwrap();
    let exit = wait_child(pid);
    // Read after the wait, without blocking: a grandchild may still hold the write end.
    sys!(libc::SYS_fcntl, r, libc::F_SETFL, libc::O_NONBLOCK).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = read(r, &mut buf).unwrap_or(0);
    close(r).unwrap();
    (exit, (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned()))
}

/// The absolute path of this test binary, for re-executing it: `argv[0]` when it is a
/// path (resolved against the starting directory), else `current_exe()` (which needs
/// /proc/self/exe, which our kernel may not have yet).
pub fn exe_path() -> &'static CStr {
    EXE.get_or_init(|| {
        let arg0 = std::env::args().next().unwrap_or_default();
        let path = if arg0.starts_with('/') {
            PathBuf::from(arg0)
        } else if arg0.contains('/') {
            std::env::current_dir().expect("getcwd").join(arg0)
        } else {
            std::env::current_exe().expect("current_exe")
        };
        cstr(path.to_str().expect("UTF-8 path"))
    })
}

/// In "child mode" (`argv[1] == CHILD_MARKER`, used when a test re-executes its own
/// binary), the arguments after the marker; `None` in a normal run.
pub fn child_args() -> Option<Vec<String>> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(CHILD_MARKER) {
        Some(args.collect())
    } else {
        None
    }
}

/// Raw `execve(path, argv, envp)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[&str], envp: &[&str]) -> Errno {
    let argv_c: Vec<CString> = argv.iter().map(|s| cstr(s)).collect();
    let envp_c: Vec<CString> = envp.iter().map(|s| cstr(s)).collect();
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|s| s.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp_c.iter().map(|s| s.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    match sys!(libc::SYS_execve, path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) {
        Ok(_) => unreachable!("execve returned success"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------
// Memory and signals
// ---------------------------------------------------------------------------------------

/// Reads the byte at `addr` with a plain load instruction; a bad address faults here
/// (SIGSEGV) rather than being undefined behaviour the compiler may reason about.
pub fn load_byte(addr: usize) -> u8 {
    let v: u8;
    // SAFETY: the fault, if any, is the point; no Rust invariant depends on the value.
    unsafe { std::arch::asm!("mov {v}, byte ptr [{a}]", a = in(reg) addr, v = out(reg_byte) v) };
    v
}

/// Writes `v` at `addr` with a plain store instruction (see [`load_byte`]).
pub fn store_byte(addr: usize, v: u8) {
    // SAFETY: as for load_byte; callers only store to memory no Rust reference aliases.
    unsafe { std::arch::asm!("mov byte ptr [{a}], {v}", a = in(reg) addr, v = in(reg_byte) v) };
}

/// `sa_flags` bit saying `sa_restorer` is set (libc sets it; not exported by every libc).
pub const SA_RESTORER: i32 = 0x0400_0000;
/// `si_code` of a SIGSEGV for an address with no mapping.
pub const SEGV_MAPERR: i32 = 1;
/// `si_code` of a SIGSEGV for an access the mapping's protection forbids.
pub const SEGV_ACCERR: i32 = 2;

/// The kernel's `struct sigaction` for `rt_sigaction` (not libc's, whose layout differs
/// between libcs).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KSigaction {
    pub handler: usize,
    pub flags: u64,
    pub restorer: usize,
    pub mask: u64,
}

/// Installs a signal action with libc's `sigaction` (which supplies the `sa_restorer`
/// trampoline that `rt_sigreturn` needs) and returns the previous handler address.
/// `handler` is `SIG_DFL`, `SIG_IGN` or a function address; `flags` are `SA_*` (add
/// `SA_SIGINFO` for a three-argument handler); `mask` lists signals blocked while it runs.
pub fn set_handler(sig: i32, handler: usize, flags: i32, mask: &[i32]) -> Result<usize, Errno> {
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        act.sa_flags = flags;
        libc::sigemptyset(&mut act.sa_mask);
        for &s in mask {
            libc::sigaddset(&mut act.sa_mask, s);
        }
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, &act, &mut old) != 0 {
            return Err(errno());
        }
        Ok(old.sa_sigaction)
    }
}

/// The address of a one-argument signal handler, for [`set_handler`].
pub fn handler(f: extern "C" fn(libc::c_int)) -> usize {
    f as *const () as usize
}

/// A `SA_SIGINFO` handler: signal number, siginfo, ucontext.
pub type SiginfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The address of a `SA_SIGINFO` signal handler, for [`set_handler`].
pub fn siginfo_handler(f: SiginfoHandler) -> usize {
    f as *const () as usize
}

/// The bit for `sig` in a kernel signal mask.
pub fn sigbit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// `rt_sigprocmask(how, set)`: returns the previous mask.
pub fn sigprocmask(how: i32, set: u64) -> Result<u64, Errno> {
    let mut old = 0u64;
    sys!(libc::SYS_rt_sigprocmask, how, &set as *const u64, &mut old as *mut u64, 8)?;
    Ok(old)
}

/// The current signal mask.
pub fn current_sigmask() -> u64 {
    let mut old = 0u64;
    sys!(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, 0, &mut old as *mut u64, 8).unwrap();
    old
}

/// Sends `sig` to the calling thread (tgkill), so it is delivered before this returns.
pub fn raise(sig: i32) {
    let pid = sys!(libc::SYS_getpid).unwrap();
    let tid = sys!(libc::SYS_gettid).unwrap();
    sys!(libc::SYS_tgkill, pid, tid, sig).unwrap();
}

/// Sends `sig` to process `pid` `count` times, `interval_ms` apart: for a child that
/// interrupts its parent. Stops early once the caller's parent is no longer `pid`, so a
/// sender whose test failed cannot outlive it and signal a stranger that reuses the pid.
pub fn send_signals(pid: i32, sig: i32, count: usize, interval_ms: u64) {
    for _ in 0..count {
        if sys!(libc::SYS_getppid) != Ok(pid as i64) {
            return;
        }
        sys!(libc::SYS_kill, pid, sig).unwrap();
        sleep_ms(interval_ms);
    }
}

/// Monotonic clock in nanoseconds (raw clock_gettime).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    sys!(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts as *mut libc::timespec).unwrap();
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps `ms` milliseconds (nanosleep, resumed after signals).
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// Polls `cond` every millisecond until it holds or `ms` milliseconds have passed;
/// returns whether it held. For waiting on another process without a fixed sleep.
pub fn wait_until(ms: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = monotonic_ns() + ms * 1_000_000;
    loop {
        if cond() {
            return true;
        }
        if monotonic_ns() > end {
            return false;
        }
        sleep_ms(1);
    }
}

pub const PAGE: usize = 4096;

/// `mmap` through the raw system call.
pub fn mmap(addr: usize, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> Result<usize, Errno> {
    sys!(libc::SYS_mmap, addr, len, prot, flags, fd, off).map(|a| a as usize)
}

/// A private anonymous read-write mapping of `len` bytes.
pub fn mmap_anon(len: usize) -> usize {
    mmap(0, len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0).expect("mmap")
}

/// A shared futex meets across processes (Linux's `get_futex_key`: keyed by the shared
/// object and offset): forks a child that finds its word with `child_word` (mapping the
/// object its own way, at its own address) and waits on it as a shared futex (5 s at
/// most), then wakes through `word` in this process until a waiter is found. Panics unless
/// the child was found and woken.
pub fn shared_futex_meets(word: usize, child_word: impl FnOnce() -> usize) {
    let pid = fork_child(move || {
        let w = child_word();
        let five_s = libc::timespec { tv_sec: 5, tv_nsec: 0 };
        // FUTEX_WAIT without FUTEX_PRIVATE_FLAG: a shared futex.
        match sys!(libc::SYS_futex, w, libc::FUTEX_WAIT, 0, &five_s as *const libc::timespec, 0, 0) {
            Ok(0) => 0,
            Ok(_) => 3,
            Err(e) => 10 + e.0,
        }
    });
    // Wake until a waiter was there to be woken (the child may not sleep yet).
    let mut woken = 0;
    for _ in 0..200 {
        woken = sys!(libc::SYS_futex, word, libc::FUTEX_WAKE, 1, 0, 0, 0).unwrap();
        if woken == 1 {
            break;
        }
        sleep_ms(10);
    }
    assert_eq!(woken, 1, "the waiter in the other process was never found");
    assert_eq!(wait_child(pid), Exit::Code(0));
}

/// An anonymous shared mapping of `n` u64 words, zeroed, never unmapped: what a parent
/// and the children it forks (or its threads) signal each other through.
pub fn shared_words(n: usize) -> &'static [std::sync::atomic::AtomicU64] {
    let len = (n * 8).max(PAGE);
    let p =
        mmap(0, len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0).expect("mmap");
    // SAFETY: a fresh zeroed shared mapping of at least n words, never unmapped.
    unsafe { std::slice::from_raw_parts(p as *const std::sync::atomic::AtomicU64, n) }
}

// ---------------------------------------------------------------------------------------
// /proc figures
// ---------------------------------------------------------------------------------------

/// Whether [`read_proc_into`] may grow its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcBuf {
    /// Grow it as the file needs (reading may allocate).
    Grow,
    /// Never: the caller gave it the capacity and touched its pages beforehand (see
    /// [`proc_buffer`]), so reading allocates, maps and faults nothing and leaves the
    /// figures it reads (RSS, VmPTE, PageTables, Committed_AS) as they were. A file that
    /// does not fit is a panic.
    Fixed,
}

/// Reads the whole of /proc file `path` with raw system calls into the `cap` bytes at
/// `dst`; `None` if it does not fit (a full buffer counts as not fitting: the end of the
/// file would not be seen).
fn read_proc_raw(path: &CStr, dst: *mut u8, cap: usize) -> Option<usize> {
    let fd = sys!(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)
        .unwrap_or_else(|e| panic!("{path:?}: {e}")) as i32;
    let mut len = 0;
    let fits = loop {
        if len == cap {
            break false;
        }
        // The kernel writes at most `cap - len` bytes there.
        let n = sys!(libc::SYS_read, fd, dst.wrapping_add(len), cap - len).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        if n == 0 {
            break true;
        }
        len += n as usize;
    };
    close(fd).unwrap();
    fits.then_some(len)
}

/// Reads the whole of /proc file `path` into `buf` (cleared first) with raw system calls,
/// growing `buf` only if `room` is [`ProcBuf::Grow`].
pub fn read_proc_into(path: &CStr, buf: &mut Vec<u8>, room: ProcBuf) {
    loop {
        buf.clear();
        if let Some(n) = read_proc_raw(path, buf.as_mut_ptr(), buf.capacity()) {
            // SAFETY: the reads initialised the first `n` bytes, within the capacity.
            unsafe { buf.set_len(n) };
            return;
        }
        assert_eq!(room, ProcBuf::Grow, "{path:?} does not fit in {} bytes", buf.capacity());
        buf.reserve(buf.capacity().max(PAGE) * 2);
    }
}

/// A 1 MiB buffer for [`read_proc_into`] with [`ProcBuf::Fixed`], every page touched.
pub fn proc_buffer() -> Vec<u8> {
    let mut buf = vec![1u8; 1 << 20];
    buf.clear();
    buf
}

/// The text of /proc file `path`. The buffer is 1 MiB to start with, more than any file
/// needs but a large one, so that every read maps (and unmaps) the same: VmSize read
/// through here is the same from call to call.
pub fn read_proc(path: &CStr) -> String {
    let mut buf = Vec::with_capacity(1 << 20);
    read_proc_into(path, &mut buf, ProcBuf::Grow);
    String::from_utf8(buf).unwrap_or_else(|_| panic!("{path:?} is not UTF-8"))
}

/// The number on the `name:` line of a /proc file's text (/proc/meminfo, /proc/PID/status,
/// smaps), without its ` kB`.
pub fn proc_field(text: &str, name: &str) -> u64 {
    for line in text.lines() {
        if let Some((n, v)) = line.split_once(':') {
            if n == name {
                let v = v.trim();
                let v = v.strip_suffix(" kB").unwrap_or(v).trim();
                return v.parse().unwrap_or_else(|_| panic!("{name}: bad value {v:?}"));
            }
        }
    }
    panic!("no {name} in:\n{text}")
}

/// A field of /proc/self/status (kB figures in kB).
pub fn status_kb(name: &str) -> u64 {
    proc_field(&read_proc(c"/proc/self/status"), name)
}

/// The `name:` figure (kB) of the /proc/self/smaps entry of the VMA starting at `addr`.
pub fn smaps_kb(addr: usize, name: &str) -> u64 {
    let text = read_proc(c"/proc/self/smaps");
    let start = format!("{addr:x}-");
    let entry = text.split_inclusive('\n').skip_while(|l| !l.starts_with(&start)).skip(1);
    for l in entry {
        if let Some(v) = l.strip_prefix(&format!("{name}:")) {
            return v.trim().trim_end_matches(" kB").trim().parse().unwrap();
        }
    }
    panic!("no {name} for the VMA at {addr:#x}");
}

/// The /proc/self/pagemap entries of the `n` pages at `addr`.
pub fn pagemap(addr: usize, n: usize) -> Vec<u64> {
    let fd = open("/proc/self/pagemap", libc::O_RDONLY | libc::O_CLOEXEC, 0).unwrap();
    let mut buf = vec![0u8; 8 * n];
    let got = sys!(libc::SYS_pread64, fd, buf.as_mut_ptr(), buf.len(), (addr / PAGE * 8) as i64).unwrap();
    close(fd).unwrap();
    assert_eq!(got as usize, buf.len());
    buf.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// This process's minor faults so far (`ru_minflt`).
pub fn minflt() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    sys!(libc::SYS_getrusage, libc::RUSAGE_SELF, &mut ru as *mut libc::rusage).unwrap();
    ru.ru_minflt
}

/// Sets this process's RLIMIT_AS soft limit (the hard limit unlimited).
pub fn set_rlimit_as(bytes: u64) {
    let r = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
    sys!(libc::SYS_setrlimit, libc::RLIMIT_AS, &r as *const libc::rlimit).unwrap();
}

/// The CPUs this process may run on (`sched_getaffinity`, as
/// `sysconf(_SC_NPROCESSORS_ONLN)` in musl).
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    sys!(libc::SYS_sched_setaffinity, 0, std::mem::size_of::<libc::cpu_set_t>(), &set as *const libc::cpu_set_t)
        .expect("pin");
}

/// How long [`wait_for`] waits for another task before the test fails as hung.
pub const STUCK: std::time::Duration = std::time::Duration::from_secs(30);

/// Spins (yielding the CPU each time, so one CPU still runs the task it waits for) until
/// `cond` holds; panics after [`STUCK`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < STUCK, "stuck for {STUCK:?} waiting for {what}");
        // SAFETY: sched_yield has no memory effects.
        unsafe { libc::sched_yield() };
    }
}

/// The text of `/proc/sys/{name}` (`name` as `vm/max_map_count`).
pub fn read_knob(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{name}")).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// Writes `value` to `/proc/sys/{name}`.
pub fn write_knob(name: &str, value: &str) -> Result<usize, Errno> {
    let fd = open(&format!("/proc/sys/{name}"), libc::O_WRONLY, 0)?;
    let r = write(fd, value.as_bytes());
    close(fd).unwrap();
    r
}

/// A /proc/sys knob set for the guard's lifetime; the old value comes back on drop.
pub struct Knob {
    name: &'static str,
    /// The value it had, put back on drop.
    pub old: String,
}

impl Knob {
    /// Sets `name` to `value`, panicking if the write fails.
    pub fn set(name: &'static str, value: &str) -> Knob {
        let old = read_knob(name);
        write_knob(name, value).unwrap_or_else(|e| panic!("write {value} to {name}: {e}"));
        Knob { name, old }
    }

    /// As [`Knob::set`], but None on a machine that is not a scratch VM of the test run:
    /// knobs are system-wide, and on a shared host a low `max_map_count`, `pid_max` or
    /// strict overcommit would reach every other process. Such tests then check nothing
    /// there; our kernel and the Linux guest run them in full.
    pub fn set_on_scratch(name: &'static str, value: &str) -> Option<Knob> {
        on_scratch_machine().then(|| Knob::set(name, value))
    }
}

impl Drop for Knob {
    fn drop(&mut self) {
        let _ = write_knob(self.name, &self.old);
    }
}

/// The text of /proc file `path`, read into `buf` (on the stack, say): nothing is allocated
/// or mapped, so reading changes no figure of the process. Panics if it does not fit.
pub fn read_proc_in<'a>(path: &CStr, buf: &'a mut [u8]) -> &'a str {
    let n = read_proc_raw(path, buf.as_mut_ptr(), buf.len())
        .unwrap_or_else(|| panic!("{path:?} does not fit in {} bytes", buf.len()));
    std::str::from_utf8(&buf[..n]).unwrap_or_else(|_| panic!("{path:?} is not UTF-8"))
}

/// A field of /proc/meminfo (kB figures in kB), read into a buffer on the stack (see
/// [`read_proc_in`]): reading leaves Committed_AS and the rest as they were.
pub fn meminfo_kb(name: &str) -> u64 {
    proc_field(read_proc_in(c"/proc/meminfo", &mut [0u8; 8192]), name)
}

/// mount(2) of a filesystem of type `fstype` with options `data` on `target`.
pub fn mount_tmpfs(target: &str, fstype: &str, data: &str) -> Result<i64, Errno> {
    let (src, t, ty, d) = (cstr("none"), cstr(target), cstr(fstype), cstr(data));
    crate::sys!(libc::SYS_mount, src.as_ptr(), t.as_ptr(), ty.as_ptr(), 0, d.as_ptr())
}

pub fn umount2(target: &str, flags: i32) -> Result<i64, Errno> {
    crate::sys!(libc::SYS_umount2, cstr(target).as_ptr(), flags)
}

/// A tmpfs mounted with `data` on `mnt`, an empty directory in a scratch directory;
/// detached when dropped (a test that failed halfway leaves no mount behind), before the
/// scratch directory goes.
pub struct TmpfsMount {
    pub mnt: String,
    pub dir: TempDir,
}

impl TmpfsMount {
    pub fn new(data: &str) -> TmpfsMount {
        let dir = TempDir::new();
        let mnt = dir.join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        mount_tmpfs(&mnt, "tmpfs", data).unwrap();
        TmpfsMount { mnt, dir }
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = umount2(&self.mnt, libc::MNT_DETACH);
    }
}
