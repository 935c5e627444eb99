//! Edges of `orchestra graph`: diagrams of workflows whose ids are the
//! diagram languages' keywords and whose labels hold quotes, brackets, pipes,
//! semicolons, markup and unicode stay valid Mermaid and Graphviz, draw every
//! route, loop, map, join and ask, and never show a secret.

mod common;

use std::collections::HashSet;

use common::{outcome, scratch, write};
use regex::Regex;

/// A root graph over agents and groups named after Mermaid's and Graphviz's
/// keywords, with a route on a regex full of markup, a map, a join, a loop,
/// an ask and a nested graph.
const KEYWORDS: &str = r#"
name = 'odd "names" | a;b {c} <d> #1; 日本'

[flow]
nodes = ["graph", "subgraph", "node", "edge", "strict", "digraph"]
edges = [
  "start -> graph",
  "start -> subgraph",
  "graph -> node",
  "subgraph -> node",
  "edge -> strict",
  "strict -> digraph -> end",
]
joins = [{ node = "node", policy = "any" }]

[[flow.maps]]
node = "digraph"
over = "lines"
parallel_limit = 2

[[flow.asks]]
id = "style"
question = 'Go on? [y|n]; "quoted" <b>#2;</b> é'

[[flow.routes]]
from = "node"
when = [{ matches = '^"a\|b";\s*\[x\]\{2\}<end>#3;$', to = "style" }]
default = "edge"

[[flow.routes]]
from = "style"
when = [{ contains = 'y"es|;', to = "edge" }]
default = "end"

[[groups]]
id = "edge"
parallel = ["class", "click"]

[[groups]]
id = "strict"
nodes = ["style2", "end2"]
edges = ["start -> style2", "end2 -> end"]

[[groups.loops]]
body = ["style2", "end2"]
until = { equals = 'a "b" | c' }
max_iterations = 3

[[agents]]
id = "graph"
kind = "template"
template = "g"

[[agents]]
id = "subgraph"
kind = "template"
template = "s"

[[agents]]
id = "node"
kind = "template"
template = "{{input}}"

[[agents]]
id = "class"
kind = "template"
template = "c"

[[agents]]
id = "click"
kind = "template"
template = "k"

[[agents]]
id = "style2"
kind = "template"
template = "{{input}}"

[[agents]]
id = "end2"
kind = "template"
template = "{{input}}"

[[agents]]
id = "digraph"
kind = "template"
template = "{{input}}"
"#;

/// `orchestra graph --format FORMAT` of `file`, with `env`.
fn draw(file: &std::path::Path, format: &str, env: &[(&str, &str)]) -> String {
    let drawn = outcome(&["graph", "--format", format], file, env);
    assert_eq!(drawn.code, Some(0), "{}", drawn.stderr);
    drawn.stdout
}

/// Checks `text` line by line against Mermaid's flowchart syntax as
/// `orchestra` writes it: ids are plain words (never a keyword), every label
/// is one quoted string without a quote, markup or a stray `#` in it, frames
/// open and close in pairs, and every arrow joins declared boxes. Returns
/// the labels of the arrows.
fn check_mermaid(text: &str) -> Vec<String> {
    let label = r#""((?:[^"<>#]|#\w+;|<br/>)*)""#;
    let patterns = [
        format!(r"^(\w+)\[{label}\]$"),
        format!(r"^(\w+)\(\({label}\)\)$"),
        r"^(input|output)\(\[(?:input|output)\]\)$".to_owned(),
        format!(r"^subgraph (\w+)\[{label}\]$"),
    ];
    let declarations: Vec<Regex> = patterns
        .iter()
        .map(|p| Regex::new(p).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let arrow = Regex::new(&format!(
        r"^(\w+) (?:-->|-\.->|-- {label} -->|-\. {label} \.->) (\w+)$"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let keywords = [
        "end",
        "graph",
        "subgraph",
        "flowchart",
        "style",
        "class",
        "click",
    ];
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart LR"), "{text}");
    let mut declared = HashSet::new();
    let mut open = 0usize;
    let mut labels = Vec::new();
    for line in lines.map(str::trim) {
        if line == "end" {
            assert!(open > 0, "an `end` closes no frame: {text}");
            open -= 1;
        } else if let Some(found) = declarations.iter().find_map(|re| re.captures(line)) {
            let id = &found[1];
            assert!(!keywords.contains(&id), "keyword {id} as an id: {text}");
            assert!(
                declared.insert(id.to_owned()),
                "{id} declared twice: {text}"
            );
            open += usize::from(line.starts_with("subgraph "));
        } else if let Some(found) = arrow.captures(line) {
            let (from, to) = (&found[1], &found[found.len() - 1]);
            assert!(
                declared.contains(from) && declared.contains(to),
                "{line}: {text}"
            );
            if let Some(label) = found.get(2).or(found.get(3)) {
                labels.push(label.as_str().to_owned());
            }
        } else {
            panic!("not valid here: `{line}` in\n{text}");
        }
    }
    assert_eq!(open, 0, "a frame is not closed: {text}");
    labels
}

/// One token of Graphviz's language: an id, a quoted string (its text as
/// written, escapes included), an arrow, or punctuation.
#[derive(Debug, PartialEq)]
enum Token {
    Id(String),
    Quoted(String),
    Punct(char),
    Arrow,
}

fn dot_tokens(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            quoted.push('\\');
                            quoted.push(chars.next().unwrap_or_else(|| panic!("{text}")));
                        }
                        Some(c) => quoted.push(c),
                        None => panic!("a quoted string is not closed: {text}"),
                    }
                }
                tokens.push(Token::Quoted(quoted));
            }
            '-' if chars.peek() == Some(&'>') => {
                chars.next();
                tokens.push(Token::Arrow);
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut id = c.to_string();
                while let Some(&next) = chars.peek() {
                    if !(next.is_ascii_alphanumeric() || next == '_') {
                        break;
                    }
                    id.push(next);
                    chars.next();
                }
                tokens.push(Token::Id(id));
            }
            '{' | '}' | '[' | ']' | ';' | ',' | '=' => tokens.push(Token::Punct(c)),
            other => panic!("`{other}` outside a quoted string: {text}"),
        }
    }
    tokens
}

