//! The kernel's end-of-run checks as the runner reads them: the leak check
//! (`kernel/src/leak.rs`: a line per resource, then
//! `mshare-kernel: leak check: N resources, no leak`) and the watchdog
//! (`mshare-kernel: WATCHDOG: ...`, `kernel/src/watchdog.rs`).

/// The kernel's per-resource lines and summary, for the log of a passing run.
pub fn lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| {
            l.starts_with("mshare-kernel: ")
                && (l.contains(" at start ")
                    || l.contains("leak check: ")
                    || l.ends_with(" left behind")
                    || l.starts_with("mshare-kernel: watchdog: "))
        })
        .collect()
}

/// Ok if the console shows a complete, clean leak check and no watchdog report.
pub fn verdict(output: &str) -> Result<(), String> {
    if let Some(l) = output.lines().find(|l| l.starts_with("mshare-kernel: WATCHDOG: ")) {
        return Err(l.to_string());
    }
    let Some(summary) = output.lines().find_map(|l| l.strip_prefix("mshare-kernel: leak check: ")) else {
        return Err("the kernel printed no leak check".into());
    };
    let resources: usize = summary.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("mshare-kernel: ") && l.contains(" at start ") && l.contains(", now "))
        .collect();
    if let Some(bad) = lines.iter().find(|l| !l.ends_with(": no leak")) {
        return Err(bad.to_string());
    }
    if !summary.ends_with(" resources, no leak") {
        return Err(format!("leak check: {summary}"));
    }
    if resources == 0 || lines.len() != resources {
        return Err(format!("leak check: {} resource lines for {summary}", lines.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::verdict;

    const CLEAN: &str = "mshare-kernel: frames in use (page cache aside) at start 3, now 3: no leak\n\
                         mshare-kernel: open files at start 0, now 0: no leak\n\
                         mshare-kernel: leak check: 2 resources, no leak\n";

    #[test]
    fn a_clean_leak_check_passes() {
        assert_eq!(verdict(CLEAN), Ok(()));
    }

    #[test]
    fn a_leaked_resource_fails_with_its_line() {
        let out = "mshare-kernel: open files at start 0, now 1: LEAK of 1\n\
                   mshare-kernel: leak check: 1 resources, LEAK in open files\n";
        assert_eq!(verdict(out), Err("mshare-kernel: open files at start 0, now 1: LEAK of 1".into()));
    }

    #[test]
    fn a_missing_or_truncated_check_fails() {
        assert!(verdict("mshare-kernel: init exited with status 0\n").is_err());
        let truncated = CLEAN.replace("2 resources", "3 resources");
        assert!(verdict(&truncated).is_err());
    }

    #[test]
    fn a_watchdog_report_fails() {
        let out = format!("mshare-kernel: WATCHDOG: soft lockup on CPU 0 for 21 s\n{CLEAN}");
        assert!(verdict(&out).unwrap_err().contains("soft lockup"));
    }
}
