//! [`Etcd`]: the client over a list of endpoints (see the module docs of
//! [`etcd`](super) for the design).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::wire::{self, decode, encode};
use crate::client::chain;

/// How long a connection attempt to one endpoint may take. Loopback and a
/// LAN connect in well under a millisecond; a dead host's SYN is never
/// answered, and this is what bounds it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);

/// How long one request to one endpoint may take, connection included.
/// etcd commits a write in a few milliseconds on a healthy cluster; its own
/// server-side timeout for a proposal is several seconds, which this cuts
/// short so a caller learns of trouble (and fails over) quickly.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an unused pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read from etcd. Pygmy's keys hold views and leader
/// records of a few hundred bytes; a range of its prefix is a few KiB.
/// Anything past this is a bug or a wrong prefix, reported as a bad answer
/// rather than buffered.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The content type of every request body.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// An etcd revision (etcd's `int64`): the store's logical clock, raised by
/// one per committed write transaction.
pub type Revision = i64;

/// A lease's id, as etcd grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(pub i64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // etcdctl prints lease ids in hex; so do we, to match its output.
        write!(f, "{:x}", self.0)
    }
}

/// A key and its value, with etcd's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// The revision of the write that created the key (since its last
    /// delete).
    pub create_revision: Revision,
    /// The revision of the key's last write: what a compare-and-swap
    /// compares.
    pub mod_revision: Revision,
    /// Writes since creation (1 after the first).
    pub version: i64,
    /// The lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// A range's answer: the keys found, and the store's revision it read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub revision: Revision,
    pub kvs: Vec<KeyValue>,
}

/// A lease granted: its id and the TTL etcd gave it (at least the one asked
/// for; etcd raises a TTL below its minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: LeaseId,
    pub ttl: Duration,
}

/// One condition of a transaction; all of them must hold for it to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's last write was at this revision (`0`: the key is absent).
    ModRevision(Vec<u8>, Revision),
    /// The key was created at this revision (`0`: the key is absent).
    CreateRevision(Vec<u8>, Revision),
    /// The key holds exactly this value (false when the key is absent).
    Value(Vec<u8>, Vec<u8>),
}

impl Compare {
    /// The key the condition is about.
    pub fn key(&self) -> &[u8] {
        match self {
            Compare::ModRevision(key, _)
            | Compare::CreateRevision(key, _)
            | Compare::Value(key, _) => key,
        }
    }

    fn wire(&self) -> wire::CompareRequest {
        let mut c = wire::CompareRequest {
            key: encode(self.key()),
            target: "",
            result: "EQUAL",
            mod_revision: None,
            create_revision: None,
            version: None,
            value: None,
        };
        match self {
            Compare::ModRevision(_, r) => {
                c.target = "MOD";
                c.mod_revision = Some(r.to_string());
            }
            Compare::CreateRevision(_, r) => {
                c.target = "CREATE";
                c.create_revision = Some(r.to_string());
            }
            Compare::Value(_, v) => {
                c.target = "VALUE";
                c.value = Some(encode(v));
            }
        }
        c
    }
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set the key's value, attached to the lease if one is given (the key
    /// is deleted when the lease ends).
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    },
    /// Remove the key (nothing if it is absent).
    Delete { key: Vec<u8> },
}

impl Op {
    fn wire(&self) -> wire::RequestOp {
        match self {
            Op::Put { key, value, lease } => wire::RequestOp::Put(wire::PutRequest {
                key: encode(key),
                value: encode(value),
                lease: lease.map_or(0, |l| l.0),
            }),
            Op::Delete { key } => {
                wire::RequestOp::DeleteRange(wire::DeleteRequest { key: encode(key) })
            }
        }
    }
}

/// What went wrong, named by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered in time, or the ones that answered could not
    /// serve (no leader, shutting down). Retry later. A **write** that
    /// fails this way may or may not have been applied: re-read (its
    /// compare-and-swap conditions tell which) before deciding.
    #[error("etcd unreachable: {0}")]
    Unreachable(String),
    /// A transaction's conditions did not hold, so it wrote nothing.
    /// `current` is every compared key's value at `revision` (`None`:
    /// absent), read in the same transaction: re-decide from it.
    #[error("compare failed at revision {revision}")]
    CompareFailed {
        revision: Revision,
        current: Vec<(Vec<u8>, Option<KeyValue>)>,
    },
    /// The lease has expired or was revoked (or never existed): whatever
    /// was attached to it is gone. Grant a new one.
    #[error("lease {0} expired or not found")]
    LeaseNotFound(LeaseId),
    /// etcd answered something this client does not understand, or refused
    /// the request as invalid: a bug or a version mismatch; retrying will
    /// not help.
    #[error("bad answer from etcd: {0}")]
    BadAnswer(String),
}

