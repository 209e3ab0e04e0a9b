//! The yardstick for the front end's throughput: the least an HTTP server
//! on this stack can do per request, with none of Pygmy in it.
//!
//! A bare hyper 1 HTTP/1.1 server on tokio TCP. Every answer is a fixed
//! body, built at start and looked up in a map:
//!
//! - `GET /lookup?id=N` (ids 1 to 7, as the built-in books): a 155-byte
//!   JSON body in the original's lookup envelope;
//! - `GET /search?topic=T`: the same envelope with every book of topic `T`
//!   (`distributed systems`: 1, 2, 5; `graduate school`: 3, 4, 6, 7, as the
//!   built-in books), so about the size of the front end's answer;
//! - `GET /books`: `{"books": [...]}`, the shape of the front end's
//!   `GET /books`, which `pygmy load` asks first to learn ids and topics.
//!
//! With `--hop` (or `--hop-to ADDR`) it first makes one hop, over a pooled
//! keep-alive connection (hyper-util's legacy client), to a second such
//! server with the same path and query, and answers with what that one
//! answered: the shape of a front end serving an uncached read from a
//! replica.
//!
//! ```text
//! cargo run --release --example baseline -- --port 8091                 # leaf
//! cargo run --release --example baseline -- --port 8090 --hop-to 127.0.0.1:8091
//! cargo run --release -- load --url http://127.0.0.1:8090 --mix lookup=1 --clients 64 --duration 10s
//! ```
//!
//! Pygmy's front end answering from its cache can at best match the leaf;
//! answering after a hop to a replica, at best the hop variant.

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The size of every answer body, in bytes.
const BODY_LEN: usize = 155;

#[derive(Parser, Debug)]
#[command(about = "Bare hyper server: the throughput yardstick for Pygmy's front end")]
struct Args {
    /// Port to listen on (all interfaces).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Hop to a second baseline server before answering (at --hop-to, by
    /// default 127.0.0.1:8091).
    #[arg(long)]
    hop: bool,
    /// The second server to hop to; implies --hop.
    #[arg(long, value_name = "ADDR")]
    hop_to: Option<SocketAddr>,
}

/// The built-in books' topics by id, as the front end's catalog has them.
fn topic_of(id: u64) -> &'static str {
    match id {
        1 | 2 | 5 => "distributed systems",
        _ => "graduate school",
    }
}

struct Server {
    /// `/lookup` answers by id.
    bodies: HashMap<u64, Bytes>,
    /// `/search` answers by (decoded) topic.
    searches: HashMap<String, Bytes>,
    /// The `/books` answer.
    books: Bytes,
    /// `Some` in the hop variant: the pooled client and where it goes.
    hop: Option<(Client<HttpConnector, Full<Bytes>>, SocketAddr)>,
}

