//! [`SbomInput`] → [`Bom`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gantry_analyze::Package;
use gantry_model::{Digest, DigestAlgorithm};

use crate::cdx::{
    Bom, Component, ComponentType, Composition, Dependency, Evidence, Hash, Identity, IdentityItem,
    Lifecycle, Metadata, Method, Occurrence, Property, SpecVersion, Tools,
};
use crate::input::SbomInput;
use crate::{deps, license, package, stamp};

/// Builds the CycloneDX document of `input` in version `spec`, stamped with the current time.
///
/// Everything but `metadata.timestamp` is a function of the input: components and
/// dependencies are sorted, and the serial number is derived from the rest of the document
/// ([`stamp::serial_number`]). Use [`Bom::with_timestamp`] for a fixed time.
pub fn cyclonedx(input: &SbomInput, spec: SpecVersion) -> Bom {
    let mut bom = Bom {
        schema: spec.schema_url().to_string(),
        bom_format: "CycloneDX".to_string(),
        spec_version: spec,
        serial_number: String::new(),
        version: 1,
        metadata: Metadata {
            timestamp: String::new(),
            lifecycles: vec![Lifecycle {
                phase: "post-build".to_string(),
            }],
            tools: Tools {
                components: vec![Component {
                    version: Some(input.tool_version.clone()),
                    ..Component::new(ComponentType::Application, "gantry")
                }],
            },
            component: image_component(input),
        },
        components: Vec::new(),
        dependencies: Vec::new(),
        compositions: Vec::new(),
        properties: Vec::new(),
    };
    let (components, dependencies) = components(input, spec, &bom.metadata.component);
    bom.components = components;
    bom.dependencies = dependencies;
    bom.properties = layer_unknowns(input);
    if !input.complete {
        bom.compositions.push(Composition {
            aggregate: "incomplete".to_string(),
            assemblies: bom.metadata.component.bom_ref.clone().into_iter().collect(),
        });
        bom.properties
            .push(Property::new("gantry:scan:complete", "false"));
    }
    // Serialising these types cannot fail (string keys, finite numbers); an empty buffer would
    // only make the serial number less specific, never wrong in form.
    let content = serde_json::to_vec(&bom).unwrap_or_default();
    bom.serial_number = stamp::serial_number(&content);
    bom.metadata.timestamp = gantry_model::time::now();
    bom
}

impl Bom {
    /// The same document with `metadata.timestamp` set to `rfc3339` (reproducible output,
    /// e.g. from `SOURCE_DATE_EPOCH`). The serial number does not depend on it.
    pub fn with_timestamp(mut self, rfc3339: impl Into<String>) -> Bom {
        self.metadata.timestamp = rfc3339.into();
        self
    }
}

fn hash_alg(d: &Digest) -> &'static str {
    match d.algorithm() {
        DigestAlgorithm::Sha256 => "SHA-256",
        DigestAlgorithm::Sha512 => "SHA-512",
    }
}

/// `metadata.component`: the image.
fn image_component(input: &SbomInput) -> Component {
    let image = &input.image;
    let digest = image.manifest_digest.to_string();
    let arch = image.platform.split('/').nth(1);
    let (name, purl) = match &image.reference {
        Some(r) => (
            r.name(),
            Some(gantry_analyze::purl::oci(
                r.registry(),
                r.repository(),
                &digest,
                arch,
                r.tag(),
            )),
        ),
        None => (image.source.clone(), None),
    };
    let mut properties = vec![Property::new("gantry:image:source", &image.source)];
    if let Some(r) = &image.reference {
        properties.push(Property::new("gantry:image:reference", r.to_string()));
    }
    properties.push(Property::new("gantry:image:digest", &digest));
    properties.push(Property::new("gantry:image:media_type", &image.media_type));
    properties.push(Property::new(
        "gantry:image:config_digest",
        image.config_digest.to_string(),
    ));
    if let Some(index) = &image.index_digest {
        properties.push(Property::new(
            "gantry:image:index_digest",
            index.to_string(),
        ));
    }
    properties.push(Property::new("gantry:image:platform", &image.platform));
    for l in &image.layers {
        properties.push(Property::new(
            format!("gantry:image:layer:{}:digest", l.index),
            l.digest.to_string(),
        ));
        if let Some(diff_id) = &l.diff_id {
            properties.push(Property::new(
                format!("gantry:image:layer:{}:diff_id", l.index),
                diff_id.to_string(),
            ));
        }
    }
    for (k, v) in &image.labels {
        properties.push(Property::new(format!("gantry:image:label:{k}"), v));
    }
    for (k, v) in &image.annotations {
        properties.push(Property::new(format!("gantry:image:annotation:{k}"), v));
    }
    Component {
        bom_ref: Some(purl.clone().unwrap_or_else(|| format!("image:{digest}"))),
        version: Some(digest),
        hashes: vec![Hash {
            alg: hash_alg(&image.manifest_digest).to_string(),
            content: image.manifest_digest.hex().to_string(),
        }],
        purl,
        properties,
        ..Component::new(ComponentType::Container, name)
    }
}

