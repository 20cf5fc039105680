//! Finding where a page's title ends while its bytes stream by, without parsing it.
//!
//! A title needs only the start of a page, up to the real `</title>`. The first `</title` bytes
//! are not always it: they can sit in a comment, a script, an attribute value, or close an
//! `<svg><title>` in the body. This scanner follows just enough of HTML's tokenizing rules
//! (tags, attribute quotes, comments, raw-text elements) to tell, in one pass over the bytes
//! with no allocation, so that the parser later sees exactly the head it needs.

use std::ops::Range;

/// Where the scan stands after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    /// Keep going: the title has not ended yet.
    More,
    /// The title ends at this offset in the chunk: just after `</title`, where the byte that
    /// ends the tag's name is (which may be the first of the next chunk: offset 0).
    TitleEnds(usize),
    /// There is no title to find (the body began first); keep nothing past this offset.
    NoTitle(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Just after `<`.
    TagOpen,
    /// Just after `</`.
    EndTagOpen,
    /// Reading a tag's name.
    TagName {
        end: bool,
    },
    /// Inside a tag after its name.
    Attributes {
        end: bool,
        at: Attribute,
    },
    /// Just after `<!`, with how many of the `--` that open a comment were seen.
    MarkupOpen {
        dashes: u8,
    },
    /// `<!--` ... `-->`.
    Comment(CommentAt),
    /// `<!...>`, `<?...>` or `</` not followed by a letter: everything up to the next `>`.
    Bogus,
    /// Inside an element whose text is not markup, until its closing tag.
    RawText {
        closer: &'static [u8],
        matched: usize,
    },
    /// Inside `<script>`, whose end is subtler than other raw text's.
    Script(ScriptAt),
}

/// Where in a script the scan is: the HTML tokenizer's script data states. A `<!--` in a script
/// "escapes" it, and a `<script>` inside that escape "double-escapes" it: there, `</script>`
/// only ends the inner escape, not the script (`<script><!--<script></script>--></script>` is
/// one script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptAt {
    Data,
    /// After `<`.
    Less,
    /// After `<!` and this many `-`.
    Bang {
        dashes: u8,
    },
    /// Escaped, after this many `-` (two or more can end the escape with `>`).
    Escaped {
        dashes: u8,
    },
    /// After `<` in the escape.
    EscapedLess,
    /// After `<` and letters in the escape: how many of `script` they matched so far.
    DoubleStart {
        matched: u8,
    },
    DoubleEscaped {
        dashes: u8,
    },
    /// After `<` in the double escape.
    DoubleLess,
    /// After `</` and letters in the double escape.
    DoubleEnd {
        matched: u8,
    },
    /// After `</` and letters out of the double escape: possibly the script's end tag.
    EndTag {
        matched: u8,
        escaped: bool,
    },
}

/// Where in a tag's attributes the scan is. Only a quote right after `=` opens a quoted value:
/// `<a b'c>` is an attribute named `b'c`, and its `'` opens nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attribute {
    BeforeName,
    Name,
    AfterName,
    BeforeValue,
    Unquoted,
    Quoted(u8),
    AfterQuoted,
}

/// Where in a comment the scan is: the HTML tokenizer's comment states, which also end a
/// comment at `<!-->`, `<!--->` and `--!>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommentAt {
    Start,
    StartDash,
    Text,
    EndDash,
    End,
    EndBang,
}

/// A tag's attributes either go on or the tag ends at this byte.
enum AttributeStep {
    Go(Attribute),
    TagEnds,
}

#[derive(Debug)]
pub(super) struct HeadScanner {
    state: State,
    /// Lowercased start of the current tag's name (enough to recognise the ones that matter).
    name: [u8; 10],
    name_len: usize,
    /// Bytes fed in earlier chunks, to turn offsets in a chunk into offsets in the page.
    seen: usize,
    /// Where the title's text starts in the page (just after `<title ...>`), once seen.
    title_from: Option<usize>,
    /// Where the title's text is in the page, once its end was found.
    title: Option<Range<usize>>,
}

const TITLE_CLOSE: &[u8] = b"</title";

impl Default for HeadScanner {
    fn default() -> Self {
        HeadScanner {
            state: State::Text,
            name: [0; 10],
            name_len: 0,
            seen: 0,
            title_from: None,
            title: None,
        }
    }
}

