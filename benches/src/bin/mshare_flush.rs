//! `mshare_flush`: what a change of an mshare region's translations costs its host, against
//! the number of processes sharing the region's page tables (our kernel only: Linux has no
//! mshare).
//!
//! ```text
//! mshare_flush --op unmap|protect --sharers N --busy 0|1 [--rounds R]
//! ```
//!
//! The parent makes a region in /sys/fs/mshare holding 16 pages of anonymous shared memory.
//! N sharer processes map it and read every page (so each has grafted the region's table),
//! then either sleep (`--busy 0`: their address spaces are loaded on no CPU) or read the
//! pages in a loop (`--busy 1`: one sharer per CPU runs them). The parent maps it too and,
//! before each change, writes every page (untimed), so that each change has entries to
//! take away. It then makes R changes through the region, each timed: `unmap` is `MSHAREFS_UNMAP` of the 16 pages
//! followed by `MSHAREFS_CREATE_MAPPING` of them again (busy sharers take a SIGSEGV they
//! ignore by retrying later), `protect` is `MSHAREFS_PROTECT` to read-only and back. The
//! region's counters (`/sys/fs/mshare/mshare_stats`) give the flushes, the IPIs they sent
//! (to the CPUs that had a sharer loaded) and what flushing every other CPU would have sent.
//!
//! Output: `@bench mshare_flush kernel=... op=... sharers=N busy=0|1 cpus=... rounds=R
//! cycles_per_op=... flushes_per_op=... ipis_per_op=... ipis_all_cpus_per_op=... tsc_hz=...`
//! (an operation is one change and its undoing: two host flushes).

use benches::{arg_value, emit, rdtsc};
use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};

const PAGE: usize = 4096;
const PAGES: usize = 16;
/// The region: one graft of the default mount.
const REGION: usize = 1 << 39;

fn fail(what: &str) -> ! {
    eprintln!("mshare_flush: {what}: {}", std::io::Error::last_os_error());
    std::process::exit(1);
}

fn usage() -> ! {
    eprintln!("usage: mshare_flush --op unmap|protect --sharers N --busy 0|1 [--rounds R]");
    std::process::exit(2);
}

fn ioctl<T>(fd: i32, req: u32, arg: &T) {
    // SAFETY: `arg` is the request's struct, valid for the call.
    if unsafe { libc::ioctl(fd, req as _, arg as *const T) } != 0 {
        fail("msharefs ioctl");
    }
}

fn create_mapping(fd: i32) {
    let c = msharefs::MshareCreate {
        region_offset: 0,
        size: (PAGES * PAGE) as u64,
        offset: 0,
        prot: (libc::PROT_READ | libc::PROT_WRITE) as u32,
        flags: (libc::MAP_ANONYMOUS | libc::MAP_SHARED | libc::MAP_FIXED) as u32,
        fd: 0,
    };
    ioctl(fd, msharefs::MSHAREFS_CREATE_MAPPING, &c);
}

fn protect(fd: i32, prot: i32) {
    let p = msharefs::MshareProtect { region_offset: 0, size: (PAGES * PAGE) as u64, prot: prot as u32, reserved: 0 };
    ioctl(fd, msharefs::MSHAREFS_PROTECT, &p);
}

fn unmap(fd: i32) {
    let u = msharefs::MshareUnmap { region_offset: 0, size: (PAGES * PAGE) as u64 };
    ioctl(fd, msharefs::MSHAREFS_UNMAP, &u);
}

/// The region's counters: (flushes, ipis, ipis_all_cpus).
fn counters(name: &str) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(format!("{}/{}", msharefs::MSHAREFS_MOUNT, msharefs::MSHARE_STATS))
        .unwrap_or_else(|_| fail("reading mshare_stats"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let line = lines.find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| fail("no stats line"));
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    let col = |c: &str| header.iter().position(|h| *h == c).map_or(0, |i| fields[i - 1]);
    (col("flushes"), col("ipis"), col("ipis_all_cpus"))
}

extern "C" fn on_segv(_: i32) {
    // A busy sharer reading a page unmapped meanwhile: it sleeps a moment and retries.
    // SAFETY: sched_yield is async-signal-safe.
    unsafe { libc::sched_yield() };
}

