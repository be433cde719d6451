use super::*;

fn metas(n: usize) -> Vec<FrameMeta> {
    vec![FrameMeta::INIT; n]
}

fn snapshot(a: &FrameAllocator) -> [u64; MAX_ORDER + 1] {
    core::array::from_fn(|k| a.free_blocks(k))
}

fn counts(a: &FrameAllocator) -> (u64, u64, u64, [u64; MAX_ORDER + 1]) {
    (a.free_frames(), a.usable_frames(), a.allocated_frames(), snapshot(a))
}

/// Full structural check: list links, head alignment, block contents and counters, and
/// that no two free buddies of the same order coexist (i.e. coalescing is complete).
fn check_invariants(a: &FrameAllocator) {
    let mut free = 0;
    for k in 0..=MAX_ORDER {
        let (mut i, mut prev, mut n) = (a.heads[k], NIL, 0);
        while i != NIL {
            let m = a.meta[i as usize];
            assert_eq!((m.state, m.order as usize, m.prev), (State::FreeHead, k, prev));
            let pfn = a.pfn(i as usize);
            assert_eq!(pfn % (1 << k), 0, "free block {pfn} misaligned for order {k}");
            if k < MAX_ORDER {
                if let Some(b) = a.try_index(pfn ^ (1 << k)) {
                    let bm = a.meta[b];
                    assert!(!(bm.state == State::FreeHead && bm.order as usize == k), "uncoalesced {pfn}");
                }
            }
            (prev, i, n) = (i, m.next, n + 1);
        }
        assert_eq!(n, a.counts[k]);
        free += n << k;
    }
    assert_eq!(free, a.free_frames());
    let (mut i, mut usable, mut heads_free) = (0, 0, 0);
    while i < a.meta.len() {
        let m = a.meta[i];
        match m.state {
            State::Reserved => i += 1,
            State::Tail => panic!("tail frame {} outside any block", a.pfn(i)),
            State::FreeHead | State::AllocHead => {
                let size = 1usize << m.order;
                assert!(i + size <= a.meta.len());
                assert!(a.meta[i + 1..i + size].iter().all(|t| t.state == State::Tail));
                if m.state == State::FreeHead {
                    heads_free += size as u64;
                }
                usable += size as u64;
                i += size;
            }
        }
    }
    assert_eq!(heads_free, a.free_frames());
    assert_eq!(usable, a.usable_frames());
}

/// Tiny xorshift64 PRNG so the stress test is deterministic and dependency-free.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn frame_meta_is_small() {
    assert!(core::mem::size_of::<FrameMeta>() <= 12);
}

#[test]
fn new_allocator_has_nothing_usable() {
    let mut m = metas(64);
    let mut a = FrameAllocator::new(&mut m, 0);
    assert_eq!((a.free_frames(), a.usable_frames()), (0, 0));
    assert_eq!(a.alloc(0), Err(AllocError::OutOfMemory));
    assert_eq!(a.free(5, 0), Err(FreeError::Reserved));
}

#[test]
fn add_free_range_uses_largest_aligned_blocks() {
    let mut m = metas(2048);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 1024);
    assert_eq!(snapshot(&a)[..11], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    // [1025, 1100): 1025 | 1026..1028 | 1028..1032 | 1032..1040 | 1040..1056 | 1056..1088 | 1088..1096 | 1096..1100
    a.add_free_range(1025, 1100);
    assert_eq!(snapshot(&a)[..11], [1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1]);
    assert_eq!(a.free_frames(), 1024 + 75);
    check_invariants(&a);
}

#[test]
fn add_free_range_merges_with_free_neighbours() {
    let mut m = metas(1024);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(512, 1024);
    a.add_free_range(0, 511);
    a.add_free_range(511, 512);
    assert_eq!(a.free_blocks(10), 1);
    assert_eq!(a.free_frames(), 1024);
    check_invariants(&a);
}

#[test]
fn add_free_range_skips_frames_already_free_or_allocated() {
    let mut m = metas(256);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 128);
    let p = a.alloc(3).unwrap();
    let before = counts(&a);
    a.add_free_range(0, 128);
    assert_eq!(counts(&a), before);
    assert!(a.is_allocated(p));
    a.add_free_range(100, 256); // overlaps the old range, adds only [128, 256)
    assert_eq!(a.usable_frames(), 256);
    check_invariants(&a);
    a.free(p, 3).unwrap();
    assert_eq!(a.free_blocks(8), 1);
}

