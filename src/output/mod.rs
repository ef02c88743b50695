//! The printer through which all user-facing output goes, and the `-o` formats. Imports only
//! from the layers below (docs/layout.md).

pub mod printer;
pub mod recording;
