//! An interactive `bash -i` on the serial console, driven as a person would type at it:
//! the session's controlling terminal is the console itself (the path from the UART's
//! input through the console's line discipline to job control), run in our kernel and on
//! Debian's Linux in the same QEMU by `cargo xtask test`.
//!
//! The root's `/console_session` (below) is pid 1. It makes the console the controlling
//! terminal of a new session (`setsid -c`, TIOCSCTTY) and runs bash there. The runner
//! writes each line once the output shows what the previous step waited for
//! (`qemu::ConsoleStep`); a step's `proves` names the behaviour its output shows. Every
//! expected text is one the typed line's own echo cannot contain (`$((6*7))` typed, `42`
//! expected), so a match is the command's output, never its echo.

use crate::qemu::ConsoleStep;

/// The session's pid 1, a path inside the Debian root.
pub const SESSION_PATH: &str = "console_session";

/// `/console_session`: /proc for the checks below (Linux starts init without it), a prompt
/// no command's echo contains, no startup files (Debian's bashrc sets its own prompt), a
/// terminal type without escape sequences, then bash as the leader of a new session whose
/// controlling terminal is the console (`setsid -c`). A script's asynchronous command gets
/// its input from /dev/null and ignores SIGINT and SIGQUIT, which bash would hand on to
/// its jobs: the explicit `<&0` keeps the console as the input, and `env
/// --default-signal` gives the two signals back their default actions. The
/// script stays pid 1 and ends with bash's status: as init it also reaps the orphans a
/// killed job leaves (`setsid -w` as init would take one of those for bash). The jobs are
/// bash's children, not init's: a group whose members' parent is init is orphaned, and
/// the terminal's stop signals to it are discarded.
pub const SESSION: &str = r#"#!/bin/bash
[ -e /proc/self ] || mount -t proc proc /proc
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb PS1='ok\$ '
env --default-signal=INT,QUIT setsid -c bash --norc -i <&0 &
wait $!
"#;

/// Root's prompt (`PS1='ok\$ '`).
const PROMPT: &str = "ok# ";

/// A foreground job (a bash loop of short sleeps; the root has no other shell) that says
/// when it has started, and says so again when continued after a stop.
const JOB: &str = r#"bash -c 'trap "echo cont\$((5+5))" CONT; echo tz$((2+2)); while :; do sleep 0.2; done'"#;

/// The status bash exits with, seen as init's.
pub const EXIT_STATUS: u8 = 7;

/// One step: wait for `expect`, then type `send`; `proves` names the test that passes
/// once `expect` has shown.
pub struct Step {
    pub expect: &'static str,
    pub send: String,
    pub proves: Option<&'static str>,
}

fn step(expect: &'static str, send: &str, proves: Option<&'static str>) -> Step {
    Step { expect, send: send.to_string(), proves }
}

