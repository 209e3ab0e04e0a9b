//! pygmy-net's HTTP code over turmoil's simulated TCP: an [`Accept`] for
//! turmoil's listener and a connector for hyper's pooled client. Nothing
//! else differs from production, so the simulation tests the code that ships.

use async_trait::async_trait;
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use pygmy_net::Accept;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// turmoil's listener, accepting for pygmy-net's server.
pub struct SimListener(pub turmoil::net::TcpListener);

#[async_trait]
impl Accept for SimListener {
    type Io = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<Self::Io> {
        let (stream, _) = self.0.accept().await?;
        Ok(stream)
    }
}

/// Opens turmoil TCP connections for hyper's pooled client. After a crashed
/// host comes back, the pool's dead connections fail and new ones are made
/// through here.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimConnector;

/// A connection the pool can hold: hyper's I/O traits plus `Connection`.
pub struct SimStream(TokioIo<turmoil::net::TcpStream>);

impl tower_service::Service<Uri> for SimConnector {
    type Response = SimStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SimStream>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "uri without host"))?
                .to_string();
            let port = uri.port_u16().unwrap_or(80);
            let stream = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
            Ok(SimStream(TokioIo::new(stream)))
        })
    }
}

impl Connection for SimStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
