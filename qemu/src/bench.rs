//! `cargo xtask bench`: the benchmarks of `benches/`, on our kernel and (with `--linux`)
//! on Debian's Linux in the same QEMU, each benchmark case in a boot of its own.
//!
//! A boot's initramfs holds `/bench_init` (its /init on both kernels), the benchmark
//! programs and `/bench/plan`, the commands to run. The programs print `@bench SUITE
//! key=value ...` lines; this module turns them into `pt_sharing.csv`, `vm_micro.csv` and
//! `will_it_scale.csv` (with JSON beside each), plots and a Markdown summary in the output
//! directory (`target/bench/` unless `--out DIR`). A boot that fails is reported with its
//! reason and console log; the rows already measured are kept and the command exits
//! non-zero.
//!
//! Boots run in parallel, each QEMU under TCG keeping one host core busy per guest CPU: a
//! boot starts only when its CPUs and those of the boots already running fit the host's
//! cores (or nothing else runs; a boot with more CPUs than the host has runs alone, and
//! its rows are marked oversubscribed).

use crate::plot::{fmt_bytes, fmt_count};
use crate::qemu::{self, QemuConfig, QemuExit};
use crate::{build_kernel, target_dir, write_initramfs, Options};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const PAGE: u64 = 4096;

/// The kernels a run compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelKind {
    Ours,
    Linux,
}

impl KernelKind {
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Ours => "ours",
            KernelKind::Linux => "linux",
        }
    }
}

/// One `pt_sharing` case: a boot runs it once.
#[derive(Clone, Debug, PartialEq)]
pub struct PtCase {
    pub backing: &'static str,
    /// `none`, or how the processes share the region's page tables (our kernel only).
    pub sharing: &'static str,
    pub access: &'static str,
    pub size: u64,
    pub procs: u32,
    /// How many boots (runs) measure this case.
    pub runs: u32,
}

impl PtCase {
    fn pages(&self) -> u64 {
        self.size / PAGE
    }

    fn describe(&self) -> String {
        let backing = match self.sharing {
            "none" => self.backing.to_string(),
            s => format!("{}/{s}", self.backing),
        };
        format!("pt_sharing {backing} {} {} N={}", self.access, fmt_size(self.size), self.procs)
    }
}

/// One `will_it_scale` case (plan group `scale`): a test, as threads or processes, with
/// `tasks` tasks in a guest of as many CPUs.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleCase {
    pub test: &'static str,
    pub mode: &'static str,
    pub tasks: u32,
}

impl ScaleCase {
    fn describe(&self) -> String {
        format!("scale {} {} T={}", self.test, self.mode, self.tasks)
    }

    /// The program's command line: `runs` windows of `seconds` after a warm-up of half a
    /// window, over regions of `size` bytes.
    fn command(&self, seconds: f64, runs: u32, size: u64) -> String {
        format!(
            "/will_it_scale --test {} --mode {} --tasks {} --seconds {seconds} --runs {runs} --size {size}",
            self.test, self.mode, self.tasks
        )
    }
}

/// The tests of `will_it_scale`, as it names them.
pub const SCALE_TESTS: [&str; 7] = ["page_fault1", "page_fault2", "mmap1", "mmap2", "futex1", "futex2", "spin1"];
pub const SCALE_MODES: [&str; 2] = ["threads", "processes"];
/// Task counts (and guest CPUs) of the full set and of `--quick`.
pub const SCALE_TASKS: [u32; 3] = [1, 2, 4];
pub const QUICK_SCALE_TASKS: [u32; 2] = [1, 2];
/// The region of each task (will-it-scale's MEMSIZE), and the quick set's.
pub const SCALE_SIZE: u64 = 128 * MIB;
pub const QUICK_SCALE_SIZE: u64 = 4 * MIB;
/// Seconds per measured window, full and quick.
pub const SCALE_SECONDS: f64 = 1.0;
pub const QUICK_SCALE_SECONDS: f64 = 0.1;

/// What one `bench` invocation measures.
#[derive(Clone, Debug)]
pub struct Plan {
    pub pt: Vec<PtCase>,
    /// `will_it_scale` cases; each boots with `tasks` CPUs whatever `smp` says. The full
    /// set boots each case once and measures `micro_runs` windows in it; `--quick` boots
    /// once per task count and runs every test and mode in that boot, one short window each.
    pub scale: Vec<ScaleCase>,
    /// `mshare_flush` boots (our kernel only).
    pub flush: Vec<FlushBoot>,
    /// Run `vm_micro` (with `--quick` when the plan is quick), `micro_runs` times in one boot.
    pub micro: bool,
    pub micro_runs: u32,
    pub quick: bool,
    pub kernels: Vec<KernelKind>,
    pub mem: String,
    pub smp: u32,
    pub machine: String,
    /// Boots at a time (QEMU under TCG uses one host core per guest CPU).
    pub jobs: usize,
    /// Guest CPUs of the boots running at once, at most (a boot needing more runs alone).
    pub cpu_budget: u32,
    /// The host's cores, recorded in run.json: a boot with more CPUs oversubscribes them.
    pub host_cores: u32,
}

/// The shared objects `pt_sharing` maps (its `--backing`).
pub const PT_BACKINGS: [&str; 5] = ["anon", "tmpfs", "sysv", "memfd", "posix"];

/// How `pt_sharing` shares page tables (its `--sharing`); all but `none` exist in our
/// kernel only, so Linux runs no such row (its `none` rows are the comparison).
/// `transparent` is `none` with `vm.pt_share` on.
pub const PT_SHARING: [&str; 5] = ["none", "mshare", "mshare_fs", "shm_share_mmu", "transparent"];

/// `mshare_flush` (our kernel only): one boot per CPU count, each measuring both changes
/// with idle and busy sharers at every sharer count.
pub const FLUSH_SMP: [u32; 3] = [1, 2, 4];
pub const FLUSH_SHARERS: [u32; 4] = [1, 4, 16, 64];
pub const QUICK_FLUSH_SHARERS: [u32; 2] = [1, 4];
/// Changes timed per case, full and quick.
pub const FLUSH_ROUNDS: u32 = 200;
pub const QUICK_FLUSH_ROUNDS: u32 = 20;

/// One `mshare_flush` boot: `smp` CPUs, a case per change, sharer count and busy-ness.
#[derive(Clone, Debug, PartialEq)]
pub struct FlushBoot {
    pub smp: u32,
    pub sharers: Vec<u32>,
    pub rounds: u32,
}

impl FlushBoot {
    /// The program's command lines, one per case.
    fn commands(&self) -> Vec<String> {
        let mut v = Vec::new();
        for op in ["unmap", "protect"] {
            for busy in [0, 1] {
                for n in &self.sharers {
                    v.push(format!("/mshare_flush --op {op} --sharers {n} --busy {busy} --rounds {}", self.rounds));
                }
            }
        }
        v
    }
}

/// Whether sharing mode `sharing` applies to `backing`: SysV segments share through
/// SHM_SHARE_MMU, the others through mshare regions; transparent sharing takes them all.
pub fn sharing_applies(backing: &str, sharing: &str) -> bool {
    match sharing {
        "none" | "transparent" => true,
        "shm_share_mmu" => backing == "sysv",
        _ => backing != "sysv",
    }
}

/// The process counts of the full set.
pub const FULL_PROCS: [u32; 6] = [1, 4, 16, 64, 256, 1024];
/// A case touching more than this (processes x region) runs once instead of `--runs`
/// times: its counts do not vary, and its time is long enough to be steady.
pub const ONE_RUN_ABOVE: u64 = 16 * GIB;
/// The full set leaves out cases touching more than this (1 GiB x 1024 processes: about
/// a quarter of an hour per kernel and access under TCG, and 6 GiB of guest memory);
/// `--uncapped` keeps them.
pub const CAP_TOUCHED: u64 = 256 * GIB;

/// Guest memory for a plan: the largest case's region and page tables, with room
/// (a `page_fault2` task holds its file's pages and as many private copies).
fn memory_for(cases: &[PtCase], scale: &[ScaleCase], scale_size: u64) -> String {
    let pt = cases.iter().map(|c| c.size + c.procs as u64 * (c.size / 512 + 256 * 1024));
    let scale = scale.iter().map(|c| 2 * c.tasks as u64 * scale_size + 256 * MIB);
    let need = pt.chain(scale).max().unwrap_or(0);
    let gib = ((need as f64 * 1.5) / GIB as f64 + 0.5).ceil().max(1.0);
    format!("{gib}G")
}

/// Builds the plan from the options: `--quick` (seconds, for CI), the default set for
/// `cargo xtask run`, or the full set; `--only` keeps the suites or cases whose name
/// contains it.
pub fn plan(o: &Options, for_run: bool) -> Plan {
    let runs = o.runs.unwrap_or(if o.quick || for_run { 1 } else { 3 });
    let mut pt = Vec::new();
    let (sizes, procs, micro): (&[u64], &[u32], bool) = if o.quick {
        (&[16 * MIB], &[1, 4], true)
    } else if for_run {
        (&[256 * MIB], &[1, 4, 16, 64], false)
    } else {
        (&[256 * MIB, GIB], &FULL_PROCS, true)
    };
    let procs = o.procs.as_deref().unwrap_or(procs);
    for &size in sizes {
        for sharing in PT_SHARING {
            for backing in PT_BACKINGS {
                for access in ["read", "write"] {
                    if !sharing_applies(backing, sharing) {
                        continue;
                    }
                    // `run`: anon written (plain and through an msharefs region), tmpfs read;
                    // `--quick`: every backing plain, and each sharing mode once, written.
                    let keep = if for_run {
                        matches!(
                            (backing, sharing, access),
                            ("anon", "none" | "mshare_fs", "write") | ("tmpfs", "none", "read")
                        )
                    } else if o.quick {
                        sharing == "none" || (access == "write" && matches!(backing, "anon" | "sysv"))
                    } else {
                        true
                    };
                    if !keep {
                        continue;
                    }
                    for &n in procs {
                        if n as u64 * size > CAP_TOUCHED && !o.uncapped {
                            continue;
                        }
                        let case_runs = if n as u64 * size > ONE_RUN_ABOVE { 1 } else { runs };
                        pt.push(PtCase { backing, sharing, access, size, procs: n, runs: case_runs });
                    }
                }
            }
        }
    }
    let mut scale = Vec::new();
    if !for_run {
        for test in SCALE_TESTS {
            for mode in SCALE_MODES {
                for &tasks in if o.quick { &QUICK_SCALE_TASKS[..] } else { &SCALE_TASKS[..] } {
                    scale.push(ScaleCase { test, mode, tasks });
                }
            }
        }
    }
    let only = o.only.clone().unwrap_or_default();
    let micro = micro && (only.is_empty() || "vm_micro".contains(&only) || only.contains("vm_micro"));
    let flush = if for_run || !(only.is_empty() || "mshare_flush".contains(&only) || only.contains("mshare_flush")) {
        Vec::new()
    } else if o.quick {
        vec![FlushBoot { smp: 2, sharers: QUICK_FLUSH_SHARERS.to_vec(), rounds: QUICK_FLUSH_ROUNDS }]
    } else {
        FLUSH_SMP.iter().map(|&smp| FlushBoot { smp, sharers: FLUSH_SHARERS.to_vec(), rounds: FLUSH_ROUNDS }).collect()
    };
    if !only.is_empty() {
        // `A|B` keeps what matches either.
        let matches = |what: &str| only.split('|').any(|p| what.contains(p));
        pt.retain(|c| matches(&c.describe()) || only == "pt_sharing");
        scale.retain(|c| matches(&c.describe()));
    }
    let scale_size = if o.quick { QUICK_SCALE_SIZE } else { SCALE_SIZE };
    let mut kernels = vec![KernelKind::Ours];
    if o.linux {
        kernels.push(KernelKind::Linux);
    }
    // `run` fits the runner's default memory (512 MiB); the full set sizes its own.
    let mem =
        o.mem.clone().unwrap_or_else(|| if for_run { "512M".into() } else { memory_for(&pt, &scale, scale_size) });
    let host_cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let smp = o.smp.unwrap_or(1).max(1);
    Plan {
        pt,
        scale,
        flush,
        micro,
        micro_runs: runs.max(if o.quick { 1 } else { 3 }),
        quick: o.quick,
        kernels,
        mem,
        smp,
        machine: o.machine.clone().unwrap_or_else(|| "microvm".into()),
        jobs: o.jobs.unwrap_or((host_cores / smp) as usize).max(1),
        cpu_budget: o.jobs.map_or(host_cores, |j| j as u32 * smp).max(1),
        host_cores,
    }
}

