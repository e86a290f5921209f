//! A Pratt parser from tokens to [`Expr`], following the binding powers of the JMESPath grammar.

use super::ast::{Comparator, Expr, ExprKind, Span};
use super::error::ParseError;
use super::lexer::{Tok, Token, tokenize};

/// Projections stop at tokens that bind less tightly than this (pipes, `||`, comparators, ...).
const PROJECTION_STOP: u8 = 10;

fn binding_power(tok: &Tok) -> u8 {
    match tok {
        Tok::Pipe => 1,
        Tok::Or => 2,
        Tok::And => 3,
        Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => 5,
        Tok::Flatten => 9,
        Tok::Star => 20,
        Tok::Filter => 21,
        Tok::Dot => 40,
        Tok::Not => 45,
        Tok::LBrace => 50,
        Tok::LBracket => 55,
        Tok::LParen => 60,
        _ => 0,
    }
}

pub(crate) fn parse(src: &str, max_depth: usize) -> Result<Expr, ParseError> {
    let tokens = tokenize(src)?;
    let mut parser = Parser { tokens, pos: 0, depth: 0, max_depth };
    let expr = parser.expression(0)?;
    let token = parser.current();
    if token.tok != Tok::Eof {
        return Err(ParseError::new(token.span.start, format!("unexpected {}", token.tok.describe())));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    max_depth: usize,
}

fn node(kind: ExprKind, span: Span) -> Expr {
    Expr { kind, span }
}

fn boxed(kind: ExprKind, span: Span) -> Box<Expr> {
    Box::new(node(kind, span))
}

impl Parser {
    fn current(&self) -> Token {
        self.lookahead(0)
    }

    fn lookahead(&self, n: usize) -> Token {
        // The token list always ends with `Eof`, so running past it keeps answering `Eof`.
        self.tokens
            .get(self.pos + n)
            .or_else(|| self.tokens.last())
            .cloned()
            .unwrap_or(Token { tok: Tok::Eof, span: Span::default() })
    }

    fn advance(&mut self) -> Token {
        let token = self.current();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn expect(&mut self, tok: Tok) -> Result<Token, ParseError> {
        let token = self.current();
        if token.tok == tok {
            Ok(self.advance())
        } else {
            Err(self.unexpected(&token, &format!("expected {}", tok.describe())))
        }
    }

    fn unexpected(&self, token: &Token, hint: &str) -> ParseError {
        ParseError::new(token.span.start, format!("unexpected {}, {hint}", token.tok.describe()))
    }

    /// Counts one more level of nesting. Both recursion and each operator applied in a loop
    /// (`a.b.c` nests to the left without recursing) count, so the depth bounds the tree too;
    /// dropping or walking a tree recursively is then safe.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            let at = self.current().span.start;
            return Err(ParseError::new(at, "expression too deeply nested"));
        }
        Ok(())
    }

    fn expression(&mut self, rbp: u8) -> Result<Expr, ParseError> {
        let outer = self.depth;
        self.enter()?;
        let token = self.advance();
        let mut left = self.nud(token)?;
        while rbp < binding_power(&self.current().tok) {
            self.enter()?;
            let token = self.advance();
            left = self.led(token, left)?;
        }
        self.depth = outer;
        Ok(left)
    }

    fn nud(&mut self, token: Token) -> Result<Expr, ParseError> {
        let span = token.span;
        match token.tok {
            Tok::Literal(value) => Ok(node(ExprKind::Literal(value), span)),
            Tok::Identifier(name) => Ok(node(ExprKind::Field(name), span)),
            Tok::QuotedIdentifier(name) => {
                if self.current().tok == Tok::LParen {
                    return Err(ParseError::new(span.start, "a function name cannot be quoted"));
                }
                Ok(node(ExprKind::Field(name), span))
            }
            Tok::At => Ok(node(ExprKind::Current, span)),
            Tok::Star => {
                let left = boxed(ExprKind::Current, span);
                let right = if self.current().tok == Tok::RBracket {
                    boxed(ExprKind::Current, span)
                } else {
                    Box::new(self.projection_rhs(binding_power(&Tok::Star))?)
                };
                let span = span.to(right.span);
                Ok(node(ExprKind::ValueProjection(left, right), span))
            }
            Tok::Filter => self.filter(node(ExprKind::Current, span), span),
            Tok::LBrace => self.multi_hash(span),
            Tok::LParen => {
                let inner = self.expression(0)?;
                let close = self.expect(Tok::RParen)?;
                Ok(Expr { kind: inner.kind, span: span.to(close.span) })
            }
            Tok::Flatten => {
                let left = boxed(ExprKind::Flatten(boxed(ExprKind::Current, span)), span);
                let right = Box::new(self.projection_rhs(binding_power(&Tok::Flatten))?);
                let span = span.to(right.span);
                Ok(node(ExprKind::Projection(left, right), span))
            }
            Tok::Not => {
                let inner = self.expression(binding_power(&Tok::Not))?;
                let span = span.to(inner.span);
                Ok(node(ExprKind::Not(Box::new(inner)), span))
            }
            Tok::LBracket => {
                let next = self.current().tok;
                if matches!(next, Tok::Number(_) | Tok::Colon) {
                    let index = self.index_expression(span)?;
                    self.project_if_slice(node(ExprKind::Current, span), index)
                } else if next == Tok::Star && self.lookahead(1).tok == Tok::RBracket {
                    self.advance();
                    let close = self.advance();
                    let right = Box::new(self.projection_rhs(binding_power(&Tok::Star))?);
                    let span = span.to(close.span).to(right.span);
                    Ok(node(ExprKind::Projection(boxed(ExprKind::Current, span), right), span))
                } else {
                    self.multi_list(span)
                }
            }
            Tok::Ampersand => {
                let inner = self.expression(0)?;
                let span = span.to(inner.span);
                Ok(node(ExprKind::ExprRef(Box::new(inner)), span))
            }
            other => Err(ParseError::new(
                span.start,
                format!("unexpected {}, expected an expression", other.describe()),
            )),
        }
    }

    fn led(&mut self, token: Token, left: Expr) -> Result<Expr, ParseError> {
        let op_span = token.span;
        match token.tok {
            Tok::Dot => {
                if self.current().tok == Tok::Star {
                    self.advance();
                    let right = Box::new(self.projection_rhs(binding_power(&Tok::Dot))?);
                    let span = left.span.to(right.span).to(op_span);
                    Ok(node(ExprKind::ValueProjection(Box::new(left), right), span))
                } else {
                    let right = self.dot_rhs(binding_power(&Tok::Dot))?;
                    let span = left.span.to(right.span);
                    Ok(node(ExprKind::Subexpr(Box::new(left), Box::new(right)), span))
                }
            }
            Tok::Pipe | Tok::Or | Tok::And => {
                let right = self.expression(binding_power(&token.tok))?;
                let span = left.span.to(right.span);
                let (l, r) = (Box::new(left), Box::new(right));
                let kind = match token.tok {
                    Tok::Pipe => ExprKind::Pipe(l, r),
                    Tok::Or => ExprKind::Or(l, r),
                    _ => ExprKind::And(l, r),
                };
                Ok(node(kind, span))
            }
            Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => {
                let op = match token.tok {
                    Tok::Eq => Comparator::Eq,
                    Tok::Ne => Comparator::Ne,
                    Tok::Lt => Comparator::Lt,
                    Tok::Le => Comparator::Le,
                    Tok::Gt => Comparator::Gt,
                    _ => Comparator::Ge,
                };
                let right = self.expression(binding_power(&token.tok))?;
                let span = left.span.to(right.span);
                Ok(node(ExprKind::Compare(op, Box::new(left), Box::new(right)), span))
            }
            Tok::LParen => self.call(left),
            Tok::Filter => self.filter(left, op_span),
            Tok::Flatten => {
                let flat_span = left.span.to(op_span);
                let flat = boxed(ExprKind::Flatten(Box::new(left)), flat_span);
                let right = Box::new(self.projection_rhs(binding_power(&Tok::Flatten))?);
                let span = flat_span.to(right.span);
                Ok(node(ExprKind::Projection(flat, right), span))
            }
            Tok::LBracket => {
                let next = self.current().tok;
                if matches!(next, Tok::Number(_) | Tok::Colon) {
                    let index = self.index_expression(op_span)?;
                    self.project_if_slice(left, index)
                } else {
                    self.expect(Tok::Star)?;
                    let close = self.expect(Tok::RBracket)?;
                    let right = Box::new(self.projection_rhs(binding_power(&Tok::Star))?);
                    let span = left.span.to(close.span).to(right.span);
                    Ok(node(ExprKind::Projection(Box::new(left), right), span))
                }
            }
            other => Err(ParseError::new(op_span.start, format!("unexpected {}", other.describe()))),
        }
    }

    fn call(&mut self, callee: Expr) -> Result<Expr, ParseError> {
        let name = match callee.kind {
            ExprKind::Field(name) => name,
            _ => return Err(ParseError::new(callee.span.start, "only a plain name can be called as a function")),
        };
        let mut args = Vec::new();
        while self.current().tok != Tok::RParen {
            args.push(self.expression(0)?);
            if self.current().tok == Tok::Comma {
                self.advance();
                if self.current().tok == Tok::RParen {
                    let token = self.current();
                    return Err(self.unexpected(&token, "expected an argument after `,`"));
                }
            } else if self.current().tok != Tok::RParen {
                let token = self.current();
                return Err(self.unexpected(&token, "expected `,` or `)`"));
            }
        }
        let close = self.advance();
        let span = callee.span.to(close.span);
        Ok(node(ExprKind::Call { name, name_span: callee.span, args }, span))
    }

    fn filter(&mut self, left: Expr, open: Span) -> Result<Expr, ParseError> {
        let cond = self.expression(0)?;
        let close = self.expect(Tok::RBracket)?;
        let rhs = if self.current().tok == Tok::Flatten {
            node(ExprKind::Current, close.span)
        } else {
            self.projection_rhs(binding_power(&Tok::Filter))?
        };
        let span = left.span.to(open).to(close.span).to(rhs.span);
        Ok(node(
            ExprKind::FilterProjection { lhs: Box::new(left), rhs: Box::new(rhs), cond: Box::new(cond) },
            span,
        ))
    }

    fn index_expression(&mut self, open: Span) -> Result<Expr, ParseError> {
        let is_slice = self.current().tok == Tok::Colon || self.lookahead(1).tok == Tok::Colon;
        if !is_slice {
            let token = self.advance();
            let Tok::Number(n) = token.tok else {
                return Err(self.unexpected(&token, "expected an index"));
            };
            let close = self.expect(Tok::RBracket)?;
            return Ok(node(ExprKind::Index(n), open.to(close.span)));
        }
        let mut parts = [None, None, None];
        let mut index = 0;
        loop {
            let token = self.current();
            match token.tok {
                Tok::RBracket => break,
                Tok::Colon => {
                    index += 1;
                    if index >= parts.len() {
                        return Err(self.unexpected(&token, "a slice has at most three parts"));
                    }
                    self.advance();
                }
                Tok::Number(n) => {
                    if let Some(part) = parts.get_mut(index) {
                        *part = Some(n);
                    }
                    self.advance();
                }
                _ => return Err(self.unexpected(&token, "expected a number, `:` or `]`")),
            }
        }
        let close = self.expect(Tok::RBracket)?;
        let [start, stop, step] = parts;
        Ok(node(ExprKind::Slice { start, stop, step }, open.to(close.span)))
    }

    fn project_if_slice(&mut self, left: Expr, index: Expr) -> Result<Expr, ParseError> {
        let is_slice = matches!(index.kind, ExprKind::Slice { .. });
        let span = left.span.to(index.span);
        let indexed = node(ExprKind::Subexpr(Box::new(left), Box::new(index)), span);
        if !is_slice {
            return Ok(indexed);
        }
        let right = self.projection_rhs(binding_power(&Tok::Star))?;
        let span = span.to(right.span);
        Ok(node(ExprKind::Projection(Box::new(indexed), Box::new(right)), span))
    }

    fn projection_rhs(&mut self, rbp: u8) -> Result<Expr, ParseError> {
        let token = self.current();
        if binding_power(&token.tok) < PROJECTION_STOP {
            return Ok(node(ExprKind::Current, Span::new(token.span.start, token.span.start)));
        }
        match token.tok {
            Tok::LBracket | Tok::Filter => self.expression(rbp),
            Tok::Dot => {
                self.advance();
                self.dot_rhs(rbp)
            }
            _ => Err(self.unexpected(&token, "expected `.`, `[` or `[?` after a projection")),
        }
    }

    fn dot_rhs(&mut self, rbp: u8) -> Result<Expr, ParseError> {
        let token = self.current();
        match token.tok {
            Tok::Identifier(_) | Tok::QuotedIdentifier(_) | Tok::Star => self.expression(rbp),
            Tok::LBracket => {
                self.advance();
                self.multi_list(token.span)
            }
            Tok::LBrace => {
                self.advance();
                self.multi_hash(token.span)
            }
            _ => Err(self.unexpected(&token, "expected a field name, `*`, `[` or `{` after `.`")),
        }
    }

    fn multi_list(&mut self, open: Span) -> Result<Expr, ParseError> {
        let mut items = Vec::new();
        loop {
            items.push(self.expression(0)?);
            let token = self.advance();
            match token.tok {
                Tok::Comma => continue,
                Tok::RBracket => return Ok(node(ExprKind::MultiList(items), open.to(token.span))),
                _ => return Err(self.unexpected(&token, "expected `,` or `]`")),
            }
        }
    }

    fn multi_hash(&mut self, open: Span) -> Result<Expr, ParseError> {
        let mut pairs = Vec::new();
        loop {
            let key_token = self.advance();
            let key = match key_token.tok {
                Tok::Identifier(name) | Tok::QuotedIdentifier(name) => name,
                other => {
                    let token = Token { tok: other, span: key_token.span };
                    return Err(self.unexpected(&token, "expected a key name"));
                }
            };
            self.expect(Tok::Colon)?;
            let value = self.expression(0)?;
            pairs.push((key, value));
            let token = self.advance();
            match token.tok {
                Tok::Comma => continue,
                Tok::RBrace => return Ok(node(ExprKind::MultiHash(pairs), open.to(token.span))),
                _ => return Err(self.unexpected(&token, "expected `,` or `}`")),
            }
        }
    }
}
