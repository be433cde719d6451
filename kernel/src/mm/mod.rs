//! Memory management core: physical frames, the kernel's own page tables and
//! the kernel heap. Together with `arch` this is where `unsafe` is allowed:
//! turning physical addresses into pointers happens only here.
//!
//! Kernel virtual layout (4-level paging; PML4 slot in brackets):
//! - `PHYS_OFFSET`  0xffff_8000_0000_0000 [256..]: direct map of all RAM, 2 MiB pages, RW NX
//! - `HEAP_BASE`    0xffff_c000_0000_0000 [384]: kernel heap, grown page by page
//! - `MMIO_BASE`    0xffff_ff00_0000_0000 [510]: device registers, uncached
//! - `KERNEL_VMA`   0xffff_ffff_8000_0000 [511]: the kernel image, W^X per section
//!
//! Every kernel-half PML4 slot points at a PDPT allocated at boot, so a later
//! kernel mapping is seen by every address space that copies slots 256..512.

pub mod address_space;
pub mod brk;
pub mod commit;
pub mod fail;
pub mod fault;
pub mod frame;
pub mod heap;
pub mod kernel_map;
pub mod madvise;
pub mod memfd;
pub mod mlock;
pub mod mmap;
pub mod mprotect;
pub mod mremap;
pub mod mshare;
pub mod msync;
pub mod munmap;
pub mod oom_kill;
pub mod page;
pub mod page_cache;
pub mod pt_share;
pub mod remap_file_pages;
pub mod rmap;
pub mod tests;
pub mod tlb;
pub mod usercopy;
pub mod vdso;
pub mod vma;
pub mod vma_tree;

pub const PAGE_SIZE: u64 = 4096;
pub const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;
pub const HEAP_BASE: u64 = 0xffff_c000_0000_0000;
pub const HEAP_MAX: u64 = 64 << 30;
pub const MMIO_BASE: u64 = 0xffff_ff00_0000_0000;
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;

/// The direct-map address of physical address `pa`.
pub const fn phys_to_virt(pa: u64) -> u64 {
    PHYS_OFFSET + pa
}

pub const fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}

/// Rounds up to a multiple of `a` (a power of two). Wraps to 0 at the top of
/// the address space, as Linux's PAGE_ALIGN does: callers decide what a
/// wrapped length means, as their Linux counterparts do.
pub const fn align_up(x: u64, a: u64) -> u64 {
    x.wrapping_add(a - 1) & !(a - 1)
}

/// Symbols from `linker.ld`; only their addresses are meaningful.
mod symbols {
    extern "C" {
        pub static __text_start: u8;
        pub static __text_end: u8;
        pub static __rodata_start: u8;
        pub static __rodata_end: u8;
        pub static __data_start: u8;
        pub static __data_end: u8;
        pub static __stack_guard: u8;
        pub static __boot_stack_bottom: u8;
    }
}

/// Virtual address ranges of the kernel image sections, from the linker script.
pub struct KernelSections {
    pub text: (u64, u64),
    pub rodata: (u64, u64),
    pub data: (u64, u64),
    pub stack_guard: u64,
}

pub fn kernel_sections() -> KernelSections {
    use core::ptr::addr_of;
    use symbols::*;
    // Only the addresses of linker-defined symbols are taken, never their contents.
    KernelSections {
        text: (addr_of!(__text_start) as u64, addr_of!(__text_end) as u64),
        rodata: (addr_of!(__rodata_start) as u64, addr_of!(__rodata_end) as u64),
        data: (addr_of!(__data_start) as u64, addr_of!(__data_end) as u64),
        stack_guard: addr_of!(__stack_guard) as u64,
    }
}

/// Physical range of the loaded kernel image (boot trampoline included).
pub fn kernel_phys_range() -> (u64, u64) {
    let s = kernel_sections();
    (0x100000, s.data.1 - KERNEL_VMA)
}

/// Copies `len` bytes of physical memory starting at `pa` into a slice.
/// Only for memory the kernel owns (the initramfs module, frames it allocated).
pub fn phys_slice(pa: u64, len: usize) -> &'static [u8] {
    // SAFETY: callers pass ranges inside RAM, which the direct map covers for the kernel's
    // lifetime; the memory is not handed out as frames while a slice lives (the initramfs range
    // is reserved in the frame allocator).
    unsafe { core::slice::from_raw_parts(phys_to_virt(pa) as *const u8, len) }
}

/// Reads the saved frame pointer and return address of the stack frame at `rbp`.
/// The caller checks that `rbp .. rbp + 16` lies in mapped kernel data.
pub fn read_stack_frame(rbp: u64) -> (u64, u64) {
    // SAFETY: the caller guarantees the 16 bytes at rbp are mapped kernel memory.
    unsafe { (core::ptr::read_volatile(rbp as *const u64), core::ptr::read_volatile((rbp + 8) as *const u64)) }
}

// The byte copies below take physical addresses and stay private to `mm`: code
// outside reaches a page's contents through its counted handle (`page::Page`).

/// Copies bytes into physical memory at `pa` (within one frame the caller owns).
fn write_phys(pa: u64, data: &[u8]) {
    assert!(pa % PAGE_SIZE + data.len() as u64 <= PAGE_SIZE, "write_phys crosses a frame");
    // SAFETY: the range lies inside one frame of RAM (checked above) that the caller owns
    // through a page reference; the direct map covers all RAM.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), phys_to_virt(pa) as *mut u8, data.len()) }
}

/// Copies bytes out of physical memory at `pa` (within one frame).
fn read_phys(pa: u64, out: &mut [u8]) {
    assert!(pa % PAGE_SIZE + out.len() as u64 <= PAGE_SIZE, "read_phys crosses a frame");
    // SAFETY: as for write_phys.
    unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(pa) as *const u8, out.as_mut_ptr(), out.len()) }
}

/// Fills `len` bytes at `pa` (within one frame) with zeroes.
fn zero_phys(pa: u64, len: usize) {
    assert!(pa % PAGE_SIZE + len as u64 <= PAGE_SIZE, "zero_phys crosses a frame");
    // SAFETY: as for write_phys.
    unsafe { core::ptr::write_bytes(phys_to_virt(pa) as *mut u8, 0, len) }
}

/// Copies one whole frame (copy-on-write).
fn copy_frame(dst: u64, src: u64) {
    // SAFETY: both are whole frames of RAM the caller holds references to; they differ.
    unsafe {
        core::ptr::copy_nonoverlapping(phys_to_virt(src) as *const u8, phys_to_virt(dst) as *mut u8, PAGE_SIZE as usize)
    }
}
