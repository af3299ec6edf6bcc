//! Evaluation of parsed condition expressions.

use std::fmt;

use super::{BinOp, Func, Node};

/// A value an expression works with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Bool(bool),
    List(Vec<f64>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::List(_) => "list",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(v) => write!(f, "{v:?}"),
        }
    }
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("`{name}` has no value here")]
    Unbound { name: String },
    #[error("`{op}` cannot combine a {left} with a {right}")]
    Types {
        op: &'static str,
        left: &'static str,
        right: &'static str,
    },
    #[error("index {index} is out of range for a list of {len}")]
    Index { index: f64, len: usize },
    #[error("the condition gives a {got}, not a boolean")]
    NotBoolean { got: &'static str },
}

pub(super) fn eval(
    node: &Node,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, EvalError> {
    match node {
        Node::Number(n) => Ok(Value::Number(*n)),
        Node::Bool(b) => Ok(Value::Bool(*b)),
        Node::Var(name) => lookup(name).ok_or_else(|| EvalError::Unbound { name: name.clone() }),
        Node::Neg(inner) => match eval(inner, lookup)? {
            Value::Number(n) => Ok(Value::Number(-n)),
            v => Err(EvalError::Types {
                op: "-",
                left: "number",
                right: v.type_name(),
            }),
        },
        Node::Not(inner) => match eval(inner, lookup)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            v => Err(EvalError::Types {
                op: "!",
                left: "boolean",
                right: v.type_name(),
            }),
        },
        Node::Binary(op, l, r) => binary(*op, l, r, lookup),
        Node::Index(list, index) => {
            let list = eval(list, lookup)?;
            let index = eval(index, lookup)?;
            match (&list, &index) {
                (Value::List(items), Value::Number(i)) => {
                    let valid = *i >= 0.0 && i.fract() == 0.0 && (*i as usize) < items.len();
                    if valid {
                        Ok(Value::Number(items[*i as usize]))
                    } else {
                        Err(EvalError::Index {
                            index: *i,
                            len: items.len(),
                        })
                    }
                }
                _ => Err(EvalError::Types {
                    op: "[]",
                    left: list.type_name(),
                    right: index.type_name(),
                }),
            }
        }
        Node::Call(func, args) => call(*func, args, lookup),
    }
}

fn binary(
    op: BinOp,
    l: &Node,
    r: &Node,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, EvalError> {
    // Logical operators short-circuit, so `len(result) > 0 && result[0] < 1` is safe.
    if matches!(op, BinOp::And | BinOp::Or) {
        let name = if op == BinOp::And { "&&" } else { "||" };
        let left = match eval(l, lookup)? {
            Value::Bool(b) => b,
            v => {
                return Err(EvalError::Types {
                    op: name,
                    left: v.type_name(),
                    right: "boolean",
                });
            }
        };
        if (op == BinOp::And && !left) || (op == BinOp::Or && left) {
            return Ok(Value::Bool(left));
        }
        return match eval(r, lookup)? {
            Value::Bool(b) => Ok(Value::Bool(b)),
            v => Err(EvalError::Types {
                op: name,
                left: "boolean",
                right: v.type_name(),
            }),
        };
    }
    let left = scalar(eval(l, lookup)?);
    let right = scalar(eval(r, lookup)?);
    let name = op_name(op);
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => Ok(match op {
            BinOp::Add => Value::Number(a + b),
            BinOp::Sub => Value::Number(a - b),
            BinOp::Mul => Value::Number(a * b),
            BinOp::Div => Value::Number(a / b),
            BinOp::Lt => Value::Bool(a < b),
            BinOp::Le => Value::Bool(a <= b),
            BinOp::Gt => Value::Bool(a > b),
            BinOp::Ge => Value::Bool(a >= b),
            BinOp::Eq => Value::Bool(a == b),
            BinOp::Ne => Value::Bool(a != b),
            BinOp::And | BinOp::Or => unreachable!("handled above"),
        }),
        (Value::Bool(a), Value::Bool(b)) if matches!(op, BinOp::Eq | BinOp::Ne) => {
            Ok(Value::Bool((a == b) == (op == BinOp::Eq)))
        }
        (a, b) => Err(EvalError::Types {
            op: name,
            left: a.type_name(),
            right: b.type_name(),
        }),
    }
}

/// A one-element list behaves as its element, as a single-series query result should.
fn scalar(v: Value) -> Value {
    match v {
        Value::List(items) if items.len() == 1 => Value::Number(items[0]),
        v => v,
    }
}

fn op_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::And => "&&",
        BinOp::Or => "||",
    }
}

fn call(
    func: Func,
    args: &[Node],
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, EvalError> {
    let values = args
        .iter()
        .map(|a| eval(a, lookup))
        .collect::<Result<Vec<_>, _>>()?;
    let number = |v: &Value, op: &'static str| match scalar(v.clone()) {
        Value::Number(n) => Ok(n),
        other => Err(EvalError::Types {
            op,
            left: "number",
            right: other.type_name(),
        }),
    };
    match func {
        Func::Len => match &values[0] {
            Value::List(items) => Ok(Value::Number(items.len() as f64)),
            v => Err(EvalError::Types {
                op: "len",
                left: "list",
                right: v.type_name(),
            }),
        },
        Func::IsNaN => Ok(Value::Bool(number(&values[0], "isNaN")?.is_nan())),
        Func::IsInf => Ok(Value::Bool(number(&values[0], "isInf")?.is_infinite())),
        Func::Abs => Ok(Value::Number(number(&values[0], "abs")?.abs())),
        Func::Min | Func::Max => {
            let mut all = Vec::new();
            for v in &values {
                match v {
                    Value::List(items) => all.extend_from_slice(items),
                    v => all.push(number(v, "min/max")?),
                }
            }
            let pick = if func == Func::Min {
                f64::min
            } else {
                f64::max
            };
            let first = all.first().copied().unwrap_or(f64::NAN);
            Ok(Value::Number(all.into_iter().fold(first, pick)))
        }
    }
}
