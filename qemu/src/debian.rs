//! A Debian 12 root for `cargo xtask exec --root debian`: the packages of `ROOT_PACKAGES`
//! and their dependency closure, fetched with `apt-get download` and unpacked with
//! `dpkg -x` into a cache under `target/debian/` (never installed on the host), then
//! turned into an initramfs that our kernel unpacks into its tmpfs root.
//!
//! The root is unpacked, not installed: no maintainer script runs, so the packages that
//! only installing needs (dpkg, debconf, usrmerge and what only they pull in, perl among
//! them) are left out. Bookworm's packages still ship `/bin` and `/lib`; the root is
//! /usr-merged afterwards as a Debian 12 system is. `/etc/passwd` and `/etc/group` name
//! root and one user, `user` (1000:1000, home `/home/user`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the root is for: a shell, the tools people check memory and mounts with, Python.
pub const ROOT_PACKAGES: &[&str] =
    &["libc6", "bash", "coreutils", "util-linux", "mount", "procps", "python3", "grep", "sed", "findutils"];

/// Packages only installing needs; a dependency group whose first choice is one of these
/// is dropped.
pub const INSTALL_ONLY: &[&str] =
    &["dpkg", "debconf", "debconf-2.0", "cdebconf", "usrmerge", "install-info", "init-system-helpers", "perl-base"];

/// Directories of no use to a program at run time, removed to keep the initramfs small.
const STRIPPED: &[&str] =
    &["usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info", "usr/share/lintian"];

/// How the root is made from its packages: a change to it (what `finish_root` writes, the
/// alternatives) takes a new number, so that a cached root of the same packages is rebuilt.
const ROOT_LAYOUT: u32 = 2;

/// The non-root user: name, uid and gid.
pub const USER: (&str, u32) = ("user", 1000);

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
user:x:1000:1000:user:/home/user:/bin/bash\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nusers:x:100:user\nuser:x:1000:\nnogroup:x:65534:\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files\n";

/// The dependency groups of each package in `apt-cache depends` output (Depends and
/// PreDepends only, as the caller asks), each reduced to one package: the first
/// alternative, or for a virtual package (`<name>`) its first provider. Arch qualifiers
/// (`:any`) are dropped. Groups whose choice is in `skip` are left out.
pub fn parse_depends(out: &str, skip: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    // The group being read: its alternatives, each with the providers listed under it.
    let mut group: Vec<(String, Vec<String>)> = Vec::new();
    let mut group_open = false;
    let flush =
        |deps: &mut BTreeMap<String, Vec<String>>, cur: &Option<String>, group: &mut Vec<(String, Vec<String>)>| {
            let Some(pkg) = cur else {
                group.clear();
                return;
            };
            let choice = group.iter().find_map(|(name, providers)| {
                if name.starts_with('<') {
                    providers.first().cloned()
                } else {
                    Some(name.clone())
                }
            });
            group.clear();
            if let Some(c) = choice {
                let c = c.split(':').next().unwrap_or(&c).to_string();
                if !skip.contains(&c.as_str()) {
                    deps.entry(pkg.clone()).or_default().push(c);
                }
            }
        };
    for line in out.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            flush(&mut deps, &current, &mut group);
            group_open = false;
            let name = line.trim().to_string();
            deps.entry(name.clone()).or_default();
            current = Some(name);
        } else if let Some(provider) = line.strip_prefix("    ") {
            if let Some(last) = group.last_mut() {
                last.1.push(provider.trim().to_string());
            }
        } else {
            // "  Kind: name", or " |Kind: name" for an alternative the next line continues.
            if !group_open {
                flush(&mut deps, &current, &mut group);
            }
            let Some((kind, name)) = line[2..].split_once(':') else { continue };
            group_open = line.starts_with(" |");
            if kind == "Depends" || kind == "PreDepends" {
                group.push((name.trim().to_string(), Vec::new()));
            }
        }
    }
    flush(&mut deps, &current, &mut group);
    deps
}

