//! [`LocalEtcd`]: a single-member etcd started from the `etcd` binary, for
//! tests, benchmarks and `pygmy up` on one machine.
//!
//! The member listens on loopback ports given by the caller (or free ones,
//! [`LocalEtcdOptions::on_free_ports`]), keeps its data in `<dir>/data` and
//! writes its log to `<dir>/etcd.log`. [`LocalEtcd::start`] returns once the
//! member answers a read through [`Etcd`], so the caller can use it at
//! once; it fails with [`LaunchError::NotInstalled`] (naming the package to
//! install) when there is no binary, and with the log's tail when etcd
//! exits or does not answer in time. Dropping a [`LocalEtcd`] kills its
//! process: no etcd outlives the test or command that started it.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::client::{Etcd, EtcdConfig};

/// The environment variable that names the etcd binary, when it is not
/// `etcd` on `PATH`.
pub const BINARY_ENV: &str = "PYGMY_ETCD_BIN";

/// How to get the binary, in every "not installed" message.
pub const INSTALL_HINT: &str = "install it with `apt-get install etcd-server` (Debian, Ubuntu), \
     or put an `etcd` binary (3.4 or newer) on PATH, or name one in PYGMY_ETCD_BIN";

/// How long a new member may take to answer: etcd 3.4 on one member elects
/// itself within one election timeout of starting; a slow, shared disk or
/// CPU can stretch its start to seconds.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a local etcd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("no etcd binary found: {INSTALL_HINT}")]
    NotInstalled,
    #[error("cannot run {binary}: {error}")]
    Spawn { binary: PathBuf, error: io::Error },
    #[error("cannot prepare {path}: {error}")]
    Folder { path: PathBuf, error: io::Error },
    #[error("etcd exited ({status}) while starting; the end of {log}:\n{tail}")]
    Exited {
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("etcd did not answer within {timeout:?}; the end of {log}:\n{tail}")]
    NotReady {
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },
}

/// Where and how to run the member.
#[derive(Debug, Clone)]
pub struct LocalEtcdOptions {
    /// The etcd binary (`None`: [`find_binary`]).
    pub binary: Option<PathBuf>,
    /// The member's folder: `data/` and `etcd.log` go in it.
    pub dir: PathBuf,
    /// The member's name (etcd's `--name`).
    pub name: String,
    /// Where clients connect (the HTTP/JSON gateway is on the same port).
    pub client_addr: SocketAddr,
    /// Where peers would connect (a single member still needs one).
    pub peer_addr: SocketAddr,
    /// Raft heartbeat and election timeout. Shorter ones (10 ms / 100 ms)
    /// let a test use 1-second leases, etcd's minimum TTL being about 1.5
    /// election timeouts; the defaults (100 ms / 1000 ms) are etcd's own.
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    pub ready_timeout: Duration,
    /// More flags for etcd, after the ones above (`--metrics extensive`,
    /// `--quota-backend-bytes …`).
    pub extra_args: Vec<String>,
}

impl LocalEtcdOptions {
    /// A member in `dir` on the given ports, with etcd's default timing.
    pub fn new(dir: impl Into<PathBuf>, client_addr: SocketAddr, peer_addr: SocketAddr) -> Self {
        LocalEtcdOptions {
            binary: None,
            dir: dir.into(),
            name: "pygmy-etcd".into(),
            client_addr,
            peer_addr,
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            extra_args: Vec::new(),
        }
    }

    /// A member in `dir` on two free loopback ports.
    pub fn on_free_ports(dir: impl Into<PathBuf>) -> io::Result<Self> {
        Ok(Self::new(dir, free_loopback_addr()?, free_loopback_addr()?))
    }

    /// Fast timing (10 ms heartbeats, 100 ms election timeout): leases of
    /// one second, and a restarted member that leads again within ~0.1 s.
    pub fn fast(mut self) -> Self {
        self.heartbeat = Duration::from_millis(10);
        self.election_timeout = Duration::from_millis(100);
        self
    }
}

/// A running local etcd member. Killed when dropped.
#[derive(Debug)]
pub struct LocalEtcd {
    options: LocalEtcdOptions,
    binary: PathBuf,
    child: Option<Child>,
}

