//! "Did you mean" suggestions for misspelt keys, kinds, names and enum values.

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lowered = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let candidate_lowered = candidate.to_lowercase();
        if candidate_lowered == lowered {
            return Some(candidate);
        }
        let distance = strsim::damerau_levenshtein(&lowered, &candidate_lowered);
        let allowed = (word.chars().count().max(candidate.chars().count()) / 3).max(1);
        let allowed = allowed.min(4);
        let prefix_match = lowered.len() >= 4 && candidate_lowered.starts_with(&lowered);
        if distance <= allowed || prefix_match {
            let score = if prefix_match {
                distance.min(allowed)
            } else {
                distance
            };
            if best.is_none_or(|(best_score, _)| score < best_score) {
                best = Some((score, candidate));
            }
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `did you mean `x`?` when a close candidate exists.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|candidate| format!("did you mean `{candidate}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_spellings_only() {
        let keys = ["name", "login", "connectionLimit", "memberOf"];
        assert_eq!(closest("naem", keys), Some("name"));
        assert_eq!(closest("conectionLimit", keys), Some("connectionLimit"));
        assert_eq!(closest("MEMBEROF", keys), Some("memberOf"));
        assert_eq!(closest("replication", keys), None);
    }
}
