//! The other CPUs: bring-up, cross-CPU function calls and kernel TLB shootdown.
//! Linux: arch/x86/kernel/smpboot.c (`native_smp_prepare_cpus`, `do_boot_cpu`,
//! `wakeup_secondary_cpu_via_init`, `start_secondary`), arch/x86/realmode/rm/trampoline_64.S,
//! kernel/smp.c (`smp_call_function_single`, `smp_call_function_many`, `on_each_cpu`,
//! `flush_smp_call_function_queue`) and arch/x86/mm/tlb.c (`flush_tlb_kernel_range`,
//! `flush_tlb_all`).
//!
//! **Bring-up.** The boot CPU copies a real-mode trampoline to a page below 1 MiB (the
//! frame allocator never hands out memory there) and starts each CPU the MADT lists with
//! INIT, then two startup IPIs naming that page. The trampoline goes 16 -> 32 -> 64 bit on
//! a throwaway page table: the kernel half of the kernel's root plus an identity map of the
//! first 2 MiB, which the CPU needs while paging switches on under its feet. It then jumps
//! to [`start_secondary`] in the higher half on its own kernel stack, which loads the
//! kernel's root (no identity map: nothing user-visible is left behind), points GS at its
//! `PerCpu`, loads its own GDT and TSS (IST stacks for #DF, NMI, #MC), the shared IDT, the
//! SYSCALL MSRs, and starts its LAPIC timer at the boot CPU's calibrated period. It reports
//! online and enters the scheduler's idle loop (`sched::idle_loop`), as the boot CPU does
//! once the kernel has started init: from then on it runs tasks from its own run queue.
//! The boot CPU waits for each CPU
//! (2 s); one that never reports is logged, parked with INIT and left out. CPUs start one
//! at a time, so one trampoline page and one set of trampoline parameters serve them all.
//!
//! **Function calls.** Each CPU has a lock-free queue of call requests (Linux's
//! `call_single_queue`, an llist): the caller puts a request on each target's queue, sends
//! the call-function IPI to a target whose queue was empty, and spins until every target
//! has run the function and cleared the request's `pending` flag. Requests live on the
//! caller's stack: it never returns before they are all done, and a target reads
//! everything it needs from a request before clearing the flag. While it spins the caller
//! runs its own queue, and so does every CPU spinning on an `IrqMutex` (`sync`), so two
//! CPUs calling each other, or a caller holding a lock its target waits for with
//! interrupts masked, cannot deadlock. Call functions run in interrupt context or from such
//! a spin loop, with interrupts masked: they must be short and take no lock.
//!
//! **Kernel TLB shootdown.** Kernel-half mappings are global and shared by every address
//! space, so removing one ([`flush_tlb_kernel_range`], [`flush_tlb_kernel_all`]) flushes
//! every online CPU and returns only when all have done it; each CPU records the newest
//! flush generation it carried out (`PerCpu::tlb_flush_gen`).

use super::percpu::{self, CpuMask, IpiKind, MAX_CPUS};
use super::{apic, cpu, gdt, trap};
use crate::mm::frame::{self, PhysFrame, BOOT_MAPPED_LIMIT};
use crate::mm::{kernel_map, phys_to_virt, PAGE_SIZE};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

core::arch::global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .balign 16
    .global ap_trampoline_start
    .global ap_trampoline_end
    .global ap_tr_gdt_ptr
    .global ap_tr_pm_target
    .global ap_tr_lm_target
    .global ap_tr_cr3
    .global ap_tr_stack
    .global ap_tr_cpu
    .code16
ap_trampoline_start:
    cli
    cld
    xor %ebx, %ebx
    mov %cs, %bx
    shl $4, %ebx                        /* ebx = physical base of the trampoline page */
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (ap_tr_gdt_ptr - ap_trampoline_start)
    mov %cr0, %eax
    or $1, %eax                         /* CR0.PE */
    mov %eax, %cr0
    ljmpl *(ap_tr_pm_target - ap_trampoline_start)

    .code32
