//! Logging set-up: `tracing` to stderr, as text or JSON.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber; RUST_LOG, when set, overrides `log.level`.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Stderr that never fails: a log line that cannot be written (the reading end of a pipe
/// went away, a full disk behind a redirect) is dropped. Logging must never stop hookd, and
/// the fmt layer reports a failed write with `eprintln!`, which panics on a broken pipe.
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_write_always_reports_the_whole_line_written() {
        let mut w = LossyStderr;
        assert_eq!(w.write(b"").ok(), Some(0));
        assert_eq!(w.write(b"line\n").ok(), Some(5));
        assert!(w.flush().is_ok());
    }
}
