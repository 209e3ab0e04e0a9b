//! An in-process transport: nodes are handlers in a map, requests are passed
//! by value. For embedding Pygmy in one process, for tests and for benches.
//! A node that is not registered (or was unregistered, to model a crash) is
//! unreachable, like a dead host.
//!
//! Each node sends through its own endpoint ([`InProcTransport::endpoint`]),
//! which shares the map with every other endpoint but knows who is sending.
//! That is what two test aids need:
//!
//! - **Partitions**: an isolated node ([`InProcTransport::isolate`]) keeps
//!   running, but every call it makes and every call made to it fails as
//!   unreachable, until [`InProcTransport::heal`]. The cut is checked again
//!   when the reply comes back, so a call in flight when the node is cut
//!   off (a held long poll) loses its reply, as over a real network: the
//!   caller cannot tell whether it was handled, which the [`Transport`]
//!   contract already allows. A call whose whole flight spans a cut that
//!   began and healed meanwhile is answered, as a TCP connection
//!   outlives a short cut (`partition_primary.txt` shows one: a long poll
//!   sent before the cut, answered after the heal).
//! - **A tap** ([`InProcTransport::tap`]) sees every exchange — sender,
//!   receiver, request and its outcome — once it is over, so a scripted
//!   test can print the protocol's messages. With no tap set, a call costs
//!   no clone of its request.