#[test]
fn add_free_range_is_clipped_to_covered_range() {
    let mut m = metas(100);
    let mut a = FrameAllocator::new(&mut m, 50);
    a.add_free_range(0, 10_000);
    assert_eq!(a.usable_frames(), 100);
    a.add_free_range(300, 200); // empty
    a.add_free_range(u64::MAX - 5, u64::MAX);
    assert_eq!(a.usable_frames(), 100);
    check_invariants(&a);
}

#[test]
fn exhaustion_returns_out_of_memory_without_panicking() {
    let mut m = metas(1000);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 1000);
    for order in [4, 0] {
        let mut n = 0;
        while let Ok(p) = a.alloc(order) {
            assert_eq!(p % (1 << order), 0);
            n += 1 << order;
        }
        assert_eq!(a.alloc(order), Err(AllocError::OutOfMemory));
        assert!(n > 0);
    }
    assert_eq!(a.allocated_frames(), a.usable_frames());
    assert_eq!((a.free_frames(), a.usable_frames()), (0, 1000));
    assert_eq!(a.alloc(MAX_ORDER), Err(AllocError::OutOfMemory));
    check_invariants(&a);
}

#[test]
fn order_above_max_is_rejected() {
    let mut m = metas(16);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 16);
    assert_eq!(a.alloc(MAX_ORDER + 1), Err(AllocError::OrderTooLarge));
    assert_eq!(a.alloc_below(usize::MAX, 8), Err(AllocError::OrderTooLarge));
    let p = a.alloc(0).unwrap();
    assert_eq!(p, 0);
    assert_eq!(a.free(p, MAX_ORDER + 1), Err(FreeError::WrongOrder));
    assert_eq!(a.free(p, usize::MAX), Err(FreeError::WrongOrder));
}

#[test]
fn max_order_blocks_are_one_gib() {
    let n = 2usize << MAX_ORDER;
    let mut m = metas(n + 7);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, n as u64 + 7);
    assert_eq!(a.free_blocks(MAX_ORDER), 2);
    assert_eq!((1u64 << MAX_ORDER) * PAGE_SIZE, 1 << 30);
    let p = a.alloc(MAX_ORDER).unwrap();
    let q = a.alloc(0).unwrap();
    assert!(a.is_allocated(p + 12345));
    a.free(q, 0).unwrap();
    a.free(p, MAX_ORDER).unwrap();
    assert_eq!(a.free_blocks(MAX_ORDER), 2);
    check_invariants(&a);
}

#[test]
fn freed_frames_coalesce_into_one_block() {
    const K: usize = 9;
    let mut m = metas(3 << K);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(1 << K, 2 << K); // an aligned 2^K range
    let mut pfns: Vec<u64> = (0..1 << K).map(|_| a.alloc(0).unwrap()).collect();
    assert_eq!(a.alloc(0), Err(AllocError::OutOfMemory));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in (1..pfns.len()).rev() {
        pfns.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for p in pfns {
        a.free(p, 0).unwrap();
    }
    let mut expected = [0; MAX_ORDER + 1];
    expected[K] = 1;
    assert_eq!(snapshot(&a), expected);
    assert_eq!(a.alloc(K), Ok(1 << K));
}

#[test]
fn split_returns_upper_halves_and_hands_out_low_frames() {
    let mut m = metas(16);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 16);
    assert_eq!(a.alloc(0), Ok(0));
    assert_eq!(snapshot(&a)[..5], [1, 1, 1, 1, 0]);
    assert_eq!(a.alloc(0), Ok(1));
    assert_eq!(a.alloc(1), Ok(2));
    check_invariants(&a);
}

#[test]
fn double_free_is_detected_and_state_unchanged() {
    let mut m = metas(64);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 64);
    let p = a.alloc(2).unwrap();
    let keep = a.alloc(2).unwrap();
    a.free(p, 2).unwrap();
    let before = counts(&a);
    assert_eq!(a.free(p, 2), Err(FreeError::DoubleFree));
    assert_eq!(a.free(p + 1, 0), Err(FreeError::DoubleFree)); // tail of a free block
    assert_eq!(counts(&a), before);
    // After merging, the old head is an interior frame of a larger free block.
    a.free(keep, 2).unwrap();
    assert_eq!(a.free_blocks(6), 1);
    assert_eq!(a.free(keep, 2), Err(FreeError::DoubleFree));
    check_invariants(&a);
}

