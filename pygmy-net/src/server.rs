//! The server loop: accept connections, serve each on its own task with
//! hyper's HTTP/1.1 (keep-alive on, so a pooled client reuses connections),
//! keep every connection within the listener's [`Limits`], and stop
//! gracefully.
//!
//! # Limits (every listener: the front end and the replicas)
//!
//! A client, careless or hostile, must not be able to hold a node's
//! resources for long or without bound. Each limit is a setting (see
//! [`Limits`] for the defaults, `pygmy.toml`'s `[limits]` for the CLI):
//!
//! - **Open connections.** At most `max_connections` at a time: a permit of
//!   a semaphore is taken *before* `accept`, so beyond the limit new
//!   connections wait in the kernel's listen backlog (and past that are
//!   refused by the kernel) instead of costing this process memory. They are
//!   accepted as soon as a connection closes.
//! - **Headers.** A request's head (request line and headers) must arrive
//!   within `header_timeout` of its first byte, and be at most
//!   `max_header_bytes` long (hyper answers 431 beyond it). The read buffer
//!   of a connection never grows past `max(8 KiB, max_header_bytes)`, so a
//!   client that trickles a huge header costs at most that.
//! - **Idle keep-alive.** A connection with no request in progress and no
//!   byte of a new one closes after `idle_timeout`. This also closes a
//!   client that stops reading its answer (the answer is written after the
//!   request counts as done).
//! - **Bodies.** A handler reading a body gives up after `body_timeout` with
//!   408 (see [`body`](crate::body)); the size limits are the [`App`]'s.
//! - **Half-closed clients.** A client that sends its request and then
//!   shuts down its sending side still gets its answer (hyper's
//!   `half_close`).
//!
//! A connection that overstays the header or idle time is dropped without
//! an answer: hyper owns the socket, and a client that has not sent a whole
//! request has nothing to be answered. Timers run on tokio's clock, which
//! turmoil virtualises, so the simulation runs these limits too.
//!
//! # One timer per connection
//!
//! The header and idle limits cost a request nothing beyond recording its
//! phase changes (three uncontended lock round trips): a phase change wakes
//! no task and arms no timer. Each connection has one timer instead, which
//! fires at the earliest moment any deadline could fall due:
//! `min(current deadline, now + min(header_timeout, idle_timeout))`. That
//! bound is exact: a phase entered after `now` starts its own deadline at
//! least `min(header_timeout, idle_timeout)` later, and the current phase's
//! deadline is known. So a connection is closed at its deadline (no later
//! than with a timer per phase), and a busy keep-alive connection costs one
//! timer wake-up per `min(header_timeout, idle_timeout)` (10 s by default)
//! instead of three wake-ups and a new timer per request (measured in
//! docs/BENCHMARKS.md, issue 14).
//!
//! Graceful stop: when `shutdown` resolves the listener is dropped (new
//! connections are refused at once), every connection is told to finish the
//! request it is on and close, and `serve` returns once all of them have.
//! Idle keep-alive connections close immediately; a request that never
//! finishes holds the stop up only until the limits above close it.
//!
//! Tasks are spawned with `tokio::spawn`, which also works inside turmoil's
//! simulated hosts.

use crate::accept::Accept;
use crate::app::App;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// Pause after a failed accept. Errors like "too many open files" persist
/// for a while; retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// hyper's smallest read buffer (it panics below it).
const MIN_BUF: usize = 8192;

/// What one listener allows each client (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest time from a request's first byte to the end of its headers.
    pub header_timeout: Duration,
    /// Longest time a keep-alive connection waits for its next request.
    pub idle_timeout: Duration,
    /// Longest time a handler waits for a request's body.
    pub body_timeout: Duration,
    /// Most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Longest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    /// 10 s for headers and for bodies (a LAN client sends both in
    /// microseconds; a phone on a bad link in well under that), 60 s idle
    /// (above the 30 s the nodes' own pooled clients keep an unused
    /// connection, so a node never reuses a connection its peer is closing),
    /// 4,096 connections (so 2,000 slow clients leave room for everyone
    /// else; the listen backlog holds 1,024 more; each open connection
    /// costs about 20 KiB, see docs/BENCHMARKS.md), and
    /// 16 KiB of headers (no client of this API sends more than a few
    /// hundred bytes).
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_header_bytes: 16 << 10,
        }
    }
}