/// One boot to make.
#[derive(Clone, Debug)]
struct Job {
    kernel: KernelKind,
    /// The lines of `/bench/plan`, one command each.
    command: String,
    /// The `@bench` suite its results come as, and how many such lines a good boot prints.
    suite: &'static str,
    expected: usize,
    what: String,
    /// The guest's CPUs.
    smp: u32,
    /// Relative cost, for the estimate of time left.
    weight: f64,
    timeout: Duration,
}

/// The boots of a plan: vm_micro first, then the will_it_scale cases, then each
/// pt_sharing case, the kernels in turn for each, so that a run cut short still compares
/// them.
fn jobs(plan: &Plan) -> Vec<Job> {
    let mut jobs = Vec::new();
    if plan.micro {
        for &kernel in &plan.kernels {
            let quick = if plan.quick { " --quick" } else { "" };
            jobs.push(Job {
                kernel,
                command: format!("/vm_micro --runs {}{quick}", plan.micro_runs),
                suite: "vm_micro",
                expected: 1,
                what: "vm_micro".into(),
                smp: plan.smp,
                weight: if plan.quick { 200_000.0 } else { 40_000_000.0 },
                timeout: Duration::from_secs(if plan.quick { 120 } else { 900 }),
            });
        }
    }
    if plan.quick {
        // One boot per task count runs every quick case, one short window each.
        let mut counts: Vec<u32> = plan.scale.iter().map(|c| c.tasks).collect();
        counts.sort();
        counts.dedup();
        for tasks in counts {
            let cases: Vec<&ScaleCase> = plan.scale.iter().filter(|c| c.tasks == tasks).collect();
            let lines: Vec<String> =
                cases.iter().map(|c| c.command(QUICK_SCALE_SECONDS, 1, QUICK_SCALE_SIZE)).collect();
            for &kernel in &plan.kernels {
                jobs.push(Job {
                    kernel,
                    command: lines.join("\n"),
                    suite: "will_it_scale",
                    expected: cases.len(),
                    what: format!("scale T={tasks} ({} cases)", cases.len()),
                    smp: tasks,
                    weight: 100_000.0 * cases.len() as f64,
                    timeout: Duration::from_secs(120),
                });
            }
        }
    } else {
        for c in &plan.scale {
            for &kernel in &plan.kernels {
                let runs = plan.micro_runs;
                jobs.push(Job {
                    kernel,
                    command: c.command(SCALE_SECONDS, runs, SCALE_SIZE),
                    suite: "will_it_scale",
                    expected: runs as usize,
                    what: c.describe(),
                    smp: c.tasks,
                    // A boot, the tasks' set-up and (runs + 1/2) windows; most of it the boot.
                    weight: 2_000_000.0 * c.tasks as f64,
                    timeout: Duration::from_secs(240 + 60 * c.tasks as u64),
                });
            }
        }
    }
    for f in &plan.flush {
        let lines = f.commands();
        jobs.push(Job {
            kernel: KernelKind::Ours,
            command: lines.join("\n"),
            suite: "mshare_flush",
            expected: lines.len(),
            what: format!("mshare_flush smp={} ({} cases)", f.smp, lines.len()),
            smp: f.smp,
            weight: 50_000.0 * f.rounds as f64 * lines.len() as f64,
            timeout: Duration::from_secs(120 + 2 * f.rounds as u64 * lines.len() as u64 / 10),
        });
    }
    for c in &plan.pt {
        for _ in 0..c.runs {
            for &kernel in &plan.kernels {
                if c.sharing != "none" && kernel == KernelKind::Linux {
                    continue;
                }
                let touched = c.pages() * c.procs as u64;
                jobs.push(Job {
                    kernel,
                    command: format!(
                        "/pt_sharing --backing {} --sharing {} --access {} --size {} --procs {}",
                        c.backing, c.sharing, c.access, c.size, c.procs
                    ),
                    suite: "pt_sharing",
                    expected: 1,
                    what: c.describe(),
                    smp: plan.smp,
                    weight: touched as f64 + 500_000.0,
                    // 50 us per page touched is 20 times what either kernel needs under TCG.
                    timeout: Duration::from_secs(60 + touched / 20_000),
                });
            }
        }
    }
    jobs
}

/// A parsed `@bench SUITE k=v ...` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub suite: String,
    pub fields: BTreeMap<String, String>,
}

pub fn parse_records(console: &str) -> Vec<Record> {
    console
        .lines()
        .filter_map(|l| {
            let rest = l.trim_end().strip_prefix("@bench ")?;
            let mut words = rest.split(' ');
            let suite = words.next()?.to_string();
            let fields = words.filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Some(Record { suite, fields })
        })
        .collect()
}

/// The columns of `pt_sharing.csv`, in order (documented in benches/README.md).
pub const PT_COLUMNS: [&str; 24] = [
    "kernel",
    "backing",
    "sharing",
    "access",
    "region_bytes",
    "procs",
    "pt_bytes_total",
    "pt_bytes_per_proc",
    "rss_bytes_per_proc",
    "faults_first_proc",
    "faults_per_later_proc",
    "cycles_first_proc",
    "cycles_per_later_proc",
    "cycles_retouch_per_later_proc",
    "cycles_retouch_cold_per_later_proc",
    "rss_shmem_bytes_per_proc",
    "fork_cycles",
    "teardown_cycles",
    "tsc_hz",
    "run",
    "kernel_release",
    "machine",
    "mem",
    "smp",
];

/// The columns of `will_it_scale.csv`, in order (documented in benches/README.md).
pub const SCALE_COLUMNS: [&str; 25] = [
    "kernel",
    "test",
    "mode",
    "tasks",
    "run",
    "ops",
    "ns",
    "ops_per_s",
    "per_task_ops_per_s",
    "per_task_min",
    "per_task_max",
    "faults",
    "faults_per_op",
    "ipi_resched",
    "ipi_call",
    "ipi_tlb",
    "ipis",
    "ipis_per_op",
    "cpus",
    "smp",
    "host_cores",
    "oversubscribed",
    "kernel_release",
    "machine",
    "mem",
];

/// A will_it_scale.csv row from a `@bench will_it_scale` line of a boot of `kernel` with
/// `smp` CPUs: the program's fields, and what follows from them (per-task mean, faults and
/// IPIs per operation; `ipis` is RES + CAL, `n/a` unless the kernel has both rows).
fn scale_row(fields: &BTreeMap<String, String>, kernel: KernelKind, smp: u32, plan: &Plan) -> Row {
    let mut row: Row = fields
        .iter()
        .filter(|(k, _)| SCALE_COLUMNS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let n = |k: &str| fields.get(k).and_then(|v| v.parse::<f64>().ok());
    let ops = n("ops").unwrap_or(0.0);
    let per_op = |v: Option<f64>| match v {
        Some(v) if ops > 0.0 => format!("{:.4}", v / ops),
        _ => "n/a".into(),
    };
    if let (Some(rate), Some(tasks)) = (n("ops_per_s"), n("tasks")) {
        row.insert("per_task_ops_per_s".into(), format!("{:.1}", rate / tasks.max(1.0)));
    }
    row.insert("faults_per_op".into(), per_op(n("faults")));
    let ipis = n("ipi_resched").zip(n("ipi_call")).map(|(r, c)| r + c);
    row.insert("ipis".into(), ipis.map_or("n/a".into(), |v| format!("{v}")));
    row.insert("ipis_per_op".into(), per_op(ipis));
    row.insert("kernel".into(), kernel.name().into());
    row.insert("smp".into(), smp.to_string());
    row.insert("host_cores".into(), plan.host_cores.to_string());
    row.insert("oversubscribed".into(), u8::from(smp > plan.host_cores).to_string());
    row.insert("machine".into(), plan.machine.clone());
    row.insert("mem".into(), plan.mem.clone());
    row
}

/// The columns of `mshare_flush.csv`, in order (documented in benches/README.md).
pub const FLUSH_COLUMNS: [&str; 15] = [
    "kernel",
    "op",
    "sharers",
    "busy",
    "smp",
    "cpus",
    "rounds",
    "cycles_per_op",
    "flushes_per_op",
    "ipis_per_op",
    "ipis_all_cpus_per_op",
    "tsc_hz",
    "kernel_release",
    "machine",
    "mem",
];

/// Checks a `mshare_flush.csv`: the header is [`FLUSH_COLUMNS`], figures are numbers, every
/// change flushed, and no case sent more IPIs than flushing every other CPU would have.
pub fn check_flush_csv(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((rows, lines)) = csv_rows(text, &FLUSH_COLUMNS, &mut problems) else {
        return problems;
    };
    for (i, row) in lines {
        let n = |k: &str| -> Option<f64> { row[k].parse().ok() };
        let mut bad = |what: String| problems.push(format!("row {i}: {what}"));
        for k in &FLUSH_COLUMNS[2..12] {
            if n(k).is_none() {
                bad(format!("{k} is not a number: {:?}", row[k]));
            }
        }
        if !["unmap", "protect"].contains(&row["op"]) {
            bad(format!("op {:?}", row["op"]));
        }
        if n("flushes_per_op").unwrap_or(0.0) < 1.0 {
            bad(format!("flushes_per_op {} < 1: a change that flushed nothing", row["flushes_per_op"]));
        }
        if n("ipis_per_op").unwrap_or(f64::MAX) > n("ipis_all_cpus_per_op").unwrap_or(0.0) {
            bad(format!("ipis_per_op {} > ipis_all_cpus_per_op {}", row["ipis_per_op"], row["ipis_all_cpus_per_op"]));
        }
    }
    if rows == 0 {
        problems.push("no rows".into());
    }
    problems
}

/// The columns of `vm_micro.csv`.
pub const MICRO_COLUMNS: [&str; 6] = ["kernel", "name", "ops_per_s", "min", "max", "runs"];

/// A CSV row as column -> value.
pub type Row = BTreeMap<String, String>;

/// Everything measured so far.
#[derive(Default)]
struct Results {
    pt: Vec<Row>,
    /// will_it_scale.csv rows, one per measured window.
    scale: Vec<Row>,
    /// mshare_flush.csv rows, one per case.
    flush: Vec<Row>,
    /// (kernel, name) -> ops/s of each run.
    micro: BTreeMap<(String, String), Vec<f64>>,
    failures: Vec<String>,
    /// The Linux package booted, e.g. `linux-image-6.1.0-48-cloud-amd64 6.1.172-1`.
    linux_package: Option<String>,
    /// kernel -> (release, command line).
    kernels: BTreeMap<String, (String, String)>,
    /// The host's CPU model and QEMU's version line, read once per run.
    host_cpu: String,
    qemu: String,
}

/// What a worker hands back for one boot.
struct Boot {
    index: usize,
    run: qemu::QemuRun,
    /// Where its console log went.
    log: PathBuf,
    cmdline: String,
    timeout: Duration,
}

/// Boots job `index` (each worker has its own initramfs file).
#[allow(clippy::too_many_arguments)]
fn boot(
    plan: &Plan,
    o: &Options,
    programs: &[(String, PathBuf)],
    kernels: &(PathBuf, Option<crate::linux::LinuxKernel>),
    job: &Job,
    index: usize,
    worker: usize,
    logs: &Path,
) -> Result<Boot, String> {
    let initrd = target_dir().join("xtask").join(format!("bench-{worker}.cpio"));
    write_bench_initramfs(&initrd, programs, &job.command)?;
    let (kernel_path, cmdline) = match job.kernel {
        KernelKind::Ours => (kernels.0.clone(), "log=warn init=/bench_init".to_string()),
        KernelKind::Linux => {
            let l = kernels.1.as_ref().expect("Linux was fetched for this plan");
            (l.vmlinuz.clone(), crate::linux::cmdline(&plan.machine, "/bench_init"))
        }
    };
    let mut cfg = QemuConfig::new(&kernel_path);
    cfg.initrd = Some(initrd);
    cfg.cmdline = [cmdline.as_str(), &o.append.join(" ")].join(" ").trim().to_string();
    cfg.machine = plan.machine.clone();
    cfg.mem = plan.mem.clone();
    cfg.smp = job.smp;
    cfg.timeout = o.timeout.map(Duration::from_secs).unwrap_or(job.timeout);
    cfg.echo = false;
    cfg.echo_filter = Some(is_error_line);
    let run = qemu::run(&cfg)?;
    let log = logs.join(format!("{:03}-{}.log", index + 1, job.kernel.name()));
    let _ = std::fs::write(&log, format!("# {}\n# {:?}\n{}", job.command, qemu::command(&cfg), run.output));
    Ok(Boot { index, run, log, cmdline: cfg.cmdline, timeout: cfg.timeout })
}

/// Runs the benchmarks of `plan` (`jobs` boots at a time), writing the results to `out`.
pub fn run_plan(plan: &Plan, o: &Options, out: &Path) -> Result<BenchOutcome, String> {
    let started = Instant::now();
    crate::deps::ensure_qemu()?;
    let programs = build_programs()?;
    let ours = build_kernel(true)?;
    let linux = if plan.kernels.contains(&KernelKind::Linux) { Some(crate::linux::ensure_linux()?) } else { None };
    let jobs = jobs(plan);
    let total_weight: f64 = jobs.iter().map(|j| j.weight).sum();
    let logs = out.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mut res = Results {
        linux_package: linux.as_ref().map(|l| format!("{} {}", l.package, l.version)),
        host_cpu: host_cpu(),
        qemu: qemu_version(),
        ..Default::default()
    };
    let kernels = (ours, linux);
    let workers = plan.jobs.clamp(1, jobs.len().max(1));
    let next = Dispatcher::new(plan.cpu_budget);
    let smp_of = |i: usize| jobs.get(i).map(|j| j.smp);
    let (tx, rx) = std::sync::mpsc::channel::<Result<Boot, String>>();
    let mut runs_seen: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut done_weight = 0.0;
    let mut fatal = None;
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (tx, next, jobs, kernels, programs, logs, smp_of) =
                (tx.clone(), &next, &jobs, &kernels, &programs, &logs, &smp_of);
            scope.spawn(move || loop {
                let Some(i) = next.take(smp_of) else { break };
                let job = &jobs[i];
                eprintln!(
                    "xtask bench [{}/{}] {} on {}: started at {}",
                    i + 1,
                    jobs.len(),
                    job.what,
                    job.kernel.name(),
                    fmt_duration(started.elapsed())
                );
                let r = boot(plan, o, programs, kernels, job, i, worker, logs);
                next.done(job.smp);
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    break;
                }
            });
        }
        drop(tx);
        for r in rx {
            let b = match r {
                Ok(b) => b,
                Err(e) => {
                    // A runner error (QEMU cannot start, a file cannot be written): stop.
                    next.stop();
                    fatal = Some(e);
                    continue;
                }
            };
            let job = &jobs[b.index];
            done_weight += job.weight;
            let elapsed = started.elapsed();
            let left = fmt_duration(elapsed.mul_f64((total_weight - done_weight) / done_weight));
            eprintln!(
                "xtask bench [{}/{}] {} on {}: boot took {}; {} elapsed, about {left} left",
                b.index + 1,
                jobs.len(),
                job.what,
                job.kernel.name(),
                fmt_duration(b.run.elapsed),
                fmt_duration(elapsed)
            );
            record(&mut res, plan, job, &b, &mut runs_seen);
            if let Err(e) = write_outputs(&res, plan, out) {
                fatal = Some(e);
            }
        }
    });
    let report = write_report(&res, out);
    if let Some(e) = fatal {
        return Err(e);
    }
    let summary = report?;
    eprintln!("xtask bench: {} boots in {}; results in {}", jobs.len(), fmt_duration(started.elapsed()), out.display());
    print!("{summary}");
    Ok(BenchOutcome { failures: res.failures })
}