/// The OS component from os-release (Syft and Trivy both emit one).
fn os_component(input: &SbomInput) -> Option<Component> {
    let os = input.os.as_ref().filter(|o| !o.id.is_empty())?;
    let bom_ref = match &os.version_id {
        Some(v) => format!("os:{}@{v}", os.id),
        None => format!("os:{}", os.id),
    };
    let mut properties = vec![Property::new("gantry:os:id", &os.id)];
    if let Some(v) = &os.version_id {
        properties.push(Property::new("gantry:os:version_id", v));
    }
    if let Some(c) = &os.version_codename {
        properties.push(Property::new("gantry:os:version_codename", c));
    }
    for like in &os.id_like {
        properties.push(Property::new("gantry:os:id_like", like));
    }
    Some(Component {
        bom_ref: Some(bom_ref),
        version: os.version_id.clone(),
        description: os.pretty_name.clone(),
        properties,
        ..Component::new(ComponentType::OperatingSystem, &os.id)
    })
}

/// One package on its way to a component.
struct Entry<'a> {
    pkg: &'a Package,
    purl: String,
    group: Option<String>,
    name: String,
    /// The name dependencies use (npm `@scope/name`, maven `group:artifact`).
    full_name: String,
    path: &'a str,
    layer_index: u64,
}

fn entry<'a>(p: &'a Package, input: &SbomInput) -> Entry<'a> {
    let eco = package::ecosystem(p);
    let ns = package::namespace(p).filter(|n| !n.is_empty());
    let (group, name, full_name) = match (eco, ns) {
        ("maven", Some(g)) => (
            Some(g.to_string()),
            p.name.clone(),
            format!("{g}:{}", p.name),
        ),
        ("npm", _) if p.name.starts_with('@') && p.name.contains('/') => {
            let (scope, bare) = p.name.split_once('/').unwrap_or(("", &p.name));
            (Some(scope.to_string()), bare.to_string(), p.name.clone())
        }
        ("npm", Some(scope)) => (
            Some(scope.to_string()),
            p.name.clone(),
            format!("{scope}/{}", p.name),
        ),
        ("golang", Some(prefix)) if !p.name.starts_with(prefix) => {
            let full = format!("{prefix}/{}", p.name);
            (None, full.clone(), full)
        }
        _ => (None, p.name.clone(), p.name.clone()),
    };
    let purl = package::purl(p, input.os.as_ref());
    Entry {
        pkg: p,
        purl,
        group,
        name,
        full_name,
        path: p.location.path.as_deref().unwrap_or(""),
        layer_index: p.location.layer_index.unwrap_or(0),
    }
}

/// Go and Rust binaries: the main module (the one no other module of the same binary depends
/// on, when it declares the others) is the `application`; the modules compiled into it are
/// libraries. Everything else is a `library`.
fn applications(entries: &[Entry<'_>], edges: &[Vec<usize>]) -> BTreeSet<usize> {
    let mut by_binary: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let eco = package::ecosystem(e.pkg);
        if matches!(eco, "golang" | "cargo") {
            by_binary.entry((eco, e.path)).or_default().push(i);
        }
    }
    let mut out = BTreeSet::new();
    for members in by_binary.values() {
        for &i in members {
            let depended = members.iter().any(|&j| j != i && edges[j].contains(&i));
            let declares = !edges[i].is_empty();
            if !depended && (declares || members.len() == 1) {
                out.insert(i);
            }
        }
    }
    out
}

