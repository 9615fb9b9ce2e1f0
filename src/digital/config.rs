//! The `[digital]` section of the configuration file: whether paid session orders come with a
//! download link, where the link points, how long it lives, and the digital-only price.
//! Defaults are the ones documented in `assets/photobooth.toml`.

use serde::Deserialize;

use crate::config::{Config, Fiscal};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digital {
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The tunnel's HTTPS address (`https://booth-1.example.com`); links are `{public_url}/d/{token}`.
    pub public_url: Option<String>,
    #[serde(default = "default_link_hours")]
    pub link_hours: u32,
    /// Whole sum for "digital only, no print"; unset, digital copies come only with a paid print.
    pub price: Option<i64>,
    /// A small QR of the link in a corner of the printed page.
    #[serde(default)]
    pub qr_on_print: bool,
}

impl Default for Digital {
    fn default() -> Self {
        Digital {
            enabled: default_enabled(),
            public_url: None,
            link_hours: default_link_hours(),
            price: None,
            qr_on_print: false,
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_link_hours() -> u32 {
    72
}

impl Digital {
    pub fn validate(&self, fiscal: Option<&Fiscal>) -> Result<(), String> {
        if let Some(url) = &self.public_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or("");
            if rest.is_empty() || rest.contains(['?', '#', ' ']) {
                return Err(
                    "digital.public_url must be an http(s) address such as \"https://booth-1.example.com\"".into(),
                );
            }
        }
        if !(1..=24 * 31).contains(&self.link_hours) {
            return Err("digital.link_hours must be between 1 and 744 (31 days)".into());
        }
        if let Some(price) = self.price {
            if !(1..=100_000_000).contains(&price) {
                return Err("digital.price must be a whole number of sum from 1 to 100 000 000".into());
            }
            if let Some(f) = fiscal {
                let ikpu = f.digital_ikpu.as_deref().unwrap_or("");
                if ikpu.len() != 17 || !ikpu.bytes().all(|c| c.is_ascii_digit()) {
                    return Err("payme.fiscal.digital_ikpu (the 17-digit IKPU of digital copies) is required when digital.price is set".into());
                }
            }
        }
        Ok(())
    }

    /// Price of a digital-only order in tiyin, if digital-only is on sale.
    pub fn price_tiyin(&self) -> Option<i64> {
        self.price.map(|p| p * 100)
    }

    pub fn link_ms(&self) -> i64 {
        i64::from(self.link_hours) * 3_600_000
    }
}

/// Whether the booth talks to Payme's sandbox (test checkout): then a link to the webhook
/// listener's own address is acceptable for trying digital copies out.
pub fn sandbox(config: &Config) -> bool {
    config.payme.checkout_base.contains("test.paycom.uz")
}

/// Why digital copies are off for this configuration, or `None` when they are on.
pub fn off_reason(config: &Config) -> Option<&'static str> {
    let d = &config.digital;
    if !d.enabled {
        return Some("digital.enabled is false");
    }
    if d.public_url.is_none() && !sandbox(config) {
        return Some(
            "digital.public_url is not set: outside Payme's sandbox the link must be the tunnel's public HTTPS address",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, DEFAULT_TOML};

    #[test]
    fn defaults_and_checks() {
        let c = Config::built_in().unwrap();
        assert!(c.digital.enabled && !c.digital.qr_on_print);
        assert_eq!((c.digital.link_hours, c.digital.price), (72, None));
        // The built-in config talks to the sandbox: links may use the webhook's own address.
        assert_eq!(super::off_reason(&c), None);
        let prod = DEFAULT_TOML.replace("https://test.paycom.uz", "https://checkout.paycom.uz");
        let c = Config::parse(&prod, "x.toml").unwrap();
        assert!(super::off_reason(&c).unwrap().contains("public_url"));
        for (from, to, key) in [
            ("link_hours = 72", "link_hours = 0", "digital.link_hours"),
            (
                "# public_url = \"https://booth-1.example.com\"",
                "public_url = \"booth-1\"",
                "digital.public_url",
            ),
            ("# price = 10000", "price = -5", "digital.price"),
        ] {
            let text = DEFAULT_TOML.replace(from, to);
            assert_ne!(text, DEFAULT_TOML, "{from}");
            let msg = Config::parse(&text, "x.toml").unwrap_err().to_string();
            assert!(msg.contains(key), "{msg} should name {key}");
        }
        // A digital-only price with fiscal receipts needs the digital product's own IKPU code.
        let fiscal = "\n[payme.fiscal]\ntitle = \"Photo\"\nikpu = \"10499001001000000\"\npackage_code = \"1\"\nvat_percent = 12\n";
        let text = format!("{}{fiscal}", DEFAULT_TOML.replace("# price = 10000", "price = 10000"));
        let msg = Config::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(msg.contains("payme.fiscal.digital_ikpu"), "{msg}");
    }
}
