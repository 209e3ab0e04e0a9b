//! The etcd client against a real etcd: a one-member etcd started by each
//! test from the `etcd` binary (Debian's `etcd-server`), on free loopback
//! ports, in a temporary folder, with fast raft timing (1-second leases).
//!
//! Without the binary the tests are skipped with a message, except under CI
//! (`CI` set), where `.ci/run` installs it and its absence is a failure.

use pygmy_net::etcd::launch::{find_binary, INSTALL_HINT};
use pygmy_net::etcd::{
    Compare, Etcd, EtcdConfig, EtcdError, LaunchError, LeaseId, LeaseKeeper, LeaseState, LocalEtcd,
    LocalEtcdOptions, Op,
};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// A running etcd and the folder it lives in (removed after the etcd is
/// killed: fields drop in order).
struct Fixture {
    etcd: LocalEtcd,
    _dir: TempDir,
}

/// Starts an etcd, or returns `None` (after saying why) when there is no
/// binary outside CI.
async fn start_etcd() -> Option<Fixture> {
    if find_binary().is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("no etcd binary under CI: {INSTALL_HINT}");
        }
        eprintln!("SKIPPED: no etcd binary; {INSTALL_HINT}");
        return None;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    match LocalEtcd::start_on_free_ports(dir.path(), LocalEtcdOptions::fast).await {
        Ok(etcd) => Some(Fixture { etcd, _dir: dir }),
        Err(e) => panic!("etcd did not start: {e}"),
    }
}

/// A client with short timeouts, so the failure tests end quickly.
fn client(endpoints: &[String]) -> Etcd {
    let mut config = EtcdConfig::new(endpoints.iter().cloned());
    config.connect_timeout = Duration::from_millis(200);
    config.request_timeout = Duration::from_millis(500);
    Etcd::new(config).expect("valid endpoints")
}

/// The bound within which every call on `client` must end, by the client's
/// contract (each endpoint tried at most once, each attempt bounded), with
/// a second of slack for a loaded machine.
fn call_bound(endpoints: usize) -> Duration {
    Duration::from_millis(500) * endpoints as u32 + Duration::from_secs(1)
}

