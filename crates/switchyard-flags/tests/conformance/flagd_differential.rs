//! Differential test against flagd's own Go evaluator: seeded random flag documents and contexts,
//! evaluated by Switchyard and by `tests/flagd-reference` (github.com/open-feature/flagd/core),
//! must give the same value, variant, reason and error code, case for case.
//!
//! Ignored in a plain `cargo test` (it needs the reference program); `scripts/test` builds the
//! reference and runs it with `SWITCHYARD_FLAGD_REFERENCE` naming the binary:
//!
//! ```sh
//! SWITCHYARD_FLAGD_REFERENCE=path/to/flagd-reference \
//!   cargo test -p switchyard-flags --test conformance flagd_differential -- --ignored
//! ```

use serde_json::{Map, Value, json};
use switchyard_flags::{EvaluationContext, FlagSet, FlagType, Timestamp};

use super::flagd_reference::{ask, details, request, same};

/// Seed of the generated cases (any seed must agree; this one is what CI runs).
const SEED: u64 = 20_261_206;
/// Documents generated; each has several flags, each evaluated for several contexts.
const DOCUMENTS: usize = 120;
const FLAGS_PER_DOCUMENT: usize = 6;
const CONTEXTS_PER_FLAG: usize = 8;

/// SplitMix64: small, seeded, good enough to spread generated cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The attributes generated contexts may carry, and values of every JSON kind for them.
const ATTRIBUTES: &[&str] = &[
    "age",
    "email",
    "version",
    "tier",
    "beta",
    "user.name",
    "score",
];

fn attribute_value(rng: &mut Rng, name: &str) -> Value {
    match (name, rng.below(10)) {
        (_, 0) => Value::Null,
        (_, 1) => json!(rng.chance(50)),
        (_, 2) => json!(rng.below(40)),
        (_, 3) => json!(format!("{}", rng.below(40))),
        ("age" | "score", _) => {
            if rng.chance(50) {
                json!(rng.below(60))
            } else {
                json!(rng.below(600) as f64 / 10.0)
            }
        }
        ("email", _) => json!(format!(
            "{}@{}",
            rng.pick(&["ann", "bob", "Ann", "", "jobs"]),
            rng.pick(&["example.com", "corp.io", "EXAMPLE.com"])
        )),
        ("version", _) => json!(
            rng.pick(&[
                "1.0.0",
                "2.1.3",
                "v1.2.0",
                "V1.0.0",
                "1.2",
                "1.0.0-beta.1",
                "not-a-version",
                "10.0.0"
            ])
            .to_string()
        ),
        ("tier", _) => json!(
            rng.pick(&["gold", "silver", "", "GOLD", "bronze"])
                .to_string()
        ),
        _ => json!(
            rng.pick(&["a", "b", "abc", "xyz", "1.5", "true"])
                .to_string()
        ),
    }
}

fn context(rng: &mut Rng) -> Map<String, Value> {
    let mut map = Map::new();
    if rng.chance(30) {
        let tags: Vec<Value> = (0..rng.below(4))
            .map(|_| json!(rng.pick(&["a", "b", "c"]).to_string()))
            .collect();
        map.insert("tags".into(), Value::Array(tags));
    }
    if rng.chance(75) {
        let key = *rng.pick(&["user-1", "user-2", "", "ann@example.com", "42", "é-ü"]);
        map.insert("targetingKey".into(), json!(key));
    }
    for name in ATTRIBUTES {
        if rng.chance(55) {
            let value = attribute_value(rng, name);
            if let Some((parent, child)) = name.split_once('.') {
                let mut inner = Map::new();
                inner.insert(child.into(), value);
                map.insert(parent.into(), Value::Object(inner));
            } else {
                map.insert((*name).into(), value);
            }
        }
    }
    map
}

