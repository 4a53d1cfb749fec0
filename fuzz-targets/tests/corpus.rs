//! Every file of every corpus through its target: the seeds from real clients and every input that once
//! crashed a decoder. A panic in a target fails this test, naming the file.

use std::path::Path;

#[test]
fn every_corpus_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut failures = Vec::new();
    let mut ran = 0usize;
    for (name, target) in fuzz_targets::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "the corpus of {name} is empty");
        for file in files {
            let data = std::fs::read(&file).expect("corpus file");
            ran += 1;
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "targets panicked on: {failures:#?}");
    assert!(ran > 0);
}

#[test]
fn every_corpus_directory_names_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for entry in std::fs::read_dir(&root).expect("corpus directory") {
        let name = entry.expect("corpus entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            fuzz_targets::target(&name).is_some(),
            "corpus/{name} has no target"
        );
    }
}
