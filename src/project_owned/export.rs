//! An organisation's data as JSON lines (`rogeriq export`): the organisation, then each of its
//! projects followed by everything the project owns, each object in its API wire shape (the
//! registry's `view_of`). One line per object:
//!
//! ```text
//! {"kind":"organisation","data":{…}}
//! {"kind":"project","data":{…}}
//! {"kind":"conversation","project_id":"prj_…","data":{…}}
//! ```
//!
//! `kind` is the kind's singular name (`registry::KINDS`). A project's objects follow it,
//! grouped by kind. It reads one snapshot and writes as it goes, so memory stays flat whatever
//! the organisation's size.

use std::io::Write;
use std::ops::{Bound, ControlFlow};

use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::ids::OrgId;
use crate::org_owned::{audit, org, project};
use crate::project_owned::FIRST_INDEX_TAG;
use crate::project_owned::registry::kind_of_tag;
use crate::store::{Reader, layout, tables};

#[derive(Serialize)]
struct Line<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<&'a str>,
    data: &'a Value,
}

/// Lines written, in total and of project-owned objects.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Exported {
    pub projects: u64,
    pub objects: u64,
}

/// Writes the organisation `org_id` and all its projects' objects to `out`, one JSON line each.
pub fn export_org(
    reader: &impl Reader,
    org_id: &OrgId,
    out: &mut dyn Write,
) -> ApiResult<Exported> {
    let org = org::get(reader, org_id)?.ok_or_else(org::not_found)?;
    write_line(out, "organisation", None, &audit::snapshot(&org.view())?)?;
    let mut exported = Exported::default();
    for project in project::list(reader, org_id)? {
        write_line(out, "project", None, &audit::snapshot(&project.view())?)?;
        exported.projects += 1;
        // Records only: their tags lie below the index entries' under the project's prefix.
        let prefix = layout::project_prefix(&project.org_id, &project.id);
        let mut end = prefix.clone();
        end.push(FIRST_INDEX_TAG);
        reader.scan(
            tables::OWNED,
            (Bound::Included(prefix.clone()), Bound::Excluded(end)),
            false,
            &mut |key, value| {
                let kind = key
                    .get(prefix.len())
                    .and_then(|&tag| kind_of_tag(tag))
                    .ok_or_else(|| {
                        ApiError::internal(format!(
                            "a record of no known kind under {}",
                            project.id
                        ))
                    })?;
                write_line(
                    out,
                    kind.singular,
                    Some(project.id.as_str()),
                    &(kind.view_of)(value)?,
                )?;
                exported.objects += 1;
                Ok(ControlFlow::Continue(()))
            },
        )?;
    }
    out.flush()
        .map_err(|err| ApiError::internal_from("export", err))?;
    Ok(exported)
}

fn write_line(
    out: &mut dyn Write,
    kind: &str,
    project_id: Option<&str>,
    data: &Value,
) -> ApiResult<()> {
    let line = Line {
        kind,
        project_id,
        data,
    };
    serde_json::to_writer(&mut *out, &line)
        .map_err(|err| ApiError::internal_from("export", err))?;
    out.write_all(b"\n")
        .map_err(|err| ApiError::internal_from("export", err))
}
