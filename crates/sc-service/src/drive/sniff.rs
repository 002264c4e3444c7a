//! Magic-byte check of an uploaded object against the type its uploader declared (API.md §12:
//! a mismatch is 415). Binary formats are recognised by their signatures (the `infer` crate's
//! matchers where they fit, a few own ones where infer is stricter than real files are); the
//! text types must be UTF-8 without NUL bytes and must not carry the signature of a binary or
//! an executable. Executables (ELF, PE, Mach-O, Java class, WebAssembly, DEX) and `#!` scripts
//! match no declared type at all.

use sc_core::files::{DOCX, MediaType, PPTX, XLSX};

/// How much of an object the check reads.
pub const SNIFF_WINDOW: usize = 8 * 1024;

/// Whether `head` (the first `SNIFF_WINDOW` bytes of the object, or all of it when shorter)
/// fits the declared type.
pub fn matches_declared(declared: &MediaType, head: &[u8]) -> bool {
    if is_executable(head) {
        return false;
    }
    match declared.as_str() {
        "image/jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/gif" => head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a"),
        "image/webp" => riff(head, b"WEBP"),
        "image/heic" => is_heic(head),
        "video/mp4" | "audio/mp4" | "video/quicktime" => is_iso_media(head),
        "video/webm" | "audio/webm" => is_webm(head),
        "audio/mpeg" => is_mpeg_audio(head),
        "audio/ogg" => head.starts_with(b"OggS\0"),
        "audio/wav" => riff(head, b"WAVE"),
        "application/pdf" => head.starts_with(b"%PDF-"),
        "application/zip" => is_zip(head),
        t @ (DOCX | XLSX | PPTX) => is_ooxml(t, head),
        "text/plain" | "text/markdown" | "text/csv" => is_text(head),
        "application/json" => is_text(head) && looks_like_json(head),
        other => fallback(other, head),
    }
}

/// Executables and scripts: never stored as anything, whatever they are declared as.
fn is_executable(head: &[u8]) -> bool {
    let b = strip_bom(head);
    head.starts_with(b"\x7fELF")
        || head.starts_with(b"MZ")
        || head.starts_with(b"\0asm")
        || head.starts_with(b"dex\n")
        || matches!(
            head.get(..4),
            Some(
                [0xFE, 0xED, 0xFA, 0xCE | 0xCF]
                    | [0xCE | 0xCF, 0xFA, 0xED, 0xFE]
                    | [0xCA, 0xFE, 0xBA, 0xBE]
            )
        )
        || b.starts_with(b"#!")
        || infer::app::is_java(head)
        || infer::app::is_mach(head)
        || infer::app::is_dey(head)
}

fn strip_bom(head: &[u8]) -> &[u8] {
    head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head)
}

/// `RIFF` (or the 64-bit `RF64`/`BW64`) container of the given form type.
fn riff(head: &[u8], form: &[u8; 4]) -> bool {
    head.len() >= 12 && matches!(&head[..4], b"RIFF" | b"RF64" | b"BW64") && &head[8..12] == form
}

