//! `IrqMutex`: a spinlock that masks interrupts while held. Every lock that
//! an interrupt handler may take — directly or through a heap allocation,
//! which can grow the heap and take the frame allocator and kernel page-table
//! locks — must be one, or an interrupt arriving while its holder runs would
//! spin forever on one CPU.
//!
//! `rwsem`: the sleeping reader-writer semaphore (Linux's `rw_semaphore`).
#![deny(unsafe_code)]

pub mod rwsem;

pub use rwsem::RwSem;

use crate::arch::cpu;
use core::ops::{Deref, DerefMut};
use spin::{Mutex, MutexGuard};

pub struct IrqMutex<T> {
    inner: Mutex<T>,
}

pub struct IrqMutexGuard<'a, T> {
    guard: Option<MutexGuard<'a, T>>,
    enable_on_drop: bool,
}

impl<T> IrqMutex<T> {
    pub const fn new(value: T) -> Self {
        IrqMutex { inner: Mutex::new(value) }
    }

    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let was_enabled = cpu::interrupts_enabled();
        if was_enabled {
            cpu::disable_interrupts();
        }
        IrqMutexGuard { guard: Some(self.inner.lock()), enable_on_drop: was_enabled }
    }

    /// For panic and fault reports only: the lock if it is free now.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let was_enabled = cpu::interrupts_enabled();
        if was_enabled {
            cpu::disable_interrupts();
        }
        match self.inner.try_lock() {
            Some(g) => Some(IrqMutexGuard { guard: Some(g), enable_on_drop: was_enabled }),
            None => {
                if was_enabled {
                    cpu::enable_interrupts();
                }
                None
            }
        }
    }
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().unwrap()
    }
}

impl<T> DerefMut for IrqMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().unwrap()
    }
}

impl<T> Drop for IrqMutexGuard<'_, T> {
    fn drop(&mut self) {
        // Unlock first, then let interrupts in.
        drop(self.guard.take());
        if self.enable_on_drop {
            cpu::enable_interrupts();
        }
    }
}
