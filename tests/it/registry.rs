//! The registry (§12): one contract, run against both stores, SQLite and a real Redis; and the
//! operator's commands.

use std::os::unix::fs::PermissionsExt;

use dacs_signout::registry::redis::Redis;
use dacs_signout::registry::sqlite::Sqlite;
use dacs_signout::registry::{Fingerprint, Key, Seen, Sighting, Store};

use crate::support::redis::RedisServer;
use crate::support::*;

const DAY_MS: u64 = 86_400_000;

fn fp(n: u8) -> Fingerprint {
    Fingerprint::of(&Key::new(b"0123456789abcdef").unwrap(), &[n], b"value")
}

fn sighting(n: u8, user: &str) -> Sighting {
    Sighting { fingerprint: fp(n), user: user.into() }
}

/// What every store must do, whatever it is.
fn contract(store: &mut dyn Store) {
    let now = store.now_ms().unwrap();
    let wall = dacs_signout::testing::unix_secs(std::time::SystemTime::now()) * 1000;
    assert!(now.abs_diff(wall) < 5_000, "milliseconds of Unix time: {now} vs {wall}");
    let users = ["EX::J:bob".to_owned(), "EX::J:amy".to_owned()];

    // Nothing known yet.
    let lookup = store.lookup(&[fp(1), fp(2)], &users).unwrap();
    assert_eq!(lookup.seen, [None, None]);
    assert_eq!(lookup.revoked_before, [None, None]);

    // First sightings; a second one within the refresh interval changes nothing.
    store.record(&[sighting(1, "EX::J:bob"), sighting(2, "EX::J:amy")], now, 60_000).unwrap();
    store.record(&[sighting(1, "EX::J:bob")], now + 30_000, 60_000).unwrap();
    let lookup = store.lookup(&[fp(1), fp(2)], &users).unwrap();
    assert_eq!(lookup.seen[0], Some(Seen { first_ms: now, last_ms: now, revoked: false }));
    // Past it, the last sighting moves and the first stays.
    store.record(&[sighting(1, "EX::J:bob")], now + 61_000, 60_000).unwrap();
    let seen = store.lookup(&[fp(1)], &[]).unwrap().seen[0].unwrap();
    assert_eq!((seen.first_ms, seen.last_ms), (now, now + 61_000));

    // A user's revocation: never moved back, by a late duplicate.
    store.revoke_user("EX::J:bob", now + 1_000).unwrap();
    store.revoke_user("EX::J:bob", now - DAY_MS).unwrap();
    let lookup = store.lookup(&[], &users).unwrap();
    assert_eq!(lookup.revoked_before, [Some(now + 1_000), None]);
    store.revoke_user("EX::J:bob", now + 2_000).unwrap();
    assert_eq!(store.lookup(&[], &users).unwrap().revoked_before[0], Some(now + 2_000));

    // One credential revoked itself, known or not.
    store.revoke_fingerprints(&[sighting(2, "EX::J:amy"), sighting(3, "EX::J:amy")], now).unwrap();
    let lookup = store.lookup(&[fp(2), fp(3)], &[]).unwrap();
    assert!(lookup.seen.iter().all(|s| s.is_some_and(|s| s.revoked)), "{lookup:?}");
    assert_eq!(lookup.seen[0].unwrap().first_ms, now, "its first sighting kept");

    // What an operator sees, and corrects.
    let report = store.report("EX::J:amy").unwrap();
    assert_eq!(report.revoked_before, None);
    assert_eq!(report.sightings.len(), 2);
    assert!(store.unrevoke_fingerprint(&fp(2)).unwrap());
    assert!(!store.unrevoke_fingerprint(&fp(2)).unwrap());
    assert!(!store.lookup(&[fp(2)], &[]).unwrap().seen[0].unwrap().revoked);
    assert!(store.unrevoke_user("EX::J:bob").unwrap());
    assert!(!store.unrevoke_user("EX::J:bob").unwrap());
    assert_eq!(store.lookup(&[], &users).unwrap().revoked_before, [None, None]);
    let _ = store.purge(now).unwrap();
}

/// Entries expire: a sighting a TTL after its last use, a revocation a TTL after its time.
fn expiry(store: &mut dyn Store, ttl_ms: u64) {
    let now = store.now_ms().unwrap();
    store.record(&[sighting(9, "EX::J:eve")], now, 0).unwrap();
    store.revoke_user("EX::J:eve", now).unwrap();
    assert!(store.lookup(&[fp(9)], &[]).unwrap().seen[0].is_some());
    std::thread::sleep(std::time::Duration::from_millis(ttl_ms + 300));
    let lookup = store.lookup(&[fp(9)], &["EX::J:eve".to_owned()]).unwrap();
    assert_eq!((lookup.seen[0], lookup.revoked_before[0]), (None, None), "expired");
}

