//! A deadline for TPMs reached over TCP (`swtpm:` and `mssim:` TCTIs).
//!
//! Those TCTIs wait for a response forever, and tss-esapi 7 offers no way to set ESAPI's
//! timeout or reach the socket. Something that accepts the connection but never answers
//! (a stuck simulator, a wrong port, an interposer that stalls) would hang every Coffer
//! process. So before the TCTI opens, the endpoint gets one harmless command
//! (TPM2_GetCapability) in the TCTI's wire protocol (raw TPM commands for swtpm, the
//! Microsoft simulator's framing for mssim), and must start answering within
//! [`answer_timeout`]. Devices (`/dev/tpmrm0`) are covered by the kernel's own timeouts.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::TpmError;

/// How long a TPM over TCP may take to start answering, from `COFFER_TPM_TIMEOUT_MS`.
pub fn answer_timeout() -> Duration {
    std::env::var("COFFER_TPM_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_ANSWER_TIMEOUT)
}

pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The host and command port of a `swtpm:`/`mssim:` TCTI string (their defaults:
/// localhost, 2321), and whether it uses the Microsoft simulator's framing; `None` for
/// other TCTIs.
fn endpoint(tcti: &str) -> Option<(String, u16, bool)> {
    let (conf, framed) = match tcti.strip_prefix("swtpm") {
        Some(conf) => (conf, false),
        None => (tcti.strip_prefix("mssim")?, true),
    };
    let conf = conf.strip_prefix(':').unwrap_or(conf);
    let mut host = "localhost".to_owned();
    let mut port = 2321u16;
    for part in conf.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("host", h)) => host = h.to_owned(),
            Some(("port", p)) => port = p.parse().ok()?,
            _ => {}
        }
    }
    Some((host, port, framed))
}

/// MS simulator protocol: TPM_SEND_COMMAND, locality 0, then the command's size.
const SEND_COMMAND: u32 = 8;
/// MS simulator protocol: the client is done.
const SESSION_END: u32 = 20;
/// TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES, TPM_PT_FAMILY_INDICATOR, 1).
const GET_CAPABILITY: [u8; 22] = [
    0x80, 0x01, // TPM_ST_NO_SESSIONS
    0x00, 0x00, 0x00, 0x16, // size 22
    0x00, 0x00, 0x01, 0x7a, // TPM_CC_GetCapability
    0x00, 0x00, 0x00, 0x06, // TPM_CAP_TPM_PROPERTIES
    0x00, 0x00, 0x01, 0x00, // TPM_PT_FAMILY_INDICATOR
    0x00, 0x00, 0x00, 0x01, // one property
];

/// Checks that the TPM behind a TCP TCTI answers within the deadline. Other TCTIs pass.
/// A refused connection passes too: opening the TCTI reports that as unreachable.
pub fn check_answers(tcti: &str) -> Result<(), TpmError> {
    check_answers_within(tcti, answer_timeout())
}

fn check_answers_within(tcti: &str, timeout: Duration) -> Result<(), TpmError> {
    let Some((host, port, framed)) = endpoint(tcti) else {
        return Ok(());
    };
    let no_answer = || TpmError::NoAnswer {
        tcti: tcti.to_owned(),
        millis: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let Some(addr) = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return Ok(());
    };
    let started = Instant::now();
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return Ok(());
    };
    let remaining = timeout.saturating_sub(started.elapsed());
    if remaining.is_zero()
        || stream.set_read_timeout(Some(remaining)).is_err()
        || stream.set_write_timeout(Some(remaining)).is_err()
    {
        return Err(no_answer());
    }
    let mut request = Vec::with_capacity(9 + GET_CAPABILITY.len());
    if framed {
        request.extend_from_slice(&SEND_COMMAND.to_be_bytes());
        request.push(0);
        request.extend_from_slice(&(GET_CAPABILITY.len() as u32).to_be_bytes());
    }
    request.extend_from_slice(&GET_CAPABILITY);
    if stream.write_all(&request).is_err() {
        return Err(no_answer());
    }
    // The response starts with its size: in the framing's first 4 bytes, or in bytes 2..6
    // of the raw TPM response header.
    let mut head = [0u8; 10];
    let head = if framed {
        &mut head[..4]
    } else {
        &mut head[..]
    };
    if stream.read_exact(head).is_err() {
        return Err(no_answer());
    }
    let size = if framed {
        u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize + 4
    } else {
        (u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize).saturating_sub(10)
    };
    // Read the rest so the simulator sees a complete exchange. Best effort: it answered.
    let mut rest = vec![0u8; size.min(4096)];
    let _ = stream.read_exact(&mut rest);
    if framed {
        let _ = stream.write_all(&SESSION_END.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_tcp_tctis() {
        assert_eq!(
            endpoint("swtpm:host=127.0.0.1,port=4000"),
            Some(("127.0.0.1".to_owned(), 4000, false))
        );
        assert_eq!(
            endpoint("mssim:"),
            Some(("localhost".to_owned(), 2321, true))
        );
        assert_eq!(
            endpoint("swtpm"),
            Some(("localhost".to_owned(), 2321, false))
        );
        assert_eq!(endpoint("device:/dev/tpmrm0"), None);
        assert_eq!(endpoint("swtpm:port=x"), None);
    }

    #[test]
    fn a_listener_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(Duration::from_secs(30));
            drop(conn);
        });
        let started = Instant::now();
        let result = check_answers_within(
            &format!("swtpm:host=127.0.0.1,port={port}"),
            Duration::from_millis(300),
        );
        assert!(
            matches!(result, Err(TpmError::NoAnswer { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
