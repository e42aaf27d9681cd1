//! Writes an import file: one NDJSON upsert per generated profile (user id, email and the
//! ten properties the other benchmarks use).

use std::io::Write;

use serde_json::json;

use crate::data;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    profiles: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut rng = data::rng(7);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..args.profiles {
        let line = json!({
            "identities": {"user_id": format!("u{i:014}"), "email": format!("user{i}@example.com")},
            "properties": data::properties(i, &mut rng),
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
