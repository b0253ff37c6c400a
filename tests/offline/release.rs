//! One version for everything a release publishes (`.github/workflows/release.yml` tags the
//! binaries, the image and the chart with it): the crate's version is the chart's `version` and
//! `appVersion`, the image the rendered chart runs by default (Helm's own SDK renders it), the
//! image Artifact Hub lists, and CHANGELOG.md has its section, whose notes the release carries.

use crate::common;

use serde_json::{json, Value};

use common::chart::{controller_container, of_kind, render};
use common::k8s::repo_root;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const IMAGE: &str = "ghcr.io/pgw-janitor/pushgateway-janitor";

fn chart_yaml() -> Value {
    let text = std::fs::read_to_string(repo_root().join("charts/pushgateway-janitor/Chart.yaml"))
        .expect("read Chart.yaml");
    serde_saphyr::from_str(&text).expect("Chart.yaml parses")
}

#[test]
fn the_chart_has_the_crates_version_and_runs_its_image_by_default() {
    let chart = chart_yaml();
    assert_eq!(chart["version"], VERSION, "Chart.yaml version");
    assert_eq!(chart["appVersion"], VERSION, "Chart.yaml appVersion");

    let want = format!("{IMAGE}:{VERSION}");
    let controller = render("pgwj", "monitoring", &json!({}));
    assert_eq!(controller_container(&controller)["image"], want.as_str());
    let cronjob = render(
        "pgwj",
        "monitoring",
        &json!({"mode": "cronjob", "cronjob": {"args": ["--gateway=http://pgw:9091", "--ttl=1h"]}}),
    );
    let jobs = of_kind(&cronjob, "CronJob");
    assert_eq!(jobs.len(), 1, "one CronJob in cronjob mode");
    assert_eq!(
        jobs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        want.as_str()
    );

    // Artifact Hub shows this image on the chart's page.
    let listed = chart["annotations"]["artifacthub.io/images"]
        .as_str()
        .expect("an artifacthub.io/images annotation");
    let images: Value = serde_saphyr::from_str(listed).expect("the annotation is YAML");
    assert_eq!(images[0]["image"], want.as_str(), "artifacthub.io/images");
}

#[test]
fn the_changelog_has_a_section_for_the_crates_version() {
    let text = std::fs::read_to_string(repo_root().join("CHANGELOG.md")).expect("CHANGELOG.md");
    let heading = format!("## [{VERSION}]");
    let section: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with(&heading))
        .skip(1)
        .take_while(|l| !l.starts_with("## ["))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('['))
        .collect();
    assert!(
        !section.is_empty(),
        "CHANGELOG.md has no notes under `{heading}`: the release takes its notes from there"
    );
    assert!(
        text.contains(&format!(
            "[{VERSION}]: https://github.com/pgw-janitor/pushgateway-janitor/releases/tag/v{VERSION}"
        )),
        "CHANGELOG.md links {VERSION} to its release"
    );
}
