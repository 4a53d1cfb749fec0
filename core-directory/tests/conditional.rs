//! Conditional access evaluation at the core's boundary, on a real redb store: with more than 64 groups and IP
//! lists named (so their numbering spans several words), exactly the policies whose group and list hold match,
//! and the strictest action wins.

use core_directory::conditional::{evaluate, Attempt, PolicyAction};
use core_directory::crypto::MasterKey;
use core_directory::directory::{AccessPolicyInput, BootstrapRequest, IpListInput};
use core_directory::model::Resource;
use core_directory::store::RedbStore;
use core_directory::views::{NewGroup, NewUser};
use core_directory::{Actor, Directory, DirectoryConfig, Id};
use std::sync::Arc;

fn input(name: String, action: PolicyAction) -> AccessPolicyInput {
    AccessPolicyInput {
        name,
        description: None,
        enabled: true,
        report_only: false,
        priority: None,
        target: "ldap".into(),
        groups: Vec::new(),
        excluded_groups: Vec::new(),
        source_in: Vec::new(),
        source_not_in: Vec::new(),
        time: None,
        mfa_enrolled: None,
        action,
    }
}

#[tokio::test]
async fn many_groups_and_lists_match_exactly_the_right_policies() {
    let tmp = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&tmp.path().join("s.redb")).unwrap();
    let dir = Directory::open(
        Arc::new(store),
        MasterKey::ephemeral(),
        DirectoryConfig::default(),
    )
    .unwrap();
    dir.initialise(BootstrapRequest {
        api_key: Some("x".repeat(32)),
        ..Default::default()
    })
    .await
    .unwrap();
    let a = Actor::system();
    let user = dir
        .create_user(
            &a,
            NewUser {
                username: "mia".into(),
                email: "mia@example.com".into(),
                ..NewUser::default()
            },
        )
        .await
        .unwrap()
        .id;
    let mut groups: Vec<Id> = Vec::new();
    let mut lists: Vec<Id> = Vec::new();
    for i in 0..70 {
        let g = dir
            .create_group(
                &a,
                NewGroup {
                    name: format!("g{i}"),
                    ..NewGroup::default()
                },
            )
            .await
            .unwrap()
            .group
            .id;
        groups.push(g);
        let l = dir
            .put_ip_list(
                &a,
                None,
                IpListInput {
                    name: format!("l{i}"),
                    description: None,
                    networks: vec![format!("10.{i}.0.0/16")],
                },
            )
            .await
            .unwrap();
        lists.push(l.list.id);
    }
    dir.add_member(&a, &groups[66], &user).await.unwrap();
    for (i, g) in groups.iter().enumerate() {
        let mut p = input(format!("group {i}"), PolicyAction::RequireMfa);
        p.groups = vec![g.clone()];
        dir.put_access_policy(&a, None, p).await.unwrap();
    }
    for (i, l) in lists.iter().enumerate() {
        let mut p = input(format!("list {i}"), PolicyAction::Allow);
        p.source_in = vec![l.clone()];
        p.excluded_groups = vec![groups[i].clone()];
        dir.put_access_policy(&a, None, p).await.unwrap();
    }
    let snap = dir.snapshot();
    let u = snap.user(&user).cloned().unwrap();
    let at = |ip: &str| Attempt {
        resource: Some(&Resource::Ldap),
        source: Some(ip.parse().unwrap()),
        at: chrono::Utc::now(),
    };
    // From 10.65.x: "list 65" matches (mia is not in g65), and "group 66" (she is in g66): require_mfa wins.
    let mut trace = Vec::new();
    let v = evaluate(&snap, &u, at("10.65.1.1"), Some(&mut trace));
    assert_eq!(v.decided.as_ref().unwrap().name, "group 66");
    let matched: Vec<&str> = trace
        .iter()
        .filter(|t| t.matched)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(matched, ["group 66", "list 65"]);
    // From 10.66.x: "list 66" excludes g66, so only "group 66" matches; without a trace, the same verdict.
    let v = evaluate(&snap, &u, at("10.66.1.1"), None);
    assert_eq!(v.decided.as_ref().unwrap().name, "group 66");
    let mut trace = Vec::new();
    evaluate(&snap, &u, at("10.66.1.1"), Some(&mut trace));
    assert_eq!(trace.iter().filter(|t| t.matched).count(), 1);
    // Out of g66, from 10.3.x: the allow of "list 3" alone.
    dir.remove_member(&a, &groups[66], &user).await.unwrap();
    let snap = dir.snapshot();
    let v = evaluate(&snap, &u, at("10.3.0.9"), None);
    assert_eq!(v.decided.as_ref().unwrap().name, "list 3");
    assert_eq!(v.decided.unwrap().action, PolicyAction::Allow);
    assert!(evaluate(&snap, &u, at("192.0.2.1"), None).decided.is_none());
}
