//! GDT and TSS. The selector order is fixed by SYSCALL/SYSRET (issue 3):
//! kernel code, kernel data, then user data before user code, so that
//! STAR can derive both user selectors from one base.
//!
//! The TSS gives the double fault, NMI and machine check handlers their own
//! stacks (IST): a kernel stack overflow faults on the guard page, the CPU
//! cannot push the page-fault frame onto the same stack, and the resulting
//! double fault must still find a good stack to report it.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, GS, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;
const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(align(16))]
#[allow(dead_code)] // only the CPU uses the bytes
struct IstStack([u8; IST_STACK_SIZE]);
static mut IST_STACKS: [IstStack; 3] = [const { IstStack([0; IST_STACK_SIZE]) }; 3];

pub struct Selectors {
    pub kernel_code: SegmentSelector,
    pub kernel_data: SegmentSelector,
    pub user_data: SegmentSelector,
    pub user_code: SegmentSelector,
    pub tss: SegmentSelector,
}

/// The TSS is written after boot (`set_kernel_stack` on every switch), so it is a static
/// reached through raw pointers rather than a `Once`.
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

pub fn init() {
    let tss = core::ptr::addr_of_mut!(TSS);
    for (i, ist) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK].into_iter().enumerate() {
        // SAFETY: init runs once on the boot CPU before the TSS is loaded; only the addresses of
        // the IST stacks are taken.
        unsafe {
            let base = core::ptr::addr_of!(IST_STACKS[i]) as u64;
            (*tss).interrupt_stack_table[ist as usize - 1] = VirtAddr::new(base + IST_STACK_SIZE as u64);
        }
    }
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        // SAFETY: TSS is a static that lives forever; it is only written through raw pointers.
        let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) });
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
        GS::set_reg(SegmentSelector(0));
        load_tss(sel.tss);
    }
}

pub fn selectors() -> &'static Selectors {
    &GDT.get().expect("gdt::init not called").1
}

/// Sets the stack the CPU switches to on an interrupt or exception from user
/// mode (TSS.RSP0): the top of the current task's kernel stack.
pub fn set_kernel_stack(top: u64) {
    // SAFETY: a single u64 store into the TSS; the CPU reads it only on a privilege change,
    // which cannot happen on this CPU while kernel code runs here. The TSS is packed (4-byte
    // aligned), so RSP0 is 8-byte aligned only when the linker happens to place the static
    // at 4 mod 8: the store is an unaligned one (write_volatile requires alignment).
    unsafe {
        let tss = core::ptr::addr_of_mut!(TSS);
        core::ptr::addr_of_mut!((*tss).privilege_stack_table[0]).write_unaligned(VirtAddr::new(top));
    }
}
