//! `--toolkit auto`: the toolkit that fits the target's runtime; and hints when a tool needs a
//! capability the session's profile does not give.
//!
//! Which runtime the target is cannot be known from the API alone: a Go binary in
//! `distroless/static` looks like any other. So auto is settled in this order, cheapest first
//! (round trips are what a user waits for; the default session makes four):
//!
//! 1. **The pod spec** (+1 GET of the pod, before the session's own reads): an image named
//!    like a runtime (`java*`, `openjdk`, `eclipse-temurin`, `python*`, `node`, `nodejs*`,
//!    the distroless `java17`/`python3`/`nodejs22` images), a command that is `java`,
//!    `python*` or `node`, or `-jar` in the args decides at once.
//! 2. **A running debug container of ours on the target**: its agent's `info` decides (+1
//!    exec), and when the toolkit that fits is that container's, the session reuses it.
//! 3. **A probe**: the `base` container is added as any session adds it (PATCH, WATCH), its
//!    agent's `info` decides (+1 exec). An unrecognised runtime (`other`) keeps it: the
//!    session then reuses it (its reads and the exec): seven sequential round trips in all,
//!    against four. A recognised one stops the probe (GET, exec `stop`, watch) and the
//!    session adds the matching toolkit (about thirteen): the price of a second container is
//!    paid only when it brings the runtime's tools. docs/toolkits.md has the table.
//!
//! That is why full auto is not the built-in default: it costs at least one round trip more
//! than `base`. The default takes step 1 only, and for free ([`hinted`]): the session reads
//! the pod anyway, so a target whose image or command names its runtime gets that runtime's
//! toolkit within the four round trips, and any other gets `base`. A config file can make
//! full auto the default (`toolkit: auto`, see `config.rs`); `kubectl distroless-debug info`
//! shows the toolkit that fits without starting a session.

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use serde_json::Value;

use crate::base::error::Error;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::debug::{Obtained, running_debug_container};
use crate::session::info::{Read, read_facts, read_facts_or_stop};
use crate::session::options::DebugOptions;
use crate::session::profile::Profile;
use crate::session::spec::{State, debug_containers_in};
use crate::session::target::{fetch_pod, target_in};
use crate::session::teardown::Session;
use crate::toolkit::catalog::{ImageChoice, Toolkit};

/// The toolkit for a runtime the agent reports (`info`'s `runtime`): `other` and unknown
/// values get base.
pub fn toolkit_for_runtime(runtime: Option<&str>) -> Toolkit {
    match runtime {
        Some("go") => Toolkit::Go,
        Some("jvm") => Toolkit::Jvm,
        Some("python") => Toolkit::Python,
        Some("node") => Toolkit::Node,
        _ => Toolkit::Base,
    }
}

/// The default image (`ImageChoice::Hinted`) settled from the pod spec alone: the runtime
/// toolkit the target container's image or command gives away, else base. It needs nothing
/// but the pod the session has already read, so the default session keeps its four round
/// trips; `--toolkit auto` goes further (the agent's `info`) at the price of more.
pub fn hinted(image: &ImageChoice, container: &Container) -> Option<ImageChoice> {
    let ImageChoice::Hinted(catalog) = image else {
        return None;
    };
    Some(catalog.image(toolkit_from_spec(container).unwrap_or(Toolkit::Base)))
}

/// A runtime toolkit the container's image name or command gives away, if any.
pub fn toolkit_from_spec(container: &Container) -> Option<Toolkit> {
    let image = container.image.as_deref().unwrap_or_default();
    // The repository's last path component, without tag or digest.
    let without_digest = image.split('@').next().unwrap_or_default();
    let last = without_digest.rsplit('/').next().unwrap_or_default();
    let repository = last
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let by_image = if [
        "java",
        "openjdk",
        "eclipse-temurin",
        "amazoncorretto",
        "azul-zulu",
    ]
    .iter()
    .any(|p| repository.starts_with(p))
    {
        Some(Toolkit::Jvm)
    } else if repository.starts_with("python") || repository.starts_with("pypy") {
        Some(Toolkit::Python)
    } else if repository == "node" || repository.starts_with("nodejs") {
        Some(Toolkit::Node)
    } else {
        None
    };
    let program = container
        .command
        .iter()
        .flatten()
        .next()
        .map(|c| c.rsplit('/').next().unwrap_or_default().to_string());
    let by_command = match program.as_deref() {
        Some("java") => Some(Toolkit::Jvm),
        Some(p) if p.starts_with("python") || p.starts_with("pypy") => Some(Toolkit::Python),
        Some("node" | "nodejs") => Some(Toolkit::Node),
        _ => None,
    };
    // Only args (the image's entrypoint is kept): `-jar app.jar` is a JVM's.
    let by_args = container
        .args
        .iter()
        .flatten()
        .any(|a| a == "-jar")
        .then_some(Toolkit::Jvm);
    by_command.or(by_args).or(by_image)
}

