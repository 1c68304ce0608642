//! The receiver (§11): a hub's logout reaches this federation. Every request form hubs send,
//! the token, hostile input, and what happens when the registry is down.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

const TOKEN: &str = "hub-to-us-t0ken-0123456789";
const TOKEN_NEXT: &str = "the-rotated-t0ken-9876543210";

/// A federation with an SQLite registry and a spool in a directory of its own.
pub struct Federation {
    pub dir: TempDir,
}

impl Federation {
    pub fn new() -> Federation {
        let dir = TempDir::new("receiver");
        for sub in ["lib", "spool-parent"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::set_permissions(dir.path().join(sub), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        Federation { dir }
    }

    pub fn registry(&self) -> std::path::PathBuf {
        self.dir.path().join("lib/registry.db")
    }

    pub fn spool(&self) -> std::path::PathBuf {
        self.dir.path().join("spool-parent/spool")
    }

    /// The example federation with its registry, its spool, two receiver tokens and `extra`.
    pub fn directives(&self, extra: &str) -> String {
        format!(
            "{EXAMPLE}\nREGISTRY \"sqlite:{}\"\nRELAY_SPOOL_DIR \"{}\"\nRECEIVER_TOKEN_ENV \"HUB_TOKEN\"\n\
             RECEIVER_TOKEN_ENV \"HUB_TOKEN_NEXT\"\n{extra}",
            self.registry().display(),
            self.spool().display()
        )
    }

    /// A receiver call, with the environment a server gives it (the tokens included).
    pub fn call(&self, cgi: Cgi, extra: &str) -> Output {
        cgi.program(RECEIVER)
            .config(&conf(&self.directives(extra)))
            .env("HUB_TOKEN", TOKEN)
            .env("HUB_TOKEN_NEXT", TOKEN_NEXT)
            .env("SCRIPT_NAME", "/api/logout/")
            .run()
    }

    /// The user's revocation time in the registry, if any.
    pub fn revoked_before(&self, user: &str) -> Option<i64> {
        if !self.registry().exists() {
            return None;
        }
        let db = rusqlite::Connection::open(self.registry()).unwrap();
        db.query_row("SELECT before_ms FROM revoked_user WHERE user = ?1", [user], |r| r.get(0))
            .ok()
    }
}

/// The Profiles hub's request, as its code sends it: `POST ?username=` with an empty JSON body.
fn profiles(user: &str, token: &str) -> Cgi {
    Cgi::method("POST", &format!("username={user}"))
        .env("CONTENT_TYPE", "application/json")
        .env("CONTENT_LENGTH", "0")
        .env("HTTP_USER_AGENT", "python-requests/2.34.2")
        .env("HTTP_AUTHORIZATION", &format!("Bearer {token}"))
}

#[track_caller]
fn answered(out: &Output, status: u16) -> serde_json::Value {
    assert_eq!(out.status, status, "{}\n{}", out.body, out.log);
    assert_eq!(out.header("Content-Type"), Some("application/json"));
    assert_eq!(out.header("Cache-Control"), Some("no-store"));
    assert_eq!(out.log.lines().count(), 1, "{}", out.log);
    serde_json::from_str(&out.body).unwrap()
}

/// The real hub's request, byte for byte: a 200 in the guide's words, and the user revoked
/// in the registry at the time of the call.
#[test]
fn the_profiles_hubs_request_revokes_the_user() {
    let fed = Federation::new();
    let before = dacs_signout::testing::unix_secs(std::time::SystemTime::now()) as i64 * 1000;
    let out = fed.call(profiles("bob", TOKEN), "");
    let body = answered(&out, 200);
    assert_eq!(body, serde_json::json!({"status": "success", "message": "User bob logged out"}));
    let at = fed.revoked_before("EX::FEDROOT:bob").expect("revoked");
    assert!(at >= before && at <= before + 5_000, "{at} vs {before}");
    assert!(
        out.log.contains("dacs_logout_receiver: status=200") && out.log.contains("kept=registry"),
        "{}",
        out.log
    );
    assert!(!out.log.contains(TOKEN));
}

/// The guide's GET, BCC's `userid`/`userId` and its JSON body, and the rotated token.
#[test]
fn every_request_form_hubs_send() {
    let fed = Federation::new();
    let bearer = |t: &str| format!("Bearer {t}");
    for (cgi, user) in [
        (Cgi::get("username=amy").env("HTTP_AUTHORIZATION", &bearer(TOKEN)), "amy"),
        (Cgi::get("userid=cy").env("HTTP_AUTHORIZATION", &bearer(TOKEN)), "cy"),
        (Cgi::get("userId=dee").env("HTTP_AUTHORIZATION", &bearer(TOKEN_NEXT)), "dee"),
        (
            Cgi::method("POST", "")
                .env("CONTENT_TYPE", "application/json")
                .env("CONTENT_LENGTH", "15")
                .stdin(br#"{"userId":"ed"}"#)
                .env("HTTP_AUTHORIZATION", "bearer   ".to_owned().as_str())
                .env("HTTP_AUTHORIZATION", &format!("BEARER {TOKEN}")),
            "ed",
        ),
    ] {
        let out = fed.call(cgi, "");
        answered(&out, 200);
        assert!(
            fed.revoked_before(&format!("EX::FEDROOT:{user}")).is_some(),
            "{user}: {}",
            out.log
        );
    }
    // A user never seen is a success too (the hub's health probe counts on it).
    answered(&fed.call(profiles("zed-stack-a-deh", TOKEN), ""), 200);
}

/// No token, a wrong one, one in the query, another scheme: 401 with `WWW-Authenticate`, and
/// nothing revoked.
#[test]
fn a_call_without_the_token_changes_nothing() {
    let fed = Federation::new();
    for (cgi, what) in [
        (profiles("bob", "wrong-token"), "wrong token"),
        (Cgi::method("POST", "username=bob").env("CONTENT_LENGTH", "0"), "no token"),
        (Cgi::get(&format!("username=bob&token={TOKEN}")), "token in the query"),
        (Cgi::get("username=bob").env("HTTP_AUTHORIZATION", &format!("Basic {TOKEN}")), "Basic"),
        (Cgi::get("username=bob").env("HTTP_AUTHORIZATION", &format!("Bearer {TOKEN}x")), "longer"),
        (Cgi::get("username=bob").env("HTTP_AUTHORIZATION", "Bearer "), "empty"),
    ] {
        let out = fed.call(cgi, "");
        let body = answered(&out, 401);
        assert_eq!(out.header("WWW-Authenticate"), Some("Bearer"), "{what}");
        assert_eq!(body["status"], "error", "{what}");
        assert!(!out.log.contains(TOKEN), "{what}: the token is never logged");
    }
    assert_eq!(fed.revoked_before("EX::FEDROOT:bob"), None);
}

/// Hostile and malformed calls: each a defined answer, nothing revoked.
#[test]
fn malformed_calls_have_defined_answers() {
    let fed = Federation::new();
    let auth = |cgi: Cgi| cgi.env("HTTP_AUTHORIZATION", &format!("Bearer {TOKEN}"));
    let huge = "x".repeat(70_000);
    for (cgi, status, what) in [
        (auth(Cgi::get("")), 400, "no username"),
        (auth(Cgi::get("username=")), 400, "empty username"),
        (auth(Cgi::get("username=%20%20")), 400, "white space"),
        (auth(Cgi::get(&format!("username={}", "a".repeat(65_536)))), 400, "64 KiB username"),
        (auth(Cgi::get("username=%ff")), 400, "not UTF-8"),
        (auth(Cgi::get("username=a%0d%0ab")), 400, "control characters"),
        (auth(Cgi::get("username=a&username=b")), 400, "twice"),
        (auth(Cgi::get("username=bob&logout_at=soon")), 400, "logout_at not a number"),
        (auth(Cgi::method("PUT", "username=bob")), 405, "PUT"),
        (auth(Cgi::method("DELETE", "username=bob")), 405, "DELETE"),
        (
            auth(Cgi::method("POST", "").env("CONTENT_LENGTH", "70000").stdin(huge.as_bytes())),
            413,
            "a huge body",
        ),
        (
            auth(Cgi::method("POST", "").env("CONTENT_LENGTH", "5").stdin(b"{oops")),
            400,
            "a body that is not JSON",
        ),
    ] {
        let out = fed.call(cgi, "");
        answered(&out, status);
        assert!(out.body.contains("\"status\":\"error\""), "{what}: {}", out.body);
        if status == 405 {
            assert_eq!(out.header("Allow"), Some("GET, POST"));
        }
    }
    assert!(!fed.registry().exists() || fed.revoked_before("EX::FEDROOT:bob").is_none());
}

/// A `logout_at` in the future is now (nobody can lock a user out of the future); one in the
/// past is kept, and a late, earlier duplicate revokes nothing newer.
#[test]
fn logout_at_is_clamped_and_never_moves_back() {
    let fed = Federation::new();
    let now_ms = dacs_signout::testing::unix_secs(std::time::SystemTime::now()) as i64 * 1000;
    answered(&fed.call(profiles("bob&logout_at=99999999999", TOKEN), ""), 200);
    let at = fed.revoked_before("EX::FEDROOT:bob").unwrap();
    assert!(at >= now_ms && at < now_ms + 10_000, "clamped to now: {at}");
    answered(&fed.call(profiles("bob&logout_at=1700000000&event_id=ev-1", TOKEN), ""), 200);
    assert_eq!(fed.revoked_before("EX::FEDROOT:bob"), Some(at), "a late duplicate changes nothing");
    answered(&fed.call(profiles("amy&logout_at=1700000000", TOKEN), ""), 200);
    assert_eq!(fed.revoked_before("EX::FEDROOT:amy"), Some(1_700_000_000_999));
}

/// `RECEIVER_USERNAME_MAP`: the network's username to this federation's identities.
#[test]
fn the_username_map_names_other_jurisdictions() {
    let fed = Federation::new();
    let map = "RECEIVER_USERNAME_MAP \"^kc_(.*)$ => DSS:$1, FEDROOT:$1\"";
    answered(&fed.call(profiles("kc_bob", TOKEN), map), 200);
    assert!(fed.revoked_before("EX::DSS:bob").is_some());
    assert!(fed.revoked_before("EX::FEDROOT:bob").is_some());
    let nocase = "NAME_COMPARE \"nocase\"";
    answered(&fed.call(profiles("Amy", TOKEN), nocase), 200);
    assert!(fed.revoked_before("ex::fedroot:amy").is_some());
}

/// The registry down (its file unusable): the logout goes to the spool, answered 200 (the real
/// hub retries nothing), and `dacs_signout relay` applies it, with its original time, once the
/// registry is back. With the spool unusable too: 503, the one answer that says "not kept".
#[test]
fn a_registry_that_is_down_loses_nothing() {
    let fed = Federation::new();
    // The registry's directory belongs to nobody usable: refused, as a swapped file would be.
    let lib = fed.dir.path().join("lib");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = fed.call(profiles("bob&logout_at=1700000000", TOKEN), "");
    answered(&out, 200);
    assert!(out.log.contains("kept=spool") && out.log.contains("registry_error="), "{}", out.log);
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(fed.revoked_before("EX::FEDROOT:bob"), None);
    let conf = fed.dir.write("drain.conf", &conf(&fed.directives("")));
    let drain = std::process::Command::new(BIN)
        .env_clear()
        .arg("relay")
        .env("DACS_SIGNOUT_CONF", &conf)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&drain.stdout);
    assert!(drain.status.success() && report.contains("revoked=1"), "{report}");
    assert_eq!(fed.revoked_before("EX::FEDROOT:bob"), Some(1_700_000_000_999), "its own time");
    // Neither the registry nor the spool: 503.
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o777)).unwrap();
    let parent = fed.dir.path().join("spool-parent");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = fed.call(profiles("amy", TOKEN), "");
    answered(&out, 503);
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// Without a token configured the receiver refuses every call: a misconfiguration, not an
/// open door.
#[test]
fn a_receiver_without_a_token_refuses_everything() {
    let fed = Federation::new();
    let out = Cgi::get("username=bob")
        .program(RECEIVER)
        .config(&conf(&fed.directives("")))
        .env("HTTP_AUTHORIZATION", "Bearer anything")
        .run();
    answered(&out, 500);
    assert!(out.log.contains("no receiver token"), "{}", out.log);
    assert_eq!(fed.revoked_before("EX::FEDROOT:bob"), None);
}
