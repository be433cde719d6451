//! Host tests: synthesized ELF images (and /bin/busybox when present), the
//! mapping plan applied to a simulated address space, and the initial stack
//! parsed back the way a libc's `_start` walks it.

use super::*;
use std::collections::BTreeMap;

const RX: u32 = PF_R | PF_X;
const RW: u32 = PF_R | PF_W;

#[derive(Clone, Copy)]
struct Ph {
    ty: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph { ty: PT_LOAD, flags, offset, vaddr, filesz, memsz, align: PAGE_SIZE }
}

fn ph(ty: u32, flags: u32) -> Ph {
    Ph { ty, flags, offset: 0, vaddr: 0, filesz: 0, memsz: 0, align: 0 }
}

/// Non-zero filler, so that zeroing and copying are observable.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8 + 1
}

fn put16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes an ELF64 header (program headers right after it, at offset 64)
/// and the program headers; the rest of the `len` bytes is [`pattern`].
fn build(e_type: u16, entry: u64, phs: &[Ph], len: usize) -> Vec<u8> {
    let hdr_end = 64 + 56 * phs.len();
    let mut f: Vec<u8> = (0..len.max(hdr_end)).map(pattern).collect();
    f[..hdr_end].fill(0);
    f[0..4].copy_from_slice(&ELFMAG);
    f[4] = ELFCLASS64;
    f[5] = ELFDATA2LSB;
    f[6] = 1;
    put16(&mut f, 16, e_type);
    put16(&mut f, 18, EM_X86_64);
    put32(&mut f, 20, 1);
    put64(&mut f, 24, entry);
    put64(&mut f, 32, 64);
    put16(&mut f, 52, 64);
    put16(&mut f, 54, 56);
    put16(&mut f, 56, phs.len() as u16);
    put16(&mut f, 58, 64);
    for (i, p) in phs.iter().enumerate() {
        let b = 64 + 56 * i;
        put32(&mut f, b, p.ty);
        put32(&mut f, b + 4, p.flags);
        put64(&mut f, b + 8, p.offset);
        put64(&mut f, b + 16, p.vaddr);
        put64(&mut f, b + 24, p.vaddr);
        put64(&mut f, b + 32, p.filesz);
        put64(&mut f, b + 40, p.memsz);
        put64(&mut f, b + 48, p.align);
    }
    f
}

/// A typical static `ET_EXEC`: text covering the headers, then data + bss
/// starting mid-page; the data ends exactly at the end of the file.
fn exec_phs() -> Vec<Ph> {
    vec![load(RX, 0, 0x40_0000, 0x1800, 0x1800), load(RW, 0x1e10, 0x40_2e10, 0x1f0, 0x2000), ph(PT_GNU_STACK, RW)]
}

fn exec_image() -> Vec<u8> {
    build(ET_EXEC, 0x40_0100, &exec_phs(), 0x2000)
}

/// A static-PIE as lld lays it out: R, RX, RW, with PT_PHDR and PT_TLS.
fn pie_phs() -> Vec<Ph> {
    vec![
        Ph { ty: PT_PHDR, flags: PF_R, offset: 64, vaddr: 64, filesz: 6 * 56, memsz: 6 * 56, align: 8 },
        load(PF_R, 0, 0, 0x800, 0x800),
        load(RX, 0x1000, 0x1000, 0x600, 0x600),
        load(RW, 0x2000, 0x3000, 0x100, 0x1000),
        Ph { ty: PT_TLS, flags: PF_R, offset: 0x2000, vaddr: 0x3000, filesz: 0x10, memsz: 0x40, align: 64 },
        ph(PT_GNU_STACK, RW),
    ]
}

fn pie_image() -> Vec<u8> {
    build(ET_DYN, 0x1100, &pie_phs(), 0x2100)
}

fn set_u16(mut f: Vec<u8>, at: usize, v: u16) -> Vec<u8> {
    put16(&mut f, at, v);
    f
}

fn set_u64(mut f: Vec<u8>, at: usize, v: u64) -> Vec<u8> {
    put64(&mut f, at, v);
    f
}

/// Applies a plan the way the MAP_FIXED mappings do: later steps replace
/// earlier pages. Page -> (protection, contents).
fn simulate(file: &[u8], steps: &[MapStep]) -> BTreeMap<u64, (Prot, Vec<u8>)> {
    let mut mem = BTreeMap::new();
    for st in steps {
        let mut page = st.start;
        while page < st.end {
            let mut buf = vec![0u8; PAGE_SIZE as usize];
            st.page_contents(file, page, &mut buf).unwrap();
            mem.insert(page, (st.prot_at(page), buf));
            page += PAGE_SIZE;
        }
    }
    mem
}

fn mem_byte(mem: &BTreeMap<u64, (Prot, Vec<u8>)>, addr: u64) -> u8 {
    mem[&page_start(addr)].1[page_offset(addr) as usize]
}

// ---------------------------------------------------------------- parse

#[test]
fn parses_host_busybox_static() {
    let Ok(file) = std::fs::read("/bin/busybox") else {
        eprintln!("no /bin/busybox on this host; skipped");
        return;
    };
    let info = parse(&file).expect("busybox parses");
    if info.interp.is_some() {
        eprintln!("/bin/busybox is dynamically linked; skipped");
        return;
    }
    let e_type = u16::from_le_bytes([file[16], file[17]]);
    assert_eq!(info.pie, e_type == ET_DYN);
    assert_eq!(info.phentsize, 56);
    assert!(!info.segments.is_empty());
    let bias = load_bias(&info);
    if !info.pie {
        assert_eq!(bias, 0);
    }
    // AT_PHDR: inside the PT_LOAD whose file range contains e_phoff.
    let holder = info
        .segments
        .iter()
        .find(|s| s.offset <= info.phoff && info.phoff < s.offset + s.filesz)
        .expect("a PT_LOAD maps the program headers");
    assert_eq!(info.phdr_vaddr, Some(info.phoff - holder.offset + holder.vaddr));
    // The entry point is in an executable segment.
    assert!(info.segments.iter().any(|s| s.prot.exec && s.vaddr <= info.entry && info.entry < s.vaddr + s.memsz));
    // Debian's busybox-static has PT_GNU_STACK RW and a PT_TLS.
    assert!(!info.stack_exec);
    assert!(info.tls.is_some());

    let plan = mapping_plan(&info, bias).unwrap();
    assert_eq!(plan.len(), info.segments.iter().filter(|s| s.memsz > 0).count());
    // The mapped program headers read back as the file's program headers.
    let mem = simulate(&file, &plan);
    let phdr_addr = info.phdr_vaddr.unwrap() + bias;
    for i in 0..u64::from(info.phnum) * PHDR_SIZE {
        assert_eq!(mem_byte(&mem, phdr_addr + i), file[(info.phoff + i) as usize]);
    }
    let brk = brk_start(&info, bias);
    assert_eq!(brk % PAGE_SIZE, 0);
    assert!(plan.iter().all(|st| st.end <= brk));
}

