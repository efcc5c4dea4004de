//! Per-event validation with the reasons a SaaS gives.
//!
//! The shared protocol crate already knows every rule and names the field
//! that broke it; this module only words the result the way the batch API
//! does (`Invalid payload for ErrorLogged: missing required field
//! 'error_type'`), so a client can categorise reasons by keywords such as
//! "missing" and "field".

use serde_json::Value;
use spec_kitty_protocol::{EnvelopeError, EventEnvelope};

/// Parses and validates one raw event; the error is the reason to report.
pub fn validate_event(raw: &Value) -> Result<EventEnvelope, String> {
    let event_type = raw
        .get("event_type")
        .and_then(Value::as_str)
        .unwrap_or("event")
        .to_string();
    let env = EventEnvelope::from_value(raw.clone()).map_err(|e| word(&event_type, e))?;
    env.validate().map_err(|e| word(&event_type, e))?;
    if env.project_uuid.is_none() {
        return Err("Invalid envelope: missing required field 'project_uuid' \
                    (events without project identity are not accepted)"
            .to_string());
    }
    Ok(env)
}

fn word(event_type: &str, err: EnvelopeError) -> String {
    match err {
        EnvelopeError::Json(e) => format!("Invalid envelope: {e}"),
        EnvelopeError::Field { field, rule } => {
            let missing = rule == "missing required field" || rule.starts_with("is required");
            match field.strip_prefix("payload.") {
                Some(name) if missing => {
                    format!("Invalid payload for {event_type}: missing required field '{name}'")
                }
                Some(name) => format!("Invalid payload for {event_type}: field '{name}' {rule}"),
                None if missing => format!(
                    "Invalid envelope: missing required field '{field}' {}",
                    rule.trim_start_matches("is required ")
                ),
                None => format!("Invalid envelope: field '{field}' {rule}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"event_id":"01JMBY7K8N3QRVX2DPFG5HWT4E","event_type":"ErrorLogged","aggregate_id":"error",
               "aggregate_type":"Feature","payload":{"error_type":"runtime","error_message":"x"},
               "timestamp":"2026-02-12T12:00:00+00:00","node_id":"a1b2c3d4e5f6","lamport_clock":20,
               "causation_id":null,"team_slug":"t","project_uuid":"550e8400-e29b-41d4-a716-446655440000",
               "project_slug":"p"})
    }

    #[test]
    fn reasons_name_the_field() {
        assert!(validate_event(&base()).is_ok());
        let mut v = base();
        v["payload"].as_object_mut().unwrap().remove("error_type");
        assert_eq!(
            validate_event(&v).unwrap_err(),
            "Invalid payload for ErrorLogged: missing required field 'error_type'"
        );
        let mut v = base();
        v.as_object_mut().unwrap().remove("node_id");
        assert_eq!(
            validate_event(&v).unwrap_err(),
            "Invalid envelope: missing required field 'node_id' (a string)"
        );
        let mut v = base();
        v["project_uuid"] = Value::Null;
        assert!(validate_event(&v).unwrap_err().contains("'project_uuid'"));
        let mut v = base();
        v["lamport_clock"] = json!(0);
        assert!(validate_event(&v).unwrap_err().contains("'lamport_clock'"));
    }
}