/// What settling `--toolkit auto` left for the session.
// One value per run, moved once.
#[allow(clippy::large_enum_variant)]
pub enum Settled {
    Ready(DebugOptions),
    /// A signal arrived while the probe was starting; it was stopped again.
    Interrupted(i32),
}

/// The session's options with `--toolkit auto` replaced by the toolkit that fits the target
/// (see the module docs for the order and its cost). Other options pass through untouched.
pub async fn settle(
    options: &DebugOptions,
    cluster: &Cluster,
    printer: &Printer,
) -> Result<Settled, Error> {
    let ImageChoice::Auto(catalog) = &options.image else {
        return Ok(Settled::Ready(options.clone()));
    };
    let with = |toolkit: Toolkit| DebugOptions {
        image: catalog.image(toolkit),
        ..options.clone()
    };
    // A dry run sends nothing, so it cannot ask the agent: the spec decides, else base.
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let pod = fetch_pod(cluster, &pods, &cluster.namespace, &options.target).await?;
    let target = target_in(pod, options.container.as_deref())?;
    let spec_container = target
        .pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .find(|c| c.name == target.container);
    if let Some(toolkit) = spec_container.and_then(toolkit_from_spec) {
        printer.note(&format!(
            "--toolkit auto: container {}'s image or command is {}: using {}",
            target.container,
            runtime_name(toolkit),
            toolkit.name()
        ));
        return Ok(Settled::Ready(with(toolkit)));
    }
    if options.dry_run.is_some() {
        printer.note(&format!(
            "--toolkit auto: a dry run does not start the agent that reads the runtime of container {}; showing base",
            target.container
        ));
        return Ok(Settled::Ready(with(Toolkit::Base)));
    }

    let mut interrupts = Interrupts::install().map_err(|source| Error::Terminal { source })?;
    let running = debug_containers_in(&target.pod)
        .into_iter()
        .find(|c| c.state == State::Running && c.target == target.container && c.has_agent);
    if let Some(existing) = running {
        let facts = match read_facts(&pods, &existing.pod, &existing.name, &mut interrupts).await? {
            Read::Facts(facts) => facts,
            Read::Interrupted(signal) => return Ok(Settled::Interrupted(signal)),
        };
        let toolkit = toolkit_for_runtime(facts.get("runtime").and_then(Value::as_str));
        say_picked(printer, &target.container, &facts, toolkit, &existing.name);
        return Ok(Settled::Ready(with(toolkit)));
    }

    // The probe: base, added (or reused) exactly as a session adds it.
    let probe = DebugOptions {
        reuse: true,
        ..with(Toolkit::Base)
    };
    let (_, obtained) = running_debug_container(&probe, cluster, &mut interrupts, printer).await?;
    let (mut session, reused) = match obtained {
        Obtained::Ready { session, reused } => (session, reused),
        Obtained::Interrupted(signal) => return Ok(Settled::Interrupted(signal)),
    };
    let facts = match read_facts_or_stop(&pods, &mut session, &mut interrupts, printer).await? {
        Read::Facts(facts) => facts,
        Read::Interrupted(signal) => return Ok(Settled::Interrupted(signal)),
    };
    let toolkit = toolkit_for_runtime(facts.get("runtime").and_then(Value::as_str));
    say_picked(
        printer,
        &target.container,
        &facts,
        toolkit,
        &session.container,
    );
    if toolkit == Toolkit::Base {
        // The session continues in this very container (it finds and reuses it), and its
        // teardown is the one that stops it: this value must not stop it when dropped.
        hand_over(session);
        return Ok(Settled::Ready(DebugOptions {
            reuse: true,
            ..with(toolkit)
        }));
    }
    if reused {
        // Someone else's base container, found running: theirs to stop, not ours.
        hand_over(session);
    } else {
        session.teardown(printer, false).await;
    }
    Ok(Settled::Ready(with(toolkit)))
}

