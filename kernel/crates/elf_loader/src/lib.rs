//! ELF64 executables for x86_64, loaded the way Linux's `fs/binfmt_elf.c`
//! (Linux 6.6) loads them.
//!
//! The kernel runs unmodified static Linux binaries (musl static, Rust
//! static-PIE, Debian busybox-static) and dynamically linked ones through
//! their interpreter, and those binaries' start-up code
//! (`_start`, `__libc_start_main`, `__init_libc`, musl's `_dlstart_c`, glibc's
//! `_dl_relocate_static_pie`) reads the program headers through `AT_PHDR`,
//! seeds its PRNG/stack protector from `AT_RANDOM`, finds `argv`/`envp`/auxv
//! by walking up from the initial `%rsp`, and assumes the bss is zero. So this
//! crate reproduces Linux rather than the ELF specification where they
//! differ, and every function names the Linux function it follows.
//!
//! Everything here is pure computation on byte slices, so it is tested on the
//! host; the kernel does the actual page-table work from the plans returned:
//!
//! 1. [`parse`] validates the file (`load_elf_binary`, `load_elf_phdrs`).
//! 2. [`load_bias`] picks where an `ET_DYN` image goes.
//! 3. [`mapping_plan`] says which pages to map, with which bytes and
//!    protections (`elf_map`, `elf_load`, `padzero`, `vm_brk_flags`).
//! 4. [`brk_start`] gives `mm->start_brk`.
//! 5. [`exec_auxv`] + [`build_stack`] produce the initial user stack
//!    (`do_execveat_common`, `copy_strings`, `bprm_stack_limits`,
//!    `create_elf_tables`).
//!
//! # Where this deliberately differs from Linux
//!
//! * The interpreter named by `PT_INTERP` is loaded by the kernel: this
//!   crate finds its path ([`ElfInfo::interp`], [`interp_path`]) and sizes
//!   its image ([`total_mapping_size`]); the kernel picks its address and
//!   maps it with [`mapping_plan`] like the program.
//! * An `ET_DYN` without `PT_INTERP` (static-PIE) is placed at
//!   [`ET_DYN_BASE`] like a PIE with an interpreter. Linux (since commit
//!   eab09532d400, v4.13) gives such "loaders" a load bias of 0 and lets
//!   `mmap` pick the address (top of the mmap area); we have no ASLR and want
//!   a deterministic layout, and no binary can depend on the exact address.
//! * Things Linux accepts but that cannot come from a sane linker and would
//!   only fault later are refused up front, all with `ENOEXEC`: no `PT_LOAD`
//!   at all, `PT_LOAD`s whose byte ranges overlap, and file ranges past the
//!   end of the file (Linux maps them and the process gets `SIGBUS`).
//! * bss zeroing follows the per-segment `elf_load` of Linux 6.7+ (which is
//!   what 6.6 does for every normal layout) and always zeroes the partial
//!   page, also in a non-writable segment (6.6 fails such an exec with
//!   `EFAULT`, 6.7+ silently leaves file bytes there).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

#[cfg(test)]
mod tests;

/// x86_64 page size; `ELF_MIN_ALIGN` in `fs/binfmt_elf.c`.
pub const PAGE_SIZE: u64 = 4096;

/// x86_64 `TASK_SIZE` (= `TASK_SIZE_MAX` = `DEFAULT_MAP_WINDOW` with 4-level
/// paging): the first address user space cannot use. `load_elf_binary`
/// rejects segments and entry points at or above it (`BAD_ADDR`).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// x86_64 `STACK_TOP` for 64-bit tasks (= [`TASK_SIZE`]); with randomization
/// off, `setup_arg_pages` puts the top of the initial stack exactly here.
pub const STACK_TOP: u64 = TASK_SIZE;

/// Linux's `ELF_ET_DYN_BASE` for x86_64 without randomization, page aligned.
///
/// `arch/x86/include/asm/elf.h` defines it as `DEFAULT_MAP_WINDOW / 3 * 2`
/// = `0x7ffffffff000 / 3 * 2` = `0x555555554aaa`, i.e. two thirds of the
/// address space, far enough from both the low `ET_EXEC` range and the
/// stack/mmap area. `load_elf_binary` aligns it down to the largest
/// `p_align` (at least a page), hence `0x555555554000`, the familiar
/// `setarch -R` PIE address.
pub const ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// `ELF_ET_DYN_BASE` before alignment; see [`ET_DYN_BASE`].
const ELF_ET_DYN_BASE_RAW: u64 = 0x5555_5555_4aaa;

