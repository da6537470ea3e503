//! Signal names as users and runc's clients write them: `TERM`, `SIGTERM`, `15`, `sigkill`.

use nix::sys::signal::Signal;

/// A signal the user named that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("invalid signal {0:?}: use a name like SIGTERM / TERM or a number like 15")]
pub struct Error(pub String);

/// Parse a signal name or number.
pub fn parse(s: &str) -> Result<Signal, Error> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error(s.to_string()));
    }
    let up = t.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>().map_err(|_| Error(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("sigusr1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert!(parse("NOSUCHSIG").is_err());
        assert!(parse("999").is_err());
    }
}
