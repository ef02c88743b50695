//! `cp`'s pure parts: which side is in the pod, remote path pieces, agent messages,
//! read-only reasons and the summaries.

use k8s_openapi::api::core::v1::{SecurityContext, VolumeMount};

use super::*;
use crate::session::target::TargetKind;
use crate::transfer::read_only::read_only_reason;

#[test]
fn remote_sides_are_target_colon_absolute_path() {
    let spec = parse_remote("pod/web:/etc//app/./current/")
        .unwrap()
        .unwrap();
    assert_eq!(
        spec,
        RemoteSpec {
            target: TargetRef {
                kind: TargetKind::Pod,
                name: "web".into()
            },
            path: "/etc/app/current".into()
        }
    );
    assert_eq!(parse_remote("deploy/api:/").unwrap().unwrap().path, "/");
    assert_eq!(parse_remote("web:/x").unwrap().unwrap().target.name, "web");
    // Local paths.
    assert_eq!(parse_remote("./out"), None);
    assert_eq!(parse_remote("./a:b"), None);
    assert_eq!(parse_remote("/tmp/x"), None);
    assert_eq!(parse_remote("Dir/x:/y"), None);
    // Remote, but unusable.
    assert!(
        parse_remote("pod/web:etc/x")
            .unwrap()
            .unwrap_err()
            .contains("must be absolute")
    );
    assert!(
        parse_remote("pod/web:")
            .unwrap()
            .unwrap_err()
            .contains("a path is needed")
    );
    assert!(
        parse_remote("pod/web:/etc/../root")
            .unwrap()
            .unwrap_err()
            .contains("`..`")
    );
}

#[test]
fn remote_path_pieces() {
    assert_eq!(basename("/etc/app"), "app");
    assert_eq!(basename("/"), "");
    assert_eq!(parent("/etc/app"), "/etc");
    assert_eq!(parent("/etc"), "/");
    assert_eq!(parent("/"), "/");
    assert_eq!(archive_name("/etc/app"), "etc/app");
    assert_eq!(join_remote("/", "x"), "/x");
    assert_eq!(join_remote("/tmp", "x"), "/tmp/x");
}

#[test]
fn agent_messages_lose_their_prefix() {
    let stderr = "distroless-debug-agent tar: /etc/nope: No such file or directory\n\
                  distroless-debug-agent tar: 0 entries (0 bytes) archived; 0 skipped, 1 unreadable\n";
    assert_eq!(
        agent_message(stderr, "/etc/nope"),
        "No such file or directory"
    );
    assert_eq!(agent_message("", "/x"), "the agent could not read /x");
}

fn pod_with(mounts: Vec<(&str, &str, bool)>, read_only_root: bool) -> Pod {
    let mut pod = crate::session::target::tests::running_pod("web", &["app"]);
    if let Some(spec) = pod.spec.as_mut() {
        let c = &mut spec.containers[0];
        c.volume_mounts = Some(
            mounts
                .into_iter()
                .map(|(name, path, ro)| VolumeMount {
                    name: name.into(),
                    mount_path: path.into(),
                    read_only: ro.then_some(true),
                    ..VolumeMount::default()
                })
                .collect(),
        );
        c.security_context = Some(SecurityContext {
            read_only_root_filesystem: Some(read_only_root),
            ..SecurityContext::default()
        });
    }
    pod
}

#[test]
fn read_only_reasons_name_the_mount_or_the_root_and_the_writable_volumes() {
    let pod = pod_with(
        vec![("cache", "/var/cache", false), ("config", "/etc/app", true)],
        true,
    );
    let (why, writable) = read_only_reason(&pod, "app", "/usr/local");
    assert_eq!(why, "readOnlyRootFilesystem");
    assert_eq!(writable, vec!["/var/cache".to_string()]);
    let (why, _) = read_only_reason(&pod, "app", "/etc/app/v2");
    assert_eq!(why, "volume config is mounted readOnly at /etc/app");
    let pod = pod_with(vec![], false);
    let (why, writable) = read_only_reason(&pod, "app", "/x");
    assert_eq!(why, "its root filesystem is mounted read-only");
    assert!(writable.is_empty());
}

#[test]
fn summaries() {
    let stats = Stats {
        files: 2,
        directories: 3,
        symlinks: 1,
        bytes: 2048,
        top_is_dir: true,
        ..Stats::default()
    };
    assert_eq!(
        describe_download(&stats),
        "directory: 2 files, 2 directories, 1 symlink, 2.0 KiB"
    );
    assert_eq!(
        describe_download(&Stats {
            files: 1,
            bytes: 11,
            ..Stats::default()
        }),
        "file, 11 B"
    );
}

#[test]
fn a_refused_archive_entry_says_to_treat_the_target_as_suspect() {
    let stopped = |source| {
        Error::from(CopyStopped {
            pod: "web".into(),
            path: "/etc".into(),
            local: "out".into(),
            source,
        })
    };
    let refused = stopped(ExtractError::Refused {
        entry: "../x".into(),
        reason: "it leaves the destination".into(),
    });
    assert!(
        refused.to_string() == "copying /etc from pod web to out stopped"
            && refused
                .hint()
                .unwrap_or_default()
                .starts_with("the archive from the target tried to write outside out,"),
        "{refused}: {:?}",
        refused.hint()
    );
    let broken = stopped(ExtractError::Archive(std::io::Error::other("eof")));
    assert_eq!(broken.hint(), None);
}
