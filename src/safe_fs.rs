//! Paths nobody else can steer (§9, §12): a directory reached from `/` one component at a time
//! without following a symbolic link, each directory on the way one that only root or this
//! user can change (owned by one of them, and not writable by group or others unless sticky,
//! as `/tmp` is); the last one this user's own. The spool and the registry's file are opened
//! this way: whoever could swap them could send the hub's token elsewhere, or un-revoke
//! everyone.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// A log file (`RELAY_LOG`): a trusted directory, then the file without following a link.
pub fn open_log(path: &Path) -> io::Result<File> {
    let (parent, name) = split(path)?;
    append_only(&trusted_dir(parent)?, name)
}

/// `path`'s directory, trusted and this user's own (created, mode 0700, when `create` and
/// missing), and its last component's name: where the registry's file goes.
pub fn own_parent(path: &Path, create: bool) -> io::Result<(OwnedFd, &str)> {
    let (dir, name) = split(path)?;
    let (grandparent, dir_name) = split(dir)?;
    let fd = own_dir(&trusted_dir(grandparent)?, dir_name, create, dir)?;
    Ok((fd, name))
}

/// An existing file in an own directory: a regular file (not a link) of this user's that
/// nobody else may write.
pub fn check_own_file(dir: &OwnedFd, name: &str, path: &Path) -> io::Result<()> {
    let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let me = rustix::process::geteuid().as_raw();
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile
        || stat.st_uid != me
        || stat.st_mode & 0o022 != 0
    {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} must be a regular file of this user (uid {me}) that nobody else may write \
                 (owner {}, mode {:o})",
                path.display(),
                stat.st_uid,
                stat.st_mode & 0o7777
            ),
        ));
    }
    Ok(())
}

pub fn append_only(dir: &OwnedFd, name: &str) -> io::Result<File> {
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
pub fn split(path: &Path) -> io::Result<(&Path, &str)> {
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
pub fn trusted_dir(dir: &Path) -> io::Result<OwnedFd> {
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
pub fn own_dir(parent: &OwnedFd, name: &str, create: bool, path: &Path) -> io::Result<OwnedFd> {
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
                 (owner {}, mode {:o}); run every program that uses it as the web server's user",
                path.display(),
                stat.st_uid,
                stat.st_mode & 0o7777
            ),
        ));
    }
    Ok(fd)
}
