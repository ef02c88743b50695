//! [`resolve`] over namespaces described process by process, as the kernel would show them.

use super::*;

const APP: &str = "aaaa0c1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const SIDECAR: &str = "bbbb0c1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const DEBUG: &str = "dddd0c1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const SANDBOX: &str = "55550c1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

fn id(text: &str) -> ContainerId {
    ContainerId::parse(text).unwrap()
}

/// A process in container `ctr` (systemd cgroup driver, cgroup v2).
fn in_container(pid: i32, ppid: i32, start: u64, ctr: &str) -> Proc {
    Proc {
        pid,
        ppid,
        start,
        cgroup: Some(format!(
            "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ctr}.scope\n"
        )),
        pause: false,
        ours: false,
    }
}

fn pause() -> Proc {
    Proc {
        pause: true,
        ..in_container(1, 0, 10, SANDBOX)
    }
}

fn ours(pid: i32, ppid: i32, start: u64) -> Proc {
    Proc {
        ours: true,
        ..in_container(pid, ppid, start, DEBUG)
    }
}

/// A pod with `shareProcessNamespace: true`: pause, the sidecar (started first, pid 7 with
/// a child), the app (pid 12 with a worker, and a process exec'd into it later, pid 40),
/// and our debug container (hold and a session).
fn shared_pod() -> Vec<Proc> {
    vec![
        pause(),
        in_container(7, 0, 20, SIDECAR),
        in_container(9, 7, 21, SIDECAR),
        in_container(12, 0, 30, APP),
        in_container(13, 12, 31, APP),
        in_container(40, 0, 90, APP),
        ours(50, 0, 100),
        ours(51, 0, 110),
    ]
}

fn ok(pid: i32, container: Option<&str>, method: Method) -> Result<Target, Refusal> {
    Ok(Target {
        pid,
        container_id: container.map(id),
        method,
    })
}

#[test]
fn in_a_shared_namespace_the_id_picks_its_containers_first_process() {
    let procs = shared_pod();
    assert_eq!(
        resolve(&Request::Id(id(APP)), &procs),
        ok(12, Some(APP), Method::Cgroup),
        "not the sidecar's pid 7 (lower), not the worker 13, not the later exec 40"
    );
    assert_eq!(
        resolve(&Request::Id(id(SIDECAR)), &procs),
        ok(7, Some(SIDECAR), Method::Cgroup)
    );
    assert_eq!(
        resolve(&Request::Id(id(&format!("containerd://{APP}"))), &procs),
        ok(12, Some(APP), Method::Cgroup)
    );
}

#[test]
fn the_earliest_started_root_wins_over_the_lowest_pid() {
    // Pids wrapped: an exec'd process got a lower pid than the container's main process.
    let procs = vec![
        pause(),
        in_container(3, 0, 500, APP),
        in_container(30000, 0, 40, APP),
        in_container(30001, 30000, 41, APP),
    ];
    assert_eq!(
        resolve(&Request::Id(id(APP)), &procs),
        ok(30000, Some(APP), Method::Cgroup)
    );
}

#[test]
fn no_match_in_a_shared_namespace_refuses_and_lists_the_other_containers() {
    let procs = shared_pod();
    let gone = "eeee0c1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
    let refusal = resolve(&Request::Id(id(gone)), &procs).unwrap_err();
    assert!(refusal.reason.contains(gone), "{}", refusal.reason);
    assert!(refusal.reason.contains("pause"), "{}", refusal.reason);
    assert_eq!(
        refusal.candidates,
        vec![(7, Some(id(SIDECAR))), (12, Some(id(APP)))],
        "the first process of each container; not pause, not ours"
    );
}

#[test]
fn no_id_in_a_shared_namespace_is_never_a_guess() {
    let refusal = resolve(&Request::Nothing, &shared_pod()).unwrap_err();
    assert!(
        refusal.reason.contains("no container ID was given"),
        "{}",
        refusal.reason
    );
    assert_eq!(refusal.candidates.len(), 2);
}

#[test]
fn the_pause_process_never_matches_even_when_its_cgroup_does() {
    // cgroupfs v1 puts the sandbox in the pod's cgroup: an ID naming the sandbox must not
    // make the pause process the target.
    let procs = vec![pause(), in_container(12, 0, 30, APP)];
    assert!(resolve(&Request::Id(id(SANDBOX)), &procs).is_err());
}