/// `e_ident` magic.
pub const ELFMAG: [u8; 4] = *b"\x7fELF";
/// `e_ident[EI_CLASS]` for 64-bit objects.
pub const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]` for little-endian objects.
pub const ELFDATA2LSB: u8 = 1;
/// `e_type` of a fixed-address executable.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a position-independent executable (or shared object).
pub const ET_DYN: u16 = 3;
/// `e_machine` for x86_64 (`elf_check_arch` on x86_64 accepts only this).
pub const EM_X86_64: u16 = 62;
/// Size of `Elf64_Ehdr`.
pub const EHDR_SIZE: u64 = 64;
/// Size of `Elf64_Phdr` (`sizeof(struct elf_phdr)`, also `AT_PHENT`).
pub const PHDR_SIZE: u64 = 56;

/// Loadable segment.
pub const PT_LOAD: u32 = 1;
/// Dynamic linking information.
pub const PT_DYNAMIC: u32 = 2;
/// Program interpreter path.
pub const PT_INTERP: u32 = 3;
/// The program header table itself.
pub const PT_PHDR: u32 = 6;
/// Thread-local storage template.
pub const PT_TLS: u32 = 7;
/// Stack executability (`p_flags & PF_X`).
pub const PT_GNU_STACK: u32 = 0x6474_e551;
/// Segment is executable.
pub const PF_X: u32 = 1;
/// Segment is writable.
pub const PF_W: u32 = 2;
/// Segment is readable.
pub const PF_R: u32 = 4;

/// Linux errno values that the loader's errors map to (positive; the
/// syscall returns the negation).
pub mod errno {
    /// Argument list too long.
    pub const E2BIG: i32 = 7;
    /// Exec format error.
    pub const ENOEXEC: i32 = 8;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// I/O error.
    pub const EIO: i32 = 5;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
}

/// `PATH_MAX`: the longest interpreter path `load_elf_binary` accepts,
/// terminating NUL included.
pub const PATH_MAX: u64 = 4096;

/// Why an ELF file cannot be executed.
///
/// [`ElfError::errno`] gives the errno `execve` returns. Everything is
/// `ENOEXEC` ("not an executable we understand", also what lets a shell try
/// the file as a script) except the cases where Linux gets past the format
/// checks and fails while mapping: those are `EINVAL`, as noted per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// No `\x7fELF` magic (or fewer than 4 bytes). `ENOEXEC`.
    NotElf,
    /// Not `ELFCLASS64`. `ENOEXEC` (Linux: a 32-bit header never has
    /// `e_phentsize == 56`, so `load_elf_phdrs` fails).
    WrongClass,
    /// Not little-endian. `ENOEXEC` (Linux: `e_machine` reads wrong).
    WrongEndian,
    /// `e_machine != EM_X86_64` (`elf_check_arch`). `ENOEXEC`.
    WrongMachine,
    /// `e_type` neither `ET_EXEC` nor `ET_DYN`. `ENOEXEC`.
    WrongType,
    /// `e_phentsize != 56`, `e_phnum == 0`, or the table exceeds one page
    /// (`load_elf_phdrs`). `ENOEXEC`.
    BadHeader,
    /// A `PT_LOAD` with `p_filesz > p_memsz`. `EINVAL`, as in
    /// `load_elf_binary`'s "set_brk can never work" check.
    BadProgramHeader,
    /// The header, the program header table or a segment's file range
    /// extends past the end of the file. `ENOEXEC` (Linux: `elf_read` fails
    /// for the headers; segment data past EOF would `SIGBUS` later).
    Truncated,
    /// No `PT_LOAD` at all. `ENOEXEC` (Linux would exec and crash).
    NoLoadSegments,
    /// Two `PT_LOAD`s cover the same bytes of memory (sharing a page is
    /// fine). `ENOEXEC` (Linux maps the later one over the earlier one).
    OverlappingSegments,
    /// A `PT_INTERP` whose `p_filesz` is below 2 or above [`PATH_MAX`], or
    /// whose last byte is not NUL. `ENOEXEC`, as in `load_elf_binary`.
    BadInterpreter,
    /// A `PT_INTERP` whose bytes extend past the end of the file: Linux's
    /// `elf_read` of them comes up short. `EIO`.
    InterpreterPastEof,
    /// A segment or the entry point lies outside `[0, TASK_SIZE)` (before or
    /// after the load bias), or address arithmetic overflows. `EINVAL`
    /// (`BAD_ADDR` / `TASK_SIZE` checks in `load_elf_binary`).
    AddressOverflow,
    /// `p_offset % PAGE_SIZE != p_vaddr % PAGE_SIZE` for a segment with file
    /// contents (or a load bias that is not page aligned): `elf_map` would
    /// pass an unaligned file offset to `vm_mmap`, which fails. `EINVAL`.
    MisalignedSegment,
}

impl ElfError {
    /// The errno Linux's `execve` returns for this error (positive).
    pub const fn errno(self) -> i32 {
        match self {
            ElfError::BadProgramHeader | ElfError::AddressOverflow | ElfError::MisalignedSegment => errno::EINVAL,
            ElfError::InterpreterPastEof => errno::EIO,
            _ => errno::ENOEXEC,
        }
    }
}

/// Page protection of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prot {
    /// `PROT_READ`.
    pub read: bool,
    /// `PROT_WRITE`.
    pub write: bool,
    /// `PROT_EXEC`.
    pub exec: bool,
}

impl Prot {
    /// `PROT_NONE`.
    pub const NONE: Prot = Prot { read: false, write: false, exec: false };

    /// Protection for a segment's `p_flags`, as `make_prot` in
    /// `fs/binfmt_elf.c` computes it. `READ_IMPLIES_EXEC` never applies:
    /// x86_64 sets it only for 32-bit tasks (`elf_read_implies_exec`).
    pub const fn from_p_flags(flags: u32) -> Prot {
        Prot { read: flags & PF_R != 0, write: flags & PF_W != 0, exec: flags & PF_X != 0 }
    }
}

/// One program header's placement, addresses before the load bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// From `p_flags`.
    pub prot: Prot,
    /// `p_align` (used for the `ET_DYN` base, and the TLS block alignment).
    pub align: u64,
}

/// What [`parse`] learned about an executable; addresses before the bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// `e_entry`.
    pub entry: u64,
    /// `e_type == ET_DYN`.
    pub pie: bool,
    /// The `PT_LOAD`s, in file order.
    pub segments: Vec<Segment>,
    /// Address of the program header table in memory: `AT_PHDR` is
    /// `phdr_vaddr + bias`.
    ///
    /// Linux 6.6 (`load_elf_binary`, since 5.18's "fs/binfmt_elf: Fix
    /// AT_PHDR for unusual ELF files") takes it from the `PT_LOAD` whose
    /// file range contains `e_phoff` (the last such, as its loop does) and
    /// ignores `PT_PHDR`; we do the same, and fall back to `PT_PHDR`'s
    /// `p_vaddr` only when no `PT_LOAD` contains the table. `None` if
    /// neither exists; Linux then passes `AT_PHDR = 0 + load_bias`, which
    /// `unwrap_or(0)` reproduces.
    pub phdr_vaddr: Option<u64>,
    /// `e_phoff`.
    pub phoff: u64,
    /// `e_phnum` (`AT_PHNUM`).
    pub phnum: u16,
    /// `e_phentsize` (always 56 once parsed).
    pub phentsize: u16,
    /// Whether the stack should be executable.
    ///
    /// `PT_GNU_STACK` present: its `PF_X` (the last one wins, as in
    /// `load_elf_binary`'s loop). Absent: `false`. On x86_64 a missing
    /// `PT_GNU_STACK` means `EXSTACK_DEFAULT`, and since Linux 5.8
    /// (`elf_read_implies_exec` = `mmap_is_ia32() && ...`) that sets
    /// `READ_IMPLIES_EXEC` only for 32-bit tasks, so a 64-bit task's stack
    /// stays non-executable ("exec-none" in the table in
    /// `arch/x86/include/asm/elf.h`).
    pub stack_exec: bool,
    /// `PT_TLS` (the last one), informational: static libcs set up TLS
    /// themselves from `AT_PHDR`.
    pub tls: Option<Segment>,
    /// Length of the file; bytes of the last file page past it read as 0.
    pub file_size: u64,
    /// The first `PT_INTERP` (later ones are ignored, as Linux's loop
    /// breaks at the first): where in the file the interpreter's path is.
    pub interp: Option<InterpRef>,
}

/// Where a `PT_INTERP`'s path lies in the file; [`interp_path`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpRef {
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`, the terminating NUL included.
    pub len: u64,
}

