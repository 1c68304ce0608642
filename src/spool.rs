//! The durable retry spool. A record (a hub signal, a revocation waiting for the registry, a
//! hub's delivery to one receiver) is a file; it moves between directories by `rename`,
//! which is atomic, so each state change is all-or-nothing and a claim has one winner:
//!
//! ```text
//! tmp/   being written (write, fsync, then rename away)
//! new/   waiting: ID.json
//! work/  claimed by a drainer: ID.json.PID
//! dead/  refused for good, too old, or not a record at all: ID.json (+ ID.why)
//! ```
//!
//! The spool is trusted only as far as its path can be (§9): its root is reached from `/`
//! one component at a time without following a symbolic link, and refused when it or an
//! ancestor could be changed by another user (owned by someone other than root or this user,
//! or writable by group or others without the sticky bit). Everything after that is done
//! relative to the directories' descriptors (`openat`, `renameat`, `unlinkat`), never
//! following a link, so nobody can steer a path between the check and the use.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};

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
        let (parent, name) = split(path)?;
        let parent = trusted_dir(parent)?;
        let root = own_dir(&parent, name, create, path)?;
        let sub = |name: &str| own_dir(&root, name, create, &path.join(name));
        Ok(Spool {
            tmp: sub("tmp")?,
            new: sub("new")?,
            work: sub("work")?,
            dead: sub("dead")?,
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
            self.write(&self.new, &name, record.to_json().as_bytes())?;
            placed.push(name);
            Ok(())
        });
        match written.and_then(|()| sync(&self.new)) {
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
        let tmp = format!("{name}.{}", std::process::id());
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let written =
            rustix::fs::openat(&self.tmp, tmp.as_str(), flags, Mode::from_raw_mode(0o600))
                .map_err(io::Error::from)
                .map(File::from)
                .and_then(|mut file| {
                    file.write_all(bytes)?;
                    file.sync_all()
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

    /// Refused for good: to `dead/`, with the reason beside it.
    pub fn bury<R: Record>(&self, claim: Claim<R>, why: &str) -> io::Result<()> {
        self.bury_entry(&self.work, &claim.name, claim.record.id(), why)
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
            if exists(&self.new, file)? {
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

    /// The delivery log in the spool (`relay.log`): appended to, never followed if a link.
    pub fn log(&self) -> io::Result<File> {
        append_only(&self.root, "relay.log")
    }
}

/// A log file elsewhere (`RELAY_LOG`), reached as the spool is: a trusted directory, then the
/// file without following a link.
pub fn open_log(path: &Path) -> io::Result<File> {
    let (parent, name) = split(path)?;
    append_only(&trusted_dir(parent)?, name)
}

fn append_only(dir: &OwnedFd, name: &str) -> io::Result<File> {
    let flags = OFlags::WRONLY
        | OFlags::APPEND
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NONBLOCK;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is not a regular file"),
        ));
    }
    Ok(File::from(fd))
}

/// An absolute path's parent and last component (UTF-8).
fn split(path: &Path) -> io::Result<(&Path, &str)> {
    let invalid = |why: &str| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {why}", path.display()))
    };
    if !path.is_absolute() {
        return Err(invalid("not an absolute path"));
    }
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| invalid("no file name"))?;
    Ok((path.parent().unwrap_or(Path::new("/")), name))
}

/// `dir`, reached from `/` one component at a time without following a link, each directory
/// on the way one that only root or this user can change.
fn trusted_dir(dir: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = rustix::fs::openat(rustix::fs::CWD, "/", flags, Mode::empty())?;
    let mut walked = PathBuf::from("/");
    check_ancestor(&fd, &walked)?;
    for component in dir.components() {
        match component {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(name) => {
                walked.push(name);
                fd = rustix::fs::openat(&fd, name, flags, Mode::empty())
                    .map_err(|e| not_a_plain_directory(e, &fd, name, &walked))?;
                check_ancestor(&fd, &walked)?;
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: '..' is not allowed in the path", dir.display()),
                ));
            }
        }
    }
    Ok(fd)
}

/// Why `parent/name` could not be opened as a directory, in words (a link says so).
fn not_a_plain_directory(
    e: rustix::io::Errno,
    parent: &OwnedFd,
    name: impl rustix::path::Arg,
    path: &Path,
) -> io::Error {
    let link = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
    match e {
        _ if link => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is a symbolic link (refused: a link can be swapped)", path.display()),
        ),
        e => io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", path.display())),
    }
}

/// An ancestor of the spool: owned by root or this user, and writable by nobody else unless
/// sticky (as `/tmp` is: there nobody can rename or remove another's entry).
fn check_ancestor(fd: &OwnedFd, path: &Path) -> io::Result<()> {
    let stat = rustix::fs::fstat(fd)?;
    let me = rustix::process::geteuid().as_raw();
    let owner_ok = stat.st_uid == 0 || stat.st_uid == me;
    let shared = stat.st_mode & 0o022 != 0;
    let sticky = stat.st_mode & 0o1000 != 0;
    if owner_ok && (!shared || sticky) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} can be changed by another user (owner {}, mode {:o})",
                path.display(),
                stat.st_uid,
                stat.st_mode & 0o7777
            ),
        ))
    }
}

/// `parent/name` as a directory of this user's that nobody else may write (created, mode
/// 0700, when `create` and missing).
fn own_dir(parent: &OwnedFd, name: &str, create: bool, path: &Path) -> io::Result<OwnedFd> {
    if create {
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("{}: {e}", path.display()),
                ));
            }
        }
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())
        .map_err(|e| not_a_plain_directory(e, parent, name, path))?;
    let stat = rustix::fs::fstat(&fd)?;
    let me = rustix::process::geteuid().as_raw();
    if stat.st_uid != me || stat.st_mode & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} must belong to this user (uid {me}) and not be writable by group or others \
                 (owner {}, mode {:o}); run the relay as the web server's user",
                path.display(),
                stat.st_uid,
                stat.st_mode & 0o7777
            ),
        ));
    }
    Ok(fd)
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