/// The `ftyp` box of an ISO base media file: major brand and the compatible brands present in
/// `head`. `None` when there is no `ftyp` box at the start or a brand is not four printable
/// characters.
fn ftyp(head: &[u8]) -> Option<([u8; 4], Vec<[u8; 4]>)> {
    if head.len() < 12 || &head[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(head[..4].try_into().ok()?) as usize;
    if size < 16 {
        return None;
    }
    let brand = |b: &[u8]| -> Option<[u8; 4]> {
        let b: [u8; 4] = b.try_into().ok()?;
        b.iter()
            .all(|c| c.is_ascii_graphic() || *c == b' ')
            .then_some(b)
    };
    let major = brand(&head[8..12])?;
    let end = size.min(head.len());
    let compatible = head
        .get(16..end)
        .unwrap_or_default()
        .chunks_exact(4)
        .filter_map(brand)
        .collect();
    Some((major, compatible))
}

/// Brands of still-image files in the HEIF family (HEIC, AVIF).
const IMAGE_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
    b"avci", b"avcs",
];
const HEIC_BRANDS: &[&[u8; 4]] = &[b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"];

fn is_heic(head: &[u8]) -> bool {
    let Some((major, compatible)) = ftyp(head) else {
        return false;
    };
    HEIC_BRANDS.contains(&&major)
        || (matches!(&major, b"mif1" | b"msf1")
            && compatible.iter().any(|b| HEIC_BRANDS.contains(&b)))
        || infer::image::is_heif(head)
}

/// MP4, M4A, M4V, 3GP and QuickTime: one family, accepted loosely for any of the three types
/// (an audio-only MP4 is often labelled video/mp4 and the other way round). Still-image brands
/// are not video. QuickTime files older than `ftyp` start with a `moov`, `mdat`, `wide`, `free`,
/// `skip` or `pnot` atom.
fn is_iso_media(head: &[u8]) -> bool {
    if let Some((major, _)) = ftyp(head) {
        return !IMAGE_BRANDS.contains(&&major);
    }
    head.len() >= 8
        && matches!(
            &head[4..8],
            b"moov" | b"mdat" | b"wide" | b"free" | b"skip" | b"pnot"
        )
}

/// An EBML header whose DocType is `webm` (infer needs more than 256 bytes; short files are
/// valid too).
fn is_webm(head: &[u8]) -> bool {
    head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
        && head[..head.len().min(256)]
            .windows(7)
            .any(|w| w == b"\x42\x82\x84webm")
}

/// ID3v2 tag, or an MPEG audio frame header (layer I–III, any version, valid bitrate and
/// sample-rate indexes; AAC's ADTS headers have layer 0 and are refused).
fn is_mpeg_audio(head: &[u8]) -> bool {
    if head.len() >= 4 && head.starts_with(b"ID3") && head[3] < 0xFF {
        return true;
    }
    match head {
        [0xFF, b1, b2, ..] => {
            let sync = b1 & 0xE0 == 0xE0;
            let version = (b1 >> 3) & 0b11;
            let layer = (b1 >> 1) & 0b11;
            let bitrate = b2 >> 4;
            let rate = (b2 >> 2) & 0b11;
            sync && version != 0b01 && layer != 0 && bitrate != 0xF && rate != 0b11
        }
        _ => false,
    }
}

/// A ZIP archive: a local file header, or the end record of an empty archive.
fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(b"PK\x07\x08PK\x03\x04")
}

/// OOXML documents are ZIP archives; infer tells the three apart only when the entries come in
/// Office's order, so any ZIP is accepted unless it is recognisably another of the three.
fn is_ooxml(declared: &str, head: &[u8]) -> bool {
    if !head.starts_with(b"PK\x03\x04") {
        return false;
    }
    let detected = if infer::doc::is_docx(head) {
        Some(DOCX)
    } else if infer::doc::is_xlsx(head) {
        Some(XLSX)
    } else if infer::doc::is_pptx(head) {
        Some(PPTX)
    } else {
        None
    };
    detected.is_none_or(|d| d == declared)
}

/// Signatures of infer's that are plain ASCII and short enough to begin ordinary prose or a CSV
/// row ("BMW,…" is not a bitmap): not held against a text file.
/// (LLVM bitcode is "BC", PostScript "%!", a bitmap "BM".)
const WEAK_SIGNATURES: &[&str] = &["bmp", "ps", "bz2", "swf", "mp3", "pem", "bc", "xml", "html"];

/// UTF-8 text: no NUL byte, valid UTF-8 (a multi-byte character cut by the end of a full
/// window is fine), no binary signature, and not a whole HTML or SVG document.
fn is_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    if let Err(e) = std::str::from_utf8(head) {
        let cut_at_window_end = e.error_len().is_none() && head.len() >= SNIFF_WINDOW;
        if !cut_at_window_end {
            return false;
        }
    }
    if let Some(kind) = infer::get(head)
        && !WEAK_SIGNATURES.contains(&kind.extension())
    {
        return false;
    }
    !is_markup_document(head)
}

/// A document a browser would render as a page: `<!doctype html`, `<html`, `<svg`, `<script`,
/// or an XML prolog followed by HTML or SVG.
fn is_markup_document(head: &[u8]) -> bool {
    let t = strip_bom(head).trim_ascii_start();
    let starts = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
    if starts(b"<!doctype html") || starts(b"<html") || starts(b"<svg") || starts(b"<script") {
        return true;
    }
    if starts(b"<?xml") {
        let lower = t.to_ascii_lowercase();
        let has = |p: &[u8]| lower.windows(p.len()).any(|w| w == p);
        return has(b"<svg") || has(b"<html") || has(b"<!doctype html");
    }
    false
}

/// JSON text starts (after white space and an optional BOM) with a value.
fn looks_like_json(head: &[u8]) -> bool {
    let t = strip_bom(head).trim_ascii_start();
    matches!(
        t.first(),
        Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    )
}