/// Leaves the running container to whoever owns it next: a [`Session`] stops its container
/// when dropped, and here the session that follows (which reuses it) or the other session
/// that was already using it is the one to stop it.
fn hand_over(session: Session) {
    std::mem::forget(session);
}

fn runtime_name(toolkit: Toolkit) -> &'static str {
    match toolkit {
        Toolkit::Jvm => "a JVM",
        Toolkit::Python => "Python",
        Toolkit::Node => "Node.js",
        Toolkit::Go => "a Go binary",
        Toolkit::Base | Toolkit::Net | Toolkit::Full => "not a runtime we have tools for",
    }
}

fn say_picked(
    printer: &Printer,
    container: &str,
    facts: &serde_json::Map<String, Value>,
    toolkit: Toolkit,
    read_in: &str,
) {
    let exe = facts.get("exe").and_then(Value::as_str).unwrap_or("?");
    let runtime = facts.get("runtime").and_then(Value::as_str).unwrap_or("?");
    printer.note(&format!(
        "--toolkit auto: container {container} runs {exe} (runtime {runtime}, read in {read_in}): using {}",
        toolkit.name()
    ));
}

/// Tools that need a capability: which one, and the profile that has it.
struct Need {
    tool: &'static str,
    why: &'static str,
    profile: Profile,
}

