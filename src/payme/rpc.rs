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

/// A request body as the envelope needs it: the three members it reads, taken straight from the
/// bytes. The map of the whole body that a `Value` builds (its keys, its nodes, the removals and
/// the drop) was a visible share of a Check (BENCHMARKS.md, issue 17). The rules stay those of a
/// map: each member may be any JSON value, so a wrong type is an envelope error (-32600 naming it)
/// and never a parse error; a repeated member keeps its last value; other members are parsed and
/// dropped, under the same depth limit.
#[derive(Debug, Default)]
pub struct Envelope {
    /// The id to echo, `Null` when it is absent or is an object or an array.
    pub id: Value,
    method: Option<Value>,
    params: Option<Value>,
    /// False when the body is JSON but not an object.
    object: bool,
}

impl Envelope {
    /// Reads a body, after a UTF-8 byte order mark if it has one (some HTTP stacks put one before
    /// the JSON). `Err` is a parse error (-32700).
    pub fn read(body: &[u8]) -> Result<Envelope, serde_json::Error> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let first = body.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if first == Some(&b'{') {
            let mut envelope: Envelope = serde_json::from_slice(body)?;
            if envelope.id.is_object() || envelope.id.is_array() {
                envelope.id = Value::Null;
            }
            return Ok(envelope);
        }
        // Anything else is not a request; the general parser tells a parse error from a value.
        serde_json::from_slice::<Value>(body).map(|_| Envelope::default())
    }

    /// Checks the envelope: an object with a string `method` that `known` knows (else -32601,
    /// before anything about `params`), and an object `params`. Extra members (such as
    /// `"jsonrpc": "2.0"`) are tolerated: Payme may add fields. An error comes with the id to echo.
    pub fn into_request(self, known: impl Fn(&str) -> bool) -> Result<Request, (Value, RpcError)> {
        let Envelope {
            id,
            method,
            params,
            object,
        } = self;
        if !object {
            return Err((id, RpcError::invalid("request")));
        }
        let method = match method {
            Some(Value::String(m)) => m,
            _ => return Err((id, RpcError::invalid("method"))),
        };
        if !known(&method) {
            return Err((id, RpcError::method_not_found(&method)));
        }
        let params = match params {
            Some(Value::Object(p)) => p,
            _ => return Err((id, RpcError::invalid("params"))),
        };
        Ok(Request { id, method, params })
    }
}

impl<'de> serde::Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Envelope, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> serde::de::Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON-RPC request object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut envelope = Envelope {
            object: true,
            ..Envelope::default()
        };
        while let Some(member) = map.next_key::<Member>()? {
            match member {
                Member::Id => envelope.id = map.next_value()?,
                Member::Method => envelope.method = Some(map.next_value()?),
                Member::Params => envelope.params = Some(map.next_value()?),
                // Parsed as a `Value` (not skipped) so a member nested too deep is the same
                // parse error it was when the whole body was a `Value`.
                Member::Other => drop(map.next_value::<Value>()?),
            }
        }
        Ok(envelope)
    }
}

/// A member name of the envelope, compared without being kept.
enum Member {
    Id,
    Method,
    Params,
    Other,
}

impl<'de> serde::Deserialize<'de> for Member {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Member, D::Error> {
        deserializer.deserialize_identifier(MemberVisitor)
    }
}

struct MemberVisitor;

impl serde::de::Visitor<'_> for MemberVisitor {
    type Value = Member;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Member, E> {
        Ok(match name {
            "id" => Member::Id,
            "method" => Member::Method,
            "params" => Member::Params,
            _ => Member::Other,
        })
    }
}

/// A success reply around a result already serialised (`result_json`): no map of the envelope is
/// built on the way (a visible share of a Check, BENCHMARKS.md issue 17), and a remembered Check
/// answer is sent again without serialising it again. The members come in the order a `json!` map
/// would give them, so the bytes are the same as the map's.
pub fn reply_ok(id: &Value, result_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(result_json.len() + 48);
    out.extend_from_slice(b"{\"id\":");
    // Writing a `Value` into a `Vec` cannot fail (string keys, no I/O); nothing to handle.
    let _ = serde_json::to_writer(&mut out, id);
    out.extend_from_slice(b",\"jsonrpc\":\"2.0\",\"result\":");
    out.extend_from_slice(result_json);
    out.push(b'}');
    out
}

