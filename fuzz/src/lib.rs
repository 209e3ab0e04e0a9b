//! # Pygmy's fuzz checks
//!
//! One function per fuzz target, each taking the fuzzer's bytes and
//! panicking only when Pygmy misbehaves: the targets in `fuzz_targets/` call
//! these under libFuzzer (`cargo fuzz run NAME`, or `run.sh` for all of them
//! for a bounded time), and `tests/regressions.rs` replays every input saved
//! in `regressions/NAME/` through the same function on the stable toolchain,
//! so a crash once found stays fixed.
//!
//! What each target covers:
//!
//! - [`http_request`]: every byte Pygmy's HTTP layer parses itself — paths,
//!   ids, query strings, JSON bodies, the headers it reads (tokens,
//!   `Idempotency-Key`, `Content-Length`), and the internal RPC's JSON —
//!   through a real front end over an in-memory replicated store. A request
//!   must get an answer with a JSON body (none for `HEAD`), and never a 5xx
//!   other than 503 (no replica could serve).
//! - [`rpc_json`]: the internal messages' JSON decoders alone (faster than
//!   going through HTTP, so the fuzzer reaches deeper into the types).
//! - [`query`]: query-string and id parsing alone.
//!
//! - [`disk`]: every file a replica or the front end reads back — the log,
//!   `log.prev`, the snapshot, the view, the disk identity, the order
//!   archive, the front end's view record — taken from a real store and
//!   damaged (flipped bytes, cut tails, lost files, arbitrary bytes, and
//!   well-framed records with damaged payloads), then opened. Opening
//!   fails cleanly or sets the damage aside; what loads is a log in lsn
//!   order without gaps, following on from the snapshot.

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use pygmy_core::unstable::store::{Embedded, EmbeddedOptions};
use pygmy_core::unstable::transport::message::{Request, Response};
use pygmy_core::unstable::transport::Handler;
use pygmy_net::App;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The admin token of the fuzzed front end (the fuzzer may find it: admin
/// routes are part of the surface).
pub const ADMIN_TOKEN: &str = "fuzz-admin";
/// The internal RPC token of the fuzzed front end.
pub const INTERNAL_TOKEN: &str = "fuzz-internal";

/// The routes a fuzzed request starts from; `{}` takes the fuzzed fill, and
/// routes without it get the fill appended, so paths and queries nobody
/// listed are reached too.
const ROUTES: &[&str] = &[
    "/search?topic={}",
    "/lookup?id={}",
    "/buy?id={}",
    "/books",
    "/books?topic={}",
    "/books/{}",
    "/books/{}/buy",
    "/books/{}/price",
    "/books/{}/restock",
    "/orders/{}",
    "/health",
    "/internal/rpc",
    "/{}",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"];

/// Headers the store reads; others are passed too, under fuzzed names.
const HEADERS: &[&str] = &[
    "authorization",
    "x-pygmy-token",
    "idempotency-key",
    "content-type",
    "content-length",
    "x-request-id",
];

#[derive(Arbitrary, Debug)]
enum Token {
    None,
    Admin,
    Internal,
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
struct HttpInput {
    method: u8,
    route: u8,
    fill: String,
    token: Token,
    headers: Vec<(u8, String, Vec<u8>)>,
    body: Vec<u8>,
}

struct Store {
    runtime: tokio::runtime::Runtime,
    app: App,
    /// Keeps the replicas running.
    _cluster: Embedded,
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let cluster = runtime.block_on(async {
            let cluster = Embedded::start(EmbeddedOptions::default()).expect("embedded cluster");
            cluster
                .wait_ready(Duration::from_secs(10))
                .await
                .expect("embedded cluster ready");
            cluster
        });
        let frontend = cluster.frontend.clone();
        let app = App::new(frontend.clone() as Arc<dyn Handler>, INTERNAL_TOKEN)
            .with_public(frontend, ADMIN_TOKEN);
        Store {
            runtime,
            app,
            _cluster: cluster,
        }
    })
}

/// One request through the front end's HTTP application.
pub fn http_request(data: &[u8]) {
    let Ok(input) = HttpInput::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let method = METHODS[input.method as usize % METHODS.len()];
    let route = ROUTES[input.route as usize % ROUTES.len()];
    let target = if route.contains("{}") {
        route.replace("{}", &input.fill)
    } else {
        format!("{route}{}", input.fill)
    };
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(target.as_str());
    match &input.token {
        Token::None => {}
        Token::Admin => builder = builder.header("authorization", format!("Bearer {ADMIN_TOKEN}")),
        Token::Internal => builder = builder.header("x-pygmy-token", INTERNAL_TOKEN),
        Token::Fuzzed(value) => builder = builder.header("authorization", value.as_str()),
    }
    for (which, name, value) in input.headers.iter().take(16) {
        let name = match HEADERS.get(*which as usize) {
            Some(known) => known,
            None => name.as_str(),
        };
        builder = builder.header(name, value.as_slice());
    }
    // A request hyper itself would refuse (bad URI, header name or value)
    // never reaches Pygmy's code.
    let Ok(request) = builder.body(Full::new(Bytes::from(input.body))) else {
        return;
    };
    let store = store();
    let response = store.runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), store.app.respond(request))
            .await
            .expect("every request is answered")
    });
    let status = response.status();
    // The pages and the metrics are HTML and text; every other answer is JSON.
    let json = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let path = target.split('?').next().unwrap_or_default().to_string();
    assert!(
        json || ["/", "/index.html", "/ops", "/metrics"].contains(&path.as_str()),
        "{method} {target}: {status} answered without a JSON content type"
    );
    assert!(
        !status.is_server_error() || status == hyper::StatusCode::SERVICE_UNAVAILABLE,
        "{method} {target}: answered {status}"
    );
    let body = store
        .runtime
        .block_on(response.into_body().collect())
        .expect("a response body")
        .to_bytes();
    if method == "HEAD" || !json {
        return;
    }
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
        "{method} {target}: {status} with a body that is not JSON: {body:?}"
    );
}

