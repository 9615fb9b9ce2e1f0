//! The one configuration file: parsing, validation and the built-in defaults.
//!
//! `assets/photobooth.toml` is embedded and is the ONLY place a default value is written: it is the
//! documented example and the configuration `photoboothd` runs on with no arguments. A user file is
//! read in three steps, like `layout/template.rs` reads a template:
//!
//! 1. raw: the user's TOML is parsed (syntax errors point at its line), and every key it leaves
//!    out is filled in from the embedded file (`merge_defaults`);
//! 2. typed: the merged document is deserialised into the section structs of `sections.rs`
//!    (unknown keys and wrong types are errors naming the key, pointing at the user's line);
//! 3. validated: `validate.rs` checks ranges and rules across keys; each error names its key.
//!
//! Every error carries the file's name (`ConfigError`).
//!
//! ## Adding a key or a section
//! - Add the field to its struct in `sections.rs` (a new section: a new struct with
//!   `#[serde(deny_unknown_fields)]` and a field of that type in `Config` below). No
//!   `#[serde(default)]`, no `Default` impl: the default is the value in the embedded file.
//! - Write the key, its default value and a comment saying what it does into
//!   `assets/photobooth.toml` (a new section as a new `[table]`). A key whose absence means "not
//!   set" is an `Option<_>` and stays commented out there.
//! - Add its rules to `validate.rs` (one function per section, called from `validate::config`),
//!   each error naming the key.
//! - The tests below then check that the file parses, that an empty `[section]` equals the
//!   built-in one, and the README lists user-visible keys.

mod owner;
mod sections;
mod upkeep;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub use owner::{check_event_text, check_pin, pin_sha256, Event, Mode, Service, EVENT_TEXT_MAX};
pub use sections::*;
pub use validate::Invalid;

/// The documented example, which is also the configuration `photoboothd` runs on with no arguments.
pub const DEFAULT_TOML: &str = include_str!("../../assets/photobooth.toml");

/// Where a configuration came from, for error messages.
const BUILT_IN: &str = "<built-in defaults>";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub booth: Booth,
    pub http: Http,
    pub payme: Payme,
    pub printer: Printer,
    pub camera: Camera,
    pub gpio: Gpio,
    pub session: Session,
    pub service: Service,
    pub event: Event,
    pub storage: Storage,
    pub dev: Dev,
    pub digital: Digital,
}

/// A configuration that cannot be used, with the file it came from and, for a value that is
/// well-typed but out of range, the key.
#[derive(Debug)]
pub struct ConfigError {
    pub source_name: String,
    /// `section.key` for a validation error; TOML syntax and type errors name it in `message`.
    pub key: Option<&'static str>,
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
            key: None,
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

    /// Raw, typed, validated (see the module header). `source_name` names the file in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let error = |key, message: String| ConfigError {
            source_name: source_name.to_string(),
            key,
            message,
        };
        // toml's messages already name the key and show the line (but not a secret's line).
        let toml_error = |e: toml::de::Error| error(None, toml_message(text, &e));
        let mut raw = DeTable::parse(text).map_err(toml_error)?;
        let defaults = DeTable::parse(DEFAULT_TOML).map_err(toml_error)?;
        merge_defaults(raw.get_mut(), defaults.into_inner());
        let config = Config::deserialize(toml::de::Deserializer::from(raw)).map_err(|mut e| {
            e.set_input(Some(text));
            toml_error(e)
        })?;
        validate::config(&config).map_err(|invalid| error(Some(invalid.key), invalid.message))?;
        Ok(config)
    }

    /// Price of one copy in tiyin (1 sum = 100 tiyin).
    pub fn price_per_copy_tiyin(&self) -> i64 {
        self.booth.price_per_copy * 100
    }

    /// Now as the booth's wall clock reads it, in ms: only for dates printed on photos.
    pub fn local_time_ms(&self, utc_ms: i64) -> i64 {
        utc_ms + i64::from(self.booth.utc_offset_minutes) * 60_000
    }

    /// Where the `file` printer writes.
    pub fn prints_dir(&self) -> PathBuf {
        self.printer
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("prints"))
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
        // Installed from the .deb but run by hand (the CLI over SSH): the service's directory.
        let packaged = Path::new("/var/lib/photoboothd");
        if packaged.is_dir() {
            return packaged.to_path_buf();
        }
        PathBuf::from("data")
    }
}

/// The keys whose values are secrets: `payme.key` and `service.pin`.
const SECRET_KEYS: [&str; 2] = ["key", "pin"];

