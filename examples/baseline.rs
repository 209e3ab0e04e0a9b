//! The yardstick for the front end's throughput: the least an HTTP server
//! on this stack can do per request, with none of Pygmy in it.
//!
//! A bare hyper 1 HTTP/1.1 server on tokio TCP with one route,
//! `GET /lookup?id=N`, that answers a fixed 155-byte JSON body looked up in
//! a map (ids 1 to 7, as the built-in books). With `--hop` (or
//! `--hop-to ADDR`) it first makes one hop, over a pooled keep-alive
//! connection (hyper-util's legacy client), to a second such server and
//! answers with what that one answered: the shape of a front end serving an
//! uncached read from a replica.
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

struct Server {
    bodies: HashMap<u64, Bytes>,
    /// `Some` in the hop variant: the pooled client and where it goes.
    hop: Option<(Client<HttpConnector, Full<Bytes>>, SocketAddr)>,
}

/// The original's lookup envelope for a book, padded to exactly `BODY_LEN`.
fn body(id: u64) -> Bytes {
    let head = format!(r#"{{"item":[{{"id":{id},"title":"Book {id}"#);
    let tail = r#"","cost":25,"count":100,"topic":"distributed systems"}],"message":"","status":"Success","validation_code":200}"#;
    let pad = BODY_LEN - head.len() - tail.len();
    let body = format!("{head}{}{tail}", ".".repeat(pad));
    assert_eq!(body.len(), BODY_LEN);
    Bytes::from(body)
}

fn answer(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn id_of(uri: &Uri) -> Option<u64> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("id="))?
        .parse()
        .ok()
}

impl Server {
    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        if req.method() != Method::GET || req.uri().path() != "/lookup" {
            return Ok(answer(StatusCode::NOT_FOUND, Bytes::from_static(b"{}")));
        }
        let Some(id) = id_of(req.uri()) else {
            return Ok(answer(StatusCode::BAD_REQUEST, Bytes::from_static(b"{}")));
        };
        if let Some((client, to)) = &self.hop {
            return Ok(self.hop(client, *to, id).await);
        }
        Ok(match self.bodies.get(&id) {
            Some(body) => answer(StatusCode::OK, body.clone()),
            None => answer(StatusCode::NOT_FOUND, Bytes::from_static(b"{}")),
        })
    }

    /// One hop to the leaf over a pooled keep-alive connection.
    async fn hop(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        to: SocketAddr,
        id: u64,
    ) -> Response<Full<Bytes>> {
        let uri: Uri = match format!("http://{to}/lookup?id={id}").parse() {
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
    let server = Arc::new(Server {
        bodies: (1..=7).map(|id| (id, body(id))).collect(),
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
    fn the_id_comes_from_the_query() {
        assert_eq!(id_of(&"/lookup?id=3".parse().unwrap()), Some(3));
        assert_eq!(id_of(&"/lookup?x=1&id=7".parse().unwrap()), Some(7));
        assert_eq!(id_of(&"/lookup".parse().unwrap()), None);
        assert_eq!(id_of(&"/lookup?id=x".parse().unwrap()), None);
    }
}
