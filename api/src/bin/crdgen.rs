//! Writes the provider's CRDs (`make crds`), checks checked-in copies with `--check`, emits the
//! HyperShift base shape with `--profile hypershift`, and renders `api/FIELDS.md`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use capmaas_api::crdgen::{self, Profile};
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProfileArg {
    Full,
    Hypershift,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Full => Profile::Full,
            ProfileArg::Hypershift => Profile::Hypershift,
        }
    }
}

/// Generate the MAAS provider CRDs from the Rust types.
#[derive(Debug, Parser)]
#[command(name = "crdgen")]
struct Args {
    /// Which shape to emit: the full CRDs, or the base shape HyperShift installs.
    #[arg(long, value_enum, default_value = "full")]
    profile: ProfileArg,
    /// Directory to write into. Default: the workspace's config/crd/bases for the full profile,
    /// standard output for the hypershift profile.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compare the files in the directory with what would be written; exit 1 on any difference.
    #[arg(long)]
    check: bool,
    /// Write the field and validation table (api/FIELDS.md) instead of CRDs.
    #[arg(long)]
    fields_doc: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crdgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if args.fields_doc {
        let path = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("FIELDS.md"));
        let doc = crdgen::render_fields_doc();
        if args.check {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            return Ok(report(current == doc, &path.display().to_string()));
        }
        std::fs::write(&path, doc)?;
        println!("wrote {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let profile = Profile::from(args.profile);
    let dir = match (&args.out, profile) {
        (Some(dir), _) => dir.clone(),
        (None, Profile::Full) => crdgen::default_out_dir(),
        (None, Profile::Hypershift) => {
            let mut stdout = std::io::stdout().lock();
            for (_, content) in crdgen::rendered_files(profile)? {
                stdout.write_all(content.as_bytes())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    if args.check {
        let drift = crdgen::check_dir(&dir, profile)?;
        for d in &drift {
            eprintln!("crdgen: {d} (regenerate: `make crds` for the full profile)");
        }
        return Ok(report(drift.is_empty(), &dir.display().to_string()));
    }
    for path in crdgen::write_dir(&dir, profile)? {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn report(in_sync: bool, what: &str) -> ExitCode {
    if in_sync {
        println!("{what} is up to date");
        ExitCode::SUCCESS
    } else {
        eprintln!("crdgen: {what} is out of date");
        ExitCode::FAILURE
    }
}
