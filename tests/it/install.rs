//! `scripts/install` for real (README "Install"): into a fresh `DESTDIR` with
//! `PREFIX=/usr/local`, every file checked (its mode, and its owner when the tests run as root),
//! the systemd units checked by `systemd-analyze verify`, then each server started from what
//! was installed (the installed program, `dacs.conf` and example mounts, the server's
//! directories made by the README's own lines) and a real signout through it; and the guard
//! run as its unit runs it, with the installed receiver, on the installed registry directory.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::fastcgi::{AUTHORIZER, ask};
use crate::support::hub::{Behaviour, Hub};
use crate::support::servers::{CGI_PATH, Request, ServerKind, Setup, render, running_as_root};
use crate::support::{BIN, fresh_dir, observe};

const PREFIX: &str = "/usr/local";
const PROGRAM: &str = "/usr/local/lib/dacs-signout/dacs_signout";
const CLI: &str = "/usr/local/lib/dacs-signout/dacs_signout_cli";
const RECEIVER: &str = "/usr/local/lib/dacs-signout/dacs_logout_receiver";
const GUARD: &str = "/usr/local/lib/dacs-signout/dacs_guard";
const HUB: &str = "/usr/local/lib/dacs-signout/dacs_logout_hub";
const MAN: &str = "/usr/local/share/man/man8";
/// The manual pages, as they are in `man/`.
const PAGES: [&str; 4] =
    ["dacs_signout.8", "dacs_logout_receiver.8", "dacs_guard.8", "dacs_logout_hub.8"];
const CONF: &str = "/etc/dacs-signout/dacs.conf";
const EXAMPLES: &str = "/usr/local/share/doc/dacs-signout/examples";
const SPOOL: &str = "/var/spool/dacs-signout";
const REGISTRY_DIR: &str = "/var/lib/dacs-signout";
const HUB_SPOOL: &str = "/var/spool/dacs-logout-hub";
const UNITS: &str = "/usr/local/lib/systemd/system";

/// The examples installed, as they are in the source tree.
const EXAMPLE_FILES: [&str; 12] = [
    "apache/httpd.conf",
    "apache/hub.conf",
    "lighttpd/lighttpd.conf",
    "lighttpd/hub.conf",
    "nginx/nginx.conf",
    "nginx/hub.conf",
    "nginx/fcgiwrap.sh",
    "dacs.conf",
    "systemd/dacs-signout-relay.service",
    "systemd/dacs-signout-relay.timer",
    "systemd/dacs-guard.service",
    "systemd/dacs-logout-hub.service",
];

/// Every file and directory the installer makes (beside the directories leading to them):
/// path, mode, owner and group when installed by root.
fn expected() -> Vec<(String, u32, &'static str)> {
    let mut files = vec![
        (PROGRAM.to_owned(), 0o755, "root:root"),
        (CLI.to_owned(), 0o755, "root:root"),
        (RECEIVER.to_owned(), 0o755, "root:root"),
        (GUARD.to_owned(), 0o755, "root:root"),
        (HUB.to_owned(), 0o755, "root:root"),
        ("/usr/local/lib/dacs-signout".to_owned(), 0o755, "root:root"),
        ("/usr/local/share/doc/dacs-signout/README.md".to_owned(), 0o644, "root:root"),
        ("/etc/dacs-signout".to_owned(), 0o755, "root:root"),
        (CONF.to_owned(), 0o640, "root:www-data"),
        (SPOOL.to_owned(), 0o700, "www-data:www-data"),
        (REGISTRY_DIR.to_owned(), 0o700, "www-data:www-data"),
        (HUB_SPOOL.to_owned(), 0o700, "www-data:www-data"),
        (format!("{UNITS}/dacs-signout-relay.service"), 0o644, "root:root"),
        (format!("{UNITS}/dacs-signout-relay.timer"), 0o644, "root:root"),
        (format!("{UNITS}/dacs-guard.service"), 0o644, "root:root"),
        (format!("{UNITS}/dacs-logout-hub.service"), 0o644, "root:root"),
    ];
    for page in PAGES {
        files.push((format!("{MAN}/{page}"), 0o644, "root:root"));
    }
    for example in EXAMPLE_FILES {
        files.push((format!("{EXAMPLES}/{example}"), 0o644, "root:root"));
    }
    files
}

