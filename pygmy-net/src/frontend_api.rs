//! The front end serves the public API: [`PublicApi`] for
//! [`FrontEnd`], a thin forwarding layer.
//!
//! `health` is rendered to JSON here so the HTTP layer does not depend on
//! the shape of the front end's `Health`.

use crate::api::PublicApi;
use async_trait::async_trait;
use pygmy_core::unstable::frontend::FrontEnd;
use pygmy_core::unstable::state::command::Order;
use pygmy_core::unstable::transport::Transport;
use pygmy_core::unstable::types::{Book, ItemId, OrderId};
use pygmy_core::Result;

#[async_trait]
impl<T: Transport> PublicApi for FrontEnd<T> {
    async fn search(&self, topic: &str) -> Result<Vec<Book>> {
        FrontEnd::search(self, topic).await
    }
    async fn all_books(&self) -> Result<Vec<Book>> {
        FrontEnd::all_books(self).await
    }
    async fn lookup(&self, id: ItemId) -> Result<Book> {
        FrontEnd::lookup(self, id).await
    }
    async fn buy(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Order> {
        FrontEnd::buy(self, id, qty, key).await.map(|r| r.order)
    }
    async fn order(&self, id: OrderId) -> Result<Order> {
        FrontEnd::order(self, id).await
    }
    async fn restock(&self, id: ItemId, qty: u64, key: Option<String>) -> Result<Book> {
        FrontEnd::restock(self, id, qty, key).await
    }
    async fn set_price(&self, id: ItemId, cost: u64, key: Option<String>) -> Result<Book> {
        FrontEnd::set_price(self, id, cost, key).await
    }
    async fn add_book(&self, book: Book, key: Option<String>) -> Result<Book> {
        FrontEnd::add_book(self, book, key).await
    }
    fn health(&self) -> serde_json::Value {
        // `Health` is plain data (lists and records); encoding it cannot
        // fail, and if it ever did an explicit null is clearer than a panic.
        serde_json::to_value(FrontEnd::health(self)).unwrap_or(serde_json::Value::Null)
    }
    fn ready(&self) -> bool {
        FrontEnd::health(self).is_ready()
    }
}
