//! Logging and tracing for the binary: JSON lines (or human-readable) on stdout, filtered by
//! level, every line inside a request carrying its `request_id`; and, when `otlp_endpoint` is
//! set (and the `otel` feature built), traces exported over OTLP/HTTP: a span per request
//! (with its `request_id`) and child spans for database, Redis, blob-store and AI-provider calls.

use sc_core::config::{Config, LogFormat};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, prelude::*};

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Keeps the trace exporter alive; `shutdown` flushes what is buffered.
#[derive(Default)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (a stopping server's last requests). The flush blocks
    /// while the exporter's requests run on the runtime: off the runtime's workers.
    pub async fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(p) = self.provider {
            let flushed = tokio::task::spawn_blocking(move || p.shutdown()).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!(error = %e, "trace export did not flush");
            }
        }
    }
}

/// Logs only (the CLI's commands).
pub fn init(format: LogFormat, level: &str) {
    let _ = tracing_subscriber::registry()
        .with(log_layer(format, level))
        .try_init();
}

/// Logs, and traces when configured (the server).
pub fn init_server(cfg: &Config) -> anyhow::Result<Telemetry> {
    #[cfg_attr(not(feature = "otel"), allow(unused_mut))]
    let mut layers = vec![log_layer(cfg.log_format, &cfg.log_level)];
    #[cfg_attr(not(feature = "otel"), allow(unused_mut))]
    let mut telemetry = Telemetry::default();
    if let Some(endpoint) = &cfg.otlp_endpoint {
        #[cfg(feature = "otel")]
        {
            let (layer, provider) = otel::layer(endpoint, &cfg.otlp_service_name)?;
            layers.push(layer);
            telemetry.provider = Some(provider);
        }
        #[cfg(not(feature = "otel"))]
        anyhow::bail!(
            "otlp_endpoint is set to {endpoint} but this binary was built without the `otel` feature"
        );
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(telemetry)
}

fn log_layer(format: LogFormat, level: &str) -> BoxedLayer {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt::layer().with_target(false).with_filter(filter).boxed(),
    }
}

#[cfg(feature = "otel")]
mod otel {
    use super::BoxedLayer;
    use anyhow::Context;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
    use std::time::Duration;
    use tracing_subscriber::{Layer, filter::DynFilterFn};

    /// The exporter's HTTP client: the server's own reqwest (one TLS stack), run on the
    /// server's runtime even though the batch exporter calls it from its own thread.
    #[derive(Debug)]
    struct ExportClient {
        http: reqwest::Client,
        runtime: tokio::runtime::Handle,
    }

    #[async_trait::async_trait]
    impl HttpClient for ExportClient {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let http = self.http.clone();
            let request = reqwest::Request::try_from(request)?;
            let sent = self.runtime.spawn(async move {
                let resp = http.execute(request).await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, body))
            });
            let (status, body) = sent.await??;
            let mut out = Response::new(body);
            *out.status_mut() = status;
            Ok(out)
        }
    }

    pub fn layer(endpoint: &str, service: &str) -> anyhow::Result<(BoxedLayer, SdkTracerProvider)> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let client = ExportClient {
            http,
            runtime: tokio::runtime::Handle::try_current()
                .context("trace export needs the server's runtime")?,
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .with_http_client(client)
            .build()
            .context("OTLP trace exporter")?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_string())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("secureconnect");
        // Request spans (info) and the dependency calls made inside a span (debug); the
        // background jobs' own database calls would be a stream of one-span traces.
        let filter = DynFilterFn::new(|meta, cx| {
            if meta.target() == sc_core::trace::DEPENDENCY_TARGET {
                return cx.lookup_current().is_some();
            }
            *meta.level() <= tracing::Level::INFO
        })
        // Debug callsites elsewhere (hyper, sqlx…) stay disabled without asking the filter.
        .with_max_level_hint(tracing_subscriber::filter::LevelFilter::DEBUG);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter)
            .boxed();
        Ok((layer, provider))
    }
}
