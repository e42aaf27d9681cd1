//! Profiles written out as JSON directly, byte for byte as serde_json writes a
//! [`ProfileView`] (the unit tests hold the two equal). Through serde, a get or a search
//! spends most of its JSON time on escaping the constant keys one by one and on printing
//! the timestamps through `Display` (docs/benchmarks.md, session 15). The view types stay
//! the API's schema.

use std::io::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use profiled_core::{Identity, RawProfile};

use super::companies::CompanyView;
#[cfg(doc)]
use super::profiles::ProfileView;
use crate::service::Page;

/// A `200`/`201` answer whose body is already JSON.
pub(crate) fn response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// One profile, as a [`ProfileView`] (with its company when it is embedded).
pub(crate) fn profile(profile: &RawProfile, company: Option<&CompanyView>) -> Vec<u8> {
    let mut out = Vec::with_capacity(profile_size(profile));
    write_profile(&mut out, profile, company);
    out
}

/// A page of a search, as a `SearchResult`.
pub(crate) fn search_page(page: &Page<RawProfile>) -> Vec<u8> {
    let size: usize = page.profiles.iter().map(profile_size).sum();
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(b"{\"profiles\":");
    list(&mut out, &page.profiles, |out, p| {
        write_profile(out, p, None)
    });
    out.extend_from_slice(b",\"next_cursor\":");
    optional_string(&mut out, page.next_cursor.as_deref());
    out.push(b'}');
    out
}

/// A close upper bound of a profile's JSON size, so that the buffer grows once.
fn profile_size(p: &RawProfile) -> usize {
    let documents = p.properties.get().len()
        + p.computed.get().len()
        + p.location.get().len()
        + p.device.get().len();
    let identities: usize = p.identities.iter().map(|i| i.value.len() + 40).sum();
    let segments: usize = p.segments.iter().map(|s| s.len() + 3).sum();
    documents + identities + segments + 320
}

fn write_profile(out: &mut Vec<u8>, p: &RawProfile, company: Option<&CompanyView>) {
    out.extend_from_slice(b"{\"id\":");
    string(out, &p.id.0);
    out.extend_from_slice(b",\"identities\":");
    list(out, &p.identities, write_identity);
    out.extend_from_slice(b",\"properties\":");
    out.extend_from_slice(p.properties.get().as_bytes());
    out.extend_from_slice(b",\"computed\":");
    out.extend_from_slice(p.computed.get().as_bytes());
    out.extend_from_slice(b",\"location\":");
    out.extend_from_slice(p.location.get().as_bytes());
    out.extend_from_slice(b",\"device\":");
    out.extend_from_slice(p.device.get().as_bytes());
    out.extend_from_slice(b",\"company_id\":");
    optional_string(out, p.company.as_deref());
    if let Some(company) = company {
        out.extend_from_slice(b",\"company\":");
        serde_json::to_writer(&mut *out, company).expect("a company view serialises");
    }
    out.extend_from_slice(b",\"segments\":");
    list(out, &p.segments, |out, segment| string(out, segment));
    out.extend_from_slice(b",\"created_at\":");
    timestamp(out, p.created_at);
    out.extend_from_slice(b",\"updated_at\":");
    timestamp(out, p.updated_at);
    out.extend_from_slice(b",\"version\":");
    write!(out, "{}", p.version).expect("writing to a Vec cannot fail");
    out.push(b'}');
}

