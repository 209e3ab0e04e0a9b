//! The `durable` example's scenario, on a fresh folder: an order bought
//! under a key survives a stop and a start of the whole store on the same
//! files, and retrying the buy under that key answers the same order.

/// The `durable` example's own code.
#[allow(dead_code)]
#[path = "../examples/durable.rs"]
mod example;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_survives_a_restart_of_the_durable_store_and_its_key_buys_once() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (first, second) = example::scenario(dir.path(), |_| {})
        .await
        .expect("the scenario runs");
    assert_eq!(first, second, "the retried buy made a second order");
    assert_eq!(first.item_id, 3);
    // A second run on the same folder: the key still names that order, and
    // the book lost exactly one copy in all.
    let (third, fourth) = example::scenario(dir.path(), |_| {})
        .await
        .expect("the scenario runs again");
    assert_eq!(third, first);
    assert_eq!(fourth, first);
}
