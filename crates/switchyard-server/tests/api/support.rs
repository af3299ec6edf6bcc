//! A router over the control layer with fake ports, and requests sent to it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use switchyard_control::auth::{NewToken, Role, Tokens};
use switchyard_control::dataplane::DataPlane;
use switchyard_control::testing::{
    AlwaysPasses, GatedProvider, NoTraffic, RecordingRouter, RecordingRuntime, TestClock,
};
use switchyard_control::{
    Controller, ControllerPorts, ExperimentService, FlagService, Manifests, TrafficOwner,
};
use switchyard_core::Clock;
use switchyard_core::ports::Author;
use switchyard_server::auth::Security;
use switchyard_server::{ServerContext, router};
use switchyard_store::SqliteStore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const START: u64 = 1_700_000_000_000;

/// The API over an empty in-memory store, with token authentication.
pub struct Api {
    pub router: Router,
    /// What the runtime was asked to start and stop.
    pub runtime: Arc<RecordingRuntime>,
    pub tokens: Arc<Tokens>,
    /// The first admin token: requests send it unless they say otherwise.
    pub admin: String,
    /// The tables and proxies behind `/api/v1/dataplane` (the controller routes through
    /// `RecordingRouter` instead).
    pub dataplane: DataPlane,
}

impl Api {
    pub async fn new() -> Api {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let clock: Arc<dyn Clock> = Arc::new(TestClock::at(START));
        let routes = Arc::new(RecordingRouter::default());
        let runtime = Arc::new(RecordingRuntime::default());
        let experiments = Arc::new(
            ExperimentService::load(Arc::new(store.clone()), Arc::clone(&clock), false)
                .await
                .unwrap(),
        );
        let traffic = Arc::new(TrafficOwner::new(routes.clone(), experiments.clone()));
        let controller = Arc::new(Controller::new(ControllerPorts {
            policy: switchyard_control::testing::policy(),
            store: Arc::new(store.clone()),
            runtime: runtime.clone(),
            traffic: Arc::clone(&traffic),
            metrics: Arc::new(NoTraffic),
            provider: Arc::new(GatedProvider {
                gate: Arc::default(),
                value: 0.0,
            }),
            smoke: Arc::new(AlwaysPasses),
            hooks: Arc::new(AlwaysPasses),
            clock: Arc::clone(&clock),
        }));
        let flags = FlagService::load(Arc::new(store.clone()), CancellationToken::new())
            .await
            .unwrap();
        let manifests = Arc::new(Manifests::new(
            switchyard_control::testing::policy(),
            Arc::new(store.clone()),
            routes.clone(),
            Arc::clone(&experiments),
            traffic,
            Arc::clone(&clock),
        ));
        let tokens = Arc::new(
            Tokens::load(Arc::new(store.clone()), Arc::clone(&clock))
                .await
                .unwrap(),
        );
        let admin = tokens.bootstrap().await.unwrap().unwrap().token;
        let security = Arc::new(Security {
            tokens: Some(Arc::clone(&tokens)),
            allowed_hosts: Security::loopback_hosts(),
            cors_origins: vec!["https://ops.example".into()],
            ofrep_cors_origins: vec!["https://shop.example".into()],
            sessions: Arc::default(),
        });
        let dataplane = DataPlane::new(1);
        dataplane.open();
        let pipelines = Arc::new(switchyard_control::pipelines::Pipelines::new(
            Arc::new(store.clone()),
            Arc::clone(&controller),
            Arc::clone(&clock),
        ));
        let notifications = Arc::new(switchyard_control::notifications::Notifications::new(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            Arc::new(Unreachable),
            Arc::clone(&clock),
            "http://localhost:7070".into(),
            Arc::new(|_: &str| None),
        ));
        let context = ServerContext {
            controller,
            pipelines,
            notifications,
            store: Arc::new(store),
            manifests,
            metrics: Arc::new(NoTraffic),
            prometheus: Arc::new(String::new),
            clock,
            flags: Arc::new(flags),
            experiments,
            security,
            dataplane: dataplane.clone(),
        };
        Api {
            router: router(context),
            runtime,
            tokens,
            admin,
            dataplane,
        }
    }

    /// Creates a token of `role` for `name`, limited to `apps` and `environments` when given.
    pub async fn token(
        &self,
        name: &str,
        role: Role,
        apps: Option<&[&str]>,
        environments: Option<&[&str]>,
    ) -> String {
        let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        let new = NewToken {
            name: name.into(),
            role,
            apps: apps.map(set),
            environments: environments.map(set),
        };
        self.tokens
            .create(&new, &Author::system("test"))
            .await
            .unwrap()
            .token
    }

    /// Sends `request` with the admin token (unless it carries an `Authorization` header);
    /// returns the status, the `Allow` header and the body as JSON (`Null` when it is not JSON).
    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        let headers = request.headers_mut();
        if !headers.contains_key("authorization") {
            let value = format!("Bearer {}", self.admin).parse().unwrap();
            headers.insert("authorization", value);
        }
        if !headers.contains_key("host") {
            headers.insert("host", "127.0.0.1:7070".parse().unwrap());
        }
        self.send_as_is(request).await
    }

    /// Sends `request` exactly as it is.
    pub async fn send_as_is(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            allow,
            json,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A request with a JSON body.
    pub async fn json(&self, method: &str, path: &str, body: &serde_json::Value) -> Answer {
        self.send(
            Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// A request with a raw body and optional content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(t) = content_type {
            builder = builder.header("content-type", t);
        }
        self.send(builder.body(Body::from(body.to_owned())).unwrap())
            .await
    }

    /// Applies manifest text; panics unless it is accepted.
    pub async fn apply(&self, text: &str) {
        let body = serde_json::json!({"files": [{"name": "m.yaml", "content": text}]});
        let answer = self.json("POST", "/api/v1/apply", &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub allow: Option<String>,
    pub json: serde_json::Value,
    pub text: String,
}

impl Answer {
    /// The stable error body's code, or a panic naming what came instead.
    pub fn code(&self) -> &str {
        self.json["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not the stable error body: {}", self.text))
    }

    pub fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or_default()
    }
}

/// An app with a canary of the given steps.
pub fn app(name: &str, steps: &str) -> String {
    format!(
        "apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  listen: 127.0.0.1:0
  runtime: {{process: {{command: [sh, '{{version}}']}}}}
  healthCheck: {{path: /health}}
  strategy: {{canary: {{steps: {steps}}}}}
"
    )
}

/// Sends a request and reads the status and `Access-Control-Allow-Origin`.
pub trait OneshotRaw {
    async fn oneshot_raw(self, request: Request<Body>) -> (StatusCode, Option<String>);
}

impl OneshotRaw for Router {
    async fn oneshot_raw(self, request: Request<Body>) -> (StatusCode, Option<String>) {
        let response = self.oneshot(request).await.unwrap();
        let origin = response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status(), origin)
    }
}

/// A receiver nobody reaches: the API tests queue notifications but never deliver them.
struct Unreachable;

#[async_trait::async_trait]
impl switchyard_control::notifications::NotificationSender for Unreachable {
    async fn send(&self, url: &str, _: &[(String, String)], _: &str) -> Result<(), String> {
        Err(format!("{url} is not reachable from the API tests"))
    }
}
