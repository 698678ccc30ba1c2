//! `NhsNumber::parse` against an independent Mod 11 implementation: PyPI
//! `nhs-number==2.2.0` (`calculate_checksum`), over 120,000 seeded random inputs.

mod support;

use std::io::Write;
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spr_schemas::NhsNumber;
use spr_testkit::tools::successful_stdout;

/// The oracle: our documented format rule (10 ASCII digits, or 3-3-4 with one kind of
/// separator, a space or a dash), then nhs_number.calculate_checksum for the Mod 11 rule.
const ORACLE: &str = r#"
import re, sys
from nhs_number import calculate_checksum
FORMAT = re.compile(r"[0-9]{10}|[0-9]{3}([ -])[0-9]{3}\1[0-9]{4}", re.ASCII)
out = []
with open(sys.argv[1], encoding="utf-8", newline="\n") as f:
    for line in f.read().split("\n")[:-1]:
        valid = False
        if FORMAT.fullmatch(line):
            digits = line.replace(" ", "").replace("-", "")
            check = calculate_checksum(digits[:9])
            valid = check is not None and check != 10 and check == int(digits[9])
        out.append("1" if valid else "0")
sys.stdout.write("\n".join(out) + "\n")
"#;

fn random_digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

/// Seeded inputs: plain, spaced and dashed ten-digit strings, numbers with a valid check
/// digit, near misses and junk (other lengths, letters, tabs, non-ASCII digits).
fn inputs(count: usize) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_260_101);
    let junk_alphabet: Vec<char> = "0123456789 -a\t+.٣４".chars().collect();
    (0..count)
        .map(|i| {
            let ten = random_digits(&mut rng, 10);
            let grouped = |sep1: &str, sep2: &str| {
                format!("{}{sep1}{}{sep2}{}", &ten[..3], &ten[3..6], &ten[6..])
            };
            match i % 8 {
                0 | 1 => ten,
                2 => grouped(" ", " "),
                3 => grouped("-", "-"),
                4 => grouped(" ", "-"),
                5 => {
                    let prefix: [u8; 9] = std::array::from_fn(|_| rng.gen_range(0..10));
                    NhsNumber::from_prefix(prefix)
                        .map(|n| n.to_string())
                        .unwrap_or(ten)
                }
                6 => {
                    let len = rng.gen_range(0..14);
                    random_digits(&mut rng, len)
                }
                _ => {
                    let len = rng.gen_range(0..14);
                    (0..len)
                        .map(|_| junk_alphabet[rng.gen_range(0..junk_alphabet.len())])
                        .collect()
                }
            }
        })
        .collect()
}

#[test]
fn parse_agrees_with_the_nhs_number_package_on_120_000_random_inputs() {
    let python = support::python_with(&["nhs-number==2.2.0"]);
    let inputs = inputs(120_000);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for input in &inputs {
        assert!(!input.contains('\n'));
        writeln!(file, "{input}").unwrap();
    }
    file.flush().unwrap();
    let output = Command::new(&python)
        .args(["-c", ORACLE])
        .arg(file.path())
        .output()
        .expect("the oracle runs");
    let verdicts: Vec<bool> = successful_stdout(&output)
        .lines()
        .map(|l| l == "1")
        .collect();
    assert_eq!(verdicts.len(), inputs.len(), "one verdict per input");
    let disagreements: Vec<String> = inputs
        .iter()
        .zip(&verdicts)
        .filter(|(input, oracle)| NhsNumber::parse(input).is_ok() != **oracle)
        .map(|(input, oracle)| {
            format!(
                "{input:?}: oracle says valid={oracle}, parse says {:?}",
                NhsNumber::parse(input)
            )
        })
        .collect();
    for d in &disagreements {
        eprintln!("{d}");
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements (printed above)",
        disagreements.len()
    );
    let valid = verdicts.iter().filter(|v| **v).count();
    assert!(
        valid > 15_000 && valid < 60_000,
        "a meaningful mix of valid ({valid}) and invalid inputs"
    );
}
