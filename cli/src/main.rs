//! The `collector` command. Wiring only: the rules live in the `collector` library.

mod commands;
mod demo;

use clap::Parser;

// The request path allocates many small JSON values; mimalloc roughly halves their cost
// against glibc malloc on this workload (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    commands::run(commands::Cli::parse()).await
}
