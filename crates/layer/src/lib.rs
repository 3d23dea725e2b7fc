//! gantry-layer: One streaming pass over one layer blob: digest check, decompression, bounded tar walk, whiteouts.
