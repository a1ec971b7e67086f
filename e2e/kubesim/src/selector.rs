//! Kubernetes label selectors and field selectors, as kubesim applies them.
//!
//! This module is where kubesim turns the selectors its clients send into
//! matchers: the `?labelSelector=` and `?fieldSelector=` query parameters of list
//! and watch requests, `metav1.LabelSelector` objects (a Deployment's or a
//! `PodDisruptionBudget`'s `spec.selector`) and plain map selectors (a Service's
//! `spec.selector`). It follows apimachinery's `labels.Parse`,
//! `metav1.LabelSelectorAsSelector`, its `ValidateLabelSelector` checks and
//! `fields.ParseSelector`: the same grammar (including its quirks), the same
//! validation of label keys and values, the same matching rules, and error
//! messages that read like the API server's.
//!
//! Objects are plain [`serde_json::Value`]s; nothing here knows about resource
//! kinds, so callers decide which fields a kind supports and what an absent
//! selector means for it.

use std::borrow::Cow;

use serde_json::Value;

/// The relation a label requirement expresses between a key and its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key <operator> values` term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and free of duplicates, like apimachinery's `sets.String`.
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement without validating it, normalising its values.
    fn new(key: &str, operator: Operator, mut values: Vec<String>) -> Requirement {
        values.sort();
        values.dedup();
        Requirement {
            key: key.to_string(),
            operator,
            values,
        }
    }

    /// Whether a set of labels (`metadata.labels`) satisfies this requirement.
    fn matches(&self, labels: &Value) -> bool {
        let actual = label_value(labels, &self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                actual.is_some_and(|v| self.has_value(&v))
            }
            Operator::NotIn | Operator::NotEquals => actual.is_none_or(|v| !self.has_value(&v)),
            Operator::Exists => actual.is_some(),
            Operator::DoesNotExist => actual.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                actual.is_some_and(|v| self.compare_integer(&v))
            }
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// `Gt`/`Lt`: both the label and the single bound must parse as `i64`.
    fn compare_integer(&self, actual: &str) -> bool {
        let [bound] = self.values.as_slice() else {
            return false;
        };
        let (Ok(actual), Ok(bound)) = (actual.parse::<i64>(), bound.parse::<i64>()) else {
            return false;
        };
        match self.operator {
            Operator::GreaterThan => actual > bound,
            Operator::LessThan => actual < bound,
            _ => false,
        }
    }
}

/// A parsed label selector (string form, as in `?labelSelector=`).
///
/// A selector is the AND of its requirements; one without requirements (see
/// [`LabelSelector::is_empty`]) matches every object. Requirements are kept
/// sorted by key and their values sorted and deduplicated, so reordering
/// requirements with distinct keys, or the values of a set, keeps selectors
/// equal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h,i==j` and set-based forms;
    /// also `>`/`<` (Gt/Lt with integer values) as apimachinery allows.
    ///
    /// Follows `labels.Parse` exactly, quirks included: whitespace (space, tab,
    /// CR, LF) separates tokens and is otherwise ignored; `x=` and `x in (a,)`
    /// contain the empty value; `x in ()` means `x in ("")` rather than an error;
    /// `in` and `notin` are keywords only in operator position (so `in=x` and
    /// `x in (notin)` are valid); a trailing comma is an error. Keys must be
    /// qualified names and values valid label values.
    ///
    /// # Errors
    ///
    /// A message such as `unable to parse requirement: ...` or
    /// `found ')', expected: ',' or 'end of string'` naming the offending token,
    /// key or value.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let requirements = Parser::new(s).parse()?;
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// From a `metav1.LabelSelector` JSON object (`matchLabels` +
    /// `matchExpressions` with operators `In`, `NotIn`, `Exists`,
    /// `DoesNotExist`).
    ///
    /// `{}` (or no `matchLabels`/`matchExpressions` at all) gives the empty
    /// selector, which matches everything. A JSON `null` also gives the empty
    /// selector: Kubernetes mostly treats a *nil* selector as selecting nothing,
    /// so callers for which that matters must check for `null` themselves.
    ///
    /// # Errors
    ///
    /// Every problem found, each naming its field relative to the selector, as
    /// the API server's validation does, e.g.
    /// `matchExpressions[0].operator: Invalid value: "Foo": not a valid selector operator`
    /// or ``matchExpressions[1].values: Required value: must be specified when `operator` is 'In' or 'NotIn'``.
    /// Several problems are reported as `[first, second]`.
    pub fn from_json(v: &Value) -> Result<LabelSelector, String> {
        let object = match v {
            Value::Null => return Ok(LabelSelector::default()),
            Value::Object(object) => object,
            other => {
                return Err(format!(
                    "invalid selector: expected a LabelSelector object, found {}",
                    json_type(other)
                ));
            }
        };
        let mut errors = Vec::new();
        let mut requirements = match_labels(object.get("matchLabels"), &mut errors);
        requirements.extend(match_expressions(
            object.get("matchExpressions"),
            &mut errors,
        ));
        if errors.is_empty() {
            Ok(LabelSelector::from_requirements(requirements))
        } else {
            Err(aggregate(errors))
        }
    }

    /// From a plain map selector like a Service's `spec.selector` (every key
    /// equals its value), like `labels.SelectorFromSet`: nothing is validated.
    ///
    /// Anything but a JSON object, and an empty object, give a selector with no
    /// requirements, which [`LabelSelector::matches`] treats as matching
    /// everything. Kubernetes treats an empty or absent Service selector as
    /// selecting *no* pods, so callers implementing Services must check
    /// [`LabelSelector::is_empty`] and decide. Non-string map values compare by
    /// their string form (`null` as `""`).
    #[must_use]
    pub fn from_map(v: &Value) -> LabelSelector {
        let requirements = v
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(key, value)| {
                        let value = scalar_string(value).into_owned();
                        Requirement::new(key, Operator::Equals, vec![value])
                    })
                    .collect()
            })
            .unwrap_or_default();
        LabelSelector::from_requirements(requirements)
    }

    /// Whether this selector has no requirements (and so matches everything).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels is selected. `labels` is the
    /// object's `metadata.labels` (may be `Value::Null` / absent, meaning no
    /// labels). A `notin`/`!=` requirement matches objects without the key, as
    /// in Kubernetes.
    #[must_use]
    pub fn matches(&self, labels: &Value) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> LabelSelector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }
}

