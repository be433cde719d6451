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
    /// Inter-processor interrupts this CPU has sent and received, by kind (`IpiKind` as
    /// index; /proc/interrupts shows the received ones, as Linux's `irq_stat`).
    ipi_sent: [AtomicU64; IPI_KINDS],
    ipi_received: [AtomicU64; IPI_KINDS],
    /// The page-table root this CPU has loaded in CR3, and while it switches away from a
    /// root, that root (0 otherwise): together they make every address space's CPU mask
    /// (`mm::tlb`, which alone writes them, on the CPU itself).
    pub loaded_root: AtomicU64,
    pub switching_from: AtomicU64,
    /// The address of the loaded address space's `TlbCounters` (0: none), which this CPU
    /// counts its flushes of that address space into; read by this CPU only.
    pub loaded_mm_tlb: AtomicUsize,
    /// The TLB flushes of user address spaces this CPU carried out.
    pub tlb: TlbCounters,
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
            ipi_sent: [const { AtomicU64::new(0) }; IPI_KINDS],
            ipi_received: [const { AtomicU64::new(0) }; IPI_KINDS],
            loaded_root: AtomicU64::new(0),
            switching_from: AtomicU64::new(0),
            loaded_mm_tlb: AtomicUsize::new(0),
            tlb: TlbCounters::new(),
            tlb_flush_gen: AtomicU64::new(0),
            sched: AtomicUsize::new(0),
            current: AtomicUsize::new(0),
            need_resched: AtomicBool::new(false),
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

    /// IPIs of `kind` this CPU has received (its column of the row in /proc/interrupts).
    pub fn ipi_count(&self, kind: IpiKind) -> u64 {
        self.ipi_received[kind as usize].load(Ordering::Relaxed)
    }

    /// Interrupts the IPIs this CPU received took (reschedule and call-function: a TLB
    /// shootdown rides on a call-function IPI), for /proc/stat's `intr`.
    pub fn ipis_received(&self) -> u64 {
        self.ipi_count(IpiKind::Reschedule) + self.ipi_count(IpiKind::CallFunction)
    }

    /// IPIs of `kind` this CPU has sent.
    pub fn ipi_sent(&self, kind: IpiKind) -> u64 {
        self.ipi_sent[kind as usize].load(Ordering::Relaxed)
    }

    /// Counts one IPI of `kind` received (by its handler, on this CPU).
    pub fn note_ipi_received(&self, kind: IpiKind) {
        self.ipi_received[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` IPIs of `kind` sent (by the sender, on its CPU).
    pub fn note_ipi_sent(&self, kind: IpiKind, n: u64) {
        self.ipi_sent[kind as usize].fetch_add(n, Ordering::Relaxed);
    }
}

/// The kinds of inter-processor interrupt, as Linux's rows of /proc/interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiKind {
    /// `RES`: a reschedule IPI (the scheduler's, to make another CPU pick a task).
    Reschedule = 0,
    /// `CAL`: a call-function IPI (vector 0xfc); TLB shootdowns ride on these too, as on
    /// Linux 6.1, so each remote shootdown also counts here when it took an interrupt.
    CallFunction = 1,
    /// `TLB`: a request to flush a user address space: counted by the sender per target
    /// CPU and by the target when it carries the request out (Linux's `irq_tlb_count`).
    TlbShootdown = 2,
}

pub const IPI_KINDS: usize = 3;

impl IpiKind {
    pub const ALL: [IpiKind; IPI_KINDS] = [IpiKind::Reschedule, IpiKind::CallFunction, IpiKind::TlbShootdown];

    /// The row of /proc/interrupts and its description (Linux's `arch_show_interrupts`).
    pub fn proc_row(self) -> (&'static str, &'static str) {
        match self {
            IpiKind::Reschedule => ("RES", "Rescheduling interrupts"),
            IpiKind::CallFunction => ("CAL", "Function call interrupts"),
            IpiKind::TlbShootdown => ("TLB", "TLB shootdowns"),
        }
    }
}

/// Counts of TLB flushes of user address spaces, kept per CPU (`PerCpu::tlb`) and per
/// address space (`MmStruct::tlb`): shootdown requests carried out for another CPU, pages
/// flushed one by one (`invlpg`), range flushes done that way, and full flushes (CR3
/// reloads). Linux counts the like in /proc/vmstat (`nr_tlb_remote_flush_received`,
/// `nr_tlb_local_flush_one`, `nr_tlb_local_flush_all`), for the whole machine only.
pub struct TlbCounters {
    pub ipis: AtomicU64,
    pub pages: AtomicU64,
    pub ranges: AtomicU64,
    pub full: AtomicU64,
}

impl TlbCounters {
    pub const fn new() -> TlbCounters {
        TlbCounters {
            ipis: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            ranges: AtomicU64::new(0),
            full: AtomicU64::new(0),
        }
    }

    /// (ipis, pages, ranges, full).
    pub fn get(&self) -> (u64, u64, u64, u64) {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (l(&self.ipis), l(&self.pages), l(&self.ranges), l(&self.full))
    }
}

impl Default for TlbCounters {
    fn default() -> TlbCounters {
        TlbCounters::new()
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

/// An identity of the task running on this CPU (0 in the idle loop), for comparison only:
/// what [`running_anywhere`] looks for.
pub fn current_id() -> usize {
    this_cpu().current.load(Ordering::Relaxed)
}

/// Whether the task whose [`current_id`] is `id` runs on some CPU now (Linux's
/// `owner_on_cpu`). A snapshot: it may stop at once.
pub fn running_anywhere(id: usize) -> bool {
    id != 0 && cpu_online_mask().iter().any(|c| PERCPU[c].current.load(Ordering::Relaxed) == id)
}

/// The task running on this CPU (Linux's `current`): one GS-relative record, no lock.
/// `T` must be the type the scheduler records with [`set_current`].
/// Runs `f` on this CPU's current object without taking a reference (the return path's
/// quick look at its task). `f` must not switch tasks.
pub fn with_this_cpu_current<T, R>(f: impl FnOnce(&T) -> R) -> Option<R> {
    let p = this_cpu().current.load(Ordering::Relaxed) as *const T;
    // SAFETY: a non-null pointer came from `Arc::as_ptr` of an `Arc<T>` the scheduler holds
    // until this CPU records another task, which only `schedule` on this CPU does; the
    // kernel does not preempt itself, and `f` does not schedule, so it lives through `f`.
    (!p.is_null()).then(|| f(unsafe { &*p }))
}

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
