//! Splitting a typed line into words, with quoting.
//!
//! Words are separated by whitespace. A word may contain double- or single-quoted parts
//! (`"hello world"`, `'it''s'`, `pre"fix"`), inside which a backslash escapes: `\n`, `\r`,
//! `\t`, `\0`, `\\`, `\"`, `\'`, `\xHH` (any byte); any other escaped character stands for
//! itself. Outside quotes every character is literal. Whether a word was quoted is kept, so
//! the REPL can tell the bare word `nil` (absent) from the string `"nil"`.

/// One word of the line, as bytes (escapes may produce any byte).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The word's bytes after unquoting.
    pub bytes: Vec<u8>,
    /// Whether any part of the word was quoted.
    pub quoted: bool,
}

impl Word {
    /// The word as text (lossy), for command names and messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Why a line could not be split into words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A quote was opened and never closed.
    #[error("unterminated {0} quote")]
    Unterminated(&'static str),
    /// `\x` was not followed by two hexadecimal digits.
    #[error("invalid escape \\x: expected two hexadecimal digits")]
    BadHexEscape,
}

/// Splits a line into words.
pub fn split_words(line: &str) -> Result<Vec<Word>, ParseError> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        words.push(word(&mut chars)?);
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// Reads one word, starting at a non-space character.
fn word(chars: &mut Chars<'_>) -> Result<Word, ParseError> {
    let mut out = Word {
        bytes: Vec::new(),
        quoted: false,
    };
    while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
        match c {
            '"' | '\'' => {
                out.quoted = true;
                quoted(chars, c, &mut out.bytes)?;
            }
            _ => push_char(&mut out.bytes, c),
        }
    }
    Ok(out)
}

/// Reads a quoted part up to its closing `quote`.
fn quoted(chars: &mut Chars<'_>, quote: char, out: &mut Vec<u8>) -> Result<(), ParseError> {
    let name = if quote == '"' { "double" } else { "single" };
    loop {
        match chars.next() {
            None => return Err(ParseError::Unterminated(name)),
            Some(c) if c == quote => return Ok(()),
            Some('\\') => escape(chars, out).ok_or(ParseError::Unterminated(name))??,
            Some(c) => push_char(out, c),
        }
    }
}

/// Decodes the character after a backslash; `None` when the line ends there.
fn escape(chars: &mut Chars<'_>, out: &mut Vec<u8>) -> Option<Result<(), ParseError>> {
    let decoded = match chars.next()? {
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        '0' => '\0',
        'x' => return Some(hex_byte(chars).map(|b| out.push(b))),
        other => other,
    };
    push_char(out, decoded);
    Some(Ok(()))
}

fn hex_byte(chars: &mut Chars<'_>) -> Result<u8, ParseError> {
    let mut digit = || {
        chars
            .next_if(char::is_ascii_hexdigit)
            .and_then(|c| c.to_digit(16))
            .ok_or(ParseError::BadHexEscape)
    };
    let high = digit()?;
    let low = digit()?;
    // Two hex digits are at most 0xff.
    Ok((high * 16 + low) as u8)
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<(String, bool)> {
        split_words(line)
            .unwrap()
            .into_iter()
            .map(|w| (w.text(), w.quoted))
            .collect()
    }

    fn plain(words: &[&str]) -> Vec<(String, bool)> {
        words.iter().map(|w| (w.to_string(), false)).collect()
    }

    #[test]
    fn splits_on_whitespace() {
        assert_eq!(texts("  put  k\tv  "), plain(&["put", "k", "v"]));
        assert_eq!(texts(""), plain(&[]));
        assert_eq!(texts("   "), plain(&[]));
    }

    #[test]
    fn quotes_keep_spaces_and_mark_the_word() {
        assert_eq!(
            texts(r#"put k "hello world""#),
            vec![
                ("put".into(), false),
                ("k".into(), false),
                ("hello world".into(), true)
            ]
        );
        assert_eq!(texts("'a b'"), vec![("a b".into(), true)]);
        assert_eq!(
            texts(r#"pre"fix x"post"#),
            vec![("prefix xpost".into(), true)]
        );
        assert_eq!(texts(r#""""#), vec![(String::new(), true)]);
        assert_eq!(texts(r#""it's""#), vec![("it's".into(), true)]);
    }

    #[test]
    fn escapes_inside_quotes() {
        let words = split_words(r#""a\"b\\c\n\t\x41\x00\q" 'x\'y'"#).unwrap();
        assert_eq!(words[0].bytes, b"a\"b\\c\n\tA\0q");
        assert_eq!(words[1].bytes, b"x'y");
    }

    #[test]
    fn backslashes_outside_quotes_are_literal() {
        assert_eq!(texts(r"C:\dir\n"), plain(&[r"C:\dir\n"]));
    }

    #[test]
    fn errors() {
        assert_eq!(
            split_words(r#"put k "open"#),
            Err(ParseError::Unterminated("double"))
        );
        assert_eq!(
            split_words("put k 'open"),
            Err(ParseError::Unterminated("single"))
        );
        assert_eq!(
            split_words(r#"put k "ends with \"#),
            Err(ParseError::Unterminated("double"))
        );
        assert_eq!(split_words(r#""\xZ1""#), Err(ParseError::BadHexEscape));
        assert_eq!(split_words(r#""\x4""#), Err(ParseError::BadHexEscape));
    }

    #[test]
    fn non_ascii_survives() {
        assert_eq!(texts("put ключ 'значение ü'")[2].0, "значение ü");
    }
}
