//! The durable retry spool. A record (a hub signal, a revocation waiting for the registry, a
//! hub's delivery to one receiver) is a file; it moves between directories by `rename`,
//! which is atomic, so each state change is all-or-nothing and a claim has one winner:
//!
//! ```text
//! tmp/   being written (write, fsync, then rename away)
//! new/   waiting: ID.json
//! work/  claimed by a drainer: ID.json.PID
//! dead/  refused for good, too old, or not a record at all: ID.json (+ ID.why)
//! done/  delivered, kept for a while as a receipt (the hub's; made when first used)
//! ```
//!
//! The spool is trusted only as far as its path can be (§9, [`crate::safe_fs`]). Everything
//! after that check is done relative to the directories' descriptors (`openat`, `renameat`,
//! `unlinkat`), never following a link, so nobody can steer a path between the check and the
//! use.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};

use crate::safe_fs;

/// What the spool holds: a record with an id (its file name) that reads back as written.
pub trait Record: Sized {
    fn id(&self) -> &str;
    fn to_json(&self) -> String;
    fn from_json(bytes: &[u8]) -> Option<Self>;
}

/// The largest record read back (bytes): a signal is a few hundred.
const MAX_RECORD: u64 = 64 * 1024;

pub struct Spool {
    path: PathBuf,
    root: OwnedFd,
    tmp: OwnedFd,
    new: OwnedFd,
    work: OwnedFd,
    dead: OwnedFd,
    /// `done/`, opened (and made) the first time a record is kept there.
    done: OnceLock<OwnedFd>,
    /// How many signals may wait or be claimed at once (`RELAY_SPOOL_MAX`).
    quota: usize,
}

/// A record this process has claimed: `work/ID.json.PID`.
pub struct Claim<R> {
    pub record: R,
    name: String,
}

/// The spool holds as many signals as it may (`RELAY_SPOOL_MAX`).
pub fn is_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
}

impl Spool {
    /// Opens an existing spool (the `relay` command: a drainer never creates one, so that a
    /// drain run by the wrong user cannot leave a spool the web server cannot use).
    pub fn open(path: &Path, quota: usize) -> io::Result<Spool> {
        Spool::at(path, false, quota)
    }

    /// Opens the spool, creating it (mode 0700) when it is missing: its last component and its
    /// four directories only, never a parent.
    pub fn create(path: &Path, quota: usize) -> io::Result<Spool> {
        Spool::at(path, true, quota)
    }

    fn at(path: &Path, create: bool, quota: usize) -> io::Result<Spool> {
        let (parent, name) = safe_fs::split(path)?;
        let parent = safe_fs::trusted_dir(parent)?;
        let root = safe_fs::own_dir(&parent, name, create, path)?;
        let sub = |name: &str| safe_fs::own_dir(&root, name, create, &path.join(name));
        Ok(Spool {
            tmp: sub("tmp")?,
            new: sub("new")?,
            work: sub("work")?,
            dead: sub("dead")?,
            done: OnceLock::new(),
            root,
            path: path.to_owned(),
            quota,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `record` durably into `new/`: write to `tmp/`, fsync, rename, fsync the directory.
    pub fn put<R: Record>(&self, record: &R) -> io::Result<()> {
        self.put_all(std::slice::from_ref(record))
    }

    /// Writes several signals durably: each file is fsynced before its rename, and the
    /// directory once after all of them (one fsync fewer per extra signal on the request path).
    /// On failure none of them stays: the caller then decides, and a signal left behind would
    /// be sent twice. Over the quota, nothing is written.
    pub fn put_all<R: Record>(&self, records: &[R]) -> io::Result<()> {
        self.put_records(records, Sync::EachFile)
    }

    /// Writes many records (a hub's event: one per receiver) durably with one `syncfs` for all
    /// of them, where `put_all` pays an fsync per record (a journal commit each: a second for a
    /// thousand receivers). Each file is complete before its rename (readers see whole records
    /// or none); once this returns, every record and rename is on disk. A crash before that may
    /// leave some records, complete (delivered: the sender got no answer and sends again, so the
    /// receivers see the logout twice, harmlessly) or empty (not a record: to `dead/`). On
    /// failure none of them stays.
    pub fn put_batch<R: Record>(&self, records: &[R]) -> io::Result<()> {
        self.put_records(records, Sync::FileSystem)
    }

    fn put_records<R: Record>(&self, records: &[R], how: Sync) -> io::Result<()> {
        let held = count(&self.new, usize::MAX)? + count(&self.work, usize::MAX)?;
        if held + records.len() > self.quota {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the spool holds {held} signals, its limit (RELAY_SPOOL_MAX) is {}",
                    self.quota
                ),
            ));
        }
        let mut placed = Vec::with_capacity(records.len());
        let written = records.iter().try_for_each(|record| {
            let name = format!("{}.json", record.id());
            self.write_as(&self.new, &name, record.to_json().as_bytes(), how)?;
            placed.push(name);
            Ok(())
        });
        let synced = written.and_then(|()| match how {
            Sync::EachFile => sync(&self.new),
            Sync::FileSystem => Ok(rustix::fs::syncfs(&self.new)?),
        });
        match synced {
            Ok(()) => Ok(()),
            Err(e) => {
                for name in placed {
                    let _ = rustix::fs::unlinkat(&self.new, name.as_str(), AtFlags::empty());
                }
                Err(e)
            }
        }
    }

