//! A balanced (AVL) search tree whose every node keeps a summary of its subtree, as Linux's
//! augmented rbtree (`include/linux/rbtree_augmented.h`). The summary is recomputed from a
//! node and its children's summaries on every change, so a query can skip whole subtrees
//! whose summary says they hold nothing of interest: every operation is O(log n), queries
//! O(log n) plus what they report.
//!
//! Two trees of the kernel's memory manager are built on it:
//! - [`GapTree`]: the VMAs of an address space as disjoint ranges, summarised by the largest
//!   free gap between neighbours, for the top-down free-area search (Linux tracks the same
//!   gaps in the maple tree for `vm_unmapped_area`, and before 6.1 as `rb_subtree_gap`);
//! - [`IntervalTree`]: possibly overlapping ranges (the file pages each VMA maps),
//!   summarised by their largest end, for the VMAs that map a range of a file (Linux's
//!   `vma_interval_tree` over `address_space->i_mmap`, `mm/interval_tree.c`).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use core::cmp::Ordering;

/// How a node's summary is computed from its own key and value and its children's summaries.
pub trait Augment<K, V> {
    type Summary: Clone;
    fn summarize(key: &K, value: &V, left: Option<&Self::Summary>, right: Option<&Self::Summary>) -> Self::Summary;
}

struct Node<K, V, S> {
    key: K,
    value: V,
    summary: S,
    height: u8,
    left: Link<K, V, S>,
    right: Link<K, V, S>,
}

type Link<K, V, S> = Option<Box<Node<K, V, S>>>;

/// A read-only view of one node, for queries that descend the tree.
pub struct NodeRef<'a, K, V, S> {
    node: &'a Node<K, V, S>,
}

impl<K, V, S> Clone for NodeRef<'_, K, V, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V, S> Copy for NodeRef<'_, K, V, S> {}

impl<'a, K, V, S> NodeRef<'a, K, V, S> {
    pub fn key(&self) -> &'a K {
        &self.node.key
    }
    pub fn value(&self) -> &'a V {
        &self.node.value
    }
    /// The summary of this node's whole subtree.
    pub fn summary(&self) -> &'a S {
        &self.node.summary
    }
    pub fn left(&self) -> Option<NodeRef<'a, K, V, S>> {
        self.node.left.as_deref().map(|node| NodeRef { node })
    }
    pub fn right(&self) -> Option<NodeRef<'a, K, V, S>> {
        self.node.right.as_deref().map(|node| NodeRef { node })
    }
}

/// The tree: keys unique, ordered by `Ord`.
pub struct AugTree<K, V, A: Augment<K, V>> {
    root: Link<K, V, A::Summary>,
    len: usize,
}

impl<K: Ord, V, A: Augment<K, V>> Default for AugTree<K, V, A> {
    fn default() -> Self {
        Self::new()
    }
}

fn height<K, V, S>(link: &Link<K, V, S>) -> u8 {
    link.as_ref().map_or(0, |n| n.height)
}

impl<K: Ord, V, A: Augment<K, V>> AugTree<K, V, A> {
    pub const fn new() -> Self {
        AugTree { root: None, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root, to start a query at; None when empty.
    pub fn root(&self) -> Option<NodeRef<'_, K, V, A::Summary>> {
        self.root.as_deref().map(|node| NodeRef { node })
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        let mut link = &self.root;
        while let Some(n) = link {
            match key.cmp(&n.key) {
                Ordering::Less => link = &n.left,
                Ordering::Greater => link = &n.right,
                Ordering::Equal => return Some(&n.value),
            }
        }
        None
    }

    /// Inserts `value` at `key`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let (root, old) = Self::insert_at(self.root.take(), key, value);
        self.root = Some(root);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (root, old) = Self::remove_at(self.root.take(), key);
        self.root = root;
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Changes the value at `key` in place (the summaries on its path are recomputed);
    /// false if there is no such key.
    pub fn update(&mut self, key: &K, f: impl FnOnce(&mut V)) -> bool {
        fn go<K: Ord, V, A: Augment<K, V>>(link: &mut Link<K, V, A::Summary>, key: &K, f: impl FnOnce(&mut V)) -> bool {
            let Some(n) = link else { return false };
            let found = match key.cmp(&n.key) {
                Ordering::Less => go::<K, V, A>(&mut n.left, key, f),
                Ordering::Greater => go::<K, V, A>(&mut n.right, key, f),
                Ordering::Equal => {
                    f(&mut n.value);
                    true
                }
            };
            if found {
                AugTree::<K, V, A>::fix(n);
            }
            found
        }
        go::<K, V, A>(&mut self.root, key, f)
    }

    /// Calls `f` on every entry in key order.
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        fn go<K, V, S>(link: &Link<K, V, S>, f: &mut dyn FnMut(&K, &V)) {
            if let Some(n) = link {
                go(&n.left, f);
                f(&n.key, &n.value);
                go(&n.right, f);
            }
        }
        go(&self.root, &mut f);
    }