/// When `argv` exited `code` (not 0) under `profile`: the hint for the first tool in it that
/// needs more than the profile gives. Added capabilities only count for root (`profile.rs`):
/// a non-root process keeps none, since containerd sets no ambient capabilities. `timeout`
/// ending a tool (124) means it ran until the limit, so it had what it needed.
pub fn capability_hint(argv: &[String], profile: Profile, code: i32) -> Option<String> {
    if code == 0 || (code == 124 && argv.first().is_some_and(|a| a.ends_with("timeout"))) {
        return None;
    }
    let words = command_words(argv);
    let has = |flag: &str| {
        words
            .iter()
            .any(|w| w == flag || w.starts_with(&format!("{flag}=")))
    };
    let attaches = has("-p")
        || has("--pid")
        || words.iter().any(|w| {
            w == "attach"
                || w.strip_prefix("-p")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    let needs = words.iter().find_map(|word| {
        let name = word.rsplit('/').next().unwrap_or_default();
        match name {
            "tcpdump" | "tshark" | "dumpcap" => Some(Need {
                tool: "tcpdump",
                why: "captures packets with CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode)",
                profile: Profile::Netadmin,
            }),
            "strace" | "ltrace" | "gdb" | "py-spy" | "dlv" if attaches => Some(Need {
                tool: match name {
                    "strace" => "strace",
                    "ltrace" => "ltrace",
                    "gdb" => "gdb",
                    "py-spy" => "py-spy",
                    _ => "dlv",
                },
                why: "attaches with ptrace(2): the same uid is not enough where the node's kernel.yama.ptrace_scope is 1 or more (most distributions), which needs CAP_SYS_PTRACE",
                profile: Profile::Ptrace,
            }),
            _ => None,
        }
    })?;
    let enough = match needs.profile {
        Profile::Netadmin => matches!(profile, Profile::Netadmin | Profile::Sysadmin),
        _ => matches!(profile, Profile::Ptrace | Profile::Sysadmin),
    };
    (!enough).then(|| {
        format!(
            "{} {}; the {profile} profile does not give it. Try `--profile {}` (it runs as root with only that added; the namespace must allow privileged, see docs/toolkits.md)",
            needs.tool, needs.why, needs.profile
        )
    })
}

/// The words of a command line, and of the script of `sh -c SCRIPT` / `bash -c SCRIPT`.
fn command_words(argv: &[String]) -> Vec<String> {
    let mut words: Vec<String> = argv.to_vec();
    if let [shell, flag, script, ..] = argv
        && matches!(shell.rsplit('/').next(), Some("sh" | "bash" | "ash"))
        && flag == "-c"
    {
        words.extend(
            script
                .split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(' | ')'))
                .filter(|w| !w.is_empty())
                .map(String::from),
        );
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, command: &[&str]) -> Container {
        Container {
            name: "app".into(),
            image: Some(image.into()),
            command: (!command.is_empty()).then(|| command.iter().map(|c| c.to_string()).collect()),
            ..Container::default()
        }
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_default_takes_the_runtime_the_spec_names_and_base_otherwise() {
        let catalog = crate::toolkit::catalog::Catalog::default();
        let default = ImageChoice::Hinted(catalog.clone());
        let java = container("eclipse-temurin:21-jre", &[]);
        assert_eq!(hinted(&default, &java), Some(catalog.image(Toolkit::Jvm)));
        let app = container("sandbox.local/distroless-app:nonroot", &[]);
        assert_eq!(hinted(&default, &app), Some(catalog.image(Toolkit::Base)));
        // A toolkit the user (or the config file) chose is never second-guessed.
        let chosen = catalog.image(Toolkit::Full);
        assert_eq!(hinted(&chosen, &java), None);
        assert_eq!(hinted(&ImageChoice::Custom("busybox".into()), &java), None);
    }

    #[test]
    fn the_runtime_the_agent_reports_picks_the_toolkit() {
        assert_eq!(toolkit_for_runtime(Some("go")), Toolkit::Go);
        assert_eq!(toolkit_for_runtime(Some("jvm")), Toolkit::Jvm);
        assert_eq!(toolkit_for_runtime(Some("python")), Toolkit::Python);
        assert_eq!(toolkit_for_runtime(Some("node")), Toolkit::Node);
        assert_eq!(toolkit_for_runtime(Some("other")), Toolkit::Base);
        assert_eq!(toolkit_for_runtime(None), Toolkit::Base);
    }

    #[test]
    fn image_names_and_commands_that_give_the_runtime_away() {
        let cases = [
            (
                "gcr.io/distroless/java17-debian12:nonroot",
                &[][..],
                Some(Toolkit::Jvm),
            ),
            ("eclipse-temurin:21-jre", &[], Some(Toolkit::Jvm)),
            (
                "gcr.io/distroless/python3-debian12",
                &[],
                Some(Toolkit::Python),
            ),
            ("node:22-slim", &[], Some(Toolkit::Node)),
            (
                "gcr.io/distroless/nodejs22-debian12@sha256:ab",
                &[],
                Some(Toolkit::Node),
            ),
            (
                "registry:5000/acme/api:1.2",
                &["/usr/bin/java", "-jar"],
                Some(Toolkit::Jvm),
            ),
            (
                "registry:5000/acme/api:1.2",
                &["python3.12"],
                Some(Toolkit::Python),
            ),
            (
                "registry:5000/acme/api:1.2",
                &["/nodejs/bin/node"],
                Some(Toolkit::Node),
            ),
            // Go binaries look like anything else: only the agent can tell.
            ("gcr.io/distroless/static-debian12", &["/app/server"], None),
            ("prom/node-exporter:v1.8", &[], None),
            ("sandbox.local/distroless-app:nonroot", &[], None),
        ];
        for (image, command, expected) in cases {
            assert_eq!(
                toolkit_from_spec(&container(image, command)),
                expected,
                "{image} {command:?}"
            );
        }
    }

    mod settling {
        use std::time::Duration;

        use http::{Method, StatusCode};

        use super::super::*;
        use crate::kube::fake_apiserver::{FakeApiServer, Reply};
        use crate::session::options::{DryRun, Mode};
        use crate::session::target::{TargetKind, TargetRef};
        use crate::toolkit::catalog::Catalog;

        const POD: &str = "/api/v1/namespaces/default/pods/web";

        fn cluster(fake: &FakeApiServer) -> Cluster {
            Cluster {
                client: fake.client(),
                namespace: "default".into(),
                kubeconfig_user: "u".into(),
                request_timeout: Some(Duration::from_secs(5)),
            }
        }

        fn auto(dry_run: Option<DryRun>) -> DebugOptions {
            DebugOptions {
                target: TargetRef {
                    kind: TargetKind::Pod,
                    name: "web".into(),
                },
                container: None,
                image: ImageChoice::Auto(Catalog::default()),
                profile: Profile::Auto,
                timeout: Duration::from_secs(5),
                ttl: Duration::from_secs(3600),
                idle: Duration::from_secs(900),
                reason: None,
                reuse: true,
                mode: Mode::Command {
                    argv: vec!["true".into()],
                    stdin: false,
                    tty: false,
                },
                dry_run,
                format: None,
                mirror_volumes: false,
                copy_env: false,
            }
        }

        fn pod_with_image(image: &str) -> serde_json::Value {
            let mut pod = crate::session::target::tests::running_pod("web", &["app"]);
            if let Some(spec) = pod.spec.as_mut() {
                spec.containers[0].image = Some(image.into());
            }
            serde_json::to_value(pod).unwrap_or_default()
        }

        async fn settled(fake: &FakeApiServer, options: &DebugOptions) -> DebugOptions {
            match settle(options, &cluster(fake), &Printer::plain()).await {
                Ok(Settled::Ready(options)) => options,
                Ok(Settled::Interrupted(_)) => panic!("interrupted"),
                Err(e) => panic!("{e}"),
            }
        }

        #[tokio::test]
        async fn a_jvm_image_decides_with_one_get_and_nothing_written() {
            let fake = FakeApiServer::default();
            fake.route(
                Method::GET,
                POD,
                Some(false),
                Reply::Json(StatusCode::OK, pod_with_image("eclipse-temurin:21-jre")),
            );
            let options = settled(&fake, &auto(None)).await;
            assert_eq!(
                options.image,
                Catalog::default().image(Toolkit::Jvm),
                "the jvm toolkit"
            );
            let lines: Vec<String> = fake.log().iter().map(|s| s.line()).collect();
            assert_eq!(lines, [format!("GET {POD}")]);
        }

        #[tokio::test]
        async fn a_dry_run_of_an_unrecognised_target_shows_base_without_a_probe() {
            let fake = FakeApiServer::default();
            fake.route(
                Method::GET,
                POD,
                Some(false),
                Reply::Json(StatusCode::OK, pod_with_image("gcr.io/distroless/static")),
            );
            let options = settled(&fake, &auto(Some(DryRun::Client))).await;
            assert_eq!(options.image, Catalog::default().image(Toolkit::Base));
            assert!(
                fake.log().iter().all(|s| s.method == Method::GET),
                "nothing written"
            );
        }

        #[tokio::test]
        async fn other_choices_pass_through_without_a_request() {
            let fake = FakeApiServer::default();
            let mut options = auto(None);
            options.image = Catalog::default().image(Toolkit::Net);
            assert_eq!(settled(&fake, &options).await, options);
            assert!(fake.log().is_empty());
        }
    }

    #[test]
    fn a_jar_in_the_args_is_a_jvm() {
        let mut c = container("registry:5000/acme/api:1.2", &[]);
        c.args = Some(vec!["-jar".into(), "/app/app.jar".into()]);
        assert_eq!(toolkit_from_spec(&c), Some(Toolkit::Jvm));
    }

    #[test]
    fn tcpdump_without_net_raw_suggests_netadmin() {
        let hint = capability_hint(&argv(&["tcpdump", "-i", "lo"]), Profile::Auto, 1);
        assert!(
            hint.as_deref()
                .is_some_and(|h| h.contains("--profile netadmin") && h.contains("CAP_NET_RAW")),
            "{hint:?}"
        );
        assert!(capability_hint(&argv(&["tcpdump", "-i", "lo"]), Profile::Ptrace, 1).is_some());
        assert_eq!(
            capability_hint(&argv(&["tcpdump", "-i", "lo"]), Profile::Netadmin, 1),
            None
        );
        assert_eq!(
            capability_hint(&argv(&["tcpdump", "-i", "lo"]), Profile::Sysadmin, 1),
            None
        );
    }

    #[test]
    fn attaching_a_tracer_suggests_ptrace_and_tracing_a_child_does_not() {
        for words in [
            &["strace", "-p", "1"][..],
            &["timeout", "3", "strace", "-f", "-p1"][..],
            &["gdb", "-p", "1", "-batch"][..],
            &["py-spy", "dump", "--pid", "1"][..],
            &["sh", "-c", "timeout 3 ltrace -p 1; echo done"][..],
        ] {
            let hint = capability_hint(&argv(words), Profile::Auto, 1);
            assert!(
                hint.as_deref()
                    .is_some_and(|h| h.contains("--profile ptrace")),
                "{words:?}: {hint:?}"
            );
        }
        assert_eq!(
            capability_hint(&argv(&["strace", "ls"]), Profile::Auto, 1),
            None
        );
        assert_eq!(
            capability_hint(&argv(&["strace", "-p", "1"]), Profile::Ptrace, 1),
            None
        );
        assert_eq!(
            capability_hint(&argv(&["ls", "-p"]), Profile::Auto, 1),
            None
        );
        // It worked until `timeout` ended it; and success needs no hint.
        let traced = argv(&["timeout", "3", "strace", "-p", "1"]);
        assert_eq!(capability_hint(&traced, Profile::Auto, 124), None);
        assert_eq!(capability_hint(&traced, Profile::Auto, 0), None);
    }
}
