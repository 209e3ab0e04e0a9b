//! The boundary between replication and the services on top of it
//! (`crate::services`: the buy saga, the catalog's invalidation push).
//!
//! Replication knows commands, outcomes and the replicated state (any
//! [`StateMachine`]) only as values it logs, applies and ships; what a group does with them (which
//! requests it serves beyond the protocol's own, which queries it answers,
//! what happens after a commit, which background work its primary runs)
//! is its [`Service`]'s. A service holds its own state (the saga's buys in
//! flight, the invalidations not yet pushed) and reaches the replica only
//! through the methods here: submit a command, read the committed state
//! under the replica's lock ([`Held`]), learn of changes.

use super::{Committed, Inner, Replica, ReplicaConfig};
use crate::error::{Error, Result};
use crate::state::command::{Command, Outcome};
use crate::state::StateMachine;
use crate::transport::message::{Query, QueryResult, Request, Response};
use crate::transport::Transport;
use crate::types::{Clock, Epoch, Group, LogPos, Lsn, NodeId};
use async_trait::async_trait;
use parking_lot::MutexGuard;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a group's replicas do on top of replication (see the module docs).
///
/// The hooks called under the replica's lock ([`committed`](Self::committed),
/// [`stepped_down`](Self::stepped_down)) run in log order with the state
/// they see, so they must only record (no I/O, no waiting); the work goes
/// to the service's tasks.
#[async_trait]
///
/// `S` defaults to the store's own state (the services in `crate::services`
/// serve it); replication calls a service for any `S`.
pub trait Service<T: Transport, S: StateMachine = crate::state::State>:
    Send + Sync + 'static
{
    /// Serves a request replication does not serve itself, or gives it
    /// back (`Err(request)`) to be served as a protocol message or a read.
    async fn handle(
        &self,
        replica: &Replica<T, S>,
        request: Request,
    ) -> std::result::Result<Result<Response>, Request>;

    /// Answers one query from the committed `state` (reads and batches).
    fn answer(&self, state: &S, query: Query) -> Result<QueryResult>;

    /// Called, under the replica's lock, for each entry the serving primary
    /// applies, in lsn order, with the state after it.
    fn committed(&self, _state: &S, _command: &Command, _lsn: Lsn) {}

    /// Called, under the replica's lock, when the replica gives up its role
    /// (a newer view names another primary): what it recorded as primary is
    /// no longer its to act on.
    fn stepped_down(&self) {}

    /// Starts the service's background tasks (stopped by
    /// [`Replica::shutdown`]).
    fn spawn(self: Arc<Self>, replica: Arc<Replica<T, S>>) -> Vec<JoinHandle<()>>;
}

/// The replica locked, for a service to read its committed state and role.
/// Never held across an `.await`.
pub struct Held<'a, S = crate::state::State>(pub(super) MutexGuard<'a, Inner<S>>);

impl<S> Held<'_, S> {
    /// The state with every committed entry applied.
    pub fn state(&self) -> &S {
        &self.0.state
    }

    /// Whether this replica is the serving primary of a confirmed view.
    pub fn serving(&self) -> bool {
        self.0.serving
    }

    /// The epoch of the latest view of my group I accepted (0: none).
    pub fn epoch(&self) -> Epoch {
        self.0.view.as_ref().map_or(0, |v| v.epoch)
    }

    /// The latest view of my group I accepted.
    pub fn view(&self) -> Option<&crate::view::View> {
        self.0.view.as_ref()
    }

    /// The commit point.
    pub fn commit(&self) -> Lsn {
        self.0.commit
    }

    /// The primary of `group` as the latest view I know names it.
    pub fn primary_of(&self, group: Group) -> Option<NodeId> {
        self.0.others.get(&group).map(|v| v.primary.clone())
    }
}

impl<T: Transport, S: StateMachine> Replica<T, S> {
    /// The replica, locked (see [`Held`]).
    pub fn held(&self) -> Held<'_, S> {
        Held(self.inner.lock())
    }

    /// The replica, as an `Arc`, to hand to a spawned task (`None` once
    /// it is being dropped).
    pub fn arc(&self) -> Option<Arc<Self>> {
        self.weak.upgrade()
    }

    /// Its configuration.
    pub fn config(&self) -> &ReplicaConfig {
        &self.cfg
    }

    /// Its transport, to call other nodes.
    pub fn transport(&self) -> &Arc<T> {
        &self.transport
    }

    /// Its clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Wakes on every change someone may be waiting for (a commit, a view).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The "not the primary" error, with a hint at who is.
    pub fn not_primary_error(&self, held: &Held<'_, S>) -> Error {
        self.not_primary(&held.0)
    }

    /// Appends a command and waits until it is committed and applied.
    /// Returns its outcome and lsn.
    pub async fn submit(&self, command: Command) -> Result<(Outcome, Lsn)> {
        let (_, committed) = self.append(command)?;
        committed.wait().await
    }

    /// Appends a command and returns its position at once, with what to
    /// wait on for its commit.
    pub fn append(&self, command: Command) -> Result<(LogPos, Committed)> {
        self.append_entry(command)
    }
}
