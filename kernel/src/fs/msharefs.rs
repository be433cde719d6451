//! msharefs (Linux's proposed msharefs of mm/mshare.c, 2025 series): a flat directory of
//! mshare regions, mounted at boot at /sys/fs/mshare. `open(O_CREAT)` makes a region,
//! `ftruncate` sizes it (a multiple of the mount's alignment), `mmap(MAP_SHARED)` maps a
//! window onto it, and three ioctls change what the region holds, for every sharer at
//! once: `MSHAREFS_CREATE_MAPPING`, `MSHAREFS_UNMAP` and `MSHAREFS_PROTECT`. The root
//! also holds `mshare_info` (the alignment in bytes) and `mshare_stats` (a line of
//! counters per region). The region (`mm/mshare.rs`) lives while its file is linked,
//! open or mapped.
//!
//! Mount option `graft=512g|1g|2m` (default 512g) picks the level whose tables guests
//! graft, and so the alignment of every region made in that mount.
#![deny(unsafe_code)]

use super::vfs::*;
use crate::errno::*;
use crate::mm::mshare::{self, Region};
use crate::sync::order::{MshareFileMeta, MsharefsDir};
use crate::sync::SpinLock;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use msharefs::{MshareCreate, MshareProtect, MshareUnmap};

/// The device number of the boot mount (each later mount gets its own).
pub const MSHAREFS_DEV: u64 = 0x2f;

/// The graft level a mount option names.
pub fn parse_options(data: &str) -> KResult<usize> {
    let mut level = mshare::GRAFT_512G;
    for opt in data.split(',').filter(|o| !o.is_empty()) {
        level = match opt {
            "graft=512g" => mshare::GRAFT_512G,
            "graft=1g" => mshare::GRAFT_1G,
            "graft=2m" => mshare::GRAFT_2M,
            _ => return Err(EINVAL),
        };
    }
    Ok(level)
}

/// The root directory of one msharefs mount.
pub struct MsharefsRoot {
    _live: crate::leak::Live,
    this: Weak<MsharefsRoot>,
    level: usize,
    dev: u64,
    ino: u64,
    regions: SpinLock<BTreeMap<String, Arc<MshareFile>>, MsharefsDir>,
}

/// The mount made at boot (/sys/fs/mshare), where mshare(2) names its regions.
static BOOT_ROOT: spin::Once<Arc<MsharefsRoot>> = spin::Once::new();

/// The boot mount's root.
pub fn boot_root() -> Option<&'static Arc<MsharefsRoot>> {
    BOOT_ROOT.get()
}

/// Makes `root` the boot mount.
pub fn set_boot_root(root: Arc<MsharefsRoot>) {
    BOOT_ROOT.call_once(|| root);
}

/// Every mount's root, for the end-of-run cleanup.
static MOUNTS: SpinLock<Vec<Weak<MsharefsRoot>>, MsharefsDir> = SpinLock::new(Vec::new());

/// mount(2)'s msharefs (`msharefs_fill_super`): a new instance for options `data`.
pub fn fill_super(data: &str) -> KResult<Arc<dyn Inode>> {
    Ok(new_root(super::tmpfs::new_anon_dev(), data)?)
}

/// A new msharefs instance with device `dev`, for mount options `data`.
pub fn new_root(dev: u64, data: &str) -> KResult<Arc<MsharefsRoot>> {
    let level = parse_options(data)?;
    let root = Arc::new_cyclic(|this| MsharefsRoot {
        _live: crate::leak::INODES.live(),
        this: this.clone(),
        level,
        dev,
        ino: super::tmpfs::next_ino(),
        regions: SpinLock::new(BTreeMap::new()),
    });
    let mut m = MOUNTS.lock();
    m.retain(|w| w.strong_count() > 0);
    m.push(Arc::downgrade(&root));
    Ok(root)
}

/// Gives back the list's room beyond the mounts alive (a leak-check shrinker).
pub fn shrink() {
    let mut m = MOUNTS.lock();
    m.retain(|w| w.strong_count() > 0);
    m.shrink_to_fit();
}

/// Unlinks every region of every mount (the end-of-run cleanup of what tests left behind);
/// returns how many.
pub fn remove_all() -> usize {
    let mounts: Vec<Arc<MsharefsRoot>> = MOUNTS.lock().iter().filter_map(|w| w.upgrade()).collect();
    let mut n = 0;
    for root in mounts {
        let taken = core::mem::take(&mut *root.regions.lock());
        n += taken.len();
        for f in taken.values() {
            f.meta.lock().nlink = 0;
        }
    }
    n
}

