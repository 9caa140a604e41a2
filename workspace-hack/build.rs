// Cargo considers a package's build-dependencies only when it has a build script: this one lets
// the workspace-hack unify the features of the members' build-dependencies too.
fn main() {}
