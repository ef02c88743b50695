//! The node: runs pods as real containers with runc (owned by the node work).