/// The interpreter's path from the `len` bytes a [`InterpRef`] points at:
/// the last must be NUL (`ENOEXEC` otherwise), and the path is the C string
/// they start with, as `open_exec` reads it (bytes after an earlier NUL are
/// ignored).
pub fn interp_path(bytes: &[u8]) -> Result<&[u8], ElfError> {
    if bytes.last() != Some(&0) {
        return Err(ElfError::BadInterpreter);
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(&bytes[..end])
}

/// `total_mapping_size`: the span from the page start of the lowest
/// `PT_LOAD` to the end of the highest, the size `load_elf_interp` reserves
/// with one mmap before placing the segments in it.
pub fn total_mapping_size(info: &ElfInfo) -> u64 {
    let min = info.segments.iter().map(|s| page_start(s.vaddr)).min().unwrap_or(0);
    let max = info.segments.iter().map(|s| s.vaddr.saturating_add(s.memsz)).max().unwrap_or(0);
    max.saturating_sub(min)
}

fn field<const N: usize>(b: &[u8], off: u64) -> Result<[u8; N], ElfError> {
    let start = usize::try_from(off).map_err(|_| ElfError::Truncated)?;
    let end = start.checked_add(N).ok_or(ElfError::Truncated)?;
    b.get(start..end).and_then(|s| <[u8; N]>::try_from(s).ok()).ok_or(ElfError::Truncated)
}

fn le16(b: &[u8], off: u64) -> Result<u16, ElfError> {
    field::<2>(b, off).map(u16::from_le_bytes)
}

fn le32(b: &[u8], off: u64) -> Result<u32, ElfError> {
    field::<4>(b, off).map(u32::from_le_bytes)
}

fn le64(b: &[u8], off: u64) -> Result<u64, ElfError> {
    field::<8>(b, off).map(u64::from_le_bytes)
}

/// `ELF_PAGESTART`.
const fn page_start(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// `ELF_PAGEOFFSET`.
const fn page_offset(v: u64) -> u64 {
    v & (PAGE_SIZE - 1)
}

/// `ELF_PAGEALIGN`, refusing to wrap.
fn page_align(v: u64) -> Result<u64, ElfError> {
    v.checked_add(PAGE_SIZE - 1).map(page_start).ok_or(ElfError::AddressOverflow)
}

/// `[vaddr + bias, vaddr + bias + len)`, required to lie in `[0, TASK_SIZE]`.
///
/// The bias is a two's complement offset: Linux computes it with unsigned
/// wrap-around (`ELF_PAGESTART(ELF_ET_DYN_BASE - vaddr)`), so an `ET_DYN`
/// linked above the base gets a "negative" bias.
fn biased_span(vaddr: u64, len: u64, bias: u64) -> Result<(u64, u64), ElfError> {
    let start = i128::from(vaddr) + i128::from(bias as i64);
    let end = start + i128::from(len);
    if start < 0 || end > i128::from(TASK_SIZE) {
        return Err(ElfError::AddressOverflow);
    }
    // Both in [0, TASK_SIZE], so the conversions are exact.
    Ok((start as u64, end as u64))
}

/// A raw program header.
struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

impl Phdr {
    fn read(file: &[u8], at: u64) -> Result<Phdr, ElfError> {
        let f = |o: u64| at.checked_add(o).ok_or(ElfError::Truncated);
        Ok(Phdr {
            p_type: le32(file, f(0)?)?,
            p_flags: le32(file, f(4)?)?,
            p_offset: le64(file, f(8)?)?,
            p_vaddr: le64(file, f(16)?)?,
            p_filesz: le64(file, f(32)?)?,
            p_memsz: le64(file, f(40)?)?,
            p_align: le64(file, f(48)?)?,
        })
    }

    fn segment(&self) -> Segment {
        Segment {
            vaddr: self.p_vaddr,
            memsz: self.p_memsz,
            offset: self.p_offset,
            filesz: self.p_filesz,
            prot: Prot::from_p_flags(self.p_flags),
            align: self.p_align,
        }
    }
}

/// The checks `load_elf_binary` applies to each `PT_LOAD`, in its order,
/// plus the file-range check Linux leaves to page faults.
fn check_load_segment(s: &Segment, file_size: u64) -> Result<(), ElfError> {
    // elf_map: vm_mmap(..., p_offset - ELF_PAGEOFFSET(p_vaddr)) fails with
    // EINVAL unless that offset is page aligned. Without file contents
    // nothing is mmapped from the file (elf_load), so nothing to check.
    if s.filesz != 0 && (page_offset(s.offset) != page_offset(s.vaddr)) {
        return Err(ElfError::MisalignedSegment);
    }
    if s.filesz > s.memsz {
        return Err(ElfError::BadProgramHeader);
    }
    // BAD_ADDR(k) || p_memsz > TASK_SIZE || TASK_SIZE - p_memsz < k
    if s.vaddr >= TASK_SIZE || s.memsz > TASK_SIZE || TASK_SIZE - s.memsz < s.vaddr {
        return Err(ElfError::AddressOverflow);
    }
    if s.filesz != 0 && s.offset.checked_add(s.filesz).is_none_or(|end| end > file_size) {
        return Err(ElfError::Truncated);
    }
    Ok(())
}

/// Rejects `PT_LOAD`s whose memory byte ranges intersect (pages may be
/// shared). Addresses are already known to be below `TASK_SIZE`.
fn check_overlaps(segments: &[Segment]) -> Result<(), ElfError> {
    for (i, a) in segments.iter().enumerate() {
        for b in &segments[i + 1..] {
            if a.memsz == 0 || b.memsz == 0 {
                continue;
            }
            let (a_end, b_end) = (a.vaddr.saturating_add(a.memsz), b.vaddr.saturating_add(b.memsz));
            if a.vaddr < b_end && b.vaddr < a_end {
                return Err(ElfError::OverlappingSegments);
            }
        }
    }
    Ok(())
}

/// Parses and validates an x86_64 ELF executable, as the checks at the start
/// of `load_elf_binary` and in `load_elf_phdrs` do, plus the per-`PT_LOAD`
/// checks of its mapping loop (so that a file that parses also maps).
///
/// All arithmetic is checked; no input panics.
pub fn parse(file: &[u8]) -> Result<ElfInfo, ElfError> {
    parse_head(file, file.len() as u64)
}

/// As [`parse`], from the first bytes of a file of `file_size` bytes: only
/// the ELF header and the program headers are read, so a kernel need not
/// copy the whole image (`load_elf_binary` reads just these too). If the
/// program headers lie beyond `file`, the result is [`ElfError::Truncated`]
/// even though the file is long enough: read more and call again.
pub fn parse_head(file: &[u8], file_size: u64) -> Result<ElfInfo, ElfError> {
    if (file.len() as u64) > file_size {
        return Err(ElfError::BadHeader);
    }
    match file.get(..4) {
        Some(m) if m == ELFMAG => {}
        _ => return Err(ElfError::NotElf),
    }
    if file_size < EHDR_SIZE {
        return Err(ElfError::Truncated);
    }
    // Linux never looks at EI_CLASS/EI_DATA for native binaries, but the
    // rest of the header only means something for ELF64 little-endian.
    if file[4] != ELFCLASS64 {
        return Err(ElfError::WrongClass);
    }
    if file[5] != ELFDATA2LSB {
        return Err(ElfError::WrongEndian);
    }
    let pie = match le16(file, 16)? {
        ET_EXEC => false,
        ET_DYN => true,
        _ => return Err(ElfError::WrongType),
    };
    if le16(file, 18)? != EM_X86_64 {
        return Err(ElfError::WrongMachine);
    }
    let entry = le64(file, 24)?;
    let phoff = le64(file, 32)?;
    let phentsize = le16(file, 54)?;
    let phnum = le16(file, 56)?;

    // load_elf_phdrs: e_phentsize must be sizeof(struct elf_phdr), and the
    // table non-empty and at most ELF_MIN_ALIGN bytes (so <= 73 entries).
    if u64::from(phentsize) != PHDR_SIZE {
        return Err(ElfError::BadHeader);
    }
    let table_size = u64::from(phnum) * PHDR_SIZE;
    if table_size == 0 || table_size > PAGE_SIZE {
        return Err(ElfError::BadHeader);
    }
    if phoff.checked_add(table_size).is_none_or(|end| end > file_size) {
        return Err(ElfError::Truncated);
    }
    let mut phdrs = Vec::with_capacity(usize::from(phnum));
    for i in 0..u64::from(phnum) {
        phdrs.push(Phdr::read(file, phoff + i * PHDR_SIZE)?);
    }

    // First loop of load_elf_binary: the first PT_INTERP, its size checked
    // before its bytes are read.
    let interp = match phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        None => None,
        Some(p) if p.p_filesz > PATH_MAX || p.p_filesz < 2 => return Err(ElfError::BadInterpreter),
        Some(p) if p.p_offset.checked_add(p.p_filesz).is_none_or(|end| end > file_size) => {
            return Err(ElfError::InterpreterPastEof)
        }
        Some(p) => Some(InterpRef { offset: p.p_offset, len: p.p_filesz }),
    };

    let mut stack_exec = false;
    let mut tls = None;
    let mut pt_phdr = None;
    let mut phdr_from_load = None;
    let mut segments = Vec::new();
    for p in &phdrs {
        match p.p_type {
            // Second loop: the last PT_GNU_STACK decides.
            PT_GNU_STACK => stack_exec = p.p_flags & PF_X != 0,
            PT_TLS => tls = Some(p.segment()),
            PT_PHDR if pt_phdr.is_none() => pt_phdr = Some(p.p_vaddr),
            PT_LOAD => {
                let s = p.segment();
                check_load_segment(&s, file_size)?;
                // "Figure out which segment in the file contains the Program
                // Header table, and map to the associated memory address."
                if s.offset <= phoff && s.offset.checked_add(s.filesz).is_some_and(|end| phoff < end) {
                    phdr_from_load = Some(phoff - s.offset + s.vaddr);
                }
                segments.push(s);
            }
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(ElfError::NoLoadSegments);
    }
    check_overlaps(&segments)?;

    let info = ElfInfo {
        entry,
        pie,
        segments,
        phdr_vaddr: phdr_from_load.or(pt_phdr),
        phoff,
        phnum,
        phentsize,
        stack_exec,
        tls,
        file_size,
        interp,
    };

    // With our fixed bias the final addresses are known now: the image and
    // the entry point (BAD_ADDR(elf_entry) -> EINVAL) must be user addresses.
    let bias = load_bias(&info);
    for s in &info.segments {
        biased_span(s.vaddr, s.memsz, bias)?;
    }
    biased_span(info.entry, 1, bias)?;
    Ok(info)
}

/// `maximum_alignment` in `fs/binfmt_elf.c`: the largest power-of-two
/// `p_align` of the `PT_LOAD`s, rounded up to a page; 0 if none.
fn maximum_alignment(segments: &[Segment]) -> u64 {
    let max = segments.iter().map(|s| s.align).filter(|a| a.is_power_of_two()).max().unwrap_or(0);
    // A power of two is at most 2^63, so this cannot wrap.
    page_start(max.wrapping_add(PAGE_SIZE - 1))
}

/// The load bias to add to every address of the image (a two's complement
/// offset, see [`mapping_plan`]).
///
/// `ET_EXEC`: 0. `ET_DYN`: as `load_elf_binary` computes it for a PIE
/// without randomization: `ELF_ET_DYN_BASE` (`0x555555554aaa`) aligned down
/// to the largest power-of-two `p_align` (at least a page), then
/// `ELF_PAGESTART(base - first PT_LOAD's p_vaddr)`. With the usual first
/// `p_vaddr` of 0 and 4 KiB alignment that is exactly [`ET_DYN_BASE`]; in
/// general it is `ET_DYN_BASE` minus the page-aligned lowest address (ELF
/// requires `PT_LOAD`s in ascending order, so the first is the lowest;
/// an unaligned first `p_vaddr` rounds the bias down a further page, as in
/// Linux).
pub fn load_bias(info: &ElfInfo) -> u64 {
    if !info.pie {
        return 0;
    }
    let first = info.segments.first().map_or(0, |s| s.vaddr);
    let mut base = ELF_ET_DYN_BASE_RAW;
    let alignment = maximum_alignment(&info.segments);
    if alignment != 0 {
        base &= !(alignment - 1);
    }
    page_start(base.wrapping_sub(first))
}

/// How to materialize one `PT_LOAD`: all addresses after the load bias.
///
/// The pages `[start, end)` split in two parts:
///
/// * `[start, file_end)`: the file mapping of `elf_map`, protection `prot`.
///   Its first `file_len` bytes are `file[file_offset..][..file_len]`
///   (starting at the page boundary, so the bytes before `p_vaddr` in the
///   first page come from the file too, as with `mmap`); the rest is zero.
///   That zero tail is either `padzero`'s clearing of the partial page after
///   `p_filesz` (when `p_memsz > p_filesz`) or the part of the last page
///   beyond the end of the file (when `p_memsz == p_filesz`; `mmap` shows
///   the file up to the page end otherwise).
/// * `[file_end, end)`: anonymous zero pages (`vm_brk_flags` in `elf_load`,
///   `set_brk` in 6.6), protection `anon_prot`. Linux maps these with
///   `VM_DATA_DEFAULT_FLAGS`, i.e. read+write, plus exec if the segment is
///   executable, whatever the segment's own `PF_R`/`PF_W`.
///
/// Steps must be applied in order, each replacing whatever earlier steps put
/// in its pages (contents and protection), because that is what the
/// `MAP_FIXED` mappings in `load_elf_binary` do when two segments share a
/// page: the page ends up with the later segment's protection, and its
/// bytes are the file page (the same file page for both, since offsets and
/// addresses are congruent) with the later segment's zero tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapStep {
    /// Index into [`ElfInfo::segments`].
    pub segment: usize,
    /// First page (page aligned).
    pub start: u64,
    /// End of the file-backed pages (page aligned; `== start` if the
    /// segment has no file contents).
    pub file_end: u64,
    /// End of all pages (page aligned, `> start`).
    pub end: u64,
    /// Protection of `[start, file_end)`.
    pub prot: Prot,
    /// Protection of `[file_end, end)`.
    pub anon_prot: Prot,
    /// File offset of the byte at `start` (page aligned).
    pub file_offset: u64,
    /// Number of file bytes copied to `start..`; `<= file_end - start`.
    pub file_len: u64,
}

impl MapStep {
    /// File bytes to copy: `(file offset, length, destination address)`.
    pub fn copy(&self) -> (u64, u64, u64) {
        (self.file_offset, self.file_len, self.start)
    }

    /// The part of the file-backed pages that must read as zero
    /// (`padzero`): `[start + file_len, file_end)`, possibly empty.
    pub fn zero_tail(&self) -> (u64, u64) {
        (self.start + self.file_len, self.file_end)
    }

    /// The anonymous zero pages (bss beyond the last file page):
    /// `[file_end, end)`, possibly empty.
    pub fn anon(&self) -> (u64, u64) {
        (self.file_end, self.end)
    }

    /// Protection of the page containing `addr`.
    pub fn prot_at(&self, addr: u64) -> Prot {
        if addr < self.file_end {
            self.prot
        } else {
            self.anon_prot
        }
    }

    /// Fills `out` (one page) with the contents this step gives the page at
    /// `page` (a page-aligned address in `[start, end)`).
    ///
    /// Fails with [`ElfError::AddressOverflow`] if `page` is not such an
    /// address or `out` is not `PAGE_SIZE` long, and with
    /// [`ElfError::Truncated`] if `file` is shorter than the plan expects.
    pub fn page_contents(&self, file: &[u8], page: u64, out: &mut [u8]) -> Result<(), ElfError> {
        if out.len() as u64 != PAGE_SIZE || page_offset(page) != 0 || page < self.start || page >= self.end {
            return Err(ElfError::AddressOverflow);
        }
        out.fill(0);
        let off = page - self.start;
        if off < self.file_len {
            let n = (self.file_len - off).min(PAGE_SIZE);
            let src = self.file_offset.checked_add(off).ok_or(ElfError::Truncated)?;
            let src = usize::try_from(src).map_err(|_| ElfError::Truncated)?;
            let n = n as usize; // <= PAGE_SIZE
            let bytes = src.checked_add(n).and_then(|e| file.get(src..e)).ok_or(ElfError::Truncated)?;
            out[..n].copy_from_slice(bytes);
        }
        Ok(())
    }
}

/// The page-granular mapping plan for the image at `bias`: one [`MapStep`]
/// per `PT_LOAD` with a non-zero `p_memsz`, in file order.
///
/// Follows `elf_load` (Linux 6.7+; for normal layouts identical to what 6.6
/// does with `elf_map`, `set_brk` and `padzero`): the file pages
/// `[ELF_PAGESTART(v), ELF_PAGEALIGN(v + p_filesz))` from file offset
/// `p_offset - ELF_PAGEOFFSET(v)`; if `p_memsz > p_filesz`, zero from
/// `v + p_filesz` to the page end and anonymous pages up to
/// `ELF_PAGEALIGN(v + p_memsz)`. A segment without file contents is all
/// anonymous pages. See [`MapStep`] for how to apply the steps.
///
/// `bias` must be page aligned ([`ElfError::MisalignedSegment`] otherwise);
/// the segments are re-validated, so a hand-made [`ElfInfo`] cannot make
/// this panic.
pub fn mapping_plan(info: &ElfInfo, bias: u64) -> Result<Vec<MapStep>, ElfError> {
    if page_offset(bias) != 0 {
        return Err(ElfError::MisalignedSegment);
    }
    if info.segments.is_empty() {
        return Err(ElfError::NoLoadSegments);
    }
    for s in &info.segments {
        check_load_segment(s, info.file_size)?;
    }
    check_overlaps(&info.segments)?;

    let mut steps = Vec::with_capacity(info.segments.len());
    for (i, s) in info.segments.iter().enumerate() {
        if s.memsz == 0 {
            continue;
        }
        let (vstart, vend) = biased_span(s.vaddr, s.memsz, bias)?;
        let start = page_start(vstart);
        let end = page_align(vend)?;
        let pageoff = page_offset(s.vaddr);
        let (file_end, file_offset, file_len) = if s.filesz == 0 {
            (start, 0, 0)
        } else {
            let file_offset = s.offset.checked_sub(pageoff).ok_or(ElfError::MisalignedSegment)?;
            let file_end = page_align(vstart + s.filesz)?; // filesz <= memsz: no overflow
            let file_len = if s.memsz > s.filesz {
                pageoff + s.filesz
            } else {
                // offset + filesz <= file_size was checked above.
                (file_end - start).min(info.file_size - file_offset)
            };
            (file_end, file_offset, file_len)
        };
        steps.push(MapStep {
            segment: i,
            start,
            file_end,
            end,
            prot: s.prot,
            anon_prot: Prot { read: true, write: true, exec: s.prot.exec },
            file_offset,
            file_len,
        });
    }
    Ok(steps)
}

/// Where the heap starts: `mm->start_brk = mm->brk =
/// ELF_PAGEALIGN(elf_brk)`, with `elf_brk` the highest `p_vaddr + p_memsz`
/// of the `PT_LOAD`s plus the bias (`load_elf_binary`, no brk
/// randomization).
///
/// Never panics; for an [`ElfInfo`] from [`parse`] and the bias from
/// [`load_bias`] nothing saturates.
pub fn brk_start(info: &ElfInfo, bias: u64) -> u64 {
    let elf_brk = info.segments.iter().map(|s| s.vaddr.saturating_add(s.memsz)).max().unwrap_or(0).wrapping_add(bias);
    page_start(elf_brk.saturating_add(PAGE_SIZE - 1))
}

// Auxiliary vector keys: include/uapi/linux/auxvec.h, arch/x86/include/uapi/asm/auxvec.h.
/// End of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// Entry to be ignored.
pub const AT_IGNORE: u64 = 1;
/// File descriptor of the program.
pub const AT_EXECFD: u64 = 2;
/// Address of the program headers.
pub const AT_PHDR: u64 = 3;
/// Size of one program header.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// Page size.
pub const AT_PAGESZ: u64 = 6;
/// Interpreter base address (0 without interpreter).
pub const AT_BASE: u64 = 7;
/// Flags (0, or `AT_FLAGS_PRESERVE_ARGV0` from binfmt_misc).
pub const AT_FLAGS: u64 = 8;
/// Program entry point.
pub const AT_ENTRY: u64 = 9;
/// Program is not ELF.
pub const AT_NOTELF: u64 = 10;
/// Real uid.
pub const AT_UID: u64 = 11;
/// Effective uid.
pub const AT_EUID: u64 = 12;
/// Real gid.
pub const AT_GID: u64 = 13;
/// Effective gid.
pub const AT_EGID: u64 = 14;
/// Address of the platform string.
pub const AT_PLATFORM: u64 = 15;
/// CPU feature bits (CPUID 1 EDX on x86).
pub const AT_HWCAP: u64 = 16;
/// Frequency of `times()`.
pub const AT_CLKTCK: u64 = 17;
/// Secure mode (setuid etc.).
pub const AT_SECURE: u64 = 23;
/// Address of the base platform string.
pub const AT_BASE_PLATFORM: u64 = 24;
/// Address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// More CPU feature bits.
pub const AT_HWCAP2: u64 = 26;
/// Supported rseq feature size.
pub const AT_RSEQ_FEATURE_SIZE: u64 = 27;
/// rseq allocation alignment.
pub const AT_RSEQ_ALIGN: u64 = 28;
/// Address of the executed file name.
pub const AT_EXECFN: u64 = 31;
/// Address of the vDSO ELF header.
pub const AT_SYSINFO_EHDR: u64 = 33;
/// Minimal signal stack size.
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Kernel-provided values for [`exec_auxv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxvValues {
    /// vDSO address (`AT_SYSINFO_EHDR` is omitted when `None`, as Linux
    /// does with `vdso=0`).
    pub sysinfo_ehdr: Option<u64>,
    /// `AT_MINSIGSTKSZ`: the signal frame size (`get_sigframe_size()`).
    pub minsigstksz: u64,
    /// `AT_HWCAP`: on x86, CPUID(1).EDX.
    pub hwcap: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
    /// `AT_CLKTCK`: `CLOCKS_PER_SEC` = `USER_HZ` = 100 on Linux.
    pub clktck: u64,
    /// `AT_UID`.
    pub uid: u64,
    /// `AT_EUID`.
    pub euid: u64,
    /// `AT_GID`.
    pub gid: u64,
    /// `AT_EGID`.
    pub egid: u64,
    /// `AT_SECURE`.
    pub secure: bool,
    /// `AT_BASE`: where the interpreter was loaded (its load bias); 0
    /// without one.
    pub interp_base: u64,
}

/// The auxv entries `create_elf_tables` emits, in its order (x86_64 `ARCH_DLINFO` first), minus the ones
/// [`build_stack`] adds itself (`AT_RANDOM`, `AT_EXECFN`, `AT_PLATFORM`,
/// `AT_NULL`). Pass the result as [`StackParams::auxv`]; `build_stack` puts
/// its entries back in the same places, reproducing Linux's order exactly.
/// (`AT_RSEQ_*` are left out: they are only emitted with rseq support.)
pub fn exec_auxv(info: &ElfInfo, bias: u64, v: &AuxvValues) -> Vec<(u64, u64)> {
    let mut a = Vec::with_capacity(18);
    if let Some(vdso) = v.sysinfo_ehdr {
        a.push((AT_SYSINFO_EHDR, vdso));
    }
    a.push((AT_MINSIGSTKSZ, v.minsigstksz));
    a.push((AT_HWCAP, v.hwcap));
    a.push((AT_PAGESZ, PAGE_SIZE));
    a.push((AT_CLKTCK, v.clktck));
    a.push((AT_PHDR, info.phdr_vaddr.unwrap_or(0).wrapping_add(bias)));
    a.push((AT_PHENT, PHDR_SIZE));
    a.push((AT_PHNUM, u64::from(info.phnum)));
    a.push((AT_BASE, v.interp_base));
    a.push((AT_FLAGS, 0));
    a.push((AT_ENTRY, info.entry.wrapping_add(bias)));
    a.push((AT_UID, v.uid));
    a.push((AT_EUID, v.euid));
    a.push((AT_GID, v.gid));
    a.push((AT_EGID, v.egid));
    a.push((AT_SECURE, u64::from(v.secure)));
    a.push((AT_HWCAP2, v.hwcap2));
    a
}

/// `MAX_ARG_STRLEN`: longest single argument or environment string,
/// terminating NUL included (`valid_arg_len` in fs/exec.c).
pub const MAX_ARG_STRLEN: u64 = 32 * PAGE_SIZE;
/// `MAX_ARG_STRINGS`: most argv or envp entries (`count` in fs/exec.c).
pub const MAX_ARG_STRINGS: u64 = 0x7fff_ffff;
/// `ARG_MAX` (32 pages): the string space allowed even with tiny stacks.
pub const ARG_MAX: u64 = 32 * PAGE_SIZE;
/// `_STK_LIM`, the default `RLIMIT_STACK` (8 MiB); [`build_stack`] assumes it.
pub const DEFAULT_STACK_RLIMIT: u64 = 8 << 20;

/// The string space `bprm_stack_limits` allows for a stack rlimit, before
/// the pointer arrays are subtracted: `max(min(_STK_LIM / 4 * 3,
/// rlim / 4), ARG_MAX)`. 2 MiB for the default 8 MiB.
pub const fn arg_space_limit(rlim_stack: u64) -> u64 {
    let three_quarters = DEFAULT_STACK_RLIMIT / 4 * 3;
    let quarter = rlim_stack / 4;
    let limit = if quarter < three_quarters { quarter } else { three_quarters };
    if limit > ARG_MAX {
        limit
    } else {
        ARG_MAX
    }
}

/// Inputs of [`build_stack`].
#[derive(Debug, Clone, Copy)]
pub struct StackParams<'a> {
    /// End of the stack mapping (exclusive); Linux: [`STACK_TOP`].
    pub stack_top: u64,
    /// Argument strings, without terminating NUL. Empty: Linux (5.18+)
    /// substitutes `argv = [""]`, and so do we.
    pub argv: &'a [&'a [u8]],
    /// Environment strings, without terminating NUL.
    pub envp: &'a [&'a [u8]],
    /// `bprm->filename` (the path as passed to `execve`), target of
    /// `AT_EXECFN`.
    pub execfn: &'a [u8],
    /// `ELF_PLATFORM` (`"x86_64"`), target of `AT_PLATFORM`; empty to omit
    /// both the string and the entry.
    pub platform: &'a [u8],
    /// The 16 bytes `AT_RANDOM` points at.
    pub random: [u8; 16],
    /// Auxv entries without `AT_NULL`, `AT_RANDOM`, `AT_PLATFORM`,
    /// `AT_EXECFN`: the builder adds those with the right addresses (see
    /// [`exec_auxv`] for the rest, in Linux's order).
    pub auxv: &'a [(u64, u64)],
}

/// The initial stack, ready to copy to `[sp, stack_top)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackImage {
    /// Initial `%rsp`; 16-byte aligned, `argc` is at `sp`.
    pub sp: u64,
    /// The bytes of `[sp, stack_top)`.
    pub bytes: Vec<u8>,
    /// `mm->arg_start`: first argv string.
    pub argv_start: u64,
    /// `mm->arg_end` (= `env_start`): just past the last argv string's NUL.
    pub argv_end: u64,
    /// `mm->env_start`.
    pub env_start: u64,
    /// `mm->env_end`: just past the last environment string's NUL.
    pub env_end: u64,
    /// `argc` as stored (1 if `argv` was empty).
    pub argc: u64,
    /// Where the `execfn` string is (`AT_EXECFN`).
    pub execfn_addr: u64,
    /// Where the platform string is (`AT_PLATFORM`), if any.
    pub platform_addr: Option<u64>,
    /// Where the 16 random bytes are (`AT_RANDOM`).
    pub random_addr: u64,
    /// The complete auxv as written, `AT_NULL` last (`mm->saved_auxv`, for
    /// `/proc/pid/auxv`).
    pub auxv: Vec<(u64, u64)>,
}

