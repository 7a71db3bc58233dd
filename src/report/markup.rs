//! Text from a summary made inert in each markup the reports write: HTML (`report.html`, its
//! charts, the capacity report) and CommonMark with GFM tables (`summary.md`). Names, tags,
//! URLs and notes may come from the target, so every renderer passes them through here.
//!
//! A leaf of `report`: it imports no other report module, so that `html`, `charts` and
//! `markdown` can all share it without importing one another.

/// HTML text or attribute value: the five characters that could open markup or end a quoted
/// attribute become entities.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown table cell, shown as written: every character CommonMark could read as
/// markup (emphasis, links, HTML, entities, code) is backslash-escaped, `|` too (GFM tables),
/// and a line break becomes a space.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span holding `s` as written: inside one, CommonMark decodes no entity and no
/// backslash escape, so the text goes in raw, fenced by more backticks than it holds in a row.
/// Only `|` is escaped: GFM splits table cells before it reads code spans.
pub fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// One row of a thresholds table: what, series, limit, observed and the result in `class`
/// (`ok`, `bad`), with the raw expression on hover. The full table and the failures table both
/// draw their rows here, so a threshold reads the same in each.
pub fn threshold_row(expression: &str, observed: &str, class: &str, result: &str) -> String {
    let p = super::readable::threshold(expression);
    format!(
        "<tr title=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
        escape(expression),
        escape(&p.what),
        escape(&p.series),
        escape(&p.limit),
        escape(observed),
        escape(result)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn a_cell_is_shown_as_written() {
        assert_eq!(cell("a *b* | <c>\nd"), "a \\*b\\* \\| \\<c\\> d");
        assert_eq!(cell("µs, 12.00ms/40.00ms"), "µs, 12.00ms/40.00ms");
    }

    /// A code span is fenced by one backtick more than the longest run inside it, and padded
    /// when the text starts or ends with one (else the fence would swallow it).
    #[test]
    fn a_code_span_outfences_its_backticks() {
        assert_eq!(code("p99(api_latency) < 10s"), "`p99(api_latency) < 10s`");
        assert_eq!(code("a``b"), "```a``b```");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b"), "`a\\|b`");
    }

    /// Every ASCII punctuation character, as a table cell and as a code span in one, reads back
    /// as written once rendered by CommonMark with GFM tables (pulldown-cmark, as GitHub would).
    #[test]
    fn every_punctuation_character_renders_as_written() {
        let text: String = (b'!'..=b'~')
            .map(char::from)
            .filter(char::is_ascii_punctuation)
            .collect();
        let md = format!("| a | b |\n|---|---|\n| {} | {} |\n", cell(&text), code(&text));
        let mut html = String::new();
        let parser = pulldown_cmark::Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES);
        pulldown_cmark::html::push_html(&mut html, parser);
        // pulldown-cmark leaves quotes as they are; `&`, `<` and `>` become entities.
        let shown = escape(&text).replace("&#39;", "'").replace("&quot;", "\"");
        assert!(html.contains(&format!("<td>{shown}</td>")), "{html}");
        assert!(html.contains(&format!("<td><code>{shown}</code></td>")), "{html}");
    }
}
