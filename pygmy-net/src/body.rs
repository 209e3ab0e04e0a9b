//! Reading request bodies with a size limit, and decoding them as JSON.
//!
//! A body larger than the limit is refused with 413 — up front when its
//! `Content-Length` already says so, otherwise as soon as the bytes read
//! pass the limit — so a client cannot make a node buffer unbounded input.
//! Bodies that are not the expected JSON get a 400 naming the problem.

use crate::wire::Failure;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::StatusCode;
use serde::de::DeserializeOwned;

/// Errors a request body can carry, as hyper's and http-body's do.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, Failure>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(Failure::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Decodes a JSON body; `what` names it in the error ("the buy body").
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::bad_request(format!("{what} is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[tokio::test]
    async fn bodies_up_to_the_limit_pass_and_larger_ones_are_413() {
        let ok = read_limited(Full::new(Bytes::from(vec![1u8; 10])), 10).await;
        assert_eq!(ok.map(|b| b.len()), Ok(10));
        let big = read_limited(Full::new(Bytes::from(vec![1u8; 11])), 10).await;
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
        let whole = read_limited(chunks(), 16).await;
        assert_eq!(whole.map(|b| b.len()), Ok(16));
        let cut = read_limited(chunks(), 15).await;
        assert_eq!(
            cut.map_err(|f| f.status),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
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
