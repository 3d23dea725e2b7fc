//! [`CycloneDx`]: validates CycloneDX JSON documents against the official JSON schemas of
//! 1.5 and 1.6, vendored in `schemas/cyclonedx/` (source and licence in its README), offline.
//!
//! The bom schemas `$ref` the SPDX licence-id schema and the JSF signature schema by a URL
//! relative to their `$id` (`http://cyclonedx.org/schema/…`). Every such reference is answered
//! from the vendored copies by [`VendoredSchemas`]; any other URL is an error, never a network
//! fetch, so a test run needs nothing outside the repository.

use std::sync::OnceLock;

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

/// The base every vendored CycloneDX schema's `$id` sits under.
const BASE: &str = "http://cyclonedx.org/schema/";

/// (file name as referenced, contents). The names are the ones cyclonedx-python-lib ships
/// and its bom schemas `$ref`.
const VENDORED: &[(&str, &str)] = &[
    (
        "bom-1.5.SNAPSHOT.schema.json",
        include_str!("../schemas/cyclonedx/bom-1.5.SNAPSHOT.schema.json"),
    ),
    (
        "bom-1.6.SNAPSHOT.schema.json",
        include_str!("../schemas/cyclonedx/bom-1.6.SNAPSHOT.schema.json"),
    ),
    (
        "spdx.SNAPSHOT.schema.json",
        include_str!("../schemas/cyclonedx/spdx.SNAPSHOT.schema.json"),
    ),
    (
        "jsf-0.82.SNAPSHOT.schema.json",
        include_str!("../schemas/cyclonedx/jsf-0.82.SNAPSHOT.schema.json"),
    ),
];

/// Answers `$ref`s from the vendored schema files, and refuses every other URL.
#[derive(Debug, Clone, Copy, Default)]
pub struct VendoredSchemas;

impl Retrieve for VendoredSchemas {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let wanted = uri.as_str();
        let text = wanted
            .strip_prefix(BASE)
            .map(|name| name.split('#').next().unwrap_or(name))
            .and_then(|name| {
                // The official files name each other without the `.SNAPSHOT` infix.
                let snapshot = match name.strip_suffix(".schema.json") {
                    Some(stem) if !stem.ends_with(".SNAPSHOT") => {
                        format!("{stem}.SNAPSHOT.schema.json")
                    }
                    _ => name.to_string(),
                };
                VENDORED.iter().find(|(n, _)| *n == snapshot)
            })
            .map(|(_, text)| *text)
            .ok_or_else(|| {
                format!("{wanted} is not vendored in crates/testkit/schemas (offline)")
            })?;
        Ok(serde_json::from_str(text)?)
    }
}

/// Compiled validators for CycloneDX 1.5 and 1.6 (format assertions on, as the official
/// validators do). Compiled once per process by [`CycloneDx::get`].
#[derive(Debug)]
pub struct CycloneDx {
    v15: Validator,
    v16: Validator,
}

impl CycloneDx {
    /// The process-wide validators (compiled on first use). An error means the vendored
    /// files are broken.
    pub fn get() -> std::result::Result<&'static CycloneDx, String> {
        static ONCE: OnceLock<std::result::Result<CycloneDx, String>> = OnceLock::new();
        ONCE.get_or_init(CycloneDx::compile)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn compile() -> std::result::Result<CycloneDx, String> {
        Ok(CycloneDx {
            v15: compile("bom-1.5.SNAPSHOT.schema.json")?,
            v16: compile("bom-1.6.SNAPSHOT.schema.json")?,
        })
    }

    /// Validates `doc` against the schema of its `specVersion`; the error lists every
    /// violation with its JSON pointer.
    pub fn validate(&self, doc: &Value) -> std::result::Result<(), String> {
        let validator = match doc.get("specVersion").and_then(Value::as_str) {
            Some("1.5") => &self.v15,
            Some("1.6") => &self.v16,
            other => {
                return Err(format!(
                    "specVersion {other:?}: only 1.5 and 1.6 are vendored"
                ));
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} schema violation(s):\n  {}",
                errors.len(),
                errors.join("\n  ")
            ))
        }
    }
}

fn compile(name: &str) -> std::result::Result<Validator, String> {
    let text = VENDORED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| format!("{name} is not vendored"))?;
    let schema: Value = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    jsonschema::options()
        .with_retriever(VendoredSchemas)
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| format!("compiling {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_bom_of_each_version_is_valid() {
        for v in ["1.5", "1.6"] {
            let doc = serde_json::json!({"bomFormat": "CycloneDX", "specVersion": v, "version": 1});
            CycloneDx::get().unwrap().validate(&doc).unwrap();
        }
    }

    #[test]
    fn violations_are_reported_with_their_path() {
        let doc = serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": [{"type": "no-such-type", "name": "x"}],
        });
        let err = CycloneDx::get().unwrap().validate(&doc).unwrap_err();
        assert!(err.contains("/components/0/type"), "{err}");
    }

    #[test]
    fn licence_ids_are_checked_through_the_vendored_spdx_schema() {
        let lic = |id: &str| {
            serde_json::json!({
                "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
                "components": [{"type": "library", "name": "x",
                                "licenses": [{"license": {"id": id}}]}],
            })
        };
        CycloneDx::get()
            .unwrap()
            .validate(&lic("Apache-2.0"))
            .unwrap();
        let err = CycloneDx::get()
            .unwrap()
            .validate(&lic("Not-A-Licence"))
            .unwrap_err();
        assert!(err.contains("/components/0/licenses"), "{err}");
    }

    #[test]
    fn formats_are_asserted() {
        let doc = serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "metadata": {"timestamp": "yesterday"},
        });
        let err = CycloneDx::get().unwrap().validate(&doc).unwrap_err();
        assert!(err.contains("/metadata/timestamp"), "{err}");
    }

    #[test]
    fn other_urls_are_refused_not_fetched() {
        let schema = serde_json::json!({"$ref": "https://example.com/elsewhere.json"});
        let err = jsonschema::options()
            .with_retriever(VendoredSchemas)
            .build(&schema)
            .unwrap_err();
        assert!(err.to_string().contains("not vendored"), "{err}");
    }
}