#[test]
fn parses_et_exec() {
    let info = parse(&exec_image()).unwrap();
    assert_eq!(info.entry, 0x40_0100);
    assert!(!info.pie);
    assert_eq!(
        info.segments,
        vec![
            Segment {
                vaddr: 0x40_0000,
                memsz: 0x1800,
                offset: 0,
                filesz: 0x1800,
                prot: Prot { read: true, write: false, exec: true },
                align: PAGE_SIZE,
            },
            Segment {
                vaddr: 0x40_2e10,
                memsz: 0x2000,
                offset: 0x1e10,
                filesz: 0x1f0,
                prot: Prot { read: true, write: true, exec: false },
                align: PAGE_SIZE,
            },
        ]
    );
    assert_eq!(info.phdr_vaddr, Some(0x40_0040));
    assert_eq!(info.phoff, 64);
    assert_eq!(info.phnum, 3);
    assert_eq!(info.phentsize, 56);
    assert!(!info.stack_exec);
    assert_eq!(info.tls, None);
    assert_eq!(info.file_size, 0x2000);
    assert_eq!(load_bias(&info), 0);
}

#[test]
fn et_dyn_dyn_base_constant_is_two_thirds_of_task_size_page_aligned() {
    assert_eq!(TASK_SIZE / 3 * 2, ELF_ET_DYN_BASE_RAW);
    assert_eq!(page_start(ELF_ET_DYN_BASE_RAW), ET_DYN_BASE);
}

#[test]
fn pie_bias_is_dyn_base_minus_first_page() {
    let info = parse(&pie_image()).unwrap();
    assert!(info.pie);
    assert_eq!(info.segments.len(), 3);
    assert_eq!(load_bias(&info), ET_DYN_BASE);

    // Linked at 0x10000: the image still starts at ET_DYN_BASE.
    let phs: Vec<Ph> = pie_phs()
        .into_iter()
        .map(|mut p| {
            if p.ty != PT_GNU_STACK {
                p.vaddr += 0x1_0000;
            }
            p
        })
        .collect();
    let info = parse(&build(ET_DYN, 0x1_1100, &phs, 0x2100)).unwrap();
    let bias = load_bias(&info);
    assert_eq!(bias, ET_DYN_BASE - 0x1_0000);
    assert_eq!(mapping_plan(&info, bias).unwrap()[0].start, ET_DYN_BASE);
}

#[test]
fn pie_bias_with_unaligned_first_vaddr_rounds_down_like_linux() {
    // ELF_PAGESTART(0x555555554000 - 0x123) = 0x555555553000.
    let f = build(ET_DYN, 0x200, &[load(RX, 0x123, 0x123, 0x200, 0x200)], 0x400);
    let info = parse(&f).unwrap();
    let bias = load_bias(&info);
    assert_eq!(bias, ET_DYN_BASE - PAGE_SIZE);
    assert_eq!(mapping_plan(&info, bias).unwrap()[0].start, ET_DYN_BASE - PAGE_SIZE);
}

#[test]
fn pie_bias_honours_largest_power_of_two_p_align() {
    let mut phs = pie_phs();
    phs[2].align = 0x20_0000;
    phs[3].align = 0x3000; // not a power of two: ignored (maximum_alignment)
    let info = parse(&build(ET_DYN, 0x1100, &phs, 0x2100)).unwrap();
    assert_eq!(load_bias(&info), 0x5555_5540_0000);
}

#[test]
fn pie_linked_above_dyn_base_gets_negative_bias() {
    let base = 0x7000_0000_0000;
    let f = build(ET_DYN, base + 0x100, &[load(RX, 0, base, 0x300, 0x300)], 0x300);
    let info = parse(&f).unwrap();
    let bias = load_bias(&info);
    assert_eq!(bias, ET_DYN_BASE.wrapping_sub(base));
    let plan = mapping_plan(&info, bias).unwrap();
    assert_eq!(plan[0].start, ET_DYN_BASE);
    let auxv = exec_auxv(&info, bias, &auxv_values());
    assert!(auxv.contains(&(AT_ENTRY, ET_DYN_BASE + 0x100)));
    assert!(auxv.contains(&(AT_PHDR, ET_DYN_BASE + 64)));
}

#[test]
fn phdr_address_comes_from_load_containing_phoff_not_pt_phdr() {
    // Linux 6.6 ignores PT_PHDR when a PT_LOAD maps the table.
    let mut phs = exec_phs();
    phs.push(Ph { ty: PT_PHDR, flags: PF_R, offset: 64, vaddr: 0x99_0040, filesz: 224, memsz: 224, align: 8 });
    let info = parse(&build(ET_EXEC, 0x40_0100, &phs, 0x2000)).unwrap();
    assert_eq!(info.phdr_vaddr, Some(0x40_0040));

    let info = parse(&pie_image()).unwrap();
    assert_eq!(info.phdr_vaddr, Some(64));
    let auxv = exec_auxv(&info, ET_DYN_BASE, &auxv_values());
    assert!(auxv.contains(&(AT_PHDR, ET_DYN_BASE + 64)));
    assert!(auxv.contains(&(AT_PHNUM, 6)));
    assert!(auxv.contains(&(AT_PHENT, 56)));
}

#[test]
fn phdr_address_falls_back_to_pt_phdr_when_no_load_maps_the_table() {
    // The only PT_LOAD starts at file offset 0x1000, after the headers.
    let phs = [
        Ph { ty: PT_PHDR, flags: PF_R, offset: 64, vaddr: 0x40_0040, filesz: 112, memsz: 112, align: 8 },
        load(RX, 0x1000, 0x40_1000, 0x100, 0x100),
    ];
    let info = parse(&build(ET_EXEC, 0x40_1000, &phs, 0x1100)).unwrap();
    assert_eq!(info.phdr_vaddr, Some(0x40_0040));

    // Neither: None, and AT_PHDR is 0 + bias as in Linux.
    let info = parse(&build(ET_EXEC, 0x40_1000, &phs[1..], 0x1100)).unwrap();
    assert_eq!(info.phdr_vaddr, None);
    assert!(exec_auxv(&info, 0, &auxv_values()).contains(&(AT_PHDR, 0)));
}

fn interp_ph(offset: u64, filesz: u64) -> Ph {
    Ph { ty: PT_INTERP, flags: PF_R, offset, vaddr: 0x40_0000 + offset, filesz, memsz: filesz, align: 1 }
}

