//! The store beneath the API, through its interface (`rogeriq::store`): one transaction that
//! lists, scans, gets and writes; a write into a table under scan; the cascade's range delete;
//! commit signals; the salt; public ids. Run against redb and PostgreSQL alike.

use std::ops::{Bound, ControlFlow};
use std::time::Duration;

use rogeriq::error::{ApiError, ApiResult, ErrorCode};
use rogeriq::ids::{OrgId, ProjectId};
use rogeriq::org_owned::audit::Actor;
use rogeriq::org_owned::org::{self, OrgCreate};
use rogeriq::org_owned::project::{self, ProjectCreate, Slug};
use rogeriq::project_owned::conversation::{BY_CREATED, Conversation, ConversationCreate};
use rogeriq::project_owned::form::{Form, FormInput};
use rogeriq::project_owned::{self, Id, Order, ProjectScope, Routed};
use rogeriq::store::{CommitSignal, Reader, Store, layout, tables};
use serde_json::json;

use crate::helpers::TestData;

fn store_with_project() -> (TestData, Store, OrgId, ProjectId) {
    let dir = TestData::new();
    let store = dir.open_store();
    let (org_id, project_id) = store
        .write_blocking(|tx| {
            let actor = Actor::master(None);
            let org = org::create(
                tx,
                &actor,
                OrgCreate {
                    name: "Acme".into(),
                },
            )?;
            let input = ProjectCreate {
                name: "Support".into(),
                slug: Slug::try_from("support".to_string()).unwrap(),
                domain: None,
            };
            let project = project::create(tx, &actor, &org.id, input)?;
            Ok((org.id, project.id))
        })
        .unwrap();
    (dir, store, org_id, project_id)
}

fn list_conversations(reader: &impl Reader, scope: &ProjectScope) -> ApiResult<Vec<String>> {
    let order = Order {
        tag: BY_CREATED,
        group: b"",
        descending: false,
    };
    let page = project_owned::list::<Conversation>(reader, scope, order, None, 10, |_| true)?;
    Ok(page.items.into_iter().map(|c| c.id).collect())
}

