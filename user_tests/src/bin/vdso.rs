//! The vDSO (Linux's arch/x86/entry/vdso and lib/vdso): the image the kernel maps into
//! every process and names in AT_SYSINFO_EHDR, found and used the way a libc does (musl's
//! src/internal/vdso.c `__vdsosym`, glibc's `dl_vdso_vsym`): its ELF and program headers,
//! dynamic section, hash tables and symbol versions, the [vdso] and [vvar] mappings, and
//! the functions themselves, each checked against the system call it stands in for.
//!
//! The image is parsed from memory by the small ELF reader below, which checks every read
//! against the [vdso] mapping: a broken image fails a test instead of faulting.

use libc::*;
use std::mem::size_of;
use std::sync::Mutex;
use user_tests::{
    assert_errno, child_args, child_exit, close, exe_path, execve, fork_child, load_byte, on_scratch_machine, pipe,
    read, read_proc, run_in_child, run_tests, store_byte, sys, tests, wait_child, write, Errno, Exit, CHILD_MARKER,
    PAGE,
};

fn main() {
    if let Some(args) = child_args() {
        std::process::exit(child_main(&args));
    }
    run_tests(
        "vdso",
        tests![
            at_sysinfo_ehdr_points_at_a_page_aligned_elf64_x86_64_shared_object,
            the_image_has_one_executable_pt_load_at_offset_zero_and_a_pt_dynamic_inside_it,
            the_dynamic_section_has_the_tables_a_libc_looks_symbols_up_in,
            dt_soname_is_linux_vdso_so_1,
            dt_hash_nchain_counts_every_symbol,
            both_hash_tables_find_every_defined_symbol,
            verdef_defines_the_base_version_and_linux_2_6,
            every_defined_symbol_has_version_linux_2_6,
            the_vdso_functions_resolve_as_global_functions_of_version_linux_2_6,
            the_weak_aliases_name_the_same_functions,
            a_symbol_is_not_found_under_another_version_or_name,
            proc_maps_has_one_r_xp_vdso_mapping_starting_at_at_sysinfo_ehdr,
            proc_maps_has_a_read_only_vvar_mapping_below_the_vdso,
            vdso_clock_gettime_monotonic_agrees_with_the_syscall,
            vdso_clock_gettime_realtime_agrees_with_the_syscall,
            vdso_clock_gettime_boottime_agrees_with_the_syscall,
            vdso_clock_gettime_monotonic_raw_agrees_with_the_syscall,
            vdso_clock_gettime_tai_agrees_with_the_syscall,
            vdso_coarse_clocks_agree_with_the_syscall_and_trail_the_fine_clocks_a_little,
            vdso_clock_gettime_monotonic_never_goes_back_over_100000_calls,
            interleaved_vdso_and_syscall_clock_reads_never_go_back,
            vdso_cpu_time_clocks_agree_with_the_syscall,
            vdso_clock_gettime_of_an_invalid_clock_returns_minus_einval,
            vdso_clock_getres_equals_the_syscall_for_every_clock,
            vdso_gettimeofday_agrees_with_clock_realtime,
            vdso_gettimeofday_with_a_null_timeval_fills_the_timezone,
            vdso_time_agrees_with_the_realtime_seconds,
            vdso_getcpu_reports_an_allowed_cpu_and_node_0,
            vdso_getcpu_follows_sched_setaffinity_to_each_allowed_cpu,
            a_forked_child_has_the_vdso_at_the_same_address_and_it_works,
            after_execve_the_new_image_has_a_valid_vdso,
            mprotect_of_vvar_for_writing_or_executing_is_eacces_and_the_vdso_still_works,
            a_vdso_clock_read_faults_once_vvar_is_mprotected_prot_none,
            writing_the_vdso_text_after_mprotect_is_private_to_the_process,
            threads_calling_the_vdso_see_one_monotonic_clock,
            clock_settime_of_realtime_is_seen_by_the_vdso_at_once,
        ],
    )
}

// ---------------------------------------------------------------------------------------
// ELF
// ---------------------------------------------------------------------------------------

const AT_SYSINFO_EHDR: c_ulong = 33;

