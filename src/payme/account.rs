//! Turning Payme's `account` object into one of our orders, and the account errors
//! (-31050..-31099, localised, `data` = the field name) when that fails.

use rusqlite::Connection;
use serde_json::{Map, Value};

use super::methods::Fail;
use super::methods::TIMEOUT_MS;
use super::rpc::{code, Params, RpcError, Text};
use crate::store::orders::{NotPayable, Order};
use crate::store::transactions::{self, TxState};

/// Payme may send the order id as a string or a number; both name the same order.
fn order_id(account: &Map<String, Value>, field: &str) -> Option<i64> {
    match account.get(field)? {
        Value::String(s) if !s.is_empty() && s.len() <= 18 && s.bytes().all(|c| c.is_ascii_digit()) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .filter(|id| *id > 0)
}

/// The order id and amount a CheckPerformTransaction names, when both are well-formed: the key of
/// a remembered answer (`payme::recent`).
pub fn named_order(p: &Params<'_>, field: &str) -> Option<(i64, i64)> {
    let amount = p.amount().ok()?;
    Some((order_id(p.object("account").ok()?, field)?, amount))
}

fn not_found(field: &str) -> RpcError {
    RpcError::account(
        code::ORDER_NOT_FOUND,
        field,
        Text {
            ru: "Заказ не найден",
            uz: "Buyurtma topilmadi",
            en: "Order not found",
        },
    )
}

fn not_payable(why: NotPayable, field: &str) -> RpcError {
    let (code, text) = match why {
        // The sandbox expects -31008 for a second transaction on an order awaiting payment.
        NotPayable::Held => return RpcError::bad_state(),
        NotPayable::AlreadyPaid => (
            code::ORDER_PAID,
            Text {
                ru: "Заказ уже оплачен",
                uz: "Buyurtma allaqachon to'langan",
                en: "The order is already paid",
            },
        ),
        NotPayable::Refunded | NotPayable::Cancelled => (
            code::ORDER_CLOSED,
            Text {
                ru: "Заказ отменён",
                uz: "Buyurtma bekor qilingan",
                en: "The order is cancelled",
            },
        ),
        NotPayable::Expired => (
            code::ORDER_EXPIRED,
            Text {
                ru: "Срок оплаты заказа истёк",
                uz: "Buyurtmani to'lash muddati tugagan",
                en: "The order has expired",
            },
        ),
    };
    RpcError::account(code, field, text)
}

/// The order named by `account`, if it exists, costs exactly `amount` and can take a new
/// transaction now. Checks run in the order Payme's sandbox expects: account, amount, state.
pub fn payable_order(
    conn: &Connection,
    account: &Map<String, Value>,
    field: &str,
    amount: i64,
    now: i64,
) -> Result<Order, Fail> {
    let (order, live) = order_id(account, field)
        .map(|id| transactions::order_with_live(conn, id))
        .transpose()?
        .flatten()
        .ok_or_else(|| not_found(field))?;
    if amount != order.amount_tiyin {
        return Err(RpcError::wrong_amount().into());
    }
    // A transaction past Payme's 12 hours no longer holds the order, even before anything has
    // touched it to record the expiry (Create does that before it inserts the new one).
    let live = live.is_some_and(|tx| !(tx.state == TxState::Created && now - tx.payme_time > TIMEOUT_MS));
    order.payability(live, now).map_err(|why| not_payable(why, field))?;
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_ids_may_be_strings_or_numbers_but_nothing_else() {
        let f = "order_id";
        let id = |v: Value| order_id(json!({ "order_id": v }).as_object().unwrap(), f);
        assert_eq!(id(json!("197")), Some(197));
        assert_eq!(id(json!(197)), Some(197));
        for bad in [
            json!(""),
            json!("1 97"),
            json!("-3"),
            json!(0),
            json!(1.5),
            json!("99999999999999999999"),
            json!(null),
        ] {
            assert_eq!(id(bad.clone()), None, "{bad}");
        }
        assert_eq!(order_id(json!({"phone": "1"}).as_object().unwrap(), f), None);
    }
}
