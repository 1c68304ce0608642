//! The hub (§14): a logout hub that speaks the Profiles protocol to senders and fans each
//! event out to every receiver, losing nothing. It is the relay's problem fanned out, and
//! reuses its machinery: the spool (one record per receiver), the HTTP client, the backoff,
//! the delivery log.
//!
//! ```text
//! body      a sender's body: user_name, user_agent, logout_at (pure)
//! event     event ids, the event's time, one delivery record per receiver (pure)
//! forms     each receiver's request form, and what its answer means (pure)
//! rate      each sender's rate
//! serve     the CGI role: sender -> spool -> 200; receipts
//! deliver   the fan-out: one pool of threads for the whole hub; drain and the delivery process
//! receipt   where an event's deliveries stand
//! ```

pub mod body;
pub mod deliver;
pub mod event;
pub mod forms;
pub mod rate;
pub mod receipt;
pub mod serve;

use std::io;

use crate::cgi::Env;
use crate::config::Hub;
use crate::relay::spawn_detached;

/// The name this hub instance's event ids carry: `HUB_INSTANCE`, else the host's name (its
/// first label, in the characters an id may hold), else `hub`.
pub fn instance(hub: &Hub) -> String {
    if let Some(name) = &hub.instance {
        return name.clone();
    }
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy();
    let label: String = host
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    if label.is_empty() { "hub".to_owned() } else { label }
}

/// After a sender's 200: tells the delivery process there is work, or starts one
/// (`dacs_logout_hub deliver --until-idle`, detached, its environment only the configuration's
/// path, the receivers' token variables and the TLS trust variables). What the request's log
/// line says: `woken`, `started`, or why neither.
pub fn hand_off(env: &Env, handoff: &serve::Handoff) -> String {
    if deliver::wake(&handoff.spool_dir) {
        return "woken".to_owned();
    }
    let mut keep = vec!["DACS_SIGNOUT_CONF", "SSL_CERT_FILE", "SSL_CERT_DIR"];
    keep.extend(handoff.token_envs.iter().map(String::as_str));
    let started: io::Result<()> = std::env::current_exe().and_then(|hub| {
        spawn_detached(
            &hub,
            &["deliver", "--until-idle", "--jurisdiction", &handoff.section],
            &keep,
            env,
            None,
        )
    });
    match started {
        Ok(()) => "started".to_owned(),
        Err(e) => format!("not started: {e} (the drain will deliver)"),
    }
}
