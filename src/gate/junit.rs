//! The verdict as JUnit XML, the format CI systems (GitHub test reporters, GitLab, Jenkins) show as test results:
//! `<testsuites>` → one `<testsuite>` per target → one `<testcase>` per check, with a `<failure message=…>` for a
//! failed check. Written by hand (no XML crate): every attribute and text is escaped, and characters XML 1.0
//! cannot carry are dropped.

use super::{CheckKind, GateReport};
use crate::report::escape;

/// The verdict as JUnit XML: a testsuite per target (in the report's order), a testcase per check (named after the
/// check, classname `voicebench.gate.<target>`), a `<failure>` with the detail for each failed check, and the
/// detail of a passed check in `<system-out>`.
pub fn render_junit(r: &GateReport) -> String {
    let mut targets: Vec<&str> = Vec::new();
    for c in &r.checks {
        if !targets.contains(&c.target.as_str()) {
            targets.push(&c.target);
        }
    }
    let failures = r.failures().count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"voicebench gate\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n",
        r.checks.len()
    ));
    for t in targets {
        let checks: Vec<_> = r.checks.iter().filter(|c| c.target == t).collect();
        let failed = checks.iter().filter(|c| !c.passed).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">\n",
            escape(t),
            checks.len()
        ));
        for c in checks {
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"voicebench.gate.{}\"",
                escape(&c.name),
                escape(t)
            ));
            let kind = match c.kind {
                CheckKind::Slo => "slo",
                CheckKind::Goodput => "goodput",
                CheckKind::Regression => "regression",
            };
            if c.passed {
                out.push_str(&format!(">\n      <system-out>{}</system-out>\n    </testcase>\n", escape(&c.detail)));
            } else {
                out.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n    </testcase>\n",
                    escape(&c.detail),
                    escape(&c.detail)
                ));
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::render::tests::sample;

    /// An XML element as the checker below parses it.
    #[derive(Debug)]
    struct El {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<El>,
        text: String,
    }

    impl El {
        fn attr(&self, name: &str) -> Option<&str> {
            self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }
    }

    /// A small XML well-formedness checker (the subset JUnit needs: declaration, elements, attributes, text,
    /// entity and character references). Panics with the offset on any violation; returns the root element.
    fn parse(xml: &str) -> El {
        let b = xml.as_bytes();
        let mut i = 0;
        if xml.starts_with("<?xml") {
            i = xml.find("?>").expect("declaration closed") + 2;
        }
        let skip_ws = |i: &mut usize| {
            while *i < b.len() && b[*i].is_ascii_whitespace() {
                *i += 1;
            }
        };
        fn name(b: &[u8], i: &mut usize) -> String {
            let start = *i;
            while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b"_-.:".contains(&b[*i])) {
                *i += 1;
            }
            assert!(*i > start, "a name expected at {start}");
            String::from_utf8(b[start..*i].to_vec()).unwrap()
        }
        fn unescape(s: &str, at: usize) -> String {
            assert!(!s.contains('<'), "raw `<` in text or attribute near {at}: {s:?}");
            let mut out = String::new();
            let mut rest = s;
            while let Some(p) = rest.find('&') {
                out.push_str(&rest[..p]);
                let end = rest[p..].find(';').unwrap_or_else(|| panic!("unterminated reference near {at}: {rest:?}"));
                let entity = &rest[p + 1..p + end];
                out.push(match entity {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    e if e.starts_with('#') => char::from_u32(e[1..].parse().expect("decimal reference")).unwrap(),
                    e => panic!("unknown entity &{e}; near {at}"),
                });
                rest = &rest[p + end + 1..];
            }
            out.push_str(rest);
            out
        }
        fn element(xml: &str, b: &[u8], i: &mut usize) -> El {
            assert_eq!(b[*i], b'<', "element expected at {i}");
            *i += 1;
            let n = name(b, i);
            let mut attrs = Vec::new();
            loop {
                while b[*i].is_ascii_whitespace() {
                    *i += 1;
                }
                match b[*i] {
                    b'/' => {
                        assert_eq!(b[*i + 1], b'>', "bad empty-element tag at {i}");
                        *i += 2;
                        return El { name: n, attrs, children: vec![], text: String::new() };
                    }
                    b'>' => {
                        *i += 1;
                        break;
                    }
                    _ => {
                        let k = name(b, i);
                        assert_eq!(b[*i], b'=', "`=` expected after attribute {k}");
                        let q = b[*i + 1];
                        assert!(q == b'"' || q == b'\'', "quoted value expected for {k}");
                        let start = *i + 2;
                        let end = start + xml[start..].find(q as char).expect("attribute closed");
                        assert!(attrs.iter().all(|(a, _): &(String, String)| *a != k), "duplicate attribute {k}");
                        attrs.push((k, unescape(&xml[start..end], start)));
                        *i = end + 1;
                    }
                }
            }
            let (mut children, mut text) = (Vec::new(), String::new());
            loop {
                let next = *i + xml[*i..].find('<').expect("element closed");
                text.push_str(&unescape(&xml[*i..next], *i));
                *i = next;
                if b[*i + 1] == b'/' {
                    *i += 2;
                    let close = name(b, i);
                    assert_eq!(close, n, "</{close}> closes <{n}>");
                    assert_eq!(b[*i], b'>');
                    *i += 1;
                    return El { name: n, attrs, children, text };
                }
                children.push(element(xml, b, i));
            }
        }
        skip_ws(&mut i);
        let root = element(xml, b, &mut i);
        skip_ws(&mut i);
        assert_eq!(i, b.len(), "content after the root element");
        root
    }

    #[test]
    fn junit_is_well_formed_and_follows_the_convention() {
        let r = sample();
        let xml = render_junit(&r);
        let root = parse(&xml);
        assert_eq!(root.name, "testsuites");
        assert_eq!((root.attr("tests"), root.attr("failures")), (Some("3"), Some("2")));
        assert_eq!(root.children.len(), 2, "one testsuite per target");
        for suite in &root.children {
            assert_eq!(suite.name, "testsuite");
            let cases = &suite.children;
            assert_eq!(suite.attr("tests").unwrap(), cases.len().to_string());
            let failed = cases.iter().filter(|c| c.children.iter().any(|f| f.name == "failure")).count();
            assert_eq!(suite.attr("failures").unwrap(), failed.to_string());
            for case in cases {
                assert_eq!(case.name, "testcase");
                assert!(case.attr("name").is_some() && case.attr("classname").is_some());
                for child in &case.children {
                    assert!(["failure", "system-out"].contains(&child.name.as_str()), "{child:?}");
                    if child.name == "failure" {
                        assert!(child.attr("message").is_some());
                    }
                }
            }
        }
        // Names and details come back exactly, escaping and all.
        let odd = &root.children[1];
        assert_eq!(odd.attr("name"), Some("a|b<c>&\"d\""));
        let failure = &odd.children[0].children[0];
        assert_eq!(failure.attr("message"), Some(r.checks[1].detail.as_str()));
        assert_eq!(failure.text, r.checks[1].detail);
        assert_eq!(root.children[0].children[0].attr("name"), Some("ttfa.p95 <= 800 ms"));
    }

    #[test]
    fn the_checker_rejects_what_it_should() {
        for bad in ["<a><b></a>", "<a x=\"1\" x=\"2\"/>", "<a>x & y</a>", "<a>x < y</a>", "<a b=\"<\"/>", "<a></a><b/>"]
        {
            assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_checks_is_an_empty_testsuites() {
        let mut r = sample();
        r.checks.clear();
        let root = parse(&render_junit(&r));
        assert_eq!((root.name.as_str(), root.children.len(), root.attr("tests")), ("testsuites", 0, Some("0")));
    }
}
