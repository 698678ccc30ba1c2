//! What an import reads: Bundles, single resources and Bulk Data NDJSON, found in files
//! and directories, and the references between the resources of one document.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::elements::{list, text};

/// Bundle types whose entries are imported.
const IMPORTED_BUNDLE_TYPES: [&str; 6] = [
    "collection",
    "transaction",
    "batch",
    "document",
    "searchset",
    "message",
];

/// One unit of import: a Bundle, a single resource, or every NDJSON file of one
/// directory (a Bulk Data export). References resolve within a document.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from (a file, or a directory of NDJSON files).
    pub name: String,
    /// Its resources, in order.
    pub entries: Vec<Entry>,
}

/// One resource of a document, with the full URL its bundle entry gave it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `Bundle.entry.fullUrl`, if any.
    pub full_url: Option<String>,
    /// The resource.
    pub resource: Value,
}

/// Why a document could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct UnreadableDocument {
    /// The file or directory.
    pub name: String,
    /// What is wrong and what to do.
    pub reason: String,
}

impl Document {
    /// A document from one JSON text: a Bundle (its entries) or a single resource.
    pub fn from_json(name: &str, json: &str) -> Result<Self, UnreadableDocument> {
        let unreadable = |reason: String| UnreadableDocument {
            name: name.to_owned(),
            reason,
        };
        // Files saved by some Windows tools start with a byte-order mark; JSON has none.
        let json = json.strip_prefix('\u{feff}').unwrap_or(json);
        let value: Value = serde_json::from_str(json).map_err(|e| {
            unreadable(format!(
                "not JSON ({e}); expected a FHIR R4 resource or Bundle"
            ))
        })?;
        Self::from_value(name, value).map_err(unreadable)
    }

    /// A document from a parsed resource or Bundle.
    pub fn from_value(name: &str, value: Value) -> Result<Self, String> {
        let resource_type = text(&value, &["resourceType"])
            .ok_or("the JSON has no resourceType; expected a FHIR R4 resource or Bundle")?;
        let entries = if resource_type == "Bundle" {
            let bundle_type = text(&value, &["type"]).unwrap_or("(none)");
            if !IMPORTED_BUNDLE_TYPES.contains(&bundle_type) {
                return Err(format!(
                    "Bundle.type {bundle_type:?} is not imported; send a collection, transaction, batch, document, searchset or message Bundle"
                ));
            }
            bundle_entries(&value)?
        } else {
            vec![Entry {
                full_url: None,
                resource: value,
            }]
        };
        Ok(Self {
            name: name.to_owned(),
            entries,
        })
    }

    /// A document from NDJSON texts (one resource per line; blank lines ignored).
    pub fn from_ndjson<'a>(
        name: &str,
        files: impl IntoIterator<Item = (String, &'a str)>,
    ) -> Result<Self, UnreadableDocument> {
        let mut entries = Vec::new();
        for (file, content) in files {
            for (n, line) in content.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let resource: Value =
                    serde_json::from_str(line).map_err(|e| UnreadableDocument {
                        name: name.to_owned(),
                        reason: format!(
                            "{file} line {}: not JSON ({e}); NDJSON has one resource per line",
                            n + 1
                        ),
                    })?;
                entries.push(Entry {
                    full_url: None,
                    resource,
                });
            }
        }
        Ok(Self {
            name: name.to_owned(),
            entries,
        })
    }
}

