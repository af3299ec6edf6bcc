//! Reading manifest files: multi-document YAML, typed by `kind`, with errors that name the file,
//! line, column and field path of what is wrong.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::{
    API_VERSION, AnalysisTemplate, App, AppSpec, CanaryStep, DeploymentWindow, Experiment,
    Manifest, Notifier, Pipeline, Strategy,
};

/// Everything wrong with one place in one manifest file.
#[derive(Debug, thiserror::Error)]
pub struct ManifestError {
    /// The file (or `<input>` for text given directly).
    pub file: PathBuf,
    /// 1-based line and column, when the YAML parser knows them.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Field path inside the document, such as `spec.strategy.canary.steps[1].setWeight`.
    pub path: String,
    pub kind: ManifestErrorKind,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if !self.path.is_empty() && self.path != "." {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// What is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ManifestErrorKind {
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    #[error("{message}")]
    Schema { message: String },
    #[error("unsupported apiVersion `{found}`, expected `{API_VERSION}`")]
    ApiVersion { found: String },
    #[error(
        "unknown kind `{found}`, expected `App`, `AnalysisTemplate`, `Experiment`, `Pipeline`, `DeploymentWindow` or `Notifier`"
    )]
    Kind { found: String },
    #[error("{kind} `{name}` is defined twice")]
    Duplicate { kind: &'static str, name: String },
    #[error("refers to AnalysisTemplate `{name}`, which is neither in these files nor applied")]
    MissingTemplate { name: String },
    #[error("a canary needs at least one step")]
    NoSteps,
    #[error("needs `successCondition` or `failureCondition` (or a `judge`)")]
    NoCondition,
    #[error("needs a `provider` (or a `judge`)")]
    NoProvider,
    #[error("a `judge` decides by itself: drop `successCondition`/`failureCondition`")]
    JudgeWithConditions,
    #[error("a `judge` reads the proxy's telemetry of both releases and takes no provider")]
    JudgeWithProvider,
    #[error("a `judge` needs an `interval`: how often it looks")]
    JudgeWithoutInterval,
    #[error("{value} is out of range: expected a value {expected}")]
    OutOfRange { value: f64, expected: &'static str },
    #[error("`count` must be at least 1")]
    ZeroCount,
    #[error("`count` above 1 needs an `interval`")]
    CountWithoutInterval,
    #[error("an analysis needs at least one template")]
    NoTemplates,
    #[error("the preview listener needs an address of its own, not the app's `listen`")]
    PreviewOnListen,
    #[error("must be the index of a step (the strategy has {steps})")]
    StartingStep { steps: usize },
    #[error("the directory holds no .yaml or .yml file")]
    EmptyDirectory,
    #[error("the file holds no manifest document")]
    EmptyFile,
    #[error(transparent)]
    Experiment(Box<super::experiment::ExperimentProblem>),
    #[error("`maxSurge` and `maxUnavailable` cannot both be 0: no instance could be replaced")]
    NoRollingProgress,
    #[error("{what} changes the number of instances, which a `static` runtime cannot do")]
    StaticScale { what: &'static str },
}

/// The errors of a load: every document is checked, so several may be reported at once.
#[derive(Debug, thiserror::Error)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Manifests read from one or more files, each document checked on its own and together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestSet {
    pub apps: Vec<App>,
    pub templates: Vec<AnalysisTemplate>,
    pub experiments: Vec<Experiment>,
    pub pipelines: Vec<Pipeline>,
    pub windows: Vec<DeploymentWindow>,
    pub notifiers: Vec<Notifier>,
    /// Where each document came from, in the order they were read.
    origins: Vec<Origin>,
}

/// A reference from one document to another: `(field path, kind, name)`.
type Reference<'a> = (String, &'static str, &'a str);

/// Where a document came from: its file, the position of its `metadata.name`, and the
/// positions of the template names it refers to (by field path).
#[derive(Debug, Clone, PartialEq)]
struct Origin {
    kind: &'static str,
    name: String,
    file: PathBuf,
    at: (usize, usize),
    refs: Vec<(String, (usize, usize))>,
}

impl Origin {
    fn error(&self, path: String, at: (usize, usize), kind: ManifestErrorKind) -> ManifestError {
        ManifestError {
            file: self.file.clone(),
            line: Some(at.0),
            column: Some(at.1),
            path,
            kind,
        }
    }
}

impl ManifestSet {
    /// All documents: apps, templates, experiments, pipelines, then deployment windows.
    pub fn manifests(&self) -> Vec<Manifest> {
        self.apps
            .iter()
            .cloned()
            .map(Manifest::App)
            .chain(
                self.templates
                    .iter()
                    .cloned()
                    .map(Manifest::AnalysisTemplate),
            )
            .chain(self.experiments.iter().cloned().map(Manifest::Experiment))
            .chain(self.pipelines.iter().cloned().map(Manifest::Pipeline))
            .chain(self.windows.iter().cloned().map(Manifest::DeploymentWindow))
            .chain(self.notifiers.iter().cloned().map(Manifest::Notifier))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
            && self.templates.is_empty()
            && self.experiments.is_empty()
            && self.pipelines.is_empty()
            && self.windows.is_empty()
            && self.notifiers.is_empty()
    }

    /// Checks that every pipeline's targets are apps, its stages' windows deployment windows,
    /// and the notifiers apps and pipelines name notifiers, of this set or applied (`applied`:
    /// the names applied, by kind).
    ///
    /// # Errors
    /// One error per missing reference, located at the reference.
    pub fn check_fleet_references(
        &self,
        applied: &std::collections::BTreeMap<&'static str, BTreeSet<String>>,
    ) -> Result<(), ManifestErrors> {
        let manifests = self.manifests();
        let here: BTreeSet<(&str, &str)> = manifests.iter().map(|m| (m.kind(), m.name())).collect();
        let app_refs = self.apps.iter().map(|a| {
            let refs = a
                .spec
                .notifiers
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("spec.notifiers[{i}]"), "Notifier", n.as_str()))
                .collect();
            ("App", a.metadata.name.as_str(), refs)
        });
        let documents: Vec<(&str, &str, Vec<Reference<'_>>)> = self
            .pipelines
            .iter()
            .map(|p| ("Pipeline", p.metadata.name.as_str(), p.references()))
            .chain(app_refs)
            .collect();
        let mut errors = Vec::new();
        for (owner, owner_name, references) in documents {
            let origin = self.origin(owner, owner_name);
            for (path, kind, name) in references {
                let known = here.contains(&(kind, name))
                    || applied.get(kind).is_some_and(|names| names.contains(name));
                if known {
                    continue;
                }
                let problem = ManifestErrorKind::Schema {
                    message: format!(
                        "refers to {kind} `{name}`, which is neither in these files nor applied"
                    ),
                };
                errors.push(match origin {
                    Some(o) => {
                        let at = o.refs.iter().find(|(p, _)| *p == path).map(|r| r.1);
                        o.error(path, at.unwrap_or(o.at), problem)
                    }
                    None => unlocated(path, problem),
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ManifestErrors(errors))
        }
    }

    /// Checks that every analysis step names a template that is in this set or in `applied`.
    ///
    /// # Errors
    /// One error per missing reference, naming the app document and field.
    pub fn check_references(&self, applied: &BTreeSet<String>) -> Result<(), ManifestErrors> {
        let here: BTreeSet<&str> = self
            .templates
            .iter()
            .map(|t| t.metadata.name.as_str())
            .collect();
        let mut errors = Vec::new();
        for app in &self.apps {
            let origin = self.origin("App", app.metadata.name.as_str());
            for (path, name) in app.spec.strategy.template_refs() {
                if !here.contains(name.as_str()) && !applied.contains(name.as_str()) {
                    let kind = ManifestErrorKind::MissingTemplate {
                        name: name.to_string(),
                    };
                    errors.push(match origin {
                        Some(o) => {
                            let at = o.refs.iter().find(|(p, _)| *p == path).map(|r| r.1);
                            o.error(path, at.unwrap_or(o.at), kind)
                        }
                        None => unlocated(path, kind),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ManifestErrors(errors))
        }
    }

    /// Adds the documents of `other`, read from `file`, to this set.
    ///
    /// # Errors
    /// One `Duplicate` error, located in `file`, per document of `other` this set already
    /// holds (the documents are added all the same, so later files are still checked).
    pub fn merge(&mut self, other: ManifestSet, file: &Path) -> Result<(), ManifestErrors> {
        let held: BTreeSet<(&'static str, String)> = self
            .manifests()
            .iter()
            .map(|m| (m.kind(), m.name().to_string()))
            .collect();
        let errors: Vec<ManifestError> = other
            .manifests()
            .iter()
            .filter(|m| held.contains(&(m.kind(), m.name().to_string())))
            .map(|m| other.duplicate(file, m))
            .collect();
        self.extend(other);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ManifestErrors(errors))
        }
    }

    /// Where document `name` of `kind` came from (the last one, for a duplicate).
    fn origin(&self, kind: &str, name: &str) -> Option<&Origin> {
        self.origins
            .iter()
            .rev()
            .find(|o| o.kind == kind && o.name == name)
    }

    /// `m`, one of this set's documents, defined a second time: located at its name in `file`.
    fn duplicate(&self, file: &Path, m: &Manifest) -> ManifestError {
        let kind = ManifestErrorKind::Duplicate {
            kind: m.kind(),
            name: m.name().into(),
        };
        let path = "metadata.name".to_string();
        match self.origin(m.kind(), m.name()) {
            Some(o) => o.error(path, o.at, kind),
            None => ManifestError {
                file: file.to_path_buf(),
                ..unlocated(path, kind)
            },
        }
    }

    fn extend(&mut self, other: ManifestSet) {
        self.apps.extend(other.apps);
        self.origins.extend(other.origins);
        self.templates.extend(other.templates);
        self.experiments.extend(other.experiments);
        self.pipelines.extend(other.pipelines);
        self.windows.extend(other.windows);
        self.notifiers.extend(other.notifiers);
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document<M, S> {
    #[serde(rename = "apiVersion")]
    _api_version: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    metadata: M,
    spec: S,
}

/// Parses manifest text. `file` names the source in errors.
///
/// # Errors
/// Every document that does not parse or validate, with its location.
pub fn load_str(text: &str, file: &Path) -> Result<ManifestSet, ManifestErrors> {
    let starts = document_start_lines(text);
    let mut errors = Vec::new();
    let mut headers = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        match serde_path_to_error::deserialize::<_, Option<Header>>(doc) {
            Ok(h) => headers.push(h),
            Err(e) => {
                errors.push(serde_error(file, &e));
                headers.push(None);
                // A syntax error ends the stream: the parser cannot find the next document.
                if e.inner().location().is_some() && i + 1 >= starts.len() {
                    break;
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ManifestErrors(errors));
    }
    if headers.iter().all(Option::is_none) {
        return Err(ManifestErrors(vec![ManifestError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            path: String::new(),
            kind: ManifestErrorKind::EmptyFile,
        }]));
    }
    let mut set = ManifestSet::default();
    for (i, (doc, header)) in serde_yaml_ng::Deserializer::from_str(text)
        .zip(&headers)
        .enumerate()
    {
        let Some(header) = header else { continue };
        let line = starts.get(i).copied().unwrap_or(1);
        // The position of `path` in this document, or its first line.
        let position = |path: &str| {
            serde_yaml_ng::Deserializer::from_str(text)
                .nth(i)
                .and_then(|d| super::locate::locate(d, path))
                .unwrap_or((line, 1))
        };
        let at = |kind| ManifestError {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(1),
            path: String::new(),
            kind,
        };
        let located = |path: String, kind| {
            let (l, c) = position(&path);
            ManifestError {
                line: Some(l),
                column: Some(c),
                path,
                ..at(kind)
            }
        };
        let origin = |kind: &'static str, name: &str, refs: Vec<String>| Origin {
            kind,
            name: name.to_owned(),
            file: file.to_path_buf(),
            at: position("metadata.name"),
            refs: refs
                .into_iter()
                .map(|p| {
                    let at = position(&p);
                    (p, at)
                })
                .collect(),
        };
        match header.api_version.as_deref() {
            Some(API_VERSION) => {}
            Some(other) => {
                errors.push(located(
                    "apiVersion".into(),
                    ManifestErrorKind::ApiVersion {
                        found: other.into(),
                    },
                ));
                continue;
            }
            None => {
                errors.push(ManifestError {
                    path: "apiVersion".into(),
                    ..at(ManifestErrorKind::Schema {
                        message: "missing field `apiVersion`".into(),
                    })
                });
                continue;
            }
        }
        match header.kind.as_deref() {
            Some("App") => match typed::<super::AppMeta, AppSpec>(doc, file) {
                Ok((metadata, spec)) => {
                    let app = App { metadata, spec };
                    if let Err((path, kind)) = check_app(&app) {
                        errors.push(located(path, kind));
                    } else {
                        let refs = app.spec.strategy.template_refs();
                        let refs = refs
                            .into_iter()
                            .map(|(p, _)| p)
                            .chain(
                                (0..app.spec.notifiers.len())
                                    .map(|i| format!("spec.notifiers[{i}]")),
                            )
                            .collect();
                        set.origins
                            .push(origin("App", app.metadata.name.as_str(), refs));
                        set.apps.push(app);
                    }
                }
                Err(e) => errors.push(e),
            },
            Some("AnalysisTemplate") => {
                match typed::<super::ObjectMeta, super::AnalysisTemplateSpec>(doc, file) {
                    Ok((metadata, spec)) => {
                        let template = AnalysisTemplate { metadata, spec };
                        if let Err((path, kind)) = check_template(&template) {
                            errors.push(located(path, kind));
                        } else {
                            let name = template.metadata.name.as_str();
                            set.origins
                                .push(origin("AnalysisTemplate", name, Vec::new()));
                            set.templates.push(template);
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            Some("Experiment") => {
                match typed::<super::ObjectMeta, super::ExperimentSpec>(doc, file) {
                    Ok((metadata, spec)) => {
                        let experiment = Experiment { metadata, spec };
                        match experiment.validate() {
                            Ok(()) => {
                                let name = experiment.metadata.name.as_str();
                                set.origins.push(origin("Experiment", name, Vec::new()));
                                set.experiments.push(experiment);
                            }
                            Err(e) => {
                                let kind = ManifestErrorKind::Experiment(Box::new(e.problem));
                                errors.push(located(e.path, kind));
                            }
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            Some("Pipeline") => match typed::<super::ObjectMeta, super::PipelineSpec>(doc, file) {
                Ok((metadata, spec)) => {
                    let pipeline = Pipeline { metadata, spec };
                    if let Err((path, message)) = pipeline.spec.check() {
                        errors.push(located(path, ManifestErrorKind::Schema { message }));
                    } else {
                        let name = pipeline.metadata.name.as_str();
                        let refs = pipeline.references().into_iter().map(|r| r.0).collect();
                        set.origins.push(origin("Pipeline", name, refs));
                        set.pipelines.push(pipeline);
                    }
                }
                Err(e) => errors.push(e),
            },
            Some("Notifier") => {
                match typed::<super::ObjectMeta, super::notifier::NotifierSpec>(doc, file) {
                    Ok((metadata, spec)) => {
                        let notifier = Notifier { metadata, spec };
                        if let Err((path, message)) = notifier.spec.check() {
                            errors.push(located(path, ManifestErrorKind::Schema { message }));
                        } else {
                            let name = notifier.metadata.name.as_str();
                            set.origins.push(origin("Notifier", name, Vec::new()));
                            set.notifiers.push(notifier);
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            Some("DeploymentWindow") => {
                match typed::<super::ObjectMeta, super::window::WindowSpec>(doc, file) {
                    Ok((metadata, spec)) => {
                        let window = DeploymentWindow { metadata, spec };
                        if let Err((path, message)) = window.check() {
                            errors.push(located(path, ManifestErrorKind::Schema { message }));
                        } else {
                            let name = window.metadata.name.as_str();
                            set.origins
                                .push(origin("DeploymentWindow", name, Vec::new()));
                            set.windows.push(window);
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            Some(other) => errors.push(located(
                "kind".into(),
                ManifestErrorKind::Kind {
                    found: other.into(),
                },
            )),
            None => errors.push(ManifestError {
                path: "kind".into(),
                ..at(ManifestErrorKind::Schema {
                    message: "missing field `kind`".into(),
                })
            }),
        }
    }
    check_duplicates(&set, file, &mut errors);
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(ManifestErrors(errors))
    }
}

fn typed<M: DeserializeOwned, S: DeserializeOwned>(
    doc: serde_yaml_ng::Deserializer<'_>,
    file: &Path,
) -> Result<(M, S), ManifestError> {
    serde_path_to_error::deserialize::<_, Document<M, S>>(doc)
        .map(|d| (d.metadata, d.spec))
        .map_err(|e| serde_error(file, &e))
}

fn serde_error(file: &Path, e: &serde_path_to_error::Error<serde_yaml_ng::Error>) -> ManifestError {
    let location = e.inner().location();
    let mut message = e.inner().to_string();
    // serde_yaml_ng repeats the path and location in its message; keep only what was wrong.
    if let Some(idx) = message.find(" at line ") {
        message.truncate(idx);
    }
    let path = e.path().to_string();
    message = strip_path_prefix(&message, &path).to_string();
    ManifestError {
        file: file.to_path_buf(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        path,
        kind: ManifestErrorKind::Schema { message },
    }
}

/// serde_yaml_ng starts its message with the path of the object whose deserialiser failed,
/// which for a value that validates itself is the path's parent (or the path itself). The
/// error already carries the full path, so that prefix is dropped.
fn strip_path_prefix<'a>(message: &'a str, path: &str) -> &'a str {
    let mut prefix = path;
    loop {
        if let Some(rest) = message
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(": "))
        {
            return rest;
        }
        match prefix.rfind(['.', '[']) {
            Some(i) if i > 0 => prefix = &prefix[..i],
            _ => return message,
        }
    }
}

/// Checks that cross fields of one app.
fn check_app(app: &App) -> Result<(), (String, ManifestErrorKind)> {
    check_listen(app)?;
    let canary = match &app.spec.strategy {
        Strategy::Canary(canary) => canary,
        Strategy::BlueGreen(bg) => return check_blue_green(app, bg),
        Strategy::Rolling(rolling) => return check_rolling(app, rolling),
    };
    let is_static = matches!(app.spec.runtime, super::app::RuntimeSpec::Static(_));
    let in_cluster = matches!(app.spec.runtime, super::app::RuntimeSpec::Kubernetes(_));
    if canary.steps.is_empty() {
        return Err((
            "spec.strategy.canary.steps".into(),
            ManifestErrorKind::NoSteps,
        ));
    }
    for (i, step) in canary.steps.iter().enumerate() {
        if let CanaryStep::Analysis(a) = step {
            if a.templates.is_empty() {
                let path = format!("spec.strategy.canary.steps[{i}].analysis.templates");
                return Err((path, ManifestErrorKind::NoTemplates));
            }
        }
        if let CanaryStep::Adaptive(a) = step {
            let path = format!("spec.strategy.canary.steps[{i}].adaptive");
            if let Some((field, value, expected)) = a.out_of_range() {
                let path = format!("{path}.{field}");
                return Err((path, ManifestErrorKind::OutOfRange { value, expected }));
            }
            // The built-in telemetry sees only the proxy's traffic: the judge would wait on
            // nothing.
            if in_cluster && a.source.is_none() {
                return Err((
                    format!("{path}.source"),
                    ManifestErrorKind::Schema {
                        message: "a `kubernetes` app's traffic does not pass the built-in proxy: \
                                  give the step a `source` (`source: {prometheus: {address, \
                                  requests, errors}}`)"
                            .into(),
                    },
                ));
            }
        }
        if matches!(step, CanaryStep::SetCanaryScale(_)) && is_static {
            let path = format!("spec.strategy.canary.steps[{i}].setCanaryScale");
            let what = "`setCanaryScale`";
            return Err((path, ManifestErrorKind::StaticScale { what }));
        }
    }
    if let Some(bg) = &canary.analysis {
        if bg.templates.is_empty() {
            let path = "spec.strategy.canary.analysis.templates".to_string();
            return Err((path, ManifestErrorKind::NoTemplates));
        }
        if bg.starting_step >= canary.steps.len() {
            let path = "spec.strategy.canary.analysis.startingStep".to_string();
            return Err((
                path,
                ManifestErrorKind::StartingStep {
                    steps: canary.steps.len(),
                },
            ));
        }
    }
    Ok(())
}

/// Every app has a listener but those the cluster routes; a Kubernetes app's name becomes the
/// name of its objects.
fn check_listen(app: &App) -> Result<(), (String, ManifestErrorKind)> {
    use super::app::RuntimeSpec;
    let schema = |message: String| ManifestErrorKind::Schema { message };
    match (&app.spec.runtime, app.spec.listen) {
        (RuntimeSpec::Kubernetes(k), listen) => {
            if listen.is_some() {
                return Err((
                    "spec.listen".into(),
                    schema(
                        "a `kubernetes` app is routed by its cluster, not by a Switchyard \
                         listener: remove `listen`"
                            .into(),
                    ),
                ));
            }
            if let Err(message) = super::app::check_dns_label(app.metadata.name.as_str()) {
                return Err((
                    "metadata.name".into(),
                    schema(format!("names the app's Kubernetes objects: {message}")),
                ));
            }
            if let Err((path, message)) = k.check() {
                return Err((format!("spec.runtime.kubernetes.{path}"), schema(message)));
            }
            if let (Strategy::Canary(c), None) = (&app.spec.strategy, &k.traffic_routing) {
                // Without a router the releases' sizes split the traffic: there is nothing to
                // pin a header to or mirror with.
                if let Some(i) = c.steps.iter().position(|s| {
                    matches!(
                        s,
                        CanaryStep::SetHeaderRoute(_)
                            | CanaryStep::SetMirror(_)
                            | CanaryStep::SetCanaryScale(_)
                    )
                }) {
                    return Err((
                        format!("spec.strategy.canary.steps[{i}]"),
                        schema(
                            "without `trafficRouting`, a `kubernetes` canary's weights are its \
                             releases' replica counts: header routes, mirrors and \
                             `setCanaryScale` need a router (`gatewayAPI` or `istio`)"
                                .into(),
                        ),
                    ));
                }
            }
            if let Strategy::BlueGreen(bg) = &app.spec.strategy {
                if bg.preview_listen.is_some() {
                    return Err((
                        "spec.strategy.blueGreen.previewListen".into(),
                        schema(format!(
                            "a `kubernetes` app's preview is its Service `{}-preview`: remove \
                             `previewListen`",
                            app.metadata.name
                        )),
                    ));
                }
            }
            Ok(())
        }
        (_, None) => Err((
            "spec.listen".into(),
            schema("missing field `listen`: the address the app's proxy listener binds".into()),
        )),
        (_, Some(_)) => Ok(()),
    }
}

fn check_rolling(
    app: &App,
    rolling: &super::app::RollingStrategy,
) -> Result<(), (String, ManifestErrorKind)> {
    if matches!(app.spec.runtime, super::app::RuntimeSpec::Static(_)) {
        let path = "spec.strategy.rolling".to_string();
        let what = "a rolling update";
        return Err((path, ManifestErrorKind::StaticScale { what }));
    }
    if rolling.is_stuck() {
        let path = "spec.strategy.rolling".to_string();
        return Err((path, ManifestErrorKind::NoRollingProgress));
    }
    if rolling
        .analysis
        .as_ref()
        .is_some_and(|a| a.templates.is_empty())
    {
        let path = "spec.strategy.rolling.analysis.templates".to_string();
        return Err((path, ManifestErrorKind::NoTemplates));
    }
    Ok(())
}

fn check_blue_green(
    app: &App,
    bg: &super::app::BlueGreenStrategy,
) -> Result<(), (String, ManifestErrorKind)> {
    if bg
        .preview_listen
        .is_some_and(|p| Some(p) == app.spec.listen && p.port() != 0)
    {
        let path = "spec.strategy.blueGreen.previewListen".to_string();
        return Err((path, ManifestErrorKind::PreviewOnListen));
    }
    for (field, step) in [
        ("prePromotionAnalysis", &bg.pre_promotion_analysis),
        ("postPromotionAnalysis", &bg.post_promotion_analysis),
    ] {
        if step.as_ref().is_some_and(|a| a.templates.is_empty()) {
            return Err((
                format!("spec.strategy.blueGreen.{field}.templates"),
                ManifestErrorKind::NoTemplates,
            ));
        }
    }
    Ok(())
}

fn check_template(t: &AnalysisTemplate) -> Result<(), (String, ManifestErrorKind)> {
    for (i, m) in t.spec.metrics.iter().enumerate() {
        let path = format!("spec.metrics[{i}]");
        let conditions = m.success_condition.is_some() || m.failure_condition.is_some();
        match (&m.judge, &m.provider) {
            (Some(_), _) if conditions => {
                return Err((path, ManifestErrorKind::JudgeWithConditions));
            }
            (Some(_), Some(_)) => {
                return Err((
                    format!("{path}.provider"),
                    ManifestErrorKind::JudgeWithProvider,
                ));
            }
            (Some(judge), None) => {
                if let Some((field, value, expected)) = judge.out_of_range() {
                    let path = format!("{path}.judge.{field}");
                    return Err((path, ManifestErrorKind::OutOfRange { value, expected }));
                }
                if judge.adaptive.is_some() {
                    return Err((
                        format!("{path}.judge.adaptive"),
                        ManifestErrorKind::Schema {
                            message: "`adaptive` belongs to an `adaptive` canary step, not to a \
                                      template's judge"
                                .into(),
                        },
                    ));
                }
                if let Some(super::analysis::judge::JudgeSource::Prometheus(p)) = &judge.source {
                    if judge.compare.uses_latency() && p.latency.is_none() {
                        return Err((
                            format!("{path}.judge.source.prometheus"),
                            ManifestErrorKind::Schema {
                                message: "the judge compares latencies: add `latency`, a query \
                                          of the cumulative buckets by `le`"
                                    .into(),
                            },
                        ));
                    }
                }
                if m.interval.is_none() {
                    return Err((
                        format!("{path}.interval"),
                        ManifestErrorKind::JudgeWithoutInterval,
                    ));
                }
                continue;
            }
            (None, None) => {
                return Err((format!("{path}.provider"), ManifestErrorKind::NoProvider));
            }
            (None, Some(_)) if !conditions => return Err((path, ManifestErrorKind::NoCondition)),
            (None, Some(_)) => {}
        }
        if m.count == Some(0) {
            return Err((format!("{path}.count"), ManifestErrorKind::ZeroCount));
        }
        if m.count() > 1 && m.interval.is_none() {
            return Err((
                format!("{path}.interval"),
                ManifestErrorKind::CountWithoutInterval,
            ));
        }
    }
    Ok(())
}

fn check_duplicates(set: &ManifestSet, file: &Path, errors: &mut Vec<ManifestError>) {
    let mut seen = BTreeSet::new();
    for m in set.manifests() {
        if !seen.insert((m.kind(), m.name().to_string())) {
            errors.push(set.duplicate(file, &m));
        }
    }
}

/// An error without a position (a document whose origin is not known).
fn unlocated(path: String, kind: ManifestErrorKind) -> ManifestError {
    ManifestError {
        file: PathBuf::new(),
        line: None,
        column: None,
        path,
        kind,
    }
}

/// 1-based line on which each YAML document starts (after a `---` separator, or line 1).
fn document_start_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") && i > 0 {
            starts.push(i + 2);
        } else if line.starts_with("---") && i == 0 {
            starts[0] = 2;
        }
    }
    starts
}

/// Reads one manifest file.
///
/// # Errors
/// The file cannot be read, or its documents are invalid.
pub fn load_file(path: &Path) -> Result<ManifestSet, ManifestErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ManifestErrors(vec![ManifestError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            path: String::new(),
            kind: ManifestErrorKind::Io(e),
        }])
    })?;
    load_str(&text, path)
}

/// Reads a file, or every `.yaml`/`.yml` file of a directory (in name order), as one set.
///
/// # Errors
/// Any file that cannot be read or is invalid; documents duplicated across files.
pub fn load_dir(path: &Path) -> Result<ManifestSet, ManifestErrors> {
    if !path.is_dir() {
        return load_file(path);
    }
    let io_error = |e| {
        ManifestErrors(vec![ManifestError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            path: String::new(),
            kind: ManifestErrorKind::Io(e),
        }])
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io_error)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ManifestErrors(vec![ManifestError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            path: String::new(),
            kind: ManifestErrorKind::EmptyDirectory,
        }]));
    }
    let mut set = ManifestSet::default();
    let mut errors = Vec::new();
    for file in files {
        match load_file(&file) {
            Ok(s) => {
                if let Err(e) = set.merge(s, &file) {
                    errors.extend(e.0);
                }
            }
            Err(e) => errors.extend(e.0),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(ManifestErrors(errors))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod prefix_tests {
    use super::strip_path_prefix;

    #[test]
    fn parent_paths_are_dropped_from_messages() {
        let path = "spec.metrics[0].provider.prometheus.address";
        assert_eq!(
            strip_path_prefix("spec.metrics[0].provider.prometheus: bad url", path),
            "bad url"
        );
        assert_eq!(
            strip_path_prefix(&format!("{path}: bad url"), path),
            "bad url"
        );
        assert_eq!(strip_path_prefix("bad url", path), "bad url");
        assert_eq!(
            strip_path_prefix("spec.other: x", path),
            "spec.other: x",
            "not a prefix of the path"
        );
    }
}
