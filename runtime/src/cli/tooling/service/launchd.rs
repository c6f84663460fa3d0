//! The LaunchAgent: `~/Library/LaunchAgents/local.mission-control.plist`,
//! written with the `plist` crate, loaded with `launchctl bootstrap`.

use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use super::{manager_command, manager_output, ManagerStatus, ServiceSpec};

/// The agent's label.
pub const LABEL: &str = "local.mission-control";

/// Where the agent's plist goes under `home`.
pub fn path(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents").join(format!("{LABEL}.plist"))
}

/// The agent's plist: started at load, restarted whenever it exits, its
/// output in the log directory, with the spec's open-file limit.
pub fn plist(spec: &ServiceSpec) -> Value {
    let mut agent = Dictionary::new();
    agent.insert("Label".into(), LABEL.into());
    agent.insert(
        "ProgramArguments".into(),
        Value::Array(spec.arguments().into_iter().map(Value::from).collect()),
    );
    agent.insert("RunAtLoad".into(), true.into());
    agent.insert("KeepAlive".into(), true.into());
    // Not restarted more often than this after exiting.
    agent.insert("ThrottleInterval".into(), 10.into());
    // launchd's default soft limit is 256 descriptors.
    for limits in ["SoftResourceLimits", "HardResourceLimits"] {
        let mut files = Dictionary::new();
        files.insert("NumberOfFiles".into(), spec.open_files.into());
        agent.insert(limits.into(), Value::Dictionary(files));
    }
    agent.insert(
        "WorkingDirectory".into(),
        spec.working_dir.display().to_string().into(),
    );
    agent.insert(
        "StandardOutPath".into(),
        spec.log_dir.join("mission.log").display().to_string().into(),
    );
    agent.insert(
        "StandardErrorPath".into(),
        spec.log_dir.join("mission.err.log").display().to_string().into(),
    );
    let env: Dictionary = spec
        .env
        .iter()
        .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
        .collect();
    agent.insert("EnvironmentVariables".into(), Value::Dictionary(env));
    Value::Dictionary(agent)
}

/// The plist as XML text.
pub fn render(spec: &ServiceSpec) -> anyhow::Result<String> {
    let mut out = Vec::new();
    plist(spec).to_writer_xml(&mut out)?;
    out.push(b'\n');
    Ok(String::from_utf8(out)?)
}

/// The launchd domain of this user's agents.
fn domain() -> String {
    format!("gui/{}", crate::os::user_id())
}

/// Loads the agent at `path` (unloading a loaded one first), which starts it.
pub fn load(path: &Path) -> anyhow::Result<()> {
    let _ = manager_command("launchctl", &["bootout", &format!("{}/{LABEL}", domain())]);
    manager_command(
        "launchctl",
        &["bootstrap", &domain(), &path.display().to_string()],
    )
    .map(drop)
}

/// Stops and unloads the agent.
pub fn unload() -> anyhow::Result<()> {
    manager_command("launchctl", &["bootout", &format!("{}/{LABEL}", domain())]).map(drop)
}

/// What launchd says of the agent.
pub fn status() -> anyhow::Result<ManagerStatus> {
    let output = manager_output("launchctl", &["print", &format!("{}/{LABEL}", domain())])?;
    // `print` fails for a service launchd does not know.
    Ok(match output.status.success() {
        true => parse_print(&String::from_utf8_lossy(&output.stdout)),
        false => ManagerStatus::default(),
    })
}

/// Reads `state = running` and `pid = 123` from `launchctl print`.
fn parse_print(text: &str) -> ManagerStatus {
    let field = |name: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(name)?.trim_start().strip_prefix('='))
            .map(|v| v.trim().to_owned())
    };
    ManagerStatus {
        loaded: true,
        pid: field("pid").and_then(|p| p.parse().ok()),
        state: field("state").unwrap_or_else(|| "unknown".into()),
        since: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_state_and_pid_from_launchctl_print() {
        let text = "gui/501/local.mission-control = {\n\tactive count = 1\n\tpath = /Users/a/Library/LaunchAgents/local.mission-control.plist\n\tstate = running\n\n\tprogram = /usr/local/bin/mission\n\tpid = 4242\n\tlast exit code = (never exited)\n}\n";
        let status = parse_print(text);
        assert_eq!(status.state, "running");
        assert_eq!(status.pid, Some(4242));
        assert!(status.loaded);
    }
}