ap_tr_protected:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $((1 << 5) | (1 << 7)), %eax     /* CR4.PAE | CR4.PGE */
    mov %eax, %cr4
    mov (ap_tr_cr3 - ap_trampoline_start)(%ebx), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx               /* IA32_EFER */
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax    /* LME | NXE */
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16) | 1), %eax   /* PG | WP | PE */
    mov %eax, %cr0
    ljmp *(ap_tr_lm_target - ap_trampoline_start)(%ebx)

    .code64
ap_tr_long:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov (ap_tr_stack - ap_trampoline_start)(%rbx), %rsp
    mov (ap_tr_cpu - ap_trampoline_start)(%rbx), %rdi
    movabs $start_secondary, %rax
    call *%rax
1:  hlt
    jmp 1b

    .balign 8
ap_tr_gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: data */
    .quad 0x00cf9a000000ffff            /* 0x18: 32-bit code */
ap_tr_gdt_ptr:
    .word ap_tr_gdt_ptr - ap_tr_gdt - 1
    .long ap_tr_gdt - ap_trampoline_start   /* + page base, by the boot CPU */
    .balign 4
ap_tr_pm_target:
    .long ap_tr_protected - ap_trampoline_start /* + page base */
    .word 0x18
ap_tr_lm_target:
    .long ap_tr_long - ap_trampoline_start  /* + page base */
    .word 0x08
    .balign 8
ap_tr_cr3:   .quad 0
ap_tr_stack: .quad 0
ap_tr_cpu:   .quad 0
ap_trampoline_end:
    .code64
    "#,
    options(att_syntax)
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_tr_gdt_ptr: u8;
    static ap_tr_pm_target: u8;
    static ap_tr_lm_target: u8;
    static ap_tr_cr3: u8;
    static ap_tr_stack: u8;
    static ap_tr_cpu: u8;
}

/// Kernel stack of a secondary CPU's idle loop (and of its interrupts).
const AP_STACK_ORDER: usize = 3;
/// Each IST stack: 16 KiB.
const IST_ORDER: usize = 2;
/// How long the boot CPU waits for a started CPU to report online.
const ONLINE_TIMEOUT_NS: u64 = 2_000_000_000;
/// How long a caller waits for a call function's acknowledgement before declaring a hang.
const CALL_TIMEOUT_NS: u64 = 20_000_000_000;

/// The kernel's root, which a started CPU loads once it runs in the higher half.
static KERNEL_CR3: AtomicU64 = AtomicU64::new(0);
/// Per CPU: the tops of its #DF, NMI and #MC stacks, set before it is started.
static IST_TOPS: [[AtomicU64; 3]; MAX_CPUS] = [const { [const { AtomicU64::new(0) }; 3] }; MAX_CPUS];

/// The page below 1 MiB the trampoline is copied to: the highest whole RAM page under the
/// EBDA's usual start (0x9f000), above page 0 (the real-mode IVT).
fn trampoline_page(boot: &super::pvh::BootInfo) -> Option<u64> {
    boot.memmap
        .iter()
        .filter(|e| e.kind == super::pvh::MEMMAP_RAM)
        .filter_map(|e| {
            let start = crate::mm::align_up(e.addr.max(PAGE_SIZE), PAGE_SIZE);
            let end = crate::mm::align_down((e.addr + e.size).min(0x9f000), PAGE_SIZE);
            (end > start).then(|| end - PAGE_SIZE)
        })
        .max()
}

/// A throwaway root for the trampoline: the kernel half of the kernel's root and an
/// identity map of the first 2 MiB. Returns its three frames (PML4, PDPT, PD).
fn build_trampoline_root() -> Option<[PhysFrame; 3]> {
    let mut frames = [PhysFrame(0), PhysFrame(0), PhysFrame(0)];
    for i in 0..3 {
        match frame::alloc_frames_nofail(0, Some(BOOT_MAPPED_LIMIT)) {
            Some(f) => {
                frame::zero_frame(f);
                frames[i] = f;
            }
            None => {
                for &f in &frames[..i] {
                    frame::free_frames(f, 0);
                }
                return None;
            }
        }
    }
    let [pml4, pdpt, pd] = [frames[0].0, frames[1].0, frames[2].0];
    const PRESENT_RW: u64 = 0x3;
    const HUGE: u64 = 0x80;
    kernel_map::write_pte(pd, 0, HUGE | PRESENT_RW); // 0..2 MiB, executable
    kernel_map::write_pte(pdpt, 0, pd | PRESENT_RW);
    kernel_map::write_pte(pml4, 0, pdpt | PRESENT_RW);
    kernel_map::copy_kernel_half(pml4);
    Some(frames)
}

