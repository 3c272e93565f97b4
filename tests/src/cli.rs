//! The benchmarks' command-line options.

/// The number after `name` on the command line (`--orders 2000`), or `default` when `name` is
/// absent; an error when what follows is not a number.
pub fn option(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} takes a number")),
    }
}
