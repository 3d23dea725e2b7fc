//! The subset of CycloneDX 1.5/1.6 JSON that Gantry emits, as typed serde structs.
//!
//! Field names and shapes follow `bom-1.6.schema.json` (and `bom-1.5.schema.json` where the two
//! differ: evidence `identity` is one object in 1.5 and an array in 1.6). Optional members are
//! left out when empty, so a document carries only what Gantry knows. Every type also
//! deserialises, so tests (and consumers) can read an emitted document back.

use serde::{Deserialize, Serialize};

/// CycloneDX specification version of an emitted document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecVersion {
    /// CycloneDX 1.5 (for consumers that do not read 1.6 yet).
    #[serde(rename = "1.5")]
    V1_5,
    /// CycloneDX 1.6, the default.
    #[default]
    #[serde(rename = "1.6")]
    V1_6,
}

impl SpecVersion {
    /// `1.5` or `1.6`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V1_5 => "1.5",
            SpecVersion::V1_6 => "1.6",
        }
    }

    /// The `$schema` URL of this version's JSON schema.
    pub fn schema_url(self) -> &'static str {
        match self {
            SpecVersion::V1_5 => "http://cyclonedx.org/schema/bom-1.5.schema.json",
            SpecVersion::V1_6 => "http://cyclonedx.org/schema/bom-1.6.schema.json",
        }
    }
}

impl std::fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--sbom-spec` values other than `1.5` and `1.6`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported CycloneDX version {0:?} (supported: 1.6, 1.5)")]
pub struct UnsupportedSpec(pub String);

impl std::str::FromStr for SpecVersion {
    type Err = UnsupportedSpec;

    fn from_str(s: &str) -> Result<SpecVersion, UnsupportedSpec> {
        match s {
            "1.5" => Ok(SpecVersion::V1_5),
            "1.6" => Ok(SpecVersion::V1_6),
            other => Err(UnsupportedSpec(other.to_string())),
        }
    }
}

/// A CycloneDX document (`bom`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bom {
    /// JSON schema of `spec_version`.
    #[serde(rename = "$schema")]
    pub schema: String,
    /// Always `CycloneDX`.
    #[serde(rename = "bomFormat")]
    pub bom_format: String,
    /// Specification version.
    #[serde(rename = "specVersion")]
    pub spec_version: SpecVersion,
    /// `urn:uuid:…`, derived from the content (see the crate docs).
    #[serde(rename = "serialNumber")]
    pub serial_number: String,
    /// Document version, 1.
    pub version: u32,
    /// Subject, tools, time.
    pub metadata: Metadata,
    /// Everything found in the image.
    #[serde(default)]
    pub components: Vec<Component>,
    /// Dependency graph by `bom-ref`.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Completeness claims: only made when Gantry knows the inventory is incomplete (a
    /// layer could not be walked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compositions: Vec<Composition>,
    /// Document-level properties (unknowns that are about a whole layer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// `compositions[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Composition {
    /// `incomplete`.
    pub aggregate: String,
    /// `bom-ref`s of the assemblies the claim is about (the image).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assemblies: Vec<String>,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// RFC 3339 UTC creation time: the only field that differs between two runs on the same
    /// image.
    pub timestamp: String,
    /// `post-build`: Gantry reads built images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycles: Vec<Lifecycle>,
    /// The tool that made the document (1.5+ object form).
    pub tools: Tools,
    /// The image (`type: container`).
    pub component: Component,
}

/// `metadata.lifecycles[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Lifecycle phase, e.g. `post-build`.
    pub phase: String,
}

/// `metadata.tools` in its 1.5+ form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tools {
    /// Tools as components (`type: application`).
    pub components: Vec<Component>,
}

/// `type` of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentType {
    /// A program (Gantry itself; the main module of a Go or Rust binary).
    Application,
    /// A library or package.
    Library,
    /// The image.
    Container,
    /// The distribution from os-release.
    OperatingSystem,
    /// A file (a package database Gantry could not read).
    File,
}

/// A component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// What it is.
    #[serde(rename = "type")]
    pub kind: ComponentType,
    /// Document-unique reference used by `dependencies`.
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// Maven groupId, npm scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Name.
    pub name: String,
    /// Version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Free text (the OS's pretty name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Hashes (the image manifest's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    /// Declared licenses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    /// Package URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// Where and how it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// `gantry:` properties, sorted by name then value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

impl Component {
    /// A component with only type and name set.
    pub fn new(kind: ComponentType, name: impl Into<String>) -> Component {
        Component {
            kind,
            bom_ref: None,
            group: None,
            name: name.into(),
            version: None,
            description: None,
            hashes: Vec::new(),
            licenses: Vec::new(),
            purl: None,
            evidence: None,
            properties: Vec::new(),
        }
    }
}

/// `hashes[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hash {
    /// `SHA-256` or `SHA-512`.
    pub alg: String,
    /// Lowercase hex.
    pub content: String,
}

/// One item of `licenses[]`: the schema allows either any number of `license` items or
/// exactly one `expression` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LicenseChoice {
    /// A single license by SPDX id or name.
    License {
        /// The license.
        license: License,
    },
    /// An SPDX license expression.
    Expression {
        /// E.g. `MIT OR Apache-2.0`.
        expression: String,
    },
}

/// `license`: exactly one of `id` (an SPDX license id) and `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    /// SPDX license id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Free-text name, when not an SPDX id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `evidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// How the identity was established (1.5: one object; 1.6: an array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Where it was found: `/path` in the final filesystem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub occurrences: Vec<Occurrence>,
}

/// `evidence.identity`: an object in 1.5, an array in 1.6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Identity {
    /// 1.6 form.
    Many(Vec<IdentityItem>),
    /// 1.5 form.
    One(IdentityItem),
}

/// One identity claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityItem {
    /// Which field the evidence establishes (`purl`).
    pub field: String,
    /// 0–1.
    pub confidence: f64,
    /// The techniques used.
    pub methods: Vec<Method>,
}

/// `identity.methods[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    /// `manifest-analysis` (a package database or metadata file) or `binary-analysis`
    /// (build info embedded in an executable).
    pub technique: String,
    /// 0–1.
    pub confidence: f64,
    /// The file read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `evidence.occurrences[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// Absolute path in the image's final filesystem.
    pub location: String,
}

/// `properties[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Property {
    /// Namespaced name, e.g. `gantry:layer:digest`.
    pub name: String,
    /// Value.
    pub value: String,
}

impl Property {
    /// A property.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Property {
        Property {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// `dependencies[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dependency {
    /// `bom-ref` of the dependent.
    #[serde(rename = "ref")]
    pub bom_ref: String,
    /// `bom-ref`s it depends on, sorted (empty when it depends on nothing present).
    #[serde(rename = "dependsOn", default)]
    pub depends_on: Vec<String>,
}
