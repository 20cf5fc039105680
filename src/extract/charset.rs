//! Turning body bytes into text with the right character encoding, in the order browsers use:
//! a byte-order mark, then the `Content-Type` charset, then a `<meta charset>` (or `http-equiv`)
//! in the first 1024 bytes, then a statistical guess (chardetng). A Latin-1 page shows "é", not
//! mojibake, whether or not its server said so.

use std::borrow::Cow;
use std::sync::LazyLock;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8};
use memchr::memmem;

/// How far into a page a `<meta>` charset declaration is looked for (the HTML spec's prescan).
const META_PRESCAN: usize = 1024;

/// `declared`: the charset the `Content-Type` names, from [`declared`]. `prefix`: the bytes are
/// the start of a longer body (a capture keeps only what it needs), so a multi-byte character
/// cut at their end is not a sign of a wrong encoding.
pub(super) fn decode<'a>(
    bytes: &'a [u8],
    declared: Option<&'static Encoding>,
    prefix: bool,
) -> Cow<'a, str> {
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        let text = bytes.get(bom..).unwrap_or_default();
        return encoding.decode_without_bom_handling(text).0;
    }
    let encoding = declared
        .or_else(|| meta_charset(bytes.get(..META_PRESCAN).unwrap_or(bytes)))
        .unwrap_or_else(|| guess(bytes, prefix));
    encoding.decode_without_bom_handling(bytes).0
}

/// Whether [`decode`] would read ASCII bytes of `bytes` as the same ASCII characters: true for
/// every encoding a page can end up with but UTF-16 (by BOM or header) and the few the HTML spec
/// maps to "replacement". The guess never picks one of those (ISO-2022-JP is denied).
pub(super) fn keeps_ascii(bytes: &[u8], declared: Option<&'static Encoding>) -> bool {
    let encoding = match Encoding::for_bom(bytes) {
        Some((encoding, _)) => Some(encoding),
        None => declared.or_else(|| {
            let head = bytes.get(..META_PRESCAN).unwrap_or(bytes);
            may_name_iso_2022_jp(head)
                .then(|| meta_charset(head))
                .flatten()
        }),
    };
    encoding.is_none_or(Encoding::is_ascii_compatible)
}

/// Whether a `<meta>` in `head` could name the one encoding it can declare that does not keep
/// ASCII: ISO-2022-JP (UTF-16 and the "replacement" labels read as UTF-8, see [`meta_charset`]).
/// Both its labels, `iso-2022-jp` and `csiso2022jp`, contain `2022`; most heads do not, and then
/// the prescan, tag by tag, is not needed to know the title's ASCII is ASCII.
fn may_name_iso_2022_jp(head: &[u8]) -> bool {
    static LABEL_PART: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("2022"));
    LABEL_PART.find(head).is_some()
}

/// The charset a `Content-Type` names, if it is one we know (then no `<meta>` is looked for).
/// Worked out once per response: it is needed at the start of the body and again at the end.
pub(super) fn declared(content_type: Option<&str>) -> Option<&'static Encoding> {
    content_type.and_then(header_charset)
}

/// `charset=` in a `Content-Type` value (parameters are separated by `;`, with HTTP's optional
/// whitespace, spaces and tabs, around them).
fn header_charset(content_type: &str) -> Option<&'static Encoding> {
    let mut params = content_type.as_bytes().split(|&b| b == b';').skip(1);
    params.find_map(|param| {
        let at = param.iter().position(|&b| b == b'=')?;
        let (key, value) = (param.get(..at)?, param.get(at + 1..)?);
        if !key.trim_ascii().eq_ignore_ascii_case(b"charset") {
            return None;
        }
        let quote = |b: &u8| matches!(b, b'"' | b'\'');
        let value = value.trim_ascii();
        let start = value.iter().position(|b| !quote(b)).unwrap_or(value.len());
        let end = value
            .iter()
            .rposition(|b| !quote(b))
            .map_or(start, |e| e + 1);
        let label = value.get(start..end).unwrap_or_default();
        // By far the most common label, without the table lookup.
        if label.eq_ignore_ascii_case(b"utf-8") {
            return Some(UTF_8);
        }
        Encoding::for_label(label)
    })
}

