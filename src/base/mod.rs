//! Bottom layer: the plugin's error kinds and exit codes, durations, interrupts, the
//! terminal guard and a task's guard. Nothing here imports from another layer (docs/layout.md).

pub mod duration;
pub mod error;
pub mod exit;
pub mod interrupt;
pub mod tap;
pub mod task;
pub mod terminal;
