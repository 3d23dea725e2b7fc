/// Hostile-input limits for walking an image's layers.
///
/// A layer is attacker-controlled input: anyone who can push to a watched repository can
/// hand Gantry any bytes. Each limit bounds one cost where the data enters; the defaults are
/// set well above what real images need, so only hostile or broken layers hit them.
///
/// Most fields bound the walk itself (this crate). The record caps (`max_layer_*`,
/// `max_image_*`) and [`analyzer_memory_bytes`](Self::analyzer_memory_bytes) bound what the
/// entry sink fed by the walks keeps and allocates — `gantry-analyze` enforces them, for
/// each walk and across the walks of one image. They live here, with the walk's limits, so
/// that one value carries every limit of a scan by its documented name (docs/limits.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest blob (compressed bytes) read. Default 16 GiB.
    ///
    /// The largest layers seen in public registries (CUDA and ML toolchains, model weights
    /// baked into images) are a few GiB compressed; 16 GiB leaves room for those while
    /// bounding the download and hashing time of a single layer.
    pub max_compressed_bytes: u64,
    /// Largest decompressed tar stream. Default 64 GiB.
    ///
    /// Real layers compress 2–4× with gzip, so 4× the compressed limit admits any layer the
    /// compressed limit admits; at the measured 0.35–0.5 GB/s of a gzip or zstd walk it bounds
    /// one layer to two or three minutes of CPU.
    pub max_uncompressed_bytes: u64,
    /// Largest uncompressed/compressed ratio. Default 250.
    ///
    /// Whole layers rarely exceed ~20:1 even when full of zero-padded files, while gzip
    /// reaches ~1000:1 on zeros and zstd far more. Checked continuously while streaming, so a
    /// bomb is stopped after at most [`ratio_floor_bytes`](Self::ratio_floor_bytes) plus one
    /// buffer of output, instead of after [`max_uncompressed_bytes`](Self::max_uncompressed_bytes).
    pub max_ratio: u64,
    /// The ratio is only enforced once the uncompressed stream is larger than this.
    /// Default 256 MiB.
    ///
    /// Small layers can be legitimately extreme (one sparse 100 MiB file of zeros compresses
    /// to kilobytes); below this size a high ratio costs little, so it is allowed.
    pub ratio_floor_bytes: u64,
    /// Most tar entries (files, directories, links, whiteouts; not PAX/GNU meta headers).
    /// Default 2,000,000.
    ///
    /// Full distribution layers and `node_modules`-heavy application layers have a few
    /// hundred thousand entries; the limit bounds per-entry work and the size of what the
    /// sink builds per entry (layer reports, file lists).
    pub max_entries: u64,
    /// Largest body of one PAX (`x`/`g`) or GNU long-name/long-link (`L`/`K`) header, which
    /// must be held in memory. Default 1 MiB.
    ///
    /// Those bodies carry paths (at most [`max_path_bytes`](Self::max_path_bytes)), link
    /// targets and xattrs (a Linux xattr value is at most 64 KiB). 1 MiB is also the limit of
    /// Go's `archive/tar` (`maxSpecialFileSize`), which containerd and Docker use to unpack
    /// layers, so anything the runtime accepts is accepted here.
    pub max_extension_bytes: u64,
    /// Longest entry path or link target, in bytes. Default 4096.
    ///
    /// Linux `PATH_MAX`: the runtime cannot create a longer path when it unpacks the layer.
    pub max_path_bytes: usize,
    /// Largest zstd window accepted, as a power of two. Default 23 (8 MiB).
    ///
    /// A zstd frame names the window its decoder must allocate, up to 2^31 bytes (libzstd
    /// accepts 2^27 by default); the window is the largest single allocation of a walk.
    /// RFC 8878 recommends decoders support windows up to 8 MiB; zstd levels 1–19 and the
    /// Go encoder BuildKit and containerd use (8 MiB window) stay within 2^23. Only
    /// `zstd --long` or `--ultra` layers ask for more; raise this to 27 to accept them.
    pub zstd_window_log_max: u32,
    /// Packages kept from one layer, every ecosystem together. Default 50,000.
    ///
    /// A full Debian desktop has about 4,000 dpkg packages, a large `node_modules` a few
    /// thousand npm ones; ten times the largest real layer. Each package costs about 1 KiB
    /// through the report, the policy input and the SBOM.
    pub max_layer_packages: u64,
    /// File records kept from one layer: tar entries and whiteouts, plus the paths that
    /// package databases list (dpkg `.list`, rpm, apk and Python file lists). Default
    /// 4,000,000: twice [`max_entries`](Self::max_entries), as every entry of a layer may be
    /// listed once more by its package database. About 150 bytes each.
    pub max_layer_files: u64,
    /// Findings kept from one layer: secrets and unknowns (files an analyzer could not
    /// read). Default 10,000: real layers have a few; a layer of thousands of unreadable
    /// manifests is hostile or broken, and says so well before this.
    pub max_layer_findings: u64,
    /// Packages kept from all layers of one image. Default 100,000: every `apt-get
    /// install` layer repeats the whole dpkg database, so an image counts its base's
    /// packages once per such layer.
    pub max_image_packages: u64,
    /// File records kept from all layers of one image. Default 4,000,000 (one layer at
    /// [`max_layer_files`](Self::max_layer_files)); bounds the squashed filesystem too.
    pub max_image_files: u64,
    /// Findings kept from all layers of one image. Default 20,000.
    pub max_image_findings: u64,
    /// Bytes the analyzers' large buffers may hold at once, across every layer walk of
    /// the process that shares a scanner (parallel layers and `serve` workers). Default
    /// 512 MiB.
    ///
    /// Buffers of more than 1 MiB — a package database, a Java archive and the archives
    /// nested in it, an rpm database and SQLite's copy of it — are reserved here before
    /// they are read; a walk whose file does not fit waits for others to finish theirs.
    /// 512 MiB lets four of the largest files (64 MiB, held twice by the rpm reader) be
    /// read at once; one file larger than the whole budget waits for all of it.
    pub analyzer_memory_bytes: u64,
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_compressed_bytes: 16 * GIB,
            max_uncompressed_bytes: 64 * GIB,
            max_ratio: 250,
            ratio_floor_bytes: 256 * MIB,
            max_entries: 2_000_000,
            max_extension_bytes: MIB,
            max_path_bytes: 4096,
            zstd_window_log_max: 23,
            max_layer_packages: 50_000,
            max_layer_files: 4_000_000,
            max_layer_findings: 10_000,
            max_image_packages: 100_000,
            max_image_files: 4_000_000,
            max_image_findings: 20_000,
            analyzer_memory_bytes: 512 * MIB,
        }
    }
}
