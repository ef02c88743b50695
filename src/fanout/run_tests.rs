use std::path::PathBuf;

use super::*;
use crate::fanout::plan::{DEFAULT_PARALLEL, SessionFlags, prepare};
use crate::fanout::runbook::{self, Action};
use crate::output::printer::OutputFormat;
use crate::session::profile::Profile;
use crate::session::target::TargetKind;
use crate::toolkit::catalog::Toolkit;
use crate::toolkit::catalog::{Catalog, ImageChoice};

fn options(source: Source) -> FanoutOptions {
    FanoutOptions {
        source,
        targets: vec![],
        selector: Some("app=web".into()),
        all_namespaces: false,
        container: None,
        parallel: DEFAULT_PARALLEL,
        format: None,
        out_dir: None,
        session: SessionFlags {
            image: None,
            profile: None,
            timeout: None,
            ttl: Duration::from_secs(3600),
            idle: Duration::from_secs(900),
            reason: None,
            reuse: true,
            target_pid: None,
        },
        catalog: Catalog::default(),
        default_toolkit: None,
    }
}

fn write(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dd-fanout-{}-{name}", std::process::id()));
    let _ = std::fs::write(&path, text);
    path
}

#[test]
fn flags_beat_the_runbook_which_beats_the_defaults() {
    let path = write(
        "a.yaml",
        "name: a\ntoolkit: net\nprofile: ptrace\ntimeout: 5m\nsteps:\n  - name: x\n    run: id\n",
    );
    let mut o = options(Source::File(path.clone()));
    let p = prepare(&o).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.image.reference(),
        ImageChoice::Toolkit {
            toolkit: Toolkit::Net,
            registry: None
        }
        .reference()
    );
    assert_eq!(p.profile, Profile::Ptrace);
    assert_eq!(p.timeout, Duration::from_secs(300));
    o.session.image = Some(Catalog::default().image(Toolkit::Full));
    o.session.profile = Some(Profile::Auto);
    o.session.timeout = Some(Duration::from_secs(10));
    let p = prepare(&o).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.image.reference().contains("/full:"));
    assert_eq!(
        (p.profile, p.timeout),
        (Profile::Auto, Duration::from_secs(10))
    );
    let _ = std::fs::remove_file(path);
}

/// The order `run --toolkit` documents: the runbook's `toolkit`, else the config file's, else
/// per pod the runtime toolkit its spec names.
#[test]
fn the_config_files_toolkit_comes_after_the_runbooks() {
    use crate::toolkit::config::DefaultToolkit;
    let with = write(
        "w.yaml",
        "name: w\ntoolkit: net\nsteps:\n  - name: x\n    run: id\n",
    );
    let without = write("wo.yaml", "name: wo\nsteps:\n  - name: x\n    run: id\n");
    let mut o = options(Source::File(with.clone()));
    o.default_toolkit = Some(DefaultToolkit::Toolkit(Toolkit::Full));
    let p = prepare(&o).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        p.image.reference().contains("/net:"),
        "{}",
        p.image.reference()
    );
    o.source = Source::File(without.clone());
    let p = prepare(&o).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        p.image.reference().contains("/full:"),
        "{}",
        p.image.reference()
    );
    o.default_toolkit = None;
    let p = prepare(&o).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(p.image, ImageChoice::Hinted(_)), "{:?}", p.image);
    let _ = std::fs::remove_file(with);
    let _ = std::fs::remove_file(without);
}

#[test]
fn the_one_shot_form_is_a_one_step_runbook_with_the_defaults() {
    let p = prepare(&options(Source::Command(vec!["id".into()]))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.runbook.steps.len(), 1);
    assert_eq!(p.runbook.steps[0].action, Action::Run(vec!["id".into()]));
    assert!(p.image.reference().contains("/base:"));
    assert_eq!(p.timeout, runbook::DEFAULT_TIMEOUT);
}

#[test]
fn refuses_before_any_request_what_cannot_work() {
    let path = write(
        "c.yaml",
        "name: c\nsteps:\n  - name: conf\n    collect: /etc/app\n  - name: j\n    run: jcmd\n    when: runtime == \"jvm\"\n",
    );
    let error = prepare(&options(Source::File(path.clone())))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("--out-dir DIR"), "{error}");
    let mut o = options(Source::File(path.clone()));
    o.out_dir = Some(std::env::temp_dir());
    o.session.image = Some(ImageChoice::Custom("busybox".into()));
    let error = prepare(&o).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("needs the agent"), "{error}");
    let _ = std::fs::remove_file(path);

    let error = prepare(&options(Source::Builtin("nope".into())))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("network, processes, jvm, python, go"),
        "{error}"
    );

    let error = prepare(&options(Source::File("/nonexistent/rb.yaml".into()))).err();
    assert!(
        matches!(
            error.as_ref().and_then(Error::step),
            Some(runbook::LoadError::Read { .. })
        ),
        "{error:?}"
    );
    assert_eq!(error.map(|e| e.exit_status()), Some(ExitStatus::Usage));
}

