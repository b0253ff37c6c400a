//! Reloading `run --policies` the way Prometheus reloads its configuration: on `SIGHUP`, on
//! `POST /-/reload`, and when the files change (a mounted ConfigMap swaps a symlink). A file that
//! is broken keeps the last good version of its policies running, and the reload says so.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{load, load_policies, CheckedDoc, Problem};
use crate::tuning::Tuning;

/// The policies in force, by the file they came from.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    by_file: BTreeMap<PathBuf, Vec<CheckedDoc>>,
}

impl PolicySet {
    pub fn from_policies(policies: Vec<CheckedDoc>) -> PolicySet {
        let mut by_file: BTreeMap<PathBuf, Vec<CheckedDoc>> = BTreeMap::new();
        for p in policies {
            by_file.entry(p.origin.file.clone()).or_default().push(p);
        }
        PolicySet { by_file }
    }

    pub fn policies(&self) -> impl Iterator<Item = &CheckedDoc> {
        self.by_file.values().flatten()
    }

    pub fn len(&self) -> usize {
        self.by_file.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one reload gave: the policies now in force, and every problem met. `kept` names the
/// files whose last good version stays in force because the new one is broken.
#[derive(Debug)]
pub struct Reloaded {
    pub set: PolicySet,
    pub problems: Vec<Problem>,
    pub kept: Vec<PathBuf>,
}

impl Reloaded {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One paragraph for logs and for the answer to `POST /-/reload`.
    pub fn describe(&self) -> String {
        if self.ok() {
            return format!("reloaded: {} policies", self.set.len());
        }
        let mut text = format!(
            "reload failed: {} problem(s); {} policies in force",
            self.problems.len(),
            self.set.len()
        );
        for p in &self.problems {
            text.push_str(&format!("\n- {p}"));
        }
        for f in &self.kept {
            text.push_str(&format!(
                "\n- {}: its last good version stays in force",
                f.display()
            ));
        }
        text
    }
}

/// Loads the policies under `path` again. A file with any problem keeps its policies from
/// `previous` (none, if it never loaded well); a path that cannot be read at all keeps
/// everything.
pub fn reload(path: &Path, floor: Duration, tuning: &Tuning, previous: &PolicySet) -> Reloaded {
    let (runnable, problems) = match load_policies(path, floor, tuning) {
        Ok(loaded) => loaded,
        Err(e) => {
            return Reloaded {
                set: previous.clone(),
                problems: vec![Problem {
                    file: path.to_path_buf(),
                    origin: None,
                    policy: None,
                    message: e.to_string(),
                }],
                kept: previous.by_file.keys().cloned().collect(),
            }
        }
    };
    let PolicySet { mut by_file } = PolicySet::from_policies(runnable);
    let mut kept = Vec::new();
    let broken: std::collections::BTreeSet<&PathBuf> = problems.iter().map(|p| &p.file).collect();
    for file in broken {
        by_file.remove(file);
        if let Some(good) = previous.by_file.get(file) {
            by_file.insert(file.clone(), good.clone());
            kept.push(file.clone());
        }
    }
    Reloaded {
        set: PolicySet { by_file },
        problems,
        kept,
    }
}

/// A fingerprint of what `path` holds now (file names and contents, symlinks followed), so a
/// change is seen whatever way it was made.
pub fn fingerprint(path: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    match load::files(path) {
        Ok(files) => {
            for f in files {
                f.hash(&mut h);
                std::fs::read(&f).ok().hash(&mut h);
            }
        }
        Err(e) => e.to_string().hash(&mut h),
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, selector: &str) -> String {
        format!(
            "apiVersion: pgw-janitor.dev/v1alpha1\nkind: PushgatewayRetention\nmetadata:\n  \
             name: {name}\n  namespace: ns\nspec:\n  static:\n    urls: [\"http://pgw:9091\"]\n  \
             ttl: 1h\n  selector: '{selector}'\n"
        )
    }

    fn selectors(set: &PolicySet) -> Vec<String> {
        set.policies()
            .map(|p| format!("{}={}", p.name, p.spec.selector.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_policies_and_the_others_are_updated() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, policy("a", r#"{job="one"}"#)).unwrap();
        std::fs::write(&b, policy("b", r#"{job="x"}"#)).unwrap();
        let tuning = Tuning::default();
        let first = reload(dir.path(), Duration::ZERO, &tuning, &PolicySet::default());
        assert!(first.ok(), "{}", first.describe());

        std::fs::write(&a, policy("a", r#"{job=~"("}"#)).unwrap();
        std::fs::write(&b, policy("b", r#"{job="y"}"#)).unwrap();
        let second = reload(dir.path(), Duration::ZERO, &tuning, &first.set);
        assert!(!second.ok());
        assert_eq!(second.kept, vec![a.clone()]);
        assert_eq!(
            selectors(&second.set),
            [r#"a={job="one"}"#, r#"b={job="y"}"#]
        );
        let text = second.describe();
        assert!(
            text.contains("a.yaml") && text.contains("spec.selector"),
            "{text}"
        );

        std::fs::remove_file(&b).unwrap();
        let third = reload(dir.path(), Duration::ZERO, &tuning, &second.set);
        assert_eq!(
            selectors(&third.set),
            [r#"a={job="one"}"#],
            "a removed file's policies go"
        );
    }

    #[test]
    fn a_file_broken_from_the_start_runs_nothing_and_an_unreadable_path_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "not: [valid").unwrap();
        let tuning = Tuning::default();
        let r = reload(dir.path(), Duration::ZERO, &tuning, &PolicySet::default());
        assert!(!r.ok() && r.set.is_empty() && r.kept.is_empty());

        std::fs::write(dir.path().join("a.yaml"), policy("a", "")).unwrap();
        let good = reload(dir.path(), Duration::ZERO, &tuning, &PolicySet::default());
        let gone = reload(
            &dir.path().join("missing"),
            Duration::ZERO,
            &tuning,
            &good.set,
        );
        assert!(!gone.ok());
        assert_eq!(gone.set.len(), 1);
    }

    #[test]
    fn the_fingerprint_follows_content_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("..v1");
        let v2 = dir.path().join("..v2");
        std::fs::create_dir(&v1).unwrap();
        std::fs::create_dir(&v2).unwrap();
        std::fs::write(v1.join("a.yaml"), "one").unwrap();
        std::fs::write(v2.join("a.yaml"), "two").unwrap();
        std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/a.yaml", dir.path().join("a.yaml")).unwrap();
        let before = fingerprint(dir.path());
        assert_eq!(before, fingerprint(dir.path()));
        // The kubelet's swap: a new `..data` link renamed over the old one.
        std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        assert_ne!(before, fingerprint(dir.path()));
    }
}
