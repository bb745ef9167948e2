use serde_json::json;

use crate::helpers::*;

#[test]
fn create_matches_the_seed_example() {
    let app = TestApp::spawn();
    let r = app.post(
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        &app.admin_key,
        json!({"name": "Acme Support", "domain": "support.acme.com"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let data = r.data();
    let keys: Vec<&str> = data.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "org_id", "name", "slug", "domain", "agent_mode", "ai_model", "created_at"]);
    assert!(data["id"].as_str().unwrap().starts_with("prj_"));
    assert_eq!(data["id"].as_str().unwrap().len(), 16);
    assert_eq!(data["org_id"], app.org_id.as_str());
    assert_eq!(data["slug"], "acme-support");
    assert_eq!(data["agent_mode"], "copilot");
    assert_eq!(data["ai_model"], json!(null));
    assert!(data["created_at"].as_str().unwrap().ends_with('Z'));
}
