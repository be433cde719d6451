//! Restartable sequences: registration and its errnos, the CPU fields the kernel keeps,
//! inheritance by fork and not by threads, and the abort of a critical section when its
//! thread is preempted or gets a signal (SIGSEGV when the abort handler lacks the
//! signature). Each test registers in a child, since a registration lasts as long as the
//! thread. musl does not register one itself, so these run the same on every kernel.

use libc::*;
use std::sync::atomic::{AtomicU32, Ordering};
use user_tests::{
    assert_errno, child_exit, fork_child, pin_to_cpu, run_in_child, run_tests, set_handler, sys, tests, Exit,
};

fn main() {
    run_tests(
        "rseq",
        tests![
            registration_writes_the_cpu_the_thread_runs_on,
            a_second_registration_is_ebusy_einval_or_eperm,
            unregistering_resets_the_cpu_fields,
            unregistering_with_other_arguments_is_refused,
            misaligned_short_or_flagged_registrations_are_einval,
            a_registration_outside_user_space_is_efault,
            a_new_thread_starts_unregistered,
            a_forked_child_keeps_the_registration,
            a_signal_aborts_a_critical_section,
            preemption_aborts_a_critical_section,
            an_abort_handler_without_the_signature_is_sigsegv,
        ],
    );
}

const SIG: u32 = 0x5305_3053;
const UNREGISTER: i32 = 1;

/// `struct rseq` as Linux 6.1 defines it (32 bytes, 32-aligned).
#[repr(C, align(32))]
#[derive(Default)]
struct Rseq {
    cpu_id_start: u32,
    cpu_id: u32,
    rseq_cs: u64,
    flags: u32,
    _pad: [u32; 3],
}

/// `struct rseq_cs`.
#[repr(C, align(32))]
struct RseqCs {
    version: u32,
    flags: u32,
    start_ip: u64,
    post_commit_offset: u64,
    abort_ip: u64,
}

// `rseq_spin(cs_field, desc)` stores `desc` in the registration's `rseq_cs`, then spins in
// the critical section [rseq_cs_start, rseq_cs_end) until the kernel moves it to
// `rseq_abort`, which returns 1. The signature sits in the four bytes before the handler.
std::arch::global_asm!(
    ".globl rseq_spin",
    "rseq_spin:",
    "    mov qword ptr [rdi], rsi",
    ".globl rseq_cs_start",
    "rseq_cs_start:",
    "    jmp rseq_cs_start",
    ".globl rseq_cs_end",
    "rseq_cs_end:",
    "    xor eax, eax",
    "    ret",
    "    .long 0x53053053",
    ".globl rseq_abort",
    "rseq_abort:",
    "    mov eax, 1",
    "    ret",
);

extern "C" {
    fn rseq_spin(cs_field: *mut u64, desc: *const RseqCs) -> u32;
    fn rseq_cs_start();
    fn rseq_cs_end();
    fn rseq_abort();
}

fn register(r: &mut Rseq) -> Result<i64, user_tests::Errno> {
    sys!(SYS_rseq, r as *mut Rseq, 32, 0, SIG)
}

fn cpu_id(r: &Rseq) -> u32 {
    unsafe { std::ptr::read_volatile(&r.cpu_id) }
}

fn cpu_id_start(r: &Rseq) -> u32 {
    unsafe { std::ptr::read_volatile(&r.cpu_id_start) }
}

fn ncpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The section `rseq_spin` runs, with its abort handler at `abort`.
fn section(abort: usize) -> RseqCs {
    let start = rseq_cs_start as *const () as usize as u64;
    RseqCs {
        version: 0,
        flags: 0,
        start_ip: start,
        post_commit_offset: rseq_cs_end as *const () as usize as u64 - start,
        abort_ip: abort as u64,
    }
}

