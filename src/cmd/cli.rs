//! The command line as clap sees it, and nothing else.
//!
//! These types are raw: they say what was typed, not whether it makes sense. Every rule that
//! relates one flag to another lives in `options.rs` (with `flags.rs` and `copy_options.rs`), which turns a [`Cli`] into validated
//! [`crate::cmd::options::Options`]. The `///` comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::printer::OutputFormat;
use crate::session::profile::Profile;
use crate::toolkit::catalog::ToolkitArg;

/// Shown at the end of `--help`; the same table is in docs/exit-codes.md.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0        success
  1        failure (the message says which step and why)
  2        usage error (a flag or an argument is wrong), or the target process cannot be
           identified in a pod sharing its PID namespace (the candidates are listed: --target-pid N)
  130      interrupted by Ctrl-C (129 SIGHUP, 143 SIGTERM); the debug container is stopped first
  N        with `-- COMMAND`, the remote command's own exit code (127: command not found);
           with `--copy -- start`, the app's own exit code (128+N for a signal; 125: no held
           target)
  4        `run` and `-l ... -- COMMAND`: a step that was not allowed to fail failed on some pod
  5        `run` and `-l ... -- COMMAND`: some pod could not be debugged at all, or with several
           --context, some context's pods could not be chosen (wins over 4)";

const EXAMPLES_HELP: &str = "\
Examples:
  kubectl distroless-debug pod/web                  # a shell next to container `web`'s processes
  kubectl distroless-debug deploy/api -c app        # a ready pod of the deployment, container app
  kubectl distroless-debug pod/web -- ls /target/etc
  kubectl distroless-debug pod/mesh -c proxy -- sh -c 'cat /proc/$TARGET_PID/status'
  kubectl distroless-debug pod/web --dry-run=client -o yaml
  kubectl distroless-debug pod/crashing --copy       # a copy held before its entrypoint; `start` runs it
  kubectl distroless-debug deploy/api --copy -- start PORT=8080
  kubectl distroless-debug -l app=api -- ss -ltn     # every pod of the selector, in parallel
  kubectl distroless-debug run runbook.yaml -l app=api -o json --out-dir ./incident
  kubectl distroless-debug --context eu,us -l app=api -- ss -ltn  # the same in two clusters
  kubectl distroless-debug cp pod/web:/etc/app/config.yaml ./config.yaml
  kubectl distroless-debug snapshot pod/web -o incident.tar.gz
  kubectl distroless-debug ls -A
  kubectl distroless-debug cleanup";

/// Debug distroless Pods: a tool-rich ephemeral container in the target container's process
/// namespace, with the target's filesystem at /target, stopped afterwards. The target process
/// is found by the container ID the pod status reports (also in a pod sharing one PID
/// namespace, and for a native sidecar); commands get TARGET_PID and TARGET_ROOT.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl distroless-debug",
    bin_name = "kubectl distroless-debug",
    version,
    subcommand_negates_reqs = true,
    after_help = format!("{EXAMPLES_HELP}\n\n{EXIT_CODES_HELP}"),
)]
pub struct Cli {
    #[command(flatten)]
    pub kube: KubeFlags,

    /// Print only data and errors: no progress, no notes.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub debug: DebugArgs,
}

/// The standard kubectl connection flags.
#[derive(Debug, Args, Default, Clone)]
pub struct KubeFlags {
    /// Namespace of the target (default: the context's namespace, else `default`).
    #[arg(short, long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub context: ContextArgs,

    /// Path to a kubeconfig file (default: $KUBECONFIG, which may list several files, else
    /// ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// User to impersonate for every request.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,

    /// How long to wait for each single API request (e.g. 10s, 1m; 0 = no limit).
    #[arg(long, global = true, value_name = "DURATION")]
    pub request_timeout: Option<String>,

    /// How many times a request that is safe to repeat (a read, a list, a watch start, an
    /// access review, a dry run) is retried when the API server is busy or failing (429, 500,
    /// 502, 503, 504, a dropped connection); 0 turns retries off [default: 5].
    #[arg(long, global = true, value_name = "N")]
    pub api_retries: Option<u32>,

    /// No retry starts later than this after a request's first attempt [default: 10s].
    #[arg(long, global = true, value_name = "DURATION")]
    pub api_retry_within: Option<String>,
}

