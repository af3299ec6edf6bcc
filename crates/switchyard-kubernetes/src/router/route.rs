//! The route object a `kubernetes` app's weights are written on (a Gateway API HTTPRoute or an
//! Istio VirtualService), read and edited as JSON so that everything Switchyard does not own in
//! it stays as its owner wrote it.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;
use switchyard_core::AppName;
use switchyard_core::manifest::app::{RouteMatch, TrafficRouting};

use super::{AppRouting, describe};
use crate::gateway::{self, Backends};
use crate::istio;
use crate::objects::Role;

/// Which kind of route object.
enum RouteKind {
    Gateway,
    /// The names of the http routes to weight (all that route to the stable Service if empty).
    Istio(Vec<String>),
}

/// The route object a `kubernetes` app's weights are written on.
pub(super) struct Route {
    kind: RouteKind,
    api: Api<DynamicObject>,
    name: String,
    namespace: String,
    pub(super) stable: String,
    pub(super) canary: String,
    port: u16,
}

impl Route {
    pub(super) fn of(
        client: &kube::Client,
        app: &AppName,
        routing: &AppRouting,
    ) -> Result<Option<Route>, String> {
        let (kind, gvk, plural, name) = match &routing.traffic_routing {
            None => return Ok(None),
            Some(TrafficRouting::GatewayApi(g)) => (
                RouteKind::Gateway,
                GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
                "httproutes",
                g.http_route.to_string(),
            ),
            Some(TrafficRouting::Istio(i)) => (
                RouteKind::Istio(i.routes.clone()),
                GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService"),
                "virtualservices",
                i.virtual_service.to_string(),
            ),
        };
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        Ok(Some(Route {
            kind,
            api: Api::namespaced_with(client.clone(), &routing.namespace, &resource),
            name,
            namespace: routing.namespace.clone(),
            stable: Role::Stable.service(app),
            canary: Role::Canary.service(app),
            port: routing.service_port,
        }))
    }

    pub(super) fn backends(&self) -> Backends<'_> {
        Backends {
            stable: &self.stable,
            canary: &self.canary,
            port: self.port,
        }
    }

    pub(super) fn what(&self) -> String {
        let kind = match self.kind {
            RouteKind::Gateway => "HTTPRoute",
            RouteKind::Istio(_) => "VirtualService",
        };
        format!("{kind} {} in namespace {}", self.name, self.namespace)
    }

    pub(super) fn weights(&self, route: &Value) -> Vec<(u64, u64)> {
        match &self.kind {
            RouteKind::Gateway => gateway::weights(route, self.backends()),
            RouteKind::Istio(names) => istio::weights(route, self.backends(), names),
        }
    }

    pub(super) fn set_weights(&self, route: &mut Value, stable_weight: u32) -> Result<(), String> {
        match &self.kind {
            RouteKind::Gateway => gateway::set_weights(route, self.backends(), stable_weight),
            RouteKind::Istio(names) => {
                istio::set_weights(route, self.backends(), names, stable_weight)
            }
        }
    }

    pub(super) fn set_header_route(
        &self,
        route: &mut Value,
        header_route: Option<(&str, &[RouteMatch])>,
    ) -> Result<(), String> {
        match &self.kind {
            RouteKind::Gateway => gateway::set_header_route(route, self.backends(), header_route),
            RouteKind::Istio(names) => {
                istio::set_header_route(route, self.backends(), names, header_route)
            }
        }
    }

    pub(super) fn set_mirror(
        &self,
        route: &mut Value,
        mirror: Option<(&str, u8)>,
    ) -> Result<(), String> {
        match &self.kind {
            RouteKind::Gateway => gateway::set_mirror(route, self.backends(), mirror),
            RouteKind::Istio(names) => istio::set_mirror(route, self.backends(), names, mirror),
        }
    }

    pub(super) async fn read(&self) -> Result<Value, String> {
        let obj = self
            .api
            .get(&self.name)
            .await
            .map_err(|e| describe(format!("reading {}", self.what()), e))?;
        serde_json::to_value(&obj).map_err(|e| e.to_string())
    }

    pub(super) async fn stable_weight(&self) -> Result<Option<u32>, String> {
        let now = self.read().await?;
        Ok(match &self.kind {
            RouteKind::Gateway => gateway::stable_weight(&now, self.backends()),
            RouteKind::Istio(names) => istio::stable_weight(&now, self.backends(), names),
        })
    }

    /// Reads the route, edits it and writes it back if it changed, again from the top when
    /// someone else wrote it in between (409).
    pub(super) async fn edit(
        &self,
        f: impl Fn(&mut Value) -> Result<(), String>,
    ) -> Result<(), String> {
        for _ in 0..5 {
            let before = self.read().await?;
            let mut after = before.clone();
            f(&mut after).map_err(|e| format!("{}: {e}", self.what()))?;
            if after == before {
                return Ok(());
            }
            let obj: DynamicObject = serde_json::from_value(after).map_err(|e| e.to_string())?;
            match self
                .api
                .replace(&self.name, &PostParams::default(), &obj)
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(describe(format!("updating {}", self.what()), e)),
            }
        }
        Err(format!(
            "updating {}: it kept changing under us (409 five times)",
            self.what()
        ))
    }
}
