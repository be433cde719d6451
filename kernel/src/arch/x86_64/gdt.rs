//! GDT and TSS, one of each per CPU (Linux's `arch/x86/kernel/cpu/common.c`, `cpu_init`
//! and the per-CPU `gdt_page`/`cpu_tss_rw`). The selector order is fixed by SYSCALL/SYSRET (issue 3):
//! kernel code, kernel data, then user data before user code, so that
//! STAR can derive both user selectors from one base.
//!
//! The TSS gives the double fault, NMI and machine check handlers their own
//! stacks (IST): a kernel stack overflow faults on the guard page, the CPU
//! cannot push the page-fault frame onto the same stack, and the resulting
//! double fault must still find a good stack to report it.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

use super::percpu::MAX_CPUS;

pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;
/// Bytes of each IST stack.
pub const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(align(16))]
#[allow(dead_code)] // only the CPU uses the bytes
struct IstStack([u8; IST_STACK_SIZE]);
/// The boot CPU's IST stacks; the others get theirs from frames (`smp`).
static mut IST_STACKS: [IstStack; 3] = [const { IstStack([0; IST_STACK_SIZE]) }; 3];

pub struct Selectors {
    pub kernel_code: SegmentSelector,
    pub kernel_data: SegmentSelector,
    pub user_data: SegmentSelector,
    pub user_code: SegmentSelector,
    pub tss: SegmentSelector,
}

/// The GDT entry whose limit holds its CPU's number (Linux's `GDT_ENTRY_CPUNODE`): the
/// vDSO's getcpu reads it with LSL through selector `7 * 8 + 3` (kernel/vdso/vdso.c).
pub const GDT_ENTRY_CPUNODE: u16 = 7;

/// CPU `cpu`'s CPUNODE descriptor (`setup_getcpu`): a present, user-visible, read-only
/// expand-down data segment whose limit is `node << 12 | cpu` (node 0), for LSL only.
fn cpunode_segment(cpu: usize) -> Descriptor {
    let limit = cpu as u64 & 0xfff;
    // Access byte 0xf5: present, DPL 3, code/data, type 5 (read-only, expand-down,
    // accessed); flags: D (32-bit).
    Descriptor::UserSegment((limit & 0xffff) | (0xf5 << 40) | ((limit >> 16) << 48) | (1 << 54))
}

/// One TSS per CPU. A TSS is written after boot (`set_kernel_stack` on every switch), so they
/// are statics reached through raw pointers rather than `Once`s; each is written only by
/// its own CPU.
static mut TSS: [TaskStateSegment; MAX_CPUS] = [const { TaskStateSegment::new() }; MAX_CPUS];
/// One GDT per CPU (each holds its CPU's TSS descriptor); the selectors are the same in all.
static GDT: [Once<(GlobalDescriptorTable, Selectors)>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];

/// The boot CPU's GDT and TSS, with its static IST stacks.
pub fn init() {
    let tops = [0, 1, 2].map(|i| {
        // SAFETY: only the address of the static stack is taken.
        let base = unsafe { core::ptr::addr_of!(IST_STACKS[i]) } as u64;
        base + IST_STACK_SIZE as u64
    });
    init_cpu(0, tops);
}

/// Builds and loads CPU `cpu`'s GDT and TSS, with `ist_tops` the tops of its double-fault,
/// NMI and machine-check stacks. Runs once per CPU, on that CPU.
pub fn init_cpu(cpu: usize, ist_tops: [u64; 3]) {
    assert_eq!(cpu, super::percpu::cpu_id());
    // SAFETY: each CPU writes only its own TSS, here before loading it and later in
    // `set_kernel_stack`; no other reference to it exists.
    let tss = unsafe { core::ptr::addr_of_mut!(TSS[cpu]) };
    for (i, ist) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK].into_iter().enumerate() {
        // SAFETY: as above; the TSS is not loaded yet.
        unsafe { (*tss).interrupt_stack_table[ist as usize - 1] = VirtAddr::new(ist_tops[i]) };
    }
    let (gdt, sel) = GDT[cpu].call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        // SAFETY: the TSS is a static that lives forever; it is only written through raw pointers.
        let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) });
        let cpunode = gdt.append(cpunode_segment(cpu));
        assert_eq!(cpunode.index(), GDT_ENTRY_CPUNODE);
        (gdt, Selectors { kernel_code, kernel_data, user_data, user_code, tss })
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, with the segments their names say.
    unsafe {
        CS::set_reg(sel.kernel_code);
        SS::set_reg(sel.kernel_data);
        DS::set_reg(sel.kernel_data);
        ES::set_reg(sel.kernel_data);
        FS::set_reg(SegmentSelector(0));
        // GS keeps the null selector the entry code loaded: loading one here would clear
        // the GS base, which already points at this CPU's PerCpu.
        load_tss(sel.tss);
    }
}

pub fn selectors() -> &'static Selectors {
    &GDT[0].get().expect("gdt::init not called").1
}

/// Sets the stack this CPU switches to on an interrupt or exception from user
/// mode (TSS.RSP0): the top of the current task's kernel stack.
pub fn set_kernel_stack(top: u64) {
    let cpu = super::percpu::cpu_id();
    // SAFETY: a single u64 store into this CPU's TSS; the CPU reads it only on a privilege
    // change, which cannot happen on this CPU while kernel code runs here, and no other CPU
    // writes it. The TSS is packed (4-byte aligned), so RSP0 is 8-byte aligned only when the
    // linker happens to place it at 4 mod 8: the store is an unaligned one (write_volatile
    // requires alignment).
    unsafe {
        let tss = core::ptr::addr_of_mut!(TSS[cpu]);
        core::ptr::addr_of_mut!((*tss).privilege_stack_table[0]).write_unaligned(VirtAddr::new(top));
    }
}
