//! Drive values parsed once at the edge: a file name that can be shown and saved anywhere without
//! disguising what it is, a media type in its bare `type/subtype` form, the default allow-list of
//! API.md §12 and the extension ↔ type table that uploads are checked against.

use crate::AppError;
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// Longest file name, in bytes of its NFC form (what most file systems accept).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// A file or folder name: NFC, 1–255 bytes, no path separator, no control or invisible format
/// character (bidi overrides and isolates, directional marks, zero-width space, BOM…), no leading
/// dot (hidden files, `.` and `..`), no leading or trailing white space and no trailing dot
/// (Windows drops both, so `a.exe.` would be saved as `a.exe`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileName(String);

/// Characters refused in a name because they are invisible and can reorder or hide part of it
/// (`photo\u{202E}gpj.exe` shows as `photoexe.jpg`).
fn is_disguising(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                  // soft hyphen
        | '\u{061C}'                // Arabic letter mark
        | '\u{180E}'                // Mongolian vowel separator
        | '\u{200B}'                // zero-width space
        | '\u{200E}' | '\u{200F}'   // LRM, RLM
        | '\u{2028}' | '\u{2029}'   // line and paragraph separators
        | '\u{202A}'..='\u{202E}'   // LRE, RLE, PDF, LRO, RLO
        | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'   // LRI, RLI, FSI, PDI
        | '\u{206A}'..='\u{206F}'   // deprecated format characters
        | '\u{FEFF}'                // BOM / zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}') // interlinear annotation
}

