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
  tar      write a tar of paths inside the target's root to stdout
  untar    extract a tar from stdin inside the target's root
  stat     one JSON line per path inside the target's root: type, mode, ids, size
  version  print the version

Run 'distroless-debug-agent VERB --help' for a verb's flags.

Exit codes:
  0    success
  1    failure (reason on stderr)
  2    bad command line
  126  run/shell: command found but not executable
  127  run/shell: command not found
  run and shell otherwise exit with the command's own code (128+N when killed by signal N).

Files: /tmp/.distroless-debug/hold.pid, /tmp/.distroless-debug/sessions/<pid>
(the directory is DISTROLESS_DEBUG_STATE_DIR when set).
";

pub const HOLD_HELP: &str = "\
Usage: distroless-debug-agent hold [--ttl DURATION] [--idle DURATION]

Keeps the debug container open. Exits 0, with one line on stderr saying why, when:
  - it receives SIGTERM or SIGINT, or `stop` asks it to;
  - the ttl has elapsed since it started;
  - no session (run/shell) has been alive for the idle time (counted from start).

Flags:
  --ttl DURATION    maximum lifetime (default 1h; env DISTROLESS_DEBUG_TTL)
  --idle DURATION   exit after this long without a session (default 15m;
                    env DISTROLESS_DEBUG_IDLE)
Durations: 90s, 15m, 1h, 1h30m; 0 disables that limit. Flags win over env.

Exit codes: 0 stopped as above; 1 the state directory cannot be used; 2 bad flags.
";

pub const RUN_HELP: &str = "\
Usage: distroless-debug-agent run [--] CMD [ARGS...]

Registers a session (so `hold` does not idle out and `stop` can end it), then executes
CMD in place of the agent: the exit code and signals are the command's own.

Exit codes: the command's own; 126 found but not executable; 127 not found; 2 no command.
";

pub const SHELL_HELP: &str = "\
Usage: distroless-debug-agent shell [--pid PID]

Registers a session and starts an interactive shell ($SHELL, else bash if present, else
/bin/sh) in /, with HOME=/tmp when HOME is unset or not writable, a PATH that includes the
toolkit directories, and a `dbg:` prompt. Prints one line about the target first.
Also works as the container's main process (attach mode).

Flags:
  --pid PID   the target process (default: env DISTROLESS_DEBUG_TARGET_PID, else PID 1,
              else, when PID 1 is the pod's pause process, the first process of another
              container)

Exit codes: the shell's own; 126/127 when no shell can be executed.
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
Usage: distroless-debug-agent info [--pid PID] [-o json|text]

Facts about the target process: pid, uid/gid/groups, exe, cmdline, runtime
(go|jvm|python|node|other), listening sockets of its network namespace, mounts,
environment variable names (never values), whether its root is readable.
Facts that cannot be read are null (text: '-') and the reason is listed under errors.

Flags:
  --pid PID        the target process (default: as for shell)
  -o, --output F   json or text (default text)

Exit codes: 0 facts printed (possibly partial); 1 no such process; 2 bad flags.
";

pub const TAR_HELP: &str = "\
Usage: distroless-debug-agent tar [--root DIR] [--exclude PATH]... PATH...

Writes a tar (ustar with PAX extensions) of PATHs to stdout. PATHs are resolved inside
DIR (default the target's root, /proc/1/root): symlinks in them are followed as the target
would follow them, and neither absolute symlinks nor `..` ever leave DIR. Directories are
archived recursively; symlinks inside them are archived as symlinks, never followed.
Entry names are the PATHs without the leading `/` (`/etc/app` -> `etc/app/...`); for `/`
the entries are its children. Keeps modes, mtimes, uid/gid numbers, symlinks and hard
links; skips sockets, devices and fifos with a note. Unreadable files are reported on
stderr and skipped; then a summary line follows on stderr.

Flags:
  --root DIR       resolve PATHs inside DIR
  --exclude PATH   leave out PATH (inside the root) and everything below it; repeatable

Env: DISTROLESS_DEBUG_NO_OPENAT2=1 forces the userspace resolver.

Exit codes: 0 archive written (warnings possible); 1 nothing could be archived or
stdout failed; 2 bad flags.
";

pub const UNTAR_HELP: &str = "\
Usage: distroless-debug-agent untar [--root DIR] DEST

Reads a tar from stdin and extracts it under DEST, an existing directory resolved inside
DIR (default the target's root, /proc/1/root). Refuses, naming the entry, any entry with
`..`, an absolute name, or a path through a symlink (also one the archive itself created);
stops at the first refusal, leaving the entries before it in place. Existing files are
replaced. Sets modes and mtimes; uid/gid only where permitted. Devices and fifos are
skipped with a note.

Env: DISTROLESS_DEBUG_NO_OPENAT2=1 forces the userspace resolver.

Exit codes: 0 extracted; 1 an entry was refused or could not be written; 2 bad flags.
";

pub const STAT_HELP: &str = "\
Usage: distroless-debug-agent stat [--root DIR] PATH...

Prints one JSON line per PATH, resolved inside DIR (default the target's root,
/proc/1/root) as `tar` resolves it (symlinks followed as the target would):
  {\"path\":\"/etc\",\"type\":\"directory\",\"mode\":493,\"uid\":0,\"gid\":0,\"size\":4096,
   \"readOnlyFs\":false}
or, when it cannot be resolved, {\"path\":\"/nope\",\"error\":\"No such file or directory\",
\"errno\":2}. `type` is file, directory, symlink, socket, fifo, char-device or block-device;
`readOnlyFs` says whether the filesystem holding it is mounted read-only.

Exit codes: 0 every PATH resolved; 1 some did not (their lines say why); 2 bad flags.
";
