//! Payme's Merchant API: the JSON-RPC webhook Payme calls to check, create, perform and cancel
//! payments. This module owns the request pipeline (auth → parse → method → reply); each method
//! lives in `methods/`, one file each. Replies are always JSON-RPC objects: the HTTP layer sends
//! them with status 200 whatever they say.

mod account;
pub mod auth;
pub mod checkout;
pub mod methods;
mod recent;
pub mod rpc;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::clock;
use crate::config::Fiscal;
use crate::digital::link::Links;
use crate::store::OrderKind;
use crate::store::Store;
use auth::KeyRing;
use methods::{Access, Effects, Env, Fail};
use recent::RecentChecks;
use rpc::{Envelope, Params, RpcError};

/// Payme's requests are a few hundred bytes; anything near this is not Payme.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// "No payment without its deliverable": `Some(reason)` while something stops the booth from
/// delivering an order of this kind (a print: printer stopped, empty or offline, media counter at
/// 0, and any later blocker that stops printing), so Check and a new Create answer -31008. A
/// digital-only order is never refused: its photos are already taken, and low storage or an
/// unsynchronised clock only stop new sessions. The daemon supplies it from `booth::health`; a store that cannot write is not
/// its business (that stays -32400, so Payme retries).
pub type DeliveryGate = Arc<dyn Fn(OrderKind) -> Option<String> + Send + Sync>;

pub struct Merchant {
    store: Arc<Store>,
    keys: KeyRing,
    account_field: String,
    fiscal: Option<Fiscal>,
    /// Wakes the print loop; the job itself is already committed, so a full channel loses nothing.
    print_wake: mpsc::Sender<i64>,
    /// UTC ms. Replaceable so model tests can jump past the 12-hour rule without waiting.
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Download links (`[digital]`); `None`: this merchant makes none.
    digital: Option<Links>,
    delivery: DeliveryGate,
    /// Whether `photoboothd pay`'s simulated transactions are accepted: only while the checkout is
    /// Payme's sandbox.
    simulations: bool,
    rejected: RejectedLog,
    /// CheckPerformTransaction answers to give again while nothing has been written.
    recent: RecentChecks,
}

/// A reply ready to send, with the method name for logs and metrics.
pub struct Reply {
    /// The JSON-RPC reply, serialised.
    pub body: Vec<u8>,
    pub method: Option<&'static str>,
    pub error_code: Option<i64>,
}

impl Reply {
    /// The reply as JSON (tests; the webhook sends `body` as it is).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl Merchant {
    pub fn new(
        store: Arc<Store>,
        keys: KeyRing,
        account_field: String,
        fiscal: Option<Fiscal>,
        print_wake: mpsc::Sender<i64>,
    ) -> Merchant {
        Merchant {
            store,
            keys,
            account_field,
            fiscal,
            print_wake,
            clock: Arc::new(clock::now_ms),
            digital: None,
            delivery: Arc::new(|_| None),
            simulations: false,
            rejected: RejectedLog::default(),
            recent: RecentChecks::default(),
        }
    }

    /// The same merchant giving paid session orders a download link (`[digital]`).
    pub fn with_digital_links(mut self, links: Links) -> Merchant {
        self.digital = Some(links);
        self
    }

    /// The same merchant refusing new payments while `gate` says the booth cannot deliver.
    pub fn with_delivery_gate(mut self, gate: DeliveryGate) -> Merchant {
        self.delivery = gate;
        self
    }

    /// The same merchant accepting (or not) the simulated transactions of `photoboothd pay`.
    pub fn with_simulations(mut self, accepted: bool) -> Merchant {
        self.simulations = accepted;
        self
    }

