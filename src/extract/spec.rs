//! What to extract, as given on the command line: `--select NAME=CSS[@attr]`,
//! `--select-all NAME=CSS[@attr]`, `--regex NAME=PATTERN`. Parsed and compiled before any request,
//! so a bad selector or pattern is a usage error, not a surprise halfway through a list.

use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Selector};

use super::{collapse_whitespace, shorten};

/// Longest value written in a selector or regex column, in characters: a spreadsheet cell
/// holds at most 32,767.
pub const VALUE_LIMIT: usize = 32_767;

/// Separator between the values of a `--select-all` column.
pub const ALL_SEPARATOR: &str = " | ";

#[allow(clippy::expect_used)] // A constant selector: it parses, or no test would pass.
pub(super) static TITLE: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("title").expect("static selector is valid"));

/// Everything extraction is asked for.
#[derive(Debug, Clone, Default)]
pub struct ExtractSpec {
    /// The `title` column (on by default; `--no-title` turns it off).
    pub title: bool,
    /// One column each, in the order given on the command line.
    pub values: Vec<ValueSpec>,
    /// The `body_sha256` column.
    pub hash: bool,
}

/// A value column: a selector or a pattern.
#[derive(Debug, Clone)]
pub enum ValueSpec {
    Select(SelectSpec),
    Pattern(PatternSpec),
}

impl ValueSpec {
    pub fn name(&self) -> &str {
        match self {
            ValueSpec::Select(s) => &s.name,
            ValueSpec::Pattern(p) => &p.name,
        }
    }

    /// What the column extracts, as one line: `select:CSS`, `select-all:CSS@attr`,
    /// `regex:PATTERN`. Two columns describe alike exactly when they extract alike.
    pub fn describe(&self) -> String {
        match self {
            ValueSpec::Select(s) => {
                let kind = if s.all { "select-all" } else { "select" };
                match &s.attr {
                    Some(attr) => format!("{kind}:{}@{attr}", s.css),
                    None => format!("{kind}:{}", s.css),
                }
            }
            ValueSpec::Pattern(p) => format!("regex:{}", p.regex.as_str()),
        }
    }
}

impl From<SelectSpec> for ValueSpec {
    fn from(spec: SelectSpec) -> Self {
        ValueSpec::Select(spec)
    }
}

impl From<PatternSpec> for ValueSpec {
    fn from(spec: PatternSpec) -> Self {
        ValueSpec::Pattern(spec)
    }
}

impl ExtractSpec {
    /// Names of the value columns, in order.
    pub fn value_names(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(ValueSpec::name)
    }

    pub(super) fn has_selects(&self) -> bool {
        self.values
            .iter()
            .any(|v| matches!(v, ValueSpec::Select(_)))
    }

    pub(super) fn has_patterns(&self) -> bool {
        self.values
            .iter()
            .any(|v| matches!(v, ValueSpec::Pattern(_)))
    }
}

/// `--select NAME=CSS[@attr]`: the text (or attribute) of the first match, or of all matches.
#[derive(Debug, Clone)]
pub struct SelectSpec {
    pub name: String,
    /// The selector as given.
    css: String,
    selector: Selector,
    attr: Option<String>,
    all: bool,
}

impl SelectSpec {
    /// The value: the first match's, or (`--select-all`) every non-empty match's, joined, cut at
    /// [`VALUE_LIMIT`] characters. Text is gathered only up to the limit, so deeply nested
    /// matches (each containing the text of the next) cost no more than the limit each.
    pub(super) fn find(&self, document: &Html) -> Option<String> {
        let mut values = document
            .select(&self.selector)
            .filter_map(|element| self.value_of(element));
        if !self.all {
            return values.next();
        }
        let mut joined = String::new();
        for value in values.filter(|v| !v.is_empty()) {
            if !joined.is_empty() {
                joined.push_str(ALL_SEPARATOR);
            }
            joined.push_str(&value);
            if joined.len() > VALUE_LIMIT * 4 {
                break; // Enough to fill the cell, whatever the character widths.
            }
        }
        (!joined.is_empty()).then(|| shorten(joined, VALUE_LIMIT))
    }

    fn value_of(&self, element: ElementRef<'_>) -> Option<String> {
        match &self.attr {
            Some(attr) => element
                .attr(attr)
                .map(|v| shorten(collapse_whitespace(v), VALUE_LIMIT)),
            None => Some(bounded_text(element)),
        }
    }
}

/// An element's text, whitespace collapsed, gathering no more than a cell can hold.
fn bounded_text(element: ElementRef<'_>) -> String {
    let mut text = String::new();
    for piece in element.text() {
        text.push_str(piece);
        if text.len() > VALUE_LIMIT * 4 {
            break;
        }
    }
    shorten(collapse_whitespace(&text), VALUE_LIMIT)
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
        Some(shorten(collapse_whitespace(found.as_str()), VALUE_LIMIT))
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
    if css.is_empty() {
        return Err(format!("'{text}' has no CSS selector before '@'"));
    }
    let selector = Selector::parse(css).map_err(|e| {
        // scraper's message for unsupported selectors asks to report a bug; say what it is.
        let why = match e.to_string() {
            m if m.contains("report this") => format!("{e:?}"),
            m => m,
        };
        format!("'{css}' is not a CSS selector fetch can use: {why}")
    })?;
    Ok(SelectSpec {
        name,
        css: css.to_owned(),
        selector,
        // HTML attribute names are case-insensitive, and the parser lowercases them.
        attr: attr.map(str::to_ascii_lowercase),
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
