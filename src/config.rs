//! The one configuration file: parsing, validation and the built-in defaults.
//!
//! `assets/photobooth.toml` is embedded and parsed first; a user file is parsed the same way, so the
//! defaults and the documented example can never drift apart. Every error names the file and the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The documented example, which is also the configuration `photoboothd` runs on with no arguments.
pub const DEFAULT_TOML: &str = include_str!("../assets/photobooth.toml");

/// Where a configuration came from, for error messages.
const BUILT_IN: &str = "<built-in defaults>";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub booth: Booth,
    pub http: Http,
    pub payme: Payme,
    pub printer: Printer,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Booth {
    #[serde(default = "default_name")]
    pub name: String,
    /// Whole sum; converted to tiyin with integer math only.
    #[serde(default = "default_price")]
    pub price_per_copy: i64,
    #[serde(default = "default_max_copies")]
    pub max_copies: u32,
    #[serde(default = "default_order_ttl")]
    pub order_ttl_s: u32,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    #[serde(default = "default_kiosk_listen")]
    pub kiosk_listen: SocketAddr,
    #[serde(default = "default_webhook_listen")]
    pub webhook_listen: SocketAddr,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payme {
    #[serde(default)]
    pub merchant_id: String,
    pub key: Option<String>,
    pub key_file: Option<PathBuf>,
    #[serde(default = "default_checkout_base")]
    pub checkout_base: String,
    #[serde(default = "default_account_field")]
    pub account_field: String,
    pub fiscal: Option<Fiscal>,
}

// Hand-written so that `{:?}` of a config can never print the key.
impl fmt::Debug for Payme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payme")
            .field("merchant_id", &self.merchant_id)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_file", &self.key_file)
            .field("checkout_base", &self.checkout_base)
            .field("account_field", &self.account_field)
            .field("fiscal", &self.fiscal)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fiscal {
    pub title: String,
    pub ikpu: String,
    pub package_code: String,
    pub vat_percent: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Printer {
    #[serde(default)]
    pub backend: PrinterBackend,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrinterBackend {
    #[default]
    File,
}

fn default_name() -> String {
    "Photo Booth".into()
}
fn default_price() -> i64 {
    20_000
}
fn default_max_copies() -> u32 {
    10
}
fn default_order_ttl() -> u32 {
    600
}
fn default_kiosk_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_webhook_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}
fn default_checkout_base() -> String {
    "https://test.paycom.uz".into()
}
fn default_account_field() -> String {
    "order_id".into()
}

/// A configuration that cannot be used, with the file it came from.
#[derive(Debug)]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source_name, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The embedded defaults.
    pub fn built_in() -> Result<Config, ConfigError> {
        Config::parse(DEFAULT_TOML, BUILT_IN)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            message: format!("cannot read the file: {e}"),
        })?;
        Config::parse(&text, &name)
    }

    /// `path` when given, otherwise the built-in defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None => Config::built_in(),
        }
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError {
            source_name: source_name.to_string(),
            // toml's message already names the key and shows the line.
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate().map_err(|message| ConfigError {
            source_name: source_name.to_string(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let b = &self.booth;
        if b.price_per_copy <= 0 {
            return Err("booth.price_per_copy must be a whole number of sum above 0".into());
        }
        // The largest order must fit Payme's amount (tiyin) in an i64 with room to spare.
        if b.price_per_copy > 100_000_000 {
            return Err("booth.price_per_copy is above 100 000 000 sum; is it given in tiyin?".into());
        }
        if !(1..=100).contains(&b.max_copies) {
            return Err("booth.max_copies must be between 1 and 100".into());
        }
        if !(30..=86_400).contains(&b.order_ttl_s) {
            return Err("booth.order_ttl_s must be between 30 and 86400 seconds".into());
        }
        if b.name.trim().is_empty() {
            return Err("booth.name must not be empty".into());
        }
        // Port 0 (the OS picks) is allowed on both, for tests.
        if self.http.kiosk_listen == self.http.webhook_listen && self.http.kiosk_listen.port() != 0 {
            return Err("http.kiosk_listen and http.webhook_listen must differ".into());
        }
        let p = &self.payme;
        if !(p.checkout_base.starts_with("https://") || p.checkout_base.starts_with("http://")) {
            return Err("payme.checkout_base must be an http(s) URL".into());
        }
        // These end up inside the base64 checkout parameters, where `;` and `=` are separators.
        for (key, value) in [
            ("payme.merchant_id", &p.merchant_id),
            ("payme.account_field", &p.account_field),
        ] {
            if value.contains([';', '=', ' ']) {
                return Err(format!("{key} must not contain ';', '=' or spaces"));
            }
        }
        if p.account_field.is_empty() {
            return Err("payme.account_field must not be empty".into());
        }
        if p.key.is_some() && p.key_file.is_some() {
            return Err("set payme.key or payme.key_file, not both".into());
        }
        if let Some(key) = &p.key {
            if key.trim().is_empty() {
                return Err("payme.key is empty".into());
            }
        }
        if let Some(f) = &p.fiscal {
            if f.title.trim().is_empty() {
                return Err("payme.fiscal.title must not be empty".into());
            }
            if f.ikpu.len() != 17 || !f.ikpu.bytes().all(|c| c.is_ascii_digit()) {
                return Err("payme.fiscal.ikpu must be the 17-digit IKPU (MXIK) code".into());
            }
            if f.package_code.trim().is_empty() {
                return Err("payme.fiscal.package_code must not be empty".into());
            }
            if f.vat_percent > 100 {
                return Err("payme.fiscal.vat_percent must be between 0 and 100".into());
            }
        }
        Ok(())
    }

    /// Price of one copy in tiyin (1 sum = 100 tiyin).
    pub fn price_per_copy_tiyin(&self) -> i64 {
        self.booth.price_per_copy * 100
    }

    /// The data directory: the configured one, systemd's `$STATE_DIRECTORY`, or `./data`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.booth.data_dir {
            return dir.clone();
        }
        // systemd may pass several directories separated by ':'; ours is the first.
        if let Some(state) = std::env::var_os("STATE_DIRECTORY") {
            if let Some(first) = state.to_string_lossy().split(':').next() {
                if !first.is_empty() {
                    return PathBuf::from(first);
                }
            }
        }
        PathBuf::from("data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_parse_and_match_the_documented_values() {
        let c = Config::built_in().unwrap();
        assert_eq!(c.booth.price_per_copy, 20_000);
        assert_eq!(c.price_per_copy_tiyin(), 2_000_000);
        assert_eq!(c.booth.max_copies, 10);
        assert_eq!(c.booth.order_ttl_s, 600);
        assert_eq!(c.http.kiosk_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.http.webhook_listen.to_string(), "127.0.0.1:8081");
        assert_eq!(c.payme.checkout_base, "https://test.paycom.uz");
        assert_eq!(c.payme.account_field, "order_id");
        assert!(c.payme.fiscal.is_none());
        assert_eq!(c.printer.backend, PrinterBackend::File);
    }

    #[test]
    fn unknown_key_names_the_key_and_the_file() {
        let text = DEFAULT_TOML.replace("max_copies = 10", "max_copies = 10\nmax_copiez = 3");
        let err = Config::parse(&text, "/etc/photobooth/photobooth.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/photobooth/photobooth.toml"), "{msg}");
        assert!(msg.contains("max_copiez"), "{msg}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (from, to, key) in [
            ("price_per_copy = 20000", "price_per_copy = 0", "booth.price_per_copy"),
            ("max_copies = 10", "max_copies = 0", "booth.max_copies"),
            ("order_ttl_s = 600", "order_ttl_s = 5", "booth.order_ttl_s"),
            ("price_per_copy = 20000", "price_per_copy = 200.5", "price_per_copy"),
            (
                "kiosk_listen = \"127.0.0.1:8080\"",
                "kiosk_listen = \"nowhere\"",
                "kiosk_listen",
            ),
            ("backend = \"file\"", "backend = \"laser\"", "backend"),
        ] {
            let text = DEFAULT_TOML.replace(from, to);
            assert_ne!(text, DEFAULT_TOML, "replacement {from} did not apply");
            let msg = Config::parse(&text, "x.toml").unwrap_err().to_string();
            assert!(msg.contains(key), "{msg} should name {key}");
            assert!(msg.starts_with("x.toml"), "{msg}");
        }
    }

    #[test]
    fn fiscal_section_is_checked() {
        let text = format!(
            "{DEFAULT_TOML}\n[payme.fiscal]\ntitle = \"Photo\"\nikpu = \"123\"\npackage_code = \"1\"\nvat_percent = 12\n"
        );
        let msg = Config::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(msg.contains("payme.fiscal.ikpu"), "{msg}");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let text = DEFAULT_TOML.replace("# key = \"...\"", "key = \"s3cr3t-key\"");
        let c = Config::parse(&text, "x.toml").unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-key"));
    }
}
