//! The cashbox key: where it comes from, how a request proves it, and how Payme rotates it.
//!
//! Configured sources, in precedence order: `PAYME_KEY`, systemd's credential `payme-key`,
//! `payme.key_file`, `payme.key`. Two sources that hold different keys are a start-up error naming
//! both (never the keys): a key file left behind must not silently outrank the key the owner put in
//! the configuration. The same key in several places is fine. With no configured source, a random
//! development key is generated once into `data_dir/payme.key`. A key set later by Payme's
//! ChangePassword lives in the store and wins over the configured key it replaced, so a rotation
//! survives a restart; if the owner has since configured a different key, the configuration wins.
//! The key is never logged and never put in an error.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use rusqlite::Connection;
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::store::settings;

/// Payme's Basic-auth login is always this literal.
const LOGIN: &str = "Paycom";
const GENERATED_KEY_FILE: &str = "payme.key";
const CREDENTIAL_NAME: &str = "payme-key";
/// Where the .deb keeps the key it hands to systemd as the credential.
const PACKAGED_KEY_FILE: &str = "/etc/photobooth/payme.key";
const ROTATED_KEY: &str = "payme.rotated_key";
/// The SHA-256 (hex) of the configured key a rotation replaced; the key itself is never stored.
const ROTATED_FROM_HASH: &str = "payme.rotated_from_sha256";
/// Older versions stored the replaced key itself here; it is turned into the hash at start-up.
const LEGACY_ROTATED_FROM: &str = "payme.rotated_from";

/// Where the configured key came from: logged at start, so a technician knows which file to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Environment,
    Credential(PathBuf),
    KeyFile(PathBuf),
    ConfigFile,
    Generated(PathBuf),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Environment => write!(f, "the PAYME_KEY environment variable"),
            KeyOrigin::Credential(p) => write!(f, "the systemd credential {}", p.display()),
            KeyOrigin::KeyFile(p) => write!(f, "payme.key_file {}", p.display()),
            KeyOrigin::ConfigFile => write!(f, "payme.key in the configuration"),
            KeyOrigin::Generated(p) => write!(f, "the generated key file {}", p.display()),
        }
    }
}

pub struct ConfiguredKey {
    pub key: String,
    pub origin: KeyOrigin,
}

message_error!(KeyError);

/// Stray newlines are the classic way a key file breaks authentication; other bytes are kept
/// exactly (keys contain `% & ? @ # !` and must never be decoded).
fn clean(key: &str) -> &str {
    key.trim_matches(|c| c == '\n' || c == '\r')
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeyError(format!("cannot read the Payme key from {}: {e}", path.display())))?;
    let key = clean(&text);
    if key.is_empty() {
        return Err(KeyError(format!("the Payme key file {} is empty", path.display())));
    }
    Ok(key.to_string())
}

pub fn configured_key(config: &Config, data_dir: &Path) -> Result<ConfiguredKey, KeyError> {
    configured_key_with(config, data_dir, true)
}

/// What the process environment says about keys: `PAYME_KEY` and systemd's credentials folder.
pub struct KeyEnv {
    pub payme_key: Option<String>,
    pub credentials_dir: Option<PathBuf>,
}

impl KeyEnv {
    pub fn from_process() -> KeyEnv {
        KeyEnv {
            payme_key: std::env::var("PAYME_KEY").ok(),
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        }
    }
}

/// As `configured_key`; with `generate` false (every command but `run`) a missing key is an
/// error instead of a new random key that the daemon would not know.
pub fn configured_key_with(config: &Config, data_dir: &Path, generate: bool) -> Result<ConfiguredKey, KeyError> {
    if let Some(key) = configured_in_process(config)? {
        return Ok(key);
    }
    let path = data_dir.join(GENERATED_KEY_FILE);
    if path.exists() {
        return Ok(ConfiguredKey {
            key: read_key_file(&path)?,
            origin: KeyOrigin::Generated(path),
        });
    }
    if !generate {
        return Err(KeyError(format!(
            "no Payme key: none configured and no {} (is this the daemon's configuration?)",
            path.display()
        )));
    }
    let key = generate_key().map_err(|e| KeyError(format!("cannot generate a Payme key: {e}")))?;
    write_private(&path, &key).map_err(|e| {
        KeyError(format!(
            "cannot write the generated Payme key to {}: {e}",
            path.display()
        ))
    })?;
    Ok(ConfiguredKey {
        key,
        origin: KeyOrigin::Generated(path),
    })
}

