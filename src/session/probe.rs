//! The last source of the target's identity: asking the agent.
//!
//! The debug container must run as the target's uid and gid to read `/proc/<pid>/root`
//! (identity.rs says why). When neither securityContext sets them and the kubelet does not
//! report `status.containerStatuses[].user` (every kubelet before 1.33, and later ones with
//! the SupplementalGroupsPolicy gate off), the API cannot say which user the image's `USER`
//! line resolves to. The session then adds its container as its image's user, and once it
//! runs the agent reads the target's ids from `/proc/<pid>/status`, which any user may read
//! (`info -o json`: `uid`, `gid`, `root_readable`). Then:
//!
//! - `/target` is readable: the container is kept (one exec more than a session whose
//!   identity the API gave: five round trips before the shell instead of four);
//! - it is not, and a container with the ids read is one the profile and the namespace's
//!   Pod Security level allow: the probe is stopped and that container added in its place
//!   (its stop, the PATCH and the WATCH: eight or nine round trips in all);
//! - it is not, and no allowed container could read it: the probe is kept and the warning
//!   says what would.
//!
//! Only the profiles that follow the target's identity (`auto`, `baseline`, `restricted`)
//! probe, only with an image that has our agent, and never in a dry run.

use std::time::Instant;

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod, PodSecurityContext, SecurityContext};
use kube::Api;
use serde_json::{Map, Value};

use crate::base::error::Error;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::add::{Added, add_and_wait};
use crate::session::facts::{Read, read_facts_or_stop};
use crate::session::identity::{Identity, Source};
use crate::session::options::DebugOptions;
use crate::session::plan::{Durations, Plan};
use crate::session::profile::{NONROOT_ID, Profile, PsaLevel, security_context_for, violations};
use crate::session::spec::{random_suffix, unused_suffix};
use crate::session::teardown::Session;

/// What the agent read about the target process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub uid: Option<i64>,
    pub gid: Option<i64>,
    pub root_readable: bool,
}

