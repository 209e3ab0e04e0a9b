//! Helpers for the CLI tests: a real `pygmy up` cluster on free ports in a
//! temporary folder, killed when dropped; a small HTTP client; and readers
//! of the replicas' state over the internal RPC.
//!
//! Waiting is always "poll until a condition holds, or fail after a generous
//! deadline": the tests assert what happened, never how fast.

#![allow(dead_code)] // each test file uses a different part of the helpers

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use pygmy::config::ClusterConfig;
use pygmy_core::unstable::frontend::Health;
use pygmy_core::unstable::state::State;
use pygmy_core::unstable::transport::message::{
    Query, QueryResult, ReplicaStatus, Request, Response,
};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long any one wait may take before the test fails. Generous: the
/// tests run on two shared cores, in debug builds.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The `pygmy` binary under test.
pub fn pygmy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pygmy"))
}

/// Ports handed out in this test process, so parallel tests never share.
static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A base port such that `base..base + count` can all be bound now.
///
/// Candidates lie below Linux's ephemeral range (32768 and up), where the
/// kernel also picks outgoing connections' source ports: a port checked
/// free there could be taken by any client socket before the node binds it.
/// Each candidate is bound (then dropped) to check it is free.
pub fn free_ports(count: u16) -> u16 {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let start = 20_000 + (std::process::id() % 500) as u16 * 20;
    let mut base = start;
    loop {
        let range = base..base + count;
        let free = range
            .clone()
            .all(|p| !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            taken.extend(range);
            return base;
        }
        base += count;
        if base > 32_000 {
            base = 15_000;
        }
        assert_ne!(base, start, "no {count} free consecutive ports");
    }
}

/// A cluster started with `pygmy up`, in a temporary folder. Dropping it
/// kills every node (by pid file, so nodes restarted by a test or by
/// `chaos` too) and the `up` process.
pub struct Cluster {
    pub dir: PathBuf,
    pub cfg: ClusterConfig,
    up: Child,
    /// Nodes the test restarted itself.
    restarted: Vec<Child>,
    tmp: Option<tempfile::TempDir>,
    http: Http,
}

impl Cluster {
    /// Starts `pygmy up` with two replicas per group and waits until both
    /// groups have a confirmed view.
    pub async fn start() -> Cluster {
        Self::start_with(5, &[]).await
    }

