//! Profiles and companies in Chameleon's shape: built-in fields first, then the custom
//! properties flattened in (a custom property shows where the built-in field is empty).

use jiff::Timestamp;
use profiled_core::Profile;
use profiled_store::CompanyRecord;
use serde_json::{Map, Value, json};

/// `expand[profile]`: every field, or only `id, created_at, updated_at, uid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileDetail {
    All,
    Min,
}

/// `expand[company]`: the whole company, its short form, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanyDetail {
    All,
    Min,
    Skip,
}

/// Chameleon writes times with milliseconds: `2024-03-15T10:30:00.000Z`.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn identity<'a>(profile: &'a Profile, kind: &str) -> Option<&'a str> {
    profile
        .identities
        .iter()
        .find(|i| i.kind.as_str() == kind)
        .map(|i| i.value.as_str())
}

fn device_text<'a>(profile: &'a Profile, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| profile.device.get(*k).and_then(Value::as_str))
}

/// Chameleon's browser names: chrome, firefox, safari, opera, ie10, ie11, edge or unknown.
fn browser_name(profile: &Profile) -> Option<&'static str> {
    let name = device_text(profile, &["browser", "name"])?.to_ascii_lowercase();
    let major = device_text(profile, &["version", "browser_version", "browserVersion"])
        .and_then(|v| v.split('.').next())
        .unwrap_or_default()
        .to_owned();
    Some(if name.contains("edge") {
        "edge"
    } else if name.contains("opera") {
        "opera"
    } else if name.contains("firefox") {
        "firefox"
    } else if name.contains("chrome") {
        "chrome"
    } else if name.contains("safari") {
        "safari"
    } else if name.contains("internet explorer") || name == "ie" {
        match major.as_str() {
            "10" => "ie10",
            "11" => "ie11",
            _ => "unknown",
        }
    } else {
        "unknown"
    })
}

/// desktop, mobile or tablet.
fn browser_kind(profile: &Profile) -> Option<String> {
    let kind = device_text(profile, &["type", "deviceType", "device_type"])?.to_ascii_lowercase();
    matches!(kind.as_str(), "desktop" | "mobile" | "tablet").then_some(kind)
}

/// Whole hours from UTC of the profile's time zone (from its location) right now.
fn browser_tz(profile: &Profile) -> Option<i64> {
    if let Some(offset) = profile
        .device
        .get("timezone_offset")
        .and_then(Value::as_i64)
    {
        return Some(offset);
    }
    let zone = profile.location.get("time_zone")?.as_str()?;
    let tz = jiff::tz::db().get(zone).ok()?;
    Some(i64::from(tz.to_offset(Timestamp::now()).seconds()) / 3600)
}

fn browser_width(profile: &Profile) -> Option<Value> {
    ["browser_width", "browserWidth"]
        .iter()
        .find_map(|k| profile.device.get(*k).filter(|v| v.is_number()).cloned())
}

