//! The user-import CSV: parsing the file admins upload and writing the per-row
//! results file they can download afterwards.
//!
//! This module owns the file format only. [`parse_user_csv`] turns an upload
//! into one result per data record (RFC 4180 plus the usual real-world
//! tolerance for line endings, BOMs, blank lines and padding), and
//! [`write_results_csv`] renders the outcome of an import as CSV that is safe
//! to open in a spreadsheet.
//!
//! It must not touch the directory store and must not apply policy: it does not
//! check that emails or usernames are well formed, unique or allowed, nor that
//! passwords meet any rule. Callers validate the returned fields themselves.
//! Every input is treated as untrusted; nothing here panics on malformed data.

/// The only accepted header line of an import file (case-sensitive, in order).
pub const TEMPLATE_HEADER: &str = "firstname,lastname,username,email,password";

/// Default cap on one physical line (bytes); longer lines fail that row only.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// The column names of [`TEMPLATE_HEADER`], in order.
const COLUMNS: [&str; 5] = ["firstname", "lastname", "username", "email", "password"];

/// The UTF-8 byte order mark that spreadsheet programs put in front of CSV exports.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How many characters of a rejected header are echoed back to the admin.
const FOUND_PREVIEW_CHARS: usize = 120;

/// The header of the results file produced by [`write_results_csv`].
const RESULTS_HEADER: &str = "line,firstname,lastname,email,username,result";

/// One data record of an import file, with its fields exactly as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvUserRow {
    /// 1-based line number where the record starts (the header is line 1
    /// unless blank lines precede it).
    pub line: usize,
    /// The `firstname` field (may be empty; the caller decides if that is allowed).
    pub firstname: String,
    /// The `lastname` field (may be empty).
    pub lastname: String,
    /// The `username` field (may be empty).
    pub username: String,
    /// The `email` field (may be empty).
    pub email: String,
    /// The `password` field, or `None` when it is empty.
    pub password: Option<String>,
}

/// A data record that could not be parsed; the rest of the file is unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRowError {
    /// 1-based line number where the failed record starts.
    pub line: usize,
    /// Admin-facing explanation of what is wrong with the record.
    pub message: String,
}

/// A problem with the file as a whole; no record is imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvFileError {
    /// The file has no header (it is empty or contains only blank lines).
    Empty,
    /// The file is not valid UTF-8 (after removal of a byte order mark).
    NotUtf8,
    /// The header is not exactly [`TEMPLATE_HEADER`].
    BadHeader {
        /// The first line of the header as uploaded, shortened and with control
        /// characters escaped so that it can be shown safely.
        found: String,
    },
}

impl std::fmt::Display for CsvFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CsvFileError::Empty => write!(
                f,
                "the file is empty; it must start with the header `{TEMPLATE_HEADER}`"
            ),
            CsvFileError::NotUtf8 => f.write_str(
                "the file is not valid UTF-8 text; save it as \"CSV UTF-8\" and upload it again",
            ),
            CsvFileError::BadHeader { found } => write!(
                f,
                "the header must be exactly `{TEMPLATE_HEADER}` (case-sensitive); found `{found}`"
            ),
        }
    }
}

impl std::error::Error for CsvFileError {}

/// Parse the whole upload. File-level problems are Err; each data record is Ok(row) or Err(row error).
///
/// Blank lines and records whose fields are all empty (such as `,,,,`) are
/// skipped. Every physical line longer than `max_line_bytes` (excluding its
/// line break) fails the record it belongs to; parsing resumes on the next line.
/// The header is subject to the same limit.
///
/// Control characters are rejected in every field, except tabs inside quoted
/// fields. A quoted field may span several lines so that the records after it
/// stay aligned, but the line break it contains is a control character, so
/// that record is reported as an error.
pub fn parse_user_csv(
    input: &[u8],
    max_line_bytes: usize,
) -> Result<Vec<Result<CsvUserRow, CsvRowError>>, CsvFileError> {
    let input = input.strip_prefix(BOM).unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|_| CsvFileError::NotUtf8)?;
    let mut parser = Parser::new(text, max_line_bytes);
    let header = parser.next_record().ok_or(CsvFileError::Empty)?;
    if !is_template_header(&header) {
        let first_line = parser.slice(header.start, parser.line_end(header.start));
        return Err(CsvFileError::BadHeader {
            found: preview(first_line),
        });
    }
    let mut rows = Vec::new();
    while let Some(record) = parser.next_record() {
        rows.push(user_row(record));
    }
    Ok(rows)
}

