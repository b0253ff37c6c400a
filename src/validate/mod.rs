//! `pushgateway-janitor validate`: every check a policy meets on its way to a sweep, offline.
//!
//! In the order the API server and the janitor apply them: the CRD's structural schema (an
//! unknown field is an error, as with strict field validation), its CEL rules (kube's local
//! evaluator, over the object with the schema's defaults applied), then `policy::check`, the
//! checker the controller and `run` use (regex, cron, time zone, durations, the floor).

pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::CustomResourceExt;
use serde::Serialize;
use serde_json::Value;

use crate::crd::PushgatewayRetention;
use crate::policy::load::{self, Document, Origin};
use crate::tuning::Tuning;
use crate::Error;

/// Which check found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// The file or document could not be read as a policy (YAML, kind, apiVersion, name).
    Load,
    /// The CRD's structural schema.
    Schema,
    /// The CRD's CEL rules (`x-kubernetes-validations`).
    Cel,
    /// The janitor's own checks on the spec.
    Janitor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    /// `spec.ttl`; `null` when the problem is the whole document or file.
    pub field: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Valid,
    Invalid,
    /// Another kind of object; a bundle may hold them.
    Skipped,
}

/// One document (or a whole file, when it could not be split into documents).
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub file: PathBuf,
    /// 1-based; `null` for a problem with the whole file.
    pub document: Option<usize>,
    pub line: Option<u64>,
    /// `namespace/name`, when the document names itself.
    pub policy: Option<String>,
    pub result: Outcome,
    pub problems: Vec<Finding>,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub valid: usize,
    pub invalid: usize,
    pub skipped: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub valid: bool,
    pub documents: Vec<Checked>,
    pub summary: Summary,
}

/// The CRD's `openAPIV3Schema`, as the API server gets it.
fn crd_schema() -> Value {
    let crd = PushgatewayRetention::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the derived CRD has a schema");
    serde_json::to_value(schema).expect("the CRD schema serialises")
}

/// Checks every policy under `paths` (files, or directories of `*.yaml`/`*.yml`). `floor` is the
/// controller's `--min-ttl`.
pub fn validate(paths: &[PathBuf], floor: Duration) -> Report {
    let root = crd_schema();
    let mut documents = Vec::new();
    let mut seen: BTreeMap<String, Origin> = BTreeMap::new();
    for path in paths {
        let files = match load::files(path) {
            Ok(files) => files,
            Err(e) => {
                documents.push(whole_file(path, e.to_string()));
                continue;
            }
        };
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(e) => {
                    documents.push(whole_file(&file, format!("cannot read: {e}")));
                    continue;
                }
            };
            match load::documents(&file, &text) {
                Ok(docs) => {
                    for (origin, value) in docs {
                        documents.push(document(&root, origin, value, floor, &mut seen));
                    }
                }
                Err(problem) => documents.push(whole_file(&file, problem.message)),
            }
        }
    }
    let mut summary = Summary::default();
    for d in &documents {
        match d.result {
            Outcome::Valid => summary.valid += 1,
            Outcome::Invalid => summary.invalid += 1,
            Outcome::Skipped => summary.skipped += 1,
        }
    }
    Report {
        valid: summary.invalid == 0,
        documents,
        summary,
    }
}

fn whole_file(file: &Path, message: String) -> Checked {
    Checked {
        file: file.to_path_buf(),
        document: None,
        line: None,
        policy: None,
        result: Outcome::Invalid,
        problems: vec![Finding {
            check: Check::Load,
            field: None,
            message,
        }],
    }
}

