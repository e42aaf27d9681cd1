//! Writes an import file: one NDJSON upsert per generated profile (user id, email and the
//! ten properties the other benchmarks use), as profiled's import takes it or as a
//! mediarithmics document import execution does (`--dialect mediarithmics`: the user account
//! in compartment 1, its UserProfile replaced).

use std::io::Write;

use serde_json::json;

use crate::data;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    profiles: u64,
    /// `profiled` or `mediarithmics`.
    #[arg(long, default_value = "profiled")]
    dialect: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut rng = data::rng(7);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..args.profiles {
        let line = match args.dialect.as_str() {
            "mediarithmics" => json!({
                "operation": "UPSERT", "compartment_id": "1", "user_account_id": format!("u{i:014}"),
                "force_replace": true, "user_profile": data::properties(i, &mut rng),
            }),
            "profiled" => json!({
                "identities": {"user_id": format!("u{i:014}"), "email": format!("user{i}@example.com")},
                "properties": data::properties(i, &mut rng),
            }),
            other => anyhow::bail!("--dialect is profiled or mediarithmics, not {other}"),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
