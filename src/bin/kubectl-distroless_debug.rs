//! `kubectl-distroless_debug`: the plugin's binary; the run itself is the library's
//! (src/lib.rs, formerly src/main.rs).

fn main() -> std::process::ExitCode {
    kubectl_distroless_debug::main()
}