#[test]
fn the_first_pt_interp_names_the_interpreter() {
    let mut phs = exec_phs();
    phs.insert(0, interp_ph(0x200, 28));
    phs.insert(1, interp_ph(0x300, 10));
    let info = parse(&build(ET_EXEC, 0x40_0100, &phs, 0x2000)).unwrap();
    assert_eq!(info.interp, Some(InterpRef { offset: 0x200, len: 28 }));
}

#[test]
fn a_static_binary_has_no_interpreter() {
    assert_eq!(parse(&exec_image()).unwrap().interp, None);
}

#[test]
fn a_pt_interp_shorter_than_2_or_longer_than_path_max_is_enoexec() {
    for len in [0, 1, PATH_MAX + 1] {
        let mut phs = exec_phs();
        phs.insert(0, interp_ph(0x200, len));
        let err = parse(&build(ET_EXEC, 0x40_0100, &phs, 0x4000)).unwrap_err();
        assert_eq!(err, ElfError::BadInterpreter, "p_filesz {len}");
        assert_eq!(err.errno(), errno::ENOEXEC);
    }
    let mut phs = exec_phs();
    phs.insert(0, interp_ph(0x200, PATH_MAX));
    assert!(parse(&build(ET_EXEC, 0x40_0100, &phs, 0x2000 + PATH_MAX as usize)).is_ok());
}

#[test]
fn a_pt_interp_past_the_end_of_the_file_is_eio() {
    let mut phs = exec_phs();
    phs.insert(0, interp_ph(0x1ff0, 0x20));
    let err = parse(&build(ET_EXEC, 0x40_0100, &phs, 0x2000)).unwrap_err();
    assert_eq!(err, ElfError::InterpreterPastEof);
    assert_eq!(err.errno(), errno::EIO);
}

#[test]
fn the_interpreter_path_must_end_in_nul_and_stops_at_the_first() {
    assert_eq!(interp_path(b"/lib/ld.so\0"), Ok(&b"/lib/ld.so"[..]));
    assert_eq!(interp_path(b"/lib/ld\0junk\0"), Ok(&b"/lib/ld"[..]));
    assert_eq!(interp_path(b"/lib/ld.so"), Err(ElfError::BadInterpreter));
    assert_eq!(interp_path(b""), Err(ElfError::BadInterpreter));
}

#[test]
fn total_mapping_size_spans_the_lowest_page_to_the_highest_end() {
    // exec_phs: [0x40_0000, 0x40_1800) and [0x40_2e10, 0x40_4e10).
    assert_eq!(total_mapping_size(&parse(&exec_image()).unwrap()), 0x4e10);
}

#[test]
fn at_base_is_the_interpreter_load_address() {
    let info = parse(&exec_image()).unwrap();
    let v = AuxvValues { interp_base: 0x7fff_f7fc_3000, ..auxv_values() };
    assert!(exec_auxv(&info, 0, &v).contains(&(AT_BASE, 0x7fff_f7fc_3000)));
    assert!(exec_auxv(&info, 0, &auxv_values()).contains(&(AT_BASE, 0)));
}

#[test]
fn wrong_magic_is_not_elf() {
    let mut f = exec_image();
    f[1] = b'F';
    assert_eq!(parse(&f), Err(ElfError::NotElf));
    assert_eq!(parse(b"#!/bin/sh\necho hi\n"), Err(ElfError::NotElf));
    assert_eq!(parse(b""), Err(ElfError::NotElf));
    assert_eq!(parse(b"\x7fEL"), Err(ElfError::NotElf));
}

#[test]
fn wrong_class_is_rejected() {
    let mut f = exec_image();
    f[4] = 1; // ELFCLASS32
    assert_eq!(parse(&f), Err(ElfError::WrongClass));
}

#[test]
fn wrong_endianness_is_rejected() {
    let mut f = exec_image();
    f[5] = 2; // ELFDATA2MSB
    assert_eq!(parse(&f), Err(ElfError::WrongEndian));
}

#[test]
fn wrong_machine_is_rejected() {
    for machine in [0u16, 3 /* EM_386 */, 183 /* EM_AARCH64 */] {
        assert_eq!(parse(&set_u16(exec_image(), 18, machine)), Err(ElfError::WrongMachine));
    }
}

#[test]
fn wrong_type_is_rejected() {
    for ty in [0u16, 1 /* ET_REL */, 4 /* ET_CORE */, 0xfe00] {
        assert_eq!(parse(&set_u16(exec_image(), 16, ty)), Err(ElfError::WrongType));
    }
}

#[test]
fn format_errors_map_to_enoexec_and_mapping_errors_to_einval() {
    use ElfError::*;
    for e in [
        NotElf,
        WrongClass,
        WrongEndian,
        WrongMachine,
        WrongType,
        BadHeader,
        Truncated,
        NoLoadSegments,
        OverlappingSegments,
        BadInterpreter,
    ] {
        assert_eq!(e.errno(), errno::ENOEXEC, "{e:?}");
    }
    for e in [BadProgramHeader, AddressOverflow, MisalignedSegment] {
        assert_eq!(e.errno(), errno::EINVAL, "{e:?}");
    }
}

#[test]
fn truncated_header_is_rejected() {
    let f = exec_image();
    for len in 4..64 {
        assert_eq!(parse(&f[..len]), Err(ElfError::Truncated), "len {len}");
    }
}

#[test]
fn program_headers_past_end_are_truncated() {
    let f = build(ET_EXEC, 0x40_0100, &[load(RX, 0, 0x40_0000, 0x200, 0x200)], 0x200);
    assert!(parse(&f).is_ok());
    // e_phoff at / past / far past the end.
    for phoff in [0x200, 0x1f0, u64::MAX - 10, u64::MAX] {
        assert_eq!(parse(&set_u64(f.clone(), 32, phoff)), Err(ElfError::Truncated), "{phoff:#x}");
    }
    // e_phnum larger than the file holds.
    assert_eq!(parse(&set_u16(f, 56, 20)), Err(ElfError::Truncated));
}

#[test]
fn bad_phentsize_or_phnum_is_bad_header() {
    let f = exec_image();
    assert_eq!(parse(&set_u16(f.clone(), 54, 32)), Err(ElfError::BadHeader));
    assert_eq!(parse(&set_u16(f.clone(), 54, 64)), Err(ElfError::BadHeader));
    assert_eq!(parse(&set_u16(f.clone(), 56, 0)), Err(ElfError::BadHeader));
    // 74 * 56 > 4096 (load_elf_phdrs' ELF_MIN_ALIGN limit); 0xffff is PN_XNUM.
    let big = vec![0u8; 0x10000];
    let mut g = f.clone();
    g.extend_from_slice(&big);
    assert_eq!(parse(&set_u16(g.clone(), 56, 74)), Err(ElfError::BadHeader));
    assert_eq!(parse(&set_u16(g, 56, 0xffff)), Err(ElfError::BadHeader));
}

