//! The state machine of a sleeping reader-writer semaphore (Linux's `rw_semaphore`,
//! kernel/locking/rwsem.c), without the sleeping: who holds it, who waits, and to whom a
//! release hands it. The kernel keeps one of these under a spinlock, puts a task to sleep
//! when [`RwSemState::down`] queues it and wakes the tokens a release hands the lock to.
//!
//! Rules, as Linux's with its hand-off:
//! - readers share, a writer excludes everyone;
//! - a newcomer takes the lock at once only if it is free for its mode *and nobody
//!   waits*: a reader arriving while a writer waits queues behind it, so a stream of
//!   readers cannot starve a writer;
//! - waiters are served in arrival order, and a release hands the lock to them directly
//!   (the waiter finds itself holding it when it wakes; nobody can steal it between the
//!   release and the wake-up): a writer at the head gets it alone once the last holder
//!   leaves; readers at the head get it together, every reader up to the first queued
//!   writer. Linux wakes every queued reader when a reader heads the queue (up to 256,
//!   `rwsem_mark_wake`), jumping the writers between them; strict arrival order here
//!   bounds a writer's wait by the holders ahead of it;
//! - a waiter that gives up (a killable down and a fatal signal) leaves the queue, and if
//!   it headed it, whoever it held back is served (`rwsem_del_wake_waiter`);
//! - `downgrade` turns a write hold into a read hold and lets the readers at the head in.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::collections::VecDeque;

/// Shared (read) or exclusive (write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Read,
    Write,
}

/// A queued waiter's place, to ask whether it was granted or to withdraw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(u64);

/// What [`RwSemState::down`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    /// The caller holds the lock.
    Acquired,
    /// The caller waits; a release will hand it the lock and wake its token.
    Queued(Ticket),
}

struct Waiter<W> {
    ticket: u64,
    mode: Mode,
    token: W,
}

/// Holders and the queue of waiters; `W` is what the kernel wakes (a task).
pub struct RwSemState<W> {
    readers: usize,
    writer: bool,
    queue: VecDeque<Waiter<W>>,
    next_ticket: u64,
}

impl<W> Default for RwSemState<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> RwSemState<W> {
    pub const fn new() -> Self {
        RwSemState { readers: 0, writer: false, queue: VecDeque::new(), next_ticket: 0 }
    }

    fn free_for(&self, mode: Mode) -> bool {
        match mode {
            Mode::Read => !self.writer,
            Mode::Write => !self.writer && self.readers == 0,
        }
    }

    fn take(&mut self, mode: Mode) {
        match mode {
            Mode::Read => self.readers += 1,
            Mode::Write => self.writer = true,
        }
    }

    /// Takes the lock if it is free for `mode` and nobody waits (Linux's `down_read_trylock`
    /// and `down_write_trylock`, which also never overtake a queued waiter here).
    pub fn try_down(&mut self, mode: Mode) -> bool {
        if self.queue.is_empty() && self.free_for(mode) {
            self.take(mode);
            true
        } else {
            false
        }
    }

