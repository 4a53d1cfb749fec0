//! The outbound SCIM outbox at the core's boundary: a failed delivery waits for its backoff, and an admin's
//! "retry now" makes it due at once without forgetting how often it failed.

use core_directory::crypto::MasterKey;
use core_directory::directory::{BootstrapRequest, ScimConnectorInput, Wanted};
use core_directory::model::{AdminRole, OutboxAction};
use core_directory::password::HashParams;
use core_directory::store::RedbStore;
use core_directory::views::{NewApp, NewUser};
use core_directory::{Actor, Directory, DirectoryConfig, DirectoryError};
use std::sync::Arc;

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

#[tokio::test]
async fn retry_now_makes_failed_deliveries_due_and_keeps_their_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = directory(&tmp).await;
    let admin = Actor::system();
    let app = d
        .create_app(
            &admin,
            NewApp {
                name: "Notes".into(),
                sp_entity_id: "https://notes.test/metadata".into(),
                acs_urls: vec!["https://notes.test/acs".into()],
                sp_certificate: None,
                nameid_format: None,
                sign: None,
                signature_algorithm: None,
                encrypt_assertion: false,
                attributes: Vec::new(),
                default_relay_state: None,
                idp_initiated: true,
                require_signed_requests: false,
                sp_slo_url: None,
                sp_slo_post: false,
                sp_encryption_certificate: None,
                metadata_trust_anchor: None,
                require_signed_metadata: false,
            },
        )
        .await
        .unwrap();
    d.set_scim_connector(
        &admin,
        &app.id,
        ScimConnectorInput {
            base_url: "https://notes.test/scim/v2".into(),
            token: Some("app-token".into()),
            group_push: None,
            allow_insecure_http: false,
        },
    )
    .await
    .unwrap();
    let user = d
        .create_user(
            &admin,
            NewUser {
                username: "ann".into(),
                email: "ann@example.com".into(),
                ..NewUser::default()
            },
        )
        .await
        .unwrap();
    d.enqueue_outbox(vec![Wanted {
        app: app.id.clone(),
        subject: user.id.clone(),
        action: OutboxAction::UpsertUser,
        seen: None,
    }])
    .await
    .unwrap();
    let item = d.outbox_due(chrono::Utc::now(), 10).remove(0);
    d.outbox_failed(&item, "connection refused".into(), None)
        .await
        .unwrap();
    assert!(
        d.outbox_due(chrono::Utc::now(), 10).is_empty(),
        "a failed delivery waits for its backoff"
    );

    // Only an admin who manages resources may hurry it.
    let mut read_only = Actor::system();
    read_only.role = AdminRole::ReadOnly;
    let refused = d.retry_outbox(&read_only, &app.id).await.unwrap_err();
    assert!(
        matches!(refused, DirectoryError::Forbidden(_)),
        "{refused:?}"
    );
    assert!(d.outbox_due(chrono::Utc::now(), 10).is_empty());

    assert_eq!(d.retry_outbox(&admin, &app.id).await.unwrap(), 1);
    let due = d.outbox_due(chrono::Utc::now(), 10);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 1, "the attempt count stays");
    assert_eq!(due[0].last_error.as_deref(), Some("connection refused"));
    // Nothing is waiting any more, so a second retry moves nothing.
    assert_eq!(d.retry_outbox(&admin, &app.id).await.unwrap(), 0);
}
