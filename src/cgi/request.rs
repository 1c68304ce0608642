//! From the environment snapshot and stdin to a validated `Request`.

use std::io::Read;

use super::args::Arguments;
use super::body::read_body;
use super::env::Env;
use super::format::Format;
use crate::credentials::CookieSyntax;
use crate::error::Error;

/// The largest `Cookie` header accepted (§2).
pub const MAX_COOKIE_HEADER: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    /// Keyrock's sign-out (`DELETE /auth/external_logout?client_id=ID`), or a `POST` with
    /// `_method=DELETE`, as browsers reach it.
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// The signout arguments, validated. Empty values count as not given (portal forms submit
/// empty fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignoutArgs {
    pub username: Option<String>,
    pub jurisdiction: Option<String>,
    /// Not validated here: the handler policy decides, and a refusal is not an error (§6).
    pub handler: Option<String>,
    pub cookie_syntax: Option<CookieSyntax>,
    pub format: Format,
    /// Keyrock's `client_id`: the registered app whose sign-out URL the browser goes to.
    pub client_id: Option<String>,
}

impl SignoutArgs {
    /// The arguments as given, to be sent again (the drive-by confirmation's form). `FORMAT` is
    /// left out: only an HTML answer asks for confirmation, and HTML is the default.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let given = [
            ("DACS_USERNAME", self.username.as_deref()),
            ("DACS_JURISDICTION", self.jurisdiction.as_deref()),
            ("DACS_SIGNOUT_HANDLER", self.handler.as_deref()),
            ("COOKIE_SYNTAX", self.cookie_syntax.map(CookieSyntax::as_str)),
            ("client_id", self.client_id.as_deref()),
        ];
        given.into_iter().filter_map(|(name, value)| Some((name, value?))).collect()
    }
}

/// What the browser's Fetch Metadata says about the request (§8), lowercased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchMetadata {
    pub site: Option<String>,
    pub mode: Option<String>,
    /// `Sec-Fetch-Dest`: `document` for a top-level navigation, `iframe` for a frame.
    pub dest: Option<String>,
    /// `Sec-Fetch-User: ?1`: a user's click or key press started the navigation.
    pub user: bool,
    /// Marked as a prefetch or a preview: `Sec-Purpose` or `Purpose` naming `prefetch`, or the
    /// legacy `X-Moz: prefetch` and `X-Purpose: preview`.
    pub prefetch: bool,
}

/// Where the program is mounted, for relative handler URLs, jurisdiction selection and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Server {
    pub https: bool,
    pub name: Option<String>,
    pub port: Option<u16>,
    pub script_name: String,
    pub remote_addr: Option<String>,
}

impl Server {
    /// `scheme://host[:port]`, when `SERVER_NAME` is known.
    pub fn origin(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        let (scheme, default_port) = if self.https { ("https", 443) } else { ("http", 80) };
        Some(match self.port {
            Some(port) if port != default_port => format!("{scheme}://{name}:{port}"),
            _ => format!("{scheme}://{name}"),
        })
    }

    /// `SERVER_NAME` + `SCRIPT_NAME`, what a `Jurisdiction uri` is matched against.
    pub fn host_path(&self) -> String {
        format!("{}{}", self.name.as_deref().unwrap_or(""), self.script_name)
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub args: SignoutArgs,
    /// Raw bytes: pairs that are not UTF-8 belong to other apps (§4).
    pub cookie_header: Vec<u8>,
    pub user_agent: Option<String>,
    /// The identity the web server authenticated (`REMOTE_USER`): an auth module in front of
    /// the program (mod_auth_dacs sets `FED::JUR:USER`).
    pub remote_user: Option<String>,
    pub fetch: FetchMetadata,
    pub server: Server,
}

impl Request {
    /// Validates the CGI input. The body is read only for a form POST, exactly
    /// `CONTENT_LENGTH` bytes.
    pub fn read(env: &Env, body: &mut dyn Read) -> Result<Request, Error> {
        let method = method(env)?;
        let mut args = Arguments::parse(env.text("QUERY_STRING")?.unwrap_or("").as_bytes())?;
        if method == Method::Post {
            match media_type(env) {
                None => {}
                Some(media) if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") => {
                    args.parse_into(&read_body(env, body)?)?;
                }
                // A multipart form or a JSON body would otherwise be a silent full signout,
                // whatever its fields asked for.
                Some(_) => {
                    return Err(Error::unsupported_media_type(
                        "a signout POST takes application/x-www-form-urlencoded arguments",
                    ));
                }
            }
        }
        // Keyrock's method override, as its clients' browsers send it (in the query or the form).
        let method = match (method, args.get("_method")) {
            (Method::Post, Some(m)) if m.eq_ignore_ascii_case("DELETE") => Method::Delete,
            (method, _) => method,
        };
        let cookie_header = env.raw("HTTP_COOKIE").unwrap_or_default().to_vec();
        if cookie_header.len() > MAX_COOKIE_HEADER {
            return Err(Error::bad_request("the Cookie header is too large"));
        }
        Ok(Request {
            method,
            args: signout_args(&args)?,
            cookie_header,
            user_agent: env.soft("HTTP_USER_AGENT").map(str::to_owned),
            remote_user: env.soft("REMOTE_USER").filter(|u| !u.is_empty()).map(str::to_owned),
            fetch: fetch_metadata(env),
            server: server(env),
        })
    }
}

