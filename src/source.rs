//! Where manifest files are read from: a directory on disk, or a git
//! revision read straight from the object database without a checkout.
//!
//! Both sources speak in repository-relative paths with `/` separators, so a
//! diagnostic reads the same whether it came from a working tree or from
//! `--ref origin/main`. This module only lists and reads files; it must not
//! parse them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A read-only view of a repository's files.
pub enum ManifestSource {
    Directory {
        root: PathBuf,
    },
    /// Files held in memory, by repository-relative path (tests, benchmarks, fuzzing).
    Memory {
        files: std::collections::BTreeMap<String, String>,
    },
    /// `prefix` is where the manifest repository sits inside the git work tree
    /// ("" when it is the top), so a fleet kept in a subdirectory of a
    /// larger repository works the same with and without `--ref`.
    GitRevision {
        repository: git2::Repository,
        tree_id: git2::Oid,
        revision: String,
        prefix: String,
    },
}

impl ManifestSource {
    pub fn directory(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!("repository directory {} does not exist", root.display());
        }
        Ok(ManifestSource::Directory {
            root: root.to_path_buf(),
        })
    }

    /// Open `revision` (a branch, tag, commit or any rev-parse expression) of the
    /// git repository at `repository_path`.
    pub fn git_revision(repository_path: &Path, revision: &str) -> Result<Self> {
        let repository = git2::Repository::discover(repository_path).with_context(|| {
            format!(
                "{} is not inside a git repository",
                repository_path.display()
            )
        })?;
        let object = repository.revparse_single(revision).with_context(|| {
            format!(
                "git revision `{revision}` not found in {}",
                repository_path.display()
            )
        })?;
        let tree = object
            .peel_to_tree()
            .with_context(|| format!("git revision `{revision}` does not name a commit or tree"))?;
        let tree_id = tree.id();
        drop(tree);
        drop(object);
        let prefix = match (repository.workdir(), repository_path.canonicalize()) {
            (Some(workdir), Ok(requested)) => match workdir.canonicalize() {
                Ok(workdir) => requested
                    .strip_prefix(&workdir)
                    .map(|inner| {
                        inner
                            .components()
                            .map(|component| component.as_os_str().to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .unwrap_or_default(),
                Err(_) => String::new(),
            },
            _ => String::new(),
        };
        Ok(ManifestSource::GitRevision {
            repository,
            tree_id,
            revision: revision.to_string(),
            prefix,
        })
    }

    /// The git commit the manifests come from: the revision's commit, or the
    /// work tree's HEAD (with `+changes` when files differ from it). None
    /// outside git.
    pub fn commit(&self) -> Option<String> {
        match self {
            ManifestSource::Memory { .. } => None,
            ManifestSource::GitRevision {
                repository,
                revision,
                ..
            } => repository
                .revparse_single(revision)
                .ok()?
                .peel_to_commit()
                .ok()
                .map(|commit| commit.id().to_string()),
            ManifestSource::Directory { root } => {
                let repository = git2::Repository::discover(root).ok()?;
                let head = repository
                    .head()
                    .ok()?
                    .peel_to_commit()
                    .ok()?
                    .id()
                    .to_string();
                let mut options = git2::StatusOptions::new();
                options.include_untracked(true).include_ignored(false);
                let changed = repository
                    .statuses(Some(&mut options))
                    .map(|statuses| !statuses.is_empty())
                    .unwrap_or(false);
                Some(if changed {
                    format!("{head}+changes")
                } else {
                    head
                })
            }
        }
    }

    /// The directory relative paths in manifests (secret files, CA files) are taken from.
    pub fn root_directory(&self) -> std::path::PathBuf {
        match self {
            ManifestSource::Directory { root } => root.clone(),
            ManifestSource::Memory { .. } => std::path::PathBuf::from("."),
            ManifestSource::GitRevision {
                repository, prefix, ..
            } => repository
                .workdir()
                .unwrap_or_else(|| repository.path())
                .join(prefix),
        }
    }

    /// A short description for messages: the directory, or `revision` of the repository.
    pub fn describe(&self) -> String {
        match self {
            ManifestSource::Directory { root } => root.display().to_string(),
            ManifestSource::Memory { .. } => "memory".to_string(),
            ManifestSource::GitRevision {
                repository,
                revision,
                ..
            } => {
                let path = repository.workdir().unwrap_or_else(|| repository.path());
                format!("{} at revision {revision}", path.display())
            }
        }
    }

    pub fn is_dir(&self, relative: &str) -> bool {
        match self {
            ManifestSource::Directory { root } => root.join(relative).is_dir(),
            ManifestSource::Memory { files } => {
                relative.is_empty()
                    || files
                        .keys()
                        .any(|path| path.starts_with(&format!("{relative}/")))
            }
            ManifestSource::GitRevision {
                repository,
                tree_id,
                prefix,
                ..
            } => {
                let path = in_tree(prefix, relative);
                if path.is_empty() {
                    return true;
                }
                git_tree(repository, *tree_id)
                    .and_then(|tree| tree.get_path(Path::new(&path)).ok())
                    .is_some_and(|entry| entry.kind() == Some(git2::ObjectType::Tree))
            }
        }
    }

    pub fn exists(&self, relative: &str) -> bool {
        match self {
            ManifestSource::Directory { root } => root.join(relative).exists(),
            ManifestSource::Memory { files } => {
                files.contains_key(relative) || self.is_dir(relative)
            }
            ManifestSource::GitRevision {
                repository,
                tree_id,
                prefix,
                ..
            } => git_tree(repository, *tree_id)
                .is_some_and(|tree| tree.get_path(Path::new(&in_tree(prefix, relative))).is_ok()),
        }
    }

    /// Every YAML file (`.yaml`, `.yml`) below `relative`, recursively, sorted by path.
    pub fn yaml_files_below(&self, relative: &str) -> Result<Vec<String>> {
        let mut files = Vec::new();
        match self {
            ManifestSource::Directory { root } => {
                collect_directory(root, &root.join(relative), &mut files)?;
            }
            ManifestSource::Memory { files: held } => {
                let prefix = if relative.is_empty() {
                    String::new()
                } else {
                    format!("{relative}/")
                };
                files.extend(
                    held.keys()
                        .filter(|path| path.starts_with(&prefix) && is_yaml(path))
                        .cloned(),
                );
            }
            ManifestSource::GitRevision {
                repository,
                tree_id,
                revision,
                prefix,
            } => {
                let tree = git_tree(repository, *tree_id)
                    .with_context(|| format!("cannot read the tree of revision {revision}"))?;
                let path = in_tree(prefix, relative);
                let subtree = if path.is_empty() {
                    tree
                } else {
                    let entry = tree.get_path(Path::new(&path)).with_context(|| {
                        format!("{relative} does not exist at revision {revision}")
                    })?;
                    repository.find_tree(entry.id()).with_context(|| {
                        format!("{relative} is not a directory at revision {revision}")
                    })?
                };
                subtree
                    .walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
                        if entry.kind() == Some(git2::ObjectType::Blob)
                            && let Ok(name) = entry.name()
                            && is_yaml(name)
                        {
                            files.push(join(relative, &format!("{parent}{name}")));
                        }
                        git2::TreeWalkResult::Ok
                    })
                    .with_context(|| format!("cannot walk {relative} at revision {revision}"))?;
            }
        }
        files.sort();
        Ok(files)
    }

    pub fn read_to_string(&self, relative: &str) -> Result<String> {
        match self {
            ManifestSource::Directory { root } => std::fs::read_to_string(root.join(relative))
                .with_context(|| format!("cannot read {relative}")),
            ManifestSource::Memory { files } => files
                .get(relative)
                .cloned()
                .with_context(|| format!("{relative} does not exist")),
            ManifestSource::GitRevision {
                repository,
                tree_id,
                revision,
                prefix,
            } => {
                let tree = git_tree(repository, *tree_id)
                    .with_context(|| format!("cannot read the tree of revision {revision}"))?;
                let entry = tree
                    .get_path(Path::new(&in_tree(prefix, relative)))
                    .with_context(|| format!("{relative} does not exist at revision {revision}"))?;
                let blob = repository
                    .find_blob(entry.id())
                    .with_context(|| format!("{relative} is not a file at revision {revision}"))?;
                String::from_utf8(blob.content().to_vec())
                    .with_context(|| format!("{relative} is not UTF-8 text"))
            }
        }
    }
}

