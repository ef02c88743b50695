//! When the wait for a copy is over, and how it failed, from pod statuses alone.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, PodStatus,
};

use super::*;
use crate::base::error::Failure;

fn status(name: &str, state: ContainerState) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        image: format!("{name}:1"),
        state: Some(state),
        ..ContainerStatus::default()
    }
}

fn running() -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning::default()),
        ..ContainerState::default()
    }
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: Some(message.into()),
        }),
        ..ContainerState::default()
    }
}

fn terminated(code: i32) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: code,
            reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

fn pod(phase: &str, init: Vec<ContainerStatus>, regular: Vec<ContainerStatus>) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("web-dbg-x1y2z".into()),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            init_container_statuses: Some(init),
            container_statuses: Some(regular),
            ..PodStatus::default()
        }),
    }
}

#[test]
fn ready_when_installed_and_both_run() {
    let ready = pod(
        "Running",
        vec![status(INSTALL_CONTAINER, terminated(0))],
        vec![status("app", running()), status(DEBUG_CONTAINER, running())],
    );
    assert!(matches!(copy_progress(&ready, "app"), CopyProgress::Ready));
    let half = pod(
        "Running",
        vec![status(INSTALL_CONTAINER, terminated(0))],
        vec![
            status("app", running()),
            status(DEBUG_CONTAINER, waiting("ContainerCreating", "")),
        ],
    );
    assert!(matches!(
        copy_progress(&half, "app"),
        CopyProgress::Starting(Some(_))
    ));
}

#[test]
fn a_missing_secret_fails_at_once_naming_it() {
    let message = "secret \"web-db\" not found";
    let broken = pod(
        "Pending",
        vec![status(INSTALL_CONTAINER, terminated(0))],
        vec![
            status("app", waiting("CreateContainerConfigError", message)),
            status(DEBUG_CONTAINER, running()),
        ],
    );
    match copy_progress(&broken, "app") {
        CopyProgress::Failed(failure @ CopyFailure::ContainerConfig { .. }) => {
            assert!(failure.to_string().contains("secret \"web-db\" not found"));
            assert!(failure.hint().unwrap().contains("Secret or ConfigMap"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_image_pull_failure_fails_at_once() {
    let broken = pod(
        "Pending",
        vec![status(
            INSTALL_CONTAINER,
            waiting("ImagePullBackOff", "not found"),
        )],
        vec![],
    );
    assert!(matches!(
        copy_progress(&broken, "app"),
        CopyProgress::Failed(CopyFailure::ImagePull { .. })
    ));
}

#[test]
fn a_failed_install_or_an_ended_pod_ends_the_wait() {
    let failed_install = pod(
        "Pending",
        vec![status(INSTALL_CONTAINER, terminated(1))],
        vec![],
    );
    assert!(matches!(
        copy_progress(&failed_install, "app"),
        CopyProgress::Failed(CopyFailure::Ended { exit_code: 1, .. })
    ));
    let deadline = Pod {
        status: Some(PodStatus {
            phase: Some("Failed".into()),
            reason: Some("DeadlineExceeded".into()),
            ..PodStatus::default()
        }),
        ..pod("Failed", vec![], vec![])
    };
    match copy_progress(&deadline, "app") {
        CopyProgress::Failed(failure @ CopyFailure::PodEnded { .. }) => {
            assert!(failure.to_string().contains("DeadlineExceeded"));
        }
        other => panic!("{other:?}"),
    }
    let held_ended = pod(
        "Running",
        vec![status(INSTALL_CONTAINER, terminated(0))],
        vec![
            status("app", terminated(0)),
            status(DEBUG_CONTAINER, running()),
        ],
    );
    assert!(matches!(
        copy_progress(&held_ended, "app"),
        CopyProgress::Failed(CopyFailure::Ended { .. })
    ));
}
