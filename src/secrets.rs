//! Where a policy's secret values come from, behind one trait: files the user named (`sweep`'s
//! `--*-file` flags), a directory laid out as Kubernetes mounts Secrets (`run --secrets-dir`,
//! `DIR/<secret>/<key>`), or the Kubernetes API (the controller, `k8s::secrets`). Whichever it
//! is, a value that cannot be had is the same failure: `Error::Secret`, naming the field.

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::policy::SecretRef;

/// Why a secret value cannot be had.
#[derive(Debug)]
pub enum Unavailable {
    /// The file, Secret or key is not there or cannot be read: the user's to fix.
    Missing(String),
    /// The API failed the read (a remote's fault).
    Api(kube::Error),
}

/// Where secret values come from.
pub trait SecretSource {
    /// The value `reference` points at.
    fn get(
        &self,
        reference: &SecretRef,
    ) -> impl Future<Output = Result<Vec<u8>, Unavailable>> + Send;
}

/// Files named on the command line. A Secret reference has no meaning here.
#[derive(Debug, Clone, Default)]
pub struct FileSecrets;

impl SecretSource for FileSecrets {
    async fn get(&self, reference: &SecretRef) -> Result<Vec<u8>, Unavailable> {
        match reference {
            SecretRef::File(path) => read(path).await,
            SecretRef::Key(k) => Err(Unavailable::Missing(format!(
                "refers to Secret {:?}, but these secrets are read from files",
                k.name
            ))),
        }
    }
}

/// Secrets mounted as files: `DIR/<secret name>/<key>`, or `DIR/<namespace>/<secret name>/<key>`
/// when each policy may use only its own namespace's Secrets.
#[derive(Debug, Clone, Default)]
pub struct DirSecrets {
    pub dir: Option<PathBuf>,
    /// `Some`: only this namespace's subdirectory (`run --secrets-by-namespace`), as the
    /// controller reads only the policy's own namespace.
    pub namespace: Option<String>,
}

impl DirSecrets {
    /// The same directory, limited to the Secrets of `namespace` when `by_namespace`.
    pub fn for_namespace(&self, namespace: &str, by_namespace: bool) -> DirSecrets {
        DirSecrets {
            dir: self.dir.clone(),
            namespace: by_namespace.then(|| namespace.to_string()),
        }
    }
}

impl SecretSource for DirSecrets {
    async fn get(&self, reference: &SecretRef) -> Result<Vec<u8>, Unavailable> {
        let key = match reference {
            SecretRef::Key(key) => key,
            SecretRef::File(path) => return read(path).await,
        };
        let Some(dir) = &self.dir else {
            return Err(Unavailable::Missing(format!(
                "refers to Secret {:?}, but without a cluster secrets are read from files: pass --secrets-dir",
                key.name
            )));
        };
        for part in [&key.name, &key.key]
            .into_iter()
            .chain(self.namespace.as_ref())
        {
            if part.is_empty() || part.contains('/') || part == ".." || part == "." {
                return Err(Unavailable::Missing(format!(
                    "{part:?} is not a Secret name or key"
                )));
            }
        }
        let dir = match &self.namespace {
            Some(namespace) => dir.join(namespace),
            None => dir.clone(),
        };
        read(&dir.join(&key.name).join(&key.key)).await
    }
}

async fn read(path: &Path) -> Result<Vec<u8>, Unavailable> {
    tokio::fs::read(path)
        .await
        .map_err(|e| Unavailable::Missing(format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::SecretKeyRef;

    fn key(name: &str, key: &str) -> SecretRef {
        SecretRef::Key(SecretKeyRef {
            name: name.into(),
            key: key.into(),
        })
    }

    fn missing(r: Result<Vec<u8>, Unavailable>) -> String {
        match r {
            Err(Unavailable::Missing(why)) => why,
            other => panic!("expected a missing secret, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_mounted_secret_is_read_from_its_key_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pgw-auth")).unwrap();
        std::fs::write(dir.path().join("pgw-auth/password"), "s3cret\n").unwrap();
        let secrets = DirSecrets {
            dir: Some(dir.path().into()),
            namespace: None,
        };
        let value = secrets.get(&key("pgw-auth", "password")).await.unwrap();
        assert_eq!(value, b"s3cret\n");
        let why = missing(secrets.get(&key("pgw-auth", "nope")).await);
        assert!(why.contains("cannot read") && why.contains("nope"), "{why}");
    }

    #[tokio::test]
    async fn by_namespace_a_policy_reads_only_its_own_namespaces_secrets() {
        let dir = tempfile::tempdir().unwrap();
        for (ns, value) in [("team-a", "a-token"), ("team-b", "b-token")] {
            std::fs::create_dir_all(dir.path().join(ns).join("tok")).unwrap();
            std::fs::write(dir.path().join(ns).join("tok/token"), value).unwrap();
        }
        let all = DirSecrets {
            dir: Some(dir.path().into()),
            namespace: None,
        };
        let a = all.for_namespace("team-a", true);
        assert_eq!(a.get(&key("tok", "token")).await.unwrap(), b"a-token");
        // team-b's Secret cannot be named from team-a: a name is never a path.
        let why = missing(a.get(&key("../team-b/tok", "token")).await);
        assert!(why.contains("not a Secret name"), "{why}");
        let why = missing(
            all.for_namespace("team-c", true)
                .get(&key("tok", "token"))
                .await,
        );
        assert!(why.contains("team-c"), "{why}");
    }

    #[tokio::test]
    async fn without_a_secrets_dir_the_error_names_the_flag() {
        let why = missing(DirSecrets::default().get(&key("tok", "token")).await);
        assert!(
            why.contains("--secrets-dir") && why.contains("tok"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn secret_names_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = DirSecrets {
            dir: Some(dir.path().into()),
            namespace: None,
        };
        let why = missing(secrets.get(&key("..", "passwd")).await);
        assert!(why.contains("not a Secret name"), "{why}");
    }

    #[tokio::test]
    async fn files_are_read_as_given_and_secret_references_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "t0ken").unwrap();
        assert_eq!(
            FileSecrets.get(&SecretRef::File(path)).await.unwrap(),
            b"t0ken"
        );
        let why = missing(FileSecrets.get(&key("tok", "token")).await);
        assert!(why.contains("read from files"), "{why}");
    }
}
