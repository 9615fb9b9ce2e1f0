//! The JSON-RPC envelope Payme speaks: request parsing, typed parameter access, error codes with
//! their ru/uz/en messages, and reply serialisation. Nothing here touches the store.

use serde_json::{json, Map, Value};

/// Localised text shown to the payer by Payme. Payme requires it for account errors; we send it
/// with every error so no code path can forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub ru: &'static str,
    pub uz: &'static str,
    pub en: &'static str,
}

/// An error reply. `data` is the offending field, or the method name for -32601.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: Text,
    pub data: Option<Value>,
}

pub mod code {
    pub const NOT_POST: i64 = -32300;
    pub const PARSE: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const UNAUTHORIZED: i64 = -32504;
    pub const SYSTEM: i64 = -32400;
    pub const WRONG_AMOUNT: i64 = -31001;
    pub const TX_NOT_FOUND: i64 = -31003;
    pub const CANNOT_CANCEL: i64 = -31007;
    pub const BAD_STATE: i64 = -31008;
    /// Account errors are -31050..=-31099; ours are below.
    pub const ORDER_NOT_FOUND: i64 = -31050;
    pub const ORDER_PAID: i64 = -31051;
    pub const ORDER_CLOSED: i64 = -31052;
    pub const ORDER_EXPIRED: i64 = -31053;
}

impl RpcError {
    fn new(code: i64, message: Text, data: Option<Value>) -> RpcError {
        RpcError { code, message, data }
    }

    pub fn not_post() -> RpcError {
        RpcError::new(
            code::NOT_POST,
            Text {
                ru: "Метод запроса должен быть POST",
                uz: "So'rov usuli POST bo'lishi kerak",
                en: "The request method must be POST",
            },
            None,
        )
    }

    pub fn parse() -> RpcError {
        RpcError::new(
            code::PARSE,
            Text {
                ru: "Ошибка разбора JSON",
                uz: "JSON tahlilida xatolik",
                en: "JSON parse error",
            },
            None,
        )
    }

    /// A missing or mistyped field of the envelope or of `params`; `field` names it.
    pub fn invalid(field: &str) -> RpcError {
        RpcError::new(
            code::INVALID_REQUEST,
            Text {
                ru: "Неверный запрос: поле отсутствует или имеет неверный тип",
                uz: "Noto'g'ri so'rov: maydon yo'q yoki turi noto'g'ri",
                en: "Invalid request: a field is missing or has the wrong type",
            },
            Some(Value::from(field)),
        )
    }

    pub fn too_large() -> RpcError {
        RpcError::new(
            code::INVALID_REQUEST,
            Text {
                ru: "Слишком большой запрос",
                uz: "So'rov juda katta",
                en: "Request body too large",
            },
            None,
        )
    }

    pub fn method_not_found(method: &str) -> RpcError {
        RpcError::new(
            code::METHOD_NOT_FOUND,
            Text {
                ru: "Метод не найден",
                uz: "Usul topilmadi",
                en: "Method not found",
            },
            Some(Value::from(method)),
        )
    }

    pub fn unauthorized() -> RpcError {
        RpcError::new(
            code::UNAUTHORIZED,
            Text {
                ru: "Недостаточно привилегий для выполнения метода",
                uz: "Usulni bajarish uchun huquqlar yetarli emas",
                en: "Insufficient privileges to execute the method",
            },
            None,
        )
    }

    pub fn system() -> RpcError {
        RpcError::new(
            code::SYSTEM,
            Text {
                ru: "Системная ошибка",
                uz: "Tizim xatosi",
                en: "System error",
            },
            None,
        )
    }

    pub fn wrong_amount() -> RpcError {
        RpcError::new(
            code::WRONG_AMOUNT,
            Text {
                ru: "Неверная сумма",
                uz: "Noto'g'ri summa",
                en: "Wrong amount",
            },
            Some(Value::from("amount")),
        )
    }

    pub fn tx_not_found() -> RpcError {
        RpcError::new(
            code::TX_NOT_FOUND,
            Text {
                ru: "Транзакция не найдена",
                uz: "Tranzaksiya topilmadi",
                en: "Transaction not found",
            },
            None,
        )
    }

