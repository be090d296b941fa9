//! README promises a new user relies on: it starts with the two commands (serve; test), states
//! the Rust version `Cargo.toml` requires and where the binary is, documents every environment
//! variable the program reads, and leaves benchmark detail to `bench/README.md`.

use std::path::Path;

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The bodies of the fenced code blocks, in order.
fn code_blocks(text: &str) -> Vec<String> {
    text.split("```").skip(1).step_by(2).map(|b| b.lines().skip(1).collect::<Vec<_>>().join("\n")).collect()
}

#[test]
fn readme_starts_with_the_command_to_run_the_server_and_the_command_to_run_the_tests() {
    let readme = read("README.md");
    let blocks = code_blocks(&readme);
    assert_eq!(blocks.first().map(|b| b.trim()), Some("cargo run --release -- serve"));
    assert_eq!(blocks.get(1).map(|b| b.trim()), Some("cargo test"));
    let before = &readme[..readme.find("cargo test").expect("the test command")];
    assert!(!before.contains("\n## "), "no section comes before the two commands");
}

#[test]
fn readme_states_the_prerequisites_the_binary_and_the_first_admin_token() {
    let readme = read("README.md");
    let manifest = read("Cargo.toml");
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("Cargo.toml declares rust-version");
    assert!(readme.contains(&format!("Rust {rust_version} or newer")), "README names Rust {rust_version}");
    assert!(readme.contains("## Prerequisites"));
    assert!(readme.contains("`target/release/scimbridge`"));
    assert!(readme.contains("token new --name ops --admin") && readme.contains("While `serve` runs"));
    for var in scimbridge::config::ENV_VARS {
        assert!(readme.contains(&format!("`{var}`")), "README does not document {var}");
    }
}

#[test]
fn benchmark_detail_lives_in_bench_readme_with_one_line_and_a_link_in_readme() {
    let readme = read("README.md");
    let bench = read("bench/README.md");
    assert!(readme.contains("(bench/README.md)"), "README links bench/README.md");
    for detail in ["wrk -t2 -c64", "SCIM_BENCH_QUICK=1 bench/run.sh", "OFFBOARD_RATE", "100,001 emulated Jira"] {
        assert!(bench.contains(detail), "bench/README.md has {detail}");
        assert!(!readme.contains(detail), "README still carries benchmark detail: {detail}");
    }
}
