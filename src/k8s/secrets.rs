//! Secrets read from the Kubernetes API: the controller's secret source.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::Client;

use crate::policy::SecretRef;
use crate::secrets::{SecretSource, Unavailable};

/// Secrets of one namespace, read from the API when a sweep needs them (never cached, so a
/// rotated password is used at the next sweep).
#[derive(Clone)]
pub struct KubeSecrets {
    pub client: Client,
    pub namespace: String,
}

impl SecretSource for KubeSecrets {
    async fn get(&self, reference: &SecretRef) -> Result<Vec<u8>, Unavailable> {
        let key = match reference {
            SecretRef::Key(key) => key,
            SecretRef::File(path) => {
                return Err(Unavailable::Missing(format!(
                    "{} is a file; in a cluster secrets are Secrets",
                    path.display()
                )))
            }
        };
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let Some(secret) = api.get_opt(&key.name).await.map_err(Unavailable::Api)? else {
            return Err(Unavailable::Missing(format!(
                "Secret {:?} not found in namespace {:?}",
                key.name, self.namespace
            )));
        };
        secret
            .data
            .and_then(|mut data| data.remove(&key.key))
            .map(|bytes| bytes.0)
            .ok_or_else(|| {
                Unavailable::Missing(format!("Secret {:?} has no key {:?}", key.name, key.key))
            })
    }
}