/// The canonical string form, as apimachinery's `Selector.String()` writes it (the Scale subresource's
/// `status.selector`): requirements sorted by key, joined by commas, set values sorted, e.g.
/// `app=web,tier in (back,front),!canary`.
impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = &self.key;
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::Equals => write!(f, "{key}={first}"),
            Operator::DoubleEquals => write!(f, "{key}=={first}"),
            Operator::NotEquals => write!(f, "{key}!={first}"),
            Operator::GreaterThan => write!(f, "{key}>{first}"),
            Operator::LessThan => write!(f, "{key}<{first}"),
            Operator::In => write!(f, "{key} in ({})", self.values.join(",")),
            Operator::NotIn => write!(f, "{key} notin ({})", self.values.join(",")),
        }
    }
}

// ---------------------------------------------------------------------------
// Label selector lexer
// ---------------------------------------------------------------------------

/// The lexical tokens of the label selector grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// A token and the text it was scanned from (empty for the end of input).
#[derive(Debug, Clone, Copy)]
struct Scanned<'a> {
    token: Token,
    literal: &'a str,
}

impl Scanned<'_> {
    const END: Scanned<'static> = Scanned {
        token: Token::End,
        literal: "",
    };
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits a label selector into tokens; the last one is always [`Token::End`].
fn lex(s: &str) -> Vec<Scanned<'_>> {
    let bytes = s.as_bytes();
    let mut items = Vec::new();
    let mut pos = 0;
    loop {
        while bytes.get(pos).is_some_and(|b| is_whitespace(*b)) {
            pos += 1;
        }
        let rest = bytes.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            items.push(Scanned::END);
            return items;
        }
        let (token, len) = scan_symbol(rest).unwrap_or_else(|| scan_word(rest));
        let literal = s.get(pos..pos + len).unwrap_or_default();
        items.push(Scanned { token, literal });
        pos += len;
    }
}

/// Scans an operator or punctuation token, preferring the two-byte `!=`/`==`.
fn scan_symbol(rest: &[u8]) -> Option<(Token, usize)> {
    let scanned = match rest {
        [b'!', b'=', ..] => (Token::NotEquals, 2),
        [b'=', b'=', ..] => (Token::DoubleEquals, 2),
        [b'!', ..] => (Token::DoesNotExist, 1),
        [b'=', ..] => (Token::Equals, 1),
        [b'(', ..] => (Token::OpenPar, 1),
        [b')', ..] => (Token::ClosedPar, 1),
        [b',', ..] => (Token::Comma, 1),
        [b'>', ..] => (Token::GreaterThan, 1),
        [b'<', ..] => (Token::LessThan, 1),
        _ => return None,
    };
    Some(scanned)
}

/// Scans an identifier or the keywords `in`/`notin`: everything up to the next
/// whitespace or special symbol. Always consumes at least one byte.
fn scan_word(rest: &[u8]) -> (Token, usize) {
    let len = rest
        .iter()
        .position(|b| is_whitespace(*b) || is_special_symbol(*b))
        .unwrap_or(rest.len())
        .max(1);
    let token = match rest.get(..len) {
        Some(b"in") => Token::In,
        Some(b"notin") => Token::NotIn,
        _ => Token::Identifier,
    };
    (token, len)
}

// ---------------------------------------------------------------------------
// Label selector parser
// ---------------------------------------------------------------------------

/// Whether `in`/`notin` are keywords (operator position) or plain identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// A recursive-descent parser over the scanned tokens, as in apimachinery.
struct Parser<'a> {
    items: Vec<Scanned<'a>>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Parser<'a> {
        Parser {
            items: lex(s),
            position: 0,
        }
    }

    /// The current token, without advancing.
    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        let item = self
            .items
            .get(self.position)
            .copied()
            .unwrap_or(Scanned::END);
        let token = match (context, item.token) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            (_, token) => token,
        };
        (token, item.literal)
    }

    /// The current token, advancing past it (never past the end).
    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let current = self.lookahead(context);
        if self.position < self.items.len() {
            self.position += 1;
        }
        current
    }

    /// `<requirement> ( "," <requirement> )*`, or nothing at all.
    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    if self.parse_separator()? {
                        return Ok(requirements);
                    }
                }
                Token::End => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    /// After a requirement: the end (returns `true`) or a comma followed by
    /// another requirement (returns `false`).
    fn parse_separator(&mut self) -> Result<bool, String> {
        let (token, literal) = self.consume(Context::Values);
        match token {
            Token::End => Ok(true),
            Token::Comma => match self.lookahead(Context::Values) {
                (Token::Identifier | Token::DoesNotExist, _) => Ok(false),
                (_, next) => Err(format!("found '{next}', expected: identifier after ','")),
            },
            _ => Err(format!(
                "found '{literal}', expected: ',' or 'end of string'"
            )),
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return checked_requirement(key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        checked_requirement(key, operator, values)
    }

    /// `[!] KEY`; infers `Exists` when the key stands alone, and returns
    /// `DoesNotExist` for `!KEY` whatever follows.
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<Operator>), String> {
        let (mut token, mut literal) = self.consume(Context::Values);
        let negated = token == Token::DoesNotExist;
        if negated {
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let key_errors = qualified_name_errors(literal);
        if !key_errors.is_empty() {
            return Err(invalid("key", literal, &key_errors.join("; ")));
        }
        if negated {
            return Ok((literal, Some(Operator::DoesNotExist)));
        }
        let (next, _) = self.lookahead(Context::Values);
        let inferred = matches!(next, Token::End | Token::Comma).then_some(Operator::Exists);
        Ok((literal, inferred))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        match token {
            Token::In => Ok(Operator::In),
            Token::NotIn => Ok(Operator::NotIn),
            Token::Equals => Ok(Operator::Equals),
            Token::DoubleEquals => Ok(Operator::DoubleEquals),
            Token::NotEquals => Ok(Operator::NotEquals),
            Token::GreaterThan => Ok(Operator::GreaterThan),
            Token::LessThan => Ok(Operator::LessThan),
            _ => Err(format!(
                "found '{literal}', expected: '=', '!=', '==', 'in', 'notin', '>' or '<'"
            )),
        }
    }

    /// `"(" values ")"`; `()` is the set holding only the empty value.
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}', expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                match self.consume(Context::Values) {
                    (Token::ClosedPar, _) => Ok(values),
                    (_, found) => Err(format!("found '{found}', expected: ')'")),
                }
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// A comma-separated list of possibly empty identifiers, up to (not
    /// including) the closing parenthesis.
    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values = Vec::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.push(literal.to_string());
                    match self.lookahead(Context::Values) {
                        (Token::Comma, _) => {}
                        (Token::ClosedPar, _) => return Ok(values),
                        (_, next) => return Err(format!("found '{next}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.lookahead(Context::Values) {
                        (Token::ClosedPar, _) => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        (Token::Comma, _) => {
                            self.consume(Context::Values);
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; may be empty.
    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        if let (Token::End | Token::Comma, _) = self.lookahead(Context::Values) {
            return Ok(vec![String::new()]);
        }
        match self.consume(Context::Values) {
            (Token::Identifier, literal) => Ok(vec![literal.to_string()]),
            (_, literal) => Err(format!("found '{literal}', expected: identifier")),
        }
    }
}

/// Builds a parsed requirement, validating its values like `NewRequirement`
/// (the key was already checked while parsing).
fn checked_requirement(
    key: &str,
    operator: Operator,
    values: Vec<String>,
) -> Result<Requirement, String> {
    let requirement = Requirement::new(key, operator, values);
    let mut errors = Vec::new();
    for (i, value) in requirement.values.iter().enumerate() {
        let integer_only = matches!(operator, Operator::GreaterThan | Operator::LessThan);
        if integer_only && value.parse::<i64>().is_err() {
            let detail = "for 'Gt', 'Lt' operators, the value must be an integer";
            errors.push(invalid(&format!("values[{i}]"), value, detail));
        }
        let value_errors = label_value_errors(value);
        if !value_errors.is_empty() {
            let path = format!("values[{i}][{key}]");
            errors.push(invalid(&path, value, &value_errors.join("; ")));
        }
    }
    if errors.is_empty() {
        Ok(requirement)
    } else {
        Err(aggregate(errors))
    }
}

// ---------------------------------------------------------------------------
// metav1.LabelSelector
// ---------------------------------------------------------------------------

/// The `matchLabels` map: one `key=value` requirement per entry.
fn match_labels(v: Option<&Value>, errors: &mut Vec<String>) -> Vec<Requirement> {
    let map = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            errors.push(invalid_json(
                "matchLabels",
                other,
                "must be a map of strings",
            ));
            return Vec::new();
        }
    };
    map.iter()
        .filter_map(|(key, value)| match_label(key, value, errors))
        .collect()
}

