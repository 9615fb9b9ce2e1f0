//! Log output. Under systemd (`JOURNAL_STREAM` set) records go to journald natively, so every
//! field is searchable: `journalctl -u photoboothd ORDER_ID=42` (tracing-journald upper-cases
//! field names). Elsewhere, human-readable lines on stderr. `RUST_LOG` sets the level (default
//! `info`). Nothing logged anywhere may contain the Payme key or the Authorization header.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journald) => {
                let journald = journald.with_syslog_identifier("photoboothd".into());
                if tracing_subscriber::registry()
                    .with(filter())
                    .with(journald)
                    .try_init()
                    .is_ok()
                {
                    return;
                }
            }
            // No journald socket (a container, a chroot): fall back to stderr, which systemd
            // still captures into the journal, just without fields.
            Err(e) => eprintln!("photoboothd: journald unavailable ({e}); logging to stderr"),
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}
