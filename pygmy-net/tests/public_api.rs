//! The public API over HTTP against a fake store: the original's envelope
//! byte for byte, its status codes, and the REST routes.

mod common;

use bytes::Bytes;
use common::*;
use hyper::{Method, StatusCode};

const BOOK_1: &str = r#"{"id":1,"title":"How to get a good grade in 677 in 20 minutes a day","cost":11,"count":100,"topic":"distributed systems"}"#;
const BOOK_2: &str =
    r#"{"id":2,"title":"RPCs for Noobs","cost":12,"count":100,"topic":"distributed systems"}"#;
const BOOK_3: &str = r#"{"id":3,"title":"Xen and the Art of Surviving Undergraduate School","cost":13,"count":100,"topic":"distributed systems"}"#;

fn failed(message: &str, code: u16) -> String {
    format!(r#"{{"message":"{message}","status":"Failed","validation_code":{code}}}"#)
}

#[tokio::test]
async fn search_answers_the_originals_envelope_byte_for_byte() {
    let server = start(front_end_app()).await;
    let reply = get(&server.url("/search?topic=distributed%20systems")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(
        reply.text(),
        format!(
            r#"{{"item":[{BOOK_1},{BOOK_2},{BOOK_3}],"message":"","status":"Success","validation_code":200}}"#
        )
    );
}

#[tokio::test]
async fn search_topics_are_percent_and_plus_decoded() {
    let server = start(front_end_app()).await;
    for query in [
        "topic=distributed+systems",
        "topic=distributed%20systems",
        "topic=%64istributed%20system%73",
        "other=1&topic=distributed+systems",
    ] {
        let reply = get(&server.url(&format!("/search?{query}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text());
        assert_eq!(
            reply.json()["item"].as_array().map(Vec::len),
            Some(3),
            "{query}"
        );
    }
    let reply = get(&server.url("/search?topic=graduate+school")).await;
    assert_eq!(reply.json()["item"][0]["id"], 4);
}

#[tokio::test]
async fn search_of_an_unknown_topic_is_404_failed() {
    let server = start(front_end_app()).await;
    let reply = get(&server.url("/search?topic=cooking%2Bbaking")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.text(),
        failed("no books in topic 'cooking+baking'", 404)
    );
}

#[tokio::test]
async fn search_without_topic_is_400_naming_the_parameter() {
    let server = start(front_end_app()).await;
    for path in ["/search", "/search?topic=", "/search?topik=x"] {
        let reply = get(&server.url(path)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            reply.text(),
            failed("missing parameter 'topic'", 400),
            "{path}"
        );
    }
}

#[tokio::test]
async fn lookup_answers_a_list_of_one_book() {
    let server = start(front_end_app()).await;
    let reply = get(&server.url("/lookup?id=2")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.text(),
        format!(r#"{{"item":[{BOOK_2}],"message":"","status":"Success","validation_code":200}}"#)
    );
}

#[tokio::test]
async fn lookup_and_buy_failures_use_the_failed_envelope_and_status() {
    let server = start(front_end_app()).await;
    let cases: &[(&str, u16, &str)] = &[
        ("/lookup?id=99", 404, "item 99 not found"),
        (
            "/lookup?id=abc",
            400,
            "malformed id 'abc': expected a non-negative integer",
        ),
        (
            "/lookup?id=-1",
            400,
            "malformed id '-1': expected a non-negative integer",
        ),
        ("/lookup", 400, "missing parameter 'id'"),
        ("/lookup?id=503", 503, "unavailable: no catalog replica"),
        ("/lookup?id=504", 503, "not the primary (try None)"),
        ("/lookup?id=409", 409, "conflicting"),
        ("/lookup?id=401", 401, "unauthorized: not you"),
        ("/lookup?id=500", 500, "storage: disk full"),
        ("/buy?id=99", 404, "item 99 not found"),
        ("/buy?id=4", 404, "item 4 is out of stock"),
        (
            "/buy?id=1.5",
            400,
            "malformed id '1.5': expected a non-negative integer",
        ),
        ("/buy", 400, "missing parameter 'id'"),
        ("/buy?id=503", 503, "unavailable: no catalog replica"),
    ];
    for (path, code, message) in cases {
        let reply = get(&server.url(path)).await;
        assert_eq!(reply.status.as_u16(), *code, "{path}: {}", reply.text());
        assert_eq!(reply.text(), failed(message, *code), "{path}");
    }
}

#[tokio::test]
async fn buy_answers_success_with_the_title_and_order_id() {
    let server = start(front_end_app()).await;
    let first = get(&server.url("/buy?id=2")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.text(),
        r#"{"message":"Successfully bought RPCs for Noobs","order":{"id":1},"status":"Success","validation_code":200}"#
    );
    // The original's GET buy carries no key: each call is a new order.
    let second = get(&server.url("/buy?id=2")).await;
    assert_eq!(second.json()["order"]["id"], 2);
    let stock = get(&server.url("/lookup?id=2")).await;
    assert_eq!(stock.json()["item"][0]["count"], 98);
}

#[tokio::test]
async fn original_routes_answer_wrong_methods_in_the_envelope() {
    let server = start(front_end_app()).await;
    let reply = send(Method::POST, &server.url("/buy?id=1"), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.text(),
        failed("POST is not allowed on /buy (allowed: GET)", 405)
    );
}

#[tokio::test]
async fn rest_books_lists_all_or_one_topic() {
    let server = start(front_end_app()).await;
    let all = get(&server.url("/books")).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json()["books"].as_array().map(Vec::len), Some(4));
    let topic = get(&server.url("/books?topic=graduate%20school")).await;
    assert_eq!(topic.json()["books"].as_array().map(Vec::len), Some(1));
    let none = get(&server.url("/books?topic=nothing")).await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.text(), r#"{"books":[]}"#);
    let one = get(&server.url("/books/1")).await;
    assert_eq!(one.text(), BOOK_1);
}

#[tokio::test]
async fn rest_errors_are_json_with_the_mapped_status() {
    let server = start(front_end_app()).await;
    let cases: &[(Method, &str, u16, &str)] = &[
        (Method::GET, "/books/99", 404, "item 99 not found"),
        (
            Method::GET,
            "/books/x",
            400,
            "malformed id 'x': expected a non-negative integer",
        ),
        (
            Method::GET,
            "/books/503",
            503,
            "unavailable: no catalog replica",
        ),
        (Method::GET, "/orders/7", 404, "order 7 not found"),
        (Method::GET, "/nowhere", 404, "no route for GET /nowhere"),
        (
            Method::DELETE,
            "/books/1",
            405,
            "DELETE is not allowed on /books/1 (allowed: GET, HEAD)",
        ),
        (
            Method::GET,
            "/books/1/buy",
            405,
            "GET is not allowed on /books/1/buy (allowed: POST)",
        ),
    ];
    for (method, path, code, message) in cases {
        let reply = send(method.clone(), &server.url(path), &[], Bytes::new()).await;
        assert_eq!(
            reply.status.as_u16(),
            *code,
            "{method} {path}: {}",
            reply.text()
        );
        assert_eq!(
            reply.json(),
            serde_json::json!({ "error": message }),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn rest_buy_with_the_same_key_yields_one_order() {
    let server = start(front_end_app()).await;
    let buy = |body: &'static str| {
        let url = server.url("/books/3/buy");
        async move { send(Method::POST, &url, &[("Idempotency-Key", "k-1")], body).await }
    };
    let first = buy(r#"{"qty": 2}"#).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let order = first.json()["order"].clone();
    assert_eq!(order["qty"], 2);
    assert!(
        order.get("request").is_none(),
        "the key is not shown: {order}"
    );
    assert_eq!(
        first.json()["message"],
        "Successfully bought Xen and the Art of Surviving Undergraduate School"
    );
    assert_eq!(
        first.headers.get("location").map(|v| v.as_bytes()),
        Some(&b"/orders/1"[..])
    );
    let again = buy(r#"{"qty": 2}"#).await;
    assert_eq!(again.json()["order"], order);
    let stock = get(&server.url("/books/3")).await;
    assert_eq!(stock.json()["count"], 98);
    let fetched = get(&server.url("/orders/1")).await;
    assert_eq!(fetched.json(), order);
}

#[tokio::test]
async fn rest_buy_body_defaults_to_one_and_is_validated() {
    let server = start(front_end_app()).await;
    let url = server.url("/books/1/buy");
    let plain = send(Method::POST, &url, &[], Bytes::new()).await;
    assert_eq!(plain.status, StatusCode::CREATED);
    assert_eq!(plain.json()["order"]["qty"], 1);
    let zero = send(Method::POST, &url, &[], r#"{"qty": 0}"#).await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST);
    assert_eq!(zero.json()["error"], "qty must be at least 1");
    let typo = send(Method::POST, &url, &[], r#"{"quantity": 2}"#).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    let message = typo.json()["error"].as_str().map(str::to_string);
    assert!(
        message.is_some_and(|m| m.contains("unknown field `quantity`")),
        "{}",
        typo.text()
    );
    let long_key = "k".repeat(201);
    let bad_key = send(
        Method::POST,
        &url,
        &[("Idempotency-Key", &long_key)],
        Bytes::new(),
    )
    .await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_routes_need_the_bearer_token() {
    let server = start(front_end_app()).await;
    let price = server.url("/books/1/price");
    let body = r#"{"cost": 42}"#;
    let none = send(Method::PUT, &price, &[], body).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let wrong = send(
        Method::PUT,
        &price,
        &[("Authorization", "Bearer nope")],
        body,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json()["error"], "wrong admin token");
    let unchanged = get(&server.url("/books/1")).await;
    assert_eq!(unchanged.json()["cost"], 11);

    let auth = [("Authorization", "Bearer admin-secret")];
    let priced = send(Method::PUT, &price, &auth, body).await;
    assert_eq!(priced.status, StatusCode::OK);
    assert_eq!(priced.json()["cost"], 42);
    let restocked = send(
        Method::POST,
        &server.url("/books/4/restock"),
        &auth,
        r#"{"qty": 10}"#,
    )
    .await;
    assert_eq!(restocked.json()["count"], 10);
    let new_book = r#"{"id":8,"title":"Spring in the Pioneer Valley","cost":20,"count":5,"topic":"graduate school"}"#;
    let added = send(Method::POST, &server.url("/books"), &auth, new_book).await;
    assert_eq!(added.status, StatusCode::CREATED);
    assert_eq!(added.text(), new_book);
    let twice = send(Method::POST, &server.url("/books"), &auth, new_book).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let broken = send(Method::POST, &server.url("/books"), &auth, r#"{"id":9}"#).await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_shows_the_apis_health() {
    let server = start(front_end_app()).await;
    let reply = get(&server.url("/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["up"][0], "catalog-1");
}

#[tokio::test]
async fn oversized_public_body_is_413_json() {
    let server = start(front_end_app()).await;
    let reply = send(
        Method::POST,
        &server.url("/books/1/buy"),
        &[],
        vec![b' '; 100 * 1024],
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.json()["error"],
        "request body exceeds the limit of 65536 bytes"
    );
}

/// Whether `id` has the shape of an id the server makes: 8 hex digits, a
/// dash, then hex digits.
fn is_made_id(id: &str) -> bool {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    match id.split_once('-') {
        Some((prefix, n)) => prefix.len() == 8 && hex(prefix) && hex(n),
        None => false,
    }
}

#[tokio::test]
async fn a_client_request_id_is_echoed_and_one_is_made_otherwise() {
    let server = start(front_end_app()).await;
    let id_of = |reply: &Reply| {
        reply
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // A client's id comes back unchanged, on an answer and on an error.
    for (path, status) in [("/lookup?id=2", 200), ("/lookup?id=99", 404)] {
        let reply = send(
            Method::GET,
            &server.url(path),
            &[("X-Request-Id", "client-id.42")],
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status.as_u16(), status, "{path}");
        assert_eq!(id_of(&reply).as_deref(), Some("client-id.42"), "{path}");
    }
    // Without one, or with a malformed one, the server makes a fresh id.
    let long = "x".repeat(129);
    let mut made = Vec::new();
    for given in [None, Some("has space"), Some(long.as_str())] {
        let headers: Vec<(&str, &str)> = given.iter().map(|v| ("X-Request-Id", *v)).collect();
        let reply = send(
            Method::GET,
            &server.url("/lookup?id=2"),
            &headers,
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        let id = id_of(&reply).expect("an x-request-id header");
        assert!(is_made_id(&id), "{given:?} got {id}");
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 3, "made ids differ: {made:?}");
}
