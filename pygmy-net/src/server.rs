//! The server loop: accept connections, serve each on its own task with
//! hyper's HTTP/1.1 (keep-alive on, so a pooled client reuses connections),
//! and stop gracefully.
//!
//! Graceful stop: when `shutdown` resolves the listener is dropped (new
//! connections are refused at once), every connection is told to finish the
//! request it is on and close, and `serve` returns once all of them have.
//! Idle keep-alive connections close immediately. A request that never
//! finishes holds the stop up; a caller that needs a bound wraps `serve` in
//! `tokio::time::timeout`.
//!
//! Tasks are spawned with `tokio::spawn`, which also works inside turmoil's
//! simulated hosts.

use crate::accept::Accept;
use crate::app::App;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Pause after a failed accept. Errors like "too many open files" persist
/// for a while; retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on the connections `acceptor` yields until `shutdown`
/// resolves, then stops gracefully (see the module doc).
pub async fn serve<A: Accept>(mut acceptor: A, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    // Connections hold a receiver each; the sender's `closed` resolves when
    // the last one is gone, which is how `serve` waits for them.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // `biased`: poll in the written order rather than a random one, so a
        // seeded simulation replays identically.
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = acceptor.accept() => match accepted {
                Ok(io) => {
                    tokio::spawn(connection(io, app.clone(), stop_rx.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
    drop(acceptor);
    drop(stop_rx);
    // Fails only when no connection is left to tell.
    let _ = stop_tx.send(true);
    stop_tx.closed().await;
}

/// Serves one connection until the peer closes it or the server stops.
async fn connection<I>(io: I, app: Arc<App>, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.respond(request).await) }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        biased;
        // A connection error (peer reset, malformed HTTP) concerns only this
        // connection; hyper has already answered what it could.
        _ = conn.as_mut() => return,
        _ = stop.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
