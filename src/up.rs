//! `pygmy up`: a local cluster of separate OS processes, one per node, as the
//! original's start script ran five servers.
//!
//! Each node is this same binary run as `pygmy node --config DIR/pygmy.toml
//! --name NAME`, with its data under `DIR/NAME/`, its log in `DIR/NAME.log`
//! and its pid in `DIR/NAME.pid` (see [`proc`]). `up` writes the
//! configuration it uses to `DIR/pygmy.toml` (reused when it exists, so a
//! second `up` on the same folder resumes the same cluster with its data),
//! waits for the front end to report both groups ready, prints a summary,
//! and stops every node on Ctrl-C or SIGTERM. A node that dies is reported,
//! not restarted: a crash is the user's experiment to run (`pygmy chaos`
//! restarts what it kills, and `up` notices the new process). A replica
//! that dies while the cluster starts is reported too, and the rest keep
//! running (one replica per group can serve); only the front end dying
//! stops `up`. Replicas whose disk is new or damaged (they rebuild from a
//! peer) are named in the summary.
//!
//! # Several front ends
//!
//! `--frontends N` (for a new folder) runs front ends `frontend-2` …
//! `frontend-N` beside the first, on the ports after the replicas'; they
//! share their views through etcd. `--etcd URL[,URL]` names an etcd
//! cluster to use; without it `up` starts a one-member etcd itself
//! ([`LocalEtcd`], from the `etcd` binary: `apt-get install etcd-server`)
//! on the two ports after the last front end, with its data in `DIR/etcd/`
//! and its log in `DIR/etcd/etcd.log`, its pid in `DIR/etcd.pid`, and
//! stops it with the cluster (also when `pygmy chaos --target etcd` killed
//! and restarted it: the pid file names the process to stop). A folder
//! whose `DIR/etcd/` exists gets its local etcd started again on resume.
//! With several front ends, reads go to each group's primary and each
//! front end caches under a lease from the catalog primary (see `config`'s
//! module docs).

use crate::config::{ClusterConfig, CoordinatorConfig};
use crate::proc::{self, Attach};
use pygmy_core::unstable::frontend::Health;
use pygmy_core::unstable::types::NodeId;
use pygmy_net::etcd::launch::INSTALL_HINT;
use pygmy_net::etcd::{LaunchError, LocalEtcd, LocalEtcdOptions};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct UpArgs {
    /// Folder for data, logs, pid files and the configuration.
    #[arg(long, default_value = "pygmy-data")]
    pub dir: PathBuf,
    /// Replicas per group, 1 to 9 (for a new folder; an existing pygmy.toml
    /// keeps its own).
    #[arg(long, default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_REPLICAS as u64))]
    pub replicas: usize,
    /// Port of the front end, 1 to 65515; replicas take the following ones
    /// (for a new folder; an existing pygmy.toml keeps its own).
    #[arg(long, default_value_t = 8010, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_BASE_PORT)))]
    pub base_port: u16,
    /// A JSON file of books to start from instead of the original's seven
    /// (for a new folder): `[{"id":1,"title":"…","cost":10,"count":5,"topic":"…"}]`.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Front ends, 1 to 9 (for a new folder). More than one share their
    /// views through etcd: --etcd, or a local etcd `up` starts.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_FRONTENDS as u64))]
    pub frontends: usize,
    /// Client URLs of an etcd cluster for the front ends' views,
    /// comma-separated (for a new folder). Without it, and with --frontends
    /// above 1, `up` starts a local etcd from the `etcd` binary.
    #[arg(long, value_delimiter = ',')]
    pub etcd: Vec<String>,
}

/// Most front ends `up` starts.
const MAX_FRONTENDS: usize = 9;

/// Most replicas per group `up` starts.
const MAX_REPLICAS: usize = 9;
/// Highest `--base-port`: up to 9 front ends, 2 × 9 replicas and a local
/// etcd's two ports take the ports from it on, with room to spare.
const MAX_BASE_PORT: u16 = u16::MAX - 40;

/// The running cluster's processes.
pub struct Cluster {
    pub config: ClusterConfig,
    pub config_path: PathBuf,
    pub children: Vec<(String, Child)>,
    /// The etcd `up` started (killed when dropped), if it started one.
    pub etcd: Option<LocalEtcd>,
}

