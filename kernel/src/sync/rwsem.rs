//! `RwSem<T>`: a sleeping reader-writer semaphore (Linux's `rw_semaphore`,
//! kernel/locking/rwsem.c) guarding a `T`. Readers share it, a writer excludes
//! everyone, and a task that cannot have it sleeps in a queue instead of spinning.
//! Who may have it and when is the host-tested `rwsem` crate: arrival order, with
//! the lock handed directly to the waiters a release lets in, so a stream of
//! readers never starves a writer.
//!
//! A task may sleep while holding it (a page fault populating memory, a long
//! munmap), so it is taken only where sleeping is allowed: never under a
//! spinlock, never with interrupts masked, never in an interrupt handler. Its
//! internal spinlock is a leaf but for the run-queue lock a wake-up takes.
//! Outside any task (the boot context) a contended `down` spins: nothing there can
//! sleep.
//!
//! Before it queues, a contended `down` spins while the writer holding the semaphore
//! runs on another CPU (Linux's optimistic spinning): that writer lets go soon, and
//! sleeping costs a reschedule IPI and two context switches per hand-off. Without it
//! two threads mapping and unmapping in turn hand the lock back and forth through the
//! queue, and each operation waits for a wake-up.
//!
//! The `T` sits in a `spin::RwLock` that the semaphore's holders take without
//! contention (the semaphore already excludes what the spinlock would), which
//! turns the hold into safe `&T`/`&mut T` access.
#![deny(unsafe_code)]

use super::order::RwSemWaiters;
use super::SpinLock;
use crate::errno::{KResult, EINTR};
use crate::process::sched;
use crate::process::task::{Task, TaskState};
use alloc::sync::Arc;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};
use rwsem::{Down, Mode, RwSemState};
use spin::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub struct RwSem<T> {
    state: SpinLock<RwSemState<Arc<Task>>, RwSemWaiters>,
    /// The writer holding it (`percpu::current_id`), 0 when none or not known yet
    /// (Linux's `sem->owner`): what a spinner watches.
    owner: AtomicUsize,
    data: RwLock<T>,
}

/// How many times a spinner finds the semaphore held by nobody it can watch (readers, or
/// a writer not yet recorded) before it queues.
const SPIN_LOOKS: u32 = 64;

/// A shared hold (`down_read` .. `up_read`).
pub struct RwSemReadGuard<'a, T> {
    sem: &'a RwSem<T>,
    guard: Option<RwLockReadGuard<'a, T>>,
}

/// The exclusive hold (`down_write` .. `up_write`).
pub struct RwSemWriteGuard<'a, T> {
    sem: &'a RwSem<T>,
    guard: Option<RwLockWriteGuard<'a, T>>,
}

/// How a waiter sleeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sleep {
    /// Only the hand-off ends it (`down_read`, `down_write`).
    Uninterruptible,
    /// A fatal signal ends it with EINTR (`down_read_killable`, `down_write_killable`).
    Killable,
}

impl<T> RwSem<T> {
    pub const fn new(value: T) -> Self {
        RwSem { state: SpinLock::new(RwSemState::new()), owner: AtomicUsize::new(0), data: RwLock::new(value) }
    }

