//! One line of type-specific detail for each event, as a timeline shows it.

use spr_schemas::Payload;

/// The detail line of a payload ("72 /min", "One tablet once a day (Repeat)").
pub fn detail_line(payload: &Payload) -> String {
    let text = |value: &Option<String>, absent: &str| value.as_deref().unwrap_or(absent).to_owned();
    match payload {
        Payload::Allergy(a) => format!(
            "{} ({:?}, {:?})",
            text(&a.reaction, "reaction not recorded"),
            a.criticality,
            a.verification
        ),
        Payload::MedicationPrescribed(m) => format!("{} ({:?})", m.dose, m.course),
        Payload::Observation(o) => match (o.value, &o.unit, &o.value_text) {
            (Some(v), unit, _) => format!("{v} {}", unit.as_deref().unwrap_or(""))
                .trim_end()
                .to_owned(),
            (None, _, Some(value)) => value.clone(),
            (None, _, None) => "no value".into(),
        },
        Payload::Encounter(e) => format!(
            "{:?} {:?}{}",
            e.encounter_class,
            e.phase,
            e.location
                .as_deref()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default()
        ),
        Payload::DiagnosticReport(r) => format!(
            "{} ({} results)",
            text(&r.conclusion, "no conclusion"),
            r.result_ids.len()
        ),
        Payload::Condition(c) => format!("{:?}, {:?}", c.clinical_status, c.verification),
        Payload::MedicationDispensed(d) => format!("dispensed {}", text(&d.quantity, ""))
            .trim_end()
            .to_owned(),
        Payload::MedicationStopped(s) => format!("stopped: {}", text(&s.reason, "no reason given")),
        Payload::Procedure(p) => text(&p.outcome, "outcome not recorded"),
        Payload::Immunisation(i) => match (i.not_given, i.dose_number) {
            (true, _) => "not given".into(),
            (false, Some(n)) => format!("dose {n}"),
            (false, None) => "given".into(),
        },
        Payload::CarePlan(p) => p.title.clone(),
        Payload::DischargeSummary(d) => d.diagnoses.join("; "),
        Payload::SafeguardingFlag(f) => if f.active { "active" } else { "lifted" }.into(),
        Payload::PregnancyEpisode(p) => format!("{:?} (episode {})", p.status, p.episode_id),
        Payload::AntenatalVisit(v) => match v.gestation_weeks {
            Some(w) => format!("{w} weeks"),
            None => "gestation not recorded".into(),
        },
        Payload::Birth(b) => b.outcome.clone(),
        Payload::Referral(r) => format!("to {} ({:?})", r.to_service, r.priority),
        Payload::GenomicResult(g) => format!(
            "{} {}: {}",
            text(&g.gene, ""),
            text(&g.variant, ""),
            g.interpretation
        )
        .trim_start()
        .to_owned(),
        Payload::ConsentChoice(c) => format!("{}: {:?}", c.category, c.choice),
        Payload::Demographics(d) => format!("{} {}", d.given_name, d.family_name),
        Payload::NhsNumberMerge(m) => format!(
            "{} merged into {}",
            m.retired_nhs_number, m.surviving_nhs_number
        ),
        Payload::CareTeam(t) => format!("care team: {}", text(&t.team, &t.ods_code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_non_empty_detail_line() {
        let nhs = "9990000018".parse().unwrap();
        for event in spr_schemas::examples::one_of_each_type(nhs) {
            let line = detail_line(&event.payload);
            assert!(!line.trim().is_empty(), "{:?}", event.event_type());
        }
    }
}
