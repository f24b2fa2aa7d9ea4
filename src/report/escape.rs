//! Escaping text for XML and HTML, shared by the writers that emit markup (the gate's JUnit XML and the HTML page):
//! one function so both drop the same characters and keep the same line breaks.

/// Escapes text for XML content or a double- or single-quoted attribute; line breaks and tabs are kept as
/// character references so attribute values survive normalisation.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            // Not allowed anywhere in XML 1.0, not even as a reference.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(escape("a\u{1}b\u{1b}[0m\tc'"), "ab[0m&#9;c&apos;");
        assert_eq!(escape("<a href=\"x\">&</a>\n"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;&#10;");
    }
}