/// Hands the boots to the workers in order, each with its guest CPUs: the next boot
/// starts when its CPUs and those of the boots running fit the budget (or nothing runs: a
/// boot larger than the budget runs alone). Boots start in the plan's order, so a large
/// boot is never overtaken by the small ones after it.
struct Dispatcher {
    budget: u32,
    /// The index of the next boot, and the CPUs of the boots running.
    state: std::sync::Mutex<(usize, u32)>,
    changed: std::sync::Condvar,
}

impl Dispatcher {
    fn new(budget: u32) -> Dispatcher {
        Dispatcher { budget, state: std::sync::Mutex::new((0, 0)), changed: std::sync::Condvar::new() }
    }

    /// The next boot's index once its CPUs (`smp_of(index)`) fit; None when no boot is left.
    fn take(&self, smp_of: &dyn Fn(usize) -> Option<u32>) -> Option<usize> {
        let mut st = self.state.lock().unwrap();
        loop {
            let (next, used) = *st;
            let n = smp_of(next)?;
            if used == 0 || used + n <= self.budget {
                *st = (next + 1, used + n);
                return Some(next);
            }
            st = self.changed.wait(st).unwrap();
        }
    }

    /// A boot of `n` CPUs has ended.
    fn done(&self, n: u32) {
        self.state.lock().unwrap().1 -= n;
        self.changed.notify_all();
    }

    /// No boot starts any more.
    fn stop(&self) {
        self.state.lock().unwrap().0 = usize::MAX;
        self.changed.notify_all();
    }
}

