//! The core's error: the user's input is wrong, a policy field or another setting. Nothing in the
//! core reads a file or talks to a remote, so nothing else can fail here. The main crate's
//! `Error` takes these over variant for variant (same words, same exit code).

use crate::field::{Door, Field};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A setting the user gave is wrong, outside any policy field (a duration, a selector, a
    /// schedule). Nothing has been touched.
    #[error("invalid {what}: {message}")]
    Config { what: String, message: String },

    /// A policy field is wrong, whether it came as a flag or in a spec. `door` says in whose
    /// words to name it (`--ttl`, `spec.ttl`); `None` for a check no front door named yet.
    #[error("invalid {}: {message}", Field::name_in(*field, *door))]
    Invalid {
        field: Field,
        door: Option<Door>,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            what: what.into(),
            message: message.into(),
        }
    }

    /// A policy field's error, named by no front door yet (see [`Error::at`]).
    pub fn invalid(field: Field, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            door: None,
            message: message.into(),
        }
    }

    /// The same error, its field named in `door`'s words.
    pub fn at(self, door: Door) -> Self {
        match self {
            Error::Invalid { field, message, .. } => Error::Invalid {
                field,
                door: Some(door),
                message,
            },
            other => other,
        }
    }

    /// The policy field the error is about, if it is about one.
    pub fn field(&self) -> Option<Field> {
        match self {
            Error::Invalid { field, .. } => Some(*field),
            Error::Config { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_named_in_the_words_of_its_door() {
        let e = Error::invalid(Field::Ttl, "must be greater than zero");
        assert_eq!(e.field(), Some(Field::Ttl));
        assert_eq!(
            e.clone().at(Door::Flags).to_string(),
            "invalid --ttl: must be greater than zero"
        );
        assert_eq!(
            e.at(Door::Spec).to_string(),
            "invalid spec.ttl: must be greater than zero"
        );
        let config = Error::config("duration \"x\"", "not a duration");
        assert_eq!(config.field(), None);
        assert_eq!(config.to_string(), "invalid duration \"x\": not a duration");
    }
}