/// A JSON array of `items`, each written by `write`.
fn list<T>(out: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn write_identity(out: &mut Vec<u8>, identity: &Identity) {
    out.extend_from_slice(b"{\"kind\":");
    string(out, identity.kind.as_str());
    out.extend_from_slice(b",\"value\":");
    string(out, &identity.value);
    out.push(b'}');
}

fn optional_string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => string(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string. serde_json escapes only `"`, `\` and control characters, so a string with
/// none of them (ids, kinds, most values) is copied as it is.
fn string(out: &mut Vec<u8>, value: &str) {
    // A fold without an early exit, so that the compiler checks many bytes at a time.
    let escapes = value.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !escapes {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, value).expect("a string serialises");
    }
}

/// A timestamp as jiff's `Display` prints it (RFC 3339 in UTC, the fraction without its
/// trailing zeros, none when whole), written digit by digit.
fn timestamp(out: &mut Vec<u8>, ts: Timestamp) {
    let civil = jiff::tz::Offset::UTC.to_datetime(ts);
    let year = civil.year();
    if !(0..=9999).contains(&year) {
        // jiff's signed six-digit years; no stored time is that far out.
        write!(out, "\"{ts}\"").expect("writing to a Vec cannot fail");
        return;
    }
    let mut text = *b"\"0000-00-00T00:00:00";
    digits(&mut text[1..5], year as u32);
    digits(&mut text[6..8], civil.month() as u32);
    digits(&mut text[9..11], civil.day() as u32);
    digits(&mut text[12..14], civil.hour() as u32);
    digits(&mut text[15..17], civil.minute() as u32);
    digits(&mut text[18..20], civil.second() as u32);
    out.extend_from_slice(&text);
    let nanos = civil.subsec_nanosecond() as u32;
    if nanos != 0 {
        let mut fraction = *b".000000000";
        digits(&mut fraction[1..], nanos);
        let len = fraction
            .iter()
            .rposition(|&b| b != b'0')
            .map_or(1, |i| i + 1);
        out.extend_from_slice(&fraction[..len]);
    }
    out.extend_from_slice(b"Z\"");
}

/// `value` in decimal, right-aligned in `into` and padded with zeros.
fn digits(into: &mut [u8], mut value: u32) {
    for slot in into.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::v1::profiles::ProfileView;
    use crate::http::v1::search::SearchResult;
    use profiled_core::ProfileId;
    use profiled_core::StoredObject;
    use proptest::prelude::*;

    fn raw(text: String) -> StoredObject {
        StoredObject::from_stored(text).expect("an object")
    }

    /// Any string, with quotes, backslashes, control characters and non-ASCII mixed in.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_@.-]{0,12}",
            any::<String>(),
            "[\"\\\\\u{0}-\u{1f}\u{7f}é😀a]{0,6}",
        ]
    }

    fn timestamp_in(range: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = Timestamp> {
        range.prop_map(|us| Timestamp::from_microsecond(us).expect("in range"))
    }

    fn any_timestamp() -> impl Strategy<Value = Timestamp> {
        let min = Timestamp::MIN.as_microsecond();
        let max = Timestamp::MAX.as_microsecond();
        prop_oneof![
            // Whole seconds, tenths, and any microsecond, around today.
            (0i64..4_000_000_000).prop_map(|s| Timestamp::from_second(s).expect("in range")),
            (0i64..40_000_000_000)
                .prop_map(|ds| Timestamp::from_millisecond(ds * 100).expect("in range")),
            timestamp_in(-62_167_219_200_000_000..=253_402_300_799_999_999),
            timestamp_in(min..=max),
        ]
    }

    prop_compose! {
        fn any_profile()(
            id in text(),
            identities in proptest::collection::vec((text(), text()), 0..4),
            properties in proptest::collection::btree_map(text(), text(), 0..3),
            company in proptest::option::of(text()),
            segments in proptest::collection::vec(text(), 0..3),
            created_at in any_timestamp(),
            updated_at in any_timestamp(),
            version in any::<i64>(),
        ) -> RawProfile {
            RawProfile {
                id: ProfileId(id),
                identities: identities
                    .into_iter()
                    .map(|(k, v)| Identity::stored(k, v))
                    .collect(),
                properties: raw(serde_json::to_string(&properties).expect("a map serialises")),
                computed: raw(r#"{"percent":42.5}"#.into()),
                location: raw("{}".into()),
                device: raw(r#"{"os":"Linux"}"#.into()),
                created_at,
                updated_at,
                version,
                company,
                segments,
            }
        }
    }

    proptest! {
        #[test]
        fn a_profile_is_written_as_serde_writes_its_view(p in any_profile()) {
            let expected = serde_json::to_vec(&ProfileView::from(p.clone())).expect("serialises");
            prop_assert_eq!(String::from_utf8(profile(&p, None)).unwrap(), String::from_utf8(expected).unwrap());
        }

        #[test]
        fn a_page_is_written_as_serde_writes_its_result(
            profiles in proptest::collection::vec(any_profile(), 0..3),
            next_cursor in proptest::option::of(text()),
        ) {
            let page = Page { profiles, next_cursor };
            let expected = serde_json::to_vec(&SearchResult::from(page.clone())).expect("serialises");
            prop_assert_eq!(String::from_utf8(search_page(&page)).unwrap(), String::from_utf8(expected).unwrap());
        }

        #[test]
        fn a_timestamp_is_written_as_jiff_displays_it(ts in any_timestamp()) {
            let mut out = Vec::new();
            timestamp(&mut out, ts);
            prop_assert_eq!(String::from_utf8(out).unwrap(), format!("\"{ts}\""));
        }
    }

    #[test]
    fn an_embedded_company_is_written_where_the_view_has_it() {
        let p = RawProfile {
            id: ProfileId("p1".into()),
            identities: vec![Identity::stored("user_id".into(), "u1".into())],
            properties: raw(r#"{"plan":"pro"}"#.into()),
            computed: raw("{}".into()),
            location: raw("{}".into()),
            device: raw("{}".into()),
            created_at: Timestamp::from_second(1_764_000_000).unwrap(),
            updated_at: Timestamp::from_microsecond(1_764_000_000_123_400).unwrap(),
            version: 3,
            company: Some("c1".into()),
            segments: vec!["paying".into()],
        };
        let company = CompanyView {
            id: "c1".into(),
            uid: "acme".into(),
            properties: serde_json::from_str(r#"{"name":"Acme"}"#).unwrap(),
            created_at: "2026-11-22T10:00:00Z".into(),
            updated_at: "2026-11-22T10:00:00Z".into(),
            version: 1,
        };
        let mut view = ProfileView::from(p.clone());
        view.company = Some(company.clone());
        let written = String::from_utf8(profile(&p, Some(&company))).unwrap();
        assert_eq!(written, serde_json::to_string(&view).unwrap());
        assert!(
            written.contains(r#""updated_at":"2025-11-24T16:00:00.1234Z""#),
            "{written}"
        );
    }
}
