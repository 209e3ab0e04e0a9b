//! Pygmy embedded in a program: the replicated store (front end, two
//! catalog and two order replicas) in one process over the in-process
//! transport, with a replica crash and restart in the middle.
//!
//! ```text
//! cargo run --example embedded
//! ```

use pygmy_core::embedded::{Embedded, EmbeddedOptions};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Embedded::start(EmbeddedOptions::default())?;
    store.wait_ready(Duration::from_secs(5)).await?;
    let fe = store.frontend.clone();

    for book in fe.search("distributed systems").await? {
        println!(
            "{:>2}  {:<55} ${:<3} {} left",
            book.id, book.title, book.cost, book.count
        );
    }
    let receipt = fe.buy(2, 1, Some("my-first-order".into())).await?;
    println!(
        "bought {:?} as order {}",
        receipt.order.title, receipt.order.id
    );

    // Crash the order primary; the next buy fails over to the backup.
    let primary = fe
        .health()
        .views
        .iter()
        .find(|r| r.current.group == pygmy_core::types::Group::Order)
        .map(|r| r.current.primary.clone())
        .expect("the order group has a view");
    println!("crashing {primary}");
    store.crash(&primary);
    let receipt = fe.buy(2, 1, None).await?;
    println!(
        "bought again as order {} during the failover",
        receipt.order.id
    );
    store.restart(&primary)?;
    println!(
        "{primary} restarted; book 2 has {} copies left",
        fe.lookup(2).await?.count
    );
    Ok(())
}
