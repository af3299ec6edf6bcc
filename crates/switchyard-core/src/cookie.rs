//! A cookie's value from a request's `Cookie` header values (`name=value` pairs separated by
//! `;`, RFC 6265 §5.4), for the proxy's routes and stickiness and the dashboard's session.

/// The value of cookie `name` (without surrounding double quotes) in `headers`, the values of
/// every `Cookie` header of a request.
pub fn value<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_in_any_header_and_unquoted() {
        let headers = ["theme=dark; a=1", "session=\"abc\"; b=2"];
        assert_eq!(value(headers, "session"), Some("abc"));
        assert_eq!(value(headers, "a"), Some("1"));
        assert_eq!(value(headers, "ses"), None);
        assert_eq!(value([], "a"), None);
    }
}
