//! The terminal line discipline (Linux's `drivers/tty/n_tty.c`) without the sleeping: what
//! a byte received from the terminal does to the read buffer, what it echoes and which
//! signal it asks for; what a read takes out; how written bytes are turned into what the
//! terminal is sent. The kernel keeps one [`NTty`] per terminal under its lock, sends the
//! signals an [`Effects`] names to the foreground process group and hands the echo and
//! output bytes to the driver (the serial port, the other side of a pseudo-terminal).
//!
//! As Linux's:
//! - input: ISTRIP, IGNCR/ICRNL/INLCR; with ISIG the INTR, QUIT and SUSP characters ask
//!   for SIGINT, SIGQUIT, SIGTSTP and, without NOFLSH, flush the input and the pending
//!   output; with IXON, STOP and START stop and restart output (IXANY: any character
//!   restarts it);
//! - canonical mode (ICANON): lines end at NL, EOL, EOL2 (IEXTEN) or EOF (not stored: an
//!   EOF on an empty line reads as end of file); ERASE, KILL and, with IEXTEN, WERASE,
//!   LNEXT and REPRINT edit the line; a line longer than the buffer keeps its first 4095
//!   bytes;
//! - echo: ECHO, ECHONL, ECHOCTL (`^C`), ECHOE/ECHOK/ECHOKE erasing (tabs by columns);
//! - output (OPOST): ONLCR, OCRNL, ONOCR, ONLRET, OLCUC and XTABS, with the column kept
//!   for tab and erase arithmetic;
//! - a disabled special character is 0 (`_POSIX_VDISABLE`): a NUL byte is never special.
//!
//! Not modelled: parity and break (no driver here reports them), IUCLC/XCASE, ECHOPRT.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Linux's `N_TTY_BUF_SIZE`: the read buffer's capacity.
pub const N_TTY_BUF_SIZE: usize = 4096;

// c_cc indices (asm-generic/termbits.h).
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;
pub const NCCS: usize = 19;

// c_iflag
pub const IGNBRK: u32 = 0o1;
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IUTF8: u32 = 0o40000;

// c_oflag
pub const OPOST: u32 = 0o1;
pub const OLCUC: u32 = 0o2;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;
pub const TABDLY: u32 = 0o14000;
pub const XTABS: u32 = 0o14000;

// c_cflag
pub const CBAUD: u32 = 0o10017;
pub const B38400: u32 = 0o17;
pub const CS8: u32 = 0o60;
pub const CREAD: u32 = 0o200;
pub const HUPCL: u32 = 0o2000;
pub const CLOCAL: u32 = 0o4000;

// c_lflag
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;

/// Linux's `INIT_C_CC`: ^C ^\ DEL ^U ^D, TIME 0, MIN 1, ^Q ^S ^Z, REPRINT ^R, DISCARD ^O,
/// WERASE ^W, LNEXT ^V.
pub const INIT_C_CC: [u8; NCCS] = [3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0];

/// Linux's `struct termios` (asm-generic/termbits.h), as TCGETS and TCSETS pass it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; NCCS],
}

impl Termios {
    /// Linux's `tty_std_termios`, what a terminal starts with: cooked input with echo and
    /// signals, NL turned into CR NL on output.
    pub const STD: Termios = Termios {
        c_iflag: ICRNL | IXON,
        c_oflag: OPOST | ONLCR,
        c_cflag: B38400 | CS8 | CREAD | HUPCL,
        c_lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
        c_line: 0,
        c_cc: INIT_C_CC,
    };

    fn l(&self, f: u32) -> bool {
        self.c_lflag & f != 0
    }
    fn i(&self, f: u32) -> bool {
        self.c_iflag & f != 0
    }
    fn o(&self, f: u32) -> bool {
        self.c_oflag & f != 0
    }
    /// Whether `c` is the special character at `idx` (a disabled one, 0, never is).
    fn is(&self, c: u8, idx: usize) -> bool {
        self.c_cc[idx] != 0 && self.c_cc[idx] == c
    }
    pub fn icanon(&self) -> bool {
        self.l(ICANON)
    }
    /// VMIN and VTIME (tenths of a second), for a non-canonical read.
    pub fn min_time(&self) -> (u8, u8) {
        (self.c_cc[VMIN], self.c_cc[VTIME])
    }
    pub fn tostop(&self) -> bool {
        self.l(TOSTOP)
    }
}

