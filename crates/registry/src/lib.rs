//! gantry-registry: Where images come from: registries (oci-client), OCI layouts, oci-archive and docker-archive, behind one trait.
