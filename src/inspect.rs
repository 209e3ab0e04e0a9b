//! Looks inside replicas through the internal RPC (`POST /internal/rpc`,
//! authenticated with the cluster's `x-pygmy-token`), as `chaos` and the
//! tests need: a replica's status (its epoch, commit and state digest) and
//! its whole committed state.
//!
//! The status is asked with a `Heartbeat` carrying no views: a replica
//! answers every heartbeat with its status and learns nothing from an empty
//! one, so asking changes nothing. The state is asked with
//! `Read(Query::Dump)`, which any replica serves from its committed state.
//!
//! What is then checked of those states is pygmy-core's invariant library
//! (`pygmy_core::invariants::check_settled`), the same checkers the
//! simulation runs.

use crate::config::ClusterConfig;
use hyper_util::client::legacy::connect::HttpConnector;
use pygmy_core::unstable::state::State;
use pygmy_core::unstable::transport::message::{
    Query, QueryResult, ReplicaStatus, Request, Response,
};
use pygmy_core::unstable::transport::Transport;
use pygmy_core::unstable::types::{Lsn, NodeId};
use pygmy_net::{tokio_transport, HttpTransport};
use std::time::Duration;

/// How long one inspection call may take (a dump of a large state included).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of the replicas' internal RPC.
pub struct Inspector {
    transport: HttpTransport<HttpConnector>,
}

impl Inspector {
    pub fn new(cfg: &ClusterConfig) -> Self {
        Inspector {
            transport: tokio_transport(cfg.addrs(), cfg.token.clone()),
        }
    }

    /// Replica `name`'s status, as it answers a heartbeat.
    pub async fn status(&self, name: &str) -> Result<ReplicaStatus, String> {
        let request = Request::Heartbeat {
            views: Vec::new(),
            disks: None,
            from: None,
        };
        match self.call(name, request).await? {
            Response::Status(status) => Ok(status),
            other => Err(format!("{name} answered a heartbeat with {other:?}")),
        }
    }

    /// Replica `name`'s committed state and the lsn it is at.
    pub async fn dump(&self, name: &str) -> Result<(State, Lsn), String> {
        match self.call(name, Request::Read(Query::Dump)).await? {
            Response::Read {
                result: QueryResult::State(state),
                lsn,
            } => Ok((*state, lsn)),
            other => Err(format!("{name} answered a dump with {other:?}")),
        }
    }

    async fn call(&self, name: &str, request: Request) -> Result<Response, String> {
        self.transport
            .call(&NodeId::new(name), request, CALL_TIMEOUT)
            .await
            .map_err(|e| format!("{name}: {e}"))
    }
}