    /// `bytes` as `dir/name`, durably: written in `tmp/`, fsynced, renamed into place.
    fn write(&self, dir: &OwnedFd, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_as(dir, name, bytes, Sync::EachFile)
    }

    /// `bytes` as `dir/name`, written in `tmp/` and renamed into place: fsynced first, or left
    /// for the caller's `syncfs`.
    fn write_as(&self, dir: &OwnedFd, name: &str, bytes: &[u8], how: Sync) -> io::Result<()> {
        let tmp = format!("{name}.{}", std::process::id());
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let written =
            rustix::fs::openat(&self.tmp, tmp.as_str(), flags, Mode::from_raw_mode(0o600))
                .map_err(io::Error::from)
                .map(File::from)
                .and_then(|mut file| {
                    file.write_all(bytes)?;
                    match how {
                        Sync::EachFile => file.sync_all(),
                        Sync::FileSystem => Ok(()),
                    }
                })
                .and_then(|()| Ok(rustix::fs::renameat(&self.tmp, tmp.as_str(), dir, name)?));
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&self.tmp, tmp.as_str(), AtFlags::empty());
        }
        written
    }

    /// The ids waiting in `new/`, oldest first (ids start with the creation time). An entry that
    /// is not `ID.json` goes to `dead/`: it is not a record, and it never stops a drain.
    pub fn waiting(&self) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        for name in names(&self.new)? {
            match name.strip_suffix(".json") {
                Some(id) if !id.is_empty() && !id.contains('.') => ids.push(id.to_owned()),
                _ => self.quarantine(&self.new, &name, "not a spool record"),
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The record waiting as `id`, read without claiming it (to skip what is not due); `None`
    /// when it is gone or unreadable (a claim then settles it).
    pub fn peek<R: Record>(&self, id: &str) -> Option<R> {
        R::from_json(&read_record(&self.new, &format!("{id}.json")).ok()?)
    }

    /// Claims `id` for this process. `Ok(None)` when another drainer took it first. An entry
    /// that is not a readable record (a directory, a link, garbage) is moved to `dead/`, and
    /// `Ok(None)` returned.
    pub fn claim<R: Record>(&self, id: &str, now: SystemTime) -> io::Result<Option<Claim<R>>> {
        let waiting = format!("{id}.json");
        let name = format!("{waiting}.{}", std::process::id());
        // The claim's age starts now. Touched before the rename, which keeps the mtime: a claim
        // that still carried its last write's time could look stale to another drainer's
        // `reclaim_stale` in between, and be taken back from under this one.
        match touch(&self.new, &waiting, now) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        match rustix::fs::renameat(&self.new, waiting.as_str(), &self.work, name.as_str()) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let record = read_record(&self.work, &name).and_then(|bytes| {
            R::from_json(&bytes).ok_or_else(|| io::Error::other("not a spool record"))
        });
        match record {
            Ok(record) => Ok(Some(Claim { record, name })),
            // Taken back as stale between the rename and the read: it is someone else's now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                self.bury_entry(&self.work, &name, id, &format!("unreadable spool record: {e}"))?;
                Ok(None)
            }
        }
    }

    /// Delivered: the signal leaves the spool.
    pub fn finish<R>(&self, claim: Claim<R>) -> io::Result<()> {
        lost_is_fine(rustix::fs::unlinkat(&self.work, claim.name.as_str(), AtFlags::empty()))?;
        sync(&self.work)
    }

    /// Back to `new/` with its updated attempt count and schedule. The new state is durable
    /// before the claim is dropped, so a crash in between leaves a duplicate that
    /// `reclaim_stale` resolves, never a loss.
    pub fn retry<R: Record>(&self, claim: Claim<R>, record: &R) -> io::Result<()> {
        if !exists(&self.work, &claim.name)? {
            return Ok(()); // reclaimed meanwhile: the record is someone else's now
        }
        self.write(&self.new, &format!("{}.json", record.id()), record.to_json().as_bytes())?;
        sync(&self.new)?;
        lost_is_fine(rustix::fs::unlinkat(&self.work, claim.name.as_str(), AtFlags::empty()))
    }

    /// Delivered, and kept as a receipt: `record` (its final state) to `done/`, the claim
    /// dropped. A crash in between leaves a claim that `reclaim_stale` drops.
    pub fn keep<R: Record>(&self, claim: Claim<R>, record: &R) -> io::Result<()> {
        if !exists(&self.work, &claim.name)? {
            return Ok(()); // reclaimed meanwhile: the record is someone else's now
        }
        let done = self.done()?;
        self.write(done, &format!("{}.json", record.id()), record.to_json().as_bytes())?;
        sync(done)?;
        lost_is_fine(rustix::fs::unlinkat(&self.work, claim.name.as_str(), AtFlags::empty()))
    }

    fn done(&self) -> io::Result<&OwnedFd> {
        if let Some(done) = self.done.get() {
            return Ok(done);
        }
        let fd = safe_fs::own_dir(&self.root, "done", true, &self.path.join("done"))?;
        Ok(self.done.get_or_init(|| fd))
    }

    /// The records of a state whose ids start with `prefix`, each as it reads now (a record
    /// that moved meanwhile is left out: the caller looks again), with the reason a dead one
    /// was buried.
    pub fn find<R: Record>(&self, state: State, prefix: &str) -> io::Result<Vec<Found<R>>> {
        let dir = match state {
            State::Waiting => &self.new,
            State::Claimed => &self.work,
            State::Dead => &self.dead,
            State::Done => self.done()?,
        };
        let mut found = Vec::new();
        for name in names(dir)?.into_iter().filter(|n| n.starts_with(prefix)) {
            let Some(id) = name.split('.').next().filter(|_| name.contains(".json")) else {
                continue;
            };
            let Some(record) = read_record(dir, &name).ok().and_then(|b| R::from_json(&b)) else {
                continue;
            };
            let why = (state == State::Dead)
                .then(|| read_record(dir, &format!("{id}.why")).ok())
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).trim_end().to_owned());
            found.push(Found { state, record, why });
        }
        Ok(found)
    }

    /// Removes the receipts in `done/` kept longer than `keep`; returns how many.
    pub fn prune_done(&self, keep: Duration, now: SystemTime) -> io::Result<usize> {
        let done = self.done()?;
        let mut removed = 0;
        for name in names(done)? {
            let Ok(stat) = rustix::fs::statat(done, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            if now.duration_since(mtime(&stat)).unwrap_or_default() > keep
                && rustix::fs::unlinkat(done, name.as_str(), AtFlags::empty()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A small file of the spool's own (`NAME` in its root, made mode 0600, never a link):
    /// state shared by the processes that use the spool, such as a lock or a rate's level.
    pub fn state_file(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.root, name, flags, Mode::from_raw_mode(0o600))?;
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name} is not a regular file"),
            ));
        }
        Ok(File::from(fd))
    }

    /// Refused for good: to `dead/`, with the reason beside it.
    pub fn bury<R: Record>(&self, claim: Claim<R>, why: &str) -> io::Result<()> {
        self.bury_entry(&self.work, &claim.name, claim.record.id(), why)
    }

    /// Refused for good, in its final state (attempts, last answer): `record` to `dead/`, the
    /// reason beside it, the claim dropped.
    pub fn bury_as<R: Record>(&self, claim: Claim<R>, record: &R, why: &str) -> io::Result<()> {
        if !exists(&self.work, &claim.name)? {
            return Ok(()); // reclaimed meanwhile: the record is someone else's now
        }
        self.write(&self.dead, &format!("{}.why", record.id()), format!("{why}\n").as_bytes())?;
        self.write(&self.dead, &format!("{}.json", record.id()), record.to_json().as_bytes())?;
        sync(&self.dead)?;
        lost_is_fine(rustix::fs::unlinkat(&self.work, claim.name.as_str(), AtFlags::empty()))
    }

    fn bury_entry(&self, dir: &OwnedFd, name: &str, id: &str, why: &str) -> io::Result<()> {
        self.write(&self.dead, &format!("{id}.why"), format!("{why}\n").as_bytes())?;
        let to = format!("{id}.json");
        lost_is_fine(rustix::fs::renameat(dir, name, &self.dead, to.as_str()))?;
        sync(&self.dead)
    }

    /// An entry of `new/` that is no record: to `dead/` under its own name, or, when that is
    /// taken or impossible, out of the way; never an error that stops a drain.
    fn quarantine(&self, dir: &OwnedFd, name: &str, why: &str) {
        let to = format!("{}.{}", name.replace('/', "_"), std::process::id());
        if rustix::fs::renameat(dir, name, &self.dead, to.as_str()).is_ok() {
            let _ = self.write(&self.dead, &format!("{to}.why"), format!("{why}\n").as_bytes());
        }
    }

    /// Returns to `new/` the claims of drainers that died (no such process), and claims held
    /// longer than `stale_after` since they were taken (a delivery cannot outlive its timeout,
    /// so such a claimer is stuck, or the PID belongs to another process now). Returns how many.
    pub fn reclaim_stale(&self, stale_after: Duration, now: SystemTime) -> io::Result<usize> {
        let mut count = 0;
        for name in names(&self.work)? {
            let Some((file, pid)) = name.rsplit_once('.') else { continue };
            let alive =
                pid.parse::<u32>().is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            // Another drainer may settle this claim meanwhile: a vanished entry is not an error.
            let Ok(stat) = rustix::fs::statat(&self.work, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            let age = now.duration_since(mtime(&stat)).unwrap_or_default();
            if alive && age < stale_after {
                continue;
            }
            let settled = match self.done.get() {
                Some(done) => exists(done, file)?,
                None => false,
            };
            if settled || exists(&self.new, file)? {
                // The claimer had already written the next state: the old claim is obsolete.
                let _ = rustix::fs::unlinkat(&self.work, name.as_str(), AtFlags::empty());
            } else if rustix::fs::renameat(&self.work, name.as_str(), &self.new, file).is_ok() {
                count += 1;
            }
        }
        Ok(count)
    }

    /// How many signals are in each state: `[new, work, dead]`.
    pub fn counts(&self) -> io::Result<[usize; 3]> {
        let records = |dir: &OwnedFd| -> io::Result<usize> {
            Ok(names(dir)?.iter().filter(|n| !n.ends_with(".why")).count())
        };
        Ok([records(&self.new)?, records(&self.work)?, records(&self.dead)?])
    }

    /// A delivery log in the spool (`relay.log`, `hub.log`): appended to, never followed if
    /// a link.
    pub fn log(&self, name: &str) -> io::Result<File> {
        safe_fs::append_only(&self.root, name)
    }
}

