//! The API double: HTTPS server, store, watch, discovery, subresources (owned by the API work).