/// The internal messages' JSON: decoding fails cleanly or gives a value that
/// encodes again.
pub fn rpc_json(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<Request>(data) {
        serde_json::to_vec(&request).expect("a decoded request encodes");
    }
    if let Ok(response) = serde_json::from_slice::<Response>(data) {
        serde_json::to_vec(&response).expect("a decoded response encodes");
    }
}

/// Query strings and ids: parsing never fails or panics, and a parsed id
/// prints back as the digits it came from.
pub fn query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let params = pygmy_net::query::Params::parse(Some(&text));
    for name in ["id", "topic", ""] {
        if let Some(value) = params.get(name) {
            if let Ok(id) = pygmy_net::api::parse_id(value) {
                // Only plain decimal digits are an id: no sign, no spaces.
                let digits = value.trim_start_matches('0');
                let expected = if digits.is_empty() { "0" } else { digits };
                assert_eq!(id.to_string(), expected, "id {value:?} parsed as {id}");
            }
        }
    }
    let _ = pygmy_net::query::decode(&text);
}

/// The folder the disk target's store lives in.
const DIR: &str = "/data/replica";
/// The front end's view record, beside it.
const VIEWS: &str = "/data/frontend/views";
/// The files a replica's folder may hold (see `logstore.rs`), and the
/// front end's view record.
const FILES: &[&str] = &[
    "log", "snapshot", "log.prev", "log.next", "view", "disk-id", "orders", VIEWS,
];

