//! Text inside HTML and XML documents the tools write (downtime-monitor's HTML report,
//! smoke-test's JUnit XML): one escaping function, so a target or check name with `<` or `&`
//! cannot break the document.

/// Escape text for XML/HTML attributes and content; characters XML 1.0 cannot hold are
/// dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_control_characters() {
        assert_eq!(escape(r#"a<b>&"c"'d'"#), "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;");
        assert_eq!(escape("tab\there\u{1}\nnext"), "tab\there\nnext");
        assert_eq!(escape("plain — ü"), "plain — ü");
    }
}
