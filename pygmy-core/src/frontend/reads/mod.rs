//! The front end's read side: the read path (`search`, `lookup`,
//! `all_books`, `order`; see "Fresh reads" in `frontend/mod.rs` for why
//! each is linearizable), the cache of committed values ([`cache`]), the
//! choice of the replica that answers ([`balancer`]) and the batching of
//! concurrent reads to one replica ([`batcher`]).

pub mod balancer;
pub mod batcher;
pub mod cache;

use crate::frontend::*;

impl<T: Transport> FrontEnd<T> {
    /// A read of committed state from a live member of `group`'s view, at
    /// a commit point of at least the group's `seen` (and `at_least`): it
    /// reflects every write this front end acknowledged and every state a
    /// read showed before it was sent. The caller raises `seen` to the
    /// answer's lsn before it answers its client.
    pub(super) async fn read(
        &self,
        group: Group,
        query: Query,
        route: Route,
        at_least: Lsn,
    ) -> Result<(QueryResult, Lsn)> {
        let deadline = Instant::now() + self.cfg.request_deadline;
        // With cache leases, only the catalog primary answers catalog reads
        // (see `services/leases.rs`).
        let leased = self.cfg.leased && group == Group::Catalog;
        let route = if self.cfg.primary_reads || leased {
            Route::Primary
        } else {
            route
        };
        let mut tried: Vec<NodeId> = Vec::new();
        loop {
            let pick = {
                let mut guard = self.inner.lock();
                let inner = &mut *guard;
                // Unknown until the group's primary told us its commit
                // point (after a start): wait for the heartbeat to learn it.
                let min = inner.seen.get(group).map(|seen| seen.max(at_least));
                let (detector, balancer) = (&inner.detector, &mut inner.balancer);
                let record = inner.records.get(&group);
                let candidates = record
                    .into_iter()
                    .flat_map(|r| {
                        // A primary's commit point covers every write only
                        // once its view is confirmed (and `seen` learnt
                        // its adopted log end).
                        let primary = &r.current.primary;
                        let confirmed = r.is_confirmed();
                        r.current.members().filter(move |m| {
                            route == Route::Balanced || (confirmed && *m == primary)
                        })
                    })
                    .filter(|m| detector.is_up(m));
                let pick = match min {
                    Some(min) => balancer.pick(candidates, &tried).map(|n| (n, min)),
                    None => None,
                };
                if let Some((node, _)) = &pick {
                    inner.balancer.start(node);
                }
                pick
            };
            let Some((node, min)) = pick else {
                self.wait_for_change(deadline).await?;
                tried.clear();
                continue;
            };
            let reply = {
                // Ends the read's count on drop too: a caller that goes away
                // mid-read must not leave the node looking busy forever.
                let _outstanding = Outstanding {
                    fe: self,
                    node: &node,
                };
                let timeout = self.cfg.hop_timeout;
                if Batcher::batchable(&query) {
                    let transport = self.transport.as_ref();
                    self.batcher
                        .read(transport, &node, query.clone(), min, timeout)
                        .await
                } else {
                    let request = Request::ReadAt {
                        query: query.clone(),
                        min,
                    };
                    match self.transport.call(&node, request, timeout).await {
                        Ok(Response::Read { result, lsn }) => Ok((result, lsn)),
                        Ok(other) => Err(crate::transport::unexpected("read", &other)),
                        Err(e) => Err(e),
                    }
                }
            };
            match reply {
                Ok(answer) => return Ok(answer),
                Err(e) if e.is_retryable() => tried.push(node),
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn cached(&self, key: &CacheKey) -> Option<CachedValue> {
        let mut inner = self.inner.lock();
        if !inner.may_serve_cache(&self.cfg) {
            return None;
        }
        inner.cache.get(key)
    }

    /// `search(topic)`: the books of a topic (empty when the topic is unknown).
    pub async fn search(&self, topic: &str) -> Result<Vec<Book>> {
        let key = CacheKey::Search(topic.to_string());
        if let Some(CachedValue::Books(books)) = self.cached(&key) {
            return Ok(books);
        }
        let query = Query::Search {
            topic: topic.to_string(),
        };
        match self.read(Group::Catalog, query, Route::Balanced, 0).await? {
            (QueryResult::Books(books), lsn) => {
                let shown: Vec<CacheKey> = books.iter().map(|b| CacheKey::Lookup(b.id)).collect();
                let mut inner = self.inner.lock();
                inner.seen.raise(Group::Catalog, lsn);
                inner.cache.saw(&shown, lsn);
                if !books.is_empty() {
                    inner
                        .cache
                        .fill(key, CachedValue::Books(books.clone()), lsn);
                }
                Ok(books)
            }
            (other, _) => Err(Error::Transport(format!(
                "unexpected search result {other:?}"
            ))),
        }
    }

    /// `lookup(id)`: one book, with its stock and cost.
    pub async fn lookup(&self, id: ItemId) -> Result<Book> {
        let key = CacheKey::Lookup(id);
        if let Some(CachedValue::Book(book)) = self.cached(&key) {
            return Ok(book);
        }
        let query = Query::Lookup { id };
        match self.read(Group::Catalog, query, Route::Balanced, 0).await? {
            (QueryResult::Book(Some(book)), lsn) => {
                let shown = [CacheKey::Search(book.topic.clone())];
                let mut inner = self.inner.lock();
                inner.seen.raise(Group::Catalog, lsn);
                inner.cache.saw(&shown, lsn);
                inner.cache.fill(key, CachedValue::Book(book.clone()), lsn);
                Ok(book)
            }
            (QueryResult::Book(None), lsn) => {
                self.inner.lock().seen.raise(Group::Catalog, lsn);
                Err(Error::NotFound(format!("item {id} not found")))
            }
            (other, _) => Err(Error::Transport(format!(
                "unexpected lookup result {other:?}"
            ))),
        }
    }

    /// Every book (uncached; for admin views and checks).
    pub async fn all_books(&self) -> Result<Vec<Book>> {
        let read = self.read(Group::Catalog, Query::AllBooks, Route::Balanced, 0);
        match read.await? {
            (QueryResult::Books(books), lsn) => {
                let mut shown: Vec<CacheKey> =
                    books.iter().map(|b| CacheKey::Lookup(b.id)).collect();
                shown.extend(books.iter().map(|b| CacheKey::Search(b.topic.clone())));
                let mut inner = self.inner.lock();
                inner.seen.raise(Group::Catalog, lsn);
                inner.cache.saw(&shown, lsn);
                Ok(books)
            }
            (other, _) => Err(Error::Transport(format!("unexpected result {other:?}"))),
        }
    }

    /// One order by id.
    pub async fn order(&self, id: OrderId) -> Result<Order> {
        let query = Query::Order { id };
        let (result, lsn) = self.read(Group::Order, query, Route::Balanced, 0).await?;
        self.inner.lock().seen.raise(Group::Order, lsn);
        match result {
            QueryResult::Order(Some(order)) => Ok(order),
            QueryResult::Order(None) => Err(Error::NotFound(format!("order {id} not found"))),
            other => Err(Error::Transport(format!("unexpected result {other:?}"))),
        }
    }
}
