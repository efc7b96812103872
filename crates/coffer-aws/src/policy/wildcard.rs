//! IAM-style wildcard matching: `*` matches any run of characters (including
//! none, and including `:` and `/`), `?` matches exactly one character.
//!
//! The matcher is the classic two-pointer algorithm with a single backtrack
//! point, so it runs in O(pattern × text) time and constant space whatever
//! the input: no recursion, no pattern can make it blow up.

/// Whether `text` matches `pattern`, comparing characters with `eq`.
fn matches_by(pattern: &[char], text: &[char], eq: impl Fn(char, char) -> bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Position of the last `*` seen in the pattern, and the text position it
    // is currently assumed to have consumed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || eq(c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Case-sensitive match (resources: ARNs are case-sensitive).
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches_by(&p, &t, |a, b| a == b)
}

/// ASCII case-insensitive match (actions: IAM action names ignore case).
pub fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches_by(&p, &t, |a, b| a.eq_ignore_ascii_case(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything:at/all"));
        assert!(matches("a*c", "abbbc"));
        assert!(matches("a*c", "ac"));
        assert!(!matches("a*c", "ab"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("**", "x"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(!matches("x", ""));
        assert!(matches("é?", "éü"));
    }

    #[test]
    fn arn_patterns() {
        let p = "arn:aws:secretsmanager:*:000000000000:secret:prod/*";
        assert!(matches(
            p,
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf"
        ));
        assert!(!matches(
            p,
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:dev/db-AbCdEf"
        ));
        assert!(!matches(
            p,
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:prod/db"
        ));
        assert!(!matches("arn:aws:kms:*:*:key/*", "ARN:aws:kms:x:y:key/z"));
    }

    #[test]
    fn case_insensitive_variant() {
        assert!(matches_ignore_case(
            "secretsmanager:get*",
            "SecretsManager:GetSecretValue"
        ));
        assert!(!matches(
            "secretsmanager:get*",
            "secretsmanager:GetSecretValue"
        ));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(5000);
        let pattern = format!("{}b", "*a".repeat(500));
        let start = std::time::Instant::now();
        assert!(!matches(&pattern, &text));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
