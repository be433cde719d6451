//! The CMOS real-time clock (ports 0x70/0x71), read once at boot for the
//! wall-clock epoch. Handles BCD and 12-hour modes.

use super::cpu::{inb, outb};

fn read_reg(r: u8) -> u8 {
    outb(0x70, r);
    inb(0x71)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Howard Hinnant's algorithm: days since 1970-01-01.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Seconds since the Unix epoch, or None if no RTC answers sensibly.
pub fn read_epoch_seconds() -> Option<i64> {
    // Wait for no update in progress (bounded).
    for _ in 0..100_000 {
        if read_reg(0x0a) & 0x80 == 0 {
            break;
        }
    }
    let status_b = read_reg(0x0b);
    let bcd = status_b & 0x04 == 0;
    let conv = |v: u8| if bcd { (v & 0x0f) + (v >> 4) * 10 } else { v };
    let sec = conv(read_reg(0x00)) as i64;
    let min = conv(read_reg(0x02)) as i64;
    let hour_raw = read_reg(0x04);
    let mut hour = conv(hour_raw & 0x7f) as i64;
    if status_b & 0x02 == 0 && hour_raw & 0x80 != 0 {
        hour = (hour % 12) + 12;
    }
    let day = conv(read_reg(0x07)) as i64;
    let month = conv(read_reg(0x08)) as i64;
    let year = 2000 + conv(read_reg(0x09)) as i64;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec)
}
