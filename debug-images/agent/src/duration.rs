//! Durations as the plugin and users write them (`90s`, `15m`, `1h30m`, `0` for never): the
//! `flag-duration` crate, whose grammar the plugin checks flags with before handing them here.

pub use flag_duration::{Human, parse};