/// One run of the installer into its own `DESTDIR`, removed on drop (kept when a test failed).
struct Installation {
    destdir: PathBuf,
    output: String,
}

impl Installation {
    #[track_caller]
    fn new(label: &str) -> Installation {
        let destdir = fresh_dir(&format!("dacs-install-{label}"));
        let mut installation = Installation { destdir, output: String::new() };
        installation.output = installation.run(&["--bin", BIN]);
        installation
    }

    /// `scripts/install ARGS` with this `DESTDIR` and `PREFIX=/usr/local`; its stdout, and a
    /// failure with its output when it fails.
    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install"))
            .args(args)
            .env("DESTDIR", &self.destdir)
            .env("PREFIX", PREFIX)
            .env_remove("SYSTEMD_UNIT_DIR")
            .env_remove("SUDO_USER")
            .output()
            .expect("run scripts/install");
        let text = output_text(&out);
        assert!(out.status.success(), "scripts/install {args:?}: {}\n{text}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The installed path of `path` (an absolute path on the target system).
    fn path(&self, path: &str) -> PathBuf {
        self.destdir.join(path.trim_start_matches('/'))
    }

    /// Every path under `DESTDIR`, as on the target system, sorted.
    fn all_paths(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                out.push(format!("/{}", path.strip_prefix(base).unwrap().display()));
                if entry.file_type().unwrap().is_dir() {
                    walk(&path, base, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.destdir, &self.destdir, &mut out);
        out.sort();
        out
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("install: kept {}", self.destdir.display());
        } else {
            let _ = fs::remove_dir_all(&self.destdir);
        }
    }
}

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn source(path: &str) -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The name of a user or group id, from `/etc/passwd` or `/etc/group`.
fn name_of(id: u32, file: &str) -> String {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2).and_then(|n| n.parse::<u32>().ok()) == Some(id))
        .map_or_else(|| id.to_string(), |f| f[0].to_owned())
}

#[test]
fn installs_every_file_with_its_mode_and_owner() {
    let installed = Installation::new("files");
    let root = running_as_root();
    for (path, mode, owner) in expected() {
        let meta = fs::metadata(installed.path(&path))
            .unwrap_or_else(|e| panic!("{path}: {e}\n{}", installed.output));
        assert_eq!(meta.mode() & 0o7777, mode, "{path}: mode {:o}", meta.mode() & 0o7777);
        if root {
            let actual = format!(
                "{}:{}",
                name_of(meta.uid(), "/etc/passwd"),
                name_of(meta.gid(), "/etc/group")
            );
            assert_eq!(actual, owner, "{path}");
        }
        // One line per file, naming it.
        let line = format!("installed {}", installed.path(&path).display());
        assert!(installed.output.contains(&line), "no line {line:?}:\n{}", installed.output);
    }
    // It says which form of the program it installs: the tests' build is, like the release
    // build, static and non-PIE (README "The build").
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    assert!(
        installed.output.contains("is a static, non-PIE executable (the fast build)"),
        "{}",
        installed.output
    );
    if !root {
        assert!(installed.output.contains("not root: not chowned to root:www-data"));
        observe("install", "ownership", "not checked: the tests do not run as root");
    }

    // Nothing else: every path under DESTDIR is one of these or leads to one. No token file.
    let expected: Vec<String> = expected().into_iter().map(|(p, _, _)| p).collect();
    for path in installed.all_paths() {
        assert!(
            expected.iter().any(|e| *e == path || e.starts_with(&format!("{path}/"))),
            "installed, but not expected: {path}"
        );
    }
    assert!(!installed.path("/etc/dacs-signout/relay.env").exists());

    // The files are the source tree's: the program given and the two beside it, the manual
    // page, the examples as shipped, and the configuration from the example.
    assert!(fs::read(installed.path(PROGRAM)).unwrap() == fs::read(BIN).unwrap());
    assert!(
        fs::read(installed.path(RECEIVER)).unwrap() == fs::read(crate::support::RECEIVER).unwrap()
    );
    assert!(fs::read(installed.path(GUARD)).unwrap() == fs::read(crate::support::GUARD).unwrap());
    assert!(fs::read(installed.path(HUB)).unwrap() == fs::read(crate::support::HUB).unwrap());
    for page in PAGES {
        let path = installed.path(&format!("{MAN}/{page}"));
        assert!(fs::read(&path).unwrap() == source(&format!("man/{page}")), "{page}");
    }
    for example in EXAMPLE_FILES {
        let path = installed.path(&format!("{EXAMPLES}/{example}"));
        assert!(fs::read(&path).unwrap() == source(&format!("examples/{example}")), "{example}");
    }
    assert!(fs::read(installed.path(CONF)).unwrap() == source("examples/dacs.conf"));
}