/// Which requests may be sent again, to another endpoint, after the first
/// attempt may have reached etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads, keep-alives, revokes and grants: sending twice is harmless (a
    /// second grant leaves a spare lease that expires by itself).
    Always,
    /// Puts, deletes and transactions: another endpoint is tried only when
    /// the request certainly never left (the connection was refused or
    /// never made), so a write is never applied twice behind the caller's
    /// back, and a compare-and-swap never reports "compare failed" because
    /// of its own earlier attempt.
    IfNotSent,
}

/// Where to find etcd and how long to wait for it.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// `host:port` or `http://host:port`, one per etcd member's client URL.
    pub endpoints: Vec<String>,
    pub connect_timeout: Duration,
    /// One attempt on one endpoint. A call tries each endpoint at most once,
    /// so it ends within `endpoints.len() × request_timeout`.
    pub request_timeout: Duration,
}

impl EtcdConfig {
    /// The endpoints with the default timeouts.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// An etcd v3 client over its HTTP/JSON gateway. Cheap to share (`&self`
/// methods; wrap it in an `Arc`); calls may run concurrently.
pub struct Etcd {
    client: Client<HttpConnector, Full<Bytes>>,
    /// Each endpoint's base (`http://host:port`), checked at construction.
    endpoints: Vec<String>,
    /// The endpoint a call tries first: the last one that answered.
    preferred: AtomicUsize,
    request_timeout: Duration,
}

impl fmt::Debug for Etcd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl Etcd {
    /// A client for `config`'s endpoints. Makes no connection yet: a wrong
    /// address shows on the first call (as [`EtcdError::Unreachable`]);
    /// only a list that is empty or does not parse is refused here.
    pub fn new(config: EtcdConfig) -> Result<Self, EtcdError> {
        if config.endpoints.is_empty() {
            return Err(EtcdError::BadAnswer("no etcd endpoint given".into()));
        }
        let endpoints = config
            .endpoints
            .iter()
            .map(|e| {
                let base = e.trim().trim_end_matches('/');
                let base = if base.contains("://") {
                    base.to_string()
                } else {
                    format!("http://{base}")
                };
                if !base.starts_with("http://") {
                    // TLS would need a TLS connector: not built in.
                    return Err(EtcdError::BadAnswer(format!(
                        "etcd endpoint {e:?}: only http:// is supported"
                    )));
                }
                format!("{base}/v3/kv/range")
                    .parse::<Uri>()
                    .map_err(|err| EtcdError::BadAnswer(format!("etcd endpoint {e:?}: {err}")))?;
                Ok(base)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Ok(Etcd {
            client,
            endpoints,
            preferred: AtomicUsize::new(0),
            request_timeout: config.request_timeout,
        })
    }

    /// The endpoints, as `http://host:port`.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// One key, or `None` when it is absent.
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
        let request = wire::RangeRequest {
            key: encode(key),
            range_end: None,
        };
        let answer: wire::RangeResponse =
            self.call("/v3/kv/range", &request, Retry::Always).await?;
        Ok(kvs(answer.kvs)?.into_iter().next())
    }

    /// Every key that starts with `prefix`, in key order, read at one
    /// revision.
    pub async fn get_prefix(&self, prefix: &[u8]) -> Result<Range, EtcdError> {
        let request = wire::RangeRequest {
            key: encode(if prefix.is_empty() { b"\0" } else { prefix }),
            range_end: Some(encode(&prefix_end(prefix))),
        };
        let answer: wire::RangeResponse =
            self.call("/v3/kv/range", &request, Retry::Always).await?;
        if answer.more {
            return Err(EtcdError::BadAnswer(
                "a range without a limit answered with more to come".into(),
            ));
        }
        Ok(Range {
            revision: answer.header.revision,
            kvs: kvs(answer.kvs)?,
        })
    }

    /// Sets `key` to `value` unconditionally (attached to `lease` if given)
    /// and returns the write's revision.
    pub async fn put(
        &self,
        key: &[u8],
        value: &[u8],
        lease: Option<LeaseId>,
    ) -> Result<Revision, EtcdError> {
        let request = wire::PutRequest {
            key: encode(key),
            value: encode(value),
            lease: lease.map_or(0, |l| l.0),
        };
        let answer: wire::PutResponse = self
            .call("/v3/kv/put", &request, Retry::IfNotSent)
            .await
            .map_err(|e| lease_error(e, lease))?;
        Ok(answer.header.revision)
    }

    /// Removes `key`; returns whether it was there.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, EtcdError> {
        let request = wire::DeleteRequest { key: encode(key) };
        let answer: wire::DeleteResponse = self
            .call("/v3/kv/deleterange", &request, Retry::IfNotSent)
            .await?;
        Ok(answer.deleted > 0)
    }

