//! One HTTP call: the relay's signal to its hub, and the hub's call to each receiver. Behind a
//! trait, so that the delivery logic is tested without a network and the real client is
//! tested against doubles on loopback.

use std::time::Duration;

/// The answer: status and body (at most [`MAX_REPLY`] bytes of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The largest answer read (bytes); a longer one is a transport failure.
pub const MAX_REPLY: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// What to send. A `POST` carries `Content-Type: application/json` and `json` (or nothing: the
/// Profiles hub's own call to its receivers is a bodiless JSON POST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    pub method: Method,
    pub url: &'a str,
    /// The bearer token, when the peer takes one.
    pub token: Option<&'a str>,
    pub json: Option<&'a str>,
    /// The whole call: connecting, sending, and reading the answer.
    pub timeout: Duration,
}

pub trait Transport: Sync {
    /// Makes the call. `Err` is a transport failure (refused connection, timeout, TLS, an
    /// answer cut short or too long); an HTTP error status is an `Ok(Reply)`.
    fn send(&self, call: &Call) -> Result<Reply, String>;

    /// The relay's call: `POST` of a JSON `body` with the bearer token.
    fn post(
        &self,
        endpoint: &str,
        token: &str,
        body: &str,
        timeout: Duration,
    ) -> Result<Reply, String> {
        self.send(&Call {
            method: Method::Post,
            url: endpoint,
            token: Some(token),
            json: Some(body),
            timeout,
        })
    }
}

/// `ureq`: blocking and small, rustls with the system's CA store, no redirects followed (a
/// POST turned into a GET would silently lose the logout), no proxy from the environment.
/// One agent, shared by every call (and every thread) of a process: its connections are
/// reused.
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    /// A client whose connections must be made within `connect_timeout` (else only each
    /// call's whole timeout bounds them).
    pub fn new(connect_timeout: Option<Duration>) -> Http {
        use ureq::tls::{RootCerts, TlsConfig};
        let agent = ureq::Agent::config_builder()
            // Never a proxy from the environment: in a CGI, HTTP_PROXY is the request's
            // `Proxy:` header ("httpoxy"), and the bearer token would go to whoever sent it.
            .proxy(None)
            .timeout_connect(connect_timeout)
            .max_redirects(0)
            .http_status_as_error(false)
            // Answers are small and requests smaller (ureq's default is 128 KiB each way, per
            // connection: a quarter of a GiB for a hub's thousand calls at once).
            .input_buffer_size(32 * 1024)
            .output_buffer_size(16 * 1024)
            .max_response_header_size(16 * 1024)
            .user_agent(format!("dacs_signout/{}", crate::VERSION))
            .tls_config(TlsConfig::builder().root_certs(RootCerts::PlatformVerifier).build())
            .build()
            .into();
        Http { agent }
    }
}

impl Transport for Http {
    fn send(&self, call: &Call) -> Result<Reply, String> {
        // ureq's errors name the URL and the failure, never request headers.
        let sent = match call.method {
            Method::Get => prepare(self.agent.get(call.url), call).call(),
            Method::Post => prepare(self.agent.post(call.url), call)
                .header("Content-Type", "application/json")
                .send(call.json.unwrap_or("")),
        };
        let mut response = sent.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        // A body cut short is a transport failure (retried), not an answer to judge.
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(Reply { status, body })
    }
}

/// What every call carries: its whole timeout, `Accept`, and the token when there is one.
fn prepare<B>(request: ureq::RequestBuilder<B>, call: &Call) -> ureq::RequestBuilder<B> {
    let request = request
        .config()
        .timeout_global(Some(call.timeout))
        .build()
        .header("Accept", "application/json");
    match call.token {
        Some(token) => request.header("Authorization", format!("Bearer {token}")),
        None => request,
    }
}