/// The configured key as this process sees it. Run by hand (not by systemd), the credential
/// systemd would load is the packaged key file, so the CLI and a daemon started over SSH see the
/// same sources as the service.
pub fn configured_in_process(config: &Config) -> Result<Option<ConfiguredKey>, KeyError> {
    let env = KeyEnv::from_process();
    let packaged = env.credentials_dir.is_none().then(|| Path::new(PACKAGED_KEY_FILE));
    configured_source(config, &env, packaged)
}

/// The key of the configured sources (`None`: none is configured), or an error naming two that
/// disagree. `packaged` stands in for the credential when systemd did not pass one.
pub fn configured_source(
    config: &Config,
    env: &KeyEnv,
    packaged: Option<&Path>,
) -> Result<Option<ConfiguredKey>, KeyError> {
    let sources = configured_sources(config, env, packaged)?;
    let Some((first, rest)) = sources.split_first() else {
        return Ok(None);
    };
    if let Some(other) = rest
        .iter()
        .find(|s| !bool::from(s.key.as_bytes().ct_eq(first.key.as_bytes())))
    {
        return Err(KeyError(format!(
            "two different Payme keys are configured, in {} and in {}; keep only the one from the Payme cabinet (see README, \"Configuration\")",
            first.origin, other.origin
        )));
    }
    Ok(Some(ConfiguredKey {
        key: first.key.clone(),
        origin: first.origin.clone(),
    }))
}

/// Every configured source that holds a key, in precedence order.
fn configured_sources(config: &Config, env: &KeyEnv, packaged: Option<&Path>) -> Result<Vec<ConfiguredKey>, KeyError> {
    let mut found = Vec::new();
    if let Some(key) = env.payme_key.as_deref().map(clean).filter(|k| !k.is_empty()) {
        found.push(ConfiguredKey {
            key: key.to_string(),
            origin: KeyOrigin::Environment,
        });
    }
    let credential = env
        .credentials_dir
        .as_ref()
        .map(|dir| dir.join(CREDENTIAL_NAME))
        .or_else(|| packaged.map(Path::to_path_buf));
    if let Some(path) = credential {
        // An empty credential is the unit's `SetCredential=` fallback for a missing key file: it
        // means "none given".
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 1) {
            found.push(ConfiguredKey {
                key: read_key_file(&path)?,
                origin: KeyOrigin::Credential(path),
            });
        }
    }
    if let Some(path) = &config.payme.key_file {
        found.push(ConfiguredKey {
            key: read_key_file(path)?,
            origin: KeyOrigin::KeyFile(path.clone()),
        });
    }
    if let Some(key) = &config.payme.key {
        found.push(ConfiguredKey {
            key: clean(key).to_string(),
            origin: KeyOrigin::ConfigFile,
        });
    }
    Ok(found)
}

/// 36 characters, like Payme's own keys, from an alphabet that needs no escaping anywhere.
fn generate_key() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 36];
    getrandom::fill(&mut bytes)?;
    // 256 % 57 != 0 gives a slight bias; with 36 characters the key still has > 200 bits.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// SHA-256 of a key, in hex: what the store keeps of a replaced key, and (its first 8 digits) how
/// logs name a key without revealing it.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A short, non-secret name for a key in logs.
pub fn fingerprint(key: &str) -> String {
    key_hash(key)[..8].to_string()
}

