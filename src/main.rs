//! `pygmy`: run a replicated book store, drive traffic at it, break it.
//!
//! ```text
//! pygmy up                          # a local cluster: front end + 2 catalog + 2 order replicas
//! pygmy up --frontends 3            # three front ends, their views in a local etcd
//! pygmy load --duration 10s         # client traffic; a latency table per operation
//! pygmy chaos --target each         # kill -9 and restart each replica under load; check nothing was lost
//! pygmy node --config F --name N    # one node, for machines of its own
//! pygmy init --hosts a,b,c,d,e      # write the configuration of a cluster on those hosts
//! pygmy check --config F            # is anything lost or diverged? (after faults)
//! pygmy probe URL                   # exit 0 on a 2xx answer (a container's health check)
//! ```
//!
//! Exit codes: 0 success; 1 the command failed (for `load`, a request
//! failed; for `chaos`, something was lost, diverged or did not recover);
//! 2 bad flags. See docs/CLI.md for a walk-through.

use clap::{Parser, Subcommand};
use pygmy::config::ClusterConfig;
use std::path::{Path, PathBuf};
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
    ///
    /// Runs the front end and N catalog and N order replicas, each as its own
    /// `pygmy node` process, on --base-port and the ports after it. Data, one
    /// log per node (NAME.log), pid files and the configuration (pygmy.toml,
    /// with the internal and admin tokens) go in --dir. Waits until both groups
    /// serve, prints the addresses and a health summary, reports nodes that
    /// die or are restarted, and stops every node on Ctrl-C or SIGTERM.
    /// Running it again on the same folder resumes the same cluster and data.
    /// --frontends N runs N front ends sharing their views through etcd
    /// (--etcd URL, or a local etcd `up` starts from the `etcd` binary).
    Up(pygmy::up::UpArgs),
    /// Drive client traffic at a front end and report throughput, latency and errors.
    ///
    /// --clients clients each send a request, wait for its answer and send the
    /// next, over pooled keep-alive connections, for --duration or --requests.
    /// --mix original repeats the original client's session (search a random
    /// topic, look up a result, buy it if in stock); --mix search=1,lookup=8,buy=1
    /// draws independent requests. The report has one line per operation:
    /// count, errors, requests per second, latency p50/p90/p99/p99.9/max, then
    /// the errors by kind (HTTP status, connect, timeout, io, bad answer).
    /// Exits 1 if any request failed (a 4xx such as a sold-out item is an
    /// error but not a failure). --url A,B,C spreads the clients over
    /// several front ends; a client whose front end fails sends the same
    /// request to the next (counted as failovers).
    Load(pygmy::load::LoadArgs),
    /// Kill and restart nodes of a `pygmy up` cluster under load; check nothing was lost.
    ///
    /// Reads DIR/pygmy.toml and the pid files, starts a load, and for each
    /// target kills the node with SIGKILL, keeps it dead for --downtime, and
    /// restarts it with the command line `up` uses. Reports per round the time
    /// to detect (the front end's /health shows it down), to fail over, and to
    /// resync (back in the view with the primary's commit), and the client
    /// requests during the outage. At the end it compares every replica's
    /// state over the internal RPC and checks that stock and orders balance
    /// and that every acknowledged order exists. Exits 1 if a request failed
    /// while the front end was up, or anything was lost or diverged.
    Chaos(pygmy::chaos::ChaosArgs),
    /// Write the configuration of a cluster whose nodes run on the given hosts.
    ///
    /// Node i (frontend, catalog-1.., order-1..) goes to host i mod n on port
    /// --base-port + i, listens on --listen-host and is advertised as
    /// HOST:PORT. Run each node with `pygmy node --config FILE --name NAME`
    /// (see docs/DEPLOY.md).
    Init(pygmy::init::InitArgs),
    /// Check a running cluster: replicas identical, stock and orders balance,
    /// acknowledged orders present. Exits 1 if anything is lost or diverged.
    Check(pygmy::check::CheckArgs),
    /// Ask an HTTP URL; exit 0 on a 2xx answer, 1 otherwise (a health check
    /// for images without curl).
    Probe(pygmy::probe::ProbeArgs),
    /// Run one node of a cluster described by a configuration file.
    ///
    /// What `pygmy up` starts for each node; use it to run nodes on machines
    /// of their own with a shared pygmy.toml. Logs to standard error, one
    /// line per event with time, node and level; RUST_LOG sets the level. The
    /// front end also appends its heartbeat lines to DATA_DIR/heartbeat.log.
    /// Stops on Ctrl-C or SIGTERM (a SIGKILL loses nothing acknowledged).
    Node {
        /// The cluster's configuration (TOML; `pygmy up` writes one as DIR/pygmy.toml).
        #[arg(long)]
        config: PathBuf,
        /// Which node of the configuration to run.
        #[arg(long)]
        name: String,
    },
}

