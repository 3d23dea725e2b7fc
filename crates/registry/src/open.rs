//! The `open()` factory: a [`SourceRef`] to the backend that reads it. Apart from the
//! [`ImageSource`] trait and its types (`source.rs`) so the backends (`remote`, `layout`,
//! `docker_archive`) import the trait without the trait's module importing them back.

use std::sync::Arc;

use crate::docker_archive::DockerArchiveSource;
use crate::error::RegistryError;
use crate::layout::LayoutSource;
use crate::local::{DirStore, TarStore};
use crate::remote::RegistrySource;
use crate::source::{ImageSource, SourceOptions, SourceRef};

/// Opens a source: connects and authenticates to a registry (after checking it against
/// `opts.egress`), or indexes a local layout or archive. Nothing is downloaded yet.
pub async fn open(
    source: &SourceRef,
    opts: &SourceOptions,
) -> Result<Arc<dyn ImageSource>, RegistryError> {
    let describe = source.to_string();
    Ok(match source {
        SourceRef::Registry(image) => Arc::new(RegistrySource::connect(image, opts).await?),
        SourceRef::OciLayout { dir, tag } => {
            let store = DirStore::open(dir).await?;
            Arc::new(LayoutSource::open(store, tag.as_deref(), describe, &opts.limits).await?)
        }
        SourceRef::OciArchive { file, tag } => {
            let store = TarStore::open(file).await?;
            Arc::new(LayoutSource::open(store, tag.as_deref(), describe, &opts.limits).await?)
        }
        SourceRef::DockerArchive { file, reference } => {
            let store = TarStore::open(file).await?;
            Arc::new(
                DockerArchiveSource::open(store, reference.as_deref(), describe, &opts.limits)
                    .await?,
            )
        }
    })
}
