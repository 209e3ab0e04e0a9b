//! The JSON bodies of etcd's v3 HTTP/JSON gateway, as etcd 3.4 and later
//! write and read them.
//!
//! The gateway is grpc-gateway over etcd's protobuf messages, so its JSON is
//! protobuf's JSON mapping: `bytes` fields (keys, values) are base64,
//! 64-bit integers (revisions, lease ids, TTLs) are decimal *strings*, and a
//! field at its zero value (`0`, `false`, empty) is left out of an answer.
//! Requests here send 64-bit integers as strings too: a lease id often
//! exceeds 2^53, past which a JSON number is not exact in every reader.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// Base64 of raw bytes, the gateway's encoding of keys and values.
pub fn encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Raw bytes from the gateway's base64.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    B64.decode(text)
        .map_err(|e| format!("not base64 ({e}): {text:?}"))
}

/// Serialises an `i64` as protobuf JSON's decimal string.
fn as_string<S: serde::Serializer>(value: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// Reads a protobuf JSON `int64`: a decimal string or a plain number.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Text(String),
        Number(i64),
    }
    match Int::deserialize(d)? {
        Int::Number(n) => Ok(n),
        Int::Text(t) => t
            .parse()
            .map_err(|_| de::Error::custom(format!("not an int64: {t:?}"))),
    }
}

// ---- requests -------------------------------------------------------------

/// `POST /v3/kv/range`.
#[derive(Debug, Clone, Serialize)]
pub struct RangeRequest {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
}

/// `POST /v3/kv/put`, or a put inside a transaction.
#[derive(Debug, Clone, Serialize)]
pub struct PutRequest {
    pub key: String,
    pub value: String,
    #[serde(serialize_with = "as_string", skip_serializing_if = "is_zero")]
    pub lease: i64,
}

/// `POST /v3/kv/deleterange`, or a delete inside a transaction.
#[derive(Debug, Clone, Serialize)]
pub struct DeleteRequest {
    pub key: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// One operation of a transaction's branch (protobuf's `oneof`, named
/// `request_<kind>` on the wire).
#[derive(Debug, Clone, Serialize)]
pub enum RequestOp {
    #[serde(rename = "request_range")]
    Range(RangeRequest),
    #[serde(rename = "request_put")]
    Put(PutRequest),
    #[serde(rename = "request_delete_range")]
    DeleteRange(DeleteRequest),
}

/// One comparison of a transaction: `target` of `key` EQUAL the value in
/// the field the target names.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRequest {
    pub key: String,
    /// `MOD`, `CREATE`, `VERSION` or `VALUE`.
    pub target: &'static str,
    /// Always `EQUAL` here (all Pygmy needs is compare-and-swap).
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mod_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `POST /v3/kv/txn`.
#[derive(Debug, Clone, Serialize)]
pub struct TxnRequest {
    pub compare: Vec<CompareRequest>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

/// `POST /v3/lease/grant`.
#[derive(Debug, Clone, Serialize)]
pub struct GrantRequest {
    #[serde(rename = "TTL", serialize_with = "as_string")]
    pub ttl: i64,
}

/// `POST /v3/lease/keepalive` and `POST /v3/lease/revoke`.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseRequest {
    #[serde(rename = "ID", serialize_with = "as_string")]
    pub id: i64,
}

// ---- answers --------------------------------------------------------------

/// Every answer's header; only the store's revision is used.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Header {
    #[serde(default, deserialize_with = "int64")]
    pub revision: i64,
}

/// A key-value pair as etcd sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawKeyValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, deserialize_with = "int64")]
    pub create_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    pub mod_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    pub version: i64,
    #[serde(default, deserialize_with = "int64")]
    pub lease: i64,
}

/// The answer to a range.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeResponse {
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub kvs: Vec<RawKeyValue>,
    #[serde(default)]
    pub more: bool,
}

/// The answer to a put.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PutResponse {
    #[serde(default)]
    pub header: Header,
}

/// The answer to a delete.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeleteResponse {
    #[serde(default, deserialize_with = "int64")]
    pub deleted: i64,
}

/// One answer of a transaction's branch.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseOp {
    #[serde(default)]
    pub response_range: Option<RangeResponse>,
}

/// The answer to a transaction.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TxnResponse {
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub succeeded: bool,
    #[serde(default)]
    pub responses: Vec<ResponseOp>,
}

/// The answer to a lease grant or one keep-alive.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LeaseResponse {
    #[serde(default, rename = "ID", deserialize_with = "int64")]
    pub id: i64,
    #[serde(default, rename = "TTL", deserialize_with = "int64")]
    pub ttl: i64,
    /// Set by a grant that etcd refused.
    #[serde(default)]
    pub error: String,
}

/// One message of a streamed answer (the keep-alive is a gRPC stream; the
/// gateway writes each message as `{"result": …}` or `{"error": …}` on a
/// line of its own).
#[derive(Debug, Clone, Deserialize)]
pub struct StreamMessage<T> {
    pub result: Option<T>,
    pub error: Option<ErrorResponse>,
}

/// The gateway's error body: a gRPC status as JSON.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorResponse {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub message: String,
    /// The gRPC status code (5: not found, 14: unavailable, …).
    #[serde(default)]
    pub code: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64_fields_read_from_strings_numbers_or_nothing() {
        let kv: RawKeyValue = serde_json::from_str(
            r#"{"key":"Zm9v","create_revision":"2","mod_revision":7,"lease":"9007199254740993"}"#,
        )
        .unwrap();
        assert_eq!(kv.create_revision, 2);
        assert_eq!(kv.mod_revision, 7);
        assert_eq!(kv.version, 0);
        // Above 2^53: exact, because it came as a string.
        assert_eq!(kv.lease, 9_007_199_254_740_993);
        assert!(serde_json::from_str::<RawKeyValue>(r#"{"version":"x"}"#).is_err());
    }

    #[test]
    fn requests_write_int64_as_strings_and_skip_a_zero_lease() {
        let put = PutRequest {
            key: encode(b"k"),
            value: encode(b"v"),
            lease: 0,
        };
        assert_eq!(
            serde_json::to_string(&put).unwrap(),
            r#"{"key":"aw==","value":"dg=="}"#
        );
        let op = RequestOp::Put(PutRequest { lease: 42, ..put });
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"request_put":{"key":"aw==","value":"dg==","lease":"42"}}"#
        );
        assert_eq!(
            serde_json::to_string(&GrantRequest { ttl: 5 }).unwrap(),
            r#"{"TTL":"5"}"#
        );
    }

    #[test]
    fn base64_round_trips_any_bytes_and_rejects_garbage() {
        for bytes in [&b""[..], b"\0", b"\xff\xfe", b"pygmy/views/catalog"] {
            assert_eq!(decode(&encode(bytes)).unwrap(), bytes);
        }
        assert!(decode("not base64!").is_err());
    }
}
