//! The held entrypoint of a `--copy` pod and the `start` that releases it.
//!
//! A copy of a crash-looping pod must not run the target's entrypoint at creation: it would
//! crash again before anyone looks. So the copy's init container `install`s this binary into
//! an emptyDir, the target container's command becomes `entrypoint --socket S -- ARGV...`,
//! which only listens, and `start` in the debug container asks it to run ARGV. The app then
//! runs where it belongs, in the target container (its image, mounts, uid, env), while its
//! stdin/stdout/stderr are the caller's own descriptors, passed over the unix socket, so the
//! output reaches the user's terminal and the exit code comes back. docs/agent.md describes
//! the protocol; [`proto`] holds it.

pub mod client;
pub mod entrypoint;
mod fds;
pub mod install;
pub mod proto;
mod spawn;

/// The environment variable naming the held entrypoint's socket in the debug container.
pub const SOCKET_ENV: &str = "DISTROLESS_DEBUG_START_SOCKET";