/// Reads the configuration `pygmy node` runs from, checking it names `name`.
fn node_config(config: &Path, name: &str) -> Result<ClusterConfig, String> {
    let cfg = ClusterConfig::read(config)?;
    if cfg.node(name).is_none() {
        let names: Vec<&str> = cfg.nodes().map(|n| n.name.as_str()).collect();
        return Err(format!(
            "{} has no node named {name:?} (it has {})",
            config.display(),
            names.join(", ")
        ));
    }
    Ok(cfg)
}

async fn node(cfg: ClusterConfig, name: String) -> Result<(), String> {
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
    tokio::spawn(pygmy::malloc::trim_every(std::time::Duration::from_secs(5)));
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

/// Prints a verdict (as JSON or as text), and fails with its problem
/// count unless it is OK: the end of `pygmy check` and `pygmy chaos`.
fn print_verdict<R: serde::Serialize>(
    what: &str,
    json: bool,
    report: &R,
    text: String,
    ok: bool,
    problems: usize,
) -> Result<(), String> {
    if json {
        let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{text}");
    }
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: {problems} problems"))
    }
}

async fn check(args: &pygmy::check::CheckArgs) -> Result<(), String> {
    let report = pygmy::check::run(args).await?;
    let (ok, problems) = (report.ok, report.problems.len());
    print_verdict("check", args.json, &report, report.text(), ok, problems)
}

async fn chaos(args: &pygmy::chaos::ChaosArgs) -> Result<(), String> {
    let report = pygmy::chaos::run(args).await?;
    let (ok, problems) = (report.ok, report.problems.len());
    print_verdict("chaos", args.json, &report, report.text(), ok, problems)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Up(args) => runtime(0).and_then(|rt| rt.block_on(pygmy::up::run(&args))),
        Cmd::Node { config, name } => {
            pygmy::malloc::one_arena();
            raise_fd_limit();
            node_config(&config, &name)
                .and_then(|cfg| runtime(cfg.threads_of(&name))?.block_on(node(cfg, name)))
        }
        Cmd::Init(args) => pygmy::init::run(&args),
        Cmd::Check(args) => runtime(0).and_then(|rt| rt.block_on(check(&args))),
        Cmd::Probe(args) => runtime(1).and_then(|rt| {
            let line = rt.block_on(pygmy::probe::run(&args))?;
            println!("{line}");
            Ok(())
        }),
        Cmd::Load(args) => runtime(0).and_then(|rt| rt.block_on(load(&args))),
        Cmd::Chaos(args) => runtime(0).and_then(|rt| rt.block_on(chaos(&args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pygmy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises this process's open-file limit to its hard limit, so that a node
/// can hold its `limits.max_connections` (4,096 by default) where the soft
/// limit is the common 1,024 (Go's runtime does the same). Best effort: if
/// it fails, connections beyond the limit wait in the listen backlog.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A multi-threaded tokio runtime with `threads` workers (0: one per core).
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
