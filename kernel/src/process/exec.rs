//! execve (Linux's fs/exec.c and fs/binfmt_elf.c `load_elf_binary`): a new
//! address space from a static ELF (or a `#!` script's interpreter), the
//! initial stack, the resets exec implies, and the new credentials (set-user-ID
//! and set-group-ID files, the capability sets).

use super::cred::Creds;
use super::task::{Task, SUID_DUMP_DISABLE, SUID_DUMP_USER};
use crate::arch::context::FpuState;
use crate::arch::trap::TrapFrame;
use crate::errno::*;
use crate::fs::namei::{inode_permission, may_open, MAY_EXEC, MAY_READ};
use crate::fs::vfs::{Inode, Metadata};
use crate::mm::address_space::{MmStruct, STACK_SIZE, STACK_TOP};
use crate::mm::vma::{Backend, Prot, VmFlags, Vma};
use crate::mm::PAGE_SIZE;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use elf_loader::{AuxvValues, StackParams};

const BINPRM_BUF_SIZE: usize = 256;
/// How much of an executable exec reads to find its headers.
const HEAD_BYTES: usize = 16 * 1024;
/// Stack below the arguments at exec (Linux's `stack_expand` in setup_arg_pages).
const STACK_EXPAND: u64 = 128 * 1024;
const MAX_INTERP_DEPTH: usize = 4;

fn prot(p: elf_loader::Prot) -> Prot {
    let mut r = Prot::empty();
    r.set(Prot::READ, p.read);
    r.set(Prot::WRITE, p.write);
    r.set(Prot::EXEC, p.exec);
    r
}

/// The flags of an ELF segment's VMA: writable private segments are charged to
/// committed memory (`vm_mmap` and `vm_brk_flags` make them VM_ACCOUNT).
fn accountable(p: Prot) -> VmFlags {
    if crate::mm::commit::accountable_mapping(p, VmFlags::empty()) {
        VmFlags::ACCOUNT
    } else {
        VmFlags::empty()
    }
}

/// Resolves and checks `path` for exec (`do_open_execat`): execute permission
/// (`may_open` with MAY_EXEC; root needs some execute bit), a regular file
/// (EACCES), and no open file writing it (`deny_write_access`: ETXTBSY).
fn open_exec(t: &Task, path: &[u8]) -> KResult<Arc<dyn Inode>> {
    let cred = t.process.creds.lock().clone();
    let cwd = t.fs().lock().cwd.clone();
    let inode = crate::fs::path::lookup_from(&cred, crate::fs::root(), cwd, path, true)?;
    let m = inode.metadata();
    may_open(&cred, &inode, MAY_EXEC, 0)?;
    if !m.is_regular() {
        return Err(EACCES);
    }
    if crate::fs::file::open_for_writing(&m) {
        return Err(ETXTBSY);
    }
    Ok(inode)
}

/// The credentials the new program runs with (`bprm_fill_uid`, then
/// `cap_bprm_creds_from_file`): a set-user-ID file's owner as effective uid, a
/// set-group-ID (and group-executable) file's group as effective gid, saved and
/// fs ids following; then the capability sets for the new ids. Returns them and
/// whether the effective ids differ from the old real ones (AT_SECURE).
fn exec_creds(old: &Creds, file: &Metadata) -> (Creds, bool) {
    let mut c = old.clone();
    if file.mode & 0o4000 != 0 {
        c.euid = file.uid;
    }
    if file.mode & 0o2010 == 0o2010 {
        c.egid = file.gid;
    }
    c.suid = c.euid;
    c.fsuid = c.euid;
    c.sgid = c.egid;
    c.fsgid = c.egid;
    c.exec_caps();
    let secure = c.euid != old.uid || c.egid != old.gid;
    (c, secure)
}

