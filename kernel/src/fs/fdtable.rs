//! A process's file descriptor table (Linux's `files_struct`), shared by
//! CLONE_FILES, copied by fork.

use super::file::File;
use crate::errno::*;
use alloc::sync::Arc;
use alloc::vec::Vec;

#[derive(Clone)]
pub struct FdEntry {
    pub file: Arc<File>,
    pub cloexec: bool,
}

/// A file table as tasks share it (CLONE_FILES).
pub type FdTableLock = crate::sync::SpinLock<FdTable, crate::sync::order::FdTable>;

#[derive(Clone, Default)]
pub struct FdTable {
    fds: Vec<Option<FdEntry>>,
}

impl FdTable {
    pub fn new() -> FdTable {
        FdTable { fds: Vec::new() }
    }

    /// The open files, in descriptor order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<File>> {
        self.fds.iter().flatten().map(|e| &e.file)
    }

    pub fn get(&self, fd: i32) -> KResult<Arc<File>> {
        self.entry(fd).map(|e| e.file.clone())
    }

    pub fn entry(&self, fd: i32) -> KResult<&FdEntry> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get(i)).and_then(|e| e.as_ref()).ok_or(EBADF)
    }

    pub fn entry_mut(&mut self, fd: i32) -> KResult<&mut FdEntry> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).and_then(|e| e.as_mut()).ok_or(EBADF)
    }

    /// The lowest free descriptor >= `min`.
    pub fn lowest_free(&self, min: usize) -> usize {
        let mut fd = min;
        while fd < self.fds.len() && self.fds[fd].is_some() {
            fd += 1;
        }
        fd
    }

    /// Installs at the lowest free descriptor >= `min`, below `limit` (RLIMIT_NOFILE).
    pub fn alloc(&mut self, file: Arc<File>, cloexec: bool, min: usize, limit: usize) -> KResult<i32> {
        let mut fd = min;
        while fd < self.fds.len() && self.fds[fd].is_some() {
            fd += 1;
        }
        if fd >= limit {
            return Err(EMFILE);
        }
        if fd >= self.fds.len() {
            // Linux's expand_files: a bigger table is an allocation that can fail.
            let more = fd + 1 - self.fds.len();
            crate::mm::fail::try_reserve(&mut self.fds, more)?;
            self.fds.resize(fd + 1, None);
        }
        self.fds[fd] = Some(FdEntry { file, cloexec });
        Ok(fd as i32)
    }

    /// Puts `file` at exactly `fd` (dup2), returning what was there.
    pub fn set(&mut self, fd: i32, file: Arc<File>, cloexec: bool, limit: usize) -> KResult<Option<FdEntry>> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        if i >= limit {
            return Err(EBADF);
        }
        if i >= self.fds.len() {
            let more = i + 1 - self.fds.len();
            crate::mm::fail::try_reserve(&mut self.fds, more)?;
            self.fds.resize(i + 1, None);
        }
        Ok(self.fds[i].replace(FdEntry { file, cloexec }))
    }

    pub fn close(&mut self, fd: i32) -> KResult<FdEntry> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        self.fds.get_mut(i).and_then(|e| e.take()).ok_or(EBADF)
    }

    /// Takes the descriptors from `first` to `last` (inclusive) out of the table, for the
    /// caller to drop once the table's lock is released (close_range).
    pub fn close_range(&mut self, first: usize, last: usize) -> Vec<FdEntry> {
        let end = last.saturating_add(1).min(self.fds.len());
        if first >= end {
            return Vec::new();
        }
        self.fds[first..end].iter_mut().filter_map(|e| e.take()).collect()
    }

    /// Marks the descriptors from `first` to `last` (inclusive) close-on-exec
    /// (CLOSE_RANGE_CLOEXEC).
    pub fn cloexec_range(&mut self, first: usize, last: usize) {
        let end = last.saturating_add(1).min(self.fds.len());
        for e in self.fds.iter_mut().take(end).skip(first).flatten() {
            e.cloexec = true;
        }
    }

    /// Drops every close-on-exec descriptor (execve).
    pub fn close_on_exec(&mut self) {
        for e in self.fds.iter_mut() {
            if e.as_ref().is_some_and(|e| e.cloexec) {
                *e = None;
            }
        }
    }

    pub fn close_all(&mut self) {
        self.fds.clear();
    }

    /// One past the highest descriptor slot.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    pub fn count(&self) -> usize {
        self.fds.iter().filter(|e| e.is_some()).count()
    }
}
