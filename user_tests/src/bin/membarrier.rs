//! membarrier (Linux's kernel/sched/membarrier.c): the commands 6.1 has, their
//! registrations and errnos.

use libc::*;
use user_tests::{assert_errno, child_exit, run_tests, sys, tests, Exit};

fn main() {
    run_tests(
        "membarrier",
        tests![
            query_lists_every_command_of_6_1,
            global_commands_need_no_registration,
            private_expedited_without_registration_is_eperm,
            private_expedited_works_once_registered,
            each_private_kind_needs_its_own_registration,
            flags_other_than_rseqs_cpu_flag_are_einval,
            an_unknown_command_is_einval,
            a_registration_is_kept_by_fork,
        ],
    )
}

const QUERY: i32 = 0;
const GLOBAL: i32 = 1;
const GLOBAL_EXPEDITED: i32 = 2;
const REGISTER_GLOBAL_EXPEDITED: i32 = 4;
const PRIVATE_EXPEDITED: i32 = 8;
const REGISTER_PRIVATE_EXPEDITED: i32 = 16;
const PRIVATE_EXPEDITED_SYNC_CORE: i32 = 32;
const REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 64;
const PRIVATE_EXPEDITED_RSEQ: i32 = 128;

fn membarrier(cmd: i32, flags: u32) -> Result<i64, user_tests::Errno> {
    sys!(SYS_membarrier, cmd, flags, 0)
}

fn query_lists_every_command_of_6_1() {
    // 6.3 added MEMBARRIER_CMD_GET_REGISTRATIONS (512): only the low nine bits are asked.
    assert_eq!(membarrier(QUERY, 0).unwrap() & 0x1ff, 0x1ff);
}

fn global_commands_need_no_registration() {
    assert_eq!(membarrier(GLOBAL, 0), Ok(0));
    assert_eq!(membarrier(GLOBAL_EXPEDITED, 0), Ok(0));
}

/// Each test that registers runs in a child: a registration stays with the address space.
fn in_child(f: fn()) {
    let exit = child_exit(|| {
        f();
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

fn private_expedited_without_registration_is_eperm() {
    in_child(|| {
        assert_errno!(membarrier(PRIVATE_EXPEDITED, 0), EPERM);
        assert_errno!(membarrier(PRIVATE_EXPEDITED_SYNC_CORE, 0), EPERM);
        assert_errno!(membarrier(PRIVATE_EXPEDITED_RSEQ, 0), EPERM);
    });
}

fn private_expedited_works_once_registered() {
    in_child(|| {
        assert_eq!(membarrier(REGISTER_PRIVATE_EXPEDITED, 0), Ok(0));
        assert_eq!(membarrier(PRIVATE_EXPEDITED, 0), Ok(0));
        assert_eq!(membarrier(REGISTER_GLOBAL_EXPEDITED, 0), Ok(0));
    });
}

fn each_private_kind_needs_its_own_registration() {
    in_child(|| {
        assert_eq!(membarrier(REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0), Ok(0));
        assert_eq!(membarrier(PRIVATE_EXPEDITED_SYNC_CORE, 0), Ok(0));
        assert_errno!(membarrier(PRIVATE_EXPEDITED, 0), EPERM);
    });
}

fn flags_other_than_rseqs_cpu_flag_are_einval() {
    assert_errno!(membarrier(QUERY, 1), EINVAL);
    assert_errno!(membarrier(GLOBAL, 1), EINVAL);
    assert_errno!(membarrier(PRIVATE_EXPEDITED_RSEQ, 2), EINVAL);
}

fn an_unknown_command_is_einval() {
    assert_errno!(membarrier(1 << 20, 0), EINVAL);
    assert_errno!(membarrier(3, 0), EINVAL);
}

fn a_registration_is_kept_by_fork() {
    in_child(|| {
        assert_eq!(membarrier(REGISTER_PRIVATE_EXPEDITED, 0), Ok(0));
        let exit = child_exit(|| if membarrier(PRIVATE_EXPEDITED, 0) == Ok(0) { 0 } else { 1 });
        assert_eq!(exit, Exit::Code(0));
    });
}