/// The entries of a Bundle. An entry is an object with a `resource` (an object with a
/// `resourceType`), or a `request` with none (a delete in a transaction or batch, which
/// gives nothing); anything else, or a `fullUrl` used twice (FHIR bdl-7), refuses the
/// document: a repeated fullUrl would leave a reference pointing at either resource.
fn bundle_entries(bundle: &Value) -> Result<Vec<Entry>, String> {
    let entries = match bundle.get("entry") {
        None => return Ok(vec![]),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(format!(
                "Bundle.entry is {}, not an array of entries",
                json_kind(other)
            ))
        }
    };
    // bdl-7: a fullUrl may repeat only for other versions of the resource.
    let mut seen: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        if !entry.is_object() {
            return Err(format!(
                "Bundle.entry[{i}] is {}, not an entry object",
                json_kind(entry)
            ));
        }
        let full_url = match entry.get("fullUrl") {
            None => None,
            Some(Value::String(url)) => Some(url.as_str()),
            Some(other) => {
                return Err(format!(
                    "Bundle.entry[{i}].fullUrl is {}, not a string",
                    json_kind(other)
                ))
            }
        };
        if let Some(url) = full_url {
            let version = entry
                .get("resource")
                .and_then(|r| text(r, &["meta", "versionId"]));
            if let Some(first) = seen.insert((url, version), i) {
                return Err(format!(
                    "Bundle.entry[{i}].fullUrl {url:?} is also entry[{first}]'s; each entry needs its own fullUrl, unless it is another version of the resource (FHIR bdl-7)"
                ));
            }
        }
        let resource = match entry.get("resource") {
            Some(resource) if text(resource, &["resourceType"]).is_some() => resource,
            Some(other) => {
                return Err(format!(
                    "Bundle.entry[{i}].resource is {}, not a resource with a resourceType",
                    json_kind(other)
                ))
            }
            None if entry.get("request").is_some() => continue,
            None => {
                return Err(format!(
                    "Bundle.entry[{i}] has no resource; each entry carries one FHIR resource"
                ))
            }
        };
        out.push(Entry {
            full_url: full_url.map(str::to_owned),
            resource: resource.clone(),
        });
    }
    Ok(out)
}

/// What kind of JSON value this is, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where a document is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSource {
    /// A `.json` file (or any file named on the command line).
    Json(PathBuf),
    /// The `.ndjson` files of one directory, read together so references between them resolve.
    Ndjson {
        /// The directory.
        directory: PathBuf,
        /// Its NDJSON files, sorted.
        files: Vec<PathBuf>,
    },
}

impl DocumentSource {
    /// The name used in reports.
    pub fn name(&self) -> String {
        match self {
            Self::Json(path) => path.display().to_string(),
            Self::Ndjson { directory, .. } => format!("{}/*.ndjson", directory.display()),
        }
    }

    /// Reads and parses the document.
    pub fn load(&self) -> Result<Document, UnreadableDocument> {
        let name = self.name();
        let read = |path: &Path| {
            let unreadable = |reason: String| UnreadableDocument {
                name: name.clone(),
                reason,
            };
            let metadata = std::fs::metadata(path)
                .map_err(|e| unreadable(format!("cannot read {}: {e}", path.display())))?;
            if !metadata.is_file() {
                return Err(unreadable(format!(
                    "{} is not a regular file (a device or a pipe?); name FHIR files or directories",
                    path.display()
                )));
            }
            if metadata.len() > MAX_DOCUMENT_BYTES {
                return Err(unreadable(format!(
                    "{} is {} bytes, over the {MAX_DOCUMENT_BYTES} read as one document; split it (NDJSON files of one directory are read together)",
                    path.display(),
                    metadata.len()
                )));
            }
            std::fs::read_to_string(path)
                .map_err(|e| unreadable(format!("cannot read {}: {e}", path.display())))
        };
        match self {
            Self::Json(path) => Document::from_json(&name, &read(path)?),
            Self::Ndjson { files, .. } => {
                let contents = files
                    .iter()
                    .map(|f| Ok((f.display().to_string(), read(f)?)))
                    .collect::<Result<Vec<_>, UnreadableDocument>>()?;
                Document::from_ndjson(&name, contents.iter().map(|(f, c)| (f.clone(), c.as_str())))
            }
        }
    }
}

/// The largest file read as one document (a `.json` file, or one `.ndjson` file).
const MAX_DOCUMENT_BYTES: u64 = 512 * 1024 * 1024;