/// The folder of the local etcd `up` runs for a cluster in `dir`.
pub fn etcd_dir(dir: &Path) -> PathBuf {
    dir.join("etcd")
}

/// The name the local etcd goes by in pid files (`DIR/etcd.pid`), in
/// `up`'s reports and as `pygmy chaos --target etcd`.
pub const ETCD: &str = "etcd";

/// True when this cluster's configuration runs a local etcd that `up`
/// starts (a folder made with `--frontends N` and no `--etcd`).
pub fn has_local_etcd(cfg: &ClusterConfig) -> bool {
    etcd_dir(&cfg.data_dir).is_dir() && matches!(cfg.coordinator, CoordinatorConfig::Etcd { .. })
}

/// The live pid of this cluster's local etcd, according to `DIR/etcd.pid`:
/// only an etcd process whose data folder is this cluster's counts, so a
/// stale pid file (or a pid reused by another program) gives `None`.
pub fn running_etcd_pid(cfg: &ClusterConfig) -> Option<u32> {
    let data = etcd_dir(&cfg.data_dir).join("data");
    proc::read_pid(cfg, ETCD)
        .filter(|pid| proc::has_args(*pid, &["--data-dir".as_ref(), data.as_os_str()]))
}

/// Records the local etcd's pid in `DIR/etcd.pid`.
pub fn write_etcd_pid(cfg: &ClusterConfig, pid: u32) -> Result<(), String> {
    let path = proc::pid_path(cfg, ETCD);
    fs::write(&path, format!("{pid}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A fresh secret: 128 bits from `rand`'s thread RNG, which is a CSPRNG
/// seeded by the operating system, so a token cannot be guessed from the
/// time or the pid.
fn fresh_token(kind: &str) -> String {
    format!("{kind}-{:032x}", rand::random::<u128>())
}

/// Reads the configuration `pygmy up` wrote to `DIR/pygmy.toml`.
/// The path returned is absolute, so nodes restarted from it run the very
/// command line `up` gave them.
pub fn read_config(dir: &Path) -> Result<(ClusterConfig, PathBuf), String> {
    let path = fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .join("pygmy.toml");
    if !path.exists() {
        return Err(format!(
            "{} does not exist (is there a cluster started with `pygmy up --dir {}`?)",
            path.display(),
            dir.display()
        ));
    }
    Ok((ClusterConfig::read(&path)?, path))
}

/// Loads `DIR/pygmy.toml`, or writes a new one for `args`.
pub fn prepare(args: &UpArgs) -> Result<(ClusterConfig, PathBuf), String> {
    // clap checks both flags (a bad one exits 2); `UpArgs` built in code
    // is checked here.
    if args.replicas == 0 || args.replicas > MAX_REPLICAS {
        return Err(format!("--replicas must be 1 to 9, got {}", args.replicas));
    }
    if args.frontends == 0 || args.frontends > MAX_FRONTENDS {
        return Err(format!(
            "--frontends must be 1 to {MAX_FRONTENDS}, got {}",
            args.frontends
        ));
    }
    if args.base_port == 0 || args.base_port > MAX_BASE_PORT {
        return Err(format!(
            "--base-port {} leaves no room for the replicas",
            args.base_port
        ));
    }
    fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let dir = fs::canonicalize(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let path = dir.join("pygmy.toml");
    if path.exists() {
        let (cfg, path) = read_config(&dir)?;
        let port = cfg
            .frontend()
            .addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok());
        if cfg.catalog.len() != args.replicas
            || port != Some(args.base_port)
            || cfg.frontends.len() != args.frontends
            || !args.etcd.is_empty()
        {
            eprintln!(
                "note: resuming the cluster of {} ({} replicas per group, {} front end(s), \
                 the first on {}); --replicas, --base-port, --frontends and --etcd apply to a \
                 new folder only",
                path.display(),
                cfg.catalog.len(),
                cfg.frontends.len(),
                cfg.frontend().addr
            );
        }
        return Ok((cfg, path));
    }
    let mut cfg = ClusterConfig::local(
        dir.clone(),
        args.replicas,
        args.base_port,
        fresh_token("internal"),
        fresh_token("admin"),
    );
    cfg.add_frontends(args.frontends);
    if !args.etcd.is_empty() {
        cfg.coordinator = CoordinatorConfig::etcd(args.etcd.clone());
    } else if args.frontends > 1 {
        // Said before the folder records a local etcd, so that the advice
        // (`--etcd`) still applies to this folder.
        if pygmy_net::etcd::launch::find_binary().is_none() {
            return Err(format!(
                "--frontends {} needs etcd, and no etcd binary was found: {INSTALL_HINT}; \
                 or pass --etcd URL[,URL] to use a running etcd",
                args.frontends
            ));
        }
        // A local etcd on the two ports after the last node's.
        let last = cfg
            .nodes()
            .filter_map(|n| n.addr.rsplit_once(':')?.1.parse::<u16>().ok())
            .max()
            .unwrap_or(args.base_port);
        let client = last.checked_add(1).ok_or("no port left for etcd")?;
        cfg.coordinator = CoordinatorConfig::etcd(vec![format!("http://127.0.0.1:{client}")]);
        fs::create_dir_all(etcd_dir(&dir))
            .map_err(|e| format!("cannot create {}: {e}", etcd_dir(&dir).display()))?;
    }
    if let Some(file) = &args.catalog {
        // Checked now, so a bad file is an error here, not a dead replica.
        crate::config::read_books(file).map_err(|e| format!("--catalog: {e}"))?;
        let absolute =
            fs::canonicalize(file).map_err(|e| format!("--catalog {}: {e}", file.display()))?;
        cfg.catalog_file = Some(absolute);
    }
    write_private(&path, &cfg.to_toml())?;
    Ok((cfg, path))
}

/// Writes a file only its owner can read: the configuration holds the tokens.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Starts every node, after checking that no node of this folder's
/// cluster is still running (a second `up` on the same folder would fail to
/// bind its ports, and then wrongly find the old cluster ready).
pub async fn start(args: &UpArgs) -> Result<Cluster, String> {
    let (config, config_path) = prepare(args)?;
    let running: Vec<String> = config
        .nodes()
        .filter_map(|n| {
            proc::running_pid(&config, &n.name).map(|pid| format!("{} (pid {pid})", n.name))
        })
        .collect();
    if !running.is_empty() {
        return Err(format!(
            "a cluster is already running in {}: {}; stop it first (Ctrl-C its `pygmy up`)",
            config.data_dir.display(),
            running.join(", ")
        ));
    }
    if let Some(pid) = running_etcd_pid(&config) {
        return Err(format!(
            "the local etcd of {} is still running (pid {pid}); stop it first (kill {pid})",
            config.data_dir.display()
        ));
    }
    let etcd = start_local_etcd(&config).await?;
    if let Some(pid) = etcd.as_ref().and_then(LocalEtcd::pid) {
        write_etcd_pid(&config, pid)?;
    }
    let mut children = Vec::new();
    for node in config.nodes() {
        match proc::spawn_node(&config, &config_path, &node.name, Attach::Group) {
            Ok(child) => children.push((node.name.clone(), child)),
            Err(e) => {
                stop(&config, &mut children);
                return Err(e);
            }
        }
    }
    Ok(Cluster {
        config,
        config_path,
        children,
        etcd,
    })
}

/// Starts the local etcd of a folder whose `DIR/etcd/` exists (made by
/// [`prepare`] when `up` is to run one), on the endpoint the configuration
/// names. `None` when the folder has no local etcd.
pub async fn start_local_etcd(cfg: &ClusterConfig) -> Result<Option<LocalEtcd>, String> {
    let dir = etcd_dir(&cfg.data_dir);
    if !dir.is_dir() {
        return Ok(None);
    }
    let CoordinatorConfig::Etcd { endpoints, .. } = &cfg.coordinator else {
        return Ok(None);
    };
    let endpoint = endpoints.first().ok_or("no etcd endpoint")?;
    let client: std::net::SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("local etcd endpoint {endpoint}: {e}"))?;
    let peer = std::net::SocketAddr::new(client.ip(), client.port().wrapping_add(1));
    let options = LocalEtcdOptions::new(&dir, client, peer);
    match LocalEtcd::start(options).await {
        Ok(etcd) => Ok(Some(etcd)),
        Err(LaunchError::NotInstalled) => Err(format!(
            "several front ends share their views through etcd, and no etcd binary was found: \
             {INSTALL_HINT}; or pass --etcd URL[,URL] to use a running etcd"
        )),
        Err(e) => Err(format!("cannot start the local etcd: {e}")),
    }
}

/// Stops every node of the cluster: its own children, and any node another
/// tool restarted (`pygmy chaos`), found through the pid files, the local
/// etcd's included (the etcd `up` started itself stops when its
/// [`LocalEtcd`] is dropped). Then removes the pid files.
pub fn stop(cfg: &ClusterConfig, children: &mut [(String, Child)]) {
    for (_, child) in children.iter_mut() {
        // `Child::kill` sends SIGKILL; a node needs no graceful stop to stay
        // correct (that is the point of the store), and SIGKILL cannot be
        // ignored by a hung process.
        let _ = child.kill();
    }
    for (_, child) in children.iter_mut() {
        let _ = child.wait();
    }
    for n in cfg.nodes() {
        if let Some(pid) = proc::running_pid(cfg, &n.name) {
            let _ = proc::signal(pid, "KILL");
        }
        let _ = fs::remove_file(proc::pid_path(cfg, &n.name));
    }
    if let Some(pid) = running_etcd_pid(cfg) {
        let _ = proc::signal(pid, "KILL");
    }
    let _ = fs::remove_file(proc::pid_path(cfg, ETCD));
}

/// The front end's `GET /health`, parsed.
pub async fn health(cfg: &ClusterConfig) -> Result<Health, String> {
    let url = format!("http://{}/health", cfg.frontend().addr);
    // 503 is the same page while the store cannot serve (for probes).
    match crate::http::get_json(&url).await? {
        (200 | 503, body) => serde_json::from_value(body).map_err(|e| format!("{url}: {e}")),
        (status, body) => Err(format!("{url} answered {status}: {body}")),
    }
}

/// Both groups serve (see [`Health::is_ready`]).
pub fn is_ready(health: &Health) -> bool {
    health.is_ready()
}

/// Ready, no replica down, and every replica a member of its group's view:
/// the cluster is back to full strength.
pub fn is_whole(cfg: &ClusterConfig, health: &Health) -> bool {
    is_ready(health)
        && health.down.is_empty()
        && cfg.catalog.iter().chain(cfg.order.iter()).all(|n| {
            let id = NodeId::new(&n.name);
            health.views.iter().any(|r| r.current.contains(&id))
        })
}

/// Asks the front end's `/health` until `done` holds, or `timeout` passes,
/// or `check` fails (it reports a node that died meanwhile).
pub async fn wait_health(
    cfg: &ClusterConfig,
    timeout: Duration,
    done: impl Fn(&Health) -> bool,
    mut check: impl FnMut() -> Result<(), String>,
) -> Result<Health, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        check()?;
        match health(cfg).await {
            Ok(h) if done(&h) => return Ok(h),
            Ok(h) => last = format!("not there yet: {}", summary(&h)),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("gave up after {timeout:?}; last: {last}"))
}

/// One line per group: `catalog: epoch 3, primary catalog-1, backups [catalog-2]`.
pub fn summary(health: &Health) -> String {
    let mut lines: Vec<String> = health
        .views
        .iter()
        .map(|r| {
            let v = &r.current;
            let backups: Vec<&str> = v.backups.iter().map(|b| b.as_str()).collect();
            format!(
                "{}: epoch {}{}, primary {}, backups [{}]",
                v.group,
                v.epoch,
                if r.is_confirmed() {
                    ""
                } else {
                    " (unconfirmed)"
                },
                v.primary,
                backups.join(", ")
            )
        })
        .collect();
    if health.down.is_empty() {
        lines.push("no replica down".into());
    } else {
        let down: Vec<&str> = health.down.iter().map(|n| n.as_str()).collect();
        lines.push(format!("down: {}", down.join(", ")));
    }
    if !health.recovering.is_empty() {
        let names: Vec<&str> = health.recovering.iter().map(|n| n.as_str()).collect();
        lines.push(format!(
            "recovering (disk new or damaged, rebuilding from its peer): {}",
            names.join(", ")
        ));
    }
    lines.join("; ")
}

/// Reports each replica of `children` that has exited, with the end of
/// its log, once (in `reported`); the rest of the cluster keeps running, as
/// one replica per group can serve. Fails if the front end exited: nothing
/// serves without it.
fn check_children(
    cfg: &ClusterConfig,
    children: &mut [(String, Child)],
    reported: &mut std::collections::BTreeSet<String>,
) -> Result<(), String> {
    for (name, child) in children.iter_mut() {
        if let Ok(Some(status)) = child.try_wait() {
            let what = format!(
                "{name} exited ({status}); the end of {}:\n{}",
                proc::log_path(cfg, name).display(),
                proc::log_tail(cfg, name, 5)
            );
            if cfg.frontends.len() == 1 && cfg.is_frontend(name) {
                return Err(what);
            }
            if reported.insert(name.clone()) {
                eprintln!("{what}\nthe rest of the cluster keeps running");
            }
        }
    }
    Ok(())
}

/// `pygmy up`, to the end.
pub async fn run(args: &UpArgs) -> Result<(), String> {
    let mut cluster = start(args).await?;
    let cfg = cluster.config.clone();
    println!("pygmy cluster in {}", cfg.data_dir.display());
    for n in cfg.nodes() {
        println!(
            "  {:<10} http://{}   log {}",
            n.name,
            n.addr,
            proc::log_path(&cfg, &n.name).display()
        );
    }
    let mut reported = std::collections::BTreeSet::new();
    let ready = wait_health(&cfg, Duration::from_secs(30), is_ready, || {
        check_children(&cfg, &mut cluster.children, &mut reported)
    })
    .await;
    if let Err(e) = ready {
        stop(&cfg, &mut cluster.children);
        return Err(format!("the cluster did not become ready: {e}"));
    }
    // Serving already; give the backups a moment to rejoin so the summary
    // shows the whole cluster (on a resume they catch up first).
    let whole = wait_health(
        &cfg,
        Duration::from_secs(10),
        |h| is_whole(&cfg, h),
        || check_children(&cfg, &mut cluster.children, &mut reported),
    )
    .await;
    match (whole, health(&cfg).await) {
        (Ok(h), _) | (Err(_), Ok(h)) => println!("ready: {}", summary(&h)),
        (Err(e), Err(_)) => {
            stop(&cfg, &mut cluster.children);
            return Err(format!("the cluster stopped answering: {e}"));
        }
    }
    if let Some(etcd) = &cluster.etcd {
        println!(
            "  {:<10} {}   log {}",
            "etcd",
            etcd.endpoint(),
            etcd.log_path().display()
        );
    }
    println!(
        "try: curl 'http://{}/lookup?id=1'   (Ctrl-C stops every node)",
        cfg.frontend().addr
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // The pid each node runs as, to notice one restarted by someone else.
    let mut known: BTreeMap<String, u32> = cluster
        .children
        .iter()
        .map(|(name, child)| (name.clone(), child.id()))
        .chain(running_etcd_pid(&cfg).map(|pid| (ETCD.to_string(), pid)))
        .collect();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => watch(&cfg, &mut cluster.children, &mut known),
        }
    }
    println!("stopping");
    stop(&cfg, &mut cluster.children);
    Ok(())
}

/// Reports nodes that exited (with their exit status when `up` started
/// them) and nodes that run again under a new pid (restarted by `chaos` or
/// by hand).
fn watch(
    cfg: &ClusterConfig,
    children: &mut Vec<(String, Child)>,
    known: &mut BTreeMap<String, u32>,
) {
    for (name, child) in children.iter_mut() {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!(
                "{name} exited ({status}); see {}",
                proc::log_path(cfg, name).display()
            );
            known.remove(name.as_str());
        }
    }
    children.retain_mut(|(_, c)| matches!(c.try_wait(), Ok(None)));
    let nodes = cfg
        .nodes()
        .map(|n| (n.name.clone(), proc::running_pid(cfg, &n.name)));
    let etcd = has_local_etcd(cfg).then(|| (ETCD.to_string(), running_etcd_pid(cfg)));
    for (name, running) in nodes.chain(etcd) {
        match (known.get(&name).copied(), running) {
            (old, Some(pid)) if old != Some(pid) => {
                eprintln!("{name} is running again (pid {pid})");
                known.insert(name, pid);
            }
            (Some(old), None) => {
                eprintln!("{name} stopped (pid {old})");
                known.remove(&name);
            }
            _ => {}
        }
    }
}
