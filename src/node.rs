//! Runs one node of a cluster on real TCP and real files: the front end or a
//! replica, as its configuration says, until `shutdown` resolves.

use crate::config::ClusterConfig;
use pygmy_core::catalog::{Catalog, CatalogPolicy};
use pygmy_core::frontend::{Clock, FrontEnd};
use pygmy_core::logstore::LogStore;
use pygmy_core::orders::OrderLedger;
use pygmy_core::record::RecordFile;
use pygmy_core::replica::Replica;
use pygmy_core::state::State;
use pygmy_core::transport::Handler;
use pygmy_core::types::Group;
use pygmy_net::stdfs::StdFs;
use pygmy_net::{serve, tokio_transport, App, PublicApi};
use std::future::Future;
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Wall-clock milliseconds, for order timestamps.
pub fn wall_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    })
}

/// Serves node `name` of `cfg` until `shutdown` resolves.
pub async fn run_node(
    cfg: &ClusterConfig,
    name: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    let spec = cfg
        .node(name)
        .ok_or_else(|| format!("no node named {name:?} in the configuration"))?;
    let dir = cfg.data_dir.join(name);
    let transport = Arc::new(tokio_transport(cfg.addrs(), cfg.token.clone()));
    let listener = tokio::net::TcpListener::bind(&spec.addr)
        .await
        .map_err(|e| format!("{name}: cannot listen on {}: {e}", spec.addr))?;
    let app = match cfg.group_of(name) {
        None => {
            let records = RecordFile::new(StdFs, dir.join("views"));
            let fe = FrontEnd::new(
                cfg.frontend_config(),
                transport,
                Box::new(records),
                wall_clock(),
            )?;
            fe.start();
            App::new(fe.clone() as Arc<dyn Handler>, cfg.token.clone())
                .with_public(fe as Arc<dyn PublicApi>, cfg.admin_token.clone())
        }
        Some(group) => {
            let storage = LogStore::open(StdFs, &dir)?;
            let initial = match group {
                Group::Catalog => {
                    let policy = CatalogPolicy {
                        restock_on_empty: cfg.restock_on_empty.then_some(10),
                    };
                    State::Catalog(
                        Catalog::from_books(Catalog::builtin().all(), policy)
                            .map_err(|e| format!("built-in catalog: {e:?}"))?,
                    )
                }
                Group::Order => State::Orders(OrderLedger::new()),
            };
            let replica = Replica::start(
                cfg.replica_config(name, group),
                transport,
                Box::new(storage),
                initial,
                wall_clock(),
            )?;
            App::new(replica as Arc<dyn Handler>, cfg.token.clone())
        }
    };
    tracing::info!(node = name, addr = %spec.addr, "listening");
    serve(listener, Arc::new(app), shutdown).await;
    Ok(())
}
