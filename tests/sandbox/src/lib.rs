//! kube-sandbox: a single-process Kubernetes API double plus a node that runs real containers
//! with runc. It is a test double of the control plane, not of the kernel or the runtime: see
//! docs/sandbox.md for what is real and what is not.

pub mod api;
pub mod channel;
pub mod fixtures;
pub mod node;
pub mod policy;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod smp;
pub mod static_bin;

pub use api::audit::RequestRecord;
pub use api::faults::{DropResponse, ErrorBurst, Faults, Slow};
pub use sandbox::{Sandbox, SandboxError, SandboxOptions, node_prerequisites, skip_without_node};
