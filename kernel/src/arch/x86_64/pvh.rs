//! The PVH boot protocol's start info (Xen `hvm_start_info`, version 1),
//! copied into a `BootInfo` the rest of the kernel owns before the boot
//! page tables that make it reachable go away.

use arrayvec::{ArrayString, ArrayVec};

const HVM_START_MAGIC: u32 = 0x336e_c578;
/// `XEN_HVM_MEMMAP_TYPE_RAM`: usable RAM (same value as E820).
pub const MEMMAP_RAM: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy)]
struct HvmStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct HvmModlistEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MemmapEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
    reserved: u32,
}

pub const MAX_MEMMAP: usize = 128;

pub struct BootInfo {
    pub memmap: ArrayVec<MemmapEntry, MAX_MEMMAP>,
    pub cmdline: ArrayString<1024>,
    /// Physical range of the initramfs module, if one was passed (`-initrd`).
    pub initrd: Option<(u64, u64)>,
    /// Physical range of the start info page(s), which must not be handed out
    /// before they are copied (they are copied here, so only informative).
    pub start_info: u64,
    /// Physical address of the ACPI RSDP, if the loader found one (0 otherwise).
    pub rsdp: u64,
}

#[derive(Debug)]
pub enum PvhError {
    BadMagic(u32),
    NoMemoryMap,
}

/// Reads `len` bytes at physical address `pa` through the boot direct map.
fn read_phys<T: Copy>(pa: u64) -> T {
    let va = crate::mm::phys_to_virt(pa);
    // SAFETY: the boot page tables map physical 0..4 GiB at the direct-map base, where QEMU's
    // PVH loader places the start info, memory map, command line and module list; `T` is plain
    // old data, and read_unaligned copes with any alignment.
    unsafe { core::ptr::read_unaligned(va as *const T) }
}

/// Parses the start info at physical `start_info` (the `%ebx` value at entry).
pub fn parse(start_info: u64) -> Result<BootInfo, PvhError> {
    let si: HvmStartInfo = read_phys(start_info);
    if si.magic != HVM_START_MAGIC {
        return Err(PvhError::BadMagic(si.magic));
    }
    let mut info = BootInfo {
        memmap: ArrayVec::new(),
        cmdline: ArrayString::new(),
        initrd: None,
        start_info,
        rsdp: si.rsdp_paddr,
    };
    if si.version < 1 || si.memmap_paddr == 0 {
        return Err(PvhError::NoMemoryMap);
    }
    for i in 0..(si.memmap_entries as u64).min(MAX_MEMMAP as u64) {
        let e: MemmapEntry = read_phys(si.memmap_paddr + i * core::mem::size_of::<MemmapEntry>() as u64);
        info.memmap.push(e);
    }
    if si.cmdline_paddr != 0 {
        for i in 0..info.cmdline.capacity() as u64 {
            let b: u8 = read_phys(si.cmdline_paddr + i);
            if b == 0 || info.cmdline.try_push(b as char).is_err() {
                break;
            }
        }
    }
    if si.nr_modules > 0 && si.modlist_paddr != 0 {
        let m: HvmModlistEntry = read_phys(si.modlist_paddr);
        if m.size > 0 {
            info.initrd = Some((m.paddr, m.paddr + m.size));
        }
    }
    Ok(info)
}
