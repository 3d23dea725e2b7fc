//! The `gantry` binary: glue between the command line and the library crates.
//!
//! `anyhow` lives only here. Exit codes follow conftest and ripgrep: 0 success (allow),
//! 1 deny, 2 error — so CI can tell a policy failure from a broken scan.

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // A service logs what it does by default; one-shot commands only warn.
    let service = matches!(cli.command, args::Command::Serve(_));
    init_tracing(cli.verbose, service);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&anyhow::Error::new(e).context("starting the async runtime"));
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            output::error(&e);
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr so that stdout carries only the report. `GANTRY_LOG` (or `RUST_LOG`)
/// takes tracing's filter syntax; `-v` raises the default from `warn` to `info`/`debug`.
fn init_tracing(verbose: u8, service: bool) {
    let default = match verbose {
        0 if service => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = std::env::var("GANTRY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a service's log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