#[test]
fn a_second_install_keeps_the_configuration_and_uninstall_keeps_it_and_the_spool() {
    let installed = Installation::new("again");
    let conf = installed.path(CONF);
    let edited = format!("{}<!-- edited by the operator -->\n", fs::read_to_string(&conf).unwrap());
    fs::write(&conf, &edited).unwrap();

    let again = installed.run(&["--bin", BIN]);
    assert_eq!(fs::read_to_string(&conf).unwrap(), edited, "the configuration was replaced");
    assert!(again.contains(&format!("kept {}", conf.display())), "{again}");

    let removed = installed.run(&["--uninstall"]);
    for path in [
        "/usr/local/lib/dacs-signout",
        PROGRAM,
        RECEIVER,
        GUARD,
        HUB,
        &format!("{MAN}/dacs_signout.8"),
        &format!("{MAN}/dacs_logout_hub.8"),
        "/usr/local/share/doc/dacs-signout",
        &format!("{UNITS}/dacs-signout-relay.service"),
        &format!("{UNITS}/dacs-signout-relay.timer"),
        &format!("{UNITS}/dacs-guard.service"),
        &format!("{UNITS}/dacs-logout-hub.service"),
    ] {
        assert!(!installed.path(path).exists(), "{path} is still there:\n{removed}");
        assert!(removed.contains(&format!("removed {}", installed.path(path).display())), "{path}");
    }
    assert_eq!(fs::read_to_string(&conf).unwrap(), edited);
    assert!(installed.path(SPOOL).is_dir() && installed.path(REGISTRY_DIR).is_dir());
    assert!(installed.path(HUB_SPOOL).is_dir());
    assert!(removed.contains("kept") && removed.contains("the spool"), "{removed}");
    assert!(removed.contains("the registry"), "{removed}");
}

