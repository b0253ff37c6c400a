//! Talking to a [`TestGateway`] the way pushers and readers do: pushes in text exposition format,
//! deletes, and reads of `api/v1/metrics` and `api/v1/status`, all over the harness's own HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{gauge_value, group_path, key, Key, TestGateway};

impl TestGateway {
    /// Any request; returns status and body. Redirects are not followed, so a `//` path shows up
    /// as the redirect it gets.
    pub async fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut req = self.client.request(method, self.url(path));
        if let Some(body) = body {
            req = req
                .header("Content-Type", "text/plain; version=0.0.4")
                .body(body.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {path} to {}: {e}", self.base_url));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// `GET path`; status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, None).await
    }

    /// Pushes (`PUT`, replacing the group) like a real client. Panics unless 200/202.
    pub async fn push(&self, key: &[(&str, &str)], body: &str) {
        let (status, text) = self.request("PUT", &group_path(key), Some(body)).await;
        assert!(
            status == 200 || status == 202,
            "push {key:?} to {} answered {status}: {text}",
            self.base_url
        );
    }

    /// Pushes `n` groups `{job=JOB, instance="i-<k>"}` (k in 0..n), each with `fill_seq <k>`,
    /// `concurrency` at a time. For filling a replica fast, start it with
    /// `--push.disable-consistency-check`: the check makes every push O(store).
    pub async fn fill(&self, job: &str, n: usize, concurrency: usize) {
        use futures::StreamExt as _;
        futures::stream::iter(0..n)
            .map(|k| async move {
                let instance = format!("i-{k}");
                self.push(
                    &[("job", job), ("instance", &instance)],
                    &format!("fill_seq {k}\n"),
                )
                .await
            })
            .buffer_unordered(concurrency)
            .collect::<Vec<()>>()
            .await;
    }

    /// How many groups of `job` the replica holds.
    pub async fn count_job(&self, job: &str) -> usize {
        self.groups()
            .await
            .iter()
            .filter(|k| k.get("job").map(String::as_str) == Some(job))
            .count()
    }

    /// `data.start_time` of `api/v1/status`: changes when the replica restarts.
    pub async fn start_time(&self) -> String {
        let (status, text) = self.get("api/v1/status").await;
        assert_eq!(status, 200, "api/v1/status answered {status}: {text}");
        let doc: Value = serde_json::from_str(&text).expect("api/v1/status is JSON");
        doc["data"]["start_time"]
            .as_str()
            .expect("data.start_time")
            .to_string()
    }

    /// `PUT` to a group, for tests that expect a failure; returns the status.
    pub async fn push_expect_status(&self, key: &[(&str, &str)], body: &str) -> u16 {
        self.request("PUT", &group_path(key), Some(body)).await.0
    }

    /// `PUT` to a literal path below the route prefix, e.g. `metrics/job/a/instance/x`.
    pub async fn push_raw_path(&self, path: &str, body: &str) -> u16 {
        self.request("PUT", path, Some(body)).await.0
    }

    /// `DELETE` a group (only queued by the gateway: re-read to confirm). Returns the status.
    pub async fn delete(&self, key: &[(&str, &str)]) -> u16 {
        self.request("DELETE", &group_path(key), None).await.0
    }

    /// `DELETE` a literal path below the route prefix.
    pub async fn delete_raw_path(&self, path: &str) -> u16 {
        self.request("DELETE", path, None).await.0
    }

    /// Every group object of `api/v1/metrics`, untouched.
    pub async fn groups_json(&self) -> Vec<Value> {
        let (status, text) = self.get("api/v1/metrics").await;
        assert_eq!(status, 200, "api/v1/metrics answered {status}: {text}");
        let doc: Value = serde_json::from_str(&text).expect("api/v1/metrics is JSON");
        doc["data"].as_array().cloned().unwrap_or_default()
    }

    /// The grouping keys present on the replica, in the gateway's order.
    pub async fn groups(&self) -> Vec<Key> {
        self.groups_json().await.iter().map(labels_of).collect()
    }

    /// The group object with exactly this key.
    pub async fn group(&self, key: &[(&str, &str)]) -> Option<Value> {
        let want = self::key(key);
        self.groups_json()
            .await
            .into_iter()
            .find(|g| labels_of(g) == want)
    }

    /// `push_time_seconds` of the group with exactly this key (0 for a phantom group).
    pub async fn push_time(&self, key: &[(&str, &str)]) -> Option<f64> {
        gauge_value(&self.group(key).await?, "push_time_seconds")
    }

    pub async fn has_group(&self, key: &[(&str, &str)]) -> bool {
        self.group(key).await.is_some()
    }

    /// Polls `groups()` until `pred` holds, bounded by `timeout`; returns those groups or panics
    /// with the last ones seen. Deletes are queued on the gateway, so tests wait for the state.
    pub async fn wait_for_groups<F>(&self, pred: F, timeout: Duration) -> Vec<Key>
    where
        F: Fn(&[Key]) -> bool,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let groups = self.groups().await;
            if pred(&groups) {
                return groups;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: groups never matched within {timeout:?}; last seen: {groups:?}",
                    self.base_url
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `data.flags` of `api/v1/status` (all values are strings).
    pub async fn status_flags(&self) -> BTreeMap<String, String> {
        let (status, text) = self.get("api/v1/status").await;
        assert_eq!(status, 200, "api/v1/status answered {status}: {text}");
        let doc: Value = serde_json::from_str(&text).expect("api/v1/status is JSON");
        doc["data"]["flags"]
            .as_object()
            .expect("data.flags")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    }

    /// Makes the replica poisoned as seen on 1.5.1 (PUSHGATEWAY.md, "Poisoned replicas"):
    /// pushes `{job=J}`, then `{job=J,instance=""}`, which answers 400 and leaves a phantom group
    /// with `push_time_seconds` 0; then checks that `GET metrics` answers 500.
    pub async fn poison(&self, job: &str) {
        self.push(&[("job", job)], "poison_probe 1\n").await;
        let status = self
            .push_expect_status(&[("job", job), ("instance", "")], "poison_probe 1\n")
            .await;
        assert_eq!(status, 400, "the colliding push should be refused");
        let (status, text) = self.get("metrics").await;
        assert_eq!(
            status, 500,
            "a poisoned replica's /metrics should fail: {text}"
        );
    }
}

fn labels_of(group: &Value) -> Key {
    group["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}
