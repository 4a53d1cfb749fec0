//! A bounded mutation run of every target on stable, so that CI fuzzes each decoder on every run without a
//! nightly toolchain: inputs are the corpus files changed at random (bits flipped, bytes set to edge values,
//! spans deleted, duplicated or spliced from another file, lengths grown), each target for `FUZZ_SECONDS`
//! seconds (default 6) and at most 200,000 inputs. It is blind where cargo-fuzz is guided by coverage
//! (`scripts/fuzz`), but it needs no second toolchain and runs in every test pass. A panic fails the test and
//! leaves the input in `target/fuzz-crashes/`; keep it in the corpus as `crash-<what>` once fixed.

use std::path::Path;
use std::time::{Duration, Instant};

/// xorshift64*: a small deterministic generator, seeded per run and printed, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x30, 0x84][rng.below(7)];
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                input.drain(start..end);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let span = input[start..end].to_vec();
                let at = rng.below(len);
                input.splice(at..at, span);
            }
            4 if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(64)).min(other.len());
                let at = rng.below(len + 1);
                input.splice(at..at, other[start..end].iter().copied());
            }
            5 => {
                let at = rng.below(len + 1);
                let n = rng.below(8);
                input.splice(at..at, std::iter::repeat_n(rng.next() as u8, n));
            }
            _ if len > 0 => input.truncate(rng.below(len)),
            _ => input.push(rng.next() as u8),
        }
        if input.len() > 1 << 16 {
            input.truncate(1 << 16);
        }
    }
}

fn run(name: &str) {
    let target = fuzz_targets::target(name).expect("a target");
    let seeds = corpus(name);
    assert!(!seeds.is_empty(), "the corpus of {name} is empty");
    let secs = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6u64);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut runs = 0u64;
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while start.elapsed() < Duration::from_secs(secs) && runs < 200_000 {
        let mut input = seeds[rng.below(seeds.len())].clone();
        let other = &seeds[rng.below(seeds.len())];
        mutate(&mut rng, &mut input, other);
        let one = Instant::now();
        let panicked = std::panic::catch_unwind(|| target(&input)).is_err();
        let slow = one.elapsed() > Duration::from_secs(5);
        if panicked || slow {
            std::panic::set_hook(prev);
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-crashes");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-{seed:x}-{runs}"));
            let _ = std::fs::write(&file, &input);
            panic!(
                "{name} {} on a mutated input (seed {seed:#x}, run {runs}): {}",
                if panicked {
                    "panicked"
                } else {
                    "took over 5 s"
                },
                file.display()
            );
        }
        runs += 1;
    }
    std::panic::set_hook(prev);
    eprintln!(
        "{name}: {runs} mutated inputs in {:.1} s (seed {seed:#x})",
        start.elapsed().as_secs_f64()
    );
    assert!(runs > 0);
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { run(stringify!($name)); })*

        #[test]
        fn every_target_has_a_mutation_run() {
            let here = [$(stringify!($name)),*];
            for (name, _) in fuzz_targets::TARGETS {
                assert!(here.contains(name), "{name} has no mutation run");
            }
        }
    };
}

targets!(
    ldap_frame,
    ldap_filter,
    radius_packet,
    eap,
    eap_tls,
    saml_xml,
    saml_c14n_verify,
    saml_redirect,
    scim_filter,
    scim_patch,
    csv_import,
    ldif_import,
    admin_json,
);
