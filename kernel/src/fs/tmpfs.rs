//! tmpfs: files and directories kept in memory (Linux's mm/shmem.c). File data lives in
//! a shmem page cache (`mm/page_cache.rs`), so mappings share its pages and SysV
//! segments and memfds can be unlinked tmpfs files (`new_shmem_file`, `new_memfd`).
//! Each instance (`ShmemSb`: the boot one, and one per mount(2), `fill_super`) gives its
//! inodes a device of its own and reports its own statfs.
//!
//! Every tmpfs file carries memfd seals (`mm/memfd.rs`; F_SEAL_SEAL alone unless a memfd
//! asked for sealing): write, truncate, fallocate and the `mmap` hook refuse what they
//! forbid, as shmem's `shmem_write_begin`, `shmem_setattr`, `shmem_fallocate` and
//! `shmem_mmap`. Lock order: an open file's position, then the file's `i_rwsem` (held by
//! whatever changes the data, the size or the seals), then an address space's
//! `mmap_lock` (a truncation unmaps under it); the metadata spinlock and the page
//! cache's under all of them.

use super::vfs::*;
use super::xattr::SimpleXattrs;
use crate::errno::*;
use crate::mm::memfd::{F_SEAL_EXEC, F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE};
use crate::mm::page::{Page, PageKind};
use crate::mm::page_cache::{PageCache, SHMEM_PAGES};
use crate::mm::PAGE_SIZE;
use crate::sync::SpinLock as Mutex;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

static NEXT_INO: AtomicU64 = AtomicU64::new(2);
const TMPFS_DEV: u64 = 0x15;
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

pub fn next_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

/// One tmpfs instance (Linux's `shmem_sb_info` with its super_block's `s_dev`): the
/// device its inodes report and the limits its statfs reports. The boot instance (the
/// root, /dev/shm, and the unlinked files of shared memory, SysV segments and memfds)
/// reports the figures of every shmem page together.
pub struct ShmemSb {
    dev: u64,
    /// `size=` (or `nr_blocks=`) in pages, statfs's f_blocks; 0 for no limit. The pages are
    /// not refused at it: every tmpfs draws on the one budget of half of RAM.
    max_blocks: u64,
    /// `nr_inodes=`, statfs's f_files; 0 for no limit.
    max_inodes: u64,
    /// The root's mode and owner as mounted (for /proc/mounts).
    mode: u32,
    uid: u32,
    gid: u32,
    /// The root, from which statfs counts the instance's pages and inodes (a mounted one).
    root: spin::Once<Weak<TmpfsDir>>,
}

/// The boot instance.
fn boot_sb() -> Arc<ShmemSb> {
    static BOOT: spin::Once<Arc<ShmemSb>> = spin::Once::new();
    BOOT.call_once(|| {
        Arc::new(ShmemSb {
            dev: TMPFS_DEV,
            max_blocks: 0,
            max_inodes: 0,
            mode: 0o755,
            uid: 0,
            gid: 0,
            root: spin::Once::new(),
        })
    })
    .clone()
}

impl ShmemSb {
    fn is_boot(&self) -> bool {
        self.dev == TMPFS_DEV
    }

    /// `shmem_statfs`: the limits, and what is free of them.
    fn statfs(&self) -> Statfs {
        if self.is_boot() {
            return boot_statfs();
        }
        let (pages, inodes) = match self.root.get().and_then(Weak::upgrade) {
            Some(root) => usage(&root),
            None => (0, 0),
        };
        let mut s = Statfs::simple(TMPFS_MAGIC);
        if self.max_blocks != 0 {
            s.f_blocks = self.max_blocks;
            s.f_bfree = self.max_blocks.saturating_sub(pages);
            s.f_bavail = s.f_bfree;
        }
        if self.max_inodes != 0 {
            s.f_files = self.max_inodes;
            s.f_ffree = self.max_inodes.saturating_sub(inodes);
        }
        s
    }

    /// `shmem_show_options`: what differs from the defaults, as /proc/mounts shows it.
    fn show_options(&self) -> String {
        let mut s = String::new();
        let default = shmem_limit_pages();
        if self.max_blocks != default {
            s.push_str(&alloc::format!(",size={}k", self.max_blocks * (PAGE_SIZE / 1024)));
        }
        if self.max_inodes != default {
            s.push_str(&alloc::format!(",nr_inodes={}", self.max_inodes));
        }
        if self.mode != 0o1777 {
            s.push_str(&alloc::format!(",mode={:03o}", self.mode));
        }
        if self.uid != 0 {
            s.push_str(&alloc::format!(",uid={}", self.uid));
        }
        if self.gid != 0 {
            s.push_str(&alloc::format!(",gid={}", self.gid));
        }
        s
    }
}

/// The pages held and inodes named under `root`, itself included (files open without a
/// name are not seen; a file of several names counts once). A walk with a stack of its own:
/// the depth of a tree is the user's choice.
fn usage(root: &Arc<TmpfsDir>) -> (u64, u64) {
    let (mut pages, mut inodes) = (0, 0);
    let mut linked = alloc::collections::BTreeSet::new();
    let mut dirs = alloc::vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        inodes += 1;
        let children: Vec<Arc<dyn Inode>> = dir.entries.lock().iter().map(|(_, n)| n.clone()).collect();
        for child in children {
            if let Some(d) = child.as_any().downcast_ref::<TmpfsDir>() {
                // A directory of another instance is a mount's root: not ours to count.
                if Arc::ptr_eq(&d.sb, &root.sb) {
                    dirs.push(d.this.upgrade().expect("a named directory is alive"));
                }
            } else if let Some(f) = child.as_any().downcast_ref::<TmpfsFile>() {
                if f.meta.lock().nlink <= 1 || linked.insert(core::ptr::from_ref(f) as usize) {
                    pages += f.cache.nr_pages();
                    inodes += 1;
                }
            } else {
                inodes += 1;
            }
        }
    }
    (pages, inodes)
}

