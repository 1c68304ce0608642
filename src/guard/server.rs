//! The guard's process: a listener (a unix socket, or TCP for Apache's `mod_authnz_fcgi`), a
//! fixed pool of workers, the FastCGI connection loop, and a clean stop on SIGTERM.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Guard, Role, Worker};
use crate::fastcgi::{self, Step};
/// A server sends a request's records at once: a connection idle this long is dropped.
const IDLE: Duration = Duration::from_secs(10);

/// `--listen unix:PATH` or `--listen tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(String),
}

impl Listen {
    pub fn parse(text: &str) -> Result<Listen, String> {
        if let Some(path) = text.strip_prefix("unix:").filter(|p| p.starts_with('/')) {
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if let Some(address) = text.strip_prefix("tcp:").filter(|a| a.rsplit_once(':').is_some()) {
            return Ok(Listen::Tcp(address.to_owned()));
        }
        Err(format!("expected unix:/ABSOLUTE/PATH or tcp:HOST:PORT, not {text:?}"))
    }
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    fn prepare(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(IDLE)),
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(IDLE))
            }
        }
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
        };
    }

    fn set_read_timeout(&self, timeout: Duration) {
        let _ = match self {
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)),
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)),
        };
    }
}

impl Listener {
    fn bind(listen: &Listen) -> io::Result<Listener> {
        match listen {
            Listen::Unix(path) => {
                // A socket left by a guard that died is replaced; anything else is not touched.
                if let Ok(meta) = std::fs::symlink_metadata(path)
                    && meta.file_type().is_socket()
                {
                    std::fs::remove_file(path)?;
                }
                let listener = UnixListener::bind(path)?;
                // The web server's user (the guard runs as it, or in its group) connects.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
                Ok(Listener::Unix(listener, path.clone()))
            }
            Listen::Tcp(address) => Ok(Listener::Tcp(TcpListener::bind(address)?)),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
        }
    }

    /// Wakes a blocked `accept` (the stop).
    fn poke(&self) {
        match self {
            Listener::Unix(_, path) => drop(UnixStream::connect(path)),
            Listener::Tcp(l) => {
                if let Ok(address) = l.local_addr() {
                    drop(TcpStream::connect(address));
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
            Listener::Tcp(l) => l.local_addr().map_or("tcp:?".into(), |a| format!("tcp:{a}")),
        }
    }
}

/// Serves until SIGTERM or SIGINT: then stops accepting, lets the requests in progress finish,
/// removes its socket and says what it did.
///
/// Each worker accepts its own connections on the shared listener (the kernel wakes one
/// waiting worker per connection): no thread hands connections over, which took two task
/// switches per request (BENCHMARKS.md, "The receiver and the guard").
pub fn serve(
    guard: Arc<Guard>,
    listen: &Listen,
    workers: usize,
    ready: &mut dyn Write,
) -> io::Result<()> {
    let listener = Arc::new(Listener::bind(listen)?);
    let stopping = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    let pool: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let (guard, listener, stopping) =
                (Arc::clone(&guard), Arc::clone(&listener), Arc::clone(&stopping));
            std::thread::spawn(move || {
                let mut worker = Worker::default();
                loop {
                    let stream = listener.accept();
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    match stream {
                        Ok(stream) => {
                            if let Err(e) = connection(&guard, &mut worker, stream) {
                                // A server that hung up, or sent no FastCGI: that connection
                                // only.
                                if e.kind() != io::ErrorKind::UnexpectedEof {
                                    crate::log::to_stderr(format_args!(
                                        "dacs_guard: connection: {e}"
                                    ));
                                }
                            }
                        }
                        Err(e) => {
                            // Out of descriptors, say: wait a little rather than spin.
                            crate::log::to_stderr(format_args!("dacs_guard: accept: {e}"));
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })
        })
        .collect();
    let _ = writeln!(
        ready,
        "dacs_guard: listening on {} with {} workers",
        listener.describe(),
        pool.len()
    );
    let _ = ready.flush();
    // The main thread waits for the stop; then each worker is woken once (a worker busy with a
    // connection sees the stop when it is done, and its wake-up waits unaccepted).
    let _ = signals.forever().next();
    stopping.store(true, Ordering::SeqCst);
    for _ in &pool {
        listener.poke();
    }
    for worker in pool {
        let _ = worker.join();
    }
    if let Listener::Unix(_, path) = listener.as_ref() {
        let _ = std::fs::remove_file(path);
    }
    crate::log::to_stderr(format_args!("dacs_guard: stopped; {}", guard.counters.json()));
    Ok(())
}

/// One connection: its records read and handed to the [`fastcgi::Conversation`], each
/// complete request answered.
fn connection(guard: &Guard, worker: &mut Worker, stream: Stream) -> io::Result<()> {
    stream.prepare()?;
    let mut reader = BufReader::new(stream);
    let mut conversation = fastcgi::Conversation::default();
    while let Some(record) = fastcgi::read_record(&mut reader)? {
        match conversation.take(record)? {
            Step::Wait => {}
            Step::Reply(bytes) => reader.get_mut().write_all(&bytes)?,
            Step::Aborted { reply, close } => {
                reader.get_mut().write_all(&reply)?;
                if close {
                    return Ok(());
                }
            }
            Step::Serve(request) => {
                let role = Role::of(request.role, &request.env);
                let answer = guard.answer(worker, role, &request.env);
                reader.get_mut().write_all(&fastcgi::answer(request.id, &answer))?;
                if !request.keep {
                    return finish(reader.into_inner());
                }
            }
        }
    }
    Ok(())
}

/// Ends a connection the server will not reuse: the answer is flushed, the write side shut,
/// and what the server still sends (lighttpd's empty `STDIN` after an authorizer's parameters)
/// read and dropped, so that closing never resets the connection before the server has read
/// the answer.
fn finish(stream: Stream) -> io::Result<()> {
    stream.shutdown_write();
    stream.set_read_timeout(Duration::from_secs(1));
    let mut stream = stream;
    let _ = io::copy(&mut (&mut stream).take(64 * 1024), &mut io::sink());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            Listen::parse("unix:/run/dacs-guard/guard.sock"),
            Ok(Listen::Unix("/run/dacs-guard/guard.sock".into()))
        );
        assert_eq!(Listen::parse("tcp:127.0.0.1:9071"), Ok(Listen::Tcp("127.0.0.1:9071".into())));
        for bad in ["unix:relative.sock", "tcp:nowhere", "9071", ""] {
            assert!(Listen::parse(bad).is_err(), "{bad}");
        }
    }
}
