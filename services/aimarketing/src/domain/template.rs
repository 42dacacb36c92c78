//! Prompt templates: `{{name}}` variables in plain text, checked when a prompt is
//! saved and filled when it is rendered.
//!
//! `{{` always opens a variable and `}}` always closes one; single braces are text, so
//! JSON in a prompt needs no escaping. Spaces inside the braces are allowed
//! (`{{ lead.first_name }}`). A name is either one of [`VARIABLES`] or
//! `input.<name>`, a value the caller passes when rendering. Every problem is reported
//! with where it is: its character offset (0-based) and its line and column
//! (1-based), so an editor can point at it.

use std::collections::HashSet;
use std::fmt;

/// The variables a template may use besides `input.<name>`, grouped by the record they
/// are read from.
pub const VARIABLES: &[&str] = &[
    "lead.first_name",
    "lead.last_name",
    "lead.full_name",
    "lead.email",
    "lead.phone",
    "lead.suburb",
    "lead.state",
    "lead.postcode",
    "lead.source",
    "lead.status",
    "lead.stage",
    "contact.first_name",
    "contact.last_name",
    "contact.full_name",
    "contact.email",
    "contact.phone",
    "contact.company",
    "deal.title",
    "deal.value",
    "deal.currency_code",
    "deal.stage",
    "deal.status",
    "lot.lot_number",
    "lot.address",
    "lot.price",
    "lot.currency_code",
    "lot.bedrooms",
    "lot.bathrooms",
    "lot.garage",
    "lot.land_size",
    "lot.status",
    "lot.features",
    "project.name",
    "project.suburb",
    "project.state",
    "project.address",
    "user.name",
    "user.email",
    "user.phone",
];

/// The namespace of the values a caller passes to RenderPrompt.
pub const INPUT_PREFIX: &str = "input.";

/// The most problems one check reports (a template of stray braces would otherwise
/// produce one per brace).
pub const MAX_PROBLEMS: usize = 20;

/// A template, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Variable(String),
}

/// Where something is in a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Characters before it (0-based).
    pub offset: usize,
    /// Its line, from 1.
    pub line: usize,
    /// Its column on that line, in characters, from 1.
    pub column: usize,
}

/// What is wrong at one place of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub position: Position,
    /// What, for the person writing the template.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {} (offset {}): {}",
            self.position.line, self.position.column, self.position.offset, self.message
        )
    }
}

/// A template filled with values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// The variables that had no value (rendered as empty text), each once, in order of
    /// first use.
    pub unfilled: Vec<String>,
}

/// Whether `name` is a variable a template may use.
pub fn is_known(name: &str) -> bool {
    VARIABLES.contains(&name) || name.strip_prefix(INPUT_PREFIX).is_some_and(is_identifier)
}

/// A lower-case identifier: a letter, then letters, digits and underscores.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A dotted name of identifiers (`lead.first_name`): the shape of every variable.
fn is_dotted_name(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_identifier)
}

/// The characters of a template with their positions.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    position: Position,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.chars().peekable(),
            position: Position {
                offset: 0,
                line: 1,
                column: 1,
            },
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        self.position.offset += 1;
        if c == '\n' {
            self.position.line += 1;
            self.position.column = 1;
        } else {
            self.position.column += 1;
        }
        Some(c)
    }

    /// Consumes `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        if self.chars.peek() == Some(&c) {
            self.next();
            true
        } else {
            false
        }
    }
}

/// Parses `content`, reporting every problem (up to [`MAX_PROBLEMS`]): a `}}` that closes
/// nothing, a `{{` never closed (or followed by another `{{` before its `}}`), a name that
/// is not a dotted lower-case name, or a variable that is not known.
pub fn parse(content: &str) -> Result<Template, Vec<Problem>> {
    let mut pieces = Vec::new();
    let mut problems = Vec::new();
    let mut text = String::new();
    let mut cursor = Cursor::new(content);
    let mut report = |position, message: String| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(Problem { position, message });
        }
    };
    loop {
        let here = cursor.position;
        let Some(c) = cursor.next() else { break };
        match c {
            '{' if cursor.eat('{') => {
                // A variable: everything up to the next `}}`.
                let mut inner = String::new();
                let mut closed = false;
                while let Some(c) = cursor.next() {
                    if c == '}' && cursor.eat('}') {
                        closed = true;
                        break;
                    }
                    if c == '{' && cursor.eat('{') {
                        break;
                    }
                    inner.push(c);
                }
                if !closed {
                    report(
                        here,
                        "`{{` is not closed by `}}` before the next `{{` or the end".to_owned(),
                    );
                    // Text after an unclosed `{{` is not checked further: which braces
                    // were meant is a guess.
                    break;
                }
                let name = inner.trim();
                if !is_dotted_name(name) {
                    report(
                        here,
                        format!(
                            "`{{{{{inner}}}}}` is not a variable: names are lower-case words \
                             joined by dots, such as lead.first_name"
                        ),
                    );
                } else if !is_known(name) {
                    report(
                        here,
                        format!(
                            "unknown variable {name}: use one of the lead, contact, deal, lot, \
                             project and user variables, or input.<name>"
                        ),
                    );
                } else {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Variable(name.to_owned()));
                }
            }
            '}' if cursor.eat('}') => {
                report(here, "`}}` closes no `{{`".to_owned());
            }
            c => text.push(c),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Template { pieces })
}

