pub mod printer;
pub mod progress;