/// The key requests must carry now: a rotation stored by ChangePassword, if it replaced the key
/// that is configured today, otherwise the configured key.
pub fn effective_key(conn: &Connection, configured: &str) -> rusqlite::Result<(String, bool)> {
    let rotated = settings::get(conn, ROTATED_KEY)?;
    let replaced = match settings::get(conn, ROTATED_FROM_HASH)? {
        Some(hash) => Some(hash),
        None => settings::get(conn, LEGACY_ROTATED_FROM)?.map(|key| key_hash(&key)),
    };
    Ok(match (rotated, replaced) {
        (Some(rotated), Some(hash)) if bool::from(hash.as_bytes().ct_eq(key_hash(configured).as_bytes())) => {
            (rotated, true)
        }
        _ => (configured.to_string(), false),
    })
}

/// Replaces a replaced key that an older version stored in clear by its hash. Run once at start-up.
pub fn forget_legacy_rotation(conn: &Connection) -> rusqlite::Result<()> {
    if let Some(key) = settings::get(conn, LEGACY_ROTATED_FROM)? {
        settings::set(conn, ROTATED_FROM_HASH, &key_hash(&key))?;
        settings::delete(conn, LEGACY_ROTATED_FROM)?;
    }
    Ok(())
}

/// Persists a rotation inside the caller's transaction: the new key, and only the hash of the
/// configured key it replaced.
pub fn store_rotation(conn: &Connection, configured: &str, new_key: &str) -> rusqlite::Result<()> {
    settings::set(conn, ROTATED_KEY, new_key)?;
    settings::set(conn, ROTATED_FROM_HASH, &key_hash(configured))?;
    settings::delete(conn, LEGACY_ROTATED_FROM)
}

/// The live key, checked on every request and swapped by ChangePassword.
pub struct KeyRing {
    configured: String,
    /// `base64(Paycom:<key>)`, as the Basic credentials must read (see `expected_credentials`).
    expected: RwLock<Arc<[u8]>>,
}

impl KeyRing {
    pub fn new(configured: String, effective: &str) -> KeyRing {
        KeyRing {
            configured,
            expected: RwLock::new(expected_credentials(effective)),
        }
    }

    pub fn configured(&self) -> &str {
        &self.configured
    }

    /// Call only after the new key is committed to the store.
    pub fn replace(&self, new_key: &str) {
        let mut guard = self.expected.write().unwrap_or_else(|p| p.into_inner());
        *guard = expected_credentials(new_key);
    }

    /// Runs `write` (ChangePassword's store transaction, given a test for "is this the key in
    /// force") while holding the key lock, and switches to the key it returns before releasing it.
    /// Requests wait on the lock meanwhile, so none is checked against the old key once the new
    /// one is committed, nor against the new one before.
    pub fn rotate_with<T>(&self, write: impl FnOnce(&dyn Fn(&str) -> bool) -> (T, Option<String>)) -> T {
        let mut guard = self.expected.write().unwrap_or_else(|p| p.into_inner());
        let current = guard.clone();
        let is_current = move |candidate: &str| bool::from(expected_credentials(candidate).ct_eq(&current));
        let (out, new_key) = write(&is_current);
        if let Some(key) = new_key {
            *guard = expected_credentials(&key);
        }
        out
    }

    /// Whether the request's `Authorization` header carries `Basic base64(Paycom:<key>)`.
    pub fn authorized(&self, header: Option<&[u8]>) -> bool {
        let Some(encoded) = header.and_then(basic_credentials) else {
            return false;
        };
        let expected = self.expected.read().unwrap_or_else(|p| p.into_inner());
        // Lengths may differ (then ct_eq is false at once); the content is compared in constant time.
        bool::from(encoded.ct_eq(&expected))
    }

    /// Whether `candidate` is the key in force (ChangePassword with the same key is a no-op).
    pub fn is_current(&self, candidate: &str) -> bool {
        let expected = self.expected.read().unwrap_or_else(|p| p.into_inner()).clone();
        bool::from(expected_credentials(candidate).ct_eq(&expected))
    }
}