/// Starts every CPU the MADT lists besides this one and prints `smp: N CPUs online`.
/// Runs on the boot CPU once its LAPIC timer runs and interrupts are on.
pub fn boot_secondary_cpus(boot: &super::pvh::BootInfo) {
    percpu::set_online(0);
    let me = percpu::this_cpu().apic_id();
    let others: arrayvec::ArrayVec<u32, MAX_CPUS> =
        super::acpi::cpu_apic_ids().iter().copied().filter(|&id| id != me).collect();
    if !others.is_empty() {
        start_cpus(boot, &others);
    }
    percpu::set_smp_booted();
    crate::println!("smp: {} CPUs online", percpu::nr_cpus_online());
}

/// Starts the CPUs with local APIC ids `apic_ids`, one at a time.
fn start_cpus(boot: &super::pvh::BootInfo, apic_ids: &[u32]) {
    let (Some(page), Some(root)) = (trampoline_page(boot), build_trampoline_root()) else {
        log::warn!("smp: no trampoline page below 1 MiB or no memory for its tables; one CPU");
        return;
    };
    KERNEL_CR3.store(kernel_map::kernel_root(), Ordering::Relaxed);
    let (start, end) = (&raw const ap_trampoline_start as u64, &raw const ap_trampoline_end as u64);
    let len = (end - start) as usize;
    assert!(len <= PAGE_SIZE as usize);
    let dst = phys_to_virt(page);
    // SAFETY: `page` is RAM below 1 MiB, mapped by the direct map and used by nothing else
    // (the frame allocator never hands out memory below 1 MiB); the source is `len` bytes of
    // rodata.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, dst as *mut u8, len) };
    let at = |off: u64| dst + off;
    let patch32 = |off: u64, add: u64| {
        let p = at(off) as *mut u32;
        // SAFETY: a 4-byte field inside the copied trampoline (offsets of the symbols above).
        unsafe { p.write_unaligned(p.read_unaligned() + add as u32) }
    };
    let set64 = |off: u64, value: u64| {
        // SAFETY: an 8-byte field inside the copied trampoline.
        unsafe { (at(off) as *mut u64).write_volatile(value) }
    };
    let [gdt_ptr, pm_target, lm_target, cr3, stack_field, cpu_field] = [
        &raw const ap_tr_gdt_ptr,
        &raw const ap_tr_pm_target,
        &raw const ap_tr_lm_target,
        &raw const ap_tr_cr3,
        &raw const ap_tr_stack,
        &raw const ap_tr_cpu,
    ]
    .map(|p| p as u64 - start);
    patch32(gdt_ptr + 2, page); // the GDT's base, after the 2-byte limit
    patch32(pm_target, page);
    patch32(lm_target, page);
    set64(cr3, root[0].0);

    let mut next = 1;
    for &apic_id in apic_ids {
        if next >= MAX_CPUS {
            log::warn!("smp: no room for APIC id {}", apic_id);
            continue;
        }
        let cpu = next;
        let Some(stack) = frame::alloc_frames_nofail(AP_STACK_ORDER, None) else {
            log::warn!("smp: no memory for CPU {}'s stack; left out", cpu);
            break;
        };
        let mut ok = true;
        for (i, slot) in IST_TOPS[cpu].iter().enumerate() {
            match frame::alloc_frames_nofail(IST_ORDER, None) {
                Some(f) => slot.store(phys_to_virt(f.0) + (PAGE_SIZE << IST_ORDER), Ordering::Relaxed),
                None => {
                    log::warn!("smp: no memory for CPU {}'s IST stack {}; left out", cpu, i);
                    ok = false;
                }
            }
        }
        if !ok {
            break;
        }
        set64(stack_field, phys_to_virt(stack.0) + (PAGE_SIZE << AP_STACK_ORDER));
        set64(cpu_field, cpu as u64);
        core::sync::atomic::fence(Ordering::SeqCst);
        if wakeup_secondary_cpu_via_init(apic_id, (page >> 12) as u8, cpu) {
            log::info!("smp: CPU {} (APIC id {}) online", cpu, apic_id);
            next += 1;
        } else {
            log::warn!("smp: CPU with APIC id {} did not come up in 2 s; left out", apic_id);
            apic::send_init(apic_id); // parked: it must not run the trampoline later
        }
    }
    for f in root {
        frame::free_frames(f, 0);
    }
}