#[test]
fn segment_file_range_past_end_is_truncated() {
    let f = build(ET_EXEC, 0x40_0100, &[load(RX, 0, 0x40_0000, 0x300, 0x300)], 0x2ff);
    assert_eq!(parse(&f), Err(ElfError::Truncated));
    // offset + filesz overflowing.
    let f = build(ET_EXEC, 0x40_0100, &[load(RX, 0xffff_ffff_ffff_f000, 0x40_0000, 0x2000, 0x2000)], 0x300);
    assert_eq!(parse(&f), Err(ElfError::Truncated));
}

#[test]
fn overflowing_vaddr_plus_memsz_is_rejected() {
    for (vaddr, memsz) in [
        (0xffff_ffff_ffff_f000, 0x2000), // wraps
        (0xffff_ffff_ffff_f000, 0x1000), // ends at 2^64
        (TASK_SIZE - 0x1000, 0x2000),    // crosses TASK_SIZE
        (TASK_SIZE, 0),                  // starts at TASK_SIZE
        (0x40_0000, TASK_SIZE),          // too big
        (0x40_0000, u64::MAX),
    ] {
        let f = build(ET_EXEC, 0x40_0100, &[load(RX, 0, vaddr, 0x100, memsz.max(0x100))], 0x100);
        let err = parse(&f).unwrap_err();
        assert_eq!(err, ElfError::AddressOverflow, "{vaddr:#x}+{memsz:#x}");
        assert_eq!(err.errno(), errno::EINVAL);
    }
    // Ending exactly at TASK_SIZE is fine.
    let f = build(ET_EXEC, TASK_SIZE - 0x100, &[load(RX, 0, TASK_SIZE - 0x1000, 0x100, 0x1000)], 0x100);
    assert!(parse(&f).is_ok());
}

#[test]
fn entry_outside_user_space_is_rejected() {
    let f = build(ET_EXEC, TASK_SIZE, &[load(RX, 0, 0x40_0000, 0x100, 0x100)], 0x100);
    assert_eq!(parse(&f), Err(ElfError::AddressOverflow));
}

#[test]
fn filesz_greater_than_memsz_is_rejected_with_einval() {
    let f = build(ET_EXEC, 0x40_0100, &[load(RX, 0, 0x40_0000, 0x200, 0x100)], 0x200);
    let err = parse(&f).unwrap_err();
    assert_eq!(err, ElfError::BadProgramHeader);
    assert_eq!(err.errno(), errno::EINVAL);
}

#[test]
fn offset_vaddr_page_misalignment_is_rejected() {
    let mut phs = exec_phs();
    phs[1].vaddr = 0x40_2e00; // offset 0x1e10: 0xe10 != 0xe00
    let err = parse(&build(ET_EXEC, 0x40_0100, &phs, 0x2000)).unwrap_err();
    assert_eq!(err, ElfError::MisalignedSegment);
    assert_eq!(err.errno(), errno::EINVAL);

    // Without file contents nothing is mmapped from the file: accepted.
    let mut phs = exec_phs();
    phs.push(load(RW, 0x1234, 0x50_0000, 0, 0x3000));
    let info = parse(&build(ET_EXEC, 0x40_0100, &phs, 0x2000)).unwrap();
    assert_eq!(info.segments.len(), 3);
}

#[test]
fn no_load_segments_is_rejected() {
    let f = build(ET_EXEC, 0x40_0100, &[ph(PT_GNU_STACK, RW)], 0x200);
    assert_eq!(parse(&f), Err(ElfError::NoLoadSegments));
}

#[test]
fn overlapping_segments_are_rejected_but_shared_pages_are_not() {
    let phs = [load(RX, 0, 0x40_0000, 0x1800, 0x1800), load(RW, 0x1000, 0x40_1000, 0x100, 0x100)];
    assert_eq!(parse(&build(ET_EXEC, 0x40_0100, &phs, 0x2000)), Err(ElfError::OverlappingSegments));
    // bss of the first running into the second.
    let phs = [load(RW, 0, 0x40_0000, 0x100, 0x2000), load(RX, 0x1800, 0x40_1800, 0x100, 0x100)];
    assert_eq!(parse(&build(ET_EXEC, 0x40_1800, &phs, 0x2000)), Err(ElfError::OverlappingSegments));
    // Adjacent within one page: fine.
    let phs = [load(RX, 0, 0x40_0000, 0x1800, 0x1800), load(RW, 0x1800, 0x40_1800, 0x100, 0x100)];
    assert!(parse(&build(ET_EXEC, 0x40_0100, &phs, 0x2000)).is_ok());
}

#[test]
fn gnu_stack_flags_decide_stack_exec() {
    let with_stack = |stack: &[Ph]| {
        let mut phs = vec![load(RX, 0, 0x40_0000, 0x200, 0x200)];
        phs.extend_from_slice(stack);
        parse(&build(ET_EXEC, 0x40_0100, &phs, 0x400)).unwrap().stack_exec
    };
    // x86_64 since Linux 5.8: a missing PT_GNU_STACK means exec-none.
    assert!(!with_stack(&[]));
    assert!(!with_stack(&[ph(PT_GNU_STACK, RW)]));
    assert!(with_stack(&[ph(PT_GNU_STACK, RW | PF_X)]));
    // The last one wins, as in load_elf_binary's loop.
    assert!(with_stack(&[ph(PT_GNU_STACK, RW), ph(PT_GNU_STACK, PF_X)]));
    assert!(!with_stack(&[ph(PT_GNU_STACK, PF_X), ph(PT_GNU_STACK, RW)]));
}

#[test]
fn tls_segment_is_reported() {
    let info = parse(&pie_image()).unwrap();
    assert_eq!(
        info.tls,
        Some(Segment {
            vaddr: 0x3000,
            memsz: 0x40,
            offset: 0x2000,
            filesz: 0x10,
            prot: Prot { read: true, write: false, exec: false },
            align: 64,
        })
    );
}

// --------------------------------------------------------- mapping plan

#[test]
fn mapping_plan_bss_starting_mid_page() {
    // One RW segment: data 0x600e10..0x601110, bss up to 0x605e10. The file
    // continues past the data with junk that must not show through.
    let phs = [load(RW, 0xe10, 0x60_0e10, 0x300, 0x5000)];
    let f = build(ET_EXEC, 0x60_0e10, &phs, 0x1800);
    let info = parse(&f).unwrap();
    let plan = mapping_plan(&info, 0).unwrap();
    let rw = Prot { read: true, write: true, exec: false };
    assert_eq!(
        plan,
        vec![MapStep {
            segment: 0,
            start: 0x60_0000,
            file_end: 0x60_2000,
            end: 0x60_6000,
            prot: rw,
            anon_prot: rw,
            file_offset: 0,
            file_len: 0x1110,
        }]
    );
    assert_eq!(plan[0].copy(), (0, 0x1110, 0x60_0000));
    assert_eq!(plan[0].zero_tail(), (0x60_1110, 0x60_2000)); // padzero
    assert_eq!(plan[0].anon(), (0x60_2000, 0x60_6000)); // vm_brk

    let mem = simulate(&f, &plan);
    assert_eq!(mem.len(), 6);
    for addr in 0x60_0000..0x60_1110u64 {
        assert_eq!(mem_byte(&mem, addr), f[(addr - 0x60_0000) as usize]);
    }
    assert_ne!(f[0x1110], 0, "the file has junk after the data");
    for addr in 0x60_1110..0x60_6000u64 {
        assert_eq!(mem_byte(&mem, addr), 0, "{addr:#x}");
    }
    assert_eq!(brk_start(&info, 0), 0x60_6000);
}