/// A variable reference, sometimes with a default or a dotted path.
fn var(rng: &mut Rng) -> Value {
    let names: Vec<&str> = ATTRIBUTES
        .iter()
        .copied()
        .chain(["targetingKey", "$flagd.flagKey", "missing"])
        .collect();
    let name = *rng.pick(&names);
    match rng.below(8) {
        0 => json!({"var": [name, rng.pick(&[json!(18), json!("x"), json!(null)]).clone()]}),
        1 => json!({"var": [name]}),
        _ => json!({"var": name}),
    }
}

fn literal(rng: &mut Rng) -> Value {
    rng.pick(&[
        json!(18),
        json!(18.5),
        json!("18"),
        json!(0),
        json!(""),
        json!("gold"),
        json!(true),
        json!(false),
        json!(null),
        json!("ann@example.com"),
        json!("1"),
    ])
    .clone()
}

fn operand(rng: &mut Rng) -> Value {
    if rng.chance(60) {
        var(rng)
    } else {
        literal(rng)
    }
}

fn condition(rng: &mut Rng, depth: usize) -> Value {
    let choice = if depth > 2 {
        rng.below(9)
    } else {
        rng.below(19)
    };
    match choice {
        0 => json!({ *rng.pick(&["==", "!=", "===", "!=="]): [operand(rng), operand(rng)] }),
        1 | 2 => json!({ *rng.pick(&["<", "<=", ">", ">="]): [operand(rng), operand(rng)] }),
        3 => json!({ *rng.pick(&["<", "<="]): [literal(rng), var(rng), literal(rng)] }),
        4 => json!({"in": [operand(rng), [literal(rng), literal(rng), "gold"]]}),
        5 => json!({"in": [operand(rng), operand(rng)]}),
        6 => {
            json!({ *rng.pick(&["starts_with", "ends_with"]): [operand(rng), rng.pick(&["a", "ann", ".com", "", "1"]).to_string()] })
        }
        7 => {
            json!({"sem_ver": [operand(rng), *rng.pick(&["=", "!=", "<", "<=", ">", ">=", "^", "~", "?"]), rng.pick(&["1.0.0", "v2.0.0", "1.2", "2.1.3"]).to_string()]})
        }
        8 => var(rng),
        9 => {
            json!({ *rng.pick(&["and", "or"]): (0..rng.below(4)).map(|_| condition(rng, depth + 1)).collect::<Vec<_>>() })
        }
        10 => json!({ *rng.pick(&["!", "!!"]): [condition(rng, depth + 1)] }),
        11 => json!({"missing": [*rng.pick(&["age", "email", "user.name"])]}),
        12 => json!({"missing_some": [1, ["age", "email", "tier"]]}),
        13 => {
            json!({ *rng.pick(&[">", "<="]): [{ *rng.pick(&["+", "-", "*", "/", "%", "max", "min"]): [operand(rng), operand(rng)] }, literal(rng)] })
        }
        14 => {
            json!({"==": [{"substr": [operand(rng), rng.below(4) as i64 - 2, rng.below(4)]}, literal(rng)]})
        }
        15 => json!({"in": [literal(rng), {"cat": [operand(rng), "-", operand(rng)]}]}),
        16 => {
            json!({ *rng.pick(&["some", "all", "none"]): [{"merge": [operand(rng), [literal(rng)]]}, {"==": [{"var": ""}, literal(rng)]}] })
        }
        17 => json!({"!!": [{"filter": [{"var": "tags"}, {"!=": [{"var": ""}, "b"]}]}]}),
        _ => {
            json!({"<": [{"reduce": [{"var": "tags"}, {"+": [{"var": "accumulator"}, 1]}, 0]}, 2]})
        }
    }
}