    /// Starts `pygmy up` with two replicas per group and `more` flags, on
    /// `ports` free consecutive ports, and waits as [`Cluster::start`] does.
    pub async fn start_with(ports: u16, more: &[&str]) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("pygmy-cli-")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let base = free_ports(ports);
        let out = std::fs::File::create(dir.join("up.out")).expect("up.out");
        let up = pygmy()
            .args(["up", "--dir"])
            .arg(&dir)
            .args(["--base-port", &base.to_string(), "--replicas", "2"])
            .args(more)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone"))
            .stderr(out)
            .spawn()
            .expect("start pygmy up");
        let cluster = Cluster {
            cfg: wait_for_config(&dir),
            dir,
            up,
            restarted: Vec::new(),
            tmp: Some(tmp),
            http: Http::new(),
        };
        cluster
            .wait_health("both groups confirmed", pygmy::up::is_ready)
            .await;
        // `up` treats a node dying before it printed "ready" as a failed
        // start and stops everything: wait for it, as a user would.
        let deadline = Instant::now() + PATIENCE;
        while !cluster.read("up.out").contains("\nready: ") {
            assert!(Instant::now() < deadline, "up never printed ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cluster
    }

    /// Stops the whole cluster as a user would (SIGTERM to `pygmy up`, which
    /// stops every node), runs `between` on the cluster's folder, then
    /// resumes it with `pygmy up --dir` and waits until both groups serve.
    pub async fn stop_and_resume(&mut self, between: impl FnOnce(&Path)) {
        self.stop();
        between(&self.dir);
        let out = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("up.out"))
            .expect("up.out");
        let printed = self.read("up.out").matches("\nready: ").count();
        self.up = pygmy()
            .args(["up", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone"))
            .stderr(out)
            .spawn()
            .expect("resume pygmy up");
        self.wait_health("both groups confirmed", pygmy::up::is_ready)
            .await;
        let deadline = Instant::now() + PATIENCE;
        while self.read("up.out").matches("\nready: ").count() <= printed {
            assert!(
                Instant::now() < deadline,
                "the resumed up never printed ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the whole cluster as a user would (SIGTERM to `pygmy up`) and
    /// waits until every node and the local etcd, if any, are gone.
    pub fn stop(&mut self) {
        pygmy::proc::signal(self.up.id(), "TERM").expect("SIGTERM to pygmy up");
        let deadline = Instant::now() + PATIENCE;
        while self.up.try_wait().expect("wait for up").is_none() {
            assert!(Instant::now() < deadline, "pygmy up did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        for n in self.cfg.nodes() {
            while pygmy::proc::running_pid(&self.cfg, &n.name).is_some() {
                assert!(Instant::now() < deadline, "{} did not stop", n.name);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        while let Some(pid) = pygmy::up::running_etcd_pid(&self.cfg) {
            assert!(
                Instant::now() < deadline,
                "the local etcd (pid {pid}) did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.cfg.frontend().addr)
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The live pid of node `name`.
    pub fn pid(&self, name: &str) -> u32 {
        pygmy::proc::running_pid(&self.cfg, name).unwrap_or_else(|| panic!("{name} is not running"))
    }

    /// Kills node `name` with SIGKILL.
    pub fn kill(&self, name: &str) {
        let pid = self.pid(name);
        pygmy::proc::signal(pid, "KILL").expect("kill -9");
        let deadline = Instant::now() + PATIENCE;
        while pygmy::proc::node_alive(pid, name) {
            assert!(Instant::now() < deadline, "{name} survived kill -9");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Restarts node `name` with the command line `pygmy up` uses.
    pub fn restart(&mut self, name: &str) {
        let child = pygmy::proc::spawn_node_with(
            std::path::Path::new(env!("CARGO_BIN_EXE_pygmy")),
            &self.cfg,
            &self.dir.join("pygmy.toml"),
            name,
            pygmy::proc::Attach::Detached,
        )
        .expect("restart the node");
        self.restarted.push(child);
    }

    /// The front end's health, once it answers.
    pub async fn health(&self) -> Option<Health> {
        let (status, body) = self.http.get(&self.url("/health")).await.ok()?;
        // 503: the same page while the store cannot serve.
        (status == 200 || status == 503).then(|| serde_json::from_value(body).ok())?
    }

    /// Polls `/health` until `done` holds.
    pub async fn wait_health(&self, what: &str, done: impl Fn(&Health) -> bool) -> Health {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(h) = self.health().await {
                if done(&h) {
                    return h;
                }
            }
            assert!(
                Instant::now() < deadline,
                "waited {PATIENCE:?} for {what}; last health: {:?}",
                self.health().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every replica up and in its group's confirmed view.
    pub async fn wait_whole(&self) -> Health {
        let cfg = self.cfg.clone();
        self.wait_health("every replica up and in its view", move |h| {
            pygmy::up::is_whole(&cfg, h)
        })
        .await
    }

    /// One internal RPC to node `name`, with the cluster's token.
    pub async fn rpc(&self, name: &str, request: &Request) -> Response {
        let addr = &self.cfg.node(name).expect("node").addr;
        let (status, body) = self
            .http
            .send(
                hyper::Method::POST,
                &format!("http://{addr}/internal/rpc"),
                &[("x-pygmy-token", &self.cfg.token)],
                Some(serde_json::to_value(request).expect("encode")),
            )
            .await
            .unwrap_or_else(|e| panic!("rpc to {name}: {e}"));
        assert_eq!(status, 200, "rpc to {name}: {body}");
        serde_json::from_value(body).expect("a Response")
    }

    /// Replica `name`'s status (a heartbeat without views changes nothing).
    pub async fn status(&self, name: &str) -> ReplicaStatus {
        match self
            .rpc(
                name,
                &Request::Heartbeat {
                    views: Vec::new(),
                    disks: None,
                    from: None,
                },
            )
            .await
        {
            Response::Status(s) => s,
            other => panic!("{name} answered a heartbeat with {other:?}"),
        }
    }

    /// Replica `name`'s committed state.
    pub async fn dump(&self, name: &str) -> State {
        match self.rpc(name, &Request::Read(Query::Dump)).await {
            Response::Read {
                result: QueryResult::State(state),
                ..
            } => *state,
            other => panic!("{name} answered a dump with {other:?}"),
        }
    }

    /// Waits until every replica of each group is at the same commit and no
    /// buy is pending, then returns every replica's state by name.
    pub async fn settled_states(&self) -> Vec<(String, State)> {
        self.wait_whole().await;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut states = Vec::new();
            let mut settled = true;
            for group in [&self.cfg.catalog, &self.cfg.order] {
                let mut commits = BTreeSet::new();
                for n in group {
                    commits.insert(self.status(&n.name).await.commit);
                    let state = self.dump(&n.name).await;
                    if let State::Orders(o) = &state {
                        settled &= o.pending().is_empty();
                    }
                    states.push((n.name.clone(), state));
                }
                settled &= commits.len() == 1;
            }
            if settled {
                return states;
            }
            assert!(Instant::now() < deadline, "the replicas did not settle");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A file of the cluster's folder (empty if missing).
    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }
}

/// `pygmy up` writes `pygmy.toml` first thing; read it once it is whole.
fn wait_for_config(dir: &Path) -> ClusterConfig {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok((cfg, _)) = pygmy::up::read_config(dir) {
            return cfg;
        }
        assert!(Instant::now() < deadline, "pygmy up wrote no config");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.cfg.nodes() {
            if let Some(pid) = pygmy::proc::running_pid(&self.cfg, &n.name) {
                let _ = pygmy::proc::signal(pid, "KILL");
            }
        }
        // The local etcd of `up --frontends N`, possibly restarted by
        // `chaos`: `up` is killed below, so it cannot stop it itself.
        if let Some(pid) = pygmy::up::running_etcd_pid(&self.cfg) {
            let _ = pygmy::proc::signal(pid, "KILL");
        }
        for child in self
            .restarted
            .iter_mut()
            .chain(std::iter::once(&mut self.up))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            // Keep the folder and show the logs: they explain the failure.
            if let Some(tmp) = self.tmp.take() {
                let kept = tmp.keep();
                eprintln!("cluster folder kept: {}", kept.display());
            }
            for file in ["up.out", "heartbeat.log", "frontend.log"] {
                let text = self.read(file);
                let lines: Vec<&str> = text.lines().collect();
                eprintln!("--- {file} (end)");
                for line in &lines[lines.len().saturating_sub(30)..] {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// A JSON-over-HTTP client of its own per test (a pooled client must not
/// outlive the runtime it was made on, and each test has its own).
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    pub async fn get(&self, url: &str) -> Result<(u16, serde_json::Value), String> {
        self.send(hyper::Method::GET, url, &[], None).await
    }

    /// Sends a request; the answer's status and its body as JSON (`Null`
    /// when it is not JSON).
    pub async fn send(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), String> {
        let mut request = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{url}: {e:?}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((
                status,
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            ))
        };
        tokio::time::timeout(Duration::from_secs(20), exchange)
            .await
            .map_err(|_| format!("{url}: no answer in 20 s"))?
    }
}