    /// Compare-and-swap: if every one of `compares` holds, applies `ops` in
    /// one atomic step and returns its revision; otherwise writes nothing
    /// and fails with [`EtcdError::CompareFailed`], carrying each compared
    /// key's current value read in the same step.
    pub async fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<Revision, EtcdError> {
        let mut read_back: Vec<&[u8]> = Vec::new();
        for c in compares {
            if !read_back.contains(&c.key()) {
                read_back.push(c.key());
            }
        }
        let request = wire::TxnRequest {
            compare: compares.iter().map(Compare::wire).collect(),
            success: ops.iter().map(Op::wire).collect(),
            failure: read_back
                .iter()
                .map(|key| {
                    wire::RequestOp::Range(wire::RangeRequest {
                        key: encode(key),
                        range_end: None,
                    })
                })
                .collect(),
        };
        let lease = ops.iter().find_map(|op| match op {
            Op::Put { lease, .. } => *lease,
            Op::Delete { .. } => None,
        });
        let answer: wire::TxnResponse = self
            .call("/v3/kv/txn", &request, Retry::IfNotSent)
            .await
            .map_err(|e| lease_error(e, lease))?;
        if answer.succeeded {
            return Ok(answer.header.revision);
        }
        if answer.responses.len() != read_back.len() {
            return Err(EtcdError::BadAnswer(format!(
                "a failed transaction answered {} reads for {} keys",
                answer.responses.len(),
                read_back.len()
            )));
        }
        let mut current = Vec::with_capacity(read_back.len());
        for (key, response) in read_back.into_iter().zip(answer.responses) {
            let range = response.response_range.unwrap_or_default();
            current.push((key.to_vec(), kvs(range.kvs)?.into_iter().next()));
        }
        Err(EtcdError::CompareFailed {
            revision: answer.header.revision,
            current,
        })
    }

    /// Creates `key` = `value` attached to `lease`, only if `key` is absent
    /// (its create revision is 0): the step of a leader election. Fails
    /// with [`EtcdError::CompareFailed`] (carrying the current holder's
    /// record) while another holds it; succeeds again once that holder's
    /// lease is revoked or expires, which deletes the key.
    pub async fn campaign(
        &self,
        key: &[u8],
        value: &[u8],
        lease: LeaseId,
    ) -> Result<Revision, EtcdError> {
        self.txn(
            &[Compare::CreateRevision(key.to_vec(), 0)],
            &[Op::Put {
                key: key.to_vec(),
                value: value.to_vec(),
                lease: Some(lease),
            }],
        )
        .await
    }

    /// A new lease of at least `ttl` (etcd counts whole seconds; a TTL
    /// below one second is asked as one).
    pub async fn grant(&self, ttl: Duration) -> Result<Lease, EtcdError> {
        let secs = i64::try_from(ttl.as_secs_f64().ceil() as u64)
            .unwrap_or(i64::MAX)
            .max(1);
        let answer: wire::LeaseResponse = self
            .call(
                "/v3/lease/grant",
                &wire::GrantRequest { ttl: secs },
                Retry::Always,
            )
            .await?;
        if !answer.error.is_empty() {
            return Err(EtcdError::BadAnswer(format!(
                "lease grant refused: {}",
                answer.error
            )));
        }
        if answer.id == 0 || answer.ttl <= 0 {
            return Err(EtcdError::BadAnswer(format!(
                "lease grant answered id {} and TTL {}",
                answer.id, answer.ttl
            )));
        }
        Ok(Lease {
            id: LeaseId(answer.id),
            ttl: Duration::from_secs(answer.ttl.unsigned_abs()),
        })
    }

