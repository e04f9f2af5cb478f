//! YAML text → JSON values that remember where every value came from.
//!
//! This module owns turning the bytes of a multi-document YAML file into one
//! `serde_json::Value` per document plus a [`SpanMap`] from JSON pointer to
//! line and column. Every later stage reports problems by JSON pointer, and the
//! span map turns that pointer back into `file:line:column` for the user.
//!
//! It uses `saphyr-parser`'s event stream (the maintained successor of
//! yaml-rust, with a marker on every event) instead of a serde deserializer:
//! we need spans for every node, duplicate-key detection, and full control
//! over YAML 1.2 core-schema scalar typing. It must not know about manifests,
//! kinds or schemas.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as ParserSpan};
use serde_json::{Map, Number, Value};

/// A 1-based line and column in a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// Where each value of one document sits in the file, keyed by JSON pointer.
/// For a mapping entry the location is that of its key, which is where a
/// reader's eye goes for "this setting is wrong".
#[derive(Clone, Debug, Default)]
pub struct SpanMap {
    locations: FxHashMap<String, Location>,
}

impl SpanMap {
    /// The location of `pointer`, or of its nearest ancestor that has one.
    pub fn locate(&self, pointer: &str) -> Location {
        let mut current = pointer;
        loop {
            if let Some(location) = self.locations.get(current) {
                return *location;
            }
            match current.rfind('/') {
                Some(index) => current = &current[..index],
                None => return self.locations.get("").copied().unwrap_or_default(),
            }
        }
    }

    /// The location recorded for exactly `pointer`, if any.
    pub fn get(&self, pointer: &str) -> Option<Location> {
        self.locations.get(pointer).copied()
    }
}

/// One YAML document of a file.
#[derive(Clone, Debug)]
pub struct YamlDocument {
    pub value: Value,
    pub spans: SpanMap,
    /// Zero-based position of the document in its file.
    pub index_in_file: usize,
}

/// A syntax problem: the parser stops at the first one in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub location: Location,
    pub message: String,
}

/// Limits that keep hostile input (alias bombs, absurd nesting) from exhausting memory or stack.
/// Aliases are counted at their expanded size, so a small file cannot grow
/// into gigabytes by repeating one large anchor.
const MAX_NODES_PER_FILE: usize = 2_000_000;
pub const MAX_EXPANDED_BYTES: usize = 64 * 1024 * 1024;
const MAX_DEPTH: usize = 128;

/// Parse every document of `text`. Documents that are empty (only comments,
/// or an explicit null) are dropped: they describe nothing.
pub fn parse_documents(text: &str) -> Result<Vec<YamlDocument>, YamlError> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
        bytes: 0,
    };
    builder.stream()
}

/// Escape one JSON pointer token (RFC 6901).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Undo [`escape_pointer_token`].
pub fn unescape_pointer_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

struct Builder<'input> {
    parser: Parser<'input, saphyr_parser::StrInput<'input>>,
    /// Each anchor's value with its expanded size (values, bytes), measured once.
    anchors: HashMap<usize, (Value, Size)>,
    nodes: usize,
    bytes: usize,
}

/// How much a value costs once expanded: values and bytes of keys and scalars.
#[derive(Clone, Copy, Default)]
struct Size {
    values: usize,
    bytes: usize,
}

