//! Reading FHIR R4 data types out of JSON: strings, codings, times, identifiers and
//! security labels.

use serde_json::Value;
use spr_schemas::{Code, EpochMillis, SensitiveCategory, DM_D, LOINC, SNOMED_CT};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

/// The NHS number identifier system.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// The ODS organisation code identifier system.
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// The SDS user id system (NHS staff identities).
pub const SDS_USER_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-user-id";
/// The identifier system of SPR event ids on exported resources.
pub const EVENT_ID_SYSTEM: &str = "https://spr.nhs.uk/Id/event-id";
/// The identifier system of the source system's own record id on exported resources.
pub const SOURCE_RECORD_SYSTEM: &str = "https://spr.nhs.uk/Id/source-record-id";
/// The `meta.tag` system that carries the SPR care setting.
pub const CARE_SETTING_SYSTEM: &str = "https://spr.nhs.uk/CodeSystem/care-setting";
/// HL7 v3 ActCode (security labels, encounter classes).
pub const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// The SPR sensitivity label system (our own labels, as codes).
pub const SPR_SENSITIVITY_SYSTEM: &str = "https://spr.nhs.uk/CodeSystem/sensitivity";

/// The string at `path` (object keys) under `value`.
pub(crate) fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)?.as_str().filter(|s| !s.is_empty())
}

/// The value at `path` (object keys) under `value`.
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// The array at `key`, or an empty slice.
pub(crate) fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The first element of the array at `key`.
pub(crate) fn first<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    list(value, key).first()
}

/// The codings of a CodeableConcept.
fn codings(concept: &Value) -> &[Value] {
    list(concept, "coding")
}

/// Preference of a code system: SNOMED CT, then dm+d, then LOINC, then anything.
fn system_rank(system: &str) -> u8 {
    match system {
        SNOMED_CT => 0,
        DM_D => 1,
        LOINC => 2,
        _ => 3,
    }
}

/// The best coding of a CodeableConcept (SNOMED CT, dm+d, LOINC, else the first), with
/// its display (or the concept's text); a concept with text only gives an uncoded `Code`.
pub(crate) fn code_of(concept: &Value) -> Option<Code> {
    let concept_text = text(concept, &["text"]);
    let best = codings(concept)
        .iter()
        .filter(|c| text(c, &["code"]).is_some())
        .min_by_key(|c| system_rank(text(c, &["system"]).unwrap_or("")));
    match best {
        Some(c) => {
            let code = text(c, &["code"]).unwrap_or_default();
            Some(Code {
                system: text(c, &["system"]).unwrap_or_default().to_owned(),
                code: code.to_owned(),
                display: text(c, &["display"])
                    .or(concept_text)
                    .unwrap_or(code)
                    .to_owned(),
            })
        }
        None => concept_text.map(|t| Code {
            system: String::new(),
            code: String::new(),
            display: t.to_owned(),
        }),
    }
}

/// Human-readable text of a CodeableConcept: its text, else its best coding's display.
pub(crate) fn concept_text(concept: &Value) -> Option<String> {
    text(concept, &["text"])
        .map(str::to_owned)
        .or_else(|| code_of(concept).map(|c| c.display))
}

/// Whether a CodeableConcept (or a bare Coding) carries `code`, in any system.
pub(crate) fn has_code(concept: &Value, code: &str) -> bool {
    text(concept, &["code"]) == Some(code)
        || codings(concept)
            .iter()
            .any(|c| text(c, &["code"]) == Some(code))
}

/// Whether a CodeableConcept carries `code` in `system`.
pub(crate) fn has_coding(concept: &Value, system: &str, code: &str) -> bool {
    codings(concept)
        .iter()
        .any(|c| text(c, &["system"]) == Some(system) && text(c, &["code"]) == Some(code))
}

/// The first code of a CodeableConcept's codings, in any system.
pub(crate) fn first_code(concept: &Value) -> Option<&str> {
    text(concept, &["code"]).or_else(|| codings(concept).iter().find_map(|c| text(c, &["code"])))
}

/// Parses a FHIR `date`, `dateTime` or `instant` (partial dates start at midnight UTC).
pub fn parse_time(input: &str) -> Option<EpochMillis> {
    let date = |y: &str, m: &str, d: &str| -> Option<Date> {
        let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
        Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
    };
    let midnight = match input.len() {
        4 => date(input, "1", "1"),
        7 => date(&input[..4], &input[5..7], "1"),
        10 => date(&input[..4], &input[5..7], &input[8..10]),
        _ => None,
    };
    let at = match midnight {
        Some(d) => d.midnight().assume_utc(),
        None => OffsetDateTime::parse(input, &Rfc3339).ok()?,
    };
    Some((at.unix_timestamp_nanos() / 1_000_000) as EpochMillis)
}

/// The time at `key` (a dateTime, instant or date string) of `value`.
pub(crate) fn time_at(value: &Value, key: &str) -> Option<EpochMillis> {
    text(value, &[key]).and_then(parse_time)
}

/// The start of the Period at `key`.
pub(crate) fn period_start(value: &Value, key: &str) -> Option<EpochMillis> {
    value.get(key).and_then(|p| time_at(p, "start"))
}

