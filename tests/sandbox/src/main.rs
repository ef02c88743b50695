//! `kube-sandbox up`: start the sandbox cluster in the foreground, print the KUBECONFIG line,
//! tear everything down on SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube_sandbox::{Faults, Sandbox, SandboxOptions};

/// A Kubernetes API double with a real runc node, for testing kubectl-distroless-debug.
#[derive(Parser)]
#[command(name = "kube-sandbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the sandbox and stay in the foreground until SIGINT/SIGTERM.
    Up(UpArgs),
    /// Show the faults of a running sandbox, or set them from a YAML file (`-` for stdin).
    Faults(FaultsArgs),
}

#[derive(clap::Args)]
struct FaultsArgs {
    /// The running sandbox's kubeconfig.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Faults to set (YAML, as for `up --faults`); without it the current ones are printed.
    file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct UpArgs {
    /// Directory for the kubeconfig, certificates and node state (default: a temporary one,
    /// removed at exit).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Faults to inject from the start (YAML; see docs/sandbox.md).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// RBAC rules file (YAML): users, tokens, permissions.
    #[arg(long)]
    rbac: Option<PathBuf>,
    /// Register an image: REF=DIR, DIR holding rootfs/ and config.json. Repeatable.
    #[arg(long = "image", value_name = "REF=DIR")]
    images: Vec<String>,
    /// Serve plain http instead of https.
    #[arg(long)]
    http: bool,
    /// Serve the API only: no runc node, pods stay Pending.
    #[arg(long)]
    no_node: bool,
}

/// Raw flags turned into sandbox options (files read, image specs split).
fn options(args: &UpArgs) -> Result<(SandboxOptions, Vec<(String, PathBuf)>), String> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
    };
    let faults = match &args.faults {
        Some(p) => Faults::from_yaml(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?,
        None => Faults::default(),
    };
    let rbac = args.rbac.as_ref().map(read).transpose()?;
    let images = args
        .images
        .iter()
        .map(|spec| {
            spec.split_once('=')
                .map(|(r, d)| (r.to_string(), PathBuf::from(d)))
                .ok_or_else(|| format!("--image {spec}: expected REF=DIR"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        SandboxOptions {
            dir: args.dir.clone(),
            port: args.port,
            tls: !args.http,
            rbac,
            faults,
            node: !args.no_node,
        },
        images,
    ))
}

async fn up(args: UpArgs) -> Result<(), String> {
    let (opts, images) = options(&args)?;
    let node = opts.node;
    let sandbox = Sandbox::start(opts).await.map_err(|e| match e {
        kube_sandbox::SandboxError::Node(_) if node => {
            format!("{e}\nhint: the node needs root, runc and busybox-static; `--no-node` serves the API alone")
        }
        other => other.to_string(),
    })?;
    for (reference, dir) in images {
        sandbox
            .register_image_dir(&reference, &dir)
            .map_err(|e| format!("--image {reference}={}: {e}", dir.display()))?;
    }
    println!("export KUBECONFIG={}", sandbox.kubeconfig_path().display());
    eprintln!(
        "kube-sandbox: serving {} (Ctrl-C to stop); registry http://{} (serves {})",
        sandbox.server_url(),
        sandbox.registry_host(),
        sandbox.registry_crashing_app()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("kube-sandbox: shutting down");
    sandbox.shutdown().await;
    Ok(())
}

async fn faults(args: FaultsArgs) -> Result<(), String> {
    let yaml = match &args.file {
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| format!("reading stdin: {e}"))?;
            Some(text)
        }
        Some(p) => {
            Some(std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?)
        }
        None => None,
    };
    if let Some(text) = &yaml {
        Faults::from_yaml(text).map_err(|e| format!("faults: {e}"))?;
    }
    let now = kube_sandbox::api::control::faults(&args.kubeconfig, yaml).await?;
    println!("{}", now.trim());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kube-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Cmd::Up(args) => up(args).await,
            Cmd::Faults(args) => faults(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}