fn location_of(span: &ParserSpan) -> Location {
    Location {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

impl<'input> Builder<'input> {
    fn next(&mut self) -> Result<(Event<'input>, Location), YamlError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => Ok((event, location_of(&span))),
            Some(Err(error)) => Err(YamlError {
                location: Location {
                    line: error.marker().line(),
                    column: error.marker().col() + 1,
                },
                message: error.info().to_string(),
            }),
            None => Ok((Event::StreamEnd, Location::default())),
        }
    }

    fn stream(&mut self) -> Result<Vec<YamlDocument>, YamlError> {
        let mut documents = Vec::new();
        let mut index_in_file = 0;
        loop {
            let (event, _) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(documents),
                Event::DocumentStart(_) => {
                    let mut spans = SpanMap::default();
                    let (event, location) = self.next()?;
                    let value = self.node(event, location, String::new(), &mut spans, 0)?;
                    if !value.is_null() {
                        documents.push(YamlDocument {
                            value,
                            spans,
                            index_in_file,
                        });
                    }
                    index_in_file += 1;
                }
                other => {
                    return Err(YamlError {
                        location: Location::default(),
                        message: format!("unexpected YAML event {other:?}"),
                    });
                }
            }
        }
    }

    /// Add `size` to what the file has expanded to so far; refuse past the limits.
    fn count(&mut self, size: Size, location: Location) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(size.values);
        self.bytes = self.bytes.saturating_add(size.bytes);
        if self.nodes > MAX_NODES_PER_FILE {
            return Err(YamlError {
                location,
                message: format!(
                    "the file expands to more than {MAX_NODES_PER_FILE} values (an alias bomb?)"
                ),
            });
        }
        if self.bytes > MAX_EXPANDED_BYTES {
            return Err(YamlError {
                location,
                message: format!(
                    "the file expands to more than {} MiB of text (an alias bomb?)",
                    MAX_EXPANDED_BYTES / (1024 * 1024)
                ),
            });
        }
        Ok(())
    }

    fn node(
        &mut self,
        event: Event<'input>,
        location: Location,
        pointer: String,
        spans: &mut SpanMap,
        depth: usize,
    ) -> Result<Value, YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError {
                location,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        self.count(
            Size {
                values: 1,
                bytes: 0,
            },
            location,
        )?;
        if !spans.locations.contains_key(&pointer) {
            spans.locations.insert(pointer.clone(), location);
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(
                    Size {
                        values: 0,
                        bytes: text.len(),
                    },
                    location,
                )?;
                let value = scalar_value(&text, style, tag.as_deref().map(|t| t.suffix.as_str()));
                self.remember(anchor, &value);
                Ok(value)
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor) {
                Some((_, size)) => {
                    // Counted before the copy is made: the limit must hold
                    // before the memory is spent.
                    self.count(*size, location)?;
                    Ok(self.anchors[&anchor].0.clone())
                }
                None => Err(YamlError {
                    location,
                    message: "alias refers to an unknown anchor".to_string(),
                }),
            },
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, item_location) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let item_pointer = format!("{pointer}/{}", items.len());
                    items.push(self.node(event, item_location, item_pointer, spans, depth + 1)?);
                }
                let value = Value::Array(items);
                self.remember(anchor, &value);
                Ok(value)
            }
            Event::MappingStart(anchor, _) => {
                let value = Value::Object(self.mapping(location, &pointer, spans, depth)?);
                self.remember(anchor, &value);
                Ok(value)
            }
            other => Err(YamlError {
                location,
                message: format!("unexpected YAML event {other:?}"),
            }),
        }
    }

    fn mapping(
        &mut self,
        location: Location,
        pointer: &str,
        spans: &mut SpanMap,
        depth: usize,
    ) -> Result<Map<String, Value>, YamlError> {
        let mut entries = Map::new();
        let mut merged: Vec<Map<String, Value>> = Vec::new();
        loop {
            let (event, key_location) = self.next()?;
            let key = match event {
                Event::MappingEnd => break,
                Event::Scalar(text, _, _, _) => {
                    self.count(
                        Size {
                            values: 0,
                            bytes: text.len(),
                        },
                        key_location,
                    )?;
                    text.into_owned()
                }
                Event::Alias(_) | Event::SequenceStart(..) | Event::MappingStart(..) => {
                    return Err(YamlError {
                        location: key_location,
                        message:
                            "a mapping key must be a plain scalar, not a list, mapping or alias"
                                .to_string(),
                    });
                }
                other => {
                    return Err(YamlError {
                        location: key_location,
                        message: format!("unexpected YAML event {other:?} in a mapping"),
                    });
                }
            };
            let value_pointer = format!("{pointer}/{}", escape_pointer_token(&key));
            let (event, value_location) = self.next()?;
            if key == "<<" {
                // YAML merge key: the mapping (or list of mappings) supplies entries
                // that the enclosing mapping does not set itself.
                let mut scratch = SpanMap::default();
                match self.node(
                    event,
                    value_location,
                    value_pointer,
                    &mut scratch,
                    depth + 1,
                )? {
                    Value::Object(map) => merged.push(map),
                    Value::Array(items) if items.iter().all(Value::is_object) => {
                        merged.extend(items.into_iter().filter_map(|item| match item {
                            Value::Object(map) => Some(map),
                            _ => None,
                        }))
                    }
                    _ => {
                        return Err(YamlError {
                            location: key_location,
                            message: "a merge key (<<) needs a mapping or a list of mappings"
                                .to_string(),
                        });
                    }
                }
                continue;
            }
            if entries.contains_key(&key) {
                let first = spans.get(&value_pointer).unwrap_or(location);
                return Err(YamlError {
                    location: key_location,
                    message: format!(
                        "duplicate key `{key}` (first set at line {}); a mapping may set a key only once",
                        first.line
                    ),
                });
            }
            spans.locations.insert(value_pointer.clone(), key_location);
            let value = self.node(event, value_location, value_pointer, spans, depth + 1)?;
            entries.insert(key, value);
        }
        for map in merged {
            for (key, value) in map {
                if !entries.contains_key(&key) {
                    spans
                        .locations
                        .entry(format!("{pointer}/{}", escape_pointer_token(&key)))
                        .or_insert(location);
                    entries.insert(key, value);
                }
            }
        }
        Ok(entries)
    }

    fn remember(&mut self, anchor: usize, value: &Value) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size_of(value)));
        }
    }
}

