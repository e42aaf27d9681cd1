//! Fields a filter can name.

/// One step into JSON: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// What a predicate looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    CreatedAt,
    UpdatedAt,
    /// `properties.<path>`
    Property(Vec<Segment>),
    /// `computed.<path>`
    Computed(Vec<Segment>),
    /// `location.<path>`: country, region, city, ... from enrichment.
    Location(Vec<Segment>),
    /// `device.<path>`: browser, os, type, bot, ... from enrichment.
    Device(Vec<Segment>),
    /// `identities.<kind>`: every value of that kind the profile carries.
    Identity(String),
    /// `segments`: the keys of the segments the profile is a member of.
    Segments,
}

impl Field {
    /// Parses `properties.a.b[0]`, `computed.percent`, `identities.email`, `id`,
    /// `created_at`, `updated_at`. Keys containing `.`, `[`, spaces or quotes are written as
    /// JSON strings: `properties."odd key".x`.
    pub fn parse(text: &str) -> Result<Field, String> {
        let (root, rest) = match text.find(['.', '[']) {
            Some(i) => (&text[..i], &text[i..]),
            None => (text, ""),
        };
        let no_path = |name: &str| {
            if rest.is_empty() {
                Ok(())
            } else {
                Err(format!("`{name}` has no sub-fields"))
            }
        };
        match root {
            "id" => no_path("id").map(|_| Field::Id),
            "created_at" => no_path("created_at").map(|_| Field::CreatedAt),
            "updated_at" => no_path("updated_at").map(|_| Field::UpdatedAt),
            "segments" => no_path("segments").map(|_| Field::Segments),
            "properties" => Ok(Field::Property(parse_path(rest, text)?)),
            "computed" => Ok(Field::Computed(parse_path(rest, text)?)),
            "location" => Ok(Field::Location(parse_path(rest, text)?)),
            "device" => Ok(Field::Device(parse_path(rest, text)?)),
            "identities" => {
                let kind = rest.strip_prefix('.').unwrap_or_default();
                crate::IdentityKind::parse(kind).map_err(|_| {
                    format!("`{text}` is not an identity field: use identities.<kind>, e.g. identities.email")
                })?;
                Ok(Field::Identity(kind.to_owned()))
            }
            _ => Err(format!(
                "unknown field `{text}`: use properties.<path>, computed.<path>, location.<path>, device.<path>, identities.<kind>, segments, id, created_at or updated_at"
            )),
        }
    }

    /// A property or computed path: JSON and its steps.
    pub fn json_path(&self) -> Option<(JsonColumn, &[Segment])> {
        match self {
            Field::Property(p) => Some((JsonColumn::Properties, p)),
            Field::Computed(p) => Some((JsonColumn::Computed, p)),
            Field::Location(p) => Some((JsonColumn::Location, p)),
            Field::Device(p) => Some((JsonColumn::Device, p)),
            _ => None,
        }
    }
}

/// Which JSON document of a profile a path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonColumn {
    Properties,
    Computed,
    Location,
    Device,
}

impl JsonColumn {
    pub fn name(self) -> &'static str {
        match self {
            JsonColumn::Properties => "properties",
            JsonColumn::Computed => "computed",
            JsonColumn::Location => "location",
            JsonColumn::Device => "device",
        }
    }
}

/// Parses the `.a.b[0]."c d"` part after `properties` or `computed`.
fn parse_path(mut rest: &str, whole: &str) -> Result<Vec<Segment>, String> {
    let bad = |why: &str| format!("`{whole}` is not a valid path: {why}");
    let mut segments = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            if after.starts_with('"') {
                let mut stream = serde_json::Deserializer::from_str(after).into_iter::<String>();
                let key = match stream.next() {
                    Some(Ok(key)) => key,
                    _ => return Err(bad("a quoted key is not a valid JSON string")),
                };
                rest = &after[stream.byte_offset()..];
                segments.push(Segment::Key(key));
            } else {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let key = &after[..end];
                if key.is_empty() {
                    return Err(bad("a key is empty"));
                }
                segments.push(Segment::Key(key.to_owned()));
                rest = &after[end..];
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(|| bad("`[` without `]`"))?;
            let index = after[..end]
                .parse::<usize>()
                .ok()
                .filter(|i| *i < 1_000_000)
                .ok_or_else(|| bad("an array index is a whole number below 1000000"))?;
            segments.push(Segment::Index(index));
            rest = &after[end + 1..];
        } else {
            return Err(bad("expected `.` or `[` between keys"));
        }
    }
    if segments.is_empty() {
        return Err(bad("name a key after the root, e.g. properties.plan"));
    }
    if !matches!(segments[0], Segment::Key(_)) {
        return Err(bad("the first step is a key"));
    }
    if segments.len() > crate::Limits::MAX_DEPTH {
        return Err(bad("too many steps"));
    }
    for segment in &segments {
        if let Segment::Key(key) = segment
            && (key.contains('"') || key.contains('\\') || key.chars().any(char::is_control))
        {
            return Err(bad("keys cannot contain `\"`, `\\` or control characters"));
        }
    }
    Ok(segments)
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = |f: &mut std::fmt::Formatter<'_>, root: &str, segments: &[Segment]| {
            f.write_str(root)?;
            for segment in segments {
                match segment {
                    Segment::Key(k)
                        if k.chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$') =>
                    {
                        write!(f, ".{k}")?
                    }
                    Segment::Key(k) => write!(f, ".{}", serde_json::Value::String(k.clone()))?,
                    Segment::Index(i) => write!(f, "[{i}]")?,
                }
            }
            Ok(())
        };
        match self {
            Field::Id => f.write_str("id"),
            Field::CreatedAt => f.write_str("created_at"),
            Field::UpdatedAt => f.write_str("updated_at"),
            Field::Property(p) => path(f, "properties", p),
            Field::Computed(p) => path(f, "computed", p),
            Field::Location(p) => path(f, "location", p),
            Field::Device(p) => path(f, "device", p),
            Field::Identity(kind) => write!(f, "identities.{kind}"),
            Field::Segments => f.write_str("segments"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn paths_take_keys_indexes_and_quoted_keys() {
        assert_eq!(
            Field::parse(r#"properties.items[2]."odd.key".x"#).unwrap(),
            Field::Property(vec![
                key("items"),
                Segment::Index(2),
                key("odd.key"),
                key("x")
            ])
        );
        assert_eq!(
            Field::parse("computed.percent").unwrap(),
            Field::Computed(vec![key("percent")])
        );
        assert_eq!(
            Field::parse("identities.account:web").unwrap(),
            Field::Identity("account:web".into())
        );
        assert_eq!(Field::parse("created_at").unwrap(), Field::CreatedAt);
    }

    #[test]
    fn bad_fields_are_refused() {
        for bad in [
            "plan",
            "properties",
            "properties.",
            "properties..a",
            "properties[0]",
            "properties.a[x]",
            "id.x",
            "identities.",
            "identities.Bad",
            r#"properties."a\"b""#,
        ] {
            assert!(Field::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "properties.a.b[3]",
            r#"properties."a b".c"#,
            "identities.email",
            "updated_at",
            "segments",
        ] {
            assert_eq!(Field::parse(text).unwrap().to_string(), text);
        }
    }
}
