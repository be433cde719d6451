//! `pt_sharing`: what N processes that map one shared object pay in page tables, RSS,
//! faults and time, the figure page-table sharing exists to cut.
//!
//! ```text
//! pt_sharing --backing anon|tmpfs|sysv|memfd|posix --access read|write --size 256M --procs N
//!            [--sharing none|mshare|mshare_fs|shm_share_mmu|transparent] [--addr HEX]
//! ```
//!
//! `--sharing` (our kernel only; Linux has no mshare): `mshare_fs` puts the object in an
//! msharefs region (/sys/fs/mshare, `MSHAREFS_CREATE_MAPPING`: anonymous shared memory for
//! `anon`, the file for the others) that each child maps whole (512 GiB) at the address;
//! `mshare` makes the parent's mapping of it a region with the 2022 `mshare(O_CREAT)` and
//! each child attaches by name; `shm_share_mmu` attaches the `sysv` segment with
//! SHM_SHARE_MMU. Either way the children graft the region's page tables. `transparent`
//! maps the object as `none` does, with `/proc/sys/vm/pt_share` set to 1 for the run: the
//! kernel shares the tables of the object's 2 MiB slots by itself.
//!
//! The parent creates one shared object of `--size` bytes: `anon` is a
//! `MAP_SHARED|MAP_ANONYMOUS` mapping made before fork (the children inherit it); `tmpfs`
//! is a file in /tmp that each child opens and maps itself; `sysv` is a SysV segment
//! (`shmget(IPC_PRIVATE)`) that each child attaches with `shmat`; `memfd` is a
//! `memfd_create` file whose descriptor the children inherit and each maps; `posix` is a
//! POSIX shared memory object (`shm_open`, a file of the tmpfs on /dev/shm) that each
//! child opens by name and maps. All are placed at the same
//! 512 GiB-aligned address in every process (`--addr`, default 0x600000000000), so the
//! number of page-table pages a process needs for the region is the same on every kernel.
//! Then N children are forked and take turns: child i waits for its turn, reads its VmPTE
//! and fault count, attaches the object (tmpfs, posix: open and mmap; memfd: mmap; sysv:
//! shmat), touches every page in order (`read`: loads one byte per page, `write`: stores
//! one), reads the fault count, touches every page once more (memory already mapped, with
//! the translations that fit still cached) and reads the figures again. Then it empties the
//! TLB (maps, touches and unmaps 64 scratch pages: more than either kernel flushes page by
//! page, so the whole TLB goes) and touches every page a third time (memory already mapped,
//! every translation walked again, as on hardware, whose TLB holds a few thousand of a
//! GiB's 262,144 pages), and hands the turn on. The last child also times fork+exit+wait
//! of itself, a process with the region mapped. All N stay alive until the last has
//! touched; the parent then reads `PageTables` of /proc/meminfo, and times the teardown
//! (telling every child to exit and reaping them all). Turns and results go through a
//! separate shared page with futexes.
//!
//! Output: one line `@bench pt_sharing kernel=... backing=... access=... region_bytes=...
//! procs=... pt_bytes_total=... pt_bytes_per_proc=... ...` (every field is described in
//! benches/README.md), or a message on stderr and exit status 1 on any failure.

use benches::{arg_value, emit, meminfo_page_tables, minor_faults, parse_size, rdtsc, self_status};
use std::ffi::CString;
use std::fmt::Display;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const PAGE: usize = 4096;

#[derive(Clone, Copy, PartialEq)]
enum Backing {
    Anon,
    Tmpfs,
    Sysv,
    Memfd,
    Posix,
}

