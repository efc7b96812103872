use std::fmt;

use super::RegionError;

/// A region's name, as AWS writes region names: lowercase letters, digits and dashes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RegionName(String);

/// The name a vault has until its owner chooses one.
pub const DEFAULT_REGION: &str = "local-1";

impl RegionName {
    pub fn parse(name: &str) -> Result<Self, RegionError> {
        let valid = (1..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(RegionName(name.to_owned()))
        } else {
            Err(RegionError::InvalidName {
                name: name.chars().take(64).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Where a peer's daemon listens: `https://HOST:PORT`, nothing more. The host is only
/// where to connect; who answers is decided by the pinned fingerprint, not by the name.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PeerUrl {
    text: String,
    host: String,
    port: u16,
}

impl PeerUrl {
    pub fn parse(url: &str) -> Result<Self, RegionError> {
        let invalid = |reason| RegionError::InvalidUrl {
            url: url.chars().take(200).collect(),
            reason,
        };
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| invalid("it must start with https:// (peers only talk over TLS)"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(invalid(
                "give only https://HOST:PORT, with no path, query or user",
            ));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("an IPv6 address needs its closing ]"))?;
            host.parse::<std::net::Ipv6Addr>()
                .map_err(|_| invalid("the part in [ ] is not an IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| invalid("it needs a port, as in https://[::1]:7443"))?;
            (host.to_owned(), port)
        } else {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| invalid("it needs a port, as in https://HOST:7443"))?;
            let host_ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !host_ok {
                return Err(invalid("the host is not a name or an IPv4 address"));
            }
            (host.to_ascii_lowercase(), port)
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))?;
        let text = if host.contains(':') {
            format!("https://[{host}]:{port}")
        } else {
            format!("https://{host}:{port}")
        };
        Ok(PeerUrl { text, host, port })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_follow_aws_style() {
        for good in ["local-1", "eu-home-1", "a", "us-east-1"] {
            RegionName::parse(good).unwrap();
        }
        for bad in [
            "",
            "EU",
            "1eu",
            "eu-",
            "eu_home",
            "eu home",
            &"a".repeat(33),
        ] {
            assert!(RegionName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn peer_urls_are_https_host_and_port_only() {
        let url = PeerUrl::parse("https://Peer.Example:7443/").unwrap();
        assert_eq!((url.host(), url.port()), ("peer.example", 7443));
        assert_eq!(url.as_str(), "https://peer.example:7443");
        let v6 = PeerUrl::parse("https://[::1]:9").unwrap();
        assert_eq!((v6.host(), v6.as_str()), ("::1", "https://[::1]:9"));
        for (bad, says) in [
            ("http://127.0.0.1:7443", "https://"),
            ("https://127.0.0.1", "port"),
            ("https://127.0.0.1:0", "1 to 65535"),
            ("https://127.0.0.1:99999", "1 to 65535"),
            ("https://127.0.0.1:7443/path", "no path"),
            ("https://user@host:1", "no path"),
            ("https://[zz]:1", "IPv6"),
            ("https://ho st:1", "host"),
        ] {
            let message = PeerUrl::parse(bad).unwrap_err().to_string();
            assert!(message.contains(says), "{bad}: {message}");
        }
    }
}
