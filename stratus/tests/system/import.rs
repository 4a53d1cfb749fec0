//! CSV import as the reference describes it, with every row accounted for.

use crate::harness::{Server, API_KEY};
use reqwest::StatusCode;
use serde_json::Value;

async fn import(s: &Server, body: Vec<u8>, accept: &str) -> (StatusCode, String) {
    let resp = s
        .http
        .post(format!("{}/api/v1/import/users", s.url))
        .bearer_auth(API_KEY)
        .header("content-type", "text/csv")
        .header("accept", accept)
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn pending_active_weak_and_duplicate_rows_each_get_their_result() {
    let s = Server::start().await;
    s.user("taken", None).await;
    let csv = "\u{feff}firstname,lastname,username,email,password\r\n\
               Pat,Pending,pat,pat@example.com,\r\n\
               Ada,Active,ada,ada@example.com,Strong-Password-1\r\n\
               \r\n\
               Wes,Weak,wes,wes@example.com,weak\r\n\
               Dup,Mail,dupmail,taken@example.com,\r\n\
               \"Smith, Jr.\",\"O\"\"Neil\",quoted,quoted@example.com,\r\n";
    let (st, text) = import(&s, csv.as_bytes().to_vec(), "application/json").await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let by_user = |u: &str| {
        rows.iter()
            .find(|r| r["username"] == u)
            .unwrap_or_else(|| panic!("row {u}: {text}"))
            .clone()
    };
    assert_eq!(report["imported"], 3);
    assert_eq!(report["failed"], 2);
    assert_eq!(by_user("pat")["status"], "imported");
    assert_eq!(by_user("ada")["status"], "imported");
    assert_eq!(by_user("wes")["status"], "failed");
    assert_eq!(
        by_user("wes")["message"],
        "password must be at least 12 characters long"
    );
    assert_eq!(by_user("wes")["line"], 5);
    assert!(by_user("dupmail")["message"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(by_user("quoted")["firstname"], "Smith, Jr.");

    let (_, pat) = s.get("/users?search=pat").await;
    assert_eq!(pat["users"][0]["password_status"], "pending");
    assert_eq!(pat["users"][0]["state"], "staged");
    let (_, ada) = s.get("/users?search=ada").await;
    assert_eq!(ada["users"][0]["state"], "active");
    assert_eq!(ada["users"][0]["password_status"], "active");
    let (_, quoted) = s.get("/users?search=quoted").await;
    assert_eq!(quoted["users"][0]["lastname"], "O\"Neil");
    assert_eq!(
        s.get("/users?search=wes").await.1["total"],
        0,
        "a failed row writes nothing"
    );
    assert_eq!(
        s.portal_login("ada", "Strong-Password-1", None).await.0,
        StatusCode::OK
    );

    // The downloadable results file.
    let (st, results) = import(
        &s,
        "firstname,lastname,username,email,password\nA,B,ada,x@example.com,\n".into(),
        "text/csv",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        results.starts_with("line,firstname,lastname,email,username,result\r\n"),
        "{results}"
    );
    assert!(
        results.contains("Failed: username `ada` is already taken"),
        "{results}"
    );
}

#[tokio::test]
async fn wrong_header_fails_the_file_and_a_huge_line_fails_only_its_row() {
    let s = Server::start().await;
    let (st, text) = import(
        &s,
        b"FirstName,lastname,username,email,password\nA,B,c,c@example.com,\n".to_vec(),
        "application/json",
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(
        text.contains("firstname,lastname,username,email,password"),
        "{text}"
    );

    let mut big = b"firstname,lastname,username,email,password\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    big.extend_from_slice(b",a,b,c,\nOk,Row,okrow,okrow@example.com,\n");
    let (st, text) = import(&s, big, "application/json").await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["imported"], 1);
    assert_eq!(report["failed"], 1);
    assert!(report["rows"][0]["message"]
        .as_str()
        .unwrap()
        .contains("longer than"));
}

#[tokio::test]
async fn duplicates_inside_one_file_fail_the_later_row() {
    let s = Server::start().await;
    let csv = "firstname,lastname,username,email,password\nA,A,same,one@example.com,\nB,B,same,two@example.com,\nC,C,other,ONE@example.com,\n";
    let (_, text) = import(&s, csv.into(), "application/json").await;
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["imported"], 1, "{text}");
    assert!(report["rows"][1]["message"]
        .as_str()
        .unwrap()
        .contains("earlier in this file"));
    assert!(report["rows"][2]["message"]
        .as_str()
        .unwrap()
        .contains("earlier in this file"));
}

#[tokio::test]
async fn optional_columns_carry_posix_fields_groups_hashes_and_state() {
    let s = Server::start().await;
    let (st, _) = s
        .post("/groups", serde_json::json!({"name": "Staff"}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let ssha = std::process::Command::new("slappasswd")
        .args(["-h", "{SSHA}", "-s", "Kept-Password-5"])
        .output()
        .expect("slappasswd (scripts/test installs slapd)");
    let ssha = String::from_utf8_lossy(&ssha.stdout).trim().to_string();
    // The optional columns in another order than the template's, after the required ones.
    let csv = format!(
        "firstname,lastname,username,email,password,groups,state,uid_number,gid_number,login_shell,home_directory,password_hash\n\
         Mia,Moved,mia,mia@example.com,,Staff,,20001,100,/bin/zsh,/srv/mia,{ssha}\n\
         Sam,Stopped,sam,sam@example.com,,staff,suspended,,,,,\n\
         Nan,Nogroup,nan,nan@example.com,,Staff;Ghosts,,,,,,\n\
         Bad,Number,badnum,badnum@example.com,,,,12x,,,,\n\
         Two,Secrets,two,two@example.com,Strong-Password-1,,,,,,,{ssha}\n"
    );
    let (st, text) = import(&s, csv.into_bytes(), "application/json").await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let msg = |i: usize| rows[i]["message"].as_str().unwrap().to_string();
    assert_eq!(
        (report["imported"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(3)),
        "{report}"
    );
    assert!(msg(2).contains("group `Ghosts` does not exist"), "{report}");
    assert!(
        msg(3).contains("uid_number `12x` is not a number"),
        "{report}"
    );
    assert!(msg(4).contains("not both"), "{report}");
    // A refused row left nothing behind: no user, no membership.
    let (_, nan) = s.get("/users?search=nan").await;
    assert_eq!(nan["total"], 0);

    let (_, page) = s.get("/users?search=mia").await;
    let mia = &page["users"][0];
    assert_eq!(
        (
            mia["uid_number"].as_u64(),
            mia["gid_number"].as_u64(),
            mia["login_shell"].as_str(),
            mia["home_directory"].as_str()
        ),
        (Some(20001), Some(100), Some("/bin/zsh"), Some("/srv/mia")),
        "{mia}"
    );
    assert_eq!(
        (
            mia["state"].as_str(),
            mia["legacy_password_scheme"].as_str()
        ),
        (Some("active"), Some("SSHA"))
    );
    assert_eq!(mia["groups"].as_array().map(Vec::len), Some(1));
    let (_, page) = s.get("/users?search=sam").await;
    assert_eq!(
        (
            page["users"][0]["state"].as_str(),
            page["users"][0]["groups"].as_array().map(Vec::len)
        ),
        (Some("suspended"), Some(1))
    );
    // The imported hash is the user's password.
    let (st, _) = s.portal_login("mia", "Kept-Password-5", None).await;
    assert_eq!(st, StatusCode::OK);
}