/// `--bin` without the other programs beside it: refused, nothing installed.
#[test]
fn a_bin_without_the_other_programs_beside_it_is_refused() {
    let dir = fresh_dir("dacs-install-lonely");
    let lonely = dir.join("dacs_signout");
    fs::copy(BIN, &lonely).unwrap();
    let destdir = dir.join("root");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install"))
        .arg("--bin")
        .arg(&lonely)
        .env("DESTDIR", &destdir)
        .env("PREFIX", PREFIX)
        .env_remove("SYSTEMD_UNIT_DIR")
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("no ") && text.contains("dacs_signout_cli beside"), "{text}");
    assert!(!destdir.exists(), "something was installed: {text}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_units_name_the_installed_program_and_systemd_accepts_them() {
    let installed = Installation::new("units");
    let service =
        fs::read_to_string(installed.path(&format!("{UNITS}/dacs-signout-relay.service"))).unwrap();
    let timer =
        fs::read_to_string(installed.path(&format!("{UNITS}/dacs-signout-relay.timer"))).unwrap();
    let lines: Vec<&str> = service.lines().map(str::trim).collect();
    for line in [
        format!("ExecStart={PROGRAM} relay"),
        "Type=oneshot".to_owned(),
        "User=www-data".to_owned(),
        "Group=www-data".to_owned(),
        format!("Environment=DACS_SIGNOUT_CONF={CONF}"),
        "EnvironmentFile=-/etc/dacs-signout/relay.env".to_owned(),
        "ProtectSystem=strict".to_owned(),
        format!("ReadWritePaths=-{SPOOL}"),
        "NoNewPrivileges=yes".to_owned(),
        "PrivateTmp=yes".to_owned(),
    ] {
        assert!(lines.contains(&line.as_str()), "no line {line:?} in the service:\n{service}");
    }
    assert!(!service.contains('@') && !timer.contains('@'), "a placeholder is left");
    // The token's variable is named only in comments (the unit says where the token lives).
    let settings = service.lines().filter(|l| !l.trim_start().starts_with('#'));
    assert!(settings.clone().all(|l| !l.contains("TOKEN")), "a token in the unit:\n{service}");
    let timer_lines: Vec<&str> = timer.lines().map(str::trim).collect();
    for line in ["OnCalendar=minutely", "Unit=dacs-signout-relay.service", "WantedBy=timers.target"]
    {
        assert!(timer_lines.contains(&line), "no line {line:?} in the timer:\n{timer}");
    }

    assert!(lines.contains(&format!("ReadWritePaths=-{REGISTRY_DIR}").as_str()), "{service}");

    // The guard's service.
    let guard = fs::read_to_string(installed.path(&format!("{UNITS}/dacs-guard.service"))).unwrap();
    let guard_lines: Vec<&str> = guard.lines().map(str::trim).collect();
    for line in [
        format!("ExecStart={GUARD} --listen unix:/run/dacs-guard/guard.sock"),
        "User=www-data".to_owned(),
        "Group=www-data".to_owned(),
        format!("Environment=DACS_SIGNOUT_CONF={CONF}"),
        "EnvironmentFile=-/etc/dacs-signout/guard.env".to_owned(),
        "RuntimeDirectory=dacs-guard".to_owned(),
        "Restart=on-failure".to_owned(),
        "ProtectSystem=strict".to_owned(),
        format!("ReadWritePaths=-{REGISTRY_DIR}"),
        "NoNewPrivileges=yes".to_owned(),
        "PrivateTmp=yes".to_owned(),
        "CapabilityBoundingSet=".to_owned(),
        "WantedBy=multi-user.target".to_owned(),
    ] {
        assert!(guard_lines.contains(&line.as_str()), "no line {line:?} in the guard:\n{guard}");
    }
    assert!(!guard.contains('@'), "a placeholder is left in the guard's unit");
    let settings = guard.lines().filter(|l| !l.trim_start().starts_with('#'));
    assert!(settings.clone().all(|l| !l.contains("KEY")), "a key in the unit:\n{guard}");

    // The hub's delivery process.
    let hub =
        fs::read_to_string(installed.path(&format!("{UNITS}/dacs-logout-hub.service"))).unwrap();
    let hub_lines: Vec<&str> = hub.lines().map(str::trim).collect();
    for line in [
        format!("ExecStart={HUB} deliver"),
        "User=www-data".to_owned(),
        "Group=www-data".to_owned(),
        "Environment=DACS_SIGNOUT_CONF=/etc/dacs-signout/hub.conf".to_owned(),
        "EnvironmentFile=-/etc/dacs-signout/hub.env".to_owned(),
        "Restart=always".to_owned(),
        "ProtectSystem=strict".to_owned(),
        format!("ReadWritePaths=-{HUB_SPOOL}"),
        "NoNewPrivileges=yes".to_owned(),
        "WantedBy=multi-user.target".to_owned(),
    ] {
        assert!(hub_lines.contains(&line.as_str()), "no line {line:?} in the hub's unit:\n{hub}");
    }
    assert!(!hub.contains('@'), "a placeholder is left in the hub's unit");
    let settings = hub.lines().filter(|l| !l.trim_start().starts_with('#'));
    assert!(settings.clone().all(|l| !l.contains("TOKEN")), "a token in the unit:\n{hub}");

    // systemd's own check, with DESTDIR as the root (so that ExecStart's program is found) and
    // without the units they depend on (sysinit.target is not under DESTDIR).
    if !Path::new("/usr/bin/systemd-analyze").exists() {
        observe("install", "systemd-analyze verify", "skipped: systemd-analyze is not installed");
        return;
    }
    let out = Command::new("/usr/bin/systemd-analyze")
        .args(["verify", "--man=no", "--recursive-errors=no"])
        .arg(format!("--root={}", installed.destdir.display()))
        .args([
            format!("{UNITS}/dacs-signout-relay.service"),
            format!("{UNITS}/dacs-signout-relay.timer"),
            format!("{UNITS}/dacs-guard.service"),
            format!("{UNITS}/dacs-logout-hub.service"),
        ])
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success() && text.trim().is_empty(), "systemd-analyze verify: {text}");
    observe("install", "systemd-analyze verify", "accepted the four units");
}