/// A signal the foreground process group is to get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// VINTR: SIGINT.
    Interrupt,
    /// VQUIT: SIGQUIT.
    Quit,
    /// VSUSP: SIGTSTP.
    Suspend,
}

/// What receiving input asks of the kernel besides the buffer's change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Bytes for the terminal (echo), already output-processed.
    pub echo: Vec<u8>,
    /// Signals for the foreground process group, in order.
    pub signals: Vec<Signal>,
    /// Output not yet sent is to be thrown away (a signal character without NOFLSH).
    pub flush_output: bool,
    /// Some(true): output stops (STOP); Some(false): it restarts (START, or IXANY).
    pub flow: Option<bool>,
}

/// One terminal's line discipline state.
#[derive(Debug)]
pub struct NTty {
    /// Received bytes: the completed lines, then the line being edited (canonical mode);
    /// all of it readable otherwise.
    buf: VecDeque<u8>,
    /// Lengths of the completed lines at the front of `buf` (canonical mode); an EOF line
    /// may be empty.
    lines: VecDeque<usize>,
    /// Bytes of `buf` in `lines` (the start of the line being edited).
    line_start: usize,
    /// The next byte is taken literally (LNEXT).
    lnext: bool,
    /// The output column, for tabs and erasing.
    column: usize,
    /// The column the line being edited started at.
    canon_column: usize,
    /// Whether the buffer holds lines (the mode it was last set for).
    canonical: bool,
}

fn iscntrl(c: u8) -> bool {
    c < 32 || c == 127
}

fn is_continuation(t: &Termios, c: u8) -> bool {
    t.i(IUTF8) && c & 0xc0 == 0x80
}

impl NTty {
    pub fn new(t: &Termios) -> NTty {
        NTty {
            buf: VecDeque::new(),
            lines: VecDeque::new(),
            line_start: 0,
            lnext: false,
            column: 0,
            canon_column: 0,
            canonical: t.icanon(),
        }
    }

    /// `n_tty_set_termios`: a change of ICANON. Turning it on makes what is buffered one
    /// completed line; turning it off makes everything readable.
    pub fn set_termios(&mut self, new: &Termios) {
        if new.icanon() == self.canonical {
            return;
        }
        self.canonical = new.icanon();
        self.lines.clear();
        self.lnext = false;
        if self.canonical && !self.buf.is_empty() {
            self.lines.push_back(self.buf.len());
        }
        self.line_start = if self.canonical { self.buf.len() } else { 0 };
        self.canon_column = self.column;
    }

    /// Bytes a read may take now: None if it must wait; Some(0) is an end of file (an
    /// EOF at the start of a line).
    pub fn readable(&self) -> Option<usize> {
        if self.canonical {
            self.lines.front().copied()
        } else {
            (!self.buf.is_empty()).then_some(self.buf.len())
        }
    }

    /// FIONREAD (`inq_canon`): bytes of the completed lines, or every byte.
    pub fn input_available(&self) -> usize {
        if self.canonical {
            self.line_start
        } else {
            self.buf.len()
        }
    }

    /// How many more bytes the buffer takes before the sender has to wait
    /// (`receive_room`): in canonical mode with no completed line, any number (the
    /// excess is dropped), so that ERASE and NL still get through.
    pub fn receive_room(&self) -> usize {
        if self.canonical && self.lines.is_empty() {
            return usize::MAX;
        }
        N_TTY_BUF_SIZE.saturating_sub(self.buf.len())
    }

