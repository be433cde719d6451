//! Terminals: Linux's drivers/tty/tty_io.c (open, read, write, poll, release, hangup),
//! tty_ioctl.c (termios), tty_jobctrl.c (controlling terminals, the foreground process
//! group, SIGTTIN/SIGTTOU) around the line discipline of the `n_tty` crate.
//!
//! A [`Tty`] is one terminal: the serial console, or a pseudo-terminal pair (`pty.rs`),
//! whose slave side is the terminal programs see and whose master side a terminal
//! emulator (or a test) drives. Each open file of one is a [`TtyFile`]. A process's
//! controlling terminal is `Process::tty`, shared by its session; the terminal keeps the
//! session and the foreground process group by id.
//!
//! The console's input has no interrupt: the timer tick notes that the UART holds bytes
//! (`note_console_input`) and the next return to user mode or idle CPU feeds them to the
//! line discipline (`receive_console_input`), as Linux's flip-buffer work does in process
//! context; so ^C reaches a program that never reads.
//!
//! Locks: `Process::tty` (ProcessTty), then `Tty::inner` (TtyState); signals are sent and
//! queues woken after both are dropped.

pub mod pty;

use crate::errno::*;
use crate::fs::vfs::{Metadata, POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::process::task::{Process, Tid};
use crate::process::wait_queue::WaitQueue;
use crate::sync::order;
use crate::sync::SpinLock as Mutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
pub use n_tty::Termios;
use n_tty::{Effects, NTty, Signal};

const TCGETS: u32 = 0x5401;
const TCSETS: u32 = 0x5402;
const TCSETSW: u32 = 0x5403;
const TCSETSF: u32 = 0x5404;
const TCSBRK: u32 = 0x5409;
const TCXONC: u32 = 0x540a;
const TCFLSH: u32 = 0x540b;
const TIOCEXCL: u32 = 0x540c;
const TIOCNXCL: u32 = 0x540d;
const TIOCSCTTY: u32 = 0x540e;
const TIOCGPGRP: u32 = 0x540f;
const TIOCSPGRP: u32 = 0x5410;
const TIOCOUTQ: u32 = 0x5411;
const TIOCGWINSZ: u32 = 0x5413;
const TIOCSWINSZ: u32 = 0x5414;
const FIONREAD: u32 = 0x541b;
const TIOCNOTTY: u32 = 0x5422;
const TIOCGSID: u32 = 0x5429;
const TCGETS2: u32 = 0x802c_542a;
const TCSETS2: u32 = 0x402c_542b;
const TCSETSW2: u32 = 0x402c_542c;
const TCSETSF2: u32 = 0x402c_542d;
const TIOCGPTN: u32 = 0x8004_5430;
const TIOCSPTLCK: u32 = 0x4004_5431;
const TIOCGPTLCK: u32 = 0x8004_5439;
const TIOCGPTPEER: u32 = 0x5441;

// TCFLSH and TCXONC arguments.
const TCIFLUSH: u64 = 0;
const TCOFLUSH: u64 = 1;
const TCIOFLUSH: u64 = 2;
const TCOOFF: u64 = 0;
const TCOON: u64 = 1;
const TCIOFF: u64 = 2;
const TCION: u64 = 3;

/// Bytes a pty's slave may have written before the master reads them (Linux's flip
/// buffers hold more; a writer waits beyond this).
const PTY_OUT_MAX: usize = 65536;

/// Linux's `struct winsize`.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}
crate::impl_pod!(Winsize);

/// `struct termios` as it crosses the user boundary.
#[repr(C)]
#[derive(Clone, Copy)]
struct UTermios(Termios);
const _: () = assert!(core::mem::size_of::<UTermios>() == 36);
crate::impl_pod!(UTermios);

/// `struct termios2` (TCGETS2): the termios and the two speeds.
#[repr(C)]
#[derive(Clone, Copy)]
struct UTermios2 {
    t: Termios,
    ispeed: u32,
    ospeed: u32,
}
const _: () = assert!(core::mem::size_of::<UTermios2>() == 44);
crate::impl_pod!(UTermios2);

/// The speed a CBAUD code stands for (`tty_termios_baud_rate`); BOTHER (0o10000) keeps
/// the speed given with it.
fn baud(cflag: u32) -> Option<u32> {
    const RATES: [u32; 16] = [0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400];
    const HIGH: [u32; 15] = [
        0, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000,
        3500000,
    ];
    let code = cflag & n_tty::CBAUD;
    if code & 0o10000 == 0 {
        return Some(RATES[code as usize]);
    }
    HIGH.get((code & 0o17) as usize).copied().filter(|&r| r != 0)
}

/// Which terminal a `Tty` is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Driver {
    /// The serial port (COM1): output written at once, input polled.
    Console,
    /// A pseudo-terminal pair.
    Pty,
}

