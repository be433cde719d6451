//! Per-CPU data (Linux's `arch/x86/kernel/setup_percpu.c` and the `this_cpu_*` accessors):
//! one [`PerCpu`] per CPU, reached in kernel mode through the GS base (`swapgs` on every
//! entry from user mode).
//!
//! Layout the assembly depends on: offset 0 holds the running task's kernel stack top and
//! offset 8 is scratch for the user RSP (both used by `syscall_entry` before it has a
//! stack); offset 16 is the CPU's index, which [`cpu_id`] reads with one GS-relative load.
//!
//! API for the rest of the kernel: [`cpu_id`] (Linux's `smp_processor_id`), [`this_cpu`],
//! [`cpu`] (another CPU's record, for counters), [`nr_cpus_online`], [`cpu_online_mask`]
//! and [`CpuMask`]. A CPU's index is stable for the whole run; the boot CPU is 0 and the
//! application processors follow in MADT order. Callers that need the index stable across
//! a block run with interrupts masked or in a task, which kernel code never leaves while it
//! uses the index (the kernel is not preempted, and a task migrates only when it schedules).

use super::cpu::wrmsr;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

const IA32_GS_BASE: u32 = 0xc000_0101;
const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
const IA32_FS_BASE: u32 = 0xc000_0100;

/// CPUs the kernel has room for; the MADT may list more, which stay offline.
pub const MAX_CPUS: usize = 16;

/// One CPU's record. The first three fields are read by assembly at fixed offsets.
#[repr(C, align(64))]
pub struct PerCpu {
    /// Offset 0: top of the running task's kernel stack (read by `syscall_entry`).
    kernel_rsp: AtomicU64,
    /// Offset 8: the user RSP, saved by `syscall_entry` before it switches stacks.
    user_rsp_scratch: AtomicU64,
    /// Offset 16: this CPU's index (read by [`cpu_id`]).
    cpu: AtomicU32,
    /// The CPU's local APIC id (initial APIC id from CPUID), the target of its IPIs.
    apic_id: AtomicU32,
    /// Timer interrupts this CPU has taken.
    pub ticks: AtomicU64,
    /// Inter-processor interrupts this CPU has sent and received.
    pub ipi_sent: AtomicU64,
    pub ipi_received: AtomicU64,
    /// The newest kernel TLB-flush generation this CPU has carried out
    /// (`smp::flush_tlb_kernel_range`).
    pub tlb_flush_gen: AtomicU64,
    /// For the scheduler's per-CPU state (a pointer or an index it owns); 0 until it uses it.
    pub sched: AtomicUsize,
    /// The task running on this CPU (`Arc::as_ptr` of the scheduler's reference), 0 in
    /// the idle loop: [`this_cpu_current`] reads it without a lock.
    current: AtomicUsize,
    /// Set by the tick or a waker: the running task should give up the CPU at its next
    /// chance (Linux's TIF_NEED_RESCHED).
    pub need_resched: AtomicBool,
    /// Reschedule IPIs this CPU has received (the RES row of Linux's /proc/interrupts).
    pub resched_ipis: AtomicU64,
    /// Ticks that found this CPU in user mode (in a task with a positive nice value:
    /// `nice_ticks`), in the kernel, and idle (/proc/stat).
    pub user_ticks: AtomicU64,
    pub nice_ticks: AtomicU64,
    pub system_ticks: AtomicU64,
    pub idle_ticks: AtomicU64,
    /// Context switches this CPU made.
    pub switches: AtomicU64,
}

impl PerCpu {
    const fn new(cpu: u32) -> PerCpu {
        PerCpu {
            kernel_rsp: AtomicU64::new(0),
            user_rsp_scratch: AtomicU64::new(0),
            cpu: AtomicU32::new(cpu),
            apic_id: AtomicU32::new(0),
            ticks: AtomicU64::new(0),
            ipi_sent: AtomicU64::new(0),
            ipi_received: AtomicU64::new(0),
            tlb_flush_gen: AtomicU64::new(0),
            sched: AtomicUsize::new(0),
            current: AtomicUsize::new(0),
            need_resched: AtomicBool::new(false),
            resched_ipis: AtomicU64::new(0),
            user_ticks: AtomicU64::new(0),
            nice_ticks: AtomicU64::new(0),
            system_ticks: AtomicU64::new(0),
            idle_ticks: AtomicU64::new(0),
            switches: AtomicU64::new(0),
        }
    }

    /// This record's CPU index.
    pub fn index(&self) -> usize {
        self.cpu.load(Ordering::Relaxed) as usize
    }

    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed)
    }
}

const _: () = {
    assert!(core::mem::offset_of!(PerCpu, kernel_rsp) == 0);
    assert!(core::mem::offset_of!(PerCpu, user_rsp_scratch) == 8);
    assert!(core::mem::offset_of!(PerCpu, cpu) == 16);
};

static PERCPU: [PerCpu; MAX_CPUS] = {
    let mut a = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        a[i] = PerCpu::new(i as u32);
        i += 1;
    }
    a
};

/// Bit i set: CPU i is online (runs its idle loop and answers IPIs).
static ONLINE: AtomicU64 = AtomicU64::new(0);
/// Set once the boot CPU has finished starting the others.
static SMP_BOOTED: AtomicBool = AtomicBool::new(false);