#[test]
fn mapping_plan_segments_sharing_a_page() {
    // Text ends and data starts inside page 0x401000; data has bss.
    let phs = [load(RX, 0x1000, 0x40_1000, 0x800, 0x800), load(RW, 0x1800, 0x40_1800, 0x100, 0x1900)];
    let f = build(ET_EXEC, 0x40_1000, &phs, 0x1900);
    let info = parse(&f).unwrap();
    let plan = mapping_plan(&info, 0).unwrap();
    let rx = Prot { read: true, write: false, exec: true };
    let rw = Prot { read: true, write: true, exec: false };
    assert_eq!(
        plan,
        vec![
            // memsz == filesz: the whole last page comes from the file
            // (clipped at EOF), like mmap.
            MapStep {
                segment: 0,
                start: 0x40_1000,
                file_end: 0x40_2000,
                end: 0x40_2000,
                prot: rx,
                anon_prot: Prot { read: true, write: true, exec: true },
                file_offset: 0x1000,
                file_len: 0x900,
            },
            MapStep {
                segment: 1,
                start: 0x40_1000,
                file_end: 0x40_2000,
                end: 0x40_4000,
                prot: rw,
                anon_prot: rw,
                file_offset: 0x1000,
                file_len: 0x900,
            },
        ]
    );
    // Applied in order (MAP_FIXED): the shared page has the later
    // segment's protection, the text bytes, the data bytes, then zeros.
    let mem = simulate(&f, &plan);
    assert_eq!(mem.keys().copied().collect::<Vec<_>>(), vec![0x40_1000, 0x40_2000, 0x40_3000]);
    assert_eq!(mem[&0x40_1000].0, rw);
    for addr in 0x40_1000..0x40_1900u64 {
        assert_eq!(mem_byte(&mem, addr), f[(addr - 0x40_0000) as usize]);
    }
    for addr in 0x40_1900..0x40_4000u64 {
        assert_eq!(mem_byte(&mem, addr), 0);
    }
    assert_eq!(brk_start(&info, 0), 0x40_4000);
}

#[test]
fn mapping_plan_file_only_segment_shows_rest_of_last_file_page() {
    // No bss: mmap shows file bytes after p_filesz up to the page end (here
    // the start of the data segment's file page), and zero past EOF.
    let f = exec_image();
    let info = parse(&f).unwrap();
    let plan = mapping_plan(&info, 0).unwrap();
    assert_eq!(plan[0].start, 0x40_0000);
    assert_eq!(plan[0].file_end, 0x40_2000);
    assert_eq!(plan[0].file_len, 0x2000);
    assert_eq!(plan[0].zero_tail(), (0x40_2000, 0x40_2000));

    // Same segment, file ending mid-page: zero past EOF.
    let f = build(ET_EXEC, 0x40_0100, &[load(RX, 0, 0x40_0000, 0x1800, 0x1800)], 0x1900);
    let info = parse(&f).unwrap();
    let plan = mapping_plan(&info, 0).unwrap();
    assert_eq!(plan[0].file_len, 0x1900);
    let mem = simulate(&f, &plan);
    assert_eq!(mem_byte(&mem, 0x40_18ff), f[0x18ff]);
    assert_eq!(mem_byte(&mem, 0x40_1900), 0);
}

#[test]
fn mapping_plan_bss_only_segment_is_anonymous() {
    let mut phs = exec_phs();
    phs.push(load(RW | PF_X, 0, 0x50_0800, 0, 0x1000));
    let f = build(ET_EXEC, 0x40_0100, &phs, 0x2000);
    let info = parse(&f).unwrap();
    let plan = mapping_plan(&info, 0).unwrap();
    let st = &plan[2];
    assert_eq!((st.start, st.file_end, st.end), (0x50_0000, 0x50_0000, 0x50_2000));
    assert_eq!(st.file_len, 0);
    assert_eq!(st.anon_prot, Prot { read: true, write: true, exec: true });
    let mem = simulate(&f, &plan);
    assert!(mem[&0x50_0000].1.iter().all(|&b| b == 0));
    assert!(mem[&0x50_1000].1.iter().all(|&b| b == 0));
    assert_eq!(brk_start(&info, 0), 0x50_2000);
}

#[test]
fn mapping_plan_anonymous_bss_pages_are_read_write_like_vm_brk() {
    // A read-only segment with bss: Linux's vm_brk_flags maps RW pages.
    let f = build(ET_EXEC, 0x40_0100, &[load(PF_R, 0, 0x40_0000, 0x100, 0x3000)], 0x100);
    let plan = mapping_plan(&parse(&f).unwrap(), 0).unwrap();
    assert_eq!(plan[0].prot, Prot { read: true, write: false, exec: false });
    assert_eq!(plan[0].prot_at(0x40_0000), plan[0].prot);
    assert_eq!(plan[0].prot_at(0x40_1000), Prot { read: true, write: true, exec: false });
}

#[test]
fn mapping_plan_applies_the_pie_bias() {
    let f = pie_image();
    let info = parse(&f).unwrap();
    let bias = load_bias(&info);
    let plan = mapping_plan(&info, bias).unwrap();
    let ranges: Vec<_> = plan.iter().map(|s| (s.start, s.file_end, s.end)).collect();
    let b = ET_DYN_BASE;
    assert_eq!(
        ranges,
        vec![(b, b + 0x1000, b + 0x1000), (b + 0x1000, b + 0x2000, b + 0x2000), (b + 0x3000, b + 0x4000, b + 0x4000)]
    );
    assert_eq!(plan[2].file_offset, 0x2000);
    assert_eq!(plan[2].file_len, 0x100);
    let mem = simulate(&f, &plan);
    assert_eq!(mem_byte(&mem, b + 0x3000), f[0x2000]);
    assert_eq!(mem_byte(&mem, b + 0x3100), 0);
    assert_eq!(brk_start(&info, bias), b + 0x4000);
    assert!(exec_auxv(&info, bias, &auxv_values()).contains(&(AT_ENTRY, b + 0x1100)));
}

