//! SetFiscalData: Payme sends the fiscal receipt of a performed or cancelled transaction.
//! Kept per transaction and type; a repeat replaces the stored copy with the same data.

use serde_json::{json, Value};

use super::{existing, Effects, Env, MethodResult};
use crate::payme::rpc::{Params, RpcError};
use crate::store::transactions;

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, env: &Env<'_>, _: &mut Effects) -> MethodResult {
    let kind = match p.string("type")? {
        k @ ("PERFORM" | "CANCEL") => k,
        _ => return Err(RpcError::invalid("type").into()),
    };
    let fiscal_data = p.object("fiscal_data")?;
    let tx = existing(conn, p)?;
    let data = Value::Object(fiscal_data.clone()).to_string();
    transactions::save_fiscal(conn, &tx.payme_id, kind, &data, env.now)?;
    tracing::info!(order_id = tx.order_id, payme_id = %tx.payme_id, kind, "payme: fiscal receipt stored");
    Ok(json!({ "success": true }))
}