/// One row of the results file offered for download after an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvResultRow {
    /// The line number of the record in the uploaded file.
    pub line: usize,
    /// The first name as uploaded.
    pub firstname: String,
    /// The last name as uploaded.
    pub lastname: String,
    /// The email as uploaded.
    pub email: String,
    /// The username as uploaded.
    pub username: String,
    /// What happened to the record, e.g. `created` or an error message.
    pub result: String,
}

/// Render results as CSV with header `line,firstname,lastname,email,username,result`, RFC 4180 quoting (quote fields containing comma, quote, CR or LF; double embedded quotes), CRLF line endings. Also neutralise spreadsheet formula injection: a field starting with =, +, -, @, tab or CR gets a leading apostrophe.
///
/// Every line, including the last, ends with CRLF.
pub fn write_results_csv(rows: &[CsvResultRow]) -> String {
    let mut out = String::new();
    out.push_str(RESULTS_HEADER);
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&row.line.to_string());
        for value in [
            &row.firstname,
            &row.lastname,
            &row.email,
            &row.username,
            &row.result,
        ] {
            out.push(',');
            push_result_field(&mut out, value);
        }
        out.push_str("\r\n");
    }
    out
}

/// Append one field of the results file, neutralised and quoted as needed.
fn push_result_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = value.contains([',', '"', '\r', '\n']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if quoted {
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// Whether `b` ends a physical line (CRLF, LF and lone CR are all accepted).
fn is_line_break(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// Whether `b` is padding that may surround a field.
fn is_padding(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// How a field is named in messages: by its column when it has one.
fn field_label(index: usize) -> String {
    match COLUMNS.get(index) {
        Some(name) => format!("field `{name}`"),
        None => format!("field {}", index.saturating_add(1)),
    }
}

/// A shortened copy of `text` with control characters escaped, for messages.
fn preview(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == FOUND_PREVIEW_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// One parsed field, before trimming.
struct Field {
    /// The value: unescaped for quoted fields, raw (untrimmed) otherwise.
    text: String,
    /// Whether the field was enclosed in quotes.
    quoted: bool,
    /// Whether spaces or tabs preceded the opening quote.
    padded_before: bool,
    /// Whether spaces or tabs followed the closing quote.
    padded_after: bool,
}

impl Field {
    /// The value the caller sees: quoted fields exactly, others trimmed of padding.
    fn value(&self) -> &str {
        if self.quoted {
            &self.text
        } else {
            self.text.trim_matches([' ', '\t'])
        }
    }

    /// The first character that is not allowed in an imported field.
    fn control_character(&self) -> Option<char> {
        self.value()
            .chars()
            .find(|&c| c.is_control() && !(self.quoted && c == '\t'))
    }
}

/// The fields of one record. Only the first few are kept; the rest are counted.
struct Fields {
    kept: Vec<Field>,
    count: usize,
    all_empty: bool,
}

impl Fields {
    fn new() -> Self {
        Fields {
            kept: Vec::new(),
            count: 0,
            all_empty: true,
        }
    }

    fn push(&mut self, field: Field) {
        self.count = self.count.saturating_add(1);
        self.all_empty &= field.value().is_empty();
        if self.kept.len() < COLUMNS.len() {
            self.kept.push(field);
        }
    }
}

/// One logical record: its fields, or why they could not be parsed.
struct Record {
    /// 1-based line number where the record starts.
    line: usize,
    /// Byte offset where the record starts.
    start: usize,
    body: Result<Fields, String>,
}

/// A single forward pass over the text; every byte is looked at a bounded
/// number of times, so parsing is linear in the input size.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    /// Byte offset of the next unread byte.
    pos: usize,
    /// 1-based number of the physical line containing `pos`.
    line: usize,
    max_line_bytes: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, max_line_bytes: usize) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            max_line_bytes,
        }
    }

    fn byte(&self, index: usize) -> Option<u8> {
        self.bytes.get(index).copied()
    }

    /// The text between two byte offsets (which always fall on ASCII delimiters).
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.text.get(from..to).unwrap_or_default()
    }

    /// The offset of the first byte at or after `from` matching `pred`, or the end.
    fn find_from(&self, from: usize, pred: impl Fn(u8) -> bool) -> usize {
        self.bytes
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| pred(b)))
            .map_or(self.bytes.len(), |offset| from.saturating_add(offset))
    }

    /// The offset of the line break ending the physical line containing `from`.
    fn line_end(&self, from: usize) -> usize {
        self.find_from(from, is_line_break)
    }

    fn line_too_long(&self, start: usize, end: usize) -> bool {
        end.saturating_sub(start) > self.max_line_bytes
    }

    /// Move past the line break at `end` (or to the end of the text).
    fn skip_line(&mut self, end: usize) {
        let width = match (self.byte(end), self.byte(end.saturating_add(1))) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        self.pos = end.saturating_add(width).min(self.bytes.len());
        if width > 0 {
            self.line = self.line.saturating_add(1);
        }
    }

    /// The next record, skipping blank lines and all-empty records.
    fn next_record(&mut self) -> Option<Record> {
        loop {
            let start = self.pos;
            if start >= self.bytes.len() {
                return None;
            }
            let line = self.line;
            let end = self.line_end(start);
            if self.slice(start, end).chars().all(char::is_whitespace) {
                self.skip_line(end);
                continue;
            }
            let body = if self.line_too_long(start, end) {
                self.skip_line(end);
                Err(format!("line is longer than {} bytes", self.max_line_bytes))
            } else {
                self.parse_fields(end)
            };
            if matches!(&body, Ok(fields) if fields.all_empty) {
                continue;
            }
            return Some(Record { line, start, body });
        }
    }

    /// Parse the record starting at `pos`, whose first line ends at `line_end`.
    /// On return `pos` is at the start of the line after the record, also on
    /// error, so that the next record can be parsed.
    fn parse_fields(&mut self, mut line_end: usize) -> Result<Fields, String> {
        let mut fields = Fields::new();
        loop {
            let index = fields.count;
            let field_start = self.pos;
            let opening = self.find_from(field_start, |b| !is_padding(b));
            let field = if opening < line_end && self.byte(opening) == Some(b'"') {
                self.pos = opening.saturating_add(1);
                let text = self.quoted_value(index, &mut line_end)?;
                let after = self.find_from(self.pos, |b| !is_padding(b));
                let padded_after = after > self.pos;
                self.pos = after;
                Field {
                    text,
                    quoted: true,
                    padded_before: opening > field_start,
                    padded_after,
                }
            } else {
                let stop =
                    self.find_from(field_start, |b| b == b',' || b == b'"' || is_line_break(b));
                if self.byte(stop) == Some(b'"') {
                    self.skip_line(line_end);
                    return Err(format!(
                        "{} contains a `\"` but does not start with one; enclose the whole \
                         field in double quotes and write each quote inside it as `\"\"`",
                        field_label(index)
                    ));
                }
                self.pos = stop;
                Field {
                    text: self.slice(field_start, stop).to_owned(),
                    quoted: false,
                    padded_before: false,
                    padded_after: false,
                }
            };
            fields.push(field);
            match self.byte(self.pos) {
                Some(b',') => self.pos = self.pos.saturating_add(1),
                None | Some(b'\r' | b'\n') => {
                    self.skip_line(self.pos);
                    return Ok(fields);
                }
                Some(_) => {
                    self.skip_line(line_end);
                    return Err(format!(
                        "unexpected text after the closing quote of {}; a quote inside a \
                         quoted field must be written as `\"\"`",
                        field_label(index)
                    ));
                }
            }
        }
    }

    /// Read a quoted field from just after its opening quote to just after its
    /// closing quote. Line breaks inside it are kept; `line_end` follows them.
    fn quoted_value(&mut self, index: usize, line_end: &mut usize) -> Result<String, String> {
        let opened_on = self.line;
        let mut value = String::new();
        loop {
            let stop = self.find_from(self.pos, |b| b == b'"' || is_line_break(b));
            value.push_str(self.slice(self.pos, stop));
            self.pos = stop;
            match self.byte(stop) {
                None => {
                    return Err(format!(
                        "{} opens a quote on line {opened_on} that is never closed",
                        field_label(index)
                    ));
                }
                Some(b'"') => {
                    let next = stop.saturating_add(1);
                    if self.byte(next) == Some(b'"') {
                        value.push('"');
                        self.pos = next.saturating_add(1);
                    } else {
                        self.pos = next;
                        return Ok(value);
                    }
                }
                Some(_) => {
                    self.skip_line(stop);
                    value.push_str(self.slice(stop, self.pos));
                    *line_end = self.line_end(self.pos);
                    if self.line_too_long(self.pos, *line_end) {
                        let long_line = self.line;
                        self.skip_line(*line_end);
                        return Err(format!(
                            "line {long_line}, inside a quoted field, is longer than {} bytes",
                            self.max_line_bytes
                        ));
                    }
                }
            }
        }
    }
}

