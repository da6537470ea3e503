//! `--format`: the subset of Go templates docker users write (`{{.ID}}`, `{{.Config.Env}}`,
//! `{{json .}}`, `{{json .State}}`, `{{join .Names ","}}`, `{{upper .X}}`, `{{lower .X}}`,
//! `{{println .X}}`), the `table` prefix with docker's column headers, and docker's column
//! alignment (Go's tabwriter with min width 10 and padding 3).

use std::collections::HashMap;

use serde_json::Value;

/// A template that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("template parsing error: {0}")]
pub struct Error(String);

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Action(Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    table: bool,
    pieces: Vec<Piece>,
}

fn tokenize(action: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut chars = action.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::from("\"");
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        s.push(match n {
                            'n' => '\n',
                            't' => '\t',
                            o => o,
                        });
                    }
                } else if c == '"' {
                    closed = true;
                    break;
                } else {
                    s.push(c);
                }
            }
            if !closed {
                return Err(Error(format!("unterminated quoted string in {action:?}")));
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    Ok(out)
}

impl Template {
    /// Parse a docker `--format` string.
    pub fn parse(src: &str) -> Result<Template, Error> {
        let (table, body) = match src.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, src),
        };
        // Docker expands the escapes \t and \n written literally in the format.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| Error(format!("unclosed action in {src:?}")))?;
            let inner = after[..end].trim_matches('-').trim();
            let toks = tokenize(inner)?;
            if toks.is_empty() {
                return Err(Error(format!("empty action in {src:?}")));
            }
            match toks[0].as_str() {
                "json" | "join" | "upper" | "lower" | "println" | "title" | "index" => {}
                t if t.starts_with('.') => {}
                other => {
                    return Err(Error(format!(
                        "function {other:?} not defined (berth supports .Field, json, join, upper, lower, title, println)"
                    )))
                }
            }
            pieces.push(Piece::Action(toks));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { table, pieces })
    }

    /// Is this a `table` template?
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Render one value.
    pub fn render(&self, v: &Value) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(toks) => out.push_str(&eval(toks, v)),
            }
        }
        out
    }

    /// The header row of a `table` template: each action's field name mapped through
    /// `headers` (e.g. ID -> "CONTAINER ID"), upper-cased otherwise.
    pub fn header(&self, headers: &HashMap<&str, &str>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(toks) => {
                    let field = toks
                        .iter()
                        .find(|t| t.starts_with('.'))
                        .map(|t| t.trim_start_matches('.'))
                        .unwrap_or("");
                    let name = headers
                        .get(field)
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| field.to_uppercase());
                    out.push_str(&name);
                }
            }
        }
        out
    }
}

fn lookup<'a>(path: &str, v: &'a Value) -> Option<&'a Value> {
    if path == "." {
        return Some(v);
    }
    let mut cur = v;
    for part in path.trim_start_matches('.').split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Go's default printing of a value (`%v`).
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", go_string(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

fn arg(tok: &str, v: &Value) -> Value {
    if let Some(s) = tok.strip_prefix('"') {
        return Value::String(s.to_string());
    }
    if let Ok(n) = tok.parse::<u64>() {
        return Value::from(n);
    }
    lookup(tok, v).cloned().unwrap_or(Value::Null)
}