#[test]
fn an_invalid_runbook_is_a_usage_error_with_its_locations() {
    let path = write("bad.yaml", "name: bad\nsteps: []\n");
    let error = prepare(&options(Source::File(path.clone()))).err();
    let text = error.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(text.contains(":2:8: `steps` is empty"), "{text}");
    assert_eq!(error.map(|e| e.exit_status()), Some(ExitStatus::Usage));
    let _ = std::fs::remove_file(path);
}

fn parsed(args: &[&str]) -> Result<FanoutOptions, String> {
    use clap::Parser;
    let cli = crate::cmd::cli::Cli::try_parse_from(
        std::iter::once("kubectl-distroless_debug").chain(args.iter().copied()),
    )
    .map_err(|e| e.to_string())?;
    match crate::cmd::options::Options::from_cli(cli, &crate::cmd::flags::Environment::default()) {
        Ok(crate::cmd::options::Options {
            action: crate::cmd::options::Action::Run(run),
            ..
        }) => Ok(run),
        Ok(other) => Err(format!("not a fan-out: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn the_run_command_line() {
    let o = parsed(&["run", "rb.yaml", "-l", "app=web"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.source, Source::File("rb.yaml".into()));
    assert_eq!(o.selector.as_deref(), Some("app=web"));
    assert_eq!(o.parallel, DEFAULT_PARALLEL);
    assert!(o.targets.is_empty() && o.session.reuse && o.session.image.is_none());

    let o = parsed(&[
        "run",
        "--builtin",
        "network",
        "deploy/api",
        "web",
        "--parallel",
        "3",
        "-o",
        "jsonl",
        "--out-dir",
        "x",
        "--new",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.source, Source::Builtin("network".into()));
    assert_eq!(o.targets.len(), 2);
    assert_eq!(o.targets[0].kind, TargetKind::Deployment);
    assert_eq!((o.parallel, o.format), (3, Some(OutputFormat::Jsonl)));
    assert_eq!(o.out_dir, Some(PathBuf::from("x")));
    assert!(!o.session.reuse);
}

#[test]
fn run_refuses_in_terms_of_its_flags() {
    let error = |args: &[&str]| parsed(args).err().unwrap_or_default();
    assert!(error(&["run"]).contains("a RUNBOOK file is needed"));
    assert!(error(&["run", "rb.yaml"]).contains("say which pods"));
    assert!(error(&["run", "rb.yaml", "-A", "pod/web"]).contains("`-A` needs `-l SELECTOR`"));
    assert!(error(&["-n", "x", "run", "rb.yaml", "-A", "-l", "a=b"]).contains("contradict"));
    assert!(error(&["run", "rb.yaml", "-l", "a=b", "--parallel", "0"]).contains("0"));
    assert!(error(&["run", "rb.yaml", "-l", "a=b", "--timeout", "0"]).contains("more than 0"));
    assert!(error(&["run", "rb.yaml", "deploy/"]).contains("not a valid name"));
    assert!(error(&["run", "rb.yaml", "-l", " "]).contains("needs a selector"));
    assert!(
        error(&[
            "run",
            "rb.yaml",
            "-l",
            "a=b",
            "--toolkit",
            "net",
            "--image",
            "x"
        ])
        .contains("cannot be used with")
    );
}

#[test]
fn the_one_shot_form_over_a_selector() {
    let o = parsed(&[
        "-l",
        "app=web",
        "-o",
        "json",
        "--parallel",
        "2",
        "--",
        "ss",
        "-ltn",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.source, Source::Command(vec!["ss".into(), "-ltn".into()]));
    assert_eq!((o.parallel, o.format), (2, Some(OutputFormat::Json)));
    // The default command's defaults hold: auto profile, 2m to start.
    assert_eq!(o.session.profile, Some(Profile::Auto));
    assert_eq!(o.session.timeout, Some(Duration::from_secs(120)));

    let error = |args: &[&str]| parsed(args).err().unwrap_or_default();
    assert!(error(&["-l", "app=web"]).contains("add one after `--`"));
    assert!(error(&["-l", "app=web", "-i", "--", "sh"]).contains("without a terminal or stdin"));
    assert!(error(&["pod/web", "--parallel", "3", "--", "ls"]).contains("for many pods"));
    assert!(error(&["pod/web", "-A", "--", "ls"]).contains("for many pods"));
    assert!(error(&["pod/web", "-l", "a=b", "--", "ls"]).contains("cannot be used with"));
}