/// What statfs reports for the boot tmpfs: sized like Linux's default (half of RAM), with
/// every shmem page counted.
pub fn boot_statfs() -> Statfs {
    let total = shmem_limit_pages();
    let used = SHMEM_PAGES.load(Ordering::Relaxed).min(total);
    Statfs {
        f_blocks: total,
        f_bfree: total - used,
        f_bavail: total - used,
        f_files: total,
        f_ffree: total - used,
        ..Statfs::simple(TMPFS_MAGIC)
    }
}

/// Devices of the filesystem instances mounted after boot (Linux's `get_anon_bdev`).
static NEXT_DEV: AtomicU64 = AtomicU64::new(0x30);

/// A device number for a new filesystem instance.
pub fn new_anon_dev() -> u64 {
    NEXT_DEV.fetch_add(1, Ordering::Relaxed)
}

/// mount(2)'s tmpfs (`shmem_fill_super` after `shmem_parse_options`): a new instance
/// whose root directory has mode 01777 and the caller's fsuid and fsgid unless `data`
/// (comma-separated `size=`, `nr_blocks=`, `nr_inodes=`, `mode=`, `uid=`, `gid=`) says
/// otherwise. A key tmpfs does not know, or a bad value, is EINVAL.
pub fn fill_super(data: &str) -> KResult<Arc<dyn Inode>> {
    let cred = crate::process::current().process.creds.lock().clone();
    let (mut mode, mut uid, mut gid) = (0o1777, cred.fsuid, cred.fsgid);
    let half_ram = shmem_limit_pages();
    let (mut max_blocks, mut max_inodes) = (half_ram, half_ram);
    for opt in split_options(data) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, value) {
            ("size", Some(v)) => {
                let (bytes, rest) = memparse(v).ok_or(EINVAL)?;
                let bytes = match rest {
                    "" => bytes,
                    "%" => bytes.checked_mul(crate::mm::frame::stats().usable * PAGE_SIZE).ok_or(EINVAL)? / 100,
                    _ => return Err(EINVAL),
                };
                max_blocks = bytes.div_ceil(PAGE_SIZE);
            }
            ("nr_blocks", Some(v)) => max_blocks = whole_memparse(v).filter(|&b| b <= i64::MAX as u64).ok_or(EINVAL)?,
            ("nr_inodes", Some(v)) => max_inodes = whole_memparse(v).ok_or(EINVAL)?,
            ("mode", Some(v)) => mode = u32::from_str_radix(v, 8).map_err(|_| EINVAL)? & 0o7777,
            ("uid", Some(v)) => uid = parse_id(v)?,
            ("gid", Some(v)) => gid = parse_id(v)?,
            // The superblock flags mount's data may carry (`vfs_parse_sb_flag`): they
            // change nothing in a filesystem kept in memory.
            ("dirsync" | "lazytime" | "nolazytime" | "mand" | "nomand" | "sync" | "async" | "rw", None) => {}
            ("ro", None) => {
                crate::log_once!("mount: read-only tmpfs is not supported");
                return Err(EINVAL);
            }
            _ => return Err(EINVAL),
        }
    }
    let sb = Arc::new(ShmemSb { dev: new_anon_dev(), max_blocks, max_inodes, mode, uid, gid, root: spin::Once::new() });
    let root = TmpfsDir::new_root_of(sb.clone(), mode, uid, gid);
    sb.root.call_once(|| Arc::downgrade(&root));
    Ok(root)
}

/// The options of mount's data (`shmem_parse_options`): split at commas, but a comma
/// followed by a digit belongs to the value (an mpol node list).
fn split_options(data: &str) -> impl Iterator<Item = &str> {
    let b = data.as_bytes();
    let mut start = 0;
    let mut cuts = Vec::new();
    for i in 0..b.len() {
        if b[i] == b',' && !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            cuts.push((start, i));
            start = i + 1;
        }
    }
    cuts.push((start, b.len()));
    cuts.into_iter().map(move |(a, z)| &data[a..z]).filter(|o| !o.is_empty())
}

/// The base of a number written as C does (0x hex, 0 octal, else decimal) and its digits.
fn split_radix(s: &str) -> (u32, &str) {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    }
}

/// Linux's `memparse`: a number (decimal, 0x hex or 0 octal) with an optional K, M, G,
/// T, P or E suffix; the rest of the text after it. None if no digit starts it.
fn memparse(s: &str) -> Option<(u64, &str)> {
    let (radix, digits) = split_radix(s);
    let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    if end == 0 && radix != 8 {
        return None;
    }
    let mut n = if end == 0 { 0 } else { u64::from_str_radix(&digits[..end], radix).ok()? };
    let mut rest = &digits[end..];
    let shift = match rest.chars().next() {
        Some('k' | 'K') => 10,
        Some('m' | 'M') => 20,
        Some('g' | 'G') => 30,
        Some('t' | 'T') => 40,
        Some('p' | 'P') => 50,
        Some('e' | 'E') => 60,
        _ => 0,
    };
    if shift != 0 {
        n = n.checked_shl(shift).filter(|v| v >> shift == n)?;
        rest = &rest[1..];
    }
    Some((n, rest))
}

/// A `memparse` value with nothing after it.
fn whole_memparse(s: &str) -> Option<u64> {
    memparse(s).filter(|(_, rest)| rest.is_empty()).map(|(n, _)| n)
}

/// `uid=`/`gid=` (`fsparam_u32`, base 0: decimal, 0x hex or 0 octal); -1 is no id.
fn parse_id(s: &str) -> KResult<u32> {
    let (radix, digits) = split_radix(s);
    match u32::from_str_radix(digits, radix) {
        Ok(id) if id != u32::MAX => Ok(id),
        _ => Err(EINVAL),
    }
}

fn new_meta(sb: &ShmemSb, mode: u32, uid: u32, gid: u32) -> Metadata {
    Metadata::new_inode(sb.dev, next_ino(), mode, uid, gid)
}

