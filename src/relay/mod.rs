//! Network-wide signout (§9): the removed identities are announced to the logout hub.
//!
//! The CGI request writes each signal durably to the spool *before* the response
//! ([`Plan::persist`]), then starts a detached `dacs_signout relay --deliver` child
//! ([`Plan::launch`]) and exits. The child waits until the request process is gone (its stdin
//! pipe reaches EOF only when the parent has exited, and with it the parent's stdout and
//! stderr), so the web server has finished the response before any delivery starts. What the
//! child cannot deliver stays in the spool for `dacs_signout relay` ([`drain`]).
//!
//! ```text
//! signal    the wire format and the judgement of the hub's answer (pure)
//! plan      removed credentials -> signals; persisting them
//! child     the detached delivery child: its payload, its start, its one attempt per signal
//! drain     attempts, settling a claim, the `relay` command's loop
//! journal   the delivery log (one line per attempt)
//! spool     the durable store (files, renames, fsync)
//! transport the HTTP client, behind a trait
//! ```

mod child;
mod drain;
pub mod journal;
mod plan;
pub mod signal;
pub mod transport;

use std::time::Duration;

pub use child::{Payload, close_inherited_descriptors, deliver, spawn_detached};
pub use drain::{Courier, RegistryAccess, drain};
pub use plan::{Note, Plan, RegistryTarget, RevokeNote, Signout, plan, revocation};
pub use signal::Route;

use crate::cgi::Env;
use signal::join;

/// The relay directives of one section, interpreted by `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub base_url: Option<String>,
    pub token_env: String,
    pub identity: RelayIdentity,
    pub max_signals: usize,
    pub username_map: Option<UsernameMap>,
    pub timeout_secs: u64,
    pub spool_dir: String,
    /// `RELAY_SPOOL_MAX`: signals waiting or claimed at most.
    pub spool_max: usize,
    pub log: Option<String>,
    pub max_age_secs: u64,
    pub send_logout_at: bool,
}

/// `RELAY_IDENTITY`: which removed credentials go network-wide (§9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RelayIdentity {
    /// Only the identity the web server authenticated for this request (`REMOTE_USER`): a
    /// cookie's name is whatever the client chose to send.
    #[default]
    RemoteUser,
    /// Every removed credential, for deployments that accept that anyone can then sign anyone
    /// out of the whole network (README).
    Cookies,
}

/// `RELAY_USERNAME_MAP "REGEX => REPLACEMENT"`, compiled only when a signal is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameMap {
    pub pattern: String,
    pub replacement: String,
}

/// The token variable of the Knowledge Commons guide, tried after the configured one.
const GUIDE_TOKEN_ENV: &str = "PROFILES_API_BEARER_TOKEN";

/// The hub endpoint: `$IDMS_BASE_API_URL`, else the directive, else `$PROFILES_API_URL`
/// (a site root).
pub fn endpoint(env: &Env, settings: &Settings) -> Option<String> {
    let var = |name| env.soft(name).filter(|v| !v.is_empty());
    if let Some(base) = var("IDMS_BASE_API_URL") {
        return Some(join(base, "actions/logout/"));
    }
    if let Some(base) = &settings.base_url {
        return Some(join(base, "actions/logout/"));
    }
    var("PROFILES_API_URL").map(|root| join(root, "api/v1/actions/logout/"))
}

/// How this configuration sends to its hub, when it has one.
pub fn route(env: &Env, settings: &Settings) -> Option<Route> {
    Some(Route {
        endpoint: endpoint(env, settings)?,
        token_env: settings.token_env.clone(),
        timeout_secs: settings.timeout_secs,
        max_age_secs: settings.max_age_secs,
        send_logout_at: settings.send_logout_at,
    })
}

/// How long a claim may be held before another drainer takes it back: a delivery cannot
/// outlive its timeout, so a claim older than two timeouts and a minute belongs to a drainer
/// that is stuck or gone.
pub fn stale_after(settings: &Settings) -> Duration {
    Duration::from_secs(settings.timeout_secs.saturating_mul(2).saturating_add(60))
}

/// The token variable a route needs, when `env` has neither it nor the guide's.
pub fn missing_token(env: &Env, route: &Route) -> Option<String> {
    token(env, &route.token_env).is_none().then(|| route.token_env.clone())
}

/// The bearer token: the configured variable, else `PROFILES_API_BEARER_TOKEN`.
fn token(env: &Env, name: &str) -> Option<String> {
    [name, GUIDE_TOKEN_ENV]
        .into_iter()
        .find_map(|n| env.soft(n).filter(|t| !t.is_empty()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_precedence() {
        let settings = Settings {
            base_url: Some("https://conf.example/api/v1/".into()),
            token_env: "T".into(),
            identity: RelayIdentity::RemoteUser,
            max_signals: 8,
            username_map: None,
            timeout_secs: 15,
            spool_dir: "/tmp".into(),
            spool_max: 10,
            log: None,
            max_age_secs: 60,
            send_logout_at: false,
        };
        let env = |pairs: &[(&'static str, &'static str)]| Env::from_pairs(pairs.iter().copied());
        assert_eq!(
            endpoint(&env(&[]), &settings).unwrap(),
            "https://conf.example/api/v1/actions/logout/"
        );
        assert_eq!(
            endpoint(&env(&[("IDMS_BASE_API_URL", "https://env.example/api/v1")]), &settings)
                .unwrap(),
            "https://env.example/api/v1/actions/logout/"
        );
        let none = Settings { base_url: None, ..settings };
        assert_eq!(endpoint(&env(&[]), &none), None);
        assert_eq!(
            endpoint(&env(&[("PROFILES_API_URL", "https://profile.hcommons.org/")]), &none)
                .unwrap(),
            "https://profile.hcommons.org/api/v1/actions/logout/"
        );
        assert_eq!(stale_after(&none), Duration::from_secs(90));
    }

    #[test]
    fn token_falls_back_to_the_guide_variable() {
        let env = Env::from_pairs([("PROFILES_API_BEARER_TOKEN", "g"), ("EMPTY", "")]);
        assert_eq!(token(&env, "EMPTY").as_deref(), Some("g"));
        let env = Env::from_pairs([("MINE", "m"), ("PROFILES_API_BEARER_TOKEN", "g")]);
        assert_eq!(token(&env, "MINE").as_deref(), Some("m"));
        assert_eq!(token(&Env::default(), "MINE"), None);
    }
}