impl Backing {
    fn name(self) -> &'static str {
        match self {
            Backing::Anon => "anon",
            Backing::Tmpfs => "tmpfs",
            Backing::Sysv => "sysv",
            Backing::Memfd => "memfd",
            Backing::Posix => "posix",
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Sharing {
    None,
    Mshare,
    MshareFs,
    ShmShareMmu,
    Transparent,
}

impl Sharing {
    fn name(self) -> &'static str {
        match self {
            Sharing::None => "none",
            Sharing::Mshare => "mshare",
            Sharing::MshareFs => "mshare_fs",
            Sharing::ShmShareMmu => "shm_share_mmu",
            Sharing::Transparent => "transparent",
        }
    }
}

/// The size of an mshare region: one graft (a PML4 entry) of the default mount.
const REGION: usize = 1 << 39;

#[derive(Clone, Copy, PartialEq)]
enum Access {
    Read,
    Write,
}

struct Config {
    backing: Backing,
    sharing: Sharing,
    access: Access,
    size: usize,
    procs: usize,
    addr: usize,
    /// The tmpfs file's path, or the POSIX object's name.
    path: CString,
    /// The SysV segment (`sysv`), made by the parent before fork.
    shmid: i32,
    /// The memfd (`memfd`), made by the parent before fork.
    memfd: i32,
    /// The region's name in /sys/fs/mshare (`mshare`, `mshare_fs`).
    region: CString,
    /// The region's file, open read-write (`mshare_fs`), inherited by the children.
    region_fd: i32,
}

/// What one child measured, written into the shared control area.
#[repr(C)]
struct Slot {
    pte_before: AtomicU64,
    pte_after: AtomicU64,
    rss: AtomicU64,
    rss_shmem: AtomicU64,
    faults: AtomicU64,
    cycles: AtomicU64,
    /// Cycles of a second pass over the region, already mapped.
    retouch_cycles: AtomicU64,
    /// Cycles of a third pass, after the process emptied its TLB.
    retouch_cold_cycles: AtomicU64,
}

/// The shared control area: the futex words and the children's slots.
#[repr(C)]
struct Control {
    /// Set to 1 by the parent when every child has touched, or when one failed.
    all_done: AtomicU32,
    /// Set to 1 by the parent to make the children exit.
    exit: AtomicU32,
    /// Cycles of fork+exit+wait of the last child (median of three).
    fork_cycles: AtomicU64,
}

fn fail(what: &str) -> ! {
    eprintln!("pt_sharing: {what}: {}", std::io::Error::last_os_error());
    std::process::exit(1);
}

fn usage() -> ! {
    eprintln!("usage: pt_sharing --backing anon|tmpfs|sysv|memfd|posix --access read|write --size BYTES --procs N [--sharing none|mshare|mshare_fs|shm_share_mmu|transparent] [--addr HEX]");
    std::process::exit(2);
}

/// Sleeps while `word` holds `expected`, for at most `timeout` seconds when given.
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<i64>) {
    let ts = timeout.map(|s| libc::timespec { tv_sec: s, tv_nsec: 0 });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid aligned u32 in memory shared between the processes (so no
    // FUTEX_PRIVATE_FLAG) and `ts_ptr` null or a valid timespec; a spurious return is
    // handled by the caller's loop.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr);
    }
}

fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: as in futex_wait.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n);
    }
}

/// Waits until `word` is non-zero.
fn wait_nonzero(word: &AtomicU32) {
    while word.load(Ordering::Acquire) == 0 {
        futex_wait(word, 0, None);
    }
}

fn set_and_wake(word: &AtomicU32) {
    word.store(1, Ordering::Release);
    futex_wake(word, i32::MAX);
}

