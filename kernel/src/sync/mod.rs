//! The kernel's locks (Linux's `spinlock_t` and `spin_lock_irqsave`), each of a
//! named class with a level (`order.rs`, the lock order), checked by `lockdep.rs`.
//!
//! - `SpinLock<T, C>`: a spinlock of class `C`, taken with interrupts as they are.
//! - `IrqMutex<T, C>`: a spinlock that masks interrupts while held. Every lock
//!   that an interrupt handler may take — directly or through a heap allocation,
//!   which can grow the heap and take the frame allocator and kernel page-table
//!   locks — must be one, or an interrupt arriving while its holder runs would
//!   spin forever on one CPU.
//!
//! `lock` checks the order (in a checking build, see `lockdep::ENABLED`) before it
//! spins, so an out-of-order acquisition is reported even where it would deadlock.
//! `try_lock` is for panic and fault reports only: it is exempt from the order
//! and not recorded.
//!
//! `RwSem`: the sleeping reader-writer semaphore (Linux's `rw_semaphore`), `rwsem.rs`.
#![deny(unsafe_code)]

pub mod lockdep;
pub mod order;
pub mod rwsem;

pub use rwsem::RwSem;

use crate::arch::cpu;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
pub use order::LockClass;

pub struct SpinLock<T, C> {
    inner: spin::Mutex<T>,
    class: PhantomData<fn() -> C>,
}

pub struct SpinLockGuard<'a, T> {
    guard: spin::MutexGuard<'a, T>,
    /// The lock's address while lockdep records it as held; 0 for a try-lock.
    held: usize,
}

impl<T, C: LockClass> SpinLock<T, C> {
    pub const fn new(value: T) -> Self {
        SpinLock { inner: spin::Mutex::new(value), class: PhantomData }
    }

    #[track_caller]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        self.lock_nested(0)
    }

    /// Takes a second lock of a class already held (Linux's `spin_lock_nested`): the
    /// caller orders the locks of one class by `subclass`, which must grow.
    #[track_caller]
    pub fn lock_nested(&self, subclass: u8) -> SpinLockGuard<'_, T> {
        let held = self.addr();
        lockdep::acquire(C::NAME, C::LEVEL, subclass, held, core::panic::Location::caller());
        SpinLockGuard { guard: spin_acquire(&self.inner), held }
    }

    /// For panic and fault reports only: the lock if it is free now.
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        self.inner.try_lock().map(|guard| SpinLockGuard { guard, held: 0 })
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    fn addr(&self) -> usize {
        self as *const Self as *const () as usize
    }
}

impl<T: Default, C: LockClass> Default for SpinLock<T, C> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        if self.held != 0 {
            lockdep::release(self.held);
        }
    }
}

pub struct IrqMutex<T, C> {
    inner: spin::Mutex<T>,
    class: PhantomData<fn() -> C>,
}

pub struct IrqMutexGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    enable_on_drop: bool,
    /// As `SpinLockGuard::held`.
    held: usize,
}

impl<T, C: LockClass> IrqMutex<T, C> {
    pub const fn new(value: T) -> Self {
        IrqMutex { inner: spin::Mutex::new(value), class: PhantomData }
    }

    #[track_caller]
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        self.lock_nested(0)
    }

    /// Takes a second lock of a class already held, as `SpinLock::lock_nested`: the
    /// caller orders the locks of the class by `subclass` (the run queues by CPU).
    #[track_caller]
    pub fn lock_nested(&self, subclass: u8) -> IrqMutexGuard<'_, T> {
        let was_enabled = cpu::interrupts_enabled();
        if was_enabled {
            cpu::disable_interrupts();
        }
        let held = self as *const Self as *const () as usize;
        lockdep::acquire(C::NAME, C::LEVEL, subclass, held, core::panic::Location::caller());
        IrqMutexGuard { guard: Some(spin_acquire(&self.inner)), enable_on_drop: was_enabled, held }
    }

    /// For panic and fault reports only: the lock if it is free now.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let was_enabled = cpu::interrupts_enabled();
        if was_enabled {
            cpu::disable_interrupts();
        }
        match self.inner.try_lock() {
            Some(g) => Some(IrqMutexGuard { guard: Some(g), enable_on_drop: was_enabled, held: 0 }),
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
        if self.held != 0 {
            lockdep::release(self.held);
        }
        if self.enable_on_drop {
            cpu::enable_interrupts();
        }
    }
}

/// Spins for `lock`, running this CPU's cross-CPU call requests meanwhile: the holder may
/// be waiting for this CPU to acknowledge one (a TLB shootdown under the kernel page-table
/// lock), and with interrupts masked no IPI gets in.
fn spin_acquire<T>(lock: &spin::Mutex<T>) -> spin::MutexGuard<'_, T> {
    loop {
        if let Some(g) = lock.try_lock() {
            return g;
        }
        while lock.is_locked() {
            crate::arch::smp::flush_smp_call_function_queue();
            core::hint::spin_loop();
        }
    }
}