/// A quoted string's text as Graphviz shows it: `\"` is `"`, `\\` is `\`.
fn unescape(quoted: &str) -> String {
    let mut text = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next @ ('"' | '\\'))) => {
                text.push(next);
                chars.next();
            }
            _ => text.push(c),
        }
    }
    text
}

/// Checks `text` against Graphviz's grammar as `orchestra` writes it —
/// `digraph "name" { statements }`, where a statement is `id [attrs];`,
/// `subgraph cluster_id { … }`, `attr=value;`, `node [attrs];` or `id -> id
/// [attrs];` — with
/// no keyword as an id and every arrow between declared nodes. Returns the
/// labels of the arrows, unescaped.
fn check_dot(text: &str) -> Vec<String> {
    let keywords = ["node", "edge", "graph", "digraph", "subgraph", "strict"];
    let tokens = dot_tokens(text);
    let mut at = 0;
    let next = |at: &mut usize| -> &Token {
        let token = tokens
            .get(*at)
            .unwrap_or_else(|| panic!("ends too early: {text}"));
        *at += 1;
        token
    };
    assert_eq!(next(&mut at), &Token::Id("digraph".into()), "{text}");
    assert!(matches!(next(&mut at), Token::Quoted(_)), "{text}");
    assert_eq!(next(&mut at), &Token::Punct('{'), "{text}");
    let mut depth = 1;
    let mut declared = HashSet::from(["input".to_owned(), "output".to_owned()]);
    let mut arrows = Vec::new();
    // Attributes up to `]`: `key=value` pairs separated by commas.
    let attributes = |at: &mut usize| -> Vec<(String, String)> {
        let mut found = Vec::new();
        loop {
            let Token::Id(key) = next(at) else {
                panic!("an attribute's name expected: {text}");
            };
            assert_eq!(next(at), &Token::Punct('='), "{text}");
            let value = match next(at) {
                Token::Id(v) | Token::Quoted(v) => v.clone(),
                other => panic!("{other:?} as a value: {text}"),
            };
            found.push((key.clone(), value));
            match next(at) {
                Token::Punct(',') => {}
                Token::Punct(']') => return found,
                other => panic!("{other:?} in attributes: {text}"),
            }
        }
    };
    while depth > 0 {
        match next(&mut at) {
            Token::Punct('}') => depth -= 1,
            Token::Id(word) if word == "subgraph" => {
                let Token::Id(name) = next(&mut at) else {
                    panic!("a subgraph's name expected: {text}");
                };
                assert!(name.starts_with("cluster_"), "{text}");
                assert_eq!(next(&mut at), &Token::Punct('{'), "{text}");
                depth += 1;
            }
            Token::Id(word)
                if ["node", "edge", "graph"].contains(&word.as_str())
                    && tokens.get(at) == Some(&Token::Punct('[')) =>
            {
                // Default attributes: `node [shape=box];`.
                at += 1;
                attributes(&mut at);
                assert_eq!(next(&mut at), &Token::Punct(';'), "{text}");
            }
            Token::Id(id) => {
                assert!(
                    !keywords.contains(&id.to_lowercase().as_str()),
                    "{id}: {text}"
                );
                let id = id.clone();
                match next(&mut at) {
                    Token::Punct('=') => {
                        assert!(matches!(next(&mut at), Token::Id(_) | Token::Quoted(_)));
                    }
                    Token::Punct('[') => {
                        attributes(&mut at);
                        declared.insert(id);
                    }
                    Token::Arrow => {
                        let Token::Id(to) = next(&mut at) else {
                            panic!("an arrow's head expected: {text}");
                        };
                        let to = to.clone();
                        assert!(
                            declared.contains(&id) && declared.contains(&to),
                            "{id} -> {to}"
                        );
                        if tokens.get(at) == Some(&Token::Punct('[')) {
                            at += 1;
                            let label = attributes(&mut at).into_iter().find(|(k, _)| k == "label");
                            if let Some((_, label)) = label {
                                arrows.push(unescape(&label));
                            }
                        }
                    }
                    other => panic!("{other:?} after `{id}`: {text}"),
                }
                assert_eq!(next(&mut at), &Token::Punct(';'), "{text}");
            }
            other => panic!("{other:?} where a statement starts: {text}"),
        }
    }
    assert_eq!(at, tokens.len(), "text after the graph: {text}");
    arrows
}

