//! Strategic merge patch for the objects the sandbox serves.
