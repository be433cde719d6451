//! COM1 (16550 UART at I/O port 0x3f8): the kernel console. A dozen port
//! writes are simpler than a crate whose API changes between releases.

use super::cpu::{inb, outb};
use crate::sync::SpinLock as Mutex;

const COM1: u16 = 0x3f8;

pub struct Serial {
    port: u16,
}

impl Serial {
    fn init(&mut self) {
        let p = self.port;
        outb(p + 1, 0x00); // no UART interrupts
        outb(p + 3, 0x80); // DLAB on
        outb(p, 0x01); // divisor 1: 115200 baud
        outb(p + 1, 0x00);
        outb(p + 3, 0x03); // 8N1, DLAB off
        outb(p + 2, 0xc7); // FIFO on, cleared, 14-byte threshold
        outb(p + 4, 0x03); // DTR | RTS
    }

    fn write_byte(&mut self, b: u8) {
        // Transmit holding register empty (LSR bit 5); bounded so a missing
        // UART cannot hang the kernel.
        for _ in 0..100_000 {
            if inb(self.port + 5) & 0x20 != 0 {
                break;
            }
        }
        outb(self.port, b);
    }
}

impl core::fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}

static SERIAL: Mutex<Serial, crate::sync::order::Console> = Mutex::new(Serial { port: COM1 });

pub fn init() {
    SERIAL.lock().init();
}

/// Writes formatted text to the console with interrupts masked, so an
/// interrupt handler that logs cannot deadlock on the console lock.
pub fn write_fmt(args: core::fmt::Arguments) {
    super::cpu::without_interrupts(|| {
        let _ = core::fmt::Write::write_fmt(&mut *SERIAL.lock(), args);
    });
}

/// Used by the panic and exception paths: takes the console even if the
/// interrupted code held its lock, since nothing else will run afterwards.
pub fn write_fmt_emergency(args: core::fmt::Arguments) {
    // A second handle to the same port instead of the lock: byte writes to a
    // UART from two handles can only interleave characters.
    let mut s = Serial { port: COM1 };
    let _ = core::fmt::Write::write_fmt(&mut s, args);
}

/// Writes raw bytes (user output) to the console.
pub fn write_bytes(data: &[u8]) {
    super::cpu::without_interrupts(|| {
        let mut s = SERIAL.lock();
        for &b in data {
            if b == b'\n' {
                s.write_byte(b'\r');
            }
            s.write_byte(b);
        }
    });
}

/// Whether the UART has received a byte (LSR bit 0).
pub fn has_input() -> bool {
    inb(COM1 + 5) & 1 != 0
}

pub fn try_read_byte() -> Option<u8> {
    has_input().then(|| inb(COM1))
}
