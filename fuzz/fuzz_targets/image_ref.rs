#![no_main]
// See gantry_fuzz::image_ref for what the input is.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry_fuzz::image_ref(data));
