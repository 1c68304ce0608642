//! A DACS server's own `dacs.conf` (§3): it loads as it is, `--check-config` says everything
//! that is wrong or ignored, with lines, and misconfiguration is loud.

use std::process::Command;

use crate::support::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dacs.conf");

/// `dacs_signout --check-config FILE` with `env`: (exit code, stdout).
fn check(file: &std::path::Path, env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .arg("--check-config")
        .arg(file)
        .output()
        .unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_real_dacs_conf_loads_and_its_clauses_are_listed_as_skipped() {
    let (code, out) = check(std::path::Path::new(FIXTURE), &[]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let line_of = |needle: &str| 1 + text.lines().position(|l| l.contains(needle)).unwrap();
    for skipped in [
        "<Auth id=\"passwd\">",
        "<Auth id=\"ldap\">",
        "<Roles id=\"unix\">",
        "<Auth id=\"expr\">",
        "<Transfer id=\"to-other\">",
        "<Roles id=\"local\">",
    ] {
        let listed = format!("line {}: {skipped}", line_of(skipped));
        assert!(out.contains(&listed), "{listed}:\n{out}");
    }
    for ignored in ["VFS", "EVAL", "AUTH_FAIL ", "LOG_LEVEL"] {
        let listed = format!("line {}: {}", line_of(ignored), ignored.trim());
        assert!(out.contains(&listed), "{listed}:\n{out}");
    }
    assert!(out.ends_with("dacs.conf: ok\n"), "{out}");
}

/// Signing out with it: each request gets its section's handler, in DACS's own forms.
#[test]
fn a_real_dacs_conf_serves_each_jurisdiction() {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let jar = "DACS:EX::FEDROOT:bob=1; DACS:EX::DSS:bob=2";
    let fedroot = Cgi::get("")
        .config(&text)
        .env("SERVER_NAME", "127.0.0.1")
        .env("SERVER_PORT", "8080")
        .env("HTTPS", "off")
        .cookie(jar)
        .run();
    fedroot.status(302).common_headers();
    assert_eq!(
        fedroot.header("Location"),
        Some(
            "http://127.0.0.1:8080/goodbye.html?DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=FEDROOT"
        )
    );
    let dss = Cgi::get("")
        .config(&text)
        .env("SERVER_NAME", "dss.example.org")
        .env("SCRIPT_NAME", "/dacs/dacs_signout")
        .cookie(jar)
        .run();
    dss.status(200).common_headers();
    assert!(dss.body.contains("You have been signed out of DSS."), "{}", dss.body);
    assert!(dss.log.contains("jurisdiction=DSS"), "{}", dss.log);
}

#[test]
fn check_config_reports_every_problem_with_its_line_in_the_operators_text() {
    let dir = TempDir::new("check-all");
    let file = dir.write(
        "dacs.conf",
        &conf(&format!(
            "{EXAMPLE}\nSECURE_MODE \"sometimes\"\nNAME_COMPARE \"fuzzy\"\n\
             SIGNOUT_HANDLER_ALLOW \"re:https://a\\\\.example/(\"\n\
             SIGNOUT_HANDLR \"url /bye\"\nCOOKIE_SYNTAX ${{Conf::SYNTAX}}\n\
             RELAY_USERNAME_MAP \"^(unclosed => x\""
        )),
    );
    let (code, out) = check(&file, &[]);
    assert_eq!(code, 1, "{out}");
    for problem in [
        "line 6: SECURE_MODE: invalid value \"sometimes\"",
        "line 7: NAME_COMPARE: invalid value \"fuzzy\"",
        "line 8: SIGNOUT_HANDLER_ALLOW: ",
        "line 9: unknown directive SIGNOUT_HANDLR: did you mean SIGNOUT_HANDLER?",
        "line 10: COOKIE_SYNTAX: only a double-quoted literal value is supported",
        "line 11: RELAY_USERNAME_MAP: \"^(unclosed\": ",
        "6 problems",
    ] {
        assert!(out.contains(problem), "{problem}:\n{out}");
    }
    assert!(out.contains("https://a\\\\.example/("), "the rule as written:\n{out}");
    assert!(!out.contains("^(?:"), "never the internal anchored form:\n{out}");
    // A real DACS directive close to one of ours is not a typo.
    let file = dir.write("dacs2.conf", &conf(&format!("{EXAMPLE}\nCOOKIE_HTTPONLY \"yes\"")));
    let (code, out) = check(&file, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn check_config_warns_loudly_about_the_built_in_demo() {
    let out = Command::new(BIN)
        .env_clear()
        .arg("--check-config")
        .env("DACS_SIGNOUT_CONF", "")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if std::path::Path::new("/etc/dacs-signout/dacs.conf").exists() {
        assert!(!text.contains("built-in demo"), "{text}");
    } else {
        assert!(text.contains("WARNING: no configuration file"), "{text}");
    }
}

/// An empty `DACS_SIGNOUT_CONF` names no file: it is unset, not a 500 for a file named "".
#[test]
fn an_empty_conf_variable_is_unset() {
    let dir = TempDir::new("empty-conf");
    let out = Cgi::get("")
        .env("DACS_SIGNOUT_CONF", "")
        .cookie("DACS:DEMO::DEMO:alice=1")
        .run_with_default_conf(&dir.path().join("absent.conf"));
    out.status(200);
    assert!(out.log.contains("config=\"built-in demo\""), "{}", out.log);
}

/// With a hub: whether the relay can work from here (the spool, the token).
#[test]
fn check_config_checks_the_spool_and_the_token() {
    let dir = TempDir::new("check-spool");
    let spool = dir.path().join("spool");
    let text = conf(&format!(
        "{EXAMPLE}\nIDMS_BASE_API_URL \"https://hub.example/api/v1/\"\nRELAY_SPOOL_DIR \"{}\"",
        spool.display()
    ));
    let file = dir.write("dacs.conf", &text);
    let (code, out) = check(&file, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not exist: create it for the web server's user"), "{out}");
    assert!(out.contains("warning: $COMMONS_PROFILES_API_TOKEN is not set here"), "{out}");
    std::fs::create_dir(&spool).unwrap();
    for sub in ["tmp", "new", "work", "dead"] {
        std::fs::create_dir(spool.join(sub)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    for d in [
        spool.clone(),
        spool.join("tmp"),
        spool.join("new"),
        spool.join("work"),
        spool.join("dead"),
    ] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let (code, out) = check(&file, &[("COMMONS_PROFILES_API_TOKEN", "t")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("spool") && out.contains(": ok (0 waiting"), "{out}");
    assert!(out.contains("the hub's token is in $COMMONS_PROFILES_API_TOKEN"), "{out}");
    assert!(!out.contains("=t"), "{out}");
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, out) = check(&file, &[("COMMONS_PROFILES_API_TOKEN", "t")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot be used by this user"), "{out}");
}

/// Every log line starts with the time; an error line still says which request it was.
#[test]
fn log_lines_are_timestamped_and_errors_keep_their_context() {
    let out = Cgi::get("FORMAT=JSON").example("").cookie("DACS:EX::FEDROOT:bobo=1").run();
    let (stamp, rest) = out.log.split_once(' ').unwrap();
    assert_eq!(stamp.len(), "2026-11-30T09:00:00Z".len(), "{}", out.log);
    assert!(stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T', "{}", out.log);
    assert!(rest.starts_with("dacs_signout: status=200"), "{}", out.log);
    assert!(out.log.contains("jurisdiction=FEDROOT"), "{}", out.log);
    let broken = Cgi::get("FORMAT=JSON").example("SECURE_MODE \"x\"").run();
    broken.status(500);
    for key in ["method=GET", "remote=192.0.2.7", "config=", "jurisdiction=Default"] {
        assert!(broken.log.contains(key), "{key}: {}", broken.log);
    }
    let missing = Cgi::get("").env("DACS_SIGNOUT_CONF", "/nonexistent/dacs.conf").run();
    assert!(missing.log.contains("config=/nonexistent/dacs.conf"), "{}", missing.log);
    // The relay's token missing from the request's environment is said on the request's line.
    let dir = TempDir::new("token");
    let relay = format!(
        "IDMS_BASE_API_URL \"http://127.0.0.1:9/\"\nRELAY_SPOOL_DIR \"{}\"\nRELAY_IDENTITY \"cookies\"",
        dir.path().join("spool").display()
    );
    let out = Cgi::get("").example(&relay).cookie("DACS:EX::FEDROOT:bobo=1").run();
    assert!(
        out.log.contains("relay_token=\"missing: $COMMONS_PROFILES_API_TOKEN is not set\""),
        "{}",
        out.log
    );
}

/// An operator's `file` goodbye page may load its site's stylesheets and images.
#[test]
fn a_file_handler_page_may_use_same_origin_styles_and_images() {
    let dir = TempDir::new("file-page");
    let page = dir.write("bye.html", "<link rel=stylesheet href=/site.css><h1>Bye</h1>");
    let out = Cgi::get("")
        .example(&format!("SIGNOUT_HANDLER \"file {}\"", page.display()))
        .cookie("DACS:EX::FEDROOT:bobo=1")
        .run();
    out.status(200).common_headers();
    let csp = out.header("Content-Security-Policy").unwrap();
    assert!(csp.contains("style-src 'self'") && csp.contains("img-src 'self'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    let builtin = Cgi::get("").example("").cookie("DACS:EX::FEDROOT:bobo=1").run();
    let csp = builtin.header("Content-Security-Policy").unwrap();
    assert!(!csp.contains("style-src 'self'"), "the built-in page stays strict: {csp}");
}