/// A terminal's state, under `Tty::inner`.
pub struct TtyInner {
    termios: Termios,
    ispeed: u32,
    ospeed: u32,
    ldisc: NTty,
    winsize: Winsize,
    /// The foreground process group and the session it controls (0: none).
    pgrp: Tid,
    session: Tid,
    /// Output stopped by STOP or TCOOFF.
    stopped: bool,
    /// TIOCEXCL: further opens need CAP_SYS_ADMIN.
    exclusive: bool,
    /// Open files of the terminal side (console or slave), /dev/tty's included.
    opens: usize,
    /// A pty's master side: what the slave wrote and the master has not read, whether
    /// the slave is still locked (TIOCSPTLCK), whether every slave file has closed since
    /// one was open (a master read then fails with EIO), and whether the master is still
    /// open. The master has no termios of its own here: TCGETS and TCSETS through it act
    /// on the slave's, as Linux's `tty_mode_ioctl` does.
    to_master: VecDeque<u8>,
    locked: bool,
    slave_closed: bool,
    master_open: bool,
}

/// One terminal.
pub struct Tty {
    pub driver: Driver,
    /// The pty's number (N of /dev/pts/N); 0 for the console.
    pub index: u32,
    pub inner: Mutex<TtyInner, order::TtyState>,
    /// Woken when the terminal side may read or write.
    wait: WaitQueue,
    /// Woken when a pty's master may read or write.
    master_wait: WaitQueue,
    /// Hangups so far: an open file from before the last one is hung up.
    hangups: AtomicU64,
    _live: crate::leak::Live,
}

impl Tty {
    pub fn new(driver: Driver, index: u32, termios: Termios) -> Tty {
        let (ispeed, ospeed) = (baud(termios.c_cflag).unwrap_or(0), baud(termios.c_cflag).unwrap_or(0));
        Tty {
            driver,
            index,
            inner: Mutex::new(TtyInner {
                termios,
                ispeed,
                ospeed,
                ldisc: NTty::new(&termios),
                winsize: Winsize::default(),
                pgrp: 0,
                session: 0,
                stopped: false,
                exclusive: false,
                opens: 0,
                to_master: VecDeque::new(),
                locked: driver == Driver::Pty,
                slave_closed: false,
                master_open: driver == Driver::Pty,
            }),
            wait: WaitQueue::new(),
            master_wait: WaitQueue::new(),
            hangups: AtomicU64::new(0),
            _live: crate::leak::TTYS.live(),
        }
    }

    /// The device number of the terminal side: ttyS0 (4:64) or /dev/pts/N (136:N).
    pub fn device(&self) -> (u32, u32) {
        match self.driver {
            Driver::Console => (4, 64),
            Driver::Pty => (136, self.index),
        }
    }

    /// `/proc/PID/stat`'s tty_nr (`new_encode_dev`).
    pub fn tty_nr(&self) -> u32 {
        let (major, minor) = self.device();
        (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
    }

    /// The foreground process group (0: none), for /proc/PID/stat's tpgid.
    pub fn foreground(&self) -> Tid {
        self.inner.lock().pgrp
    }

    fn wake(&self) {
        self.wait.wake_all();
        self.master_wait.wake_all();
    }

    /// Sends `data` to the terminal (after output processing): the serial port, or the
    /// master's buffer. The caller has checked the room.
    fn send(&self, inner: &mut TtyInner, data: &[u8]) {
        match self.driver {
            Driver::Console => crate::arch::serial::write_bytes(data),
            Driver::Pty => inner.to_master.extend(data),
        }
    }

    /// Bytes received from the terminal (the console's port, the master's writes) through
    /// the line discipline: `n_tty_receive_buf`. Returns how many it took and the signals
    /// for the foreground group; a receiver with no room takes fewer.
    fn receive(&self, inner: &mut TtyInner, data: &[u8]) -> (usize, Vec<Signal>, Tid) {
        let mut fx = Effects::default();
        let mut taken = 0;
        let termios = inner.termios;
        for &c in data {
            if inner.ldisc.receive_room() == 0 {
                break;
            }
            inner.ldisc.receive_byte(&termios, c, &mut fx);
            taken += 1;
        }
        if fx.flush_output {
            inner.to_master.clear();
        }
        match fx.flow {
            Some(true) => inner.stopped = true,
            Some(false) => inner.stopped = false,
            None => {}
        }
        let echo = core::mem::take(&mut fx.echo);
        self.send(inner, &echo);
        (taken, fx.signals, inner.pgrp)
    }
}

fn signal_number(s: Signal) -> u32 {
    use crate::process::signal::{SIGINT, SIGQUIT, SIGTSTP};
    match s {
        Signal::Interrupt => SIGINT,
        Signal::Quit => SIGQUIT,
        Signal::Suspend => SIGTSTP,
    }
}

/// `__isig`: the line discipline's signals go to the foreground group.
fn send_signals(signals: Vec<Signal>, pgrp: Tid) {
    if pgrp == 0 {
        return;
    }
    for s in signals {
        crate::process::signal::kill_pgrp(pgrp, signal_number(s));
    }
}

// ---- the console ---------------------------------------------------------------------

/// The console's terminal (ttyS0), made at first use.
pub fn console() -> &'static Arc<Tty> {
    static CONSOLE: spin::Once<Arc<Tty>> = spin::Once::new();
    CONSOLE.call_once(|| {
        let mut t = Termios::STD;
        t.c_cflag |= n_tty::CLOCAL;
        Arc::new(Tty::new(Driver::Console, 0, t))
    })
}

