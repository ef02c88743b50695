pub mod duration;
pub mod error;
pub mod exit;
pub mod interrupt;
pub mod terminal;
