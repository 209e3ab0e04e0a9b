//! An in-process transport: nodes are handlers in a map, requests are passed
//! by value. For embedding Pygmy in one process, for tests and for benches.
//! A node that is not registered (or was unregistered, to model a crash) is
//! unreachable, like a dead host.

use crate::error::{Error, Result};
use crate::transport::message::{Request, Response};
use crate::transport::{into_result, Handler, Transport};
use crate::types::NodeId;
use async_trait::async_trait;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
pub struct InProcTransport {
    nodes: RwLock<BTreeMap<NodeId, Arc<dyn Handler>>>,
}

impl InProcTransport {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes `node` reachable, served by `handler`.
    pub fn register(&self, node: NodeId, handler: Arc<dyn Handler>) {
        self.nodes.write().insert(node, handler);
    }

    /// Makes `node` unreachable.
    pub fn unregister(&self, node: &NodeId) {
        self.nodes.write().remove(node);
    }

    /// Drops every handler (they hold the transport: this breaks the cycle).
    pub fn clear(&self) {
        self.nodes.write().clear();
    }
}

#[async_trait]
impl Transport for InProcTransport {
    async fn call(&self, to: &NodeId, request: Request, timeout: Duration) -> Result<Response> {
        let handler = self.nodes.read().get(to).cloned();
        let Some(handler) = handler else {
            return Err(Error::Transport(format!("{to} is unreachable")));
        };
        match tokio::time::timeout(timeout, handler.handle(request)).await {
            Ok(response) => into_result(response),
            Err(_) => Err(Error::Transport(format!(
                "{to} did not answer in {timeout:?}"
            ))),
        }
    }
}
