#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::scim::scim_patch(data));
