//! CheckPerformTransaction: may this account be paid with this amount? Writes nothing.

use serde_json::{json, Value};

use super::{refuse_if_undeliverable, Effects, Env, MethodResult};
use crate::config::Fiscal;
use crate::payme::account::payable_order;
use crate::payme::rpc::Params;
use crate::store::Order;

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, env: &Env<'_>, _: &mut Effects) -> MethodResult {
    let amount = p.amount()?;
    let account = p.object("account")?;
    let order = payable_order(conn, account, env.account_field, amount, env.now)?;
    refuse_if_undeliverable(env, order.id, "CheckPerformTransaction")?;
    tracing::info!(order_id = order.id, amount, "payme: CheckPerformTransaction allowed");
    let mut result = json!({ "allow": true });
    if let Some(fiscal) = env.fiscal {
        result["detail"] = detail(fiscal, &order);
    }
    Ok(result)
}

/// The fiscal receipt: one line, the price of a copy times the copies, so it sums to `amount`.
fn detail(fiscal: &Fiscal, order: &Order) -> Value {
    json!({
        "receipt_type": 0,
        "items": [{
            "title": fiscal.title,
            "price": order.price_per_copy_tiyin,
            "count": order.copies,
            "code": fiscal.ikpu,
            "package_code": fiscal.package_code,
            "vat_percent": fiscal.vat_percent,
        }],
    })
}
