//! `persql migrate`: applies a folder of `NNNN_name.sql` files to a template over HTTP, in
//! version order, skipping files already recorded (same version and checksum) and refusing
//! to go on when a recorded file has changed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use persql_provisioner::template_migrations::checksum;
use serde_json::{Value, json};

/// Arguments of `persql migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The template database: `namespace/template-slug`.
    #[arg(long)]
    pub template: String,
    /// Folder of migration files named `<version>_<name>.sql` (e.g. `0001_init.sql`).
    pub dir: PathBuf,
    /// Base URL of the PerSQL API.
    #[arg(long, env = "PERSQL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A workspace token (`psql_ws_…`) of the template's namespace.
    #[arg(long, env = "PERSQL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Try each new file (`dryRun=true`: the template and a sample of its databases, rolled
    /// back) instead of recording it.
    #[arg(long)]
    pub dry_run: bool,
}

/// One migration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationFile {
    pub version: i64,
    pub name: String,
    pub file_name: String,
    pub sql: String,
}

/// Parses `0001_add_done.sql` into (1, `add_done`); other names are `None`.
pub fn parse_file_name(file_name: &str) -> Option<(i64, String)> {
    let stem = file_name.strip_suffix(".sql")?;
    let (digits, name) = stem.split_once('_')?;
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !name_ok {
        return None;
    }
    let version: i64 = digits.parse().ok().filter(|v| *v > 0)?;
    Some((version, name.to_owned()))
}

/// The `.sql` files of `dir`, by version. A `.sql` file with another name, or two files with
/// one version, is an error (a typo must not silently skip a migration).
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<MigrationFile>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !file_name.ends_with(".sql") {
            continue;
        }
        let Some((version, name)) = parse_file_name(file_name) else {
            bail!(
                "{file_name}: migration files are named <version>_<name>.sql, e.g. 0001_init.sql"
            );
        };
        let sql = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file = MigrationFile {
            version,
            name,
            file_name: file_name.to_owned(),
            sql,
        };
        if let Some(other) = files.insert(version, file) {
            bail!(
                "{} and {file_name} have the same version {version}",
                other.file_name
            );
        }
    }
    Ok(files.into_values().collect())
}

/// Runs `persql migrate`.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let Some((ns, template)) = args.template.split_once('/') else {
        bail!("--template is namespace/template-slug");
    };
    let files = read_dir(&args.dir)?;
    let base = format!(
        "{}/v1/databases/{ns}/{template}/migrations",
        args.url.trim_end_matches('/')
    );
    let client = reqwest::Client::new();
    let (status, list) = send(client.get(&base).bearer_auth(&args.token)).await?;
    if !status.is_success() {
        bail!("listing migrations: {}", problem(status, &list));
    }
    let recorded: BTreeMap<i64, String> = list["migrations"]
        .as_array()
        .context("unexpected answer listing migrations")?
        .iter()
        .filter_map(|m| Some((m["version"].as_i64()?, m["checksum"].as_str()?.to_owned())))
        .collect();
    // Refuse before applying anything: history must not be rewritten.
    for f in &files {
        if let Some(sum) = recorded.get(&f.version)
            && *sum != checksum(&f.sql)
        {
            bail!(
                "{} changed after it was recorded as version {} (recorded checksum {sum}); \
                 add a new migration instead",
                f.file_name,
                f.version
            );
        }
    }
    let url = if args.dry_run {
        format!("{base}?dryRun=true")
    } else {
        base.clone()
    };
    for f in &files {
        if recorded.contains_key(&f.version) {
            println!("skipped {} (already recorded)", f.file_name);
            continue;
        }
        let body = json!({ "version": f.version, "name": f.name, "sql": f.sql });
        let (status, answer) = send(client.post(&url).bearer_auth(&args.token).json(&body)).await?;
        if !status.is_success() {
            bail!("{}: {}", f.file_name, problem(status, &answer));
        }
        if args.dry_run {
            let fails = answer["wouldFail"].as_array().map_or(0, Vec::len);
            println!(
                "dry run {}: would fail on {fails} of the template and {} sampled databases",
                f.file_name, answer["sampled"]
            );
            for fail in answer["wouldFail"].as_array().into_iter().flatten() {
                let db = fail["database"].as_str().unwrap_or("(template)");
                println!("  {db}: {}", fail["error"].as_str().unwrap_or_default());
            }
        } else {
            println!(
                "applied {} (version {}; rolling out to {} databases)",
                f.file_name, f.version, answer["counts"]["total"]
            );
        }
    }
    Ok(())
}

async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let res = req.send().await.context("reaching the PerSQL API")?;
    let status = res.status();
    let bytes = res.bytes().await.context("reading the answer")?;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, value))
}

/// `400 sql_error: no such table: x` from a problem document.
fn problem(status: reqwest::StatusCode, body: &Value) -> String {
    match (body["code"].as_str(), body["detail"].as_str()) {
        (Some(code), Some(detail)) => format!("{} {code}: {detail}", status.as_u16()),
        _ => format!("{status}: {body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_version_and_name() {
        assert_eq!(parse_file_name("0001_init.sql"), Some((1, "init".into())));
        assert_eq!(
            parse_file_name("12_add-done.v2.sql"),
            Some((12, "add-done.v2".into()))
        );
        for bad in [
            "init.sql",
            "0001.sql",
            "0001_.sql",
            "x1_a.sql",
            "0000_zero.sql",
            "0001_a b.sql",
            "0001_a.txt",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn read_dir_orders_by_version_and_refuses_duplicates_and_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0010_b.sql"), "B").unwrap();
        std::fs::write(dir.path().join("0002_a.sql"), "A").unwrap();
        std::fs::write(dir.path().join("README.md"), "ignored").unwrap();
        let files = read_dir(dir.path()).unwrap();
        let versions: Vec<i64> = files.iter().map(|f| f.version).collect();
        assert_eq!(versions, vec![2, 10]);
        std::fs::write(dir.path().join("2_again.sql"), "C").unwrap();
        assert!(read_dir(dir.path()).is_err());
        std::fs::remove_file(dir.path().join("2_again.sql")).unwrap();
        std::fs::write(dir.path().join("oops.sql"), "D").unwrap();
        assert!(read_dir(dir.path()).is_err());
    }
}
