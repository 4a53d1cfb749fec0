//! The one authentication path at the core's own boundary, on a real redb store: implicit deny through
//! bindings, the RADIUS MFA modes, the challenge flow, the credential cache, and lockout shared by every protocol.

use core_directory::crypto::MasterKey;
use core_directory::directory::BootstrapRequest;
use core_directory::model::{RadiusMfaMode, Resource};
use core_directory::password::HashParams;
use core_directory::store::RedbStore;
use core_directory::views::{NewGroup, NewRadiusServer, NewUser, UserPatch};
use core_directory::{
    Actor, AuthOutcome, AuthRequest, DenyReason, Directory, DirectoryConfig, Id, Service,
};
use std::sync::Arc;

const PW: &str = "Right-Password-1";

struct Fixture {
    dir: Arc<Directory>,
    _tmp: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
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
    Fixture { dir, _tmp: tmp }
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

async fn group_bound_to(d: &Directory, name: &str, members: &[&Id], resource: Resource) -> Id {
    let g = d
        .create_group(
            &Actor::system(),
            NewGroup {
                name: name.into(),
                ..NewGroup::default()
            },
        )
        .await
        .unwrap();
    for m in members {
        d.add_member(&Actor::system(), &g.group.id, m)
            .await
            .unwrap();
    }
    d.bind_group(&Actor::system(), &g.group.id, resource)
        .await
        .unwrap();
    g.group.id
}

async fn radius(d: &Directory, mode: RadiusMfaMode) -> Id {
    let input = NewRadiusServer {
        name: format!("{mode:?}"),
        networks: vec!["127.0.0.1/32".parse().unwrap()],
        secret: "shared-secret-for-tests".into(),
        mfa: mode,
        methods: vec![core_directory::model::RadiusMethod::Pap],
        allow_missing_message_authenticator: false,
        otp_append: false,
        reject_reply_message: false,
        dynamic_authorization: false,
        coa_port: None,
        radsec_client: None,
        realm: Default::default(),
    };
    d.create_radius_server(&Actor::system(), input)
        .await
        .unwrap()
        .id
}

fn req(
    username: &str,
    password: &str,
    service: Service,
    resource: Option<Resource>,
) -> AuthRequest {
    AuthRequest {
        username: username.into(),
        credential: core_directory::Credential::Password(password.into()),
        otp: None,
        service,
        resource,
        client_ip: None,
        session: None,
        station: None,
    }
}

fn deny(o: &AuthOutcome) -> Option<DenyReason> {
    match o {
        AuthOutcome::Deny(r) => Some(*r),
        _ => None,
    }
}

#[tokio::test]
async fn access_is_implicitly_denied_until_a_group_is_bound() {
    let f = fixture().await;
    let d = &f.dir;
    let u = user(d, "ann").await;
    let o = d
        .authenticate(req("ann", PW, Service::Ldap, Some(Resource::Ldap)))
        .await
        .unwrap();
    assert_eq!(deny(&o), Some(DenyReason::NotBound));
    let g = group_bound_to(d, "ldap-users", &[&u], Resource::Ldap).await;
    let o = d
        .authenticate(req("ann", PW, Service::Ldap, Some(Resource::Ldap)))
        .await
        .unwrap();
    assert!(
        matches!(o, AuthOutcome::Allow(ref g) if g.groups.len() == 1),
        "{o:?}"
    );
    d.remove_member(&Actor::system(), &g, &u).await.unwrap();
    let o = d
        .authenticate(req("ann", PW, Service::Ldap, Some(Resource::Ldap)))
        .await
        .unwrap();
    assert_eq!(deny(&o), Some(DenyReason::NotBound));
    let o = d
        .authenticate(req(
            "ann",
            PW,
            Service::Radius,
            Some(Resource::Radius(Id::generate())),
        ))
        .await
        .unwrap();
    assert_eq!(deny(&o), Some(DenyReason::UnknownResource));
}

#[tokio::test]
async fn radius_mfa_modes_decide_who_is_challenged() {
    let f = fixture().await;
    let d = &f.dir;
    let enrolled = user(d, "enrolled").await;
    let enrolling = user(d, "enrolling").await;
    let plain = user(d, "plain").await;
    // enrolled: active TOTP; enrolling: MFA required, inside the enrolment period; plain: neither.
    let start = d.start_totp(&Actor::system(), &enrolled).await.unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(start.secret.as_bytes())
        .unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    let code = core_directory::totp::code_at(&secret, now - 30);
    d.confirm_totp(&Actor::system(), &enrolled, &code)
        .await
        .unwrap();
    d.update_user(
        &Actor::system(),
        &enrolling,
        UserPatch {
            mfa_required: Some(true),
            ..UserPatch::default()
        },
    )
    .await
    .unwrap();

    use RadiusMfaMode::*;
    // (mode, user, expected): "allow", "challenge", or a deny reason.
    let table: [(RadiusMfaMode, &str, &str); 12] = [
        (Off, "enrolled", "allow"),
        (Off, "enrolling", "allow"),
        (Off, "plain", "allow"),
        (RequireAll, "enrolled", "challenge"),
        (RequireAll, "enrolling", "not_enrolled"),
        (RequireAll, "plain", "not_enrolled"),
        (RequireAllExceptEnrolling, "enrolled", "challenge"),
        (RequireAllExceptEnrolling, "enrolling", "allow"),
        (RequireAllExceptEnrolling, "plain", "not_enrolled"),
        (RequireEnrolledOnly, "enrolled", "challenge"),
        (RequireEnrolledOnly, "enrolling", "allow"),
        (RequireEnrolledOnly, "plain", "allow"),
    ];
    for mode in [
        Off,
        RequireAll,
        RequireAllExceptEnrolling,
        RequireEnrolledOnly,
    ] {
        let r = radius(d, mode).await;
        group_bound_to(
            d,
            &format!("wifi-{mode:?}"),
            &[&enrolled, &enrolling, &plain],
            Resource::Radius(r.clone()),
        )
        .await;
        for (m, who, expected) in table.iter().filter(|t| t.0 == mode) {
            let o = d
                .authenticate(req(
                    who,
                    PW,
                    Service::Radius,
                    Some(Resource::Radius(r.clone())),
                ))
                .await
                .unwrap();
            let got = match &o {
                AuthOutcome::Allow(_) => "allow",
                AuthOutcome::NeedMfa(_) => "challenge",
                AuthOutcome::Deny(DenyReason::MfaNotEnrolled) => "not_enrolled",
                AuthOutcome::Deny(_) => "other deny",
            };
            assert_eq!(got, *expected, "mode {m:?}, user {who}: {o:?}");
        }
    }
}

#[tokio::test]
async fn challenge_completes_once_with_the_right_code() {
    let f = fixture().await;
    let d = &f.dir;
    let u = user(d, "bea").await;
    let start = d.start_totp(&Actor::system(), &u).await.unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(start.secret.as_bytes())
        .unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    d.confirm_totp(
        &Actor::system(),
        &u,
        &core_directory::totp::code_at(&secret, now - 30),
    )
    .await
    .unwrap();
    let r = radius(d, RadiusMfaMode::RequireAll).await;
    group_bound_to(d, "vpn", &[&u], Resource::Radius(r.clone())).await;
    let AuthOutcome::NeedMfa(challenge) = d
        .authenticate(req("bea", PW, Service::Radius, Some(Resource::Radius(r))))
        .await
        .unwrap()
    else {
        panic!("expected a challenge");
    };
    let wrong = d.complete_mfa(&challenge, "000000", None).await.unwrap();
    assert_eq!(deny(&wrong), Some(DenyReason::WrongOtp));
    // A challenge answered after its lifetime is refused whatever the code.
    let mut stale = challenge.clone();
    stale.issued_at -= core_directory::auth::MFA_CHALLENGE_LIFETIME + chrono::Duration::seconds(1);
    let late = d
        .complete_mfa(&stale, &core_directory::totp::code_at(&secret, now), None)
        .await
        .unwrap();
    assert_eq!(deny(&late), Some(DenyReason::ChallengeExpired));
    let code = core_directory::totp::code_at(&secret, now);
    let ok = d.complete_mfa(&challenge, &code, None).await.unwrap();
    assert!(
        matches!(ok, AuthOutcome::Allow(ref g) if g.mfa_used),
        "{ok:?}"
    );
    let replay = d.complete_mfa(&challenge, &code, None).await.unwrap();
    assert_eq!(deny(&replay), Some(DenyReason::WrongOtp));
}

#[tokio::test]
async fn cached_credentials_die_with_a_password_change_or_suspension() {
    let f = fixture().await;
    let d = &f.dir;
    let u = user(d, "cal").await;
    let portal = || req("cal", PW, Service::Portal, None);
    assert!(matches!(
        d.authenticate(portal()).await.unwrap(),
        AuthOutcome::Allow(_)
    ));
    assert!(
        matches!(
            d.authenticate(portal()).await.unwrap(),
            AuthOutcome::Allow(_)
        ),
        "cache hit"
    );
    d.set_password(&Actor::system(), &u, "Another-Password-2")
        .await
        .unwrap();
    assert_eq!(
        deny(&d.authenticate(portal()).await.unwrap()),
        Some(DenyReason::WrongPassword)
    );
    let new = || req("cal", "Another-Password-2", Service::Portal, None);
    assert!(matches!(
        d.authenticate(new()).await.unwrap(),
        AuthOutcome::Allow(_)
    ));
    d.update_user(
        &Actor::system(),
        &u,
        UserPatch {
            state: Some(core_directory::model::UserState::Suspended),
            ..UserPatch::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        deny(&d.authenticate(new()).await.unwrap()),
        Some(DenyReason::Suspended)
    );
}

#[tokio::test]
async fn failures_on_any_protocol_share_one_lockout() {
    let f = fixture().await;
    let d = &f.dir;
    let mut policy = (*d.password_policy()).clone();
    policy.lockout.max_failures = 3;
    d.set_password_policy(&Actor::system(), policy)
        .await
        .unwrap();
    let u = user(d, "dan").await;
    let r = radius(d, RadiusMfaMode::Off).await;
    group_bound_to(d, "all", &[&u], Resource::Ldap).await;
    group_bound_to(d, "wifi", &[&u], Resource::Radius(r.clone())).await;
    d.authenticate(req("dan", "bad", Service::Ldap, Some(Resource::Ldap)))
        .await
        .unwrap();
    d.authenticate(req(
        "dan",
        "bad",
        Service::Radius,
        Some(Resource::Radius(r.clone())),
    ))
    .await
    .unwrap();
    d.authenticate(req("dan", "bad", Service::Portal, None))
        .await
        .unwrap();
    for (service, resource) in [
        (Service::Ldap, Some(Resource::Ldap)),
        (Service::Radius, Some(Resource::Radius(r))),
        (Service::Portal, None),
    ] {
        let o = d
            .authenticate(req("dan", PW, service, resource))
            .await
            .unwrap();
        assert_eq!(deny(&o), Some(DenyReason::Locked), "{service:?}");
    }
    d.unlock_user(&Actor::system(), &u).await.unwrap();
    assert!(matches!(
        d.authenticate(req("dan", PW, Service::Ldap, Some(Resource::Ldap)))
            .await
            .unwrap(),
        AuthOutcome::Allow(_)
    ));
}

#[tokio::test]
async fn roles_are_enforced_by_the_core() {
    let f = fixture().await;
    let d = &f.dir;
    let mut read_only = Actor::system();
    read_only.role = core_directory::model::AdminRole::ReadOnly;
    let err = d
        .create_user(
            &read_only,
            NewUser {
                username: "x".into(),
                email: "x@example.com".into(),
                ..NewUser::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, core_directory::DirectoryError::Forbidden(_)),
        "{err:?}"
    );
}