fn sqlite_dir() -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("registry");
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = lib.join("registry.db");
    (dir, db)
}

#[test]
fn sqlite_keeps_the_contract() {
    let (_dir, db) = sqlite_dir();
    contract(&mut Sqlite::open(&db, DAY_MS).unwrap());
    expiry(&mut Sqlite::open(&db, 300).unwrap(), 300);
}

#[test]
fn redis_keeps_the_contract() {
    let server = RedisServer::start();
    contract(&mut Redis::open(&server.url(), None, "EX", DAY_MS).unwrap());
    expiry(&mut Redis::open(&server.url(), None, "EX", 300).unwrap(), 300);
    // Keys carry the federation: another federation on the same database sees nothing.
    let mut ex = Redis::open(&server.url(), None, "EX", DAY_MS).unwrap();
    let mut other = Redis::open(&server.url(), None, "OTHER", DAY_MS).unwrap();
    let now = ex.now_ms().unwrap();
    ex.revoke_user("EX::J:bob", now).unwrap();
    assert_eq!(other.lookup(&[], &["EX::J:bob".to_owned()]).unwrap().revoked_before, [None]);
}

/// The file is opened as the spool is: a registry whoever else could swap is refused.
#[test]
fn sqlite_refuses_a_file_others_could_swap() {
    let (dir, db) = sqlite_dir();
    Sqlite::open(&db, DAY_MS).unwrap();
    std::fs::set_permissions(db.parent().unwrap(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(Sqlite::open(&db, DAY_MS).is_err());
    std::fs::set_permissions(db.parent().unwrap(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = db.parent().unwrap().join("link.db");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let e = Sqlite::open(&link, DAY_MS).err().unwrap();
    assert!(e.to_string().contains("regular file"), "{e}");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(Sqlite::open(&db, DAY_MS).is_err());
    drop(dir);
}

/// A dead Redis is an error at once (bounded), never a hang; and the next store connects
/// again once it is back.
#[test]
fn a_dead_redis_is_an_error_not_a_hang() {
    let mut server = RedisServer::start();
    let url = server.url();
    let mut store = Redis::open(&url, None, "EX", DAY_MS).unwrap();
    server.stop();
    let started = std::time::Instant::now();
    assert!(store.lookup(&[fp(1)], &[]).is_err());
    assert!(Redis::open(&url, None, "EX", DAY_MS).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
}

/// `dacs_signout registry …`: an operator revokes, inspects, corrects.
#[test]
fn the_operator_commands() {
    let (dir, db) = sqlite_dir();
    let conf =
        dir.write("dacs.conf", &conf(&format!("{EXAMPLE}\nREGISTRY \"sqlite:{}\"", db.display())));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .env_clear()
            .env("DACS_SIGNOUT_CONF", &conf)
            .arg("registry")
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap(), text)
    };
    // A minute ago (a revocation older than the registry's TTL has expired: it is moot).
    let at = dacs_signout::testing::unix_secs(std::time::SystemTime::now()) - 60;
    let stamp = dacs_signout::testing::rfc3339(at);
    let (code, out) = run(&["revoke-user", "bob", "--at", &at.to_string()]);
    assert_eq!(code, 0, "{out}");
    let said = format!("EX::FEDROOT:bob: credentials first seen at or before {stamp}");
    assert!(out.contains(&said), "{out}");
    let (code, out) = run(&["show", "FEDROOT:bob"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("revoked before: {stamp}")), "{out}");
    let fingerprint = fp(7).to_string();
    assert_eq!(run(&["revoke", &fingerprint, "EX::FEDROOT:bob"]).0, 0);
    let (_, out) = run(&["show", "bob"]);
    assert!(out.contains(&format!("{fingerprint} first")) && out.contains("REVOKED"), "{out}");
    assert!(run(&["unrevoke", &fingerprint]).1.contains("no longer revoked"));
    assert!(run(&["unrevoke-user", "bob"]).1.contains("revocation removed"));
    assert!(run(&["show", "bob"]).1.contains("revoked before: none"));
    assert_eq!(run(&["purge"]).0, 0);
    let (code, out) = run(&["frobnicate"]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = run(&["unrevoke", "not-a-fingerprint"]);
    assert_eq!(code, 1);
    assert!(out.contains("64 hex digits"), "{out}");
}
