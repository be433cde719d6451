//! Helpers shared by the benchmark programs: the output protocol, the TSC, and the
//! kernel's own figures (`/proc/self/status`, `/proc/meminfo`, `getrusage`).
//!
//! Every result is one line on stdout:
//!
//! ```text
//! @bench SUITE key=value key=value ...
//! ```
//!
//! Values never contain spaces. The runner (`qemu/src/bench.rs`) parses these lines from
//! the serial console of either kernel; anything else on the console is ignored.

use std::fmt::Display;
use std::io::Write;

/// Prints one result line `@bench SUITE k=v ...` in a single write, so that output of
/// other processes cannot split it.
pub fn emit(suite: &str, fields: &[(&str, &dyn Display)]) {
    let mut line = format!("@bench {suite}");
    for (k, v) in fields {
        let v = v.to_string();
        debug_assert!(!v.contains(char::is_whitespace), "{k}={v}");
        line.push_str(&format!(" {k}={v}"));
    }
    line.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects; user mode may execute it (CR4.TSD is clear on
    // both kernels).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The TSC's rate in Hz, measured against CLOCK_MONOTONIC over `ms` milliseconds.
pub fn tsc_hz(ms: u64) -> u64 {
    let (t0, c0) = (now_ns(), rdtsc());
    while now_ns() - t0 < ms * 1_000_000 {
        std::hint::spin_loop();
    }
    let (t1, c1) = (now_ns(), rdtsc());
    ((c1 - c0) as u128 * 1_000_000_000 / (t1 - t0).max(1) as u128) as u64
}

/// The value in kB of `key:` in a `/proc` file of `key: value kB` lines, as bytes.
pub fn proc_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse::<u64>().ok().map(|kb| kb * 1024)
    })
}

/// Figures of the calling process from `/proc/self/status`, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Status {
    pub vm_pte: u64,
    pub vm_rss: u64,
    pub rss_shmem: u64,
}

pub fn self_status() -> Status {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    Status {
        vm_pte: proc_kb(&text, "VmPTE").unwrap_or(0),
        vm_rss: proc_kb(&text, "VmRSS").unwrap_or(0),
        rss_shmem: proc_kb(&text, "RssShmem").unwrap_or(0),
    }
}

/// The system's page-table bytes: `PageTables` of /proc/meminfo, read after writing
/// `/proc/sys/vm/stat_refresh` (Linux folds its per-CPU counter deltas on that write).
pub fn meminfo_page_tables() -> u64 {
    let _ = std::fs::write("/proc/sys/vm/stat_refresh", "1");
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    proc_kb(&text, "PageTables").unwrap_or(0)
}

/// Minor faults of the calling process so far (`getrusage(RUSAGE_SELF).ru_minflt`).
pub fn minor_faults() -> u64 {
    // SAFETY: zeroed rusage is a valid value for getrusage to fill.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to write.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_minflt as u64
}

/// The running kernel's name and release from uname(2), e.g. `Linux-6.1.0-48-cloud-amd64`.
pub fn kernel_release() -> String {
    // SAFETY: zeroed utsname is valid for uname to fill.
    let mut u: libc::utsname = unsafe { core::mem::zeroed() };
    // SAFETY: `u` is a valid utsname to write.
    unsafe { libc::uname(&mut u) };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{}-{}", field(&u.sysname), field(&u.release)).replace(char::is_whitespace, "_")
}

/// The rows of `/proc/interrupts` (Linux's format: a label such as `CAL:`, one count per
/// online CPU, then a description) as label -> the sum of the counts over the CPUs. Rows
/// with no count (none such in Linux's file) are left out.
pub fn irq_row_sums(text: &str) -> std::collections::BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (label, rest) = l.split_once(':')?;
            let counts: Vec<u64> = rest.split_whitespace().map_while(|w| w.parse().ok()).collect();
            (!counts.is_empty()).then(|| (label.trim().to_string(), counts.iter().sum()))
        })
        .collect()
}

/// Parses `--name value` style arguments: the value after `name`, if present.
pub fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// Parses a size such as `256M`, `1G`, `4096` or `64K` into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_kb_reads_kilobyte_fields() {
        let t = "VmRSS:\t    1024 kB\nVmPTE:\t      48 kB\nRssShmem:\t0 kB\n";
        assert_eq!(proc_kb(t, "VmPTE"), Some(48 * 1024));
        assert_eq!(proc_kb(t, "VmRSS"), Some(1024 * 1024));
        assert_eq!(proc_kb(t, "RssShmem"), Some(0));
        assert_eq!(proc_kb(t, "VmSwap"), None);
    }

    #[test]
    fn interrupt_rows_are_summed_over_cpus() {
        let t = "           CPU0       CPU1       \n  4:        120          0   IO-APIC   4-edge      ttyS0\n\
                 NMI:          0          0   Non-maskable interrupts\n\
                 RES:         17         25   Rescheduling interrupts\n\
                 CAL:        300        211   Function call interrupts\n\
                 TLB:         40         38   TLB shootdowns\n\
                 ERR:          0\n";
        let m = irq_row_sums(t);
        assert_eq!(m["RES"], 42);
        assert_eq!(m["CAL"], 511);
        assert_eq!(m["TLB"], 78);
        assert_eq!(m["4"], 120);
        assert_eq!(m["ERR"], 0);
        assert!(!m.contains_key("CPU0"));
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("x"), None);
    }
}