#[test]
fn a_pid_is_taken_as_given_and_must_exist() {
    let procs = shared_pod();
    assert_eq!(
        resolve(&Request::Pid(9), &procs),
        ok(9, Some(SIDECAR), Method::Flag)
    );
    let refusal = resolve(&Request::Pid(4242), &procs).unwrap_err();
    assert!(refusal.reason.contains("4242"), "{}", refusal.reason);
    assert_eq!(refusal.candidates.len(), 2);
}

/// The target's own namespace (no shareProcessNamespace): the target's main process is
/// PID 1, one process exec'd into it, and our debug container.
fn own_namespace(pid1_cgroup: Option<String>) -> Vec<Proc> {
    vec![
        Proc {
            cgroup: pid1_cgroup,
            ..in_container(1, 0, 10, APP)
        },
        in_container(30, 0, 60, APP),
        ours(40, 0, 70),
    ]
}

#[test]
fn in_the_targets_own_namespace_the_id_confirms_pid_1() {
    let procs = own_namespace(Some(format!("0::/../cri-containerd-{APP}.scope\n")));
    assert_eq!(
        resolve(&Request::Id(id(APP)), &procs),
        ok(1, Some(APP), Method::Cgroup)
    );
    assert_eq!(
        resolve(&Request::Nothing, &procs),
        ok(1, Some(APP), Method::Pid1)
    );
}

#[test]
fn pid_1_of_another_container_is_an_error() {
    let procs = own_namespace(Some(format!("0::/kubepods/besteffort/pod1/{SIDECAR}\n")));
    // Only PID 1's container is visible; none of its processes names APP.
    let procs: Vec<Proc> = procs.into_iter().filter(|p| p.pid != 30).collect();
    let refusal = resolve(&Request::Id(id(APP)), &procs).unwrap_err();
    assert!(
        refusal.reason.contains(&format!(
            "PID 1 belongs to container {SIDECAR}, not to container {APP}"
        )),
        "{}",
        refusal.reason
    );
    assert_eq!(refusal.candidates, vec![(1, Some(id(SIDECAR)))]);
}

#[test]
fn pid_1_stays_the_target_when_cgroups_show_no_id() {
    for hidden in [None, Some("0::/\n".to_string())] {
        let procs: Vec<Proc> = own_namespace(hidden.clone())
            .into_iter()
            .map(|p| Proc {
                cgroup: if p.ours { p.cgroup } else { hidden.clone() },
                ..p
            })
            .collect();
        assert_eq!(
            resolve(&Request::Id(id(APP)), &procs),
            ok(1, None, Method::Pid1),
            "{hidden:?}"
        );
        assert_eq!(
            resolve(&Request::Nothing, &procs),
            ok(1, None, Method::Pid1)
        );
    }
}

#[test]
fn pid_1_of_our_own_container_is_never_the_target() {
    // A debug container outside the target's namespace: PID 1 is our own hold.
    let procs = vec![
        Proc {
            cgroup: Some("0::/\n".to_string()),
            ..ours(1, 0, 10)
        },
        ours(7, 0, 20),
    ];
    for request in [Request::Nothing, Request::Id(id(APP))] {
        let refusal = resolve(&request, &procs).unwrap_err();
        assert!(
            refusal.reason.contains("debug container's own"),
            "{}",
            refusal.reason
        );
        assert!(refusal.candidates.is_empty());
    }
}

#[test]
fn candidates_without_ids_are_the_tops_of_their_process_trees() {
    let hidden = |pid, ppid, start| Proc {
        cgroup: Some("0::/\n".to_string()),
        ..in_container(pid, ppid, start, APP)
    };
    let procs = vec![
        pause(),
        hidden(5, 0, 20),
        hidden(6, 5, 21),
        hidden(8, 0, 25),
        hidden(9, 1, 26),
        ours(50, 0, 100),
    ];
    let refusal = resolve(&Request::Nothing, &procs).unwrap_err();
    assert_eq!(refusal.candidates, vec![(5, None), (8, None), (9, None)]);
}