impl MsharefsRoot {
    /// Bytes of the mount's graft (`mshare_info`).
    pub fn align(&self) -> u64 {
        mshare::graft_size(self.level)
    }

    fn info_text(&self) -> String {
        format!("{}\n", self.align())
    }

    fn stats_text(&self) -> String {
        let mut s = String::from(
            "name size windows sharers grafts grafts_made host_faults pt_bytes rss_bytes flushes ipis ipis_all_cpus\n",
        );
        for (name, f) in self.regions.lock().iter() {
            let r = &f.region;
            let (sharers, grafts) = r.sharers().counts();
            let st = &r.sharers().stats;
            let ld = |a: &core::sync::atomic::AtomicU64| a.load(core::sync::atomic::Ordering::Relaxed);
            s += &format!(
                "{} {} {} {} {} {} {} {} {} {} {} {}\n",
                name,
                r.size(),
                r.windows(),
                sharers,
                grafts,
                ld(&r.stats.grafts),
                ld(&r.stats.host_faults),
                ld(&r.host.pt_pages) * 4096,
                r.host.rss_total() * 4096,
                ld(&st.flushes),
                ld(&st.ipis),
                ld(&st.ipis_all_cpus),
            );
        }
        s
    }
}

/// The two files of the root that are not regions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    Info,
    Stats,
}

struct SpecialFile {
    _live: crate::leak::Live,
    root: Arc<MsharefsRoot>,
    which: Special,
}