#[test]
fn mapping_plan_rejects_unaligned_or_out_of_range_bias() {
    let info = parse(&pie_image()).unwrap();
    assert_eq!(mapping_plan(&info, ET_DYN_BASE + 8), Err(ElfError::MisalignedSegment));
    assert_eq!(mapping_plan(&info, TASK_SIZE), Err(ElfError::AddressOverflow));
    assert_eq!(mapping_plan(&info, 0u64.wrapping_sub(PAGE_SIZE)), Err(ElfError::AddressOverflow));
}

#[test]
fn page_contents_rejects_bad_requests() {
    let f = exec_image();
    let plan = mapping_plan(&parse(&f).unwrap(), 0).unwrap();
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    assert_eq!(plan[0].page_contents(&f, 0x40_0001, &mut buf), Err(ElfError::AddressOverflow));
    assert_eq!(plan[0].page_contents(&f, 0x40_2000, &mut buf), Err(ElfError::AddressOverflow));
    assert_eq!(plan[0].page_contents(&f, 0x40_0000, &mut buf[..10]), Err(ElfError::AddressOverflow));
    assert_eq!(plan[0].page_contents(&f[..100], 0x40_0000, &mut buf), Err(ElfError::Truncated));
}

// ---------------------------------------------------------------- stack

fn auxv_values() -> AuxvValues {
    AuxvValues {
        sysinfo_ehdr: Some(0x7fff_f7fc_1000),
        minsigstksz: 0x6f0,
        hwcap: 0x178b_fbff,
        hwcap2: 2,
        clktck: 100,
        uid: 0,
        euid: 0,
        gid: 0,
        egid: 0,
        secure: false,
        interp_base: 0,
    }
}

fn rd64(img: &StackImage, addr: u64) -> u64 {
    let o = (addr - img.sp) as usize;
    u64::from_le_bytes(img.bytes[o..o + 8].try_into().unwrap())
}

fn cstr(img: &StackImage, addr: u64) -> &[u8] {
    let o = (addr - img.sp) as usize;
    let len = img.bytes[o..].iter().position(|&b| b == 0).expect("NUL-terminated");
    &img.bytes[o..o + len]
}

/// What a libc `_start` sees: argc, argv[], envp[], auxv (with AT_NULL),
/// and the address just past AT_NULL.
struct Walked {
    argc: u64,
    argv: Vec<u64>,
    envp: Vec<u64>,
    auxv: Vec<(u64, u64)>,
    tables_end: u64,
}

fn walk(img: &StackImage) -> Walked {
    let mut at = img.sp;
    let argc = rd64(img, at);
    at += 8;
    let argv: Vec<u64> = (0..argc).map(|i| rd64(img, at + 8 * i)).collect();
    at += 8 * argc;
    assert_eq!(rd64(img, at), 0, "argv NULL");
    at += 8;
    let mut envp = Vec::new();
    while rd64(img, at) != 0 {
        envp.push(rd64(img, at));
        at += 8;
    }
    at += 8;
    let mut auxv = Vec::new();
    loop {
        let (k, v) = (rd64(img, at), rd64(img, at + 8));
        at += 16;
        auxv.push((k, v));
        if k == AT_NULL {
            break;
        }
    }
    Walked { argc, argv, envp, auxv, tables_end: at }
}

fn aux(w: &Walked, key: u64) -> Option<u64> {
    w.auxv.iter().find(|e| e.0 == key).map(|e| e.1)
}

const RANDOM: [u8; 16] = *b"0123456789abcdef";

/// Checks everything a libc relies on, for any parameters.
fn check_stack(p: &StackParams, img: &StackImage) {
    let top = p.stack_top;
    assert_eq!(img.sp % 16, 0);
    assert_eq!(img.bytes.len() as u64, top - img.sp);
    let w = walk(img);
    let argv: Vec<&[u8]> = if p.argv.is_empty() { vec![b""] } else { p.argv.to_vec() };
    assert_eq!(w.argc, argv.len() as u64);
    assert_eq!(img.argc, w.argc);
    for (ptr, s) in w.argv.iter().zip(&argv) {
        assert_eq!(cstr(img, *ptr), *s);
    }
    assert_eq!(w.envp.len(), p.envp.len());
    for (ptr, s) in w.envp.iter().zip(p.envp) {
        assert_eq!(cstr(img, *ptr), *s);
    }
    // argv strings contiguous and in order, then envp strings, then execfn,
    // then the 8 zero bytes at the very top.
    assert_eq!(w.argv[0], img.argv_start);
    let mut at = img.argv_start;
    for (ptr, s) in w.argv.iter().zip(&argv) {
        assert_eq!(*ptr, at);
        at += s.len() as u64 + 1;
    }
    assert_eq!(at, img.argv_end);
    assert_eq!(img.env_start, img.argv_end);
    for (ptr, s) in w.envp.iter().zip(p.envp) {
        assert_eq!(*ptr, at);
        at += s.len() as u64 + 1;
    }
    assert_eq!(at, img.env_end);
    assert_eq!(img.execfn_addr, img.env_end);
    assert_eq!(img.execfn_addr + p.execfn.len() as u64 + 1, top - 8);
    assert_eq!(rd64(img, top - 8), 0);

    // auxv: the builder's entries at the right addresses, AT_NULL last.
    assert_eq!(w.auxv, img.auxv);
    assert_eq!(*w.auxv.last().unwrap(), (AT_NULL, 0));
    assert_eq!(w.auxv.iter().filter(|e| e.0 == AT_NULL).count(), 1);
    let random = aux(&w, AT_RANDOM).unwrap();
    assert_eq!(random, img.random_addr);
    let o = (random - img.sp) as usize;
    assert_eq!(img.bytes[o..o + 16], p.random);
    assert_eq!(aux(&w, AT_EXECFN), Some(img.execfn_addr));
    assert_eq!(cstr(img, img.execfn_addr), p.execfn);
    if p.platform.is_empty() {
        assert_eq!(aux(&w, AT_PLATFORM), None);
        assert_eq!(img.platform_addr, None);
    } else {
        let plat = aux(&w, AT_PLATFORM).unwrap();
        assert_eq!(Some(plat), img.platform_addr);
        assert_eq!(cstr(img, plat), p.platform);
        assert_eq!(plat, (img.argv_start & !15) - p.platform.len() as u64 - 1);
        assert_eq!(random, plat - 16);
    }
    for e in p.auxv {
        assert!(w.auxv.contains(e));
    }
    // Strings and random bytes sit above the pointer tables.
    assert!(w.tables_end <= random);
    assert!(random + 16 <= img.argv_start);
}

