//! The one validation `run` and `check-config` share: every check short of opening a device, so
//! a configuration `check-config` accepts is one `run` starts with, and a refused one gets the same
//! message from both. Parsing already checked each value (`Config::parse`); this adds what needs
//! the backends' own rules (CUPS queue, media and option syntax, the ESC/POS device) and the
//! Payme key's sources (readable, not two different keys).

use crate::config::Config;

/// `Ok` when the booth can start on `config` as far as can be known without its hardware.
pub fn check(config: &Config) -> Result<(), String> {
    // Builds the printer backend, which parses its settings and opens nothing.
    crate::hw::printer::from_config(config).map(drop)?;
    crate::payme::auth::configured_in_process(config).map_err(|e| e.to_string())?;
    Ok(())
}
