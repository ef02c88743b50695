//! Container cgroups as a kubelet (cgroupfs driver, cgroups v1) and containerd place them:
//! `/kubepods/<qos>/pod<uid>/<container id>`, the ID being the one in the pod's status, seen
//! by the kernel from inside the pod; none of it left after the pod goes; and the
//! `opaque_cgroups` fault, under which no container ID shows. Needs root and runc.

mod pods;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kube_sandbox::{Faults, Sandbox, SandboxOptions, skip_without_node};
use pods::*;

/// The checks look at `/kubepods` as a whole: one sandbox at a time in this binary.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LIST_PROCESSES: &str =
    r#"for d in /proc/[0-9]*; do echo "== $(tr '\0' ' ' < $d/cmdline)"; cat $d/cgroup; done"#;

/// `/proc/<pid>/cgroup` of every process a container sees, by command line.
async fn cgroups_seen_from(sb: &Sandbox, pod: &str, container: &str) -> BTreeMap<String, String> {
    let out = kubectl_ok(
        sb,
        &[
            "exec",
            pod,
            "-c",
            container,
            "--",
            "sh",
            "-c",
            LIST_PROCESSES,
        ],
    )
    .await;
    let mut seen = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in out.lines() {
        if let Some(cmdline) = line.strip_prefix("== ") {
            seen.extend(current.take());
            current = Some((cmdline.trim().to_string(), String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    seen.extend(current);
    seen
}

/// The paths of the v1 controller lines (`N:controller:path`) of a `/proc/<pid>/cgroup`.
fn controller_paths(cgroup: &str) -> Vec<&str> {
    cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            (!controllers.is_empty()).then_some(path)
        })
        .collect()
}

fn assert_in_cgroup(seen: &BTreeMap<String, String>, cmdline: &str, expected: &str) {
    let cgroup = seen
        .get(cmdline)
        .unwrap_or_else(|| panic!("no process {cmdline:?} seen: {seen:#?}"));
    let paths = controller_paths(cgroup);
    assert!(!paths.is_empty(), "{cgroup}");
    assert!(
        paths.iter().all(|p| *p == expected),
        "/proc/<pid>/cgroup of {cmdline:?} should name {expected}:\n{cgroup}"
    );
}

fn shared_pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  shareProcessNamespace: true\n  containers:\n  - name: one\n    image: {BUSYBOX}\n    command: [sleep, '3601']\n  - name: two\n    image: {BUSYBOX}\n    command: [sleep, '3602']\n"
    )
}

async fn running_ids(
    sb: &Sandbox,
    name: &str,
    containers: &[&str],
) -> (serde_json::Value, Vec<String>) {
    let pod = wait_for("containers running", Duration::from_secs(60), async || {
        let pod = get_pod(sb, name).await;
        containers
            .iter()
            .all(|c| {
                !status_of(&pod["status"]["containerStatuses"], c)["state"]["running"].is_null()
            })
            .then_some(pod)
    })
    .await;
    let ids = containers
        .iter()
        .map(|c| container_id(status_of(&pod["status"]["containerStatuses"], c)))
        .collect();
    (pod, ids)
}

