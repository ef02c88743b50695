//! The agent's small shared state in the debug container's own filesystem.
//!
//! ```text
//! /tmp/.distroless-debug/            0700, owned by the container's uid
//!   hold.pid                         pid of `hold`, removed when it starts to exit
//!   stop.request                     pid of a `stop` that asked `hold` to exit
//!   sessions/<pid>                   one per `run`/`shell` (and per `tar`/`untar`/`info`
//!                                    with `--end-container`), locked while it lives; its
//!                                    first line is `end-container` for `--end-container`
//!   target -> /proc/<pid>/root       the last target resolved (images: /target -> here)
//! ```
//!
//! A session is alive exactly while some process holds `flock(LOCK_EX)` on its file: the
//! lock lives on an inherited, non-close-on-exec descriptor, so it survives `execve` and
//! is released by the kernel when the last process holding it exits, however that happens
//! (SIGKILL included). No pid is trusted on its own; pids in names are only a hint that
//! `stop` verifies before signalling.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, IntoRawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sys;

pub const DEFAULT_DIR: &str = "/tmp/.distroless-debug";

/// The first line of a session file whose session ends the container when it is the last.
const END_CONTAINER: &str = "end-container\n";

/// What one look at the sessions found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sessions {
    /// Pids (from the file names) of the sessions whose lock is held, sorted.
    pub live: Vec<i32>,
    /// A session registered with `--end-container` was found ended (and its file swept).
    pub ended_one_ending_the_container: bool,
}

pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// `DISTROLESS_DEBUG_STATE_DIR`, else `/tmp/.distroless-debug`.
    pub fn from_env() -> StateDir {
        let root = std::env::var_os("DISTROLESS_DEBUG_STATE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
        StateDir { root }
    }

    #[cfg(test)]
    pub fn at(root: PathBuf) -> StateDir {
        StateDir { root }
    }

    pub fn hold_pid_path(&self) -> PathBuf {
        self.root.join("hold.pid")
    }

    pub fn stop_request_path(&self) -> PathBuf {
        self.root.join("stop.request")
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.root.join("sessions")
    }

    pub fn target_link_path(&self) -> PathBuf {
        self.root.join("target")
    }

    /// Points `target` at `/proc/<pid>/root`: a symlink under a temporary name renamed over
    /// the old one, so a reader of `/target` sees the old target or the new one, never none.
    pub fn point_target_link(&self, pid: i32) -> io::Result<()> {
        self.ensure()?;
        let link = self.target_link_path();
        let to = PathBuf::from(format!("/proc/{pid}/root"));
        if fs::read_link(&link).is_ok_and(|current| current == to) {
            return Ok(());
        }
        let tmp = self
            .root
            .join(format!(".target.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&to, &tmp).map_err(|e| with_path(e, &tmp))?;
        fs::rename(&tmp, &link).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            with_path(e, &link)
        })
    }

    /// Removes `target`, so that `/target` shows nothing rather than an earlier target.
    pub fn remove_target_link(&self) {
        let _ = fs::remove_file(self.target_link_path());
    }

    /// Creates the directories (0700). Refuses a directory another uid owns or others may
    /// write: whoever controls it could plant pids for `stop` to signal.
    pub fn ensure(&self) -> io::Result<()> {
        for dir in [self.root.clone(), self.sessions_dir()] {
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(with_path(e, &dir)),
            }
            let meta = fs::symlink_metadata(&dir).map_err(|e| with_path(e, &dir))?;
            if !meta.is_dir() || meta.uid() != sys::effective_uid() || meta.mode() & 0o022 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{}: not a directory of uid {} closed to others; refusing to use it",
                        dir.display(),
                        sys::effective_uid()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn write_hold_pid(&self, pid: u32) -> io::Result<()> {
        write_atomically(&self.hold_pid_path(), &format!("{pid}\n"))
    }

    pub fn read_hold_pid(&self) -> Option<i32> {
        read_pid(&self.hold_pid_path())
    }

    pub fn write_stop_request(&self, pid: u32) -> io::Result<()> {
        write_atomically(&self.stop_request_path(), &format!("{pid}\n"))
    }

    pub fn read_stop_request(&self) -> Option<i32> {
        read_pid(&self.stop_request_path())
    }

    /// Registers the calling process as a session and keeps it registered across `execve`
    /// and until every process that inherited the lock has exited. `note` (verb and command)
    /// is written into the file for people looking at it, after the `end-container` line
    /// when `end_container`.
    pub fn register_session(&self, note: &str, end_container: bool) -> io::Result<()> {
        self.ensure()?;
        let pid = std::process::id();
        let dir = self.sessions_dir();
        // Lock under a temporary name, then rename: `hold` never sees an unlocked file of a
        // live session, so it cannot mistake a session that is starting for one that ended.
        let tmp = dir.join(format!(".{pid}.tmp"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| with_path(e, &tmp))?;
        sys::flock(file.as_fd(), libc::LOCK_EX)?;
        if end_container {
            (&file).write_all(END_CONTAINER.as_bytes())?;
        }
        (&file).write_all(note.as_bytes())?;
        sys::set_inheritable(file.as_fd())?;
        fs::rename(&tmp, dir.join(pid.to_string())).map_err(|e| with_path(e, &tmp))?;
        // Deliberately leaked: the descriptor must stay open through exec.
        let _ = file.into_raw_fd();
        Ok(())
    }

    /// Takes back this process's session (its file, whose lock it holds): a verb that
    /// registered and then ran nothing (the target not identified) neither counts as a user
    /// of the container nor, with `--end-container`, ends it when it exits. The plugin then
    /// still finds the container running to ask `target` why (docs/agent.md).
    pub fn withdraw_session(&self) {
        let _ = fs::remove_file(self.sessions_dir().join(std::process::id().to_string()));
    }

    /// Pids (from the file names) of sessions whose lock is held. Files of ended sessions
    /// are removed on the way when `sweep` is set.
    pub fn live_sessions(&self, sweep: bool) -> io::Result<Vec<i32>> {
        self.look_at_sessions(sweep).map(|s| s.live)
    }

    /// The live sessions, and whether one of those that ended asked to end the container;
    /// the files of ended sessions are removed (so each ending is seen once).
    pub fn sweep_sessions(&self) -> io::Result<Sessions> {
        self.look_at_sessions(true)
    }

    fn look_at_sessions(&self, sweep: bool) -> io::Result<Sessions> {
        let mut found = Sessions::default();
        let entries = match fs::read_dir(self.sessions_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(pid) = pid_from_name(entry.file_name()) else {
                continue;
            };
            let path = entry.path();
            let Ok(mut file) = File::open(&path) else {
                continue;
            };
            match sys::flock(file.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => found.live.push(pid),
                Ok(()) => {
                    if sweep {
                        let mut first = [0u8; END_CONTAINER.len()];
                        if file.read_exact(&mut first).is_ok() && first == END_CONTAINER.as_bytes()
                        {
                            found.ended_one_ending_the_container = true;
                        }
                        // Removed while we hold the lock: no session can be using it.
                        let _ = fs::remove_file(&path);
                    }
                }
                Err(_) => {}
            }
        }
        found.live.sort_unstable();
        Ok(found)
    }
}

fn pid_from_name(name: OsString) -> Option<i32> {
    let name = name.to_str()?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|&pid| pid > 0)
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&pid: &i32| pid > 0)
}

fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| with_path(e, path))
}

pub fn with_path(err: io::Error, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "dda-state-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_session_is_alive_while_its_lock_is_held() {
        let dir = temp_dir("lock");
        let state = StateDir::at(dir.clone());
        state.ensure().unwrap();
        let sessions = state.sessions_dir();
        // A locked file (as a live session holds it) and an unlocked one (a dead session).
        let live = File::create(sessions.join("4242")).unwrap();
        sys::flock(live.as_fd(), libc::LOCK_EX).unwrap();
        File::create(sessions.join("4343")).unwrap();
        File::create(sessions.join("not-a-pid")).unwrap();

        assert_eq!(state.live_sessions(true).unwrap(), vec![4242]);
        assert!(
            !sessions.join("4343").exists(),
            "the dead session's file is swept"
        );
        assert!(
            sessions.join("not-a-pid").exists(),
            "foreign names are left alone"
        );

        drop(live);
        assert_eq!(state.live_sessions(true).unwrap(), Vec::<i32>::new());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_ended_session_that_ends_the_container_is_reported_once() {
        let dir = temp_dir("ending");
        let state = StateDir::at(dir.clone());
        state.ensure().unwrap();
        let sessions = state.sessions_dir();
        let write = |name: &str, text: &str| {
            let file = File::create(sessions.join(name)).unwrap();
            (&file).write_all(text.as_bytes()).unwrap();
            file
        };
        let live = write("10", "end-container\nshell");
        sys::flock(live.as_fd(), libc::LOCK_EX).unwrap();
        drop(write("11", "run ls"));
        let found = state.sweep_sessions().unwrap();
        assert_eq!(found.live, vec![10]);
        assert!(
            !found.ended_one_ending_the_container,
            "the ended one did not ask; the one that asked is alive"
        );

        drop(live);
        drop(write("12", "end-container\nrun ls"));
        let found = state.sweep_sessions().unwrap();
        assert_eq!(found.live, Vec::<i32>::new());
        assert!(found.ended_one_ending_the_container);
        assert_eq!(
            state.sweep_sessions().unwrap(),
            Sessions::default(),
            "seen once"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_withdrawn_session_neither_lives_nor_ends_the_container() {
        let dir = temp_dir("withdrawn");
        let state = StateDir::at(dir.clone());
        state.register_session("run ls", true).unwrap();
        let own = state.sessions_dir().join(std::process::id().to_string());
        assert!(own.exists(), "registered under this process's pid");
        assert_eq!(
            state.sweep_sessions().unwrap().live,
            vec![std::process::id() as i32]
        );

        state.withdraw_session();
        assert!(!own.exists());
        assert_eq!(
            state.sweep_sessions().unwrap(),
            Sessions::default(),
            "no live session, and none that asked to end the container"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_directory_others_may_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("perm");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(StateDir::at(dir.clone()).ensure().is_err());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_target_link_is_replaced_in_place() {
        let dir = temp_dir("link");
        let state = StateDir::at(dir.clone());
        state.point_target_link(7).unwrap();
        assert_eq!(
            fs::read_link(state.target_link_path()).unwrap(),
            Path::new("/proc/7/root")
        );
        state.point_target_link(42).unwrap();
        assert_eq!(
            fs::read_link(state.target_link_path()).unwrap(),
            Path::new("/proc/42/root")
        );
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            !names.iter().any(|n| n.to_string_lossy().ends_with(".tmp")),
            "no temporary link left: {names:?}"
        );
        state.remove_target_link();
        assert!(fs::symlink_metadata(state.target_link_path()).is_err());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pids_round_trip() {
        let dir = temp_dir("pid");
        let state = StateDir::at(dir.clone());
        state.ensure().unwrap();
        assert_eq!(state.read_hold_pid(), None);
        state.write_hold_pid(77).unwrap();
        assert_eq!(state.read_hold_pid(), Some(77));
        fs::remove_dir_all(dir).unwrap();
    }
}
