use super::*;
use serde_json::json;

fn cel(spec: serde_json::Value) -> Result<(), String> {
    PushgatewayRetentionSpec::validate_cel(&spec, None).map_err(|e| format!("{e:?}"))
}

fn base() -> serde_json::Value {
    json!({"static": {"urls": ["http://pgw:9091"]}, "ttl": "6h", "minTtl": "1m",
           "action": "DeleteGroups", "onlyIfAllStale": false})
}

#[test]
fn a_valid_spec_passes_the_cel_rules() {
    cel(base()).unwrap();
    let mut wipe = base();
    wipe["action"] = json!("Wipe");
    wipe["schedule"] = json!({"cron": "0 3 * * *"});
    wipe.as_object_mut().unwrap().remove("ttl");
    cel(wipe).unwrap();
}

#[test]
fn cel_rejects_no_source_and_two_sources() {
    let mut none = base();
    none.as_object_mut().unwrap().remove("static");
    assert!(cel(none).unwrap_err().contains("exactly one"));
    let mut two = base();
    two["prometheus"] = json!({"url": "http://p:9090", "job": "pgw"});
    assert!(cel(two).unwrap_err().contains("exactly one"));
}

#[test]
fn cel_rejects_a_ttl_under_min_ttl_and_a_missing_ttl() {
    let mut short = base();
    short["ttl"] = json!("30s");
    assert!(cel(short).unwrap_err().contains("under minTtl"));
    let mut missing = base();
    missing.as_object_mut().unwrap().remove("ttl");
    assert!(cel(missing).unwrap_err().contains("ttl is required"));
}

#[test]
fn cel_refuses_up_discovery_without_an_allow_list() {
    let mut up = base();
    up.as_object_mut().unwrap().remove("static");
    up["prometheus"] = json!({"url": "http://p:9090", "job": "pgw", "discovery": "Up"});
    assert!(cel(up.clone()).unwrap_err().contains("allowedReplicas"));
    up["prometheus"]["allowedReplicas"] = json!({"cidrs": ["10.0.0.0/8"]});
    cel(up.clone()).unwrap();
    up["prometheus"]["discovery"] = json!("Targets");
    up["prometheus"]
        .as_object_mut()
        .unwrap()
        .remove("allowedReplicas");
    cel(up).unwrap();
}

#[test]
fn cel_keeps_schedule_and_only_if_all_stale_for_wipes() {
    let mut sched = base();
    sched["schedule"] = json!({"cron": "0 3 * * *"});
    assert!(cel(sched).unwrap_err().contains("schedule is only"));
    let mut stale = base();
    stale["onlyIfAllStale"] = json!(true);
    assert!(cel(stale).unwrap_err().contains("onlyIfAllStale"));
}
