//! STUB — being written (order ledger).
use crate::command::{BuyStatus, Order, OrderCommand};
use crate::types::OrderId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLedger {}

impl OrderLedger {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn apply(&mut self, _cmd: &OrderCommand) -> BuyStatus {
        todo!()
    }
    pub fn order(&self, _id: OrderId) -> Option<Order> {
        todo!()
    }
    pub fn status(&self, _request: &str) -> Option<BuyStatus> {
        todo!()
    }
    pub fn orders(&self) -> Vec<Order> {
        todo!()
    }
    pub fn pending(&self) -> Vec<(String, u64, u64)> {
        todo!()
    }
}
