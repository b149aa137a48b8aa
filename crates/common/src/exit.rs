//! The exit-code contract every standby tool follows, and an error that carries its code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done / healthy |
//! | 1 | the thing checked is unhealthy, or the operation failed |
//! | 2 | usage or configuration error: nothing was changed |
//! | 3 | another run holds the lock: nothing was changed |
//! | 4 | a required program or server is missing or unreachable before anything changed |
//!
//! Errors travel as `anyhow::Error`. A place that knows the code wraps the error with
//! [`CodedResult::code`] (or builds one with [`error`]); [`code_of`] finds the outermost code
//! in the chain, and an error nobody classified is a plain failure (1).

use std::fmt;
use std::process::ExitCode;

/// One exit code of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// 0: done, or healthy.
    Ok,
    /// 1: unhealthy, or the operation failed.
    Failed,
    /// 2: bad flag, bad file: nothing was changed.
    Usage,
    /// 3: another run holds the lock: nothing was changed.
    Locked,
    /// 4: a required program or server is missing or unreachable before anything changed.
    Unavailable,
}

impl Code {
    /// The numeric process exit status.
    pub fn as_u8(self) -> u8 {
        match self {
            Code::Ok => 0,
            Code::Failed => 1,
            Code::Usage => 2,
            Code::Locked => 3,
            Code::Unavailable => 4,
        }
    }
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> Self {
        ExitCode::from(code.as_u8())
    }
}

/// An error with an exit code. Its message is the wrapped error's; its source is the wrapped
/// error's source, so `{:#}` prints the same chain as without the code.
pub struct Coded {
    code: Code,
    inner: anyhow::Error,
}

impl Coded {
    pub fn code(&self) -> Code {
        self.code
    }
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

impl fmt::Debug for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[exit {}] {:?}", self.code.as_u8(), self.inner)
    }
}

impl std::error::Error for Coded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// Build an error with a code and a message.
pub fn error(code: Code, message: impl fmt::Display) -> anyhow::Error {
    with_code(code, anyhow::anyhow!("{message}"))
}

/// Attach a code to an existing error (the outermost code wins in [`code_of`]).
pub fn with_code(code: Code, inner: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Coded { code, inner })
}

/// `result.code(Code::Usage)`: classify the error of a result.
pub trait CodedResult<T> {
    fn code(self, code: Code) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> CodedResult<T> for Result<T, E> {
    fn code(self, code: Code) -> anyhow::Result<T> {
        self.map_err(|e| with_code(code, e.into()))
    }
}

/// The exit code of an error: the outermost [`Coded`] in its chain, else [`Code::Failed`].
pub fn code_of(err: &anyhow::Error) -> Code {
    if let Some(c) = err.downcast_ref::<Coded>() {
        return c.code;
    }
    err.chain().find_map(|e| e.downcast_ref::<Coded>().map(Coded::code)).unwrap_or(Code::Failed)
}

/// What every `main.rs` calls: run the tool, print an error once with its whole chain,
/// and turn the outcome into the process exit code.
pub fn main(run: impl FnOnce() -> anyhow::Result<Code>) -> ExitCode {
    match run() {
        Ok(code) => code.into(),
        Err(err) => {
            let code = code_of(&err);
            eprintln!("error: {err:#}");
            code.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclassified_errors_are_failures() {
        assert_eq!(code_of(&anyhow::anyhow!("boom")), Code::Failed);
    }

    #[test]
    fn code_survives_added_context_and_message_is_unchanged() {
        let err: anyhow::Result<()> = Err(anyhow::anyhow!("disk full")).code(Code::Unavailable);
        let err = anyhow::Context::context(err, "writing state").unwrap_err();
        assert_eq!(code_of(&err), Code::Unavailable);
        assert_eq!(format!("{err:#}"), "writing state: disk full");
    }

    #[test]
    fn outermost_code_wins() {
        let inner = error(Code::Unavailable, "rclone: not installed");
        let outer = with_code(Code::Usage, inner);
        assert_eq!(code_of(&outer), Code::Usage);
    }

    #[test]
    fn numeric_codes_match_the_contract() {
        let all = [Code::Ok, Code::Failed, Code::Usage, Code::Locked, Code::Unavailable];
        let nums: Vec<u8> = all.iter().map(|c| c.as_u8()).collect();
        assert_eq!(nums, vec![0, 1, 2, 3, 4]);
    }
}
