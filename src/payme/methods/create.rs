//! CreateTransaction: Payme reserves the order for one of its transactions.
//! A repeat with the same id returns the stored reply; another id for a held order gets -31008.

use serde_json::{json, Value};

use super::{expire_if_due, is_simulated, refuse_if_undeliverable, Effects, Env, Fail, MethodResult, TIMEOUT_MS};
use crate::payme::account::payable_order;
use crate::payme::rpc::{Params, RpcError};
use crate::store::transactions::{self, NewTx, PaymeTx, TxState};

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, env: &Env<'_>, _: &mut Effects) -> MethodResult {
    let payme_id = p.payme_id()?;
    let time = p.timestamp("time")?;
    let amount = p.amount()?;
    let account = p.object("account")?;

    if let Some(tx) = transactions::by_payme_id(conn, payme_id)? {
        if tx.state != TxState::Created || expire_if_due(conn, &tx, env.now)? {
            return Err(RpcError::bad_state().into());
        }
        tracing::info!(
            order_id = tx.order_id,
            payme_id,
            transaction = tx.id,
            "payme: CreateTransaction repeated"
        );
        return Ok(reply(&tx));
    }

    let order = payable_order(conn, account, env.account_field, amount, env.now)?;
    if env.now - time > TIMEOUT_MS {
        tracing::warn!(
            order_id = order.id,
            payme_id,
            "payme: CreateTransaction refused, its time is over 12 hours old"
        );
        return Err(Fail::Rpc(RpcError::bad_state()));
    }
    refuse_if_undeliverable(env, order.id, "CreateTransaction")?;
    // The order was judged payable, so a live transaction still on it can only be one past its
    // 12 hours: record its expiry now, or the new row would break "one live transaction per order".
    if let Some(stale) = transactions::live_for_order(conn, order.id)? {
        expire_if_due(conn, &stale, env.now)?;
    }
    let account_json = Value::Object(account.clone()).to_string();
    let new = NewTx {
        payme_id,
        order_id: order.id,
        amount,
        account: &account_json,
        payme_time: time,
        simulated: is_simulated(payme_id),
    };
    let tx = transactions::insert(conn, &new, env.now)?;
    tracing::info!(
        order_id = order.id,
        payme_id,
        transaction = tx.id,
        amount,
        "payme: transaction created"
    );
    Ok(reply(&tx))
}

fn reply(tx: &PaymeTx) -> Value {
    json!({
        "create_time": tx.create_time,
        "transaction": tx.id.to_string(),
        "state": tx.state.code(),
        "receivers": null,
    })
}