#[test]
fn keywords_as_ids_and_markup_in_labels_draw_valid_mermaid_and_dot() {
    let dir = scratch();
    let file = write(dir.path(), "keywords.toml", KEYWORDS);
    let mermaid = draw(&file, "mermaid", &[]);
    let labels = check_mermaid(&mermaid);
    // The route, its default, the ask's routes and the nested loop's way
    // back, each with its condition.
    assert!(
        labels.iter().any(|l| l.starts_with("matches /^#quot;a")),
        "{mermaid}"
    );
    assert!(labels.iter().any(|l| l.contains("≤3 passes")), "{mermaid}");
    // `node` defaults to both steps of `edge`; the ask to `end`.
    assert_eq!(
        labels.iter().filter(|l| *l == "default").count(),
        3,
        "{mermaid}"
    );
    for shown in [
        "graph<br/>template",
        "join any",
        "map over lines · ≤2 at once",
        "edge · parallel",
    ] {
        assert!(mermaid.contains(shown), "{shown}: {mermaid}");
    }

    let dot = draw(&file, "dot", &[]);
    let labels = check_dot(&dot);
    assert!(
        labels.contains(&r#"matches /^"a\|b";\s*\[x\]\{2\}<end>#3;$/"#.to_owned()),
        "{labels:?}\n{dot}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with(r#"until == "a \"b\" | c""#)),
        "{labels:?}\n{dot}"
    );
}

#[test]
fn secrets_with_markup_characters_are_masked_in_both_languages() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "secret.toml",
        r#"
secrets = ["RELEASE_PASS"]

[flow]
nodes = ["a", "b"]
edges = ["start -> confirm -> a", "b -> end"]

[[flow.asks]]
id = "confirm"
question = "Release with ${RELEASE_PASS}?"

[[flow.routes]]
from = "a"
when = [{ contains = '${RELEASE_PASS}', to = "b" }]
default = "end"

[[agents]]
id = "a"
kind = "template"
template = "a"

[[agents]]
id = "b"
kind = "template"
template = "b"
"#,
    );
    // A password as people pick them: markup characters and a quote.
    let secret = [("RELEASE_PASS", "p<a#ss&w\"rd")];
    for format in ["mermaid", "dot"] {
        let drawn = draw(&file, format, &secret);
        for piece in ["ss&w", "ss#amp;w", "p#lt;a", "p<a#"] {
            assert!(!drawn.contains(piece), "{format} shows {piece}: {drawn}");
        }
        assert_eq!(
            drawn.matches("${RELEASE_PASS}").count(),
            2,
            "{format}: {drawn}"
        );
    }
}

#[test]
fn a_budget_that_restates_the_default_step_bound_is_drawn_with_it() {
    let dir = scratch();
    let file = write(
        dir.path(),
        "restated.toml",
        r#"
version = 1
name = "restated"

[flow]
sequential = ["a", "b"]
budget = { max_steps = 10000 }

[[agents]]
id = "a"
kind = "template"
template = "a"

[[agents]]
id = "b"
kind = "template"
template = "b"
"#,
    );
    for format in ["mermaid", "dot"] {
        let drawn = draw(&file, format, &[]);
        assert!(drawn.contains("budget 10000 steps"), "{format}: {drawn}");
    }
}
