//! Credentials and capabilities (Linux's `struct cred` in include/linux/cred.h,
//! include/linux/capability.h, kernel/capability.c and the commoncap rules of
//! security/commoncap.c): the ids, the supplementary groups, the capability sets
//! (effective, permitted, inheritable, bounding), `capable`, `in_group_p`, and how
//! the capability sets follow uid changes (`cap_emulate_setxuid`), capset
//! (`cap_capset`) and execve (`cap_bprm_creds_from_file`).

use crate::errno::*;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_LINUX_IMMUTABLE: u32 = 9;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_IPC_LOCK: u32 = 14;
pub const CAP_SYS_RAWIO: u32 = 17;
pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_BOOT: u32 = 22;
pub const CAP_SYS_NICE: u32 = 23;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_SYS_TIME: u32 = 25;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_MAC_OVERRIDE: u32 = 32;
pub const CAP_LAST_CAP: u32 = 40;

/// A capability set, one bit per capability (Linux's `kernel_cap_t`).
pub type KernelCap = u64;

/// Every capability this kernel knows (CAP_VALID_MASK).
pub const CAP_FULL_SET: KernelCap = (1 << (CAP_LAST_CAP + 1)) - 1;

const fn bit(cap: u32) -> KernelCap {
    1 << cap
}

/// The capabilities that go with fsuid 0 (CAP_FS_SET): an fsuid change away
/// from 0 drops them from the effective set, a change back raises them from the
/// permitted set.
const CAP_FS_SET: KernelCap = bit(CAP_CHOWN)
    | bit(CAP_MKNOD)
    | bit(CAP_DAC_OVERRIDE)
    | bit(CAP_DAC_READ_SEARCH)
    | bit(CAP_FOWNER)
    | bit(CAP_FSETID)
    | bit(CAP_MAC_OVERRIDE)
    | bit(CAP_LINUX_IMMUTABLE);

#[derive(Clone, Debug)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// Supplementary groups, sorted (`group_info`).
    pub groups: Arc<Vec<u32>>,
    pub cap_effective: KernelCap,
    pub cap_permitted: KernelCap,
    pub cap_inheritable: KernelCap,
    pub cap_bset: KernelCap,
    /// PR_SET_KEEPCAPS (SECURE_KEEP_CAPS): leaving uid 0 keeps the permitted set.
    pub keep_caps: bool,
}

impl Creds {
    /// init's credentials (`init_cred`): root with every capability.
    pub fn root() -> Creds {
        Creds {
            uid: 0,
            euid: 0,
            suid: 0,
            fsuid: 0,
            gid: 0,
            egid: 0,
            sgid: 0,
            fsgid: 0,
            groups: Arc::new(Vec::new()),
            cap_effective: CAP_FULL_SET,
            cap_permitted: CAP_FULL_SET,
            cap_inheritable: 0,
            cap_bset: CAP_FULL_SET,
            keep_caps: false,
        }
    }

    /// Whether capability `cap` is in the effective set (`capable`, `ns_capable`).
    pub fn capable(&self, cap: u32) -> bool {
        self.cap_effective & bit(cap) != 0
    }

    /// Whether these credentials may look into the memory of a process with `target`'s
    /// (`__ptrace_may_access` with PTRACE_MODE_FSCREDS, kernel/ptrace.c): the fs ids
    /// equal all three of its uids and gids, or CAP_SYS_PTRACE.
    pub fn ptrace_may_access(&self, target: &Creds) -> bool {
        let uids = [target.uid, target.euid, target.suid];
        let gids = [target.gid, target.egid, target.sgid];
        (uids.iter().all(|&u| u == self.fsuid) && gids.iter().all(|&g| g == self.fsgid)) || self.capable(CAP_SYS_PTRACE)
    }

    /// Whether `gid` is the fsgid or a supplementary group (`in_group_p`).
    pub fn in_group_p(&self, gid: u32) -> bool {
        gid == self.fsgid || self.groups.binary_search(&gid).is_ok()
    }

    /// The credentials access(2) checks with (`access_override_creds`): the real
    /// ids as fs ids, and root's permitted capabilities only for a real uid 0.
    pub fn access_override(&self) -> Creds {
        let mut c = self.clone();
        c.fsuid = c.uid;
        c.fsgid = c.gid;
        c.cap_effective = if c.uid == 0 { c.cap_permitted } else { 0 };
        c
    }

    /// The capability sets after a change of real/effective/saved uid from `old`
    /// (`cap_emulate_setxuid`): leaving uid 0 in all three clears permitted and
    /// effective (unless keep_caps), an euid leaving 0 clears effective, an euid
    /// becoming 0 restores effective from permitted.
    pub fn fix_setuid(&mut self, old: &Creds) {
        let had_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
        let has_root = self.uid == 0 || self.euid == 0 || self.suid == 0;
        if had_root && !has_root && !self.keep_caps {
            self.cap_permitted = 0;
            self.cap_effective = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.cap_effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// Whether replacing `old` by `self` makes the process non-dumpable (`commit_creds`):
    /// any change of the effective or fs ids.
    pub fn changes_dumpability(&self, old: &Creds) -> bool {
        self.euid != old.euid || self.egid != old.egid || self.fsuid != old.fsuid || self.fsgid != old.fsgid
    }

    /// The effective set after an fsuid change from `old_fsuid` (LSM_SETID_FS):
    /// leaving 0 drops the filesystem capabilities, returning to 0 raises them
    /// from the permitted set.
    pub fn fix_setfsuid(&mut self, old_fsuid: u32) {
        if old_fsuid == 0 && self.fsuid != 0 {
            self.cap_effective &= !CAP_FS_SET;
        }
        if old_fsuid != 0 && self.fsuid == 0 {
            self.cap_effective |= self.cap_permitted & CAP_FS_SET;
        }
    }

    /// capset's rules (`cap_capset`): the inheritable set may only gain what is
    /// permitted (without CAP_SETPCAP) and within the bounding set, permitted may
    /// only shrink, effective must lie within the new permitted set.
    pub fn capset(&mut self, effective: KernelCap, permitted: KernelCap, inheritable: KernelCap) -> KResult<()> {
        if !self.capable(CAP_SETPCAP) && inheritable & !(self.cap_inheritable | self.cap_permitted) != 0 {
            return Err(EPERM);
        }
        if inheritable & !(self.cap_inheritable | self.cap_bset) != 0 {
            return Err(EPERM);
        }
        if permitted & !self.cap_permitted != 0 || effective & !permitted != 0 {
            return Err(EPERM);
        }
        self.cap_effective = effective;
        self.cap_permitted = permitted;
        self.cap_inheritable = inheritable;
        Ok(())
    }

    /// The capability sets a new program starts with (`cap_bprm_creds_from_file`
    /// for a file without file capabilities): root (real or effective uid 0) gets
    /// the bounding and inheritable sets as permitted, and effective too when its
    /// euid is 0; anyone else keeps none. keep_caps does not survive exec.
    pub fn exec_caps(&mut self) {
        if self.uid == 0 || self.euid == 0 {
            self.cap_permitted = self.cap_bset | self.cap_inheritable;
        } else {
            self.cap_permitted = 0;
        }
        self.cap_effective = if self.euid == 0 { self.cap_permitted } else { 0 };
        self.keep_caps = false;
    }
}