/// Why the initial stack cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// A string is `MAX_ARG_STRLEN` bytes or longer, there are more than
    /// `MAX_ARG_STRINGS` of them, or all strings together exceed
    /// [`arg_space_limit`] minus the pointer arrays. `E2BIG`.
    TooBig,
    /// A string contains a NUL byte (C strings from user space cannot).
    /// `EINVAL`.
    InteriorNul,
    /// The caller's auxv contains a key the builder owns (`AT_NULL`,
    /// `AT_RANDOM`, `AT_PLATFORM`, `AT_EXECFN`). `EINVAL`.
    ReservedAuxKey(u64),
    /// `stack_top` is too low to hold the image. `EFAULT`.
    AddressOverflow,
}

impl StackError {
    /// The errno Linux's `execve` returns for this error (positive).
    pub const fn errno(self) -> i32 {
        match self {
            StackError::TooBig => errno::E2BIG,
            StackError::InteriorNul | StackError::ReservedAuxKey(_) => errno::EINVAL,
            StackError::AddressOverflow => errno::EFAULT,
        }
    }
}

/// Length including the NUL, with `copy_strings`' checks.
fn arg_len(s: &[u8]) -> Result<u64, StackError> {
    if s.contains(&0) {
        return Err(StackError::InteriorNul);
    }
    let len = s.len() as u64 + 1;
    if len > MAX_ARG_STRLEN {
        return Err(StackError::TooBig);
    }
    Ok(len)
}