/// The first `limit` bytes of the file (all of it if shorter).
fn read_head(inode: &Arc<dyn Inode>, limit: usize) -> KResult<Vec<u8>> {
    let size = (inode.metadata().size as usize).min(limit);
    let mut data = Vec::new();
    data.try_reserve_exact(size).map_err(|_| ENOMEM)?;
    data.resize(size, 0);
    let mut done = 0;
    while done < size {
        let n = inode.read_at(done as u64, &mut data[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    data.truncate(done);
    Ok(data)
}

/// The interpreter a program's `PT_INTERP` names, read and opened as `load_elf_binary`
/// does: its bytes (EIO when the file ends first), the terminating NUL (ENOEXEC), then
/// `open_exec` of the path, with its errors (ENOENT, EACCES, ...).
fn open_interpreter(
    t: &Task,
    program: &Arc<dyn Inode>,
    interp: elf_loader::InterpRef,
) -> KResult<(Arc<dyn Inode>, Vec<u8>)> {
    let mut bytes = vec![0u8; interp.len as usize];
    let mut done = 0;
    while done < bytes.len() {
        let n = program.read_at(interp.offset + done as u64, &mut bytes[done..])?;
        if n == 0 {
            return Err(EIO);
        }
        done += n;
    }
    let path = elf_loader::interp_path(&bytes).map_err(|e| Errno(e.errno()))?;
    Ok((open_exec(t, path)?, path.to_vec()))
}

/// The interpreter's headers, checked as `load_elf_binary` checks them before the point of
/// no return: fewer than an ELF header's 64 bytes is EIO (the read comes up short); anything
/// else this loader refuses is ELIBBAD. The file comes back open, for its mappings to hold.
fn load_interp_headers(
    (inode, path): (Arc<dyn Inode>, Vec<u8>),
) -> KResult<(Arc<crate::fs::file::File>, elf_loader::ElfInfo)> {
    let head = read_head(&inode, HEAD_BYTES)?;
    if head.len() < 64 {
        return Err(EIO);
    }
    let info = parse_image(&inode, &head)?.map_err(|_| ELIBBAD)?;
    Ok((image_file(inode, &path), info))
}

/// The ELF headers of an executable from its first bytes `head`, or from the whole file
/// when its program headers lie beyond them (unusual).
fn parse_image(inode: &Arc<dyn Inode>, head: &[u8]) -> KResult<Result<elf_loader::ElfInfo, elf_loader::ElfError>> {
    let size = inode.metadata().size;
    Ok(match elf_loader::parse_head(head, size) {
        Err(elf_loader::ElfError::Truncated) if (head.len() as u64) < size => {
            elf_loader::parse(&read_head(inode, usize::MAX)?)
        }
        r => r,
    })
}

/// The file an image's mappings hold open, as Linux's VMAs hold `vm_file`.
fn image_file(inode: Arc<dyn Inode>, path: &[u8]) -> Arc<crate::fs::file::File> {
    crate::fs::file::File::new(
        crate::fs::file::FileKind::Inode(inode),
        crate::fs::file::O_RDONLY,
        alloc::string::String::from_utf8_lossy(path).into_owned(),
    )
}

/// Maps an image's plan (`elf_map` and `elf_load`): its file pages from `file`, its bss
/// anonymous, over whatever was there.
fn map_plan(
    inner: &mut crate::mm::address_space::MmInner,
    mm: &MmStruct,
    plan: &[elf_loader::MapStep],
    file: &Arc<crate::fs::file::File>,
) {
    for step in plan {
        let tlb = crate::mm::tlb::MmuGather::for_mm(mm);
        inner.unmap_region(&tlb, mm, step.start, step.end);
        if step.file_end > step.start {
            inner.insert_vma(Vma {
                live: crate::leak::VMAS.live(),
                start: step.start,
                end: step.file_end,
                prot: prot(step.prot),
                flags: accountable(prot(step.prot)) | VmFlags::MAYWRITE,
                pgoff: step.file_offset / PAGE_SIZE,
                backend: Backend::File(file.clone()),
                ops: None,
            });
        }
        if step.end > step.file_end {
            inner.insert_vma(Vma {
                live: crate::leak::VMAS.live(),
                start: step.file_end,
                end: step.end,
                prot: prot(step.anon_prot),
                flags: accountable(prot(step.anon_prot)) | VmFlags::MAYWRITE,
                pgoff: 0,
                backend: Backend::Anonymous,
                ops: None,
            });
        }
    }
}

/// `padzero`: the file bytes past `p_filesz` in an image's last file page read as zero.
fn zero_tails(mm: &MmStruct, plan: &[elf_loader::MapStep]) -> KResult<()> {
    for step in plan {
        let (zs, ze) = step.zero_tail();
        if ze > zs && step.file_len < step.file_end - step.start {
            let r = crate::mm::usercopy::clear_user(mm, zs, (ze - zs) as usize);
            if step.prot.write {
                r?;
            }
        }
    }
    Ok(())
}

/// `#!interp [arg]` (Linux's binfmt_script): the interpreter, its optional argument.
fn parse_shebang(data: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let line = data.strip_prefix(b"#!")?;
    let line = &line[..line.len().min(BINPRM_BUF_SIZE - 2)];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let trimmed: &[u8] = {
        let s = line.iter().position(|&b| b != b' ' && b != b'\t')?;
        let e = line.iter().rposition(|&b| b != b' ' && b != b'\t')? + 1;
        &line[s..e]
    };
    match trimmed.iter().position(|&b| b == b' ' || b == b'\t') {
        None => Some((trimmed.to_vec(), None)),
        Some(i) => {
            let arg = &trimmed[i..];
            let s = arg.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(arg.len());
            Some((trimmed[..i].to_vec(), Some(arg[s..].to_vec())))
        }
    }
}

/// Linux's `de_thread`: every other thread of the process exits before the
/// new image runs, and a non-leader thread takes over the leader's id. A
/// fatal signal while waiting for them fails with EINTR (the process is dying).
fn de_thread(t: &Arc<Task>) -> KResult<()> {
    let p = t.process.clone();
    let others: Vec<Arc<Task>> = p.threads.lock().iter().filter(|o| !Arc::ptr_eq(o, t)).cloned().collect();
    if others.is_empty() {
        return Ok(());
    }
    *p.exec_by.lock() = Some(t.tid());
    for o in &others {
        // A pending SIGKILL breaks them out of interruptible sleeps; on the way
        // back to user mode they see exec_by and exit (not the whole group).
        o.sig.lock().pending.add(super::signal::SigInfo::new(super::signal::SIGKILL, super::signal::SI_KERNEL));
        super::sched::signal_wake_up(o, true);
    }
    p.stop_wait.wake_all();
    drop(others);
    let r = p.thread_exit.wait_until_killable(|| (p.threads.lock().len() == 1).then_some(()));
    *p.exec_by.lock() = None;
    r?;
    if t.tid() != p.pid {
        t.become_leader();
    }
    Ok(())
}

/// Replaces `t`'s program. On success `frame` is the new user entry state;
/// on error nothing of `t` has changed.
pub fn exec_into(
    t: &Arc<Task>,
    frame: &mut TrapFrame,
    path: Vec<u8>,
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> KResult<()> {
    let execfn = path.clone();
    let mut path = path;
    let mut depth = 0;
    let (inode, data) = loop {
        let inode = open_exec(t, &path)?;
        // Only the headers are read (the image is mapped from the page cache).
        let data = read_head(&inode, HEAD_BYTES)?;
        match parse_shebang(&data) {
            Some((interp, arg)) => {
                depth += 1;
                if depth > MAX_INTERP_DEPTH {
                    return Err(ELOOP);
                }
                // argv[0] is replaced by: interp [arg] path
                let mut new_argv = vec![interp.clone()];
                new_argv.extend(arg);
                new_argv.push(path.clone());
                new_argv.extend(argv.into_iter().skip(1));
                argv = new_argv;
                path = interp;
            }
            None => break (inode, data),
        }
    };
    let exec_file = image_file(inode.clone(), &path);
    let info = parse_image(&inode, &data)?.map_err(|e| Errno(e.errno()))?;
    let bias = elf_loader::load_bias(&info);
    let plan = elf_loader::mapping_plan(&info, bias).map_err(|e| Errno(e.errno()))?;
    drop(data);
    let interp = match info.interp {
        Some(r) => Some(load_interp_headers(open_interpreter(t, &inode, r)?)?),
        None => None,
    };

    let (readable, (creds, secure)) = {
        // A copy: the file's metadata lock is outside the credentials'.
        let c = t.process.creds.lock().clone();
        (inode_permission(&c, &inode, MAY_READ).is_ok(), exec_creds(&c, &inode.metadata()))
    };
    let mm = MmStruct::new().ok_or(ENOMEM)?;
    // The program, then the interpreter where the top-down search puts its whole span
    // (`load_elf_interp`: one mapping without MAP_FIXED, then the segments in it): its
    // bias, its plan and the entry the process starts at.
    let interp_plan = {
        let mut inner = mm.mmap_lock.write();
        map_plan(&mut inner, &mm, &plan, &exec_file);
        match &interp {
            None => None,
            Some((ifile, iinfo)) => {
                let ibias = if iinfo.pie {
                    let span = elf_loader::total_mapping_size(iinfo).next_multiple_of(PAGE_SIZE);
                    let start = inner.find_free_area(span, crate::mm::address_space::MMAP_BASE).ok_or(ENOMEM)?;
                    let first = iinfo.segments[0].vaddr & !(PAGE_SIZE - 1);
                    start.wrapping_sub(first)
                } else {
                    0
                };
                let iplan = elf_loader::mapping_plan(iinfo, ibias).map_err(|_| ELIBBAD)?;
                map_plan(&mut inner, &mm, &iplan, ifile);
                Some((ibias, iplan, iinfo.entry.wrapping_add(ibias)))
            }
        }
    };
    // `arch_setup_additional_pages`: the vDSO, where the search puts it after the images.
    let vdso = crate::mm::vdso::map_vdso(&mut mm.mmap_lock.write())?;
    let auxv = elf_loader::exec_auxv(
        &info,
        bias,
        &AuxvValues {
            sysinfo_ehdr: Some(vdso),
            minsigstksz: 2048,
            hwcap: crate::arch::cpu::cpuid(1, 0).edx as u64,
            hwcap2: 0,
            clktck: 100,
            uid: creds.uid as u64,
            euid: creds.euid as u64,
            gid: creds.gid as u64,
            egid: creds.egid as u64,
            secure,
            interp_base: interp_plan.as_ref().map_or(0, |(ibias, _, _)| *ibias),
        },
    );
    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    let argv_refs: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
    let envp_refs: Vec<&[u8]> = envp.iter().map(|a| a.as_slice()).collect();
    let image = elf_loader::build_stack(&StackParams {
        stack_top: STACK_TOP,
        argv: &argv_refs,
        envp: &envp_refs,
        execfn: &execfn,
        platform: b"x86_64",
        random,
        auxv: &auxv,
    })
    .map_err(|e| match e {
        elf_loader::StackError::TooBig => E2BIG,
        elf_loader::StackError::AddressOverflow => EFAULT,
        _ => EINVAL,
    })?;
    {
        let mut inner = mm.mmap_lock.write();
        // The stack starts small and grows on faults below it (VM_GROWSDOWN),
        // up to RLIMIT_STACK, as Linux's setup_arg_pages leaves it: the
        // argument pages plus 128 KiB.
        let stack_start = ((image.sp & !(PAGE_SIZE - 1)) - STACK_EXPAND).max(STACK_TOP - STACK_SIZE);
        inner.insert_vma(Vma {
            live: crate::leak::VMAS.live(),
            start: stack_start,
            end: STACK_TOP,
            prot: Prot::READ | Prot::WRITE,
            flags: VmFlags::GROWSDOWN | VmFlags::STACK | VmFlags::ACCOUNT | VmFlags::MAYWRITE,
            pgoff: 0,
            backend: Backend::Anonymous,
            ops: None,
        });
        // The program's: the interpreter's bss does not move it.
        let brk = elf_loader::brk_start(&info, bias);
        inner.start_brk = brk;
        inner.brk = brk;
    }
    zero_tails(&mm, &plan)?;
    if let Some((_, iplan, _)) = &interp_plan {
        zero_tails(&mm, iplan)?;
    }

    crate::mm::usercopy::copy_to_user(&mm, image.sp, &image.bytes)?;
    {
        let mut inner = mm.mmap_lock.write();
        inner.arg_range = (image.argv_start, image.argv_end);
        inner.exe = Some(exec_file.path.clone());
        inner.env_range = (image.env_start, image.env_end);
    }

    // Point of no return (Linux's `begin_new_exec`), unless a fatal signal
    // ends the wait for the other threads: the dying process keeps its image.
    de_thread(t)?;
    // Dumpable again unless the new ids differ from the real ones or the caller could not
    // read the program (begin_new_exec, would_dump).
    let dumpable = creds.euid == creds.uid && creds.egid == creds.gid && readable;
    t.process.dumpable.store(if dumpable { SUID_DUMP_USER } else { SUID_DUMP_DISABLE }, Ordering::Relaxed);
    t.process.did_exec.store(true, Ordering::Relaxed);
    // POSIX timers do not survive execve (`begin_new_exec`'s `exit_itimers`).
    super::posix_timer::exit_itimers(&t.process);
    *t.process.creds.lock() = creds;
    let old = t.mm.lock().replace(mm.clone());
    mm.activate();
    drop(old);
    {
        let files = t.files();
        let mut table = files.lock().clone();
        table.close_on_exec();
        // The old table is dropped out of the slot's lock (closing files takes theirs).
        let old = core::mem::replace(&mut *t.files.lock(), Arc::new(crate::sync::SpinLock::new(table)));
        drop((old, files));
    }
    {
        let mut h = t.sighand().lock().clone();
        h.reset_for_exec();
        *t.sighand.lock() = Arc::new(crate::sync::SpinLock::new(h));
    }
    t.sig.lock().altstack = Default::default();
    *t.comm.lock() = super::task::comm_from_path(&execfn);
    t.fs_base.store(0, Ordering::Relaxed);
    t.rseq.execve();
    crate::arch::percpu::set_user_fs_base(0);
    let fpu = FpuState::initial();
    fpu.restore();
    **t.fpu.lock() = fpu;
    if let Some(c) = t.vfork_done.lock().take() {
        c.complete();
    }
    *frame = TrapFrame {
        rip: interp_plan.as_ref().map_or(info.entry.wrapping_add(bias), |(_, _, entry)| *entry),
        rsp: image.sp,
        rflags: 0x202,
        cs: 0x23,
        ss: 0x1b,
        vector: crate::arch::syscall::VECTOR_SYSCALL,
        ..Default::default()
    };
    Ok(())
}

pub(crate) const KTESTS: &[crate::ktest::KTest] = crate::ktests![shebang_lines_parse_like_binfmt_script];

fn shebang_lines_parse_like_binfmt_script() {
    assert_eq!(parse_shebang(b"#!/bin/sh\necho"), Some((b"/bin/sh".to_vec(), None)));
    assert_eq!(parse_shebang(b"#! /bin/sh  -e  \n"), Some((b"/bin/sh".to_vec(), Some(b"-e".to_vec()))));
    assert_eq!(
        parse_shebang(b"#!/usr/bin/env python3 -u\n"),
        Some((b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec())))
    );
    assert_eq!(parse_shebang(b"#!\n"), None);
    assert_eq!(parse_shebang(b"\x7fELF"), None);
}