/// Names the API server handles itself, outside the CRD's schema.
const OBJECT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn document(
    root: &Value,
    origin: Origin,
    value: Value,
    floor: Duration,
    seen: &mut BTreeMap<String, Origin>,
) -> Checked {
    let mut checked = Checked {
        file: origin.file.clone(),
        document: Some(origin.document),
        line: Some(origin.line),
        policy: load::document_id(&value),
        result: Outcome::Invalid,
        problems: Vec::new(),
    };
    let is_ours = value.get("kind").and_then(Value::as_str) == Some(load::KIND);
    if is_ours {
        checked.problems.extend(
            schema::check(root, &value, "")
                .into_iter()
                .filter(|v| !OBJECT_FIELDS.contains(&v.field.as_str()))
                .map(|v| Finding {
                    check: Check::Schema,
                    field: Some(v.field),
                    message: v.message,
                }),
        );
    }
    let schema_ok = checked.problems.is_empty();
    match load::document(value.clone()) {
        Ok(Document::Other(what)) => {
            checked.result = Outcome::Skipped;
            checked.problems.push(Finding {
                check: Check::Load,
                field: None,
                message: format!("skipped: {what}"),
            });
            return checked;
        }
        // A spec that breaks the schema also fails to decode; the schema said where, serde not.
        Err((_, message)) if !schema_ok && message.starts_with("invalid spec") => {}
        Err((_, message)) => checked.problems.push(Finding {
            check: Check::Load,
            field: None,
            message,
        }),
        Ok(Document::Policy(policy)) if schema_ok => {
            let policy = load::PolicyDoc::new(origin.clone(), *policy);
            if let Some(first) = seen.get(&policy.id()) {
                checked.problems.push(Finding {
                    check: Check::Load,
                    field: None,
                    message: format!("duplicate policy: {first} already defines it"),
                });
            } else {
                seen.insert(policy.id(), origin);
            }
            if let Err(errors) = kube::core::cel::Validator::new().validate(root, &value, None) {
                // The API server stops here; the janitor's checks would only repeat the rule.
                checked.problems.extend(errors.iter().map(|e| Finding {
                    check: Check::Cel,
                    field: (!e.field_path.is_empty()).then(|| e.field_path.clone()),
                    message: e.message.clone(),
                }));
            } else if let Err(e) = crate::policy::check(&policy.spec, floor, &Tuning::default()) {
                checked.problems.push(match e {
                    Error::Invalid {
                        field,
                        door,
                        message,
                    } => Finding {
                        check: Check::Janitor,
                        field: Some(field.name_in(door).to_string()),
                        message,
                    },
                    Error::Config { what, message } => Finding {
                        check: Check::Janitor,
                        field: Some(what),
                        message,
                    },
                    other => Finding {
                        check: Check::Janitor,
                        field: None,
                        message: other.to_string(),
                    },
                });
            }
        }
        Ok(Document::Policy(_)) => {}
    }
    if checked.problems.is_empty() {
        checked.result = Outcome::Valid;
    }
    checked
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serialises")
    }

    /// One line per problem, naming file, document, policy and field; then a summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for d in &self.documents {
            let mut place = d.file.display().to_string();
            if let (Some(doc), Some(line)) = (d.document, d.line) {
                place.push_str(&format!(" (document {doc}, line {line})"));
            }
            if let Some(p) = &d.policy {
                place.push_str(&format!(" policy {p}"));
            }
            match d.result {
                Outcome::Valid => out.push_str(&format!("ok      {place}\n")),
                Outcome::Skipped => out.push_str(&format!("skipped {place}\n")),
                Outcome::Invalid => {
                    for f in &d.problems {
                        let field = f
                            .field
                            .as_deref()
                            .map(|f| format!("{f}: "))
                            .unwrap_or_default();
                        let check = match f.check {
                            Check::Load => "load",
                            Check::Schema => "schema",
                            Check::Cel => "cel",
                            Check::Janitor => "janitor",
                        };
                        out.push_str(&format!(
                            "invalid {place}: {field}{} [{check}]\n",
                            f.message
                        ));
                    }
                }
            }
        }
        let s = &self.summary;
        out.push_str(&format!(
            "{} valid, {} invalid, {} skipped\n",
            s.valid, s.invalid, s.skipped
        ));
        out
    }
}

#[cfg(test)]
mod tests;