fn registration_writes_the_cpu_the_thread_runs_on() {
    run_in_child(|| {
        pin_to_cpu(0);
        let mut r = Rseq { cpu_id: 0xdead, cpu_id_start: 0xdead, ..Default::default() };
        register(&mut r).unwrap();
        assert_eq!((cpu_id_start(&r), cpu_id(&r)), (0, 0));
        let last = ncpus() - 1;
        pin_to_cpu(last);
        sys!(SYS_sched_yield).unwrap();
        assert_eq!((cpu_id_start(&r), cpu_id(&r)), (last as u32, last as u32));
    });
}

fn a_second_registration_is_ebusy_einval_or_eperm() {
    run_in_child(|| {
        let mut r = Rseq::default();
        let mut other = Rseq::default();
        register(&mut r).unwrap();
        assert_errno!(register(&mut r), EBUSY);
        assert_errno!(register(&mut other), EINVAL);
        assert_errno!(sys!(SYS_rseq, &mut r as *mut Rseq, 32, 0, SIG + 1), EPERM);
    });
}

fn unregistering_resets_the_cpu_fields() {
    run_in_child(|| {
        let mut r = Rseq::default();
        register(&mut r).unwrap();
        r.cpu_id_start = 7;
        sys!(SYS_rseq, &mut r as *mut Rseq, 32, UNREGISTER, SIG).unwrap();
        assert_eq!((cpu_id_start(&r), cpu_id(&r)), (0, u32::MAX));
        sys!(SYS_sched_yield).unwrap();
        assert_eq!(cpu_id(&r), u32::MAX, "no longer updated");
        register(&mut r).unwrap();
    });
}

fn unregistering_with_other_arguments_is_refused() {
    run_in_child(|| {
        let mut r = Rseq::default();
        let mut other = Rseq::default();
        assert_errno!(sys!(SYS_rseq, &mut r as *mut Rseq, 32, UNREGISTER, SIG), EINVAL);
        register(&mut r).unwrap();
        assert_errno!(sys!(SYS_rseq, &mut other as *mut Rseq, 32, UNREGISTER, SIG), EINVAL);
        assert_errno!(sys!(SYS_rseq, &mut r as *mut Rseq, 64, UNREGISTER, SIG), EINVAL);
        assert_errno!(sys!(SYS_rseq, &mut r as *mut Rseq, 32, UNREGISTER, SIG + 1), EPERM);
        assert_errno!(sys!(SYS_rseq, &mut r as *mut Rseq, 32, UNREGISTER | 2, SIG), EINVAL);
        assert_errno!(register(&mut r), EBUSY);
    });
}

fn misaligned_short_or_flagged_registrations_are_einval() {
    run_in_child(|| {
        let mut r = [Rseq::default(), Rseq::default()];
        let base = r.as_mut_ptr() as usize;
        assert_errno!(sys!(SYS_rseq, base + 8, 32, 0, SIG), EINVAL);
        assert_errno!(sys!(SYS_rseq, base, 16, 0, SIG), EINVAL);
        assert_errno!(sys!(SYS_rseq, base, 32, 2, SIG), EINVAL);
        sys!(SYS_rseq, base, 32, 0, SIG).unwrap();
    });
}

fn a_registration_outside_user_space_is_efault() {
    run_in_child(|| {
        assert_errno!(sys!(SYS_rseq, 0xffff_8000_0000_0000usize, 32, 0, SIG), EFAULT);
        assert_errno!(sys!(SYS_rseq, 0x7fff_ffff_ffe0usize, 32, 0, SIG), EFAULT);
    });
}

fn a_new_thread_starts_unregistered() {
    run_in_child(|| {
        let mut r = Rseq::default();
        register(&mut r).unwrap();
        std::thread::spawn(|| {
            let mut mine = Rseq::default();
            register(&mut mine).unwrap();
            sys!(SYS_sched_yield).unwrap();
            assert!((cpu_id(&mine) as usize) < ncpus());
            sys!(SYS_rseq, &mut mine as *mut Rseq, 32, UNREGISTER, SIG).unwrap();
        })
        .join()
        .unwrap();
    });
}

