use super::*;
use std::collections::BTreeMap;

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Checks the AVL invariants and every stored summary against a recomputation; returns
/// the height.
fn check<K: Ord + Clone + core::fmt::Debug, V, A: Augment<K, V>>(link: &Link<K, V, A::Summary>) -> u8
where
    A::Summary: PartialEq + core::fmt::Debug,
{
    let Some(n) = link else { return 0 };
    let (hl, hr) = (check::<K, V, A>(&n.left), check::<K, V, A>(&n.right));
    assert!(hl.abs_diff(hr) <= 1, "unbalanced at {:?}", n.key);
    assert_eq!(n.height, 1 + hl.max(hr));
    if let Some(l) = &n.left {
        assert!(l.key < n.key);
    }
    if let Some(r) = &n.right {
        assert!(r.key > n.key);
    }
    let s = A::summarize(&n.key, &n.value, n.left.as_ref().map(|c| &c.summary), n.right.as_ref().map(|c| &c.summary));
    assert_eq!(s, n.summary, "summary at {:?}", n.key);
    n.height
}

/// Sum of keys in the subtree, to test the summary machinery on its own.
struct Sum;
impl Augment<u32, u32> for Sum {
    type Summary = u64;
    fn summarize(_: &u32, v: &u32, l: Option<&u64>, r: Option<&u64>) -> u64 {
        *v as u64 + l.copied().unwrap_or(0) + r.copied().unwrap_or(0)
    }
}