/// A type an operator added to the allow-list: infer decides where it knows the type; other
/// `text/*` types are checked as text; anything else cannot be verified and is refused.
fn fallback(declared: &str, head: &[u8]) -> bool {
    if infer::is_mime_supported(declared) {
        return infer::is_mime(head, declared);
    }
    declared.starts_with("text/") && is_text(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sc_core::files::DEFAULT_ALLOWED_TYPES;

    fn mt(s: &str) -> MediaType {
        MediaType::parse("content_type", s).unwrap()
    }

    fn pad(mut v: Vec<u8>, to: usize) -> Vec<u8> {
        let mut i = 0u8;
        while v.len() < to {
            v.push(i);
            i = i.wrapping_add(37);
        }
        v
    }

    fn ftyp_box(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len();
        let mut v = (size as u32).to_be_bytes().to_vec();
        v.extend_from_slice(b"ftyp");
        v.extend_from_slice(major);
        v.extend_from_slice(&[0, 0, 2, 0]);
        for c in compatible {
            v.extend_from_slice(*c);
        }
        v.extend_from_slice(&[0, 0, 0, 8]);
        v.extend_from_slice(b"mdat");
        pad(v, 512)
    }

    fn zip_entry(name: &str) -> Vec<u8> {
        let mut v = b"PK\x03\x04\x14\x00\x06\x00\x08\x00".to_vec();
        v.extend_from_slice(&[0; 16]);
        v.extend_from_slice(&(name.len() as u16).to_le_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(name.as_bytes());
        pad(v, 300)
    }

    fn png() -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
        v.extend_from_slice(&[0x1f, 0x15, 0xc4, 0x89]);
        pad(v, 200)
    }

    fn elf() -> Vec<u8> {
        pad(
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0".to_vec(),
            256,
        )
    }

    fn webm() -> Vec<u8> {
        let mut v = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F];
        v.extend_from_slice(b"\x42\x86\x81\x01\x42\xF7\x81\x01\x42\xF2\x81\x04\x42\xF3\x81\x08");
        v.extend_from_slice(b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02");
        pad(v, 120)
    }

    /// A real-looking head for every allowed type.
    fn samples() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (
                "image/jpeg",
                pad(
                    b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0".to_vec(),
                    300,
                ),
            ),
            ("image/png", png()),
            (
                "image/gif",
                pad(b"GIF89a\x01\0\x01\0\x80\0\0".to_vec(), 100),
            ),
            (
                "image/webp",
                pad(b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0".to_vec(), 100),
            ),
            ("image/heic", ftyp_box(b"heic", &[b"mif1", b"heic"])),
            (
                "video/mp4",
                ftyp_box(b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"]),
            ),
            ("video/webm", webm()),
            ("video/quicktime", ftyp_box(b"qt  ", &[b"qt  "])),
            (
                "audio/mpeg",
                pad(b"ID3\x04\0\0\0\0\x01\x00TIT2".to_vec(), 200),
            ),
            (
                "audio/ogg",
                pad(b"OggS\0\x02\0\0\0\0\0\0\0\0\x01\0\0\0".to_vec(), 200),
            ),
            (
                "audio/wav",
                pad(
                    b"RIFF\x24\x08\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0".to_vec(),
                    200,
                ),
            ),
            ("audio/webm", webm()),
            ("audio/mp4", ftyp_box(b"M4A ", &[b"M4A ", b"mp42", b"isom"])),
            (
                "application/pdf",
                pad(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n".to_vec(), 400),
            ),
            (
                "text/plain",
                "Hello, world.\nSecond line — ünïcödé ✓\n".into(),
            ),
            (
                "text/markdown",
                "# Title\n\n<p align=\"center\">logo</p>\n\n* item\n".into(),
            ),
            ("text/csv", "name,amount\nBMW,12\n\"a, b\",3\n".into()),
            (
                "application/json",
                "\u{feff}  {\"a\": [1, 2, null]}\n".into(),
            ),
            ("application/zip", zip_entry("notes/readme.txt")),
            (DOCX, zip_entry("word/document.xml")),
            (XLSX, zip_entry("xl/workbook.xml")),
            (PPTX, zip_entry("ppt/presentation.xml")),
        ]
    }

    #[test]
    fn every_allowed_type_matches_its_own_magic() {
        let samples = samples();
        for t in DEFAULT_ALLOWED_TYPES {
            let (_, head) = samples
                .iter()
                .find(|(s, _)| s == t)
                .unwrap_or_else(|| panic!("no sample for {t}"));
            assert!(matches_declared(&mt(t), head), "{t}");
        }
    }

    #[test]
    fn no_binary_sample_matches_a_different_family() {
        // Types that share a container are one family here.
        fn family(t: &str) -> &str {
            match t {
                "video/mp4" | "audio/mp4" | "video/quicktime" => "iso",
                "video/webm" | "audio/webm" => "webm",
                "application/zip" | DOCX | XLSX | PPTX => "zip",
                "text/plain" | "text/markdown" | "text/csv" | "application/json" => "text",
                other => other,
            }
        }
        let samples = samples();
        for (declared, _) in &samples {
            for (actual, head) in &samples {
                if family(declared) == family(actual) {
                    continue;
                }
                // Text types accept other text (CSV is plain text); binaries must be told apart.
                assert!(
                    !matches_declared(&mt(declared), head),
                    "{actual} accepted as {declared}"
                );
            }
        }
    }

    #[test]
    fn png_declared_as_pdf_and_elf_declared_as_png_are_refused() {
        assert!(!matches_declared(&mt("application/pdf"), &png()));
        assert!(!matches_declared(&mt("image/png"), &elf()));
    }

    #[test]
    fn executables_and_scripts_match_nothing() {
        let pe = pad(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0".to_vec(), 256);
        let macho = pad(vec![0xCF, 0xFA, 0xED, 0xFE, 0x07, 0, 0, 0x01], 256);
        let fat = pad(vec![0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 2], 256);
        let wasm = pad(b"\0asm\x01\0\0\0".to_vec(), 64);
        let script = b"#!/bin/sh\necho hello\n".to_vec();
        let bom_script = b"\xEF\xBB\xBF#!/usr/bin/env python3\nprint(1)\n".to_vec();
        for head in [elf(), pe, macho, fat, wasm, script, bom_script] {
            for t in DEFAULT_ALLOWED_TYPES {
                assert!(!matches_declared(&mt(t), &head), "{t} {:?}", &head[..8]);
            }
            assert!(!matches_declared(&mt("application/octet-stream"), &head));
        }
    }

    #[test]
    fn text_must_be_utf8_without_nul_or_binary_signatures() {
        let t = mt("text/plain");
        assert!(matches_declared(&t, b""));
        assert!(matches_declared(&t, b"plain ascii"));
        assert!(!matches_declared(&t, b"nul\0inside"));
        assert!(!matches_declared(&t, b"latin-1 caf\xE9 au lait"));
        assert!(!matches_declared(&t, &png()));
        assert!(!matches_declared(&t, b"%PDF-1.4\n"));
        assert!(!matches_declared(&t, b"PK\x03\x04whatever"));
        assert!(!matches_declared(&t, b"GIF89a but text"));
        assert!(!matches_declared(
            &t,
            b"MZ could be prose, but it is the PE signature"
        ));
        assert!(!matches_declared(
            &t,
            b"<!DOCTYPE html><html><script>alert(1)</script>"
        ));
        assert!(!matches_declared(
            &t,
            b"  <svg xmlns=\"http://www.w3.org/2000/svg\"/>"
        ));
        assert!(!matches_declared(
            &t,
            b"<?xml version=\"1.0\"?>\n<svg onload=\"x()\"/>"
        ));
        assert!(matches_declared(&t, b"<?xml version=\"1.0\"?>\n<notes/>"));
        // Weak ASCII signatures do not make prose binary.
        assert!(matches_declared(
            &t,
            b"BM is a bitmap prefix, and also the start of BMW"
        ));
        assert!(matches_declared(&t, b"ID3 tags are described below."));
        assert!(matches_declared(&t, b"BC Hydro, 2024"));
        assert!(matches_declared(&t, b"-----BEGIN CERTIFICATE-----\nMIIB\n"));
    }

    #[test]
    fn a_character_cut_by_the_window_is_fine_only_at_its_end() {
        let t = mt("text/plain");
        // "é" is C3 A9 and "✓" E2 9C 93: a window ending in C3, or in E2 9C, cut one of them.
        let mut full = "é".repeat(SNIFF_WINDOW / 2 - 1).into_bytes();
        full.extend_from_slice(b"a\xC3");
        assert_eq!(full.len(), SNIFF_WINDOW);
        assert!(matches_declared(&t, &full));
        let mut full = vec![b'a'; SNIFF_WINDOW - 2];
        full.extend_from_slice(b"\xE2\x9C");
        assert!(matches_declared(&t, &full));
        // A short object is the whole file: a cut character there is invalid UTF-8.
        assert!(!matches_declared(&t, b"caf\xC3"));
        // An invalid byte that is not a cut character is refused even at the window's end.
        let mut bad = vec![b'a'; SNIFF_WINDOW];
        bad[SNIFF_WINDOW - 1] = 0xFF;
        assert!(!matches_declared(&t, &bad));
    }

    #[test]
    fn json_starts_with_a_value() {
        let j = mt("application/json");
        for ok in [
            "{}",
            "[1]",
            " \n\t\"s\"",
            "-1",
            "3.5",
            "true",
            "false",
            "null",
        ] {
            assert!(matches_declared(&j, ok.as_bytes()), "{ok}");
        }
        for bad in ["", "   ", "hello", "<x/>", "'single'", "#!/bin/sh\n{}"] {
            assert!(!matches_declared(&j, bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn iso_media_family_is_loose_but_not_images() {
        let m4v = ftyp_box(b"M4V ", &[b"M4V ", b"mp42"]);
        let mp42 = ftyp_box(b"mp42", &[b"mp42", b"isom"]);
        let gp = ftyp_box(b"3gp5", &[b"3gp5"]);
        for t in ["video/mp4", "audio/mp4", "video/quicktime"] {
            for head in [&m4v, &mp42, &gp] {
                assert!(matches_declared(&mt(t), head), "{t}");
            }
            let old_mov = pad(b"\0\0\0\x08wide\0\0\0\x10mdat".to_vec(), 64);
            assert!(matches_declared(&mt(t), &old_mov), "{t}");
            let heic = ftyp_box(b"heic", &[b"mif1", b"heic"]);
            let avif = ftyp_box(b"avif", &[b"mif1", b"avif"]);
            assert!(!matches_declared(&mt(t), &heic), "{t}");
            assert!(!matches_declared(&mt(t), &avif), "{t}");
        }
        // HEIC: heic brands, or mif1 with a heic compatible brand; AVIF is not HEIC.
        let h = mt("image/heic");
        assert!(matches_declared(
            &h,
            &ftyp_box(b"mif1", &[b"mif1", b"heic"])
        ));
        assert!(matches_declared(
            &h,
            &ftyp_box(b"heix", &[b"mif1", b"heix"])
        ));
        assert!(!matches_declared(
            &h,
            &ftyp_box(b"avif", &[b"mif1", b"avif"])
        ));
        assert!(!matches_declared(
            &h,
            &ftyp_box(b"mif1", &[b"mif1", b"avif"])
        ));
        assert!(!matches_declared(&h, &mp42));
    }

    #[test]
    fn mpeg_audio_frames_and_other_audio() {
        let a = mt("audio/mpeg");
        assert!(matches_declared(&a, &[0xFF, 0xFB, 0x90, 0x64, 0, 0]));
        assert!(matches_declared(&a, &[0xFF, 0xF3, 0x48, 0xC4, 0, 0]));
        // AAC ADTS (layer 0) and a bad bitrate index are not MP3.
        assert!(!matches_declared(&a, &[0xFF, 0xF1, 0x50, 0x80, 0, 0]));
        assert!(!matches_declared(&a, &[0xFF, 0xFB, 0xF0, 0x64, 0, 0]));
        // Ogg Opus is audio/ogg; Matroska is not WebM.
        let opus = pad(
            b"OggS\0\x02\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\x13OpusHead".to_vec(),
            80,
        );
        assert!(matches_declared(&mt("audio/ogg"), &opus));
        let mut mkv = webm();
        let at = mkv.windows(4).position(|w| w == b"webm").unwrap();
        mkv.splice(at - 1..at + 4, b"\x88matroska".iter().copied());
        assert!(!matches_declared(&mt("video/webm"), &mkv));
    }

    #[test]
    fn zip_family() {
        let empty_zip = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        assert!(matches_declared(&mt("application/zip"), &empty_zip));
        // An empty archive is no document.
        assert!(!matches_declared(&mt(DOCX), &empty_zip));
        // A plain ZIP passes for any OOXML type (infer cannot always tell), a recognisable
        // other OOXML type does not.
        let plain = zip_entry("[Content_Types].xml");
        for t in [DOCX, XLSX, PPTX] {
            assert!(matches_declared(&mt(t), &plain), "{t}");
        }
        assert!(!matches_declared(
            &mt(XLSX),
            &zip_entry("word/document.xml")
        ));
        assert!(!matches_declared(
            &mt(DOCX),
            &zip_entry("ppt/slides/slide1.xml")
        ));
        assert!(matches_declared(
            &mt("application/zip"),
            &zip_entry("word/document.xml")
        ));
    }

    #[test]
    fn widened_types_use_infer_or_are_refused() {
        let flac = pad(b"fLaC\0\0\0\x22".to_vec(), 64);
        assert!(matches_declared(&mt("audio/x-flac"), &flac));
        assert!(!matches_declared(&mt("audio/x-flac"), &png()));
        assert!(matches_declared(&mt("text/x-rst"), b"Title\n=====\n"));
        assert!(!matches_declared(&mt("application/x-unknown"), b"anything"));
    }
}
