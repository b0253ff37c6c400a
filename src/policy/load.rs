//! Reading policy files: the very `PushgatewayRetention` documents users `kubectl apply`.
//!
//! One bad document never hides the good ones: each problem is reported by file and by policy
//! name (or the document's line when it has no name), and the rest is loaded.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::crd::{PushgatewayRetention, PushgatewayRetentionSpec};
use crate::{Error, Result};

pub const API_VERSION: &str = "pgw-janitor.dev/v1alpha1";
pub const KIND: &str = "PushgatewayRetention";

/// One policy document, parsed (not yet checked).
#[derive(Debug, Clone)]
pub struct PolicyDoc {
    pub origin: Origin,
    pub namespace: String,
    pub name: String,
    pub spec: PushgatewayRetentionSpec,
}

impl PolicyDoc {
    /// `namespace/name`, as kubectl shows it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    /// 1-based position among the file's non-empty documents.
    pub document: usize,
    /// The line the document starts on.
    pub line: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (document {}, line {})",
            self.file.display(),
            self.document,
            self.line
        )
    }
}

/// A file or document that was not loaded, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    pub origin: Option<Origin>,
    /// `namespace/name`, when the document got that far.
    pub policy: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{o}")?,
            None => write!(f, "{}", self.file.display())?,
        }
        if let Some(p) = &self.policy {
            write!(f, " policy {p}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything read from `--policies`.
#[derive(Debug, Default)]
pub struct Loaded {
    pub policies: Vec<PolicyDoc>,
    /// Documents that are meant to be policies and are wrong.
    pub errors: Vec<Problem>,
    /// Documents of another kind, skipped (a bundle applied with kubectl may hold them).
    pub skipped: Vec<Problem>,
}

/// The files `path` names: itself, or the `*.yaml` / `*.yml` files directly in it, sorted.
///
/// Hidden entries are left out: a ConfigMap mounted as a directory keeps its real files under
/// `..data` and `..<timestamp>`, with a symlink per key at the top.
pub fn files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::File {
            path: path.to_path_buf(),
            source,
        })?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        // `is_file` follows symlinks, as the ConfigMap layout needs.
        if yaml && !name.starts_with('.') && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::config(
            "--policies",
            format!("{} holds no *.yaml or *.yml file", path.display()),
        ));
    }
    Ok(out)
}

/// Reads every policy under `path`. Only an unreadable `path` itself is an error; problems with
/// files and documents are collected.
pub fn load(path: &Path) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    for file in files(path)? {
        match std::fs::read_to_string(&file) {
            Ok(text) => parse_into(&file, &text, &mut loaded),
            Err(e) => loaded.errors.push(Problem {
                file: file.clone(),
                origin: None,
                policy: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    Ok(loaded)
}

/// Parses one file's text into `loaded`, refusing a namespace/name already loaded.
pub fn parse_into(file: &Path, text: &str, loaded: &mut Loaded) {
    let docs = match documents(file, text) {
        Ok(docs) => docs,
        Err(problem) => {
            loaded.errors.push(problem);
            return;
        }
    };
    let mut seen: BTreeMap<String, Origin> = loaded
        .policies
        .iter()
        .map(|p| (p.id(), p.origin.clone()))
        .collect();
    for (origin, value) in docs {
        let problem = |policy: Option<String>, message: String| Problem {
            file: file.to_path_buf(),
            origin: Some(origin.clone()),
            policy,
            message,
        };
        match document(value) {
            Ok(Document::Policy(policy)) => {
                let policy = PolicyDoc::new(origin.clone(), *policy);
                if let Some(first) = seen.get(&policy.id()) {
                    loaded.errors.push(problem(
                        Some(policy.id()),
                        format!("duplicate policy: {} already defines it", first),
                    ));
                    continue;
                }
                seen.insert(policy.id(), origin.clone());
                loaded.policies.push(policy);
            }
            Ok(Document::Other(what)) => loaded
                .skipped
                .push(problem(None, format!("skipped: {what}"))),
            Err((policy, message)) => loaded.errors.push(problem(policy, message)),
        }
    }
}

/// The documents of one file, each with where it starts, as parsed YAML. A file that is not valid
/// YAML is one problem: nothing in it can be trusted to be what was meant.
pub fn documents(file: &Path, text: &str) -> std::result::Result<Vec<(Origin, Value)>, Problem> {
    let docs: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| Problem {
            file: file.to_path_buf(),
            origin: None,
            policy: None,
            message: format!("not valid YAML: {e}"),
        })?;
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(i, doc)| {
            let origin = Origin {
                file: file.to_path_buf(),
                document: i + 1,
                line: doc.referenced.line(),
            };
            (origin, doc.value)
        })
        .collect())
}

/// One document, sorted.
pub enum Document {
    Policy(Box<PushgatewayRetention>),
    /// Another kind of object, described.
    Other(String),
}

impl PolicyDoc {
    /// A parsed policy at `origin`; no namespace means `default`, as kubectl applies it.
    pub fn new(origin: Origin, policy: PushgatewayRetention) -> Self {
        PolicyDoc {
            origin,
            namespace: policy
                .metadata
                .namespace
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".into()),
            name: policy.metadata.name.unwrap_or_default(),
            spec: policy.spec,
        }
    }
}

/// `namespace/name` of a document that names itself, whatever else is wrong with it.
pub fn document_id(value: &Value) -> Option<String> {
    let metadata = value.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())?;
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    Some(format!("{namespace}/{name}"))
}

/// Sorts one document: a policy, another kind, or a broken policy (its id if known, and why).
pub fn document(value: Value) -> std::result::Result<Document, (Option<String>, String)> {
    let Value::Object(map) = &value else {
        return Err((None, "not a Kubernetes object (a YAML mapping)".into()));
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let id = document_id(&value);
    if kind != KIND {
        if kind.is_empty() {
            return Err((id, format!("no kind: expected kind {KIND}")));
        }
        return Ok(Document::Other(format!(
            "kind {kind} (apiVersion {api_version:?}) is not a {KIND}"
        )));
    }
    if api_version != API_VERSION {
        return Err((
            id,
            format!("apiVersion {api_version:?}: expected {API_VERSION}"),
        ));
    }
    if id.is_none() {
        return Err((None, "metadata.name is required".into()));
    }
    if map.get("spec").is_none_or(Value::is_null) {
        return Err((id, "spec is required".into()));
    }
    let spec_error = |e: serde_json::Error| (id.clone(), format!("invalid spec: {e}"));
    // Deserialized part by part, so a type error names the part it is in.
    let spec: PushgatewayRetentionSpec =
        serde_json::from_value(map["spec"].clone()).map_err(spec_error)?;
    let mut policy: PushgatewayRetention = serde_json::from_value(value.clone())
        .map_err(|e| (id.clone(), format!("invalid metadata: {e}")))?;
    policy.spec = spec;
    Ok(Document::Policy(Box::new(policy)))
}
