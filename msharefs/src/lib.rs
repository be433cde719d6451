//! mshare user-space ABI and region registry. Filled in by the mshare issue;
//! for now it only holds the constants every later piece agrees on.
#![cfg_attr(not(test), no_std)]

/// Name of the msharefs filesystem type, as in Linux's mshare RFC (`mount -t msharefs`).
pub const MSHAREFS_NAME: &str = "msharefs";
