//! membarrier (Linux's kernel/sched/membarrier.c, 6.1): a memory barrier on every CPU
//! that runs threads of the caller's address space (the private commands) or of any
//! (the global ones), made by interrupting those CPUs: the interrupt and the return
//! from it are full barriers, and serializing (SYNC_CORE) on x86. The private commands
//! need the address space's registration first (EPERM without it); the RSEQ one also
//! restarts the restartable sequences those threads are in (`rseq_preempt`).

use crate::errno::*;
use core::sync::atomic::Ordering;

const CMD_QUERY: i32 = 0;
const CMD_GLOBAL: i32 = 1 << 0;
const CMD_GLOBAL_EXPEDITED: i32 = 1 << 1;
const CMD_REGISTER_GLOBAL_EXPEDITED: i32 = 1 << 2;
const CMD_PRIVATE_EXPEDITED: i32 = 1 << 3;
const CMD_REGISTER_PRIVATE_EXPEDITED: i32 = 1 << 4;
const CMD_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 1 << 5;
const CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 1 << 6;
const CMD_PRIVATE_EXPEDITED_RSEQ: i32 = 1 << 7;
const CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ: i32 = 1 << 8;
/// The commands 6.1 has (MEMBARRIER_CMD_GET_REGISTRATIONS came in 6.3).
const CMD_BITMASK: i32 = (1 << 9) - 1;
/// MEMBARRIER_CMD_FLAG_CPU: the RSEQ command aims at one CPU.
const FLAG_CPU: u32 = 1;

// `mm->membarrier_state` bits: registered (and ready) for each kind.
const STATE_GLOBAL_EXPEDITED: u32 = 1 << 0;
const STATE_PRIVATE_EXPEDITED: u32 = 1 << 1;
const STATE_PRIVATE_EXPEDITED_SYNC_CORE: u32 = 1 << 2;
const STATE_PRIVATE_EXPEDITED_RSEQ: u32 = 1 << 3;

/// The interrupt is the barrier.
fn ipi_mb(_: usize) {
    core::sync::atomic::fence(Ordering::SeqCst);
}

/// membarrier(cmd, flags, cpu_id).
pub fn sys_membarrier(cmd: i32, flags: u32, cpu_id: i32) -> KResult<usize> {
    if (cmd != CMD_PRIVATE_EXPEDITED_RSEQ && flags != 0) || flags & !FLAG_CPU != 0 {
        return Err(EINVAL);
    }
    let t = super::current();
    let mm = t.mm();
    let state = &mm.membarrier_state;
    let private = |need: u32| -> KResult<usize> {
        if state.load(Ordering::Acquire) & need == 0 {
            return Err(EPERM);
        }
        core::sync::atomic::fence(Ordering::SeqCst);
        let mask = crate::mm::tlb::mm_cpumask(mm.root());
        crate::arch::smp::smp_call_function_many(mask, ipi_mb, 0);
        core::sync::atomic::fence(Ordering::SeqCst);
        Ok(0)
    };
    match cmd {
        CMD_QUERY => Ok(CMD_BITMASK as usize),
        CMD_GLOBAL | CMD_GLOBAL_EXPEDITED => {
            core::sync::atomic::fence(Ordering::SeqCst);
            crate::arch::smp::smp_call_function_many(crate::arch::percpu::cpu_online_mask(), ipi_mb, 0);
            core::sync::atomic::fence(Ordering::SeqCst);
            Ok(0)
        }
        CMD_REGISTER_GLOBAL_EXPEDITED => {
            state.fetch_or(STATE_GLOBAL_EXPEDITED, Ordering::Release);
            Ok(0)
        }
        CMD_REGISTER_PRIVATE_EXPEDITED => {
            state.fetch_or(STATE_PRIVATE_EXPEDITED, Ordering::Release);
            Ok(0)
        }
        CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            state.fetch_or(STATE_PRIVATE_EXPEDITED_SYNC_CORE, Ordering::Release);
            Ok(0)
        }
        CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ => {
            state.fetch_or(STATE_PRIVATE_EXPEDITED_RSEQ, Ordering::Release);
            Ok(0)
        }
        CMD_PRIVATE_EXPEDITED => private(STATE_PRIVATE_EXPEDITED),
        CMD_PRIVATE_EXPEDITED_SYNC_CORE => private(STATE_PRIVATE_EXPEDITED_SYNC_CORE),
        CMD_PRIVATE_EXPEDITED_RSEQ => {
            if flags & FLAG_CPU != 0 {
                let online = crate::arch::percpu::cpu_online_mask();
                if cpu_id < 0 || !online.contains(cpu_id as usize) {
                    return Err(EINVAL);
                }
            }
            if state.load(Ordering::Acquire) & STATE_PRIVATE_EXPEDITED_RSEQ == 0 {
                return Err(EPERM);
            }
            // Every other thread of the address space restarts its sequence on its way
            // back to user mode, which the interrupt forces for a running one.
            for other in t.process.threads.lock().iter() {
                if !alloc::sync::Arc::ptr_eq(other, &t) {
                    other.rseq.preempt();
                }
            }
            private(STATE_PRIVATE_EXPEDITED_RSEQ)
        }
        _ => Err(EINVAL),
    }
}
