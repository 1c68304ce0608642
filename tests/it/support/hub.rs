//! A logout hub double on loopback that answers like Knowledge Commons Profiles, records the
//! exact requests it received, and can misbehave on demand.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with the hub's success body, echoing the user.
    Ok,
    /// 200 naming another user.
    WrongUser,
    /// 403 `{"detail": ...}`.
    Forbidden,
    /// 500 `{"error": ..., "meta": ...}`.
    ServerError,
    /// 500 with an HTML page.
    HtmlError,
    /// 301 to another path.
    Moved,
    /// 400 `{"error": "Validation failed", ...}`.
    Invalid,
    /// 404.
    NotFound,
    /// Reads the request and never answers (until the hub is dropped).
    Hang,
    /// Answers `Ok` once `release()` is called.
    Gate,
    /// Answers `Ok` after sleeping this many milliseconds.
    Slow(u64),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn user_name(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        v["user_name"].as_str().unwrap().to_owned()
    }
}

pub struct Hub {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    released: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Hub {
    pub fn start(behaviour: Behaviour) -> Hub {
        Hub::on(TcpListener::bind("127.0.0.1:0").unwrap(), behaviour)
    }

    /// A hub on a given port (to bring a "down" hub back).
    pub fn on(listener: TcpListener, behaviour: Behaviour) -> Hub {
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let released = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, rel, st) = (received.clone(), released.clone(), stop.clone());
        thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, rel, st) = (r.clone(), rel.clone(), st.clone());
                        thread::spawn(move || serve(stream, behaviour, &r, &rel, &st));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hub { port, received, released, stop }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
    }

    /// Waits (bounded) until `n` requests have arrived.
    #[track_caller]
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.received.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "the hub got {} of {n} requests",
                self.received().len()
            );
            thread::sleep(Duration::from_millis(10));
        }
        self.received()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.released.store(true, Ordering::Relaxed);
    }
}

fn serve(
    stream: TcpStream,
    behaviour: Behaviour,
    log: &Mutex<Vec<Received>>,
    released: &AtomicBool,
    stop: &AtomicBool,
) {
    let Some(request) = super::peer::read_request(&stream) else {
        // A client that died before sending a whole request has delivered nothing.
        return;
    };
    let received = Received {
        request_line: format!("{} {} {}", request.method, request.target, request.version),
        headers: request.headers,
        body: String::from_utf8(request.body).unwrap(),
        at: request.at,
    };
    let user = serde_json::from_str::<serde_json::Value>(&received.body)
        .ok()
        .and_then(|v| v["user_name"].as_str().map(str::to_owned))
        .unwrap_or_default();
    log.lock().unwrap().push(received);
    let ok = |user: &str| {
        let body = serde_json::json!({
            "message": "Action successfully triggered.",
            "data": {"user": {"user": user, "url": format!("/profiles/{user}/")}, "user_agent": "UA", "app": ["Profiles", "Works", "WordPress"]}
        });
        ("200 OK", "application/json", body.to_string(), "")
    };
    let (status, kind, text, extra) = match behaviour {
        Behaviour::Ok => ok(&user),
        Behaviour::WrongUser => ok("somebody_else"),
        Behaviour::Forbidden => ("403 Forbidden", "application/json", r#"{"detail":"Invalid token."}"#.to_owned(), ""),
        Behaviour::ServerError => (
            "500 Internal Server Error",
            "application/json",
            r#"{"error":"An unexpected error occurred","meta":{"code":"E500"}}"#.to_owned(),
            "",
        ),
        Behaviour::HtmlError => (
            "500 Internal Server Error",
            "text/html",
            "<html><body><h1>Server Error (500)</h1></body></html>".to_owned(),
            "",
        ),
        Behaviour::Moved => ("301 Moved Permanently", "text/html", String::new(), "Location: /elsewhere/\r\n"),
        Behaviour::Invalid => (
            "400 Bad Request",
            "application/json",
            r#"{"error":"Validation failed","details":{"user_agent":["User agent cannot be empty"]}}"#.to_owned(),
            "",
        ),
        Behaviour::NotFound => ("404 Not Found", "text/html", "<h1>Not Found</h1>".to_owned(), ""),
        Behaviour::Hang => {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        Behaviour::Gate => {
            while !released.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(5));
            }
            ok(&user)
        }
        Behaviour::Slow(ms) => {
            thread::sleep(Duration::from_millis(ms));
            ok(&user)
        }
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{text}",
        text.len()
    );
}
