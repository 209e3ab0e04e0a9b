//! Shared-secret checks: the internal token (`x-pygmy-token`) that every
//! node-to-node request carries, and the admin bearer token.
//!
//! Tokens are compared in time independent of where they differ, so a
//! caller cannot find the token byte by byte from response times. An empty
//! configured token matches nothing: a node started without one refuses the
//! calls it guards instead of accepting everyone.

use hyper::header::{HeaderMap, AUTHORIZATION};

/// The header that carries the internal token.
pub const TOKEN_HEADER: &str = "x-pygmy-token";

/// True when `given` equals the non-empty `expected` token.
pub fn token_matches(expected: &str, given: &[u8]) -> bool {
    let expected = expected.as_bytes();
    if expected.is_empty() {
        return false;
    }
    // Walk the whole of `given` whatever its length, so neither where the
    // bytes differ nor the token's length shows in the time taken.
    let mut diff = u8::from(expected.len() != given.len());
    for (i, b) in given.iter().enumerate() {
        diff |= b ^ expected[i % expected.len()];
    }
    diff == 0
}

/// The internal token carried by a request, if any.
pub fn internal_token(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(TOKEN_HEADER).map(|v| v.as_bytes())
}

/// The token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value[7..].trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn only_the_exact_non_empty_token_matches() {
        assert!(token_matches("s3cret", b"s3cret"));
        assert!(!token_matches("s3cret", b"s3cre"));
        assert!(!token_matches("s3cret", b"s3creT"));
        assert!(!token_matches("", b""));
        // Longer, and a repetition of the token (the comparison wraps).
        assert!(!token_matches("s3cret", b"s3crets"));
        assert!(!token_matches("s3cret", b"s3crets3cret"));
        assert!(!token_matches("s3cret", b""));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&headers), Some(&b"abc"[..]));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }
}