/// Whether a record is exactly the template header. Quotes around a column
/// name are fine; padding is not, except at the end of the line.
fn is_template_header(record: &Record) -> bool {
    let Ok(fields) = &record.body else {
        return false;
    };
    if fields.count != COLUMNS.len() || fields.kept.len() != COLUMNS.len() {
        return false;
    }
    let last = COLUMNS.len().saturating_sub(1);
    fields
        .kept
        .iter()
        .zip(COLUMNS)
        .enumerate()
        .all(|(index, (field, expected))| {
            if field.quoted {
                !field.padded_before
                    && (index == last || !field.padded_after)
                    && field.text == expected
            } else if index == last {
                field.text.trim_end() == expected
            } else {
                field.text == expected
            }
        })
}

/// Turn a parsed data record into a user row or a row error.
fn user_row(record: Record) -> Result<CsvUserRow, CsvRowError> {
    let line = record.line;
    let error = |message: String| CsvRowError { line, message };
    let fields = record.body.map_err(error)?;
    if fields.count != COLUMNS.len() {
        return Err(error(format!(
            "expected 5 fields ({TEMPLATE_HEADER}), found {}",
            fields.count
        )));
    }
    for (index, field) in fields.kept.iter().enumerate() {
        if let Some(c) = field.control_character() {
            return Err(error(format!(
                "{} contains a control character (U+{:04X})",
                field_label(index),
                u32::from(c)
            )));
        }
    }
    let values: Vec<String> = fields
        .kept
        .iter()
        .map(|field| field.value().to_owned())
        .collect();
    let Ok([firstname, lastname, username, email, password]) = <[String; 5]>::try_from(values)
    else {
        return Err(error(format!(
            "expected 5 fields ({TEMPLATE_HEADER}), found {}",
            fields.count
        )));
    };
    Ok(CsvUserRow {
        line,
        firstname,
        lastname,
        username,
        email,
        password: (!password.is_empty()).then_some(password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Result<CsvUserRow, CsvRowError>>, CsvFileError> {
        parse_user_csv(text.as_bytes(), DEFAULT_MAX_LINE_BYTES)
    }

    fn rows(text: &str) -> Vec<Result<CsvUserRow, CsvRowError>> {
        match parse(text) {
            Ok(rows) => rows,
            Err(error) => panic!("file rejected: {error}"),
        }
    }

    fn user(line: usize, fields: [&str; 4], password: Option<&str>) -> CsvUserRow {
        let [firstname, lastname, username, email] = fields.map(str::to_owned);
        CsvUserRow {
            line,
            firstname,
            lastname,
            username,
            email,
            password: password.map(str::to_owned),
        }
    }

    fn ada(line: usize) -> Result<CsvUserRow, CsvRowError> {
        Ok(user(
            line,
            ["Ada", "Lovelace", "ada", "ada@example.com"],
            Some("s3cret"),
        ))
    }

    fn row_error(row: &Result<CsvUserRow, CsvRowError>) -> &CsvRowError {
        match row {
            Err(error) => error,
            Ok(row) => panic!("expected a row error, got {row:?}"),
        }
    }

    const ADA: &str = "Ada,Lovelace,ada,ada@example.com,s3cret";

    #[test]
    fn exact_header_with_one_row_parses() {
        assert_eq!(rows(&format!("{TEMPLATE_HEADER}\n{ADA}\n")), vec![ada(2)]);
    }

    #[test]
    fn header_only_gives_no_rows() {
        assert_eq!(rows(TEMPLATE_HEADER), vec![]);
    }

    #[test]
    fn header_with_wrong_case_is_rejected() {
        let error = parse("FirstName,lastname,username,email,password\n").unwrap_err();
        assert_eq!(
            error,
            CsvFileError::BadHeader {
                found: "FirstName,lastname,username,email,password".to_owned()
            }
        );
        assert_eq!(
            error.to_string(),
            "the header must be exactly `firstname,lastname,username,email,password` \
             (case-sensitive); found `FirstName,lastname,username,email,password`"
        );
    }

    #[test]
    fn header_with_extra_column_is_rejected() {
        let result = parse("firstname,lastname,username,email,password,phone\n");
        assert!(matches!(result, Err(CsvFileError::BadHeader { .. })));
    }

    #[test]
    fn header_with_missing_column_is_rejected() {
        let result = parse("firstname,lastname,username,email\n");
        assert!(matches!(result, Err(CsvFileError::BadHeader { .. })));
    }

    #[test]
    fn header_with_padded_column_is_rejected() {
        let result = parse("firstname, lastname,username,email,password\n");
        assert!(matches!(result, Err(CsvFileError::BadHeader { .. })));
    }

    #[test]
    fn header_with_quoted_columns_is_accepted() {
        let text = format!("\"firstname\",lastname,\"username\",email,\"password\"\n{ADA}\n");
        assert_eq!(rows(&text), vec![ada(2)]);
    }

    #[test]
    fn header_with_trailing_whitespace_is_accepted() {
        assert_eq!(
            rows(&format!("{TEMPLATE_HEADER} \t\r\n{ADA}")),
            vec![ada(2)]
        );
    }

    #[test]
    fn bad_header_preview_is_shortened_and_escaped() {
        let long = format!("a\u{7}b{}", "x".repeat(500));
        let Err(CsvFileError::BadHeader { found }) = parse(&long) else {
            panic!("expected a bad header");
        };
        assert!(found.starts_with("a\\u{7}bxxx"));
        assert!(found.ends_with('…'));
        assert!(found.chars().count() < 140);
    }

    #[test]
    fn empty_file_is_rejected() {
        assert_eq!(parse(""), Err(CsvFileError::Empty));
        assert_eq!(parse("\n  \r\n\t\n"), Err(CsvFileError::Empty));
        assert_eq!(parse("\u{feff}"), Err(CsvFileError::Empty));
    }

    #[test]
    fn byte_order_mark_is_stripped() {
        let text = format!("\u{feff}{TEMPLATE_HEADER}\r\n{ADA}\r\n");
        assert_eq!(rows(&text), vec![ada(2)]);
    }

    #[test]
    fn non_utf8_file_is_rejected() {
        let mut input = format!("{TEMPLATE_HEADER}\nJos").into_bytes();
        input.extend_from_slice(b"\xe9,Smith,jose,jose@example.com,\n");
        assert_eq!(
            parse_user_csv(&input, DEFAULT_MAX_LINE_BYTES),
            Err(CsvFileError::NotUtf8)
        );
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let text = format!("{TEMPLATE_HEADER}\r\n{ADA}\r\n{ADA}\r\n");
        assert_eq!(rows(&text), vec![ada(2), ada(3)]);
    }

    #[test]
    fn lone_cr_and_mixed_line_endings_are_accepted() {
        let text = format!("{TEMPLATE_HEADER}\r{ADA}\r{ADA}\n{ADA}\r\n{ADA}");
        assert_eq!(rows(&text), vec![ada(2), ada(3), ada(4), ada(5)]);
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let text = format!("\n \r\n{TEMPLATE_HEADER}\n\n\t\n{ADA}\n   \n{ADA}\n\n\n");
        assert_eq!(rows(&text), vec![ada(6), ada(8)]);
    }

    #[test]
    fn unquoted_fields_are_trimmed_and_quoted_fields_are_kept() {
        let text =
            format!("{TEMPLATE_HEADER}\n Ada ,\tLovelace\t, \" ada \" ,ada@example.com, s3cret\n");
        assert_eq!(
            rows(&text),
            vec![Ok(user(
                2,
                ["Ada", "Lovelace", " ada ", "ada@example.com"],
                Some("s3cret")
            ))]
        );
    }

    #[test]
    fn quoted_field_may_contain_commas() {
        let text =
            format!("{TEMPLATE_HEADER}\n\"Ada, Countess\",Lovelace,ada,ada@example.com,\"a,b\"\n");
        assert_eq!(
            rows(&text),
            vec![Ok(user(
                2,
                ["Ada, Countess", "Lovelace", "ada", "ada@example.com"],
                Some("a,b")
            ))]
        );
    }

    #[test]
    fn doubled_quotes_are_unescaped() {
        let text = format!(
            "{TEMPLATE_HEADER}\n\"Ada \"\"The Enchantress\"\"\",Lovelace,ada,ada@example.com,\"\"\"\"\n"
        );
        assert_eq!(
            rows(&text),
            vec![Ok(user(
                2,
                [
                    "Ada \"The Enchantress\"",
                    "Lovelace",
                    "ada",
                    "ada@example.com"
                ],
                Some("\"")
            ))]
        );
    }

    #[test]
    fn tab_inside_quoted_field_is_kept() {
        let text = format!("{TEMPLATE_HEADER}\nAda,Lovelace,ada,ada@example.com,\"a\tb\"\n");
        assert_eq!(
            rows(&text),
            vec![Ok(user(
                2,
                ["Ada", "Lovelace", "ada", "ada@example.com"],
                Some("a\tb")
            ))]
        );
    }

    #[test]
    fn multi_line_quoted_field_is_one_record_reported_at_its_first_line() {
        let text = format!(
            "{TEMPLATE_HEADER}\n\"Ada\r\nAugusta\",Lovelace,ada,\"ada@\nexample.com\",x\n{ADA}\n"
        );
        let parsed = rows(&text);
        assert_eq!(parsed.len(), 2);
        let error = row_error(&parsed[0]);
        assert_eq!(error.line, 2);
        assert_eq!(
            error.message,
            "field `firstname` contains a control character (U+000D)"
        );
        assert_eq!(parsed[1], ada(5));
    }

    #[test]
    fn empty_password_is_none() {
        let text = format!("{TEMPLATE_HEADER}\nAda,Lovelace,ada,ada@example.com,\nAda,Lovelace,ada,ada@example.com,  \n");
        let expected = user(2, ["Ada", "Lovelace", "ada", "ada@example.com"], None);
        assert_eq!(
            rows(&text),
            vec![
                Ok(expected.clone()),
                Ok(CsvUserRow {
                    line: 3,
                    ..expected
                })
            ]
        );
    }

    #[test]
    fn other_empty_fields_are_empty_strings() {
        let text = format!("{TEMPLATE_HEADER}\n,,ada,,pw\n");
        assert_eq!(
            rows(&text),
            vec![Ok(user(2, ["", "", "ada", ""], Some("pw")))]
        );
    }

    #[test]
    fn wrong_field_count_fails_that_row_only() {
        let text =
            format!("{TEMPLATE_HEADER}\nAda,Lovelace,ada,ada@example.com\nA,B,c,d,e,f\n{ADA}\n");
        let parsed = rows(&text);
        assert_eq!(
            parsed[0],
            Err(CsvRowError {
                line: 2,
                message: "expected 5 fields (firstname,lastname,username,email,password), found 4"
                    .to_owned()
            })
        );
        assert_eq!(row_error(&parsed[1]).line, 3);
        assert!(row_error(&parsed[1]).message.ends_with("found 6"));
        assert_eq!(parsed[2], ada(4));
        assert_eq!(parsed.len(), 3);
    }

    #[test]
    fn all_empty_records_are_skipped() {
        let text = format!(",,,,\n{TEMPLATE_HEADER}\n,,,,\n , ,\"\", ,\n{ADA}\n,,,,");
        assert_eq!(rows(&text), vec![ada(5)]);
    }

    #[test]
    fn unterminated_quote_at_end_of_file_is_one_error() {
        let text = format!("{TEMPLATE_HEADER}\n{ADA}\nBob,\"Smith,bob,bob@example.com,pw\n{ADA}\n");
        let parsed = rows(&text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0], ada(2));
        assert_eq!(
            parsed[1],
            Err(CsvRowError {
                line: 3,
                message: "field `lastname` opens a quote on line 3 that is never closed".to_owned()
            })
        );
    }

    #[test]
    fn quote_inside_unquoted_field_fails_that_row_only() {
        let text = format!("{TEMPLATE_HEADER}\nAda,Love\"lace,ada,ada@example.com,pw\n{ADA}\n");
        let parsed = rows(&text);
        assert_eq!(row_error(&parsed[0]).line, 2);
        assert!(row_error(&parsed[0])
            .message
            .starts_with("field `lastname` contains a `\"`"));
        assert_eq!(parsed[1], ada(3));
    }

    #[test]
    fn text_after_closing_quote_fails_that_row_only() {
        let text = format!("{TEMPLATE_HEADER}\n\"Ada\"x,Lovelace,ada,ada@example.com,pw\n{ADA}\n");
        let parsed = rows(&text);
        assert_eq!(row_error(&parsed[0]).line, 2);
        assert!(row_error(&parsed[0])
            .message
            .starts_with("unexpected text after the closing quote of field `firstname`"));
        assert_eq!(parsed[1], ada(3));
    }

    #[test]
    fn control_character_fails_the_row() {
        let text = format!("{TEMPLATE_HEADER}\nAda,Love\u{1}lace,ada,ada@example.com,pw\nAda,Lovelace,a\tda,ada@example.com,pw\n{ADA}\n");
        let parsed = rows(&text);
        assert_eq!(
            parsed[0],
            Err(CsvRowError {
                line: 2,
                message: "field `lastname` contains a control character (U+0001)".to_owned()
            })
        );
        assert_eq!(
            row_error(&parsed[1]).message,
            "field `username` contains a control character (U+0009)"
        );
        assert_eq!(parsed[2], ada(4));
    }

    #[test]
    fn ten_megabyte_line_fails_only_that_row() {
        let mut text = format!("{TEMPLATE_HEADER}\n");
        text.push_str(&"a,\"b".repeat(10 * 1024 * 1024 / 4));
        text.push_str("\r\n");
        text.push_str(ADA);
        let parsed = rows(&text);
        assert_eq!(
            parsed,
            vec![
                Err(CsvRowError {
                    line: 2,
                    message: "line is longer than 65536 bytes".to_owned()
                }),
                ada(3)
            ]
        );
    }

    #[test]
    fn long_line_inside_quoted_field_fails_that_record() {
        let text = format!("{TEMPLATE_HEADER}\n\"Ada\n{}\n{ADA}\n", "x".repeat(50));
        let parsed = parse_user_csv(text.as_bytes(), 45).unwrap();
        assert_eq!(
            parsed,
            vec![
                Err(CsvRowError {
                    line: 2,
                    message: "line 3, inside a quoted field, is longer than 45 bytes".to_owned()
                }),
                ada(4)
            ]
        );
    }

    #[test]
    fn results_csv_quotes_and_neutralises_fields() {
        let rows = [
            CsvResultRow {
                line: 2,
                firstname: "Ada".to_owned(),
                lastname: "Lovelace, Countess".to_owned(),
                email: "ada@example.com".to_owned(),
                username: "ada".to_owned(),
                result: "created".to_owned(),
            },
            CsvResultRow {
                line: 3,
                firstname: "=HYPERLINK(\"http://x\")".to_owned(),
                lastname: "+1".to_owned(),
                email: "-2".to_owned(),
                username: "@sum".to_owned(),
                result: "say \"hi\"\nbye".to_owned(),
            },
            CsvResultRow {
                line: 4,
                firstname: "\tTab".to_owned(),
                lastname: "\rCr".to_owned(),
                email: String::new(),
                username: "a=b".to_owned(),
                result: "error: username taken".to_owned(),
            },
        ];
        assert_eq!(
            write_results_csv(&rows),
            "line,firstname,lastname,email,username,result\r\n\
             2,Ada,\"Lovelace, Countess\",ada@example.com,ada,created\r\n\
             3,\"'=HYPERLINK(\"\"http://x\"\")\",'+1,'-2,'@sum,\"say \"\"hi\"\"\nbye\"\r\n\
             4,'\tTab,\"'\rCr\",,a=b,error: username taken\r\n"
        );
    }

    #[test]
    fn results_csv_without_rows_is_just_the_header() {
        assert_eq!(
            write_results_csv(&[]),
            "line,firstname,lastname,email,username,result\r\n"
        );
    }
}
