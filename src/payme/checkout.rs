//! The Payme checkout link (GET form) that the kiosk shows as a QR code.

use base64::Engine;

/// The host of Payme's sandbox checkout (test cards, no real money).
pub const SANDBOX_HOST: &str = "test.paycom.uz";

/// Whether `checkout_base` is Payme's sandbox: only then does the daemon accept the simulated
/// payments of `photoboothd pay`.
pub fn is_sandbox(checkout_base: &str) -> bool {
    let rest = checkout_base.split_once("://").map_or(checkout_base, |(_, rest)| rest);
    let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
    host.eq_ignore_ascii_case(SANDBOX_HOST)
}

/// What the link carries besides the cashbox and the order.
pub struct Link<'a> {
    pub base: &'a str,
    pub merchant_id: &'a str,
    pub account_field: &'a str,
    /// The customer's language on the checkout page: `uz`, `ru` or `en` (`l=`).
    pub language: &'a str,
    /// Where the checkout sends the customer afterwards (`c=`), if configured.
    pub return_url: Option<&'a str>,
}

/// `checkout_base/base64("m=<merchant>;ac.<field>=<order>;a=<tiyin>;l=<lang>[;c=<url>]")`. Values
/// are not URL-encoded (Payme decodes the base64 and splits on `;`, which config validation keeps
/// out of the merchant id, the field name and the return URL; order ids are digits).
pub fn checkout_link(link: &Link<'_>, order_id: i64, amount_tiyin: i64) -> String {
    let mut params = format!(
        "m={};ac.{}={order_id};a={amount_tiyin};l={}",
        link.merchant_id, link.account_field, link.language
    );
    if let Some(url) = link.return_url {
        params.push_str(";c=");
        params.push_str(url);
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(params);
    format!("{}/{encoded}", link.base.trim_end_matches('/'))
}

/// The bare link (no language, no return URL), as Payme's documentation shows it.
pub fn checkout_url(base: &str, merchant_id: &str, account_field: &str, order_id: i64, amount_tiyin: i64) -> String {
    let params = format!("m={merchant_id};ac.{account_field}={order_id};a={amount_tiyin}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(params);
    format!("{}/{encoded}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_documented_example() {
        assert_eq!(
            checkout_url(
                "https://checkout.paycom.uz/",
                "587f72c72cac0d162c722ae2",
                "order_id",
                197,
                500
            ),
            "https://checkout.paycom.uz/bT01ODdmNzJjNzJjYWMwZDE2MmM3MjJhZTI7YWMub3JkZXJfaWQ9MTk3O2E9NTAw"
        );
    }

    #[test]
    fn only_the_sandbox_host_is_the_sandbox() {
        assert!(is_sandbox("https://test.paycom.uz"));
        assert!(is_sandbox("https://TEST.paycom.uz/"));
        assert!(!is_sandbox("https://checkout.paycom.uz"));
        assert!(!is_sandbox("https://test.paycom.uz.evil.example"));
    }

    #[test]
    fn carries_the_language_and_the_return_url() {
        let decode = |url: &str| {
            let b64 = url.rsplit('/').next().unwrap();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
        };
        let mut link = Link {
            base: "https://test.paycom.uz",
            merchant_id: "m1",
            account_field: "order_id",
            language: "ru",
            return_url: None,
        };
        assert_eq!(decode(&checkout_link(&link, 7, 500)), "m=m1;ac.order_id=7;a=500;l=ru");
        link.return_url = Some("https://booth.example/thanks?x=1");
        assert_eq!(
            decode(&checkout_link(&link, 7, 500)),
            "m=m1;ac.order_id=7;a=500;l=ru;c=https://booth.example/thanks?x=1"
        );
    }
}
