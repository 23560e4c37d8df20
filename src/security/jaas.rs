//! A parser for Java's `sasl.jaas.config` text.
//!
//! The syntax is one JAAS login module entry:
//!
//! ```text
//! org.apache.kafka.common.security.plain.PlainLoginModule required
//!     username="alice"
//!     password="alice-secret";
//! ```
//!
//! that is, the login module class, a control flag (`required`, `requisite`, `sufficient`
//! or `optional`), any number of `key=value` options and a closing `;`. Values are bare
//! words or quoted strings (`"..."` or `'...'`) with the backslash escapes Java's
//! `StreamTokenizer` reads. Whitespace, newlines and `//` or `/* */` comments may appear
//! between tokens. Kafka clients take exactly one entry, so a second one is an error.
//!
//! Every value is kept as a [`Secret`] and no error message quotes any text of the
//! configuration: a password may sit anywhere in it, even where a typo put it.

use crate::error::Error;
use crate::security::Secret;

/// One parsed `sasl.jaas.config` entry.
///
/// `Debug` shows the module and the option names; the values are [`Secret`]s and print
/// redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JaasConfig {
    /// The login module class, e.g. `org.apache.kafka.common.security.plain.PlainLoginModule`.
    pub(crate) module: String,
    /// The options in the order written.
    pub(crate) options: Vec<(String, Secret)>,
}

impl JaasConfig {
    /// Parses `sasl.jaas.config` text. Errors are [`Error::Config`] naming the line and
    /// column and what was expected there, never the text found.
    pub(crate) fn parse(text: &str) -> Result<JaasConfig, Error> {
        Parser::new(text).entry()
    }

    /// The value of option `key`. When a key is written twice the last one counts, as in
    /// Java, where the options end up in a map.
    pub(crate) fn option(&self, key: &str) -> Option<&Secret> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// The control flags JAAS knows. The client ignores the flag, but Java rejects others.
const FLAGS: [&str; 4] = ["required", "requisite", "sufficient", "optional"];

/// A lexical token with the index of its first character.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A bare word: a class name, a flag, an option name or an unquoted value.
    Word(String),
    /// The content of a quoted string, escapes resolved.
    Quoted(String),
    /// `=`
    Equals,
    /// `;`
    Semicolon,
    /// The end of the text.
    End,
}

impl Token {
    /// The text of a word or quoted string: what can stand for a name or a value.
    fn into_text(self) -> Option<String> {
        match self {
            Token::Word(s) | Token::Quoted(s) => Some(s),
            _ => None,
        }
    }
}

