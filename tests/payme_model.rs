//! Model-based property test of the Payme merchant (`docs/payme.md`: methods, states, error codes, the 12-hour rule),
//! in-process: a real SQLite file in a temp dir per case, a `Merchant` reading an injected clock,
//! and a small reference model that predicts every reply exactly.
//!
//! Each case makes 1–4 orders, then runs 1–60 random steps: the eight Merchant API methods with ids
//! from a small pool (so repeats are frequent), unknown ids, wrong and missing keys, wrong and
//! malformed amounts, unknown orders, Payme `time`s around now and past 12 hours, and clock moves
//! (small steps, to an order's TTL, to a transaction's 12-hour boundary, past 12 hours). After every
//! step it checks the reply against the model, the whole database against the model, invariants read
//! straight from SQLite, the statement against CheckTransaction, byte-identical repeats, and that a
//! failed call wrote nothing but the documented lazy 12-hour expiry.
//!
//! `cargo test --test payme_model` runs a bounded number of cases (`DEFAULT_CASES`); set
//! `PROPTEST_CASES=2000` for a long run, and `PROPTEST_RNG_SEED` to replay one.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use photoboothd::config::Fiscal;
use photoboothd::payme::auth::{basic_header, KeyRing};
use photoboothd::payme::{Merchant, Reply};
use photoboothd::store::{orders, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use rusqlite::types::Value as Sql;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

/// Cases per `cargo test` run (about 4 s in a debug build on 2 cores); `PROPTEST_CASES` overrides it.
const DEFAULT_CASES: u32 = 128;
const TWELVE_H: i64 = 43_200_000;
/// A 13-digit UTC ms start for the injected clock.
const BASE: i64 = 1_790_000_000_000;
const PRICE: i64 = 150_000;
/// The configured key first; the others are what ChangePassword may rotate to.
const KEYS: [&str; 3] = ["TEST-KEY-0:abc%&?@#!", "New&%!#@?:key-1-zzzzzzzzzzzzzzzzzzzz", "k2"];
/// Payme ids the steps draw from; an id nobody created is an unknown id.
const IDS: usize = 5;
const UNKNOWN_METHODS: [&str; 4] = ["Foo", "checkTransaction", "GetStatements", ""];

fn payme_id(i: usize) -> String {
    format!("{:024x}", 0x5305_e3ba_b097_f420_u64 + i as u64)
}

fn fiscal() -> Fiscal {
    Fiscal {
        title: "Photo print".into(),
        ikpu: "10305008002000000".into(),
        package_code: "1545643".into(),
        vat_percent: 12,
        digital_ikpu: None,
        digital_title: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The operations a step may take.

#[derive(Debug, Clone)]
enum AuthSel {
    Current,
    /// `Paycom:KEYS[i]`: right only if that is the key in force (old keys after a rotation).
    Key(usize),
    /// The current key with the scheme spelled `basic` (schemes are case-insensitive).
    LowerScheme,
    Wrong,
    Missing,
    OtherLogin,
    NotBasic,
}

#[derive(Debug, Clone)]
enum OrderSel {
    Str(usize),
    Num(usize),
    /// The order id plus a field Payme might add: tolerated, and echoed in GetStatement.
    StrExtra(usize),
    Unknown,
    NotDigits,
    Zero,
    NoField,
}

#[derive(Debug, Clone)]
enum AmountSel {
    Exact,
    Plus1,
    Minus1,
    Zero,
    Negative,
    Str,
    Fraction,
    Missing,
    /// The amount of another order (equal when the copies are).
    OtherOrder(usize),
}

#[derive(Debug, Clone)]
enum TimeSel {
    Now,
    Offset(i64),
    /// now − 12 h + d, d in -2..=2: both sides of the boundary.
    Twelve(i64),
    /// now − 12 h + d, d > 0: expires after a small clock step.
    AlmostStale(i64),
    /// now − 12 h − 1 − d.
    Stale(i64),
    Zero,
    Str,
}

#[derive(Debug, Clone)]
enum IdSel {
    Pool(usize),
    /// The Payme id of the model's i-th transaction (mod their count), or `Pool(i)` if none yet.
    Existing(usize),
    Bad,
}

#[derive(Debug, Clone)]
enum WindowSel {
    All,
    Around(i64, i64),
    /// A one-millisecond window on a pool transaction's Payme time (or everything if it has none).
    Point(usize),
    NegativeFrom,
    Inverted,
    StrFrom,
}

#[derive(Debug, Clone)]
enum PwSel {
    Key(usize),
    Empty,
    Control,
    Missing,
    NotString,
}

#[derive(Debug, Clone)]
enum FiscalSel {
    Perform,
    Cancel,
    Other,
    MissingType,
    NoData,
}

#[derive(Debug, Clone)]
enum ClockSel {
    Small(i64),
    Minutes(i64),
    /// To order i's `expires_at` + d (d in -1..=1), if that is ahead.
    ToOrderTtl(usize, i64),
    PastTwelve(i64),
    /// To the model's i-th transaction's Payme time + 12 h + d (d in -1..=1), if that is ahead.
    ToTxTimeout(usize, i64),
}

#[derive(Debug, Clone)]
enum Op {
    CheckPerform(AuthSel, OrderSel, AmountSel),
    Create(AuthSel, IdSel, TimeSel, OrderSel, AmountSel),
    Perform(AuthSel, IdSel),
    Cancel(AuthSel, IdSel, Option<i64>),
    Check(AuthSel, IdSel),
    Statement(AuthSel, WindowSel),
    ChangePassword(AuthSel, PwSel),
    SetFiscal(AuthSel, IdSel, FiscalSel),
    Unknown(AuthSel, &'static str),
    Clock(ClockSel),
}

#[derive(Debug, Clone)]
struct Case {
    /// (copies, ttl ms) per order, all made at `BASE`.
    orders: Vec<(u32, i64)>,
    fiscal: bool,
    ops: Vec<Op>,
}

fn auth_strategy() -> impl Strategy<Value = AuthSel> {
    prop_oneof![
        80 => Just(AuthSel::Current),
        3 => (0..KEYS.len()).prop_map(AuthSel::Key),
        1 => Just(AuthSel::LowerScheme),
        1 => Just(AuthSel::Wrong),
        1 => Just(AuthSel::Missing),
        1 => Just(AuthSel::OtherLogin),
        1 => Just(AuthSel::NotBasic),
    ]
}

fn order_strategy() -> impl Strategy<Value = OrderSel> {
    prop_oneof![
        12 => (0usize..4).prop_map(OrderSel::Str),
        2 => (0usize..4).prop_map(OrderSel::Num),
        1 => (0usize..4).prop_map(OrderSel::StrExtra),
        1 => Just(OrderSel::Unknown),
        1 => Just(OrderSel::NotDigits),
        1 => Just(OrderSel::Zero),
        1 => Just(OrderSel::NoField),
    ]
}

fn amount_strategy() -> impl Strategy<Value = AmountSel> {
    prop_oneof![
        40 => Just(AmountSel::Exact),
        1 => Just(AmountSel::Plus1),
        1 => Just(AmountSel::Minus1),
        1 => Just(AmountSel::Zero),
        1 => Just(AmountSel::Negative),
        1 => Just(AmountSel::Str),
        1 => Just(AmountSel::Fraction),
        1 => Just(AmountSel::Missing),
        1 => (0usize..4).prop_map(AmountSel::OtherOrder),
    ]
}

fn time_strategy() -> impl Strategy<Value = TimeSel> {
    prop_oneof![
        10 => Just(TimeSel::Now),
        3 => (-60_000i64..=5_000).prop_map(TimeSel::Offset),
        1 => (-2i64..=2).prop_map(TimeSel::Twelve),
        2 => (1i64..=5_000).prop_map(TimeSel::AlmostStale),
        1 => (0i64..=3_600_000).prop_map(TimeSel::Stale),
        1 => Just(TimeSel::Zero),
        1 => Just(TimeSel::Str),
    ]
}

fn id_strategy() -> impl Strategy<Value = IdSel> {
    prop_oneof![
        12 => (0..IDS).prop_map(IdSel::Pool),
        20 => (0..IDS).prop_map(IdSel::Existing),
        1 => Just(IdSel::Bad),
    ]
}

fn window_strategy() -> impl Strategy<Value = WindowSel> {
    prop_oneof![
        2 => Just(WindowSel::All),
        3 => (-2 * TWELVE_H..=TWELVE_H / 2, 0..=TWELVE_H).prop_map(|(f, l)| WindowSel::Around(f, l)),
        2 => (0..IDS).prop_map(WindowSel::Point),
        1 => Just(WindowSel::NegativeFrom),
        1 => Just(WindowSel::Inverted),
        1 => Just(WindowSel::StrFrom),
    ]
}

fn pw_strategy() -> impl Strategy<Value = PwSel> {
    prop_oneof![
        6 => (0..KEYS.len()).prop_map(PwSel::Key),
        1 => Just(PwSel::Empty),
        1 => Just(PwSel::Control),
        1 => Just(PwSel::Missing),
        1 => Just(PwSel::NotString),
    ]
}

fn fiscal_strategy() -> impl Strategy<Value = FiscalSel> {
    prop_oneof![
        3 => Just(FiscalSel::Perform),
        3 => Just(FiscalSel::Cancel),
        1 => Just(FiscalSel::Other),
        1 => Just(FiscalSel::MissingType),
        1 => Just(FiscalSel::NoData),
    ]
}

fn clock_strategy() -> impl Strategy<Value = ClockSel> {
    prop_oneof![
        8 => (0i64..=5_000).prop_map(ClockSel::Small),
        2 => (60_000i64..=3_600_000).prop_map(ClockSel::Minutes),
        1 => (0usize..4, -1i64..=1).prop_map(|(i, d)| ClockSel::ToOrderTtl(i, d)),
        1 => (1i64..=3_600_000).prop_map(ClockSel::PastTwelve),
        2 => (0..IDS, -1i64..=1).prop_map(|(i, d)| ClockSel::ToTxTimeout(i, d)),
    ]
}

fn reason_strategy() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        10 => (1i64..=5).prop_map(Some),
        2 => Just(Some(10)),
        1 => Just(None),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (auth_strategy(), order_strategy(), amount_strategy()).prop_map(|(a, o, m)| Op::CheckPerform(a, o, m)),
        7 => (auth_strategy(), id_strategy(), time_strategy(), order_strategy(), amount_strategy())
            .prop_map(|(a, i, t, o, m)| Op::Create(a, i, t, o, m)),
        5 => (auth_strategy(), id_strategy()).prop_map(|(a, i)| Op::Perform(a, i)),
        4 => (auth_strategy(), id_strategy(), reason_strategy()).prop_map(|(a, i, r)| Op::Cancel(a, i, r)),
        2 => (auth_strategy(), id_strategy()).prop_map(|(a, i)| Op::Check(a, i)),
        2 => (auth_strategy(), window_strategy()).prop_map(|(a, w)| Op::Statement(a, w)),
        1 => (auth_strategy(), pw_strategy()).prop_map(|(a, p)| Op::ChangePassword(a, p)),
        2 => (auth_strategy(), id_strategy(), fiscal_strategy()).prop_map(|(a, i, f)| Op::SetFiscal(a, i, f)),
        1 => (auth_strategy(), prop::sample::select(&UNKNOWN_METHODS[..])).prop_map(|(a, m)| Op::Unknown(a, m)),
        3 => clock_strategy().prop_map(Op::Clock),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let ttl = prop::sample::select(vec![60_000i64, 600_000, 3_600_000, 13 * 3_600_000, 24 * 3_600_000]);
    (
        prop::collection::vec((1u32..=3, ttl), 1..=4),
        any::<bool>(),
        prop::collection::vec(op_strategy(), 1..=60),
    )
        .prop_map(|(orders, fiscal, ops)| Case { orders, fiscal, ops })
}

// ---------------------------------------------------------------------------------------------
// The reference model.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OStatus {
    Open,
    Paid,
    Refunded,
}

impl OStatus {
    fn as_str(self) -> &'static str {
        match self {
            OStatus::Open => "open",
            OStatus::Paid => "paid",
            OStatus::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone)]
struct MOrder {
    id: i64,
    copies: u32,
    amount: i64,
    expires_at: i64,
    status: OStatus,
    paid_at: Option<i64>,
    closed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
struct MTx {
    /// Our id, the `transaction` string.
    rowid: i64,
    payme_id: String,
    order_id: i64,
    amount: i64,
    account: Value,
    payme_time: i64,
    create_time: i64,
    perform_time: i64,
    cancel_time: i64,
    state: i64,
    reason: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
struct MJob {
    id: i64,
    order_id: i64,
    copies: u32,
    status: String,
}

/// An error reply: the code and `error.data`.
type RpcErr = (i64, Option<Value>);
type Expected = Result<Value, RpcErr>;

struct Outcome {
    expect: Expected,
    /// The Payme id the lazy 12-hour rule cancelled in this call, if any.
    expired: Option<String>,
    /// The print job the print loop must be woken for.
    wake: Option<i64>,
}

fn invalid(field: &str) -> RpcErr {
    (-32600, Some(json!(field)))
}

fn wrong_amount() -> RpcErr {
    (-31001, Some(json!("amount")))
}

fn account_err(code: i64) -> RpcErr {
    (code, Some(json!("order_id")))
}

fn bad_state() -> RpcErr {
    (-31008, None)
}

fn not_found() -> RpcErr {
    (-31003, None)
}

struct Model {
    now: i64,
    key: String,
    rotated: Option<String>,
    fiscal: bool,
    orders: Vec<MOrder>,
    txs: Vec<MTx>,
    jobs: Vec<MJob>,
    receipts: BTreeSet<(String, String)>,
    next_tx: i64,
    next_job: i64,
}

fn p_id(p: &Map<String, Value>) -> Result<String, RpcErr> {
    match p.get("id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_graphic()) => {
            Ok(s.clone())
        }
        _ => Err(invalid("id")),
    }
}

fn p_int(p: &Map<String, Value>, name: &str) -> Result<i64, RpcErr> {
    p.get(name).and_then(Value::as_i64).ok_or_else(|| invalid(name))
}

fn p_amount(p: &Map<String, Value>) -> Result<i64, RpcErr> {
    p.get("amount")
        .and_then(Value::as_i64)
        .filter(|a| *a > 0)
        .ok_or_else(wrong_amount)
}

fn p_object<'a>(p: &'a Map<String, Value>, name: &str) -> Result<&'a Map<String, Value>, RpcErr> {
    p.get(name).and_then(Value::as_object).ok_or_else(|| invalid(name))
}

impl Model {
    fn tx(&self, payme_id: &str) -> Option<usize> {
        self.txs.iter().position(|t| t.payme_id == payme_id)
    }

    fn order_ix(&self, id: i64) -> usize {
        self.orders.iter().position(|o| o.id == id).expect("model order")
    }

    /// The order an `account` names: a digit string or a positive integer under `order_id`.
    fn order_of(&self, account: &Map<String, Value>) -> Result<usize, RpcErr> {
        let id = match account.get("order_id") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 18 && s.bytes().all(|c| c.is_ascii_digit()) => {
                s.parse::<i64>().ok()
            }
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        id.filter(|id| *id > 0)
            .and_then(|id| self.orders.iter().position(|o| o.id == id))
            .ok_or_else(|| account_err(-31050))
    }

    /// Account → amount → payability, the order Payme's sandbox expects.
    fn payable(&self, account: &Map<String, Value>, amount: i64) -> Result<usize, RpcErr> {
        let ix = self.order_of(account)?;
        let o = &self.orders[ix];
        if amount != o.amount {
            return Err(wrong_amount());
        }
        let now = self.now;
        if self
            .txs
            .iter()
            .any(|t| t.order_id == o.id && (t.state == 2 || (t.state == 1 && now - t.payme_time <= TWELVE_H)))
        {
            // Held by a pending or performed transaction: the sandbox wants -31008. A pending one
            // past Payme's 12 hours no longer holds it.
            return Err(bad_state());
        }
        match o.status {
            OStatus::Paid => Err(account_err(-31051)),
            OStatus::Refunded => Err(account_err(-31052)),
            OStatus::Open if self.now >= o.expires_at => Err(account_err(-31053)),
            OStatus::Open => Ok(ix),
        }
    }

    fn check_reply(tx: &MTx) -> Value {
        json!({
            "create_time": tx.create_time, "perform_time": tx.perform_time, "cancel_time": tx.cancel_time,
            "transaction": tx.rowid.to_string(), "state": tx.state, "reason": tx.reason,
        })
    }

    fn create_reply(tx: &MTx) -> Value {
        json!({ "create_time": tx.create_time, "transaction": tx.rowid.to_string(), "state": 1, "receivers": null })
    }

    fn statement_item(tx: &MTx) -> Value {
        json!({
            "id": tx.payme_id, "time": tx.payme_time, "amount": tx.amount, "account": tx.account,
            "create_time": tx.create_time, "perform_time": tx.perform_time, "cancel_time": tx.cancel_time,
            "transaction": tx.rowid.to_string(), "state": tx.state, "reason": tx.reason, "receivers": null,
        })
    }

    /// The 12-hour rule on a created transaction, measured from Payme's `time`.
    fn expire_if_due(&mut self, ix: usize, out: &mut Outcome) -> bool {
        let now = self.now;
        let tx = &mut self.txs[ix];
        if tx.state != 1 || now - tx.payme_time <= TWELVE_H {
            return false;
        }
        tx.state = -1;
        tx.reason = Some(4);
        tx.cancel_time = now;
        out.expired = Some(tx.payme_id.clone());
        true
    }

    fn apply(&mut self, authorized: bool, method: &str, p: &Map<String, Value>) -> Outcome {
        let mut out = Outcome {
            expect: Ok(Value::Null),
            expired: None,
            wake: None,
        };
        out.expect = if !authorized {
            Err((-32504, None))
        } else {
            self.dispatch(method, p, &mut out)
        };
        out
    }

    fn dispatch(&mut self, method: &str, p: &Map<String, Value>, out: &mut Outcome) -> Expected {
        let now = self.now;
        match method {
            "CheckPerformTransaction" => {
                let amount = p_amount(p)?;
                let account = p_object(p, "account")?;
                let ix = self.payable(account, amount)?;
                let mut result = json!({ "allow": true });
                if self.fiscal {
                    let f = fiscal();
                    result["detail"] = json!({ "receipt_type": 0, "items": [{
                        "title": f.title, "price": PRICE, "count": self.orders[ix].copies, "code": f.ikpu,
                        "package_code": f.package_code, "vat_percent": f.vat_percent }] });
                }
                Ok(result)
            }
            "CreateTransaction" => {
                let id = p_id(p)?;
                let time = p_int(p, "time")
                    .ok()
                    .filter(|t| *t > 0)
                    .ok_or_else(|| invalid("time"))?;
                let amount = p_amount(p)?;
                let account = p_object(p, "account")?;
                if let Some(ix) = self.tx(&id) {
                    // A repeat: found by id first; its amount and account are not looked at again.
                    if self.txs[ix].state != 1 || self.expire_if_due(ix, out) {
                        return Err(bad_state());
                    }
                    return Ok(Model::create_reply(&self.txs[ix]));
                }
                let ox = self.payable(account, amount)?;
                if now - time > TWELVE_H {
                    return Err(bad_state());
                }
                // A stale holder past its 12 hours is expired before the new one goes in.
                let order_id = self.orders[ox].id;
                if let Some(stale) = self.txs.iter().position(|t| t.order_id == order_id && t.state == 1) {
                    self.expire_if_due(stale, out);
                }
                let tx = MTx {
                    rowid: self.next_tx,
                    payme_id: id,
                    order_id: self.orders[ox].id,
                    amount,
                    account: Value::Object(account.clone()),
                    payme_time: time,
                    create_time: now,
                    perform_time: 0,
                    cancel_time: 0,
                    state: 1,
                    reason: None,
                };
                self.next_tx += 1;
                let reply = Model::create_reply(&tx);
                self.txs.push(tx);
                Ok(reply)
            }
            "PerformTransaction" => {
                let id = p_id(p)?;
                let ix = self.tx(&id).ok_or_else(not_found)?;
                match self.txs[ix].state {
                    2 => {}
                    1 => {
                        if self.expire_if_due(ix, out) {
                            return Err(bad_state());
                        }
                        let ox = self.order_ix(self.txs[ix].order_id);
                        if self.orders[ox].status != OStatus::Open {
                            return Err(bad_state());
                        }
                        let tx = &mut self.txs[ix];
                        tx.state = 2;
                        tx.perform_time = now;
                        let order = &mut self.orders[ox];
                        order.status = OStatus::Paid;
                        order.paid_at = Some(now);
                        self.jobs.push(MJob {
                            id: self.next_job,
                            order_id: order.id,
                            copies: order.copies,
                            status: "queued".into(),
                        });
                        out.wake = Some(self.next_job);
                        self.next_job += 1;
                    }
                    _ => return Err(bad_state()),
                }
                let tx = &self.txs[ix];
                Ok(json!({ "transaction": tx.rowid.to_string(), "perform_time": tx.perform_time, "state": 2 }))
            }
            "CancelTransaction" => {
                // An unknown transaction is -31003 whatever else the request lacks.
                let id = p_id(p)?;
                let ix = self.tx(&id).ok_or_else(not_found)?;
                let reason = p_int(p, "reason")?;
                match self.txs[ix].state {
                    1 => {
                        let tx = &mut self.txs[ix];
                        tx.state = -1;
                        tx.reason = Some(reason);
                        tx.cancel_time = now;
                        // The order stays open: payable by a new transaction until its TTL.
                    }
                    2 => {
                        let tx = &mut self.txs[ix];
                        tx.state = -2;
                        tx.reason = Some(reason);
                        tx.cancel_time = now;
                        let order_id = tx.order_id;
                        let ox = self.order_ix(order_id);
                        self.orders[ox].status = OStatus::Refunded;
                        self.orders[ox].closed_at = Some(now);
                        for job in self
                            .jobs
                            .iter_mut()
                            // A refund stops every print not on paper yet.
                            .filter(|j| {
                                j.order_id == order_id && ["queued", "failed", "printing"].contains(&j.status.as_str())
                            })
                        {
                            job.status = "cancelled".into();
                        }
                    }
                    _ => {}
                }
                let tx = &self.txs[ix];
                Ok(json!({ "transaction": tx.rowid.to_string(), "cancel_time": tx.cancel_time, "state": tx.state }))
            }
            "CheckTransaction" => {
                let id = p_id(p)?;
                let ix = self.tx(&id).ok_or_else(not_found)?;
                Ok(Model::check_reply(&self.txs[ix]))
            }
            "GetStatement" => {
                let from = p_int(p, "from")?;
                let to = p_int(p, "to")?;
                if from < 0 {
                    return Err(invalid("from"));
                }
                if to < from {
                    return Err(invalid("to"));
                }
                let mut listed: Vec<&MTx> = self
                    .txs
                    .iter()
                    .filter(|t| from <= t.payme_time && t.payme_time <= to)
                    .collect();
                listed.sort_by_key(|t| (t.payme_time, t.rowid));
                Ok(json!({ "transactions": listed.into_iter().map(Model::statement_item).collect::<Vec<_>>() }))
            }
            "ChangePassword" => {
                let pw = match p.get("password") {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(invalid("password")),
                };
                if pw.is_empty() || pw.len() > 256 || pw.chars().any(char::is_control) {
                    return Err(invalid("password"));
                }
                if pw != self.key {
                    self.rotated = Some(pw.clone());
                    self.key = pw;
                }
                Ok(json!({ "success": true }))
            }
            "SetFiscalData" => {
                let kind = match p.get("type") {
                    Some(Value::String(k)) if k == "PERFORM" || k == "CANCEL" => k.clone(),
                    _ => return Err(invalid("type")),
                };
                p_object(p, "fiscal_data")?;
                let id = p_id(p)?;
                self.tx(&id).ok_or_else(not_found)?;
                self.receipts.insert((id, kind));
                Ok(json!({ "success": true }))
            }
            other => Err((-32601, Some(json!(other)))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The merchant under test and the checks.

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($fmt:tt)*) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err(format!("{}\n  got:      {:?}\n  expected: {:?}", format!($($fmt)*), l, r));
        }
    }};
}