/// The documents under `paths`: each named file, and every `.json` and `.ndjson` file
/// under each named directory, recursively, in path order. Other files in
/// directories, symbolic links in them (which could loop back to a parent) and
/// anything that is not a regular file are skipped and returned so the caller can say so.
pub fn find_documents(paths: &[PathBuf]) -> std::io::Result<(Vec<DocumentSource>, Vec<PathBuf>)> {
    let mut json = Vec::new();
    let mut ndjson: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut pending: Vec<(PathBuf, bool)> = paths.iter().map(|p| (p.clone(), true)).collect();
    while let Some((path, named)) = pending.pop() {
        // A named path is followed; inside a directory, links are not.
        let metadata = if named {
            std::fs::metadata(&path)
        } else {
            std::fs::symlink_metadata(&path)
        }
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push((entry?.path(), false));
            }
            continue;
        }
        if !named && !metadata.is_file() {
            skipped.push(path);
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("ndjson") => {
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                ndjson.entry(dir).or_default().push(path);
            }
            Some("json") => json.push(path),
            _ if named => json.push(path),
            _ => skipped.push(path),
        }
    }
    json.sort();
    skipped.sort();
    let mut sources: Vec<DocumentSource> = json.into_iter().map(DocumentSource::Json).collect();
    sources.extend(ndjson.into_iter().map(|(directory, mut files)| {
        files.sort();
        DocumentSource::Ndjson { directory, files }
    }));
    Ok((sources, skipped))
}

/// Finds the resources of a document by the references FHIR allows between them.
#[derive(Debug)]
pub(crate) struct ReferenceIndex<'a> {
    by_full_url: HashMap<&'a str, &'a Value>,
    by_type_and_id: HashMap<(&'a str, &'a str), &'a Value>,
}

impl<'a> ReferenceIndex<'a> {
    pub(crate) fn new(document: &'a Document) -> Self {
        let mut index = Self {
            by_full_url: HashMap::new(),
            by_type_and_id: HashMap::new(),
        };
        for entry in &document.entries {
            if let Some(url) = &entry.full_url {
                index.by_full_url.insert(url, &entry.resource);
            }
            if let (Some(t), Some(id)) = (
                text(&entry.resource, &["resourceType"]),
                text(&entry.resource, &["id"]),
            ) {
                index.by_type_and_id.insert((t, id), &entry.resource);
            }
        }
        index
    }

    /// The resource a Reference points to, seen from `container` (for `#id`), if it is
    /// in the document: a contained resource, a fullUrl (`urn:uuid:` or absolute), or
    /// a relative or absolute `Type/id`, with or without `/_history/version`.
    pub(crate) fn resolve(&self, container: &'a Value, reference: &Value) -> Option<&'a Value> {
        let target = text(reference, &["reference"])?;
        if let Some(local) = target.strip_prefix('#') {
            return list(container, "contained")
                .iter()
                .find(|c| text(c, &["id"]) == Some(local));
        }
        if let Some(found) = self.by_full_url.get(target) {
            return Some(found);
        }
        let (resource_type, id) = type_and_id(target)?;
        self.by_type_and_id.get(&(resource_type, id)).copied()
    }
}

/// The `Type` and `id` at the end of a literal reference (`Patient/1`,
/// `https://server/fhir/Patient/1/_history/2`).
pub(crate) fn type_and_id(reference: &str) -> Option<(&str, &str)> {
    let path = match reference.find("/_history/") {
        Some(i) => &reference[..i],
        None => reference,
    };
    let mut parts = path.rsplitn(3, '/');
    let id = parts.next()?;
    let resource_type = parts.next()?;
    let starts_upper = resource_type
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase());
    (starts_upper && !id.is_empty()).then_some((resource_type, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn directories_are_searched_without_following_links_and_a_byte_order_mark_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        let patient = r#"{"resourceType": "Patient", "id": "a"}"#;
        std::fs::write(inner.join("a.json"), format!("\u{feff}{patient}")).unwrap();
        std::fs::write(inner.join("notes.txt"), "not FHIR").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path(), inner.join("loop")).unwrap();
        let (sources, skipped) = find_documents(&[dir.path().to_owned()]).unwrap();
        assert_eq!(sources, [DocumentSource::Json(inner.join("a.json"))]);
        #[cfg(unix)]
        assert_eq!(skipped, [inner.join("loop"), inner.join("notes.txt")]);
        let document = sources[0].load().unwrap();
        assert_eq!(
            document.entries.len(),
            1,
            "the byte-order mark is not an error"
        );
        #[cfg(unix)]
        {
            let refused = DocumentSource::Json("/dev/null".into()).load().unwrap_err();
            assert!(refused.reason.contains("not a regular file"), "{refused}");
        }
    }