#[test]
fn freeing_a_tail_frame_is_not_allocated() {
    let mut m = metas(64);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 64);
    let p = a.alloc(3).unwrap();
    let before = counts(&a);
    for t in 1..8 {
        assert_eq!(a.free(p + t, 0), Err(FreeError::NotAllocated));
    }
    assert_eq!(a.free(p + 4, 2), Err(FreeError::NotAllocated));
    assert_eq!(counts(&a), before);
    assert_eq!(a.allocated_block(p + 5), Some((p, 3)));
    a.free(p, 3).unwrap();
    check_invariants(&a);
}

#[test]
fn wrong_order_is_detected() {
    let mut m = metas(64);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 64);
    let p = a.alloc(2).unwrap();
    let before = counts(&a);
    assert_eq!(a.free(p, 1), Err(FreeError::WrongOrder));
    assert_eq!(a.free(p, 0), Err(FreeError::WrongOrder));
    assert_eq!(p % 8, 0);
    assert_eq!(a.free(p, 3), Err(FreeError::WrongOrder));
    assert_eq!(counts(&a), before);
    a.free(p, 2).unwrap();
}

#[test]
fn misaligned_free_is_detected() {
    let mut m = metas(64);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 64);
    let p = a.alloc(0).unwrap();
    let q = a.alloc(0).unwrap();
    assert_eq!(q % 2, 1);
    let before = counts(&a);
    assert_eq!(a.free(q, 1), Err(FreeError::Misaligned));
    assert_eq!(a.free(p + 2, 2), Err(FreeError::Misaligned));
    assert_eq!(counts(&a), before);
    a.free(q, 0).unwrap();
    a.free(p, 0).unwrap();
}

#[test]
fn out_of_range_free_is_detected() {
    let mut m = metas(64);
    let mut a = FrameAllocator::new(&mut m, 100);
    a.add_free_range(100, 164);
    let before = counts(&a);
    for pfn in [0, 99, 164, 1000, u64::MAX] {
        assert_eq!(a.free(pfn, 0), Err(FreeError::OutOfRange));
        assert!(!a.is_allocated(pfn));
    }
    assert_eq!(counts(&a), before);
}

#[test]
fn reserved_frames_are_never_handed_out() {
    let mut m = metas(1024);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(1, 100);
    a.add_free_range(300, 1000);
    assert_eq!(a.usable_frames(), 99 + 700);
    check_invariants(&a);
    let usable = |p: u64| (1..100).contains(&p) || (300..1000).contains(&p);
    let mut got = 0;
    for order in (0..=MAX_ORDER).rev() {
        while let Ok(p) = a.alloc(order) {
            assert!((p..p + (1 << order)).all(usable), "block {p} order {order}");
            got += 1 << order;
        }
    }
    assert_eq!(got, a.usable_frames());
    for pfn in [0, 100, 200, 299, 1000, 1023] {
        assert_eq!(a.free(pfn, 0), Err(FreeError::Reserved));
        assert!(!a.is_allocated(pfn));
    }
}

#[test]
fn unaligned_base_pfn_keeps_absolute_alignment() {
    let mut m = metas(100);
    let mut a = FrameAllocator::new(&mut m, 3);
    a.add_free_range(0, 200);
    // [3,103): 3 | 4..8 | 8..16 | 16..32 | 32..64 | 64..96 | 96..100 | 100..102 | 102
    assert_eq!(snapshot(&a)[..7], [2, 1, 2, 1, 1, 2, 0]);
    assert_eq!(a.alloc(5), Ok(32));
    let p = a.alloc(3).unwrap();
    assert_eq!(p % 8, 0);
    let mut live = vec![];
    while let Ok(p) = a.alloc(0) {
        live.push(p);
    }
    assert!(live.contains(&3) && live.contains(&102));
    assert_eq!(a.free_frames(), 0);
    for q in live {
        a.free(q, 0).unwrap();
    }
    a.free(p, 3).unwrap();
    a.free(32, 5).unwrap();
    assert_eq!(snapshot(&a)[..7], [2, 1, 2, 1, 1, 2, 0]);
    check_invariants(&a);
}

