//! Log output. Under systemd (`JOURNAL_STREAM` set) records go to journald natively, so every
//! field is searchable: `journalctl -u photoboothd ORDER_ID=42` (tracing-journald upper-cases
//! field names). Elsewhere, human-readable lines on stderr. `RUST_LOG` sets the level (default
//! `info`): a level, or `target=level` pairs separated by commas (`warn,photoboothd=debug`). That is
//! `Targets`' syntax; the full `EnvFilter` grammar would bring the regex engine into the binary
//! (about 1 MiB on aarch64) for span-field filters nobody uses on a booth. Nothing logged anywhere may contain the Payme key or the Authorization header.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init(default_level: &str) {
    let filter = || filter(std::env::var("RUST_LOG").ok().as_deref(), default_level);
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
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = tracing_subscriber::registry().with(filter()).with(fmt).try_init();
}

/// The filter `RUST_LOG` asks for; an unparsable value is reported once and the default used, so a
/// typo in the unit file cannot silence the daemon.
fn filter(rust_log: Option<&str>, default_level: &str) -> Targets {
    let default = || {
        default_level
            .parse()
            .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
    };
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        None => default(),
        Some(spec) => spec.parse().unwrap_or_else(|e| {
            eprintln!(
                "photoboothd: RUST_LOG={spec:?} is not a level or target=level list ({e}); using {default_level}"
            );
            default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::filter;
    use tracing::Level;

    #[test]
    fn rust_log_takes_a_level_or_targets_and_falls_back_on_nonsense() {
        assert!(filter(None, "info").would_enable("photoboothd", &Level::INFO));
        assert!(!filter(None, "info").would_enable("photoboothd", &Level::DEBUG));
        let t = filter(Some("warn,photoboothd=debug"), "info");
        assert!(t.would_enable("photoboothd::payme", &Level::DEBUG));
        assert!(!t.would_enable("hyper", &Level::INFO));
        assert!(filter(Some("photoboothd=loud"), "info").would_enable("x", &Level::INFO));
    }
}
