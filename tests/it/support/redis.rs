//! A real `redis-server` on a free loopback port, in a directory of its own, stopped by
//! process id when dropped. No persistence: each test starts empty.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;
use super::servers::{free_port, stop_process_group};

pub struct RedisServer {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

impl RedisServer {
    #[track_caller]
    pub fn start() -> RedisServer {
        assert!(
            std::path::Path::new("/usr/bin/redis-server").exists(),
            "redis-server is missing: install Debian's redis-server (./scripts/setup does)"
        );
        let dir = TempDir::new("redis");
        for _ in 0..3 {
            let port = free_port().unwrap();
            let mut child = Command::new("/usr/bin/redis-server")
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return RedisServer { port, child, _dir: dir };
                }
                if child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: another one
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            stop_process_group(&mut child, Duration::from_secs(2));
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (a test of what a dead Redis does).
    pub fn stop(&mut self) {
        stop_process_group(&mut self.child, Duration::from_secs(5));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop_process_group(&mut self.child, Duration::from_secs(5));
    }
}

use std::os::unix::process::CommandExt;
