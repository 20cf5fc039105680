//! The committed fuzz seeds (`fuzz/seeds/<target>/`), each run through the same check as its
//! fuzz target (`fuzz/src/lib.rs`, decoded as libFuzzer decodes it): what fuzzing found stays
//! found between fuzzing campaigns, with nothing but `cargo test`.

use std::path::Path;

#[test]
fn every_seed_passes_its_targets_check() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut replayed = 0;
    for target in std::fs::read_dir(&seeds).unwrap() {
        let target = target.unwrap();
        let name = target.file_name().to_string_lossy().into_owned();
        for seed in std::fs::read_dir(target.path()).unwrap() {
            let path = seed.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let known = std::panic::catch_unwind(|| crate::fuzzing::replay(&name, &bytes))
                .unwrap_or_else(|_| panic!("seed {} fails its check", path.display()));
            assert!(known, "no check for the seeds of '{name}'");
            replayed += 1;
        }
    }
    assert!(replayed > 50, "only {replayed} seeds found");
}
