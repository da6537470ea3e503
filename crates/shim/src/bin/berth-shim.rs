//! The shim as a standalone binary (`berth-shim start …`), for tests and debugging; berth
//! itself runs the same code as `berth shim …`.

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(a0) = args.first_mut() {
        *a0 = "berth-shim".into();
    }
    std::process::exit(shim::main(args));
}
