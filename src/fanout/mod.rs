//! Many pods at once: runbooks, planning a fan-out, the per-pod run, progress, results and
//! `--out-dir`. Imports only from the layers below (docs/layout.md).

pub mod out_dir;
pub mod plan;
pub mod pod;
pub mod progress;
pub mod reads;
pub mod results;
pub mod run;
pub mod runbook;