/// How one file of a real store is damaged.
#[derive(Arbitrary, Debug)]
enum Damage {
    /// XOR one byte (a flipped bit anywhere).
    Flip { file: u8, at: u32, mask: u8 },
    /// Cut the file (a torn or lost tail).
    Truncate { file: u8, at: u32 },
    /// Lose the file.
    Remove { file: u8 },
    /// Arbitrary bytes in its place.
    Replace { file: u8, bytes: Vec<u8> },
    /// Records with valid framing (length and CRC) around arbitrary
    /// payloads: reaches the decoders behind the CRC check.
    Records { file: u8, payloads: Vec<Vec<u8>> },
    /// One byte of one record's payload changed, and the record framed
    /// again with a valid CRC: a well-formed file holding a payload that
    /// is almost, but not quite, what the store wrote.
    EditRecord {
        file: u8,
        record: u8,
        at: u32,
        byte: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct DiskInput {
    damage: Vec<Damage>,
    /// What the order archive's caller expects of it (from the snapshot).
    mark: (u64, u64, u64),
}

fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn path_of(name: &str) -> std::path::PathBuf {
    if name.starts_with('/') {
        name.into()
    } else {
        std::path::Path::new(DIR).join(name)
    }
}

/// The files of a store that has lived a little: a snapshot, a log after
/// it, a view, an identity, and the front end's record of the views.
fn baseline() -> &'static std::collections::BTreeMap<&'static str, Vec<u8>> {
    use pygmy_core::unstable::files::Fs;
    use pygmy_core::unstable::state::command::{Command, Entry, OrderCommand};
    use pygmy_core::unstable::state::{Snapshot, State};
    use pygmy_core::unstable::storage::logstore::LogStore;
    use pygmy_core::unstable::storage::Storage;
    use pygmy_core::unstable::types::{Group, LogPos, NodeId};
    use pygmy_core::unstable::view::{GroupRecord, View};

    static FILES_OF_A_STORE: OnceLock<std::collections::BTreeMap<&'static str, Vec<u8>>> =
        OnceLock::new();
    FILES_OF_A_STORE.get_or_init(|| {
        let fs = pygmy_core::unstable::files::memfs::MemFs::new();
        let view = View {
            group: Group::Catalog,
            epoch: 2,
            primary: NodeId::new("catalog-1"),
            backups: vec![NodeId::new("catalog-2")],
        };
        let entry = |lsn| Entry {
            pos: LogPos { epoch: 2, lsn },
            command: Command::Order(OrderCommand::Begin {
                request: format!("request-{lsn}"),
                item: lsn % 7 + 1,
                qty: 1,
                created: 1_700_000_000_000 + lsn,
            }),
        };
        let mut store = LogStore::open(fs.clone(), DIR, 42).expect("a new store");
        store.load().expect("an empty store loads");
        store.save_view(&view).expect("a view");
        store
            .append(&(1..=4).map(entry).collect::<Vec<_>>())
            .expect("entries");
        store.sync().expect("a sync");
        store
            .save_snapshot(&Snapshot {
                pos: LogPos { epoch: 2, lsn: 4 },
                state: State::Catalog(pygmy_core::unstable::state::catalog::Catalog::builtin()),
                digest: 0,
            })
            .expect("a snapshot");
        store
            .append(&(5..=9).map(entry).collect::<Vec<_>>())
            .expect("entries");
        store.sync().expect("a sync");
        let records = pygmy_core::unstable::files::record::RecordFile::new(fs.clone(), VIEWS);
        records
            .save(&vec![GroupRecord {
                current: view.clone(),
                confirmed: Some(view),
                disks: [
                    (NodeId::new("catalog-1"), 42),
                    (NodeId::new("catalog-2"), 43),
                ]
                .into_iter()
                .collect(),
            }])
            .expect("a view record");
        FILES
            .iter()
            .filter_map(|name| {
                let bytes = fs.read(&path_of(name)).expect("a read")?;
                Some((*name, bytes))
            })
            .collect()
    })
}

/// A real store's files, damaged as the input says, then opened as a
/// replica and the front end open them: opening fails with an error or
/// sets the damage aside, and never panics or allocates without bound.
/// What it loads is a log in lsn order without gaps.
pub fn disk(data: &[u8]) {
    use pygmy_core::unstable::files::Fs;
    use pygmy_core::unstable::storage::logstore::LogStore;
    use pygmy_core::unstable::storage::Storage;

    let Ok(input) = DiskInput::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let mut files: std::collections::BTreeMap<&str, Vec<u8>> = baseline().clone();
    let name = |file: &u8| FILES[*file as usize % FILES.len()];
    for damage in input.damage.iter().take(8) {
        match damage {
            Damage::Flip { file, at, mask } => {
                if let Some(bytes) = files.get_mut(name(file)).filter(|b| !b.is_empty()) {
                    let at = *at as usize % bytes.len();
                    bytes[at] ^= mask;
                }
            }
            Damage::Truncate { file, at } => {
                if let Some(bytes) = files.get_mut(name(file)) {
                    let at = *at as usize % (bytes.len() + 1);
                    bytes.truncate(at);
                }
            }
            Damage::Remove { file } => {
                files.remove(name(file));
            }
            Damage::Replace { file, bytes } => {
                files.insert(name(file), bytes.clone());
            }
            Damage::Records { file, payloads } => {
                let mut bytes = Vec::new();
                for payload in payloads.iter().take(16) {
                    frame(&mut bytes, payload);
                }
                files.insert(name(file), bytes);
            }
            Damage::EditRecord {
                file,
                record,
                at,
                byte,
            } => {
                let Some(bytes) = files.get_mut(name(file)) else {
                    continue;
                };
                let mut payloads = Vec::new();
                let mut offset = 0;
                while let Some((payload, next)) =
                    pygmy_core::unstable::files::framing::decode_record(bytes, offset)
                {
                    payloads.push(payload.to_vec());
                    offset = next;
                }
                if payloads.is_empty() {
                    continue;
                }
                let index = *record as usize % payloads.len();
                let payload = &mut payloads[index];
                if payload.is_empty() {
                    continue;
                }
                let at = *at as usize % payload.len();
                payload[at] = *byte;
                bytes.clear();
                for payload in &payloads {
                    frame(bytes, payload);
                }
            }
        }
    }
    let fs = pygmy_core::unstable::files::memfs::MemFs::new();
    fs.create_dir_all(std::path::Path::new(DIR))
        .expect("a folder");
    fs.create_dir_all(std::path::Path::new(VIEWS).parent().expect("a parent"))
        .expect("a folder");
    for (name, bytes) in &files {
        fs.write_synced(&path_of(name), bytes).expect("a write");
    }

    if let Ok(mut store) = LogStore::open(fs.clone(), DIR, 7) {
        if let Ok(recovered) = store.load() {
            let lsns: Vec<_> = recovered.entries.iter().map(|e| e.pos.lsn).collect();
            assert!(
                lsns.windows(2).all(|w| w[1] == w[0] + 1),
                "loaded a log with gaps or out of order: {lsns:?}"
            );
            if let (Some(snapshot), Some(first)) = (&recovered.snapshot, lsns.first()) {
                assert_eq!(
                    *first,
                    snapshot.pos.lsn + 1,
                    "the loaded log does not follow on from the snapshot"
                );
            }
        }
    }
    if let Ok(file) =
        pygmy_core::unstable::state::archive::open_file(fs.clone(), std::path::Path::new(DIR))
    {
        let (len, count, digest) = input.mark;
        let mark = pygmy_core::unstable::state::archive::ArchiveMark { len, count, digest };
        if let Ok(archive) = pygmy_core::unstable::state::archive::Archive::open(file, mark) {
            let _ = archive.records_from(mark, 0);
        }
    }
    let _ = pygmy_core::unstable::files::record::RecordFile::new(fs, VIEWS)
        .load::<Vec<pygmy_core::unstable::view::GroupRecord>>();
}
