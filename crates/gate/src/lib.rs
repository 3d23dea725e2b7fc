//! gantry-gate: the use case "a verdict for this image".
//!
//! Scans an image (gantry-scan), derives the facts policies need — from the files
//! (gantry-analyze), the base image (annotations, labels, BuildKit provenance) and the sizes
//! — builds the versioned policy input document (docs/policies/input.md) and evaluates the
//! policy bundle (gantry-policy). The CLI's `gantry scan` and, later, the webhook receiver and
//! the admission webhook all come through here, so all three judge an image the same way.

pub mod base;
mod check;
mod dockerfile;
pub mod input;
pub mod size;

pub use base::{BaseEvidence, BaseFacts, base_facts};
pub use check::{Checked, Facts, Gate, GateError, ImageReport, InputDocument, build_input};
pub use input::{
    BaseFreshness, ConfigInfo, Context, HistoryStep, INPUT_VERSION, ImageInfo, LayerInfo,
};
pub use size::{SizeFacts, size_facts};