    /// Takes what a read gets into `out`: in canonical mode at most the rest of the first
    /// line (an EOF line's end consumed with it), otherwise whatever is there.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = if self.canonical {
            let Some(len) = self.lines.front_mut() else { return 0 };
            let n = (*len).min(out.len());
            *len -= n;
            // A line fully read goes; an EOF line (empty now) too.
            if *len == 0 {
                self.lines.pop_front();
            }
            self.line_start -= n;
            n
        } else {
            out.len().min(self.buf.len())
        };
        for (o, b) in out.iter_mut().zip(self.buf.drain(..n)) {
            *o = b;
        }
        n
    }

    /// Throws the input away (TCIFLUSH, a signal character).
    /// Gives back the input buffers' memory while they hold nothing (the kernel's
    /// shrinkers: a terminal that lives for good, the console, keeps no capacity from
    /// earlier input).
    pub fn shrink(&mut self) {
        if self.buf.is_empty() {
            self.buf = VecDeque::new();
        }
        if self.lines.is_empty() {
            self.lines = VecDeque::new();
        }
    }

    pub fn flush_input(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.line_start = 0;
        self.lnext = false;
        self.canon_column = self.column;
    }

    /// `n_tty_receive_char`: one byte from the terminal.
    pub fn receive_byte(&mut self, t: &Termios, mut c: u8, fx: &mut Effects) {
        if t.i(ISTRIP) {
            c &= 0x7f;
        }
        if self.lnext {
            self.lnext = false;
            self.put_char(t, c, fx);
            return;
        }
        if c == b'\r' {
            if t.i(IGNCR) {
                return;
            }
            if t.i(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(INLCR) {
            c = b'\r';
        }
        if t.i(IXON) {
            if t.is(c, VSTART) {
                fx.flow = Some(false);
                return;
            }
            if t.is(c, VSTOP) {
                fx.flow = Some(true);
                return;
            }
            if t.i(IXANY) {
                fx.flow = Some(false);
            }
        }
        if t.l(ISIG) {
            let sig = if t.is(c, VINTR) {
                Some(Signal::Interrupt)
            } else if t.is(c, VQUIT) {
                Some(Signal::Quit)
            } else if t.is(c, VSUSP) {
                Some(Signal::Suspend)
            } else {
                None
            };
            if let Some(sig) = sig {
                fx.signals.push(sig);
                if !t.l(NOFLSH) {
                    fx.echo.clear();
                    fx.flush_output = true;
                    self.flush_input();
                }
                if t.i(IXON) {
                    fx.flow = Some(false);
                }
                if t.l(ECHO) {
                    self.echo_char(t, c, fx);
                }
                return;
            }
        }
        if !self.canonical {
            if self.buf.len() < N_TTY_BUF_SIZE {
                self.buf.push_back(c);
            }
            if t.l(ECHO) {
                self.echo_char(t, c, fx);
            }
            return;
        }
        if t.is(c, VERASE) || t.is(c, VKILL) || (t.is(c, VWERASE) && t.l(IEXTEN)) {
            self.eraser(t, c, fx);
            return;
        }
        if t.l(IEXTEN) && t.is(c, VLNEXT) {
            self.lnext = true;
            if t.l(ECHO) && t.l(ECHOCTL) {
                self.output(t, b'^', &mut fx.echo);
                self.output(t, b'\x08', &mut fx.echo);
            }
            return;
        }
        if t.l(IEXTEN) && t.l(ECHO) && t.is(c, VREPRINT) {
            self.echo_char(t, c, fx);
            self.output(t, b'\n', &mut fx.echo);
            let line: Vec<u8> = self.buf.range(self.line_start..).copied().collect();
            for b in line {
                self.echo_char(t, b, fx);
            }
            return;
        }
        if t.is(c, VEOF) {
            self.end_line();
            return;
        }
        if c == b'\n' || t.is(c, VEOL) || (t.l(IEXTEN) && t.is(c, VEOL2)) {
            if t.l(ECHO) || (c == b'\n' && t.l(ECHONL)) {
                self.echo_char(t, c, fx);
            }
            if self.buf.len() < N_TTY_BUF_SIZE {
                self.buf.push_back(c);
            }
            self.end_line();
            return;
        }
        self.put_char(t, c, fx);
    }

    /// Stores an ordinary byte, echoing it; in canonical mode the line keeps one byte of
    /// room for its end.
    fn put_char(&mut self, t: &Termios, c: u8, fx: &mut Effects) {
        let limit = if self.canonical { N_TTY_BUF_SIZE - 1 } else { N_TTY_BUF_SIZE };
        if self.buf.len() >= limit {
            return;
        }
        if t.l(ECHO) {
            self.echo_char(t, c, fx);
        }
        self.buf.push_back(c);
    }

    /// The line being edited is complete.
    fn end_line(&mut self) {
        self.lines.push_back(self.buf.len() - self.line_start);
        self.line_start = self.buf.len();
        self.canon_column = self.column;
    }

    /// `echo_char`: a control character other than TAB and NL shows as `^X` with ECHOCTL.
    fn echo_char(&mut self, t: &Termios, c: u8, fx: &mut Effects) {
        if t.l(ECHOCTL) && iscntrl(c) && c != b'\t' && c != b'\n' {
            self.output(t, b'^', &mut fx.echo);
            self.output(t, c ^ 0o100, &mut fx.echo);
        } else {
            self.output(t, c, &mut fx.echo);
        }
    }

    /// `eraser`: ERASE takes the last byte of the line, WERASE the last word, KILL all of
    /// it; with ECHO the terminal is shown the same.
    fn eraser(&mut self, t: &Termios, c: u8, fx: &mut Effects) {
        if self.buf.len() == self.line_start {
            return;
        }
        let erase = t.is(c, VERASE);
        let kill = !erase && t.is(c, VKILL);
        if kill {
            if !t.l(ECHO) {
                self.buf.truncate(self.line_start);
                return;
            }
            if !t.l(ECHOK) || !t.l(ECHOKE) || !t.l(ECHOE) {
                self.buf.truncate(self.line_start);
                self.echo_char(t, c, fx);
                if t.l(ECHOK) {
                    self.output(t, b'\n', &mut fx.echo);
                }
                return;
            }
        }
        let mut seen_alnums = 0;
        while self.buf.len() > self.line_start {
            let last = *self.buf.back().unwrap();
            if !erase && !kill {
                // WERASE: trailing blanks, then the word (letters, digits, '_').
                if last.is_ascii_alphanumeric() || last == b'_' {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            self.buf.pop_back();
            // A UTF-8 character goes whole, continuation bytes first.
            let continuation = is_continuation(t, last);
            if t.l(ECHO) && !continuation {
                if erase && !t.l(ECHOE) {
                    self.echo_char(t, c, fx);
                } else if last == b'\t' {
                    self.erase_tab(t, fx);
                } else {
                    let cntrl = iscntrl(last);
                    let times = if cntrl && t.l(ECHOCTL) {
                        2
                    } else if cntrl {
                        0
                    } else {
                        1
                    };
                    for _ in 0..times {
                        for b in *b"\x08 \x08" {
                            self.output(t, b, &mut fx.echo);
                        }
                    }
                }
            }
            if erase && !continuation {
                break;
            }
        }
    }

    /// `echo_erase_tab`: back over the columns the erased tab took, found by walking the
    /// line from where it started.
    fn erase_tab(&mut self, t: &Termios, fx: &mut Effects) {
        let mut col = self.canon_column;
        for &b in self.buf.range(self.line_start..) {
            if b == b'\t' {
                col = (col | 7) + 1;
            } else if iscntrl(b) {
                if t.l(ECHOCTL) {
                    col += 2;
                }
            } else if !is_continuation(t, b) {
                col += 1;
            }
        }
        let back = (col | 7) + 1 - col;
        for _ in 0..back {
            self.output(t, b'\x08', &mut fx.echo);
        }
    }

    /// `process_output`: bytes written to the terminal, as it is to be sent them.
    pub fn process_output(&mut self, t: &Termios, data: &[u8], out: &mut Vec<u8>) {
        for &c in data {
            self.output(t, c, out);
        }
    }

    /// `do_output_char`: one byte through OPOST's processing, keeping the column.
    fn output(&mut self, t: &Termios, c: u8, out: &mut Vec<u8>) {
        if !t.o(OPOST) {
            out.push(c);
            return;
        }
        match c {
            b'\n' => {
                if t.o(ONLRET) {
                    self.column = 0;
                }
                if t.o(ONLCR) {
                    self.column = 0;
                    out.extend_from_slice(b"\r\n");
                    return;
                }
                self.canon_column = self.column;
            }
            b'\r' => {
                if t.o(ONOCR) && self.column == 0 {
                    return;
                }
                if t.o(OCRNL) {
                    if t.o(ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                    out.push(b'\n');
                    return;
                }
                self.column = 0;
                self.canon_column = 0;
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                if t.c_oflag & TABDLY == XTABS {
                    self.column += spaces;
                    out.extend(core::iter::repeat_n(b' ', spaces));
                    return;
                }
                self.column += spaces;
            }
            b'\x08' => {
                self.column = self.column.saturating_sub(1);
            }
            _ if !iscntrl(c) => {
                if !is_continuation(t, c) {
                    self.column += 1;
                }
                if t.o(OLCUC) {
                    out.push(c.to_ascii_uppercase());
                    return;
                }
            }
            _ => {}
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(n: &mut NTty, t: &Termios, input: &[u8]) -> Effects {
        let mut fx = Effects::default();
        for &c in input {
            n.receive_byte(t, c, &mut fx);
        }
        fx
    }

    fn read_all(n: &mut NTty, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        let got = n.read(&mut out);
        out.truncate(got);
        out
    }

    fn raw() -> Termios {
        let mut t = Termios::STD;
        t.c_lflag &= !(ICANON | ECHO | ISIG);
        t
    }

    #[test]
    fn shrink_gives_back_the_buffers_of_lines_read() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"one\n");
        assert!(n.buf.capacity() > 0 && n.lines.capacity() > 0);
        n.shrink();
        assert!(n.buf.capacity() > 0, "a line not yet read keeps its bytes");
        assert_eq!(read_all(&mut n, 100), b"one\n");
        n.shrink();
        assert_eq!((n.buf.capacity(), n.lines.capacity()), (0, 0));
    }

    #[test]
    fn canonical_line_waits_for_newline() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"abc");
        assert_eq!(n.readable(), None);
        feed(&mut n, &t, b"\r");
        assert_eq!(n.readable(), Some(4));
        assert_eq!(read_all(&mut n, 100), b"abc\n");
        assert_eq!(n.readable(), None);
    }

    #[test]
    fn canonical_read_returns_one_line_at_a_time() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"one\ntwo\n");
        assert_eq!(read_all(&mut n, 100), b"one\n");
        assert_eq!(read_all(&mut n, 100), b"two\n");
    }

    #[test]
    fn short_read_leaves_the_rest_of_the_line() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"abcdef\n");
        assert_eq!(read_all(&mut n, 2), b"ab");
        assert_eq!(n.input_available(), 5);
        assert_eq!(read_all(&mut n, 100), b"cdef\n");
    }

    #[test]
    fn eof_on_empty_line_reads_as_end_of_file() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"\x04");
        assert_eq!(n.readable(), Some(0));
        assert_eq!(read_all(&mut n, 10), b"");
        assert_eq!(n.readable(), None);
    }

    #[test]
    fn eof_after_text_ends_the_line_without_a_newline() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"ab\x04");
        assert_eq!(fx.echo, b"ab");
        assert_eq!(read_all(&mut n, 10), b"ab");
        assert_eq!(n.readable(), None);
    }

    #[test]
    fn erase_removes_last_byte_and_echoes_backspace_space_backspace() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"ab\x7fc\n");
        assert_eq!(fx.echo, b"ab\x08 \x08c\r\n");
        assert_eq!(read_all(&mut n, 10), b"ac\n");
    }

    #[test]
    fn erase_of_a_control_character_backs_over_both_columns() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"\x01\x7f");
        assert_eq!(fx.echo, b"^A\x08 \x08\x08 \x08");
    }

    #[test]
    fn erase_of_a_tab_backs_to_the_column_before_it() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"abc\t\x7f");
        assert_eq!(fx.echo, b"abc\t\x08\x08\x08\x08\x08");
    }

    #[test]
    fn erase_does_not_cross_into_a_completed_line() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"x\n\x7f\x7f");
        assert_eq!(read_all(&mut n, 10), b"x\n");
    }

    #[test]
    fn kill_erases_the_whole_line_visually_with_echoke() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"ab\x15z\n");
        assert_eq!(fx.echo, b"ab\x08 \x08\x08 \x08z\r\n");
        assert_eq!(read_all(&mut n, 10), b"z\n");
    }

    #[test]
    fn kill_without_echoke_echoes_the_character_and_a_newline() {
        let mut t = Termios::STD;
        t.c_lflag &= !ECHOKE;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"ab\x15");
        assert_eq!(fx.echo, b"ab^U\r\n");
    }

    #[test]
    fn werase_removes_the_last_word_and_its_trailing_blanks() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"one two  \x17x\n");
        assert_eq!(read_all(&mut n, 20), b"one x\n");
    }

    #[test]
    fn lnext_takes_the_next_character_literally() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"\x16\x03\n");
        assert!(fx.signals.is_empty());
        assert_eq!(read_all(&mut n, 10), b"\x03\n");
    }

    #[test]
    fn intr_asks_for_sigint_flushes_and_echoes_caret() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"partial\x03");
        assert_eq!(fx.signals, vec![Signal::Interrupt]);
        assert!(fx.flush_output);
        assert_eq!(fx.echo, b"^C");
        assert_eq!(n.input_available(), 0);
        feed(&mut n, &t, b"\n");
        assert_eq!(read_all(&mut n, 10), b"\n");
    }

    #[test]
    fn noflsh_keeps_the_input_on_a_signal() {
        let mut t = Termios::STD;
        t.c_lflag |= NOFLSH;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"ab\x1a\n");
        assert_eq!(fx.signals, vec![Signal::Suspend]);
        assert!(!fx.flush_output);
        assert_eq!(read_all(&mut n, 10), b"ab\n");
    }

    #[test]
    fn quit_and_susp_ask_for_their_signals() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        assert_eq!(feed(&mut n, &t, b"\x1c").signals, vec![Signal::Quit]);
        assert_eq!(feed(&mut n, &t, b"\x1a").signals, vec![Signal::Suspend]);
    }

    #[test]
    fn without_isig_the_intr_character_is_data() {
        let mut t = Termios::STD;
        t.c_lflag &= !ISIG;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"\x03\n");
        assert!(fx.signals.is_empty());
        assert_eq!(read_all(&mut n, 10), b"\x03\n");
    }

    #[test]
    fn disabled_special_character_leaves_nul_as_data() {
        let mut t = Termios::STD;
        t.c_cc[VINTR] = 0;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"\0\n");
        assert!(fx.signals.is_empty());
        assert_eq!(read_all(&mut n, 10), b"\0\n");
    }

    #[test]
    fn raw_mode_makes_every_byte_readable_at_once() {
        let t = raw();
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"a\x03\x7f\r");
        assert!(fx.echo.is_empty());
        assert_eq!(read_all(&mut n, 10), b"a\x03\x7f\n");
    }

    #[test]
    fn igncr_drops_carriage_returns() {
        let mut t = raw();
        t.c_iflag |= IGNCR;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"a\rb");
        assert_eq!(read_all(&mut n, 10), b"ab");
    }

    #[test]
    fn inlcr_turns_newline_into_carriage_return() {
        let mut t = raw();
        t.c_iflag = INLCR;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"\n");
        assert_eq!(read_all(&mut n, 10), b"\r");
    }

    #[test]
    fn istrip_clears_the_eighth_bit() {
        let mut t = raw();
        t.c_iflag |= ISTRIP;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, &[0xe1]);
        assert_eq!(read_all(&mut n, 10), b"a");
    }

    #[test]
    fn echonl_echoes_newline_without_echo() {
        let mut t = Termios::STD;
        t.c_lflag = (t.c_lflag & !ECHO) | ECHONL;
        let mut n = NTty::new(&t);
        let fx = feed(&mut n, &t, b"secret\n");
        assert_eq!(fx.echo, b"\r\n");
    }

    #[test]
    fn stop_and_start_characters_control_flow_and_are_not_stored() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        assert_eq!(feed(&mut n, &t, b"\x13").flow, Some(true));
        assert_eq!(feed(&mut n, &t, b"\x11").flow, Some(false));
        feed(&mut n, &t, b"\n");
        assert_eq!(read_all(&mut n, 10), b"\n");
    }

    #[test]
    fn switching_to_canonical_makes_buffered_bytes_a_line() {
        let t = raw();
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"xy");
        n.set_termios(&Termios::STD);
        assert_eq!(n.readable(), Some(2));
        assert_eq!(read_all(&mut n, 10), b"xy");
    }

    #[test]
    fn switching_to_raw_makes_the_partial_line_readable() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        feed(&mut n, &t, b"done\npart");
        n.set_termios(&raw());
        assert_eq!(n.readable(), Some(9));
    }

    #[test]
    fn overlong_canonical_line_keeps_room_for_its_end() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let long = vec![b'a'; N_TTY_BUF_SIZE + 100];
        feed(&mut n, &t, &long);
        feed(&mut n, &t, b"\n");
        let line = read_all(&mut n, 2 * N_TTY_BUF_SIZE);
        assert_eq!(line.len(), N_TTY_BUF_SIZE);
        assert_eq!(line.last(), Some(&b'\n'));
    }

    #[test]
    fn receive_room_is_unbounded_only_while_no_line_is_complete() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        assert_eq!(n.receive_room(), usize::MAX);
        feed(&mut n, &t, b"a\n");
        assert_eq!(n.receive_room(), N_TTY_BUF_SIZE - 2);
    }

    #[test]
    fn onlcr_writes_newline_as_cr_nl() {
        let t = Termios::STD;
        let mut n = NTty::new(&t);
        let mut out = Vec::new();
        n.process_output(&t, b"a\nb", &mut out);
        assert_eq!(out, b"a\r\nb");
    }

    #[test]
    fn without_opost_output_is_unchanged() {
        let mut t = Termios::STD;
        t.c_oflag &= !OPOST;
        let mut n = NTty::new(&t);
        let mut out = Vec::new();
        n.process_output(&t, b"a\n\t", &mut out);
        assert_eq!(out, b"a\n\t");
    }

    #[test]
    fn xtabs_expands_tabs_to_the_next_stop() {
        let mut t = Termios::STD;
        t.c_oflag |= XTABS;
        let mut n = NTty::new(&t);
        let mut out = Vec::new();
        n.process_output(&t, b"ab\tc", &mut out);
        assert_eq!(out, b"ab      c");
    }

    #[test]
    fn ocrnl_and_onocr_handle_carriage_returns() {
        let mut t = Termios::STD;
        t.c_oflag |= OCRNL;
        let mut n = NTty::new(&t);
        let mut out = Vec::new();
        n.process_output(&t, b"\r", &mut out);
        assert_eq!(out, b"\n");
        let mut t = Termios::STD;
        t.c_oflag |= ONOCR;
        let mut out = Vec::new();
        n.process_output(&t, b"\rx\r", &mut out);
        assert_eq!(out, b"x\r");
    }
}
