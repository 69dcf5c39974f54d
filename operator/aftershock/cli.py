"""The `aftershock` command line: run the operator, and show what experiments found."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aftershock import __version__

app = typer.Typer(help="aftershock: continuous chaos engineering for Kubernetes.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """aftershock: continuous chaos engineering for Kubernetes."""


@app.command()
def version() -> None:
    """Print the aftershock version."""
    typer.echo(__version__)


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Watch only this namespace (repeatable; globs allowed)."),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace (the default without -n).")
    ] = False,
    metrics_port: Annotated[int, typer.Option(help="Port for Prometheus /metrics (0 disables).")] = 8080,
    health_port: Annotated[int, typer.Option(help="Port for the liveness endpoint /healthz.")] = 8081,
    bind: Annotated[
        str, typer.Option(help="Address the metrics and health endpoints listen on.")
    ] = "0.0.0.0",
    operator_namespace: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_OPERATOR_NAMESPACE", help="The operator's own namespace; never a chaos target."
        ),
    ] = None,
    identity: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_OPERATOR_ID",
            help="Identity written into the runs this process claims (default: pod name, else host-pid).",
        ),
    ] = None,
    sweep_interval: Annotated[
        float,
        typer.Option(envvar="AFTERSHOCK_SWEEP_SECONDS", help="Seconds between sweeps for left-over faults."),
    ] = 10.0,
    webhook_port: Annotated[
        int,
        typer.Option(
            envvar="AFTERSHOCK_WEBHOOK_PORT", help="Serve the admission webhooks on this port (0: off)."
        ),
    ] = 0,
    webhook_host: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_WEBHOOK_HOST", help="Host or IP the API server uses to reach the webhook."
        ),
    ] = None,
    webhook_cert_dir: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_WEBHOOK_CERT_DIR",
            help="Directory with tls.crt, tls.key and ca.crt; default: a self-signed certificate.",
        ),
    ] = None,
    webhook_config: Annotated[
        str,
        typer.Option(
            envvar="AFTERSHOCK_WEBHOOK_CONFIG",
            help="ValidatingWebhookConfiguration the operator keeps up to date ('' when Helm manages it).",
        ),
    ] = "aftershock.dev",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the operator until interrupted."""
    import kopf

    from aftershock import metrics

    if namespace and all_namespaces:
        raise typer.BadParameter("use either --namespace or --all-namespaces, not both")
    if operator_namespace:
        os.environ["AFTERSHOCK_OPERATOR_NAMESPACE"] = operator_namespace
    if identity:
        os.environ["AFTERSHOCK_OPERATOR_ID"] = identity
    os.environ["AFTERSHOCK_SWEEP_SECONDS"] = str(sweep_interval)
    os.environ["AFTERSHOCK_WEBHOOK_PORT"] = str(webhook_port)
    os.environ["AFTERSHOCK_WEBHOOK_ADDR"] = bind
    os.environ["AFTERSHOCK_WEBHOOK_CONFIG"] = webhook_config
    if webhook_host:
        os.environ["AFTERSHOCK_WEBHOOK_HOST"] = webhook_host
    if webhook_cert_dir:
        os.environ["AFTERSHOCK_WEBHOOK_CERT_DIR"] = webhook_cert_dir
    import aftershock.handlers

    if webhook_port:
        import aftershock.handlers.admission  # noqa: F401  (registers the admission webhooks)
    kopf.configure(verbose=verbose)  # configures the root logger once (ours log through it)
    if metrics_port:
        metrics.serve(metrics_port, bind)
    kopf.run(
        clusterwide=not namespace,
        namespaces=namespace or [],
        liveness_endpoint=f"http://{bind}:{health_port}/healthz",
        standalone=True,
    )


def _kube() -> Any:
    from aftershock.kube import Kube, load_client

    return Kube(load_client())


@app.command()
def status(
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace of the experiments.")
    ] = "default",
    runs: Annotated[int, typer.Option(help="How many recent runs to show per experiment.")] = 5,
) -> None:
    """Show experiments, their recent runs, and the findings of each run."""
    kube = _kube()
    console = Console()
    experiments = kube.list_objects("ChaosExperiment", namespace)
    if not experiments:
        console.print(f"no ChaosExperiments in namespace {namespace}")
        raise typer.Exit(0)
    for exp in experiments:
        name = exp["metadata"]["name"]
        st = exp.get("status") or {}
        summary = st.get("summary") or {}
        rec = summary.get("recoverySeconds") or {}
        console.print(
            f"[bold]{name}[/bold]  runs={summary.get('runs', 0)} passed={summary.get('passed', 0)} "
            f"failed={summary.get('failed', 0)} errored={summary.get('errored', 0)} "
            f"worst={summary.get('worstSeverity', '-')} recovery p50={rec.get('p50', '-')}s "
            f"p95={rec.get('p95', '-')}s max={rec.get('max', '-')}s"
        )
        table = Table("run", "phase", "verdict", "severity", "recovery (s)", "findings / message")
        items = kube.list_objects("ChaosRun", namespace, label_selector=f"aftershock.dev/experiment={name}")
        items.sort(key=lambda r: r["metadata"]["name"])
        for item in items[-runs:]:
            rs = item.get("status") or {}
            findings = "; ".join(
                f"[{f['severity']}] {f['title']}: {f['detail']}" for f in rs.get("findings") or []
            )
            table.add_row(
                item["metadata"]["name"],
                rs.get("phase", "-"),
                rs.get("verdict", "-"),
                rs.get("severity", "-"),
                str(rs.get("recoverySeconds", "-")),
                findings or rs.get("message", ""),
            )
        console.print(table)


@app.command()
def trigger(
    experiment: Annotated[str, typer.Argument(help="Name of the ChaosExperiment to run now.")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace of the experiment.")
    ] = "default",
) -> None:
    """Run an experiment now, outside its schedule (creates a ChaosRun for the current second)."""
    from aftershock.api.experiment import ChaosExperiment
    from aftershock.handlers.schedules import new_run
    from aftershock.kube import NotFound, now

    kube = _kube()
    try:
        body = kube.get("ChaosExperiment", namespace, experiment)
    except NotFound:
        typer.echo(f"error: ChaosExperiment {experiment} not found in namespace {namespace}", err=True)
        raise typer.Exit(1) from None
    run = new_run(
        ChaosExperiment.from_body(body), namespace, now().replace(microsecond=0), {}, trigger="manual"
    )
    created = kube.create("ChaosRun", namespace, run)
    if created is None:
        typer.echo(f"error: run {run['metadata']['name']} already exists; try again in a second", err=True)
        raise typer.Exit(1)
    typer.echo(f"chaosrun.aftershock.dev/{run['metadata']['name']} created")


def main() -> None:
    app()
