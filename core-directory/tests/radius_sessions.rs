//! Open RADIUS accounting sessions at the core's boundary, on a real redb store: which changes end a session's
//! right to go on (`radius_session_refusal`, judged on the live snapshot), and the change sequence listeners
//! wait on.

use core_directory::crypto::MasterKey;
use core_directory::directory::BootstrapRequest;
use core_directory::model::{RadiusMethod, RadiusMfaMode, Resource, UserState};
use core_directory::password::HashParams;
use core_directory::radius_sessions::{Applied, RadiusSession, SessionQuery, ACCOUNTING_EVENT};
use core_directory::store::RedbStore;
use core_directory::views::{NewGroup, NewRadiusServer, NewUser, UserPatch};
use core_directory::{
    Actor, AuthRequest, Credential, DenyReason, Directory, DirectoryConfig, Event, Id, Service,
};
use std::sync::Arc;

const PW: &str = "Right-Password-1";

async fn directory(tmp: &tempfile::TempDir) -> Arc<Directory> {
    let store = RedbStore::open(&tmp.path().join("s.redb")).unwrap();
    let config = DirectoryConfig {
        hash_params: HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        ..DirectoryConfig::default()
    };
    let dir = Directory::open(Arc::new(store), MasterKey::ephemeral(), config).unwrap();
    dir.initialise(BootstrapRequest {
        api_key: Some("x".repeat(32)),
        ..Default::default()
    })
    .await
    .unwrap();
    dir
}

async fn user(d: &Directory, name: &str) -> Id {
    let input = NewUser {
        username: name.into(),
        email: format!("{name}@example.com"),
        password: Some(PW.into()),
        ..NewUser::default()
    };
    d.create_user(&Actor::system(), input).await.unwrap().id
}

/// A Start as the RADIUS listener records it.
fn start(profile: &Id, user: &Id, username: &str, session: &str) -> Event {
    Event::new(Service::Radius, ACCOUNTING_EVENT, true)
        .client(Some("192.0.2.1".parse().unwrap()))
        .user(username)
        .target("user", user)
        .detail("resource", format!("radius:{profile}"))
        .detail("status", "Start")
        .detail("session_id", session)
}

fn session_of(d: &Directory, username: &str) -> RadiusSession {
    let mut v = d.radius_sessions(&SessionQuery {
        user: Some(username.into()),
        profile: None,
    });
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

#[tokio::test]
async fn a_session_is_refused_once_its_user_is_suspended_locked_deleted_or_unbound() {
    let tmp = tempfile::tempdir().unwrap();
    let d = directory(&tmp).await;
    let sys = Actor::system();
    let mut policy = (*d.password_policy()).clone();
    policy.lockout.max_failures = 1;
    d.set_password_policy(&sys, policy).await.unwrap();
    let profile = d
        .create_radius_server(
            &sys,
            NewRadiusServer {
                name: "ap".into(),
                networks: vec!["192.0.2.0/24".parse().unwrap()],
                secret: "shared-secret-for-tests".into(),
                mfa: RadiusMfaMode::Off,
                methods: vec![RadiusMethod::Pap],
                allow_missing_message_authenticator: false,
                otp_append: false,
                reject_reply_message: false,
                dynamic_authorization: true,
                coa_port: None,
                radsec_client: None,
                realm: Default::default(),
            },
        )
        .await
        .unwrap()
        .id;
    let names = ["ann", "bob", "cat", "dan", "eve"];
    let mut ids = Vec::new();
    for n in names {
        ids.push(user(&d, n).await);
    }
    let group = |name: &str| NewGroup {
        name: name.into(),
        ..NewGroup::default()
    };
    let wifi = d.create_group(&sys, group("wifi")).await.unwrap().group.id;
    let guests = d
        .create_group(&sys, group("guests"))
        .await
        .unwrap()
        .group
        .id;
    for u in &ids[..4] {
        d.add_member(&sys, &wifi, u).await.unwrap();
    }
    d.add_member(&sys, &guests, &ids[4]).await.unwrap();
    let resource = Resource::Radius(profile.clone());
    d.bind_group(&sys, &wifi, resource.clone()).await.unwrap();
    d.bind_group(&sys, &guests, resource).await.unwrap();
    for (n, id) in names.iter().zip(&ids) {
        let applied = d
            .radius_session_event(start(&profile, id, n, &format!("s-{n}")))
            .await;
        assert_eq!(applied, Applied::Opened);
        assert_eq!(d.radius_session_refusal(&session_of(&d, n)), None, "{n}");
    }

    let changes = d.changes();
    let patch = UserPatch {
        state: Some(UserState::Suspended),
        ..UserPatch::default()
    };
    d.update_user(&sys, &ids[0], patch).await.unwrap();
    assert!(
        changes.has_changed().unwrap(),
        "a write moves the change sequence"
    );
    let wrong = AuthRequest {
        username: "bob".into(),
        credential: Credential::Password("wrong".into()),
        otp: None,
        service: Service::Radius,
        resource: Some(Resource::Radius(profile.clone())),
        client_ip: None,
        session: None,
        station: None,
    };
    d.authenticate(wrong).await.unwrap();
    d.delete_user(&sys, &ids[2]).await.unwrap();
    d.remove_member(&sys, &wifi, &ids[3]).await.unwrap();
    d.delete_group(&sys, &guests).await.unwrap();

    let refusal = |n: &str| d.radius_session_refusal(&session_of(&d, n));
    assert_eq!(refusal("ann"), Some(DenyReason::Suspended));
    assert_eq!(refusal("bob"), Some(DenyReason::Locked));
    assert_eq!(refusal("cat"), Some(DenyReason::UnknownUser));
    assert_eq!(refusal("dan"), Some(DenyReason::NotBound));
    assert_eq!(refusal("eve"), Some(DenyReason::NotBound));
    assert_eq!(d.radius_session_counts().get(&profile), Some(&5));
}
