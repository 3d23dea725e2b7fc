//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md): the admission handler's
//! parsing steps, which are private to it, run in the order the handler runs them. Not an API:
//! hidden from the docs, changed whenever the handler changes.

use std::time::Duration;

use gantry_model::ImageRef;
use kube_core::admission::AdmissionResponse;

use crate::admission::{budget_of, images::images_of, parse_review};
use crate::config::AdmissionConfig;

/// A `POST /admission` body up to the first lookup: `parse_review`, the object as JSON, the
/// images of its pod spec (every workload kind), each image as a reference; then the response
/// envelope for it, serialised as the handler answers.
pub fn admission_review(body: &[u8]) {
    let Ok(request) = parse_review(body) else {
        return;
    };
    let answer = AdmissionResponse::from(&request).into_review();
    let _ = serde_json::to_vec(&answer);
    let Some(object) = &request.object else {
        return;
    };
    let Ok(value) = serde_json::to_value(object) else {
        return;
    };
    if let Ok(pod) = images_of(request.kind.kind.as_str(), &value) {
        for image in &pod.uses {
            let _ = image.image.parse::<ImageRef>();
        }
    }
}

/// The judging budget for a `?timeout=` value, under the default `[admission]` settings.
pub fn admission_budget(timeout: Option<&str>) -> Duration {
    let defaults = AdmissionConfig::default();
    budget_of(timeout, defaults.default_timeout, defaults.safety_margin)
}
