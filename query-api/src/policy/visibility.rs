//! What a decision lets the caller see, entry by entry.

use std::collections::{BTreeMap, BTreeSet};

use spr_schemas::{EpochMillis, EventType, SensitiveCategory};

use super::ReasonCode;

/// Whether one sensitive category is visible, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryAccess {
    /// Entries labelled with this category may be shown.
    Visible,
    /// Entries labelled with this category are hidden, for this reason.
    Withheld(ReasonCode),
}

/// What a decision makes visible: the kinds of event, how far back, and which
/// sensitive categories. Views call [`Visibility::allows`] for every entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// The kinds of event that may be shown (the role's data minimisation within the scope).
    pub event_types: BTreeSet<EventType>,
    /// In the direct-care tier, history (kinds of event that do not stay current) that
    /// occurred before this time is hidden. `None`: no limit.
    pub history_from: Option<EpochMillis>,
    /// Every sensitive category, visible or withheld with its reason.
    pub categories: BTreeMap<SensitiveCategory, CategoryAccess>,
}

impl Visibility {
    /// Nothing visible: what every denial carries.
    pub fn nothing() -> Self {
        Self {
            event_types: BTreeSet::new(),
            history_from: None,
            categories: SensitiveCategory::ALL
                .into_iter()
                .map(|c| (c, CategoryAccess::Withheld(ReasonCode::AccessDenied)))
                .collect(),
        }
    }

    /// Whether an entry may be shown: its kind is visible, it is recent enough for the
    /// tier (or of a kind that stays current), and every one of its sensitivity labels
    /// is a visible category. A label that is not a known category is treated as
    /// withheld (fail closed): a label added by a newer producer stays hidden until the
    /// policy says who may see it.
    pub fn allows(
        &self,
        event_type: EventType,
        occurred_at: EpochMillis,
        sensitivity_labels: &[String],
    ) -> bool {
        self.event_types.contains(&event_type)
            && self
                .history_from
                .is_none_or(|from| occurred_at >= from || super::table::stays_current(event_type))
            && sensitivity_labels.iter().all(|label| {
                label
                    .parse::<SensitiveCategory>()
                    .is_ok_and(|c| self.categories.get(&c) == Some(&CategoryAccess::Visible))
            })
    }

    /// The categories withheld, each with its reason.
    pub fn withheld(&self) -> impl Iterator<Item = (SensitiveCategory, ReasonCode)> + '_ {
        self.categories.iter().filter_map(|(c, a)| match a {
            CategoryAccess::Visible => None,
            CategoryAccess::Withheld(reason) => Some((*c, *reason)),
        })
    }
}