    /// Height and summary from the children.
    fn fix(n: &mut Node<K, V, A::Summary>) {
        n.height = 1 + height(&n.left).max(height(&n.right));
        n.summary =
            A::summarize(&n.key, &n.value, n.left.as_ref().map(|c| &c.summary), n.right.as_ref().map(|c| &c.summary));
    }

    fn rotate_right(mut n: Box<Node<K, V, A::Summary>>) -> Box<Node<K, V, A::Summary>> {
        let mut l = n.left.take().expect("rotate_right needs a left child");
        n.left = l.right.take();
        Self::fix(&mut n);
        l.right = Some(n);
        Self::fix(&mut l);
        l
    }

    fn rotate_left(mut n: Box<Node<K, V, A::Summary>>) -> Box<Node<K, V, A::Summary>> {
        let mut r = n.right.take().expect("rotate_left needs a right child");
        n.right = r.left.take();
        Self::fix(&mut n);
        r.left = Some(n);
        Self::fix(&mut r);
        r
    }

    /// Restores the AVL balance at `n` (children balanced, heights differing by at most 2).
    fn balance(mut n: Box<Node<K, V, A::Summary>>) -> Box<Node<K, V, A::Summary>> {
        Self::fix(&mut n);
        let (hl, hr) = (height(&n.left), height(&n.right));
        if hl > hr + 1 {
            let l = n.left.as_ref().unwrap();
            if height(&l.left) < height(&l.right) {
                n.left = Some(Self::rotate_left(n.left.take().unwrap()));
            }
            return Self::rotate_right(n);
        }
        if hr > hl + 1 {
            let r = n.right.as_ref().unwrap();
            if height(&r.right) < height(&r.left) {
                n.right = Some(Self::rotate_right(n.right.take().unwrap()));
            }
            return Self::rotate_left(n);
        }
        n
    }

    fn insert_at(link: Link<K, V, A::Summary>, key: K, value: V) -> (Box<Node<K, V, A::Summary>>, Option<V>) {
        let Some(mut n) = link else {
            let summary = A::summarize(&key, &value, None, None);
            return (Box::new(Node { key, value, summary, height: 1, left: None, right: None }), None);
        };
        let old = match key.cmp(&n.key) {
            Ordering::Less => {
                let (c, old) = Self::insert_at(n.left.take(), key, value);
                n.left = Some(c);
                old
            }
            Ordering::Greater => {
                let (c, old) = Self::insert_at(n.right.take(), key, value);
                n.right = Some(c);
                old
            }
            Ordering::Equal => Some(core::mem::replace(&mut n.value, value)),
        };
        (Self::balance(n), old)
    }

    fn remove_at(link: Link<K, V, A::Summary>, key: &K) -> (Link<K, V, A::Summary>, Option<V>) {
        let Some(mut n) = link else { return (None, None) };
        match key.cmp(&n.key) {
            Ordering::Less => {
                let (c, old) = Self::remove_at(n.left.take(), key);
                n.left = c;
                (Some(Self::balance(n)), old)
            }
            Ordering::Greater => {
                let (c, old) = Self::remove_at(n.right.take(), key);
                n.right = c;
                (Some(Self::balance(n)), old)
            }
            Ordering::Equal => {
                let Node { value, left, right, .. } = *n;
                let joined = match (left, right) {
                    (None, r) => r,
                    (l, None) => l,
                    (l, Some(r)) => {
                        let (rest, mut min) = Self::take_min(r);
                        min.left = l;
                        min.right = rest;
                        Some(Self::balance(min))
                    }
                };
                (joined, Some(value))
            }
        }
    }

    /// Detaches the smallest node of the subtree; returns the rest and that node.
    fn take_min(mut n: Box<Node<K, V, A::Summary>>) -> (Link<K, V, A::Summary>, Box<Node<K, V, A::Summary>>) {
        match n.left.take() {
            None => (n.right.take(), n),
            Some(l) => {
                let (rest, min) = Self::take_min(l);
                n.left = rest;
                (Some(Self::balance(n)), min)
            }
        }
    }
}

impl<K, V, A: Augment<K, V>> Drop for AugTree<K, V, A> {
    /// Frees the nodes without recursion (a long chain cannot exist, but the heap walk is
    /// cheaper than the recursive drop glue anyway).
    fn drop(&mut self) {
        let mut stack = alloc::vec::Vec::new();
        stack.extend(self.root.take());
        while let Some(mut n) = stack.pop() {
            stack.extend(n.left.take());
            stack.extend(n.right.take());
        }
    }
}

/// Summary of a run of disjoint ranges: the lowest start, the highest end, and the largest
/// gap between two neighbours inside the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapSummary {
    pub first_start: u64,
    pub last_end: u64,
    pub max_gap: u64,
}

pub struct GapAugment;

