//! Archiving, once for every archivable kind of the registry (forms, beacons): archive and
//! unarchive answer `{id, archived}`, are idempotent, keep the first `archived_at`, and answer
//! the kind's not-found code for an unknown or malformed id.

use rogeriq::project_owned::beacon::Beacon;
use rogeriq::project_owned::form::Form;
use rogeriq::project_owned::registry::KINDS;
use rogeriq::project_owned::routed::Archivable;
use rogeriq::timestamp::Timestamp;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;

/// How this test makes a record of an archivable kind, and moves its `archived_at` beneath the
/// API. A new archivable kind needs its row here.
struct Fixture {
    plural: &'static str,
    /// The create body of a record in project `p`.
    body: fn(&TestApp, &str) -> Value,
    backdate: fn(&TestApp, &str, &str, Timestamp),
}

fn backdate<K: Archivable>(app: &TestApp, p: &str, id: &str, at: Timestamp) {
    app.rewrite::<K>(p, id, move |record| *record.archived_at() = Some(at));
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        plural: "forms",
        body: |_, _| json!({"name": "F"}),
        backdate: backdate::<Form>,
    },
    Fixture {
        plural: "beacons",
        body: |app, p| {
            let form = created(app, &app.admin_key, &pp(p, "/forms"), json!({"name": "F"}));
            json!({"form_id": id_of(&form)})
        },
        backdate: backdate::<Beacon>,
    },
];

#[test]
fn archive_and_unarchive_are_idempotent_for_every_archivable_kind() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let archivable: Vec<_> = KINDS.iter().filter(|kind| kind.archivable).collect();
    assert!(!archivable.is_empty());
    for kind in archivable {
        let fixture = FIXTURES
            .iter()
            .find(|f| f.plural == kind.plural)
            .unwrap_or_else(|| panic!("no fixture for {}: add one above", kind.plural));
        let endpoints = kind.endpoints.expect("an archivable kind is routed");
        let collection = endpoints.collection.replace("{project_id}", &p);
        let body = (fixture.body)(&app, &p);
        let id = id_of(&created(&app, &app.admin_key, &collection, body));
        let object = format!("{collection}/{id}");
        let (archive, unarchive) = (format!("{object}/archive"), format!("{object}/unarchive"));
        let archived_at = || ok_get(&app, &app.admin_key, &object)["data"]["archived_at"].clone();
        let what = kind.plural;

        let r = action(&app, &archive);
        assert_eq!(
            (r.status, r.body.clone()),
            (200, json!({"data": {"id": id, "archived": true}})),
            "{what}"
        );
        assert!(archived_at().is_string(), "{what}");
        // Archived a minute ago: archiving again now would write another time.
        let minute_ago = minute_ago();
        (fixture.backdate)(&app, &p, &id, minute_ago);
        assert_eq!(action(&app, &archive).status, 200, "{what}");
        assert_eq!(
            archived_at(),
            minute_ago.to_string(),
            "{what}: archiving again keeps the first time"
        );
        let r = action(&app, &unarchive);
        assert_eq!(
            (r.status, r.body.clone()),
            (200, json!({"data": {"id": id, "archived": false}})),
            "{what}"
        );
        assert_eq!(archived_at(), Value::Null, "{what}");
        assert_eq!(action(&app, &unarchive).status, 200, "{what}");

        let unknown = format!("{collection}/{}doesnotexist", kind.id_prefix);
        for path in [
            format!("{unknown}/archive"),
            format!("{unknown}/unarchive"),
            format!("{collection}/nonsense/archive"),
        ] {
            action(&app, &path).assert_error(404, kind.not_found.as_str());
        }
    }
}
