use std::path::{Path, PathBuf};

use gantry_server::webhook::{self, Parsed, RegistryHint, Source, WebhookError};

/// The payload files shipped with the crate (their sources: tests/payloads/README.md).
pub fn payload_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/payloads")
}

pub fn payload(name: &str) -> Vec<u8> {
    let path = payload_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn payload_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&payload(name)).unwrap()
}

/// Every `.json` payload file name, sorted.
pub fn payload_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(payload_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// The content type each sender really sends.
pub fn content_type(source: Source) -> &'static str {
    match source {
        Source::Distribution | Source::Gitlab => {
            "application/vnd.docker.distribution.events.v1+json"
        }
        _ => "application/json",
    }
}

pub fn parse(source: Source, body: &[u8]) -> Result<Parsed, WebhookError> {
    webhook::parse(
        source,
        body,
        Some(content_type(source)),
        &RegistryHint::none(),
    )
}

pub fn parse_err(source: Source, body: &[u8]) -> WebhookError {
    match parse(source, body) {
        Ok(p) => panic!("{source}: expected an error, got {p:?}"),
        Err(e) => e,
    }
}

pub fn to_json(parsed: &Parsed) -> serde_json::Value {
    serde_json::to_value(parsed).unwrap()
}
