//! `switchyard audit`: the event log as an audit log, and the check of its chains.

use std::process::ExitCode;

use switchyard_api::{AuditQuery, Client};

use crate::cli::{AuditArgs, Output};
use crate::cmd::client::print_json;

pub async fn run(api: &Client, args: AuditArgs, output: Output) -> anyhow::Result<ExitCode> {
    if args.verify {
        let check = api.verify_audit().await?;
        if output == Output::Json {
            print_json(&check)?;
        } else {
            outln!(
                "event log: {} events, {}",
                check.events.events,
                if check.events.ok {
                    "chain verifies"
                } else {
                    "CHAIN BROKEN"
                }
            );
            for p in &check.events.problems {
                outln!("  event {}: {}", p.id, p.message);
            }
            outln!(
                "flag audit log: {} entries, {}",
                check.flags.entries,
                if check.flags.ok {
                    "chain verifies"
                } else {
                    "CHAIN BROKEN"
                }
            );
            for p in &check.flags.problems {
                let at = p.id.map(|id| format!("entry {id}: ")).unwrap_or_default();
                outln!("  {at}{}", p.message);
            }
        }
        return Ok(if check.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let query = AuditQuery {
        app: args.app,
        actor: args.actor,
        kinds: args.kinds,
        after: None,
        limit: Some(args.limit),
    };
    let list = api.audit(&query).await?;
    if output == Output::Json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    for e in list.events {
        let ev = &e.event;
        outln!(
            "{:>6}  {}  {:<16} {:<18} {:<10} {:<15} {}",
            e.id,
            ev.at,
            ev.actor,
            ev.kind.as_str(),
            ev.app.as_ref().map_or("-", |a| a.as_str()),
            ev.source.as_deref().unwrap_or("-"),
            ev.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}
