//! The spool's state machine (new → work → new/dead/gone), through the library, on a real
//! directory.

use std::fs;
use std::io;
use std::time::{Duration, SystemTime};

use dacs_signout::testing::{Signal, Spool};

use crate::support::TempDir;

fn signal(id: &str) -> Signal {
    Signal {
        id: id.into(),
        user_name: "u".into(),
        user_agent: "UA".into(),
        endpoint: "http://127.0.0.1:9/".into(),
        created: 1,
        attempts: 0,
        next_attempt: 0,
    }
}

#[test]
fn life_of_a_signal() {
    let dir = TempDir::new("spool-life");
    let root = dir.path().join("spool");
    let now = SystemTime::now();
    let spool = Spool::create(&root, 10_000).unwrap();
    spool.put(&signal("a")).unwrap();
    spool.put(&signal("b")).unwrap();
    assert_eq!(spool.waiting().unwrap(), ["a", "b"]);
    assert_eq!(spool.peek::<Signal>("a"), Some(signal("a")));
    let a = spool.claim::<Signal>("a", now).unwrap().unwrap();
    assert!(spool.claim::<Signal>("a", now).unwrap().is_none(), "one winner");
    assert_eq!(spool.peek::<Signal>("a"), None, "a claimed signal is no longer waiting");
    spool.finish(a).unwrap();
    let b = spool.claim::<Signal>("b", now).unwrap().unwrap();
    let mut next = b.record.clone();
    next.attempts = 1;
    spool.retry(b, &next).unwrap();
    assert_eq!(spool.claim::<Signal>("b", now).unwrap().unwrap().record.attempts, 1);
    assert_eq!(spool.counts().unwrap(), [0, 1, 0]);
    // This process is alive: its claim is stale only once held longer than the limit.
    assert_eq!(spool.reclaim_stale(Duration::from_secs(60), now).unwrap(), 0);
    let later = now + Duration::from_secs(61);
    assert_eq!(spool.reclaim_stale(Duration::from_secs(60), later).unwrap(), 1);
    let b = spool.claim::<Signal>("b", later).unwrap().unwrap();
    spool.bury(b, "refused").unwrap();
    assert_eq!(spool.counts().unwrap(), [0, 0, 1]);
    assert_eq!(fs::read_to_string(root.join("dead/b.why")).unwrap(), "refused\n");
    fs::write(root.join("new/c.json"), "not json").unwrap();
    assert_eq!(spool.peek::<Signal>("c"), None);
    assert!(spool.claim::<Signal>("c", later).unwrap().is_none());
    assert_eq!(spool.counts().unwrap(), [0, 0, 2]);
}

#[test]
fn a_spool_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("spool-perm");
    let root = dir.path().join("spool");
    Spool::create(&root, 10).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    let e = Spool::open(&root, 10).err().unwrap();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("must belong to this user"), "{e}");
}

/// An ancestor another user could change (here: writable by all, without the sticky bit) lets
/// that user swap the spool: refused, and nothing is created under it.
#[test]
fn an_ancestor_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("spool-ancestor");
    let open = dir.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let root = open.join("spool");
    let e = Spool::create(&root, 10).err().unwrap();
    assert!(e.to_string().contains("can be changed by another user"), "{e}");
    assert!(!root.exists(), "nothing is written under a refused spool");
    // Sticky, as /tmp is: nobody can rename another's entry there.
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
    Spool::create(&root, 10).unwrap();
}

/// A symbolic link can be swapped between a check and a use: the spool and its ancestors are
/// reached without following one.
#[test]
fn a_link_in_the_path_is_refused() {
    let dir = TempDir::new("spool-link");
    let real = dir.path().join("real");
    Spool::create(&real, 10).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = Spool::open(&link, 10).err().unwrap();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let e = Spool::open(&link.join("new"), 10).err().unwrap();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(Spool::open(std::path::Path::new("relative/spool"), 10).is_err());
    assert!(Spool::open(&dir.path().join("real/../real"), 10).is_err());
}

/// A spool owned by another user is refused (the relay must run as the spool's owner).
#[test]
fn a_spool_of_another_user_is_refused() {
    let dir = TempDir::new("spool-owner");
    let root = dir.path().join("spool");
    Spool::create(&root, 10).unwrap();
    let nobody = 65534;
    if std::process::Command::new("chown")
        .arg(nobody.to_string())
        .arg(&root)
        .status()
        .unwrap()
        .success()
    {
        let e = Spool::open(&root, 10).err().unwrap();
        assert!(e.to_string().contains("must belong to this user"), "{e}");
    } else {
        // Not root: this user cannot give a directory away; a directory it cannot even open
        // stands in for another user's.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o000)).unwrap();
        assert!(Spool::open(&root, 10).is_err());
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
    }
}

/// An entry that is no record (garbage, a directory, a link, a FIFO, a stray name) goes to
/// `dead/`, and the drain goes on to the next.
#[test]
fn entries_that_are_not_records_go_to_dead_and_the_drain_goes_on() {
    let dir = TempDir::new("spool-junk");
    let root = dir.path().join("spool");
    let now = SystemTime::now();
    let spool = Spool::create(&root, 100).unwrap();
    fs::write(root.join("new/garbage.json"), "{not json").unwrap();
    fs::create_dir(root.join("new/adir.json")).unwrap();
    fs::write(dir.path().join("outside"), "{}").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("new/link.json")).unwrap();
    let fifo = root.join("new/fifo.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    fs::write(root.join("new/stray-name.txt"), "x").unwrap();
    fs::write(root.join("new/big.json"), "x".repeat(100_000)).unwrap();
    spool.put(&signal("good")).unwrap();
    let ids = spool.waiting().unwrap();
    assert_eq!(ids, ["adir", "big", "fifo", "garbage", "good", "link"]);
    let mut claimed = Vec::new();
    for id in &ids {
        if let Some(claim) = spool.claim::<Signal>(id, now).unwrap() {
            claimed.push(claim.record.id.clone());
            spool.finish(claim).unwrap();
        }
    }
    assert_eq!(claimed, ["good"]);
    let [new, work, dead] = spool.counts().unwrap();
    assert_eq!((new, work), (0, 0));
    assert_eq!(dead, 6, "five unreadable records and the stray name");
    assert_eq!(
        fs::read_to_string(dir.path().join("outside")).unwrap(),
        "{}",
        "the link's target untouched"
    );
}

/// `RELAY_SPOOL_MAX`: over it nothing is written (the caller says what was lost).
#[test]
fn the_quota_refuses_what_would_not_fit() {
    let dir = TempDir::new("spool-quota");
    let spool = Spool::create(&dir.path().join("spool"), 2).unwrap();
    spool.put(&signal("a")).unwrap();
    let e = spool.put_all(&[signal("b"), signal("c")]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
    assert_eq!(spool.counts().unwrap(), [1, 0, 0], "none of them written");
    spool.put(&signal("b")).unwrap();
}

/// The log in the spool is never followed if it is a link.
#[test]
fn a_planted_log_link_is_not_followed() {
    let dir = TempDir::new("spool-log");
    let root = dir.path().join("spool");
    let spool = Spool::create(&root, 10).unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, root.join("relay.log")).unwrap();
    assert!(spool.log("relay.log").is_err());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
}
