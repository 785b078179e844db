//! The `collector` command. Wiring only: the rules live in the `collector` library.

mod commands;
mod demo;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    commands::run(commands::Cli::parse()).await
}
