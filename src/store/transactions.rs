//! Payme transactions as Payme sees them: ids, Payme's and our times, state and reason.
//! The stored row is the reply: repeats of Create, Perform and Cancel read their answer back from
//! here instead of recomputing it, which is what keeps them identical.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};

use super::orders::Order;
use super::FromRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    Created = 1,
    Performed = 2,
    CancelledBeforePerform = -1,
    CancelledAfterPerform = -2,
}

impl TxState {
    pub fn code(self) -> i64 {
        self as i64
    }

    fn from_code(code: i64) -> rusqlite::Result<TxState> {
        Ok(match code {
            1 => TxState::Created,
            2 => TxState::Performed,
            -1 => TxState::CancelledBeforePerform,
            -2 => TxState::CancelledAfterPerform,
            other => return Err(super::bad_value("payme_transactions.state", &other.to_string())),
        })
    }
}

impl FromSql for TxState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        TxState::from_code(value.as_i64()?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

row_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PaymeTx {
        /// Ours: sent to Payme as the `transaction` string.
        pub id: i64,
        pub payme_id: String,
        pub order_id: i64,
        pub amount: i64,
        /// The `account` object as Payme sent it (JSON text), echoed in GetStatement.
        pub account: String,
        pub payme_time: i64,
        pub create_time: i64,
        pub perform_time: i64,
        pub cancel_time: i64,
        pub state: TxState,
        pub reason: Option<i64>,
    }
}

/// The fields of a new transaction that Payme gives us.
pub struct NewTx<'a> {
    pub payme_id: &'a str,
    pub order_id: i64,
    pub amount: i64,
    pub account: &'a str,
    pub payme_time: i64,
    /// Made by `photoboothd pay`, not by Payme: never in a statement, a report or a metric.
    pub simulated: bool,
}

pub fn by_payme_id(conn: &Connection, payme_id: &str) -> rusqlite::Result<Option<PaymeTx>> {
    PaymeTx::one(conn, "SELECT * FROM payme_transactions WHERE payme_id = ?1", [payme_id])
}

/// What an order's live transaction says about a new one: its state and Payme's time of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    pub state: TxState,
    pub payme_time: i64,
}

/// An order and, if a transaction in state 1 or 2 holds it (at most one, by a unique index), that
/// transaction's state and Payme time: what a new payment must know, in one statement, since every
/// CheckPerformTransaction asks it (two statements were a visible share of a Check: BENCHMARKS.md,
/// issue 17).
pub fn order_with_live(conn: &Connection, order_id: i64) -> rusqlite::Result<Option<(Order, Option<Live>)>> {
    conn.prepare_cached(
        "SELECT o.*, t.state, t.payme_time FROM orders o
         LEFT JOIN payme_transactions t ON t.order_id = o.id AND t.state IN (1, 2)
         WHERE o.id = ?1",
    )?
    .query_row([order_id], |row| {
        let order = Order::from_row(row)?;
        // The two columns after `o.*`, by position: `orders` has no `state` or `payme_time`,
        // but a position needs no name search.
        let n = row.as_ref().column_count();
        let state: Option<TxState> = row.get(n - 2)?;
        let payme_time: Option<i64> = row.get(n - 1)?;
        Ok((
            order,
            state
                .zip(payme_time)
                .map(|(state, payme_time)| Live { state, payme_time }),
        ))
    })
    .optional()
}

/// The transaction in state 1 or 2 that holds the order, if any (at most one, by a unique index).
pub fn live_for_order(conn: &Connection, order_id: i64) -> rusqlite::Result<Option<PaymeTx>> {
    PaymeTx::one(
        conn,
        "SELECT * FROM payme_transactions WHERE order_id = ?1 AND state IN (1, 2)",
        [order_id],
    )
}

pub fn for_order(conn: &Connection, order_id: i64) -> rusqlite::Result<Vec<PaymeTx>> {
    PaymeTx::all(
        conn,
        "SELECT * FROM payme_transactions WHERE order_id = ?1 ORDER BY id",
        [order_id],
    )
}