/// The bytes the HTML tokenizer takes as space between a tag's parts (`\r` becomes `\n` before
/// it looks).
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

impl HeadScanner {
    pub(super) fn feed(&mut self, chunk: &[u8]) -> Scan {
        let mut i = 0;
        while let Some(&byte) = chunk.get(i) {
            // Take runs the state machine would only count through in one go: a tag's name,
            // and the part of a raw-text end tag (`</title`) that matches.
            let run = self.run_length(chunk.get(i..).unwrap_or_default());
            if run > 0 {
                i += run;
                continue;
            }
            // Jump to the next byte that can change the state rather than step through all.
            if let Some([a, b, c]) = self.wanted()
                && byte != a
                && byte != b
                && byte != c
            {
                match memchr::memchr3(a, b, c, chunk.get(i..).unwrap_or_default()) {
                    Some(skip) => i += skip,
                    None => break,
                }
                continue;
            }
            if let Some(scan) = self.step(byte.to_ascii_lowercase(), i) {
                if let (Scan::TitleEnds(_), Some(from)) = (scan, self.title_from) {
                    // This byte ends the tag's name: `</title` is the 7 bytes before it.
                    let to = (self.seen + i).saturating_sub(TITLE_CLOSE.len()).max(from);
                    self.title = Some(from..to);
                }
                self.seen += i + 1;
                return scan;
            }
            i += 1;
        }
        self.seen += chunk.len();
        Scan::More
    }

    /// Where the title's text is in the page, once [`Scan::TitleEnds`] was returned: from just
    /// after `<title ...>` to just before `</title`.
    pub(super) fn title_span(&self) -> Option<Range<usize>> {
        self.title.clone()
    }

    /// How many of `rest`'s first bytes only lengthen a tag's name or a raw-text end tag's
    /// match, taken here at once (what [`HeadScanner::step`] would do one byte at a time).
    fn run_length(&mut self, rest: &[u8]) -> usize {
        match self.state {
            State::TagName { .. } => {
                let name_ends = |b: &u8| is_space(*b) || *b == b'/' || *b == b'>';
                let run = rest.iter().position(name_ends).unwrap_or(rest.len());
                for &b in rest.get(..run).unwrap_or_default() {
                    self.push_name(b.to_ascii_lowercase());
                }
                run
            }
            State::RawText { closer, matched } if matched > 0 => {
                let want = closer.get(matched..).unwrap_or_default();
                let run = rest
                    .iter()
                    .zip(want)
                    .take_while(|(b, w)| b.to_ascii_lowercase() == **w)
                    .count();
                self.state = State::RawText {
                    closer,
                    matched: matched + run,
                };
                run
            }
            _ => 0,
        }
    }

    /// The only bytes that can change the current state, when there are so few: any other byte
    /// leaves it as it is. (They are not letters, so lowercasing does not matter.)
    fn wanted(&self) -> Option<[u8; 3]> {
        match self.state {
            State::Text | State::RawText { matched: 0, .. } => Some([b'<'; 3]),
            State::Attributes {
                at: Attribute::Quoted(q),
                ..
            } => Some([q; 3]),
            State::Bogus => Some([b'>'; 3]),
            State::Comment(CommentAt::Text) => Some([b'-'; 3]),
            State::Script(ScriptAt::Data) => Some([b'<'; 3]),
            State::Script(
                ScriptAt::Escaped { dashes: 0 } | ScriptAt::DoubleEscaped { dashes: 0 },
            ) => Some([b'-', b'<', b'<']),
            _ => None,
        }
    }

