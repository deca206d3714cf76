//! Fuzz target: the ws_frame decoder never panics, and what it accepts survives a round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        chat_transport::fuzzing::ws_frame(text);
    }
});
