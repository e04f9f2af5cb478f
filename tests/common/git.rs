//! Git repositories for tests and benches: everything under a directory
//! committed as it is.

use std::path::Path;

/// Make `root` a git repository (if it is not one) and commit every file
/// under it to HEAD with `message`; returns the commit id.
pub fn commit_all(root: &Path, message: &str) -> git2::Oid {
    let repository = git2::Repository::open(root)
        .or_else(|_| git2::Repository::init(root))
        .expect("a git repository");
    let mut index = repository.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repository.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("test", "test@example.com").unwrap();
    let parent = repository
        .head()
        .ok()
        .and_then(|head| head.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repository
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap()
}