/// Fills `into` with custom properties for every key it leaves empty.
fn flatten(into: &mut Map<String, Value>, properties: &Map<String, Value>) {
    for (key, value) in properties {
        match into.get(key) {
            Some(existing) if !existing.is_null() => {}
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

fn short_profile(profile: &Profile) -> Map<String, Value> {
    let mut view = Map::new();
    view.insert("id".into(), json!(profile.id.0));
    view.insert("created_at".into(), json!(time(profile.created_at)));
    view.insert("updated_at".into(), json!(time(profile.updated_at)));
    view.insert("uid".into(), json!(identity(profile, "uid")));
    view
}

/// A profile as Chameleon shows it, with its company when one is given.
pub fn profile(
    profile: &Profile,
    detail: ProfileDetail,
    company: Option<(&CompanyRecord, CompanyDetail)>,
) -> Value {
    let mut view = short_profile(profile);
    if detail == ProfileDetail::All {
        let computed = |key: &str| profile.computed.get(key).cloned().unwrap_or(Value::Null);
        view.insert("company_id".into(), json!(profile.company));
        view.insert("browser_x".into(), json!(browser_width(profile)));
        view.insert("browser_tz".into(), json!(browser_tz(profile)));
        view.insert(
            "browser_l".into(),
            json!(device_text(profile, &["language", "locale"])),
        );
        view.insert("browser_n".into(), json!(browser_name(profile)));
        view.insert("browser_k".into(), json!(browser_kind(profile)));
        view.insert("percent".into(), computed("percent"));
        view.insert("last_seen_at".into(), computed("last_seen_at"));
        view.insert("last_seen_session_count".into(), computed("session_count"));
        view.insert(
            "delivery_ids".into(),
            profile
                .properties
                .get("delivery_ids")
                .filter(|v| v.is_array())
                .cloned()
                .unwrap_or_else(|| json!([])),
        );
        if let Some(cleared) = profile.computed.get("cleared_at") {
            view.insert("last_cleared_at".into(), cleared.clone());
        }
        view.insert("email".into(), json!(identity(profile, "email")));
        flatten(&mut view, &profile.properties);
        if view.get("email").is_some_and(Value::is_null) {
            view.remove("email");
        }
    }
    if let Some((company, detail)) = company
        && detail != CompanyDetail::Skip
    {
        view.insert("company".into(), self::company(company, detail));
    }
    Value::Object(view)
}

/// A company as Chameleon shows it.
pub fn company(company: &CompanyRecord, detail: CompanyDetail) -> Value {
    let mut view = Map::new();
    view.insert("id".into(), json!(company.id));
    view.insert("created_at".into(), json!(time(company.created_at)));
    view.insert("updated_at".into(), json!(time(company.updated_at)));
    view.insert("uid".into(), json!(company.uid));
    if detail == CompanyDetail::All {
        flatten(&mut view, &company.properties);
    }
    Value::Object(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiled_core::{Identity, ProfileId};

    fn sample() -> Profile {
        let now: Timestamp = "2026-03-15T10:30:00.123456Z".parse().unwrap();
        let mut p = Profile::new(ProfileId("p1".into()), now, 42.5);
        p.attach([
            Identity::new_unchecked("uid", "18821"),
            Identity::new_unchecked("email", "leon@chmln.co"),
        ]);
        p.properties = json!({"plan": "pro", "id": "spoofed", "browser_x": 1280})
            .as_object()
            .unwrap()
            .clone();
        p.device = json!({"browser": "Chrome", "version": "120.0", "type": "desktop"})
            .as_object()
            .unwrap()
            .clone();
        p
    }

    #[test]
    fn built_in_fields_come_first_and_properties_fill_the_empty_ones() {
        let view = profile(&sample(), ProfileDetail::All, None);
        assert_eq!(view["id"], "p1");
        assert_eq!(view["uid"], "18821");
        assert_eq!(view["created_at"], "2026-03-15T10:30:00.123Z");
        assert_eq!(view["email"], "leon@chmln.co");
        assert_eq!(view["plan"], "pro");
        assert_eq!(view["percent"], 42.5);
        assert_eq!(view["browser_n"], "chrome");
        assert_eq!(view["browser_k"], "desktop");
        // No width in the device: the custom property shows.
        assert_eq!(view["browser_x"], 1280);
        assert_eq!(view["delivery_ids"], json!([]));
        assert!(view.get("company").is_none());
    }

    #[test]
    fn the_short_form_has_four_fields() {
        let view = profile(&sample(), ProfileDetail::Min, None);
        let mut keys: Vec<&String> = view.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["created_at", "id", "uid", "updated_at"]);
    }

    #[test]
    fn browsers_map_to_chameleons_names() {
        let mut p = sample();
        for (browser, version, expected) in [
            ("Firefox", "120", "firefox"),
            ("Safari", "17.1", "safari"),
            ("Internet Explorer", "11.0", "ie11"),
            ("Edge", "120", "edge"),
            ("Lynx", "2", "unknown"),
        ] {
            p.device.insert("browser".into(), json!(browser));
            p.device.insert("version".into(), json!(version));
            assert_eq!(browser_name(&p), Some(expected));
        }
    }
}
