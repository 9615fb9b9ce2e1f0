//! Payme's Merchant API: the JSON-RPC webhook Payme calls to check, create, perform and cancel
//! payments. This module owns the request pipeline (auth → parse → method → reply); each method
//! lives in `methods/`, one file each. Replies are always JSON-RPC objects: the HTTP layer sends
//! them with status 200 whatever they say.

mod account;
pub mod auth;
pub mod checkout;
pub mod methods;
pub mod rpc;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::clock;
use crate::config::Fiscal;
use crate::store::Store;
use auth::KeyRing;
use methods::{Access, Effects, Env, Fail};
use rpc::{Params, RpcError};

/// Payme's requests are a few hundred bytes; anything near this is not Payme.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// "No payment without a printer": `Some(reason)` while something stops the booth from delivering
/// a print (printer stopped, empty or offline, media counter at 0, and any later blocker), so
/// Check and a new Create answer -31008. The daemon supplies it from `booth::health`; a store that
/// cannot write is not its business (that stays -32400, so Payme retries).
pub type DeliveryGate = Arc<dyn Fn() -> Option<String> + Send + Sync>;

pub struct Merchant {
    store: Arc<Store>,
    keys: KeyRing,
    account_field: String,
    fiscal: Option<Fiscal>,
    /// Wakes the print loop; the job itself is already committed, so a full channel loses nothing.
    print_wake: mpsc::Sender<i64>,
    /// UTC ms. Replaceable so model tests can jump past the 12-hour rule without waiting.
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    delivery: DeliveryGate,
    rejected: RejectedLog,
    /// Whether `photoboothd pay`'s simulated transactions are accepted: only while the checkout is
    /// Payme's sandbox.
    simulations: bool,
}

/// A reply ready to send, with the method name for logs and metrics.
pub struct Reply {
    pub body: Value,
    pub method: Option<&'static str>,
    pub error_code: Option<i64>,
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
            delivery: Arc::new(|| None),
            rejected: RejectedLog::default(),
            simulations: false,
        }
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

    /// Handles one webhook body. Blocking (SQLite): call from `spawn_blocking`.
    pub fn handle(&self, body: &[u8], authorization: Option<&[u8]>) -> Reply {
        // Some HTTP stacks put a UTF-8 byte order mark before the JSON.
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let parsed: Result<Value, _> = serde_json::from_slice(body);
        let id = parsed.as_ref().map(rpc::peek_id).unwrap_or(Value::Null);
        // Credentials first, for every request, before anything reads the store.
        if !self.keys.authorized(authorization) {
            self.note_rejected();
            return error(&id, None, RpcError::unauthorized());
        }
        let Ok(value) = parsed else {
            return error(&Value::Null, None, RpcError::parse());
        };
        let request = match rpc::parse_request(value, |m| methods::find(m).is_some()) {
            Ok(r) => r,
            Err(e) => {
                if e.code == rpc::code::METHOD_NOT_FOUND {
                    tracing::warn!("payme: unknown method (-32601)");
                }
                return error(&id, None, e);
            }
        };
        let Some(method) = methods::find(&request.method) else {
            return error(&request.id, None, RpcError::method_not_found(&request.method));
        };
        // Payme asks Check to vouch for everything Create and Perform need: with a disk that takes
        // no writes they would fail, so Check says so first and Payme retries later.
        if method.name == "CheckPerformTransaction" {
            if let Some(fault) = self.store.write_fault() {
                tracing::error!(fault = %fault, "payme: CheckPerformTransaction refused while the store cannot write (-32400)");
                return error(&request.id, Some(method.name), RpcError::system());
            }
        }
        if let Some(Value::String(payme_id)) = request.params.get("id") {
            if methods::is_simulated(payme_id) && !self.simulations {
                tracing::warn!(
                    method = method.name,
                    "payme: a simulated transaction (photoboothd pay) refused: the checkout is not the sandbox"
                );
                return error(&request.id, Some(method.name), RpcError::invalid("id"));
            }
        }
        self.run(method, &request.id, &request.params)
    }

    fn run(&self, method: &'static methods::Method, id: &Value, params: &serde_json::Map<String, Value>) -> Reply {
        let params = Params(params);
        let (outcome, fx) = if method.name == "ChangePassword" {
            // The key switches under the same lock the write runs under: no request is checked
            // against the old key after the new one is committed.
            self.keys.rotate_with(|is_current| {
                let (outcome, mut fx) = self.execute(method, &params, is_current);
                let new_key = fx.new_key.take().filter(|_| matches!(outcome, Ok(Ok(_))));
                ((outcome, fx), new_key)
            })
        } else {
            self.execute(method, &params, &|k: &str| self.keys.is_current(k))
        };
        match outcome {
            Ok(Ok(result)) => {
                if let Some(job_id) = fx.job_queued {
                    // Full or closed only means the loop is busy or stopping; it rescans the store.
                    let _ = self.print_wake.try_send(job_id);
                }
                Reply {
                    body: rpc::reply_ok(id, result),
                    method: Some(method.name),
                    error_code: None,
                }
            }
            Ok(Err(e)) => {
                tracing::info!(method = method.name, code = e.code, "payme: replied with an error");
                error(id, Some(method.name), e)
            }
            Err(e) => {
                tracing::error!(method = method.name, error = %e, "payme: store failed, replying -32400 so Payme retries");
                error(id, Some(method.name), RpcError::system())
            }
        }
    }

    /// Runs the method on a reader or inside one write transaction. Rpc errors are replies and
    /// commit (only the 12-hour expiry writes before failing); store errors roll everything back.
    fn execute(
        &self,
        method: &'static methods::Method,
        params: &Params<'_>,
        key_is_current: &dyn Fn(&str) -> bool,
    ) -> (Result<Result<Value, RpcError>, crate::store::StoreError>, Effects) {
        let delivery = || (self.delivery)();
        let env = Env {
            now: (self.clock)(),
            account_field: &self.account_field,
            fiscal: self.fiscal.as_ref(),
            configured_key: self.keys.configured(),
            key_is_current,
            delivery_blocked: &delivery,
        };
        let mut fx = Effects::default();
        let apply = |conn: &rusqlite::Connection, fx: &mut Effects| match (method.run)(conn, params, &env, fx) {
            Ok(result) => Ok(Ok(result)),
            Err(Fail::Rpc(e)) => Ok(Err(e)),
            Err(Fail::Store(e)) => Err(e),
        };
        let outcome = match method.access {
            Access::Read => self.store.read(|conn| apply(conn, &mut fx)),
            Access::Write => self.store.write(|tx| apply(tx, &mut fx)),
        };
        (outcome, fx)
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

fn error(id: &Value, method: Option<&'static str>, e: RpcError) -> Reply {
    Reply {
        body: rpc::reply_err(id, &e),
        method,
        error_code: Some(e.code),
    }
}