#[test]
fn one_write_transaction_lists_scans_gets_and_writes() {
    let (_dir, store, org_id, project_id) = store_with_project();
    let (org_id_again, project_id_again) = (org_id.clone(), project_id.clone());
    store
        .write_blocking(move |tx| {
            let actor = Actor::master(None);
            let scope = ProjectScope::resolve(tx, &org_id, &project_id)?;
            let mut created = Vec::new();
            for _ in 0..3 {
                let input = ConversationCreate::from_json(json!({}))?;
                created.push(Conversation::create(tx, &scope, &actor, input)?.id);
            }
            // The list scans the ordering index and gets each record inside the scan.
            assert_eq!(list_conversations(tx, &scope)?, created);

            let prefix = layout::project_prefix(&org_id, &project_id);
            let mut seen = 0;
            tx.scan(
                tables::OWNED,
                layout::prefix_range(&prefix),
                false,
                &mut |key, value| {
                    assert_eq!(tx.get_raw(tables::OWNED, key)?.as_deref(), Some(value));
                    seen += 1;
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            assert!(seen > created.len(), "records and their index entries");

            let first =
                project_owned::get::<Conversation>(tx, &scope, &Id::parse_found(&created[0])?)?;
            assert_eq!(first.id, created[0]);
            let probe = scope.key(PROBE_TAG, b"probe");
            tx.put_raw(tables::OWNED, &probe, b"written")?;
            assert_eq!(
                tx.get_raw(tables::OWNED, &probe)?.as_deref(),
                Some(&b"written"[..])
            );
            assert!(tx.remove(tables::OWNED, &probe)?);

            let input = ConversationCreate::from_json(json!({"subject": "later"}))?;
            created.push(Conversation::create(tx, &scope, &actor, input)?.id);
            assert_eq!(list_conversations(tx, &scope)?, created);
            Ok(())
        })
        .unwrap();

    let listed = store
        .read_blocking(|rx| {
            let scope = ProjectScope::resolve(rx, &org_id_again, &project_id_again)?;
            list_conversations(rx, &scope)
        })
        .unwrap();
    assert_eq!(listed.len(), 4, "the transaction committed");
}

/// A tag no record kind or index uses: the probe stays invisible to listings.
const PROBE_TAG: u8 = 0xff;

#[test]
fn a_write_during_a_scan_of_its_table_is_an_error_not_a_panic() {
    let (_dir, store, org_id, project_id) = store_with_project();
    store
        .write_blocking(move |tx| {
            let scope = ProjectScope::resolve(tx, &org_id, &project_id)?;
            tx.put_raw(tables::OWNED, &scope.key(PROBE_TAG, b"a"), b"1")?;
            let err = tx
                .scan(
                    tables::OWNED,
                    layout::prefix_range(&scope.key(PROBE_TAG, b"")),
                    false,
                    &mut |key, _| {
                        tx.put_raw(tables::OWNED, key, b"2")?;
                        Ok(ControlFlow::Continue(()))
                    },
                )
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InternalError);
            assert!(err.to_string().contains("owned"), "{err}");
            // Other tables stay writable during the scan, and the table itself after it.
            tx.scan(
                tables::OWNED,
                layout::prefix_range(b""),
                false,
                &mut |_, _| {
                    tx.put_raw(tables::AUDIT, b"probe", b"x")?;
                    tx.remove(tables::AUDIT, b"probe")?;
                    Ok(ControlFlow::Break(()))
                },
            )?;
            let probe = scope.key(PROBE_TAG, b"a");
            assert_eq!(
                tx.get_raw(tables::OWNED, &probe)?.as_deref(),
                Some(&b"1"[..])
            );
            assert!(tx.remove(tables::OWNED, &probe)?);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_project_delete_after_a_list_in_one_transaction_removes_everything() {
    let (_dir, store, org_id, project_id) = store_with_project();
    let (o, p) = (org_id.clone(), project_id.clone());
    let cascade = store
        .write_blocking(move |tx| {
            let actor = Actor::master(None);
            let scope = ProjectScope::resolve(tx, &o, &p)?;
            for _ in 0..2 {
                let input = ConversationCreate::from_json(json!({}))?;
                Conversation::create(tx, &scope, &actor, input)?;
            }
            assert_eq!(list_conversations(tx, &scope)?.len(), 2);
            project_owned::registry::delete_project(tx, &actor, &o, &p)
        })
        .unwrap();
    assert_eq!(cascade, vec![("conversations".to_string(), 2)]);
    let left = store
        .read_blocking(|rx| {
            rx.scan_prefix::<Conversation>(
                tables::OWNED,
                &layout::project_prefix(&org_id, &project_id),
            )
        })
        .unwrap();
    assert!(left.is_empty());
}

#[test]
fn a_commit_wakes_the_watchers_of_the_tables_it_wrote() {
    let dir = TestData::new();
    let store = dir.open_store();
    let outbox = store.commits_to(tables::OUTBOX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let woken = |signal: &CommitSignal| {
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_millis(50), signal.committed())
                .await
                .is_ok()
        })
    };
    store
        .write_blocking(|tx| tx.put_raw(tables::AUDIT, b"a", b"1"))
        .unwrap();
    assert!(!woken(&outbox), "another table was written");
    let failed: ApiResult<()> = store.write_blocking(|tx| {
        tx.put_raw(tables::OUTBOX, b"k", b"v")?;
        Err(ApiError::internal("aborted"))
    });
    assert!(failed.is_err());
    assert!(!woken(&outbox), "nothing was committed");
    store
        .write_blocking(|tx| tx.put_raw(tables::OUTBOX, b"k", b"v"))
        .unwrap();
    // Stored while nobody waited, then taken once.
    assert!(woken(&outbox));
    assert!(!woken(&outbox));
}

#[test]
fn the_hash_salt_is_made_once_and_kept() {
    let dir = TestData::new();
    let store = dir.open_store();
    let first = store.salted_hash("127.0.0.1");
    assert_eq!(first.len(), 64);
    assert!(
        first
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_ne!(store.salted_hash("127.0.0.2"), first);
    store.close(Duration::from_secs(5)).unwrap();
    let reopened = dir.open_store();
    assert_eq!(reopened.salted_hash("127.0.0.1"), first);
    let elsewhere = TestData::new();
    assert_ne!(elsewhere.open_store().salted_hash("127.0.0.1"), first);
}

#[test]
fn public_records_are_found_by_id_until_their_project_goes() {
    let (_dir, store, org_id, project_id) = store_with_project();
    let (o, p) = (org_id.clone(), project_id.clone());
    let form_id = store
        .write_blocking(move |tx| {
            let scope = ProjectScope::resolve(tx, &o, &p)?;
            let input = FormInput::create_from_json(json!({"name": "Contact"}))?;
            Ok(Form::create(tx, &scope, &Actor::master(None), input)?.id)
        })
        .unwrap();
    let id = form_id.clone();
    let (scope, form) = store
        .read_blocking(|rx| project_owned::find_public::<Form>(rx, &Id::parse_found(&id)?))
        .unwrap()
        .expect("found by id alone");
    assert_eq!(
        (scope.org_id.as_str(), form.id.as_str()),
        (org_id.as_str(), form_id.as_str())
    );
    assert_eq!(scope.project_id, project_id);
    // Not public, or not of this shape: never found this way.
    let probe = store
        .read_blocking(|rx| {
            project_owned::find_public::<Conversation>(rx, &Id::parse_found("con_abcdefghijkl")?)
        })
        .unwrap();
    assert!(probe.is_none());

    let (o, p) = (org_id.clone(), project_id.clone());
    let cascade = store
        .write_blocking(move |tx| {
            project_owned::registry::delete_project(tx, &Actor::master(None), &o, &p)
        })
        .unwrap();
    assert_eq!(cascade, vec![("forms".to_string(), 1)]);
    let left = store
        .read_blocking(|rx| {
            let mut n = 0;
            rx.scan(
                tables::PUBLIC_IDS,
                (Bound::Unbounded, Bound::Unbounded),
                false,
                &mut |_, _| {
                    n += 1;
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(n)
        })
        .unwrap();
    assert_eq!(left, 0);
    let gone = store
        .read_blocking(move |rx| {
            project_owned::find_public::<Form>(rx, &Id::parse_found(&form_id)?)
        })
        .unwrap();
    assert!(gone.is_none());
}
