//! `pygmy up`: a local cluster of separate OS processes, one per node, as the
//! original's start script ran five servers.
//!
//! Each node is this same binary run as `pygmy node --config DIR/pygmy.toml
//! --name NAME`, with its data under `DIR/NAME/`, its log in `DIR/NAME.log`
//! and its pid in `DIR/NAME.pid`. `up` writes the configuration it uses to
//! `DIR/pygmy.toml` (reused when it exists, so a second `up` on the same
//! folder resumes the same cluster with its data), waits for the front end to
//! report both groups ready, prints a summary, and stops every node on
//! Ctrl-C or SIGTERM. A node that dies is reported (not restarted: a crash
//! is the user's experiment to run, see `pygmy chaos`).

use crate::config::ClusterConfig;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct UpArgs {
    /// Folder for data, logs, pid files and the configuration.
    #[arg(long, default_value = "pygmy-data")]
    pub dir: PathBuf,
    /// Replicas per group.
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// Port of the front end; replicas take the following ones.
    #[arg(long, default_value_t = 8010)]
    pub base_port: u16,
}

/// The running cluster's processes.
pub struct Cluster {
    pub config: ClusterConfig,
    pub config_path: PathBuf,
    pub children: Vec<(String, Child)>,
}

/// A random-enough token without a new dependency: time and pid, hashed.
fn fresh_token(kind: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{kind}-{nanos}-{}", std::process::id()).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{kind}-{h:016x}")
}

/// Loads `DIR/pygmy.toml`, or writes a new one for `args`.
pub fn prepare(args: &UpArgs) -> Result<(ClusterConfig, PathBuf), String> {
    if args.replicas == 0 || args.replicas > 9 {
        return Err(format!("--replicas must be 1 to 9, got {}", args.replicas));
    }
    if args.base_port == 0 || args.base_port > u16::MAX - 20 {
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
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cfg =
            ClusterConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok((cfg, path));
    }
    let cfg = ClusterConfig::local(
        dir.clone(),
        args.replicas,
        args.base_port,
        fresh_token("internal"),
        fresh_token("admin"),
    );
    fs::write(&path, cfg.to_toml()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((cfg, path))
}

/// Starts one node process, its output appended to `DIR/NAME.log`.
pub fn spawn_node(cfg: &ClusterConfig, config_path: &Path, name: &str) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the pygmy binary: {e}"))?;
    let log_path = cfg.data_dir.join(format!("{name}.log"));
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(exe)
        .arg("node")
        .arg("--config")
        .arg(config_path)
        .arg("--name")
        .arg(name)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let pid_path = cfg.data_dir.join(format!("{name}.pid"));
    fs::write(&pid_path, format!("{}\n", child.id()))
        .map_err(|e| format!("{}: {e}", pid_path.display()))?;
    Ok(child)
}

/// Starts every node.
pub fn start(args: &UpArgs) -> Result<Cluster, String> {
    let (config, config_path) = prepare(args)?;
    let mut children = Vec::new();
    for node in config.nodes() {
        match spawn_node(&config, &config_path, &node.name) {
            Ok(child) => children.push((node.name.clone(), child)),
            Err(e) => {
                stop(&mut children);
                return Err(e);
            }
        }
    }
    Ok(Cluster {
        config,
        config_path,
        children,
    })
}

/// Stops the processes (SIGTERM via `kill`, then waits), removes pid files.
pub fn stop(children: &mut [(String, Child)]) {
    for (_, child) in children.iter_mut() {
        // `Child::kill` sends SIGKILL; a node needs no graceful stop to stay
        // correct (that is the point of the store), and SIGKILL cannot be
        // ignored by a hung process.
        let _ = child.kill();
    }
    for (_, child) in children.iter_mut() {
        let _ = child.wait();
    }
}

/// Asks the front end's `/health` until both groups have a confirmed view.
pub async fn wait_ready(
    cfg: &ClusterConfig,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let url = format!("http://{}/health", cfg.frontend.addr);
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match crate::http::get_json(&url).await {
            Ok((200, health)) => {
                let views = health
                    .get("views")
                    .and_then(|v| v.as_array())
                    .cloned()
                    .unwrap_or_default();
                let confirmed = views.len() == 2
                    && views.iter().all(|r| {
                        r.get("confirmed").and_then(|c| c.get("epoch"))
                            == r.get("current").and_then(|c| c.get("epoch"))
                    });
                if confirmed {
                    return Ok(health);
                }
                last = "views not confirmed yet".into();
            }
            Ok((status, _)) => last = format!("health answered {status}"),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "the cluster did not become ready in {timeout:?}: {last}"
    ))
}

/// One line per group: `catalog: epoch 3, primary catalog-1, backups [catalog-2]`.
pub fn summary(health: &serde_json::Value) -> String {
    let mut lines = Vec::new();
    for r in health
        .get("views")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let v = &r["current"];
        lines.push(format!(
            "{}: epoch {}, primary {}, backups {}",
            v["group"].as_str().unwrap_or("?"),
            v["epoch"],
            v["primary"].as_str().unwrap_or("?"),
            v["backups"]
        ));
    }
    let down = health
        .get("down")
        .and_then(|d| d.as_array())
        .map_or(0, |d| d.len());
    lines.push(format!("{down} replicas down"));
    lines.join("; ")
}

/// `pygmy up`, to the end.
pub async fn run(args: &UpArgs) -> Result<(), String> {
    let mut cluster = start(args)?;
    println!("pygmy cluster in {}", cluster.config.data_dir.display());
    for n in cluster.config.nodes() {
        println!(
            "  {:<10} http://{}   log {}",
            n.name,
            n.addr,
            cluster
                .config
                .data_dir
                .join(format!("{}.log", n.name))
                .display()
        );
    }
    match wait_ready(&cluster.config, Duration::from_secs(30)).await {
        Ok(health) => println!("ready: {}", summary(&health)),
        Err(e) => {
            stop(&mut cluster.children);
            return Err(e);
        }
    }
    println!(
        "try: curl '{}/lookup?id=1'   (Ctrl-C stops every node)",
        format_args!("http://{}", cluster.config.frontend.addr)
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {
                for (name, child) in cluster.children.iter_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        eprintln!("{name} exited ({status}); see its log");
                    }
                }
                cluster.children.retain_mut(|(_, c)| matches!(c.try_wait(), Ok(None)));
            }
        }
    }
    println!("stopping");
    stop(&mut cluster.children);
    for n in cluster.config.nodes() {
        let _ = fs::remove_file(cluster.config.data_dir.join(format!("{}.pid", n.name)));
    }
    Ok(())
}
