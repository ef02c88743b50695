//! Builds static binaries of this workspace for use inside images (owned by the node work).