fn eval(toks: &[String], v: &Value) -> String {
    let a = |i: usize| toks.get(i).map(|t| arg(t, v)).unwrap_or(Value::Null);
    match toks[0].as_str() {
        "json" => serde_json::to_string(&a(1)).unwrap_or_default(),
        "join" => {
            let sep = match a(2) {
                Value::String(s) => s,
                _ => String::new(),
            };
            match a(1) {
                Value::Array(items) => items.iter().map(go_string).collect::<Vec<_>>().join(&sep),
                other => go_string(&other),
            }
        }
        "upper" => go_string(&a(1)).to_uppercase(),
        "lower" => go_string(&a(1)).to_lowercase(),
        "title" => {
            let s = go_string(&a(1));
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
        "println" => format!("{}\n", go_string(&a(1))),
        "index" => {
            let mut cur = a(1);
            for i in 2..toks.len() {
                let k = a(i);
                cur = match (&cur, &k) {
                    (Value::Object(o), Value::String(k)) => {
                        o.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(v), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|n| v.get(n as usize).cloned())
                        .unwrap_or(Value::Null),
                    _ => Value::Null,
                };
            }
            match cur {
                Value::Null => "<no value>".into(),
                v => go_string(&v),
            }
        }
        field => match lookup(field, v) {
            Some(x) => go_string(x),
            None => "<no value>".into(),
        },
    }
}

/// Re-indents a JSON document as Go's `json.Indent(dst, src, "", "    ")`, keeping the
/// daemon's field order (what `docker inspect` prints).
pub fn indent_json(src: &[u8]) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let mut need_indent = false;
    let text = String::from_utf8_lossy(src);
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            '}' | ']' => {
                if need_indent {
                    // An empty object or array stays `{}` / `[]`.
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out
}

/// Align tab-separated cells like Go's tabwriter(minwidth 10, tabwidth 1, padding 3): every
/// cell followed by a tab is padded to its column's width; the last cell of a line is not.
pub fn align(text: &str) -> String {
    align_min(text, 10)
}

/// [`align`] with another minimum cell width (`docker top` uses 20).
pub fn align_min(text: &str, min: usize) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for l in &lines {
        for (i, c) in l.iter().enumerate().take(l.len().saturating_sub(1)) {
            let w = (c.chars().count() + 3).max(min);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            if i + 1 < l.len() {
                out.push_str(c);
                out.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

/// Print rows with a template (`table …` gets a header and alignment), as docker's formatter.
pub fn print_rows(
    format: &str,
    rows: &[Value],
    headers: &HashMap<&str, &str>,
) -> Result<String, Error> {
    let t = Template::parse(format)?;
    let mut text = String::new();
    if t.is_table() {
        text.push_str(&t.header(headers));
        text.push('\n');
    }
    for r in rows {
        text.push_str(&t.render(r));
        text.push('\n');
    }
    Ok(if t.is_table() { align(&text) } else { text })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_json_join() {
        let v = json!({"ID": "abc", "Names": ["a", "b"], "State": {"Running": true}, "N": 3});
        let t = Template::parse(
            "{{.ID}} {{join .Names \",\"}} {{json .State}} {{.State.Running}} {{.N}} {{.Missing}}",
        )
        .unwrap();
        assert_eq!(t.render(&v), "abc a,b {\"Running\":true} true 3 <no value>");
        assert_eq!(
            Template::parse("{{json .}}")
                .unwrap()
                .render(&json!({"a":1})),
            "{\"a\":1}"
        );
        assert_eq!(Template::parse("{{upper .ID}}").unwrap().render(&v), "ABC");
    }

    #[test]
    fn table_header_and_alignment() {
        let mut h = HashMap::new();
        h.insert("ID", "IMAGE ID");
        let rows = vec![
            json!({"ID": "1", "Repository": "busybox"}),
            json!({"ID": "22", "Repository": "x"}),
        ];
        let out = print_rows("table {{.Repository}}\\t{{.ID}}", &rows, &h).unwrap();
        assert_eq!(
            out,
            "REPOSITORY   IMAGE ID\nbusybox      1\nx            22\n"
        );
    }

    #[test]
    fn indent_like_go() {
        assert_eq!(
            indent_json(br#"[{"a":1,"b":[],"c":{},"d":["x",{"e":"y,z"}]}]"#),
            "[\n    {\n        \"a\": 1,\n        \"b\": [],\n        \"c\": {},\n        \"d\": [\n            \"x\",\n            {\n                \"e\": \"y,z\"\n            }\n        ]\n    }\n]"
        );
        let v = json!({"Labels": {"a": "b"}, "L": [1, 2]});
        assert_eq!(
            Template::parse("{{index .Labels \"a\"}} {{index .L 1}}")
                .unwrap()
                .render(&v),
            "b 2"
        );
    }

    #[test]
    fn unsupported_functions_are_reported() {
        assert!(Template::parse("{{range .X}}{{end}}").is_err());
        assert!(Template::parse("{{.X").is_err());
    }
}
