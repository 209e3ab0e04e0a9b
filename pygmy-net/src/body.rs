//! Reading request bodies with a size and a time limit, and decoding them
//! as JSON.
//!
//! A body larger than the limit is refused with 413 — up front when its
//! `Content-Length` already says so, otherwise as soon as the bytes read
//! pass the limit — so a client cannot make a node buffer unbounded input.
//! A body that has not fully arrived within the time limit is refused with
//! 408, so a client that announces a body and holds it back cannot keep a
//! request (and its connection) open. Bodies that are not the expected JSON
//! object get a 400 naming the problem.

use crate::wire::Failure;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::StatusCode;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Errors a request body can carry, as hyper's and http-body's do.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How much of a body a node reads, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit {
    /// Most bytes accepted (413 beyond).
    pub bytes: usize,
    /// Longest time to receive the whole body, from when the handler starts
    /// reading it (408 beyond). Measured with tokio's clock, so the
    /// simulation's virtual time applies.
    pub time: Duration,
}

/// Reads the whole body, refusing more than `limit.bytes` bytes or a body
/// that takes longer than `limit.time` to arrive.
pub async fn read_limited<B>(body: B, limit: BodyLimit) -> Result<Bytes, Failure>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let bytes = limit.bytes;
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds the limit of {bytes} bytes"),
        )
    };
    if body.size_hint().lower() > bytes as u64 {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(limit.time, Limited::new(body, bytes).collect()).await;
    match collected {
        Err(_) => Err(Failure::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} ms",
                limit.time.as_millis()
            ),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Failure::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Decodes a JSON body; `what` names it in the error ("the rpc request").
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::bad_request(format!("{what} is not valid JSON: {e}")))
}

/// Decodes a public body, which must be a JSON object; `what` names it in
/// the error ("the buy body"). Anything but an object is refused: serde
/// would otherwise take a JSON array such as `[5]` for a struct's fields
/// in order.
pub fn decode_object<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Failure> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => decode(bytes, what),
        Some(_) => Err(Failure::bad_request(format!(
            "{what} must be a JSON object"
        ))),
        None => Err(Failure::bad_request(format!("{what} is empty"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn limit(bytes: usize) -> BodyLimit {
        BodyLimit {
            bytes,
            time: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn bodies_up_to_the_limit_pass_and_larger_ones_are_413() {
        let ok = read_limited(Full::new(Bytes::from(vec![1u8; 10])), limit(10)).await;
        assert_eq!(ok.map(|b| b.len()), Ok(10));
        let big = read_limited(Full::new(Bytes::from(vec![1u8; 11])), limit(10)).await;
        assert_eq!(
            big.map_err(|f| f.status),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }

    /// A body of chunks with no size hint, as a chunked upload arrives.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_body_without_length_is_cut_off_once_past_the_limit() {
        let chunks = || Chunks((0..4).map(|_| Bytes::from(vec![0u8; 4])).collect());
        let whole = read_limited(chunks(), limit(16)).await;
        assert_eq!(whole.map(|b| b.len()), Ok(16));
        let cut = read_limited(chunks(), limit(15)).await;
        assert_eq!(
            cut.map_err(|f| f.status),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }

    /// A body that never sends anything.
    struct Held;

    impl Body for Held {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_held_body_is_a_408_once_its_time_is_up() {
        let short = BodyLimit {
            bytes: 10,
            time: Duration::from_millis(20),
        };
        let held = read_limited(Held, short).await;
        assert_eq!(held.map_err(|f| f.status), Err(StatusCode::REQUEST_TIMEOUT));
    }

    #[test]
    fn only_a_json_object_is_a_body() {
        for bad in [&b"[5]"[..], b"5", b"\"x\"", b"null", b"  ", b""] {
            let err = decode_object::<crate::wire::BuyBody>(bad, "the buy body").err();
            assert_eq!(
                err.map(|f| f.status),
                Some(StatusCode::BAD_REQUEST),
                "{bad:?}"
            );
        }
        let ok = decode_object::<crate::wire::BuyBody>(b" {\"qty\": 5}", "the buy body");
        assert_eq!(ok.map(|b| b.qty), Ok(Some(5)));
    }

    #[test]
    fn broken_json_is_a_400_that_names_the_body() {
        let err = decode::<crate::wire::PriceBody>(b"{\"cost\":", "the price body");
        let failure = err.err();
        assert_eq!(
            failure.as_ref().map(|f| f.status),
            Some(StatusCode::BAD_REQUEST)
        );
        assert!(failure.is_some_and(|f| f.message.starts_with("the price body is not valid JSON")));
    }
}
