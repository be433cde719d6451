//! Timed sleeps (nanosleep, console polling).

use super::wait_queue::WaitQueue;
use crate::errno::*;

static SLEEP_QUEUE: WaitQueue = WaitQueue::new();

/// Sleeps until `deadline` (ns since boot). A signal ends it early with
/// ERESTARTNOHAND: EINTR when a handler runs, a restart otherwise (the
/// `ERESTART_RESTARTBLOCK` of nanosleep, without remembering the remaining time).
pub fn sleep_until(deadline: u64) -> KResult<()> {
    match SLEEP_QUEUE.wait_until_deadline(true, Some(deadline), || None::<()>) {
        Err(ETIMEDOUT) | Ok(()) => Ok(()),
        Err(ERESTARTSYS) => Err(ERESTARTNOHAND),
        Err(e) => Err(e),
    }
}

pub fn sleep_ticks(ticks: u64) -> KResult<()> {
    sleep_until(crate::arch::apic::uptime_ns() + ticks * 1_000_000_000 / crate::arch::apic::TICK_HZ)
}

/// Gives back the sleep queue's spare capacity (`leak`'s shrinkers).
pub fn shrink() {
    SLEEP_QUEUE.shrink();
    crate::syscall::shrink_pause_queue();
}
