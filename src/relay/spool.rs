//! The durable retry spool. A signal is a file; it moves between directories by `rename`,
//! which is atomic, so each state change is all-or-nothing and a claim has one winner:
//!
//! ```text
//! tmp/   being written (write, fsync, then rename away)
//! new/   waiting: ID.json
//! work/  claimed by a drainer: ID.json.PID
//! dead/  refused for good, or too old: ID.json (+ ID.why)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::signal::Signal;

pub struct Spool {
    root: PathBuf,
}

/// A signal this process has claimed.
pub struct Claim {
    pub signal: Signal,
    path: PathBuf,
}

impl Spool {
    /// Opens (creating, mode 0700) the spool at `root`.
    /// A spool that another user owns, or that group or others may write, is refused: its
    /// records name the URL and the token variable a delivery uses.
    pub fn open(root: &Path) -> io::Result<Spool> {
        for sub in ["tmp", "new", "work", "dead"] {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(root.join(sub))?;
        }
        let meta = fs::metadata(root)?;
        let foreign = effective_uid().is_some_and(|uid| uid != meta.uid());
        if foreign || meta.mode() & 0o022 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the spool must belong to this user and not be writable by group or others",
            ));
        }
        Ok(Spool { root: root.to_owned() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, sub: &str) -> PathBuf {
        self.root.join(sub)
    }

    /// Writes `signal` durably into `new/`: write to `tmp/`, fsync, rename, fsync the directory.
    pub fn put(&self, signal: &Signal) -> io::Result<()> {
        self.put_all(std::slice::from_ref(signal))
    }

    /// Writes several signals durably: each file is fsynced before its rename, and the
    /// directory once after all of them (one fsync fewer per extra signal on the request path).
    /// On failure none of them stays: the caller then sends them without the spool, and a
    /// signal left behind would be sent twice.
    pub fn put_all(&self, signals: &[Signal]) -> io::Result<()> {
        let mut placed = Vec::with_capacity(signals.len());
        let result = signals.iter().try_for_each(|signal| {
            let name = format!("{}.json", signal.id);
            let tmp = self.dir("tmp").join(format!("{name}.{}", std::process::id()));
            let written = write_synced(&tmp, signal.to_json().as_bytes())
                .and_then(|()| fs::rename(&tmp, self.dir("new").join(&name)));
            if written.is_err() {
                let _ = fs::remove_file(&tmp);
            } else {
                placed.push(self.dir("new").join(&name));
            }
            written
        });
        match result.and_then(|()| sync_dir(&self.dir("new"))) {
            Ok(()) => Ok(()),
            Err(e) => {
                for path in placed {
                    let _ = fs::remove_file(path);
                }
                Err(e)
            }
        }
    }

    /// The ids waiting in `new/`, oldest first (ids start with the creation time).
    pub fn waiting(&self) -> io::Result<Vec<String>> {
        let mut ids: Vec<String> = fs::read_dir(self.dir("new"))?
            .filter_map(|e| {
                e.ok()?.file_name().into_string().ok()?.strip_suffix(".json").map(str::to_owned)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The record waiting as `id`, read without claiming it (to skip what is not due); `None`
    /// when it is gone or unreadable (a claim then settles it).
    pub fn peek(&self, id: &str) -> Option<Signal> {
        Signal::from_json(&fs::read(self.dir("new").join(format!("{id}.json"))).ok()?)
    }

    /// Claims `id` for this process. `Ok(None)` when another drainer took it first. A file that
    /// does not parse is moved to `dead/`, and `Ok(None)` returned.
    pub fn claim(&self, id: &str, now: SystemTime) -> io::Result<Option<Claim>> {
        let waiting = self.dir("new").join(format!("{id}.json"));
        let path = self.dir("work").join(format!("{id}.json.{}", std::process::id()));
        // The claim's age starts now. Touched before the rename, which keeps the mtime: a claim
        // that still carried its last write's time could look stale to another drainer's
        // `reclaim_stale` in between, and be taken back from under this one.
        let claimed = File::options()
            .write(true)
            .open(&waiting)
            .and_then(|file| file.set_modified(now))
            .and_then(|()| fs::rename(&waiting, &path))
            .and_then(|()| fs::read(&path));
        let bytes = match claimed {
            Ok(bytes) => bytes,
            // Another drainer took it first (or took it back as stale): it is theirs.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match Signal::from_json(&bytes) {
            Some(signal) => Ok(Some(Claim { signal, path })),
            None => {
                fs::rename(&path, self.dir("dead").join(format!("{id}.json")))?;
                fs::write(self.dir("dead").join(format!("{id}.why")), "unreadable spool record\n")?;
                Ok(None)
            }
        }
    }

    /// Delivered: the signal leaves the spool.
    pub fn finish(&self, claim: Claim) -> io::Result<()> {
        lost_is_fine(fs::remove_file(&claim.path))?;
        sync_dir(&self.dir("work"))
    }

    /// Back to `new/` with its updated attempt count and schedule. The new state is durable
    /// before the claim is dropped, so a crash in between leaves a duplicate that
    /// `reclaim_stale` resolves, never a loss.
    pub fn retry(&self, claim: Claim, signal: &Signal) -> io::Result<()> {
        if !claim.path.exists() {
            return Ok(()); // reclaimed meanwhile: the signal is someone else's now
        }
        self.put(signal)?;
        lost_is_fine(fs::remove_file(&claim.path))
    }

    /// Refused for good: to `dead/`, with the reason beside it.
    pub fn bury(&self, claim: Claim, why: &str) -> io::Result<()> {
        let id = &claim.signal.id;
        write_synced(&self.dir("dead").join(format!("{id}.why")), format!("{why}\n").as_bytes())?;
        lost_is_fine(fs::rename(&claim.path, self.dir("dead").join(format!("{id}.json"))))?;
        sync_dir(&self.dir("dead"))
    }

    /// Returns to `new/` the claims of drainers that died (no such process), and claims held
    /// longer than `stale_after` since they were taken (a delivery cannot outlive its timeout,
    /// so such a claimer is stuck, or the PID belongs to another process now). Returns how many.
    pub fn reclaim_stale(&self, stale_after: Duration, now: SystemTime) -> io::Result<usize> {
        let mut count = 0;
        for entry in fs::read_dir(self.dir("work"))? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Some((file, pid)) = name.rsplit_once('.') else { continue };
            let alive =
                pid.parse::<u32>().is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            // Another drainer may settle this claim meanwhile: a vanished file is not an error.
            let Some(age) = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| now.duration_since(t).unwrap_or_default())
            else {
                continue;
            };
            if alive && age < stale_after {
                continue;
            }
            let waiting = self.dir("new").join(file);
            if waiting.exists() {
                // The claimer had already written the next state: the old claim is obsolete.
                let _ = fs::remove_file(entry.path());
            } else if fs::rename(entry.path(), &waiting).is_ok() {
                count += 1;
            }
        }
        Ok(count)
    }

    /// How many signals are in each state: `[new, work, dead]`.
    pub fn counts(&self) -> io::Result<[usize; 3]> {
        let n = |sub: &str| -> io::Result<usize> {
            Ok(fs::read_dir(self.dir(sub))?
                .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension() != Some("why".as_ref())))
                .count())
        };
        Ok([n("new")?, n("work")?, n("dead")?])
    }
}

/// This process's effective user id, from `/proc/self/status` (no `unsafe` for `geteuid`).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// A claim that vanished was reclaimed as stale: it is no longer this drainer's to settle.
fn lost_is_fine(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
