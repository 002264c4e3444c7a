//! Domain values parsed once at the edge: once a `Username` exists it is valid and normalized.

use crate::AppError;

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// Lowercased, `[a-z0-9_.]{3,32}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s = raw.to_lowercase();
        let ok = (3..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !ok {
            return Err(AppError::validation(
                field,
                "username must be 3-32 characters of a-z, 0-9, _ and .",
            ));
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Names new accounts cannot take because mentions give them a meaning (`@assistant`
    /// asks the assistant, `@all` everyone).
    pub fn is_reserved(&self) -> bool {
        matches!(self.0.as_str(), "assistant" | "all")
    }
}

/// An email address as given, plus its case-insensitive normal form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub address: String,
    pub normalized: String,
}

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let normalized = s.to_lowercase();
        // Lowercasing can lengthen a string (`İ` is 2 bytes, `i̇` 3): the normal form must pass
        // too, or it would not parse again.
        if !Self::valid(s) || !Self::valid(&normalized) {
            return Err(AppError::validation(field, "not a valid email address"));
        }
        Ok(Self {
            address: s.to_string(),
            normalized,
        })
    }

    fn valid(s: &str) -> bool {
        if s.len() > 254 || has_control(s) || s.chars().any(char::is_whitespace) {
            return false;
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return false;
        };
        !(local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || s.contains(['<', '>', '(', ')', '[', ']', ',', ';', ':', '\\', '"']))
    }
}

/// 1–64 characters, trimmed, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let n = s.chars().count();
        if n == 0 || n > 64 || has_control(s) {
            return Err(AppError::validation(
                field,
                "display name must be 1-64 characters without control characters",
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The lowercased form used for prefix search.
    pub fn search_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Why an administrator banned an account: 1–500 characters, trimmed, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanReason(String);

impl BanReason {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let n = s.chars().count();
        if n == 0 || n > 500 || has_control(s) {
            return Err(AppError::validation(
                field,
                "reason must be 1-500 characters without control characters",
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute http(s) URL of at most 2048 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let ok = raw.len() <= 2048
            && (raw.starts_with("https://") || raw.starts_with("http://"))
            && raw.len() > "https://".len()
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(AppError::validation(
                field,
                "avatar_url must be an http(s) URL of at most 2048 characters",
            ));
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-text labels such as a device name: trimmed, at most `max` characters, no control
/// characters.
pub fn short_text(field: &str, raw: &str, max: usize) -> Result<String, AppError> {
    let s = raw.trim();
    if s.chars().count() > max || has_control(s) {
        return Err(AppError::validation(
            field,
            format!("must be at most {max} characters without control characters"),
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            Username::parse("u", "Alice.B_1").unwrap().as_str(),
            "alice.b_1"
        );
        assert!(Username::parse("u", "ab").is_err());
        assert!(Username::parse("u", "a-b-c").is_err());
        assert!(Username::parse("u", &"a".repeat(33)).is_err());
        assert!(Username::parse("u", "ålice").is_err());
    }

    #[test]
    fn emails() {
        let e = Email::parse("email", " Alice@Example.ORG ").unwrap();
        assert_eq!(e.normalized, "alice@example.org");
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.c",
            "a b@c.de",
            "a@b..c",
            "<a@b.c>",
            "a@b.c\u{0}",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(DisplayName::parse("d", "  Zoë  ").unwrap().as_str(), "Zoë");
        assert!(DisplayName::parse("d", " ").is_err());
        assert!(DisplayName::parse("d", "a\u{7}b").is_err());
    }
}