/// A charset declared in a `<meta charset=...>` or `<meta http-equiv="Content-Type"
/// content="...; charset=...">` tag. UTF-16 declared in ASCII-compatible bytes means UTF-8, as
/// the HTML spec says.
///
/// Tags are matched without regard to case where they stand, rather than in a lowercased copy
/// of the head: this runs for every page whose server names no charset, and most have no
/// `<meta>` with one.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let mut past_tag = 0;
    for start in memchr::memchr_iter(b'<', head) {
        let from_tag = head.get(start..).unwrap_or_default();
        if start < past_tag || !starts_with_ignoring_case(from_tag, b"<meta") {
            continue;
        }
        let tag = from_tag.split(|&b| b == b'>').next().unwrap_or_default();
        if let Some(encoding) = tag_charset(tag) {
            let ascii_compatible = encoding.output_encoding();
            return Some(if ascii_compatible == encoding {
                encoding
            } else {
                UTF_8
            });
        }
        past_tag = start + tag.len().max(1);
    }
    None
}

/// The encoding a `<meta ...` tag (up to its `>`) names with `charset=`, if known.
fn tag_charset(tag: &[u8]) -> Option<&'static Encoding> {
    const NAME: &[u8] = b"charset=";
    let at = tag
        .windows(NAME.len())
        .position(|w| w.eq_ignore_ascii_case(NAME))?;
    let value = tag.get(at + NAME.len()..)?;
    let value = value
        .strip_prefix(b"\"")
        .or_else(|| value.strip_prefix(b"'"))
        .unwrap_or(value);
    let label = value
        .split(|&b| matches!(b, b'"' | b'\'' | b';' | b' ' | b'/' | b'>'))
        .next()?;
    // Labels are matched without regard to ASCII case.
    Encoding::for_label(label)
}

fn guess(bytes: &[u8], prefix: bool) -> &'static Encoding {
    // Pages that can run scripts must not be guessed as ISO-2022-JP; UTF-8 is allowed, as bodies
    // are never executed here.
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(bytes, !prefix);
    detector.guess(None, Utf8Detection::Allow)
}

