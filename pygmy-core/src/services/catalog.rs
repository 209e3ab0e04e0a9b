//! The catalog group's service: catalog commands, catalog reads, and
//! keeping the front end's cache honest.
//!
//! The catalog primary records, for every committed change, the cache keys
//! it makes stale (the item's lookup and its topic's search) with the
//! change's lsn, as it applies the change (under the replica's lock, in log
//! order). Its pusher delivers them to the front end as `Invalidate
//! { keys, lsn }`, in order, merging what piled up meanwhile, and retrying
//! until delivered. A replica that stops serving drops what it had not
//! delivered: the next primary's pushes (and the front end's own rules, see
//! `frontend/reads/cache.rs`) take over.

use crate::error::{Error, Result};
use crate::replication::{Replica, Service};
use crate::state::command::{CatalogCommand, Command, Outcome};
use crate::state::State;
use crate::transport::message::{Query, QueryResult, Request, Response};
use crate::transport::Transport;
use crate::types::{CacheKey, Group, Lsn};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The catalog group's service (see the module docs).
#[derive(Default)]
pub struct CatalogService {
    /// Catalog primary: invalidations not yet delivered to the front end.
    /// Taken only with the replica held (see [`Replica::held`]), after it.
    outbox: Mutex<Vec<(Vec<CacheKey>, Lsn)>>,
}

/// The cache keys a committed catalog command makes stale: the item's lookup
/// and its topic's search.
fn invalidation_keys(state: &State, cmd: &CatalogCommand) -> Vec<CacheKey> {
    let item = match cmd {
        CatalogCommand::Reserve { item, .. }
        | CatalogCommand::Restock { item, .. }
        | CatalogCommand::SetPrice { item, .. } => *item,
        CatalogCommand::AddBook { book } => book.id,
        CatalogCommand::Keyed { change, .. } => return invalidation_keys(state, change),
        // Changes no book.
        CatalogCommand::Forget { .. } | CatalogCommand::Fence { .. } => return Vec::new(),
    };
    let State::Catalog(catalog) = state else {
        return Vec::new();
    };
    match catalog.lookup(item) {
        Some(book) => vec![CacheKey::Lookup(item), CacheKey::Search(book.topic)],
        None => vec![CacheKey::Lookup(item)],
    }
}

impl CatalogService {
    /// Catalog primary: delivers invalidations to the front end, in order.
    async fn pusher<T: Transport>(self: Arc<Self>, r: Arc<Replica<T>>) {
        let mut rx = r.subscribe();
        loop {
            let batch = {
                let held = r.held();
                let mut outbox = self.outbox.lock();
                if held.serving() {
                    std::mem::take(&mut *outbox)
                } else {
                    outbox.clear();
                    Vec::new()
                }
            };
            if batch.is_empty() {
                if rx.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let lsn = batch.iter().map(|(_, l)| *l).max().unwrap_or(0);
            let mut keys: Vec<_> = batch.iter().flat_map(|(k, _)| k.iter().cloned()).collect();
            keys.sort();
            keys.dedup();
            let request = Request::Invalidate { keys, lsn };
            let cfg = r.config();
            let delivered = r
                .transport()
                .call(&cfg.frontend, request, cfg.hop_timeout)
                .await;
            if delivered.is_err() {
                // Put them back in front, to be merged with newer ones.
                {
                    let held = r.held();
                    if held.serving() {
                        let mut outbox = self.outbox.lock();
                        let newer = std::mem::replace(&mut *outbox, batch);
                        outbox.extend(newer);
                    }
                }
                tokio::time::sleep(cfg.retry_delay).await;
            }
        }
    }
}

#[async_trait]
impl<T: Transport> Service<T> for CatalogService {
    async fn handle(
        &self,
        r: &Replica<T>,
        request: Request,
    ) -> std::result::Result<Result<Response>, Request> {
        Ok(match request {
            Request::Catalog(command) => match r.submit(Command::Catalog(command)).await {
                Ok((Outcome::Catalog(outcome), lsn)) => Ok(Response::Catalog { outcome, lsn }),
                Ok((other, _)) => Err(Error::Transport(format!("unexpected outcome {other:?}"))),
                Err(e) => Err(e),
            },
            Request::Buy { .. } => Err(Error::InvalidInput("buy sent to a catalog replica".into())),
            other => return Err(other),
        })
    }

    fn answer(&self, state: &State, query: Query) -> Result<QueryResult> {
        Ok(match (state, query) {
            (State::Catalog(c), Query::Search { topic }) => QueryResult::Books(c.search(&topic)),
            (State::Catalog(c), Query::Lookup { id }) => QueryResult::Book(c.lookup(id)),
            (State::Catalog(c), Query::AllBooks) => QueryResult::Books(c.all()),
            (_, q) => {
                return Err(Error::InvalidInput(format!(
                    "{q:?} is not served by the {} group",
                    Group::Catalog
                )))
            }
        })
    }

    fn committed(&self, state: &State, command: &Command, lsn: Lsn) {
        if let Command::Catalog(cmd) = command {
            let keys = invalidation_keys(state, cmd);
            if !keys.is_empty() {
                self.outbox.lock().push((keys, lsn));
            }
        }
    }

    fn stepped_down(&self) {
        self.outbox.lock().clear();
    }

    fn spawn(self: Arc<Self>, replica: Arc<Replica<T>>) -> Vec<JoinHandle<()>> {
        vec![tokio::spawn(self.pusher(replica))]
    }
}
