//! Pseudo-terminals: Linux's drivers/tty/pty.c (the Unix98 pairs) and fs/devpts/inode.c.
//!
//! Each open of `/dev/ptmx` (or `/dev/pts/ptmx`) makes a pair with the lowest free number
//! N and gives its master; `/dev/pts/N` is the slave, locked until the master's
//! TIOCSPTLCK 0 (unlockpt), owned by the opener with mode 0600 (devpts' defaults), and
//! gone once the master's last file closes. TIOCGPTPEER opens the slave from the master.

use super::{Driver, Tty, TtyFile};
use crate::errno::*;
use crate::fs::file::{File, FileKind};
use crate::fs::vfs::*;
use crate::sync::order;
use crate::sync::SpinLock as Mutex;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

/// devpts' device number (its own anonymous superblock).
const DEVPTS_DEV: u64 = 0x18;
/// `kernel.pty.max`'s default.
const PTY_MAX: u32 = 4096;

/// A live pair as devpts shows it: the terminal and its slave node's attributes.
struct PtsEntry {
    tty: Weak<Tty>,
    meta: Metadata,
}

/// /dev/pts/N's device number, 136:N (`new_encode_dev`).
fn pts_rdev(index: u32) -> u64 {
    let index = u64::from(index);
    (136 << 8) | (index & 0xff) | ((index & !0xff) << 12)
}

/// The live pairs by number.
static PTYS: Mutex<BTreeMap<u32, PtsEntry>, order::Ptys> = Mutex::new(BTreeMap::new());

/// The slave's termios: `tty_std_termios` without HUPCL (`unix98_pty_init`).
fn slave_termios() -> n_tty::Termios {
    let mut t = n_tty::Termios::STD;
    t.c_cflag = n_tty::B38400 | n_tty::CS8 | n_tty::CREAD;
    t
}

/// `ptmx_open`: a new pair, its master open.
pub fn ptmx_open(node: Arc<dyn Inode>, flags: u32) -> KResult<FileKind> {
    let creds = crate::process::current().process.creds.lock().clone();
    let tty = {
        let mut ptys = PTYS.lock();
        let index = (0..PTY_MAX).find(|i| !ptys.contains_key(i)).ok_or(ENOSPC)?;
        let tty = Arc::new(Tty::new(Driver::Pty, index, slave_termios()));
        let mut meta = Metadata::new_inode(DEVPTS_DEV, u64::from(index) + 3, S_IFCHR | 0o600, creds.fsuid, creds.fsgid);
        meta.rdev = pts_rdev(index);
        meta.blksize = 1024;
        ptys.insert(index, PtsEntry { tty: Arc::downgrade(&tty), meta });
        tty
    };
    Ok(FileKind::Tty(TtyFile::open(tty, true, node, flags, false)?))
}

/// The master's last file closed: /dev/pts/N goes.
pub fn forget(index: u32) {
    PTYS.lock().remove(&index);
}

/// Gives back the table's capacity (`leak`'s shrinkers).
pub fn shrink() {
    let mut p = PTYS.lock();
    if p.is_empty() {
        *p = BTreeMap::new();
    }
}

/// TIOCGPTPEER (`ptm_open_peer`): a new open file of the slave, with `flags`.
pub fn open_peer(tty: &Arc<Tty>, flags: u32) -> KResult<usize> {
    use crate::fs::file::{O_ACCMODE, O_CLOEXEC, O_NOCTTY, O_NONBLOCK};
    if flags & !(O_ACCMODE | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) != 0 {
        return Err(EINVAL);
    }
    let node: Arc<dyn Inode> = Arc::new(PtsNode { index: tty.index, _live: crate::leak::INODES.live() });
    let file = TtyFile::open(tty.clone(), false, node, flags, false)?;
    let path = alloc::format!("/dev/pts/{}", tty.index);
    let f = File::new(FileKind::Tty(file), flags & !(O_CLOEXEC | O_NOCTTY), path);
    crate::syscall::fs::install(f, flags & O_CLOEXEC != 0)
}

/// `/dev/ptmx` (5:2, mode 0666) and devpts' own `ptmx` (mode 0000).
pub struct Ptmx {
    ino: u64,
    dev: u64,
    mode: u32,
    _live: crate::leak::Live,
}