pub(super) fn starts_with_ignoring_case(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATIN1_CAFE: &[u8] = b"<title>Caf\xe9 cr\xe8me</title>";

    /// Found by the `title` fuzz target: a UTF-8 page whose kept head ended inside a character
    /// was guessed as windows-1251.
    #[test]
    fn a_character_cut_at_the_end_of_a_prefix_is_not_a_wrong_guess() {
        let page = "<title>\u{fffd}\u{fffd} ((((</title> \u{102}".as_bytes();
        let cut = page.get(..page.len() - 1).unwrap();
        assert_eq!(guess(cut, true), UTF_8);
        assert!(decode(cut, None, true).starts_with("<title>\u{fffd}\u{fffd} (((("));
    }

    #[test]
    fn header_charset_wins_over_guessing() {
        assert_eq!(
            decode(
                LATIN1_CAFE,
                declared(Some("text/html; charset=ISO-8859-1")),
                false
            ),
            "<title>Café crème</title>"
        );
    }

    #[test]
    fn meta_charset_is_found_in_the_head() {
        let page = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"><title>Caf\xe9</title>";
        assert!(decode(page, declared(Some("text/html")), false).contains("Café"));
        let page = b"<meta charset='iso-8859-1'><title>Caf\xe9</title>";
        assert!(decode(page, declared(None), false).contains("Café"));
    }

    #[test]
    fn meta_charset_is_read_whatever_the_case_and_after_other_meta_tags() {
        let page = b"<HEAD><Meta Name=viewport Content=\"width=device-width\"><META CHARSET=\"ISO-8859-1\">";
        assert_eq!(meta_charset(page), Some(encoding_rs::WINDOWS_1252));
        let page = b"<meta http-equiv=Content-Type CONTENT=\"text/html; Charset=Shift_JIS\">";
        assert_eq!(meta_charset(page), Some(encoding_rs::SHIFT_JIS));
        // `charset=` inside a tag that is not a <meta> does not count, nor does a bare `<met`.
        let page = b"<link charset=\"koi8-r\"><met charset=koi8-r><metax><meta><p>";
        assert_eq!(meta_charset(page), None);
        // A charset the encoding standard does not know is no declaration.
        assert_eq!(
            meta_charset(b"<meta charset=klingon><meta charset=utf-8>"),
            Some(UTF_8)
        );
        assert_eq!(meta_charset(b"<meta charset=\"UTF-16LE\">"), Some(UTF_8));
        assert_eq!(meta_charset(b"<title>no meta here</title><"), None);
    }

    /// The labels of every encoding that does not keep ASCII, from the WHATWG Encoding
    /// Standard's table: declared in a `<meta>`, only ISO-2022-JP's stay so, which is what lets
    /// [`keeps_ascii`] skip the prescan of heads without `2022`.
    #[test]
    fn of_the_meta_charsets_only_iso_2022_jp_does_not_keep_ascii() {
        let labels = [
            "unicodefffe",
            "utf-16be",
            "csunicode",
            "iso-10646-ucs-2",
            "ucs-2",
            "unicode",
            "unicodefeff",
            "utf-16",
            "utf-16le",
            "csiso2022kr",
            "hz-gb-2312",
            "iso-2022-cn",
            "iso-2022-cn-ext",
            "iso-2022-kr",
            "replacement",
            "csiso2022jp",
            "ISO-2022-JP",
        ];
        for label in labels {
            let page = format!("<head><meta charset=\"{label}\"><title>A title</title>");
            let prescanned =
                meta_charset(page.as_bytes()).is_none_or(Encoding::is_ascii_compatible);
            assert_eq!(keeps_ascii(page.as_bytes(), None), prescanned, "{label}");
            let jp = label.eq_ignore_ascii_case("iso-2022-jp") || label == "csiso2022jp";
            assert_eq!(prescanned, !jp, "{label}");
        }
    }

    #[test]
    fn keeping_ascii_is_decided_the_same_with_or_without_the_prescan() {
        let pages: [&[u8]; 6] = [
            b"<title>2022 results</title>",
            b"<meta name=x content=2022><meta http-equiv=content-type content='text/html; charset=iso-2022-jp'>",
            b"<meta charset=utf-8><title>no year</title>",
            b"\xff\xfe<\x00t\x00",
            b"<!doctype html><title>plain</title>",
            b"<meta charset=shift_jis>",
        ];
        for page in pages {
            let prescanned = match Encoding::for_bom(page) {
                Some((encoding, _)) => Some(encoding),
                None => meta_charset(page),
            };
            let expected = prescanned.is_none_or(Encoding::is_ascii_compatible);
            assert_eq!(
                keeps_ascii(page, None),
                expected,
                "{}",
                String::from_utf8_lossy(page)
            );
        }
        // A declared charset is taken as it is, whatever the page's `<meta>` says.
        let jp = b"<meta charset=iso-2022-jp>";
        assert!(keeps_ascii(jp, Some(UTF_8)));
        assert!(!keeps_ascii(jp, None));
    }

    #[test]
    fn latin1_without_any_declaration_is_guessed() {
        let page = b"<html><head><title>Le caf\xe9 de la gare, o\xf9 l'on d\xe9jeune tr\xe8s bien</title></head></html>";
        assert!(decode(page, declared(Some("text/html")), false).contains("café de la gare, où"));
    }

    #[test]
    fn bom_beats_everything() {
        let page = b"\xEF\xBB\xBF<title>Caf\xc3\xa9</title>";
        assert_eq!(
            decode(page, declared(Some("text/html; charset=iso-8859-1")), false),
            "<title>Café</title>"
        );
    }

    #[test]
    fn utf8_is_utf8() {
        assert_eq!(
            decode(
                "<title>naïve</title>".as_bytes(),
                declared(Some("text/html")),
                false
            ),
            "<title>naïve</title>"
        );
    }
}
