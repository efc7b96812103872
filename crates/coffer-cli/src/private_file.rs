//! The engine's private files (`coffer_core::private_file`), with their errors as the
//! CLI reports them.

use std::path::Path;

use crate::failure::Failure;

pub fn write(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    coffer_core::private_file::write(path, contents).map_err(|e| Failure::usage(e.to_string()))
}

pub fn read_text(path: &Path, what: &str, max: usize) -> Result<String, Failure> {
    coffer_core::private_file::read_text(path, what, max).map_err(|e| Failure::usage(e.to_string()))
}