pub fn insert(conn: &Connection, new: &NewTx<'_>, create_time: i64) -> rusqlite::Result<PaymeTx> {
    conn.prepare_cached(
        "INSERT INTO payme_transactions (payme_id, order_id, amount, account, payme_time, create_time, state, simulated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
    )?
    .execute(params![
        new.payme_id,
        new.order_id,
        new.amount,
        new.account,
        new.payme_time,
        create_time,
        new.simulated
    ])?;
    by_payme_id(conn, new.payme_id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

pub fn mark_performed(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE payme_transactions SET state = 2, perform_time = ?2 WHERE id = ?1 AND state = 1")?
        .execute(params![id, now])?;
    Ok(())
}

/// State 1 → -1 or 2 → -2, keeping the reason Payme gave (or 4 for our own timeout).
pub fn mark_cancelled(conn: &Connection, id: i64, to: TxState, reason: i64, now: i64) -> rusqlite::Result<()> {
    debug_assert!(matches!(
        to,
        TxState::CancelledBeforePerform | TxState::CancelledAfterPerform
    ));
    conn.prepare_cached("UPDATE payme_transactions SET state = ?2, reason = ?3, cancel_time = ?4 WHERE id = ?1")?
        .execute(params![id, to.code(), reason, now])?;
    Ok(())
}

/// Every transaction Payme created with `from <= payme_time <= to`, oldest first (simulated ones
/// are not Payme's and are left out).
pub fn statement(conn: &Connection, from: i64, to: i64) -> rusqlite::Result<Vec<PaymeTx>> {
    PaymeTx::all(
        conn,
        "SELECT * FROM payme_transactions WHERE payme_time BETWEEN ?1 AND ?2 AND simulated = 0
         ORDER BY payme_time, id",
        params![from, to],
    )
}

pub fn save_fiscal(conn: &Connection, payme_id: &str, kind: &str, data: &str, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO fiscal_receipts (payme_id, type, fiscal_data, received_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (payme_id, type) DO UPDATE SET fiscal_data = excluded.fiscal_data,
                                                    received_at = excluded.received_at",
    )?
    .execute(params![payme_id, kind, data, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{orders, temp_store};

    fn tx(n: u32, order_id: i64, time: i64) -> NewTx<'static> {
        NewTx {
            payme_id: ["p1", "p2", "p3"][n as usize],
            order_id,
            amount: 200,
            account: "{}",
            payme_time: time,
            simulated: false,
        }
    }

    /// The one-statement read gives what the order by id and `live_for_order` give: no
    /// transaction, a created one, a performed one, and cancelled ones that hold nothing.
    #[test]
    fn order_with_live_is_the_order_and_its_live_transaction() {
        let (_dir, store) = temp_store();
        store
            .write(|c| {
                let order = orders::insert(c, 2, 100, 0, 60_000)?.id;
                let read = |c: &Connection| order_with_live(c, order).map(|r| r.map(|(o, live)| (o.id, live)));
                assert_eq!(read(c)?, Some((order, None)));
                assert_eq!(order_with_live(c, order + 1)?, None, "an unknown order");

                let first = insert(c, &tx(0, order, 10), 11)?;
                let live = |state| Some((order, Some(Live { state, payme_time: 10 })));
                assert_eq!(read(c)?, live(TxState::Created));
                mark_cancelled(c, first.id, TxState::CancelledBeforePerform, 3, 12)?;
                assert_eq!(read(c)?, Some((order, None)), "a cancelled transaction holds nothing");

                let second = insert(c, &tx(1, order, 20), 21)?;
                mark_performed(c, second.id, 22)?;
                let performed = Some((
                    order,
                    Some(Live {
                        state: TxState::Performed,
                        payme_time: 20,
                    }),
                ));
                assert_eq!(read(c)?, performed);
                mark_cancelled(c, second.id, TxState::CancelledAfterPerform, 5, 23)?;
                assert_eq!(read(c)?, Some((order, None)));
                assert_eq!(live_for_order(c, order)?, None);
                Ok(())
            })
            .unwrap();
    }
}
