//! Vectors observed from flagd's Go evaluator (rule, data ⇒ encoded result or an abort).

use serde_json::Value;

use super::{Val, apply, encode_json};

fn run(rule: &str, data: &str) -> Option<String> {
    let rule: Value = serde_json::from_str(rule).unwrap();
    let data: Value = serde_json::from_str(data).unwrap();
    apply(&Val::from_json(&rule), &Val::from_json(&data))
        .ok()
        .and_then(|v| encode_json(&v))
}

#[test]
fn vectors_from_the_go_evaluator() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (r#"{"if":[true,{"color":"red"},"x"]}"#, "{}", None),
        (
            r#"{"if":[true,{"color":"red","size":1},"x"]}"#,
            "{}",
            Some(r#"{"color":"red","size":1}"#),
        ),
        (r#"{"if":[true,{"var":"o"},"x"]}"#, r#"{"o":{"a":1}}"#, None),
        (
            r#"{"if":[true,{"var":"o"}]}"#,
            r#"{"o":{"var":"p"},"p":"pp"}"#,
            Some(r#""pp""#),
        ),
        (r#"{"and":[]}"#, "{}", Some("null")),
        (r#"{"or":[]}"#, "{}", Some("null")),
        (r#"{"if":[]}"#, "{}", Some("null")),
        (r#"{"if":["x"]}"#, "{}", Some(r#""x""#)),
        (
            r#"{"if":[0,"a",[],"b",{},"c","0","d"]}"#,
            "{}",
            Some(r#""d""#),
        ),
        (r#"{"!":[]}"#, "{}", Some("true")),
        (r#"{"!!":[]}"#, "{}", Some("false")),
        (r#"{"!":{}}"#, "{}", Some("true")),
        (r#"{"!!":[{"%":[1,0]}]}"#, "{}", Some("true")),
        (r#"{"var":null}"#, r#"{"a":1}"#, Some("null")),
        (r#"{"var":""}"#, r#"{"a":1}"#, Some(r#"{"a":1}"#)),
        (r#"{"var":[0]}"#, "{}", None),
        (r#"{"var":true}"#, "{}", None),
        (r#"{"var":"a.x"}"#, r#"{"a":[10,20]}"#, Some("10")),
        (r#"{"var":"a.-1"}"#, r#"{"a":[10,20]}"#, Some("null")),
        (r#"{"var":1.5}"#, r#"{"1":{"5":"x"}}"#, Some(r#""x""#)),
        (r#"{"var":["a","d"]}"#, r#"{"a":"str"}"#, Some(r#""str""#)),
        (r#"{"var":["a.b","d"]}"#, r#"{"a":"str"}"#, Some(r#""d""#)),
        (r#"{"+":[1,"2"," 3"]}"#, "{}", Some("3")),
        (r#"{"+":[1,null]}"#, "{}", None),
        (r#"{"+":["1e400"]}"#, "{}", None),
        (r#"{"+":["1_000"]}"#, "{}", Some("1000")),
        (r#"{"-":[0]}"#, "{}", Some("-0")),
        (r#"{"-":[]}"#, "{}", Some("0")),
        (r#"{"*":[]}"#, "{}", Some("1")),
        (r#"{"/":[6]}"#, "{}", Some("6")),
        (r#"{"/":[1,0]}"#, "{}", None),
        (r#"{"%":[7]}"#, "{}", None),
        (r#"{"max":[]}"#, "{}", Some("null")),
        (r#"{"max":[1,true]}"#, "{}", None),
        (r#"{"max":[-1,"abc"]}"#, "{}", Some("0")),
        (r#"{"abs":[]}"#, "{}", None),
        (r#"{"in":[1,["1",2]]}"#, "{}", Some("true")),
        (r#"{"in":["1",[1,2]]}"#, "{}", Some("false")),
        (r#"{"in":[1,"123"]}"#, "{}", None),
        (r#"{"in":[5,[[1,10]]]}"#, "{}", Some("true")),
        (r#"{"in":["a",null]}"#, "{}", Some("false")),
        (r#"{"in":[]}"#, "{}", None),
        (r#"{"in":[null,[null]]}"#, "{}", Some("true")),
        (r#"{"in":[{"-":[]},[0]]}"#, "{}", Some("false")),
        (r#"{"cat":[" a","b "]}"#, "{}", Some(r#""ab""#)),
        (r#"{"cat":[" a "]}"#, "{}", Some(r#"" a ""#)),
        (
            r#"{"cat":["a",1,1.5,null,1e21,1e-7]}"#,
            "{}",
            Some(r#""a11.510000000000000000000000.0000001""#),
        ),
        (r#"{"cat":["a",true]}"#, "{}", None),
        (r#"{"cat":5}"#, "{}", None),
        (r#"{"substr":["abcdef",4,-3]}"#, "{}", None),
        (r#"{"substr":["abcdef",10]}"#, "{}", Some(r#""abcdef""#)),
        (r#"{"substr":["abcdef",2,2,9]}"#, "{}", Some(r#""cdef""#)),
        (r#"{"substr":["abcdef",2,-1]}"#, "{}", Some(r#""cde""#)),
        (r#"{"substr":["héllo",1,2]}"#, "{}", Some(r#""él""#)),
        (r#"{"merge":null}"#, "{}", None),
        (r#"{"merge":5}"#, "{}", Some("[5]")),
        (
            r#"{"merge":[1,[2,3],[[4]],null]}"#,
            "{}",
            Some("[1,2,3,[4],null]"),
        ),
        (r#"{"missing":[["a","b"]]}"#, "{}", Some("[]")),
        (
            r#"{"missing_some":[1.9,["a","b"]]}"#,
            "{}",
            Some(r#"["a","b"]"#),
        ),
        (r#"{"map":[{"var":"x"},1]}"#, r#"{"x":"abc"}"#, None),
        (r#"{"map":["abc",1]}"#, "{}", Some("[]")),
        (
            r#"{"filter":[[{"a":1},{"a":5}],{">":[{"var":"a"},2]}]}"#,
            r#"{"a":0}"#,
            Some("[]"),
        ),
        (
            r#"{"filter":[[{"a":1},{"a":5}],{">":[{"var":"a"},2]}]}"#,
            "{}",
            Some(r#"[{"a":5}]"#),
        ),
        (
            r#"{"reduce":[{"var":"x"},{"var":"current"},"init"]}"#,
            "{}",
            Some("0"),
        ),
        (
            r#"{"reduce":[[],{"var":"current"},"init"]}"#,
            "{}",
            Some(r#""init""#),
        ),
        (r#"{"reduce":[[1,2],{"var":"current"},null]}"#, "{}", None),
        (
            r#"{"reduce":[[1,null,3],{"+":[{"var":"current"},{"var":"accumulator"}]},0]}"#,
            "{}",
            Some("4"),
        ),
        (r#"{"all":[[],{"var":""}]}"#, "{}", Some("false")),
        (r#"{"none":[[],{"var":""}]}"#, "{}", Some("true")),
        (r#"{"some":[[],{"var":""}]}"#, "{}", Some("false")),
        (r#"{"all":[[1],true]}"#, "{}", None),
        (
            r#"{"some":[[{"t":1}],{"==":[{"var":"t"},1]}]}"#,
            r#"{"t":2}"#,
            Some("false"),
        ),
        (r#"{"===":[{"-":[]},0]}"#, "{}", Some("false")),
        (r#"{"===":5}"#, "{}", Some("false")),
        (r#"{"!==":5}"#, "{}", Some("true")),
        (r#"{"==":1}"#, "{}", None),
        (r#"{"!=":[1]}"#, "{}", Some("true")),
        (r#"{"<":[1,2,3,0]}"#, "{}", Some("true")),
        (r#"{">":[2,1,5,7]}"#, "{}", Some("true")),
        (r#"{"<=":[null,0]}"#, "{}", Some("false")),
        (r#"{"<":[{"var":"x"},1]}"#, "{}", Some("true")),
        (r#"{"sem_ver":["1.2","=","1.2.0"]}"#, "{}", Some("true")),
        (r#"{"sem_ver":[1.5,"=","1.5.0"]}"#, "{}", Some("true")),
        (r#"{"sem_ver":["1.2.3","==","1.2.3"]}"#, "{}", Some("null")),
        (r#"{"sem_ver":["0.2.3","^","0.9.0"]}"#, "{}", Some("true")),
        (
            r#"{"sem_ver":["1.2.3-0a","<","1.2.3-1"]}"#,
            "{}",
            Some("false"),
        ),
        (r#"{"sem_ver":["V1.0.0","=","v1.0.0"]}"#, "{}", Some("true")),
        (r#"{"starts_with":["abc","ab","x"]}"#, "{}", Some("null")),
        (r#"{"ends_with":["abc",null]}"#, "{}", Some("null")),
        (
            r#"{"fractional":["user1",["a",50.5],["b",1]]}"#,
            "{}",
            Some("null"),
        ),
        (
            r#"{"fractional":["user1",["a",-5],["b",1]]}"#,
            "{}",
            Some(r#""b""#),
        ),
        (
            r#"{"fractional":["user1",["a",2147483647],["b",1]]}"#,
            "{}",
            Some("null"),
        ),
        (r#"{"fractional":["user1",[true,1]]}"#, "{}", Some("true")),
        (
            r#"{"fractional":[5,["a",50],["b",50]]}"#,
            r#"{"targetingKey":"u"}"#,
            Some("null"),
        ),
    ];
    for (rule, data, expected) in cases {
        assert_eq!(run(rule, data).as_deref(), *expected, "{rule} with {data}");
    }
}

#[test]
fn fractional_buckets_as_flagd() {
    // murmur3("user1") = 3305849917; 100 equal buckets: bucket 76. With the flag key prefix
    // ("f" + "user1") it is bucket 78.
    let buckets: Vec<String> = (0..100).map(|i| format!(r#"["b{i}",1]"#)).collect();
    let explicit = format!(r#"{{"fractional":["user1",{}]}}"#, buckets.join(","));
    assert_eq!(run(&explicit, "{}").as_deref(), Some(r#""b76""#));
    let keyed = format!(r#"{{"fractional":[{}]}}"#, buckets.join(","));
    let data = r#"{"targetingKey":"user1","$flagd":{"flagKey":"f","timestamp":0}}"#;
    assert_eq!(run(&keyed, data).as_deref(), Some(r#""b78""#));
}
