//! CancelTransaction: Payme cancels a created transaction (card declined, timeout) or refunds a
//! performed one. A cancel before perform leaves the order payable until its TTL; a refund closes
//! the order and stops every print of it that is not on paper yet (see `store::jobs`).

use serde_json::{json, Value};

use super::{existing, Effects, Env, MethodResult};
use crate::payme::rpc::Params;
use crate::store::jobs;
use crate::store::orders::{self, StoredStatus};
use crate::store::transactions::{self, PaymeTx, TxState};

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, env: &Env<'_>, _: &mut Effects) -> MethodResult {
    // An unknown transaction is -31003 whatever else the request lacks.
    let tx = existing(conn, p)?;
    let reason = p.integer("reason")?;
    let now = env.now;
    match tx.state {
        TxState::CancelledBeforePerform | TxState::CancelledAfterPerform => {
            tracing::info!(order_id = tx.order_id, payme_id = %tx.payme_id, "payme: CancelTransaction repeated");
            Ok(reply(&tx, tx.cancel_time, tx.state))
        }
        TxState::Created => {
            transactions::mark_cancelled(conn, tx.id, TxState::CancelledBeforePerform, reason, now)?;
            tracing::info!(order_id = tx.order_id, payme_id = %tx.payme_id, transaction = tx.id, reason,
                "payme: transaction cancelled before perform; order stays payable until its TTL");
            Ok(reply(&tx, now, TxState::CancelledBeforePerform))
        }
        TxState::Performed => {
            transactions::mark_cancelled(conn, tx.id, TxState::CancelledAfterPerform, reason, now)?;
            orders::close(conn, tx.order_id, StoredStatus::Refunded, now)?;
            let stopped = jobs::cancel_for_refund(conn, tx.order_id, now)?;
            tracing::warn!(order_id = tx.order_id, payme_id = %tx.payme_id, transaction = tx.id, reason,
                print_jobs_stopped = stopped, "payme: performed transaction refunded, order refunded, its prints stopped");
            Ok(reply(&tx, now, TxState::CancelledAfterPerform))
        }
    }
}

fn reply(tx: &PaymeTx, cancel_time: i64, state: TxState) -> Value {
    json!({ "transaction": tx.id.to_string(), "cancel_time": cancel_time, "state": state.code() })
}