impl Augment<u64, u64> for GapAugment {
    type Summary = GapSummary;
    fn summarize(start: &u64, end: &u64, l: Option<&GapSummary>, r: Option<&GapSummary>) -> GapSummary {
        let mut max_gap = 0;
        let first_start = l.map_or(*start, |l| {
            max_gap = l.max_gap.max(start.saturating_sub(l.last_end));
            l.first_start
        });
        let last_end = r.map_or(*end, |r| {
            max_gap = max_gap.max(r.max_gap).max(r.first_start.saturating_sub(*end));
            r.last_end
        });
        GapSummary { first_start, last_end, max_gap }
    }
}

/// Disjoint ranges `[start, end)` keyed by start, with the free gaps between neighbours
/// searchable by size (the VMAs of one address space).
#[derive(Default)]
pub struct GapTree {
    tree: AugTree<u64, u64, GapAugment>,
}

impl GapTree {
    pub const fn new() -> Self {
        GapTree { tree: AugTree::new() }
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Adds `[start, end)`, which must overlap no other range.
    pub fn insert(&mut self, start: u64, end: u64) {
        self.tree.insert(start, end);
    }

    pub fn remove(&mut self, start: u64) -> Option<u64> {
        self.tree.remove(&start)
    }

    /// Moves the end of the range starting at `start`.
    pub fn set_end(&mut self, start: u64, end: u64) -> bool {
        self.tree.update(&start, |e| *e = end)
    }

    /// The highest gap of at least `len` bytes between two neighbouring ranges whose upper
    /// neighbour starts at or below `bound`: the start of that upper neighbour (the gap's
    /// end). Gaps below the first range and above the last are the caller's.
    pub fn highest_gap_end(&self, len: u64, bound: u64) -> Option<u64> {
        fn go(n: NodeRef<'_, u64, u64, GapSummary>, len: u64, bound: u64) -> Option<u64> {
            if n.summary().max_gap < len || n.summary().first_start > bound {
                return None;
            }
            let (start, end) = (*n.key(), *n.value());
            if let Some(r) = n.right() {
                if r.summary().first_start <= bound {
                    if let Some(found) = go(r, len, bound) {
                        return Some(found);
                    }
                    if r.summary().first_start.saturating_sub(end) >= len {
                        return Some(r.summary().first_start);
                    }
                }
            }
            if start <= bound {
                if let Some(l) = n.left() {
                    if start.saturating_sub(l.summary().last_end) >= len {
                        return Some(start);
                    }
                }
            }
            go(n.left()?, len, bound)
        }
        go(self.tree.root()?, len, bound)
    }

    /// Every range in order (tests and consistency checks).
    pub fn for_each(&self, f: impl FnMut(&u64, &u64)) {
        self.tree.for_each(f)
    }
}

/// Summary of a set of ranges: their largest end.
pub struct MaxEnd;

impl<K: IntervalKey> Augment<K, u64> for MaxEnd {
    type Summary = u64;
    fn summarize(_: &K, end: &u64, l: Option<&u64>, r: Option<&u64>) -> u64 {
        (*end).max(l.copied().unwrap_or(0)).max(r.copied().unwrap_or(0))
    }
}

/// The key of an interval-tree entry: its start first, then anything that makes it unique.
pub trait IntervalKey: Ord {
    fn start(&self) -> u64;
}

/// Ranges `[start, end)` that may overlap, each with a unique key that orders by start
/// (Linux's interval tree): the entries that overlap a range are found in O(log n + k).
pub struct IntervalTree<K: IntervalKey> {
    tree: AugTree<K, u64, MaxEnd>,
}

impl<K: IntervalKey> Default for IntervalTree<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: IntervalKey> IntervalTree<K> {
    pub const fn new() -> Self {
        IntervalTree { tree: AugTree::new() }
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Adds the entry `key` covering `[key.start(), end)`; returns the end it replaced.
    pub fn insert(&mut self, key: K, end: u64) -> Option<u64> {
        self.tree.insert(key, end)
    }

    pub fn remove(&mut self, key: &K) -> Option<u64> {
        self.tree.remove(key)
    }

    /// Calls `f(key, end)` for every entry that overlaps `[first, last_excl)`, in key order.
    pub fn for_each_overlapping(&self, first: u64, last_excl: u64, mut f: impl FnMut(&K, u64)) {
        fn go<K: IntervalKey>(n: NodeRef<'_, K, u64, u64>, first: u64, last: u64, f: &mut dyn FnMut(&K, u64)) {
            if *n.summary() <= first {
                return;
            }
            if let Some(l) = n.left() {
                go(l, first, last, f);
            }
            if n.key().start() >= last {
                return;
            }
            if *n.value() > first {
                f(n.key(), *n.value());
            }
            if let Some(r) = n.right() {
                go(r, first, last, f);
            }
        }
        if first < last_excl {
            if let Some(root) = self.tree.root() {
                go(root, first, last_excl, &mut f);
            }
        }
    }

    /// Every entry in key order.
    pub fn for_each(&self, f: impl FnMut(&K, &u64)) {
        self.tree.for_each(f)
    }
}

#[cfg(test)]
mod tests;
