//! Length-prefixed JSON frames: a 4-byte big-endian length, then that many bytes.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

/// Larger frames are refused: no legitimate request or response comes near it (values are
/// at most 64 KiB, pages at most 1000 rows).
pub const MAX_FRAME: usize = 8 * 1024 * 1024;

/// Counts what would be written, so the real buffer can be sized once.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serializes into a buffer of exactly the right size: a growing `Vec` would leave
/// unwiped copies of the values and PINs in the frame at each reallocation.
fn encode<T: Serialize>(message: &T) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, message).map_err(io::Error::other)?;
    let mut body = Zeroizing::new(Vec::with_capacity(counter.0));
    serde_json::to_writer(&mut *body, message).map_err(io::Error::other)?;
    Ok(body)
}

pub fn write<T: Serialize>(stream: &mut impl Write, message: &T) -> io::Result<()> {
    let body = encode(message)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    stream.write_all(&(body.len() as u32).to_be_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

/// Reads one frame; `Ok(None)` when the peer closed the connection cleanly.
pub fn read<T: DeserializeOwned>(stream: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    stream.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_encoded_without_reallocating() {
        let message = serde_json::json!({"value": "x".repeat(70_000), "n": [1, 2, 3]});
        let body = encode(&message).unwrap();
        assert_eq!(body.capacity(), body.len(), "sized once, never grown");
        let mut wire = Vec::new();
        write(&mut wire, &message).unwrap();
        let back: serde_json::Value = read(&mut wire.as_slice()).unwrap().unwrap();
        assert_eq!(back, message);
    }
}
