//! Length-prefixed JSON frames: a 4-byte big-endian length, then that many bytes.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

/// Larger frames are refused: no legitimate request or response comes near it (values are
/// at most 64 KiB, pages at most 1000 rows).
pub const MAX_FRAME: usize = 8 * 1024 * 1024;

pub fn write<T: Serialize>(stream: &mut impl Write, message: &T) -> io::Result<()> {
    let body = Zeroizing::new(serde_json::to_vec(message).map_err(io::Error::other)?);
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
