//! ChangePassword: Payme rotates the cashbox key. The new key is committed to the store and switched
//! in under the same lock (`KeyRing::rotate_with`), so the old key stops working at once and a
//! restart keeps the new one. Of the key it replaced only a hash is stored.

use serde_json::json;

use super::{Effects, Env, MethodResult};
use crate::payme::auth;
use crate::payme::rpc::{Params, RpcError};

pub fn run(conn: &rusqlite::Connection, p: &Params<'_>, env: &Env<'_>, fx: &mut Effects) -> MethodResult {
    let password = p.string("password")?;
    if password.is_empty() || password.len() > 256 || password.chars().any(char::is_control) {
        return Err(RpcError::invalid("password").into());
    }
    if (env.key_is_current)(password) {
        // A repeat of a rotation already applied: nothing to change.
        return Ok(json!({ "success": true }));
    }
    auth::store_rotation(conn, env.configured_key, password)?;
    fx.new_key = Some(password.to_string());
    tracing::warn!(configured_key = %auth::fingerprint(env.configured_key), key = %auth::fingerprint(password),
        "payme: cashbox key changed by ChangePassword; the previous key no longer works");
    Ok(json!({ "success": true }))
}