#[test]
fn tree_matches_a_btreemap_and_stays_balanced_through_random_inserts_updates_and_removes() {
    let mut rng = Rng(0x1234_5678);
    let mut tree: AugTree<u32, u32, Sum> = AugTree::new();
    let mut model = BTreeMap::new();
    for step in 0..20_000 {
        let k = rng.below(2_000) as u32;
        match rng.below(4) {
            0 | 1 => {
                let v = rng.below(1000) as u32;
                assert_eq!(tree.insert(k, v), model.insert(k, v));
            }
            2 => assert_eq!(tree.remove(&k), model.remove(&k)),
            _ => {
                let found = tree.update(&k, |v| *v += 1);
                assert_eq!(found, model.get_mut(&k).map(|v| *v += 1).is_some());
            }
        }
        assert_eq!(tree.len(), model.len());
        if step % 500 == 0 {
            check::<u32, u32, Sum>(&tree.root);
            assert_eq!(tree.root().map_or(0, |r| *r.summary()), model.values().map(|&v| v as u64).sum::<u64>());
            let mut items = Vec::new();
            tree.for_each(|k, v| items.push((*k, *v)));
            assert_eq!(items, model.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
        }
    }
    for k in 0..2_000 {
        assert_eq!(tree.get(&k), model.get(&k));
    }
}

#[test]
fn sequential_inserts_keep_the_height_logarithmic() {
    let mut tree: AugTree<u32, u32, Sum> = AugTree::new();
    for k in 0..65_536 {
        tree.insert(k, 1);
    }
    // AVL: height < 1.45 log2(n + 2).
    assert!(tree.root.as_ref().unwrap().height <= 24, "height {}", tree.root.as_ref().unwrap().height);
    check::<u32, u32, Sum>(&tree.root);
    for k in (0..65_536).step_by(2) {
        tree.remove(&k);
    }
    check::<u32, u32, Sum>(&tree.root);
    assert_eq!(tree.len(), 32_768);
}

/// The free-area search as a linear walk over sorted ranges: the highest gap between
/// neighbours, of at least `len`, whose upper neighbour starts at or below `bound`.
fn brute_highest_gap_end(ranges: &BTreeMap<u64, u64>, len: u64, bound: u64) -> Option<u64> {
    let v: Vec<(u64, u64)> = ranges.iter().map(|(s, e)| (*s, *e)).collect();
    v.windows(2).rev().find(|w| w[1].0 <= bound && w[1].0 - w[0].1 >= len).map(|w| w[1].0)
}

#[test]
fn gap_search_finds_the_highest_fitting_gap_below_a_bound_as_a_linear_walk_does() {
    let mut rng = Rng(0xfeed);
    for round in 0..40 {
        let mut tree = GapTree::new();
        let mut model: BTreeMap<u64, u64> = BTreeMap::new();
        for _ in 0..400 {
            // Page-granular ranges in a 4096-page space, kept disjoint.
            let s = rng.below(4096);
            let e = (s + 1 + rng.below(if round % 2 == 0 { 4 } else { 64 })).min(4096);
            let clash = model.range(..e).next_back().is_some_and(|(_, &pe)| pe > s);
            match rng.below(5) {
                0 => {
                    if let Some((&k, _)) = model.range(s..).next() {
                        assert_eq!(tree.remove(k), model.remove(&k));
                    }
                }
                1 => {
                    // Grow or shrink one range up to its neighbour.
                    if let Some((&k, _)) = model.range(s..).next() {
                        let limit = model.range(k + 1..).next().map_or(4096, |(&n, _)| n);
                        let new = (k + 1 + rng.below(8)).min(limit).max(k + 1);
                        assert!(tree.set_end(k, new));
                        model.insert(k, new);
                    }
                }
                _ if !clash => {
                    tree.insert(s, e);
                    model.insert(s, e);
                }
                _ => {}
            }
            check::<u64, u64, GapAugment>(&tree.tree.root);
            for _ in 0..8 {
                let (len, bound) = (1 + rng.below(40), rng.below(4200));
                assert_eq!(
                    tree.highest_gap_end(len, bound),
                    brute_highest_gap_end(&model, len, bound),
                    "len {len} bound {bound} ranges {model:?}"
                );
            }
        }
        assert_eq!(tree.len(), model.len());
    }
}

#[test]
fn gap_search_on_tens_of_thousands_of_adjacent_ranges_finds_the_one_hole() {
    let mut tree = GapTree::new();
    for i in 0..60_000u64 {
        tree.insert(0x1000 + i * 0x1000, 0x2000 + i * 0x1000);
    }
    assert_eq!(tree.highest_gap_end(0x1000, u64::MAX), None);
    tree.remove(0x1000 + 123 * 0x1000);
    assert_eq!(tree.highest_gap_end(0x1000, u64::MAX), Some(0x1000 + 124 * 0x1000));
    assert_eq!(tree.highest_gap_end(0x2000, u64::MAX), None);
    assert_eq!(tree.highest_gap_end(0x1000, 0x1000 + 124 * 0x1000 - 1), None);
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64, u32);
impl IntervalKey for Key {
    fn start(&self) -> u64 {
        self.0
    }
}

#[test]
fn interval_query_reports_exactly_the_overlapping_entries_in_order() {
    let mut rng = Rng(0xabcdef);
    let mut tree = IntervalTree::new();
    let mut model: BTreeMap<Key, u64> = BTreeMap::new();
    for step in 0..6_000u32 {
        let s = rng.below(1000);
        if rng.below(3) == 0 {
            if let Some(k) = model.range(Key(s, 0)..).next().map(|(k, _)| k.clone()) {
                assert_eq!(tree.remove(&k), model.remove(&k));
            }
        } else {
            let k = Key(s, step);
            let e = s + 1 + rng.below(if step % 3 == 0 { 300 } else { 5 });
            tree.insert(k.clone(), e);
            model.insert(k, e);
        }
        check::<Key, u64, MaxEnd>(&tree.tree.root);
        let (first, last) = {
            let a = rng.below(1100);
            (a, a + 1 + rng.below(50))
        };
        let mut got = Vec::new();
        tree.for_each_overlapping(first, last, |k, e| got.push((k.clone(), e)));
        let want: Vec<(Key, u64)> =
            model.iter().filter(|(k, &e)| k.0 < last && e > first).map(|(k, &e)| (k.clone(), e)).collect();
        assert_eq!(got, want, "[{first}, {last})");
    }
}
