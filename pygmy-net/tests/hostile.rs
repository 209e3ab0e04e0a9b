//! Hostile and careless clients against the real store: the front end and
//! both replica groups in one process (`Embedded`), served by the real
//! server loop on a real socket, spoken to with raw TCP.
//!
//! Each test names what the client does and asserts the answer it must get:
//! a 4xx with a JSON message naming the problem (never a 5xx, a hang or a
//! crash), the connection closed once a limit is passed, and nothing
//! changed by a refused request. Times are asserted only as generous upper
//! bounds on "it happens at all" (`WAIT`), never as latencies.

use pygmy_core::unstable::store::{Embedded, EmbeddedOptions};
use pygmy_core::unstable::transport::Handler;
use pygmy_net::{serve, App, Limits, PublicApi};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "internal-secret";
const ADMIN: &str = "admin-secret";
/// The longest any single step may take before the test calls it a hang.
const WAIT: Duration = Duration::from_secs(30);

/// Short limits, so that closing a slow client takes a second, not ten.
fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(500),
        max_connections: 64,
        max_header_bytes: 16 << 10,
    }
}

/// The store on a real port; dropping it stops nothing (the runtime ends
/// with the test).
struct Store {
    addr: SocketAddr,
    _cluster: Embedded,
}

async fn store(limits: Limits) -> Store {
    let cluster = Embedded::start(EmbeddedOptions::default()).expect("cluster starts");
    cluster
        .wait_ready(WAIT)
        .await
        .expect("both groups get a view");
    let fe = cluster.frontend.clone();
    let app = App::new(fe.clone() as Arc<dyn Handler>, TOKEN)
        .with_public(fe as Arc<dyn PublicApi>, ADMIN)
        .with_limits(limits);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, Arc::new(app), std::future::pending()));
    Store {
        addr,
        _cluster: cluster,
    }
}

/// An answer as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The error message of a refusal, in either dialect.
    fn message(&self) -> String {
        let json = self.json();
        json.get("error")
            .or_else(|| json.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or_else(|| panic!("no message in {json}"))
            .to_string()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let split = text
        .find("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {text:?}"));
    let head = text[..split].to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Answer {
        status,
        head,
        body: bytes[split + 4..].to_vec(),
    }
}

/// Sends `request` as is and reads until the server closes.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before an oversize request is all
    // sent; the answer is what counts.
    let _ = stream.write_all(request).await;
    read_to_close(&mut stream).await
}

async fn read_to_close(stream: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    // A server that closes with part of the request unread (an oversize
    // one) makes the kernel reset the connection; the answer read before
    // the reset is still in `bytes`, which is all that matters here.
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut bytes))
        .await
        .expect("the server answers and closes");
    parse(&bytes)
}

/// A one-shot request with `Connection: close`.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    exchange(addr, text.as_bytes()).await
}

/// Waits until the server closes `stream` (reading whatever it sends).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut sink = Vec::new();
    matches!(
        tokio::time::timeout(WAIT, stream.read_to_end(&mut sink)).await,
        Ok(Ok(_)) | Ok(Err(_))
    )
}

/// A refusal: the status, a JSON message containing `names`.
fn assert_refused(answer: &Answer, status: u16, names: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    let message = answer.message();
    assert!(
        message.contains(names),
        "{status}: message {message:?} should name {names:?}"
    );
}