impl Ptmx {
    pub fn new(dev: u64, ino: u64, mode: u32) -> Ptmx {
        Ptmx { ino, dev, mode, _live: crate::leak::INODES.live() }
    }
}

impl Inode for Ptmx {
    fn metadata(&self) -> Metadata {
        Metadata {
            dev: self.dev,
            ino: self.ino,
            mode: S_IFCHR | self.mode,
            nlink: 1,
            rdev: (5 << 8) | 2,
            blksize: 4096,
            ..Default::default()
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn open(&self, this: &Arc<dyn Inode>, flags: u32) -> Option<KResult<FileKind>> {
        Some(ptmx_open(this.clone(), flags))
    }
    fn can_poll(&self) -> bool {
        true
    }
}

/// `/dev/pts/N`: the slave of pair N while it lives.
pub struct PtsNode {
    index: u32,
    _live: crate::leak::Live,
}

impl PtsNode {
    fn tty(&self) -> KResult<Arc<Tty>> {
        PTYS.lock().get(&self.index).and_then(|e| e.tty.upgrade()).ok_or(EIO)
    }
}

impl Inode for PtsNode {
    fn metadata(&self) -> Metadata {
        // A node kept past its pair (an open file's) keeps its number.
        PTYS.lock().get(&self.index).map(|e| e.meta.clone()).unwrap_or_else(|| Metadata {
            dev: DEVPTS_DEV,
            ino: u64::from(self.index) + 3,
            mode: S_IFCHR | 0o600,
            nlink: 1,
            rdev: pts_rdev(self.index),
            ..Default::default()
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn open(&self, this: &Arc<dyn Inode>, flags: u32) -> Option<KResult<FileKind>> {
        Some(self.tty().and_then(|tty| Ok(FileKind::Tty(TtyFile::open(tty, false, this.clone(), flags, false)?))))
    }
    fn set_attr(&self, edit: &mut dyn FnMut(&mut Metadata)) -> KResult<()> {
        let mut ptys = PTYS.lock();
        let e = ptys.get_mut(&self.index).ok_or(ENOENT)?;
        edit(&mut e.meta);
        Ok(())
    }
    fn can_poll(&self) -> bool {
        true
    }
}

/// `/dev/pts`: `ptmx` and one node per live pair.
pub struct DevptsDir {
    ino: u64,
    parent: Weak<dyn Inode>,
    ptmx: Arc<dyn Inode>,
    _live: crate::leak::Live,
}

impl DevptsDir {
    pub fn new(parent: Weak<dyn Inode>) -> DevptsDir {
        DevptsDir { ino: 1, parent, ptmx: Arc::new(Ptmx::new(DEVPTS_DEV, 2, 0)), _live: crate::leak::INODES.live() }
    }
}

impl Inode for DevptsDir {
    fn metadata(&self) -> Metadata {
        Metadata {
            dev: DEVPTS_DEV,
            ino: self.ino,
            mode: S_IFDIR | 0o755,
            nlink: 2,
            blksize: 4096,
            ..Default::default()
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn lookup(&self, name: &str) -> KResult<Arc<dyn Inode>> {
        match name {
            "." => Err(ENOENT),
            ".." => self.parent.upgrade().ok_or(ENOENT),
            "ptmx" => Ok(self.ptmx.clone()),
            _ => {
                let index: u32 = name.parse().map_err(|_| ENOENT)?;
                if name != alloc::format!("{index}") || !PTYS.lock().contains_key(&index) {
                    return Err(ENOENT);
                }
                Ok(Arc::new(PtsNode { index, _live: crate::leak::INODES.live() }))
            }
        }
    }
    fn readdir(&self) -> KResult<Vec<DirEntry>> {
        let mut v = alloc::vec![
            DirEntry { name: String::from("."), ino: self.ino, d_type: DT_DIR },
            DirEntry { name: String::from(".."), ino: self.ino, d_type: DT_DIR },
            DirEntry { name: String::from("ptmx"), ino: 2, d_type: DT_CHR },
        ];
        for (&i, _) in PTYS.lock().iter() {
            v.push(DirEntry { name: alloc::format!("{i}"), ino: u64::from(i) + 3, d_type: DT_CHR });
        }
        Ok(v)
    }
    fn statfs(&self) -> Option<Statfs> {
        Some(Statfs::simple(0x1cd1))
    }
}
