//! Java `.properties` files, read as `java.util.Properties.load` reads them, and the
//! `${provider:[path:]key}` references of Kafka's config providers.
//!
//! # Syntax (as `Properties.load`)
//!
//! - A *natural line* ends at `\n`, `\r` or `\r\n`. A *logical line* is a natural line,
//!   joined with the next one while it ends in an odd number of backslashes (the backslash
//!   and line end are dropped, and so is the next line's leading whitespace).
//! - Whitespace is space, tab and form feed. Blank lines are skipped, and so are comment
//!   lines: those whose first non-whitespace character is `#` or `!` (a comment never
//!   continues onto the next line).
//! - The key runs to the first unescaped `=`, `:` or whitespace; then whitespace, at most
//!   one `=` or `:`, and more whitespace are skipped; the rest of the line is the value
//!   (trailing whitespace included).
//! - In keys and values `\t`, `\n`, `\r`, `\f` and `\uXXXX` (UTF-16, surrogate pairs
//!   joined) are escapes; a backslash before any other character stands for that
//!   character (`\=`, `\:`, `\ `, `\#`, `\\`). A malformed `\u` escape is an error.
//! - A later line with the same key replaces the earlier one.
//!
//! The bytes are read as UTF-8 when they are valid UTF-8 (a leading byte order mark is
//! dropped), else as ISO-8859-1, the encoding of `Properties.load(InputStream)`: a file
//! that is ASCII with `\u` escapes, as Java's tools write them, reads the same either way.
//!
//! # Config providers (as Kafka's `ConfigTransformer`)
//!
//! `config.providers` names aliases, and `config.providers.<alias>.class` the provider of
//! each: Kafka's `EnvVarConfigProvider`, `FileConfigProvider` or `DirectoryConfigProvider`.
//! Every value may then hold references `${<alias>:<key>}` (an environment variable) or
//! `${<alias>:<path>:<key>}` (the property `key` of the properties file `path`, or the file
//! `key` in the directory `path`), replaced by what they name. A reference to an alias not
//! configured stays as written, as in Kafka; one that names nothing (an unset variable, a
//! missing file or key) is an error, where Kafka would leave the reference in place. Errors
//! name properties, variables and files, never the values they hold.

use std::path::Path;

use crate::error::Error;

/// Kafka's environment variable provider.
const ENV_PROVIDER: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
/// Kafka's properties file provider.
const FILE_PROVIDER: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
/// Kafka's directory provider (one file per key).
const DIRECTORY_PROVIDER: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

/// Decodes a properties file's bytes: UTF-8 when valid (without a byte order mark), else
/// ISO-8859-1.
pub(crate) fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.strip_prefix('\u{feff}').unwrap_or(text).to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The `(key, value)` entries of properties text, in file order (a repeated key appears
/// each time; the last one wins when they are applied in order).
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>, Error> {
    let chars: Vec<char> = text.chars().collect();
    let mut entries = Vec::new();
    let mut i = 0;
    let mut line = 1;
    'lines: loop {
        i = skip_whitespace(&chars, i);
        let Some(&c) = chars.get(i) else {
            break;
        };
        if c == '\n' || c == '\r' {
            i = line_end(&chars, i);
            line += 1;
            continue;
        }
        if c == '#' || c == '!' {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            continue;
        }
        let first_line = line;
        let mut logical: Vec<char> = Vec::new();
        // Consecutive backslashes at the end of `logical` so far.
        let mut backslashes = 0usize;
        loop {
            let Some(&c) = chars.get(i) else {
                if backslashes % 2 == 1 {
                    logical.pop(); // a continuation with nothing after it
                }
                break;
            };
            if c == '\n' || c == '\r' {
                i = line_end(&chars, i);
                line += 1;
                if backslashes % 2 == 0 {
                    break;
                }
                logical.pop();
                backslashes = 0;
                if logical.is_empty() {
                    // Nothing before the continuation: the next line starts afresh (it may
                    // be blank or a comment), as in Java.
                    continue 'lines;
                }
                i = skip_whitespace(&chars, i);
                continue;
            }
            logical.push(c);
            backslashes = if c == '\\' { backslashes + 1 } else { 0 };
            i += 1;
        }
        let (key, value) = split(&logical);
        let at = |e: String| Error::Config(format!("properties line {first_line}: {e}"));
        entries.push((unescape(key).map_err(at)?, unescape(value).map_err(at)?));
    }
    Ok(entries)
}

/// Reads and parses the properties file at `path`.
pub(crate) fn read_file(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "cannot read properties file {}: {e}",
            path.display()
        ))
    })?;
    parse(&decode(&bytes)).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
        other => other,
    })
}

fn is_whitespace(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

fn skip_whitespace(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|&c| is_whitespace(c)) {
        i += 1;
    }
    i
}

