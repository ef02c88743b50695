pub mod cleanup;
pub mod cli;
pub mod images;
pub mod ls;
pub mod options;
