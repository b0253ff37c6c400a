//! A failure as a report carries it: the whole text for the CLI and the logs, and only the
//! janitor's own words for a policy's status and events.

use std::fmt;

use serde::{Serialize, Serializer};

/// An error that can say itself in two forms: everything (`Display`), and only the janitor's own
/// words (`public`). The main crate's `Error` is one; the core's errors are all the janitor's
/// own words.
pub trait Public: fmt::Display {
    fn public(&self) -> String;
}

impl Public for crate::Error {
    fn public(&self) -> String {
        self.to_string()
    }
}

/// An error as a report carries it, in two forms: `detail`, everything known (a remote's words
/// included), for the CLI's report and the logs; `public`, only what the janitor wrote
/// ([`Public::public`]), for a policy's status and events. It shows and serialises as `detail`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    detail: String,
    public: String,
}

impl Failure {
    /// `error`, after the janitor's own words saying what was being done.
    pub fn of<E: Public + ?Sized>(context: &str, error: &E) -> Failure {
        Failure {
            detail: format!("{context}: {error}"),
            public: format!("{context}: {}", error.public()),
        }
    }

    /// Text the janitor wrote around a failure it had in two forms.
    pub fn both(detail: String, public: String) -> Failure {
        Failure { detail, public }
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn public(&self) -> &str {
        &self.public
    }
}

impl From<&crate::Error> for Failure {
    fn from(error: &crate::Error) -> Failure {
        Failure::from(error.to_string())
    }
}

/// Text the janitor wrote itself: the same in both forms.
impl From<String> for Failure {
    fn from(text: String) -> Failure {
        Failure {
            public: text.clone(),
            detail: text,
        }
    }
}

impl From<&str> for Failure {
    fn from(text: &str) -> Failure {
        Failure::from(text.to_string())
    }
}

impl std::ops::Deref for Failure {
    type Target = str;
    fn deref(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl Serialize for Failure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.detail)
    }
}