/// How written records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// An fsync per file, and one of the directory.
    EachFile,
    /// One `syncfs` of the whole file system, after every rename.
    FileSystem,
}

/// Where a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `new/`: waiting for its next attempt.
    Waiting,
    /// `work/`: a delivery is under way.
    Claimed,
    Dead,
    /// `done/`: delivered.
    Done,
}

/// A record found by [`Spool::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<R> {
    pub state: State,
    pub record: R,
    /// Why a dead record was buried.
    pub why: Option<String>,
}

/// A record: a regular file (not a link, a directory or a FIFO that would block), at most
/// `MAX_RECORD` bytes.
fn read_record(dir: &OwnedFd, name: &str) -> io::Result<Vec<u8>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
    }
    let mut bytes = Vec::new();
    File::from(fd).take(MAX_RECORD + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECORD {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "larger than a record can be"));
    }
    Ok(bytes)
}

/// Sets an entry's modification time without following a link.
fn touch(dir: &OwnedFd, name: &str, time: SystemTime) -> io::Result<()> {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let stamp = rustix::fs::Timespec {
        tv_sec: since.as_secs() as i64,
        tv_nsec: since.subsec_nanos().into(),
    };
    let times = rustix::fs::Timestamps { last_access: stamp, last_modification: stamp };
    Ok(rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?)
}

fn mtime(stat: &Stat) -> SystemTime {
    let secs = u64::try_from(stat.st_mtime).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::new(secs, u32::try_from(stat.st_mtime_nsec).unwrap_or(0))
}

fn exists(dir: &OwnedFd, name: &str) -> io::Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The entries of a directory (`.` and `..` left out); names that are not UTF-8 included as
/// lossy text, so that they can be quarantined by their own (lossy) name only if it is exact.
fn names(dir: &OwnedFd) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in Dir::read_from(dir.as_fd())? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if let Ok(name) = std::str::from_utf8(name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Entries in `dir`, counted up to `limit`.
fn count(dir: &OwnedFd, limit: usize) -> io::Result<usize> {
    Ok(names(dir)?.len().min(limit))
}

/// A claim that vanished was reclaimed as stale: it is no longer this drainer's to settle.
fn lost_is_fine(result: rustix::io::Result<()>) -> io::Result<()> {
    match result {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        other => Ok(other?),
    }
}

fn sync(dir: &OwnedFd) -> io::Result<()> {
    Ok(rustix::fs::fsync(dir)?)
}
