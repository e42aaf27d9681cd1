//! Enrichment: a location from an IP address (a MaxMind-format `.mmdb` file, when one is
//! configured) and a device from a user agent.

use std::net::IpAddr;
use std::path::Path;

use serde_json::{Map, Value};

/// Looks up locations and devices. Without a GeoIP database, locations are off.
pub struct Enricher {
    geoip: Option<maxminddb::Reader<Vec<u8>>>,
    agents: woothee::parser::Parser,
}

impl Default for Enricher {
    fn default() -> Self {
        Self {
            geoip: None,
            agents: woothee::parser::Parser::new(),
        }
    }
}

impl Enricher {
    /// With the GeoIP database at `path` (GeoIP2 or GeoLite2 City, or anything of that shape).
    pub fn with_geoip(path: &Path) -> Result<Self, String> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| format!("cannot open the GeoIP database {}: {e}", path.display()))?;
        Ok(Self {
            geoip: Some(reader),
            ..Self::default()
        })
    }

    /// Whether locations can be looked up.
    pub fn has_geoip(&self) -> bool {
        self.geoip.is_some()
    }

    /// Where an address is: `country` (ISO code), `country_name`, `region`, `region_code`,
    /// `city`, `postal_code`, `latitude`, `longitude`, `time_zone`, as far as the database
    /// knows. `None` when locations are off or the address is unknown.
    pub fn location(&self, ip: IpAddr) -> Option<Map<String, Value>> {
        let reader = self.geoip.as_ref()?;
        let city: maxminddb::geoip2::City = reader.lookup(ip).ok()?.decode().ok()??;
        let mut location = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                location.insert(key.into(), value);
            }
        };
        put("country", city.country.iso_code.map(Value::from));
        put("country_name", city.country.names.english.map(Value::from));
        let region = city.subdivisions.first();
        put(
            "region",
            region.and_then(|r| r.names.english).map(Value::from),
        );
        put(
            "region_code",
            region.and_then(|r| r.iso_code).map(Value::from),
        );
        put("city", city.city.names.english.map(Value::from));
        put("postal_code", city.postal.code.map(Value::from));
        put("latitude", city.location.latitude.map(Value::from));
        put("longitude", city.location.longitude.map(Value::from));
        put("time_zone", city.location.time_zone.map(Value::from));
        (!location.is_empty()).then_some(location)
    }

    /// What a user agent says: `browser`, `browser_version`, `os`, `os_version`, `vendor`,
    /// `type` (`desktop`, `mobile`, `tablet`, `bot`, `appliance` or `other`) and `bot`.
    pub fn device(&self, user_agent: &str) -> Map<String, Value> {
        let known = |s: &str| {
            (!s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN).then(|| Value::from(s))
        };
        let mut device = Map::new();
        let parsed = self.agents.parse(user_agent);
        let lower = user_agent.to_ascii_lowercase();
        let bot = parsed.as_ref().is_some_and(|p| p.category == "crawler")
            || ["bot", "spider", "crawler", "headless"]
                .iter()
                .any(|marker| lower.contains(marker));
        if let Some(p) = &parsed {
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(value) = value {
                    device.insert(key.into(), value);
                }
            };
            put("browser", known(p.name));
            put("browser_version", known(p.version));
            put("os", known(p.os));
            put("os_version", known(&p.os_version));
            put("vendor", known(p.vendor));
        }
        let kind = match parsed.as_ref().map(|p| p.category) {
            _ if bot => "bot",
            Some("pc") => "desktop",
            Some("smartphone")
                if lower.contains("ipad")
                    || (lower.contains("android") && !lower.contains("mobile")) =>
            {
                "tablet"
            }
            Some("smartphone" | "mobilephone") => "mobile",
            Some("appliance") => "appliance",
            _ => "other",
        };
        device.insert("type".into(), kind.into());
        device.insert("bot".into(), bot.into());
        device
    }
}

impl super::Service {
    /// Applies a device and an address an upsert reports: the device replaces the profile's
    /// when given, and the address locates it (when a GeoIP database is configured).
    pub(super) fn apply_seen(
        &self,
        profile: &mut profiled_core::Profile,
        seen: &super::profiles::Seen,
    ) {
        if !seen.device.is_empty() {
            profile.device = seen.device.clone();
        }
        if let Some(location) = seen.ip.and_then(|ip| self.enricher.location(ip)) {
            profile.location = location;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_become_devices() {
        let enricher = Enricher::default();
        let desktop = enricher.device(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        );
        assert_eq!(desktop["browser"], "Chrome");
        assert_eq!(desktop["browser_version"], "120.0.0.0");
        assert_eq!(desktop["os"], "Windows 10");
        assert_eq!(desktop["type"], "desktop");
        assert_eq!(desktop["bot"], false);

        let phone = enricher.device(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(phone["type"], "mobile");
        assert_eq!(phone["os"], "iPhone");

        let tablet = enricher.device(
            "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(tablet["type"], "tablet");

        let bot = enricher
            .device("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(bot["type"], "bot");
        assert_eq!(bot["bot"], true);

        let unknown = enricher.device("curl-ish/0.1");
        assert_eq!(unknown["type"], "other");
        assert_eq!(unknown["bot"], false);
    }

    #[test]
    fn without_a_database_there_is_no_location() {
        let enricher = Enricher::default();
        assert!(!enricher.has_geoip());
        assert_eq!(enricher.location("8.8.8.8".parse().unwrap()), None);
    }
}
