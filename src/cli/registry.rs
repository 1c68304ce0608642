//! `dacs_signout registry …`: an operator inspects and corrects the registry (§12).
//!
//! ```text
//! registry show USER              the user's revocation time and sightings
//! registry revoke-user USER [--at UNIX_SECS]   revoke what was seen at or before (now)
//! registry unrevoke-user USER     remove the user's revocation time
//! registry revoke FINGERPRINT USER        revoke one credential
//! registry unrevoke FINGERPRINT   that credential no longer revoked
//! registry purge                  remove what has expired
//! ```
//!
//! USER is `FED::JUR:USER`, `JUR:USER`, or a bare `USER` of the configuration's own
//! jurisdiction (the `Default` section's, or `--jurisdiction URI`'s).

use std::io::Write;

use crate::cgi::Env;
use crate::config::{Config, Settings};
use crate::credentials::Identity;
use crate::registry::{self, Fingerprint, Sighting, user_key};
use crate::time::{Clock, rfc3339};

pub fn run(
    config: &Config,
    env: &Env,
    clock: &dyn Clock,
    args: &[&str],
    out: &mut dyn Write,
) -> Result<(), String> {
    let (args, host_path) = match args {
        [rest @ .., "--jurisdiction", uri] => (rest, *uri),
        rest => (rest, ""),
    };
    let settings = config.settings(host_path).map_err(|e| format!("{}: {e}", config.source))?;
    let registry_settings =
        settings.registry.as_ref().ok_or("no REGISTRY is configured".to_owned())?;
    let mut store = registry::open(registry_settings, &settings.rules.federation_name, env)
        .map_err(|e| e.to_string())?;
    let now_ms = store.now_ms().unwrap_or_else(|_| crate::time::unix_millis(clock.now()));
    let ms_time = |ms: u64| format!("{} (+{} ms)", rfc3339(ms / 1000), ms % 1000);
    match args {
        ["show", user] => {
            let user = key(&settings, user)?;
            let report = store.report(&user).map_err(|e| e.to_string())?;
            let revoked = report.revoked_before.map_or("none".to_owned(), ms_time);
            let _ = writeln!(out, "{user}: revoked before: {revoked}");
            for (fp, seen) in &report.sightings {
                let flag = if seen.revoked { " REVOKED" } else { "" };
                let _ = writeln!(
                    out,
                    "  {fp} first {} last {}{flag}",
                    ms_time(seen.first_ms),
                    ms_time(seen.last_ms)
                );
            }
            Ok(())
        }
        ["revoke-user", user, rest @ ..] => {
            let user = key(&settings, user)?;
            let before = match rest {
                [] => now_ms,
                ["--at", secs] => {
                    secs.parse::<u64>().map_err(|_| format!("not Unix seconds: {secs}"))? * 1000
                }
                _ => return Err("expected revoke-user USER [--at UNIX_SECS]".into()),
            };
            store.revoke_user(&user, before).map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "{user}: credentials first seen at or before {} are revoked",
                ms_time(before)
            );
            Ok(())
        }
        ["unrevoke-user", user] => {
            let user = key(&settings, user)?;
            let removed = store.unrevoke_user(&user).map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "{user}: {}",
                if removed { "revocation removed" } else { "was not revoked" }
            );
            Ok(())
        }
        ["revoke", fingerprint, user] => {
            let fingerprint = fp(fingerprint)?;
            let user = key(&settings, user)?;
            store
                .revoke_fingerprints(&[Sighting { fingerprint: fingerprint.clone(), user }], now_ms)
                .map_err(|e| e.to_string())?;
            let _ = writeln!(out, "{fingerprint}: revoked");
            Ok(())
        }
        ["unrevoke", fingerprint] => {
            let fingerprint = fp(fingerprint)?;
            let changed = store.unrevoke_fingerprint(&fingerprint).map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "{fingerprint}: {}",
                if changed { "no longer revoked" } else { "was not revoked" }
            );
            Ok(())
        }
        ["purge"] => {
            let purged = store.purge(now_ms).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "purged {purged} expired entries");
            Ok(())
        }
        _ => {
            Err("expected show, revoke-user, unrevoke-user, revoke, unrevoke or purge (see --help)"
                .into())
        }
    }
}

fn fp(text: &str) -> Result<Fingerprint, String> {
    Fingerprint::parse(text).ok_or_else(|| format!("not a fingerprint (64 hex digits): {text}"))
}

/// `FED::JUR:USER`, `JUR:USER` or `USER` to the registry's key.
fn key(settings: &Settings, user: &str) -> Result<String, String> {
    let rules = &settings.rules;
    if let Some(id) = Identity::parse(user) {
        return Ok(user_key(id.federation, id.jurisdiction, id.username, rules.name_compare));
    }
    let (jurisdiction, name) = match user.split_once(':') {
        Some((j, u)) if crate::credentials::identity::is_name(j) => (j, u),
        _ => (rules.jurisdiction_name.as_str(), user),
    };
    if name.is_empty() {
        return Err(format!("not a user: {user:?}"));
    }
    Ok(user_key(&rules.federation_name, jurisdiction, name, rules.name_compare))
}
