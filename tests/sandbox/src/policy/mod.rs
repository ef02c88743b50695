//! Admission and validation rules of the real apiserver: pod update and ephemeral container
//! validation, Pod Security admission, authentication and RBAC. Pure functions of the request
//! and the stored objects, worded exactly as kube-apiserver words its answers, so clients and
//! tests see the real bodies. `field` holds the field errors and Status bodies they share.

pub mod field;
pub mod psa;
pub mod qos;
pub mod rbac;
pub mod validation;
