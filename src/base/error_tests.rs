//! Messages and hints of the errors we recognise, and how a higher layer's failure travels.

use super::*;

fn api_error(code: u16, message: &str) -> kube::Error {
    kube::Error::Api(Box::new(
        kube::core::Status::failure(message, "Forbidden").with_code(code),
    ))
}

#[test]
fn an_unreadable_kubeconfig_says_how_to_point_at_another() {
    let e = Error::Kubeconfig {
        path: Some("/nonexistent".into()),
        source: "No such file or directory (os error 2)".into(),
    };
    assert_eq!(e.to_string(), "could not load the kubeconfig /nonexistent");
    let hint = e.hint().unwrap_or_default();
    assert!(
        hint.contains("--kubeconfig PATH or set KUBECONFIG"),
        "{hint}"
    );
}

#[test]
fn a_missing_container_names_the_others_and_suggests_one() {
    let e = Error::ContainerNotFound {
        pod: "web".into(),
        container: "nginx".into(),
        containers: vec!["app".into(), "proxy".into()],
    };
    assert_eq!(
        e.to_string(),
        "pod web has no container \"nginx\"; its containers are: app, proxy"
    );
    assert_eq!(
        e.hint().as_deref(),
        Some("pass `-c` with one of them, e.g. `-c app`")
    );
    assert_eq!(e.exit_status(), ExitStatus::Failure);
}

#[test]
fn forbidden_names_the_permission_and_gives_a_role() {
    let e = Error::Forbidden {
        namespace: "prod".into(),
        pod: "web".into(),
        step: "add a debug container",
        missing: vec![PATCH_EPHEMERAL],
        source: api_error(403, "forbidden"),
    };
    assert!(
        e.to_string()
            .contains("missing `patch pods/ephemeralcontainers`"),
        "{e}"
    );
    let hint = e.hint().unwrap_or_default();
    assert!(
        hint.contains("kubectl auth can-i patch pods/ephemeralcontainers -n prod"),
        "{hint}"
    );
    assert!(
        hint.contains("resources: [\"pods/ephemeralcontainers\"]\n    verbs: [\"patch\"]"),
        "{hint}"
    );
    assert!(hint.contains("namespace: prod"), "{hint}");
}

#[test]
fn image_pull_failures_point_at_the_registry_and_image() {
    let e = Error::StartFailed {
        pod: "web".into(),
        container: "dbg-abcde".into(),
        image: "nope:1".into(),
        reason: "ImagePullBackOff".into(),
        message: "Back-off pulling image \"nope:1\"".into(),
    };
    assert!(
        e.to_string()
            .contains("ImagePullBackOff: Back-off pulling image"),
        "{e}"
    );
    assert!(e.hint().unwrap_or_default().contains("--image"));
}

/// A failure a higher layer owns, as `Error::Step` carries it.
#[derive(Debug, thiserror::Error)]
#[error("the step above failed")]
struct Above {
    #[source]
    source: std::io::Error,
}

impl Failure for Above {
    fn hint(&self) -> Option<String> {
        Some("do this instead".into())
    }

    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

#[test]
fn a_higher_layers_failure_keeps_its_message_sources_hint_and_exit_status() {
    let e = Error::from(Above {
        source: std::io::Error::other("the disk is full"),
    });
    assert_eq!(e.to_string(), "the step above failed");
    assert_eq!(
        std::error::Error::source(&e).map(|s| s.to_string()),
        Some("the disk is full".to_string())
    );
    assert_eq!(e.hint().as_deref(), Some("do this instead"));
    assert_eq!(e.exit_status(), ExitStatus::Usage);
    assert!(e.step::<Above>().is_some());
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        Error::Usage(UsageError("x".into())).exit_status(),
        ExitStatus::Usage
    );
}

#[test]
fn status_codes_of_api_and_upgrade_errors() {
    assert_eq!(status_code(&api_error(404, "not found")), Some(404));
    let upgrade = kube::Error::UpgradeConnection(
        kube::client::UpgradeConnectionError::ProtocolSwitch(http::StatusCode::FORBIDDEN),
    );
    assert_eq!(status_code(&upgrade), Some(403));
}