fn fractional(rng: &mut Rng, names: &[String]) -> Value {
    let mut args = Vec::new();
    match rng.below(4) {
        0 => {}
        1 => args.push(json!({"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]})),
        2 => args.push(var(rng)),
        _ => args.push(json!({"var": "targetingKey"})),
    }
    for _ in 0..1 + rng.below(3) {
        let name = if rng.chance(90) {
            json!(rng.pick(names))
        } else {
            json!("no-such-variant")
        };
        match rng.below(6) {
            0 => args.push(json!([name])),
            1 => args.push(json!([name, rng.below(3) as f64 + 0.5])),
            _ => args.push(json!([name, rng.below(60)])),
        }
    }
    json!({ "fractional": args })
}

/// A targeting result: a variant name (usually valid), null, or a non-string value.
fn outcome(rng: &mut Rng, names: &[String], depth: usize) -> Value {
    match rng.below(if depth > 1 { 10 } else { 14 }) {
        0 => Value::Null,
        13 => json!({"cat": [operand(rng), operand(rng)]}),
        1 => json!("no-such-variant"),
        2 => literal(rng),
        3..=9 => json!(rng.pick(names)),
        10 => fractional(rng, names),
        _ => targeting(rng, names, depth + 1),
    }
}

fn targeting(rng: &mut Rng, names: &[String], depth: usize) -> Value {
    let mut args = Vec::new();
    for _ in 0..1 + rng.below(3) {
        args.push(condition(rng, depth));
        args.push(outcome(rng, names, depth));
    }
    if rng.chance(60) {
        args.push(outcome(rng, names, depth));
    }
    json!({ "if": args })
}

fn variants(rng: &mut Rng) -> (FlagType, Map<String, Value>) {
    let mut map = Map::new();
    let flag_type = *rng.pick(&[
        FlagType::Boolean,
        FlagType::String,
        FlagType::Integer,
        FlagType::Float,
        FlagType::Object,
    ]);
    match flag_type {
        FlagType::Boolean => {
            map.insert("on".into(), json!(true));
            map.insert("off".into(), json!(false));
            if rng.chance(30) {
                map.insert("true".into(), json!(true));
            }
        }
        FlagType::String => {
            for name in ["red", "green", "blue"] {
                map.insert(name.into(), json!(format!("{name}-value")));
            }
        }
        FlagType::Integer => {
            for (name, value) in [("one", 1), ("ten", 10), ("18", 18)] {
                map.insert(name.into(), json!(value));
            }
        }
        FlagType::Float => {
            for (name, value) in [("low", 0.5), ("high", 2.25), ("whole", 3.0)] {
                map.insert(name.into(), json!(value));
            }
        }
        FlagType::Object => {
            map.insert("small".into(), json!({"size": 1}));
            map.insert("large".into(), json!({"size": 100, "tags": ["a"]}));
        }
    }
    (flag_type, map)
}

fn type_name(flag_type: FlagType) -> &'static str {
    flag_type.as_str()
}

struct Case {
    flag: String,
    requested: FlagType,
    context: Map<String, Value>,
}

struct Document {
    text: String,
    cases: Vec<Case>,
}

fn document(rng: &mut Rng, number: usize) -> Document {
    let mut flags = Map::new();
    let mut evaluators = Map::new();
    evaluators.insert(
        "is_gold".into(),
        json!({"in": [{"var": "tier"}, ["gold", "GOLD"]]}),
    );
    let mut cases = Vec::new();
    for index in 0..FLAGS_PER_DOCUMENT {
        let key = format!("flag-{number}-{index}");
        let (flag_type, variants) = variants(rng);
        let names: Vec<String> = variants.keys().cloned().collect();
        let mut flag = Map::new();
        let state = if rng.chance(10) {
            "DISABLED"
        } else {
            "ENABLED"
        };
        flag.insert("state".into(), json!(state));
        flag.insert("variants".into(), Value::Object(variants));
        match rng.below(10) {
            0 => {}
            1 => {
                flag.insert("defaultVariant".into(), Value::Null);
            }
            _ => {
                flag.insert("defaultVariant".into(), json!(rng.pick(&names)));
            }
        }
        match rng.below(10) {
            0 => {}
            1 => {
                flag.insert("targeting".into(), json!({}));
            }
            2 => {
                let t = json!({"if": [{"$ref": "is_gold"}, rng.pick(&names), null]});
                flag.insert("targeting".into(), t);
            }
            3 => {
                flag.insert("targeting".into(), fractional(rng, &names));
            }
            _ => {
                flag.insert("targeting".into(), targeting(rng, &names, 0));
            }
        }
        flags.insert(key.clone(), Value::Object(flag));
        for _ in 0..CONTEXTS_PER_FLAG {
            let requested = if rng.chance(85) {
                flag_type
            } else {
                *rng.pick(&[
                    FlagType::Boolean,
                    FlagType::String,
                    FlagType::Integer,
                    FlagType::Float,
                    FlagType::Object,
                ])
            };
            cases.push(Case {
                flag: key.clone(),
                requested,
                context: context(rng),
            });
        }
    }
    cases.push(Case {
        flag: "no-such-flag".into(),
        requested: FlagType::Boolean,
        context: Map::new(),
    });
    let text = serde_json::to_string(&json!({"flags": flags, "$evaluators": evaluators})).unwrap();
    Document { text, cases }
}

/// What a provider reports for one evaluation, in the reference program's terms.
fn switchyard_result(set: &switchyard_flags::CompiledFlags, case: &Case) -> Value {
    let mut context = EvaluationContext::new();
    for (name, value) in &case.context {
        if name == "targetingKey" {
            if let Some(key) = value.as_str() {
                context = context.with_targeting_key(key);
                continue;
            }
        }
        context = context.with_attribute(name.clone(), value.clone());
    }
    let now = Timestamp::from_unix_millis(1_800_000_000_000);
    details(&set.evaluate(&case.flag, Some(case.requested), &context, now))
}

#[test]
#[ignore = "needs the flagd reference program; scripts/test runs it"]
fn flagd_differential() {
    let mut rng = Rng(SEED);
    let documents: Vec<Document> = (0..DOCUMENTS).map(|n| document(&mut rng, n)).collect();
    let answers = ask(documents
        .iter()
        .map(|d| {
            let cases = d
                .cases
                .iter()
                .map(|c| json!({"flag": c.flag, "type": type_name(c.requested), "context": c.context}))
                .collect();
            request(&d.text, cases)
        })
        .collect());

    let (mut total, mut agreed) = (0usize, 0usize);
    let mut differences = Vec::new();
    for (d, answer) in documents.iter().zip(&answers) {
        let ours = FlagSet::from_flagd_json(&d.text)
            .map_err(|e| e.to_string())
            .and_then(|set| set.compile().map_err(|e| e.to_string()));
        match (&answer["load_error"], ours) {
            (Value::String(theirs), Ok(_)) => {
                differences.push(format!(
                    "flagd refused a document we load: {theirs}\n{}",
                    d.text
                ));
                total += d.cases.len();
            }
            (Value::String(_), Err(_)) => {
                total += d.cases.len();
                agreed += d.cases.len();
            }
            (_, Err(e)) => {
                differences.push(format!(
                    "we refused a document flagd loads: {e}\n{}",
                    d.text
                ));
                total += d.cases.len();
            }
            (_, Ok(set)) => {
                for (case, theirs) in d.cases.iter().zip(answer["results"].as_array().unwrap()) {
                    total += 1;
                    let ours = switchyard_result(&set, case);
                    if same(&ours, theirs) {
                        agreed += 1;
                    } else {
                        differences.push(format!(
                            "flag {} as {} with {}:\n  flagd:      {theirs}\n  switchyard: {ours}\n  targeting: {}",
                            case.flag,
                            type_name(case.requested),
                            Value::Object(case.context.clone()),
                            flag_of(&d.text, &case.flag),
                        ));
                    }
                }
            }
        }
    }
    println!("flagd differential: {agreed}/{total} cases agree");
    assert!(total >= 5000, "at least 5,000 cases ({total})");
    assert!(
        differences.is_empty(),
        "{} of {total} cases differ; the first:\n{}",
        differences.len(),
        differences
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn flag_of(text: &str, key: &str) -> String {
    let document: Value = serde_json::from_str(text).unwrap();
    document["flags"][key].to_string()
}