#[test]
fn alloc_below_respects_its_limit() {
    let mut m = metas(1024);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(0, 1024);
    // Make low blocks sit deep in the lists: free high blocks last (LIFO).
    let blocks: Vec<u64> = (0..16).map(|_| a.alloc(6).unwrap()).collect();
    for &b in &blocks {
        a.free(b, 6).unwrap();
    }
    check_invariants(&a);
    for _ in 0..10 {
        let p = a.alloc_below(0, 10).unwrap();
        assert!(p < 10);
    }
    assert_eq!(a.alloc_below(0, 10), Err(AllocError::OutOfMemory));
    // Order 2 block's last frame must be < 14: only [12, 16) is too high, so nothing fits.
    assert_eq!(a.alloc_below(2, 14), Err(AllocError::OutOfMemory));
    assert_eq!(a.alloc_below(2, 16), Ok(12));
    let q = a.alloc_below(4, 100).unwrap();
    assert!(q + 16 <= 100);
    assert_eq!(a.alloc_below(0, 0), Err(AllocError::OutOfMemory));
    check_invariants(&a);
}

#[test]
fn is_allocated_tracks_whole_blocks() {
    let mut m = metas(64);
    let mut a = FrameAllocator::new(&mut m, 0);
    a.add_free_range(8, 64);
    let p = a.alloc(3).unwrap();
    assert!((p..p + 8).all(|f| a.is_allocated(f)));
    assert!(!a.is_allocated(p + 8) && !a.is_allocated(0));
    a.free(p, 3).unwrap();
    assert!(!(p..p + 8).any(|f| a.is_allocated(f)));
    assert_eq!(a.allocated_block(p), None);
}

#[test]
fn randomized_stress_keeps_blocks_disjoint_and_fully_coalesces() {
    const N: usize = 5000;
    const BASE: u64 = 5;
    let mut m = metas(N);
    let mut a = FrameAllocator::new(&mut m, BASE);
    a.add_free_range(BASE, 1200);
    a.add_free_range(1300, 1301);
    a.add_free_range(1500, 4097);
    a.add_free_range(4200, BASE + N as u64);
    check_invariants(&a);
    let initial = snapshot(&a);
    let usable = a.usable_frames();

    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut owner = vec![false; N + BASE as usize];
    let mut live: Vec<(u64, usize)> = vec![];
    let (mut below_ok, mut ooms, mut bogus) = (0, 0, 0);
    for step in 0..40_000 {
        let r = rng.below(100);
        if r < 50 || live.is_empty() {
            let order = [0, 0, 0, 1, 1, 2, 3, 4, 6, 9][rng.below(10) as usize];
            let limit = if r.is_multiple_of(5) { Some(BASE + rng.below(N as u64)) } else { None };
            let res = match limit {
                Some(l) => a.alloc_below(order, l),
                None => a.alloc(order),
            };
            match res {
                Ok(p) => {
                    assert_eq!(p % (1 << order), 0);
                    if let Some(l) = limit {
                        assert!(p + (1 << order) <= l);
                    }
                    for f in p..p + (1 << order) {
                        assert!(!std::mem::replace(&mut owner[f as usize], true), "overlap at {f}");
                        assert!(a.is_allocated(f));
                    }
                    live.push((p, order));
                    below_ok += limit.is_some() as u32;
                }
                Err(e) => {
                    assert_eq!(e, AllocError::OutOfMemory);
                    ooms += 1;
                }
            }
        } else if r < 95 {
            let (p, order) = live.swap_remove(rng.below(live.len() as u64) as usize);
            a.free(p, order).unwrap();
            for f in p..p + (1 << order) {
                owner[f as usize] = false;
            }
        } else {
            // Bogus free: must be rejected without any change unless it is a real block.
            let (p, order) = (rng.below(N as u64 + 20), rng.below(8) as usize);
            if !live.contains(&(p, order)) {
                let before = counts(&a);
                assert!(a.free(p, order).is_err(), "bogus free({p}, {order}) accepted");
                assert_eq!(counts(&a), before);
                bogus += 1;
            }
        }
        assert_eq!(a.allocated_frames(), live.iter().map(|&(_, o)| 1u64 << o).sum::<u64>());
        if step % 500 == 0 {
            check_invariants(&a);
        }
    }
    assert!(below_ok > 100 && ooms > 100 && bogus > 100, "{below_ok} {ooms} {bogus}");
    for (p, order) in live.drain(..) {
        a.free(p, order).unwrap();
    }
    check_invariants(&a);
    assert_eq!(a.free_frames(), a.usable_frames());
    assert_eq!(a.usable_frames(), usable);
    assert_eq!(snapshot(&a), initial);
}