    /// Linux's `down_read`.
    pub fn read(&self) -> RwSemReadGuard<'_, T> {
        let _ = self.down(Mode::Read, Sleep::Uninterruptible);
        RwSemReadGuard { sem: self, guard: Some(self.data.read()) }
    }

    /// Linux's `down_read_killable`: EINTR if a fatal signal arrives while waiting.
    pub fn read_killable(&self) -> KResult<RwSemReadGuard<'_, T>> {
        self.down(Mode::Read, Sleep::Killable)?;
        Ok(RwSemReadGuard { sem: self, guard: Some(self.data.read()) })
    }

    /// Linux's `down_write`.
    pub fn write(&self) -> RwSemWriteGuard<'_, T> {
        let _ = self.down(Mode::Write, Sleep::Uninterruptible);
        self.write_guard()
    }

    /// The guard of a write hold just taken, its owner recorded for spinners.
    fn write_guard(&self) -> RwSemWriteGuard<'_, T> {
        self.owner.store(crate::arch::percpu::current_id(), Ordering::Release);
        RwSemWriteGuard { sem: self, guard: Some(self.data.write()) }
    }

    /// Linux's `down_write_killable`: EINTR if a fatal signal arrives while waiting.
    pub fn write_killable(&self) -> KResult<RwSemWriteGuard<'_, T>> {
        self.down(Mode::Write, Sleep::Killable)?;
        Ok(self.write_guard())
    }

    /// Linux's `down_read_trylock`: never waits (reports, the OOM killer's look at a
    /// victim).
    pub fn try_read(&self) -> Option<RwSemReadGuard<'_, T>> {
        self.state.lock().try_down(Mode::Read).then(|| RwSemReadGuard { sem: self, guard: Some(self.data.read()) })
    }

    /// Linux's `down_write_trylock`.
    pub fn try_write(&self) -> Option<RwSemWriteGuard<'_, T>> {
        self.state.lock().try_down(Mode::Write).then(|| self.write_guard())
    }

    /// The value, when nobody else can hold the semaphore (its owner's teardown).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Gives back the wait queue's spare capacity.
    pub fn shrink(&self) {
        self.state.lock().shrink();
    }

    /// Takes the semaphore for `mode`, sleeping in the queue until a release hands it
    /// over. Err(EINTR) only for a killable sleep that a fatal signal ended first.
    fn down(&self, mode: Mode, sleep: Sleep) -> KResult<()> {
        // Linux's `might_sleep`: checked whether or not this call would sleep.
        super::lockdep::assert_none_held("RwSem::down");
        if self.state.lock().try_down(mode) {
            return Ok(());
        }
        let Some(t) = sched::current() else {
            // The boot context has no task to put to sleep: another CPU releases it.
            while !self.state.lock().try_down(mode) {
                core::hint::spin_loop();
            }
            return Ok(());
        };
        if self.optimistic_spin(mode) {
            return Ok(());
        }
        let state = match sleep {
            Sleep::Uninterruptible => TaskState::Uninterruptible,
            Sleep::Killable => TaskState::Killable,
        };
        // The task's state is set under the semaphore's lock, before it can be granted:
        // a release between here and `schedule` finds it asleep and makes it runnable,
        // and `schedule` then returns at once (no lost wake-up).
        let ticket = {
            let mut s = self.state.lock();
            match s.down(mode, || t.clone()) {
                Down::Acquired => return Ok(()),
                Down::Queued(ticket) => {
                    t.sleep_since.store(crate::arch::apic::uptime_ns(), Ordering::Relaxed);
                    t.set_state(state);
                    ticket
                }
            }
        };
        loop {
            sched::schedule();
            // Looked at before the semaphore's lock: the signal state's lock is outside it.
            let fatal = sleep == Sleep::Killable && crate::process::signal::fatal_signal_pending(&t);
            let mut s = self.state.lock();
            if !s.is_queued(ticket) {
                return Ok(());
            }
            if fatal {
                // Withdrawn before a hand-off: nothing held. Handed over meanwhile: keep
                // it, as Linux's slow path does when the grant beat the signal.
                return if s.cancel(ticket, wake) { Err(EINTR) } else { Ok(()) };
            }
            // Woken for another reason: sleep again, still queued.
            t.set_state(state);
        }
    }

    /// Linux's `rwsem_optimistic_spin`: waits, without sleeping, while a writer that runs
    /// on another CPU holds the semaphore; true once it is taken. Gives up (the caller
    /// queues) when that writer stops running, when this CPU is wanted for something else
    /// (`need_resched`, set at least every tick), or after `SPIN_LOOKS` looks at a
    /// semaphore held by readers or handed to a queued waiter, whom the queue serves first.
    fn optimistic_spin(&self, mode: Mode) -> bool {
        // With interrupts masked no tick would end the spin, and the holder may be waiting
        // for this CPU to acknowledge a shootdown: then queue and sleep at once.
        if !crate::arch::cpu::interrupts_enabled() {
            return false;
        }
        let mut looks = 0;
        loop {
            let owner = self.owner.load(Ordering::Acquire);
            if owner != 0 {
                if !crate::arch::percpu::running_anywhere(owner) || sched::need_resched() {
                    return false;
                }
            } else {
                if self.state.lock().try_down(mode) {
                    return true;
                }
                looks += 1;
                if looks >= SPIN_LOOKS {
                    return false;
                }
            }
            // The holder may wait for this CPU's acknowledgement of a call (a shootdown).
            crate::arch::smp::flush_smp_call_function_queue();
            core::hint::spin_loop();
        }
    }

    fn up(&self, mode: Mode) {
        self.state.lock().up(mode, wake);
    }
}