impl FileName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s: String = raw.nfc().collect();
        let refuse = |reason: &str| Err(AppError::validation(field, reason));
        if s.is_empty() || s.len() > MAX_FILE_NAME_BYTES {
            return refuse("name must be 1-255 bytes");
        }
        if s.contains(['/', '\\']) {
            return refuse("name must not contain / or \\");
        }
        if s.chars().any(|c| c.is_control() || is_disguising(c)) {
            return refuse("name must not contain control or invisible formatting characters");
        }
        if s.starts_with('.') {
            return refuse("name must not start with a dot");
        }
        if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
            return refuse("name must not start or end with white space");
        }
        if s.ends_with('.') {
            return refuse("name must not end with a dot");
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercased text after the last dot, if there is one.
    pub fn extension(&self) -> Option<String> {
        let (_, ext) = self.0.rsplit_once('.')?;
        (!ext.is_empty()).then(|| ext.to_lowercase())
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A media type as `type/subtype`, lowercased, parameters (`; charset=…`) dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaType(String);

/// RFC 6838 §4.2 restricted-name: 1–127 of `A-Za-z0-9!#$&-^_.+`, starting with a letter or digit.
fn restricted_name(s: &str) -> bool {
    (1..=127).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

impl MediaType {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let essence = raw.split(';').next().unwrap_or_default().trim();
        let s = essence.to_ascii_lowercase();
        let ok = s
            .split_once('/')
            .is_some_and(|(t, sub)| restricted_name(t) && restricted_name(sub));
        if !ok {
            return Err(AppError::validation(
                field,
                "content type must be a media type like image/png",
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The type every client-side encrypted file is stored and served as.
    pub fn octet_stream() -> Self {
        Self("application/octet-stream".into())
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

/// The media types uploads may declare unless the operator configures another list (API.md §12).
pub const DEFAULT_ALLOWED_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "audio/mp4",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "application/zip",
    DOCX,
    XLSX,
    PPTX,
];

/// Known extensions per media type: the default list first, then a few types an operator may
/// add to the allow-list. A type not listed here has no acceptable extension.
const EXTENSIONS: &[(&str, &[&str])] = &[
    ("image/jpeg", &["jpg", "jpeg"]),
    ("image/png", &["png"]),
    ("image/gif", &["gif"]),
    ("image/webp", &["webp"]),
    ("image/heic", &["heic", "heif"]),
    ("video/mp4", &["mp4", "m4v"]),
    ("video/webm", &["webm"]),
    ("video/quicktime", &["mov"]),
    ("audio/mpeg", &["mp3"]),
    ("audio/ogg", &["ogg", "oga", "opus"]),
    ("audio/wav", &["wav"]),
    ("audio/webm", &["weba", "webm"]),
    ("audio/mp4", &["m4a"]),
    ("application/pdf", &["pdf"]),
    ("text/plain", &["txt", "text", "log"]),
    ("text/markdown", &["md", "markdown"]),
    ("text/csv", &["csv"]),
    ("application/json", &["json"]),
    ("application/zip", &["zip"]),
    (DOCX, &["docx"]),
    (XLSX, &["xlsx"]),
    (PPTX, &["pptx"]),
    // Not allowed by default; here so that widening the allow-list is enough.
    ("image/avif", &["avif"]),
    ("image/bmp", &["bmp"]),
    ("image/tiff", &["tif", "tiff"]),
    ("audio/flac", &["flac"]),
    ("audio/aac", &["aac"]),
    ("video/x-matroska", &["mkv"]),
    ("application/gzip", &["gz"]),
    ("application/x-tar", &["tar"]),
    ("application/x-7z-compressed", &["7z"]),
    ("application/vnd.rar", &["rar"]),
    ("application/epub+zip", &["epub"]),
    ("application/vnd.oasis.opendocument.text", &["odt"]),
    ("application/vnd.oasis.opendocument.spreadsheet", &["ods"]),
    ("application/vnd.oasis.opendocument.presentation", &["odp"]),
];

/// The extensions a file of this type may carry (empty for an unknown type).
pub fn extensions_of(media: &MediaType) -> &'static [&'static str] {
    EXTENSIONS
        .iter()
        .find(|(t, _)| *t == media.as_str())
        .map_or(&[], |(_, exts)| exts)
}

/// Whether `ext` (as [`FileName::extension`] gives it; compared case-insensitively) is a known
/// extension of `media`. A file without an extension never matches.
pub fn extension_matches(media: &MediaType, ext: Option<&str>) -> bool {
    ext.is_some_and(|e| {
        !is_always_refused_extension(e)
            && extensions_of(media)
                .iter()
                .any(|k| k.eq_ignore_ascii_case(e))
    })
}

/// Extensions of executables, scripts, HTML and SVG: refused whatever the allow-list says.
const ALWAYS_REFUSED: &[&str] = &[
    "exe", "dll", "msi", "bat", "cmd", "com", "scr", "ps1", "sh", "bash", "js", "mjs", "vbs",
    "jar", "apk", "app", "html", "htm", "xhtml", "svg", "svgz", "php", "py", "pl", "rb",
];

pub fn is_always_refused_extension(ext: &str) -> bool {
    ALWAYS_REFUSED.iter().any(|r| r.eq_ignore_ascii_case(ext))
}

/// Media types refused whatever the allow-list says (what the refused extensions are served as).
pub fn is_always_refused_type(media: &MediaType) -> bool {
    let t = media.as_str();
    matches!(
        t,
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/javascript"
            | "application/javascript"
            | "application/ecmascript"
            | "text/ecmascript"
            | "application/x-msdownload"
            | "application/x-msdos-program"
            | "application/vnd.microsoft.portable-executable"
            | "application/x-executable"
            | "application/x-elf"
            | "application/x-mach-binary"
            | "application/x-sh"
            | "application/x-shellscript"
            | "text/x-shellscript"
            | "application/x-bat"
            | "application/x-msi"
            | "application/x-ms-installer"
            | "application/java-archive"
            | "application/vnd.android.package-archive"
            | "application/x-httpd-php"
            | "application/x-php"
            | "text/x-python"
            | "text/x-perl"
            | "text/x-ruby"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> Result<FileName, AppError> {
        FileName::parse("name", s)
    }

    #[test]
    fn ordinary_names_pass() {
        for ok in [
            "report.pdf",
            "Quarterly Report (final) v2.docx",
            "фото.jpg",
            "日本語のファイル.txt",
            "README",
            "a",
            "archive.tar.gz",
            "family 👨\u{200D}👩\u{200D}👧.png",
        ] {
            assert_eq!(name(ok).unwrap().as_str(), ok, "{ok}");
        }
    }

    #[test]
    fn refusals_name_the_field() {
        let too_long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b.txt",
            "a\\b.txt",
            "../etc/passwd",
            "line\nbreak.txt",
            "nul\0.txt",
            "tab\t.txt",
            "del\u{7f}.txt",
            "c1\u{85}.txt",
            "photo\u{202E}gpj.exe",
            "photo\u{202D}x.txt",
            "a\u{2066}b\u{2069}.txt",
            "a\u{200E}.txt",
            "a\u{200F}.txt",
            "a\u{061C}.txt",
            "zero\u{200B}width.txt",
            "bom\u{FEFF}.txt",
            "trailing.",
            "trailing ",
            " leading.txt",
            "a.exe.",
            too_long.as_str(),
        ] {
            let e = name(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
            assert_eq!(e.details().unwrap()["field"], "name", "{bad:?}");
        }
    }

    #[test]
    fn length_is_counted_in_bytes_after_nfc() {
        assert!(name(&"a".repeat(255)).is_ok());
        // 128 two-byte characters: 256 bytes.
        assert!(name(&"é".repeat(128)).is_err());
        assert!(name(&"é".repeat(127)).is_ok());
        // "e" + combining acute is composed into one 2-byte character.
        let decomposed = "cafe\u{301}.txt";
        let n = name(decomposed).unwrap();
        assert_eq!(n.as_str(), "café.txt");
        assert_eq!(n.as_str().len(), "café.txt".len());
    }

    #[test]
    fn extension_is_lowercased_after_the_last_dot() {
        assert_eq!(
            name("Photo.JPG").unwrap().extension().as_deref(),
            Some("jpg")
        );
        assert_eq!(name("a.tar.GZ").unwrap().extension().as_deref(), Some("gz"));
        assert_eq!(name("README").unwrap().extension(), None);
        assert_eq!(name("report.pdf").unwrap().to_string(), "report.pdf");
    }

    #[test]
    fn media_types_are_bare_and_lowercase() {
        let m = MediaType::parse("content_type", "Text/Plain; charset=UTF-8").unwrap();
        assert_eq!(m.as_str(), "text/plain");
        let m = MediaType::parse("content_type", " image/PNG ").unwrap();
        assert_eq!(m.as_str(), "image/png");
        assert_eq!(MediaType::parse("t", DOCX).unwrap().as_str(), DOCX);
        for bad in [
            "",
            "image",
            "image/",
            "/png",
            "image/png/x",
            "ima ge/png",
            "imagé/png",
            ";",
        ] {
            let e = MediaType::parse("content_type", bad).unwrap_err();
            assert_eq!(e.details().unwrap()["field"], "content_type", "{bad:?}");
        }
    }

    #[test]
    fn every_allowed_type_has_extensions_and_parses() {
        for t in DEFAULT_ALLOWED_TYPES {
            let m = MediaType::parse("t", t).unwrap();
            assert_eq!(m.as_str(), *t);
            assert!(!extensions_of(&m).is_empty(), "{t}");
            assert!(!is_always_refused_type(&m), "{t}");
        }
        assert_eq!(DEFAULT_ALLOWED_TYPES.len(), 22);
    }

    #[test]
    fn extension_must_fit_the_type() {
        let t = |s: &str| MediaType::parse("t", s).unwrap();
        assert!(extension_matches(&t("image/jpeg"), Some("jpg")));
        assert!(extension_matches(&t("image/jpeg"), Some("JPEG")));
        assert!(extension_matches(&t("image/heic"), Some("heif")));
        assert!(extension_matches(&t("audio/ogg"), Some("opus")));
        assert!(extension_matches(&t("text/plain"), Some("log")));
        assert!(extension_matches(&t(DOCX), Some("docx")));
        assert!(!extension_matches(&t("image/png"), Some("pdf")));
        assert!(!extension_matches(&t("application/pdf"), Some("png")));
        assert!(!extension_matches(&t("text/plain"), Some("html")));
        assert!(!extension_matches(&t("image/png"), None));
        assert!(!extension_matches(&t("application/x-unknown"), Some("bin")));
        assert!(!extension_matches(&t(XLSX), Some("docx")));
    }

    #[test]
    fn dangerous_extensions_are_always_refused() {
        for e in [
            "exe", "EXE", "dll", "msi", "bat", "cmd", "com", "scr", "ps1", "sh", "bash", "js",
            "mjs", "vbs", "jar", "apk", "app", "html", "HTM", "xhtml", "svg", "svgz", "php", "py",
            "pl", "rb",
        ] {
            assert!(is_always_refused_extension(e), "{e}");
        }
        for e in ["png", "txt", "pdf", "zip", "docx"] {
            assert!(!is_always_refused_extension(e), "{e}");
        }
        let t = |s: &str| MediaType::parse("t", s).unwrap();
        assert!(is_always_refused_type(&t("text/html; charset=utf-8")));
        assert!(is_always_refused_type(&t("image/svg+xml")));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn file_name_parse_is_idempotent(s in "\\PC{0,80}") {
            match FileName::parse("name", &s) {
                Ok(n) => {
                    let again = FileName::parse("name", n.as_str());
                    prop_assert_eq!(again.ok(), Some(n.clone()));
                    prop_assert!(n.as_str().len() <= MAX_FILE_NAME_BYTES);
                }
                Err(e) => {
                    let details = e.details().unwrap_or_default();
                    prop_assert_eq!(details["field"].as_str(), Some("name"));
                }
            }
        }

        #[test]
        fn media_type_parse_is_idempotent(s in "[ -~]{0,40}") {
            if let Ok(m) = MediaType::parse("t", &s) {
                prop_assert_eq!(MediaType::parse("t", m.as_str()).ok(), Some(m));
            }
        }
    }
}
