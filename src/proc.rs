//! The node processes of a local cluster, as `pygmy up` leaves them: one
//! `pygmy node --config DIR/pygmy.toml --name NAME` process per node, its
//! pid in `DIR/NAME.pid`, its output appended to `DIR/NAME.log`.
//!
//! `up` starts them and `chaos` kills and restarts them, both through
//! [`spawn_node`], so a restarted node runs exactly the command line `up`
//! gave it. Signals go through the `kill` command rather than `libc`: the
//! tool sends a handful of them, and one command is simpler than an unsafe
//! binding.

use crate::config::ClusterConfig;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where node `name` of `cfg` writes its pid.
pub fn pid_path(cfg: &ClusterConfig, name: &str) -> PathBuf {
    cfg.data_dir.join(format!("{name}.pid"))
}

/// Where node `name` of `cfg` writes its log.
pub fn log_path(cfg: &ClusterConfig, name: &str) -> PathBuf {
    cfg.data_dir.join(format!("{name}.log"))
}

/// The pid recorded for node `name`, if its pid file exists and parses.
pub fn read_pid(cfg: &ClusterConfig, name: &str) -> Option<u32> {
    fs::read_to_string(pid_path(cfg, name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// True when `pid` is a live `pygmy node` process running node `name`.
///
/// On Linux this reads `/proc/PID/cmdline`, so a pid file left by a crash
/// and a pid since reused by another program are told apart (and a zombie,
/// whose command line is empty, counts as dead). Elsewhere it falls back to
/// `kill -0`, which only says the pid exists.
pub fn node_alive(pid: u32, name: &str) -> bool {
    let proc_dir = Path::new("/proc");
    if proc_dir.join("self").exists() {
        let Ok(raw) = fs::read(proc_dir.join(pid.to_string()).join("cmdline")) else {
            return false;
        };
        let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
        let has = |s: &str| args.contains(&s.as_bytes());
        return has("node") && has("--name") && has(name);
    }
    signal(pid, "0").is_ok()
}

/// The live pid of node `name`, according to its pid file.
pub fn running_pid(cfg: &ClusterConfig, name: &str) -> Option<u32> {
    read_pid(cfg, name).filter(|pid| node_alive(*pid, name))
}

/// Sends `signal` (`"9"`, `"TERM"`, `"0"`, ...) to `pid` with `kill`.
pub fn signal(pid: u32, signal: &str) -> Result<(), String> {
    let out = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kill -{signal} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// How a node process is attached to the one that starts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// In the starter's process group: a Ctrl-C in the terminal reaches it
    /// too (`up`, which stops every node anyway).
    Group,
    /// In a process group of its own, so it outlives a Ctrl-C of the tool
    /// that restarted it (`chaos`); `up` still stops it through its pid file.
    Detached,
}

/// Starts node `name` as `pygmy node --config CONFIG --name NAME` (this
/// very binary), its output appended to its log, and writes its pid file.
pub fn spawn_node(
    cfg: &ClusterConfig,
    config_path: &Path,
    name: &str,
    attach: Attach,
) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the pygmy binary: {e}"))?;
    spawn_node_with(&exe, cfg, config_path, name, attach)
}

/// [`spawn_node`] with the `pygmy` binary given (for a program that is not
/// `pygmy` itself, such as a test).
pub fn spawn_node_with(
    exe: &Path,
    cfg: &ClusterConfig,
    config_path: &Path,
    name: &str,
    attach: Attach,
) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let log_path = log_path(cfg, name);
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command
        .arg("node")
        .arg("--config")
        .arg(config_path)
        .arg("--name")
        .arg(name)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    if attach == Attach::Detached {
        command.process_group(0);
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let pid_path = pid_path(cfg, name);
    fs::write(&pid_path, format!("{}\n", child.id()))
        .map_err(|e| format!("{}: {e}", pid_path.display()))?;
    Ok(child)
}

/// The last `n` lines of node `name`'s log (to show why it stopped).
pub fn log_tail(cfg: &ClusterConfig, name: &str, n: usize) -> String {
    let text = fs::read_to_string(log_path(cfg, name)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