fn strings_len(strings: &[&[u8]]) -> Result<u64, StackError> {
    strings.iter().try_fold(0u64, |acc, s| acc.checked_add(arg_len(s)?).ok_or(StackError::TooBig))
}

/// Inserts the builder-owned entries where `create_elf_tables` emits them:
/// `AT_RANDOM` right after `AT_SECURE`, then (after `AT_HWCAP2` if that
/// follows) `AT_EXECFN` and `AT_PLATFORM`; whatever has no anchor is
/// appended. `AT_NULL` last.
fn merge_auxv(
    caller: &[(u64, u64)],
    random_addr: u64,
    execfn_addr: u64,
    platform_addr: Option<u64>,
) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(caller.len() + 4);
    let tail = |out: &mut Vec<(u64, u64)>| {
        out.push((AT_EXECFN, execfn_addr));
        if let Some(p) = platform_addr {
            out.push((AT_PLATFORM, p));
        }
    };
    let (mut random_done, mut tail_done) = (false, false);
    for (i, &(key, val)) in caller.iter().enumerate() {
        out.push((key, val));
        if key == AT_SECURE && !random_done {
            out.push((AT_RANDOM, random_addr));
            random_done = true;
            let hwcap2_next = caller.get(i + 1).is_some_and(|e| e.0 == AT_HWCAP2);
            if !hwcap2_next && !tail_done {
                tail(&mut out);
                tail_done = true;
            }
        } else if key == AT_HWCAP2 && random_done && !tail_done {
            tail(&mut out);
            tail_done = true;
        }
    }
    if !random_done {
        out.push((AT_RANDOM, random_addr));
    }
    if !tail_done {
        tail(&mut out);
    }
    out.push((AT_NULL, 0));
    out
}