/// Gives back the capacity the console's wait queues, its line discipline's buffers and
/// the pty table grew to (`leak`'s shrinkers).
pub fn shrink() {
    console().wait.shrink();
    console().master_wait.shrink();
    console().inner.lock().ldisc.shrink();
    pty::shrink();
}

/// Set by the tick when the UART holds input nobody has taken.
static CONSOLE_INPUT: AtomicBool = AtomicBool::new(false);

/// From the timer tick (CPU 0): whether the console has input to feed.
pub fn note_console_input() {
    if crate::arch::serial::has_input() {
        CONSOLE_INPUT.store(true, Ordering::Relaxed);
    }
}

/// Feeds the bytes the UART holds to the console's line discipline, where the tick saw
/// some (on the way to user mode, from the idle loop).
pub fn receive_console_input() {
    if CONSOLE_INPUT.load(Ordering::Relaxed) && CONSOLE_INPUT.swap(false, Ordering::Relaxed) {
        drain_console();
    }
}

fn drain_console() {
    let tty = console();
    let (signals, pgrp) = {
        let mut inner = tty.inner.lock();
        let mut signals = Vec::new();
        let mut pgrp = 0;
        while inner.ldisc.receive_room() > 0 {
            let Some(b) = crate::arch::serial::try_read_byte() else { break };
            let (_, s, p) = tty.receive(&mut inner, &[b]);
            signals.extend(s);
            pgrp = p;
        }
        (signals, pgrp)
    };
    tty.wake();
    send_signals(signals, pgrp);
}

// ---- open files ----------------------------------------------------------------------

/// An open file of a terminal (Linux's `tty_file_private`): the terminal side, or a pty's
/// master.
pub struct TtyFile {
    pub tty: Arc<Tty>,
    pub master: bool,
    /// Opened through /dev/console: never hung up, never stopped for job control
    /// (`redirected_tty_write`).
    pub console_redirect: bool,
    /// The device node it was opened through, for stat.
    pub node: Arc<dyn crate::fs::vfs::Inode>,
    /// `Tty::hangups` at its open.
    hangups: u64,
    /// Opened for reading: TIOCSCTTY needs it of a caller without CAP_SYS_ADMIN.
    readable: bool,
}

impl TtyFile {
    /// `tty_open`: counts the open and, unless `noctty`, makes the terminal the
    /// controlling terminal of a session leader that has none (`tty_open_proc_set_tty`).
    pub fn open(
        tty: Arc<Tty>,
        master: bool,
        node: Arc<dyn crate::fs::vfs::Inode>,
        flags: u32,
        console_redirect: bool,
    ) -> KResult<TtyFile> {
        {
            let mut inner = tty.inner.lock();
            if !master {
                if tty.driver == Driver::Pty && (inner.locked || !inner.master_open) {
                    return Err(EIO);
                }
                if inner.exclusive && !capable_sys_admin() {
                    return Err(EBUSY);
                }
                inner.opens += 1;
                inner.slave_closed = false;
            }
        }
        let readable = crate::fs::file::fmode_read(flags);
        let file =
            TtyFile { hangups: tty.hangups.load(Ordering::Relaxed), tty, master, console_redirect, node, readable };
        let noctty = flags & crate::fs::file::O_NOCTTY != 0 || console_redirect || master;
        if !noctty {
            let p = crate::process::current().process.clone();
            proc_set_tty_if_unset(&p, &file.tty, readable);
        }
        Ok(file)
    }