impl Template {
    /// The variables the template uses, each once, in order of first use.
    pub fn variables(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Variable(name) if seen.insert(name.as_str()) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Fills the template: each variable with `value(name)`, or with nothing (and named
    /// in [`Rendered::unfilled`]) when it has none.
    pub fn render<'v>(&self, value: impl Fn(&str) -> Option<&'v str>) -> Rendered {
        let mut text = String::new();
        let mut unfilled: Vec<String> = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Variable(name) => match value(name) {
                    Some(v) => text.push_str(v),
                    None => {
                        if !unfilled.contains(name) {
                            unfilled.push(name.clone());
                        }
                    }
                },
            }
        }
        Rendered { text, unfilled }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn problems(content: &str) -> Vec<String> {
        parse(content)
            .expect_err("the template is refused")
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn variables_are_filled_and_the_missing_ones_named_once() {
        let t = parse(
            "Hi {{lead.first_name}}, lot {{ lot.lot_number }} is {{lot.price}}; {{lot.price}}!",
        )
        .unwrap();
        assert_eq!(
            t.variables(),
            ["lead.first_name", "lot.lot_number", "lot.price"]
        );
        let values = HashMap::from([("lead.first_name", "Mia"), ("lot.lot_number", "101")]);
        let rendered = t.render(|name| values.get(name).copied());
        assert_eq!(rendered.text, "Hi Mia, lot 101 is ; !");
        assert_eq!(rendered.unfilled, ["lot.price"]);
    }

    #[test]
    fn single_braces_and_json_are_text() {
        let t = parse(r#"Reply as JSON: {"name": "{{input.name}}"} {x}"#).unwrap();
        let rendered = t.render(|_| Some("Jo"));
        assert_eq!(rendered.text, r#"Reply as JSON: {"name": "Jo"} {x}"#);
    }

    #[test]
    fn input_variables_take_any_lower_case_identifier() {
        assert!(is_known("input.offer_2"));
        assert!(!is_known("input."));
        assert!(!is_known("input.Offer"));
        assert!(!is_known("input.a.b"));
        assert!(!is_known("lead.budget"));
    }

    #[test]
    fn an_unknown_variable_is_reported_with_its_line_column_and_offset() {
        assert_eq!(
            problems("Hello\n  {{lead.budget}} there"),
            [
                "line 2, column 3 (offset 8): unknown variable lead.budget: use one of the lead, \
              contact, deal, lot, project and user variables, or input.<name>"
            ]
        );
    }

    #[test]
    fn unbalanced_braces_are_reported_where_they_are() {
        assert_eq!(
            problems("a }} b"),
            ["line 1, column 3 (offset 2): `}}` closes no `{{`"]
        );
        assert_eq!(
            problems("é {{lead.first_name"),
            [
                "line 1, column 3 (offset 2): `{{` is not closed by `}}` before the next `{{` or the end"
            ]
        );
        assert_eq!(
            problems("{{lead.first_name {{lead.last_name}}"),
            [
                "line 1, column 1 (offset 0): `{{` is not closed by `}}` before the next `{{` or the end"
            ]
        );
    }

    #[test]
    fn a_malformed_name_is_not_a_variable() {
        for bad in [
            "{{}}",
            "{{ }}",
            "{{Lead.name}}",
            "{{lead..name}}",
            "{{lead name}}",
        ] {
            let found = problems(bad);
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(found[0].contains("is not a variable"), "{bad}: {found:?}");
        }
    }

    #[test]
    fn every_problem_is_reported_up_to_the_limit() {
        let found = problems("{{a.b}} }} {{lead.email}} {{x}}");
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(problems(&"}}".repeat(100)).len(), MAX_PROBLEMS);
    }

    /// A template built from text without braces and known variables.
    fn template_strategy() -> impl Strategy<Value = (String, Vec<&'static str>)> {
        let piece = prop_oneof![
            "[^{}]{0,20}".prop_map(|t| (t, None)),
            proptest::sample::select(VARIABLES).prop_map(|v| (String::new(), Some(v))),
        ];
        proptest::collection::vec(piece, 0..20).prop_map(|pieces| {
            let mut text = String::new();
            let mut used = Vec::new();
            for (t, v) in pieces {
                text.push_str(&t);
                if let Some(v) = v {
                    text.push_str(&format!("{{{{{v}}}}}"));
                    used.push(v);
                }
            }
            (text, used)
        })
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_with_positions_inside_it(content in "\\PC{0,200}") {
            let chars = content.chars().count();
            match parse(&content) {
                Ok(_) => {}
                Err(problems) => {
                    prop_assert!(!problems.is_empty() && problems.len() <= MAX_PROBLEMS);
                    for p in problems {
                        prop_assert!(p.position.offset < chars);
                        prop_assert!(p.position.line >= 1 && p.position.column >= 1);
                    }
                }
            }
        }

        #[test]
        fn a_template_of_known_variables_renders_every_one_and_no_braces(
            (content, used) in template_strategy()
        ) {
            let template = parse(&content).expect("known variables parse");
            let rendered = template.render(|name| VARIABLES.iter().find(|v| **v == name).copied());
            prop_assert!(rendered.unfilled.is_empty());
            prop_assert!(!rendered.text.contains('{'), "braces left in {:?}", rendered.text);
            for v in &used {
                prop_assert!(rendered.text.contains(v));
            }
            let empty = template.render(|_| None);
            let mut expected: Vec<&str> = Vec::new();
            for v in used {
                if !expected.contains(&v) {
                    expected.push(v);
                }
            }
            prop_assert_eq!(empty.unfilled, expected);
        }

        #[test]
        fn a_filled_value_is_never_parsed_again(value in "\\PC{0,50}") {
            // Values are inserted as they are: braces in a lead's name stay text.
            let template = parse("[{{input.v}}]").unwrap();
            let rendered = template.render(|_| Some(value.as_str()));
            prop_assert_eq!(rendered.text, format!("[{value}]"));
        }
    }
}
