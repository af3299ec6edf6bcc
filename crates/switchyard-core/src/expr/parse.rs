//! Recursive-descent parser for condition expressions.

use super::{BinOp, Func, Node};

/// A syntax error or an unknown name, with the 1-based column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Ident(String),
    Op(&'static str),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Comma,
    End,
}

const OPERATORS: [&str; 15] = [
    "&&", "||", "<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "!", "and", "or",
];

fn tokenize(src: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                i += 1;
                if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                    i += 1;
                }
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text = &src[start..i];
            let n = text.parse::<f64>().map_err(|_| ParseError {
                column,
                message: format!("`{text}` is not a number"),
            })?;
            tokens.push((Token::Number(n), column));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &src[start..i];
            let token = match word {
                "and" => Token::Op("&&"),
                "or" => Token::Op("||"),
                "not" => Token::Op("!"),
                _ => Token::Ident(word.to_string()),
            };
            tokens.push((token, column));
            continue;
        }
        let single = match c {
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            '[' => Some(Token::OpenBracket),
            ']' => Some(Token::CloseBracket),
            ',' => Some(Token::Comma),
            _ => None,
        };
        if let Some(t) = single {
            tokens.push((t, column));
            i += 1;
            continue;
        }
        let op = OPERATORS.iter().find(|op| {
            op.is_ascii() && src[i..].starts_with(**op) && !op.starts_with(char::is_alphabetic)
        });
        match op {
            Some(op) => {
                tokens.push((Token::Op(op), column));
                i += op.len();
            }
            None => {
                return Err(ParseError {
                    column,
                    message: format!("unexpected character `{c}`"),
                });
            }
        }
    }
    tokens.push((Token::End, src.len() + 1));
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    variables: &'a [&'a str],
}

pub(super) fn parse(src: &str, variables: &[&str]) -> Result<Node, ParseError> {
    if src.trim().is_empty() {
        return Err(ParseError {
            column: 1,
            message: "the expression is empty".into(),
        });
    }
    let mut p = Parser {
        tokens: tokenize(src)?,
        pos: 0,
        variables,
    };
    let node = p.or()?;
    match p.peek() {
        Token::End => Ok(node),
        t => Err(p.error(format!("unexpected {}", describe(t)))),
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Number(n) => format!("number {n}"),
        Token::Ident(s) => format!("`{s}`"),
        Token::Op(o) => format!("`{o}`"),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::OpenBracket => "`[`".into(),
        Token::CloseBracket => "`]`".into(),
        Token::Comma => "`,`".into(),
        Token::End => "end of expression".into(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].0
    }

    fn column(&self) -> usize {
        self.tokens[self.pos.min(self.tokens.len() - 1)].1
    }

    fn error(&self, message: String) -> ParseError {
        ParseError {
            column: self.column(),
            message,
        }
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: &Token, what: &str) -> Result<(), ParseError> {
        if self.peek() == want {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", describe(self.peek()))))
        }
    }

    fn binary_level(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Node, ParseError>,
        chain: bool,
    ) -> Result<Node, ParseError> {
        let mut left = next(self)?;
        loop {
            let op = match self.peek() {
                Token::Op(o) => ops.iter().find(|(s, _)| s == o).map(|(_, op)| *op),
                _ => None,
            };
            let Some(op) = op else { return Ok(left) };
            self.pos += 1;
            let right = next(self)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
            if !chain {
                return Ok(left);
            }
        }
    }

    fn or(&mut self) -> Result<Node, ParseError> {
        self.binary_level(&[("||", BinOp::Or)], Self::and, true)
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        self.binary_level(&[("&&", BinOp::And)], Self::not, true)
    }

    fn not(&mut self) -> Result<Node, ParseError> {
        if self.peek() == &Token::Op("!") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ParseError> {
        let ops = [
            ("<", BinOp::Lt),
            ("<=", BinOp::Le),
            (">", BinOp::Gt),
            (">=", BinOp::Ge),
            ("==", BinOp::Eq),
            ("!=", BinOp::Ne),
        ];
        self.binary_level(&ops, Self::sum, false)
    }

    fn sum(&mut self) -> Result<Node, ParseError> {
        self.binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::product, true)
    }

    fn product(&mut self) -> Result<Node, ParseError> {
        self.binary_level(&[("*", BinOp::Mul), ("/", BinOp::Div)], Self::unary, true)
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.peek() == &Token::Op("-") {
            self.pos += 1;
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        let mut node = self.primary()?;
        while self.peek() == &Token::OpenBracket {
            self.pos += 1;
            let index = self.or()?;
            self.expect(&Token::CloseBracket, "`]`")?;
            node = Node::Index(Box::new(node), Box::new(index));
        }
        Ok(node)
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let column = self.column();
        match self.bump() {
            Token::Number(n) => Ok(Node::Number(n)),
            Token::Open => {
                let inner = self.or()?;
                self.expect(&Token::Close, "`)`")?;
                Ok(inner)
            }
            Token::Ident(name) => self.identifier(name, column),
            t => {
                self.pos -= 1;
                Err(self.error(format!("expected a value, found {}", describe(&t))))
            }
        }
    }

    fn identifier(&mut self, name: String, column: usize) -> Result<Node, ParseError> {
        match name.as_str() {
            "true" => return Ok(Node::Bool(true)),
            "false" => return Ok(Node::Bool(false)),
            "NaN" => return Ok(Node::Number(f64::NAN)),
            _ => {}
        }
        if self.peek() == &Token::Open {
            let func = match name.as_str() {
                "len" => Func::Len,
                "isNaN" => Func::IsNaN,
                "isInf" => Func::IsInf,
                "abs" => Func::Abs,
                "min" => Func::Min,
                "max" => Func::Max,
                _ => {
                    return Err(ParseError {
                        column,
                        message: format!(
                            "unknown function `{name}` (known: len, isNaN, isInf, abs, min, max)"
                        ),
                    });
                }
            };
            self.pos += 1;
            let mut args = Vec::new();
            if self.peek() != &Token::Close {
                loop {
                    args.push(self.or()?);
                    if self.peek() == &Token::Comma {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
            self.expect(&Token::Close, "`)` or `,`")?;
            let arity_ok = match func {
                Func::Min | Func::Max => !args.is_empty(),
                _ => args.len() == 1,
            };
            if !arity_ok {
                return Err(ParseError {
                    column,
                    message: format!(
                        "`{name}` takes {}",
                        if matches!(func, Func::Min | Func::Max) {
                            "at least one argument"
                        } else {
                            "one argument"
                        }
                    ),
                });
            }
            return Ok(Node::Call(func, args));
        }
        if self.variables.contains(&name.as_str()) {
            Ok(Node::Var(name))
        } else {
            Err(ParseError {
                column,
                message: format!(
                    "unknown name `{name}` (known: {})",
                    self.variables.join(", ")
                ),
            })
        }
    }
}