fn unwrap_compare_failed(result: Result<i64, EtcdError>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    match result {
        Err(EtcdError::CompareFailed { current, .. }) => current
            .into_iter()
            .map(|(k, kv)| (k, kv.map(|kv| kv.value)))
            .collect(),
        other => panic!("expected CompareFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cas_applies_only_when_every_compared_revision_matches() {
    let Some(fx) = start_etcd().await else { return };
    let etcd = client(&[fx.etcd.endpoint()]);

    assert_eq!(etcd.get(b"pygmy/views/catalog").await.unwrap(), None);
    let ra = etcd.put(b"pygmy/views/catalog", b"c1", None).await.unwrap();
    let rb = etcd.put(b"pygmy/views/order", b"o1", None).await.unwrap();
    assert!(rb > ra, "revisions rise: {ra} then {rb}");
    let a = etcd.get(b"pygmy/views/catalog").await.unwrap().unwrap();
    assert_eq!((a.value.as_slice(), a.mod_revision), (&b"c1"[..], ra));
    assert_eq!(a.create_revision, ra);

    // Both compares hold: the swap applies, atomically with a second op.
    let both = [
        Compare::ModRevision(b"pygmy/views/catalog".to_vec(), ra),
        Compare::ModRevision(b"pygmy/views/order".to_vec(), rb),
    ];
    let swap = [
        Op::Put {
            key: b"pygmy/views/catalog".to_vec(),
            value: b"c2".to_vec(),
            lease: None,
        },
        Op::Delete {
            key: b"pygmy/scratch".to_vec(),
        },
    ];
    let rc = etcd.txn(&both, &swap).await.unwrap();
    assert!(rc > rb);
    let a = etcd.get(b"pygmy/views/catalog").await.unwrap().unwrap();
    assert_eq!((a.value.as_slice(), a.mod_revision), (&b"c2"[..], rc));

    // The same swap again: catalog's revision moved, so nothing is written
    // and both compared keys come back as they are now.
    let current = unwrap_compare_failed(etcd.txn(&both, &swap).await);
    assert_eq!(
        current,
        vec![
            (b"pygmy/views/catalog".to_vec(), Some(b"c2".to_vec())),
            (b"pygmy/views/order".to_vec(), Some(b"o1".to_vec())),
        ]
    );
    // One compare of two failing is enough to refuse.
    let one_stale = [
        Compare::ModRevision(b"pygmy/views/catalog".to_vec(), rc),
        Compare::ModRevision(b"pygmy/views/order".to_vec(), ra),
    ];
    unwrap_compare_failed(etcd.txn(&one_stale, &swap).await);
    assert_eq!(
        etcd.get(b"pygmy/views/catalog")
            .await
            .unwrap()
            .unwrap()
            .mod_revision,
        rc,
        "a failed compare wrote nothing"
    );
    // Revision 0 means "absent"; a value compare is false on an absent key.
    let absent = etcd
        .txn(
            &[Compare::ModRevision(b"pygmy/new".to_vec(), 0)],
            &[Op::Put {
                key: b"pygmy/new".to_vec(),
                value: b"n".to_vec(),
                lease: None,
            }],
        )
        .await;
    assert!(absent.is_ok(), "{absent:?}");
    let current = unwrap_compare_failed(
        etcd.txn(
            &[Compare::Value(b"pygmy/none".to_vec(), b"x".to_vec())],
            &[],
        )
        .await,
    );
    assert_eq!(current, vec![(b"pygmy/none".to_vec(), None)]);

    // A prefix range sees the three keys in order, at one revision; a
    // delete removes one.
    let range = etcd.get_prefix(b"pygmy/").await.unwrap();
    let keys: Vec<_> = range.kvs.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(
        keys,
        [
            b"pygmy/new".to_vec(),
            b"pygmy/views/catalog".to_vec(),
            b"pygmy/views/order".to_vec()
        ]
    );
    assert!(etcd.delete(b"pygmy/new").await.unwrap());
    assert!(!etcd.delete(b"pygmy/new").await.unwrap());
    assert_eq!(etcd.get_prefix(b"pygmy/").await.unwrap().kvs.len(), 2);
    assert!(etcd.get_prefix(b"other/").await.unwrap().kvs.is_empty());
}

#[tokio::test]
async fn of_two_clients_racing_one_cas_exactly_one_wins() {
    let Some(fx) = start_etcd().await else { return };
    let a = client(&[fx.etcd.endpoint()]);
    let b = client(&[fx.etcd.endpoint()]);
    a.put(b"view", b"epoch 0", None).await.unwrap();
    for round in 1..=25 {
        let seen = a.get(b"view").await.unwrap().unwrap().mod_revision;
        let cas = |who: &'static str| {
            let compare = [Compare::ModRevision(b"view".to_vec(), seen)];
            let op = [Op::Put {
                key: b"view".to_vec(),
                value: format!("epoch {round} by {who}").into_bytes(),
                lease: None,
            }];
            async move { (compare, op) }
        };
        let (ca, oa) = cas("a").await;
        let (cb, ob) = cas("b").await;
        let (ra, rb) = tokio::join!(a.txn(&ca, &oa), b.txn(&cb, &ob));
        let (winner, loser) = match (&ra, &rb) {
            (Ok(_), Err(_)) => ("a", rb),
            (Err(_), Ok(_)) => ("b", ra),
            _ => panic!("round {round}: not exactly one winner: {ra:?} / {rb:?}"),
        };
        // The loser is told the winner's value, not its own.
        let current = unwrap_compare_failed(loser);
        let expected = format!("epoch {round} by {winner}").into_bytes();
        assert_eq!(current, vec![(b"view".to_vec(), Some(expected.clone()))]);
        assert_eq!(a.get(b"view").await.unwrap().unwrap().value, expected);
    }
}

#[tokio::test]
async fn a_second_campaign_fails_while_the_leader_lease_lives_and_wins_after_revoke() {
    let Some(fx) = start_etcd().await else { return };
    let etcd = client(&[fx.etcd.endpoint()]);
    let first = etcd.grant(Duration::from_secs(5)).await.unwrap();
    let second = etcd.grant(Duration::from_secs(5)).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(first.ttl, Duration::from_secs(5));

    etcd.campaign(b"leader", b"fe-1", first.id).await.unwrap();
    let holder = etcd.get(b"leader").await.unwrap().unwrap();
    assert_eq!(holder.lease, Some(first.id));
    // The second campaign loses and learns who leads.
    let current = unwrap_compare_failed(etcd.campaign(b"leader", b"fe-2", second.id).await);
    assert_eq!(current, vec![(b"leader".to_vec(), Some(b"fe-1".to_vec()))]);
    assert_eq!(etcd.keep_alive(first.id).await.unwrap(), first.ttl);
    // Even the same holder cannot campaign twice: the key exists.
    unwrap_compare_failed(etcd.campaign(b"leader", b"fe-1", first.id).await);

    // Revoking the leader's lease deletes its key; the second campaign wins.
    etcd.revoke(first.id).await.unwrap();
    assert_eq!(etcd.get(b"leader").await.unwrap(), None);
    etcd.campaign(b"leader", b"fe-2", second.id).await.unwrap();
    assert_eq!(etcd.get(b"leader").await.unwrap().unwrap().value, b"fe-2");

    // The ended lease is gone for every lease call, named in the error.
    for result in [
        etcd.keep_alive(first.id).await.map(|_| ()),
        etcd.revoke(first.id).await,
        etcd.put(b"x", b"y", Some(first.id)).await.map(|_| ()),
        etcd.campaign(b"other", b"fe-1", first.id).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(EtcdError::LeaseNotFound(id)) if id == first.id),
            "{result:?}"
        );
    }
    assert!(matches!(
        etcd.keep_alive(LeaseId(12345)).await,
        Err(EtcdError::LeaseNotFound(LeaseId(12345)))
    ));
}

