//! `pyjson` against the real thing: random JSON values written by our
//! writer and by Python's own `json.dumps` (python3 on this machine, run
//! once for all cases) must be byte-identical, in both of the styles
//! spec-kitty 2.1.3 uses for its status files. Python is the oracle here,
//! not a copy of our code.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use spec_kitty::pyjson::{dumps, Style};
use std::io::Write;
use std::process::{Command, Stdio};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
            .prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        // Around the switches of Python's float repr: exponents 16 and -5,
        // and integral values, which keep a `.0`.
        (1e15f64..1e18).prop_map(Value::from),
        (1e-6f64..1e-3).prop_map(Value::from),
        (-1000i32..1000).prop_map(|i| Value::from(f64::from(i))),
        // Control characters, quotes, DEL, accents, astral-plane emoji.
        "[a-z\\x00-\\x1f\"\\\\\\x7f é€😀]{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_é😀]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn pyjson_matches_python_json_dumps_byte_for_byte() {
    let mut runner = TestRunner::deterministic();
    let cases: Vec<Value> = (0..400)
        .map(|_| value().new_tree(&mut runner).unwrap().current())
        .collect();
    // serde_json writes floats as their shortest round-trip digits, which
    // Python parses to the same double.
    let input = serde_json::to_string(&cases).unwrap();
    let script = r#"
import json, sys
for v in json.load(sys.stdin):
    print(json.dumps(json.dumps(v, sort_keys=True)))
    print(json.dumps(json.dumps(v, sort_keys=True, indent=2, ensure_ascii=False)))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (scripts/setup-test-deps installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), cases.len() * 2);
    for (i, v) in cases.iter().enumerate() {
        assert_eq!(
            dumps(v, Style::Line),
            lines[2 * i],
            "line style, case {i}: {v}"
        );
        assert_eq!(
            dumps(v, Style::Pretty),
            lines[2 * i + 1],
            "pretty style, case {i}: {v}"
        );
    }
}
