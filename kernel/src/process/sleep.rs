//! Timed sleeps (nanosleep, console polling).

use super::wait_queue::WaitQueue;
use crate::errno::*;

static SLEEP_QUEUE: WaitQueue = WaitQueue::new();

/// Sleeps until `deadline` (ns since boot); EINTR if a signal arrives first.
pub fn sleep_until(deadline: u64) -> KResult<()> {
    match SLEEP_QUEUE.wait_until_deadline(true, Some(deadline), || None::<()>) {
        Err(ETIMEDOUT) => Ok(()),
        Err(e) => Err(e),
        Ok(()) => Ok(()),
    }
}

pub fn sleep_ticks(ticks: u64) -> KResult<()> {
    sleep_until(crate::arch::apic::uptime_ns() + ticks * 1_000_000_000 / crate::arch::apic::TICK_HZ)
}
