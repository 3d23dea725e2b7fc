# syntax=docker/dockerfile:1
#
# Gantry's image for users with Docker (BuildKit):
#
#   docker build -t registry.example.com/platform/gantry:0.1.0 \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     --build-arg REVISION=$(git rev-parse --short=12 HEAD) .
#
# The final stage matches what scripts/image.sh builds without a daemon (the project's own
# path, and the one its tests check): FROM scratch, the same files — written by the same tool,
# gantry-imagebuild --rootfs: the binary, exactly the shared libraries `ldd` resolves plus the
# loader, the CA bundle, /etc/passwd and /etc/group with nonroot 65532, dpkg records of their
# Debian packages — USER 65532:65532, no shell, the same labels. This file is not built in
# this repository's CI (no Docker daemon there); keep it in step with crates/imagebuild.
#
# The build stage's base is named by tag: pin it by digest for your builds
# (`docker buildx imagetools inspect rust:1.95-bookworm` prints it) — the digest is not written
# here because none could be verified where this file was written. The final stage is FROM
# scratch, so there is no base to pin.

ARG RUST_IMAGE=rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
# ca-certificates: the bundle the image ships; binutils: objcopy to strip debug info.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates binutils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG SOURCE_DATE_EPOCH=0
ARG REVISION=unknown
ARG VERSION=0.1.0
ENV SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH} GANTRY_GIT_REVISION=${REVISION}
# cargo auditable records the crates compiled in (.dep-v0), so the image's SBOM lists them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo install --locked cargo-auditable \
 && RUSTFLAGS="--remap-path-prefix=/src=/gantry --remap-path-prefix=/usr/local/cargo=/cargo" \
    cargo auditable build --release --locked --bin gantry \
 && cargo build --release --locked -p gantry-imagebuild \
 && objcopy --strip-debug target/release/gantry /gantry \
 && target/release/gantry-imagebuild --binary /gantry --rootfs /rootfs \
      --version "${VERSION}" --revision "${REVISION}"

FROM scratch
ARG SOURCE_DATE_EPOCH=0
ARG REVISION=unknown
ARG VERSION=0.1.0
ARG SOURCE=""
ARG CREATED=""
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /rootfs/home/nonroot /home/nonroot
LABEL org.opencontainers.image.title="gantry" \
      org.opencontainers.image.description="Gate between a container registry and the clusters that run its images" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.created="${CREATED}"
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/gantry"]
CMD ["serve"]
