//! `pygmy`: run a replicated book store.
//!
//! ```text
//! pygmy up                      # a local cluster: front end + 2 catalog + 2 order replicas
//! pygmy node --config F --name N   # one node, for machines of its own
//! ```

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "pygmy", version, about = "A replicated book store")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a local cluster (separate processes) and keep it running until Ctrl-C.
    Up(pygmy::up::UpArgs),
    /// Drive client traffic at a front end and report throughput, latency and errors.
    Load(pygmy::load::LoadArgs),
    /// Kill and restart nodes of a `pygmy up` cluster under load; check nothing was lost.
    Chaos(pygmy::chaos::ChaosArgs),
    /// Run one node of a cluster described by a configuration file.
    Node {
        /// The cluster's configuration (TOML; `pygmy up` writes one as DIR/pygmy.toml).
        #[arg(long)]
        config: PathBuf,
        /// Which node of the configuration to run.
        #[arg(long)]
        name: String,
    },
}

async fn node(config: PathBuf, name: String) -> Result<(), String> {
    let text = std::fs::read_to_string(&config)
        .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let cfg = pygmy::config::ClusterConfig::from_toml(&text)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    if cfg.node(&name).is_none() {
        let names: Vec<&str> = cfg.nodes().map(|n| n.name.as_str()).collect();
        return Err(format!(
            "{} has no node named {name:?} (it has {})",
            config.display(),
            names.join(", ")
        ));
    }
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", cfg.data_dir.display()))?;
    let heartbeat_log = (cfg.group_of(&name).is_none()).then(|| cfg.data_dir.join("heartbeat.log"));
    pygmy::node::init_logs(&name, heartbeat_log.as_deref())?;
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    pygmy::node::run_node(&cfg, &name, shutdown)
        .await
        .map_err(|e| e.to_string())
}

async fn load(args: &pygmy::load::LoadArgs) -> Result<(), String> {
    let report = pygmy::load::run(args).await?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", report.table());
    }
    match report.total.failed {
        0 => Ok(()),
        n => Err(format!("{n} requests failed")),
    }
}

async fn chaos(args: &pygmy::chaos::ChaosArgs) -> Result<(), String> {
    let report = pygmy::chaos::run(args).await?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", report.text());
    }
    if report.ok {
        Ok(())
    } else {
        Err(format!("chaos: {} problems", report.problems.len()))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Up(args) => pygmy::up::run(&args).await,
        Cmd::Node { config, name } => node(config, name).await,
        Cmd::Load(args) => load(&args).await,
        Cmd::Chaos(args) => chaos(&args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pygmy: {e}");
            ExitCode::FAILURE
        }
    }
}