/// A set of CPU indices (Linux's `cpumask`), up to 64 CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuMask(pub u64);

impl CpuMask {
    pub const fn empty() -> CpuMask {
        CpuMask(0)
    }

    pub fn set(&mut self, cpu: usize) {
        self.0 |= 1 << cpu;
    }

    pub fn clear(&mut self, cpu: usize) {
        self.0 &= !(1 << cpu);
    }

    pub fn contains(&self, cpu: usize) -> bool {
        cpu < 64 && self.0 & (1 << cpu) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn count(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The CPUs in the set, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> {
        let m = self.0;
        (0..64).filter(move |&i| m & (1 << i) != 0)
    }
}

/// Points GS at CPU `cpu`'s record; the first thing a CPU does in Rust (the boot CPU
/// before anything can call [`cpu_id`]). KERNEL_GS_BASE holds the user GS base (0) until
/// the first swapgs.
pub fn init_cpu(cpu: usize) {
    assert!(cpu < MAX_CPUS);
    // SAFETY: GS_BASE points at a static PerCpu that lives forever; nothing on this CPU
    // uses GS before this call, and user GS is swapped in only around user mode.
    unsafe {
        wrmsr(IA32_GS_BASE, core::ptr::addr_of!(PERCPU[cpu]) as u64);
        wrmsr(IA32_KERNEL_GS_BASE, 0);
    }
    let apic_id = super::cpu::cpuid(1, 0).ebx >> 24;
    PERCPU[cpu].apic_id.store(apic_id, Ordering::Relaxed);
}

/// This CPU's index (Linux's `smp_processor_id`): one GS-relative load, no lock.
#[inline]
pub fn cpu_id() -> usize {
    let id: u32;
    // SAFETY: in kernel mode GS_BASE points at this CPU's PerCpu (set by `init_cpu` before
    // any caller runs); offset 16 is its `cpu` field (checked at compile time above).
    unsafe {
        core::arch::asm!("mov {0:e}, dword ptr gs:[16]", out(reg) id, options(nostack, preserves_flags, readonly))
    };
    id as usize
}

/// This CPU's record.
pub fn this_cpu() -> &'static PerCpu {
    &PERCPU[cpu_id()]
}

/// CPU `cpu`'s record (counters of other CPUs; the fields are atomics).
pub fn cpu(cpu: usize) -> &'static PerCpu {
    &PERCPU[cpu]
}

/// The CPU whose local APIC id is `apic_id`, among those online.
pub fn cpu_of_apic_id(apic_id: u32) -> Option<usize> {
    cpu_online_mask().iter().find(|&c| PERCPU[c].apic_id() == apic_id)
}

/// Marks this CPU online (its idle loop runs and it answers IPIs).
pub fn set_online(cpu: usize) {
    ONLINE.fetch_or(1 << cpu, Ordering::SeqCst);
}

pub fn cpu_online_mask() -> CpuMask {
    CpuMask(ONLINE.load(Ordering::SeqCst))
}

pub fn nr_cpus_online() -> usize {
    cpu_online_mask().count()
}

/// Whether the boot CPU has finished bringing the others up (`smp::boot_secondary_cpus`).
pub fn smp_booted() -> bool {
    SMP_BOOTED.load(Ordering::Acquire)
}

pub fn set_smp_booted() {
    SMP_BOOTED.store(true, Ordering::Release);
}

/// Records the kernel stack of the task about to run on this CPU, for syscalls (GS) and
/// interrupts (TSS.RSP0).
pub fn set_kernel_stack(top: u64) {
    this_cpu().kernel_rsp.store(top, Ordering::Relaxed);
    super::gdt::set_kernel_stack(top);
}

/// Loads a task's user FS base (its TLS pointer, `arch_prctl(ARCH_SET_FS)`).
pub fn set_user_fs_base(base: u64) {
    // SAFETY: FS is not used by the kernel; the base is a user value checked canonical by callers.
    unsafe { wrmsr(IA32_FS_BASE, base) };
}

/// The user RSP saved by the current syscall's entry on this CPU.
pub fn user_rsp() -> u64 {
    this_cpu().user_rsp_scratch.load(Ordering::Relaxed)
}

/// Records `t` as the task running on this CPU (None: the idle loop). The scheduler calls
/// it with interrupts masked, and keeps the `Arc` it passes alive until it records another.
pub fn set_current<T>(t: Option<&Arc<T>>) {
    let p = t.map_or(0, |t| Arc::as_ptr(t) as usize);
    this_cpu().current.store(p, Ordering::Relaxed);
}

/// The task running on this CPU (Linux's `current`): one GS-relative record, no lock.
/// `T` must be the type the scheduler records with [`set_current`].
pub fn this_cpu_current<T>() -> Option<Arc<T>> {
    super::cpu::without_interrupts(|| {
        let p = this_cpu().current.load(Ordering::Relaxed) as *const T;
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` came from `Arc::as_ptr` of an `Arc<T>` the scheduler holds until it
        // records another task, and only this CPU records its own slot, in `schedule` with
        // interrupts masked; they are masked here, so the Arc lives while the count rises.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    })
}
