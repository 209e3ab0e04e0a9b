//! STUB — being written (catalog state machine).
use crate::command::{CatalogCommand, CatalogOutcome};
use crate::types::{Book, ItemId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {}

impl Catalog {
    pub fn builtin() -> Self {
        todo!()
    }
    pub fn search(&self, _topic: &str) -> Vec<Book> {
        todo!()
    }
    pub fn lookup(&self, _id: ItemId) -> Option<Book> {
        todo!()
    }
    pub fn all(&self) -> Vec<Book> {
        todo!()
    }
    pub fn apply(&mut self, _cmd: &CatalogCommand) -> CatalogOutcome {
        todo!()
    }
}
