//! The configuration of an unattended booth: how long photos stay (`[storage]`), development
//! switches (`[dev]`), who may reach the kiosk API, whether orders wait for a synchronised clock,
//! and whether Payme is the sandbox. Part of `config`, split out to keep that file small.

use serde::Deserialize;

use super::{Config, Http};

/// How long photos stay on the card and how much room must stay free (see `booth::janitor`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// A paid order's composed page stays this many days, so reprints work.
    #[serde(default = "default_keep_pages_days")]
    pub keep_pages_days: u32,
    /// Keep every file of every session at least this many hours (0: only as long as needed).
    #[serde(default)]
    pub keep_hours: u32,
    /// Below this much free space on the data directory's file system no session starts.
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            keep_pages_days: default_keep_pages_days(),
            keep_hours: 0,
            min_free_mb: default_min_free_mb(),
        }
    }
}

fn default_keep_pages_days() -> u32 {
    7
}
fn default_min_free_mb() -> u64 {
    500
}

/// Development switches. Off unless a configuration file turns them on; `photoboothd` run with no
/// configuration file at all (the README's first command) turns them on and says so.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dev {
    /// `POST /api/dev/button` (with the simulated GPIO).
    #[serde(default)]
    pub enabled: bool,
}

impl Storage {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.keep_pages_days > 3650 || self.keep_hours > 24 * 3650 {
            return Err("storage.keep_pages_days and storage.keep_hours must be at most ten years".into());
        }
        Ok(())
    }
}

/// The kiosk API has no password: off loopback only when the owner says so.
pub(super) fn check_kiosk_listen(http: &Http) -> Result<(), String> {
    if !http.kiosk_listen.ip().is_loopback() && !http.allow_lan {
        return Err(format!(
            "http.kiosk_listen {} is not a loopback address; the kiosk API has no password, so serving it on the network needs http.allow_lan = true",
            http.kiosk_listen
        ));
    }
    Ok(())
}

impl Config {
    /// Whether orders wait for a synchronised clock: as configured, else only under systemd
    /// (`NOTIFY_SOCKET` or `INVOCATION_ID` set), where the unit orders itself after time-sync.target.
    pub fn requires_synced_clock(&self) -> bool {
        self.booth.require_synced_clock.unwrap_or_else(|| {
            std::env::var_os("NOTIFY_SOCKET").is_some() || std::env::var_os("INVOCATION_ID").is_some()
        })
    }

    /// Whether checkout links go to Payme's sandbox (test cards, no real money).
    pub fn is_sandbox(&self) -> bool {
        self.payme.checkout_base.contains("test.paycom.uz")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use std::path::Path;

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