/// The end of the Period at `key`.
pub(crate) fn period_end(value: &Value, key: &str) -> Option<EpochMillis> {
    value.get(key).and_then(|p| time_at(p, "end"))
}

/// A time as a FHIR `instant` in UTC with milliseconds (`2026-01-01T00:00:00.000Z`).
pub(crate) fn format_time(at: EpochMillis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The value of the first identifier of `value` in `system`.
pub(crate) fn identifier_in<'a>(value: &'a Value, system: &str) -> Option<&'a str> {
    list(value, "identifier")
        .iter()
        .chain(value.get("identifier").filter(|i| i.is_object()))
        .find(|i| text(i, &["system"]) == Some(system))
        .and_then(|i| text(i, &["value"]))
}

/// Security labels and the sensitive categories they map to (docs/events.md).
///
/// Codes are HL7 v3 ActCode information-sensitivity codes; a code equal to one of our
/// own labels (`mental-health`, ...) is accepted in any system.
const SENSITIVITY_LABELS: &[(&str, SensitiveCategory)] = &[
    ("PSY", SensitiveCategory::MentalHealth),
    ("PSYTHPN", SensitiveCategory::MentalHealth),
    ("MH", SensitiveCategory::MentalHealth),
    ("HIV", SensitiveCategory::HivSti),
    ("STD", SensitiveCategory::HivSti),
    ("SEX", SensitiveCategory::SexualHealth),
    ("SDV", SensitiveCategory::Safeguarding),
    ("CHILD", SensitiveCategory::Safeguarding),
    ("GDIS", SensitiveCategory::Genomics),
    ("GENDER", SensitiveCategory::GenderIdentity),
];

/// The sensitive categories named by `meta.security` labels, sorted, each once.
pub(crate) fn sensitivity_of(resource: &Value) -> Vec<String> {
    let mut labels: Vec<String> = at(resource, &["meta", "security"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|label| text(label, &["code"]))
        .filter_map(|code| {
            SENSITIVITY_LABELS
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, category)| *category)
                .or_else(|| code.parse().ok())
        })
        .map(|c| c.as_str().to_owned())
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// The `meta.security` label written on export for a sensitivity label: the v3 code
/// where one exists, else the label itself in the SPR system.
pub(crate) fn security_label(label: &str) -> Value {
    let v3 = label
        .parse::<SensitiveCategory>()
        .ok()
        .and_then(|category| {
            SENSITIVITY_LABELS
                .iter()
                .find(|(_, c)| *c == category)
                .map(|(code, _)| *code)
        });
    match v3 {
        Some(code) => serde_json::json!({"system": V3_ACT_CODE, "code": code}),
        None => serde_json::json!({"system": SPR_SENSITIVITY_SYSTEM, "code": label}),
    }
}

/// Narrative XHTML reduced to its text: tags removed, the five XML entities decoded,
/// whitespace collapsed.
pub(crate) fn narrative_text(div: &str) -> String {
    let mut out = String::with_capacity(div.len());
    let mut in_tag = false;
    for ch in div.chars() {
        match ch {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Plain text as a FHIR narrative `div`.
pub(crate) fn narrative_div(plain: &str) -> String {
    let escaped = plain
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{escaped}</div>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snomed_is_preferred_over_loinc_and_others_whatever_the_order() {
        let concept = json!({"coding": [
            {"system": "http://example.org", "code": "x", "display": "X"},
            {"system": LOINC, "code": "8867-4", "display": "Heart rate"},
            {"system": SNOMED_CT, "code": "364075005", "display": "Heart rate (observable)"}
        ], "text": "HR"});
        let code = code_of(&concept).unwrap();
        assert_eq!(code.system, SNOMED_CT);
        assert_eq!(code.code, "364075005");
        let text_only = code_of(&json!({"text": "Chest pain"})).unwrap();
        assert_eq!(
            (text_only.code.as_str(), text_only.display.as_str()),
            ("", "Chest pain")
        );
    }

    #[test]
    fn partial_dates_and_offsets_parse_to_utc_millis() {
        assert_eq!(parse_time("1970"), Some(0));
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_time("2015-09-26T22:10:42.330194+00:00"),
            Some(1_443_305_442_330)
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_time(1_443_305_442_330), "2015-09-26T22:10:42.330Z");
    }

    #[test]
    fn security_labels_map_to_categories_and_back() {
        let resource = json!({"meta": {"security": [
            {"system": V3_ACT_CODE, "code": "PSY"},
            {"system": V3_ACT_CODE, "code": "HIV"},
            {"system": "x", "code": "termination-of-pregnancy"},
            {"system": V3_ACT_CODE, "code": "R"}
        ]}});
        let labels = sensitivity_of(&resource);
        assert_eq!(
            labels,
            ["hiv-sti", "mental-health", "termination-of-pregnancy"]
        );
        for category in SensitiveCategory::ALL {
            let back = json!({"meta": {"security": [security_label(category.as_str())]}});
            assert_eq!(sensitivity_of(&back), [category.as_str()]);
        }
    }

    #[test]
    fn narrative_round_trips_through_a_div() {
        let plain = "Treated with IV antibiotics <5 days> & recovered.";
        assert_eq!(narrative_text(&narrative_div(plain)), plain);
    }
}
