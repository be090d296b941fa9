mod support;
use support::server::TestServer;
#[tokio::test]
async fn smoke() {
    let s = TestServer::start().await;
    let id = s.create_user("a@x").await;
    let r = s.get(&format!("/Users/{id}")).await;
    println!("{} {:?} {}", r.status, r.headers, r.text);
    let s = s.restart().await;
    let r = s.get(&format!("/Users/{id}")).await;
    println!("{} {}", r.status, r.text);
}