#[test]
fn flags_win_over_env_and_a_pid_over_an_id() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |var: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| v.to_string())
        }
    };
    let both_env = env(&[(PID_ENV, "7"), (ID_ENV, APP)]);
    let flags = |pid: Option<i32>, with_id: bool| TargetFlags {
        pid,
        id: with_id.then(|| id(SIDECAR)),
    };
    assert_eq!(request(&flags(None, false), both_env), Ok(Request::Pid(7)));
    assert_eq!(
        request(&flags(None, true), both_env),
        Ok(Request::Id(id(SIDECAR)))
    );
    assert_eq!(
        request(&flags(Some(3), true), both_env),
        Ok(Request::Pid(3))
    );
    assert_eq!(
        request(
            &flags(None, false),
            env(&[(ID_ENV, "cri-o://aaaa"), (PID_ENV, " ")])
        ),
        Ok(Request::Id(id("aaaa")))
    );
    assert_eq!(request(&flags(None, false), env(&[])), Ok(Request::Nothing));
    let bad = request(&flags(None, false), env(&[(PID_ENV, "one")])).unwrap_err();
    assert!(bad.contains(PID_ENV), "{bad}");
    let bad = request(&flags(None, false), env(&[(ID_ENV, "x://")])).unwrap_err();
    assert!(bad.contains(ID_ENV), "{bad}");
}

#[test]
fn the_root_view_follows_the_link_chain_to_the_pid() {
    let dir = std::env::temp_dir().join(format!("dda-rootview-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let image_link = dir.join("target");
    // As the images ship it: /target -> the state directory's link -> /proc/<pid>/root.
    std::os::unix::fs::symlink(dir.join("state/target"), &image_link).unwrap();
    std::os::unix::fs::symlink("/proc/12/root", dir.join("state/target")).unwrap();
    assert_eq!(root_view(&image_link, 12), image_link);
    assert_eq!(root_view(&image_link, 7), PathBuf::from("/proc/7/root"));
    // A relative hop, and the older images' direct link.
    let relative = dir.join("relative");
    std::os::unix::fs::symlink("state/target", &relative).unwrap();
    assert_eq!(root_view(&relative, 12), relative);
    let direct = dir.join("direct");
    std::os::unix::fs::symlink("/proc/1/root", &direct).unwrap();
    assert_eq!(root_view(&direct, 1), direct);
    assert_eq!(root_view(&direct, 12), PathBuf::from("/proc/12/root"));
    assert_eq!(
        root_view(&dir.join("missing"), 12),
        PathBuf::from("/proc/12/root")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_refusal_table_names_each_candidate_and_the_flag() {
    let refusal = NotIdentified {
        error: "target not identified: no container ID was given".to_string(),
        candidates: vec![
            Candidate {
                pid: 7,
                container_id: Some(SIDECAR.to_string()),
                exe: None,
                uid: Some(1337),
                cmdline: Some(vec!["/usr/local/bin/envoy".into(), "-c".into()]),
            },
            Candidate {
                pid: 12,
                container_id: None,
                exe: Some("/app/server".to_string()),
                uid: None,
                cmdline: None,
            },
        ],
    };
    let text = render_refusal("shell", &refusal);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "distroless-debug-agent shell: target not identified: no container ID was given."
    );
    assert!(
        lines[2]
            .split_whitespace()
            .eq(["PID", "UID", "CONTAINER", "EXE"])
    );
    assert!(
        lines[3]
            .split_whitespace()
            .eq(["7", "1337", SIDECAR, "?", "(/usr/local/bin/envoy", "-c)"]),
        "{text}"
    );
    assert!(
        lines[4]
            .split_whitespace()
            .eq(["12", "?", "-", "/app/server"]),
        "{text}"
    );
    assert!(
        lines[5].contains("--target-pid PID")
            && lines[5].contains("distroless-debug-agent shell --target-pid 7"),
        "{text}"
    );
    let json = serde_json::to_value(&refusal).unwrap();
    assert_eq!(json["candidates"][0]["container_id"], SIDECAR);
    assert_eq!(json["candidates"][1]["uid"], serde_json::Value::Null);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .starts_with("target not identified")
    );
}
