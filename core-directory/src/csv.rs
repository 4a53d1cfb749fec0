//! The user-import CSV: reading the file admins upload and writing the per-row results file they can download
//! afterwards.
//!
//! This module owns the file format only. [`parse_user_csv`] turns an upload into one result per data record,
//! and [`write_results_csv`] renders the outcome of an import as CSV that is safe to open in a spreadsheet.
//! Fields are read by the `csv` crate (RFC 4180 quoting and escaping); this module adds what an upload from a
//! spreadsheet needs on top: a byte order mark, any line ending, blank lines, padding around fields, a cap on
//! the length of a line so a hostile file cannot make one record huge, and a result per record, so that one bad
//! record never hides the ones after it.
//!
//! The header names the columns, case-sensitive, in any order: the five of the template
//! ([`TEMPLATE_HEADER`]) are required, the [`OPTIONAL_COLUMNS`] may follow.
//!
//! It must not touch the directory store and must not apply policy: it does not check that emails, usernames or
//! numbers are well formed, unique or allowed, nor that passwords meet any rule. Callers validate the returned
//! fields themselves. Every input is treated as untrusted; nothing here panics on malformed data.

/// The header of the import template; its five columns are required (case-sensitive, any order).
pub const TEMPLATE_HEADER: &str = "firstname,lastname,username,email,password";

/// Columns an import file may add after the required ones. `groups` holds group names separated by `;`.
pub const OPTIONAL_COLUMNS: [&str; 7] = [
    "uid_number",
    "gid_number",
    "login_shell",
    "home_directory",
    "groups",
    "password_hash",
    "state",
];

/// Default cap on one physical line (bytes); longer lines fail that row only.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// The required column names, in template order.
const COLUMNS: [&str; 5] = ["firstname", "lastname", "username", "email", "password"];

/// The UTF-8 byte order mark that spreadsheet programs put in front of CSV exports.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How many characters of a rejected header are echoed back to the admin.
const FOUND_PREVIEW_CHARS: usize = 120;

/// The header of the results file produced by [`write_results_csv`].
const RESULTS_HEADER: &str = "line,firstname,lastname,email,username,result";

/// One data record of an import file, with its fields as read (trimmed; empty optional fields are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvUserRow {
    /// 1-based line number where the record starts (the header is line 1 unless blank lines precede it).
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
    pub uid_number: Option<String>,
    pub gid_number: Option<String>,
    pub login_shell: Option<String>,
    pub home_directory: Option<String>,
    /// Group names from the `groups` field (split at `;`, trimmed, empty names dropped).
    pub groups: Vec<String>,
    pub password_hash: Option<String>,
    pub state: Option<String>,
}

/// A data record that could not be read; the rest of the file is unaffected.
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
    /// The header does not name the required columns, or names an unknown one or one twice.
    BadHeader {
        /// The first line of the header as uploaded, shortened and with control characters escaped so that it
        /// can be shown safely.
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
                "the header must name the columns `{TEMPLATE_HEADER}` (case-sensitive, each once), optionally \
                 with {}; found `{found}`",
                OPTIONAL_COLUMNS.join(", ")
            ),
        }
    }
}

impl std::error::Error for CsvFileError {}

/// Parse the whole upload. File-level problems are Err; each data record is Ok(row) or Err(row error).
///
/// Blank lines and records whose fields are all empty (such as `,,,,`) are skipped. Every physical line longer
/// than `max_line_bytes` (excluding its line break) fails the record it belongs to; reading resumes on the next
/// line. The header is subject to the same limit.
///
/// Control characters are refused in every field, except tabs in the password. A quoted field may span several
/// lines so that the records after it stay aligned, but the line break it contains is a control character, so
/// that record is reported as an error.
pub fn parse_user_csv(
    input: &[u8],
    max_line_bytes: usize,
) -> Result<Vec<Result<CsvUserRow, CsvRowError>>, CsvFileError> {
    let input = input.strip_prefix(BOM).unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|_| CsvFileError::NotUtf8)?;
    let mut records = records(text, max_line_bytes).into_iter();
    let header = loop {
        let record = records.next().ok_or(CsvFileError::Empty)?;
        match &record.body {
            Ok(fields) if fields.iter().all(|f| f.trim().is_empty()) => continue,
            _ => break record,
        }
    };
    let first_line = header.text.lines().next().unwrap_or_default();
    // The header's names are compared as written: padding makes a name unknown.
    let columns = header
        .body
        .ok()
        .and_then(|_| read_fields(header.text, false).ok())
        .and_then(|fields| header_columns(&fields))
        .ok_or_else(|| CsvFileError::BadHeader {
            found: preview(first_line),
        })?;
    Ok(records
        .filter(|r| !matches!(&r.body, Ok(f) if f.iter().all(|v| v.trim().is_empty())))
        .map(|r| user_row(r, &columns))
        .collect())
}