fn package_component(
    e: &Entry<'_>,
    bom_ref: String,
    kind: ComponentType,
    spec: SpecVersion,
    input: &SbomInput,
) -> Component {
    let p = e.pkg;
    let eco = package::ecosystem(p);
    let location = format!("/{}", e.path);
    let technique = if matches!(eco, "golang" | "cargo") {
        "binary-analysis"
    } else {
        "manifest-analysis"
    };
    let identity = IdentityItem {
        field: "purl".to_string(),
        confidence: 1.0,
        methods: vec![Method {
            technique: technique.to_string(),
            confidence: 1.0,
            value: Some(location.clone()),
        }],
    };
    let identity = match spec {
        SpecVersion::V1_5 => Identity::One(identity),
        SpecVersion::V1_6 => Identity::Many(vec![identity]),
    };
    let mut properties = vec![
        Property::new("gantry:package:ecosystem", eco),
        Property::new("gantry:package:cataloger", package::cataloger(p)),
    ];
    if let Some(arch) = &p.arch {
        properties.push(Property::new("gantry:package:arch", arch));
    }
    if let Some(source) = &p.source {
        properties.push(Property::new("gantry:package:source", source));
    }
    if let Some(v) = &p.source_version {
        properties.push(Property::new("gantry:package:source_version", v));
    }
    properties.push(Property::new(
        "gantry:layer:index",
        e.layer_index.to_string(),
    ));
    if let Some(digest) = &p.location.layer {
        properties.push(Property::new("gantry:layer:digest", digest));
    }
    if let Some(diff_id) = input
        .image
        .layers
        .iter()
        .find(|l| l.index as u64 == e.layer_index)
        .and_then(|l| l.diff_id.as_ref())
    {
        properties.push(Property::new("gantry:layer:diff_id", diff_id.to_string()));
    }
    Component {
        bom_ref: Some(bom_ref),
        group: e.group.clone(),
        version: Some(p.version.clone()).filter(|v| !v.is_empty()),
        licenses: license::licenses(package::licenses(p)),
        purl: Some(e.purl.clone()),
        evidence: Some(Evidence {
            identity: Some(identity),
            occurrences: vec![Occurrence { location }],
        }),
        properties,
        ..Component::new(kind, &e.name)
    }
}

/// Unknowns about a file of the final filesystem: `file` components, so a consumer sees which
/// package metadata Gantry could not read.
fn unknown_components(input: &SbomInput) -> Vec<Component> {
    input
        .unknowns
        .iter()
        .filter(|u| !u.deleted && !u.path.is_empty())
        .map(|u| {
            let location = format!("/{}", u.path);
            Component {
                bom_ref: Some(format!("unknown:{}:{location}", u.analyzer)),
                evidence: Some(Evidence {
                    identity: None,
                    occurrences: vec![Occurrence {
                        location: location.clone(),
                    }],
                }),
                properties: vec![
                    Property::new("gantry:unknown:analyzer", &u.analyzer),
                    Property::new("gantry:unknown:reason", &u.reason),
                    Property::new("gantry:layer:index", u.layer_index.to_string()),
                    Property::new("gantry:layer:digest", &u.layer),
                ],
                ..Component::new(ComponentType::File, location)
            }
        })
        .collect()
}

/// Unknowns about a whole layer: document properties.
fn layer_unknowns(input: &SbomInput) -> Vec<Property> {
    input
        .unknowns
        .iter()
        .filter(|u| u.path.is_empty())
        .map(|u| {
            Property::new(
                "gantry:unknown",
                format!(
                    "layer {} ({}): {}: {}",
                    u.layer_index, u.layer, u.analyzer, u.reason
                ),
            )
        })
        .collect()
}