/// Book `id` as JSON, its title padded so that its lookup envelope is
/// exactly `BODY_LEN` bytes.
fn book(id: u64) -> String {
    let topic = topic_of(id);
    let head = format!(r#"{{"id":{id},"title":"Book {id}"#);
    let tail = format!(r#"","cost":25,"count":100,"topic":"{topic}"}}"#);
    let pad = BODY_LEN - ENVELOPE_LEN - head.len() - tail.len();
    format!("{head}{}{tail}", ".".repeat(pad))
}

/// The bytes `envelope` adds around its books.
const ENVELOPE_LEN: usize =
    r#"{"item":[],"message":"","status":"Success","validation_code":200}"#.len();

/// The original's envelope around `books` (JSON objects).
fn envelope(books: &[String]) -> Bytes {
    Bytes::from(format!(
        r#"{{"item":[{}],"message":"","status":"Success","validation_code":200}}"#,
        books.join(",")
    ))
}

/// The original's lookup envelope for a book: exactly `BODY_LEN` bytes.
fn body(id: u64) -> Bytes {
    let body = envelope(&[book(id)]);
    assert_eq!(body.len(), BODY_LEN);
    body
}

/// The search answers of the books `ids`, by topic.
fn searches(ids: &[u64]) -> HashMap<String, Bytes> {
    let mut topics: HashMap<String, Vec<String>> = HashMap::new();
    for &id in ids {
        topics
            .entry(topic_of(id).into())
            .or_default()
            .push(book(id));
    }
    topics
        .into_iter()
        .map(|(topic, books)| (topic, envelope(&books)))
        .collect()
}

/// `{"books": [...]}`, as the front end's `GET /books`.
fn books(ids: &[u64]) -> Bytes {
    let books: Vec<String> = ids.iter().map(|&id| book(id)).collect();
    Bytes::from(format!(r#"{{"books":[{}]}}"#, books.join(",")))
}

fn answer(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The value of `key` in the query of `uri`, percent-decoded.
fn query_value(uri: &Uri, key: &str) -> Option<String> {
    let raw = uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })?;
    percent_decode(raw)
}

fn id_of(uri: &Uri) -> Option<u64> {
    query_value(uri, "id")?.parse().ok()
}

/// Decodes `%XX` escapes and `+` (a space); None if an escape is malformed
/// or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl Server {
    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let not_found = || answer(StatusCode::NOT_FOUND, Bytes::from_static(b"{}"));
        let bad_request = || answer(StatusCode::BAD_REQUEST, Bytes::from_static(b"{}"));
        if req.method() != Method::GET {
            return Ok(not_found());
        }
        if let Some((client, to)) = &self.hop {
            return Ok(match req.uri().path() {
                "/lookup" | "/search" | "/books" => self.hop(client, *to, req.uri()).await,
                _ => not_found(),
            });
        }
        let uri = req.uri();
        Ok(match uri.path() {
            "/lookup" => match id_of(uri) {
                None => bad_request(),
                Some(id) => match self.bodies.get(&id) {
                    Some(body) => answer(StatusCode::OK, body.clone()),
                    None => not_found(),
                },
            },
            "/search" => match query_value(uri, "topic") {
                None => bad_request(),
                Some(topic) => match self.searches.get(&topic) {
                    Some(body) => answer(StatusCode::OK, body.clone()),
                    None => not_found(),
                },
            },
            "/books" => answer(StatusCode::OK, self.books.clone()),
            _ => not_found(),
        })
    }

    /// One hop to the leaf, same path and query, over a pooled keep-alive
    /// connection.
    async fn hop(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        to: SocketAddr,
        uri: &Uri,
    ) -> Response<Full<Bytes>> {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = match format!("http://{to}{path}").parse() {
            Ok(uri) => uri,
            Err(_) => return answer(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()),
        };
        let reply = async {
            let response = client.get(uri).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(answer(status, body))
        };
        match reply.await {
            Ok(response) => response,
            Err(e) => answer(StatusCode::BAD_GATEWAY, Bytes::from(e.to_string())),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let hop_to = match (args.hop, args.hop_to) {
        (_, Some(to)) => Some(to),
        (true, None) => Some(SocketAddr::from(([127, 0, 0, 1], 8091))),
        (false, None) => None,
    };
    let hop = hop_to.map(|to| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        (client, to)
    });
    let ids: Vec<u64> = (1..=7).collect();
    let server = Arc::new(Server {
        bodies: ids.iter().map(|&id| (id, body(id))).collect(),
        searches: searches(&ids),
        books: books(&ids),
        hop,
    });
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], args.port))).await?;
    match &server.hop {
        Some((_, to)) => println!("baseline on {} (hop to {to})", listener.local_addr()?),
        None => println!("baseline on {}", listener.local_addr()?),
    }
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        stream.set_nodelay(true)?;
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let server = server.clone();
                async move { server.handle(req).await }
            });
            // Keep-alive is on by default; errors are the client going away.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_is_155_bytes_of_json() {
        for id in 1..=7 {
            let b = body(id);
            assert_eq!(b.len(), BODY_LEN);
            assert!(b.starts_with(b"{\"item\":[{\"id\":") && b.ends_with(b"200}"));
        }
    }

    #[test]
    fn search_and_books_list_the_builtin_topics() {
        let ids: Vec<u64> = (1..=7).collect();
        let searches = searches(&ids);
        let ds = std::str::from_utf8(&searches["distributed systems"]).unwrap();
        assert_eq!(ds.matches("\"id\":").count(), 3);
        let gs = std::str::from_utf8(&searches["graduate school"]).unwrap();
        assert_eq!(gs.matches("\"id\":").count(), 4);
        let all = books(&ids);
        assert!(all.starts_with(b"{\"books\":[{\"id\":1,"));
        assert_eq!(
            std::str::from_utf8(&all)
                .unwrap()
                .matches("\"topic\":")
                .count(),
            7
        );
    }

    #[test]
    fn topics_are_percent_decoded() {
        let uri = "/search?topic=distributed%20systems".parse().unwrap();
        assert_eq!(
            query_value(&uri, "topic").as_deref(),
            Some("distributed systems")
        );
        let uri = "/search?topic=graduate+school".parse().unwrap();
        assert_eq!(
            query_value(&uri, "topic").as_deref(),
            Some("graduate school")
        );
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn the_id_comes_from_the_query() {
        assert_eq!(id_of(&"/lookup?id=3".parse().unwrap()), Some(3));
        assert_eq!(id_of(&"/lookup?x=1&id=7".parse().unwrap()), Some(7));
        assert_eq!(id_of(&"/lookup".parse().unwrap()), None);
        assert_eq!(id_of(&"/lookup?id=x".parse().unwrap()), None);
    }
}
