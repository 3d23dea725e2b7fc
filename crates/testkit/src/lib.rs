//! gantry-testkit: Test fixtures: real images from file trees (ImageBuilder) and a real registry (RegistryHarness).
