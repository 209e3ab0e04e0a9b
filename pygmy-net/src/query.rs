//! Query-string parsing (`?topic=distributed%20systems&id=3`).
//!
//! Browsers and HTTP libraries encode a space as `%20` or `+`, so both decode
//! to a space. Decoding is lenient, as form decoders are: a `%` not followed
//! by two hex digits stays as it is, and bytes that are not UTF-8 become
//! U+FFFD, so no query string makes parsing fail; the endpoint then judges
//! the decoded value.

use std::borrow::Cow;

/// The decoded `name=value` pairs of a query string, in order. They borrow
/// from the query string unless decoding changed them (every uncached read
/// parses one: the common case allocates nothing but the list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params<'q> {
    pairs: Vec<(Cow<'q, str>, Cow<'q, str>)>,
}

impl<'q> Params<'q> {
    /// Parses the part of a URI after `?` (`None`: no query string at all).
    pub fn parse(query: Option<&'q str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (decode(name), decode(value)),
                None => (decode(pair), Cow::Borrowed("")),
            })
            .collect();
        Params { pairs }
    }

    /// The value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// Percent-decodes one name or value, with `+` meaning a space.
pub fn decode(raw: &str) -> Cow<'_, str> {
    decode_with(raw, true)
}

/// Percent-decodes one path segment: as [`decode`], but `+` stays a `+`
/// (it means a space only in query strings).
pub fn decode_path(raw: &str) -> Cow<'_, str> {
    decode_with(raw, false)
}

fn decode_with(raw: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !raw
        .bytes()
        .any(|b| (plus_is_space && b == b'+') || b == b'%')
    {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&hi), Some(&lo)) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                    out.push(hex(hi) << 4 | hex(lo));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Encodes every byte except unreserved ones, spaces as `+` or `%20`.
    fn encode(s: &str, plus_for_space: bool) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b' ' if plus_for_space => out.push('+'),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    #[test]
    fn space_arrives_as_plus_or_percent_20() {
        for raw in ["distributed%20systems", "distributed+systems"] {
            let query = format!("topic={raw}");
            let params = Params::parse(Some(&query));
            assert_eq!(params.get("topic"), Some("distributed systems"));
        }
    }

    #[test]
    fn first_of_repeated_parameters_wins_and_bare_names_are_empty() {
        let params = Params::parse(Some("id=1&id=2&flag&&x=%zz"));
        assert_eq!(params.get("id"), Some("1"));
        assert_eq!(params.get("flag"), Some(""));
        assert_eq!(params.get("x"), Some("%zz"));
        assert_eq!(params.get("missing"), None);
    }

    #[test]
    fn plain_text_is_borrowed_and_invalid_utf8_is_replaced() {
        assert!(matches!(
            decode("distributed"),
            Cow::Borrowed("distributed")
        ));
        assert_eq!(decode("a%ffb"), "a\u{fffd}b");
    }

    #[test]
    fn a_path_segment_keeps_its_plus() {
        assert_eq!(decode_path("%31"), "1");
        assert_eq!(decode_path("+1"), "+1");
        assert!(matches!(decode_path("12"), Cow::Borrowed("12")));
    }

    #[test]
    fn lowercase_hex_and_multibyte_utf8_decode() {
        assert_eq!(decode("caf%c3%a9"), "café");
        assert_eq!(decode("100%"), "100%");
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(s in "\\PC{0,40}", plus in any::<bool>()) {
            let encoded = encode(&s, plus);
            prop_assert_eq!(decode(&encoded), s.as_str());
            let query = format!("topic={encoded}&x=1");
            let params = Params::parse(Some(&query));
            prop_assert_eq!(params.get("topic"), Some(s.as_str()));
        }

        #[test]
        fn parsing_any_string_never_panics(s in "\\PC{0,60}") {
            let _ = Params::parse(Some(&s));
        }
    }
}
