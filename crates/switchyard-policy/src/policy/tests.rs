use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn executable(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn the_default_runs_nothing_and_reaches_loopback_only() {
    let p = Policy::default();
    assert!(matches!(
        p.check_program("/bin/sh"),
        Err(Violation::Program { .. })
    ));
    assert!(p.check_url("http://127.0.0.1:9090/api").is_ok());
    assert!(p.check_url("http://localhost:9090/").is_ok());
    assert!(p.check_url("http://[::1]:80/").is_ok());
    for bad in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "http://[::ffff:10.0.0.1]/",
        "http://example.com/",
        "http://localhost.evil.example/",
    ] {
        assert!(
            matches!(p.check_url(bad), Err(Violation::Host { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        p.check_url("not a url"),
        Err(Violation::BadUrl { .. })
    ));
    for bad in [
        "LD_PRELOAD",
        "ld_preload",
        "BASH_ENV",
        "PATH",
        "NODE_OPTIONS",
    ] {
        assert!(
            matches!(p.check_env(bad), Err(Violation::Env { .. })),
            "{bad}"
        );
    }
    assert!(p.check_env("SHOP_DB_URL").is_ok());
}

#[test]
fn a_policy_file_allows_programs_directories_variables_and_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("apps");
    std::fs::create_dir(&apps).unwrap();
    let shop = executable(&apps, "shop");
    let tool = executable(dir.path(), "tool");
    let text = format!(
        "run:\n  - {}\n  - {{under: {}}}\nenv:\n  deny: [AWS_*, SECRET]\nreach:\n  - 10.0.0.0/8\n  - prometheus.internal\n  - \"*.svc.cluster.local\"\n",
        tool.display(),
        apps.display()
    );
    let p = Policy::parse(&text, Path::new("policy.yaml")).unwrap();
    assert!(p.check_program(tool.to_str().unwrap()).is_ok());
    assert!(p.check_program(shop.to_str().unwrap()).is_ok());
    // `..` cannot leave the allowed directory; a link cannot pretend to be in it.
    let escape = format!("{}/../tool", apps.display());
    assert!(p.check_program(&escape).is_ok(), "{escape} is tool itself");
    let sh_escape = format!("{}/../../../../../../bin/sh", apps.display());
    assert!(p.check_program(&sh_escape).is_err());
    std::os::unix::fs::symlink("/bin/sh", apps.join("sh")).unwrap();
    assert!(
        p.check_program(apps.join("sh").to_str().unwrap()).is_err(),
        "a link to /bin/sh"
    );
    assert!(p.check_program("sh").is_err());
    assert!(p.check_program("").is_err());

    assert!(p.check_env("AWS_SECRET_ACCESS_KEY").is_err());
    assert!(p.check_env("SECRET").is_err());
    assert!(
        p.check_env("LD_PRELOAD").is_err(),
        "the built-in list stays"
    );
    assert!(p.check_env("SHOP_PORT").is_ok());

    assert!(p.check_url("http://10.1.2.3:9090/").is_ok());
    assert!(p.check_url("http://prometheus.internal:9090/").is_ok());
    assert!(
        p.check_url("https://hooks.team.svc.cluster.local/x")
            .is_ok()
    );
    assert!(
        p.check_url("http://127.0.0.1/").is_err(),
        "a file replaces the loopback default"
    );
    assert!(p.check_url("http://evil.example/").is_err());
}

#[test]
fn bad_policy_files_name_what_is_wrong() {
    let e = Policy::parse("run: [/no/such/program]\n", Path::new("p.yaml")).unwrap_err();
    assert!(
        e.to_string()
            .contains("p.yaml: run[0]: program `/no/such/program`"),
        "{e}"
    );
    let e = Policy::parse("reach: [\"not a host\"]\n", Path::new("p.yaml")).unwrap_err();
    assert!(e.to_string().contains("reach[0]"), "{e}");
    let e = Policy::parse("runn: []\n", Path::new("p.yaml")).unwrap_err();
    assert!(e.to_string().starts_with("p.yaml:1:1"), "{e}");
    let e = Policy::parse("env: {deny: [\"=x\"]}\n", Path::new("p.yaml")).unwrap_err();
    assert!(e.to_string().contains("env.deny[0]"), "{e}");
}
