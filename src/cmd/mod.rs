pub mod cleanup;
pub mod cli;
pub mod copy_options;
pub mod flags;
pub mod images;
pub mod info;
pub mod ls;
pub mod options;