/// The conversation, in order.
pub fn steps() -> Vec<Step> {
    vec![
        step(PROMPT, "echo hi $((6*7))\n", None),
        step("hi 42\n", "", Some("bash_runs_a_command_typed_on_the_console")),
        step(PROMPT, "tty\n", None),
        step("/dev/console\n", "", Some("tty_names_the_console")),
        step(PROMPT, "echo init $(cut -d' ' -f5,6 /proc/1/stat)\n", None),
        step("init 0 0\n", "", Some("init_starts_in_process_group_0_and_session_0")),
        step(PROMPT, &format!("{JOB}\n"), None),
        // ^Z: the line discipline sends SIGTSTP to the foreground process group.
        step("tz4\n", "\x1a", None),
        step("Stopped", "", None),
        step(PROMPT, "echo st $?\n", None),
        step("st 148\n", "", Some("ctrl_z_stops_the_foreground_job")),
        // fg gives the job the terminal (TIOCSPGRP) before it continues it, so once it
        // says so, ^C reaches it and not bash.
        step(PROMPT, "fg\n", None),
        step("cont10\n", "\x03", Some("fg_continues_a_stopped_job_in_the_foreground")),
        step(PROMPT, "echo st $?\n", None),
        step("st 130\n", "", Some("ctrl_c_interrupts_the_foreground_job")),
        // Files opened through /dev/console are exempt from the read and TOSTOP write
        // checks of job control (Linux's n_tty `job_control`): a background reader is
        // not stopped, so `cat` reads until `timeout` ends it. Nothing is typed meanwhile.
        step(PROMPT, "timeout --foreground 2 cat & wait $!; echo bg $?\n", None),
        step("bg 124\n", "", Some("a_background_read_of_the_console_is_not_stopped")),
        // Changing the modes is not exempt: a background `stty` gets SIGTTOU. bash reports
        // the stop (as `Stopped`, whichever the signal) before its next prompt, once the
        // loop has seen the job stopped.
        step(PROMPT, "stty echo & until grep -q ') T ' /proc/$!/stat; do sleep 0.1; done\n", None),
        step("Stopped", "", None),
        step("stty echo\n", "", Some("a_background_job_setting_the_console_modes_stops_on_sigttou")),
        // The job's status from `wait`, not bash's notice: whether bash prints
        // "Terminated" depends on whether it reaped the job before `wait` ran.
        step(PROMPT, "kill %1; wait %1; echo k $?\n", None),
        step("k 143\n", "", Some("kill_ends_a_stopped_background_job")),
        step(PROMPT, &format!("exit {EXIT_STATUS}\n"), None),
    ]
}

/// The steps as the QEMU runner plays them.
pub fn script(steps: &[Step]) -> Vec<ConsoleStep> {
    steps.iter().map(|s| ConsoleStep::new(s.expect, &s.send)).collect()
}

/// Each named behaviour with its verdict, given how many steps saw their `expect`.
pub fn verdicts(steps: &[Step], steps_done: usize, output: &str) -> Vec<(&'static str, Result<(), String>)> {
    steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let name = s.proves?;
            let r = if i < steps_done {
                Ok(())
            } else {
                let waiting = &steps[steps_done.min(steps.len() - 1)];
                Err(format!(
                    "step {} of {} waited for {:?} until the output ended with {:?}",
                    steps_done + 1,
                    steps.len(),
                    waiting.expect,
                    tail(output, 300)
                ))
            };
            Some((name, r))
        })
        .collect()
}

/// The last `n` bytes of `s` or fewer, cut at a character boundary.
fn tail(s: &str, n: usize) -> &str {
    let mut from = s.len().saturating_sub(n);
    while !s.is_char_boundary(from) {
        from += 1;
    }
    &s[from..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_typed_line_contains_what_a_later_step_waits_for() {
        let steps = steps();
        for (i, s) in steps.iter().enumerate() {
            for later in &steps[i..] {
                assert!(!s.send.contains(later.expect), "{:?} echoes {:?}", s.send, later.expect);
            }
        }
    }

    #[test]
    fn behaviours_pass_only_when_their_step_was_reached() {
        let steps = steps();
        let all = verdicts(&steps, steps.len(), "");
        assert!(all.iter().all(|(_, r)| r.is_ok()));
        let at_ctrl_z = steps.iter().position(|s| s.proves == Some("ctrl_z_stops_the_foreground_job")).unwrap();
        let some = verdicts(&steps, at_ctrl_z, "...ok# ");
        let passed: Vec<_> = some.iter().filter(|(_, r)| r.is_ok()).map(|(n, _)| *n).collect();
        assert_eq!(
            passed,
            [
                "bash_runs_a_command_typed_on_the_console",
                "tty_names_the_console",
                "init_starts_in_process_group_0_and_session_0"
            ]
        );
        let why = some.iter().find(|(n, _)| *n == "ctrl_z_stops_the_foreground_job").unwrap().1.clone().unwrap_err();
        assert!(why.contains("\"st 148\\n\"") && why.contains("ok# "), "{why}");
    }

    #[test]
    fn the_tail_is_cut_at_a_character_boundary() {
        assert_eq!(tail("ab€", 2), "");
        assert_eq!(tail("ab€", 3), "€");
        assert_eq!(tail("ab", 10), "ab");
    }
}
