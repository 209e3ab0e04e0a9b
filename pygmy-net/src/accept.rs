//! How a server accepts connections.
//!
//! The server loop in [`server`](crate::server) is generic over [`Accept`],
//! so the very same HTTP code runs on tokio's TCP in production and on
//! turmoil's simulated TCP in `pygmy-sim`, with no `cfg` switches: the
//! simulation implements `Accept` for `turmoil::net::TcpListener` the way
//! this module does for `tokio::net::TcpListener`.

use async_trait::async_trait;
use std::io;

/// A source of accepted connections.
///
/// Contract: `accept` waits for the next connection and returns its byte
/// stream (the server wraps it for hyper, and watches it for its limits). An `Err` is about that one attempt (a reset handshake, a full file
/// table); the server backs off briefly and calls again, so an implementation
/// must stay usable after returning one.
#[async_trait]
pub trait Accept: Send + 'static {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    async fn accept(&mut self) -> io::Result<Self::Io>;
}

#[async_trait]
impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<Self::Io> {
        let (stream, _peer) = tokio::net::TcpListener::accept(self).await?;
        // Replies are small and written in one go; with Nagle on, each one
        // could wait for the peer's delayed ACK (tens of milliseconds). A
        // failure here only costs latency, so it is not worth refusing the
        // connection over.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}
