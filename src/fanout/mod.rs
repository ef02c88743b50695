pub mod out_dir;
pub mod plan;
pub mod pod;
pub mod progress;
pub mod reads;
pub mod results;
pub mod run;
pub mod runbook;
