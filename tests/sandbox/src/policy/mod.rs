//! Admission and validation rules of the real apiserver: ephemeral container validation, Pod
//! Security, RBAC. Pure functions of the request and the stored objects, worded exactly as
//! kube-apiserver words its answers, so clients and tests see the real bodies.

pub mod field;
pub mod psa;
pub mod rbac;
pub mod validation;