/// `--context`, accepted before a subcommand (in [`KubeFlags`]) and after it (flattened into
/// each subcommand's flags). Not a global flag: clap keeps only the last level's values of a
/// global flag, and `--context a run RUNBOOK --context b` must mean both contexts.
#[derive(Debug, Args, Default, Clone)]
pub struct ContextArgs {
    /// The kubeconfig context to use. `run` and `-l SELECTOR -- COMMAND` take several
    /// (`--context a,b`, or the flag repeated): the same targets in each of their clusters.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub context: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List our debug containers: pod, name, target, image, state, age, user, reason; and
    /// our `--copy` pods (their debug container, named distroless-debug).
    Ls(ListArgs),
    /// Stop every still-running debug container of ours (their entries stay in the pod spec),
    /// and delete every `--copy` pod of ours left behind.
    Cleanup(CleanupArgs),
    /// Copy a file or directory out of the target container or into it, through a debug
    /// container (no tar needed in the target): `cp pod/NAME:/path LOCAL` or
    /// `cp LOCAL pod/NAME:/path`.
    Cp(CpArgs),
    /// Write the target container's whole filesystem view to FILE.tar or FILE.tar.gz, with
    /// a manifest of every path and its sha256 inside it.
    Snapshot(SnapshotArgs),
    /// Run a runbook (YAML steps, see docs/runbooks.md) on many pods at once: one debug
    /// container per pod, steps in order, results as text, JSON or JSON lines.
    Run(RunArgs),
    /// List the toolkit images: their references as configured (config file,
    /// DISTROLESS_DEBUG_REGISTRY) and what each contains. Needs no cluster.
    Images(ImagesArgs),
    /// Facts about the target process, read by the agent in a debug container: pid, uid/gid,
    /// executable, command line, runtime (go, jvm, python, node, other), listening sockets,
    /// mounts, environment variable names (never values).
    Info(InfoArgs),
    /// Print the shell completion script of `kubectl-distroless_debug` for bash, zsh, fish,
    /// elvish or powershell, e.g. `source <(kubectl-distroless_debug completion bash)`. For
    /// `kubectl distroless-debug <TAB>`, kubectl 1.26+ runs kubectl_complete-distroless_debug,
    /// installed beside the plugin.
    Completion {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
        #[command(flatten)]
        context: ContextArgs,
    },
    /// Past sessions recorded on this machine, newest first: when, where, who, why, how long,
    /// exit code, recording (docs/recording.md); under the table, on stderr, any Event of a
    /// session's trail that could not be written. `history show ID` prints one's output.
    History(HistoryArgs),
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Only the sessions on this pod.
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// Only the sessions started this long ago or less (e.g. 30m, 2h; 168h is a week).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Output format of the list (the sidecars as written).
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    #[command(subcommand)]
    pub show: Option<HistoryShow>,
}

#[derive(Debug, Subcommand)]
pub enum HistoryShow {
    /// Print a session's recorded output (stdout; its stderr to stderr).
    Show {
        /// The session id (or a unique start of it), as `history` lists it.
        id: String,
        /// Without escape sequences (colours, cursor moves): text for a ticket.
        #[arg(long)]
        plain: bool,
    },
}

#[derive(Debug, Args)]
#[command(after_help = "\
Images come from ghcr.io/kubectl-distroless-debug unless ~/.config/kubectl-distroless-debug/
config.yaml ($XDG_CONFIG_HOME honoured) says `registry: MIRROR` or `images: {TOOLKIT: REF}`;
DISTROLESS_DEBUG_REGISTRY wins over the file. See docs/toolkits.md.")]
pub struct ImagesArgs {
    #[command(flatten)]
    pub context: ContextArgs,

    /// Print data (with every package of each image) instead of a table.
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The debug container is one of ours already running on the target (reused), else a new one
that is stopped afterwards. The `toolkit` field suggests the toolkit for the runtime found.

Examples:
  kubectl distroless-debug info pod/web
  kubectl distroless-debug info deploy/api -c app -o json | jq .listening")]
pub struct InfoArgs {
    #[command(flatten)]
    pub context: ContextArgs,

    /// What to look at: pod/NAME, NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME or job/NAME.
    #[arg(value_name = "TARGET")]
    pub target: String,

