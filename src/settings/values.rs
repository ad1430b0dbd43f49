//! How setting values are read and shown: durations as people write them, proxy lists from
//! TOML or the environment, and secrets redacted (`config check` serializes the settings).

use std::time::Duration;

use serde::Serializer;

use crate::domain::secret::Secret;

/// Durations as people write them: `15m`, `14d`, `1h30m` in, the same out (`90d`, never
/// "2months 29days 2h 52m 48s").
pub(super) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}); use e.g. 15m, 14d, 10s"
            ))
        })
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::compact_duration(*d))
    }
}

/// A duration in days, hours, minutes, seconds and milliseconds, largest first, zero parts
/// left out: `90d`, `1h30m`, `0s`. `humantime` reads it back to the same value.
pub fn compact_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// `server.trusted_proxies`: a TOML list, or one string of addresses and ranges separated by
/// spaces or commas (the environment has no lists); a bare address is a range of one.
pub(super) mod proxies {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        List(Vec<String>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        let items: Vec<String> = match Given::deserialize(d)? {
            Given::Text(text) => text.split([' ', ',']).map(str::to_owned).collect(),
            Given::List(list) => list,
        };
        items
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        serde::de::Error::custom(format!("`{s}` is not an address or CIDR range"))
                    })
            })
            .collect()
    }

    pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nets.iter().map(ToString::to_string))
    }
}

pub(super) fn issuer_text<S: Serializer>(issuer: &url::Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(issuer.as_str().trim_end_matches('/'))
}

pub(super) fn redacted_url<S: Serializer>(url: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url.expose()))
}

/// A database URL with its password (in the user part or the query) replaced.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "REDACTED (not a URL)".to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("REDACTED"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let secret = matches!(k.as_ref(), "password" | "pass" | "sslpassword");
                let v = if secret {
                    "REDACTED".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_people_write_them_and_read_back() {
        for (secs, text) in [
            (0, "0s"),
            (5, "5s"),
            (60, "1m"),
            (15 * 60, "15m"),
            (5400, "1h30m"),
            (90 * 86_400, "90d"),
            (86_400 + 1, "1d1s"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(compact_duration(d), text);
            assert_eq!(humantime::parse_duration(text).unwrap(), d);
        }
        assert_eq!(compact_duration(Duration::from_millis(1500)), "1s500ms");
    }

    #[test]
    fn database_urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db?sslpassword=x&sslmode=require"),
            "postgres://u:REDACTED@h:5432/db?sslpassword=REDACTED&sslmode=require"
        );
        assert_eq!(
            redact_url("sqlite://data/tessera.db"),
            "sqlite://data/tessera.db"
        );
    }
}
