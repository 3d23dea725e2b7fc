//! gantry-analyze's integration tests: real layers built by gantry-testkit, walked by
//! gantry-layer's walker with the built-in analyzers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod caps;
mod catalogers;
mod craft;
mod crosscheck;
mod dispatch;
mod facts;
mod practices;
mod purl_spec;
mod runc_user;

use gantry_analyze::facts::{FileFacts, LayerFacts, derive_facts};
use gantry_analyze::{AnalyzerSet, LayerReport, Package, final_packages, squash};
use gantry_layer::{LayerSpec, Limits, walk_layer};
use gantry_model::Digest;
use gantry_model::oci::{ContainerConfig, History};
use gantry_testkit::LayerBuilder;

/// Walks one layer with the built-in analyzers.
pub fn walk(layer: LayerBuilder) -> LayerReport {
    walk_built(layer).1
}

fn walk_built(layer: LayerBuilder) -> (Digest, LayerReport) {
    let compression = layer.compression();
    let built = layer.build().unwrap();
    let set = AnalyzerSet::builtin().unwrap();
    let mut dispatcher = set.dispatcher();
    let spec = LayerSpec {
        digest: built.digest.clone(),
        diff_id: Some(built.diff_id.clone()),
        compression,
    };
    walk_layer(
        built.blob().reader().unwrap(),
        &spec,
        &Limits::default(),
        &mut dispatcher,
    )
    .unwrap();
    (built.digest.clone(), dispatcher.finish())
}

/// An image's walked layers, base first.
#[derive(Debug)]
pub struct Image {
    pub digests: Vec<Digest>,
    pub reports: Vec<LayerReport>,
}

impl Image {
    pub fn new(layers: Vec<LayerBuilder>) -> Image {
        let (digests, reports) = layers.into_iter().map(walk_built).unzip();
        Image { digests, reports }
    }

    /// The layer digest of layer `i`, as facts report it.
    pub fn layer(&self, i: usize) -> String {
        self.digests[i].to_string()
    }

    fn layer_facts(&self) -> Vec<LayerFacts<'_>> {
        self.digests
            .iter()
            .zip(&self.reports)
            .enumerate()
            .map(|(index, (digest, report))| LayerFacts {
                index,
                digest,
                report,
            })
            .collect()
    }

    pub fn facts(&self, config: &ContainerConfig, history: &[History]) -> FileFacts {
        let fs = squash(&self.reports);
        derive_facts(&self.layer_facts(), &fs, config, history)
    }

    /// The packages of the final filesystem.
    pub fn packages(&self) -> Vec<Package> {
        final_packages(&self.layer_facts(), &squash(&self.reports))
    }

    pub fn facts_as(&self, user: &str) -> FileFacts {
        self.facts(
            &ContainerConfig {
                user: user.to_string(),
                ..ContainerConfig::default()
            },
            &[],
        )
    }
}