/// The columns a header names, or `None` when it is not a valid header.
fn header_columns(fields: &[String]) -> Option<Vec<&'static str>> {
    let mut columns = Vec::with_capacity(fields.len());
    let last = fields.len().saturating_sub(1);
    for (i, raw) in fields.iter().enumerate() {
        // Trailing whitespace at the end of the line is tolerated; padding elsewhere is not.
        let name = if i == last {
            raw.trim_end()
        } else {
            raw.as_str()
        };
        let known = COLUMNS
            .iter()
            .chain(OPTIONAL_COLUMNS.iter())
            .find(|c| **c == name)?;
        if columns.contains(known) {
            return None;
        }
        columns.push(*known);
    }
    COLUMNS
        .iter()
        .all(|c| columns.contains(c))
        .then_some(columns)
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

/// One logical record: where it starts, its raw text (line breaks inside quoted fields included), and its
/// fields as the `csv` crate read them, or why it could not be read.
struct Record<'a> {
    line: usize,
    text: &'a str,
    body: Result<Vec<String>, String>,
}

/// Split the text into records at line breaks outside quotes (any of CRLF, LF, lone CR), enforcing the line cap,
/// and read each record's fields.
fn records(text: &str, max_line_bytes: usize) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut pos, mut line) = (0usize, 1usize);
    while pos < bytes.len() {
        let start = pos;
        let start_line = line;
        let mut in_quotes = false;
        let mut too_long: Option<String> = None;
        let mut end;
        loop {
            // One physical line. As RFC 4180 readers do, a quote opens a quoted field only at the start of a
            // field (padding aside); inside one, `""` is a quote and a lone `"` closes it; elsewhere it is text.
            let line_start = pos;
            let mut field_start = !in_quotes;
            while pos < bytes.len() && bytes[pos] != b'\n' && bytes[pos] != b'\r' {
                match (bytes[pos], in_quotes) {
                    (b'"', true) if bytes.get(pos + 1) == Some(&b'"') => pos += 1,
                    (b'"', true) => in_quotes = false,
                    (b'"', false) if field_start => in_quotes = true,
                    (b',', false) => {
                        field_start = true;
                        pos += 1;
                        continue;
                    }
                    (b' ' | b'\t', false) => {
                        pos += 1;
                        continue;
                    }
                    _ => {}
                }
                field_start = false;
                pos += 1;
            }
            end = pos;
            if pos - line_start > max_line_bytes && too_long.is_none() {
                too_long = Some(if line == start_line {
                    format!("line is longer than {max_line_bytes} bytes")
                } else {
                    format!(
                        "line {line}, inside a quoted field, is longer than {max_line_bytes} bytes"
                    )
                });
                // Reading resumes on the next line, whatever the quotes said.
                in_quotes = false;
            }
            if pos < bytes.len() {
                pos += if bytes[pos] == b'\r' && bytes.get(pos + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            line += 1;
            if !in_quotes || pos >= bytes.len() {
                break;
            }
        }
        let raw = &text[start..end];
        if too_long.is_none() && raw.trim().is_empty() {
            continue;
        }
        let body = match too_long {
            Some(m) => Err(m),
            None if in_quotes => Err(format!(
                "a quoted field opened on line {start_line} is never closed"
            )),
            None => read_fields(raw, true),
        };
        out.push(Record {
            line: start_line,
            text: raw,
            body,
        });
    }
    out
}

/// The fields of one record, read by the `csv` crate and, with `trim`, trimmed. A field written with padding
/// around its quotes (` "a b" `) is read as the quoted value, as a careful reader of hand-made files expects.
fn read_fields(raw: &str, trim: bool) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(raw.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Ok(Vec::new()),
        Err(e) => return Err(format!("the record cannot be read: {e}")),
    }
    Ok(record
        .iter()
        .map(|field| {
            if !trim {
                return field.to_string();
            }
            let t = field.trim_matches([' ', '\t']);
            match t.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Some(inner) if t.len() >= 2 && t != field => inner.replace("\"\"", "\""),
                _ => t.to_string(),
            }
        })
        .collect())
}