fn size_of(value: &Value) -> Size {
    let children = |sizes: &mut dyn Iterator<Item = Size>| {
        sizes.fold(
            Size {
                values: 1,
                bytes: 0,
            },
            |total, size| Size {
                values: total.values.saturating_add(size.values),
                bytes: total.bytes.saturating_add(size.bytes),
            },
        )
    };
    match value {
        Value::Array(items) => children(&mut items.iter().map(size_of)),
        Value::Object(map) => children(&mut map.iter().map(|(key, item)| {
            let size = size_of(item);
            Size {
                values: size.values,
                bytes: size.bytes.saturating_add(key.len()),
            }
        })),
        Value::String(text) => Size {
            values: 1,
            bytes: text.len(),
        },
        _ => Size {
            values: 1,
            bytes: 8,
        },
    }
}

/// Type a scalar the way YAML 1.2's core schema does: only plain scalars are
/// resolved to null, booleans and numbers; quoted and block scalars are strings.
fn scalar_value(text: &str, style: ScalarStyle, tag_suffix: Option<&str>) -> Value {
    // `!!str` forces a string; other tags are typed by the scalar's text.
    if style != ScalarStyle::Plain || tag_suffix == Some("str") {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            // JSON has no infinities or NaN; keep the text so the schema can reject it clearly.
            return Value::String(text.to_string());
        }
        _ => {}
    }
    if let Some(number) = parse_integer(text) {
        return Value::Number(number);
    }
    if looks_like_float(text)
        && let Ok(float) = text.parse::<f64>()
        && let Some(number) = Number::from_f64(float)
    {
        return Value::Number(number);
    }
    Value::String(text.to_string())
}

fn parse_integer(text: &str) -> Option<Number> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() {
        return None;
    }
    let magnitude: u64 = if let Some(hex) = digits.strip_prefix("0x") {
        if negative || hex.is_empty() {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()?
    } else if let Some(octal) = digits.strip_prefix("0o") {
        if negative || octal.is_empty() {
            return None;
        }
        u64::from_str_radix(octal, 8).ok()?
    } else if digits.bytes().all(|byte| byte.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    if negative {
        let signed = i64::try_from(magnitude).ok()?;
        Some(Number::from(-signed))
    } else {
        Some(Number::from(magnitude))
    }
}

fn looks_like_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body.bytes().any(|byte| byte.is_ascii_digit())
        && body
            .bytes()
            .all(|byte| byte.is_ascii_digit() || matches!(byte, b'.' | b'e' | b'E' | b'-' | b'+'))
        && body.bytes().filter(|byte| *byte == b'.').count() <= 1
}

#[cfg(test)]
mod writer_tests {
    use super::{parse_documents, to_yaml};

