//! `pygmy init`: writes the configuration of a cluster whose nodes run on
//! machines (or containers) of their own, the counterpart of the original's
//! `env.cfg` listing the machines of the five servers.
//!
//! Given the hosts, node *i* in the order front end, catalog replicas,
//! order replicas runs on host *i mod n* (so one host takes every node, and
//! five hosts take one each) on port `base_port + i`, the original's ports
//! (8010 to 8014) by default. Each node listens on `LISTEN_HOST:port`
//! (`0.0.0.0`, every interface, by default) and is advertised as
//! `HOST:port`; its data goes to `data_dir/NAME` where `data_dir` is
//! relative to the configuration file on the machine that runs it. The
//! tokens are fresh 128-bit secrets.
//!
//! `--frontends N` adds front ends `frontend-2` … `frontend-N` after the
//! replicas (the same placement rule goes on), and needs `--etcd URL,…`,
//! the etcd cluster they share their views through: `init` starts
//! nothing, so it cannot start an etcd as `pygmy up` does. The file is written only if it does
//! not exist, readable by its owner only unless `--readable` asks for more
//! (a container whose user is not the file's owner must read it).

use crate::config::{ClusterConfig, CoordinatorConfig, NodeSpec};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone, Debug)]
pub struct InitArgs {
    /// The hosts (names or addresses), comma-separated: node i goes to host
    /// i mod n, in the order frontend, catalog-1.., order-1...
    #[arg(long, value_delimiter = ',', required = true)]
    pub hosts: Vec<String>,
    /// Replicas per group, 1 to 9.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub replicas: u16,
    /// Port of the front end; the replicas take the following ones.
    #[arg(long, default_value_t = 8010, value_parser = clap::value_parser!(u16).range(1..=65515))]
    pub base_port: u16,
    /// Front ends, 1 to 9; more than one needs --etcd.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub frontends: u16,
    /// The client URLs of the etcd cluster the front ends share their views
    /// through, comma-separated (without it: the builtin coordinator, one
    /// front end).
    #[arg(long, value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// The address every node binds, with its own port.
    #[arg(long, default_value = "0.0.0.0")]
    pub listen_host: String,
    /// Where nodes keep their data (relative: to the configuration file's folder).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// The file to write (refused if it exists).
    #[arg(long, default_value = "pygmy.toml")]
    pub out: PathBuf,
    /// Let everyone read the file (mode 644), e.g. for containers running as
    /// another user; it holds the cluster's tokens.
    #[arg(long)]
    pub readable: bool,
}