fn method(env: &Env) -> Result<Method, Error> {
    match env.text("REQUEST_METHOD")? {
        Some("GET") => Ok(Method::Get),
        Some("HEAD") => Ok(Method::Head),
        Some("POST") => Ok(Method::Post),
        Some("DELETE") => Ok(Method::Delete),
        Some(_) => Err(Error::method_not_allowed("only GET, HEAD, POST and DELETE are served")),
        None => Err(Error::bad_request("REQUEST_METHOD is missing: not a CGI request")),
    }
}

/// The media type of `CONTENT_TYPE`, parameters left out; `None` when there is none (nginx
/// passes it empty).
pub fn media_type(env: &Env) -> Option<&str> {
    let media = env.soft("CONTENT_TYPE")?.split(';').next().unwrap_or("").trim();
    (!media.is_empty()).then_some(media)
}

fn signout_args(args: &Arguments) -> Result<SignoutArgs, Error> {
    let given = |name: &str| args.get(name).filter(|v| !v.is_empty());
    let name_arg = |name: &str| -> Result<Option<String>, Error> {
        match given(name) {
            Some(v) if v.chars().any(char::is_control) => {
                Err(Error::bad_request(format!("{name} holds a control character")))
            }
            v => Ok(v.map(str::to_owned)),
        }
    };
    if let Some(version) = given("DACS_VERSION")
        && version != "1.4"
    {
        return Err(Error::bad_request("DACS_VERSION must be 1.4"));
    }
    Ok(SignoutArgs {
        username: name_arg("DACS_USERNAME")?,
        jurisdiction: name_arg("DACS_JURISDICTION")?,
        handler: given("DACS_SIGNOUT_HANDLER").map(str::to_owned),
        cookie_syntax: given("COOKIE_SYNTAX").map(str::parse).transpose()?,
        format: given("FORMAT").map(str::parse).transpose()?.unwrap_or_default(),
        client_id: name_arg("client_id")?,
    })
}

fn fetch_metadata(env: &Env) -> FetchMetadata {
    let lower = |name| env.soft(name).map(str::to_ascii_lowercase);
    let names =
        |name, words: &[&str]| lower(name).is_some_and(|v| words.iter().any(|w| v.contains(w)));
    let prefetch = names("HTTP_SEC_PURPOSE", &["prefetch", "preview"])
        || names("HTTP_PURPOSE", &["prefetch", "preview"])
        || names("HTTP_X_MOZ", &["prefetch"])
        || names("HTTP_X_PURPOSE", &["preview", "prefetch"]);
    FetchMetadata {
        site: lower("HTTP_SEC_FETCH_SITE"),
        mode: lower("HTTP_SEC_FETCH_MODE"),
        dest: lower("HTTP_SEC_FETCH_DEST"),
        user: env.soft("HTTP_SEC_FETCH_USER") == Some("?1"),
        prefetch,
    }
}

pub fn server(env: &Env) -> Server {
    let https = env
        .soft("HTTPS")
        .is_some_and(|v| ["on", "1", "yes"].iter().any(|t| v.eq_ignore_ascii_case(t)));
    Server {
        https,
        name: env.soft("SERVER_NAME").filter(|n| valid_host(n)).map(str::to_owned),
        port: env.soft("SERVER_PORT").and_then(|p| p.parse().ok()),
        script_name: env.soft("SCRIPT_NAME").unwrap_or("").to_owned(),
        remote_addr: env.soft("REMOTE_ADDR").map(str::to_owned),
    }
}

/// A host name or address literal that can go into an origin without surprises.
fn valid_host(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)], body: &[u8]) -> Result<Request, Error> {
        Request::read(&Env::from_pairs(pairs.iter().copied()), &mut &body[..])
    }

    #[test]
    fn post_body_is_read_exactly() {
        let req = read(
            &[
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_TYPE", "application/x-www-form-urlencoded; charset=UTF-8"),
                ("CONTENT_LENGTH", "18"),
            ],
            b"DACS_USERNAME=bob&trailing-garbage",
        )
        .unwrap();
        assert_eq!(req.args.username.as_deref(), Some("bob"));
    }

    #[test]
    fn short_long_and_bad_lengths() {
        let form = ("CONTENT_TYPE", "application/x-www-form-urlencoded");
        let post = ("REQUEST_METHOD", "POST");
        let short = read(&[post, form, ("CONTENT_LENGTH", "100")], b"a=1").unwrap_err();
        assert_eq!(short.status().0, 400);
        let huge =
            read(&[post, form, ("CONTENT_LENGTH", "99999999999999999999999")], b"").unwrap_err();
        assert_eq!(huge.status().0, 413);
        let bad = read(&[post, form, ("CONTENT_LENGTH", "-1")], b"").unwrap_err();
        assert_eq!(bad.status().0, 400);
    }

    #[test]
    fn methods() {
        assert_eq!(read(&[("REQUEST_METHOD", "PUT")], b"").unwrap_err().status().0, 405);
        assert_eq!(read(&[], b"").unwrap_err().status().0, 400);
        assert_eq!(read(&[("REQUEST_METHOD", "HEAD")], b"").unwrap().method, Method::Head);
    }

    #[test]
    fn origin_omits_default_ports() {
        let mut server =
            Server { name: Some("ex.org".into()), port: Some(80), ..Server::default() };
        assert_eq!(server.origin().unwrap(), "http://ex.org");
        server.https = true;
        assert_eq!(server.origin().unwrap(), "https://ex.org:80");
    }
}