/// Tokenizer and recursive-descent parser in one: the grammar is tiny.
struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    /// `module flag (key = value)* ;` followed by nothing but whitespace and comments.
    fn entry(&mut self) -> Result<JaasConfig, Error> {
        let (at, token) = self.next_token()?;
        let module = match token {
            Token::End => {
                return Err(config_error(
                    "contains no login module entry (expected `<LoginModuleClass> <flag> key=value ...;`)",
                ))
            }
            other => other
                .into_text()
                .ok_or_else(|| self.error_at(at, "expected the login module class name"))?,
        };
        self.flag()?;
        let options = self.options()?;
        let (at, token) = self.next_token()?;
        if token != Token::End {
            return Err(self.error_at(
                at,
                "holds more than one login module entry; Kafka clients take exactly one",
            ));
        }
        Ok(JaasConfig { module, options })
    }

    /// The control flag after the module name: checked, then dropped (clients ignore it).
    fn flag(&mut self) -> Result<(), Error> {
        const EXPECTED: &str =
            "expected the control flag (required, requisite, sufficient or optional)";
        let (at, token) = self.next_token()?;
        let Token::Word(word) = token else {
            return Err(self.error_at(at, &format!("missing control flag: {EXPECTED}")));
        };
        if FLAGS.iter().any(|f| f.eq_ignore_ascii_case(&word)) {
            return Ok(());
        }
        // A word followed by `=` is the first option: the flag was left out.
        let (_, after) = self.peek_token()?;
        if after == Token::Equals {
            return Err(self.error_at(at, &format!("missing control flag: {EXPECTED}")));
        }
        Err(self.error_at(at, &format!("unknown control flag: {EXPECTED}")))
    }

    /// `key=value` pairs up to and including the closing `;`.
    fn options(&mut self) -> Result<Vec<(String, Secret)>, Error> {
        let mut options = Vec::new();
        loop {
            let (at, token) = self.next_token()?;
            let key = match token {
                Token::Semicolon => return Ok(options),
                Token::End => {
                    return Err(self.error_at(at, "the entry is not terminated by `;`"));
                }
                other => other
                    .into_text()
                    .ok_or_else(|| self.error_at(at, "expected an option name or `;`"))?,
            };
            let (at, token) = self.next_token()?;
            if token != Token::Equals {
                return Err(self.error_at(at, "expected `=` after an option name"));
            }
            let (at, token) = self.next_token()?;
            let value = token
                .into_text()
                .ok_or_else(|| self.error_at(at, "expected a value after `=`"))?;
            options.push((key, Secret::new(value)));
        }
    }

    /// The next token without consuming it.
    fn peek_token(&mut self) -> Result<(usize, Token), Error> {
        let saved = self.pos;
        let token = self.next_token();
        self.pos = saved;
        token
    }

    /// The next token and the index where it starts.
    fn next_token(&mut self) -> Result<(usize, Token), Error> {
        self.skip_blanks()?;
        let at = self.pos;
        let Some(&c) = self.chars.get(self.pos) else {
            return Ok((at, Token::End));
        };
        let token = match c {
            '=' => {
                self.pos += 1;
                Token::Equals
            }
            ';' => {
                self.pos += 1;
                Token::Semicolon
            }
            '"' | '\'' => Token::Quoted(self.quoted(c)?),
            c if is_word_char(c) => Token::Word(self.word()),
            _ => return Err(self.error_at(at, "unexpected character")),
        };
        Ok((at, token))
    }

    /// Skips whitespace, `// line` and `/* block */` comments.
    fn skip_blanks(&mut self) -> Result<(), Error> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if is_blank(c) => self.pos += 1,
                (Some('/'), Some('/')) => {
                    while self.peek(0).is_some_and(|c| c != '\n' && c != '\r') {
                        self.pos += 1;
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos;
                    self.pos += 2;
                    loop {
                        match (self.peek(0), self.peek(1)) {
                            (Some('*'), Some('/')) => {
                                self.pos += 2;
                                break;
                            }
                            (Some(_), _) => self.pos += 1,
                            (None, _) => {
                                return Err(self.error_at(start, "comment is not closed by `*/`"))
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    /// A bare word starting at the current position.
    fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek(0).is_some_and(is_word_char) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// A quoted string opened by `quote` at the current position. Like Java, a string may
    /// not span lines; unlike Java, which silently ends it there, an unclosed string is an
    /// error, so a missing quote cannot turn the rest of a line into a password.
    fn quoted(&mut self, quote: char) -> Result<String, Error> {
        let start = self.pos;
        let unclosed = "quoted text is not closed on its line";
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(self.error_at(start, unclosed));
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(out),
                '\n' | '\r' => return Err(self.error_at(start, unclosed)),
                '\\' => {
                    let escaped = self
                        .escape()
                        .ok_or_else(|| self.error_at(start, unclosed))?;
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
    }

    /// The character an escape stands for, the backslash already consumed; `None` at the
    /// end of the text. Java's `StreamTokenizer` rules: the C letter escapes, up to three
    /// octal digits (three only when the first is 0-3, so the value fits a byte), and any
    /// other character stands for itself (`\"`, `\\`).
    fn escape(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        let mapped = match c {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '0'..='7' => return Some(self.octal(c)),
            other => other,
        };
        Some(mapped)
    }

    /// An octal escape whose first digit `first` is consumed.
    fn octal(&mut self, first: char) -> char {
        let max_digits = if first <= '3' { 3 } else { 2 };
        let mut value = first.to_digit(8).unwrap_or(0);
        for _ in 1..max_digits {
            match self.peek(0).and_then(|d| d.to_digit(8)) {
                Some(d) => {
                    value = value * 8 + d;
                    self.pos += 1;
                }
                None => break,
            }
        }
        // At most 0o377, always a valid char.
        char::from_u32(value).unwrap_or('\0')
    }

    /// A configuration error at character index `at`, by line and column. Only the
    /// position and `what` are reported, never text from the configuration.
    fn error_at(&self, at: usize, what: &str) -> Error {
        let (line, column) = line_and_column(&self.chars[..at.min(self.chars.len())]);
        config_error(&format!("{what} (at line {line}, column {column})"))
    }
}

fn config_error(what: &str) -> Error {
    Error::Config(format!("sasl.jaas.config {what}"))
}

/// 1-based line and column of the position just after `before`.
fn line_and_column(before: &[char]) -> (usize, usize) {
    let line = 1 + before.iter().filter(|&&c| c == '\n').count();
    let column = 1 + before.iter().rev().take_while(|&&c| c != '\n').count();
    (line, column)
}

/// Whitespace as Java's tokenizer sees it: every control character and space, plus
/// Unicode whitespace.
fn is_blank(c: char) -> bool {
    c <= ' ' || c.is_whitespace()
}

/// Characters of bare words: letters and digits (so class names, flags, option names
/// and simple values), `.` for class names, and `-`, `_`, `$` which Kafka adds to Java's
/// defaults. Java would read a word starting with a digit as a number and reject it as a
/// value; accepting it here is harmless and friendlier.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c, '.' | '-' | '_' | '$')
        || (!c.is_ascii() && !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
    const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
    const OAUTH: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

    fn value(config: &JaasConfig, key: &str) -> String {
        config.option(key).expect(key).expose().to_string()
    }

    fn config_err(text: &str) -> String {
        match JaasConfig::parse(text) {
            Err(Error::Config(msg)) => msg,
            other => panic!("expected a config error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_plain_with_quoted_values() {
        let c = JaasConfig::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";"#,
        )
        .unwrap();
        assert_eq!(c.module, PLAIN);
        assert_eq!(value(&c, "username"), "alice");
        assert_eq!(value(&c, "password"), "alice-secret");
        assert_eq!(c.options.len(), 2);
    }

    #[test]
    fn parses_scram_across_lines_with_comments() {
        let text = "\n  org.apache.kafka.common.security.scram.ScramLoginModule\n\trequired\n  \
                    // the service account\n  username=\"svc\"\n  /* rotated monthly */ password\n = \n\"p w\"\n ;\n\n";
        let c = JaasConfig::parse(text).unwrap();
        assert_eq!(c.module, SCRAM);
        assert_eq!(value(&c, "username"), "svc");
        assert_eq!(value(&c, "password"), "p w");
    }

    #[test]
    fn parses_oauthbearer_unsecured_options() {
        let c = JaasConfig::parse(&format!(
            "{OAUTH} required unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginLifetimeSeconds=\"60\";"
        ))
        .unwrap();
        assert_eq!(c.module, OAUTH);
        assert_eq!(value(&c, "unsecuredLoginStringClaim_sub"), "alice");
        assert_eq!(value(&c, "unsecuredLoginLifetimeSeconds"), "60");
    }

    #[test]
    fn resolves_escapes_in_quoted_values() {
        let c = JaasConfig::parse(concat!(
            r#"m optional a="q\"uote" b="back\\slash" c="tab\tnl\n" d="\101\1012\7" e='single "x"' f="\z\'""#,
            ";"
        ))
        .unwrap();
        assert_eq!(value(&c, "a"), "q\"uote");
        assert_eq!(value(&c, "b"), "back\\slash");
        assert_eq!(value(&c, "c"), "tab\tnl\n");
        // \101 is 'A'; \1012 is 'A' then '2' (three digits at most); \7 is BEL.
        assert_eq!(value(&c, "d"), "AA2\u{7}");
        assert_eq!(value(&c, "e"), "single \"x\"");
        assert_eq!(value(&c, "f"), "z'");
    }

    #[test]
    fn parses_bare_values_and_any_flag_case() {
        let c = JaasConfig::parse(&format!(
            "{PLAIN} REQUIRED username=alice password=pa-ss_w.0$rd;"
        ))
        .unwrap();
        assert_eq!(value(&c, "username"), "alice");
        assert_eq!(value(&c, "password"), "pa-ss_w.0$rd");
        for flag in FLAGS {
            JaasConfig::parse(&format!("{PLAIN} {flag};")).unwrap();
        }
    }

    #[test]
    fn last_duplicate_option_counts() {
        let c = JaasConfig::parse("m required k=a k=b;").unwrap();
        assert_eq!(value(&c, "k"), "b");
        assert!(c.option("missing").is_none());
    }

    #[test]
    fn rejects_missing_semicolon() {
        let msg = config_err(&format!("{PLAIN} required username=\"a\" password=\"b\""));
        assert!(msg.contains("not terminated by `;`"), "{msg}");
    }

    #[test]
    fn rejects_missing_flag() {
        let msg = config_err(&format!("{PLAIN} username=\"a\" password=\"b\";"));
        assert!(msg.contains("missing control flag"), "{msg}");
        let column = format!("line 1, column {}", PLAIN.len() + 2);
        assert!(msg.contains(&column), "{msg}");
        let msg = config_err(&format!("{PLAIN};"));
        assert!(msg.contains("missing control flag"), "{msg}");
    }

    #[test]
    fn rejects_unknown_flag() {
        let msg = config_err(&format!("{PLAIN} mandatory username=\"a\";"));
        assert!(msg.contains("unknown control flag"), "{msg}");
    }

    #[test]
    fn rejects_two_modules() {
        let msg = config_err(&format!(
            "{PLAIN} required username=\"a\" password=\"b\";\n{SCRAM} required username=\"a\" password=\"b\";"
        ));
        assert!(msg.contains("more than one login module"), "{msg}");
        assert!(msg.contains("line 2, column 1"), "{msg}");
    }

    #[test]
    fn rejects_unterminated_quotes_and_comments() {
        let msg = config_err(&format!("{PLAIN} required password=\"abc;"));
        assert!(msg.contains("not closed"), "{msg}");
        let msg = config_err(&format!("{PLAIN} required password=\"abc\n\";"));
        assert!(msg.contains("not closed"), "{msg}");
        let msg = config_err(&format!("{PLAIN} required password=\"abc\\"));
        assert!(msg.contains("not closed"), "{msg}");
        let msg = config_err(&format!("{PLAIN} required /* password=\"abc\";"));
        assert!(msg.contains("comment is not closed"), "{msg}");
    }

    #[test]
    fn rejects_other_malformed_entries() {
        for text in [
            "",
            "   // only a comment\n",
            "m required =a;",
            "m required key value;",
            "m required key=;",
            "m required key=a = b;",
            "m required key=a#;",
            "= required;",
        ] {
            config_err(text);
        }
    }

    #[test]
    fn nothing_shows_the_secret() {
        const SECRET: &str = "s3cr3t-xyz";
        let good = JaasConfig::parse(&format!(
            "{PLAIN} required username=\"u\" password=\"{SECRET}\";"
        ))
        .unwrap();
        assert!(!format!("{good:?}").contains(SECRET));
        assert!(!format!("{good:#?}").contains(SECRET));
        let bad = [
            format!("{PLAIN} required password=\"{SECRET}\""),
            format!("{PLAIN} required password={SECRET}"),
            format!("{PLAIN} password=\"{SECRET}\";"),
            format!("{PLAIN} {SECRET} password=x;"),
            format!("{PLAIN} required password=\"{SECRET};"),
            format!("{PLAIN} required password=\"{SECRET}\n\";"),
            format!("{PLAIN} required password \"{SECRET}\";"),
            format!("{PLAIN} required \"{SECRET}\";"),
            format!("{PLAIN} required password={SECRET}#;"),
            format!("{PLAIN} required p={SECRET}; {PLAIN} required p={SECRET};"),
            format!("{PLAIN} required /* {SECRET}"),
            format!("\"{SECRET}"),
            SECRET.to_string(),
        ];
        for text in bad {
            let err = JaasConfig::parse(&text).expect_err(&text);
            assert!(!err.to_string().contains(SECRET), "{err}");
            assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
        }
    }
}
