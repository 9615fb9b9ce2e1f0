//! CheckPerformTransaction: may this account be paid with this amount? Writes nothing. An allowed
//! order is remembered (`Effects::allowed`), and the same question asked again before any write is
//! answered by `again` without the store.

use serde_json::{json, Value};

use super::{refuse_if_undeliverable, Effects, Env, MethodResult};
use crate::config::Fiscal;
use crate::payme::account::payable_order;
use crate::payme::rpc::Params;
use crate::store::{Order, OrderKind};

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, env: &Env<'_>, fx: &mut Effects) -> MethodResult {
    let amount = p.amount()?;
    let account = p.object("account")?;
    let order = payable_order(conn, account, env.account_field, amount, env.now)?;
    refuse_if_undeliverable(env, &order, "CheckPerformTransaction")?;
    tracing::info!(order_id = order.id, amount, "payme: CheckPerformTransaction allowed");
    let result = allowed(&order, env);
    fx.allowed = Some(order);
    Ok(result)
}

/// The same question again, about an order the store allowed and nothing this process wrote has
/// changed since (`payme::recent`): the rules that move with the clock and the booth are asked
/// again. `true` lets the remembered result be sent again; `false` sends the question back to the
/// store, which words and logs any refusal.
pub fn again(order: &Order, env: &Env<'_>) -> bool {
    if order.payability(false, env.now).is_err() || (env.delivery_blocked)(order.kind).is_some() {
        return false;
    }
    tracing::debug!(
        order_id = order.id,
        "payme: CheckPerformTransaction allowed again, nothing written since"
    );
    true
}

fn allowed(order: &Order, env: &Env<'_>) -> Value {
    let mut result = json!({ "allow": true });
    if let Some(fiscal) = env.fiscal {
        result["detail"] = detail(fiscal, order);
    }
    result
}

/// The fiscal receipt: one line, the price of a copy times the copies, so it sums to `amount`.
/// Digital copies are their own product with their own IKPU code.
fn detail(fiscal: &Fiscal, order: &Order) -> Value {
    let (title, code) = match order.kind {
        OrderKind::Print => (fiscal.title.as_str(), fiscal.ikpu.as_str()),
        OrderKind::Digital => (
            fiscal.digital_title.as_deref().unwrap_or("Digital photos"),
            fiscal.digital_ikpu.as_deref().unwrap_or(&fiscal.ikpu),
        ),
    };
    json!({
        "receipt_type": 0,
        "items": [{
            "title": title,
            "price": order.price_per_copy_tiyin,
            "count": order.copies,
            "code": code,
            "package_code": fiscal.package_code,
            "vat_percent": fiscal.vat_percent,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::orders::{self, StoredStatus};

    fn env<'a>(now: i64, delivery_blocked: &'a dyn Fn(OrderKind) -> Option<String>) -> Env<'a> {
        Env {
            now,
            account_field: "order_id",
            fiscal: None,
            configured_key: "",
            key_is_current: &|_| false,
            digital: None,
            delivery_blocked,
        }
    }

    #[test]
    fn a_remembered_order_is_asked_again_about_its_expiry_and_the_printer() {
        let order = orders::sample(7, StoredStatus::Open);
        let works = |_| None;
        let stopped = |_| Some("the printer queue is stopped".to_string());
        assert!(again(&order, &env(999, &works)));
        assert!(!again(&order, &env(1_000, &works)), "expired since");
        assert!(!again(&order, &env(1, &stopped)), "the printer stopped since");
    }
}
