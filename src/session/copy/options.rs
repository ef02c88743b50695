//! What `--copy` adds to a session's options, as `cmd/options.rs` builds it from the flags.

/// `--copy` and the flags that only make sense with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyPodOptions {
    /// `--same-node`: keep the original's `nodeName`, so the copy runs where it ran.
    pub same_node: bool,
    /// `--keep-copy`: leave the copy when the session ends (and say how to delete it).
    pub keep_copy: bool,
    /// `--entrypoint 'CMD ARGS'`, split as a shell would split words: always wins over the
    /// pod spec and the image config.
    pub entrypoint: Option<Vec<String>>,
}