/// Every row of every table, by table and rowid, column by column.
type Snapshot = BTreeMap<String, BTreeMap<i64, BTreeMap<String, Sql>>>;

const WRITE_METHODS: [&str; 5] = [
    "CreateTransaction",
    "PerformTransaction",
    "CancelTransaction",
    "ChangePassword",
    "SetFiscalData",
];

struct Booth {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    merchant: Merchant,
    clock: Arc<AtomicI64>,
    wake: mpsc::Receiver<i64>,
    model: Model,
    rpc_id: i64,
    /// The first successful `result` of Create, Perform and Cancel per Payme id, as JSON text.
    first: HashMap<(String, String), String>,
    /// Payme ids whose CreateTransaction ever succeeded.
    created: BTreeSet<String>,
}

impl Booth {
    fn new(orders_spec: &[(u32, i64)], with_fiscal: bool) -> Booth {
        // tmpfs where there is one: the model checks logic, not durability, and fsyncs dominate.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let clock = Arc::new(AtomicI64::new(BASE));
        let (tx, wake) = mpsc::channel(64);
        let c = clock.clone();
        let merchant = Merchant::new(
            store.clone(),
            KeyRing::new(KEYS[0].to_string(), KEYS[0]),
            "order_id".into(),
            with_fiscal.then(fiscal),
            tx,
        )
        .with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
        let mut model = Model {
            now: BASE,
            key: KEYS[0].to_string(),
            rotated: None,
            fiscal: with_fiscal,
            orders: Vec::new(),
            txs: Vec::new(),
            jobs: Vec::new(),
            receipts: BTreeSet::new(),
            next_tx: 1,
            next_job: 1,
        };
        for &(copies, ttl) in orders_spec {
            let o = store.write(|c| orders::insert(c, copies, PRICE, BASE, ttl)).unwrap();
            assert_eq!((o.amount_tiyin, o.expires_at), (PRICE * i64::from(copies), BASE + ttl));
            model.orders.push(MOrder {
                id: o.id,
                copies,
                amount: o.amount_tiyin,
                expires_at: o.expires_at,
                status: OStatus::Open,
                paid_at: None,
                closed_at: None,
            });
        }
        Booth {
            _dir: dir,
            store,
            merchant,
            clock,
            wake,
            model,
            rpc_id: 0,
            first: HashMap::new(),
            created: BTreeSet::new(),
        }
    }

