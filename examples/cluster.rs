//! The five nodes of a local Pygmy cluster in one process, on the original's
//! ports: front end on 8010, catalog replicas on 8011/8012, order replicas on
//! 8013/8014, data under `./pygmy-data` (or the folder given as argument).
//!
//! ```text
//! cargo run --example cluster
//! curl '127.0.0.1:8010/lookup?id=1'
//! ```
//!
//! Stop it with Ctrl-C; run it again and it resumes with the data it had.

use pygmy::config::ClusterConfig;
use pygmy::node::run_node;
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("pygmy-data"));
    let cfg = ClusterConfig::local(
        dir,
        2,
        8010,
        "local-internal-token".into(),
        "local-admin-token".into(),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut nodes = tokio::task::JoinSet::new();
    for node in cfg.nodes() {
        let (cfg, name, mut stop) = (cfg.clone(), node.name.clone(), stop_rx.clone());
        println!("{:<10} http://{}", node.name, node.addr);
        nodes.spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = run_node(&cfg, &name, shutdown).await {
                eprintln!("{name}: {e}");
            }
        });
    }
    println!("try: curl '127.0.0.1:8010/lookup?id=1'   (Ctrl-C stops)");
    tokio::signal::ctrl_c().await?;
    let _ = stop_tx.send(true);
    while nodes.join_next().await.is_some() {}
    Ok(())
}
