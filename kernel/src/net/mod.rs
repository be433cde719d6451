//! Networking: the socket families built. Only AF_UNIX (`unix.rs`); the system calls
//! are in `syscall/net.rs`.

pub mod unix;
