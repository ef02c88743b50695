//! Durations as users type them in flags (`90s`, `15m`, `1h30m`, `0`), and back: the grammar
//! of the `flag-duration` crate, shared with the agent, which is handed `--ttl` and `--idle`
//! verbatim after we have checked them here.

pub use flag_duration::{Human, parse};
