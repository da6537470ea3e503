//! berth: a container engine. One binary, dispatched by its first argument or by the name it
//! was invoked as (`berth-runtime` is the OCI runtime).

mod runtime_cli;
mod runtime_spec;

fn usage() -> i32 {
    eprintln!(
        "Usage: berth [-H HOST] [--data-root DIR] COMMAND\n\n\
         docker's commands, through the daemon (started on first use):\n  \
           run, create, start, stop, restart, kill, pause, unpause, rm, rename, wait, attach,\n  \
           logs, exec, top, stats, cp, diff, commit, export, port, update, ps, inspect, events,\n  \
           info, version, system df|prune, container …, image …, images, pull, push, tag, rmi,\n  \
           save, load, import, history, login, logout, volume …, network …\n  \
           (`berth COMMAND --help` for each; with --data-root the image commands and run work\n  \
           in-process on that directory instead)\n\n\
         Other commands:\n  \
           daemon    Run the engine daemon (Docker Engine API on a unix socket)\n  \
           runtime   OCI runtime with runc's command line (also invoked as berth-runtime)\n"
    );
    125
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let code = if argv0.starts_with("berth-runtime") {
        runtime_cli::main(args)
    } else {
        match args.get(1).map(String::as_str) {
            Some("runtime") => runtime_cli::main(args[1..].to_vec()),
            Some("daemon") => engine::daemon::main(args[1..].to_vec()),
            Some("shim") => {
                let mut a = vec!["berth shim".to_string()];
                a.extend(args[2..].iter().cloned());
                shim::main(a)
            }
            Some("--version") | Some("-v") => {
                println!("berth version {}", env!("CARGO_PKG_VERSION"));
                0
            }
            None | Some("-h") | Some("--help") => usage(),
            _ => cli::main(args),
        }
    };
    std::process::exit(code);
}
