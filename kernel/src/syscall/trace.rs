//! The last system calls of every task, for post-mortems: a fixed ring in each
//! `Task` written by `dispatch` (number and arguments on entry, the result on
//! return), and `dump_tasks`, which prints every task with its ring. A panic,
//! a failed leak check or a watchdog calls it, so it takes no lock it cannot
//! give up on and writes to the serial port without the console lock.
//! (Linux keeps no such ring; its closest are ftrace's syscall events and
//! `show_state()` behind SysRq-t.)

use crate::process::task::{TaskState, TABLES};
use core::sync::atomic::{AtomicU64, Ordering};

/// Entries per task.
pub const RING_LEN: usize = 16;

/// Set in an entry's number word once the call returned.
const DONE: u64 = 1 << 63;

/// One entry: number (with `DONE`), six arguments, result.
const WORDS: usize = 8;

/// A task's last `RING_LEN` system calls. Plain atomics, so a reader in a
/// panic or an interrupt never waits for the writer.
pub struct SyscallRing {
    /// Calls recorded so far; the next entry goes to `count % RING_LEN`.
    count: AtomicU64,
    entries: [[AtomicU64; WORDS]; RING_LEN],
}

impl Default for SyscallRing {
    fn default() -> Self {
        SyscallRing {
            count: AtomicU64::new(0),
            entries: core::array::from_fn(|_| core::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

/// A recorded call, as `dump_tasks` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The call's sequence number in its task.
    pub seq: u64,
    pub nr: u64,
    pub args: [u64; 6],
    /// `None` while the call has not returned.
    pub result: Option<i64>,
}

impl SyscallRing {
    /// Records a call on entry; returns its sequence number for `leave`.
    pub fn enter(&self, nr: u64, args: &[u64; 6]) -> u64 {
        let seq = self.count.fetch_add(1, Ordering::Relaxed);
        let e = &self.entries[(seq % RING_LEN as u64) as usize];
        e[0].store(nr & !DONE, Ordering::Relaxed);
        for (w, a) in e[1..7].iter().zip(args) {
            w.store(*a, Ordering::Relaxed);
        }
        seq
    }

    /// Records the result (RAX) of call `seq`.
    pub fn leave(&self, seq: u64, result: u64) {
        let e = &self.entries[(seq % RING_LEN as u64) as usize];
        e[7].store(result, Ordering::Relaxed);
        e[0].fetch_or(DONE, Ordering::Release);
    }

    /// The recorded calls, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let count = self.count.load(Ordering::Acquire);
        let first = count.saturating_sub(RING_LEN as u64);
        (first..count).map(move |seq| {
            let e = &self.entries[(seq % RING_LEN as u64) as usize];
            let word0 = e[0].load(Ordering::Acquire);
            let mut args = [0; 6];
            for (a, w) in args.iter_mut().zip(&e[1..7]) {
                *a = w.load(Ordering::Relaxed);
            }
            let result = (word0 & DONE != 0).then(|| e[7].load(Ordering::Relaxed) as i64);
            Entry { seq, nr: word0 & !DONE, args, result }
        })
    }
}

/// Writes to the serial port without the console lock (the lock's holder may
/// be the code that failed).
macro_rules! out {
    ($($arg:tt)*) => { crate::arch::serial::write_fmt_emergency(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints every task: pid, tid, state, comm and its last system calls, the
/// newest last (`...` for one that has not returned). Locks are only tried:
/// a lock held by the failing code prints as such instead of hanging.
pub fn dump_tasks() {
    out!("---- tasks and their last system calls ----");
    let Some(tables) = TABLES.try_lock() else {
        out!("(the task table is locked)");
        return;
    };
    let tasks: alloc::vec::Vec<_> = tables.tasks.values().filter_map(|w| w.upgrade()).collect();
    drop(tables);
    for t in &tasks {
        let state = match t.state() {
            TaskState::Runnable => "runnable",
            TaskState::Running => "running",
            TaskState::Interruptible => "sleeping",
            TaskState::Uninterruptible => "sleeping (uninterruptible)",
            TaskState::Killable => "sleeping (killable)",
            TaskState::Dead => "dead",
        };
        let comm = t.comm.try_lock().map(|c| *c).unwrap_or(*b"(comm locked)\0\0\0");
        let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        out!(
            "task pid {} tid {} {} comm {:?}",
            t.process.pid,
            t.tid(),
            state,
            core::str::from_utf8(&comm[..len]).unwrap_or("?")
        );
        for e in t.syscalls.entries() {
            let a = e.args;
            match e.result {
                Some(r) => out!(
                    "  #{} syscall {}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = {}",
                    e.seq,
                    e.nr,
                    a[0],
                    a[1],
                    a[2],
                    a[3],
                    a[4],
                    a[5],
                    r
                ),
                None => out!(
                    "  #{} syscall {}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) ...",
                    e.seq,
                    e.nr,
                    a[0],
                    a[1],
                    a[2],
                    a[3],
                    a[4],
                    a[5]
                ),
            }
        }
    }
    out!("---- {} tasks ----", tasks.len());
}

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![syscall_ring_keeps_the_last_calls_oldest_first];

fn syscall_ring_keeps_the_last_calls_oldest_first() {
    let ring = SyscallRing::default();
    for i in 0..RING_LEN as u64 + 3 {
        let seq = ring.enter(i, &[i, 1, 2, 3, 4, 5]);
        assert_eq!(seq, i);
        ring.leave(seq, (-14i64) as u64);
    }
    let open = ring.enter(999, &[7; 6]);
    let e: alloc::vec::Vec<Entry> = ring.entries().collect();
    assert_eq!(e.len(), RING_LEN);
    assert_eq!(e[0].seq, 4);
    assert_eq!(e[0].nr, 4);
    assert_eq!(e[0].args, [4, 1, 2, 3, 4, 5]);
    assert_eq!(e[0].result, Some(-14));
    assert_eq!(e[RING_LEN - 1], Entry { seq: open, nr: 999, args: [7; 6], result: None });
}