fn in_tree(prefix: &str, relative: &str) -> String {
    match (prefix.is_empty(), relative.is_empty()) {
        (true, _) => relative.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}/{relative}"),
    }
}

fn git_tree(repository: &git2::Repository, tree_id: git2::Oid) -> Option<git2::Tree<'_>> {
    repository.find_tree(tree_id).ok()
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{}/{child}", parent.trim_end_matches('/'))
    }
}

fn collect_directory(root: &Path, directory: &Path, files: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(directory)
        .with_context(|| format!("cannot list directory {}", directory.display()))?;
    for entry in entries {
        let entry =
            entry.with_context(|| format!("cannot list directory {}", directory.display()))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if file_type.is_dir() {
            collect_directory(root, &path, files)?;
        } else if is_yaml(&name) {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let text = relative
                .components()
                .map(|component| component.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push(text);
        }
    }
    Ok(())
}

/// Refuse a file the manifests name that is not inside `root` (the
/// repository checkout), judged by where it really is: `..`, an absolute path
/// and a symbolic link out of the checkout are all refused.
pub fn check_within(root: &Path, path: &Path, what: &str) -> Result<()> {
    let real = path
        .canonicalize()
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let root = root
        .canonicalize()
        .with_context(|| format!("cannot read the repository {}", root.display()))?;
    if !real.starts_with(&root) {
        bail!(
            "the {what} {} is outside the repository {} (it is {}); it must be a file of the repository",
            path.display(),
            root.display(),
            real.display()
        );
    }
    Ok(())
}

/// Read a file named by the manifests (a secret's `fromFile`, a discovery
/// snapshot): only a regular file (a FIFO would block, `/dev/zero` never
/// ends), at most `limit` bytes, UTF-8. Errors name `what` and the path,
/// never the content.
pub fn read_regular_file(path: &Path, limit: u64, what: &str) -> Result<String> {
    use std::io::Read;
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if !metadata.is_file() {
        bail!(
            "the {what} {} is not a regular file (a directory, FIFO, socket or device): fleetform reads only regular files",
            path.display()
        );
    }
    if metadata.len() > limit {
        bail!(
            "the {what} {} is {} bytes, more than the {limit} fleetform reads",
            path.display(),
            metadata.len()
        );
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!(
            "the {what} {} grew beyond the {limit} bytes fleetform reads",
            path.display()
        );
    }
    String::from_utf8(bytes).map_err(|error| {
        anyhow::anyhow!(
            "the {what} {} is not UTF-8 text (at byte {})",
            path.display(),
            error.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod read_tests {
    use super::read_regular_file;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("secret");
        std::fs::write(&file, "value\n").unwrap();
        assert_eq!(
            read_regular_file(&file, 64, "secret file").unwrap(),
            "value\n"
        );

        let large = format!(
            "{:#}",
            read_regular_file(&file, 3, "secret file").unwrap_err()
        );
        assert!(large.contains("is 6 bytes, more than the 3"), "{large}");

        let fifo = directory.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let refused = format!(
            "{:#}",
            read_regular_file(&fifo, 64, "secret file").unwrap_err()
        );
        assert!(refused.contains("is not a regular file"), "{refused}");

        let device = format!(
            "{:#}",
            read_regular_file(std::path::Path::new("/dev/zero"), 64, "snapshot").unwrap_err()
        );
        assert!(
            device.contains("the snapshot /dev/zero is not a regular file"),
            "{device}"
        );

        std::fs::write(&file, b"ab\xffcd").unwrap();
        let binary = format!(
            "{:#}",
            read_regular_file(&file, 64, "secret file").unwrap_err()
        );
        assert!(binary.contains("is not UTF-8 text (at byte 2)"), "{binary}");
    }
}
