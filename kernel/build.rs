//! Links the kernel with its own linker script, generates the 256 trap
//! entry stubs (one per IDT vector) as assembly (stable Rust has no
//! `x86-interrupt` ABI, and a generated file is clearer than assembler macros),
//! and builds the vDSO (`vdso/`), a small shared object the kernel maps into every
//! process: C through the system's gcc, as Linux builds its own, since Rust has no
//! stable way to link a versioned shared object without a libc.
use std::fmt::Write;
use std::path::PathBuf;

/// Vectors for which the CPU pushes an error code (Intel SDM Vol. 3A, 6.13).
const HAS_ERROR_CODE: [u8; 9] = [8, 10, 11, 12, 13, 14, 17, 21, 29];

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let target = std::env::var("TARGET").unwrap();
    if target == "x86_64-unknown-none" {
        println!("cargo:rustc-link-arg-bins=-T{}", dir.join("linker.ld").display());
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=build.rs");

    let mut s = String::new();
    s.push_str(".section .text.trap_stubs, \"ax\"\n.code64\n");
    for v in 0..256u32 {
        writeln!(s, ".balign 16\ntrap_stub_{v}:").unwrap();
        if !HAS_ERROR_CODE.contains(&(v as u8)) {
            s.push_str("    push $0\n");
        }
        writeln!(s, "    push ${v}\n    jmp trap_common").unwrap();
    }
    s.push_str(".section .rodata.trap_stubs, \"a\"\n.balign 8\n.global trap_stub_table\ntrap_stub_table:\n");
    for v in 0..256u32 {
        writeln!(s, "    .quad trap_stub_{v}").unwrap();
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("trap_stubs.s"), s).unwrap();
    build_vdso(&dir, &out_dir);
}

/// `vdso/vdso.c` linked by `vdso/vdso.lds` into `OUT_DIR/vdso.so` (Linux's
/// arch/x86/entry/vdso/Makefile flags: position-independent, no libc, both hash styles
/// for glibc and musl, symbols bound inside); a build with relocations fails, since
/// nothing would apply them.
fn build_vdso(dir: &std::path::Path, out_dir: &std::path::Path) {
    let src = dir.join("vdso/vdso.c");
    let lds = dir.join("vdso/vdso.lds");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", lds.display());
    let out = out_dir.join("vdso.so");
    let status = std::process::Command::new(std::env::var("VDSO_CC").unwrap_or_else(|_| "gcc".into()))
        .args([
            "-O2",
            "-fPIC",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-stack-protector",
            "-fno-common",
            "-fasynchronous-unwind-tables",
            "-mno-sse",
            "-mno-mmx",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-shared",
            "-nostdlib",
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,--hash-style=both",
            "-Wl,--eh-frame-hdr",
            "-Wl,-Bsymbolic",
            "-Wl,--no-undefined",
            "-Wl,-z,max-page-size=4096",
            "-Wl,-z,noexecstack",
            "-Wl,--build-id=sha1",
        ])
        .arg(format!("-Wl,-T,{}", lds.display()))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc, which builds the vDSO, did not run");
    assert!(status.success(), "building the vDSO failed");
    let image = std::fs::read(&out).unwrap();
    assert!(!has_relocations(&image), "the vDSO has dynamic relocations");
    assert!(image.len() <= 8192, "the vDSO outgrew the two pages the kernel maps");
}

/// Whether the ELF image's dynamic section asks for relocations (DT_RELA, DT_REL, DT_JMPREL).
fn has_relocations(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap()) != 2 {
            continue; // not PT_DYNAMIC
        }
        let (off, size) = (u64_at(ph + 8) as usize, u64_at(ph + 32) as usize);
        return elf[off..off + size].chunks(16).any(|d| matches!(u64_at_slice(d), 7 | 17 | 23));
    }
    false
}

fn u64_at_slice(d: &[u8]) -> u64 {
    u64::from_le_bytes(d[..8].try_into().unwrap())
}