fn match_label(key: &str, value: &Value, errors: &mut Vec<String>) -> Option<Requirement> {
    let before = errors.len();
    for message in qualified_name_errors(key) {
        errors.push(invalid("matchLabels", key, &message));
    }
    let path = format!("matchLabels[{key}]");
    let value = optional_string(Some(value), &path, errors)?;
    for message in label_value_errors(value) {
        errors.push(invalid(&path, value, &message));
    }
    let ok = errors.len() == before;
    ok.then(|| Requirement::new(key, Operator::Equals, vec![value.to_string()]))
}

/// The `matchExpressions` list of `{key, operator, values}` requirements.
fn match_expressions(v: Option<&Value>, errors: &mut Vec<String>) -> Vec<Requirement> {
    let list = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(other) => {
            errors.push(invalid_json("matchExpressions", other, "must be a list"));
            return Vec::new();
        }
    };
    list.iter()
        .enumerate()
        .filter_map(|(i, expression)| match_expression(i, expression, errors))
        .collect()
}

fn match_expression(i: usize, v: &Value, errors: &mut Vec<String>) -> Option<Requirement> {
    let path = format!("matchExpressions[{i}]");
    let Some(object) = v.as_object() else {
        let detail = "must be an object with key, operator and values";
        errors.push(invalid_json(&path, v, detail));
        return None;
    };
    let before = errors.len();
    let key = optional_string(object.get("key"), &format!("{path}.key"), errors);
    let operator = optional_string(object.get("operator"), &format!("{path}.operator"), errors);
    let values = string_list(object.get("values"), &format!("{path}.values"), errors);
    let (key, operator, values) = (key?, operator?, values?);
    let operator = expression_operator(&path, operator, &values, errors);
    for message in qualified_name_errors(key) {
        errors.push(invalid(&format!("{path}.key"), key, &message));
    }
    for (j, value) in values.iter().enumerate() {
        for message in label_value_errors(value) {
            errors.push(invalid(&format!("{path}.values[{j}]"), value, &message));
        }
    }
    let operator = operator.filter(|_| errors.len() == before)?;
    Some(Requirement::new(key, operator, values))
}

/// Maps a `metav1.LabelSelectorOperator` and checks its values' count, like
/// `ValidateLabelSelectorRequirement`.
fn expression_operator(
    path: &str,
    operator: &str,
    values: &[String],
    errors: &mut Vec<String>,
) -> Option<Operator> {
    let mapped = match operator {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        _ => {
            let message = invalid(
                &format!("{path}.operator"),
                operator,
                "not a valid selector operator",
            );
            errors.push(message);
            return None;
        }
    };
    let set_based = matches!(mapped, Operator::In | Operator::NotIn);
    if set_based && values.is_empty() {
        errors.push(format!(
            "{path}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        ));
    } else if !set_based && !values.is_empty() {
        errors.push(format!(
            "{path}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        ));
    }
    Some(mapped)
}

/// A string field of the JSON object; absent and `null` read as `""`, as Go's
/// JSON decoding does.
fn optional_string<'v>(
    v: Option<&'v Value>,
    path: &str,
    errors: &mut Vec<String>,
) -> Option<&'v str> {
    match v {
        None | Some(Value::Null) => Some(""),
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            errors.push(invalid_json(path, other, "must be a string"));
            None
        }
    }
}

/// A list of strings; absent and `null` read as the empty list.
fn string_list(v: Option<&Value>, path: &str, errors: &mut Vec<String>) -> Option<Vec<String>> {
    let list = match v {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            errors.push(invalid_json(path, other, "must be a list of strings"));
            return None;
        }
    };
    let before = errors.len();
    let values: Vec<String> = list
        .iter()
        .enumerate()
        .filter_map(|(i, item)| optional_string(Some(item), &format!("{path}[{i}]"), errors))
        .map(str::to_string)
        .collect();
    (errors.len() == before).then_some(values)
}

// ---------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------

/// One `path=value` or `path!=value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    path: String,
    value: String,
    negated: bool,
}

impl FieldTerm {
    fn matches(&self, obj: &Value) -> bool {
        let actual = scalar_string(lookup(obj, &self.path).unwrap_or(&Value::Null));
        (actual == self.value.as_str()) != self.negated
    }
}

