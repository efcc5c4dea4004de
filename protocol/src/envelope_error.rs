//! Why an envelope, a payload or a lane name was refused: the one error of
//! the contract's vocabulary ([`crate::envelope`], [`crate::payload`],
//! [`crate::lane`]), kept in a leaf so those modules need not import each
//! other for it.

/// Why an envelope or payload was refused: the field (dotted path) and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("field `{field}`: {rule}")]
    Field { field: String, rule: String },
}

pub(crate) fn field_err(field: &str, rule: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Field {
        field: field.to_string(),
        rule: rule.into(),
    }
}