    /// Takes the lock, or queues `token()` behind every earlier waiter.
    pub fn down(&mut self, mode: Mode, token: impl FnOnce() -> W) -> Down {
        if self.try_down(mode) {
            return Down::Acquired;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queue.push_back(Waiter { ticket, mode, token: token() });
        Down::Queued(Ticket(ticket))
    }

    /// Whether `ticket` still waits; false once a release handed it the lock.
    pub fn is_queued(&self, ticket: Ticket) -> bool {
        self.queue.iter().any(|w| w.ticket == ticket.0)
    }

    /// Releases a hold of `mode` and hands the lock to the waiters now entitled to it,
    /// passing each one's token to `wake`.
    pub fn up(&mut self, mode: Mode, wake: impl FnMut(W)) {
        match mode {
            Mode::Read => {
                assert!(self.readers > 0 && !self.writer, "up_read without a read hold");
                self.readers -= 1;
            }
            Mode::Write => {
                assert!(self.writer, "up_write without the write hold");
                self.writer = false;
            }
        }
        self.hand_off(wake);
    }

    /// Turns the write hold into a read hold (Linux's `downgrade_write`): the readers at
    /// the head of the queue join it.
    pub fn downgrade(&mut self, wake: impl FnMut(W)) {
        assert!(self.writer, "downgrade_write without the write hold");
        self.writer = false;
        self.readers += 1;
        self.hand_off(wake);
    }

    /// Withdraws a waiter that gives up. True if it was still queued (it holds nothing);
    /// false if the lock was handed to it meanwhile (it holds the lock and must release
    /// it, or keep it). A withdrawn head may let those behind it in.
    pub fn cancel(&mut self, ticket: Ticket, wake: impl FnMut(W)) -> bool {
        let Some(i) = self.queue.iter().position(|w| w.ticket == ticket.0) else { return false };
        self.queue.remove(i);
        if i == 0 {
            self.hand_off(wake);
        }
        true
    }

    /// Serves the head of the queue while the lock is free for it: one writer alone, or
    /// the readers before the first queued writer.
    fn hand_off(&mut self, mut wake: impl FnMut(W)) {
        while let Some(head) = self.queue.front() {
            let mode = head.mode;
            if !self.free_for(mode) {
                break;
            }
            let w = self.queue.pop_front().expect("head just seen");
            self.take(mode);
            wake(w.token);
            if mode == Mode::Write {
                break;
            }
        }
    }

    /// Read holders now.
    pub fn readers(&self) -> usize {
        self.readers
    }

    /// Whether a writer holds it.
    pub fn write_locked(&self) -> bool {
        self.writer
    }

    /// Queued waiters.
    pub fn waiters(&self) -> usize {
        self.queue.len()
    }

    /// Gives back the queue's spare capacity.
    pub fn shrink(&mut self) {
        self.queue.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn woken(s: &mut RwSemState<u32>, f: impl FnOnce(&mut RwSemState<u32>, &mut dyn FnMut(u32))) -> Vec<u32> {
        let mut v = Vec::new();
        f(s, &mut |t| v.push(t));
        v
    }

    fn queued(d: Down) -> Ticket {
        match d {
            Down::Queued(t) => t,
            Down::Acquired => panic!("expected to wait"),
        }
    }

    #[test]
    fn readers_share() {
        let mut s = RwSemState::<u32>::new();
        assert_eq!(s.down(Mode::Read, || 1), Down::Acquired);
        assert_eq!(s.down(Mode::Read, || 2), Down::Acquired);
        assert_eq!(s.readers(), 2);
        assert_eq!(s.waiters(), 0);
    }

    #[test]
    fn a_writer_excludes_readers_and_writers() {
        let mut s = RwSemState::<u32>::new();
        assert_eq!(s.down(Mode::Write, || 1), Down::Acquired);
        assert!(!s.try_down(Mode::Read));
        assert!(!s.try_down(Mode::Write));
        queued(s.down(Mode::Read, || 2));
        queued(s.down(Mode::Write, || 3));
        assert_eq!(s.waiters(), 2);
    }

    #[test]
    fn a_writer_waits_for_every_reader() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Read, || 1);
        s.down(Mode::Read, || 2);
        let w = queued(s.down(Mode::Write, || 3));
        assert!(woken(&mut s, |s, f| s.up(Mode::Read, f)).is_empty());
        assert!(s.is_queued(w));
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Read, f)), vec![3]);
        assert!(!s.is_queued(w));
        assert!(s.write_locked());
        assert_eq!(s.readers(), 0);
    }

    #[test]
    fn a_reader_after_a_waiting_writer_waits() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Read, || 1);
        queued(s.down(Mode::Write, || 2));
        // The lock is read-held, yet the newcomer must not overtake the writer.
        let r = queued(s.down(Mode::Read, || 3));
        assert!(!s.try_down(Mode::Read));
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Read, f)), vec![2]);
        assert!(s.is_queued(r));
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Write, f)), vec![3]);
        assert_eq!(s.readers(), 1);
    }

    #[test]
    fn a_stream_of_readers_does_not_starve_a_writer() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Read, || 0);
        let w = queued(s.down(Mode::Write, || 100));
        // Readers keep arriving while the first one still holds: all of them queue.
        for i in 1..50 {
            queued(s.down(Mode::Read, || i));
        }
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Read, f)), vec![100]);
        assert!(!s.is_queued(w));
        // The writer's release lets every reader queued behind it in at once.
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Write, f)), (1..50).collect::<Vec<_>>());
        assert_eq!(s.readers(), 49);
    }

    #[test]
    fn waiters_are_served_in_arrival_order() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Write, || 0);
        queued(s.down(Mode::Read, || 1));
        queued(s.down(Mode::Read, || 2));
        queued(s.down(Mode::Write, || 3));
        queued(s.down(Mode::Read, || 4));
        queued(s.down(Mode::Write, || 5));
        // Readers up to the first writer together, then the writer alone, and so on.
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Write, f)), vec![1, 2]);
        assert!(woken(&mut s, |s, f| s.up(Mode::Read, f)).is_empty());
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Read, f)), vec![3]);
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Write, f)), vec![4]);
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Read, f)), vec![5]);
        assert!(woken(&mut s, |s, f| s.up(Mode::Write, f)).is_empty());
        assert_eq!((s.readers(), s.write_locked(), s.waiters()), (0, false, 0));
    }

    #[test]
    fn the_lock_is_handed_off_not_left_free() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Write, || 0);
        queued(s.down(Mode::Write, || 1));
        woken(&mut s, |s, f| s.up(Mode::Write, f));
        // Between the release and the woken waiter running, nobody can take it.
        assert!(!s.try_down(Mode::Write));
        assert!(!s.try_down(Mode::Read));
        assert!(s.write_locked());
    }

    #[test]
    fn a_cancelled_waiter_holds_nothing() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Read, || 0);
        let w = queued(s.down(Mode::Write, || 1));
        assert!(s.cancel(w, |_| panic!("nobody to wake")));
        assert_eq!(s.waiters(), 0);
        assert!(woken(&mut s, |s, f| s.up(Mode::Read, f)).is_empty());
        assert_eq!((s.readers(), s.write_locked()), (0, false));
    }

    #[test]
    fn cancelling_a_head_writer_lets_readers_behind_it_in() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Read, || 0);
        let w = queued(s.down(Mode::Write, || 1));
        queued(s.down(Mode::Read, || 2));
        queued(s.down(Mode::Read, || 3));
        assert_eq!(woken(&mut s, |s, f| assert!(s.cancel(w, f))), vec![2, 3]);
        assert_eq!(s.readers(), 3);
    }

    #[test]
    fn cancelling_after_the_hand_off_reports_the_hold() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Write, || 0);
        let w = queued(s.down(Mode::Write, || 1));
        woken(&mut s, |s, f| s.up(Mode::Write, f));
        assert!(!s.cancel(w, |_| {}));
        assert!(s.write_locked());
    }

    #[test]
    fn downgrade_lets_the_head_readers_in_and_keeps_writers_out() {
        let mut s = RwSemState::<u32>::new();
        s.down(Mode::Write, || 0);
        queued(s.down(Mode::Read, || 1));
        let w = queued(s.down(Mode::Write, || 2));
        queued(s.down(Mode::Read, || 3));
        assert_eq!(woken(&mut s, |s, f| s.downgrade(f)), vec![1]);
        assert_eq!(s.readers(), 2);
        assert!(s.is_queued(w));
        woken(&mut s, |s, f| s.up(Mode::Read, f));
        assert_eq!(woken(&mut s, |s, f| s.up(Mode::Read, f)), vec![2]);
    }

    #[test]
    #[should_panic(expected = "up_write without the write hold")]
    fn releasing_an_unheld_lock_is_a_bug() {
        let mut s = RwSemState::<u32>::new();
        s.up(Mode::Write, |_| {});
    }
}
