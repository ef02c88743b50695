//! `distroless-debug-agent`: the binary; the run itself is the library's (src/lib.rs,
//! formerly src/main.rs).

fn main() -> std::process::ExitCode {
    distroless_debug_agent::main()
}
