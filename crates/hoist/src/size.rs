//! Byte sizes as users write them (`64MiB`, `8M`, `512k`, `100MB`, `1048576`) and as hoist prints
//! them.

/// Parse a size. A bare number is bytes; `k`/`m`/`g` and `KiB`/`MiB`/`GiB` are powers of 1024
/// (docker's convention for single letters); `KB`/`MB`/`GB` are powers of 1000. Case-insensitive,
/// with optional space before the unit.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let bad = || {
        format!(
            "`{input}` is not a size; write bytes or a number with a unit: 512k, 8M, 64MiB, 100MB"
        )
    };
    if number.is_empty() {
        return Err(bad());
    }
    let number: u64 = number.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{input}` is too large"))
}

/// Format a byte count for people: `0 B`, `512 B`, `1.5 KB`, `12.3 MB`, `4.56 GB` (decimal units,
/// as registries and docker report image sizes).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else if value >= 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("8m"), Ok(8 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("3b"), Ok(3));
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "MiB", "-1", "1.5M", "12 parsecs", "1e6"] {
            let err = parse_size(s).expect_err(s);
            assert!(err.contains("not a size"), "{s}: {err}");
        }
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(999), "999 B");
        assert_eq!(human(1_500), "1.50 KB");
        assert_eq!(human(12_345_678), "12.3 MB");
        assert_eq!(human(456_000_000), "456 MB");
        assert_eq!(human(4_560_000_000), "4.56 GB");
    }
}
