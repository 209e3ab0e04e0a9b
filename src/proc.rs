//! The node processes of a local cluster, as `pygmy up` leaves them: one
//! `pygmy node --config DIR/pygmy.toml --name NAME` process per node, its
//! pid in `DIR/NAME.pid`, its output appended to `DIR/NAME.log`.
//!
//! `up` starts them and `chaos` kills and restarts them, both through
//! [`spawn_node`], so a restarted node runs exactly the command line `up`
//! gave it. Signals are sent with `kill(2)` through `libc` (already a
//! dependency, for `mallopt`), not by running the `kill` program: no child
//! process per signal, and an error that says what failed.

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

/// Process `pid`'s arguments, from `/proc/PID/cmdline`: the one place
/// that reads `/proc`. `None` where there is no `/proc` (not Linux); no
/// arguments for a pid that is gone, or a zombie (whose command line is
/// empty).
fn proc_args(pid: u32) -> Option<Vec<Vec<u8>>> {
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return None;
    }
    let Ok(raw) = fs::read(proc_dir.join(pid.to_string()).join("cmdline")) else {
        return Some(Vec::new());
    };
    Some(raw.split(|b| *b == 0).map(<[u8]>::to_vec).collect())
}

/// True when `pid` is a live `pygmy node` process running node `name`.
///
/// On Linux this reads `/proc/PID/cmdline` (`proc_args`), so a pid file
/// left by a crash and a pid since reused by another program are told
/// apart (and a zombie counts as dead). Elsewhere it falls back to
/// `kill -0`, which only says the pid exists.
pub fn node_alive(pid: u32, name: &str) -> bool {
    match proc_args(pid) {
        Some(args) => ["node", "--name", name]
            .iter()
            .all(|wanted| args.iter().any(|a| a == wanted.as_bytes())),
        None => signal(pid, "0").is_ok(),
    }
}

/// True when process `pid` runs with `args` among its arguments, one after
/// another (Linux: from `/proc/PID/cmdline`; elsewhere only whether the pid
/// exists). For processes that are not nodes, such as `up`'s local etcd.
pub fn has_args(pid: u32, args: &[&std::ffi::OsStr]) -> bool {
    let Some(given) = proc_args(pid) else {
        return signal(pid, "0").is_ok();
    };
    let wanted: Vec<&[u8]> = args.iter().map(|a| a.as_encoded_bytes()).collect();
    !wanted.is_empty()
        && given
            .windows(wanted.len())
            .any(|w| w.iter().map(Vec::as_slice).eq(wanted.iter().copied()))
}

/// The live pid of node `name`, according to its pid file.
pub fn running_pid(cfg: &ClusterConfig, name: &str) -> Option<u32> {
    read_pid(cfg, name).filter(|pid| node_alive(*pid, name))
}

/// Sends `signal` to `pid` with `kill(2)`: `"KILL"` or `"9"`, `"TERM"` or
/// `"15"`, `"INT"` or `"2"` (a `SIG` prefix is allowed), or `"0"`, which
/// only asks whether the pid exists. Any other name, and pid 0 (which would
/// signal our own process group), is refused with an error naming it.
pub fn signal(pid: u32, signal: &str) -> Result<(), String> {
    let number = match signal.strip_prefix("SIG").unwrap_or(signal) {
        "KILL" | "9" => libc::SIGKILL,
        "TERM" | "15" => libc::SIGTERM,
        "INT" | "2" => libc::SIGINT,
        "0" => 0,
        other => return Err(format!("unknown signal {other:?}")),
    };
    let target = match libc::pid_t::try_from(pid) {
        Ok(target) if target > 0 => target,
        _ => return Err(format!("kill -{signal} {pid}: not a process id")),
    };
    // SAFETY: kill(2) takes two integers and touches none of our memory.
    if unsafe { libc::kill(target, number) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "kill -{signal} {pid}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_told_by_its_arguments_and_a_dead_one_is_not_alive() {
        // `sh -c CMD A B C` keeps A B C in its command line ($0, $1, $2).
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30", "node", "--name", "catalog-1"])
            .spawn()
            .expect("run sh");
        let pid = child.id();
        let args = |a: &[&str]| -> Vec<std::ffi::OsString> { a.iter().map(Into::into).collect() };
        let has = |a: &[&str]| {
            let owned = args(a);
            let refs: Vec<&std::ffi::OsStr> = owned.iter().map(|s| s.as_os_str()).collect();
            has_args(pid, &refs)
        };
        // Until the child has exec'd, its command line is still ours.
        let alive = (0..1000).any(|_| {
            let alive = node_alive(pid, "catalog-1");
            if !alive {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            alive
        });
        assert!(alive, "sh never showed its arguments");
        assert!(has(&["--name", "catalog-1"]));
        if Path::new("/proc/self").exists() {
            // Where /proc tells: the wrong name, or the arguments out of
            // order, do not match.
            assert!(!node_alive(pid, "catalog-2"));
            assert!(!has(&["catalog-1", "--name"]));
        }
        child.kill().expect("kill sh");
        child.wait().expect("reap sh");
        assert!(!node_alive(pid, "catalog-1"));
        assert!(!has(&["--name", "catalog-1"]));
    }

    #[test]
    fn signal_zero_tells_a_live_pid_from_a_dead_one() {
        assert_eq!(signal(std::process::id(), "0"), Ok(()));
        let mut child = Command::new("true").spawn().expect("run true");
        let pid = child.id();
        child.wait().expect("reap true");
        let err = signal(pid, "0").expect_err("a reaped child is gone");
        assert!(err.contains(&pid.to_string()), "{err}");
    }

    #[test]
    fn unknown_signals_and_pid_zero_are_refused() {
        let err = signal(std::process::id(), "HUP?").unwrap_err();
        assert!(err.contains("unknown signal"), "{err}");
        let err = signal(0, "KILL").unwrap_err();
        assert!(err.contains("not a process id"), "{err}");
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
