//! Property paths as clients write them in operations: `plan`, `prefs.theme`, or a JSON
//! pointer `/odd.key/inner` for keys that contain dots.

use crate::error::{DomainError, pointer_token};

/// A path into a profile's properties: a non-empty list of object keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PropertyPath(Vec<String>);

impl PropertyPath {
    /// The most keys a path may have. Stored JSON never nests deeper than
    /// [`crate::Limits::MAX_DEPTH`], so a longer path could never be valid; refusing it early
    /// also keeps a hostile path from building a value too deep to handle.
    pub const MAX_SEGMENTS: usize = crate::limits::Limits::MAX_DEPTH;

    /// Parses a client-written path. `pointer` locates the path in the request, for errors.
    pub fn parse(text: &str, pointer: &str) -> Result<Self, DomainError> {
        if !text.is_empty() && !text.contains(['.', '/']) {
            // A plain key, the common case.
            return Ok(Self(vec![text.to_owned()]));
        }
        let segments: Vec<String> = if let Some(rest) = text.strip_prefix('/') {
            rest.split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect()
        } else {
            text.split('.').map(str::to_owned).collect()
        };
        if segments.len() > Self::MAX_SEGMENTS {
            return Err(DomainError::invalid(
                pointer,
                format!("a property path has at most {} keys", Self::MAX_SEGMENTS),
            ));
        }
        if segments.iter().any(String::is_empty) {
            return Err(DomainError::invalid(
                pointer,
                format!(
                    "`{text}` is not a property path: a path is keys joined by `.` (or a JSON pointer starting with `/`), none of them empty"
                ),
            ));
        }
        Ok(Self(segments))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The path as a JSON pointer below `/properties`, for error messages.
    pub fn to_pointer(&self) -> String {
        self.0
            .iter()
            .map(|s| format!("/{}", pointer_token(s)))
            .collect()
    }
}

impl std::fmt::Display for PropertyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_split_on_dots() {
        let p = PropertyPath::parse("prefs.theme", "/set").unwrap();
        assert_eq!(p.segments(), ["prefs", "theme"]);
    }

    #[test]
    fn a_plain_key_is_one_segment() {
        let p = PropertyPath::parse("plan", "/set").unwrap();
        assert_eq!(p.segments(), ["plan"]);
    }

    #[test]
    fn pointer_paths_keep_dots_and_unescape() {
        let p = PropertyPath::parse("/a.b/c~1d~0", "/set").unwrap();
        assert_eq!(p.segments(), ["a.b", "c/d~"]);
        assert_eq!(p.to_pointer(), "/a.b/c~1d~0");
    }

    #[test]
    fn overlong_paths_are_refused_before_anything_is_built() {
        let long = vec!["a"; PropertyPath::MAX_SEGMENTS + 1].join(".");
        assert!(PropertyPath::parse(&long, "/set").is_err());
        let ok = vec!["a"; PropertyPath::MAX_SEGMENTS].join(".");
        assert!(PropertyPath::parse(&ok, "/set").is_ok());
    }

    #[test]
    fn empty_segments_are_refused() {
        for bad in ["", "a..b", ".a", "a.", "/", "/a//b"] {
            assert!(
                PropertyPath::parse(bad, "/set").is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
