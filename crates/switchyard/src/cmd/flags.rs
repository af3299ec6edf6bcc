//! `switchyard flags`: the flag API through the typed client, and `flags eval`, which needs no
//! daemon.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use switchyard_api::flags::*;
use switchyard_api::{Client, ClientError};
use switchyard_flags::{EvaluationContext, FlagSet, FlagType, Timestamp};

use crate::cli::{ChangeArgs, EvalArgs, EvalType, FlagFileFormat, FlagsCommand, Output};

/// Runs one `flags` subcommand.
pub async fn run(api: &Client, command: FlagsCommand, output: Output) -> anyhow::Result<ExitCode> {
    match command {
        FlagsCommand::List => list(api, output).await,
        FlagsCommand::Get { key } => {
            let view = api.flag(&key).await.map_err(explain)?;
            print_json(&if output == Output::Json {
                serde_json::to_value(&view)?
            } else {
                view.flag
            })
        }
        FlagsCommand::Apply {
            file,
            format,
            dry_run,
            strict,
            change,
        } => {
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("while reading {}", file.display()))?;
            let request = ApplyFlagsRequest {
                format: wire_format(format),
                content,
                dry_run,
                reason: change.reason,
                strict,
            };
            let response = api.apply_flags(&request).await.map_err(explain)?;
            for warning in &response.warnings {
                eprintln!("warning: {}", warning.message);
            }
            if output == Output::Json {
                return print_json(&response);
            }
            for r in &response.results {
                outln!("{} {} {}", r.kind.as_str(), r.key, r.result);
            }
            Ok(ExitCode::SUCCESS)
        }
        FlagsCommand::Delete { key, change } => {
            let response = api
                .delete_flag(&key, &request(change))
                .await
                .map_err(explain)?;
            print_json(&response)
        }
        FlagsCommand::Enable { key, env, change } => {
            toggle(api, &key, &env, true, change, output).await
        }
        FlagsCommand::Disable { key, env, change } => {
            toggle(api, &key, &env, false, change, output).await
        }
        FlagsCommand::Rollout {
            key,
            percent,
            env,
            change,
        } => {
            let request = RolloutRequest {
                percent,
                environment: env,
                reason: change.reason,
            };
            let view = api.rollout_flag(&key, &request).await.map_err(explain)?;
            if output == Output::Json {
                return print_json(&view);
            }
            outln!("{key}: rollout {percent}% (revision {})", view.revision);
            Ok(ExitCode::SUCCESS)
        }
        FlagsCommand::Audit { verify: true, .. } => verify(api, output).await,
        FlagsCommand::Audit { key, limit, .. } => audit(api, key.as_deref(), limit, output).await,
        FlagsCommand::Eval(args) => eval(&args),
    }
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<ExitCode> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

/// An API error as a message; invalid flag sets list their problems.
fn explain(e: ClientError) -> anyhow::Error {
    if let ClientError::Api { body, .. } = &e {
        if body.error.code == "invalid_flags" {
            return anyhow::anyhow!("invalid flags: {}", body.error.message);
        }
    }
    anyhow::Error::new(e)
}

fn request(change: ChangeArgs) -> FlagChangeRequest {
    FlagChangeRequest {
        reason: change.reason,
    }
}

fn wire_format(format: FlagFileFormat) -> FlagFormat {
    match format {
        FlagFileFormat::Native => FlagFormat::Native,
        FlagFileFormat::Unleash => FlagFormat::Unleash,
        FlagFileFormat::Flagd => FlagFormat::Flagd,
    }
}