/// Makes a waiter the release handed the lock to runnable.
fn wake(t: Arc<Task>) {
    sched::wake_up(&t);
}

impl<'a, T> RwSemWriteGuard<'a, T> {
    /// Linux's `downgrade_write`: keeps holding, shared, and lets the readers at the
    /// head of the queue in with it; no writer can come between.
    pub fn downgrade(mut self) -> RwSemReadGuard<'a, T> {
        let sem = self.sem;
        let w = self.guard.take().expect("write guard held");
        let r = RwLockWriteGuard::downgrade(w);
        sem.owner.store(0, Ordering::Release);
        sem.state.lock().downgrade(wake);
        core::mem::forget(self);
        RwSemReadGuard { sem, guard: Some(r) }
    }
}

impl<T> Deref for RwSemReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("read guard held")
    }
}

impl<T> Deref for RwSemWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("write guard held")
    }
}

impl<T> DerefMut for RwSemWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("write guard held")
    }
}

impl<T> Drop for RwSemReadGuard<'_, T> {
    fn drop(&mut self) {
        // The data first, then the semaphore: whoever it is handed to finds the data free.
        drop(self.guard.take());
        self.sem.up(Mode::Read);
    }
}

impl<T> Drop for RwSemWriteGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.sem.owner.store(0, Ordering::Release);
        self.sem.up(Mode::Write);
    }
}

pub(crate) use tests::KTESTS;

mod tests {
    use super::*;

    pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![
        rwsem_two_readers_hold_it_at_once,
        rwsem_a_writer_sleeps_until_the_readers_leave,
        rwsem_a_reader_behind_a_waiting_writer_waits,
        rwsem_a_killable_down_returns_eintr_on_sigkill,
        rwsem_downgrade_lets_waiting_readers_in,
        rwsem_a_writer_spins_while_a_running_writer_holds_it,
        rwsem_a_writer_with_interrupts_masked_does_not_spin_against_a_holder_awaiting_it,
    ];
    use crate::ktest::{reap_kthread, run_until, spawn_kthread, spawn_kthread_on};
    use core::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize};

    /// The semaphore the test threads use; every test leaves it free.
    static SEM: RwSem<u64> = RwSem::new(0);
    /// What the threads did, in order: one decimal digit per event.
    static LOG: AtomicU64 = AtomicU64::new(0);
    /// Readers holding `SEM` as the reader thread saw it.
    static SEEN_READERS: AtomicUsize = AtomicUsize::new(0);
    /// The killable writer's result: 0 when it got the lock, else the errno.
    static RESULT: AtomicI64 = AtomicI64::new(-1);
    static DONE: AtomicUsize = AtomicUsize::new(0);
    /// The holding writer has `SEM`.
    static HOLDING: AtomicUsize = AtomicUsize::new(0);
    /// The spinning writer is about to ask for `SEM`.
    static ASKING: AtomicUsize = AtomicUsize::new(0);
    /// Whether the spinning writer queued (and so slept) before it got `SEM`.
    static QUEUED: AtomicUsize = AtomicUsize::new(0);

    const READER: u64 = 1;
    const WRITER: u64 = 2;

    fn log(event: u64) {
        let v = LOG.load(Ordering::SeqCst);
        LOG.store(v * 10 + event, Ordering::SeqCst);
    }

    fn reset() {
        LOG.store(0, Ordering::SeqCst);
        SEEN_READERS.store(0, Ordering::SeqCst);
        RESULT.store(-1, Ordering::SeqCst);
        DONE.store(0, Ordering::SeqCst);
        HOLDING.store(0, Ordering::SeqCst);
        ASKING.store(0, Ordering::SeqCst);
        QUEUED.store(0, Ordering::SeqCst);
    }

    fn idle() -> bool {
        let s = SEM.state.lock();
        s.readers() == 0 && !s.write_locked() && s.waiters() == 0
    }

    extern "C" fn reader() -> ! {
        let g = SEM.read();
        log(READER);
        SEEN_READERS.store(SEM.state.lock().readers(), Ordering::SeqCst);
        drop(g);
        DONE.fetch_add(1, Ordering::SeqCst);
        crate::ktest::kthread_exit()
    }

    extern "C" fn writer() -> ! {
        let mut g = SEM.write();
        log(WRITER);
        *g += 1;
        drop(g);
        DONE.fetch_add(1, Ordering::SeqCst);
        crate::ktest::kthread_exit()
    }

    /// Takes `SEM` for writing and, running all along, keeps it until the spinning writer
    /// has asked for it, and a little longer.
    extern "C" fn holding_writer() -> ! {
        let g = SEM.write();
        HOLDING.store(1, Ordering::SeqCst);
        while ASKING.load(Ordering::SeqCst) == 0 {
            core::hint::spin_loop();
        }
        // Plain loads, not `pause` (which QEMU's TCG emulates by leaving its loop, each
        // taking microseconds): about a millisecond there, well within a tick.
        for _ in 0..100_000 {
            core::hint::black_box(ASKING.load(Ordering::Relaxed));
        }
        drop(g);
        DONE.fetch_add(1, Ordering::SeqCst);
        crate::ktest::kthread_exit()
    }

    /// Holds `SEM` and, meanwhile, makes a call on CPU 0 and waits for it: a TLB
    /// shootdown under `mmap_lock`, as munmap makes.
    extern "C" fn holding_writer_calling_cpu0() -> ! {
        let g = SEM.write();
        HOLDING.store(1, Ordering::SeqCst);
        while ASKING.load(Ordering::SeqCst) == 0 {
            core::hint::spin_loop();
        }
        crate::arch::smp::smp_call_function_single(0, |_| {}, 0).expect("CPU 0 is online");
        drop(g);
        DONE.fetch_add(1, Ordering::SeqCst);
        crate::ktest::kthread_exit()
    }

    /// Asks for `SEM` with interrupts masked (as a signal delivered on the way out of the
    /// timer interrupt does, writing the frame under `mmap_lock`).
    extern "C" fn masked_writer() -> ! {
        crate::arch::cpu::disable_interrupts();
        ASKING.store(1, Ordering::SeqCst);
        let g = SEM.write();
        crate::arch::cpu::enable_interrupts();
        drop(g);
        DONE.fetch_add(1, Ordering::SeqCst);
        crate::ktest::kthread_exit()
    }

    /// A writer that records whether it had to queue: `down` stamps `sleep_since` when it
    /// queues.
    extern "C" fn spinning_writer() -> ! {
        let me = sched::current().expect("a kernel thread is a task");
        let before = me.sleep_since.load(Ordering::SeqCst);
        ASKING.store(1, Ordering::SeqCst);
        let g = SEM.write();
        QUEUED.store(usize::from(me.sleep_since.load(Ordering::SeqCst) != before), Ordering::SeqCst);
        // `kthread_exit` never returns: nothing may stay alive across it.
        drop(me);
        drop(g);
        DONE.fetch_add(1, Ordering::SeqCst);
        crate::ktest::kthread_exit()
    }

    extern "C" fn killable_writer() -> ! {
        let r = match SEM.write_killable() {
            Ok(_) => 0,
            Err(e) => e.0 as i64,
        };
        RESULT.store(r, Ordering::SeqCst);
        DONE.fetch_add(1, Ordering::SeqCst);
        crate::ktest::kthread_exit()
    }

    fn sleeping(t: &Arc<Task>, state: TaskState) -> impl Fn() -> bool + '_ {
        move || t.state() == state
    }

    fn rwsem_two_readers_hold_it_at_once() {
        reset();
        let g = SEM.read();
        let r = spawn_kthread("rwsem_reader", reader);
        // With our read hold kept, the reader thread must get in and finish.
        assert!(run_until(|| DONE.load(Ordering::SeqCst) == 1), "a second reader was kept out");
        assert_eq!(SEEN_READERS.load(Ordering::SeqCst), 2);
        drop(g);
        reap_kthread(r);
        assert!(idle());
    }

    fn rwsem_a_writer_sleeps_until_the_readers_leave() {
        reset();
        let g = SEM.read();
        let w = spawn_kthread("rwsem_writer", writer);
        assert!(run_until(sleeping(&w, TaskState::Uninterruptible)), "the writer does not sleep");
        assert_eq!(LOG.load(Ordering::SeqCst), 0, "the writer got in beside a reader");
        assert_eq!(SEM.state.lock().waiters(), 1);
        drop(g);
        assert!(run_until(|| DONE.load(Ordering::SeqCst) == 1), "the writer was not handed the lock");
        assert_eq!(LOG.load(Ordering::SeqCst), WRITER);
        reap_kthread(w);
        assert!(idle());
    }

    fn rwsem_a_reader_behind_a_waiting_writer_waits() {
        reset();
        let g = SEM.read();
        let w = spawn_kthread("rwsem_writer", writer);
        assert!(run_until(sleeping(&w, TaskState::Uninterruptible)));
        // The lock is only read-held, yet a reader arriving now queues behind the writer.
        let r = spawn_kthread("rwsem_reader", reader);
        assert!(run_until(sleeping(&r, TaskState::Uninterruptible)), "the reader overtook a waiting writer");
        assert_eq!(LOG.load(Ordering::SeqCst), 0);
        drop(g);
        assert!(run_until(|| DONE.load(Ordering::SeqCst) == 2));
        assert_eq!(LOG.load(Ordering::SeqCst), WRITER * 10 + READER, "served out of arrival order");
        reap_kthread(w);
        reap_kthread(r);
        assert!(idle());
    }

    fn rwsem_a_killable_down_returns_eintr_on_sigkill() {
        reset();
        let g = SEM.write();
        let k = spawn_kthread("rwsem_killable", killable_writer);
        assert!(run_until(sleeping(&k, TaskState::Killable)), "the killable writer does not sleep");
        let status = crate::process::exit::signaled_status(crate::process::signal::SIGKILL, false);
        crate::process::signal::kill_group(&k.process, status);
        assert!(run_until(|| DONE.load(Ordering::SeqCst) == 1), "SIGKILL did not end the wait");
        assert_eq!(RESULT.load(Ordering::SeqCst), EINTR.0 as i64);
        {
            let s = SEM.state.lock();
            assert!(s.write_locked() && s.waiters() == 0, "the withdrawn waiter left a trace");
        }
        drop(g);
        reap_kthread(k);
        assert!(idle());
    }

    /// A writer arriving while another writer holds the semaphore and runs on another CPU
    /// waits for it without queueing. An attempt can fail for reasons of timing (a tick
    /// ends the spin): one attempt of ten must succeed; without the spin none could, as
    /// the holder keeps it until the second writer has asked.
    fn rwsem_a_writer_spins_while_a_running_writer_holds_it() {
        if crate::arch::percpu::nr_cpus_online() < 2 {
            return;
        }
        for _ in 0..10 {
            reset();
            // The holder on CPU 1; the spinner on CPU 0, where this boot context lets it
            // run from `run_until`.
            let h = spawn_kthread_on("rwsem_holder", holding_writer, 1 << 1);
            assert!(run_until(|| HOLDING.load(Ordering::SeqCst) == 1), "the holder never took the lock");
            let w = spawn_kthread_on("rwsem_spinner", spinning_writer, 1 << 0);
            assert!(run_until(|| DONE.load(Ordering::SeqCst) == 2), "the writers never finished");
            reap_kthread(h);
            reap_kthread(w);
            assert!(idle());
            if QUEUED.load(Ordering::SeqCst) == 0 {
                return;
            }
        }
        panic!("in ten attempts, a writer always queued behind a running writer");
    }

    /// A writer that asks with interrupts masked while the holder, running on another CPU,
    /// waits for this CPU to answer a call: spinning there would wait forever for a holder
    /// that waits for it (no IPI gets in, no tick ends the spin). It must queue or answer.
    fn rwsem_a_writer_with_interrupts_masked_does_not_spin_against_a_holder_awaiting_it() {
        if crate::arch::percpu::nr_cpus_online() < 2 {
            return;
        }
        reset();
        let h = spawn_kthread_on("rwsem_holder", holding_writer_calling_cpu0, 1 << 1);
        assert!(run_until(|| HOLDING.load(Ordering::SeqCst) == 1), "the holder never took the lock");
        let w = spawn_kthread_on("rwsem_masked", masked_writer, 1 << 0);
        assert!(run_until(|| DONE.load(Ordering::SeqCst) == 2), "the writers never finished");
        reap_kthread(h);
        reap_kthread(w);
        assert!(idle());
    }

    fn rwsem_downgrade_lets_waiting_readers_in() {
        reset();
        let g = SEM.write();
        let r = spawn_kthread("rwsem_reader", reader);
        assert!(run_until(sleeping(&r, TaskState::Uninterruptible)));
        let g = g.downgrade();
        assert!(run_until(|| DONE.load(Ordering::SeqCst) == 1), "a downgraded hold kept a reader out");
        assert_eq!(SEEN_READERS.load(Ordering::SeqCst), 2);
        drop(g);
        reap_kthread(r);
        assert!(idle());
    }
}
