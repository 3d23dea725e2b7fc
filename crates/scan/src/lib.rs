//! gantry-scan: Image → per-layer reports (cached or walked in parallel) → squashed scan report.