    /// Renews `lease` for its full TTL again and returns that TTL. A
    /// holder that needs a safe bound on its lease counts the TTL from
    /// *before* it sent this call: etcd renews it at some moment in
    /// between.
    pub async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, EtcdError> {
        let request = wire::LeaseRequest { id: lease.0 };
        let answers: Vec<wire::StreamMessage<wire::LeaseResponse>> =
            self.call_stream("/v3/lease/keepalive", &request).await?;
        let Some(first) = answers.into_iter().next() else {
            return Err(EtcdError::BadAnswer("an empty keep-alive answer".into()));
        };
        if let Some(error) = first.error {
            return Err(lease_error(status_error(error), Some(lease)));
        }
        let answer = first.result.unwrap_or_default();
        // etcd answers a keep-alive of an unknown lease with TTL 0.
        if answer.ttl <= 0 {
            return Err(EtcdError::LeaseNotFound(lease));
        }
        Ok(Duration::from_secs(answer.ttl.unsigned_abs()))
    }

    /// Ends `lease` now, deleting every key attached to it.
    pub async fn revoke(&self, lease: LeaseId) -> Result<(), EtcdError> {
        let request = wire::LeaseRequest { id: lease.0 };
        let _: wire::PutResponse = self
            .call("/v3/lease/revoke", &request, Retry::Always)
            .await
            .map_err(|e| lease_error(e, Some(lease)))?;
        Ok(())
    }

    /// Sends `request` to `path`, failing over between endpoints as `retry`
    /// allows, and decodes the answer.
    async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
        retry: Retry,
    ) -> Result<A, EtcdError> {
        let body = self.send(path, request, retry).await?;
        serde_json::from_slice(&body)
            .map_err(|e| EtcdError::BadAnswer(format!("{path}: {e}: {}", snippet(&body))))
    }

    /// [`call`](Self::call) for a streamed answer: one JSON message a line.
    async fn call_stream<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
    ) -> Result<Vec<A>, EtcdError> {
        let body = self.send(path, request, Retry::Always).await?;
        body.split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| {
                serde_json::from_slice(line)
                    .map_err(|e| EtcdError::BadAnswer(format!("{path}: {e}: {}", snippet(line))))
            })
            .collect()
    }

    /// The failover loop: each endpoint at most once, starting with the
    /// preferred one, each attempt bounded by the request timeout.
    async fn send<Q: Serialize>(
        &self,
        path: &str,
        request: &Q,
        retry: Retry,
    ) -> Result<Bytes, EtcdError> {
        let body = Bytes::from(
            serde_json::to_vec(request)
                .map_err(|e| EtcdError::BadAnswer(format!("cannot encode {path}: {e}")))?,
        );
        let n = self.endpoints.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut failures = Vec::new();
        for i in 0..n {
            let index = (start + i) % n;
            let endpoint = &self.endpoints[index];
            let outcome = tokio::time::timeout(
                self.request_timeout,
                self.attempt(endpoint, path, body.clone()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Attempt::MaybeSent(format!(
                    "no answer within {:?}",
                    self.request_timeout
                )))
            });
            let (status, answer) = match outcome {
                Ok(ok) => ok,
                Err(Attempt::NotSent(why)) => {
                    failures.push(format!("{endpoint}: {why}"));
                    continue;
                }
                Err(Attempt::MaybeSent(why)) => {
                    failures.push(format!("{endpoint}: {why}"));
                    if retry == Retry::Always {
                        continue;
                    }
                    self.avoid(index);
                    return Err(EtcdError::Unreachable(failures.join("; ")));
                }
            };
            if status == StatusCode::OK {
                self.preferred.store(index, Ordering::Relaxed);
                return Ok(answer);
            }
            let error = match serde_json::from_slice::<wire::ErrorResponse>(&answer) {
                Ok(e) if e.code != 0 => status_error(e),
                _ => EtcdError::BadAnswer(format!(
                    "{endpoint}{path} answered {status}: {}",
                    snippet(&answer)
                )),
            };
            match error {
                // This member cannot serve (no leader, stopping): another
                // may. A write it refused this way may still have been
                // proposed, so only a retryable request moves on.
                EtcdError::Unreachable(why) => {
                    failures.push(format!("{endpoint}: {why}"));
                    if retry == Retry::Always {
                        continue;
                    }
                    self.avoid(index);
                    return Err(EtcdError::Unreachable(failures.join("; ")));
                }
                other => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Err(other);
                }
            }
        }
        self.avoid(start);
        Err(EtcdError::Unreachable(failures.join("; ")))
    }

    /// After a failure on `index`, the next call starts with the endpoint
    /// after it (unless another call has already moved on).
    fn avoid(&self, index: usize) {
        let next = (index + 1) % self.endpoints.len();
        let _ = self
            .preferred
            .compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// One request to one endpoint, its whole answer read.
    async fn attempt(
        &self,
        endpoint: &str,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Attempt> {
        let request = hyper::Request::builder()
            .method(Method::POST)
            .uri(format!("{endpoint}{path}"))
            .header(CONTENT_TYPE, JSON)
            .body(Full::new(body))
            .map_err(|e| Attempt::NotSent(format!("cannot build the request: {e}")))?;
        let response = self.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                Attempt::NotSent(chain(&e))
            } else {
                Attempt::MaybeSent(chain(&e))
            }
        })?;
        let status = response.status();
        let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES);
        let answer = limited
            .collect()
            .await
            .map_err(|e| Attempt::MaybeSent(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, answer))
    }
}