    fn set_now(&mut self, now: i64) {
        self.model.now = now;
        self.clock.store(now, Ordering::SeqCst);
    }

    fn advance(&mut self, ms: i64) {
        self.set_now(self.model.now + ms);
    }

    fn header(&self, auth: &AuthSel) -> (Option<String>, bool) {
        let key = &self.model.key;
        match auth {
            AuthSel::Current => (Some(basic_header(key)), true),
            AuthSel::Key(i) => (Some(basic_header(KEYS[*i])), KEYS[*i] == key.as_str()),
            AuthSel::LowerScheme => (Some(basic_header(key).replacen("Basic", "basic", 1)), true),
            AuthSel::Wrong => (Some(basic_header("wrong")), false),
            AuthSel::Missing => (None, false),
            AuthSel::OtherLogin => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("Admin:{key}"));
                (Some(format!("Basic {encoded}")), false)
            }
            AuthSel::NotBasic => (Some(format!("Bearer {key}")), false),
        }
    }

    fn order_id_at(&self, i: usize) -> i64 {
        self.model.orders[i % self.model.orders.len()].id
    }

    fn account(&self, sel: &OrderSel) -> (Value, i64) {
        let amount_of = |i: usize| self.model.orders[i % self.model.orders.len()].amount;
        match sel {
            OrderSel::Str(i) => (json!({ "order_id": self.order_id_at(*i).to_string() }), amount_of(*i)),
            OrderSel::Num(i) => (json!({ "order_id": self.order_id_at(*i) }), amount_of(*i)),
            OrderSel::StrExtra(i) => (
                json!({ "order_id": self.order_id_at(*i).to_string(), "lang": "uz" }),
                amount_of(*i),
            ),
            OrderSel::Unknown => (json!({ "order_id": "999999" }), PRICE),
            OrderSel::NotDigits => (json!({ "order_id": "12a" }), PRICE),
            OrderSel::Zero => (json!({ "order_id": 0 }), PRICE),
            OrderSel::NoField => (json!({ "phone": "998901234567" }), PRICE),
        }
    }

    fn put_amount(&self, p: &mut Map<String, Value>, sel: &AmountSel, base: i64) {
        let v = match sel {
            AmountSel::Exact => json!(base),
            AmountSel::Plus1 => json!(base + 1),
            AmountSel::Minus1 => json!(base - 1),
            AmountSel::Zero => json!(0),
            AmountSel::Negative => json!(-base),
            AmountSel::Str => json!(base.to_string()),
            AmountSel::Fraction => json!(base as f64 + 0.5),
            AmountSel::Missing => return,
            AmountSel::OtherOrder(i) => json!(self.model.orders[i % self.model.orders.len()].amount),
        };
        p.insert("amount".into(), v);
    }

    fn id(&self, sel: &IdSel) -> Value {
        match sel {
            IdSel::Pool(i) => json!(payme_id(*i)),
            IdSel::Existing(i) if !self.model.txs.is_empty() => {
                json!(self.model.txs[i % self.model.txs.len()].payme_id)
            }
            IdSel::Existing(i) => json!(payme_id(*i)),
            IdSel::Bad => json!("not an id"),
        }
    }

    fn pool_tx(&self, i: usize) -> Option<&MTx> {
        self.model.tx(&payme_id(i)).map(|ix| &self.model.txs[ix])
    }

    /// Turns a step into (auth, method, params), resolved against the current clock and model.
    fn render(&self, op: &Op) -> (AuthSel, String, Value) {
        let now = self.model.now;
        let obj = |v: Value| v.as_object().unwrap().clone();
        let (auth, method, params) = match op {
            Op::CheckPerform(a, o, m) => {
                let (account, amount) = self.account(o);
                let mut p = obj(json!({ "account": account }));
                self.put_amount(&mut p, m, amount);
                (a, "CheckPerformTransaction", Value::Object(p))
            }
            Op::Create(a, i, t, o, m) => {
                let (account, amount) = self.account(o);
                let time = match t {
                    TimeSel::Now => json!(now),
                    TimeSel::Offset(d) => json!(now + d),
                    TimeSel::Twelve(d) | TimeSel::AlmostStale(d) => json!(now - TWELVE_H + d),
                    TimeSel::Stale(d) => json!(now - TWELVE_H - 1 - d),
                    TimeSel::Zero => json!(0),
                    TimeSel::Str => json!(now.to_string()),
                };
                let mut p = obj(json!({ "id": self.id(i), "time": time, "account": account }));
                self.put_amount(&mut p, m, amount);
                (a, "CreateTransaction", Value::Object(p))
            }
            Op::Perform(a, i) => (a, "PerformTransaction", json!({ "id": self.id(i) })),
            Op::Cancel(a, i, r) => {
                let mut p = obj(json!({ "id": self.id(i) }));
                if let Some(r) = r {
                    p.insert("reason".into(), json!(r));
                }
                (a, "CancelTransaction", Value::Object(p))
            }
            Op::Check(a, i) => (a, "CheckTransaction", json!({ "id": self.id(i) })),
            Op::Statement(a, w) => {
                let p = match w {
                    WindowSel::All => json!({ "from": 0, "to": i64::MAX }),
                    WindowSel::Around(f, l) => json!({ "from": now + f, "to": now + f + l }),
                    WindowSel::Point(i) => match self.pool_tx(*i) {
                        Some(tx) => json!({ "from": tx.payme_time, "to": tx.payme_time }),
                        None => json!({ "from": 1, "to": now }),
                    },
                    WindowSel::NegativeFrom => json!({ "from": -1, "to": now }),
                    WindowSel::Inverted => json!({ "from": now, "to": now - 1 }),
                    WindowSel::StrFrom => json!({ "from": "1", "to": now }),
                };
                (a, "GetStatement", p)
            }
            Op::ChangePassword(a, pw) => {
                let p = match pw {
                    PwSel::Key(i) => json!({ "password": KEYS[*i] }),
                    PwSel::Empty => json!({ "password": "" }),
                    PwSel::Control => json!({ "password": "bad\u{7}key" }),
                    PwSel::Missing => json!({}),
                    PwSel::NotString => json!({ "password": 12345 }),
                };
                (a, "ChangePassword", p)
            }
            Op::SetFiscal(a, i, f) => {
                let data = json!({ "receipt_id": 42, "status_code": 0, "message": "accepted",
                    "terminal_id": "EP000000000025", "fiscal_sign": "123456789012",
                    "qr_code_url": "https://ofd.soliq.uz/check?t=EP", "date": "20261127182301" });
                let p = match f {
                    FiscalSel::Perform => json!({ "id": self.id(i), "type": "PERFORM", "fiscal_data": data }),
                    FiscalSel::Cancel => json!({ "id": self.id(i), "type": "CANCEL", "fiscal_data": data }),
                    FiscalSel::Other => json!({ "id": self.id(i), "type": "REFUND", "fiscal_data": data }),
                    FiscalSel::MissingType => json!({ "id": self.id(i), "fiscal_data": data }),
                    FiscalSel::NoData => json!({ "id": self.id(i), "type": "PERFORM" }),
                };
                (a, "SetFiscalData", p)
            }
            Op::Unknown(a, m) => (a, *m, json!({})),
            Op::Clock(_) => unreachable!("clock steps are not calls"),
        };
        (auth.clone(), method.to_string(), params)
    }

    fn raw_call(&mut self, header: Option<&str>, method: &str, params: &Value) -> (i64, Reply) {
        self.rpc_id += 1;
        let body = json!({ "method": method, "params": params, "id": self.rpc_id }).to_string();
        let reply = self.merchant.handle(body.as_bytes(), header.map(str::as_bytes));
        (self.rpc_id, reply)
    }

    /// A call with the key in force that must succeed (used by the invariant checks).
    fn ok(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let header = basic_header(&self.model.key);
        let (_, reply) = self.raw_call(Some(&header), method, &params);
        ensure!(
            reply.json().get("error").is_none(),
            "{method} {params} failed: {}",
            reply.json()
        );
        Ok(reply.json()["result"].clone())
    }

    fn clock_step(&mut self, sel: &ClockSel) {
        let now = self.model.now;
        let target = match sel {
            ClockSel::Small(d) | ClockSel::Minutes(d) => now + d,
            ClockSel::ToOrderTtl(i, d) => self.model.orders[i % self.model.orders.len()].expires_at + d,
            ClockSel::PastTwelve(d) => now + TWELVE_H + d,
            ClockSel::ToTxTimeout(i, d) => match self.model.txs.len() {
                0 => now,
                n => self.model.txs[i % n].payme_time + TWELVE_H + d,
            },
        };
        self.set_now(target.max(now));
    }

    /// One step: a clock move, or a call checked against the model and the invariants.
    fn step(&mut self, op: &Op) -> Result<(), String> {
        if let Op::Clock(sel) = op {
            self.clock_step(sel);
            return Ok(());
        }
        let (auth, method, params) = self.render(op);
        let (header, authorized) = self.header(&auth);
        let before = self.snapshot()?;
        let out = self.model.apply(authorized, &method, params.as_object().unwrap());
        let (rpc_id, reply) = self.raw_call(header.as_deref(), &method, &params);
        let ctx = format!("{method} {params} (auth {auth:?}, now {})", self.model.now);
        tally(&method, &out);
        check_reply(&reply, rpc_id, &method, &out.expect).map_err(|e| format!("{ctx}: {e}"))?;

        // The wake channel carries the new job's id, once, and only after a first Perform.
        let mut woken = Vec::new();
        while let Ok(job) = self.wake.try_recv() {
            woken.push(job);
        }
        ensure_eq!(woken, out.wake.into_iter().collect::<Vec<_>>(), "{ctx}: print wake");

        // A failed call (or a read) changed nothing but the documented lazy expiry.
        let after = self.snapshot()?;
        if out.expect.is_err() || !WRITE_METHODS.contains(&method.as_str()) {
            let mut allowed = before;
            if let Some(expired) = &out.expired {
                let rows = allowed.get_mut("payme_transactions").unwrap();
                let row = rows
                    .values_mut()
                    .find(|r| r["payme_id"] == Sql::Text(expired.clone()))
                    .ok_or_else(|| format!("{ctx}: expired transaction {expired} not in the snapshot"))?;
                row.insert("state".into(), Sql::Integer(-1));
                row.insert("reason".into(), Sql::Integer(4));
                row.insert("cancel_time".into(), Sql::Integer(self.model.now));
            }
            if allowed != after {
                return Err(format!(
                    "{ctx}: a failed or read-only call changed the database\n  {}",
                    diff(&allowed, &after)
                ));
            }
        }

        // Repeats of Create, Perform and Cancel are byte-identical to the first success.
        let succeeded = reply.json().get("error").is_none();
        if let (true, Some(id)) = (succeeded, params.get("id").and_then(Value::as_str)) {
            let text = serde_json::to_string(&reply.json()["result"]).unwrap();
            if matches!(
                method.as_str(),
                "CreateTransaction" | "PerformTransaction" | "CancelTransaction"
            ) {
                let first = self
                    .first
                    .entry((method.clone(), id.to_string()))
                    .or_insert_with(|| text.clone());
                ensure_eq!(text, *first, "{ctx}: a repeat differs from the first reply");
            }
            if method == "CreateTransaction" {
                self.created.insert(id.to_string());
            }
        }

        self.check_db_matches_model().map_err(|e| format!("{ctx}: {e}"))?;
        self.check_invariants().map_err(|e| format!("{ctx}: {e}"))
    }

    fn snapshot(&self) -> Result<Snapshot, String> {
        self.store
            .read(|c| {
                let tables: Vec<String> = all_rows(
                    c,
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                    |r| r.get(0),
                )?;
                let mut snap = Snapshot::new();
                for table in tables {
                    let mut stmt = c.prepare(&format!("SELECT rowid AS rowid_, * FROM \"{table}\""))?;
                    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
                    let rows = stmt
                        .query_map([], |r| {
                            let mut row = BTreeMap::new();
                            for (i, name) in names.iter().enumerate().skip(1) {
                                row.insert(name.clone(), r.get::<_, Sql>(i)?);
                            }
                            Ok((r.get::<_, i64>(0)?, row))
                        })?
                        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
                    snap.insert(table, rows);
                }
                Ok(snap)
            })
            .map_err(|e| format!("snapshot: {e}"))
    }

    /// The whole record, read straight from SQLite, equals the model's.
    fn check_db_matches_model(&self) -> Result<(), String> {
        let m = &self.model;
        let (orders, txs, jobs, receipts, rotated) = self
            .store
            .read(|c| {
                let orders: Vec<(i64, String, Option<i64>, Option<i64>)> = all_rows(
                    c,
                    "SELECT id, status, paid_at, closed_at FROM orders ORDER BY id",
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
                let txs: Vec<MTx> = all_rows(
                    c,
                    "SELECT id, payme_id, order_id, amount, account, payme_time, create_time, perform_time,
                            cancel_time, state, reason FROM payme_transactions ORDER BY id",
                    |r| {
                        Ok(MTx {
                            rowid: r.get(0)?,
                            payme_id: r.get(1)?,
                            order_id: r.get(2)?,
                            amount: r.get(3)?,
                            account: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or(Value::Null),
                            payme_time: r.get(5)?,
                            create_time: r.get(6)?,
                            perform_time: r.get(7)?,
                            cancel_time: r.get(8)?,
                            state: r.get(9)?,
                            reason: r.get(10)?,
                        })
                    },
                )?;
                let jobs: Vec<(i64, i64, u32, String)> = all_rows(
                    c,
                    "SELECT id, order_id, copies, status FROM print_jobs WHERE kind = 'paid' ORDER BY id",
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
                let receipts: BTreeSet<(String, String)> =
                    all_rows(c, "SELECT payme_id, type FROM fiscal_receipts", |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                let rotated: Option<String> = c
                    .query_row("SELECT value FROM settings WHERE key = 'payme.rotated_key'", [], |r| {
                        r.get(0)
                    })
                    .ok();
                Ok((orders, txs, jobs, receipts, rotated))
            })
            .map_err(|e| format!("reading the database: {e}"))?;
        let want: Vec<_> = m
            .orders
            .iter()
            .map(|o| (o.id, o.status.as_str().to_string(), o.paid_at, o.closed_at))
            .collect();
        ensure_eq!(orders, want, "orders differ from the model");
        ensure_eq!(txs, m.txs, "payme_transactions differ from the model");
        let want: Vec<_> = m
            .jobs
            .iter()
            .map(|j| (j.id, j.order_id, j.copies, j.status.clone()))
            .collect();
        ensure_eq!(jobs, want, "print jobs differ from the model");
        ensure_eq!(receipts, m.receipts, "fiscal receipts differ from the model");
        ensure_eq!(rotated, m.rotated, "the stored key rotation differs from the model");
        Ok(())
    }

    /// Invariants that need no model: read from SQLite and through the merchant itself.
    fn check_invariants(&mut self) -> Result<(), String> {
        let (live_dupes, job_mismatch) = self
            .store
            .read(|c| {
                let live: Vec<(i64, i64)> = all_rows(
                    c,
                    "SELECT order_id, count(*) FROM payme_transactions WHERE state IN (1, 2)
                     GROUP BY order_id HAVING count(*) > 1",
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                // Orders whose paid-job count is not 1 if a transaction was performed, else 0.
                let jobs: Vec<(i64, i64, i64)> = c
                    .prepare(
                        "SELECT o.id,
                                (SELECT count(*) FROM payme_transactions t WHERE t.order_id = o.id AND t.state IN (2, -2)),
                                (SELECT count(*) FROM print_jobs j WHERE j.order_id = o.id AND j.kind = 'paid')
                         FROM orders o",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .filter(|row| match row {
                        Ok((_, performed, jobs)) => *jobs != i64::from(*performed > 0) || *performed > 1,
                        Err(_) => true,
                    })
                    .collect::<rusqlite::Result<_>>()?;
                Ok((live, jobs))
            })
            .map_err(|e| format!("reading the database: {e}"))?;
        ensure!(
            live_dupes.is_empty(),
            "orders with two live transactions: {live_dupes:?}"
        );
        ensure!(
            job_mismatch.is_empty(),
            "(order, performed txs, paid jobs) out of line: {job_mismatch:?}"
        );

        let statement = self.ok("GetStatement", json!({ "from": 0, "to": i64::MAX }))?;
        let items = statement["transactions"]
            .as_array()
            .ok_or("statement without transactions")?
            .clone();
        let times: Vec<i64> = items.iter().map(|t| t["time"].as_i64().unwrap_or(-1)).collect();
        ensure!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "statement not ascending by time: {times:?}"
        );
        let ids: BTreeSet<String> = items
            .iter()
            .map(|t| t["id"].as_str().unwrap_or("").to_string())
            .collect();
        ensure_eq!(ids.len(), items.len(), "statement lists a transaction twice");
        ensure_eq!(ids, self.created, "statement ids vs successfully created ids");
        for item in &items {
            let check = self.ok("CheckTransaction", json!({ "id": item["id"] }))?;
            for field in common::CHECK_FIELDS {
                ensure_eq!(
                    check[field],
                    item[field],
                    "statement vs CheckTransaction, {field} of {}",
                    item["id"]
                );
            }
        }
        Ok(())
    }
}

/// How often each (method, outcome) came up across the run: printed at the end, to see what the
/// generator reaches (`cargo test --test payme_model -- --nocapture`).
static TALLY: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

fn tally(method: &str, out: &Outcome) {
    let outcome = match &out.expect {
        Ok(_) => "ok".to_string(),
        Err((code, _)) => code.to_string(),
    };
    let expired = if out.expired.is_some() { " (12-hour expiry)" } else { "" };
    let mut t = TALLY.lock().unwrap_or_else(|p| p.into_inner());
    *t.entry(format!("{method:>24} {outcome}{expired}")).or_default() += 1;
}

fn check_reply(reply: &Reply, rpc_id: i64, method: &str, expect: &Expected) -> Result<(), String> {
    let body = &reply.json();
    ensure_eq!(body["id"], json!(rpc_id), "the reply must echo the request id");
    match expect {
        Ok(result) => {
            ensure!(body.get("error").is_none(), "expected result {result}, got {body}");
            ensure_eq!(body["result"], *result, "result");
            ensure_eq!(reply.error_code, None, "Reply::error_code");
            ensure_eq!(reply.method, Some(method), "Reply::method");
        }
        Err((code, data)) => {
            ensure!(body.get("result").is_none(), "expected error {code}, got {body}");
            ensure_eq!(body["error"]["code"], json!(code), "error code (reply {body})");
            ensure_eq!(body["error"].get("data"), data.as_ref(), "error data (reply {body})");
            for lang in ["ru", "uz", "en"] {
                ensure!(
                    body["error"]["message"][lang].as_str().is_some_and(|s| !s.is_empty()),
                    "error message lacks {lang}: {body}"
                );
            }
            ensure_eq!(reply.error_code, Some(*code), "Reply::error_code");
            let dispatched = if *code == -32504 || *code == -32601 {
                None
            } else {
                Some(method)
            };
            ensure_eq!(reply.method, dispatched, "Reply::method");
        }
    }
    Ok(())
}

/// Every row `sql` selects (it takes no parameters), each read by `row`.
fn all_rows<T, C: FromIterator<T>>(
    c: &rusqlite::Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> rusqlite::Result<C> {
    c.prepare(sql)?.query_map([], row)?.collect()
}

fn diff(want: &Snapshot, got: &Snapshot) -> String {
    let mut lines = Vec::new();
    for table in want.keys().chain(got.keys()).collect::<BTreeSet<_>>() {
        let (w, g) = (want.get(table), got.get(table));
        let rowids: BTreeSet<i64> = w.into_iter().chain(g).flat_map(|t| t.keys().copied()).collect();
        for rowid in rowids {
            let (a, b) = (w.and_then(|t| t.get(&rowid)), g.and_then(|t| t.get(&rowid)));
            if a != b {
                lines.push(format!("{table}[{rowid}]: allowed {a:?}\n    found {b:?}"));
            }
        }
    }
    lines.join("\n  ")
}

fn run_case(case: &Case) -> Result<(), String> {
    let mut booth = Booth::new(&case.orders, case.fiscal);
    for (i, op) in case.ops.iter().enumerate() {
        booth.step(op).map_err(|e| format!("step {i} {op:?}:\n{e}"))?;
    }
    Ok(())
}

fn config() -> Config {
    // `Config::with_cases` would override the PROPTEST_CASES that `Config::default()` reads.
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        Config::default().cases
    } else {
        DEFAULT_CASES
    };
    Config {
        cases,
        // No regression files in the tree: a failure prints its minimal case and seed instead.
        failure_persistence: None,
        max_shrink_iters: 4_096,
        ..Config::default()
    }
}

#[test]
fn merchant_matches_the_model() {
    let config = config();
    let cases = config.cases;
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case_strategy(), |case| run_case(&case).map_err(TestCaseError::fail));
    match result {
        Ok(()) => {
            let tally = TALLY.lock().unwrap_or_else(|p| p.into_inner());
            let lines: Vec<String> = tally.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            eprintln!(
                "payme model: {cases} cases passed in {:.1?}\n{}",
                started.elapsed(),
                lines.join("\n")
            );
        }
        Err(TestError::Fail(why, case)) => panic!("minimal failing case: {case:#?}\n{why}"),
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic regressions for interleavings the model exercises.

const ONE_DAY: i64 = 24 * 3_600_000;

fn call(booth: &mut Booth, method: &str, params: Value) -> Value {
    let header = basic_header(&booth.model.key);
    let (_, reply) = booth.raw_call(Some(&header), method, &params);
    reply.json()
}

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error, got {v}"))
}

fn result(v: &Value) -> Value {
    assert!(v.get("error").is_none(), "expected a result, got {v}");
    v["result"].clone()
}

fn create(booth: &mut Booth, id: &str, time: i64, order: i64) -> Value {
    let amount = booth.model.orders.iter().find(|o| o.id == order).unwrap().amount;
    call(
        booth,
        "CreateTransaction",
        json!({ "id": id, "time": time, "amount": amount, "account": { "order_id": order.to_string() } }),
    )
}

fn check_perform(booth: &mut Booth, order: i64) -> Value {
    let amount = booth.model.orders.iter().find(|o| o.id == order).unwrap().amount;
    call(
        booth,
        "CheckPerformTransaction",
        json!({ "amount": amount, "account": { "order_id": order.to_string() } }),
    )
}

fn paid_jobs(booth: &Booth, order: i64) -> Vec<String> {
    booth
        .store
        .read(|c| {
            c.prepare("SELECT status FROM print_jobs WHERE order_id = ?1 AND kind = 'paid'")?
                .query_map([order], |r| r.get(0))?
                .collect()
        })
        .unwrap()
}

#[test]
fn cancel_then_recreate_on_the_same_order() {
    let mut b = Booth::new(&[(2, 600_000)], false);
    let order = b.model.orders[0].id;
    let (t1, t2) = (payme_id(1), payme_id(2));
    let c1 = result(&create(&mut b, &t1, BASE, order));
    b.advance(1_000);
    let k1 = result(&call(&mut b, "CancelTransaction", json!({ "id": t1, "reason": 2 })));
    assert_eq!(
        k1,
        json!({ "transaction": c1["transaction"], "cancel_time": BASE + 1_000, "state": -1 })
    );
    // The order is payable again by a new transaction until its TTL; the cancelled one stays dead.
    assert_eq!(result(&check_perform(&mut b, order)), json!({ "allow": true }));
    b.advance(1_000);
    let c2 = result(&create(&mut b, &t2, BASE + 2_000, order));
    assert_eq!(
        c2,
        json!({ "create_time": BASE + 2_000, "transaction": "2", "state": 1, "receivers": null })
    );
    assert_eq!(code(&check_perform(&mut b, order)), -31008);
    assert_eq!(code(&create(&mut b, &t1, BASE + 2_000, order)), -31008);
    assert_eq!(code(&call(&mut b, "PerformTransaction", json!({ "id": t1 }))), -31008);
    // Past the order's TTL the held transaction still performs: it reserved the order.
    b.set_now(BASE + 600_000 + 5);
    let p2 = result(&call(&mut b, "PerformTransaction", json!({ "id": t2 })));
    assert_eq!(p2["perform_time"], BASE + 600_005);
    assert_eq!(paid_jobs(&b, order), ["queued"]);
    assert_eq!(b.wake.try_recv().ok(), Some(1));
    // The cancelled first transaction's cancel repeats identically, with its own reason kept.
    assert_eq!(
        result(&call(&mut b, "CancelTransaction", json!({ "id": t1, "reason": 5 }))),
        k1
    );
    let check1 = result(&call(&mut b, "CheckTransaction", json!({ "id": t1 })));
    assert_eq!(
        (check1["state"].clone(), check1["reason"].clone()),
        (json!(-1), json!(2))
    );
}

#[test]
fn refund_then_check_and_retry_everything() {
    let mut b = Booth::new(&[(1, 600_000)], false);
    let order = b.model.orders[0].id;
    let t = payme_id(3);
    let c = result(&create(&mut b, &t, BASE, order));
    b.advance(10);
    let p = result(&call(&mut b, "PerformTransaction", json!({ "id": t })));
    b.advance(10);
    let k = result(&call(&mut b, "CancelTransaction", json!({ "id": t, "reason": 5 })));
    assert_eq!(k["state"], -2);
    assert_eq!(paid_jobs(&b, order), ["cancelled"]);
    b.advance(10);
    // Every repeat answers from the row; the refund's reason is the first one.
    assert_eq!(
        result(&call(&mut b, "CancelTransaction", json!({ "id": t, "reason": 1 }))),
        k
    );
    assert_eq!(code(&call(&mut b, "PerformTransaction", json!({ "id": t }))), -31008);
    assert_eq!(code(&create(&mut b, &t, BASE, order)), -31008);
    assert_eq!(
        result(&call(&mut b, "CheckTransaction", json!({ "id": t }))),
        json!({ "create_time": BASE, "perform_time": p["perform_time"], "cancel_time": BASE + 20,
                "transaction": c["transaction"], "state": -2, "reason": 5 })
    );
    // The refunded order is closed for good, for Check and for a new Create alike.
    let v = check_perform(&mut b, order);
    assert_eq!((code(&v), v["error"]["data"].clone()), (-31052, json!("order_id")));
    assert_eq!(code(&create(&mut b, &payme_id(4), BASE + 30, order)), -31052);
    assert_eq!(paid_jobs(&b, order), ["cancelled"]);
}

#[test]
fn expiry_by_clock_jump_then_a_repeated_create() {
    let mut b = Booth::new(&[(1, ONE_DAY)], false);
    let order = b.model.orders[0].id;
    let t1 = payme_id(5);
    let c1 = result(&create(&mut b, &t1, BASE, order));
    // Exactly 12 hours is not yet expired: the repeat still answers from the row.
    b.set_now(BASE + TWELVE_H);
    assert_eq!(result(&create(&mut b, &t1, BASE, order)), c1);
    // One millisecond later the repeat expires it (state -1, reason 4) and answers -31008.
    b.set_now(BASE + TWELVE_H + 1);
    assert_eq!(
        result(&call(&mut b, "CheckTransaction", json!({ "id": t1 })))["state"],
        1,
        "expiry is lazy"
    );
    assert_eq!(code(&create(&mut b, &t1, BASE, order)), -31008);
    let check = result(&call(&mut b, "CheckTransaction", json!({ "id": t1 })));
    assert_eq!(
        check,
        json!({ "create_time": BASE, "perform_time": 0, "cancel_time": BASE + TWELVE_H + 1,
                "transaction": c1["transaction"], "state": -1, "reason": 4 })
    );
    b.advance(5);
    assert_eq!(code(&create(&mut b, &t1, BASE, order)), -31008);
    assert_eq!(code(&call(&mut b, "PerformTransaction", json!({ "id": t1 }))), -31008);
    // Payme's own CancelTransaction(reason 4) then finds it cancelled and gets the stored reply.
    assert_eq!(
        result(&call(&mut b, "CancelTransaction", json!({ "id": t1, "reason": 4 }))),
        json!({ "transaction": c1["transaction"], "cancel_time": BASE + TWELVE_H + 1, "state": -1 })
    );
    // The order (24 h TTL) is payable again by a fresh transaction, but not by a stale `time`.
    let now = b.model.now;
    assert_eq!(code(&create(&mut b, &payme_id(6), now - TWELVE_H - 1, order)), -31008);
    assert_eq!(result(&create(&mut b, &payme_id(6), now, order))["state"], 1);
    assert!(paid_jobs(&b, order).is_empty());
}
