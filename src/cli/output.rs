//! How a result is printed (docs/cli.md): a table for people (comfy-table), JSON for programs,
//! or only ids. Data goes to stdout; hints and errors to stderr.

use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};
use serde_json::Value;

/// What a command printed: the value and how it is laid out.
pub struct Output {
    pub value: Value,
    pub shape: Shape,
    /// The field that `--quiet` prints.
    pub id_field: &'static str,
    /// A line for people, on stderr (not in JSON or quiet mode).
    pub note: Option<String>,
}

pub enum Shape {
    /// One object (`data` of a single-object answer).
    Object,
    /// A plain array (`data` of a plain list), shown with these columns.
    List(&'static [&'static str]),
    /// A whole paginated answer, `{data, cursor, has_more}`, shown with these columns.
    Page(&'static [&'static str]),
}

impl Output {
    pub fn object(value: Value) -> Output {
        Output {
            value,
            shape: Shape::Object,
            id_field: "id",
            note: None,
        }
    }

    pub fn list(value: Value, columns: &'static [&'static str]) -> Output {
        Output {
            shape: Shape::List(columns),
            ..Output::object(value)
        }
    }

    pub fn page(value: Value, columns: &'static [&'static str]) -> Output {
        Output {
            shape: Shape::Page(columns),
            ..Output::object(value)
        }
    }

    pub fn id_field(mut self, field: &'static str) -> Output {
        self.id_field = field;
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Output {
        self.note = Some(note.into());
        self
    }

    /// The items of a list or page; the object itself otherwise.
    fn items(&self) -> Vec<&Value> {
        let array = match self.shape {
            Shape::Object => return vec![&self.value],
            Shape::List(_) => self.value.as_array(),
            Shape::Page(_) => self.value["data"].as_array(),
        };
        array.map(|a| a.iter().collect()).unwrap_or_default()
    }

    /// The text for stdout, and the text for stderr, in `format`.
    pub fn render(&self, format: Format) -> (String, Option<String>) {
        match format {
            Format::Json => (pretty(&self.value), None),
            Format::Quiet => {
                let ids: Vec<String> = self
                    .items()
                    .into_iter()
                    .filter_map(|item| item.get(self.id_field))
                    .filter(|id| !id.is_null())
                    .map(cell)
                    .collect();
                (ids.join("\n"), None)
            }
            Format::Table => {
                let table = match self.shape {
                    Shape::Object => object_table(&self.value),
                    Shape::List(columns) | Shape::Page(columns) => {
                        list_table(&self.items(), columns)
                    }
                };
                let mut notes: Vec<String> = self.note.iter().cloned().collect();
                if let Shape::Page(_) = self.shape
                    && self.value["has_more"] == Value::Bool(true)
                    && let Some(cursor) = self.value["cursor"].as_str()
                {
                    notes.push(format!("more results: add --cursor {cursor}"));
                }
                (table, (!notes.is_empty()).then(|| notes.join("\n")))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Quiet,
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Narrower than this, a reported terminal width is taken as unknown (a pseudo-terminal of
/// size 0 reports 0) and the table is not wrapped.
const MIN_WRAP_WIDTH: u16 = 40;

fn new_table() -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    // Wrap cells to the terminal's width when there is a terminal.
    if table.width().is_some_and(|width| width >= MIN_WRAP_WIDTH) {
        table.set_content_arrangement(ContentArrangement::Dynamic);
    }
    table
}

/// A value as one cell: text as it is, a list of plain values joined by commas, `null` empty,
/// anything else as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// Field and value, one row each; a value that is not an object is one cell.
fn object_table(value: &Value) -> String {
    let mut table = new_table();
    match value {
        Value::Object(fields) => {
            table.set_header(["field", "value"]);
            for (name, value) in fields {
                table.add_row([name.as_str(), &cell(value)]);
            }
            keep_whole(&mut table, 0);
        }
        other => {
            table.add_row([cell(other)]);
        }
    }
    table.to_string()
}

/// One row per item with the given columns; without columns, every field of the first item.
fn list_table(items: &[&Value], columns: &[&str]) -> String {
    let derived: Vec<String>;
    let columns: Vec<&str> = if columns.is_empty() {
        derived = items
            .first()
            .and_then(|first| first.as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        derived.iter().map(String::as_str).collect()
    } else {
        columns.to_vec()
    };
    let mut table = new_table();
    table.set_header(columns.iter().copied());
    for item in items {
        table.add_row(
            columns
                .iter()
                .map(|c| item.get(*c).map(cell).unwrap_or_default()),
        );
    }
    // On a narrow terminal, free text wraps; ids and timestamps stay whole so they can be
    // copied.
    for (index, name) in columns.iter().enumerate() {
        if *name == "id" || name.ends_with("_id") || name.ends_with("_at") {
            keep_whole(&mut table, index);
        }
    }
    table.to_string()
}

fn keep_whole(table: &mut Table, column: usize) {
    if let Some(column) = table.column_mut(column) {
        column.set_constraint(ColumnConstraint::ContentWidth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!("a")), "a");
        assert_eq!(cell(&json!(["a", 1, true])), "a, 1, true");
        assert_eq!(cell(&json!({"k": 1})), r#"{"k":1}"#);
        assert_eq!(cell(&json!([{"k": 1}])), r#"[{"k":1}]"#);
    }

    #[test]
    fn quiet_prints_ids_of_lists_pages_and_objects() {
        let page = Output::page(
            json!({"data": [{"id": "a"}, {"id": "b"}], "cursor": "c", "has_more": true}),
            &["id"],
        );
        assert_eq!(page.render(Format::Quiet).0, "a\nb");
        let catalog = Output::list(json!([{"provider": "slack"}]), &[]).id_field("provider");
        assert_eq!(catalog.render(Format::Quiet).0, "slack");
        assert_eq!(
            Output::object(json!({"id": "x", "n": 1}))
                .render(Format::Quiet)
                .0,
            "x"
        );
        assert_eq!(Output::object(json!({"n": 1})).render(Format::Quiet).0, "");
    }

    #[test]
    fn tables_show_the_columns_and_a_page_hint() {
        let page = Output::page(
            json!({"data": [{"id": "a", "name": "Acme", "x": 1}], "cursor": "c1", "has_more": true}),
            &["id", "name"],
        );
        let (table, note) = page.render(Format::Table);
        assert!(table.contains("Acme") && table.contains("name") && !table.contains('x'));
        assert_eq!(note.as_deref(), Some("more results: add --cursor c1"));
        let (table, note) = Output::object(json!({"id": "a", "tags": ["x", "y"]}))
            .note("hi")
            .render(Format::Table);
        assert!(table.contains("tags") && table.contains("x, y"), "{table}");
        assert_eq!(note.as_deref(), Some("hi"));
        let (json_text, note) = Output::object(json!({"id": "a"}))
            .note("hi")
            .render(Format::Json);
        assert_eq!(json_text, "{\n  \"id\": \"a\"\n}");
        assert!(note.is_none());
    }
}
