//! The selector grammar, as PromQL writes the inside of `metric{...}`:
//! `[{] [name op string {, name op string} [,]] [}]`, strings in `"..."`, `'...'` or raw `` `...` ``.
//! A name is a legacy name (`[a-zA-Z_][a-zA-Z0-9_]*`) or, as in Prometheus 3, any quoted string
//! (`"service.name"="api"`). Positions in errors count characters from 1.

use super::{MatchOp, Matcher};

type PResult<T> = std::result::Result<T, String>;

pub(super) fn parse(input: &str) -> PResult<Vec<Matcher>> {
    let mut p = Parser {
        chars: input.chars().collect(),
        pos: 0,
    };
    p.skip_ws();
    let braced = p.eat('{');
    let mut matchers = Vec::new();
    loop {
        p.skip_ws();
        match p.peek() {
            None if braced => return Err("missing closing '}'".into()),
            None => break,
            Some('}') if braced => {
                p.pos += 1;
                break;
            }
            Some(_) => {}
        }
        matchers.push(p.matcher()?);
        p.skip_ws();
        match p.peek() {
            Some(',') => p.pos += 1,
            Some('}') if braced => {}
            None if !braced => {}
            None => return Err("missing closing '}'".into()),
            Some(c) => return Err(p.unexpected(c, "',' or '}'")),
        }
    }
    p.skip_ws();
    if let Some(c) = p.peek() {
        return Err(p.unexpected(c, "end of selector"));
    }
    Ok(matchers)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, c: char, expected: &str) -> String {
        format!(
            "unexpected {c:?} at position {}, expected {expected}",
            self.pos + 1
        )
    }

    fn matcher(&mut self) -> PResult<Matcher> {
        let start = self.pos;
        let name = self.label_name()?;
        self.skip_ws();
        let op = self.op()?;
        self.skip_ws();
        let value = self.string()?;
        Matcher::new(&name, op, &value)
            .map_err(|e| format!("{e} (matcher at position {})", start + 1))
    }

    fn label_name(&mut self) -> PResult<String> {
        let start = self.pos;
        match self.peek() {
            Some('"' | '\'' | '`') => return self.quoted_label_name(),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            Some(c) => return Err(self.unexpected(c, "a label name")),
            None => return Err("selector ends where a label name was expected".into()),
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    /// `"any UTF-8"`, as Prometheus 3 quotes a label name; alone (`{"a.b"}`) it would be a metric
    /// name, which grouping keys do not have.
    fn quoted_label_name(&mut self) -> PResult<String> {
        let start = self.pos;
        let name = self.string()?;
        let after = self.pos;
        self.skip_ws();
        let alone = matches!(self.peek(), None | Some(',' | '}'));
        self.pos = after;
        if alone {
            return Err(format!(
                "quoted name at position {} has no operator: alone it would select a metric name, \
                 and grouping keys have none; write {}=\"value\"",
                start + 1,
                super::quote(&name)
            ));
        }
        // `""` is accepted, as Prometheus 3 does: no group has such a label, so it matches as "".
        Ok(name)
    }

    fn op(&mut self) -> PResult<MatchOp> {
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('='), Some('~')) => MatchOp::RegexMatch,
            (Some('!'), Some('~')) => MatchOp::RegexNoMatch,
            (Some('!'), Some('=')) => MatchOp::NotEqual,
            (Some('='), _) => MatchOp::Equal,
            (Some(c), _) => return Err(self.unexpected(c, "one of = != =~ !~")),
            (None, _) => return Err("selector ends where an operator was expected".into()),
        };
        self.pos += op.as_str().len();
        Ok(op)
    }

    /// A quoted value with Go/PromQL escapes; backticks are raw.
    fn string(&mut self) -> PResult<String> {
        let open = self.pos;
        let quote = match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => q,
            Some(c) => return Err(self.unexpected(c, "a quoted string")),
            None => return Err("selector ends where a quoted string was expected".into()),
        };
        self.pos += 1;
        let unterminated = || format!("unterminated string starting at position {}", open + 1);
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(unterminated());
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(out),
                '\n' if quote != '`' => return Err(unterminated()),
                '\\' if quote != '`' => out.push(self.escape(quote)?),
                c => out.push(c),
            }
        }
    }

    /// The character after a backslash (already consumed), as Go's `strconv.Unquote` reads it.
    fn escape(&mut self, quote: char) -> PResult<char> {
        let at = self.pos; // position of the escape letter, 0-based
        let Some(c) = self.peek() else {
            return Err(format!("unterminated escape at position {at}"));
        };
        self.pos += 1;
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            c if c == quote => Some(c),
            _ => None,
        };
        if let Some(ch) = simple {
            return Ok(ch);
        }
        let (digits, radix) = match c {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => {
                self.pos -= 1; // the first octal digit is part of the number
                (3, 8)
            }
            _ => return Err(format!("unknown escape \\{c} at position {at}")),
        };
        let end = self.pos + digits;
        let text: String = self
            .chars
            .get(self.pos..end)
            .unwrap_or(&[])
            .iter()
            .collect();
        let code = u32::from_str_radix(&text, radix)
            .ok()
            .filter(|_| text.chars().count() == digits && text.chars().all(|d| d.is_digit(radix)))
            .ok_or_else(|| format!("escape \\{c} at position {at} needs {digits} digits"))?;
        self.pos = end;
        // Go's \x and octal escapes are bytes; only ASCII bytes form a character on their own.
        if matches!(c, 'x' | '0'..='7') && code >= 0x80 {
            return Err(format!(
                "byte escape at position {at} is not ASCII: write the character itself"
            ));
        }
        char::from_u32(code)
            .ok_or_else(|| format!("escape at position {at} is not a valid character"))
    }
}