impl Reading {
    pub fn from_facts(facts: &Map<String, Value>) -> Reading {
        Reading {
            uid: facts.get("uid").and_then(Value::as_i64),
            gid: facts.get("gid").and_then(Value::as_i64),
            root_readable: facts
                .get("root_readable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

/// What to do with the probe container, decided from the reading alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It reads `/target`: keep it.
    Keep(Identity),
    /// It cannot, and a container running as the target can and is allowed: replace it.
    Replace(Identity, Box<SecurityContext>),
    /// It cannot, and no container this session may add could: keep it, with this warning.
    Unreadable(Identity, String),
}

/// The verdict for a probe of `container` running with `current`, given what the agent read.
pub fn verdict(
    profile: Profile,
    known: &Identity,
    reading: Reading,
    current: Option<&SecurityContext>,
    enforced: Option<PsaLevel>,
    pod_sc: Option<&PodSecurityContext>,
    container: &str,
) -> Verdict {
    let read =
        |id: Option<i64>, known: Option<(i64, Source)>| id.map(|id| (id, Source::Agent)).or(known);
    let identity = Identity {
        uid: read(reading.uid, known.uid),
        gid: read(reading.gid, known.gid),
        capabilities: known.capabilities.clone(),
    };
    if reading.root_readable {
        return Verdict::Keep(identity);
    }
    let (Some(uid), Some(_)) = (identity.uid(), identity.gid()) else {
        return Verdict::Unreadable(
            identity,
            format!(
                "the agent could not read which uid/gid container {container} runs as, and the debug container cannot read /target: `--profile ptrace` can, where the namespace allows"
            ),
        );
    };
    let wanted = security_context_for(profile, &identity);
    if current == Some(&wanted) {
        let why = if profile == Profile::Restricted && uid == 0 {
            format!(
                "container {container} runs as root and the restricted profile runs as {NONROOT_ID}, so /target is not readable: `--profile auto` runs as root"
            )
        } else {
            format!(
                "the debug container runs as {identity} like container {container} and still cannot read /target (is the target process non-dumpable?): `--profile ptrace` can, where the namespace allows"
            )
        };
        return Verdict::Unreadable(identity, why);
    }
    if let Some(level) = enforced {
        let refused = violations(level, &wanted, pod_sc);
        if !refused.is_empty() {
            return Verdict::Unreadable(
                identity.clone(),
                format!(
                    "container {container} runs as {identity}; a debug container as {identity} breaks the namespace's `{}` Pod Security level ({}), so this one stays as its image's user and /target is not readable",
                    level,
                    refused.join("; ")
                ),
            );
        }
    }
    Verdict::Replace(identity, Box::new(wanted))
}

/// How the probe ended.
// One value per run, moved once.
#[allow(clippy::large_enum_variant)]
pub enum Probed {
    Ready(Session),
    Interrupted(i32),
}

/// Steps 5½: the agent reads the target's ids in the freshly added `session`; keep it or
/// replace it (see the module docs).
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    plan: &Plan,
    mut session: Session,
    interrupts: &mut Interrupts,
    printer: &Printer,
    durations: &mut Durations,
) -> Result<Probed, Error> {
    let clock = Instant::now();
    let target = &plan.target.container;
    let facts = match read_facts_or_stop(pods, &mut session, interrupts, printer).await? {
        Read::Facts(facts) => facts,
        Read::Interrupted(signal) => return Ok(Probed::Interrupted(signal)),
    };
    durations.probe = clock.elapsed().as_millis();
    let pod_sc = plan
        .target
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref());
    let verdict = verdict(
        options.profile,
        &plan.identity,
        Reading::from_facts(&facts),
        plan.container.security_context.as_ref(),
        plan.enforced,
        pod_sc,
        target,
    );
    let (identity, security_context) = match verdict {
        Verdict::Keep(identity) => {
            printer.progress(&format!(
                "container {target} runs as {identity} (read by the agent); {} can read /target",
                session.container
            ));
            return Ok(Probed::Ready(session));
        }
        Verdict::Unreadable(_, why) => {
            printer.warn(&why);
            return Ok(Probed::Ready(session));
        }
        Verdict::Replace(identity, security_context) => (identity, *security_context),
    };
    let replacement = replacement(
        &plan.container,
        &plan.target.pod,
        &session.container,
        security_context,
    );
    printer.note(&format!(
        "container {target} runs as {identity} (read by the agent in {}, which cannot read /target as its image's user): replacing it with {} running as {identity}",
        session.container, replacement.name
    ));
    session.stop_only(printer).await;
    match add_and_wait(
        options,
        cluster,
        pods,
        plan,
        &replacement,
        interrupts,
        printer,
        durations,
    )
    .await?
    {
        Added::Ready(session) => Ok(Probed::Ready(session)),
        Added::Interrupted(signal) => Ok(Probed::Interrupted(signal)),
    }
}

/// The planned container again, under a name unused in the pod and unlike the probe's (whose
/// entry stays in the pod spec), running as the target.
fn replacement(
    planned: &EphemeralContainer,
    pod: &Pod,
    probe: &str,
    security_context: SecurityContext,
) -> EphemeralContainer {
    let suffix = unused_suffix(pod, || {
        loop {
            let suffix = random_suffix();
            if format!("dbg-{suffix}") != probe {
                break suffix;
            }
        }
    });
    EphemeralContainer {
        name: format!("dbg-{suffix}"),
        security_context: Some(security_context),
        ..planned.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::identity::Source;
    use crate::session::plan::needed;

    fn unknown() -> Identity {
        Identity::default()
    }

    fn reading(uid: i64, gid: i64, root_readable: bool) -> Reading {
        Reading {
            uid: Some(uid),
            gid: Some(gid),
            root_readable,
        }
    }

    fn image_user(profile: Profile) -> SecurityContext {
        security_context_for(profile, &unknown())
    }

    fn decide(profile: Profile, reading: Reading, enforced: Option<PsaLevel>) -> Verdict {
        verdict(
            profile,
            &unknown(),
            reading,
            Some(&image_user(profile)),
            enforced,
            None,
            "app",
        )
    }

    #[test]
    fn a_probe_that_reads_the_target_is_kept_with_the_ids_the_agent_read() {
        let Verdict::Keep(identity) = decide(Profile::Auto, reading(65532, 65532, true), None)
        else {
            panic!("kept");
        };
        assert_eq!(identity.uid, Some((65532, Source::Agent)));
        assert_eq!(identity.gid, Some((65532, Source::Agent)));
    }

    #[test]
    fn a_root_target_gets_a_root_container_where_the_namespace_allows() {
        for enforced in [None, Some(PsaLevel::Baseline), Some(PsaLevel::Privileged)] {
            let Verdict::Replace(identity, sc) =
                decide(Profile::Auto, reading(0, 0, false), enforced)
            else {
                panic!("replaced under {enforced:?}");
            };
            assert_eq!(identity.to_string(), "0:0");
            assert_eq!((sc.run_as_user, sc.run_as_group), (Some(0), Some(0)));
            assert_eq!(sc.run_as_non_root, None);
            assert_eq!(sc.allow_privilege_escalation, Some(false));
        }
    }

    #[test]
    fn another_non_root_user_is_matched_uid_and_gid() {
        let Verdict::Replace(_, sc) = decide(
            Profile::Auto,
            reading(1234, 5678, false),
            Some(PsaLevel::Restricted),
        ) else {
            panic!("replaced");
        };
        assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1234), Some(5678)));
        assert_eq!(sc.run_as_non_root, Some(true));
    }

    #[test]
    fn a_root_target_in_a_restricted_namespace_keeps_the_probe_and_says_why() {
        let Verdict::Unreadable(_, why) = decide(
            Profile::Auto,
            reading(0, 0, false),
            Some(PsaLevel::Restricted),
        ) else {
            panic!("kept unreadable");
        };
        assert!(why.contains("container app runs as 0:0"), "{why}");
        assert!(why.contains("`restricted` Pod Security level"), "{why}");
    }

    #[test]
    fn the_restricted_profile_never_becomes_root() {
        let Verdict::Unreadable(_, why) = decide(Profile::Restricted, reading(0, 0, false), None)
        else {
            panic!("kept unreadable");
        };
        assert!(why.contains("`--profile auto` runs as root"), "{why}");
    }

    #[test]
    fn ids_the_agent_could_not_read_keep_the_probe() {
        let reading = Reading {
            uid: None,
            gid: None,
            root_readable: false,
        };
        assert!(matches!(
            decide(Profile::Auto, reading, None),
            Verdict::Unreadable(..)
        ));
    }

    #[test]
    fn a_uid_the_spec_gave_is_kept_beside_the_gid_the_agent_read() {
        let known = Identity {
            uid: Some((1234, Source::ContainerSecurityContext)),
            ..Identity::default()
        };
        let current = security_context_for(Profile::Auto, &known);
        let reading = Reading {
            uid: None,
            gid: Some(42),
            root_readable: false,
        };
        let Verdict::Replace(identity, sc) = verdict(
            Profile::Auto,
            &known,
            reading,
            Some(&current),
            None,
            None,
            "app",
        ) else {
            panic!("replaced");
        };
        assert_eq!(identity.uid, Some((1234, Source::ContainerSecurityContext)));
        assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1234), Some(42)));
    }

    #[test]
    fn only_sessions_that_follow_the_target_and_have_an_agent_probe() {
        use crate::toolkit::catalog::{ImageChoice, Toolkit};
        let mut options = crate::session::debug::tests::options(Profile::Auto, true);
        assert!(needed(&options, &unknown()));
        assert!(!needed(&options, &Identity::known(1, 1)));
        options.profile = Profile::Ptrace;
        assert!(!needed(&options, &unknown()));
        options.profile = Profile::Baseline;
        options.image = ImageChoice::Custom("busybox".into());
        assert!(!needed(&options, &unknown()));
        options.image = ImageChoice::Toolkit {
            toolkit: Toolkit::Base,
            registry: None,
        };
        options.dry_run = Some(crate::session::options::DryRun::Client);
        assert!(!needed(&options, &unknown()));
    }

    #[test]
    fn the_replacement_is_the_planned_container_under_a_new_name() {
        let planned = EphemeralContainer {
            name: "dbg-aaaaa".into(),
            image: Some("img".into()),
            ..EphemeralContainer::default()
        };
        let sc = security_context_for(Profile::Auto, &Identity::known(0, 0));
        let pod = crate::session::target::tests::running_pod("web", &["app"]);
        let new = replacement(&planned, &pod, "dbg-aaaaa", sc.clone());
        assert_ne!(new.name, "dbg-aaaaa");
        assert!(new.name.starts_with("dbg-"));
        assert_eq!(new.image, planned.image);
        assert_eq!(new.security_context, Some(sc));
    }
}
