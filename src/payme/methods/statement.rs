//! GetStatement: every transaction created in `[from, to]` by Payme's time, oldest first, for
//! Payme's reconciliation. Failed creates never made a row, so they are absent by construction.

use serde_json::{json, Value};

use super::{report, Effects, Env, MethodResult};
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
            let mut item = report(&tx);
            item["id"] = json!(tx.payme_id);
            item["time"] = json!(tx.payme_time);
            item["amount"] = json!(tx.amount);
            // Stored by us from a parsed object, so it parses back.
            item["account"] = serde_json::from_str::<Value>(&tx.account).unwrap_or(Value::Null);
            item["receivers"] = Value::Null;
            item
        })
        .collect();
    Ok(json!({ "transactions": items }))
}
