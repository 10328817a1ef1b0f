//! Parsers never panic: random bytes and random mutations of valid notes,
//! checkpoints and keys give errors, and a mutated note never verifies
//! unless it is byte-for-byte the original or differs only in ignored parts.

use rand::{Rng, SeedableRng};
use zkaudit_note::{Checkpoint, Note, SigningKey, VerifierKey};

fn mutate(rng: &mut impl Rng, src: &[u8]) -> Vec<u8> {
    let mut b = src.to_vec();
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..4) {
            0 if !b.is_empty() => {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !b.is_empty() => {
                let i = rng.random_range(0..b.len());
                b.remove(i);
            }
            2 => {
                let i = rng.random_range(0..=b.len());
                b.insert(i, rng.random());
            }
            _ => b.truncate(rng.random_range(0..=b.len())),
        }
    }
    b
}

#[test]
fn random_and_mutated_inputs_are_errors_not_panics() {
    let seed: u64 = rand::rng().random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let key = SigningKey::generate("garbage.test/log").unwrap();
    let cp = Checkpoint::new("garbage.test/log", 42, [9u8; 32]);
    let note = Note::sign(&cp.to_text(), &key).unwrap().to_bytes();
    let vkey = key.verifier().to_string();
    let mut verified_mutants = 0;
    for _ in 0..20_000 {
        let n = mutate(&mut rng, &note);
        if let Ok(parsed) = Note::parse(&n) {
            let _ = Checkpoint::parse(parsed.text());
            if parsed.verify(&key.verifier()).is_ok() {
                // Only the signed text counts: a verifying mutant must carry it unchanged.
                assert_eq!(parsed.text(), cp.to_text(), "mutant verified with altered text");
                verified_mutants += 1;
            }
        }
        let _ = VerifierKey::parse(&String::from_utf8_lossy(&mutate(&mut rng, vkey.as_bytes())));
        let _ = SigningKey::parse(&String::from_utf8_lossy(&mutate(&mut rng, key.to_secret_string().as_bytes())));
        let random: Vec<u8> = (0..rng.random_range(0..200)).map(|_| rng.random()).collect();
        let _ = Note::parse(&random);
        let _ = Checkpoint::parse(&String::from_utf8_lossy(&random));
    }
    eprintln!("{verified_mutants} mutants still verified (changes outside the signed text)");
}
