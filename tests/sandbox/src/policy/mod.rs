//! Admission and validation rules of the real apiserver: ephemeral container validation, Pod Security, RBAC.
