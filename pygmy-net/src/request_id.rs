//! Request ids: one per public request, so one buy can be followed across
//! the nodes it touches.
//!
//! - A public request's id is its `X-Request-Id` header when that is 1 to
//!   [`MAX_ID_LEN`] visible ASCII characters, or one this node makes
//!   (otherwise, including when the given one is malformed: the request is
//!   served all the same). The answer carries it back in `X-Request-Id`.
//! - While the request is handled its id is the task's current id
//!   ([`current`]); the internal calls the handler makes carry it in the
//!   same header, and the receiving node handles them under it.
//! - Each node writes the id in its log line for the request (see
//!   [`App`](crate::App)).
//!
//! Work a handler hands to another task (a group commit's shared round, a
//! background pull) is not one request's, and carries no id.
//!
//! # Cost
//!
//! An id costs a request no heap string: a client's id is its header value
//! (shared with the request's own header bytes, not copied), a made one is
//! two numbers, formatted only where it is written (the answer's header,
//! which hyper needs as bytes, and a log line, only when that line is
//! enabled).

use hyper::header::{HeaderMap, HeaderValue};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The header that carries a request id, both ways.
pub const HEADER: &str = "x-request-id";
/// Longest id taken from a client.
pub const MAX_ID_LEN: usize = 128;

/// Longest made id: 8 hex digits, a dash, 16 hex digits.
const MADE_LEN: usize = 8 + 1 + 16;

/// One request's id (see the module docs). Cloning it copies two numbers
/// or bumps a reference count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Repr);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Repr {
    /// A client's, checked by [`given`]: 1 to [`MAX_ID_LEN`] visible ASCII
    /// characters.
    Given(HeaderValue),
    /// This node's: `{prefix:08x}-{n:x}`.
    Made { prefix: u32, n: u64 },
}

impl RequestId {
    /// The id as a header value, for an answer or an internal call.
    pub fn header_value(&self) -> HeaderValue {
        match &self.0 {
            Repr::Given(value) => value.clone(),
            Repr::Made { prefix, n } => {
                let mut buf = [0u8; MADE_LEN];
                let len = made_bytes(*prefix, *n, &mut buf);
                // Hex digits and a dash are always a valid header value;
                // the fallback is never taken.
                HeaderValue::from_bytes(&buf[..len])
                    .unwrap_or_else(|_| HeaderValue::from_static("-"))
            }
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            // Checked visible ASCII when taken, so `to_str` succeeds.
            Repr::Given(value) => f.write_str(value.to_str().unwrap_or("-")),
            Repr::Made { prefix, n } => write!(f, "{prefix:08x}-{n:x}"),
        }
    }
}

/// Writes `{prefix:08x}-{n:x}` into `buf`; returns its length.
fn made_bytes(prefix: u32, n: u64, buf: &mut [u8; MADE_LEN]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in buf[..8].iter_mut().enumerate() {
        *byte = HEX[(prefix >> (28 - 4 * i) & 0xf) as usize];
    }
    buf[8] = b'-';
    // At least one digit, as `{:x}` writes for 0.
    let digits = (16 - n.leading_zeros() as usize / 4).max(1);
    for i in 0..digits {
        buf[9 + i] = HEX[(n >> (4 * (digits - 1 - i)) & 0xf) as usize];
    }
    9 + digits
}

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request the current task handles, if any.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(RequestId::clone).ok()
}

/// Runs `future` as the handling of request `id`.
pub async fn scope<F: Future>(id: RequestId, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The id a request carries, if well formed (see the module docs).
pub fn given(headers: &HeaderMap) -> Option<RequestId> {
    let value = headers.get(HEADER)?;
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic());
    ok.then(|| RequestId(Repr::Given(value.clone())))
}

/// Makes ids unique across nodes and restarts: a random 32-bit prefix per
/// maker, then a counter.
pub struct IdMaker {
    prefix: u32,
    next: AtomicU64,
}

impl Default for IdMaker {
    fn default() -> Self {
        // std's per-process random hash keys: randomness without a
        // dependency. An id decides nothing, so the simulation's
        // determinism does not depend on it.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        IdMaker {
            prefix: random as u32,
            next: AtomicU64::new(1),
        }
    }
}

impl IdMaker {
    pub fn make(&self) -> RequestId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        RequestId(Repr::Made {
            prefix: self.prefix,
            n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_client_id_is_kept_and_a_bad_one_ignored() {
        let mut headers = HeaderMap::new();
        assert_eq!(given(&headers), None);
        headers.insert(HEADER, HeaderValue::from_static("abc-123"));
        let id = given(&headers).map(|id| id.to_string());
        assert_eq!(id.as_deref(), Some("abc-123"));
        headers.insert(HEADER, HeaderValue::from_static("has space"));
        assert_eq!(given(&headers), None);
        headers.insert(HEADER, HeaderValue::from_str(&"x".repeat(129)).unwrap());
        assert_eq!(given(&headers), None);
    }

    #[test]
    fn made_ids_differ() {
        let maker = IdMaker::default();
        assert_ne!(maker.make(), maker.make());
    }

    #[test]
    fn a_made_id_is_written_as_formatted() {
        for (prefix, n) in [(0, 0), (0xdead_beef, 1), (7, 0x1f), (u32::MAX, u64::MAX)] {
            let id = RequestId(Repr::Made { prefix, n });
            let expected = format!("{prefix:08x}-{n:x}");
            assert_eq!(id.to_string(), expected);
            assert_eq!(id.header_value().to_str().ok(), Some(expected.as_str()));
        }
    }

    #[tokio::test]
    async fn the_current_id_is_the_scope_s() {
        assert_eq!(current(), None);
        let id = RequestId(Repr::Given(HeaderValue::from_static("r1")));
        let seen = scope(id, async { current() }).await;
        assert_eq!(seen.map(|id| id.to_string()).as_deref(), Some("r1"));
    }
}