#[tokio::test]
async fn a_leader_key_lives_while_kept_alive_and_goes_when_its_lease_expires() {
    let Some(fx) = start_etcd().await else { return };
    let etcd = client(&[fx.etcd.endpoint()]);
    // Fast timing: etcd's minimum TTL is one second.
    let first = etcd.grant(Duration::from_secs(1)).await.unwrap();
    let second = etcd.grant(Duration::from_secs(30)).await.unwrap();
    etcd.campaign(b"leader", b"fe-1", first.id).await.unwrap();

    // Kept alive for three TTLs, the key stays and a rival keeps losing.
    for _ in 0..9 {
        tokio::time::sleep(first.ttl / 3).await;
        etcd.keep_alive(first.id).await.unwrap();
        unwrap_compare_failed(etcd.campaign(b"leader", b"fe-2", second.id).await);
    }

    // Left alone, the lease expires (etcd checks expiry every 0.5 s), the
    // key goes, and the rival's campaign wins: within a few TTLs.
    let mut won = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if etcd.campaign(b"leader", b"fe-2", second.id).await.is_ok() {
            won = true;
            break;
        }
    }
    assert!(won, "the rival never won after the leader's lease lapsed");
    assert_eq!(etcd.get(b"leader").await.unwrap().unwrap().value, b"fe-2");
    assert!(matches!(
        etcd.keep_alive(first.id).await,
        Err(EtcdError::LeaseNotFound(_))
    ));
}

#[tokio::test]
async fn a_keeper_holds_the_lease_past_its_ttl_and_dropping_it_lets_the_lease_expire() {
    let Some(fx) = start_etcd().await else { return };
    let etcd = Arc::new(client(&[fx.etcd.endpoint()]));
    let sent = tokio::time::Instant::now();
    let lease = etcd.grant(Duration::from_secs(1)).await.unwrap();
    let keeper = LeaseKeeper::spawn(Arc::clone(&etcd), lease, sent);
    etcd.campaign(b"leader", b"fe-1", lease.id).await.unwrap();
    let rival = etcd.grant(Duration::from_secs(30)).await.unwrap();

    // Three TTLs later the lease (so the key) is still there, and the
    // keeper's bound has moved past the first one.
    tokio::time::sleep(lease.ttl * 3).await;
    unwrap_compare_failed(etcd.campaign(b"leader", b"fe-2", rival.id).await);
    let until = keeper.held_until().expect("held");
    assert!(until > sent + lease.ttl, "the bound was renewed");
    assert!(matches!(keeper.state(), LeaseState::Held { .. }));

    // Dropped, it renews no more: the lease lapses and the rival wins.
    drop(keeper);
    let mut won = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if etcd.campaign(b"leader", b"fe-2", rival.id).await.is_ok() {
            won = true;
            break;
        }
    }
    assert!(won, "the rival never won after the keeper was dropped");
}

