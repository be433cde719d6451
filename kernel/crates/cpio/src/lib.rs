//! cpio "newc" archives (the Linux initramfs format, `cpio -H newc`).
//!
//! A newc entry is a 110-byte ASCII header (`070701`, then thirteen 8-digit
//! hex fields), the NUL-terminated name padded to 4 bytes, and the data
//! padded to 4 bytes; `TRAILER!!!` ends the archive. Small enough that a
//! reader here beats a dependency, and the writer lets the runner build
//! initramfs images without the `cpio` tool.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

/// File type bits of `mode` (as in `st_mode`).
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The archive ends inside a header, name or data.
    Truncated {
        offset: usize,
    },
    BadMagic {
        offset: usize,
    },
    BadHeader {
        offset: usize,
    },
    BadName {
        offset: usize,
    },
}

/// Iterates over the entries of an archive, stopping at the trailer.
pub struct Reader<'a> {
    data: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, offset: 0, done: false }
    }
}

fn hex_field(h: &[u8], index: usize) -> Option<u32> {
    let f = h.get(6 + index * 8..6 + index * 8 + 8)?;
    let s = core::str::from_utf8(f).ok()?;
    u32::from_str_radix(s, 16).ok()
}

const fn pad4(x: usize) -> usize {
    (x + 3) & !3
}

impl<'a> Reader<'a> {
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, Error> {
        let offset = self.offset;
        let h = self.data.get(offset..offset + HEADER_LEN).ok_or(Error::Truncated { offset })?;
        if &h[..6] != MAGIC {
            return Err(Error::BadMagic { offset });
        }
        let field = |i| hex_field(h, i).ok_or(Error::BadHeader { offset });
        let (mode, uid, gid, mtime) = (field(1)?, field(2)?, field(3)?, field(5)?);
        let (filesize, namesize) = (field(6)? as usize, field(11)? as usize);
        if namesize == 0 {
            return Err(Error::BadName { offset });
        }
        let name_start = offset + HEADER_LEN;
        let name_bytes = self.data.get(name_start..name_start + namesize).ok_or(Error::Truncated { offset })?;
        if name_bytes[namesize - 1] != 0 {
            return Err(Error::BadName { offset });
        }
        let name = core::str::from_utf8(&name_bytes[..namesize - 1]).map_err(|_| Error::BadName { offset })?;
        let data_start = pad4(name_start + namesize);
        let data = self.data.get(data_start..data_start + filesize).ok_or(Error::Truncated { offset })?;
        self.offset = pad4(data_start + filesize);
        if name == TRAILER {
            return Ok(None);
        }
        Ok(Some(Entry { name: name.trim_start_matches("./"), mode, uid, gid, mtime, data }))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Entry<'a>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Builds newc archives (runner side).
#[cfg(any(test, feature = "std"))]
pub struct Writer {
    out: Vec<u8>,
    ino: u32,
}

#[cfg(any(test, feature = "std"))]
impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(any(test, feature = "std"))]
impl Writer {
    pub fn new() -> Self {
        Writer { out: Vec::new(), ino: 1 }
    }

    /// Appends an entry owned by root; `mode` includes the file type bits.
    pub fn add(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.add_owned(name, mode, 0, 0, data);
    }

    /// Appends an entry owned by `uid`:`gid`.
    pub fn add_owned(&mut self, name: &str, mode: u32, uid: u32, gid: u32, data: &[u8]) {
        let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        let fields = [self.ino, mode, uid, gid, nlink, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.ino += 1;
        self.out.extend_from_slice(MAGIC);
        for f in fields {
            self.out.extend_from_slice(format!("{:08x}", f).as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.out.resize(pad4(self.out.len()), 0);
        self.out.extend_from_slice(data);
        self.out.resize(pad4(self.out.len()), 0);
    }

    pub fn add_dir(&mut self, name: &str) {
        self.add(name, S_IFDIR | 0o755, &[]);
    }

    pub fn add_file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.add(name, S_IFREG | perm, data);
    }

    /// A symbolic link: the target is the entry's data, as `cpio -H newc` stores it.
    pub fn add_symlink(&mut self, name: &str, target: &str) {
        self.add(name, S_IFLNK | 0o777, target.as_bytes());
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.add(TRAILER, 0, &[]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_archive_reads_back_entries_in_order() {
        let mut w = Writer::new();
        w.add_dir("bin");
        w.add_file("bin/init", 0o755, b"\x7fELF...");
        w.add_file("empty", 0o644, b"");
        w.add_file("odd", 0o600, b"abcde");
        w.add_symlink("bin/sh", "busybox");
        let a = w.finish();
        let entries: Vec<_> = Reader::new(&a).map(|e| e.unwrap()).collect();
        let names: Vec<_> = entries.iter().map(|e| e.name).collect();
        assert_eq!(names, ["bin", "bin/init", "empty", "odd", "bin/sh"]);
        assert_eq!(entries[4].mode & S_IFMT, S_IFLNK);
        assert_eq!(entries[4].data, b"busybox");
        assert_eq!(entries[0].mode & S_IFMT, S_IFDIR);
        assert_eq!(entries[1].data, b"\x7fELF...");
        assert_eq!(entries[1].mode, S_IFREG | 0o755);
        assert_eq!(entries[3].data, b"abcde");
    }

    #[test]
    fn archive_written_by_gnu_cpio_is_read() {
        // `printf hi > a; echo ./a | cpio -o -H newc` (GNU cpio 2.13): uppercase hex, the name
        // "a" with its NUL, data padded to 4, the trailer, then zero padding to 512 bytes.
        let mut a = [
            &b"0707010098C080000081A40000000000000000000000016B04178B00000002000000FE"[..],
            b"0000000000000000000000000000000200000000a\0hi\0\0",
            b"07070100000000000000000000000000000000000000010000000000000000000000000000",
            b"000000000000000000000000000B00000000TRAILER!!!",
        ]
        .concat();
        a.resize(512, 0);
        let e: Vec<_> = Reader::new(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].name, "a");
        assert_eq!(e[0].data, b"hi");
        assert_eq!(e[0].mode, 0o100644);
        assert_eq!(e[0].mtime, 0x6B04178B);
    }

    #[test]
    fn truncated_archive_is_an_error_not_a_panic() {
        let mut w = Writer::new();
        w.add_file("f", 0o644, &[7; 100]);
        let a = w.finish();
        for cut in [0, 5, 50, 109, 115, 150] {
            let r: Result<Vec<_>, _> = Reader::new(&a[..cut]).collect();
            assert!(matches!(r, Err(Error::Truncated { .. })), "cut at {cut}: {r:?}");
        }
    }

    #[test]
    fn bad_magic_and_bad_hex_are_rejected() {
        let mut w = Writer::new();
        w.add_file("f", 0o644, b"x");
        let mut a = w.finish();
        let mut b = a.clone();
        b[0] = b'1';
        assert_eq!(Reader::new(&b).next(), Some(Err(Error::BadMagic { offset: 0 })));
        a[20] = b'z';
        assert_eq!(Reader::new(&a).next(), Some(Err(Error::BadHeader { offset: 0 })));
    }

    #[test]
    fn name_without_nul_is_rejected() {
        let mut w = Writer::new();
        w.add_file("abc", 0o644, b"");
        let mut a = w.finish();
        a[HEADER_LEN + 3] = b'x';
        assert_eq!(Reader::new(&a).next(), Some(Err(Error::BadName { offset: 0 })));
    }
}
