//! `dacs_signout --check-config [FILE]`: every problem of a configuration, with its line and in
//! the operator's own text; what it skips and ignores; whether the relay can work from here.
//! Exit 1 on a problem.

use std::io::Write;
use std::path::Path;

use crate::cgi::Env;
use crate::config::{self, Config, Source};
use crate::relay::{self, RelayIdentity};
use crate::spool::Spool;

/// The configuration, or every problem that kept it from loading, written to `out`.
pub fn loaded(config: config::Loaded, out: &mut dyn Write) -> Option<Config> {
    match config {
        Ok(config) => Some(config),
        Err((source, problems)) => {
            for problem in &problems.0 {
                let _ = writeln!(out, "{source}: {problem}");
            }
            None
        }
    }
}

pub fn run(config: config::Loaded, env: &Env, out: &mut dyn Write) -> i32 {
    let Some(config) = loaded(config, out) else { return 1 };
    let source = &config.source;
    if *source == Source::BuiltIn {
        let _ = writeln!(
            out,
            "built-in demo: WARNING: no configuration file. DACS_SIGNOUT_CONF is unset and {} does \
             not exist, so requests run on the built-in DEMO federation (host-only cookies, \
             SECURE_MODE off). Write {} or set DACS_SIGNOUT_CONF.",
            config::DEFAULT_PATH,
            config::DEFAULT_PATH
        );
    }
    let mut problems = config.check();
    for problem in config.default_alone_problems() {
        let _ = writeln!(
            out,
            "{source}: warning: a request matching no Jurisdiction uri would fail: {problem}"
        );
    }
    if !config.skipped.is_empty() {
        let _ = writeln!(out, "{source}: elements skipped (dacs_signout does not use them):");
        for s in &config.skipped {
            let id = s.id.as_ref().map(|id| format!(" id=\"{id}\"")).unwrap_or_default();
            let _ = writeln!(out, "  line {}: <{}{id}>", s.line, s.element);
        }
    }
    let unknown = config.unknown_directives();
    if !unknown.is_empty() {
        let _ = writeln!(out, "{source}: directives dacs_signout does not read (ignored):");
        for d in unknown {
            let _ = writeln!(out, "  line {}: {}", d.line, d.name);
        }
    }
    if let Ok(spools) = config.relay_spools() {
        for spooled in &spools {
            relay_check(&config, &spooled.relay, env, out, &mut problems);
        }
    }
    for problem in &problems {
        let _ = writeln!(out, "{source}: {problem}");
    }
    match problems.len() {
        0 => {
            let _ = writeln!(out, "{source}: ok");
            0
        }
        n => {
            let plural = if n == 1 { "" } else { "s" };
            let _ = writeln!(out, "{source}: {n} problem{plural}");
            1
        }
    }
}

/// The relay of one spool: its hub, its spool (exists, this user's, nobody else's), its token.
/// Run as the web server's user with the relay's environment, this says whether the relay will
/// work; run as another user, it says what it could not judge.
fn relay_check(
    config: &Config,
    settings: &relay::Settings,
    env: &Env,
    out: &mut dyn Write,
    problems: &mut Vec<config::ConfigError>,
) {
    let source = &config.source;
    let Some(route) = relay::route(env, settings) else {
        let _ = writeln!(out, "{source}: relay: off (no IDMS_BASE_API_URL)");
        return;
    };
    let identity = match settings.identity {
        RelayIdentity::RemoteUser => "REMOTE_USER only",
        RelayIdentity::Cookies => "every removed credential (RELAY_IDENTITY \"cookies\")",
    };
    let _ = writeln!(out, "{source}: relay: hub {}, relays {identity}", route.endpoint);
    let dir = Path::new(&settings.spool_dir);
    match Spool::open(dir, settings.spool_max) {
        Ok(spool) => {
            let [new, work, dead] = spool.counts().unwrap_or_default();
            let _ = writeln!(
                out,
                "{source}: relay: spool {}: ok ({new} waiting, {work} claimed, {dead} dead)",
                dir.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(config::ConfigError::general(format!(
                "relay: spool {} does not exist: create it for the web server's user, e.g. \
                 install -d -o www-data -g www-data -m 0700 {}",
                dir.display(),
                dir.display()
            )));
        }
        Err(e) => problems.push(config::ConfigError::general(format!(
            "relay: spool {} cannot be used by this user (uid {}): {e}",
            dir.display(),
            rustix::process::geteuid().as_raw()
        ))),
    }
    let token = [route.token_env.as_str(), "PROFILES_API_BEARER_TOKEN"]
        .into_iter()
        .find(|name| env.soft(name).is_some_and(|v| !v.is_empty()));
    match token {
        Some(name) => {
            let _ = writeln!(out, "{source}: relay: the hub's token is in ${name}");
        }
        None => {
            let _ = writeln!(
                out,
                "{source}: relay: warning: ${} is not set here: the web server and the relay \
                 timer must have it (the check cannot tell unless run with their environment)",
                route.token_env
            );
        }
    }
}
