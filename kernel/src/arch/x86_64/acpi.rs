//! CPU discovery from ACPI (Linux's `drivers/acpi/tables.c`, `arch/x86/kernel/acpi/boot.c`:
//! `acpi_find_root_pointer`, `acpi_parse_madt`, `acpi_parse_lapic`, `acpi_parse_x2apic`).
//!
//! The RSDP comes from the PVH start info (`rsdp_paddr`) or, failing that, from the
//! BIOS areas (the first KiB of the EBDA, then 0xe0000..0x100000, on 16-byte
//! boundaries). Its RSDT or XSDT lists the tables; the MADT ("APIC") lists the local
//! APICs. Every structure is checked (signature, checksum, lengths inside the table and
//! below 4 GiB) and anything wrong means "only the boot CPU": never a panic.
//!
//! Runs while the boot page tables still map physical 0..4 GiB at the direct-map base:
//! ACPI tables live in reserved memory, which the kernel's own direct map leaves out.

use super::percpu::MAX_CPUS;
use crate::mm::frame::BOOT_MAPPED_LIMIT;
use arrayvec::ArrayVec;
use spin::Once;

const MADT_LOCAL_APIC: u8 = 0;
const MADT_LOCAL_X2APIC: u8 = 9;
const MADT_ENABLED: u32 = 1;
/// Header bytes of an SDT (signature, length, revision, checksum, OEM fields).
const SDT_HEADER: usize = 36;
/// MADT: header, local APIC address, flags; then the entries.
const MADT_ENTRIES: usize = SDT_HEADER + 8;
/// A sanity bound on one table's length.
const MAX_TABLE: usize = 1 << 20;

/// The local APIC ids of the enabled processors, in MADT order (may include the boot CPU).
static APIC_IDS: Once<ArrayVec<u32, MAX_CPUS>> = Once::new();

/// Physical bytes `[pa, pa + len)`, if they lie below the boot map's 4 GiB.
fn phys(pa: u64, len: usize) -> Option<&'static [u8]> {
    if pa == 0 || len > MAX_TABLE || pa.checked_add(len as u64)? > BOOT_MAPPED_LIMIT {
        return None;
    }
    // SAFETY: the boot page tables map physical 0..4 GiB at the direct-map base and stay
    // until `mm::kernel_map::init`, which runs after this module's `init`; the bytes are
    // only read (firmware tables), and the slice does not outlive `init`'s parsing (the
    // 'static lifetime never escapes this module's parse functions).
    Some(unsafe { core::slice::from_raw_parts(crate::mm::phys_to_virt(pa) as *const u8, len) })
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// The RSDP at `pa` if its signature and checksums hold: (RSDT address, XSDT address).
fn parse_rsdp(pa: u64) -> Option<(u64, u64)> {
    let v1 = phys(pa, 20)?;
    if &v1[..8] != b"RSD PTR " || !checksum_ok(v1) {
        return None;
    }
    let rsdt = u32_at(v1, 16)? as u64;
    let revision = v1[15];
    if revision >= 2 {
        let len = u32_at(phys(pa, 24)?, 20)? as usize;
        if len >= 36 {
            if let Some(v2) = phys(pa, len) {
                if checksum_ok(v2) {
                    return Some((rsdt, u64_at(v2, 24)?));
                }
            }
        }
    }
    Some((rsdt, 0))
}

/// Scans `[start, end)` on 16-byte boundaries for a valid RSDP.
fn scan_rsdp(start: u64, end: u64) -> Option<u64> {
    (start..end).step_by(16).find(|&pa| parse_rsdp(pa).is_some())
}

/// The table at `pa` with its whole length, if its checksum holds.
fn table(pa: u64) -> Option<&'static [u8]> {
    let len = u32_at(phys(pa, SDT_HEADER)?, 4)? as usize;
    if len < SDT_HEADER {
        return None;
    }
    let t = phys(pa, len)?;
    checksum_ok(t).then_some(t)
}

/// Finds the table with `signature` through the XSDT (8-byte entries) or RSDT (4-byte).
fn find_table(rsdt: u64, xsdt: u64, signature: &[u8; 4]) -> Option<&'static [u8]> {
    let (root, entry) = match xsdt {
        0 => (table(rsdt)?, 4),
        x => match table(x) {
            Some(t) => (t, 8),
            None => (table(rsdt)?, 4),
        },
    };
    (SDT_HEADER..root.len())
        .step_by(entry)
        .filter_map(|off| if entry == 8 { u64_at(root, off) } else { u32_at(root, off).map(u64::from) })
        .filter_map(table)
        .find(|t| &t[..4] == signature)
}

/// The local APIC ids of enabled processors in a MADT.
fn parse_madt(madt: &[u8]) -> ArrayVec<u32, MAX_CPUS> {
    let mut ids = ArrayVec::new();
    let mut off = MADT_ENTRIES;
    while off + 2 <= madt.len() {
        let (kind, len) = (madt[off], madt[off + 1] as usize);
        if len < 2 || off + len > madt.len() {
            break;
        }
        let e = &madt[off..off + len];
        let cpu = match kind {
            // processor uid (1), APIC id (1), flags (4)
            MADT_LOCAL_APIC if len >= 8 => Some((e[3] as u32, u32_at(e, 4).unwrap_or(0))),
            // reserved (2), x2APIC id (4), flags (4), uid (4); ids from 255 need x2APIC mode
            MADT_LOCAL_X2APIC if len >= 16 => u32_at(e, 4).zip(u32_at(e, 8)).filter(|&(id, _)| id < 255),
            _ => None,
        };
        if let Some((id, flags)) = cpu {
            if flags & MADT_ENABLED != 0 && !ids.contains(&id) && ids.try_push(id).is_err() {
                log::warn!("acpi: more than {} CPUs; APIC id {} stays offline", MAX_CPUS, id);
            }
        }
        off += len;
    }
    ids
}

/// Finds the CPUs; `rsdp_hint` is the PVH start info's `rsdp_paddr` (0 if none).
pub fn init(rsdp_hint: u64) {
    APIC_IDS.call_once(|| {
        let rsdp = Some(rsdp_hint).filter(|&p| parse_rsdp(p).is_some()).or_else(|| {
            let ebda = phys(0x40e, 2).map(|b| (u16::from_le_bytes([b[0], b[1]]) as u64) << 4).unwrap_or(0);
            (ebda >= 0x400).then(|| scan_rsdp(ebda, ebda + 1024)).flatten().or_else(|| scan_rsdp(0xe0000, 0x100000))
        });
        let Some(rsdp) = rsdp else {
            log::info!("acpi: no RSDP; one CPU");
            return ArrayVec::new();
        };
        let (rsdt, xsdt) = parse_rsdp(rsdp).unwrap_or((0, 0));
        let Some(madt) = find_table(rsdt, xsdt, b"APIC") else {
            log::info!("acpi: RSDP at {:#x} but no valid MADT; one CPU", rsdp);
            return ArrayVec::new();
        };
        let ids = parse_madt(madt);
        log::info!("acpi: RSDP at {:#x}, MADT lists {} enabled CPUs (APIC ids {:?})", rsdp, ids.len(), ids.as_slice());
        ids
    });
}

/// The local APIC ids of the enabled CPUs the MADT lists (empty: no usable ACPI).
pub fn cpu_apic_ids() -> &'static [u32] {
    APIC_IDS.get().map(|v| v.as_slice()).unwrap_or(&[])
}