/// The closure of `roots` under `depends`, which answers `apt-cache depends` for a batch
/// of packages (one call per level of the search).
pub fn closure(
    roots: &[&str],
    skip: &[&str],
    mut depends: impl FnMut(&[String]) -> Result<String, String>,
) -> Result<BTreeSet<String>, String> {
    let mut seen: BTreeSet<String> = roots.iter().map(|s| s.to_string()).collect();
    let mut frontier: Vec<String> = seen.iter().cloned().collect();
    while !frontier.is_empty() {
        let deps = parse_depends(&depends(&frontier)?, skip);
        for p in &frontier {
            if !deps.contains_key(p) {
                return Err(format!("apt-cache knows no package {p}"));
            }
        }
        frontier = deps.into_values().flatten().filter(|d| seen.insert(d.clone())).collect();
        frontier.sort();
        frontier.dedup();
    }
    Ok(seen)
}

fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stderr(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn apt_cache_depends(packages: &[String]) -> Result<String, String> {
    output(
        Command::new("apt-cache")
            .args([
                "depends",
                "--no-recommends",
                "--no-suggests",
                "--no-conflicts",
                "--no-breaks",
                "--no-replaces",
                "--no-enhances",
            ])
            .args(packages),
    )
}

/// `Package=Version` for each package, as `apt-cache show` gives the candidate.
pub fn parse_versions(show: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut package = None;
    for l in show.lines() {
        if let Some(p) = l.strip_prefix("Package:") {
            package = Some(p.trim().to_string());
        } else if let Some(ver) = l.strip_prefix("Version:") {
            if let Some(p) = package.take() {
                v.push(format!("{p}={}", ver.trim()));
            }
        }
    }
    v.sort();
    v
}

/// FNV-1a, to name the cache directory after the exact package versions.
fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// The root's directory, built on first use (later calls with the same package versions
/// reuse it).
pub fn ensure_root() -> Result<PathBuf, String> {
    crate::deps::ensure_command("dpkg", "dpkg")?;
    let mut packages = closure(ROOT_PACKAGES, INSTALL_ONLY, apt_cache_depends);
    if packages.is_err() {
        eprintln!("xtask: apt-get update (to resolve the Debian root's packages)");
        crate::deps::apt_update()?;
        packages = closure(ROOT_PACKAGES, INSTALL_ONLY, apt_cache_depends);
    }
    let packages: Vec<String> = packages?.into_iter().collect();
    let versions =
        parse_versions(&output(Command::new("apt-cache").args(["show", "--no-all-versions"]).args(&packages))?);
    let cache = crate::target_dir().join("debian");
    let dir = cache.join(format!("root-{:016x}", fnv64(&format!("{ROOT_LAYOUT}\n{}", versions.join("\n")))));
    let root = dir.join("root");
    if dir.join("complete").is_file() {
        return Ok(root);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| format!("{}: {e}", debs.display()))?;
    eprintln!(
        "xtask: building the Debian root from {} packages (apt-get download, dpkg -x under {})",
        versions.len(),
        dir.display()
    );
    let st = Command::new("apt-get")
        .current_dir(&debs)
        .args(["download", "-qq"])
        .args(&versions)
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !st.success() {
        return Err(format!("apt-get download of the Debian root's {} packages failed ({st})", versions.len()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&debs)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    files.sort();
    if files.len() != versions.len() {
        return Err(format!("apt-get download left {} .debs for {} packages", files.len(), versions.len()));
    }
    let mut alternatives = Vec::new();
    let control = dir.join("control");
    for deb in &files {
        let st = Command::new("dpkg").arg("-x").arg(deb).arg(&root).status().map_err(|e| format!("dpkg: {e}"))?;
        if !st.success() {
            return Err(format!("dpkg -x {} failed", deb.display()));
        }
        let _ = std::fs::remove_dir_all(&control);
        let st =
            Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control).status().map_err(|e| format!("dpkg-deb: {e}"))?;
        if !st.success() {
            return Err(format!("dpkg-deb -e {} failed", deb.display()));
        }
        if let Ok(postinst) = std::fs::read_to_string(control.join("postinst")) {
            alternatives.extend(parse_alternatives(&postinst));
        }
    }
    let _ = std::fs::remove_dir_all(&control);
    link_alternatives(&root, &alternatives)?;
    std::fs::remove_dir_all(&debs).map_err(|e| e.to_string())?;
    finish_root(&root)?;
    std::fs::write(dir.join("complete"), versions.join("\n") + "\n").map_err(|e| e.to_string())?;
    Ok(root)
}

/// One link `update-alternatives --install` (or its `--slave`) makes: (link, name, path,
/// priority; a slave has its master's).
pub type Alternative = (String, String, String, i64);

/// The alternatives a maintainer script installs with literal arguments (`awk` is gawk's,
/// `/usr/bin/awk -> /usr/bin/gawk`); the ones built from shell variables are left out.
pub fn parse_alternatives(script: &str) -> Vec<Alternative> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "update-alternatives") else { continue };
        let words = &words[at + 1..];
        let Some(i) = words.iter().position(|w| *w == "--install") else { continue };
        let Some([link, name, path, prio]) = words.get(i + 1..i + 5) else { continue };
        if [link, name, path, prio].iter().any(|w| w.contains('$') || w.contains('"')) {
            continue;
        }
        let Ok(prio) = prio.parse::<i64>() else { continue };
        out.push((link.to_string(), name.to_string(), path.to_string(), prio));
        for (j, w) in words.iter().enumerate().skip(i + 5) {
            if *w == "--slave" {
                if let Some([link, name, path]) = words.get(j + 1..j + 4) {
                    if ![link, name, path].iter().any(|w| w.contains('$') || w.contains('"')) {
                        out.push((link.to_string(), name.to_string(), path.to_string(), prio));
                    }
                }
            }
        }
    }
    out
}