const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const DT_NULL: u64 = 0;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_SONAME: u64 = 14;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const STT_NOTYPE: u8 = 0;
const STT_OBJECT: u8 = 1;
const STT_FUNC: u8 = 2;
const STT_COMMON: u8 = 5;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;
const STB_GNU_UNIQUE: u8 = 10;
const VER_FLG_BASE: u16 = 1;
/// The bit of a versym entry that hides the symbol from unversioned lookups ("@" rather
/// than "@@").
const VERSYM_HIDDEN: u16 = 0x8000;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Ehdr {
    e_ident: [u8; 16],
    e_type: u16,
    e_machine: u16,
    e_version: u32,
    e_entry: u64,
    e_phoff: u64,
    e_shoff: u64,
    e_flags: u32,
    e_ehsize: u16,
    e_phentsize: u16,
    e_phnum: u16,
    e_shentsize: u16,
    e_shnum: u16,
    e_shstrndx: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_paddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Sym {
    st_name: u32,
    st_info: u8,
    st_other: u8,
    st_shndx: u16,
    st_value: u64,
    st_size: u64,
}

impl Sym {
    fn kind(&self) -> u8 {
        self.st_info & 0xf
    }
    fn bind(&self) -> u8 {
        self.st_info >> 4
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Verdef {
    vd_version: u16,
    vd_flags: u16,
    vd_ndx: u16,
    vd_cnt: u16,
    vd_hash: u32,
    vd_aux: u32,
    vd_next: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Verdaux {
    vda_name: u32,
    vda_next: u32,
}

/// The SysV ELF hash (DT_HASH, vd_hash).
fn elf_hash(name: &str) -> u32 {
    let mut h: u32 = 0;
    for &c in name.as_bytes() {
        h = (h << 4).wrapping_add(c as u32);
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

/// The GNU hash (DT_GNU_HASH).
fn gnu_hash(name: &str) -> u32 {
    name.bytes().fold(5381u32, |h, c| h.wrapping_mul(33).wrapping_add(c as u32))
}

/// One version definition: the entry and the name of its first Verdaux.
struct VersionDef {
    def: Verdef,
    name: String,
}

/// The vDSO image of this process, read from memory: every read is checked to lie in
/// [base, end), the [vdso] mapping.
struct Image {
    base: usize,
    end: usize,
    ehdr: Ehdr,
    phdrs: Vec<Phdr>,
    /// What the image's virtual addresses are relative to: base + p_offset - p_vaddr of
    /// the PT_LOAD at offset 0 (musl's `base`, glibc's `l_addr`).
    bias: usize,
    /// The (d_tag, d_val) pairs of PT_DYNAMIC, up to DT_NULL.
    dynamic: Vec<(u64, u64)>,
}

impl Image {
    /// The image at `base`, inside a mapping that ends at `end`.
    fn at(base: usize, end: usize) -> Image {
        assert!(base != 0 && base < end, "no vDSO image: [{base:#x}, {end:#x})");
        let mut img =
            Image { base, end, ehdr: unsafe { std::mem::zeroed() }, phdrs: Vec::new(), bias: 0, dynamic: Vec::new() };
        img.ehdr = img.read(base);
        assert_eq!(&img.ehdr.e_ident[..4], b"\x7fELF", "no ELF magic at AT_SYSINFO_EHDR");
        assert_eq!(img.ehdr.e_phentsize as usize, size_of::<Phdr>(), "e_phentsize");
        for i in 0..img.ehdr.e_phnum as usize {
            let ph = img.read::<Phdr>(base + img.ehdr.e_phoff as usize + i * size_of::<Phdr>());
            img.phdrs.push(ph);
        }
        let load = img.load();
        img.bias = base.wrapping_add(load.p_offset as usize).wrapping_sub(load.p_vaddr as usize);
        let dynamic = img.phdrs.iter().find(|p| p.p_type == PT_DYNAMIC).expect("no PT_DYNAMIC").p_offset as usize;
        for i in 0.. {
            let (tag, val) = img.read::<(u64, u64)>(base + dynamic + 16 * i);
            if tag == DT_NULL {
                break;
            }
            img.dynamic.push((tag, val));
        }
        img
    }

    /// A `T` at `addr`, which must lie in the mapping.
    fn read<T: Copy>(&self, addr: usize) -> T {
        assert!(
            addr >= self.base && addr.checked_add(size_of::<T>()).is_some_and(|e| e <= self.end),
            "read of {} bytes at {addr:#x} is outside the vDSO [{:#x}, {:#x})",
            size_of::<T>(),
            self.base,
            self.end
        );
        // SAFETY: the range lies inside the [vdso] mapping, which is readable.
        unsafe { std::ptr::read_unaligned(addr as *const T) }
    }

    /// The first PT_LOAD, which must map the image from file offset 0.
    fn load(&self) -> Phdr {
        let load = *self.phdrs.iter().find(|p| p.p_type == PT_LOAD).expect("no PT_LOAD");
        assert_eq!(load.p_offset, 0, "the first PT_LOAD does not start at offset 0");
        load
    }

    fn dyn_val(&self, tag: u64) -> Option<u64> {
        self.dynamic.iter().find(|d| d.0 == tag).map(|d| d.1)
    }

    /// The address a dynamic entry's d_ptr stands for (bias + d_ptr), as musl computes it.
    fn dyn_ptr(&self, tag: u64) -> Option<usize> {
        self.dyn_val(tag).map(|v| self.bias.wrapping_add(v as usize))
    }

    fn need(&self, tag: u64, what: &str) -> usize {
        self.dyn_ptr(tag).unwrap_or_else(|| panic!("no {what} in the dynamic section"))
    }

    /// The number of symbols: nchain of DT_HASH.
    fn nsyms(&self) -> usize {
        self.read::<u32>(self.need(DT_HASH, "DT_HASH") + 4) as usize
    }

    fn sym(&self, i: usize) -> Sym {
        self.read(self.need(DT_SYMTAB, "DT_SYMTAB") + i * size_of::<Sym>())
    }

    /// The NUL-terminated string at offset `off` of DT_STRTAB (within DT_STRSZ).
    fn string(&self, off: u32) -> String {
        let strtab = self.need(DT_STRTAB, "DT_STRTAB");
        let size = self.dyn_val(DT_STRSZ).expect("no DT_STRSZ") as usize;
        assert!((off as usize) < size, "string offset {off} beyond DT_STRSZ {size}");
        let mut s = Vec::new();
        for i in off as usize..size {
            match self.read::<u8>(strtab + i) {
                0 => return String::from_utf8(s).expect("UTF-8 name"),
                c => s.push(c),
            }
        }
        panic!("string at {off} not terminated within DT_STRSZ");
    }

    fn sym_name(&self, i: usize) -> String {
        self.string(self.sym(i).st_name)
    }

    /// The DT_VERSYM entry of symbol `i`.
    fn versym(&self, i: usize) -> u16 {
        self.read(self.need(DT_VERSYM, "DT_VERSYM") + 2 * i)
    }

    /// The DT_VERDEF chain.
    fn verdefs(&self) -> Vec<VersionDef> {
        let mut at = self.need(DT_VERDEF, "DT_VERDEF");
        let mut out = Vec::new();
        loop {
            let def: Verdef = self.read(at);
            let aux: Verdaux = self.read(at + def.vd_aux as usize);
            out.push(VersionDef { def, name: self.string(aux.vda_name) });
            if def.vd_next == 0 || out.len() > 100 {
                return out;
            }
            at += def.vd_next as usize;
        }
    }

    /// The name of the (non-base) version with index `ndx`, as musl's checkver finds it.
    fn version_name(&self, ndx: u16) -> Option<String> {
        let ndx = ndx & 0x7fff;
        self.verdefs()
            .into_iter()
            .find(|v| v.def.vd_flags & VER_FLG_BASE == 0 && v.def.vd_ndx & 0x7fff == ndx)
            .map(|v| v.name)
    }

    /// musl's `__vdsosym(version, name)`: a linear scan of the DT_HASH nchain symbols for a
    /// defined global or weak one of that name whose version (if the image has versions)
    /// is `version`; its index.
    fn lookup_index(&self, name: &str, version: &str) -> Option<usize> {
        const OK_TYPES: u32 = 1 << STT_NOTYPE | 1 << STT_OBJECT | 1 << STT_FUNC | 1 << STT_COMMON;
        const OK_BINDS: u32 = 1 << STB_GLOBAL | 1 << STB_WEAK | 1 << STB_GNU_UNIQUE;
        let versioned = self.dyn_val(DT_VERSYM).is_some() && self.dyn_val(DT_VERDEF).is_some();
        (0..self.nsyms()).find(|&i| {
            let s = self.sym(i);
            OK_TYPES & 1 << s.kind() != 0
                && OK_BINDS & 1 << s.bind() != 0
                && s.st_shndx != 0
                && self.sym_name(i) == name
                && (!versioned || self.version_name(self.versym(i)).as_deref() == Some(version))
        })
    }

    /// The address of `name@version` (musl's `__vdsosym`).
    fn lookup(&self, name: &str, version: &str) -> Option<usize> {
        self.lookup_index(name, version).map(|i| self.bias.wrapping_add(self.sym(i).st_value as usize))
    }

    /// The index DT_HASH's bucket chain gives `name` (the dynamic loader's SysV lookup).
    fn sysv_hash_lookup(&self, name: &str) -> Option<usize> {
        let h = self.need(DT_HASH, "DT_HASH");
        let nbucket = self.read::<u32>(h) as usize;
        let nchain = self.read::<u32>(h + 4) as usize;
        assert!(nbucket > 0, "DT_HASH with no buckets");
        let chain = h + 8 + 4 * nbucket;
        let mut i = self.read::<u32>(h + 8 + 4 * (elf_hash(name) as usize % nbucket)) as usize;
        let mut steps = 0;
        while i != 0 {
            assert!(i < nchain && steps <= nchain, "DT_HASH chain runs off: index {i}, nchain {nchain}");
            if self.sym_name(i) == name {
                return Some(i);
            }
            i = self.read::<u32>(chain + 4 * i) as usize;
            steps += 1;
        }
        None
    }

    /// (nbuckets, symoffset, bloom words, bloom shift, address of the buckets) of DT_GNU_HASH.
    fn gnu_header(&self) -> Option<(usize, usize, usize, u32, usize)> {
        let g = self.dyn_ptr(DT_GNU_HASH)?;
        let nbuckets = self.read::<u32>(g) as usize;
        let symoffset = self.read::<u32>(g + 4) as usize;
        let bloom = self.read::<u32>(g + 8) as usize;
        let shift = self.read::<u32>(g + 12);
        assert!(nbuckets > 0 && bloom > 0, "DT_GNU_HASH with no buckets or no bloom filter");
        Some((nbuckets, symoffset, bloom, shift, g + 16 + 8 * bloom))
    }

    /// The index DT_GNU_HASH gives `name` (glibc's lookup, bloom filter included).
    fn gnu_hash_lookup(&self, name: &str) -> Option<usize> {
        let (nbuckets, symoffset, bloom, shift, buckets) = self.gnu_header().expect("no DT_GNU_HASH");
        let g = self.dyn_ptr(DT_GNU_HASH).unwrap();
        let h = gnu_hash(name);
        let word = self.read::<u64>(g + 16 + 8 * ((h as usize / 64) % bloom));
        let mask = 1u64 << (h % 64) | 1u64 << ((h >> shift) % 64);
        if word & mask != mask {
            return None;
        }
        let mut i = self.read::<u32>(buckets + 4 * (h as usize % nbuckets)) as usize;
        if i == 0 {
            return None;
        }
        assert!(i >= symoffset, "GNU hash bucket {i} below symoffset {symoffset}");
        let chain = buckets + 4 * nbuckets;
        loop {
            let ch = self.read::<u32>(chain + 4 * (i - symoffset));
            if ch | 1 == h | 1 && self.sym_name(i) == name {
                return Some(i);
            }
            if ch & 1 != 0 {
                return None;
            }
            i += 1;
        }
    }

    /// The number of symbols DT_GNU_HASH covers (symoffset + its chains), as glibc counts them.
    fn gnu_hash_count(&self) -> Option<usize> {
        let (nbuckets, symoffset, _, _, buckets) = self.gnu_header()?;
        let last = (0..nbuckets).map(|b| self.read::<u32>(buckets + 4 * b) as usize).max().unwrap();
        if last == 0 {
            return Some(symoffset);
        }
        let chain = buckets + 4 * nbuckets;
        let mut i = last;
        while self.read::<u32>(chain + 4 * (i - symoffset)) & 1 == 0 {
            i += 1;
        }
        Some(i + 1)
    }

    /// The number of entries of the SHT_DYNSYM section, if the section headers lie in the
    /// mapping.
    fn dynsym_section_entries(&self) -> Option<usize> {
        const SHT_DYNSYM: u32 = 11;
        let (off, num, size) = (self.ehdr.e_shoff as usize, self.ehdr.e_shnum as usize, self.ehdr.e_shentsize);
        if off == 0 || size != 64 || self.base + off + 64 * num > self.end {
            return None;
        }
        (0..num).find_map(|i| {
            let sh = self.base + off + 64 * i;
            // sh_type at 4, sh_size at 32, sh_entsize at 56.
            (self.read::<u32>(sh + 4) == SHT_DYNSYM)
                .then(|| self.read::<u64>(sh + 32) as usize / (self.read::<u64>(sh + 56) as usize).max(1))
        })
    }

    /// Whether [addr, addr + len) lies in the executable PT_LOAD.
    fn in_exec_load(&self, addr: usize, len: usize) -> bool {
        let load = self.load();
        let start = self.bias.wrapping_add(load.p_vaddr as usize);
        load.p_flags & PF_X != 0 && addr >= start && addr + len <= start + load.p_filesz as usize
    }
}

// ---------------------------------------------------------------------------------------
// The mappings
// ---------------------------------------------------------------------------------------

/// One line of /proc/self/maps.
#[derive(Clone, Debug)]
struct Map {
    start: usize,
    end: usize,
    perms: String,
    name: String,
}

fn maps() -> Vec<Map> {
    read_proc(c"/proc/self/maps")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (s, e) = f[0].split_once('-').unwrap();
            Map {
                start: usize::from_str_radix(s, 16).unwrap(),
                end: usize::from_str_radix(e, 16).unwrap(),
                perms: f[1].to_string(),
                name: f.get(5..).map(|n| n.join(" ")).unwrap_or_default(),
            }
        })
        .collect()
}

/// The one [vdso] mapping.
fn vdso_map() -> Map {
    let v: Vec<Map> = maps().into_iter().filter(|m| m.name == "[vdso]").collect();
    assert_eq!(v.len(), 1, "[vdso] lines in /proc/self/maps: {v:?}");
    v[0].clone()
}

/// The one [vvar] mapping.
fn vvar_map() -> Map {
    let v: Vec<Map> = maps().into_iter().filter(|m| m.name == "[vvar]").collect();
    assert_eq!(v.len(), 1, "[vvar] lines in /proc/self/maps: {v:?}");
    v[0].clone()
}

fn sysinfo_ehdr() -> usize {
    unsafe { getauxval(AT_SYSINFO_EHDR) as usize }
}

/// This process's vDSO image, bounded by its [vdso] mapping.
fn image() -> Image {
    let base = sysinfo_ehdr();
    assert_ne!(base, 0, "no AT_SYSINFO_EHDR");
    let map = vdso_map();
    assert!(map.start <= base && base < map.end, "AT_SYSINFO_EHDR {base:#x} is not in [vdso] {map:?}");
    Image::at(base, map.end)
}

// ---------------------------------------------------------------------------------------
// The functions
// ---------------------------------------------------------------------------------------

const LINUX_2_6: &str = "LINUX_2.6";
/// The functions a libc takes from the vDSO, with the weak alias each has.
const FUNCTIONS: [(&str, &str); 5] = [
    ("__vdso_clock_gettime", "clock_gettime"),
    ("__vdso_gettimeofday", "gettimeofday"),
    ("__vdso_time", "time"),
    ("__vdso_getcpu", "getcpu"),
    ("__vdso_clock_getres", "clock_getres"),
];

const NS: i128 = 1_000_000_000;
const MS: i128 = 1_000_000;

/// `struct timezone`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Tz {
    minuteswest: c_int,
    dsttime: c_int,
}

type ClockFn = unsafe extern "C" fn(clockid_t, *mut timespec) -> c_int;
type GtodFn = unsafe extern "C" fn(*mut timeval, *mut Tz) -> c_int;
type TimeFn = unsafe extern "C" fn(*mut i64) -> i64;
type GetcpuFn = unsafe extern "C" fn(*mut c_uint, *mut c_uint, *mut c_void) -> c_int;

/// The vDSO functions, resolved as musl resolves them.
#[derive(Clone, Copy)]
struct Fns {
    clock_gettime: ClockFn,
    gettimeofday: GtodFn,
    time: TimeFn,
    getcpu: GetcpuFn,
    clock_getres: ClockFn,
}

fn fns() -> Fns {
    let img = image();
    let addr = |name: &str| {
        let a = img.lookup(name, LINUX_2_6).unwrap_or_else(|| panic!("{name}@{LINUX_2_6} not found"));
        assert!(img.in_exec_load(a, 1), "{name} at {a:#x} is outside the executable PT_LOAD");
        a
    };
    // SAFETY: each address is that of the vDSO function of that name and version, whose
    // prototype is the libc function's.
    unsafe {
        Fns {
            clock_gettime: std::mem::transmute::<usize, ClockFn>(addr("__vdso_clock_gettime")),
            gettimeofday: std::mem::transmute::<usize, GtodFn>(addr("__vdso_gettimeofday")),
            time: std::mem::transmute::<usize, TimeFn>(addr("__vdso_time")),
            getcpu: std::mem::transmute::<usize, GetcpuFn>(addr("__vdso_getcpu")),
            clock_getres: std::mem::transmute::<usize, ClockFn>(addr("__vdso_clock_getres")),
        }
    }
}

const POISON: timespec = timespec { tv_sec: -7, tv_nsec: -7 };

impl Fns {
    /// vDSO clock_gettime: (its return value, the time).
    fn gettime_raw(&self, clock: clockid_t) -> (c_int, timespec) {
        let mut ts = POISON;
        let r = unsafe { (self.clock_gettime)(clock, &mut ts) };
        (r, ts)
    }

    /// vDSO clock_gettime of `clock` in nanoseconds, checked to succeed with a valid time.
    fn now(&self, clock: clockid_t) -> i128 {
        let (r, ts) = self.gettime_raw(clock);
        assert_eq!(r, 0, "vDSO clock_gettime({clock})");
        assert!((0..1_000_000_000).contains(&ts.tv_nsec), "vDSO clock {clock}: tv_nsec {}", ts.tv_nsec);
        ns(&ts)
    }

    fn getres_raw(&self, clock: clockid_t, res: *mut timespec) -> c_int {
        unsafe { (self.clock_getres)(clock, res) }
    }

    fn getcpu(&self) -> (c_int, u32, u32) {
        let (mut cpu, mut node) = (u32::MAX, u32::MAX);
        let r = unsafe { (self.getcpu)(&mut cpu, &mut node, std::ptr::null_mut()) };
        (r, cpu, node)
    }
}

fn ns(ts: &timespec) -> i128 {
    ts.tv_sec as i128 * NS + ts.tv_nsec as i128
}

/// clock_gettime through the system call, in nanoseconds.
fn sys_now(clock: clockid_t) -> i128 {
    let mut ts = POISON;
    sys!(SYS_clock_gettime, clock, &mut ts as *mut timespec).unwrap_or_else(|e| panic!("clock_gettime({clock}): {e}"));
    ns(&ts)
}

/// `rounds` times: a system call read, a vDSO read, a system call read of `clock`, in
/// that order; the vDSO's value lies between the other two.
fn assert_sandwiched(clock: clockid_t, rounds: usize) {
    let f = fns();
    for _ in 0..rounds {
        let t1 = sys_now(clock);
        let v = f.now(clock);
        let t3 = sys_now(clock);
        assert!(t1 <= v && v <= t3, "clock {clock}: syscall {t1}, then vDSO {v}, then syscall {t3}");
    }
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> (cpu_set_t, Vec<usize>) {
    let mut set: cpu_set_t = unsafe { std::mem::zeroed() };
    sys!(SYS_sched_getaffinity, 0, size_of::<cpu_set_t>(), &mut set as *mut cpu_set_t).unwrap();
    let cpus = (0..CPU_SETSIZE as usize).filter(|&c| unsafe { CPU_ISSET(c, &set) }).collect();
    (set, cpus)
}

fn set_affinity(set: &cpu_set_t) {
    sys!(SYS_sched_setaffinity, 0, size_of::<cpu_set_t>(), set as *const cpu_set_t).expect("sched_setaffinity");
}

/// Puts the thread's affinity mask back when dropped (also when a test fails).
struct Affinity(cpu_set_t);

impl Drop for Affinity {
    fn drop(&mut self) {
        set_affinity(&self.0);
    }
}

fn sys_getcpu() -> (u32, u32) {
    let (mut cpu, mut node) = (u32::MAX, u32::MAX);
    sys!(SYS_getcpu, &mut cpu as *mut u32, &mut node as *mut u32, 0).unwrap();
    (cpu, node)
}

// ---------------------------------------------------------------------------------------
// The image
// ---------------------------------------------------------------------------------------

fn at_sysinfo_ehdr_points_at_a_page_aligned_elf64_x86_64_shared_object() {
    let base = sysinfo_ehdr();
    assert_ne!(base, 0, "AT_SYSINFO_EHDR");
    assert_eq!(base % PAGE, 0, "AT_SYSINFO_EHDR {base:#x}");
    let e = image().ehdr;
    assert_eq!(&e.e_ident[..4], b"\x7fELF");
    assert_eq!(e.e_ident[4], 2, "EI_CLASS is ELFCLASS64");
    assert_eq!(e.e_ident[5], 1, "EI_DATA is ELFDATA2LSB");
    assert_eq!(e.e_ident[6], 1, "EI_VERSION");
    assert_eq!(e.e_type, ET_DYN, "e_type");
    assert_eq!(e.e_machine, EM_X86_64, "e_machine");
    assert_eq!(e.e_version, 1, "e_version");
    assert_eq!(e.e_ehsize as usize, size_of::<Ehdr>(), "e_ehsize");
    assert_eq!(e.e_phentsize as usize, size_of::<Phdr>(), "e_phentsize");
    assert!(e.e_phnum > 0, "e_phnum");
}

fn the_image_has_one_executable_pt_load_at_offset_zero_and_a_pt_dynamic_inside_it() {
    let img = image();
    let loads: Vec<&Phdr> = img.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    assert_eq!(loads.len(), 1, "PT_LOADs: {loads:?}");
    let load = img.load();
    assert_eq!(load.p_flags & (PF_R | PF_W | PF_X), PF_R | PF_X, "PT_LOAD flags");
    assert!(load.p_filesz > 0 && load.p_filesz <= load.p_memsz, "{load:?}");
    assert_eq!(img.bias % PAGE, 0, "load bias {:#x}", img.bias);
    // The segment lies in the [vdso] mapping.
    let start = img.bias.wrapping_add(load.p_vaddr as usize);
    assert!(start >= img.base && start + load.p_memsz as usize <= img.end, "{load:?} with bias {:#x}", img.bias);
    let dynamics: Vec<&Phdr> = img.phdrs.iter().filter(|p| p.p_type == PT_DYNAMIC).collect();
    assert_eq!(dynamics.len(), 1, "PT_DYNAMICs: {dynamics:?}");
    let d = dynamics[0];
    assert!(d.p_offset + d.p_filesz <= load.p_filesz, "PT_DYNAMIC {d:?} outside the PT_LOAD {load:?}");
    assert_eq!(d.p_vaddr - load.p_vaddr, d.p_offset, "PT_DYNAMIC's address and offset disagree");
    assert_eq!(d.p_filesz % 16, 0, "PT_DYNAMIC size");
}

fn the_dynamic_section_has_the_tables_a_libc_looks_symbols_up_in() {
    let img = image();
    for (tag, what) in [
        (DT_SYMTAB, "DT_SYMTAB"),
        (DT_STRTAB, "DT_STRTAB"),
        (DT_HASH, "DT_HASH"),
        (DT_VERSYM, "DT_VERSYM"),
        (DT_VERDEF, "DT_VERDEF"),
    ] {
        let p = img.need(tag, what);
        assert!(img.in_exec_load(p, 4), "{what} at {p:#x} is outside the PT_LOAD");
    }
    assert_eq!(img.dyn_val(DT_SYMENT), Some(size_of::<Sym>() as u64), "DT_SYMENT");
    let strsz = img.dyn_val(DT_STRSZ).expect("DT_STRSZ") as usize;
    assert!(img.in_exec_load(img.need(DT_STRTAB, "DT_STRTAB"), strsz), "DT_STRTAB + DT_STRSZ outside the PT_LOAD");
    // The string table starts with the empty string.
    assert_eq!(img.string(0), "");
}

fn dt_soname_is_linux_vdso_so_1() {
    let img = image();
    let soname = img.dyn_val(DT_SONAME).expect("no DT_SONAME");
    assert_eq!(img.string(soname as u32), "linux-vdso.so.1");
}

fn dt_hash_nchain_counts_every_symbol() {
    let img = image();
    let n = img.nsyms();
    assert!(n > FUNCTIONS.len(), "nchain {n}");
    // The symbol table, the version table and every name fit in the image.
    assert!(img.in_exec_load(img.need(DT_SYMTAB, "DT_SYMTAB"), n * size_of::<Sym>()), "{n} symbols");
    assert!(img.in_exec_load(img.need(DT_VERSYM, "DT_VERSYM"), 2 * n), "{n} versym entries");
    let s0 = img.sym(0);
    assert_eq!((s0.st_name, s0.st_info, s0.st_shndx, s0.st_value), (0, 0, 0, 0), "symbol 0 is the null symbol");
    assert_eq!(img.versym(0), 0, "symbol 0's version is local");
    for i in 1..n {
        assert!(!img.sym_name(i).is_empty(), "symbol {i} has no name");
    }
    // DT_GNU_HASH (Linux has both tables) covers the same number of symbols.
    if let Some(count) = img.gnu_hash_count() {
        assert_eq!(count, n, "symbols by DT_GNU_HASH's chains vs DT_HASH's nchain");
    }
    // So does the .dynsym section, where the section headers are mapped (Linux maps the
    // whole stripped file, section headers included; no libc needs them).
    if let Some(size) = img.dynsym_section_entries() {
        assert_eq!(size, n, "entries of the SHT_DYNSYM section vs DT_HASH's nchain");
    }
}

fn both_hash_tables_find_every_defined_symbol() {
    let img = image();
    let symoffset = img.gnu_header().map(|g| g.1);
    let mut found = 0;
    for i in 1..img.nsyms() {
        let name = img.sym_name(i);
        assert_eq!(img.sysv_hash_lookup(&name), Some(i), "DT_HASH lookup of {name}");
        if img.sym(i).st_shndx != 0 {
            if let Some(off) = symoffset {
                assert!(i >= off, "defined symbol {name} ({i}) below the GNU hash symoffset {off}");
                assert_eq!(img.gnu_hash_lookup(&name), Some(i), "DT_GNU_HASH lookup of {name}");
            }
            found += 1;
        }
    }
    assert!(found >= FUNCTIONS.len(), "{found} defined symbols");
    assert_eq!(img.sysv_hash_lookup("__vdso_no_such_function"), None);
    if symoffset.is_some() {
        assert_eq!(img.gnu_hash_lookup("__vdso_no_such_function"), None);
    }
}

fn verdef_defines_the_base_version_and_linux_2_6() {
    let img = image();
    let defs = img.verdefs();
    if let Some(n) = img.dyn_val(DT_VERDEFNUM) {
        assert_eq!(defs.len() as u64, n, "DT_VERDEFNUM");
    }
    for v in &defs {
        assert_eq!(v.def.vd_version, 1, "vd_version of {}", v.name);
        assert!(v.def.vd_cnt >= 1, "vd_cnt of {}", v.name);
        assert_eq!(v.def.vd_hash, elf_hash(&v.name), "vd_hash of {}", v.name);
    }
    let base: Vec<&VersionDef> = defs.iter().filter(|v| v.def.vd_flags & VER_FLG_BASE != 0).collect();
    assert_eq!(base.len(), 1, "base versions");
    assert_eq!((base[0].def.vd_ndx, base[0].name.as_str()), (1, "linux-vdso.so.1"), "the base version");
    let linux: Vec<&VersionDef> = defs.iter().filter(|v| v.name == LINUX_2_6).collect();
    assert_eq!(linux.len(), 1, "{LINUX_2_6} definitions");
    assert_eq!(linux[0].def.vd_flags & VER_FLG_BASE, 0, "{LINUX_2_6} is not the base");
    assert!(linux[0].def.vd_ndx >= 2, "{LINUX_2_6}'s index {}", linux[0].def.vd_ndx);
}

fn every_defined_symbol_has_version_linux_2_6() {
    let img = image();
    for i in 1..img.nsyms() {
        if img.sym(i).st_shndx != 0 {
            let name = img.sym_name(i);
            assert_eq!(img.version_name(img.versym(i)).as_deref(), Some(LINUX_2_6), "version of {name}");
        }
    }
}

fn the_vdso_functions_resolve_as_global_functions_of_version_linux_2_6() {
    let img = image();
    for (name, _) in FUNCTIONS {
        let i = img.lookup_index(name, LINUX_2_6).unwrap_or_else(|| panic!("{name}@{LINUX_2_6} not found"));
        let s = img.sym(i);
        assert_eq!(s.kind(), STT_FUNC, "{name}'s type");
        assert_eq!(s.bind(), STB_GLOBAL, "{name}'s binding");
        assert_ne!(s.st_shndx, 0, "{name} is defined");
        assert_eq!(s.st_other & 3, 0, "{name}'s visibility is default");
        assert_eq!(img.versym(i) & VERSYM_HIDDEN, 0, "{name} is its default version (@@)");
        let addr = img.bias.wrapping_add(s.st_value as usize);
        assert!(img.in_exec_load(addr, (s.st_size as usize).max(1)), "{name} at {addr:#x} (+{})", s.st_size);
    }
}

fn the_weak_aliases_name_the_same_functions() {
    let img = image();
    for (name, alias) in FUNCTIONS {
        let i = img.lookup_index(alias, LINUX_2_6).unwrap_or_else(|| panic!("{alias}@{LINUX_2_6} not found"));
        let s = img.sym(i);
        assert_eq!((s.kind(), s.bind()), (STT_FUNC, STB_WEAK), "{alias}'s type and binding");
        assert_eq!(img.lookup(alias, LINUX_2_6), img.lookup(name, LINUX_2_6), "{alias} and {name}");
    }
}

fn a_symbol_is_not_found_under_another_version_or_name() {
    let img = image();
    assert!(img.lookup("__vdso_clock_gettime", LINUX_2_6).is_some());
    assert_eq!(img.lookup("__vdso_clock_gettime", "LINUX_2.5"), None);
    assert_eq!(img.lookup("__vdso_clock_gettime", "linux-vdso.so.1"), None, "the base version names no symbol");
    assert_eq!(img.lookup("__vdso_clock_gettime64", LINUX_2_6), None);
    assert_eq!(img.lookup("__vdso_no_such_function", LINUX_2_6), None);
    assert_eq!(img.lookup("", LINUX_2_6), None);
}

// ---------------------------------------------------------------------------------------
// The mappings
// ---------------------------------------------------------------------------------------

fn proc_maps_has_one_r_xp_vdso_mapping_starting_at_at_sysinfo_ehdr() {
    let m = vdso_map();
    assert_eq!(m.start, sysinfo_ehdr(), "[vdso] {m:?} vs AT_SYSINFO_EHDR");
    assert_eq!(m.perms, "r-xp", "[vdso] permissions");
    let size = m.end - m.start;
    assert!(size >= PAGE && size.is_multiple_of(PAGE), "[vdso] size {size:#x}");
    let img = image();
    let load = img.load();
    assert!(load.p_filesz as usize <= size, "PT_LOAD {load:?} larger than [vdso] ({size:#x})");
}

fn proc_maps_has_a_read_only_vvar_mapping_below_the_vdso() {
    let all = maps();
    let vdso = vdso_map();
    let vvar = vvar_map();
    assert_eq!(vvar.perms, "r--p", "[vvar] permissions");
    assert!(vvar.end <= vdso.start && vvar.end > vvar.start, "[vvar] {vvar:?} not below [vdso] {vdso:?}");
    // 6.1 has [vvar] right below [vdso]; later kernels put [vvar_vclock] between them: the
    // gap is covered by [vvar*] mappings with no hole.
    let mut at = vvar.end;
    while at < vdso.start {
        let next = all.iter().find(|m| m.start == at).unwrap_or_else(|| panic!("hole at {at:#x} above [vvar]"));
        assert!(next.name.starts_with("[vvar"), "{next:?} between [vvar] and [vdso]");
        assert_eq!(next.perms, "r--p", "{next:?}");
        at = next.end;
    }
    assert_eq!(at, vdso.start);
}

// ---------------------------------------------------------------------------------------
// The clocks
// ---------------------------------------------------------------------------------------

fn vdso_clock_gettime_monotonic_agrees_with_the_syscall() {
    assert_sandwiched(CLOCK_MONOTONIC, 2000);
}

fn vdso_clock_gettime_realtime_agrees_with_the_syscall() {
    assert_sandwiched(CLOCK_REALTIME, 2000);
}

fn vdso_clock_gettime_boottime_agrees_with_the_syscall() {
    assert_sandwiched(CLOCK_BOOTTIME, 2000);
}

fn vdso_clock_gettime_monotonic_raw_agrees_with_the_syscall() {
    assert_sandwiched(CLOCK_MONOTONIC_RAW, 2000);
}

fn vdso_clock_gettime_tai_agrees_with_the_syscall() {
    assert_sandwiched(CLOCK_TAI, 2000);
}

fn vdso_coarse_clocks_agree_with_the_syscall_and_trail_the_fine_clocks_a_little() {
    let f = fns();
    for (coarse, fine) in [(CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC), (CLOCK_REALTIME_COARSE, CLOCK_REALTIME)] {
        let mut last = 0;
        for _ in 0..2000 {
            let t1 = sys_now(coarse);
            let v = f.now(coarse);
            let t3 = sys_now(coarse);
            let later = sys_now(fine);
            assert!(t1 <= v && v <= t3, "clock {coarse}: syscall {t1}, then vDSO {v}, then syscall {t3}");
            assert!(v >= last, "clock {coarse} went back from {last} to {v}");
            // A coarse clock is the fine one as of the last tick.
            assert!(v <= later && later - v < 200 * MS, "clock {coarse} {v} vs clock {fine} {later} read after it");
            last = v;
        }
    }
}

fn vdso_clock_gettime_monotonic_never_goes_back_over_100000_calls() {
    let f = fns();
    let first = f.now(CLOCK_MONOTONIC);
    let mut last = first;
    for i in 0..100_000 {
        let v = f.now(CLOCK_MONOTONIC);
        assert!(v >= last, "call {i}: {v} after {last}");
        last = v;
    }
    assert!(last > first, "the clock did not advance over 100000 calls");
}

fn interleaved_vdso_and_syscall_clock_reads_never_go_back() {
    let f = fns();
    for clock in [CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW] {
        let mut last = 0;
        for i in 0..10_000 {
            let (v, how) = if i % 2 == 0 { (f.now(clock), "vDSO") } else { (sys_now(clock), "syscall") };
            assert!(v >= last, "clock {clock}, read {i} ({how}): {v} after {last}");
            last = v;
        }
    }
}

fn vdso_cpu_time_clocks_agree_with_the_syscall() {
    let f = fns();
    // Some work, so that neither clock is zero.
    let mut x = 1u64;
    for i in 0..100_000u64 {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    for clock in [CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID] {
        for _ in 0..100 {
            let t1 = sys_now(clock);
            let v = f.now(clock);
            let t3 = sys_now(clock);
            assert!(0 < t1 && t1 <= v && v <= t3, "clock {clock}: syscall {t1}, then vDSO {v}, then syscall {t3}");
        }
    }
}

fn vdso_clock_gettime_of_an_invalid_clock_returns_minus_einval() {
    let f = fns();
    // 10 was CLOCK_SGI_CYCLE, never valid on x86_64; -1 is no valid CPU clock.
    for clock in [10, 100, -1] {
        let (r, ts) = f.gettime_raw(clock);
        // The vDSO returns the system call's raw result, not -1 and errno.
        assert_eq!(r, -EINVAL, "vDSO clock_gettime({clock})");
        assert_eq!((ts.tv_sec, ts.tv_nsec), (POISON.tv_sec, POISON.tv_nsec), "clock {clock}: the timespec was written");
        let mut s = POISON;
        assert_errno!(sys!(SYS_clock_gettime, clock, &mut s as *mut timespec), EINVAL);
        let mut res = POISON;
        assert_eq!(f.getres_raw(clock, &mut res), -EINVAL, "vDSO clock_getres({clock})");
    }
}

fn vdso_clock_getres_equals_the_syscall_for_every_clock() {
    let f = fns();
    for clock in [
        CLOCK_REALTIME,
        CLOCK_MONOTONIC,
        CLOCK_PROCESS_CPUTIME_ID,
        CLOCK_THREAD_CPUTIME_ID,
        CLOCK_MONOTONIC_RAW,
        CLOCK_REALTIME_COARSE,
        CLOCK_MONOTONIC_COARSE,
        CLOCK_BOOTTIME,
        CLOCK_TAI,
    ] {
        let mut v = POISON;
        assert_eq!(f.getres_raw(clock, &mut v), 0, "vDSO clock_getres({clock})");
        let mut s = POISON;
        sys!(SYS_clock_getres, clock, &mut s as *mut timespec).unwrap();
        assert_eq!((v.tv_sec, v.tv_nsec), (s.tv_sec, s.tv_nsec), "clock_getres({clock}): vDSO vs syscall");
        assert!(ns(&v) > 0 && ns(&v) <= NS, "clock {clock}'s resolution {}", ns(&v));
    }
    // A NULL res is allowed.
    assert_eq!(f.getres_raw(CLOCK_MONOTONIC, std::ptr::null_mut()), 0, "vDSO clock_getres(CLOCK_MONOTONIC, NULL)");
    assert_eq!(sys!(SYS_clock_getres, CLOCK_MONOTONIC, 0), Ok(0));
}

fn vdso_gettimeofday_agrees_with_clock_realtime() {
    let f = fns();
    for _ in 0..2000 {
        let mut tv = timeval { tv_sec: -7, tv_usec: -7 };
        let t1 = sys_now(CLOCK_REALTIME);
        let r = unsafe { (f.gettimeofday)(&mut tv, std::ptr::null_mut()) };
        let t3 = sys_now(CLOCK_REALTIME);
        assert_eq!(r, 0, "vDSO gettimeofday");
        assert!((0..1_000_000).contains(&tv.tv_usec), "tv_usec {}", tv.tv_usec);
        let v = tv.tv_sec as i128 * NS + tv.tv_usec as i128 * 1000;
        // gettimeofday truncates to microseconds.
        assert!(t1 / 1000 * 1000 <= v && v <= t3, "syscall {t1}, then vDSO gettimeofday {v}, then syscall {t3}");
    }
}

fn vdso_gettimeofday_with_a_null_timeval_fills_the_timezone() {
    let f = fns();
    let mut tz = Tz { minuteswest: -7777, dsttime: -7777 };
    assert_eq!(unsafe { (f.gettimeofday)(std::ptr::null_mut(), &mut tz) }, 0, "gettimeofday(NULL, &tz)");
    let mut stz = Tz { minuteswest: -5555, dsttime: -5555 };
    sys!(SYS_gettimeofday, 0, &mut stz as *mut Tz).unwrap();
    assert_eq!(tz, stz, "the vDSO's timezone vs the syscall's");
    assert_eq!(unsafe { (f.gettimeofday)(std::ptr::null_mut(), std::ptr::null_mut()) }, 0, "gettimeofday(NULL, NULL)");
    // Both at once.
    let mut tv = timeval { tv_sec: 0, tv_usec: 0 };
    let mut tz2 = Tz { minuteswest: -7777, dsttime: -7777 };
    assert_eq!(unsafe { (f.gettimeofday)(&mut tv, &mut tz2) }, 0);
    assert_eq!(tz2, stz);
    assert!(tv.tv_sec > 1_577_836_800, "gettimeofday's seconds {} are before 2020", tv.tv_sec);
}

fn vdso_time_agrees_with_the_realtime_seconds() {
    let f = fns();
    for _ in 0..2000 {
        // time() is the seconds of the realtime clock as of the last tick: those of
        // CLOCK_REALTIME_COARSE, and at most a second behind CLOCK_REALTIME.
        let fine1 = sys_now(CLOCK_REALTIME) / NS;
        let c1 = sys_now(CLOCK_REALTIME_COARSE) / NS;
        let v = unsafe { (f.time)(std::ptr::null_mut()) } as i128;
        let mut t: i64 = -7;
        let v2 = unsafe { (f.time)(&mut t) } as i128;
        let c3 = sys_now(CLOCK_REALTIME_COARSE) / NS;
        let fine3 = sys_now(CLOCK_REALTIME) / NS;
        assert_eq!(t as i128, v2, "time(&t) stored another value than it returned");
        assert!(c1 <= v && v <= v2 && v2 <= c3, "coarse {c1}, then time {v} and {v2}, then coarse {c3}");
        assert!(fine1 - 1 <= v && v2 <= fine3, "realtime {fine1}, then time {v} and {v2}, then realtime {fine3}");
    }
}

fn vdso_getcpu_reports_an_allowed_cpu_and_node_0() {
    let f = fns();
    let (_, cpus) = allowed_cpus();
    let (r, cpu, node) = f.getcpu();
    assert_eq!(r, 0, "vDSO getcpu");
    assert!(cpus.contains(&(cpu as usize)), "CPU {cpu} is not among the allowed {cpus:?}");
    assert_eq!(node, sys_getcpu().1, "the vDSO's node vs the syscall's");
    // A machine with one NUMA node (our kernel, the Linux guest) reports node 0.
    if !std::path::Path::new("/sys/devices/system/node/node1").exists() {
        assert_eq!(node, 0, "node");
    }
    // Either pointer may be NULL.
    let mut c = u32::MAX;
    assert_eq!(unsafe { (f.getcpu)(&mut c, std::ptr::null_mut(), std::ptr::null_mut()) }, 0);
    assert!(cpus.contains(&(c as usize)), "CPU {c}");
    let mut n = u32::MAX;
    assert_eq!(unsafe { (f.getcpu)(std::ptr::null_mut(), &mut n, std::ptr::null_mut()) }, 0);
    assert_eq!(n, node);
}

fn vdso_getcpu_follows_sched_setaffinity_to_each_allowed_cpu() {
    let f = fns();
    let (all, cpus) = allowed_cpus();
    let _restore = Affinity(all);
    for round in 0..3 {
        for &c in &cpus {
            let mut one: cpu_set_t = unsafe { std::mem::zeroed() };
            unsafe { CPU_SET(c, &mut one) };
            set_affinity(&one);
            let (r, cpu, _) = f.getcpu();
            assert_eq!((r, cpu as usize), (0, c), "round {round}: vDSO getcpu pinned to CPU {c}");
            assert_eq!(sys_getcpu().0 as usize, c, "round {round}: the getcpu syscall pinned to CPU {c}");
        }
    }
    drop(_restore);
    assert_eq!(allowed_cpus().1, cpus, "the affinity was put back");
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

fn a_forked_child_has_the_vdso_at_the_same_address_and_it_works() {
    let base = sysinfo_ehdr();
    let parent = vdso_map();
    run_in_child(|| {
        assert_eq!(sysinfo_ehdr(), base);
        let m = vdso_map();
        assert_eq!((m.start, m.end, m.perms.as_str()), (parent.start, parent.end, "r-xp"), "the child's [vdso]");
        assert_sandwiched(CLOCK_MONOTONIC, 100);
        assert_sandwiched(CLOCK_REALTIME, 100);
        let (r, cpu, _) = fns().getcpu();
        assert_eq!(r, 0);
        assert!(allowed_cpus().1.contains(&(cpu as usize)));
    });
}

/// Re-executes this binary in child mode to check its fresh vDSO (see [`exec_checks`]),
/// expecting byte 15 of the image (the end of e_ident's padding) to be `byte15`: how the
/// child ended and what it reported.
fn exec_child(byte15: u8) -> (Exit, String) {
    let (r, w) = pipe(O_CLOEXEC).unwrap();
    let exe = exe_path();
    let pid = fork_child(|| {
        // The write end goes through the exec.
        sys!(SYS_fcntl, w, F_SETFD, 0).unwrap();
        let path = exe.to_str().unwrap();
        100 + execve(exe, &[path, CHILD_MARKER, "exec-check", &w.to_string(), &byte15.to_string()], &[]).0
    });
    close(w).unwrap();
    let exit = wait_child(pid);
    sys!(SYS_fcntl, r, F_SETFL, O_NONBLOCK).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = read(r, &mut buf).unwrap_or(0);
    close(r).unwrap();
    (exit, String::from_utf8_lossy(&buf[..n]).replace('\n', " | "))
}

/// Child mode: `exec-check FD BYTE15` checks the vDSO of this freshly executed image,
/// writing a failure's message to FD.
fn child_main(args: &[String]) -> i32 {
    match args {
        [what, fd, byte15] if what == "exec-check" => {
            let fd: i32 = fd.parse().unwrap();
            std::panic::set_hook(Box::new(move |info| {
                let _ = write(fd, info.to_string().as_bytes());
            }));
            exec_checks(byte15.parse().unwrap());
            close(fd).unwrap();
            0
        }
        _ => 2,
    }
}

fn exec_checks(byte15: u8) {
    let base = sysinfo_ehdr();
    assert_ne!(base, 0, "AT_SYSINFO_EHDR after execve");
    assert_eq!(base % PAGE, 0);
    let m = vdso_map();
    assert_eq!((m.start, m.perms.as_str()), (base, "r-xp"), "[vdso] after execve");
    vvar_map();
    let img = image();
    assert_eq!((img.ehdr.e_type, img.ehdr.e_machine), (ET_DYN, EM_X86_64));
    assert_eq!(load_byte(base + 15), byte15, "byte 15 of the fresh image");
    for (name, _) in FUNCTIONS {
        assert!(img.lookup(name, LINUX_2_6).is_some(), "{name} after execve");
    }
    assert_sandwiched(CLOCK_MONOTONIC, 100);
    assert_sandwiched(CLOCK_REALTIME, 100);
}

fn after_execve_the_new_image_has_a_valid_vdso() {
    let byte15 = load_byte(sysinfo_ehdr() + 15);
    let (exit, msg) = exec_child(byte15);
    assert_eq!(exit, Exit::Code(0), "the executed child: {msg}");
}

fn mprotect_of_vvar_for_writing_or_executing_is_eacces_and_the_vdso_still_works() {
    let vvar = vvar_map();
    let len = vvar.end - vvar.start;
    // [vvar] may never be writable or executable (no VM_MAYWRITE, no VM_MAYEXEC).
    assert_errno!(sys!(SYS_mprotect, vvar.start, len, PROT_READ | PROT_WRITE), EACCES);
    assert_errno!(sys!(SYS_mprotect, vvar.start, len, PROT_READ | PROT_EXEC), EACCES);
    assert_errno!(sys!(SYS_mprotect, vvar.start, PAGE, PROT_WRITE), EACCES);
    assert_eq!(vvar_map().perms, "r--p", "[vvar] after the failed mprotects");
    assert_sandwiched(CLOCK_MONOTONIC, 100);
    assert_sandwiched(CLOCK_REALTIME, 100);
}

fn a_vdso_clock_read_faults_once_vvar_is_mprotected_prot_none() {
    let f = fns();
    let vvar = vvar_map();
    let exit = child_exit(|| {
        if sys!(SYS_mprotect, vvar.start, vvar.end - vvar.start, PROT_NONE).is_err() {
            return 3;
        }
        if vvar_map().perms != "---p" {
            return 4;
        }
        // The clocks' data live in [vvar]: reading a clock now faults.
        f.now(CLOCK_MONOTONIC);
        5
    });
    assert_eq!(exit, Exit::Signal(SIGSEGV));
    // This process's [vvar] is untouched.
    assert_eq!(vvar_map().perms, "r--p");
    assert_sandwiched(CLOCK_MONOTONIC, 10);
}

fn writing_the_vdso_text_after_mprotect_is_private_to_the_process() {
    let base = sysinfo_ehdr();
    let size = vdso_map().end - base;
    let orig = load_byte(base + 15);
    let changed = orig ^ 0xa5;
    run_in_child(|| {
        // [vdso] may be made writable (VM_MAYWRITE, for debuggers' breakpoints): a write
        // then copies the page for this process alone.
        sys!(SYS_mprotect, base, size, PROT_READ | PROT_WRITE | PROT_EXEC).unwrap();
        assert_eq!(vdso_map().perms, "rwxp");
        store_byte(base + 15, changed);
        assert_eq!(load_byte(base + 15), changed);
        assert_sandwiched(CLOCK_MONOTONIC, 100);
        // A child forked now gets this process's copy.
        assert_eq!(child_exit(|| if load_byte(base + 15) == changed { 0 } else { 1 }), Exit::Code(0), "forked child");
        // A freshly executed program gets the kernel's image.
        let (exit, msg) = exec_child(orig);
        assert_eq!(exit, Exit::Code(0), "the executed child: {msg}");
    });
    assert_eq!(load_byte(base + 15), orig, "the parent's vDSO changed");
    assert_eq!(vdso_map().perms, "r-xp");
    assert_sandwiched(CLOCK_MONOTONIC, 100);
}

fn threads_calling_the_vdso_see_one_monotonic_clock() {
    let f = fns();
    let last = Mutex::new(0i128);
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let last = &last;
                s.spawn(move || -> Result<(), String> {
                    for i in 0..10_000 {
                        let mut l = last.lock().unwrap();
                        let (r, ts) = f.gettime_raw(CLOCK_MONOTONIC);
                        let v = ns(&ts);
                        if r != 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) || v < *l {
                            return Err(format!("thread {t}, call {i}: returned {r}, {v} after {l}"));
                        }
                        *l = v;
                        drop(l);
                        if i % 1000 == 0 {
                            let t1 = sys_now(CLOCK_REALTIME);
                            let (r, ts) = f.gettime_raw(CLOCK_REALTIME);
                            let t3 = sys_now(CLOCK_REALTIME);
                            if r != 0 || !(t1 <= ns(&ts) && ns(&ts) <= t3) {
                                return Err(format!("thread {t}: realtime {t1}, vDSO {} ({r}), {t3}", ns(&ts)));
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into()))).collect()
    });
    for r in results {
        r.unwrap();
    }
}

fn clock_settime_of_realtime_is_seen_by_the_vdso_at_once() {
    // Setting the realtime clock reaches every process on the machine: only on a VM booted
    // for the tests (our kernel, the Linux guest), never on the host.
    if !on_scratch_machine() {
        return;
    }
    run_in_child(|| {
        let f = fns();
        const STEP: i128 = 1000 * NS;
        let set = |t: i128| {
            let ts = timespec { tv_sec: (t / NS) as i64, tv_nsec: (t % NS) as c_long };
            sys!(SYS_clock_settime, CLOCK_REALTIME, &ts as *const timespec)
        };
        // Nothing may fail between the step and the step back.
        let t0 = sys_now(CLOCK_REALTIME);
        let forward = set(t0 + STEP);
        let (r, ts) = f.gettime_raw(CLOCK_REALTIME);
        let (rc, tsc) = f.gettime_raw(CLOCK_REALTIME_COARSE);
        let mut back: Result<i64, Errno> = Ok(0);
        if forward.is_ok() {
            let now = sys_now(CLOCK_REALTIME);
            back = set(now - STEP);
        }
        forward.unwrap();
        back.unwrap();
        assert_eq!((r, rc), (0, 0));
        let (v, vc) = (ns(&ts), ns(&tsc));
        assert!(v - t0 >= STEP && v - t0 < STEP + 5 * NS, "vDSO realtime {v} after stepping {t0} by {STEP}");
        assert!(vc - t0 >= STEP - NS && vc - t0 < STEP + 5 * NS, "vDSO coarse realtime {vc} after the step from {t0}");
        let after = f.now(CLOCK_REALTIME);
        assert!(after >= t0 && after - t0 < 5 * NS, "realtime {after} after stepping back (from {t0})");
    });
}
