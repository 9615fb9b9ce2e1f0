//! PerformTransaction: the money moved. In one SQLite transaction the Payme transaction goes to
//! state 2, the order to paid and its print job to the queue; the print loop is woken only after
//! that commit.

use serde_json::{json, Value};

use super::{existing, expire_if_due, is_simulated, Effects, Env, MethodResult};
use crate::payme::rpc::{Params, RpcError};
use crate::store::jobs;
use crate::store::orders::{self, StoredStatus};
use crate::store::transactions::{self, PaymeTx, TxState};

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, env: &Env<'_>, fx: &mut Effects) -> MethodResult {
    let tx = existing(conn, p)?;
    match tx.state {
        TxState::Performed => {
            tracing::info!(order_id = tx.order_id, payme_id = %tx.payme_id, "payme: PerformTransaction repeated");
            Ok(reply(&tx, tx.perform_time))
        }
        TxState::Created => {
            if expire_if_due(conn, &tx, env.now)? {
                return Err(RpcError::bad_state().into());
            }
            let order = orders::get(conn, tx.order_id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            // A live transaction keeps its order open, so this only trips on a damaged database.
            if order.status != StoredStatus::Open {
                tracing::error!(order_id = order.id, payme_id = %tx.payme_id, status = ?order.status,
                    "payme: PerformTransaction on an order that is no longer open");
                return Err(RpcError::bad_state().into());
            }
            transactions::mark_performed(conn, tx.id, env.now)?;
            orders::mark_paid(conn, order.id, env.now)?;
            if is_simulated(&tx.payme_id) {
                orders::mark_simulated(conn, order.id)?;
            }
            let job_id = jobs::insert_paid(conn, order.id, order.copies, env.now)?;
            fx.job_queued = Some(job_id);
            tracing::info!(order_id = order.id, payme_id = %tx.payme_id, transaction = tx.id,
                amount = tx.amount, job_id, copies = order.copies, "payme: transaction performed, order paid, print job queued");
            Ok(reply(&tx, env.now))
        }
        TxState::CancelledBeforePerform | TxState::CancelledAfterPerform => Err(RpcError::bad_state().into()),
    }
}

fn reply(tx: &PaymeTx, perform_time: i64) -> Value {
    json!({ "transaction": tx.id.to_string(), "perform_time": perform_time, "state": TxState::Performed.code() })
}