#[test]
fn build_stack_layout_matches_linux() {
    let argv: [&[u8]; 2] = [b"/bin/busybox", b"sh"];
    let envp: [&[u8]; 2] = [b"HOME=/", b"PATH=/bin"];
    let caller = [(AT_PAGESZ, PAGE_SIZE), (AT_PHDR, 0x40_0040), (AT_ENTRY, 0x40_ebf0)];
    let p = StackParams {
        stack_top: STACK_TOP,
        argv: &argv,
        envp: &envp,
        execfn: b"/bin/busybox",
        platform: b"x86_64",
        random: RANDOM,
        auxv: &caller,
    };
    let img = build_stack(&p).unwrap();
    check_stack(&p, &img);
    // Worked through create_elf_tables by hand:
    //   p = 0x7ffffffff000 - 8 = ..eff8; execfn (13) -> ..efeb;
    //   envp (7 + 10) -> ..efda; argv (13 + 3) -> ..efca; & ~15 -> ..efc0;
    //   "x86_64\0" -> ..efb9; random -> ..efa9; 7 auxv pairs (112 bytes)
    //   -> ..ef39; STACK_ROUND(sp, 2+1+2+1+1 = 7 items) -> ..ef00.
    assert_eq!(img.execfn_addr, 0x7fff_ffff_efeb);
    assert_eq!(img.env_start, 0x7fff_ffff_efda);
    assert_eq!(img.argv_start, 0x7fff_ffff_efca);
    assert_eq!(img.platform_addr, Some(0x7fff_ffff_efb9));
    assert_eq!(img.random_addr, 0x7fff_ffff_efa9);
    assert_eq!(img.sp, 0x7fff_ffff_ef00);
    assert_eq!(
        img.auxv,
        vec![
            (AT_PAGESZ, PAGE_SIZE),
            (AT_PHDR, 0x40_0040),
            (AT_ENTRY, 0x40_ebf0),
            (AT_RANDOM, 0x7fff_ffff_efa9),
            (AT_EXECFN, 0x7fff_ffff_efeb),
            (AT_PLATFORM, 0x7fff_ffff_efb9),
            (AT_NULL, 0),
        ]
    );
    // /proc/pid/cmdline view.
    let o = (img.argv_start - img.sp) as usize;
    let n = (img.argv_end - img.argv_start) as usize;
    assert_eq!(&img.bytes[o..o + n], b"/bin/busybox\0sh\0");
}

#[test]
fn build_stack_auxv_follows_create_elf_tables_order() {
    let info = parse(&exec_image()).unwrap();
    let caller = exec_auxv(&info, 0, &auxv_values());
    let argv: [&[u8]; 1] = [b"init"];
    let p = StackParams {
        stack_top: STACK_TOP,
        argv: &argv,
        envp: &[],
        execfn: b"/init",
        platform: b"x86_64",
        random: RANDOM,
        auxv: &caller,
    };
    let img = build_stack(&p).unwrap();
    check_stack(&p, &img);
    let keys: Vec<u64> = img.auxv.iter().map(|e| e.0).collect();
    assert_eq!(
        keys,
        vec![
            AT_SYSINFO_EHDR,
            AT_MINSIGSTKSZ,
            AT_HWCAP,
            AT_PAGESZ,
            AT_CLKTCK,
            AT_PHDR,
            AT_PHENT,
            AT_PHNUM,
            AT_BASE,
            AT_FLAGS,
            AT_ENTRY,
            AT_UID,
            AT_EUID,
            AT_GID,
            AT_EGID,
            AT_SECURE,
            AT_RANDOM,
            AT_HWCAP2,
            AT_EXECFN,
            AT_PLATFORM,
            AT_NULL,
        ]
    );
    assert!(img.auxv.contains(&(AT_PHDR, 0x40_0040)));
    assert!(img.auxv.contains(&(AT_ENTRY, 0x40_0100)));
}

#[test]
fn build_stack_empty_argv_gets_empty_argv0() {
    let envp: [&[u8]; 1] = [b"A=1"];
    let p = StackParams {
        stack_top: STACK_TOP,
        argv: &[],
        envp: &envp,
        execfn: b"/bin/true",
        platform: b"",
        random: RANDOM,
        auxv: &[],
    };
    let img = build_stack(&p).unwrap();
    check_stack(&p, &img);
    assert_eq!(img.argc, 1);
    assert_eq!(img.argv_end - img.argv_start, 1);
    assert_eq!(img.platform_addr, None);
}

#[test]
fn build_stack_rejects_too_long_string() {
    let max = vec![b'a'; (MAX_ARG_STRLEN - 1) as usize];
    let over = vec![b'a'; MAX_ARG_STRLEN as usize];
    let params = |argv: &[u8], env: &[u8], execfn: &[u8]| -> Result<StackImage, StackError> {
        let argv: [&[u8]; 1] = [argv];
        let envp: [&[u8]; 1] = [env];
        build_stack(&StackParams {
            stack_top: STACK_TOP,
            argv: &argv,
            envp: &envp,
            execfn,
            platform: b"x86_64",
            random: RANDOM,
            auxv: &[],
        })
    };
    assert!(params(&max, b"A=1", b"/x").is_ok());
    assert_eq!(params(&over, b"A=1", b"/x").unwrap_err(), StackError::TooBig);
    assert_eq!(params(b"x", &over, b"/x").unwrap_err(), StackError::TooBig);
    assert_eq!(params(b"x", b"A=1", &over).unwrap_err(), StackError::TooBig);
    assert_eq!(StackError::TooBig.errno(), errno::E2BIG);
}

#[test]
fn build_stack_rejects_too_much_in_total() {
    assert_eq!(arg_space_limit(DEFAULT_STACK_RLIMIT), 2 << 20);
    assert_eq!(arg_space_limit(64 << 20), 6 << 20);
    assert_eq!(arg_space_limit(0), ARG_MAX);
    let s = vec![b'a'; (MAX_ARG_STRLEN - 1) as usize];
    let run = |n: usize| {
        let argv: Vec<&[u8]> = vec![&s[..]; n];
        let p = StackParams {
            stack_top: STACK_TOP,
            argv: &argv,
            envp: &[],
            execfn: b"/x",
            platform: b"x86_64",
            random: RANDOM,
            auxv: &[],
        };
        build_stack(&p).map(|img| check_stack(&p, &img))
    };
    // 15 * 128 KiB fits in 2 MiB; 16 * 128 KiB plus execfn and pointers not.
    assert_eq!(run(15), Ok(()));
    assert_eq!(run(16), Err(StackError::TooBig));
    // Many tiny strings: the pointer space counts too.
    let tiny: Vec<&[u8]> = vec![b""; (2 << 20) / 8];
    let p = StackParams {
        stack_top: STACK_TOP,
        argv: &tiny,
        envp: &[],
        execfn: b"/x",
        platform: b"x86_64",
        random: RANDOM,
        auxv: &[],
    };
    assert_eq!(build_stack(&p), Err(StackError::TooBig));
}