/// A parsed field selector (`?fieldSelector=`): `metadata.name=x,metadata.namespace!=y`,
/// `=`, `==`, `!=`, and any dotted path such as `status.phase` or `spec.nodeName`
/// (compare against the string form of the value at that path; an absent value
/// compares equal to "").
///
/// Terms are combined with AND; a selector without terms matches every object. Numbers and
/// booleans compare by their JSON text (`spec.replicas=3`, `spec.paused=true`);
/// a numeric path segment indexes into an array.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses a field selector like `fields.ParseSelector`: terms are split on
    /// unescaped commas, each at its leftmost `!=`, `==` or `=`; empty terms are
    /// skipped; values are not trimmed and may escape `\,`, `\=` and `\\` (any
    /// other escape, a trailing `\`, or a bare `,`/`=` in a value is an error).
    ///
    /// Unlike apimachinery, which leaves that to each resource's supported
    /// field labels, a path that is empty, contains whitespace or has an empty
    /// segment is rejected here with `field label not supported: ...`.
    ///
    /// # Errors
    ///
    /// `invalid selector: '<selector>'; can't understand '<term>'` for a term
    /// without an operator, `invalid field selector: ...` for bad escapes, and
    /// `field label not supported: ...` for a malformed path.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let terms = parts
            .into_iter()
            .filter(|part| !part.is_empty())
            .map(|part| parse_field_term(s, part))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FieldSelector { terms })
    }

    /// Whether this selector has no terms (and so matches everything).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The field paths the terms compare, in term order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|term| term.path.as_str())
    }

    /// Whether the whole object (not just its metadata) satisfies every term.
    #[must_use]
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|term| term.matches(obj))
    }
}

/// Splits on commas not preceded by an escaping backslash; escapes are kept.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    terms.push(s.get(start..).unwrap_or_default());
    terms
}

fn parse_field_term(selector: &str, part: &str) -> Result<FieldTerm, String> {
    let Some((path, negated, raw)) = split_term(part) else {
        return Err(format!(
            "invalid selector: '{selector}'; can't understand '{part}'"
        ));
    };
    let value = unescape_value(raw)?;
    let malformed = path.is_empty()
        || path.chars().any(char::is_whitespace)
        || path.split('.').any(str::is_empty);
    if malformed {
        return Err(format!("field label not supported: {path}"));
    }
    Ok(FieldTerm {
        path: path.to_string(),
        value,
        negated,
    })
}

/// Splits a term at its leftmost operator, trying `!=`, then `==`, then `=` at
/// each position. Returns the path, whether the operator is `!=`, and the raw
/// (still escaped) value.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    term.char_indices().find_map(|(i, _)| {
        let rest = term.get(i..)?;
        let (negated, len) = if rest.starts_with("!=") {
            (true, 2)
        } else if rest.starts_with("==") {
            (false, 2)
        } else if rest.starts_with('=') {
            (false, 1)
        } else {
            return None;
        };
        Some((term.get(..i)?, negated, term.get(i + len..)?))
    })
}

/// Undoes `fields.EscapeValue`: `\\`, `\,` and `\=` stand for `\`, `,`, `=`.
fn unescape_value(raw: &str) -> Result<String, String> {
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('\\' | ',' | '=')) => value.push(escaped),
                Some(other) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
                None => {
                    return Err("invalid field selector: invalid escape sequence: \\".to_string());
                }
            },
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ));
            }
            other => value.push(other),
        }
    }
    Ok(value)
}

/// The value at a dotted path; numeric segments index into arrays.
fn lookup<'v>(obj: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(obj, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(list) => segment.parse::<usize>().ok().and_then(|i| list.get(i)),
            _ => None,
        })
}

// ---------------------------------------------------------------------------
// Shared helpers: values, validation and error text
// ---------------------------------------------------------------------------

/// The label's value if the key is present; non-string values (never valid in
/// Kubernetes) compare by their string form.
fn label_value<'v>(labels: &'v Value, key: &str) -> Option<Cow<'v, str>> {
    labels.get(key).map(scalar_string)
}

/// The string form of a JSON value: strings as they are, `null` as `""`,
/// anything else as its compact JSON text.
fn scalar_string(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A `field.Invalid` error for a string value: `path: Invalid value: "v": detail`.
fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {value:?}: {detail}")
}

/// A `field.Invalid` error showing a JSON value as JSON.
fn invalid_json(path: &str, value: &Value, detail: &str) -> String {
    format!("{path}: Invalid value: {value}: {detail}")
}

/// Joins errors like apimachinery's aggregate: one as is, several as `[a, b]`.
fn aggregate(mut errors: Vec<String>) -> String {
    let mut seen = Vec::with_capacity(errors.len());
    errors.retain(|e| {
        let fresh = !seen.contains(e);
        seen.push(e.clone());
        fresh
    });
    match errors.as_slice() {
        [only] => only.clone(),
        _ => format!("[{}]", errors.join(", ")),
    }
}

const QUALIFIED_NAME_MAX_LEN: usize = 63;
const LABEL_VALUE_MAX_LEN: usize = 63;
const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', \
     and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// `validation.RegexError`: the message, examples and the pattern used.
fn regex_error(message: &str, pattern: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{pattern}')",
        examples.join("or ")
    )
}

/// `[A-Za-z0-9]` at both ends, `[-A-Za-z0-9_.]` in between; not empty.
fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ends_ok = matches!(
        (bytes.first(), bytes.last()),
        (Some(first), Some(last)) if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()
    );
    inner_ok && ends_ok
}

/// One RFC 1123 label: `[a-z0-9]` at both ends, `[-a-z0-9]` in between.
fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let lower_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let inner_ok = bytes.iter().all(|b| lower_alnum(b) || *b == b'-');
    let ends_ok = bytes.first().is_some_and(lower_alnum) && bytes.last().is_some_and(lower_alnum);
    inner_ok && ends_ok
}

/// `validation.IsDNS1123Subdomain`.
fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        errors.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX_LEN} characters"
        ));
    }
    if !s.split('.').all(is_dns1123_label) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errors
}

/// `validation.IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then
/// a name of at most 63 characters.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let name_error = || {
        regex_error(
            QUALIFIED_NAME_MSG,
            QUALIFIED_NAME_FMT,
            &["MyName", "my.name", "123-abc"],
        )
    };
    let parts: Vec<&str> = value.split('/').collect();
    let mut errors = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                let prefix_errors = dns1123_subdomain_errors(prefix).into_iter();
                errors.extend(prefix_errors.map(|message| format!("prefix part {message}")));
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                name_error()
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX_LEN {
        errors.push(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX_LEN} characters"
        ));
    }
    if !is_qualified_name_part(name) {
        errors.push(format!("name part {}", name_error()));
    }
    errors
}