/// Builds the initial user stack as Linux does, assuming the default 8 MiB
/// stack rlimit (so at most 2 MiB of strings); see
/// [`build_stack_with_rlimit`].
pub fn build_stack(p: &StackParams) -> Result<StackImage, StackError> {
    build_stack_with_rlimit(p, DEFAULT_STACK_RLIMIT)
}

/// Builds the initial user stack exactly as `do_execveat_common` +
/// `create_elf_tables` lay it out, from `stack_top` down:
///
/// 1. 8 zero bytes (`bprm->p = vma->vm_end - sizeof(void *)`),
/// 2. the `execfn` string (`copy_string_kernel(bprm->filename)`, so it is
///    highest; `bprm->exec`, i.e. `AT_EXECFN`, points at it),
/// 3. the environment strings, then the argument strings (`copy_strings`
///    copies the last string first, so each block is in order and the argv
///    strings are the lowest, contiguous: `arg_start..arg_end` and
///    `env_start..env_end` as `/proc/pid/cmdline` and `environ` expect),
/// 4. `p &= ~15` (`arch_align_stack` without randomization),
/// 5. the platform string (`"x86_64\0"`, `AT_PLATFORM`),
/// 6. the 16 `AT_RANDOM` bytes,
/// 7. then `sp = STACK_ROUND(p - auxv words, argc + 1 + envc + 1 + 1)`
///    (rounded down to 16), and from `sp` up: `argc`, the argv pointers,
///    NULL, the envp pointers, NULL, the auxv pairs ending with `AT_NULL`.
///    The gap up to the random bytes is zero padding.
///
/// Limits are `copy_strings`' and `bprm_stack_limits`': each string with its
/// NUL at most `MAX_ARG_STRLEN` (128 KiB); execfn + envp + argv strings
/// together at most [`arg_space_limit`]`(rlim_stack)` minus 8 bytes per
/// argv/envp pointer (counting `max(argc, 1)`); otherwise
/// [`StackError::TooBig`] (`E2BIG`).
pub fn build_stack_with_rlimit(p: &StackParams, rlim_stack: u64) -> Result<StackImage, StackError> {
    const EMPTY: &[u8] = b"";
    let empty_argv: [&[u8]; 1] = [EMPTY];
    let argv: &[&[u8]] = if p.argv.is_empty() { &empty_argv } else { p.argv };
    let argc = argv.len() as u64;
    let envc = p.envp.len() as u64;
    if argc > MAX_ARG_STRINGS || envc > MAX_ARG_STRINGS {
        return Err(StackError::TooBig);
    }
    if let Some(&(key, _)) = p.auxv.iter().find(|(k, _)| matches!(*k, AT_NULL | AT_RANDOM | AT_PLATFORM | AT_EXECFN)) {
        return Err(StackError::ReservedAuxKey(key));
    }
    if p.platform.contains(&0) {
        return Err(StackError::InteriorNul);
    }

    // bprm_stack_limits.
    let mut limit = arg_space_limit(rlim_stack);
    let ptr_size = (p.argv.len().max(1) as u64 + envc) * 8; // < 2^35
    if limit <= ptr_size {
        return Err(StackError::TooBig);
    }
    limit -= ptr_size;
    let execfn_len = arg_len(p.execfn)?;
    let env_total = strings_len(p.envp)?;
    let argv_total = strings_len(argv)?;
    let total = execfn_len.checked_add(env_total).and_then(|t| t.checked_add(argv_total)).ok_or(StackError::TooBig)?;
    if total > limit {
        return Err(StackError::TooBig);
    }

    let sub = |a: u64, b: u64| a.checked_sub(b).ok_or(StackError::AddressOverflow);
    let top = p.stack_top;
    let execfn_addr = sub(sub(top, 8)?, execfn_len)?;
    let env_end = execfn_addr;
    let env_start = sub(env_end, env_total)?;
    let argv_end = env_start;
    let argv_start = sub(argv_end, argv_total)?;

    // create_elf_tables.
    let mut pos = argv_start & !15;
    let platform_addr = if p.platform.is_empty() {
        None
    } else {
        pos = sub(pos, p.platform.len() as u64 + 1)?;
        Some(pos)
    };
    let random_addr = sub(pos, 16)?;
    let auxv = merge_auxv(p.auxv, random_addr, execfn_addr, platform_addr);
    let ei_bytes = (auxv.len() as u64) * 16;
    let items = argc + 1 + envc + 1 + 1;
    let sp = sub(sub(random_addr, ei_bytes)?, items * 8)? & !15;

    let size = usize::try_from(top - sp).map_err(|_| StackError::AddressOverflow)?;
    let mut bytes = vec![0u8; size];
    let mut put = |addr: u64, data: &[u8]| -> Result<(), StackError> {
        let off = usize::try_from(addr - sp).map_err(|_| StackError::AddressOverflow)?;
        off.checked_add(data.len())
            .and_then(|end| bytes.get_mut(off..end))
            .ok_or(StackError::AddressOverflow)?
            .copy_from_slice(data);
        Ok(())
    };

    // Strings (the NULs are the zero fill).
    put(execfn_addr, p.execfn)?;
    let mut at = env_start;
    let mut envp_ptrs = Vec::with_capacity(p.envp.len());
    for s in p.envp {
        envp_ptrs.push(at);
        put(at, s)?;
        at += s.len() as u64 + 1;
    }
    let mut at = argv_start;
    let mut argv_ptrs = Vec::with_capacity(argv.len());
    for s in argv {
        argv_ptrs.push(at);
        put(at, s)?;
        at += s.len() as u64 + 1;
    }
    if let Some(addr) = platform_addr {
        put(addr, p.platform)?;
    }
    put(random_addr, &p.random)?;

    // argc, argv[], NULL, envp[], NULL, auxv.
    let mut w = sp;
    let mut word = |v: u64| -> Result<(), StackError> {
        put(w, &v.to_le_bytes())?;
        w += 8;
        Ok(())
    };
    word(argc)?;
    for &a in &argv_ptrs {
        word(a)?;
    }
    word(0)?;
    for &e in &envp_ptrs {
        word(e)?;
    }
    word(0)?;
    for &(k, v) in &auxv {
        word(k)?;
        word(v)?;
    }

    Ok(StackImage {
        sp,
        bytes,
        argv_start,
        argv_end,
        env_start,
        env_end,
        argc,
        execfn_addr,
        platform_addr,
        random_addr,
        auxv,
    })
}