    /// Print the facts as data instead of aligned lines.
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    #[command(flatten)]
    pub session: FileSessionArgs,
}

const RUN_HELP: &str = "\
Each pod gets one debug container (one of ours already running is reused), runs the steps in
order and has its container stopped at the end, also on Ctrl-C. A step that fails and is not
`allow_failure` skips the rest of its pod's steps.

Built-in runbooks (--builtin NAME): network, processes, jvm, python, go.

Examples:
  kubectl distroless-debug run checks.yaml -l app=api --parallel 5 -o json
  kubectl distroless-debug run --builtin network deploy/api sts/db
  kubectl distroless-debug run --builtin jvm -A -l tier=backend -o jsonl --out-dir ./dumps
  kubectl distroless-debug run --builtin network -l app=api --context prod-eu,prod-us -o json

With several contexts each one's pods are chosen in its own cluster (and namespace, unless
-n), all of them share --parallel, and results carry each pod's `context`.";

#[derive(Debug, Args)]
#[command(after_help = RUN_HELP)]
pub struct RunArgs {
    #[command(flatten)]
    pub context: ContextArgs,

    /// The runbook file. With --builtin there is none: every argument is a TARGET.
    #[arg(value_name = "RUNBOOK")]
    pub runbook: Option<String>,

    /// Pods and workloads to run on: pod/NAME, NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME,
    /// job/NAME (a workload means all its pods).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// A runbook shipped with the plugin instead of a file: network, processes, jvm, python
    /// or go.
    #[arg(long, value_name = "NAME")]
    pub builtin: Option<String>,

    #[command(flatten)]
    pub fanout: FanoutArgs,

    /// The container to debug in each pod, a native sidecar too (default: its
    /// default-container annotation, else its first container).
    #[arg(short, long, value_name = "NAME")]
    pub container: Option<String>,

    /// Results: json (one document at the end), jsonl (a line per step as it finishes) or
    /// yaml; default: a text block per pod.
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// Tool set of the debug image. Default: the runbook's `toolkit`, else the config file's,
    /// else per pod the runtime toolkit its image or command names, else base.
    #[arg(long, value_enum, value_name = "TOOLKIT", conflicts_with = "image")]
    pub toolkit: Option<ToolkitArg>,

    /// Any image instead of ours (needs `sh` and `sleep`; no `when` or `collect` steps).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,

    /// Security profile of the debug containers (default: the runbook's, else auto).
    #[arg(long, value_enum, value_name = "PROFILE")]
    pub profile: Option<Profile>,

    /// Time allowed per pod, container start and every step (default: the runbook's, else
    /// 2m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// The debug containers stop by themselves after this long (0 = never).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub ttl: String,

    /// The debug containers stop by themselves after this long without a session.
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub idle: String,

    /// Why (a ticket id, say); recorded in each debug container.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    /// Always add new debug containers, even where one of ours for the target is running.
    #[arg(long)]
    pub new: bool,

    /// The target process by its pid in the pod's shared PID namespace, for when its container
    /// cannot be told by its ID (the refusal lists the candidates). Default: the agent finds
    /// the container's first process by the ID the pod status reports.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub target_pid: Option<u32>,
}

/// Many pods at once: `run`, and `-l SELECTOR -- COMMAND`.
#[derive(Debug, Args, Default)]
pub struct FanoutArgs {
    /// Run on every pod matching this label selector (e.g. app=api,tier!=canary).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// With -l: look in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// How many pods at once (default 10).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub parallel: Option<u16>,

    /// Write each step's output to DIR/<namespace>/<pod>/<step>.{out,err} (under
    /// DIR/<context>/ with several contexts), collected files next to them, and
    /// DIR/summary.json.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub context: ContextArgs,

    /// Look in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Print data instead of a table.
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub context: ContextArgs,

    /// Look in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Only list what would be stopped.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Paths in the pod are as the target sees them: its root, its symlinks (an absolute link
/etc/app/current -> /etc/app/v2 leads to the target's /etc/app/v2). A source goes into an
existing directory under its own name, else becomes DEST. Symlinks pointing outside a
download are not created. Uploads write as the target's uid.

Examples:
  kubectl distroless-debug cp pod/web:/etc/app/current/config.yaml ./config.yaml
  kubectl distroless-debug cp pod/web:/var/log ./logs -c app
  kubectl distroless-debug cp ./fix.json pod/web:/tmp/")]
pub struct CpArgs {
    #[command(flatten)]
    pub context: ContextArgs,

    /// What to copy: pod/NAME:/path (any TARGET form works, e.g. deploy/api:/path) or a
    /// local path.
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// Where to: a local path, or pod/NAME:/path for an upload.
    #[arg(value_name = "DEST")]
    pub dest: String,