async fn count_of(addr: SocketAddr, id: u64) -> u64 {
    let answer = request(addr, "GET", &format!("/books/{id}"), &[], "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()["count"].as_u64().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_are_closed_and_a_normal_client_is_served_meanwhile() {
    let store = store(limits()).await;
    // More slow clients than the server takes connections: the rest wait
    // in the listen backlog.
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut stream = TcpStream::connect(store.addr).await.expect("connect");
        stream
            .write_all(b"GET /books/1 HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            .await
            .expect("send");
        slow.push(stream);
    }
    // They trickle one byte now and then, never ending their headers.
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            for stream in slow.iter_mut() {
                let _ = stream.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut closed = 0;
        for stream in slow.iter_mut() {
            if closed_by_server(stream).await {
                closed += 1;
            }
        }
        closed
    });
    // Meanwhile a normal client gets its answers.
    for _ in 0..5 {
        let answer = tokio::time::timeout(WAIT, request(store.addr, "GET", "/books/1", &[], ""))
            .await
            .expect("a normal client is answered while slow ones trickle");
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    assert_eq!(
        trickle.await.expect("trickler"),
        100,
        "every slow client is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_idle_connections_and_held_bodies_are_closed() {
    let store = store(limits()).await;
    // Half a request line, then nothing.
    let mut partial = TcpStream::connect(store.addr).await.expect("connect");
    partial.write_all(b"GET /boo").await.expect("send");
    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(store.addr).await.expect("connect");
    // A keep-alive connection, idle after one answer.
    let mut idle = TcpStream::connect(store.addr).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 200");
    for stream in [&mut partial, &mut silent, &mut idle] {
        assert!(closed_by_server(stream).await);
    }
    // A body announced and held back: 408 naming the body, nothing bought.
    let before = count_of(store.addr, 2).await;
    let mut held = TcpStream::connect(store.addr).await.expect("connect");
    held.write_all(b"POST /books/2/buy HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{\"qty\"")
        .await
        .expect("send");
    let answer = read_to_close(&mut held).await;
    assert_refused(&answer, 408, "body");
    // A chunked body that never ends: the same.
    let mut chunked = TcpStream::connect(store.addr).await.expect("connect");
    chunked
        .write_all(
            b"POST /books/2/buy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"q\r\n",
        )
        .await
        .expect("send");
    assert_refused(&read_to_close(&mut chunked).await, 408, "body");
    assert_eq!(count_of(store.addr, 2).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_client_gets_its_answer() {
    let store = store(limits()).await;
    let before = count_of(store.addr, 3).await;
    let mut stream = TcpStream::connect(store.addr).await.expect("connect");
    stream
        .write_all(b"POST /books/3/buy HTTP/1.1\r\nHost: x\r\nIdempotency-Key: half\r\nContent-Length: 0\r\n\r\n")
        .await
        .expect("send");
    stream.shutdown().await.expect("half-close");
    let answer = read_to_close(&mut stream).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(count_of(store.addr, 3).await, before - 1);
    // A GET too.
    let mut stream = TcpStream::connect(store.addr).await.expect("connect");
    stream
        .write_all(b"GET /lookup?id=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    stream.shutdown().await.expect("half-close");
    assert_eq!(read_to_close(&mut stream).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_input_is_refused_with_4xx() {
    let store = store(limits()).await;
    let addr = store.addr;
    // A header past the limit: hyper's 431 (its answer has no body).
    let huge = "a".repeat(20 << 10);
    let answer = request(addr, "GET", "/books/1", &[("X-Huge", &huge)], "").await;
    assert_eq!(answer.status, 431, "{answer:?}");
    // A path past the limit: the same.
    let path = format!("/books/{}", "1".repeat(20 << 10));
    assert_eq!(request(addr, "GET", &path, &[], "").await.status, 431);
    // A body past the public limit (64 KiB), announced or chunked.
    let body = format!("{{\"qty\": 1, \"x\": \"{}\"}}", "a".repeat(70 << 10));
    assert_refused(
        &request(addr, "POST", "/books/1/buy", &[], &body).await,
        413,
        "limit",
    );
    let mut chunked = format!(
        "POST /books/1/buy HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    );
    chunked.push_str(&body);
    chunked.push_str("\r\n0\r\n\r\n");
    assert_refused(&exchange(addr, chunked.as_bytes()).await, 413, "limit");
    // A huge number, a huge id, a huge key.
    assert_refused(
        &request(addr, "POST", "/books/1/buy", &[], r#"{"qty": 1e400}"#).await,
        400,
        "buy body",
    );
    assert_refused(
        &request(addr, "GET", "/books/99999999999999999999999", &[], "").await,
        400,
        "too large",
    );
    let key = "k".repeat(201);
    assert_refused(
        &request(
            addr,
            "POST",
            "/books/1/buy",
            &[("Idempotency-Key", &key)],
            "",
        )
        .await,
        400,
        "Idempotency-Key",
    );
    // A title past the catalog's limit.
    let book = format!(
        r#"{{"id": 50, "title": "{}", "cost": 1, "count": 1, "topic": "t"}}"#,
        "t".repeat(2000)
    );
    assert_refused(
        &request(
            addr,
            "POST",
            "/books",
            &[("Authorization", &format!("Bearer {ADMIN}"))],
            &book,
        )
        .await,
        400,
        "at most",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_paths_and_bodies_get_a_4xx_naming_the_problem() {
    let store = store(limits()).await;
    let addr = store.addr;
    // Ids: digits only, in the path (percent-decoded) and the query alike.
    assert_eq!(
        request(addr, "GET", "/books/%31", &[], "").await.json()["id"],
        1
    );
    for path in [
        "/books/+1",
        "/books/-1",
        "/books/%2B1",
        "/books/1.0",
        "/books/%20",
    ] {
        assert_refused(&request(addr, "GET", path, &[], "").await, 400, "id");
    }
    for path in ["/lookup?id=%2B1", "/lookup?id=+1", "/lookup?id=1e2"] {
        assert_refused(&request(addr, "GET", path, &[], "").await, 400, "id");
    }
    assert_eq!(
        request(addr, "GET", "/lookup?id=%31", &[], "").await.status,
        200
    );
    // Bodies: a JSON object, with a positive integer quantity.
    for (body, names) in [
        ("[5]", "JSON object"),
        ("5", "JSON object"),
        ("{\"qty\": -1}", "buy body"),
        ("{\"qty\": \"2\"}", "buy body"),
        ("{\"qty\": 1.5}", "buy body"),
        ("{\"qty\": 0}", "at least 1"),
        ("{\"qty\": 1, \"extra\": 1}", "extra"),
        ("{\"qty\":", "buy body"),
        ("\u{feff}{}", "JSON object"),
    ] {
        let answer = request(addr, "POST", "/books/1/buy", &[], body).await;
        assert_refused(&answer, 400, names);
    }
    let admin = format!("Bearer {ADMIN}");
    assert_refused(
        &request(
            addr,
            "PUT",
            "/books/1/price",
            &[("Authorization", &admin)],
            "[7]",
        )
        .await,
        400,
        "JSON object",
    );
    // Methods: HEAD answers like GET without a body; HEAD never buys.
    let head = request(addr, "HEAD", "/books/1", &[], "").await;
    assert_eq!(head.status, 200, "{head:?}");
    assert!(head.body.is_empty());
    assert!(head.header("content-length").is_some_and(|n| n != "0"));
    assert_eq!(
        request(addr, "HEAD", "/lookup?id=1", &[], "").await.status,
        200
    );
    let before = count_of(addr, 4).await;
    let head_buy = request(addr, "HEAD", "/buy?id=4", &[], "").await;
    assert_eq!(head_buy.status, 405);
    assert_eq!(head_buy.header("allow").as_deref(), Some("GET"));
    assert_eq!(count_of(addr, 4).await, before);
    assert_refused(
        &request(addr, "DELETE", "/books/1", &[], "").await,
        405,
        "DELETE",
    );
    assert_refused(
        &request(addr, "GET", "/nowhere", &[], "").await,
        404,
        "no route",
    );
    // Tokens.
    assert_refused(
        &request(addr, "POST", "/books/1/restock", &[], r#"{"qty": 1}"#).await,
        401,
        "token",
    );
    // Malformed HTTP gets hyper's 400 and a closed connection.
    assert_eq!(exchange(addr, b"BLAH\r\n\r\n").await.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buy_of_too_many_copies_changes_nothing_and_only_sold_out_restocks() {
    let store = store(limits()).await;
    let addr = store.addr;
    let before = count_of(addr, 6).await;
    for _ in 0..5 {
        let answer = request(addr, "POST", "/books/6/buy", &[], r#"{"qty": 1000}"#).await;
        assert_refused(&answer, 404, "out of stock");
    }
    assert_eq!(count_of(addr, 6).await, before);
    // Buy every copy; the next buy finds it sold out and restocks by 10.
    let all = format!("{{\"qty\": {before}}}");
    assert_eq!(
        request(addr, "POST", "/books/6/buy", &[], &all)
            .await
            .status,
        201
    );
    assert_eq!(count_of(addr, 6).await, 0);
    assert_refused(
        &request(addr, "GET", "/buy?id=6", &[], "").await,
        404,
        "out of stock",
    );
    assert_eq!(count_of(addr, 6).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_fits_one_request_and_is_never_shown() {
    let store = store(limits()).await;
    let addr = store.addr;
    let key = [("Idempotency-Key", "order-77")];
    let first = request(addr, "POST", "/books/5/buy", &key, r#"{"qty": 2}"#).await;
    assert_eq!(first.status, 201, "{first:?}");
    let order = first.json()["order"].clone();
    assert!(
        order.get("request").is_none(),
        "the key is not shown: {order}"
    );
    let count = count_of(addr, 5).await;
    // The same request again: the same order, nothing more bought.
    let again = request(addr, "POST", "/books/5/buy", &key, r#"{"qty": 2}"#).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["order"]["id"], order["id"]);
    // The key with another book or quantity: 422, nothing bought.
    for (path, body) in [
        ("/books/4/buy", r#"{"qty": 2}"#),
        ("/books/5/buy", r#"{"qty": 3}"#),
        ("/books/5/buy", ""),
    ] {
        let answer = request(addr, "POST", path, &key, body).await;
        assert_refused(&answer, 422, "Idempotency-Key");
    }
    assert_eq!(count_of(addr, 5).await, count);
    // Nobody reading the order learns the key.
    let id = order["id"].as_u64().expect("an id");
    let read = request(addr, "GET", &format!("/orders/{id}"), &[], "").await;
    assert_eq!(read.status, 200);
    assert!(read.json().get("request").is_none(), "{:?}", read.json());
    assert!(!String::from_utf8_lossy(&read.body).contains("order-77"));
    // A refused buy keeps its key too: retried, the same refusal; with
    // another quantity, 422.
    let refused = [("Idempotency-Key", "too-many")];
    let big = r#"{"qty": 100000}"#;
    assert_refused(
        &request(addr, "POST", "/books/4/buy", &refused, big).await,
        404,
        "out of stock",
    );
    assert_refused(
        &request(addr, "POST", "/books/4/buy", &refused, big).await,
        404,
        "out of stock",
    );
    assert_refused(
        &request(addr, "POST", "/books/4/buy", &refused, r#"{"qty": 1}"#).await,
        422,
        "Idempotency-Key",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_admin_change_applies_once() {
    let store = store(limits()).await;
    let addr = store.addr;
    let admin = format!("Bearer {ADMIN}");
    let headers = [
        ("Authorization", admin.as_str()),
        ("Idempotency-Key", "restock-1"),
    ];
    let before = count_of(addr, 7).await;
    for _ in 0..3 {
        let answer = request(addr, "POST", "/books/7/restock", &headers, r#"{"qty": 5}"#).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["count"], before + 5);
    }
    assert_eq!(count_of(addr, 7).await, before + 5);
    let other = request(addr, "POST", "/books/7/restock", &headers, r#"{"qty": 6}"#).await;
    assert_refused(&other, 422, "Idempotency-Key");
    let price = request(addr, "PUT", "/books/7/price", &headers, r#"{"cost": 1}"#).await;
    assert_refused(&price, 422, "Idempotency-Key");
    assert_eq!(count_of(addr, 7).await, before + 5);
    // A new book, retried.
    let book = r#"{"id": 40, "title": "T", "cost": 3, "count": 2, "topic": "t"}"#;
    let add = [
        ("Authorization", admin.as_str()),
        ("Idempotency-Key", "add-40"),
    ];
    for _ in 0..2 {
        assert_eq!(
            request(addr, "POST", "/books", &add, book).await.status,
            201
        );
    }
    // Without a key, the second add is the conflict it always was.
    let no_key = [("Authorization", admin.as_str())];
    assert_refused(
        &request(addr, "POST", "/books", &no_key, book).await,
        409,
        "exists",
    );
}
