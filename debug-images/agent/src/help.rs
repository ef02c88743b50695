//! The help texts: what `--help` prints for the agent and each verb, exit codes included
//! (docs/agent.md says the same at more length).

pub const MAIN_HELP: &str = "\
distroless-debug-agent: the entrypoint of kubectl-distroless-debug images

Usage: distroless-debug-agent VERB [ARGS...]

Verbs:
  hold     keep the debug container open (its main process); ends at ttl, idle or stop
  run      run a command as a registered session: run -- CMD [ARGS...]
  shell    start an interactive shell as a registered session
  stop     end the sessions of this debug container, then hold (never the target)
  info     facts about the target process (uid/gid, exe, runtime, sockets, mounts)
  target   which process is the target, how it was found, where its root is
  tar      write a tar of paths inside the target's root to stdout
  untar    extract a tar from stdin inside the target's root
  stat     one JSON line per path inside the target's root: type, mode, ids, size
  start    in a --copy session: run the held target's command, with overrides
  install  copy this binary to DEST (the copy pod's init container)
  entrypoint  the held target's main process in a copy pod: waits for `start`
  version  print the version

Run 'distroless-debug-agent VERB --help' for a verb's flags.

The target: hold, run, shell, info, target, tar, untar and stat take
  --target-id ID    the target container's ID as the pod status reports it
                    (containerd://, cri-o://, docker:// prefixes accepted): the target is
                    that container's first process, found by /proc/<pid>/cgroup
  --target-pid N    the target process itself
Env DISTROLESS_DEBUG_TARGET_PID and DISTROLESS_DEBUG_TARGET_ID stand for them; flags win,
and a pid wins over an ID. Without either, PID 1 is the target unless it is the pod's
pause process (shareProcessNamespace): then the verb refuses with exit code 3 and lists
the candidates. Never a guess. /target (and /tmp/.distroless-debug/target) leads to the
last target resolved; sessions get TARGET_PID and TARGET_ROOT.

Exit codes:
  0    success
  1    failure (reason on stderr)
  2    bad command line
  3    target not identified (reason and candidates on stderr; --target-pid picks one)
  125  start: no held target to reach (reason on stderr)
  126  run/shell/start: command found but not executable
  127  run/shell/start: command not found
  run, shell and start otherwise exit with the command's own code (128+N when killed by
  signal N).

Files: /tmp/.distroless-debug/hold.pid, /tmp/.distroless-debug/sessions/<pid>,
/tmp/.distroless-debug/target (the directory is DISTROLESS_DEBUG_STATE_DIR when set).
";

pub const HOLD_HELP: &str = "\
Usage: distroless-debug-agent hold [--ttl DURATION] [--idle DURATION]
                                   [--target-id ID | --target-pid N]

Keeps the debug container open. At start it resolves the target (see the main --help),
points /target at it and logs it; a target that cannot be identified is logged with the
candidates and hold keeps running. Exits 0, with one line on stderr saying why, when:
  - it receives SIGTERM or SIGINT, or `stop` asks it to;
  - a session started with --end-container has ended and no other session is alive;
  - the ttl has elapsed since it started;
  - no session (run/shell) has been alive for the idle time (counted from start).

Flags:
  --ttl DURATION    maximum lifetime (default 1h; env DISTROLESS_DEBUG_TTL)
  --idle DURATION   exit after this long without a session (default 15m;
                    env DISTROLESS_DEBUG_IDLE)
  --target-id ID    the target container's ID (env DISTROLESS_DEBUG_TARGET_ID)
  --target-pid N    the target process (env DISTROLESS_DEBUG_TARGET_PID)
Durations: 90s, 15m, 1h, 1h30m; 0 disables that limit. Flags win over env.

Exit codes: 0 stopped as above; 1 the state directory cannot be used; 2 bad flags or
a bad DISTROLESS_DEBUG_* value.
";

pub const RUN_HELP: &str = "\
Usage: distroless-debug-agent run [--handshake] [--end-container] [--target-id ID | --target-pid N] [--] CMD [ARGS...]

Resolves the target (see the main --help), registers a session (so `hold` does not idle
out and `stop` can end it), then executes CMD in place of the agent: the exit code and
signals are the command's own. CMD gets TARGET_PID (the target's pid) and TARGET_ROOT
(/target when it leads to that pid's root, else /proc/<pid>/root).

Flags:
  --end-container  when this session ends and no other session is alive, `hold` exits
                   and the container ends (no `stop` needed)
  --handshake      before CMD, read one line of stdin: `go` runs as above; `abort`, anything
                   else or a closed stdin runs nothing (exit 1). The rest of stdin is CMD's.

Exit codes: the command's own; 1 the handshake did not say go; 126 found but not
executable; 127 not found; 2 no command
or bad flags; 3 target not identified (candidates on stderr).
";

pub const SHELL_HELP: &str = "\
Usage: distroless-debug-agent shell [--handshake] [--end-container] [--target-id ID | --target-pid N]

Resolves the target (see the main --help), registers a session and starts an interactive shell ($SHELL, else bash if present, else
/bin/sh) in /, with HOME=/tmp when HOME is unset or not writable, a PATH that includes the
toolkit directories, TARGET_PID and TARGET_ROOT, and a `dbg:` prompt. Prints one line
about the target first (pid, exe, uid, container ID, how it was found, where its files
are). Also works as the container's main process (attach mode).

Flags:
  --target-id ID   the target container's ID (env DISTROLESS_DEBUG_TARGET_ID)
  --target-pid N   the target process (env DISTROLESS_DEBUG_TARGET_PID; --pid is the
                   older spelling)
  --end-container  as run --end-container: the container ends with the last session
  --handshake      before the shell, read one line of stdin: `go` starts it; `abort`, anything
                   else or a closed stdin starts nothing (exit 1)

Exit codes: the shell's own; 1 the handshake did not say go; 126/127 when no shell can be executed; 2 bad flags; 3 target
not identified (candidates on stderr).
";

pub const STOP_HELP: &str = "\
Usage: distroless-debug-agent stop

Ends this debug container: SIGTERM (SIGKILL after 2s) to the registered sessions and their
children, then asks `hold` to exit. Only processes of this container are signalled: never
PID 1 and never a process whose root differs from the agent's own (the target's).
`hold` exits as soon as this `stop` has returned, so the caller sees exit code 0.
Idempotent: exits 0 when hold is already gone.