/// toml's error message, which quotes the offending line and may quote its value. On a line that
/// sets a secret that would print the secret to stderr, which journald keeps, so such an error
/// says only where it is.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let full = e.to_string().trim_end().to_string();
    let Some(before) = e.span().and_then(|span| text.get(..span.start)) else {
        return full;
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    if !sets_a_secret(line) {
        return full;
    }
    format!(
        "TOML parse error at line {}, column {}: the line sets a secret, so it is not shown here; \
         a secret is a quoted string, like key = \"...\"",
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1
    )
}

/// Whether a TOML line assigns one of `SECRET_KEYS` (as `key =`, `payme.key =` or inside an
/// inline table).
fn sets_a_secret(line: &str) -> bool {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    SECRET_KEYS.iter().any(|name| {
        line.match_indices(name).any(|(at, _)| {
            let starts = !line[..at].chars().next_back().is_some_and(bare);
            let after = line[at + name.len()..].trim_start();
            starts && after.starts_with('=')
        })
    })
}

/// Fills every key `user` leaves out (at any depth) with the built-in value. Filled-in values get
/// an empty span: an error can only point at a line the user wrote.
fn merge_defaults<'i>(user: &mut DeTable<'i>, defaults: DeTable<'i>) {
    for (key, default) in defaults {
        match user.get_mut(key.get_ref().as_ref()) {
            Some(mine) => {
                if let (DeValue::Table(mine), DeValue::Table(theirs)) = (mine.get_mut(), default.into_inner()) {
                    merge_defaults(mine, theirs);
                }
            }
            None => {
                user.insert(
                    Spanned::new(0..0, key.into_inner()),
                    Spanned::new(0..0, default.into_inner()),
                );
            }
        }
    }
}

/// For tests: the built-in file with `from` replaced by `to` must be refused, naming `key` and the file.
#[cfg(test)]
pub(crate) fn assert_rejected(from: &str, to: &str, key: &str) {
    let text = DEFAULT_TOML.replace(from, to);
    assert_ne!(text, DEFAULT_TOML, "replacement {from} did not apply");
    let msg = Config::parse(&text, "x.toml").unwrap_err().to_string();
    assert!(msg.contains(key), "{msg} should name {key}");
    assert!(msg.starts_with("x.toml"), "{msg}");
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

    /// The names of the built-in file's sections, straight from the file.
    fn sections() -> Vec<String> {
        let raw = DeTable::parse(DEFAULT_TOML).unwrap().into_inner();
        raw.iter()
            .filter(|(_, v)| v.get_ref().is_table())
            .map(|(k, _)| k.get_ref().to_string())
            .collect()
    }

    #[test]
    fn every_section_left_empty_or_out_equals_the_built_in_one() {
        let built_in = Config::built_in().unwrap();
        let names = sections();
        assert!(names.len() >= 7, "{names:?}");
        for name in &names {
            let empty = Config::parse(&format!("[{name}]\n"), "x.toml").unwrap();
            assert_eq!(empty, built_in, "an empty [{name}] differs from the built-in one");
        }
        assert_eq!(Config::parse("", "x.toml").unwrap(), built_in);
    }

    #[test]
    fn a_key_given_overrides_only_itself() {
        let c = Config::parse("[booth]\nmax_copies = 4\n[printer]\noptions = [\"a=b\"]\n", "x.toml").unwrap();
        let mut expected = Config::built_in().unwrap();
        expected.booth.max_copies = 4;
        expected.printer.options = vec!["a=b".into()];
        assert_eq!(c, expected);
    }

    #[test]
    fn validation_errors_carry_the_key() {
        let err = Config::parse("[camera]\nshots = 9\n", "x.toml").unwrap_err();
        assert_eq!(err.key, Some("camera.shots"));
        assert!(err.to_string().starts_with("x.toml: camera.shots"), "{err}");
    }

    #[test]
    fn type_errors_point_at_the_users_line() {
        let msg = Config::parse("[booth]\nname = \"x\"\nmax_copies = \"ten\"\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("max_copies"), "{msg}");
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
            ("order_ttl_s = 600", "order_ttl_s = 4", "booth.order_ttl_s"),
            ("price_per_copy = 20000", "price_per_copy = 200.5", "price_per_copy"),
            (
                "kiosk_listen = \"127.0.0.1:8080\"",
                "kiosk_listen = \"nowhere\"",
                "kiosk_listen",
            ),
            ("backend = \"file\"", "backend = \"laser\"", "backend"),
        ] {
            assert_rejected(from, to, key);
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