/// Past the line end at `i` (`\n`, `\r` or `\r\n`).
fn line_end(chars: &[char], i: usize) -> usize {
    if chars[i] == '\r' && chars.get(i + 1) == Some(&'\n') {
        i + 2
    } else {
        i + 1
    }
}

/// A logical line's key and value, still escaped.
fn split(line: &[char]) -> (&[char], &[char]) {
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut separator = false;
    let mut escaped = false;
    for (i, &c) in line.iter().enumerate() {
        if !escaped && (c == '=' || c == ':') {
            (key_end, value_start, separator) = (i, i + 1, true);
            break;
        }
        if !escaped && is_whitespace(c) {
            (key_end, value_start) = (i, i + 1);
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    while let Some(&c) = line.get(value_start) {
        if is_whitespace(c) {
            value_start += 1;
        } else if !separator && (c == '=' || c == ':') {
            separator = true;
            value_start += 1;
        } else {
            break;
        }
    }
    (&line[..key_end], &line[value_start..])
}

/// Resolves the escapes of a key or value.
fn unescape(s: &[char]) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    // A high surrogate from a `\u` escape, waiting for its low half.
    let mut high: Option<u32> = None;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        let unit = if c == '\\' {
            let Some(&e) = s.get(i) else {
                break; // a lone backslash at the end stands for nothing
            };
            i += 1;
            match e {
                'u' => {
                    // The error quotes nothing: the value may be a secret.
                    let digits = s.get(i..i + 4).unwrap_or_default();
                    let unit = digits
                        .iter()
                        .all(char::is_ascii_hexdigit)
                        .then(|| {
                            digits
                                .iter()
                                .fold(0, |n, c| n * 16 + c.to_digit(16).unwrap_or(0))
                        })
                        .filter(|_| digits.len() == 4)
                        .ok_or_else(|| {
                            "malformed \\uxxxx escape (four hex digits expected)".to_owned()
                        })?;
                    i += 4;
                    Some(unit)
                }
                other => {
                    flush_surrogate(&mut out, &mut high);
                    out.push(match other {
                        't' => '\t',
                        'n' => '\n',
                        'r' => '\r',
                        'f' => '\x0c',
                        c => c,
                    });
                    None
                }
            }
        } else {
            flush_surrogate(&mut out, &mut high);
            out.push(c);
            None
        };
        let Some(unit) = unit else {
            continue;
        };
        match (high.take(), unit) {
            (Some(h), 0xDC00..=0xDFFF) => {
                let code = 0x10000 + ((h - 0xD800) << 10) + (unit - 0xDC00);
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            (h, _) => {
                if h.is_some() {
                    out.push(char::REPLACEMENT_CHARACTER);
                }
                if (0xD800..=0xDBFF).contains(&unit) {
                    high = Some(unit);
                } else {
                    out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
            }
        }
    }
    flush_surrogate(&mut out, &mut high);
    Ok(out)
}

/// A high surrogate with no low half after it stands for U+FFFD (Rust strings hold no
/// lone surrogates; Java's would).
fn flush_surrogate(out: &mut String, high: &mut Option<u32>) {
    if high.take().is_some() {
        out.push(char::REPLACEMENT_CHARACTER);
    }
}

/// What a config provider alias reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Env,
    File,
    Directory,
}

/// Takes the `config.providers*` entries out of `entries` and replaces the references to
/// the providers they configure in the other values (see the module docs).
pub(crate) fn resolve_providers(
    entries: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, Error> {
    let (provider_entries, entries): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(k, _)| k == "config.providers" || k.starts_with("config.providers."));
    let last = |name: &str| {
        provider_entries
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    let aliases: Vec<&str> = last("config.providers")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut providers: Vec<(&str, Provider)> = Vec::new();
    for &alias in &aliases {
        let class_property = format!("config.providers.{alias}.class");
        let provider = match last(&class_property) {
            Some(ENV_PROVIDER) => Provider::Env,
            Some(FILE_PROVIDER) => Provider::File,
            Some(DIRECTORY_PROVIDER) => Provider::Directory,
            Some(other) => {
                return Err(Error::Config(format!(
                    "{class_property}={other} is not a config provider this client has: \
                     {ENV_PROVIDER}, {FILE_PROVIDER} and {DIRECTORY_PROVIDER} are"
                )))
            }
            None => {
                return Err(Error::Config(format!(
                    "config.providers names {alias:?} but {class_property} is not set"
                )))
            }
        };
        providers.push((alias, provider));
    }
    for (name, _) in &provider_entries {
        let Some(rest) = name.strip_prefix("config.providers.") else {
            continue;
        };
        let (alias, what) = rest.split_once('.').unwrap_or((rest, ""));
        if !aliases.contains(&alias) {
            log::warn!("ignoring property {name}: config.providers does not name {alias:?}");
        } else if what != "class" {
            return Err(Error::Config(format!(
                "property {name} is not supported: this client's config providers take no \
                 parameters"
            )));
        }
    }
    if providers.is_empty() {
        return Ok(entries);
    }
    entries
        .into_iter()
        .map(|(name, value)| {
            let value = substitute(&name, &value, &providers)?;
            Ok((name, value))
        })
        .collect()
}

/// `value` of property `name` with its references to `providers` replaced.
fn substitute(name: &str, value: &str, providers: &[(&str, Provider)]) -> Result<String, Error> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let reference = &after[..end];
        let resolved = match reference.split_once(':') {
            Some((alias, target)) => match providers.iter().find(|(a, _)| *a == alias) {
                Some(&(_, provider)) => Some(lookup(name, alias, provider, target)?),
                None => None,
            },
            None => None,
        };
        match resolved {
            Some(text) => out.push_str(&text),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The text a reference `${alias:target}` in property `name` stands for.
fn lookup(name: &str, alias: &str, provider: Provider, target: &str) -> Result<String, Error> {
    let (path, key) = match target.split_once(':') {
        // An empty path is no path, as in Kafka (`${env::VAR}`).
        Some(("", key)) => (None, key),
        Some((path, key)) => (Some(path), key),
        None => (None, target),
    };
    let fail = |why: String| {
        Error::Config(format!(
            "property {name}: reference ${{{alias}:{target}}}: {why}"
        ))
    };
    match (provider, path) {
        (Provider::Env, None) => match std::env::var(key) {
            Ok(v) => Ok(v),
            Err(std::env::VarError::NotPresent) => {
                Err(fail(format!("environment variable {key} is not set")))
            }
            Err(std::env::VarError::NotUnicode(_)) => Err(fail(format!(
                "environment variable {key} is not valid Unicode"
            ))),
        },
        (Provider::Env, Some(_)) => Err(fail(
            "the environment provider takes a variable name, not a path".to_owned(),
        )),
        (Provider::File, Some(path)) => {
            let entries = read_file(Path::new(path)).map_err(|e| fail(e.to_string()))?;
            entries
                .into_iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .ok_or_else(|| fail(format!("{path} has no property {key}")))
        }
        (Provider::Directory, Some(dir)) => {
            if key.contains(['/', '\\']) || key == ".." || key == "." {
                return Err(fail(format!("{key:?} is not a file name")));
            }
            let file = Path::new(dir).join(key);
            std::fs::read_to_string(&file)
                .map_err(|e| fail(format!("cannot read {}: {e}", file.display())))
        }
        (Provider::File | Provider::Directory, None) => Err(fail(
            "expected ${alias:path:key}: this provider needs a path".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text =
            "# a comment\n! another\n\n   \t\na=1\nb: 2\nc 3\nd\t =  4  \ne\n  f = = 5\ng:=6\n";
        assert_eq!(
            pairs(text),
            vec![
                kv("a", "1"),
                kv("b", "2"),
                kv("c", "3"),
                kv("d", "4  "),
                kv("e", ""),
                kv("f", "= 5"),
                kv("g", "=6"),
            ]
        );
    }

    #[test]
    fn continuation_lines_join_without_leading_whitespace() {
        let text = "sasl.jaas.config=org.Module required \\\n    username=\"u\" \\\r\n\tpassword=\"p\";\nnext=1\r\nlast=x\\\\\nend=\\";
        assert_eq!(
            pairs(text),
            vec![
                kv(
                    "sasl.jaas.config",
                    "org.Module required username=\"u\" password=\"p\";"
                ),
                kv("next", "1"),
                kv("last", "x\\"),
                kv("end", ""),
            ]
        );
    }

    #[test]
    fn a_comment_does_not_continue_and_a_continued_line_may_start_with_a_hash() {
        let text = "# comment \\\na=1 \\\n  # not a comment\n";
        assert_eq!(pairs(text), vec![kv("a", "1 # not a comment")]);
    }

    #[test]
    fn escapes_in_keys_and_values() {
        let text =
            "key\\ with\\=odd\\:chars = tab\\there\\nnl \\u00e9\\u0041\\q\\\\ \\uD83D\\uDE00\n";
        assert_eq!(
            pairs(text),
            vec![kv("key with=odd:chars", "tab\there\nnl éAq\\ 😀")]
        );
        assert_eq!(pairs("a=\\uD83Dx"), vec![kv("a", "\u{fffd}x")]);
    }

    #[test]
    fn a_malformed_unicode_escape_names_its_line() {
        let e = parse("ok=1\n\nbad=\\u12G4\n").unwrap_err();
        assert!(
            e.to_string().contains("line 3") && e.to_string().contains("\\uxxxx"),
            "{e}"
        );
        assert!(parse("bad=\\u12").is_err());
    }

    #[test]
    fn a_line_left_empty_by_a_continuation_starts_afresh_as_in_java() {
        // Checked against JDK 17's Properties.load.
        assert_eq!(pairs("\\\n\nb=2"), vec![kv("b", "2")]);
        assert_eq!(pairs("\\\n#c\n"), vec![]);
        assert_eq!(pairs("  \\\n  !c\na=1"), vec![kv("a", "1")]);
    }

    #[test]
    fn a_unicode_escape_takes_hex_digits_only_and_its_error_quotes_nothing() {
        assert!(
            parse("a=\\u+041").is_err(),
            "Java: Malformed \\uxxxx encoding"
        );
        let e = parse("sasl.jaas.config=x password=\"p\\user12\";").unwrap_err();
        assert!(
            !e.to_string().contains("ser1"),
            "a secret's characters: {e}"
        );
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn an_environment_reference_may_have_an_empty_path_as_in_kafka() {
        let path = std::env::var("PATH").expect("PATH is set");
        let entries = vec![
            kv("config.providers", "env"),
            kv("config.providers.env.class", ENV_PROVIDER),
            kv("client.id", "${env::PATH}"),
        ];
        assert_eq!(
            resolve_providers(entries).unwrap(),
            vec![kv("client.id", &path)]
        );
    }

    #[test]
    fn the_same_key_twice_keeps_both_in_order() {
        assert_eq!(pairs("a=1\na=2"), vec![kv("a", "1"), kv("a", "2")]);
    }

    #[test]
    fn bytes_decode_as_utf8_else_latin1() {
        assert_eq!(decode("\u{feff}a=é".as_bytes()), "a=é");
        assert_eq!(decode(b"a=\xe9"), "a=é");
    }

    #[test]
    fn environment_references_resolve_through_a_configured_provider() {
        let path = std::env::var("PATH").expect("PATH is set");
        let entries = vec![
            kv("config.providers", "env"),
            kv("config.providers.env.class", ENV_PROVIDER),
            kv("sasl.jaas.config", "user password=\"${env:PATH}\";"),
            kv("client.id", "${other:X} ${env"),
        ];
        assert_eq!(
            resolve_providers(entries).unwrap(),
            vec![
                kv("sasl.jaas.config", &format!("user password=\"{path}\";")),
                kv("client.id", "${other:X} ${env"),
            ]
        );
        let unset = vec![
            kv("config.providers", "env"),
            kv("config.providers.env.class", ENV_PROVIDER),
            kv("sasl.jaas.config", "${env:KP_PROPERTIES_TEST_UNSET}"),
        ];
        let e = resolve_providers(unset).unwrap_err().to_string();
        assert!(e.contains("KP_PROPERTIES_TEST_UNSET is not set"), "{e}");
    }

    #[test]
    fn references_without_providers_stay_as_written() {
        let entries = vec![kv("client.id", "${env:HOME}")];
        assert_eq!(resolve_providers(entries.clone()).unwrap(), entries);
    }

    #[test]
    fn file_and_directory_references() {
        let dir = std::env::temp_dir().join(format!("kp-properties-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secrets.properties");
        std::fs::write(&file, "password = from-file\n").unwrap();
        std::fs::write(dir.join("token"), "from-dir").unwrap();
        let entries = vec![
            kv("config.providers", "file, dir"),
            kv("config.providers.file.class", FILE_PROVIDER),
            kv("config.providers.dir.class", DIRECTORY_PROVIDER),
            kv("a", &format!("${{file:{}:password}}", file.display())),
            kv("b", &format!("<${{dir:{}:token}}>", dir.display())),
        ];
        let resolved = resolve_providers(entries).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(resolved, vec![kv("a", "from-file"), kv("b", "<from-dir>")]);
    }

    #[test]
    fn unknown_provider_classes_and_parameters_are_errors() {
        let class = vec![
            kv("config.providers", "vault"),
            kv("config.providers.vault.class", "com.example.Vault"),
        ];
        assert!(resolve_providers(class)
            .unwrap_err()
            .to_string()
            .contains("com.example.Vault"));
        let missing = vec![kv("config.providers", "env")];
        assert!(resolve_providers(missing).is_err());
        let param = vec![
            kv("config.providers", "env"),
            kv("config.providers.env.class", ENV_PROVIDER),
            kv("config.providers.env.param.allowlist.pattern", ".*"),
        ];
        assert!(resolve_providers(param)
            .unwrap_err()
            .to_string()
            .contains("allowlist.pattern"));
    }
}