impl Limits {
    /// Checks the limits make sense: positive times and counts, and at
    /// least 1 KiB of headers (a browser's own headers take more than that).
    pub fn validate(&self) -> Result<(), String> {
        for (name, time) in [
            ("header_timeout_ms", self.header_timeout),
            ("idle_timeout_ms", self.idle_timeout),
            ("body_timeout_ms", self.body_timeout),
        ] {
            if time.is_zero() {
                return Err(format!("limits.{name} must be at least 1"));
            }
        }
        if self.max_connections == 0 {
            return Err("limits.max_connections must be at least 1".into());
        }
        if self.max_header_bytes < 1024 {
            return Err(format!(
                "limits.max_header_bytes = {}: at least 1024",
                self.max_header_bytes
            ));
        }
        Ok(())
    }
}

/// Serves `app` on the connections `acceptor` yields, within the app's
/// [`Limits`], until `shutdown` resolves, then stops gracefully (see the
/// module doc).
pub async fn serve<A: Accept>(mut acceptor: A, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    // Connections hold a receiver each; the sender's `closed` resolves when
    // the last one is gone, which is how `serve` waits for them.
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = Arc::new(app.limits().clone());
    // One permit per open connection, taken before `accept` so that a full
    // server leaves new connections to the kernel's backlog.
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        // `biased`: poll in the written order rather than a random one, so a
        // seeded simulation replays identically.
        let permit = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = acceptor.accept() => match accepted {
                Ok(io) => {
                    let (app, limits, stop) = (app.clone(), limits.clone(), stop_rx.clone());
                    tokio::spawn(async move {
                        let open = app.metrics().connection();
                        connection(io, app, limits, stop).await;
                        drop(open);
                        drop(permit);
                    });
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

/// Where a connection stands, for its header and idle timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No request in progress and no byte of the next one, since `since`.
    Idle,
    /// The first byte of a request arrived at `since`; its head has not
    /// reached the handler yet.
    Head,
    /// The handler has the request (reading its body is bounded by the
    /// body timeout, the rest by the handler's own deadlines).
    Busy,
}

/// A connection's phase, shared by its socket, its service and its task.
/// Changing it only records it: the connection's one timer reads it when it
/// fires (see the module docs).
struct Activity {
    state: Mutex<(Phase, Instant)>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: Mutex::new((Phase::Idle, Instant::now())),
        }
    }

    fn set(&self, from: Option<Phase>, to: Phase) {
        let mut state = self.state.lock();
        if from.is_none_or(|from| state.0 == from) && state.0 != to {
            *state = (to, Instant::now());
        }
    }

    /// When the connection must close unless its phase changes first.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let (phase, since) = *self.state.lock();
        match phase {
            Phase::Idle => Some(since + limits.idle_timeout),
            Phase::Head => Some(since + limits.header_timeout),
            Phase::Busy => None,
        }
    }
}

/// Marks a request as with the handler; back to idle when dropped (the
/// answer is then written, or the request was abandoned).
struct BusyGuard(Arc<Activity>);

impl BusyGuard {
    fn new(activity: Arc<Activity>) -> Self {
        activity.set(None, Phase::Busy);
        BusyGuard(activity)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.set(None, Phase::Idle);
    }
}