    pub fn cannot_cancel() -> RpcError {
        RpcError::new(
            code::CANNOT_CANCEL,
            Text {
                ru: "Заказ выполнен, отмена невозможна",
                uz: "Buyurtma bajarilgan, bekor qilib bo'lmaydi",
                en: "The order is fulfilled and cannot be cancelled",
            },
            None,
        )
    }

    pub fn bad_state() -> RpcError {
        RpcError::new(
            code::BAD_STATE,
            Text {
                ru: "Невозможно выполнить операцию",
                uz: "Amalni bajarib bo'lmaydi",
                en: "The operation cannot be performed in the current state",
            },
            None,
        )
    }

    /// An account error (-31050..-31099); `field` is the account field, as Payme requires.
    pub fn account(code: i64, field: &str, message: Text) -> RpcError {
        debug_assert!((-31099..=-31050).contains(&code));
        RpcError::new(code, message, Some(Value::from(field)))
    }
}

/// A parsed request: the method name, its params and the id to echo.
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Map<String, Value>,
}

/// The `id` of a body, if it parses at all: even a rejected request echoes the id it carried.
pub fn peek_id(body: &Value) -> Value {
    body.get("id")
        .filter(|v| !v.is_object() && !v.is_array())
        .cloned()
        .unwrap_or(Value::Null)
}

/// Checks the envelope: an object with a string `method` that `known` knows (else -32601, before
/// anything about `params`), and an object `params`. Extra members (such as `"jsonrpc": "2.0"`) are
/// tolerated: Payme may add fields.
pub fn parse_request(body: Value, known: impl Fn(&str) -> bool) -> Result<Request, RpcError> {
    let id = peek_id(&body);
    let Value::Object(mut obj) = body else {
        return Err(RpcError::invalid("request"));
    };
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(RpcError::invalid("method")),
    };
    if !known(&method) {
        return Err(RpcError::method_not_found(&method));
    }
    let params = match obj.remove("params") {
        Some(Value::Object(p)) => p,
        _ => return Err(RpcError::invalid("params")),
    };
    Ok(Request { id, method, params })
}

/// A success reply, serialised straight to bytes: no map of the envelope is built on the way
/// (a visible share of a Check, BENCHMARKS.md issue 17). The members come in the order a `json!`
/// map would give them, so the bytes are the same as before.
pub fn reply_ok(id: &Value, result: &Value) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Success<'a> {
        id: &'a Value,
        jsonrpc: &'static str,
        result: &'a Value,
    }
    // A `Value` always serialises (string keys, no fallible impls); the fallback is unreachable.
    serde_json::to_vec(&Success {
        id,
        jsonrpc: "2.0",
        result,
    })
    .unwrap_or_default()
}

pub fn reply_err(id: &Value, e: &RpcError) -> Value {
    let mut error = json!({
        "code": e.code,
        "message": { "ru": e.message.ru, "uz": e.message.uz, "en": e.message.en },
    });
    if let Some(data) = &e.data {
        error["data"] = data.clone();
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

/// Typed access to `params`. Payme sends integers as JSON integers and ids as strings; anything
/// else is a malformed request (-32600 naming the field), except amounts, which get -31001.
pub struct Params<'a>(pub &'a Map<String, Value>);

impl<'a> Params<'a> {
    pub fn string(&self, name: &str) -> Result<&'a str, RpcError> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(RpcError::invalid(name)),
        }
    }

    /// A Payme object id: a non-empty printable ASCII string (24 hex characters in practice).
    pub fn payme_id(&self) -> Result<&'a str, RpcError> {
        let id = self.string("id")?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(RpcError::invalid("id"));
        }
        Ok(id)
    }

    pub fn integer(&self, name: &str) -> Result<i64, RpcError> {
        self.0
            .get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| RpcError::invalid(name))
    }

    /// A Payme timestamp: a positive integer of milliseconds.
    pub fn timestamp(&self, name: &str) -> Result<i64, RpcError> {
        match self.integer(name)? {
            t if t > 0 => Ok(t),
            _ => Err(RpcError::invalid(name)),
        }
    }

    /// An amount in tiyin: a whole number above zero. An integer-valued float (`4000000.0`) is that
    /// integer; a string, a fraction, an exponent or a negative is a wrong amount (-31001), never
    /// rounded or coerced.
    pub fn amount(&self) -> Result<i64, RpcError> {
        match self.0.get("amount") {
            Some(Value::Number(n)) => match whole_number(n) {
                Some(a) if a > 0 => Ok(a),
                _ => Err(RpcError::wrong_amount()),
            },
            _ => Err(RpcError::wrong_amount()),
        }
    }

    pub fn object(&self, name: &str) -> Result<&'a Map<String, Value>, RpcError> {
        match self.0.get(name) {
            Some(Value::Object(o)) => Ok(o),
            _ => Err(RpcError::invalid(name)),
        }
    }
}

