//! Every link in README.md and docs/ resolves inside the repository: relative targets exist,
//! and `file.md#anchor` names a heading of that file. External http(s) links are not
//! followed. Markdown files linked from those are checked too.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Component, Path, PathBuf},
};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use tempfile::TempDir;

use crate::readme::repository_root;

/// Link targets and heading anchors of one markdown file.
struct Parsed {
    links: Vec<String>,
    anchors: BTreeSet<String>,
}

fn parse(text: &str) -> Parsed {
    let mut links = Vec::new();
    let mut anchors = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                links.push(dest_url.into_string());
            }
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let slug = github_slug(&heading.take().unwrap_or_default());
                // GitHub numbers repeated headings: `x`, `x-1`, `x-2`.
                let n = seen.entry(slug.clone()).or_insert(0);
                anchors.insert(if *n == 0 {
                    slug.clone()
                } else {
                    format!("{slug}-{n}")
                });
                *n += 1;
            }
            _ => {}
        }
    }
    Parsed { links, anchors }
}

/// GitHub's heading anchor: lower case, spaces to `-`, punctuation other than `-`/`_` dropped.
fn github_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// `base/rel` with `.` and `..` resolved lexically; `None` when it climbs out of `root`.
fn resolve(root: &Path, base: &Path, rel: &str) -> Option<PathBuf> {
    let joined = match rel.strip_prefix('/') {
        Some(from_root) => root.join(from_root),
        None => base.join(rel),
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.starts_with(root).then_some(out)
}

/// Checks `start` and every markdown file they link to inside `root`; returns the broken
/// links (`file: target (why)`) and the number of links checked.
fn broken_links(root: &Path, start: &[PathBuf]) -> (Vec<String>, usize) {
    let mut queue: Vec<PathBuf> = start.to_vec();
    let mut parsed: HashMap<PathBuf, Parsed> = HashMap::new();
    let mut broken = Vec::new();
    let mut checked = 0;
    while let Some(file) = queue.pop() {
        if parsed.contains_key(&file) {
            continue;
        }
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let doc = parse(&text);
        let name = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let base = file.parent().expect("a file has a folder").to_path_buf();
        let mut wanted_anchors = Vec::new();
        for link in &doc.links {
            if link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
            {
                continue;
            }
            checked += 1;
            let (path, anchor) = match link.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else {
                match resolve(root, &base, path) {
                    Some(t) if t.exists() => t,
                    Some(_) => {
                        broken.push(format!("{name}: {link} (no such file)"));
                        continue;
                    }
                    None => {
                        broken.push(format!("{name}: {link} (outside the repository)"));
                        continue;
                    }
                }
            };
            let is_markdown = target.extension().is_some_and(|e| e == "md");
            if is_markdown {
                queue.push(target.clone());
            }
            if let Some(anchor) = anchor {
                if is_markdown {
                    wanted_anchors.push((link.clone(), target, anchor.to_owned()));
                } else {
                    broken.push(format!("{name}: {link} (anchor into a non-markdown file)"));
                }
            }
        }
        parsed.insert(file.clone(), doc);
        for (link, target, anchor) in wanted_anchors {
            let anchors = match parsed.get(&target) {
                Some(p) => p.anchors.clone(),
                None => parse(&std::fs::read_to_string(&target).unwrap_or_default()).anchors,
            };
            if !anchors.contains(&anchor) {
                broken.push(format!("{name}: {link} (no heading #{anchor})"));
            }
        }
    }
    broken.sort();
    (broken, checked)
}

fn markdown_files_of(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_link_in_the_readme_and_docs_resolves_inside_the_repository() {
    let root = repository_root();
    let docs = markdown_files_of(&root.join("docs"));
    assert!(docs.len() >= 10, "the docs/ pages: {docs:?}");
    let mut start = vec![root.join("README.md")];
    start.extend(docs);
    let (broken, checked) = broken_links(&root, &start);
    assert!(
        checked > 50,
        "only {checked} links found: is the parser reading them?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn a_missing_file_a_missing_heading_and_a_path_outside_are_reported() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(
        root.join("README.md"),
        "# Top\n\n[ok](docs/a.md#a-heading) [gone](docs/b.md) [web](https://example.com/x)\n\
         [wrong anchor](docs/a.md#nope) [out](../elsewhere.md) [self](#top)\n",
    )
    .unwrap();
    std::fs::write(
        root.join("docs/a.md"),
        "# A `heading`\n\n```sh\n# not a heading\n```\n\n[back](../README.md#not-a-heading)\n",
    )
    .unwrap();
    let (broken, checked) = broken_links(&root, &[root.join("README.md")]);
    assert_eq!(checked, 6, "{broken:?}");
    assert_eq!(
        broken,
        [
            "README.md: ../elsewhere.md (outside the repository)",
            "README.md: docs/a.md#nope (no heading #nope)",
            "README.md: docs/b.md (no such file)",
            "docs/a.md: ../README.md#not-a-heading (no heading #not-a-heading)",
        ]
    );
}

#[test]
fn anchors_follow_github_rules() {
    assert_eq!(
        github_slug("Choices made where the contract is silent"),
        "choices-made-where-the-contract-is-silent"
    );
    assert_eq!(
        github_slug("OAuth 2.1 and `accounts`"),
        "oauth-21-and-accounts"
    );
    assert_eq!(github_slug("Outside `/v1`"), "outside-v1");
    let parsed = parse("# Same\n\n## Same\n");
    assert!(parsed.anchors.contains("same") && parsed.anchors.contains("same-1"));
}