/// Makes each alternative's link to the path of its highest priority, where that path is
/// in the root (man pages are stripped).
fn link_alternatives(root: &Path, alternatives: &[Alternative]) -> Result<(), String> {
    let mut best: BTreeMap<&str, &Alternative> = BTreeMap::new();
    for a in alternatives {
        if best.get(a.1.as_str()).is_none_or(|b| a.3 > b.3) {
            best.insert(&a.1, a);
        }
    }
    for (link, _, path, _) in best.values() {
        let at = root.join(link.trim_start_matches('/'));
        if root.join(path.trim_start_matches('/')).exists() && at.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(path, &at).map_err(|e| format!("{}: {e}", at.display()))?;
        }
    }
    Ok(())
}

/// Strips what no program reads, merges /usr, and writes the accounts.
fn finish_root(root: &Path) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    for s in STRIPPED {
        let p = root.join(s);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
        }
    }
    for d in ["bin", "sbin", "lib", "lib64"] {
        let top = root.join(d);
        let usr = root.join("usr").join(d);
        if top.is_symlink() {
            continue;
        }
        if top.is_dir() {
            merge_into(&top, &usr)?;
            std::fs::remove_dir_all(&top).map_err(|e| io(&top, e))?;
        }
        std::fs::create_dir_all(&usr).map_err(|e| io(&usr, e))?;
        std::os::unix::fs::symlink(format!("usr/{d}"), &top).map_err(|e| io(&top, e))?;
    }
    for d in ["etc", "root", "home/user", "tmp", "dev", "proc", "sys"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| io(&root.join(d), e))?;
    }
    for (name, text) in [("passwd", PASSWD), ("group", GROUP), ("nsswitch.conf", NSSWITCH), ("hostname", "debian\n")] {
        let p = root.join("etc").join(name);
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

/// Moves every entry of `from` into `to`, merging directories that both hold.
fn merge_into(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let dest = to.join(e.file_name());
        let ty = e.file_type().map_err(|e| e.to_string())?;
        if ty.is_dir() && dest.is_dir() && !dest.is_symlink() {
            merge_into(&e.path(), &dest)?;
        } else if dest.symlink_metadata().is_ok() {
            return Err(format!("/usr merge: {} and {} both exist", e.path().display(), dest.display()));
        } else {
            std::fs::rename(e.path(), &dest).map_err(|err| format!("{}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Adds the tree under `root` to `w`, names relative to it, in an order where each
/// directory comes before what it holds. Everything belongs to root but the user's home.
pub fn add_tree(w: &mut cpio::Writer, root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> =
            std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = rel.join(e.file_name());
            let name_s = name.to_string_lossy().into_owned();
            let owner = if name.starts_with("home/user") { USER.1 } else { 0 };
            let meta = e.path().symlink_metadata().map_err(|err| format!("{}: {err}", e.path().display()))?;
            let perm = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(e.path()).map_err(|err| err.to_string())?;
                w.add_owned(&name_s, cpio::S_IFLNK | 0o777, 0, 0, target.to_string_lossy().as_bytes());
            } else if meta.is_dir() {
                w.add_owned(&name_s, cpio::S_IFDIR | perm, owner, owner, &[]);
                stack.push(name);
            } else if meta.is_file() {
                let data = std::fs::read(e.path()).map_err(|err| format!("{}: {err}", e.path().display()))?;
                w.add_owned(&name_s, cpio::S_IFREG | perm, owner, owner, &data);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPENDS: &str = "\
util-linux
  PreDepends: libc6
  PreDepends: libsystemd0
    libelogind0
  Depends: util-linux-extra
usrmerge
  Depends: <perl:any>
    perl
  Depends: libfile-find-rule-perl
libpython3.11-stdlib
 |Depends: media-types
  Depends: mime-support
  Depends: libc6
libpam0g
  Depends: libaudit1
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
libc6
  Depends: libgcc-s1
  Recommends: libidn2-0
";

    #[test]
    fn depends_take_the_named_package_even_when_others_provide_it() {
        let d = parse_depends(DEPENDS, INSTALL_ONLY);
        assert_eq!(d["util-linux"], ["libc6", "libsystemd0", "util-linux-extra"]);
    }

    #[test]
    fn a_virtual_dependency_takes_its_first_provider_without_arch_qualifier() {
        let d = parse_depends(DEPENDS, INSTALL_ONLY);
        assert_eq!(d["usrmerge"], ["perl", "libfile-find-rule-perl"]);
    }

    #[test]
    fn alternatives_take_the_first_and_form_one_group() {
        let d = parse_depends(DEPENDS, INSTALL_ONLY);
        assert_eq!(d["libpython3.11-stdlib"], ["media-types", "libc6"]);
    }

    #[test]
    fn a_group_whose_choice_only_installing_needs_is_dropped() {
        let d = parse_depends(DEPENDS, INSTALL_ONLY);
        assert_eq!(d["libpam0g"], ["libaudit1"]);
    }

    #[test]
    fn recommends_are_not_dependencies() {
        let d = parse_depends(DEPENDS, INSTALL_ONLY);
        assert_eq!(d["libc6"], ["libgcc-s1"]);
    }

    #[test]
    fn closure_follows_dependencies_level_by_level_and_skips_install_only_packages() {
        let db: BTreeMap<&str, &str> = [
            ("bash", "bash\n  PreDepends: libc6\n  Depends: base-files\n  Depends: debianutils\n"),
            ("libc6", "libc6\n  Depends: libgcc-s1\n"),
            ("base-files", "base-files\n  PreDepends: <awk>\n    mawk\n"),
            ("debianutils", "debianutils\n  PreDepends: libc6\n  Depends: dpkg\n"),
            ("libgcc-s1", "libgcc-s1\n  Depends: libc6\n"),
            ("mawk", "mawk\n  PreDepends: libc6\n"),
        ]
        .into_iter()
        .collect();
        let mut calls = 0;
        let c = closure(&["bash"], INSTALL_ONLY, |pkgs| {
            calls += 1;
            Ok(pkgs.iter().map(|p| db[p.as_str()]).collect())
        })
        .unwrap();
        let got: Vec<&str> = c.iter().map(|s| s.as_str()).collect();
        assert_eq!(got, ["base-files", "bash", "debianutils", "libc6", "libgcc-s1", "mawk"]);
        assert_eq!(calls, 3, "one apt-cache call per level");
    }

    #[test]
    fn alternatives_are_read_across_continuation_lines_with_their_slaves() {
        let gawk = "update-alternatives --quiet --install /usr/bin/awk awk /usr/bin/gawk 10 \\\n  --slave /usr/bin/nawk nawk /usr/bin/gawk\n";
        let procps = "  update-alternatives --install \"$BINPATH\"/\"$BINNAME\" \"$BINNAME\" x 50\n";
        let a = parse_alternatives(&format!("{gawk}{procps}"));
        assert_eq!(
            a,
            [
                ("/usr/bin/awk".into(), "awk".into(), "/usr/bin/gawk".into(), 10),
                ("/usr/bin/nawk".into(), "nawk".into(), "/usr/bin/gawk".into(), 10)
            ]
        );
    }

    #[test]
    fn the_alternative_of_highest_priority_is_linked() {
        let t = std::env::temp_dir().join(format!("xtask-alt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("usr/bin")).unwrap();
        std::fs::write(t.join("usr/bin/gawk"), b"").unwrap();
        std::fs::write(t.join("usr/bin/mawk"), b"").unwrap();
        let alts = [
            ("/usr/bin/awk".to_string(), "awk".to_string(), "/usr/bin/mawk".to_string(), 5),
            ("/usr/bin/awk".to_string(), "awk".to_string(), "/usr/bin/gawk".to_string(), 10),
            ("/usr/share/man/man1/awk.1.gz".to_string(), "awk.1.gz".to_string(), "/usr/share/man/x".to_string(), 10),
        ];
        link_alternatives(&t, &alts).unwrap();
        assert_eq!(std::fs::read_link(t.join("usr/bin/awk")).unwrap(), Path::new("/usr/bin/gawk"));
        assert!(t.join("usr/share/man/man1/awk.1.gz").symlink_metadata().is_err());
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn closure_fails_on_a_package_apt_does_not_know() {
        let r = closure(&["nosuch"], INSTALL_ONLY, |_| Ok(String::new()));
        assert!(r.unwrap_err().contains("nosuch"));
    }

    #[test]
    fn versions_pair_each_package_with_its_candidate() {
        let show = "Package: bash\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b13\nDescription: x\n\nPackage: coreutils\nVersion: 9.1-1\n";
        assert_eq!(parse_versions(show), ["bash=5.2.15-2+b13", "coreutils=9.1-1"]);
    }

    #[test]
    fn merged_usr_moves_top_level_entries_and_links_the_directories() {
        let t = std::env::temp_dir().join(format!("xtask-debian-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("bin")).unwrap();
        std::fs::create_dir_all(t.join("usr/bin")).unwrap();
        std::fs::create_dir_all(t.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(t.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(t.join("bin/bash"), b"bash").unwrap();
        std::fs::write(t.join("usr/bin/env"), b"env").unwrap();
        std::fs::write(t.join("lib/x86_64-linux-gnu/libc.so.6"), b"libc").unwrap();
        std::fs::write(t.join("usr/lib/x86_64-linux-gnu/libz.so.1"), b"z").unwrap();
        finish_root(&t).unwrap();
        assert_eq!(std::fs::read_link(t.join("bin")).unwrap(), Path::new("usr/bin"));
        assert_eq!(std::fs::read(t.join("bin/bash")).unwrap(), b"bash");
        assert_eq!(std::fs::read(t.join("bin/env")).unwrap(), b"env");
        assert_eq!(std::fs::read(t.join("lib/x86_64-linux-gnu/libc.so.6")).unwrap(), b"libc");
        assert_eq!(std::fs::read(t.join("lib/x86_64-linux-gnu/libz.so.1")).unwrap(), b"z");
        assert!(std::fs::read_to_string(t.join("etc/passwd")).unwrap().contains("user:x:1000:1000:"));
        let mut w = cpio::Writer::new();
        add_tree(&mut w, &t).unwrap();
        let a = w.finish();
        let entries: Vec<_> = cpio::Reader::new(&a).map(|e| e.unwrap()).collect();
        let home = entries.iter().find(|e| e.name == "home/user").unwrap();
        assert_eq!((home.uid, home.gid), (1000, 1000));
        let bin = entries.iter().find(|e| e.name == "bin").unwrap();
        assert_eq!((bin.mode & cpio::S_IFMT, bin.data), (cpio::S_IFLNK, &b"usr/bin"[..]));
        let pos = |n: &str| entries.iter().position(|e| e.name == n).unwrap();
        assert!(pos("usr") < pos("usr/lib") && pos("usr/lib") < pos("usr/lib/x86_64-linux-gnu/libc.so.6"));
        std::fs::remove_dir_all(&t).unwrap();
    }
}
