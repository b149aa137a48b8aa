//! `init`: create the repository (restic format, readable by stock restic).

use standby_common::exit::Code;

use crate::repo;
use crate::setup::Setup;

#[derive(serde::Serialize)]
struct Created {
    repository: String,
    id: String,
}

impl std::fmt::Display for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "created repository {} (id {})", self.repository, self.id)
    }
}

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let spec = setup.repo()?;
    let id = repo::init(&spec)?;
    setup.ctx.output.report(&Created { repository: spec.path.display().to_string(), id }, Code::Ok)?;
    Ok(Code::Ok)
}
