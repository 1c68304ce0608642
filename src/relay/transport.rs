//! Sending one signal over HTTP. Behind a trait, so that the drain logic is tested without a
//! network and the real client is tested against a hub double on loopback.

use std::time::Duration;

/// The hub's answer: status and body (at most 64 KiB of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

pub trait Transport {
    /// POSTs `body` as JSON with the bearer token. `Err` is a transport failure (refused
    /// connection, timeout, TLS); an HTTP error status is an `Ok(Reply)`.
    fn post(
        &self,
        endpoint: &str,
        token: &str,
        body: &str,
        timeout: Duration,
    ) -> Result<Reply, String>;
}

/// `ureq`: blocking and small, rustls with the system's CA store, no redirects followed (a
/// POST turned into a GET would silently lose the logout).
pub struct Http;

impl Transport for Http {
    fn post(
        &self,
        endpoint: &str,
        token: &str,
        body: &str,
        timeout: Duration,
    ) -> Result<Reply, String> {
        use ureq::tls::{RootCerts, TlsConfig};
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // Never a proxy from the environment: in a CGI, HTTP_PROXY is the request's
            // `Proxy:` header ("httpoxy"), and the bearer token would go to whoever sent it.
            .proxy(None)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(format!("dacs_signout/{}", crate::VERSION))
            .tls_config(TlsConfig::builder().root_certs(RootCerts::PlatformVerifier).build())
            .build()
            .into();
        let mut response = agent
            .post(endpoint)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(body)
            // ureq's errors name the URL and the failure, never request headers.
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        // A body cut short is a transport failure (retried), not an answer to judge.
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(Reply { status, body })
    }
}
