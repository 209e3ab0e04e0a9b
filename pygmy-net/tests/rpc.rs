//! The internal RPC path end to end: `HttpTransport` → server → handler.

mod common;

use bytes::Bytes;
use common::*;
use hyper::{Method, StatusCode};
use pygmy_core::unstable::transport::message::{Query, QueryResult, Request, Response};
use pygmy_core::unstable::transport::Transport;
use pygmy_core::unstable::types::{LogPos, NodeId};
use pygmy_core::Error;
use pygmy_net::{tokio_transport, App};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const HOP: Duration = Duration::from_secs(5);

fn transport_to(
    running: &Running,
    token: &str,
) -> pygmy_net::HttpTransport<hyper_util::client::legacy::connect::HttpConnector> {
    let addrs = BTreeMap::from([(NodeId::new("n1"), running.authority())]);
    tokio_transport(addrs, token)
}

fn lookup(id: u64) -> Request {
    Request::Read(Query::Lookup { id })
}

fn fetch(wait_ms: u64) -> Request {
    Request::Fetch {
        epoch: 1,
        from: NodeId::new("n2"),
        after: LogPos::ZERO,
        commit: 0,
        limit: 10,
        wait_ms,
        mark: 0,
        disk: 0,
        rebuild: false,
    }
}

#[tokio::test]
async fn rpc_round_trip_returns_the_handlers_reply() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let transport = transport_to(&server, TOKEN);
    let reply = transport.call(&NodeId::new("n1"), lookup(7), HOP).await;
    match reply {
        Ok(Response::Read {
            result: QueryResult::Book(Some(book)),
            lsn,
        }) => {
            assert_eq!(book.id, 7);
            assert_eq!(lsn, 7);
        }
        other => panic!("unexpected reply {other:?}"),
    }
}

#[tokio::test]
async fn a_remote_error_reply_is_returned_as_that_error() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let transport = transport_to(&server, TOKEN);
    let reply = transport.call(&NodeId::new("n1"), lookup(0), HOP).await;
    assert_eq!(
        reply.err(),
        Some(Error::NotFound("item 0 not found".into()))
    );
}

#[tokio::test]
async fn calls_reuse_one_pooled_connection() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let transport = transport_to(&server, TOKEN);
    for id in 1..=20 {
        let reply = transport.call(&NodeId::new("n1"), lookup(id), HOP).await;
        assert!(reply.is_ok(), "call {id}: {reply:?}");
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_wrong_token_is_a_transport_error_naming_401() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let transport = transport_to(&server, "not-the-token");
    let reply = transport.call(&NodeId::new("n1"), lookup(1), HOP).await;
    match reply {
        Err(Error::Transport(message)) => assert!(message.contains("401"), "{message}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_json() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let body = serde_json::to_vec(&lookup(1)).expect("encode");
    let missing = send(
        Method::POST,
        &server.url("/internal/rpc"),
        &[],
        body.clone(),
    )
    .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.json()["error"], "missing x-pygmy-token header");
    let wrong = send(
        Method::POST,
        &server.url("/internal/rpc"),
        &[("x-pygmy-token", "guess")],
        body,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json()["error"], "wrong x-pygmy-token");
}

#[tokio::test]
async fn an_empty_configured_token_refuses_everyone() {
    let server = start(App::new(Arc::new(Echo), "")).await;
    let body = serde_json::to_vec(&lookup(1)).expect("encode");
    let reply = send(
        Method::POST,
        &server.url("/internal/rpc"),
        &[("x-pygmy-token", "")],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn broken_json_is_400_naming_the_problem() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    for body in [&b"{\"Read\": "[..], b"{\"NoSuchRequest\": 1}", b""] {
        let reply = send(
            Method::POST,
            &server.url("/internal/rpc"),
            &[("x-pygmy-token", TOKEN)],
            Bytes::copy_from_slice(body),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        let error = reply.json()["error"].as_str().map(str::to_string);
        assert!(
            error.is_some_and(|e| e.starts_with("the rpc request is not valid JSON")),
            "{}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn oversized_internal_body_is_413() {
    let app = App::new(Arc::new(Echo), TOKEN).with_body_limits(1024, 1024);
    let server = start(app).await;
    let reply = send(
        Method::POST,
        &server.url("/internal/rpc"),
        &[("x-pygmy-token", TOKEN)],
        vec![b' '; 4096],
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.json()["error"],
        "request body exceeds the limit of 1024 bytes"
    );
}

#[tokio::test]
async fn rpc_path_only_accepts_post() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let reply = get(&server.url("/internal/rpc")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.headers.get("allow").map(|v| v.as_bytes()),
        Some(&b"POST"[..])
    );
}

#[tokio::test]
async fn a_replica_has_no_public_routes() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let reply = get(&server.url("/search?topic=x")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "no route for GET /search");
}

#[tokio::test]
async fn unknown_node_and_refused_connection_are_transport_errors() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let transport = transport_to(&server, TOKEN);
    let unknown = transport.call(&NodeId::new("nobody"), lookup(1), HOP).await;
    assert!(matches!(unknown, Err(Error::Transport(_))), "{unknown:?}");

    // A port that was just free: nothing listens there.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let addrs = BTreeMap::from([(NodeId::new("gone"), addr.to_string())]);
    let refused = tokio_transport(addrs, TOKEN)
        .call(&NodeId::new("gone"), lookup(1), HOP)
        .await;
    assert!(matches!(refused, Err(Error::Transport(_))), "{refused:?}");
}

#[tokio::test]
async fn a_slow_reply_times_out_as_a_transport_error() {
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let transport = transport_to(&server, TOKEN);
    let started = std::time::Instant::now();
    let reply = transport
        .call(&NodeId::new("n1"), fetch(5_000), Duration::from_millis(100))
        .await;
    assert!(
        matches!(reply, Err(Error::Transport(ref m)) if m.contains("no reply within")),
        "{reply:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_then_refuses_new_ones() {
    let mut server = start(App::new(Arc::new(Echo), TOKEN)).await;
    let transport = Arc::new(transport_to(&server, TOKEN));
    let in_flight = {
        let transport = transport.clone();
        tokio::spawn(async move { transport.call(&NodeId::new("n1"), fetch(300), HOP).await })
    };
    // Let the request reach the handler before stopping.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    let finished = in_flight.await.expect("task");
    assert!(matches!(finished, Ok(Response::Ok)), "{finished:?}");
    tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("serve returns after shutdown")
        .expect("serve did not panic");
    let after = tokio_transport(
        BTreeMap::from([(NodeId::new("n1"), server.authority())]),
        TOKEN,
    )
    .call(&NodeId::new("n1"), lookup(1), HOP)
    .await;
    assert!(matches!(after, Err(Error::Transport(_))), "{after:?}");
}
