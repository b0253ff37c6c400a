//! A Service's replicas, from its EndpointSlices. Knows nothing of policies.

use std::collections::BTreeSet;

use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use kube::api::{Api, ListParams};
use kube::Client;

use crate::discover::{InstanceUrl, Replica};
use crate::{Error, Result};

/// Every replica behind Service `name`: each endpoint address of its EndpointSlices, ready or
/// not (a poisoned replica may fail its readiness probe and is exactly one that needs cleaning),
/// skipping only terminating ones. `port` is the port's name, or its number as the endpoints
/// serve it; without it, the slice's only port.
pub async fn discover_service(
    client: Client,
    namespace: &str,
    name: &str,
    port: Option<&str>,
    instance_url: &InstanceUrl,
) -> Result<Vec<Replica>> {
    let api: Api<EndpointSlice> = Api::namespaced(client, namespace);
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={name}"));
    let slices = api.list(&params).await.map_err(Error::Kube)?;
    let mut replicas = BTreeSet::new();
    for slice in &slices.items {
        if slice.endpoints.is_empty() {
            continue;
        }
        let number = pick_port(slice.ports.as_deref().unwrap_or_default(), port).map_err(|e| {
            Error::Discovery(format!("Service {name:?} in namespace {namespace:?}: {e}"))
        })?;
        for endpoint in &slice.endpoints {
            let terminating = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.terminating)
                .unwrap_or(false);
            if terminating {
                continue;
            }
            for address in &endpoint.addresses {
                let host = if slice.address_type == "IPv6" {
                    format!("[{address}]")
                } else {
                    address.clone()
                };
                let instance = format!("{host}:{number}");
                replicas.insert(Replica {
                    url: instance_url.to_url(&instance).map_err(Error::Discovery)?,
                    instance: Some(instance),
                });
            }
        }
    }
    if replicas.is_empty() {
        return Err(Error::Discovery(format!(
            "Service {name:?} in namespace {namespace:?} has no endpoints (no EndpointSlice labelled kubernetes.io/service-name={name} lists a non-terminating address): nothing was swept"
        )));
    }
    Ok(replicas.into_iter().collect())
}

fn pick_port(ports: &[EndpointPort], wanted: Option<&str>) -> Result<i32, String> {
    let known = || {
        ports
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    p.name.as_deref().unwrap_or(""),
                    p.port.unwrap_or(0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = match wanted {
        None => match ports {
            [only] => only.port,
            _ => {
                return Err(format!(
                    "has {} ports ({}); set spec.service.port",
                    ports.len(),
                    known()
                ))
            }
        },
        Some(w) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(w))
            .or_else(|| {
                let n: i32 = w.parse().ok()?;
                ports.iter().find(|p| p.port == Some(n))
            })
            .and_then(|p| p.port),
    };
    found.ok_or_else(|| {
        format!(
            "no port {:?} among its endpoint ports ({})",
            wanted.unwrap_or(""),
            known()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, number: i32) -> EndpointPort {
        EndpointPort {
            name: Some(name.into()),
            port: Some(number),
            ..Default::default()
        }
    }

    #[test]
    fn ports_are_chosen_by_name_number_or_as_the_only_one() {
        let two = [port("http", 9091), port("metrics", 9102)];
        assert_eq!(pick_port(&two, Some("metrics")), Ok(9102));
        assert_eq!(pick_port(&two, Some("9091")), Ok(9091));
        assert_eq!(pick_port(&two[..1], None), Ok(9091));
        let err = pick_port(&two, None).unwrap_err();
        assert!(
            err.contains("http=9091") && err.contains("spec.service.port"),
            "{err}"
        );
        assert!(pick_port(&two, Some("grpc")).unwrap_err().contains("grpc"));
    }
}