#[tokio::test]
async fn a_keeper_reports_its_lease_lost_when_revoked_or_when_etcd_dies() {
    let Some(mut fx) = start_etcd().await else {
        return;
    };
    let etcd = Arc::new(client(&[fx.etcd.endpoint()]));

    // Revoked behind its back: lost at the next renewal, as "revoked".
    let lease = etcd.grant(Duration::from_secs(1)).await.unwrap();
    let keeper = LeaseKeeper::spawn(Arc::clone(&etcd), lease, tokio::time::Instant::now());
    etcd.revoke(lease.id).await.unwrap();
    let reason = tokio::time::timeout(lease.ttl * 3, keeper.lost())
        .await
        .expect("loss reported within the TTL");
    assert!(reason.contains("revoked"), "{reason}");
    assert_eq!(keeper.held_until(), None);

    // Revoked by its holder: the key goes at once.
    let lease = etcd.grant(Duration::from_secs(5)).await.unwrap();
    let keeper = LeaseKeeper::spawn(Arc::clone(&etcd), lease, tokio::time::Instant::now());
    etcd.campaign(b"leader", b"fe-1", lease.id).await.unwrap();
    keeper.revoke().await.unwrap();
    assert_eq!(etcd.get(b"leader").await.unwrap(), None);

    // etcd killed: no renewal succeeds, and the keeper calls the lease lost
    // once its bound passes (it cannot know etcd is not simply slow).
    let sent = tokio::time::Instant::now();
    let lease = etcd.grant(Duration::from_secs(1)).await.unwrap();
    let keeper = LeaseKeeper::spawn(Arc::clone(&etcd), lease, sent);
    fx.etcd.kill();
    let reason = tokio::time::timeout(lease.ttl + call_bound(1), keeper.lost())
        .await
        .expect("loss reported within the TTL and one call");
    assert!(reason.contains("in time"), "{reason}");
    assert!(tokio::time::Instant::now() >= sent + lease.ttl);
    assert_eq!(keeper.held_until(), None);
}

#[tokio::test]
async fn a_killed_etcd_is_unreachable_at_once_and_serves_its_data_after_restart() {
    let Some(mut fx) = start_etcd().await else {
        return;
    };
    let etcd = client(&[fx.etcd.endpoint()]);
    let rev = etcd.put(b"view", b"v1", None).await.unwrap();
    let lease = etcd.grant(Duration::from_secs(30)).await.unwrap();

    fx.etcd.kill();
    let bound = call_bound(1);
    let calls: Vec<(&str, Result<(), EtcdError>)> = vec![
        ("get", timed(bound, etcd.get(b"view")).await.map(|_| ())),
        (
            "txn",
            timed(
                bound,
                etcd.txn(
                    &[Compare::ModRevision(b"view".to_vec(), rev)],
                    &[Op::Delete {
                        key: b"view".to_vec(),
                    }],
                ),
            )
            .await
            .map(|_| ()),
        ),
        (
            "keep_alive",
            timed(bound, etcd.keep_alive(lease.id)).await.map(|_| ()),
        ),
        (
            "grant",
            timed(bound, etcd.grant(Duration::from_secs(5)))
                .await
                .map(|_| ()),
        ),
    ];
    for (name, result) in calls {
        assert!(
            matches!(result, Err(EtcdError::Unreachable(_))),
            "{name} on a killed etcd: {result:?}"
        );
    }

    // Restarted on the same data: the value and the lease are still there,
    // and the same client (its pooled connection now dead) serves again.
    fx.etcd.restart().await.unwrap();
    let kv = etcd.get(b"view").await.unwrap().unwrap();
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"v1"[..], rev));
    assert_eq!(etcd.keep_alive(lease.id).await.unwrap(), lease.ttl);
    etcd.put(b"view", b"v2", None).await.unwrap();
}

