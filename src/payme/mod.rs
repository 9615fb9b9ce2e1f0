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
    /// Download links for paid session orders: how long they live; `None` while digital copies are off.
    digital_link_ms: Option<i64>,
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
            digital_link_ms: None,
        }
    }

    /// The same merchant giving paid session orders a download link that lives `link_ms`.
    pub fn with_digital_links(mut self, link_ms: Option<i64>) -> Merchant {
        self.digital_link_ms = link_ms;
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

    /// Handles one webhook body. Blocking (SQLite): call from `spawn_blocking`.
    pub fn handle(&self, body: &[u8], authorization: Option<&[u8]>) -> Reply {
        let parsed: Result<Value, _> = serde_json::from_slice(body);
        let id = parsed.as_ref().map(rpc::peek_id).unwrap_or(Value::Null);
        // Credentials first, for every request, before anything reads the store.
        if !self.keys.authorized(authorization) {
            tracing::warn!("payme: request rejected, missing or wrong credentials (-32504)");
            return error(&id, None, RpcError::unauthorized());
        }
        let Ok(value) = parsed else {
            return error(&Value::Null, None, RpcError::parse());
        };
        let request = match rpc::parse_request(value) {
            Ok(r) => r,
            Err(e) => return error(&id, None, e),
        };
        let Some(method) = methods::find(&request.method) else {
            tracing::warn!(method = %request.method.chars().take(64).collect::<String>(), "payme: unknown method (-32601)");
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
        self.run(method, &request.id, &request.params)
    }

    fn run(&self, method: &'static methods::Method, id: &Value, params: &serde_json::Map<String, Value>) -> Reply {
        let params = Params(params);
        let key_is_current = |k: &str| self.keys.is_current(k);
        let env = Env {
            now: (self.clock)(),
            account_field: &self.account_field,
            fiscal: self.fiscal.as_ref(),
            configured_key: self.keys.configured(),
            key_is_current: &key_is_current,
            digital_link_ms: self.digital_link_ms,
        };
        let mut fx = Effects::default();
        // Rpc errors are replies and commit (only the 12-hour expiry writes before failing);
        // store errors roll everything back.
        let apply = |conn: &rusqlite::Connection, fx: &mut Effects| match (method.run)(conn, &params, &env, fx) {
            Ok(result) => Ok(Ok(result)),
            Err(Fail::Rpc(e)) => Ok(Err(e)),
            Err(Fail::Store(e)) => Err(e),
        };
        let outcome = match method.access {
            Access::Read => self.store.read(|conn| apply(conn, &mut fx)),
            Access::Write => self.store.write(|tx| apply(tx, &mut fx)),
        };
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
}

fn error(id: &Value, method: Option<&'static str>, e: RpcError) -> Reply {
    Reply {
        body: rpc::reply_err(id, &e),
        method,
        error_code: Some(e.code),
    }
}