async fn list(api: &Client, output: Output) -> anyhow::Result<ExitCode> {
    let list = api.flags().await.map_err(explain)?;
    if output == Output::Json {
        return print_json(&list);
    }
    outln!(
        "{:<32} {:<8} {:<8} {:<6} ENVIRONMENTS",
        "KEY",
        "TYPE",
        "ENABLED",
        "RULES"
    );
    for flag in &list.flags {
        let environments: Vec<String> = flag
            .environments
            .iter()
            .map(|(name, on)| format!("{name}={}", if *on { "on" } else { "off" }))
            .collect();
        outln!(
            "{:<32} {:<8} {:<8} {:<6} {}",
            flag.key,
            flag.flag_type,
            flag.enabled,
            flag.rules,
            environments.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn toggle(
    api: &Client,
    key: &str,
    env: &str,
    enable: bool,
    change: ChangeArgs,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let view = api
        .toggle_flag(key, env, enable, &request(change))
        .await
        .map_err(explain)?;
    if output == Output::Json {
        return print_json(&view);
    }
    let state = if enable { "enabled" } else { "disabled" };
    outln!("{key}: {state} in {env} (revision {})", view.revision);
    Ok(ExitCode::SUCCESS)
}

async fn audit(
    api: &Client,
    key: Option<&str>,
    limit: Option<u32>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let list = api.flag_audit(key, limit).await.map_err(explain)?;
    if output == Output::Json {
        return print_json(&list);
    }
    for e in &list.entries {
        let action = match (&e.before, &e.after) {
            (None, _) => "created",
            (_, None) => "deleted",
            _ => "changed",
        };
        outln!(
            "{:>5} {} {:<16} {} {} `{}` {}  {}",
            e.id,
            e.at,
            e.actor,
            action,
            e.kind.as_str(),
            e.key,
            e.reason,
            &e.hash[..e.hash.len().min(12)]
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(api: &Client, output: Output) -> anyhow::Result<ExitCode> {
    let v = api.verify_flag_audit().await.map_err(explain)?;
    if output == Output::Json {
        print_json(&v)?;
    } else if v.ok {
        outln!(
            "audit log verified: {} entries, head {}",
            v.entries,
            v.head.as_deref().unwrap_or("(empty)")
        );
    } else {
        for p in &v.problems {
            match p.id {
                Some(id) => eprintln!("entry {id}: {}", p.message),
                None => eprintln!("{}", p.message),
            }
        }
    }
    if v.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!(
            "the flag audit log does not verify ({} problems)",
            v.problems.len()
        )
    }
}

/// `flags eval`: load, compile, evaluate once, print the details.
fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("while reading {}", args.file.display()))?;
    let set = match args.format {
        FlagFileFormat::Native if text.trim_start().starts_with('{') => {
            FlagSet::from_native_json(&text).map_err(anyhow::Error::new)
        }
        FlagFileFormat::Native => FlagSet::from_native_yaml(&text).map_err(anyhow::Error::new),
        FlagFileFormat::Unleash => FlagSet::from_unleash_json(&text).map_err(anyhow::Error::new),
        FlagFileFormat::Flagd => FlagSet::from_flagd_json(&text).map_err(anyhow::Error::new),
    }
    .with_context(|| format!("while loading {}", args.file.display()))?;
    let compiled = match &args.env {
        Some(env) => set.compile_for_environment(env),
        None => set.compile(),
    }
    .with_context(|| format!("while compiling {}", args.file.display()))?;
    let context_json: Value =
        serde_json::from_str(&args.context).context("while reading --context as JSON")?;
    let context = if args.format == FlagFileFormat::Unleash {
        EvaluationContext::from_unleash(&context_json)
    } else {
        serde_json::from_value(context_json).context("--context must be a JSON object")?
    };
    let flag_type = engine_type(args.flag_type);
    let default = args
        .default
        .as_deref()
        .map(|text| parse_default(flag_type, text))
        .transpose()?;
    let now = args
        .now
        .map_or_else(Timestamp::now, Timestamp::from_unix_millis);
    let details = compiled.evaluate(&args.flag, Some(flag_type), &context, now);
    let mut printed = serde_json::to_value(&details)?;
    // OpenFeature: the caller's default stands in when the flag yields no value.
    if let (Some(default), Some(slot)) = (default, printed.get_mut("value")) {
        if slot.is_null() {
            *slot = default;
        }
    }
    print_json(&printed)
}

fn engine_type(t: EvalType) -> FlagType {
    match t {
        EvalType::Boolean => FlagType::Boolean,
        EvalType::String => FlagType::String,
        EvalType::Integer => FlagType::Integer,
        EvalType::Float => FlagType::Float,
        EvalType::Object => FlagType::Object,
    }
}

/// `--default` as a value of the requested type: strings are taken as written, anything else is
/// read as JSON and must have the type.
fn parse_default(flag_type: FlagType, text: &str) -> anyhow::Result<Value> {
    if flag_type == FlagType::String {
        return Ok(Value::String(text.to_owned()));
    }
    let value: Value = serde_json::from_str(text)
        .with_context(|| format!("--default `{text}` is not a {}", flag_type.as_str()))?;
    if !flag_type.accepts(&value) {
        bail!("--default `{text}` is not a {}", flag_type.as_str());
    }
    Ok(value)
}
