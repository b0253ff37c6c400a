//! The janitor pods' delete log (README, "Who deleted my metrics?"), read from the kubelet's log
//! files while the pods live: a pod deleted in a handover or a rollout takes its `kubectl logs`
//! with it, but its files stay until the kubelet's container GC, and the collector has read them
//! by then (it reads every 500 ms).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::cluster::Node;

/// Keeps the content of every log file of namespace `ns`'s pods (`<pod-logs>/<ns>_<pod>_<uid>/
/// <container>/<n>.log`), until dropped.
pub struct PodLogs {
    files: Arc<Mutex<BTreeMap<PathBuf, String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// One `group delete` line: the pod that logged it, and its fields.
pub struct Delete {
    pub pod: String,
    pub group: String,
    pub replica: String,
    pub outcome: String,
}

impl PodLogs {
    pub fn start(node: &Node, ns: &str) -> PodLogs {
        let dir = node.path().join("kubelet/pod-logs");
        let prefix = format!("{ns}_");
        let files = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (files.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                read_all(&dir, &prefix, &f);
                std::thread::sleep(Duration::from_millis(500));
            }
            read_all(&dir, &prefix, &f);
        });
        PodLogs {
            files,
            stop,
            thread: Some(thread),
        }
    }

    /// Every `group delete` line so far, of the pods whose name starts with `pod_prefix`.
    pub fn deletes(&self, pod_prefix: &str) -> Vec<Delete> {
        let files = self.files.lock().unwrap();
        let mut out = Vec::new();
        for (path, text) in files.iter() {
            // <ns>_<pod>_<uid>/<container>/<n>.log
            let pod_dir = path
                .parent()
                .and_then(|p| p.parent())
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let pod = pod_dir.split('_').nth(1).unwrap_or_default();
            if !pod.starts_with(pod_prefix) {
                continue;
            }
            for line in text.lines() {
                // CRI log format: TIME STREAM TAG MESSAGE
                let Some(msg) = line.splitn(4, ' ').nth(3) else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<Value>(msg) else {
                    continue;
                };
                if v["message"] == "group delete" {
                    out.push(Delete {
                        pod: pod.to_string(),
                        group: v["group"].as_str().unwrap_or_default().to_string(),
                        replica: v["replica"].as_str().unwrap_or_default().to_string(),
                        outcome: v["outcome"].as_str().unwrap_or_default().to_string(),
                    });
                }
            }
        }
        out
    }
}

fn read_all(dir: &std::path::Path, prefix: &str, files: &Mutex<BTreeMap<PathBuf, String>>) {
    let Ok(pods) = std::fs::read_dir(dir) else {
        return;
    };
    for pod in pods.flatten() {
        if !pod.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        for container in std::fs::read_dir(pod.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for file in std::fs::read_dir(container.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "log") {
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        let mut files = files.lock().unwrap();
                        let kept = files.entry(path).or_default();
                        // A file only grows while its container runs; keep the longest read.
                        if text.len() > kept.len() {
                            *kept = text;
                        }
                    }
                }
            }
        }
    }
}

impl PodLogs {
    /// Stops the collector after one last read; every `group delete` line it kept.
    pub fn finish(mut self) -> Vec<Delete> {
        self.stop_reading();
        self.deletes("")
    }

    fn stop_reading(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PodLogs {
    fn drop(&mut self) {
        self.stop_reading();
    }
}