    fn hung_up(&self) -> bool {
        !self.console_redirect && self.tty.hangups.load(Ordering::Relaxed) != self.hangups
    }

    pub fn metadata(&self) -> Metadata {
        self.node.metadata()
    }

    /// `tty_read`: the master's reads take what the slave wrote; the terminal side's go
    /// through the line discipline, after the job-control check.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if self.hung_up() {
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let tty = &self.tty;
        if self.master {
            let n = tty.master_wait.wait_until(true, || {
                let mut inner = tty.inner.lock();
                if !inner.to_master.is_empty() {
                    let n = buf.len().min(inner.to_master.len());
                    for (o, b) in buf.iter_mut().zip(inner.to_master.drain(..n)) {
                        *o = b;
                    }
                    return Some(Ok(n));
                }
                if inner.slave_closed {
                    return Some(Err(EIO));
                }
                nonblock.then_some(Err(EAGAIN))
            })??;
            tty.wake();
            return Ok(n);
        }
        if !self.console_redirect {
            tty_check_change(tty, crate::process::signal::SIGTTIN)?;
        }
        // `n_tty_read`'s bounds: a canonical read returns a line; a non-canonical one
        // waits for VMIN bytes, VTIME then being the gap allowed between them; VMIN 0
        // makes VTIME the wait for the first byte (none at all with VTIME 0).
        let termios = tty.inner.lock().termios;
        let (vmin, vtime) = termios.min_time();
        let vtime_ns = u64::from(vtime) * 100_000_000;
        let (minimum, mut timeout) = if termios.icanon() {
            (0, None)
        } else if vmin > 0 {
            (usize::from(vmin), None)
        } else {
            (1, Some(vtime_ns))
        };
        let mut got = 0;
        loop {
            let deadline = timeout.map(|t| crate::time::monotonic_ns() + t);
            let immediate = timeout == Some(0);
            let r = tty.wait.wait_until_deadline(true, deadline, || {
                if tty.driver == Driver::Console && crate::arch::serial::has_input() {
                    drain_console();
                }
                let mut inner = tty.inner.lock();
                if inner.ldisc.readable().is_some() {
                    return Some(Ok(inner.ldisc.read(&mut buf[got..])));
                }
                if self.hung_up() || (tty.driver == Driver::Pty && !inner.master_open) {
                    return Some(Ok(0));
                }
                if immediate {
                    return Some(Err(ETIMEDOUT));
                }
                nonblock.then_some(Err(EAGAIN))
            });
            match r.and_then(|r| r) {
                Ok(n) => {
                    got += n;
                    tty.wake();
                    if termios.icanon() || n == 0 || got >= minimum || got == buf.len() {
                        break;
                    }
                    if vtime > 0 && vmin > 0 {
                        timeout = Some(vtime_ns);
                    }
                }
                Err(ETIMEDOUT) => break,
                // What was read wins over the error that ended the wait.
                Err(_) if got > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// `tty_write`: the master's writes are the slave's input; the terminal side's are
    /// output-processed for the terminal, after the TOSTOP check.
    pub fn write(&self, data: &[u8], nonblock: bool) -> KResult<usize> {
        if self.hung_up() {
            return Err(EIO);
        }
        let tty = &self.tty;
        if self.master {
            let mut written = 0;
            while written < data.len() {
                let r = tty.master_wait.wait_until(true, || {
                    let mut inner = tty.inner.lock();
                    if inner.ldisc.receive_room() == 0 {
                        return nonblock.then_some(Err(EAGAIN));
                    }
                    Some(Ok(tty.receive(&mut inner, &data[written..])))
                });
                match r {
                    Ok(Ok((n, signals, pgrp))) => {
                        written += n;
                        tty.wake();
                        send_signals(signals, pgrp);
                    }
                    Ok(Err(e)) | Err(e) => return if written > 0 { Ok(written) } else { Err(e) },
                }
            }
            return Ok(written);
        }
        if !self.console_redirect && tty.inner.lock().termios.tostop() {
            tty_check_change(tty, crate::process::signal::SIGTTOU)?;
        }
        let mut written = 0;
        while written < data.len() {
            let r = tty.wait.wait_until(true, || {
                let mut inner = tty.inner.lock();
                if tty.driver == Driver::Pty && !inner.master_open {
                    return Some(Err(EIO));
                }
                let room = match tty.driver {
                    Driver::Console => usize::MAX,
                    Driver::Pty => PTY_OUT_MAX.saturating_sub(inner.to_master.len()),
                };
                if inner.stopped || room < 2 {
                    return nonblock.then_some(Err(EAGAIN));
                }
                // Each input byte may become two (ONLCR): take what surely fits.
                let n = (room / 2).min(data.len() - written).min(4096);
                let termios = inner.termios;
                let mut out = Vec::new();
                inner.ldisc.process_output(&termios, &data[written..written + n], &mut out);
                tty.send(&mut inner, &out);
                Some(Ok(n))
            });
            match r {
                Ok(Ok(n)) => {
                    written += n;
                    tty.wake();
                }
                Ok(Err(e)) | Err(e) => return if written > 0 { Ok(written) } else { Err(e) },
            }
        }
        Ok(written)
    }

    /// `tty_poll` with `n_tty_poll`.
    pub fn poll(&self) -> u16 {
        if self.hung_up() {
            return POLLIN | POLLOUT | POLLERR | POLLHUP;
        }
        if self.tty.driver == Driver::Console && crate::arch::serial::has_input() {
            drain_console();
        }
        let inner = self.tty.inner.lock();
        if self.master {
            let mut mask = if inner.to_master.is_empty() { 0 } else { POLLIN };
            if inner.slave_closed {
                mask |= POLLHUP;
            }
            if inner.ldisc.receive_room() > 0 {
                mask |= POLLOUT;
            }
            return mask;
        }
        let mut mask = if inner.ldisc.readable().is_some() { POLLIN } else { 0 };
        if self.tty.driver == Driver::Pty && !inner.master_open {
            mask |= POLLHUP;
        }
        let room = self.tty.driver == Driver::Console || inner.to_master.len() < PTY_OUT_MAX;
        if room && !inner.stopped {
            mask |= POLLOUT;
        }
        mask
    }

    pub fn wait_queue(&self) -> &WaitQueue {
        if self.master {
            &self.tty.master_wait
        } else {
            &self.tty.wait
        }
    }

    /// `tty_ioctl`: the job-control calls and the window size act on the slave even
    /// through the master (`real_tty`).
    pub fn ioctl(&self, cmd: u32, arg: u64) -> KResult<usize> {
        use crate::mm::usercopy::{read_val, write_val};
        if self.hung_up() && !matches!(cmd, TIOCSPGRP | TIOCGPGRP | TIOCGSID | TIOCNOTTY) {
            return Err(EIO);
        }
        let tty = &self.tty;
        let mm = crate::process::current_mm();
        match cmd {
            TCGETS | TCGETS2 => {
                let inner = tty.inner.lock();
                let t = inner.termios;
                let (ispeed, ospeed) = (inner.ispeed, inner.ospeed);
                drop(inner);
                if cmd == TCGETS {
                    write_val(&mm, arg, &UTermios(t))?;
                } else {
                    write_val(&mm, arg, &UTermios2 { t, ispeed, ospeed })?;
                }
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
                tty_check_change(tty, crate::process::signal::SIGTTOU)?;
                let (t, speeds) = if matches!(cmd, TCSETS | TCSETSW | TCSETSF) {
                    (read_val::<UTermios>(&mm, arg)?.0, None)
                } else {
                    let t2 = read_val::<UTermios2>(&mm, arg)?;
                    (t2.t, Some((t2.ispeed, t2.ospeed)))
                };
                let mut inner = tty.inner.lock();
                if cmd == TCSETSF || cmd == TCSETSF2 {
                    inner.ldisc.flush_input();
                }
                inner.termios = t;
                inner.ldisc.set_termios(&t);
                // `tty_termios_encode_baud_rate`: a CBAUD code sets both speeds, BOTHER
                // takes the ones given.
                let (i, o) = match speeds {
                    Some(s) if t.c_cflag & n_tty::CBAUD == 0o10000 => s,
                    _ => {
                        let b = baud(t.c_cflag).unwrap_or(inner.ospeed);
                        (b, b)
                    }
                };
                inner.ispeed = i;
                inner.ospeed = o;
                // Output stopped by STOP restarts once IXON is off (`n_tty_set_termios`).
                if t.c_iflag & n_tty::IXON == 0 {
                    inner.stopped = false;
                }
                drop(inner);
                tty.wake();
                Ok(0)
            }
            TCSBRK => Ok(0),
            TCXONC => {
                tty_check_change(tty, crate::process::signal::SIGTTOU)?;
                let mut inner = tty.inner.lock();
                match arg {
                    TCOOFF => inner.stopped = true,
                    TCOON => inner.stopped = false,
                    TCIOFF | TCION => {
                        // Send STOP or START to the terminal.
                        let c = inner.termios.c_cc[if arg == TCIOFF { n_tty::VSTOP } else { n_tty::VSTART }];
                        if c != 0 {
                            tty.send(&mut inner, &[c]);
                        }
                    }
                    _ => return Err(EINVAL),
                }
                drop(inner);
                tty.wake();
                Ok(0)
            }
            TCFLSH => {
                tty_check_change(tty, crate::process::signal::SIGTTOU)?;
                let mut inner = tty.inner.lock();
                // Through the master, input and output are the other way round.
                let (input, output) = match arg {
                    TCIFLUSH => (true, false),
                    TCOFLUSH => (false, true),
                    TCIOFLUSH => (true, true),
                    _ => return Err(EINVAL),
                };
                let (slave_in, master_in) = if self.master { (output, input) } else { (input, output) };
                if slave_in {
                    inner.ldisc.flush_input();
                }
                if master_in {
                    inner.to_master.clear();
                }
                drop(inner);
                tty.wake();
                Ok(0)
            }
            TIOCEXCL | TIOCNXCL => {
                tty.inner.lock().exclusive = cmd == TIOCEXCL;
                Ok(0)
            }
            TIOCSCTTY => tiocsctty(tty, self.readable, arg),
            TIOCNOTTY if self.master => Err(ENOTTY),
            TIOCNOTTY => tiocnotty(tty),
            TIOCGPGRP => {
                let pgrp = tiocgpgrp(tty, self.master)?;
                write_val(&mm, arg, &(pgrp as i32))?;
                Ok(0)
            }
            TIOCSPGRP => tiocspgrp(tty, read_val::<i32>(&mm, arg)),
            TIOCGSID => {
                let sid = tiocgsid(tty, self.master)?;
                write_val(&mm, arg, &(sid as i32))?;
                Ok(0)
            }
            // Nothing waits in a driver: the console writes at once, a pty's output is
            // the master's input (Linux's pty has no chars_in_buffer either).
            TIOCOUTQ => {
                write_val(&mm, arg, &0i32)?;
                Ok(0)
            }
            FIONREAD => {
                let inner = tty.inner.lock();
                let n = if self.master { inner.to_master.len() } else { inner.ldisc.input_available() };
                drop(inner);
                write_val(&mm, arg, &(n as i32))?;
                Ok(0)
            }
            TIOCGWINSZ => {
                let w = tty.inner.lock().winsize;
                write_val(&mm, arg, &w)?;
                Ok(0)
            }
            TIOCSWINSZ => {
                let w = read_val::<Winsize>(&mm, arg)?;
                let mut inner = tty.inner.lock();
                let changed = inner.winsize != w;
                inner.winsize = w;
                let pgrp = inner.pgrp;
                drop(inner);
                // `tty_do_resize`: a new size is news for the foreground group.
                if changed && pgrp != 0 {
                    crate::process::signal::kill_pgrp(pgrp, crate::process::signal::SIGWINCH);
                }
                Ok(0)
            }
            TIOCGPTN if self.master => {
                write_val(&mm, arg, &tty.index)?;
                Ok(0)
            }
            TIOCSPTLCK if self.master => {
                let lock = read_val::<i32>(&mm, arg)?;
                tty.inner.lock().locked = lock != 0;
                Ok(0)
            }
            TIOCGPTLCK if self.master => {
                let locked = tty.inner.lock().locked as i32;
                write_val(&mm, arg, &locked)?;
                Ok(0)
            }
            TIOCGPTPEER if self.master => pty::open_peer(tty, arg as u32),
            // The pty calls through the slave too.
            _ => Err(ENOTTY),
        }
    }
}

impl Drop for TtyFile {
    /// `tty_release` (with `pty_close`): the last master file hangs the slave up and
    /// takes /dev/pts/N away; the last slave file lets the master's reads fail with EIO.
    fn drop(&mut self) {
        let tty = &self.tty;
        if self.master {
            tty.inner.lock().master_open = false;
            hangup(tty);
            pty::forget(tty.index);
        } else {
            let mut inner = tty.inner.lock();
            inner.opens -= 1;
            if inner.opens == 0 && tty.driver == Driver::Pty {
                inner.slave_closed = true;
            }
        }
        tty.wake();
    }
}

// ---- job control (tty_jobctrl.c) -----------------------------------------------------

fn capable_sys_admin() -> bool {
    crate::process::current().process.creds.lock().capable(crate::process::cred::CAP_SYS_ADMIN)
}

/// `is_ignored`: the current thread blocks `sig` or its process ignores it.
fn is_ignored(sig: u32) -> bool {
    let t = crate::process::current();
    let blocked = t.sig.lock().blocked & crate::process::signal::sigmask(sig) != 0;
    blocked || t.sighand().lock().get(sig).handler == crate::process::signal::SIG_IGN
}

fn is_ctty(p: &Process, tty: &Arc<Tty>) -> bool {
    p.tty.lock().as_ref().is_some_and(|t| Arc::ptr_eq(t, tty))
}

/// `__tty_check_change`: a process of a background group touching its controlling
/// terminal gets `sig` (SIGTTIN for reads, SIGTTOU for writes under TOSTOP and for
/// changes) and the call is restarted once it is continued; an ignored or blocked
/// signal lets a change through but fails a read with EIO, as does an orphaned group.
pub fn tty_check_change(tty: &Arc<Tty>, sig: u32) -> KResult<()> {
    let p = crate::process::current().process.clone();
    if !is_ctty(&p, tty) {
        return Ok(());
    }
    let pgrp = tty.inner.lock().pgrp;
    if pgrp == 0 || pgrp == p.pgid() {
        return Ok(());
    }
    if is_ignored(sig) {
        return if sig == crate::process::signal::SIGTTIN { Err(EIO) } else { Ok(()) };
    }
    if crate::process::exit::is_pgrp_orphaned(&p) {
        return Err(EIO);
    }
    crate::process::signal::kill_pgrp(p.pgid(), sig);
    Err(ERESTARTSYS)
}

/// `__proc_set_tty`: `tty` becomes the controlling terminal of `p`'s session, with `p`'s
/// group in the foreground.
fn proc_set_tty(p: &Arc<Process>, tty: &Arc<Tty>) {
    *p.tty.lock() = Some(tty.clone());
    let mut inner = tty.inner.lock();
    inner.session = p.sid.load(Ordering::Relaxed);
    inner.pgrp = p.pgid();
}

/// `tty_open_proc_set_tty`: a session leader without a controlling terminal opening
/// one nobody controls for reading gets it (write access alone, which setgid-tty
/// programs have to every terminal, never gives one).
fn proc_set_tty_if_unset(p: &Arc<Process>, tty: &Arc<Tty>, readable: bool) {
    if !readable || p.sid.load(Ordering::Relaxed) != p.pid || p.tty.lock().is_some() {
        return;
    }
    if tty.inner.lock().session == 0 {
        proc_set_tty(p, tty);
    }
}

/// `session_clear_tty`: no process of session `sid` has a controlling terminal.
fn session_clear_tty(sid: Tid) {
    for q in crate::process::task::all_processes() {
        if q.sid.load(Ordering::Relaxed) == sid {
            *q.tty.lock() = None;
        }
    }
}

/// TIOCSCTTY (`tiocsctty`): the caller, a session leader without a controlling terminal,
/// takes `tty`; one another session controls is taken from it only by CAP_SYS_ADMIN
/// with `arg` 1.
fn tiocsctty(tty: &Arc<Tty>, readable: bool, arg: u64) -> KResult<usize> {
    let p = crate::process::current().process.clone();
    let sid = p.sid.load(Ordering::Relaxed);
    let leader = sid == p.pid;
    let tty_session = tty.inner.lock().session;
    if leader && tty_session == sid {
        return Ok(0);
    }
    if !leader || p.tty.lock().is_some() {
        return Err(EPERM);
    }
    let admin = capable_sys_admin();
    if tty_session != 0 {
        if arg == 1 && admin {
            session_clear_tty(tty_session);
        } else {
            return Err(EPERM);
        }
    }
    if !readable && !admin {
        return Err(EPERM);
    }
    proc_set_tty(&p, tty);
    Ok(0)
}

/// TIOCNOTTY: the caller gives up its controlling terminal; a session leader's whole
/// session does (`disassociate_ctty(0)`).
fn tiocnotty(tty: &Arc<Tty>) -> KResult<usize> {
    let p = crate::process::current().process.clone();
    if !is_ctty(&p, tty) {
        return Err(ENOTTY);
    }
    if p.sid.load(Ordering::Relaxed) == p.pid {
        disassociate_ctty(&p, false);
    }
    *p.tty.lock() = None;
    Ok(0)
}

/// The checks TIOCGPGRP and TIOCGSID share: through the slave side the terminal must be
/// the caller's controlling terminal.
fn check_tty_owner(tty: &Arc<Tty>, master: bool) -> KResult<()> {
    let p = crate::process::current().process.clone();
    if !master && !is_ctty(&p, tty) {
        return Err(ENOTTY);
    }
    Ok(())
}

fn tiocgpgrp(tty: &Arc<Tty>, master: bool) -> KResult<Tid> {
    check_tty_owner(tty, master)?;
    Ok(tty.inner.lock().pgrp)
}

fn tiocgsid(tty: &Arc<Tty>, master: bool) -> KResult<Tid> {
    check_tty_owner(tty, master)?;
    match tty.inner.lock().session {
        0 => Err(ENOTTY),
        s => Ok(s),
    }
}

/// TIOCSPGRP (`tiocspgrp`): the foreground group becomes one of the caller's session.
fn tiocspgrp(tty: &Arc<Tty>, pgrp: KResult<i32>) -> KResult<usize> {
    match tty_check_change(tty, crate::process::signal::SIGTTOU) {
        Err(EIO) => return Err(ENOTTY),
        r => r?,
    }
    let pgrp = pgrp?;
    if pgrp < 0 {
        return Err(EINVAL);
    }
    let p = crate::process::current().process.clone();
    let sid = p.sid.load(Ordering::Relaxed);
    if !is_ctty(&p, tty) || tty.inner.lock().session != sid {
        return Err(ENOTTY);
    }
    // `session_of_pgrp`: a member of the group, or else the process with that id.
    let pgrp = pgrp as Tid;
    let all = crate::process::task::all_processes();
    let owner = all.iter().find(|q| q.pgid() == pgrp).or_else(|| all.iter().find(|q| q.pid == pgrp));
    let Some(owner) = owner else { return Err(ESRCH) };
    if owner.sid.load(Ordering::Relaxed) != sid {
        return Err(EPERM);
    }
    tty.inner.lock().pgrp = pgrp;
    Ok(0)
}

/// `disassociate_ctty`: the session leader `p` gives up its terminal, on exit or by
/// TIOCNOTTY. The foreground group is sent SIGHUP (and SIGCONT but on exit); the console
/// on exit is hung up instead (`tty_vhangup_session`). The terminal then has no
/// session, and no process of the session a controlling terminal.
pub fn disassociate_ctty(p: &Arc<Process>, on_exit: bool) {
    let Some(tty) = p.tty.lock().clone() else { return };
    if on_exit && tty.driver != Driver::Pty {
        hangup(&tty);
    } else {
        let pgrp = tty.inner.lock().pgrp;
        if pgrp != 0 {
            crate::process::signal::kill_pgrp(pgrp, crate::process::signal::SIGHUP);
            if !on_exit {
                crate::process::signal::kill_pgrp(pgrp, crate::process::signal::SIGCONT);
            }
        }
    }
    {
        let mut inner = tty.inner.lock();
        inner.session = 0;
        inner.pgrp = 0;
    }
    session_clear_tty(p.sid.load(Ordering::Relaxed));
}

/// `__tty_hangup`: the files open on the terminal side are hung up (reads end, writes
/// fail with EIO), the session's leader gets SIGHUP and SIGCONT, and nobody controls the
/// terminal any more.
fn hangup(tty: &Arc<Tty>) {
    tty.hangups.fetch_add(1, Ordering::Relaxed);
    let session = {
        let mut inner = tty.inner.lock();
        let s = inner.session;
        inner.session = 0;
        inner.pgrp = 0;
        s
    };
    if session != 0 {
        for q in crate::process::task::all_processes() {
            if q.sid.load(Ordering::Relaxed) != session {
                continue;
            }
            let mut slot = q.tty.lock();
            if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, tty)) {
                *slot = None;
            }
            drop(slot);
            if q.pid == session && !q.is_zombie() {
                for sig in [crate::process::signal::SIGHUP, crate::process::signal::SIGCONT] {
                    crate::process::signal::send_to_process(
                        &q,
                        crate::process::signal::SigInfo::new(sig, crate::process::signal::SI_KERNEL),
                    );
                }
            }
        }
    }
    tty.wake();
}

/// The current process's controlling terminal (what /dev/tty opens).
pub fn current_tty() -> Option<Arc<Tty>> {
    crate::process::current().process.tty.lock().clone()
}