/// Takes one boot's records into the results, and its failure if it failed.
fn record(res: &mut Results, plan: &Plan, job: &Job, b: &Boot, runs_seen: &mut BTreeMap<(String, String), u32>) {
    let run = &b.run;
    let records = parse_records(&run.output);
    let release =
        records.iter().find(|r| r.suite == "init").and_then(|r| r.fields.get("kernel").cloned()).unwrap_or_default();
    res.kernels.entry(job.kernel.name().to_string()).or_insert((release.clone(), b.cmdline.clone()));
    let measured = records.iter().filter(|r| r.suite == job.suite).count();
    let exits: Vec<&Record> = records.iter().filter(|r| r.suite == "exit").collect();
    let program_ok = !exits.is_empty() && exits.iter().all(|r| r.fields.get("status").map(String::as_str) == Some("0"));
    let leak_ok = job.kernel != KernelKind::Ours || crate::leak::verdict(&run.output).is_ok();
    let verdict = match run.exit {
        QemuExit::Success if !leak_ok => Err(crate::leak::verdict(&run.output).unwrap_err()),
        QemuExit::Success if program_ok && measured >= job.expected.max(1) => Ok(()),
        QemuExit::Success | QemuExit::Failed if !program_ok => Err("the benchmark program failed".to_string()),
        QemuExit::Success if measured > 0 => Err(format!("{measured} result lines of {}", job.expected)),
        QemuExit::Success => Err("no result line".to_string()),
        QemuExit::Failed => Err("the kernel reported a failure (panic or leak)".to_string()),
        QemuExit::Timeout => Err(format!("QEMU timed out after {} s", b.timeout.as_secs())),
        QemuExit::Other(s) => Err(format!("QEMU ended with status {s}")),
    };
    for r in records.iter().filter(|r| r.suite == "pt_sharing") {
        let n = runs_seen.entry((job.kernel.name().to_string(), job.what.clone())).or_insert(0);
        *n += 1;
        let mut row: Row = r.fields.clone();
        row.insert("kernel_release".into(), release.clone());
        row.insert("kernel".into(), job.kernel.name().into());
        row.insert("run".into(), n.to_string());
        row.insert("machine".into(), plan.machine.clone());
        row.insert("mem".into(), plan.mem.clone());
        row.insert("smp".into(), plan.smp.to_string());
        print_pt_row(&row);
        res.pt.push(row);
    }
    for r in records.iter().filter(|r| r.suite == "will_it_scale") {
        let mut row = scale_row(&r.fields, job.kernel, job.smp, plan);
        let key = ["test", "mode", "tasks"].map(|k| row.get(k).cloned().unwrap_or_default()).join(" ");
        let n = runs_seen.entry((job.kernel.name().to_string(), key)).or_insert(0);
        *n += 1;
        row.insert("run".into(), n.to_string());
        row.insert("kernel_release".into(), release.clone());
        print_scale_row(&row);
        res.scale.push(row);
    }
    for r in records.iter().filter(|r| r.suite == "mshare_flush") {
        let mut row: Row = r
            .fields
            .iter()
            .filter(|(k, _)| FLUSH_COLUMNS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        row.insert("kernel".into(), job.kernel.name().into());
        row.insert("kernel_release".into(), release.clone());
        row.insert("smp".into(), job.smp.to_string());
        row.insert("machine".into(), plan.machine.clone());
        row.insert("mem".into(), plan.mem.clone());
        eprintln!(
            "    {} mshare_flush {} sharers={} busy={} smp={}: {} cycles per change and back, {} IPIs (all CPUs: {})",
            job.kernel.name(),
            row.get("op").map_or("-", |v| v),
            row.get("sharers").map_or("-", |v| v),
            row.get("busy").map_or("-", |v| v),
            job.smp,
            row.get("cycles_per_op").map_or("-", |v| v),
            row.get("ipis_per_op").map_or("-", |v| v),
            row.get("ipis_all_cpus_per_op").map_or("-", |v| v),
        );
        res.flush.push(row);
    }
    for r in records.iter().filter(|r| r.suite == "vm_micro") {
        let (Some(name), Some(ops)) = (r.fields.get("name"), r.fields.get("ops_per_s").and_then(|v| v.parse().ok()))
        else {
            continue;
        };
        res.micro.entry((job.kernel.name().to_string(), name.clone())).or_default().push(ops);
    }
    if job.what == "vm_micro" && measured > 0 {
        print_micro(res, job.kernel.name());
    }
    if let Err(why) = verdict {
        let msg = format!("{} on {}: {why} (console log {})", job.what, job.kernel.name(), b.log.display());
        eprintln!("xtask bench: FAILED {msg}");
        for l in run.output.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev() {
            eprintln!("    | {l}");
        }
        res.failures.push(msg);
    }
}

pub struct BenchOutcome {
    pub failures: Vec<String>,
}

/// Console lines worth showing while a benchmark boot runs quietly.
fn is_error_line(l: &str) -> bool {
    ["pt_sharing:", "vm_micro:", "mshare_flush:", "bench_init:", "panicked", "PANIC", "Kernel panic", "LEAK"]
        .iter()
        .any(|p| l.contains(p))
        && !l.starts_with("bench_init: kernel command line")
}

/// The benchmark programs, built for musl: name -> path.
fn build_programs() -> Result<Vec<(String, PathBuf)>, String> {
    crate::deps::ensure_rust_targets()?;
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(crate::workspace_root())
        .args(["build", "--quiet", "--release", "--package", "benches", "--target", "x86_64-unknown-linux-musl"])
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !st.success() {
        return Err("benches build failed".into());
    }
    let dir = target_dir().join("x86_64-unknown-linux-musl").join("release");
    let mut programs: Vec<(String, PathBuf)> =
        ["bench_init", "pt_sharing", "vm_micro", "will_it_scale", "mshare_flush"]
            .iter()
            .map(|n| (n.to_string(), dir.join(n)))
            .collect();
    // vm_micro's process starts: a static `true` (benches/c) and Debian's, with the glibc
    // loader and libc it links at the paths it looks for them.
    let c = crate::workspace_root().join("benches").join("c");
    for (name, path) in crate::user::build_c_programs(&c, "benches_c", &["-static"])? {
        programs.push((format!("bench/{name}_static"), path));
    }
    let root = crate::debian::ensure_root()?;
    for (guest, host) in [
        ("usr/bin/true", "usr/bin/true"),
        ("lib64/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        ("lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6"),
    ] {
        programs.push((guest.to_string(), root.join(host)));
    }
    for (_, p) in &programs {
        if !p.is_file() {
            return Err(format!("{} was not built", p.display()));
        }
    }
    Ok(programs)
}

fn write_bench_initramfs(path: &Path, programs: &[(String, PathBuf)], command: &str) -> Result<(), String> {
    let mut files = Vec::new();
    for (name, p) in programs {
        files.push((name.clone(), 0o755, std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?));
    }
    files.push(("bench/plan".into(), 0o644, format!("{command}\n").into_bytes()));
    for dir in ["proc", "dev", "tmp"] {
        files.push((dir.into(), cpio::S_IFDIR | 0o755, Vec::new()));
    }
    write_initramfs(path, &files)
}

fn print_pt_row(r: &Row) {
    let g = |k: &str| r.get(k).map(String::as_str).unwrap_or("-");
    let bytes = |k: &str| g(k).parse::<f64>().map(fmt_bytes).unwrap_or_else(|_| "-".into());
    eprintln!(
        "    {} {} {} {} {} N={}: page tables {} per process, {} total; RSS {} per process; faults {} first, {} later; \
         cycles {} first, {} later ({} to touch again, {} with the TLB emptied)",
        g("kernel"),
        g("backing"),
        g("sharing"),
        g("access"),
        bytes("region_bytes"),
        g("procs"),
        bytes("pt_bytes_per_proc"),
        bytes("pt_bytes_total"),
        bytes("rss_bytes_per_proc"),
        g("faults_first_proc"),
        g("faults_per_later_proc"),
        g("cycles_first_proc"),
        g("cycles_per_later_proc"),
        g("cycles_retouch_per_later_proc"),
        g("cycles_retouch_cold_per_later_proc"),
    );
}

fn print_scale_row(r: &Row) {
    let g = |k: &str| r.get(k).map(String::as_str).unwrap_or("-");
    let rate = |k: &str| g(k).parse::<f64>().map(fmt_count).unwrap_or_else(|_| "-".into());
    eprintln!(
        "    {} {} {} T={} window {}: {} ops/s ({} to {} per task); faults/op {}, IPIs/op {}, TLB flushes {}",
        g("kernel"),
        g("test"),
        g("mode"),
        g("tasks"),
        g("run"),
        rate("ops_per_s"),
        rate("per_task_min"),
        rate("per_task_max"),
        g("faults_per_op"),
        g("ipis_per_op"),
        g("ipi_tlb"),
    );
}

fn print_micro(res: &Results, kernel: &str) {
    for ((k, name), v) in &res.micro {
        if k == kernel {
            eprintln!("    {kernel} {name}: {:.0} ops/s (median of {})", median(v), v.len());
        }
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn json_value(s: &str) -> String {
    if !s.is_empty() && s.parse::<f64>().is_ok_and(f64::is_finite) && !s.starts_with('+') {
        s.to_string()
    } else if s.is_empty() || s == "-" {
        "null".to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// CSV text (header, then rows) and the same rows as a JSON array of objects.
pub fn table_text(columns: &[&str], rows: &[Row]) -> (String, String) {
    let mut csv = columns.join(",");
    csv.push('\n');
    let mut json = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let cell = |c: &&str| r.get(*c).cloned().unwrap_or_default();
        csv.push_str(&columns.iter().map(|c| csv_field(&cell(c))).collect::<Vec<_>>().join(","));
        csv.push('\n');
        let fields: Vec<String> = columns.iter().map(|c| format!("\"{c}\": {}", json_value(&cell(c)))).collect();
        let _ = writeln!(json, "  {{{}}}{}", fields.join(", "), if i + 1 < rows.len() { "," } else { "" });
    }
    json.push_str("]\n");
    (csv, json)
}

fn micro_rows(res: &Results) -> Vec<Row> {
    res.micro
        .iter()
        .map(|((kernel, name), v)| {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut r = Row::new();
            r.insert("kernel".into(), kernel.clone());
            r.insert("name".into(), name.clone());
            r.insert("ops_per_s".into(), format!("{:.1}", median(v)));
            r.insert("min".into(), format!("{min:.1}"));
            r.insert("max".into(), format!("{max:.1}"));
            r.insert("runs".into(), v.len().to_string());
            r
        })
        .collect()
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes the CSVs, JSONs and run.json (again after every boot, so that a run cut short
/// keeps what it measured).
fn write_outputs(res: &Results, plan: &Plan, out: &Path) -> Result<(), String> {
    let (csv, json) = table_text(&PT_COLUMNS, &res.pt);
    write_file(&out.join("pt_sharing.csv"), &csv)?;
    write_file(&out.join("pt_sharing.json"), &json)?;
    if plan.micro {
        let (csv, json) = table_text(&MICRO_COLUMNS, &micro_rows(res));
        write_file(&out.join("vm_micro.csv"), &csv)?;
        write_file(&out.join("vm_micro.json"), &json)?;
    }
    if !plan.scale.is_empty() {
        let (csv, json) = table_text(&SCALE_COLUMNS, &res.scale);
        write_file(&out.join("will_it_scale.csv"), &csv)?;
        write_file(&out.join("will_it_scale.json"), &json)?;
    }
    if !res.flush.is_empty() {
        let (csv, json) = table_text(&FLUSH_COLUMNS, &res.flush);
        write_file(&out.join("mshare_flush.csv"), &csv)?;
        write_file(&out.join("mshare_flush.json"), &json)?;
    }
    let mut meta = String::new();
    let _ = writeln!(meta, "{{");
    let _ = writeln!(meta, "  \"machine\": {},", json_value(&plan.machine));
    let _ = writeln!(meta, "  \"mem\": {},", json_value(&plan.mem));
    let _ = writeln!(meta, "  \"smp\": {},", plan.smp);
    let scale_smp: Vec<String> =
        SCALE_TASKS.iter().filter(|t| plan.scale.iter().any(|c| c.tasks == **t)).map(|t| t.to_string()).collect();
    let _ = writeln!(meta, "  \"scale_smp\": [{}],", scale_smp.join(", "));
    let _ = writeln!(meta, "  \"host_cores\": {},", plan.host_cores);
    let _ = writeln!(meta, "  \"host_cpu\": {},", json_value(&res.host_cpu));
    let _ = writeln!(meta, "  \"qemu\": {},", json_value(&res.qemu));
    let kernels: Vec<String> = res
        .kernels
        .iter()
        .map(|(k, (rel, cmd))| {
            format!("\"{k}\": {{\"release\": {}, \"cmdline\": {}}}", json_value(rel), json_value(cmd))
        })
        .collect();
    let _ = writeln!(meta, "  \"kernels\": {{{}}},", kernels.join(", "));
    let _ = writeln!(meta, "  \"linux_package\": {},", json_value(res.linux_package.as_deref().unwrap_or("")));
    let failures: Vec<String> = res.failures.iter().map(|f| json_value(f)).collect();
    let _ = writeln!(meta, "  \"failures\": [{}]", failures.join(", "));
    let _ = writeln!(meta, "}}");
    write_file(&out.join("run.json"), &meta)
}

/// The mshare_flush table of summary.md: per change, busy-ness, CPUs and sharers, the
/// cycles of a change and its undoing, and the IPIs sent beside what flushing every other
/// CPU would have sent.
fn flush_summary(rows: &[Row]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## mshare_flush (our kernel: a change through the region and its undoing)\n\n\
         | change | sharers busy | CPUs | sharers | cycles | flushes | IPIs | IPIs if all CPUs |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let g = |r: &Row, k: &str| r.get(k).cloned().unwrap_or_else(|| "-".into());
    let mut sorted: Vec<&Row> = rows.iter().collect();
    let key = |r: &Row| {
        let n = |k: &str| r.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (g(r, "op"), n("busy"), n("smp"), n("sharers"))
    };
    sorted.sort_by_key(|r| key(r));
    for r in sorted {
        let cycles = r.get("cycles_per_op").and_then(|v| v.parse::<f64>().ok()).map_or("-".into(), fmt_count);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {cycles} | {} | {} | {} |",
            g(r, "op"),
            if g(r, "busy") == "1" { "yes" } else { "no" },
            g(r, "smp"),
            g(r, "sharers"),
            g(r, "flushes_per_op"),
            g(r, "ipis_per_op"),
            g(r, "ipis_all_cpus_per_op"),
        );
    }
    s.push('\n');
    s
}

/// Writes `summary.md` and the plots (once, at the end of a run); returns the summary.
fn write_report(res: &Results, out: &Path) -> Result<String, String> {
    let micro = micro_rows(res);
    let mut summary = summary(&res.pt, &micro, &res.failures);
    summary.insert_str(summary.find("## Failed boots").unwrap_or(summary.len()), &scale_summary(&res.scale));
    summary.insert_str(summary.find("## Failed boots").unwrap_or(summary.len()), &flush_summary(&res.flush));
    write_file(&out.join("summary.md"), &summary)?;
    plots(out, &res.pt, &micro)?;
    scale_plots(out, &res.scale)?;
    Ok(summary)
}

/// A will_it_scale case: kernel, test, mode, tasks.
pub type ScaleKey = (String, String, String, u64);

/// Medians of a numeric column of will_it_scale.csv per case (rows where it is `n/a`
/// left out).
pub fn scale_medians(rows: &[Row], column: &str) -> BTreeMap<ScaleKey, f64> {
    let mut groups: BTreeMap<ScaleKey, Vec<f64>> = BTreeMap::new();
    for r in rows {
        let key = (
            r.get("kernel").cloned().unwrap_or_default(),
            r.get("test").cloned().unwrap_or_default(),
            r.get("mode").cloned().unwrap_or_default(),
            num(r, "tasks").unwrap_or(0.0) as u64,
        );
        if let Some(v) = num(r, column) {
            groups.entry(key).or_default().push(v);
        }
    }
    groups.into_iter().map(|(k, v)| (k, median(&v))).collect()
}

/// The host's cores as the rows record them.
fn scale_host_cores(rows: &[Row]) -> Option<u64> {
    rows.iter().filter_map(|r| num(r, "host_cores")).map(|c| c as u64).max()
}

/// The will_it_scale table of summary.md: per test, mode and T, the median ops/s of each
/// kernel and their ratio, the scaling efficiency ops(T) / (T x ops(1)) of each, and IPIs
/// and remote TLB flushes per operation.
pub fn scale_summary(rows: &[Row]) -> String {
    let mut s = String::new();
    let ops = scale_medians(rows, "ops_per_s");
    if ops.is_empty() {
        return s;
    }
    let ipis = scale_medians(rows, "ipis_per_op");
    let tlb = scale_medians(rows, "ipi_tlb");
    let count = scale_medians(rows, "ops");
    let cores = scale_host_cores(rows);
    let _ = writeln!(
        s,
        "## will_it_scale (ops/s, median of the windows; `eff` = ops(T) / (T x ops(1)); IPIs = RES + CAL rows of \
         /proc/interrupts; n/a: the kernel does not count them)\n"
    );
    if let Some(c) = cores {
        let _ = writeln!(
            s,
            "Each case boots with T CPUs. The host has {c} cores: rows marked `*` (T > {c}) oversubscribe it, \
             so their scaling is the emulator's, not the kernel's.\n"
        );
    }
    let _ = writeln!(
        s,
        "| test | mode | T | ours | linux | ours / linux | eff ours | eff linux | IPIs / op ours | IPIs / op linux | \
         TLB flushes / op ours | TLB flushes / op linux |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut cases: Vec<(String, String, u64)> = ops.keys().map(|k| (k.1.clone(), k.2.clone(), k.3)).collect();
    let order = |t: &str| SCALE_TESTS.iter().position(|x| *x == t).unwrap_or(usize::MAX);
    cases.sort_by_key(|(t, m, n)| (order(t), t.clone(), m.clone(), *n));
    cases.dedup();
    for (test, mode, t) in cases {
        let key = |k: &str, tasks: u64| (k.to_string(), test.clone(), mode.clone(), tasks);
        let get = |m: &BTreeMap<ScaleKey, f64>, k: &str| m.get(&key(k, t)).copied();
        let rate = |k: &str| get(&ops, k).map_or("-".into(), fmt_count);
        let ratio = match (get(&ops, "ours"), get(&ops, "linux")) {
            (Some(o), Some(l)) if l > 0.0 => format!("{:.2}", o / l),
            _ => "-".into(),
        };
        let eff = |k: &str| match (get(&ops, k), ops.get(&key(k, 1)).copied()) {
            (Some(v), Some(one)) if one > 0.0 => format!("{:.2}", v / (t as f64 * one)),
            _ => "-".into(),
        };
        let per_op = |m: &BTreeMap<ScaleKey, f64>, k: &str| match get(&ops, k) {
            None => "-".into(),
            Some(_) => get(m, k).map_or("n/a".into(), |v| format!("{v:.4}")),
        };
        let tlb_per_op = |k: &str| match (get(&tlb, k), get(&count, k)) {
            (Some(f), Some(n)) if n > 0.0 => format!("{:.4}", f / n),
            _ if get(&ops, k).is_some() => "n/a".into(),
            _ => "-".into(),
        };
        let mark = if cores.is_some_and(|c| t > c) { "*" } else { "" };
        let _ = writeln!(
            s,
            "| {test} | {mode} | {t}{mark} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} |",
            rate("ours"),
            rate("linux"),
            eff("ours"),
            eff("linux"),
            per_op(&ipis, "ours"),
            per_op(&ipis, "linux"),
            tlb_per_op("ours"),
            tlb_per_op("linux"),
        );
    }
    let _ = writeln!(s);
    s
}

/// A scaling curve per test, `scale_TEST`: ops/s against T (the guest's CPUs), one line
/// per kernel and mode.
pub fn scale_plots(out: &Path, rows: &[Row]) -> Result<(), String> {
    let ops = scale_medians(rows, "ops_per_s");
    let cores = scale_host_cores(rows);
    let mut tests: Vec<&String> = ops.keys().map(|k| &k.1).collect();
    tests.sort();
    tests.dedup();
    for test in tests {
        let mut by_label: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for ((kernel, t, mode, tasks), v) in &ops {
            if t == test {
                by_label.entry(format!("{kernel} {mode}")).or_default().push((*tasks as f64, *v));
            }
        }
        let series: Vec<crate::plot::Series> =
            by_label.into_iter().map(|(label, points)| crate::plot::Series { label, points }).collect();
        let host = cores.map_or(String::new(), |c| format!("; host {c} cores, beyond: oversubscribed"));
        crate::plot::line_chart(
            &out.join(format!("scale_{test}")),
            &format!("will_it_scale {test}: ops/s against tasks (T CPUs{host})"),
            "tasks = guest CPUs (T)",
            "ops/s, all tasks",
            &series,
            true,
            false,
            fmt_count,
        )?;
    }
    Ok(())
}

/// The charts: page-table bytes and attach+touch cycles against N (one chart per region
/// size; series per kernel, sharing mode and backing), and vm_micro's ratios ours/Linux.
fn plots(out: &Path, pt: &[Row], micro: &[Row]) -> Result<(), String> {
    use crate::plot::{line_chart, ratio_bars, Series};
    let totals = case_medians(pt, "pt_bytes_total");
    let firsts = case_medians(pt, "cycles_first_proc");
    let laters = case_medians(pt, "cycles_per_later_proc");
    let mut sizes: Vec<u64> = totals.keys().map(|k| k.4).collect();
    sizes.sort();
    sizes.dedup();
    for size in sizes {
        let series_of = |access: &str, value: &dyn Fn(&CaseKey) -> Option<f64>| {
            let mut by_label: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for k in totals.keys().filter(|k| k.4 == size && k.3 == access) {
                if let Some(v) = value(k) {
                    by_label.entry(format!("{} {} {}", k.0, k.2, k.1)).or_default().push((k.5 as f64, v));
                }
            }
            by_label
                .into_iter()
                .map(|(label, mut points)| {
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Series { label, points }
                })
                .collect::<Vec<_>>()
        };
        let label = fmt_size(size);
        let shown = fmt_bytes(size as f64);
        let series = series_of("write", &|k| totals.get(k).copied());
        if !series.is_empty() {
            line_chart(
                &out.join(format!("pt_bytes_{label}")),
                &format!("Page tables of N processes mapping {shown} shared (written)"),
                "processes (N)",
                "PageTables delta (bytes)",
                &series,
                true,
                true,
                fmt_bytes,
            )?;
        }
        for access in ["read", "write"] {
            let mean = |k: &CaseKey| {
                let first = firsts.get(k).copied()?;
                let n = k.5 as f64;
                let later = laters.get(k).copied().unwrap_or(first);
                Some((first + (n - 1.0) * later) / n)
            };
            let series = series_of(access, &mean);
            if !series.is_empty() {
                line_chart(
                    &out.join(format!("cycles_{label}_{access}")),
                    &format!("Attach + {access} every page of {shown}, mean per process"),
                    "processes (N)",
                    "TSC cycles per process",
                    &series,
                    true,
                    true,
                    fmt_count,
                )?;
            }
        }
    }
    let ratios = micro_ratios(micro);
    if !ratios.is_empty() {
        ratio_bars(&out.join("vm_micro_ratio"), "vm_micro: ours / Linux (ops/s, median)", "ratio", &ratios, 1.0)?;
    }
    Ok(())
}

fn host_cpu() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1).map(|s| s.trim().to_string()))
        .unwrap_or_default()
}

fn qemu_version() -> String {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn num(r: &Row, k: &str) -> Option<f64> {
    r.get(k)?.parse().ok()
}

/// A case: kernel, backing, sharing, access, region bytes, processes.
pub type CaseKey = (String, String, String, String, u64, u64);

/// Medians of a numeric column over the rows of each case (kernel, backing, sharing,
/// access, region, procs).
pub fn case_medians(rows: &[Row], column: &str) -> BTreeMap<CaseKey, f64> {
    let mut groups: BTreeMap<_, Vec<f64>> = BTreeMap::new();
    for r in rows {
        let key = (
            r.get("kernel").cloned().unwrap_or_default(),
            r.get("backing").cloned().unwrap_or_default(),
            r.get("sharing").cloned().unwrap_or_default(),
            r.get("access").cloned().unwrap_or_default(),
            num(r, "region_bytes").unwrap_or(0.0) as u64,
            num(r, "procs").unwrap_or(0.0) as u64,
        );
        if let Some(v) = num(r, column) {
            groups.entry(key).or_default().push(v);
        }
    }
    groups.into_iter().map(|(k, v)| (k, median(&v))).collect()
}

/// The Markdown summary: the pt_sharing table (medians per case, ours beside Linux with
/// the ratio) and the vm_micro table.
fn summary(pt: &[Row], micro: &[Row], failures: &[String]) -> String {
    let mut s = headlines(pt, micro);
    let cols = [
        ("pt_bytes_per_proc", "page tables / proc", fmt_bytes as fn(f64) -> String),
        ("pt_bytes_total", "page tables total", fmt_bytes),
        ("rss_shmem_bytes_per_proc", "RssShmem / proc", fmt_bytes),
        ("faults_first_proc", "faults, first", fmt_count),
        ("faults_per_later_proc", "faults, later", fmt_count),
        ("cycles_first_proc", "cycles, first", fmt_count),
        ("cycles_per_later_proc", "cycles, later", fmt_count),
        ("cycles_retouch_per_later_proc", "cycles, later, touching again", fmt_count),
        ("cycles_retouch_cold_per_later_proc", "cycles, later, touching again, TLB emptied", fmt_count),
        ("fork_cycles", "fork cycles", fmt_count),
    ];
    let medians: Vec<_> = cols.iter().map(|(c, _, _)| case_medians(pt, c)).collect();
    let mut cases: Vec<_> =
        medians[0].keys().map(|(_, b, sh, a, size, n)| (b.clone(), sh.clone(), a.clone(), *size, *n)).collect();
    cases.sort_by(|x, y| {
        (x.0.clone(), x.1.clone(), x.2.clone(), x.3, x.4).cmp(&(y.0.clone(), y.1.clone(), y.2.clone(), y.3, y.4))
    });
    cases.dedup();
    if !cases.is_empty() {
        let _ = writeln!(s, "## pt_sharing (medians; `ours / linux` where both ran)\n");
        let _ = write!(s, "| backing | sharing | access | region | N |");
        for (_, title, _) in &cols {
            let _ = write!(s, " {title} |");
        }
        let _ = writeln!(s, "\n|{}", "---|".repeat(5 + cols.len()));
        for (b, sh, a, size, n) in &cases {
            let _ = write!(s, "| {b} | {sh} | {a} | {} | {n} |", fmt_bytes(*size as f64));
            for (i, (_, _, f)) in cols.iter().enumerate() {
                let get =
                    |k: &str| medians[i].get(&(k.to_string(), b.clone(), sh.clone(), a.clone(), *size, *n)).copied();
                let cell = match (get("ours"), get("linux")) {
                    (Some(o), Some(l)) if l > 0.0 => format!("{} / {} ({:.2}x)", f(o), f(l), o / l),
                    (Some(o), Some(l)) => format!("{} / {}", f(o), f(l)),
                    (Some(o), None) => f(o),
                    (None, Some(l)) => format!("- / {}", f(l)),
                    (None, None) => "-".into(),
                };
                let _ = write!(s, " {cell} |");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    if !micro.is_empty() {
        let _ = writeln!(s, "## vm_micro (ops/s, median [min, max] of the runs; ratio ours / linux)\n");
        let _ = writeln!(s, "| benchmark | ours | linux | ratio |\n|---|---|---|---|");
        let mut names: Vec<&String> = micro.iter().filter_map(|r| r.get("name")).collect();
        names.sort();
        names.dedup();
        for name in names {
            let find = |k: &str| {
                micro.iter().find(|r| r.get("kernel").map(String::as_str) == Some(k) && r.get("name") == Some(name))
            };
            let cell = |r: Option<&Row>| {
                r.map(|r| {
                    format!(
                        "{} [{}, {}]",
                        fmt_count(num(r, "ops_per_s").unwrap_or(0.0)),
                        fmt_count(num(r, "min").unwrap_or(0.0)),
                        fmt_count(num(r, "max").unwrap_or(0.0))
                    )
                })
                .unwrap_or_else(|| "-".into())
            };
            let (o, l) = (find("ours"), find("linux"));
            let ratio = match (o.and_then(|r| num(r, "ops_per_s")), l.and_then(|r| num(r, "ops_per_s"))) {
                (Some(o), Some(l)) if l > 0.0 => format!("{:.2}", o / l),
                _ => "-".into(),
            };
            let _ = writeln!(s, "| {name} | {} | {} | {ratio} |", cell(o), cell(l));
        }
        let _ = writeln!(s);
    }
    if !failures.is_empty() {
        let _ = writeln!(s, "## Failed boots\n");
        for f in failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    s
}

/// (name, ours / Linux) of each vm_micro benchmark both kernels ran.
fn micro_ratios(micro: &[Row]) -> Vec<(String, f64)> {
    let find = |kernel: &str, name: &String| {
        micro.iter().find(|r| r.get("kernel").map(String::as_str) == Some(kernel) && r.get("name") == Some(name))
    };
    micro
        .iter()
        .filter(|r| r.get("kernel").map(String::as_str) == Some("ours"))
        .filter_map(|r| {
            let name = r.get("name")?;
            let (o, l) = (num(r, "ops_per_s")?, num(find("linux", name)?, "ops_per_s")?);
            (l > 0.0).then(|| (name.clone(), o / l))
        })
        .collect()
}

/// The headline ratios ours / Linux: how far apart the per-process page-table bytes and
/// RssShmem are (they should be equal without sharing), the largest case's page tables,
/// later processes' attach+touch time, and the vm_micro ratios.
pub fn headlines(pt: &[Row], micro: &[Row]) -> String {
    let mut s = String::new();
    let ratios = |column: &str| -> Vec<(CaseKey, f64)> {
        let m = case_medians(pt, column);
        m.iter()
            .filter(|(k, _)| k.0 == "ours" && k.2 == "none")
            .filter_map(|(k, &o)| {
                let mut lk = k.clone();
                lk.0 = "linux".into();
                let l = *m.get(&lk)?;
                (l > 0.0).then(|| (k.clone(), o / l))
            })
            .collect()
    };
    let spread = |v: &[(CaseKey, f64)]| {
        let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, r)| (lo.min(*r), hi.max(*r)));
        format!("{lo:.3}x to {hi:.3}x over {} cases", v.len())
    };
    let pt_ratio = ratios("pt_bytes_per_proc");
    if pt_ratio.is_empty() {
        return s;
    }
    let _ = writeln!(s, "## Headlines (ours / Linux, medians, without sharing)\n");
    let _ = writeln!(s, "- page-table bytes per process: {}", spread(&pt_ratio));
    let rss = ratios("rss_shmem_bytes_per_proc");
    let off: Vec<String> = rss
        .iter()
        .filter(|(_, r)| (r - 1.0).abs() > 0.01)
        .map(|(k, r)| format!("{} {} {} N={} {r:.3}x", k.1, k.3, fmt_bytes(k.4 as f64), k.5))
        .collect();
    let _ = writeln!(
        s,
        "- RssShmem per process: {}; beyond 1%: {}",
        spread(&rss),
        if off.is_empty() { "none".into() } else { off.join(", ") }
    );
    let totals = case_medians(pt, "pt_bytes_total");
    if let Some((k, l)) = totals.iter().filter(|(k, _)| k.0 == "linux" && k.2 == "none").max_by_key(|(k, _)| k.4 * k.5)
    {
        let mut ok = k.clone();
        ok.0 = "ours".into();
        let o = totals.get(&ok).copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "- largest case ({} {} {} x {} processes): page tables {} on Linux, {} on ours",
            k.1,
            k.3,
            fmt_bytes(k.4 as f64),
            k.5,
            fmt_bytes(*l),
            fmt_bytes(o)
        );
    }
    let later = ratios("cycles_per_later_proc");
    if !later.is_empty() {
        let _ =
            writeln!(s, "- attach+touch cycles of each later process (below 1: ours takes fewer): {}", spread(&later));
        for (k, r) in later.iter().filter(|(k, _)| Some(k.5) == later.iter().map(|(k, _)| k.5).max()) {
            let _ = writeln!(s, "  - {} {} {} N={}: {r:.2}x", k.1, k.3, fmt_bytes(k.4 as f64), k.5);
        }
    }
    let micro_ratios = micro_ratios(micro);
    if !micro_ratios.is_empty() {
        let geo = (micro_ratios.iter().map(|(_, r)| r.ln()).sum::<f64>() / micro_ratios.len() as f64).exp();
        let below: Vec<String> =
            micro_ratios.iter().filter(|(_, r)| *r < 1.0).map(|(n, r)| format!("{n} {r:.2}x")).collect();
        let _ = writeln!(
            s,
            "- vm_micro ops/s: geometric mean {geo:.2}x; below Linux: {}",
            if below.is_empty() { "none".into() } else { below.join(", ") }
        );
    }
    let _ = writeln!(s);
    s
}

fn fmt_size(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{}G", bytes / GIB)
    } else if bytes.is_multiple_of(MIB) {
        format!("{}M", bytes / MIB)
    } else {
        format!("{bytes}")
    }
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The rows of a benchmark CSV whose header must be `columns`: how many lines follow the
/// header, and each row of the right width as (1-based row number, column -> cell). A
/// wrong header (then None) or a row of the wrong width is added to `problems`.
#[allow(clippy::type_complexity)]
fn csv_rows<'a>(
    text: &'a str,
    columns: &[&'static str],
    problems: &mut Vec<String>,
) -> Option<(usize, Vec<(usize, BTreeMap<&'static str, &'a str>)>)> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    if header != columns {
        problems.push(format!("header is {header:?}, expected {columns:?}"));
        return None;
    }
    let mut count = 0;
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        count += 1;
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != columns.len() {
            problems.push(format!("row {}: {} cells, expected {}", i + 1, cells.len(), columns.len()));
            continue;
        }
        rows.push((i + 1, columns.iter().copied().zip(cells).collect()));
    }
    Some((count, rows))
}

/// Checks a `pt_sharing.csv` (text): the header is [`PT_COLUMNS`], every row has every
/// column, numbers parse, and the figures are consistent with what the benchmark did:
/// each process needs at least the PTE pages that map the region, touched every page
/// (RssShmem), and took at least one fault per 16 pages (Linux's largest fault-around).
/// Returns the problems found.
pub fn check_pt_csv(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((rows, lines)) = csv_rows(text, &PT_COLUMNS, &mut problems) else {
        return problems;
    };
    for (i, row) in lines {
        let n = |k: &str| -> Option<u64> { row[k].parse().ok() };
        let mut bad = |what: String| problems.push(format!("row {i}: {what}"));
        for k in &PT_COLUMNS[4..20] {
            let later = k.ends_with("_per_later_proc");
            if n(k).is_none() && !(later && row[k] == "-" && row["procs"] == "1") {
                bad(format!("{k} is not a number: {:?}", row[k]));
            }
        }
        let (Some(region), Some(procs)) = (n("region_bytes"), n("procs")) else { continue };
        let pages = region / PAGE;
        let pte_bytes = pages.div_ceil(512) * PAGE;
        if !["ours", "linux"].contains(&row["kernel"]) {
            bad(format!("kernel {:?}", row["kernel"]));
        }
        if !PT_BACKINGS.contains(&row["backing"]) || !["read", "write"].contains(&row["access"]) {
            bad(format!("backing {:?} access {:?}", row["backing"], row["access"]));
        }
        if !PT_SHARING.contains(&row["sharing"]) || !sharing_applies(&row["backing"], &row["sharing"]) {
            bad(format!("sharing {:?} of backing {:?}", row["sharing"], row["backing"]));
        }
        if row["sharing"] != "none" {
            if row["kernel"] != "ours" {
                bad(format!("sharing {:?} on {:?}: only our kernel has it", row["sharing"], row["kernel"]));
            }
            // A later process grafts the tables, one fault per graft slot (512 GiB for
            // mshare, 1 GiB for SHM_SHARE_MMU, 2 MiB for transparent sharing), and pays at
            // most one table of its own (two with transparent sharing: the PD and PDPT
            // above its grafts, against the plain path's PTE tables, a 256th of them).
            let (own_tables, slots) = if row["sharing"] == "transparent" {
                (2, region.div_ceil(2 << 20) + 1)
            } else {
                (1, region.div_ceil(GIB) + 1)
            };
            if n("pt_bytes_per_proc").unwrap_or(u64::MAX) > own_tables * PAGE {
                bad(format!(
                    "pt_bytes_per_proc {} > {own_tables} page(s) with shared tables",
                    row["pt_bytes_per_proc"]
                ));
            }
            if procs > 1 && n("faults_per_later_proc").unwrap_or(u64::MAX) > 2 * slots {
                bad(format!(
                    "faults_per_later_proc {} > {} with shared tables",
                    row["faults_per_later_proc"],
                    2 * slots
                ));
            }
        }
        if row["sharing"] == "none" {
            if n("pt_bytes_per_proc").unwrap_or(0) < pte_bytes {
                bad(format!(
                    "pt_bytes_per_proc {} < {pte_bytes}, the PTE pages that map the region",
                    row["pt_bytes_per_proc"]
                ));
            }
            if n("pt_bytes_total").unwrap_or(0) < procs * pte_bytes {
                bad(format!("pt_bytes_total {} < {} processes x {pte_bytes}", row["pt_bytes_total"], procs));
            }
        }
        if n("rss_shmem_bytes_per_proc").unwrap_or(0) < region {
            bad(format!("rss_shmem_bytes_per_proc {} < region {region}", row["rss_shmem_bytes_per_proc"]));
        }
        if n("rss_bytes_per_proc").unwrap_or(0) < n("rss_shmem_bytes_per_proc").unwrap_or(0) {
            bad("rss_bytes_per_proc < rss_shmem_bytes_per_proc".into());
        }
        let min_faults = pages / 16;
        if n("faults_first_proc").unwrap_or(0) < min_faults {
            bad(format!("faults_first_proc {} < {min_faults} (pages / 16)", row["faults_first_proc"]));
        }
        if procs > 1 && row["sharing"] == "none" && n("faults_per_later_proc").unwrap_or(0) < min_faults {
            bad(format!("faults_per_later_proc {} < {min_faults} (pages / 16)", row["faults_per_later_proc"]));
        }
        if n("cycles_first_proc").unwrap_or(0) == 0 || n("tsc_hz").unwrap_or(0) == 0 {
            bad("cycles_first_proc or tsc_hz is zero".into());
        }
    }
    if rows == 0 {
        problems.push("no rows".into());
    }
    problems
}

/// The benchmarks of `vm_micro`, as it names them.
pub const MICRO_NAMES: [&str; 24] = [
    "anon_fault",
    "mmap_touch_munmap_4k",
    "fork_exit_wait",
    "fork_exit_wait_256m",
    "fork_exit_wait_16g",
    "shared_anon_fault",
    "file_read_fault",
    "mprotect_1m",
    "munmap_256m",
    "mremap_64m",
    "tmpfs_write_1m",
    "tmpfs_read_1m",
    "pipe_pingpong",
    "mmap_munmap_60k",
    "sysv_shm_16m",
    "memfd_create_mmap_close",
    "semop_pingpong",
    "unix_stream_pingpong",
    "epoll_wakeup",
    "exec_true_static",
    "exec_true_dynamic",
    "clock_gettime",
    "clock_gettime_syscall",
    "null_syscall",
];

/// Checks a `vm_micro.csv`: the header, every benchmark of [`MICRO_NAMES`] for each
/// kernel present, positive rates with min <= median <= max.
pub fn check_micro_csv(text: &str) -> Result<(), String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    if header != MICRO_COLUMNS {
        return Err(format!("header is {header:?}, expected {MICRO_COLUMNS:?}"));
    }
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let c: Vec<&str> = line.split(',').collect();
        if c.len() != MICRO_COLUMNS.len() {
            return Err(format!("row {line:?} has {} cells", c.len()));
        }
        let f = |i: usize| c[i].parse::<f64>().map_err(|_| format!("{:?} is not a number in {line:?}", c[i]));
        let (median, min, max, runs) = (f(2)?, f(3)?, f(4)?, f(5)?);
        if !(median > 0.0 && min <= median && median <= max && runs >= 1.0) {
            return Err(format!("inconsistent row {line:?}"));
        }
        seen.entry(c[0].to_string()).or_default().push(c[1].to_string());
    }
    if seen.is_empty() {
        return Err("no rows".into());
    }
    for (kernel, names) in seen {
        let missing: Vec<&str> = MICRO_NAMES.iter().copied().filter(|n| !names.iter().any(|m| m == n)).collect();
        if !missing.is_empty() {
            return Err(format!("{kernel}: no figures for {missing:?}"));
        }
    }
    Ok(())
}

/// Checks a `will_it_scale.csv`: the header is [`SCALE_COLUMNS`], every row has every
/// column, and the figures agree with what the program did: a known test and mode, as
/// many CPUs as tasks, operations done, the per-task rates around their mean, counters
/// that are numbers or `n/a` (never invented), `ipis` their sum, at least one fault per
/// two operations in the page-fault tests, and rows beyond the host's cores marked.
/// Returns the problems found.
pub fn check_scale_csv(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((rows, lines)) = csv_rows(text, &SCALE_COLUMNS, &mut problems) else {
        return problems;
    };
    for (i, row) in lines {
        let n = |k: &str| -> Option<f64> { row[k].parse().ok().filter(|v: &f64| v.is_finite()) };
        let mut bad = |what: String| problems.push(format!("row {i}: {what}"));
        let numeric = [
            "tasks",
            "run",
            "ops",
            "ns",
            "ops_per_s",
            "per_task_ops_per_s",
            "per_task_min",
            "per_task_max",
            "cpus",
            "smp",
            "host_cores",
            "oversubscribed",
        ];
        if let Some(k) = numeric.iter().find(|k| n(k).is_none()) {
            bad(format!("{k} is not a number: {:?}", row[k]));
            continue;
        }
        let counters = ["faults", "faults_per_op", "ipi_resched", "ipi_call", "ipi_tlb", "ipis", "ipis_per_op"];
        if let Some(k) = counters.iter().find(|k| row[*k] != "n/a" && n(k).is_none_or(|v| v < 0.0)) {
            bad(format!("{k} is neither a count nor n/a: {:?}", row[k]));
            continue;
        }
        if !["ours", "linux"].contains(&row["kernel"]) {
            bad(format!("kernel {:?}", row["kernel"]));
        }
        if !SCALE_TESTS.contains(&row["test"]) || !SCALE_MODES.contains(&row["mode"]) {
            bad(format!("test {:?} mode {:?}", row["test"], row["mode"]));
        }
        let v = |k: &str| n(k).unwrap_or(0.0);
        if v("smp") != v("tasks") {
            bad(format!("{} CPUs for {} tasks", row["smp"], row["tasks"]));
        }
        if (v("oversubscribed") == 1.0) != (v("smp") > v("host_cores")) {
            bad(format!(
                "oversubscribed {} with {} CPUs on {} cores",
                row["oversubscribed"], row["smp"], row["host_cores"]
            ));
        }
        if v("ops") <= 0.0 || v("ns") <= 0.0 || v("ops_per_s") <= 0.0 {
            bad("no operations measured".into());
        }
        let slack = 0.1 + 1e-9 * v("per_task_max");
        if !(v("per_task_min") <= v("per_task_ops_per_s") + slack
            && v("per_task_ops_per_s") <= v("per_task_max") + slack)
        {
            bad(format!(
                "per-task mean {} outside [{}, {}]",
                row["per_task_ops_per_s"], row["per_task_min"], row["per_task_max"]
            ));
        }
        if let (Some(r), Some(c)) = (n("ipi_resched"), n("ipi_call")) {
            if n("ipis") != Some(r + c) {
                bad(format!("ipis {} is not ipi_resched + ipi_call", row["ipis"]));
            }
        } else if row["ipis"] != "n/a" {
            bad(format!("ipis {} without both rows", row["ipis"]));
        }
        if row["test"].starts_with("page_fault") && n("faults").is_some_and(|f| f < v("ops") / 2.0) {
            bad(format!("{} faults for {} page-fault operations", row["faults"], row["ops"]));
        }
    }
    if rows == 0 {
        problems.push("no rows".into());
    }
    problems
}

/// Reads a CSV written by [`table_text`] back into rows.
pub fn read_csv(path: &Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    Ok(lines.map(|l| header.iter().map(|h| h.to_string()).zip(l.split(',').map(str::to_string)).collect()).collect())
}

/// `cargo xtask bench --replot`: the summary and plots again from the CSVs in `out`.
fn replot(out: &Path) -> Result<ExitCode, String> {
    let pt = read_csv(&out.join("pt_sharing.csv"))?;
    let micro = read_csv(&out.join("vm_micro.csv")).unwrap_or_default();
    let scale = read_csv(&out.join("will_it_scale.csv")).unwrap_or_default();
    let mut summary = summary(&pt, &micro, &[]);
    summary.push_str(&scale_summary(&scale));
    write_file(&out.join("summary.md"), &summary)?;
    plots(out, &pt, &micro)?;
    scale_plots(out, &scale)?;
    print!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask bench`.
pub fn cmd_bench(o: &Options) -> Result<ExitCode, String> {
    let plan = plan(o, false);
    let out = o.out.clone().unwrap_or_else(|| target_dir().join("bench"));
    if o.replot {
        return replot(&out);
    }
    let outcome = run_plan(&plan, o, &out)?;
    finish(outcome)
}

/// `cargo xtask run`: the default benchmark on our kernel.
pub fn cmd_run(o: &Options) -> Result<ExitCode, String> {
    let plan = plan(o, true);
    let out = o.out.clone().unwrap_or_else(|| target_dir().join("bench").join("run"));
    let outcome = run_plan(&plan, o, &out)?;
    finish(outcome)
}

fn finish(outcome: BenchOutcome) -> Result<ExitCode, String> {
    if outcome.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &outcome.failures {
            eprintln!("xtask bench: failed: {f}");
        }
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Options {
        crate::parse_options(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn records_are_parsed_and_other_lines_ignored() {
        let console =
            "[ 0.1] boot\n@bench pt_sharing kernel=x procs=4 region_bytes=4096\r\nnoise\n@bench exit status=0\n";
        let r = parse_records(console);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].suite, "pt_sharing");
        assert_eq!(r[0].fields["procs"], "4");
        assert_eq!(r[1].fields["status"], "0");
    }

    #[test]
    fn quick_plan_is_small_and_full_plan_caps_the_largest_cases() {
        let quick = plan(&opts(&["--quick"]), false);
        assert!(quick.pt.iter().all(|c| c.size <= 16 * MIB && c.procs <= 4 && c.runs == 1));
        assert!(quick.micro);
        let full = plan(&opts(&["--linux"]), false);
        assert_eq!(full.kernels, [KernelKind::Ours, KernelKind::Linux]);
        assert!(!full.pt.iter().any(|c| c.size == GIB && c.procs == 1024), "capped");
        let big = full.pt.iter().find(|c| c.size == GIB && c.procs == 256).unwrap();
        assert_eq!(big.runs, 1);
        assert!(full.pt.iter().any(|c| c.size == 256 * MIB && c.procs == 1024));
        assert!(full.pt.iter().any(|c| c.size == 256 * MIB && c.procs == 16 && c.runs == 3));
        assert_eq!(full.mem, "3G");
        let uncapped = plan(&opts(&["--uncapped"]), false);
        assert!(uncapped.pt.iter().any(|c| c.size == GIB && c.procs == 1024));
        assert_eq!(uncapped.mem, "6G");
    }

    #[test]
    fn procs_replaces_the_process_counts_of_the_set() {
        let p = plan(&opts(&["--only", "256M", "--procs", "1,64"]), false);
        // Every backing plain and with transparent sharing, the four others through an
        // mshare region both ways, SysV through SHM_SHARE_MMU; both accesses; two process
        // counts.
        assert_eq!(p.pt.len(), (2 * PT_BACKINGS.len() + 2 * 4 + 1) * 2 * 2);
        assert!(p.pt.iter().all(|c| c.size == 256 * MIB && [1, 64].contains(&c.procs)));
        assert!(crate::parse_options(&["--procs".into(), "4,0".into()]).is_err());
    }

    #[test]
    fn flush_rows_are_checked_for_their_figures() {
        let header = FLUSH_COLUMNS.join(",");
        let good = "ours,unmap,4,1,2,2,20,90000,1.00,1.00,1.00,1000000,Linux-6.6.0-mshare,microvm,1G";
        assert!(check_flush_csv(&format!("{header}\n{good}\n")).is_empty());
        let more_ipis = good.replace(",1.00,1.00,1.00,", ",1.00,3.00,1.00,");
        assert_eq!(check_flush_csv(&format!("{header}\n{more_ipis}\n")).len(), 1);
        let no_flush = good.replace(",1.00,1.00,1.00,", ",0.00,0.00,1.00,");
        assert_eq!(check_flush_csv(&format!("{header}\n{no_flush}\n")).len(), 1);
        assert_eq!(check_flush_csv(&format!("{header}\n")), ["no rows"]);
        let quick = plan(&opts(&["--quick"]), false);
        assert_eq!(quick.flush.len(), 1);
        let flush_jobs: Vec<Job> = jobs(&quick).into_iter().filter(|j| j.suite == "mshare_flush").collect();
        assert_eq!(flush_jobs.len(), 1, "our kernel only, one boot");
        assert_eq!(flush_jobs[0].expected, 2 * 2 * QUICK_FLUSH_SHARERS.len());
        assert!(plan(&opts(&[]), true).flush.is_empty(), "`run` is pt_sharing only");
    }

    #[test]
    fn only_keeps_matching_cases() {
        let p = plan(&opts(&["--quick", "--only", "tmpfs"]), false);
        assert!(!p.pt.is_empty() && p.pt.iter().all(|c| c.backing == "tmpfs"));
        assert!(!p.micro);
        let p = plan(&opts(&["--quick", "--only", "vm_micro"]), false);
        assert!(p.pt.is_empty() && p.micro);
        let p = plan(&opts(&["--quick", "--only", "tmpfs read|sysv/transparent"]), false);
        assert!(!p.pt.is_empty());
        assert!(p.pt.iter().all(
            |c| (c.backing == "tmpfs" && c.access == "read") || (c.backing == "sysv" && c.sharing == "transparent")
        ));
        assert!(p.pt.iter().any(|c| c.sharing == "transparent"));
    }

    fn good_row() -> Row {
        let mut r = Row::new();
        for (k, v) in [
            ("kernel", "ours"),
            ("backing", "anon"),
            ("sharing", "none"),
            ("access", "write"),
            ("region_bytes", "16777216"),
            ("procs", "4"),
            ("pt_bytes_total", "300000"),
            ("pt_bytes_per_proc", "40960"),
            ("rss_bytes_per_proc", "17825792"),
            ("faults_first_proc", "4096"),
            ("faults_per_later_proc", "4096"),
            ("cycles_first_proc", "1000"),
            ("cycles_per_later_proc", "900"),
            ("cycles_retouch_per_later_proc", "800"),
            ("cycles_retouch_cold_per_later_proc", "850"),
            ("rss_shmem_bytes_per_proc", "16781312"),
            ("fork_cycles", "5"),
            ("teardown_cycles", "5"),
            ("tsc_hz", "2600000000"),
            ("run", "1"),
            ("kernel_release", "Linux-6.6.0-mshare"),
            ("machine", "microvm"),
            ("mem", "1G"),
            ("smp", "1"),
        ] {
            r.insert(k.into(), v.into());
        }
        r
    }

    #[test]
    fn a_consistent_csv_passes_the_check() {
        let (csv, json) = table_text(&PT_COLUMNS, &[good_row()]);
        assert_eq!(check_pt_csv(&csv), Vec::<String>::new());
        assert!(json.contains("\"pt_bytes_per_proc\": 40960"));
        assert!(json.contains("\"kernel\": \"ours\""));
    }

    #[test]
    fn too_few_page_table_bytes_or_faults_fail_the_check() {
        let mut r = good_row();
        r.insert("pt_bytes_per_proc".into(), "4096".into());
        r.insert("faults_per_later_proc".into(), "10".into());
        let (csv, _) = table_text(&PT_COLUMNS, &[r]);
        let problems = check_pt_csv(&csv);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_wrong_header_or_missing_cell_fails_the_check() {
        assert!(!check_pt_csv("kernel,backing\nours,anon\n").is_empty());
        let (csv, _) = table_text(&PT_COLUMNS, &[good_row()]);
        let cut = csv.trim_end().rsplit_once(',').unwrap().0.to_string();
        assert!(!check_pt_csv(&cut).is_empty());
        let header_only = format!("{}\n", PT_COLUMNS.join(","));
        assert_eq!(check_pt_csv(&header_only), ["no rows"]);
    }

    #[test]
    fn csv_rows_read_back_as_written() {
        let (csv, _) = table_text(&PT_COLUMNS, &[good_row()]);
        let path = std::env::temp_dir().join(format!("xtask-bench-{}.csv", std::process::id()));
        std::fs::write(&path, csv).unwrap();
        let rows = read_csv(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(rows, [good_row()]);
    }

    #[test]
    fn headlines_compare_ours_with_linux_per_case() {
        let ours = good_row();
        let mut linux = good_row();
        linux.insert("kernel".into(), "linux".into());
        linux.insert("pt_bytes_per_proc".into(), "20480".into());
        linux.insert("rss_shmem_bytes_per_proc".into(), "16781312".into());
        let h = headlines(&[ours, linux], &[]);
        assert!(h.contains("page-table bytes per process: 2.000x to 2.000x over 1 cases"), "{h}");
        assert!(h.contains("beyond 1%: none"), "{h}");
        assert!(headlines(&[good_row()], &[]).is_empty(), "nothing to compare without Linux");
    }

    #[test]
    fn scale_cases_boot_with_as_many_cpus_as_tasks() {
        let full = plan(&opts(&["--linux"]), false);
        assert_eq!(full.scale.len(), SCALE_TESTS.len() * SCALE_MODES.len() * SCALE_TASKS.len());
        assert!(full.scale.iter().any(|c| (c.test, c.mode, c.tasks) == ("futex2", "processes", 4)));
        let scale_jobs: Vec<Job> = jobs(&full).into_iter().filter(|j| j.suite == "will_it_scale").collect();
        assert_eq!(scale_jobs.len(), 2 * full.scale.len(), "each case on both kernels");
        for j in &scale_jobs {
            assert!(j.command.contains(&format!("--tasks {} ", j.smp)), "{j:?}");
            assert!(j.command.contains(&format!("--runs {}", full.micro_runs)) && j.expected == 3, "{j:?}");
            assert!(!j.command.contains('\n'), "one case per boot in the full set");
        }
        let micro = jobs(&full).into_iter().find(|j| j.suite == "vm_micro").unwrap();
        assert_eq!(micro.smp, full.smp, "other suites keep --smp");
    }

    #[test]
    fn quick_scale_is_one_short_boot_per_task_count() {
        let quick = plan(&opts(&["--quick"]), false);
        assert!(quick.scale.iter().all(|c| QUICK_SCALE_TASKS.contains(&c.tasks)));
        assert_eq!(quick.scale.len(), SCALE_TESTS.len() * SCALE_MODES.len() * QUICK_SCALE_TASKS.len());
        let scale_jobs: Vec<Job> = jobs(&quick).into_iter().filter(|j| j.suite == "will_it_scale").collect();
        assert_eq!(scale_jobs.iter().map(|j| j.smp).collect::<Vec<_>>(), [1, 2]);
        for j in &scale_jobs {
            let lines: Vec<&str> = j.command.lines().collect();
            assert_eq!(lines.len(), SCALE_TESTS.len() * SCALE_MODES.len());
            assert_eq!(j.expected, lines.len());
            assert!(lines.iter().all(|l| l.contains(&format!("--tasks {} ", j.smp)) && l.contains("--seconds 0.1 ")));
        }
        assert!(plan(&opts(&[]), true).scale.is_empty(), "`run` is pt_sharing only");
    }

    #[test]
    fn only_selects_scale_cases() {
        let p = plan(&opts(&["--linux", "--only", "scale"]), false);
        assert!(
            p.pt.is_empty() && !p.micro && p.scale.len() == SCALE_TESTS.len() * SCALE_MODES.len() * SCALE_TASKS.len()
        );
        assert_eq!(p.mem, "3G", "four page_fault2 tasks hold 1 GiB");
        let p = plan(&opts(&["--only", "page_fault1"]), false);
        assert!(p.pt.is_empty() && !p.micro);
        assert!(p.scale.len() == 6 && p.scale.iter().all(|c| c.test == "page_fault1"));
        let p = plan(&opts(&["--only", "tmpfs"]), false);
        assert!(p.scale.is_empty());
    }

    #[test]
    fn the_cpu_budget_is_the_host_cores_unless_jobs_is_given() {
        let p = plan(&opts(&[]), false);
        assert_eq!(p.cpu_budget, p.host_cores);
        assert!(p.host_cores >= 1);
        let p = plan(&opts(&["--jobs", "3", "--smp", "2"]), false);
        assert_eq!((p.jobs, p.cpu_budget), (3, 6));
    }

    #[test]
    fn boots_start_in_order_when_their_cpus_fit_the_budget() {
        let smp = [1, 2, 1, 4];
        let smp_of = |i: usize| smp.get(i).copied();
        let d = Dispatcher::new(2);
        assert_eq!(d.take(&smp_of), Some(0));
        let second = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            s.spawn(|| *second.lock().unwrap() = Some(d.take(&smp_of)));
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(*second.lock().unwrap(), None, "2 more CPUs do not fit beside 1");
            d.done(1);
        });
        assert_eq!(*second.lock().unwrap(), Some(Some(1)), "boot 1 next, not boot 2 that would fit");
        d.done(2);
        assert_eq!(d.take(&smp_of), Some(2));
        d.done(1);
        assert_eq!(d.take(&smp_of), Some(3), "a boot larger than the budget runs alone");
        d.done(4);
        assert_eq!(d.take(&smp_of), None);
        let d = Dispatcher::new(2);
        d.stop();
        assert_eq!(d.take(&smp_of), None, "nothing starts after a stop");
    }

    fn scale_fields(test: &str, ipis: Option<(u32, u32, u32)>) -> BTreeMap<String, String> {
        let (res, cal, tlb) = ipis.map_or(("n/a".into(), "n/a".into(), "n/a".into()), |(r, c, t)| {
            (r.to_string(), c.to_string(), t.to_string())
        });
        [
            ("test", test.to_string()),
            ("mode", "threads".into()),
            ("tasks", "2".into()),
            ("cpus", "2".into()),
            ("run", "0".into()),
            ("ops", "1000".into()),
            ("ns", "1000000000".into()),
            ("ops_per_s", "1000.0".into()),
            ("per_task_min", "450.0".into()),
            ("per_task_max", "550.0".into()),
            ("faults", "1001".into()),
            ("ipi_resched", res),
            ("ipi_call", cal),
            ("ipi_tlb", tlb),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn scale_plan(host_cores: u32) -> Plan {
        let mut p = plan(&opts(&["--quick"]), false);
        p.host_cores = host_cores;
        p
    }

    #[test]
    fn scale_rows_derive_per_task_and_per_op_figures() {
        let r = scale_row(&scale_fields("page_fault1", Some((3, 5, 2))), KernelKind::Linux, 2, &scale_plan(2));
        assert_eq!(r["per_task_ops_per_s"], "500.0");
        assert_eq!((r["ipis"].as_str(), r["ipis_per_op"].as_str()), ("8", "0.0080"));
        assert_eq!(r["faults_per_op"], "1.0010");
        assert_eq!((r["kernel"].as_str(), r["smp"].as_str(), r["oversubscribed"].as_str()), ("linux", "2", "0"));
        let r = scale_row(&scale_fields("futex1", None), KernelKind::Ours, 2, &scale_plan(1));
        assert_eq!((r["ipis"].as_str(), r["ipis_per_op"].as_str()), ("n/a", "n/a"), "nothing invented");
        assert_eq!(r["oversubscribed"], "1", "2 CPUs on a 1-core host");
    }

    fn scale_csv(rows: &[Row]) -> String {
        table_text(&SCALE_COLUMNS, rows).0
    }

    #[test]
    fn a_consistent_scale_csv_passes_the_check() {
        let p = scale_plan(2);
        let a = scale_row(&scale_fields("page_fault2", Some((3, 5, 2))), KernelKind::Linux, 2, &p);
        let b = scale_row(&scale_fields("mmap1", None), KernelKind::Ours, 2, &p);
        let (mut a, mut b) = (a, b);
        for r in [&mut a, &mut b] {
            r.insert("run".into(), "1".into());
            r.insert("kernel_release".into(), "Linux-6.1.0".into());
        }
        assert_eq!(check_scale_csv(&scale_csv(&[a, b])), Vec::<String>::new());
    }

    #[test]
    fn inconsistent_scale_rows_fail_the_check() {
        let p = scale_plan(2);
        let good = scale_row(&scale_fields("page_fault1", Some((3, 5, 2))), KernelKind::Linux, 2, &p);
        let with = |k: &str, v: &str| {
            let mut r = good.clone();
            r.insert(k.into(), v.into());
            r
        };
        for (r, why) in [
            (with("tasks", "1"), "CPUs for"),
            (with("ipis", "9"), "ipis 9"),
            (with("faults", "10"), "faults for"),
            (with("oversubscribed", "1"), "oversubscribed"),
            (with("ipi_call", "many"), "neither a count"),
            (with("per_task_max", "480.0"), "per-task mean"),
            (with("ops", "0"), "no operations"),
            (with("test", "page_fault9"), "test"),
        ] {
            let problems = check_scale_csv(&scale_csv(&[r]));
            assert!(problems.len() == 1 && problems[0].contains(why), "{why}: {problems:?}");
        }
        assert_eq!(check_scale_csv(&format!("{}\n", SCALE_COLUMNS.join(","))), ["no rows"]);
        assert!(!check_scale_csv("kernel,test\nours,mmap1\n").is_empty());
    }

    #[test]
    fn scale_summary_shows_ratio_efficiency_ipis_and_oversubscription() {
        let p = scale_plan(2);
        let row = |kernel: KernelKind, tasks: u32, rate: f64, ipis: Option<(u32, u32, u32)>| {
            let mut f = scale_fields("mmap1", ipis);
            f.insert("tasks".into(), tasks.to_string());
            f.insert("ops".into(), format!("{rate}"));
            f.insert("ops_per_s".into(), format!("{rate:.1}"));
            scale_row(&f, kernel, tasks, &p)
        };
        let rows = [
            row(KernelKind::Ours, 1, 100.0, None),
            row(KernelKind::Ours, 2, 150.0, None),
            row(KernelKind::Ours, 4, 200.0, None),
            row(KernelKind::Linux, 1, 200.0, Some((0, 0, 0))),
            row(KernelKind::Linux, 2, 400.0, Some((10, 30, 20))),
        ];
        let s = scale_summary(&rows);
        assert!(
            s.contains("| mmap1 | threads | 1 | 100 | 200 | 0.50 | 1.00 | 1.00 | n/a | 0.0000 | n/a | 0.0000 |"),
            "{s}"
        );
        assert!(
            s.contains("| mmap1 | threads | 2 | 150 | 400 | 0.38 | 0.75 | 1.00 | n/a | 0.1000 | n/a | 0.0500 |"),
            "{s}"
        );
        assert!(s.contains("| mmap1 | threads | 4* | 200 | - | - | 0.50 | - | n/a | - | n/a | - |"), "{s}");
        assert!(s.contains("The host has 2 cores"), "{s}");
        assert!(scale_summary(&[]).is_empty());
    }

    #[test]
    fn medians_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