/// A result as the JSON `reply_ok` takes. A `Value` always serialises; the fallback is unreachable.
pub fn result_json(result: &Value) -> Vec<u8> {
    serde_json::to_vec(result).unwrap_or_else(|_| b"null".to_vec())
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
        let ids = [
            json!(7),
            json!("abc"),
            Value::Null,
            json!(1.50),
            json!(-0),
            json!("q\"\\\u{1}"),
            json!(true),
        ];
        for id in ids {
            let built = json!({ "jsonrpc": "2.0", "id": id, "result": result });
            assert_eq!(
                reply_ok(&id, &result_json(&result)),
                serde_json::to_vec(&built).unwrap()
            );
        }
    }

    /// What a body gives: the request (id, method, params), or the error with the id it echoes,
    /// or a parse error (`None`).
    type Outcome = Option<Result<(Value, String, Map<String, Value>), (Value, i64, Option<Value>)>>;

    fn read(body: &[u8]) -> Outcome {
        let known = |m: &str| m == "X";
        let envelope = Envelope::read(body).ok()?;
        Some(
            envelope
                .into_request(known)
                .map(|r| (r.id, r.method, r.params))
                .map_err(|(id, e)| (id, e.code, e.data)),
        )
    }

    /// The envelope's rules written over a `Value` of the whole body, as they were before the body
    /// was read member by member: the oracle for `Envelope`.
    fn read_as_value(body: &[u8]) -> Outcome {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let value: Value = serde_json::from_slice(body).ok()?;
        let id = value
            .get("id")
            .filter(|v| !v.is_object() && !v.is_array())
            .cloned()
            .unwrap_or(Value::Null);
        let fail = |e: RpcError| Some(Err((id.clone(), e.code, e.data)));
        let Value::Object(mut obj) = value else {
            return fail(RpcError::invalid("request"));
        };
        let method = match obj.remove("method") {
            Some(Value::String(m)) => m,
            _ => return fail(RpcError::invalid("method")),
        };
        if method != "X" {
            return fail(RpcError::method_not_found(&method));
        }
        match obj.remove("params") {
            Some(Value::Object(p)) => Some(Ok((id, method, p))),
            _ => fail(RpcError::invalid("params")),
        }
    }

    #[test]
    fn envelope_needs_method_and_params_and_keeps_the_id() {
        let e = read(br#"{"id": 7, "params": {}}"#).unwrap().err().unwrap();
        assert_eq!(e, (json!(7), code::INVALID_REQUEST, Some(json!("method"))));
        let e = read(br#"{"id": 7, "method": "X", "params": []}"#)
            .unwrap()
            .err()
            .unwrap();
        assert_eq!(e, (json!(7), code::INVALID_REQUEST, Some(json!("params"))));
        // The method is checked before the params.
        let e = read(br#"{"id": 7, "method": "Y"}"#).unwrap().err().unwrap();
        assert_eq!(e, (json!(7), code::METHOD_NOT_FOUND, Some(json!("Y"))));
        let r = read(br#"{"jsonrpc": "2.0", "id": 7, "method": "X", "params": {"a": 1}}"#)
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(
            r,
            (json!(7), "X".to_string(), json!({"a": 1}).as_object().unwrap().clone())
        );
        let e = read(b"[1]").unwrap().err().unwrap();
        assert_eq!(e, (Value::Null, code::INVALID_REQUEST, Some(json!("request"))));
        assert_eq!(read(b"{"), None);
    }

    #[test]
    fn the_envelope_read_member_by_member_follows_the_rules_of_a_map() {
        let deep = format!(
            r#"{{"id":1,"method":"X","params":{{}},"x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let deep_ok = format!(
            r#"{{"id":1,"method":"X","params":{{}},"x":{}1{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let bodies: Vec<&[u8]> = vec![
            br#"{"method":"X","params":{},"id":10}"#,
            b"\xEF\xBB\xBF{\"method\":\"X\",\"params\":{},\"id\":10}",
            b" \t\r\n{\"method\":\"X\",\"params\":{},\"id\":\"a\"} \n",
            br#"{"id":1,"id":2,"method":"Y","method":"X","params":[],"params":{"b":2}}"#,
            br#"{"id":{"a":1},"method":"X","params":{}}"#,
            br#"{"id":[1],"method":"X","params":{}}"#,
            br#"{"id":1,"id":{},"method":"X","params":{}}"#,
            br#"{"id":null,"method":"X","params":{}}"#,
            br#"{"id":123456789012345678901234567890,"method":"X","params":{}}"#,
            br#"{"id":1.50,"method":"X","params":{}}"#,
            br#"{"id":-0,"method":"X","params":{}}"#,
            br#"{"m\u0065thod":"X","\u0070arams":{},"\u0069d":3}"#,
            br#"{"method":"X\u0000","params":{},"id":3}"#,
            br#"{"method":5,"params":{},"id":3}"#,
            br#"{"method":null,"params":{},"id":3}"#,
            br#"{"method":"X","params":null,"id":3}"#,
            br#"{"method":"X","id":3}"#,
            br#"{"method":"X","params":{},"id":3,"jsonrpc":"2.0","extra":{"a":[1,2,{"b":null}]}}"#,
            br#"{"method":"X","params":{},"id":3} x"#,
            br#"{"method":"X","params":{},"id":3,}"#,
            br#"{"method":"X","params":{},"id":3"#,
            br#"{}"#,
            br#"[]"#,
            br#"[{"method":"X","params":{}}]"#,
            b"7",
            b"\"X\"",
            b"null",
            b"true",
            b"",
            b"   ",
            b"\xEF\xBB\xBF",
            b"\xEF\xBB\xBF\xEF\xBB\xBF{}",
            b"{\"method\":\"\xff\",\"params\":{}}",
            deep.as_bytes(),
            deep_ok.as_bytes(),
        ];
        for body in bodies {
            assert_eq!(
                read(body),
                read_as_value(body),
                "body {:?}",
                String::from_utf8_lossy(body)
            );
        }
        // One body where they part, and the member-by-member reading is the right one: serde_json's
        // `arbitrary_precision` reads this object as a `Value` number, so the map rules called it
        // "not an object". It is an object without a method.
        let e = read(br#"{"$serde_json::private::Number":"5"}"#).unwrap().err().unwrap();
        assert_eq!(e, (Value::Null, code::INVALID_REQUEST, Some(json!("method"))));
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