/// `validation.IsValidLabelValue`: empty, or at most 63 characters shaped like
/// a qualified name's name part.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LEN {
        errors.push(format!(
            "must be no more than {LABEL_VALUE_MAX_LEN} characters"
        ));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str) -> LabelSelector {
        match LabelSelector::parse(s) {
            Ok(selector) => selector,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    fn sel_err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(selector) => panic!("{s:?} should not parse, got {selector:?}"),
            Err(e) => e,
        }
    }

    fn fsel(s: &str) -> FieldSelector {
        match FieldSelector::parse(s) {
            Ok(selector) => selector,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    #[test]
    fn selectors_print_in_canonical_form() {
        let from_object = LabelSelector::from_json(&json!({
            "matchLabels": {"tier": "web", "app": "x"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "os", "operator": "NotIn", "values": ["win"]},
            ],
        }))
        .unwrap();
        assert_eq!(
            from_object.to_string(),
            "app=x,!canary,env in (dev,prod),os notin (win),tier=web,zone"
        );
        assert_eq!(sel("b==1,a!=2,c>3,d<4").to_string(), "a!=2,b==1,c>3,d<4");
        assert_eq!(LabelSelector::default().to_string(), "");
        assert_eq!(sel(&from_object.to_string()), from_object);
    }

    fn fsel_err(s: &str) -> String {
        match FieldSelector::parse(s) {
            Ok(selector) => panic!("{s:?} should not parse, got {selector:?}"),
            Err(e) => e,
        }
    }

    fn json_err(v: Value) -> String {
        match LabelSelector::from_json(&v) {
            Ok(selector) => panic!("{v} should be rejected, got {selector:?}"),
            Err(e) => e,
        }
    }

    fn json_ok(v: Value) -> LabelSelector {
        match LabelSelector::from_json(&v) {
            Ok(selector) => selector,
            Err(e) => panic!("{v} should be accepted, got {e}"),
        }
    }

    fn assert_contains(haystack: &str, needle: &str) {
        assert!(
            haystack.contains(needle),
            "expected {haystack:?} to contain {needle:?}"
        );
    }

    // --- label selector: operators -------------------------------------

    #[test]
    fn equals_matches_only_that_value() {
        let s = sel("app=web");
        assert!(s.matches(&json!({"app": "web"})));
        assert!(s.matches(&json!({"app": "web", "tier": "front"})));
        assert!(!s.matches(&json!({"app": "db"})));
        assert!(!s.matches(&json!({})));
        assert!(!s.matches(&Value::Null));
    }

    #[test]
    fn double_equals_behaves_like_equals() {
        let s = sel("app==web");
        assert!(s.matches(&json!({"app": "web"})));
        assert!(!s.matches(&json!({"app": "db"})));
        assert!(!s.matches(&json!({})));
    }

    #[test]
    fn not_equals_matches_other_values_and_missing_keys() {
        let s = sel("app!=web");
        assert!(!s.matches(&json!({"app": "web"})));
        assert!(s.matches(&json!({"app": "db"})));
        assert!(s.matches(&json!({})));
        assert!(s.matches(&Value::Null));
    }

    #[test]
    fn in_matches_any_listed_value() {
        let s = sel("env in (prod,staging)");
        assert!(s.matches(&json!({"env": "prod"})));
        assert!(s.matches(&json!({"env": "staging"})));
        assert!(!s.matches(&json!({"env": "dev"})));
        assert!(!s.matches(&json!({})));
    }

    #[test]
    fn notin_matches_unlisted_values_and_missing_keys() {
        let s = sel("env notin (prod,staging)");
        assert!(!s.matches(&json!({"env": "prod"})));
        assert!(s.matches(&json!({"env": "dev"})));
        assert!(s.matches(&json!({"other": "x"})));
        assert!(s.matches(&Value::Null));
    }

    #[test]
    fn bare_key_requires_existence() {
        let s = sel("app");
        assert!(s.matches(&json!({"app": "anything"})));
        assert!(s.matches(&json!({"app": ""})));
        assert!(!s.matches(&json!({"other": "x"})));
        assert!(!s.matches(&Value::Null));
    }

    #[test]
    fn bang_key_requires_absence() {
        let s = sel("!app");
        assert!(!s.matches(&json!({"app": "x"})));
        assert!(!s.matches(&json!({"app": ""})));
        assert!(s.matches(&json!({"other": "x"})));
        assert!(s.matches(&Value::Null));
        assert_eq!(sel("! app"), s);
    }

    #[test]
    fn greater_and_less_than_compare_integers() {
        let gt = sel("replicas>3");
        assert!(gt.matches(&json!({"replicas": "4"})));
        assert!(!gt.matches(&json!({"replicas": "3"})));
        assert!(!gt.matches(&json!({"replicas": "many"})));
        assert!(!gt.matches(&json!({})));
        let lt = sel("replicas<3");
        assert!(lt.matches(&json!({"replicas": "2"})));
        assert!(lt.matches(&json!({"replicas": "-7"})));
        assert!(!lt.matches(&json!({"replicas": "3"})));
        assert!(!lt.matches(&json!({})));
        let both = sel("x>1,x<5");
        assert!(both.matches(&json!({"x": "3"})));
        assert!(!both.matches(&json!({"x": "5"})));
    }

    #[test]
    fn greater_than_requires_an_integer_bound() {
        assert_contains(&sel_err("x>a"), "must be an integer");
        assert_contains(&sel_err("x>1.1"), "values[0]: Invalid value: \"1.1\"");
        assert_contains(&sel_err("x>1,z<1.1"), "must be an integer");
        assert_contains(&sel_err("x<"), "must be an integer");
    }

    #[test]
    fn every_requirement_must_hold() {
        let s = sel("a=b,c!=d,e in (x,y),f notin (z),g,!h,i==j");
        let good = json!({"a": "b", "c": "x", "e": "y", "f": "w", "g": "", "i": "j"});
        assert!(s.matches(&good));
        for (key, value) in [("a", json!("x")), ("c", json!("d")), ("e", json!("q"))] {
            let mut labels = good.clone();
            labels[key] = value;
            assert!(!s.matches(&labels), "changing {key} should break the match");
        }
        let mut labels = good.clone();
        labels["h"] = json!("1");
        assert!(!s.matches(&labels));
        let mut labels = good;
        if let Some(map) = labels.as_object_mut() {
            map.remove("g");
        }
        assert!(!s.matches(&labels));
    }

    // --- label selector: empty values and sets -----------------------------

    #[test]
    fn empty_selector_matches_everything() {
        for s in ["", "   ", "\t\r\n"] {
            let s = sel(s);
            assert!(s.is_empty());
            assert!(s.matches(&Value::Null));
            assert!(s.matches(&json!({"a": "b"})));
        }
        assert!(LabelSelector::default().matches(&json!({})));
        assert!(!sel("a").is_empty());
    }

    #[test]
    fn empty_exact_value_means_empty_label() {
        let s = sel("x=");
        assert!(s.matches(&json!({"x": ""})));
        assert!(!s.matches(&json!({"x": "a"})));
        assert!(!s.matches(&json!({})));
        assert_eq!(sel("x= ,z= "), sel("x=,z="));
        assert!(sel("x!=").matches(&json!({"x": "a"})));
    }

    #[test]
    fn empty_members_in_sets() {
        let s = sel("x in (a,)");
        assert!(s.matches(&json!({"x": ""})));
        assert!(s.matches(&json!({"x": "a"})));
        assert_eq!(sel("x in (,a)"), s);
        // As in apimachinery, a doubled comma just before ')' is an error.
        assert_contains(
            &sel_err("x in (a,,)"),
            "found ')', expected: ',', or identifier",
        );
        assert_eq!(sel("x in (foo,,baz)"), sel("x in (baz,foo,)"));
    }

    #[test]
    fn empty_parentheses_mean_the_empty_value_as_in_kubernetes() {
        // apimachinery parses "()" as the set {""} rather than rejecting it.
        let s = sel("x in ()");
        assert!(s.matches(&json!({"x": ""})));
        assert!(!s.matches(&json!({"x": "a"})));
        assert!(!s.matches(&json!({})));
        assert!(sel("z notin ()").matches(&json!({})));
        assert!(!sel("z notin ()").matches(&json!({"z": ""})));
    }

    #[test]
    fn in_or_notin_without_a_set_is_rejected() {
        assert_contains(&sel_err("x in"), "found '', expected: '('");
        assert_contains(&sel_err("x notin"), "expected: '('");
        assert_contains(
            &sel_err("x in ("),
            "found '', expected: ',', ')' or identifier",
        );
        assert_contains(&sel_err("x in a"), "found 'a', expected: '('");
        assert_contains(&sel_err("x in (a"), "found '', expected: ',' or ')'");
        assert_contains(&sel_err("x in (a b)"), "found 'b', expected: ',' or ')'");
        assert_contains(
            &sel_err("x in (a,=)"),
            "found '=', expected: ',', or identifier",
        );
        assert_contains(
            &sel_err("x in (a)b"),
            "found 'b', expected: ',' or 'end of string'",
        );
    }

    #[test]
    fn duplicate_values_collapse() {
        assert_eq!(sel("x in (b,a,a)"), sel("x in (a,b)"));
        assert_eq!(sel("x notin (a,a)"), sel("x notin (a)"));
    }

    // --- label selector: whitespace, keywords, order -----------------------

    #[test]
    fn whitespace_is_ignored_between_tokens() {
        let spaced =
            sel("  a = b ,\tc != d ,\ne in ( x , y ) , f notin(z) , g , ! h , i == j \r\n");
        let tight = sel("a=b,c!=d,e in (x,y),f notin (z),g,!h,i==j");
        assert_eq!(spaced, tight);
    }

    #[test]
    fn whitespace_inside_a_value_is_an_error() {
        assert_contains(
            &sel_err("a=b c"),
            "found 'c', expected: ',' or 'end of string'",
        );
        assert_contains(&sel_err("a b"), "found 'b', expected: '=', '!=', '=='");
    }

    #[test]
    fn requirements_are_order_independent() {
        assert_eq!(sel("b=1,a=2"), sel("a=2,b=1"));
        assert_ne!(sel("a=1"), sel("a==1"));
    }

    #[test]
    fn in_and_notin_are_keywords_only_as_operators() {
        let s = sel("in=x");
        assert!(s.matches(&json!({"in": "x"})));
        let s = sel("x in (in,notin)");
        assert!(s.matches(&json!({"x": "notin"})));
        assert!(sel("x=in").matches(&json!({"x": "in"})));
        assert!(sel("notin").matches(&json!({"notin": "1"})));
        assert!(sel("!in").matches(&json!({})));
    }

    #[test]
    fn prefixed_keys_are_accepted() {
        let s = sel("app.kubernetes.io/name=web,example.com/tier in (a)");
        assert!(s.matches(&json!({"app.kubernetes.io/name": "web", "example.com/tier": "a"})));
        assert!(!s.matches(&json!({"name": "web", "tier": "a"})));
    }

    // --- label selector: malformed input ----------------------------------

    #[test]
    fn malformed_structure_is_rejected_with_the_offending_token() {
        assert_contains(
            &sel_err("x=a||y=b"),
            "values[0][x]: Invalid value: \"a||y\"",
        );
        assert_contains(
            &sel_err("x==a==b"),
            "found '==', expected: ',' or 'end of string'",
        );
        assert_contains(
            &sel_err("!x=a"),
            "found '=', expected: ',' or 'end of string'",
        );
        assert_contains(&sel_err("a,"), "found '', expected: identifier after ','");
        assert_contains(
            &sel_err("a,,b"),
            "found ',', expected: identifier after ','",
        );
        assert_contains(
            &sel_err(",a"),
            "found ',', expected: !, identifier, or 'end of string'",
        );
        assert_contains(&sel_err("=a"), "found '=', expected: !, identifier");
        assert_contains(
            &sel_err("!"),
            "unable to parse requirement: found '', expected: identifier",
        );
        assert_contains(&sel_err("!!a"), "found '!', expected: identifier");
        assert_contains(&sel_err("x=(a)"), "found '(', expected: identifier");
        assert_contains(&sel_err("x (a)"), "found '('");
        assert_contains(&sel_err("(x)"), "found '('");
    }

    #[test]
    fn invalid_keys_are_rejected() {
        let e = sel_err("a/b/c=x");
        assert_contains(
            &e,
            "unable to parse requirement: key: Invalid value: \"a/b/c\"",
        );
        assert_contains(
            &e,
            "a qualified name must consist of alphanumeric characters",
        );
        assert_contains(&sel_err("-a=x"), "name part must consist of alphanumeric");
        assert_contains(&sel_err("a_"), "name part must consist of alphanumeric");
        assert_contains(&sel_err("/a"), "prefix part must be non-empty");
        assert_contains(&sel_err("a/"), "name part must be non-empty");
        assert_contains(
            &sel_err("Example.com/a"),
            "prefix part a lowercase RFC 1123 subdomain",
        );
        let long = "k".repeat(64);
        assert_contains(
            &sel_err(&long),
            "name part must be no more than 63 characters",
        );
        assert!(LabelSelector::parse(&"k".repeat(63)).is_ok());
        let long_prefix = format!("{}/a", "p".repeat(254));
        assert_contains(
            &sel_err(&long_prefix),
            "prefix part must be no more than 253 characters",
        );
        assert_contains(&sel_err("é=1"), "key: Invalid value");
    }

    #[test]
    fn invalid_values_are_rejected() {
        let e = sel_err("x=-a");
        assert_contains(
            &e,
            "values[0][x]: Invalid value: \"-a\": a valid label must be an empty string",
        );
        assert_contains(
            &sel_err("x in (ok,bad_)"),
            "values[0][x]: Invalid value: \"bad_\"",
        );
        let long = format!("x={}", "v".repeat(64));
        assert_contains(&sel_err(&long), "must be no more than 63 characters");
        assert!(LabelSelector::parse(&format!("x={}", "v".repeat(63))).is_ok());
        assert_contains(&sel_err("x>-1"), "values[0][x]");
        let both = sel_err("x in (a_,b_)");
        assert!(both.starts_with("unable to parse requirement: ["), "{both}");
    }

    #[test]
    fn labels_with_non_string_values_compare_by_text() {
        assert!(sel("n=3").matches(&json!({"n": 3})));
        assert!(sel("b=true").matches(&json!({"b": true})));
        assert!(sel("n>2").matches(&json!({"n": 3})));
        assert!(sel("x=").matches(&json!({"x": null})));
        assert!(!sel("a").matches(&json!(["a"])));
    }

    // --- metav1.LabelSelector ----------------------------------------------

    #[test]
    fn from_json_match_labels() {
        let s = json_ok(json!({"matchLabels": {"app": "web", "tier": "front"}}));
        assert_eq!(s, sel("app=web,tier=front"));
        assert!(s.matches(&json!({"app": "web", "tier": "front", "x": "y"})));
        assert!(!s.matches(&json!({"app": "web"})));
    }

    #[test]
    fn from_json_each_operator() {
        let s = json_ok(
            json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}]}),
        );
        assert_eq!(s, sel("env in (a,b)"));
        let s = json_ok(
            json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["a"]}]}),
        );
        assert_eq!(s, sel("env notin (a)"));
        assert!(s.matches(&json!({})));
        let s = json_ok(json!({"matchExpressions": [{"key": "env", "operator": "Exists"}]}));
        assert_eq!(s, sel("env"));
        let s = json_ok(
            json!({"matchExpressions": [{"key": "env", "operator": "DoesNotExist", "values": []}]}),
        );
        assert_eq!(s, sel("!env"));
    }

    #[test]
    fn from_json_combines_labels_and_expressions() {
        let s = json_ok(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }));
        assert!(s.matches(&json!({"app": "web", "env": "prod"})));
        assert!(!s.matches(&json!({"app": "web", "env": "prod", "canary": "1"})));
        assert!(!s.matches(&json!({"app": "web", "env": "dev"})));
        assert!(!s.matches(&json!({"env": "prod"})));
    }

    #[test]
    fn from_json_empty_and_null_select_everything() {
        for v in [
            json!({}),
            json!(null),
            json!({"matchLabels": {}, "matchExpressions": []}),
        ] {
            let s = json_ok(v);
            assert!(s.is_empty());
            assert!(s.matches(&json!({"a": "b"})));
        }
    }

    #[test]
    fn from_json_rejects_invalid_operator() {
        let e = json_err(json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]}));
        assert_eq!(
            e,
            "matchExpressions[0].operator: Invalid value: \"Foo\": not a valid selector operator"
        );
        let e = json_err(
            json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}),
        );
        assert_contains(&e, "matchExpressions[0].operator: Invalid value: \"in\"");
        let e = json_err(json!({"matchExpressions": [{"key": "a"}]}));
        assert_contains(&e, "matchExpressions[0].operator: Invalid value: \"\"");
        let e = json_err(
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        );
        assert_contains(&e, "not a valid selector operator");
    }

    #[test]
    fn from_json_in_and_notin_need_values() {
        let e = json_err(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}));
        assert_eq!(
            e,
            "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        let e = json_err(json!({"matchExpressions": [
            {"key": "a", "operator": "Exists"},
            {"key": "b", "operator": "NotIn", "values": []}
        ]}));
        assert_contains(&e, "matchExpressions[1].values: Required value");
    }

    #[test]
    fn from_json_exists_forbids_values() {
        let e = json_err(
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        );
        assert_contains(
            &e,
            "matchExpressions[0].values: Forbidden: may not be specified",
        );
        let e = json_err(
            json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}),
        );
        assert_contains(&e, "'Exists' or 'DoesNotExist'");
    }

    #[test]
    fn from_json_validates_keys_and_values() {
        let e = json_err(json!({"matchLabels": {"bad key": "x"}}));
        assert_contains(
            &e,
            "matchLabels: Invalid value: \"bad key\": name part must consist",
        );
        let e = json_err(json!({"matchLabels": {"app": "bad value"}}));
        assert_contains(
            &e,
            "matchLabels[app]: Invalid value: \"bad value\": a valid label",
        );
        let e = json_err(json!({"matchExpressions": [{"key": "", "operator": "Exists"}]}));
        assert_contains(
            &e,
            "matchExpressions[0].key: Invalid value: \"\": name part must be non-empty",
        );
        let e = json_err(
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "-no"]}]}),
        );
        assert_contains(&e, "matchExpressions[0].values[1]: Invalid value: \"-no\"");
    }

    #[test]
    fn from_json_reports_every_problem() {
        let e = json_err(json!({
            "matchLabels": {"a": "-"},
            "matchExpressions": [{"key": "b", "operator": "Nope"}]
        }));
        assert!(e.starts_with('[') && e.ends_with(']'), "{e}");
        assert_contains(&e, "matchLabels[a]");
        assert_contains(&e, "matchExpressions[0].operator");
    }

    #[test]
    fn from_json_rejects_wrong_types() {
        assert_contains(
            &json_err(json!("app=web")),
            "invalid selector: expected a LabelSelector object",
        );
        assert_contains(
            &json_err(json!({"matchLabels": ["a"]})),
            "matchLabels: Invalid value: [\"a\"]",
        );
        assert_contains(
            &json_err(json!({"matchLabels": {"a": 1}})),
            "matchLabels[a]: Invalid value: 1: must be a string",
        );
        assert_contains(
            &json_err(json!({"matchExpressions": {}})),
            "matchExpressions: Invalid value",
        );
        assert_contains(
            &json_err(json!({"matchExpressions": ["a"]})),
            "matchExpressions[0]: Invalid value",
        );
        assert_contains(
            &json_err(json!({"matchExpressions": [{"key": 1, "operator": "Exists"}]})),
            "matchExpressions[0].key: Invalid value: 1: must be a string",
        );
        assert_contains(
            &json_err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]})),
            "matchExpressions[0].values: Invalid value: \"x\": must be a list of strings",
        );
        assert_contains(
            &json_err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]})),
            "matchExpressions[0].values[0]: Invalid value: 1",
        );
    }

    #[test]
    fn from_json_null_fields_read_as_go_zero_values() {
        let s = json_ok(json!({"matchLabels": {"a": null}, "matchExpressions": null}));
        assert!(s.matches(&json!({"a": ""})));
        let s = json_ok(
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": null}]}),
        );
        assert_eq!(s, sel("a"));
    }

    // --- map selectors -------------------------------------------------------

    #[test]
    fn from_map_requires_every_pair() {
        let s = LabelSelector::from_map(&json!({"app": "web", "tier": "front"}));
        assert_eq!(s, sel("app=web,tier=front"));
        assert!(s.matches(&json!({"app": "web", "tier": "front", "other": "x"})));
        assert!(!s.matches(&json!({"app": "web"})));
    }

    #[test]
    fn from_map_empty_or_absent_has_no_requirements() {
        for v in [json!({}), json!(null), json!("app=web"), json!([1])] {
            let s = LabelSelector::from_map(&v);
            assert!(s.is_empty());
            assert!(s.matches(&json!({"a": "b"})));
        }
    }

    #[test]
    fn from_map_does_not_validate_and_stringifies() {
        let s = LabelSelector::from_map(&json!({"odd key": "odd value", "n": 1}));
        assert!(s.matches(&json!({"odd key": "odd value", "n": "1"})));
    }

    // --- field selectors -----------------------------------------------------

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-0", "namespace": "prod", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "replicas": 3, "paused": false, "containers": [{"name": "c0"}]},
            "status": {"phase": "Running", "message": "a,b=c\\d"}
        })
    }

    #[test]
    fn field_selector_on_name_and_namespace() {
        assert!(fsel("metadata.name=web-0").matches(&pod()));
        assert!(fsel("metadata.name==web-0").matches(&pod()));
        assert!(!fsel("metadata.name=web-1").matches(&pod()));
        assert!(fsel("metadata.namespace=prod,metadata.name=web-0").matches(&pod()));
        assert!(!fsel("metadata.namespace!=prod").matches(&pod()));
        assert!(fsel("metadata.namespace!=dev").matches(&pod()));
    }

    #[test]
    fn field_selector_on_status_phase_and_spec() {
        assert!(fsel("status.phase=Running").matches(&pod()));
        assert!(fsel("status.phase!=Pending").matches(&pod()));
        assert!(!fsel("status.phase=running").matches(&pod()));
        assert!(fsel("spec.nodeName=node-a").matches(&pod()));
        assert!(fsel("spec.replicas=3,spec.paused=false").matches(&pod()));
        assert!(fsel("spec.containers.0.name=c0").matches(&pod()));
    }

    #[test]
    fn absent_fields_compare_equal_to_empty() {
        let unscheduled = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(fsel("spec.nodeName=").matches(&unscheduled));
        assert!(!fsel("spec.nodeName!=").matches(&unscheduled));
        assert!(!fsel("spec.nodeName=").matches(&pod()));
        assert!(fsel("spec.nodeName!=").matches(&pod()));
        assert!(fsel("status.phase=").matches(&json!(null)));
        assert!(fsel("metadata.name.deeper=").matches(&pod()));
    }

    #[test]
    fn empty_field_selector_matches_everything() {
        for s in ["", ",", ",,"] {
            let s = fsel(s);
            assert!(s.is_empty());
            assert!(s.matches(&pod()));
            assert!(s.matches(&Value::Null));
        }
        assert_eq!(fsel(",metadata.name=a,"), fsel("metadata.name=a"));
    }

    #[test]
    fn field_selector_escapes() {
        let s = fsel(r"status.message=a\,b\=c\\d");
        assert!(s.matches(&pod()));
        assert!(fsel(r"metadata.name=x\,y").matches(&json!({"metadata": {"name": "x,y"}})));
        assert!(fsel(r"metadata.name=x\=y").matches(&json!({"metadata": {"name": "x=y"}})));
        assert!(fsel(r"metadata.name=x\\").matches(&json!({"metadata": {"name": "x\\"}})));
        let two = fsel(r"metadata.name=x\\,status.phase=Running");
        assert!(two.matches(&json!({"metadata": {"name": "x\\"}, "status": {"phase": "Running"}})));
    }

    #[test]
    fn field_selector_bad_escapes_are_rejected() {
        assert_eq!(
            fsel_err(r"metadata.name=a\x"),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            fsel_err(r"metadata.name=a\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            fsel_err("metadata.name=a=b"),
            "invalid field selector: unescaped character in value: ="
        );
        assert_contains(
            &fsel_err("metadata.name!==b"),
            "unescaped character in value: =",
        );
    }

    #[test]
    fn field_selector_splits_at_leftmost_operator() {
        assert!(fsel("metadata.name=!x").matches(&json!({"metadata": {"name": "!x"}})));
        assert!(fsel("metadata.name!=x").matches(&json!({"metadata": {"name": "y"}})));
        assert!(!fsel("metadata.name==x").matches(&json!({"metadata": {"name": "=x"}})));
    }

    #[test]
    fn field_selector_values_are_not_trimmed() {
        assert!(fsel("metadata.name= web-0").matches(&json!({"metadata": {"name": " web-0"}})));
        assert!(!fsel("metadata.name= web-0").matches(&pod()));
    }

    #[test]
    fn field_selector_malformed_terms_are_rejected() {
        assert_eq!(
            fsel_err("metadata.name"),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert_eq!(
            fsel_err("status.phase=Running,bogus"),
            "invalid selector: 'status.phase=Running,bogus'; can't understand 'bogus'"
        );
        assert_eq!(fsel_err("=x"), "field label not supported: ");
        assert_eq!(
            fsel_err("metadata.name =x"),
            "field label not supported: metadata.name "
        );
        assert_contains(&fsel_err("a=b, c=d"), "field label not supported:  c");
        assert_contains(&fsel_err("metadata..name=x"), "field label not supported");
        assert_contains(&fsel_err(".name=x"), "field label not supported");
    }

    #[test]
    fn field_selectors_are_order_independent() {
        assert_eq!(
            fsel("metadata.name=a,status.phase=b"),
            fsel("status.phase=b,metadata.name=a")
        );
    }

    // --- robustness ------------------------------------------------------------

    /// Every string of up to four characters from an alphabet of the
    /// grammar's symbols must parse or fail cleanly, never panic.
    #[test]
    fn no_panics_on_arbitrary_short_input() {
        let alphabet = [
            'a', '=', '!', '(', ')', ',', ' ', 'i', 'n', '\\', '<', '>', '1', 'é',
        ];
        let mut level = vec![String::new()];
        let mut inputs = Vec::new();
        for _ in 0..4 {
            level = level
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            inputs.extend(level.iter().cloned());
        }
        let labels = json!({"a": "1", "in": "", "n": "x"});
        for input in &inputs {
            if let Ok(s) = LabelSelector::parse(input) {
                let _ = s.matches(&labels);
            }
            if let Ok(s) = FieldSelector::parse(input) {
                let _ = s.matches(&labels);
            }
        }
        for odd in [
            "\0",
            "a\0=b",
            "a=b\0",
            "ü=ö",
            "x in (\u{200b})",
            "((((",
            "))))",
            "!=!=",
            "in in in",
        ] {
            let _ = LabelSelector::parse(odd);
            let _ = FieldSelector::parse(odd);
        }
    }
}
