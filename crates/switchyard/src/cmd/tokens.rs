//! `switchyard token create|list|revoke`.

use std::process::ExitCode;

use switchyard_api::{Client, CreateTokenRequest};

use crate::cli::{Output, TokenCommand};
use crate::cmd::client::print_json;

pub async fn run(api: &Client, command: TokenCommand, output: Output) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create {
            name,
            role,
            apps,
            environments,
        } => {
            let request = CreateTokenRequest {
                name,
                role,
                apps: (!apps.is_empty()).then_some(apps),
                environments: (!environments.is_empty()).then_some(environments),
            };
            let created = api.create_token(&request).await?;
            if output == Output::Json {
                print_json(&created)?;
            } else {
                outln!("{}", created.token);
                eprintln!(
                    "token {} for {} ({}); shown this once, keep it safe",
                    created.view.id, created.view.name, created.view.role
                );
            }
        }
        TokenCommand::List => {
            let tokens = api.tokens().await?;
            if output == Output::Json {
                print_json(&tokens)?;
                return Ok(ExitCode::SUCCESS);
            }
            outln!(
                "{:<13} {:<16} {:<12} {:<24} STATE",
                "ID",
                "NAME",
                "ROLE",
                "SCOPE"
            );
            for t in tokens {
                let scope = [
                    t.apps.map(|a| format!("apps {}", a.join(","))),
                    t.environments.map(|e| format!("env {}", e.join(","))),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => format!("created {}", t.created_at),
                };
                let scope = if scope.is_empty() {
                    "all".into()
                } else {
                    scope
                };
                outln!(
                    "{:<13} {:<16} {:<12} {:<24} {state}",
                    t.id,
                    t.name,
                    t.role,
                    scope
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let answer = api.revoke_token(&id).await?;
            if output == Output::Json {
                print_json(&answer)?;
            } else if answer.revoked {
                outln!("token {id} revoked");
            } else {
                outln!("token {id} was revoked already");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