    #[test]
    fn written_yaml_reads_back_as_the_same_value() {
        let value = serde_json::json!({
            "apiVersion": "fleetform/v1",
            "spec": {
                "name": "o'neil: \"x\" # not a comment",
                "plain": "app_owner",
                "looksLikeABool": "on",
                "looksLikeANumber": "1.5",
                "number": 3,
                "flag": true,
                "list": ["a", "b c", "true"],
                "empty": [],
                "parameters": {"work_mem": "16MB", "search_path": "\"$user\", public"},
                "nested": [{"a": 1}],
                "unicode": "数据库 ☃",
                "newline": "two\nlines"
            }
        });
        let text = to_yaml(&value);
        let documents = parse_documents(&text).unwrap();
        assert_eq!(documents[0].value, value, "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_plain_scalars_like_yaml_1_2_core() {
        let documents = parse_documents(
            "a: 1\nb: '1'\nc: true\nd: yes\ne: 1.5\nf: ~\ng: 0x1F\nh: -3\ni: 1.2.3\nj: |\n  text\n",
        )
        .unwrap();
        assert_eq!(
            documents[0].value,
            json!({"a": 1, "b": "1", "c": true, "d": "yes", "e": 1.5, "f": null, "g": 31, "h": -3, "i": "1.2.3", "j": "text\n"})
        );
    }

    #[test]
    fn records_key_locations_by_pointer() {
        let documents =
            parse_documents("---\nkind: X\nspec:\n  list:\n    - a\n    - b: 1\n").unwrap();
        let spans = &documents[0].spans;
        assert_eq!(spans.get("/kind"), Some(Location { line: 2, column: 1 }));
        assert_eq!(
            spans.get("/spec/list"),
            Some(Location { line: 4, column: 3 })
        );
        assert_eq!(
            spans.get("/spec/list/1/b"),
            Some(Location { line: 6, column: 7 })
        );
        assert_eq!(
            spans.locate("/spec/list/1/b/missing"),
            Location { line: 6, column: 7 }
        );
    }

    #[test]
    fn keeps_document_positions_and_drops_empty_documents() {
        let documents = parse_documents("# only a comment\n---\na: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(documents.len(), 2);
        assert_eq!(
            documents[1].spans.get("/b"),
            Some(Location { line: 6, column: 1 })
        );
    }

    #[test]
    fn rejects_duplicate_keys_at_the_second_key() {
        let error = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.location, Location { line: 3, column: 1 });
        assert!(
            error.message.contains("duplicate key `a`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn reports_syntax_errors_with_a_location() {
        let error = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.location.line >= 1);
        assert!(!error.message.is_empty());
    }

    #[test]
    fn resolves_anchors_aliases_and_merge_keys() {
        let documents =
            parse_documents("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\ncopy: *b\n").unwrap();
        assert_eq!(
            documents[0].value,
            json!({"base": {"x": 1, "y": 2}, "use": {"y": 3, "x": 1}, "copy": {"x": 1, "y": 2}})
        );
    }

    #[test]
    fn stops_alias_bombs() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..8 {
            let previous = level - 1;
            text.push_str(&format!(
                "a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]\n"
            ));
        }
        let error = parse_documents(&text).unwrap_err();
        assert!(error.message.contains("alias bomb"), "{}", error.message);
    }

    #[test]
    fn stops_alias_bombs_made_of_few_large_values() {
        // A 1 MiB string aliased 3^10 times: few values, 59 GB once expanded.
        let mut text = format!("s: &s0 \"{}\"\n", "x".repeat(1024 * 1024));
        for level in 1..=10 {
            let previous = level - 1;
            text.push_str(&format!(
                "l{level}: &s{level} [*s{previous}, *s{previous}, *s{previous}]\n"
            ));
        }
        let error = parse_documents(&text).unwrap_err();
        assert!(error.message.contains("MiB of text"), "{}", error.message);
        assert_eq!(error.location.line, 5, "the alias that crosses the limit");
    }

    #[test]
    fn escapes_pointer_tokens() {
        assert_eq!(escape_pointer_token("a/b~c"), "a~1b~0c");
        assert_eq!(unescape_pointer_token("a~1b~0c"), "a/b~c");
    }
}

/// Write a JSON value as block-style YAML (for `fleetform import`): maps as
/// blocks, lists of scalars in flow style, strings plain when YAML 1.2 would
/// read them back as the same string and double-quoted (JSON escapes, which
/// YAML accepts) otherwise.
pub fn to_yaml(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_yaml(value, 0, &mut out);
    out
}

fn write_yaml(value: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{}\n"),
        Value::Object(map) => {
            for (key, item) in map {
                // Keys such as `on` stay plain, as fleetform's manifests write
                // them (it reads YAML 1.2, where `on` is a string).
                let plain_key = !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && key.starts_with(|c: char| c.is_ascii_alphabetic());
                let key_text = if plain_key {
                    key.clone()
                } else {
                    yaml_scalar(&Value::String(key.clone()))
                };
                out.push_str(&format!("{pad}{key_text}:"));
                match item {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push('\n');
                        write_yaml(item, indent + 2, out);
                    }
                    Value::Array(items)
                        if items
                            .iter()
                            .any(|element| element.is_object() || element.is_array()) =>
                    {
                        out.push('\n');
                        for element in items {
                            out.push_str(&format!("{pad}  -"));
                            let mut nested = String::new();
                            write_yaml(element, indent + 4, &mut nested);
                            out.push(' ');
                            out.push_str(nested.trim_start());
                        }
                    }
                    _ => {
                        out.push(' ');
                        write_yaml(item, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(yaml_scalar).collect();
            out.push_str(&format!("[{}]\n", parts.join(", ")));
        }
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

fn yaml_scalar(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::String(text) if is_plain_string(text) => text.clone(),
        Value::String(text) => serde_json::to_string(text).unwrap_or_default(),
        Value::Null => "null".into(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
        other => other.to_string(),
    }
}

/// Whether `text` written plain is read back by YAML 1.2 (core schema) as
/// that same string.
fn is_plain_string(text: &str) -> bool {
    let reserved = [
        "null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE", ".inf",
        ".Inf", ".INF", "-.inf", ".nan", ".NaN", ".NAN",
        // YAML 1.1 booleans: fleetform reads YAML 1.2, editors may not.
        "on", "On", "ON", "off", "Off", "OFF", "yes", "Yes", "YES", "no", "No", "NO", "y", "Y", "n",
        "N",
    ];
    !text.is_empty()
        && !reserved.contains(&text)
        && text.parse::<f64>().is_err()
        && !text.starts_with("0x")
        && !text.starts_with("0o")
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}