    #[command(flatten)]
    pub session: FileSessionArgs,
}

/// `snapshot`'s own flags.
#[derive(Debug, Args)]
#[command(after_help = "\
The archive holds the target's files as it sees them (/proc, /sys and /dev never), and
distroless-debug-manifest.json as its last member: path, type, size, mode, uid, gid, mtime,
sha256 and link target of every entry, for offline analysis and for diffing two snapshots.
Patterns: `*` and `?` within a name, `**` across directories; `/etc/**` is anchored at the
root, a bare name like `*.log` matches anywhere; a match on a directory covers what is below.

Examples:
  kubectl distroless-debug snapshot pod/web -o incident.tar.gz
  kubectl distroless-debug snapshot pod/web -o etc.tar --include '/etc/**'
  kubectl distroless-debug snapshot deploy/api -o app.tar.gz --no-volumes --exclude '*.log'")]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub context: ContextArgs,

    /// What to snapshot: pod/NAME, NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME or job/NAME.
    #[arg(value_name = "TARGET")]
    pub target: String,

    /// Where to write it: FILE.tar, FILE.tar.gz (or .tgz), or - for a plain tar on stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: String,

    /// Leave out the target container's volumes (they are in by default).
    #[arg(long)]
    pub no_volumes: bool,

    /// Keep only paths matching GLOB (and the directories above them); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Leave out paths matching GLOB and everything below them; repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    #[command(flatten)]
    pub session: FileSessionArgs,
}

/// How `cp` (and `snapshot`) get their debug container.
#[derive(Debug, Args, Default)]
pub struct FileSessionArgs {
    /// The target container, a native sidecar too (default: the pod's
    /// kubectl.kubernetes.io/default-container annotation, else its first container).
    #[arg(short, long, value_name = "NAME")]
    pub container: Option<String>,

    /// Tool set of the debug image, when one is added: base (default), net, full, jvm,
    /// python, go or node.
    #[arg(long, value_enum, value_name = "TOOLKIT")]
    pub toolkit: Option<ToolkitArg>,

    /// Security profile of an added debug container (auto: the target's uid/gid, no
    /// capabilities).
    #[arg(long, value_enum, value_name = "PROFILE", default_value = "auto")]
    pub profile: Profile,

    /// How long to wait for an added debug container to start.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub timeout: String,

    /// Why (a ticket id, say); recorded in an added debug container.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    /// Add a new debug container even if one of ours for this target is running.
    #[arg(long)]
    pub new: bool,

    /// The target process by its pid in the pod's shared PID namespace, for when its container
    /// cannot be told by its ID (the refusal lists the candidates). Default: the agent finds
    /// the container's first process by the ID the pod status reports.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub target_pid: Option<u32>,
}