    fn step(&mut self, b: u8, at: usize) -> Option<Scan> {
        self.state = match self.state {
            State::Text => {
                if b == b'<' {
                    State::TagOpen
                } else {
                    State::Text
                }
            }
            State::TagOpen => match b {
                b'/' => State::EndTagOpen,
                b'!' => State::MarkupOpen { dashes: 0 },
                b'?' => State::Bogus,
                b'a'..=b'z' => self.start_name(b, false),
                b'<' => State::TagOpen,
                _ => State::Text,
            },
            State::EndTagOpen => match b {
                b'a'..=b'z' => self.start_name(b, true),
                b'>' => State::Text,
                _ => State::Bogus,
            },
            State::TagName { end } => match b {
                b'>' => return self.tag_done(end, at),
                b if is_space(b) || b == b'/' => State::Attributes {
                    end,
                    at: Attribute::BeforeName,
                },
                b => {
                    self.push_name(b);
                    State::TagName { end }
                }
            },
            State::Attributes { end, at: attribute } => match attribute_step(attribute, b) {
                AttributeStep::Go(attribute) => State::Attributes { end, at: attribute },
                AttributeStep::TagEnds => return self.tag_done(end, at),
            },
            State::MarkupOpen { dashes } => match b {
                b'-' if dashes == 1 => State::Comment(CommentAt::Start),
                b'-' => State::MarkupOpen { dashes: 1 },
                b'>' => State::Text,
                _ => State::Bogus,
            },
            State::Comment(place) => comment_step(place, b),
            State::Script(place) => script_step(place, b),
            State::Bogus => {
                if b == b'>' {
                    State::Text
                } else {
                    State::Bogus
                }
            }
            // The whole `</name` seen: it is the closing tag only if the name ends here, as in
            // `</title>` or `</title >`; `</titlex>` is text (the HTML tokenizer's rule).
            State::RawText { closer, matched } if matched == closer.len() => match b {
                b if (is_space(b) || b == b'/' || b == b'>') && closer == TITLE_CLOSE => {
                    return Some(Scan::TitleEnds(at));
                }
                b'>' => State::Text,
                b if is_space(b) || b == b'/' => State::Attributes {
                    end: true,
                    at: Attribute::BeforeName,
                },
                _ => State::RawText {
                    closer,
                    matched: usize::from(closer.first() == Some(&b)),
                },
            },
            State::RawText { closer, matched } => {
                let matched = if closer.get(matched) == Some(&b) {
                    matched + 1
                } else {
                    usize::from(closer.first() == Some(&b))
                };
                State::RawText { closer, matched }
            }
        };
        None
    }

    fn start_name(&mut self, first: u8, end: bool) -> State {
        self.name_len = 0;
        self.push_name(first);
        State::TagName { end }
    }

    fn push_name(&mut self, b: u8) {
        if let Some(slot) = self.name.get_mut(self.name_len) {
            *slot = b;
        }
        self.name_len += 1;
    }

    /// A tag just closed at `at`: decide what the text after it is.
    fn tag_done(&mut self, end: bool, at: usize) -> Option<Scan> {
        if end {
            self.state = State::Text;
            return None;
        }
        // Longer than the buffer: longer than any tag that matters here.
        let name = self.name.get(..self.name_len).unwrap_or_default();
        let closer: &'static [u8] = match name {
            b"title" => {
                self.title_from = Some(self.seen + at + 1);
                TITLE_CLOSE
            }
            b"script" => {
                self.state = State::Script(ScriptAt::Data);
                return None;
            }
            b"style" => b"</style",
            b"textarea" => b"</textarea",
            b"xmp" => b"</xmp",
            b"iframe" => b"</iframe",
            b"noembed" => b"</noembed",
            b"noframes" => b"</noframes",
            b"noscript" => b"</noscript",
            // The head is over, or what follows is not the document's title.
            b"body" | b"svg" | b"math" | b"plaintext" => return Some(Scan::NoTitle(at + 1)),
            _ => {
                self.state = State::Text;
                return None;
            }
        };
        self.state = State::RawText { closer, matched: 0 };
        None
    }
}

/// One byte of a tag's attributes, by the HTML tokenizer's attribute states (a `/` anywhere but
/// in a value only marks the tag self-closing, which changes nothing here).
fn attribute_step(at: Attribute, b: u8) -> AttributeStep {
    use Attribute::*;
    let next = match (at, b) {
        (Quoted(q), b) if b == q => AfterQuoted,
        (Quoted(q), _) => Quoted(q),
        (_, b'>') => return AttributeStep::TagEnds,
        (BeforeValue, b'"' | b'\'') => Quoted(b),
        (BeforeValue | AfterName, b) if is_space(b) => at,
        (BeforeValue, _) => Unquoted,
        (Unquoted, b) if is_space(b) => BeforeName,
        (Unquoted, _) => Unquoted,
        (Name | AfterName, b'=') => BeforeValue,
        (_, b'/') => BeforeName,
        (Name, b) if is_space(b) => AfterName,
        (BeforeName | AfterQuoted, b) if is_space(b) => BeforeName,
        _ => Name,
    };
    AttributeStep::Go(next)
}

