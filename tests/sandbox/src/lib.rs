//! kube-sandbox: a single-process Kubernetes API double plus a node that runs real containers
//! with runc. It is a test double of the control plane, not of the kernel or the runtime: see
//! docs/sandbox.md for what is real and what is not.

pub mod runtime;
