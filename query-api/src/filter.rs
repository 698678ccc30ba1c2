//! The timeline's filters: time range, event types, care settings, source organisation,
//! text in the code's display, and whether amended or withdrawn entries are listed.

use spr_projector::{TimeRange, TimelineEntry};
use spr_schemas::{CareSetting, EpochMillis, EventType};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::app::TimelineQuery;
use crate::error::ApiError;

/// A parsed, validated set of timeline filters.
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    /// Clinical-time bounds, applied by the scan itself.
    pub range: TimeRange,
    types: Option<Vec<EventType>>,
    care_settings: Option<Vec<CareSetting>>,
    source_org: Option<String>,
    text: Option<String>,
    include_superseded: bool,
}

impl TimelineFilter {
    /// Validates the query's filters; a bad one is a 400 naming the parameter.
    pub fn parse(query: &TimelineQuery) -> Result<Self, ApiError> {
        let range = TimeRange {
            from: query
                .from
                .as_deref()
                .map(|t| parse_time("from", t))
                .transpose()?,
            to: query
                .to
                .as_deref()
                .map(|t| parse_time("to", t))
                .transpose()?,
        };
        if let (Some(from), Some(to)) = (range.from, range.to) {
            if from > to {
                return Err(ApiError::bad_request("bad-filter", "from is after to"));
            }
        }
        let types = query
            .types
            .as_deref()
            .map(|list| {
                split("types", list)?
                    .map(|name| {
                        EventType::from_name(name).ok_or_else(|| {
                            ApiError::bad_request(
                                "bad-filter",
                                format!(
                                    "unknown event type {name:?} in types; known: {}",
                                    EventType::ALL
                                        .iter()
                                        .map(|t| t.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let care_settings = query
            .care_setting
            .as_deref()
            .map(|list| {
                split("care_setting", list)?
                    .map(|name| {
                        serde_json::from_value(serde_json::Value::String(name.to_uppercase()))
                            .map_err(|_| {
                                ApiError::bad_request(
                                    "bad-filter",
                                    format!("unknown care setting {name:?} (for example GP, ACUTE, MATERNITY)"),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let text = query.text.as_deref().map(str::to_lowercase);
        if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
            return Err(ApiError::bad_request(
                "bad-filter",
                "text is longer than 200 characters",
            ));
        }
        Ok(Self {
            range,
            types,
            care_settings,
            source_org: query.source_org.clone(),
            text,
            include_superseded: query.include_superseded.unwrap_or(false),
        })
    }

    /// Whether an entry passes every filter (the time range is applied by the scan).
    pub fn matches(&self, entry: &TimelineEntry) -> bool {
        (self.include_superseded || entry.stands())
            && self
                .types
                .as_ref()
                .is_none_or(|t| t.contains(&entry.event_type))
            && self
                .care_settings
                .as_ref()
                .is_none_or(|c| c.contains(&entry.source.care_setting))
            && self
                .source_org
                .as_ref()
                .is_none_or(|o| *o == entry.source.ods_code)
            && self
                .text
                .as_ref()
                .is_none_or(|t| entry.code.display.to_lowercase().contains(t))
    }
}

/// The comma-separated items of the list parameter `name`; an empty item (an empty
/// value, or `a,,b`) is refused rather than read as "nothing matches".
fn split<'l>(name: &str, list: &'l str) -> Result<impl Iterator<Item = &'l str>, ApiError> {
    if list.split(',').any(|item| item.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "bad-filter",
            format!(
                "{name} has an empty item; list values separated by commas, or leave {name} out"
            ),
        ));
    }
    Ok(list.split(',').map(str::trim))
}

fn parse_time(name: &str, text: &str) -> Result<EpochMillis, ApiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as EpochMillis)
        .map_err(|e| {
            ApiError::bad_request(
                "bad-filter",
                format!("{name} must be an RFC 3339 time such as 2024-01-31T00:00:00Z ({e})"),
            )
        })
}
