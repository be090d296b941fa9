//! Acknowledged means durable: the real `scimbridge serve` binary is killed with SIGKILL while
//! concurrent creates are in flight, started again on the same data dir, and every user whose
//! create was answered 201 must be there, consistently indexed (issue 2, "Storage": "`kill -9`
//! during a write loses nothing acknowledged").

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::child::Served;
use crate::support::server::{encode, TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TASKS: usize = 8;
const PER_TASK: usize = 50;
/// Kill once this many creates were acknowledged: enough to be meaningful, well before the end.
const KILL_AFTER: usize = 120;

async fn serve(dir: &Path) -> Served {
    crate::support::child::serve(dir, None, &[]).await
}

fn user(task: usize, i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("durable-{task}-{i}@example.com"),
        "name": {"givenName": "Dura", "familyName": "Ble"},
        "emails": [{"type": "work", "value": format!("durable-{task}-{i}@example.com")}],
        "active": true
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_concurrent_creates_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut served = serve(tmp.path()).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (client, base, acked, count, enough) =
            (client.clone(), served.base.clone(), acked.clone(), count.clone(), enough.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let body = user(task, i);
                let sent = client
                    .post(format!("{base}/Users"))
                    .bearer_auth(TOKEN)
                    .header("Content-Type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await;
                let Ok(res) = sent else { return }; // the server is gone
                if res.status() != StatusCode::CREATED {
                    return;
                }
                // Only a complete 201 answer counts as acknowledged.
                let Ok(text) = res.text().await else { return };
                let created: Value = serde_json::from_str(&text).expect("a 201 carries the user");
                let id = created["id"].as_str().expect("id").to_string();
                acked.lock().expect("lock").insert(body["userName"].as_str().expect("userName").to_string(), id);
                if count.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                    enough.notify_one();
                }
            }
        }));
    }
    enough.notified().await;
    // SIGKILL while the other creates are still in flight.
    served.child.kill().await.expect("SIGKILL");
    for t in tasks {
        t.await.expect("client task");
    }
    let acknowledged = acked.lock().expect("lock").clone();
    assert!(acknowledged.len() >= KILL_AFTER);
    assert!(acknowledged.len() < TASKS * PER_TASK, "the kill came while creates were still running");

    let served = serve(tmp.path()).await;
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{}{path}", served.base);
        async move {
            let res = client.get(url).bearer_auth(TOKEN).send().await.expect("restarted server answers");
            let status = res.status();
            (status, res.json::<Value>().await.expect("JSON"))
        }
    };
    for (user_name, id) in &acknowledged {
        let (status, body) = get(format!("/Users/{id}")).await;
        assert_eq!(status, StatusCode::OK, "acknowledged user {user_name} ({id}) was lost: {body}");
        assert_eq!(body["userName"], user_name.as_str());
        let (status, found) = get(format!("/Users?filter={}", encode(&format!(r#"userName eq "{user_name}""#)))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(found["totalResults"], json!(1), "{user_name}: the userName index agrees: {found}");
        assert_eq!(found["Resources"][0]["id"], id.as_str());
    }
    // The store is consistent: the count matches what a scan lists, every listed user reads back,
    // and no userName appears twice.
    let (_, counted) = get("/Users?count=0".to_string()).await;
    let total = counted["totalResults"].as_u64().expect("totalResults") as usize;
    assert!(total >= acknowledged.len(), "{total} < {}", acknowledged.len());
    assert!(total <= TASKS * PER_TASK);
    let (_, listed) = get(format!("/Users?count={}", TASKS * PER_TASK)).await;
    let resources = listed["Resources"].as_array().cloned().unwrap_or_default();
    assert_eq!(resources.len(), total, "the counter and the scan agree");
    let names: HashSet<&str> = resources.iter().filter_map(|u| u["userName"].as_str()).collect();
    assert_eq!(names.len(), total, "no userName twice");
    for u in &resources {
        let id = u["id"].as_str().expect("id");
        let (status, _) = get(format!("/Users/{id}")).await;
        assert_eq!(status, StatusCode::OK, "listed user {id} cannot be read");
    }
    // And the restarted server takes writes: one lost-or-not user can be created or is a 409.
    let again = client
        .post(format!("{}/Users", served.base))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/scim+json")
        .body(user(0, PER_TASK - 1).to_string())
        .send()
        .await
        .expect("write after restart");
    assert!(again.status() == StatusCode::CREATED || again.status() == StatusCode::CONFLICT, "{}", again.status());
}
