//! Credentials in URLs (`http://user:password@host/`): sent as `Authorization: Basic`, never
//! shown. Every cell, message and log line that may hold a URL passes through [`redact`] or
//! [`redact_url`], which keep the user name (to tell rows apart) and hide the password as `***`.

use std::borrow::Cow;

use base64::Engine as _;
use http::HeaderValue;
use percent_encoding::percent_decode_str;
use url::Url;

/// `Basic` credentials from a URL's user and password (percent-decoded), if it has any.
pub fn basic_auth(url: &Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| percent_decode_str(s).collect::<Vec<u8>>();
    let mut pair = decode(url.username());
    pair.push(b':');
    pair.extend(decode(url.password().unwrap_or_default()));
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `text` with the password of any `scheme://user:password@` in it replaced by `***`: what
/// rows, messages and logs show of a URL.
pub fn redact(text: &str) -> Cow<'_, str> {
    // Every line passes here, and almost none has credentials.
    if memchr::memchr(b'@', text.as_bytes()).is_none() {
        return text.into();
    }
    let Some(scheme_end) = text.find("://") else {
        return text.into();
    };
    let start = scheme_end + 3;
    let rest = text.get(start..).unwrap_or_default();
    let authority = rest
        .find(['/', '?', '#', '\\'])
        .map_or(rest, |end| rest.get(..end).unwrap_or_default());
    let Some(at) = authority.rfind('@') else {
        return text.into();
    };
    let Some(colon) = authority.get(..at).and_then(|userinfo| userinfo.find(':')) else {
        return text.into();
    };
    let (before, after) = (start + colon + 1, start + at);
    if before == after {
        return text.into();
    }
    format!(
        "{}***{}",
        text.get(..before).unwrap_or_default(),
        text.get(after..).unwrap_or_default()
    )
    .into()
}

/// [`redact`] for a parsed URL.
pub fn redact_url(url: &Url) -> Cow<'_, str> {
    if url.password().is_none() {
        return Cow::Borrowed(url.as_str());
    }
    Cow::Owned(into_shown(url.clone()))
}

/// [`redact_url`] for a URL that is given away: its text, moved when there is nothing to hide.
pub fn into_shown(mut url: Url) -> String {
    if url.password().is_some() {
        // Cannot fail: the URL has a password, so it has a host.
        let _ = url.set_password(Some("***"));
    }
    url.into()
}

/// The URL without its credentials: what goes on the wire as a request target.
pub fn without_credentials(url: &Url) -> Cow<'_, Url> {
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(url);
    }
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    Cow::Owned(bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        for (text, shown) in [
            ("http://u:pw@h.test/x", "http://u:***@h.test/x"),
            ("https://u:p:w@h.test", "https://u:***@h.test"),
            ("http://u@h.test/a:b@c", "http://u@h.test/a:b@c"),
            (
                "http://h.test/?next=http://a:b@c",
                "http://h.test/?next=http://a:b@c",
            ),
            ("http://u:@h.test/", "http://u:@h.test/"),
            ("not a url", "not a url"),
            ("http://a:b@c:d@h.test/", "http://a:***@h.test/"),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
    }

    #[test]
    fn urls_keep_the_user_and_lose_the_password() {
        let url = Url::parse("http://us%20er:p%40ss@h.test:81/x?y").unwrap();
        assert_eq!(redact_url(&url), "http://us%20er:***@h.test:81/x?y");
        assert_eq!(without_credentials(&url).as_str(), "http://h.test:81/x?y");
        // "us er:p@ss"
        assert_eq!(basic_auth(&url).unwrap(), "Basic dXMgZXI6cEBzcw==");
        let plain = Url::parse("http://h.test/").unwrap();
        assert!(basic_auth(&plain).is_none());
        assert!(matches!(without_credentials(&plain), Cow::Borrowed(_)));
        let user_only = Url::parse("http://tok@h.test/").unwrap();
        assert_eq!(basic_auth(&user_only).unwrap(), "Basic dG9rOg==");
    }
}
