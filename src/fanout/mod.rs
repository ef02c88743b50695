pub mod out_dir;
pub mod pod;
pub mod reads;
pub mod results;
pub mod run;
pub mod runbook;