/// Starting a debug session (the default command).
#[derive(Debug, Args, Default)]
pub struct DebugArgs {
    /// What to debug: pod/NAME, NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME or job/NAME
    /// (for a workload, one of its Running and ready pods).
    #[arg(
        value_name = "TARGET",
        required_unless_present = "selector",
        conflicts_with = "selector"
    )]
    pub target: Option<String>,

    /// With `-l SELECTOR -- COMMAND`: the command on every matching pod, in parallel.
    #[command(flatten, next_help_heading = "Many pods (-l SELECTOR -- COMMAND)")]
    pub fanout: FanoutArgs,

    /// The container to debug, a native sidecar (init container with restartPolicy: Always)
    /// too (default: the pod's kubectl.kubernetes.io/default-container annotation, else its
    /// first container).
    #[arg(short, long, value_name = "NAME")]
    pub container: Option<String>,

    /// Tool set of the debug image: base (busybox), net, full, jvm, python, go, node, or auto
    /// (the one for the target's runtime, read by the agent; see `images`). Default: the
    /// config file's `toolkit`, else the runtime toolkit the target's image or command names
    /// (e.g. a `python:3.12` image gets python; free, from the pod already read), else base.
    #[arg(
        long,
        value_enum,
        value_name = "TOOLKIT",
        conflicts_with = "image",
        hide_possible_values = true
    )]
    pub toolkit: Option<ToolkitArg>,

    /// Use any image instead of ours; it needs `sh` and `sleep`, and the target's filesystem is
    /// then at /tmp/target.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,

    /// Security profile of the debug container: auto (run as the target's uid/gid, no
    /// capabilities), restricted, baseline, ptrace, netadmin or sysadmin.
    #[arg(
        long,
        value_enum,
        value_name = "PROFILE",
        default_value = "auto",
        hide_possible_values = true
    )]
    pub profile: Profile,

    /// How long to wait for the debug container to start.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub timeout: String,

    /// The debug container stops by itself after this long (0 = never).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub ttl: String,

    /// The debug container stops by itself after this long without a session (0 = never).
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub idle: String,

    /// Why you are debugging (a ticket id, say); recorded in the debug container, the Events on
    /// the pod and the local record; shown by `ls` and `history`.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    /// Always add a new debug container, even if one of ours for this target is running.
    #[arg(long)]
    pub new: bool,

    /// The target process by its pid in the pod's shared PID namespace, for when its container
    /// cannot be told by its ID (the refusal lists the candidates). Default: the agent finds
    /// the container's first process by the ID the pod status reports.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub target_pid: Option<u32>,

    /// Also mount the target container's volumes in the debug container, at the same paths
    /// under /target-volumes (subPath mounts are skipped: the API forbids them there).
    /// Adds a new debug container.
    #[arg(long)]
    pub mirror_volumes: bool,

    /// Give the debug container the target container's env and envFrom. Secrets referenced
    /// there travel with it. Adds a new debug container.
    #[arg(long)]
    pub copy_env: bool,

    /// Forward stdin to the command (default: when stdin is a pipe or a file; a shell always
    /// reads it).
    #[arg(short = 'i', long)]
    pub stdin: bool,

    /// Allocate a terminal (default: on when stdin and stdout are terminals and no command is
    /// given).
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Don't attach: client prints the PATCH that would be sent, server sends it with
    /// dryRun=All and reports what admission said.
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "client"
    )]
    pub dry_run: Option<DryRunArg>,

    /// Debug a copy of the pod instead of the pod itself, for a target that does not run
    /// (it crash-loops or exits at start): the copy (without the original's labels and
    /// owners, so nothing selects it) holds the target container before its entrypoint, with
    /// its image, env and volumes, and our debug container beside it; `start` in the shell
    /// runs the entrypoint (`start KEY=VALUE... [ARGS]`, again after it exits, `--wait-for-trace`
    /// for strace). A workload with no ready pod is copied from its pod template. The copy is
    /// deleted when the session ends. See docs/copy.md.
    #[arg(long, conflicts_with = "selector", help_heading = "Copy mode (--copy)")]
    pub copy: bool,

    /// With --copy: keep the original's node (`nodeName`), so the copy runs where it ran.
    #[arg(long, requires = "copy", help_heading = "Copy mode (--copy)")]
    pub same_node: bool,

    /// With --copy: leave the copy when the session ends (`cleanup` deletes it later; it ends
    /// by itself after --ttl).
    #[arg(long, requires = "copy", help_heading = "Copy mode (--copy)")]
    pub keep_copy: bool,

    /// With --copy: the target's entrypoint, 'CMD ARGS' split as a shell splits words. Wins over
    /// the pod spec's command and the image config's ENTRYPOINT/CMD (read from the registry
    /// when the spec sets no command).
    #[arg(
        long,
        value_name = "'CMD ARGS'",
        requires = "copy",
        help_heading = "Copy mode (--copy)"
    )]
    pub entrypoint: Option<String>,

    /// Don't record this session locally (see `history` and docs/recording.md).
    #[arg(long, conflicts_with_all = ["record", "record_input"])]
    pub no_record: bool,

    /// Write the session's recording (asciicast v2) to FILE instead of the state directory.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Also record what is typed (as asciicast "i" events); it can hold passwords.
    #[arg(long)]
    pub record_input: bool,

    /// Output format: of the PATCH body with --dry-run, else of the session result (needs a
    /// command after --).
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// The command to run in the debug container instead of a shell.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRunArg {
    Client,
    Server,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// `--context` is flattened into each subcommand rather than global (see [`ContextArgs`]):
    /// a subcommand added without it would refuse `sub --context x`.
    #[test]
    fn every_subcommand_takes_context_after_its_name() {
        let cli = Cli::command();
        let mut seen = 0;
        for sub in cli.get_subcommands() {
            seen += 1;
            assert!(
                sub.get_arguments().any(|a| a.get_long() == Some("context")),
                "`{} --context` is refused: flatten ContextArgs into its flags",
                sub.get_name()
            );
        }
        assert!(seen >= 6, "{seen} subcommands");
    }
}