/// INIT, then two startup IPIs (Intel SDM Vol. 3A 8.4.4.1, Linux's
/// `wakeup_secondary_cpu_via_init`); waits for CPU `cpu` to report online.
fn wakeup_secondary_cpu_via_init(apic_id: u32, page: u8, cpu: usize) -> bool {
    apic::send_init(apic_id);
    apic::udelay(10_000);
    for _ in 0..2 {
        apic::send_startup(apic_id, page);
        apic::udelay(200);
        if percpu::cpu_online_mask().contains(cpu) {
            break;
        }
    }
    let deadline = apic::uptime_ns() + ONLINE_TIMEOUT_NS;
    while !percpu::cpu_online_mask().contains(cpu) {
        if apic::uptime_ns() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// The first Rust code of a secondary CPU, called by the trampoline on the CPU's own stack
/// with the trampoline's page table loaded.
#[no_mangle]
extern "C" fn start_secondary(cpu: u64) -> ! {
    let cpu = cpu as usize;
    percpu::init_cpu(cpu);
    // SAFETY: the kernel's root maps everything this CPU runs from (the kernel image, its
    // stack in the direct map); it drops the trampoline's identity map.
    unsafe { cpu::write_cr3(KERNEL_CR3.load(Ordering::Relaxed)) };
    super::init_cpu_features();
    let ist = [0, 1, 2].map(|i| IST_TOPS[cpu][i].load(Ordering::Relaxed));
    gdt::init_cpu(cpu, ist);
    trap::load_idt();
    super::syscall::init();
    apic::init_ap();
    percpu::set_online(cpu);
    // Anything it cached before it was online (and so before shootdowns reached it) goes.
    cpu::flush_tlb_global();
    crate::process::sched::idle_loop()
}

/// Runs the job [`run_on_idle`] posted for this CPU, if any; called by the scheduler's
/// idle loop with interrupts enabled. True if there was one.
pub fn run_idle_job() -> bool {
    let cpu = percpu::cpu_id();
    let job = IDLE_JOB[cpu].load(Ordering::Acquire);
    if job == 0 {
        return false;
    }
    // SAFETY: `run_on_idle` stored a valid `fn(usize)` pointer here.
    let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(job) };
    f(IDLE_ARG[cpu].load(Ordering::Relaxed));
    IDLE_JOB[cpu].store(0, Ordering::Release);
    true
}

/// Whether a job waits for this CPU's idle loop (checked with interrupts masked before
/// it halts).
pub fn idle_job_pending() -> bool {
    IDLE_JOB[percpu::cpu_id()].load(Ordering::Acquire) != 0
}

/// The reschedule IPI to `cpu` (Linux's `smp_send_reschedule`): it returns from its halt
/// or, at its next return to user mode, schedules.
pub fn smp_send_reschedule(cpu: usize) {
    percpu::this_cpu().note_ipi_sent(percpu::IpiKind::Reschedule, 1);
    apic::send_ipi(percpu::cpu(cpu).apic_id(), trap::VECTOR_RESCHEDULE as u8);
}

/// Per CPU: a job for its idle loop (a `fn(usize)` as an address, 0 if none) and its argument.
static IDLE_JOB: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static IDLE_ARG: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// Runs `f(arg)` on secondary CPU `cpu`'s idle loop, with interrupts on (unlike a call
/// function, it may spin, call other CPUs and take locks), and waits for it to finish,
/// running this CPU's call requests meanwhile. For the in-kernel tests, which run before
/// any task exists. False if `cpu` is not an online secondary CPU or already has a job.
pub fn run_on_idle(cpu: usize, f: fn(usize), arg: usize) -> bool {
    if !start_on_idle(cpu, f, arg) {
        return false;
    }
    wait_on_idle(cpu);
    true
}

/// Posts `f(arg)` to secondary CPU `cpu`'s idle loop, as [`run_on_idle`], but returns at
/// once: several CPUs can then run jobs at the same time. [`wait_on_idle`] waits for it.
pub fn start_on_idle(cpu: usize, f: fn(usize), arg: usize) -> bool {
    if cpu == 0 || cpu >= MAX_CPUS || !percpu::cpu_online_mask().contains(cpu) || cpu == percpu::cpu_id() {
        return false;
    }
    IDLE_ARG[cpu].store(arg, Ordering::Relaxed);
    if IDLE_JOB[cpu].compare_exchange(0, f as usize, Ordering::Release, Ordering::Relaxed).is_err() {
        return false;
    }
    // Wakes its halt; the loop looks at the job after every interrupt.
    let _ = smp_call_function_single(cpu, |_| {}, 0);
    true
}

/// Waits until CPU `cpu`'s idle loop has finished its job, running this CPU's call
/// requests meanwhile.
pub fn wait_on_idle(cpu: usize) {
    while cpu < MAX_CPUS && IDLE_JOB[cpu].load(Ordering::Acquire) != 0 {
        flush_smp_call_function_queue();
        core::hint::spin_loop();
    }
}

/// One request in a CPU's call queue (Linux's `call_single_data`).
struct CallSingleData {
    func: fn(usize),
    arg: usize,
    next: AtomicPtr<CallSingleData>,
    pending: AtomicBool,
}

/// Per CPU: the head of its queue of call requests (null: empty).
static CALL_QUEUE: [AtomicPtr<CallSingleData>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];

/// Puts `csd` on `cpu`'s queue (Linux's `llist_add`); true if the queue was empty, when
/// the target needs an IPI (otherwise one is already on its way or being handled).
fn enqueue(cpu: usize, csd: *mut CallSingleData) -> bool {
    let q = &CALL_QUEUE[cpu];
    let mut head = q.load(Ordering::Relaxed);
    loop {
        // SAFETY: `csd` is the caller's request, not yet visible to any other CPU.
        unsafe { (*csd).next.store(head, Ordering::Relaxed) };
        match q.compare_exchange_weak(head, csd, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return head.is_null(),
            Err(h) => head = h,
        }
    }
}

/// Runs every call request queued for this CPU (Linux's `flush_smp_call_function_queue`).
/// Called by the IPI handler, by callers waiting for their own requests, and by lock spin
/// loops.
pub fn flush_smp_call_function_queue() {
    let q = &CALL_QUEUE[percpu::cpu_id()];
    if q.load(Ordering::Relaxed).is_null() {
        return;
    }
    let mut p = q.swap(core::ptr::null_mut(), Ordering::AcqRel);
    while !p.is_null() {
        // SAFETY: a queued request stays valid until its `pending` flag is cleared: its
        // caller spins until then. Everything needed is read before the clear.
        let (func, arg, next) = unsafe { ((*p).func, (*p).arg, (*p).next.load(Ordering::Relaxed)) };
        func(arg);
        // SAFETY: as above; after this store the request is not touched again.
        unsafe { (*p).pending.store(false, Ordering::Release) };
        p = next;
    }
}

/// The call-function IPI's handler.
pub fn call_function_interrupt() {
    percpu::this_cpu().note_ipi_received(IpiKind::CallFunction);
    flush_smp_call_function_queue();
}

/// The call-function IPI to `cpu`.
fn send_call_ipi(cpu: usize) {
    percpu::this_cpu().note_ipi_sent(IpiKind::CallFunction, 1);
    apic::send_ipi(percpu::cpu(cpu).apic_id(), trap::VECTOR_CALL_FUNCTION as u8);
}

/// Runs `func(arg)` on every online CPU in `mask` except this one and waits until all have
/// (Linux's `smp_call_function_many` with `wait`). The rules for `func` are in the module
/// header: short, no locks. Callable with interrupts masked and with locks held.
pub fn smp_call_function_many(mask: CpuMask, func: fn(usize), arg: usize) {
    let me = percpu::cpu_id();
    let mut targets = CpuMask(mask.0 & percpu::cpu_online_mask().0);
    targets.clear(me);
    if targets.is_empty() {
        return;
    }
    let csd: [CallSingleData; MAX_CPUS] = core::array::from_fn(|_| CallSingleData {
        func,
        arg,
        next: AtomicPtr::new(core::ptr::null_mut()),
        pending: AtomicBool::new(true),
    });
    for cpu in targets.iter() {
        if enqueue(cpu, &csd[cpu] as *const CallSingleData as *mut CallSingleData) {
            send_call_ipi(cpu);
        }
    }
    let start = apic::uptime_ns();
    for cpu in targets.iter() {
        while csd[cpu].pending.load(Ordering::Acquire) {
            // Requests to this CPU are answered while it waits: two CPUs calling each
            // other both make progress.
            flush_smp_call_function_queue();
            core::hint::spin_loop();
            if apic::uptime_ns() - start > CALL_TIMEOUT_NS {
                panic!(
                    "smp: CPU {} waited {} s for CPU {} to run a call function",
                    me,
                    CALL_TIMEOUT_NS / 1_000_000_000,
                    cpu
                );
            }
        }
    }
}

/// The CPU is not online.
#[derive(Debug, PartialEq, Eq)]
pub struct NotOnline;

/// Runs `func(arg)` on `cpu` and waits for it (Linux's `smp_call_function_single` with
/// `wait`); on this CPU it runs directly, with interrupts masked as on any other.
pub fn smp_call_function_single(cpu: usize, func: fn(usize), arg: usize) -> Result<(), NotOnline> {
    if cpu == percpu::cpu_id() {
        cpu::without_interrupts(|| func(arg));
        return Ok(());
    }
    if cpu >= MAX_CPUS || !percpu::cpu_online_mask().contains(cpu) {
        return Err(NotOnline);
    }
    let mut mask = CpuMask::empty();
    mask.set(cpu);
    smp_call_function_many(mask, func, arg);
    Ok(())
}

/// Runs `func(arg)` on every online CPU, this one included, and waits (Linux's `on_each_cpu`).
pub fn on_each_cpu(func: fn(usize), arg: usize) {
    smp_call_function_many(percpu::cpu_online_mask(), func, arg);
    cpu::without_interrupts(|| func(arg));
}

/// Above this many pages a kernel range flush drops every translation instead.
const INVLPG_MAX: u64 = 32;
/// The last kernel flush generation handed out.
static KERNEL_FLUSH_GEN: AtomicU64 = AtomicU64::new(0);

struct KernelFlush {
    start: u64,
    end: u64,
    generation: u64,
}

fn do_kernel_flush(arg: usize) {
    // SAFETY: `arg` is the address of the `KernelFlush` on the stack of a caller that waits
    // for every CPU to return from here.
    let info = unsafe { &*(arg as *const KernelFlush) };
    if info.end.saturating_sub(info.start) / PAGE_SIZE > INVLPG_MAX {
        cpu::flush_tlb_global();
    } else {
        let mut va = info.start;
        while va < info.end {
            cpu::invlpg(va);
            va += PAGE_SIZE;
        }
    }
    percpu::this_cpu().tlb_flush_gen.fetch_max(info.generation, Ordering::Relaxed);
}

/// Drops the translations of kernel addresses [start, end) on every online CPU and waits
/// until all have (Linux's `flush_tlb_kernel_range`): after a kernel-half unmap, before the
/// page or table is freed. Returns the flush's generation.
pub fn flush_tlb_kernel_range(start: u64, end: u64) -> u64 {
    let generation = KERNEL_FLUSH_GEN.fetch_add(1, Ordering::SeqCst) + 1;
    let info = KernelFlush { start, end, generation };
    on_each_cpu(do_kernel_flush, &info as *const KernelFlush as usize);
    generation
}

/// Drops every translation, global ones included, on every online CPU (Linux's `flush_tlb_all`).
pub fn flush_tlb_kernel_all() -> u64 {
    flush_tlb_kernel_range(0, u64::MAX)
}

pub mod tests;