/// A tmpfs file: its data lives in a shmem page cache, which mappings share.
pub struct TmpfsFile {
    _live: crate::leak::Live,
    sb: Arc<ShmemSb>,
    meta: Mutex<Metadata, crate::sync::order::TmpfsFileMeta>,
    cache: PageCache,
    /// An O_TMPFILE file opened without O_EXCL, not yet linked (Linux's I_LINKABLE):
    /// linkat may give it a name although it has no link.
    linkable: AtomicBool,
    /// Shared anonymous memory's commit charge for its whole size, given back with the
    /// inode (`shmem_acct_size`, `shmem_unacct_size`).
    _charge: Option<crate::mm::commit::ShmemCharge>,
    /// Linux's `i_rwsem` as shmem takes it: held exclusive by write, truncate, fallocate
    /// and F_ADD_SEALS, so a seal is added between two of them, never during one.
    i_rwsem: crate::sync::RwSem<()>,
    /// The memfd seals (`shmem_inode_info.seals`, F_SEAL_*), changed under `i_rwsem`.
    seals: AtomicU32,
    xattrs: SimpleXattrs,
}

/// Like Linux's default tmpfs size, all shmem pages together are capped at
/// half of RAM: filling tmpfs gives ENOSPC instead of exhausting memory.
fn shmem_limit_pages() -> u64 {
    crate::mm::frame::stats().usable / 2
}

/// The page for `index`, created if absent, within the shmem budget; the caller
/// holds a reference to it (Linux's `shmem_get_folio`).
fn cache_page(cache: &PageCache, index: u64) -> KResult<Page> {
    if let Some(page) = cache.find(index) {
        return Ok(page);
    }
    if SHMEM_PAGES.load(Ordering::Relaxed) >= shmem_limit_pages() {
        return Err(ENOSPC);
    }
    // Past the budget is ENOSPC; no page to be had is ENOMEM (shmem_alloc_and_add_folio).
    cache.find_or_create(index).ok_or(ENOMEM)
}

impl TmpfsFile {
    /// A file of `meta`, its pages charged one by one unless `charge` covers its size.
    fn with_meta(sb: Arc<ShmemSb>, meta: Metadata, charge: Option<crate::mm::commit::ShmemCharge>) -> Arc<Self> {
        Arc::new(TmpfsFile {
            _live: crate::leak::INODES.live(),
            sb,
            meta: Mutex::new(meta),
            cache: PageCache::new(PageKind::Shmem, charge.is_none()),
            linkable: AtomicBool::new(false),
            _charge: charge,
            i_rwsem: crate::sync::RwSem::new(()),
            // shmem_get_inode: sealing is off (F_SEAL_SEAL) unless memfd_create allows it.
            seals: AtomicU32::new(F_SEAL_SEAL),
            xattrs: SimpleXattrs::new(),
        })
    }

    pub fn new(mode: u32, uid: u32, gid: u32) -> Arc<Self> {
        Self::new_in(boot_sb(), mode, uid, gid)
    }

    /// A file of instance `sb`.
    fn new_in(sb: Arc<ShmemSb>, mode: u32, uid: u32, gid: u32) -> Arc<Self> {
        let meta = new_meta(&sb, mode, uid, gid);
        Self::with_meta(sb, meta, None)
    }

    /// The seals (F_GET_SEALS).
    pub fn seals(&self) -> u32 {
        self.seals.load(Ordering::Acquire)
    }

    /// Sets the seals of a new memfd before anyone else sees it.
    pub fn init_seals(&self, seals: u32) {
        self.seals.store(seals, Ordering::Release);
    }

    /// Linux's `memfd_add_seals` once the caller checked the open file's write access and
    /// the bits: EPERM once F_SEAL_SEAL is set; F_SEAL_WRITE denies writable shared
    /// mappings from now on and is EBUSY while one exists; F_SEAL_EXEC on an executable
    /// file brings the write seals with it.
    pub fn add_seals(&self, mut seals: u32) -> KResult<()> {
        let _held = self.i_rwsem.write();
        let cur = self.seals();
        if cur & F_SEAL_SEAL != 0 {
            return Err(EPERM);
        }
        if seals & F_SEAL_WRITE != 0 && cur & F_SEAL_WRITE == 0 {
            self.cache.mapping_deny_writable()?;
        }
        if seals & F_SEAL_EXEC != 0 && self.meta.lock().mode & 0o111 != 0 {
            seals |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
        }
        self.seals.store(cur | seals, Ordering::Release);
        Ok(())
    }

    fn set_size(&self, size: u64) {
        let mut m = self.meta.lock();
        m.size = size;
        m.blocks = self.cache.nr_pages() * (PAGE_SIZE / 512);
        m.mtime = crate::time::realtime();
        m.ctime = m.mtime;
    }
}

/// An unlinked shmem file of `size` bytes: the backing of MAP_SHARED
/// anonymous memory (and later SysV segments and memfds), as Linux's
/// `shmem_file_setup`, holding `charge` while it exists; without one its pages are
/// charged one by one as they are created.
pub fn new_shmem_file(size: u64, charge: Option<crate::mm::commit::ShmemCharge>) -> Arc<dyn Inode> {
    let sb = boot_sb();
    let mut meta = new_meta(&sb, S_IFREG | 0o600, 0, 0);
    meta.size = size;
    // `__shmem_file_setup`: "It is unlinked" (so its paths read "... (deleted)").
    meta.nlink = 0;
    TmpfsFile::with_meta(sb, meta, charge)
}

/// The file of a memfd (`shmem_file_setup(name, 0, VM_NORESERVE)`): empty, with no
/// link, mode `mode`, owned by `uid`/`gid`, its pages charged as they come.
pub fn new_memfd(mode: u32, uid: u32, gid: u32) -> Arc<TmpfsFile> {
    let sb = boot_sb();
    let mut meta = new_meta(&sb, S_IFREG | (mode & 0o7777), uid, gid);
    meta.nlink = 0;
    TmpfsFile::with_meta(sb, meta, None)
}

/// `seal_check_write` (shmem_mmap): a file sealed against writes takes no shared
/// writable mapping (EPERM), and a shared read-only one may never become writable.
pub fn seal_check_write(seals: u32, desc: &mut crate::mm::mmap::MmapDesc) -> KResult<()> {
    use crate::mm::vma::{Prot, VmFlags};
    if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 && desc.flags.contains(VmFlags::SHARED) {
        if desc.prot.contains(Prot::WRITE) {
            return Err(EPERM);
        }
        desc.flags -= VmFlags::MAYWRITE;
    }
    Ok(())
}

