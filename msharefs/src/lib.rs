//! The mshare user-space ABI, shared by the kernel and user programs: Linux's proposed
//! `include/uapi/linux/msharefs.h` (the 2025 msharefs series) and the 2022 syscall
//! series' numbers as this kernel assigns them. Plain `no_std` constants and `#[repr(C)]`
//! structs, so programs written for the Linux series build unchanged.
#![cfg_attr(not(test), no_std)]

/// Name of the msharefs filesystem type (`mount -t msharefs none /sys/fs/mshare`).
pub const MSHAREFS_NAME: &str = "msharefs";
/// Where the kernel mounts msharefs at boot.
pub const MSHAREFS_MOUNT: &str = "/sys/fs/mshare";
/// msharefs's `f_type` in statfs ("MSHR").
pub const MSHARE_MAGIC: u64 = 0x4d53_4852;
/// The file in the msharefs root whose text is the mount's alignment in bytes.
pub const MSHARE_INFO: &str = "mshare_info";
/// The file in the msharefs root with one line of counters per region.
pub const MSHARE_STATS: &str = "mshare_stats";

/// `mshare(name, addr, len, oflag, mode)`: creates (O_CREAT) or attaches a region at
/// `addr` (2022 series). Above Linux's system call table.
pub const SYS_MSHARE: usize = 1024;
/// `mshare_unlink(name)` (2022 series).
pub const SYS_MSHARE_UNLINK: usize = 1025;

/// `struct mshare_create`: maps an object into a region (`MSHAREFS_CREATE_MAPPING`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MshareCreate {
    /// Where in the region, in bytes from its start.
    pub region_offset: u64,
    pub size: u64,
    /// Offset in the file (`fd`), or 0 for anonymous memory.
    pub offset: u64,
    pub prot: u32,
    /// MAP_ANONYMOUS|MAP_SHARED|MAP_FIXED, or MAP_SHARED|MAP_FIXED with `fd`.
    pub flags: u32,
    pub fd: u32,
}

/// `struct mshare_unmap` (`MSHAREFS_UNMAP`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MshareUnmap {
    pub region_offset: u64,
    pub size: u64,
}

/// `struct mshare_protect` (`MSHAREFS_PROTECT`): one mprotect for every sharer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MshareProtect {
    pub region_offset: u64,
    pub size: u64,
    pub prot: u32,
    /// Must be 0.
    pub reserved: u32,
}

/// Linux's `_IOW(type, nr, size)`: direction write (1) in bits 30..32, size in 16..30,
/// type in 8..16, number in 0..8.
pub const fn iow(ty: u8, nr: u8, size: usize) -> u32 {
    (1 << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

pub const MSHAREFS_CREATE_MAPPING: u32 = iow(b'x', 0, core::mem::size_of::<MshareCreate>());
pub const MSHAREFS_UNMAP: u32 = iow(b'x', 1, core::mem::size_of::<MshareUnmap>());
pub const MSHAREFS_PROTECT: u32 = iow(b'x', 2, core::mem::size_of::<MshareProtect>());

/// SysV `shmat` flag: attach through the segment's implicit region, sharing its page
/// tables with every other attacher using it (Solaris ISM's SHM_SHARE_MMU).
pub const SHM_SHARE_MMU: u32 = 0o200000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_the_linux_series_values() {
        assert_eq!(core::mem::size_of::<MshareCreate>(), 40);
        assert_eq!(core::mem::size_of::<MshareUnmap>(), 16);
        assert_eq!(core::mem::size_of::<MshareProtect>(), 24);
        assert_eq!(MSHAREFS_CREATE_MAPPING, 0x4028_7800);
        assert_eq!(MSHAREFS_UNMAP, 0x4010_7801);
        assert_eq!(MSHAREFS_PROTECT, 0x4018_7802);
    }
}
