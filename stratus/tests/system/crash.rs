//! Crash safety: every creation answered 201 survives `kill -9`, and the store opens cleanly.

use crate::harness::Server;
use reqwest::StatusCode;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn every_answered_creation_survives_kill_9() {
    let s = Arc::new(Server::start().await);
    let answered = Arc::new(Mutex::new(HashSet::new()));
    let mut workers = Vec::new();
    for w in 0..8 {
        let s = Arc::clone(&s);
        let answered = Arc::clone(&answered);
        workers.push(tokio::spawn(async move {
            for i in 0..125 {
                let name = format!("burst{w}x{i}");
                let body =
                    serde_json::json!({"username": name, "email": format!("{name}@example.com")});
                let resp = s
                    .http
                    .post(format!("{}/api/v1/users", s.url))
                    .bearer_auth(crate::harness::API_KEY)
                    .json(&body)
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        answered.lock().unwrap().insert(name);
                    }
                    _ => return,
                }
            }
        }));
    }
    // Kill mid-burst: once a few hundred creations have been answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while answered.lock().unwrap().len() < 300 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let killed = std::process::Command::new("kill")
        .arg("-9")
        .arg(s.pid().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    for w in workers {
        let _ = w.await;
    }
    let Ok(s) = Arc::try_unwrap(s) else {
        panic!("server still shared after the workers ended")
    };
    let (dir, tmp) = s.kill9();
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 300, "burst made progress before the kill");

    let s = Server::start_in(&dir, Default::default()).await;
    let (st, _) = s.call(reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(st, StatusCode::OK);
    let mut stored = HashSet::new();
    let mut offset = 0;
    loop {
        let (st, page) = s.get(&format!("/users?limit=1000&offset={offset}")).await;
        assert_eq!(st, StatusCode::OK);
        let users = page["users"].as_array().unwrap();
        stored.extend(
            users
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_string()),
        );
        offset += users.len();
        if users.is_empty() || offset >= page["total"].as_u64().unwrap() as usize {
            break;
        }
    }
    let lost: Vec<_> = answered.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "answered 201 but lost after kill -9: {lost:?}"
    );
    drop(s);
    drop(tmp);
}