fn a_forked_child_keeps_the_registration() {
    run_in_child(|| {
        let mut r = Rseq::default();
        register(&mut r).unwrap();
        let exit = child_exit(|| if register(&mut r) == Err(user_tests::Errno(EBUSY)) { 0 } else { 1 });
        assert_eq!(exit, Exit::Code(0), "the child is registered with the parent's area");
    });
}

static ALARMS: AtomicU32 = AtomicU32::new(0);
/// Handlers that found the interrupted thread inside the critical section.
static IN_SECTION: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_alarm(_: c_int, _: *mut siginfo_t, uc: *mut c_void) {
    let rip = unsafe { (*(uc as *mut ucontext_t)).uc_mcontext.gregs[REG_RIP as usize] } as u64;
    let cs = section(0);
    if rip.wrapping_sub(cs.start_ip) < cs.post_commit_offset {
        IN_SECTION.fetch_add(1, Ordering::Relaxed);
    }
    // Two seconds of signals that never leave the section: a kernel without the abort
    // would spin forever; this child ends instead, failing its test.
    if ALARMS.fetch_add(1, Ordering::Relaxed) > 200 {
        unsafe { _exit(3) };
    }
}

/// SIGALRM every 10 ms.
fn alarm_every_10ms() {
    set_handler(SIGALRM, user_tests::siginfo_handler(on_alarm), SA_SIGINFO, &[]).unwrap();
    let t = itimerval {
        it_interval: timeval { tv_sec: 0, tv_usec: 10_000 },
        it_value: timeval { tv_sec: 0, tv_usec: 10_000 },
    };
    sys!(SYS_setitimer, ITIMER_REAL, &t as *const itimerval, 0).unwrap();
}

fn a_signal_aborts_a_critical_section() {
    run_in_child(|| {
        let mut r = Rseq::default();
        register(&mut r).unwrap();
        alarm_every_10ms();
        let cs = section(rseq_abort as *const () as usize);
        // Preemption aborts the section too; spin again until signals have come.
        for _ in 0..1000 {
            assert_eq!(unsafe { rseq_spin(&mut r.rseq_cs, &cs) }, 1, "left through the abort handler");
            assert_eq!(unsafe { std::ptr::read_volatile(&r.rseq_cs) }, 0, "the kernel clears rseq_cs on abort");
            if ALARMS.load(Ordering::Relaxed) >= 3 {
                break;
            }
        }
        assert!(ALARMS.load(Ordering::Relaxed) >= 3);
        assert_eq!(IN_SECTION.load(Ordering::Relaxed), 0, "a handler ran with the thread inside the section");
    });
}

fn preemption_aborts_a_critical_section() {
    run_in_child(|| {
        pin_to_cpu(0);
        // Another task that never sleeps, on the same CPU: the scheduler must switch.
        let spinner = fork_child(|| loop {
            std::hint::spin_loop();
        });
        let mut r = Rseq::default();
        register(&mut r).unwrap();
        let cs = section(rseq_abort as *const () as usize);
        // SIGALRM's default action ends a child the scheduler never moves out.
        sys!(SYS_alarm, 5).unwrap();
        let aborted = unsafe { rseq_spin(&mut r.rseq_cs, &cs) };
        sys!(SYS_alarm, 0).unwrap();
        unsafe { kill(spinner, SIGKILL) };
        user_tests::wait_child(spinner);
        assert_eq!(aborted, 1);
    });
}

fn an_abort_handler_without_the_signature_is_sigsegv() {
    let exit = child_exit(|| {
        let mut r = Rseq::default();
        register(&mut r).unwrap();
        alarm_every_10ms();
        // The bytes before `rseq_cs_end` are the section's jump, not the signature.
        let cs = section(rseq_cs_end as *const () as usize);
        unsafe { rseq_spin(&mut r.rseq_cs, &cs) };
        0
    });
    assert_eq!(exit, Exit::Signal(SIGSEGV));
}