    #[test]
    fn a_bundle_whose_entries_are_not_entries_or_share_a_full_url_is_refused() {
        let bundle = |entry: serde_json::Value| {
            Document::from_value(
                "test",
                json!({"resourceType": "Bundle", "type": "collection", "entry": entry}),
            )
        };
        let patient = json!({"resourceType": "Patient", "id": "a"});
        for (entry, says) in [
            (json!({}), "Bundle.entry is an object, not an array"),
            (json!([1]), "Bundle.entry[0] is a number"),
            (json!([null]), "Bundle.entry[0] is null"),
            (json!([{}]), "Bundle.entry[0] has no resource"),
            (
                json!([{"resource": "Patient"}]),
                "entry[0].resource is a string",
            ),
            (
                json!([{"resource": {"id": "x"}}]),
                "entry[0].resource is an object",
            ),
            (
                json!([{"fullUrl": 3, "resource": patient}]),
                "fullUrl is a number",
            ),
            (
                json!([{"fullUrl": "urn:uuid:p", "resource": patient},
                       {"fullUrl": "urn:uuid:p", "resource": patient}]),
                "entry[1].fullUrl \"urn:uuid:p\" is also entry[0]'s",
            ),
        ] {
            let refused = bundle(entry.clone()).unwrap_err();
            assert!(refused.contains(says), "{entry}: {refused}");
        }
        // Two versions of one resource may share a fullUrl.
        let version =
            |v: &str| json!({"resourceType": "Patient", "id": "a", "meta": {"versionId": v}});
        let versions = bundle(json!([
            {"fullUrl": "urn:uuid:p", "resource": version("1")},
            {"fullUrl": "urn:uuid:p", "resource": version("2")},
        ]));
        assert_eq!(versions.unwrap().entries.len(), 2);
        // A transaction's delete has a request and no resource: it gives nothing.
        let document = bundle(json!([
            {"request": {"method": "DELETE", "url": "Patient/gone"}},
            {"fullUrl": "urn:uuid:p", "resource": patient},
        ]))
        .unwrap();
        assert_eq!(document.entries.len(), 1);
        assert_eq!(bundle(json!([])).unwrap().entries.len(), 0);
    }

    #[test]
    fn references_resolve_by_full_url_type_and_id_absolute_url_and_contained() {
        let document = Document::from_value(
            "test",
            json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"fullUrl": "urn:uuid:0b6c2a5e-4f1d-4a4e-9c39-5d6f2f0a1b2c",
                 "resource": {"resourceType": "Patient", "id": "a"}},
                {"fullUrl": "https://example.org/fhir/Patient/b",
                 "resource": {"resourceType": "Patient", "id": "b"}},
            ]}),
        )
        .unwrap();
        let index = ReferenceIndex::new(&document);
        let container = json!({"contained": [{"resourceType": "Patient", "id": "c"}]});
        let id_of = |r: &str| {
            index
                .resolve(&container, &json!({"reference": r}))
                .and_then(|p| text(p, &["id"]))
                .map(str::to_owned)
        };
        assert_eq!(
            id_of("urn:uuid:0b6c2a5e-4f1d-4a4e-9c39-5d6f2f0a1b2c").as_deref(),
            Some("a")
        );
        assert_eq!(id_of("Patient/a").as_deref(), Some("a"));
        assert_eq!(
            id_of("https://example.org/fhir/Patient/b").as_deref(),
            Some("b")
        );
        assert_eq!(
            id_of("https://other.org/Patient/b/_history/3").as_deref(),
            Some("b")
        );
        assert_eq!(id_of("#c").as_deref(), Some("c"));
        assert_eq!(id_of("Patient/missing"), None);
        assert_eq!(id_of("urn:uuid:ffffffff-4f1d-4a4e-9c39-5d6f2f0a1b2c"), None);
    }

    #[test]
    fn a_history_bundle_is_refused_with_what_to_send_instead() {
        let err = Document::from_json("h.json", r#"{"resourceType":"Bundle","type":"history"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("send a collection"), "{err}");
        let err = Document::from_json("x.json", "{").unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }
}
