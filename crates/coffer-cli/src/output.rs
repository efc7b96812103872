//! Rendering engine results as tables for people or JSON for scripts.

use std::io::Write;

use serde::Serialize;

use crate::cli::Output;
use crate::failure::Failure;

/// Prints `value` as pretty JSON, or through `table` for people.
pub fn render<T: Serialize>(
    output: Output,
    value: &T,
    table: impl FnOnce(&T, &mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match output {
        Output::Json => serde_json::to_writer_pretty(&mut out, value)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
        Output::Table => table(value, &mut out),
    };
    finish(written.and_then(|()| out.flush()))
}

/// Writes raw bytes (a secret value) to stdout.
pub fn raw(bytes: &[u8], newline_if_terminal: bool) -> Result<(), Failure> {
    use std::io::IsTerminal;
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    let written = out
        .write_all(bytes)
        .and_then(|()| {
            if newline_if_terminal && terminal && !bytes.ends_with(b"\n") {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    finish(written)
}

/// A reader that went away (`coffer … | head`) is not an error worth a message.
pub(crate) fn finish(written: std::io::Result<()>) -> Result<(), Failure> {
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure {
            message: format!("cannot write the output: {e}"),
            code: crate::failure::exit::FAILURE,
        }),
    }
}

/// A simple left-aligned table with a header row.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(
        out,
        "{}",
        line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
    )?;
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

/// `key: value` lines.
pub fn fields(out: &mut dyn Write, fields: &[(&str, String)]) -> std::io::Result<()> {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        writeln!(
            out,
            "{:<width$}  {value}",
            format!("{key}:"),
            width = width + 1
        )?;
    }
    Ok(())
}
