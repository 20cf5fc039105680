//! What to extract, as given on the command line: `--select NAME=CSS[@attr]`,
//! `--select-all NAME=CSS[@attr]`, `--regex NAME=PATTERN`. Parsed and compiled before any request,
//! so a bad selector or pattern is a usage error, not a surprise halfway through a list.

use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Selector};

use super::collapse_whitespace;

/// Separator between the values of a `--select-all` column.
pub const ALL_SEPARATOR: &str = " | ";

pub(super) static TITLE: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("title").expect("static selector is valid"));

/// Everything extraction is asked for.
#[derive(Debug, Clone, Default)]
pub struct ExtractSpec {
    /// The `title` column (on by default; `--no-title` turns it off).
    pub title: bool,
    pub selects: Vec<SelectSpec>,
    pub patterns: Vec<PatternSpec>,
    /// The `body_sha256` column.
    pub hash: bool,
}

impl ExtractSpec {
    /// Names of the value columns, in order: selectors first, then patterns.
    pub fn value_names(&self) -> impl Iterator<Item = &str> {
        self.selects
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.patterns.iter().map(|p| p.name.as_str()))
    }
}

/// `--select NAME=CSS[@attr]`: the text (or attribute) of the first match, or of all matches.
#[derive(Debug, Clone)]
pub struct SelectSpec {
    pub name: String,
    selector: Selector,
    attr: Option<String>,
    all: bool,
}

impl SelectSpec {
    pub(super) fn find(&self, document: &Html) -> Option<String> {
        let mut values = document
            .select(&self.selector)
            .filter_map(|element| self.value_of(element));
        if !self.all {
            return values.next();
        }
        let values: Vec<String> = values.collect();
        (!values.is_empty()).then(|| values.join(ALL_SEPARATOR))
    }

    fn value_of(&self, element: ElementRef<'_>) -> Option<String> {
        match &self.attr {
            Some(attr) => element.attr(attr).map(collapse_whitespace),
            None => Some(collapse_whitespace(&element.text().collect::<String>())),
        }
    }
}

/// `--regex NAME=PATTERN`: the first capture group of the first match (or the whole match when
/// the pattern has no group), searched in the decoded body.
#[derive(Debug, Clone)]
pub struct PatternSpec {
    pub name: String,
    regex: Regex,
}

impl PatternSpec {
    pub(super) fn find(&self, text: &str) -> Option<String> {
        let captures = self.regex.captures(text)?;
        let found = captures.get(1).or_else(|| captures.get(0))?;
        Some(collapse_whitespace(found.as_str()))
    }
}

/// The first match's text, whitespace collapsed.
pub(super) fn first_text(document: &Html, selector: &Selector) -> Option<String> {
    document
        .select(selector)
        .next()
        .map(|e| collapse_whitespace(&e.text().collect::<String>()))
}

/// Parses `NAME=CSS` or `NAME=CSS@attr`. `all` joins every match instead of taking the first.
pub fn parse_select(text: &str, all: bool) -> Result<SelectSpec, String> {
    let (name, css) = split_named(text, "CSS selector")?;
    let (css, attr) = split_attr(css);
    let selector =
        Selector::parse(css).map_err(|e| format!("'{css}' is not a valid CSS selector: {e}"))?;
    Ok(SelectSpec {
        name,
        selector,
        attr: attr.map(str::to_owned),
        all,
    })
}

/// Parses `NAME=PATTERN` (Rust regex syntax).
pub fn parse_pattern(text: &str) -> Result<PatternSpec, String> {
    let (name, pattern) = split_named(text, "regular expression")?;
    let regex = Regex::new(pattern).map_err(|e| format!("invalid regular expression: {e}"))?;
    Ok(PatternSpec { name, regex })
}

/// `NAME=REST`, with NAME a column name: letters, digits, `_`, `-` and `.`, starting with a
/// letter or `_`.
fn split_named<'a>(text: &'a str, what: &str) -> Result<(String, &'a str), String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not NAME={what}"))?;
    let name = name.trim();
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(format!(
            "'{name}' is not a column name (letters, digits, '_', '-', '.'; starting with a \
             letter or '_')"
        ));
    }
    if rest.trim().is_empty() {
        return Err(format!("'{text}' has no {what} after '='"));
    }
    Ok((name.to_owned(), rest.trim()))
}

/// Splits `CSS@attr` when the part after the last `@` is an attribute name and the `@` is not
/// inside brackets or quotes (where it belongs to the selector, as in `a[href^="mailto:x@y"]`).
fn split_attr(css: &str) -> (&str, Option<&str>) {
    let Some(at) = css.rfind('@') else {
        return (css, None);
    };
    let (selector, attr) = (&css[..at], &css[at + 1..]);
    let inside = selector.matches('[').count() > selector.matches(']').count()
        || selector.matches('"').count() % 2 == 1
        || selector.matches('\'').count() % 2 == 1;
    let is_name = !attr.is_empty()
        && attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
    if inside || !is_name {
        (css, None)
    } else {
        (selector.trim(), Some(attr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_attributes_but_not_inside_selectors() {
        assert_eq!(
            split_attr("meta[property=\"og:title\"]@content"),
            ("meta[property=\"og:title\"]", Some("content"))
        );
        assert_eq!(
            split_attr("a[href^=\"mailto:x@y\"]"),
            ("a[href^=\"mailto:x@y\"]", None)
        );
        assert_eq!(split_attr("a@href"), ("a", Some("href")));
        assert_eq!(split_attr("h1"), ("h1", None));
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(parse_select("noequals", false).is_err());
        assert!(parse_select("=h1", false).is_err());
        assert!(parse_select("1bad=h1", false).is_err());
        assert!(parse_select("ok=", false).is_err());
        assert!(parse_select("ok=h1[", false).is_err());
        assert!(parse_select("ok=:::", false).is_err());
        assert!(parse_pattern("ok=(unclosed").is_err());
        assert!(parse_pattern("ok=a(b)c").is_ok());
        assert!(parse_select("og=meta[property=\"og:title\"]@content", false).is_ok());
    }
}