/// A socket that reports the first byte of each request to its
/// [`Activity`] (the start of the header timer).
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.set(Some(Phase::Idle), Phase::Head);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves one connection until the peer closes it, a limit closes it, or
/// the server stops.
async fn connection<I>(io: I, app: Arc<App>, limits: Arc<Limits>, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        io,
        activity: activity.clone(),
    });
    let busy = activity.clone();
    let service = service_fn(move |request| {
        let app = app.clone();
        let guard = BusyGuard::new(busy.clone());
        async move {
            let response = app.respond(request).await;
            drop(guard);
            Ok::<_, Infallible>(response)
        }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .half_close(true)
        // The header timer is ours (from a request's first byte, not from
        // when the connection went idle, which is hyper's).
        .header_read_timeout(None)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF))
        .serve_connection(io, service);
    tokio::pin!(conn);
    // The connection's one timer (see the module docs). A phase entered
    // after `now` has a deadline at least `check` after `now`, so waking at
    // `min(current deadline, now + check)` never misses one.
    let check = limits.header_timeout.min(limits.idle_timeout);
    let timer = tokio::time::sleep(check);
    tokio::pin!(timer);
    let mut stopping = false;
    loop {
        tokio::select! {
            biased;
            // A connection error (peer reset, malformed HTTP) concerns only
            // this connection; hyper has already answered what it could.
            _ = conn.as_mut() => return,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = timer.as_mut() => {
                let now = Instant::now();
                let deadline = activity.deadline(&limits);
                if deadline.is_some_and(|d| d <= now) {
                    // Dropping the connection closes the socket.
                    return;
                }
                let next = now + check;
                timer.as_mut().reset(deadline.map_or(next, |d| d.min(next)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The header and idle limits on tokio's paused clock: the test owns
    //! the clock, so "closed at the deadline" is exact and not a race with
    //! the machine's load (hostile.rs checks the same limits over real TCP,
    //! only that slow clients are closed at all).

    use super::*;
    use crate::app::App;
    use async_trait::async_trait;
    use pygmy_core::unstable::transport::message::{Request, Response};
    use pygmy_core::unstable::transport::Handler;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    /// Connections handed over by the test.
    struct Queue(mpsc::Receiver<DuplexStream>);

    #[async_trait]
    impl Accept for Queue {
        type Io = DuplexStream;

        async fn accept(&mut self) -> io::Result<DuplexStream> {
            match self.0.recv().await {
                Some(io) => Ok(io),
                // The test is over; never return, so no backoff loop spins.
                None => std::future::pending().await,
            }
        }
    }

    /// Answers every internal call after `SLOW`, longer than either limit.
    struct Slow;

    const SLOW: Duration = Duration::from_secs(100);

    #[async_trait]
    impl Handler for Slow {
        async fn handle(&self, _request: Request) -> Response {
            tokio::time::sleep(SLOW).await;
            Response::Ok
        }
    }

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    /// A server with the default limits; connect with the returned sender.
    fn server() -> mpsc::Sender<DuplexStream> {
        let limits = Limits {
            header_timeout: HEADER,
            idle_timeout: IDLE,
            ..Limits::default()
        };
        let app = Arc::new(App::new(Arc::new(Slow), "token").with_limits(limits));
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(serve(Queue(rx), app, std::future::pending()));
        tx
    }

    async fn connect(server: &mpsc::Sender<DuplexStream>) -> DuplexStream {
        let (client, theirs) = tokio::io::duplex(64 << 10);
        server.send(theirs).await.expect("the server accepts");
        client
    }

    /// Reads until the server closes the connection; the bytes read.
    async fn until_closed(client: &mut DuplexStream) -> Vec<u8> {
        let mut bytes = Vec::new();
        // An error (reset) counts as closed too.
        let _ = client.read_to_end(&mut bytes).await;
        bytes
    }

    /// Whether `at` is the deadline `due`, to the timer wheel's 1 ms.
    fn at_deadline(at: Duration, due: Duration) -> bool {
        at >= due && at <= due + Duration::from_millis(2)
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_at_its_idle_deadline() {
        let server = server();
        let start = Instant::now();
        let mut client = connect(&server).await;
        let bytes = until_closed(&mut client).await;
        assert!(bytes.is_empty());
        let closed = start.elapsed();
        assert!(at_deadline(closed, IDLE), "closed after {closed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_begun_late_closes_at_its_header_deadline_not_the_idle_one() {
        let server = server();
        let mut client = connect(&server).await;
        // Idle for 30.005 s (between two of the connection's timer checks),
        // then half a request line.
        tokio::time::sleep(Duration::from_millis(30_005)).await;
        client.write_all(b"GET /li").await.expect("send");
        let began = Instant::now();
        let bytes = until_closed(&mut client).await;
        assert!(bytes.is_empty(), "no answer to half a head");
        let closed = began.elapsed();
        assert!(at_deadline(closed, HEADER), "closed after {closed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_handler_is_not_cut_off_and_the_connection_then_idles_out() {
        let server = server();
        let mut client = connect(&server).await;
        let heartbeat = Request::Heartbeat {
            views: Vec::new(),
            disks: None,
            from: None,
        };
        let body = serde_json::to_string(&heartbeat).expect("a request encodes");
        let request = format!(
            "POST {RPC} HTTP/1.1\r\nHost: x\r\nx-pygmy-token: token\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len(),
            RPC = crate::rpc::RPC_PATH,
        );
        let start = Instant::now();
        client.write_all(request.as_bytes()).await.expect("send");
        let bytes = until_closed(&mut client).await;
        // Answered after SLOW (past both limits), then closed IDLE later.
        assert!(bytes.starts_with(b"HTTP/1.1 200"), "{bytes:?}");
        let closed = start.elapsed();
        assert!(at_deadline(closed, SLOW + IDLE), "closed after {closed:?}");
    }
}
