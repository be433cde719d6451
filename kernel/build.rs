//! Links the kernel with its own linker script and generates the 256 trap
//! entry stubs (one per IDT vector) as assembly: stable Rust has no
//! `x86-interrupt` ABI, and a generated file is clearer than assembler macros.
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
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("trap_stubs.s");
    std::fs::write(out, s).unwrap();
}