impl Inode for TmpfsFile {
    fn xattrs(&self) -> Option<&SimpleXattrs> {
        Some(&self.xattrs)
    }
    fn metadata(&self) -> Metadata {
        self.meta.lock().clone()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn page_cache(&self) -> Option<&PageCache> {
        Some(&self.cache)
    }
    fn statfs(&self) -> Option<Statfs> {
        Some(self.sb.statfs())
    }
    fn show_options(&self) -> Option<String> {
        Some(self.sb.show_options())
    }
    fn mmap(&self, _inner: &crate::mm::address_space::MmInner, desc: &mut crate::mm::mmap::MmapDesc) -> KResult<()> {
        seal_check_write(self.seals(), desc)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let size = self.meta.lock().size;
        if offset >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - offset) as usize;
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let (index, in_page) = (pos / PAGE_SIZE, pos % PAGE_SIZE);
            let chunk = ((PAGE_SIZE - in_page) as usize).min(n - done);
            // The page stays ours across the copy even if a truncation drops it from the cache.
            match self.cache.find(index) {
                Some(page) => page.read(in_page as usize, &mut buf[done..done + chunk]),
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        Ok(n)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> KResult<usize> {
        let end = offset.checked_add(buf.len() as u64).ok_or(EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let _held = self.i_rwsem.write();
        let (seals, old_size) = (self.seals(), self.meta.lock().size);
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (index, in_page) = (pos / PAGE_SIZE, pos % PAGE_SIZE);
            let chunk = ((PAGE_SIZE - in_page) as usize).min(buf.len() - done);
            // shmem_write_begin, for each page's piece: no write at all under a write
            // seal, none past the end under F_SEAL_GROW.
            if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0
                || (seals & F_SEAL_GROW != 0 && pos + chunk as u64 > old_size)
            {
                if done == 0 {
                    return Err(EPERM);
                }
                break;
            }
            let page = match cache_page(&self.cache, index) {
                Ok(page) => page,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            page.write(in_page as usize, &buf[done..done + chunk]);
            page.mark_dirty();
            done += chunk;
        }
        let size = self.meta.lock().size.max(offset + done as u64);
        self.set_size(size);
        Ok(done)
    }
    /// Grows sparsely. Shrinking is Linux's `truncate_setsize`: the new size
    /// first, then `truncate_pagecache`: the pages past it leave every mapping
    /// (private copies included), leave the cache, and the partial tail is
    /// zeroed. A fault reads the size under its mm lock and the unmap takes
    /// that lock after the size changed, so a fault racing with the truncation
    /// either mapped its page before the unmap (which removes it) or sees the
    /// new size and is SIGBUS: no mapping past the end survives, and no page
    /// past it is created again in the cache.
    fn truncate(&self, size: u64) -> KResult<()> {
        if size > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let _held = self.i_rwsem.write();
        let old = {
            let mut m = self.meta.lock();
            // shmem_setattr: the seals refuse a smaller or a larger size, not the same.
            let seals = self.seals();
            if (size < m.size && seals & F_SEAL_SHRINK != 0) || (size > m.size && seals & F_SEAL_GROW != 0) {
                return Err(EPERM);
            }
            core::mem::replace(&mut m.size, size)
        };
        if size < old {
            let first = size.div_ceil(PAGE_SIZE);
            crate::mm::rmap::unmap_file_pages(&self.cache, first, u64::MAX, true);
            self.cache.truncate_from(first);
            if !size.is_multiple_of(PAGE_SIZE) {
                self.cache.zero_range(size / PAGE_SIZE, (size % PAGE_SIZE) as usize, PAGE_SIZE as usize);
            }
        }
        self.set_size(size);
        Ok(())
    }
    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> KResult<()> {
        const KEEP_SIZE: u32 = 1;
        const PUNCH_HOLE: u32 = 2;
        let end = offset.checked_add(len).filter(|&e| e <= MAX_FILE_SIZE).ok_or(EFBIG)?;
        let _held = self.i_rwsem.write();
        let seals = self.seals();
        match mode {
            // shmem_fallocate: no hole under a write seal, no reservation past the end
            // under F_SEAL_GROW (even one that keeps the size).
            m if m == PUNCH_HOLE | KEEP_SIZE && seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 => Err(EPERM),
            0 | KEEP_SIZE if seals & F_SEAL_GROW != 0 && end > self.meta.lock().size => Err(EPERM),
            0 | KEEP_SIZE => {
                for index in offset / PAGE_SIZE..end.div_ceil(PAGE_SIZE) {
                    // A length the user chose: give up the CPU when the slice is used, and
                    // stop for a fatal signal only (shmem_fallocate: a periodic timer must
                    // not keep a large fallocate from ever finishing).
                    crate::process::sched::cond_resched();
                    if crate::process::sched::current()
                        .is_some_and(|t| crate::process::signal::fatal_signal_pending(&t))
                    {
                        return Err(EINTR);
                    }
                    cache_page(&self.cache, index)?;
                }
                let size = self.meta.lock().size;
                if mode == 0 && end > size {
                    self.set_size(end);
                }
                Ok(())
            }
            m if m == PUNCH_HOLE | KEEP_SIZE => {
                // Whole pages leave the cache and every mapping; partial edges are zeroed.
                let (first, last) = (offset.div_ceil(PAGE_SIZE), end / PAGE_SIZE);
                if first < last {
                    crate::mm::rmap::unmap_file_pages(&self.cache, first, last, false);
                    self.cache.remove_range(first, last);
                }
                let zero = |from: u64, to: u64| {
                    if from < to {
                        let at = (from % PAGE_SIZE) as usize;
                        self.cache.zero_range(from / PAGE_SIZE, at, at + (to - from) as usize);
                    }
                };
                if first <= last {
                    zero(offset, (first * PAGE_SIZE).min(end));
                    zero((last * PAGE_SIZE).max(offset), end);
                } else {
                    zero(offset, end); // all inside one page
                }
                Ok(())
            }
            _ => Err(ENOTSUP),
        }
    }
    /// Under F_SEAL_EXEC the execute bits stay as they are (shmem_setattr: EPERM).
    fn set_attr(&self, edit: &mut dyn FnMut(&mut Metadata)) -> KResult<()> {
        let mut m = self.meta.lock();
        let mut new = m.clone();
        edit(&mut new);
        if self.seals() & F_SEAL_EXEC != 0 && (new.mode ^ m.mode) & 0o111 != 0 {
            return Err(EPERM);
        }
        *m = new;
        Ok(())
    }
}

/// Largest tmpfs file: Linux's MAX_LFS_FILESIZE (`s_maxbytes` of its tmpfs), so a sparse
/// file may be as large as an `off_t` allows; page indices (a `BTreeMap` key) stay far
/// below 2^64.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// A directory entry went away: the inode has one link fewer (an open file
/// stays readable with st_nlink 0; a removed directory has 0 links).
/// Serializes the changes of tmpfs names across CPUs: create, symlink, link, unlink and
/// rename each check and change one or two directories' entries and link counts, which
/// the single lock keeps consistent (Linux takes each directory's `i_rwsem`, and the
/// superblock's rename mutex for renames; one lock here, as namespace changes are rare
/// next to lookups, which do not take it).
static NAMESPACE: crate::sync::SpinLock<(), crate::sync::order::TmpfsNamespace> = crate::sync::SpinLock::new(());

fn drop_link(node: &Arc<dyn Inode>) {
    if let Some(f) = node.as_any().downcast_ref::<TmpfsFile>() {
        let mut m = f.meta.lock();
        m.nlink = m.nlink.saturating_sub(1);
        m.ctime = crate::time::realtime();
    } else if let Some(d) = node.as_any().downcast_ref::<TmpfsDir>() {
        d.meta.lock().nlink = 0;
    } else if let Some(sp) = node.as_any().downcast_ref::<TmpfsSpecial>() {
        let mut m = sp.meta.lock();
        m.nlink = m.nlink.saturating_sub(1);
        m.ctime = crate::time::realtime();
    }
}

pub struct TmpfsSymlink {
    _live: crate::leak::Live,
    meta: Metadata,
    target: Vec<u8>,
    xattrs: SimpleXattrs,
}

impl Inode for TmpfsSymlink {
    fn metadata(&self) -> Metadata {
        self.meta.clone()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn readlink(&self) -> KResult<Vec<u8>> {
        Ok(self.target.clone())
    }
    fn xattrs(&self) -> Option<&SimpleXattrs> {
        Some(&self.xattrs)
    }
}

/// A special file (`shmem_mknod` of one that is neither regular nor a directory): a
/// socket's name, a FIFO or a device node, which hold nothing but their attributes (a
/// device's number is `rdev`).
pub struct TmpfsSpecial {
    _live: crate::leak::Live,
    meta: Mutex<Metadata, crate::sync::order::TmpfsFileMeta>,
    xattrs: SimpleXattrs,
    /// A FIFO's pipe while any open file has it (Linux's `i_pipe`, freed with its last
    /// opener): the opens share it, and the next open after the last close makes another.
    pipe: Mutex<Weak<super::pipe::Pipe>, crate::sync::order::FifoPipe>,
}

impl Inode for TmpfsSpecial {
    fn metadata(&self) -> Metadata {
        self.meta.lock().clone()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn set_attr(&self, edit: &mut dyn FnMut(&mut Metadata)) -> KResult<()> {
        edit(&mut self.meta.lock());
        Ok(())
    }
    fn xattrs(&self) -> Option<&SimpleXattrs> {
        Some(&self.xattrs)
    }
    /// `init_special_inode`'s file operations: a FIFO opens an end of its pipe
    /// (`fifo_open`); a character device opens its driver by number (`chrdev_open`); a
    /// socket's name does not open (`no_open`) and there are no block devices: ENXIO.
    fn open(&self, this: &Arc<dyn Inode>, flags: u32) -> Option<KResult<super::file::FileKind>> {
        let m = self.metadata();
        Some(match m.file_type() {
            S_IFIFO => self.open_fifo(this, flags),
            S_IFCHR => super::devfs::open_char_device(this, m.rdev, flags),
            _ => Err(ENXIO),
        })
    }
}

impl TmpfsSpecial {
    fn open_fifo(&self, this: &Arc<dyn Inode>, flags: u32) -> KResult<super::file::FileKind> {
        use super::file::{fmode_read, fmode_write, O_NONBLOCK};
        let pipe = {
            let mut slot = self.pipe.lock();
            match slot.upgrade() {
                Some(p) => p,
                None => {
                    crate::mm::fail::slab_may_fail()?;
                    let p = Arc::new(super::pipe::Pipe::new_fifo(this.clone()));
                    *slot = Arc::downgrade(&p);
                    p
                }
            }
        };
        let version = pipe.fifo_open(fmode_read(flags), fmode_write(flags), flags & O_NONBLOCK != 0)?;
        Ok(super::file::FileKind::Pipe(pipe, version))
    }
}

/// A directory's entries by name, each with a position for getdents that stays put while
/// other entries come and go (Linux's `simple_offset`, which shmem uses since 6.6): a
/// listing that deletes as it goes (`rm -rf`) sees every entry once.
#[derive(Default)]
struct Entries {
    by_name: BTreeMap<String, (u64, Arc<dyn Inode>)>,
    by_pos: BTreeMap<u64, String>,
    /// The next position; 0 and 1 are `.` and `..`.
    next: u64,
}

impl Entries {
    fn get(&self, name: &str) -> Option<&Arc<dyn Inode>> {
        self.by_name.get(name).map(|(_, n)| n)
    }
    fn contains_key(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
    /// Adds `name` at a new position (last), returning what it replaced.
    fn insert(&mut self, name: String, node: Arc<dyn Inode>) -> Option<Arc<dyn Inode>> {
        let old = self.remove(&name);
        let pos = self.next.max(2);
        self.next = pos + 1;
        self.by_pos.insert(pos, name.clone());
        self.by_name.insert(name, (pos, node));
        old
    }
    fn remove(&mut self, name: &str) -> Option<Arc<dyn Inode>> {
        let (pos, node) = self.by_name.remove(name)?;
        self.by_pos.remove(&pos);
        Some(node)
    }
    fn iter(&self) -> impl Iterator<Item = (&String, &Arc<dyn Inode>)> {
        self.by_name.iter().map(|(name, (_, n))| (name, n))
    }
    /// (position, name, node) of the entries at or after `pos`, in position order.
    fn at_or_after(&self, pos: u64) -> impl Iterator<Item = (u64, &String, &Arc<dyn Inode>)> {
        self.by_pos.range(pos..).map(|(p, name)| (*p, name, &self.by_name[name].1))
    }
}

/// The getdents record of entry `name`.
fn dir_entry(name: &str, node: &Arc<dyn Inode>) -> DirEntry {
    let m = node.metadata();
    DirEntry { name: name.to_string(), ino: m.ino, d_type: m.d_type() }
}

pub struct TmpfsDir {
    _live: crate::leak::Live,
    sb: Arc<ShmemSb>,
    meta: Mutex<Metadata, crate::sync::order::TmpfsDirMeta>,
    entries: Mutex<Entries, crate::sync::order::TmpfsDirEntries>,
    /// `..`; changes when the directory is renamed into another one.
    parent: Mutex<Weak<dyn Inode>, crate::sync::order::TmpfsDirParent>,
    this: Weak<TmpfsDir>,
    xattrs: SimpleXattrs,
}

impl TmpfsDir {
    /// `.` and `..`, positions 0 and 1 of a listing.
    fn dot_entries(&self) -> [DirEntry; 2] {
        let me = self.meta.lock().ino;
        let parent_ino = self.parent.lock().upgrade().map(|p| p.metadata().ino).unwrap_or(me);
        [
            DirEntry { name: ".".to_string(), ino: me, d_type: DT_DIR },
            DirEntry { name: "..".to_string(), ino: parent_ino, d_type: DT_DIR },
        ]
    }

    pub fn new_root() -> Arc<dyn Inode> {
        Self::new_root_of(boot_sb(), 0o755, 0, 0)
    }

    /// The root directory of instance `sb`: its `..` is itself (a walk leaves a mounted
    /// one through the mount table, `mount::mountpoint_parent`).
    fn new_root_of(sb: Arc<ShmemSb>, mode: u32, uid: u32, gid: u32) -> Arc<TmpfsDir> {
        let d: Arc<TmpfsDir> = Arc::new_cyclic(|w: &Weak<TmpfsDir>| {
            let parent: Weak<dyn Inode> = w.clone();
            TmpfsDir {
                _live: crate::leak::INODES.live(),
                meta: Mutex::new(new_meta(&sb, S_IFDIR | mode, uid, gid)),
                sb,
                entries: Mutex::new(Entries::default()),
                parent: Mutex::new(parent),
                this: w.clone(),
                xattrs: SimpleXattrs::new(),
            }
        });
        d.meta.lock().nlink = 2;
        d
    }

    pub fn new_child(parent: Weak<dyn Inode>, mode: u32, uid: u32, gid: u32) -> Arc<TmpfsDir> {
        Self::new_child_in(boot_sb(), parent, mode, uid, gid)
    }

    fn new_child_in(sb: Arc<ShmemSb>, parent: Weak<dyn Inode>, mode: u32, uid: u32, gid: u32) -> Arc<TmpfsDir> {
        let d = Arc::new_cyclic(|w: &Weak<TmpfsDir>| TmpfsDir {
            _live: crate::leak::INODES.live(),
            meta: Mutex::new(new_meta(&sb, S_IFDIR | (mode & 0o7777), uid, gid)),
            sb,
            entries: Mutex::new(Entries::default()),
            parent: Mutex::new(parent),
            this: w.clone(),
            xattrs: SimpleXattrs::new(),
        });
        d.meta.lock().nlink = 2;
        d
    }

    /// Gives the directory its own device number (another filesystem mounted
    /// as a tmpfs-style directory, such as /dev).
    pub fn set_dev(&self, dev: u64) {
        self.meta.lock().dev = dev;
    }

    /// Whether `self` is `dir` or lies below it (a directory cannot move into its own subtree).
    /// Takes `NAMESPACE` to make a name in this directory: ENOENT if it was removed
    /// (Linux's `IS_DEADDIR`), which rmdir decides under the same lock.
    fn lock_namespace_to_add(&self) -> KResult<crate::sync::SpinLockGuard<'static, ()>> {
        let ns = NAMESPACE.lock();
        if self.meta.lock().nlink == 0 {
            return Err(ENOENT);
        }
        Ok(ns)
    }

    /// Empties the tree under this directory, a directory at a time with a stack of its
    /// own, then drops it: each directory is empty by then, so none takes its subtree down
    /// with it (a recursive drop would take a kernel stack frame per level, of a depth the
    /// user chose).
    fn dismantle(&self) {
        let mut taken: Vec<Arc<dyn Inode>> = Vec::new();
        let mut dirs: Vec<Arc<TmpfsDir>> = Vec::new();
        let mut entries = core::mem::take(&mut *self.entries.lock());
        loop {
            for (_, node) in entries.by_name.into_values() {
                if let Some(d) = node.as_any().downcast_ref::<TmpfsDir>() {
                    if Arc::ptr_eq(&d.sb, &self.sb) {
                        dirs.push(d.this.upgrade().expect("a named directory is alive"));
                    }
                }
                taken.push(node);
            }
            let Some(dir) = dirs.pop() else { break };
            entries = core::mem::take(&mut *dir.entries.lock());
        }
        drop(taken);
    }

    fn is_within(&self, dir: &Arc<TmpfsDir>) -> bool {
        let mut cur = self.self_arc();
        for _ in 0..4096 {
            let Some(d) = cur.as_any().downcast_ref::<TmpfsDir>() else { return false };
            if core::ptr::eq(d, Arc::as_ptr(dir)) {
                return true;
            }
            let up = d.parent.lock().upgrade();
            match up {
                Some(p) if !Arc::ptr_eq(&p, &cur) => cur = p,
                _ => return false,
            }
        }
        false
    }

    fn self_arc(&self) -> Arc<dyn Inode> {
        self.this.upgrade().expect("directory in use is alive")
    }

    fn check_name(name: &str) -> KResult<()> {
        if name.is_empty() || name == "." || name == ".." {
            return Err(EEXIST);
        }
        if name.len() > 255 {
            return Err(ENAMETOOLONG);
        }
        Ok(())
    }
}

impl Inode for TmpfsDir {
    fn xattrs(&self) -> Option<&SimpleXattrs> {
        Some(&self.xattrs)
    }
    fn metadata(&self) -> Metadata {
        let mut m = self.meta.lock().clone();
        m.size = 4096;
        m
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> KResult<usize> {
        Err(EISDIR)
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        match name {
            "" | "." => Ok(self.self_arc()),
            ".." => Ok(self.parent.lock().upgrade().unwrap_or_else(|| self.self_arc())),
            _ => self.entries.lock().get(name).cloned().ok_or(ENOENT),
        }
    }
    fn create(&self, name: &str, mode: u32, uid: u32, gid: u32) -> KResult<Arc<dyn Inode>> {
        self.mknod(name, mode, 0, uid, gid)
    }
    /// `shmem_mknod` (and `shmem_mkdir`, `shmem_create`): any type but a symlink.
    fn mknod(&self, name: &str, mode: u32, rdev: u64, uid: u32, gid: u32) -> KResult<Arc<dyn Inode>> {
        Self::check_name(name)?;
        let _ns = self.lock_namespace_to_add()?;
        let mut entries = self.entries.lock();
        if entries.contains_key(name) {
            return Err(EEXIST);
        }
        // The new inode (shmem_get_inode): ENOSPC when it cannot be had.
        crate::mm::fail::slab_may_fail().map_err(|_| ENOSPC)?;
        let node: Arc<dyn Inode> = match mode & S_IFMT {
            S_IFDIR => {
                self.meta.lock().nlink += 1;
                TmpfsDir::new_child_in(self.sb.clone(), self.this.clone(), mode, uid, gid)
            }
            S_IFREG | 0 => TmpfsFile::new_in(self.sb.clone(), S_IFREG | (mode & 0o7777), uid, gid),
            S_IFSOCK | S_IFIFO | S_IFCHR | S_IFBLK => {
                let mut meta = new_meta(&self.sb, mode, uid, gid);
                meta.rdev = rdev;
                Arc::new(TmpfsSpecial {
                    _live: crate::leak::INODES.live(),
                    meta: Mutex::new(meta),
                    xattrs: SimpleXattrs::new(),
                    pipe: Mutex::new(Weak::new()),
                })
            }
            _ => return Err(EPERM),
        };
        entries.insert(name.to_string(), node.clone());
        Ok(node)
    }
    fn symlink(&self, name: &str, target: &[u8]) -> KResult<()> {
        Self::check_name(name)?;
        let _ns = self.lock_namespace_to_add()?;
        let mut entries = self.entries.lock();
        if entries.contains_key(name) {
            return Err(EEXIST);
        }
        let mut meta = new_meta(&self.sb, S_IFLNK | 0o777, 0, 0);
        meta.size = target.len() as u64;
        entries.insert(
            name.to_string(),
            Arc::new(TmpfsSymlink {
                _live: crate::leak::INODES.live(),
                meta,
                target: target.to_vec(),
                xattrs: SimpleXattrs::new(),
            }),
        );
        Ok(())
    }
    fn unlink(&self, name: &str, dir: bool) -> KResult<()> {
        if name == "." {
            return Err(EINVAL);
        }
        if name == ".." {
            return Err(ENOTEMPTY);
        }
        let _ns = NAMESPACE.lock();
        let mut entries = self.entries.lock();
        let node = entries.get(name).ok_or(ENOENT)?;
        let is_dir = node.metadata().is_dir();
        match (dir, is_dir) {
            (true, false) => return Err(ENOTDIR),
            (false, true) => return Err(EISDIR),
            // vfs_rmdir: a mountpoint stays (`is_local_mountpoint`).
            (true, true) if super::mount::is_mount_root(node) => return Err(EBUSY),
            (true, true) => {
                // The child's entries nest under this directory's (`lock_nested(1)`).
                let empty = match node.as_any().downcast_ref::<TmpfsDir>() {
                    Some(d) => d.entries.lock_nested(1).iter().next().is_none(),
                    None => node.readdir()?.iter().all(|e| e.name == "." || e.name == ".."),
                };
                if !empty {
                    return Err(ENOTEMPTY);
                }
                let mut m = self.meta.lock();
                m.nlink = m.nlink.saturating_sub(1);
            }
            (false, false) => {}
        }
        if let Some(node) = entries.remove(name) {
            drop_link(&node);
        }
        Ok(())
    }
    fn rename(&self, old: &str, new_dir: &Arc<dyn Inode>, new: &str) -> KResult<()> {
        if matches!(old, "." | "..") || matches!(new, "." | "..") {
            return Err(EBUSY);
        }
        if new.len() > 255 {
            return Err(ENAMETOOLONG);
        }
        let target = new_dir.as_any().downcast_ref::<TmpfsDir>().ok_or(EXDEV)?;
        let target_arc = target.this.upgrade().ok_or(ENOENT)?;
        let _ns = target.lock_namespace_to_add()?;
        let same_dir = core::ptr::eq(self, target);
        let node = self.entries.lock().get(old).cloned().ok_or(ENOENT)?;
        let existing = target.entries.lock().get(new).cloned();
        // vfs_rename: neither end may be a mountpoint.
        if super::mount::is_mount_root(&node) || existing.as_ref().is_some_and(super::mount::is_mount_root) {
            return Err(EBUSY);
        }
        let src_dir = node.as_any().downcast_ref::<TmpfsDir>();
        if let Some(d) = src_dir {
            if target.is_within(&d.this.upgrade().ok_or(ENOENT)?) {
                return Err(EINVAL);
            }
        }
        if let Some(e) = &existing {
            if Arc::ptr_eq(e, &node) {
                return Ok(());
            }
            match (node.metadata().is_dir(), e.metadata().is_dir()) {
                (true, false) => return Err(ENOTDIR),
                (false, true) => return Err(EISDIR),
                (true, true) if e.readdir()?.len() > 2 => return Err(ENOTEMPTY),
                _ => {}
            }
        }
        self.entries.lock().remove(old);
        let replaced = target.entries.lock().insert(new.to_string(), node.clone());
        if let Some(r) = replaced {
            if r.metadata().is_dir() {
                let mut m = target.meta.lock();
                m.nlink = m.nlink.saturating_sub(1);
            }
            drop_link(&r);
        }
        if let Some(d) = src_dir {
            let parent: Arc<dyn Inode> = target_arc;
            *d.parent.lock() = Arc::downgrade(&parent);
            if !same_dir {
                let mut m = self.meta.lock();
                m.nlink = m.nlink.saturating_sub(1);
                drop(m);
                target.meta.lock().nlink += 1;
            }
        }
        Ok(())
    }
    fn mount(&self, name: &str, root: Arc<dyn Inode>) -> KResult<()> {
        self.entries.lock().insert(name.to_string(), root);
        Ok(())
    }
    fn replace_entry(&self, name: &str, old: &Arc<dyn Inode>, new: Arc<dyn Inode>) -> KResult<()> {
        let _ns = self.lock_namespace_to_add()?;
        let mut entries = self.entries.lock();
        match entries.by_name.get_mut(name) {
            Some((_, node)) if Arc::ptr_eq(node, old) => {
                *node = new;
                Ok(())
            }
            _ => Err(ENOENT),
        }
    }
    fn statfs(&self) -> Option<Statfs> {
        Some(self.sb.statfs())
    }
    fn show_options(&self) -> Option<String> {
        Some(self.sb.show_options())
    }
    /// `kill_litter_super`: the tree of an instance's root goes with its mount.
    fn kill_sb(&self) {
        if self.sb.root.get().is_some_and(|r| core::ptr::eq(r.as_ptr(), self)) {
            self.dismantle();
        }
    }
    fn readdir_from(&self, pos: u64) -> KResult<Vec<(u64, DirEntry)>> {
        let mut v: Vec<(u64, DirEntry)> = self.dot_entries().into_iter().zip(0..).map(|(e, p)| (p, e)).collect();
        v.retain(|(p, _)| *p >= pos);
        v.extend(self.entries.lock().at_or_after(pos).map(|(p, name, node)| (p, dir_entry(name, node))));
        Ok(v)
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        let mut v = Vec::from(self.dot_entries());
        v.extend(self.entries.lock().iter().map(|(name, node)| dir_entry(name, node)));
        Ok(v)
    }
    fn set_attr(&self, edit: &mut dyn FnMut(&mut Metadata)) -> KResult<()> {
        edit(&mut self.meta.lock());
        Ok(())
    }
    /// `shmem_tmpfile`: a file with no link (st_nlink 0), freed with its last open file
    /// unless linkat names it.
    fn tmpfile(&self, mode: u32, uid: u32, gid: u32, linkable: bool) -> KResult<Arc<dyn Inode>> {
        // The new inode (shmem_get_inode): ENOSPC when it cannot be had.
        crate::mm::fail::slab_may_fail().map_err(|_| ENOSPC)?;
        let f = TmpfsFile::new_in(self.sb.clone(), S_IFREG | (mode & 0o7777), uid, gid);
        f.meta.lock().nlink = 0;
        f.linkable.store(linkable, Ordering::Relaxed);
        Ok(f)
    }
    fn link(&self, name: &str, target: &Arc<dyn Inode>) -> KResult<()> {
        Self::check_name(name)?;
        if let Some(sp) = target.as_any().downcast_ref::<TmpfsSpecial>() {
            if sp.meta.lock().dev != self.sb.dev {
                return Err(EXDEV);
            }
            let _ns = self.lock_namespace_to_add()?;
            let mut entries = self.entries.lock();
            if entries.contains_key(name) {
                return Err(EEXIST);
            }
            let mut m = sp.meta.lock();
            m.nlink += 1;
            m.ctime = crate::time::realtime();
            drop(m);
            entries.insert(name.to_string(), target.clone());
            return Ok(());
        }
        let file = target.as_any().downcast_ref::<TmpfsFile>().ok_or(if target.metadata().is_dir() {
            EPERM
        } else {
            EXDEV
        })?;
        let _ns = self.lock_namespace_to_add()?;
        let mut entries = self.entries.lock();
        if entries.contains_key(name) {
            return Err(EEXIST);
        }
        let mut m = file.meta.lock();
        // vfs_link: a file without links gets a name only if it is an O_TMPFILE one
        // that may be linked, once.
        if m.nlink == 0 && !file.linkable.swap(false, Ordering::Relaxed) {
            return Err(ENOENT);
        }
        m.nlink += 1;
        m.ctime = crate::time::realtime();
        drop(m);
        entries.insert(name.to_string(), target.clone());
        Ok(())
    }
}

/// The first inode number given out after the leak check's baseline.
static BOOT_INO: AtomicU64 = AtomicU64::new(u64::MAX);

/// Marks the inodes that exist now as the boot tree (`remove_created_since_boot`).
pub fn mark_boot() {
    BOOT_INO.store(NEXT_INO.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Unlinks every tmpfs entry whose inode was made after `mark_boot`, subtrees
/// whole, and frees the tables of directories left empty: at power-off, so
/// that the leak check can compare the rest with the boot figures. Returns the
/// number of entries removed.
pub fn remove_created_since_boot() -> usize {
    remove_new_entries(&super::root())
}

fn remove_new_entries(node: &Arc<dyn Inode>) -> usize {
    let Some(dir) = node.as_any().downcast_ref::<TmpfsDir>() else { return 0 };
    let boot = BOOT_INO.load(Ordering::Relaxed);
    let children: Vec<(String, Arc<dyn Inode>)> =
        dir.entries.lock().iter().map(|(n, i)| (n.clone(), i.clone())).collect();
    let mut removed = 0;
    for (name, child) in children {
        let m = child.metadata();
        if m.dev == TMPFS_DEV && m.ino >= boot {
            dir.entries.lock().remove(&name);
            removed += 1;
        } else {
            removed += remove_new_entries(&child);
        }
    }
    let mut e = dir.entries.lock();
    if e.by_name.is_empty() {
        *e = Entries { next: e.next, ..Default::default() };
    }
    removed
}
