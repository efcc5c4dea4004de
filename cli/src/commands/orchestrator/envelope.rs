//! The orchestrator-api's wire shapes: the seven-key envelope, JSON with
//! keys in the order 2.1.3 inserts them, and the `--policy` object.
//!
//! 2.1.3 prints `json.dumps(envelope)`: no key sorting (dict order), ASCII
//! escapes, `", "` and `": "` separators. [`J`] keeps the order; its
//! scalars and arrays are written by [`crate::pyjson`] so strings and
//! numbers come out exactly as Python writes them.

use crate::pyjson::{self, Style};
use serde_json::Value;

pub const CONTRACT_VERSION: &str = "1.0.0";
pub const MIN_PROVIDER_VERSION: &str = "0.1.0";

/// A JSON value whose objects keep the order their keys were given in.
#[derive(Debug, Clone)]
pub enum J {
    /// A scalar, or an array of scalars.
    V(Value),
    O(Vec<(&'static str, J)>),
    A(Vec<J>),
}

impl J {
    pub fn s(text: &str) -> J {
        J::V(Value::String(text.to_string()))
    }

    /// A string, or `null` for `None`.
    pub fn opt(text: Option<&str>) -> J {
        text.map_or(J::V(Value::Null), J::s)
    }

    pub fn strings<S: AsRef<str>>(items: &[S]) -> J {
        J::A(items.iter().map(|s| J::s(s.as_ref())).collect())
    }

    /// `{"message": text}`: the data of most failures.
    pub fn message(text: &str) -> J {
        J::O(vec![("message", J::s(text))])
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            J::V(v) => out.push_str(&pyjson::dumps(v, Style::Line)),
            J::O(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&pyjson::dumps(&Value::String((*k).into()), Style::Line));
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
            J::A(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out);
                }
                out.push(']');
            }
        }
    }
}

impl From<bool> for J {
    fn from(b: bool) -> J {
        J::V(Value::Bool(b))
    }
}

/// The envelope text for `command` (without the `orchestrator-api.`
/// prefix): a fresh correlation id and the time now.
pub fn envelope(command: &str, success: bool, data: J, error_code: Option<&str>) -> String {
    J::O(vec![
        ("contract_version", J::s(CONTRACT_VERSION)),
        ("command", J::s(&format!("orchestrator-api.{command}"))),
        ("timestamp", J::s(&crate::status::store::now_iso())),
        (
            "correlation_id",
            J::s(&format!("corr-{}", uuid::Uuid::new_v4().simple())),
        ),
        ("success", success.into()),
        ("error_code", J::opt(error_code)),
        ("data", data),
    ])
    .text()
}

const REQUIRED_POLICY_FIELDS: [&str; 7] = [
    "orchestrator_id",
    "orchestrator_version",
    "agent_family",
    "approval_mode",
    "sandbox_mode",
    "network_mode",
    "dangerous_flags",
];

const SECRET_WORDS: [&str; 5] = ["token", "secret", "key", "password", "credential"];

/// A JSON object's members in document order (2.1.3 checks them for
/// secrets in that order and names the first).
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, Value>()? {
                    out.push(kv);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// 2.1.3's `parse_and_validate_policy` + `policy_to_dict`: the policy as
/// the event records it, or 2.1.3's message for what is wrong.
pub fn parse_policy(raw: &str) -> Result<Value, String> {
    let v: Value =
        serde_json::from_str(raw).map_err(|e| format!("--policy is not valid JSON: {e}"))?;
    let Value::Object(obj) = &v else {
        return Err("--policy must be a JSON object".into());
    };
    if let Some(f) = REQUIRED_POLICY_FIELDS
        .iter()
        .find(|f| !obj.contains_key(**f))
    {
        return Err(format!("--policy missing required field: '{f}'"));
    }
    if !obj["dangerous_flags"].is_array() {
        return Err("--policy.dangerous_flags must be a JSON array".into());
    }
    let members: Members = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    for (name, value) in &members.0 {
        if let Value::String(s) = value {
            let lower = s.to_lowercase();
            if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
                return Err(format!(
                    "--policy field '{name}' appears to contain a secret (matched pattern: token|secret|key|password|credential). Do not pass secrets via --policy."
                ));
            }
        }
    }
    let mut out = serde_json::Map::new();
    for f in &REQUIRED_POLICY_FIELDS[..6] {
        out.insert((*f).into(), Value::String(pyjson::py_str(&obj[*f])));
    }
    out.insert("dangerous_flags".into(), obj["dangerous_flags"].clone());
    out.insert(
        "tool_restrictions".into(),
        obj.get("tool_restrictions").cloned().unwrap_or(Value::Null),
    );
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"orchestrator_id":"o","orchestrator_version":"1","agent_family":"claude","approval_mode":"auto","sandbox_mode":"none","network_mode":"full","dangerous_flags":[]}"#;

    #[test]
    fn ordered_json_is_written_as_python_json_dumps() {
        let j = J::O(vec![
            ("z", J::s("é\"")),
            (
                "a",
                J::A(vec![J::O(vec![("k", J::V(Value::Null))]), 1.into_j()]),
            ),
            ("e", J::O(vec![])),
        ]);
        assert_eq!(
            j.text(),
            r#"{"z": "\u00e9\"", "a": [{"k": null}, 1], "e": {}}"#
        );
    }

    trait IntoJ {
        fn into_j(self) -> J;
    }
    impl IntoJ for i32 {
        fn into_j(self) -> J {
            J::V(self.into())
        }
    }

    #[test]
    fn policy_is_checked_as_2_1_3_checks_it() {
        let p = parse_policy(POLICY).unwrap();
        assert_eq!(p["tool_restrictions"], Value::Null);
        assert_eq!(p["agent_family"], "claude");
        assert_eq!(
            parse_policy("[1]").unwrap_err(),
            "--policy must be a JSON object"
        );
        assert_eq!(
            parse_policy("{}").unwrap_err(),
            "--policy missing required field: 'orchestrator_id'"
        );
        let bad = POLICY.replace("[]", "\"x\"");
        assert_eq!(
            parse_policy(&bad).unwrap_err(),
            "--policy.dangerous_flags must be a JSON array"
        );
        // The first secret-like value in document order is named.
        let secret = POLICY
            .replace("\"claude\"", "\"my-Token\"")
            .replace("\"auto\"", "\"password\"");
        assert!(parse_policy(&secret)
            .unwrap_err()
            .starts_with("--policy field 'agent_family' appears to contain a secret"));
        assert!(parse_policy("{")
            .unwrap_err()
            .starts_with("--policy is not valid JSON: "));
    }
}
