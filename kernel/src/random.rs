//! Kernel random numbers for AT_RANDOM, getrandom and /dev/urandom:
//! xoshiro256** seeded from RDRAND when the CPU has it, else the TSC.
//! Not a cryptographic generator; enough for tests and stack canaries here.

use crate::sync::SpinLock as Mutex;

static STATE: Mutex<[u64; 4], crate::sync::order::Random> = Mutex::new([0; 4]);

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn init() {
    let mut seed = crate::arch::cpu::hardware_random().unwrap_or_else(crate::arch::cpu::rdtsc);
    let mut s = STATE.lock();
    for w in s.iter_mut() {
        *w = splitmix(&mut seed);
    }
}

fn next(s: &mut [u64; 4]) -> u64 {
    let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    r
}

pub fn fill(buf: &mut [u8]) {
    let mut s = STATE.lock();
    for chunk in buf.chunks_mut(8) {
        let v = next(&mut s).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}
