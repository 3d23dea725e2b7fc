/// Hostile-input limits for one layer walk.
///
/// A layer is attacker-controlled input: anyone who can push to a watched repository can
/// hand Gantry any bytes. Each limit bounds one cost where the data enters; the defaults are
/// set well above what real images need, so only hostile or broken layers hit them.
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
        }
    }
}
