//! # Pygmy's fuzz checks
//!
//! One function per fuzz target, each taking the fuzzer's bytes and
//! panicking only when Pygmy misbehaves: the targets in `fuzz_targets/` call
//! these under libFuzzer (`cargo fuzz run NAME`, or `run.sh` for all of them
//! for a bounded time), and `tests/regressions.rs` replays every input saved
//! in `regressions/NAME/` through the same function on the stable toolchain,
//! so a crash once found stays fixed.
//!
//! What each target covers:
//!
//! - [`http_request`]: every byte Pygmy's HTTP layer parses itself — paths,
//!   ids, query strings, JSON bodies, the headers it reads (tokens,
//!   `Idempotency-Key`, `Content-Length`), and the internal RPC's JSON —
//!   through a real front end over an in-memory replicated store. A request
//!   must get an answer with a JSON body (none for `HEAD`), and never a 5xx
//!   other than 503 (no replica could serve).
//! - [`rpc_json`]: the internal messages' JSON decoders alone (faster than
//!   going through HTTP, so the fuzzer reaches deeper into the types).
//! - [`query`]: query-string and id parsing alone.
//!
//! Disk formats are fuzzed by the disk targets listed in `run.sh`.

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use pygmy_core::embedded::{Embedded, EmbeddedOptions};
use pygmy_core::message::{Request, Response};
use pygmy_core::transport::Handler;
use pygmy_net::App;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The admin token of the fuzzed front end (the fuzzer may find it: admin
/// routes are part of the surface).
pub const ADMIN_TOKEN: &str = "fuzz-admin";
/// The internal RPC token of the fuzzed front end.
pub const INTERNAL_TOKEN: &str = "fuzz-internal";

/// The routes a fuzzed request starts from; `{}` takes the fuzzed fill, and
/// routes without it get the fill appended, so paths and queries nobody
/// listed are reached too.
const ROUTES: &[&str] = &[
    "/search?topic={}",
    "/lookup?id={}",
    "/buy?id={}",
    "/books",
    "/books?topic={}",
    "/books/{}",
    "/books/{}/buy",
    "/books/{}/price",
    "/books/{}/restock",
    "/orders/{}",
    "/health",
    "/internal/rpc",
    "/{}",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"];

/// Headers the store reads; others are passed too, under fuzzed names.
const HEADERS: &[&str] = &[
    "authorization",
    "x-pygmy-token",
    "idempotency-key",
    "content-type",
    "content-length",
    "x-request-id",
];

#[derive(Arbitrary, Debug)]
enum Token {
    None,
    Admin,
    Internal,
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
struct HttpInput {
    method: u8,
    route: u8,
    fill: String,
    token: Token,
    headers: Vec<(u8, String, Vec<u8>)>,
    body: Vec<u8>,
}

struct Store {
    runtime: tokio::runtime::Runtime,
    app: App,
    /// Keeps the replicas running.
    _cluster: Embedded,
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let cluster = runtime.block_on(async {
            let cluster = Embedded::start(EmbeddedOptions::default()).expect("embedded cluster");
            cluster
                .wait_ready(Duration::from_secs(10))
                .await
                .expect("embedded cluster ready");
            cluster
        });
        let frontend = cluster.frontend.clone();
        let app = App::new(frontend.clone() as Arc<dyn Handler>, INTERNAL_TOKEN)
            .with_public(frontend, ADMIN_TOKEN);
        Store {
            runtime,
            app,
            _cluster: cluster,
        }
    })
}

/// One request through the front end's HTTP application.
pub fn http_request(data: &[u8]) {
    let Ok(input) = HttpInput::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let method = METHODS[input.method as usize % METHODS.len()];
    let route = ROUTES[input.route as usize % ROUTES.len()];
    let target = if route.contains("{}") {
        route.replace("{}", &input.fill)
    } else {
        format!("{route}{}", input.fill)
    };
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(target.as_str());
    match &input.token {
        Token::None => {}
        Token::Admin => builder = builder.header("authorization", format!("Bearer {ADMIN_TOKEN}")),
        Token::Internal => builder = builder.header("x-pygmy-token", INTERNAL_TOKEN),
        Token::Fuzzed(value) => builder = builder.header("authorization", value.as_str()),
    }
    for (which, name, value) in input.headers.iter().take(16) {
        let name = match HEADERS.get(*which as usize) {
            Some(known) => known,
            None => name.as_str(),
        };
        builder = builder.header(name, value.as_slice());
    }
    // A request hyper itself would refuse (bad URI, header name or value)
    // never reaches Pygmy's code.
    let Ok(request) = builder.body(Full::new(Bytes::from(input.body))) else {
        return;
    };
    let store = store();
    let response = store.runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), store.app.respond(request))
            .await
            .expect("every request is answered")
    });
    let status = response.status();
    assert!(
        !status.is_server_error() || status == hyper::StatusCode::SERVICE_UNAVAILABLE,
        "{method} {target}: answered {status}"
    );
    let body = store
        .runtime
        .block_on(response.into_body().collect())
        .expect("a response body")
        .to_bytes();
    if method == "HEAD" {
        return;
    }
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
        "{method} {target}: {status} with a body that is not JSON: {body:?}"
    );
}

/// The internal messages' JSON: decoding fails cleanly or gives a value that
/// encodes again.
pub fn rpc_json(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<Request>(data) {
        serde_json::to_vec(&request).expect("a decoded request encodes");
    }
    if let Ok(response) = serde_json::from_slice::<Response>(data) {
        serde_json::to_vec(&response).expect("a decoded response encodes");
    }
}

/// Query strings and ids: parsing never fails or panics, and a parsed id
/// prints back as the digits it came from.
pub fn query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let params = pygmy_net::query::Params::parse(Some(&text));
    for name in ["id", "topic", ""] {
        if let Some(value) = params.get(name) {
            if let Ok(id) = pygmy_net::api::parse_id(value) {
                // Only plain decimal digits are an id: no sign, no spaces.
                let digits = value.trim_start_matches('0');
                let expected = if digits.is_empty() { "0" } else { digits };
                assert_eq!(id.to_string(), expected, "id {value:?} parsed as {id}");
            }
        }
    }
    let _ = pygmy_net::query::decode(&text);
}