/// The program checks the installed configuration as the user the servers run it as (so that
/// user can read it: root:www-data 0640).
#[test]
fn the_installed_configuration_passes_check_config_as_the_cgi_user() {
    let installed = Installation::new("check");
    let mut cmd = as_cgi_user(&installed.path(PROGRAM));
    let out = cmd.arg("--check-config").arg(installed.path(CONF)).output().unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.trim_end().ends_with(": ok"), "{text}");
}

/// `program`, run as www-data when the tests run as root (as the servers and the timer run it).
fn as_cgi_user(program: &Path) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=www-data", "--regid=www-data", "--init-groups", "--"]).arg(program);
        cmd.env_clear();
        cmd
    } else {
        let mut cmd = Command::new(program);
        cmd.env_clear();
        cmd
    }
}

/// The README's "Deploying" block for a server: the lines of the fenced block that renders its
/// template.
fn readme_block(template: &str) -> Vec<String> {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks: Vec<&str> = readme.split("```").skip(1).step_by(2).collect();
    let dir = template.split('/').next().expect("a directory");
    let needle = format!("sed \"$FILL\" $EX/{dir}/");
    let block = blocks
        .iter()
        .find(|b| b.contains(&needle))
        .unwrap_or_else(|| panic!("no block in the README renders {template}"));
    block.lines().skip(1).map(str::to_owned).collect()
}

/// The README's `install -d` lines for a server, as the test's user can run them: without
/// `sudo` (the tests run as root, or as the user the servers then run as, which needs no
/// chown).
fn readme_dirs(kind: ServerKind) -> Vec<String> {
    let root = running_as_root();
    let lines: Vec<String> = readme_block(kind.template())
        .into_iter()
        .filter(|l| l.starts_with("sudo install -d "))
        .map(|l| {
            let l = l.trim_start_matches("sudo ").to_owned();
            if root { l } else { l.replace("-o www-data -g www-data ", "") }
        })
        .collect();
    assert!(!lines.is_empty(), "no `sudo install -d` line for {}", kind.name());
    lines
}

/// The README's `FILL` sed script renders every installed template with no placeholder left.
#[test]
fn the_readme_fills_every_placeholder_of_the_installed_examples() {
    let installed = Installation::new("fill");
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let fill = readme.lines().find(|l| l.starts_with("FILL=\"")).expect("a FILL= line");
    for template in
        ["apache/httpd.conf", "lighttpd/lighttpd.conf", "nginx/nginx.conf", "nginx/fcgiwrap.sh"]
    {
        let path = installed.path(&format!("{EXAMPLES}/{template}"));
        let script = format!("ROOT=/srv/dacs-signout\n{fill}\nsed \"$FILL\" \"$1\"");
        let out = Command::new("/bin/sh").args(["-c", &script, "sh"]).arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        let rendered = String::from_utf8(out.stdout).unwrap();
        if let Err(e) = render(&rendered, &[]) {
            panic!("{template}, rendered with the README's FILL: {e}");
        }
        if template != "nginx/fcgiwrap.sh" {
            assert!(rendered.contains(PROGRAM) && rendered.contains(CONF), "{template}");
        }
    }
    for kind in [ServerKind::ApacheCgid, ServerKind::Lighttpd, ServerKind::Nginx] {
        let block = readme_block(kind.template());
        assert!(block.iter().any(|l| l.contains("sed \"$FILL\"")), "{}: {block:?}", kind.name());
    }
}

/// A cookie of the example federation, and two that are not its.
const JAR: &str = "DACS:EXAMPLE::FEDROOT:alice=c1; theme=dark; DACS:OTHER::X:eve=c2";
const EXPIRING: &str = "DACS:EXAMPLE::FEDROOT:alice=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/; Domain=example.org; Secure; HttpOnly";