/// A shared anonymous mapping of `len` bytes (at `addr` exactly when it is non-zero).
fn map_shared(addr: usize, len: usize, fd: i32) -> *mut u8 {
    let (flags, what) = match (addr, fd) {
        (0, _) => (libc::MAP_SHARED | libc::MAP_ANONYMOUS, "mmap of the control area"),
        (_, -1) => (libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE, "mmap of the anonymous region"),
        _ => (libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE, "mmap of the shared file"),
    };
    // SAFETY: a new mapping; MAP_FIXED_NOREPLACE never replaces an existing one.
    let p = unsafe { libc::mmap(addr as *mut _, len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
    if p == libc::MAP_FAILED || (addr != 0 && p as usize != addr) {
        fail(what);
    }
    p as *mut u8
}

/// `mshare(name, addr, len, oflag, mode)` (the 2022 series, our kernel's number 1024).
fn mshare(name: &CString, addr: usize, len: usize, oflag: i32, mode: u32) -> i64 {
    // SAFETY: a valid name string and plain arguments.
    unsafe { libc::syscall(msharefs::SYS_MSHARE as libc::c_long, name.as_ptr(), addr, len, oflag, mode) }
}

/// Opens the backing's file read-write (tmpfs, posix) or returns the memfd; None for the
/// others. The caller closes what it opened (`opened`).
fn backing_fd(cfg: &Config) -> Option<(i32, bool)> {
    let fd = match cfg.backing {
        // SAFETY: a valid path string.
        Backing::Tmpfs => unsafe { libc::open(cfg.path.as_ptr(), libc::O_RDWR) },
        // SAFETY: a valid name string.
        Backing::Posix => unsafe { libc::shm_open(cfg.path.as_ptr(), libc::O_RDWR, 0) },
        Backing::Memfd => return Some((cfg.memfd, false)),
        _ => return None,
    };
    if fd < 0 {
        fail("open of the backing file");
    }
    Some((fd, true))
}

/// Maps the region in the calling process (tmpfs, posix: opens and maps the file).
fn attach(cfg: &Config) -> *mut u8 {
    match cfg.sharing {
        Sharing::None | Sharing::Transparent => {}
        Sharing::MshareFs => return map_shared(cfg.addr, REGION, cfg.region_fd),
        Sharing::Mshare => {
            if mshare(&cfg.region, cfg.addr, REGION, libc::O_RDWR, 0) != 0 {
                fail("mshare attach");
            }
            return cfg.addr as *mut u8;
        }
        Sharing::ShmShareMmu => {
            // SAFETY: an attach at a free, graft-aligned address.
            let p = unsafe { libc::shmat(cfg.shmid, cfg.addr as *const _, msharefs::SHM_SHARE_MMU as i32) };
            if p as usize != cfg.addr {
                fail("shmat SHM_SHARE_MMU of the segment");
            }
            return p as *mut u8;
        }
    }
    match cfg.backing {
        Backing::Anon => cfg.addr as *mut u8,
        Backing::Tmpfs => {
            // SAFETY: a valid path string.
            let fd = unsafe { libc::open(cfg.path.as_ptr(), libc::O_RDWR) };
            if fd < 0 {
                fail("open of the tmpfs file");
            }
            let p = map_shared(cfg.addr, cfg.size, fd);
            // SAFETY: our own descriptor; the mapping keeps the file.
            unsafe { libc::close(fd) };
            p
        }
        Backing::Posix => {
            // SAFETY: a valid name string.
            let fd = unsafe { libc::shm_open(cfg.path.as_ptr(), libc::O_RDWR, 0) };
            if fd < 0 {
                fail("shm_open of the POSIX object");
            }
            let p = map_shared(cfg.addr, cfg.size, fd);
            // SAFETY: our own descriptor; the mapping keeps the file.
            unsafe { libc::close(fd) };
            p
        }
        Backing::Memfd => map_shared(cfg.addr, cfg.size, cfg.memfd),
        Backing::Sysv => {
            // SAFETY: an attach at a free address (the parent keeps it free in every child).
            let p = unsafe { libc::shmat(cfg.shmid, cfg.addr as *const _, 0) };
            if p as usize != cfg.addr {
                fail("shmat of the segment");
            }
            p as *mut u8
        }
    }
}

fn touch(base: *mut u8, size: usize, access: Access) {
    for off in (0..size).step_by(PAGE) {
        // SAFETY: base..base+size is this process's shared mapping, readable and writable.
        unsafe {
            match access {
                Access::Read => {
                    std::ptr::read_volatile(base.add(off));
                }
                Access::Write => std::ptr::write_volatile(base.add(off), 1),
            }
        }
    }
}

/// Empties the calling CPU's TLB: unmapping 64 touched pages is past the page-by-page
/// flush limit of both kernels (Linux's `tlb_single_page_flush_ceiling`, 33; ours, 32), so
/// each flushes the whole TLB of the address space.
fn flush_tlb() {
    const PAGES: usize = 64;
    // SAFETY: a fresh private mapping, touched and unmapped here only.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGES * PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            fail("mmap (TLB flush)");
        }
        touch(p.cast(), PAGES * PAGE, Access::Write);
        if libc::munmap(p, PAGES * PAGE) != 0 {
            fail("munmap (TLB flush)");
        }
    }
}

