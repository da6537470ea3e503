//! Links the berth binary as a position-dependent executable (`-no-pie`).
//!
//! Every berth process (CLI, daemon, one shim per container, the runtime) is this binary. As a
//! PIE, the dynamic loader must relocate its ~550 KB of pointer tables (`.data.rel.ro`, GOT)
//! at every start, which dirties those pages privately in each process: about 0.6 MB per shim
//! and a millisecond or two per start. Linked at a fixed address they stay clean, shared pages
//! of the file. The cost is that berth's own code and data are not address-randomized (its
//! libraries, heap and stacks still are), as with Go's statically linked daemons.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