/// The path of the memory controller in a host process's `/proc/<pid>/cgroup`.
fn host_memory_cgroup(pid: i32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .unwrap_or_else(|| panic!("no memory line in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_process_cgroup_names_its_container_id_and_nothing_is_left() {
    if skip_without_node() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    apply(&sb, "shared", &shared_pod("shared")).await;
    let (pod, ids) = running_ids(&sb, "shared", &["one", "two"]).await;
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(pod["status"]["qosClass"], "BestEffort");

    // An ephemeral container targeting `one`: its ID is in ephemeralContainerStatuses.
    kubectl_ok(
        &sb,
        &[
            "debug", "shared", "--image", BUSYBOX, "--target", "one", "-c", "dbg", "--", "sleep",
            "3603",
        ],
    )
    .await;
    let dbg_id = wait_for("dbg running", Duration::from_secs(60), async || {
        let pod = get_pod(&sb, "shared").await;
        let s = status_of(&pod["status"]["ephemeralContainerStatuses"], "dbg");
        (!s["state"]["running"].is_null()).then(|| container_id(s))
    })
    .await;

    let parent = format!("/kubepods/besteffort/pod{uid}");
    let seen = cgroups_seen_from(&sb, "shared", "one").await;
    for (cmdline, cgroup) in &seen {
        eprintln!("from container one, {cmdline}:\n{cgroup}");
    }
    assert_in_cgroup(&seen, "sleep 3601", &format!("{parent}/{}", ids[0]));
    assert_in_cgroup(&seen, "sleep 3602", &format!("{parent}/{}", ids[1]));
    assert_in_cgroup(&seen, "sleep 3603", &format!("{parent}/{dbg_id}"));
    // The same from the other container: the kernel's view, not the container's.
    let seen = cgroups_seen_from(&sb, "shared", "two").await;
    assert_in_cgroup(&seen, "sleep 3601", &format!("{parent}/{}", ids[0]));

    // The QoS class picks the parent: burstable, and no QoS segment for Guaranteed.
    let qos_pod = |name: &str, resources: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n    resources: {resources}\n"
        )
    };
    apply(&sb, "burst", &qos_pod("burst", "{requests: {cpu: 10m}}")).await;
    apply(
        &sb,
        "guar",
        &qos_pod("guar", "{limits: {cpu: 100m, memory: 64Mi}}"),
    )
    .await;
    let node = sb.node().unwrap().clone();
    let mut uids = vec![uid];
    for (name, qos, segment) in [
        ("burst", "Burstable", "/burstable"),
        ("guar", "Guaranteed", ""),
    ] {
        let (pod, ids) = running_ids(&sb, name, &["app"]).await;
        let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
        assert_eq!(pod["status"]["qosClass"], qos, "{name}");
        let pid = node.container_pid("default", name, "app").unwrap();
        assert_eq!(
            host_memory_cgroup(pid),
            format!("/kubepods{segment}/pod{uid}/{}", ids[0])
        );
        uids.push(uid);
    }

    delete_and_wait(&sb, &["shared", "burst", "guar"], 1).await;
    for uid in &uids {
        assert_eq!(pod_cgroups_left(uid), Vec::<std::path::PathBuf>::new());
    }
    assert_eq!(
        support::runc_containers(node.runc_root()),
        [],
        "runc containers left"
    );
    // Only this test's own cgroups: another sandbox on the host may hold /kubepods itself.
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_cgroups_hide_container_ids() {
    if skip_without_node() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    sb.set_faults(Faults::from_yaml("opaque_cgroups: true").unwrap());
    apply(&sb, "hidden", &shared_pod("hidden")).await;
    let (pod, ids) = running_ids(&sb, "hidden", &["one", "two"]).await;
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();

    let seen = cgroups_seen_from(&sb, "hidden", "one").await;
    let two = &seen["sleep 3602"];
    eprintln!("opaque, from container one, sleep 3602:\n{two}");
    assert!(
        controller_paths(two)
            .iter()
            .all(|p| p.starts_with("/kubepods/sandboxed/")),
        "{two}"
    );
    for (cmdline, cgroup) in &seen {
        for secret in [&ids[0], &ids[1], &uid] {
            assert!(!cgroup.contains(secret.as_str()), "{cmdline}: {cgroup}");
        }
    }

    // Every hidden cgroup the pod's processes were in, in every hierarchy.
    let hidden: Vec<std::path::PathBuf> = seen
        .values()
        .flat_map(|cgroup| controller_paths(cgroup))
        .filter(|p| p.starts_with("/kubepods/sandboxed/"))
        .flat_map(|p| {
            std::fs::read_dir("/sys/fs/cgroup")
                .unwrap()
                .flatten()
                .map(move |h| h.path().join(p.trim_start_matches('/')))
        })
        .collect();
    assert!(!hidden.is_empty());
    delete_and_wait(&sb, &["hidden"], 1).await;
    let left: Vec<_> = hidden.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "hidden cgroups left: {left:?}");
    assert_eq!(pod_cgroups_left(&uid), Vec::<std::path::PathBuf>::new());
    sb.shutdown().await;
}
