//! Turns an expression into tokens, each with its byte span.

use serde_json::Value;

use super::ast::Span;
use super::error::ParseError;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Identifier(String),
    QuotedIdentifier(String),
    /// A backtick JSON literal or a raw string.
    Literal(Value),
    Number(i64),
    Dot,
    Star,
    Flatten,
    Filter,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Colon,
    At,
    Ampersand,
    And,
    Pipe,
    Or,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl Tok {
    /// How the parser names this token in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Identifier(name) => format!("identifier `{name}`"),
            Tok::QuotedIdentifier(name) => format!("quoted identifier {}", Value::String(name.clone())),
            Tok::Literal(_) => "literal".to_string(),
            Tok::Number(n) => format!("number `{n}`"),
            Tok::Eof => "end of expression".to_string(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Dot => ".",
            Tok::Star => "*",
            Tok::Flatten => "[]",
            Tok::Filter => "[?",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::At => "@",
            Tok::Ampersand => "&",
            Tok::And => "&&",
            Tok::Pipe => "|",
            Tok::Or => "||",
            Tok::Not => "!",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            _ => "",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer { src, pos: 0, out: Vec::new() };
    lexer.run()?;
    Ok(lexer.out)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|rest| rest.chars().next())
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.src.get(self.pos..).and_then(|rest| rest.chars().nth(ahead))
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token { tok, span: Span::new(start, self.pos) });
    }

    fn run(&mut self) -> Result<(), ParseError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            if c.is_whitespace() {
                self.pos += c.len_utf8();
                continue;
            }
            // Two-character operators first, then single characters.
            let next = self.peek_at(1);
            let two = match (c, next) {
                ('[', Some(']')) => Some(Tok::Flatten),
                ('[', Some('?')) => Some(Tok::Filter),
                ('&', Some('&')) => Some(Tok::And),
                ('|', Some('|')) => Some(Tok::Or),
                ('!', Some('=')) => Some(Tok::Ne),
                ('=', Some('=')) => Some(Tok::Eq),
                ('<', Some('=')) => Some(Tok::Le),
                ('>', Some('=')) => Some(Tok::Ge),
                _ => None,
            };
            if let Some(tok) = two {
                self.pos += 2;
                self.push(tok, start);
                continue;
            }
            let one = match c {
                '.' => Some(Tok::Dot),
                '*' => Some(Tok::Star),
                '[' => Some(Tok::LBracket),
                ']' => Some(Tok::RBracket),
                '{' => Some(Tok::LBrace),
                '}' => Some(Tok::RBrace),
                '(' => Some(Tok::LParen),
                ')' => Some(Tok::RParen),
                ',' => Some(Tok::Comma),
                ':' => Some(Tok::Colon),
                '@' => Some(Tok::At),
                '&' => Some(Tok::Ampersand),
                '|' => Some(Tok::Pipe),
                '!' => Some(Tok::Not),
                '<' => Some(Tok::Lt),
                '>' => Some(Tok::Gt),
                _ => None,
            };
            if let Some(tok) = one {
                self.pos += 1;
                self.push(tok, start);
                continue;
            }
            match c {
                'a'..='z' | 'A'..='Z' | '_' => self.identifier(start),
                '0'..='9' | '-' => self.number(start)?,
                '"' => self.quoted_identifier(start)?,
                '\'' => self.raw_string(start)?,
                '`' => self.json_literal(start)?,
                '=' => return Err(ParseError::new(start, "unexpected `=`; did you mean `==`?")),
                other => return Err(ParseError::new(start, format!("unexpected character `{other}`"))),
            }
        }
        let end = self.src.len();
        self.out.push(Token { tok: Tok::Eof, span: Span::new(end, end) });
        Ok(())
    }

    fn identifier(&mut self, start: usize) {
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let name = self.src.get(start..self.pos).unwrap_or_default().to_string();
        self.push(Tok::Identifier(name), start);
    }

    fn number(&mut self, start: usize) -> Result<(), ParseError> {
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        let digits_start = self.pos;
        while matches!(self.peek(), Some('0'..='9')) {
            self.pos += 1;
        }
        if self.pos == digits_start {
            return Err(ParseError::new(start, "expected digits after `-`"));
        }
        let text = self.src.get(start..self.pos).unwrap_or_default();
        let n = text
            .parse::<i64>()
            .map_err(|_| ParseError::new(start, format!("number `{text}` is out of range")))?;
        self.push(Tok::Number(n), start);
        Ok(())
    }

    /// Returns the text between `delim` at `start` and the next unescaped `delim`, moving past it.
    fn delimited(&mut self, start: usize, delim: char, what: &str) -> Result<&str, ParseError> {
        self.pos += 1;
        let body_start = self.pos;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == delim {
                return Ok(self.src.get(body_start..self.pos - 1).unwrap_or_default());
            }
        }
        Err(ParseError::new(start, format!("unterminated {what}")))
    }

    fn quoted_identifier(&mut self, start: usize) -> Result<(), ParseError> {
        let body = self.delimited(start, '"', "quoted identifier")?;
        let name: String = serde_json::from_str(&format!("\"{body}\""))
            .map_err(|e| ParseError::new(start, format!("invalid quoted identifier: {e}")))?;
        self.push(Tok::QuotedIdentifier(name), start);
        Ok(())
    }

    fn raw_string(&mut self, start: usize) -> Result<(), ParseError> {
        let body = self.delimited(start, '\'', "raw string")?;
        // Only `\'` is an escape in a raw string; every other backslash stays as written.
        let text = body.replace("\\'", "'");
        self.push(Tok::Literal(Value::String(text)), start);
        Ok(())
    }

    fn json_literal(&mut self, start: usize) -> Result<(), ParseError> {
        let body = self.delimited(start, '`', "JSON literal")?.replace("\\`", "`");
        let value = match serde_json::from_str::<Value>(&body) {
            Ok(value) => value,
            // Old JMESPath versions accepted unquoted strings in backticks; the suite still does.
            Err(e) => serde_json::from_str::<Value>(&format!("\"{}\"", body.trim_start()))
                .map_err(|_| ParseError::new(start, format!("invalid JSON literal: {e}")))?,
        };
        self.push(Tok::Literal(value), start);
        Ok(())
    }
}
