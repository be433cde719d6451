//! The initramfs passed with `-initrd` (cpio newc), read in place from the
//! reserved module range: `fs::init` unpacks it into the tmpfs root, and
//! boot finds the first program and its arguments file here.

use crate::mm::phys_slice;

/// The archive bytes, if QEMU passed an initrd.
pub fn archive() -> Option<&'static [u8]> {
    let (start, end) = crate::boot_info().initrd?;
    Some(phys_slice(start, (end - start) as usize))
}

pub fn find(path: &str) -> Option<cpio::Entry<'static>> {
    let path = path.trim_start_matches('/');
    cpio::Reader::new(archive()?).filter_map(Result::ok).find(|e| e.name == path)
}

/// What the first bytes of a program say it is.
#[derive(Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// ET_EXEC or ET_DYN (static-PIE) for x86_64.
    Elf64 {
        pie: bool,
    },
    NotElf,
    WrongArch,
}

pub fn classify(data: &[u8]) -> ProgramKind {
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return ProgramKind::NotElf;
    }
    let e_type = u16::from_le_bytes([data[16], data[17]]);
    let e_machine = u16::from_le_bytes([data[18], data[19]]);
    if data[4] != 2 || data[5] != 1 || e_machine != 62 || !(e_type == 2 || e_type == 3) {
        return ProgramKind::WrongArch;
    }
    ProgramKind::Elf64 { pie: e_type == 3 }
}

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![initramfs_from_the_runner_is_readable];

/// `cargo xtask test` boots the ktest kernel with an initramfs holding
/// `ktest/hello.txt`; booted without one, the test checks nothing is found.
fn initramfs_from_the_runner_is_readable() {
    match archive() {
        Some(a) => {
            let n = cpio::Reader::new(a).count();
            assert!(n >= 1);
            let hello = find("/ktest/hello.txt").expect("ktest/hello.txt missing from the initramfs");
            assert_eq!(hello.data, b"hello from the initramfs\n");
            assert!(cpio::Reader::new(a).all(|e| e.is_ok()), "archive has a bad entry");
        }
        None => assert!(find("/ktest/hello.txt").is_none()),
    }
    assert_eq!(classify(b"#!/bin/sh\n"), ProgramKind::NotElf);
}
