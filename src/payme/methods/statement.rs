//! GetStatement: every transaction created in `[from, to]` by Payme's time, oldest first, for
//! Payme's reconciliation. Failed creates never made a row, so they are absent by construction.

use serde_json::{json, Value};

use super::{Effects, Env, MethodResult};
use crate::payme::rpc::{Params, RpcError};
use crate::store::transactions;

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, _: &Env<'_>, _: &mut Effects) -> MethodResult {
    let from = p.integer("from")?;
    let to = p.integer("to")?;
    if from < 0 {
        return Err(RpcError::invalid("from").into());
    }
    if to < from {
        return Err(RpcError::invalid("to").into());
    }
    let items: Vec<Value> = transactions::statement(conn, from, to)?
        .into_iter()
        .map(|tx| {
            json!({
                "id": tx.payme_id,
                "time": tx.payme_time,
                "amount": tx.amount,
                // Stored by us from a parsed object, so it parses back.
                "account": serde_json::from_str::<Value>(&tx.account).unwrap_or(Value::Null),
                "create_time": tx.create_time,
                "perform_time": tx.perform_time,
                "cancel_time": tx.cancel_time,
                "transaction": tx.id.to_string(),
                "state": tx.state.code(),
                "reason": tx.reason,
                "receivers": null,
            })
        })
        .collect();
    Ok(json!({ "transactions": items }))
}
