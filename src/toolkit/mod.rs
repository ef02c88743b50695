//! The toolkit images: the catalog, the config file that can change it, and the pure rules
//! that pick a toolkit for a runtime. Imports only from the layers below (docs/layout.md).

pub mod catalog;
pub mod config;
pub mod runtime;
