//! The command line: `--check-config`, `--version`, `demo`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::support::*;

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).env_clear().args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_config_names_the_line_and_lists_unknown_directives() {
    let dir = TempDir::new("check");
    let good = dir.write(
        "good.conf",
        &conf(&format!(
            "{EXAMPLE}\nAUTH_CREDENTIALS_DEFAULT_LIFETIME_SECS \"3600\"\nACS_ERROR_HANDLER \"* /error.html\""
        )),
    );
    let (code, out, _) = cli(&["--check-config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("directives dacs_signout does not read (ignored):"), "{out}");
    assert!(
        out.contains("line 6: AUTH_CREDENTIALS_DEFAULT_LIFETIME_SECS")
            && out.contains("line 7: ACS_ERROR_HANDLER"),
        "{out}"
    );
    assert!(out.ends_with(": ok\n"), "{out}");

    let bad = dir.write("bad.conf", &conf(&format!("{EXAMPLE}\nSECURE_MODE \"sometimes\"")));
    let (code, out, _) = cli(&["--check-config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("bad.conf: line 6: SECURE_MODE: invalid value \"sometimes\""), "{out}");

    let expr = dir.write("expr.conf", &conf(&format!("{EXAMPLE}\nJURISDICTION_NAME ${{Conf::X}}")));
    let (code, out, _) = cli(&["--check-config", expr.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("line 6: JURISDICTION_NAME: only a double-quoted literal value"), "{out}");

    let regex =
        dir.write("regex.conf", &conf(&format!("{EXAMPLE}\nSIGNOUT_HANDLER_ALLOW \"re:(\"")));
    let (code, out, _) = cli(&["--check-config", regex.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");

    let juris = dir.write(
        "juris.conf",
        "<Configuration><Default>\nFEDERATION_NAME \"EX\"\nCOOKIE_NO_DOMAIN \"yes\"\n</Default>\n\
         <Jurisdiction uri=\"ex.org/cgi-bin\">\nJURISDICTION_NAME \"J\"\n</Jurisdiction></Configuration>",
    );
    let (code, out, _) = cli(&["--check-config", juris.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: a request matching no Jurisdiction uri would fail: JURISDICTION_NAME is required"),
        "{out}"
    );

    let (code, out, _) = cli(&["--check-config", "/nonexistent.conf"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("/nonexistent.conf: cannot read the file"), "{out}");
}

#[test]
fn version_help_and_usage() {
    let (code, out, _) = cli(&["--version"]);
    assert_eq!(
        (code, out.as_str()),
        (0, concat!("dacs_signout ", env!("CARGO_PKG_VERSION"), "\n"))
    );
    assert_eq!(cli(&["--help"]).0, 0);
    let (code, _, err) = cli(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("GATEWAY_INTERFACE"));
    assert_eq!(cli(&["--frobnicate"]).0, 2);
}

/// The README's first command: a local portal, a real CGI child, real HTTP.
#[test]
fn demo_serves_a_portal_and_signs_out_through_the_real_binary() {
    let mut child = Command::new(BIN)
        .env_clear()
        .args(["demo", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap();
    let get = |target: &str, cookie: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let signin = get("/signin?user=alice", "");
    assert!(signin.contains("Set-Cookie: DACS:DEMO::DEMO:alice="), "{signin}");
    assert!(get("/", "DACS:DEMO::DEMO:alice=x").contains("DACS:DEMO::DEMO:alice"));
    let signout =
        get("/cgi-bin/dacs_signout?DACS_SIGNOUT_HANDLER=/", "DACS:DEMO::DEMO:alice=x; theme=dark");
    let _ = child.kill();
    let _ = child.wait();
    assert!(signout.starts_with("HTTP/1.1 302 Found\r\n"), "{signout}");
    assert!(signout.contains(&format!(
        "Location: http://127.0.0.1:{port}/?DACS_VERSION=1.4&DACS_FEDERATION=DEMO&DACS_JURISDICTION=DEMO"
    )));
    assert!(signout.contains("Set-Cookie: DACS:DEMO::DEMO:alice=; Max-Age=0"));
    assert!(!signout.contains("theme="));
}

/// Every configuration an operator may copy passes `--check-config`: each `xml` block of the
/// README, and every `dacs.conf` under `examples/`.
#[test]
fn every_example_configuration_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut examples: Vec<(String, String)> = readme
        .split("```xml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .enumerate()
        .map(|(i, text)| (format!("README.md xml block {}", i + 1), text.to_owned()))
        .collect();
    assert!(!examples.is_empty());
    let mut dirs = vec![root.join("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == "dacs.conf") {
                examples
                    .push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let dir = TempDir::new("examples");
    for (name, text) in examples {
        let file = dir.write("dacs.conf", &text.replace("@ROOT@", dir.path().to_str().unwrap()));
        let (code, out, _) = cli(&["--check-config", file.to_str().unwrap()]);
        // A spool that does not exist here is the only problem an example may have: it is
        // created on the real server by the install.
        let problems: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(": line ") || l.contains("relay: spool"))
            .filter(|l| !l.contains("does not exist"))
            .collect();
        assert!(
            code == 0 || problems.is_empty() && out.contains("does not exist"),
            "{name}:\n{out}"
        );
        assert!(problems.is_empty(), "{name}:\n{out}");
    }
}
