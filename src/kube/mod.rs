pub mod access;
pub mod cluster;
pub mod exec;
#[cfg(test)]
pub mod fake_apiserver;
