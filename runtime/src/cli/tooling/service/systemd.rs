//! The systemd user unit: `~/.config/systemd/user/mission-control.service`,
//! enabled and started with `systemctl --user`.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::{manager_command, ManagerStatus, ServiceSpec};

/// The unit's name.
pub const UNIT: &str = "mission-control.service";

/// Where the unit goes: under `$XDG_CONFIG_HOME` (`config_home`), else
/// `home/.config`.
pub fn path(home: &Path, config_home: Option<&Path>) -> PathBuf {
    config_home
        .map_or_else(|| home.join(".config"), Path::to_owned)
        .join("systemd/user")
        .join(UNIT)
}

/// The unit file: restarted on failure, its output in the journal, with
/// the spec's open-file limit.
pub fn render(spec: &ServiceSpec) -> String {
    let mut unit = String::new();
    let exec = spec
        .arguments()
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let _ = write!(
        unit,
        "[Unit]\n\
         Description=Mission Control: always-on automations as WebAssembly plugins\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec}\n\
         WorkingDirectory={}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         # Running tasks get the config's shutdown grace; this leaves room for it.\n\
         TimeoutStopSec=60\n\
         LimitNOFILE={}\n",
        quote(&spec.working_dir.display().to_string()),
        spec.open_files
    );
    for (name, value) in &spec.env {
        let _ = writeln!(unit, "Environment={}", quote(&format!("{name}={value}")));
    }
    unit.push_str("\n[Install]\nWantedBy=default.target\n");
    unit
}

/// One word for systemd: double-quoted, with `\`, `"` escaped and `%`
/// doubled (specifiers), and `$` doubled (variable expansion).
fn quote(word: &str) -> String {
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('"');
    for c in word.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '%' => quoted.push_str("%%"),
            '$' => quoted.push_str("$$"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Enables and (re)starts the unit.
pub fn load() -> anyhow::Result<()> {
    manager_command("systemctl", &["--user", "daemon-reload"])?;
    manager_command("systemctl", &["--user", "enable", UNIT])?;
    manager_command("systemctl", &["--user", "restart", UNIT]).map(drop)
}

/// Stops and disables the unit.
pub fn unload() -> anyhow::Result<()> {
    manager_command("systemctl", &["--user", "disable", "--now", UNIT])?;
    manager_command("systemctl", &["--user", "daemon-reload"]).map(drop)
}

/// What systemd says of the unit.
pub fn status() -> anyhow::Result<ManagerStatus> {
    let text = manager_command(
        "systemctl",
        &[
            "--user",
            "show",
            UNIT,
            "--property=LoadState,ActiveState,SubState,MainPID,ActiveEnterTimestamp",
        ],
    )?;
    Ok(parse_show(&text))
}

/// Reads `systemctl show`'s `KEY=value` lines.
fn parse_show(text: &str) -> ManagerStatus {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let active = field("ActiveState").unwrap_or("unknown");
    ManagerStatus {
        loaded: field("LoadState") == Some("loaded"),
        pid: field("MainPID").and_then(|p| p.parse().ok()).filter(|p| *p != 0),
        state: match field("SubState") {
            Some(sub) => format!("{active} ({sub})"),
            None => active.to_owned(),
        },
        since: field("ActiveEnterTimestamp").map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_systemd_would_expand() {
        assert_eq!(quote(r#"a b"c\d%e$f"#), r#""a b\"c\\d%%e$$f""#);
    }

    #[test]
    fn reads_systemctl_show() {
        let status = parse_show(
            "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=812\nActiveEnterTimestamp=Tue 2026-12-01 06:00:00 UTC\n",
        );
        assert_eq!(
            status,
            ManagerStatus {
                loaded: true,
                pid: Some(812),
                state: "active (running)".into(),
                since: Some("Tue 2026-12-01 06:00:00 UTC".into()),
            }
        );
        let stopped = parse_show(
            "LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nActiveEnterTimestamp=\n",
        );
        assert!(!stopped.loaded);
        assert_eq!(stopped.pid, None);
        assert_eq!(stopped.since, None);
    }
}