/// Median cycles of three fork+_exit+waitpid rounds of the calling process.
fn time_fork() -> u64 {
    let mut samples = [0u64; 3];
    for s in &mut samples {
        let c0 = rdtsc();
        // SAFETY: the child only calls _exit.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => fail("fork (timing)"),
            // SAFETY: _exit in the child.
            0 => unsafe { libc::_exit(0) },
            _ => {
                let mut status = 0;
                // SAFETY: our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
        *s = rdtsc() - c0;
    }
    samples.sort_unstable();
    samples[1]
}

/// Child `i`: wait for the turn, measure attach+touch, pass the turn on, wait for exit.
fn child(cfg: &Config, ctl: &Control, turns: &[AtomicU32], slot: &Slot, i: usize) -> ! {
    wait_nonzero(&turns[i]);
    let before = self_status();
    let f0 = minor_faults();
    let c0 = rdtsc();
    let base = attach(cfg);
    touch(base, cfg.size, cfg.access);
    let c1 = rdtsc();
    let f1 = minor_faults();
    touch(base, cfg.size, cfg.access);
    let c2 = rdtsc();
    // Before the scratch pages of the flush can add a table of their own.
    let after = self_status();
    flush_tlb();
    let c3 = rdtsc();
    touch(base, cfg.size, cfg.access);
    let c4 = rdtsc();
    slot.pte_before.store(before.vm_pte, Ordering::Relaxed);
    slot.pte_after.store(after.vm_pte, Ordering::Relaxed);
    slot.rss.store(after.vm_rss, Ordering::Relaxed);
    slot.rss_shmem.store(after.rss_shmem, Ordering::Relaxed);
    slot.faults.store(f1 - f0, Ordering::Relaxed);
    slot.cycles.store(c1 - c0, Ordering::Relaxed);
    slot.retouch_cycles.store(c2 - c1, Ordering::Relaxed);
    slot.retouch_cold_cycles.store(c4 - c3, Ordering::Relaxed);
    if i + 1 == cfg.procs {
        ctl.fork_cycles.store(time_fork(), Ordering::Relaxed);
        set_and_wake(&ctl.all_done);
    } else {
        set_and_wake(&turns[i + 1]);
    }
    wait_nonzero(&ctl.exit);
    // SAFETY: leave without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}

fn parse_args() -> Config {
    let args: Vec<String> = std::env::args().collect();
    let backing = match arg_value(&args, "--backing").as_deref() {
        Some("anon") => Backing::Anon,
        Some("tmpfs") => Backing::Tmpfs,
        Some("sysv") => Backing::Sysv,
        Some("memfd") => Backing::Memfd,
        Some("posix") => Backing::Posix,
        _ => usage(),
    };
    let sharing = match arg_value(&args, "--sharing").as_deref() {
        None | Some("none") => Sharing::None,
        Some("mshare") if backing != Backing::Sysv => Sharing::Mshare,
        Some("mshare_fs") if backing != Backing::Sysv => Sharing::MshareFs,
        Some("shm_share_mmu") if backing == Backing::Sysv => Sharing::ShmShareMmu,
        Some("transparent") => Sharing::Transparent,
        _ => usage(),
    };
    let access = match arg_value(&args, "--access").as_deref() {
        Some("read") => Access::Read,
        Some("write") => Access::Write,
        _ => usage(),
    };
    let size = arg_value(&args, "--size").and_then(|s| parse_size(&s)).unwrap_or_else(|| usage()) as usize;
    let procs = arg_value(&args, "--procs").and_then(|s| s.parse().ok()).unwrap_or_else(|| usage());
    let addr = match arg_value(&args, "--addr") {
        Some(a) => usize::from_str_radix(a.trim_start_matches("0x"), 16).unwrap_or_else(|_| usage()),
        None => 0x6000_0000_0000,
    };
    if procs == 0 || size == 0 || !size.is_multiple_of(PAGE) || !addr.is_multiple_of(PAGE) {
        usage();
    }
    let path = match backing {
        Backing::Posix => format!("/pt_sharing.{}", std::process::id()),
        _ => format!("/tmp/pt_sharing.{}", std::process::id()),
    };
    let region_sharing = matches!(sharing, Sharing::Mshare | Sharing::MshareFs | Sharing::ShmShareMmu);
    if region_sharing && (!addr.is_multiple_of(REGION) || size > REGION) {
        usage();
    }
    let region = CString::new(format!("pt_sharing.{}", std::process::id())).unwrap();
    Config {
        backing,
        sharing,
        access,
        size,
        procs,
        addr,
        path: CString::new(path).unwrap(),
        shmid: -1,
        memfd: -1,
        region,
        region_fd: -1,
    }
}

/// Writes `value` to `/proc/sys/vm/pt_share` (transparent page-table sharing, our kernel).
fn set_pt_share(value: &str) {
    if std::fs::write("/proc/sys/vm/pt_share", value).is_err() {
        fail("write of /proc/sys/vm/pt_share");
    }
}

fn main() {
    let mut cfg = parse_args();
    if cfg.sharing == Sharing::Transparent {
        set_pt_share("1");
    }
    let tsc_hz = benches::tsc_hz(20);
    let pt_start = meminfo_page_tables();
    match cfg.backing {
        // An msharefs region makes its own anonymous memory.
        Backing::Anon if cfg.sharing == Sharing::MshareFs => {}
        Backing::Anon => {
            map_shared(cfg.addr, cfg.size, -1);
        }
        Backing::Tmpfs => {
            // SAFETY: a valid path string.
            let fd = unsafe { libc::open(cfg.path.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600) };
            // SAFETY: our own descriptor.
            if fd < 0 || unsafe { libc::ftruncate(fd, cfg.size as i64) } != 0 {
                fail("creating the tmpfs file");
            }
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
        }
        Backing::Sysv => {
            // SAFETY: plain arguments.
            cfg.shmid = unsafe { libc::shmget(libc::IPC_PRIVATE, cfg.size, 0o600) };
            if cfg.shmid < 0 {
                fail("shmget of the segment");
            }
        }
        Backing::Memfd => {
            // SAFETY: a valid name string; our own descriptor.
            cfg.memfd = unsafe { libc::memfd_create(c"pt_sharing".as_ptr(), 0) };
            if cfg.memfd < 0 || unsafe { libc::ftruncate(cfg.memfd, cfg.size as i64) } != 0 {
                fail("creating the memfd");
            }
        }
        Backing::Posix => {
            // SAFETY: a valid name string; our own descriptor.
            let fd = unsafe { libc::shm_open(cfg.path.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600) };
            if fd < 0 || unsafe { libc::ftruncate(fd, cfg.size as i64) } != 0 {
                fail("creating the POSIX object");
            }
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
        }
    }
    make_region(&mut cfg);
    let cfg = cfg;
    let ctl_len = (size_of::<Control>() + cfg.procs * (4 + size_of::<Slot>())).next_multiple_of(PAGE);
    let ctl_mem = map_shared(0, ctl_len, -1);
    // SAFETY: the control area is zeroed shared memory, big enough for a Control followed
    // by `procs` turn words and `procs` slots, all of types for which zero is valid; it is
    // never unmapped while these references live.
    let (ctl, turns, slots) = unsafe {
        let ctl = &*(ctl_mem as *const Control);
        let turns_ptr = ctl_mem.add(size_of::<Control>()) as *const AtomicU32;
        let turns = std::slice::from_raw_parts(turns_ptr, cfg.procs);
        let slots_ptr = turns_ptr.add(cfg.procs).cast::<u8>();
        let slots_ptr = slots_ptr.add(slots_ptr.align_offset(8)) as *const Slot;
        (ctl, turns, std::slice::from_raw_parts(slots_ptr, cfg.procs))
    };
    let mut pids = Vec::with_capacity(cfg.procs);
    for i in 0..cfg.procs {
        // SAFETY: the parent is single-threaded; the child runs `child` and exits.
        match unsafe { libc::fork() } {
            -1 => {
                eprintln!("pt_sharing: fork of child {i}: {}", std::io::Error::last_os_error());
                set_and_wake(&ctl.exit);
                set_and_wake(&turns[i.min(cfg.procs - 1)]);
                reap(&pids);
                std::process::exit(1);
            }
            0 => child(&cfg, ctl, turns, &slots[i], i),
            pid => pids.push(pid),
        }
    }
    set_and_wake(&turns[0]);
    // The parent looks for dead children every second, so that a crashed child ends the
    // run instead of hanging it.
    while ctl.all_done.load(Ordering::Acquire) == 0 {
        futex_wait(&ctl.all_done, 0, Some(1));
        let mut status = 0;
        // SAFETY: reaps any child without blocking.
        let dead = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if dead > 0 {
            eprintln!("pt_sharing: child {dead} died before all had touched (status {status:#x})");
            set_and_wake(&ctl.exit);
            reap(&pids);
            std::process::exit(1);
        }
    }
    let pt_end = meminfo_page_tables();
    let c0 = rdtsc();
    set_and_wake(&ctl.exit);
    let ok = reap(&pids);
    let teardown_cycles = rdtsc() - c0;
    // SAFETY: the region and control area are this process's own mappings, no longer used.
    unsafe {
        match cfg.sharing {
            Sharing::MshareFs => {
                libc::close(cfg.region_fd);
                let path =
                    CString::new(format!("{}/{}", msharefs::MSHAREFS_MOUNT, cfg.region.to_str().unwrap())).unwrap();
                libc::unlink(path.as_ptr());
            }
            Sharing::Mshare => {
                libc::syscall(msharefs::SYS_MSHARE_UNLINK as libc::c_long, cfg.region.as_ptr());
            }
            _ => {}
        }
        match cfg.backing {
            Backing::Anon => {
                libc::munmap(cfg.addr as *mut _, cfg.size);
            }
            Backing::Tmpfs => {
                libc::unlink(cfg.path.as_ptr());
            }
            Backing::Sysv => {
                libc::shmctl(cfg.shmid, libc::IPC_RMID, std::ptr::null_mut());
            }
            Backing::Memfd => {
                libc::close(cfg.memfd);
            }
            Backing::Posix => {
                libc::shm_unlink(cfg.path.as_ptr());
            }
        }
    }
    if cfg.sharing == Sharing::Transparent {
        set_pt_share("0");
    }
    if !ok {
        eprintln!("pt_sharing: a child did not exit with status 0");
        std::process::exit(1);
    }
    report(&cfg, slots, ctl, pt_end.saturating_sub(pt_start), teardown_cycles, tsc_hz);
    // SAFETY: as above.
    unsafe { libc::munmap(ctl_mem as *mut _, ctl_len) };
}

/// Puts the object in an mshare region (`--sharing mshare|mshare_fs`) before the children
/// are forked: they find the region, not the parent's mapping.
fn make_region(cfg: &mut Config) {
    match cfg.sharing {
        Sharing::MshareFs => {
            let path = CString::new(format!("{}/{}", msharefs::MSHAREFS_MOUNT, cfg.region.to_str().unwrap())).unwrap();
            // SAFETY: a valid path string; our own descriptor.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600) };
            if fd < 0 || unsafe { libc::ftruncate(fd, REGION as i64) } != 0 {
                fail("creating the msharefs region");
            }
            let backing = backing_fd(cfg);
            let anon = backing.is_none();
            let c = msharefs::MshareCreate {
                region_offset: 0,
                size: cfg.size as u64,
                offset: 0,
                prot: (libc::PROT_READ | libc::PROT_WRITE) as u32,
                flags: (libc::MAP_SHARED | libc::MAP_FIXED | if anon { libc::MAP_ANONYMOUS } else { 0 }) as u32,
                fd: backing.map_or(0, |(fd, _)| fd as u32),
            };
            // SAFETY: a valid request struct for this ioctl.
            if unsafe { libc::ioctl(fd, msharefs::MSHAREFS_CREATE_MAPPING as _, &c as *const msharefs::MshareCreate) }
                != 0
            {
                fail("MSHAREFS_CREATE_MAPPING");
            }
            if let Some((bfd, true)) = backing {
                // SAFETY: our own descriptor; the region's mapping keeps the file.
                unsafe { libc::close(bfd) };
            }
            cfg.region_fd = fd;
        }
        Sharing::Mshare => {
            // The parent's own mapping becomes the region; it then drops its window.
            if let Some((bfd, opened)) = backing_fd(cfg) {
                map_shared(cfg.addr, cfg.size, bfd);
                if opened {
                    // SAFETY: our own descriptor; the mapping keeps the file.
                    unsafe { libc::close(bfd) };
                }
            }
            if mshare(&cfg.region, cfg.addr, REGION, libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600) != 0 {
                fail("mshare O_CREAT");
            }
            // SAFETY: the window just made, never used by this process.
            unsafe { libc::munmap(cfg.addr as *mut _, REGION) };
        }
        _ => {}
    }
}

/// Waits for every pid; true when all exited with status 0.
fn reap(pids: &[i32]) -> bool {
    let mut ok = true;
    for &pid in pids {
        let mut status = 0;
        // SAFETY: our own children.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        ok &= r == pid && status == 0;
    }
    ok
}

fn mean(v: impl Iterator<Item = u64>) -> Option<u64> {
    let (sum, n) = v.fold((0u128, 0u128), |(s, n), x| (s + x as u128, n + 1));
    (n > 0).then(|| (sum / n) as u64)
}

fn report(cfg: &Config, slots: &[Slot], ctl: &Control, pt_total: u64, teardown_cycles: u64, tsc_hz: u64) {
    let get = |f: fn(&Slot) -> &AtomicU64| move |s: &Slot| f(s).load(Ordering::Relaxed);
    let pt_per_proc = mean(slots.iter().map(|s| get(|s| &s.pte_after)(s).saturating_sub(get(|s| &s.pte_before)(s))));
    let rss = mean(slots.iter().map(get(|s| &s.rss)));
    let rss_shmem = mean(slots.iter().map(get(|s| &s.rss_shmem)));
    let faults_later = mean(slots[1..].iter().map(get(|s| &s.faults)));
    let cycles_later = mean(slots[1..].iter().map(get(|s| &s.cycles)));
    let retouch_later = mean(slots[1..].iter().map(get(|s| &s.retouch_cycles)));
    let retouch_cold_later = mean(slots[1..].iter().map(get(|s| &s.retouch_cold_cycles)));
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let kernel = benches::kernel_release();
    let backing = cfg.backing.name();
    let sharing = cfg.sharing.name();
    let access = if cfg.access == Access::Read { "read" } else { "write" };
    let fields: &[(&str, &dyn Display)] = &[
        ("kernel", &kernel),
        ("backing", &backing),
        ("sharing", &sharing),
        ("access", &access),
        ("region_bytes", &cfg.size),
        ("procs", &cfg.procs),
        ("pt_bytes_total", &pt_total),
        ("pt_bytes_per_proc", &pt_per_proc.unwrap_or(0)),
        ("rss_bytes_per_proc", &rss.unwrap_or(0)),
        ("rss_shmem_bytes_per_proc", &rss_shmem.unwrap_or(0)),
        ("faults_first_proc", &slots[0].faults.load(Ordering::Relaxed)),
        ("faults_per_later_proc", &opt(faults_later)),
        ("cycles_first_proc", &slots[0].cycles.load(Ordering::Relaxed)),
        ("cycles_per_later_proc", &opt(cycles_later)),
        ("cycles_retouch_per_later_proc", &opt(retouch_later)),
        ("cycles_retouch_cold_per_later_proc", &opt(retouch_cold_later)),
        ("fork_cycles", &ctl.fork_cycles.load(Ordering::Relaxed)),
        ("teardown_cycles", &teardown_cycles),
        ("tsc_hz", &tsc_hz),
    ];
    emit("pt_sharing", fields);
}
