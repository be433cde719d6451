//! `log` backend on the serial console: `[seconds.micros] LEVEL target: message`.

use crate::arch::{apic, serial};

struct SerialLogger;

impl log::Log for SerialLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let ns = apic::uptime_ns();
            serial::write_fmt(format_args!(
                "[{:5}.{:06}] {:5} {}: {}\n",
                ns / 1_000_000_000,
                ns / 1000 % 1_000_000,
                r.level(),
                r.target().trim_start_matches("kernel::"),
                r.args()
            ));
        }
    }

    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;

pub fn init(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