/// The credentials compared in their base64 form, so a request costs no decoding: the standard
/// alphabet with canonical padding and no stray trailing bits (the `STANDARD` engine's rules) has
/// exactly one spelling for each byte string, so "decodes to `Paycom:<key>`" and "reads exactly
/// `base64(Paycom:<key>)`" accept the same headers.
fn expected_credentials(key: &str) -> Arc<[u8]> {
    base64::engine::general_purpose::STANDARD
        .encode(format!("{LOGIN}:{key}"))
        .into_bytes()
        .into()
}

/// The base64 part of `Basic <credentials>`; the scheme's case and surrounding blanks do not matter.
fn basic_credentials(header: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then(|| encoded.trim().as_bytes())
}

/// The header a client (the `pay` command, tests) sends.
pub fn basic_header(key: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{LOGIN}:{key}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_paycom_with_the_exact_key() {
        let ring = KeyRing::new("k:%&?@#!".into(), "k:%&?@#!");
        assert!(ring.authorized(Some(basic_header("k:%&?@#!").as_bytes())));
        assert!(!ring.authorized(Some(basic_header("k:%&?@#").as_bytes())));
        assert!(!ring.authorized(None));
        assert!(!ring.authorized(Some(b"Bearer abc")));
        assert!(!ring.authorized(Some(b"Basic !!!not-base64")));
        let other_login = base64::engine::general_purpose::STANDARD.encode("Admin:k:%&?@#!");
        assert!(!ring.authorized(Some(format!("Basic {other_login}").as_bytes())));
    }

    /// Comparing the base64 text accepts exactly the headers whose credentials decode to
    /// `Paycom:<key>` (the rule before the comparison moved to the encoded form).
    #[test]
    fn the_encoded_comparison_accepts_what_decoding_would_and_nothing_else() {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
        let key = "k:%&?@#!x"; // "Paycom:k:%&?@#!x": 16 bytes, so its base64 ends in "=="
        let ring = KeyRing::new(key.into(), key);
        let canonical = STANDARD.encode(format!("{LOGIN}:{key}"));
        let mut stray_bits = canonical.clone().into_bytes();
        let last = canonical.len() - 3; // the character before "==" carries 4 unused bits
        stray_bits[last] = if stray_bits[last] == b'A' {
            b'B'
        } else {
            stray_bits[last] + 1
        };
        let headers = [
            format!("Basic {canonical}"),
            format!("basic   {canonical}  "),
            format!(" BASIC {canonical}"),
            format!("Basic {}", STANDARD_NO_PAD.encode(format!("{LOGIN}:{key}"))),
            format!("Basic {}", String::from_utf8(stray_bits).unwrap()),
            format!("Basic {canonical}="),
            format!("Basic {}", canonical.replace('+', "-")),
            format!("Basic{canonical}"),
        ];
        for header in headers {
            let decodes = header
                .trim()
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
                .is_some_and(|plain| plain == format!("{LOGIN}:{key}").as_bytes());
            assert_eq!(ring.authorized(Some(header.as_bytes())), decodes, "{header:?}");
        }
    }

    #[test]
    fn replace_takes_effect_at_once() {
        let ring = KeyRing::new("old".into(), "old");
        ring.replace("new");
        assert!(!ring.authorized(Some(basic_header("old").as_bytes())));
        assert!(ring.authorized(Some(basic_header("new").as_bytes())));
        assert!(ring.is_current("new"));
    }

    fn config_with(extra: &str) -> Config {
        let text = crate::config::DEFAULT_TOML.replace("# key = \"...\"", extra);
        Config::parse(&text, "test.toml").unwrap()
    }

    /// The key sources beside the config file: `PAYME_KEY` and the systemd credentials folder.
    fn key_env(payme_key: Option<&str>, credentials_dir: Option<&Path>) -> KeyEnv {
        KeyEnv {
            payme_key: payme_key.map(String::from),
            credentials_dir: credentials_dir.map(Path::to_path_buf),
        }
    }

    /// A credentials folder whose Payme credential holds `text`.
    fn credentials(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CREDENTIAL_NAME), text).unwrap();
        dir
    }

    #[test]
    fn two_different_configured_keys_are_an_error_naming_both_sources_not_the_keys() {
        let dir = credentials("placeholder-key-from-postinst\n");
        let config = config_with("key = \"the-cabinet-key\"");
        let env = key_env(None, Some(dir.path()));
        let err = configured_source(&config, &env, None).err().unwrap().0;
        assert!(
            err.contains("systemd credential") && err.contains("payme.key in the configuration"),
            "{err}"
        );
        assert!(
            !err.contains("placeholder-key") && !err.contains("the-cabinet-key"),
            "{err}"
        );
        let env = key_env(Some("from-env"), None);
        let err = configured_source(&config, &env, None).err().unwrap().0;
        assert!(
            err.contains("PAYME_KEY") && err.contains("payme.key in the configuration"),
            "{err}"
        );
    }

    #[test]
    fn one_key_in_several_places_or_an_empty_credential_is_fine() {
        let dir = credentials("\n");
        let config = config_with("key = \"k1\"");
        let env = key_env(Some("k1\n"), Some(dir.path()));
        let key = configured_source(&config, &env, None).unwrap().unwrap();
        assert_eq!((key.key.as_str(), key.origin), ("k1", KeyOrigin::Environment));
        let none = key_env(None, None);
        let key = configured_source(&config, &none, None).unwrap().unwrap();
        assert_eq!(key.origin, KeyOrigin::ConfigFile);
        // Nothing configured: the caller generates (or reads) the development key.
        assert!(configured_source(&Config::built_in().unwrap(), &none, None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_rotation_keeps_only_the_hash_of_the_replaced_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open_in(dir.path()).unwrap();
        store
            .write(|tx| store_rotation(tx, "configured-secret", "new-secret"))
            .unwrap();
        let rows: Vec<String> = store
            .read(|c| {
                c.prepare("SELECT key || '=' || value FROM settings")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            })
            .unwrap();
        assert!(rows.iter().all(|r| !r.contains("configured-secret")), "{rows:?}");
        assert_eq!(
            store.read(|c| effective_key(c, "configured-secret")).unwrap(),
            ("new-secret".to_string(), true)
        );
        // The owner configured another key since: it wins.
        assert_eq!(
            store.read(|c| effective_key(c, "other")).unwrap(),
            ("other".to_string(), false)
        );
        // A replaced key an older version kept in clear becomes its hash.
        store
            .write(|tx| {
                settings::delete(tx, ROTATED_FROM_HASH)?;
                settings::set(tx, LEGACY_ROTATED_FROM, "configured-secret")
            })
            .unwrap();
        assert!(store.read(|c| effective_key(c, "configured-secret")).unwrap().1);
        store.write(|tx| forget_legacy_rotation(tx)).unwrap();
        assert_eq!(store.read(|c| settings::get(c, LEGACY_ROTATED_FROM)).unwrap(), None);
        assert!(store.read(|c| effective_key(c, "configured-secret")).unwrap().1);
    }

    #[test]
    fn a_rotation_switches_the_key_before_the_lock_is_released() {
        let ring = KeyRing::new("old".into(), "old");
        let out = ring.rotate_with(|is_current| {
            assert!(is_current("old") && !is_current("new"));
            ("committed", Some("new".to_string()))
        });
        assert_eq!(out, "committed");
        assert!(ring.authorized(Some(basic_header("new").as_bytes())));
        assert!(!ring.authorized(Some(basic_header("old").as_bytes())));
        // A failed write switches nothing.
        ring.rotate_with(|_| ((), None));
        assert!(ring.is_current("new"));
    }

    #[test]
    fn generated_keys_are_36_characters_and_differ() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_eq!(a.len(), 36);
        assert_ne!(a, b);
    }
}
