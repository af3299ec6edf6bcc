//! Condition expressions such as `result < 0.01` or `result <= baseline * 1.2 && result > 0`.
//!
//! A small, total language in the spirit of the `expr` conditions of Argo Rollouts: numbers,
//! booleans and lists of numbers; `+ - * /`; comparisons; `&&`/`and`, `||`/`or`, `!`/`not`;
//! indexing (`result[0]`); and the functions `len`, `isNaN`, `isInf`, `abs`, `min`, `max`.
//! Expressions are parsed once, when a manifest is read, and evaluated many times.

mod eval;
mod parse;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use eval::{EvalError, Value};
pub use parse::ParseError;

/// A parsed expression together with its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Number(f64),
    Bool(bool),
    Var(String),
    Neg(Box<Node>),
    Not(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Index(Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Len,
    IsNaN,
    IsInf,
    Abs,
    Min,
    Max,
}

impl Expr {
    /// Parses `source`, accepting only the variables in `variables`.
    ///
    /// # Errors
    /// Returns the first syntax error or unknown name, with its column (1-based).
    pub fn parse(source: &str, variables: &[&str]) -> Result<Self, ParseError> {
        let root = parse::parse(source, variables)?;
        Ok(Self {
            source: source.to_string(),
            root,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression to a boolean, looking variables up with `lookup`.
    ///
    /// # Errors
    /// Returns an error when a variable has no value or the types do not fit (comparing a list
    /// with a number, indexing past the end, a condition that is not boolean).
    pub fn eval_bool(&self, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<bool, EvalError> {
        match eval::eval(&self.root, lookup)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::NotBoolean {
                got: other.type_name(),
            }),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// An expression over `result` and `baseline`, as analysis conditions use.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition(Expr);

impl Condition {
    /// The variables a condition may use.
    pub const VARIABLES: &'static [&'static str] = &["result", "baseline"];

    /// # Errors
    /// Returns the parse error with its column.
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        Expr::parse(source, Self::VARIABLES).map(Self)
    }

    pub fn expr(&self) -> &Expr {
        &self.0
    }

    /// Evaluates the condition for a measured `result` and, if known, the `baseline`.
    ///
    /// # Errors
    /// See [`Expr::eval_bool`].
    pub fn evaluate(&self, result: &Value, baseline: Option<&Value>) -> Result<bool, EvalError> {
        self.0.eval_bool(&|name| match name {
            "result" => Some(result.clone()),
            "baseline" => baseline.cloned(),
            _ => None,
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.source())
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Condition::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("expected a condition expression: {e} in `{text}`"))
        })
    }
}

#[cfg(test)]
mod tests;
