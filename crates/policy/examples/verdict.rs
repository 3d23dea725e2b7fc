//! Prints the built-in bundle's verdict for an input document, and how long it took.
//!
//! `cargo run -p gantry-policy --release --example verdict -- crates/policy/tests/fixtures/distroless_nonroot.json`
#![allow(clippy::print_stdout)]

use std::time::Instant;

use gantry_policy::{Policy, PolicyBundle, PolicyError, PolicyLimits};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: verdict INPUT.json [ITERATIONS]")?;
    let iterations: u32 = std::env::args().nth(2).map_or(Ok(1000), |n| n.parse())?;
    let input: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;

    let started = Instant::now();
    let bundle = PolicyBundle::builtin()?;
    let policy = Policy::compile(&bundle, &PolicyLimits::default())?;
    let compiled = started.elapsed();

    let verdict = policy
        .evaluate_checked(&input)
        .map_err(|e: PolicyError| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&verdict)?);

    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(policy.evaluate(&input));
    }
    let per_eval = started.elapsed() / iterations.max(1);
    println!("compile {compiled:?}; evaluate {per_eval:?} per input ({iterations} runs)");
    Ok(())
}
