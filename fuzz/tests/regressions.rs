//! Replays every saved input in `regressions/TARGET/` (inputs that once
//! crashed a check; `run.sh` copies new ones there) and `seeds/TARGET/` (the
//! hand-written starting inputs) through its fuzz check, on the stable
//! toolchain: a crash the fuzzer found once is a test from then on.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    for kind in ["regressions", "seeds"] {
        if let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) {
            inputs.extend(entries.map(|e| e.expect("a directory entry").path()));
        }
    }
    inputs.sort();
    for path in &inputs {
        let data = std::fs::read(path).expect("a saved input");
        eprintln!("{target}: {}", path.display());
        check(&data);
    }
    inputs.len()
}

#[test]
fn http_request_regressions() {
    assert!(replay("http_request", pygmy_fuzz::http_request) > 0);
}

#[test]
fn rpc_json_regressions() {
    assert!(replay("rpc_json", pygmy_fuzz::rpc_json) > 0);
}

#[test]
fn query_regressions() {
    assert!(replay("query", pygmy_fuzz::query) > 0);
}

#[test]
fn disk_regressions() {
    assert!(replay("disk", pygmy_fuzz::disk) > 0);
}
