#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::eap::eap_tls(data));