#[test]
fn build_stack_rejects_interior_nul_and_reserved_aux_keys() {
    let bad: [&[u8]; 1] = [b"a\0b"];
    let good: [&[u8]; 1] = [b"ab"];
    let base = StackParams {
        stack_top: STACK_TOP,
        argv: &good,
        envp: &[],
        execfn: b"/x",
        platform: b"x86_64",
        random: RANDOM,
        auxv: &[],
    };
    assert_eq!(build_stack(&StackParams { argv: &bad, ..base }), Err(StackError::InteriorNul));
    assert_eq!(build_stack(&StackParams { envp: &bad, ..base }), Err(StackError::InteriorNul));
    assert_eq!(build_stack(&StackParams { execfn: b"/\0x", ..base }), Err(StackError::InteriorNul));
    for key in [AT_NULL, AT_RANDOM, AT_PLATFORM, AT_EXECFN] {
        let aux = [(AT_PAGESZ, PAGE_SIZE), (key, 1)];
        assert_eq!(build_stack(&StackParams { auxv: &aux, ..base }), Err(StackError::ReservedAuxKey(key)));
    }
    assert_eq!(StackError::InteriorNul.errno(), errno::EINVAL);
}

#[test]
fn build_stack_rejects_stack_top_too_low() {
    let argv: [&[u8]; 1] = [b"prog"];
    let p = StackParams {
        stack_top: 0x40,
        argv: &argv,
        envp: &[],
        execfn: b"/prog",
        platform: b"x86_64",
        random: RANDOM,
        auxv: &[(AT_PAGESZ, PAGE_SIZE)],
    };
    assert_eq!(build_stack(&p), Err(StackError::AddressOverflow));
    assert_eq!(StackError::AddressOverflow.errno(), errno::EFAULT);
}

// ------------------------------------------------------------ robustness

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Everything downstream of a successful parse must work and not panic.
fn exercise(file: &[u8], info: &ElfInfo) {
    let bias = load_bias(info);
    let plan = mapping_plan(info, bias).expect("a parsed image always has a plan");
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    for st in &plan {
        assert!(st.start < st.end && st.start <= st.file_end && st.file_end <= st.end);
        assert!(st.start + st.file_len <= st.file_end);
        assert!(st.end <= TASK_SIZE);
        // First and last few pages only: memsz may be huge.
        let pages = (st.end - st.start) / PAGE_SIZE;
        for i in (0..pages.min(3)).chain(pages.saturating_sub(3)..pages) {
            st.page_contents(file, st.start + i * PAGE_SIZE, &mut buf).unwrap();
        }
    }
    let brk = brk_start(info, bias);
    assert!(plan.iter().all(|st| st.end <= brk));
    exec_auxv(info, bias, &auxv_values());
    for off in [1, 3, 0x1000, bias.wrapping_add(PAGE_SIZE), !0xfff] {
        let _ = mapping_plan(info, off);
        let _ = brk_start(info, off);
    }
}

#[test]
fn parse_never_panics_on_truncations() {
    for img in [exec_image(), pie_image()] {
        exercise(&img, &parse(&img).unwrap());
        for len in 0..img.len() {
            assert!(parse(&img[..len]).is_err(), "len {len}");
        }
    }
}

#[test]
fn parse_never_panics_on_random_mutations() {
    let interesting = [
        0,
        1,
        0xfff,
        0x1000,
        PAGE_SIZE - 1,
        TASK_SIZE - 1,
        TASK_SIZE,
        ET_DYN_BASE,
        0x7fff_ffff_ffff_ffff,
        u64::MAX - 0xfff,
        u64::MAX,
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let images = [exec_image(), pie_image()];
    let mut parsed = 0;
    for case in 0..6000 {
        let mut f = images[case % 2].clone();
        let hdr_len = 64 + 56 * u64::from(u16::from_le_bytes([f[56], f[57]]));
        for _ in 0..1 + rng.below(6) {
            match rng.below(4) {
                // Flip bits in the headers.
                0 | 1 => {
                    let at = rng.below(hdr_len) as usize;
                    f[at] ^= 1 << rng.below(8);
                }
                // Overwrite an aligned 8-byte header field with an edge value.
                2 => {
                    let at = (rng.below(hdr_len / 8) * 8) as usize;
                    let v = interesting[rng.below(interesting.len() as u64) as usize];
                    let v = v.wrapping_add(rng.below(3)).wrapping_sub(1);
                    put64(&mut f, at, v);
                }
                // Anywhere, including the data.
                _ => {
                    let at = rng.below(f.len() as u64) as usize;
                    f[at] = rng.next() as u8;
                }
            }
        }
        if rng.below(8) == 0 {
            f.truncate(rng.below(f.len() as u64 + 1) as usize);
        }
        if let Ok(info) = parse(&f) {
            parsed += 1;
            exercise(&f, &info);
        }
    }
    // The mutations must not all be trivially rejected.
    assert!(parsed > 100, "only {parsed} mutants parsed");
}

#[test]
fn build_stack_random_inputs_keep_the_layout() {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for _ in 0..300 {
        let mut strings: Vec<Vec<u8>> = Vec::new();
        let n = rng.below(12) as usize + 1;
        for _ in 0..n {
            let len = rng.below(40) as usize;
            strings.push((0..len).map(|_| (rng.below(255) + 1) as u8).collect());
        }
        let refs: Vec<&[u8]> = strings.iter().map(|s| &s[..]).collect();
        let split = rng.below(n as u64 + 1) as usize;
        let aux: Vec<(u64, u64)> = (0..rng.below(20)).map(|i| (100 + i, rng.next())).collect();
        let p = StackParams {
            stack_top: STACK_TOP - rng.below(64) * 8 - rng.below(2) * PAGE_SIZE,
            argv: &refs[..split],
            envp: &refs[split..],
            execfn: if split > 0 { refs[0] } else { b"/prog" },
            platform: if rng.below(2) == 0 { b"x86_64" } else { b"" },
            random: rng.next().to_le_bytes().repeat(2).try_into().unwrap(),
            auxv: &aux,
        };
        let img = build_stack(&p).unwrap();
        check_stack(&p, &img);
    }
}

#[test]
fn parse_head_of_a_prefix_matches_parse_of_the_whole_file() {
    let file = pie_image();
    assert!(file.len() > 4096, "the image must be longer than the prefix read");
    let whole = parse(&file).unwrap();
    let head = parse_head(&file[..4096.min(file.len())], file.len() as u64).unwrap();
    assert_eq!(head, whole);
    // Program headers cut off: Truncated, not a wrong answer.
    assert_eq!(parse_head(&file[..70], file.len() as u64), Err(ElfError::Truncated));
    assert_eq!(parse_head(&file, 10), Err(ElfError::BadHeader));
}
