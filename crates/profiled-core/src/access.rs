//! What an API key may do. A key belongs to exactly one workspace and never sees another.

use serde::{Deserialize, Serialize};

/// The scope of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Can only write. Safe to ship in a browser: it cannot read a profile back.
    Write,
    /// Can only read.
    Read,
    /// Can read and write profiles.
    ReadWrite,
    /// Can read, write, and manage the workspace's keys and settings.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Write, Scope::Read, Scope::ReadWrite, Scope::Admin];

    pub fn can_read(self) -> bool {
        !matches!(self, Scope::Write)
    }

    pub fn can_write(self) -> bool {
        !matches!(self, Scope::Read)
    }

    pub fn can_admin(self) -> bool {
        matches!(self, Scope::Admin)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Write => "write",
            Scope::Read => "read",
            Scope::ReadWrite => "read_write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_keys_cannot_read_and_read_keys_cannot_write() {
        assert!(!Scope::Write.can_read() && Scope::Write.can_write());
        assert!(Scope::Read.can_read() && !Scope::Read.can_write());
        assert!(
            Scope::ReadWrite.can_read()
                && Scope::ReadWrite.can_write()
                && !Scope::ReadWrite.can_admin()
        );
        assert!(Scope::Admin.can_read() && Scope::Admin.can_write() && Scope::Admin.can_admin());
    }

    #[test]
    fn scopes_round_trip_through_their_names() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("root"), None);
    }
}
