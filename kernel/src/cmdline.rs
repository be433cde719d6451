//! The kernel command line (`-append` in QEMU): space-separated `key` or
//! `key=value` words. Known keys:
//! - `log=error|warn|info|debug|trace` — console log level (default `info`)
//! - `ktest` — run every in-kernel test and exit; `ktest=NAME` runs one
//! - `init=PATH` — the first user program (default `/init` if the initramfs has it)
//! - `initargs=FILE` — its arguments, NUL-separated, from a file in the initramfs
//!   (words after ` -- ` on the command line otherwise)
//! - `watchdog_thresh=S`, `hung_task_timeout_secs=S` — the watchdog's bounds in
//!   seconds (default 20; 0 disables), see `watchdog.rs`
//! - `fail_page_alloc=SPEC`, `failslab=SPEC` — allocation-failure injection
//!   once init runs; SPEC is `P%` or `every:K` with optional `,seed=X`,
//!   `,after=N`, `,times=N` (`mm/fail.rs`)
//! - `tlb_shootdown=off` — a debug switch: user TLB flushes stay on the CPU that
//!   makes them, other CPUs keep stale translations (`mm/tlb.rs`)
//! - `pt_share=on|off` — transparent page-table sharing of big shared mappings (default
//!   off; `/proc/sys/vm/pt_share`, `mm/pt_share.rs`)

pub fn get<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|w| match w.split_once('=') {
        Some((k, v)) if k == key => Some(v),
        None if w == key => Some(""),
        _ => None,
    })
}

pub fn log_level(cmdline: &str) -> log::LevelFilter {
    match get(cmdline, "log") {
        Some("error") => log::LevelFilter::Error,
        Some("warn") => log::LevelFilter::Warn,
        Some("debug") => log::LevelFilter::Debug,
        Some("trace") => log::LevelFilter::Trace,
        Some("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    }
}

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![cmdline_parses_keys_and_flags];

fn cmdline_parses_keys_and_flags() {
    let c = "log=debug ktest  init=/bin/sh x=";
    assert_eq!(get(c, "log"), Some("debug"));
    assert_eq!(get(c, "ktest"), Some(""));
    assert_eq!(get(c, "init"), Some("/bin/sh"));
    assert_eq!(get(c, "x"), Some(""));
    assert_eq!(get(c, "missing"), None);
    assert_eq!(log_level(c), log::LevelFilter::Debug);
    assert_eq!(log_level(""), log::LevelFilter::Info);
}
