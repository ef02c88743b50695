//! `--toolkit auto`: the toolkit that fits the target's runtime, settled against the live
//! target before the session starts (the pure rules are `toolkit/runtime.rs`).
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
//! full auto the default (`toolkit: auto`, see `toolkit/config.rs`); `kubectl distroless-debug info`
//! shows the toolkit that fits without starting a session.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::Value;

use crate::base::error::Error;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::kube::exec::Remote;
use crate::output::printer::Printer;
use crate::session::facts::{Read, read_facts, read_facts_or_stop};
use crate::session::handshake;
use crate::session::obtain::{Obtained, running_debug_container};
use crate::session::options::DebugOptions;
use crate::session::reuse_cache::ReuseCache;
use crate::session::spec::{State, TargetProcess, debug_containers_in};
use crate::session::target::{fetch_pod, target_in};
use crate::session::teardown::Session;
use crate::toolkit::catalog::{ImageChoice, Toolkit};
use crate::toolkit::runtime::{toolkit_for_runtime, toolkit_from_spec};

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
    let spec_container = target.spec();
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
        let remote = Remote {
            pods: &pods,
            pod: &existing.pod,
            container: &existing.name,
            tap: None,
        };
        let process = TargetProcess::of(&target, options.target_pid);
        let facts = match read_facts(&remote, &process, &mut interrupts).await? {
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
    let (plan, obtained) =
        running_debug_container(&probe, cluster, &mut interrupts, printer).await?;
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
        // teardown is the one that stops it: this value must not stop it when dropped. The
        // cache names it, so the session's command goes to it at once (handshake.rs), rather
        // than a container presumed from an older pod (presume.rs).
        let cache = ReuseCache::from_env();
        handshake::remember(
            &cache,
            handshake::key_of(&probe, cluster).as_ref(),
            &probe,
            &plan,
            &session,
        );
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{Method, StatusCode};

    use super::*;
    use crate::kube::fake_apiserver::{FakeApiServer, Reply};
    use crate::session::options::{DryRun, Mode};
    use crate::session::profile::Profile;
    use crate::session::target::{TargetKind, TargetRef};
    use crate::toolkit::catalog::Catalog;

    const POD: &str = "/api/v1/namespaces/default/pods/web";

    fn cluster(fake: &FakeApiServer) -> Cluster {
        Cluster {
            request_timeout: Some(Duration::from_secs(5)),
            ..fake.cluster()
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
            record: crate::output::recording::RecordOptions::off(),
            target_pid: None,
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