    /// The same merchant reading time from `clock` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Merchant {
        self.clock = clock;
        self
    }

    /// Whether the `Authorization` header carries the current key.
    pub fn authorized(&self, authorization: Option<&[u8]>) -> bool {
        self.keys.authorized(authorization)
    }

    /// Logs a request refused for its credentials: at most one line a minute, with a count, so a
    /// stranger hammering the tunnel cannot flood journald.
    pub fn note_rejected(&self) {
        self.rejected.note();
    }

    /// Handles one webhook body the way the webhook does (a lookup in place when it can be).
    /// Blocking (SQLite): call from `spawn_blocking`.
    pub fn handle(&self, body: &[u8], authorization: Option<&[u8]>) -> Reply {
        match self.prepare(body, authorization) {
            Prepared::Done(reply) => reply,
            Prepared::Call(call) => self.call_in_place(&call).unwrap_or_else(|| self.call(&call)),
        }
    }

    /// Everything short of the store: auth, JSON, envelope, method. Cheap and non-blocking, so the
    /// webhook runs it on the async thread and only the store work may need a blocking one.
    pub fn prepare(&self, body: &[u8], authorization: Option<&[u8]>) -> Prepared {
        let parsed = Envelope::read(body);
        // Credentials first, for every request, before anything reads the store.
        if !self.keys.authorized(authorization) {
            self.note_rejected();
            let id = parsed.map(|envelope| envelope.id).unwrap_or(Value::Null);
            return Prepared::Done(error(&id, None, RpcError::unauthorized()));
        }
        self.prepare_parsed(parsed)
    }

    /// `prepare` for a caller that has checked the credentials itself (the webhook checks them
    /// before reading the body), so the key is not compared twice per request.
    pub fn prepare_authorized(&self, body: &[u8]) -> Prepared {
        self.prepare_parsed(Envelope::read(body))
    }

    fn prepare_parsed(&self, parsed: Result<Envelope, serde_json::Error>) -> Prepared {
        let Ok(envelope) = parsed else {
            return Prepared::Done(error(&Value::Null, None, RpcError::parse()));
        };
        // The method is checked before the params: an unknown one is -32601 even without params.
        let request = match envelope.into_request(|m| methods::find(m).is_some()) {
            Ok(r) => r,
            Err((id, e)) => {
                if e.code == rpc::code::METHOD_NOT_FOUND {
                    tracing::warn!("payme: unknown method (-32601)");
                }
                return Prepared::Done(error(&id, None, e));
            }
        };
        let Some(method) = methods::find(&request.method) else {
            return Prepared::Done(error(&request.id, None, RpcError::method_not_found(&request.method)));
        };
        // Payme asks Check to vouch for everything Create and Perform need: with a disk that takes
        // no writes they would fail, so Check says so first and Payme retries later.
        if method.name == "CheckPerformTransaction" {
            if let Some(fault) = self.store.write_fault() {
                tracing::error!(fault = %fault, "payme: CheckPerformTransaction refused while the store cannot write (-32400)");
                return Prepared::Done(error(&request.id, Some(method.name), RpcError::system()));
            }
        }
        if let Some(Value::String(payme_id)) = request.params.get("id") {
            if methods::is_simulated(payme_id) && !self.simulations {
                tracing::warn!(
                    method = method.name,
                    "payme: a simulated transaction (photoboothd pay) refused: the checkout is not the sandbox"
                );
                return Prepared::Done(error(&request.id, Some(method.name), RpcError::invalid("id")));
            }
        }
        Prepared::Call(Call {
            method,
            id: request.id,
            params: request.params,
        })
    }

    /// A point lookup run right here when a reader connection is free; `None` when the call must
    /// go to a blocking thread (a write, a scan, or every reader busy).
    pub fn call_in_place(&self, call: &Call) -> Option<Reply> {
        if call.method.access != Access::Lookup {
            return None;
        }
        // Read before anything else, so that a write committed during this call is never missed.
        let generation = self.store.generation();
        if let Some(reply) = self.check_again(call, generation) {
            return Some(reply);
        }
        let mut fx = Effects::default();
        let is_current = |k: &str| self.keys.is_current(k);
        let outcome = self
            .store
            .try_read(|conn| self.apply(call, conn, &mut fx, &is_current))?;
        Some(self.finish(call, outcome.map_err(|e| e.to_string()), fx, generation))
    }

    /// A CheckPerformTransaction the store allowed for the same order and amount, with nothing
    /// written since, answered again without the store (`recent.rs` says why that is safe).
    fn check_again(&self, call: &Call, generation: u64) -> Option<Reply> {
        if call.method.name != "CheckPerformTransaction" {
            return None;
        }
        let (order_id, amount) = account::named_order(&Params(&call.params), &self.account_field)?;
        let allowed = self.recent.get(order_id, amount, generation)?;
        let is_current = |k: &str| self.keys.is_current(k);
        if !methods::check_perform::again(&allowed.order, &self.env(&is_current)) {
            return None;
        }
        Some(success(call, &allowed.result_json))
    }

    /// Runs a prepared call on the store. Blocking (SQLite, and an fsync for writes).
    pub fn call(&self, call: &Call) -> Reply {
        let generation = self.store.generation();
        let run = |is_current: &dyn Fn(&str) -> bool| {
            let mut fx = Effects::default();
            let outcome = match call.method.access {
                Access::Lookup | Access::Read => self.store.read(|conn| self.apply(call, conn, &mut fx, is_current)),
                Access::Write => self.store.write(|tx| self.apply(call, tx, &mut fx, is_current)),
            };
            (outcome.map_err(|e| e.to_string()), fx)
        };
        let (outcome, fx) = if call.method.name == "ChangePassword" {
            // The key switches under the same lock the write runs under: no request is checked
            // against the old key once the new one is committed, nor against the new one before.
            self.keys.rotate_with(|is_current| {
                let (outcome, mut fx) = run(is_current);
                let new_key = fx.new_key.take().filter(|_| matches!(outcome, Ok(Ok(_))));
                ((outcome, fx), new_key)
            })
        } else {
            run(&|k: &str| self.keys.is_current(k))
        };
        self.finish(call, outcome, fx, generation)
    }

    /// The method itself. Rpc errors are replies and commit (only the 12-hour expiry writes before
    /// failing); store errors (the outer `Err`) roll everything back.
    fn apply(
        &self,
        call: &Call,
        conn: &rusqlite::Connection,
        fx: &mut Effects,
        key_is_current: &dyn Fn(&str) -> bool,
    ) -> rusqlite::Result<Result<Value, RpcError>> {
        let env = self.env(key_is_current);
        match (call.method.run)(conn, &Params(&call.params), &env, fx) {
            Ok(result) => Ok(Ok(result)),
            Err(Fail::Rpc(e)) => Ok(Err(e)),
            Err(Fail::Store(e)) => Err(e),
        }
    }

    fn env<'a>(&'a self, key_is_current: &'a dyn Fn(&str) -> bool) -> Env<'a> {
        Env {
            now: (self.clock)(),
            account_field: &self.account_field,
            fiscal: self.fiscal.as_ref(),
            configured_key: self.keys.configured(),
            key_is_current,
            digital: self.digital,
            delivery_blocked: &*self.delivery,
        }
    }

    /// Effects after the commit, then the reply. `generation` is the store's before the call.
    fn finish(
        &self,
        call: &Call,
        outcome: Result<Result<Value, RpcError>, String>,
        fx: Effects,
        generation: u64,
    ) -> Reply {
        let name = call.method.name;
        match outcome {
            Ok(Ok(result)) => {
                if let Some(job_id) = fx.job_queued {
                    // Full or closed only means the loop is busy or stopping; it rescans the store.
                    let _ = self.print_wake.try_send(job_id);
                }
                let result_json = rpc::result_json(&result);
                if let Some(order) = fx.allowed {
                    let result_json = result_json.clone();
                    self.recent.put(recent::Allowed { order, result_json }, generation);
                }
                success(call, &result_json)
            }
            Ok(Err(e)) => {
                tracing::info!(method = name, code = e.code, "payme: replied with an error");
                error(&call.id, Some(name), e)
            }
            Err(e) => {
                tracing::error!(method = name, error = %e, "payme: store failed, replying -32400 so Payme retries");
                error(&call.id, Some(name), RpcError::system())
            }
        }
    }
}