/// The server as an operator sets it up from the installation: the installed examples, program
/// and configuration, the README's directories.
fn installed_server(kind: ServerKind, installed: &Installation) -> Setup {
    kind.setup()
        .examples(&installed.path(EXAMPLES))
        .program(&installed.path(PROGRAM))
        .conf_file(&installed.path(CONF))
        .make_dirs(&readme_dirs(kind))
}

fn signs_out_through_the_installed_files(kind: ServerKind) {
    let name = kind.name();
    let installed = Installation::new(name);
    let server = installed_server(kind, &installed).start();
    let context = || server.all_logs();

    let json = server.ask(&Request::get(&format!("{CGI_PATH}?FORMAT=JSON")).cookie(JAR));
    assert_eq!(json.status, 200, "{name}: {}\n{}", json.text(), context());
    assert_eq!(json.headers_named("Set-Cookie"), [EXPIRING], "{name}");
    let answer: Value = serde_json::from_slice(&json.body).expect("JSON");
    let answer = &answer["dacs_current_credentials"];
    assert_eq!(answer["federation_name"], "EXAMPLE", "{name}: {answer}");
    assert_eq!(answer["signed_out"][0]["username"], "alice", "{name}: {answer}");
    assert_eq!(answer["signed_out"].as_array().map(Vec::len), Some(1), "{name}: {answer}");

    // HTML: the example's SIGNOUT_HANDLER.
    let html = server.ask(&Request::get(CGI_PATH).cookie(JAR));
    assert_eq!(html.status, 302, "{name}: {}\n{}", html.text(), context());
    assert_eq!(
        html.header("Location"),
        Some(
            "https://www.example.org/goodbye.html?DACS_VERSION=1.4&DACS_FEDERATION=EXAMPLE&DACS_JURISDICTION=FEDROOT"
        ),
        "{name}"
    );
    // The installed configuration, not the built-in demo.
    let conf = installed.path(CONF);
    let line = server.program_log_line(&format!("config={}", conf.display()));
    assert!(line.contains("federation=EXAMPLE"), "{name}: {line}");
    observe(name, "signout through the installed files", "200 JSON, 302 HTML");
}

macro_rules! installed_server_tests {
    ($($test:ident => $kind:expr,)*) => {$(
        #[test]
        fn $test() {
            signs_out_through_the_installed_files($kind);
        }
    )*};
}

installed_server_tests! {
    apache_cgid_signs_out_through_the_installed_files => ServerKind::ApacheCgid,
    apache_cgi_signs_out_through_the_installed_files => ServerKind::ApacheCgi,
    lighttpd_signs_out_through_the_installed_files => ServerKind::Lighttpd,
    nginx_fcgiwrap_signs_out_through_the_installed_files => ServerKind::Nginx,
}

