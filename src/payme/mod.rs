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

pub struct Merchant {
    store: Arc<Store>,
    keys: KeyRing,
    account_field: String,
    fiscal: Option<Fiscal>,
    /// Wakes the print loop; the job itself is already committed, so a full channel loses nothing.
    print_wake: mpsc::Sender<i64>,
    /// UTC ms. Replaceable so model tests can jump past the 12-hour rule without waiting.
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
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
        }
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

    /// Handles one webhook body. Blocking (SQLite): call from `spawn_blocking`.
    pub fn handle(&self, body: &[u8], authorization: Option<&[u8]>) -> Reply {
        match self.prepare(body, authorization) {
            Prepared::Done(reply) => reply,
            Prepared::Call(call) => self.call(&call),
        }
    }

    /// Everything short of the store: auth, JSON, envelope, method. Cheap and non-blocking, so the
    /// webhook runs it on the async thread and only the store work may need a blocking one.
    pub fn prepare(&self, body: &[u8], authorization: Option<&[u8]>) -> Prepared {
        let parsed: Result<Value, _> = serde_json::from_slice(body);
        let id = parsed.as_ref().map(rpc::peek_id).unwrap_or(Value::Null);
        // Credentials first, for every request, before anything reads the store.
        if !self.keys.authorized(authorization) {
            tracing::warn!("payme: request rejected, missing or wrong credentials (-32504)");
            return Prepared::Done(error(&id, None, RpcError::unauthorized()));
        }
        let Ok(value) = parsed else {
            return Prepared::Done(error(&Value::Null, None, RpcError::parse()));
        };
        let request = match rpc::parse_request(value) {
            Ok(r) => r,
            Err(e) => return Prepared::Done(error(&id, None, e)),
        };
        let Some(method) = methods::find(&request.method) else {
            tracing::warn!(method = %request.method.chars().take(64).collect::<String>(), "payme: unknown method (-32601)");
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
        let mut fx = Effects::default();
        let outcome = self.store.try_read(|conn| self.apply(call, conn, &mut fx))?;
        Some(self.finish(call, outcome.map_err(|e| e.to_string()), fx))
    }

    /// Runs a prepared call on the store. Blocking (SQLite, and an fsync for writes).
    pub fn call(&self, call: &Call) -> Reply {
        let mut fx = Effects::default();
        let outcome = match call.method.access {
            Access::Lookup | Access::Read => self.store.read(|conn| self.apply(call, conn, &mut fx)),
            Access::Write => self.store.write(|tx| self.apply(call, tx, &mut fx)),
        };
        self.finish(call, outcome.map_err(|e| e.to_string()), fx)
    }

    /// The method itself. Rpc errors are replies and commit (only the 12-hour expiry writes before
    /// failing); store errors (the outer `Err`) roll everything back.
    fn apply(
        &self,
        call: &Call,
        conn: &rusqlite::Connection,
        fx: &mut Effects,
    ) -> rusqlite::Result<Result<Value, RpcError>> {
        let key_is_current = |k: &str| self.keys.is_current(k);
        let env = Env {
            now: (self.clock)(),
            account_field: &self.account_field,
            fiscal: self.fiscal.as_ref(),
            configured_key: self.keys.configured(),
            key_is_current: &key_is_current,
        };
        match (call.method.run)(conn, &Params(&call.params), &env, fx) {
            Ok(result) => Ok(Ok(result)),
            Err(Fail::Rpc(e)) => Ok(Err(e)),
            Err(Fail::Store(e)) => Err(e),
        }
    }

    /// Effects after the commit, then the reply.
    fn finish(&self, call: &Call, outcome: Result<Result<Value, RpcError>, String>, mut fx: Effects) -> Reply {
        let name = call.method.name;
        match outcome {
            Ok(Ok(result)) => {
                if let Some(job_id) = fx.job_queued {
                    // Full or closed only means the loop is busy or stopping; it rescans the store.
                    let _ = self.print_wake.try_send(job_id);
                }
                if let Some(key) = fx.new_key.take() {
                    self.keys.replace(&key);
                }
                Reply {
                    body: rpc::reply_ok(&call.id, result),
                    method: Some(name),
                    error_code: None,
                }
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

fn error(id: &Value, method: Option<&'static str>, e: RpcError) -> Reply {
    Reply {
        body: rpc::reply_err(id, &e),
        method,
        error_code: Some(e.code),
    }
}