/// The integer a JSON number spells: `123` or `123.000`, from its digits (never through a float).
fn whole_number(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let text = n.to_string();
    let (int, frac) = text.split_once('.')?;
    let digits = !int.is_empty() && int.bytes().all(|c| c.is_ascii_digit());
    if !digits || frac.is_empty() || !frac.bytes().all(|c| c == b'0') {
        return None;
    }
    int.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_reply_is_the_envelope_payme_expects() {
        let result = json!({ "allow": true, "detail": { "receipt_type": 0 } });
        for id in [json!(7), json!("abc"), Value::Null] {
            let built = json!({ "jsonrpc": "2.0", "id": id, "result": result });
            assert_eq!(reply_ok(&id, &result), serde_json::to_vec(&built).unwrap());
        }
    }

    #[test]
    fn envelope_needs_method_and_params_and_keeps_the_id() {
        let known = |m: &str| m == "X";
        let e = parse_request(json!({"id": 7, "params": {}}), known).err().unwrap();
        assert_eq!((e.code, e.data), (code::INVALID_REQUEST, Some(json!("method"))));
        let e = parse_request(json!({"id": 7, "method": "X", "params": []}), known)
            .err()
            .unwrap();
        assert_eq!(e.data, Some(json!("params")));
        // The method is checked before the params.
        let e = parse_request(json!({"id": 7, "method": "Y"}), known).err().unwrap();
        assert_eq!((e.code, e.data), (code::METHOD_NOT_FOUND, Some(json!("Y"))));
        let r = parse_request(json!({"jsonrpc": "2.0", "id": 7, "method": "X", "params": {}}), known)
            .ok()
            .unwrap();
        assert_eq!((r.id, r.method.as_str()), (json!(7), "X"));
        assert_eq!(peek_id(&json!([1])), Value::Null);
    }

    #[test]
    fn amounts_must_be_positive_json_integers() {
        for bad in [
            "\"500\"",
            "-5",
            "0",
            "1.5",
            "4000000.5",
            "null",
            "1e30",
            "4e6",
            "-0.0",
            "0.0",
        ] {
            let p: Map<String, Value> = serde_json::from_str(&format!("{{\"amount\": {bad}}}")).unwrap();
            assert_eq!(Params(&p).amount().unwrap_err().code, code::WRONG_AMOUNT, "{bad}");
        }
        for (good, value) in [("500000", 500000), ("4000000.0", 4000000), ("4000000.000", 4000000)] {
            let p: Map<String, Value> = serde_json::from_str(&format!("{{\"amount\": {good}}}")).unwrap();
            assert_eq!(Params(&p).amount().unwrap(), value, "{good}");
        }
    }

    #[test]
    fn error_replies_carry_three_languages_and_data() {
        let v = reply_err(&json!(3), &RpcError::method_not_found("Foo"));
        assert_eq!(v["id"], 3);
        assert_eq!(v["error"]["code"], -32601);
        assert_eq!(v["error"]["data"], "Foo");
        for lang in ["ru", "uz", "en"] {
            assert!(v["error"]["message"][lang].is_string());
        }
        assert!(v.get("result").is_none());
    }
}
