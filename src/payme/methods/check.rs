//! CheckTransaction: the stored state of one transaction. Times not reached yet are 0.

use serde_json::json;

use super::{existing, Effects, Env, MethodResult};
use crate::payme::rpc::Params;

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, _: &Env<'_>, _: &mut Effects) -> MethodResult {
    let tx = existing(conn, p)?;
    Ok(json!({
        "create_time": tx.create_time,
        "perform_time": tx.perform_time,
        "cancel_time": tx.cancel_time,
        "transaction": tx.id.to_string(),
        "state": tx.state.code(),
        "reason": tx.reason,
    }))
}