Exit codes: 0 stopped (or nothing to stop); 1 hold did not acknowledge within 5s.
";

pub const INFO_HELP: &str = "\
Usage: distroless-debug-agent info [--target-id ID | --target-pid N] [--end-container]
                                   [-o json|text]

Facts about the target process: pid, its container ID and how it was found
(container_id, method: cgroup|pid1|flag), uid/gid/groups, exe, cmdline, runtime
(go|jvm|python|node|other), listening sockets of its network namespace, mounts,
environment variable names (never values), whether its root is readable.
Facts that cannot be read are null (text: '-') and the reason is listed under errors.

Flags:
  --target-id ID   the target container's ID (env DISTROLESS_DEBUG_TARGET_ID)
  --target-pid N   the target process (env DISTROLESS_DEBUG_TARGET_PID; --pid is the
                   older spelling)
  --end-container  once the target is found, register this info as a session that,
                   as with run --end-container, ends the container when it is the last
                   (none on exit code 2 or 3); output and exit code are the same
  -o, --output F   json or text (default text)

Exit codes: 0 facts printed (possibly partial); 1 the target exited meanwhile; 2 bad
flags; 3 target not identified (candidates on stderr; with -o json the same JSON as
`target -o json` on stdout).
";

pub const TARGET_HELP: &str = "\
Usage: distroless-debug-agent target [--target-id ID | --target-pid N] [-o json|text]

