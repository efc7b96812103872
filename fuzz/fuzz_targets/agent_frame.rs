//! What a client sends the agent: any bytes give a request, a clean end or an error,
//! never a panic or an allocation beyond the frame limit.
#![no_main]

use coffer_core::agent::frame;
use coffer_core::service::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    for _ in 0..4 {
        match frame::read::<Request>(&mut input) {
            Ok(Some(request)) => {
                // What parsed can be written back as a frame.
                let mut out = Vec::new();
                frame::write(&mut out, &request).expect("a request re-encodes");
            }
            Ok(None) | Err(_) => break,
        }
    }
});