/// Why one attempt failed: whether the request may have reached etcd.
enum Attempt {
    NotSent(String),
    MaybeSent(String),
}

/// The key just past every key that starts with `prefix` (etcd's
/// `range_end`): the prefix with its last byte below 0xff raised by one.
/// `"\0"` (everything) for an empty or all-0xff prefix.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn kvs(raw: Vec<wire::RawKeyValue>) -> Result<Vec<KeyValue>, EtcdError> {
    raw.into_iter()
        .map(|kv| {
            Ok(KeyValue {
                key: decode(&kv.key).map_err(EtcdError::BadAnswer)?,
                value: decode(&kv.value).map_err(EtcdError::BadAnswer)?,
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
                lease: (kv.lease != 0).then_some(LeaseId(kv.lease)),
            })
        })
        .collect()
}

/// The gRPC status codes that mean "this member cannot serve now".
const DEADLINE_EXCEEDED: i32 = 4;
const NOT_FOUND: i32 = 5;
const UNAVAILABLE: i32 = 14;

/// An error that etcd answered, as the caller should read it.
fn status_error(e: wire::ErrorResponse) -> EtcdError {
    let text = if e.message.is_empty() {
        e.error
    } else {
        e.message
    };
    match e.code {
        DEADLINE_EXCEEDED | UNAVAILABLE => EtcdError::Unreachable(text),
        NOT_FOUND if text.contains("lease not found") => EtcdError::LeaseNotFound(LeaseId(0)),
        code => EtcdError::BadAnswer(format!("etcd refused (code {code}): {text}")),
    }
}

/// Names the lease in a "lease not found" from etcd (which does not).
fn lease_error(e: EtcdError, lease: Option<LeaseId>) -> EtcdError {
    match (e, lease) {
        (EtcdError::LeaseNotFound(_), Some(lease)) => EtcdError::LeaseNotFound(lease),
        (e, _) => e,
    }
}

/// The start of an answer, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"pygmy/"), b"pygmy0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn endpoints_are_checked_and_normalised() {
        let etcd = Etcd::new(EtcdConfig::new(["127.0.0.1:2379", "http://10.0.0.1:2379/"]))
            .expect("valid endpoints");
        assert_eq!(
            etcd.endpoints(),
            ["http://127.0.0.1:2379", "http://10.0.0.1:2379"]
        );
        assert!(matches!(
            Etcd::new(EtcdConfig::new(Vec::<String>::new())),
            Err(EtcdError::BadAnswer(_))
        ));
        assert!(matches!(
            Etcd::new(EtcdConfig::new(["https://127.0.0.1:2379"])),
            Err(EtcdError::BadAnswer(m)) if m.contains("only http://")
        ));
        assert!(Etcd::new(EtcdConfig::new(["bad host:1"])).is_err());
    }

    #[test]
    fn etcd_statuses_map_to_what_the_caller_should_do() {
        let status = |code, message: &str| wire::ErrorResponse {
            error: message.into(),
            message: message.into(),
            code,
        };
        assert!(matches!(
            status_error(status(14, "etcdserver: no leader")),
            EtcdError::Unreachable(_)
        ));
        assert!(matches!(
            lease_error(
                status_error(status(5, "etcdserver: requested lease not found")),
                Some(LeaseId(7))
            ),
            EtcdError::LeaseNotFound(LeaseId(7))
        ));
        assert!(matches!(
            status_error(status(3, "etcdserver: key is not provided")),
            EtcdError::BadAnswer(_)
        ));
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable_quickly() {
        // Port 1 on loopback: refused at once on any ordinary machine.
        let etcd = Etcd::new(EtcdConfig::new(["127.0.0.1:1", "127.0.0.1:1"])).unwrap();
        let started = tokio::time::Instant::now();
        let error = etcd.get(b"k").await.unwrap_err();
        assert!(matches!(error, EtcdError::Unreachable(_)), "{error}");
        assert!(started.elapsed() < 2 * DEFAULT_REQUEST_TIMEOUT);
    }
}
