//! The front end's writes: buys (under a request id, retried until
//! answered; see "Fresh reads" in `mod.rs` for the invalidation each answer
//! carries) and the catalog's admin changes, sent only to the primary of a
//! confirmed view.

use super::*;

impl<T: Transport> FrontEnd<T> {
    /// A fresh request id for a buy without an idempotency key: this front
    /// end's name, time, a counter and randomness. The name makes ids of
    /// different front ends differ whatever their clocks and seeds: names
    /// are unique in a cluster's configuration, and an id gives its name
    /// back (what lies between `fe-` and the last three `-`-separated
    /// fields, which hold no `-`), so ids with different names differ.
    /// Time, counter and randomness make one front end's ids differ across
    /// its restarts.
    pub(super) fn new_request_id(&self) -> RequestId {
        let mut inner = self.inner.lock();
        inner.counter += 1;
        let salt: u64 = inner.rng.gen();
        format!(
            "fe-{}-{}-{}-{:016x}",
            self.cfg.me,
            (self.clock)(),
            inner.counter,
            salt
        )
    }

    /// `buy(id)`: buys `qty` copies exactly once per request id.
    ///
    /// A key used before for another buy (item or quantity) is refused as
    /// `KeyReused`, and one whose other buy is still running on the order
    /// primary as `Conflict`; neither buys anything (see `services/buy.rs`).
    pub async fn buy(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Receipt> {
        if qty == 0 {
            return Err(Error::InvalidInput("qty must be at least 1".into()));
        }
        let request = match key {
            Some(k) if k.is_empty() || k.len() > MAX_KEY_LEN => {
                return Err(Error::InvalidInput(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"
                )))
            }
            Some(k) => k,
            None => self.new_request_id(),
        };
        let deadline = Instant::now() + self.cfg.request_deadline;
        loop {
            let Some(primary) = self.writable_primary(Group::Order) else {
                self.wait_for_change(deadline).await?;
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let call = Request::Buy {
                request: request.clone(),
                item: id,
                qty,
            };
            let reply = self
                .buys
                .call(
                    self.transport.as_ref(),
                    &primary,
                    call,
                    self.cfg.buy_timeout.min(left),
                )
                .await;
            match reply {
                Ok(Response::Buy {
                    status: BuyStatus::Done(done),
                    catalog_lsn,
                    lsn,
                }) => {
                    self.inner.lock().seen.raise(Group::Order, lsn);
                    self.bought(id, &done, catalog_lsn).await.map_err(|e| {
                        Error::Unavailable(format!(
                            "buy {request} is done but its effect could not be confirmed \
                             ({e}); retry with the same Idempotency-Key"
                        ))
                    })?;
                    return done.map(|order| Receipt { order }).map_err(Error::from);
                }
                Ok(Response::Buy { .. }) => {}
                Ok(other) => return Err(crate::transport::unexpected("buy", &other)),
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "buy {request} not finished in time; retry with the same Idempotency-Key"
                )));
            }
            tokio::time::sleep(self.cfg.retry_delay).await;
        }
    }

    /// Before a buy's answer leaves: later reads of its item must show
    /// what the buy did to it. With the reservation's commit lsn and the
    /// item's topic (a successful buy's order names it), that is one
    /// invalidation. A refused buy may have restocked its item (the
    /// original's rule) and names no topic, and a buy finished earlier (a
    /// retry) comes without the lsn: then the item is read afresh, at or
    /// past the lsn, or from the primary when the lsn is unknown (a serving
    /// primary has committed every reservation), and invalidated at that
    /// read's lsn.
    pub(super) async fn bought(
        &self,
        id: ItemId,
        done: &std::result::Result<Order, crate::state::command::Rejection>,
        catalog_lsn: Option<Lsn>,
    ) -> Result<()> {
        use crate::state::command::Rejection;
        match (done, catalog_lsn) {
            (Ok(order), Some(lsn)) => {
                self.invalidate_item(order.item_id, Some(order.topic.clone()), lsn);
                Ok(())
            }
            (Ok(order), None) => self.reread_item(order.item_id, None).await,
            (Err(Rejection::OutOfStock(_)), at) => self.reread_item(id, at).await,
            // Nothing changed.
            (Err(_), _) => Ok(()),
        }
    }

    /// Reads `item` at or past `at` (from the primary if `None`), and
    /// invalidates its keys at the lsn read.
    pub(super) async fn reread_item(&self, item: ItemId, at: Option<Lsn>) -> Result<()> {
        let (route, at_least) = match at {
            Some(lsn) => (Route::Balanced, lsn),
            None => (Route::Primary, 0),
        };
        let query = Query::Lookup { id: item };
        let (result, lsn) = self.read(Group::Catalog, query, route, at_least).await?;
        let topic = match result {
            QueryResult::Book(book) => book.map(|b| b.topic),
            other => {
                return Err(Error::Transport(format!(
                    "unexpected lookup result {other:?}"
                )))
            }
        };
        self.invalidate_item(item, topic, lsn);
        Ok(())
    }

    /// Drops an item's cached reads before a write's answer leaves, and
    /// raises the catalog's `seen` to the write's commit lsn.
    pub(super) fn invalidate_item(&self, item: ItemId, topic: Option<String>, lsn: Lsn) {
        let mut keys = vec![CacheKey::Lookup(item)];
        if let Some(t) = topic {
            keys.push(CacheKey::Search(t));
        }
        let mut inner = self.inner.lock();
        inner.seen.raise(Group::Catalog, lsn);
        inner.cache.invalidate(&keys, lsn);
    }

    /// A catalog change through the catalog primary. Retried only while it
    /// certainly was not applied (`NotPrimary`, no primary yet).
    pub(super) async fn catalog_write(&self, command: CatalogCommand) -> Result<Book> {
        let deadline = Instant::now() + self.cfg.request_deadline;
        loop {
            let Some(primary) = self.writable_primary(Group::Catalog) else {
                self.wait_for_change(deadline).await?;
                continue;
            };
            let reply = self
                .transport
                .call(
                    &primary,
                    Request::Catalog(command.clone()),
                    self.cfg.hop_timeout,
                )
                .await;
            match reply {
                Ok(Response::Catalog {
                    outcome: CatalogOutcome::Changed(changed),
                    lsn,
                }) => {
                    if let Ok(book) = &changed {
                        self.invalidate_item(book.id, Some(book.topic.clone()), lsn);
                    }
                    return changed.map_err(Error::from);
                }
                Ok(other) => return Err(crate::transport::unexpected("catalog write", &other)),
                Err(Error::NotPrimary { .. }) | Err(Error::StaleEpoch { .. }) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Unavailable("no catalog primary".into()));
                    }
                    tokio::time::sleep(self.cfg.retry_delay).await;
                }
                Err(e) if e.is_retryable() => {
                    return Err(Error::Unavailable(format!(
                        "catalog write outcome unknown ({e}); check the book before retrying"
                    )))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Adds `qty` copies; once per `key` (see [`FrontEnd::set_price`]).
    pub async fn restock(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Book> {
        self.catalog_write(keyed(CatalogCommand::Restock { item: id, qty }, key)?)
            .await
    }

    /// Sets the price. With a `key` the change applies once however often
    /// it is retried (a retry gets the first answer; the key with another
    /// change is refused as `KeyReused`), as buys do; the catalog keeps
    /// the newest keys (see `catalog.rs`).
    pub async fn set_price(&self, id: ItemId, cost: u64, key: Option<String>) -> Result<Book> {
        self.catalog_write(keyed(CatalogCommand::SetPrice { item: id, cost }, key)?)
            .await
    }

    /// Adds a book; once per `key` (see [`FrontEnd::set_price`]).
    pub async fn add_book(&self, book: Book, key: Option<String>) -> Result<Book> {
        self.catalog_write(keyed(CatalogCommand::AddBook { book }, key)?)
            .await
    }
}

/// `change` under the client's idempotency `key`, if any.
fn keyed(change: CatalogCommand, key: Option<String>) -> Result<CatalogCommand> {
    match key {
        None => Ok(change),
        Some(k) if k.is_empty() || k.len() > MAX_KEY_LEN => Err(Error::InvalidInput(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"
        ))),
        Some(key) => Ok(CatalogCommand::Keyed {
            key,
            change: Box::new(change),
        }),
    }
}
