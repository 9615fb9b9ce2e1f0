//! What the configuration says about an unattended booth beyond single keys: whether orders wait
//! for a synchronised clock (which depends on how the daemon was started) and whether Payme is
//! the sandbox.

use super::Config;

impl Config {
    /// Whether orders wait for a synchronised clock: as configured, else only under systemd
    /// (`NOTIFY_SOCKET` or `INVOCATION_ID` set): a Pi's clock comes up on the last saved time, and
    /// the unit starts without waiting for the network time (docs/deploy.md, "The clock").
    pub fn requires_synced_clock(&self) -> bool {
        self.booth.require_synced_clock.unwrap_or_else(|| {
            std::env::var_os("NOTIFY_SOCKET").is_some() || std::env::var_os("INVOCATION_ID").is_some()
        })
    }

    /// Whether checkout links go to Payme's sandbox (test cards, no real money).
    pub fn is_sandbox(&self) -> bool {
        crate::payme::checkout::is_sandbox(&self.payme.checkout_base)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, DEFAULT_TOML};

    #[test]
    fn a_kiosk_off_loopback_needs_allow_lan() {
        let lan = DEFAULT_TOML.replace("kiosk_listen = \"127.0.0.1:8080\"", "kiosk_listen = \"0.0.0.0:8080\"");
        let msg = Config::parse(&lan, "x.toml").unwrap_err().to_string();
        assert!(msg.contains("http.allow_lan"), "{msg}");
        let allowed = lan.replace("allow_lan = false", "allow_lan = true");
        assert!(Config::parse(&allowed, "x.toml").is_ok());
    }

    #[test]
    fn storage_dev_and_clock_defaults_are_the_documented_ones() {
        let c = Config::built_in().unwrap();
        assert_eq!(
            (c.storage.keep_pages_days, c.storage.keep_hours, c.storage.min_free_mb),
            (7, 0, 500)
        );
        assert!(!c.dev.enabled);
        assert!(!c.http.allow_lan);
        assert_eq!(c.booth.require_synced_clock, None);
        assert_eq!(
            c.booth.clock_synced_file,
            Path::new("/run/systemd/timesync/synchronized")
        );
        assert!(c.is_sandbox());
    }
}
