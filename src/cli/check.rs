//! `dacs_signout --check-config [FILE]`: every problem of a configuration, with its line and in
//! the operator's own text; what it skips and ignores; whether the relay can work from here.
//! Exit 1 on a problem.

use std::io::Write;
use std::path::Path;

use crate::cgi::Env;
use crate::config::{self, Config, Source};
use crate::registry::{self, Location};
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
    registry_check(&config, env, out, &mut problems);
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

/// Each registry the configuration names (§12): where it is, whether it can be reached, whether
/// the key and the receiver's tokens are in this environment, and whether one SQLite file is
/// asked to serve jurisdictions on several hosts (it is one machine's). The SQLite file is not
/// opened: run as root, that would leave files the web server's user cannot write.
fn registry_check(
    config: &Config,
    env: &Env,
    out: &mut dyn Write,
    problems: &mut Vec<config::ConfigError>,
) {
    let source = &config.source;
    let sections = config.section_settings();
    let mut seen: Vec<&Location> = Vec::new();
    for (_, settings) in &sections {
        let Some(registry) = &settings.registry else { continue };
        if seen.contains(&&registry.location) {
            continue;
        }
        seen.push(&registry.location);
        let location = &registry.location;
        match location {
            Location::Sqlite(path) => {
                let dir = path.parent().unwrap_or(Path::new("/"));
                match (std::fs::metadata(path), std::fs::metadata(dir)) {
                    (Ok(meta), _) => {
                        use std::os::unix::fs::MetadataExt;
                        let _ = writeln!(
                            out,
                            "{source}: registry: {location}: exists (owner uid {}, mode {:o})",
                            meta.uid(),
                            meta.mode() & 0o7777
                        );
                    }
                    (Err(_), Ok(meta)) if meta.is_dir() => {
                        let _ = writeln!(
                            out,
                            "{source}: registry: {location}: created on first use in {}",
                            dir.display()
                        );
                    }
                    _ => problems.push(config::ConfigError::general(format!(
                        "registry: {location}: the directory {} does not exist: create it for \
                         the web server's user, e.g. install -d -o www-data -g www-data -m 0700 {}",
                        dir.display(),
                        dir.display()
                    ))),
                }
                let hosts = hosts_sharing(&sections, location);
                if hosts.len() > 1 {
                    let _ = writeln!(
                        out,
                        "{source}: registry: warning: {location} is one machine's file, and \
                         jurisdictions on {} hosts use it ({}): if they are served by different \
                         machines, each sees only its own revocations; use a shared registry \
                         (REGISTRY \"redis://...\")",
                        hosts.len(),
                        hosts.join(", ")
                    );
                }
            }
            Location::Redis(_) => {
                let federation = &settings.rules.federation_name;
                match registry::open(registry, federation, env) {
                    Ok(_) => {
                        let _ = writeln!(out, "{source}: registry: {location}: reachable");
                    }
                    Err(e) => {
                        let _ = writeln!(
                            out,
                            "{source}: registry: warning: {location} cannot be reached from here: \
                             {e}"
                        );
                    }
                }
            }
        }
        match env.raw(&registry.key_env).map(<[u8]>::len) {
            Some(n) if n >= 16 => {
                let _ = writeln!(
                    out,
                    "{source}: registry: the fingerprint key is in ${}",
                    registry.key_env
                );
            }
            Some(_) => problems.push(config::ConfigError::general(format!(
                "registry: ${} holds fewer than 16 bytes: the guard will not start with it",
                registry.key_env
            ))),
            None => {
                let _ = writeln!(
                    out,
                    "{source}: registry: warning: ${} (the fingerprint key) is not set here: the \
                     guard, the web server and the relay timer must all have the same one",
                    registry.key_env
                );
            }
        }
        let tokens: Vec<&String> = settings.receiver.token_envs.iter().collect();
        let set: Vec<&&String> =
            tokens.iter().filter(|name| env.soft(name).is_some_and(|v| !v.is_empty())).collect();
        if set.is_empty() {
            let names: Vec<String> = tokens.iter().map(|n| format!("${n}")).collect();
            let _ = writeln!(
                out,
                "{source}: receiver: warning: no token variable is set here ({}): the receiver \
                 answers 500 until the web server gives it one",
                names.join(", ")
            );
        }
    }
}

/// The hosts of the jurisdictions that use `location` (`Default` counts as no host).
fn hosts_sharing(
    sections: &[(Option<&str>, config::Settings)],
    location: &Location,
) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for (uri, settings) in sections {
        let Some(uri) = uri else { continue };
        if settings.registry.as_ref().map(|r| &r.location) != Some(location) {
            continue;
        }
        let host = uri.split('/').next().unwrap_or_default().to_ascii_lowercase();
        if !host.is_empty() && !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}