/// The configuration `args` describe.
pub fn config(args: &InitArgs) -> Result<ClusterConfig, String> {
    let hosts: Vec<&str> = args.hosts.iter().map(|h| h.trim()).collect();
    if let Some(bad) = hosts.iter().find(|h| {
        h.is_empty() || h.contains(['/', ' ', '@']) || h.contains(':') && !h.starts_with('[')
    }) {
        return Err(format!(
            "--hosts: {bad:?} is not a host name or address (IPv6: in brackets, [::1])"
        ));
    }
    let token = |kind: &str| format!("{kind}-{:032x}", rand::random::<u128>());
    let mut cfg = ClusterConfig::local(
        args.data_dir.clone(),
        usize::from(args.replicas),
        args.base_port,
        token("internal"),
        token("admin"),
    );
    let place = |i: usize, n: &mut NodeSpec| -> Result<(), String> {
        let port = u16::try_from(i)
            .ok()
            .and_then(|i| args.base_port.checked_add(i))
            .ok_or_else(|| {
                format!(
                    "--base-port {}: no port left for {}",
                    args.base_port, n.name
                )
            })?;
        n.addr = format!("{}:{port}", hosts[i % hosts.len()]);
        n.listen = Some(format!("{}:{port}", args.listen_host));
        Ok(())
    };
    let frontends = usize::from(args.frontends);
    if frontends > 1 && args.etcd.is_empty() {
        return Err(format!(
            "--frontends {frontends} needs --etcd URL[,URL]: several front ends share their views \
             through etcd (`pygmy up` can start a local one; `init` starts nothing)"
        ));
    }
    if !args.etcd.is_empty() {
        cfg.coordinator = CoordinatorConfig::etcd(args.etcd.clone());
    }
    cfg.add_frontends(frontends);
    // The first front end and the replicas keep the places they have with
    // one front end; the others come after them.
    let (first, more) = cfg.frontends.split_at_mut(1);
    let nodes = first
        .iter_mut()
        .chain(cfg.catalog.iter_mut())
        .chain(cfg.order.iter_mut())
        .chain(more.iter_mut());
    for (i, n) in nodes.enumerate() {
        place(i, n)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// `pygmy init`: writes the file and says what it wrote.
pub fn run(args: &InitArgs) -> Result<(), String> {
    let cfg = config(args)?;
    write_new(
        &args.out,
        &cfg.to_toml(),
        if args.readable { 0o644 } else { 0o600 },
    )?;
    println!("wrote {}:", args.out.display());
    for n in cfg.nodes() {
        println!(
            "  {:<10} advertise {:<22} listen {:<16} data {}",
            n.name,
            n.addr,
            n.listen_addr(),
            cfg.data_dir.join(&n.name).display()
        );
    }
    println!(
        "on each machine: pygmy node --config {} --name NAME",
        args.out.display()
    );
    Ok(())
}

/// Writes a new file with `mode`, refusing to replace one.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // The umask may have taken bits `mode` asked for.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(hosts: &[&str]) -> InitArgs {
        InitArgs {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            replicas: 2,
            base_port: 8010,
            frontends: 1,
            etcd: Vec::new(),
            listen_host: "0.0.0.0".into(),
            data_dir: "data".into(),
            out: "unused".into(),
            readable: false,
        }
    }

    #[test]
    fn five_hosts_take_one_node_each_on_the_original_ports() {
        let cfg = config(&args(&["fe", "c1", "c2", "o1", "o2"])).unwrap();
        let placed: Vec<(&str, &str, &str)> = cfg
            .nodes()
            .map(|n| (n.name.as_str(), n.addr.as_str(), n.listen_addr()))
            .collect();
        assert_eq!(
            placed,
            [
                ("frontend", "fe:8010", "0.0.0.0:8010"),
                ("catalog-1", "c1:8011", "0.0.0.0:8011"),
                ("catalog-2", "c2:8012", "0.0.0.0:8012"),
                ("order-1", "o1:8013", "0.0.0.0:8013"),
                ("order-2", "o2:8014", "0.0.0.0:8014"),
            ]
        );
        assert_ne!(cfg.token, cfg.admin_token);
        // What it writes reads back the same.
        assert_eq!(ClusterConfig::from_toml(&cfg.to_toml()).unwrap(), cfg);
    }

    #[test]
    fn fewer_hosts_than_nodes_wrap_around() {
        let cfg = config(&args(&["a", "b"])).unwrap();
        let hosts: Vec<&str> = cfg.nodes().map(|n| n.addr.as_str()).collect();
        assert_eq!(hosts, ["a:8010", "b:8011", "a:8012", "b:8013", "a:8014"]);
    }

    #[test]
    fn more_front_ends_come_after_the_replicas_and_need_etcd() {
        let mut a = args(&["h"]);
        a.frontends = 3;
        let err = config(&a).unwrap_err();
        assert!(err.contains("--etcd"), "{err}");
        a.etcd = vec!["http://etcd:2379".into()];
        let cfg = config(&a).unwrap();
        let fronts: Vec<&str> = cfg.frontends.iter().map(|n| n.addr.as_str()).collect();
        assert_eq!(fronts, ["h:8010", "h:8015", "h:8016"]);
        assert_eq!(cfg.catalog[0].addr, "h:8011");
        assert_eq!(
            cfg.coordinator,
            CoordinatorConfig::etcd(vec!["http://etcd:2379".into()])
        );
        assert_eq!(ClusterConfig::from_toml(&cfg.to_toml()).unwrap(), cfg);
    }

    #[test]
    fn a_bad_host_is_named() {
        let err = config(&args(&["fe", "c1:99"])).unwrap_err();
        assert!(err.contains("c1:99"), "{err}");
        assert!(config(&args(&["fe", ""])).is_err());
    }
}