/// The token advice, followed: the token only in `/etc/dacs-signout/relay.env` (root, 0600),
/// Apache given it by the exact line the example says to add to `/etc/apache2/envvars` (run as
/// the user that starts Apache, before Apache), `PassEnv` uncommented, the installed
/// `dacs.conf` naming a hub: the hub gets the token. Then the drainer as the installed unit
/// runs it (its user, its environment, its command line, the token from the same file) finds
/// the installed spool usable and empty.
#[test]
fn the_token_reaches_the_hub_from_a_root_only_file() {
    const TOKEN: &str = "t0ken-from-relay-env";
    let installed = Installation::new("token");
    let hub = Hub::start(Behaviour::Ok);
    let env_file = installed.path("/etc/dacs-signout/relay.env");
    fs::write(&env_file, format!("COMMONS_PROFILES_API_TOKEN={TOKEN}\n")).unwrap();
    fs::set_permissions(&env_file, fs::Permissions::from_mode(0o600)).unwrap();

    // The operator's edits: the hub, the installed spool (here under DESTDIR), and every
    // removed credential relayed (no authentication module in this test).
    let conf = installed.path(CONF);
    let spool = installed.path(SPOOL);
    let text = fs::read_to_string(&conf).unwrap();
    let hub_line = "    #IDMS_BASE_API_URL \"https://profile.example.org/api/v1/\"\n";
    assert!(text.contains(hub_line), "the example dacs.conf has no commented hub line");
    let edited = text.replace(
        hub_line,
        &format!(
            "    IDMS_BASE_API_URL \"{}\"\n    RELAY_SPOOL_DIR \"{}\"\n    RELAY_IDENTITY \"cookies\"\n",
            hub.base(),
            spool.display()
        ),
    );
    fs::write(&conf, edited).unwrap();

    let apache =
        fs::read_to_string(installed.path(&format!("{EXAMPLES}/apache/httpd.conf"))).unwrap();
    let envvars = apache
        .lines()
        .map(|l| l.trim_start_matches([' ', '#']))
        .find(|l| l.starts_with("if [ -f /etc/dacs-signout/relay.env ]"))
        .expect("the envvars line in the Apache example");
    let envvars = envvars.replace("/etc/dacs-signout/relay.env", &env_file.display().to_string());

    let server = installed_server(ServerKind::ApacheCgid, &installed)
        .pass_token()
        .preamble(&envvars)
        .start();
    let response = server.ask(&Request::get(&format!("{CGI_PATH}?FORMAT=JSON")).cookie(JAR));
    assert_eq!(response.status, 200, "{}\n{}", response.text(), server.all_logs());
    let got = hub.wait_for(1);
    assert_eq!(got[0].header("Authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(got[0].user_name(), "alice");
    server.program_log_line("relay=spooled:1");
    let log = wait_for_delivery(&spool.join("relay.log"));
    assert!(!log.contains(TOKEN), "{log}");

    // The drainer as dacs-signout-relay.service runs it.
    let service =
        fs::read_to_string(installed.path(&format!("{UNITS}/dacs-signout-relay.service"))).unwrap();
    let value = |key: &str| {
        service
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the service"))
            .to_owned()
    };
    let exec = value("ExecStart");
    let (program, args) = exec.split_once(' ').unwrap();
    assert_eq!(program, PROGRAM);
    let (var, conf_path) =
        value("Environment").split_once('=').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
    assert_eq!((var.as_str(), conf_path.as_str()), ("DACS_SIGNOUT_CONF", CONF));
    assert_eq!(value("EnvironmentFile"), "-/etc/dacs-signout/relay.env");
    let mut drainer = as_cgi_user(&installed.path(program));
    drainer.args(args.split(' ')).env(var, &conf);
    // systemd reads EnvironmentFile= as root and hands the variables over.
    for line in fs::read_to_string(&env_file).unwrap().lines() {
        let (k, v) = line.split_once('=').unwrap();
        drainer.env(k, v);
    }
    let drained = drainer.output().unwrap();
    let text = output_text(&drained);
    assert!(drained.status.success(), "{text}");
    let wanted = format!(
        "dacs_signout relay: {}: delivered=0 retried=0 dead=0 not_due=0 busy=0 reclaimed=0",
        spool.display()
    );
    assert!(text.contains(&wanted), "{text}");
}

/// The relay log once it says `outcome=delivered` (the delivery child writes it after the hub's
/// answer), waiting at most 10 s.
#[track_caller]
fn wait_for_delivery(log: &Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains("outcome=delivered") {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "no delivery in {}: {text}", log.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A process started by a test, killed by process id on drop.
struct Running(Option<std::process::Child>);

impl Running {
    /// SIGTERM, and the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The guard as `dacs-guard.service` runs it (its user, its command line, its environment: the
/// configuration and the key from a root-only `guard.env`), its socket where the unit's
/// RuntimeDirectory puts it (here under DESTDIR), the installed `dacs.conf` naming the SQLite
/// registry in the directory the installer made; and the installed receiver, run as the web
/// server runs it (the same user), writing the revocation there: the guard passes a
/// credential, the receiver takes the hub's call, the guard refuses the credential and
/// expires it, and stops cleanly on SIGTERM.
#[test]
fn the_guard_runs_as_its_unit_runs_it_beside_the_installed_receiver() {
    const KEY: &str = "an-installed-fingerprint-key-0123456789";
    const TOKEN: &str = "t0ken-from-receiver-env";
    let installed = Installation::new("guard");
    let registry = installed.path(&format!("{REGISTRY_DIR}/registry.db"));
    let conf = installed.path(CONF);
    let text = fs::read_to_string(&conf).unwrap();
    let registry_line = "    #REGISTRY \"sqlite:/var/lib/dacs-signout/registry.db\"\n";
    assert!(text.contains(registry_line), "the example dacs.conf has no commented REGISTRY");
    let edited =
        text.replace(registry_line, &format!("    REGISTRY \"sqlite:{}\"\n", registry.display()));
    fs::write(&conf, edited).unwrap();
    let env_file = installed.path("/etc/dacs-signout/guard.env");
    fs::write(&env_file, format!("DACS_REGISTRY_KEY={KEY}\n")).unwrap();
    fs::set_permissions(&env_file, fs::Permissions::from_mode(0o600)).unwrap();

    // What systemd does for the unit: the RuntimeDirectory, the user's, mode 0750.
    let service =
        fs::read_to_string(installed.path(&format!("{UNITS}/dacs-guard.service"))).unwrap();
    let value = |key: &str| {
        service
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the guard's unit"))
            .to_owned()
    };
    let runtime = installed.path(&format!("/run/{}", value("RuntimeDirectory")));
    fs::create_dir_all(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o750)).unwrap();
    if running_as_root() {
        let out = Command::new("chown").arg("www-data:www-data").arg(&runtime).output().unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let exec = value("ExecStart");
    let mut words = exec.split(' ');
    let program = words.next().unwrap();
    assert_eq!(program, GUARD);
    let args: Vec<String> = words
        .map(|w| match w.strip_prefix("unix:") {
            Some(path) => format!("unix:{}", installed.path(path).display()),
            None => w.to_owned(),
        })
        .collect();
    let socket = installed.path("/run/dacs-guard/guard.sock");
    assert!(args.contains(&format!("unix:{}", socket.display())), "{args:?}");
    let (var, conf_path) =
        value("Environment").split_once('=').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
    assert_eq!((var.as_str(), conf_path.as_str()), ("DACS_SIGNOUT_CONF", CONF));
    assert_eq!(value("EnvironmentFile"), "-/etc/dacs-signout/guard.env");
    let mut cmd = as_cgi_user(&installed.path(program));
    cmd.args(&args).env(&var, &conf).stderr(std::process::Stdio::piped());
    // systemd reads EnvironmentFile= as root and hands the variables over.
    for line in fs::read_to_string(&env_file).unwrap().lines() {
        let (k, v) = line.split_once('=').unwrap();
        cmd.env(k, v);
    }
    let mut guard = Running(Some(cmd.spawn().unwrap()));
    // Its stderr (journald's, under systemd) read to the end: the first line says it listens.
    let stderr = guard.0.as_mut().unwrap().stderr.take().unwrap();
    let (said, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    let line = lines.recv_timeout(std::time::Duration::from_secs(10)).expect("the guard starts");
    assert!(line.contains(&format!("listening on unix:{}", socket.display())), "{line}");

    let jar = "DACS:EXAMPLE::FEDROOT:alice=first-sign-in";
    let authorize = || ask(&socket, AUTHORIZER, &[("HTTP_COOKIE", jar), ("REQUEST_URI", "/")]);
    assert_eq!(authorize().status, 200);
    std::thread::sleep(std::time::Duration::from_millis(20));

    // The hub's call, to the installed receiver run as the web server runs it.
    let mut receiver = as_cgi_user(&installed.path(RECEIVER));
    let out = receiver
        .envs([
            ("DACS_SIGNOUT_CONF", conf.display().to_string().as_str()),
            ("DACS_RECEIVER_TOKEN", TOKEN),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REQUEST_METHOD", "POST"),
            ("QUERY_STRING", "username=alice"),
            ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", "0"),
            ("HTTP_AUTHORIZATION", &format!("Bearer {TOKEN}")),
            ("SERVER_NAME", "www.example.org"),
            ("SERVER_PORT", "443"),
            ("SCRIPT_NAME", "/api/logout/"),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(text.starts_with("Status: 200"), "{text}");
    assert!(text.contains("kept=registry"), "{text}");

    let refused = authorize();
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.expired(), ["DACS:EXAMPLE::FEDROOT:alice"]);
    let status = guard.stop();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed");
    let mut last = Vec::new();
    while let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(5)) {
        last.push(line);
    }
    assert!(last.iter().any(|l| l.contains("\"refusals\":1")), "{last:?}");
    observe("install", "the guard as its unit runs it", "passed, refused after the hub's call");
}
