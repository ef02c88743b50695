//! The connection to a cluster (`Cluster`, `KubeOptions`) with the one retry policy of every
//! request, access reviews, and the exec and attach streams. Imports only from `base`
//! (docs/layout.md).

pub mod access;
pub mod cluster;
pub mod exec;
pub mod exec_output;
pub mod exec_stream;
#[cfg(test)]
pub mod fake_apiserver;
pub mod retry;
