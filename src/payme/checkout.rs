//! The Payme checkout link (GET form) that the kiosk shows as a QR code.

use base64::Engine;

/// `checkout_base/base64("m=<merchant>;ac.<field>=<order>;a=<tiyin>")`. Values are not
/// URL-encoded (Payme decodes the base64 and splits on `;` and `=`, which config validation keeps
/// out of the merchant id and the field name; order ids are digits).
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
}
