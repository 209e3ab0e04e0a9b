//! The probes every node answers without a token: `GET /live` while it
//! serves, `GET /ready` as its readiness callback says (503 with the reason
//! when not ready), on replicas and the front end alike.

mod common;

use common::*;
use hyper::{Method, StatusCode};
use pygmy_net::{App, Readiness};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[tokio::test]
async fn ready_follows_the_nodes_readiness_and_live_does_not() {
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    let readiness: Readiness = Arc::new(move || {
        let now = flag.load(Ordering::SeqCst);
        (now, serde_json::json!({ "loaded": now }))
    });
    let server = start(App::new(Arc::new(Echo), TOKEN).with_readiness(readiness)).await;

    let live = get(&server.url("/live")).await;
    assert_eq!(live.status, StatusCode::OK);
    let not_ready = get(&server.url("/ready")).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready.json()["ok"], false);
    assert_eq!(not_ready.json()["detail"]["loaded"], false);

    ready.store(true, Ordering::SeqCst);
    let now_ready = get(&server.url("/ready")).await;
    assert_eq!(now_ready.status, StatusCode::OK);
    assert_eq!(now_ready.json()["ok"], true);
    assert_eq!(get(&server.url("/live")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn probes_need_no_token_and_refuse_other_methods() {
    // A replica (no public side) still answers its probes; without a
    // readiness callback it is ready whenever it answers.
    let server = start(App::new(Arc::new(Echo), TOKEN)).await;
    assert_eq!(get(&server.url("/ready")).await.status, StatusCode::OK);
    let post = send(Method::POST, &server.url("/ready"), &[], "").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    // Other paths of a replica are still not found.
    assert_eq!(
        get(&server.url("/health")).await.status,
        StatusCode::NOT_FOUND
    );
    // The front end answers them too, beside its public API.
    let front = start(front_end_app()).await;
    assert_eq!(get(&front.url("/live")).await.status, StatusCode::OK);
    assert_eq!(get(&front.url("/health")).await.status, StatusCode::OK);
}
