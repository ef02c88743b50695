//! Bottom layer: the plugin's error kinds and exit codes, durations, interrupts and the
//! terminal guard. Nothing here imports from another layer (docs/layout.md).

pub mod duration;
pub mod error;
pub mod exit;
pub mod interrupt;
pub mod tap;
pub mod terminal;