/// Makes `candidate` unique among `taken`: `REF`, then `REF|2`, `REF|3`… (`|` never occurs in
/// a canonical purl, so a suffixed reference cannot be mistaken for another package's).
fn unique_ref(candidate: String, taken: &mut HashMap<String, usize>) -> String {
    let n = taken.entry(candidate.clone()).or_insert(0);
    *n += 1;
    if *n == 1 {
        candidate
    } else {
        let suffixed = format!("{candidate}|{n}");
        taken.insert(suffixed.clone(), 1);
        suffixed
    }
}

fn components(
    input: &SbomInput,
    spec: SpecVersion,
    image: &Component,
) -> (Vec<Component>, Vec<Dependency>) {
    let mut entries: Vec<Entry<'_>> = input.packages.iter().map(|p| entry(p, input)).collect();
    entries.sort_by(|a, b| {
        (&a.purl, &a.name, &a.pkg.version, a.path, a.layer_index).cmp(&(
            &b.purl,
            &b.name,
            &b.pkg.version,
            b.path,
            b.layer_index,
        ))
    });
    let mut taken: HashMap<String, usize> = HashMap::new();
    for reserved in [image.bom_ref.clone()].into_iter().flatten() {
        taken.insert(reserved, 1);
    }
    let os = os_component(input);
    if let Some(r) = os.as_ref().and_then(|o| o.bom_ref.clone()) {
        taken.insert(r, 1);
    }
    let refs: Vec<String> = entries
        .iter()
        .map(|e| unique_ref(e.purl.clone(), &mut taken))
        .collect();

    let nodes: Vec<deps::Node<'_>> = entries
        .iter()
        .map(|e| deps::Node {
            ecosystem: package::ecosystem(e.pkg),
            name: e.full_name.clone(),
            path: e.path,
            dependencies: package::dependencies(e.pkg),
        })
        .collect();
    let edges = deps::resolve(&nodes);
    let apps = applications(&entries, &edges);

    let mut components: Vec<Component> = Vec::new();
    let mut dependencies: Vec<Dependency> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let kind = if apps.contains(&i) {
            ComponentType::Application
        } else {
            ComponentType::Library
        };
        components.push(package_component(e, refs[i].clone(), kind, spec, input));
        dependencies.push(Dependency {
            bom_ref: refs[i].clone(),
            depends_on: edges[i].iter().map(|&j| refs[j].clone()).collect(),
        });
    }

    // The image depends on the OS (which depends on every OS package) and on the language
    // packages nothing else depends on (Trivy's graph; see docs/sbom.md).
    let (os_members, app_members): (Vec<usize>, Vec<usize>) =
        (0..entries.len()).partition(|&i| package::is_os_package(entries[i].pkg));
    let mut image_deps: Vec<String> = deps::roots(&edges, &app_members)
        .into_iter()
        .map(|i| refs[i].clone())
        .collect();
    let os_deps: Vec<String> = os_members.iter().map(|&i| refs[i].clone()).collect();
    match &os {
        Some(os) => {
            let os_ref = os.bom_ref.clone().unwrap_or_default();
            image_deps.push(os_ref.clone());
            dependencies.push(Dependency {
                bom_ref: os_ref,
                depends_on: os_deps,
            });
            components.push(os.clone());
        }
        None => image_deps.extend(os_deps),
    }
    if let Some(image_ref) = &image.bom_ref {
        dependencies.push(Dependency {
            bom_ref: image_ref.clone(),
            depends_on: image_deps,
        });
    }

    for mut c in unknown_components(input) {
        let r = c.bom_ref.take().unwrap_or_default();
        c.bom_ref = Some(unique_ref(r, &mut taken));
        components.push(c);
    }

    components.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    for d in &mut dependencies {
        d.depends_on.sort();
        d.depends_on.dedup();
    }
    dependencies.sort();
    (components, dependencies)
}

fn sort_key(c: &Component) -> (&str, &str, &str, &str, &str) {
    (
        c.purl.as_deref().unwrap_or(""),
        &c.name,
        c.version.as_deref().unwrap_or(""),
        c.evidence
            .as_ref()
            .and_then(|e| e.occurrences.first())
            .map_or("", |o| o.location.as_str()),
        c.bom_ref.as_deref().unwrap_or(""),
    )
}