impl Inode for SpecialFile {
    fn metadata(&self) -> Metadata {
        Metadata {
            dev: self.root.dev,
            ino: self.root.ino + 1 + (self.which == Special::Stats) as u64,
            mode: S_IFREG | 0o444,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let text = match self.which {
            Special::Info => self.root.info_text(),
            Special::Stats => self.root.stats_text(),
        };
        let bytes = text.as_bytes();
        let start = (offset as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> KResult<usize> {
        Err(EACCES)
    }
    fn statfs(&self) -> Option<Statfs> {
        Some(Statfs::simple(msharefs::MSHARE_MAGIC))
    }
}

impl MsharefsRoot {
    /// Names `region` `name` in this mount (EEXIST if taken); `fixed`: a region of the 2022
    /// syscalls, at a fixed address with a fixed size, whose `read` gives both.
    pub fn insert_region(
        &self,
        name: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        region: Arc<Region>,
        fixed: bool,
    ) -> KResult<Arc<MshareFile>> {
        if name.is_empty() || name.contains('/') {
            return Err(EINVAL);
        }
        if name.len() > 255 {
            return Err(ENAMETOOLONG);
        }
        if matches!(name, "." | ".." | msharefs::MSHARE_INFO | msharefs::MSHARE_STATS) {
            return Err(EEXIST);
        }
        let mut regions = self.regions.lock();
        if regions.contains_key(name) {
            return Err(EEXIST);
        }
        crate::mm::fail::slab_may_fail()?;
        let f = Arc::new(MshareFile {
            _live: crate::leak::INODES.live(),
            meta: SpinLock::new(Metadata::new_inode(
                self.dev,
                super::tmpfs::next_ino(),
                S_IFREG | (mode & 0o7777),
                uid,
                gid,
            )),
            region,
            fixed,
        });
        regions.insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// The region named `name`.
    pub fn region_file(&self, name: &str) -> Option<Arc<MshareFile>> {
        self.regions.lock().get(name).cloned()
    }
}

impl Inode for MsharefsRoot {
    fn metadata(&self) -> Metadata {
        Metadata { dev: self.dev, ino: self.ino, mode: S_IFDIR | 0o777, nlink: 2, blksize: 4096, ..Default::default() }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        let me = self.this.upgrade().ok_or(ENOENT)?;
        match name {
            // A path walk crosses to the mountpoint's parent itself (`mount::mountpoint_parent`).
            "." | ".." => Ok(me),
            msharefs::MSHARE_INFO => {
                Ok(Arc::new(SpecialFile { _live: crate::leak::INODES.live(), root: me, which: Special::Info }))
            }
            msharefs::MSHARE_STATS => {
                Ok(Arc::new(SpecialFile { _live: crate::leak::INODES.live(), root: me, which: Special::Stats }))
            }
            _ => self.regions.lock().get(name).cloned().map(|f| f as Arc<dyn Inode>).ok_or(ENOENT),
        }
    }
    /// `msharefs_create`: a regular file is a new, empty region; nothing else can be made.
    fn create(&self, name: &str, mode: u32, uid: u32, gid: u32) -> KResult<Arc<dyn Inode>> {
        if !matches!(mode & S_IFMT, S_IFREG | 0) {
            return Err(EPERM);
        }
        // The name's checks are `insert_region`'s.
        let region = Region::new(self.level, self.align(), 0, false)?;
        Ok(self.insert_region(name, mode, uid, gid, region, false)?)
    }
    fn unlink(&self, name: &str, dir: bool) -> KResult<()> {
        if dir {
            return Err(ENOTDIR);
        }
        match self.regions.lock().remove(name) {
            Some(f) => {
                f.meta.lock().nlink = 0;
                Ok(())
            }
            None if matches!(name, msharefs::MSHARE_INFO | msharefs::MSHARE_STATS) => Err(EPERM),
            None => Err(ENOENT),
        }
    }
    fn statfs(&self) -> Option<Statfs> {
        Some(Statfs::simple(msharefs::MSHARE_MAGIC))
    }
    fn show_options(&self) -> Option<String> {
        // What differs from the default (512g).
        Some(String::from(match self.level {
            mshare::GRAFT_1G => ",graft=1g",
            mshare::GRAFT_2M => ",graft=2m",
            _ => "",
        }))
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        let mut v = Vec::from([
            DirEntry { name: ".".into(), ino: self.ino, d_type: DT_DIR },
            DirEntry { name: "..".into(), ino: self.ino, d_type: DT_DIR },
            DirEntry { name: msharefs::MSHARE_INFO.into(), ino: self.ino + 1, d_type: DT_REG },
            DirEntry { name: msharefs::MSHARE_STATS.into(), ino: self.ino + 2, d_type: DT_REG },
        ]);
        for (name, f) in self.regions.lock().iter() {
            v.push(DirEntry { name: name.clone(), ino: f.meta.lock().ino, d_type: DT_REG });
        }
        Ok(v)
    }
}

/// A region's file.
pub struct MshareFile {
    _live: crate::leak::Live,
    meta: SpinLock<Metadata, MshareFileMeta>,
    pub region: Arc<Region>,
    /// Made by mshare(2): at a fixed address with a fixed size.
    fixed: bool,
}

impl MshareFile {
    /// The region's range [offset, offset + size) checked as the ioctls want it: page
    /// aligned, not empty, inside the region (EINVAL).
    fn range(&self, offset: u64, size: u64) -> KResult<u64> {
        let end = offset.checked_add(size).ok_or(EINVAL)?;
        if size == 0 || !offset.is_multiple_of(crate::mm::PAGE_SIZE) || !size.is_multiple_of(crate::mm::PAGE_SIZE) {
            return Err(EINVAL);
        }
        if end > self.region.size() {
            return Err(EINVAL);
        }
        Ok(self.region.base + offset)
    }

    /// `MSHAREFS_CREATE_MAPPING`: anonymous shared memory, or a shared mapping of `fd`,
    /// at `region_offset`, made in the host as mmap(MAP_FIXED) would, for every sharer.
    /// A range already holding a mapping is refused (EINVAL), not replaced.
    fn create_mapping(&self, c: &MshareCreate) -> KResult<usize> {
        use crate::mm::mmap::{MAP_ANONYMOUS, MAP_FIXED, MAP_SHARED};
        let addr = self.range(c.region_offset, c.size)?;
        let anon = c.flags & MAP_ANONYMOUS != 0;
        if c.flags & !(MAP_ANONYMOUS | MAP_SHARED | MAP_FIXED) != 0
            || c.flags & (MAP_SHARED | MAP_FIXED) != MAP_SHARED | MAP_FIXED
            || c.prot & !7 != 0
            || (anon && c.offset != 0)
        {
            return Err(EINVAL);
        }
        let file = if anon {
            None
        } else {
            let f = crate::process::current().files().lock().get(c.fd as i32)?;
            // A region inside a region would hold itself alive.
            if f.inode().is_some_and(|i| i.as_any().is::<MshareFile>()) {
                return Err(EINVAL);
            }
            Some(f)
        };
        let host = &self.region.host;
        if host.mmap_lock.read().overlaps(addr, addr + c.size) {
            return Err(EINVAL);
        }
        let file_writable = file.as_ref().is_some_and(|f| f.writable());
        let req = crate::mm::mmap::MmapRequest {
            addr,
            len: c.size,
            prot: c.prot,
            flags: c.flags | crate::mm::mmap::MAP_FIXED_NOREPLACE,
            file,
            file_writable,
            offset: c.offset,
        };
        match crate::mm::mmap::do_mmap(host, req) {
            Ok(_) => Ok(0),
            // Another CREATE_MAPPING took the range meanwhile.
            Err(EEXIST) => Err(EINVAL),
            Err(e) => Err(e),
        }
    }
}

impl Inode for MshareFile {
    fn metadata(&self) -> Metadata {
        let mut m = self.meta.lock().clone();
        m.size = self.region.size();
        m
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    /// A region of mshare(2) reads as its start and size, two native-endian u64 (2022
    /// series); the 2025 series' regions have no `read` (vfs_read: EINVAL).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        if !self.fixed {
            return Err(EINVAL);
        }
        let mut info = [0u8; 16];
        info[..8].copy_from_slice(&self.region.base.to_ne_bytes());
        info[8..].copy_from_slice(&self.region.size().to_ne_bytes());
        let start = (offset as usize).min(info.len());
        let n = buf.len().min(info.len() - start);
        buf[..n].copy_from_slice(&info[start..start + n]);
        Ok(n)
    }
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> KResult<usize> {
        Err(EINVAL)
    }
    /// `msharefs_setattr`: the size is set once, to a multiple of the alignment that fits
    /// in the host's user half (EINVAL otherwise); truncating to the size it has is a no-op.
    fn truncate(&self, size: u64) -> KResult<()> {
        let r = &self.region;
        let _held = r.host.mmap_lock.write();
        let cur = r.size();
        if size == cur {
            return Ok(());
        }
        if self.fixed {
            return Err(EINVAL);
        }
        let fits = r.base.checked_add(size).is_some_and(|e| e <= crate::mm::address_space::TASK_SIZE);
        if cur != 0 || !size.is_multiple_of(r.align()) || !fits {
            return Err(EINVAL);
        }
        r.set_size(size);
        let now = crate::time::realtime();
        let mut m = self.meta.lock();
        m.mtime = now;
        m.ctime = now;
        Ok(())
    }
    fn has_mmap(&self) -> bool {
        true
    }
    fn mmap_align(&self) -> u64 {
        self.region.align()
    }
    /// `msharefs_mmap`: a shared mapping of the whole region from offset 0 becomes a
    /// window (VM_MSHARE); anything else is EINVAL. It is never locked or charged: its
    /// pages are the region's.
    fn mmap(&self, _inner: &crate::mm::address_space::MmInner, desc: &mut crate::mm::mmap::MmapDesc) -> KResult<()> {
        use crate::mm::vma::VmFlags;
        let size = self.region.size();
        if !desc.flags.contains(VmFlags::SHARED) || desc.pgoff != 0 || size == 0 || desc.len != size {
            return Err(EINVAL);
        }
        desc.flags |= VmFlags::MSHARE;
        desc.flags -= VmFlags::LOCKED | VmFlags::LOCKONFAULT;
        desc.ops = Some(Arc::new(mshare::Window { region: self.region.clone(), inner: None }));
        Ok(())
    }
    fn ioctl(&self, cmd: u32, arg: u64) -> KResult<usize> {
        let mm = crate::process::current_mm();
        match cmd {
            msharefs::MSHAREFS_CREATE_MAPPING => {
                let c: MshareCreate = crate::mm::usercopy::read_val(&mm, arg)?;
                self.create_mapping(&c)
            }
            msharefs::MSHAREFS_UNMAP => {
                let u: MshareUnmap = crate::mm::usercopy::read_val(&mm, arg)?;
                let addr = self.range(u.region_offset, u.size)?;
                crate::mm::munmap::do_munmap(&self.region.host, addr, u.size)?;
                Ok(0)
            }
            msharefs::MSHAREFS_PROTECT => {
                let p: MshareProtect = crate::mm::usercopy::read_val(&mm, arg)?;
                if p.reserved != 0 {
                    return Err(EINVAL);
                }
                let addr = self.range(p.region_offset, p.size)?;
                crate::mm::mprotect::do_mprotect(&self.region.host, addr, p.size, p.prot)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
    fn set_attr(&self, edit: &mut dyn FnMut(&mut Metadata)) -> KResult<()> {
        edit(&mut self.meta.lock());
        Ok(())
    }
    fn statfs(&self) -> Option<Statfs> {
        Some(Statfs::simple(msharefs::MSHARE_MAGIC))
    }
}

// Read from user memory only: `MshareCreate`'s 4 trailing bytes of padding are never
// copied out.
crate::impl_pod!(MshareCreate, MshareUnmap, MshareProtect);
