//! The groups column of lifecycle reports (issue 10 "The cleanup report's groups column is
//! empty"): each affected account's groups in the target, read from the product, on every
//! product, in the stored report and in the CSV the CLI writes.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::support::atlassian_emulator::{
    Emulator, BITBUCKET_PASSWORD, BITBUCKET_USER, CROWD_APP, CROWD_PASSWORD, TOKEN as ATL_TOKEN,
};
use crate::support::server::{config_with_toml, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

fn days_ago(d: i64) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() - chrono::Duration::days(d) - chrono::Duration::minutes(5))
}

fn target_toml(emu: &Emulator) -> String {
    let p = emu.product();
    let head = match p {
        Product::Crowd => format!(
            "[[target]]\nname = \"crowd\"\nproduct = \"crowd\"\nurl = \"{}\"\nusername = \"{CROWD_APP}\"\npassword_env = \"CROWD_PASSWORD\"\n",
            emu.base_url()
        ),
        Product::Bitbucket => format!(
            "[[target]]\nname = \"bitbucket\"\nproduct = \"bitbucket\"\nurl = \"{}\"\nusername = \"{BITBUCKET_USER}\"\npassword_env = \"BB_PASSWORD\"\n",
            emu.base_url()
        ),
        p => format!("[[target]]\nname = \"{p}\"\nproduct = \"{p}\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n", emu.base_url()),
    };
    let licence = if p == Product::Bitbucket { "license_groups = [\"stash-users\"]\n" } else { "" };
    format!("{head}{licence}[cleanup]\ninactive_days = 90\n")
}

const ENV: [(&str, &str); 3] =
    [("ATL_TOKEN", ATL_TOKEN), ("CROWD_PASSWORD", CROWD_PASSWORD), ("BB_PASSWORD", BITBUCKET_PASSWORD)];

async fn seeded(product: Product) -> Emulator {
    let emu = Emulator::start(product).await;
    emu.seed_users([("old".to_string(), days_ago(200), true), ("fresh".to_string(), days_ago(1), true)]);
    for g in ["team-a", "stash-users", "wiki-editors"] {
        emu.add_member("old", g);
    }
    emu
}

#[tokio::test]
async fn a_cleanup_report_lists_each_affected_accounts_groups_in_the_target_on_every_product() {
    for product in [Product::Jira, Product::Confluence, Product::Crowd, Product::Bitbucket] {
        let emu = seeded(product).await;
        let s = TestServer::start_toml(&target_toml(&emu), &ENV).await;
        let r = s
            .client
            .post(format!("{}/admin/cleanup?mode=dry-run", s.root))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("cleanup");
        assert_eq!(r.status(), 200, "{product}");
        let report: Value = r.json().await.expect("report");
        let old = report["findings"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["username"] == "old"))
            .unwrap_or_else(|| panic!("{product}: old is affected: {report:#}"));
        let mut groups: Vec<&str> =
            old["groups"].as_array().expect("groups").iter().filter_map(Value::as_str).collect();
        groups.sort();
        assert_eq!(groups, ["stash-users", "team-a", "wiki-editors"], "{product}: {old}");
        assert!(emu.violations().is_empty(), "{product}: {:?}", emu.violations());
        s.stop().await;
    }
}

#[tokio::test]
async fn the_csv_report_the_cli_writes_has_the_groups_column_filled() {
    let jira = seeded(Product::Jira).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let config = config_with_toml(tmp.path(), &target_toml(&jira), &ENV);
    // A local run reads an existing store; it never creates one.
    drop(scimbridge::store::Store::open(&config.data_dir).expect("store"));
    let out = tmp.path().join("reports");
    let op = scimbridge::cli_lifecycle::LifecycleOp::Cleanup {
        mode: scimbridge::lifecycle::Mode::DryRun,
        target: None,
        orphans: false,
    };
    tokio::time::timeout(Duration::from_secs(60), scimbridge::cli_lifecycle::run(&config, op, &out))
        .await
        .expect("in time")
        .expect("cleanup runs");
    let csv = std::fs::read_dir(&out)
        .expect("out")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .expect("a CSV");
    let mut reader = csv::Reader::from_path(csv).expect("csv");
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    let groups = header.iter().position(|h| h == "groups").expect("a groups column");
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][groups], "stash-users;team-a;wiki-editors");
}
