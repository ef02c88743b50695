//! Top layer: clap's types, the flags turned into options with every cross-flag rule, and the
//! commands with no lower home (`info`, `ls`, `cleanup`, `images`, shell completion)
//! (docs/layout.md).

pub mod cleanup;
pub mod cli;
pub mod complete;
pub mod copy_options;
pub mod flags;
pub mod history;
pub mod images;
pub mod info;
pub mod ls;
pub mod options;