impl LocalEtcd {
    /// Starts a member on free loopback ports, in a new folder
    /// `parent/member-N`, with `adjust` applied to its options (e.g.
    /// [`LocalEtcdOptions::fast`]). Ports are picked, then bound by etcd a
    /// moment later, and another process may take one in between (etcd
    /// then exits): so up to three tries, each on new ports and in a new
    /// folder (a failed member's data names its old ports). For tests and
    /// benchmarks, which start many members at once.
    pub async fn start_on_free_ports(
        parent: &Path,
        adjust: impl Fn(LocalEtcdOptions) -> LocalEtcdOptions,
    ) -> Result<Self, LaunchError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let dir = parent.join(format!("member-{tries}"));
            let options = LocalEtcdOptions::on_free_ports(&dir)
                .map_err(|error| LaunchError::Folder { path: dir, error })?;
            match Self::start(adjust(options)).await {
                Err(LaunchError::Exited { .. }) if tries < 3 => continue,
                started => return started,
            }
        }
    }

    /// Starts the member and waits until it answers.
    pub async fn start(options: LocalEtcdOptions) -> Result<Self, LaunchError> {
        let binary = match &options.binary {
            Some(binary) => binary.clone(),
            None => find_binary().ok_or(LaunchError::NotInstalled)?,
        };
        let mut etcd = LocalEtcd {
            options,
            binary,
            child: None,
        };
        etcd.restart().await?;
        Ok(etcd)
    }

    /// The client URL, `http://host:port`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.options.client_addr)
    }

    /// The etcd process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The options it runs with.
    pub fn options(&self) -> &LocalEtcdOptions {
        &self.options
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.options.dir.join("etcd.log")
    }

    /// Leaves the process running when this value is dropped, and returns
    /// its pid: for a tool that restarts a member and exits before it
    /// (`pygmy chaos`), whose owner (`pygmy up`) stops it later through a
    /// pid file.
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|child| child.id())
    }

    /// `kill -9`: the process dies at once, as in a crash; its data stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL; an error means it already exited, which is fine.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the process on the same data and ports (killing it
    /// first if it runs) and waits until it answers.
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        self.kill();
        let o = &self.options;
        let data = o.dir.join("data");
        fs::create_dir_all(&o.dir).map_err(|error| LaunchError::Folder {
            path: o.dir.clone(),
            error,
        })?;
        let log_path = self.log_path();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|error| LaunchError::Folder {
                path: log_path.clone(),
                error,
            })?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let stderr = log.try_clone().map_err(|error| LaunchError::Folder {
            path: log_path.clone(),
            error,
        })?;
        let client = format!("http://{}", o.client_addr);
        let peer = format!("http://{}", o.peer_addr);
        let child = Command::new(&self.binary)
            .arg("--name")
            .arg(&o.name)
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("{}={peer}", o.name))
            .arg("--heartbeat-interval")
            .arg(o.heartbeat.as_millis().to_string())
            .arg("--election-timeout")
            .arg(o.election_timeout.as_millis().to_string())
            .args(&o.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|error| LaunchError::Spawn {
                binary: self.binary.clone(),
                error,
            })?;
        self.child = Some(child);
        self.wait_ready(log_start).await
    }

    /// Polls with reads until one succeeds, the process exits, or the
    /// ready timeout passes.
    async fn wait_ready(&mut self, log_start: u64) -> Result<(), LaunchError> {
        let mut config = EtcdConfig::new([self.endpoint()]);
        config.connect_timeout = Duration::from_millis(100);
        config.request_timeout = Duration::from_millis(500);
        let client = Etcd::new(config).expect("a loopback endpoint is valid");
        let deadline = tokio::time::Instant::now() + self.options.ready_timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(LaunchError::Exited {
                        status,
                        log: self.log_path(),
                        tail: log_tail(&self.log_path(), log_start),
                    });
                }
            }
            if client.get(b"pygmy/ready-probe").await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let tail = log_tail(&self.log_path(), log_start);
                self.kill();
                return Err(LaunchError::NotReady {
                    timeout: self.options.ready_timeout,
                    log: self.log_path(),
                    tail,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The etcd binary: `PYGMY_ETCD_BIN` if set, else `etcd` on `PATH`.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        let path = PathBuf::from(path);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A loopback address whose port was free a moment ago (the OS picks it;
/// another process could take it before etcd binds it, in which case etcd
/// exits and [`LocalEtcd::start`] says so).
pub fn free_loopback_addr() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The last lines this run wrote to the log, for an error message.
fn log_tail(path: &Path, from: u64) -> String {
    const TAIL_BYTES: u64 = 2000;
    let Ok(mut file) = File::open(path) else {
        return String::from("(no log)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = from.max(len.saturating_sub(TAIL_BYTES));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_ok() {
        let _ = file.take(TAIL_BYTES).read_to_end(&mut bytes);
    }
    // The cut may fall inside a character.
    String::from_utf8_lossy(&bytes).into_owned()
}