#[tokio::test]
async fn a_stopped_etcd_times_out_instead_of_hanging() {
    let Some(fx) = start_etcd().await else { return };
    let etcd = client(&[fx.etcd.endpoint()]);
    etcd.put(b"view", b"v1", None).await.unwrap();
    let pid = fx.etcd.pid().expect("running").to_string();

    // SIGSTOP: the kernel still accepts connections, nothing answers.
    let stop = Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    assert!(stop.success());
    let get = timed(call_bound(1), etcd.get(b"view")).await;
    let put = timed(call_bound(1), etcd.put(b"view", b"v2", None)).await;
    let cont = Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    assert!(cont.success());
    assert!(matches!(get, Err(EtcdError::Unreachable(_))), "{get:?}");
    assert!(matches!(put, Err(EtcdError::Unreachable(_))), "{put:?}");

    // Resumed, it answers; the timed-out put may or may not have applied
    // (the contract of Unreachable for a write), and a re-read tells.
    let mut value = None;
    for _ in 0..50 {
        if let Ok(kv) = etcd.get(b"view").await {
            value = kv.map(|kv| kv.value);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let value = value.expect("etcd answers after SIGCONT");
    assert!(value == b"v1" || value == b"v2", "{value:?}");
}

#[tokio::test]
async fn a_dead_endpoint_is_skipped_for_reads_and_writes() {
    let Some(fx) = start_etcd().await else { return };
    // Nothing listens on port 1: connections are refused, so even writes
    // (which never went out) move to the live endpoint.
    let dead = "http://127.0.0.1:1".to_string();
    let etcd = client(&[dead.clone(), fx.etcd.endpoint(), dead]);
    let rev = etcd.put(b"k", b"v", None).await.unwrap();
    assert_eq!(etcd.get(b"k").await.unwrap().unwrap().mod_revision, rev);
    etcd.txn(
        &[Compare::ModRevision(b"k".to_vec(), rev)],
        &[Op::Put {
            key: b"k".to_vec(),
            value: b"w".to_vec(),
            lease: None,
        }],
    )
    .await
    .unwrap();
    let lease = etcd.grant(Duration::from_secs(5)).await.unwrap();
    etcd.keep_alive(lease.id).await.unwrap();
    etcd.revoke(lease.id).await.unwrap();
}

#[tokio::test]
async fn a_missing_binary_is_named_with_how_to_install_it() {
    assert!(LaunchError::NotInstalled
        .to_string()
        .contains("apt-get install etcd-server"));
    let dir = tempfile::tempdir().unwrap();
    let mut options = LocalEtcdOptions::on_free_ports(dir.path()).unwrap();
    options.binary = Some(dir.path().join("no-such-etcd"));
    match LocalEtcd::start(options).await {
        Err(LaunchError::Spawn { binary, .. }) => assert!(binary.ends_with("no-such-etcd")),
        other => panic!("expected a spawn error, got {other:?}"),
    }
}

/// Runs `call`, failing the test if it outlives `bound` (a hang).
async fn timed<T>(
    bound: Duration,
    call: impl std::future::Future<Output = Result<T, EtcdError>>,
) -> Result<T, EtcdError> {
    tokio::time::timeout(bound, call)
        .await
        .unwrap_or_else(|_| panic!("a call outlived its bound of {bound:?}"))
}

// ---- The front ends' coordinator on etcd (`EtcdCoordinator`) ----

use pygmy_core::unstable::frontend::coordination::{Coordinator, Guard};
use pygmy_core::unstable::view::{GroupRecord, View};
use pygmy_core::{Error, Group, NodeId};
use pygmy_net::etcd::{EtcdCoordinator, DEFAULT_PREFIX};

fn front_end(endpoint: &str, name: &str) -> EtcdCoordinator {
    let etcd = Arc::new(client(&[endpoint.to_string()]));
    EtcdCoordinator::new(
        etcd,
        NodeId(name.to_string()),
        DEFAULT_PREFIX,
        Duration::from_secs(1),
    )
}

fn records(epoch: u64) -> Vec<GroupRecord> {
    let view = View {
        group: Group::Catalog,
        epoch,
        primary: NodeId("catalog-1".into()),
        backups: vec![NodeId("catalog-2".into())],
    };
    vec![GroupRecord {
        current: view,
        confirmed: None,
        disks: Default::default(),
    }]
}

#[tokio::test]
async fn front_ends_on_etcd_elect_one_leader_and_store_views_only_by_compare_and_swap() {
    let Some(fx) = start_etcd().await else { return };
    let (a, b) = (
        front_end(&fx.etcd.endpoint(), "frontend-1"),
        front_end(&fx.etcd.endpoint(), "frontend-2"),
    );
    let lead = a
        .campaign()
        .await
        .expect("etcd answers")
        .expect("the first campaign wins");
    assert_eq!(
        b.campaign().await.expect("etcd answers"),
        None,
        "one leader at a time"
    );
    assert_eq!(
        a.campaign().await.expect("etcd answers"),
        Some(lead),
        "renewed, same term"
    );

    let empty = b.load().await.expect("etcd answers");
    assert!(empty.records.is_empty() && empty.revision == 0);
    let first = a
        .store(Guard::Leader(lead), 0, &records(1))
        .await
        .expect("the leader's store from the current revision applies");
    assert!(first > 0);
    // A store decided from an older revision changes nothing.
    let stale = b.store(Guard::Revision, 0, &records(2)).await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
    let seen = b.load().await.expect("etcd answers");
    assert_eq!((seen.records, seen.revision), (records(1), first));
    // A confirmation from the current revision applies on any front end.
    let second = b
        .store(Guard::Revision, first, &records(1))
        .await
        .expect("a store from the current revision applies");
    assert!(second > first);

    assert_eq!(
        a.register().await.expect("etcd answers"),
        vec![NodeId("frontend-1".into())]
    );
    assert_eq!(
        b.register().await.expect("etcd answers"),
        vec![NodeId("frontend-1".into()), NodeId("frontend-2".into())]
    );
}

#[tokio::test]
async fn a_deposed_leader_can_no_longer_change_a_view() {
    let Some(fx) = start_etcd().await else { return };
    let (a, b) = (
        front_end(&fx.etcd.endpoint(), "frontend-1"),
        front_end(&fx.etcd.endpoint(), "frontend-2"),
    );
    let old = a.campaign().await.expect("etcd answers").expect("wins");
    let revision = a
        .store(Guard::Leader(old), 0, &records(1))
        .await
        .expect("applies");
    // The leader stops renewing (cut off, paused): its lease expires and
    // another front end takes over within about two lease periods.
    let started = std::time::Instant::now();
    let new = loop {
        if let Some(l) = b.campaign().await.expect("etcd answers") {
            break l;
        }
        assert!(
            started.elapsed() < a.lease() * 2 + Duration::from_secs(3),
            "no takeover within two lease periods"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(new.term > old.term, "terms grow: {old:?} then {new:?}");
    // The deposed one still believes in its term; its store fails.
    let deposed = a.store(Guard::Leader(old), revision, &records(2)).await;
    assert!(matches!(deposed, Err(Error::Conflict(_))), "{deposed:?}");
    assert_eq!(a.campaign().await.expect("etcd answers"), None);
    let current = a.load().await.expect("etcd answers");
    assert_eq!((current.records, current.revision), (records(1), revision));
    b.store(Guard::Leader(new), revision, &records(2))
        .await
        .expect("the new leader's store applies");
}

#[tokio::test]
async fn with_etcd_down_the_coordinator_answers_unavailable_at_once() {
    let Some(mut fx) = start_etcd().await else {
        return;
    };
    let a = front_end(&fx.etcd.endpoint(), "frontend-1");
    a.campaign().await.expect("etcd answers").expect("wins");
    fx.etcd.kill();
    let started = std::time::Instant::now();
    let load = a.load().await;
    assert!(matches!(load, Err(Error::Unavailable(_))), "{load:?}");
    let store = a.store(Guard::Revision, 0, &records(1)).await;
    assert!(matches!(store, Err(Error::Unavailable(_))), "{store:?}");
    assert!(started.elapsed() < call_bound(1) * 2, "bounded, no hang");
}