use crate::error::{Error, Result};
use crate::transport::message::{Request, Response};
use crate::transport::{into_result, Handler, Transport};
use crate::types::NodeId;
use async_trait::async_trait;
use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Sees one finished exchange: the sender (`None` for the shared handle,
/// which has no node of its own), the receiver, the request, its outcome.
pub type Tap = Arc<dyn Fn(Option<&NodeId>, &NodeId, &Request, &Result<Response>) + Send + Sync>;

/// What every endpoint of one in-process network shares.
#[derive(Default)]
struct Net {
    nodes: RwLock<BTreeMap<NodeId, Arc<dyn Handler>>>,
    isolated: RwLock<BTreeSet<NodeId>>,
    tap: RwLock<Option<Tap>>,
}

/// One in-process network, seen from one sender. [`InProcTransport::new`]
/// makes a network and a handle with no sender of its own (for tools and
/// tests); [`InProcTransport::endpoint`] a node's handle on the same one.
#[derive(Default)]
pub struct InProcTransport {
    me: Option<NodeId>,
    net: Arc<Net>,
}

impl InProcTransport {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// `node`'s handle on this network: its calls are sent as `node`, so
    /// they fail while `node` is isolated and the tap names it.
    pub fn endpoint(&self, node: NodeId) -> Arc<Self> {
        Arc::new(InProcTransport {
            me: Some(node),
            net: self.net.clone(),
        })
    }

    /// Makes `node` reachable, served by `handler`.
    pub fn register(&self, node: NodeId, handler: Arc<dyn Handler>) {
        self.net.nodes.write().insert(node, handler);
    }

    /// Makes `node` unreachable.
    pub fn unregister(&self, node: &NodeId) {
        self.net.nodes.write().remove(node);
    }

    /// Cuts `node` off from every other node, both ways, until
    /// [`heal`](Self::heal); it keeps running.
    pub fn isolate(&self, node: &NodeId) {
        self.net.isolated.write().insert(node.clone());
    }

    /// Reconnects a node cut off by [`isolate`](Self::isolate).
    pub fn heal(&self, node: &NodeId) {
        self.net.isolated.write().remove(node);
    }

    /// Calls `tap` after every exchange on this network from now on
    /// (`None`: stop).
    pub fn tap(&self, tap: Option<Tap>) {
        *self.net.tap.write() = tap;
    }

    /// Drops every handler and the tap (they hold the transport: this
    /// breaks the cycle).
    pub fn clear(&self) {
        self.net.nodes.write().clear();
        *self.net.tap.write() = None;
    }

    /// The error for a call between `self.me` and `to` that a partition
    /// cuts, if one does.
    fn cut(&self, to: &NodeId) -> Option<Error> {
        let isolated = self.net.isolated.read();
        let from_cut = self.me.as_ref().is_some_and(|me| isolated.contains(me));
        // Worded for either side: the caller may be the one cut off.
        (from_cut || isolated.contains(to)).then(|| Error::Transport(format!("cut off from {to}")))
    }

    async fn exchange(&self, to: &NodeId, request: Request, timeout: Duration) -> Result<Response> {
        if let Some(e) = self.cut(to) {
            return Err(e);
        }
        let handler = self.net.nodes.read().get(to).cloned();
        let Some(handler) = handler else {
            return Err(Error::Transport(format!("{to} is unreachable")));
        };
        let outcome = match tokio::time::timeout(timeout, handler.handle(request)).await {
            Ok(response) => into_result(response),
            Err(_) => Err(Error::Transport(format!(
                "{to} did not answer in {timeout:?}"
            ))),
        };
        // A partition that began while the call was in flight loses the reply.
        match self.cut(to) {
            Some(e) => Err(e),
            None => outcome,
        }
    }
}

#[async_trait]
impl Transport for InProcTransport {
    async fn call(&self, to: &NodeId, request: Request, timeout: Duration) -> Result<Response> {
        let tap = self.net.tap.read().clone();
        let Some(tap) = tap else {
            return self.exchange(to, request, timeout).await;
        };
        let outcome = self.exchange(to, request.clone(), timeout).await;
        tap(self.me.as_ref(), to, &request, &outcome);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Answers `Ok` after 100 ms (paused time in these tests).
    struct Slow;

    #[async_trait]
    impl Handler for Slow {
        async fn handle(&self, _: Request) -> Response {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Response::Ok
        }
    }

    fn probe() -> Request {
        Request::Heartbeat {
            views: vec![],
            disks: None,
            from: None,
        }
    }

    const WAIT: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn isolation_cuts_both_ways_and_heals() {
        let net = InProcTransport::new();
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        net.register(a.clone(), Arc::new(Slow));
        net.register(b.clone(), Arc::new(Slow));
        let from_a = net.endpoint(a.clone());
        let from_b = net.endpoint(b.clone());
        assert!(matches!(
            from_a.call(&b, probe(), WAIT).await,
            Ok(Response::Ok)
        ));

        net.isolate(&a);
        let sent_by_cut = from_a.call(&b, probe(), WAIT).await;
        assert!(
            matches!(sent_by_cut, Err(Error::Transport(_))),
            "{sent_by_cut:?}"
        );
        let sent_to_cut = from_b.call(&a, probe(), WAIT).await;
        assert!(
            matches!(sent_to_cut, Err(Error::Transport(_))),
            "{sent_to_cut:?}"
        );

        net.heal(&a);
        assert!(matches!(
            from_b.call(&a, probe(), WAIT).await,
            Ok(Response::Ok)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_in_flight_when_cut_off_is_lost() {
        let net = InProcTransport::new();
        let b = NodeId::new("b");
        net.register(b.clone(), Arc::new(Slow));
        let from_a = net.endpoint(NodeId::new("a"));
        let call = tokio::spawn(async move { from_a.call(&b, probe(), WAIT).await });
        // The handler is running (it answers at 100 ms): cut b off now.
        tokio::time::sleep(Duration::from_millis(50)).await;
        net.isolate(&NodeId::new("b"));
        let outcome = call.await.unwrap();
        assert!(matches!(outcome, Err(Error::Transport(_))), "{outcome:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_tap_names_sender_and_receiver() {
        let net = InProcTransport::new();
        let b = NodeId::new("b");
        net.register(b.clone(), Arc::new(Slow));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        net.tap(Some(Arc::new(move |from, to, _, outcome| {
            log.lock()
                .push((from.cloned(), to.clone(), outcome.is_ok()));
        })));
        net.endpoint(NodeId::new("a"))
            .call(&b, probe(), WAIT)
            .await
            .unwrap();
        net.call(&NodeId::new("gone"), probe(), WAIT)
            .await
            .unwrap_err();
        assert_eq!(
            *seen.lock(),
            vec![
                (Some(NodeId::new("a")), b, true),
                (None, NodeId::new("gone"), false)
            ]
        );
    }
}