/// One byte of a script. Bytes that do not continue a `<`, `</script` or `<!--` sequence are
/// looked at again in the state the sequence began in, as the tokenizer "reconsumes" them.
fn script_step(at: ScriptAt, b: u8) -> State {
    use ScriptAt::*;
    const NAME: &[u8] = b"script";
    let matches = |matched: u8| NAME.get(usize::from(matched)) == Some(&b);
    // Letters after `<` or `</`: one more of `script` matched, or none ever will be.
    let advance = |matched: u8| {
        if matches(matched) {
            matched + 1
        } else {
            u8::MAX
        }
    };
    let is_script = |matched: u8| usize::from(matched) == NAME.len();
    let name_ends = is_space(b) || b == b'/' || b == b'>';
    let next = match at {
        Data | Less if b == b'<' => Less,
        Data => Data,
        Less if b == b'/' => EndTag {
            matched: 0,
            escaped: false,
        },
        Less if b == b'!' => Bang { dashes: 0 },
        Bang { dashes: 0 } if b == b'-' => Bang { dashes: 1 },
        Bang { .. } if b == b'-' => Escaped { dashes: 2 },
        Less | Bang { .. } => return script_step(Data, b),
        Escaped { .. } | EscapedLess if b == b'<' => EscapedLess,
        Escaped { dashes } if b == b'-' => Escaped {
            dashes: dashes.saturating_add(1),
        },
        Escaped { dashes } if b == b'>' && dashes >= 2 => Data,
        Escaped { .. } => Escaped { dashes: 0 },
        EscapedLess if b == b'/' => EndTag {
            matched: 0,
            escaped: true,
        },
        EscapedLess if b.is_ascii_lowercase() => DoubleStart {
            matched: advance(0),
        },
        EscapedLess => return script_step(Escaped { dashes: 0 }, b),
        DoubleStart { matched } if name_ends && is_script(matched) => DoubleEscaped { dashes: 0 },
        DoubleStart { .. } if name_ends => Escaped { dashes: 0 },
        DoubleStart { matched } if b.is_ascii_lowercase() => DoubleStart {
            matched: advance(matched),
        },
        DoubleStart { .. } => return script_step(Escaped { dashes: 0 }, b),
        DoubleEscaped { .. } | DoubleLess if b == b'<' => DoubleLess,
        DoubleEscaped { dashes } if b == b'-' => DoubleEscaped {
            dashes: dashes.saturating_add(1),
        },
        DoubleEscaped { dashes } if b == b'>' && dashes >= 2 => Data,
        DoubleEscaped { .. } => DoubleEscaped { dashes: 0 },
        DoubleLess if b == b'/' => DoubleEnd { matched: 0 },
        DoubleLess => return script_step(DoubleEscaped { dashes: 0 }, b),
        DoubleEnd { matched } if name_ends && is_script(matched) => Escaped { dashes: 0 },
        DoubleEnd { .. } if name_ends => DoubleEscaped { dashes: 0 },
        DoubleEnd { matched } if b.is_ascii_lowercase() => DoubleEnd {
            matched: advance(matched),
        },
        DoubleEnd { .. } => return script_step(DoubleEscaped { dashes: 0 }, b),
        // `</script` and the end of the name: the script is over.
        EndTag { matched, .. } if name_ends && is_script(matched) => {
            return if b == b'>' {
                State::Text
            } else {
                State::Attributes {
                    end: true,
                    at: Attribute::BeforeName,
                }
            };
        }
        EndTag { matched, escaped } if matches(matched) => EndTag {
            matched: matched + 1,
            escaped,
        },
        EndTag { escaped: false, .. } => return script_step(Data, b),
        EndTag { escaped: true, .. } => return script_step(Escaped { dashes: 0 }, b),
    };
    State::Script(next)
}

