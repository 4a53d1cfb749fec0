//! SSO apps made from their SP's metadata at the core's boundary: one write fills the app and records the
//! upload, and a refused document or a taken entity id creates nothing.

use core_directory::crypto::MasterKey;
use core_directory::directory::BootstrapRequest;
use core_directory::password::HashParams;
use core_directory::store::RedbStore;
use core_directory::{
    Actor, Directory, DirectoryConfig, DirectoryError, SpMetadata, SpMetadataReader,
};
use std::sync::Arc;

/// A stand-in for the SAML listener's reader: `sp-a` and `sp-b` name two SPs, anything else is refused.
fn reader() -> SpMetadataReader {
    SpMetadataReader(Arc::new(|xml: &str, _anchor: Option<&str>| {
        if !xml.starts_with("sp-") {
            return Err("not SAML metadata".to_string());
        }
        Ok(SpMetadata {
            entity_id: format!("https://{xml}.test/metadata"),
            acs_urls: vec![
                format!("https://{xml}.test/acs"),
                format!("https://{xml}.test/acs2"),
            ],
            acs_indexes: vec![3, 7],
            signing_certificate: None,
            authn_requests_signed: true,
            slo_url: Some(format!("https://{xml}.test/sls")),
            slo_post: true,
            encryption_certificate: None,
            signed: true,
            verified_by_trust_anchor: false,
        })
    }))
}

async fn directory(tmp: &tempfile::TempDir) -> Arc<Directory> {
    let store = RedbStore::open(&tmp.path().join("s.redb")).unwrap();
    let config = DirectoryConfig {
        hash_params: HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        sp_metadata_reader: Some(reader()),
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
async fn an_app_made_from_sp_metadata_takes_its_fields_and_records_the_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let d = directory(&tmp).await;
    let admin = Actor::system();
    let app = d
        .create_app_from_sp_metadata(&admin, "Wiki", "sp-a")
        .await
        .unwrap();
    assert_eq!(app.name, "Wiki");
    assert_eq!(app.sp_entity_id, "https://sp-a.test/metadata");
    assert_eq!(app.acs_urls.len(), 2);
    assert_eq!(app.sp_slo_url.as_deref(), Some("https://sp-a.test/sls"));
    assert!(app.sp_slo_post);
    // Signed requests need the SP's certificate, which this document did not carry.
    assert!(!app.require_signed_requests);
    let upload = app.sp_metadata_upload.expect("the upload is recorded");
    assert!(upload.signed && !upload.verified_by_trust_anchor);
    assert_eq!(d.get_app_record(&app.id).unwrap().acs_indexes, [3, 7]);
    assert_eq!(app.idp_keys.len(), 1, "an app is made with its signing key");

    // A refused document and a taken entity id create nothing.
    let before = d.list_apps().len();
    match d.create_app_from_sp_metadata(&admin, "Bad", "<x/>").await {
        Err(DirectoryError::Invalid { field, message }) => {
            assert_eq!(field, Some("metadata"));
            assert_eq!(message, "not SAML metadata");
        }
        other => panic!("{other:?}"),
    }
    let taken = d
        .create_app_from_sp_metadata(&admin, "Wiki again", "sp-a")
        .await
        .unwrap_err();
    assert!(
        matches!(
            taken,
            DirectoryError::Conflict {
                field: "sp_entity_id",
                ..
            }
        ),
        "{taken:?}"
    );
    match d.create_app_from_sp_metadata(&admin, " ", "sp-b").await {
        Err(DirectoryError::Invalid { field, .. }) => assert_eq!(field, Some("name")),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.list_apps().len(), before);
}