/// A sharer: maps the region, reads every page (grafting its table), says so, then reads
/// in a loop (`busy`) or sleeps until killed.
fn sharer(fd: i32, busy: bool, ready: &AtomicU32) -> ! {
    // SAFETY: a new shared mapping of the region at a kernel-chosen address.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), REGION, libc::PROT_READ, libc::MAP_SHARED, fd, 0) };
    if p == libc::MAP_FAILED {
        fail("mmap of the region");
    }
    let base = p as *const u8;
    let read_all = || {
        let mut sum = 0u64;
        for i in 0..PAGES {
            // SAFETY: a page of this process's window; a fault is handled by `on_segv`.
            sum += unsafe { std::ptr::read_volatile(base.add(i * PAGE)) } as u64;
        }
        sum
    };
    read_all();
    // SAFETY: installs a handler for SIGSEGV (a plain function).
    unsafe { libc::signal(libc::SIGSEGV, on_segv as *const () as usize) };
    ready.fetch_add(1, Ordering::Release);
    loop {
        if busy {
            read_all();
        } else {
            // SAFETY: sleeps until a signal (SIGKILL at the end).
            unsafe { libc::pause() };
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = arg_value(&args, "--op").unwrap_or_else(|| usage());
    if op != "unmap" && op != "protect" {
        usage();
    }
    let sharers: usize = arg_value(&args, "--sharers").and_then(|s| s.parse().ok()).unwrap_or_else(|| usage());
    let busy = match arg_value(&args, "--busy").as_deref() {
        Some("0") => false,
        Some("1") => true,
        _ => usage(),
    };
    let rounds: u64 = arg_value(&args, "--rounds").and_then(|s| s.parse().ok()).unwrap_or(200);
    let tsc_hz = benches::tsc_hz(20);
    let name = format!("mshare_flush.{}", std::process::id());
    let path = CString::new(format!("{}/{name}", msharefs::MSHAREFS_MOUNT)).unwrap();
    // SAFETY: a valid path; our own descriptor.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600) };
    if fd < 0 || unsafe { libc::ftruncate(fd, REGION as i64) } != 0 {
        fail("creating the region");
    }
    create_mapping(fd);
    // SAFETY: a shared anonymous word for the sharers' count.
    let ready = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            fail("mmap of the control word");
        }
        &*(p as *const AtomicU32)
    };
    let mut pids = Vec::new();
    for _ in 0..sharers {
        // SAFETY: the parent is single-threaded; the child runs `sharer` and never returns.
        match unsafe { libc::fork() } {
            -1 => fail("fork"),
            0 => sharer(fd, busy, ready),
            pid => pids.push(pid),
        }
    }
    while ready.load(Ordering::Acquire) < sharers as u32 {
        // SAFETY: yields the CPU to the sharers.
        unsafe { libc::sched_yield() };
    }
    // The parent's own window: it fills the pages again before each change (untimed), so
    // that every change has entries to take away.
    // SAFETY: a new shared mapping of the region at a kernel-chosen address.
    let own = unsafe {
        libc::mmap(std::ptr::null_mut(), REGION, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
    };
    if own == libc::MAP_FAILED {
        fail("mmap of the region");
    }
    let before = counters(&name);
    let mut samples = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        for i in 0..PAGES {
            // SAFETY: a page of the parent's window, mapped read-write in the region.
            unsafe { std::ptr::write_volatile((own as *mut u8).add(i * PAGE), 1) };
        }
        let c0 = rdtsc();
        if op == "unmap" {
            unmap(fd);
            create_mapping(fd);
        } else {
            protect(fd, libc::PROT_READ);
            protect(fd, libc::PROT_READ | libc::PROT_WRITE);
        }
        samples.push(rdtsc() - c0);
    }
    let after = counters(&name);
    for &pid in &pids {
        // SAFETY: our own children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    // SAFETY: our own descriptor and path.
    unsafe {
        libc::close(fd);
        libc::unlink(path.as_ptr());
    }
    samples.sort_unstable();
    let per = |a: u64, b: u64| format!("{:.2}", (b - a) as f64 / rounds as f64);
    let kernel = benches::kernel_release();
    // SAFETY: sysconf has no memory effects.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    emit(
        "mshare_flush",
        &[
            ("kernel", &kernel),
            ("op", &op),
            ("sharers", &sharers),
            ("busy", &(busy as u8)),
            ("cpus", &cpus),
            ("rounds", &rounds),
            ("cycles_per_op", &samples[samples.len() / 2]),
            ("flushes_per_op", &per(before.0, after.0)),
            ("ipis_per_op", &per(before.1, after.1)),
            ("ipis_all_cpus_per_op", &per(before.2, after.2)),
            ("tsc_hz", &tsc_hz),
        ],
    );
}
