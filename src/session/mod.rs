//! One debug container on one target: resolving the target, identity, profiles, the
//! container spec, inject, wait, teardown and attach mode, driven by `plan` → `add` →
//! `probe` → `obtain`; `debug` is the default command. Imports only from the layers below
//! (docs/layout.md).

pub mod add;
pub mod attach;
pub mod capability;
pub mod copy;
pub mod debug;
pub mod events;
pub mod facts;
pub mod handoff;
pub mod handshake;
pub mod identity;
pub mod inject;
pub mod obtain;
pub mod options;
pub mod plan;
pub mod presume;
pub mod probe;
pub mod profile;
pub mod refusal;
pub mod reuse_cache;
pub mod settle;
pub mod spec;
pub mod target;
pub mod teardown;
pub mod trail;
pub mod wait;
pub mod watch;