/// One byte of a comment.
fn comment_step(at: CommentAt, b: u8) -> State {
    use CommentAt::*;
    let next = match (at, b) {
        (Start | StartDash | End | EndBang, b'>') => return State::Text,
        (Start, b'-') => StartDash,
        (StartDash | EndDash | End, b'-') => End,
        (End, b'!') => EndBang,
        (Text | EndBang, b'-') => EndDash,
        _ => Text,
    };
    State::Comment(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(page: &str) -> Scan {
        HeadScanner::default().feed(page.as_bytes())
    }

    /// The title text the scanner delimits in `page`, which must hold the title's end.
    fn title_text(page: &str) -> &str {
        let mut scanner = HeadScanner::default();
        let scan = scanner.feed(page.as_bytes());
        assert!(matches!(scan, Scan::TitleEnds(_)), "{page:?}: {scan:?}");
        let span = scanner.title_span().expect("a span");
        &page[span]
    }

    fn title_end(page: &str) -> Option<usize> {
        match scan(page) {
            Scan::TitleEnds(at) => Some(at),
            _ => None,
        }
    }

    #[test]
    fn finds_the_real_title_end() {
        for page in [
            "<title>Real</title>",
            "<!-- <title>Fake</title> --><title>Real</title>",
            "<!-- a --- b ---><title>Real</title>",
            "<script>var t = \"<title>JS</title>\";</script><title>Real</title>",
            "<meta content=\"</title>\"><title>Real</title>",
            "<meta content='x>y'><title>Real</title>",
            "<titles>x</titles><title>Real</title>",
            "<!doctype html><HTML><HEAD><TITLE>Real</TITLE>",
            "<style>p{}</style><title>Real</title>",
            "<script>var t = \"</scripts><title>JS</title>\";</script><title>Real</title>",
            "<title>Real</title >",
            "<title>Real</title/>",
        ] {
            let end = title_end(page).unwrap_or_else(|| panic!("no title end in {page}"));
            assert!(
                page[..end].ends_with("</title") || page[..end].ends_with("</TITLE"),
                "{page}"
            );
            assert!(page[..end].contains("Real"), "{page}");
        }
    }

    /// Found by the `title` fuzz target: `</title` followed by more of a name is text.
    #[test]
    fn a_longer_end_tag_name_is_text() {
        assert_eq!(scan("<title>a</titlex>b</title>"), Scan::TitleEnds(25));
        let mut scanner = HeadScanner::default();
        assert_eq!(scanner.feed(b"<title>a</title"), Scan::More);
        assert_eq!(scanner.feed(b"_b</title"), Scan::More);
        assert_eq!(scanner.feed(b">"), Scan::TitleEnds(0));
    }

    /// Found by the `title` fuzz target: a quote opens a value only right after `=`, so the
    /// `'` in `<i 'q>` hides nothing from the real title after it.
    #[test]
    fn follows_the_tokenizers_attribute_rules() {
        for page in [
            "<i\n'Q><title>Real</title>",
            "<a b\"c><title>Real</title>",
            "<a b=c\"d><title>Real</title>",
            "<a = \"x>\"><title>Real</title>",
            "<a b = 'x>y' c><title>Real</title>",
            "<a b='x'/c='>'><title>Real</title>",
        ] {
            assert_eq!(title_text(page), "Real", "{page:?}");
        }
    }

    #[test]
    fn ends_comments_and_bogus_tags_where_the_tokenizer_does() {
        for page in [
            "<!--><title>Real</title>",
            "<!---><title>Real</title>",
            "<!-- x --!><title>Real</title>",
            "<?x --><title>Real</title>",
            "</ a='>'><title>Real</title>",
            "<!-x='>'><title>Real</title>",
        ] {
            assert_eq!(title_text(page), "Real", "{page:?}");
        }
    }

    /// Found by the `title` fuzz target: inside `<!--` in a script, a `<script>` starts a
    /// "double escape" in which `</script>` does not end the script.
    #[test]
    fn follows_the_tokenizers_script_escapes() {
        for page in [
            "<script><!--<script></script>--></script><title>Real</title>",
            "<script><!--<script></script><title>x</title>--></script><title>Real</title>",
            "<script><!--</script><title>Real</title>",
            "<script><!--<scripts></script><title>Real</title>",
            "<script><!--<xscript></script><title>Real</title>",
            "<script><!--><script></script><title>Real</title>",
            "<SCRIPT><!--<Script>--></SCRIPT ><title>Real</title>",
            "<script>a<b</scriptx></script><title>Real</title>",
        ] {
            assert_eq!(title_text(page), "Real", "{page:?}");
        }
        // Still in the script: no title yet.
        let page = "<script><!--<script></script><title>x</title>";
        assert_eq!(scan(page), Scan::More);
    }

    #[test]
    fn stops_at_the_body() {
        assert!(matches!(
            scan("<head></head><body><svg><title>Icon</title></svg>"),
            Scan::NoTitle(_)
        ));
        assert!(matches!(scan("<p>no head at all"), Scan::More));
    }

    #[test]
    fn knows_where_the_title_text_is() {
        let page = "<!-- <title>x</title> --><head><TITLE lang=en>Real one</title><body>";
        let mut scanner = HeadScanner::default();
        assert!(matches!(scanner.feed(page.as_bytes()), Scan::TitleEnds(_)));
        let span = scanner.title_span().expect("a span");
        assert_eq!(&page[span], "Real one");

        let mut scanner = HeadScanner::default();
        for chunk in [&b"<title>Re"[..], b"al</ti", b"tle>"] {
            scanner.feed(chunk);
        }
        assert_eq!(scanner.title_span(), Some(7..11));

        // The byte that ends `</title` comes in a chunk of its own.
        let mut scanner = HeadScanner::default();
        assert_eq!(scanner.feed(b"<title>Real</title"), Scan::More);
        assert_eq!(scanner.feed(b" >"), Scan::TitleEnds(0));
        assert_eq!(scanner.title_span(), Some(7..11));
    }

    /// The scanner one byte at a time through [`HeadScanner::step`] alone, as it was before
    /// runs were taken at once: what `feed` must agree with.
    fn scan_stepwise(page: &[u8]) -> (Scan, Option<Range<usize>>) {
        let mut scanner = HeadScanner::default();
        for (i, &byte) in page.iter().enumerate() {
            if let Some(scan) = scanner.step(byte.to_ascii_lowercase(), 0) {
                let scan = match scan {
                    Scan::TitleEnds(_) => Scan::TitleEnds(i),
                    Scan::NoTitle(_) => Scan::NoTitle(i + 1),
                    more => more,
                };
                if let (Scan::TitleEnds(_), Some(from)) = (scan, scanner.title_from) {
                    let to = i.saturating_sub(TITLE_CLOSE.len()).max(from);
                    return (scan, Some(from..to));
                }
                return (scan, None);
            }
            scanner.seen += 1;
        }
        (Scan::More, None)
    }

    /// Pages made of the pieces that matter to the scanner, in a pseudo-random order (a fixed
    /// seed: the same pages every run), fed whole and in two chunks at every split.
    #[test]
    fn agrees_with_the_byte_at_a_time_scan() {
        const PIECES: &[&str] = &[
            "<title>",
            "</title>",
            "</TITLE >",
            "</titlex>",
            "</tit",
            "<Title a='>'>",
            "<head>",
            "<html lang=en>",
            "<!--",
            "-->",
            "<script>",
            "</script>",
            "<style>",
            "</style>",
            "<",
            ">",
            "/",
            " ",
            "a",
            "T",
            "<!doctype html>",
            "<body>",
            "<textarea>",
            "\"",
            "'",
            "=",
            "<meta charset=utf-8>",
            "</",
            "<svg>",
            "-",
            "!",
            "<TITLE>",
            "</Title>",
            "<titlex>",
            "<SCRIPT>",
            "</SCRIPT>",
            "<STYLE>",
            "</tItLe\t>",
            "<XMP>",
            "</xmp>",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            let mut page = String::new();
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let index = usize::try_from(seed % PIECES.len() as u64).unwrap();
                page.push_str(PIECES[index]);
            }
            let page = page.as_bytes();
            let expected = scan_stepwise(page);
            for split in 0..=page.len() {
                let mut scanner = HeadScanner::default();
                let (first, second) = page.split_at(split);
                let scan = match scanner.feed(first) {
                    Scan::More => match scanner.feed(second) {
                        Scan::TitleEnds(at) => Scan::TitleEnds(at + split),
                        Scan::NoTitle(at) => Scan::NoTitle(at + split),
                        more => more,
                    },
                    done => done,
                };
                let page = String::from_utf8_lossy(page);
                assert_eq!(
                    (scan, scanner.title_span()),
                    expected,
                    "{page:?} split at {split}"
                );
            }
        }
    }

    #[test]
    fn works_across_chunks() {
        let page = b"<!-- <title>x</title> --><title>Re";
        let mut scanner = HeadScanner::default();
        assert_eq!(scanner.feed(page), Scan::More);
        assert_eq!(scanner.feed(b"al</ti"), Scan::More);
        assert_eq!(scanner.feed(b"tle><body>"), Scan::TitleEnds(3));
    }
}