Prints which process is the target, resolved as every verb resolves it, and points
/target at it:
  {\"pid\":12,\"container_id\":\"3f2a...\",\"method\":\"cgroup\",\"root\":\"/target\"}
container_id is the ID the target's cgroup shows (null when it shows none); method is
cgroup (the first process of the container --target-id names), pid1 (PID 1 of the
target's own PID namespace) or flag (--target-pid); root is where the target's files
are (/target when it leads there, else /proc/<pid>/root).
When the target cannot be identified it exits 3; with -o json stdout then holds
  {\"error\":\"target not identified: ...\",\"candidates\":[{\"pid\":7,
   \"container_id\":\"9a0b...\",\"exe\":null,\"uid\":1337,\"cmdline\":[\"envoy\"]}]}
(the first process of each other container; exe is null where the kernel hides it),
else the reason and a table of the candidates are on stderr.

Flags:
  --target-id ID   the target container's ID (env DISTROLESS_DEBUG_TARGET_ID)
  --target-pid N   the target process (env DISTROLESS_DEBUG_TARGET_PID)
  -o, --output F   json or text (default text)

Exit codes: 0 target printed; 2 bad flags; 3 target not identified.
";

pub const TAR_HELP: &str = "\
Usage: distroless-debug-agent tar [--root DIR | --target-id ID | --target-pid N]
                                  [--end-container] [--exclude PATH]... PATH...

Writes a tar (ustar with PAX extensions) of PATHs to stdout. PATHs are resolved inside
DIR (default the target's root, /proc/<target pid>/root): symlinks in them are followed as the target
would follow them, and neither absolute symlinks nor `..` ever leave DIR. Directories are
archived recursively; symlinks inside them are archived as symlinks, never followed.
Entry names are the PATHs without the leading `/` (`/etc/app` -> `etc/app/...`); for `/`
the entries are its children. Keeps modes, mtimes, uid/gid numbers, symlinks and hard
links; skips sockets, devices and fifos with a note. Unreadable files are reported on
stderr and skipped; then a summary line follows on stderr.

Flags:
  --root DIR       resolve PATHs inside DIR
  --target-id ID   the target container's ID (env DISTROLESS_DEBUG_TARGET_ID)
  --target-pid N   the target process (env DISTROLESS_DEBUG_TARGET_PID)
  --exclude PATH   leave out PATH (inside the root) and everything below it; repeatable
  --end-container  once the root is known, register this tar as a session that, as with
                   run --end-container, ends the container when it is the last (none on
                   exit code 2 or 3); the archive and exit code are the same

Env: DISTROLESS_DEBUG_NO_OPENAT2=1 forces the userspace resolver.

Exit codes: 0 archive written (warnings possible); 1 nothing could be archived or
stdout failed; 2 bad flags; 3 target not identified.
";

pub const UNTAR_HELP: &str = "\
Usage: distroless-debug-agent untar [--root DIR | --target-id ID | --target-pid N]
                                    [--end-container] DEST

Reads a tar from stdin and extracts it under DEST, an existing directory resolved inside
DIR (default the target's root, /proc/<target pid>/root). Refuses, naming the entry, any entry with
`..`, an absolute name, or a path through a symlink (also one the archive itself created);
stops at the first refusal, leaving the entries before it in place. Existing files are
replaced. Sets modes and mtimes; uid/gid only where permitted. Devices and fifos are
skipped with a note.

Flags:
  --root DIR       resolve DEST inside DIR
  --target-id ID   the target container's ID (env DISTROLESS_DEBUG_TARGET_ID)
  --target-pid N   the target process (env DISTROLESS_DEBUG_TARGET_PID)
  --end-container  as tar --end-container: the container ends with the last session

Env: DISTROLESS_DEBUG_NO_OPENAT2=1 forces the userspace resolver.

Exit codes: 0 extracted; 1 an entry was refused or could not be written; 2 bad flags;
3 target not identified.
";

pub const STAT_HELP: &str = "\
Usage: distroless-debug-agent stat [--root DIR | --target-id ID | --target-pid N] PATH...

Prints one JSON line per PATH, resolved inside DIR (default the target's root,
/proc/<target pid>/root) as `tar` resolves it (symlinks followed as the target would):
  {\"path\":\"/etc\",\"type\":\"directory\",\"mode\":493,\"uid\":0,\"gid\":0,\"size\":4096,
   \"readOnlyFs\":false}
or, when it cannot be resolved, {\"path\":\"/nope\",\"error\":\"No such file or directory\",
\"errno\":2}. `type` is file, directory, symlink, socket, fifo, char-device or block-device;
`readOnlyFs` says whether the filesystem holding it is mounted read-only.

Exit codes: 0 every PATH resolved; 1 some did not (their lines say why); 2 bad flags;
3 target not identified.
";

pub const INSTALL_HELP: &str = "\
Usage: distroless-debug-agent install DEST

Copies this binary to DEST, mode 0755, atomically (a temporary file beside DEST, then a
rename): a process starting DEST sees the whole binary or none. The init container of a
`--copy` pod runs it to put the agent into the emptyDir the target container shares.

Exit codes: 0 installed; 1 DEST could not be written (reason on stderr); 2 bad arguments.
";

pub const ENTRYPOINT_HELP: &str = "\
Usage: distroless-debug-agent entrypoint --socket PATH [--] ARGV...

The target container's main process in a `--copy` pod: holds ARGV (the target's original
command) without running it, and listens on the unix socket PATH (mode 0666, any uid of
the pod may connect). Each `start` that connects gets ARGV run once, here, in the target
container (its files, uid, working directory, environment), with the KEY=VALUE overrides
on top of that environment and the extra arguments after ARGV, and with the descriptors
`start` passed as its stdin, stdout and stderr; in a session and process group of its
own. One app at a time (another `start` meanwhile is refused with its pid); after it
ends, `start` may run it again. A `start` that goes away ends its app (SIGTERM, SIGKILL
5s later). ARGV[0] is searched in the PATH of the app's environment.

On SIGTERM or SIGINT it ends a running app the same way, then exits 0.

Exit codes: 0 stopped by a signal; 1 PATH cannot be listened on; 2 bad arguments.
";

pub const START_HELP: &str = "\
Usage: start [--wait-for-trace] [KEY=VALUE...] [--] [ARGS...]
       distroless-debug-agent start [--socket PATH] ...

In a `--copy` session: runs the target's original command in the held target container
(its files, uid, environment) with this terminal's stdin, stdout and stderr, and exits
with its exit code. Prints nothing of its own unless something fails. Run it again after
the app has ended, e.g. with another override.

  KEY=VALUE          set (or replace) an environment variable of the app; repeatable,
                     before the arguments
  ARGS               appended to the original command line (after --, or from the first
                     word that is not KEY=VALUE)
  --wait-for-trace   the app stops (state T) just before its first instruction and its pid
                     is printed: attach a tracer (strace -f -p PID, ptrace profile), then
                     let it go on with kill -CONT PID
  --socket PATH      the held target's socket (default: env DISTROLESS_DEBUG_START_SOCKET,
                     which a --copy session sets)

SIGINT (Ctrl-C), SIGTERM, SIGHUP and SIGQUIT are forwarded to the app's process group.

Exit codes: the app's own (128+N when killed by signal N); 125 no held target here, or it
cannot be reached, or it is already running an app (reason on stderr); 126 the command is
not executable; 127 the command is not found; 2 bad arguments.
";
