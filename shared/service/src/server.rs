//! Starting and stopping a service process: the gRPC server and the admin port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tower::{Layer, Service};

use fusion_telemetry::GrpcTraceLayer;
use fusion_tenancy::TenantLayer;

use crate::bounds::InputBoundsLayer;
use crate::limits::{CallLimitLayer, http2};
use crate::{GrpcMetrics, MetricsLayer};

/// Whether the process can serve traffic (e.g. the database answers).
pub type Readiness = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// What a service registers besides its routes.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Fully-qualified gRPC service names reported by `grpc.health.v1.Health`.
    pub health_services: Vec<String>,
    /// Encoded `FileDescriptorSet`s served by reflection.
    pub file_descriptor_sets: Vec<&'static [u8]>,
    /// Time between NOT_SERVING and closing the listener, so load balancers notice.
    pub drain: Duration,
    /// Longest wait for in-flight calls once the listener is closed.
    pub shutdown_deadline: Duration,
    /// Calls served at once; more are shed with RESOURCE_EXHAUSTED ([`crate::limits`]).
    /// `None` for a server that bounds its calls itself (the edge).
    pub max_in_flight: Option<usize>,
}

#[derive(Clone)]
struct AdminState {
    draining: Arc<AtomicBool>,
    readiness: Readiness,
    metrics: GrpcMetrics,
}

/// A running service: gRPC and admin listeners, stopped with [`Server::stop`].
pub struct Server {
    health: tonic_health::server::HealthReporter,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
    metrics: GrpcMetrics,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("grpc_addr", &self.grpc_addr)
            .field("admin_addr", &self.admin_addr)
            .finish()
    }
}

impl Server {
    /// Starts serving `routes` behind the tracing, metrics, call-limit, tenancy and
    /// input-bounds layers (in that order, outermost first), with health and
    /// reflection, plus the admin port.
    pub async fn start(
        grpc: TcpListener,
        admin: TcpListener,
        routes: Routes,
        tenancy: TenantLayer,
        readiness: Readiness,
        options: ServerOptions,
    ) -> anyhow::Result<Server> {
        let layers = tower::layer::util::Stack::new(InputBoundsLayer, tenancy);
        Self::start_with(grpc, admin, routes, layers, readiness, options).await
    }

    /// Like [`Server::start`] with any innermost layer in place of the tenancy layer
    /// (the edge brings its own stack).
    pub async fn start_with<L>(
        grpc: TcpListener,
        admin: TcpListener,
        routes: Routes,
        layer: L,
        readiness: Readiness,
        options: ServerOptions,
    ) -> anyhow::Result<Server>
    where
        L: Layer<Routes> + Clone + Send + 'static,
        L::Service: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        <L::Service as Service<http::Request<Body>>>::Future: Send + 'static,
    {
        let grpc_addr = grpc.local_addr()?;
        let admin_addr = admin.local_addr()?;

        let (reporter, health) = tonic_health::server::health_reporter();
        let health_reporter = reporter.clone();
        for name in options
            .health_services
            .iter()
            .map(String::as_str)
            .chain([""])
        {
            reporter
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let reflection = |builder: tonic_reflection::server::Builder<'static>| {
            options.file_descriptor_sets.iter().fold(
                builder
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                    // google.rpc error details, so grpcurl can print them.
                    .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET),
                |b, set| b.register_encoded_file_descriptor_set(set),
            )
        };
        let reflection_v1 =
            reflection(tonic_reflection::server::Builder::configure()).build_v1()?;
        let reflection_v1alpha =
            reflection(tonic_reflection::server::Builder::configure()).build_v1alpha()?;

        let metrics = GrpcMetrics::new();
        let draining = Arc::new(AtomicBool::new(false));
        let (close_grpc, grpc_closed) = oneshot::channel::<()>();
        let grpc_server = tonic::transport::Server::builder()
            .max_concurrent_streams(http2::MAX_CONCURRENT_STREAMS)
            .http2_max_header_list_size(http2::MAX_HEADER_LIST_SIZE)
            .http2_max_pending_accept_reset_streams(Some(http2::MAX_PENDING_ACCEPT_RESET_STREAMS))
            .http2_keepalive_interval(Some(http2::KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(http2::KEEPALIVE_TIMEOUT))
            .tcp_keepalive(Some(http2::TCP_KEEPALIVE))
            .layer(GrpcTraceLayer)
            .layer(MetricsLayer::new(metrics.clone()))
            .layer(CallLimitLayer::new(options.max_in_flight))
            .layer(layer)
            .add_routes(routes)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            // Without TCP_NODELAY a response larger than one segment waits on the
            // client's delayed ACK (~40 ms): a page of 50 lots took 44 ms at one stream.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(grpc).with_nodelay(Some(true)),
                async {
                    let _ = grpc_closed.await;
                },
            );
        let mut grpc_task = tokio::spawn(grpc_server);

        let state = AdminState {
            draining: draining.clone(),
            readiness,
            metrics: metrics.clone(),
        };
        let app = axum::Router::new()
            .route("/live", get(|| async { "live\n" }))
            .route("/ready", get(ready))
            .route("/metrics", get(render_metrics))
            .with_state(state);
        let (close_admin, admin_closed) = oneshot::channel::<()>();
        let admin_task = tokio::spawn(async move {
            axum::serve(admin, app)
                .with_graceful_shutdown(async {
                    let _ = admin_closed.await;
                })
                .await
        });

        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Either a stop request or the gRPC server dying on its own ends the run.
            let early_exit = tokio::select! {
                _ = stopped.wait_for(|s| *s) => None,
                result = &mut grpc_task => Some(result),
            };
            if let Some(result) = early_exit {
                let _ = close_admin.send(());
                return match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e).context("gRPC server failed"),
                    Err(e) => Err(e).context("gRPC server task panicked"),
                };
            }
            tracing::info!("shutting down: NOT_SERVING, draining");
            draining.store(true, Ordering::SeqCst);
            for name in options
                .health_services
                .iter()
                .map(String::as_str)
                .chain([""])
            {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            tokio::time::sleep(options.drain).await;
            let _ = close_grpc.send(());
            match tokio::time::timeout(options.shutdown_deadline, &mut grpc_task).await {
                Ok(_) => tracing::info!("all in-flight calls finished"),
                Err(_) => {
                    tracing::warn!("shutdown deadline passed; abandoning in-flight calls");
                    grpc_task.abort();
                }
            }
            let _ = close_admin.send(());
            let _ = admin_task.await;
            Ok(())
        });
        Ok(Server {
            health: health_reporter,
            grpc_addr,
            admin_addr,
            stop,
            task,
            metrics,
        })
    }

    /// Reports serving status (the edge reports the services behind it).
    pub fn health(&self) -> tonic_health::server::HealthReporter {
        self.health.clone()
    }

    /// The registry `/metrics` serves, for a service's own metrics.
    pub fn metrics(&self) -> &GrpcMetrics {
        &self.metrics
    }

    /// The gRPC address actually bound (port 0 resolved).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Begins a graceful shutdown; [`Server::wait`] returns when it is done.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        self.stop();
        self.wait().await
    }
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n");
    }
    if (state.readiness)().await {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn render_metrics(
    State(state): State<AdminState>,
) -> ([(&'static str, &'static str); 1], String) {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Completes on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
