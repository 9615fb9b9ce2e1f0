//! The eight Merchant API methods, one file each. A method validates everything before it writes,
//! so an error reply changes nothing; the one exception is the lazy 12-hour expiry, which Payme
//! expects to be recorded even though the reply is -31008.

mod cancel;
mod change_password;
mod check;
pub(super) mod check_perform;
mod create;
mod perform;
mod set_fiscal_data;
mod statement;

use rusqlite::Connection;
use serde_json::Value;

use super::rpc::{Params, RpcError};
use crate::config::Fiscal;
use crate::store::transactions::{self, PaymeTx, TxState};
use crate::store::{Order, OrderKind};

/// Payme cancels a transaction 12 hours after it created it (measured from Payme's `time`).
pub const TIMEOUT_MS: i64 = 12 * 60 * 60 * 1000;
/// The cancel reason Payme defines for a timeout.
pub const REASON_TIMEOUT: i64 = 4;

/// What a method needs besides the database.
pub struct Env<'a> {
    pub now: i64,
    pub account_field: &'a str,
    pub fiscal: Option<&'a Fiscal>,
    /// The configured key, recorded with a rotation so a restart knows what it replaced.
    pub configured_key: &'a str,
    pub key_is_current: &'a dyn Fn(&str) -> bool,
    /// Download links (`[digital]`), if this merchant makes them.
    pub digital: Option<crate::digital::link::Links>,
    /// `Some(reason)` while the booth cannot deliver an order of this kind (see `payme::DeliveryGate`).
    pub delivery_blocked: &'a dyn Fn(OrderKind) -> Option<String>,
}

/// Ids of the transactions `photoboothd pay` simulates start with this; Payme's own ids are 24
/// hex digits and never do.
pub const SIMULATED_PREFIX: &str = "photoboothd-pay-";

pub fn is_simulated(payme_id: &str) -> bool {
    payme_id.starts_with(SIMULATED_PREFIX)
}

/// "No payment without its deliverable": a new payment is refused with -31008 while the booth
/// cannot deliver it (see `payme::DeliveryGate`). Only Check and a new Create ask; Perform of a created transaction goes on
/// (the customer has confirmed in the app) and its job waits for the printer.
fn refuse_if_undeliverable(env: &Env<'_>, order: &Order, method: &str) -> Result<(), Fail> {
    let order_id = order.id;
    match (env.delivery_blocked)(order.kind) {
        Some(why) => {
            tracing::warn!(order_id, kind = order.kind.as_str(), reason = %why, "payme: {method} refused (-31008): the booth cannot deliver now");
            Err(RpcError::bad_state().into())
        }
        None => Ok(()),
    }
}

/// What must happen after the method's transaction commits, and only then.
#[derive(Default)]
pub struct Effects {
    /// A print job was queued: wake the print loop.
    pub job_queued: Option<i64>,
    /// ChangePassword: switch the live key.
    pub new_key: Option<String>,
    /// CheckPerformTransaction allowed this order: remembered for the same question asked again
    /// (`payme::recent`).
    pub allowed: Option<Order>,
}

/// Why a method did not produce a result: a reply Payme should see, or a store failure that
/// rolls the transaction back and becomes -32400.
#[derive(Debug)]
pub enum Fail {
    Rpc(RpcError),
    Store(rusqlite::Error),
}

impl From<RpcError> for Fail {
    fn from(e: RpcError) -> Fail {
        Fail::Rpc(e)
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Fail {
        Fail::Store(e)
    }
}

pub type MethodResult = Result<Value, Fail>;
type Run = fn(&Connection, &Params<'_>, &Env<'_>, &mut Effects) -> MethodResult;

/// Read methods run on a reader connection; write methods inside one `BEGIN IMMEDIATE`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A point lookup by primary key or unique index: microseconds, so the webhook runs it in
    /// place on the async thread when a reader connection is free (no blocking-pool hop).
    Lookup,
    /// A read that may scan (a statement over a period): on a blocking thread.
    Read,
    Write,
}

pub struct Method {
    pub name: &'static str,
    pub access: Access,
    pub run: Run,
}

const METHODS: &[Method] = &[
    Method {
        name: "CheckPerformTransaction",
        access: Access::Lookup,
        run: check_perform::run,
    },
    Method {
        name: "CreateTransaction",
        access: Access::Write,
        run: create::run,
    },
    Method {
        name: "PerformTransaction",
        access: Access::Write,
        run: perform::run,
    },
    Method {
        name: "CancelTransaction",
        access: Access::Write,
        run: cancel::run,
    },
    Method {
        name: "CheckTransaction",
        access: Access::Lookup,
        run: check::run,
    },
    Method {
        name: "GetStatement",
        access: Access::Read,
        run: statement::run,
    },
    Method {
        name: "ChangePassword",
        access: Access::Write,
        run: change_password::run,
    },
    Method {
        name: "SetFiscalData",
        access: Access::Write,
        run: set_fiscal_data::run,
    },
];

pub fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    METHODS.iter().map(|m| m.name)
}

/// The transaction Payme names by `params.id`, or -31003.
fn existing(conn: &Connection, p: &Params<'_>) -> Result<PaymeTx, Fail> {
    let id = p.payme_id()?;
    Ok(transactions::by_payme_id(conn, id)?.ok_or_else(RpcError::tx_not_found)?)
}

/// What CheckTransaction reports of a transaction (GetStatement adds Payme's own fields).
fn report(tx: &PaymeTx) -> serde_json::Value {
    serde_json::json!({
        "create_time": tx.create_time,
        "perform_time": tx.perform_time,
        "cancel_time": tx.cancel_time,
        "transaction": tx.id.to_string(),
        "state": tx.state.code(),
        "reason": tx.reason,
    })
}

/// Lazily applies the 12-hour rule to a created transaction: past it, the transaction is
/// cancelled with reason 4 (and its order is payable again until its own TTL). Returns whether
/// it expired.
fn expire_if_due(conn: &Connection, tx: &PaymeTx, now: i64) -> rusqlite::Result<bool> {
    if tx.state != TxState::Created || now - tx.payme_time <= TIMEOUT_MS {
        return Ok(false);
    }
    transactions::mark_cancelled(conn, tx.id, TxState::CancelledBeforePerform, REASON_TIMEOUT, now)?;
    tracing::warn!(
        order_id = tx.order_id,
        payme_id = %tx.payme_id,
        transaction = tx.id,
        "payme: transaction expired after 12 hours without perform; cancelled with reason 4"
    );
    Ok(true)
}
