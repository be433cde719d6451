//! Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h).
//! Syscalls return `Result<usize, Errno>`; the dispatcher turns an error
//! into `-errno` in RAX, as the Linux ABI does.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

pub type KResult<T> = Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident = $v:expr),* $(,)?) => { $(pub const $name: Errno = Errno($v);)* };
}

errnos! {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, ENOEXEC = 8,
    EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, ENOTBLK = 15,
    EBUSY = 16, EEXIST = 17, EXDEV = 18, ENODEV = 19, ENOTDIR = 20, EISDIR = 21, EINVAL = 22,
    ENFILE = 23, EMFILE = 24, ENOTTY = 25, ETXTBSY = 26, EFBIG = 27, ENOSPC = 28, ESPIPE = 29,
    EROFS = 30, EMLINK = 31, EPIPE = 32, EDOM = 33, ERANGE = 34, EDEADLK = 35, ENAMETOOLONG = 36,
    ENOLCK = 37, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENOMSG = 42, EIDRM = 43, ENODATA = 61,
    ETIME = 62, EOVERFLOW = 75, EBADFD = 77, ELIBBAD = 80, EILSEQ = 84, ENOTSOCK = 88,
    EDESTADDRREQ = 89, EMSGSIZE = 90, EPROTOTYPE = 91, ENOPROTOOPT = 92, EPROTONOSUPPORT = 93,
    ESOCKTNOSUPPORT = 94, ENOTSUP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98, ENOBUFS = 105,
    EISCONN = 106, ENOTCONN = 107, ECONNRESET = 104, ECONNREFUSED = 111,
    ETIMEDOUT = 110, ECANCELED = 125,
    // EOPNOTSUPP is ENOTSUP on Linux.
    EOPNOTSUPP = 95,
    // Kernel-internal: never seen by user space (Linux's include/linux/errno.h).
    ERESTARTSYS = 512, ERESTARTNOINTR = 513, ERESTARTNOHAND = 514,
}
