pub mod cleanup;
pub mod cli;
pub mod images;
pub mod info;
pub mod ls;
pub mod options;
