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

use hyper::header::HeaderMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The header that carries a request id, both ways.
pub const HEADER: &str = "x-request-id";
/// Longest id taken from a client.
pub const MAX_ID_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: Arc<str>;
}

/// The id of the request the current task handles, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs `future` as the handling of request `id`.
pub async fn scope<F: Future>(id: Arc<str>, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The id a request carries, if well formed (see the module docs).
pub fn given(headers: &HeaderMap) -> Option<Arc<str>> {
    let value = headers.get(HEADER)?.as_bytes();
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value.iter().all(|b| b.is_ascii_graphic());
    // Checked above: visible ASCII is UTF-8.
    ok.then(|| std::str::from_utf8(value).ok().map(Arc::from))
        .flatten()
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
    pub fn make(&self) -> Arc<str> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{:08x}-{n:x}", self.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn a_well_formed_client_id_is_kept_and_a_bad_one_ignored() {
        let mut headers = HeaderMap::new();
        assert_eq!(given(&headers), None);
        headers.insert(HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(given(&headers).as_deref(), Some("abc-123"));
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

    #[tokio::test]
    async fn the_current_id_is_the_scope_s() {
        assert_eq!(current(), None);
        let seen = scope(Arc::from("r1"), async { current() }).await;
        assert_eq!(seen.as_deref(), Some("r1"));
    }
}
