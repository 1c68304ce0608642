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
    let spool = Spool::open(&root).unwrap();
    spool.put(&signal("a")).unwrap();
    spool.put(&signal("b")).unwrap();
    assert_eq!(spool.waiting().unwrap(), ["a", "b"]);
    assert_eq!(spool.peek("a"), Some(signal("a")));
    let a = spool.claim("a", now).unwrap().unwrap();
    assert!(spool.claim("a", now).unwrap().is_none(), "one winner");
    assert_eq!(spool.peek("a"), None, "a claimed signal is no longer waiting");
    spool.finish(a).unwrap();
    let b = spool.claim("b", now).unwrap().unwrap();
    let mut next = b.signal.clone();
    next.attempts = 1;
    spool.retry(b, &next).unwrap();
    assert_eq!(spool.claim("b", now).unwrap().unwrap().signal.attempts, 1);
    assert_eq!(spool.counts().unwrap(), [0, 1, 0]);
    // This process is alive: its claim is stale only once held longer than the limit.
    assert_eq!(spool.reclaim_stale(Duration::from_secs(60), now).unwrap(), 0);
    let later = now + Duration::from_secs(61);
    assert_eq!(spool.reclaim_stale(Duration::from_secs(60), later).unwrap(), 1);
    let b = spool.claim("b", later).unwrap().unwrap();
    spool.bury(b, "refused").unwrap();
    assert_eq!(spool.counts().unwrap(), [0, 0, 1]);
    assert_eq!(fs::read_to_string(root.join("dead/b.why")).unwrap(), "refused\n");
    fs::write(root.join("new/c.json"), "not json").unwrap();
    assert_eq!(spool.peek("c"), None);
    assert!(spool.claim("c", later).unwrap().is_none());
    assert_eq!(spool.counts().unwrap(), [0, 0, 2]);
}

#[test]
fn a_spool_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("spool-perm");
    let root = dir.path().join("spool");
    Spool::open(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(Spool::open(&root).err().map(|e| e.kind()), Some(io::ErrorKind::PermissionDenied));
}
