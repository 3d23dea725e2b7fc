//! gantry-store: Persistence: the on-disk per-layer result cache (verdicts and jobs come later).
