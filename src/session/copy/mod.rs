//! `--copy`: a target that does not run (it crash-loops, or exits at start) is debugged in a
//! copy of its pod whose target container is held by our agent before its entrypoint. This
//! folder owns the copy: its options, the entrypoint it holds (`entrypoint`, with the image
//! config read from the registry in `registry`), the pod spec (`spec`, pure), where it comes
//! from (`source`: a pod, or a workload's template), its failures, and the run that creates
//! it, works in it and deletes it (`run`, `wait`). Imports only from the layers below and
//! from `session/` itself (docs/layout.md).

pub mod entrypoint;
pub mod failure;
pub mod hint;
pub mod leftover;
pub mod options;
pub mod registry;
pub mod run;
pub mod source;
pub mod spec;
pub mod wait;
