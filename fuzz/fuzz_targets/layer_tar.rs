#![no_main]
// See gantry_fuzz::layer_tar for what the input is.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry_fuzz::layer_tar(data));