/// Turn a data record into a user row or a row error.
fn user_row(record: Record<'_>, columns: &[&'static str]) -> Result<CsvUserRow, CsvRowError> {
    let line = record.line;
    let error = |message: String| CsvRowError { line, message };
    let fields = record.body.map_err(error)?;
    if fields.len() != columns.len() {
        return Err(error(format!(
            "expected {} fields ({}), found {}",
            columns.len(),
            columns.join(","),
            fields.len()
        )));
    }
    let mut row = CsvUserRow {
        line,
        ..CsvUserRow::default()
    };
    for (name, value) in columns.iter().zip(fields) {
        let tab_ok = *name == "password";
        if let Some(c) = value
            .chars()
            .find(|c| c.is_control() && !(tab_ok && *c == '\t'))
        {
            return Err(error(format!(
                "field `{name}` contains a control character (U+{:04X})",
                u32::from(c)
            )));
        }
        let optional = (!value.is_empty()).then(|| value.clone());
        match *name {
            "firstname" => row.firstname = value,
            "lastname" => row.lastname = value,
            "username" => row.username = value,
            "email" => row.email = value,
            "password" => row.password = optional,
            "uid_number" => row.uid_number = optional,
            "gid_number" => row.gid_number = optional,
            "login_shell" => row.login_shell = optional,
            "home_directory" => row.home_directory = optional,
            "password_hash" => row.password_hash = optional,
            "state" => row.state = optional,
            "groups" => {
                row.groups = value
                    .split(';')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            _ => {}
        }
    }
    Ok(row)
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
            ..CsvUserRow::default()
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
            "the header must name the columns `firstname,lastname,username,email,password` \
             (case-sensitive, each once), optionally with uid_number, gid_number, login_shell, \
             home_directory, groups, password_hash, state; found `FirstName,lastname,username,email,password`"
        );
    }

    #[test]
    fn header_with_unknown_or_repeated_column_is_rejected() {
        let result = parse("firstname,lastname,username,email,password,phone\n");
        assert!(matches!(result, Err(CsvFileError::BadHeader { .. })));
        let result = parse("firstname,lastname,username,email,password,state,state\n");
        assert!(matches!(result, Err(CsvFileError::BadHeader { .. })));
    }

    #[test]
    fn optional_columns_in_any_order_are_read() {
        let text = "email,state,username,groups,firstname,lastname,password,uid_number,password_hash,\
                    login_shell,home_directory,gid_number\n\
                    ada@example.com,suspended,ada, Staff ; VPN;,Ada,Lovelace,,10001,{SSHA}abc,/bin/zsh,/home/ada,100\n";
        assert_eq!(
            rows(text),
            vec![Ok(CsvUserRow {
                line: 2,
                firstname: "Ada".into(),
                lastname: "Lovelace".into(),
                username: "ada".into(),
                email: "ada@example.com".into(),
                password: None,
                uid_number: Some("10001".into()),
                gid_number: Some("100".into()),
                login_shell: Some("/bin/zsh".into()),
                home_directory: Some("/home/ada".into()),
                groups: vec!["Staff".into(), "VPN".into()],
                password_hash: Some("{SSHA}abc".into()),
                state: Some("suspended".into()),
            })]
        );
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
                message: "a quoted field opened on line 3 is never closed".to_owned()
            })
        );
    }

    #[test]
    fn stray_quotes_in_unquoted_fields_are_text() {
        let text = format!("{TEMPLATE_HEADER}\nAda,Love\"lace,ada,ada@example.com,pw\n{ADA}\n");
        let parsed = rows(&text);
        assert_eq!(
            parsed[0].as_ref().map(|r| r.lastname.as_str()),
            Ok("Love\"lace")
        );
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