/// The rate limit of the "wrong credentials" warning.
#[derive(Default)]
struct RejectedLog(std::sync::Mutex<(Option<std::time::Instant>, u64)>);

impl RejectedLog {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    fn note(&self) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (last, suppressed) = &mut *state;
        if last.is_some_and(|at| at.elapsed() < Self::EVERY) {
            *suppressed += 1;
            return;
        }
        tracing::warn!(
            rejected_since_last_line = *suppressed,
            "payme: request rejected, missing or wrong credentials (-32504); further ones are counted, one line a minute"
        );
        *last = Some(std::time::Instant::now());
        *suppressed = 0;
    }
}

/// What `prepare` made of a request: a reply already (auth, parse and envelope errors), or a call
/// for the store.
pub enum Prepared {
    Done(Reply),
    Call(Call),
}

/// A checked request for one Merchant API method.
pub struct Call {
    method: &'static methods::Method,
    id: Value,
    params: serde_json::Map<String, Value>,
}

/// The reply to `call` with its result, already serialised.
fn success(call: &Call, result_json: &[u8]) -> Reply {
    Reply {
        body: rpc::reply_ok(&call.id, result_json),
        method: Some(call.method.name),
        error_code: None,
    }
}

fn error(id: &Value, method: Option<&'static str>, e: RpcError) -> Reply {
    Reply {
        body: serde_json::to_vec(&rpc::reply_err(id, &e)).unwrap_or_default(),
        method,
        error_code: Some(e.code),
    }
}
